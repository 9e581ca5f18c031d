/* The fast path for event lines: the common flat shape, scanned in place.
 *
 * Why by hand: replay must reach 1 M events/s on one core (spec), and jansson cannot get
 * near it: it builds a tree of heap nodes and a hash table for every line and tops out near
 * 0.4 M lines/s here. The other packaged C JSON libraries do not help: json-c and cJSON
 * build heap trees too, and yajl (callbacks, no tree) has its own rules for numbers,
 * duplicate keys and UTF-8, so it could not stand in for jansson's verdict without the
 * same checks written around it. And jansson must stay the authority for what a line
 * means and why it is rejected. So this is not a second JSON parser: it reads a strict
 * subset of JSON, the shape writers actually produce, and answers "not sure" for anything
 * else, letting jansson decide:
 *   - one object, keys and string values without escapes, bytes >= 0x80 only as valid
 *     UTF-8 (RFC 3629, exactly what jansson accepts);
 *   - numbers in JSON syntax, converted to the value jansson would produce (below);
 *   - arrays of numbers and arrays of such arrays (items, counts, rr_ms, g), at most
 *     TOP_MAX + INNER_MAX elements, so long accel blocks go to jansson;
 *   - ignored keys with any value up to SKIP_DEPTH deep, including objects (ema items),
 *     with the same duplicate-key and number-range checks jansson applies there.
 * The result then goes through the same checks as jansson's (ev_from_fields()), and any
 * failure of those also returns "not sure", so that only jansson's path words reasons.
 * tests/fuzz/fuzz_event_diff.c checks that both paths agree on every input. */
#include "pipeline/event_fast.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOP_MAX 64     /* elements of arrays that are key values (g: samples) */
#define INNER_MAX 192  /* elements of arrays inside those (g: 3 per sample) */
#define SKIP_DEPTH 16  /* nesting followed inside ignored values */
#define KEYS_MAX 16    /* keys per object kept for the duplicate check (unknown keys only at
                        * the top level: known ones are told apart by enum ev_key) */
#define NUMBER_MAX 64  /* longest number handed to strtod() */

struct span {
    const char *p;
    size_t n;
};

/* The line, and the pools of array elements (see scan_array()). The scanning functions take
 * the position as an argument and return the position after what they read, or NULL if the
 * input is outside the fast path's shape: the position then stays in a register. */
struct scan {
    const char *begin, *end;
    size_t ntop, ninner;
    struct ev_value top[TOP_MAX], inner[INNER_MAX];
};

/* JSON whitespace: exactly these four, as in jansson. Every other byte is above ' ', so
 * the common case (no whitespace) costs one comparison after the bound. */
static inline const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= ' ' &&
           (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static inline int is_digit(char c)
{
    return (unsigned char)(c - '0') < 10;
}

/* Length of the well-formed UTF-8 sequence at p (p[0] >= 0x80), or 0: no overlong forms,
 * no surrogates, nothing above U+10FFFF, as jansson's utf8_check_first/full. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], lo = 0x80, hi = 0xbf; /* the range of the second byte */
    size_t n;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* below: overlong */
        else if (c == 0xed)
            hi = 0x9f; /* above: U+D800..U+DFFF */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90; /* below: overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above: beyond U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* The 8 bytes at p as a number whose lowest byte is p[0], on any byte order. */
static inline uint64_t load8(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* The high bit of every byte of w (from load8()) that a string lexer must stop at: a quote,
 * a backslash, a control character or a byte >= 0x80. Each test can also flag bytes above
 * one it flags rightly (the borrow of the subtraction runs upwards), never below: so the
 * lowest flagged byte is always the first byte to stop at. */
static inline uint64_t string_stops(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w) & high;
}

/* A string without escapes or control characters; p is at the opening quote. The bytes are
 * looked at eight at a time, the last ones of the line as its last eight with the bytes
 * already seen shifted out (the zeros shifted in stop the lexer: they stand for the end);
 * a line shorter than eight bytes byte by byte. A byte >= 0x80 must start a well-formed
 * UTF-8 sequence, which cannot contain a quote. */
static inline __attribute__((always_inline)) const char *
lex_string_inline(const struct scan *s, const char *p, struct span *out)
{
    const char *start = p + 1, *end = s->end;
    p = start;
    for (;;) {
        size_t left = (size_t)(end - p);
        if (left >= 8) {
            uint64_t stops = string_stops(load8(p));
            if (!stops) {
                p += 8;
                continue;
            }
            p += __builtin_ctzll(stops) >> 3;
        } else if (left > 0 && end - s->begin >= 8) {
            p += __builtin_ctzll(string_stops(load8(end - 8) >> (8 * (8 - left)))) >> 3;
        } else {
            while (p < end && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x80 &&
                   *p != '"' && *p != '\\')
                p++;
        }
        if (p >= end)
            return NULL; /* no closing quote */
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c < 0x80)
            return NULL; /* an escape or a control character: jansson's business */
        size_t n = utf8_len((const unsigned char *)p, (const unsigned char *)end);
        if (!n)
            return NULL;
        p += n;
    }
    out->p = start;
    out->n = (size_t)(p - start);
    return p + 1;
}

