/* Epoch-level actigraphy throughput: participant-weeks of 60-s counts per second.
 *
 * Each participant-week (10,080 epochs, noon to noon) goes, in one batch, through the
 * epoch-level wear and sleep work: Choi non-wear (paper defaults 90/30/2), the non-wear mask,
 * Cole–Kripke (ActiLife) on the worn epochs, and the Tudor-Locke main sleep period of each
 * of the 7 nights (noon to noon). A streaming caller that flags each day with its context
 * margins (about 2 h each side for Choi) does about 17 % more non-wear work.
 *
 * The weeks are generated up front (not timed): days with activity, nights of mostly still
 * minutes from a jittered bedtime, restless spells, naps, some days with the device left off
 * for a few hours and rare gaps in the data; a pool of distinct weeks (default 256, 20 MB of
 * counts, so the data does not sit in cache) is cycled through.
 *
 * Baseline in the same run: one plain pass summing each week's epochs (skipping NaN).
 * Prints participant-weeks/s for both, their ratio, a per-stage split, and a checksum.
 * Best of 3 rounds. Usage: bench_epochs [participant-weeks, default 10000] [pool, 256]. */
#include "benchlib.h"
#include "pipeline/nonwear.h"
#include "pipeline/sleepscore.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WEEK 10080
#define DAY 1440

static uint64_t rng = 0x853c49e6748fea9bu;
static unsigned rnd(unsigned m)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % m);
}

/* One week from local noon: 8 days are drawn from midnight and the week is cut out of them. */
static void gen_week(double *x)
{
    static double days[8 * DAY];
    static bool asleep[8 * DAY];
    memset(asleep, 0, sizeof asleep);
    for (size_t t = 0; t < 6 * 60; t++) /* the end of the night before day 0 */
        asleep[t] = true;
    for (size_t d = 0; d < 8; d++) {
        size_t bed = d * DAY + 22 * 60 + rnd(150), rise = (d + 1) * DAY + 6 * 60 + rnd(150);
        for (size_t t = bed; t < rise && t < 8 * DAY; t++)
            asleep[t] = true;
        if (rnd(4) == 0) /* a nap */
            for (size_t t = d * DAY + 14 * 60 + rnd(120), k = 0; k < 45; k++)
                asleep[t + k] = true;
    }
    for (size_t t = 0; t < 8 * DAY; t++) {
        if (asleep[t])
            days[t] = rnd(10) == 0 ? (double)rnd(rnd(30) == 0 ? 800 : 60) : 0;
        else
            days[t] = rnd(5) == 0 ? 0 : (double)rnd(rnd(3) ? 600 : 4000);
    }
    for (size_t d = 0; d < 8; d++)
        if (rnd(5) == 0) /* the device left on a table for 1 to 5 hours */
            for (size_t t = d * DAY + 15 * 60 + rnd(180), k = 60 + rnd(240); k > 0; k--, t++)
                days[t] = 0;
    memcpy(x, days + 720, WEEK * sizeof *x);
    if (rnd(8) == 0) { /* a gap in the data */
        size_t a = rnd(WEEK - 200), len = 5 + rnd(120);
        for (size_t t = a; t < a + len; t++)
            x[t] = NAN;
    }
}

struct totals {
    double baseline_sum;
    uint64_t nights_found, tst, nonwear;
    double t_nonwear, t_sleep, t_nights;
};

static void die(const char *what, int r)
{
    fprintf(stderr, "bench_epochs: %s failed: %d\n", what, r);
    exit(1);
}

static void one_week(const double *x, uint8_t *flags, uint8_t *valid, uint8_t *sw,
                     struct totals *tot, bool split)
{
    static const struct sleepscore_params ck = {SLEEPSCORE_COLE_KRIPKE, SLEEPSCORE_ACTILIFE,
                                                false};
    static const struct sleepscore_tl tl = SLEEPSCORE_TL_DEFAULT;
    static struct nonwear_params choi;
    if (!choi.min_period_len)
        nonwear_defaults(NONWEAR_CHOI, &choi);
    double t0 = split ? bench_now() : 0;
    int r = nonwear_detect(&choi, x, NULL, WEEK, 60, flags);
    if (r < 0)
        die("nonwear_detect", r);
    for (size_t t = 0; t < WEEK; t++) {
        valid[t] = flags[t] == NONWEAR_WORN;
        tot->nonwear += flags[t] == NONWEAR_NOT_WORN;
    }
    double t1 = split ? bench_now() : 0;
    if ((r = sleepscore_score(&ck, x, valid, WEEK, 60, sw)) < 0)
        die("sleepscore_score", r);
    double t2 = split ? bench_now() : 0;
    for (size_t d = 0; d < 7; d++) {
        struct sleepscore_night night;
        if ((r = sleepscore_night(&tl, sw, x, WEEK, d * DAY, (d + 1) * DAY, &night)) < 0)
            die("sleepscore_night", r);
        tot->nights_found += night.found;
        tot->tst += night.found ? night.main.tst : 0;
    }
    if (split) {
        double t3 = bench_now();
        tot->t_nonwear += t1 - t0;
        tot->t_sleep += t2 - t1;
        tot->t_nights += t3 - t2;
    }
}

