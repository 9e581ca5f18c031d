#include "pipeline/record.h"

#include "pipeline/nudge.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *window_kind_name(enum window_kind w)
{
    static const char *const names[] = {"day", "7d", "event", "epoch", "recording"};
    return (unsigned)w < sizeof names / sizeof names[0] ? names[w] : "?";
}

/* The shortest round-trip form costs up to three snprintf/strtod pairs, and the same values
 * recur (every record of a family's day carries the same coverage), so the last results are
 * remembered: a small direct-mapped cache per thread, keyed by the bit pattern. */
#define FMT_CACHE 64
struct fmt_slot {
    uint64_t bits;
    int len; /* 0: empty */
    char s[25];
};
static _Thread_local struct fmt_slot fmt_cache[FMT_CACHE];

static int fmt_shortest(double v, char *buf, size_t cap);

static int put_int(char *buf, size_t cap, size_t *pos, int64_t v);

/* An integral value below 2^53 in magnitude, digit by digit (most values are counts). */
static int fmt_integer(double v, char *buf, size_t cap)
{
    size_t pos = 0;
    if (cap == 0 || put_int(buf, cap, &pos, (int64_t)v) < 0)
        return -ENOSPC;
    return (int)pos;
}

size_t fmt_u64(uint64_t v, char *buf)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    char tmp[FMT_U64_MAX], *p = tmp + sizeof tmp;
    while (v >= 100) {
        p -= 2;
        memcpy(p, pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    size_t n = (size_t)(tmp + sizeof tmp - p);
    memcpy(buf, p, n);
    return n;
}

size_t fmt_i64(int64_t v, char *buf)
{
    if (v >= 0)
        return fmt_u64((uint64_t)v, buf);
    buf[0] = '-';
    return 1 + fmt_u64(0 - (uint64_t)v, buf + 1);
}

int fmt_number(double v, char *buf, size_t cap)
{
    if (isfinite(v) && v == floor(v) && fabs(v) < 9007199254740992.0)
        return fmt_integer(v, buf, cap); /* -0 becomes 0 */
    if (!isfinite(v))
        return fmt_shortest(v, buf, cap);
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    struct fmt_slot *c = &fmt_cache[(bits ^ (bits >> 29) ^ (bits >> 47)) % FMT_CACHE];
    if (c->len && c->bits == bits) {
        if ((size_t)c->len >= cap)
            return -ENOSPC;
        memcpy(buf, c->s, (size_t)c->len + 1);
        return c->len;
    }
    int n = fmt_shortest(v, buf, cap);
    if (n > 0 && (size_t)n < sizeof c->s) {
        c->bits = bits;
        c->len = n;
        memcpy(c->s, buf, (size_t)n + 1);
    }
    return n;
}

/* ---- the shortest round-trip form without printf ----
 *
 * fmt_shortest() writes the first of %.15g, %.16g and %.17g that strtod() reads back as the
 * same double. Through printf and strtod that is up to three multi-precision conversions
 * each way, about 9,000 instructions a value: the largest single cost of writing records.
 * fmt_exact() computes the same text with exact integer arithmetic for the values records
 * carry (not integers, 1e-5 <= |v| < 1e15), and leaves the rest to printf:
 *   |v| = m * 2^e2 (m the 53-bit significand), so |v| * 10^s = m * 5^s / 2^k with
 *   k = -(e2 + s); with s <= 22, m * 5^s < 2^105 fits in 128 bits. Rounding to P digits is
 *   then a shift and a look at the remainder: to nearest, ties to even, as glibc's printf
 *   rounds. "Reads back as v" is whether that decimal lies within half the gap from v to its
 *   neighbours (a quarter below a power of two, where the gap below halves), a tie going to
 *   the even significand, as strtod rounds. The digits are laid out as %g lays them out.
 * tests/unit/test_record.c checks it against the printf loop on many random values, ties
 * and powers of ten included. */
#if defined(__SIZEOF_INT128__) && FLT_RADIX == 2 && DBL_MANT_DIG == 53
__extension__ typedef unsigned __int128 u128;

static const uint64_t pow10_u64[18] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
    100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
    10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
    100000000000000000ULL,
};
static const uint64_t pow5_u64[23] = {
    1ULL, 5ULL, 25ULL, 125ULL, 625ULL, 3125ULL, 15625ULL, 78125ULL, 390625ULL, 1953125ULL,
    9765625ULL, 48828125ULL, 244140625ULL, 1220703125ULL, 6103515625ULL, 30517578125ULL,
    152587890625ULL, 762939453125ULL, 3814697265625ULL, 19073486328125ULL,
    95367431640625ULL, 476837158203125ULL, 2384185791015625ULL,
};

