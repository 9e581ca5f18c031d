/* The event fast path (pipeline/event_fast.c) changes nothing but speed: on every line,
 * ev_parse_json() (fast path first) and ev_parse_json_slow() (jansson alone) give the same
 * return code, the same reason and the same event, bit for bit; the fast path never claims a
 * line jansson would read differently; and it does take the canonical lines of every type,
 * so it cannot quietly become a no-op. tests/fuzz/fuzz_event_diff.c checks the same on
 * fuzzed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/event.h"
#include "pipeline/event_fast.h"

static float scratch_slow[EV_ACCEL_MAX][3], scratch_fast[EV_ACCEL_MAX][3];

#include "tests/event_identical.h"

struct tally {
    int lines, accepted, fast;
};

/* Checks that both paths agree on one line; counts what the fast path took. */
static void agree(const char *line, size_t len, const char *where, struct tally *t)
{
    struct event slow, fast, both;
    const char *why_slow = NULL, *why_both = NULL;
    char reason[sizeof slow.u.err.why] = "";

    int r_slow = ev_parse_json_slow(line, len, &slow, scratch_slow, &why_slow);
    if (r_slow != 0)
        snprintf(reason, sizeof reason, "%s", why_slow);
    int took = ev_parse_fast(line, len, &fast, scratch_fast);
    if (took && (r_slow != 0 || !identical(&slow, &fast)))
        fail_msg("%s: fast path took a line jansson reads otherwise (%d %s): %.300s", where,
                 r_slow, reason, line);
    int r_both = ev_parse_json(line, len, &both, scratch_fast, &why_both);
    if (r_both != r_slow || (r_slow != 0 && strcmp(reason, why_both) != 0) ||
        (r_slow == 0 && !identical(&slow, &both)))
        fail_msg("%s: paths differ\n  slow %d \"%s\"\n  both %d \"%s\"\n  line %.300s", where,
                 r_slow, reason, r_both, r_both ? why_both : "", line);
    t->lines++;
    t->accepted += r_slow == 0;
    t->fast += took;
}

/* Every line of a buffer, without its "\n" (or "\r\n": the "\r" stays, as readers pass it). */
static void agree_lines(const char *buf, size_t n, const char *where, struct tally *t)
{
    for (const char *p = buf, *end = buf + n; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        agree(p, len, where, t);
        p += len + 1;
    }
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

static const char *src_path(const char *rel, char *buf, size_t cap)
{
    const char *src = getenv("ENGAGED_SRC");
    snprintf(buf, cap, "%s/%s", src ? src : "..", rel);
    return buf;
}

/* ---- the committed inputs ---- */

static void test_fuzz_corpus_agrees(void **state)
{
    (void)state;
    char dir[4096], path[8192];
    struct tally t = {0};
    DIR *d = opendir(src_path("tests/fuzz/corpus_event", dir, sizeof dir));
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        size_t n;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *buf = slurp(path, &n);
        agree(buf, n, path, &t); /* as the fuzzer feeds it: the whole file */
        agree_lines(buf, n, path, &t);
        free(buf);
    }
    closedir(d);
    assert_true(t.lines >= 30);
    assert_true(t.fast > 0);
}

static void test_bad_lines_agree(void **state)
{
    (void)state;
    char path[4096];
    size_t n;
    struct tally t = {0};
    char *buf = slurp(src_path("tests/data/bad-lines.jsonl", path, sizeof path), &n);
    agree_lines(buf, n, "bad-lines.jsonl", &t);
    assert_true(t.lines >= 40);
    assert_int_equal(t.accepted, 0);
    free(buf);
}

static void test_demo_recording_agrees_and_takes_the_fast_path(void **state)
{
    (void)state;
    char path[4096];
    size_t n;
    struct tally t = {0};
    char *buf = slurp(src_path("demo/demo.jsonl", path, sizeof path), &n);
    agree_lines(buf, n, "demo.jsonl", &t);
    assert_true(t.lines >= 1000);
    assert_true(t.fast >= t.accepted * 9 / 10); /* plain lines: nearly all take it */
    free(buf);
}

/* ---- generated lines ---- */

struct kv {
    const char *k, *v; /* key, and the value as JSON text */
};

