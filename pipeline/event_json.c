/* Parsing of engaged event lines (spec §3; user documentation in docs/events.md).
 *
 * Two parsers feed one set of checks. ev_parse_fast() (event_fast.c) takes the common flat
 * lines without allocating; everything else goes through jansson, which does the JSON
 * (RFC 8259 syntax, UTF-8 validation, number range, nesting depth) and words the syntax
 * errors. Either way the object ends up as a struct ev_fields, and ev_from_fields() below
 * maps it onto struct event and enforces the format's own rules. Every rejection names the
 * field and, where it helps, quotes the value, because the reason ends up in front of study
 * staff as `FILE:LINE: reason` and in ingest acknowledgements.
 *
 * jansson flags, and why:
 *   JSON_REJECT_DUPLICATES  a repeated key means the writer is broken, and parsers disagree on
 *                           which copy wins; a recording must read the same everywhere.
 *   no JSON_DISABLE_EOF_CHECK  anything after the object (a second object, garbage from a
 *                           torn write) rejects the line instead of being silently dropped.
 *   JSON_DECODE_ANY         so that valid JSON that is not an object ("42", "null") is told
 *                           apart from text that is not JSON at all.
 *   no JSON_DECODE_INT_AS_REAL  ts and seq stay exact 64-bit integers.
 *   no JSON_ALLOW_NUL       "\u0000" in a string is rejected: ids and names are C strings.
 * jansson refuses numbers that overflow (1e400, integers beyond int64) and nesting deeper
 * than JSON_PARSER_MAX_DEPTH (2048), so neither can reach the checks. */
#include "pipeline/event.h"
#include "pipeline/event_fast.h"
#include "pipeline/record.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define EXACT_INT_LIMIT 9007199254740992.0 /* 2^53: beyond it a real is not an exact integer */
#define ACCEL_G_LIMIT 1000.0               /* |g|; also keeps float conversion finite */
#define RR_MS_MAX 60000.0

/* Failure with a formatted reason kept in the event (see event.h). */
__attribute__((format(printf, 3, 4)))
static int fail(struct event *ev, const char **why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->u.err.why, sizeof ev->u.err.why, fmt, ap);
    va_end(ap);
    *why = ev->u.err.why;
    return -EINVAL;
}

/* Failure with a fixed reason. */
static int fail_lit(const char **why, const char *reason, int err)
{
    *why = reason;
    return err;
}

/* Quote input text in a reason: printable ASCII only, so reasons are safe on a terminal and
 * inside a JSON acknowledgement whatever the line contained; long values are cut. */
