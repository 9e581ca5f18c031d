/* drivers/relay*.c (docs/relay-profile.md): every phone record type round-trips at every ATT MTU
 * from 23 to 517; fragment counts at and around the boundaries; malformed and oversized
 * fragments refused with their reasons; generations, START and duplicates; the RESUME/ACK,
 * status, control and nudge messages; record checks. Interrupted streams and the phone's resume
 * plan are in test_relay_resume.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/relay.h"
#include "tests/relay_records.h"

static struct relay_rx rx, rx2;

static int resume(struct relay_rx *r, int have, int64_t seq, size_t max_frag, uint8_t *gen)
{
    uint8_t m[RELAY_RESUME_LEN];
    int n = relay_rx_resume(r, have, seq, (uint16_t)max_frag, 64, m, sizeof m);
    assert_int_equal(n, RELAY_RESUME_LEN);
    struct relay_resume d;
    assert_int_equal(relay_resume_decode(m, (size_t)n, &d, NULL), 0);
    *gen = d.gen;
    return n;
}

/* Sends one record through r: every fragment but the last gives RELAY_NONE. Returns the last
 * fragment's result; the number of fragments in *nfrag. */
static int send_record(struct relay_rx *r, uint8_t gen, int start, int64_t seq, const void *rec,
                       size_t len, size_t max_frag, struct relay_frame *out, size_t *nfrag)
{
    struct relay_tx tx;
    uint8_t f[8192];
    int n, res = RELAY_NONE;
    size_t k = 0, want = relay_frag_count(len, max_frag);
    assert_int_equal(relay_tx_start(&tx, gen, start, seq, rec, len, max_frag), 0);
    while ((n = relay_tx_next(&tx, f, sizeof f)) > 0) {
        k++;
        assert_true((size_t)n <= max_frag);
        if (k < want)
            assert_int_equal(n, max_frag); /* every fragment but the last is full */
        if (res != RELAY_NONE)
            fail_msg("record seq %lld returned before its last fragment", (long long)seq);
        res = relay_rx_feed(r, f, (size_t)n, out);
        if (res < 0)
            fail_msg("fragment %zu: %s", k, r->why);
    }
    assert_int_equal(k, want);
    *nfrag = k;
    return res;
}

static void test_every_record_type_round_trips_at_every_mtu(void **state)
{
    char rec[RELAY_RECORD_MAX + 64];
    size_t frags229 = 0;
    for (size_t mtu = 23; mtu <= 517; mtu++) {
        size_t max_frag = mtu - 3;
        uint8_t gen;
        assert_int_equal(relay_rx_init(&rx, RELAY_RX_RECORDS, max_frag), 0);
        assert_true(relay_rx_need_resume(&rx));
        resume(&rx, mtu & 1, 99, max_frag, &gen);
        assert_false(relay_rx_need_resume(&rx));
        for (int k = 0; k < K_KINDS; k++) {
            int64_t seq = 100 + k;
            size_t len = make_record(rec, sizeof rec, k, seq), nf;
            struct relay_frame fr;
            assert_true(len <= RELAY_RECORD_MAX);
            int r = send_record(&rx, gen, k == 0, seq, rec, len, max_frag, &fr, &nf);
            assert_int_equal(r, RELAY_RECORD);
            assert_true(fr.seq == seq);
            assert_int_equal(fr.len, len);
            assert_memory_equal(fr.data, rec, len);
            assert_true(fr.gap == 0);
            struct event ev;
            char why[DEC_WHY_MAX];
            if (relay_record_event(&fr, P, S, &ev, why) != 0)
                fail_msg("mtu %zu kind %d: %s", mtu, k, why);
            assert_int_equal(ev.type, kind_type[k]);
            assert_true(ev.seq == seq);
            if (k == K_MAX_EMA && mtu == 23)
                frags229 = nf;
        }
        assert_int_equal(rx.st.records, K_KINDS);
        assert_int_equal(rx.st.errors, 0);
    }
    assert_int_equal(frags229, 229); /* 4096 bytes at ATT_MTU 23: 4 + 228 x 18 */
}

