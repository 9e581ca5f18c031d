/* pipeline/agcounts.c: ActiGraph counts and ENMO from raw acceleration.
 *
 * - The four agcounts reference files (../shared/data/raw/agcounts_synth_*): every count of
 *   every epoch must be equal (max |diff| = 0), and VM recomputed from our counts must print
 *   as the file's VM.
 * - The power-of-two rates have no reference counts: they are checked against a batch model
 *   written here from the reference's wording (section 1.1: full-length arrays, numpy's
 *   "same" convolution with the kernel read from the shared data file, agcounts' slow-path
 *   band-pass with its 1080-step warm-up). The model is first checked on the 30-Hz
 *   reference file.
 * - Output must not depend on how the input is split (random block sizes 0..4096, and 1),
 *   through either entry.
 * - Bad parameters and calls; NaN/inf/out-of-range samples; ENMO on hand-computed vectors;
 *   the partial last epoch. */
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

#include "pipeline/agcounts.h"

/* ---- helpers ---- */

struct sink {
    struct agc_epoch *e;
    size_t n, cap;
};

static void collect(const struct agc_epoch *e, void *ud)
{
    struct sink *s = ud;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->e = realloc(s->e, s->cap * sizeof(*s->e));
        assert_non_null(s->e);
    }
    s->e[s->n++] = *e;
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double uniform(void) /* [0, 1) */
{
    return (double)(next_rand() >> 11) / 9007199254740992.0;
}

static void shared_path(char *buf, size_t n, const char *name)
{
    const char *s = getenv("ENGAGED_SHARED");
    snprintf(buf, n, "%s/data/raw/%s", s ? s : "../../shared", name);
}

/* raw reference file: header X,Y,Z then rows in g */
static double (*read_raw(const char *name, size_t *n))[3]
{
    char path[512], line[256];
    shared_path(path, sizeof path, name);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "X,Y,Z\n");
    size_t cap = 1024;
    double(*x)[3] = malloc(cap * sizeof(*x));
    *n = 0;
    while (fgets(line, sizeof line, f)) {
        if (*n == cap)
            x = realloc(x, (cap *= 2) * sizeof(*x));
        assert_int_equal(sscanf(line, "%lf,%lf,%lf", &x[*n][0], &x[*n][1], &x[*n][2]), 3);
        (*n)++;
    }
    fclose(f);
    return x;
}

struct ref_row {
    long idx;
    int c[3];
    char vm[32];
};

static struct ref_row *read_counts(const char *name, size_t *n)
{
    char path[512], line[256];
    shared_path(path, sizeof path, name);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "epoch_index,X_counts,Y_counts(Axis1),Z_counts,VM\n");
    struct ref_row *r = calloc(256, sizeof(*r));
    *n = 0;
    while (fgets(line, sizeof line, f)) {
        assert_true(*n < 256);
        struct ref_row *p = &r[*n];
        assert_int_equal(sscanf(line, "%ld,%d,%d,%d,%31[0-9.]", &p->idx, &p->c[0], &p->c[1],
                                &p->c[2], p->vm), 5);
        (*n)++;
    }
    fclose(f);
    return r;
}

/* Runs a whole stream through a converter, in blocks of `block` samples (0: random sizes
 * 0..AGC_BLOCK_MAX), through the double or the float entry. */
static void run(struct sink *s, double hz, int epoch_s, const double (*x)[3], size_t n,
                size_t block, int as_float)
{
    int err = 0;
    const char *why = NULL;
    struct agc *c = agc_new(hz, epoch_s, collect, s, &err, &why);
    if (!c)
        fail_msg("agc_new(%g, %d): %s", hz, epoch_s, why);
    static float fbuf[AGC_BLOCK_MAX][3];
    for (size_t i = 0; i < n;) {
        size_t k = block ? block : (size_t)(next_rand() % (AGC_BLOCK_MAX + 1));
        if (k > n - i)
            k = n - i;
        if (as_float) {
            for (size_t j = 0; j < k; j++)
                for (int a = 0; a < 3; a++)
                    fbuf[j][a] = (float)x[i + j][a];
            assert_int_equal(agc_feed(c, fbuf, k), 0);
        } else {
            assert_int_equal(agc_feed_d(c, x + i, k), 0);
        }
        i += k;
    }
    assert_int_equal(agc_flush(c), 0);
    assert_int_equal(agc_samples(c), n);
    agc_free(c);
}

