/* drivers/btsnoop.c and drivers/file_btsnoop.c: the reference's worked record and timestamps,
 * writer -> codec round trips over every fragment size, and captures made by the writer in a
 * temporary directory, replayed through the reader: a Heart Rate discovery then notifications
 * (whole and split over ACL fragments, datalinks 1001 and 1002), Battery and InfiniTime reads
 * and notifications, disconnection, the connection and handle bounds, and broken files (bad
 * header, truncated, absurd lengths, an L2CAP length that lies, unmapped handles): every
 * problem is an open() error or a READ_BAD, never a crash. */
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

#include "drivers/btsnoop.h"
#include "drivers/reader.h"
#include "pipeline/event.h"

static char tmpdir[64];
static char path[128];

#define T0 INT64_C(1795700000000) /* 2026-11-26 ms */

/* ---- building captures ---- */

struct cap {
    FILE *f;
    struct btsnoop_writer w;
    size_t frag;
};

static void cap_open(struct cap *c, const char *name, uint32_t link, size_t frag)
{
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    c->f = fopen(path, "wb");
    assert_non_null(c->f);
    c->frag = frag;
    assert_int_equal(btsnoop_writer_open(&c->w, c->f, link), 0);
}

static void cap_close(struct cap *c)
{
    assert_int_equal(fclose(c->f), 0);
}

/* one ATT PDU from bytes given as ints */
static void pdu(struct cap *c, uint16_t h, int dir, int64_t ms, size_t n, ...)
{
    uint8_t b[64];
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)va_arg(ap, int);
    va_end(ap);
    assert_int_equal(btsnoop_write_att(&c->w, h, dir, ms * 1000, b, n, c->frag), 0);
}

#define RX BTSNOOP_DIR_RECEIVED
#define TX BTSNOOP_DIR_SENT

/* Heart Rate + Battery discovery on handle 0x040: Read By Type 0x2803 and its response. */
static void hr_discovery(struct cap *c, int64_t ms)
{
    pdu(c, 0x40, TX, ms, 7, 0x08, 0x01, 0x00, 0xff, 0xff, 0x03, 0x28);
    pdu(c, 0x40, RX, ms, 16, 0x09, 7, 0x0f, 0x00, 0x10, 0x10, 0x00, 0x37, 0x2a, /* HRM */
        0x12, 0x00, 0x12, 0x13, 0x00, 0x19, 0x2a);                             /* battery */
}

/* ---- reading ---- */

struct got {
    int open_rc;
    char open_why[256];
    struct event ev[64];
    size_t n;
    char bad[16][192];
    uint64_t bad_line[16];
    size_t n_bad;
    struct btsnoop_reader_stats st;
    float g0[3];
};

static void replay(const char *p, const char *pid, struct got *g)
{
    memset(g, 0, sizeof *g);
    struct reader r;
    struct reader_opts o = {.participant = pid};
    g->open_rc = reader_open(&r, p, NULL, &o);
    if (g->open_rc < 0) {
        snprintf(g->open_why, sizeof g->open_why, "%s", r.why ? r.why : "");
        return;
    }
    assert_string_equal(r.ops->name, "btsnoop");
    for (;;) {
        struct event ev;
        int rc = r.ops->next(&r, &ev);
        assert_true(rc >= 0);
        if (rc == READ_EOF)
            break;
        if (rc == READ_BAD) {
            assert_true(g->n_bad < 16);
            snprintf(g->bad[g->n_bad], sizeof g->bad[0], "%s", r.why);
            g->bad_line[g->n_bad++] = r.line;
            continue;
        }
        assert_int_equal(rc, READ_EVENT);
        assert_true(g->n < 64);
        if (ev.type == EV_ACCEL && g->n_bad == 0 && ev.u.accel.n)
            memcpy(g->g0, ev.u.accel.g[0], sizeof g->g0);
        if (ev.type == EV_ACCEL)
            ev.u.accel.g = NULL;
        g->ev[g->n++] = ev;
    }
    g->st = *btsnoop_reader_stats(&r);
    if (getenv("SNOOP_DEBUG"))
        for (size_t i = 0; i < g->n_bad; i++)
            print_message("%s: %llu: %s\n", p, (unsigned long long)g->bad_line[i], g->bad[i]);
    reader_close(&r);
}

