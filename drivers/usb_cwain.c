/* A docked AX3/AX6's CWA file to `accel` events, one 512-byte block at a time (decoding and
 * resampling: drivers/cwa.h). The live driver reads blocks in small chunks between other work
 * and may be cut off by an unplug at any block; this is the same walk as the file reader
 * (drivers/file_cwa.c: damaged blocks skipped with a reason, a gap starts a new segment, one
 * device-clock offset per recording) with two differences that make repeated docks safe:
 *
 *  - samples at or before the resume point (the source's committed position) are dropped, so
 *    a dock emits only what no earlier dock stored;
 *  - an event's seq is the device-clock time of its last sample in ns (usb_proto.h), so the
 *    position says exactly where the stored data ends, whichever device or recording it came
 *    from, and events re-derived after a crash before their commit get the same seq and are
 *    dropped by the store's (source, seq) dedupe if they were stored after all.
 *
 * Pure: no I/O, no clock, no allocation. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "drivers/usb_proto.h"

int64_t cwain_period_ns(double hz)
{
    /* supported rates are 3200 / 2^k Hz (k = 0..9): 312500 * 2^k ns per sample */
    for (int k = 0; k <= 9; k++)
        if (hz == 3200.0 / (double)(1 << k))
            return (int64_t)312500 << k;
    return 0;
}

void cwain_init(struct cwain *u, const struct tz_zone *zone, int have_after, int64_t after_ns)
{
    memset(u, 0, offsetof(struct cwain, out));
    u->zone = zone;
    u->have_after = have_after;
    u->after_ns = after_ns;
    cwa_stream_reset(&u->cs);
}

void cwain_set_origin(struct cwain *u, int64_t device_s)
{
    int64_t local_ms = device_s * 1000;
    u->off_ms = u->zone ? local_ms - tz_local_to_utc(u->zone, local_ms) : 0;
    u->have_off = 1;
}

static unsigned seq_of(const uint8_t *b)
{
    return (unsigned)b[10] | (unsigned)b[11] << 8 | (unsigned)b[12] << 16 |
           (unsigned)b[13] << 24;
}

int cwain_block(struct cwain *u, const uint8_t b[CWA_BLOCK_SIZE], uint64_t file_off)
{
    if (u->pending || u->flushing)
        return -EBUSY;
    u->st.blocks++;
    unsigned long long off = (unsigned long long)file_off;
    if (u->in_header) { /* the second half of an appended recording's 1024-byte header */
        u->in_header = 0;
        return CWAIN_OK;
    }
    switch (cwa_block_kind(b)) {
    case CWA_KIND_ERASED:
        u->st.erased++;
        return CWAIN_OK;
    case CWA_KIND_HEADER:
        u->st.headers++;
        u->in_header = 1;
        u->flushing = u->cs.active;
        return CWAIN_OK;
    case CWA_KIND_OTHER:
        if (b[0] == 'A' && b[1] == 'X') {
            u->st.bad++;
            snprintf(u->why, sizeof u->why, "block at byte %llu: data block with packet length "
                     "%u, not 508: skipped", off, (unsigned)(b[2] | b[3] << 8));
            return CWAIN_BAD;
        }
        if (b[0] >= 'A' && b[0] <= 'Z' && b[1] >= 'A' && b[1] <= 'Z') {
            u->st.other++;
            snprintf(u->why, sizeof u->why, "block at byte %llu: block type \"%c%c\" is not "
                     "read, skipped", off, b[0], b[1]);
            return CWAIN_OTHER;
        }
        u->st.bad++;
        snprintf(u->why, sizeof u->why, "block at byte %llu: not a CWA block (starts 0x%02x "
                 "0x%02x): skipped", off, b[0], b[1]);
        return CWAIN_BAD;
    case CWA_KIND_DATA:
        break;
    }
    const char *why = NULL;
    int e = cwa_block_decode(b, &u->blk, &why);
    if (e == -EBADMSG) {
        u->st.bad++;
        snprintf(u->why, sizeof u->why, "block at byte %llu (sequence %u): checksum mismatch "
                 "(words sum to 0x%04x, not 0): damaged block skipped", off, seq_of(b),
                 cwa_block_sum(b));
        return CWAIN_BAD;
    }
    if (e < 0) {
        u->st.bad++;
        snprintf(u->why, sizeof u->why, "block at byte %llu (sequence %u): %s: skipped", off,
                 seq_of(b), why ? why : "invalid");
        return CWAIN_BAD;
    }
    u->st.data++;
    if (!u->have_off)
        cwain_set_origin(u, u->blk.time_s);
    if (u->cs.active && cwa_stream_continues(&u->cs, &u->blk)) {
        cwa_stream_add(&u->cs, &u->blk);
    } else if (u->cs.active) { /* a gap: drain the open segment, then start one with blk */
        u->pending = 1;
        u->flushing = 1;
    } else {
        cwa_stream_add(&u->cs, &u->blk);
        u->st.segments++;
    }
    return CWAIN_OK;
}

