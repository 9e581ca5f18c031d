/* pipeline/sleepscore.c against ActiLife 6's per-epoch Cole–Kripke and Sadeh exports and its
 * Tudor-Locke sleep periods (3 settings) for GT3XPlus-RawData-Day01, pyActigraphy 1.2.2's
 * sleep-epoch totals on example_01.AWD (reference §9.1), hand-derived cases for the
 * thresholds, edges and every Webster and Tudor-Locke rule, and windowed calls against
 * whole-series calls (scores within sleepscore_context; nights whenever final and
 * lead_exact say so). */
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

#include "pipeline/sleepscore.h"

#define N_GT3X 1500
static double gt3x[N_GT3X]; /* Axis1 per minute from 2012-06-27 10:54:00 (device clock) */
static time_t gt3x_t0;
#define N_EX1 18401
static double ex1[N_EX1]; /* example_01.AWD counts */

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
        return (time_t)-1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

static int load(void **state)
{
    (void)state;
    char path[512], line[512];
    shared_path(path, sizeof path, "GT3XPlus-RawData-Day01-10sec60sec.csv");
    FILE *f = fopen(path, "r");
    if (!f || !fgets(line, sizeof line, f))
        return -1;
    size_t n = 0;
    while (n < N_GT3X && fgets(line, sizeof line, f)) {
        char ts[32];
        if (sscanf(line, "%31[^,],%lf", ts, &gt3x[n]) != 2)
            break;
        if (n == 0)
            gt3x_t0 = iso_minute(ts);
        if (iso_minute(ts) != gt3x_t0 + (time_t)n * 60)
            break;
        n++;
    }
    fclose(f);
    if (n != N_GT3X)
        return -1;

    shared_path(path, sizeof path, "example_01.AWD");
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = 0;
    for (int k = 0; k < 7; k++) /* header */
        if (!fgets(line, sizeof line, f))
            break;
    while (n < N_EX1 && fgets(line, sizeof line, f))
        if (sscanf(line, "%lf", &ex1[n]) == 1)
            n++;
    bool more = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    return n == N_EX1 && !more ? 0 : -1;
}

static size_t count(const uint8_t *sw, size_t n, uint8_t v)
{
    size_t k = 0;
    for (size_t t = 0; t < n; t++)
        k += sw[t] == v;
    return k;
}

/* ---- ActiLife per-epoch exports ---- */

static void check_actilife_export(enum sleepscore_algo algo, const char *file, size_t want_sleep)
{
    char path[512], line[512];
    shared_path(path, sizeof path, file);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    uint8_t ref[N_GT3X];
    size_t n = 0;
    while (n < N_GT3X && fgets(line, sizeof line, f)) {
        int mo, d, y, h, mi;
        char ap[3], sw;
        double axis1;
        /* Date,Time,Axis1,...,Sleep or Awake? */
        assert_int_equal(sscanf(line, "%d/%d/%d,%d:%d %2s,%lf", &mo, &d, &y, &h, &mi, ap, &axis1),
                         7);
        h = h % 12 + (ap[0] == 'P' ? 12 : 0);
        struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                        .tm_min = mi};
        assert_true(timegm(&tm) == gt3x_t0 + (time_t)n * 60); /* same minutes as the CSV */
        assert_true(axis1 == gt3x[n]);                          /* same counts */
        line[strcspn(line, "\r\n")] = 0;
        sw = line[strlen(line) - 1];
        assert_true(sw == 'S' || sw == 'W');
        ref[n++] = sw == 'S' ? SLEEPSCORE_SLEEP : SLEEPSCORE_WAKE;
    }
    fclose(f);
    assert_int_equal(n, N_GT3X);

    struct sleepscore_params p = {algo, SLEEPSCORE_ACTILIFE, false};
    uint8_t sw[N_GT3X];
    assert_int_equal(sleepscore_score(&p, gt3x, NULL, N_GT3X, 60, sw), 0);
    size_t bad = 0;
    for (size_t t = 0; t < N_GT3X; t++)
        bad += sw[t] != ref[t];
    print_message("%s: %zu sleep / %zu wake, %zu mismatches of %d epochs\n", file,
                  count(sw, N_GT3X, SLEEPSCORE_SLEEP), count(sw, N_GT3X, SLEEPSCORE_WAKE), bad,
                  N_GT3X);
    assert_int_equal(bad, 0);
    assert_int_equal(count(ref, N_GT3X, SLEEPSCORE_SLEEP), want_sleep);
}

static void test_cole_kripke_matches_actilife(void **state)
{
    (void)state;
    check_actilife_export(SLEEPSCORE_COLE_KRIPKE, "GT3XPlus-RawData-Day01-ColeKripke.csv", 995);
}

static void test_sadeh_matches_actilife(void **state)
{
    (void)state;
    check_actilife_export(SLEEPSCORE_SADEH, "GT3XPlus-RawData-Day01-Sadeh.csv", 937);
}

/* ---- pyActigraphy totals on example_01 (reference §9.1) ---- */

