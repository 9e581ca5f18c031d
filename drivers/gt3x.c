/* ActiGraph .gt3x contents (drivers/gt3x.h; layouts: ../shared/reference/ble.md §8.3 and
 * actigraphy.md §8.5). Pure: no I/O, no allocation, no clock. Every record is framed and its
 * checksum verified before anything in it is used; a damaged record is reported and skipped,
 * and reading resumes at the next record that checks (the one its size field points to, else
 * the next separator whose record checks). */
#include "drivers/gt3x.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pipeline/event.h"

#define INFO_LINE_MAX 1024
#define REC_SEP 0x1E
#define REC_EVENT 0x03
#define REC_PARAMETERS 0x15
#define REC_ACTIVITY 0x00
#define REC_ACTIVITY2 0x1A
#define EVENT_ISM_ENTER 0x08
#define EVENT_ISM_EXIT 0x09
#define PARAM_ACCEL_SCALE 55 /* address space 0 */

enum { ST_NORMAL, ST_SKIP, ST_SCAN, ST_FAILED };

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- info.txt ---- */

static int parse_ticks(const char *v, int64_t *out)
{
    /* 0 means "not set" (Stop Date: 0); others must lie in 1900..2199 like every event */
    const int64_t lo = GT3X_TICKS_UNIX + (EV_TS_MIN - 86400000) * 10000;
    const int64_t hi = GT3X_TICKS_UNIX + (EV_TS_MAX + 86400000) * 10000;
    int64_t x = 0;
    if (!*v)
        return -1;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9' || x > (INT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (*p - '0');
    }
    if (x != 0 && (x < lo || x > hi))
        return -1;
    *out = x;
    return 0;
}

