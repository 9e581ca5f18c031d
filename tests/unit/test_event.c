/* Event lines (spec §3, docs/events.md): every type parses, fields land where the pipeline
 * reads them, and the canonical form is exact and round-trips. Rejections are in
 * test_event_reject.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/event.h"

static float scratch[EV_ACCEL_MAX][3];
static float scratch2[EV_ACCEL_MAX][3];

#define P "\"ts\":1583470800000,\"participant\":\"p01\","
#define CANON_P "{\"ts\":1583470800000,\"participant\":\"p01\",\"source\":\"replay\","

/* ---- valid lines and their canonical form ---- */

struct valid_case {
    const char *in;
    const char *canon;
};

static const struct valid_case valid[] = {
    {"{\"ts\":1583470800000,\"participant\":\"p01\",\"source\":\"phone-p01\",\"seq\":7,"
     "\"type\":\"screen\",\"state\":\"unlocked\"}",
     "{\"ts\":1583470800000,\"participant\":\"p01\",\"source\":\"phone-p01\",\"seq\":7,"
     "\"type\":\"screen\",\"state\":\"unlocked\"}"},
    /* keys in any order; AWARE screen codes */
    {"{\"state\":0,\"type\":\"screen\",\"participant\":\"p01\",\"ts\":1583470800000}",
     CANON_P "\"type\":\"screen\",\"state\":\"off\"}"},
    {"{" P "\"type\":\"screen\",\"state\":2}", CANON_P "\"type\":\"screen\",\"state\":\"locked\"}"},
    {"{" P "\"type\":\"screen\",\"state\":1.0}", CANON_P "\"type\":\"screen\",\"state\":\"on\"}"},
    {"{" P "\"type\":\"app\",\"app\":\"org.example.mindapp\"}",
     CANON_P "\"type\":\"app\",\"app\":\"org.example.mindapp\",\"state\":\"foreground\"}"},
    {"{" P "\"type\":\"app\",\"app\":\"com.x\",\"state\":\"background\"}",
     CANON_P "\"type\":\"app\",\"app\":\"com.x\",\"state\":\"background\"}"},
    /* non-ASCII names are kept as UTF-8; quotes and backslashes stay escaped */
    {"{" P "\"type\":\"app\",\"app\":\"caf\\u00e9 \\\"q\\\" \\\\ \xe2\x82\xac\"}",
     CANON_P "\"type\":\"app\",\"app\":\"caf\xc3\xa9 \\\"q\\\" \\\\ \xe2\x82\xac\","
             "\"state\":\"foreground\"}"},
    {"{" P "\"type\":\"ema\",\"prompt\":\"mood-am\",\"state\":\"answered\",\"items\":{\"mood\":4}}",
     CANON_P "\"type\":\"ema\",\"prompt\":\"mood-am\",\"state\":\"answered\"}"},
    {"{" P "\"type\":\"ema\",\"prompt\":\"m\",\"state\":\"scheduled\"}",
     CANON_P "\"type\":\"ema\",\"prompt\":\"m\",\"state\":\"scheduled\"}"},
    {"{" P "\"type\":\"ema\",\"prompt\":\"m\",\"state\":\"expired\"}",
     CANON_P "\"type\":\"ema\",\"prompt\":\"m\",\"state\":\"expired\"}"},
    {"{" P "\"type\":\"module\",\"module\":\"sleep-1\",\"state\":\"completed\"}",
     CANON_P "\"type\":\"module\",\"module\":\"sleep-1\",\"state\":\"completed\"}"},
    {"{" P "\"type\":\"module\",\"module\":\"sleep-1\",\"state\":\"started\"}",
     CANON_P "\"type\":\"module\",\"module\":\"sleep-1\",\"state\":\"started\"}"},
    {"{" P "\"type\":\"dwai\",\"items\":[1,2,3,4,5,5.0]}",
     CANON_P "\"type\":\"dwai\",\"items\":[1,2,3,4,5,5]}"},
    {"{" P "\"type\":\"nudge_ack\",\"nudge\":\"n-20200306-1\",\"state\":\"acted\"}",
     CANON_P "\"type\":\"nudge_ack\",\"nudge\":\"n-20200306-1\",\"state\":\"acted\"}"},
    {"{" P "\"type\":\"counts\",\"epoch_s\":60,\"counts\":123.5}",
     CANON_P "\"type\":\"counts\",\"epoch_s\":60,\"counts\":123.5}"},
    {"{" P "\"type\":\"counts\",\"epoch_s\":15,\"counts\":[1,2e1,3.25]}",
     CANON_P "\"type\":\"counts\",\"epoch_s\":15,\"counts\":[1,20,3.25]}"},
    {"{" P "\"type\":\"counts\",\"epoch_s\":86400,\"counts\":0}",
     CANON_P "\"type\":\"counts\",\"epoch_s\":86400,\"counts\":0}"},
    {"{" P "\"type\":\"accel\",\"hz\":30,\"g\":[[0.1,-0.98,0.0625],[0,1,-0.0]]}",
     CANON_P "\"type\":\"accel\",\"hz\":30,\"g\":[[0.1,-0.98,0.0625],[0,1,0]]}"},
    {"{" P "\"type\":\"accel\",\"hz\":12.5,\"g\":[[1e-7,-16,3.14159265]]}",
     CANON_P "\"type\":\"accel\",\"hz\":12.5,\"g\":[[1e-07,-16,3.1415927]]}"},
    {"{" P "\"type\":\"steps\",\"steps\":42,\"interval_s\":60}",
     CANON_P "\"type\":\"steps\",\"steps\":42,\"interval_s\":60}"},
    {"{" P "\"type\":\"hr\",\"bpm\":71.5,\"rr_ms\":[840,812.25]}",
     CANON_P "\"type\":\"hr\",\"bpm\":71.5,\"rr_ms\":[840,812.25]}"},
    {"{" P "\"type\":\"hr\",\"bpm\":0}", CANON_P "\"type\":\"hr\",\"bpm\":0}"},
    {"{" P "\"type\":\"hr\",\"bpm\":300,\"rr_ms\":[]}", CANON_P "\"type\":\"hr\",\"bpm\":300}"},
    {"{" P "\"type\":\"battery\",\"pct\":0.1}", CANON_P "\"type\":\"battery\",\"pct\":0.1}"},
    {"{" P "\"type\":\"battery\",\"pct\":100}", CANON_P "\"type\":\"battery\",\"pct\":100}"},
    {"{" P "\"type\":\"wear\",\"state\":\"on\"}", CANON_P "\"type\":\"wear\",\"state\":\"on\"}"},
    {"{" P "\"type\":\"wear\",\"state\":\"off\"}", CANON_P "\"type\":\"wear\",\"state\":\"off\"}"},
    {"{" P "\"type\":\"tz\",\"tz\":\"America/Argentina/Buenos_Aires\"}",
     CANON_P "\"type\":\"tz\",\"tz\":\"America/Argentina/Buenos_Aires\"}"},
    {"{" P "\"type\":\"tz\",\"tz\":\"Etc/GMT+5\"}",
     CANON_P "\"type\":\"tz\",\"tz\":\"Etc/GMT+5\"}"},
    {"{" P "\"type\":\"tz\",\"tz\":\"UTC\"}", CANON_P "\"type\":\"tz\",\"tz\":\"UTC\"}"},
    /* the documented time range, both ends; 1900 is where anonymised recordings start */
    {"{\"ts\":-2208988800000,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}",
     "{\"ts\":-2208988800000,\"participant\":\"p01\",\"source\":\"replay\",\"type\":\"wear\","
     "\"state\":\"on\"}"},
    {"{\"ts\":7258118399999,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}",
     "{\"ts\":7258118399999,\"participant\":\"p01\",\"source\":\"replay\",\"type\":\"wear\","
     "\"state\":\"on\"}"},
    /* integral reals are integers (pandas writes 1583470800000.0) */
    {"{\"ts\":1583470800000.0,\"participant\":\"p01\",\"seq\":3e2,\"type\":\"wear\","
     "\"state\":\"on\"}",
     CANON_P "\"seq\":300,\"type\":\"wear\",\"state\":\"on\"}"},
    {"{" P "\"seq\":9223372036854775807,\"type\":\"wear\",\"state\":\"on\"}",
     CANON_P "\"seq\":9223372036854775807,\"type\":\"wear\",\"state\":\"on\"}"},
    {"{" P "\"seq\":0,\"type\":\"wear\",\"state\":\"on\"}",
     CANON_P "\"seq\":0,\"type\":\"wear\",\"state\":\"on\"}"},
    /* unknown fields ignored, whatever they hold; whitespace, CR and a BOM tolerated */
    {"{" P "\"type\":\"wear\",\"state\":\"on\",\"extra\":{\"a\":[1,{\"b\":null}]},\"x\":1e300}",
     CANON_P "\"type\":\"wear\",\"state\":\"on\"}"},
    {"  { \"ts\" : 1583470800000 , \"participant\" : \"p01\" , \"type\" : \"wear\" , "
     "\"state\" : \"on\" }\r",
     CANON_P "\"type\":\"wear\",\"state\":\"on\"}"},
    {"\xef\xbb\xbf{" P "\"type\":\"wear\",\"state\":\"on\"}",
     CANON_P "\"type\":\"wear\",\"state\":\"on\"}"},
    {"{\"ts\":1583470800000,\"participant\":\"A-z_012345678901234567890123456789"
     "012345678901234567890123456789\",\"source\":\"s\",\"type\":\"wear\",\"state\":\"on\"}",
     "{\"ts\":1583470800000,\"participant\":\"A-z_012345678901234567890123456789"
     "012345678901234567890123456789\",\"source\":\"s\",\"type\":\"wear\",\"state\":\"on\"}"},
};

