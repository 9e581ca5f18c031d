/* Axivity .cwa decoding and resampling (drivers/cwa.h; layout: ../shared/reference/ble.md
 * §8.2). Pure: no I/O, no allocation, no clock; every field read is range-checked, so any
 * 512 bytes give either a block or a reason. Multi-byte fields are little-endian and read a
 * byte at a time (no alignment or host-order assumptions). */
#include "drivers/cwa.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/tz.h"

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int cwa_header_parse(const uint8_t *b, size_t n, struct cwa_header *h, const char **why)
{
    memset(h, 0, sizeof *h);
    if (n < CWA_HEADER_SIZE) {
        *why = "shorter than a CWA header (1024 bytes)";
        return -EINVAL;
    }
    if (b[0] != 'M' || b[1] != 'D' || rd16(b + 2) != CWA_HEADER_SIZE - 4) {
        *why = "no CWA header (\"MD\" with packet length 1020) at the start";
        return -EINVAL;
    }
    h->hardware = b[4];
    uint16_t upper = rd16(b + 11);
    h->device_id = rd16(b + 5) | (uint32_t)(upper == 0xFFFF ? 0 : upper) << 16;
    h->session_id = rd32(b + 7);
    h->logging_start = rd32(b + 13);
    h->logging_end = rd32(b + 17);
    h->sensor_config = b[35];
    h->rate_code = b[36];
    h->hz = cwa_rate_hz(h->rate_code);
    h->range_g = 16 >> (h->rate_code >> 6);
    h->firmware = b[41];
    size_t len = 448;
    while (len && (b[64 + len - 1] == 0x20 || b[64 + len - 1] == 0x00 || b[64 + len - 1] == 0xFF))
        len--;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = b[64 + i];
        h->annotation[i] = c >= 0x20 && c < 0x7F ? (char)c : '?';
    }
    h->annotation[len] = 0;
    return 0;
}

enum cwa_kind cwa_block_kind(const uint8_t b[CWA_BLOCK_SIZE])
{
    if (b[0] == 'A' && b[1] == 'X' && rd16(b + 2) == CWA_BLOCK_SIZE - 4)
        return CWA_KIND_DATA;
    if (b[0] == 'M' && b[1] == 'D' && rd16(b + 2) == CWA_HEADER_SIZE - 4)
        return CWA_KIND_HEADER;
    if (b[0] == 0x00 || b[0] == 0xFF) {
        size_t i = 1;
        while (i < CWA_BLOCK_SIZE && b[i] == b[0])
            i++;
        if (i == CWA_BLOCK_SIZE)
            return CWA_KIND_ERASED;
    }
    return CWA_KIND_OTHER;
}

uint16_t cwa_block_sum(const uint8_t b[CWA_BLOCK_SIZE])
{
    /* 32-bit partial sums vectorise; the 16-bit result is their low half */
    uint32_t s = 0;
    for (size_t i = 0; i < CWA_BLOCK_SIZE; i += 2)
        s += rd16(b + i);
    return (uint16_t)s;
}

double cwa_rate_hz(uint8_t code)
{
    int k = code & 15;
    double hz = 3200.0 / (double)(1 << (15 - k));
    return hz >= CWA_HZ_MIN && hz <= CWA_HZ_MAX ? hz : 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return dm[m - 1] + (m == 2 && leap);
}

int cwa_time_unpack(uint32_t v, int64_t *secs)
{
    int year = (int)(v >> 26) + 2000, month = (int)(v >> 22) & 15, day = (int)(v >> 17) & 31;
    int hour = (int)(v >> 12) & 31, minute = (int)(v >> 6) & 63, sec = (int)v & 63;
    if (v == 0 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
        hour > 23 || minute > 59 || sec > 59)
        return -EINVAL;
    *secs = civil_to_days(year, (unsigned)month, (unsigned)day) * 86400 + hour * 3600 +
            minute * 60 + sec;
    return 0;
}

