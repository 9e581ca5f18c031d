#include "pipeline/sources.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vec_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

uint64_t str_hash64(const char *s)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t *probe(size_t *slot, size_t cap, const char *key, name_of_fn name_of,
                     const void *ctx)
{
    size_t i = str_hash64(key) & (cap - 1);
    while (slot[i] && strcmp(name_of(ctx, slot[i] - 1), key) != 0)
        i = (i + 1) & (cap - 1);
    return &slot[i];
}

long name_index_find(const struct name_index *x, const char *key, name_of_fn name_of,
                     const void *ctx)
{
    if (!x->slot)
        return -1;
    size_t v = *probe(x->slot, x->cap, key, name_of, ctx);
    return v ? (long)(v - 1) : -1;
}

int name_index_add(struct name_index *x, size_t n, name_of_fn name_of, const void *ctx)
{
    if (!x->slot || n * 2 >= x->cap) { /* keep the load under one half */
        size_t cap = x->cap ? x->cap * 2 : 64;
        while (cap < n * 2 + 2)
            cap *= 2;
        size_t *slot = calloc(cap, sizeof *slot);
        if (!slot)
            return -ENOMEM;
        for (size_t i = 0; i + 1 < n; i++)
            *probe(slot, cap, name_of(ctx, i), name_of, ctx) = i + 1;
        free(x->slot);
        x->slot = slot;
        x->cap = cap;
    }
    *probe(x->slot, x->cap, name_of(ctx, n - 1), name_of, ctx) = n;
    return 0;
}

void name_index_release(struct name_index *x)
{
    free(x->slot);
    x->slot = NULL;
    x->cap = 0;
}

static const char *source_name(const void *ctx, size_t i)
{
    return ((const struct sources *)ctx)->v[i].name;
}

struct source *sources_get(struct sources *t, const char *name, size_t *index, int *err)
{
    long at = name_index_find(&t->idx, name, source_name, t);
    if (at >= 0) {
        *index = (size_t)at;
        return &t->v[at];
    }
    if (t->n >= t->max) {
        *err = -E2BIG;
        return NULL;
    }
    if (vec_grow((void **)&t->v, &t->cap, t->n + 1, sizeof *t->v) < 0) {
        *err = -ENOMEM;
        return NULL;
    }
    struct source *s = &t->v[t->n];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->max_ts = INT64_MIN;
    t->n++;
    if (name_index_add(&t->idx, t->n, source_name, t) < 0) {
        t->n--;
        *err = -ENOMEM;
        return NULL;
    }
    *index = t->n - 1;
    return s;
}

/* The bitmap form: bit seq % DEDUPE_BITS is set once seq was seen. */
static int bitmap_seen(struct source *s, int64_t seq)
{
    if (seq > s->hwm) {
        if (seq - s->hwm < DEDUPE_BITS) {
            for (int64_t q = s->hwm + 1; q < seq; q++)
                s->seen[(q % DEDUPE_BITS) / 64] &= ~(1ULL << (q % 64));
        } else {
            memset(s->seen, 0, DEDUPE_BITS / 8);
        }
        s->seen[(seq % DEDUPE_BITS) / 64] |= 1ULL << (seq % 64);
        s->hwm = seq;
        return 0;
    }
    if (s->hwm - seq >= DEDUPE_BITS)
        return 1;
    uint64_t bit = 1ULL << (seq % 64);
    uint64_t *w = &s->seen[(seq % DEDUPE_BITS) / 64];
    if (*w & bit)
        return 1;
    *w |= bit;
    return 0;
}

/* Too many gaps for the list: the same set as a bitmap from now on. */
static int to_bitmap(struct source *s)
{
    s->seen = malloc(DEDUPE_BITS / 8);
    if (!s->seen)
        return -ENOMEM;
    memset(s->seen, 0xff, DEDUPE_BITS / 8);
    for (uint32_t i = 0; i < s->n_gaps; i++)
        for (int64_t q = s->gaps[i].a; q <= s->gaps[i].b; q++)
            s->seen[(q % DEDUPE_BITS) / 64] &= ~(1ULL << (q % 64));
    free(s->gaps);
    s->gaps = NULL;
    s->n_gaps = s->cap_gaps = 0;
    return 0;
}

/* Inserts the unseen range [a, b] at position at; when the list is full, switches to the
 * bitmap and marks the range unseen there. */