static int parse_number(const char *v, double lo, double hi, double *out)
{
    char *end;
    if (!*v)
        return -1;
    double x = strtod(v, &end);
    if (*end || !isfinite(x) || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

/* [+-]HH:MM[:SS] within ±15 h, as seconds */
static int parse_tz(const char *v, int32_t *out)
{
    int sign = 1, f[3] = {0, 0, 0}, nf = 0;
    if (*v == '-' || *v == '+')
        sign = *v++ == '-' ? -1 : 1;
    while (nf < 3) {
        int d = 0, x = 0;
        while (*v >= '0' && *v <= '9' && d < 2) {
            x = x * 10 + (*v++ - '0');
            d++;
        }
        if (d == 0)
            return -1;
        f[nf++] = x;
        if (*v != ':')
            break;
        v++;
    }
    if (*v || nf < 2 || f[1] > 59 || f[2] > 59)
        return -1;
    int32_t s = f[0] * 3600 + f[1] * 60 + f[2];
    if (s > 15 * 3600)
        return -1;
    *out = sign * s;
    return 0;
}

static void copy_text(char *dst, size_t cap, const char *v)
{
    size_t i = 0;
    for (; v[i] && i + 1 < cap; i++)
        dst[i] = v[i] >= 0x20 && v[i] < 0x7F ? v[i] : '?';
    dst[i] = 0;
}

int gt3x_info_parse(const char *text, size_t n, struct gt3x_info *o, char *why, size_t cap)
{
    memset(o, 0, sizeof *o);
    size_t pos = 0, lineno = 0;
    char line[INFO_LINE_MAX + 1];
    while (pos < n) {
        size_t len = 0;
        lineno++;
        while (pos < n && text[pos] != '\n') {
            if (text[pos] == 0) {
                snprintf(why, cap, "info.txt line %zu contains a NUL byte", lineno);
                return -EINVAL;
            }
            if (len == INFO_LINE_MAX) {
                snprintf(why, cap, "info.txt line %zu is longer than %d bytes", lineno,
                         INFO_LINE_MAX);
                return -EINVAL;
            }
            line[len++] = text[pos++];
        }
        pos++; /* the '\n' */
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
            len--;
        line[len] = 0;
        char *colon = strchr(line, ':');
        if (!colon)
            continue; /* not a Key: value line (blank, or something newer): ignored */
        *colon = 0;
        const char *k = line, *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        int bad = 0;
        double d;
        if (strcasecmp(k, "Serial Number") == 0) {
            copy_text(o->serial, sizeof o->serial, v);
        } else if (strcasecmp(k, "Device Type") == 0) {
            copy_text(o->device_type, sizeof o->device_type, v);
        } else if (strcasecmp(k, "Firmware") == 0) {
            copy_text(o->firmware, sizeof o->firmware, v);
        } else if (strcasecmp(k, "Sample Rate") == 0) {
            bad = parse_number(v, 1, GT3X_RATE_MAX, &d) < 0 || d != floor(d);
            if (!bad)
                o->sample_rate = (int)d;
        } else if (strcasecmp(k, "Start Date") == 0) {
            bad = parse_ticks(v, &o->start_ticks) < 0;
        } else if (strcasecmp(k, "Stop Date") == 0) {
            bad = parse_ticks(v, &o->stop_ticks) < 0;
        } else if (strcasecmp(k, "Last Sample Time") == 0) {
            bad = parse_ticks(v, &o->last_sample_ticks) < 0;
        } else if (strcasecmp(k, "Download Date") == 0) {
            bad = parse_ticks(v, &o->download_ticks) < 0;
        } else if (strcasecmp(k, "TimeZone") == 0) {
            bad = parse_tz(v, &o->tz_s) < 0;
            o->has_tz = !bad;
        } else if (strcasecmp(k, "Acceleration Scale") == 0) {
            bad = parse_number(v, GT3X_SCALE_MIN, GT3X_SCALE_MAX, &o->accel_scale) < 0;
        }
        if (bad) {
            static const char *const rules[][2] = {
                {"Sample Rate", "a whole number of Hz, 1..1000"},
                {"TimeZone", "[+-]HH:MM[:SS] within 15 hours"},
                {"Acceleration Scale", "a number of LSB per g, 64..65536"},
            };
            const char *rule = ".NET ticks within the years 1900..2199";
            for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
                if (strcasecmp(k, rules[i][0]) == 0)
                    rule = rules[i][1];
            snprintf(why, cap, "info.txt line %zu: %s \"%.40s\" is not %s", lineno, k, v, rule);
            return -EINVAL;
        }
    }
    return 0;
}

double gt3x_serial_scale(const char *serial)
{
    static const struct {
        const char *prefix;
        double scale;
    } known[] = {{"NEO", 341}, {"CLE", 341}, {"MRA", 341}, {"MOS", 256}, {"TAS", 256}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strncmp(serial, known[i].prefix, 3) == 0)
            return known[i].scale;
    return 0;
}

int gt3x_rotated(const struct gt3x_info *info)
{
    return strncmp(info->serial, "MOS", 3) == 0 && strcmp(info->firmware, "1.6.0") == 0;
}

double gt3x_param_float(uint32_t v)
{
    if (v == 0x007FFFFF)
        return HUGE_VAL;
    if (v == 0x00800000)
        return -HUGE_VAL;
    int e = (int)((v >> 24) ^ 0x80) - 0x80;
    int32_t f = (int32_t)(v & 0xFFFFFF);
    if (f & 0x800000)
        f -= 0x1000000;
    return ldexp((double)f / 8388608.0, e);
}

static inline float to_g(int v, double scale)
{
    return (float)(round((double)v * 1000.0 / scale) / 1000.0);
}

static inline void put(float *g, int x, int y, int z, double scale, int rotate)
{
    g[0] = to_g(rotate ? y : x, scale);
    g[1] = to_g(rotate ? -x : y, scale);
    g[2] = to_g(z, scale);
}

void gt3x_unpack12(const uint8_t *p, size_t n, double scale, int rotate, float (*g)[3])
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b = p + i / 2 * 9;
        int v0, v1, v2;
        if (i % 2 == 0) {
            v0 = b[0] << 4 | b[1] >> 4;
            v1 = (b[1] & 15) << 8 | b[2];
            v2 = b[3] << 4 | b[4] >> 4;
        } else {
            v0 = (b[4] & 15) << 8 | b[5];
            v1 = b[6] << 4 | b[7] >> 4;
            v2 = (b[7] & 15) << 8 | b[8];
        }
        /* Y, X, Z as 12-bit two's complement */
        put(g[i], (v1 ^ 0x800) - 0x800, (v0 ^ 0x800) - 0x800, (v2 ^ 0x800) - 0x800, scale,
            rotate);
    }
}

/* ---- the stream ---- */

void gt3x_log_init(struct gt3x_log *l, int neo, int rate, double scale, int rotate,
                   int64_t start_s)
{
    memset(l, 0, offsetof(struct gt3x_log, buf)); /* everything but the buffers */
    l->state = ST_NORMAL;
    l->neo = neo;
    l->rate = rate;
    l->scale = scale;
    l->rotate = rotate;
    l->neo_index = start_s * rate;
}

