/* ActiGraph counts and ENMO as a stream (../shared/reference/actigraphy.md sections 1, 2).
 *
 * Per axis: raw rate -> 30 Hz (one of three resamplers, by rate), round to 3 decimals,
 * band-pass, gain, threshold, 30 -> 10 Hz, epoch sums; ENMO on the raw samples beside it.
 * Every step is a recursion over state kept here, so results depend only on the sample
 * sequence, never on block boundaries, and memory is fixed. Arithmetic is double and
 * repeats agcounts' (numpy/scipy) operations in their order where that order is defined,
 * so counts equal agcounts' (docs/actigraphy.md says where the last bits may differ). This
 * needs a build without FP contraction into FMA (GCC's default under -std=c11).
 *
 * Input is staged in chunks that never cross an epoch boundary of the raw stream; each
 * chunk runs through the resampler (with ENMO in the same loop) and then the 30-Hz stage.
 * On the 30..100 Hz paths an epoch's counts are therefore complete no later than its ENMO;
 * on the power-of-two path they lag by at most 0.54 s, less than the shortest epoch. So at
 * most two epochs are open at once, and NSLOT slots hold them until both halves are in. */
#include "pipeline/agcounts.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 256
#define NSLOT 4
#define BP_ORDER 7
#define FIR_N 255
#define FIR_HALF 127
#define HIST 128 /* raw samples a polyphase branch of the FIR reaches back (at 128 Hz) */

/* agcounts extract.py band-pass, direct form: A[0] y = sum B x - sum A[k>0] y */
static const double BP_B[BP_ORDER + 1] = {
    -0.009341062898525, -0.025470289659360, -0.004235264826105, 0.044152415456420,
    0.036493718347760,  -0.011893961934740, -0.022917390623150, -0.006788163862310,
};
static const double BP_A[BP_ORDER + 1] = {
    1.0,
    -3.63367395910957, 5.03689812757486,  -3.09612247819666, 0.50620507633883,
    0.32421701566682,  -0.15685485875559, 0.01949130205890,
};
#define GAIN ((3.0 / 4096.0) / (2.6 / 256.0) * 237.5) /* agcounts' expression, same order */
#define PI_D 3.141592653589793                         /* numpy.pi */

/* The power-of-two path's 255-tap low-pass at 256 Hz, transcribed number for number from
 * ../shared/data/raw/agcounts_pow2_lowpass_255.txt (the kernel of agcounts 0.2.6 pow2.py;
 * symmetric, centre tap 0.125). */
