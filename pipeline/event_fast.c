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

struct scan {
    const char *p, *end;
    size_t ntop, ninner;
    struct ev_value top[TOP_MAX], inner[INNER_MAX]; /* array elements, see scan_array() */
};

/* JSON whitespace: exactly these four, as in jansson. */
static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Consumes c if it is the next byte after whitespace. */
static int eat(struct scan *s, char c)
{
    skip_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

static int next_is(struct scan *s, char c)
{
    skip_ws(s);
    return s->p < s->end && *s->p == c;
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

/* A string without escapes or control characters; s->p is at the opening quote. */
/* 1 if any of the 8 bytes of w is a backslash, a control character or non-ASCII: the bytes
 * inside a string the lexer must look at one by one. */
static int swar_special(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t b = w ^ (ones * '\\');
    uint64_t zero_b = (b - ones) & ~b;
    uint64_t ctl = (w - ones * 0x20) & ~w;
    return ((zero_b | ctl | w) & high) != 0;
}

/* A string: its end is the first quote (found with memchr; no byte of a multi-byte UTF-8
 * sequence can be a quote), then its bytes are checked, eight at a time while they are plain. */
static int lex_string(struct scan *s, struct span *out)
{
    const unsigned char *start = (const unsigned char *)s->p + 1;
    const unsigned char *end = (const unsigned char *)s->end;
    const unsigned char *q = memchr(start, '"', (size_t)(end - start));
    if (!q)
        return -1;
    const unsigned char *p = start;
    uint64_t w;
    while (q - p >= 8) {
        memcpy(&w, p, 8);
        if (swar_special(w))
            break;
        p += 8;
    }
    if (p < q && q - start >= 8 && q - p < 8) { /* the tail: the last 8 bytes, overlapping */
        memcpy(&w, q - 8, 8);
        if (!swar_special(w))
            p = q;
    }
    while (p < q) {
        unsigned c = *p;
        if (c < 0x20 || c == '\\')
            return -1;
        if (c < 0x80) {
            p++;
        } else {
            size_t n = utf8_len(p, q); /* a sequence cannot run into the quote */
            if (!n)
                return -1;
            p += n;
        }
    }
    out->p = (const char *)start;
    out->n = (size_t)(q - start);
    s->p = (const char *)q + 1;
    return 0;
}

static int lex_literal(struct scan *s, struct ev_value *v)
{
    static const char *const words[] = {"true", "false", "null"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(s->end - s->p) >= n && memcmp(s->p, words[i], n) == 0) {
            s->p += n;
            v->kind = EVV_LITERAL;
            return 0;
        }
    }
    return -1;
}

static int is_digit(const char *p, const char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

/* The powers of ten that are exact doubles: 10^k = 5^k * 2^k, and 5^k < 2^53 up to k = 22. */
static const double exact_pow10[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* A JSON number, with jansson's meaning: without '.', 'e' or 'E' an integer (strtoll, which
 * must not overflow), otherwise a real (strtod, which must not overflow to infinity;
 * underflow gives 0 or a subnormal, as there). Reals whose digits form an integer m <= 2^53
 * and whose decimal exponent e has |e| <= 22 are converted as m * 10^e or m / 10^-e: both
 * operands are exact, so the one rounding gives the correctly rounded value, which is what
 * glibc's strtod returns too (Clinger's fast path). Not where arithmetic may carry excess
 * precision (FLT_EVAL_METHOD != 0, x87): there strtod does it all. */
static int lex_number(struct scan *s, struct ev_value *v)
{
    const char *p = s->p, *end = s->end, *start = p;
    uint64_t m = 0;
    int neg = 0, real = 0, digits = 0, frac = 0;
    long exp = 0;

    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (!is_digit(p, end))
        return -1;
    if (*p == '0') {
        if (is_digit(++p, end))
            return -1; /* leading zero */
    } else {
        for (; is_digit(p, end); p++, digits++)
            if (digits < 19) /* 19 digits always fit in uint64 */
                m = m * 10 + (uint64_t)(*p - '0');
    }
    if (p < end && *p == '.') {
        real = 1;
        if (!is_digit(++p, end))
            return -1;
        for (; is_digit(p, end); p++, digits++, frac++)
            if (digits < 19)
                m = m * 10 + (uint64_t)(*p - '0');
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        real = 1;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (!is_digit(p, end))
            return -1;
        for (; is_digit(p, end); p++)
            if (exp < 100000)
                exp = exp * 10 + (*p - '0');
        if (eneg)
            exp = -exp;
    }
    s->p = p;

    if (!real) {
        /* a 20-digit integer is at least 10^19 > 2^63: out of range either way */
        if (digits > 19 || m > (uint64_t)INT64_MAX + (uint64_t)neg)
            return -1;
        v->kind = EVV_INT;
        v->u.i = neg ? (m ? -(int64_t)(m - 1) - 1 : 0) : (int64_t)m;
        return 0;
    }
    v->kind = EVV_REAL;
    long e10 = exp - frac;
    if (FLT_EVAL_METHOD == 0 && digits <= 19 && m <= (UINT64_C(1) << 53) && e10 >= -22 &&
        e10 <= 22) {
        double d = (double)m;
        d = e10 < 0 ? d / exact_pow10[-e10] : d * exact_pow10[e10];
        v->u.d = neg ? -d : d;
        return 0;
    }
    /* the rest as jansson does it; a locale whose decimal point is not '.' ends the
     * conversion early, which is caught here and left to jansson too */
    char buf[NUMBER_MAX + 1], *stop;
    size_t n = (size_t)(p - start);
    if (n > NUMBER_MAX)
        return -1;
    memcpy(buf, start, n);
    buf[n] = 0;
    v->u.d = strtod(buf, &stop);
    return stop == buf + n && !isinf(v->u.d) ? 0 : -1;
}

static int skip_value(struct scan *s, int depth);

static int seen(const struct span *keys, size_t n, struct span k)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i].n == k.n && memcmp(keys[i].p, k.p, k.n) == 0)
            return 1;
    return 0;
}