static void parse_ok(const char *line, size_t len, struct event *ev, float (*s)[3])
{
    const char *why = NULL;
    int r = ev_parse_json(line, len, ev, s, &why);
    if (r != 0)
        fail_msg("rejected (%d: %s): %s", r, why ? why : "(null)", line);
}

static void test_every_valid_line_gives_its_canonical_form(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        struct event a, b;
        parse_ok(valid[i].in, strlen(valid[i].in), &a, scratch);
        char *out = ev_to_json(&a);
        assert_non_null(out);
        if (strcmp(out, valid[i].canon) != 0)
            fail_msg("case %zu\n  got  %s\n  want %s", i, out, valid[i].canon);
        /* round trip: the canonical form parses back to an equal event and is a fixpoint */
        parse_ok(out, strlen(out), &b, scratch2);
        assert_true(ev_equal(&a, &b));
        char *again = ev_to_json(&b);
        assert_string_equal(out, again);
        free(out);
        free(again);
    }
}

static void test_every_type_is_covered_and_named(void **state)
{
    (void)state;
    int seen[EV__COUNT] = {0};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        struct event ev;
        parse_ok(valid[i].in, strlen(valid[i].in), &ev, scratch);
        seen[ev.type]++;
    }
    for (int t = 0; t < EV__COUNT; t++) {
        assert_true(seen[t] > 0);
        assert_int_equal(ev_type_from_name(ev_type_name((enum ev_type)t)), t);
    }
    assert_int_equal(ev_type_from_name("nope"), -1);
    assert_null(ev_type_name(EV__COUNT));
    assert_string_equal(ev_state_name(EV_SCREEN, SCREEN_UNLOCKED), "unlocked");
    assert_string_equal(ev_state_name(EV_EMA, EMA_EXPIRED), "expired");
    assert_string_equal(ev_state_name(EV_NUDGE_ACK, ACK_ACTED), "acted");
    assert_null(ev_state_name(EV_SCREEN, 4));
    assert_null(ev_state_name(EV_TZ, 0));
    assert_int_equal(ev_state_from_name(EV_WEAR, "on"), 1);
}

