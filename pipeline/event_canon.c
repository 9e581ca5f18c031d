/* Names, equality and the canonical JSON form of events (spec §3).
 *
 * The canonical form is what the store records and what replay re-reads, so it must be a
 * pure function of the event: fixed key order, no optional whitespace, numbers through
 * fmt_number(). It is written by hand rather than with json_dumps() because jansson would
 * need a json_t tree built per event (a dozen allocations) and formats reals with its own
 * precision rules, which are not the project's shared number format. */
#include "pipeline/event.h"
#include "pipeline/event_fast.h"
#include "pipeline/record.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[EV__COUNT] = {
    [EV_SCREEN] = "screen",  [EV_APP] = "app",           [EV_EMA] = "ema",
    [EV_MODULE] = "module",  [EV_DWAI] = "dwai",         [EV_NUDGE_ACK] = "nudge_ack",
    [EV_COUNTS] = "counts",  [EV_ACCEL] = "accel",       [EV_STEPS] = "steps",
    [EV_HR] = "hr",          [EV_BATTERY] = "battery",   [EV_WEAR] = "wear",
    [EV_TZ] = "tz",
};

const char *ev_type_name(enum ev_type t)
{
    return (unsigned)t < EV__COUNT ? type_names[t] : NULL;
}

int ev_type_from_name(const char *name)
{
    return ev_type_from_bytes(name, strlen(name));
}

/* On the parse path: the length and a byte or two pick the one name that can match. */
int ev_type_from_bytes(const char *s, size_t n)
{
#define IS(t, name) (memcmp(s, name, sizeof name - 1) == 0 ? (t) : -1)
    switch (n) {
    case 2: return s[0] == 'h' ? IS(EV_HR, "hr") : IS(EV_TZ, "tz");
    case 3: return s[0] == 'a' ? IS(EV_APP, "app") : IS(EV_EMA, "ema");
    case 4: return s[0] == 'd' ? IS(EV_DWAI, "dwai") : IS(EV_WEAR, "wear");
    case 5: return s[0] == 'a' ? IS(EV_ACCEL, "accel") : IS(EV_STEPS, "steps");
    case 6:
        return s[0] == 's' ? IS(EV_SCREEN, "screen")
               : s[0] == 'm' ? IS(EV_MODULE, "module") : IS(EV_COUNTS, "counts");
    case 7: return IS(EV_BATTERY, "battery");
    case 9: return IS(EV_NUDGE_ACK, "nudge_ack");
    default: return -1;
    }
#undef IS
}

/* Index = the int stored in the event, so the tables double as the enums' spelling. Fixed
 * width, ending with "": a comparison of up to STATE_MAX bytes stays inside every name
 * (names have at most STATE_MAX bytes, so each keeps its NUL). */
#define STATE_MAX 11
typedef char state_name[STATE_MAX + 1];
static const state_name screen_states[] = {"off", "on", "locked", "unlocked", ""};
static const state_name app_states[] = {"background", "foreground", ""};
static const state_name ema_states[] = {"scheduled", "delivered", "displayed", "opened",
                                        "answered",  "dismissed", "expired",   ""};
static const state_name module_states[] = {"started", "completed", ""};
static const state_name ack_states[] = {"delivered", "opened", "dismissed", "acted", ""};
static const state_name wear_states[] = {"off", "on", ""};

static const state_name *state_table(enum ev_type t)
{
    switch (t) {
    case EV_SCREEN: return screen_states;
    case EV_APP: return app_states;
    case EV_EMA: return ema_states;
    case EV_MODULE: return module_states;
    case EV_NUDGE_ACK: return ack_states;
    case EV_WEAR: return wear_states;
    default: return NULL;
    }
}

const char *ev_state_name(enum ev_type t, int state)
{
    const state_name *tab = state_table(t);
    if (!tab || state < 0)
        return NULL;
    for (int i = 0; tab[i][0]; i++)
        if (i == state)
            return tab[i];
    return NULL;
}

int ev_state_from_name(enum ev_type t, const char *name)
{
    return ev_state_from_bytes(t, name, strlen(name));
}

