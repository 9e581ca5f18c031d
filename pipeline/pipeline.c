/* Pipeline core: dedupe, per-participant watermarks and reordering, local-day windows,
 * and dispatch to the feature families. See docs/architecture.md for the invariants. */
#include "pipeline/pipeline.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/coverage.h"
#include "pipeline/family.h"
#include "pipeline/reorder.h"
#include "pipeline/sources.h"
#include "pipeline/tz.h"

static const struct family_ops *const families[] = {
    &family_screen,
    &family_ema,
    &family_alliance,
    &family_yield,
    &family_act,
    &family_app,
    &family_engage,
    &family_nudge, /* last: it reads the records of every other family */
};
#define N_FAMILIES (sizeof families / sizeof families[0])
#define NUDGE_FAMILY (N_FAMILIES - 1)

#define REVISE_DAYS 32      /* closed days kept for revision by late events */
#define POOL_MAX_DECL 1024 /* recycled event buffers per size class (POOL_MAX) */
#define POOL_CLASSES 2

struct pstate {
    struct pipeline *pl;
    char id[EV_ID_MAX + 1];
    size_t pos;                    /* index in pipeline->ps */
    const struct pipeline_participant_conf *pconf;
    struct tzline tzl;
    const struct tz_zone *tz_next; /* the zone of the newest tz event accepted (NULL: none), */
    int64_t tz_next_ts;            /* from its ts on; tzl may not have it yet (watermark) */
    int64_t wm;                    /* released up to here; INT64_MIN before any */
    size_t n_src, cap_src;
    size_t *src;                   /* source indices feeding this participant */
    struct reorder buf;
    int started;
    struct day_window next_day;    /* first day not yet closed */
    int64_t last_ts;
    int64_t clock;                 /* hub clock of the newest event (pipeline_set_clock) */
    struct coverage cov;           /* of the phone stream */
    struct coverage wcov;          /* of the wearable streams */
    struct day_window closed[REVISE_DAYS]; /* the newest closed days, oldest first */
    size_t n_closed;
    void *fam[N_FAMILIES];
};

struct pipeline {
    struct pipeline_conf conf;
    record_sink_fn sink;
    void *ud;
    struct tz_db *tzdb;
    const struct tz_zone *utc;
    struct pipeline_stats st;
    uint64_t arrival;
    size_t n_buffered;
    void *pool[POOL_CLASSES][POOL_MAX_DECL];
    size_t n_pool[POOL_CLASSES];
    struct pstate **ps;
    size_t n_ps, cap_ps;
    struct sources srcs;
    struct name_index ps_idx;
    struct nudge_plan *nplan;      /* NULL: no nudge rules */
    int64_t clock;                 /* pipeline_set_clock; 0 = events arrive at their ts */
};

void pipeline_conf_defaults(struct pipeline_conf *c)
{
    memset(c, 0, sizeof *c);
    c->lateness_ms = 10 * 60000;
    c->revise_ms = 24 * 3600000LL;
    c->coverage_gap_ms = 12 * 3600000LL;
    c->source_idle_ms = 24 * 3600000LL;
    c->nudge.late_after_ms = 6 * 3600000LL;
    c->screen_hold_ms = 24 * 3600000LL;
    c->ema_expire_ms = 2 * 3600000LL;
    c->screen_ignore_shorter_min = 0;
    c->screen_ignore_longer_min = 360;
    c->app_ignore_shorter_min = 0;
    c->app_ignore_longer_min = 300;
    c->engage_session_gap_ms = 30000;
    c->act.binarize = -1;
    c->act.valid_day_wear_ms = 10 * 3600000LL;
    c->act.max_summary_days = 400;
    c->max_participants = 1024;
    c->max_sources = 4096;
    c->max_buffered = 1000000;
    c->max_day_events = 100000;
}

/* ---- participants and sources ------------------------------------------------------ */

static const char *ps_name(const void *ctx, size_t i)
{
    return ((const struct pipeline *)ctx)->ps[i]->id;
}

