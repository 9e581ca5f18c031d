/* drivers/gt3x.c and drivers/file_gt3x.c: the reference files of ../shared/data/raw
 * (actigraphy.md §8.5, ble.md §8.3): neo.gt3x against every row of neo-expected.csv;
 * small.gt3x, ISM_Enabled.gt3x and ISM_Disabled.gt3x read completely, their sample counts
 * checked against info.txt and the idle-sleep-mode stretches against the fill rule; then
 * ZIP archives written to a temp dir with minizip: missing entries, bad info.txt values,
 * damaged, truncated and padded log.bin streams, hand-built records (ISM, scales, zones). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <minizip/unzip.h>
#include <minizip/zip.h>

#include "drivers/gt3x.h"
#include "drivers/reader.h"
#include "pipeline/tz.h"

static char tmpdir[64];
static struct tz_db *tzdb;

static void shared_path(char *buf, size_t n, const char *name)
{
    const char *s = getenv("ENGAGED_SHARED");
    snprintf(buf, n, "%s/data/raw/%s", s ? s : "../../shared", name);
}

static void tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

static int64_t utc_s(int y, int mo, int d, int h, int mi, int s)
{
    return civil_to_days(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s;
}

/* ---- ZIP helpers (minizip) ---- */

struct buf {
    uint8_t *p;
    size_t n, cap;
};