/* Valid events of every type and every state, as key/value pairs. */
static const struct kv events[][8] = {
    {{"type", "\"screen\""}, {"state", "\"off\""}},
    {{"type", "\"screen\""}, {"state", "\"unlocked\""}},
    {{"type", "\"screen\""}, {"state", "3"}},
    {{"type", "\"app\""}, {"app", "\"org.example.mindapp\""}},
    {{"type", "\"app\""}, {"app", "\"com.x\""}, {"state", "\"background\""}},
    {{"type", "\"ema\""}, {"prompt", "\"mood-am\""}, {"state", "\"answered\""},
     {"items", "{\"mood\":4,\"note\":\"ok\"}"}},
    {{"type", "\"ema\""}, {"prompt", "\"p\""}, {"state", "\"displayed\""}},
    {{"type", "\"module\""}, {"module", "\"sleep-1\""}, {"state", "\"completed\""}},
    {{"type", "\"dwai\""}, {"items", "[1,2,3,4,5,5]"}},
    {{"type", "\"nudge_ack\""}, {"nudge", "\"n-1\""}, {"state", "\"dismissed\""}},
    {{"type", "\"counts\""}, {"epoch_s", "60"}, {"counts", "123.5"}},
    {{"type", "\"counts\""}, {"epoch_s", "15"}, {"counts", "[12,310,7.25]"}},
    {{"type", "\"accel\""}, {"hz", "30"}, {"g", "[[0.01,-0.98,0.06],[0,1,-0.0]]"}},
    {{"type", "\"steps\""}, {"steps", "42"}, {"interval_s", "60"}},
    {{"type", "\"hr\""}, {"bpm", "71.5"}, {"rr_ms", "[840,812.25]"}},
    {{"type", "\"hr\""}, {"bpm", "60"}},
    {{"type", "\"battery\""}, {"pct", "87"}},
    {{"type", "\"wear\""}, {"state", "\"on\""}},
    {{"type", "\"tz\""}, {"tz", "\"America/New_York\""}},
};
#define N_EVENTS (sizeof events / sizeof events[0])

static const struct kv envelope[] = {
    {"ts", "1583470800000"}, {"participant", "\"p01\""}, {"source", "\"band-p01\""},
    {"seq", "41"},
};

/* Spellings put in place of each value in turn: numbers of every shape (Clinger's exact
 * cases, strtod's, overflow, underflow, bad syntax), strings of every kind, other types. */
static const char *const values[] = {
    "0", "-0", "1", "2", "3", "5", "60", "-1", "100", "300", "301", "1.0", "1e0", "1E2",
    "5.0", "2.5e+1", "0.5", "-0.0", "71.5", "0.1", "1e-7", "1e22", "1e23", "1e-22", "1e-23",
    "9007199254740992", "9007199254740993", "9007199254740993.0", "123456789012345678",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "-9223372036854775809", "18446744073709551616", "1583470800000.0", "1583470800000.5",
    "1.7976931348623157e308", "1.8e308", "1e400", "-1e400", "4.9e-324", "2e-324", "1e-400",
    "0.30000000000000004", "12345678901234567890.5", "0.000000000000000000000000001",
    "01", "1.", ".5", "+1", "1e", "1e+", "-", "0x10", "NaN", "Infinity", "1.5.3",
    "\"\"", "\"on\"", "\"off\"", "\"p02\"", "\"a b\"", "\"caf\xc3\xa9\"", "\"\xf0\x9d\x84\x9e\"",
    "\"\xe2\x82\xac x\"", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
    "\"\xe2\x82\"", "\"\x7f\"", "\"a\x01\"", "\"a\\u0041\"", "\"\\u00e9\"", "\"a\\\"b\"",
    "\"Europe//x\"", "\"/UTC\"", "\"Etc/GMT+5\"", "\"foreground\"", "\"1583470800000\"",
    "true", "false", "null", "nul", "{}", "{\"a\":1,\"a\":2}", "[]", "[1]", "[1,2,3]",
    "[1,2,3,4,5,6]", "[5,5,5,5,5,5.0]", "[[1,2,3]]", "[[1,2,3],[4,5]]", "[[[1]]]",
    "[1,\"2\",3]", "[1,2,]", "[1 2]", "[0.5,1e-3,2E+2]", "[[1000,-1000,1e-45]]",
    "[[1000.0000001,0,0]]",
};
#define N_VALUES (sizeof values / sizeof values[0])

