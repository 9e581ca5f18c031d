/* Rest-activity rhythm metrics (see rhythm.h). rhy_compute reads the epochs once, a chunk at a
 * time, building both the average day at the native epoch (L5/M10) and the IS/IV bins; rhy_sri
 * makes one pass to code the states and one over the pairs. The rest works on a day's worth of
 * slots or a few hundred bins. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/rhythm.h"

#define DAY_S 86400
#define L5_S (5 * 3600)
#define M10_S (10 * 3600)
/* Window sums of non-integer profiles are compared in double: closer than this (relative)
 * counts as a tie, and the first onset wins (reference §5.4). */
#define TIE_REL 1e-12
/* Exact L5/M10 sums must stay exactly representable as doubles. */
#define EXACT_MAX 9007199254740992.0 /* 2^53 */
/* Epochs cleaned at a time: whole bins of about this many, so the cleaned values stay in L1
 * between the passes that read them. */
#define CHUNK 1024

/* The hot comparison loops use SSE2 (every x86-64 CPU has it) where available: compilers
 * leave comparisons of possibly-NaN doubles as branches or scalar selects, which random data
 * mispredicts. A comparison gives all-ones or all-zero lanes; and-ing with 1.0 turns that into
 * 1.0 or 0.0. Elsewhere the scalar loops that finish each vector loop do all the work; build
 * with -DRHY_NO_SIMD to test them on x86-64. */
#if defined(__SSE2__) && !defined(RHY_NO_SIMD)
#include <emmintrin.h>
#define RHY_SSE2 1
#endif

/* The shape of one call: slots per day, epochs per bin, bins per day, phase of the first epoch. */
struct geom {
    size_t n;
    int e;        /* epoch length, s */
    size_t P;     /* epochs (time-of-day slots) per day */
    size_t B;     /* epochs per bin */
    size_t Pb;    /* bins per day */
    size_t e0;    /* time-of-day slot of the first epoch */
    int frac;     /* tod0_s - e0 * e: the first epoch's offset inside its slot */
    size_t ph;    /* epochs of the first bin that lie before the array (local-day origin) */
    size_t nb;    /* bins spanned */
    size_t slot0; /* time-of-day slot of bin 0 */
};

/* Scratch carved out of the caller's work buffer. */
struct scratch {
    double *psum;    /* P: per time-of-day slot sum of valid epochs (rhy_sri: agreements) */
    double *pcnt;    /* P: and their number (a double: the loops stay in one type) */
    double *pre;     /* 2P + 1: the scaled profile (int64) or prefix sums (double) */
    double *bins;    /* nb */
    double *yc, *yk; /* a chunk of epochs: value, 0 if invalid; 1 if valid, else 0 */
    double *bsum;    /* Pb: per bin slot sum of valid bins */
    int32_t *bcnt;   /* Pb */
    float *code;     /* n: SRI states, 0, 1 or NaN (floats: half the memory, twice the lanes) */
};

/* Neumaier's compensated sum: order-fixed and accurate to about one rounding. */
struct ksum {
    double s, c;
};

static void ks_add(struct ksum *k, double v)
{
    double t = k->s + v;
    if (fabs(k->s) >= fabs(v))
        k->c += (k->s - t) + v;
    else
        k->c += (v - t) + k->s;
    k->s = t;
}

static double ks_val(const struct ksum *k)
{
    return k->s + k->c;
}

void rhy_opts_init(struct rhy_opts *o, enum rhy_conv conv)
{
    memset(o, 0, sizeof *o);
    o->conv = conv;
    o->origin = RHY_ORIGIN_RECORDING;
    o->binarize = conv == RHY_PYACTIGRAPHY;
    o->threshold = 4;
    o->bin_s = 3600;
    o->exclude_if_mask = 1;
    o->bin_min_valid = 1.0;
    o->edge = RHY_EDGE_AUTO;
    o->day_min_valid = 1.0;
    o->is_min_days = conv == RHY_CLASSIC ? 2 : 0;
}

static size_t align8(size_t b)
{
    return (b + 7) & ~(size_t)7;
}

/* Bins spanned by n epochs whose first bin starts ph epochs before the array. */
static size_t bins_spanned(size_t n, size_t B, size_t ph)
{
    return n ? (n + ph + B - 1) / B : 0;
}

