/* The actigraphy features of a closed day, the epoch records and the recording summary, computed
 * over the participant's epoch ring (or, for --summary, every epoch kept): non-wear
 * (nonwear.h), sleep/wake and the night's main sleep period (sleepscore.h), and the rhythm
 * metrics of the last 7 local days on the local wall clock (rhythm.h). docs/actigraphy.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/act.h"
#include "pipeline/nonwear.h"
#include "pipeline/rhythm.h"
#include "pipeline/sleepscore.h"

#define DAY_MS 86400000LL
#define NOON_MS (12 * 3600000LL)
#define CONTEXT_CELLS 240 /* look-behind for non-wear (Choi 122) and scoring (34) */

/* Where the analysis reads its cells from. */
struct cells {
    const struct act_cell *v; /* NULL: the ring */
    int64_t k0;
    size_t n;
};

static const struct act_cell *get_cell(const struct act *a, const struct cells *src, int64_t k)
{
    if (src->v)
        return k >= src->k0 && k < src->k0 + (int64_t)src->n ? &src->v[k - src->k0] : NULL;
    if (a->k_hi == INT64_MIN || k > a->k_hi || k <= a->k_hi - (int64_t)a->ncells)
        return NULL;
    return &a->ring[floor_mod(k, (int64_t)a->ncells)];
}

static double cell_value(const struct act_cell *c, int vm)
{
    if (vm && (c->flags & ACT_CELL_TRIAX))
        return sqrt((double)c->ax[0] * c->ax[0] + (double)c->ax[1] * c->ax[1] +
                    (double)c->ax[2] * c->ax[2]);
    return c->c;
}

static int grow(struct act *a, size_t n, size_t n_local)
{
    size_t need = n > 2 * n_local ? n : 2 * n_local;
    if (need <= a->scap)
        return 0;
    double *x = realloc(a->x, need * sizeof *x), *xs = x ? realloc(a->xs, need * sizeof *xs) : NULL;
    if (x)
        a->x = x;
    if (xs)
        a->xs = xs;
    uint8_t *p[4] = {NULL, NULL, NULL, NULL};
    uint8_t **slot[4] = {&a->valid, &a->wear, &a->sw, &a->smask};
    for (int i = 0; i < 4; i++) {
        p[i] = realloc(*slot[i], need);
        if (p[i])
            *slot[i] = p[i];
    }
    if (!x || !xs || !p[0] || !p[1] || !p[2] || !p[3])
        return -1;
    a->scap = need;
    return 0;
}

static struct sleepscore_params sleep_params(const struct pipeline_act_conf *c)
{
    struct sleepscore_params p = {
        .algo = c->sleep_sadeh ? SLEEPSCORE_SADEH : SLEEPSCORE_COLE_KRIPKE,
        .mode = c->sleep_pyactigraphy ? SLEEPSCORE_PYACTIGRAPHY : SLEEPSCORE_ACTILIFE,
        .webster = c->rescore == ACT_RESCORE_WEBSTER ||
                   (c->rescore == ACT_RESCORE_AUTO && c->sleep_pyactigraphy),
    };
    return p;
}

/* x, wear and sleep/wake of cells [k0, k0 + n): a missing or partly covered epoch is NaN and
 * scored neither; the device's own off-wrist report overrides the algorithm. Wear and sleep
 * need the 60-s grid; on a longer grid every present epoch counts as worn and none is scored. */
