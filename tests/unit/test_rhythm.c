/* pipeline/rhythm.c against the reference values of shared/reference/actigraphy.md §9.1-§9.2
 * (pyActigraphy 1.2.2 and the classic formulas on example_01.AWD), SRI from pyActigraphy's
 * Sadeh and Cole-Kripke scorings (re-implemented here from §4 and checked against the
 * reference's sleep-epoch totals first), and small cases derived by hand. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/rhythm.h"

#define EX01_N 18401
#define EX01_TOD (13 * 3600 + 58 * 60)

static double *ex01; /* example_01.AWD counts */
static size_t ex01_n;

/* A loader of its own (not drivers/file_awd.c): 7 header lines, then the first number of
 * each line. */
static int load_awd(const char *name, double **out, size_t *n)
{
    const char *sh = getenv("ENGAGED_SHARED");
    char path[512], line[256];
    snprintf(path, sizeof path, "%s/data/actigraphy/%s", sh ? sh : "../../shared", name);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t cap = 32768, k = 0, ln = 0;
    double *x = malloc(cap * sizeof *x);
    while (fgets(line, sizeof line, f))
        if (++ln > 7) {
            if (k == cap)
                x = realloc(x, (cap *= 2) * sizeof *x);
            x[k++] = strtod(line, NULL);
        }
    fclose(f);
    *out = x;
    *n = k;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    if (load_awd("example_01.AWD", &ex01, &ex01_n) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ex01);
    return 0;
}

static struct rhy_series series(const double *x, const uint8_t *m, size_t n, int e, int tod)
{
    struct rhy_series s = {.x = x, .mask = m, .n = n, .epoch_s = e, .tod0_s = tod};
    return s;
}

static void near(double got, double want, double tol, const char *what)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("%s: got %.17g, want %.17g (diff %.3g, tol %.3g)", what, got, want,
                 fabs(got - want), tol);
}

static struct rhy_result run(const double *x, const uint8_t *m, size_t n, int e, int tod,
                             const struct rhy_opts *o)
{
    struct rhy_series s = series(x, m, n, e, tod);
    struct rhy_result r;
    assert_int_equal(rhy_compute(&s, o, NULL, 0, &r), 0);
    return r;
}

/* Independent brute force: the average day of x (binarised or not) and the mean of the
 * w-epoch window starting at slot s, wrapping past midnight. */
static double window_mean(const double *x, const uint8_t *m, size_t n, int e, int tod, int bin,
                          double thr, int s, int w)
{
    size_t P = 86400 / e;
    double *sum = calloc(P, sizeof *sum);
    int *cnt = calloc(P, sizeof *cnt);
    for (size_t t = 0; t < n; t++) {
        if (isnan(x[t]) || (m && !m[t]))
            continue;
        size_t slot = (tod / e + t) % P;
        sum[slot] += bin ? x[t] > thr : x[t];
        cnt[slot]++;
    }
    double acc = 0;
    for (int k = 0; k < w; k++) {
        size_t slot = (size_t)(s + k) % P;
        acc += cnt[slot] ? sum[slot] / cnt[slot] : 0;
    }
    free(sum);
    free(cnt);
    return acc / w;
}

/* An onset is right if it is the reference's, or another onset whose window has the same
 * value (ties, reference §5.4). */
static void onset_ok(int got_s, int want_s, double value, const double *x, const uint8_t *m,
                     int bin, int w, const char *what)
{
    if (got_s == want_s)
        return;
    double v = window_mean(x, m, ex01_n, 60, EX01_TOD, bin, 4, got_s / 60, w);
    if (fabs(v - value) > 1e-12 * fabs(value))
        fail_msg("%s onset %d s is not a tie of the reference onset %d s (%.17g vs %.17g)",
                 what, got_s, want_s, v, value);
}

