/* Sleep/wake scoring of 60-s counts (Cole–Kripke 1992, Sadeh 1994) in the ActiLife and
 * pyActigraphy conventions, Webster rescoring, and sleep periods by the Tudor-Locke
 * algorithm as ActiLife 6 does it, with the choice of one main period per night
 * (../shared/reference/actigraphy.md §4, §7; docs/actigraphy.md, "Sleep/wake scoring and
 * the main sleep period").
 *
 * Pure: no I/O, no allocation; outputs go to caller buffers. Input is an epoch array x[t] of
 * counts, NaN = missing, plus an optional mask valid[t] (0 = exclude, treated like NaN: the
 * caller passes non-wear this way). Scores are 1 = sleep, 0 = wake, 2 = undefined.
 *
 * Edges and missing data. The array's two ends are treated as the recording's ends: zero
 * padding (ActiLife) or wake (pyActigraphy, whose centred windows are NaN there). A window
 * that contains a missing epoch scores undefined (reference §7.6), never sleep or wake.
 * Runs of undefined epochs split the series for Webster rescoring and for sleep periods.
 *
 * Streaming. A caller that keeps a window of recent epochs and scores it again as epochs
 * arrive gets exact scores for every epoch with `before` epochs before it and `after` after it
 * in the array (sleepscore_context; an array end that is the recording's own end counts as
 * enough); scores nearer the array's ends are provisional. Sleep periods have no fixed horizon:
 * sleepscore_night finds its own synchronisation point before the night and says whether
 * the array reached far enough after it (lead_exact, final). */
#ifndef ENGAGED_SLEEPSCORE_H
#define ENGAGED_SLEEPSCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest series accepted in one call (about 32 years of minutes). */
#define SLEEPSCORE_MAX_EPOCHS ((size_t)1 << 24)
/* Largest Tudor-Locke length parameter (epochs). */
#define SLEEPSCORE_MAX_LEN 10080u

enum sleepscore_state {
    SLEEPSCORE_WAKE = 0,
    SLEEPSCORE_SLEEP = 1,
    SLEEPSCORE_UNDEF = 2, /* the scoring window holds a missing epoch */
};

enum sleepscore_algo {
    SLEEPSCORE_COLE_KRIPKE, /* 1-min "mean" variant: P 0.001, weights 106 54 58 76 230 74 67 */
    SLEEPSCORE_SADEH,
};

enum sleepscore_mode {
    /* ActiLife 6 / actigraph.sleepr: CK on min(c/100, 300); Sadeh on min(c, 300), NAT 50 <= x
     * < 100, ln(x_t + 1), sleep if PS > -4; zero padding; every epoch scored */
    SLEEPSCORE_ACTILIFE,
    /* pyActigraphy 1.2: CK(settings='mean') on c/30, first/last 4 epochs wake; Sadeh() on raw
     * counts, 50 < x < 100, ln(x_{t+1} + 1), sleep if PS > 0, first/last 5 epochs wake */
    SLEEPSCORE_PYACTIGRAPHY,
};

struct sleepscore_params {
    enum sleepscore_algo algo;
    enum sleepscore_mode mode;
    bool webster; /* Webster 1982 rescoring (pyActigraphy's default; ActiLife does none) */
};

/* Tudor-Locke 2014 sleep-period detection, in epochs (minutes). */
struct sleepscore_tl {
    unsigned bedtime_start;      /* sleep epochs in a row that start a bed period (5) */
    unsigned wake_time_end;      /* wake epochs in a row that end it (10) */
    unsigned min_sleep_period;   /* shortest period kept (160) */
    unsigned max_sleep_period;   /* longest period kept (1440) */
    unsigned min_nonzero_epochs; /* fewest epochs with counts > 0 in a kept period (0) */
};

#define SLEEPSCORE_TL_DEFAULT {5, 10, 160, 1440, 0}

/* sleepscore_period.flags: the period touches the array's start/end or undefined epochs, so
 * its true start/end may lie outside what was seen. */
#define SLEEPSCORE_LEFT_CENSORED 1u
#define SLEEPSCORE_RIGHT_CENSORED 2u

