/* Relay framing (docs/relay-profile.md "Fragments" and "Sequencing"): records cut into
 * fragments for a given fragment size, and the receiver that puts them back together and
 * enforces the stream rules.
 *
 * The receiver trusts nothing: every header field is checked, a record is only returned when
 * its fragments arrived complete and in order, and in records mode only in seq order within
 * the generation of the last RESUME. Anything else drops the partial record, counts an error
 * and stops the stream until the hub writes a new RESUME, so the phone re-sends from the last
 * stored record: the hub never has to buffer or reorder, and a record is either delivered
 * whole and in order or not at all. Memory is one record buffer (RELAY_RECORD_MAX). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "drivers/decode_int.h"
#include "drivers/relay.h"

enum { RX_IDLE = 0, RX_BUSY, RX_SKIP, RX_DISCARD };

size_t relay_frag_count(size_t len, size_t max_frag)
{
    if (len == 0 || len > UINT16_MAX || max_frag < RELAY_FRAG_MIN)
        return 0;
    size_t first = max_frag - RELAY_FIRST_HDR;
    if (len <= first)
        return 1;
    size_t cont = max_frag - RELAY_CONT_HDR;
    size_t n = 1 + (len - first + cont - 1) / cont;
    return n <= RELAY_FRAGS_MAX ? n : 0;
}

uint32_t relay_crc32(uint32_t crc, const void *p, size_t n)
{
    /* nibble-at-a-time table: small, no init step, fast enough for 4 KiB records */
    static const uint32_t t[16] = {
        0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
        0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
        0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
    };
    const uint8_t *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        crc = (crc >> 4) ^ t[crc & 15];
        crc = (crc >> 4) ^ t[crc & 15];
    }
    return ~crc;
}

static uint32_t header_crc(const uint8_t *first)
{
    return relay_crc32(0, first + 1, 11);
}

int relay_tx_start(struct relay_tx *tx, uint8_t gen, int start, int64_t seq, const void *rec,
                   size_t len, size_t max_frag)
{
    if (seq < 0 || !rec)
        return -EINVAL;
    if (!relay_frag_count(len, max_frag))
        return -EMSGSIZE;
    *tx = (struct relay_tx){.rec = rec, .len = len, .max_frag = max_frag, .seq = seq,
                            .gen = gen, .start = !!start};
    uint8_t h[RELAY_FIRST_HDR];
    h[1] = gen;
    put_le64(h + 2, (uint64_t)seq);
    put_le16(h + 10, (uint16_t)len);
    tx->crc = relay_crc32(header_crc(h), rec, len);
    return 0;
}

int relay_tx_next(struct relay_tx *tx, uint8_t *out, size_t cap)
{
    if (tx->index > 0 && tx->off == tx->len)
        return 0;
    size_t hdr = tx->index == 0 ? RELAY_FIRST_HDR : RELAY_CONT_HDR;
    size_t data = tx->len - tx->off;
    if (data > tx->max_frag - hdr)
        data = tx->max_frag - hdr;
    if (cap < hdr + data)
        return -ENOBUFS;
    uint8_t ctl = RELAY_VERSION | (tx->off + data == tx->len ? RELAY_CTL_LAST : 0);
    if (tx->index == 0) {
        out[0] = ctl | RELAY_CTL_FIRST | (tx->start ? RELAY_CTL_START : 0);
        out[1] = tx->gen;
        put_le64(out + 2, (uint64_t)tx->seq);
        put_le16(out + 10, (uint16_t)tx->len);
        put_le32(out + 12, tx->crc);
    } else {
        out[0] = ctl;
        out[1] = (uint8_t)tx->index;
    }
    memcpy(out + hdr, tx->rec + tx->off, data);
    tx->off += data;
    tx->index++;
    return (int)(hdr + data);
}

int relay_rx_init(struct relay_rx *rx, enum relay_mode mode, size_t max_frag)
{
    if ((mode != RELAY_RX_RECORDS && mode != RELAY_RX_PLAIN) || max_frag < RELAY_FRAG_MIN)
        return -EINVAL;
    memset(rx, 0, offsetof(struct relay_rx, buf));
    rx->mode = mode;
    rx->max_frag = max_frag;
    return 0;
}

int relay_rx_need_resume(const struct relay_rx *rx)
{
    return rx->mode == RELAY_RX_RECORDS && (rx->gen == 0 || rx->broken);
}

static int refuse(struct relay_rx *rx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int refuse(struct relay_rx *rx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rx->why, sizeof rx->why, fmt, ap);
    va_end(ap);
    rx->st.errors++;
    rx->state = RX_IDLE;
    if (rx->mode == RELAY_RX_RECORDS)
        rx->broken = 1;
    return -EBADMSG;
}