size_t rhy_work_size(size_t n, int epoch_s, int bin_s)
{
    if (bin_s == 0)
        bin_s = 3600;
    if (epoch_s <= 0 || DAY_S % epoch_s || bin_s < epoch_s || bin_s % epoch_s || DAY_S % bin_s)
        return 0;
    size_t P = DAY_S / epoch_s, B = (size_t)bin_s / epoch_s, Pb = DAY_S / bin_s;
    if (n > ((size_t)1 << 40))
        return 0;
    size_t nb = bins_spanned(n, B, B - 1); /* the worst phase */
    size_t chunk = B > CHUNK ? B : CHUNK;
    return align8(P * sizeof(double)) + align8(P * sizeof(double)) +
           2 * align8(chunk * sizeof(double)) +
           align8((2 * P + 1) * sizeof(double)) + align8(nb * sizeof(double)) +
           align8(Pb * sizeof(double)) + align8(Pb * sizeof(int32_t)) +
           align8(n * sizeof(float));
}

static void carve(void *work, const struct geom *g, struct scratch *sc)
{
    char *p = work;
    sc->psum = (double *)p;
    p += align8(g->P * sizeof(double));
    sc->pcnt = (double *)p;
    p += align8(g->P * sizeof(double));
    size_t chunk = g->B > CHUNK ? g->B : CHUNK;
    sc->yc = (double *)p;
    p += align8(chunk * sizeof(double));
    sc->yk = (double *)p;
    p += align8(chunk * sizeof(double));
    sc->pre = (double *)p;
    p += align8((2 * g->P + 1) * sizeof(double));
    sc->bins = (double *)p;
    p += align8(bins_spanned(g->n, g->B, g->B - 1) * sizeof(double));
    sc->bsum = (double *)p;
    p += align8(g->Pb * sizeof(double));
    sc->bcnt = (int32_t *)p;
    p += align8(g->Pb * sizeof(int32_t));
    sc->code = (float *)p;
}

/* The caller's work buffer, or one of our own (*own, to free) when work is NULL. */
static void *work_get(const struct geom *g, void *work, size_t work_len, void **own, int *err)
{
    size_t need = rhy_work_size(g->n, g->e, (int)(g->B * (size_t)g->e));
    *own = NULL;
    *err = 0;
    if (work) {
        *err = work_len < need ? -ENOSPC : 0;
        return *err ? NULL : work;
    }
    *own = malloc(need);
    *err = *own ? 0 : -ENOMEM;
    return *own;
}

static int geom_init(const struct rhy_series *s, const struct rhy_opts *o, struct geom *g)
{
    if (!s || !o || (s->n && !s->x))
        return -EINVAL;
    int e = s->epoch_s, bin_s = o->bin_s ? o->bin_s : 3600;
    if (e <= 0 || DAY_S % e || bin_s < e || bin_s % e || DAY_S % bin_s)
        return -EINVAL;
    if (s->tod0_s < 0 || s->tod0_s >= DAY_S || s->n > ((size_t)1 << 40))
        return -EINVAL;
    if (o->conv != RHY_CLASSIC && o->conv != RHY_PYACTIGRAPHY)
        return -EINVAL;
    if (o->origin != RHY_ORIGIN_RECORDING && o->origin != RHY_ORIGIN_LOCAL_DAY)
        return -EINVAL;
    if (o->edge != RHY_EDGE_AUTO && o->edge != RHY_EDGE_KEEP && o->edge != RHY_EDGE_DROP)
        return -EINVAL;
    if (o->binarize && !isfinite(o->threshold))
        return -EINVAL;
    if (!(o->bin_min_valid >= 0 && o->bin_min_valid <= 1) ||
        !(o->day_min_valid >= 0 && o->day_min_valid <= 1) || o->is_min_days < 0)
        return -EINVAL;
    g->n = s->n;
    g->e = e;
    g->P = DAY_S / e;
    g->B = (size_t)bin_s / e;
    g->Pb = DAY_S / bin_s;
    g->e0 = (size_t)s->tod0_s / e;
    g->frac = s->tod0_s - (int)g->e0 * e;
    int local = o->origin == RHY_ORIGIN_LOCAL_DAY;
    g->ph = local ? g->e0 % g->B : 0;
    g->slot0 = local ? g->e0 / g->B : 0;
    g->nb = bins_spanned(g->n, g->B, g->ph);
    return 0;
}

/* ---- the epochs: cleaning, the average day, bin sums ---- */

/* The per-epoch loops are kept free of branches and of mixed types so that they vectorise:
 * validity is carried as 1.0/0.0, counts are doubles (exact below 2^53). */

/* The next run of masked (0) epochs at or after `from`: its start (n if none) and end. Masks
 * are mostly 1 with runs of non-wear, so visiting the runs beats a pass over every epoch. */