void cwa_unpack_packed(const uint8_t *p, int n, float (*g)[3])
{
    /* eezzzzzz zzzzyyyy yyyyyyxx xxxxxxxx: 10-bit two's complement axes, times 2^e / 256 g */
    static const float scale[4] = {1.0f / 256, 2.0f / 256, 4.0f / 256, 8.0f / 256};
    for (int i = 0; i < n; i++) {
        uint32_t w = rd32(p + 4 * i);
        float s = scale[w >> 30];
        g[i][0] = (float)((int)((w & 0x3FF) ^ 0x200) - 0x200) * s;
        g[i][1] = (float)((int)(((w >> 10) & 0x3FF) ^ 0x200) - 0x200) * s;
        g[i][2] = (float)((int)(((w >> 20) & 0x3FF) ^ 0x200) - 0x200) * s;
    }
}

int cwa_block_decode(const uint8_t b[CWA_BLOCK_SIZE], struct cwa_block *o, const char **why)
{
    if (cwa_block_kind(b) != CWA_KIND_DATA) {
        *why = "not a data block (\"AX\" with packet length 508)";
        return -EINVAL;
    }
    if (cwa_block_sum(b) != 0) {
        *why = "checksum mismatch (the block's 16-bit words do not sum to 0): damaged block";
        return -EBADMSG;
    }
    uint16_t frac = rd16(b + 4);
    o->fraction = frac & 0x8000 ? (double)(frac & 0x7FFF) / 32768.0 : 0.0;
    o->session_id = rd32(b + 6);
    o->sequence = rd32(b + 10);
    if (cwa_time_unpack(rd32(b + 14), &o->time_s) < 0) {
        *why = "timestamp is 0 (unknown) or not a valid date and time";
        return -EINVAL;
    }
    uint16_t lw = rd16(b + 18);
    o->light = lw & 0x3FF;
    o->temperature_c = (double)rd16(b + 20) * 75.0 / 256.0 - 50.0;
    o->events = b[22];
    o->battery_v = ((double)b[23] + 512.0) * 6000.0 / 1024.0 / 1000.0;
    o->rate_code = b[24];
    o->hz = cwa_rate_hz(o->rate_code);
    o->range_g = 16 >> (o->rate_code >> 6);
    o->format = b[25];
    o->offset = (int16_t)rd16(b + 26);
    o->n = rd16(b + 28);
    if (o->hz == 0) {
        *why = "rate code names a rate outside 6.25..3200 Hz";
        return -EINVAL;
    }
    int cap, bytes;
    switch (o->format) {
    case 0x30: cap = 120; bytes = 4; break;
    case 0x32: cap = 80; bytes = 6; break;
    case 0x62: cap = 40; bytes = 12; break;
    default:
        *why = "sample format (numAxesBPS) is not 0x30, 0x32 or 0x62";
        return -ENOTSUP;
    }
    if (o->n < 1 || o->n > cap) {
        *why = "sample count is 0 or more than the block's format holds";
        return -EINVAL;
    }
    if (abs(o->offset) > o->n + (int)ceil(o->hz) + 1) {
        *why = "timestampOffset is more than a second of samples outside the block";
        return -EINVAL;
    }
    const uint8_t *p = b + 30;
    if (o->format == 0x30) {
        cwa_unpack_packed(p, o->n, o->g);
        return 0;
    }
    /* int16 samples scaled 1 / 2^(8 + a) g, a from the top 3 bits of the light word; the AX6
     * format holds gyro x, y, z then accel x, y, z per sample */
    float s = 1.0f / (float)(1 << (8 + (lw >> 13)));
    int skip = o->format == 0x62 ? 6 : 0;
    for (int i = 0; i < o->n; i++)
        for (int a = 0; a < 3; a++)
            o->g[i][a] = (float)(int16_t)rd16(p + bytes * i + skip + 2 * a) * s;
    return 0;
}

/* ---- resampling ---- */