static const double FIR_H[FIR_N] = {
    -0.000001, -0.000002, -0.000004, -0.000005, -0.000006, -0.000006, -0.000004, 0.000000,
    0.000005, 0.000011, 0.000017, 0.000022, 0.000023, 0.000020, 0.000013, -0.000000,
    -0.000016, -0.000033, -0.000049, -0.000059, -0.000061, -0.000052, -0.000031, -0.000000,
    0.000038, 0.000077, 0.000111, 0.000132, 0.000133, 0.000112, 0.000066, -0.000000,
    -0.000078, -0.000156, -0.000222, -0.000260, -0.000259, -0.000214, -0.000125, 0.000000,
    0.000145, 0.000288, 0.000404, 0.000469, 0.000464, 0.000380, 0.000220, -0.000000,
    -0.000250, -0.000493, -0.000687, -0.000791, -0.000777, -0.000632, -0.000363, 0.000000,
    0.000409, 0.000801, 0.001108, 0.001269, 0.001240, 0.001003, 0.000574, -0.000000,
    -0.000639, -0.001246, -0.001715, -0.001956, -0.001903, -0.001534, -0.000873, 0.000000,
    0.000966, 0.001875, 0.002574, 0.002926, 0.002839, 0.002280, 0.001295, -0.000000,
    -0.001425, -0.002762, -0.003783, -0.004293, -0.004158, -0.003335, -0.001892, 0.000000,
    0.002078, 0.004025, 0.005513, 0.006257, 0.006061, 0.004866, 0.002763, -0.000000,
    -0.003045, -0.005909, -0.008115, -0.009237, -0.008981, -0.007240, -0.004131, 0.000000,
    0.004606, 0.009005, 0.012468, 0.014325, 0.014075, 0.011483, 0.006641, -0.000000,
    -0.007655, -0.015271, -0.021640, -0.025543, -0.025900, -0.021926, -0.013250, 0.000000,
    0.017180, 0.037161, 0.058432, 0.079245, 0.097796, 0.112422, 0.121780, 0.125000,
    0.121780, 0.112422, 0.097796, 0.079245, 0.058432, 0.037161, 0.017180, 0.000000,
    -0.013250, -0.021926, -0.025900, -0.025543, -0.021640, -0.015271, -0.007655, -0.000000,
    0.006641, 0.011483, 0.014075, 0.014325, 0.012468, 0.009005, 0.004606, 0.000000,
    -0.004131, -0.007240, -0.008981, -0.009237, -0.008115, -0.005909, -0.003045, -0.000000,
    0.002763, 0.004866, 0.006061, 0.006257, 0.005513, 0.004025, 0.002078, 0.000000,
    -0.001892, -0.003335, -0.004158, -0.004293, -0.003783, -0.002762, -0.001425, -0.000000,
    0.001295, 0.002280, 0.002839, 0.002926, 0.002574, 0.001875, 0.000966, 0.000000,
    -0.000873, -0.001534, -0.001903, -0.001956, -0.001715, -0.001246, -0.000639, -0.000000,
    0.000574, 0.001003, 0.001240, 0.001269, 0.001108, 0.000801, 0.000409, 0.000000,
    -0.000363, -0.000632, -0.000777, -0.000791, -0.000687, -0.000493, -0.000250, -0.000000,
    0.000220, 0.000380, 0.000464, 0.000469, 0.000404, 0.000288, 0.000145, 0.000000,
    -0.000125, -0.000214, -0.000259, -0.000260, -0.000222, -0.000156, -0.000078, -0.000000,
    0.000066, 0.000112, 0.000133, 0.000132, 0.000111, 0.000077, 0.000038, -0.000000,
    -0.000031, -0.000052, -0.000061, -0.000059, -0.000049, -0.000033, -0.000016, -0.000000,
    0.000013, 0.000020, 0.000023, 0.000022, 0.000017, 0.000011, 0.000005, 0.000000,
    -0.000004, -0.000006, -0.000006, -0.000005, -0.000004, -0.000002, -0.000001,
};
/* agcounts pow2.py: taso_lpf, one pole at 256 Hz; interpolated_resample, 256 -> 30 Hz */
#define TASO_B 0.307990357416655
#define TASO_A (1.0 - TASO_B)
#define R256_30 (256.0 / 30.0)

enum path {
    PATH_PICK, /* 30, 60, 90 Hz: keep every down-th sample, no filter */
    PATH_IIR3, /* 40..100 Hz otherwise: zero-stuff by 3, one-pole low-pass, keep every down-th */
    PATH_POW2, /* 32..256 Hz: polyphase FIR to 256 Hz, one pole, linear interpolation */
};

struct slot {
    struct agc_epoch e;
    int used, have_counts, have_enmo;
};

struct agc {
    enum path path;
    int down;            /* M: upsampled samples per 30-Hz sample (legacy paths) */
    int f;               /* 256 / hz (power-of-two path) */
    uint32_t per_epoch;  /* raw samples per epoch */
    int32_t per_epoch30; /* 30-Hz samples per epoch */
    agc_epoch_fn cb;
    void *ud;
    int flushed;

    /* staging: valid samples as given, an invalid one as a copy of the one before */
    double buf[CHUNK][3];
    unsigned char ok[CHUNK];
    size_t nbuf, room; /* room: chunk length allowed before the next epoch boundary */
    double hold[3];    /* the last sample drained */
    int seen_valid;
    uint64_t lead; /* invalid samples before the first valid one, waiting for its value */
    uint64_t n_invalid;
    uint64_t n_raw; /* samples through drain() */

    /* 30..100 Hz resamplers */
    int phase; /* PICK: raw index mod down; IIR3: 3 * raw index mod down */
    double lp[3];
    double lp_c, lp_nb; /* a*L and -b of the one-pole filter */

    /* power-of-two resampler */
    double hist[2 * HIST][3]; /* f * x, each value stored twice so a window is contiguous */
    int hpos;
    double taps[HIST * 2]; /* FIR_H by polyphase branch: branch r at r * 256/f, zero-padded */
    int64_t n_push; /* raw samples into the FIR (including the zero tail) */
    int taso_on;
    double taso_z[3];
    int64_t n256; /* 256-Hz values through the one-pole filter */
    double prev256[3];
    int64_t next_i, next_j; /* next 30-Hz output (1-based) and the 256-Hz index it needs */
    int held;               /* newest interpolated value, held back: see pow2_finish */
    int64_t held_i;
    double held_v[3];