static void test_ex01_pyactigraphy(void **state)
{
    (void)state;
    assert_int_equal(ex01_n, EX01_N);
    struct rhy_opts o;
    rhy_opts_init(&o, RHY_PYACTIGRAPHY);
    struct rhy_result r = run(ex01, NULL, ex01_n, 60, EX01_TOD, &o);
    assert_int_equal(r.is_n_expected, 307);
    assert_int_equal(r.is_n_valid, 307);
    near(r.is, 0.527656245354158, 1e-9, "IS binarised");
    near(r.iv, 0.32913524895082263, 1e-9, "IV binarised");
    near(r.l5, 41.0 / 390, 1e-12, "L5 binarised");
    near(r.m10, 14273.0 / 18720, 1e-12, "M10 binarised");
    near(r.ra, 0.7576503909857768, 1e-9, "RA binarised");
    /* 02:02 and 02:03 tie; the first onset is taken */
    assert_true(r.l5_onset_s == 2 * 3600 + 2 * 60 || r.l5_onset_s == 2 * 3600 + 3 * 60);
    onset_ok(r.l5_onset_s, 7320, r.l5, ex01, NULL, 1, 300, "L5 binarised");
    onset_ok(r.m10_onset_s, 8 * 3600 + 26 * 60, r.m10, ex01, NULL, 1, 600, "M10 binarised");
    assert_int_equal(r.lmx_n_valid, 1440);
    assert_false(r.lmx_partial);

    o.binarize = 0;
    r = run(ex01, NULL, ex01_n, 60, EX01_TOD, &o);
    near(r.is, 0.46561431150973936, 1e-9, "IS raw");
    near(r.iv, 0.7095292983583361, 1e-9, "IV raw");
    near(r.l5, 10717.0 / 975, 1e-12, "L5 raw");
    near(r.m10, 5930377.0 / 23400, 1e-9, "M10 raw");
    near(r.ra, 0.9168632026873167, 1e-9, "RA raw");
    onset_ok(r.l5_onset_s, 3600 + 6 * 60, r.l5, ex01, NULL, 0, 300, "L5 raw");
    onset_ok(r.m10_onset_s, 8 * 3600 + 27 * 60, r.m10, ex01, NULL, 0, 600, "M10 raw");
    assert_int_equal(r.l5_onset_s, 3600 + 6 * 60);
    assert_int_equal(r.m10_onset_s, 8 * 3600 + 27 * 60);
}

/* IS/IV at other bin widths and their means over pyActigraphy's 22 default widths. */
static void test_ex01_bin_widths(void **state)
{
    (void)state;
    static const int mins[22] = {1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 16,
                                 18, 20, 24, 30, 32, 36, 40, 45, 48, 60};
    static const struct {
        int min, bin;
        double is, iv;
    } ref[] = {
        {30, 1, 0.49538299172546324, 0.314973337080311},
        {30, 0, 0.4092001474300999, 0.7433710084042507},
        {15, 1, 0.4767982962112769, 0.21709968877775396},
        {15, 0, 0.3596949394009092, 0.6259876091716968},
        {1, 1, 0.36254988571502406, 0.4943799496922816},
        {1, 0, 0.2508153841738885, 0.4471540085869393},
    };
    struct rhy_opts o;
    rhy_opts_init(&o, RHY_PYACTIGRAPHY);
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        o.binarize = ref[i].bin;
        o.bin_s = ref[i].min * 60;
        struct rhy_result r = run(ex01, NULL, ex01_n, 60, EX01_TOD, &o);
        char what[64];
        snprintf(what, sizeof what, "IS %d min bin=%d", ref[i].min, ref[i].bin);
        near(r.is, ref[i].is, 1e-9, what);
        snprintf(what, sizeof what, "IV %d min bin=%d", ref[i].min, ref[i].bin);
        near(r.iv, ref[i].iv, 1e-9, what);
    }
    static const double ism[2] = {0.36026377154417094, 0.47064337220625074};
    static const double ivm[2] = {0.6103179614088092, 0.2706746158264432};
    for (int bin = 0; bin < 2; bin++) {
        double si = 0, sv = 0;
        o.binarize = bin;
        for (int i = 0; i < 22; i++) {
            o.bin_s = mins[i] * 60;
            struct rhy_result r = run(ex01, NULL, ex01_n, 60, EX01_TOD, &o);
            si += r.is;
            sv += r.iv;
        }
        near(si / 22, ism[bin], 1e-9, "ISm");
        near(sv / 22, ivm[bin], 1e-9, "IVm");
    }
}

/* pyActigraphy's inactivity mask (§3.3): runs of >= len epochs with count < 1 get mask 0. */
static size_t inactivity_mask(const double *x, size_t n, size_t len, uint8_t *m)
{
    size_t masked = 0;
    for (size_t t = 0; t < n;) {
        if (x[t] >= 1) {
            m[t++] = 1;
            continue;
        }
        size_t u = t;
        while (u < n && x[u] < 1)
            u++;
        int off = u - t >= len;
        memset(m + t, !off, u - t);
        masked += off ? u - t : 0;
        t = u;
    }
    return masked;
}

