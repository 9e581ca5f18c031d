/* Sleep/wake scoring, Webster rescoring and Tudor-Locke sleep periods (sleepscore.h).
 *
 * The scorers recompute every epoch's window from scratch (the window's values, summed in a
 * fixed order) instead of keeping running sums: a running sum over non-integer counts would
 * depend on where the array starts, and the same epoch must score the same whether it
 * arrives in a replayed file or a live window (reference §10).
 *
 * Tudor-Locke follows actigraph.sleepr's description of ActiLife (reference §8.3): runs of
 * sleep shorter than bedtime_start and runs of wake shorter than wake_time_end take the state
 * of the last run that was long enough (wake before the first one); the merged sleep runs
 * are the periods, kept when min_sleep_period <= duration <= max_sleep_period and they hold
 * at least min_nonzero_epochs epochs with counts > 0. The walk below is that definition run
 * left to right, one raw run at a time, so it can start at any synchronisation point. */
#include "pipeline/sleepscore.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define WAKE SLEEPSCORE_WAKE
#define SLEEP SLEEPSCORE_SLEEP
#define UNDEF SLEEPSCORE_UNDEF

/* The value the scorers see at index i: NaN when missing, pad outside the array, and counts
 * capped at cap (comparisons keep NaN as NaN). */
static double fetch(const double *x, const uint8_t *valid, size_t n, size_t i, double cap)
{
    if (i >= n) /* also "negative" indexes, which wrapped around */
        return 0;
    if (valid && !valid[i])
        return NAN;
    return x[i] > cap ? cap : x[i];
}

/* Cole–Kripke, 1-min "mean" weights. D = P * sum(W * A) < 1 is evaluated on the counts
 * directly so that integer counts give an exact decision: ActiLife A = min(c, 30000) / 100,
 * P = 0.001, so sleep iff sum(W * min(c, 30000)) < 100000; pyActigraphy A = c / 30, so
 * sleep iff sum(W * c) < 30000. a0..a8 hold x[t-4 .. t+4], rotated through scalars (a
 * memmove'd array costs a store-forwarding stall per epoch). */
static bool cole_kripke(bool actilife, const double *x, const uint8_t *valid, size_t n,
                        uint8_t *out)
{
    bool bad = false;
    double cap = actilife ? 30000 : INFINITY, threshold = actilife ? 100000 : 30000;
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = fetch(x, valid, n, 0, cap);
    double a5 = fetch(x, valid, n, 1, cap), a6 = fetch(x, valid, n, 2, cap);
    double a7 = fetch(x, valid, n, 3, cap), a8 = fetch(x, valid, n, 4, cap);
    for (size_t t = 0; t < n; t++) {
        /* summed as a tree, in a fixed order: a short dependency chain, and exact for integer
         * counts in any order (every partial sum is an integer far below 2^53) */
        double s =
            ((106 * a0 + 54 * a1) + (58 * a2 + 76 * a3)) + ((230 * a4 + 74 * a5) + 67 * a6);
        if (!actilife) /* pyActigraphy's centred window is 9 wide: its last two weights are 0 */
            s += 0 * (a7 + a8);
        /* sleep 1 when below the threshold, undefined 2 when NaN (NaN < threshold is false) */
        uint8_t v = (uint8_t)((s < threshold) | (isnan(s) << 1));
        if (!actilife && (t < 4 || t + 4 >= n))
            v = WAKE; /* the rolling window is NaN there, and NaN < 1 is false */
        out[t] = v;
        a0 = a1, a1 = a2, a2 = a3, a3 = a4, a4 = a5, a5 = a6, a6 = a7, a7 = a8;
        if (t + 5 < n) { /* the next value in; zero padding past the end */
            double c = x[t + 5];
            c = valid && !valid[t + 5] ? NAN : c;
            a8 = c > cap ? cap : c;
        } else {
            a8 = 0;
        }
        bad |= (x[t] < 0) | (x[t] == INFINITY);
    }
    return !bad;
}

