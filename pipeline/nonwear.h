/* Non-wear detection from 60-s activity counts: Choi et al. 2011 and Troiano et al. 2008 as
 * ActiLife 6 does them (both `endat_nnz_seq` modes), and pyActigraphy's inactivity mask
 * (../shared/reference/actigraphy.md §3; docs/actigraphy.md, "Non-wear").
 *
 * Pure: no I/O, no allocation. Input is an epoch array: x[t] counts (Axis1 or the vector
 * magnitude, the caller's choice), NaN = missing; an optional mask valid[t] (0 = exclude,
 * treated like NaN). Output is one flag per epoch in a caller buffer of n bytes.
 *
 * Missing epochs are neither worn nor not worn: they get NONWEAR_MISSING and split the series.
 * Each run of present epochs is processed as if it were a whole recording, so a missing
 * stretch behaves exactly like a recording edge (ActiLife has no notion of missing epochs).
 *
 * Streaming. The result for an epoch depends on a bounded neighbourhood, so a caller holding a
 * window of recent epochs gets exact flags for the part of the window that has at least
 * `before` epochs of context before it and `after` epochs after it (nonwear_context; an array
 * end that is the recording's own end counts as enough). Epochs inside the margins are
 * provisional: call again when more data has arrived. Troiano with endat_nnz_seq = false
 * chains its periods greedily from the left, so its look-behind is not bounded by a number of
 * epochs; it is exact from the first synchronisation point instead (nonwear_sync), which any
 * ordinary wear period has. */
#ifndef ENGAGED_NONWEAR_H
#define ENGAGED_NONWEAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest series accepted in one call (about 32 years of minutes). */
#define NONWEAR_MAX_EPOCHS ((size_t)1 << 24)
/* Largest run-length parameter (epochs): 7 days of minutes. */
#define NONWEAR_MAX_LEN 10080u
/* nonwear_context's `before` for algorithms that need nonwear_sync instead. */
#define NONWEAR_CONTEXT_SYNC SIZE_MAX

enum nonwear_flag {
    NONWEAR_NOT_WORN = 0,
    NONWEAR_WORN = 1,
    NONWEAR_MISSING = 2, /* NaN or masked: no data, so no verdict */
};

enum nonwear_algo {
    NONWEAR_CHOI,    /* Choi 2011 (actigraph.sleepr apply_choi, ActiLife) */
    NONWEAR_TROIANO, /* Troiano 2008 (actigraph.sleepr apply_troiano, ActiLife) */
    NONWEAR_PYACT,   /* pyActigraphy inactivity mask: runs of counts < 1 */
};

/* Lengths are in epochs, i.e. minutes at the required 60-s epoch. */
struct nonwear_params {
    enum nonwear_algo algo;
    unsigned min_period_len;   /* shortest non-wear period; pyActigraphy: `duration` */
    unsigned min_window_len;   /* Choi: zero run needed on both sides of an artefact */
    unsigned spike_tolerance;  /* Choi: longest artefact; Troiano: allowed nonzero epochs */
    double activity_threshold; /* Troiano: an epoch is nonzero when count > this */
    double max_nonzero_count;  /* Troiano: counts above this (up to the stoplevel) count as 0 */
    double spike_stoplevel;    /* Troiano: a count above this always ends non-wear */
    bool endat_nnz_seq;        /* Troiano: ActiLife "require consecutive epochs" */
};

/* A run of equal flags: epochs [start, start + len). */
struct nonwear_period {
    size_t start, len;
    uint8_t flag; /* enum nonwear_flag */
};

/* The published defaults: Choi 2011 as in the paper (90, 30, 2; note that ActiLife's export
 * labelled "Choi Default" used min_period_len 60), Troiano 2008 as in ActiLife (60, threshold
 * 0, no max, 2, 100, sequential), pyActigraphy 2 h. -EINVAL for an unknown algorithm. */
int nonwear_defaults(enum nonwear_algo algo, struct nonwear_params *ret);

/* Flags every epoch. epoch_s must be 60 (the parameters and count thresholds are per
 * minute; collapse shorter epochs by summing first). Returns 0, -EINVAL (NULL pointer, bad
 * parameter, epoch length), -E2BIG (n > NONWEAR_MAX_EPOCHS) or -EDOM (a count that is
 * negative or infinite; NaN is fine). On error ret_flags holds no flags. */
int nonwear_detect(const struct nonwear_params *p, const double *x, const uint8_t *valid,
                   size_t n, unsigned epoch_s, uint8_t *ret_flags);

/* Epochs of context each side that make nonwear_detect's flags exact (see the file comment):
 * Choi min_period_len + min_window_len + spike_tolerance both sides; Troiano sequential
 * min_period_len + spike_tolerance both sides; Troiano non-sequential the same after, and
 * NONWEAR_CONTEXT_SYNC before; pyActigraphy min_period_len. 0 or -EINVAL. */
int nonwear_context(const struct nonwear_params *p, size_t *ret_before, size_t *ret_after);

/* The first index from which flags do not depend on anything earlier in the array: one past
 * the first missing epoch or, for Troiano non-sequential, one past the first count above
 * spike_stoplevel or run of spike_tolerance + 1 nonzero epochs; for the other algorithms at
 * most nonwear_context's `before`. n when there is none; only meaningful for valid
 * parameters. */
size_t nonwear_sync(const struct nonwear_params *p, const double *x, const uint8_t *valid,
                    size_t n);

/* Run-length encodes flags into out[0..cap) (ActiLife lists wear and non-wear periods this
 * way). Returns the number of runs, which may exceed cap (then only cap are written). */
size_t nonwear_periods(const uint8_t *flags, size_t n, struct nonwear_period *out, size_t cap);

#endif
