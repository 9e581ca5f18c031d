#include "drivers/epoch_event.h"

#include <stdio.h>
#include <string.h>

void epoch_event_fill(const struct reader *r, const char *default_source,
                      const struct epoch_row *row, struct event *ev, struct epoch_pending *p)
{
    memset(ev, 0, sizeof *ev);
    ev->ts = row->ts;
    ev->seq = row->seq;
    ev->has_seq = 1;
    ev->type = EV_COUNTS;
    snprintf(ev->participant, sizeof ev->participant, "%s", r->opts.participant);
    snprintf(ev->source, sizeof ev->source, "%s", r->opts.source ? r->opts.source : default_source);
    ev->u.counts.epoch_s = row->epoch_s;
    ev->u.counts.counts = row->axis1;
    if (row->triaxial) { /* event.h: axes are x, y, z */
        ev->u.counts.triaxial = 1;
        ev->u.counts.axes[0] = row->axis2;
        ev->u.counts.axes[1] = row->axis1;
        ev->u.counts.axes[2] = row->axis3;
    }
    p->has = row->has_steps;
    if (!row->has_steps)
        return;
    struct event *s = &p->ev;
    *s = *ev;
    s->type = EV_STEPS;
    memset(&s->u, 0, sizeof s->u);
    s->ts = row->ts + (int64_t)row->epoch_s * 1000;
    s->seq = row->seq + 1;
    s->u.steps.steps = row->steps;
    s->u.steps.interval_s = row->epoch_s;
}

int epoch_event_pending(struct epoch_pending *p, struct event *ev)
{
    if (!p->has)
        return 0;
    p->has = 0;
    *ev = p->ev;
    return READ_EVENT;
}

int epoch_clock_place(const struct epoch_clock *c, const struct tz_zone *zone, int epoch_s,
                      int64_t local, int64_t *ts, char *why, size_t cap)
{
    int64_t epoch_ms = (int64_t)epoch_s * 1000;
    if (c->have_first) {
        if (local <= c->last_local) {
            snprintf(why, cap, "time goes backwards or repeats (%.3f s before the previous "
                     "epoch)", (double)(c->last_local - local) / 1000.0);
            return -1;
        }
        if ((local - c->local0) % epoch_ms) {
            snprintf(why, cap, "time is not a whole number of %d s epochs after the first "
                     "epoch (wrong epoch length?)", epoch_s);
            return -1;
        }
        *ts = c->utc0 + (local - c->local0);
    } else {
        *ts = zone ? tz_local_to_utc(zone, local) : local;
    }
    if (*ts < EV_TS_MIN || *ts > EV_TS_MAX - 1 - epoch_ms) {
        snprintf(why, cap, "epoch time out of range (1900-01-01..2200-01-01 UTC)");
        return -1;
    }
    return 0;
}

void epoch_clock_accept(struct epoch_clock *c, int64_t local, int64_t ts)
{
    if (!c->have_first) {
        c->have_first = 1;
        c->local0 = local;
        c->utc0 = ts;
    }
    c->last_local = local;
}
