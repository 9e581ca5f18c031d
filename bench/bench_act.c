/* Actigraphy through the whole pipeline (issue 4), in-process, no parsing or output:
 *   raw:    7 days of 100 Hz triaxial acceleration of one wrist (60.48 M samples, generated
 *           in 4096-sample `accel` blocks) -> ActiGraph counts -> every act.* feature of
 *           every day: samples/s and peak RSS;
 *   batch:  the epoch-level features of 10,000 participant-weeks of 60-s counts computed as
 *           the act family computes them, one week at a time: Choi non-wear, Cole-Kripke on
 *           the worn epochs, the main sleep period of each of the 7 nights, IS/IV/RA/L5/M10
 *           and the SRI of the week: participant-weeks/s;
 *   epochs: P participants x 7 days of 60-s `counts` events through the pipeline -> every
 *           act.* feature of every day (each day close re-analyses the ring): participant-
 *           weeks/s, bounded by the 10,080 events per participant-week.
 * Baselines in the same run: one plain pass over the same generated samples (|a| summed) and
 * over the same epoch values (summed), so the ratios say what the pipeline costs.
 * usage: bench_act [PARTICIPANTS (1000)] [RAW_DAYS (7)] */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "benchlib.h"
#include "pipeline/nonwear.h"
#include "pipeline/pipeline.h"
#include "pipeline/rhythm.h"
#include "pipeline/sleepscore.h"

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */
#define BLOCK 4096