    /* 30-Hz stage: the resamplers fill s30, stage30 empties it */
    double s30[CHUNK + 2][3];
    size_t n30;
    int bp_on;
    double bp_z[3][BP_ORDER];
    int32_t tri[3]; /* sum of the 30-Hz values of the 10-Hz value in progress */
    int tri_n;
    int32_t ep30_n; /* 30-Hz samples into the counts epoch in progress */
    int64_t ep30_k; /* its index */
    int32_t acc[3]; /* its counts so far */

    /* ENMO of the raw epoch in progress */
    double enmo_sum;
    uint32_t enmo_valid;

    struct slot slot[NSLOT];
    int64_t next_emit;
};

int agc_check(double hz, int epoch_s, const char **why)
{
    const char *w = NULL;
    int ok = hz >= 30 && hz <= 100 && hz == floor(hz) && (int)hz % 10 == 0;
    ok = ok || hz == 32 || hz == 64 || hz == 128 || hz == 256;
    if (!ok)
        w = "unsupported sample rate: counts need 30, 40, 50, 60, 70, 80, 90 or 100 Hz, or "
            "32, 64, 128 or 256 Hz";
    else if (epoch_s < 1 || epoch_s > 86400 || 86400 % epoch_s != 0)
        w = "epoch length must be 1..86400 s and divide 86400";
    if (why)
        *why = w;
    return w ? -EINVAL : 0;
}

struct agc *agc_new(double hz, int epoch_s, agc_epoch_fn cb, void *user_data, int *err,
                    const char **why)
{
    int r = agc_check(hz, epoch_s, why);
    if (r == 0 && !cb) {
        r = -EINVAL;
        if (why)
            *why = "no epoch callback";
    }
    struct agc *c = r < 0 ? NULL : calloc(1, sizeof(*c));
    if (!c) {
        if (err)
            *err = r < 0 ? r : -ENOMEM;
        return NULL;
    }
    int ihz = (int)hz;
    c->cb = cb;
    c->ud = user_data;
    c->per_epoch = (uint32_t)ihz * (uint32_t)epoch_s;
    c->per_epoch30 = 30 * epoch_s;
    c->room = c->per_epoch < CHUNK ? c->per_epoch : CHUNK;
    if (ihz % 30 == 0) {
        c->path = PATH_PICK;
        c->down = ihz / 30;
    } else if (ihz % 10 == 0) {
        c->path = PATH_IIR3;
        c->down = ihz / 10; /* L = 3, M = hz/10: hz * 3 / M = 30 */
        /* agcounts: a = pi/(pi + 2L), b = (pi - 2L)/(pi + 2L), gain a*L */
        c->lp_c = PI_D / (PI_D + 2 * 3) * 3;
        c->lp_nb = -((PI_D - 2 * 3) / (PI_D + 2 * 3));
    } else {
        c->path = PATH_POW2;
        c->f = 256 / ihz;
        for (int t = 0, nt = 256 / c->f; t < FIR_N; t++)
            c->taps[(t % c->f) * nt + t / c->f] = FIR_H[t];
        c->next_i = 1;
        c->next_j = (int64_t)floor(R256_30 * 1.0);
    }
    return c;
}

void agc_free(struct agc *c)
{
    free(c);
}

uint64_t agc_samples(const struct agc *c)
{
    return c->n_raw + c->nbuf + c->lead;
}

uint64_t agc_invalid(const struct agc *c)
{
    return c->n_invalid;
}

/* ---- epochs: the counts half and the ENMO half meet in a slot ---- */

static struct slot *slot_of(struct agc *c, int64_t k)
{
    struct slot *s = &c->slot[k % NSLOT];
    if (!s->used) {
        memset(s, 0, sizeof(*s));
        s->used = 1;
        s->e.index = k;
        s->e.n_expected = c->per_epoch;
    }
    assert(s->e.index == k); /* at most two epochs open: see the top of the file */
    return s;
}

static void give_counts(struct agc *c, int64_t k, const int32_t counts[3])
{
    struct slot *s = slot_of(c, k);
    memcpy(s->e.counts, counts, sizeof(s->e.counts));
    s->have_counts = 1;
}