static void test_ex01_masked(void **state)
{
    (void)state;
    uint8_t *m = malloc(ex01_n);
    memset(m, 1, ex01_n);
    size_t masked = inactivity_mask(ex01, ex01_n, 120, m);
    near(100.0 * (double)masked / (double)ex01_n, 14.08, 0.005, "masked share (%)");
    struct rhy_opts o;
    rhy_opts_init(&o, RHY_PYACTIGRAPHY);
    static const struct {
        int excl, bin;
        double is, iv, l5, m10, ra;
    } ref[] = {
        {1, 1, 0.6949853418403055, 0.4528409420352666, 0.13666666666666666, 0.8163834498834499,
         0.7132015110362142},
        {1, 0, 0.5180613720003141, 0.7891312725904941, 14.289333333333333, 270.33085470085473,
         0.8995901630729235},
        {0, 1, 0.5826927419436582, 0.42522199051599285, 0.13666666666666666, 0.8163834498834499,
         0.7132015110362142},
        {0, 0, 0.4774208833140529, 0.7846295737649367, 14.289333333333333, 270.33085470085473,
         0.8995901630729235},
    };
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        o.exclude_if_mask = ref[i].excl;
        o.binarize = ref[i].bin;
        struct rhy_result r = run(ex01, m, ex01_n, 60, EX01_TOD, &o);
        char what[64];
        snprintf(what, sizeof what, "masked excl=%d bin=%d", ref[i].excl, ref[i].bin);
        near(r.is, ref[i].is, 1e-9, what);
        near(r.iv, ref[i].iv, 1e-9, what);
        near(r.l5, ref[i].l5, 1e-9 * ref[i].l5, what);
        near(r.m10, ref[i].m10, 1e-9 * ref[i].m10, what);
        near(r.ra, ref[i].ra, 1e-9, what);
        assert_true(r.n_epochs_valid == ex01_n - masked);
    }
    free(m);
}

/* §9.2: the classic formulas on the same 307 start-anchored hourly sum bins. */
static void test_ex01_classic(void **state)
{
    (void)state;
    struct rhy_opts o, p;
    rhy_opts_init(&o, RHY_CLASSIC);
    rhy_opts_init(&p, RHY_PYACTIGRAPHY);
    assert_false(o.binarize);
    struct rhy_result r = run(ex01, NULL, ex01_n, 60, EX01_TOD, &o);
    near(r.is, 0.447765197886, 6e-13, "classic IS raw");
    near(r.iv, 0.711848021556, 6e-13, "classic IV raw");
    /* L5/M10 have no binning: the classic values equal pyActigraphy's raw ones (GGIR MXLX at
     * 1-min resolution agrees, §9.2) */
    near(r.l5, 10717.0 / 975, 1e-12, "classic L5");
    assert_int_equal(r.l5_onset_s, 3600 + 6 * 60);
    near(r.m10, 5930377.0 / 23400, 1e-9, "classic M10");
    assert_int_equal(r.m10_onset_s, 8 * 3600 + 27 * 60);
    assert_int_equal(r.days_complete, 12);
    assert_int_equal(r.days_expected, 13);
    p.binarize = 0;
    struct rhy_result q = run(ex01, NULL, ex01_n, 60, EX01_TOD, &p);
    double N = (double)r.is_n_valid;
    near(r.iv * (N - 1) / N, q.iv, 1e-14, "IV classic * (N-1)/N = IV pyActigraphy");
    near(r.is * 24 * (N - 1) / (N * 23), 0.465711317557, 6e-13, "IS classic converted, raw");

    o.binarize = 1;
    o.threshold = 4;
    p.binarize = 1;
    r = run(ex01, NULL, ex01_n, 60, EX01_TOD, &o);
    q = run(ex01, NULL, ex01_n, 60, EX01_TOD, &p);
    near(r.is, 0.507466167348, 6e-13, "classic IS binarised");
    near(r.iv, 0.33021085434, 6e-12, "classic IV binarised");
    near(r.iv * (N - 1) / N, q.iv, 1e-14, "IV classic * (N-1)/N binarised");
    near(r.is * 24 * (N - 1) / (N * 23), 0.527805060615, 6e-13, "IS classic converted, bin");
}

