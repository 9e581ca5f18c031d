/* App-usage features per local day (spec §4 app.*): RAPIDS PHONE_APPLICATIONS_FOREGROUND names
 * with episodes built as in appepisode.h, for the group `all` (apps passing [pipeline]
 * app_include / app_exclude) and the group `intervention` (the participant's intervention
 * apps; all nine null when none are configured). docs/features.md, "Apps", lists every
 * difference from RAPIDS. Per day:
 *  - countevent: foreground events in the day (whatever the screen state, as RAPIDS);
 *  - episodes: the part of each episode inside the day (an episode over midnight counts in
 *    both days), kept when the part passes app_ignore_shorter / app_ignore_longer;
 *    countepisode, sum/mean/min/max of the parts in minutes (exact, not RAPIDS' minute chunks);
 *  - timeoffirstuse / timeoflastuse: local minutes after midnight of the earliest / latest
 *    (in time) kept episode start, clipped to the day start;
 *  - frequencyentropy: Shannon entropy (nats) of the kept episodes' counts per app, null with
 *    fewer than two episodes.
 * The family owns the participant's event log (appepisode.h), which the engage family reads.
 * Revisions recompute every kept closed day from it (as the ema family does) and re-emit the
 * days whose records changed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/appepisode.h"
#include "pipeline/family.h"

#define N_GRP 2
#define PER_GRP 9
#define N_FEAT (N_GRP * PER_GRP)
#define CACHE_MAX 64 /* closed days kept for revisions (the core keeps 32) */

static const char *const feat_name[N_FEAT] = {
    "app.counteventall", "app.countepisodeall", "app.sumdurationall", "app.meandurationall",
    "app.mindurationall", "app.maxdurationall", "app.timeoffirstuseall",
    "app.timeoflastuseall", "app.frequencyentropyall",
    "app.counteventintervention", "app.countepisodeintervention",
    "app.sumdurationintervention", "app.meandurationintervention",
    "app.mindurationintervention", "app.maxdurationintervention",
    "app.timeoffirstuseintervention", "app.timeoflastuseintervention",
    "app.frequencyentropyintervention",
};
static const char *const feat_unit[PER_GRP] = {
    "count", "count", "min", "min", "min", "min", "min_after_midnight", "min_after_midnight",
    "nats",
};
static const unsigned grp_flag[N_GRP] = {AEP_IN_ALL, AEP_INTERVENTION};

struct day_vals {
    struct day_window w;
    int emitted, revision;
    unsigned char has[N_FEAT];
    double v[N_FEAT];
    double coverage;
};

struct appfam {
    struct aep_log log;
    struct day_vals *cache; /* closed days that can still be revised, oldest first */
    size_t n_cache, cap_cache;
    int dirty;              /* events applied that may change closed days */
    int64_t closed_end;     /* end of the newest closed day */
    int64_t kept_from;      /* days starting before this can no longer be recomputed */
};

static void *app_new(struct pstate *ps)
{
    (void)ps;
    struct appfam *a = calloc(1, sizeof *a);
    if (a) {
        aep_init(&a->log);
        a->closed_end = INT64_MIN;
        a->kept_from = INT64_MIN;
    }
    return a;
}

static void app_free(void *st)
{
    struct appfam *a = st;
    if (!a)
        return;
    aep_release(&a->log);
    free(a->cache);
    free(a);
}

static void add(struct appfam *a, struct pstate *ps, const struct event *ev)
{
    const struct pipeline_conf *c = pstate_conf(ps);
    if (aep_add(&a->log, ev, c, pstate_pconf(ps), c->max_day_events) < 0)
        pstate_count_discarded(ps, 1); /* a bound: max_day_events or AEP_MAX_APPS */
}

static void app_event(void *st, struct pstate *ps, const struct event *ev)
{
    struct appfam *a = st;
    add(a, ps, ev);
    /* an event that ends an unlock a closed day saw open (it closed after screen_hold) */
    if (ev->type == EV_SCREEN && a->log.resolved != INT64_MIN && a->log.resolved < a->closed_end)
        a->dirty = 1;
}

static void app_late(void *st, struct pstate *ps, const struct event *ev)
{
    struct appfam *a = st;
    add(a, ps, ev);
    if (ev_is_phone(ev->type))
        a->dirty = 1; /* episodes or the coverage of closed days may change */
}

static int app_ready(void *st, struct pstate *ps, const struct day_window *w, int64_t wm,
                     int finishing)
{
    struct appfam *a = st;
    if (finishing || aep_open_unlock_at(&a->log, w->end) == INT64_MIN)
        return 1;
    return wm >= w->end + pstate_conf(ps)->screen_hold_ms;
}

