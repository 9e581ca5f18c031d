/* The XPUB feed: per-topic seq, last-value cache (LVC), non-blocking sends.
 *
 * Invariants:
 *   - every topic's seq increases by exactly 1 per publisher_send, whether or not the message
 *     reached anyone, so a subscriber's gap always means "you missed something";
 *   - the cache holds at most max_topics entries; when full, the least recently updated topic
 *     is evicted (counted) and its seq restarts at 1 if it is published again;
 *   - nothing here blocks: sends use ZMQ_DONTWAIT and NODROP turns a full queue into EAGAIN.
 *
 * The cache is a chained hash table plus a doubly linked list ordered by last update (oldest
 * first), so eviction and "move to newest" are O(1) and a replay walks topics in update order.
 *
 * Threading: loop thread only. */
#include "daemon/publish.h"
#include "pipeline/record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define SUBSCRIPTION_MAX 4096   /* inbound message size limit on the XPUB (subscriptions) */
#define SEQ_SUFFIX_MAX 32       /* ,"seq":18446744073709551615} */
/* Subscription frames handled per publisher_on_readable call: each may replay the whole
 * cache, so a peer flooding subscriptions must not keep the loop from everything else.
 * The loop serves the socket again next turn while frames remain. */
#define SUBSCRIPTION_BATCH_MAX 64

struct lvc_entry {
    struct lvc_entry *hnext;
    struct lvc_entry *older, *newer;
    uint64_t seq;
    uint32_t hash;
    size_t topic_len;
    char *msg;                  /* payload as last sent, seq included */
    size_t msg_len, msg_cap;
    char topic[];
};

struct publisher {
    void *sock;
    char **endpoints;
    size_t n_endpoints;
    struct lvc_entry **buckets;
    size_t n_buckets;           /* power of two */
    struct lvc_entry *oldest, *newest;
    size_t n_topics, max_topics;
    int replay_on;              /* 0: lvc_max_topics was 0, the cache is off */
    struct publish_stats st;
    uint64_t ops;               /* libzmq calls on sock, see publisher_socket_ops */
};

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static void lru_unlink(struct publisher *p, struct lvc_entry *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        p->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        p->newest = e->older;
    e->older = e->newer = NULL;
}

static void lru_push_newest(struct publisher *p, struct lvc_entry *e)
{
    e->older = p->newest;
    e->newer = NULL;
    if (p->newest)
        p->newest->newer = e;
    else
        p->oldest = e;
    p->newest = e;
}

