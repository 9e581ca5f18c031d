/* Non-wear detection (nonwear.h). One pass checks the counts and writes a label per epoch
 * into the output buffer, which is the only scratch space; then every algorithm works on one
 * run of present epochs (a "segment") at a time, rewriting labels into flags in place. The
 * reference implementations decide each step for all runs at once, on the runs as they were
 * before that step, which is why the run walks below carry the lengths they saw rather than
 * re-reading what they have already rewritten. */
#include "pipeline/nonwear.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Labels while the algorithms run. ZERO and NONZERO double as the final NOT_WORN and WORN,
 * and MISSING is final, so most epochs never need a second write. */
enum { ZERO = NONWEAR_NOT_WORN, NONZERO = NONWEAR_WORN, MISSING = NONWEAR_MISSING, STOP = 3 };
_Static_assert(MISSING == 2 && ZERO == 0 && NONZERO == 1, "label_all's bit tricks");

static bool missing(const double *x, const uint8_t *valid, size_t t)
{
    return isnan(x[t]) || (valid && !valid[t]);
}

static uint8_t troiano_label(const struct nonwear_params *p, double c)
{
    if (c > p->spike_stoplevel)
        return STOP;
    if (c > p->activity_threshold && c <= p->max_nonzero_count)
        return NONZERO;
    return ZERO;
}

/* The one pass over the counts: labels (MISSING for NaN or masked epochs) and the check for
 * negative or infinite counts, which the caller learns only after the pass. Written once
 * per algorithm so that each loop is free of the algorithm switch. */
#define LABEL_LOOP(expr, masked)                                                               \
    for (size_t t = 0; t < n; t++) {                                                           \
        double v = x[t];                                                                       \
        bad |= (v < 0) | (v == INFINITY);                                                      \
        uint8_t l = (expr), miss = (uint8_t)((v != v) | (masked));                             \
        f[t] = (uint8_t)((l & (uint8_t)(miss - 1)) | (miss << 1)); /* MISSING is 2 */         \
    }
#define LABEL_LOOPS(expr)                                                                      \
    if (valid)                                                                                 \
        LABEL_LOOP(expr, !valid[t])                                                            \
    else                                                                                       \
        LABEL_LOOP(expr, 0)

static bool label_all(const struct nonwear_params *p, const double *x, const uint8_t *valid,
                      size_t n, uint8_t *f)
{
    bool bad = false;
    switch (p->algo) {
    case NONWEAR_CHOI:
        LABEL_LOOPS(v > 0 ? NONZERO : ZERO)
        break;
    case NONWEAR_TROIANO:
        LABEL_LOOPS(troiano_label(p, v))
        break;
    case NONWEAR_PYACT:
        LABEL_LOOPS(v < 1 ? ZERO : NONZERO)
        break;
    }
    return !bad;
}

/* End (exclusive) of the run of equal values starting at i, not beyond b. Eight bytes at a
 * time: a run's end is found without a branch per epoch (runs of a few epochs are the common
 * case in the day, runs of hundreds at night). */
static size_t run_end(const uint8_t *f, size_t i, size_t b)
{
    uint8_t v = f[i++];
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t pattern = UINT64_C(0x0101010101010101) * v;
    for (; i + 8 <= b; i += 8) {
        uint64_t w;
        memcpy(&w, f + i, 8);
        if (w != pattern)
            return i + (size_t)(__builtin_ctzll(w ^ pattern) >> 3);
    }
#endif
    while (i < b && f[i] == v)
        i++;
    return i;
}

/* Final step of Troiano and pyActigraphy: zero runs of at least min_len are non-wear, the
 * rest is wear. */
static void keep_long_zero_runs(uint8_t *f, size_t a, size_t b, size_t min_len)
{
    for (size_t i = a; i < b;) {
        size_t j = run_end(f, i, b);
        uint8_t want = f[i] == ZERO && j - i >= min_len ? ZERO : NONZERO;
        if (f[i] != want)
            memset(f + i, want, j - i);
        i = j;
    }
}

static void fill(uint8_t *f, size_t a, size_t b, uint8_t v)
{
    for (; a < b; a++)
        f[a] = v;
}

/* Choi 2011 (reference §3.2) in one walk over the raw runs of labels ZERO (count 0) and
 * NONZERO. The reference's steps, as the walk sees them:
 *  2. a zero run shorter than spike_tolerance is activity: it joins the activity run being
 *     gathered ([act, i), `act_zero` if it holds such zeros that must be rewritten);
 *  3. a gathered activity run of <= spike_tolerance between two zero runs of >= window is an
 *     artefact: the zero run group [grp, ...) goes on across it (`grp_art`); one at the
 *     segment's edge has no neighbour there and ends the group;
 *  4. when a group ends, it is non-wear if it spans >= min_period_len, else wear.
 * One branch mispredict per raw run instead of one per run and step. */