/* ---- sleep scorings for the SRI reference values (pyActigraphy conventions, §4) ---- */

static size_t sadeh_pya(const double *x, size_t n, double *s)
{
    size_t sleep = 0;
    for (size_t t = 0; t < n; t++) {
        s[t] = 0;
        if (t < 5 || t + 6 > n)
            continue;
        double sum = 0, nat = 0, mean6 = 0, sd = 0;
        for (size_t k = t - 5; k <= t + 5; k++) {
            sum += x[k];
            nat += x[k] > 50 && x[k] < 100;
        }
        for (size_t k = t - 5; k <= t; k++)
            mean6 += x[k] / 6;
        for (size_t k = t - 5; k <= t; k++)
            sd += (x[k] - mean6) * (x[k] - mean6);
        sd = sqrt(sd / 5);
        double ps = 7.601 - 0.065 * (sum / 11) - 1.08 * nat - 0.056 * sd - 0.703 * log(x[t + 1] + 1);
        s[t] = ps > 0;
        sleep += ps > 0;
    }
    return sleep;
}

static void cole_kripke_pya(const double *x, size_t n, double *s)
{
    static const double w[7] = {106, 54, 58, 76, 230, 74, 67};
    for (size_t t = 0; t < n; t++) {
        s[t] = 0;
        if (t < 4 || t + 4 >= n)
            continue;
        double d = 0;
        for (int k = 0; k < 7; k++)
            d += w[k] * (x[t - 4 + k] / 30);
        s[t] = 0.001 * d < 1;
    }
}

/* Webster rescoring (§4.3): every rule reads the original scoring; any rule may wake an epoch. */
static void webster(double *s, size_t n)
{
    uint8_t *wake = calloc(n, 1);
    static const int pre[3][2] = {{1, 4}, {3, 10}, {4, 15}}; /* n_periods, n_previous */
    for (size_t t = 0; t < n;) {
        size_t u = t;
        while (u < n && s[u] == s[t])
            u++;
        if (s[t] == 1)
            for (int r = 0; r < 3; r++) {
                size_t np = (size_t)pre[r][0], nq = (size_t)pre[r][1];
                if (u - t < np || t < nq)
                    continue;
                int all_wake = 1;
                for (size_t k = t - nq; k < t; k++)
                    all_wake &= s[k] == 0;
                if (all_wake)
                    for (size_t k = t; k < t + np; k++)
                        wake[k] = 1;
            }
        t = u;
    }
    static const int sur[2][2] = {{6, 10}, {10, 20}}; /* n_periods, n_surround */
    for (int r = 0; r < 2; r++) {
        size_t prev_end = 0;
        int have = 0;
        for (size_t t = 0; t < n;) {
            size_t u = t;
            while (u < n && s[u] == s[t])
                u++;
            if (s[t] == 0 && u - t >= (size_t)sur[r][1]) {
                if (have && t - prev_end <= (size_t)sur[r][0])
                    for (size_t k = prev_end; k < t; k++)
                        wake[k] = 1;
                prev_end = u;
                have = 1;
            }
            t = u;
        }
    }
    for (size_t t = 0; t < n; t++)
        if (wake[t])
            s[t] = 0;
    free(wake);
}

static size_t count_sleep(const double *s, size_t n)
{
    size_t k = 0;
    for (size_t t = 0; t < n; t++)
        k += s[t] == 1;
    return k;
}

static double sri_of(const double *st, size_t n, enum rhy_conv c)
{
    struct rhy_opts o;
    rhy_opts_init(&o, c);
    /* neither index depends on where days are cut: local days must give the same bits */
    struct rhy_series sl = series(st, NULL, n, 60, EX01_TOD);
    struct rhy_sri_result rl;
    o.origin = RHY_ORIGIN_LOCAL_DAY;
    assert_int_equal(rhy_sri(&sl, &o, NULL, 0, &rl, NULL, NULL, 0), 0);
    o.origin = RHY_ORIGIN_RECORDING;
    struct rhy_series s = series(st, NULL, n, 60, EX01_TOD);
    struct rhy_sri_result r;
    assert_int_equal(rhy_sri(&s, &o, NULL, 0, &r, NULL, NULL, 0), 0);
    assert_true(r.sri == rl.sri || (isnan(r.sri) && isnan(rl.sri)));
    return r.sri;
}

