/* RAPIDS-compatible screen unlock-episode features (spec §4 screen.*), per local day.
 * Episode rules: ../shared/reference/engagement.md §2 (RAPIDS screen_episodes.R), rewritten:
 *   1. a LOCK less than 50 ms after an ON or OFF is dropped;
 *   2. ON events are dropped (so iOS and Android agree);
 *   3. an unlock episode is an UNLOCK immediately followed by an OFF: [t_unlock, t_off].
 * (RAPIDS' "swap UNLOCK and a following ON < 800 ms" step cannot change which (UNLOCK, OFF)
 * pairs are adjacent once ONs are dropped, so it needs no code.) Unlike RAPIDS, durations are
 * exact intersections with the day, not sums of 1-minute chunks (docs/features.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/family.h"

struct sev {
    int64_t ts;
    int state;
};

#define N_FEAT 7
#define CACHE_DAYS 32 /* closed days remembered for revisions (pipeline.c keeps as many) */

/* What a day emitted, to tell whether a revision changes anything. */
struct day_vals {
    int64_t start;
    int emitted, revision;
    int has[N_FEAT];
    double v[N_FEAT];
    double coverage;
};

struct screen {
    struct sev *ev;
    size_t n, cap;
    uint64_t overflow;
    struct day_vals cache[CACHE_DAYS];
    size_t n_cache;
};

static const char *const feat_name[N_FEAT] = {
    "screen.countepisodeunlock", "screen.sumdurationunlock", "screen.maxdurationunlock",
    "screen.mindurationunlock", "screen.avgdurationunlock", "screen.stddurationunlock",
    "screen.firstuseafter00unlock",
};
static const char *const feat_unit[N_FEAT] = {
    "count", "min", "min", "min", "min", "min", "min_after_midnight",
};

static void *screen_new(struct pstate *ps) { (void)ps; return calloc(1, sizeof(struct screen)); }

static void screen_free(void *st)
{
    struct screen *s = st;
    if (s)
        free(s->ev);
    free(s);
}

static size_t first_at(const struct screen *s, int64_t t);

static void screen_event(void *st, struct pstate *ps, const struct event *ev)
{
    struct screen *s = st;
    if (ev->type != EV_SCREEN)
        return;
    if (s->n >= pstate_conf(ps)->max_day_events) {
        s->overflow++;
        return;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct sev *p = realloc(s->ev, cap * sizeof *p);
        if (!p) {
            s->overflow++;
            return;
        }
        s->ev = p;
        s->cap = cap;
    }
    /* in time order this appends; a late event goes after the events of its instant */
    size_t at = s->n && s->ev[s->n - 1].ts > ev->ts ? first_at(s, ev->ts + 1) : s->n;
    memmove(s->ev + at + 1, s->ev + at, (s->n - at) * sizeof *s->ev);
    s->ev[at] = (struct sev){ev->ts, ev->u.screen.state};
    s->n++;
}

/* Index of the first event at or after t. */
static size_t first_at(const struct screen *s, int64_t t)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ev[mid].ts < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Is an event kept by rules 1 and 2? */
static int kept(const struct screen *s, size_t i)
{
    int st = s->ev[i].state;
    if (st == SCREEN_ON)
        return 0;
    if (st == SCREEN_LOCKED && i > 0) {
        int prev = s->ev[i - 1].state;
        if ((prev == SCREEN_ON || prev == SCREEN_OFF) && s->ev[i].ts - s->ev[i - 1].ts < 50)
            return 0;
    }
    return 1;
}

/* Is an unlock open at time t (the last kept event before t is an UNLOCK and no later kept
 * event before `upto` resolves it)? Returns 1 if still open. */
static int unlock_open_at(const struct screen *s, int64_t t)
{
    size_t i = first_at(s, t);
    size_t j = i;
    while (j > 0 && !kept(s, j - 1))
        j--;
    if (j == 0 || s->ev[j - 1].state != SCREEN_UNLOCKED)
        return 0;
    for (; i < s->n; i++)
        if (kept(s, i))
            return 0; /* resolved by the next kept event, whatever it is */
    return 1;
}

