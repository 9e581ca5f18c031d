/* Parsing of engaged event lines (spec §3; user documentation in docs/events.md).
 *
 * jansson does the JSON (RFC 8259 syntax, UTF-8 validation, number range, nesting depth);
 * this file maps its tree onto struct event and enforces the format's own rules. Every
 * rejection names the field and, where it helps, quotes the value, because the reason ends
 * up in front of study staff as `FILE:LINE: reason` and in ingest acknowledgements.
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
 * than JSON_PARSER_MAX_DEPTH (2048), so neither can reach this code. */
#include "pipeline/event.h"
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
static const char *printable(const char *s, char *buf, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 4 < cap; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i]) {
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
    printable(err->text, text, sizeof text);
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

static int missing(struct event *ev, const char **why, const char *key)
{
    return fail(ev, why, "missing field \"%s\"", key);
}

/* Integers: JSON integers, and reals with no fractional part below 2^53 (1.0, 1e3). Some
 * tools (pandas with a missing value in the column, spreadsheets) write every number as a
 * real; the value is still exactly an integer, so refusing it would only lose data. */
static int to_i64(struct event *ev, const char **why, const json_t *v, const char *key,
                  int64_t lo, int64_t hi, const char *range, int64_t *out)
{
    char num[40];
    int64_t i = 0;
    if (json_is_integer(v)) {
        i = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
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

static int get_i64(struct event *ev, const char **why, const json_t *o, const char *key,
                   int64_t lo, int64_t hi, const char *range, int64_t *out)
{
    const json_t *v = json_object_get(o, key);
    return v ? to_i64(ev, why, v, key, lo, hi, range, out) : missing(ev, why, key);
}

static int get_int(struct event *ev, const char **why, const json_t *o, const char *key,
                   int lo, int hi, const char *range, int *out)
{
    int64_t i = 0;
    int r = get_i64(ev, why, o, key, lo, hi, range, &i);
    if (r == 0)
        *out = (int)i;
    return r;
}

/* A number within [lo, hi] (lo excluded when lo_open). jansson never yields inf or NaN. */
static int to_num(struct event *ev, const char **why, const json_t *v, const char *key,
                  double lo, double hi, int lo_open, const char *range, double *out)
{
    char num[40];
    if (!json_is_number(v))
        return fail(ev, why, "\"%s\" must be a number", key);
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || (lo_open && d == lo) || d > hi) {
        fmt_number(d, num, sizeof num);
        return fail(ev, why, "%s %s out of range (%s)", key, num, range);
    }
    *out = d;
    return 0;
}

static int get_num(struct event *ev, const char **why, const json_t *o, const char *key,
                   double lo, double hi, int lo_open, const char *range, double *out)
{
    const json_t *v = json_object_get(o, key);
    return v ? to_num(ev, why, v, key, lo, hi, lo_open, range, out) : missing(ev, why, key);
}

static int get_string(struct event *ev, const char **why, const json_t *o, const char *key,
                      const char **out, size_t *len)
{
    const json_t *v = json_object_get(o, key);
    if (!v)
        return missing(ev, why, key);
    if (!json_is_string(v))
        return fail(ev, why, "\"%s\" must be a string", key);
    *out = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

static int get_id(struct event *ev, const char **why, const json_t *o, const char *key,
                  char *dst)
{
    const char *s = NULL;
    size_t n = 0;
    int r = get_string(ev, why, o, key, &s, &n);
    if (r)
        return r;
    if (n > EV_ID_MAX || !ev_valid_id(s))
        return fail(ev, why, "%s must match [A-Za-z0-9_-]{1,64}", key);
    memcpy(dst, s, n + 1);
    return 0;
}

/* Free-form names (package, prompt, module and nudge ids): any UTF-8 except control
 * characters, which would only be corruption here and break line-oriented exports. */
static int get_name(struct event *ev, const char **why, const json_t *o, const char *key,
                    char *dst)
{
    const char *s = NULL;
    size_t n = 0;
    int r = get_string(ev, why, o, key, &s, &n);
    if (r)
        return r;
    if (n == 0)
        return fail(ev, why, "\"%s\" must not be empty", key);
    if (n > EV_NAME_MAX)
        return fail(ev, why, "\"%s\" longer than %d bytes", key, EV_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return fail(ev, why, "\"%s\" contains a control character", key);
    memcpy(dst, s, n + 1);
    return 0;
}

/* A `state` string from the type's table. */
static int get_state(struct event *ev, const char **why, const json_t *o, int *out)
{
    char q[40];
    const char *s = NULL;
    size_t n = 0;
    int r = get_string(ev, why, o, "state", &s, &n);
    if (r)
        return r;
    int st = ev_state_from_name(ev->type, s);
    if (st < 0)
        return fail(ev, why, "unknown %s state \"%s\"", ev_type_name(ev->type),
                    printable(s, q, sizeof q));
    *out = st;
    return 0;
}

/* ---- envelope ---- */

static int parse_envelope(const json_t *o, struct event *ev, const char **why)
{
    char q[40];
    const char *s = NULL;
    size_t n = 0;
    int r;

    r = get_i64(ev, why, o, "ts", EV_TS_MIN, EV_TS_MAX - 1,
                "1900-01-01T00:00:00Z <= ts < 2200-01-01T00:00:00Z", &ev->ts);
    if (r)
        return r;
    r = get_id(ev, why, o, "participant", ev->participant);
    if (r)
        return r;
    if (json_object_get(o, "source")) {
        r = get_id(ev, why, o, "source", ev->source);
        if (r)
            return r;
    } else {
        memcpy(ev->source, "replay", sizeof "replay");
    }
    if (json_object_get(o, "seq")) {
        r = get_i64(ev, why, o, "seq", 0, INT64_MAX, "0..2^63-1", &ev->seq);
        if (r)
            return r;
        ev->has_seq = 1;
    }
    r = get_string(ev, why, o, "type", &s, &n);
    if (r)
        return r;
    int t = ev_type_from_name(s);
    if (t < 0) {
        fail(ev, why, "unknown type \"%s\"", printable(s, q, sizeof q));
        return -ENOENT;
    }
    ev->type = (enum ev_type)t;
    return 0;
}

/* ---- per-type bodies ---- */

static int parse_screen(const json_t *o, struct event *ev, const char **why)
{
    const json_t *v = json_object_get(o, "state");
    int64_t code;
    /* AWARE and RAPIDS exports store the state as 0..3 in the same order as our names */
    if (v && json_is_number(v)) {
        int r = to_i64(ev, why, v, "state", 0, 3, "AWARE codes 0..3", &code);
        if (r == 0)
            ev->u.screen.state = (int)code;
        return r;
    }
    return get_state(ev, why, o, &ev->u.screen.state);
}

static int parse_app(const json_t *o, struct event *ev, const char **why)
{
    int r = get_name(ev, why, o, "app", ev->u.app.app);
    if (r)
        return r;
    if (!json_object_get(o, "state")) {
        ev->u.app.foreground = 1;
        return 0;
    }
    return get_state(ev, why, o, &ev->u.app.foreground);
}

static int parse_ema(const json_t *o, struct event *ev, const char **why)
{
    int r = get_name(ev, why, o, "prompt", ev->u.ema.prompt);
    if (r)
        return r;
    r = get_state(ev, why, o, &ev->u.ema.state);
    if (r)
        return r;
    /* answers are validated for shape only: no feature reads them yet (docs/events.md) */
    const json_t *items = json_object_get(o, "items");
    if (items && !json_is_object(items))
        return fail_lit(why, "ema \"items\" must be an object", -EINVAL);
    return 0;
}

static int parse_module(const json_t *o, struct event *ev, const char **why)
{
    int r = get_name(ev, why, o, "module", ev->u.module.module);
    return r ? r : get_state(ev, why, o, &ev->u.module.completed);
}

static int parse_dwai(const json_t *o, struct event *ev, const char **why)
{
    static const char reason[] = "dwai items must be 6 integers 1..5";
    const json_t *a = json_object_get(o, "items");
    int64_t x;
    if (!a)
        return missing(ev, why, "items");
    if (!json_is_array(a) || json_array_size(a) != 6)
        return fail_lit(why, reason, -EINVAL);
    for (size_t i = 0; i < 6; i++) {
        if (to_i64(ev, why, json_array_get(a, i), "items", 1, 5, "1..5", &x))
            return fail_lit(why, reason, -EINVAL);
        ev->u.dwai.items[i] = (int)x;
    }
    return 0;
}

static int parse_nudge_ack(const json_t *o, struct event *ev, const char **why)
{
    int r = get_name(ev, why, o, "nudge", ev->u.nudge_ack.nudge);
    return r ? r : get_state(ev, why, o, &ev->u.nudge_ack.state);
}

static int parse_counts(const json_t *o, struct event *ev, const char **why)
{
    int r = get_int(ev, why, o, "epoch_s", 1, 86400, "1..86400", &ev->u.counts.epoch_s);
    if (r)
        return r;
    /* epochs must tile the day so that they align with local midnight (spec §4) */
    if (86400 % ev->u.counts.epoch_s)
        return fail(ev, why, "epoch_s %d does not divide 86400", ev->u.counts.epoch_s);
    const json_t *c = json_object_get(o, "counts");
    if (!c)
        return missing(ev, why, "counts");
    if (json_is_array(c)) {
        if (json_array_size(c) != 3)
            return fail_lit(why, "per-axis counts must be 3 numbers [x,y,z]", -EINVAL);
        for (size_t k = 0; k < 3; k++) {
            r = to_num(ev, why, json_array_get(c, k), "counts", 0, INFINITY, 0, ">= 0",
                       &ev->u.counts.axes[k]);
            if (r)
                return r;
        }
        ev->u.counts.triaxial = 1;
        ev->u.counts.counts = ev->u.counts.axes[1]; /* ActiGraph axis 1 = y, see event.h */
        return 0;
    }
    return to_num(ev, why, c, "counts", 0, INFINITY, 0, ">= 0", &ev->u.counts.counts);
}

static int parse_accel(const json_t *o, struct event *ev, const char **why,
                       float (*scratch)[3])
{
    int r = get_num(ev, why, o, "hz", 0, 10000, 1, "0 < hz <= 10000", &ev->u.accel.hz);
    if (r)
        return r;
    const json_t *g = json_object_get(o, "g");
    if (!g)
        return missing(ev, why, "g");
    if (!json_is_array(g))
        return fail_lit(why, "\"g\" must be an array of [x,y,z] samples", -EINVAL);
    size_t n = json_array_size(g);
    if (n == 0 || n > EV_ACCEL_MAX)
        return fail(ev, why, "accel block has %zu samples (1..%d allowed)", n, EV_ACCEL_MAX);
    if (!scratch)
        return fail_lit(why, "accel events need a sample buffer (caller passed none)", -EINVAL);
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(g, i);
        if (!json_is_array(s) || json_array_size(s) != 3)
            return fail(ev, why, "accel sample %zu must be 3 numbers [x,y,z]", i);
        for (size_t k = 0; k < 3; k++) {
            const json_t *v = json_array_get(s, k);
            double d;
            if (!json_is_number(v))
                return fail(ev, why, "accel sample %zu must be 3 numbers [x,y,z]", i);
            d = json_number_value(v);
            if (!(fabs(d) <= ACCEL_G_LIMIT))
                return fail(ev, why, "accel sample %zu value out of range (|g| <= 1000)", i);
            scratch[i][k] = (float)d;
        }
    }
    ev->u.accel.n = n;
    ev->u.accel.g = (const float (*)[3])scratch;
    return 0;
}

static int parse_steps(const json_t *o, struct event *ev, const char **why)
{
    int r = get_num(ev, why, o, "steps", 0, INFINITY, 0, ">= 0", &ev->u.steps.steps);
    return r ? r
             : get_int(ev, why, o, "interval_s", 1, 86400, "1..86400",
                       &ev->u.steps.interval_s);
}

static int parse_hr(const json_t *o, struct event *ev, const char **why)
{
    int r = get_num(ev, why, o, "bpm", 0, 300, 0, "0..300", &ev->u.hr.bpm);
    if (r)
        return r;
    const json_t *rr = json_object_get(o, "rr_ms");
    if (!rr)
        return 0;
    if (!json_is_array(rr))
        return fail_lit(why, "\"rr_ms\" must be an array of numbers", -EINVAL);
    size_t n = json_array_size(rr);
    if (n > EV_RR_MAX)
        return fail(ev, why, "rr_ms has %zu intervals (at most %d)", n, EV_RR_MAX);
    for (size_t i = 0; i < n; i++) {
        r = to_num(ev, why, json_array_get(rr, i), "rr_ms", 0, RR_MS_MAX, 1, "0 < rr_ms <= 60000",
                   &ev->u.hr.rr_ms[i]);
        if (r)
            return r;
    }
    ev->u.hr.n_rr = n;
    return 0;
}

/* IANA names are also file names under /usr/share/zoneinfo: keep them to tzdata's own
 * alphabet so that a hostile name can never become a path outside it. Whether the zone
 * exists is for the pipeline to decide (the host's tzdata may be older than the data). */
static int valid_tz_name(const char *s, size_t n)
{
    if (n == 0 || n > EV_TZ_MAX || s[0] == '/' || s[n - 1] == '/' || strstr(s, "..") ||
        strstr(s, "//"))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-' || c == '/'))
            return 0;
    }
    return 1;
}

static int parse_tz(const json_t *o, struct event *ev, const char **why)
{
    char q[40];
    const char *s = NULL;
    size_t n = 0;
    int r = get_string(ev, why, o, "tz", &s, &n);
    if (r)
        return r;
    if (!valid_tz_name(s, n))
        return fail(ev, why,
                    "tz \"%s\" is not a plausible IANA zone name ([A-Za-z0-9_+/-], at most %d "
                    "bytes, no leading or trailing '/')",
                    printable(s, q, sizeof q), EV_TZ_MAX);
    memcpy(ev->u.tz.tz, s, n + 1);
    return 0;
}

static int parse_body(const json_t *o, struct event *ev, const char **why,
                      float (*scratch)[3])
{
    switch (ev->type) {
    case EV_SCREEN: return parse_screen(o, ev, why);
    case EV_APP: return parse_app(o, ev, why);
    case EV_EMA: return parse_ema(o, ev, why);
    case EV_MODULE: return parse_module(o, ev, why);
    case EV_DWAI: return parse_dwai(o, ev, why);
    case EV_NUDGE_ACK: return parse_nudge_ack(o, ev, why);
    case EV_COUNTS: return parse_counts(o, ev, why);
    case EV_ACCEL: return parse_accel(o, ev, why, scratch);
    case EV_STEPS: return parse_steps(o, ev, why);
    case EV_HR: return parse_hr(o, ev, why);
    case EV_BATTERY: return get_num(ev, why, o, "pct", 0, 100, 0, "0..100", &ev->u.battery.pct);
    case EV_WEAR: return get_state(ev, why, o, &ev->u.wear.on);
    case EV_TZ: return parse_tz(o, ev, why);
    default: return fail_lit(why, "unknown type", -ENOENT);
    }
}

int ev_parse_json(const char *line, size_t len, struct event *ev, float (*scratch)[3],
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
    if (!json_is_object(root))
        r = fail_lit(why, "event must be a JSON object", -EINVAL);
    else if ((r = parse_envelope(root, ev, why)) == 0)
        r = parse_body(root, ev, why, scratch);
    json_decref(root);
    return r;
}
