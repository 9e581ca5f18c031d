/* Prompt (EMA) features per participant-local day (spec §4 ema.*, adherence.ema_7d), from the
 * prompt lifecycle of ../shared/reference/engagement.md §6.4. Rules (docs/features.md):
 *  - a prompt (by id) is delivered if it has a `delivered`, `displayed`, `opened`, `answered`
 *    or `dismissed` event; its delivery time t_d is the earliest of those (so an answer without
 *    a logged delivery counts as delivered, at the earliest sign of it). `scheduled` alone is
 *    not a delivery and never sets t_d; an `expired` without any of them is not counted.
 *  - its outcome is the earliest `answered`, `dismissed` or `expired` at or before
 *    t_d + ema_expire (ties: answered, then dismissed, then expired); with none it is expired
 *    once event time passes t_d + ema_expire. An answer after that is too late: the prompt
 *    stays expired. So a prompt's outcome depends only on its events up to t_d + ema_expire,
 *    which is exactly how long its day waits before closing.
 *  - outcomes count on the local day of t_d.
 * Revisions: a late event is inserted into the kept prompts; every kept closed day (and its
 * 7-day values, which a change can reach up to six days later) is recomputed and re-emitted
 * with revision + 1 only where a record changed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/family.h"

#define MAX_PROMPTS 1024 /* prompts kept per participant */
#define CACHE_DAYS 32
#define DAY_MS 86400000LL

enum { F_DELIV, F_ANS, F_EXP, F_COMPL, F_COMPL7, F_LAT, F_ADH7, N_FEAT };
static const char *const feat_name[N_FEAT] = {
    "ema.delivered", "ema.answered", "ema.expired", "ema.compliance", "ema.compliance_7d",
    "ema.latency_median_s", "adherence.ema_7d",
};
static const char *const feat_unit[N_FEAT] = {
    "count", "count", "count", "ratio", "ratio", "s", "ratio",
};

#define NO_TS INT64_MAX

struct prompt {
    char *id;
    int64_t first[EMA_EXPIRED + 1]; /* earliest event of each state, NO_TS if none */
};

struct day_vals {
    struct day_window w;
    int emitted, revision, recomputable;
    int delivered, answered, expired, pending;
    int has[N_FEAT];
    double v[N_FEAT];
    double coverage, coverage7;
};

struct ema {
    struct prompt *p;
    size_t n, cap;
    int64_t clock;      /* event time known to have passed: newest event or watermark */
    int64_t kept_from;  /* prompts delivered before this were dropped */
    int dirty;          /* late events applied since the last recomputation */
    int64_t closed_end; /* end of the newest closed day */
    struct day_vals cache[CACHE_DAYS];
    size_t n_cache;
};

static void *ema_new(struct pstate *ps)
{
    (void)ps;
    struct ema *s = calloc(1, sizeof *s);
    if (s) {
        s->clock = INT64_MIN;
        s->kept_from = INT64_MIN;
    }
    return s;
}

static void ema_free(void *st)
{
    struct ema *s = st;
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->p[i].id);
    free(s->p);
    free(s);
}

static int64_t deliv_time(const struct prompt *p)
{
    static const int implying[] = {EMA_DELIVERED, EMA_DISPLAYED, EMA_OPENED, EMA_ANSWERED,
                                   EMA_DISMISSED};
    int64_t t = NO_TS;
    for (size_t k = 0; k < sizeof implying / sizeof implying[0]; k++)
        if (p->first[implying[k]] < t)
            t = p->first[implying[k]];
    return t;
}

enum outcome { O_PENDING, O_ANSWERED, O_DISMISSED, O_EXPIRED };

/* Outcome of a delivered prompt given that event time `clock` has passed. */
static enum outcome outcome_of(const struct prompt *p, int64_t td, int64_t expire, int64_t clock)
{
    int64_t lim = td + expire;
    int64_t ta = p->first[EMA_ANSWERED], tdis = p->first[EMA_DISMISSED],
            te = p->first[EMA_EXPIRED];
    int64_t best = NO_TS;
    enum outcome o = O_PENDING;
    if (ta <= lim && ta < best) {
        best = ta;
        o = O_ANSWERED;
    }
    if (tdis <= lim && tdis < best) {
        best = tdis;
        o = O_DISMISSED;
    }
    if (te <= lim && te < best)
        o = O_EXPIRED;
    if (o == O_PENDING && clock >= lim)
        o = O_EXPIRED;
    return o;
}