static void test_pyactigraphy_totals_example01(void **state)
{
    (void)state;
    static uint8_t sw[N_EX1];
    static const struct {
        struct sleepscore_params p;
        size_t want;
        const char *what;
    } cases[] = {
        {{SLEEPSCORE_COLE_KRIPKE, SLEEPSCORE_PYACTIGRAPHY, false}, 10289, "CK, no rescoring"},
        {{SLEEPSCORE_COLE_KRIPKE, SLEEPSCORE_PYACTIGRAPHY, true}, 9791, "CK, Webster"},
        {{SLEEPSCORE_SADEH, SLEEPSCORE_PYACTIGRAPHY, false}, 9519, "Sadeh"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(sleepscore_score(&cases[i].p, ex1, NULL, N_EX1, 60, sw), 0);
        size_t s = count(sw, N_EX1, SLEEPSCORE_SLEEP);
        print_message("example_01 pyActigraphy %-17s %zu sleep epochs (reference %zu)\n",
                      cases[i].what, s, cases[i].want);
        assert_int_equal(s, cases[i].want);
        assert_int_equal(count(sw, N_EX1, SLEEPSCORE_UNDEF), 0);
    }
}

/* ---- Tudor-Locke periods against ActiLife ---- */

static int decimals(const char *s)
{
    const char *dot = strchr(s, '.');
    return dot ? (int)strlen(dot + 1) : 0;
}

/* ActiLife prints rounded values: ours must round to the printed digits. */
static bool same_rounded(double mine, const char *ref)
{
    return fabs(mine - strtod(ref, NULL)) <= 0.5 * pow(10, -decimals(ref)) + 1e-9;
}

static void test_tudor_locke_matches_actilife(void **state)
{
    (void)state;
    uint8_t sw[N_GT3X];
    struct sleepscore_params sp = {SLEEPSCORE_SADEH, SLEEPSCORE_ACTILIFE, false};
    assert_int_equal(sleepscore_score(&sp, gt3x, NULL, N_GT3X, 60, sw), 0);

    char path[512], line[1024];
    shared_path(path, sizeof path, "GT3XPlus-RawData-Day01-sleep-periods.csv");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    char setting[64] = "";
    struct sleepscore_period got[64];
    int ng = 0;
    size_t nref = 0, matched = 0, bad_fields = 0, total_ref = 0, total_got = 0, total_bad = 0;
    bool eof = false;
    while (!eof) {
        char *fld[24] = {0};
        int k = 0;
        eof = !fgets(line, sizeof line, f);
        if (!eof) {
            line[strcspn(line, "\r\n")] = 0;
            for (char *s = line, *c; k < 24; s = c + 1) {
                fld[k++] = s;
                if (!(c = strchr(s, ',')))
                    break;
                *c = 0;
            }
            assert_int_equal(k, 21);
            assert_string_equal(fld[0], "Sadeh");
        }
        if (eof || strcmp(fld[1], setting) != 0) { /* a setting ends */
            if (setting[0]) {
                size_t extra = (size_t)ng - matched;
                print_message("%-20s %zu ActiLife periods, %d computed (right-censored "
                              "excluded), %zu unmatched, %zu extra, %zu field mismatches\n",
                              setting, nref, ng, nref - matched, extra, bad_fields);
                total_ref += nref;
                total_got += (size_t)ng;
                total_bad += nref - matched + extra + bad_fields;
            }
            if (eof)
                break;
            snprintf(setting, sizeof setting, "%s", fld[1]);
            struct sleepscore_tl tl = {(unsigned)atoi(fld[2]), (unsigned)atoi(fld[3]),
                                       (unsigned)atoi(fld[4]), (unsigned)atoi(fld[5]),
                                       (unsigned)atoi(fld[6])};
            struct sleepscore_period all[64];
            int na = sleepscore_periods(&tl, sw, gt3x, N_GT3X, all, 64);
            assert_true(na >= 0 && na <= 64);
            ng = 0;
            for (int i = 0; i < na; i++) /* ActiLife drops a period still open at the end */
                if (!(all[i].flags & SLEEPSCORE_RIGHT_CENSORED))
                    got[ng++] = all[i];
            nref = matched = bad_fields = 0;
        }
        nref++;
        long in_bed = (long)(iso_minute(fld[7]) - gt3x_t0) / 60;
        long out_bed = (long)(iso_minute(fld[8]) - gt3x_t0) / 60;
        const struct sleepscore_period *m = NULL;
        for (int i = 0; i < ng && !m; i++)
            if ((long)got[i].in_bed == in_bed && (long)got[i].out_bed == out_bed)
                m = &got[i];
        if (!m)
            continue;
        matched++;
        bool ok = iso_minute(fld[9]) == iso_minute(fld[7]) && atoi(fld[11]) == 0 &&
                  same_rounded(m->efficiency, fld[10]) && (long)m->duration == atol(fld[12]) &&
                  (long)m->tst == atol(fld[13]) && (long)m->waso == atol(fld[14]) &&
                  (long)m->awakenings == atol(fld[15]) &&
                  same_rounded(m->ave_awakening, fld[16]) &&
                  m->total_counts == strtod(fld[17], NULL) &&
                  same_rounded(m->movement_index, fld[18]) &&
                  same_rounded(m->fragmentation_index, fld[19]) &&
                  same_rounded(m->sleep_fragmentation_index, fld[20]);
        if (!ok) {
            bad_fields++;
            print_message("  %s %s: eff %.4f dur %u tst %u waso %u awk %u ave %.4f counts %.0f "
                          "mi %.4f fi %.4f sfi %.4f\n",
                          fld[7], fld[8], m->efficiency, m->duration, m->tst, m->waso,
                          m->awakenings, m->ave_awakening, m->total_counts, m->movement_index,
                          m->fragmentation_index, m->sleep_fragmentation_index);
        }
    }
    fclose(f);
    assert_int_equal(total_ref, 10);
    assert_int_equal(total_got, 10);
    assert_int_equal(total_bad, 0);
}

/* The night that matters in the recording: noon 06-27 to noon 06-28 (epochs 66 to 1506). */
static void test_main_period_of_the_recorded_night(void **state)
{
    (void)state;
    uint8_t sw[N_GT3X];
    struct sleepscore_params sp = {SLEEPSCORE_SADEH, SLEEPSCORE_ACTILIFE, false};
    assert_int_equal(sleepscore_score(&sp, gt3x, NULL, N_GT3X, 60, sw), 0);
    struct sleepscore_tl def = SLEEPSCORE_TL_DEFAULT, c1 = {5, 5, 20, 1440, 5},
                         c2 = {10, 12, 60, 1440, 20};
    struct sleepscore_night night;

    assert_int_equal(sleepscore_night(&def, sw, gt3x, N_GT3X, 66, 1506, &night), 0);
    assert_true(night.found);
    assert_int_equal(night.main.in_bed, 789);  /* 00:03 */
    assert_int_equal(night.main.out_bed, 1244); /* 07:38 */
    assert_int_equal(night.main.tst, 442);
    assert_int_equal(night.main.waso, 13);
    assert_true(night.main.midpoint == 789 + 227.5);
    assert_int_equal(night.n_periods, 1);
    assert_false(night.final); /* the window ends 6 minutes after the data */
    assert_true(night.lead_exact);
    assert_int_equal(night.n_scored, N_GT3X - 66);
    assert_int_equal(night.n_undef, 0);

    /* Custom1 has 6 periods that night; the longest is 00:03-07:25 */
    assert_int_equal(sleepscore_night(&c1, sw, gt3x, N_GT3X, 66, 1440, &night), 0);
    assert_int_equal(night.n_periods, 6);
    assert_int_equal(night.main.in_bed, 789);
    assert_int_equal(night.main.duration, 442);
    assert_true(night.final);
    /* Custom2: 19:03-22:09 (186) loses to 22:56-07:38 (522) */
    assert_int_equal(sleepscore_night(&c2, sw, gt3x, N_GT3X, 66, 1440, &night), 0);
    assert_int_equal(night.n_periods, 3);
    assert_int_equal(night.main.in_bed, 722);
    assert_int_equal(night.main.duration, 522);
    /* a window that begins after 22:56 does not own that period */
    assert_int_equal(sleepscore_night(&c2, sw, gt3x, N_GT3X, 723, 1440, &night), 0);
    assert_int_equal(night.n_periods, 1);
    assert_int_equal(night.main.in_bed, 1367); /* 09:41 */
    assert_int_equal(night.main.duration, 72);
}

/* ---- hand-derived scoring ---- */

static void score(enum sleepscore_algo a, enum sleepscore_mode m, bool webster, const double *x,
                  size_t n, uint8_t *sw)
{
    struct sleepscore_params p = {a, m, webster};
    assert_int_equal(sleepscore_score(&p, x, NULL, n, 60, sw), 0);
}

static void test_cole_kripke_threshold_and_edges(void **state)
{
    (void)state;
    double x[20] = {0};
    uint8_t sw[20];
    /* ActiLife: 0.001 * (76 * 1225/100 + 230 * 30/100) = 1.0 exactly: wake (sleep is D < 1) */
    x[9] = 1225;
    x[10] = 30;
    score(SLEEPSCORE_COLE_KRIPKE, SLEEPSCORE_ACTILIFE, false, x, 20, sw);
    assert_int_equal(sw[10], SLEEPSCORE_WAKE);
    x[10] = 29;
    score(SLEEPSCORE_COLE_KRIPKE, SLEEPSCORE_ACTILIFE, false, x, 20, sw);
    assert_int_equal(sw[10], SLEEPSCORE_SLEEP);
    /* pyActigraphy: 0.001 * (76 * 310/30 + 230 * 28/30) = 1.0 */
    x[9] = 310;
    x[10] = 28;
    score(SLEEPSCORE_COLE_KRIPKE, SLEEPSCORE_PYACTIGRAPHY, false, x, 20, sw);
    assert_int_equal(sw[10], SLEEPSCORE_WAKE);
    x[10] = 27;
    score(SLEEPSCORE_COLE_KRIPKE, SLEEPSCORE_PYACTIGRAPHY, false, x, 20, sw);
    assert_int_equal(sw[10], SLEEPSCORE_SLEEP);

    /* ActiLife caps A at 300: a huge impulse wakes t-2 .. t+4 (weight 54 * 300 / 1000 > 1),
     * exactly as 30000 does, and zero padding scores the edges */
    memset(x, 0, sizeof x);
    x[0] = 1e6;
    score(SLEEPSCORE_COLE_KRIPKE, SLEEPSCORE_ACTILIFE, false, x, 20, sw);
    for (size_t t = 0; t < 20; t++)
        assert_int_equal(sw[t], t <= 4 ? SLEEPSCORE_WAKE : SLEEPSCORE_SLEEP);
    x[0] = 0;
    x[19] = 30000;
    score(SLEEPSCORE_COLE_KRIPKE, SLEEPSCORE_ACTILIFE, false, x, 20, sw);
    for (size_t t = 0; t < 20; t++)
        assert_int_equal(sw[t], t >= 17 ? SLEEPSCORE_WAKE : SLEEPSCORE_SLEEP);
    /* pyActigraphy: the first and last 4 epochs are wake whatever the counts */
    memset(x, 0, sizeof x);
    score(SLEEPSCORE_COLE_KRIPKE, SLEEPSCORE_PYACTIGRAPHY, false, x, 20, sw);
    for (size_t t = 0; t < 20; t++)
        assert_int_equal(sw[t], t < 4 || t >= 16 ? SLEEPSCORE_WAKE : SLEEPSCORE_SLEEP);
}

static void test_sadeh_conventions_by_hand(void **state)
{
    (void)state;
    double x[30];
    uint8_t sw[30];
    /* constant 50: ActiLife counts 50 in NAT (11 * -1.08 sinks PS to about -10.3: wake);
     * pyActigraphy does not (PS = 7.601 - 3.25 - 0.703 ln 51 = 1.59 > 0: sleep) */
    for (size_t t = 0; t < 30; t++)
        x[t] = 50;
    score(SLEEPSCORE_SADEH, SLEEPSCORE_ACTILIFE, false, x, 30, sw);
    assert_int_equal(sw[15], SLEEPSCORE_WAKE);
    score(SLEEPSCORE_SADEH, SLEEPSCORE_PYACTIGRAPHY, false, x, 30, sw);
    assert_int_equal(sw[15], SLEEPSCORE_SLEEP);
    for (size_t t = 0; t < 30; t++) /* edges wake in pyActigraphy */
        assert_int_equal(sw[t], t < 5 || t >= 25 ? SLEEPSCORE_WAKE : SLEEPSCORE_SLEEP);
    /* constant 100 (NAT 0): PS = 7.601 - 6.5 - 0.703 ln 101 = -2.14: wake in pyActigraphy
     * (> 0 needed), sleep in ActiLife (> -4 suffices) */
    for (size_t t = 0; t < 30; t++)
        x[t] = 100;
    score(SLEEPSCORE_SADEH, SLEEPSCORE_ACTILIFE, false, x, 30, sw);
    assert_int_equal(sw[15], SLEEPSCORE_SLEEP);
    score(SLEEPSCORE_SADEH, SLEEPSCORE_PYACTIGRAPHY, false, x, 30, sw);
    assert_int_equal(sw[15], SLEEPSCORE_WAKE);
    /* ActiLife caps at 300: 10000 scores like 300 (PS = 7.601 - 19.5 - 0.703 ln 301 < -4) */
    uint8_t capped[30];
    for (size_t t = 0; t < 30; t++)
        x[t] = 300;
    score(SLEEPSCORE_SADEH, SLEEPSCORE_ACTILIFE, false, x, 30, capped);
    for (size_t t = 0; t < 30; t++)
        x[t] = 10000;
    score(SLEEPSCORE_SADEH, SLEEPSCORE_ACTILIFE, false, x, 30, sw);
    assert_memory_equal(sw, capped, 30);
    assert_int_equal(sw[15], SLEEPSCORE_WAKE);
    /* all zeros: PS = 7.601, sleep everywhere in ActiLife (zero padding) */
    memset(x, 0, sizeof x);
    score(SLEEPSCORE_SADEH, SLEEPSCORE_ACTILIFE, false, x, 30, sw);
    assert_int_equal(count(sw, 30, SLEEPSCORE_SLEEP), 30);
    /* pyActigraphy's logAct is the next epoch's. One epoch of 1000 at t = 15 among zeros:
     * t = 10..13 see only the mean (PS = 7.601 - 0.065 * 1000/11 = 1.69: sleep); t = 14 also
     * sees ln(1001) (PS = 1.69 - 4.86 < 0: wake); t = 15..20 have it in the SD window (SD
     * 408.2: wake); t = 21..24 are clear of it (sleep). ActiLife caps it at 300 and takes
     * ln(x_t + 1): t = 14 is sleep there. */
    x[15] = 1000;
    score(SLEEPSCORE_SADEH, SLEEPSCORE_PYACTIGRAPHY, false, x, 30, sw);
    for (size_t t = 5; t < 25; t++)
        assert_int_equal(sw[t], t >= 14 && t <= 20 ? SLEEPSCORE_WAKE : SLEEPSCORE_SLEEP);
    score(SLEEPSCORE_SADEH, SLEEPSCORE_ACTILIFE, false, x, 30, sw);
    assert_int_equal(sw[14], SLEEPSCORE_SLEEP);
    assert_int_equal(sw[15], SLEEPSCORE_WAKE);
}

static void test_missing_windows_are_undefined(void **state)
{
    (void)state;
    double x[40] = {0};
    uint8_t sw[40], valid[40];
    x[20] = NAN;
    score(SLEEPSCORE_COLE_KRIPKE, SLEEPSCORE_ACTILIFE, false, x, 40, sw);
    for (size_t t = 0; t < 40; t++) /* windows t-4 .. t+2 that hold epoch 20 */
        assert_int_equal(sw[t], t >= 18 && t <= 24 ? SLEEPSCORE_UNDEF : SLEEPSCORE_SLEEP);
    score(SLEEPSCORE_COLE_KRIPKE, SLEEPSCORE_PYACTIGRAPHY, false, x, 40, sw);
    for (size_t t = 4; t < 36; t++) /* pyActigraphy's window is t-4 .. t+4 */
        assert_int_equal(sw[t], t >= 16 && t <= 24 ? SLEEPSCORE_UNDEF : SLEEPSCORE_SLEEP);
    score(SLEEPSCORE_SADEH, SLEEPSCORE_ACTILIFE, false, x, 40, sw);
    for (size_t t = 0; t < 40; t++)
        assert_int_equal(sw[t], t >= 15 && t <= 25 ? SLEEPSCORE_UNDEF : SLEEPSCORE_SLEEP);
    /* a mask works like NaN */
    x[20] = 0;
    memset(valid, 1, sizeof valid);
    valid[20] = 0;
    struct sleepscore_params p = {SLEEPSCORE_SADEH, SLEEPSCORE_ACTILIFE, false};
    assert_int_equal(sleepscore_score(&p, x, valid, 40, 60, sw), 0);
    assert_int_equal(count(sw, 40, SLEEPSCORE_UNDEF), 11);
    /* all missing */
    for (size_t t = 0; t < 40; t++)
        x[t] = NAN;
    for (int a = 0; a < 2; a++) {
        score((enum sleepscore_algo)a, SLEEPSCORE_ACTILIFE, true, x, 40, sw);
        assert_int_equal(count(sw, 40, SLEEPSCORE_UNDEF), 40);
    }
    /* short arrays */
    double one = 5;
    for (int a = 0; a < 2; a++)
        for (int m = 0; m < 2; m++) {
            struct sleepscore_params q = {(enum sleepscore_algo)a, (enum sleepscore_mode)m, true};
            assert_int_equal(sleepscore_score(&q, NULL, NULL, 0, 60, NULL), 0);
            sw[1] = 77;
            assert_int_equal(sleepscore_score(&q, &one, NULL, 1, 60, sw), 0);
            assert_int_equal(sw[0], m == SLEEPSCORE_ACTILIFE ? SLEEPSCORE_SLEEP : SLEEPSCORE_WAKE);
            assert_int_equal(sw[1], 77);
        }
}

/* ---- Webster ---- */

/* Builds scores from a pattern: 'S' sleep, 'W' wake, 'U' undefined; digits repeat the next
 * letter, e.g. "10W3S" = 10 wake then 3 sleep. */
static size_t pattern(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (*s) {
        unsigned rep = 1;
        if (*s >= '0' && *s <= '9')
            rep = (unsigned)strtoul(s, (char **)&s, 10);
        uint8_t v = *s == 'S' ? SLEEPSCORE_SLEEP : *s == 'W' ? SLEEPSCORE_WAKE : SLEEPSCORE_UNDEF;
        for (unsigned k = 0; k < rep; k++) {
            assert_true(n < cap);
            out[n++] = v;
        }
        s++;
    }
    return n;
}

static void expect_webster(const char *in, const char *want)
{
    uint8_t a[256], b[256];
    size_t n = pattern(in, a, 256), m = pattern(want, b, 256);
    assert_int_equal(n, m);
    assert_int_equal(sleepscore_webster(a, n), 0);
    for (size_t t = 0; t < n; t++)
        if (a[t] != b[t])
            fail_msg("%s: epoch %zu is %d, want %d (%s)", in, t, a[t], b[t], want);
}

static void test_webster_rules_by_hand(void **state)
{
    (void)state;
    expect_webster("4W1S4W", "9W");          /* rule 1 */
    expect_webster("3W1S3W", "3W1S3W");      /* 3 wake is not enough; no rule fires */
    expect_webster("10W20S", "13W17S");      /* rules 1 and 2 */
    expect_webster("15W20S", "19W16S");      /* rule 3 */
    expect_webster("10W2S1W10S", "11W1S1W10S"); /* rule 2 skips a 2-epoch run; rule 1 not */
    expect_webster("10W6S10W", "26W");       /* rule 4 (and 1, 2) */
    expect_webster("10W7S10W", "13W4S10W");  /* a gap of 7 escapes rule 4 */
    expect_webster("20W10S20W", "50W");      /* rule 5 */
    expect_webster("20W4S2W4S20W", "50W");   /* the gap may hold short wake runs */
    expect_webster("20W11S20W", "24W7S20W"); /* 11 > 10: only rules 1-3 */
    expect_webster("5S", "5S");              /* nothing before it */
    /* undefined epochs split the series: the sleep after them has no wake before it */
    expect_webster("4WU1S4W", "4WU1S4W");
    expect_webster("4W1SU", "4W1WU");
    expect_webster("", "");
    uint8_t bad[3] = {0, 3, 1};
    assert_int_equal(sleepscore_webster(bad, 3), -EINVAL);
    assert_int_equal(sleepscore_webster(NULL, 3), -EINVAL);
}

/* ---- Tudor-Locke by hand (bedtime 5, wake 10, min 20) ---- */

static const struct sleepscore_tl small_tl = {5, 10, 20, 1440, 0};

static int periods(const char *pat, const struct sleepscore_tl *tl, struct sleepscore_period *out)
{
    uint8_t sw[512];
    size_t n = pattern(pat, sw, 512);
    return sleepscore_periods(tl, sw, NULL, n, out, 8);
}

static void test_tudor_locke_rules_by_hand(void **state)
{
    (void)state;
    struct sleepscore_period p[8];
    assert_int_equal(periods("12W30S12W", &small_tl, p), 1);
    assert_int_equal(p[0].in_bed, 12);
    assert_int_equal(p[0].out_bed, 42);
    assert_int_equal(p[0].tst, 30);
    assert_int_equal(p[0].flags, 0);
    assert_true(p[0].efficiency == 100);

    /* short wake (< 10) and short sleep (< 5) runs inside belong to the period */
    assert_int_equal(periods("12W10S3W1S2W20S12W", &small_tl, p), 1);
    assert_int_equal(p[0].in_bed, 12);
    assert_int_equal(p[0].duration, 36);
    assert_int_equal(p[0].tst, 31);
    assert_int_equal(p[0].waso, 5);
    assert_int_equal(p[0].awakenings, 2);
    assert_int_equal(p[0].sleep_bouts, 3);
    assert_int_equal(p[0].sleep_bouts_1, 1);
    assert_true(fabs(p[0].fragmentation_index - 100.0 / 3) < 1e-12);
    assert_true(p[0].ave_awakening == 2.5);
    assert_true(p[0].midpoint == 12 + 18);

    /* a short sleep run after wake stays wake: bedtime starts at the 30-run */
    assert_int_equal(periods("12W4S3W30S12W", &small_tl, p), 1);
    assert_int_equal(p[0].in_bed, 19);
    /* 10 wake in a row end a period, 9 do not */
    assert_int_equal(periods("12W15S10W15S12W", &small_tl, p), 0);
    assert_int_equal(periods("12W15S9W15S12W", &small_tl, p), 1);
    assert_int_equal(p[0].duration, 39);
    /* min/max duration */
    assert_int_equal(periods("12W19S12W", &small_tl, p), 0);
    struct sleepscore_tl maxed = small_tl;
    maxed.max_sleep_period = 29;
    assert_int_equal(periods("12W30S12W", &maxed, p), 0);
    /* censoring at the array's ends and at undefined epochs */
    assert_int_equal(periods("30S12W", &small_tl, p), 1);
    assert_int_equal(p[0].flags, SLEEPSCORE_LEFT_CENSORED);
    assert_int_equal(periods("12W30S", &small_tl, p), 1);
    assert_int_equal(p[0].flags, SLEEPSCORE_RIGHT_CENSORED);
    assert_int_equal(periods("12W25S3U25S12W", &small_tl, p), 2);
    assert_int_equal(p[0].flags, SLEEPSCORE_RIGHT_CENSORED);
    assert_int_equal(p[0].out_bed, 37);
    assert_int_equal(p[1].flags, SLEEPSCORE_LEFT_CENSORED);
    assert_int_equal(p[1].in_bed, 40);
    /* a trailing short wake run is still inside the open period */
    assert_int_equal(periods("12W30S5W", &small_tl, p), 1);
    assert_int_equal(p[0].duration, 35);
    assert_int_equal(p[0].flags, SLEEPSCORE_RIGHT_CENSORED);

    /* counts: totals, movement index and the min_nonzero_epochs filter */
    uint8_t sw[64];
    double x[64] = {0};
    size_t n = pattern("12W30S12W", sw, 64);
    x[20] = 3;
    x[21] = 4;
    x[50] = 999; /* outside the period */
    struct sleepscore_tl tl = small_tl;
    assert_int_equal(sleepscore_periods(&tl, sw, x, n, p, 8), 1);
    assert_true(p[0].total_counts == 7);
    assert_int_equal(p[0].nonzero, 2);
    assert_true(fabs(p[0].movement_index - 100.0 * 2 / 30) < 1e-12);
    tl.min_nonzero_epochs = 3;
    assert_int_equal(sleepscore_periods(&tl, sw, x, n, p, 8), 0);
    /* more periods than cap: all counted */
    uint8_t sw3[256];
    n = pattern("12W30S12W30S12W30S12W", sw3, 256);
    assert_int_equal(sleepscore_periods(&small_tl, sw3, NULL, n, p, 2), 3);
    n = pattern("12W30S12W", sw, 64);
    /* bad input */
    struct sleepscore_tl bad = small_tl;
    bad.bedtime_start = 0;
    assert_int_equal(sleepscore_periods(&bad, sw, NULL, n, p, 8), -EINVAL);
    bad = small_tl;
    bad.min_sleep_period = 2000;
    assert_int_equal(sleepscore_periods(&bad, sw, NULL, n, p, 8), -EINVAL);
    sw[30] = 9;
    assert_int_equal(sleepscore_periods(&small_tl, sw, NULL, n, p, 8), -EINVAL);
    assert_int_equal(sleepscore_periods(&small_tl, NULL, NULL, 5, p, 8), -EINVAL);
    assert_int_equal(sleepscore_periods(&small_tl, NULL, NULL, 0, p, 8), 0);
}

static void test_night_selection_by_hand(void **state)
{
    (void)state;
    uint8_t sw[512];
    struct sleepscore_night nt;
    /* 0..11 W, 12..41 S (30), 42..53 W, 54..93 S (40), 94..105 W, 106..145 S (40), then W */
    size_t n = pattern("12W30S12W40S12W40S20W", sw, 512);
    assert_int_equal(sleepscore_night(&small_tl, sw, NULL, n, 0, 150, &nt), 0);
    assert_true(nt.found);
    assert_int_equal(nt.n_periods, 3);
    assert_int_equal(nt.main.in_bed, 54); /* 40 ties 40: the earlier wins */
    assert_true(nt.final);
    /* a period belongs to the night it starts in, wherever it ends */
    assert_int_equal(sleepscore_night(&small_tl, sw, NULL, n, 13, 60, &nt), 0);
    assert_int_equal(nt.n_periods, 1);
    assert_int_equal(nt.main.in_bed, 54);
    assert_int_equal(nt.main.out_bed, 94);
    assert_true(nt.final);
    assert_true(nt.lead_exact); /* epochs 2..11: 10 wake in a row before the window */
    /* the data stops inside the period: not final */
    assert_int_equal(sleepscore_night(&small_tl, sw, NULL, 80, 13, 60, &nt), 0);
    assert_false(nt.found);
    assert_int_equal(nt.n_censored, 1);
    assert_false(nt.final);
    /* the window reaches past the data: not final either */
    assert_int_equal(sleepscore_night(&small_tl, sw, NULL, n, 100, 400, &nt), 0);
    assert_false(nt.final);
    assert_int_equal(nt.main.in_bed, 106);
    /* a short sleep run at the very end, starting in the window, could still grow */
    n = pattern("12W30S12W3S", sw, 512);
    assert_int_equal(sleepscore_night(&small_tl, sw, NULL, n, 0, 56, &nt), 0);
    assert_false(nt.final);
    n = pattern("12W30S12W3W", sw, 512);
    assert_int_equal(sleepscore_night(&small_tl, sw, NULL, n, 0, 56, &nt), 0);
    assert_true(nt.final);
    /* no synchronisation point before the window */
    n = pattern("3W30S12W", sw, 512);
    assert_int_equal(sleepscore_night(&small_tl, sw, NULL, n, 2, 40, &nt), 0);
    assert_false(nt.lead_exact); /* 2 wake epochs before the window, not 10 */
    assert_true(nt.found);       /* after 3 wake epochs: not at the array's start */
    assert_int_equal(nt.main.in_bed, 3);
    /* undefined epochs are a synchronisation point too */
    n = pattern("3WU2W30S12W", sw, 512);
    assert_int_equal(sleepscore_night(&small_tl, sw, NULL, n, 5, 40, &nt), 0);
    assert_true(nt.lead_exact);
    assert_int_equal(nt.main.in_bed, 6);
    assert_int_equal(nt.n_scored + nt.n_undef, 35);
    /* bad windows and values */
    assert_int_equal(sleepscore_night(&small_tl, sw, NULL, n, 5, 5, &nt), -EINVAL);
    assert_int_equal(sleepscore_night(&small_tl, sw, NULL, n, 5, 40, NULL), -EINVAL);
    sw[4] = 3; /* seen by the scan back from the window */
    assert_int_equal(sleepscore_night(&small_tl, sw, NULL, n, 5, 40, &nt), -EINVAL);
    sw[4] = SLEEPSCORE_WAKE;
    sw[20] = 3;
    assert_int_equal(sleepscore_night(&small_tl, sw, NULL, n, 5, 40, &nt), -EINVAL);
}

/* ---- streaming: windowed calls against whole-series calls ---- */

static uint64_t rng = 0x9e3779b97f4a7c15u;
static unsigned rnd(unsigned m)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % m);
}

