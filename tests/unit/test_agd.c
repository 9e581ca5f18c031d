/* drivers/file_agd.c: the two reference .agd files (row counts, first and last epochs from
 * the reference, §8 of ../shared/reference/actigraphy.md), the 60-s sums against the
 * reference CSV, time zones, and corrupted or edited copies written to a temp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/reader.h"
#include "pipeline/tz.h"

#define GT3X "GT3XPlus-RawData-Day01.agd"
#define SAMPLE "test_sample.agd"

static char tmpdir[64];
static struct tz_db *tzdb;

static void shared_path(char *buf, size_t n, const char *name)
{
    const char *s = getenv("ENGAGED_SHARED");
    snprintf(buf, n, "%s/data/actigraphy/%s", s ? s : "../../shared", name);
}

/* UTC or wall-clock ms of a civil time */
static int64_t at(int64_t y, unsigned mo, unsigned d, int hh, int mi, int ss)
{
    return (civil_to_days(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss) * INT64_C(1000);
}

struct bad { uint64_t line; char why[256]; };

struct run {
    int open_rc;
    char open_why[256];
    struct event *ev; /* every event, in order */
    size_t n, cap, n_counts, n_steps;
    struct bad bad[64];
    size_t n_bad;
    int io_err; /* negative next() result, 0 if none */
    char io_why[256];
};

static void run_free(struct run *r)
{
    free(r->ev);
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
        snprintf(out->open_why, sizeof out->open_why, "%s", r.why ? r.why : "(null)");
        return;
    }
    struct event ev;
    int k;
    while ((k = r.ops->next(&r, &ev)) != READ_EOF) {
        if (k < 0) {
            out->io_err = k;
            snprintf(out->io_why, sizeof out->io_why, "%s", r.why ? r.why : "(null)");
            break;
        }
        if (k != READ_EVENT) {
            assert_int_equal(k, READ_BAD);
            assert_non_null(r.why);
            if (out->n_bad < 64) {
                out->bad[out->n_bad].line = r.line;
                snprintf(out->bad[out->n_bad].why, sizeof out->bad[0].why, "%s", r.why);
            }
            out->n_bad++;
            continue;
        }
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 1024;
            out->ev = realloc(out->ev, out->cap * sizeof *out->ev);
            assert_non_null(out->ev);
        }
        out->ev[out->n++] = ev;
        out->n_counts += ev.type == EV_COUNTS;
        out->n_steps += ev.type == EV_STEPS;
    }
    reader_close(&r);
}

static const struct event *nth_counts(const struct run *r, size_t i)
{
    for (size_t k = 0; k < r->n; k++)
        if (r->ev[k].type == EV_COUNTS && i-- == 0)
            return &r->ev[k];
    return NULL;
}

static const struct event *last_counts(const struct run *r)
{
    for (size_t k = r->n; k-- > 0;)
        if (r->ev[k].type == EV_COUNTS)
            return &r->ev[k];
    return NULL;
}

static void check_reference(const char *name, size_t rows, int64_t first, int64_t last)
{
    char p[512];
    shared_path(p, sizeof p, name);
    struct run r;
    run(p, NULL, "p01", NULL, &r); /* auto-detected */
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.io_err, 0);
    assert_int_equal(r.n_bad, 0);
    assert_int_equal(r.n_counts, rows);
    assert_int_equal(r.n_steps, rows);
    assert_int_equal(nth_counts(&r, 0)->ts, first);
    assert_int_equal(last_counts(&r)->ts, last);
    int64_t prev_seq = -1, prev_ts = INT64_MIN;
    for (size_t i = 0; i < r.n; i++) {
        const struct event *e = &r.ev[i];
        assert_string_equal(e->participant, "p01");
        assert_string_equal(e->source, "agd");
        assert_true(e->has_seq && e->seq > prev_seq); /* unique per source */
        assert_true(e->ts >= prev_ts);                /* ordered */
        prev_seq = e->seq;
        prev_ts = e->ts;
        if (e->type == EV_COUNTS) {
            assert_int_equal(e->u.counts.epoch_s, 10);
            assert_true(e->u.counts.triaxial);
            assert_true(e->u.counts.counts == e->u.counts.axes[1]); /* axis 1 = device y */
            /* the steps event of the epoch follows, stamped at the epoch's end */
            assert_int_equal(r.ev[i + 1].type, EV_STEPS);
            assert_int_equal(r.ev[i + 1].ts, e->ts + 10000);
            assert_int_equal(r.ev[i + 1].u.steps.interval_s, 10);
        }
    }
    run_free(&r);
}

