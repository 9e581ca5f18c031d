/* drivers/cwa.c and drivers/file_cwa.c: the reference recording
 * ../shared/data/raw/ax3-example-610-steps.cwa (ble.md §8.2: 595 blocks, 71,400 samples, all
 * checksums valid) through the pure decoder and through the reader; hand-built files in the
 * other sample formats and rates; and corrupted copies written to a temp dir (damaged,
 * truncated, impossible and foreign blocks, appended recordings). */
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

#include "drivers/cwa.h"
#include "drivers/reader.h"
#include "pipeline/tz.h"

#define REF "ax3-example-610-steps.cwa"
#define REF_BLOCKS 595

static char tmpdir[64];
static struct tz_db *tzdb;

static void shared_path(char *buf, size_t n, const char *name)
{
    const char *s = getenv("ENGAGED_SHARED");
    snprintf(buf, n, "%s/data/raw/%s", s ? s : "../../shared", name);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static uint8_t *reference(size_t *len)
{
    char p[512];
    shared_path(p, sizeof p, REF);
    return slurp(p, len);
}

static void spit(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

static uint8_t *block_at(uint8_t *file, size_t k)
{
    return file + CWA_HEADER_SIZE + CWA_BLOCK_SIZE * k;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Sets the checksum word so that the block's words sum to 0 again. */
static void fix_sum(uint8_t *b)
{
    put16(b + 510, 0);
    put16(b + 510, (uint16_t)(0x10000 - cwa_block_sum(b)));
    assert_int_equal(cwa_block_sum(b), 0);
}

static uint32_t pack_time(int y, int mo, int d, int h, int mi, int s)
{
    return (uint32_t)(y - 2000) << 26 | (uint32_t)mo << 22 | (uint32_t)d << 17 |
           (uint32_t)h << 12 | (uint32_t)mi << 6 | (uint32_t)s;
}

static int64_t utc_s(int y, int mo, int d, int h, int mi, int s)
{
    return civil_to_days(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s;
}

/* ---- running the reader ---- */

struct bad {
    uint64_t line;
    int kind;
    char why[256];
};

struct run {
    int open_rc;
    char open_why[320];
    size_t n_events, n;     /* events, samples */
    float (*g)[3];          /* every sample, in order */
    size_t cap;
    int64_t first_ts, last_ts, first_seq, last_seq;
    double hz;
    size_t seq_breaks;      /* events not following on from the previous one */
    struct bad bad[32];
    size_t n_bad, n_unknown;
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
    assert_string_equal(r.ops->name, "cwa");
    struct event ev;
    int k;
    int64_t next_seq = -1;
    while ((k = r.ops->next(&r, &ev)) != READ_EOF) {
        if (k < 0) {
            out->io_err = k;
            snprintf(out->io_why, sizeof out->io_why, "%s", r.why ? r.why : "(null)");
            break;
        }
        if (k != READ_EVENT) {
            assert_true(k == READ_BAD || k == READ_UNKNOWN);
            assert_non_null(r.why);
            size_t at = out->n_bad + out->n_unknown;
            struct bad *b = &out->bad[at < 32 ? at : 31];
            b->line = r.line;
            b->kind = k;
            snprintf(b->why, sizeof b->why, "%s", r.why);
            if (k == READ_BAD)
                out->n_bad++;
            else
                out->n_unknown++;
            if (out->n_bad + out->n_unknown > 32)
                fail_msg("too many reports");
            continue;
        }
        assert_int_equal(ev.type, EV_ACCEL);
        assert_string_equal(ev.participant, "p1");
        assert_string_equal(ev.source, "cwa");
        assert_true(ev.has_seq && ev.seq >= 0);
        assert_true(ev.u.accel.n >= 1 && ev.u.accel.n <= EV_ACCEL_MAX);
        if (out->n_events == 0) {
            out->first_ts = ev.ts;
            out->first_seq = ev.seq;
            out->hz = ev.u.accel.hz;
        } else if (ev.seq != next_seq) {
            out->seq_breaks++;
        }
        assert_true(ev.ts >= out->last_ts);
        out->last_ts = ev.ts;
        next_seq = ev.seq + (int64_t)ev.u.accel.n;
        out->last_seq = next_seq - 1;
        if (out->n + ev.u.accel.n > out->cap) {
            out->cap = (out->cap + ev.u.accel.n) * 2;
            out->g = realloc(out->g, out->cap * sizeof *out->g);
            assert_non_null(out->g);
        }
        for (size_t i = 0; i < ev.u.accel.n; i++)
            for (int a = 0; a < 3; a++) {
                float v = ev.u.accel.g[i][a];
                assert_true(isfinite(v) && fabsf(v) <= 1000);
                out->g[out->n + i][a] = v;
            }
        out->n += ev.u.accel.n;
        out->n_events++;
    }
    reader_close(&r);
}

/* ---- the reference file ---- */

/* Through the pure decoder: every block, every field the reference lists. */
static void test_reference_decoder(void **state)
{
    (void)state;
    size_t len;
    uint8_t *f = reference(&len);
    assert_int_equal(len, 305664);
    struct cwa_header h;
    const char *why = NULL;
    assert_int_equal(cwa_header_parse(f, len, &h, &why), 0);
    assert_int_equal(h.hardware, 0x00);
    assert_int_equal(h.device_id, 1841);
    assert_int_equal(h.session_id, 0);
    assert_int_equal(h.rate_code, 0x4A);
    assert_true(h.hz == 100.0);
    assert_int_equal(h.range_g, 8);
    assert_int_equal(h.logging_start, 0);
    assert_int_equal(h.logging_end, 0xFFFFFFFFu);
    assert_string_equal(h.annotation, "_so=Kim");
    assert_int_equal((len - CWA_HEADER_SIZE) % CWA_BLOCK_SIZE, 0);
    size_t blocks = (len - CWA_HEADER_SIZE) / CWA_BLOCK_SIZE, samples = 0, bad_sums = 0;
    assert_int_equal(blocks, REF_BLOCKS);
    static struct cwa_block b;
    for (size_t k = 0; k < blocks; k++) {
        const uint8_t *p = block_at(f, k);
        assert_int_equal(cwa_block_kind(p), CWA_KIND_DATA);
        bad_sums += cwa_block_sum(p) != 0;
        assert_int_equal(cwa_block_decode(p, &b, &why), 0);
        assert_int_equal(b.sequence, k); /* 0..594 without gaps */
        assert_int_equal(b.session_id, 0);
        assert_int_equal(b.format, 0x30);
        assert_int_equal(b.n, 120);
        assert_int_equal(b.rate_code, 0x4A);
        assert_true(b.fraction == 0);
        samples += (size_t)b.n;
        if (k == 0) {
            assert_int_equal(b.time_s, utc_s(2012, 3, 27, 11, 14, 58));
            assert_int_equal(b.offset, 50);
            /* the first packed word is 0xBC1023F2: exponent 2; x = 0x3F2 = -14, y = 0x008,
             * z = 0x3C1 = -63; times 4 / 256 */
            assert_int_equal(p[30] | p[31] << 8 | p[32] << 16 | (uint32_t)p[33] << 24, 0xBC1023F2u);
            assert_true(b.g[0][0] == -0.21875f && b.g[0][1] == 0.125f && b.g[0][2] == -0.984375f);
            assert_true(b.g[1][0] == 0.0f && b.g[1][1] == 0.015625f && b.g[1][2] == -1.015625f);
            assert_true(b.g[2][0] == 0.0f && b.g[2][1] == 0.015625f && b.g[2][2] == -1.0625f);
            /* light 569, temperature 270 * 75 / 256 - 50, battery (177 + 512) * 6 / 1024 V */
            assert_int_equal(b.light, 569);
            assert_true(fabs(b.temperature_c - 29.1015625) < 1e-12);
            assert_true(fabs(b.battery_v - 4.037109375) < 1e-12);
            assert_int_equal(b.events, 1);
        }
        if (k == 1)
            assert_int_equal(b.offset, 128); /* beyond the block's 120 samples: allowed */
        if (k == blocks - 1) {
            assert_int_equal(b.time_s, utc_s(2012, 3, 27, 11, 27, 2));
            assert_true(b.g[119][0] == 0.5f && b.g[119][1] == 0.28125f &&
                        b.g[119][2] == 0.765625f);
        }
    }
    assert_int_equal(samples, 71400);
    assert_int_equal(bad_sums, 0); /* all checksums valid */
    free(f);
}

/* Through the reader: one segment, resampled to 100 Hz on the block timestamps. Block 0 has
 * its whole second 11:14:58 at sample 50, block 1 11:15:00 at sample 120 + 128: 99 samples a
 * second, so sample 0 was taken at 11:14:57.494949... and the first grid instant, 57.50, lies
 * half-way between samples 0 and 1. The last two anchors (71,279 at 11:27:01, 71,377 at :02)
 * put the last sample (71,399) at 11:27:02.2245: grid instants 57.50 .. 11:27:02.22, i.e.
 * 72,473 samples. */
static void test_reference_reader(void **state)
{
    (void)state;
    char p[512];
    shared_path(p, sizeof p, REF);
    struct run r;
    run(p, NULL, NULL, &r); /* auto-detected */
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.io_err, 0);
    assert_int_equal(r.n_bad, 0);
    assert_int_equal(r.n_unknown, 0);
    assert_int_equal(r.seq_breaks, 0);
    assert_true(r.hz == 100.0);
    assert_int_equal(r.n, 72473);
    assert_int_equal(r.n_events, (72473 + EV_ACCEL_MAX - 1) / EV_ACCEL_MAX);
    int64_t t0 = utc_s(2012, 3, 27, 11, 14, 57) * 1000 + 500;
    assert_int_equal(r.first_ts, t0);
    assert_int_equal(r.first_seq, t0 / 10);             /* grid index at 100 Hz */
    assert_int_equal(r.last_seq, utc_s(2012, 3, 27, 11, 27, 2) * 100 + 22);
    assert_true(r.g[0][0] == -0.109375f && r.g[0][1] == 0.0703125f && r.g[0][2] == -1.0f);
    /* interpolation never leaves the range of the raw samples */
    size_t len;
    uint8_t *f = reference(&len);
    static struct cwa_block b;
    float lo[3] = {1e9, 1e9, 1e9}, hi[3] = {-1e9, -1e9, -1e9};
    const char *why;
    for (size_t k = 0; k < REF_BLOCKS; k++) {
        assert_int_equal(cwa_block_decode(block_at(f, k), &b, &why), 0);
        for (int i = 0; i < b.n; i++)
            for (int a = 0; a < 3; a++) {
                lo[a] = fminf(lo[a], b.g[i][a]);
                hi[a] = fmaxf(hi[a], b.g[i][a]);
            }
    }
    for (size_t i = 0; i < r.n; i++)
        for (int a = 0; a < 3; a++)
            assert_true(r.g[i][a] >= lo[a] && r.g[i][a] <= hi[a]);
    free(f);
    run_free(&r);
}

/* The device clock is local time: with --tz Europe/London (BST on 2012-03-27) every time moves
 * one hour earlier; seq (device clock) stays. */
static void test_reference_zone(void **state)
{
    (void)state;
    char p[512];
    shared_path(p, sizeof p, REF);
    struct run r, u;
    run(p, "cwa", "Europe/London", &r);
    run(p, "cwa", NULL, &u);
    assert_int_equal(r.first_ts, u.first_ts - 3600000);
    assert_int_equal(r.last_ts, u.last_ts - 3600000);
    assert_int_equal(r.first_seq, u.first_seq);
    assert_int_equal(r.n, u.n);
    run_free(&r);
    run_free(&u);
}

/* ---- damaged copies ---- */

/* One flipped byte in block 100: that block is reported (block 101 of the data area, byte
 * offset 1024 + 51,200) and skipped, the 594 others are kept in two segments. */
static void test_bad_checksum(void **state)
{
    (void)state;
    size_t len;
    uint8_t *f = reference(&len);
    block_at(f, 100)[200] ^= 0x10;
    char p[128];
    tmp_path(p, sizeof p, "badsum.cwa");
    spit(p, f, len);
    struct run r;
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.io_err, 0);
    assert_int_equal(r.n_bad, 1);
    assert_int_equal(r.bad[0].line, 101);
    assert_non_null(strstr(r.bad[0].why, "block 101 (byte offset 52224): checksum mismatch"));
    assert_int_equal(r.seq_breaks, 1);
    /* 120 raw samples (about 1.2 s) are missing; both segments end at their own samples */
    assert_true(r.n < 72473 - 110 && r.n > 72473 - 130);
    free(f);
    run_free(&r);
}

/* Truncated: inside block 300, after only the header, inside the header. */
static void test_truncated(void **state)
{
    (void)state;
    size_t len;
    uint8_t *f = reference(&len);
    char p[128];
    tmp_path(p, sizeof p, "cut.cwa");
    spit(p, f, CWA_HEADER_SIZE + 300 * CWA_BLOCK_SIZE + 100);
    struct run r;
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.n_bad, 1);
    assert_int_equal(r.bad[0].line, 301);
    assert_non_null(strstr(r.bad[0].why, "file ends 100 bytes into the block"));
    assert_int_equal(r.seq_breaks, 0);
    /* 300 whole blocks: 36,000 raw samples at about 98.6 Hz */
    assert_true(r.n > 36000 * 100 / 99 - 50 && r.n < 36000 * 100 / 98 + 50);
    run_free(&r);

    spit(p, f, CWA_HEADER_SIZE); /* a header and no data: nothing, no error */
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.n + r.n_bad + r.n_unknown, 0);
    run_free(&r);

    spit(p, f, 700);
    run(p, "cwa", NULL, &r);
    assert_int_equal(r.open_rc, -EINVAL);
    assert_non_null(strstr(r.open_why, "too short for a CWA header"));
    run_free(&r);

    f[2] = 0; /* "MD" with another packet length */
    spit(p, f, len);
    run(p, "cwa", NULL, &r);
    assert_int_equal(r.open_rc, -EINVAL);
    assert_non_null(strstr(r.open_why, "not a CWA file"));
    run_free(&r);
    free(f);
}