static void choi(const struct nonwear_params *p, uint8_t *f, size_t a, size_t b)
{
    size_t spike = p->spike_tolerance, window = p->min_window_len, min_len = p->min_period_len;
    size_t act = 0, grp = 0, prev_zero = 0;
    bool have_act = false, act_zero = false, have_grp = false, grp_art = false;
    for (size_t i = a; i < b;) {
        size_t j = run_end(f, i, b);
        if (f[i] == NONZERO || j - i < spike) {
            if (!have_act) {
                have_act = true;
                act = i;
                act_zero = false;
            }
            act_zero |= f[i] == ZERO;
            i = j;
            continue;
        }
        if (have_act) { /* the activity run [act, i) is complete: artefact or wear? */
            if (have_grp && i - act <= spike && prev_zero >= window && j - i >= window) {
                grp_art = true;
            } else {
                if (have_grp && (act - grp < min_len || grp_art))
                    fill(f, grp, act, act - grp >= min_len ? ZERO : NONZERO);
                if (act_zero)
                    fill(f, act, i, NONZERO);
                have_grp = false;
            }
            have_act = false;
        }
        if (!have_grp) {
            have_grp = true;
            grp = i;
            grp_art = false;
        }
        prev_zero = j - i;
        i = j;
    }
    size_t end = have_act ? act : b;
    if (have_grp && (end - grp < min_len || grp_art)) /* long and artefact-free: already ZERO */
        fill(f, grp, end, end - grp >= min_len ? ZERO : NONZERO);
    if (have_act && act_zero)
        fill(f, act, b, NONZERO);
}

/* Troiano, endat_nnz_seq = TRUE (reference §3.1): a short nonzero run followed by zeros takes
 * the state of the run before it; a leading one counts as activity. */
static void troiano_seq(const struct nonwear_params *p, uint8_t *f, size_t a, size_t b)
{
    uint8_t prev = NONZERO; /* what a leading run inherits */
    for (size_t i = a; i < b;) {
        size_t j = run_end(f, i, b);
        uint8_t v = f[i]; /* the run's own label: neighbours of a NONZERO run are never rewritten */
        if (v == NONZERO && j - i <= p->spike_tolerance && j < b && f[j] == ZERO)
            memset(f + i, prev, j - i);
        prev = v;
        i = j;
    }
    keep_long_zero_runs(f, a, b, p->min_period_len);
}

/* Troiano, endat_nnz_seq = FALSE (reference §3.1, actigraph.sleepr wle.cpp). The candidate at
 * a zero epoch i is the longest period from i holding at most spike_tolerance nonzero epochs,
 * none above the stoplevel, and ending on a zero epoch. Candidates of at least min_period_len
 * are kept in time order unless they start at or before the (exclusive) end of the last kept
 * one. Every zero epoch of one zero run has the same candidate end, so only the first zero
 * epoch of a run needs trying: O(n * spike_tolerance). */
static void troiano_nonseq(const struct nonwear_params *p, const double *x, uint8_t *f,
                           size_t a, size_t b)
{
    memset(f + a, NONWEAR_WORN, b - a);
    for (size_t i = a; i < b;) {
        if (troiano_label(p, x[i]) != ZERO) {
            i++;
            continue;
        }
        size_t end = i + 1, nonzero = 0;
        for (size_t t = i; t < b; t++) {
            uint8_t l = troiano_label(p, x[t]);
            if (l == STOP || (l == NONZERO && ++nonzero > p->spike_tolerance))
                break;
            if (l == ZERO)
                end = t + 1;
        }
        if (end - i >= p->min_period_len) {
            memset(f + i, NONWEAR_NOT_WORN, end - i);
            i = end + 1; /* `end` holds a nonzero epoch (or is b), never a candidate */
        } else {
            while (i < b && troiano_label(p, x[i]) == ZERO)
                i++;
        }
    }
}

/* pyActigraphy _create_inactivity_mask: runs of >= duration epochs with count < 1. */
static void pyact(const struct nonwear_params *p, uint8_t *f, size_t a, size_t b)
{
    keep_long_zero_runs(f, a, b, p->min_period_len);
}

