/* drivers/file_awd.c: the four Actiwatch files of shared/data/actigraphy (epoch counts, times,
 * values read off the files with a text tool), time zones, and bad input written to a temporary
 * directory: every problem is an open() error or a READ_BAD with its line, never a crash. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/reader.h"
#include "pipeline/event.h"
#include "pipeline/tz.h"

static char tmpdir[64];
static struct tz_db *tzdb;

static int64_t at(int64_t y, unsigned mo, unsigned d, int hh, int mi)
{
    return (civil_to_days(y, mo, d) * 86400 + hh * 3600 + mi * 60) * INT64_C(1000);
}

struct bad {
    uint64_t line;
    char why[128];
};

struct run {
    int open_rc;
    char open_why[256];
    double *counts;
    int64_t first_ts, last_ts;
    int64_t prev_ts, max_step, min_step;
    size_t n, cap;
    int epoch_s, seq_ok;
    int64_t seq0;
    char participant[EV_ID_MAX + 1], source[EV_ID_MAX + 1];
    struct bad bad[16];
    size_t n_bad;
};

static void run_free(struct run *r)
{
    free(r->counts);
    memset(r, 0, sizeof *r);
}

static void run(const char *path, const char *format, const char *pid, const char *zone,
                struct run *out)
{
    memset(out, 0, sizeof *out);
    struct reader_opts o = {.participant = pid};
    if (zone) {
        int err = 0;
        o.zone = tz_db_get(tzdb, zone, &err);
        assert_non_null(o.zone);
    }
    struct reader r;
    out->open_rc = reader_open(&r, path, format, &o);
    if (out->open_rc < 0) {
        snprintf(out->open_why, sizeof out->open_why, "%s", r.why ? r.why : "");
        return;
    }
    assert_string_equal(r.ops->name, "awd");
    struct event ev;
    int k;
    out->seq_ok = 1;
    out->min_step = INT64_MAX;
    while ((k = r.ops->next(&r, &ev)) != READ_EOF) {
        assert_true(k > 0);
        if (k == READ_BAD) {
            assert_non_null(r.why);
            if (out->n_bad < 16) {
                out->bad[out->n_bad].line = r.line;
                snprintf(out->bad[out->n_bad].why, sizeof out->bad[0].why, "%s", r.why);
            }
            out->n_bad++;
            continue;
        }
        assert_int_equal(k, READ_EVENT);
        assert_int_equal(ev.type, EV_COUNTS);
        assert_true(ev.has_seq);
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 1024;
            out->counts = realloc(out->counts, out->cap * sizeof *out->counts);
        }
        if (out->n == 0) {
            out->first_ts = ev.ts;
            out->epoch_s = ev.u.counts.epoch_s;
            snprintf(out->participant, sizeof out->participant, "%s", ev.participant);
            snprintf(out->source, sizeof out->source, "%s", ev.source);
        } else {
            int64_t step = ev.ts - out->prev_ts;
            out->max_step = step > out->max_step ? step : out->max_step;
            out->min_step = step < out->min_step ? step : out->min_step;
        }
        /* seq counts device-clock seconds: ts - first = (seq - first seq) s */
        if (out->n == 0)
            out->seq0 = ev.seq;
        out->seq_ok &= ev.ts - out->first_ts == (ev.seq - out->seq0) * INT64_C(1000);
        out->prev_ts = out->last_ts = ev.ts;
        out->counts[out->n++] = ev.u.counts.counts;
    }
    reader_close(&r);
}

static void shared_path(char *buf, size_t n, const char *name)
{
    const char *s = getenv("ENGAGED_SHARED");
    snprintf(buf, n, "%s/data/actigraphy/%s", s ? s : "../../shared", name);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_awd.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    tzdb = tz_db_new(NULL);
    return tzdb ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        return -1;
    tz_db_free(tzdb);
    return 0;
}

static const char *write_tmp(const char *name, const char *text, size_t len)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    return path;
}

static const char *write_str(const char *name, const char *text)
{
    return write_tmp(name, text, strlen(text));
}

