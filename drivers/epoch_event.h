/* Events of one epoch row of an ActiGraph export (agd, ActiLife CSV): a `counts` event and, when
 * the file has steps, the `steps` event that follows it. Shared by the epoch-file readers. */
#ifndef ENGAGED_EPOCH_EVENT_H
#define ENGAGED_EPOCH_EVENT_H

#include "drivers/reader.h"

/* The row's values, ActiGraph naming: axis 1 is the device's y axis, axis 2 x, axis 3 z. */
struct epoch_row {
    int64_t ts;        /* UTC ms of the epoch's start */
    int64_t seq;       /* the counts event's seq; the steps event gets seq + 1 */
    int epoch_s;
    double axis1, axis2, axis3;
    int triaxial;      /* axis2 and axis3 present */
    int has_steps;
    double steps;
};

/* A steps event waiting to be returned after its counts event. */
struct epoch_pending {
    int has;
    struct event ev;
};

/* Fills ev with the row's counts event (participant from the reader's options, source from
 * them or default_source) and, with steps, queues the steps event (stamped at the end of the
 * epoch, as docs/events.md defines steps) in p. */
void epoch_event_fill(const struct reader *r, const char *default_source,
                      const struct epoch_row *row, struct event *ev, struct epoch_pending *p);
/* Returns READ_EVENT with the queued steps event in ev, or 0 when none is queued. */
int epoch_event_pending(struct epoch_pending *p, struct event *ev);

#endif
