/* Engagement with the intervention (spec §4 engage.*, adherence.intervention_7d), per local
 * day, from the episodes of the app family's event log (appepisode.h; this family keeps no
 * copy) and its own completed-module events (docs/features.md, "Engagement"):
 *  - engage.sessions: sessions with the intervention apps starting on the day; a session
 *    chains intervention-app episodes separated by less than [pipeline] engage_session_gap;
 *  - engage.minutes: minutes of the day with an intervention app in the foreground (the gaps
 *    inside a session do not count);
 *  - a day is active when engage.minutes > 0; engage.days_since_last_use is 0 on an active
 *    day, else the number of local days since the last active one (null before the first);
 *    engage.active_days_7d counts active local dates among the 7 ending with the day;
 *    adherence.intervention_7d = active_days_7d / prescribed_days_per_week, at most 1;
 *  - engage.modules_completed: distinct module ids with a `completed` event on the day;
 *  - engage.night_use_minutes: minutes of unlock episodes (all phone use) between local
 *    00:00 and 06:00 of the day (5 h on a spring-forward night, 7 h on a fall-back one).
 * Without intervention apps configured, every feature that depends on them is null.
 * Revisions: as the ema family, every kept closed day is recomputed, oldest first, so the
 * 7-day values and days_since_last_use of later days follow a revised day. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/appepisode.h"
#include "pipeline/family.h"
#include "pipeline/sources.h"

#define DAY_MS 86400000LL
#define NIGHT_END_MS (6 * 3600000LL)
#define MAX_MODULES 1024 /* completed-module events kept per participant */
#define CACHE_MAX 64      /* closed days remembered, whatever the config says */

enum { F_SESS, F_MIN, F_DSL, F_ACT7, F_MOD, F_NIGHT, F_ADH7, N_FEAT };
static const char *const feat_name[N_FEAT] = {
    "engage.sessions", "engage.minutes", "engage.days_since_last_use", "engage.active_days_7d",
    "engage.modules_completed", "engage.night_use_minutes", "adherence.intervention_7d",
};
static const char *const feat_unit[N_FEAT] = {
    "count", "min", "days", "days", "count", "min", "ratio",
};
static const int feat_7d[N_FEAT] = {0, 0, 0, 1, 0, 0, 1};

struct eday {
    struct day_window w;
    int emitted, revision, active;
    unsigned char has[N_FEAT];
    double v[N_FEAT];
    double coverage, coverage7;
};

struct modev {
    int64_t ts;
    uint64_t hash;
};

struct engage {
    struct modev *mod;        /* completed-module events, in time order */
    size_t n_mod, cap_mod;
    struct eday *cache;       /* closed days: the revisable ones and the last 8, oldest first */
    size_t n_cache, cap_cache;
    int64_t last_active_gone; /* local day of the newest active day dropped from the cache */
    int dirty;
    int64_t closed_end, kept_from;
};

static void *engage_new(struct pstate *ps)
{
    (void)ps;
    struct engage *g = calloc(1, sizeof *g);
    if (g) {
        g->last_active_gone = INT64_MIN;
        g->closed_end = INT64_MIN;
        g->kept_from = INT64_MIN;
    }
    return g;
}

static void engage_free(void *st)
{
    struct engage *g = st;
    if (!g)
        return;
    free(g->mod);
    free(g->cache);
    free(g);
}

static void add_module(struct engage *g, struct pstate *ps, const struct event *ev)
{
    if (g->n_mod >= MAX_MODULES) {
        pstate_count_discarded(ps, 1);
        return;
    }
    if (vec_grow((void **)&g->mod, &g->cap_mod, g->n_mod + 1, sizeof *g->mod) < 0) {
        pstate_count_discarded(ps, 1);
        return;
    }
    size_t at = g->n_mod;
    while (at > 0 && g->mod[at - 1].ts > ev->ts)
        at--;
    memmove(g->mod + at + 1, g->mod + at, (g->n_mod - at) * sizeof *g->mod);
    g->mod[at] = (struct modev){ev->ts, aep_hash(ev->u.module.module)};
    g->n_mod++;
}

/* Screen and app events live in the app family's log, which the core has updated before
 * these callbacks run (the app family is registered first). */
static void engage_event(void *st, struct pstate *ps, const struct event *ev)
{
    struct engage *g = st;
    if (ev->type == EV_MODULE && ev->u.module.completed)
        add_module(g, ps, ev);
    const struct aep_log *log = app_family_log(ps);
    /* an event that ends an unlock a closed day saw open (it closed after screen_hold) */
    if (ev->type == EV_SCREEN && log && log->resolved != INT64_MIN &&
        log->resolved < g->closed_end)
        g->dirty = 1;
}

static void engage_late(void *st, struct pstate *ps, const struct event *ev)
{
    struct engage *g = st;
    if (ev->type == EV_MODULE && ev->u.module.completed)
        add_module(g, ps, ev);
    if (ev_is_phone(ev->type))
        g->dirty = 1;
}