static void test_fragment_counts_at_the_boundaries(void **state)
{
    static const size_t sizes[] = {20, 21, 22, 23, 64, 182, 185, 244, 251, 512, 514, 1024, 4112};
    static uint8_t rec[RELAY_RECORD_MAX];
    for (size_t i = 0; i < sizeof rec; i++)
        rec[i] = (uint8_t)(i * 131 + 7);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t mf = sizes[s], fc = mf - RELAY_FIRST_HDR, cc = mf - RELAY_CONT_HDR;
        size_t lens[] = {1, fc - 1, fc, fc + 1, fc + cc - 1, fc + cc, fc + cc + 1,
                         fc + 5 * cc, fc + 5 * cc + 1, RELAY_RECORD_MAX - 1, RELAY_RECORD_MAX};
        for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
            size_t len = lens[j];
            if (len == 0 || len > RELAY_RECORD_MAX)
                continue;
            size_t want = len <= fc ? 1 : 1 + (len - fc + cc - 1) / cc, nf;
            assert_int_equal(relay_frag_count(len, mf), want);
            struct relay_frame fr;
            assert_int_equal(relay_rx_init(&rx, RELAY_RX_PLAIN, mf), 0);
            assert_int_equal(send_record(&rx, 0, 0, (int64_t)len, rec, len, mf, &fr, &nf),
                             RELAY_RECORD);
            assert_int_equal(nf, want);
            assert_int_equal(fr.len, len);
            assert_memory_equal(fr.data, rec, len);
        }
    }
    assert_int_equal(relay_frag_count(RELAY_RECORD_MAX, 20), 229);
    assert_int_equal(relay_frag_count(4 + 255 * 18, 20), 256);
    assert_int_equal(relay_frag_count(4 + 255 * 18 + 1, 20), 0); /* more than 256 fragments */
    assert_int_equal(relay_frag_count(0, 20), 0);
    assert_int_equal(relay_frag_count(1, 19), 0);
    assert_int_equal(relay_frag_count(65535, 514), 129);
    assert_int_equal(relay_frag_count(65536, 65535), 0);
    struct relay_tx tx;
    assert_int_equal(relay_tx_start(&tx, 1, 0, 1, rec, 0, 20), -EMSGSIZE);
    assert_int_equal(relay_tx_start(&tx, 1, 0, -1, rec, 1, 20), -EINVAL);
    uint8_t f[32];
    assert_int_equal(relay_tx_start(&tx, 1, 0, 1, rec, 100, 32), 0);
    assert_int_equal(relay_tx_next(&tx, f, 31), -ENOBUFS);
}

/* ---- refusals ---- */

/* A first fragment by hand: ctl, gen, seq, len, a CRC computed (or not) over header and data. */
static size_t first_frag(uint8_t *f, uint8_t ctl, uint8_t gen, uint64_t seq, unsigned len,
                         const char *data, size_t n, int good_crc)
{
    f[0] = ctl;
    f[1] = gen;
    for (int i = 0; i < 8; i++)
        f[2 + i] = (uint8_t)(seq >> (8 * i));
    f[10] = (uint8_t)len;
    f[11] = (uint8_t)(len >> 8);
    uint32_t crc = relay_crc32(relay_crc32(0, f + 1, 11), data, n) ^ (good_crc ? 0 : 1);
    for (int i = 0; i < 4; i++)
        f[12 + i] = (uint8_t)(crc >> (8 * i));
    memcpy(f + RELAY_FIRST_HDR, data, n);
    return RELAY_FIRST_HDR + n;
}

#define F1 (RELAY_CTL_FIRST | RELAY_VERSION)
#define FL (RELAY_CTL_FIRST | RELAY_CTL_LAST | RELAY_VERSION)
#define FLS (FL | RELAY_CTL_START)

static void expect_refused(const uint8_t *f, size_t n, const char *why)
{
    struct relay_frame fr;
    uint64_t errors = rx.st.errors;
    assert_int_equal(relay_rx_feed(&rx, f, n, &fr), -EBADMSG);
    assert_int_equal(rx.st.errors, errors + 1);
    if (!strstr(rx.why, why))
        fail_msg("\"%s\" lacks \"%s\"", rx.why, why);
    assert_true(relay_rx_need_resume(&rx));
    /* everything after it is dropped until the next RESUME */
    uint64_t dropped = rx.st.dropped;
    assert_int_equal(relay_rx_feed(&rx, f, n, &fr), RELAY_NONE);
    assert_int_equal(rx.st.dropped, dropped + 1);
}

/* rx in records mode, resumed after seq 9 (gen in *gen) and synced by a START record seq 10. */
static void fresh(size_t max_frag, uint8_t *gen)
{
    uint8_t f[64];
    struct relay_frame fr;
    assert_int_equal(relay_rx_init(&rx, RELAY_RX_RECORDS, max_frag), 0);
    resume(&rx, 1, 9, max_frag, gen);
    size_t n = first_frag(f, FLS, *gen, 10, 1, "a", 1, 1);
    assert_int_equal(relay_rx_feed(&rx, f, n, &fr), RELAY_RECORD);
    assert_true(fr.seq == 10);
}