static void give_enmo(struct agc *c, int64_t k, uint32_t n, int partial)
{
    struct slot *s = slot_of(c, k);
    s->e.enmo = c->enmo_valid ? c->enmo_sum / c->enmo_valid : NAN;
    s->e.n_samples = n;
    s->e.n_valid = c->enmo_valid;
    s->e.partial = partial;
    s->have_enmo = 1;
    c->enmo_sum = 0;
    c->enmo_valid = 0;
}

static void emit_ready(struct agc *c)
{
    for (;;) {
        struct slot *s = &c->slot[c->next_emit % NSLOT];
        if (!s->used || s->e.index != c->next_emit || !s->have_counts || !s->have_enmo)
            return;
        c->cb(&s->e, c->ud);
        s->used = 0;
        c->next_emit++;
    }
}

/* ---- 30 Hz onwards ---- */

/* numpy's round(v * 1000) / 1000: rint (ties to even) by the 1.5 * 2^52 trick, exact for
 * |v * 1000| < 2^51 in the default rounding mode. Samples within AGC_G_LIMIT keep every
 * resampled value within 3 * 256 g (the sum of |impulse response| is 3.0 for the one-pole,
 * at most 2.35 for the FIR; the interpolation stays between neighbours), far inside. */
static inline double round3(double v)
{
    return ((v * 1000.0 + 0x1.8p52) - 0x1.8p52) / 1000.0;
}

/* scipy lfilter_zi times the first sample, in closed form: the transposed direct-form
 * state of a steady input, z[k] = sum_{j>k} (B[j] - A[j] G), G the DC gain. */
static void bp_start(struct agc *c, const double x[3])
{
    double sb = 0, sa = 0, zi[BP_ORDER], s = 0;
    for (int k = 0; k <= BP_ORDER; k++) {
        sb += BP_B[k];
        sa += BP_A[k];
    }
    double g = sb / sa;
    for (int k = BP_ORDER; k >= 1; k--) {
        s += BP_B[k] - BP_A[k] * g;
        zi[k - 1] = s;
    }
    for (int a = 0; a < 3; a++)
        for (int i = 0; i < BP_ORDER; i++)
            c->bp_z[a][i] = zi[i] * round3(x[a]);
    c->bp_on = 1;
}

/* |v| < 4 -> 0, > 128 -> 128, else floor(v); in integers after the conversion (truncation
 * is floor for v >= 0) so the compiler can use conditional moves: while the wearer moves,
 * values cross the thresholds at random and branches would mispredict. */
static inline int32_t trim(double y)
{
    double m = fabs(GAIN * y);
    if (!(m < 0x1p30)) /* not reached within AGC_G_LIMIT */
        m = 0x1p30;
    int32_t v = (int32_t)m;
    v = v > 128 ? 128 : v;
    return v < 4 ? 0 : v;
}

/* The buffered 30-Hz samples: band-pass in scipy lfilter's transposed direct form II
 * (same operation order), gain, threshold, then the 10-Hz and epoch sums. */
static void stage30(struct agc *c)
{
    size_t n = c->n30;
    if (!n)
        return;
    if (!c->bp_on)
        bp_start(c, c->s30[0]);
    double z[3][BP_ORDER]; /* in locals for the loop */
    memcpy(z, c->bp_z, sizeof(z));
    for (size_t i = 0; i < n; i++) {
        double x[3], y[3];
        for (int a = 0; a < 3; a++) {
            x[a] = round3(c->s30[i][a]);
            y[a] = z[a][0] + BP_B[0] * x[a];
        }
        for (int j = 0; j < BP_ORDER - 1; j++)
            for (int a = 0; a < 3; a++)
                z[a][j] = z[a][j + 1] + x[a] * BP_B[j + 1] - y[a] * BP_A[j + 1];
        for (int a = 0; a < 3; a++) {
            z[a][BP_ORDER - 1] = x[a] * BP_B[BP_ORDER] - y[a] * BP_A[BP_ORDER];
            c->tri[a] += trim(y[a]);
        }
        if (++c->tri_n == 3) { /* 10 Hz: floor of the mean of 3 */
            for (int a = 0; a < 3; a++) {
                c->acc[a] += c->tri[a] / 3;
                c->tri[a] = 0;
            }
            c->tri_n = 0;
        }
        if (++c->ep30_n == c->per_epoch30) { /* a multiple of 3: ends on a 10-Hz value */
            give_counts(c, c->ep30_k++, c->acc);
            memset(c->acc, 0, sizeof(c->acc));
            c->ep30_n = 0;
        }
    }
    memcpy(c->bp_z, z, sizeof(z));
    c->n30 = 0;
}

