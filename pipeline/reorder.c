#include "pipeline/reorder.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int held_less(const struct held *a, const struct held *b)
{
    return a->ts < b->ts || (a->ts == b->ts && a->arrival < b->arrival);
}

static int ring_grow(struct reorder *r)
{
    size_t cap = r->cap ? r->cap * 2 : 64;
    struct held *p = malloc(cap * sizeof *p);
    if (!p)
        return -ENOMEM;
    for (size_t i = 0; i < r->n; i++) /* unwrap into the new array */
        p[i] = r->ring[(r->head + i) % r->cap];
    free(r->ring);
    r->ring = p;
    r->cap = cap;
    r->head = 0;
    return 0;
}

static void heap_up(struct held *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!held_less(&h[i], &h[p]))
            break;
        struct held t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static void heap_down(struct held *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, rr = l + 1, m = i;
        if (l < n && held_less(&h[l], &h[m]))
            m = l;
        if (rr < n && held_less(&h[rr], &h[m]))
            m = rr;
        if (m == i)
            return;
        struct held t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

int reorder_push(struct reorder *r, struct held h)
{
    const struct held *tail = r->n ? &r->ring[(r->head + r->n - 1) % r->cap] : NULL;
    if (!tail || !held_less(&h, tail)) {
        if (r->n == r->cap && ring_grow(r) < 0)
            return -ENOMEM;
        r->ring[(r->head + r->n) % r->cap] = h;
        r->n++;
        return 0;
    }
    if (r->n_heap == r->cap_heap) {
        size_t cap = r->cap_heap ? r->cap_heap * 2 : 64;
        struct held *p = realloc(r->heap, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        r->heap = p;
        r->cap_heap = cap;
    }
    r->heap[r->n_heap] = h;
    heap_up(r->heap, r->n_heap++);
    return 0;
}

size_t reorder_size(const struct reorder *r) { return r->n + r->n_heap; }

const struct held *reorder_peek(const struct reorder *r)
{
    const struct held *a = r->n ? &r->ring[r->head] : NULL;
    const struct held *b = r->n_heap ? &r->heap[0] : NULL;
    if (!a)
        return b;
    if (!b)
        return a;
    return held_less(b, a) ? b : a;
}

struct held reorder_pop(struct reorder *r)
{
    struct held out;
    if (r->n && (!r->n_heap || !held_less(&r->heap[0], &r->ring[r->head]))) {
        out = r->ring[r->head];
        r->head = (r->head + 1) % r->cap;
        r->n--;
        return out;
    }
    out = r->heap[0];
    r->heap[0] = r->heap[--r->n_heap];
    heap_down(r->heap, r->n_heap, 0);
    return out;
}

void reorder_release(struct reorder *r)
{
    free(r->ring);
    free(r->heap);
    memset(r, 0, sizeof *r);
}
