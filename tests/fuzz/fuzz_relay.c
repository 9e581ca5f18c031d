/* libFuzzer harness for the relay service (drivers/relay.c, relay_msg.c). The first byte picks:
 *   0  a script against the hub's reassembler: RESUMEs, raw fragments, and records fragmented by
 *      relay_tx (optionally with a bit flipped), checking that what comes out is in seq order
 *      within a generation, bounded, and (for records sent intact) byte-identical;
 *   1  raw fragments into the phone's nudge reassembler (plain mode);
 *   2  any payload through relay_tx and back at any fragment size, then again with one bit
 *      flipped: the result is the payload or nothing, never something else;
 *   3  the small messages: decode, and where that succeeds, encode gives back the same bytes.
 * Never a crash, hang or leak; every refusal has a printable reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct relay_rx rx;

static void check_why(const char *why)
{
    if (!why[0] || strlen(why) >= DEC_WHY_MAX)
        abort();
    for (const char *p = why; *p; p++)
        if (*p < 0x20 || *p > 0x7E)
            abort();
}

struct order {
    uint64_t resumes; /* rx.st.resumes when the last record came: generations wrap at 255 */
    int64_t last;
};

static void check_result(int r, const struct relay_frame *fr, struct order *o)
{
    if (r < 0) {
        check_why(rx.why);
        if (rx.mode == RELAY_RX_RECORDS && !relay_rx_need_resume(&rx))
            abort();
        return;
    }
    if (r == RELAY_NONE)
        return;
    if (fr->seq < 0 || fr->gap < 0)
        abort();
    if (r == RELAY_OVERSIZED) {
        if (fr->data || fr->len <= RELAY_RECORD_MAX)
            abort();
    } else if (r == RELAY_RECORD) {
        if (fr->data != rx.buf || fr->len < 1 || fr->len > RELAY_RECORD_MAX)
            abort();
        struct event ev;
        char why[DEC_WHY_MAX] = "";
        if (relay_record_event(fr, "p01", "phone-p01", &ev, why) != 0)
            check_why(why);
    } else {
        abort();
    }
    if (rx.mode == RELAY_RX_RECORDS) {
        int same = o->resumes == rx.st.resumes;
        if (same && fr->seq <= o->last)
            abort(); /* strictly increasing within a generation */
        if (fr->gap && (same || !rx.have_floor || fr->seq - fr->gap != rx.floor + 1))
            abort(); /* a gap only on the START record, right after the resume point */
        o->resumes = rx.st.resumes;
        o->last = fr->seq;
    }
}

static void script(const uint8_t *b, size_t n, enum relay_mode mode)
{
    if (relay_rx_init(&rx, mode, 20 + (n ? b[0] : 0) * 2) != 0)
        abort();
    struct order o = {UINT64_MAX, -1};
    struct relay_frame fr;
    static uint8_t frag[RELAY_FIRST_HDR + RELAY_RECORD_MAX + 600];
    size_t i = 1;
    while (i < n) {
        uint8_t op = b[i++];
        if (mode == RELAY_RX_RECORDS && op % 4 == 0 && i + 4 <= n) {
            uint8_t m[RELAY_RESUME_LEN];
            int have = b[i] & 1;
            int r = relay_rx_resume(&rx, have, b[i + 1], (uint16_t)(19 + b[i + 2] * 2),
                                    (uint16_t)b[i + 3], m, sizeof m);
            if (r >= 0) {
                struct relay_resume d;
                char why[DEC_WHY_MAX] = "";
                if (r != RELAY_RESUME_LEN || relay_resume_decode(m, (size_t)r, &d, why) != 0 ||
                    d.gen != rx.gen || relay_rx_need_resume(&rx))
                    abort();
            }
            i += 4;
        } else if (op % 4 == 1 && i + 5 <= n) {
            /* a record made by relay_tx: start, seq (relative to the floor), length, flip */
            int start = b[i] & 1;
            int64_t seq = (rx.have_floor ? rx.floor : 0) + (int8_t)b[i + 1];
            size_t len = 1 + ((size_t)b[i + 2] << 5 | (b[i + 3] & 31));
            size_t flip = b[i + 4];
            i += 5;
            size_t avail = n - i;
            static uint8_t rec[8192];
            if (seq < 0)
                seq = 0;
            for (size_t k = 0; k < len; k++)
                rec[k] = avail ? b[i + k % avail] : (uint8_t)k;
            struct relay_tx tx;
            if (relay_tx_start(&tx, rx.gen, start, seq, rec, len, rx.max_frag) != 0)
                continue;
            int fn, at = 0;
            while ((fn = relay_tx_next(&tx, frag, sizeof frag)) > 0) {
                if (flip && at++ == flip % 8)
                    frag[(flip * 7) % (size_t)fn] ^= (uint8_t)(1u << (flip % 8));
                int r = relay_rx_feed(&rx, frag, (size_t)fn, &fr);
                check_result(r, &fr, &o);
                /* sent intact, a record comes back as it was or not at all (with a bit flipped
                 * it may complete a partial record the script began by hand) */
                if (!flip && r == RELAY_RECORD &&
                    (fr.len != len || memcmp(fr.data, rec, len) != 0))
                    abort();
            }
        } else {
            size_t len = op >> 2;
            if (len > n - i)
                len = n - i;
            int r = relay_rx_feed(&rx, b + i, len, &fr);
            check_result(r, &fr, &o);
            i += len;
        }
    }
}