/* m * 2^e2 rounded to p significant digits. *x comes in as an estimate of the decimal
 * exponent of the value (floor(log10)) and leaves exact; *digits (p digits) and *xr are the
 * rounded value and the exponent of its first digit. Returns 1 if that decimal reads back
 * as the double, 0 if not, -1 if the arithmetic would leave 128 bits. */
static int round_to(uint64_t m, int e2, int p, int *x, uint64_t *digits, int *xr)
{
    const u128 one = 1;
    for (;;) {
        int s = p - 1 - *x, k = -(e2 + s);
        if (s < 0 || s > 22 || k < 1 || k > 120)
            return -1;
        u128 a = (u128)m * pow5_u64[s], q = a >> k, r = a & ((one << k) - 1);
        if (q < pow10_u64[p - 1]) {
            --*x; /* the estimate was one too high */
            continue;
        }
        if (q >= pow10_u64[p]) {
            ++*x;
            continue;
        }
        u128 half = one << (k - 1), n = q + (r > half || (r == half && (q & 1)));
        /* distance from v to n, in units of 2^-k, times 4; v's neighbours are 5^s units
         * away (the one below half that when m is a power of two) */
        u128 nk = n << k;
        int above = nk > a;
        u128 d4 = (above ? nk - a : a - nk) * 4;
        u128 lim = (u128)pow5_u64[s] * (above || m != UINT64_C(1) << 52 ? 2 : 1);
        *xr = *x;
        if (n == pow10_u64[p]) { /* 9.99... rounded up to 10.0...: one digit more */
            n = pow10_u64[p - 1];
            ++*xr;
        }
        *digits = (uint64_t)n;
        return d4 < lim || (d4 == lim && !(m & 1));
    }
}

/* The p digits as %.{p}g lays them out: trailing zeros dropped, exponent form below 1e-4
 * and from 10^p. out has room for 32 bytes; returns the length. */
static int layout_g(int neg, uint64_t digits, int x, int p, char *out)
{
    char d[20], *o = out;
    int nd = p;
    while (nd > 1 && digits % 10 == 0) {
        digits /= 10;
        nd--;
    }
    for (int i = nd - 1; i >= 0; i--) {
        d[i] = (char)('0' + digits % 10);
        digits /= 10;
    }
    if (neg)
        *o++ = '-';
    if (x < -4 || x >= p) {
        int ax = x < 0 ? -x : x;
        *o++ = d[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, d + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        *o++ = 'e';
        *o++ = x < 0 ? '-' : '+';
        if (ax >= 100)
            *o++ = (char)('0' + ax / 100);
        *o++ = (char)('0' + ax / 10 % 10);
        *o++ = (char)('0' + ax % 10);
    } else if (x >= 0) {
        for (int i = 0; i <= x; i++)
            *o++ = i < nd ? d[i] : '0';
        if (nd > x + 1) {
            *o++ = '.';
            memcpy(o, d + x + 1, (size_t)(nd - x - 1));
            o += nd - x - 1;
        }
    } else {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -x - 1; i++)
            *o++ = '0';
        memcpy(o, d, (size_t)nd);
        o += nd;
    }
    *o = 0;
    return (int)(o - out);
}

/* What the printf loop of fmt_shortest() writes for v (finite, not an integer), stored as
 * snprintf would store it in buf; -2 if v is outside the range done here, or if buf is so
 * small that the loop might stop early on an attempt that does not fit (all callers pass
 * 40 bytes, and the text is never longer than 24). */
