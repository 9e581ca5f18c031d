/* Actigraphy family (spec §4 act.*, adherence.wear_7d): epochs from `counts` events and from
 * raw `accel` blocks (ActiGraph counts, pipeline/agcounts.h) go into a ring of the last days
 * of the participant's epoch grid; when a local day closes, non-wear, sleep/wake, the night's
 * main sleep period and the 7-day rhythm metrics are computed over the ring (act_calc.c).
 * Memory is fixed per participant with wearable data (the ring) and nothing for the others.
 * Behaviour and every convention: docs/actigraphy.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/act.h"
#include "pipeline/agcounts.h"

#define DAY_MS 86400000LL

static void *act_new(struct pstate *ps)
{
    (void)ps;
    return calloc(1, sizeof(struct act));
}

static void act_free(void *st)
{
    struct act *a = st;
    if (!a)
        return;
    agc_free(a->agc);
    free(a->rs);
    free(a->ring);
    free(a->days);
    free(a->all);
    free(a->x);
    free(a->xs);
    free(a->valid);
    free(a->wear);
    free(a->sw);
    free(a->smask);
    free(a->work);
    free(a);
}

/* The grid: 60-s epochs for inputs of 60 s or less (shorter epochs are summed, as ActiLife
 * does before scoring), the input's own epoch when longer. */
static int start_grid(struct act *a, const struct pipeline_conf *c, int e_in)
{
    if (e_in < 60 && 60 % e_in)
        return -1;
    int grid = e_in < 60 ? 60 : e_in;
    int64_t revise_days = (c->revise_ms + DAY_MS - 1) / DAY_MS;
    size_t n = (size_t)((9 + revise_days) * (DAY_MS / 1000) / grid);
    a->ring = calloc(n, sizeof *a->ring);
    a->days = calloc(ACT_CACHE_DAYS, sizeof *a->days);
    if (!a->ring || !a->days) {
        free(a->ring);
        free(a->days);
        a->ring = NULL;
        a->days = NULL;
        return -1;
    }
    a->ncells = n;
    a->e_in = e_in;
    a->grid_s = grid;
    a->k_hi = INT64_MIN;
    a->k_first = INT64_MAX;
    a->last_counts_ts = INT64_MIN;
    return 0;
}

static struct act_cell *ring_cell(struct act *a, int64_t k)
{
    if (k > a->k_hi) {
        int64_t from = a->k_hi == INT64_MIN || k - a->k_hi > (int64_t)a->ncells
                           ? k - (int64_t)a->ncells + 1
                           : a->k_hi + 1;
        for (int64_t i = from; i <= k; i++)
            memset(&a->ring[floor_mod(i, (int64_t)a->ncells)], 0, sizeof *a->ring);
        a->k_hi = k;
    } else if (k <= a->k_hi - (int64_t)a->ncells) {
        return NULL; /* older than the ring */
    }
    return &a->ring[floor_mod(k, (int64_t)a->ncells)];
}

/* --summary keeps every cell from the first one, up to max_summary_days. */
static struct act_cell *summary_cell(struct act *a, const struct pipeline_conf *c, int64_t k)
{
    if (!c->act.summary)
        return NULL;
    if (!a->all) {
        a->all_k0 = k;
    }
    if (k < a->all_k0)
        return NULL;
    size_t i = (size_t)(k - a->all_k0);
    size_t max = c->act.max_summary_days * (size_t)(DAY_MS / 1000) / (size_t)a->grid_s;
    if (i >= max)
        return NULL;
    if (i >= a->all_cap) {
        size_t cap = a->all_cap ? a->all_cap : 4096;
        while (cap <= i)
            cap *= 2;
        if (cap > max)
            cap = max;
        struct act_cell *p = realloc(a->all, cap * sizeof *p);
        if (!p)
            return NULL;
        memset(p + a->all_cap, 0, (cap - a->all_cap) * sizeof *p);
        a->all = p;
        a->all_cap = cap;
    }
    if (i >= a->all_n)
        a->all_n = i + 1;
    return &a->all[i];
}

