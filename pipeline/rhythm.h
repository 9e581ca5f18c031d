/* Non-parametric rest-activity rhythm metrics over an epoch array: interdaily stability (IS),
 * intradaily variability (IV), L5, M10 and their onsets, relative amplitude (RA), and the
 * Sleep Regularity Index (SRI). Pure: no I/O, no clock; the caller owns every buffer.
 *
 * Conventions (shared/reference/actigraphy.md §5-§7; docs/actigraphy.md "Rest-activity rhythm"):
 *   RHY_CLASSIC       van Someren/Witting formulas with population variances; missing bins are
 *                     excluded; raw counts; IS needs 2 complete days; SRI is Phillips' pooled
 *                     index with missing pairs excluded.
 *   RHY_PYACTIGRAPHY  reproduces pyActigraphy 1.2: sample variances (ddof 1), its bin rules
 *                     (an unmasked all-missing bin sums to 0, a trailing partial bin is kept),
 *                     counts binarised at > 4; SRI is its per-time-of-day-slot mean.
 *
 * Determinism: every sum runs in one fixed order over the array (compensated where values are
 * not integers), and L5/M10 window sums of integer counts are compared as exact rationals, so a
 * given array gives bit-identical results however its epochs arrived. */
#ifndef ENGAGED_RHYTHM_H
#define ENGAGED_RHYTHM_H

#include <stddef.h>
#include <stdint.h>

enum rhy_conv { RHY_CLASSIC = 0, RHY_PYACTIGRAPHY = 1 };

/* Where IS/IV bins start: at the first epoch (pyActigraphy, GGIR; whole recordings), or at
 * local midnight (local-day windows: the 13:00 bin is 13:00-14:00 whatever the first epoch). */
enum rhy_origin { RHY_ORIGIN_RECORDING = 0, RHY_ORIGIN_LOCAL_DAY = 1 };

/* Bins cut short by either end of the array: kept with what they hold, or missing.
 * AUTO = KEEP, except DROP for classic over local-day bins (an hour still in progress, or one
 * that began before the window, is not a measured hour). */
enum rhy_edge { RHY_EDGE_AUTO = 0, RHY_EDGE_KEEP = 1, RHY_EDGE_DROP = 2 };

struct rhy_opts {
    enum rhy_conv conv;
    enum rhy_origin origin;
    int binarize;           /* 1: an epoch becomes 1 if count > threshold, else 0 */
    double threshold;       /* default 4 */
    int bin_s;              /* IS/IV bin width in s: a multiple of epoch_s dividing 86400 */
    int exclude_if_mask;    /* 1 (default): one masked epoch makes its bin missing;
                             * 0: only a bin masked throughout is missing */
    double bin_min_valid;   /* classic: fraction of a bin's epochs that must be valid (1.0) */
    enum rhy_edge edge;
    double day_min_valid;   /* fraction of a day's bins that must be valid for the day to count
                             * as complete (1.0) */
    int is_min_days;        /* IS is NaN with fewer complete days (classic 2, pyactigraphy 0) */
};

/* Defaults of a convention: binarize off (classic) or on at > 4 (pyactigraphy), 1 h bins,
 * recording origin, AUTO edges, exclude_if_mask 1, bin_min_valid and day_min_valid 1.0. */
void rhy_opts_init(struct rhy_opts *o, enum rhy_conv conv);

/* An epoch array on one local clock. x[t] is the epoch starting tod0_s + t*epoch_s seconds after
 * the local midnight of the first day; NaN or infinite = missing. mask[t] == 0 excludes epoch t
 * (non-wear); mask NULL excludes nothing. For rhy_sri, x holds sleep states: 1 sleep, 0 wake. */
struct rhy_series {
    const double *x;
    const uint8_t *mask;
    size_t n;
    int epoch_s;  /* divides 86400 */
    int tod0_s;   /* 0..86399 */
};

/* NaN marks an undefined metric, onsets -1. Every metric carries its coverage. */
struct rhy_result {
    double is, iv, l5, m10, ra;
    int32_t l5_onset_s, m10_onset_s; /* seconds after local midnight; first onset of ties */
    /* IS/IV: bins N valid of expected (bins the array spans), time-of-day slots p used of
     * 86400/bin_s, complete days of days spanned; IV: bin pairs with both sides valid */
    size_t is_n_valid, is_n_expected;
    int32_t is_slots, is_slots_expected;
    int32_t days_complete, days_expected;
    size_t iv_n_valid, iv_n_expected;
    /* L5/M10: time-of-day slots (86400/epoch_s of them) holding a valid epoch; partial = 1 when
     * a slot is empty (it then contributes 0 to window sums, as in pyActigraphy) */
    int32_t lmx_n_valid, lmx_n_expected;
    int lmx_partial;
    size_t n_epochs_valid, n_epochs;
};

struct rhy_sri_result {
    double sri;
    /* epoch pairs (t, t + 24 h) with both sides valid, of all such pairs in the array */
    size_t n_valid, n_expected;
    size_t n_day_pairs; /* day pairs (d, d + 1) in the array; may exceed max_pairs */
};

/* Bytes of scratch that rhy_compute and rhy_sri need for n epochs of epoch_s with bins of
 * bin_s (0 = 3600), or 0 if the lengths are invalid. Allocate once, reuse for every call. */
size_t rhy_work_size(size_t n, int epoch_s, int bin_s);

/* IS, IV, L5, M10, RA over s. work: rhy_work_size() bytes (8-byte aligned), or NULL to let the
 * call allocate and free its own. Returns 0, -EINVAL (bad lengths, tod0_s or options; *r is
 * then all NaN), -ENOSPC (work_len too small) or -ENOMEM. */
int rhy_compute(const struct rhy_series *s, const struct rhy_opts *o, void *work, size_t work_len,
                struct rhy_result *r);

/* SRI over sleep states. Classic: Phillips pooled, -100 + 200 * equal pairs / valid pairs.
 * pyactigraphy: 200 * mean over time-of-day slots of the share of equal consecutive-day pairs
 * - 100, NaN if any epoch is missing or a slot has no pair. Per day pair d (days as for IS
 * bins: from the first epoch, or local calendar days), pair_sri[d] = the pooled index of that
 * pair and pair_frac[d] = valid pairs / epochs per day, for d < max_pairs (arrays may be NULL
 * when max_pairs is 0). Returns 0, -EINVAL (bad lengths, or a state not 0, 1 or NaN), -ENOSPC,
 * -ENOMEM. */
int rhy_sri(const struct rhy_series *s, const struct rhy_opts *o, void *work, size_t work_len,
            struct rhy_sri_result *r, double *pair_sri, double *pair_frac, size_t max_pairs);

#endif