static int fmt_exact(double v, char *buf, size_t cap)
{
    uint64_t bits, digits = 0;
    double a = fabs(v);
    char out[32];
    int n = -2;
    if (!(a >= 1e-5 && a < 1e15) || cap < sizeof out)
        return -2;
    memcpy(&bits, &v, sizeof bits);
    uint64_t m = (bits & ((UINT64_C(1) << 52) - 1)) | UINT64_C(1) << 52;
    int e2 = (int)(bits >> 52 & 0x7ff) - 1075;
    /* floor((e2 + 52) * log10(2)), which is the decimal exponent or one below it */
    int x = ((e2 + 52) * 78913 + 262144 * 64) / 262144 - 64;
    for (int p = 15; p <= 17; p++) {
        int xr, trip = round_to(m, e2, p, &x, &digits, &xr);
        if (trip < 0)
            return -2;
        if (trip || p == 17) {
            n = layout_g(v < 0, digits, xr, p, out);
            break;
        }
    }
    memcpy(buf, out, (size_t)n + 1);
    return n;
}
#else
static int fmt_exact(double v, char *buf, size_t cap)
{
    return -2;
}
#endif

static int fmt_shortest(double v, char *buf, size_t cap)
{
    int n;
    if (!isfinite(v))
        n = snprintf(buf, cap, "null");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        n = snprintf(buf, cap, "%.0f", v == 0 ? 0.0 : v); /* no "-0" */
    else if ((n = fmt_exact(v, buf, cap)) == -2) {
        /* shortest of %.15g..%.17g that reads back to the same double: deterministic and
         * readable, and identical on every run and platform with IEEE doubles */
        n = -1;
        for (int prec = 15; prec <= 17; prec++) {
            n = snprintf(buf, cap, "%.*g", prec, v);
            if (n < 0 || (size_t)n >= cap || strtod(buf, NULL) == v)
                break;
        }
    }
    return (n < 0 || (size_t)n >= cap) ? -ENOSPC : n;
}

/* Length of the run of bytes at s (n of them) that need no escape: not a quote, a backslash
 * or a control character; eight at a time (the first flagged byte of a word is the first
 * such byte, as in event_fast.c's string_stops()). */
static size_t plain_run(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w, q, b;
        memcpy(&w, s + i, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        uint64_t stops = (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w)) &
                         high;
        if (stops)
            return i + (size_t)(__builtin_ctzll(stops) >> 3);
    }
    while (i < n && s[i] != '"' && s[i] != '\\' && (unsigned char)s[i] >= 0x20)
        i++;
    return i;
}

/* JSON string escaping for ids and names; inputs are validated UTF-8 already. */
static int put_str(char *buf, size_t cap, size_t *pos, const char *s)
{
    size_t left = strlen(s);
    if (*pos + 1 >= cap)
        return -ENOSPC;
    buf[(*pos)++] = '"';
    while (*s) {
        /* a run of characters that need no escape is copied at once (ids and names are) */
        size_t run = plain_run(s, left);
        if (run) {
            if (*pos + run + 1 >= cap)
                return -ENOSPC;
            memcpy(buf + *pos, s, run);
            *pos += run;
            s += run;
            left -= run;
            continue;
        }
        unsigned char c = (unsigned char)*s++;
        left--;
        char esc[8];
        const char *out = esc;
        size_t len;
        if (c == '"' || c == '\\') {
            esc[0] = '\\'; esc[1] = (char)c; len = 2;
        } else if (c < 0x20) {
            len = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
        } else {
            esc[0] = (char)c; len = 1;
        }
        if (*pos + len + 1 >= cap)
            return -ENOSPC;
        memcpy(buf + *pos, out, len);
        *pos += len;
    }
    buf[(*pos)++] = '"';
    buf[*pos] = 0;
    return 0;
}

static int put_raw(char *buf, size_t cap, size_t *pos, const char *s)
{
    size_t len = strlen(s);
    if (*pos + len + 1 >= cap)
        return -ENOSPC;
    memcpy(buf + *pos, s, len + 1);
    *pos += len;
    return 0;
}

/* Digits of an integer, without printf (times and revisions of every record): two at a
 * time, from the end of a scratch buffer. */
static int put_int(char *buf, size_t cap, size_t *pos, int64_t v)
{
    char tmp[FMT_I64_MAX];
    size_t n = fmt_i64(v, tmp);
    if (*pos + n >= cap) /* the digits and the NUL */
        return -ENOSPC;
    memcpy(buf + *pos, tmp, n);
    *pos += n;
    buf[*pos] = 0;
    return 0;
}