/* The same, out of line: for keys and for strings in skipped values. */
static const char *lex_string(const struct scan *s, const char *p, struct span *out)
{
    return lex_string_inline(s, p, out);
}

static const char *lex_literal(const char *p, const char *end, struct ev_value *v)
{
    static const char *const words[] = {"true", "false", "null"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(end - p) >= n && memcmp(p, words[i], n) == 0) {
            v->kind = EVV_LITERAL;
            return p + n;
        }
    }
    return NULL;
}

/* 1 if the 8 bytes of w (from load8()) are all ASCII digits: each high nibble is 3, and
 * adding 6 to each byte does not carry out of the low nibble. */
static inline int eight_digits(uint64_t w)
{
    const uint64_t hi = 0xf0f0f0f0f0f0f0f0ULL;
    return ((w & hi) | (((w + 0x0606060606060606ULL) & hi) >> 4)) == 0x3333333333333333ULL;
}

/* The value of eight ASCII digits (p[0] first): pairs, then quads, then the whole, each
 * step one multiplication that adds neighbouring lanes. */
static inline uint64_t eight_digits_value(uint64_t w)
{
    const uint64_t mask = 0x000000ff000000ffULL;
    const uint64_t mul1 = 100 + (UINT64_C(1000000) << 32), mul2 = 1 + (UINT64_C(10000) << 32);
    w -= 0x3030303030303030ULL;
    w = w * 10 + (w >> 8);
    return (((w & mask) * mul1) + (((w >> 16) & mask) * mul2)) >> 32;
}

/* The powers of ten that are exact doubles: 10^k = 5^k * 2^k, and 5^k < 2^53 up to k = 22. */
static const double exact_pow10[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* A JSON number with '.', 'e' or 'E' (p at its first byte): a real, with jansson's meaning
 * (strtod, which must not overflow to infinity; underflow gives 0 or a subnormal, as there).
 * Reals whose digits form an integer m <= 2^53 and whose decimal exponent e has |e| <= 22
 * are converted as m * 10^e or m / 10^-e: both operands are exact, so the one rounding gives
 * the correctly rounded value, which is what glibc's strtod returns too (Clinger's fast
 * path). Not where arithmetic may carry excess precision (FLT_EVAL_METHOD != 0, x87): there
 * strtod does it all. */