static void test_ex01_sri(void **state)
{
    (void)state;
    double *st = malloc(ex01_n * sizeof *st);
    assert_int_equal(sadeh_pya(ex01, ex01_n, st), 9519);
    near(sri_of(st, ex01_n, RHY_PYACTIGRAPHY), 53.133417508417494, 1e-9, "SRI Sadeh");
    /* with whole days only, Phillips' pooled index equals pyActigraphy's (§6) */
    near(sri_of(st, 12 * 1440, RHY_CLASSIC), sri_of(st, 12 * 1440, RHY_PYACTIGRAPHY), 1e-12,
         "pooled = per-slot SRI on whole days");

    cole_kripke_pya(ex01, ex01_n, st);
    assert_int_equal(count_sleep(st, ex01_n), 10289);
    webster(st, ex01_n);
    assert_int_equal(count_sleep(st, ex01_n), 9791);
    near(sri_of(st, ex01_n, RHY_PYACTIGRAPHY), 56.063762626262644, 1e-9, "SRI Cole-Kripke");
    free(st);
}

/* ---- hand-derived cases ---- */

/* 3 days of 60-s epochs from tod (s): 100 counts per epoch from 08:00 to 20:00, else 0. */
static double *square(size_t n, int tod)
{
    double *x = malloc(n * sizeof *x);
    for (size_t t = 0; t < n; t++) {
        int m = (int)((tod / 60 + t) % 1440);
        x[t] = m >= 8 * 60 && m < 20 * 60 ? 100 : 0;
    }
    return x;
}

static void test_square_wave(void **state)
{
    (void)state;
    double *x = square(3 * 1440, 0);
    struct rhy_opts o;
    rhy_opts_init(&o, RHY_CLASSIC);
    struct rhy_result r = run(x, NULL, 3 * 1440, 60, 0, &o);
    /* 72 hourly bins: 36 of 6000, 36 of 0. The profile explains all variance: IS = 1.
     * Six 6000-steps: IV = N sum d^2 / ((N-1) SS) = 72 * 6 * 6000^2 / (71 * 72 * 3000^2) = 24/71 */
    near(r.is, 1.0, 1e-15, "square IS");
    near(r.iv, 24.0 / 71, 1e-15, "square IV");
    assert_true(r.l5 == 0 && r.l5_onset_s == 0);            /* 00:00-05:00, the first zero window */
    assert_true(r.m10 == 100 && r.m10_onset_s == 8 * 3600); /* 08:00-18:00 */
    assert_true(r.ra == 1);
    assert_int_equal(r.days_complete, 3);
    assert_int_equal(r.iv_n_valid, 71);
    /* pyActigraphy: IS = (24 * 9e6 / 23) / (72 * 9e6 / 71) = 24 * 71 / (23 * 72); IV = 1/3 */
    rhy_opts_init(&o, RHY_PYACTIGRAPHY);
    o.binarize = 0;
    r = run(x, NULL, 3 * 1440, 60, 0, &o);
    near(r.is, 24.0 * 71 / (23.0 * 72), 1e-15, "square IS pyA");
    near(r.iv, 1.0 / 3, 1e-15, "square IV pyA");
    /* binarised: 1 per active epoch, same shape */
    o.binarize = 1;
    r = run(x, NULL, 3 * 1440, 60, 0, &o);
    near(r.is, 24.0 * 71 / (23.0 * 72), 1e-15, "square IS pyA binarised");
    assert_true(r.m10 == 1 && r.l5 == 0);
    /* the same epochs starting 30 s after midnight: onsets carry the 30 s */
    r = run(x, NULL, 3 * 1440, 60, 30, &o);
    assert_int_equal(r.l5_onset_s, 30);
    assert_int_equal(r.m10_onset_s, 8 * 3600 + 30);
    free(x);

    /* starting at 00:30: from the first epoch, each slot still holds three equal bins (IS 1,
     * bins of 3000 at the 07:30 and 19:30 slots); from local midnight the half bins at both
     * ends are dropped, leaving 71 bins with 2 of them in slot 00:00: IS = 2521/2520 (with
     * a = 6000: SS = 36*35 a^2/71, SP = 12*2521 a^2/5041, IS = 71 SP / (24 SS)) */
    x = square(3 * 1440, 1800);
    rhy_opts_init(&o, RHY_CLASSIC);
    r = run(x, NULL, 3 * 1440, 60, 1800, &o);
    near(r.is, 1.0, 1e-15, "square from 00:30, recording bins");
    assert_int_equal(r.is_n_valid, 72);
    o.origin = RHY_ORIGIN_LOCAL_DAY;
    r = run(x, NULL, 3 * 1440, 60, 1800, &o);
    assert_int_equal(r.is_n_expected, 73);
    assert_int_equal(r.is_n_valid, 71);
    assert_int_equal(r.days_complete, 2);
    assert_int_equal(r.days_expected, 4);
    near(r.is, 2521.0 / 2520, 1e-14, "square from 00:30, local-day bins");
    assert_true(r.l5 == 0 && r.l5_onset_s == 0 && r.m10_onset_s == 8 * 3600);
    free(x);
}