static int engage_ready(void *st, struct pstate *ps, const struct day_window *w, int64_t wm,
                        int finishing)
{
    (void)st;
    struct aep_log *log = app_family_log(ps);
    if (finishing || !log || aep_open_unlock_at(log, w->end) == INT64_MIN)
        return 1;
    return wm >= w->end + pstate_conf(ps)->screen_hold_ms;
}

/* ---- one day -------------------------------------------------------------------------- */

struct acc {
    const struct day_window *w;
    int64_t gap, night_a, night_b;
    int in_session;
    int64_t session_end;
    size_t sessions;
    int64_t use_ms, night_ms;
};

static int64_t overlap(int64_t a, int64_t b, int64_t lo, int64_t hi)
{
    int64_t s = a > lo ? a : lo, e = b < hi ? b : hi;
    return e > s ? e - s : 0;
}

static void on_episode(void *ud, const struct aep_episode *e)
{
    struct acc *c = ud;
    if (!(e->flags & AEP_INTERVENTION))
        return;
    /* episodes come in time order and never overlap */
    if (c->in_session && e->start - c->session_end < c->gap) {
        if (e->end > c->session_end)
            c->session_end = e->end;
    } else {
        c->in_session = 1;
        c->session_end = e->end;
        if (e->start >= c->w->start && e->start < c->w->end)
            c->sessions++;
    }
    c->use_ms += overlap(e->start, e->end, c->w->start, c->w->end);
}