static int emit(struct cwain *u, const char *participant, const char *source, struct event *ev)
{
    int64_t h4 = (int64_t)(u->out_hz * 4);
    int64_t local_ms = (u->out_index * 8000 + h4) / (2 * h4); /* index / hz s, rounded */
    memset(ev, 0, sizeof *ev);
    ev->type = EV_ACCEL;
    ev->ts = local_ms - u->off_ms;
    ev->seq = (u->out_index + (int64_t)u->n_out - 1) * cwain_period_ns(u->out_hz);
    ev->has_seq = 1;
    snprintf(ev->participant, sizeof ev->participant, "%s", participant);
    snprintf(ev->source, sizeof ev->source, "%s", source);
    ev->u.accel.hz = u->out_hz;
    ev->u.accel.n = u->n_out;
    ev->u.accel.g = (const float(*)[3])u->out;
    u->st.samples += u->n_out;
    u->st.events++;
    u->n_out = 0;
    return 1;
}

int cwain_take(struct cwain *u, int end, const char *participant, const char *source,
               struct event *ev)
{
    for (;;) {
        if (u->cs.active) {
            int flush = u->flushing || end;
            size_t room = EV_ACCEL_MAX - u->n_out;
            int64_t idx = 0;
            size_t got = cwa_stream_take(&u->cs, flush, u->out + u->n_out, room, &idx);
            size_t k = got;
            if (k && u->n_out == 0 && u->have_after) {
                /* the grid only goes forward: once one sample is past the resume point, all
                 * the segment's later ones are */
                int64_t per = cwain_period_ns(u->cs.hz);
                size_t skip = 0;
                while (skip < k && (idx + (int64_t)skip) * per <= u->after_ns)
                    skip++;
                if (skip) {
                    memmove(u->out, u->out + skip, (k - skip) * sizeof u->out[0]);
                    k -= skip;
                    idx += (int64_t)skip;
                    u->st.skipped += skip;
                }
            }
            if (k && u->n_out == 0) {
                u->out_index = idx;
                u->out_hz = u->cs.hz;
            }
            u->n_out += k;
            if (u->n_out == EV_ACCEL_MAX)
                return emit(u, participant, source, ev);
            if (got == room)
                continue; /* samples were skipped: there may be more */
            if (!flush)
                return 0; /* the next blocks decide the next samples */
            cwa_stream_reset(&u->cs);
            u->flushing = 0;
            if (u->n_out)
                return emit(u, participant, source, ev);
            continue;
        }
        if (u->pending) {
            u->pending = 0;
            cwa_stream_add(&u->cs, &u->blk);
            u->st.segments++;
            continue;
        }
        u->flushing = 0;
        return 0;
    }
}

int cwain_block_time(const uint8_t b[CWA_BLOCK_SIZE], int64_t *ret_s)
{
    if (cwa_block_kind(b) != CWA_KIND_DATA || cwa_block_sum(b) != 0)
        return -EINVAL;
    uint32_t t = (uint32_t)b[14] | (uint32_t)b[15] << 8 | (uint32_t)b[16] << 16 |
                 (uint32_t)b[17] << 24;
    return cwa_time_unpack(t, ret_s);
}