static void check_indices(const struct sink *s)
{
    for (size_t i = 0; i < s->n; i++) {
        assert_int_equal(s->e[i].index, (int64_t)i);
        if (i + 1 < s->n)
            assert_int_equal(s->e[i].partial, 0);
    }
}

/* ---- the agcounts reference files ---- */

static void check_reference(int hz, int epoch_s)
{
    char raw_name[64], counts_name[64];
    snprintf(raw_name, sizeof raw_name, "agcounts_synth_raw_%dHz.csv", hz);
    snprintf(counts_name, sizeof counts_name, "agcounts_synth_counts_%dHz_%ds.csv", hz, epoch_s);
    size_t n, nref;
    double(*x)[3] = read_raw(raw_name, &n);
    struct ref_row *ref = read_counts(counts_name, &nref);
    assert_int_equal(n, 300 * hz); /* section 8.4 */
    assert_int_equal(nref, 300 / epoch_s);

    struct sink s = { 0 };
    run(&s, hz, epoch_s, (const double(*)[3])x, n, AGC_BLOCK_MAX, 0);
    assert_int_equal(s.n, nref);
    check_indices(&s);
    int maxdiff = 0;
    for (size_t i = 0; i < nref; i++) {
        assert_int_equal(ref[i].idx, (long)i);
        for (int a = 0; a < 3; a++) {
            int d = abs(s.e[i].counts[a] - ref[i].c[a]);
            maxdiff = d > maxdiff ? d : maxdiff;
        }
        char vm[32];
        snprintf(vm, sizeof vm, "%.6f",
                 sqrt((double)s.e[i].counts[0] * s.e[i].counts[0] +
                      (double)s.e[i].counts[1] * s.e[i].counts[1] +
                      (double)s.e[i].counts[2] * s.e[i].counts[2]));
        assert_string_equal(vm, ref[i].vm);
        assert_int_equal(s.e[i].partial, 0);
        assert_int_equal(s.e[i].n_samples, hz * epoch_s);
        assert_int_equal(s.e[i].n_valid, hz * epoch_s);
        assert_int_equal(s.e[i].n_expected, hz * epoch_s);
    }
    print_message("%s: %zu epochs, max |diff| = %d\n", counts_name, nref, maxdiff);
    assert_int_equal(maxdiff, 0);
    free(s.e);
    free(ref);
    free(x);
}

static void test_ref_30hz_10s(void **st) { (void)st; check_reference(30, 10); }
static void test_ref_30hz_60s(void **st) { (void)st; check_reference(30, 60); }
static void test_ref_100hz_10s(void **st) { (void)st; check_reference(100, 10); }
static void test_ref_100hz_60s(void **st) { (void)st; check_reference(100, 60); }

/* The float entry (what accel events carry). At 100 Hz the resampler's filter makes the
 * few-ulp difference between 0.0125f and 0.0125 irrelevant; at 30 Hz the only step before
 * the band-pass is rounding to 3 decimals, and the reference file's 4th decimals put many
 * samples exactly on a tie (x.xxx5), which float input moves off, so counts may differ a
 * little there (docs/actigraphy.md). */
static void test_float_entry(void **st)
{
    (void)st;
    static const struct { int hz, epoch_s, tol; } cases[] = {
        { 100, 10, 0 }, { 100, 60, 0 }, { 30, 10, 2 }, { 30, 60, 2 },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char raw_name[64], counts_name[64];
        snprintf(raw_name, sizeof raw_name, "agcounts_synth_raw_%dHz.csv", cases[k].hz);
        snprintf(counts_name, sizeof counts_name, "agcounts_synth_counts_%dHz_%ds.csv",
                 cases[k].hz, cases[k].epoch_s);
        size_t n, nref;
        double(*x)[3] = read_raw(raw_name, &n);
        struct ref_row *ref = read_counts(counts_name, &nref);
        struct sink s = { 0 };
        run(&s, cases[k].hz, cases[k].epoch_s, (const double(*)[3])x, n, 0, 1);
        assert_int_equal(s.n, nref);
        int maxdiff = 0;
        for (size_t i = 0; i < nref; i++)
            for (int a = 0; a < 3; a++) {
                int d = abs(s.e[i].counts[a] - ref[i].c[a]);
                maxdiff = d > maxdiff ? d : maxdiff;
            }
        print_message("float entry, %s: max |diff| = %d\n", counts_name, maxdiff);
        assert_true(maxdiff <= cases[k].tol);
        free(s.e);
        free(ref);
        free(x);
    }
}