/* Sadeh 1994. r is a ring of x[t-5 .. t+5] (oldest at head), summed in window order. */
static bool sadeh(bool actilife, const double *x, const uint8_t *valid, size_t n, uint8_t *out)
{
    bool bad = false;
    double r[11];
    double cap = actilife ? 300 : INFINITY;
    for (size_t k = 0; k < 11; k++)
        r[k] = fetch(x, valid, n, k - 5, cap);
    for (size_t t = 0, head = 0; t < n; t++) {
        double w[11], sum = 0, sum6 = 0, ss = 0;
        unsigned nat = 0;
        for (size_t k = 0; k < 11; k++) {
            w[k] = r[(head + k) % 11];
            sum += w[k];
            /* ActiLife counts 50 itself (the paper's "equal to or higher than 50") */
            nat += (actilife ? w[k] >= 50 : w[k] > 50) && w[k] < 100;
        }
        for (size_t k = 0; k < 6; k++)
            sum6 += w[k];
        for (size_t k = 0; k < 6; k++) /* sample SD (ddof 1) of x[t-5 .. t], two passes */
            ss += (w[k] - sum6 / 6) * (w[k] - sum6 / 6);
        double act = actilife ? w[5] : w[6]; /* pyActigraphy uses the next epoch */
        double dot = sum / 11 * -0.065 + nat * -1.08 + sqrt(ss / 5) * -0.056 +
                     log(1 + act) * -0.703;
        double ps = dot + 7.601;
        if (!actilife && (t < 5 || t + 5 >= n))
            out[t] = WAKE;
        else if (isnan(sum))
            out[t] = UNDEF;
        else
            out[t] = ps > (actilife ? -4 : 0) ? SLEEP : WAKE;
        r[head] = fetch(x, valid, n, t + 6, cap);
        head = (head + 1) % 11;
        bad |= (x[t] < 0) | (x[t] == INFINITY);
    }
    return !bad;
}

int sleepscore_score(const struct sleepscore_params *p, const double *x, const uint8_t *valid,
                     size_t n, unsigned epoch_s, uint8_t *ret_sw)
{
    if (!p || epoch_s != 60 || (n && (!x || !ret_sw)))
        return -EINVAL;
    if ((p->algo != SLEEPSCORE_COLE_KRIPKE && p->algo != SLEEPSCORE_SADEH) ||
        (p->mode != SLEEPSCORE_ACTILIFE && p->mode != SLEEPSCORE_PYACTIGRAPHY))
        return -EINVAL;
    if (n > SLEEPSCORE_MAX_EPOCHS)
        return -E2BIG;
    /* the counts are checked while they are scored (-INFINITY is < 0) */
    bool actilife = p->mode == SLEEPSCORE_ACTILIFE;
    bool ok = p->algo == SLEEPSCORE_COLE_KRIPKE ? cole_kripke(actilife, x, valid, n, ret_sw)
                                                : sadeh(actilife, x, valid, n, ret_sw);
    if (!ok)
        return -EDOM;
    return p->webster ? sleepscore_webster(ret_sw, n) : 0;
}

/* Webster's rules (reference §4.3): `preceded`: after >= q wake epochs, the first p epochs
 * of a sleep run of >= p epochs; `surrounded`: a gap of <= p epochs between two wake runs of
 * >= q epochs each (the gap may hold short wake runs). */
static const struct {
    bool surrounded;
    unsigned p, q;
} webster_rules[] = {{false, 1, 4}, {false, 3, 10}, {false, 4, 15}, {true, 6, 10}, {true, 10, 20}};

#define WEBSTER_REACH 29 /* max over the rules of p + q - 1: how far a rule looks */
#define MARK 0x80        /* "rescore to wake", set on sleep epochs while the rules run */

/* End of the run of equal sleep/wake state from i (the mark bit is ignored). */
static size_t state_run_end(const uint8_t *s, size_t i, size_t b)
{
    uint8_t v = s[i] & 1;
    while (++i < b && (s[i] & 1) == v)
        ;
    return i;
}