/* Blocks with valid checksums but impossible contents, foreign and erased blocks: each is
 * reported with its reason (or skipped silently, when erased), everything else is kept. */
static void test_impossible_blocks(void **state)
{
    (void)state;
    size_t len;
    uint8_t *f = reference(&len);
    uint8_t *b;
    b = block_at(f, 10);
    put16(b + 28, 500); /* sample count */
    fix_sum(b);
    b = block_at(f, 20);
    b[24] = 0x40; /* rate code 0x40: 3200 / 2^15 Hz */
    fix_sum(b);
    b = block_at(f, 30);
    put32(b + 14, pack_time(2012, 13, 27, 11, 15, 0)); /* month 13 */
    fix_sum(b);
    b = block_at(f, 40);
    b[25] = 0x35; /* numAxesBPS */
    fix_sum(b);
    b = block_at(f, 50);
    put16(b + 26, (unsigned)(int16_t)-2000); /* timestampOffset */
    fix_sum(b);
    b = block_at(f, 60);
    put32(b + 14, 0); /* no timestamp */
    fix_sum(b);
    b = block_at(f, 70);
    b[0] = 'X'; /* another block type */
    b[1] = 'Y';
    b = block_at(f, 80);
    memset(b, 0xFF, CWA_BLOCK_SIZE); /* erased */
    b = block_at(f, 90);
    b[0] = 0x13; /* garbage */
    b = block_at(f, 100);
    put16(b + 2, 200); /* "AX" with another length */
    char p[128];
    tmp_path(p, sizeof p, "impossible.cwa");
    spit(p, f, len);
    struct run r;
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.io_err, 0);
    static const struct {
        uint64_t line;
        int kind;
        const char *why;
    } want[] = {
        {11, READ_BAD, "sample count is 0 or more than the block's format holds"},
        {21, READ_BAD, "rate code names a rate outside 6.25..3200 Hz"},
        {31, READ_BAD, "timestamp is 0 (unknown) or not a valid date and time"},
        {41, READ_BAD, "sample format (numAxesBPS) is not 0x30, 0x32 or 0x62"},
        {51, READ_BAD, "timestampOffset is more than a second of samples outside the block"},
        {61, READ_BAD, "timestamp is 0 (unknown)"},
        {71, READ_UNKNOWN, "block type \"XY\" is not read, skipped"},
        {91, READ_BAD, "not a CWA block (starts 0x13 0x58)"},
        {101, READ_BAD, "data block with packet length 200, not 508"},
    };
    assert_int_equal(r.n_bad + r.n_unknown, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(r.bad[i].line, want[i].line);
        assert_int_equal(r.bad[i].kind, want[i].kind);
        if (!strstr(r.bad[i].why, want[i].why))
            fail_msg("report %zu: \"%s\" lacks \"%s\"", i, r.bad[i].why, want[i].why);
    }
    /* 10 blocks gone (9 reported, 1 erased): 11 segments, 585 blocks of samples */
    assert_int_equal(r.seq_breaks, 10);
    assert_true(r.n > 585 * 120 * 100 / 99 - 11 * 3 && r.n < 585 * 120 * 100 / 98);
    free(f);
    run_free(&r);
}

