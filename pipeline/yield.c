/* Data yield (spec §4 yield.phone, yield.wearable): the fraction of a local day's minutes
 * holding at least one phone event (screen, app, ema, module, dwai, nudge_ack, battery), or
 * wearable data (the span of a counts epoch or an accel block; a steps, hr or wear event). Minutes are counted RAPIDS
 * style from the day start: bin = floor((t - start) / 60 s), so a 23 h day has 1380 bins and a
 * 25 h day 1500 (a day cut by a time-zone switch has ceil(length / 1 min)). One bitmap per day,
 * kept while the day can still be revised. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/family.h"

#define MIN_MS 60000LL
#define MAX_BINS 1536 /* > 25 h of minutes */
#define N_DAYS 16     /* open days plus the revisable ones (revise is at most 7 d) */

struct yday {
    struct day_window w;
    int closed, emitted, revision;
    double value, coverage;
    uint64_t bits[MAX_BINS / 64];
};

/* One stream's days. */
struct ystream {
    struct yday d[N_DAYS]; /* oldest first */
    size_t n;
    size_t cur;            /* index of the day of the last event, or N_DAYS */
    int seen;              /* the participant has sent this stream: every later day has a
                            * record, 0 on the days it is silent */
};

struct yield {
    struct ystream phone;
    struct ystream *wear;  /* allocated with the participant's first wearable event */
};

static void *yield_new(struct pstate *ps)
{
    (void)ps;
    struct yield *y = calloc(1, sizeof *y);
    if (y)
        y->phone.cur = N_DAYS;
    return y;
}

static void yield_free(void *st)
{
    struct yield *y = st;
    if (y)
        free(y->wear);
    free(y);
}

/* How long an event's data lasts: an epoch or a block of samples; other events are points. */
static int64_t span_ms(const struct event *ev)
{
    if (ev->type == EV_COUNTS)
        return (int64_t)ev->u.counts.epoch_s * 1000;
    if (ev->type == EV_ACCEL && ev->u.accel.hz > 0)
        return (int64_t)((double)ev->u.accel.n * 1000.0 / ev->u.accel.hz);
    return 1;
}

static size_t n_bins(const struct day_window *w)
{
    size_t n = (size_t)((w->end - w->start + MIN_MS - 1) / MIN_MS);
    return n > MAX_BINS ? MAX_BINS : n;
}

/* The kept day containing t, created (in order) if it is newer than every kept day. */
static struct yday *day_for(struct ystream *y, struct pstate *ps, int64_t t)
{
    if (y->cur < y->n && t >= y->d[y->cur].w.start && t < y->d[y->cur].w.end)
        return &y->d[y->cur];
    for (size_t i = y->n; i-- > 0;)
        if (t >= y->d[i].w.start && t < y->d[i].w.end) {
            y->cur = i;
            return &y->d[i];
        }
    struct day_window w;
    cal_day_at(pstate_tzline(ps), t, &w);
    if (y->n && w.start < y->d[y->n - 1].w.end)
        return NULL; /* older than the kept days (or a window a time-zone switch replaced) */
    if (y->n == N_DAYS) {
        pstate_count_discarded(ps, 1);
        memmove(y->d, y->d + 1, (N_DAYS - 1) * sizeof *y->d);
        y->n--;
    }
    struct yday *d = &y->d[y->n];
    memset(d, 0, sizeof *d);
    d->w = w;
    y->cur = y->n++;
    return d;
}

/* The open day may have been cut at a time-zone switch: forget the windows that start at or
 * after it, and end an open one there (the core recomputes its day the same way). */
static void stream_switch(struct ystream *y, struct pstate *ps, int64_t ts)
{
    while (y->n && !y->d[y->n - 1].closed && y->d[y->n - 1].w.start >= ts)
        y->n--;
    if (y->n && !y->d[y->n - 1].closed && y->d[y->n - 1].w.end > ts) {
        struct day_window w;
        cal_day_at(pstate_tzline(ps), y->d[y->n - 1].w.start, &w);
        if (w.start == y->d[y->n - 1].w.start)
            y->d[y->n - 1].w = w;
        else
            y->n--;
    }
    y->cur = N_DAYS;
}

static void set_bins(struct yday *d, int64_t from, int64_t to)
{
    for (int64_t bin = (from - d->w.start) / MIN_MS; bin < MAX_BINS; bin++) {
        if (bin >= 0)
            d->bits[bin / 64] |= (uint64_t)1 << (bin % 64);
        if (d->w.start + (bin + 1) * MIN_MS >= to)
            break;
    }
}

/* Marks the minutes of [t, t + span) in the stream's days (several if it crosses midnight);
 * late: only days already kept, closed or not. */
static void mark(struct ystream *y, struct pstate *ps, int64_t t, int64_t span, int late)
{
    int64_t end = t + (span > 0 ? span : 1);
    while (t < end) {
        struct yday *d = NULL;
        if (late) {
            for (size_t i = 0; i < y->n && !d; i++)
                if (t >= y->d[i].w.start && t < y->d[i].w.end)
                    d = &y->d[i];
        } else {
            d = day_for(y, ps, t);
        }
        if (!d)
            return;
        int64_t stop = end < d->w.end ? end : d->w.end;
        set_bins(d, t, stop);
        t = stop;
    }
}