uint8_t *gt3x_log_space(struct gt3x_log *l, size_t *room)
{
    if (l->lo > 0) {
        memmove(l->buf, l->buf + l->lo, l->hi - l->lo);
        l->base += l->lo;
        l->hi -= l->lo;
        l->lo = 0;
    }
    *room = l->eof ? 0 : GT3X_BUF - l->hi;
    return l->buf + l->hi;
}

void gt3x_log_wrote(struct gt3x_log *l, size_t n)
{
    l->hi += n;
}

void gt3x_log_end(struct gt3x_log *l)
{
    l->eof = 1;
}

static int item_bad(struct gt3x_log *l, struct gt3x_item *it, int kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int item_bad(struct gt3x_log *l, struct gt3x_item *it, int kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->why, sizeof l->why, fmt, ap);
    va_end(ap);
    it->why = l->why;
    l->bad++;
    return kind;
}

enum { REC_VALID, REC_INVALID, REC_INCOMPLETE };

/* Is there a whole record with a good checksum at buf[at]? *size = its payload size. */
static int check_record(const struct gt3x_log *l, size_t at, size_t *size)
{
    const uint8_t *p = l->buf + at;
    size_t avail = l->hi - at;
    if (avail < 1)
        return REC_INCOMPLETE;
    if (p[0] != REC_SEP)
        return REC_INVALID;
    if (avail < 8)
        return REC_INCOMPLETE;
    *size = rd16(p + 6);
    if (avail < 9 + *size)
        return REC_INCOMPLETE;
    uint8_t x = 0;
    for (size_t i = 0; i < 8 + *size; i++)
        x ^= p[i];
    unsigned want = (unsigned)x ^ 0xFFu, got = p[8 + *size];
    return want == got ? REC_VALID : REC_INVALID;
}

/* Fills the seconds from the one after the last activity record up to (excluding) to with
 * the last sample, as ActiLife does for idle sleep mode. 0 if nothing to fill. */
static int fill_to(struct gt3x_log *l, int64_t to, struct gt3x_item *it)
{
    int64_t from = l->last_sec + 1;
    if (!l->have_last || to <= from)
        return 0;
    if (to - from > GT3X_FILL_MAX_S)
        return item_bad(l, it, GT3X_BAD, "idle sleep mode from device second %lld to %lld lasts "
                        "more than 31 days: not filled (left as a gap)", (long long)from,
                        (long long)to);
    it->index = from * l->rate;
    it->n = (size_t)(to - from) * (size_t)l->rate;
    memcpy(it->fill, l->last, sizeof it->fill);
    l->last_sec = to - 1;
    return GT3X_FILL;
}

static int activity(struct gt3x_log *l, int type, int64_t ts, const uint8_t *q, size_t size,
                    struct gt3x_item *it)
{
    const char *name = type == REC_ACTIVITY ? "ACTIVITY" : "ACTIVITY2";
    if (size == 1)
        return 0; /* a USB connection marker, not samples */
    if (l->scale <= 0) {
        l->state = ST_FAILED;
        return item_bad(l, it, GT3X_ERROR, "no acceleration scale for the samples: no "
                        "PARAMETERS record gives ACCEL_SCALE, info.txt has no Acceleration "
                        "Scale and the serial number's device is not known");
    }
    if (type == REC_ACTIVITY2 && size % 6)
        return item_bad(l, it, GT3X_BAD, "record %llu at byte %llu: ACTIVITY2 payload of %zu "
                        "bytes is not whole 6-byte samples: skipped",
                        (unsigned long long)it->record, (unsigned long long)it->offset, size);
    size_t n = type == REC_ACTIVITY ? size * 2 / 9 : size / 6;
    if (n == 0 || n > (size_t)l->rate)
        return item_bad(l, it, GT3X_BAD, "record %llu at byte %llu: %s record holds %zu samples; "
                        "one second at %d Hz holds 1..%d: skipped",
                        (unsigned long long)it->record, (unsigned long long)it->offset, name, n,
                        l->rate, l->rate);
    if (l->have_last && ts <= l->last_sec)
        return item_bad(l, it, GT3X_BAD, "record %llu at byte %llu: %s record at device second "
                        "%lld is not after the previous one (%lld): skipped",
                        (unsigned long long)it->record, (unsigned long long)it->offset, name,
                        (long long)ts, (long long)l->last_sec);
    if (type == REC_ACTIVITY) {
        gt3x_unpack12(q, n, l->scale, l->rotate, l->g);
    } else {
        for (size_t i = 0; i < n; i++)
            put(l->g[i], (int16_t)rd16(q + 6 * i), (int16_t)rd16(q + 6 * i + 2),
                (int16_t)rd16(q + 6 * i + 4), l->scale, l->rotate);
    }
    int k = 0;
    if (l->in_ism) /* the exit event went missing: the device slept until this record */
        k = fill_to(l, ts, it);
    l->in_ism = 0;
    l->have_last = 1;
    l->last_sec = ts;
    memcpy(l->last, l->g[n - 1], sizeof l->last);
    if (k) { /* the fill (or its report) first, these samples on the next call */
        l->pending = 1;
        l->pending_index = ts * l->rate;
        l->pending_n = n;
        l->pending_off = it->offset;
        l->pending_rec = it->record;
        return k;
    }
    it->index = ts * l->rate;
    it->n = n;
    it->g = (const float(*)[3])l->g;
    return GT3X_SAMPLES;
}