/* A second recording appended (its "MD" header in the middle, then its own blocks under
 * another session id): read on without a report, as a new segment. */
static void test_appended_recording(void **state)
{
    (void)state;
    size_t len;
    uint8_t *f = reference(&len);
    size_t half = CWA_HEADER_SIZE + 200 * CWA_BLOCK_SIZE;
    uint8_t *g = malloc(len + CWA_HEADER_SIZE);
    assert_non_null(g);
    memcpy(g, f, half);
    memcpy(g + half, f, CWA_HEADER_SIZE);
    memcpy(g + half + CWA_HEADER_SIZE, f + half, len - half);
    for (size_t k = 200; k < REF_BLOCKS; k++) {
        uint8_t *b = g + CWA_HEADER_SIZE + CWA_HEADER_SIZE + CWA_BLOCK_SIZE * k;
        put32(b + 6, 7); /* session 7 */
        put32(b + 10, (uint32_t)(k - 200));
        fix_sum(b);
    }
    char p[128];
    tmp_path(p, sizeof p, "appended.cwa");
    spit(p, g, len + CWA_HEADER_SIZE);
    struct run r;
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.n_bad + r.n_unknown, 0);
    /* a new segment, but no time lost: at most the grid instant between the two is skipped */
    assert_true(r.seq_breaks <= 1);
    assert_true(r.n > 72473 - 10 && r.n < 72473 + 10);
    free(g);
    free(f);
    run_free(&r);
}