static struct ystream *stream_of(struct yield *y, const struct event *ev)
{
    if (ev_is_phone(ev->type)) {
        y->phone.seen = 1;
        return &y->phone;
    }
    if (!ev_is_wearable(ev->type))
        return NULL;
    if (!y->wear) {
        y->wear = calloc(1, sizeof *y->wear);
        if (y->wear) {
            y->wear->cur = N_DAYS;
            y->wear->seen = 1;
        }
    }
    return y->wear;
}

static void yield_event(void *st, struct pstate *ps, const struct event *ev)
{
    struct yield *y = st;
    if (ev->type == EV_TZ) {
        stream_switch(&y->phone, ps, ev->ts);
        if (y->wear)
            stream_switch(y->wear, ps, ev->ts);
        return;
    }
    struct ystream *s = stream_of(y, ev);
    if (s)
        mark(s, ps, ev->ts, span_ms(ev), 0);
}

static int yield_ready(void *st, struct pstate *ps, const struct day_window *w, int64_t wm,
                       int finishing)
{
    (void)st, (void)ps, (void)w, (void)wm, (void)finishing;
    return 1;
}

static struct yday *find(struct ystream *y, const struct day_window *w)
{
    for (size_t i = 0; i < y->n; i++)
        if (y->d[i].w.start == w->start)
            return &y->d[i];
    return NULL;
}

static const char *const stream_feature[2] = {"yield.phone", "yield.wearable"};

static void compute(struct pstate *ps, int wearable, const struct day_window *w,
                    const struct yday *d, int seen, double *value, double *coverage,
                    int *emitted)
{
    size_t nb = n_bins(w), set = 0;
    if (d)
        for (size_t b = 0; b < nb; b++)
            set += (d->bits[b / 64] >> (b % 64)) & 1;
    *value = nb ? (double)set / (double)nb : 0;
    *coverage = wearable ? pstate_wearable_coverage(ps, w->start, w->end)
                         : pstate_phone_coverage(ps, w->start, w->end);
    *emitted = set > 0 || *coverage > 0 || seen;
}

static void stream_close(struct ystream *y, struct pstate *ps, int wearable,
                         const struct day_window *w)
{
    struct yday *d = find(y, w);
    double v, cov;
    int em;
    compute(ps, wearable, w, d, y->seen, &v, &cov, &em);
    if (em)
        pstate_emit_day(ps, w, stream_feature[wearable], 1, v, "ratio", cov, 0);
    if (!d) {
        /* remember what was emitted, for revisions */
        if (y->n == N_DAYS) {
            memmove(y->d, y->d + 1, (N_DAYS - 1) * sizeof *y->d);
            y->n--;
        }
        size_t at = y->n;
        while (at > 0 && y->d[at - 1].w.start > w->start)
            at--;
        memmove(y->d + at + 1, y->d + at, (y->n - at) * sizeof *y->d);
        d = &y->d[at];
        memset(d, 0, sizeof *d);
        y->n++;
        y->cur = N_DAYS;
    }
    d->w = *w;
    d->closed = 1;
    d->emitted = em;
    d->value = v;
    d->coverage = cov;
    /* forget days no late event can reach */
    int64_t keep = w->end - pstate_conf(ps)->revise_ms - 86400000LL;
    size_t k = 0;
    while (k < y->n && y->d[k].closed && y->d[k].w.end < keep)
        k++;
    if (k) {
        memmove(y->d, y->d + k, (y->n - k) * sizeof *y->d);
        y->n -= k;
        y->cur = N_DAYS;
    }
}

static void yield_close(void *st, struct pstate *ps, const struct day_window *w)
{
    struct yield *y = st;
    stream_close(&y->phone, ps, 0, w);
    if (y->wear)
        stream_close(y->wear, ps, 1, w);
}

static void stream_revise(struct ystream *y, struct pstate *ps, int wearable,
                          const struct day_window *w)
{
    struct yday *d = find(y, w);
    if (!d || !d->closed)
        return;
    double v, cov;
    int em;
    compute(ps, wearable, w, d, y->seen, &v, &cov, &em);
    if (em == d->emitted && v == d->value && cov == d->coverage)
        return;
    d->revision = d->emitted ? d->revision + 1 : 0;
    d->emitted = em;
    d->value = v;
    d->coverage = cov;
    if (em)
        pstate_emit_day(ps, w, stream_feature[wearable], 1, v, "ratio", cov, d->revision);
}

static void yield_revise(void *st, struct pstate *ps, const struct day_window *w)
{
    struct yield *y = st;
    stream_revise(&y->phone, ps, 0, w);
    if (y->wear)
        stream_revise(y->wear, ps, 1, w);
}

/* A late event is binned into its kept day, closed or not; older ones cannot be revised. */
static void yield_late(void *st, struct pstate *ps, const struct event *ev)
{
    struct yield *y = st;
    struct ystream *s = stream_of(y, ev);
    if (s)
        mark(s, ps, ev->ts, span_ms(ev), 1);
}

const struct family_ops family_yield = {
    .name = "yield",
    .state_new = yield_new,
    .state_free = yield_free,
    .on_event = yield_event,
    .day_ready = yield_ready,
    .close_day = yield_close,
    .on_late_event = yield_late,
    .revise_day = yield_revise,
};