static void test_malformed_fragments_are_refused(void **state)
{
    uint8_t f[600], g;
    size_t n;
    fresh(64, &g);
    expect_refused(f, 0, "empty fragment");
    fresh(64, &g);
    n = first_frag(f, (RELAY_CTL_FIRST | RELAY_CTL_LAST | 2), g, 11, 1, "a", 1, 1);
    expect_refused(f, n, "framing version 2");
    fresh(64, &g);
    n = first_frag(f, FL | RELAY_CTL_RESERVED, g, 11, 1, "a", 1, 1);
    expect_refused(f, n, "reserved bit");
    fresh(64, &g);
    n = first_frag(f, FL, g, 11, 1, "a", 1, 1);
    expect_refused(f, 15, "shorter than its 16-byte header");
    fresh(64, &g);
    memset(f, 'a', sizeof f);
    n = first_frag(f, FL, g, 11, 49, (const char *)f + 100, 49, 1);
    expect_refused(f, n, "above the 64 agreed"); /* oversized fragment */
    fresh(64, &g);
    n = first_frag(f, FL, g, 11, 0, "", 0, 1);
    expect_refused(f, n, "of length 0");
    fresh(64, &g);
    n = first_frag(f, FL, g, 11, 1, "ab", 2, 1);
    expect_refused(f, n, "carries 2 bytes of a 1-byte record");
    fresh(64, &g);
    n = first_frag(f, FL, g, 11, 3, "ab", 2, 1);
    expect_refused(f, n, "of 3 bytes ends after 2");
    fresh(64, &g);
    n = first_frag(f, F1, g, 11, 2, "ab", 2, 1);
    expect_refused(f, n, "complete in a fragment not marked last");
    fresh(64, &g);
    n = first_frag(f, FL, g, (uint64_t)1 << 63, 1, "a", 1, 1);
    expect_refused(f, n, "beyond 2^63-1");
    fresh(64, &g);
    n = first_frag(f, FL, g, 11, 1, "a", 1, 0);
    expect_refused(f, n, "CRC-32");
    fresh(64, &g);
    n = first_frag(f, FL, g, 12, 1, "a", 1, 1);
    expect_refused(f, n, "record seq 12, expected 11 (1 records missing)");
    fresh(64, &g);
    n = first_frag(f, FLS, g, 11, 1, "a", 1, 1);
    expect_refused(f, n, "START bit inside generation");

    /* continuations */
    static const uint8_t orphan[] = {RELAY_CTL_LAST | RELAY_VERSION, 1, 'x'};
    fresh(64, &g);
    expect_refused(orphan, sizeof orphan, "continuation fragment without a first fragment");
    struct relay_frame fr;
    uint8_t c[16];
#define START_REC()                                                                            \
    do {                                                                                       \
        fresh(64, &g);                                                                         \
        n = first_frag(f, F1, g, 11, 10, "abcd", 4, 1);                                        \
        assert_int_equal(relay_rx_feed(&rx, f, n, &fr), RELAY_NONE);                           \
    } while (0)
    START_REC();
    c[0] = RELAY_VERSION, c[1] = 2, c[2] = 'e';
    expect_refused(c, 3, "fragment index 2, expected 1 (lost or reordered)");
    START_REC();
    c[0] = RELAY_VERSION, c[1] = 1;
    expect_refused(c, 2, "fragment 1 without data");
    START_REC();
    expect_refused(c, 1, "continuation fragment of 1 byte");
    START_REC();
    c[0] = RELAY_VERSION | RELAY_CTL_START, c[1] = 1, c[2] = 'e';
    expect_refused(c, 3, "START bit on a continuation");
    START_REC();
    c[0] = RELAY_CTL_LAST | RELAY_VERSION, c[1] = 1, memcpy(c + 2, "efg", 3);
    expect_refused(c, 5, "of 10 bytes ends after 7");
    START_REC();
    c[0] = RELAY_VERSION, c[1] = 1, memcpy(c + 2, "efghij", 6);
    expect_refused(c, 8, "complete in a fragment not marked last");
    START_REC();
    c[0] = RELAY_CTL_LAST | RELAY_VERSION, c[1] = 1, memcpy(c + 2, "efghijk", 7);
    expect_refused(c, 9, "carry more than its 10 bytes");
    START_REC();
    n = first_frag(f, FL, g, 12, 1, "a", 1, 1);
    expect_refused(f, n, "record seq 11 cut off after 4 of 10 bytes by a new record");

    /* more than 256 fragments: one byte each */
    fresh(64, &g);
    n = first_frag(f, F1, g, 11, 300, "a", 1, 1);
    assert_int_equal(relay_rx_feed(&rx, f, n, &fr), RELAY_NONE);
    for (unsigned i = 1; i < 255; i++) {
        c[0] = RELAY_VERSION, c[1] = (uint8_t)i, c[2] = 'b';
        assert_int_equal(relay_rx_feed(&rx, c, 3, &fr), RELAY_NONE);
    }
    c[0] = RELAY_VERSION, c[1] = 255, c[2] = 'b';
    expect_refused(c, 3, "needs more than 256 fragments");

    /* a corrupted continuation byte is caught by the CRC */
    fresh(64, &g);
    struct relay_tx tx;
    assert_int_equal(relay_tx_start(&tx, g, 0, 11, "abcdefghij", 10, 20), 0);
    n = (size_t)relay_tx_next(&tx, f, sizeof f);
    assert_int_equal(n, 20);
    assert_int_equal(relay_rx_feed(&rx, f, n, &fr), RELAY_NONE);
    n = (size_t)relay_tx_next(&tx, f, sizeof f);
    assert_int_equal(n, 2 + 6);
    f[4] ^= 0x20;
    expect_refused(f, n, "CRC-32");
}