/* ---- a batch model from the reference's wording ---- */

static double FIR[255];

static void load_fir(void)
{
    char path[512], line[128];
    shared_path(path, sizeof path, "agcounts_pow2_lowpass_255.txt");
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (line[0] != '#' && line[0] != '\n') {
            assert_true(n < 255);
            FIR[n++] = strtod(line, NULL);
        }
    fclose(f);
    assert_int_equal(n, 255);
    assert_true(FIR[127] == 0.125);
}

/* Steps 2-7 of section 1 on one axis of a 30-Hz series; the band-pass is the agcounts
 * slow path: direct form with a 1080-step warm-up on the first sample. Returns epochs. */
static size_t batch30(const double *x30, size_t n, int epoch_s, int32_t *out)
{
    static const double B[8] = { -0.009341062898525, -0.025470289659360, -0.004235264826105,
                                 0.044152415456420,  0.036493718347760,  -0.011893961934740,
                                 -0.022917390623150, -0.006788163862310 };
    static const double A[8] = { 1, -3.63367395910957, 5.03689812757486, -3.09612247819666,
                                 0.50620507633883, 0.32421701566682, -0.15685485875559,
                                 0.01949130205890 };
    double xin[8] = { 0 }, yout[8] = { 0 };
    int32_t *t10 = calloc(n / 3 + 1, sizeof(*t10));
    int sum3 = 0;
    size_t n10 = 0;
    for (size_t i = 0; i < 1080 + n; i++) {
        double x = i < 1080 ? x30[0] : x30[i - 1080];
        x = rint(x * 1000) / 1000;
        memmove(xin + 1, xin, 7 * sizeof(double));
        xin[0] = x;
        double zeros = 0, poles = 0;
        for (int k = 0; k < 8; k++)
            zeros += B[k] * xin[k];
        for (int k = 1; k < 8; k++)
            poles += A[k] * yout[k - 1];
        double y = zeros - poles;
        memmove(yout + 1, yout, 7 * sizeof(double));
        yout[0] = y;
        if (i < 1080)
            continue;
        double v = fabs(y * ((3.0 / 4096.0) / (2.6 / 256.0) * 237.5));
        sum3 += v < 4 ? 0 : v > 128 ? 128 : (int)floor(v);
        if ((i - 1080) % 3 == 2) {
            t10[n10++] = sum3 / 3;
            sum3 = 0;
        }
    }
    size_t per = 10 * (size_t)epoch_s, ne = n10 / per;
    for (size_t e = 0; e < ne; e++) {
        out[e] = 0;
        for (size_t k = 0; k < per; k++)
            out[e] += t10[e * per + k];
    }
    free(t10);
    return ne;
}

/* Section 1.1, power-of-two path, one axis: n samples at hz -> the 30-Hz series. */
static size_t batch_pow2_to30(const double *x, size_t n, int hz, double *out)
{
    size_t f = 256 / hz, m = n * f;
    double *u = calloc(m, sizeof(*u)), *v = calloc(m, sizeof(*v));
    for (size_t k = 0; k < n; k++)
        u[k * f] = f == 1 ? x[k] : x[k] * (double)f;
    for (size_t j = 0; j < m; j++) {
        if (f == 1) {
            v[j] = u[j];
            continue;
        }
        double s = 0; /* numpy.convolve(u, h, "same"): centre 127 */
        for (int t = 0; t < 255; t++) {
            long k = (long)j + 127 - t;
            if (k >= 0 && (size_t)k < m)
                s += FIR[t] * u[k];
        }
        v[j] = s;
    }
    const double b = 0.307990357416655, a = 1 - b;
    double y = 0;
    for (size_t j = 0; j < m; j++) {
        double xp = b * v[j] / a;
        if (j == 0)
            y = b * v[0] / a / (1 - a) * a; /* steady state: y[-1] with y = a y + a x' */
        y = a * y + a * xp;
        v[j] = y;
    }
    size_t count = m * 30 / 256;
    const double r = 256.0 / 30.0;
    for (size_t i = 1; i < count; i++) {
        size_t j = (size_t)floor(r * (double)i) - 1;
        double d = v[j + 1] - v[j];
        out[i - 1] = r * (double)i * d + v[j] - d * (double)(j + 1);
    }
    if (count)
        out[count - 1] = 0;
    free(u);
    free(v);
    return count;
}