static int bad_has(const struct got *g, const char *needle)
{
    for (size_t i = 0; i < g->n_bad; i++)
        if (strstr(g->bad[i], needle))
            return 1;
    return 0;
}

/* ---- tests ---- */

static void test_timestamps(void **state)
{
    (void)state;
    assert_int_equal(btsnoop_ts_to_unix_ms(INT64_C(0x00DCDDB30F2F8000)), 0);
    assert_int_equal(btsnoop_ts_to_unix_ms(INT64_C(62168256000000000)), 0);
    assert_int_equal(btsnoop_ts_to_unix_ms(INT64_C(62168256000000000) - 1), -1);
    assert_int_equal(btsnoop_ts_to_unix_ms(INT64_C(62168256000000000) + 1999), 1);
    /* BlueZ: (sec - 946684800) * 1e6 + usec + 0x00E03AB44A676000 */
    int64_t sec = 1795700000, usec = 123456;
    int64_t bluez = (sec - 946684800) * 1000000 + usec + INT64_C(0x00E03AB44A676000);
    assert_int_equal(btsnoop_ts_to_unix_ms(bluez), sec * 1000 + 123);
    assert_int_equal(btsnoop_ts_from_unix_us(sec * 1000000 + usec), bluez);
    /* no overflow at the ends of the range */
    assert_true(btsnoop_ts_to_unix_ms(INT64_MIN) < 0);
    assert_int_equal(btsnoop_ts_to_unix_ms(INT64_MAX), (INT64_MAX - BTSNOOP_EPOCH_UNIX_US) / 1000);
    assert_int_equal(btsnoop_ts_from_unix_us(INT64_MAX), INT64_MAX);
}

/* ble.md §6 worked record: ACL 40 00 0b 00, L2CAP 07 00 04 00, ATT 1b 10 00 16 48 40 03. */
static void test_worked_record(void **state)
{
    (void)state;
    static const uint8_t ref[] = {0x02, 0x40, 0x00, 0x0b, 0x00, 0x07, 0x00, 0x04, 0x00,
                                  0x1b, 0x10, 0x00, 0x16, 0x48, 0x40, 0x03};
    struct btsnoop_pkt pk;
    char why[128];
    assert_int_equal(btsnoop_packet(BTSNOOP_LINK_H4, 1, ref, sizeof ref, &pk, why), 0);
    assert_int_equal(pk.type, BTSNOOP_PKT_ACL);
    assert_int_equal(pk.handle, 0x040);
    assert_int_equal(pk.pb, 0);
    assert_int_equal(pk.dir, RX);
    struct btsnoop_l2cap *l = calloc(1, sizeof *l);
    struct btsnoop_frame fr;
    const char *dropped;
    assert_int_equal(btsnoop_l2cap_push(l, &pk, &fr, &dropped, why), 1);
    assert_null(dropped);
    assert_int_equal(fr.len, 7);
    assert_memory_equal(fr.att, ref + 9, 7);
    /* the writer makes the same bytes (with PB 2, first flushable, as controllers send) */
    uint8_t out[256];
    long n = btsnoop_encode_att(out, sizeof out, BTSNOOP_LINK_H4, 0x040, RX, 0, ref + 9, 7, 0);
    assert_int_equal(n, 24 + (long)sizeof ref);
    assert_int_equal(out[24 + 2], 0x20);
    out[24 + 2] = 0;
    assert_memory_equal(out + 24, ref, sizeof ref);
    struct btsnoop_rec rec;
    assert_int_equal(btsnoop_parse_record(out, &rec, why), 0);
    assert_int_equal(rec.incl_len, sizeof ref);
    assert_int_equal(rec.orig_len, sizeof ref);
    assert_int_equal(rec.flags, 1);
    assert_int_equal(rec.ts_us, BTSNOOP_EPOCH_UNIX_US);
    /* header */
    uint8_t h[16];
    uint32_t link;
    btsnoop_encode_header(h, BTSNOOP_LINK_H4);
    assert_memory_equal(h, "btsnoop\0\0\0\0\1\0\0\x03\xea", 16);
    assert_int_equal(btsnoop_parse_header(h, 16, &link), 0);
    assert_int_equal(link, 1002);
    assert_int_equal(btsnoop_parse_header(h, 15, &link), -ENODATA);
    h[15] = 0xeb; /* 1003 BCSP */
    assert_int_equal(btsnoop_parse_header(h, 16, &link), -EPROTONOSUPPORT);
    h[0] = 'B';
    assert_int_equal(btsnoop_parse_header(h, 16, &link), -EINVAL);
    free(l);
}