static void test_generation_start_and_duplicates(void **state)
{
    uint8_t f[64], g;
    struct relay_frame fr;
    size_t n;
    /* before any RESUME everything is stale */
    assert_int_equal(relay_rx_init(&rx, RELAY_RX_RECORDS, 64), 0);
    n = first_frag(f, FLS, 0, 0, 1, "a", 1, 1);
    assert_int_equal(relay_rx_feed(&rx, f, n, &fr), RELAY_NONE);
    assert_int_equal(rx.st.stale, 1);
    /* a record of the generation before its START */
    resume(&rx, 1, 9, 64, &g);
    n = first_frag(f, FL, g, 10, 1, "a", 1, 1);
    expect_refused(f, n, "came before its START record");
    /* a START at or below the resume point */
    resume(&rx, 1, 9, 64, &g);
    n = first_frag(f, FLS, g, 9, 1, "a", 1, 1);
    expect_refused(f, n, "START record seq 9 at or below the resume point 9");
    /* after a RESUME: the rest of an abandoned record and records of the old generation are
     * stale, not errors */
    resume(&rx, 1, 9, 64, &g);
    uint8_t old = g;
    n = first_frag(f, F1, g, 10, 10, "abcd", 4, 1);
    assert_int_equal(relay_rx_feed(&rx, f, n, &fr), RELAY_NONE);
    resume(&rx, 1, 9, 64, &g);
    assert_int_equal(rx.st.aborted, 1);
    assert_int_not_equal(g, old);
    uint8_t c[] = {RELAY_VERSION, 1, 'e', 'f'};
    assert_int_equal(relay_rx_feed(&rx, c, sizeof c, &fr), RELAY_NONE);
    n = first_frag(f, F1, old, 11, 10, "abcd", 4, 1);
    assert_int_equal(relay_rx_feed(&rx, f, n, &fr), RELAY_NONE);
    assert_int_equal(relay_rx_feed(&rx, c, sizeof c, &fr), RELAY_NONE); /* its continuation */
    assert_int_equal(rx.st.stale, 4);
    assert_int_equal(rx.st.errors, 2);
    /* the START may skip records the phone no longer has: a gap, reported */
    n = first_frag(f, FLS, g, 15, 1, "a", 1, 1);
    assert_int_equal(relay_rx_feed(&rx, f, n, &fr), RELAY_RECORD);
    assert_true(fr.seq == 15 && fr.gap == 5);
    assert_int_equal(rx.st.gaps, 1);
    assert_int_equal(rx.st.gap_records, 5);
    /* a record repeated inside the generation is a duplicate, not an error */
    assert_int_equal(relay_rx_feed(&rx, f, n, &fr), -EBADMSG); /* a second START */
    assert_true(relay_rx_need_resume(&rx));
    resume(&rx, 1, 15, 64, &g);
    n = first_frag(f, FLS, g, 16, 1, "a", 1, 1);
    assert_int_equal(relay_rx_feed(&rx, f, n, &fr), RELAY_RECORD);
    n = first_frag(f, FL, g, 17, 1, "b", 1, 1);
    assert_int_equal(relay_rx_feed(&rx, f, n, &fr), RELAY_RECORD);
    n = first_frag(f, FL, g, 16, 1, "a", 1, 1);
    assert_int_equal(relay_rx_feed(&rx, f, n, &fr), RELAY_NONE);
    assert_int_equal(rx.st.duplicates, 1);
    assert_false(relay_rx_need_resume(&rx));
    /* no resume point: any START is the first */
    resume(&rx, 0, 0, 64, &g);
    n = first_frag(f, FLS, g, 0, 1, "a", 1, 1);
    assert_int_equal(relay_rx_feed(&rx, f, n, &fr), RELAY_RECORD);
    assert_true(fr.gap == 0);
    /* generations wrap from 255 to 1, never 0 */
    for (int i = 0; i < 300; i++) {
        resume(&rx, 0, 0, 64, &g);
        assert_int_not_equal(g, 0);
    }
    uint8_t m[RELAY_RESUME_LEN];
    assert_int_equal(relay_rx_resume(&rx, 1, -1, 64, 1, m, sizeof m), -EINVAL);
    assert_int_equal(relay_rx_resume(&rx, 1, 0, 19, 1, m, sizeof m), -EINVAL);
    assert_int_equal(relay_rx_resume(&rx, 1, 0, 64, 0, m, sizeof m), -EINVAL);
    assert_int_equal(relay_rx_resume(&rx, 1, 0, 64, 1, m, 14), -ENOBUFS);
    assert_int_equal(relay_rx_init(&rx2, RELAY_RX_PLAIN, 64), 0);
    assert_int_equal(relay_rx_resume(&rx2, 1, 0, 64, 1, m, sizeof m), -EINVAL);
    assert_int_equal(relay_rx_init(&rx2, RELAY_RX_PLAIN, 19), -EINVAL);
}