static void ema_event(void *st, struct pstate *ps, const struct event *ev)
{
    struct ema *s = st;
    if (ev->ts > s->clock)
        s->clock = ev->ts;
    if (ev->type != EV_EMA)
        return;
    int state = ev->u.ema.state;
    if (state < 0 || state > EMA_EXPIRED)
        return;
    struct prompt *p = NULL;
    for (size_t i = s->n; i-- > 0;) /* recent prompts last: search backwards */
        if (strcmp(s->p[i].id, ev->u.ema.prompt) == 0) {
            p = &s->p[i];
            break;
        }
    if (!p) {
        if (s->n >= MAX_PROMPTS) {
            pstate_count_discarded(ps, 1);
            return;
        }
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 16;
            struct prompt *q = realloc(s->p, cap * sizeof *q);
            if (!q) {
                pstate_count_discarded(ps, 1);
                return;
            }
            s->p = q;
            s->cap = cap;
        }
        char *id = strdup(ev->u.ema.prompt);
        if (!id) {
            pstate_count_discarded(ps, 1);
            return;
        }
        p = &s->p[s->n++];
        p->id = id;
        for (int k = 0; k <= EMA_EXPIRED; k++)
            p->first[k] = NO_TS;
    }
    if (ev->ts < p->first[state])
        p->first[state] = ev->ts;
    /* a prompt delivered on a closed day whose outcome was still open there (only possible
     * for one a late event added): recompute the closed days at the next occasion */
    if (deliv_time(p) < s->closed_end)
        s->dirty = 1;
}

static void ema_late(void *st, struct pstate *ps, const struct event *ev)
{
    struct ema *s = st;
    int64_t clock = s->clock;
    ema_event(st, ps, ev);
    s->clock = clock; /* a late event does not move event time forward */
    /* prompts, or the phone coverage the records carry, may have changed */
    if (ev_is_phone(ev->type))
        s->dirty = 1;
}