static struct lvc_entry *lvc_find(const struct publisher *p, const char *topic, size_t len, uint32_t h)
{
    for (struct lvc_entry *e = p->buckets[h & (p->n_buckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->topic_len == len && !memcmp(e->topic, topic, len))
            return e;
    return NULL;
}

static void lvc_remove(struct publisher *p, struct lvc_entry *e)
{
    struct lvc_entry **pp = &p->buckets[e->hash & (p->n_buckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(p, e);
    p->n_topics--;
    free(e->msg);
    free(e);
}

/* Doubling keeps chains short; a failed grow only costs speed, so it is not an error. */
static void lvc_maybe_grow(struct publisher *p)
{
    if (p->n_topics < p->n_buckets)
        return;
    size_t nb = p->n_buckets * 2;
    struct lvc_entry **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < p->n_buckets; i++)
        for (struct lvc_entry *e = p->buckets[i], *next; e; e = next) {
            next = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    free(p->buckets);
    p->buckets = b;
    p->n_buckets = nb;
}

static struct lvc_entry *lvc_get(struct publisher *p, const char *topic, size_t len)
{
    uint32_t h = fnv1a(topic, len);
    struct lvc_entry *e = lvc_find(p, topic, len, h);
    if (e)
        return e;
    e = calloc(1, sizeof *e + len + 1);
    if (!e)
        return NULL;
    if (p->n_topics >= p->max_topics && p->oldest) {
        lvc_remove(p, p->oldest);
        p->st.lvc_evictions++;
    }
    memcpy(e->topic, topic, len);
    e->topic_len = len;
    e->hash = h;
    e->hnext = p->buckets[h & (p->n_buckets - 1)];
    p->buckets[h & (p->n_buckets - 1)] = e;
    lru_push_newest(p, e);
    p->n_topics++;
    lvc_maybe_grow(p);
    return e;
}

static int set_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof v) == 0 ? 0 : -zmq_errno();
}

struct publisher *publisher_new_ex(void *zctx, const char *const *endpoints, size_t n,
                                   const struct publish_opts *o, int *err, size_t *err_index)
{
    static const struct publish_opts defaults;
    struct publisher *p = NULL;
    int r = -EINVAL;
    size_t failed = n;

    if (!o)
        o = &defaults;
    if (!zctx || (n && !endpoints) || o->sndhwm < 0 || o->linger_ms < 0)
        goto fail;
    r = -ENOMEM;
    p = calloc(1, sizeof *p);
    if (!p)
        goto fail;
    p->replay_on = o->lvc_max_topics != 0;
    p->max_topics = o->lvc_max_topics ? o->lvc_max_topics : PUBLISH_DEFAULT_LVC_MAX_TOPICS;
    p->n_buckets = 64;
    p->buckets = calloc(p->n_buckets, sizeof *p->buckets);
    p->endpoints = calloc(n ? n : 1, sizeof *p->endpoints);
    if (!p->buckets || !p->endpoints)
        goto fail;
    p->sock = zmq_socket(zctx, ZMQ_XPUB);
    if (!p->sock) {
        r = -zmq_errno();
        goto fail;
    }
    /* VERBOSE: every subscribe reaches us, not only the first for a prefix, or a second
     * subscriber to the same prefix would never get the cached values. NODROP: a full queue
     * becomes EAGAIN, which we count, instead of a silent per-subscriber drop. */
    if ((r = set_int(p->sock, ZMQ_SNDHWM, o->sndhwm ? o->sndhwm : PUBLISH_DEFAULT_SNDHWM)) < 0 ||
        (r = set_int(p->sock, ZMQ_LINGER, o->linger_ms ? o->linger_ms : PUBLISH_DEFAULT_LINGER_MS)) < 0 ||
        (r = set_int(p->sock, ZMQ_XPUB_VERBOSE, 1)) < 0 ||
        (r = set_int(p->sock, ZMQ_XPUB_NODROP, 1)) < 0)
        goto fail;
    int64_t maxmsg = SUBSCRIPTION_MAX;
    if (zmq_setsockopt(p->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0) {
        r = -zmq_errno();
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        char bound[256];
        if (!endpoints[i]) {
            r = -EINVAL;
            failed = i;
            goto fail;
        }
        r = zap_secure_bind(p->sock, endpoints[i], &o->curve, bound, sizeof bound);
        if (r < 0) {
            failed = i;
            goto fail;
        }
        p->endpoints[i] = strdup(bound);
        p->n_endpoints = i + 1;
        if (!p->endpoints[i]) {
            r = -ENOMEM;
            goto fail;
        }
    }
    return p;
fail:
    publisher_free(p);
    if (err)
        *err = r;
    if (err_index)
        *err_index = failed;
    return NULL;
}

struct publisher *publisher_new(void *zctx, const char *const *endpoints, size_t n,
                                const struct publish_opts *o, int *err)
{
    return publisher_new_ex(zctx, endpoints, n, o, err, NULL);
}

void publisher_free(struct publisher *p)
{
    if (!p)
        return;
    if (p->sock)
        zmq_close(p->sock);
    while (p->oldest) {
        struct lvc_entry *e = p->oldest;
        p->oldest = e->newer;
        free(e->msg);
        free(e);
    }
    free(p->buckets);
    for (size_t i = 0; i < p->n_endpoints; i++)
        free(p->endpoints[i]);
    free(p->endpoints);
    free(p);
}

const char *publisher_endpoint(const struct publisher *p, size_t i)
{
    return p && i < p->n_endpoints ? p->endpoints[i] : NULL;
}

void *publisher_socket(struct publisher *p)
{
    return p ? p->sock : NULL;
}

uint64_t publisher_socket_ops(const struct publisher *p)
{
    return p ? p->ops : 0;
}

void publisher_get_stats(const struct publisher *p, struct publish_stats *ret)
{
    if (!ret)
        return;
    *ret = p ? p->st : (struct publish_stats){0};
    if (p)
        ret->lvc_topics = p->n_topics;
}

/* Sends one cached or fresh message. Returns 0, -EAGAIN or -errno. */
static int send_message(struct publisher *p, const char *topic, size_t tlen, const char *msg, size_t mlen)
{
    p->ops++;
    if (zmq_send(p->sock, topic, tlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -zmq_errno();
    /* libzmq checks the HWM per whole message, so once the first frame is accepted the second
     * cannot meet a full queue; if it ever failed, the half-sent message would corrupt the
     * framing of the next one, so this is reported as an I/O error, not a drop. */
    if (zmq_send(p->sock, msg, mlen, ZMQ_DONTWAIT) < 0)
        return zmq_errno() == EAGAIN ? -EIO : -zmq_errno();
    return 0;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Caches payload + seq as the topic's last value; *out is the cache entry. */
static int lvc_update(struct publisher *p, const char *topic, const char *payload, size_t len,
                      struct lvc_entry **out)
{
    if (!p || !topic || (!payload && len))
        return -EINVAL;
    size_t tlen = strlen(topic);
    if (tlen == 0 || tlen > PUBLISH_TOPIC_MAX || len > PUBLISH_PAYLOAD_MAX)
        return -EINVAL;

    /* Only the outer braces are checked: the payload comes from our own serialisers, and a
     * full parse per message would cost more than everything else here. */
    size_t b = 0, e = len;
    while (b < e && is_ws(payload[b]))
        b++;
    while (e > b && is_ws(payload[e - 1]))
        e--;
    if (e - b < 2 || payload[b] != '{' || payload[e - 1] != '}')
        return -EINVAL;
    size_t close = e - 1, last = close;
    while (last > b + 1 && is_ws(payload[last - 1]))
        last--;
    int empty = last == b + 1;

    struct lvc_entry *ent = lvc_get(p, topic, tlen);
    if (!ent)
        return -ENOMEM;
    size_t keep = empty ? 1 : close - b; /* "{ }" becomes {"seq":N} */
    size_t need = keep + SEQ_SUFFIX_MAX;
    if (need > ent->msg_cap) {
        char *m = realloc(ent->msg, need);
        if (!m) {
            if (ent->seq == 0)
                lvc_remove(p, ent); /* never published: do not cache an empty value */
            return -ENOMEM;
        }
        ent->msg = m;
        ent->msg_cap = need;
    }
    uint64_t seq = ent->seq + 1;
    memcpy(ent->msg, payload + b, keep);
    char *w = ent->msg + keep;
    if (!empty)
        *w++ = ',';
    memcpy(w, "\"seq\":", 6);
    w += 6;
    w += fmt_u64(seq, w);
    *w++ = '}';
    ent->msg_len = (size_t)(w - ent->msg);
    ent->seq = seq;
    if (p->newest != ent) {
        lru_unlink(p, ent);
        lru_push_newest(p, ent);
    }
    *out = ent;
    return 0;
}

int publisher_prime(struct publisher *p, const char *topic, const char *payload, size_t len)
{
    struct lvc_entry *ent;
    return lvc_update(p, topic, payload, len, &ent);
}

int publisher_send(struct publisher *p, const char *topic, const char *payload, size_t len)
{
    struct lvc_entry *ent;
    int r = lvc_update(p, topic, payload, len, &ent);
    if (r < 0)
        return r;
    r = send_message(p, ent->topic, ent->topic_len, ent->msg, ent->msg_len);
    if (r == -EAGAIN)
        p->st.dropped++;
    else if (r == 0)
        p->st.sent++;
    return r;
}

/* Re-sends every cached topic that starts with prefix, oldest update first. */
static int replay(struct publisher *p, const char *prefix, size_t plen)
{
    for (struct lvc_entry *e = p->oldest; e; e = e->newer) {
        if (e->msg_len == 0 || e->topic_len < plen || memcmp(e->topic, prefix, plen))
            continue;
        int r = send_message(p, e->topic, e->topic_len, e->msg, e->msg_len);
        if (r == -EAGAIN)
            p->st.replay_dropped++;
        else if (r < 0)
            return r;
        else
            p->st.replayed++;
    }
    return 0;
}

int publisher_on_readable(struct publisher *p)
{
    if (!p)
        return -EINVAL;
    int n = 0;
    p->ops++;
    while (n < SUBSCRIPTION_BATCH_MAX) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, p->sock, ZMQ_DONTWAIT) < 0) {
            int r = zmq_errno();
            zmq_msg_close(&m);
            return r == EAGAIN || r == EINTR ? n : -r;
        }
        n++;
        /* A subscription is a single frame; anything multipart (an XSUB peer sending data)
         * is drained and ignored. */
        int more = zmq_msg_more(&m);
        const char *d = zmq_msg_data(&m);
        size_t sz = zmq_msg_size(&m);
        int r = 0;
        if (!more && sz >= 1 && d[0] == 1) {
            p->st.subscriptions++;
            if (p->replay_on)
                r = replay(p, d + 1, sz - 1);
        } else if (!more && sz >= 1 && d[0] == 0)
            p->st.unsubscriptions++;
        zmq_msg_close(&m);
        while (more) {
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, p->sock, ZMQ_DONTWAIT) < 0)
                more = 0;
            else
                more = zmq_msg_more(&m);
            zmq_msg_close(&m);
        }
        if (r < 0)
            return r;
    }
    return n;
}

/* ---- topics ---- */

static int component_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (*s == '/' || (unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static int topic_build(char *buf, size_t cap, const char *kind, const char *a, const char *b)
{
    if (!buf || !component_ok(a) || (b && !component_ok(b)))
        return -EINVAL;
    const char *part[3] = {kind, a, b};
    size_t n = 0;
    for (size_t i = 0; i < 3 && part[i]; i++) {
        size_t l = strlen(part[i]);
        if (n + (i > 0) + l >= cap || n + (i > 0) + l > PUBLISH_TOPIC_MAX) {
            if (cap)
                buf[0] = '\0';
            return -ENAMETOOLONG;
        }
        if (i)
            buf[n++] = '/';
        memcpy(buf + n, part[i], l);
        n += l;
    }
    buf[n] = '\0';
    return (int)n;
}

int publish_topic_feature(char *buf, size_t cap, const char *participant, const char *feature)
{
    return topic_build(buf, cap, "feature", participant, feature ? feature : "");
}

int publish_topic_nudge(char *buf, size_t cap, const char *participant)
{
    return topic_build(buf, cap, "nudge", participant, NULL);
}

int publish_topic_status(char *buf, size_t cap, const char *source)
{
    return topic_build(buf, cap, "status", source, NULL);
}

int publish_topic_event(char *buf, size_t cap, const char *participant, const char *type)
{
    return topic_build(buf, cap, "event", participant, type ? type : "");
}
