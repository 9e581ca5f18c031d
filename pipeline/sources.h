/* Name-keyed tables of the pipeline core: an open-addressing index from names to positions,
 * and the sources with their high-water marks, bounded dedupe memory and the participants
 * they feed. Internal to pipeline/. */
#ifndef ENGAGED_SOURCES_H
#define ENGAGED_SOURCES_H

#include <stddef.h>
#include <stdint.h>

#include "pipeline/event.h"

#define DEDUPE_BITS 65536 /* seqs remembered below a source's highest seq */
#define MAX_LINKS 4096    /* participants fed by one source */

/* Grows *arr to hold at least need elements of elem bytes (doubling). 0 or -ENOMEM. */
int vec_grow(void **arr, size_t *cap, size_t need, size_t elem);
/* 64-bit FNV-1a of a NUL-terminated string: names compared by hash first. */
uint64_t str_hash64(const char *s);

typedef const char *(*name_of_fn)(const void *ctx, size_t i);

struct name_index {
    size_t *slot; /* position + 1, 0 = empty */
    size_t cap;
};

/* Position of key, or -1 when absent. */
long name_index_find(const struct name_index *x, const char *key, name_of_fn name_of,
                     const void *ctx);
/* Indexes entry n - 1 of a table that now has n entries. 0 or -ENOMEM. */
int name_index_add(struct name_index *x, size_t n, name_of_fn name_of, const void *ctx);
void name_index_release(struct name_index *x);

#define DEDUPE_MAX_GAPS 64 /* unseen ranges kept as a list before switching to the bitmap */

struct seq_gap {
    int64_t a, b; /* unseen seqs a..b */
};

struct source {
    char name[EV_ID_MAX + 1];
    int64_t max_ts;       /* newest event time; INT64_MIN before any */
    int64_t hwm;          /* highest seq seen, valid if any_seq */
    int any_seq;
    /* Which seqs in (hwm - DEDUPE_BITS, hwm] were not seen yet: as a short sorted list of
     * ranges (an in-order stream has none), or, once a source's gaps outnumber
     * DEDUPE_MAX_GAPS, as a DEDUPE_BITS ring bitmap (bit set = seen). Same answers either way. */
    struct seq_gap *gaps;
    uint32_t n_gaps, cap_gaps;
    uint64_t *seen;       /* the bitmap, when in use */
    size_t n_links, cap_links;
    size_t *links;        /* indices of the participants this source feeds */
};

struct sources {
    struct source *v;
    size_t n, cap, max;
    struct name_index idx;
};

/* The source called name, created if new (at most ->max: -E2BIG). NULL with *err. */
struct source *sources_get(struct sources *t, const char *name, size_t *index, int *err);
/* 1 if (source, seq) was seen already, else 0 (and remembered). Seqs more than DEDUPE_BITS
 * below the source's highest count as seen (docs/events.md). -ENOMEM in *err on failure. */
int source_seen(struct source *s, int64_t seq, int *err);
/* Records that s feeds participant p (once). 0, -E2BIG or -ENOMEM. */
int source_link(struct source *s, size_t p);
void sources_release(struct sources *t);

#endif