/* Every PDU length and fragment size, both datalinks: the reassembler gives back the PDU. */
static void test_round_trip(void **state)
{
    (void)state;
    static uint8_t out[(4 + BTSNOOP_ATT_MAX) * 30];
    uint8_t att[BTSNOOP_ATT_MAX];
    for (size_t i = 0; i < sizeof att; i++)
        att[i] = (uint8_t)(i * 7 + 3);
    struct btsnoop_l2cap *l = calloc(1, sizeof *l);
    static const uint32_t links[] = {BTSNOOP_LINK_H1, BTSNOOP_LINK_H4};
    static const size_t lens[] = {1, 2, 7, 22, 23, 100, 251, 512, 517};
    for (size_t k = 0; k < 2; k++)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (size_t frag = 0; frag <= 30; frag++) {
                size_t len = lens[li];
                long n = btsnoop_encode_att(out, sizeof out, links[k], 0x0EFF, RX,
                                            T0 * 1000 + 999, att, len, frag);
                assert_true(n > 0);
                size_t off = 0;
                int frames = 0;
                while (off < (size_t)n) {
                    struct btsnoop_rec rec;
                    char why[128];
                    assert_int_equal(btsnoop_parse_record(out + off, &rec, why), 0);
                    assert_int_equal(btsnoop_ts_to_unix_ms(rec.ts_us), T0);
                    off += 24;
                    struct btsnoop_pkt pk;
                    assert_int_equal(btsnoop_packet(links[k], rec.flags, out + off,
                                                    rec.incl_len, &pk, why), 0);
                    assert_int_equal(pk.type, BTSNOOP_PKT_ACL);
                    assert_int_equal(pk.handle, 0x0EFF);
                    if (frag)
                        assert_true(pk.len <= frag);
                    off += rec.incl_len;
                    struct btsnoop_frame fr;
                    const char *dropped;
                    int e = btsnoop_l2cap_push(l, &pk, &fr, &dropped, why);
                    assert_true(e >= 0);
                    assert_null(dropped);
                    if (e == 1) {
                        frames++;
                        assert_int_equal(off, (size_t)n);
                        assert_int_equal(fr.len, len);
                        assert_memory_equal(fr.att, att, len);
                        assert_int_equal(fr.dir, RX);
                    }
                }
                assert_int_equal(frames, 1);
            }
    /* too long for ATT, a handle outside the 12 bits, too little room */
    assert_int_equal(btsnoop_encode_att(out, sizeof out, BTSNOOP_LINK_H4, 1, RX, 0, att, 518, 0),
                     -EINVAL);
    assert_int_equal(btsnoop_encode_att(out, sizeof out, BTSNOOP_LINK_H4, 0xF00, RX, 0, att, 5,
                                        0), -EINVAL);
    assert_int_equal(btsnoop_encode_att(out, 30, BTSNOOP_LINK_H4, 1, RX, 0, att, 5, 0),
                     -ENOSPC);
    free(l);
}

static void check_hr_run(const struct got *g)
{
    assert_int_equal(g->open_rc, 0);
    /* battery read, two HR events (the no-contact one makes none) */
    assert_int_equal(g->n, 3);
    assert_int_equal(g->ev[0].type, EV_BATTERY);
    assert_true(g->ev[0].u.battery.pct == 85);
    assert_int_equal(g->ev[0].ts, T0 + 2000);
    assert_int_equal(g->ev[1].type, EV_HR);
    assert_true(g->ev[1].u.hr.bpm == 72);
    assert_int_equal(g->ev[1].u.hr.n_rr, 1);
    assert_true(g->ev[1].u.hr.rr_ms[0] == 812.5);
    assert_int_equal(g->ev[1].ts, T0 + 3000);
    assert_string_equal(g->ev[1].participant, "p1");
    assert_string_equal(g->ev[1].source, "btsnoop");
    assert_int_equal(g->ev[1].has_seq, 0);
    assert_int_equal(g->ev[2].type, EV_HR);
    assert_true(g->ev[2].u.hr.bpm == 300);
    assert_int_equal(g->ev[2].ts, T0 + 5000);
    /* two notifications on an unmapped handle: one READ_BAD */
    assert_int_equal(g->n_bad, 1);
    assert_non_null(strstr(g->bad[0], "handle 0x0099"));
    assert_int_equal(g->st.unmapped, 2);
    assert_int_equal(g->st.no_data, 1);
    assert_int_equal(g->st.events, 3);
}