static int analyse(struct act *a, const struct pipeline_act_conf *c, const struct cells *src,
                   int64_t k0, size_t n, size_t n_local)
{
    if (grow(a, n, n_local) < 0)
        return -1;
    int g = a->grid_s;
    for (size_t i = 0; i < n; i++) {
        const struct act_cell *cell = get_cell(a, src, k0 + (int64_t)i);
        a->x[i] = cell && cell->fill_s >= g ? cell_value(cell, c->count_vm) : NAN;
        a->wear[i] = isnan(a->x[i]) ? NONWEAR_MISSING : NONWEAR_WORN;
        a->sw[i] = SLEEPSCORE_UNDEF;
    }
    a->an_k0 = k0;
    a->an_n = n;
    if (g != 60)
        return 0;
    if (c->nonwear != ACT_NONWEAR_NONE) {
        struct nonwear_params np;
        nonwear_defaults(c->nonwear == ACT_NONWEAR_TROIANO ? NONWEAR_TROIANO : NONWEAR_CHOI, &np);
        if (nonwear_detect(&np, a->x, NULL, n, 60, a->wear) < 0)
            return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct act_cell *cell = get_cell(a, src, k0 + (int64_t)i);
        if (cell && (cell->flags & ACT_CELL_DEVICE_OFF) && a->wear[i] == NONWEAR_WORN)
            a->wear[i] = NONWEAR_NOT_WORN;
        a->valid[i] = a->wear[i] == NONWEAR_WORN;
    }
    struct sleepscore_params sp = sleep_params(c);
    return sleepscore_score(&sp, a->x, a->valid, n, 60, a->sw) < 0 ? -1 : 0; /* Webster too */
}

static int64_t ceil_div(int64_t x, int64_t d) { return -floor_div(-x, d); }

static void add(struct act_day *d, const char *feature, enum window_kind kind, int64_t start,
                int64_t end, int has, double v, const char *unit, double cov)
{
    if (d->n == ACT_NREC)
        return;
    d->rec[d->n++] = (struct act_rec){feature, unit, kind, start, end, has && isfinite(v), v, cov};
}

/* Wear, counts and validity of the day's cells, and adherence.wear_7d. */
static void day_totals(struct act *a, struct pstate *ps, const struct cells *src,
                       const struct day_window *w, const int prev[6], struct act_day *d)
{
    const struct pipeline_conf *c = pstate_conf(ps);
    int64_t gms = (int64_t)a->grid_s * 1000;
    int64_t kd0 = ceil_div(w->start, gms), kd1 = ceil_div(w->end, gms);
    double covered = 0, total = 0;
    size_t worn = 0, off = 0;
    for (int64_t k = kd0; k < kd1; k++) {
        const struct act_cell *cell = get_cell(a, src, k);
        if (!cell || !cell->fill_s)
            continue;
        covered += cell->fill_s;
        total += cell_value(cell, c->act.count_vm);
        int64_t i = k - a->an_k0;
        if (i >= 0 && i < (int64_t)a->an_n) {
            worn += a->wear[i] == NONWEAR_WORN;
            off += a->wear[i] == NONWEAR_NOT_WORN;
        }
    }
    double cov = covered * 1000.0 / (double)(w->end - w->start);
    int has = covered > 0, known = has && a->grid_s == 60;
    double gmin = a->grid_s / 60.0;
    add(d, "act.total_counts", WIN_DAY, w->start, w->end, has, total, "count", cov);
    add(d, "act.wear_minutes", WIN_DAY, w->start, w->end, known, (double)worn * gmin, "min", cov);
    add(d, "act.nonwear_minutes", WIN_DAY, w->start, w->end, known, (double)off * gmin, "min", cov);
    /* a day without data is not a valid day; on a grid without wear detection it is unknown */
    d->valid = !has ? -1 : (double)worn * gmin * 60000.0 >= (double)c->act.valid_day_wear_ms;
    add(d, "act.valid_day", WIN_DAY, w->start, w->end, !has || known, d->valid > 0, "bool", cov);
    int valid = d->valid > 0, seen = has;
    for (int i = 0; i < 6; i++) {
        valid += prev[i] > 0;
        seen += prev[i] >= 0;
    }
    int64_t s7, e7;
    cal_7d(pstate_tzline(ps), w, &s7, &e7);
    add(d, "adherence.wear_7d", WIN_7D, s7, e7, !has || known, valid / 7.0, "ratio", seen / 7.0);
}

static double tod_min(const struct tz_zone *z, int64_t t) { return cal_minutes_of_day(z, t); }

/* The main sleep period of the night before w: Tudor-Locke periods starting between noon of
 * the previous local day and noon of this one (sleepscore_night). */
