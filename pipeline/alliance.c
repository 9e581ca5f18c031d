/* Working alliance (spec §4 alliance.dwai): the mean of the six D-WAI items (the parser has
 * already rejected responses without exactly six items in 1..5).
 *  - window `event`: one record per response, start = end = its time, emitted when the
 *    response is applied (in event-time order; a late response when it arrives), coverage 1
 *    (the response is itself phone data at that instant);
 *  - window `day`: the latest response at or before the end of the day (last observation
 *    carried forward: a day without a response shows the latest one so far), null before the
 *    first response. The event records show when each response was given. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/family.h"
#include "pipeline/sources.h"

#define MAX_RESP 256
#define CACHE_DAYS 32

struct resp {
    int64_t ts;
    double mean;
};

struct aday {
    struct day_window w;
    int emitted, revision, recomputable, has;
    double v, coverage;
};

struct alliance {
    struct resp *r;      /* sorted by time, ties in arrival order */
    size_t n, cap;
    int has_before;      /* latest response among those dropped */
    struct resp before;
    int dirty;
    struct aday cache[CACHE_DAYS];
    size_t n_cache;
};

static void *alliance_new(struct pstate *ps) { (void)ps; return calloc(1, sizeof(struct alliance)); }

static void alliance_free(void *st)
{
    struct alliance *a = st;
    if (a)
        free(a->r);
    free(a);
}

static int add(struct alliance *a, struct pstate *ps, const struct event *ev, double *mean)
{
    double sum = 0;
    for (int k = 0; k < 6; k++)
        sum += ev->u.dwai.items[k];
    *mean = sum / 6.0;
    if (a->n >= MAX_RESP) {
        /* drop the oldest, remembering it for the carried-forward day value */
        a->has_before = 1;
        a->before = a->r[0];
        memmove(a->r, a->r + 1, (a->n - 1) * sizeof *a->r);
        a->n--;
        pstate_count_discarded(ps, 1);
    }
    if (vec_grow((void **)&a->r, &a->cap, a->n + 1, sizeof *a->r) < 0)
        return -1;
    size_t at = a->n;
    while (at > 0 && a->r[at - 1].ts > ev->ts)
        at--;
    memmove(a->r + at + 1, a->r + at, (a->n - at) * sizeof *a->r);
    a->r[at] = (struct resp){ev->ts, *mean};
    a->n++;
    return 0;
}

static void alliance_event(void *st, struct pstate *ps, const struct event *ev)
{
    struct alliance *a = st;
    if (ev->type != EV_DWAI)
        return;
    double mean;
    if (add(a, ps, ev, &mean) < 0)
        return;
    struct day_window w;
    cal_day_at(pstate_tzline(ps), ev->ts, &w);
    pstate_emit(ps, WIN_EVENT, ev->ts, ev->ts, &w, "alliance.dwai", 1, mean, "score", 1.0, 0);
}

static void alliance_late(void *st, struct pstate *ps, const struct event *ev)
{
    struct alliance *a = st;
    alliance_event(st, ps, ev);
    if (ev_is_phone(ev->type))
        a->dirty = 1; /* the value or the phone coverage may have changed */
}

static int alliance_ready(void *st, struct pstate *ps, const struct day_window *w, int64_t wm,
                          int finishing)
{
    (void)st, (void)ps, (void)w, (void)wm, (void)finishing;
    return 1;
}

static void compute(const struct alliance *a, struct pstate *ps, struct aday *d)
{
    size_t i = a->n;
    while (i > 0 && a->r[i - 1].ts >= d->w.end)
        i--;
    d->has = 0;
    d->v = 0;
    if (i > 0) {
        d->has = 1;
        d->v = a->r[i - 1].mean;
    } else if (a->has_before) {
        d->has = 1;
        d->v = a->before.mean;
    }
    d->coverage = pstate_phone_coverage(ps, d->w.start, d->w.end);
    int any = i > 0 && a->r[i - 1].ts >= d->w.start;
    d->emitted = any || d->coverage > 0;
}

static void emit(struct pstate *ps, const struct aday *d)
{
    pstate_emit_day(ps, &d->w, "alliance.dwai", d->has, d->v, "score", d->coverage, d->revision);
}

static void flush_revisions(struct alliance *a, struct pstate *ps)
{
    if (!a->dirty)
        return;
    a->dirty = 0;
    for (size_t i = 0; i < a->n_cache; i++) {
        struct aday *old = &a->cache[i];
        struct aday d = *old;
        if (old->recomputable)
            compute(a, ps, &d);
        else
            d.coverage = pstate_phone_coverage(ps, d.w.start, d.w.end);
        if (d.emitted == old->emitted && d.has == old->has && d.v == old->v &&
            d.coverage == old->coverage)
            continue;
        d.revision = old->emitted ? old->revision + 1 : 0;
        if (d.emitted)
            emit(ps, &d);
        *old = d;
    }
}

static void alliance_close(void *st, struct pstate *ps, const struct day_window *w)
{
    struct alliance *a = st;
    flush_revisions(a, ps);
    struct aday d;
    memset(&d, 0, sizeof d);
    d.w = *w;
    d.recomputable = 1;
    compute(a, ps, &d);
    if (d.emitted)
        emit(ps, &d);
    if (a->n_cache == CACHE_DAYS) {
        memmove(a->cache, a->cache + 1, (CACHE_DAYS - 1) * sizeof *a->cache);
        a->n_cache--;
    }
    a->cache[a->n_cache++] = d;
    /* drop responses no late event can precede any more, keeping the newest of them */
    int64_t keep = w->end - pstate_conf(ps)->revise_ms - 86400000LL;
    size_t k = 0;
    while (k < a->n && a->r[k].ts < keep)
        k++;
    if (k) {
        a->has_before = 1;
        a->before = a->r[k - 1];
        memmove(a->r, a->r + k, (a->n - k) * sizeof *a->r);
        a->n -= k;
    }
    for (size_t i = 0; i < a->n_cache; i++)
        if (a->cache[i].w.end <= keep)
            a->cache[i].recomputable = 0;
}

static void alliance_revise(void *st, struct pstate *ps, const struct day_window *w)
{
    (void)w;
    flush_revisions(st, ps);
}

const struct family_ops family_alliance = {
    .name = "alliance",
    .types = EV_BIT(EV_DWAI),
    .state_new = alliance_new,
    .state_free = alliance_free,
    .on_event = alliance_event,
    .day_ready = alliance_ready,
    .close_day = alliance_close,
    .on_late_event = alliance_late,
    .revise_day = alliance_revise,
};