/* Extra keys the format ignores, as they come from other writers (and broken ones). */
static const char *const extras[] = {
    "",
    ",\"x\":1",
    ",\"x\":{\"a\":[1,{\"b\":null}],\"c\":\"d\"}",
    ",\"x\":1e300,\"y\":[true,false,null]",
    ",\"x\":1e400",
    ",\"x\":18446744073709551616",
    ",\"x\":1,\"x\":2",
    ",\"x\":{\"a\":1,\"a\":2}",
    ",\"\":\"\",\"\xc3\xa9\":\"\xc3\xa9\"",
    ",\"x\\u0041\":1",
    ",\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
    ",\"ts\":1583470800000",
    ",\"type\":\"wear\"",
};
#define N_EXTRAS (sizeof extras / sizeof extras[0])

struct line {
    char buf[4096];
    size_t len;
};

static void add(struct line *l, const char *s)
{
    size_t n = strlen(s);
    assert_true(l->len + n < sizeof l->buf);
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* One line from pairs in the given order, with ws around the punctuation. */
static void build(struct line *l, const char *bom, const struct kv *kv, size_t n,
                  const size_t *order, const char *ws, const char *extra, const char *tail)
{
    l->len = 0;
    add(l, bom);
    add(l, ws);
    add(l, "{");
    for (size_t i = 0; i < n; i++) {
        const struct kv *p = &kv[order[i]];
        if (i)
            add(l, ",");
        add(l, ws);
        add(l, "\"");
        add(l, p->k);
        add(l, "\"");
        add(l, ws);
        add(l, ":");
        add(l, ws);
        add(l, p->v);
        add(l, ws);
    }
    add(l, extra);
    add(l, "}");
    add(l, tail);
}

/* The pairs of event e behind the envelope; returns the count. */
static size_t pairs(size_t e, int with_source, struct kv *out)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof envelope / sizeof envelope[0]; i++)
        if (with_source || i < 2)
            out[n++] = envelope[i];
    for (size_t i = 0; i < 8 && events[e][i].k; i++)
        out[n++] = events[e][i];
    return n;
}

static void test_generated_lines_agree(void **state)
{
    (void)state;
    static const char *const spaces[] = {"", " ", "\t", "\r\n "};
    static const char *const tails[] = {"", " ", "\r", "\n", "x", "}", "{}", "NUL"};
    struct line l;
    struct kv kv[16];
    size_t order[16];
    struct tally t = {0};

    for (size_t e = 0; e < N_EVENTS; e++) {
        for (int src = 0; src < 2; src++) {
            size_t n = pairs(e, src, kv);
            /* shapes: order, whitespace, BOM, ignored keys, text after the object */
            for (int shape = 0; shape < 3 * 4 * 2 * (int)N_EXTRAS; shape++) {
                int ord = shape % 3, ws = shape / 3 % 4, bom = shape / 12 % 2;
                size_t x = (size_t)shape / 24;
                for (size_t i = 0; i < n; i++)
                    order[i] = ord == 0 ? i : ord == 1 ? n - 1 - i : (i + 3) % n;
                build(&l, bom ? "\xef\xbb\xbf" : "", kv, n, order, spaces[ws], extras[x], "");
                agree(l.buf, l.len, "generated shape", &t);
            }
            for (size_t i = 0; i < n; i++)
                order[i] = i;
            for (size_t k = 0; k < sizeof tails / sizeof tails[0]; k++) {
                int nul = strcmp(tails[k], "NUL") == 0;
                build(&l, "", kv, n, order, "", "", nul ? "" : tails[k]);
                if (nul)
                    l.buf[l.len++] = 0;
                agree(l.buf, l.len, "generated tail", &t);
            }
            /* every value replaced by every spelling in turn; every key duplicated */
            for (size_t i = 0; i < n; i++) {
                struct kv saved = kv[i];
                for (size_t v = 0; v < N_VALUES; v++) {
                    kv[i].v = values[v];
                    build(&l, "", kv, n, order, "", "", "");
                    agree(l.buf, l.len, "generated value", &t);
                }
                kv[i] = saved;
                kv[n] = saved;
                order[n] = n;
                build(&l, "", kv, n + 1, order, "", "", "");
                agree(l.buf, l.len, "generated duplicate", &t);
            }
        }
    }
    print_message("generated: %d lines, %d accepted, %d by the fast path\n", t.lines,
                  t.accepted, t.fast);
    assert_true(t.fast > 1000);
    assert_true(t.accepted > t.fast); /* some valid lines were left to jansson */
}

