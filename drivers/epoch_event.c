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