static int cell_put(struct act_cell *cell, int grid_s, int secs, double counts, const double ax[3],
                    int triax, int device_off)
{
    if (cell->fill_s + secs > grid_s)
        return -1; /* that part of the epoch is already there: overlapping streams */
    cell->fill_s = (uint16_t)(cell->fill_s + secs);
    cell->c += (float)counts;
    for (int i = 0; i < 3; i++)
        cell->ax[i] += (float)ax[i];
    if (triax)
        cell->flags |= ACT_CELL_TRIAX;
    if (device_off)
        cell->flags |= ACT_CELL_DEVICE_OFF;
    return 0;
}

int act_cell_add(struct act *a, const struct pipeline_conf *c, int64_t ts, int secs, double counts,
                 const double ax[3], int triax)
{
    int64_t k = floor_div(ts, (int64_t)a->grid_s * 1000);
    struct act_cell *cell = ring_cell(a, k);
    if (!cell || cell_put(cell, a->grid_s, secs, counts, ax, triax, a->device_off) < 0)
        return -1;
    if (k < a->k_first)
        a->k_first = k;
    struct act_cell *s = summary_cell(a, c, k);
    if (s)
        cell_put(s, a->grid_s, secs, counts, ax, triax, a->device_off);
    return 0;
}

static void on_counts(struct act *a, struct pstate *ps, const struct event *ev, int late)
{
    const struct pipeline_conf *c = pstate_conf(ps);
    int e = ev->u.counts.epoch_s;
    if (!a->ring && start_grid(a, c, e) < 0) {
        a->rejected++;
        return;
    }
    /* one epoch length per participant; an epoch at or before the last one is an overlap */
    if (e != a->e_in || (!late && ev->ts <= a->last_counts_ts)) {
        a->rejected++;
        return;
    }
    if (!late)
        a->last_counts_ts = ev->ts;
    if (act_cell_add(a, c, ev->ts, e > a->grid_s ? a->grid_s : e, ev->u.counts.counts,
                     ev->u.counts.axes, ev->u.counts.triaxial) < 0)
        a->rejected++;
}

/* A converted 1-s epoch of raw acceleration (user data: the state). */
static void on_agc_epoch(const struct agc_epoch *e, void *ud)
{
    struct act *a = ud;
    if (e->n_samples < e->n_expected)
        return; /* a second only partly recorded (the end of a stream) is not a full second */
    double ax[3] = {e->counts[0], e->counts[1], e->counts[2]};
    int64_t ts = a->agc_t0 + e->index * 1000;
    if (act_cell_add(a, a->conf, ts, 1, ax[1], ax, 1) < 0)
        a->rejected++;
}

/* Linear resampling to 30 Hz for rates outside ActiGraph's (agc_check): no reference
 * defines counts there, so this is a documented approximation (docs/actigraphy.md). Output
 * sample k lies at input position k * step; pos is the next one's position relative to the
 * current block, and prev the sample before the block (position -1). */
#define RS_HZ 30.0
#define RS_MIN_HZ 10.0
#define RS_MAX_HZ 1000.0

struct act_resampler {
    double step, pos;
    float prev[3];
    size_t n_out;
    float out[AGC_BLOCK_MAX][3];
};