static const char *lex_real(const char *p, const char *end, struct ev_value *v)
{
    const char *start = p;
    uint64_t m = 0;
    int neg = 0, digits = 0, frac = 0;
    long exp = 0;

    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p == end || !is_digit(*p))
        return NULL;
    if (*p == '0') {
        if (++p < end && is_digit(*p))
            return NULL; /* leading zero */
    } else {
        for (; p < end && is_digit(*p); p++, digits++)
            if (digits < 19) /* 19 digits always fit in uint64 */
                m = m * 10 + (uint64_t)(*p - '0');
    }
    if (p < end && *p == '.') {
        if (++p == end || !is_digit(*p))
            return NULL;
        for (; p < end && is_digit(*p); p++, digits++, frac++)
            if (digits < 19)
                m = m * 10 + (uint64_t)(*p - '0');
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p == end || !is_digit(*p))
            return NULL;
        for (; p < end && is_digit(*p); p++)
            if (exp < 100000)
                exp = exp * 10 + (*p - '0');
        if (eneg)
            exp = -exp;
    }

    v->kind = EVV_REAL;
    long e10 = exp - frac;
    if (FLT_EVAL_METHOD == 0 && digits <= 19 && m <= (UINT64_C(1) << 53) && e10 >= -22 &&
        e10 <= 22) {
        double d = (double)m;
        d = e10 < 0 ? d / exact_pow10[-e10] : d * exact_pow10[e10];
        v->u.d = neg ? -d : d;
        return p;
    }
    /* the rest as jansson does it; a locale whose decimal point is not '.' ends the
     * conversion early, which is caught here and left to jansson too */
    char buf[NUMBER_MAX + 1], *stop;
    size_t n = (size_t)(p - start);
    if (n > NUMBER_MAX)
        return NULL;
    memcpy(buf, start, n);
    buf[n] = 0;
    v->u.d = strtod(buf, &stop);
    return stop == buf + n && !isinf(v->u.d) ? p : NULL;
}

/* A JSON number, with jansson's meaning: without '.', 'e' or 'E' an integer (strtoll, which
 * must not overflow), otherwise a real (lex_real()). Integers are read here in one pass;
 * reals are read again from the start by lex_real(). */
static inline __attribute__((always_inline)) const char *
lex_number_inline(const char *p, const char *end, struct ev_value *v)
{
    const char *start = p, *first;
    uint64_t m = 0;
    int neg = 0;

    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    first = p;
    if (p == end || !is_digit(*p))
        return NULL;
    if (*p == '0') {
        if (++p < end && is_digit(*p))
            return NULL; /* leading zero */
    } else {
        /* 19 digits always fit in uint64; timestamps (13 digits) take the first 8 at once */
        const char *stop = end - p > 19 ? p + 19 : end;
        if (end - p >= 8 && eight_digits(load8(p))) {
            m = eight_digits_value(load8(p));
            p += 8;
        }
        for (; p < stop && is_digit(*p); p++)
            m = m * 10 + (uint64_t)(*p - '0');
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
        return lex_real(start, end, v);
    /* a 20-digit integer is at least 10^19 > 2^63: out of range either way */
    if (p - first > 19 || m > (uint64_t)INT64_MAX + (uint64_t)neg)
        return NULL;
    v->kind = EVV_INT;
    v->u.i = neg ? (m ? -(int64_t)(m - 1) - 1 : 0) : (int64_t)m;
    return p;
}

/* The same, out of line: for numbers in skipped values. */
static const char *lex_number(const char *p, const char *end, struct ev_value *v)
{
    return lex_number_inline(p, end, v);
}

static const char *skip_value(const struct scan *s, const char *p, int depth);

static int seen(const struct span *keys, size_t n, struct span k)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i].n == k.n && memcmp(keys[i].p, k.p, k.n) == 0)
            return 1;
    return 0;
}

/* An object inside an ignored value or ema items (p at '{'): checked as jansson would, not
 * kept. */
static const char *skip_object(const struct scan *s, const char *p, int depth)
{
    const char *end = s->end;
    struct span keys[KEYS_MAX];
    size_t n = 0;
    if (depth > SKIP_DEPTH)
        return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    for (;;) {
        if (p == end || *p != '"' || n == KEYS_MAX || !(p = lex_string(s, p, &keys[n])) ||
            seen(keys, n, keys[n]))
            return NULL;
        n++;
        p = skip_ws(p, end);
        if (p == end || *p != ':')
            return NULL;
        if (!(p = skip_value(s, skip_ws(p + 1, end), depth)))
            return NULL;
        p = skip_ws(p, end);
        if (p == end)
            return NULL;
        if (*p == '}')
            return p + 1;
        if (*p != ',')
            return NULL;
        p = skip_ws(p + 1, end);
    }
}

