/* The live ingest socket (spec §5): a ROUTER that takes messages of event lines from local
 * apps (REQ or DEALER), stores them through the store writer and acknowledges each message
 * only after its events are durably committed. Events are handed to the pipeline in commit
 * order, which is the store's id order, so replaying the store reproduces the live run. */
#ifndef ENGAGED_INGEST_H
#define ENGAGED_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/conf.h"
#include "daemon/store.h"
#include "daemon/zap.h"
#include "pipeline/event.h"

struct ingest_opts {
    size_t max_message;   /* bytes per message (all frames) */
    size_t max_lines;     /* event lines per message */
    size_t max_pending;   /* messages waiting for their commit; beyond, reading pauses */
    int64_t max_future_ms; /* events further ahead of now are rejected */
    /* [source] sections (borrowed): an event naming a configured source must carry that
     * source's participant, so one phone cannot write into another participant's data */
    const struct conf *conf;
};

struct ingest_stats {
    uint64_t messages, lines, accepted, duplicate, rejected, store_errors, busy;
    uint64_t queue_full; /* reading stopped with max_pending messages awaiting the store */
};

/* Called for each newly stored event, in commit order; ev is borrowed. */
/* received: the hub clock at receipt, as stored with the event */
typedef void (*ingest_push_fn)(void *ud, const struct event *ev, int64_t received);

struct ingest;

struct ingest *ingest_new(void *zctx, const char *const *endpoints, size_t n_endpoints,
                          const struct curve_opts *curve, const struct ingest_opts *o, int *err);
void ingest_free(struct ingest *in);
void *ingest_socket(struct ingest *in);
/* 1 while more messages may be read (pending below max_pending) */
int ingest_can_read(const struct ingest *in);
/* Reads every waiting message and submits its valid events to the store. */
int ingest_on_readable(struct ingest *in, struct store_writer *w, int64_t now_ms);
/* A store reply: acknowledges the client and pushes the newly stored events. Returns 1 if
 * the token was an ingest request, 0 if not ours. */
int ingest_on_store_reply(struct ingest *in, uint64_t token, int status_all,
                          const uint8_t *per_event, size_t n, ingest_push_fn push, void *ud);
void ingest_get_stats(const struct ingest *in, struct ingest_stats *s);

#endif
