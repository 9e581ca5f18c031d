/* The `nudge` family: the pipeline's side of the nudge engine (pipeline/nudge.c). It is listed
 * last, so by the time it sees a participant's day close, every other family has emitted that
 * day's records; the core passes it every record (nudge_observe) and tells it how far the
 * participant's data is complete (nudge_advance). */
#include "pipeline/family.h"
#include "pipeline/nudge.h"

static char no_rules; /* the state of every participant when there are no rules */

static void emit(void *ud, struct feature_record *r) { pstate_emit_record(ud, r); }

static double phone_coverage(void *ud, int64_t start, int64_t end)
{
    return pstate_phone_coverage(ud, start, end);
}

static struct nudge_host host_of(struct pstate *ps)
{
    return (struct nudge_host){
        .ud = ps, .participant = pstate_id(ps), .pc = pstate_pconf(ps),
        .tzl = pstate_tzline(ps), .clock = pstate_clock(ps),
        .phone_coverage = phone_coverage, .emit = emit,
    };
}

static void *nudge_new(struct pstate *ps)
{
    const struct nudge_plan *p = pstate_nudge_plan(ps);
    return p ? (void *)nudge_state_new(p) : &no_rules;
}

static void nudge_free(void *st)
{
    if (st != &no_rules)
        nudge_state_free(st);
}

void nudge_observe(struct pstate *ps, void *st, const struct feature_record *r)
{
    (void)ps;
    if (st != &no_rules)
        nudge_feed_record(st, r);
}

void nudge_advance(struct pstate *ps, void *st, int64_t limit)
{
    if (st == &no_rules)
        return;
    struct nudge_host h = host_of(ps);
    nudge_run(st, &h, limit);
}

static void nudge_event(void *st, struct pstate *ps, const struct event *ev)
{
    if (st == &no_rules)
        return;
    struct nudge_host h = host_of(ps);
    nudge_feed_event(st, &h, ev);
}

static int nudge_day_ready(void *st, struct pstate *ps, const struct day_window *w, int64_t wm,
                           int finishing)
{
    return 1;
}

static void nudge_close_day(void *st, struct pstate *ps, const struct day_window *w)
{
    if (st != &no_rules)
        nudge_feed_day(st, w);
}

/* A late ack or intervention use still counts for outcomes not yet emitted. */
static void nudge_late_event(void *st, struct pstate *ps, const struct event *ev)
{
    if (ev->type == EV_NUDGE_ACK || ev->type == EV_APP || ev->type == EV_MODULE)
        nudge_event(st, ps, ev);
}

static void nudge_revise_day(void *st, struct pstate *ps, const struct day_window *w) {}

const struct family_ops family_nudge = {
    .name = "nudge",
    .types = EV_BIT(EV_APP) | EV_BIT(EV_MODULE) | EV_BIT(EV_NUDGE_ACK),
    .state_new = nudge_new,
    .state_free = nudge_free,
    .on_event = nudge_event,
    .day_ready = nudge_day_ready,
    .close_day = nudge_close_day,
    .on_late_event = nudge_late_event,
    .revise_day = nudge_revise_day,
};
