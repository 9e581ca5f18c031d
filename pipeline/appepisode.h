/* App-foreground episodes inside screen unlock episodes, shared by the app and engage
 * families (docs/features.md, "Apps"). A participant's screen and app events of the last few
 * days are kept in a compact, time-ordered log (8 bytes an event); episodes are rebuilt from
 * it whenever a day is computed, so late events and revisions need no incremental
 * bookkeeping. Rules:
 *  - unlock episodes are those of the screen family: with ON events dropped and a LOCK less
 *    than 50 ms after an ON or OFF dropped, an UNLOCK immediately followed by an OFF;
 *  - an app episode starts at an app's foreground event inside an unlock episode
 *    (unlock <= t < off) and ends at the next foreground event of another app, a background
 *    event of the same app, or the OFF, whichever comes first; repeated foreground events of
 *    the app in front continue its episode; foreground events outside unlock episodes (screen
 *    off or locked, or an unlock never closed by an OFF) start none;
 *  - at one instant, screen events come before app events (an app brought to the front in the
 *    millisecond of the unlock is inside it, one in the millisecond of the OFF is not).
 * Pure: no I/O, no clock. */
#ifndef ENGAGED_APPEPISODE_H
#define ENGAGED_APPEPISODE_H

#include <stddef.h>
#include <stdint.h>

#include "pipeline/event.h"
#include "pipeline/pipeline.h"
#include "pipeline/tz.h"

#define AEP_MAX_APPS 4096       /* distinct package ids per participant */

/* App flags (struct aep_episode.flags) */
#define AEP_IN_ALL 1u           /* passes [pipeline] app_include / app_exclude: group `all` */
#define AEP_INTERVENTION 2u     /* one of the participant's intervention apps */

struct aep_app {
    uint64_t hash;              /* 64-bit FNV-1a of the package id */
    unsigned flags;
};

struct aep_log {
    uint64_t *ev;               /* packed (time, kind, app), ordered by time, screen first */
    size_t n, cap;
    struct aep_app *app;        /* interned package ids, in order of first sight */
    size_t n_app, cap_app;
    uint16_t *slot;             /* open addressing over app[]: index + 1, 0 = free */
    size_t n_slot;
    /* the screen state after the newest event, kept up to date by in-order appends (a late
     * insertion clears tail_ok; it is then recomputed when needed) */
    int tail_ok, tail_have_prev;
    unsigned tail_kind;         /* kind and time of the newest screen event */
    int64_t tail_ts;
    int64_t tail_unlock;        /* start of the unlock open at the end, or INT64_MIN */
    int64_t resolved;           /* start of the unlock that the last screen event added at the
                                 * end resolved (by an OFF or otherwise), or INT64_MIN */
};

struct aep_episode {
    int64_t start, end;         /* UTC ms, end > start */
    uint32_t app;               /* index into the log's app table (app episodes only) */
    unsigned flags;             /* the app's AEP_* flags (app episodes only) */
};

/* What aep_walk reports; any callback may be NULL. */
struct aep_visitor {
    void (*app_episode)(void *ud, const struct aep_episode *e);
    void (*unlock)(void *ud, const struct aep_episode *e);
    void (*foreground)(void *ud, int64_t ts, uint32_t app, unsigned flags);
    void *ud;
};

void aep_init(struct aep_log *l);
void aep_release(struct aep_log *l);

/* Adds a screen or app event in any time order (in order is the fast path); other types are
 * ignored. The app's flags are fixed at its first sight from c (include/exclude) and pc
 * (intervention apps; NULL = none). Returns 1 if added, 0 if the type is not kept, -E2BIG
 * when max_events are held or AEP_MAX_APPS apps were seen, -ENOMEM. */
int aep_add(struct aep_log *l, const struct event *ev, const struct pipeline_conf *c,
            const struct pipeline_participant_conf *pc, size_t max_events);

/* Reports, in time order, every unlock and app episode that starts before `to` and ends after
 * `from`, and every foreground event in [from, to); it may report earlier ones too (callers
 * clip). An unlock still open at the end of the log is not reported (nor are the app episodes
 * inside it). */
void aep_walk(const struct aep_log *l, int64_t from, int64_t to, const struct aep_visitor *v);

/* Start of the unlock open at instant t (an UNLOCK before t that no kept screen event held
 * in the log resolves), or INT64_MIN if none. Constant time after in-order appends. */
int64_t aep_open_unlock_at(struct aep_log *l, int64_t t);

/* Forgets events that no episode or event at or after t depends on: all before t except an
 * unlock still open at t (with its app events) and the screen event just before the cut. */
void aep_trim(struct aep_log *l, int64_t t);

/* The oldest instant whose events a family must keep when day w closes (days starting
 * before it can no longer be recomputed): the core revises closed days up to `revise` behind
 * its watermark and max(screen_hold, coverage_gap) around a late event. */
int64_t aep_horizon(const struct pipeline_conf *c, const struct day_window *w);

struct pstate;
/* The log of the participant's app family (appfam in app.c), which the engage family reads
 * instead of keeping a copy; NULL when the app family is not registered. */
struct aep_log *app_family_log(struct pstate *ps);

/* The oldest instant whose events a family must keep when day w closes (days starting
 * before it can no longer be recomputed): the core revises closed days up to `revise` behind
 * its watermark and max(screen_hold, coverage_gap) around a late event. */
int64_t aep_horizon(const struct pipeline_conf *c, const struct day_window *w);

struct pstate;
/* The log of the participant's app family (appfam in app.c), which the engage family reads
 * instead of keeping a copy; NULL when the app family is not registered. */
struct aep_log *app_family_log(struct pstate *ps);

/* 64-bit FNV-1a of a NUL-terminated string: how package (and module) ids are compared. */
uint64_t aep_hash(const char *s);

/* The event time of the oldest event held (INT64_MAX when empty). */
int64_t aep_first_ts(const struct aep_log *l);

#endif