static void day_sleep(struct act *a, const struct day_window *w, struct act_day *d)
{
    int64_t gms = (int64_t)a->grid_s * 1000;
    int64_t ws = tz_local_to_utc(w->zone, (w->day - 1) * DAY_MS + NOON_MS);
    int64_t we = tz_local_to_utc(w->zone, w->day * DAY_MS + NOON_MS);
    int64_t i0 = ceil_div(ws, gms) - a->an_k0, i1 = ceil_div(we, gms) - a->an_k0;
    struct sleepscore_night night;
    memset(&night, 0, sizeof night);
    struct sleepscore_tl tl = SLEEPSCORE_TL_DEFAULT;
    int ok = a->grid_s == 60 && i0 >= 0 && i0 < (int64_t)a->an_n && i1 > i0 &&
             sleepscore_night(&tl, a->sw, a->x, a->an_n, (size_t)i0, (size_t)i1, &night) == 0 &&
             night.found;
    double cov = i1 > i0 ? (double)night.n_scored / (double)(i1 - i0) : 0;
    const struct sleepscore_period *p = &night.main;
    int64_t on = (a->an_k0 + (int64_t)p->in_bed) * gms, offt = (a->an_k0 + (int64_t)p->out_bed) * gms;
    int64_t mid = (int64_t)llround(((double)a->an_k0 + p->midpoint) * (double)gms);
    add(d, "act.sleep_onset", WIN_DAY, w->start, w->end, ok, ok ? tod_min(w->zone, on) : 0,
        "min_after_midnight", cov);
    add(d, "act.sleep_offset", WIN_DAY, w->start, w->end, ok, ok ? tod_min(w->zone, offt) : 0,
        "min_after_midnight", cov);
    add(d, "act.tst_minutes", WIN_DAY, w->start, w->end, ok, p->tst * (a->grid_s / 60.0), "min", cov);
    add(d, "act.waso_minutes", WIN_DAY, w->start, w->end, ok, p->waso * (a->grid_s / 60.0), "min",
        cov);
    add(d, "act.sleep_efficiency", WIN_DAY, w->start, w->end, ok, p->efficiency, "percent", cov);
    add(d, "act.sleep_midpoint", WIN_DAY, w->start, w->end, ok, ok ? tod_min(w->zone, mid) : 0,
        "min_after_midnight", cov);
}

static struct rhy_opts rhythm_opts(const struct pipeline_act_conf *c, enum rhy_origin origin)
{
    struct rhy_opts o;
    rhy_opts_init(&o, c->rhythm_pyactigraphy ? RHY_PYACTIGRAPHY : RHY_CLASSIC);
    o.origin = origin;
    if (c->binarize >= 0)
        o.binarize = c->binarize;
    return o;
}

/* Lays the analysed epochs of local days [day0, day0 + ndays) on the wall clock: slot m of a
 * day is the epoch starting m grid epochs after its local midnight, in the zone in force at
 * its noon. A wall time a clock skipped is missing; a repeated one is its first pass. Fills
 * xs[0..n) with values, xs[n..2n) with sleep states (NaN undefined) and smask with wear. */
static size_t wall_clock(struct act *a, struct pstate *ps, const struct day_window *w,
                         int64_t day0, int ndays)
{
    size_t per = (size_t)(DAY_MS / 1000 / a->grid_s), n = per * (size_t)ndays;
    int64_t gms = (int64_t)a->grid_s * 1000;
    for (int d = 0; d < ndays; d++) {
        int64_t mid_wall = (day0 + d) * DAY_MS;
        const struct tz_zone *z =
            tzline_zone_at(pstate_tzline(ps), tz_local_to_utc(w->zone, mid_wall + NOON_MS));
        /* most days keep one UTC offset: then wall clock to UTC is a subtraction */
        int64_t u0 = tz_local_to_utc(z, mid_wall), u1 = tz_local_to_utc(z, mid_wall + DAY_MS);
        int32_t off = tz_offset(z, u0);
        int steady = off == tz_offset(z, u1) && u0 + (int64_t)off * 1000 == mid_wall &&
                     u1 - u0 == DAY_MS;
        for (size_t m = 0; m < per; m++) {
            size_t j = (size_t)d * per + m;
            int64_t wall = mid_wall + (int64_t)m * gms;
            int64_t utc = steady ? wall - (int64_t)off * 1000 : tz_local_to_utc(z, wall);
            int64_t i = floor_div(utc, gms) - a->an_k0;
            int real = steady || utc + (int64_t)tz_offset(z, utc) * 1000 == wall;
            if (!real || i < 0 || i >= (int64_t)a->an_n) {
                a->xs[j] = a->xs[n + j] = NAN;
                a->smask[j] = 0;
                continue;
            }
            a->xs[j] = a->x[i];
            a->smask[j] = a->wear[i] == NONWEAR_WORN;
            a->xs[n + j] = a->sw[i] == SLEEPSCORE_SLEEP ? 1 : a->sw[i] == SLEEPSCORE_WAKE ? 0 : NAN;
        }
    }
    return n;
}

