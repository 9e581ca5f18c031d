/* pipeline/nonwear.c against ActiLife 6's own exports of GT3XPlus-RawData-Day01 (60-s Axis1;
 * every Choi and Troiano period of the reference files, which list wear and non-wear periods
 * back to back), pyActigraphy's 2-h inactivity mask on example_01.AWD (14.08 % of epochs,
 * reference §9.1), hand-derived cases for each rule and edge, and windowed calls checked
 * against whole-series calls to hold the context bounds the header promises. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline/nonwear.h"

#define N_GT3X 1500
static double gt3x[N_GT3X]; /* Axis1 per minute from 2012-06-27 10:54:00 (device clock) */
static time_t gt3x_t0;

static void shared_path(char *buf, size_t n, const char *name)
{
    const char *s = getenv("ENGAGED_SHARED");
    snprintf(buf, n, "%s/data/actigraphy/%s", s ? s : "../../shared", name);
}

static time_t iso_minute(const char *s)
{
    struct tm tm = {0};
    if (sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        fail_msg("bad timestamp '%s'", s);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

static int load_gt3x(void **state)
{
    (void)state;
    char path[512], line[512];
    shared_path(path, sizeof path, "GT3XPlus-RawData-Day01-10sec60sec.csv");
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = 0;
    if (!fgets(line, sizeof line, f)) { /* header */
        fclose(f);
        return -1;
    }
    while (fgets(line, sizeof line, f) && n < N_GT3X) {
        char ts[32];
        if (sscanf(line, "%31[^,],%lf", ts, &gt3x[n]) != 2)
            break;
        time_t t = iso_minute(ts);
        if (n == 0)
            gt3x_t0 = t;
        if (t != gt3x_t0 + (time_t)n * 60) /* the file must be gapless minutes */
            break;
        n++;
    }
    fclose(f);
    return n == N_GT3X ? 0 : -1;
}

/* ---- reference periods ---- */

struct ref_period {
    long start, end, len; /* minutes from the first epoch; end exclusive */
    int wear;
};

struct ref_setting {
    char name[80];
    struct nonwear_params p;
    struct ref_period per[64];
    size_t n;
};

static int split(char *line, char **fld, int max)
{
    int k = 0;
    line[strcspn(line, "\r\n")] = 0;
    for (char *s = line; k < max;) {
        fld[k++] = s;
        char *c = strchr(s, ',');
        if (!c)
            break;
        *c = 0;
        s = c + 1;
    }
    return k;
}

static double num(const char *s)
{
    return strcmp(s, "Inf") == 0 ? INFINITY : strtod(s, NULL);
}

/* Reads a -periods.csv into settings keyed by algorithm name and (Troiano) endat_nnz_seq,
 * taking each setting's parameters from its own rows. */
static size_t load_periods(const char *name, bool troiano, struct ref_setting *set, size_t max)
{
    char path[512], line[1024];
    shared_path(path, sizeof path, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t ns = 0;
    assert_non_null(fgets(line, sizeof line, f));
    while (fgets(line, sizeof line, f)) {
        char *fld[16] = {0};
        int k = split(line, fld, 16);
        assert_int_equal(k, troiano ? 12 : 9);
        char key[80];
        snprintf(key, sizeof key, "%s/%s", fld[4], troiano ? fld[11] : "");
        size_t s = 0;
        while (s < ns && strcmp(set[s].name, key) != 0)
            s++;
        if (s == ns) {
            assert_true(ns < max);
            memset(&set[s], 0, sizeof set[s]);
            snprintf(set[s].name, sizeof set[s].name, "%s", key);
            struct nonwear_params *p = &set[s].p;
            assert_int_equal(nonwear_defaults(troiano ? NONWEAR_TROIANO : NONWEAR_CHOI, p), 0);
            p->min_period_len = (unsigned)atoi(fld[5]);
            if (troiano) {
                p->max_nonzero_count = num(fld[6]);
                p->spike_tolerance = (unsigned)atoi(fld[7]);
                p->spike_stoplevel = num(fld[8]);
                p->activity_threshold = num(fld[9]);
                p->endat_nnz_seq = strcmp(fld[11], "TRUE") == 0;
                assert_string_equal(fld[10], "FALSE"); /* Axis1 */
            } else {
                p->min_window_len = (unsigned)atoi(fld[6]);
                p->spike_tolerance = (unsigned)atoi(fld[7]);
                assert_string_equal(fld[8], "FALSE");
            }
            ns++;
        }
        struct ref_setting *st = &set[s];
        assert_true(st->n < 64);
        st->per[st->n++] = (struct ref_period){
            .start = (long)(iso_minute(fld[0]) - gt3x_t0) / 60,
            .end = (long)(iso_minute(fld[1]) - gt3x_t0) / 60,
            .len = atol(fld[3]),
            .wear = strcmp(fld[2], "TRUE") == 0,
        };
    }
    fclose(f);
    return ns;
}

/* Mismatches between our run-length encoding and the reference list: reference periods we
 * do not produce exactly plus periods we produce that the reference lacks. */
static size_t compare_setting(const struct ref_setting *st)
{
    uint8_t flags[N_GT3X];
    struct nonwear_period got[256];
    assert_int_equal(nonwear_detect(&st->p, gt3x, NULL, N_GT3X, 60, flags), 0);
    size_t ng = nonwear_periods(flags, N_GT3X, got, 256);
    assert_true(ng <= 256);
    size_t bad = 0, matched = 0;
    for (size_t i = 0; i < st->n; i++) {
        const struct ref_period *r = &st->per[i];
        assert_int_equal(r->end - r->start, r->len); /* the file is self-consistent */
        bool found = false;
        for (size_t j = 0; j < ng && !found; j++)
            found = (long)got[j].start == r->start && (long)got[j].len == r->len &&
                    got[j].flag == (r->wear ? NONWEAR_WORN : NONWEAR_NOT_WORN);
        if (found)
            matched++;
        else
            bad++;
    }
    bad += ng - matched;
    print_message("%-22s %2zu reference periods, %2zu computed, %zu mismatches\n", st->name,
                  st->n, ng, bad);
    return bad;
}

static void test_choi_reproduces_actilife_periods(void **state)
{
    (void)state;
    struct ref_setting set[8];
    size_t ns = load_periods("GT3XPlus-RawData-Day01-Choi-periods.csv", false, set, 8);
    assert_int_equal(ns, 3); /* Choi Default (60, 30, 2), Custom1 (45, 10, 4), Custom2 */
    size_t bad = 0;
    for (size_t s = 0; s < ns; s++)
        bad += compare_setting(&set[s]);
    assert_int_equal(bad, 0);
}

static void test_troiano_reproduces_actilife_periods(void **state)
{
    (void)state;
    struct ref_setting set[8];
    size_t ns = load_periods("GT3XPlus-RawData-Day01-Troiano-periods.csv", true, set, 8);
    assert_int_equal(ns, 6); /* 3 settings x endat_nnz_seq TRUE/FALSE */
    size_t bad = 0;
    for (size_t s = 0; s < ns; s++)
        bad += compare_setting(&set[s]);
    assert_int_equal(bad, 0);
}

/* Reference §9.3 names the Choi Default period directly: 2012-06-28 00:00 to 02:37. */
static void test_choi_default_is_one_night_period(void **state)
{
    (void)state;
    struct nonwear_params p;
    nonwear_defaults(NONWEAR_CHOI, &p);
    p.min_period_len = 60; /* ActiLife's "Choi Default" */
    uint8_t flags[N_GT3X];
    assert_int_equal(nonwear_detect(&p, gt3x, NULL, N_GT3X, 60, flags), 0);
    size_t off = 0, first = SIZE_MAX;
    for (size_t t = 0; t < N_GT3X; t++)
        if (flags[t] == NONWEAR_NOT_WORN) {
            off++;
            if (first == SIZE_MAX)
                first = t;
        }
    assert_int_equal(off, 157);
    assert_int_equal(first, 786); /* 10:54 + 786 min = 00:00 */
}

/* pyActigraphy create_inactivity_mask('2h') on example_01.AWD masks 14.08 % (reference §9.1). */
static void test_pyact_mask_example01(void **state)
{
    (void)state;
    char path[512], line[256];
    shared_path(path, sizeof path, "example_01.AWD");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static double x[20000];
    size_t n = 0;
    for (int k = 0; k < 7; k++)
        assert_non_null(fgets(line, sizeof line, f));
    while (fgets(line, sizeof line, f) && n < 20000)
        if (sscanf(line, "%lf", &x[n]) == 1)
            n++;
    fclose(f);
    assert_int_equal(n, 18401);
    struct nonwear_params p;
    assert_int_equal(nonwear_defaults(NONWEAR_PYACT, &p), 0);
    assert_int_equal(p.min_period_len, 120);
    static uint8_t flags[20000];
    assert_int_equal(nonwear_detect(&p, x, NULL, n, 60, flags), 0);
    size_t off = 0;
    for (size_t t = 0; t < n; t++)
        off += flags[t] == NONWEAR_NOT_WORN;
    double pct = 100.0 * (double)off / (double)n;
    print_message("pyActigraphy 2h mask: %zu of %zu epochs (%.4f %%; reference 14.08 %%)\n", off,
                  n, pct);
    assert_true(fabs(pct - 14.08) < 0.005);
}

/* ---- hand-derived cases ---- */

static void expect_flags(const struct nonwear_params *p, const double *x, size_t n,
                         const char *want)
{
    uint8_t f[64];
    assert_true(n <= 64 && strlen(want) == n);
    assert_int_equal(nonwear_detect(p, x, NULL, n, 60, f), 0);
    char got[65];
    for (size_t t = 0; t < n; t++)
        got[t] = f[t] == NONWEAR_NOT_WORN ? '0' : f[t] == NONWEAR_WORN ? '1' : 'm';
    got[n] = 0;
    assert_string_equal(got, want);
}

#define EXPECT(p, want, ...)                                                                   \
    do {                                                                                       \
        const double xs_[] = {__VA_ARGS__};                                                    \
        expect_flags(p, xs_, sizeof xs_ / sizeof *xs_, want);                                  \
    } while (0)

static struct nonwear_params small(enum nonwear_algo a)
{
    struct nonwear_params p;
    nonwear_defaults(a, &p);
    p.min_period_len = 5;
    p.min_window_len = 3;
    p.spike_tolerance = 2;
    return p;
}

static void test_choi_rules_by_hand(void **state)
{
    (void)state;
    struct nonwear_params p = small(NONWEAR_CHOI);
    /* a 1-epoch artefact between zero runs of >= 3 is ignored: one 9-minute period */
    EXPECT(&p, "000000000", 0, 0, 0, 0, 7, 0, 0, 0, 0);
    /* an artefact at the very start has no left neighbour: it stays wear */
    EXPECT(&p, "1000000", 7, 0, 0, 0, 0, 0, 0);
    /* ...and at the very end likewise */
    EXPECT(&p, "0000001", 0, 0, 0, 0, 0, 0, 7);
    /* a zero run of 2 (< window 3) before the artefact: not ignored; 2 zeros alone are wear */
    EXPECT(&p, "111000000", 0, 0, 7, 0, 0, 0, 0, 0, 0);
    /* a single zero (< spike_tolerance) inside activity is activity: 5,0,5 is an artefact of
     * 3 > 2 epochs, so the two zero runs stay apart */
    EXPECT(&p, "000000111000000", 0, 0, 0, 0, 0, 0, 5, 0, 5, 0, 0, 0, 0, 0, 0);
    /* two artefacts sharing the zero run between them: both ignored */
    EXPECT(&p, "000000000000", 0, 0, 0, 9, 0, 0, 0, 9, 9, 0, 0, 0);
    /* ...but a zero run of 2 after the second keeps it: 7 zeros, artefact, 2 zeros */
    EXPECT(&p, "00000001111", 0, 0, 0, 9, 0, 0, 0, 9, 9, 0, 0);
    /* a zero run of 4 < min_period_len 5 is wear */
    EXPECT(&p, "1111111", 3, 0, 0, 0, 0, 3, 3);
    EXPECT(&p, "1111", 0, 0, 0, 0);
    EXPECT(&p, "00000", 0, 0, 0, 0, 0);
}

static void test_troiano_seq_rules_by_hand(void **state)
{
    (void)state;
    struct nonwear_params p = small(NONWEAR_TROIANO);
    assert_true(p.endat_nnz_seq);
    /* a 2-epoch spike (<= tolerance) followed by zeros takes the previous state */
    EXPECT(&p, "00000000", 0, 0, 0, 50, 50, 0, 0, 0);
    /* above the stoplevel (100) it ends non-wear: 3 + 3 zeros are too short */
    EXPECT(&p, "1111111", 0, 0, 0, 150, 0, 0, 0);
    EXPECT(&p, "0000011111", 0, 0, 0, 0, 0, 150, 0, 0, 0, 0);
    /* 3 nonzero epochs are more than the tolerance */
    EXPECT(&p, "111111111", 0, 0, 0, 50, 50, 50, 0, 0, 0);
    /* a leading spike counts as activity; a trailing one has no zero after it */
    EXPECT(&p, "1000000", 50, 0, 0, 0, 0, 0, 0);
    EXPECT(&p, "0000001", 0, 0, 0, 0, 0, 0, 50);
    /* a spike after a stop-level epoch inherits the stop */
    EXPECT(&p, "1100000", 150, 50, 0, 0, 0, 0, 0);
    /* counts at or below activity_threshold are zeros */
    p.activity_threshold = 10;
    EXPECT(&p, "00000", 3, 10, 0, 2, 0);
    /* counts above max_nonzero_count (but not above the stoplevel) are zeros too */
    p.activity_threshold = 0;
    p.max_nonzero_count = 60;
    EXPECT(&p, "0000000", 0, 70, 70, 70, 0, 0, 0);
}

static void test_troiano_nonseq_rules_by_hand(void **state)
{
    (void)state;
    struct nonwear_params p = small(NONWEAR_TROIANO);
    p.endat_nnz_seq = false;
    /* up to 2 nonzero epochs in total, ending on a zero: [0, 8) then 4 zeros too short */
    EXPECT(&p, "0000000011111", 0, 0, 0, 50, 0, 50, 0, 0, 50, 0, 0, 0, 0);
    /* the third nonzero ends [0, 5); the next period must start after the end */
    EXPECT(&p, "00000111000000", 0, 0, 0, 0, 0, 50, 50, 50, 0, 0, 0, 0, 0, 0);
    /* a count above the stoplevel ends candidates at once */
    EXPECT(&p, "111111111", 0, 0, 0, 0, 150, 0, 0, 0, 0);
    /* never ends on a nonzero epoch */
    EXPECT(&p, "0000011", 0, 0, 0, 0, 0, 50, 50);
}

static void test_pyact_rules_by_hand(void **state)
{
    (void)state;
    struct nonwear_params p = small(NONWEAR_PYACT);
    EXPECT(&p, "000001", 0, 0.5, 0, 0, 0, 1);
    EXPECT(&p, "1111", 0, 0, 0, 0);
    /* unlike pyActigraphy, an all-zero recording is entirely non-wear */
    EXPECT(&p, "00000000", 0, 0, 0, 0, 0, 0, 0, 0);
}

/* ---- edges and bad input ---- */

static void test_missing_epochs_split_and_are_flagged(void **state)
{
    (void)state;
    struct nonwear_params p = small(NONWEAR_CHOI);
    /* 4 + 4 zeros around a gap do not make a 9-minute period */
    EXPECT(&p, "1111m1111", 0, 0, 0, 0, NAN, 0, 0, 0, 0);
    EXPECT(&p, "mm00000m", NAN, NAN, 0, 0, 0, 0, 0, NAN);
    /* the artefact next to the gap has no neighbour there */
    EXPECT(&p, "m1000000", NAN, 9, 0, 0, 0, 0, 0, 0);

    double x[12] = {0};
    uint8_t valid[12], f[12];
    memset(valid, 1, sizeof valid);
    valid[5] = 0; /* 5 + 6 zeros around a masked epoch: two periods */
    assert_int_equal(nonwear_detect(&p, x, valid, 12, 60, f), 0);
    for (size_t t = 0; t < 12; t++)
        assert_int_equal(f[t], t == 5 ? NONWEAR_MISSING : NONWEAR_NOT_WORN);
    valid[4] = 0; /* 4 + 6: the first is too short */
    assert_int_equal(nonwear_detect(&p, x, valid, 12, 60, f), 0);
    for (size_t t = 0; t < 12; t++)
        assert_int_equal(f[t], t == 4 || t == 5 ? NONWEAR_MISSING
                               : t < 4          ? NONWEAR_WORN
                                                : NONWEAR_NOT_WORN);

    double all_nan[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    for (int a = NONWEAR_CHOI; a <= NONWEAR_PYACT; a++) {
        struct nonwear_params q = small((enum nonwear_algo)a);
        assert_int_equal(nonwear_detect(&q, all_nan, NULL, 6, 60, f), 0);
        for (size_t t = 0; t < 6; t++)
            assert_int_equal(f[t], NONWEAR_MISSING);
    }
}

static void test_short_arrays(void **state)
{
    (void)state;
    uint8_t f[2] = {9, 9};
    double one[1] = {0};
    for (int a = NONWEAR_CHOI; a <= NONWEAR_PYACT; a++) {
        struct nonwear_params p;
        nonwear_defaults((enum nonwear_algo)a, &p);
        assert_int_equal(nonwear_detect(&p, NULL, NULL, 0, 60, NULL), 0);
        assert_int_equal(nonwear_detect(&p, one, NULL, 1, 60, f), 0);
        assert_int_equal(f[0], NONWEAR_WORN); /* one zero minute is not a period */
        assert_int_equal(f[1], 9);            /* nothing written past n */
        p.min_period_len = 1;
        p.min_window_len = p.spike_tolerance = 0;
        assert_int_equal(nonwear_detect(&p, one, NULL, 1, 60, f), 0);
        assert_int_equal(f[0], NONWEAR_NOT_WORN);
    }
    assert_int_equal(nonwear_periods(NULL, 0, NULL, 0), 0);
}

static void test_bad_input_is_refused(void **state)
{
    (void)state;
    struct nonwear_params p;
    nonwear_defaults(NONWEAR_CHOI, &p);
    double x[4] = {0, 1, 2, 3};
    uint8_t f[4];
    assert_int_equal(nonwear_detect(&p, x, NULL, 4, 30, f), -EINVAL);
    assert_int_equal(nonwear_detect(NULL, x, NULL, 4, 60, f), -EINVAL);
    assert_int_equal(nonwear_detect(&p, NULL, NULL, 4, 60, f), -EINVAL);
    assert_int_equal(nonwear_detect(&p, x, NULL, 4, 60, NULL), -EINVAL);
    assert_int_equal(nonwear_detect(&p, x, NULL, NONWEAR_MAX_EPOCHS + 1, 60, f), -E2BIG);
    x[2] = -1;
    assert_int_equal(nonwear_detect(&p, x, NULL, 4, 60, f), -EDOM);
    x[2] = INFINITY;
    assert_int_equal(nonwear_detect(&p, x, NULL, 4, 60, f), -EDOM);
    x[2] = 0;
    struct nonwear_params q = p;
    q.min_period_len = 0;
    assert_int_equal(nonwear_detect(&q, x, NULL, 4, 60, f), -EINVAL);
    q = p;
    q.min_window_len = 1; /* shorter than the spike tolerance */
    assert_int_equal(nonwear_detect(&q, x, NULL, 4, 60, f), -EINVAL);
    q = p;
    q.min_period_len = NONWEAR_MAX_LEN + 1;
    assert_int_equal(nonwear_detect(&q, x, NULL, 4, 60, f), -EINVAL);
    q = p;
    q.algo = (enum nonwear_algo)42;
    assert_int_equal(nonwear_detect(&q, x, NULL, 4, 60, f), -EINVAL);
    assert_int_equal(nonwear_defaults((enum nonwear_algo)42, &q), -EINVAL);
    nonwear_defaults(NONWEAR_TROIANO, &q);
    q.spike_stoplevel = NAN;
    assert_int_equal(nonwear_detect(&q, x, NULL, 4, 60, f), -EINVAL);
    size_t b, a;
    assert_int_equal(nonwear_context(NULL, &b, &a), -EINVAL);
}

static void test_periods_reports_total_beyond_cap(void **state)
{
    (void)state;
    uint8_t f[] = {1, 1, 0, 0, 0, 2, 1};
    struct nonwear_period out[2];
    assert_int_equal(nonwear_periods(f, 7, out, 2), 4);
    assert_int_equal(out[0].start, 0);
    assert_int_equal(out[0].len, 2);
    assert_int_equal(out[0].flag, NONWEAR_WORN);
    assert_int_equal(out[1].start, 2);
    assert_int_equal(out[1].len, 3);
    assert_int_equal(out[1].flag, NONWEAR_NOT_WORN);
}

/* ---- streaming: windowed calls equal whole-series calls within the context bounds ---- */

static uint64_t rng = 0x2545f4914f6cdd1du;
static unsigned rnd(unsigned m)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % m);
}

/* Stretches of activity, stillness with small spikes (the hard part for every algorithm),
 * and the odd gap. */
static void synth(double *x, size_t n)
{
    for (size_t t = 0; t < n;) {
        size_t len = 1 + rnd(150), kind = rnd(10);
        for (size_t k = 0; k < len && t < n; k++, t++) {
            if (kind == 0)
                x[t] = rnd(40) == 0 ? NAN : 0;
            else if (kind < 6)
                x[t] = rnd(12) == 0 ? (double)(1 + rnd(rnd(2) ? 90 : 400)) : 0;
            else
                x[t] = rnd(5) == 0 ? 0 : (double)rnd(3000);
        }
    }
}

static void check_windows(const struct nonwear_params *p, const double *x, size_t n)
{
    static uint8_t full[20000], part[20000];
    assert_int_equal(nonwear_detect(p, x, NULL, n, 60, full), 0);
    size_t before, after;
    assert_int_equal(nonwear_context(p, &before, &after), 0);
    bool greedy = before == NONWEAR_CONTEXT_SYNC;
    size_t checked = 0;
    for (int w = 0; w < 300; w++) {
        size_t c0 = rnd((unsigned)n), c1 = c0 + 1 + rnd(1440);
        if (c1 > n)
            c1 = n;
        size_t lead = greedy ? 600 : before;
        size_t w0 = c0 > lead ? c0 - lead : 0, w1 = c1 + after < n ? c1 + after : n;
        assert_int_equal(nonwear_detect(p, x + w0, NULL, w1 - w0, 60, part), 0);
        size_t from = c0;
        if (greedy && w0 > 0) {
            size_t s = w0 + nonwear_sync(p, x + w0, NULL, w1 - w0);
            from = s > c0 ? s : c0;
        }
        for (size_t t = from; t < c1; t++, checked++)
            if (part[t - w0] != full[t])
                fail_msg("window [%zu, %zu) core [%zu, %zu): epoch %zu is %d, whole series %d",
                         w0, w1, c0, c1, t, part[t - w0], full[t]);
    }
    assert_true(checked > 10000);
}

static void test_windows_match_whole_series(void **state)
{
    (void)state;
    static double x[20000];
    synth(x, 20000);
    struct nonwear_params p;
    for (int a = NONWEAR_CHOI; a <= NONWEAR_PYACT; a++) {
        nonwear_defaults((enum nonwear_algo)a, &p);
        check_windows(&p, x, 20000);
        p.min_period_len = 30;
        p.min_window_len = 10;
        p.spike_tolerance = 10;
        check_windows(&p, x, 20000);
        if (a == NONWEAR_TROIANO) {
            p.endat_nnz_seq = false;
            check_windows(&p, x, 20000);
            nonwear_defaults(NONWEAR_TROIANO, &p);
            p.endat_nnz_seq = false;
            check_windows(&p, x, 20000);
        }
    }
    /* and on the real recording */
    nonwear_defaults(NONWEAR_CHOI, &p);
    check_windows(&p, gt3x, N_GT3X);
}

/* Garbage in: random counts (NaN, huge, occasionally negative or infinite), masks and
 * parameters at and beyond their limits. Every call returns 0 or a negative errno, never
 * writes past n, and on success every flag is one of the three values. */
static void test_garbage_never_crashes(void **state)
{
    (void)state;
    static double x[600];
    static uint8_t f[601], valid[600];
    static const double specials[] = {0, 1, 2, 99, 100, 101, 1e300, NAN, INFINITY, -1, -0.0};
    for (int it = 0; it < 3000; it++) {
        size_t n = rnd(600);
        bool poison = rnd(10) == 0;
        for (size_t t = 0; t < n; t++) {
            x[t] = rnd(3) ? (double)rnd(200) : specials[rnd(poison ? 11 : 8)];
            valid[t] = (uint8_t)(rnd(20) != 0);
        }
        struct nonwear_params p;
        nonwear_defaults((enum nonwear_algo)rnd(3), &p);
        p.min_period_len = rnd(5) ? 1 + rnd(120) : rnd(2) ? 0 : NONWEAR_MAX_LEN + rnd(3);
        p.min_window_len = rnd(40);
        p.spike_tolerance = rnd(12);
        p.activity_threshold = rnd(4) ? rnd(5) : specials[rnd(11)];
        p.spike_stoplevel = rnd(4) ? rnd(400) : specials[rnd(11)];
        p.max_nonzero_count = rnd(4) ? INFINITY : specials[rnd(11)];
        p.endat_nnz_seq = rnd(2);
        f[n] = 0xAA;
        int r = nonwear_detect(&p, x, rnd(2) ? valid : NULL, n, 60, f);
        assert_true(r == 0 || r == -EINVAL || r == -EDOM);
        assert_int_equal(f[n], 0xAA);
        if (r == 0)
            for (size_t t = 0; t < n; t++)
                assert_true(f[t] <= NONWEAR_MISSING);
        (void)nonwear_sync(&p, x, valid, n);
        struct nonwear_period per[4];
        assert_true(nonwear_periods(f, r == 0 ? n : 0, per, 4) <= n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choi_reproduces_actilife_periods),
        cmocka_unit_test(test_troiano_reproduces_actilife_periods),
        cmocka_unit_test(test_choi_default_is_one_night_period),
        cmocka_unit_test(test_pyact_mask_example01),
        cmocka_unit_test(test_choi_rules_by_hand),
        cmocka_unit_test(test_troiano_seq_rules_by_hand),
        cmocka_unit_test(test_troiano_nonseq_rules_by_hand),
        cmocka_unit_test(test_pyact_rules_by_hand),
        cmocka_unit_test(test_missing_epochs_split_and_are_flagged),
        cmocka_unit_test(test_short_arrays),
        cmocka_unit_test(test_bad_input_is_refused),
        cmocka_unit_test(test_periods_reports_total_beyond_cap),
        cmocka_unit_test(test_windows_match_whole_series),
        cmocka_unit_test(test_garbage_never_crashes),
    };
    return cmocka_run_group_tests(tests, load_gt3x, NULL);
}