/* Hourly epochs (bins of one epoch), 2 days: 1 from 00:00 to 12:00, else 0; day 2 00:00 missing. */
static void test_missing_hand(void **state)
{
    (void)state;
    double x[48];
    for (int t = 0; t < 48; t++)
        x[t] = t % 24 < 12;
    x[24] = NAN;
    struct rhy_opts o;
    rhy_opts_init(&o, RHY_CLASSIC);
    struct rhy_result r = run(x, NULL, 48, 3600, 0, &o);
    assert_true(isnan(r.is)); /* one complete day only */
    assert_int_equal(r.days_complete, 1);
    o.is_min_days = 1;
    r = run(x, NULL, 48, 3600, 0, &o);
    /* N = 47, 23 ones: SS = 552/47; SP = 12 (24/47)^2 + 12 (23/47)^2; IS = 47 SP / (24 SS) =
     * 13260/13248. Pairs: 45 valid, two 1->0 steps: IV = (2/45) / (552/47^2) = 4418/24840 */
    near(r.is, 13260.0 / 13248, 1e-15, "hand IS");
    near(r.iv, 4418.0 / 24840, 1e-15, "hand IV");
    assert_int_equal(r.is_n_valid, 47);
    assert_int_equal(r.iv_n_valid, 45);
    assert_int_equal(r.iv_n_expected, 47);
    /* profile 1 at 00-11, 0 at 12-23: L5 0 at 12:00, M10 1 at 00:00 */
    assert_true(r.l5 == 0 && r.l5_onset_s == 12 * 3600 && r.m10 == 1 && r.m10_onset_s == 0);
    /* pyActigraphy keeps the missing epoch missing at one-epoch bins: var1(profile) = 6/23,
     * var1(bins) = 12/47: IS = 47/46; IV = (2/45) / (12/47) = 47/270 */
    rhy_opts_init(&o, RHY_PYACTIGRAPHY);
    o.binarize = 0;
    r = run(x, NULL, 48, 3600, 0, &o);
    near(r.is, 47.0 / 46, 1e-15, "hand IS pyA");
    near(r.iv, 47.0 / 270, 1e-15, "hand IV pyA");
}

/* Half-hour epochs in hourly bins: an unmasked all-missing bin sums to 0 in pyActigraphy and is
 * excluded in classic; a masked one is excluded by both. */
static void test_missing_bins(void **state)
{
    (void)state;
    double x[4 * 48], z[4 * 48];
    uint8_t m[4 * 48];
    for (int t = 0; t < 4 * 48; t++) {
        x[t] = z[t] = (t % 48 < 20) * 7.0 + t % 5;
        m[t] = 1;
    }
    x[60] = x[61] = NAN; /* one whole hourly bin */
    z[60] = z[61] = 0;
    struct rhy_opts o;
    rhy_opts_init(&o, RHY_PYACTIGRAPHY);
    o.binarize = 0;
    struct rhy_result a = run(x, NULL, 4 * 48, 1800, 0, &o), b = run(z, NULL, 4 * 48, 1800, 0, &o);
    assert_true(a.is == b.is && a.iv == b.iv && a.is_n_valid == 96);
    rhy_opts_init(&o, RHY_CLASSIC);
    a = run(x, NULL, 4 * 48, 1800, 0, &o);
    assert_int_equal(a.is_n_valid, 95);
    assert_int_equal(a.iv_n_valid, 93);
    assert_int_equal(a.days_complete, 3);
    /* a masked epoch in another bin: excluded (exclude_if_mask), unless only partly masked and
     * exclude_if_mask is off, where classic still needs every epoch valid (bin_min_valid 1) */
    m[100] = 0;
    a = run(x, m, 4 * 48, 1800, 0, &o);
    assert_int_equal(a.is_n_valid, 94);
    o.exclude_if_mask = 0;
    a = run(x, m, 4 * 48, 1800, 0, &o);
    assert_int_equal(a.is_n_valid, 94);
    o.bin_min_valid = 0.5;
    a = run(x, m, 4 * 48, 1800, 0, &o);
    assert_int_equal(a.is_n_valid, 95);
    rhy_opts_init(&o, RHY_PYACTIGRAPHY);
    a = run(x, m, 4 * 48, 1800, 0, &o);
    assert_int_equal(a.is_n_valid, 95); /* the masked bin */
    o.exclude_if_mask = 0;
    a = run(x, m, 4 * 48, 1800, 0, &o);
    assert_int_equal(a.is_n_valid, 96);
}