static struct pstate *participant_get(struct pipeline *pl, const char *id, int *err)
{
    long at = name_index_find(&pl->ps_idx, id, ps_name, pl);
    if (at >= 0)
        return pl->ps[at];
    if (pl->n_ps >= pl->conf.max_participants) {
        *err = -E2BIG;
        return NULL;
    }
    if (vec_grow((void **)&pl->ps, &pl->cap_ps, pl->n_ps + 1, sizeof *pl->ps) < 0)
        goto nomem;
    struct pstate *ps = calloc(1, sizeof *ps);
    if (!ps)
        goto nomem;
    ps->pl = pl;
    ps->pos = pl->n_ps;
    snprintf(ps->id, sizeof ps->id, "%s", id);
    ps->wm = INT64_MIN;
    const struct tz_zone *zone = pl->utc;
    for (size_t i = 0; i < pl->conf.n_participants; i++)
        if (strcmp(pl->conf.participants[i].id, id) == 0) {
            ps->pconf = &pl->conf.participants[i];
            int e = 0;
            if (ps->pconf->tz[0]) {
                const struct tz_zone *z = tz_db_get(pl->tzdb, ps->pconf->tz, &e);
                if (z)
                    zone = z;
            }
        }
    tzline_init(&ps->tzl, zone);
    for (size_t f = 0; f < N_FAMILIES; f++) {
        ps->fam[f] = families[f]->state_new(ps);
        if (!ps->fam[f]) {
            for (size_t g = 0; g < f; g++)
                families[g]->state_free(ps->fam[g]);
            free(ps);
            goto nomem;
        }
    }
    pl->ps[pl->n_ps++] = ps;
    if (name_index_add(&pl->ps_idx, pl->n_ps, ps_name, pl) < 0)
        goto nomem_registered;
    return ps;
nomem_registered:
    pl->n_ps--;
    for (size_t f = 0; f < N_FAMILIES; f++)
        families[f]->state_free(ps->fam[f]);
    free(ps);
nomem:
    *err = -ENOMEM;
    return NULL;
}

static int link_source(struct pipeline *pl, struct pstate *ps, size_t si)
{
    for (size_t i = 0; i < ps->n_src; i++)
        if (ps->src[i] == si)
            return 0;
    if (vec_grow((void **)&ps->src, &ps->cap_src, ps->n_src + 1, sizeof *ps->src) < 0)
        return -ENOMEM;
    int e = source_link(&pl->srcs.v[si], ps->pos);
    if (e < 0)
        return e;
    ps->src[ps->n_src++] = si;
    return 0;
}

/* ---- event buffers ------------------------------------------------------------------ */

/* Buffered events come from free lists: replay holds `lateness` worth of events at any time
 * and recycles them at the event rate, where malloc/free showed up in profiles.
 *
 * A buffered event is packed: the fixed fields before the ids (ts, seq, has_seq, type), then
 * only the used bytes of its union member (a heart rate's RR intervals up to n_rr), then an
 * accel block's samples. The participant and source ids are left out: the buffer is the
 * participant's, and families never read the source (family.h). Packed events come in two
 * size classes, and most (a screen change, a heart rate with up to 6 RR intervals, counts,
 * steps) take the small one, 88 bytes instead of the 432 of a struct event: a hub holding
 * seconds of 100 devices at 50 Hz keeps 10,000 of them. */
#define POOL_MAX POOL_MAX_DECL
#define PACK_HDR offsetof(struct event, participant)
#define PACK_SMALL (PACK_HDR + 64)
#define PACK_BIG (PACK_HDR + sizeof(((struct event *)0)->u))
_Static_assert(offsetof(struct event, participant) == 2 * sizeof(int64_t) + 2 * sizeof(int),
               "the packed header is ts, seq, has_seq and type");

/* Bytes of the union member of an event of type t that carry information; u: the member's
 * bytes (read for a heart rate, which uses only the RR intervals it has). */