static void test_oversized_records_use_up_their_seq(void **state)
{
    static uint8_t big[5000];
    memset(big, 'z', sizeof big);
    uint8_t g;
    struct relay_frame fr;
    size_t nf;
    assert_int_equal(relay_rx_init(&rx, RELAY_RX_RECORDS, 514), 0);
    resume(&rx, 1, 41, 514, &g);
    char rec[256];
    size_t len = make_record(rec, sizeof rec, K_SCREEN, 42);
    assert_int_equal(send_record(&rx, g, 1, 42, rec, len, 514, &fr, &nf), RELAY_RECORD);
    assert_int_equal(send_record(&rx, g, 0, 43, big, sizeof big, 514, &fr, &nf),
                     RELAY_OVERSIZED);
    assert_true(fr.seq == 43 && fr.len == sizeof big && !fr.data);
    assert_int_equal(rx.st.oversized, 1);
    struct event ev;
    char why[DEC_WHY_MAX];
    assert_int_equal(relay_record_event(&fr, P, S, &ev, why), -EINVAL);
    assert_string_equal(why, "record seq 43 of 5000 bytes, above 4096");
    len = make_record(rec, sizeof rec, K_BATTERY, 44);
    assert_int_equal(send_record(&rx, g, 0, 44, rec, len, 514, &fr, &nf), RELAY_RECORD);
    assert_int_equal(relay_record_event(&fr, P, S, &ev, why), 0);
    assert_int_equal(rx.st.errors, 0);
    /* an oversized record is checked like any other: a corrupted one is refused */
    uint8_t f[520];
    struct relay_tx tx;
    assert_int_equal(relay_tx_start(&tx, g, 0, 45, big, sizeof big, 514), 0);
    int n = relay_tx_next(&tx, f, sizeof f);
    assert_int_equal(relay_rx_feed(&rx, f, (size_t)n, &fr), RELAY_NONE);
    n = relay_tx_next(&tx, f, sizeof f);
    f[100] ^= 1;
    assert_int_equal(relay_rx_feed(&rx, f, (size_t)n, &fr), RELAY_NONE);
    while ((n = relay_tx_next(&tx, f, sizeof f)) > 0 && tx.off < tx.len)
        assert_int_equal(relay_rx_feed(&rx, f, (size_t)n, &fr), RELAY_NONE);
    assert_int_equal(relay_rx_feed(&rx, f, (size_t)n, &fr), -EBADMSG);
    assert_non_null(strstr(rx.why, "CRC-32"));
}