static size_t masked_run(const uint8_t *m, size_t n, size_t from, size_t *end)
{
    const uint8_t *z = from < n ? memchr(m + from, 0, n - from) : NULL;
    if (!z)
        return *end = n;
    size_t a = (size_t)(z - m), b = a + 1;
    while (b < n && !m[b])
        b++;
    *end = b;
    return a;
}

/* For len epochs on consecutive time-of-day slots (no midnight inside): yc[j] = the epoch's
 * value (binarised or raw) and yk[j] = 1 for a valid epoch (finite, not masked), both 0
 * otherwise; and both added to the slot sums ps and counts pc. m is NULL or has a 0 in range. */
static void clean_add(const double *restrict x, const uint8_t *restrict m, size_t len, int bin,
                      double thr, double *restrict yc, double *restrict yk,
                      double *restrict ps, double *restrict pc)
{
    size_t j = 0;
#ifdef RHY_SSE2
    /* lane masks for two mask bytes: bit 0 the first epoch is kept, bit 1 the second */
    static const uint64_t keep[4][2] = {{0, 0}, {~0ULL, 0}, {0, ~0ULL}, {~0ULL, ~0ULL}};
    const __m128d zero = _mm_setzero_pd(), one = _mm_set1_pd(1.0), th = _mm_set1_pd(thr);
    for (; j + 2 <= len; j += 2) {
        __m128d v = _mm_loadu_pd(x + j);
        __m128d ok = _mm_cmpeq_pd(_mm_sub_pd(v, v), zero); /* finite */
        if (m)
            ok = _mm_and_pd(ok, _mm_castsi128_pd(_mm_loadu_si128(
                                    (const __m128i *)keep[(m[j] != 0) | (m[j + 1] != 0) << 1])));
        __m128d val = bin ? _mm_and_pd(_mm_cmpgt_pd(v, th), one) : v;
        __m128d k = _mm_and_pd(ok, one), c = _mm_and_pd(ok, val);
        _mm_storeu_pd(yk + j, k);
        _mm_storeu_pd(yc + j, c);
        _mm_storeu_pd(ps + j, _mm_add_pd(_mm_loadu_pd(ps + j), c));
        _mm_storeu_pd(pc + j, _mm_add_pd(_mm_loadu_pd(pc + j), k));
    }
#endif
    for (; j < len; j++) {
        double v = x[j];
        int ok = v - v == 0 && (!m || m[j]);
        yk[j] = ok ? 1.0 : 0.0;
        yc[j] = !ok ? 0.0 : bin ? (v > thr ? 1.0 : 0.0) : v;
        ps[j] += yc[j];
        pc[j] += yk[j];
    }
}

/* The sums of yc and yk over one bin, each in four interleaved partial sums: a fixed order,
 * so deterministic, and exact for integer counts; it breaks the addition latency chain. */
static void bin_sums(const double *restrict yc, const double *restrict yk, size_t len,
                     double *sum, double *valid)
{
    double c0 = 0, c1 = 0, c2 = 0, c3 = 0, k0 = 0, k1 = 0, k2 = 0, k3 = 0;
    size_t j = 0;
    for (; j + 4 <= len; j += 4) {
        c0 += yc[j];
        c1 += yc[j + 1];
        c2 += yc[j + 2];
        c3 += yc[j + 3];
        k0 += yk[j];
        k1 += yk[j + 1];
        k2 += yk[j + 2];
        k3 += yk[j + 3];
    }
    for (; j < len; j++) {
        c0 += yc[j];
        k0 += yk[j];
    }
    *sum = (c0 + c1) + (c2 + c3);
    *valid = (k0 + k1) + (k2 + k3);
}

static size_t count_masked(const uint8_t *restrict m, size_t len)
{
    size_t k = 0;
    for (size_t j = 0; j < len; j++)
        k += m[j] == 0;
    return k;
}

/* ---- L5, M10, RA over the average day ---- */

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Day counts (the number of days each time-of-day slot has data) below this are looked up in
 * tables rather than compared slot by slot: with non-wear they change from slot to slot. */
#define SMALL_COUNT 64

/* The least common multiple D of the day counts, and the number of slots with data. D is 0
 * when it would exceed 2^31. */