/* ---- one day -------------------------------------------------------------------------- */

struct grp {
    size_t n_ev, n_ep, cap;
    int64_t sum, min, max; /* ms: exact, converted to minutes last */
    uint32_t *app;         /* app of each kept episode, for the entropy */
    int64_t first, last;   /* clipped starts of the earliest and latest kept episodes */
};

struct acc {
    const struct day_window *w;
    double shorter, longer;
    struct grp g[N_GRP];
};

static void on_fg(void *ud, int64_t ts, uint32_t app, unsigned flags)
{
    struct acc *c = ud;
    (void)app;
    if (ts < c->w->start)
        return;
    for (int k = 0; k < N_GRP; k++)
        if (flags & grp_flag[k])
            c->g[k].n_ev++;
}

static void on_episode(void *ud, const struct aep_episode *e)
{
    struct acc *c = ud;
    int64_t lo = e->start > c->w->start ? e->start : c->w->start;
    int64_t hi = e->end < c->w->end ? e->end : c->w->end;
    if (hi <= lo)
        return;
    double m = (double)(hi - lo) / 60000.0;
    if ((c->shorter > 0 && m < c->shorter) || (c->longer > 0 && m > c->longer))
        return;
    for (int k = 0; k < N_GRP; k++) {
        struct grp *g = &c->g[k];
        if (!(e->flags & grp_flag[k]))
            continue;
        if (g->n_ep == g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 32;
            uint32_t *p = realloc(g->app, cap * sizeof *p);
            if (!p)
                continue; /* out of memory: the episode is not counted */
            g->app = p;
            g->cap = cap;
        }
        int64_t d = hi - lo;
        if (g->n_ep == 0) {
            g->first = g->last = lo;
            g->min = g->max = d;
        }
        g->first = lo < g->first ? lo : g->first;
        g->last = lo > g->last ? lo : g->last;
        g->min = d < g->min ? d : g->min;
        g->max = d > g->max ? d : g->max;
        g->sum += d;
        g->app[g->n_ep++] = e->app;
    }
}

/* H = -sum p ln p over the episode counts per app (n episodes of apps below n_app). The
 * counts are summed in increasing order, so the value does not depend on the order in which
 * apps were first seen. */
static double entropy(const uint32_t *app, size_t n, size_t n_app)
{
    uint32_t *per_app = calloc(n_app ? n_app : 1, sizeof *per_app);
    uint32_t *cnt = malloc(n * sizeof *cnt);
    double h = NAN;
    if (!per_app || !cnt)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (app[i] < n_app)
            per_app[app[i]]++;
    size_t k = 0;
    for (size_t a = 0; a < n_app; a++) {
        if (!per_app[a])
            continue;
        size_t at = k++; /* insertion sort: a day has few apps */
        while (at > 0 && cnt[at - 1] > per_app[a]) {
            cnt[at] = cnt[at - 1];
            at--;
        }
        cnt[at] = per_app[a];
    }
    h = 0;
    for (size_t i = 0; i < k; i++) {
        double p = (double)cnt[i] / (double)n;
        h -= p * log(p);
    }
    h += 0.0; /* one app: 0, never -0 */
out:
    free(per_app);
    free(cnt);
    return h;
}

static void group_vals(struct grp *g, const struct day_window *w, size_t n_app,
                       unsigned char *has, double *v)
{
    int any = g->n_ep > 0;
    const double val[PER_GRP] = {
        (double)g->n_ev, (double)g->n_ep, (double)g->sum / 60000.0,
        any ? (double)g->sum / 60000.0 / (double)g->n_ep : 0,
        any ? (double)g->min / 60000.0 : 0, any ? (double)g->max / 60000.0 : 0,
        any ? cal_minutes_of_day(w->zone, g->first) : 0,
        any ? cal_minutes_of_day(w->zone, g->last) : 0,
        g->n_ep >= 2 ? entropy(g->app, g->n_ep, n_app) : 0,
    };
    const int def[PER_GRP] = {1, 1, 1, any, any, any, any, any, g->n_ep >= 2};
    for (int k = 0; k < PER_GRP; k++) {
        has[k] = (unsigned char)(def[k] && isfinite(val[k]));
        v[k] = has[k] ? val[k] : 0;
    }
}

static int has_intervention_apps(const struct pstate *ps)
{
    const struct pipeline_participant_conf *pc = pstate_pconf(ps);
    return pc && pc->n_apps > 0;
}