static int screen_ready(void *st, struct pstate *ps, const struct day_window *w, int64_t wm,
                        int finishing)
{
    struct screen *s = st;
    if (finishing || !unlock_open_at(s, w->end))
        return 1;
    return wm >= w->end + pstate_conf(ps)->screen_hold_ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The day's values from the events held; *discarded counts unlocks without an OFF. */
static void compute(const struct screen *s, struct pstate *ps, const struct day_window *w,
                    struct day_vals *out, uint64_t *discarded)
{
    const struct pipeline_conf *c = pstate_conf(ps);
    memset(out, 0, sizeof *out);
    out->start = w->start;
    out->coverage = pstate_phone_coverage(ps, w->start, w->end);
    size_t n_ep = 0, cap_ep = 0;
    double *dur = NULL;
    double first = NAN;

    /* Walk kept events pairwise; an episode can only intersect the day if its OFF is at or
     * after the day start, and its UNLOCK is before the day end. */
    size_t prev = (size_t)-1;
    for (size_t i = 0; i < s->n && s->ev[i].ts < w->end + c->screen_hold_ms; i++) {
        if (!kept(s, i))
            continue;
        if (prev != (size_t)-1 && s->ev[prev].state == SCREEN_UNLOCKED &&
            s->ev[i].state == SCREEN_OFF) {
            int64_t a = s->ev[prev].ts, b = s->ev[i].ts;
            int64_t lo = a > w->start ? a : w->start, hi = b < w->end ? b : w->end;
            if (((a >= w->start && a < w->end) || (a < w->start && b > w->start)) && hi >= lo) {
                double m = (double)(hi - lo) / 60000.0;
                int keep = !(c->screen_ignore_shorter_min > 0 && m < c->screen_ignore_shorter_min) &&
                           !(c->screen_ignore_longer_min > 0 && m > c->screen_ignore_longer_min);
                if (keep) {
                    if (n_ep == cap_ep) {
                        cap_ep = cap_ep ? cap_ep * 2 : 16;
                        double *p = realloc(dur, cap_ep * sizeof *p);
                        if (!p)
                            break;
                        dur = p;
                    }
                    dur[n_ep++] = m;
                    double start_min = cal_minutes_of_day(w->zone, lo);
                    if (isnan(first) || start_min < first)
                        first = start_min;
                }
            }
        } else if (prev != (size_t)-1 && s->ev[prev].state == SCREEN_UNLOCKED &&
                   s->ev[prev].ts >= w->start && s->ev[prev].ts < w->end) {
            (*discarded)++; /* an UNLOCK not followed by an OFF */
        }
        prev = i;
    }
    out->emitted = n_ep > 0 || out->coverage > 0;
    double sum = 0, mx = NAN, mn = NAN, avg = NAN, sd = NAN;
    if (n_ep) {
        /* sum in sorted order so the result does not depend on arrival details */
        qsort(dur, n_ep, sizeof *dur, cmp_double);
        for (size_t k = 0; k < n_ep; k++)
            sum += dur[k];
        mn = dur[0];
        mx = dur[n_ep - 1];
        avg = sum / (double)n_ep;
        if (n_ep > 1) {
            double ss = 0;
            for (size_t k = 0; k < n_ep; k++)
                ss += (dur[k] - avg) * (dur[k] - avg);
            sd = sqrt(ss / (double)(n_ep - 1));
        }
    }
    free(dur);
    const double v[N_FEAT] = {(double)n_ep, sum, mx, mn, avg, sd, first};
    const int has[N_FEAT] = {1, 1, n_ep > 0, n_ep > 0, n_ep > 0, n_ep > 1, n_ep > 0};
    for (int k = 0; k < N_FEAT; k++) {
        out->has[k] = has[k];
        out->v[k] = has[k] ? v[k] : 0;
    }
}

static void emit(struct pstate *ps, const struct day_window *w, const struct day_vals *d)
{
    for (int k = 0; k < N_FEAT; k++)
        pstate_emit_day(ps, w, feat_name[k], d->has[k], d->v[k], feat_unit[k], d->coverage,
                        d->revision);
}

static int same_vals(const struct day_vals *a, const struct day_vals *b)
{
    if (a->emitted != b->emitted || a->coverage != b->coverage)
        return 0;
    for (int k = 0; k < N_FEAT; k++)
        if (a->has[k] != b->has[k] || a->v[k] != b->v[k])
            return 0;
    return 1;
}

static void screen_close(void *st, struct pstate *ps, const struct day_window *w)
{
    struct screen *s = st;
    struct day_vals d;
    uint64_t discarded = 0;
    compute(s, ps, w, &d, &discarded);
    pstate_count_discarded(ps, discarded);
    if (d.emitted)
        emit(ps, w, &d);
    if (s->n_cache == CACHE_DAYS) {
        memmove(s->cache, s->cache + 1, (CACHE_DAYS - 1) * sizeof *s->cache);
        s->n_cache--;
    }
    s->cache[s->n_cache++] = d;

    /* Keep the events a revision may need: from the last kept OFF before the oldest day a
     * late event can still reach (its start, less a day for an episode over midnight) on.
     * Earlier events cannot belong to an episode that reaches a revisable day. */
    const struct pipeline_conf *c = pstate_conf(ps);
    size_t cut = first_at(s, w->end - c->revise_ms - c->screen_hold_ms - 86400000LL);
    while (cut > 0 && !(kept(s, cut - 1) && s->ev[cut - 1].state == SCREEN_OFF))
        cut--;
    if (cut > 0) {
        cut--; /* keep the OFF itself: rule 1 looks at the previous event */
        memmove(s->ev, s->ev + cut, (s->n - cut) * sizeof *s->ev);
        s->n -= cut;
    }
}

static void screen_revise(void *st, struct pstate *ps, const struct day_window *w)
{
    struct screen *s = st;
    struct day_vals *old = NULL;
    for (size_t i = 0; i < s->n_cache; i++)
        if (s->cache[i].start == w->start)
            old = &s->cache[i];
    if (!old)
        return; /* older than what is kept: cannot be revised */
    struct day_vals d;
    uint64_t discarded = 0;
    compute(s, ps, w, &d, &discarded);
    if (same_vals(&d, old))
        return;
    d.revision = old->emitted ? old->revision + 1 : 0;
    emit(ps, w, &d);
    *old = d;
}

const struct family_ops family_screen = {
    .name = "screen",
    .types = EV_BIT(EV_SCREEN),
    .state_new = screen_new,
    .state_free = screen_free,
    .on_event = screen_event,
    .day_ready = screen_ready,
    .close_day = screen_close,
    .on_late_event = screen_event,
    .revise_day = screen_revise,
};