/* The model against a reference file, so that its later stages are known right. */
static void test_model_on_reference(void **st)
{
    (void)st;
    size_t n, nref;
    double(*x)[3] = read_raw("agcounts_synth_raw_30Hz.csv", &n);
    struct ref_row *ref = read_counts("agcounts_synth_counts_30Hz_10s.csv", &nref);
    double *col = malloc(n * sizeof(*col));
    int32_t out[64];
    for (int a = 0; a < 3; a++) {
        for (size_t i = 0; i < n; i++)
            col[i] = x[i][a];
        assert_int_equal(batch30(col, n, 10, out), nref);
        for (size_t i = 0; i < nref; i++)
            assert_int_equal(out[i], ref[i].c[a]);
    }
    free(col);
    free(ref);
    free(x);
}

/* rest, walking at 2 Hz, running at 3 Hz, rest with noise; quantised to 1e-4 g */
static double (*synth(int hz, double seconds, size_t *n))[3]
{
    *n = (size_t)(hz * seconds);
    double(*x)[3] = malloc(*n * sizeof(*x));
    for (size_t i = 0; i < *n; i++) {
        double t = (double)i / hz, q = t / seconds;
        double fr = q < 0.25 ? 0 : q < 0.5 ? 2.0 : q < 0.75 ? 3.0 : 0.7;
        double amp = q < 0.25 ? 0 : q < 0.5 ? 0.35 : q < 0.75 ? 1.1 : 0.05;
        for (int a = 0; a < 3; a++) {
            double v = (a == 2 ? 1.0 : 0.0) + amp * (0.5 + 0.3 * a) * sin(2 * M_PI * fr * t + a) +
                       0.2 * amp * sin(2 * M_PI * 2.7 * fr * t) + 0.02 * (uniform() - 0.5);
            x[i][a] = round(v * 1e4) / 1e4;
        }
    }
    return x;
}

/* The complete 10-s epochs of x (n samples at hz) against the model; returns their sum. */
static long pow2_vs_model(int hz, const double (*x)[3], size_t n)
{
    struct sink s = { 0 };
    run(&s, hz, 10, x, n, 0, 0);
    size_t full = n / (10 * (size_t)hz);
    assert_int_equal(s.n, full + (n % (10 * (size_t)hz) != 0));
    check_indices(&s);
    double *col = malloc(n * sizeof(*col)), *x30 = malloc(n * sizeof(*x30));
    int32_t *out = malloc((full + 1) * sizeof(*out));
    long total = 0;
    for (int a = 0; a < 3; a++) {
        for (size_t i = 0; i < n; i++)
            col[i] = x[i][a];
        size_t n30 = batch_pow2_to30(col, n, hz, x30);
        assert_int_equal(n30, n * 30 / (size_t)hz);
        assert_int_equal(batch30(x30, n30, 10, out), full);
        for (size_t i = 0; i < full; i++) {
            assert_int_equal(s.e[i].counts[a], out[i]);
            total += out[i];
        }
    }
    free(out);
    free(col);
    free(x30);
    free(s.e);
    return total;
}

/* 120 s ends on an epoch boundary, so agcounts' zeroed last 30-Hz sample falls in a
 * compared epoch; 120.5 s ends inside one (partial, not in the model). */