static uint64_t rng = 0x853c49e6748fea9bULL;
static double unif(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

struct sink_count {
    uint64_t records, valued;
    double checksum;
};

static int sink(void *ud, const struct feature_record *r)
{
    struct sink_count *s = ud;
    s->records++;
    if (r->has_value) {
        s->valued++;
        s->checksum += r->value;
    }
    return 0;
}

static struct pipeline *new_pipeline(struct sink_count *sc, size_t n_part)
{
    struct pipeline_conf c;
    pipeline_conf_defaults(&c);
    c.max_participants = n_part + 16;
    c.max_sources = n_part + 16;
    int err = 0;
    struct pipeline *p = pipeline_new(&c, sink, sc, &err);
    if (!p) {
        fprintf(stderr, "bench_act: pipeline_new: %d\n", err);
        exit(1);
    }
    return p;
}

/* Wrist-like acceleration at sample i (100 Hz): still at night, walking bursts by day. */
static void sample(uint64_t i, float g[3])
{
    double t = (double)i / 100.0, hour = fmod(t / 3600.0, 24.0);
    int awake = hour >= 7 && hour < 23;
    double amp = awake ? (fmod(t, 600.0) < 240 ? 0.35 : 0.04) : 0.005;
    g[0] = (float)(amp * sin(2 * M_PI * 1.9 * t) + 0.01 * (unif() - 0.5));
    g[1] = (float)(-1.0 + amp * sin(2 * M_PI * 1.9 * t + 1.0) + 0.01 * (unif() - 0.5));
    g[2] = (float)(0.05 + 0.5 * amp * cos(2 * M_PI * 3.8 * t) + 0.01 * (unif() - 0.5));
}

static void bench_raw(int days)
{
    uint64_t n = (uint64_t)days * 86400 * 100;
    static float g[BLOCK][3];
    struct sink_count sc = {0, 0, 0};
    struct pipeline *p = new_pipeline(&sc, 1);
    struct event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = EV_ACCEL;
    snprintf(ev.participant, sizeof ev.participant, "w01");
    snprintf(ev.source, sizeof ev.source, "wrist");
    ev.has_seq = 1;
    double tp = 0, tb = 0, sum = 0;
    /* samples are generated block by block (not timed), so the peak RSS is the pipeline's */
    for (uint64_t i = 0; i < n; i += BLOCK) {
        size_t k = n - i < BLOCK ? (size_t)(n - i) : BLOCK;
        for (size_t j = 0; j < k; j++)
            sample(i + j, g[j]);
        double t0 = bench_now();
        for (size_t j = 0; j < k; j++)
            sum += sqrt((double)g[j][0] * g[j][0] + (double)g[j][1] * g[j][1] +
                        (double)g[j][2] * g[j][2]);
        double t1 = bench_now();
        ev.ts = T0 + (int64_t)(i * 10);
        ev.seq = (int64_t)(i / BLOCK);
        ev.u.accel.hz = 100;
        ev.u.accel.n = k;
        ev.u.accel.g = (const float(*)[3])g;
        pipeline_push(p, &ev);
        double t2 = bench_now();
        tb += t1 - t0;
        tp += t2 - t1;
    }
    double t0 = bench_now();
    pipeline_finish(p);
    tp += bench_now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("raw: %d days of 100 Hz = %llu samples -> counts and every act.* feature: %.1f M "
           "samples/s (%.2f s), %llu records; baseline |a| pass %.1f M samples/s (ratio %.2f); "
           "peak RSS of the process %.1f MiB; check %.3g %.3g\n",
           days, (unsigned long long)n, (double)n / tp / 1e6, tp,
           (unsigned long long)sc.records, (double)n / tb / 1e6, tb / tp,
           (double)ru.ru_maxrss / 1024.0, sum, sc.checksum);
    pipeline_free(p);
}

/* A participant-minute of counts: active by day, low at night, a few hours off the wrist. */
static double minute_counts(unsigned p, int m)
{
    int day = m / 1440, mod = m % 1440;
    int bed = 1380 + (int)((p * 37 + (unsigned)day * 11) % 90) - 45;
    int wake = 420 + (int)((p * 53 + (unsigned)day * 7) % 90) - 45;
    if (day % 3 == (int)(p % 3) && mod >= 780 && mod < 900)
        return 0; /* device off */
    if (mod >= bed || mod < wake)
        return unif() < 0.1 ? 30 * unif() : 0;
    return 200 + 1500 * unif();
}

static void bench_epochs(unsigned n_part)
{
    const int minutes = 7 * 1440;
    size_t n = (size_t)n_part * (size_t)minutes;
    double *x = malloc(n * sizeof *x);
    if (!x) {
        perror("malloc");
        exit(1);
    }
    for (unsigned p = 0; p < n_part; p++)
        for (int m = 0; m < minutes; m++)
            x[(size_t)m * n_part + p] = floor(minute_counts(p, m));
    double t0 = bench_now(), sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += x[i];
    double tb = bench_now() - t0;

    struct sink_count sc = {0, 0, 0};
    struct pipeline *pl = new_pipeline(&sc, n_part);
    struct event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = EV_COUNTS;
    ev.has_seq = 1;
    ev.u.counts.epoch_s = 60;
    char (*names)[2][16] = malloc(n_part * sizeof *names);
    if (!names) {
        perror("malloc");
        exit(1);
    }
    for (unsigned p = 0; p < n_part; p++) {
        snprintf(names[p][0], sizeof names[p][0], "p%05u", p);
        snprintf(names[p][1], sizeof names[p][1], "w%05u", p);
    }
    t0 = bench_now();
    for (int m = 0; m < minutes; m++)
        for (unsigned p = 0; p < n_part; p++) {
            memcpy(ev.participant, names[p][0], sizeof names[p][0]);
            memcpy(ev.source, names[p][1], sizeof names[p][1]);
            ev.ts = T0 + (int64_t)m * 60000;
            ev.seq = m;
            ev.u.counts.counts = x[(size_t)m * n_part + p];
            pipeline_push(pl, &ev);
        }
    pipeline_finish(pl);
    double tp = bench_now() - t0;
    printf("epochs: %u participants x 7 days of 60-s counts -> every act.* feature of every "
           "day: %.0f participant-weeks/s (%.2f s, %llu records); baseline sum pass %.0f "
           "participant-weeks/s (ratio %.4f); check %.3g %.3g\n",
           n_part, n_part / tp, tp, (unsigned long long)sc.records, n_part / tb, tb / tp, sum,
           sc.checksum);
    printf("        (%.2f M counts events/s: at 10,080 events per participant-week the event path "
           "bounds this; the epoch algorithms alone: bench_epochs, bench_rhythm)\n",
           (double)n / tp / 1e6);
    pipeline_free(pl);
    free(names);
    free(x);
}

static void bench_batch(unsigned weeks)
{
    const size_t W = 7 * 1440, POOL = 64;
    double *x = malloc(POOL * W * sizeof *x), *xs = malloc(W * sizeof *xs);
    uint8_t *wear = malloc(W), *valid = malloc(W), *sw = malloc(W);
    size_t work_len = rhy_work_size(W, 60, 3600);
    void *work = malloc(work_len);
    if (!x || !xs || !wear || !valid || !sw || !work) {
        perror("malloc");
        exit(1);
    }
    for (size_t w = 0; w < POOL; w++)
        for (size_t m = 0; m < W; m++)
            x[w * W + m] = floor(minute_counts((unsigned)w, (int)m));
    double t0 = bench_now(), sum = 0;
    for (unsigned k = 0; k < weeks; k++)
        for (size_t m = 0; m < W; m++)
            sum += x[(k % POOL) * W + m];
    double tb = bench_now() - t0;
    struct nonwear_params np;
    nonwear_defaults(NONWEAR_CHOI, &np);
    struct sleepscore_params sp = {SLEEPSCORE_COLE_KRIPKE, SLEEPSCORE_ACTILIFE, false};
    struct sleepscore_tl tl = SLEEPSCORE_TL_DEFAULT;
    struct rhy_opts o;
    rhy_opts_init(&o, RHY_CLASSIC);
    o.origin = RHY_ORIGIN_LOCAL_DAY;
    double check = 0;
    int bad = 0;
    double c0 = bench_cpu();
    t0 = bench_now();
    for (unsigned k = 0; k < weeks; k++) {
        const double *wx = &x[(k % POOL) * W];
        bad |= nonwear_detect(&np, wx, NULL, W, 60, wear);
        for (size_t m = 0; m < W; m++)
            valid[m] = wear[m] == NONWEAR_WORN;
        bad |= sleepscore_score(&sp, wx, valid, W, 60, sw);
        for (int night = 0; night < 6; night++) {
            struct sleepscore_night sn;
            bad |= sleepscore_night(&tl, sw, wx, W, (size_t)night * 1440 + 720,
                                    (size_t)night * 1440 + 2160, &sn);
            check += sn.found ? sn.main.tst : 0;
        }
        for (size_t m = 0; m < W; m++)
            xs[m] = sw[m] == SLEEPSCORE_SLEEP ? 1 : sw[m] == SLEEPSCORE_WAKE ? 0 : NAN;
        struct rhy_series s = {wx, valid, W, 60, 0}, ss = {xs, NULL, W, 60, 0};
        struct rhy_result r;
        struct rhy_sri_result sr;
        bad |= rhy_compute(&s, &o, work, work_len, &r);
        bad |= rhy_sri(&ss, &o, work, work_len, &sr, NULL, NULL, 0);
        check += r.m10 + sr.sri;
    }
    double tp = bench_now() - t0;
    double cpu = bench_cpu() - c0;
    printf("batch: %u participant-weeks -> wear, sleep/wake, 6 nights' main periods, IS/IV/RA/"
           "L5/M10, SRI: %.0f participant-weeks/s wall, %.0f per CPU second (%.2f s); baseline "
           "sum pass %.0f participant-weeks/s (ratio %.4f)%s; check %.6g %.3g\n",
           weeks, weeks / tp, weeks / cpu, tp, weeks / tb, tb / tp, bad ? " ERRORS" : "", check,
           sum);
    free(x);
    free(xs);
    free(wear);
    free(valid);
    free(sw);
    free(work);
}

int main(int argc, char **argv)
{
    unsigned n_part = argc > 1 ? (unsigned)atoi(argv[1]) : 1000;
    int days = argc > 2 ? atoi(argv[2]) : 7;
    if (n_part < 1 || n_part > 100000 || days < 1 || days > 28) {
        fprintf(stderr, "usage: bench_act [PARTICIPANTS 1..100000] [RAW_DAYS 1..28]\n");
        return 64;
    }
    bench_raw(days);
    bench_batch(10000);
    bench_epochs(n_part);
    printf("targets: >= 50 M raw samples/s on one core; >= 5,000 participant-weeks/s\n");
    return 0;
}