static void put(struct buf *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* An entry of a reference archive, whole. */
static struct buf entry(const char *archive, const char *name)
{
    char p[512];
    shared_path(p, sizeof p, archive);
    unzFile z = unzOpen64(p);
    assert_non_null(z);
    assert_int_equal(unzLocateFile(z, name, 1), UNZ_OK);
    assert_int_equal(unzOpenCurrentFile(z), UNZ_OK);
    struct buf b = {0};
    uint8_t chunk[65536];
    int k;
    while ((k = unzReadCurrentFile(z, chunk, sizeof chunk)) > 0)
        put(&b, chunk, (size_t)k);
    assert_int_equal(k, 0);
    assert_int_equal(unzCloseCurrentFile(z), UNZ_OK);
    unzClose(z);
    return b;
}

/* Writes a ZIP archive of the given entries (name, buf; NULL name ends the list). */
static void write_zip(const char *path, const char *const names[], const struct buf bufs[])
{
    unlink(path);
    zipFile z = zipOpen64(path, APPEND_STATUS_CREATE);
    assert_non_null(z);
    for (size_t i = 0; names[i]; i++) {
        assert_int_equal(zipOpenNewFileInZip64(z, names[i], NULL, NULL, 0, NULL, 0, NULL,
                                               Z_DEFLATED, Z_DEFAULT_COMPRESSION, 0), ZIP_OK);
        assert_int_equal(zipWriteInFileInZip(z, bufs[i].p ? (const void *)bufs[i].p : "",
                                             (unsigned)bufs[i].n), ZIP_OK);
        assert_int_equal(zipCloseFileInZip(z), ZIP_OK);
    }
    assert_int_equal(zipClose(z, NULL), ZIP_OK);
}

static void write_gt3x(const char *path, const char *info, const struct buf *log)
{
    struct buf i = {0};
    puts_(&i, info);
    const char *names[] = {"info.txt", "log.bin", NULL};
    struct buf bufs[] = {i, *log};
    write_zip(path, names, bufs);
    free(i.p);
}

/* Appends one log.bin record with its checksum. */
static void record(struct buf *b, int type, uint32_t ts, const void *payload, size_t size)
{
    uint8_t h[8] = {0x1E, (uint8_t)type, (uint8_t)ts, (uint8_t)(ts >> 8), (uint8_t)(ts >> 16),
                    (uint8_t)(ts >> 24), (uint8_t)size, (uint8_t)(size >> 8)};
    uint8_t x = 0;
    for (int i = 0; i < 8; i++)
        x ^= h[i];
    for (size_t i = 0; i < size; i++)
        x ^= ((const uint8_t *)payload)[i];
    x = (uint8_t)~x;
    put(b, h, 8);
    put(b, payload, size);
    put(b, &x, 1);
}

/* One second of ACTIVITY2 samples at rate: sample i = (v + i, -v, 2v) raw units. */
static void activity2(struct buf *b, uint32_t ts, int rate, int v)
{
    uint8_t p[6 * 1000];
    for (int i = 0; i < rate; i++) {
        int16_t s[3] = {(int16_t)(v + i), (int16_t)-v, (int16_t)(2 * v)};
        for (int a = 0; a < 3; a++) {
            p[6 * i + 2 * a] = (uint8_t)s[a];
            p[6 * i + 2 * a + 1] = (uint8_t)((uint16_t)s[a] >> 8);
        }
    }
    record(b, 0x1A, ts, p, (size_t)(6 * rate));
}

static void event(struct buf *b, uint32_t ts, uint8_t what)
{
    record(b, 0x03, ts, &what, 1);
}

/* A PARAMETERS record with ACCEL_SCALE = 2^e * f / 2^23. */
static void parameters(struct buf *b, uint32_t ts, uint32_t encoded_scale)
{
    uint8_t p[16] = {0, 0, 6, 0, 2, 0, 0, 0, /* BATTERY_STATE, ignored */
                     0, 0, 55, 0};
    for (int i = 0; i < 4; i++)
        p[12 + i] = (uint8_t)(encoded_scale >> (8 * i));
    record(b, 0x15, ts, p, sizeof p);
}

/* ---- running the reader ---- */

struct bad {
    uint64_t line;
    char why[320];
};

struct run {
    int open_rc;
    char open_why[320];
    size_t n_events, n;
    float (*g)[3];
    size_t cap;
    int64_t first_ts, first_seq, last_seq;
    double hz;
    size_t seq_breaks;
    struct bad bad[32];
    size_t n_bad;
    int io_err;
    char io_why[320];
};

static void run_free(struct run *r)
{
    free(r->g);
    memset(r, 0, sizeof *r);
}

static void run(const char *path, const char *format, const char *zone, struct run *out)
{
    memset(out, 0, sizeof *out);
    struct reader_opts o = {.participant = "p1"};
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
    assert_string_equal(r.ops->name, "gt3x");
    struct event ev;
    int k;
    int64_t next_seq = -1, last_ts = INT64_MIN;
    while ((k = r.ops->next(&r, &ev)) != READ_EOF) {
        if (k < 0) {
            out->io_err = k;
            snprintf(out->io_why, sizeof out->io_why, "%s", r.why ? r.why : "(null)");
            break;
        }
        if (k != READ_EVENT) {
            assert_int_equal(k, READ_BAD);
            assert_non_null(r.why);
            if (out->n_bad < 32) {
                out->bad[out->n_bad].line = r.line;
                snprintf(out->bad[out->n_bad].why, sizeof out->bad[0].why, "%s", r.why);
            }
            out->n_bad++;
            continue;
        }
        assert_int_equal(ev.type, EV_ACCEL);
        assert_string_equal(ev.participant, "p1");
        assert_string_equal(ev.source, "gt3x");
        assert_true(ev.has_seq && ev.seq >= 0);
        assert_true(ev.u.accel.n >= 1 && ev.u.accel.n <= EV_ACCEL_MAX);
        assert_true(ev.ts >= EV_TS_MIN && ev.ts < EV_TS_MAX && ev.ts > last_ts);
        last_ts = ev.ts;
        if (out->n_events == 0) {
            out->first_ts = ev.ts;
            out->first_seq = ev.seq;
            out->hz = ev.u.accel.hz;
        } else if (ev.seq != next_seq) {
            out->seq_breaks++;
        }
        assert_true(ev.u.accel.hz == out->hz);
        next_seq = ev.seq + (int64_t)ev.u.accel.n;
        out->last_seq = next_seq - 1;
        if (out->n + ev.u.accel.n > out->cap) {
            out->cap = (out->cap + ev.u.accel.n) * 2;
            out->g = realloc(out->g, out->cap * sizeof *out->g);
            assert_non_null(out->g);
        }
        memcpy(out->g + out->n, ev.u.accel.g, ev.u.accel.n * sizeof *out->g);
        out->n += ev.u.accel.n;
        out->n_events++;
    }
    reader_close(&r);
}

static struct gt3x_info info_of(const char *archive)
{
    struct buf t = entry(archive, "info.txt");
    struct gt3x_info in;
    char why[200];
    assert_int_equal(gt3x_info_parse((const char *)t.p, t.n, &in, why, sizeof why), 0);
    free(t.p);
    return in;
}

static int64_t ticks_s(int64_t ticks)
{
    return (ticks - GT3X_TICKS_UNIX) / 10000000;
}

/* ---- the reference files ---- */

/* neo.gt3x (older format: activity.bin, 12-bit, 341 LSB/g) must give every row of ActiLife's
 * export neo-expected.csv to its printed 3 decimals (compared as integers of mg). */
static void test_neo_expected(void **state)
{
    (void)state;
    char p[512];
    shared_path(p, sizeof p, "neo.gt3x");
    struct run r;
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.io_err, 0);
    assert_int_equal(r.n_bad, 0);
    assert_int_equal(r.seq_breaks, 0);
    assert_true(r.hz == 30);
    assert_int_equal(r.n, 18004);
    /* Start Date 2021-12-20 11:55:00 on a clock at TimeZone -06:00:00 */
    assert_int_equal(r.first_ts, utc_s(2021, 12, 20, 17, 55, 0) * 1000);
    assert_int_equal(r.first_seq, utc_s(2021, 12, 20, 11, 55, 0) * 30);
    /* info.txt: stop is 600 s after start; activity.bin holds 4 samples more */
    struct gt3x_info in = info_of("neo.gt3x");
    assert_int_equal((ticks_s(in.stop_ticks) - ticks_s(in.start_ticks)) * 30 + 4, r.n);

    shared_path(p, sizeof p, "neo-expected.csv");
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    char line[256];
    for (int i = 0; i < 11; i++) /* 10 banner lines and the column header */
        assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "Accelerometer X,Accelerometer Y,Accelerometer Z"));
    size_t rows = 0, mismatches = 0;
    while (fgets(line, sizeof line, f)) {
        double x, y, z;
        assert_int_equal(sscanf(line, "%lf,%lf,%lf", &x, &y, &z), 3);
        assert_true(rows < r.n);
        const float *g = r.g[rows];
        if (lround(x * 1000) != lround(g[0] * 1000.0) ||
            lround(y * 1000) != lround(g[1] * 1000.0) ||
            lround(z * 1000) != lround(g[2] * 1000.0)) {
            if (mismatches++ < 5)
                print_message("row %zu: csv %g,%g,%g, read %g,%g,%g\n", rows, x, y, z, g[0],
                              g[1], g[2]);
        }
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, 18004);
    assert_int_equal(mismatches, 0);
    run_free(&r);
}