static void test_reference_files(void **state)
{
    (void)state;
    /* §8: 8,999 rows, 2012-06-27 10:54:00 .. 2012-06-28 11:53:40 (device clock; no zone) */
    check_reference(GT3X, 8999, at(2012, 6, 27, 10, 54, 0), at(2012, 6, 28, 11, 53, 40));
    /* §8: 5,394 rows; first/last ticks 636909372000000000 / 636909911300000000, which
     * Python's datetime gives as 2019-04-15 15:00:00 / 2019-04-16 05:58:50 */
    check_reference(SAMPLE, 5394, at(2019, 4, 15, 15, 0, 0), at(2019, 4, 16, 5, 58, 50));
}

/* The first rows of GT3XPlus-RawData-Day01.agd, as sqlite3 prints them (axis1, axis2, axis3,
 * steps): 377 397 413 2, 465 816 1225 4, 505 444 713 6. */
static void test_values_and_axes(void **state)
{
    (void)state;
    char p[512];
    shared_path(p, sizeof p, GT3X);
    struct run r;
    run(p, "agd", "p01", NULL, &r);
    static const double want[3][4] = {{377, 397, 413, 2}, {465, 816, 1225, 4}, {505, 444, 713, 6}};
    for (int i = 0; i < 3; i++) {
        const struct event *c = &r.ev[2 * i], *s = &r.ev[2 * i + 1];
        assert_true(c->u.counts.counts == want[i][0]);
        assert_true(c->u.counts.axes[0] == want[i][1]); /* x = axis 2 */
        assert_true(c->u.counts.axes[1] == want[i][0]); /* y = axis 1 */
        assert_true(c->u.counts.axes[2] == want[i][2]); /* z = axis 3 */
        assert_true(s->u.steps.steps == want[i][3]);
    }
    run_free(&r);
}

/* Summing the 10-s epochs of the AGD to minutes must give GT3XPlus-RawData-Day01-10sec60sec.csv
 * (read here with sscanf, independently of the CSV reader). */
static void test_sum_to_60s(void **state)
{
    (void)state;
    char p[512];
    shared_path(p, sizeof p, GT3X);
    struct run r;
    run(p, "agd", "p01", NULL, &r);
    int64_t t0 = at(2012, 6, 27, 10, 54, 0);
    enum { MINUTES = 1500 };
    static double sum[MINUTES][4];
    static int n_in[MINUTES];
    memset(sum, 0, sizeof sum);
    memset(n_in, 0, sizeof n_in);
    for (size_t i = 0; i < r.n; i++) {
        const struct event *e = &r.ev[i];
        if (e->type != EV_COUNTS)
            continue;
        int64_t m = (e->ts - t0) / 60000;
        assert_true(m >= 0 && m < MINUTES);
        sum[m][0] += e->u.counts.axes[1];
        sum[m][1] += e->u.counts.axes[0];
        sum[m][2] += e->u.counts.axes[2];
        sum[m][3] += r.ev[i + 1].u.steps.steps;
        n_in[m]++;
    }
    shared_path(p, sizeof p, "GT3XPlus-RawData-Day01-10sec60sec.csv");
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    int rows = 0, mismatches = 0;
    while (fgets(line, sizeof line, f)) {
        int y, mo, d, hh, mi, ss;
        double v[4];
        assert_int_equal(sscanf(line, "%d-%d-%dT%d:%d:%dZ,%lf,%lf,%lf,%lf", &y, &mo, &d, &hh, &mi,
                                &ss, &v[0], &v[1], &v[2], &v[3]), 10);
        int64_t m = (at(y, (unsigned)mo, (unsigned)d, hh, mi, ss) - t0) / 60000;
        assert_int_equal(m, rows);
        for (int k = 0; k < 4; k++)
            mismatches += sum[m][k] != v[k];
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, MINUTES);
    assert_int_equal(mismatches, 0);
    assert_int_equal(n_in[MINUTES - 1], 5); /* the last minute holds 5 of 6 epochs (§8) */
    run_free(&r);
}