static void mark(uint8_t *s, size_t a, size_t b)
{
    for (size_t t = a; t < b; t++)
        s[t] |= MARK;
}

/* One run of defined scores: every rule reads the original states (bit 0), marks go to bit 7,
 * so no rule sees another's output. */
static void webster_segment(uint8_t *s, size_t a, size_t b)
{
    for (size_t r = 0; r < sizeof webster_rules / sizeof *webster_rules; r++) {
        size_t p = webster_rules[r].p, q = webster_rules[r].q;
        size_t prev_wake = 0, last_end = 0;
        bool have_long = false;
        for (size_t i = a; i < b;) {
            size_t j = state_run_end(s, i, b);
            bool wake = (s[i] & 1) == WAKE;
            if (!webster_rules[r].surrounded) {
                if (!wake && j - i >= p && prev_wake >= q)
                    mark(s, i, i + p);
                prev_wake = wake ? j - i : 0;
            } else if (wake && j - i >= q) {
                if (have_long && i - last_end <= p)
                    mark(s, last_end, i);
                have_long = true;
                last_end = j;
            }
            i = j;
        }
    }
    for (size_t t = a; t < b; t++)
        if (s[t] & MARK)
            s[t] = WAKE;
}

int sleepscore_webster(uint8_t *sw, size_t n)
{
    if (n && !sw)
        return -EINVAL;
    if (n > SLEEPSCORE_MAX_EPOCHS)
        return -E2BIG;
    for (size_t t = 0; t < n; t++)
        if (sw[t] > UNDEF)
            return -EINVAL;
    for (size_t a = 0; a < n;) {
        if (sw[a] == UNDEF) {
            a++;
            continue;
        }
        size_t b = a + 1;
        while (b < n && sw[b] != UNDEF)
            b++;
        webster_segment(sw, a, b);
        a = b;
    }
    return 0;
}

int sleepscore_context(const struct sleepscore_params *p, size_t *ret_before, size_t *ret_after)
{
    if (!p || !ret_before || !ret_after)
        return -EINVAL;
    size_t before, after;
    if (p->algo == SLEEPSCORE_COLE_KRIPKE && p->mode == SLEEPSCORE_ACTILIFE)
        before = 4, after = 2;
    else if (p->algo == SLEEPSCORE_COLE_KRIPKE && p->mode == SLEEPSCORE_PYACTIGRAPHY)
        before = 4, after = 4;
    else if (p->algo == SLEEPSCORE_SADEH &&
             (p->mode == SLEEPSCORE_ACTILIFE || p->mode == SLEEPSCORE_PYACTIGRAPHY))
        before = 5, after = 5;
    else
        return -EINVAL;
    if (p->webster)
        before += WEBSTER_REACH, after += WEBSTER_REACH;
    *ret_before = before;
    *ret_after = after;
    return 0;
}

/* ---- Tudor-Locke ---- */

/* End (exclusive) of the run of equal scores from i, not beyond b; eight at a time, as in
 * nonwear.c. */
static size_t run_end(const uint8_t *s, size_t i, size_t b)
{
    uint8_t v = s[i++];
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t pattern = UINT64_C(0x0101010101010101) * v;
    for (; i + 8 <= b; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w != pattern)
            return i + (size_t)(__builtin_ctzll(w ^ pattern) >> 3);
    }
#endif
    while (i < b && s[i] == v)
        i++;
    return i;
}

struct tl_walk {
    const struct sleepscore_tl *tl;
    const uint8_t *sw;
    const double *x;
    size_t n;
    size_t pos;       /* start of the next raw run */
    size_t seg_start; /* first epoch after the last undefined one (or where the walk began) */
    int state;        /* merged state: SLEEP while a period is open */
    bool bad;         /* a score other than 0/1/2 */
    bool provisional; /* the last raw run reached the array's end and could still change state */
    bool final;       /* the walk stopped at stop_at with nothing open */
    bool ended;       /* the array ended inside a period: nothing more to walk */
    struct sleepscore_period cur;
};