static int complete(struct relay_rx *rx, struct relay_frame *out)
{
    int oversized = rx->state == RX_DISCARD;
    if (rx->crc != rx->pcrc)
        return refuse(rx, "record seq %" PRId64 ": CRC-32 %08" PRIx32 ", the header says %08"
                      PRIx32, rx->pseq, rx->crc, rx->pcrc);
    rx->state = RX_IDLE;
    *out = (struct relay_frame){.seq = rx->pseq, .data = oversized ? NULL : rx->buf,
                                .len = rx->plen};
    if (rx->mode == RELAY_RX_RECORDS) {
        if (!rx->synced) {
            if (!rx->pstart)
                return refuse(rx, "record seq %" PRId64 " of generation %u came before its "
                              "START record", rx->pseq, rx->gen);
            if (rx->have_floor && rx->pseq <= rx->floor)
                return refuse(rx, "START record seq %" PRId64 " at or below the resume point "
                              "%" PRId64, rx->pseq, rx->floor);
            if (rx->have_floor && rx->pseq > rx->floor + 1) {
                out->gap = rx->pseq - rx->floor - 1;
                rx->st.gaps++;
                rx->st.gap_records += (uint64_t)out->gap;
            }
            rx->synced = 1;
        } else {
            if (rx->pstart)
                return refuse(rx, "START bit inside generation %u (record seq %" PRId64 ")",
                              rx->gen, rx->pseq);
            if ((uint64_t)rx->pseq < rx->next) {
                rx->st.duplicates++;
                return RELAY_NONE;
            }
            if ((uint64_t)rx->pseq > rx->next)
                return refuse(rx, "record seq %" PRId64 ", expected %" PRIu64 " (%" PRIu64
                              " records missing)", rx->pseq, rx->next,
                              (uint64_t)rx->pseq - rx->next);
        }
        rx->next = (uint64_t)rx->pseq + 1;
    }
    if (oversized) {
        rx->st.oversized++;
        return RELAY_OVERSIZED;
    }
    rx->st.records++;
    rx->st.bytes += rx->plen;
    return RELAY_RECORD;
}

static int first(struct relay_rx *rx, const uint8_t *f, size_t n, struct relay_frame *out)
{
    int last = !!(f[0] & RELAY_CTL_LAST);
    if (n < RELAY_FIRST_HDR)
        return refuse(rx, "first fragment of %zu bytes, shorter than its %d-byte header", n,
                      RELAY_FIRST_HDR);
    if (rx->state == RX_BUSY || rx->state == RX_DISCARD)
        return refuse(rx, "record seq %" PRId64 " cut off after %zu of %zu bytes by a new "
                      "record", rx->pseq, rx->got, rx->plen);
    uint8_t gen = f[1];
    uint64_t seq = get_le64(f + 2);
    size_t len = get_le16(f + 10), data = n - RELAY_FIRST_HDR;
    if (rx->mode == RELAY_RX_RECORDS && (rx->gen == 0 || gen != rx->gen)) {
        rx->st.stale++;
        rx->state = last ? RX_IDLE : RX_SKIP;
        return RELAY_NONE;
    }
    if (seq > (uint64_t)RELAY_SEQ_MAX)
        return refuse(rx, "record seq %" PRIu64 " beyond 2^63-1", seq);
    if (len == 0)
        return refuse(rx, "record seq %" PRIu64 " of length 0", seq);
    if (data > len)
        return refuse(rx, "first fragment carries %zu bytes of a %zu-byte record", data, len);
    if (last && data != len)
        return refuse(rx, "record seq %" PRIu64 " of %zu bytes ends after %zu", seq, len, data);
    if (!last && data == len)
        return refuse(rx, "record seq %" PRIu64 " complete in a fragment not marked last", seq);
    rx->pgen = gen;
    rx->pstart = !!(f[0] & RELAY_CTL_START);
    rx->pseq = (int64_t)seq;
    rx->plen = len;
    rx->got = data;
    rx->next_index = 1;
    rx->pcrc = get_le32(f + 12);
    rx->crc = relay_crc32(header_crc(f), f + RELAY_FIRST_HDR, data);
    if (len > RELAY_RECORD_MAX) {
        rx->state = RX_DISCARD;
    } else {
        memcpy(rx->buf, f + RELAY_FIRST_HDR, data);
        rx->state = RX_BUSY;
    }
    return last ? complete(rx, out) : RELAY_NONE;
}