/* The samples of device second s, position i. */
static const float *at_sec(const struct run *r, int64_t s, int i)
{
    int64_t k = s * 30 + i - r->first_seq;
    assert_true(k >= 0 && (size_t)k < r->n);
    return r->g[k];
}

static int same(const float *a, const float *b)
{
    return a[0] == b[0] && a[1] == b[1] && a[2] == b[2];
}

/* Seconds [from, to) all hold the last sample of second from - 1. */
static void check_filled(const struct run *r, int64_t from, int64_t to)
{
    const float *v = at_sec(r, from - 1, 29);
    for (int64_t s = from; s < to; s++)
        for (int i = 0; i < 30; i++)
            assert_true(same(at_sec(r, s, i), v));
}

/* The ISM pair: the same 5 minutes (Start Date 1616169420, Stop Date 1616169720 on the device
 * clock) with idle sleep mode on and off; both give (stop - start) * 30 = 9,000 samples on the
 * same seconds. ISM_Enabled's log.bin has activity records for 73 of the 300 seconds: idle
 * sleep from 1616169444 (after the record of ...443) until the exit event at ...512, from
 * ...537 to ...575, and from ...599 to the end of the log (its last record is at ...720); those
 * seconds are filled with the last sample before them, as ActiLife does. */
static void test_ism(void **state)
{
    (void)state;
    char p[512];
    struct run on, off;
    shared_path(p, sizeof p, "ISM_Enabled.gt3x");
    run(p, NULL, NULL, &on);
    shared_path(p, sizeof p, "ISM_Disabled.gt3x");
    run(p, NULL, NULL, &off);
    const char *names[] = {"ISM_Enabled.gt3x", "ISM_Disabled.gt3x"};
    struct run *runs[] = {&on, &off};
    for (int k = 0; k < 2; k++) {
        struct run *r = runs[k];
        struct gt3x_info in = info_of(names[k]);
        int64_t start = ticks_s(in.start_ticks), stop = ticks_s(in.stop_ticks);
        assert_int_equal(start, 1616169420);
        assert_int_equal(stop, 1616169720);
        assert_int_equal(r->open_rc, 0);
        assert_int_equal(r->io_err, 0);
        assert_int_equal(r->n_bad, 0);
        assert_int_equal(r->seq_breaks, 0);
        assert_int_equal(r->n, (size_t)(stop - start) * 30);
        assert_int_equal(r->first_seq, start * 30);
        assert_int_equal(r->last_seq, stop * 30 - 1);
        assert_int_equal(r->first_ts, (start + 5 * 3600) * 1000); /* TimeZone -05:00:00 */
    }
    /* first ACTIVITY2 samples of ISM_Enabled: (5, 4, 265) / 256 g, rounded to 3 decimals */
    assert_true(on.g[0][0] == 0.020f && on.g[0][1] == 0.016f && on.g[0][2] == 1.035f);
    check_filled(&on, 1616169444, 1616169512);
    check_filled(&on, 1616169537, 1616169575);
    check_filled(&on, 1616169599, 1616169720);
    /* and a recorded second is not filled */
    assert_false(same(at_sec(&on, 1616169512, 0), at_sec(&on, 1616169511, 29)) &&
                 same(at_sec(&on, 1616169512, 1), at_sec(&on, 1616169511, 29)) &&
                 same(at_sec(&on, 1616169512, 29), at_sec(&on, 1616169511, 29)));
    run_free(&on);
    run_free(&off);
}