static void add_rhythm(struct act_day *d, enum window_kind kind, int64_t s, int64_t e,
                       int ok, const struct rhy_result *r, int sri_ok,
                       const struct rhy_sri_result *sr)
{
    double cov = ok && r->n_epochs ? (double)r->n_epochs_valid / (double)r->n_epochs : 0;
    double scov = sri_ok && sr->n_expected ? (double)sr->n_valid / (double)sr->n_expected : 0;
    add(d, "act.is", kind, s, e, ok, r->is, "ratio", cov);
    add(d, "act.iv", kind, s, e, ok, r->iv, "ratio", cov);
    add(d, "act.ra", kind, s, e, ok, r->ra, "ratio", cov);
    add(d, "act.l5", kind, s, e, ok, r->l5, "count", cov);
    add(d, "act.l5_onset", kind, s, e, ok && r->l5_onset_s >= 0, r->l5_onset_s / 60.0,
        "min_after_midnight", cov);
    add(d, "act.m10", kind, s, e, ok, r->m10, "count", cov);
    add(d, "act.m10_onset", kind, s, e, ok && r->m10_onset_s >= 0, r->m10_onset_s / 60.0,
        "min_after_midnight", cov);
    add(d, "act.sri", kind, s, e, sri_ok, sr->sri, "index", scov);
}

static int run_rhythm(struct act *a, const struct rhy_series *s, const struct rhy_opts *o,
                      struct rhy_result *r, const struct rhy_series *ss, struct rhy_sri_result *sr,
                      int *sri_ok)
{
    size_t need = rhy_work_size(s->n, s->epoch_s, o->bin_s);
    if (need > a->work_len) {
        void *p = realloc(a->work, need);
        if (!p)
            return -1;
        a->work = p;
        a->work_len = need;
    }
    *sri_ok = a->grid_s == 60 &&
              rhy_sri(ss, o, a->work, a->work_len, sr, NULL, NULL, 0) == 0;
    return rhy_compute(s, o, a->work, a->work_len, r);
}

/* IS, IV, RA, L5, M10 and SRI of the 7 local days ending with w, bins from local midnight. */
static void week_rhythm(struct act *a, struct pstate *ps, const struct day_window *w,
                        struct act_day *d)
{
    const struct pipeline_conf *c = pstate_conf(ps);
    int64_t s7, e7;
    cal_7d(pstate_tzline(ps), w, &s7, &e7);
    size_t n = wall_clock(a, ps, w, w->day - 6, 7);
    struct rhy_opts o = rhythm_opts(&c->act, RHY_ORIGIN_LOCAL_DAY);
    struct rhy_series s = {a->xs, a->smask, n, a->grid_s, 0};
    struct rhy_series ss = {a->xs + n, NULL, n, a->grid_s, 0};
    struct rhy_result r;
    struct rhy_sri_result sr;
    memset(&sr, 0, sizeof sr);
    int sri_ok = 0;
    int ok = run_rhythm(a, &s, &o, &r, &ss, &sr, &sri_ok) == 0;
    add_rhythm(d, WIN_7D, s7, e7, ok, &r, sri_ok, &sr);
}