static int resample_feed(struct act *a, const float (*g)[3], size_t n)
{
    struct act_resampler *r = a->rs;
    for (; r->pos <= (double)n - 1; r->pos += r->step) {
        long i = (long)floor(r->pos);
        double f = r->pos - (double)i;
        const float *x = i < 0 ? r->prev : g[i], *y = g[i + 1 < (long)n ? i + 1 : i];
        for (int k = 0; k < 3; k++)
            r->out[r->n_out][k] = (float)(x[k] + f * (y[k] - x[k]));
        if (++r->n_out == AGC_BLOCK_MAX) {
            if (agc_feed(a->agc, (const float(*)[3])r->out, r->n_out) < 0)
                return -1;
            r->n_out = 0;
        }
    }
    r->pos -= (double)n;
    memcpy(r->prev, g[n - 1], sizeof r->prev);
    if (r->n_out && agc_feed(a->agc, (const float(*)[3])r->out, r->n_out) < 0)
        return -1;
    r->n_out = 0;
    return 0;
}

static void end_stream(struct act *a)
{
    if (a->agc) {
        agc_flush(a->agc);
        agc_free(a->agc);
        a->agc = NULL;
    }
    free(a->rs);
    a->rs = NULL;
}

/* A converter for a new stream at hz (resampled to 30 Hz when ActiGraph has no such rate). */
static int start_stream(struct act *a, double hz)
{
    int err = 0;
    int direct = agc_check(hz, 1, NULL) == 0;
    if (!direct && (hz < RS_MIN_HZ || hz > RS_MAX_HZ))
        return -1;
    a->agc = agc_new(direct ? hz : RS_HZ, 1, on_agc_epoch, a, &err, NULL);
    if (!a->agc)
        return -1;
    if (!direct) {
        a->rs = calloc(1, sizeof *a->rs);
        if (!a->rs) {
            end_stream(a);
            return -1;
        }
        a->rs->step = hz / RS_HZ;
        a->rs->pos = 0;
    }
    return 0;
}

static void on_accel(struct act *a, struct pstate *ps, const struct event *ev)
{
    const struct pipeline_conf *c = pstate_conf(ps);
    if (!a->ring && start_grid(a, c, 60) < 0) {
        a->rejected++;
        return;
    }
    if (a->e_in != 60 && a->e_in > 0 && a->grid_s != 60) {
        a->rejected++; /* a participant on a grid longer than a minute takes counts only */
        return;
    }
    /* a new stream when the rate changes or the block does not follow on (1 s tolerance) */
    int64_t expect = a->agc ? a->agc_t0 + (int64_t)llround((double)a->agc_fed * 1000.0 / a->agc_hz)
                            : 0;
    if (a->agc && (ev->u.accel.hz != a->agc_hz || llabs(ev->ts - expect) > 1000))
        end_stream(a);
    if (!a->agc) {
        a->conf = c;
        if (start_stream(a, ev->u.accel.hz) < 0) {
            a->rejected++;
            return;
        }
        a->agc_hz = ev->u.accel.hz;
        a->agc_t0 = ev->ts;
        a->agc_fed = 0;
    }
    int r = a->rs ? resample_feed(a, ev->u.accel.g, ev->u.accel.n)
                  : agc_feed(a->agc, ev->u.accel.g, ev->u.accel.n);
    if (r == 0)
        a->agc_fed += ev->u.accel.n;
    else
        a->rejected++;
}

/* Refusals are counted in the state (the converter's callback has no pstate) and handed to
 * the pipeline's statistics after each event. */
static void report_refused(struct act *a, struct pstate *ps)
{
    if (a->rejected > a->reported) {
        pstate_count_refused_epochs(ps, a->rejected - a->reported);
        a->reported = a->rejected;
    }
}

static void act_event(void *st, struct pstate *ps, const struct event *ev)
{
    struct act *a = st;
    switch (ev->type) {
    case EV_COUNTS: on_counts(a, ps, ev, 0); break;
    case EV_ACCEL: on_accel(a, ps, ev); break;
    case EV_WEAR: a->device_off = !ev->u.wear.on; break;
    default: return;
    }
    report_refused(a, ps);
}

static void act_late(void *st, struct pstate *ps, const struct event *ev)
{
    struct act *a = st;
    if (ev->type == EV_COUNTS && a->ring)
        on_counts(a, ps, ev, 1);
    else if (ev->type == EV_ACCEL)
        a->rejected++; /* a converter cannot go back in time */
    report_refused(a, ps);
}