/* One Tudor-Locke period. Indexes are epochs of the array passed in. */
struct sleepscore_period {
    size_t in_bed;        /* first epoch: bedtime and sleep onset (latency is 0 by definition) */
    size_t out_bed;       /* first epoch after it: the first minute of wake time */
    unsigned duration;    /* out_bed - in_bed */
    unsigned tst;         /* sleep epochs */
    unsigned waso;        /* wake epochs inside (duration - tst) */
    unsigned awakenings;  /* wake bouts inside */
    unsigned sleep_bouts; /* sleep bouts inside, and those of one epoch */
    unsigned sleep_bouts_1;
    unsigned nonzero;     /* epochs with counts > 0 */
    double total_counts;
    double efficiency;                /* 100 tst / duration */
    double ave_awakening;             /* waso / awakenings; 0 without awakenings */
    double movement_index;            /* 100 nonzero / duration */
    double fragmentation_index;       /* 100 sleep_bouts_1 / sleep_bouts */
    double sleep_fragmentation_index; /* movement + fragmentation */
    double midpoint;                  /* in_bed + duration / 2, in epochs */
    unsigned flags;                   /* SLEEPSCORE_*_CENSORED */
};

/* The main sleep period of one night (see sleepscore_night). */
struct sleepscore_night {
    bool found;                    /* false: no uncensored period starts in the window */
    struct sleepscore_period main; /* valid when found */
    unsigned n_periods;            /* periods starting in the window, censored ones included */
    unsigned n_censored;
    size_t n_scored; /* epochs of the window (inside the array) scored sleep or wake */
    size_t n_undef;  /* epochs of the window (inside the array) undefined */
    bool lead_exact; /* a synchronisation point precedes the window (else exact only if the
                      * array starts at the recording's start) */
    bool final;      /* more epochs after the array cannot change the result */
};

/* Scores every epoch into ret_sw[0..n). epoch_s must be 60. Returns 0, -EINVAL (NULL pointer,
 * unknown algorithm or mode, epoch length), -E2BIG (n > SLEEPSCORE_MAX_EPOCHS) or -EDOM (a
 * count that is negative or infinite; then ret_sw holds no scores). */
int sleepscore_score(const struct sleepscore_params *p, const double *x, const uint8_t *valid,
                     size_t n, unsigned epoch_s, uint8_t *ret_sw);

/* Epochs of context each side that make sleepscore_score exact: CK ActiLife 4/2, CK
 * pyActigraphy 4/4, Sadeh 5/5; Webster adds 29 each side. 0 or -EINVAL. */
int sleepscore_context(const struct sleepscore_params *p, size_t *ret_before, size_t *ret_after);

/* Webster rescoring in place (reference §4.3): five rules evaluated on the original scores,
 * only ever turning sleep into wake; each run of defined scores is rescored on its own.
 * 0, -EINVAL (NULL with n > 0, a value other than 0/1/2) or -E2BIG. */
int sleepscore_webster(uint8_t *sw, size_t n);

/* All Tudor-Locke periods of sw[0..n) in time order, into out[0..cap). x (may be NULL: no
 * counts) feeds total_counts, nonzero and the min_nonzero_epochs filter. Periods touching
 * the array's ends or undefined epochs are included, flagged censored (ActiLife drops a
 * period still open at the end of the data: skip SLEEPSCORE_RIGHT_CENSORED to match it).
 * Returns the number of periods, which may exceed cap (only cap are written), or -EINVAL
 * (bad parameters, NULL sw, a score other than 0/1/2) or -E2BIG. */
int sleepscore_periods(const struct sleepscore_tl *tl, const uint8_t *sw, const double *x,
                       size_t n, struct sleepscore_period *out, size_t cap);

/* The main sleep period of the night whose window is epochs [win_start, win_end) of the
 * array: the longest (ties: the earliest) uncensored Tudor-Locke period whose in-bed epoch
 * lies in the window. The streaming caller uses local noon to the next local noon (23 or 25 h
 * across DST changes), so a period belongs to the night in which it starts, even when it
 * ends after the next noon. The window may extend past the array (then final is false).
 *
 * Work is proportional to the night, not the array: the scan starts at the last
 * synchronisation point before win_start (wake_time_end wake epochs in a row, or undefined
 * epochs), found by scanning back; lead_exact says whether one was found. final is true once
 * every period starting in the window has ended inside the array and no new one can start
 * in it: in streaming, emit the night when final is true (at the latest max_sleep_period +
 * wake_time_end epochs after win_end). Both flags assume the scores passed in are exact:
 * leave out the provisional ends of a scored window (sleepscore_context) before calling.
 * 0 or -EINVAL (bad parameters or window, NULL sw or ret, a score other than 0/1/2 in the
 * part scanned) or -E2BIG. */
int sleepscore_night(const struct sleepscore_tl *tl, const uint8_t *sw, const double *x, size_t n,
                     size_t win_start, size_t win_end, struct sleepscore_night *ret);

#endif