static size_t union_used_size(enum ev_type t, const void *u)
{
    static const struct event e;
    size_t n_rr;
    switch (t) {
    case EV_SCREEN: return sizeof e.u.screen;
    case EV_APP: return sizeof e.u.app;
    case EV_EMA: return sizeof e.u.ema;
    case EV_MODULE: return sizeof e.u.module;
    case EV_DWAI: return sizeof e.u.dwai;
    case EV_NUDGE_ACK: return sizeof e.u.nudge_ack;
    case EV_COUNTS: return sizeof e.u.counts;
    case EV_ACCEL: return sizeof e.u.accel;
    case EV_STEPS: return sizeof e.u.steps;
    case EV_HR:
        memcpy(&n_rr, (const uint8_t *)u + offsetof(struct event, u.hr.n_rr) -
                          offsetof(struct event, u), sizeof n_rr);
        return offsetof(struct event, u.hr.rr_ms) - offsetof(struct event, u) +
               (n_rr < EV_RR_MAX ? n_rr : EV_RR_MAX) * sizeof e.u.hr.rr_ms[0];
    case EV_BATTERY: return sizeof e.u.battery;
    case EV_WEAR: return sizeof e.u.wear;
    case EV_TZ: return sizeof e.u.tz;
    default: return sizeof e.u;
    }
}

static int has_samples(const struct event *ev)
{
    return ev->type == EV_ACCEL && ev->u.accel.n;
}

/* The size class of a packed event of n bytes (without samples). */
static int size_class(size_t n) { return n > PACK_SMALL; }
static size_t class_size(int c) { return c ? PACK_BIG : PACK_SMALL; }

static void *event_pack(struct pipeline *pl, const struct event *ev)
{
    size_t used = union_used_size(ev->type, &ev->u);
    uint8_t *p;
    if (!has_samples(ev)) {
        int k = size_class(PACK_HDR + used);
        if (!(p = pl->n_pool[k] ? pl->pool[k][--pl->n_pool[k]] : malloc(class_size(k))))
            return NULL;
    } else {
        size_t extra = ev->u.accel.n * sizeof(float[3]);
        if (!(p = malloc(PACK_BIG + extra)))
            return NULL;
        memcpy(p + PACK_BIG, ev->u.accel.g, extra);
    }
    memcpy(p, ev, PACK_HDR);
    memcpy(p + PACK_HDR, &ev->u, used);
    return p;
}

/* The buffered event p as a struct event for the families, in *out (participant: ps's). */
static const struct event *event_unpack(const struct pstate *ps, const void *p,
                                        struct event *out)
{
    const uint8_t *b = p;
    memcpy(out, b, PACK_HDR);
    memcpy(&out->u, b + PACK_HDR, union_used_size(out->type, b + PACK_HDR));
    memcpy(out->participant, ps->id, sizeof out->participant);
    out->source[0] = '\0';
    if (has_samples(out))
        out->u.accel.g = (const float(*)[3])(b + PACK_BIG);
    return out;
}

static void event_recycle(struct pipeline *pl, void *p)
{
    enum ev_type t;
    memcpy(&t, (const uint8_t *)p + offsetof(struct event, type), sizeof t);
    if (t != EV_ACCEL) { /* accel events are freed: most carry samples, of any size */
        int k = size_class(PACK_HDR + union_used_size(t, (const uint8_t *)p + PACK_HDR));
        if (pl->n_pool[k] < POOL_MAX) {
            pl->pool[k][pl->n_pool[k]++] = p;
            return;
        }
    }
    free(p);
}

/* ---- coverage ---------------------------------------------------------------------- */

/* Extends the coverage of the stream an event belongs to: the phone's (ev_is_phone) or the
 * wearables' (ev_is_wearable); other events (tz) cover nothing. */
static void coverage_seen(struct pstate *ps, const struct event *ev)
{
    struct coverage *c = ev_is_phone(ev->type)      ? &ps->cov
                         : ev_is_wearable(ev->type) ? &ps->wcov
                                                    : NULL;
    if (!c)
        return;
    uint64_t dropped = c->dropped;
    if (coverage_add(c, ev->ts, ps->pl->conf.coverage_gap_ms) < 0 || c->dropped != dropped)
        ps->pl->st.limit_hits++;
}