/* Days of 60-s counts starting at midnight: active days, nights of mostly still minutes from a
 * jittered bedtime to a jittered rise time with a few restless spells, naps, and the odd gap
 * in the data. */
static void synth_days(double *x, size_t n)
{
    unsigned bed = 0, rise = 0, nap = 0;
    for (size_t t = 0; t < n; t++) {
        unsigned m = (unsigned)(t % 1440);
        if (m == 0 || t == 0) {
            bed = 22 * 60 + rnd(180) - 1440;  /* minutes before midnight, as negative offset */
            rise = 6 * 60 + rnd(150);
            nap = rnd(3) == 0 ? 13 * 60 + rnd(180) : 0;
        }
        bool asleep = m < rise || m >= bed + 1440 || (nap && m >= nap && m < nap + 40);
        if (rnd(30000) == 0) { /* a gap of 5 to 64 minutes */
            for (unsigned k = 5 + rnd(60); k > 0 && t < n; k--)
                x[t++] = NAN;
            t--;
            continue;
        }
        if (asleep)
            x[t] = rnd(12) == 0 ? (double)rnd(rnd(25) == 0 ? 600 : 80) : 0;
        else
            x[t] = rnd(6) == 0 ? 0 : (double)rnd(rnd(2) ? 400 : 3000);
    }
}