static int gap_insert(struct source *s, uint32_t at, int64_t a, int64_t b)
{
    if (s->n_gaps >= DEDUPE_MAX_GAPS) {
        if (to_bitmap(s) < 0)
            return -ENOMEM;
        for (int64_t q = a; q <= b; q++)
            s->seen[(q % DEDUPE_BITS) / 64] &= ~(1ULL << (q % 64));
        return 1;
    }
    if (s->n_gaps == s->cap_gaps) {
        uint32_t cap = s->cap_gaps ? s->cap_gaps * 2 : 4;
        struct seq_gap *g = realloc(s->gaps, cap * sizeof *g);
        if (!g)
            return -ENOMEM;
        s->gaps = g;
        s->cap_gaps = cap;
    }
    if (at < s->n_gaps)
        memmove(s->gaps + at + 1, s->gaps + at, (s->n_gaps - at) * sizeof *s->gaps);
    s->gaps[at] = (struct seq_gap){a, b};
    s->n_gaps++;
    return 0;
}

/* A new highest seq: the seqs skipped become gaps, gaps below the window are forgotten. */
static int advance(struct source *s, int64_t seq)
{
    int64_t lo = seq - DEDUPE_BITS + 1; /* the window's lowest seq */
    if (seq - s->hwm >= DEDUPE_BITS)
        s->n_gaps = 0;
    int64_t from = seq - s->hwm >= DEDUPE_BITS ? lo : s->hwm + 1;
    s->hwm = seq;
    uint32_t k = 0;
    while (k < s->n_gaps && s->gaps[k].b < lo)
        k++;
    if (k) {
        memmove(s->gaps, s->gaps + k, (s->n_gaps - k) * sizeof *s->gaps);
        s->n_gaps -= k;
    }
    if (s->n_gaps && s->gaps[0].a < lo)
        s->gaps[0].a = lo;
    if (from < lo)
        from = lo;
    if (from < 0)
        from = 0; /* seqs are never negative */
    if (from <= seq - 1) {
        int r = gap_insert(s, s->n_gaps, from, seq - 1);
        if (r > 0) /* now a bitmap (seq itself is outside every gap: marked seen) */
            s->seen[(seq % DEDUPE_BITS) / 64] |= 1ULL << (seq % 64);
        return r < 0 ? r : 0;
    }
    return 0;
}

int source_seen(struct source *s, int64_t seq, int *err)
{
    if (s->seen)
        return bitmap_seen(s, seq);
    if (!s->any_seq) {
        /* below the first seq, the window's seqs are unseen (as a fresh bitmap would be) */
        s->any_seq = 1;
        s->hwm = seq - DEDUPE_BITS; /* so that advance() opens the whole window below seq */
        s->n_gaps = 0;
    }
    if (seq > s->hwm) {
        int r = advance(s, seq);
        if (r < 0)
            *err = r;
        return 0;
    }
    if (s->hwm - seq >= DEDUPE_BITS)
        return 1;
    /* binary search for the gap holding seq */
    uint32_t lo = 0, hi = s->n_gaps;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->gaps[mid].b < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == s->n_gaps || s->gaps[lo].a > seq)
        return 1; /* in no gap: seen */
    struct seq_gap *g = &s->gaps[lo];
    if (g->a == g->b) {
        if (lo + 1 < s->n_gaps)
            memmove(g, g + 1, (s->n_gaps - lo - 1) * sizeof *g);
        s->n_gaps--;
    } else if (seq == g->a) {
        g->a++;
    } else if (seq == g->b) {
        g->b--;
    } else {
        int64_t b = g->b;
        g->b = seq - 1;
        int r = gap_insert(s, lo + 1, seq + 1, b); /* seq itself is now in no gap: seen */
        if (r < 0)
            *err = r;
    }
    return 0;
}

int source_link(struct source *s, size_t p)
{
    for (size_t i = 0; i < s->n_links; i++)
        if (s->links[i] == p)
            return 0;
    if (s->n_links >= MAX_LINKS)
        return -E2BIG;
    if (vec_grow((void **)&s->links, &s->cap_links, s->n_links + 1, sizeof *s->links) < 0)
        return -ENOMEM;
    s->links[s->n_links++] = p;
    return 0;
}

void sources_release(struct sources *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].seen);
        free(t->v[i].gaps);
        free(t->v[i].links);
    }
    free(t->v);
    name_index_release(&t->idx);
    memset(t, 0, sizeof *t);
}