static struct cwa_anchor block_anchor(const struct cwa_stream *s, const struct cwa_block *b)
{
    struct cwa_anchor a = {
        .x = (double)s->raw_n + b->offset + b->fraction * s->hz,
        .t = (double)(b->time_s - s->origin_s) + b->fraction,
    };
    return a;
}

void cwa_stream_reset(struct cwa_stream *s)
{
    s->active = 0;
    s->n_anc = 0;
    s->raw_n = s->raw_lo = 0;
    s->started = 0;
    s->j = 0;
    s->blocks = 0;
}

int cwa_stream_continues(const struct cwa_stream *s, const struct cwa_block *b)
{
    if (!s->active || b->session_id != s->session_id || b->rate_code != s->rate_code ||
        b->format != s->format || b->sequence != s->next_sequence)
        return 0;
    if (s->raw_n + b->n - s->raw_lo > CWA_RING || s->n_anc >= CWA_ANCHORS)
        return 0;
    /* the segment's origin is at most 2^31 s before any block that passes this test */
    if (b->time_s < s->origin_s || b->time_s - s->origin_s > INT32_MAX)
        return 0;
    struct cwa_anchor a = block_anchor(s, b);
    const struct cwa_anchor *p = &s->anc[s->n_anc - 1];
    double dt = a.t - p->t, dx = a.x - p->x;
    if (dt < 0)
        return 0;
    if (dt == 0)
        return fabs(dx) <= 2; /* the same instant again (high rates): kept once */
    /* within 5 % + 2 samples (whole-second stamps quantise to a sample), and a rate within
     * half to twice the nominal one (over instants closer than a second, 2 samples is a lot) */
    if (dx < 0.5 * s->hz * dt || dx > 2 * s->hz * dt)
        return 0;
    return fabs(dx - s->hz * dt) <= 0.05 * s->hz * dt + 2;
}

void cwa_stream_add(struct cwa_stream *s, const struct cwa_block *b)
{
    if (!s->active) {
        cwa_stream_reset(s);
        s->active = 1;
        s->session_id = b->session_id;
        s->rate_code = b->rate_code;
        s->format = b->format;
        s->hz = b->hz;
        s->origin_s = floor_div(b->time_s, 4) * 4;
    }
    struct cwa_anchor a = block_anchor(s, b);
    if ((s->n_anc == 0 || a.t > s->anc[s->n_anc - 1].t) && s->n_anc < CWA_ANCHORS)
        s->anc[s->n_anc++] = a;
    for (int i = 0; i < b->n; i++)
        memcpy(s->raw[(s->raw_n + i) & (CWA_RING - 1)], b->g[i], sizeof b->g[i]);
    s->raw_n += b->n;
    s->next_sequence = b->sequence + 1;
    s->blocks++;
}

/* The time of raw index x by the first pair of anchors (or the nominal rate with one). */
static double first_time(const struct cwa_stream *s, double x)
{
    const struct cwa_anchor *a = s->anc;
    if (s->n_anc < 2)
        return a[0].t + (x - a[0].x) / s->hz;
    return a[0].t + (x - a[0].x) * (a[1].t - a[0].t) / (a[1].x - a[0].x);
}

/* The linear map from time to raw index over anchor pair c (or the nominal rate with one
 * anchor): x = bx + (t - bt) * sx, valid while t < *t_next. */
static void piece(const struct cwa_stream *s, int c, double *bx, double *bt, double *sx,
                  double *t_next)
{
    const struct cwa_anchor *a = s->anc;
    *bx = a[c].x;
    *bt = a[c].t;
    if (s->n_anc < 2) {
        *sx = s->hz;
        *t_next = INFINITY;
        return;
    }
    *sx = (a[c + 1].x - a[c].x) / (a[c + 1].t - a[c].t);
    *t_next = c + 2 < s->n_anc ? a[c + 1].t : INFINITY; /* the last pair extends past its end */
}

/* The first grid index j >= from whose instant j / hz is at or after t (INT64_MAX if t is
 * infinite): the same test as comparing (double)j * inv_hz with t. */