static void write_hr(const char *name, uint32_t link, size_t frag)
{
    struct cap c;
    cap_open(&c, name, link, frag);
    uint8_t cmd[] = {0x01, 0x03, 0x0c, 0x00}; /* an HCI command record: ignored */
    assert_int_equal(btsnoop_write_record(&c.w, BTSNOOP_FLAG_CMD_EVT,
                                          T0 * 1000, link == BTSNOOP_LINK_H4 ? cmd : cmd + 1,
                                          link == BTSNOOP_LINK_H4 ? 4 : 3), 0);
    pdu(&c, 0x40, TX, T0, 3, 0x02, 0x05, 0x02);  /* MTU exchange */
    pdu(&c, 0x40, RX, T0, 3, 0x03, 0xf7, 0x00);
    hr_discovery(&c, T0 + 1000);
    pdu(&c, 0x40, TX, T0 + 2000, 3, 0x0a, 0x13, 0x00); /* read battery */
    pdu(&c, 0x40, RX, T0 + 2000, 2, 0x0b, 85);
    pdu(&c, 0x40, TX, T0 + 2500, 5, 0x12, 0x11, 0x00, 0x01, 0x00); /* CCCD write */
    pdu(&c, 0x40, RX, T0 + 2500, 1, 0x13);
    pdu(&c, 0x40, RX, T0 + 3000, 7, 0x1b, 0x10, 0x00, 0x16, 0x48, 0x40, 0x03);
    pdu(&c, 0x40, RX, T0 + 4000, 5, 0x1b, 0x10, 0x00, 0x04, 0x50); /* no contact */
    pdu(&c, 0x40, RX, T0 + 4500, 4, 0x1b, 0x99, 0x00, 0x01);       /* unmapped */
    pdu(&c, 0x40, RX, T0 + 4600, 4, 0x1b, 0x99, 0x00, 0x01);
    pdu(&c, 0x40, RX, T0 + 5000, 6, 0x1d, 0x10, 0x00, 0x01, 0x2c, 0x01); /* indication, u16 */
    pdu(&c, 0x40, TX, T0 + 5000, 1, 0x1e);
    cap_close(&c);
}

static void test_hr_capture(void **state)
{
    (void)state;
    static const uint32_t links[] = {BTSNOOP_LINK_H1, BTSNOOP_LINK_H4};
    static const size_t frags[] = {0, 1, 2, 3, 5, 8, 27};
    for (size_t k = 0; k < 2; k++)
        for (size_t f = 0; f < sizeof frags / sizeof frags[0]; f++) {
            static struct got gs; struct got *g = &gs;
            write_hr("hr.btsnoop", links[k], frags[f]);
            replay(path, "p1", g);
            check_hr_run(g);
            (void)g;
        }
}

/* Mapping learnt from Find Information instead; a peripheral-side capture (directions
 * swapped); InfiniTime 128-bit UUIDs for steps and raw motion. */