static void test_reference_files(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        size_t n;
        int64_t y;
        unsigned mo, d;
        int hh, mi;
        double v[5];
    } ref[] = {
        {"example_01.AWD", 18401, 1918, 1, 23, 13, 58, {0, 0, 0, 149, 144}},
        {"example_02.AWD", 18413, 1918, 1, 23, 13, 52, {0, 0, 0, 0, 160}},
        {"example_03.AWD", 21456, 1918, 1, 23, 14, 3, {120, 165, 0, 4760, 4338}},
        {"test_sample.AWD", 11718, 2018, 1, 1, 8, 30, {0, 0, 0, 0, 0}},
    };
    char path[512];
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        struct run r;
        shared_path(path, sizeof path, ref[i].file);
        run(path, NULL, "p1", NULL, &r); /* detected by its header */
        assert_int_equal(r.open_rc, 0);
        assert_int_equal(r.n_bad, 0);
        assert_int_equal(r.n, ref[i].n);
        assert_int_equal(r.epoch_s, 60);
        assert_true(r.seq_ok);
        assert_string_equal(r.participant, "p1");
        assert_string_equal(r.source, "awd");
        int64_t t0 = at(ref[i].y, ref[i].mo, ref[i].d, ref[i].hh, ref[i].mi);
        assert_int_equal(r.first_ts, t0);
        assert_int_equal(r.last_ts, t0 + (int64_t)(ref[i].n - 1) * 60000);
        assert_int_equal(r.min_step, 60000);
        assert_int_equal(r.max_step, 60000);
        for (int k = 0; k < 5; k++)
            assert_true(r.counts[k] == ref[i].v[k]);
        assert_true(r.counts[r.n - 1] == 0);
        if (i == 0) {
            /* seq: device-clock seconds since 0001-01-01 (Python: (date(1918, 1, 23) -
             * date(1, 1, 1)).days * 86400 + 13 * 3600 + 58 * 60) */
            assert_int_equal(r.seq0, INT64_C(60496552680));
            assert_true(r.counts[1190] == 71); /* "71 M": the marker is ignored */
            assert_true(r.counts[10000] == 212);
        }
        if (i == 3) {
            assert_int_equal(r.seq0, INT64_C(63650392200));
            assert_true(r.counts[4999] == 641);
        }
        run_free(&r);
    }
}

static void test_zones(void **state)
{
    (void)state;
    char path[512];
    struct run r;
    shared_path(path, sizeof path, "test_sample.AWD");
    run(path, "awd", "p1", "America/New_York", &r); /* 08:30 EST */
    assert_int_equal(r.first_ts, at(2018, 1, 1, 13, 30));
    run_free(&r);
    run(path, "awd", "p1", "Europe/Paris", &r); /* 08:30 CET */
    assert_int_equal(r.first_ts, at(2018, 1, 1, 7, 30));
    run_free(&r);
    /* across the spring-forward at 02:00 the device keeps logging every minute: no gap */
    const char *p = write_str("dst.AWD", "x\n25-Mar-2018\n01:58\n4\n0\nV1\nX\n1\n2\n3\n4\n");
    run(p, "awd", "p1", "Europe/Paris", &r);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.first_ts, at(2018, 3, 25, 0, 58));
    assert_int_equal(r.last_ts, at(2018, 3, 25, 1, 1));
    run_free(&r);
}

static void test_codes_and_lines(void **state)
{
    (void)state;
    static const struct {
        const char *code;
        int epoch_s;
    } codes[] = {{"1", 15}, {" 2 ", 30}, {"8", 120}, {"20", 300}, {"81", 2}, {"C1", 5}, {"c2", 10}};
    char text[256];
    struct run r;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        snprintf(text, sizeof text, "s\r\n01-Jan-2018\r\n00:00\r\n%s\r\n0\r\nL1\r\nF\r\n5\r\n",
                 codes[i].code);
        run(write_str("code.AWD", text), NULL, "p1", NULL, &r);
        assert_int_equal(r.open_rc, 0);
        assert_int_equal(r.epoch_s, codes[i].epoch_s);
        run_free(&r);
    }
    /* second channel, marker, blanks around, blank lines (skipped, no epoch), no final newline */
    run(write_str("lines.AWD", "s\n01-jan-2018\n23:59:30\n4\n0\nL1\nF\n"
                               "  7 , 12.5 M \n\n8,3\n9 M\n\n\n10"),
        "awd", "p1", NULL, &r);
    assert_int_equal(r.n_bad, 0);
    assert_int_equal(r.n, 4);
    assert_true(r.counts[0] == 7 && r.counts[1] == 8 && r.counts[2] == 9 && r.counts[3] == 10);
    assert_int_equal(r.first_ts, at(2018, 1, 1, 23, 59) + 30000);
    assert_int_equal(r.last_ts, r.first_ts + 3 * 60000);
    run_free(&r);
}

static void expect_open_error(const char *name, const char *text, size_t len, const char *pid,
                              const char *format, const char *why_part)
{
    struct run r;
    run(write_tmp(name, text, len), format, pid, NULL, &r);
    if (r.open_rc >= 0 || !strstr(r.open_why, why_part))
        fail_msg("%s: open gave %d \"%s\", want an error with \"%s\"", name, r.open_rc,
                 r.open_why, why_part);
    run_free(&r);
}

#define HDR_OK "s\n01-Jan-2018\n08:30\n4\n0\nV1\nX\n"