static bool tl_ok(const struct sleepscore_tl *tl)
{
    return tl && tl->bedtime_start >= 1 && tl->bedtime_start <= SLEEPSCORE_MAX_LEN &&
           tl->wake_time_end >= 1 && tl->wake_time_end <= SLEEPSCORE_MAX_LEN &&
           tl->min_sleep_period <= tl->max_sleep_period &&
           tl->max_sleep_period <= SLEEPSCORE_MAX_LEN &&
           tl->min_nonzero_epochs <= SLEEPSCORE_MAX_LEN;
}

static void tl_open(struct tl_walk *w, size_t a)
{
    memset(&w->cur, 0, sizeof w->cur);
    w->cur.in_bed = a;
    if (a == w->seg_start)
        w->cur.flags |= SLEEPSCORE_LEFT_CENSORED;
}

static void tl_add(struct tl_walk *w, size_t a, size_t b, bool sleep)
{
    struct sleepscore_period *c = &w->cur;
    if (sleep) {
        c->tst += (unsigned)(b - a);
        c->sleep_bouts++;
        c->sleep_bouts_1 += b - a == 1;
    } else {
        c->awakenings++;
    }
    for (size_t t = a; w->x && t < b; t++) {
        double v = w->x[t];
        if (!isnan(v)) {
            c->total_counts += v;
            c->nonzero += v > 0;
        }
    }
}

/* Closes the open period at `end`; true when it passes the filters. */
static bool tl_close(struct tl_walk *w, size_t end, unsigned flags)
{
    struct sleepscore_period *c = &w->cur;
    const struct sleepscore_tl *tl = w->tl;
    w->state = WAKE;
    c->out_bed = end;
    c->duration = (unsigned)(end - c->in_bed);
    c->flags |= flags;
    if (c->duration < tl->min_sleep_period || c->duration > tl->max_sleep_period ||
        c->nonzero < tl->min_nonzero_epochs)
        return false;
    c->waso = c->duration - c->tst;
    c->efficiency = 100.0 * c->tst / c->duration;
    c->ave_awakening = c->awakenings ? (double)c->waso / c->awakenings : 0;
    c->movement_index = 100.0 * c->nonzero / c->duration;
    c->fragmentation_index = c->sleep_bouts ? 100.0 * c->sleep_bouts_1 / c->sleep_bouts : 0;
    c->sleep_fragmentation_index = c->movement_index + c->fragmentation_index;
    c->midpoint = (double)c->in_bed + c->duration / 2.0;
    return true;
}

/* Walks raw runs until a period closes and passes the filters (1, in *ret), or until the
 * walk reaches stop_at with no period open or the array's end (0). */
static int tl_next(struct tl_walk *w, size_t stop_at, struct sleepscore_period *ret)
{
    const struct sleepscore_tl *tl = w->tl;
    for (;;) {
        if (w->ended)
            return 0;
        if (w->pos >= stop_at && w->state == WAKE) {
            w->final = !w->provisional;
            return 0;
        }
        if (w->pos >= w->n) {
            if (w->state != SLEEP)
                return 0;
            /* open at the end: more data may extend it, unless it is already too long */
            w->final = w->n >= stop_at && w->n - w->cur.in_bed > tl->max_sleep_period;
            w->ended = true;
            if (!tl_close(w, w->n, SLEEPSCORE_RIGHT_CENSORED))
                return 0;
            *ret = w->cur;
            return 1;
        }
        size_t a = w->pos, b = run_end(w->sw, a, w->n);
        uint8_t v = w->sw[a];
        if (v > UNDEF) {
            w->bad = true;
            return 0;
        }
        w->pos = b;
        if (v == UNDEF) { /* like the end of one recording and the start of another */
            w->seg_start = b;
            w->provisional = false;
            if (w->state == SLEEP && tl_close(w, a, SLEEPSCORE_RIGHT_CENSORED)) {
                *ret = w->cur;
                return 1;
            }
            w->state = WAKE;
            continue;
        }
        bool long_run = b - a >= (v == SLEEP ? tl->bedtime_start : tl->wake_time_end);
        int next = long_run ? v : w->state;
        w->provisional = b == w->n && !long_run && v != w->state;
        if (next == WAKE && w->state == SLEEP) {
            if (tl_close(w, a, 0)) {
                *ret = w->cur;
                return 1;
            }
            continue;
        }
        if (next == SLEEP && w->state == WAKE)
            tl_open(w, a);
        w->state = next;
        if (next == SLEEP)
            tl_add(w, a, b, v == SLEEP);
    }
}