static void test_find_info_and_pinetime(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, "pt.btsnoop", BTSNOOP_LINK_H4, 4);
    /* peripheral side: the peer's requests arrive (RX), our responses leave (TX) */
    pdu(&c, 0x41, RX, T0, 5, 0x04, 0x01, 0x00, 0xff, 0xff);
    pdu(&c, 0x41, TX, T0, 10, 0x05, 0x01, 0x10, 0x00, 0x37, 0x2a, 0x11, 0x00, 0x02, 0x29);
    pdu(&c, 0x41, TX, T0 + 1000, 5, 0x1b, 0x10, 0x00, 0x00, 65);
    /* PineTime characteristics: Read By Type 0x2803 with 128-bit UUIDs */
    pdu(&c, 0x41, RX, T0 + 1000, 7, 0x08, 0x20, 0x00, 0xff, 0xff, 0x03, 0x28);
    uint8_t rsp[2 + 2 * 21], *e = rsp + 2;
    rsp[0] = 0x09;
    rsp[1] = 21;
    static const uint8_t base[16] = {0xd0, 0x42, 0x19, 0x3a, 0x3b, 0x43, 0x23, 0x8e,
                                     0xfe, 0x48, 0xfc, 0x78, 0x01, 0x00, 0x03, 0x00};
    for (int i = 0; i < 2; i++, e += 21) {
        e[0] = (uint8_t)(0x20 + 2 * i);
        e[1] = 0;
        e[2] = 0x12;
        e[3] = (uint8_t)(0x21 + 2 * i);
        e[4] = 0;
        memcpy(e + 5, base, 16);
        e[5 + 12] = (uint8_t)(1 + i); /* ...0001 steps, ...0002 raw motion */
    }
    assert_int_equal(btsnoop_write_att(&c.w, 0x41, TX, (T0 + 1000) * 1000, rsp, sizeof rsp, 4),
                     0);
    /* steps: a read sets the baseline, a notification 60 s later makes an event */
    pdu(&c, 0x41, RX, T0 + 2000, 3, 0x0a, 0x21, 0x00);
    pdu(&c, 0x41, TX, T0 + 2000, 5, 0x0b, 100, 0, 0, 0);
    pdu(&c, 0x41, TX, T0 + 62000, 7, 0x1b, 0x21, 0x00, 150, 0, 0, 0);
    /* three motion samples at 10 Hz: one accel block, made at the end */
    for (int i = 0; i < 3; i++)
        pdu(&c, 0x41, TX, T0 + 63000 + 100 * i, 9, 0x1b, 0x23, 0x00, 0x00, 0x04, 0, 0, 0, 0);
    cap_close(&c);
    static struct got gs; struct got *g = &gs;
    replay(path, "p2", g);
    assert_int_equal(g->open_rc, 0);
    assert_int_equal(g->n_bad, 0);
    assert_int_equal(g->n, 3);
    assert_int_equal(g->ev[0].type, EV_HR);
    assert_true(g->ev[0].u.hr.bpm == 65);
    assert_int_equal(g->ev[1].type, EV_STEPS);
    assert_true(g->ev[1].u.steps.steps == 50);
    assert_int_equal(g->ev[1].u.steps.interval_s, 60);
    assert_int_equal(g->ev[2].type, EV_ACCEL);
    assert_int_equal(g->ev[2].u.accel.n, 3);
    assert_int_equal(g->ev[2].ts, T0 + 63000);
    assert_true(g->g0[0] == 1.0f && g->g0[1] == 0 && g->g0[2] == 0);
    (void)g;
}

/* A Disconnection Complete event forgets the connection's map: the handle is reused. */
static void test_disconnect(void **state)
{
    (void)state;
    static const uint32_t links[] = {BTSNOOP_LINK_H1, BTSNOOP_LINK_H4};
    for (size_t k = 0; k < 2; k++) {
        struct cap c;
        cap_open(&c, "dc.btsnoop", links[k], 0);
        hr_discovery(&c, T0);
        pdu(&c, 0x40, RX, T0 + 1000, 5, 0x1b, 0x10, 0x00, 0x00, 60);
        uint8_t ev[] = {0x04, 0x05, 0x04, 0x00, 0x40, 0x00, 0x13};
        int h4 = links[k] == BTSNOOP_LINK_H4;
        assert_int_equal(btsnoop_write_record(&c.w, BTSNOOP_FLAG_CMD_EVT | BTSNOOP_FLAG_RECEIVED,
                                              (T0 + 1500) * 1000, h4 ? ev : ev + 1,
                                              h4 ? 7 : 6), 0);
        pdu(&c, 0x40, RX, T0 + 2000, 5, 0x1b, 0x10, 0x00, 0x00, 61);
        cap_close(&c);
        static struct got gs; struct got *g = &gs;
        replay(path, "p1", g);
        assert_int_equal(g->n, 1);
        assert_int_equal(g->n_bad, 1);
        assert_int_equal(g->bad_line[0], 5);
        assert_non_null(strstr(g->bad[0], "did not map"));
        (void)g;
    }
}

/* Service Changed in a capture (the daemon discovers again on the same link): the indicated
 * range's mapping is forgotten, the SC characteristic's own kept, and the discovery that
 * follows maps the range again; a value in between is unmapped; a short SC value is bad. */