/* Numbers as generated by writers: Clinger's exact cases and strtod's, compared bit for bit
 * (counts keeps the double as parsed). */
static void test_random_numbers_convert_exactly(void **state)
{
    (void)state;
    uint64_t r = 88172645463325252ULL;
    struct tally t = {0};
    char digits[32], num[64], line[256];
    for (int i = 0; i < 200000; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17; /* xorshift64 */
        uint64_t bits = r;
        int nd = 1 + (int)(bits % 20), dot = (int)(bits / 20 % (uint64_t)nd); /* 0: none */
        int e = (int)(bits >> 16 & 63) - 32, zero_lead = (bits >> 22 & 3) == 0;
        size_t p = 0;
        bits >>= 24;
        for (int k = 0; k < nd; k++, bits = bits * 6364136223846793005ULL + 1) {
            if (k == dot && k > 0)
                digits[p++] = '.';
            /* no leading zero unless it stands alone before the point ("0.5") */
            int lead_ok = k > 0 || (zero_lead && dot == 1);
            digits[p++] = (char)('0' + (lead_ok || nd == 1 ? bits >> 60 : 1 + (bits >> 60) % 9) % 10);
        }
        digits[p] = 0;
        switch ((r >> 40) % 3) {
        case 0: snprintf(num, sizeof num, "%s", digits); break;
        case 1: snprintf(num, sizeof num, "%se%d", digits, e); break;
        default: snprintf(num, sizeof num, "%sE%+d", digits, e); break;
        }
        snprintf(line, sizeof line,
                 "{\"ts\":1583470800000,\"participant\":\"p01\",\"type\":\"counts\","
                 "\"epoch_s\":60,\"counts\":%s}",
                 num);
        agree(line, strlen(line), "random number", &t);
    }
    print_message("numbers: %d lines, %d accepted, %d by the fast path\n", t.lines, t.accepted,
                  t.fast);
    assert_true(t.fast > t.lines / 2);
}

/* The canonical form of every type must take the fast path. */
static void test_canonical_lines_of_every_type_take_the_fast_path(void **state)
{
    (void)state;
    int seen[EV__COUNT] = {0};
    struct line l;
    struct kv kv[16];
    size_t order[16];
    for (size_t e = 0; e < N_EVENTS; e++) {
        struct event ev, fast;
        const char *why = NULL;
        size_t n = pairs(e, 1, kv);
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        build(&l, "", kv, n, order, "", "", "");
        if (ev_parse_json_slow(l.buf, l.len, &ev, scratch_slow, &why) != 0)
            fail_msg("generated event rejected: %s: %.*s", why, (int)l.len, l.buf);
        char *canon = ev_to_json(&ev);
        assert_non_null(canon);
        assert_int_equal(ev_parse_json_slow(canon, strlen(canon), &ev, scratch_slow, &why), 0);
        if (!ev_parse_fast(canon, strlen(canon), &fast, scratch_fast) || !identical(&ev, &fast))
            fail_msg("fast path did not take the canonical line %s", canon);
        seen[ev.type] = 1;
        free(canon);
    }
    for (int type = 0; type < EV__COUNT; type++)
        if (!seen[type])
            fail_msg("no canonical line of type %s was tried", ev_type_name((enum ev_type)type));
}

/* Valid lines outside the fast path's shape are left to jansson, and still read the same. */
static void test_lines_beyond_the_fast_path_go_to_jansson(void **state)
{
    (void)state;
    struct tally t = {0};
    struct line l = {.len = 0};
    const char *P = "{\"ts\":1583470800000,\"participant\":\"p01\",";

    static const char *const lines[] = {
        "{\"ts\":1583470800000,\"participant\":\"p01\",\"type\":\"app\",\"app\":\"caf\\u00e9\"}",
        "{\"ts\":1583470800000,\"participant\":\"p\\u0030\",\"type\":\"wear\",\"state\":\"on\"}",
        ("{\"ts\":1583470800000,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\","
         "\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}"), /* one line, written on two */
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        struct event ev;
        assert_int_equal(ev_parse_fast(lines[i], strlen(lines[i]), &ev, scratch_fast), 0);
        agree(lines[i], strlen(lines[i]), "beyond", &t);
    }
    /* an accel block longer than the fast path keeps */
    add(&l, P);
    add(&l, "\"type\":\"accel\",\"hz\":50,\"g\":[");
    for (int i = 0; i < 100; i++)
        add(&l, i ? ",[0.5,-1,0.25]" : "[0.5,-1,0.25]");
    add(&l, "]}");
    struct event ev;
    assert_int_equal(ev_parse_fast(l.buf, l.len, &ev, scratch_fast), 0);
    agree(l.buf, l.len, "long accel", &t);
    /* many ignored keys */
    l.len = 0;
    add(&l, P);
    add(&l, "\"type\":\"wear\",\"state\":\"on\"");
    for (int i = 0; i < 20; i++) {
        char kv[32];
        snprintf(kv, sizeof kv, ",\"x%d\":%d", i, i);
        add(&l, kv);
    }
    add(&l, "}");
    assert_int_equal(ev_parse_fast(l.buf, l.len, &ev, scratch_fast), 0);
    agree(l.buf, l.len, "many keys", &t);
    assert_int_equal(t.accepted, t.lines);
}

