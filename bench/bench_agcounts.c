/* Raw acceleration -> ActiGraph counts + ENMO (pipeline/agcounts.c), one core.
 *
 * DAYS days of triaxial samples at HZ (default 7 days at 100 Hz: 60,480,000 samples) go
 * through one converter with 60-s epochs, as float blocks of 4096 samples (what accel events
 * carry). The blocks come from a pool generated before timing: rest (gravity in a random
 * orientation plus sensor noise), fidgeting, walking near 2 Hz, running near 3 Hz and
 * jostling noise, scheduled by time of day (nights mostly rest, days mixed).
 *   baseline  the same blocks, |a| = sqrt(x^2 + y^2 + z^2) per sample summed in double
 *   agcounts  agc_feed over the same blocks, then agc_flush
 * The two are interleaved ROUNDS times and the best of each kept (noise on a shared machine
 * only ever slows a run). Prints samples/s, the ratio, and peak RSS (getrusage) before and
 * after the converter runs: the pool is counted in both; the converter is fixed-size.
 * Usage: bench_agcounts [DAYS, default 7] [HZ, default 100] [ROUNDS, default 3] */
#include "benchlib.h"
#include "pipeline/agcounts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BLOCK AGC_BLOCK_MAX
#define PER_CLASS 12

enum { REST, FIDGET, WALK, RUN, JOSTLE, NCLASS };

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static double gauss(void)
{
    double u = uniform() + 1e-300, v = uniform();
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* One block of a class: gravity in a random orientation plus the class's movement. */
static void make_block(float (*b)[3], int cls, int hz)
{
    double g[3] = { gauss(), gauss(), gauss() }, norm = 0;
    for (int a = 0; a < 3; a++)
        norm += g[a] * g[a];
    norm = sqrt(norm);
    static const double amp[NCLASS] = { 0, 0.04, 0.35, 1.1, 0 };
    double fr = cls == WALK ? 1.7 + 0.6 * uniform() : cls == RUN ? 2.6 + 0.5 * uniform()
                                                     : 0.5 + 2.5 * uniform();
    double ph[3] = { 6.3 * uniform(), 6.3 * uniform(), 6.3 * uniform() };
    for (int i = 0; i < BLOCK; i++) {
        double t = (double)i / hz;
        for (int a = 0; a < 3; a++) {
            double v = g[a] / norm + 0.004 * gauss();
            v += amp[cls] * (0.4 + 0.3 * a) * sin(2 * M_PI * fr * t + ph[a]);
            v += 0.25 * amp[cls] * sin(2 * M_PI * 2 * fr * t + ph[a]); /* heel strike */
            if (cls == JOSTLE)
                v += 0.15 * (uniform() - 0.5);
            b[i][a] = (float)(round(v * 1000) / 1000); /* a device's 1 mg resolution */
        }
    }
}

/* The class of the block starting at second t of the day. */
static int schedule(double t)
{
    double h = fmod(t, 86400) / 3600, u = uniform();
    if (h < 7 || h >= 23)
        return u < 0.95 ? REST : FIDGET;
    return u < 0.15 ? REST : u < 0.65 ? FIDGET : u < 0.85 ? WALK : u < 0.90 ? RUN : JOSTLE;
}

struct totals {
    uint64_t epochs, partial;
    int64_t counts[3];
    double enmo;
};

static void on_epoch(const struct agc_epoch *e, void *ud)
{
    struct totals *t = ud;
    t->epochs++;
    t->partial += e->partial;
    for (int a = 0; a < 3; a++)
        t->counts[a] += e->counts[a];
    t->enmo += e->enmo;
}

int main(int argc, char **argv)
{
    double days = argc > 1 ? atof(argv[1]) : 7;
    int hz = argc > 2 ? atoi(argv[2]) : 100;
    int rounds = argc > 3 ? atoi(argv[3]) : 3;
    const char *why;
    if (days <= 0 || rounds < 1 || agc_check(hz, 60, &why) < 0) {
        fprintf(stderr, "usage: bench_agcounts [DAYS] [HZ] [ROUNDS]%s%s\n", days > 0 ? ": " : "",
                days > 0 && rounds >= 1 ? why : "");
        return 2;
    }
    uint64_t total = (uint64_t)(days * 86400 * hz);
    size_t nblocks = (size_t)((total + BLOCK - 1) / BLOCK);

    float(*pool)[BLOCK][3] = malloc(sizeof(*pool) * NCLASS * PER_CLASS);
    unsigned short *plan = malloc(nblocks * sizeof(*plan));
    if (!pool || !plan)
        return 1;
    for (int c = 0; c < NCLASS; c++)
        for (int k = 0; k < PER_CLASS; k++)
            make_block(pool[c * PER_CLASS + k], c, hz);
    size_t used[NCLASS] = { 0 };
    for (size_t i = 0; i < nblocks; i++) {
        int c = schedule((double)i * BLOCK / hz);
        used[c]++;
        plan[i] = (unsigned short)(c * PER_CLASS + (int)(uniform() * PER_CLASS));
    }
    double rss_before = peak_rss_mib();

    double best_base = 1e300, best_agc = 1e300, best_agc_cpu = 1e300, sink = 0;
    struct totals tot = { 0 };
    for (int r = 0; r < rounds; r++) {
        double t0 = bench_clock(CLOCK_MONOTONIC);
        double s = 0;
        for (size_t i = 0; i < nblocks; i++) {
            size_t n = i + 1 < nblocks ? BLOCK : (size_t)(total - (uint64_t)i * BLOCK);
            const float(*b)[3] = pool[plan[i]];
            for (size_t j = 0; j < n; j++)
                s += sqrt((double)b[j][0] * b[j][0] + (double)b[j][1] * b[j][1] +
                          (double)b[j][2] * b[j][2]);
        }
        double t1 = bench_clock(CLOCK_MONOTONIC);
        sink += s;
        best_base = t1 - t0 < best_base ? t1 - t0 : best_base;

        memset(&tot, 0, sizeof(tot));
        int err;
        struct agc *c = agc_new(hz, 60, on_epoch, &tot, &err, &why);
        if (!c)
            return 1;
        double c0 = bench_clock(CLOCK_PROCESS_CPUTIME_ID);
        t0 = bench_clock(CLOCK_MONOTONIC);
        for (size_t i = 0; i < nblocks; i++) {
            size_t n = i + 1 < nblocks ? BLOCK : (size_t)(total - (uint64_t)i * BLOCK);
            if (agc_feed(c, (const float(*)[3])pool[plan[i]], n) < 0)
                return 1;
        }
        agc_flush(c);
        t1 = bench_clock(CLOCK_MONOTONIC);
        double c1 = bench_clock(CLOCK_PROCESS_CPUTIME_ID);
        agc_free(c);
        best_agc = t1 - t0 < best_agc ? t1 - t0 : best_agc;
        best_agc_cpu = c1 - c0 < best_agc_cpu ? c1 - c0 : best_agc_cpu;
    }

    printf("input: %.2f days at %d Hz = %llu triaxial samples in %zu blocks of %d "
           "(rest %zu, fidget %zu, walk %zu, run %zu, jostle %zu)\n",
           days, hz, (unsigned long long)total, nblocks, BLOCK, used[REST], used[FIDGET],
           used[WALK], used[RUN], used[JOSTLE]);
    printf("output: %llu epochs of 60 s (%llu partial); counts x %lld y %lld z %lld; "
           "mean ENMO %.2f mg\n",
           (unsigned long long)tot.epochs, (unsigned long long)tot.partial,
           (long long)tot.counts[0], (long long)tot.counts[1], (long long)tot.counts[2],
           1000 * tot.enmo / (double)tot.epochs);
    printf("baseline |a| pass: %.1f M samples/s (%.3f s)\n", total / best_base / 1e6, best_base);
    printf("agcounts+ENMO:     %.1f M samples/s wall (%.3f s), %.1f M samples/s per CPU "
           "second; %.2f x the baseline's time (best of %d)\n",
           total / best_agc / 1e6, best_agc, total / best_agc_cpu / 1e6, best_agc / best_base,
           rounds);
    printf("peak RSS: %.1f MiB with the block pool, %.1f MiB after the converter runs\n",
           rss_before, peak_rss_mib());
    if (sink == 42) /* keep the baseline's sum alive */
        puts("");
    free(plan);
    free(pool);
    return 0;
}