static int ema_ready(void *st, struct pstate *ps, const struct day_window *w, int64_t wm,
                     int finishing)
{
    struct ema *s = st;
    if (finishing)
        return 1;
    if (wm > s->clock)
        s->clock = wm;
    int64_t expire = pstate_conf(ps)->ema_expire_ms;
    for (size_t i = 0; i < s->n; i++) {
        int64_t td = deliv_time(&s->p[i]);
        if (td < w->start || td >= w->end)
            continue;
        if (outcome_of(&s->p[i], td, expire, wm) == O_PENDING)
            return 0;
    }
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The day's own counts and latency (not the 7-day values). */
static void compute_day(const struct ema *s, struct pstate *ps, const struct day_window *w,
                        struct day_vals *d)
{
    int64_t expire = pstate_conf(ps)->ema_expire_ms;
    d->delivered = d->answered = d->expired = d->pending = 0;
    size_t n_lat = 0;
    double *lat = NULL;
    for (size_t i = 0; i < s->n; i++) {
        const struct prompt *p = &s->p[i];
        int64_t td = deliv_time(p);
        if (td < w->start || td >= w->end)
            continue;
        d->delivered++;
        enum outcome o = outcome_of(p, td, expire, s->clock);
        if (o == O_ANSWERED) {
            d->answered++;
            /* latency only when some sign of delivery precedes the answer */
            if (td < p->first[EMA_ANSWERED]) {
                double *q = realloc(lat, (n_lat + 1) * sizeof *q);
                if (q) {
                    lat = q;
                    lat[n_lat++] = (double)(p->first[EMA_ANSWERED] - td) / 1000.0;
                }
            }
        } else if (o == O_EXPIRED) {
            d->expired++;
        } else if (o == O_PENDING) {
            d->pending++;
        }
    }
    d->coverage = pstate_phone_coverage(ps, w->start, w->end);
    d->emitted = d->delivered > 0 || d->coverage > 0;
    for (int k = 0; k < N_FEAT; k++) {
        d->has[k] = 0;
        d->v[k] = 0;
    }
    d->has[F_DELIV] = d->has[F_ANS] = d->has[F_EXP] = 1;
    d->v[F_DELIV] = d->delivered;
    d->v[F_ANS] = d->answered;
    d->v[F_EXP] = d->expired;
    if (d->delivered) {
        d->has[F_COMPL] = 1;
        d->v[F_COMPL] = (double)d->answered / (double)d->delivered;
    }
    if (n_lat) {
        qsort(lat, n_lat, sizeof *lat, cmp_double);
        d->has[F_LAT] = 1;
        d->v[F_LAT] = n_lat % 2 ? lat[n_lat / 2] : (lat[n_lat / 2 - 1] + lat[n_lat / 2]) / 2.0;
    }
    free(lat);
}

/* The 7-day values of cache[idx] from the counts of the cached days in its 7-day window. */
static void compute_7d(const struct ema *s, struct pstate *ps, size_t idx, struct day_vals *d)
{
    int64_t a, b;
    cal_7d(pstate_tzline(ps), &d->w, &a, &b);
    d->coverage7 = pstate_phone_coverage(ps, a, b);
    int deliv = d->delivered, ans = d->answered;
    int ddays = d->delivered > 0, adays = d->answered > 0;
    for (size_t i = 0; i < idx; i++) {
        const struct day_vals *o = &s->cache[i];
        if (o->w.start >= a && o->w.end <= b) {
            deliv += o->delivered;
            ans += o->answered;
            ddays += o->delivered > 0;
            adays += o->answered > 0;
        }
    }
    d->has[F_COMPL7] = deliv > 0;
    d->v[F_COMPL7] = deliv ? (double)ans / (double)deliv : 0;
    d->has[F_ADH7] = ddays > 0;
    d->v[F_ADH7] = ddays ? (double)adays / (double)ddays : 0;
}

static void emit(struct pstate *ps, const struct day_vals *d)
{
    int64_t a, b;
    cal_7d(pstate_tzline(ps), &d->w, &a, &b);
    for (int k = 0; k < N_FEAT; k++) {
        if (k == F_COMPL7 || k == F_ADH7)
            pstate_emit(ps, WIN_7D, a, b, &d->w, feat_name[k], d->has[k], d->v[k],
                        feat_unit[k], d->coverage7, d->revision);
        else
            pstate_emit_day(ps, &d->w, feat_name[k], d->has[k], d->v[k], feat_unit[k],
                            d->coverage, d->revision);
    }
}

static int same_vals(const struct day_vals *a, const struct day_vals *b)
{
    if (a->emitted != b->emitted || a->coverage != b->coverage || a->coverage7 != b->coverage7)
        return 0;
    for (int k = 0; k < N_FEAT; k++)
        if (a->has[k] != b->has[k] || a->v[k] != b->v[k])
            return 0;
    return 1;
}

/* After late events: recompute every kept closed day whose prompts are still kept, oldest
 * first (a day's 7-day values use the fresh counts of the days before it), and re-emit the
 * days whose records changed. */
static void flush_revisions(struct ema *s, struct pstate *ps)
{
    if (!s->dirty)
        return;
    s->dirty = 0;
    for (size_t i = 0; i < s->n_cache; i++) {
        struct day_vals *old = &s->cache[i];
        struct day_vals d = *old;
        if (old->recomputable)
            compute_day(s, ps, &old->w, &d);
        else
            d.coverage = pstate_phone_coverage(ps, d.w.start, d.w.end);
        compute_7d(s, ps, i, &d);
        if (same_vals(&d, old))
            continue;
        d.revision = old->emitted ? old->revision + 1 : 0;
        if (d.emitted)
            emit(ps, &d);
        *old = d;
    }
}

static void ema_close(void *st, struct pstate *ps, const struct day_window *w)
{
    struct ema *s = st;
    /* a closed day with a prompt still pending (added by a late event less than ema_expire
     * before the watermark) changes when event time passes its expiry */
    for (size_t i = 0; i < s->n_cache; i++)
        if (s->cache[i].pending && s->cache[i].recomputable)
            s->dirty = 1;
    flush_revisions(s, ps);
    struct day_vals d;
    memset(&d, 0, sizeof d);
    d.w = *w;
    d.recomputable = 1;
    compute_day(s, ps, w, &d);
    if (s->n_cache == CACHE_DAYS) {
        memmove(s->cache, s->cache + 1, (CACHE_DAYS - 1) * sizeof *s->cache);
        s->n_cache--;
    }
    s->cache[s->n_cache] = d;
    compute_7d(s, ps, s->n_cache, &s->cache[s->n_cache]);
    if (s->cache[s->n_cache].emitted)
        emit(ps, &s->cache[s->n_cache]);
    s->n_cache++;
    s->closed_end = w->end;

    /* Drop prompts delivered before any day a late event can still change: a late event is
     * at most `revise` behind the watermark and can only touch a prompt delivered up to
     * ema_expire before it (an answer later than that does not count); keep a day's margin. */
    const struct pipeline_conf *c = pstate_conf(ps);
    int64_t keep = w->end - c->revise_ms - c->ema_expire_ms - 2 * DAY_MS;
    size_t j = 0;
    for (size_t i = 0; i < s->n; i++) {
        int64_t t = deliv_time(&s->p[i]);
        if (t == NO_TS) /* never delivered: its earliest event */
            for (int k = 0; k <= EMA_EXPIRED; k++)
                if (s->p[i].first[k] < t)
                    t = s->p[i].first[k];
        if (t < keep) {
            free(s->p[i].id);
            continue;
        }
        s->p[j++] = s->p[i];
    }
    s->n = j;
    if (keep > s->kept_from) {
        s->kept_from = keep;
        for (size_t i = 0; i < s->n_cache; i++)
            if (s->cache[i].w.start < keep)
                s->cache[i].recomputable = 0;
    }
}

static void ema_revise(void *st, struct pstate *ps, const struct day_window *w)
{
    (void)w;
    flush_revisions(st, ps);
}

const struct family_ops family_ema = {
    .name = "ema",
    .types = EV_BIT(EV_EMA),
    .state_new = ema_new,
    .state_free = ema_free,
    .on_event = ema_event,
    .day_ready = ema_ready,
    .close_day = ema_close,
    .on_late_event = ema_late,
    .revise_day = ema_revise,
};