void act_compute_day(struct act *a, struct pstate *ps, const struct day_window *w,
                     const int prev_valid[6], struct act_day *d)
{
    const struct pipeline_conf *c = pstate_conf(ps);
    int64_t gms = (int64_t)a->grid_s * 1000;
    int64_t s7, e7;
    cal_7d(pstate_tzline(ps), w, &s7, &e7);
    int64_t from = s7 - NOON_MS - 2 * 3600000LL; /* the 7 days, last night's noon, slack */
    int64_t k0 = floor_div(from, gms) - CONTEXT_CELLS;
    int64_t k1 = ceil_div(w->end + ACT_LOOKAHEAD_MS, gms);
    if (k1 > a->k_hi + 1)
        k1 = a->k_hi + 1;
    if (k0 < a->k_hi - (int64_t)a->ncells + 1)
        k0 = a->k_hi - (int64_t)a->ncells + 1;
    if (k0 < a->k_first) /* the recording's start is an edge, not missing data */
        k0 = a->k_first;
    /* a partly covered first or last epoch of the data is not scored; the edge is before it */
    struct cells ring0 = {NULL, 0, 0};
    const struct act_cell *edge = get_cell(a, &ring0, k0);
    if (k0 == a->k_first && k1 > k0 && edge && edge->fill_s < a->grid_s)
        k0++;
    edge = get_cell(a, &ring0, k1 - 1);
    if (k1 - 1 == a->k_hi && k1 > k0 && edge && edge->fill_s < a->grid_s)
        k1--;
    struct cells ring = {NULL, 0, 0};
    d->start = w->start;
    d->n = 0;
    size_t n_local = (size_t)(7 * DAY_MS / gms);
    if (k1 <= k0 || analyse(a, &c->act, &ring, k0, (size_t)(k1 - k0), n_local) < 0) {
        a->an_n = 0;
        a->an_k0 = k0;
    }
    day_totals(a, ps, &ring, w, prev_valid, d);
    day_sleep(a, w, d);
    if (a->an_n && a->scap >= 2 * n_local)
        week_rhythm(a, ps, w, d);
}

void act_emit_epochs(struct act *a, struct pstate *ps, const struct day_window *w)
{
    const struct pipeline_conf *c = pstate_conf(ps);
    int64_t gms = (int64_t)a->grid_s * 1000;
    struct cells ring = {NULL, 0, 0};
    for (int64_t k = ceil_div(w->start, gms); k < ceil_div(w->end, gms); k++) {
        const struct act_cell *cell = get_cell(a, &ring, k);
        int64_t i = k - a->an_k0;
        if (!cell || !cell->fill_s)
            continue;
        int in = i >= 0 && i < (int64_t)a->an_n; /* a partial edge epoch is outside: unscored */
        uint8_t wf = in ? a->wear[i] : NONWEAR_MISSING, sf = in ? a->sw[i] : SLEEPSCORE_UNDEF;
        struct epoch_extra x = {
            .wear = wf == NONWEAR_WORN ? 1 : wf == NONWEAR_NOT_WORN ? 0 : -1,
            .sleep = sf == SLEEPSCORE_SLEEP ? 1 : sf == SLEEPSCORE_WAKE ? 0 : -1,
            .has_axes = (cell->flags & ACT_CELL_TRIAX) != 0,
            .axes = {cell->ax[0], cell->ax[1], cell->ax[2]},
        };
        pstate_emit_epoch(ps, k * gms, (k + 1) * gms, w, cell_value(cell, c->act.count_vm),
                          (double)cell->fill_s / a->grid_s, &x);
    }
}

/* --summary: the whole input as one series on the recording's clock (bins from its first
 * epoch, as pyActigraphy and GGIR), and the mean of the nights' main sleep periods. */