int ev_state_from_bytes(enum ev_type t, const char *s, size_t n)
{
    const state_name *tab = state_table(t);
    if (!tab || n == 0 || n > STATE_MAX)
        return -1;
    for (int i = 0; tab[i][0]; i++) /* name[n] == 0 and n equal bytes: the same length */
        if (tab[i][0] == s[0] && tab[i][n] == 0 && memcmp(tab[i], s, n) == 0)
            return i;
    return -1;
}

/* [A-Za-z0-9_-]: 1 for the bytes ids may contain. */
static const unsigned char id_chars[256] = {
    ['-'] = 1, ['_'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

int ev_valid_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= EV_ID_MAX || !id_chars[(unsigned char)s[n]])
            return 0;
    return n > 0;
}

int ev_copy_id(char *dst, const char *s, size_t n)
{
    unsigned ok = n > 0;
    if (n > EV_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) { /* no early exit: ids are short and nearly always valid */
        unsigned char c = (unsigned char)s[i];
        dst[i] = (char)c;
        ok &= id_chars[c];
    }
    dst[n] = 0;
    return (int)ok;
}

/* The keys of the line format, for both parsers (event_fast.h). */
#define KEY(k, name) [k] = {name, sizeof name - 1}
static const struct { const char *name; size_t len; } keys[EVK__COUNT] = {
    KEY(EVK_TS, "ts"),         KEY(EVK_PARTICIPANT, "participant"), KEY(EVK_SOURCE, "source"),
    KEY(EVK_SEQ, "seq"),       KEY(EVK_TYPE, "type"),             KEY(EVK_STATE, "state"),
    KEY(EVK_APP, "app"),       KEY(EVK_PROMPT, "prompt"),         KEY(EVK_ITEMS, "items"),
    KEY(EVK_MODULE, "module"), KEY(EVK_NUDGE, "nudge"),           KEY(EVK_EPOCH_S, "epoch_s"),
    KEY(EVK_COUNTS, "counts"), KEY(EVK_HZ, "hz"),                 KEY(EVK_G, "g"),
    KEY(EVK_STEPS, "steps"),   KEY(EVK_INTERVAL_S, "interval_s"), KEY(EVK_BPM, "bpm"),
    KEY(EVK_RR_MS, "rr_ms"),   KEY(EVK_PCT, "pct"),               KEY(EVK_TZ, "tz"),
};

const char *ev_key_name(enum ev_key k)
{
    return (unsigned)k < EVK__COUNT ? keys[k].name : NULL;
}

/* Every key of every line comes through here: the length and a byte or two pick the one key
 * that can match, and one comparison of constant length confirms it. */
int ev_key_from_name(const char *s, size_t n)
{
#define IS(k, name) (memcmp(s, name, sizeof name - 1) == 0 ? (k) : -1)
    switch (n) {
    case 1: return IS(EVK_G, "g");
    case 2:
        return s[0] == 'h' ? IS(EVK_HZ, "hz") : s[1] == 's' ? IS(EVK_TS, "ts") : IS(EVK_TZ, "tz");
    case 3:
        switch (s[0]) {
        case 's': return IS(EVK_SEQ, "seq");
        case 'a': return IS(EVK_APP, "app");
        case 'b': return IS(EVK_BPM, "bpm");
        default: return IS(EVK_PCT, "pct");
        }
    case 4: return IS(EVK_TYPE, "type");
    case 5:
        switch (s[0]) {
        case 's': return s[3] == 't' ? IS(EVK_STATE, "state") : IS(EVK_STEPS, "steps");
        case 'i': return IS(EVK_ITEMS, "items");
        case 'n': return IS(EVK_NUDGE, "nudge");
        default: return IS(EVK_RR_MS, "rr_ms");
        }
    case 6:
        switch (s[0]) {
        case 's': return IS(EVK_SOURCE, "source");
        case 'p': return IS(EVK_PROMPT, "prompt");
        case 'm': return IS(EVK_MODULE, "module");
        default: return IS(EVK_COUNTS, "counts");
        }
    case 7: return IS(EVK_EPOCH_S, "epoch_s");
    case 10: return IS(EVK_INTERVAL_S, "interval_s");
    case 11: return IS(EVK_PARTICIPANT, "participant");
    default: return -1;
    }
#undef IS
}