static void test_pow2_against_model(void **st)
{
    (void)st;
    load_fir();
    static const int rates[] = { 32, 64, 128, 256 };
    static const double lengths[] = { 120.0, 120.5 };
    for (size_t r = 0; r < 4; r++)
        for (size_t l = 0; l < 2; l++) {
            size_t n;
            double(*x)[3] = synth(rates[r], lengths[l], &n);
            long total = pow2_vs_model(rates[r], (const double(*)[3])x, n);
            print_message("%d Hz, %.1f s: 12 complete epochs equal to the model (sum %ld)\n",
                          rates[r], lengths[l], total);
            assert_true(total > 3000); /* the signal moves: not trivially zero */
            free(x);
        }
    /* A large constant: only the edges count. The FIR's zero padding ramps the start (not
     * at 256 Hz, which has no FIR) and the end; agcounts' zeroed last sample steps the end. */
    for (size_t r = 0; r < 4; r++) {
        size_t n = 20 * (size_t)rates[r];
        double(*x)[3] = malloc(n * sizeof(*x));
        for (size_t i = 0; i < n; i++) {
            x[i][0] = 100;
            x[i][1] = -30;
            x[i][2] = 1;
        }
        struct sink s = { 0 };
        run(&s, rates[r], 10, (const double(*)[3])x, n, 0, 0);
        assert_int_equal(s.n, 2);
        print_message("%d Hz, constant (100, -30, 1) g: %d %d %d | %d %d %d\n", rates[r],
                      s.e[0].counts[0], s.e[0].counts[1], s.e[0].counts[2], s.e[1].counts[0],
                      s.e[1].counts[1], s.e[1].counts[2]);
        assert_true(s.e[1].counts[0] > 0);
        if (rates[r] == 256)
            assert_int_equal(s.e[0].counts[0], 0);
        pow2_vs_model(rates[r], (const double(*)[3])x, n);
        free(s.e);
        free(x);
    }
}

/* ---- block splitting ---- */

static int same_epoch(const struct agc_epoch *a, const struct agc_epoch *b)
{
    return a->index == b->index && !memcmp(a->counts, b->counts, sizeof(a->counts)) &&
           !memcmp(&a->enmo, &b->enmo, sizeof(a->enmo)) && a->n_samples == b->n_samples &&
           a->n_valid == b->n_valid && a->n_expected == b->n_expected &&
           a->partial == b->partial;
}

static void test_split_invariance(void **st)
{
    (void)st;
    static const int rates[] = { 30, 40, 60, 100, 32, 128, 256 };
    static const int epochs[] = { 1, 10, 60 };
    for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
        size_t n;
        double(*x)[3] = synth(rates[r], 190.3, &n);
        for (size_t i = 0; i < 40; i++) /* some invalid samples too */
            x[next_rand() % n][next_rand() % 3] = i % 2 ? NAN : INFINITY;
        for (size_t e = 0; e < 3; e++)
            for (int as_float = 0; as_float < 2; as_float++) {
                struct sink whole = { 0 };
                run(&whole, rates[r], epochs[e], (const double(*)[3])x, n, AGC_BLOCK_MAX,
                    as_float);
                check_indices(&whole);
                for (int trial = 0; trial < 4; trial++) {
                    struct sink s = { 0 };
                    run(&s, rates[r], epochs[e], (const double(*)[3])x, n,
                        trial == 0 ? 1 : 0, as_float);
                    assert_int_equal(s.n, whole.n);
                    for (size_t i = 0; i < s.n; i++)
                        assert_true(same_epoch(&s.e[i], &whole.e[i]));
                    free(s.e);
                }
                free(whole.e);
            }
        free(x);
    }
}

/* ---- parameters and calls ---- */

static void nop(const struct agc_epoch *e, void *ud)
{
    (void)e, (void)ud;
}