static void test_service_changed(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, "sc.btsnoop", BTSNOOP_LINK_H4, 0);
    pdu(&c, 0x40, TX, T0, 7, 0x08, 0x01, 0x00, 0xff, 0xff, 0x03, 0x28);
    pdu(&c, 0x40, RX, T0, 23, 0x09, 7, 0x02, 0x00, 0x20, 0x03, 0x00, 0x05, 0x2a, /* SC */
        0x0f, 0x00, 0x10, 0x10, 0x00, 0x37, 0x2a,                              /* HRM */
        0x12, 0x00, 0x12, 0x13, 0x00, 0x19, 0x2a);                             /* battery */
    pdu(&c, 0x40, RX, T0 + 1000, 7, 0x1b, 0x10, 0x00, 0x16, 0x48, 0x40, 0x03);
    pdu(&c, 0x40, RX, T0 + 2000, 7, 0x1d, 0x03, 0x00, 0x10, 0x00, 0xff, 0xff);
    pdu(&c, 0x40, TX, T0 + 2000, 1, 0x1e);
    pdu(&c, 0x40, RX, T0 + 3000, 7, 0x1b, 0x10, 0x00, 0x16, 0x48, 0x40, 0x03); /* unmapped */
    /* discovered again: 0x0010 is now the battery level, 0x0013 is gone */
    pdu(&c, 0x40, TX, T0 + 4000, 7, 0x08, 0x10, 0x00, 0xff, 0xff, 0x03, 0x28);
    pdu(&c, 0x40, RX, T0 + 4000, 9, 0x09, 7, 0x0f, 0x00, 0x12, 0x10, 0x00, 0x19, 0x2a);
    pdu(&c, 0x40, RX, T0 + 5000, 4, 0x1b, 0x10, 0x00, 64);
    pdu(&c, 0x40, RX, T0 + 5500, 4, 0x1b, 0x13, 0x00, 63);                     /* unmapped */
    pdu(&c, 0x40, RX, T0 + 6000, 5, 0x1d, 0x03, 0x00, 0x10, 0x00);              /* short */
    pdu(&c, 0x40, RX, T0 + 7000, 4, 0x1b, 0x10, 0x00, 62);
    cap_close(&c);
    static struct got gs;
    struct got *g = &gs;
    replay(path, "p1", g);
    assert_int_equal(g->open_rc, 0);
    assert_int_equal(g->n, 3);
    assert_int_equal(g->ev[0].type, EV_HR);
    assert_int_equal(g->ev[0].ts, T0 + 1000);
    assert_int_equal(g->ev[1].type, EV_BATTERY);
    assert_true(g->ev[1].u.battery.pct == 64);
    assert_int_equal(g->ev[1].ts, T0 + 5000);
    assert_int_equal(g->ev[2].type, EV_BATTERY); /* the short value changed nothing */
    assert_true(g->ev[2].u.battery.pct == 62);
    assert_int_equal(g->st.changed, 1);
    assert_int_equal(g->st.unmapped, 2);
    assert_int_equal(g->st.malformed, 1);
    assert_int_equal(g->n_bad, 2);
    assert_non_null(strstr(g->bad[0], "handle 0x0010"));
    assert_non_null(strstr(g->bad[1], "Service Changed value of 2 bytes"));
}

/* Bounds: a 17th connection forgets the least recently used one; handles beyond 128 on one
 * connection are not mapped (one READ_BAD). */
static void test_bounds(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, "many.btsnoop", BTSNOOP_LINK_H4, 0);
    for (uint16_t h = 1; h <= 17; h++) {
        pdu(&c, h, TX, T0, 7, 0x08, 0x01, 0x00, 0xff, 0xff, 0x03, 0x28);
        pdu(&c, h, RX, T0, 9, 0x09, 7, 0x0f, 0x00, 0x10, 0x10, 0x00, 0x37, 0x2a);
    }
    pdu(&c, 2, RX, T0 + 1000, 5, 0x1b, 0x10, 0x00, 0x00, 60); /* still known */
    pdu(&c, 1, RX, T0 + 1000, 5, 0x1b, 0x10, 0x00, 0x00, 61); /* forgotten */
    /* 2 x 127 Find Information entries on one connection */
    uint8_t fi[2 + 128 * 4];
    fi[0] = 0x05;
    fi[1] = 1;
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 128; i++) {
            uint16_t h = (uint16_t)(0x100 + k * 128 + i);
            fi[2 + 4 * i] = (uint8_t)h;
            fi[3 + 4 * i] = (uint8_t)(h >> 8);
            fi[4 + 4 * i] = 0x19;
            fi[5 + 4 * i] = 0x2a;
        }
        assert_int_equal(btsnoop_write_att(&c.w, 0x30, RX, T0 * 1000, fi, sizeof fi - 4, 0),
                         0);
    }
    pdu(&c, 0x30, RX, T0 + 2000, 4, 0x1b, 0x00, 0x01, 42); /* battery, mapped */
    cap_close(&c);
    static struct got gs;
    struct got *g = &gs;
    replay(path, "p1", g);
    assert_int_equal(g->n, 2);
    assert_true(g->ev[0].u.hr.bpm == 60);
    assert_true(g->ev[1].u.battery.pct == 42);
    /* 17 evicts 1; 1 again evicts 3 (2 was used since); 0x30 evicts 4 */
    assert_int_equal(g->st.conns_evicted, 3);
    assert_int_equal(g->n_bad, 2);
    assert_true(bad_has(g, "did not map"));
    assert_true(bad_has(g, "more than 128 attribute handles"));
    assert_int_equal(g->st.map_full, 127 * 2 - 128);
}