/* ---- hand-built files: other formats and rates ---- */

static void make_header(uint8_t *h, uint8_t rate_code)
{
    memset(h, 0xFF, CWA_HEADER_SIZE);
    h[0] = 'M';
    h[1] = 'D';
    put16(h + 2, 1020);
    h[4] = 0x64;
    put16(h + 5, 42);
    put32(h + 7, 9);
    h[36] = rate_code;
}

/* A block holding samples [first, first + n) of an ideal recording at hz starting at
 * 2024-03-01 10:00:00: the whole second is the first one at or after the block's first
 * sample that falls exactly on a sample, at that sample's index. raw(i, a) gives the stored
 * values. */
static void make_block(uint8_t *b, uint32_t seq, uint8_t rate_code, uint8_t format, int n,
                       int64_t first, double hz, uint16_t light, int32_t (*raw)(int64_t, int))
{
    memset(b, 0, CWA_BLOCK_SIZE);
    b[0] = 'A';
    b[1] = 'X';
    put16(b + 2, 508);
    put32(b + 6, 9);
    put32(b + 10, seq);
    int64_t sec = (int64_t)ceil((double)first / hz);
    while ((double)sec * hz != floor((double)sec * hz))
        sec++; /* 12.5 Hz: only even seconds fall on a sample */
    int64_t at = (int64_t)llround((double)sec * hz);
    int64_t ss = sec % 60, mm = 10 * 60 + sec / 60; /* minutes after 00:00 */
    put32(b + 14, pack_time(2024, 3, 1, (int)(mm / 60), (int)(mm % 60), (int)ss));
    put16(b + 18, light);
    b[24] = rate_code;
    b[25] = format;
    put16(b + 26, (unsigned)(int16_t)(at - first));
    put16(b + 28, (unsigned)n);
    uint8_t *p = b + 30;
    for (int i = 0; i < n; i++) {
        int64_t k = first + i;
        if (format == 0x30) {
            uint32_t w = (uint32_t)raw(k, 3) << 30;
            for (int a = 0; a < 3; a++)
                w |= ((uint32_t)raw(k, a) & 0x3FF) << (10 * a);
            put32(p + 4 * i, w);
        } else if (format == 0x32) {
            for (int a = 0; a < 3; a++)
                put16(p + 6 * i + 2 * a, (uint16_t)raw(k, a));
        } else {
            for (int a = 0; a < 6; a++) /* gyro then accel */
                put16(p + 12 * i + 2 * a, (uint16_t)(a < 3 ? 0x7777 : raw(k, a - 3)));
        }
    }
    fix_sum(b);
}