/* small.gt3x: 13.6 hours with long idle-sleep stretches. Its first activity record is at
 * device second 1557142718, its last at 1557191644 (then a USB-connection marker at ...646);
 * idle sleep is always left before the end. With the stretches filled every second in
 * between has its 30 samples: (1557191644 - 1557142718 + 1) * 30 = 1,467,810, all within
 * info.txt's Start Date and Last Sample Time. */
static void test_small(void **state)
{
    (void)state;
    char p[512];
    shared_path(p, sizeof p, "small.gt3x");
    struct run r;
    run(p, "gt3x", NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.io_err, 0);
    assert_int_equal(r.n_bad, 0);
    assert_int_equal(r.seq_breaks, 0);
    assert_int_equal(r.n, 1467810);
    assert_int_equal(r.first_seq, INT64_C(1557142718) * 30);
    assert_int_equal(r.last_seq, INT64_C(1557191645) * 30 - 1);
    struct gt3x_info in = info_of("small.gt3x");
    assert_true(r.first_seq >= ticks_s(in.start_ticks) * 30);
    assert_true(r.last_seq < ticks_s(in.last_sample_ticks) * 30);
    assert_int_equal(in.sample_rate, 30);
    /* first samples (64, -243, 104) / 256 g */
    assert_true(r.g[0][0] == 0.25f && r.g[0][1] == -0.949f && r.g[0][2] == 0.406f);
    run_free(&r);
}

/* ---- damaged archives ---- */

static void expect_open_error(const char *path, const char *format, int rc, const char *why)
{
    struct run r;
    run(path, format, NULL, &r);
    assert_int_equal(r.open_rc, rc);
    if (!strstr(r.open_why, why))
        fail_msg("open error \"%s\" lacks \"%s\"", r.open_why, why);
}

static const char *const INFO30 =
    "Serial Number: TAS1E47150641\r\nDevice Type: Link\r\nFirmware: 1.7.2\r\n"
    "Sample Rate: 30\r\nStart Date: 637517662200000000\r\nTimeZone: -05:00:00\r\n"
    "Acceleration Scale: 256.0\r\n";