#define NS 20160 /* 14 days */
static double sx[NS];

static void test_scores_in_windows_match_whole_series(void **state)
{
    (void)state;
    static uint8_t full[NS], part[NS];
    synth_days(sx, NS);
    for (int a = 0; a < 2; a++)
        for (int m = 0; m < 2; m++)
            for (int wb = 0; wb < 2; wb++) {
                struct sleepscore_params p = {(enum sleepscore_algo)a, (enum sleepscore_mode)m,
                                              wb != 0};
                size_t before, after;
                assert_int_equal(sleepscore_context(&p, &before, &after), 0);
                assert_int_equal(sleepscore_score(&p, sx, NULL, NS, 60, full), 0);
                assert_true(count(full, NS, SLEEPSCORE_UNDEF) > 0); /* the data has gaps */
                for (int w = 0; w < 400; w++) {
                    size_t c0 = rnd(NS), c1 = c0 + 1 + rnd(1440);
                    c1 = c1 < NS ? c1 : NS;
                    size_t w0 = c0 > before ? c0 - before : 0;
                    size_t w1 = c1 + after < NS ? c1 + after : NS;
                    assert_int_equal(sleepscore_score(&p, sx + w0, NULL, w1 - w0, 60, part), 0);
                    for (size_t t = c0; t < c1; t++)
                        if (part[t - w0] != full[t])
                            fail_msg("algo %d mode %d webster %d: window [%zu, %zu) epoch %zu: "
                                     "%d, whole series %d",
                                     a, m, wb, w0, w1, t, part[t - w0], full[t]);
                }
            }
}

