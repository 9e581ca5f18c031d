/* The fast path for event lines, and the field model it shares with the jansson path.
 *
 * Internal to pipeline/event_*.c and their tests: everyone else calls ev_parse_json()
 * (event.h), which tries ev_parse_fast() first and falls back to jansson.
 *
 * Both parsers turn a line into a struct ev_fields (the value of each key the format
 * knows) and hand it to ev_from_fields(), the one place where the format's own rules live
 * (types, ranges, id patterns, state names, rejection reasons). So the two paths can differ
 * only in JSON syntax, which the fast path leaves to jansson whenever it is not certain. */
#ifndef ENGAGED_EVENT_FAST_H
#define ENGAGED_EVENT_FAST_H

#include "pipeline/event.h"

#include <stddef.h>
#include <stdint.h>

/* A JSON value as the field checks see it, whichever parser produced it. */
enum ev_kind {
    EVV_ABSENT = 0, /* not a value (ev_fields.present tells which keys are in the line) */
    EVV_INT,        /* a JSON integer (no '.', 'e' or 'E'), within int64 */
    EVV_REAL,       /* any other number, finite */
    EVV_STRING,
    EVV_ARRAY,
    EVV_OBJECT,     /* contents checked for syntax, not kept */
    EVV_LITERAL,    /* true, false, null */
};

struct ev_value {
    enum ev_kind kind;
    union {
        int64_t i;                             /* EVV_INT */
        double d;                              /* EVV_REAL */
        struct { const char *p; size_t n; } s; /* EVV_STRING: valid UTF-8 without NUL
                                                * bytes, n bytes, NOT NUL-terminated */
        struct { const void *h; size_t n; } a; /* EVV_ARRAY: n elements, read with
                                                * ev_fields.at; h belongs to the parser */
    } u;
};

/* Every key the format reads, common fields first; all other keys are ignored. */
enum ev_key {
    EVK_TS, EVK_PARTICIPANT, EVK_SOURCE, EVK_SEQ, EVK_TYPE,
    EVK_STATE, EVK_APP, EVK_PROMPT, EVK_ITEMS, EVK_MODULE, EVK_NUDGE, EVK_EPOCH_S,
    EVK_COUNTS, EVK_HZ, EVK_G, EVK_STEPS, EVK_INTERVAL_S, EVK_BPM, EVK_RR_MS, EVK_PCT,
    EVK_TZ,
    EVK__COUNT
};

/* One event object. Values borrow from the parser (the line, or jansson's tree) and are
 * valid until it is done. The object had no duplicate keys (both parsers refuse them). */
struct ev_fields {
    uint32_t present;              /* bit k: key k is in the line, v[k] holds its value;
                                    * the other elements of v are not set (nor read) */
    struct ev_value v[EVK__COUNT];
    /* element i (< array->u.a.n) of an EVV_ARRAY value, as the parser stores it */
    void (*at)(const struct ev_value *array, size_t i, struct ev_value *out);
};

_Static_assert(EVK__COUNT <= 32, "ev_fields.present has a bit per key");

/* enum ev_key of the n bytes at s, or -1 for a key the format does not read; and back. */
int ev_key_from_name(const char *s, size_t n);
const char *ev_key_name(enum ev_key k);

/* ev_type_from_name(), ev_state_from_name() and ev_valid_id() (event.h) of the n bytes at s,
 * a string value as the parsers hold it (not NUL-terminated, no NUL byte inside);
 * ev_copy_id() also copies an id of at most EV_ID_MAX bytes, valid or not, to dst (room
 * for EV_ID_MAX + 1) with its NUL. */
int ev_type_from_bytes(const char *s, size_t n);
int ev_state_from_bytes(enum ev_type t, const char *s, size_t n);
int ev_copy_id(char *dst, const char *s, size_t n);

/* The format's rules: checks f and fills *ev, which the caller has zeroed. Returns and
 * reports like ev_parse_json() (0, -EINVAL, -ENOENT; *why set on failure). */
int ev_from_fields(const struct ev_fields *f, struct event *ev, float (*scratch)[3],
                   const char **why);

/* Parses the common shape of event line (one flat object, strings without escapes, plain
 * numbers, short arrays of numbers) without allocating. Returns 1 if it parsed the line
 * into *ev exactly as ev_parse_json_slow() would, and 0 if the line is outside that shape
 * or fails any check: then *ev (and scratch) hold garbage and the caller must use the
 * slow path, which also produces the reason. Arguments as ev_parse_json(). */
int ev_parse_fast(const char *line, size_t len, struct event *ev, float (*scratch)[3]);

/* ev_parse_json() through jansson alone: the reference the fast path must agree with
 * (tests and tests/fuzz/fuzz_event_diff.c compare the two). */
int ev_parse_json_slow(const char *line, size_t len, struct event *ev, float (*scratch)[3],
                       const char **why);

#endif
