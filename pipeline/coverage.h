/* When a stream delivered data: consecutive events no more than `gap` apart cover the time
 * between them (docs/features.md, "Coverage"). Kept as sorted, disjoint intervals. */
#ifndef ENGAGED_COVERAGE_H
#define ENGAGED_COVERAGE_H

#include <stddef.h>
#include <stdint.h>

#define COVERAGE_MAX_INTERVALS 4096

struct cov_interval {
    int64_t a, b; /* first and last event time of a run of events */
};

struct coverage {
    struct cov_interval *iv;
    size_t n, cap;
    uint64_t dropped; /* intervals dropped at the bound (oldest first) */
};

/* Records an event at t (any order; in time order is the fast path). 0 or -ENOMEM. */
int coverage_add(struct coverage *c, int64_t t, int64_t gap);
/* Fraction of [start, end) covered. */
double coverage_fraction(const struct coverage *c, int64_t start, int64_t end);
/* End of the newest interval, or INT64_MIN when empty. */
int64_t coverage_last(const struct coverage *c);
/* Forgets intervals that end before `before`. */
void coverage_trim(struct coverage *c, int64_t before);
void coverage_release(struct coverage *c);

#endif