static void write_bytes(const char *name, const void *p, size_t n)
{
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void test_bad_headers(void **state)
{
    (void)state;
    static struct got gs; struct got *g = &gs;
    write_bytes("short.btsnoop", "btsnoop\0\0\0", 10);
    replay(path, "p1", g);
    assert_int_equal(g->open_rc, -EINVAL);
    assert_non_null(strstr(g->open_why, "truncated"));
    uint8_t h[16];
    btsnoop_encode_header(h, BTSNOOP_LINK_H4);
    h[11] = 2; /* version 2 */
    write_bytes("v2.btsnoop", h, 16);
    replay(path, "p1", g);
    assert_int_equal(g->open_rc, -EINVAL);
    assert_non_null(strstr(g->open_why, "unsupported"));
    btsnoop_encode_header(h, 1004);
    write_bytes("h5.btsnoop", h, 16);
    replay(path, "p1", g);
    assert_int_equal(g->open_rc, -EINVAL);
    /* no --participant */
    btsnoop_encode_header(h, BTSNOOP_LINK_H4);
    write_bytes("empty.btsnoop", h, 16);
    replay(path, NULL, g);
    assert_int_equal(g->open_rc, -EINVAL);
    assert_non_null(strstr(g->open_why, "--participant"));
    /* a header and nothing else: no events, no problems */
    replay(path, "p1", g);
    assert_int_equal(g->open_rc, 0);
    assert_int_equal(g->n + g->n_bad, 0);
    /* the signature is not a btsnoop file when misspelt: another reader or none */
    struct reader r;
    struct reader_opts o = {.participant = "p1"};
    write_bytes("bad.btsnoop", "btsnoox\0\0\0\0\1\0\0\x03\xea", 16);
    int rc = reader_open(&r, path, NULL, &o);
    if (rc == 0) {
        assert_string_not_equal(r.ops->name, "btsnoop");
        reader_close(&r);
    }
    rc = reader_open(&r, path, "btsnoop", &o);
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(r.why, "signature"));
    (void)g;
}

/* Truncated at every byte of the last record: the events before it, then one READ_BAD. */
static void test_truncated(void **state)
{
    (void)state;
    write_hr("full.btsnoop", BTSNOOP_LINK_H4, 0);
    FILE *f = fopen(path, "rb");
    static uint8_t buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* the last record: indication confirmation, 24 + 1 + 4 + 4 + 1 bytes */
    size_t last = n - 34;
    static struct got gs; struct got *g = &gs;
    for (size_t cut = last + 1; cut < n; cut++) {
        write_bytes("cut.btsnoop", buf, cut);
        replay(path, "p1", g);
        assert_int_equal(g->n, 3);
        assert_int_equal(g->n_bad, 2);
        assert_non_null(strstr(g->bad[1], "truncated"));
    }
    /* cut inside the HR notification's record: it is lost, the battery read is not */
    for (size_t cut = 16; cut < n; cut += 7) {
        write_bytes("cut.btsnoop", buf, cut);
        replay(path, "p1", g);
        assert_true(g->n <= 3);
    }
    (void)g;
}

static void raw_record(struct cap *c, uint32_t orig, uint32_t incl, uint32_t flags,
                       const uint8_t *data, size_t n)
{
    struct btsnoop_rec rec = {.orig_len = orig, .incl_len = incl, .flags = flags,
                              .ts_us = btsnoop_ts_from_unix_us(T0 * 1000)};
    uint8_t h[24];
    btsnoop_encode_record(h, &rec);
    assert_int_equal(fwrite(h, 1, 24, c->f), 24);
    if (n)
        assert_int_equal(fwrite(data, 1, n, c->f), n);
}