static void test_archive_errors(void **state)
{
    (void)state;
    char p[128];
    tmp_path(p, sizeof p, "bad.gt3x");
    struct buf info = {0}, log = entry("ISM_Disabled.gt3x", "log.bin");
    puts_(&info, INFO30);
    {
        const char *names[] = {"info.txt", "epoch.bin", NULL};
        struct buf bufs[] = {info, log};
        write_zip(p, names, bufs);
        expect_open_error(p, NULL, -EINVAL, "the ZIP archive holds neither log.bin (current "
                                            "format) nor activity.bin");
    }
    {
        const char *names[] = {"log.bin", NULL};
        struct buf bufs[] = {log};
        write_zip(p, names, bufs);
        expect_open_error(p, NULL, -EINVAL, "the ZIP archive has no info.txt");
    }
    static const struct {
        const char *info, *why;
    } bad_info[] = {
        {"Sample Rate: 0\n", "Sample Rate \"0\" is not a whole number of Hz, 1..1000"},
        {"Sample Rate: 5000\n", "Sample Rate \"5000\" is not"},
        {"Sample Rate: 30.5\n", "Sample Rate \"30.5\" is not"},
        {"Sample Rate: thirty\n", "Sample Rate \"thirty\" is not"},
        {"Serial Number: X\n", "info.txt has no Sample Rate"},
        {"Sample Rate: 30\nTimeZone: +25:00:00\n", "TimeZone \"+25:00:00\" is not"},
        {"Sample Rate: 30\nStart Date: -5\n", "Start Date \"-5\" is not .NET ticks"},
        {"Sample Rate: 30\nAcceleration Scale: 1e300\n", "Acceleration Scale \"1e300\""},
    };
    for (size_t i = 0; i < sizeof bad_info / sizeof bad_info[0]; i++) {
        write_gt3x(p, bad_info[i].info, &log);
        expect_open_error(p, NULL, -EINVAL, bad_info[i].why);
    }
    /* info.txt larger than 64 KiB, and with a NUL byte */
    struct buf big = {0};
    puts_(&big, "Sample Rate: 30\n");
    while (big.n <= GT3X_INFO_MAX)
        puts_(&big, "Note: padding padding padding padding padding padding padding\n");
    {
        const char *names[] = {"info.txt", "log.bin", NULL};
        struct buf bufs[] = {big, log};
        write_zip(p, names, bufs);
        expect_open_error(p, NULL, -EFBIG, "info.txt is");
        bufs[0].p[5] = 0; /* "Sampl\0 Rate" */
        bufs[0].n = 100;
        write_zip(p, names, bufs);
        expect_open_error(p, NULL, -EINVAL, "info.txt line 1 contains a NUL byte");
    }
    /* a truncated archive: the ZIP directory at its end is gone */
    char ref[512];
    shared_path(ref, sizeof ref, "ISM_Disabled.gt3x");
    FILE *in = fopen(ref, "rb"), *out = fopen(p, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char chunk[30000];
    size_t k = fread(chunk, 1, sizeof chunk, in);
    assert_int_equal(fwrite(chunk, 1, k, out), k);
    fclose(in);
    fclose(out);
    expect_open_error(p, NULL, -EINVAL, "not a readable ZIP archive");
    /* not a ZIP at all, --format gt3x */
    out = fopen(p, "wb");
    fputs("Sample Rate: 30\n", out);
    fclose(out);
    expect_open_error(p, "gt3x", -EINVAL, "not a readable ZIP archive");
    /* and no --participant */
    write_gt3x(p, INFO30, &log);
    struct reader rd;
    struct reader_opts o = {0};
    assert_int_equal(reader_open(&rd, p, NULL, &o), -EINVAL);
    assert_non_null(strstr(rd.why, "give --participant"));
    free(info.p);
    free(log.p);
    free(big.p);
}

/* Byte offsets of the records of a log.bin, and the index of the n-th ACTIVITY2 record. */
static size_t nth_activity(const struct buf *log, int n, size_t *rec_no)
{
    size_t o = 0, no = 0;
    while (o + 8 <= log->n) {
        size_t size = (size_t)(log->p[o + 6] | log->p[o + 7] << 8);
        no++;
        if (log->p[o + 1] == 0x1A && n-- == 0) {
            *rec_no = no;
            return o;
        }
        o += 9 + size;
    }
    fail_msg("no such record");
    return 0;
}

/* ISM_Disabled's log.bin (300 one-second ACTIVITY2 records in a row), damaged in copies. */
static void test_damaged_log(void **state)
{
    (void)state;
    char p[128];
    tmp_path(p, sizeof p, "damaged.gt3x");
    struct buf log = entry("ISM_Disabled.gt3x", "log.bin");
    struct run r;
    size_t no;

    /* a payload byte of the 100th ACTIVITY2 record: that second is skipped */
    struct buf d = {0};
    put(&d, log.p, log.n);
    size_t o = nth_activity(&d, 99, &no);
    d.p[o + 50] ^= 0x40;
    write_gt3x(p, INFO30, &d);
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.io_err, 0);
    assert_int_equal(r.n_bad, 1);
    assert_int_equal(r.bad[0].line, no);
    assert_non_null(strstr(r.bad[0].why, "checksum mismatch: skipped"));
    assert_int_equal(r.n, 9000 - 30);
    assert_int_equal(r.seq_breaks, 1);
    run_free(&r);

    /* its size field: the next record is found by its checksum */
    memcpy(d.p, log.p, log.n);
    d.p[o + 6] = 0xF0;
    write_gt3x(p, INFO30, &d);
    run(p, NULL, NULL, &r);
    assert_int_equal(r.n_bad, 1);
    assert_int_equal(r.n, 9000 - 30);
    run_free(&r);

    /* a size running past the end of log.bin */
    memcpy(d.p, log.p, log.n);
    d.p[o + 7] = 0xFF;
    write_gt3x(p, INFO30, &d);
    run(p, NULL, NULL, &r);
    assert_int_equal(r.n_bad, 1);
    assert_non_null(strstr(r.bad[0].why, "runs past the end of log.bin"));
    assert_int_equal(r.n, 9000 - 30);
    run_free(&r);

    /* truncated inside the 200th record: the 199 seconds before it are kept */
    size_t cut = nth_activity(&log, 199, &no) + 100;
    d.n = cut;
    memcpy(d.p, log.p, log.n);
    write_gt3x(p, INFO30, &d);
    run(p, NULL, NULL, &r);
    assert_int_equal(r.n_bad, 1);
    assert_int_equal(r.bad[0].line, no);
    assert_non_null(strstr(r.bad[0].why, "runs past the end of log.bin"));
    assert_int_equal(r.n, 199 * 30);
    assert_int_equal(r.seq_breaks, 0);
    run_free(&r);

    /* junk between two records is reported; zero bytes between records are allowed */
    o = nth_activity(&log, 150, &no);
    d.n = 0;
    put(&d, log.p, o);
    put(&d, "\0\0\0", 3);
    put(&d, log.p + o, nth_activity(&log, 160, &no) - o);
    put(&d, "junk!", 5);
    put(&d, log.p + nth_activity(&log, 160, &no), log.n - nth_activity(&log, 160, &no));
    write_gt3x(p, INFO30, &d);
    run(p, NULL, NULL, &r);
    assert_int_equal(r.n_bad, 1);
    assert_non_null(strstr(r.bad[0].why, "5 bytes at byte"));
    assert_non_null(strstr(r.bad[0].why, "are not records: skipped"));
    assert_int_equal(r.n, 9000);
    assert_int_equal(r.seq_breaks, 0);
    run_free(&r);
    free(d.p);

    /* The archive's own bytes damaged. ISM_Disabled.gt3x stores log.bin uncompressed: 15
     * bytes flipped there break one or two records (their checksums) and the entry's CRC,
     * which the ZIP reader reports at the end, after every sample that checked. */
    char ref[512];
    shared_path(ref, sizeof ref, "ISM_Disabled.gt3x");
    FILE *f = fopen(ref, "rb");
    assert_non_null(f);
    static uint8_t z[65536];
    size_t zn = fread(z, 1, sizeof z, f);
    fclose(f);
    for (size_t i = 20000; i < 20015; i++)
        z[i] ^= 0x5A;
    f = fopen(p, "wb");
    assert_int_equal(fwrite(z, 1, zn, f), zn);
    fclose(f);
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_true(r.n_bad >= 1 && r.n_bad <= 2);
    assert_true(r.n == 9000 - 30 * r.n_bad);
    assert_int_equal(r.io_err, -EIO);
    assert_non_null(strstr(r.io_why, "log.bin: CRC error"));
    run_free(&r);

    /* deflated (as minizip writes it): damaged compressed data stops the entry with an error
     * after the samples decoded before it */
    write_gt3x(p, INFO30, &log);
    f = fopen(p, "rb");
    zn = fread(z, 1, sizeof z, f);
    fclose(f);
    for (size_t i = zn / 2; i < zn / 2 + 15; i++)
        z[i] ^= 0x5A;
    f = fopen(p, "wb");
    assert_int_equal(fwrite(z, 1, zn, f), zn);
    fclose(f);
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.io_err, -EIO);
    assert_non_null(strstr(r.io_why, "log.bin: "));
    assert_true(r.n < 9000);
    run_free(&r);
    free(log.p);
}