static void out30(struct agc *c, const double v[3])
{
    memcpy(c->s30[c->n30++], v, sizeof(c->s30[0]));
    if (c->n30 == CHUNK)
        stage30(c);
}

/* ---- resamplers, with ENMO in the same loop ---- */

/* Adds staged sample i's ENMO term in sample order, so the epoch's sum does not depend on
 * where chunks end. In the resampler's loop it overlaps the resampler's dependency chain. */
static inline void enmo_add(const struct agc *c, size_t i, double *sum, uint32_t *nv)
{
    const double *x = c->buf[i];
    double r = sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]) - 1.0;
    if (c->ok[i]) {
        *sum += (r + fabs(r)) * 0.5; /* max(r, 0) exactly; no branch on a random sign */
        (*nv)++;
    }
}

/* Zero-stuffing by 3 feeds the one-pole filter y = aL (u[i] + u[i-1]) - b y[i-1] the inputs
 * x, x, 0 for each raw sample x (u[-1] = y[-1] = 0), computed as agcounts does: aL * x is
 * shared, and aL * 0 + (-b y) is exactly -b y. The 30-Hz samples are the upsampled
 * positions divisible by M (M >= 4: at most one per raw sample); a candidate is always
 * written and kept only if it is one. */
static void run_iir3(struct agc *c, size_t m)
{
    const double cc = c->lp_c, nb = c->lp_nb;
    const int M = c->down;
    double l0 = c->lp[0], l1 = c->lp[1], l2 = c->lp[2], es = c->enmo_sum;
    uint32_t nv = 0;
    int ph = c->phase;
    size_t n30 = c->n30;
    double(*s30)[3] = c->s30;
    for (size_t i = 0; i < m; i++) {
        const double *x = c->buf[i];
        double t0 = cc * x[0], t1 = cc * x[1], t2 = cc * x[2];
        double a0 = t0 + nb * l0, a1 = t1 + nb * l1, a2 = t2 + nb * l2;
        double b0 = t0 + nb * a0, b1 = t1 + nb * a1, b2 = t2 + nb * a2;
        l0 = nb * b0;
        l1 = nb * b1;
        l2 = nb * b2;
        int off = ph == 0 ? 0 : M - ph;
        s30[n30][0] = off == 0 ? a0 : off == 1 ? b0 : l0;
        s30[n30][1] = off == 0 ? a1 : off == 1 ? b1 : l1;
        s30[n30][2] = off == 0 ? a2 : off == 1 ? b2 : l2;
        n30 += off < 3;
        ph += 3;
        if (ph >= M)
            ph -= M;
        enmo_add(c, i, &es, &nv);
    }
    c->lp[0] = l0;
    c->lp[1] = l1;
    c->lp[2] = l2;
    c->phase = ph;
    c->n30 = n30;
    c->enmo_sum = es;
    c->enmo_valid += nv;
}

/* A 256-Hz value y (index n256) into agcounts' interpolated_resample: output i (1-based)
 * comes from y[j], y[j+1] with j + 1 = floor(r i), r = 256/30, as r i d + (y[j] - d (j+1)),
 * d = y[j+1] - y[j]. agcounts leaves its last output at 0, so the newest output is held
 * back for pow2_finish. */
static void interp(struct agc *c, const double y[3])
{
    int64_t j1 = c->n256++;
    if (j1 == c->next_j) {
        double out[3];
        for (int a = 0; a < 3; a++) {
            double d = y[a] - c->prev256[a];
            out[a] = (R256_30 * (double)c->next_i) * d + (c->prev256[a] - d * (double)j1);
        }
        if (c->held)
            out30(c, c->held_v);
        c->held = 1;
        c->held_i = c->next_i;
        memcpy(c->held_v, out, sizeof(out));
        c->next_i++;
        c->next_j = (int64_t)floor(R256_30 * (double)c->next_i);
    }
    memcpy(c->prev256, y, sizeof(c->prev256));
}

/* scipy lfilter([a], [1, -a], x') with x' = b v / a, started at the steady state of the
 * first value (lfilter_zi = a^2 / (1 - a)). */