/* Lying lengths: each is one READ_BAD and the next record reads normally; an absurd record
 * length ends the file. */
static void test_lying_lengths(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, "lies.btsnoop", BTSNOOP_LINK_H4, 0);
    hr_discovery(&c, T0);
    /* 2: L2CAP length 3 but 7 bytes of ATT */
    static const uint8_t l2lie[] = {0x02, 0x40, 0x20, 0x0b, 0x00, 0x03, 0x00, 0x04, 0x00,
                                    0x1b, 0x10, 0x00, 0x16, 0x48, 0x40, 0x03};
    raw_record(&c, sizeof l2lie, sizeof l2lie, 1, l2lie, sizeof l2lie);
    /* 3: ACL length 0x0c for 11 bytes */
    uint8_t acllie[sizeof l2lie];
    memcpy(acllie, l2lie, sizeof acllie);
    acllie[3] = 0x0c;
    acllie[5] = 0x07;
    raw_record(&c, sizeof acllie, sizeof acllie, 1, acllie, sizeof acllie);
    /* 4: included above original */
    raw_record(&c, 3, sizeof l2lie, 1, l2lie, sizeof l2lie);
    /* 5: a continuation with no start */
    static const uint8_t cont[] = {0x02, 0x40, 0x10, 0x02, 0x00, 0x01, 0x02};
    raw_record(&c, sizeof cont, sizeof cont, 1, cont, sizeof cont);
    /* 6: an ATT frame announced above 517 bytes */
    static const uint8_t big[] = {0x02, 0x40, 0x20, 0x05, 0x00, 0x00, 0x10, 0x04, 0x00, 0x1b};
    raw_record(&c, sizeof big, sizeof big, 1, big, sizeof big);
    /* 7: snapped by the capture (orig > incl) */
    raw_record(&c, 100, sizeof l2lie, 1, l2lie, sizeof l2lie);
    /* 8: a start that cuts an incomplete frame: the new frame still counts */
    static const uint8_t part[] = {0x02, 0x40, 0x20, 0x06, 0x00, 0x07, 0x00, 0x04, 0x00,
                                   0x1b, 0x10};
    raw_record(&c, sizeof part, sizeof part, 1, part, sizeof part);
    /* 9: a good notification (the start cutting record 8's frame) */
    pdu(&c, 0x40, RX, T0 + 1000, 5, 0x1b, 0x10, 0x00, 0x00, 99);
    /* 10: an HR value the decoder refuses (u16 flag, one byte) */
    pdu(&c, 0x40, RX, T0 + 1000, 4, 0x1b, 0x10, 0x00, 0x01);
    /* 11: an absurd length: the end */
    raw_record(&c, 0x7fffffff, 0x7fffffff, 1, NULL, 0);
    pdu(&c, 0x40, RX, T0 + 2000, 5, 0x1b, 0x10, 0x00, 0x00, 98);
    cap_close(&c);
    static struct got gs; struct got *g = &gs;
    replay(path, "p1", g);
    assert_int_equal(g->open_rc, 0);
    assert_int_equal(g->n, 1);
    assert_true(g->ev[0].u.hr.bpm == 99);
    assert_int_equal(g->n_bad, 9);
    static const uint64_t lines[] = {3, 4, 5, 6, 7, 8, 10, 11, 12};
    for (size_t i = 0; i < 9; i++)
        assert_int_equal(g->bad_line[i], lines[i]);
    assert_true(bad_has(g, "L2CAP header says 3 bytes"));
    assert_true(bad_has(g, "ACL header says 12"));
    assert_true(bad_has(g, "without a start"));
    assert_true(bad_has(g, "longer than the 517"));
    assert_true(bad_has(g, "cut by the capture"));
    assert_true(bad_has(g, "cut short by a new start"));
    assert_true(bad_has(g, "HR measurement"));
    assert_true(bad_has(g, "absurd"));
    (void)g;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_btsnoop.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_worked_record),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_hr_capture),
        cmocka_unit_test(test_find_info_and_pinetime),
        cmocka_unit_test(test_disconnect),
        cmocka_unit_test(test_service_changed),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_lying_lengths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