static uint64_t day_counts(const double *pcnt, size_t P, int32_t *slots)
{
    uint64_t seen = 0, D = 1;
    double last = 0;
    int32_t k_data = 0;
    for (size_t k = 0; k < P; k++) {
        double c = pcnt[k];
        k_data += c != 0;
        if (c < SMALL_COUNT) {
            seen |= (uint64_t)1 << (int)c;
        } else if (c != last) { /* long recordings: large counts, and rarely changing */
            last = c;
            D = D && c < 2147483648.0 ? D / gcd64(D, (uint64_t)c) * (uint64_t)c : 0;
            D = D > ((uint64_t)1 << 31) ? 0 : D;
        }
    }
    for (uint64_t c = 1; c < SMALL_COUNT && D; c++)
        if (seen >> c & 1) {
            D = D / gcd64(D, c) * c;
            D = D > ((uint64_t)1 << 31) ? 0 : D;
        }
    *slots = k_data;
    return D;
}

/* The profile scaled to integers, q[s] = psum[s] * D / pcnt[s], so window sums are exact and
 * ties are real ties. 0 when the sums are not integers or window sums of up to w slots could
 * reach 2^53. q gets P + w entries: q[P + k] = q[k], so windows that wrap past midnight read on
 * without a modulo. */
static int exact_profile(const double *psum, const double *pcnt, size_t P, uint64_t D,
                         size_t w, int64_t *q)
{
    double smax = 0;
    int frac = 0;
    for (size_t k = 0; k < P; k++) {
        /* for 0 <= a < 2^52, (a + 2^52) - 2^52 is a rounded to an integer */
        double a = fabs(psum[k]), r = (a + 0x1p52) - 0x1p52;
        frac |= r != a;
        smax = a > smax ? a : smax;
    }
    if (!D || frac || smax * (double)D * (double)(w + 1) >= EXACT_MAX)
        return 0;
    double ratio[SMALL_COUNT], last = 0, big = 0; /* D / count: integers, counts divide D */
    ratio[0] = 0;
    for (int c = 1; c < SMALL_COUNT; c++)
        ratio[c] = (double)D / c;
    for (size_t k = 0; k < P; k++) {
        double c = pcnt[k], f;
        if (c < SMALL_COUNT) {
            f = ratio[(int)c];
        } else {
            if (c != last) {
                last = c;
                big = (double)D / c;
            }
            f = big;
        }
        q[k] = (int64_t)(psum[k] * f);
    }
    for (size_t k = 0; k < w; k++)
        q[P + k] = q[k];
    return 1;
}

/* The first window starts with the least w5-slot and the greatest w10-slot sums. */
static void extremes_exact(const int64_t *q, size_t P, size_t w5, size_t w10, size_t *a5,
                           int64_t *s5, size_t *a10, int64_t *s10)
{
    int64_t lo = 0, hi = 0;
    for (size_t k = 0; k < w5; k++)
        lo += q[k];
    for (size_t k = 0; k < w10; k++)
        hi += q[k];
    int64_t blo = lo, bhi = hi;
    size_t alo = 0, ahi = 0;
    for (size_t s = 1; s < P; s++) {
        lo += q[s + w5 - 1] - q[s - 1];
        hi += q[s + w10 - 1] - q[s - 1];
        if (lo < blo) {
            blo = lo;
            alo = s;
        }
        if (hi > bhi) {
            bhi = hi;
            ahi = s;
        }
    }
    *a5 = alo;
    *s5 = blo;
    *a10 = ahi;
    *s10 = bhi;
}

/* The same in double over the mean profile prof (non-integer input), via prefix sums pre. */
static size_t extreme_double(const double *prof, double *pre, size_t P, size_t w, int lowest,
                             double *value)
{
    pre[0] = 0;
    for (size_t k = 0; k < P + w; k++)
        pre[k + 1] = pre[k] + prof[k < P ? k : k - P];
    size_t at = 0;
    double best = pre[w];
    for (size_t s = 1; s < P; s++) {
        double v = pre[s + w] - pre[s];
        double tol = TIE_REL * fmax(fabs(best), fabs(v));
        if (lowest ? v < best - tol : v > best + tol) {
            best = v;
            at = s;
        }
    }
    struct ksum k = {0, 0}; /* the reported value: one careful sum, not a prefix difference */
    for (size_t j = 0; j < w; j++)
        ks_add(&k, prof[(at + j) % P]);
    *value = ks_val(&k);
    return at;
}