static void test_bad_headers(void **state)
{
    (void)state;
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"s\n01-Jan-2018\n08:30\n4\n", "truncated at line 5"},
        {"s\n01-Jan-2018\n08:30\n4\n0\nV1", "truncated at line 7"},
        {"s\n31-Feb-2018\n08:30\n4\n0\nV1\nX\n1\n", "line 2: start date"},
        {"s\n01-Foo-2018\n08:30\n4\n0\nV1\nX\n1\n", "line 2: start date"},
        {"s\n1-Jan-18\n08:30\n4\n0\nV1\nX\n1\n", "line 2: start date"},
        {"s\n01-Jan-1850\n08:30\n4\n0\nV1\nX\n1\n", "line 2: start date"},
        {"s\n01-Jan-2018\n24:00\n4\n0\nV1\nX\n1\n", "line 3: start time"},
        {"s\n01-Jan-2018\n8h30\n4\n0\nV1\nX\n1\n", "line 3: start time"},
        {"s\n01-Jan-2018\n08:30\n3\n0\nV1\nX\n1\n", "line 4: unknown frequency code"},
        {"s\n01-Jan-2018\n08:30\n\n0\nV1\nX\n1\n", "line 4: unknown frequency code"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_open_error("hdr.AWD", cases[i].text, strlen(cases[i].text), "p1", "awd",
                          cases[i].why);
    expect_open_error("empty.AWD", "", 0, "p1", "awd", "empty file");
    char longline[400];
    memset(longline, 'a', sizeof longline);
    memcpy(longline + 300, "\n01-Jan-2018\n08:30\n4\n0\nV1\nX\n", 29);
    expect_open_error("long.AWD", longline, 329, "p1", "awd", "longer than 128");
    expect_open_error("nopid.AWD", HDR_OK "1\n", strlen(HDR_OK "1\n"), NULL, "awd",
                      "--participant");
    expect_open_error("badpid.AWD", HDR_OK "1\n", strlen(HDR_OK "1\n"), "a b", "awd",
                      "--participant");
    /* not an AWD header: not detected as one (JSON Lines takes text files) */
    struct reader rd;
    struct reader_opts o = {.participant = "p1"};
    const char *p = write_str("notawd.txt", "hello\nworld\n08:30\n4\n");
    assert_int_equal(reader_open(&rd, p, NULL, &o), 0);
    assert_string_not_equal(rd.ops->name, "awd");
    reader_close(&rd);
}

static void test_bad_lines(void **state)
{
    (void)state;
    char text[1024];
    char longl[300];
    memset(longl, '1', sizeof longl - 1);
    longl[sizeof longl - 1] = 0;
    int n = snprintf(text, sizeof text,
                     HDR_OK "1\nabc\n-5\n1.5\n99999999\n12 X\n%s\n3\n4 , \n5\n", longl);
    /* a NUL byte inside a line */
    const char tail[] = "6\0007\n8\n";
    memcpy(text + n, tail, sizeof tail - 1);
    struct run r;
    run(write_tmp("bad.AWD", text, (size_t)n + sizeof tail - 1), "awd", "p1", NULL, &r);
    assert_int_equal(r.open_rc, 0);
    static const struct {
        uint64_t line;
        const char *why;
    } want[] = {
        {9, "not a number"},     {10, "negative count"}, {11, "integer"},
        {12, "above 1000000"},   {13, "unexpected text"}, {14, "longer than 128"},
        {16, "second channel"},  {18, "NUL"},
    };
    assert_int_equal(r.n_bad, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(r.bad[i].line, want[i].line);
        if (!strstr(r.bad[i].why, want[i].why))
            fail_msg("line %llu: \"%s\" lacks \"%s\"", (unsigned long long)want[i].line,
                     r.bad[i].why, want[i].why);
    }
    /* good epochs keep their place: 1 is epoch 0, 3 is epoch 7, 5 epoch 9, 8 epoch 11 */
    assert_int_equal(r.n, 4);
    assert_true(r.counts[0] == 1 && r.counts[1] == 3 && r.counts[2] == 5 && r.counts[3] == 8);
    assert_int_equal(r.last_ts, at(2018, 1, 1, 8, 30) + 11 * 60000);
    run_free(&r);

    /* epochs past 2199: the first is fine, the next is reported */
    run(write_str("late.AWD", "s\n31-Dec-2199\n23:59\n4\n0\nV1\nX\n1\n2\n"), "awd", "p1", NULL,
        &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.n_bad, 1);
    assert_int_equal(r.bad[0].line, 9);
    assert_non_null(strstr(r.bad[0].why, "2199"));
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_files), cmocka_unit_test(test_zones),
        cmocka_unit_test(test_codes_and_lines), cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_bad_lines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
