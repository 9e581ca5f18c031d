/* Participants' time-zone timelines and local-calendar day windows (docs/timezones.md), on
 * top of the zone tables of tz.c. */
#include "pipeline/tz.h"
#include "pipeline/event.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DAY_MS INT64_C(86400000)
#define TZ_MS_LIMIT (INT64_C(1) << 60)

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- time-zone timelines and day windows ---- */

void tzline_init(struct tzline *l, const struct tz_zone *initial)
{
    l->n = 1;
    l->from[0] = EV_TS_MIN;
    l->zone[0] = initial;
}

int tzline_switch(struct tzline *l, int64_t ts, const struct tz_zone *z)
{
    size_t k = l->n - 1;
    if (!z)
        return -EINVAL;
    if (z == l->zone[k])
        return 0;
    if (ts < l->from[k])
        return -EINVAL;
    if (ts == l->from[k]) { /* a correction of the last switch, not a new one */
        if (k > 0 && l->zone[k - 1] == z)
            l->n--;
        else
            l->zone[k] = z;
        return 0;
    }
    if (l->n == TZL_MAX)
        return -E2BIG;
    l->from[l->n] = ts;
    l->zone[l->n++] = z;
    return 0;
}

static size_t tzline_index(const struct tzline *l, int64_t ts)
{
    size_t lo = 0, hi = l->n; /* from[lo] <= ts < from[hi] (from[n] = +inf) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->from[mid] <= ts)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

const struct tz_zone *tzline_zone_at(const struct tzline *l, int64_t ts)
{
    return l->zone[tzline_index(l, ts)];
}

static void put_digits(char *p, int64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static void format_date(int64_t day, char out[11])
{
    int64_t y;
    unsigned m, d;
    civil_from_days(day, &y, &m, &d);
    put_digits(out, clamp64(y, 0, 9999), 4); /* only 1900..2200 is documented */
    out[4] = '-';
    put_digits(out + 5, m, 2);
    out[7] = '-';
    put_digits(out + 8, d, 2);
    out[10] = '\0';
}

void cal_day_at(const struct tzline *l, int64_t t, struct day_window *w)
{
    size_t i = tzline_index(l, t);
    const struct tz_zone *z = l->zone[i];
    int64_t lo = i == 0 ? INT64_MIN : l->from[i];
    int64_t hi = i + 1 < l->n ? l->from[i + 1] : INT64_MAX;
    t = clamp64(t, -TZ_MS_LIMIT, TZ_MS_LIMIT);
    int64_t d = floor_div(t + (int64_t)tz_offset(z, t) * 1000, DAY_MS);
    int64_t s = tz_local_to_utc(z, d * DAY_MS), e = tz_local_to_utc(z, (d + 1) * DAY_MS);
    /* Where a clock went back across midnight (Pacific/Kwajalein 1969), t's own wall date
     * was already left once; by "a day starts at the first instant at or after its
     * midnight" t then belongs to the next day, which keeps windows contiguous and dates
     * increasing. A day a clock jumped over (Pacific/Apia 2011-12-30) has s == e: no window. */
    while (e <= t) {
        d++;
        s = e;
        e = tz_local_to_utc(z, (d + 1) * DAY_MS);
    }
    w->start = s > lo ? s : lo;
    w->end = e < hi ? e : hi;
    w->day = d;
    w->zone = z;
    format_date(d, w->local_date);
}

void cal_day_next(const struct tzline *l, const struct day_window *w, struct day_window *next)
{
    cal_day_at(l, w->end, next);
}

void cal_7d(const struct tzline *l, const struct day_window *last, int64_t *start, int64_t *end)
{
    /* Walk back window by window (cut days count as their parts) while the local date is
     * still one of the seven; the bound covers 7 days in every zone of a full timeline. */
    int64_t first = last->day - 6;
    struct day_window w = *last, p;
    for (int k = 0; k < 9 * (TZL_MAX + 1) && w.start > -TZ_MS_LIMIT; k++) {
        cal_day_at(l, w.start - 1, &p);
        if (p.day < first)
            break;
        w = p;
    }
    *start = w.start;
    *end = last->end;
}

double cal_minutes_of_day(const struct tz_zone *z, int64_t t)
{
    int64_t local = clamp64(t, -TZ_MS_LIMIT, TZ_MS_LIMIT) + (int64_t)tz_offset(z, t) * 1000;
    return (double)(local - floor_div(local, DAY_MS) * DAY_MS) / 60000.0;
}