static void test_bad_parameters(void **st)
{
    (void)st;
    static const double bad_hz[] = { 0, -30, 29.9, 31, 33, 99.99, 100.5, 110, 120, 16, 512,
                                     1e9, NAN, INFINITY, -INFINITY };
    const char *why;
    int err;
    for (size_t i = 0; i < sizeof(bad_hz) / sizeof(bad_hz[0]); i++) {
        why = NULL;
        assert_int_equal(agc_check(bad_hz[i], 60, &why), -EINVAL);
        assert_non_null(why);
        err = 0;
        assert_null(agc_new(bad_hz[i], 60, nop, NULL, &err, &why));
        assert_int_equal(err, -EINVAL);
    }
    static const int bad_epoch[] = { 0, -1, -60, 7, 11, 86401, 172800 };
    for (size_t i = 0; i < sizeof(bad_epoch) / sizeof(bad_epoch[0]); i++) {
        why = NULL;
        assert_int_equal(agc_check(100, bad_epoch[i], &why), -EINVAL);
        assert_non_null(why);
    }
    static const double good_hz[] = { 30, 40, 50, 60, 70, 80, 90, 100, 32, 64, 128, 256 };
    for (size_t i = 0; i < sizeof(good_hz) / sizeof(good_hz[0]); i++) {
        assert_int_equal(agc_check(good_hz[i], 1, NULL), 0);
        assert_int_equal(agc_check(good_hz[i], 86400, NULL), 0);
    }
    assert_null(agc_new(100, 60, NULL, NULL, &err, &why));
    assert_int_equal(err, -EINVAL);

    struct sink s = { 0 };
    struct agc *c = agc_new(100, 10, collect, &s, &err, &why);
    assert_non_null(c);
    static double big[AGC_BLOCK_MAX + 1][3];
    assert_int_equal(agc_feed_d(c, big, AGC_BLOCK_MAX + 1), -E2BIG);
    assert_int_equal(agc_feed_d(c, NULL, 1), -EINVAL);
    assert_int_equal(agc_feed(c, NULL, 0), 0);
    assert_int_equal(agc_samples(c), 0);
    assert_int_equal(agc_feed_d(c, big, AGC_BLOCK_MAX), 0);
    assert_int_equal(agc_flush(c), 0);
    assert_int_equal(agc_flush(c), -EPIPE);
    assert_int_equal(agc_feed_d(c, big, 1), -EPIPE);
    assert_int_equal(agc_samples(c), AGC_BLOCK_MAX);
    agc_free(c);
    assert_int_equal(s.n, 5); /* 4 full 10-s epochs and 96 samples */
    assert_int_equal(s.e[4].partial, 1);
    assert_int_equal(s.e[4].n_samples, 96);
    free(s.e);

    s = (struct sink){ 0 };
    c = agc_new(256, 1, collect, &s, &err, &why); /* nothing fed: nothing out */
    assert_int_equal(agc_flush(c), 0);
    agc_free(c);
    assert_int_equal(s.n, 0);
    free(s.e);
}

/* ---- invalid samples ---- */

/* Invalid samples (NaN, inf, beyond AGC_G_LIMIT) count as received but not valid; the
 * count filters see the previous valid sample; leading ones see the first valid sample. */
static void test_invalid_samples(void **st)
{
    (void)st;
    static const int rates[] = { 30, 100, 64 };
    for (size_t r = 0; r < 3; r++) {
        int hz = rates[r];
        size_t n;
        double(*x)[3] = synth(hz, 120, &n);
        double(*held)[3] = malloc(n * sizeof(*held));
        unsigned char *bad = calloc(n, 1);
        for (size_t i = 0; i < 25; i++)
            bad[i] = 1; /* leading */
        for (size_t i = 0; i < 60; i++)
            bad[next_rand() % n] = 1;
        for (size_t i = n / 2; i < n / 2 + 3 * (size_t)hz; i++)
            bad[i] = 1; /* a 3-s hole while walking */
        size_t first = 25;
        while (bad[first])
            first++;
        for (size_t i = 0; i < n; i++) {
            size_t src = i < first ? first : i;
            while (bad[src])
                src--;
            memcpy(held[i], x[src], sizeof(held[i]));
        }
        static const double junk[] = { NAN, INFINITY, -INFINITY, 257.0, -1e30, 256.0001 };
        double(*with)[3] = malloc(n * sizeof(*with));
        memcpy(with, x, n * sizeof(*with));
        size_t nbad = 0;
        for (size_t i = 0; i < n; i++)
            if (bad[i]) {
                with[i][i % 3] = junk[i % 6];
                nbad++;
            }
        struct sink a = { 0 }, b = { 0 };
        run(&a, hz, 10, (const double(*)[3])with, n, 0, r == 1);
        run(&b, hz, 10, (const double(*)[3])held, n, 0, r == 1);
        assert_int_equal(a.n, 12);
        assert_int_equal(b.n, 12);
        uint32_t total_valid = 0;
        for (size_t e = 0; e < 12; e++) {
            assert_memory_equal(a.e[e].counts, b.e[e].counts, sizeof(a.e[e].counts));
            assert_int_equal(a.e[e].n_samples, 10 * hz);
            /* ENMO over the valid samples only, computed here */
            double sum = 0;
            uint32_t nv = 0;
            for (size_t i = e * 10 * hz; i < (e + 1) * 10 * (size_t)hz; i++)
                if (!bad[i]) {
                    double en = sqrt(x[i][0] * x[i][0] + x[i][1] * x[i][1] + x[i][2] * x[i][2]);
                    sum += en > 1 ? en - 1 : 0;
                    nv++;
                }
            assert_int_equal(a.e[e].n_valid, nv);
            if (r != 1) /* the float run rounds the samples */
                assert_true(fabs(a.e[e].enmo - sum / nv) <= 1e-12);
            total_valid += nv;
        }
        assert_int_equal(total_valid, n - nbad);
        free(a.e);
        free(b.e);
        free(with);
        free(held);
        free(bad);
        free(x);
    }

    /* nothing valid at all: counts 0, ENMO NaN, every sample accounted for */
    static double nan3[1000][3];
    for (size_t i = 0; i < 1000; i++)
        nan3[i][0] = nan3[i][1] = nan3[i][2] = NAN;
    struct sink s = { 0 };
    run(&s, 100, 1, (const double(*)[3])nan3, 1000, 0, 0);
    assert_int_equal(s.n, 10);
    for (size_t e = 0; e < 10; e++) {
        assert_int_equal(s.e[e].counts[0] + s.e[e].counts[1] + s.e[e].counts[2], 0);
        assert_true(isnan(s.e[e].enmo));
        assert_int_equal(s.e[e].n_samples, 100);
        assert_int_equal(s.e[e].n_valid, 0);
    }
    free(s.e);
}