static void lmx(const struct geom *g, struct scratch *sc, struct rhy_result *r)
{
    int32_t slots;
    uint64_t D = day_counts(sc->pcnt, g->P, &slots);
    r->lmx_n_valid = slots;
    r->lmx_n_expected = (int32_t)g->P;
    r->lmx_partial = slots < (int32_t)g->P;
    /* a full day is needed for every slot to exist; windows must be whole epochs */
    if (g->n < g->P || !slots || L5_S % g->e || M10_S % g->e)
        return;
    size_t w5 = L5_S / g->e, w10 = M10_S / g->e, a5, a10;
    int64_t *q = (int64_t *)sc->pre;
    if (exact_profile(sc->psum, sc->pcnt, g->P, D, w10, q)) {
        int64_t s5, s10;
        extremes_exact(q, g->P, w5, w10, &a5, &s5, &a10, &s10);
        r->l5 = (double)s5 / ((double)D * (double)w5);
        r->m10 = (double)s10 / ((double)D * (double)w10);
    } else {
        double *prof = sc->psum; /* psum becomes the mean profile in place */
        for (size_t k = 0; k < g->P; k++)
            prof[k] = sc->pcnt[k] ? prof[k] / sc->pcnt[k] : 0.0;
        double v5, v10;
        a5 = extreme_double(prof, sc->pre, g->P, w5, 1, &v5);
        a10 = extreme_double(prof, sc->pre, g->P, w10, 0, &v10);
        r->l5 = v5 / (double)w5;
        r->m10 = v10 / (double)w10;
    }
    r->l5_onset_s = (int32_t)(a5 * (size_t)g->e) + g->frac;
    r->m10_onset_s = (int32_t)(a10 * (size_t)g->e) + g->frac;
    if (r->m10 + r->l5 != 0 && isfinite(r->m10 + r->l5))
        r->ra = (r->m10 - r->l5) / (r->m10 + r->l5);
}

/* ---- IS and IV bins ---- */

/* The value of bin k from its valid-epoch sum and counts (reference §5.1 and §7.2); nm, the
 * masked epochs, is only 0 or 1 (any) under exclude_if_mask. */
static double bin_value(const struct rhy_opts *o, const struct geom *g, int has_mask, double sum,
                        size_t nv, size_t nm, size_t npres)
{
    enum rhy_edge edge = o->edge;
    if (edge == RHY_EDGE_AUTO)
        edge = o->conv == RHY_CLASSIC && o->origin == RHY_ORIGIN_LOCAL_DAY ? RHY_EDGE_DROP
                                                                          : RHY_EDGE_KEEP;
    if (npres < g->B && edge == RHY_EDGE_DROP)
        return NAN;
    if (o->conv == RHY_PYACTIGRAPHY) {
        if (g->B == 1) /* bins of one epoch: pyActigraphy hands back the epochs unchanged */
            return nv ? sum : NAN;
        if (has_mask && (o->exclude_if_mask ? nm > 0 : nm == npres))
            return NAN;
        return sum; /* an unmasked bin of missing epochs sums to 0 there */
    }
    if (!nv || (o->exclude_if_mask && nm > 0))
        return NAN;
    /* for an integer nv, nv < f * npres (less a rounding allowance) is nv < ceil(f * npres) */
    return (double)nv < o->bin_min_valid * (double)npres - 1e-9 ? NAN : sum;
}

/* The epoch passes, a chunk of whole bins at a time: clean values, the average day
 * (psum/pcnt), the IS/IV bins (sc->bins). Counts complete days on the way (a day: Pb bins of
 * one day index, all spanning their full width, at least day_min_valid of them valid). */