static int64_t first_at(double t, double hz, double inv_hz, int64_t from)
{
    if (t == INFINITY || t >= 9e15 / hz)
        return INT64_MAX;
    int64_t j = (int64_t)ceil(t * hz);
    if (j < from)
        j = from;
    while ((double)j * inv_hz < t)
        j++;
    while (j > from && (double)(j - 1) * inv_hz >= t)
        j--;
    return j;
}

size_t cwa_stream_take(struct cwa_stream *s, int flush, float (*out)[3], size_t max,
                       int64_t *index)
{
    if (!s->active || s->raw_n == 0 || s->n_anc == 0)
        return 0;
    if (!s->started) {
        if (s->n_anc < 2 && !flush)
            return 0;
        s->j = (int64_t)ceil(first_time(s, 0) * s->hz - 1e-7);
        s->started = 1;
    }
    const int64_t periods4 = (int64_t)(s->hz * 4); /* periods in 4 s: whole for every rate */
    *index = s->origin_s / 4 * periods4 + s->j;
    if (!flush && s->n_anc < 2)
        return 0;
    /* without flush: only up to the last anchor, and only between two samples received;
     * with flush: up to the last sample's own instant */
    const double hz = s->hz, inv_hz = 1.0 / hz;
    const int64_t j_stop = flush ? INT64_MAX : first_at(s->anc[s->n_anc - 1].t, hz, inv_hz, s->j);
    const double last_x = (double)(s->raw_n - 1), x_stop = flush ? last_x + 1e-6 : last_x;
    const int64_t raw_lo = s->raw_lo, last_i = s->raw_n - 1;
    float (*const raw)[3] = s->raw;
    int64_t j = s->j, keep = raw_lo;
    size_t k = 0;
    int c = 0, more = 1;
    while (more && k < max && j < j_stop) {
        double bx, bt, sx, t_next;
        piece(s, c, &bx, &bt, &sx, &t_next);
        int64_t j_end = first_at(t_next, hz, inv_hz, j); /* where the next pair takes over */
        if (j_end > j_stop)
            j_end = j_stop;
        /* x = bx + (t - bt) * sx at t = j / hz, stepped from this piece's first instant */
        const double x0 = bx + ((double)j * inv_hz - bt) * sx, step = sx * inv_hz;
        uint64_t n = max - k;
        if (j_end != INT64_MAX && (uint64_t)(j_end - j) < n)
            n = (uint64_t)(j_end - j);
        uint64_t m = 0;
        for (; m < n; m++) {
            double x = x0 + (double)m * step;
            if (x < 0)
                x = 0; /* the first instant, within rounding of the first sample */
            if (!(x < x_stop)) {
                more = 0; /* the next raw sample has not arrived (or the segment ended) */
                break;
            }
            int64_t i0 = (int64_t)x;
            if (i0 < raw_lo)
                i0 = raw_lo; /* not reached: x only grows */
            const float *p = raw[i0 & (CWA_RING - 1)];
            if (i0 < last_i) {
                const float *q = raw[(i0 + 1) & (CWA_RING - 1)];
                float f = (float)(x - (double)i0);
                out[k][0] = p[0] + f * (q[0] - p[0]);
                out[k][1] = p[1] + f * (q[1] - p[1]);
                out[k][2] = p[2] + f * (q[2] - p[2]);
            } else {
                memcpy(out[k], p, sizeof out[k]); /* flushing: the last sample's own instant */
            }
            keep = i0;
            k++;
        }
        j += (int64_t)m;
        if (more && j == j_end && j_end < j_stop)
            c++; /* the next anchor pair */
    }
    s->j = j;
    s->raw_lo = keep;
    if (c > 0) { /* anchors before the current pair are no longer needed */
        memmove(s->anc, s->anc + c, (size_t)(s->n_anc - c) * sizeof s->anc[0]);
        s->n_anc -= c;
    }
    return k;
}