/* ---- ENMO by hand ---- */

static void constant(int hz, int epoch_s, double gx, double gy, double gz, size_t n,
                     struct sink *s)
{
    double(*x)[3] = malloc(n * sizeof(*x));
    for (size_t i = 0; i < n; i++) {
        x[i][0] = gx;
        x[i][1] = gy;
        x[i][2] = gz;
    }
    run(s, hz, epoch_s, (const double(*)[3])x, n, 0, 0);
    free(x);
}

static void test_enmo_by_hand(void **st)
{
    (void)st;
    struct sink s = { 0 };
    /* 1 g at rest: ENMO 0; and a constant input never crosses the count threshold */
    constant(100, 5, 0, 0, 1, 3000, &s);
    assert_int_equal(s.n, 6);
    for (size_t e = 0; e < s.n; e++) {
        assert_true(s.e[e].enmo == 0);
        assert_int_equal(s.e[e].counts[0] + s.e[e].counts[1] + s.e[e].counts[2], 0);
    }
    s.n = 0;
    /* |a| = 1.1 g (0.66, 0, 0.88): 0.1 g */
    constant(30, 10, 0.66, 0, 0.88, 900, &s);
    for (size_t e = 0; e < s.n; e++)
        assert_true(fabs(s.e[e].enmo - 0.1) < 1e-12);
    s.n = 0;
    /* |a| = 0.9 g: truncated to 0, not |EN - 1| */
    constant(50, 2, 0, 0.9, 0, 500, &s);
    for (size_t e = 0; e < s.n; e++)
        assert_true(s.e[e].enmo == 0);
    s.n = 0;

    /* half the epoch at 1.2 g, half at 0.5 g: mean (0.2 * 50 + 0) / 100 = 0.1 */
    static double x[200][3];
    for (size_t i = 0; i < 200; i++)
        x[i][2] = (i / 50) % 2 ? 0.5 : 1.2;
    run(&s, 100, 1, (const double(*)[3])x, 200, 0, 0);
    assert_int_equal(s.n, 2);
    assert_true(fabs(s.e[0].enmo - 0.1) < 1e-12);
    assert_true(fabs(s.e[1].enmo - 0.1) < 1e-12);
    s.n = 0;
    /* a partial last epoch: the mean of the samples it has */
    run(&s, 100, 1, (const double(*)[3])x, 130, 0, 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.e[1].partial, 1);
    assert_int_equal(s.e[1].n_samples, 30);
    assert_true(fabs(s.e[1].enmo - 0.2) < 1e-12);
    free(s.e);
}

/* ---- partial epochs and epoch lengths ---- */

/* Longer epochs are sums of shorter ones over the same 10-Hz series, and a partial last
 * epoch holds the 10-Hz blocks received so far: its counts equal the sum of the complete
 * 1-s epochs it spans (here while walking, so not zero). The 30..100 Hz rates emit an epoch
 * as soon as its last sample arrives. */