/* SRI: 3 days of hourly states, sleep 00-08; day 3 sleeps 01-09. */
static void test_sri_hand(void **state)
{
    (void)state;
    double s[72];
    for (int t = 0; t < 72; t++) {
        int h = t % 24;
        s[t] = t < 48 ? h < 8 : h >= 1 && h < 9;
    }
    struct rhy_opts o;
    rhy_opts_init(&o, RHY_CLASSIC);
    struct rhy_series se = series(s, NULL, 72, 3600, 0);
    struct rhy_sri_result r;
    double ps[4], pf[4];
    /* pairs: 24 equal, then 22 of 24 (hours 0 and 8 differ): -100 + 200 * 46/48 */
    assert_int_equal(rhy_sri(&se, &o, NULL, 0, &r, ps, pf, 4), 0);
    near(r.sri, -100 + 200 * 46.0 / 48, 1e-13, "SRI pooled");
    assert_int_equal(r.n_valid, 48);
    assert_int_equal(r.n_expected, 48);
    assert_int_equal(r.n_day_pairs, 2);
    near(ps[0], 100, 0, "pair 0");
    near(ps[1], -100 + 200 * 22.0 / 24, 1e-13, "pair 1");
    assert_true(pf[0] == 1 && pf[1] == 1);
    o.conv = RHY_PYACTIGRAPHY; /* slots 0 and 8 agree half the time: 200 * 23/24 - 100 */
    assert_int_equal(rhy_sri(&se, &o, NULL, 0, &r, NULL, NULL, 0), 0);
    near(r.sri, 200 * 23.0 / 24 - 100, 1e-13, "SRI per slot");

    s[51] = NAN; /* day 3, 03:00 */
    o.conv = RHY_CLASSIC;
    assert_int_equal(rhy_sri(&se, &o, NULL, 0, &r, ps, pf, 4), 0);
    near(r.sri, -100 + 200 * 45.0 / 47, 1e-13, "SRI pooled, one missing");
    near(ps[1], -100 + 200 * 21.0 / 23, 1e-13, "pair 1, one missing");
    near(pf[1], 23.0 / 24, 1e-15, "frac_valid");
    o.conv = RHY_PYACTIGRAPHY;
    assert_int_equal(rhy_sri(&se, &o, NULL, 0, &r, NULL, NULL, 0), 0);
    assert_true(isnan(r.sri));
    /* a masked epoch counts as missing, like NaN */
    uint8_t m[72];
    memset(m, 1, sizeof m);
    m[51] = 0;
    s[51] = 1;
    se.mask = m;
    o.conv = RHY_CLASSIC;
    assert_int_equal(rhy_sri(&se, &o, NULL, 0, &r, ps, pf, 4), 0);
    near(r.sri, -100 + 200 * 45.0 / 47, 1e-13, "SRI pooled, one masked");
    assert_int_equal(r.n_valid, 47);
    o.conv = RHY_PYACTIGRAPHY;
    assert_int_equal(rhy_sri(&se, &o, NULL, 0, &r, NULL, NULL, 0), 0);
    assert_true(isnan(r.sri));
    se.mask = NULL;

    /* local calendar days from 12:00: day pairs are cut at midnight */
    s[51] = 1;
    o.conv = RHY_CLASSIC;
    o.origin = RHY_ORIGIN_LOCAL_DAY;
    se.n = 48;
    se.tod0_s = 12 * 3600; /* 24 pairs: t 0..11 in day 0, t 12..23 in day 1 */
    assert_int_equal(rhy_sri(&se, &o, NULL, 0, &r, ps, pf, 4), 0);
    assert_int_equal(r.n_day_pairs, 2);
    near(pf[0], 0.5, 0, "first local day pair frac");
    s[3] = 2;
    assert_int_equal(rhy_sri(&se, &o, NULL, 0, &r, ps, pf, 4), -EINVAL);
}

