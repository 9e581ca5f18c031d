/* The per-participant reorder buffer: events wait here, ordered by (ts, arrival), until the
 * participant's watermark passes them. Arrivals in time order (the common case) go to a FIFO
 * ring in O(1); only out-of-order arrivals pay for the binary heap. */
#ifndef ENGAGED_REORDER_H
#define ENGAGED_REORDER_H

#include <stddef.h>
#include <stdint.h>

struct held {
    int64_t ts;
    uint64_t arrival;
    void *ev; /* the event in whatever form the buffer's user keeps it; owned by that user */
};

struct reorder {
    struct held *ring;  /* sorted by construction */
    size_t head, n, cap;
    struct held *heap;  /* min-heap of the out-of-order arrivals */
    size_t n_heap, cap_heap;
};

/* 0 or -ENOMEM */
int reorder_push(struct reorder *r, struct held h);
size_t reorder_size(const struct reorder *r);
/* The earliest held event; r must not be empty. */
const struct held *reorder_peek(const struct reorder *r);
struct held reorder_pop(struct reorder *r);
/* Frees the buffer's own memory (not the events: pop them first). */
void reorder_release(struct reorder *r);

#endif