static void test_partial_and_sums(void **st)
{
    (void)st;
    size_t n;
    double(*x)[3] = read_raw("agcounts_synth_raw_100Hz.csv", &n);
    size_t nref;
    struct ref_row *ref = read_counts("agcounts_synth_counts_100Hz_10s.csv", &nref);
    struct sink s1 = { 0 }, s10 = { 0 };
    run(&s1, 100, 1, (const double(*)[3])x, 7500, 0, 0); /* 75 s, ending while walking */
    run(&s10, 100, 10, (const double(*)[3])x, 7500, 0, 0);
    assert_int_equal(s1.n, 75);
    assert_int_equal(s10.n, 8);
    assert_int_equal(s10.e[7].partial, 1);
    assert_int_equal(s10.e[7].n_samples, 500);
    assert_int_equal(s10.e[7].n_expected, 1000);
    for (int a = 0; a < 3; a++) {
        for (size_t e = 0; e < 8; e++) {
            int32_t sum = 0;
            for (size_t k = 10 * e; k < 10 * e + 10 && k < 75; k++)
                sum += s1.e[k].counts[a];
            assert_int_equal(s10.e[e].counts[a], sum);
            if (e < 7) /* the filters are causal: a shorter input changes no earlier epoch */
                assert_int_equal(s10.e[e].counts[a], ref[e].c[a]);
        }
        assert_true(s10.e[7].counts[a] > 0 && s10.e[7].counts[a] < ref[7].c[a]);
    }
    free(ref);

    struct sink s = { 0 };
    int err;
    const char *why;
    struct agc *c = agc_new(100, 10, collect, &s, &err, &why);
    assert_int_equal(agc_feed_d(c, x, 1000), 0);
    assert_int_equal(s.n, 1); /* before any flush */
    assert_int_equal(agc_feed_d(c, x + 1000, 999), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(agc_feed_d(c, x + 1999, 1), 0);
    assert_int_equal(s.n, 2);
    agc_free(c); /* without flush: nothing more, nothing leaked */
    assert_int_equal(s.n, 2);
    free(s.e);
    free(s1.e);
    free(s10.e);
    free(x);
}

/* Streams of any length, at every rate, in one to three blocks: agc_flush emits every epoch
 * exactly once and in order (a stream shorter than a second at 100 Hz once tripped an
 * internal assertion: the 30-Hz side had completed the epoch the raw side called partial). */
static int64_t short_last;
static size_t short_count;
static void short_cb(const struct agc_epoch *e, void *ud)
{
    (void)ud;
    assert_int_equal(e->index, short_last + 1);
    short_last = e->index;
    short_count++;
}

static void test_short_streams(void **state)
{
    (void)state;
    static const double rates[] = {30, 40, 50, 60, 70, 80, 90, 100, 32, 64, 128, 256};
    static float g[AGC_BLOCK_MAX][3];
    for (size_t i = 0; i < AGC_BLOCK_MAX; i++) {
        g[i][0] = (float)((double)(i * 37 % 100) / 50.0 - 1);
        g[i][1] = -1;
        g[i][2] = 0.1f;
    }
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++)
        for (size_t n = 1; n < 1300; n += n < 600 ? 1 : 7)
            for (int blocks = 1; blocks <= 3; blocks++) {
                int err = 0;
                short_last = -1;
                short_count = 0;
                struct agc *c = agc_new(rates[r], 1, short_cb, NULL, &err, NULL);
                assert_non_null(c);
                for (int b = 0; b < blocks; b++)
                    assert_int_equal(agc_feed(c, (const float(*)[3])g, n), 0);
                assert_int_equal(agc_flush(c), 0);
                size_t total = n * (size_t)blocks, per = (size_t)rates[r];
                assert_int_equal(short_count, (total + per - 1) / per);
                agc_free(c);
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_30hz_10s),
        cmocka_unit_test(test_ref_30hz_60s),
        cmocka_unit_test(test_ref_100hz_10s),
        cmocka_unit_test(test_ref_100hz_60s),
        cmocka_unit_test(test_float_entry),
        cmocka_unit_test(test_model_on_reference),
        cmocka_unit_test(test_pow2_against_model),
        cmocka_unit_test(test_split_invariance),
        cmocka_unit_test(test_bad_parameters),
        cmocka_unit_test(test_invalid_samples),
        cmocka_unit_test(test_enmo_by_hand),
        cmocka_unit_test(test_partial_and_sums),
        cmocka_unit_test(test_short_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