static bool same_night(const struct sleepscore_night *a, const struct sleepscore_night *b,
                       size_t shift)
{
    if (a->found != b->found || a->n_periods != b->n_periods || a->n_censored != b->n_censored)
        return false;
    return !a->found ||
           (a->main.in_bed == b->main.in_bed + shift && a->main.duration == b->main.duration &&
            a->main.tst == b->main.tst && a->main.awakenings == b->main.awakenings &&
            a->main.sleep_bouts_1 == b->main.sleep_bouts_1 && a->main.nonzero == b->main.nonzero &&
            a->main.total_counts == b->main.total_counts);
}

/* Whenever a night computed on part of the data says final and lead_exact, it equals the
 * night computed on everything; and interior nights do become final. */
static void test_nights_final_means_exact(void **state)
{
    (void)state;
    static uint8_t sw[NS];
    synth_days(sx, NS);
    struct sleepscore_params p = {SLEEPSCORE_SADEH, SLEEPSCORE_ACTILIFE, false};
    assert_int_equal(sleepscore_score(&p, sx, NULL, NS, 60, sw), 0);
    const struct sleepscore_tl tls[] = {SLEEPSCORE_TL_DEFAULT, {5, 5, 20, 1440, 5},
                                        {10, 12, 60, 1440, 20}, {5, 10, 160, 300, 0}};
    size_t checked = 0, found = 0;
    for (size_t k = 0; k < sizeof tls / sizeof *tls; k++)
        for (size_t d = 0; d + 1 < NS / 1440; d++) {
            size_t ws = d * 1440 + 720, we = ws + 1440;
            struct sleepscore_night ref, r;
            assert_int_equal(sleepscore_night(&tls[k], sw, sx, NS, ws, we, &ref), 0);
            if (d >= 1 && we + 1440 + 20 <= NS) {
                assert_true(ref.final);
                assert_true(ref.lead_exact);
            }
            found += ref.found;
            for (int i = 0; i < 60; i++) {
                unsigned how = rnd(3), reach = how == 2 ? 40 : 1500; /* 0: from the start */
                size_t s0 = how ? ws - rnd((unsigned)(ws < reach ? ws + 1 : reach)) : 0;
                size_t e = ws + 1 + rnd((unsigned)(NS - ws));
                assert_int_equal(sleepscore_night(&tls[k], sw + s0, sx + s0, e - s0, ws - s0,
                                                  we - s0, &r),
                                 0);
                if (!r.final || !r.lead_exact || !ref.final)
                    continue;
                checked++;
                if (!same_night(&ref, &r, s0))
                    fail_msg("setting %zu night %zu: array [%zu, %zu) says final but differs "
                             "(found %d/%d, in_bed %zu/%zu, duration %u/%u, periods %u/%u)",
                             k, d, s0, e, ref.found, r.found, ref.main.in_bed,
                             r.main.in_bed + s0, ref.main.duration, r.main.duration,
                             ref.n_periods, r.n_periods);
            }
        }
    print_message("nights: %zu with a main period; %zu partial-array results said final and "
                  "matched the whole array\n",
                  found, checked);
    assert_true(found > 30);
    assert_true(checked > 500);
}