static const char *skip_array(const struct scan *s, const char *p, int depth)
{
    const char *end = s->end;
    if (depth > SKIP_DEPTH)
        return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']')
        return p + 1;
    for (;;) {
        if (!(p = skip_value(s, p, depth)))
            return NULL;
        p = skip_ws(p, end);
        if (p == end)
            return NULL;
        if (*p == ']')
            return p + 1;
        if (*p != ',')
            return NULL;
        p = skip_ws(p + 1, end);
    }
}

/* Any value (p at its first byte, after whitespace), checked and not kept. */
static const char *skip_value(const struct scan *s, const char *p, int depth)
{
    struct ev_value v;
    struct span str;
    if (p == s->end)
        return NULL;
    switch (*p) {
    case '"': return lex_string(s, p, &str);
    case '{': return skip_object(s, p, depth + 1);
    case '[': return skip_array(s, p, depth + 1);
    case 't': case 'f': case 'n': return lex_literal(p, s->end, &v);
    default: return lex_number(p, s->end, &v);
    }
}

static const char *scan_value(struct scan *s, const char *p, struct ev_value *v, int level);

/* An array whose elements are kept (p at '['): those of a key's value (level 0) in s->top,
 * those of an array inside it (level 1) in s->inner. Each array's elements are then
 * contiguous, because while one is being scanned nothing else is added to its pool. Arrays
 * nested deeper are never valid where the format reads arrays: jansson reports them. */
static const char *scan_array(struct scan *s, const char *p, struct ev_value *v, int level)
{
    const char *end = s->end;
    struct ev_value *pool = level == 0 ? s->top : s->inner;
    size_t *used = level == 0 ? &s->ntop : &s->ninner;
    size_t cap = level == 0 ? TOP_MAX : INNER_MAX, first = *used;
    if (level > 1)
        return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') {
        p++;
    } else {
        for (;;) {
            if (*used == cap || !(p = scan_value(s, p, &pool[*used], level + 1)))
                return NULL;
            ++*used;
            p = skip_ws(p, end);
            if (p == end)
                return NULL;
            if (*p == ']') {
                p++;
                break;
            }
            if (*p != ',')
                return NULL;
            p = skip_ws(p + 1, end);
        }
    }
    v->kind = EVV_ARRAY;
    v->u.a.h = pool + first;
    v->u.a.n = *used - first;
    return p;
}

/* A value that is kept (p at its first byte, after whitespace); inlined where the values
 * of keys are read, with the lexers of strings and numbers in it. */
static inline __attribute__((always_inline)) const char *
scan_value_inline(struct scan *s, const char *p, struct ev_value *v, int level)
{
    struct span str;
    if (p == s->end)
        return NULL;
    switch (*p) {
    case '"':
        if (!(p = lex_string_inline(s, p, &str)))
            return NULL;
        v->kind = EVV_STRING;
        v->u.s.p = str.p;
        v->u.s.n = str.n;
        return p;
    case '[': return scan_array(s, p, v, level);
    case '{': v->kind = EVV_OBJECT; return skip_object(s, p, 1);
    case 't': case 'f': case 'n': return lex_literal(p, s->end, v);
    default: return lex_number_inline(p, s->end, v);
    }
}

/* The same, out of line: for array elements. */
static const char *scan_value(struct scan *s, const char *p, struct ev_value *v, int level)
{
    return scan_value_inline(s, p, v, level);
}

/* The key whose quoted name and colon, with no whitespace between, are at p ('"'), with
 * *after set past the colon; or -1 for anything else (another key, whitespace, an escape),
 * which the caller then reads the general way. p has 16 bytes after it, so every
 * comparison stays in the line: each has a constant length, which compilers turn into
 * one or two loads and compares. Keys that cannot appear here are still read right, the
 * slower way; tests/unit/test_event_fast.c checks every key goes through this path. */