static void test_fields_land_where_the_pipeline_reads_them(void **state)
{
    (void)state;
    struct event ev;
    const char *l;

    l = "{" P "\"type\":\"screen\",\"state\":\"unlocked\"}";
    parse_ok(l, strlen(l), &ev, scratch);
    assert_int_equal(ev.ts, 1583470800000LL);
    assert_string_equal(ev.participant, "p01");
    assert_string_equal(ev.source, "replay"); /* default */
    assert_int_equal(ev.has_seq, 0);
    assert_int_equal(ev.type, EV_SCREEN);
    assert_int_equal(ev.u.screen.state, SCREEN_UNLOCKED);

    l = "{" P "\"source\":\"band\",\"seq\":12,\"type\":\"counts\",\"epoch_s\":30,"
        "\"counts\":[4,5,6]}";
    parse_ok(l, strlen(l), &ev, scratch);
    assert_string_equal(ev.source, "band");
    assert_int_equal(ev.has_seq, 1);
    assert_int_equal(ev.seq, 12);
    assert_int_equal(ev.u.counts.epoch_s, 30);
    assert_int_equal(ev.u.counts.triaxial, 1);
    assert_true(ev.u.counts.axes[0] == 4 && ev.u.counts.axes[1] == 5 && ev.u.counts.axes[2] == 6);
    assert_true(ev.u.counts.counts == 5); /* ActiGraph axis 1 = y */

    l = "{" P "\"type\":\"app\",\"app\":\"a\",\"state\":\"background\"}";
    parse_ok(l, strlen(l), &ev, scratch);
    assert_int_equal(ev.u.app.foreground, 0);

    l = "{" P "\"type\":\"module\",\"module\":\"m\",\"state\":\"completed\"}";
    parse_ok(l, strlen(l), &ev, scratch);
    assert_int_equal(ev.u.module.completed, 1);

    l = "{" P "\"type\":\"hr\",\"bpm\":60,\"rr_ms\":[1000,999.5]}";
    parse_ok(l, strlen(l), &ev, scratch);
    assert_int_equal(ev.u.hr.n_rr, 2);
    assert_true(ev.u.hr.rr_ms[1] == 999.5);

    l = "{" P "\"type\":\"accel\",\"hz\":100,\"g\":[[0.5,-1,0.25],[1,2,3]]}";
    parse_ok(l, strlen(l), &ev, scratch);
    assert_int_equal(ev.u.accel.n, 2);
    assert_ptr_equal(ev.u.accel.g, scratch); /* borrowed from the caller's buffer */
    assert_true(ev.u.accel.g[0][1] == -1.0f && ev.u.accel.g[1][2] == 3.0f);
}

