/* The actigraphy family's internals, shared by act.c (state, inputs, day closing, revisions)
 * and act_calc.c (the features computed from the epoch ring). docs/actigraphy.md, "Streaming,
 * days and windows", describes the behaviour. */
#ifndef ENGAGED_ACT_H
#define ENGAGED_ACT_H

#include <stdint.h>

#include "pipeline/family.h"

struct agc;
struct act_resampler;

/* One epoch of the participant's grid (60 s, or the input's epoch when that is longer). */
struct act_cell {
    float c;          /* the counts the algorithms use before count_axis: scalar or axis 1 */
    float ax[3];      /* x, y, z counts (triaxial input) */
    uint16_t fill_s;  /* seconds of the epoch covered by input; full when == grid epoch */
    uint8_t flags;    /* ACT_CELL_* */
    uint8_t pad;
};
#define ACT_CELL_TRIAX 1u
#define ACT_CELL_DEVICE_OFF 2u /* the device reported it was off the wrist */

#define ACT_NREC 24       /* records of one closed day */
#define ACT_CACHE_DAYS 12 /* closed days remembered for revisions (revise is at most 7 d) */
#define ACT_LOOKAHEAD_MS (3 * 3600000LL) /* a day closes this long after its end */

struct act_rec {
    const char *feature, *unit;
    enum window_kind kind;
    int64_t start, end;
    int has;
    double v, cov;
};

struct act_day {
    int64_t start;
    int revision;
    int valid;        /* act.valid_day, for adherence.wear_7d; -1 no data */
    size_t n;
    struct act_rec rec[ACT_NREC];
};

struct act {
    struct act_cell *ring;  /* NULL until the first wearable epoch */
    size_t ncells;
    int64_t k_hi;           /* newest cell index (absolute: floor(ts / grid)) */
    int64_t k_first;        /* the first cell with data: where the recording starts */
    int e_in, grid_s;       /* input epoch, grid epoch (s) */
    int64_t last_counts_ts;
    uint64_t rejected;      /* counts/accel refused (epoch length, overlap, too old, rate) */
    uint64_t reported;      /* of those, passed on to the pipeline's statistics */
    /* raw acceleration: one converter for the current continuous stream */
    struct agc *agc;
    const struct pipeline_conf *conf; /* for the converter's callback */
    double agc_hz;
    int64_t agc_t0;         /* time of its first sample */
    uint64_t agc_fed;       /* input samples taken since agc_t0 */
    /* rates the counts algorithm does not define are first resampled to 30 Hz, linearly */
    struct act_resampler *rs;
    int device_off;
    /* closed days, oldest first */
    struct act_day *days;   /* ACT_CACHE_DAYS, allocated with the ring */
    size_t n_days;
    /* --summary: every cell since the first, grown on demand */
    struct act_cell *all;
    int64_t all_k0;
    size_t all_n, all_cap;
    /* scratch for the analysis, grown on demand */
    double *x, *xs;
    uint8_t *valid, *wear, *sw;
    uint8_t *smask;
    size_t scap;
    int64_t an_k0;          /* the last analysis: cells [an_k0, an_k0 + an_n) */
    size_t an_n;
    void *work;
    size_t work_len;
};

/* Adds counts to the cell holding ts (ring and summary); 0 or -1 if refused. */
int act_cell_add(struct act *a, const struct pipeline_conf *c, int64_t ts, int secs, double counts,
                 const double ax[3], int triax);

/* The records of day w into d (d->start, d->n, d->rec, d->valid); prev_valid[i] is act.valid_day
 * of the i-th day before w (-1 unknown), for adherence.wear_7d. */
void act_compute_day(struct act *a, struct pstate *ps, const struct day_window *w,
                     const int prev_valid[6], struct act_day *d);
/* replay --epochs: the epoch records of day w. */
void act_emit_epochs(struct act *a, struct pstate *ps, const struct day_window *w);
/* replay --summary: the `recording` records over every cell kept. */
void act_emit_summary(struct act *a, struct pstate *ps);

#endif
