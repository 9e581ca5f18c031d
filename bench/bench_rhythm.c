/* Rest-activity rhythm throughput (pipeline/rhythm.c), as the streaming caller uses it: every
 * metric (IS, IV, L5, M10, RA, SRI) over the last 7 local days, passed as 8 local days of 60-s
 * epochs (11,520) with a non-wear mask, caller-owned scratch, local-day bins.
 *
 * Prints participant-weeks/s for
 *   baseline      one pass over the same epochs and mask summing the valid counts: the floor
 *                 set by reading the data once
 *   classic       rhy_compute + rhy_sri, classic convention (raw counts)
 *   pyactigraphy  the same in pyactigraphy mode (binarised counts, per-slot SRI; its SRI is
 *                 NaN as soon as one state is missing, so it gets a complete state array)
 * and each one's cost in baseline passes (best of 5 alternating rounds).
 * Usage: bench_rhythm [participant-weeks per loop, default 10000]. */
#include "benchlib.h"
#include "pipeline/rhythm.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAYS 8
#define EPOCHS (DAYS * 1440)
#define WEEKS 64 /* distinct participant-weeks, cycled (about 8 MiB of epochs) */

static double *counts[WEEKS], *states[WEEKS], *full[WEEKS];
static uint8_t *masks[WEEKS];
static volatile double sink;

static uint64_t rng = 88172645463325252ULL;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* A plausible week: active days with a shifting bedtime, quiet nights, one 2-h non-wear gap
 * a day, an occasional missing epoch; sleep = count <= 4 during the night. */
static void make_week(int w)
{
    counts[w] = malloc(EPOCHS * sizeof(double));
    states[w] = malloc(EPOCHS * sizeof(double));
    full[w] = malloc(EPOCHS * sizeof(double));
    masks[w] = malloc(EPOCHS);
    for (int d = 0; d < DAYS; d++) {
        int wake = 6 * 60 + (int)(uniform() * 120), bed = 22 * 60 + (int)(uniform() * 120);
        int off = 9 * 60 + (int)(uniform() * 600);
        for (int m = 0; m < 1440; m++) {
            int t = d * 1440 + m;
            int awake = m >= wake && m < bed;
            double c = awake ? floor(uniform() * 900) : (uniform() < 0.1 ? floor(uniform() * 60) : 0);
            counts[w][t] = uniform() < 0.001 ? NAN : c;
            masks[w][t] = !(m >= off && m < off + 120);
            full[w][t] = !awake && c <= 4;
            states[w][t] = isnan(counts[w][t]) ? NAN : full[w][t];
        }
    }
}

/* participant-weeks per second of one loop, repeated for at least `weeks` weeks */
static double run(int loop, long weeks, void *work, size_t work_len, double *cpu_rate)
{
    struct rhy_opts o;
    rhy_opts_init(&o, loop == 2 ? RHY_PYACTIGRAPHY : RHY_CLASSIC);
    o.origin = RHY_ORIGIN_LOCAL_DAY;
    o.day_min_valid = 0.5; /* every day has a non-wear gap: let IS count those days */
    double acc = 0, t0 = bench_now(), c0 = bench_cpu();
    long defined = 0;
    for (long i = 0; i < weeks; i++) {
        int w = (int)(i % WEEKS);
        if (loop == 0) {
            const double *x = counts[w];
            const uint8_t *m = masks[w];
            double s = 0;
            for (size_t t = 0; t < EPOCHS; t++)
                s += ((x[t] - x[t] == 0) & (m[t] != 0)) ? x[t] : 0.0;
            acc += s;
            continue;
        }
        struct rhy_series s = {.x = counts[w], .mask = masks[w], .n = EPOCHS, .epoch_s = 60,
                               .tod0_s = 0};
        struct rhy_result r;
        struct rhy_sri_result q;
        double ps[DAYS], pf[DAYS];
        if (rhy_compute(&s, &o, work, work_len, &r) != 0)
            return -1;
        s.x = loop == 2 ? full[w] : states[w];
        s.mask = loop == 2 ? NULL : s.mask;
        if (rhy_sri(&s, &o, work, work_len, &q, ps, pf, DAYS) != 0)
            return -1;
        acc += r.is + r.iv + r.ra + r.l5_onset_s + q.sri;
        defined += !isnan(r.is) && !isnan(r.iv) && !isnan(r.ra) && !isnan(q.sri);
    }
    double t = bench_now() - t0, c = bench_cpu() - c0;
    sink = acc;
    if (loop && defined != weeks)
        return -1; /* every metric must have been computed, not skipped as undefined */
    *cpu_rate = (double)weeks / c;
    return (double)weeks / t;
}

int main(int argc, char **argv)
{
    long weeks = argc > 1 ? atol(argv[1]) : 10000;
    if (weeks <= 0) {
        fprintf(stderr, "usage: bench_rhythm [participant-weeks]\n");
        return 2;
    }
    for (int w = 0; w < WEEKS; w++)
        make_week(w);
    size_t work_len = rhy_work_size(EPOCHS, 60, 3600);
    void *work = malloc(work_len);
    static const char *const names[3] = {"baseline", "classic", "pyactigraphy"};
    double best[3] = {0, 0, 0}, best_cpu[3] = {0, 0, 0};
    for (int round = 0; round < 5; round++)
        for (int loop = 0; loop < 3; loop++) {
            double c, r = run(loop, weeks, work, work_len, &c);
            if (r < 0) {
                fprintf(stderr, "bench_rhythm: %s failed\n", names[loop]);
                return 1;
            }
            if (r > best[loop]) {
                best[loop] = r;
                best_cpu[loop] = c;
            }
        }
    printf("bench_rhythm: %ld participant-weeks per loop, %d epochs (60 s) each, work %zu bytes\n",
           weeks, EPOCHS, work_len);
    for (int loop = 0; loop < 3; loop++)
        printf("  %-13s %12.0f participant-weeks/s wall (%.0f per CPU second)%s%.1f baseline "
               "passes\n",
               names[loop], best[loop], best_cpu[loop], loop ? ", " : "  = ",
               best[0] / best[loop]);
    free(work);
    for (int w = 0; w < WEEKS; w++) {
        free(counts[w]);
        free(states[w]);
        free(full[w]);
        free(masks[w]);
    }
    return 0;
}