/* ---- hand-built logs ---- */

#define S0 1700000000u

/* ISM rules: enter/exit pairs, a missing exit, a gap outside idle sleep, a stretch longer
 * than 31 days; ACTIVITY (12-bit) records, USB markers, impossible records. */
static void test_ism_rules(void **state)
{
    (void)state;
    char p[128];
    tmp_path(p, sizeof p, "ism.gt3x");
    struct buf log = {0};
    parameters(&log, S0 - 100, 0x09400000u); /* 256 LSB/g */
    activity2(&log, S0, 30, 100);
    activity2(&log, S0 + 1, 30, 200);
    event(&log, S0 + 2, 0x08);               /* asleep S0+2 .. S0+9 */
    event(&log, S0 + 10, 0x09);
    activity2(&log, S0 + 10, 30, 300);
    event(&log, S0 + 11, 0x08);              /* the exit event is lost */
    activity2(&log, S0 + 15, 30, 400);       /* S0+11 .. S0+14 filled all the same */
    uint8_t usb = 0x5A;
    record(&log, 0x1A, S0 + 16, &usb, 1);    /* USB connection: not samples */
    activity2(&log, S0 + 20, 30, 500);       /* a gap outside idle sleep: not filled */
    activity2(&log, S0 + 20, 30, 600);       /* the same second again: reported */
    record(&log, 0x1A, S0 + 21, (uint8_t[6 * 31]){0}, 6 * 31); /* 31 samples at 30 Hz */
    event(&log, S0 + 22, 0x08);
    event(&log, S0 + 22 + 40 * 86400, 0x09); /* 40 days asleep: reported, not filled */
    write_gt3x(p, INFO30, &log);
    struct run r;
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.io_err, 0);
    assert_int_equal(r.n_bad, 3);
    assert_non_null(strstr(r.bad[0].why, "is not after the previous one"));
    assert_non_null(strstr(r.bad[1].why, "holds 31 samples; one second at 30 Hz holds 1..30"));
    assert_non_null(strstr(r.bad[2].why, "lasts more than 31 days: not filled"));
    /* S0 .. S0+15 (16 s), then S0+20 */
    assert_int_equal(r.n, 17 * 30);
    assert_int_equal(r.seq_breaks, 1);
    assert_int_equal(r.first_seq, (int64_t)S0 * 30);
    /* samples: (v + i, -v, 2v) / 256, rounded to 3 decimals */
    assert_true(r.g[0][0] == 0.391f && r.g[0][1] == -0.391f && r.g[0][2] == 0.781f);
    for (int s = 2; s < 10; s++)
        assert_true(same(r.g[30 * s + 7], r.g[59])); /* the last sample of S0+1 */
    assert_true(r.g[59][0] == 0.895f); /* (200 + 29) / 256 = 0.89453 */
    for (int s = 11; s < 15; s++)
        assert_true(same(r.g[30 * s], r.g[30 * 10 + 29]));
    assert_true(r.g[30 * 16][0] == 1.953f); /* S0+20: 500 / 256 */
    run_free(&r);
    free(log.p);

    /* ACTIVITY (12-bit Y, X, Z) in log.bin: the reference's example bytes
     * 00 60 08 EB D0 07 00 9E BF = samples (Y 6, X 8, Z -323), (Y 7, X 9, Z -321) at 341 */
    struct buf a = {0};
    static const uint8_t two[9] = {0x00, 0x60, 0x08, 0xEB, 0xD0, 0x07, 0x00, 0x9E, 0xBF};
    record(&a, 0x00, S0, two, sizeof two);
    write_gt3x(p, "Serial Number: NEO1C04110003\nSample Rate: 2\n", &a);
    run(p, NULL, NULL, &r);
    assert_int_equal(r.n_bad, 0);
    assert_int_equal(r.n, 2);
    assert_true(r.g[0][0] == 0.023f && r.g[0][1] == 0.018f && r.g[0][2] == -0.947f);
    assert_true(r.g[1][0] == 0.026f && r.g[1][1] == 0.021f && r.g[1][2] == -0.941f);
    run_free(&r);
    free(a.p);
}

