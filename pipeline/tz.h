/* Time zones without touching the process's TZ: TZif files (RFC 8536) are read from the
 * system tz database into per-zone transition tables; conversions are binary searches.
 * Also the civil-calendar helpers and a participant's time-zone timeline (tz events). */
#ifndef ENGAGED_TZ_H
#define ENGAGED_TZ_H

#include <stddef.h>
#include <stdint.h>

struct tz_zone;
struct tz_db;

/* dir NULL: $TZDIR if set, else /usr/share/zoneinfo. Zones are loaded on demand and cached. */
struct tz_db *tz_db_new(const char *dir);
void tz_db_free(struct tz_db *db);
/* Returns the zone (owned by db) or NULL with *err = -ENOENT (no such zone), -EINVAL (bad
 * name, e.g. containing "..", or a corrupt file), -E2BIG (too many zones cached), or another
 * negative errno from reading the file (-EACCES, -ENOMEM). "UTC" always works. Not thread-safe. */
const struct tz_zone *tz_db_get(struct tz_db *db, const char *name, int *err);

const char *tz_zone_name(const struct tz_zone *z);
/* UTC offset in seconds east of Greenwich at the instant utc_ms (TZif data, then the footer
 * POSIX TZ rule for instants after the last transition). */
int32_t tz_offset(const struct tz_zone *z, int64_t utc_ms);
/* The first UTC instant whose local wall time is at or after local_ms (ms since the epoch of
 * the local wall clock). Gaps (spring forward) map to the transition instant; ambiguous times
 * (fall back) to the earlier instant. */
int64_t tz_local_to_utc(const struct tz_zone *z, int64_t local_ms);

/* Proleptic Gregorian calendar; days since 1970-01-01. */
int64_t civil_to_days(int64_t y, unsigned m, unsigned d);
void civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);
/* floor division helpers used by calendar code (b != 0); floor_mod has the sign of b */
int64_t floor_div(int64_t a, int64_t b);
int64_t floor_mod(int64_t a, int64_t b);

/* A participant's time zones over time: zone[i] is in force from from[i] (inclusive) until
 * from[i+1]. from[0] is EV_TS_MIN. Bounded: at most TZL_MAX entries (see tzline_switch). */
#define TZL_MAX 64
struct tzline {
    size_t n;
    int64_t from[TZL_MAX];
    const struct tz_zone *zone[TZL_MAX];
};
void tzline_init(struct tzline *l, const struct tz_zone *initial);
/* A switch at ts; switches must arrive in non-decreasing ts order. A switch to the zone already
 * in force is a no-op; one at the same ts as the last switch replaces it. Returns 0, -E2BIG
 * (TZL_MAX entries already), or -EINVAL (z NULL, or ts before the last switch). */
int tzline_switch(struct tzline *l, int64_t ts, const struct tz_zone *z);
const struct tz_zone *tzline_zone_at(const struct tzline *l, int64_t ts);

/* A local-calendar day window of one participant. A zone switch inside a local day cuts it:
 * the old zone's window ends at the switch and the new zone's window starts there. */
struct day_window {
    int64_t start, end;     /* UTC ms, end exclusive; 23 h and 25 h days exist */
    int64_t day;            /* local date as days since 1970-01-01 */
    const struct tz_zone *zone;
    char local_date[11];    /* YYYY-MM-DD */
};
/* The day window containing instant t. A local day that a clock jumped over entirely
 * (Pacific/Apia 2011-12-30) has no window: the day before is followed by the day after. */
void cal_day_at(const struct tzline *l, int64_t t, struct day_window *w);
/* The window that follows w (starting at w->end). */
void cal_day_next(const struct tzline *l, const struct day_window *w, struct day_window *next);
/* The rolling 7-day window ending with day window `last`: from the start of the local day six
 * days before last->day (in the zone in force then) to last->end. */
void cal_7d(const struct tzline *l, const struct day_window *last, int64_t *start, int64_t *end);
/* Minutes after local midnight of instant t in zone z (fractional, ms resolution). */
double cal_minutes_of_day(const struct tz_zone *z, int64_t t);

#endif