/* A valid record at p: the item it gives, or 0. */
static int process(struct gt3x_log *l, const uint8_t *p, size_t size, struct gt3x_item *it)
{
    int type = p[1];
    int64_t ts = rd32(p + 2);
    const uint8_t *q = p + 8;
    if (ts > l->max_ts)
        l->max_ts = ts;
    switch (type) {
    case REC_EVENT:
        if (size == 1 && q[0] == EVENT_ISM_ENTER) {
            l->in_ism = 1;
        } else if (size == 1 && q[0] == EVENT_ISM_EXIT) {
            int k = l->in_ism ? fill_to(l, ts, it) : 0;
            l->in_ism = 0;
            return k;
        }
        return 0;
    case REC_PARAMETERS:
        for (size_t i = 0; i + 8 <= size; i += 8)
            if (rd16(q + i) == 0 && rd16(q + i + 2) == PARAM_ACCEL_SCALE) {
                double s = gt3x_param_float(rd32(q + i + 4));
                if (s >= GT3X_SCALE_MIN && s <= GT3X_SCALE_MAX)
                    l->scale = s;
            }
        return 0;
    case REC_ACTIVITY:
    case REC_ACTIVITY2:
        return activity(l, type, ts, q, size, it);
    default:
        return 0; /* battery, metadata, capsense, epochs, ...: not read */
    }
}

static int report_junk(struct gt3x_log *l, struct gt3x_item *it)
{
    it->offset = l->junk_off;
    it->record = l->records;
    int k = item_bad(l, it, GT3X_BAD, "%llu bytes at byte %llu (after record %llu) are not "
                     "records: skipped", (unsigned long long)l->junk_n,
                     (unsigned long long)l->junk_off, (unsigned long long)l->records);
    l->junk_n = 0;
    return k;
}

static int stream_end(struct gt3x_log *l, struct gt3x_item *it)
{
    if (!l->ended) {
        l->ended = 1;
        /* still asleep when the log ends: filled up to the last record's time */
        if (l->in_ism) {
            l->in_ism = 0;
            int k = fill_to(l, l->max_ts, it);
            if (k)
                return k;
        }
    }
    return GT3X_END;
}

static int neo_next(struct gt3x_log *l, struct gt3x_item *it)
{
    size_t avail = l->hi - l->lo;
    it->offset = l->base + l->lo;
    if (l->scale <= 0) {
        l->state = ST_FAILED;
        return item_bad(l, it, GT3X_ERROR, "no acceleration scale for the samples: info.txt has "
                        "no Acceleration Scale and the serial number's device is not known");
    }
    size_t n = avail / 9 * 2;
    if (n > GT3X_NEO_CHUNK)
        n = GT3X_NEO_CHUNK;
    if (n == 0 && !l->eof)
        return GT3X_NEED_MORE;
    if (n < GT3X_NEO_CHUNK && l->eof && avail - n / 2 * 9 >= 5)
        n++; /* an odd number of samples: the last one's trailing nibble is unused */
    if (n == 0) {
        if (avail && !l->ended) {
            l->ended = 1;
            l->lo = l->hi;
            return item_bad(l, it, GT3X_BAD, "activity.bin ends with %zu bytes that are not a "
                            "whole sample (truncated file?): dropped", avail);
        }
        l->ended = 1;
        return GT3X_END;
    }
    gt3x_unpack12(l->buf + l->lo, n, l->scale, l->rotate, l->g);
    l->lo += n / 2 * 9 + (n % 2 ? 5 : 0);
    it->index = l->neo_index;
    it->n = n;
    it->g = (const float(*)[3])l->g;
    l->neo_index += (int64_t)n;
    return GT3X_SAMPLES;
}

