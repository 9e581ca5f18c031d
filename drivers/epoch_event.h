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

/* The device clock of an epoch file. Devices keep local wall time without DST changes, so only
 * the first epoch is placed with the zone (tz_local_to_utc); later ones keep their device-
 * clock distance from it, and a recording across a DST change stays evenly spaced. */
struct epoch_clock {
    int have_first;
    int64_t local0, utc0; /* first accepted epoch: device-clock and UTC ms */
    int64_t last_local;   /* last accepted epoch, device-clock ms */
};

/* The UTC start of the epoch at device-clock ms local: 0, or -1 with the reason in why (time
 * going backwards or repeating, off the epoch grid of the first epoch, out of range). */
int epoch_clock_place(const struct epoch_clock *c, const struct tz_zone *zone, int epoch_s,
                      int64_t local, int64_t *ts, char *why, size_t cap);
/* Records an epoch that was accepted (its values checked too). */
void epoch_clock_accept(struct epoch_clock *c, int64_t local, int64_t ts);

#endif