static void epoch_pass(const struct rhy_series *s, const struct rhy_opts *o,
                       const struct geom *g, struct scratch *sc, struct rhy_result *r)
{
    const uint8_t *mask = s->mask;
    memset(sc->psum, 0, g->P * sizeof *sc->psum);
    memset(sc->pcnt, 0, g->P * sizeof *sc->pcnt);
    size_t need_day = (size_t)ceil(o->day_min_valid * (double)g->Pb - 1e-9);
    size_t day_full = 0, day_valid = 0, day_of = (size_t)-1, slot = g->e0;
    size_t per = g->B >= CHUNK ? 1 : CHUNK / g->B; /* bins per chunk */
    double valid = 0;
    int32_t complete = 0, days = 0;
    for (size_t k0 = 0; k0 < g->nb; k0 += per) {
        size_t k1 = k0 + per < g->nb ? k0 + per : g->nb;
        size_t clo = k0 * g->B > g->ph ? k0 * g->B - g->ph : 0;
        size_t chi = k1 * g->B - g->ph < g->n ? k1 * g->B - g->ph : g->n;
        for (size_t t = 0; t < chi - clo;) { /* split at midnight */
            size_t len = g->P - slot < chi - clo - t ? g->P - slot : chi - clo - t;
            const uint8_t *m = mask && memchr(mask + clo + t, 0, len) ? mask + clo + t : NULL;
            clean_add(s->x + clo + t, m, len, o->binarize != 0, o->threshold, sc->yc + t,
                      sc->yk + t, sc->psum + slot, sc->pcnt + slot);
            t += len;
            slot += len;
            if (slot == g->P)
                slot = 0;
        }
        for (size_t k = k0; k < k1; k++) {
            size_t lo = k * g->B > g->ph ? k * g->B - g->ph : 0;
            size_t hi = (k + 1) * g->B - g->ph < g->n ? (k + 1) * g->B - g->ph : g->n;
            double nv, sum;
            bin_sums(sc->yc + (lo - clo), sc->yk + (lo - clo), hi - lo, &sum, &nv);
            size_t nm = !mask ? 0
                        : o->exclude_if_mask ? memchr(mask + lo, 0, hi - lo) != NULL /* any */
                                             : count_masked(mask + lo, hi - lo);
            valid += nv;
            double b = bin_value(o, g, mask != NULL, sum, (size_t)nv, nm, hi - lo);
            sc->bins[k] = b;
            size_t day = (g->slot0 + k) / g->Pb;
            if (day != day_of) {
                if (day_of != (size_t)-1 && day_full == g->Pb && day_valid >= need_day)
                    complete++;
                days++;
                day_of = day;
                day_full = day_valid = 0;
            }
            day_full += hi - lo == g->B;
            day_valid += !isnan(b);
        }
    }
    if (days && day_full == g->Pb && day_valid >= need_day)
        complete++;
    r->days_complete = complete;
    r->days_expected = days;
    r->n_epochs_valid = (size_t)valid;
}

static void is_iv(const struct rhy_opts *o, const struct geom *g, struct scratch *sc,
                  struct rhy_result *r)
{
    const double *x = sc->bins;
    memset(sc->bsum, 0, g->Pb * sizeof *sc->bsum);
    memset(sc->bcnt, 0, g->Pb * sizeof *sc->bcnt);
    struct ksum tot = {0, 0};
    size_t N = 0, slot = g->slot0 % g->Pb;
    for (size_t k = 0; k < g->nb; k++) {
        if (!isnan(x[k])) {
            ks_add(&tot, x[k]);
            N++;
            sc->bsum[slot] += x[k];
            sc->bcnt[slot]++;
        }
        if (++slot == g->Pb)
            slot = 0;
    }
    r->is_n_valid = N;
    r->is_n_expected = g->nb;
    r->iv_n_expected = g->nb ? g->nb - 1 : 0;
    r->is_slots_expected = (int32_t)g->Pb;
    if (N == 0)
        return;
    double mean = ks_val(&tot) / (double)N;
    struct ksum ss = {0, 0}, dd = {0, 0};
    size_t pairs = 0;
    for (size_t k = 0; k < g->nb; k++) {
        if (isnan(x[k]))
            continue;
        ks_add(&ss, (x[k] - mean) * (x[k] - mean));
        if (k && !isnan(x[k - 1])) {
            ks_add(&dd, (x[k] - x[k - 1]) * (x[k] - x[k - 1]));
            pairs++;
        }
    }
    r->iv_n_valid = pairs;
    /* the profile: classic measures it around the grand mean, pyActigraphy around its own mean */
    int32_t p = 0;
    struct ksum pm = {0, 0};
    for (size_t h = 0; h < g->Pb; h++)
        if (sc->bcnt[h]) {
            p++;
            ks_add(&pm, sc->bsum[h] / sc->bcnt[h]);
        }
    r->is_slots = p;
    double SS = ks_val(&ss);
    int py = o->conv == RHY_PYACTIGRAPHY;
    double centre = py ? ks_val(&pm) / p : mean;
    struct ksum sp = {0, 0};
    for (size_t h = 0; h < g->Pb; h++)
        if (sc->bcnt[h]) {
            double d = sc->bsum[h] / sc->bcnt[h] - centre;
            ks_add(&sp, d * d);
        }
    double SP = ks_val(&sp);
    if (N >= 2 && SS > 0 && r->days_complete >= o->is_min_days && (!py || p >= 2))
        r->is = py ? (SP / (p - 1)) / (SS / (double)(N - 1))
                   : ((double)N * SP) / ((double)p * SS);
    if (pairs && N >= 2 && SS > 0)
        r->iv = (ks_val(&dd) / (double)pairs) / (SS / (double)(py ? N - 1 : N));
}

static void result_clear(struct rhy_result *r, size_t n)
{
    memset(r, 0, sizeof *r);
    r->is = r->iv = r->l5 = r->m10 = r->ra = NAN;
    r->l5_onset_s = r->m10_onset_s = -1;
    r->n_epochs = n;
}

