/* drivers/usb_proto.h, the pure parts of the live USB drivers: the AX3/AX6 command replies
 * (every field range-checked), the docked-device CWA walk (against the file reader on the
 * reference recording ../shared/data/raw/ax3-example-610-steps.cwa: the same samples; resumed
 * from any event's seq, unplugged half way, damaged blocks: nothing twice, nothing skipped),
 * and the Android Open Accessory envelopes (split and merged transfers, bad envelopes, a cut
 * stream). */
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

#include "drivers/reader.h"
#include "drivers/usb_proto.h"
#include "pipeline/tz.h"

#define REF "ax3-example-610-steps.cwa"

/* ---- AX3 command interface ---- */

static void test_lines(void **state)
{
    (void)state;
    struct ax3cmd_lines l;
    ax3cmd_lines_init(&l);
    const char *line;
    const char in[] = "\r\nID=CWA,17,47,123\r\nTI";
    size_t used = ax3cmd_lines_feed(&l, in, sizeof in - 1, &line);
    assert_non_null(line);
    assert_string_equal(line, "ID=CWA,17,47,123");
    assert_int_equal(used, 19); /* up to the CR; the LF is a blank line next time */
    used += ax3cmd_lines_feed(&l, in + used, sizeof in - 1 - used, &line);
    assert_null(line);
    assert_int_equal(used, sizeof in - 1);
    /* the line goes on in the next read, with a NUL that is dropped */
    const char more[] = "ME=2024\0-01-02,03:04:05\n";
    used = ax3cmd_lines_feed(&l, more, sizeof more - 1, &line);
    assert_non_null(line);
    assert_string_equal(line, "TIME=2024-01-02,03:04:05");
    assert_int_equal(l.nul_bytes, 1);
    /* a line longer than the limit is dropped whole, and the next one is fine */
    char big[AX3CMD_LINE_MAX * 2 + 16];
    memset(big, 'x', sizeof big);
    big[sizeof big - 2] = '\r';
    big[sizeof big - 1] = '\n';
    used = ax3cmd_lines_feed(&l, big, sizeof big, &line);
    assert_null(line);
    assert_int_equal(used, sizeof big);
    assert_int_equal(l.overlong_lines, 1);
    used = ax3cmd_lines_feed(&l, "OK\r", 3, &line);
    assert_string_equal(line, "OK");
}

static void test_id(void **state)
{
    (void)state;
    struct ax3cmd_id id;
    char why[USB_WHY_MAX];
    assert_int_equal(ax3cmd_parse_id("ID=CWA,17,47,123", &id, why), 0);
    assert_string_equal(id.kind, "CWA");
    assert_int_equal(id.hardware, 17);
    assert_int_equal(id.firmware, 47);
    assert_int_equal(id.device_id, 123);
    assert_int_equal(ax3cmd_parse_id("ID=AX6,100,52,4294967295,extra", &id, why), 0);
    assert_int_equal(id.device_id, 4294967295u);
    assert_int_equal(ax3cmd_parse_id("TIME=2024-01-01,00:00:00", &id, why), -ENOENT);
    const char *bad[] = {"ID=", "ID=CWA", "ID=,1,2,3", "ID=CWA,1,2", "ID=CWA,x,2,3",
                         "ID=CWA,1,2,4294967296", "ID=CWA,1,2,3x", "ID=TOOLONGKIND,1,2,3",
                         "ID=C\x01,1,2,3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = 0;
        assert_int_equal(ax3cmd_parse_id(bad[i], &id, why), -EINVAL);
        assert_true(strlen(why) > 10);
    }
}