static int32_t raw_s16(int64_t k, int a)
{
    return (int32_t)((k * 37 + a * 1000) % 8000) - 4000;
}

static int32_t raw_packed(int64_t k, int a)
{
    if (a == 3)
        return (int32_t)(k % 4); /* exponent */
    return (int32_t)((k * 13 + a * 300) % 1024) - 512;
}

/* Writes blocks of an ideal recording and reads it back: at an exact rate every grid instant
 * falls on a raw sample, so the reader must give back exactly the stored samples. */
static void check_ideal(const char *name, uint8_t rate_code, double hz, uint8_t format, int n,
                        uint16_t light, size_t blocks, int32_t (*raw)(int64_t, int),
                        double scale)
{
    size_t len = CWA_HEADER_SIZE + blocks * CWA_BLOCK_SIZE;
    uint8_t *f = malloc(len);
    assert_non_null(f);
    make_header(f, rate_code);
    for (size_t k = 0; k < blocks; k++)
        make_block(block_at(f, k), (uint32_t)k, rate_code, format, n, (int64_t)k * n, hz, light,
                   raw);
    char p[128];
    tmp_path(p, sizeof p, name);
    spit(p, f, len);
    struct run r;
    run(p, NULL, NULL, &r);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.n_bad + r.n_unknown, 0);
    assert_int_equal(r.seq_breaks, 0);
    assert_true(r.hz == hz);
    assert_int_equal(r.n, blocks * (size_t)n);
    assert_int_equal(r.first_ts, utc_s(2024, 3, 1, 10, 0, 0) * 1000);
    assert_int_equal(r.first_seq, (int64_t)(utc_s(2024, 3, 1, 10, 0, 0) * hz));
    for (size_t i = 0; i < r.n; i++)
        for (int a = 0; a < 3; a++) {
            double want = format == 0x30 ? raw((int64_t)i, a) * (double)(1 << raw((int64_t)i, 3))
                                         : raw((int64_t)i, a);
            if (fabs(r.g[i][a] - want / scale) > 1e-5)
                fail_msg("%s sample %zu axis %d: %g, want %g", name, i, a, r.g[i][a],
                         want / scale);
        }
    free(f);
    run_free(&r);
}