int rhy_compute(const struct rhy_series *s, const struct rhy_opts *o, void *work, size_t work_len,
                struct rhy_result *r)
{
    struct geom g;
    result_clear(r, s ? s->n : 0);
    int e = geom_init(s, o, &g);
    if (e < 0)
        return e;
    void *own;
    if (!(work = work_get(&g, work, work_len, &own, &e)))
        return e;
    struct scratch sc;
    carve(work, &g, &sc);
    epoch_pass(s, o, &g, &sc, r);
    lmx(&g, &sc, r);
    is_iv(o, &g, &sc, r);
    free(own);
    return 0;
}

/* ---- Sleep Regularity Index ---- */

/* SRI works on the states as floats with every missing or masked one made NaN: then a pair is
 * valid when a + b is not NaN, and agrees when a == b (NaN equals nothing). */

/* Codes of x. Returns -1 if a value is none of 0, 1 or NaN, else whether any state is
 * missing (NaN, or masked). The flags are OR-ed, not counted: no addition chain to wait on. */
static int sri_codes(const double *restrict x, const uint8_t *restrict m, size_t n,
                     float *restrict c)
{
    size_t t = 0;
    int b = 0, u = 0;
#ifdef RHY_SSE2
    const __m128d zero = _mm_setzero_pd(), one = _mm_set1_pd(1.0), nan = _mm_set1_pd(NAN);
    const __m128d all = _mm_castsi128_pd(_mm_set1_epi32(-1));
    __m128d bad = zero, miss = zero;
    for (; t + 4 <= n; t += 4) {
        __m128d v0 = _mm_loadu_pd(x + t), v1 = _mm_loadu_pd(x + t + 2);
        __m128d s0 = _mm_or_pd(_mm_cmpeq_pd(v0, zero), _mm_cmpeq_pd(v0, one));
        __m128d s1 = _mm_or_pd(_mm_cmpeq_pd(v1, zero), _mm_cmpeq_pd(v1, one));
        bad = _mm_or_pd(bad, _mm_or_pd(_mm_andnot_pd(s0, _mm_cmpord_pd(v0, v0)),
                                       _mm_andnot_pd(s1, _mm_cmpord_pd(v1, v1))));
        miss = _mm_or_pd(miss, _mm_andnot_pd(_mm_and_pd(s0, s1), all));
        __m128d c0 = _mm_or_pd(_mm_and_pd(s0, v0), _mm_andnot_pd(s0, nan));
        __m128d c1 = _mm_or_pd(_mm_and_pd(s1, v1), _mm_andnot_pd(s1, nan));
        _mm_storeu_ps(c + t, _mm_movelh_ps(_mm_cvtpd_ps(c0), _mm_cvtpd_ps(c1)));
    }
    b = _mm_movemask_pd(bad) != 0;
    u = _mm_movemask_pd(miss) != 0;
#endif
    for (; t < n; t++) {
        double v = x[t];
        int state = v == 0 || v == 1;
        b |= !state && v == v;
        u |= !state;
        c[t] = state ? (float)v : NAN;
    }
    if (b)
        return -1;
    for (size_t a, e = 0; m && (a = masked_run(m, n, e, &e)) < n; u = 1)
        for (t = a; t < e; t++)
            c[t] = NAN;
    return u;
}

/* Agreeing and valid pairs (c[t], c[t + P]) for t in [lo, hi). With slot_eq (pyactigraphy),
 * also adds each pair's agreement to slot_eq[t - lo]: the range then holds no midnight of the
 * slot clock. The vector counts subtract the comparisons' all-ones (-1) lanes as integers. */
static void sri_pairs(const float *restrict c, size_t P, size_t lo, size_t hi,
                      float *restrict slot_eq, size_t *eq, size_t *ok)
{
    size_t t = lo, e = 0, o = 0;
#ifdef RHY_SSE2
    const __m128 one = _mm_set1_ps(1.0f);
    __m128i ve = _mm_setzero_si128(), vo = _mm_setzero_si128();
    for (; t + 4 <= hi; t += 4) { /* lane counts stay below 2^31: hi - lo <= P <= 86400 */
        __m128 a = _mm_loadu_ps(c + t), b = _mm_loadu_ps(c + t + P), s = _mm_add_ps(a, b);
        __m128 same = _mm_cmpeq_ps(a, b);
        vo = _mm_sub_epi32(vo, _mm_castps_si128(_mm_cmpord_ps(s, s)));
        ve = _mm_sub_epi32(ve, _mm_castps_si128(same));
        if (slot_eq) {
            float *q = slot_eq + (t - lo);
            _mm_storeu_ps(q, _mm_add_ps(_mm_loadu_ps(q), _mm_and_ps(same, one)));
        }
    }
    int32_t lanes[4];
    _mm_storeu_si128((__m128i *)lanes, ve);
    e = (size_t)lanes[0] + (size_t)lanes[1] + (size_t)lanes[2] + (size_t)lanes[3];
    _mm_storeu_si128((__m128i *)lanes, vo);
    o = (size_t)lanes[0] + (size_t)lanes[1] + (size_t)lanes[2] + (size_t)lanes[3];
#endif
    for (; t < hi; t++) {
        float a = c[t], b = c[t + P];
        o += a + b == a + b;
        e += a == b;
        if (slot_eq)
            slot_eq[t - lo] += a == b ? 1.0f : 0.0f;
    }
    *eq = e;
    *ok = o;
}

