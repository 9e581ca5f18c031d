/* Shared between the conf_*.c files only: the key table, the value parsers and the `when`
 * expression parser. Not for other modules (they use conf.h). */
#ifndef ENGAGED_CONF_INTERNAL_H
#define ENGAGED_CONF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/conf.h"

enum conf_sect {
    CS_DAEMON = 0, CS_STORE, CS_PUBLISH, CS_CONTROL, CS_INGEST, CS_PIPELINE, CS_STUDY,
    CS_PARTICIPANT, CS_SOURCE, CS_NUDGE, CS__COUNT
};

struct conf_sect_info {
    const char *name;          /* as in the file: [store], [participant ID] */
    bool named;
};
extern const struct conf_sect_info conf_sects[CS__COUNT];

enum conf_type {
    CT_STRING, CT_PATH, CT_ID, CT_BOOL, CT_INT, CT_U64, CT_DOUBLE, CT_DURATION, CT_SIZE,
    CT_ENUM, CT_ENDPOINT, CT_TZ, CT_TIMERANGE, CT_DATE, CT_LIST, CT_WHEN
};

#define CK_REPEATABLE 1u   /* each line adds a value; an empty value clears the list */
#define CK_REQUIRED 2u     /* must be set (no default) */
#define CK_AUTO 4u         /* duration that also accepts "auto" (stored as -1) */

struct conf_key {
    enum conf_sect sect;
    const char *name;
    enum conf_type type;
    size_t off;                /* the field in the section's struct */
    size_t size;               /* string buffers: sizeof the field; repeatable: per element */
    int64_t min, max;          /* INT, DURATION (ms), SIZE; LIST: max items */
    double dmin, dmax;         /* DOUBLE */
    const char *def;           /* default, in config syntax; NULL = empty/unset */
    const char *const *names;  /* ENUM, NULL-terminated */
    const int *values;         /* ENUM values parallel to names; NULL = the index */
    unsigned flags;
    size_t count_off;          /* REPEATABLE: the size_t count field */
    size_t max_count;
};

#define CONF_SECT_KEYS_MAX 32  /* keys per section (the loader's per-key bookkeeping, a bitmask) */

extern const struct conf_key conf_keys[];
extern const size_t conf_n_keys;

/* Index of the key within its section (0..CONF_SECT_KEYS_MAX-1). */
size_t conf_key_slot(const struct conf_key *k);
const struct conf_key *conf_key_find(enum conf_sect s, const char *name);

/* Environment the value parsers need, resolved once per load. */
struct conf_ctx {
    const char *tzdir;
};

/* Parses value into the field at dst (for repeatable keys: the element). On error returns
 * -EINVAL with a message in msg (no "[section] key:" prefix); *col is set to the 0-based
 * byte offset in value the error refers to, or -1. Owned memory already at dst (lists,
 * expressions) is released only on success. */
int conf_key_parse(const struct conf_key *k, void *dst, const char *value,
                   const struct conf_ctx *ctx, char *msg, size_t cap, int *col);
/* Releases owned memory of the key's field in the section struct sect (not repeatable). */
void conf_key_release(const struct conf_key *k, void *sect);
/* The key back to its default (repeatable keys: to an empty list). */
void conf_key_reset(const struct conf_key *k, void *sect, const struct conf_ctx *ctx);
/* Every key of section s to its default. sect must be zeroed or hold released values. */
void conf_sect_defaults(enum conf_sect s, void *sect, const struct conf_ctx *ctx);
/* Releases everything owned by a section struct. */
void conf_sect_release(enum conf_sect s, void *sect);

/* The `when` parser (conf_when.c). Returns 0, or -EINVAL with msg and *col (0-based), or
 * -ENOMEM. On success out->nodes is owned by out (previous contents are not released). */
int conf_when_parse(const char *text, struct conf_when *out, char *msg, size_t cap, int *col);

/* Value parsers (conf_values.c). Whole-string matches; 0 or -EINVAL/-ERANGE (-EDOM: an
 * empty time range). Those taking msg write a complete message on error. */
int conf_parse_i64(const char *s, int64_t *out);
int conf_parse_u64(const char *s, uint64_t *out);
int conf_parse_double(const char *s, double *out);
int conf_parse_size(const char *s, int64_t *out);
int conf_parse_endpoint(const char *s, char *msg, size_t cap);
int conf_parse_tz(const char *s, const struct conf_ctx *ctx, char *msg, size_t cap);
int conf_parse_timerange(const char *s, struct conf_timerange *tr);
int conf_parse_date(const char *s, struct conf_date *out);
/* On success *out's old items are released; *col is the offset of a bad item. */
int conf_parse_list(const char *s, size_t max, struct conf_list *out, char *msg, size_t cap,
                    int *col);
void conf_list_release(struct conf_list *l);
/* "7d", "10min", "500ms": the largest unit that divides ms exactly. */
void conf_fmt_duration(int64_t ms, char *buf, size_t cap);
void conf_fmt_size(int64_t v, char *buf, size_t cap);

int conf_valid_id(const char *s);

/* ---- the loader (conf.c) and the cross-checks after it (conf_check.c) ---------------- */

#define CS__FIXED CS_PARTICIPANT   /* sections before this one are unnamed singletons */

/* Bookkeeping per section instance: where its header was last seen and where each key
 * was last set (file NULL = never). A key set twice in the same file is an error; a key
 * set in a later file overrides. */
struct conf_inst {
    const char *header_file;
    int header_line;
    struct conf_loc at[CONF_SECT_KEYS_MAX];
    struct conf_loc rep_at[CONF_MAX_ENDPOINTS]; /* per value of the repeatable key */
    uint32_t bad;                  /* bit per key slot: its last value was refused */
};

struct conf_loader {
    struct conf *c;
    struct conf_ctx ctx;
    conf_err_fn err;
    void *ud;
    int n_errors;
    bool stopped;                  /* CONF_MAX_ERRORS reached */
    /* the file being read */
    const char *file;              /* owned by c->files */
    const char *buf;
    size_t len, pos;
    int lineno;
    size_t indent;                 /* bytes dropped from the start of the current line */
    const char *line_buf;          /* what the reader handed to inih for this line */
    /* the current section */
    enum { SECT_NONE, SECT_OK, SECT_IGNORE } sect_state;
    enum conf_sect sect;
    size_t index;                  /* named sections: index in the conf's array */
    struct conf_inst fixed[CS__FIXED];
    struct conf_inst *named[CS__COUNT - CS__FIXED];
    size_t named_cap[CS__COUNT - CS__FIXED];
};

__attribute__((format(printf, 4, 5)))
void conf_error(struct conf_loader *L, const char *file, int line, const char *fmt, ...);
struct conf_inst *conf_inst_of(struct conf_loader *L, enum conf_sect s, size_t index);
/* Cross-checks between sections once every file is read; reports through conf_error. */
void conf_check(struct conf_loader *L);

#endif