/* --tz: the first epoch is placed with the zone; June in Chicago is CDT (UTC-5). */
static void test_zone(void **state)
{
    (void)state;
    char p[512];
    shared_path(p, sizeof p, GT3X);
    struct run r;
    run(p, "agd", "p01", "America/Chicago", &r);
    assert_int_equal(r.n_counts, 8999);
    assert_int_equal(nth_counts(&r, 0)->ts, at(2012, 6, 27, 15, 54, 0));
    assert_int_equal(last_counts(&r)->ts, at(2012, 6, 28, 16, 53, 40));
    run_free(&r);
}

/* ---- edited copies ---- */

static void sql(const char *path, const char *stmt)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, stmt, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", stmt, err);
    sqlite3_close(db);
}

static size_t slurp(const char *path, unsigned char **buf)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    *buf = malloc((size_t)n);
    assert_int_equal(fread(*buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return (size_t)n;
}

static void spill(const char *path, const unsigned char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
}

/* A copy of the GT3X+ file in tmpdir as `name`, optionally edited with SQL. */
static void copy_ref(char *out, size_t n, const char *name, const char *stmt)
{
    char p[512];
    shared_path(p, sizeof p, GT3X);
    unsigned char *buf;
    size_t len = slurp(p, &buf);
    snprintf(out, n, "%s/%s", tmpdir, name);
    spill(out, buf, len);
    free(buf);
    if (stmt)
        sql(out, stmt);
}

static void expect_open_error(const char *path, const char *format, const char *needle)
{
    struct run r;
    run(path, format, "p01", NULL, &r);
    assert_true(r.open_rc < 0);
    if (!strstr(r.open_why, needle))
        fail_msg("%s: \"%s\" lacks \"%s\"", path, r.open_why, needle);
}

static void expect_one_bad(const char *path, uint64_t line, const char *needle)
{
    struct run r;
    run(path, "agd", "p01", NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.io_err, 0);
    assert_int_equal(r.n_bad, 1);
    assert_int_equal(r.bad[0].line, line);
    if (!strstr(r.bad[0].why, needle))
        fail_msg("%s: \"%s\" lacks \"%s\"", path, r.bad[0].why, needle);
    assert_int_equal(r.n_counts, 8998); /* every other row is still read */
    run_free(&r);
}

static void test_edited_rows(void **state)
{
    (void)state;
    char p[512];
    copy_ref(p, sizeof p, "neg.agd", "UPDATE data SET axis1 = -5 WHERE rowid = 3");
    expect_one_bad(p, 3, "axis1 -5 out of range");
    copy_ref(p, sizeof p, "huge.agd", "UPDATE data SET axis2 = 1e9 WHERE rowid = 4");
    expect_one_bad(p, 4, "axis2 1000000000 out of range");
    copy_ref(p, sizeof p, "inf.agd", "UPDATE data SET steps = 1e999 WHERE rowid = 5");
    expect_one_bad(p, 5, "steps inf out of range");
    copy_ref(p, sizeof p, "null.agd", "UPDATE data SET axis3 = NULL WHERE rowid = 6");
    expect_one_bad(p, 6, "axis3 is NULL");
    copy_ref(p, sizeof p, "text.agd", "UPDATE data SET axis1 = 'x' WHERE rowid = 7");
    expect_one_bad(p, 7, "axis1 is text");
    /* row 10 repeats the first row's time: backwards */
    copy_ref(p, sizeof p, "back.agd",
             "UPDATE data SET dataTimestamp = 634763912400000000 WHERE rowid = 10");
    expect_one_bad(p, 10, "time goes backwards");
    /* row 5 is 5 s off the 10-s grid */
    copy_ref(p, sizeof p, "grid.agd",
             "UPDATE data SET dataTimestamp = dataTimestamp + 50000000 WHERE rowid = 5");
    expect_one_bad(p, 5, "not a whole number of 10 s epochs");
    copy_ref(p, sizeof p, "year.agd", "UPDATE data SET dataTimestamp = 1 WHERE rowid = 8");
    expect_one_bad(p, 8, "out of range");
}

static void test_edited_schema(void **state)
{
    (void)state;
    char p[512];
    copy_ref(p, sizeof p, "nosettings.agd", "DROP TABLE settings");
    expect_open_error(p, "agd", "no settings table");
    copy_ref(p, sizeof p, "nodata.agd", "DROP TABLE data");
    expect_open_error(p, "agd", "no data table");
    copy_ref(p, sizeof p, "viewdata.agd", "ALTER TABLE data RENAME TO d2; "
                                          "CREATE VIEW data AS SELECT * FROM d2");
    expect_open_error(p, "agd", "no data table");
    copy_ref(p, sizeof p, "noaxis1.agd", "ALTER TABLE data DROP COLUMN axis1");
    expect_open_error(p, "agd", "lacks the dataTimestamp or axis1");
    copy_ref(p, sizeof p, "noepoch.agd", "DELETE FROM settings WHERE settingName='epochlength'");
    expect_open_error(p, "agd", "no epochlength");
    static const char *const bad_epochs[] = {"0", "7", "-10", "10s", "", "86401"};
    for (size_t i = 0; i < sizeof bad_epochs / sizeof *bad_epochs; i++) {
        char stmt[128];
        snprintf(stmt, sizeof stmt,
                 "UPDATE settings SET settingValue = '%s' WHERE settingName = 'epochlength'",
                 bad_epochs[i]);
        copy_ref(p, sizeof p, "badepoch.agd", stmt);
        expect_open_error(p, "agd", "epochlength");
    }
    /* a wrong epoch length: 20 s declared, rows every 10 s: every other row is off the grid */
    copy_ref(p, sizeof p, "epoch20.agd",
             "UPDATE settings SET settingValue = '20' WHERE settingName = 'epochlength'");
    struct run r;
    run(p, "agd", "p01", NULL, &r);
    assert_int_equal(r.n_counts, 4500);
    assert_int_equal(r.n_bad, 4499);
    assert_non_null(strstr(r.bad[0].why, "wrong epoch length"));
    run_free(&r);
    /* uniaxial: no axis2/axis3/steps columns */
    copy_ref(p, sizeof p, "uni.agd", "ALTER TABLE data DROP COLUMN axis3; "
                                     "ALTER TABLE data DROP COLUMN steps");
    run(p, NULL, "p01", NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.n_counts, 8999);
    assert_int_equal(r.n_steps, 0);
    assert_false(r.ev[0].u.counts.triaxial);
    assert_true(r.ev[0].u.counts.counts == 377);
    run_free(&r);
}

/* Device clocks do not change for DST: hourly epochs across the 2012-11-04 fall-back in
 * Chicago stay one hour apart in UTC, starting from 00:00 CDT = 05:00 UTC. */
static void test_dst(void **state)
{
    (void)state;
    char p[512];
    copy_ref(p, sizeof p, "dst.agd",
             "DELETE FROM data; UPDATE settings SET settingValue = '3600' "
             "WHERE settingName = 'epochlength';"
             "INSERT INTO data (dataTimestamp, axis1, axis2, axis3, steps) VALUES "
             "(634875840000000000, 1, 2, 3, 0), (634875876000000000, 4, 5, 6, 0),"
             "(634875912000000000, 7, 8, 9, 0), (634875948000000000, 10, 11, 12, 0)");
    struct run r;
    run(p, "agd", "p01", "America/Chicago", &r);
    assert_int_equal(r.n_counts, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(nth_counts(&r, i)->ts, at(2012, 11, 4, 5, 0, 0) + (int64_t)i * 3600000);
    run_free(&r);
}

static void test_corrupt_bytes(void **state)
{
    (void)state;
    char p[512], q[600];
    shared_path(p, sizeof p, GT3X);
    unsigned char *buf;
    size_t len = slurp(p, &buf);
    snprintf(q, sizeof q, "%s/corrupt.agd", tmpdir);
    /* truncated: nothing before the header is complete; half a file reads in part */
    spill(q, buf, 10);
    expect_open_error(q, "agd", "no SQLite 3 header");
    spill(q, buf, len / 2);
    struct run r;
    run(q, "agd", "p01", NULL, &r);
    assert_true(r.open_rc < 0 || r.io_err < 0 || r.n_bad > 0 || r.n_counts < 8999);
    if (r.io_err)
        assert_non_null(strstr(r.io_why, "data row"));
    run_free(&r);
    /* header bytes flipped (page size, versions, schema cookie, ...) */
    for (size_t off = 16; off < 100; off += 4) {
        unsigned char *c = malloc(len);
        memcpy(c, buf, len);
        for (size_t k = off; k < off + 4; k++)
            c[k] ^= 0xff;
        spill(q, c, len);
        free(c);
        run(q, "agd", "p01", NULL, &r); /* must not crash; any located error is fine */
        if (r.open_rc < 0)
            assert_true(r.open_why[0]);
        run_free(&r);
    }
    /* bytes flipped all over the data pages */
    for (unsigned seed = 1; seed <= 20; seed++) {
        unsigned char *c = malloc(len);
        memcpy(c, buf, len);
        srand(seed);
        for (int k = 0; k < 64; k++)
            c[100 + (size_t)rand() % (len - 100)] ^= (unsigned char)(1 + rand() % 255);
        spill(q, c, len);
        free(c);
        run(q, NULL, "p01", NULL, &r);
        run_free(&r);
    }
    free(buf);
    /* not SQLite at all */
    spill(q, (const unsigned char *)"hello\n", 6);
    expect_open_error(q, "agd", "no SQLite 3 header");
    snprintf(q, sizeof q, "%s/missing.agd", tmpdir);
    expect_open_error(q, "agd", "No such file");
}

static void test_no_participant_and_untouched(void **state)
{
    (void)state;
    char p[512];
    copy_ref(p, sizeof p, "ro.agd", NULL);
    struct run r;
    run(p, "agd", NULL, NULL, &r);
    assert_int_equal(r.open_rc, -EINVAL);
    assert_non_null(strstr(r.open_why, "--participant"));
    run(p, "agd", "bad id!", NULL, &r);
    assert_int_equal(r.open_rc, -EINVAL);
    /* reading leaves the file byte-identical and creates nothing next to it */
    unsigned char *before, *after;
    size_t n1 = slurp(p, &before);
    run(p, "agd", "p01", NULL, &r);
    assert_int_equal(r.n_counts, 8999);
    run_free(&r);
    size_t n2 = slurp(p, &after);
    assert_int_equal(n1, n2);
    assert_memory_equal(before, after, n1);
    free(before);
    free(after);
    static const char *const sfx[] = {"-journal", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char side[600];
        struct stat st;
        snprintf(side, sizeof side, "%s%s", p, sfx[i]);
        assert_int_equal(stat(side, &st), -1);
    }
    /* a path that needs URI escaping */
    char odd[600];
    snprintf(odd, sizeof odd, "%s/a%%20b?c#d.agd", tmpdir);
    assert_int_equal(rename(p, odd), 0);
    run(odd, NULL, "p01", NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.n_counts, 8999);
    run_free(&r);
}

static int rm_all(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_agd.XXXXXX");
    tzdb = tz_db_new(NULL);
    return mkdtemp(tmpdir) && tzdb ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tz_db_free(tzdb);
    return rm_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_files),
        cmocka_unit_test(test_values_and_axes),
        cmocka_unit_test(test_sum_to_60s),
        cmocka_unit_test(test_zone),
        cmocka_unit_test(test_edited_rows),
        cmocka_unit_test(test_edited_schema),
        cmocka_unit_test(test_dst),
        cmocka_unit_test(test_corrupt_bytes),
        cmocka_unit_test(test_no_participant_and_untouched),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
