/* The ZeroMQ feed (spec §5): an XPUB socket with per-topic sequence numbers and a bounded
 * last-value cache. docs/topics.md is the user-facing description of everything here.
 *
 * Messages are [topic][payload]; payload is a JSON object to which the publisher appends a
 * per-topic "seq" (1, 2, 3, ... since the daemon started or since the topic was evicted).
 * Sends never block: with ZMQ_XPUB_NODROP a full subscriber queue makes the send fail with
 * EAGAIN, the message is counted as dropped, and its seq is consumed so subscribers see the
 * gap. On every subscribe the cached last value of each matching topic is re-sent (to every
 * subscriber whose subscription matches: XPUB cannot address one peer; seq is unchanged, so
 * duplicates are recognisable). */
#ifndef ENGAGED_PUBLISH_H
#define ENGAGED_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/zap.h"

#define PUBLISH_TOPIC_MAX 255                   /* bytes, without NUL */
#define PUBLISH_PAYLOAD_MAX (1 << 20)           /* bytes */
#define PUBLISH_DEFAULT_SNDHWM 10000
#define PUBLISH_DEFAULT_LVC_MAX_TOPICS 65536
#define PUBLISH_DEFAULT_LINGER_MS 200

/* Everything is borrowed for the call. */
struct publish_opts {
    int sndhwm;                 /* messages queued per subscriber before drops; 0 = default */
    int linger_ms;              /* how long zmq_close may flush at shutdown; 0 = default */
    /* Last-value cache bound, in topics. 0 turns the cache off as [publish] lvc_max_topics = 0
     * does: nothing is re-sent on subscribe, and per-topic seq is still kept for up to
     * PUBLISH_DEFAULT_LVC_MAX_TOPICS topics (seq needs the same per-topic state). */
    size_t lvc_max_topics;
    struct curve_opts curve;    /* needed for tcp:// endpoints (zap.h) */
};

struct publish_stats {
    uint64_t sent;              /* messages handed to libzmq by publisher_send */
    uint64_t dropped;           /* publisher_send found a subscriber queue full (EAGAIN) */
    uint64_t replayed;          /* cached values re-sent on subscribe */
    uint64_t replay_dropped;    /* re-sends that found a queue full */
    uint64_t lvc_topics;        /* topics currently tracked (cached unless the cache is off) */
    uint64_t lvc_evictions;     /* least recently updated topics evicted to stay in bound */
    uint64_t subscriptions;     /* subscribe frames received (every one: XPUB_VERBOSE) */
    uint64_t unsubscriptions;
};

struct publisher;

/* Creates the XPUB socket in zctx (borrowed) and binds all n endpoints (see zap_secure_bind
 * for the ipc/tcp rules; tcp without CURVE keys is -EINVAL). o may be NULL (defaults).
 * Returns NULL and sets *err (may be NULL) on failure. */
struct publisher *publisher_new(void *zctx, const char *const *endpoints, size_t n,
                                const struct publish_opts *o, int *err);
/* As publisher_new; *err_index (may be NULL) receives the index of the endpoint that failed,
 * or n when the failure is not about one endpoint, so the caller can name it in its log. */
struct publisher *publisher_new_ex(void *zctx, const char *const *endpoints, size_t n,
                                   const struct publish_opts *o, int *err, size_t *err_index);
void publisher_free(struct publisher *p);

/* The bound address of endpoint i (resolved: real port or ipc path), or NULL. Borrowed. */
const char *publisher_endpoint(const struct publisher *p, size_t i);

/* Publishes payload (a JSON object, len bytes, no "seq" key of its own) on topic. Appends
 * ,"seq":N before the closing brace, updates the cache and sends without blocking.
 * Returns 0, -EAGAIN when dropped at a full queue (counted; the cache is still updated),
 * -EINVAL for an empty/oversized topic or a payload that is not {...}, or another -errno. */
int publisher_send(struct publisher *p, const char *topic, const char *payload, size_t len);

/* Like publisher_send, but only updates the topic's last value and seq without sending: a
 * restarted daemon primes the cache with the records it re-derives but had published before,
 * so late subscribers get them and seq continues where it was. */
int publisher_prime(struct publisher *p, const char *topic, const char *payload, size_t len);

/* The XPUB socket, polled for ZMQ_POLLIN (subscriptions). Borrowed. */
void *publisher_socket(struct publisher *p);

/* How many times the publisher has called into libzmq on its socket (publisher_send and
 * publisher_on_readable). A loop watching the socket's ZMQ_FD asks ZMQ_EVENTS again when this
 * changed: the fd only signals commands reaching the socket, and any call may consume that. */
uint64_t publisher_socket_ops(const struct publisher *p);

/* Reads pending subscription frames without blocking (at most 64 per call; the loop asks
 * ZMQ_EVENTS again after a call, so more waiting are read next turn); for each subscribe
 * re-sends the cached value of every topic starting with its prefix (the empty prefix matches
 * all), oldest update first.
 * Returns the number of frames read, or a negative errno. */
int publisher_on_readable(struct publisher *p);

void publisher_get_stats(const struct publisher *p, struct publish_stats *ret);

/* Topic builders. Components must be non-empty and free of '/' (so prefixes stay exact) and
 * of control characters. Write a NUL-terminated topic into buf; return its length,
 * -EINVAL for a bad component or -ENAMETOOLONG when it does not fit (or exceeds
 * PUBLISH_TOPIC_MAX). */
int publish_topic_feature(char *buf, size_t cap, const char *participant, const char *feature);
int publish_topic_nudge(char *buf, size_t cap, const char *participant);
int publish_topic_status(char *buf, size_t cap, const char *source);
int publish_topic_event(char *buf, size_t cap, const char *participant, const char *type);

#endif
