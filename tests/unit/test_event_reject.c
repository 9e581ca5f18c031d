/* Event lines (spec §3, docs/events.md): every kind of malformed line is rejected, with a
 * printable reason that says why, and never crashes; the committed corpus of bad lines
 * (tests/data/bad-lines.jsonl) gives the reasons listed in bad-lines.reasons. */
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

#define P "\"ts\":1583470800000,\"participant\":\"p01\","

static void parse_ok(const char *line, size_t len, struct event *ev)
{
    const char *why = NULL;
    int r = ev_parse_json(line, len, ev, scratch, &why);
    if (r != 0)
        fail_msg("rejected (%d: %s): %s", r, why ? why : "(null)", line);
}

/* ---- rejections ---- */

struct bad_case {
    const char *in;
    int rc;
    const char *reason; /* substring of *why */
};

#define E(x) "{" P x "}"
static const struct bad_case bad[] = {
    /* syntax */
    {"not json", -EINVAL, "invalid JSON at column 3: invalid token"},
    {"{\"ts\":1583470800000,\"participant\":\"p01\"", -EINVAL, "truncated JSON"},
    {"{\"ts\":1583470800000,", -EINVAL, "truncated JSON"},
    {"", -EINVAL, "empty line"},
    {" \t \r", -EINVAL, "empty line"},
    {"[1,2]", -EINVAL, "event must be a JSON object"},
    {"\"screen\"", -EINVAL, "event must be a JSON object"},
    {"42", -EINVAL, "event must be a JSON object"},
    {"null", -EINVAL, "event must be a JSON object"},
    {E("\"type\":\"wear\",\"state\":\"on\"") " {}", -EINVAL, "text after the JSON object"},
    {E("\"type\":\"wear\",\"state\":\"on\","), -EINVAL, "invalid JSON at column"},
    {"{'ts':1583470800000}", -EINVAL, "invalid JSON at column 2"},
    {"{\"ts\":01583470800000}", -EINVAL, "invalid JSON"},
    {"{\"ts\":0x10}", -EINVAL, "invalid JSON"},
    {E("\"type\":\"counts\",\"epoch_s\":60,\"counts\":NaN"), -EINVAL, "invalid JSON"},
    {E("\"type\":\"counts\",\"epoch_s\":60,\"counts\":Infinity"), -EINVAL, "invalid JSON"},
    {E("\"type\":\"wear\",\"state\":\"o\tn\""), -EINVAL, "invalid JSON"}, /* raw tab */
    {"{\"ts\":1,\"ts\":2,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}", -EINVAL,
     "duplicate key at column"},
    {E("\"type\":\"ema\",\"prompt\":\"m\",\"state\":\"answered\",\"items\":{\"a\":1,\"a\":2}"),
     -EINVAL, "duplicate key"},
    /* numbers jansson cannot hold */
    {"{\"ts\":1e400,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}", -EINVAL,
     "number too large at column"},
    {"{\"ts\":18446744073709551616,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}",
     -EINVAL, "number too large"},
    {"{\"ts\":-9223372036854775809,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}",
     -EINVAL, "number too large"},
    {"{\"ts\":99999999999999999999,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}",
     -EINVAL, "number too large"},
    {E("\"type\":\"wear\",\"state\":\"on\",\"unused\":-1e999"), -EINVAL, "number too large"},
    /* UTF-8 */
    {"{\"ts\":1583470800000,\"participant\":\"p\xff\",\"type\":\"wear\",\"state\":\"on\"}",
     -EINVAL, "invalid UTF-8 at byte 37"},
    {E("\"type\":\"app\",\"app\":\"\xc0\xaf\""), -EINVAL, "invalid UTF-8"},      /* overlong */
    {E("\"type\":\"app\",\"app\":\"\xed\xa0\x80\""), -EINVAL, "invalid UTF-8"},  /* surrogate */
    {E("\"type\":\"app\",\"app\":\"\xe2\x82\""), -EINVAL, "invalid UTF-8"},      /* truncated */
    {E("\"type\":\"app\",\"app\":\"\\ud800\""), -EINVAL, "invalid UTF-8: lone surrogate"},
    {E("\"type\":\"app\",\"app\":\"\\udc00x\""), -EINVAL, "lone surrogate"},
    {E("\"type\":\"app\",\"app\":\"a\\u0000b\""), -EINVAL, "\\u0000 in a string"},
    /* ts */
    {"{\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}", -EINVAL,
     "missing field \"ts\""},
    {"{\"ts\":\"1583470800000\",\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}",
     -EINVAL, "\"ts\" must be an integer"},
    {"{\"ts\":1583470800000.5,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}",
     -EINVAL, "\"ts\" must be an integer"},
    {"{\"ts\":null,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}", -EINVAL,
     "\"ts\" must be an integer"},
    {"{\"ts\":true,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}", -EINVAL,
     "\"ts\" must be an integer"},
    {"{\"ts\":1e20,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}", -EINVAL,
     "ts 1e+20 out of range (1900-01-01T00:00:00Z <= ts < 2200-01-01T00:00:00Z)"},
    {"{\"ts\":-2208988800001,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}", -EINVAL,
     "ts -2208988800001 out of range"}, /* 1899-12-31T23:59:59.999Z */
    {"{\"ts\":7258118400000,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}", -EINVAL,
     "ts 7258118400000 out of range"}, /* 2200-01-01 */
    {"{\"ts\":9223372036854775807,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}",
     -EINVAL, "out of range"},
    {"{\"ts\":-9223372036854775808,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}",
     -EINVAL, "out of range"},
    /* ids */
    {"{\"ts\":1583470800000,\"type\":\"wear\",\"state\":\"on\"}", -EINVAL,
     "missing field \"participant\""},
    {"{\"ts\":1583470800000,\"participant\":\"p 01\",\"type\":\"wear\",\"state\":\"on\"}", -EINVAL,
     "participant must match [A-Za-z0-9_-]{1,64}"},
    {"{\"ts\":1583470800000,\"participant\":\"\",\"type\":\"wear\",\"state\":\"on\"}", -EINVAL,
     "participant must match"},
    {"{\"ts\":1583470800000,\"participant\":\"p\\u00e9\",\"type\":\"wear\",\"state\":\"on\"}",
     -EINVAL, "participant must match"},
    {"{\"ts\":1583470800000,\"participant\":\"A-z_012345678901234567890123456789"
     "0123456789012345678901234567895\",\"type\":\"wear\",\"state\":\"on\"}",
     -EINVAL, "participant must match"}, /* 65 characters */
    {"{\"ts\":1583470800000,\"participant\":1,\"type\":\"wear\",\"state\":\"on\"}", -EINVAL,
     "\"participant\" must be a string"},
    {E("\"source\":\"a/b\",\"type\":\"wear\",\"state\":\"on\""), -EINVAL, "source must match"},
    {E("\"source\":null,\"type\":\"wear\",\"state\":\"on\""), -EINVAL,
     "\"source\" must be a string"},
    {E("\"seq\":-1,\"type\":\"wear\",\"state\":\"on\""), -EINVAL, "seq -1 out of range"},
    {E("\"seq\":\"1\",\"type\":\"wear\",\"state\":\"on\""), -EINVAL, "\"seq\" must be an integer"},
    {E("\"seq\":1.5,\"type\":\"wear\",\"state\":\"on\""), -EINVAL, "\"seq\" must be an integer"},
    {E("\"seq\":1e17,\"type\":\"wear\",\"state\":\"on\""), -EINVAL, "write it as an integer"},
    {E("\"seq\":1e19,\"type\":\"wear\",\"state\":\"on\""), -EINVAL, "seq 1e+19 out of range"},
    /* type */
    {E("\"state\":\"on\""), -EINVAL, "missing field \"type\""},
    {E("\"type\":3"), -EINVAL, "\"type\" must be a string"},
    {E("\"type\":\"location\",\"lat\":1"), -ENOENT, "unknown type \"location\""},
    {E("\"type\":\"Screen\",\"state\":\"on\""), -ENOENT, "unknown type \"Screen\""},
    {E("\"type\":\"\\u0007bell\""), -ENOENT, "unknown type \"?bell\""}, /* quoted safely */
    /* per type */
    {E("\"type\":\"screen\""), -EINVAL, "missing field \"state\""},
    {E("\"type\":\"screen\",\"state\":\"x\""), -EINVAL, "unknown screen state \"x\""},
    {E("\"type\":\"screen\",\"state\":4"), -EINVAL, "state 4 out of range (AWARE codes 0..3)"},
    {E("\"type\":\"screen\",\"state\":-1"), -EINVAL, "state -1 out of range"},
    {E("\"type\":\"screen\",\"state\":1.5"), -EINVAL, "\"state\" must be an integer"},
    {E("\"type\":\"screen\",\"state\":true"), -EINVAL, "\"state\" must be a string"},
    {E("\"type\":\"app\""), -EINVAL, "missing field \"app\""},
    {E("\"type\":\"app\",\"app\":\"\""), -EINVAL, "\"app\" must not be empty"},
    {E("\"type\":\"app\",\"app\":\"a\\nb\""), -EINVAL, "\"app\" contains a control character"},
    {E("\"type\":\"app\",\"app\":\"a\",\"state\":\"paused\""), -EINVAL,
     "unknown app state \"paused\""},
    {E("\"type\":\"ema\",\"prompt\":\"m\",\"state\":\"sent\""), -EINVAL,
     "unknown ema state \"sent\""},
    {E("\"type\":\"ema\",\"state\":\"answered\""), -EINVAL, "missing field \"prompt\""},
    {E("\"type\":\"ema\",\"prompt\":\"m\",\"state\":\"answered\",\"items\":[4]"), -EINVAL,
     "ema \"items\" must be an object"},
    {E("\"type\":\"module\",\"module\":\"m\",\"state\":\"done\""), -EINVAL,
     "unknown module state \"done\""},
    {E("\"type\":\"dwai\",\"items\":[1,2,3,4,5]"), -EINVAL, "dwai items must be 6 integers 1..5"},
    {E("\"type\":\"dwai\",\"items\":[1,2,3,4,5,6]"), -EINVAL, "dwai items must be 6 integers 1..5"},
    {E("\"type\":\"dwai\",\"items\":[0,2,3,4,5,5]"), -EINVAL, "dwai items must be 6 integers 1..5"},
    {E("\"type\":\"dwai\",\"items\":[1,2,3,4,5,\"5\"]"), -EINVAL, "dwai items must be 6 integers"},
    {E("\"type\":\"dwai\",\"items\":[1,2,3,4,5,2.5]"), -EINVAL, "dwai items must be 6 integers"},
    {E("\"type\":\"dwai\",\"items\":{\"a\":1}"), -EINVAL, "dwai items must be 6 integers"},
    {E("\"type\":\"dwai\""), -EINVAL, "missing field \"items\""},
    {E("\"type\":\"nudge_ack\",\"nudge\":\"n1\",\"state\":\"clicked\""), -EINVAL,
     "unknown nudge_ack state \"clicked\""},
    {E("\"type\":\"nudge_ack\",\"state\":\"acted\""), -EINVAL, "missing field \"nudge\""},
    {E("\"type\":\"counts\",\"counts\":1"), -EINVAL, "missing field \"epoch_s\""},
    {E("\"type\":\"counts\",\"epoch_s\":0,\"counts\":1"),
     -EINVAL, "epoch_s 0 out of range (1..86400)"},
    {E("\"type\":\"counts\",\"epoch_s\":86401,\"counts\":1"),
     -EINVAL, "epoch_s 86401 out of range"},
    {E("\"type\":\"counts\",\"epoch_s\":7,\"counts\":1"),
     -EINVAL, "epoch_s 7 does not divide 86400"},
    {E("\"type\":\"counts\",\"epoch_s\":60.5,\"counts\":1"),
     -EINVAL, "\"epoch_s\" must be an integer"},
    {E("\"type\":\"counts\",\"epoch_s\":60"), -EINVAL, "missing field \"counts\""},
    {E("\"type\":\"counts\",\"epoch_s\":60,\"counts\":-1"),
     -EINVAL, "counts -1 out of range (>= 0)"},
    {E("\"type\":\"counts\",\"epoch_s\":60,\"counts\":\"12\""),
     -EINVAL, "\"counts\" must be a number"},
    {E("\"type\":\"counts\",\"epoch_s\":60,\"counts\":[1,2]"), -EINVAL,
     "per-axis counts must be 3 numbers [x,y,z]"},
    {E("\"type\":\"counts\",\"epoch_s\":60,\"counts\":[1,2,3,4]"),
     -EINVAL, "per-axis counts must be 3"},
    {E("\"type\":\"counts\",\"epoch_s\":60,\"counts\":[1,2,-3]"),
     -EINVAL, "counts -3 out of range"},
    {E("\"type\":\"counts\",\"epoch_s\":60,\"counts\":[1,null,3]"),
     -EINVAL, "\"counts\" must be a number"},
    {E("\"type\":\"accel\",\"hz\":0,\"g\":[[0,0,1]]"),
     -EINVAL, "hz 0 out of range (0 < hz <= 10000)"},
    {E("\"type\":\"accel\",\"hz\":10001,\"g\":[[0,0,1]]"), -EINVAL, "hz 10001 out of range"},
    {E("\"type\":\"accel\",\"hz\":-5,\"g\":[[0,0,1]]"), -EINVAL, "hz -5 out of range"},
    {E("\"type\":\"accel\",\"g\":[[0,0,1]]"), -EINVAL, "missing field \"hz\""},
    {E("\"type\":\"accel\",\"hz\":50"), -EINVAL, "missing field \"g\""},
    {E("\"type\":\"accel\",\"hz\":50,\"g\":[]"),
     -EINVAL, "accel block has 0 samples (1..4096 allowed)"},
    {E("\"type\":\"accel\",\"hz\":50,\"g\":\"x\""),
     -EINVAL, "\"g\" must be an array of [x,y,z] samples"},
    {E("\"type\":\"accel\",\"hz\":50,\"g\":[0,0,1]"), -EINVAL, "accel sample 0 must be 3 numbers"},
    {E("\"type\":\"accel\",\"hz\":50,\"g\":[[0,0,1],[1,2]]"),
     -EINVAL, "accel sample 1 must be 3 numbers"},
    {E("\"type\":\"accel\",\"hz\":50,\"g\":[[0,\"0\",1]]"),
     -EINVAL, "accel sample 0 must be 3 numbers"},
    {E("\"type\":\"accel\",\"hz\":50,\"g\":[[0,0,1e300]]"), -EINVAL,
     "accel sample 0 value out of range (|g| <= 1000)"},
    {E("\"type\":\"steps\",\"steps\":-1,\"interval_s\":60"),
     -EINVAL, "steps -1 out of range (>= 0)"},
    {E("\"type\":\"steps\",\"steps\":1,\"interval_s\":0"),
     -EINVAL, "interval_s 0 out of range (1..86400)"},
    {E("\"type\":\"steps\",\"steps\":1"), -EINVAL, "missing field \"interval_s\""},
    {E("\"type\":\"hr\",\"bpm\":301"), -EINVAL, "bpm 301 out of range (0..300)"},
    {E("\"type\":\"hr\",\"bpm\":-1"), -EINVAL, "bpm -1 out of range (0..300)"},
    {E("\"type\":\"hr\",\"bpm\":\"60\""), -EINVAL, "\"bpm\" must be a number"},
    {E("\"type\":\"hr\",\"bpm\":60,\"rr_ms\":[0]"),
     -EINVAL, "rr_ms 0 out of range (0 < rr_ms <= 60000)"},
    {E("\"type\":\"hr\",\"bpm\":60,\"rr_ms\":800"),
     -EINVAL, "\"rr_ms\" must be an array of numbers"},
    {E("\"type\":\"hr\",\"bpm\":60,\"rr_ms\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
       "1,1,1,1,"
       "1,1,1,1,1]"),
     -EINVAL, "rr_ms has 33 intervals (at most 32)"},
    {E("\"type\":\"battery\",\"pct\":101"), -EINVAL, "pct 101 out of range (0..100)"},
    {E("\"type\":\"battery\",\"pct\":-0.5"), -EINVAL, "pct -0.5 out of range (0..100)"},
    {E("\"type\":\"battery\""), -EINVAL, "missing field \"pct\""},
    {E("\"type\":\"wear\",\"state\":\"maybe\""), -EINVAL, "unknown wear state \"maybe\""},
    {E("\"type\":\"wear\",\"state\":1"), -EINVAL, "\"state\" must be a string"},
    {E("\"type\":\"tz\",\"tz\":\"../../etc/passwd\""), -EINVAL, "not a plausible IANA zone name"},
    {E("\"type\":\"tz\",\"tz\":\"/etc/localtime\""), -EINVAL, "not a plausible IANA zone name"},
    {E("\"type\":\"tz\",\"tz\":\"Europe/\""), -EINVAL, "not a plausible IANA zone name"},
    {E("\"type\":\"tz\",\"tz\":\"Europe//London\""), -EINVAL, "not a plausible IANA zone name"},
    {E("\"type\":\"tz\",\"tz\":\"Europe/Lon don\""), -EINVAL, "tz \"Europe/Lon don\" is not"},
    {E("\"type\":\"tz\",\"tz\":\"Europe/Lond.n\""), -EINVAL, "not a plausible IANA zone name"},
    {E("\"type\":\"tz\",\"tz\":\"\""), -EINVAL, "not a plausible IANA zone name"},
    {E("\"type\":\"tz\",\"tz\":\"Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""), /* 64 bytes */
     -EINVAL, "at most 63 bytes"},
    {E("\"type\":\"tz\",\"tz\":5"), -EINVAL, "\"tz\" must be a string"},
};

static int printable_ascii(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            return 0;
    return 1;
}

static void expect_reject(const char *line, size_t len, int rc, const char *reason)
{
    struct event ev;
    const char *why = NULL;
    int r = ev_parse_json(line, len, &ev, scratch, &why);
    if (r != rc || !why || !strstr(why, reason) || !printable_ascii(why))
        fail_msg("line %.200s\n  got %d \"%s\"\n  want %d \"%s\"", line, r, why ? why : "(null)",
                 rc, reason);
}

static void test_malformed_lines_are_rejected_with_their_reason(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_reject(bad[i].in, strlen(bad[i].in), bad[i].rc, bad[i].reason);
}

static void test_long_names_are_rejected(void **state)
{
    (void)state;
    char name[EV_NAME_MAX + 2], line[600];
    memset(name, 'a', sizeof name - 1);
    name[EV_NAME_MAX + 1] = 0; /* 256 bytes */
    snprintf(line, sizeof line, "{" P "\"type\":\"app\",\"app\":\"%s\"}", name);
    expect_reject(line, strlen(line), -EINVAL, "\"app\" longer than 255 bytes");
    name[EV_NAME_MAX] = 0; /* 255 bytes: the limit itself is fine */
    snprintf(line, sizeof line,
             "{" P "\"type\":\"module\",\"module\":\"%s\",\"state\":\"started\"}", name);
    struct event ev;
    parse_ok(line, strlen(line), &ev);
    assert_int_equal(strlen(ev.u.module.module), EV_NAME_MAX);
}

static void test_line_length_limit(void **state)
{
    (void)state;
    /* a valid event padded with an ignored field to exactly EV_LINE_MAX bytes is accepted,
     * one byte more is rejected before any parsing */
    const char *head = "{" P "\"type\":\"wear\",\"state\":\"on\",\"pad\":\"";
    size_t len = EV_LINE_MAX;
    char *line = malloc(len + 2);
    assert_non_null(line);
    size_t h = strlen(head);
    memcpy(line, head, h);
    memset(line + h, 'x', len - h - 2);
    memcpy(line + len - 2, "\"}", 2);
    struct event ev;
    parse_ok(line, len, &ev);
    line[len] = ' ';
    expect_reject(line, len + 1, -EMSGSIZE, "line longer than 1048576 bytes");
    free(line);
}

static void test_nul_bytes_are_rejected(void **state)
{
    (void)state;
    static const char in_string[] = "{" P "\"type\":\"app\",\"app\":\"a\0b\"}";
    static const char between[] = "{" P "\"type\":\"wear\",\0\"state\":\"on\"}";
    static const char after[] = "{" P "\"type\":\"wear\",\"state\":\"on\"}\0";
    expect_reject(in_string, sizeof in_string - 1, -EINVAL, "NUL byte at byte 62");
    expect_reject(between, sizeof between - 1, -EINVAL, "NUL byte at byte");
    expect_reject(after, sizeof after - 1, -EINVAL, "NUL byte at byte");
}

static void test_deep_nesting_is_rejected_without_crashing(void **state)
{
    (void)state;
    size_t n = 100000;
    char *line = malloc(n + 64);
    assert_non_null(line);
    memset(line, '[', n);
    expect_reject(line, n, -EINVAL, "nested too deeply");
    /* inside an event, as an ignored field */
    size_t h = (size_t)sprintf(line, "{\"x\":");
    memset(line + h, '[', n - h);
    expect_reject(line, n, -EINVAL, "nested too deeply");
    for (size_t i = 0; i + 5 <= n; i += 5)
        memcpy(line + i, "{\"a\":", 5);
    expect_reject(line, n - n % 5, -EINVAL, "nested too deeply");
    free(line);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

static void test_bad_lines_corpus(void **state)
{
    (void)state;
    char path[4096];
    const char *src = getenv("ENGAGED_SRC");
    size_t jlen, rlen;
    snprintf(path, sizeof path, "%s/tests/data/bad-lines.jsonl", src ? src : "..");
    char *lines = slurp(path, &jlen);
    snprintf(path, sizeof path, "%s/tests/data/bad-lines.reasons", src ? src : "..");
    char *reasons = slurp(path, &rlen);
    assert_non_null(lines);
    assert_non_null(reasons);

    /* index the reasons by line number; '#' lines are comments */
    enum { MAXL = 1000 };
    const char *want[MAXL + 1] = {0};
    for (char *p = strtok(reasons, "\n"); p; p = strtok(NULL, "\n")) {
        char *tab = strchr(p, '\t');
        if (p[0] == '#' || !tab)
            continue;
        long n = strtol(p, NULL, 10);
        assert_true(n >= 1 && n <= MAXL);
        want[n] = tab + 1;
    }

    int lineno = 0;
    for (char *p = lines, *end = lines + jlen; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        assert_true(lineno <= MAXL);
        if (!want[lineno])
            fail_msg("bad-lines.jsonl:%d has no entry in bad-lines.reasons", lineno);
        struct event ev;
        const char *why = NULL;
        int rc = ev_parse_json(p, len, &ev, scratch, &why);
        if (rc != -EINVAL || !strstr(why, want[lineno]))
            fail_msg("bad-lines.jsonl:%d: got %d \"%s\", want \"%s\"", lineno, rc,
                     why ? why : "(null)", want[lineno]);
        want[lineno] = NULL;
        p += len + 1;
    }
    for (int i = 1; i <= MAXL; i++)
        if (want[i])
            fail_msg("bad-lines.reasons names line %d, which bad-lines.jsonl lacks", i);
    assert_true(lineno >= 40);
    free(lines);
    free(reasons);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_lines_are_rejected_with_their_reason),
        cmocka_unit_test(test_long_names_are_rejected),
        cmocka_unit_test(test_line_length_limit),
        cmocka_unit_test(test_nul_bytes_are_rejected),
        cmocka_unit_test(test_deep_nesting_is_rejected_without_crashing),
        cmocka_unit_test(test_bad_lines_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
