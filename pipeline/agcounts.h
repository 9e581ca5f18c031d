/* ActiGraph activity counts (Neishabouri et al. 2022, as agcounts 0.2.6 computes them) and
 * ENMO (GGIR) from one device's raw triaxial acceleration, as a stream: blocks of samples
 * in, completed epochs out through a callback. Pure: no I/O, no clock, memory fixed at
 * creation whatever the recording's length. Algorithm and conventions:
 * ../shared/reference/actigraphy.md sections 1 and 2; behaviour: docs/actigraphy.md,
 * "Counts from raw acceleration".
 *
 * Output depends only on the sample sequence, never on how it is split into blocks. */
#ifndef ENGAGED_AGCOUNTS_H
#define ENGAGED_AGCOUNTS_H

#include <stddef.h>
#include <stdint.h>

#define AGC_BLOCK_MAX 4096 /* samples per agc_feed call (EV_ACCEL_MAX) */
#define AGC_G_LIMIT 256.0  /* |component| above this (in g), NaN or inf: invalid sample */

/* One epoch. Axes are the device's raw x, y, z; ActiLife Axis1 is counts[1] (raw y). */
struct agc_epoch {
    int64_t index;       /* epochs since the first sample: covers [index*E, (index+1)*E) s */
    int32_t counts[3];   /* per-axis counts */
    double enmo;         /* g: mean of max(0, |a| - 1) over the valid samples; NaN if none */
    uint32_t n_samples;  /* raw samples received in the epoch, valid or not */
    uint32_t n_valid;    /* of those, valid (used by ENMO) */
    uint32_t n_expected; /* rate * epoch length */
    int partial;         /* 1 only for the last epoch, emitted by agc_flush, when the input
                          * ended inside it: counts sum the complete 0.1-s blocks received,
                          * coverage is n_samples / n_expected */
};

/* Called once per epoch, in index order; e is borrowed for the call. It must not feed,
 * flush or free the converter that calls it. */
typedef void (*agc_epoch_fn)(const struct agc_epoch *e, void *user_data);

struct agc;

/* Checks a sample rate (Hz) and epoch length (s). Accepted rates, exactly: 30, 40, 50, 60,
 * 70, 80, 90, 100 (ActiGraph devices) and 32, 64, 128, 256 (power-of-two devices such as
 * the Axivity AX3). Epoch: 1..86400 s dividing 86400. 0, or -EINVAL with *why set to a
 * static, printable reason (why may be NULL). */
int agc_check(double hz, int epoch_s, const char **why);

/* A converter for one continuous stream at hz. NULL on failure with *err = -EINVAL (*why
 * as agc_check, or no cb) or -ENOMEM; err and why may be NULL. */
struct agc *agc_new(double hz, int epoch_s, agc_epoch_fn cb, void *user_data, int *err,
                    const char **why);
void agc_free(struct agc *c);

/* Feeds the next n (<= AGC_BLOCK_MAX) samples, g[i] = {x, y, z} in g. A sample with any
 * component invalid (see AGC_G_LIMIT) is counted in n_samples but not n_valid; the count
 * filters see the previous valid sample instead, or the first valid one for samples
 * before it (so those wait for it, or for agc_flush). Epochs completed by these samples are
 * emitted before the call returns, except that the power-of-two rates need up to 0.54 s of
 * later input (the resampler's look-ahead). Returns 0, -E2BIG (n too large), -EINVAL (g NULL with n > 0) or -EPIPE
 * (after agc_flush); nothing is consumed on error. */
int agc_feed(struct agc *c, const float (*g)[3], size_t n);
/* The same for samples in double precision: agcounts reads its input as doubles, and a
 * value such as 0.0125 g is not a float, so exact agreement with agcounts on input with
 * more than float precision needs this entry. */
int agc_feed_d(struct agc *c, const double (*g)[3], size_t n);

/* End of input: emits every remaining epoch, the last one flagged partial if the input
 * ended inside it. Further feeds fail with -EPIPE. Returns 0, or -EPIPE if called twice. */
int agc_flush(struct agc *c);

/* Totals since creation. */
uint64_t agc_samples(const struct agc *c);
uint64_t agc_invalid(const struct agc *c);

#endif
