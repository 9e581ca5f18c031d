/* Same event in every bit (ev_equal() treats -0.0 and 0.0 as equal; this does not). Both
 * parse paths zero *ev and fill it through the same code; only the accel pointer differs
 * (each call had its own scratch buffer). Shared by test_event_fast.c and fuzz_event_diff.c. */
#ifndef ENGAGED_TEST_EVENT_IDENTICAL_H
#define ENGAGED_TEST_EVENT_IDENTICAL_H

#include <string.h>

#include "pipeline/event.h"

static inline int identical(const struct event *a, const struct event *b)
{
    struct event bb = *b;
    if (!ev_equal(a, b))
        return 0;
    if (a->type == EV_ACCEL) {
        if (memcmp(a->u.accel.g, b->u.accel.g, a->u.accel.n * sizeof a->u.accel.g[0]) != 0)
            return 0;
        bb.u.accel.g = a->u.accel.g;
    }
    return memcmp(a, &bb, sizeof bb) == 0;
}

#endif