static void test_formats(void **state)
{
    (void)state;
    /* 0x32: int16 x, y, z at 1/256 g (light word's top bits 0), 100 Hz (code 0x4A) */
    check_ideal("s16.cwa", 0x4A, 100, 0x32, 80, 0x0123, 50, raw_s16, 256);
    /* 0x62 (AX6): gyro then accel, accel scale 1/2^(8+3) from the light word, 50 Hz */
    check_ideal("ax6.cwa", 0x49, 50, 0x62, 40, 3 << 13, 60, raw_s16, 2048);
    /* 0x30 at 12.5 Hz, exponents 0..3 and negative values */
    check_ideal("packed.cwa", 0x07, 12.5, 0x30, 120, 0, 8, raw_packed, 256);
    /* 400 Hz: three or four blocks share each whole second (the same anchor repeated) */
    check_ideal("fast.cwa", 0x0C, 400, 0x30, 120, 0, 100, raw_packed, 256);
}

/* The resampler on its own: what starts a new segment. */
static void test_stream_rules(void **state)
{
    (void)state;
    static struct cwa_stream s;
    static struct cwa_block b;
    memset(&b, 0, sizeof b);
    cwa_stream_reset(&s);
    b.hz = 100;
    b.rate_code = 0x4A;
    b.format = 0x30;
    b.n = 120;
    b.time_s = utc_s(2024, 1, 1, 0, 0, 0);
    assert_false(cwa_stream_continues(&s, &b)); /* nothing open */
    cwa_stream_add(&s, &b);
    float out[300][3];
    int64_t idx;
    assert_int_equal(cwa_stream_take(&s, 0, out, 300, &idx), 0); /* one anchor: no rate yet */
    b.sequence = 1;
    b.time_s += 1;
    b.offset = -20;
    assert_true(cwa_stream_continues(&s, &b)); /* 100 samples in 1 s */
    b.sequence = 2;
    assert_false(cwa_stream_continues(&s, &b)); /* sequence 1 was not added */
    b.sequence = 1;
    b.time_s += 1;
    assert_false(cwa_stream_continues(&s, &b)); /* 100 samples in 2 s: a clock jump */
    b.time_s -= 3;
    assert_false(cwa_stream_continues(&s, &b)); /* backwards */
    b.time_s += 2;
    b.session_id = 5;
    assert_false(cwa_stream_continues(&s, &b)); /* another recording */
    b.session_id = 0;
    b.rate_code = 0x4B;
    assert_false(cwa_stream_continues(&s, &b)); /* another rate */
    b.rate_code = 0x4A;
    cwa_stream_add(&s, &b);
    size_t k = cwa_stream_take(&s, 0, out, 300, &idx);
    assert_int_equal(idx, utc_s(2024, 1, 1, 0, 0, 0) * 100);
    assert_int_equal(k, 100); /* up to the second anchor */
    k += cwa_stream_take(&s, 1, out, 300, &idx);
    assert_int_equal(k, 240); /* flushed: the last raw sample's instant */
    assert_int_equal(idx, utc_s(2024, 1, 1, 0, 0, 0) * 100 + 100);
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
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_cwa.XXXXXX");
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
        cmocka_unit_test(test_reference_decoder),
        cmocka_unit_test(test_reference_reader),
        cmocka_unit_test(test_reference_zone),
        cmocka_unit_test(test_bad_checksum),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_impossible_blocks),
        cmocka_unit_test(test_appended_recording),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_stream_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