/* IANA names are also file names under /usr/share/zoneinfo: keep them to tzdata's own
 * alphabet so that a hostile name can never become a path outside it. Whether the zone
 * exists is for the pipeline to decide (the host's tzdata may be older than the data). */
int ev_valid_tz_name(const char *s, size_t n)
{
    if (n == 0 || n > EV_TZ_MAX || s[0] == '/' || s[n - 1] == '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-' || c == '/'))
            return 0;
        if (c == '/' && s[i - 1] == '/') /* i > 0: s[0] is not '/' */
            return 0;
    }
    return 1;
}

int ev_equal(const struct event *a, const struct event *b)
{
    if (a->ts != b->ts || a->type != b->type || !a->has_seq != !b->has_seq ||
        (a->has_seq && a->seq != b->seq) || strcmp(a->participant, b->participant) != 0 ||
        strcmp(a->source, b->source) != 0)
        return 0;
    switch (a->type) {
    case EV_SCREEN: return a->u.screen.state == b->u.screen.state;
    case EV_APP:
        return a->u.app.foreground == b->u.app.foreground &&
               strcmp(a->u.app.app, b->u.app.app) == 0;
    case EV_EMA:
        return a->u.ema.state == b->u.ema.state && strcmp(a->u.ema.prompt, b->u.ema.prompt) == 0;
    case EV_MODULE:
        return a->u.module.completed == b->u.module.completed &&
               strcmp(a->u.module.module, b->u.module.module) == 0;
    case EV_DWAI: return memcmp(a->u.dwai.items, b->u.dwai.items, sizeof a->u.dwai.items) == 0;
    case EV_NUDGE_ACK:
        return a->u.nudge_ack.state == b->u.nudge_ack.state &&
               strcmp(a->u.nudge_ack.nudge, b->u.nudge_ack.nudge) == 0;
    case EV_COUNTS:
        if (a->u.counts.epoch_s != b->u.counts.epoch_s ||
            a->u.counts.triaxial != b->u.counts.triaxial ||
            a->u.counts.counts != b->u.counts.counts)
            return 0;
        for (int k = 0; a->u.counts.triaxial && k < 3; k++)
            if (a->u.counts.axes[k] != b->u.counts.axes[k])
                return 0;
        return 1;
    case EV_ACCEL:
        if (a->u.accel.hz != b->u.accel.hz || a->u.accel.n != b->u.accel.n)
            return 0;
        /* compare values, not bytes: -0.0 and 0.0 are the same reading */
        for (size_t i = 0; i < a->u.accel.n; i++)
            for (int k = 0; k < 3; k++)
                if (a->u.accel.g[i][k] != b->u.accel.g[i][k])
                    return 0;
        return 1;
    case EV_STEPS:
        return a->u.steps.steps == b->u.steps.steps &&
               a->u.steps.interval_s == b->u.steps.interval_s;
    case EV_HR:
        if (a->u.hr.bpm != b->u.hr.bpm || a->u.hr.n_rr != b->u.hr.n_rr)
            return 0;
        for (size_t i = 0; i < a->u.hr.n_rr && i < EV_RR_MAX; i++)
            if (a->u.hr.rr_ms[i] != b->u.hr.rr_ms[i])
                return 0;
        return 1;
    case EV_BATTERY: return a->u.battery.pct == b->u.battery.pct;
    case EV_WEAR: return a->u.wear.on == b->u.wear.on;
    case EV_TZ: return strcmp(a->u.tz.tz, b->u.tz.tz) == 0;
    default: return 0;
    }
}

/* ---- canonical writer ---- */