static void taso(struct agc *c, const double v[3])
{
    double y[3];
    for (int a = 0; a < 3; a++) {
        double xp = (TASO_B * v[a]) / TASO_A;
        if (!c->taso_on)
            c->taso_z[a] = (TASO_A * TASO_A) / (1.0 - TASO_A) * xp;
        y[a] = c->taso_z[a] + TASO_A * xp;
        c->taso_z[a] = TASO_A * y[a];
    }
    c->taso_on = 1;
    interp(c, y);
}

/* Raw sample q into the zero-stuffed FIR, numpy.convolve(u, h, "same") with u[f q] = f x[q]:
 * v[j] = sum_q' f x[q'] h[j + 127 - f q']. Sample q completes the outputs j = f q - 127 + r
 * (r < f), each a polyphase sum over h[r], h[r + f], ...; outputs at or beyond `limit`
 * (the end of the 256-Hz stream, in the flush tail) are not produced. */
static void pow2_push(struct agc *c, const double x[3], int64_t limit)
{
    const int f = c->f;
    if (f == 1) { /* 256 Hz: no FIR */
        taso(c, x);
        return;
    }
    c->hpos = (c->hpos + 1) % HIST;
    for (int a = 0; a < 3; a++)
        c->hist[c->hpos][a] = c->hist[c->hpos + HIST][a] = x[a] * f;
    int64_t q = c->n_push++;
    const int nt = 256 / f; /* taps per branch, a multiple of 4 */
    const double(*u)[3] = &c->hist[c->hpos + HIST];
    for (int r = 0; r < f; r++) {
        int64_t j = f * q - FIR_HALF + r;
        if (j < 0 || j >= limit)
            continue;
        /* four partial sums per axis: a sequential sum would wait on every addition */
        const double *h = c->taps + r * nt;
        double s[4][3] = { { 0 } };
        for (int d = 0; d < nt; d += 4)
            for (int k = 0; k < 4; k++)
                for (int a = 0; a < 3; a++)
                    s[k][a] += u[-(d + k)][a] * h[d + k];
        double v[3];
        for (int a = 0; a < 3; a++)
            v[a] = (s[0][a] + s[1][a]) + (s[2][a] + s[3][a]);
        taso(c, v);
    }
}

/* The other paths: 30, 60, 90 Hz keep every down-th sample as it is; power of two. */
static void run_other(struct agc *c, size_t m)
{
    double es = c->enmo_sum;
    uint32_t nv = 0;
    for (size_t i = 0; i < m; i++) {
        if (c->path == PATH_POW2) {
            pow2_push(c, c->buf[i], INT64_MAX);
        } else {
            if (c->phase == 0)
                out30(c, c->buf[i]);
            if (++c->phase == c->down)
                c->phase = 0;
        }
        enmo_add(c, i, &es, &nv);
    }
    c->enmo_sum = es;
    c->enmo_valid += nv;
}

/* End of a power-of-two stream: the FIR's look-ahead reads zeros past the end, and of the
 * floor(m 30 / 256) outputs the last is 0 (agcounts). The held value is that last output
 * or the one before it. */
static void pow2_finish(struct agc *c)
{
    static const double zero[3] = { 0, 0, 0 };
    int64_t m = (int64_t)c->n_raw * c->f;
    if (c->f > 1)
        for (int k = 0; k <= (FIR_HALF - 1) / c->f; k++)
            pow2_push(c, zero, m);
    int64_t count = m * 30 / 256;
    if (c->held && c->held_i < count)
        out30(c, c->held_v);
    c->held = 0;
    if (count >= 1)
        out30(c, zero);
    stage30(c);
}

/* ---- input ---- */

static void drain(struct agc *c)
{
    size_t m = c->nbuf;
    if (!m)
        return;
    if (c->path == PATH_IIR3)
        run_iir3(c, m);
    else
        run_other(c, m);
    stage30(c);
    memcpy(c->hold, c->buf[m - 1], sizeof(c->hold));
    c->n_raw += m;
    c->nbuf = 0;
    uint64_t in_epoch = c->n_raw % c->per_epoch;
    if (in_epoch == 0)
        give_enmo(c, (int64_t)(c->n_raw / c->per_epoch) - 1, c->per_epoch, 0);
    uint64_t left = c->per_epoch - in_epoch;
    c->room = left < CHUNK ? (size_t)left : CHUNK;
    emit_ready(c);
}