static inline int key_at(const char *p, const char **after)
{
#define AT(lit, k)                                                                            \
    if (memcmp(p, lit, sizeof lit - 1) == 0) {                                                \
        *after = p + sizeof lit - 1;                                                          \
        return k;                                                                             \
    }
    switch (p[1]) {
    case 't': AT("\"ts\":", EVK_TS) AT("\"type\":", EVK_TYPE) AT("\"tz\":", EVK_TZ) break;
    case 'p':
        AT("\"participant\":", EVK_PARTICIPANT) AT("\"prompt\":", EVK_PROMPT)
        AT("\"pct\":", EVK_PCT) break;
    case 's':
        AT("\"seq\":", EVK_SEQ) AT("\"source\":", EVK_SOURCE) AT("\"state\":", EVK_STATE)
        AT("\"steps\":", EVK_STEPS) break;
    case 'a': AT("\"app\":", EVK_APP) break;
    case 'i': AT("\"items\":", EVK_ITEMS) AT("\"interval_s\":", EVK_INTERVAL_S) break;
    case 'm': AT("\"module\":", EVK_MODULE) break;
    case 'n': AT("\"nudge\":", EVK_NUDGE) break;
    case 'e': AT("\"epoch_s\":", EVK_EPOCH_S) break;
    case 'c': AT("\"counts\":", EVK_COUNTS) break;
    case 'h': AT("\"hz\":", EVK_HZ) break;
    case 'g': AT("\"g\":", EVK_G) break;
    case 'b': AT("\"bpm\":", EVK_BPM) break;
    case 'r': AT("\"rr_ms\":", EVK_RR_MS) break;
    default: break;
    }
    return -1;
#undef AT
}

/* The event object and nothing but whitespace after it. */
static int scan_event(struct scan *s, struct ev_fields *f)
{
    const char *end = s->end, *p = skip_ws(s->begin, end);
    struct span unknown[KEYS_MAX], key;
    size_t n_unknown = 0;
    if (p == end || *p != '{')
        return -1;
    p = skip_ws(p + 1, end);
    for (;;) {
        const char *after;
        int k;
        if (p == end || *p != '"')
            return -1;
        if (end - p >= 16 && (k = key_at(p, &after)) >= 0) {
            p = skip_ws(after, end);
        } else {
            if (!(p = lex_string(s, p, &key)))
                return -1;
            p = skip_ws(p, end);
            if (p == end || *p != ':')
                return -1;
            p = skip_ws(p + 1, end);
            k = ev_key_from_name(key.p, key.n);
        }
        if (k >= 0) {
            if (f->present >> k & 1 || !(p = scan_value_inline(s, p, &f->v[k], 0)))
                return -1; /* a duplicate, or a value this path does not take */
            f->present |= UINT32_C(1) << k;
        } else {
            if (n_unknown == KEYS_MAX || seen(unknown, n_unknown, key))
                return -1;
            unknown[n_unknown++] = key;
            if (!(p = skip_value(s, p, 1)))
                return -1;
        }
        p = skip_ws(p, end);
        if (p == end)
            return -1;
        if (*p == '}')
            break;
        if (*p != ',')
            return -1;
        p = skip_ws(p + 1, end);
    }
    return skip_ws(p + 1, end) == end ? 0 : -1;
}

static void pool_at(const struct ev_value *array, size_t i, struct ev_value *out)
{
    *out = ((const struct ev_value *)array->u.a.h)[i];
}

int ev_parse_fast(const char *line, size_t len, struct event *ev, float (*scratch)[3])
{
    struct scan s;
    struct ev_fields f;
    const char *why;

    if (!line || len > EV_LINE_MAX)
        return 0;
    if (len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) { /* as ev_parse_json_slow() */
        line += 3;
        len -= 3;
    }
    s.begin = line;
    s.end = line + len;
    s.ntop = s.ninner = 0;
    f.present = 0;
    f.at = pool_at;
    if (scan_event(&s, &f))
        return 0;
    memset(ev, 0, sizeof *ev);
    return ev_from_fields(&f, ev, scratch, &why) == 0;
}