/* ---- the lexer's own paths (pipeline/event_fast.c) ---- */

/* agree() on an exact-size copy of the line, so that ASan sees any read past its end. */
static void agree_exact(const char *line, size_t n, const char *where, struct tally *t)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, line, n);
    agree(copy, n, where, t);
    free(copy);
}

/* One line around a value: the string or number under test is the app name, the counts,
 * the participant... so that the same bytes are read by every path of the lexer: near the
 * start of a line, in its middle, and in its last eight bytes (tail), in lines shorter than
 * eight bytes too. Each is checked against jansson. */
static void agree_in_lines(const char *value, struct tally *t)
{
    static const struct { const char *before, *after; } frames[] = {
        {"{\"ts\":1583470800000,\"participant\":\"p01\",\"type\":\"app\",\"app\":", "}"},
        {"{\"ts\":1583470800000,\"participant\":\"p01\",\"type\":\"app\",\"app\":",
         ",\"state\":\"background\"}"},
        {"{\"app\":", ",\"ts\":1583470800000,\"participant\":\"p01\",\"type\":\"app\"}"},
        {"{\"ts\":1583470800000,\"participant\":\"p01\",\"type\":\"counts\",\"epoch_s\":60,"
         "\"counts\":", "}"},
        {"{\"ts\":", ",\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\"}"},
        {"{\"ts\":1583470800000,\"participant\":\"p01\",\"seq\":",
         ",\"type\":\"wear\",\"state\":\"on\"}"},
        {"{\"ts\":1583470800000,\"participant\":", ",\"type\":\"wear\",\"state\":\"on\"}"},
        {"{\"ts\":1583470800000,\"participant\":\"p01\",\"type\":\"screen\",\"state\":", "}"},
        {"{\"ts\":1583470800000,\"participant\":\"p01\",\"type\":", ",\"state\":\"on\"}"},
        {"{\"ts\":1583470800000,\"participant\":\"p01\",\"type\":\"wear\",\"state\":\"on\","
         "\"x\":", "}"},
        {"{\"x\":", "}"},
        {"", ""},
    };
    char line[512];
    for (size_t f = 0; f < sizeof frames / sizeof frames[0]; f++) {
        int n = snprintf(line, sizeof line, "%s%s%s", frames[f].before, value, frames[f].after);
        assert_true(n > 0 && (size_t)n < sizeof line);
        agree_exact(line, (size_t)n, "lexer", t);
        for (size_t cut = 1; cut < 12 && cut < (size_t)n; cut++) /* lines ending early */
            agree_exact(line, (size_t)n - cut, "lexer, cut", t);
    }
}

/* Strings of every length up to 40, with each kind of special byte at each position:
 * escapes, control characters, DEL, well-formed and malformed UTF-8, a quote. */