double pstate_phone_coverage(const struct pstate *ps, int64_t start, int64_t end)
{
    return coverage_fraction(&ps->cov, start, end);
}

double pstate_wearable_coverage(const struct pstate *ps, int64_t start, int64_t end)
{
    return coverage_fraction(&ps->wcov, start, end);
}

/* ---- accessors for families -------------------------------------------------------- */

const struct pipeline_conf *pstate_conf(const struct pstate *ps) { return &ps->pl->conf; }
const char *pstate_id(const struct pstate *ps) { return ps->id; }
const struct pipeline_participant_conf *pstate_pconf(const struct pstate *ps) { return ps->pconf; }
void pstate_count_discarded(struct pstate *ps, uint64_t n) { ps->pl->st.screen_discarded += n; }
void pstate_count_refused_epochs(struct pstate *ps, uint64_t n) { ps->pl->st.epochs_refused += n; }

const struct tzline *pstate_tzline(const struct pstate *ps) { return &ps->tzl; }

void *pstate_family_state(struct pstate *ps, const struct family_ops *f)
{
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (families[i] == f)
            return ps->fam[i];
    return NULL;
}

void pstate_emit_day(struct pstate *ps, const struct day_window *w, const char *feature,
                     int has_value, double value, const char *unit, double coverage,
                     int revision)
{
    pstate_emit(ps, WIN_DAY, w->start, w->end, w, feature, has_value, value, unit, coverage,
                revision);
}

void pstate_emit_record(struct pstate *ps, struct feature_record *r)
{
    struct pipeline *pl = ps->pl;
    r->participant = ps->id;
    if (pl->nplan)
        nudge_observe(ps, ps->fam[NUDGE_FAMILY], r);
    pl->st.records++;
    if (pl->sink(pl->ud, r) < 0)
        pl->st.sink_errors++;
}

int64_t pstate_clock(const struct pstate *ps) { return ps->clock; }
const struct nudge_plan *pstate_nudge_plan(const struct pstate *ps) { return ps->pl->nplan; }

void pstate_emit(struct pstate *ps, enum window_kind kind, int64_t start, int64_t end,
                 const struct day_window *w, const char *feature, int has_value, double value,
                 const char *unit, double coverage, int revision)
{
    struct feature_record r = {
        .feature = feature,
        .window = kind,
        .start = start,
        .end = end,
        .tz = tz_zone_name(w->zone),
        .has_value = has_value && isfinite(value),
        .value = value,
        .unit = unit,
        .coverage = coverage,
        .revision = revision,
    };
    memcpy(r.local_date, w->local_date, sizeof r.local_date);
    pstate_emit_record(ps, &r);
}

void pstate_emit_epoch(struct pstate *ps, int64_t start, int64_t end, const struct day_window *w,
                       double value, double coverage, const struct epoch_extra *x)
{
    struct feature_record r = {
        .participant = ps->id,
        .feature = "act.epoch",
        .window = WIN_EPOCH,
        .start = start,
        .end = end,
        .tz = tz_zone_name(w->zone),
        .has_value = isfinite(value),
        .value = value,
        .unit = "count",
        .coverage = coverage,
        .epoch = x,
    };
    memcpy(r.local_date, w->local_date, sizeof r.local_date);
    ps->pl->st.records++;
    if (ps->pl->sink(ps->pl->ud, &r) < 0)
        ps->pl->st.sink_errors++;
}

/* ---- days and dispatch ------------------------------------------------------------- */