static void tl_begin(struct tl_walk *w, const struct sleepscore_tl *tl, const uint8_t *sw,
                     const double *x, size_t n, size_t start)
{
    memset(w, 0, sizeof *w);
    w->tl = tl;
    w->sw = sw;
    w->x = x;
    w->n = n;
    w->pos = w->seg_start = start;
    w->state = WAKE; /* actigraph.sleepr: leading short runs are wake */
}

int sleepscore_periods(const struct sleepscore_tl *tl, const uint8_t *sw, const double *x,
                       size_t n, struct sleepscore_period *out, size_t cap)
{
    if (!tl_ok(tl) || (n && !sw))
        return -EINVAL;
    if (n > SLEEPSCORE_MAX_EPOCHS)
        return -E2BIG;
    struct tl_walk w;
    struct sleepscore_period p;
    int k = 0;
    tl_begin(&w, tl, sw, x, n, 0);
    while (tl_next(&w, SIZE_MAX, &p) == 1) {
        if (out && (size_t)k < cap)
            out[k] = p;
        k++;
    }
    return w.bad ? -EINVAL : k;
}

/* Where a walk that must be exact from win_start may begin: at wake_time_end wake epochs in
 * a row (a long wake run fixes the merged state whatever came before), or at undefined
 * epochs (a segment edge), found scanning back from win_start. */
static size_t sync_before(const struct sleepscore_tl *tl, const uint8_t *sw, size_t from,
                          bool *ret_found, bool *ret_bad)
{
    size_t wake = 0;
    for (size_t i = from; i-- > 0;) {
        if (sw[i] > UNDEF) {
            *ret_bad = true;
            break;
        }
        if (sw[i] == UNDEF || (sw[i] == WAKE && ++wake >= tl->wake_time_end)) {
            *ret_found = true;
            return i;
        }
        if (sw[i] != WAKE)
            wake = 0;
    }
    *ret_found = false;
    return 0;
}

int sleepscore_night(const struct sleepscore_tl *tl, const uint8_t *sw, const double *x, size_t n,
                     size_t win_start, size_t win_end, struct sleepscore_night *ret)
{
    if (!tl_ok(tl) || !ret || (n && !sw) || win_start >= win_end)
        return -EINVAL;
    if (n > SLEEPSCORE_MAX_EPOCHS)
        return -E2BIG;
    struct sleepscore_night night = {0};
    size_t from = win_start < n ? win_start : n, to = win_end < n ? win_end : n;
    for (size_t t = from; t < to; t++) {
        if (sw[t] > UNDEF)
            return -EINVAL;
        night.n_undef += sw[t] == UNDEF;
    }
    night.n_scored = to - from - night.n_undef;

    struct tl_walk w;
    struct sleepscore_period p;
    bool bad = false;
    size_t start = sync_before(tl, sw, from, &night.lead_exact, &bad);
    if (bad)
        return -EINVAL;
    tl_begin(&w, tl, sw, x, n, start);
    while (tl_next(&w, win_end, &p) == 1) {
        if (p.in_bed < win_start || p.in_bed >= win_end)
            continue;
        night.n_periods++;
        if (p.flags) {
            night.n_censored++;
        } else if (!night.found || p.duration > night.main.duration) {
            night.found = true;
            night.main = p;
        }
    }
    if (w.bad)
        return -EINVAL;
    night.final = w.final;
    *ret = night;
    return 0;
}