static void test_batt(void **state)
{
    (void)state;
    struct ax3cmd_batt b;
    char why[USB_WHY_MAX];
    assert_int_equal(ax3cmd_parse_batt("$BATT=718,4012,mV,87,0", &b, why), 0);
    assert_int_equal(b.raw, 718);
    assert_int_equal(b.mv, 4012);
    assert_int_equal(b.pct, 87);
    assert_int_equal(b.charged, 0);
    assert_int_equal(ax3cmd_parse_batt("$BATT=718,4200,mV,100,1", &b, why), 0);
    assert_int_equal(b.charged, 1);
    assert_int_equal(ax3cmd_parse_batt("BATT=1", &b, why), -ENOENT);
    const char *bad[] = {"$BATT=", "$BATT=718,4012,V,87,0", "$BATT=718,4012,mV,101,0",
                         "$BATT=718,4012,mV,87,2", "$BATT=718,9000,mV,87,0",
                         "$BATT=718,4012,mV,87,0,", "$BATT=-1,4012,mV,87,0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ax3cmd_parse_batt(bad[i], &b, why), -EINVAL);
}

static void test_time(void **state)
{
    (void)state;
    int64_t t;
    char why[USB_WHY_MAX], cmd[64];
    assert_int_equal(ax3cmd_parse_time("TIME=2024-01-02,03:04:05", &t, why), 0);
    assert_int_equal(t, 1704164645);
    assert_int_equal(ax3cmd_parse_time("TIME=2024-02-29,23:59:59", &t, why), 0);
    const char *bad[] = {"TIME=2023-02-29,00:00:00", "TIME=1999-12-31,23:59:59",
                         "TIME=2064-01-01,00:00:00", "TIME=2024-13-01,00:00:00",
                         "TIME=2024-01-01,24:00:00", "TIME=2024-01-01 00:00:00",
                         "TIME=2024-01-01,00:00:0", "TIME=2024-01-01,00:00:00Z",
                         "TIME=20x4-01-01,00:00:00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ax3cmd_parse_time(bad[i], &t, why), -EINVAL);
    assert_int_equal(ax3cmd_parse_time("TIMEOUT", &t, why), -ENOENT);
    /* the set command round-trips through the reply format */
    int n = ax3cmd_format_set_time(1704164645, cmd, sizeof cmd);
    assert_int_equal(n, 26);
    assert_string_equal(cmd, "TIME 2024-01-02,03:04:05\r\n");
    cmd[4] = '=';
    cmd[24] = 0;
    assert_int_equal(ax3cmd_parse_time(cmd, &t, why), 0);
    assert_int_equal(t, 1704164645);
    assert_int_equal(ax3cmd_format_set_time(946684800 - 1, cmd, sizeof cmd), -ERANGE);
    assert_int_equal(ax3cmd_format_set_time(2966371200, cmd, sizeof cmd), -ERANGE); /* 2064 */
    assert_int_equal(ax3cmd_format_set_time(1704164645, cmd, 10), -ENOBUFS);
}

/* ---- CWA walk ---- */

static uint8_t *slurp(size_t *len)
{
    char path[512];
    const char *s = getenv("ENGAGED_SHARED");
    snprintf(path, sizeof path, "%s/data/raw/%s", s ? s : "../../../shared", REF);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Every sample a walk emits: grid index (from the event's seq) and value. */
struct samples {
    size_t n, cap;
    int64_t *idx;
    float (*g)[3];
    size_t events;
    int64_t last_seq;
};

static void keep(struct samples *s, const struct event *ev)
{
    int64_t per = cwain_period_ns(ev->u.accel.hz);
    assert_true(per > 0);
    assert_true(ev->has_seq);
    assert_true(s->events == 0 || ev->seq > s->last_seq); /* seq only grows */
    assert_int_equal(ev->seq % per, 0);
    int64_t first = ev->seq / per - (int64_t)ev->u.accel.n + 1;
    for (size_t i = 0; i < ev->u.accel.n; i++) {
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 4096;
            s->idx = realloc(s->idx, s->cap * sizeof *s->idx);
            s->g = realloc(s->g, s->cap * sizeof *s->g);
            assert_non_null(s->idx);
            assert_non_null(s->g);
        }
        s->idx[s->n] = first + (int64_t)i;
        memcpy(s->g[s->n], ev->u.accel.g[i], sizeof s->g[0]);
        s->n++;
    }
    s->events++;
    s->last_seq = ev->seq;
}

/* Feeds blocks [from, to) of file b through u; end = 1 flushes at the end. */
static void walk(struct cwain *u, const uint8_t *b, size_t from, size_t to, int end,
                 struct samples *out)
{
    struct event ev;
    for (size_t k = from; k < to; k++) {
        while (cwain_take(u, 0, "p01", "ax3", &ev))
            keep(out, &ev);
        int r = cwain_block(u, b + CWA_HEADER_SIZE + k * CWA_BLOCK_SIZE,
                            CWA_HEADER_SIZE + k * CWA_BLOCK_SIZE);
        assert_true(r >= 0);
    }
    while (cwain_take(u, end, "p01", "ax3", &ev))
        keep(out, &ev);
}

static void free_samples(struct samples *s)
{
    free(s->idx);
    free(s->g);
    memset(s, 0, sizeof *s);
}

static struct cwain *new_walk(int have_after, int64_t after)
{
    struct cwain *u = malloc(sizeof *u);
    assert_non_null(u);
    cwain_init(u, NULL, have_after, after);
    return u;
}

/* The same samples as the file reader, with seqs that name the last sample of each event. */
static void test_cwain_reference(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = slurp(&len);
    if (!b)
        skip();
    size_t nblk = (len - CWA_HEADER_SIZE) / CWA_BLOCK_SIZE;
    struct cwain *u = new_walk(0, 0);
    struct samples s = {0};
    walk(u, b, 0, nblk, 1, &s);
    assert_int_equal(u->st.data, 595);
    assert_int_equal(u->st.bad, 0);
    /* the reader, on the same file */
    char path[512];
    const char *sh = getenv("ENGAGED_SHARED");
    snprintf(path, sizeof path, "%s/data/raw/%s", sh ? sh : "../../../shared", REF);
    struct reader_opts o = {.participant = "p01"};
    struct reader r;
    assert_int_equal(reader_open(&r, path, "cwa", &o), 0);
    struct event ev;
    size_t i = 0;
    int k;
    int64_t first_ts = 0;
    while ((k = r.ops->next(&r, &ev)) != READ_EOF) {
        assert_true(k == READ_EVENT);
        if (!first_ts)
            first_ts = ev.ts;
        for (size_t j = 0; j < ev.u.accel.n; j++, i++) {
            assert_true(i < s.n);
            for (int a = 0; a < 3; a++)
                assert_true(ev.u.accel.g[j][a] == s.g[i][a]);
        }
    }
    reader_close(&r);
    assert_int_equal(i, s.n);
    /* contiguous on the grid of 100 Hz */
    for (size_t j = 1; j < s.n; j++)
        assert_int_equal(s.idx[j], s.idx[j - 1] + 1);
    /* 11:14:58 .. 11:27:02 on the 100 Hz grid (the device's own rate is a little off) */
    assert_true(s.n > 72300 && s.n < 72500);
    free_samples(&s);
    free(u);
    free(b);
}

/* Resuming after any event's seq gives exactly the samples after it, whether the walk starts
 * at the file's first block or (as the daemon does) a block or two before the position. */
static void test_cwain_resume(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = slurp(&len);
    if (!b)
        skip();
    size_t nblk = (len - CWA_HEADER_SIZE) / CWA_BLOCK_SIZE;
    struct cwain *u = new_walk(0, 0);
    struct samples full = {0};
    walk(u, b, 0, nblk, 1, &full);
    int64_t per = 10000000; /* 100 Hz */
    size_t cuts[] = {1, 4095, 4096, 30000, full.n - 1, full.n};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        int64_t after = full.idx[cuts[c] - 1] * per;
        for (int from_block = 0; from_block < 2; from_block++) {
            /* the block whose first sample is about 2 s before the position, as seek_start */
            size_t start = 0;
            if (from_block) {
                int64_t target = after / 1000000000 - 2;
                for (size_t k = 0; k < nblk; k++) {
                    int64_t t;
                    assert_int_equal(cwain_block_time(b + CWA_HEADER_SIZE + k * CWA_BLOCK_SIZE,
                                                      &t), 0);
                    if (t > target)
                        break;
                    start = k;
                }
            }
            struct cwain *v = new_walk(1, after);
            struct samples rest = {0};
            walk(v, b, start, nblk, 1, &rest);
            assert_int_equal(rest.n, full.n - cuts[c]);
            if (rest.n) {
                assert_int_equal(rest.idx[0], full.idx[cuts[c] - 1] + 1);
                for (size_t j = 0; j < rest.n; j++) {
                    assert_int_equal(rest.idx[j], full.idx[cuts[c] + j]);
                    for (int a = 0; a < 3; a++) /* anchors differ near the start: close */
                        assert_true(fabsf(rest.g[j][a] - full.g[cuts[c] + j][a]) < 0.05f);
                }
            }
            assert_int_equal(v->st.skipped + v->st.samples, v->st.skipped + rest.n);
            free_samples(&rest);
            free(v);
        }
    }
    free_samples(&full);
    free(u);
    free(b);
}

/* Unplugged after any block: what the first dock emitted plus what the next dock emits from
 * the first's last seq is every sample once. */
static void test_cwain_unplug(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = slurp(&len);
    if (!b)
        skip();
    size_t nblk = (len - CWA_HEADER_SIZE) / CWA_BLOCK_SIZE;
    struct cwain *u = new_walk(0, 0);
    struct samples full = {0};
    walk(u, b, 0, nblk, 1, &full);
    size_t cuts[] = {1, 2, 35, 36, 300, 594};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        struct cwain *v = new_walk(0, 0);
        struct samples first = {0};
        walk(v, b, 0, cuts[c], 0, &first); /* no flush: the device went away */
        struct cwain *w = new_walk(first.events > 0, first.last_seq);
        struct samples second = {0};
        walk(w, b, 0, nblk, 1, &second);
        assert_int_equal(first.n + second.n, full.n);
        for (size_t j = 0; j < first.n; j++)
            assert_int_equal(first.idx[j], full.idx[j]);
        for (size_t j = 0; j < second.n; j++)
            assert_int_equal(second.idx[j], full.idx[first.n + j]);
        free_samples(&first);
        free_samples(&second);
        free(v);
        free(w);
    }
    free_samples(&full);
    free(u);
    free(b);
}

/* Damaged, foreign and erased blocks: reported and skipped; every valid block's samples kept
 * (the segment restarts after a gap); the same samples as the file reader. */
static void test_cwain_damage(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = slurp(&len);
    if (!b)
        skip();
    size_t nblk = (len - CWA_HEADER_SIZE) / CWA_BLOCK_SIZE;
    struct cwain *u0 = new_walk(0, 0);
    struct samples full = {0};
    walk(u0, b, 0, nblk, 1, &full);
    free(u0);
    uint8_t *blk = b + CWA_HEADER_SIZE;
    blk[10 * CWA_BLOCK_SIZE + 100] ^= 0x40;                 /* checksum mismatch */
    memset(blk + 20 * CWA_BLOCK_SIZE, 0xFF, CWA_BLOCK_SIZE); /* erased */
    memcpy(blk + 30 * CWA_BLOCK_SIZE, "XY", 2);             /* another block type */
    blk[40 * CWA_BLOCK_SIZE + 2] = 0;                        /* "AX" with a wrong length */
    memset(blk + 50 * CWA_BLOCK_SIZE, 0x01, CWA_BLOCK_SIZE); /* garbage */
    struct cwain *u = new_walk(0, 0);
    struct samples s = {0};
    struct event ev;
    int bad = 0, other = 0;
    for (size_t k = 0; k < nblk; k++) {
        while (cwain_take(u, 0, "p01", "ax3", &ev))
            keep(&s, &ev);
        int r = cwain_block(u, blk + k * CWA_BLOCK_SIZE, CWA_HEADER_SIZE + k * CWA_BLOCK_SIZE);
        if (r == CWAIN_BAD) {
            bad++;
            assert_non_null(strstr(u->why, "block at byte"));
        }
        other += r == CWAIN_OTHER;
    }
    while (cwain_take(u, 1, "p01", "ax3", &ev))
        keep(&s, &ev);
    assert_int_equal(bad, 3);
    assert_int_equal(other, 1);
    assert_int_equal(u->st.erased, 1);
    assert_int_equal(u->st.data, 590);
    /* only what the five blocks held is missing (about 120 samples each) */
    assert_true(s.n < full.n && s.n > full.n - 5 * 125);
    for (size_t j = 0; j < s.n; j++) /* the kept samples are where they were */
        assert_true(j == 0 || s.idx[j] > s.idx[j - 1]);
    free_samples(&full);
    free_samples(&s);
    free(u);
    free(b);
}

static void test_period(void **state)
{
    (void)state;
    assert_int_equal(cwain_period_ns(100), 10000000);
    assert_int_equal(cwain_period_ns(3200), 312500);
    assert_int_equal(cwain_period_ns(6.25), 160000000);
    assert_int_equal(cwain_period_ns(30), 0);
    assert_int_equal(cwain_period_ns(0), 0);
}

/* ---- AOA envelopes ---- */

static void test_envelopes(void **state)
{
    (void)state;
    uint8_t wire[64];
    int n1 = aoaenv_encode(AOAENV_RECORDS, "abcdef", 6, wire, sizeof wire);
    assert_int_equal(n1, 9);
    int n2 = aoaenv_encode(AOAENV_STATUS, NULL, 0, wire + n1, sizeof wire - (size_t)n1);
    assert_int_equal(n2, 3);
    assert_int_equal(aoaenv_encode(AOAENV_RECORDS, wire, AOAENV_VALUE_MAX + 1, wire, 10000),
                     -EMSGSIZE);
    assert_int_equal(aoaenv_encode(AOAENV_RECORDS, "ab", 2, wire, 4), -ENOBUFS);
    struct aoaenv_rx rx;
    aoaenv_rx_init(&rx);
    /* byte by byte (one envelope over many transfers) */
    uint8_t ch;
    const uint8_t *v;
    size_t vlen;
    int err, got = 0;
    for (int i = 0; i < n1 + n2; i++) {
        size_t used = aoaenv_rx_feed(&rx, wire + i, 1, &ch, &v, &vlen, &err);
        assert_int_equal(used, 1);
        assert_int_equal(err, 0);
        if (v) {
            got++;
            if (got == 1) {
                assert_int_equal(ch, AOAENV_RECORDS);
                assert_memory_equal(v, "abcdef", 6);
            } else {
                assert_int_equal(ch, AOAENV_STATUS);
                assert_int_equal(vlen, 0);
            }
        }
        aoaenv_rx_end_transfer(&rx);
    }
    assert_int_equal(got, 2);
    /* both in one transfer */
    size_t off = aoaenv_rx_feed(&rx, wire, (size_t)(n1 + n2), &ch, &v, &vlen, &err);
    assert_int_equal(off, (size_t)n1);
    assert_non_null(v);
    off += aoaenv_rx_feed(&rx, wire + off, (size_t)(n1 + n2) - off, &ch, &v, &vlen, &err);
    assert_int_equal(off, (size_t)(n1 + n2));
    assert_non_null(v);
    /* an unknown channel: error, the rest of the transfer is skipped, the next is read */
    uint8_t badt[] = {0x09, 0x01, 0x00, 0x41, 0x02, 0x01, 0x00, 0x42};
    off = aoaenv_rx_feed(&rx, badt, sizeof badt, &ch, &v, &vlen, &err);
    assert_int_equal(err, -EBADMSG);
    assert_int_equal(off, sizeof badt);
    assert_non_null(strstr(rx.why, "unknown channel 0x09"));
    off = aoaenv_rx_feed(&rx, badt + 4, 4, &ch, &v, &vlen, &err);
    assert_null(v); /* still in the bad transfer */
    aoaenv_rx_end_transfer(&rx);
    off = aoaenv_rx_feed(&rx, badt + 4, 4, &ch, &v, &vlen, &err);
    assert_non_null(v);
    assert_int_equal(ch, AOAENV_RECORDS);
    assert_int_equal(v[0], 0x42);
    aoaenv_rx_end_transfer(&rx);
    /* too long */
    uint8_t big[] = {0x02, 0xFF, 0xFF};
    aoaenv_rx_feed(&rx, big, 3, &ch, &v, &vlen, &err);
    assert_int_equal(err, -EBADMSG);
    assert_non_null(strstr(rx.why, "65535 bytes"));
    aoaenv_rx_end_transfer(&rx);
    /* cut in the middle: counted as truncated */
    aoaenv_rx_feed(&rx, wire, 5, &ch, &v, &vlen, &err);
    assert_null(v);
    assert_int_equal(aoaenv_rx_reset(&rx), 1);
    assert_int_equal(rx.truncated, 1);
    assert_int_equal(aoaenv_rx_reset(&rx), 0);
    assert_int_equal(rx.errors, 2);
}

static void test_aoa_ids(void **state)
{
    (void)state;
    assert_true(aoaenv_is_accessory(0x18D1, 0x2D00));
    assert_true(aoaenv_is_accessory(0x18D1, 0x2D05));
    assert_false(aoaenv_is_accessory(0x18D1, 0x2D06));
    assert_false(aoaenv_is_accessory(0x18D1, 0x4EE1));
    assert_string_equal(aoaenv_string(0, "1", "s"), AOA_MANUFACTURER);
    assert_string_equal(aoaenv_string(1, "1", "s"), AOA_MODEL);
    assert_string_equal(aoaenv_string(3, "0.1.0", "s"), "0.1.0");
    assert_string_equal(aoaenv_string(5, "1", "phone-p01"), "phone-p01");
    assert_null(aoaenv_string(6, "1", "s"));
    for (unsigned i = 0; i < 5; i++)
        assert_true(strlen(aoaenv_string(i, "1", "s")) < AOA_STRING_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_id),
        cmocka_unit_test(test_batt),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_cwain_reference),
        cmocka_unit_test(test_cwain_resume),
        cmocka_unit_test(test_cwain_unplug),
        cmocka_unit_test(test_cwain_damage),
        cmocka_unit_test(test_period),
        cmocka_unit_test(test_envelopes),
        cmocka_unit_test(test_aoa_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