static int put_num(char *buf, size_t cap, size_t *pos, double v)
{
    char tmp[40];
    int r = fmt_number(v, tmp, sizeof tmp);
    return r < 0 ? r : put_raw(buf, cap, pos, tmp);
}

static int put_flag(char *buf, size_t cap, size_t *pos, const char *key, int v)
{
    int e = put_raw(buf, cap, pos, key);
    return e | put_raw(buf, cap, pos, v < 0 ? "null" : v ? "1" : "0");
}

static int put_epoch(char *buf, size_t cap, size_t *pos, const struct epoch_extra *x)
{
    int e = put_flag(buf, cap, pos, ",\"wear\":", x->wear);
    e |= put_flag(buf, cap, pos, ",\"sleep\":", x->sleep);
    if (x->has_axes) {
        e |= put_raw(buf, cap, pos, ",\"axes\":[");
        for (int i = 0; i < 3; i++) {
            e |= i ? put_raw(buf, cap, pos, ",") : 0;
            e |= put_num(buf, cap, pos, x->axes[i]);
        }
        e |= put_raw(buf, cap, pos, "]");
    }
    return e;
}

static int nudge_to_json(const struct feature_record *r, char *buf, size_t cap);

int record_to_json(const struct feature_record *r, char *buf, size_t cap)
{
    size_t pos = 0;
    int e = 0;
    if (cap == 0)
        return -ENOSPC;
    if (r->nudge)
        return nudge_to_json(r, buf, cap);
    buf[0] = 0;
    e |= put_raw(buf, cap, &pos, "{\"participant\":");
    e |= put_str(buf, cap, &pos, r->participant);
    e |= put_raw(buf, cap, &pos, ",\"feature\":");
    e |= put_str(buf, cap, &pos, r->feature);
    e |= put_raw(buf, cap, &pos, ",\"window\":");
    e |= put_str(buf, cap, &pos, window_kind_name(r->window));
    e |= put_raw(buf, cap, &pos, ",\"start\":");
    e |= put_int(buf, cap, &pos, r->start);
    e |= put_raw(buf, cap, &pos, ",\"end\":");
    e |= put_int(buf, cap, &pos, r->end);
    if (r->local_date[0]) {
        e |= put_raw(buf, cap, &pos, ",\"local_date\":");
        e |= put_str(buf, cap, &pos, r->local_date);
    }
    if (r->tz) {
        e |= put_raw(buf, cap, &pos, ",\"tz\":");
        e |= put_str(buf, cap, &pos, r->tz);
    }
    e |= put_raw(buf, cap, &pos, ",\"value\":");
    if (r->has_value)
        e |= put_num(buf, cap, &pos, r->value);
    else
        e |= put_raw(buf, cap, &pos, "null");
    e |= put_raw(buf, cap, &pos, ",\"unit\":");
    e |= put_str(buf, cap, &pos, r->unit ? r->unit : "");
    e |= put_raw(buf, cap, &pos, ",\"coverage\":");
    e |= put_num(buf, cap, &pos, r->coverage);
    e |= put_raw(buf, cap, &pos, ",\"revision\":");
    e |= put_int(buf, cap, &pos, r->revision);
    if (r->epoch)
        e |= put_epoch(buf, cap, &pos, r->epoch);
    if (r->nudge_id) {
        e |= put_raw(buf, cap, &pos, ",\"nudge\":");
        e |= put_str(buf, cap, &pos, r->nudge_id);
    }
    e |= put_raw(buf, cap, &pos, "}");
    return e ? -ENOSPC : (int)pos;
}

/* The names of nudge_recipient and nudge_priority values, here with their only writer (so the
 * parsers' fuzz harnesses, which build record.c, need not build the nudge engine). */
const char *nudge_recipient_name(int r)
{
    static const char *const n[] = {"participant", "supporter", "clinician"};
    return r >= 0 && r < 3 ? n[r] : "participant";
}

const char *nudge_priority_name(int p)
{
    static const char *const n[] = {"low", "normal", "high"};
    return p >= 0 && p < 3 ? n[p] : "normal";
}