static void close_days(struct pstate *ps, int finishing)
{
    while (ps->started) {
        struct day_window *d = &ps->next_day;
        if (finishing ? d->start > ps->last_ts : d->end > ps->wm)
            break;
        /* Coverage is final only when the phone stream's last interval reaches past the day
         * or no event can extend it any more (the watermark is a coverage_gap beyond it):
         * otherwise the next event, if it comes within the gap, would cover the night. */
        int64_t last = coverage_last(&ps->cov);
        if (!finishing && last != INT64_MIN && last < d->end &&
            ps->wm < last + ps->pl->conf.coverage_gap_ms)
            break;
        for (size_t f = 0; f < N_FAMILIES; f++)
            if (!families[f]->day_ready(ps->fam[f], ps, d, ps->wm, finishing))
                return;
        for (size_t f = 0; f < N_FAMILIES; f++)
            families[f]->close_day(ps->fam[f], ps, d);
        if (ps->n_closed == REVISE_DAYS) {
            memmove(ps->closed, ps->closed + 1, (REVISE_DAYS - 1) * sizeof *ps->closed);
            ps->n_closed--;
        }
        ps->closed[ps->n_closed++] = *d;
        struct day_window next;
        cal_day_next(&ps->tzl, d, &next);
        *d = next;
        coverage_trim(&ps->cov, ps->closed[0].start - ps->pl->conf.coverage_gap_ms);
        coverage_trim(&ps->wcov, ps->closed[0].start - ps->pl->conf.coverage_gap_ms);
    }
}

static void dispatch(struct pstate *ps, const struct event *ev)
{
    if (ev->type == EV_TZ) {
        const struct tz_zone *z = tz_db_get(ps->pl->tzdb, ev->u.tz.tz, NULL);
        /* a switch the zone line refuses (full: TZL_MAX periods) is counted, not dropped
         * unseen */
        if (!z || tzline_switch(&ps->tzl, ev->ts, z) < 0)
            ps->pl->st.limit_hits++;
        else if (ps->started && ev->ts < ps->next_day.end)
            cal_day_at(&ps->tzl, ps->next_day.start, &ps->next_day);
    }
    if (!ps->started) {
        ps->started = 1;
        cal_day_at(&ps->tzl, ev->ts, &ps->next_day);
    }
    coverage_seen(ps, ev);
    ps->last_ts = ev->ts;
    unsigned bit = EV_BIT(ev->type);
    for (size_t f = 0; f < N_FAMILIES; f++)
        if (!families[f]->types || (families[f]->types & bit))
            families[f]->on_event(ps->fam[f], ps, ev);
}

static void release(struct pstate *ps, int64_t wm, int finishing)
{
    if (wm > ps->wm)
        ps->wm = wm;
    while (reorder_size(&ps->buf) && reorder_peek(&ps->buf)->ts <= ps->wm) {
        struct held h = reorder_pop(&ps->buf);
        ps->pl->n_buffered--;
        struct event ev;
        dispatch(ps, event_unpack(ps, h.ev, &ev));
        event_recycle(ps->pl, h.ev);
    }
    close_days(ps, finishing);
    if (ps->pl->nplan && ps->started) {
        /* nudge decisions up to where the participant's data is complete: every event up to
         * the watermark is in, and so is every day before the next one to close; at the
         * end of input, up to the end of the last day closed */
        int64_t limit = ps->next_day.end - 1 < ps->wm ? ps->next_day.end - 1 : ps->wm;
        if (finishing)
            limit = ps->n_closed ? ps->closed[ps->n_closed - 1].end : INT64_MIN;
        nudge_advance(ps, ps->fam[NUDGE_FAMILY], limit);
    }
}

/* A late event within the revision horizon: the families take it into their state and every
 * closed day it can touch (through an episode over midnight or the coverage of a night) is
 * recomputed; families re-emit only the days whose records changed. A time-zone switch cannot
 * be revised (it would move day boundaries already published): it is counted late instead. */
static void revise(struct pstate *ps, const struct event *ev)
{
    const struct pipeline_conf *c = &ps->pl->conf;
    coverage_seen(ps, ev);
    for (size_t f = 0; f < N_FAMILIES; f++) /* every family: a late event moves coverage */
        families[f]->on_late_event(ps->fam[f], ps, ev);
    int64_t reach = c->screen_hold_ms > c->coverage_gap_ms ? c->screen_hold_ms : c->coverage_gap_ms;
    for (size_t i = 0; i < ps->n_closed; i++) {
        const struct day_window *d = &ps->closed[i];
        if (d->end > ev->ts - reach && d->start <= ev->ts + reach)
            for (size_t f = 0; f < N_FAMILIES; f++)
                families[f]->revise_day(ps->fam[f], ps, d);
    }
}