/* ---- messages ---- */

static void test_resume_and_ack_messages(void **state)
{
    uint8_t b[RELAY_RESUME_LEN + 1];
    struct relay_resume m = {.op = RELAY_OP_RESUME, .gen = 3, .have_seq = 1, .seq = 41,
                             .max_frag = 244, .window = 32}, d;
    static const uint8_t want[] = {0x01, 0x03, 0x01, 0x29, 0, 0, 0, 0, 0, 0, 0, 0xF4, 0x00,
                                   0x20, 0x00};
    char why[DEC_WHY_MAX];
    assert_int_equal(relay_resume_encode(&m, b, sizeof b), RELAY_RESUME_LEN);
    assert_memory_equal(b, want, sizeof want);
    assert_int_equal(relay_resume_decode(b, RELAY_RESUME_LEN, &d, why), 0);
    assert_int_equal(d.op, RELAY_OP_RESUME);
    assert_int_equal(d.gen, 3);
    assert_true(d.have_seq && d.seq == 41 && d.max_frag == 244 && d.window == 32);
    static const uint8_t ack[] = {0x02, 0x03, 0x01, 0x2A, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(relay_ack_encode(3, 42, b, sizeof b), RELAY_ACK_LEN);
    assert_memory_equal(b, ack, sizeof ack);
    assert_int_equal(relay_resume_decode(ack, sizeof ack, &d, why), 0);
    assert_true(d.op == RELAY_OP_ACK && d.seq == 42);
    static const uint8_t none[] = {0x01, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x14, 0x00, 1, 0};
    assert_int_equal(relay_resume_decode(none, sizeof none, &d, why), 0);
    assert_false(d.have_seq);

    static const struct {
        uint8_t b[16];
        size_t n;
        const char *why;
    } bad[] = {
        {{0}, 0, "empty value"},
        {{0x03}, 1, "unknown operation 0x03"},
        {{0x01, 1, 1}, 11, "RESUME of 11 bytes (exactly 15)"},
        {{0x02, 1, 1}, 15, "ACK of 15 bytes (exactly 11)"},
        {{0x02, 0, 1}, 11, "generation 0"},
        {{0x02, 1, 3}, 11, "reserved flag bits"},
        {{0x02, 1, 0}, 11, "ACK without the HAVE_SEQ flag"},
        {{0x01, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 20, 0, 1, 0}, 15, "seq 5 without the HAVE_SEQ"},
        {{0x02, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0x80}, 11, "beyond 2^63-1"},
        {{0x01, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 19, 0, 1, 0}, 15, "fragment size 19"},
        {{0x01, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0}, 15, "window 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(relay_resume_decode(bad[i].b, bad[i].n, &d, why), -EINVAL);
        if (!strstr(why, bad[i].why))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, bad[i].why);
    }
    m.gen = 0;
    assert_int_equal(relay_resume_encode(&m, b, sizeof b), -EINVAL);
    assert_int_equal(relay_ack_encode(1, -1, b, sizeof b), -EINVAL);
}

static void test_status_and_control(void **state)
{
    struct relay_status s = {.version = 1, .flags = RELAY_STATUS_HAVE_NEWEST, .newest = 1234,
                             .pending = 17, .dropped = 2}, d;
    uint8_t b[RELAY_STATUS_LEN];
    static const uint8_t want[] = {0x01, 0x01, 0xD2, 0x04, 0, 0, 0, 0, 0, 0, 0x11, 0, 0, 0,
                                   0x02, 0, 0, 0};
    char why[DEC_WHY_MAX];
    assert_int_equal(relay_status_encode(&s, b, sizeof b), RELAY_STATUS_LEN);
    assert_memory_equal(b, want, sizeof want);
    assert_int_equal(relay_status_decode(b, sizeof b, &d, why), 0);
    assert_true(d.newest == 1234 && d.pending == 17 && d.dropped == 2 && d.flags == 1);
    assert_int_equal(relay_status_decode(b, 17, &d, why), -EINVAL);
    b[0] = 2;
    assert_int_equal(relay_status_decode(b, sizeof b, &d, why), -EINVAL);
    b[0] = 1, b[1] = 0;
    assert_int_equal(relay_status_decode(b, sizeof b, &d, why), -EINVAL); /* newest w/o flag */
    b[1] = 0x09;
    assert_int_equal(relay_status_decode(b, sizeof b, &d, why), -EINVAL);
    s.flags = 0;
    assert_int_equal(relay_status_encode(&s, b, sizeof b), -EINVAL);
    int op;
    for (unsigned v = 0; v < 256; v++) {
        uint8_t c = (uint8_t)v;
        int r = relay_control_decode(&c, 1, &op, why);
        assert_int_equal(r, v >= 1 && v <= 3 ? 0 : -EINVAL);
    }
    uint8_t two[2] = {1, 1};
    assert_int_equal(relay_control_decode(two, 2, &op, why), -EINVAL);
}

static void test_nudges(void **state)
{
    struct relay_nudge n = {.priority = RELAY_PRIO_HIGH, .ts = 1583470800000,
                            .expires = 1583557200000}, d;
    strcpy(n.participant, "p01");
    strcpy(n.id, "n-20200306-1");
    strcpy(n.tmpl, "checkin-1");
    uint8_t b[RELAY_NUDGE_MAX];
    char why[DEC_WHY_MAX];
    int len = relay_nudge_encode(&n, b, sizeof b);
    assert_int_equal(len, 18 + 1 + 3 + 1 + 12 + 1 + 9);
    static const uint8_t head[] = {0x01, 0x02, 0x80, 0xEC, 0x36, 0xAE, 0x70, 0x01, 0x00, 0x00,
                                   0x80, 0x48, 0x5D, 0xB3, 0x70, 0x01, 0x00, 0x00, 0x03, 'p'};
    assert_memory_equal(b, head, sizeof head);
    assert_int_equal(relay_nudge_decode(b, (size_t)len, &d, why), 0);
    assert_true(d.priority == n.priority && d.ts == n.ts && d.expires == n.expires);
    assert_string_equal(d.participant, n.participant);
    assert_string_equal(d.id, n.id);
    assert_string_equal(d.tmpl, n.tmpl);
    for (int k = 0; k < len; k++) /* every truncation refused */
        assert_int_equal(relay_nudge_decode(b, (size_t)k, &d, why), -EINVAL);
    b[len] = 0;
    assert_int_equal(relay_nudge_decode(b, (size_t)len + 1, &d, why), -EINVAL);
    assert_non_null(strstr(why, "1 extra bytes"));

    /* over the nudge characteristic: fragments like records, reassembled by the phone */
    struct relay_frame fr;
    size_t nf;
    assert_int_equal(relay_rx_init(&rx2, RELAY_RX_PLAIN, 20), 0);
    assert_int_equal(send_record(&rx2, 0, 0, 7, b, (size_t)len, 20, &fr, &nf), RELAY_RECORD);
    assert_true(fr.seq == 7 && nf == 4); /* 45 bytes: 4 + 18 + 18 + 5 */
    assert_int_equal(relay_nudge_decode(fr.data, fr.len, &d, why), 0);
    assert_string_equal(d.id, "n-20200306-1");

    /* the longest nudge */
    memset(n.participant, 'P', EV_ID_MAX), n.participant[EV_ID_MAX] = '\0';
    memset(n.id, 'i', EV_NAME_MAX), n.id[EV_NAME_MAX] = '\0';
    memset(n.tmpl, 't', EV_NAME_MAX), n.tmpl[EV_NAME_MAX] = '\0';
    assert_int_equal(relay_nudge_encode(&n, b, sizeof b), RELAY_NUDGE_MAX);
    assert_int_equal(relay_nudge_encode(&n, b, sizeof b - 1), -ENOBUFS);
    assert_int_equal(relay_nudge_decode(b, RELAY_NUDGE_MAX, &d, why), 0);

    struct relay_nudge bad = n;
    bad.priority = 3;
    assert_int_equal(relay_nudge_encode(&bad, b, sizeof b), -EINVAL);
    bad = n, bad.expires = n.ts - 1;
    assert_int_equal(relay_nudge_encode(&bad, b, sizeof b), -EINVAL);
    bad = n, bad.ts = EV_TS_MAX;
    assert_int_equal(relay_nudge_encode(&bad, b, sizeof b), -EINVAL);
    bad = n, strcpy(bad.participant, "p 01");
    assert_int_equal(relay_nudge_encode(&bad, b, sizeof b), -EINVAL);
    bad = n, bad.id[0] = '\0';
    assert_int_equal(relay_nudge_encode(&bad, b, sizeof b), -EINVAL);
    bad = n, strcpy(bad.tmpl, "a\tb");
    assert_int_equal(relay_nudge_encode(&bad, b, sizeof b), -EINVAL);

    static const struct {
        uint8_t b[40];
        size_t n;
        const char *why;
    } rej[] = {
        {{1, 0}, 17, "17 bytes (at least 18)"},
        {{2, 0}, 18, "version 2"},
        {{1, 3}, 18, "priority 3"},
        {{1, 0, 0, 0, 0, 0, 0, 0, 0, 0x80}, 18, "ts"},
        {{1, 0, 1, 0, 0, 0, 0, 0, 0, 0}, 18, "ends before its participant"},
        {{1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 19, "participant of 0"},
        {{1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 'p'}, 20, "runs past the end"},
        {{1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, '!', 1, 'i', 1, 't'}, 24,
         "must match"},
        {{1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'p', 1, 0x01, 1, 't'}, 24,
         "id at byte 21 is not UTF-8 text"},
        {{1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'p', 1, 'i', 1, 0xFF}, 24,
         "template at byte 23"},
        {{1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'p', 1, 'i'}, 22,
         "ends before its template"},
    };
    for (size_t i = 0; i < sizeof rej / sizeof rej[0]; i++) {
        assert_int_equal(relay_nudge_decode(rej[i].b, rej[i].n, &d, why), -EINVAL);
        if (!strstr(why, rej[i].why))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, rej[i].why);
    }
}

static void test_record_checks(void **state)
{
    static const struct {
        const char *line;
        int rc;
        const char *why;
    } cases[] = {
        {"{\"ts\":1583470800000,\"participant\":\"p01\",\"source\":\"phone-p01\",\"seq\":5,"
         "\"type\":\"screen\",\"state\":\"on\"}", 0, NULL},
        {"{\"ts\":1583470800000,\"participant\":\"p01\",\"source\":\"phone-p01\",\"seq\":6,"
         "\"type\":\"screen\",\"state\":\"on\"}", -EINVAL, "the line's seq differs"},
        {"{\"ts\":1583470800000,\"participant\":\"p01\",\"source\":\"phone-p01\","
         "\"type\":\"screen\",\"state\":\"on\"}", -EINVAL, "the line's seq is missing"},
        {"{\"ts\":1583470800000,\"participant\":\"p01\",\"source\":\"phone-p01\",\"seq\":5,"
         "\"type\":\"hr\",\"bpm\":60}", -EINVAL, "type hr is not relayed by a phone"},
        {"{\"ts\":1583470800000,\"participant\":\"p02\",\"source\":\"phone-p01\",\"seq\":5,"
         "\"type\":\"screen\",\"state\":\"on\"}", -EINVAL, "participant is not p01"},
        {"{\"ts\":1583470800000,\"participant\":\"p01\",\"seq\":5,"
         "\"type\":\"screen\",\"state\":\"on\"}", -EINVAL, "source is not phone-p01"},
        {"{\"ts\":1583470800000,\"participant\":\"p01\",\"source\":\"phone-p01\",\"seq\":5,"
         "\"type\":\"future\"}", -ENOENT, "unknown type"},
        {"{\"ts\":1583470800000,\"participant\":\"p01\",\"source\":\"phone-p01\",\"seq\":5,"
         "\"type\":\"accel\",\"hz\":10,\"g\":[[0,0,1]]}", -EINVAL, "sample buffer"},
        {"{\"ts\":1583470800000,", -EINVAL, "record seq 5: truncated JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct relay_frame fr = {.seq = 5, .data = (const uint8_t *)cases[i].line,
                                 .len = strlen(cases[i].line)};
        struct event ev;
        char why[DEC_WHY_MAX] = "";
        int r = relay_record_event(&fr, P, S, &ev, why);
        if (r != cases[i].rc)
            fail_msg("case %zu: %d (%s)", i, r, why);
        if (cases[i].why && !strstr(why, cases[i].why))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, cases[i].why);
    }
}

static void test_crc32(void **state)
{
    assert_int_equal(relay_crc32(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(relay_crc32(relay_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
    assert_int_equal(relay_crc32(0, "", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_record_type_round_trips_at_every_mtu),
        cmocka_unit_test(test_fragment_counts_at_the_boundaries),
        cmocka_unit_test(test_malformed_fragments_are_refused),
        cmocka_unit_test(test_generation_start_and_duplicates),
        cmocka_unit_test(test_oversized_records_use_up_their_seq),
        cmocka_unit_test(test_resume_and_ack_messages),
        cmocka_unit_test(test_status_and_control),
        cmocka_unit_test(test_nudges),
        cmocka_unit_test(test_record_checks),
        cmocka_unit_test(test_crc32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