/* pyActigraphy: the share of agreeing consecutive-day pairs per time-of-day slot (eq, floats:
 * exact below 2^24 days), averaged over the slots; NaN when a slot has no pair. A slot has
 * base = end / P pairs, or base + 1 for the end % P slots from the first epoch's on, so the
 * mean of the shares is exactly (agreements of the first kind / base + those of the second /
 * (base + 1)) / P: two divisions of exact integer sums. */
static double sri_slot_mean(const struct geom *g, const float *eq)
{
    size_t end = g->n - g->P, base = end / g->P, rem = end % g->P;
    if (!base)
        return NAN; /* a slot seen on one day only */
    double all = 0, more = 0;
    for (size_t k = 0; k < g->P; k++)
        all += eq[k];
    for (size_t i = 0, k = g->e0; i < rem; i++, k = k + 1 == g->P ? 0 : k + 1)
        more += eq[k];
    double share = (all - more) / (double)base + more / (double)(base + 1);
    return 200.0 * share / (double)g->P - 100.0;
}

int rhy_sri(const struct rhy_series *s, const struct rhy_opts *o, void *work, size_t work_len,
            struct rhy_sri_result *r, double *pair_sri, double *pair_frac, size_t max_pairs)
{
    struct geom g;
    memset(r, 0, sizeof *r);
    r->sri = NAN;
    int e = geom_init(s, o, &g);
    if (e < 0)
        return e;
    if (max_pairs && (!pair_sri || !pair_frac))
        return -EINVAL;
    void *own;
    if (!(work = work_get(&g, work, work_len, &own, &e)))
        return e;
    struct scratch sc;
    carve(work, &g, &sc);
    int miss = sri_codes(s->x, s->mask, g.n, sc.code);
    if (miss < 0) {
        free(own);
        return -EINVAL;
    }
    if (g.n > g.P) {
        r->n_expected = g.n - g.P;
        /* days as for bins: from the first epoch, or local calendar days */
        size_t off = o->origin == RHY_ORIGIN_LOCAL_DAY ? g.e0 : 0;
        size_t eq_all = 0, ok_all = 0, d = 0, slot = g.e0;
        float *slot_eq = o->conv == RHY_PYACTIGRAPHY ? (float *)sc.psum : NULL;
        if (slot_eq)
            memset(slot_eq, 0, g.P * sizeof *slot_eq);
        for (size_t t = 0; t < r->n_expected; d++) {
            size_t stop = (d + 1) * g.P - off, eq = 0, ok = 0;
            if (stop > r->n_expected)
                stop = r->n_expected;
            while (t < stop) { /* split where the slot clock passes midnight */
                size_t seg = stop - t < g.P - slot ? stop : t + (g.P - slot), e1, o1;
                sri_pairs(sc.code, g.P, t, seg, slot_eq ? slot_eq + slot : NULL, &e1, &o1);
                eq += e1;
                ok += o1;
                slot += seg - t;
                slot = slot == g.P ? 0 : slot;
                t = seg;
            }
            if (d < max_pairs) {
                pair_sri[d] = ok ? -100.0 + 200.0 * (double)eq / (double)ok : NAN;
                pair_frac[d] = (double)ok / (double)g.P;
            }
            eq_all += eq;
            ok_all += ok;
        }
        r->n_day_pairs = d;
        r->n_valid = ok_all;
        if (o->conv == RHY_CLASSIC && ok_all)
            r->sri = -100.0 + 200.0 * (double)eq_all / (double)ok_all;
        else if (o->conv == RHY_PYACTIGRAPHY && !miss) /* one missing epoch: NaN there */
            r->sri = sri_slot_mean(&g, slot_eq);
    }
    free(own);
    return 0;
}