int nonwear_defaults(enum nonwear_algo algo, struct nonwear_params *ret)
{
    if (!ret)
        return -EINVAL;
    struct nonwear_params p = {.algo = algo, .max_nonzero_count = INFINITY};
    switch (algo) {
    case NONWEAR_CHOI:
        p.min_period_len = 90;
        p.min_window_len = 30;
        p.spike_tolerance = 2;
        break;
    case NONWEAR_TROIANO:
        p.min_period_len = 60;
        p.spike_tolerance = 2;
        p.spike_stoplevel = 100;
        p.endat_nnz_seq = true;
        break;
    case NONWEAR_PYACT:
        p.min_period_len = 120;
        break;
    default:
        return -EINVAL;
    }
    *ret = p;
    return 0;
}

static bool params_ok(const struct nonwear_params *p)
{
    if (!p || p->min_period_len < 1 || p->min_period_len > NONWEAR_MAX_LEN)
        return false;
    switch (p->algo) {
    case NONWEAR_CHOI:
        /* as actigraph.sleepr: the window must be at least the artefact length */
        return p->min_window_len <= NONWEAR_MAX_LEN && p->spike_tolerance <= p->min_window_len;
    case NONWEAR_TROIANO:
        return p->spike_tolerance <= NONWEAR_MAX_LEN && !isnan(p->activity_threshold) &&
               !isnan(p->max_nonzero_count) && !isnan(p->spike_stoplevel);
    case NONWEAR_PYACT:
        return true;
    }
    return false;
}

int nonwear_detect(const struct nonwear_params *p, const double *x, const uint8_t *valid,
                   size_t n, unsigned epoch_s, uint8_t *ret_flags)
{
    if (!params_ok(p) || epoch_s != 60 || (n && (!x || !ret_flags)))
        return -EINVAL;
    if (n > NONWEAR_MAX_EPOCHS)
        return -E2BIG;
    if (!label_all(p, x, valid, n, ret_flags))
        return -EDOM;
    for (size_t a = 0; a < n;) {
        if (ret_flags[a] == MISSING) {
            a++;
            continue;
        }
        const uint8_t *gap = memchr(ret_flags + a, MISSING, n - a);
        size_t b = gap ? (size_t)(gap - ret_flags) : n;
        switch (p->algo) {
        case NONWEAR_CHOI:
            choi(p, ret_flags, a, b);
            break;
        case NONWEAR_TROIANO:
            if (p->endat_nnz_seq)
                troiano_seq(p, ret_flags, a, b);
            else
                troiano_nonseq(p, x, ret_flags, a, b);
            break;
        case NONWEAR_PYACT:
            pyact(p, ret_flags, a, b);
            break;
        }
        a = b;
    }
    return 0;
}

int nonwear_context(const struct nonwear_params *p, size_t *ret_before, size_t *ret_after)
{
    if (!params_ok(p) || !ret_before || !ret_after)
        return -EINVAL;
    size_t c = p->min_period_len;
    switch (p->algo) {
    case NONWEAR_CHOI:
        /* an edge can change labels up to window + spike epochs in (a truncated zero run
         * stops an artefact from being absorbed); beyond that, a zero run still needs
         * min_period_len epochs to be judged */
        c += p->min_window_len + p->spike_tolerance;
        break;
    case NONWEAR_TROIANO:
        c += p->spike_tolerance; /* a truncated leading/trailing spike run */
        break;
    case NONWEAR_PYACT:
        break;
    }
    *ret_before = p->algo == NONWEAR_TROIANO && !p->endat_nnz_seq ? NONWEAR_CONTEXT_SYNC : c;
    *ret_after = c;
    return 0;
}

size_t nonwear_sync(const struct nonwear_params *p, const double *x, const uint8_t *valid,
                    size_t n)
{
    size_t before, after;
    if (nonwear_context(p, &before, &after) < 0 || !x)
        return n;
    bool greedy = before == NONWEAR_CONTEXT_SYNC;
    size_t limit = greedy || before > n ? n : before, run = 0;
    for (size_t t = 0; t < limit; t++) {
        if (missing(x, valid, t))
            return t + 1;
        if (!greedy)
            continue;
        uint8_t l = troiano_label(p, x[t]);
        run = l == ZERO ? 0 : run + 1;
        if (l == STOP || run > p->spike_tolerance)
            return t + 1;
    }
    return limit;
}

size_t nonwear_periods(const uint8_t *flags, size_t n, struct nonwear_period *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; flags && i < n; k++) {
        size_t j = run_end(flags, i, n);
        if (out && k < cap)
            out[k] = (struct nonwear_period){.start = i, .len = j - i, .flag = flags[i]};
        i = j;
    }
    return k;
}