/* Garbage in: random counts and scores (including values other than 0/1/2), parameters at
 * and beyond their limits, windows anywhere. Every call returns 0 or a negative errno and
 * never writes past its buffers. */
static void test_garbage_never_crashes(void **state)
{
    (void)state;
    static double x[700];
    static uint8_t sw[701], valid[700];
    static const double specials[] = {0, 49, 50, 100, 299, 300, 1e300, NAN, INFINITY, -1};
    struct sleepscore_period per[3];
    for (int it = 0; it < 3000; it++) {
        size_t n = rnd(700);
        bool poison = rnd(10) == 0;
        for (size_t t = 0; t < n; t++) {
            x[t] = rnd(3) ? (double)rnd(400) : specials[rnd(poison ? 10 : 8)];
            valid[t] = (uint8_t)(rnd(25) != 0);
        }
        struct sleepscore_params p = {(enum sleepscore_algo)rnd(3), (enum sleepscore_mode)rnd(3),
                                      rnd(2) != 0};
        sw[n] = 0xAA;
        int r = sleepscore_score(&p, x, rnd(2) ? valid : NULL, n, rnd(8) ? 60 : rnd(120), sw);
        assert_true(r == 0 || r == -EINVAL || r == -EDOM);
        assert_int_equal(sw[n], 0xAA);
        if (r != 0 || rnd(8) == 0)
            for (size_t t = 0; t < n; t++)
                sw[t] = (uint8_t)(rnd(40) ? rnd(3) : rnd(256));
        struct sleepscore_tl tl = {rnd(12), rnd(15), rnd(200), rnd(5) ? 1440 : rnd(20000),
                                   rnd(30)};
        int k = sleepscore_periods(&tl, sw, rnd(2) ? x : NULL, n, per, 3);
        assert_true(k >= 0 || k == -EINVAL);
        size_t ws = rnd(800), we = ws + rnd(900);
        struct sleepscore_night night;
        r = sleepscore_night(&tl, sw, x, n, ws, we, &night);
        assert_true(r == 0 || r == -EINVAL);
        if (r == 0 && night.found)
            assert_true(night.main.in_bed >= ws && night.main.in_bed < we &&
                        night.main.out_bed <= n);
        r = sleepscore_webster(sw, n);
        assert_true(r == 0 || r == -EINVAL);
        assert_int_equal(sw[n], 0xAA);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cole_kripke_matches_actilife),
        cmocka_unit_test(test_sadeh_matches_actilife),
        cmocka_unit_test(test_pyactigraphy_totals_example01),
        cmocka_unit_test(test_tudor_locke_matches_actilife),
        cmocka_unit_test(test_main_period_of_the_recorded_night),
        cmocka_unit_test(test_cole_kripke_threshold_and_edges),
        cmocka_unit_test(test_sadeh_conventions_by_hand),
        cmocka_unit_test(test_missing_windows_are_undefined),
        cmocka_unit_test(test_webster_rules_by_hand),
        cmocka_unit_test(test_tudor_locke_rules_by_hand),
        cmocka_unit_test(test_night_selection_by_hand),
        cmocka_unit_test(test_scores_in_windows_match_whole_series),
        cmocka_unit_test(test_nights_final_means_exact),
        cmocka_unit_test(test_garbage_never_crashes),
    };
    return cmocka_run_group_tests(tests, load, NULL);
}