/* Where the scale comes from: PARAMETERS over info.txt over the serial number; none is an
 * error after the samples that had one. */
static void test_scales(void **state)
{
    (void)state;
    char p[128];
    tmp_path(p, sizeof p, "scale.gt3x");
    struct buf log = {0};
    parameters(&log, S0, 0x0A400000u); /* 512 LSB/g */
    activity2(&log, S0, 30, 256);
    write_gt3x(p, INFO30, &log); /* info.txt says 256 */
    struct run r;
    run(p, NULL, NULL, &r);
    assert_true(r.g[0][0] == 0.5f && r.g[0][1] == -0.5f && r.g[0][2] == 1.0f);
    run_free(&r);

    log.n = 0;
    activity2(&log, S0, 30, 256);
    write_gt3x(p, "Serial Number: CLE2B12345678\nSample Rate: 30\n", &log); /* 341 */
    run(p, NULL, NULL, &r);
    assert_true(r.g[0][0] == 0.751f);
    run_free(&r);

    write_gt3x(p, "Serial Number: XYZ0001\nSample Rate: 30\n", &log);
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.io_err, -EINVAL);
    assert_non_null(strstr(r.io_why, "no acceleration scale"));
    run_free(&r);
    free(log.p);

    /* NEO format without a known scale: refused at open */
    struct buf info = {0}, act = {0};
    puts_(&info, "Serial Number: ABC123\nSample Rate: 30\nStart Date: 637755981000000000\n");
    put(&act, (uint8_t[9]){0}, 9);
    const char *names[] = {"info.txt", "activity.bin", NULL};
    struct buf bufs[] = {info, act};
    write_zip(p, names, bufs);
    expect_open_error(p, NULL, -EINVAL, "no acceleration scale");
    /* nor without a start date */
    info.n = 0;
    puts_(&info, "Serial Number: NEO1C04110003\nSample Rate: 30\n");
    bufs[0] = info;
    write_zip(p, names, bufs);
    expect_open_error(p, NULL, -EINVAL, "info.txt has no Start Date");
    /* a trailing partial sample is reported */
    info.n = 0;
    puts_(&info, "Serial Number: NEO1C04110003\nSample Rate: 30\nStart Date: "
                 "637755981000000000\n");
    bufs[0] = info;
    act.n = 0;
    put(&act, (uint8_t[12]){0}, 12); /* two samples and 3 bytes */
    bufs[1] = act;
    write_zip(p, names, bufs);
    run(p, NULL, NULL, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.n_bad, 1);
    assert_non_null(strstr(r.bad[0].why, "ends with 3 bytes that are not a whole sample"));
    run_free(&r);
    free(info.p);
    free(act.p);
}