static void compute(const struct appfam *a, struct pstate *ps, const struct day_window *w,
                    struct day_vals *d)
{
    const struct pipeline_conf *c = pstate_conf(ps);
    struct acc acc;
    memset(&acc, 0, sizeof acc);
    acc.w = w;
    acc.shorter = c->app_ignore_shorter_min;
    acc.longer = c->app_ignore_longer_min;
    struct aep_visitor v = {.app_episode = on_episode, .foreground = on_fg, .ud = &acc};
    aep_walk(&a->log, w->start, w->end, &v);
    memset(d, 0, sizeof *d);
    d->w = *w;
    d->coverage = pstate_phone_coverage(ps, w->start, w->end);
    for (int k = 0; k < N_GRP; k++)
        group_vals(&acc.g[k], w, a->log.n_app, d->has + k * PER_GRP, d->v + k * PER_GRP);
    if (!has_intervention_apps(ps))
        memset(d->has + PER_GRP, 0, PER_GRP);
    d->emitted = d->coverage > 0;
    for (int k = 0; k < N_GRP; k++) {
        d->emitted |= acc.g[k].n_ev > 0 || acc.g[k].n_ep > 0;
        free(acc.g[k].app);
    }
}

static void emit(struct pstate *ps, const struct day_window *w, const struct day_vals *d)
{
    for (int k = 0; k < N_FEAT; k++)
        pstate_emit_day(ps, w, feat_name[k], d->has[k], d->v[k], feat_unit[k % PER_GRP],
                        d->coverage, d->revision);
}

static int same_vals(const struct day_vals *x, const struct day_vals *y)
{
    if (x->emitted != y->emitted || x->coverage != y->coverage)
        return 0;
    for (int k = 0; k < N_FEAT; k++)
        if (x->has[k] != y->has[k] || x->v[k] != y->v[k])
            return 0;
    return 1;
}

/* After late events (or an unlock resolved after its day closed): recompute every closed day
 * still kept, oldest first, and re-emit those whose records changed. */
static void flush_revisions(struct appfam *a, struct pstate *ps)
{
    if (!a->dirty)
        return;
    a->dirty = 0;
    for (size_t i = 0; i < a->n_cache; i++) {
        struct day_vals *old = &a->cache[i];
        if (old->w.start < a->kept_from)
            continue;
        struct day_vals d;
        compute(a, ps, &old->w, &d);
        if (same_vals(&d, old))
            continue;
        d.revision = old->emitted ? old->revision + 1 : 0;
        if (d.emitted)
            emit(ps, &d.w, &d);
        *old = d;
    }
}

static void app_revise(void *st, struct pstate *ps, const struct day_window *w)
{
    (void)w;
    flush_revisions(st, ps);
}

static void app_close(void *st, struct pstate *ps, const struct day_window *w)
{
    struct appfam *a = st;
    flush_revisions(a, ps);
    struct day_vals d;
    compute(a, ps, w, &d);
    if (d.emitted)
        emit(ps, w, &d);
    a->closed_end = w->end;

    /* forget what no late event can reach any more (the engage family follows) */
    int64_t keep = aep_horizon(pstate_conf(ps), w);
    if (keep > a->kept_from)
        a->kept_from = keep;
    aep_trim(&a->log, a->kept_from);
    size_t k = 0;
    while (k < a->n_cache && (a->cache[k].w.start < a->kept_from || a->n_cache - k >= CACHE_MAX))
        k++;
    if (k) {
        memmove(a->cache, a->cache + k, (a->n_cache - k) * sizeof *a->cache);
        a->n_cache -= k;
    }
    if (a->n_cache == a->cap_cache) {
        size_t cap = a->cap_cache ? a->cap_cache * 2 : 4;
        struct day_vals *p = realloc(a->cache, cap * sizeof *p);
        if (!p)
            return; /* out of memory: this day cannot be revised */
        a->cache = p;
        a->cap_cache = cap;
    }
    a->cache[a->n_cache++] = d;
}

struct aep_log *app_family_log(struct pstate *ps)
{
    struct appfam *a = pstate_family_state(ps, &family_app);
    return a ? &a->log : NULL;
}

const struct family_ops family_app = {
    .name = "app",
    .types = EV_BIT(EV_SCREEN) | EV_BIT(EV_APP),
    .state_new = app_new,
    .state_free = app_free,
    .on_event = app_event,
    .day_ready = app_ready,
    .close_day = app_close,
    .on_late_event = app_late,
    .revise_day = app_revise,
};