/* A nudge decision (spec §6; docs/nudges.md lists the fields). */
static int nudge_to_json(const struct feature_record *r, char *buf, size_t cap)
{
    const struct nudge_decision *d = r->nudge;
    size_t pos = 0;
    int e = put_raw(buf, cap, &pos, "{\"participant\":");
    e |= put_str(buf, cap, &pos, r->participant);
    e |= put_raw(buf, cap, &pos, ",\"id\":");
    e |= put_str(buf, cap, &pos, d->id);
    e |= put_raw(buf, cap, &pos, ",\"ts\":");
    e |= put_int(buf, cap, &pos, d->ts);
    e |= put_raw(buf, cap, &pos, ",\"local_date\":");
    e |= put_str(buf, cap, &pos, d->local_date);
    if (r->tz) {
        e |= put_raw(buf, cap, &pos, ",\"tz\":");
        e |= put_str(buf, cap, &pos, r->tz);
    }
    e |= put_raw(buf, cap, &pos, ",\"rule\":");
    e |= put_str(buf, cap, &pos, d->rule);
    e |= put_raw(buf, cap, &pos, ",\"recipient\":");
    e |= put_str(buf, cap, &pos, nudge_recipient_name(d->recipient));
    if (d->supporter) {
        e |= put_raw(buf, cap, &pos, ",\"supporter\":");
        e |= put_str(buf, cap, &pos, d->supporter);
    }
    e |= put_raw(buf, cap, &pos, ",\"message\":");
    e |= put_str(buf, cap, &pos, d->message);
    e |= put_raw(buf, cap, &pos, ",\"priority\":");
    e |= put_str(buf, cap, &pos, nudge_priority_name(d->priority));
    e |= put_raw(buf, cap, &pos, ",\"decision\":");
    e |= put_str(buf, cap, &pos, d->decision);
    e |= put_raw(buf, cap, &pos, ",\"reason\":");
    e |= put_str(buf, cap, &pos, d->reason);
    e |= put_raw(buf, cap, &pos, ",\"p\":");
    e |= put_num(buf, cap, &pos, d->p);
    e |= put_raw(buf, cap, &pos, d->available ? ",\"available\":true" : ",\"available\":false");
    e |= put_raw(buf, cap, &pos, d->late ? ",\"late\":true" : ",\"late\":false");
    if (d->deferred_from != INT64_MIN) {
        e |= put_raw(buf, cap, &pos, ",\"deferred_from\":");
        e |= put_int(buf, cap, &pos, d->deferred_from);
    }
    if (d->escalated_from) {
        e |= put_raw(buf, cap, &pos, ",\"escalated_from\":");
        e |= put_str(buf, cap, &pos, d->escalated_from);
        e |= put_raw(buf, cap, &pos, ",\"escalated_id\":");
        e |= put_str(buf, cap, &pos, d->escalated_id ? d->escalated_id : "");
    }
    e |= put_raw(buf, cap, &pos, ",\"evidence\":[");
    for (size_t i = 0; i < d->n_evidence; i++) {
        const struct nudge_evidence *x = &d->evidence[i];
        e |= put_raw(buf, cap, &pos, i ? ",{\"feature\":" : "{\"feature\":");
        e |= put_str(buf, cap, &pos, x->feature);
        e |= put_raw(buf, cap, &pos, ",\"value\":");
        if (x->has_value)
            e |= put_num(buf, cap, &pos, x->value);
        else
            e |= put_raw(buf, cap, &pos, "null");
        if (x->local_date[0]) {
            e |= put_raw(buf, cap, &pos, ",\"coverage\":");
            e |= put_num(buf, cap, &pos, x->coverage);
            e |= put_raw(buf, cap, &pos, ",\"local_date\":");
            e |= put_str(buf, cap, &pos, x->local_date);
        }
        if (x->rel != NUDGE_VALUE) {
            e |= put_raw(buf, cap, &pos, ",\"median\":");
            if (x->has_median)
                e |= put_num(buf, cap, &pos, x->median);
            else
                e |= put_raw(buf, cap, &pos, "null");
        }
        e |= put_raw(buf, cap, &pos, x->result < 0 ? ",\"result\":null}"
                                     : x->result ? ",\"result\":true}" : ",\"result\":false}");
    }
    e |= put_raw(buf, cap, &pos, "]}");
    return e ? -ENOSPC : (int)pos;
}
