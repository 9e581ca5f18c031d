/* PineTime / InfiniTime Motion service (ble.md §7.5; InfiniTime doc/MotionService.md): the step
 * count (u32 total) and raw motion (3 x s16) characteristics, and the two pieces of state that
 * turn them into events: the previous total (steps are per interval in docs/events.md, the
 * watch reports a running total) and an accel block being filled (the watch notifies one sample
 * at a time, the store and the counts converter want blocks). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "drivers/decode.h"
#include "drivers/decode_int.h"

#define STEPS_INTERVAL_MAX 86400 /* docs/events.md: interval_s 1..86400 */
#define ACCEL_G_MAX 1000.0       /* docs/events.md: |g| <= 1000 */

int decode_pinetime_steps(const uint8_t *buf, size_t len, uint32_t *ret_total, char *why)
{
    if (len != 4)
        return dec_fail(why, -EINVAL, "step count: %zu bytes (exactly 4)", len);
    *ret_total = get_le32(buf);
    return 0;
}

int decode_steps_event(struct dec_steps_state *st, uint32_t total, const struct dec_meta *m,
                       struct event *ev)
{
    if (!st->have) {
        st->have = 1;
        st->ts = m->ts;
        st->total = total;
        return 0;
    }
    if (m->ts < st->ts) {
        st->ts = m->ts;
        return 0;
    }
    uint64_t dt = (uint64_t)m->ts - (uint64_t)st->ts; /* exact, whatever the two times */
    if (dt < 1000) {
        if (total < st->total) /* reset inside the interval: count from the reset on */
            st->total = 0;
        return 0;
    }
    uint32_t steps = total >= st->total ? total - st->total : total;
    uint64_t interval = dt >= (uint64_t)STEPS_INTERVAL_MAX * 1000 ? STEPS_INTERVAL_MAX
                                                                  : (dt + 500) / 1000;
    dec_event_init(ev, m, EV_STEPS);
    ev->u.steps.steps = steps;
    ev->u.steps.interval_s = (int)interval;
    st->ts = m->ts;
    st->total = total;
    return 1;
}

int decode_pinetime_motion(const uint8_t *buf, size_t len, double lsb_per_g, float g[3],
                           char *why)
{
    if (len != 6)
        return dec_fail(why, -EINVAL, "raw motion: %zu bytes (exactly 6: x, y, z as s16)", len);
    if (!(lsb_per_g > 0) || !isfinite(lsb_per_g))
        return dec_fail(why, -EINVAL, "raw motion: scale %g LSB/g must be > 0", lsb_per_g);
    float out[3];
    for (int k = 0; k < 3; k++) {
        double v = (int16_t)get_le16(buf + 2 * k) / lsb_per_g;
        if (!(fabs(v) <= ACCEL_G_MAX))
            return dec_fail(why, -EINVAL, "raw motion: axis %d is %g g at scale %g LSB/g "
                            "(|g| <= 1000)", k, v, lsb_per_g);
        out[k] = (float)v;
    }
    memcpy(g, out, sizeof out);
    return 0;
}

int dec_accel_block_init(struct dec_accel_block *b, double hz, size_t block_len,
                         int64_t tolerance_ms)
{
    if (!(hz > 0 && hz <= 10000) || block_len < 1 || block_len > DEC_ACCEL_BLOCK_MAX ||
        tolerance_ms < 0)
        return -EINVAL;
    b->hz = hz;
    b->block_len = block_len;
    b->tolerance_ms = tolerance_ms;
    b->ts0 = 0;
    b->n = 0;
    b->cur = 0;
    return 0;
}

static void emit(struct dec_accel_block *b, const struct dec_meta *m, struct event *ev)
{
    struct dec_meta at = *m;
    at.ts = b->ts0;
    dec_event_init(ev, &at, EV_ACCEL);
    ev->u.accel.hz = b->hz;
    ev->u.accel.n = b->n;
    ev->u.accel.g = (const float (*)[3])b->g[b->cur];
    b->cur ^= 1;
    b->n = 0;
}

int dec_accel_block_add(struct dec_accel_block *b, const float g[3], const struct dec_meta *m,
                        struct event *ev)
{
    for (int k = 0; k < 3; k++)
        if (!(fabsf(g[k]) <= ACCEL_G_MAX))
            return -EINVAL;
    int out = 0;
    if (b->n > 0) {
        /* in doubles: ms values stay exact, and extreme times cannot overflow */
        double off = (double)m->ts - (double)b->ts0 - (double)b->n * 1000.0 / b->hz;
        if (b->n >= b->block_len || !(fabs(off) <= (double)b->tolerance_ms)) {
            emit(b, m, ev);
            out = 1;
        }
    }
    if (b->n == 0)
        b->ts0 = m->ts;
    for (int k = 0; k < 3; k++)
        b->g[b->cur][b->n][k] = g[k];
    b->n++;
    return out;
}

int dec_accel_block_flush(struct dec_accel_block *b, const struct dec_meta *m,
                          struct event *ev)
{
    if (b->n == 0)
        return 0;
    emit(b, m, ev);
    return 1;
}