/* Non-integer counts take the double path: values scale, onsets stay. */
static void test_scaled(void **state)
{
    (void)state;
    double *y = malloc(ex01_n * sizeof *y);
    for (size_t t = 0; t < ex01_n; t++)
        y[t] = ex01[t] * 0.37;
    struct rhy_opts o;
    rhy_opts_init(&o, RHY_CLASSIC);
    struct rhy_result a = run(ex01, NULL, ex01_n, 60, EX01_TOD, &o);
    struct rhy_result b = run(y, NULL, ex01_n, 60, EX01_TOD, &o);
    near(b.l5, 0.37 * a.l5, 1e-12 * a.l5, "scaled L5");
    near(b.m10, 0.37 * a.m10, 1e-12 * a.m10, "scaled M10");
    assert_int_equal(b.l5_onset_s, a.l5_onset_s);
    assert_int_equal(b.m10_onset_s, a.m10_onset_s);
    near(b.is, a.is, 1e-12, "scaled IS");
    near(b.iv, a.iv, 1e-12, "scaled IV");
    free(y);
}

/* Caller-owned scratch gives the same bits; bad arguments are refused. */
static void test_work_and_errors(void **state)
{
    (void)state;
    struct rhy_opts o;
    rhy_opts_init(&o, RHY_CLASSIC);
    o.origin = RHY_ORIGIN_LOCAL_DAY;
    size_t need = rhy_work_size(ex01_n, 60, 3600);
    assert_true(need > 0);
    void *w = malloc(need);
    struct rhy_series s = series(ex01, NULL, ex01_n, 60, EX01_TOD);
    struct rhy_result a, b;
    assert_int_equal(rhy_compute(&s, &o, w, need, &a), 0);
    assert_int_equal(rhy_compute(&s, &o, NULL, 0, &b), 0);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(rhy_compute(&s, &o, w, need - 8, &b), -ENOSPC);
    s.epoch_s = 7;
    assert_int_equal(rhy_compute(&s, &o, w, need, &b), -EINVAL);
    assert_true(isnan(b.is) && b.l5_onset_s == -1);
    s.epoch_s = 60;
    o.bin_s = 90;
    assert_int_equal(rhy_compute(&s, &o, w, need, &b), -EINVAL);
    o.bin_s = 7 * 60; /* does not divide a day */
    assert_int_equal(rhy_compute(&s, &o, w, need, &b), -EINVAL);
    o.bin_s = 3600;
    s.tod0_s = 86400;
    assert_int_equal(rhy_compute(&s, &o, w, need, &b), -EINVAL);
    s.tod0_s = 0;
    o.bin_min_valid = 1.5;
    assert_int_equal(rhy_compute(&s, &o, w, need, &b), -EINVAL);
    assert_int_equal(rhy_work_size(10, 60, 90), 0);
    /* under 24 h: no L5/M10, no IS; empty input: all NaN */
    rhy_opts_init(&o, RHY_CLASSIC);
    s.n = 1000;
    assert_int_equal(rhy_compute(&s, &o, NULL, 0, &b), 0);
    assert_true(isnan(b.l5) && isnan(b.m10) && isnan(b.ra) && isnan(b.is));
    s.n = 0;
    s.x = NULL;
    assert_int_equal(rhy_compute(&s, &o, NULL, 0, &b), 0);
    assert_true(isnan(b.iv) && b.is_n_expected == 0);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ex01_pyactigraphy),
        cmocka_unit_test(test_ex01_bin_widths),
        cmocka_unit_test(test_ex01_masked),
        cmocka_unit_test(test_ex01_classic),
        cmocka_unit_test(test_ex01_sri),
        cmocka_unit_test(test_square_wave),
        cmocka_unit_test(test_missing_hand),
        cmocka_unit_test(test_missing_bins),
        cmocka_unit_test(test_sri_hand),
        cmocka_unit_test(test_scaled),
        cmocka_unit_test(test_work_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