static void round_trip(const uint8_t *b, size_t n)
{
    if (n < 4)
        return;
    size_t max_frag = RELAY_FRAG_MIN + ((size_t)b[0] | (size_t)b[1] << 8) % 600;
    size_t flip = (size_t)b[2] << 8 | b[3];
    const uint8_t *rec = b + 4;
    size_t len = n - 4;
    static uint8_t frag[700];
    struct relay_tx tx;
    struct relay_frame fr;
    for (int pass = 0; pass < 2; pass++) {
        if (relay_rx_init(&rx, RELAY_RX_PLAIN, max_frag) != 0)
            abort();
        if (relay_tx_start(&tx, 0, 0, (int64_t)len, rec, len, max_frag) != 0) {
            if (relay_frag_count(len, max_frag) != 0)
                abort();
            return;
        }
        size_t nf = relay_frag_count(len, max_frag), k = 0, off = 0;
        int fn, got = 0;
        while ((fn = relay_tx_next(&tx, frag, sizeof frag)) > 0) {
            if ((size_t)fn > max_frag)
                abort();
            if (pass == 1 && flip / 8 >= off && flip / 8 < off + (size_t)fn)
                frag[flip / 8 - off] ^= (uint8_t)(1u << (flip % 8));
            off += (size_t)fn;
            k++;
            int r = relay_rx_feed(&rx, frag, (size_t)fn, &fr);
            if (r == RELAY_RECORD || r == RELAY_OVERSIZED) {
                if (fr.seq != (int64_t)len || fr.len != len)
                    abort();
                if (r == RELAY_RECORD && memcmp(fr.data, rec, len) != 0)
                    abort();
                if ((r == RELAY_OVERSIZED) != (len > RELAY_RECORD_MAX))
                    abort();
                got = 1;
            } else if (r < 0) {
                if (pass == 0)
                    abort();
                check_why(rx.why);
            }
        }
        if (k != nf || (pass == 0 && !got))
            abort();
    }
}

static void messages(const uint8_t *b, size_t n)
{
    if (n < 1)
        return;
    uint8_t out[RELAY_NUDGE_MAX + 16];
    char why[DEC_WHY_MAX] = "";
    const uint8_t *v = b + 1;
    size_t vn = n - 1;
    switch (b[0] % 4) {
    case 0: {
        struct relay_resume m;
        if (relay_resume_decode(v, vn, &m, why) != 0) {
            check_why(why);
            return;
        }
        int r = relay_resume_encode(&m, out, sizeof out);
        if (r < 0 || (size_t)r != vn || memcmp(out, v, vn) != 0)
            abort();
        if (m.op == RELAY_OP_RESUME && vn >= 4) {
            struct relay_plan p;
            int64_t oldest = v[1] % 8, newest = oldest + v[2] % 8, last = newest + v[3] % 4;
            int have = v[0] & 1;
            if (relay_plan_resume(&m, have, oldest, newest, 1, last, &p) == 0 && p.send &&
                !p.renumber && (p.first < oldest || p.first > newest ||
                                (m.have_seq && p.first <= m.seq)))
                abort();
        }
        break;
    }
    case 1: {
        struct relay_status s;
        if (relay_status_decode(v, vn, &s, why) != 0) {
            check_why(why);
            return;
        }
        int r = relay_status_encode(&s, out, sizeof out);
        if (r < 0 || (size_t)r != vn || memcmp(out, v, vn) != 0)
            abort();
        break;
    }
    case 2: {
        struct relay_nudge d;
        if (relay_nudge_decode(v, vn, &d, why) != 0) {
            check_why(why);
            return;
        }
        int r = relay_nudge_encode(&d, out, sizeof out);
        if (r < 0 || (size_t)r != vn || memcmp(out, v, vn) != 0)
            abort();
        break;
    }
    default: {
        int op;
        if (relay_control_decode(v, vn, &op, why) != 0)
            check_why(why);
        else if (op < RELAY_CTL_STATUS || op > RELAY_CTL_CONTINUE)
            abort();
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 4) {
    case 0: script(data + 1, size - 1, RELAY_RX_RECORDS); break;
    case 1: script(data + 1, size - 1, RELAY_RX_PLAIN); break;
    case 2: round_trip(data + 1, size - 1); break;
    default: messages(data + 1, size - 1); break;
    }
    return 0;
}