static int cont(struct relay_rx *rx, const uint8_t *f, size_t n, struct relay_frame *out)
{
    int last = !!(f[0] & RELAY_CTL_LAST);
    if (n < RELAY_CONT_HDR)
        return refuse(rx, "continuation fragment of %zu byte", n);
    if (rx->state == RX_IDLE) {
        /* the tail of a record the phone abandoned when it took the RESUME */
        if (rx->mode == RELAY_RX_RECORDS && !rx->synced) {
            rx->st.stale++;
            return RELAY_NONE;
        }
        return refuse(rx, "continuation fragment without a first fragment");
    }
    if (rx->state == RX_SKIP) {
        rx->st.stale++;
        if (last)
            rx->state = RX_IDLE;
        return RELAY_NONE;
    }
    unsigned index = f[1];
    size_t data = n - RELAY_CONT_HDR;
    if (index != rx->next_index)
        return refuse(rx, "record seq %" PRId64 ": fragment index %u, expected %u (lost or "
                      "reordered)", rx->pseq, index, rx->next_index);
    if (data == 0)
        return refuse(rx, "record seq %" PRId64 ": fragment %u without data", rx->pseq, index);
    if (data > rx->plen - rx->got)
        return refuse(rx, "record seq %" PRId64 ": fragments carry more than its %zu bytes",
                      rx->pseq, rx->plen);
    if (rx->state == RX_BUSY)
        memcpy(rx->buf + rx->got, f + RELAY_CONT_HDR, data);
    rx->crc = relay_crc32(rx->crc, f + RELAY_CONT_HDR, data);
    rx->got += data;
    rx->next_index++;
    if (last) {
        if (rx->got != rx->plen)
            return refuse(rx, "record seq %" PRId64 " of %zu bytes ends after %zu", rx->pseq,
                          rx->plen, rx->got);
        return complete(rx, out);
    }
    if (rx->got == rx->plen)
        return refuse(rx, "record seq %" PRId64 " complete in a fragment not marked last",
                      rx->pseq);
    if (rx->next_index >= RELAY_FRAGS_MAX)
        return refuse(rx, "record seq %" PRId64 " needs more than %d fragments", rx->pseq,
                      RELAY_FRAGS_MAX);
    return RELAY_NONE;
}

int relay_rx_feed(struct relay_rx *rx, const uint8_t *frag, size_t len, struct relay_frame *out)
{
    rx->st.fragments++;
    if (rx->mode == RELAY_RX_RECORDS && rx->broken) {
        rx->st.dropped++;
        return RELAY_NONE;
    }
    if (len == 0)
        return refuse(rx, "empty fragment");
    uint8_t ctl = frag[0];
    if ((ctl & RELAY_CTL_VERSION) != RELAY_VERSION)
        return refuse(rx, "fragment of framing version %u (this side speaks %d)",
                      ctl & RELAY_CTL_VERSION, RELAY_VERSION);
    if (ctl & RELAY_CTL_RESERVED)
        return refuse(rx, "reserved bit set in fragment control byte 0x%02x", ctl);
    if (len > rx->max_frag)
        return refuse(rx, "fragment of %zu bytes, above the %zu agreed", len, rx->max_frag);
    if (ctl & RELAY_CTL_FIRST)
        return first(rx, frag, len, out);
    if (ctl & RELAY_CTL_START)
        return refuse(rx, "START bit on a continuation fragment");
    return cont(rx, frag, len, out);
}

int relay_rx_resume(struct relay_rx *rx, int have_stored, int64_t stored_seq, uint16_t max_frag,
                    uint16_t window, uint8_t *out, size_t cap)
{
    if (rx->mode != RELAY_RX_RECORDS || max_frag < RELAY_FRAG_MIN || window == 0 ||
        (have_stored && stored_seq < 0))
        return -EINVAL;
    uint8_t gen = rx->gen == UINT8_MAX ? 1 : (uint8_t)(rx->gen + 1);
    struct relay_resume m = {.op = RELAY_OP_RESUME, .gen = gen, .have_seq = !!have_stored,
                             .seq = have_stored ? stored_seq : 0, .max_frag = max_frag,
                             .window = window};
    int n = relay_resume_encode(&m, out, cap);
    if (n < 0)
        return n;
    if (rx->state == RX_BUSY || rx->state == RX_DISCARD)
        rx->st.aborted++;
    rx->state = RX_IDLE;
    rx->gen = gen;
    rx->synced = 0;
    rx->broken = 0;
    rx->have_floor = m.have_seq;
    rx->floor = m.seq;
    rx->next = 0;
    rx->max_frag = max_frag;
    rx->st.resumes++;
    return n;
}