static int act_ready(void *st, struct pstate *ps, const struct day_window *w, int64_t wm,
                     int finishing)
{
    (void)ps;
    const struct act *a = st;
    return !a->ring || a->k_hi == INT64_MIN || finishing || wm >= w->end + ACT_LOOKAHEAD_MS;
}

static struct act_day *find_day(struct act *a, int64_t start)
{
    for (size_t i = 0; i < a->n_days; i++)
        if (a->days[i].start == start)
            return &a->days[i];
    return NULL;
}

/* act.valid_day of the six days before w, from the closed days kept. */
static void prev_valid(const struct act *a, const struct day_window *w, int out[6])
{
    for (int i = 0; i < 6; i++)
        out[i] = -1;
    for (size_t i = 0; i < a->n_days; i++) {
        const struct act_day *d = &a->days[i];
        int64_t back = (w->start - d->start + DAY_MS / 2) / DAY_MS; /* days before w (DST-proof) */
        if (d->start < w->start && back >= 1 && back <= 6)
            out[back - 1] = d->valid;
    }
}

static void emit_day(struct pstate *ps, const struct day_window *w, const struct act_day *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct act_rec *r = &d->rec[i];
        pstate_emit(ps, r->kind, r->start, r->end, w, r->feature, r->has, r->v, r->unit, r->cov,
                    d->revision);
    }
}

static void act_close(void *st, struct pstate *ps, const struct day_window *w)
{
    struct act *a = st;
    if (!a->ring || a->k_hi == INT64_MIN) /* nothing placed yet (everything refused) */
        return;
    int pv[6];
    prev_valid(a, w, pv);
    if (a->n_days == ACT_CACHE_DAYS) {
        memmove(a->days, a->days + 1, (ACT_CACHE_DAYS - 1) * sizeof *a->days);
        a->n_days--;
    }
    struct act_day *d = &a->days[a->n_days++];
    memset(d, 0, sizeof *d);
    act_compute_day(a, ps, w, pv, d);
    emit_day(ps, w, d);
    if (pstate_conf(ps)->act.epochs)
        act_emit_epochs(a, ps, w);
}

static int same_day(const struct act_day *x, const struct act_day *y)
{
    if (x->n != y->n)
        return 0;
    for (size_t i = 0; i < x->n; i++) {
        const struct act_rec *a = &x->rec[i], *b = &y->rec[i];
        if (a->has != b->has || a->cov != b->cov || a->start != b->start || a->end != b->end ||
            (a->has && a->v != b->v))
            return 0;
    }
    return 1;
}

static void act_revise(void *st, struct pstate *ps, const struct day_window *w)
{
    struct act *a = st;
    struct act_day *old = a->ring && a->k_hi != INT64_MIN ? find_day(a, w->start) : NULL;
    if (!old)
        return;
    int pv[6];
    prev_valid(a, w, pv);
    struct act_day d;
    memset(&d, 0, sizeof d);
    act_compute_day(a, ps, w, pv, &d);
    if (same_day(&d, old))
        return;
    d.revision = old->revision + 1;
    *old = d;
    emit_day(ps, w, old);
}

static void act_finish(void *st, struct pstate *ps)
{
    struct act *a = st;
    end_stream(a);
    if (a->all_n && pstate_conf(ps)->act.summary)
        act_emit_summary(a, ps);
}

const struct family_ops family_act = {
    .name = "act",
    .types = EV_BIT(EV_COUNTS) | EV_BIT(EV_ACCEL) | EV_BIT(EV_WEAR),
    .state_new = act_new,
    .state_free = act_free,
    .on_event = act_event,
    .day_ready = act_ready,
    .close_day = act_close,
    .on_late_event = act_late,
    .revise_day = act_revise,
    .finish = act_finish,
};