static void test_full_accel_block_round_trips(void **state)
{
    (void)state;
    size_t cap = 64 + (size_t)EV_ACCEL_MAX * 40;
    char *line = malloc(cap);
    assert_non_null(line);
    size_t n = (size_t)snprintf(line, cap, "{" P "\"type\":\"accel\",\"hz\":100,\"g\":[");
    for (int i = 0; i < EV_ACCEL_MAX; i++)
        n += (size_t)snprintf(line + n, cap - n, "%s[%.6f,%.3f,%d]", i ? "," : "",
                              (i % 97) / 96.0 - 0.5, -(i % 13) * 0.123, i % 3);
    memcpy(line + n, "]}", 3);
    struct event a, b;
    parse_ok(line, n + 2, &a, scratch);
    assert_int_equal(a.u.accel.n, EV_ACCEL_MAX);
    char *out = ev_to_json(&a);
    assert_non_null(out);
    parse_ok(out, strlen(out), &b, scratch2);
    assert_true(ev_equal(&a, &b));
    free(out);

    /* one sample more is refused */
    memcpy(line + n, ",[0,0,0]]}", 11);
    const char *why = NULL;
    assert_int_equal(ev_parse_json(line, n + 10, &a, scratch, &why), -EINVAL);
    assert_non_null(strstr(why, "4097 samples"));
    free(line);
}

static void test_accel_without_scratch_is_refused(void **state)
{
    (void)state;
    const char *l = "{" P "\"type\":\"accel\",\"hz\":50,\"g\":[[0,0,1]]}";
    struct event ev;
    const char *why = NULL;
    assert_int_equal(ev_parse_json(l, strlen(l), &ev, NULL, &why), -EINVAL);
    assert_non_null(strstr(why, "sample buffer"));
    /* other types do not need it */
    l = "{" P "\"type\":\"wear\",\"state\":\"on\"}";
    assert_int_equal(ev_parse_json(l, strlen(l), &ev, NULL, &why), 0);
}