static void test_strings_at_every_offset(void **state)
{
    (void)state;
    static const char *const specials[] = {
        "\\\"", "\\\\", "\\u0041", "\\n", "\x01", "\x1f", "\x7f", "\t",
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9d\x84\x9e", "\xed\x9f\xbf", "\xf4\x8f\xbf\xbf",
        "\xc0\xaf", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "\x80",
        "\xf0\x9d\x84", "\"", "}", "a",
    };
    struct tally t = {0};
    char value[128];
    for (size_t len = 0; len <= 40; len++) {
        for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
            for (size_t at = 0; at <= len; at += len < 12 ? 1 : 5) {
                size_t n = 0;
                value[n++] = '"';
                for (size_t i = 0; i < at; i++)
                    value[n++] = (char)('a' + i % 26);
                n += (size_t)snprintf(value + n, sizeof value - n, "%s", specials[k]);
                for (size_t i = at; i < len; i++)
                    value[n++] = (char)('A' + i % 26);
                value[n++] = '"';
                value[n] = 0;
                agree_in_lines(value, &t);
                value[n - 1] = 0; /* and without its closing quote */
                agree_in_lines(value, &t);
            }
        }
    }
    print_message("strings: %d lines, %d accepted, %d by the fast path\n", t.lines, t.accepted,
                  t.fast);
    assert_true(t.fast > 1000);
}

/* Integers of 1 to 22 digits (the eight-digit step, 19 digits, int64's limits, 2^53),
 * signs, leading zeros, and what may follow the digits: a fraction, an exponent, or bytes
 * that end the number inside the eight bytes read at once. */
static void test_integers_of_every_length(void **state)
{
    (void)state;
    static const char *const fixed[] = {
        "0", "-0", "00", "-00", "01", "-01", "0.0", "-0.0", "0e0", "-0E-0", "1e0", "1E+2",
        "9007199254740992", "9007199254740993", "-9007199254740993", "9007199254740993.0",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808",
        "-9223372036854775809", "9999999999999999999", "10000000000000000000",
        "18446744073709551615", "18446744073709551616", "99999999999999999999999",
        "12345678", "123456789", "1234567.", "1234567e", "12345678e1", "1234567-", "-12345678",
        "1583470800000", "1583470800000.0", "1583470800000.5", "1.5834708e12", "158347080000e1",
        "0.30000000000000004", "12345678901234567", "1234567890123456.7", "1.7976931348623157e308",
        "4.9e-324", "2.2250738585072014e-308", "123456789012345678901234567890e-10", "1e22",
        "1e23", "9007199254740993e-5", "5e-324", "0.1e1", "-", "--1", "+1", "1.", ".1", "1e",
        "1e+", "0x1", "1_0", "١", "12345678\xc3\xa9",
    };
    struct tally t = {0};
    char num[64];
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        agree_in_lines(fixed[i], &t);
    for (int digits = 1; digits <= 22; digits++) {
        for (int lead = 1; lead <= 9; lead += 4) {
            for (int neg = 0; neg < 2; neg++) {
                for (int tail = 0; tail < 6; tail++) {
                    static const char *const tails[] = {"", ".5", "e2", "E-1", "x", " "};
                    size_t n = 0;
                    if (neg)
                        num[n++] = '-';
                    num[n++] = (char)('0' + lead);
                    for (int d = 1; d < digits; d++)
                        num[n++] = (char)('0' + (d * 7 + lead) % 10);
                    snprintf(num + n, sizeof num - n, "%s", tails[tail]);
                    agree_in_lines(num, &t);
                }
            }
        }
    }
    print_message("integers: %d lines, %d accepted, %d by the fast path\n", t.lines, t.accepted,
                  t.fast);
    assert_true(t.fast > 1000);
}