int main(int argc, char **argv)
{
    long weeks = argc > 1 ? atol(argv[1]) : 10000, pool = argc > 2 ? atol(argv[2]) : 256;
    if (weeks < 1 || pool < 1 || pool > 100000) {
        fprintf(stderr, "usage: bench_epochs [participant-weeks >= 1] [pool 1..100000]\n");
        return 2;
    }
    double *data = malloc((size_t)pool * WEEK * sizeof *data);
    uint8_t *flags = malloc(WEEK), *valid = malloc(WEEK), *sw = malloc(WEEK);
    if (!data || !flags || !valid || !sw) {
        fprintf(stderr, "bench_epochs: out of memory\n");
        return 1;
    }
    for (long w = 0; w < pool; w++)
        gen_week(data + (size_t)w * WEEK);

    double best_base = 1e30, best_pipe = 1e30, cpu_base = 1e30, cpu_pipe = 1e30;
    struct totals tot = {0}, last = {0};
    for (int round = 0; round < 3; round++) {
        double t0 = bench_now(), c0 = bench_cpu(), sum = 0;
        for (long w = 0; w < weeks; w++) {
            const double *x = data + (size_t)(w % pool) * WEEK;
            for (size_t t = 0; t < WEEK; t++)
                if (!isnan(x[t]))
                    sum += x[t];
        }
        double tb = bench_now() - t0, cb = bench_cpu() - c0;
        memset(&tot, 0, sizeof tot);
        tot.baseline_sum = sum;
        t0 = bench_now();
        c0 = bench_cpu();
        for (long w = 0; w < weeks; w++)
            one_week(data + (size_t)(w % pool) * WEEK, flags, valid, sw, &tot, false);
        double tp = bench_now() - t0, cp = bench_cpu() - c0;
        best_base = tb < best_base ? tb : best_base;
        best_pipe = tp < best_pipe ? tp : best_pipe;
        cpu_base = cb < cpu_base ? cb : cpu_base;
        cpu_pipe = cp < cpu_pipe ? cp : cpu_pipe;
        last = tot;
    }
    /* per-stage split, in a separate pass (the clock reads cost a little) */
    struct totals split = {0};
    for (long w = 0; w < weeks; w++)
        one_week(data + (size_t)(w % pool) * WEEK, flags, valid, sw, &split, true);
    double stages = split.t_nonwear + split.t_sleep + split.t_nights;

    printf("bench_epochs: %ld participant-weeks of 60-s counts (%ld distinct, %.1f MB), "
           "best of 3\n",
           weeks, pool, (double)pool * WEEK * sizeof *data / 1e6);
    printf("  baseline (sum epochs)      %9.0f participant-weeks/s wall, %9.0f per CPU second\n",
           (double)weeks / best_base, (double)weeks / cpu_base);
    printf("  choi + ck + 7 main periods %9.0f participant-weeks/s wall, %9.0f per CPU second "
           "(%.1f ns per epoch)\n",
           (double)weeks / best_pipe, (double)weeks / cpu_pipe,
           cpu_pipe / ((double)weeks * WEEK) * 1e9);
    printf("  pipeline / baseline time   %9.2f wall, %9.2f CPU\n", best_pipe / best_base,
           cpu_pipe / cpu_base);
    printf("  split: non-wear + mask %.0f %%, cole-kripke %.0f %%, nights %.0f %%\n",
           100 * split.t_nonwear / stages, 100 * split.t_sleep / stages,
           100 * split.t_nights / stages);
    printf("  checksum: nights with a main period %.1f %%, mean TST %.1f min, non-wear %.1f %%, "
           "sum %.0f\n",
           100.0 * (double)last.nights_found / (7.0 * (double)weeks),
           last.nights_found ? (double)last.tst / (double)last.nights_found : 0.0,
           100.0 * (double)last.nonwear / ((double)weeks * WEEK), last.baseline_sum);
    free(data);
    free(flags);
    free(valid);
    free(sw);
    return 0;
}