/* Without TimeZone in info.txt the reader's zone places the device clock; with it, the zone
 * is not used. */
static void test_zones(void **state)
{
    (void)state;
    char p[128];
    tmp_path(p, sizeof p, "zone.gt3x");
    struct buf log = {0};
    activity2(&log, (uint32_t)utc_s(2024, 7, 1, 12, 0, 0), 30, 1);
    struct run r;
    write_gt3x(p, "Serial Number: TAS1\nSample Rate: 30\n", &log);
    run(p, NULL, "America/Chicago", &r); /* CDT, UTC-5 */
    assert_int_equal(r.first_ts, utc_s(2024, 7, 1, 17, 0, 0) * 1000);
    run_free(&r);
    run(p, NULL, NULL, &r);
    assert_int_equal(r.first_ts, utc_s(2024, 7, 1, 12, 0, 0) * 1000);
    run_free(&r);
    write_gt3x(p, "Serial Number: TAS1\nSample Rate: 30\nTimeZone: 02:00:00\n", &log);
    run(p, NULL, "America/Chicago", &r);
    assert_int_equal(r.first_ts, utc_s(2024, 7, 1, 10, 0, 0) * 1000);
    run_free(&r);
    free(log.p);
}

/* The pure decoder fed one byte at a time gives what it gives fed at once. */
static void test_byte_by_byte(void **state)
{
    (void)state;
    struct buf log = entry("ISM_Enabled.gt3x", "log.bin");
    static struct gt3x_log a, b;
    size_t counts[2] = {0, 0};
    double sums[2] = {0, 0};
    struct gt3x_log *ls[2] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        struct gt3x_log *l = ls[k];
        gt3x_log_init(l, 0, 30, 256, 0, 0);
        size_t fed = 0;
        struct gt3x_item it;
        int kind;
        while ((kind = gt3x_log_next(l, &it)) != GT3X_END) {
            assert_true(kind != GT3X_BAD && kind != GT3X_ERROR);
            if (kind == GT3X_NEED_MORE) {
                size_t room;
                uint8_t *s = gt3x_log_space(l, &room);
                size_t n = k == 0 ? log.n - fed : (fed < log.n ? 1 : 0);
                if (n > room)
                    n = room;
                memcpy(s, log.p + fed, n);
                gt3x_log_wrote(l, n);
                fed += n;
                if (n == 0)
                    gt3x_log_end(l);
                continue;
            }
            counts[k] += it.n;
            for (size_t i = 0; i < it.n; i++)
                sums[k] += (it.g ? it.g[i][2] : it.fill[2]) * (double)(it.index + (int64_t)i);
        }
    }
    assert_int_equal(counts[0], 9000);
    assert_int_equal(counts[1], 9000);
    assert_true(sums[0] == sums[1]);
    free(log.p);
}

static void test_param_float(void **state)
{
    (void)state;
    /* the format's examples: 256 LSB/g, 2048 LSB/g, 4.1 V, 21 °C */
    assert_true(gt3x_param_float(0x09400000u) == 256.0);
    assert_true(gt3x_param_float(0x0C400000u) == 2048.0);
    assert_true(fabs(gt3x_param_float(0x03419581u) - 4.1) < 2e-3); /* 4.0989 */
    assert_true(gt3x_param_float(0x05540000u) == 21.0);
    assert_true(gt3x_param_float(0) == 0.0);
    assert_true(isinf(gt3x_param_float(0x007FFFFFu)));
    assert_true(gt3x_param_float(0xFFC00000u) == -0.25); /* -0.5 * 2^-1 */
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
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_gt3x.XXXXXX");
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
        cmocka_unit_test(test_neo_expected),
        cmocka_unit_test(test_ism),
        cmocka_unit_test(test_small),
        cmocka_unit_test(test_archive_errors),
        cmocka_unit_test(test_damaged_log),
        cmocka_unit_test(test_ism_rules),
        cmocka_unit_test(test_scales),
        cmocka_unit_test(test_zones),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_param_float),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
