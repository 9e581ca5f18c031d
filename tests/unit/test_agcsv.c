/* drivers/file_agcsv.c: the reference CSVs (GT3XPlus-RawData-Day01-10sec60sec.csv and the
 * ActiLife sleep export -ColeKripke.csv), ActiLife banner exports written from the same
 * numbers in every layout (with and without column header, Date/Time, Mode-defined columns,
 * other date formats), and bad input with exact line numbers. Expected values come from the
 * reference CSV, read here with sscanf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/reader.h"
#include "pipeline/tz.h"

#define N_REF 1500
static double ref[N_REF][4]; /* axis1, axis2, axis3, steps of each minute */
static int64_t ref_t0;       /* 2012-06-27 10:54:00 on the device clock */
static char tmpdir[64];
static struct tz_db *tzdb;

static void shared_path(char *buf, size_t n, const char *name)
{
    const char *s = getenv("ENGAGED_SHARED");
    snprintf(buf, n, "%s/data/actigraphy/%s", s ? s : "../../shared", name);
}

static int64_t at(int64_t y, unsigned mo, unsigned d, int hh, int mi, int ss)
{
    return (civil_to_days(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss) * INT64_C(1000);
}

struct bad { uint64_t line; char why[256]; };
struct run {
    int open_rc;
    char open_why[256];
    const char *format; /* the reader auto-detection chose */
    struct event *ev;
    size_t n, cap, n_counts, n_steps, n_bad;
    struct bad bad[16];
    int io_err;
};

static void run(const char *path, const char *format, const char *zone, struct run *out)
{
    memset(out, 0, sizeof *out);
    struct reader_opts o = {.participant = "p02"};
    if (zone) {
        int err;
        o.zone = tz_db_get(tzdb, zone, &err);
        assert_non_null(o.zone);
    }
    struct reader r;
    out->open_rc = reader_open(&r, path, format, &o);
    if (out->open_rc < 0) {
        snprintf(out->open_why, sizeof out->open_why, "%s", r.why ? r.why : "(null)");
        return;
    }
    out->format = r.ops->name;
    struct event ev;
    int k;
    while ((k = r.ops->next(&r, &ev)) != READ_EOF) {
        if (k < 0) {
            out->io_err = k;
            break;
        }
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

/* Every minute of the reference, in order, with steps when `steps` and three axes when
 * `tri`; returns the number of mismatching events or fields. */
static int compare_ref(const struct run *r, int tri, int steps, int64_t t0)
{
    int bad = 0;
    size_t i = 0;
    for (int m = 0; m < N_REF; m++) {
        if (i >= r->n)
            return bad + (N_REF - m);
        const struct event *c = &r->ev[i++];
        bad += c->type != EV_COUNTS || c->ts != t0 + m * INT64_C(60000) ||
               c->u.counts.epoch_s != 60 || c->u.counts.counts != ref[m][0] ||
               c->u.counts.triaxial != tri || !c->has_seq;
        if (tri)
            bad += c->u.counts.axes[0] != ref[m][1] || c->u.counts.axes[1] != ref[m][0] ||
                   c->u.counts.axes[2] != ref[m][2];
        if (steps) {
            const struct event *s = &r->ev[i++];
            bad += s->type != EV_STEPS || s->ts != c->ts + 60000 || s->u.steps.steps != ref[m][3] ||
                   s->u.steps.interval_s != 60 || s->seq != c->seq + 1;
        }
    }
    return bad + (int)(r->n - i);
}

static void test_reference_csv(void **state)
{
    (void)state;
    char p[512];
    struct run r;
    shared_path(p, sizeof p, "GT3XPlus-RawData-Day01-10sec60sec.csv");
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_string_equal(r.format, "actigraph-csv");
    assert_int_equal(r.n_bad, 0);
    assert_int_equal(compare_ref(&r, 1, 1, ref_t0), 0);
    assert_string_equal(r.ev[0].source, "actigraph-csv");
    assert_string_equal(r.ev[0].participant, "p02");
    free(r.ev);
    /* ActiLife's sleep export: Date, Time as "10:54 AM", no banner, no step events missing */
    shared_path(p, sizeof p, "GT3XPlus-RawData-Day01-ColeKripke.csv");
    run(p, NULL, "America/Chicago", &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.n_bad, 0);
    assert_int_equal(compare_ref(&r, 1, 1, ref_t0 + 5 * 3600000), 0); /* CDT = UTC-5 */
    free(r.ev);
}

/* ---- ActiLife banner exports written from the reference numbers ---- */

static FILE *create(char *path, size_t n, const char *name)
{
    snprintf(path, n, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    return f;
}

static void banner(FILE *f, const char *datefmt, const char *sdate, const char *epoch, int mode)
{
    fprintf(f, "------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.3 Firmware "
               "v2.5.0 date format %s Filter Normal -----------\r\n"
               "Serial Number: NEO1DXXXXXXXX\r\nStart Time 10:54:00\r\nStart Date %s\r\n"
               "Epoch Period (hh:mm:ss) %s\r\nDownload Time 11:55:00\r\nDownload Date %s\r\n"
               "Current Memory Address: 0\r\nCurrent Battery Voltage: 4.22     Mode = %d\r\n"
               "--------------------------------------------------\r\n",
               datefmt, sdate, epoch, sdate, mode);
}

enum layout { WITH_DATES = 1, WITH_HEADER = 2, DMY_DOTS = 4, UNIAXIAL = 8 };

static void write_export(const char *path, int layout)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    int uni = layout & UNIAXIAL;
    banner(f, layout & DMY_DOTS ? "dd.MM.yyyy" : "M/d/yyyy",
           layout & DMY_DOTS ? "27.06.2012" : "6/27/2012", "00:01:00", uni ? 1 : 61);
    if (layout & WITH_HEADER)
        fprintf(f, "%s%s\r\n", layout & WITH_DATES ? "Date, Time, " : "",
                uni ? "Axis1,Steps" : "Axis1,Axis2,Axis3,Steps,Lux,Inclinometer Off,"
                "Inclinometer Standing,Inclinometer Sitting,Inclinometer Lying,Vector Magnitude");
    for (int m = 0; m < N_REF; m++) {
        if (layout & WITH_DATES) {
            int64_t t = ref_t0 / 1000 + m * 60, y;
            unsigned mo, d;
            civil_from_days(floor_div(t, 86400), &y, &mo, &d);
            int s = (int)floor_mod(t, 86400);
            if (layout & DMY_DOTS)
                fprintf(f, "%02u.%02u.%lld,", d, mo, (long long)y);
            else
                fprintf(f, "%u/%u/%lld,", mo, d, (long long)y);
            fprintf(f, "%02d:%02d:%02d,", s / 3600, s / 60 % 60, s % 60);
        }
        if (uni)
            fprintf(f, "%.0f,%.0f\r\n", ref[m][0], ref[m][3]);
        else
            fprintf(f, "%.0f,%.0f,%.0f,%.0f,0,0,1,0,0,%.2f\r\n", ref[m][0], ref[m][1],
                    ref[m][2], ref[m][3], 1.5);
    }
    fclose(f);
}

static void test_actilife_layouts(void **state)
{
    (void)state;
    static const int layouts[] = {
        WITH_DATES | WITH_HEADER, WITH_HEADER, 0, WITH_DATES, WITH_DATES | WITH_HEADER | DMY_DOTS,
        DMY_DOTS, UNIAXIAL, UNIAXIAL | WITH_HEADER | WITH_DATES,
    };
    for (size_t i = 0; i < sizeof layouts / sizeof *layouts; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/export%zu.csv", tmpdir, i);
        write_export(p, layouts[i]);
        struct run r;
        run(p, NULL, NULL, &r);
        if (r.open_rc)
            fail_msg("layout %d: %s", layouts[i], r.open_why);
        assert_string_equal(r.format, "actigraph-csv");
        assert_int_equal(r.n_bad, 0);
        int mism = compare_ref(&r, !(layouts[i] & UNIAXIAL), 1, ref_t0);
        if (mism)
            fail_msg("layout %d: %d mismatches", layouts[i], mism);
        free(r.ev);
    }
}

/* A 10-s export (the AGD's first three epochs) and a 1-hour export across the 2012-11-04
 * fall-back: epochs stay evenly spaced in UTC from the first one (00:00 CDT = 05:00 UTC). */
static void test_other_epochs_and_dst(void **state)
{
    (void)state;
    char p[128];
    FILE *f = create(p, sizeof p, "ten.csv");
    banner(f, "M/d/yyyy", "6/27/2012", "00:00:10", 13);
    fputs("377,397,413,2\n465,816,1225,4\n505,444,713,6\n", f);
    fclose(f);
    struct run r;
    run(p, "actigraph-csv", NULL, &r);
    assert_int_equal(r.n_counts, 3);
    assert_int_equal(r.n_steps, 3);
    assert_int_equal(r.ev[2].ts, at(2012, 6, 27, 10, 54, 10));
    assert_true(r.ev[2].u.counts.counts == 465 && r.ev[2].u.counts.axes[0] == 816);
    assert_int_equal(r.ev[2].u.counts.epoch_s, 10);
    assert_int_equal(r.ev[3].ts, at(2012, 6, 27, 10, 54, 20)); /* steps at the epoch end */
    free(r.ev);
    f = create(p, sizeof p, "dst.csv");
    fputs("timestamp,axis1\n2012-11-04T00:00:00Z,1\n2012-11-04T01:00:00Z,2\n"
          "2012-11-04T02:00:00Z,3\n2012-11-04T03:00:00Z,4\n", f);
    fclose(f);
    run(p, NULL, "America/Chicago", &r);
    assert_int_equal(r.n_counts, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r.ev[i].ts, at(2012, 11, 4, 5 + i, 0, 0));
        assert_int_equal(r.ev[i].u.counts.epoch_s, 3600);
    }
    free(r.ev);
}

/* ---- bad input ---- */

static void write_text(char *p, size_t n, const char *name, const char *text)
{
    FILE *f = create(p, n, name);
    fputs(text, f);
    fclose(f);
}

static void expect_open_error(const char *name, const char *text, const char *needle)
{
    char p[128];
    write_text(p, sizeof p, name, text);
    struct run r;
    run(p, "actigraph-csv", NULL, &r);
    assert_true(r.open_rc < 0);
    if (!strstr(r.open_why, needle))
        fail_msg("%s: \"%s\" lacks \"%s\"", name, r.open_why, needle);
}

#define HDR "------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.3 Firmware v2.5.0 " \
            "date format M/d/yyyy Filter Normal -----------\nSerial Number: X\n" \
            "Start Time 10:54:00\nStart Date 6/27/2012\nEpoch Period (hh:mm:ss) 00:01:00\n" \
            "Download Time 11:00:00\nDownload Date 6/28/2012\nCurrent Memory Address: 0\n" \
            "Current Battery Voltage: 4.22     Mode = 61\n" \
            "--------------------------------------------------\n"
#define COLS "Date,Time,Axis1,Axis2,Axis3,Steps\n" /* line 11; data from line 12 */

static void test_bad_rows(void **state)
{
    (void)state;
    static const struct {
        const char *rows; /* lines 12, 13, 14, 15 */
        uint64_t line;    /* the one bad line */
        const char *why;
    } cases[] = {
        {"6/27/2012,10:54:00,1,2,3,4\n6/27/2012,10:55:00,-1,2,3,4\n6/27/2012,10:56:00,1,2,3,4\n",
         13, "Axis1 -1 out of range"},
        {"6/27/2012,10:54:00,1,2,3,4\n6/27/2012,10:55:00,1,2e9,3,4\n6/27/2012,10:56:00,1,2,3,4\n",
         13, "Axis2 2000000000 out of range"},
        {"6/27/2012,10:54:00,1,2,3,4\n6/27/2012,10:55:00,1,2,x3,4\n6/27/2012,10:56:00,1,2,3,4\n",
         13, "Axis3 \"x3\" is not a number"},
        {"6/27/2012,10:54:00,1,2,3,4\n6/27/2012,10:55:00,1,2,3,nan\n6/27/2012,10:56:00,1,2,3,4\n",
         13, "Steps \"nan\" is not a number"},
        {"6/27/2012,10:54:00,1,2,3,4\n6/27/2012,10:55:00,1,2,3,601\n6/27/2012,10:56:00,1,2,3,4\n",
         13, "Steps 601 out of range"},
        {"6/27/2012,10:54:00,1,2,3,4\n6/27/2012,10:55:00,1,2,3\n6/27/2012,10:56:00,1,2,3,4\n",
         13, "too few columns"},
        {"6/27/2012,10:54:00,1,2,3,4\n6/27/2012,10:55:00,1,2,3,4\n6/27/2012,10:55:00,1,2,3,4\n"
         "6/27/2012,10:56:00,1,2,3,4\n", 14, "time goes backwards or repeats"},
        {"6/27/2012,10:54:00,1,2,3,4\n6/27/2012,10:55:30,1,2,3,4\n6/27/2012,10:56:00,1,2,3,4\n",
         13, "not a whole number of 60 s epochs"},
        {"6/27/2012,10:54:00,1,2,3,4\n2/30/2012,10:55:00,1,2,3,4\n6/27/2012,10:56:00,1,2,3,4\n",
         13, "bad Date or Time"},
        {"6/27/2012,10:54:00,1,2,3,4\n6/27/2012,25:55:00,1,2,3,4\n6/27/2012,10:56:00,1,2,3,4\n",
         13, "bad Date or Time"},
        {"6/27/2012,10:54:00,1,2,3,4\n12/31/2200,23:59:00,1,2,3,4\n", 13, "out of range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char p[128], text[2048];
        snprintf(text, sizeof text, HDR COLS "%s", cases[i].rows);
        write_text(p, sizeof p, "bad.csv", text);
        struct run r;
        run(p, NULL, NULL, &r);
        assert_int_equal(r.open_rc, 0);
        if (r.n_bad != 1 || r.bad[0].line != cases[i].line || !strstr(r.bad[0].why, cases[i].why))
            fail_msg("case %zu: %zu bad, line %llu, \"%s\"", i, r.n_bad,
                     (unsigned long long)(r.n_bad ? r.bad[0].line : 0),
                     r.n_bad ? r.bad[0].why : "");
        assert_true(r.n_counts >= 1);
        free(r.ev);
    }
    /* an over-long line is skipped whole; the next row is read, at its own epoch */
    char p[128];
    size_t big = 10000;
    char *text = malloc(big + 1024);
    int n = snprintf(text, 1024, HDR "1,2,3,4\n");
    memset(text + n, '7', big);
    strcpy(text + n + big, "\n5,6,7,8\n");
    write_text(p, sizeof p, "long.csv", text);
    free(text);
    struct run r;
    run(p, NULL, NULL, &r);
    assert_int_equal(r.n_bad, 1);
    assert_int_equal(r.bad[0].line, 12);
    assert_non_null(strstr(r.bad[0].why, "line longer than"));
    assert_int_equal(r.n_counts, 2);
    assert_int_equal(r.ev[2].ts, at(2012, 6, 27, 10, 56, 0));
    assert_true(r.ev[2].u.counts.counts == 5);
    free(r.ev);
}

static void test_bad_files(void **state)
{
    (void)state;
    char p[512];
    shared_path(p, sizeof p, "../raw/neo-expected.csv");
    struct run r;
    run(p, NULL, NULL, &r);
    assert_true(r.open_rc < 0);
    assert_non_null(strstr(r.open_why, "raw acceleration"));
    expect_open_error("noend.csv", "------------ Data File Created By ActiGraph x\nStart Time 1:00:00\n",
                      "no dashed line");
    expect_open_error("epoch7.csv", "------------ Data File Created By ActiGraph ---\n"
                      "Epoch Period (hh:mm:ss) 00:00:07\n----------\n1\n", "not dividing 86400");
    expect_open_error("noepoch.csv", "------------ Data File Created By ActiGraph ---\n"
                      "----------\n1\n", "missing");
    expect_open_error("date.csv", "------------ Data File Created By ActiGraph ---\n"
                      "Start Date 13/45/2012\nEpoch Period (hh:mm:ss) 00:01:00\n----------\n1\n",
                      "bad Start Date");
    expect_open_error("fmt.csv", "------------ Data File Created By ActiGraph date format "
                      "d-MMM-yy ---\n----------\n", "unsupported banner date format");
    expect_open_error("nomode.csv", "------------ Data File Created By ActiGraph ---\n"
                      "Start Time 10:00:00\nStart Date 1/2/2012\nEpoch Period (hh:mm:ss) "
                      "00:01:00\n----------\n1,2,3\n", "no usable Mode");
    expect_open_error("nostart.csv", "------------ Data File Created By ActiGraph ---\n"
                      "Epoch Period (hh:mm:ss) 00:01:00\n----------\nAxis1\n1\n", "no Start Date");
    expect_open_error("nostart2.csv", "------------ Data File Created By ActiGraph ---\n"
                      "Epoch Period (hh:mm:ss) 00:01:00\nCurrent Battery Voltage: 4.2  Mode = 61\n"
                      "----------\n1,2,3,4\n", "no Start Date");
    expect_open_error("one.csv", "timestamp,axis1\n2012-01-01T00:00:00Z,5\n", "fewer than two");
    expect_open_error("uneven.csv", "timestamp,axis1\n2012-01-01T00:00:00Z,5\n"
                      "2012-01-01T00:00:07Z,5\n", "not an epoch length");
    expect_open_error("noaxis.csv", "date,time,axis1\n", "fewer than two");
    expect_open_error("header.csv", HDR "Date,Time,Axis2\n", "without Axis1");
    expect_open_error("empty.csv", "", "empty file");
    /* no participant */
    write_text(p, sizeof p, "ok.csv", HDR COLS "6/27/2012,10:54:00,1,2,3,4\n");
    struct reader rd;
    struct reader_opts o = {0};
    assert_int_equal(reader_open(&rd, p, NULL, &o), -EINVAL);
    assert_non_null(strstr(rd.why, "--participant"));
    /* a banner with no rows gives no events */
    write_text(p, sizeof p, "norows.csv", HDR);
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.n, 0);
}

/* Only ActiGraph CSVs are claimed; AWARE's CSV and JSON Lines are not. */
static void test_probe(void **state)
{
    (void)state;
    char p[128];
    struct run r;
    write_text(p, sizeof p, "aware.csv", "timestamp,device_id,screen_status\n1583470800000,d1,3\n");
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_string_equal(r.format, "aware-csv");
    free(r.ev);
    write_text(p, sizeof p, "ev.jsonl", "{\"ts\":1,\"participant\":\"p\",\"type\":\"battery\","
                                        "\"pct\":5}\n");
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_string_equal(r.format, "jsonl");
    free(r.ev);
    write_text(p, sizeof p, "bom.csv", "\xef\xbb\xbf\"Date\",\"Time\",\"Axis1\"\n"
                                       "1/2/2012,1:00 PM,5\n1/2/2012,1:01 PM,6\n");
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_string_equal(r.format, "actigraph-csv");
    assert_int_equal(r.n_counts, 2);
    assert_int_equal(r.ev[1].ts, at(2012, 1, 2, 13, 1, 0));
    free(r.ev);
}

static int setup(void **state)
{
    (void)state;
    char p[512], line[256];
    shared_path(p, sizeof p, "GT3XPlus-RawData-Day01-10sec60sec.csv");
    FILE *f = fopen(p, "r");
    if (!f || !fgets(line, sizeof line, f))
        return -1;
    for (int m = 0; m < N_REF; m++) {
        int y, mo, d, hh, mi, ss;
        if (!fgets(line, sizeof line, f) ||
            sscanf(line, "%d-%d-%dT%d:%d:%dZ,%lf,%lf,%lf,%lf", &y, &mo, &d, &hh, &mi, &ss,
                   &ref[m][0], &ref[m][1], &ref[m][2], &ref[m][3]) != 10)
            return -1;
        if (m == 0)
            ref_t0 = at(y, (unsigned)mo, (unsigned)d, hh, mi, ss);
    }
    fclose(f);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_agcsv.XXXXXX");
    tzdb = tz_db_new(NULL);
    return mkdtemp(tmpdir) && tzdb && ref_t0 == at(2012, 6, 27, 10, 54, 0) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    tz_db_free(tzdb);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_csv),
        cmocka_unit_test(test_actilife_layouts),
        cmocka_unit_test(test_other_epochs_and_dst),
        cmocka_unit_test(test_bad_rows),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_probe),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