struct out {
    char *p;
    size_t len, cap;
    int overflow; /* the size bound below was wrong: a bug, reported as failure */
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->overflow || o->len + n >= o->cap) {
        o->overflow = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_lit(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Integers bypass fmt_number(): they are exact at any magnitude (seq may exceed 2^53)
 * and this avoids a snprintf per field on the store's hot path. */
static void put_i64(struct out *o, int64_t v)
{
    char tmp[FMT_I64_MAX];
    put(o, tmp, fmt_i64(v, tmp));
}

static void put_num(struct out *o, double v)
{
    char tmp[40];
    int n = fmt_number(v, tmp, sizeof tmp);
    if (n < 0 || !isfinite(v)) /* fmt_number writes null, which would not parse back */
        o->overflow = 1;
    else
        put(o, tmp, (size_t)n);
}

/* accel samples are floats: fmt_number() would print the widened double with up to 17
 * digits (0.1f as 0.10000000149011612). Fewer digits suffice to come back to the same float
 * through the parser's path (strtod, then narrowing), which keeps blocks of thousands of
 * samples less than half the size. Still one fixed procedure, hence deterministic. */
static void put_float(struct out *o, float f)
{
    char tmp[40];
    int n = 0;
    if (!isfinite(f)) {
        o->overflow = 1; /* no JSON spelling: refuse the event rather than write "nan" */
        return;
    }
    if (f == 0) {
        put(o, "0", 1); /* also for -0: no "-0" in the canonical form */
        return;
    }
    for (int prec = 6; prec <= 9; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, (double)f);
        if ((float)strtod(tmp, NULL) == f)
            break;
    }
    if (n <= 0 || (size_t)n >= sizeof tmp)
        o->overflow = 1;
    else
        put(o, tmp, (size_t)n);
}

static void put_str(struct out *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(o, "\"", 1);
    for (const char *run = s;; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(o, run, (size_t)(s - run)); /* copy unescaped runs in one go */
        if (!c)
            break;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(o, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(o, esc, 6);
        }
        run = s + 1;
    }
    put(o, "\"", 1);
}

static void put_key(struct out *o, const char *key)
{
    put(o, ",\"", 2);
    put_lit(o, key);
    put(o, "\":", 2);
}

static void put_state(struct out *o, const struct event *ev, int state)
{
    const char *name = ev_state_name(ev->type, state);
    if (!name)
        o->overflow = 1; /* invalid event: refuse rather than invent a state */
    else
        put_str(o, name);
}

/* Upper bound of the output size: escaping can grow a string sixfold, and a formatted
 * number plus its punctuation never exceeds 40 bytes. */
size_t ev_json_bound(const struct event *ev)
{
    size_t strs = strlen(ev->participant) + strlen(ev->source), nums = 8;
    switch (ev->type) {
    case EV_APP: strs += strlen(ev->u.app.app); break;
    case EV_EMA: strs += strlen(ev->u.ema.prompt); break;
    case EV_MODULE: strs += strlen(ev->u.module.module); break;
    case EV_NUDGE_ACK: strs += strlen(ev->u.nudge_ack.nudge); break;
    case EV_TZ: strs += strlen(ev->u.tz.tz); break;
    case EV_ACCEL: nums += 3 * ev->u.accel.n; break;
    case EV_HR: nums += EV_RR_MAX; break;
    default: break;
    }
    return 256 + 6 * strs + 40 * nums;
}

long ev_json_write(const struct event *ev, char *buf, size_t cap)
{
    const char *tname = ev_type_name(ev->type);
    struct out o = {.p = buf, .cap = cap};
    if (!tname)
        return -EINVAL;

    put_lit(&o, "{\"ts\":");
    put_i64(&o, ev->ts);
    put_key(&o, "participant");
    put_str(&o, ev->participant);
    put_key(&o, "source");
    put_str(&o, ev->source[0] ? ev->source : "replay");
    if (ev->has_seq) {
        put_key(&o, "seq");
        put_i64(&o, ev->seq);
    }
    put_key(&o, "type");
    put_str(&o, tname);

    switch (ev->type) {
    case EV_SCREEN:
        put_key(&o, "state");
        put_state(&o, ev, ev->u.screen.state);
        break;
    case EV_APP:
        put_key(&o, "app");
        put_str(&o, ev->u.app.app);
        put_key(&o, "state");
        put_state(&o, ev, ev->u.app.foreground ? 1 : 0);
        break;
    case EV_EMA:
        put_key(&o, "prompt");
        put_str(&o, ev->u.ema.prompt);
        put_key(&o, "state");
        put_state(&o, ev, ev->u.ema.state);
        break;
    case EV_MODULE:
        put_key(&o, "module");
        put_str(&o, ev->u.module.module);
        put_key(&o, "state");
        put_state(&o, ev, ev->u.module.completed ? 1 : 0);
        break;
    case EV_DWAI:
        put_key(&o, "items");
        for (int i = 0; i < 6; i++) {
            put(&o, i ? "," : "[", 1);
            put_i64(&o, ev->u.dwai.items[i]);
        }
        put(&o, "]", 1);
        break;
    case EV_NUDGE_ACK:
        put_key(&o, "nudge");
        put_str(&o, ev->u.nudge_ack.nudge);
        put_key(&o, "state");
        put_state(&o, ev, ev->u.nudge_ack.state);
        break;
    case EV_COUNTS:
        put_key(&o, "epoch_s");
        put_i64(&o, ev->u.counts.epoch_s);
        put_key(&o, "counts");
        if (ev->u.counts.triaxial) {
            for (int k = 0; k < 3; k++) {
                put(&o, k ? "," : "[", 1);
                put_num(&o, ev->u.counts.axes[k]);
            }
            put(&o, "]", 1);
        } else {
            put_num(&o, ev->u.counts.counts);
        }
        break;
    case EV_ACCEL:
        put_key(&o, "hz");
        put_num(&o, ev->u.accel.hz);
        put_key(&o, "g");
        put(&o, "[", 1);
        for (size_t i = 0; i < ev->u.accel.n; i++) {
            put(&o, i ? ",[" : "[", i ? 2 : 1);
            for (int k = 0; k < 3; k++) {
                if (k)
                    put(&o, ",", 1);
                put_float(&o, ev->u.accel.g[i][k]);
            }
            put(&o, "]", 1);
        }
        put(&o, "]", 1);
        break;
    case EV_STEPS:
        put_key(&o, "steps");
        put_num(&o, ev->u.steps.steps);
        put_key(&o, "interval_s");
        put_i64(&o, ev->u.steps.interval_s);
        break;
    case EV_HR:
        put_key(&o, "bpm");
        put_num(&o, ev->u.hr.bpm);
        if (ev->u.hr.n_rr > 0) {
            put_key(&o, "rr_ms");
            for (size_t i = 0; i < ev->u.hr.n_rr && i < EV_RR_MAX; i++) {
                put(&o, i ? "," : "[", 1);
                put_num(&o, ev->u.hr.rr_ms[i]);
            }
            put(&o, "]", 1);
        }
        break;
    case EV_BATTERY:
        put_key(&o, "pct");
        put_num(&o, ev->u.battery.pct);
        break;
    case EV_WEAR:
        put_key(&o, "state");
        put_state(&o, ev, ev->u.wear.on ? 1 : 0);
        break;
    case EV_TZ:
        put_key(&o, "tz");
        put_str(&o, ev->u.tz.tz);
        break;
    default:
        o.overflow = 1;
        break;
    }
    put(&o, "}", 1);
    if (o.overflow)
        return cap < ev_json_bound(ev) ? -ENOSPC : -EINVAL;
    o.p[o.len] = 0;
    return (long)o.len;
}

char *ev_to_json(const struct event *ev)
{
    size_t cap = ev_json_bound(ev);
    char *p = malloc(cap);
    if (p && ev_json_write(ev, p, cap) < 0) {
        free(p);
        p = NULL;
    }
    return p;
}

int ev_is_phone(enum ev_type t)
{
    switch (t) {
    case EV_SCREEN: case EV_APP: case EV_EMA: case EV_MODULE: case EV_DWAI:
    case EV_NUDGE_ACK: case EV_BATTERY:
        return 1;
    default:
        return 0;
    }
}

int ev_is_wearable(enum ev_type t)
{
    switch (t) {
    case EV_COUNTS: case EV_ACCEL: case EV_STEPS: case EV_HR: case EV_WEAR:
        return 1;
    default:
        return 0;
    }
}