/* Every key, type and state name through the lookups, and names that nearly match them. */
static void test_names_and_near_misses(void **state)
{
    (void)state;
    struct tally t = {0};
    char name[64], line[256];
    for (int k = 0; k < EVK__COUNT; k++) {
        const char *key = ev_key_name((enum ev_key)k);
        size_t n = strlen(key);
        assert_int_equal(ev_key_from_name(key, n), k);
        /* a prefix, an extension, a changed first, middle or last byte */
        assert_int_equal(ev_key_from_name(key, n - 1) == k, 0);
        snprintf(name, sizeof name, "%sx", key);
        assert_int_equal(ev_key_from_name(name, n + 1) == k, 0);
        for (size_t at = 0; at < n; at += n > 2 ? n / 2 : 1) {
            snprintf(name, sizeof name, "%s", key);
            name[at] ^= 0x20;
            assert_int_equal(ev_key_from_name(name, n), -1);
            /* as a key in a line, quoted: an unknown key to both parsers */
            snprintf(line, sizeof line,
                     "{\"ts\":1583470800000,\"participant\":\"p01\",\"type\":\"wear\","
                     "\"state\":\"on\",\"%s\":1}", name);
            agree_exact(line, strlen(line), "near key", &t);
        }
        /* the key with whitespace before its colon, and at the end of a short line */
        snprintf(line, sizeof line,
                 "{\"ts\":1583470800000,\"participant\":\"p01\",\"type\":\"wear\","
                 "\"state\":\"on\",\"%s\" :1}", key);
        agree_exact(line, strlen(line), "key, space", &t);
        snprintf(line, sizeof line, "{\"%s\":1}", key);
        agree_exact(line, strlen(line), "key, short line", &t);
    }
    for (int type = 0; type < EV__COUNT; type++) {
        const char *tn = ev_type_name((enum ev_type)type);
        size_t n = strlen(tn);
        assert_int_equal(ev_type_from_bytes(tn, n), type);
        assert_int_equal(ev_type_from_bytes(tn, n - 1) == type, 0);
        snprintf(name, sizeof name, "%s_", tn);
        assert_int_equal(ev_type_from_bytes(name, n + 1), -1);
        snprintf(name, sizeof name, "%s", tn);
        name[n - 1] ^= 0x20;
        assert_int_equal(ev_type_from_bytes(name, n), -1);
        for (int st = 0; ev_state_name((enum ev_type)type, st); st++) {
            const char *sn = ev_state_name((enum ev_type)type, st);
            size_t m = strlen(sn);
            assert_int_equal(ev_state_from_bytes((enum ev_type)type, sn, m), st);
            assert_int_equal(ev_state_from_name((enum ev_type)type, sn), st);
            assert_int_equal(ev_state_from_bytes((enum ev_type)type, sn, m - 1) == st, 0);
            snprintf(name, sizeof name, "%s%s", sn, "__________");
            for (size_t extra = 1; extra <= 10; extra++)
                assert_int_equal(ev_state_from_bytes((enum ev_type)type, name, m + extra), -1);
            snprintf(name, sizeof name, "%s", sn);
            name[m - 1] ^= 0x20;
            assert_int_equal(ev_state_from_bytes((enum ev_type)type, name, m), -1);
            snprintf(line, sizeof line,
                     "{\"ts\":1583470800000,\"participant\":\"p01\",\"type\":\"%s\","
                     "\"app\":\"a\",\"prompt\":\"q\",\"module\":\"m\",\"nudge\":\"n\","
                     "\"state\":\"%s\"}", tn, name);
            agree_exact(line, strlen(line), "near state", &t);
        }
    }
    assert_int_equal(ev_type_from_bytes("", 0), -1);
    assert_int_equal(ev_state_from_bytes(EV_SCREEN, "", 0), -1);
    assert_int_equal(ev_state_from_bytes(EV_TZ, "on", 2), -1); /* a type without states */
    /* ids: every byte value at the start, middle and end; lengths 0, 1, 64, 65 */
    char dst[EV_ID_MAX + 1];
    for (int c = 1; c < 256; c++) {
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-';
        for (int at = 0; at < 3; at++) {
            char id[4] = "abc";
            id[at] = (char)c;
            assert_int_equal(ev_copy_id(dst, id, 3), ok);
            assert_int_equal(ev_valid_id(id), ok);
            assert_memory_equal(dst, id, 4);
        }
    }
    memset(name, 'a', sizeof name);
    assert_int_equal(ev_copy_id(dst, name, 0), 0);
    assert_int_equal(ev_copy_id(dst, name, 1), 1);
    assert_int_equal(ev_copy_id(dst, name, EV_ID_MAX), 1);
    assert_int_equal(strlen(dst), EV_ID_MAX);
    assert_int_equal(ev_copy_id(dst, name, EV_ID_MAX + 1), 0);
    assert_true(t.accepted > 0 && t.accepted < t.lines);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_corpus_agrees),
        cmocka_unit_test(test_bad_lines_agree),
        cmocka_unit_test(test_demo_recording_agrees_and_takes_the_fast_path),
        cmocka_unit_test(test_generated_lines_agree),
        cmocka_unit_test(test_random_numbers_convert_exactly),
        cmocka_unit_test(test_canonical_lines_of_every_type_take_the_fast_path),
        cmocka_unit_test(test_lines_beyond_the_fast_path_go_to_jansson),
        cmocka_unit_test(test_strings_at_every_offset),
        cmocka_unit_test(test_integers_of_every_length),
        cmocka_unit_test(test_names_and_near_misses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