void act_emit_summary(struct act *a, struct pstate *ps)
{
    const struct pipeline_conf *c = pstate_conf(ps);
    int64_t gms = (int64_t)a->grid_s * 1000;
    struct cells all = {a->all, a->all_k0, a->all_n};
    if (analyse(a, &c->act, &all, a->all_k0, a->all_n, 0) < 0)
        return;
    int64_t t0 = a->all_k0 * gms, t1 = (a->all_k0 + (int64_t)a->all_n) * gms;
    struct day_window first;
    cal_day_at(pstate_tzline(ps), t0, &first);
    struct act_day d;
    memset(&d, 0, sizeof d);
    /* wear and counts over the whole input */
    double covered = 0, total = 0;
    size_t worn = 0, off = 0;
    for (size_t i = 0; i < a->all_n; i++) {
        covered += a->all[i].fill_s;
        total += a->all[i].fill_s ? cell_value(&a->all[i], c->act.count_vm) : 0;
        worn += a->wear[i] == NONWEAR_WORN;
        off += a->wear[i] == NONWEAR_NOT_WORN;
    }
    double cov = covered * 1000.0 / (double)(t1 - t0), gmin = a->grid_s / 60.0;
    int known = a->grid_s == 60;
    add(&d, "act.total_counts", WIN_RECORDING, t0, t1, 1, total, "count", cov);
    add(&d, "act.wear_minutes", WIN_RECORDING, t0, t1, known, (double)worn * gmin, "min", cov);
    add(&d, "act.nonwear_minutes", WIN_RECORDING, t0, t1, known, (double)off * gmin, "min", cov);
    /* rhythm on the recording's clock: x[i] starts tod0 after the first day's local midnight */
    double tod = cal_minutes_of_day(first.zone, t0) * 60.0;
    struct rhy_opts o = rhythm_opts(&c->act, RHY_ORIGIN_RECORDING);
    for (size_t i = 0; i < a->all_n; i++) {
        a->smask[i] = a->wear[i] == NONWEAR_WORN || (!known && !isnan(a->x[i]));
        a->xs[i] = a->sw[i] == SLEEPSCORE_SLEEP ? 1 : a->sw[i] == SLEEPSCORE_WAKE ? 0 : NAN;
    }
    int mask_all = c->act.nonwear == ACT_NONWEAR_NONE || !known;
    struct rhy_series s = {a->x, mask_all ? NULL : a->smask, a->all_n, a->grid_s,
                           (int)llround(tod) % 86400};
    struct rhy_series ss = {a->xs, NULL, a->all_n, a->grid_s, s.tod0_s};
    struct rhy_result r;
    struct rhy_sri_result sr;
    memset(&sr, 0, sizeof sr);
    int sri_ok = 0;
    int ok = run_rhythm(a, &s, &o, &r, &ss, &sr, &sri_ok) == 0;
    add_rhythm(&d, WIN_RECORDING, t0, t1, ok, &r, sri_ok, &sr);
    /* nights: mean TST, WASO and efficiency of the main periods found */
    double tst = 0, waso = 0, eff = 0;
    int nights = 0;
    struct day_window w = first;
    for (int guard = 0; known && w.start < t1 && guard < 100000; guard++) {
        struct act_day one;
        memset(&one, 0, sizeof one);
        day_sleep(a, &w, &one);
        if (one.rec[2].has) {
            nights++;
            tst += one.rec[2].v;
            waso += one.rec[3].v;
            eff += one.rec[4].v;
        }
        struct day_window next;
        cal_day_next(pstate_tzline(ps), &w, &next);
        w = next;
    }
    add(&d, "act.nights", WIN_RECORDING, t0, t1, known, nights, "count", cov);
    add(&d, "act.tst_minutes", WIN_RECORDING, t0, t1, nights > 0, tst / nights, "min", cov);
    add(&d, "act.waso_minutes", WIN_RECORDING, t0, t1, nights > 0, waso / nights, "min", cov);
    add(&d, "act.sleep_efficiency", WIN_RECORDING, t0, t1, nights > 0, eff / nights, "percent",
        cov);
    for (size_t i = 0; i < d.n; i++)
        pstate_emit(ps, WIN_RECORDING, d.rec[i].start, d.rec[i].end, &first, d.rec[i].feature,
                    d.rec[i].has, d.rec[i].v, d.rec[i].unit, d.rec[i].cov, 0);
}