int gt3x_log_next(struct gt3x_log *l, struct gt3x_item *it)
{
    memset(it, 0, sizeof *it);
    if (l->state == ST_FAILED) {
        it->why = l->why;
        return GT3X_ERROR;
    }
    if (l->pending) {
        l->pending = 0;
        it->index = l->pending_index;
        it->n = l->pending_n;
        it->g = (const float(*)[3])l->g;
        it->offset = l->pending_off;
        it->record = l->pending_rec;
        return GT3X_SAMPLES;
    }
    if (l->neo)
        return neo_next(l, it);
    for (;;) {
        size_t size = 0;
        if (l->state == ST_SKIP) {
            /* does a record that checks follow the damaged one where its size says? */
            size_t at = (size_t)(l->bad_end - l->base);
            while (at < l->hi && l->buf[at] == 0)
                at++;
            int v = at < l->hi ? check_record(l, at, &size) : REC_INCOMPLETE;
            if (v == REC_INCOMPLETE && !l->eof && l->hi - l->lo < GT3X_BUF)
                return GT3X_NEED_MORE;
            if (v == REC_VALID || (v == REC_INCOMPLETE && l->eof)) {
                l->lo = at; /* yes (or zeros to the end, or a record cut off by the end) */
                l->state = ST_NORMAL;
            } else {
                l->lo++; /* no: the size was damaged too; look for the next record */
                l->state = ST_SCAN;
            }
            continue;
        }
        if (l->lo == l->hi) {
            if (!l->eof)
                return GT3X_NEED_MORE;
            if (l->junk_n && l->state == ST_NORMAL)
                return report_junk(l, it);
            return stream_end(l, it);
        }
        const uint8_t *p = l->buf + l->lo;
        uint64_t off = l->base + l->lo;
        if (p[0] != REC_SEP) {
            if (p[0] == 0 && l->state == ST_NORMAL && l->junk_n == 0) {
                l->lo++; /* zero bytes between records are allowed */
                continue;
            }
            if (l->junk_n == 0)
                l->junk_off = off;
            size_t k = 0;
            while (l->lo + k < l->hi && p[k] != REC_SEP)
                k++;
            l->junk_n += k;
            l->lo += k;
            continue;
        }
        int v = check_record(l, l->lo, &size);
        if (v == REC_INCOMPLETE && !l->eof)
            return GT3X_NEED_MORE;
        if (v != REC_VALID && l->state == ST_SCAN) {
            if (l->junk_n == 0)
                l->junk_off = off;
            l->junk_n++; /* a separator byte inside damaged data */
            l->lo++;
            continue;
        }
        if (l->junk_n && l->state == ST_NORMAL)
            return report_junk(l, it); /* this record is handled on the next call */
        l->junk_n = 0;
        l->state = ST_NORMAL;
        l->records++;
        it->offset = off;
        it->record = l->records;
        if (v == REC_INCOMPLETE) {
            /* cut off by the end, or its size field is damaged: look for records after it */
            size_t left = l->hi - l->lo;
            l->lo++;
            l->state = ST_SCAN;
            if (left < 8)
                return item_bad(l, it, GT3X_BAD, "record %llu at byte %llu: log.bin ends %zu "
                                "bytes into its header (truncated file)",
                                (unsigned long long)l->records, (unsigned long long)off, left);
            return item_bad(l, it, GT3X_BAD, "record %llu at byte %llu: its %zu-byte payload "
                            "runs past the end of log.bin (%zu bytes left: truncated file, or a "
                            "damaged size): skipped", (unsigned long long)l->records,
                            (unsigned long long)off, size, left);
        }
        if (v == REC_INVALID) {
            l->state = ST_SKIP;
            l->bad_end = off + 9 + size;
            return item_bad(l, it, GT3X_BAD, "record %llu at byte %llu (type 0x%02x, %zu-byte "
                            "payload): checksum mismatch: skipped, reading resumes at the next "
                            "record that checks", (unsigned long long)l->records,
                            (unsigned long long)off, p[1], size);
        }
        l->lo += 9 + size;
        int k = process(l, p, size, it);
        if (k)
            return k;
    }
}