/* The slowest of the participant's sources, less the lateness; a source that has fallen
 * more than source_idle behind the participant's newest one (a phone switched off while the
 * watch goes on) no longer holds the others back: its days close on the other streams'
 * time, and what it sends later is late (revised within revise, else counted late). */
static int64_t participant_wm(const struct pstate *ps)
{
    int64_t m = INT64_MAX, newest = INT64_MIN, idle = ps->pl->conf.source_idle_ms;
    for (size_t i = 0; i < ps->n_src; i++)
        if (ps->pl->srcs.v[ps->src[i]].max_ts > newest)
            newest = ps->pl->srcs.v[ps->src[i]].max_ts;
    for (size_t i = 0; i < ps->n_src; i++) {
        int64_t t = ps->pl->srcs.v[ps->src[i]].max_ts;
        if (idle > 0 && newest != INT64_MIN && t != INT64_MIN && t < newest - idle)
            continue;
        if (t < m)
            m = t;
    }
    if (m == INT64_MAX || m == INT64_MIN)
        return INT64_MIN;
    return m - ps->pl->conf.lateness_ms;
}

int pipeline_push(struct pipeline *pl, const struct event *ev)
{
    int err = 0;
    if (ev->ts < EV_TS_MIN || ev->ts >= EV_TS_MAX)
        return -ERANGE;
    const struct tz_zone *zone = NULL;
    if (ev->type == EV_TZ && !(zone = tz_db_get(pl->tzdb, ev->u.tz.tz, &err))) {
        pl->st.bad_tz++;
        return PIPE_BAD_TZ;
    }
    struct pstate *ps = participant_get(pl, ev->participant, &err);
    if (!ps) {
        pl->st.limit_hits++;
        return err == -E2BIG ? PIPE_LIMIT : err;
    }
    int64_t arrived = pl->clock ? pl->clock : ev->ts;
    if (arrived > ps->clock)
        ps->clock = arrived;
    size_t si;
    struct source *s = sources_get(&pl->srcs, ev->source[0] ? ev->source : "replay", &si, &err);
    if (!s) {
        pl->st.limit_hits++;
        return err == -E2BIG ? PIPE_LIMIT : err;
    }
    if ((err = link_source(pl, ps, si)) < 0) {
        pl->st.limit_hits++;
        return err == -E2BIG ? PIPE_LIMIT : err;
    }
    if (ev->has_seq) {
        int dup = source_seen(s, ev->seq, &err);
        if (err)
            return err;
        if (dup) {
            pl->st.duplicates++;
            return PIPE_DUPLICATE;
        }
    }
    if (ps->wm != INT64_MIN && ev->ts < ps->wm) {
        if (ps->started && ev->type != EV_TZ && ev->ts >= ps->wm - pl->conf.revise_ms) {
            revise(ps, ev);
            pl->st.revised++;
            return PIPE_REVISED;
        }
        pl->st.late++;
        return PIPE_LATE;
    }
    void *copy = event_pack(pl, ev);
    if (!copy)
        return -ENOMEM;
    if (pl->n_buffered >= pl->conf.max_buffered) {
        /* Policy when the reorder buffer is full: apply this participant's oldest event now,
         * advancing its watermark to that event (counted as a limit hit). */
        pl->st.limit_hits++;
        if (reorder_size(&ps->buf))
            release(ps, reorder_peek(&ps->buf)->ts, 0);
    }
    if (reorder_push(&ps->buf, (struct held){ev->ts, pl->arrival++, copy}) < 0) {
        event_recycle(pl, copy);
        return -ENOMEM;
    }
    pl->n_buffered++;
    pl->st.accepted++;
    /* a full zone line will refuse it when it is applied (tzline_switch): so does this */
    if (zone && ps->tzl.n < TZL_MAX && (!ps->tz_next || ev->ts >= ps->tz_next_ts)) {
        ps->tz_next = zone;
        ps->tz_next_ts = ev->ts;
    }
    if (ev->ts > s->max_ts)
        s->max_ts = ev->ts;
    /* every participant this source feeds may now have a newer watermark; index by
     * position since release() can emit records but never adds sources */
    for (size_t i = 0; i < pl->srcs.v[si].n_links; i++) {
        struct pstate *q = pl->ps[pl->srcs.v[si].links[i]];
        release(q, participant_wm(q), 0);
    }
    return PIPE_ACCEPTED;
}

