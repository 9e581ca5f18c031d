/* The in-memory event: one parsed line of the recorded stream format (spec §3).
 * Events are produced by drivers and readers and borrowed by the pipeline for the
 * duration of one call; strings live inside the struct or point into caller memory. */
#ifndef ENGAGED_EVENT_H
#define ENGAGED_EVENT_H

#include <stddef.h>
#include <stdint.h>

#define EV_ID_MAX 64      /* participant and source ids: [A-Za-z0-9_-]{1,64} */
#define EV_NAME_MAX 255   /* app package ids, prompt, module and nudge ids */
#define EV_TZ_MAX 63      /* IANA zone names */
#define EV_LINE_MAX (1 << 20) /* longest accepted event line, bytes (1 MiB) */

/* Documented event-time range: 1900-01-01T00:00:00Z <= ts < 2200-01-01T00:00:00Z. */
#define EV_TS_MIN (-2208988800000LL)
#define EV_TS_MAX (7258118400000LL)

enum ev_type {
    EV_SCREEN = 0,
    EV_APP,
    EV_EMA,
    EV_MODULE,
    EV_DWAI,
    EV_NUDGE_ACK,
    EV_COUNTS,
    EV_ACCEL,
    EV_STEPS,
    EV_HR,
    EV_BATTERY,
    EV_WEAR,
    EV_TZ,
    EV__COUNT
};

enum screen_state { SCREEN_OFF = 0, SCREEN_ON = 1, SCREEN_LOCKED = 2, SCREEN_UNLOCKED = 3 };

enum ema_state {
    EMA_SCHEDULED = 0, EMA_DELIVERED, EMA_DISPLAYED, EMA_OPENED, EMA_ANSWERED, EMA_DISMISSED,
    EMA_EXPIRED
};

enum nudge_ack_state { ACK_DELIVERED = 0, ACK_OPENED, ACK_DISMISSED, ACK_ACTED };

#define EV_ACCEL_MAX 4096 /* samples per accel block */
#define EV_RR_MAX 32

struct event {
    int64_t ts;         /* ms since the Unix epoch, UTC */
    int64_t seq;        /* per-source sequence number; valid only if has_seq */
    int has_seq;
    enum ev_type type;
    char participant[EV_ID_MAX + 1];
    char source[EV_ID_MAX + 1];
    union {
        struct { int state; } screen;                     /* enum screen_state */
        struct { char app[EV_NAME_MAX + 1]; int foreground; } app;
        struct { char prompt[EV_NAME_MAX + 1]; int state; } ema; /* enum ema_state */
        struct { char module[EV_NAME_MAX + 1]; int completed; } module;
        struct { int items[6]; } dwai;
        struct { char nudge[EV_NAME_MAX + 1]; int state; } nudge_ack;
        /* axes[] is x,y,z (triaxial only); counts is the scalar, or for triaxial input
         * ActiGraph axis 1, i.e. the device's y axis (axes[1]) */
        struct { int epoch_s; int triaxial; double counts; double axes[3]; } counts;
        struct { double hz; size_t n; const float (*g)[3]; } accel; /* g borrowed */
        struct { double steps; int interval_s; } steps;
        struct { double bpm; size_t n_rr; double rr_ms[EV_RR_MAX]; } hr;
        struct { double pct; } battery;
        struct { int on; } wear;
        struct { char tz[EV_TZ_MAX + 1]; } tz;
        /* Only after ev_parse_json() fails: room for a reason that quotes the input
         * (a column, a value). Shares the union so struct event does not grow. */
        struct { char why[192]; } err;
    } u;
};

const char *ev_type_name(enum ev_type t);
int ev_type_from_name(const char *name); /* -1 if unknown */

/* The JSON names of a type's `state` values, indexed by the int stored in the event
 * (screen.state, app.foreground, ema.state, module.completed, nudge_ack.state, wear.on).
 * ev_state_name returns NULL for types without a state or an out-of-range value;
 * ev_state_from_name returns the index or -1. */
const char *ev_state_name(enum ev_type t, int state);
int ev_state_from_name(enum ev_type t, const char *name);

/* Parse one JSON line (without its newline) into *ev. Returns 0 or a negative errno:
 *   -EINVAL   malformed or out-of-range line
 *   -EMSGSIZE longer than EV_LINE_MAX
 *   -ENOENT   well-formed envelope but unknown `type` (counted and skipped, not an error)
 *   -ENOMEM   out of memory
 * On failure *why (never NULL then) is a human-readable, printable-ASCII reason: either a
 * string literal or ev->u.err.why, so copy it before *ev is parsed into again.
 * accel samples are decoded into *scratch (caller-owned, EV_ACCEL_MAX entries; may be NULL
 * if the caller never feeds accel lines) which ev->u.accel.g then borrows.
 * The accepted format and every reason are documented in docs/events.md. Common lines take
 * an allocation-free fast path (event_fast.h) with the same result as jansson's. */
int ev_parse_json(const char *line, size_t len, struct event *ev, float (*scratch)[3],
                  const char **why);

/* Canonical JSON serialisation of an event (what the store records): fixed key order,
 * compact, deterministic numbers, no newline. ev must be valid (as ev_parse_json leaves
 * it); then ev_parse_json(ev_to_json(ev)) gives back an event ev_equal to it.
 * Returns a malloc'd NUL-terminated string, or NULL on allocation failure or when ev has
 * an unknown type or state. */
char *ev_to_json(const struct event *ev);

/* The same into buf: returns the length (buf is NUL-terminated), -EINVAL for an event
 * ev_to_json refuses, or -ENOSPC when cap is smaller than ev_json_bound(ev) and the text did
 * not fit (an invalid event too is then reported as -ENOSPC). A cap of ev_json_bound(ev)
 * bytes always suffices. */
long ev_json_write(const struct event *ev, char *buf, size_t cap);
size_t ev_json_bound(const struct event *ev);

/* 1 if the two events carry the same information (field by field, type-aware). */
int ev_equal(const struct event *a, const struct event *b);

int ev_valid_id(const char *s); /* 1 if s matches [A-Za-z0-9_-]{1,64} */

/* 1 for the types a phone app sends (screen, app, ema, module, dwai, nudge_ack, battery):
 * what counts as phone data for coverage and yield.phone (docs/features.md). */
int ev_is_phone(enum ev_type t);
/* 1 for the types a wearable sends (counts, accel, steps, hr, wear): what counts as wearable
 * data for its coverage and yield.wearable. */
int ev_is_wearable(enum ev_type t);
/* 1 if the n bytes at s have the shape of an IANA zone name (docs/events.md): at most
 * EV_TZ_MAX of [A-Za-z0-9_+/-], no leading or trailing '/', no "//". */
int ev_valid_tz_name(const char *s, size_t n);

#endif