/* An invalid sample repeats the sample before it (staged, else the last drained). */
static void stage_copy(struct agc *c)
{
    const double *src = c->nbuf ? c->buf[c->nbuf - 1] : c->hold;
    memcpy(c->buf[c->nbuf], src, sizeof(c->buf[0]));
    c->ok[c->nbuf] = 0;
    if (++c->nbuf == c->room)
        drain(c);
}

static inline int valid(double x, double y, double z)
{
    /* written so that NaN fails; & rather than &&: one branch */
    return (fabs(x) <= AGC_G_LIMIT) & (fabs(y) <= AGC_G_LIMIT) & (fabs(z) <= AGC_G_LIMIT);
}

/* An invalid sample, or the first valid one: then the leading invalid ones take its value. */
static void take_slow(struct agc *c, const double g[3])
{
    if (!valid(g[0], g[1], g[2])) {
        c->n_invalid++;
        if (c->seen_valid)
            stage_copy(c);
        else
            c->lead++;
        return;
    }
    c->seen_valid = 1;
    memcpy(c->hold, g, sizeof(c->hold));
    for (; c->lead; c->lead--)
        stage_copy(c);
    memcpy(c->buf[c->nbuf], g, sizeof(c->buf[0]));
    c->ok[c->nbuf] = 1;
    if (++c->nbuf == c->room)
        drain(c);
}

/* Valid samples after the first go into the chunk in a tight loop; others take_slow. One
 * of gf (floats) and gd (doubles) is given; the compiler makes a loop for each. */
static void put(struct agc *c, const float (*gf)[3], const double (*gd)[3], size_t n)
{
#define G(i, a) (gf ? (double)gf[i][a] : gd[i][a])
    for (size_t i = 0; i < n;) {
        size_t k = 0, lim = c->room - c->nbuf;
        double(*b)[3] = c->buf + c->nbuf;
        if (lim > n - i)
            lim = n - i;
        for (; c->seen_valid && k < lim; k++) {
            double x = G(i + k, 0), y = G(i + k, 1), z = G(i + k, 2);
            if (!valid(x, y, z))
                break;
            b[k][0] = x;
            b[k][1] = y;
            b[k][2] = z;
        }
        memset(c->ok + c->nbuf, 1, k);
        c->nbuf += k;
        i += k;
        if (c->nbuf == c->room) {
            drain(c);
        } else if (i < n) {
            double g[3] = { G(i, 0), G(i, 1), G(i, 2) };
            take_slow(c, g);
            i++;
        }
    }
#undef G
}

static int feed_check(const struct agc *c, const void *g, size_t n)
{
    if (c->flushed)
        return -EPIPE;
    if (n > AGC_BLOCK_MAX)
        return -E2BIG;
    if (n && !g)
        return -EINVAL;
    return 0;
}

int agc_feed(struct agc *c, const float (*g)[3], size_t n)
{
    int r = feed_check(c, g, n);
    if (r < 0)
        return r;
    put(c, g, NULL, n);
    drain(c);
    return 0;
}

int agc_feed_d(struct agc *c, const double (*g)[3], size_t n)
{
    int r = feed_check(c, g, n);
    if (r < 0)
        return r;
    put(c, NULL, g, n);
    drain(c);
    return 0;
}

int agc_flush(struct agc *c)
{
    if (c->flushed)
        return -EPIPE;
    c->flushed = 1;
    if (!c->seen_valid) /* nothing valid at all: the filters see 0 g */
        for (; c->lead; c->lead--)
            stage_copy(c);
    drain(c);
    if (c->path == PATH_POW2 && c->n_raw)
        pow2_finish(c);
    uint64_t in_epoch = c->n_raw % c->per_epoch;
    if (in_epoch) {
        int64_t k = (int64_t)(c->n_raw / c->per_epoch);
        /* The 30-Hz side can be a sample ahead of or behind the raw count at the very end (a
         * stream shorter than the resampler's rounding, e.g. 97 samples at 100 Hz gives 30
         * samples at 30 Hz): the epoch's counts are then already given, or earlier ones
         * still owed. */
        while (c->ep30_k < k) {
            give_counts(c, c->ep30_k++, c->acc);
            memset(c->acc, 0, sizeof(c->acc));
        }
        give_enmo(c, k, (uint32_t)in_epoch, 1);
        if (c->ep30_k == k)
            give_counts(c, k, c->acc);
    }
    emit_ready(c);
    return 0;
}