/* An object inside an ignored value or ema items: checked as jansson would, not kept. */
static int skip_object(struct scan *s, int depth)
{
    struct span keys[KEYS_MAX];
    size_t n = 0;
    if (depth > SKIP_DEPTH)
        return -1;
    s->p++;
    if (eat(s, '}'))
        return 0;
    do {
        if (!next_is(s, '"') || n == KEYS_MAX || lex_string(s, &keys[n]) ||
            seen(keys, n, keys[n]))
            return -1;
        n++;
        if (!eat(s, ':') || skip_value(s, depth))
            return -1;
    } while (eat(s, ','));
    return eat(s, '}') ? 0 : -1;
}

static int skip_array(struct scan *s, int depth)
{
    if (depth > SKIP_DEPTH)
        return -1;
    s->p++;
    if (eat(s, ']'))
        return 0;
    do {
        if (skip_value(s, depth))
            return -1;
    } while (eat(s, ','));
    return eat(s, ']') ? 0 : -1;
}

static int skip_value(struct scan *s, int depth)
{
    struct ev_value v;
    struct span str;
    skip_ws(s);
    if (s->p == s->end)
        return -1;
    switch (*s->p) {
    case '"': return lex_string(s, &str);
    case '{': return skip_object(s, depth + 1);
    case '[': return skip_array(s, depth + 1);
    case 't': case 'f': case 'n': return lex_literal(s, &v);
    default: return lex_number(s, &v);
    }
}

static int scan_value(struct scan *s, struct ev_value *v, int level);

/* An array whose elements are kept: those of a key's value (level 0) in s->top, those of
 * an array inside it (level 1) in s->inner. Each array's elements are then contiguous,
 * because while one is being scanned nothing else is added to its pool. Arrays nested
 * deeper are never valid where the format reads arrays: jansson reports them. */
static int scan_array(struct scan *s, struct ev_value *v, int level)
{
    struct ev_value *pool = level == 0 ? s->top : s->inner;
    size_t *used = level == 0 ? &s->ntop : &s->ninner;
    size_t cap = level == 0 ? TOP_MAX : INNER_MAX, first = *used;
    if (level > 1)
        return -1;
    s->p++;
    if (!eat(s, ']')) {
        do {
            if (*used == cap || scan_value(s, &pool[*used], level + 1))
                return -1;
            ++*used;
        } while (eat(s, ','));
        if (!eat(s, ']'))
            return -1;
    }
    v->kind = EVV_ARRAY;
    v->u.a.h = pool + first;
    v->u.a.n = *used - first;
    return 0;
}

static int scan_value(struct scan *s, struct ev_value *v, int level)
{
    struct span str;
    skip_ws(s);
    if (s->p == s->end)
        return -1;
    switch (*s->p) {
    case '"':
        if (lex_string(s, &str))
            return -1;
        v->kind = EVV_STRING;
        v->u.s.p = str.p;
        v->u.s.n = str.n;
        return 0;
    case '[': return scan_array(s, v, level);
    case '{': v->kind = EVV_OBJECT; return skip_object(s, 1);
    case 't': case 'f': case 'n': return lex_literal(s, v);
    default: return lex_number(s, v);
    }
}

/* The event object and nothing but whitespace after it. */
static int scan_event(struct scan *s, struct ev_fields *f)
{
    struct span unknown[KEYS_MAX], key;
    size_t n_unknown = 0;
    if (!eat(s, '{'))
        return -1;
    do {
        if (!next_is(s, '"') || lex_string(s, &key) || !eat(s, ':'))
            return -1;
        int k = ev_key_from_name(key.p, key.n);
        if (k >= 0) {
            if (f->v[k].kind != EVV_ABSENT || scan_value(s, &f->v[k], 0))
                return -1; /* a duplicate, or a value this path does not take */
        } else {
            if (n_unknown == KEYS_MAX || seen(unknown, n_unknown, key))
                return -1;
            unknown[n_unknown++] = key;
            if (skip_value(s, 1))
                return -1;
        }
    } while (eat(s, ','));
    if (!eat(s, '}'))
        return -1;
    skip_ws(s);
    return s->p == s->end ? 0 : -1;
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
    s.p = line;
    s.end = line + len;
    s.ntop = s.ninner = 0;
    memset(f.v, 0, sizeof f.v);
    f.at = pool_at;
    if (scan_event(&s, &f))
        return 0;
    memset(ev, 0, sizeof *ev);
    return ev_from_fields(&f, ev, scratch, &why) == 0;
}