static const char *printable(const char *s, size_t n, char *buf, size_t cap)
{
    size_t i = 0;
    for (; i < n && i + 4 < cap; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (i < n) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = 0;
    return buf;
}

static int fail_json(struct event *ev, const char **why, const char *line, size_t len,
                     const json_error_t *err, int bom)
{
    char text[96];
    int col = err->column + bom, byte = err->position + 3 * bom;
    size_t i;
    printable(err->text, strlen(err->text), text, sizeof text);
    for (i = 0; i < len && line[i] && strchr(" \t\r\n", line[i]); i++)
        ;
    if (i == len)
        return fail_lit(why, "empty line", -EINVAL);
    const char *nul = memchr(line, 0, len);
    if (nul)
        return fail(ev, why, "NUL byte at byte %zu", (size_t)(nul - line) + 1 + 3 * bom);

    switch (json_error_code(err)) {
    case json_error_out_of_memory:
        return fail_lit(why, "out of memory", -ENOMEM);
    case json_error_stack_overflow:
        return fail_lit(why, "JSON nested too deeply (more than 2048 levels)", -EINVAL);
    case json_error_invalid_utf8:
        /* jansson's position counts the bytes it decoded: the bad one is the next */
        return fail(ev, why, "invalid UTF-8 at byte %d", byte + 1);
    case json_error_numeric_overflow:
        return fail(ev, why, "number too large at column %d (%s)", col, text);
    case json_error_duplicate_key:
        return fail(ev, why, "duplicate key at column %d (%s)", col, text);
    case json_error_null_character:
        return fail(ev, why, "\\u0000 in a string at column %d", col);
    case json_error_premature_end_of_input:
        return fail(ev, why, "truncated JSON at column %d (%s)", col, text);
    case json_error_end_of_input_expected:
        return fail(ev, why, "text after the JSON object at column %d", col);
    default:
        /* jansson's only "invalid Unicode" case: a \uD800-\uDFFF escape not forming a
         * surrogate pair, which has no UTF-8 encoding */
        if (strncmp(err->text, "invalid Unicode", 15) == 0)
            return fail(ev, why, "invalid UTF-8: lone surrogate escape at column %d (%s)", col,
                        text);
        return fail(ev, why, "invalid JSON at column %d: %s", col, text);
    }
}

/* ---- typed field access ---- */

static const struct ev_value *field(const struct ev_fields *f, enum ev_key k)
{
    return f->present >> k & 1 ? &f->v[k] : NULL;
}

static int missing(struct event *ev, const char **why, enum ev_key k)
{
    return fail(ev, why, "missing field \"%s\"", ev_key_name(k));
}

/* Integers: JSON integers, and reals with no fractional part below 2^53 (1.0, 1e3). Some
 * tools (pandas with a missing value in the column, spreadsheets) write every number as a
 * real; the value is still exactly an integer, so refusing it would only lose data. */
static int to_i64(struct event *ev, const char **why, const struct ev_value *v, const char *key,
                  int64_t lo, int64_t hi, const char *range, int64_t *out)
{
    char num[40];
    int64_t i = 0;
    if (v->kind == EVV_INT) {
        i = v->u.i;
    } else if (v->kind == EVV_REAL) {
        double d = v->u.d;
        if (d != floor(d))
            return fail(ev, why, "\"%s\" must be an integer", key);
        if (fabs(d) >= EXACT_INT_LIMIT) {
            fmt_number(d, num, sizeof num);
            if (d < (double)lo || d > (double)hi)
                return fail(ev, why, "%s %s out of range (%s)", key, num, range);
            return fail(ev, why, "\"%s\" %s is a real beyond 2^53; write it as an integer", key,
                        num);
        }
        i = (int64_t)d;
    } else {
        return fail(ev, why, "\"%s\" must be an integer", key);
    }
    if (i < lo || i > hi)
        return fail(ev, why, "%s %lld out of range (%s)", key, (long long)i, range);
    *out = i;
    return 0;
}

static int get_i64(struct event *ev, const char **why, const struct ev_fields *f, enum ev_key k,
                   int64_t lo, int64_t hi, const char *range, int64_t *out)
{
    const struct ev_value *v = field(f, k);
    if (v && v->kind == EVV_INT && v->u.i >= lo && v->u.i <= hi) { /* the common case */
        *out = v->u.i;
        return 0;
    }
    return v ? to_i64(ev, why, v, ev_key_name(k), lo, hi, range, out) : missing(ev, why, k);
}

static int get_int(struct event *ev, const char **why, const struct ev_fields *f, enum ev_key k,
                   int lo, int hi, const char *range, int *out)
{
    int64_t i = 0;
    int r = get_i64(ev, why, f, k, lo, hi, range, &i);
    if (r == 0)
        *out = (int)i;
    return r;
}

/* The value of any number, as json_number_value(); -1 if v is not one. */
static int number(const struct ev_value *v, double *d)
{
    if (v->kind == EVV_INT)
        *d = (double)v->u.i;
    else if (v->kind == EVV_REAL)
        *d = v->u.d;
    else
        return -1;
    return 0;
}

/* A number within [lo, hi] (lo excluded when lo_open). Neither parser yields inf or NaN. */
static int to_num(struct event *ev, const char **why, const struct ev_value *v, const char *key,
                  double lo, double hi, int lo_open, const char *range, double *out)
{
    char num[40];
    double d;
    if (number(v, &d))
        return fail(ev, why, "\"%s\" must be a number", key);
    if (!isfinite(d) || d < lo || (lo_open && d == lo) || d > hi) {
        fmt_number(d, num, sizeof num);
        return fail(ev, why, "%s %s out of range (%s)", key, num, range);
    }
    *out = d;
    return 0;
}

static int get_num(struct event *ev, const char **why, const struct ev_fields *f, enum ev_key k,
                   double lo, double hi, int lo_open, const char *range, double *out)
{
    const struct ev_value *v = field(f, k);
    return v ? to_num(ev, why, v, ev_key_name(k), lo, hi, lo_open, range, out)
             : missing(ev, why, k);
}

static int get_string(struct event *ev, const char **why, const struct ev_fields *f,
                      enum ev_key k, const char **out, size_t *len)
{
    const struct ev_value *v = field(f, k);
    if (!v)
        return missing(ev, why, k);
    if (v->kind != EVV_STRING)
        return fail(ev, why, "\"%s\" must be a string", ev_key_name(k));
    *out = v->u.s.p;
    *len = v->u.s.n;
    return 0;
}

static int get_id(struct event *ev, const char **why, const struct ev_fields *f, enum ev_key k,
                  char *dst)
{
    const char *s = NULL;
    size_t n = 0;
    int r = get_string(ev, why, f, k, &s, &n);
    if (r)
        return r;
    if (!ev_copy_id(dst, s, n))
        return fail(ev, why, "%s must match [A-Za-z0-9_-]{1,64}", ev_key_name(k));
    return 0;
}

/* 1 if any of the n bytes at s is a control character (below 0x20, or 0x7f); eight at a
 * time: a byte is flagged if it is below 0x20 or (xored with 0x7f) zero, and bytes >= 0x80
 * never are. */
static int has_control(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w, d;
        memcpy(&w, s + i, 8);
        d = w ^ (ones * 0x7f);
        if ((((w - ones * 0x20) & ~w) | ((d - ones) & ~d)) & high)
            return 1;
    }
    for (; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
}

/* Free-form names (package, prompt, module and nudge ids): any UTF-8 except control
 * characters, which would only be corruption here and break line-oriented exports. */
static int get_name(struct event *ev, const char **why, const struct ev_fields *f,
                    enum ev_key k, char *dst)
{
    const char *s = NULL;
    size_t n = 0;
    int r = get_string(ev, why, f, k, &s, &n);
    if (r)
        return r;
    if (n == 0)
        return fail(ev, why, "\"%s\" must not be empty", ev_key_name(k));
    if (n > EV_NAME_MAX)
        return fail(ev, why, "\"%s\" longer than %d bytes", ev_key_name(k), EV_NAME_MAX);
    if (has_control(s, n))
        return fail(ev, why, "\"%s\" contains a control character", ev_key_name(k));
    memcpy(dst, s, n);
    dst[n] = 0;
    return 0;
}

/* A `state` string from the type's table. */
static int get_state(struct event *ev, const char **why, const struct ev_fields *f, int *out)
{
    char q[40];
    const char *s = NULL;
    size_t n = 0;
    int r = get_string(ev, why, f, EVK_STATE, &s, &n);
    if (r)
        return r;
    int st = ev_state_from_bytes(ev->type, s, n);
    if (st < 0)
        return fail(ev, why, "unknown %s state \"%s\"", ev_type_name(ev->type),
                    printable(s, n, q, sizeof q));
    *out = st;
    return 0;
}

/* ---- envelope ---- */

static int parse_envelope(const struct ev_fields *f, struct event *ev, const char **why)
{
    char q[40];
    const char *s = NULL;
    size_t n = 0;
    int r;

    r = get_i64(ev, why, f, EVK_TS, EV_TS_MIN, EV_TS_MAX - 1,
                "1900-01-01T00:00:00Z <= ts < 2200-01-01T00:00:00Z", &ev->ts);
    if (r)
        return r;
    r = get_id(ev, why, f, EVK_PARTICIPANT, ev->participant);
    if (r)
        return r;
    if (field(f, EVK_SOURCE)) {
        r = get_id(ev, why, f, EVK_SOURCE, ev->source);
        if (r)
            return r;
    } else {
        memcpy(ev->source, "replay", sizeof "replay");
    }
    if (field(f, EVK_SEQ)) {
        r = get_i64(ev, why, f, EVK_SEQ, 0, INT64_MAX, "0..2^63-1", &ev->seq);
        if (r)
            return r;
        ev->has_seq = 1;
    }
    r = get_string(ev, why, f, EVK_TYPE, &s, &n);
    if (r)
        return r;
    int t = ev_type_from_bytes(s, n);
    if (t < 0) {
        fail(ev, why, "unknown type \"%s\"", printable(s, n, q, sizeof q));
        return -ENOENT;
    }
    ev->type = (enum ev_type)t;
    return 0;
}

/* ---- per-type bodies ---- */

static int parse_screen(const struct ev_fields *f, struct event *ev, const char **why)
{
    const struct ev_value *v = field(f, EVK_STATE);
    int64_t code;
    /* AWARE and RAPIDS exports store the state as 0..3 in the same order as our names */
    if (v && (v->kind == EVV_INT || v->kind == EVV_REAL)) {
        int r = to_i64(ev, why, v, "state", 0, 3, "AWARE codes 0..3", &code);
        if (r == 0)
            ev->u.screen.state = (int)code;
        return r;
    }
    return get_state(ev, why, f, &ev->u.screen.state);
}

static int parse_app(const struct ev_fields *f, struct event *ev, const char **why)
{
    int r = get_name(ev, why, f, EVK_APP, ev->u.app.app);
    if (r)
        return r;
    if (!field(f, EVK_STATE)) {
        ev->u.app.foreground = 1;
        return 0;
    }
    return get_state(ev, why, f, &ev->u.app.foreground);
}

static int parse_ema(const struct ev_fields *f, struct event *ev, const char **why)
{
    int r = get_name(ev, why, f, EVK_PROMPT, ev->u.ema.prompt);
    if (r)
        return r;
    r = get_state(ev, why, f, &ev->u.ema.state);
    if (r)
        return r;
    /* answers are validated for shape only: no feature reads them yet (docs/events.md) */
    const struct ev_value *items = field(f, EVK_ITEMS);
    if (items && items->kind != EVV_OBJECT)
        return fail_lit(why, "ema \"items\" must be an object", -EINVAL);
    return 0;
}

static int parse_module(const struct ev_fields *f, struct event *ev, const char **why)
{
    int r = get_name(ev, why, f, EVK_MODULE, ev->u.module.module);
    return r ? r : get_state(ev, why, f, &ev->u.module.completed);
}

static int parse_dwai(const struct ev_fields *f, struct event *ev, const char **why)
{
    static const char reason[] = "dwai items must be 6 integers 1..5";
    const struct ev_value *a = field(f, EVK_ITEMS);
    struct ev_value v;
    int64_t x;
    if (!a)
        return missing(ev, why, EVK_ITEMS);
    if (a->kind != EVV_ARRAY || a->u.a.n != 6)
        return fail_lit(why, reason, -EINVAL);
    for (size_t i = 0; i < 6; i++) {
        f->at(a, i, &v);
        if (to_i64(ev, why, &v, "items", 1, 5, "1..5", &x))
            return fail_lit(why, reason, -EINVAL);
        ev->u.dwai.items[i] = (int)x;
    }
    return 0;
}

static int parse_nudge_ack(const struct ev_fields *f, struct event *ev, const char **why)
{
    int r = get_name(ev, why, f, EVK_NUDGE, ev->u.nudge_ack.nudge);
    return r ? r : get_state(ev, why, f, &ev->u.nudge_ack.state);
}

static int parse_counts(const struct ev_fields *f, struct event *ev, const char **why)
{
    int r = get_int(ev, why, f, EVK_EPOCH_S, 1, 86400, "1..86400", &ev->u.counts.epoch_s);
    if (r)
        return r;
    /* epochs must tile the day so that they align with local midnight (spec §4) */
    if (86400 % ev->u.counts.epoch_s)
        return fail(ev, why, "epoch_s %d does not divide 86400", ev->u.counts.epoch_s);
    const struct ev_value *c = field(f, EVK_COUNTS);
    struct ev_value v;
    if (!c)
        return missing(ev, why, EVK_COUNTS);
    if (c->kind == EVV_ARRAY) {
        if (c->u.a.n != 3)
            return fail_lit(why, "per-axis counts must be 3 numbers [x,y,z]", -EINVAL);
        for (size_t k = 0; k < 3; k++) {
            f->at(c, k, &v);
            r = to_num(ev, why, &v, "counts", 0, INFINITY, 0, ">= 0", &ev->u.counts.axes[k]);
            if (r)
                return r;
        }
        ev->u.counts.triaxial = 1;
        ev->u.counts.counts = ev->u.counts.axes[1]; /* ActiGraph axis 1 = y, see event.h */
        return 0;
    }
    return to_num(ev, why, c, "counts", 0, INFINITY, 0, ">= 0", &ev->u.counts.counts);
}

static int parse_accel(const struct ev_fields *f, struct event *ev, const char **why,
                       float (*scratch)[3])
{
    int r = get_num(ev, why, f, EVK_HZ, 0, 10000, 1, "0 < hz <= 10000", &ev->u.accel.hz);
    if (r)
        return r;
    const struct ev_value *g = field(f, EVK_G);
    struct ev_value s, v;
    if (!g)
        return missing(ev, why, EVK_G);
    if (g->kind != EVV_ARRAY)
        return fail_lit(why, "\"g\" must be an array of [x,y,z] samples", -EINVAL);
    size_t n = g->u.a.n;
    if (n == 0 || n > EV_ACCEL_MAX)
        return fail(ev, why, "accel block has %zu samples (1..%d allowed)", n, EV_ACCEL_MAX);
    if (!scratch)
        return fail_lit(why, "accel events need a sample buffer (caller passed none)", -EINVAL);
    for (size_t i = 0; i < n; i++) {
        f->at(g, i, &s);
        if (s.kind != EVV_ARRAY || s.u.a.n != 3)
            return fail(ev, why, "accel sample %zu must be 3 numbers [x,y,z]", i);
        for (size_t k = 0; k < 3; k++) {
            double d;
            f->at(&s, k, &v);
            if (number(&v, &d))
                return fail(ev, why, "accel sample %zu must be 3 numbers [x,y,z]", i);
            if (!(fabs(d) <= ACCEL_G_LIMIT))
                return fail(ev, why, "accel sample %zu value out of range (|g| <= 1000)", i);
            scratch[i][k] = (float)d;
        }
    }
    ev->u.accel.n = n;
    ev->u.accel.g = (const float (*)[3])scratch;
    return 0;
}

static int parse_steps(const struct ev_fields *f, struct event *ev, const char **why)
{
    int r = get_num(ev, why, f, EVK_STEPS, 0, INFINITY, 0, ">= 0", &ev->u.steps.steps);
    return r ? r
             : get_int(ev, why, f, EVK_INTERVAL_S, 1, 86400, "1..86400",
                       &ev->u.steps.interval_s);
}

static int parse_hr(const struct ev_fields *f, struct event *ev, const char **why)
{
    int r = get_num(ev, why, f, EVK_BPM, 0, 300, 0, "0..300", &ev->u.hr.bpm);
    if (r)
        return r;
    const struct ev_value *rr = field(f, EVK_RR_MS);
    struct ev_value v;
    if (!rr)
        return 0;
    if (rr->kind != EVV_ARRAY)
        return fail_lit(why, "\"rr_ms\" must be an array of numbers", -EINVAL);
    size_t n = rr->u.a.n;
    if (n > EV_RR_MAX)
        return fail(ev, why, "rr_ms has %zu intervals (at most %d)", n, EV_RR_MAX);
    for (size_t i = 0; i < n; i++) {
        f->at(rr, i, &v);
        r = to_num(ev, why, &v, "rr_ms", 0, RR_MS_MAX, 1, "0 < rr_ms <= 60000",
                   &ev->u.hr.rr_ms[i]);
        if (r)
            return r;
    }
    ev->u.hr.n_rr = n;
    return 0;
}

static int parse_tz(const struct ev_fields *f, struct event *ev, const char **why)
{
    char q[40];
    const char *s = NULL;
    size_t n = 0;
    int r = get_string(ev, why, f, EVK_TZ, &s, &n);
    if (r)
        return r;
    if (!ev_valid_tz_name(s, n))
        return fail(ev, why,
                    "tz \"%s\" is not a plausible IANA zone name ([A-Za-z0-9_+/-], at most %d "
                    "bytes, no leading or trailing '/')",
                    printable(s, n, q, sizeof q), EV_TZ_MAX);
    memcpy(ev->u.tz.tz, s, n);
    ev->u.tz.tz[n] = 0;
    return 0;
}

int ev_from_fields(const struct ev_fields *f, struct event *ev, float (*scratch)[3],
                   const char **why)
{
    int r = parse_envelope(f, ev, why);
    if (r)
        return r;
    switch (ev->type) {
    case EV_SCREEN: return parse_screen(f, ev, why);
    case EV_APP: return parse_app(f, ev, why);
    case EV_EMA: return parse_ema(f, ev, why);
    case EV_MODULE: return parse_module(f, ev, why);
    case EV_DWAI: return parse_dwai(f, ev, why);
    case EV_NUDGE_ACK: return parse_nudge_ack(f, ev, why);
    case EV_COUNTS: return parse_counts(f, ev, why);
    case EV_ACCEL: return parse_accel(f, ev, why, scratch);
    case EV_STEPS: return parse_steps(f, ev, why);
    case EV_HR: return parse_hr(f, ev, why);
    case EV_BATTERY:
        return get_num(ev, why, f, EVK_PCT, 0, 100, 0, "0..100", &ev->u.battery.pct);
    case EV_WEAR: return get_state(ev, why, f, &ev->u.wear.on);
    case EV_TZ: return parse_tz(f, ev, why);
    default: return fail_lit(why, "unknown type", -ENOENT);
    }
}

/* ---- the jansson path ---- */

static void value_from_json(const json_t *j, struct ev_value *v)
{
    memset(v, 0, sizeof *v);
    switch (j ? json_typeof(j) : JSON_NULL) {
    case JSON_INTEGER:
        v->kind = EVV_INT;
        v->u.i = json_integer_value(j);
        break;
    case JSON_REAL:
        v->kind = EVV_REAL;
        v->u.d = json_real_value(j);
        break;
    case JSON_STRING:
        v->kind = EVV_STRING;
        v->u.s.p = json_string_value(j);
        v->u.s.n = json_string_length(j);
        break;
    case JSON_ARRAY:
        v->kind = EVV_ARRAY;
        v->u.a.h = j;
        v->u.a.n = json_array_size(j);
        break;
    case JSON_OBJECT: v->kind = EVV_OBJECT; break;
    default: v->kind = EVV_LITERAL; break;
    }
}

static void json_at(const struct ev_value *array, size_t i, struct ev_value *out)
{
    value_from_json(json_array_get(array->u.a.h, i), out);
}

int ev_parse_json_slow(const char *line, size_t len, struct event *ev, float (*scratch)[3],
                       const char **why)
{
    const char *unused;
    json_error_t err;
    int bom = 0, r;

    if (!why)
        why = &unused;
    memset(ev, 0, sizeof *ev);
    if (len > EV_LINE_MAX)
        return fail_lit(why, "line longer than 1048576 bytes", -EMSGSIZE);
    /* spreadsheet exports start the file with a UTF-8 byte order mark; it carries nothing */
    if (len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
        line += 3;
        len -= 3;
        bom = 1;
    }
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!root)
        return fail_json(ev, why, line, len, &err, bom);
    if (!json_is_object(root)) {
        r = fail_lit(why, "event must be a JSON object", -EINVAL);
    } else {
        struct ev_fields f = {.at = json_at};
        const char *key;
        json_t *val;
        json_object_foreach(root, key, val) {
            int k = ev_key_from_name(key, strlen(key));
            if (k >= 0) {
                value_from_json(val, &f.v[k]);
                f.present |= UINT32_C(1) << k;
            }
        }
        r = ev_from_fields(&f, ev, scratch, why);
    }
    json_decref(root);
    return r;
}

int ev_parse_json(const char *line, size_t len, struct event *ev, float (*scratch)[3],
                  const char **why)
{
    if (ev_parse_fast(line, len, ev, scratch))
        return 0;
    return ev_parse_json_slow(line, len, ev, scratch, why);
}