void pipeline_finish(struct pipeline *pl)
{
    for (size_t i = 0; i < pl->n_ps; i++) {
        struct pstate *ps = pl->ps[i];
        release(ps, INT64_MAX, 1);
        for (size_t f = 0; f < N_FAMILIES; f++)
            if (families[f]->finish)
                families[f]->finish(ps->fam[f], ps);
    }
}

/* ---- lifecycle --------------------------------------------------------------------- */

struct pipeline *pipeline_new(const struct pipeline_conf *c, record_sink_fn sink, void *ud,
                              int *err)
{
    struct pipeline *pl = calloc(1, sizeof *pl);
    if (!pl) {
        *err = -ENOMEM;
        return NULL;
    }
    pl->conf = *c;
    pl->sink = sink;
    pl->ud = ud;
    pl->srcs.max = c->max_sources;
    pl->tzdb = tz_db_new(c->tzdir);
    if (!pl->tzdb) {
        free(pl);
        *err = -ENOMEM;
        return NULL;
    }
    pl->utc = tz_db_get(pl->tzdb, "UTC", err);
    if (!pl->utc) {
        tz_db_free(pl->tzdb);
        free(pl);
        return NULL;
    }
    if (c->nudge.n_rules && !(pl->nplan = nudge_plan_new(&pl->conf.nudge, err))) {
        tz_db_free(pl->tzdb);
        free(pl);
        return NULL;
    }
    for (size_t i = 0; i < c->n_participants; i++) {
        const char *tzn = c->participants[i].tz;
        if (tzn[0] && !tz_db_get(pl->tzdb, tzn, err)) {
            nudge_plan_free(pl->nplan);
            tz_db_free(pl->tzdb);
            free(pl);
            return NULL;
        }
    }
    return pl;
}

void pipeline_free(struct pipeline *pl)
{
    if (!pl)
        return;
    for (size_t i = 0; i < pl->n_ps; i++) {
        struct pstate *ps = pl->ps[i];
        for (size_t f = 0; f < N_FAMILIES; f++)
            families[f]->state_free(ps->fam[f]);
        while (reorder_size(&ps->buf))
            free(reorder_pop(&ps->buf).ev);
        reorder_release(&ps->buf);
        free(ps->src);
        coverage_release(&ps->cov);
        coverage_release(&ps->wcov);
        free(ps);
    }
    sources_release(&pl->srcs);
    for (int k = 0; k < POOL_CLASSES; k++)
        for (size_t i = 0; i < pl->n_pool[k]; i++)
            free(pl->pool[k][i]);
    free(pl->ps);
    name_index_release(&pl->ps_idx);
    nudge_plan_free(pl->nplan);
    tz_db_free(pl->tzdb);
    free(pl);
}

const struct pipeline_stats *pipeline_get_stats(const struct pipeline *pl) { return &pl->st; }

void pipeline_set_clock(struct pipeline *pl, int64_t received_ms) { pl->clock = received_ms; }

const struct tz_zone *pipeline_zone_at(const struct pipeline *pl, const char *participant,
                                       int64_t t)
{
    long at = name_index_find(&pl->ps_idx, participant, ps_name, pl);
    if (at < 0)
        return NULL;
    const struct pstate *ps = pl->ps[at];
    if (ps->tz_next && t >= ps->tz_next_ts)
        return ps->tz_next;
    return tzline_zone_at(&ps->tzl, t);
}

size_t pipeline_participants(const struct pipeline *pl, const char **ids, size_t cap)
{
    for (size_t i = 0; i < pl->n_ps && i < cap; i++)
        ids[i] = pl->ps[i]->id;
    return pl->n_ps;
}