static void test_to_json_refuses_invalid_events(void **state)
{
    (void)state;
    struct event ev;
    memset(&ev, 0, sizeof ev);
    ev.ts = 0;
    strcpy(ev.participant, "p01");
    ev.type = EV_SCREEN;
    ev.u.screen.state = 9;
    assert_null(ev_to_json(&ev));
    ev.type = EV__COUNT;
    assert_null(ev_to_json(&ev));
    ev.type = EV_BATTERY;
    ev.u.battery.pct = 0.0 / 0.0;
    assert_null(ev_to_json(&ev));
    ev.u.battery.pct = 50;
    char *s = ev_to_json(&ev); /* empty source is written as the default */
    assert_string_equal(s, "{\"ts\":0,\"participant\":\"p01\",\"source\":\"replay\","
                           "\"type\":\"battery\",\"pct\":50}");
    free(s);
}

/* ev_json_write: the same text as ev_to_json into the caller's buffer, a short buffer told
 * apart from an invalid event, and nothing written past cap. */
static void test_write_into_a_buffer(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        struct event a;
        parse_ok(valid[i].in, strlen(valid[i].in), &a, scratch);
        size_t bound = ev_json_bound(&a), want = strlen(valid[i].canon);
        assert_true(bound > want);
        char *buf = malloc(bound + 8);
        assert_non_null(buf);
        memset(buf, '#', bound + 8);
        assert_int_equal(ev_json_write(&a, buf, bound), (long)want);
        assert_string_equal(buf, valid[i].canon);
        for (size_t k = want + 1; k < bound + 8; k++)
            assert_int_equal(buf[k], '#');
        /* exactly enough room (the text and its NUL) is enough; one byte less is not */
        memset(buf, '#', bound + 8);
        assert_int_equal(ev_json_write(&a, buf, want + 1), (long)want);
        assert_string_equal(buf, valid[i].canon);
        memset(buf, '#', bound + 8);
        assert_int_equal(ev_json_write(&a, buf, want), -ENOSPC);
        for (size_t k = want; k < bound + 8; k++)
            assert_int_equal(buf[k], '#');
        free(buf);
    }
    struct event ev;
    memset(&ev, 0, sizeof ev);
    strcpy(ev.participant, "p01");
    ev.type = EV_SCREEN;
    ev.u.screen.state = 9; /* invalid: refused whatever the room */
    char big[4096];
    assert_true(ev_json_bound(&ev) <= sizeof big);
    assert_int_equal(ev_json_write(&ev, big, sizeof big), -EINVAL);
    ev.type = EV__COUNT;
    assert_int_equal(ev_json_write(&ev, big, sizeof big), -EINVAL);
}

static void test_valid_id(void **state)
{
    (void)state;
    assert_true(ev_valid_id("p01"));
    assert_true(ev_valid_id("A_b-9"));
    assert_false(ev_valid_id(""));
    assert_false(ev_valid_id("a.b"));
    assert_false(ev_valid_id("a b"));
    char id[EV_ID_MAX + 2];
    memset(id, 'x', sizeof id);
    id[EV_ID_MAX] = 0;
    assert_true(ev_valid_id(id));
    id[EV_ID_MAX] = 'x';
    id[EV_ID_MAX + 1] = 0;
    assert_false(ev_valid_id(id));
}

/* tests/data/bad-lines.jsonl: line N must be rejected (-EINVAL) with a reason containing
 * the text after "N<TAB>" in bad-lines.reasons. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_valid_line_gives_its_canonical_form),
        cmocka_unit_test(test_every_type_is_covered_and_named),
        cmocka_unit_test(test_fields_land_where_the_pipeline_reads_them),
        cmocka_unit_test(test_full_accel_block_round_trips),
        cmocka_unit_test(test_accel_without_scratch_is_refused),
        cmocka_unit_test(test_to_json_refuses_invalid_events),
        cmocka_unit_test(test_write_into_a_buffer),
        cmocka_unit_test(test_valid_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