static void on_unlock(void *ud, const struct aep_episode *e)
{
    struct acc *c = ud;
    c->night_ms += overlap(e->start, e->end, c->night_a, c->night_b);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Distinct module ids completed on the day (a module re-sent as completed counts once). */
static size_t modules_on(const struct engage *g, const struct day_window *w)
{
    size_t n = 0;
    uint64_t *h = malloc((g->n_mod ? g->n_mod : 1) * sizeof *h);
    if (!h)
        return 0;
    for (size_t i = 0; i < g->n_mod; i++)
        if (g->mod[i].ts >= w->start && g->mod[i].ts < w->end)
            h[n++] = g->mod[i].hash;
    qsort(h, n, sizeof *h, cmp_u64);
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += i == 0 || h[i] != h[i - 1];
    free(h);
    return count;
}

static int has_apps(const struct pstate *ps)
{
    const struct pipeline_participant_conf *pc = pstate_pconf(ps);
    return pc && pc->n_apps > 0;
}

/* The day's own values: sessions, minutes, activity, modules, night use. */
static void compute_own(const struct engage *g, struct pstate *ps, const struct day_window *w,
                        struct eday *d)
{
    struct acc c;
    memset(&c, 0, sizeof c);
    c.w = w;
    c.gap = pstate_conf(ps)->engage_session_gap_ms;
    int64_t a = tz_local_to_utc(w->zone, w->day * DAY_MS);
    int64_t b = tz_local_to_utc(w->zone, w->day * DAY_MS + NIGHT_END_MS);
    c.night_a = a > w->start ? a : w->start;
    c.night_b = b < w->end ? b : w->end;
    struct aep_visitor v = {.app_episode = on_episode, .unlock = on_unlock, .ud = &c};
    const struct aep_log *log = app_family_log(ps);
    if (log) /* from a gap before the day: a session may go on from the day before */
        aep_walk(log, w->start - c.gap, w->end, &v);

    memset(d, 0, sizeof *d);
    d->w = *w;
    d->coverage = pstate_phone_coverage(ps, w->start, w->end);
    d->active = c.use_ms > 0;
    size_t mods = modules_on(g, w);
    d->v[F_SESS] = (double)c.sessions;
    d->v[F_MIN] = (double)c.use_ms / 60000.0;
    d->v[F_MOD] = (double)mods;
    d->v[F_NIGHT] = (double)c.night_ms / 60000.0;
    d->has[F_MOD] = d->has[F_NIGHT] = 1;
    d->has[F_SESS] = d->has[F_MIN] = (unsigned char)has_apps(ps);
    d->emitted = d->coverage > 0 || c.sessions || c.use_ms || mods || c.night_ms;
}

/* The values that look back: days since the last active day and the 7-day ones, from the
 * cached days before index idx (all older than d). */
static void compute_back(const struct engage *g, struct pstate *ps, size_t idx, struct eday *d)
{
    int64_t a, b;
    cal_7d(pstate_tzline(ps), &d->w, &a, &b);
    d->coverage7 = pstate_phone_coverage(ps, a, b);
    int64_t last = g->last_active_gone;
    int64_t dates[8]; /* active local dates in the 7-day window, each once */
    size_t active7 = 0;
    for (size_t i = 0; i <= idx; i++) {
        const struct eday *o = i < idx ? &g->cache[i] : d;
        if (!o->active)
            continue;
        if (o->w.day > last)
            last = o->w.day;
        if (o->w.start < a || o->w.end > b)
            continue;
        /* a date cut by a tz switch has two windows, and travelling west repeats a date */
        size_t k = 0;
        while (k < active7 && dates[k] != o->w.day)
            k++;
        if (k == active7 && active7 < 8)
            dates[active7++] = o->w.day;
    }
    if (active7 > 7)
        active7 = 7;
    int apps = has_apps(ps);
    d->has[F_DSL] = (unsigned char)(apps && last != INT64_MIN);
    /* after travelling west the last active date can be later than this one: 0, not < 0 */
    d->v[F_DSL] = d->has[F_DSL] && d->w.day > last ? (double)(d->w.day - last) : 0;
    d->has[F_ACT7] = d->has[F_ADH7] = (unsigned char)apps;
    d->v[F_ACT7] = apps ? (double)active7 : 0;
    if (apps) {
        double presc = pstate_pconf(ps)->prescribed_days_per_week;
        double r = presc > 0 ? (double)active7 / presc : 0;
        d->v[F_ADH7] = r > 1 ? 1 : r;
    }
}

static void emit(struct pstate *ps, const struct eday *d)
{
    int64_t a, b;
    cal_7d(pstate_tzline(ps), &d->w, &a, &b);
    for (int k = 0; k < N_FEAT; k++) {
        if (feat_7d[k])
            pstate_emit(ps, WIN_7D, a, b, &d->w, feat_name[k], d->has[k], d->v[k],
                        feat_unit[k], d->coverage7, d->revision);
        else
            pstate_emit_day(ps, &d->w, feat_name[k], d->has[k], d->v[k], feat_unit[k],
                            d->coverage, d->revision);
    }
}

static int same_vals(const struct eday *x, const struct eday *y)
{
    if (x->emitted != y->emitted || x->coverage != y->coverage || x->coverage7 != y->coverage7)
        return 0;
    for (int k = 0; k < N_FEAT; k++)
        if (x->has[k] != y->has[k] || x->v[k] != y->v[k])
            return 0;
    return 1;
}

static void flush_revisions(struct engage *g, struct pstate *ps)
{
    if (!g->dirty)
        return;
    g->dirty = 0;
    for (size_t i = 0; i < g->n_cache; i++) {
        struct eday *old = &g->cache[i];
        if (old->w.start < g->kept_from)
            continue; /* its events are gone; nothing it depends on can change either */
        struct eday d;
        compute_own(g, ps, &old->w, &d);
        compute_back(g, ps, i, &d);
        if (same_vals(&d, old))
            continue;
        d.revision = old->emitted ? old->revision + 1 : 0;
        if (d.emitted)
            emit(ps, &d);
        *old = d;
    }
}

static void engage_revise(void *st, struct pstate *ps, const struct day_window *w)
{
    (void)w;
    flush_revisions(st, ps);
}

static void trim(struct engage *g, struct pstate *ps, const struct day_window *w)
{
    int64_t keep = aep_horizon(pstate_conf(ps), w); /* as the app family trims its log */
    if (keep > g->kept_from)
        g->kept_from = keep;
    /* the 7-day windows of the days still recomputed (from kept_from on) and of later days
     * reach back at most 7 local days (8 for safety) */
    int64_t oldest = g->kept_from < w->start ? g->kept_from : w->start;
    int64_t back7 = oldest - 8 * DAY_MS;
    size_t k = 0;
    while (k < g->n_cache && ((g->cache[k].w.start < g->kept_from && g->cache[k].w.end <= back7) ||
                              g->n_cache - k >= CACHE_MAX)) {
        if (g->cache[k].active && g->cache[k].w.day > g->last_active_gone)
            g->last_active_gone = g->cache[k].w.day;
        k++;
    }
    if (k) {
        memmove(g->cache, g->cache + k, (g->n_cache - k) * sizeof *g->cache);
        g->n_cache -= k;
    }
    size_t m = 0;
    while (m < g->n_mod && g->mod[m].ts < g->kept_from)
        m++;
    if (m) {
        memmove(g->mod, g->mod + m, (g->n_mod - m) * sizeof *g->mod);
        g->n_mod -= m;
    }
}

static void engage_close(void *st, struct pstate *ps, const struct day_window *w)
{
    struct engage *g = st;
    /* the app family has just trimmed its log for this day: forget the same days first */
    trim(g, ps, w);
    flush_revisions(g, ps);
    struct eday d;
    compute_own(g, ps, w, &d);
    compute_back(g, ps, g->n_cache, &d);
    if (d.emitted)
        emit(ps, &d);
    g->closed_end = w->end;
    if (g->n_cache == g->cap_cache) {
        size_t cap = g->cap_cache ? g->cap_cache * 2 : 8;
        struct eday *p = realloc(g->cache, cap * sizeof *p);
        if (!p) { /* this day cannot be revised; its activity still counts for later days */
            if (d.active && d.w.day > g->last_active_gone)
                g->last_active_gone = d.w.day;
            return;
        }
        g->cache = p;
        g->cap_cache = cap;
    }
    g->cache[g->n_cache++] = d;
}

const struct family_ops family_engage = {
    .name = "engage",
    .types = EV_BIT(EV_SCREEN) | EV_BIT(EV_MODULE),
    .state_new = engage_new,
    .state_free = engage_free,
    .on_event = engage_event,
    .day_ready = engage_ready,
    .close_day = engage_close,
    .on_late_event = engage_late,
    .revise_day = engage_revise,
};
