/* The caller's side of the store writer thread (store_writer.c): starting and stopping
 * it, and the non-blocking requests and replies the daemon's loop uses. Nothing here
 * touches SQLite after start-up, so the main loop never waits on the disk; the only
 * blocking calls are store_flush, store_wait_room and store_writer_stop, meant for
 * shutdown, backpressure and tests. */
#include "daemon/store_int.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void writer_free(struct store_writer *w)
{
    while (w->head) {
        struct mq_msg *m = w->head;
        w->head = m->next;
        mq_msg_free(m);
    }
    mq_msg_free(w->stop);
    mq_destroy(&w->req);
    mq_destroy(&w->rep);
    if (w->db)
        store__ckpt_stop(w->ckpt, store__sync_db(w->db));
    store_sync_close(w->db);
    free(w);
}

struct store_writer *store_writer_start(const char *path, const struct store_opts *in, int *err)
{
    struct store_writer *w = calloc(1, sizeof *w);
    int r = w ? 0 : -ENOMEM;
    if (w)
        w->req.efd = w->rep.efd = -1; /* what mq_destroy leaves alone */
    if (r == 0)
        r = store__norm_opts(in, &w->o);
    if (r == 0)
        r = store_sync_open(path, &w->o, &w->db);
    if (r == 0)
        r = store__ckpt_start(path, store__sync_db(w->db), &w->ckpt);
    /* queue_hwm bounds the event requests in flight (counted in store_submit_events); the
     * request queue's limit bounds fire-and-forget records and nudges, above what that
     * budget can queue. Replies are bounded by the budget, so the thread never waits. */
    if (r == 0) {
        w->budget = w->o.queue_hwm > 1 ? (size_t)w->o.queue_hwm / 2 : 1;
        r = mq_init(&w->req, (size_t)w->o.queue_hwm + 1024);
    }
    if (r == 0)
        r = mq_init(&w->rep, 0);
    if (r == 0 && !(w->stop = mq_msg_new(1)))
        r = -ENOMEM;
    if (r == 0)
        w->stop->data[0] = M_STOP;
    if (r == 0) {
        /* The daemon takes signals through signalfd on the main thread; a thread created
         * with everything blocked can never receive one, not even before it runs. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&w->thr, NULL, store__writer_main, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (r < 0) {
        if (w)
            writer_free(w);
        if (err)
            *err = r;
        return NULL;
    }
    return w;
}

int store_writer_fd(const struct store_writer *w) { return mq_fd(&w->rep); }
int store_replies_held(const struct store_writer *w) { return w->head != NULL; }

int store_wait_room(struct store_writer *w, int timeout_ms)
{
    mq_wait_room(&w->req, timeout_ms);
    return 0;
}

static int send_now(struct store_writer *w, struct mq_msg *m)
{
    int r = mq_send(&w->req, m);
    if (r < 0)
        mq_msg_free(m);
    return r;
}

static int str_len(const char *s, uint16_t *len)
{
    if (!s || !*s)
        return -EINVAL;
    size_t n = strnlen(s, STORE_STR_MAX + 1);
    *len = (uint16_t)n;
    return n > STORE_STR_MAX ? -EMSGSIZE : 0;
}

static uint8_t *put(uint8_t *p, const void *v, size_t n)
{
    memcpy(p, v, n);
    return p + n;
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t n)
{
    if (n)
        memcpy(p, s, n);
    p[n] = 0;
    return p + n + 1;
}

/* The lengths of an event's strings (a refusal's type and an event's reason are ""), or
 * -errno. */
static int event_lens(const struct store_event *e, struct wire_event *we)
{
    int r;
    if ((r = str_len(e->source, &we->source_len)) < 0 ||
        (r = str_len(e->participant, &we->participant_len)) < 0)
        return r;
    if (e->refused) {
        if (!e->has_seq || e->hub_seq)
            return -EINVAL; /* only a seq of the source's own is processed by a refusal */
        we->type_len = 0;
        r = str_len(e->refused, &we->reason_len);
    } else {
        we->reason_len = 0;
        r = str_len(e->type, &we->type_len);
    }
    if (r < 0)
        return r;
    if (!e->body && (e->body_len || !e->refused))
        return -EINVAL;
    return e->body_len > STORE_BODY_MAX ? -EMSGSIZE : 0;
}

/* The encoded size of one event in an EVENTS request, or -errno. */
static long event_size(const struct store_event *e)
{
    struct wire_event we;
    int r = event_lens(e, &we);
    if (r < 0)
        return r;
    return (long)(sizeof we + we.source_len + we.participant_len + we.type_len + we.reason_len +
                  e->body_len + 5);
}

int store_fit_add(struct store_fit *f, const struct store_event *e)
{
    size_t total = f->bytes ? f->bytes : 1 + sizeof(struct wire_req);
    long sz = event_size(e);
    if (f->n >= STORE_BATCH_MAX_LIMIT || sz < 0 || total + (size_t)sz > STORE_REQ_MAX_BYTES)
        return 0;
    f->bytes = total + (size_t)sz;
    f->n++;
    return 1;
}

int store_writer_has_room(const struct store_writer *w) { return w->outstanding < w->budget; }

int store_submit_events(struct store_writer *w, uint64_t token, const struct store_event *ev,
                        size_t n)
{
    if (n == 0 || n > STORE_BATCH_MAX_LIMIT)
        return -EINVAL;
    if (w->outstanding >= w->budget)
        return -EAGAIN; /* read replies first: that is the backpressure */
    size_t total = 1 + sizeof(struct wire_req);
    for (size_t i = 0; i < n; i++) {
        long sz = event_size(&ev[i]);
        if (sz < 0)
            return (int)sz;
        total += (size_t)sz;
        if (total > STORE_REQ_MAX_BYTES)
            return -EMSGSIZE;
    }
    struct mq_msg *m = mq_msg_new(total);
    if (!m)
        return -ENOMEM;
    uint8_t *p = m->data;
    struct wire_req rq;
    memset(&rq, 0, sizeof rq);
    rq.token = token;
    rq.n = (uint32_t)n;
    *p++ = M_EVENTS;
    p = put(p, &rq, sizeof rq);
    for (size_t i = 0; i < n; i++) {
        const struct store_event *e = &ev[i];
        struct wire_event we;
        memset(&we, 0, sizeof we);
        we.has_seq = e->has_seq != 0;
        we.hub_seq = e->has_seq && e->hub_seq;
        we.seq = e->has_seq ? e->seq : 0;
        we.ts = e->ts;
        we.received = e->received;
        we.body_len = (uint32_t)e->body_len;
        we.refused = e->refused != NULL;
        (void)event_lens(e, &we); /* checked by event_size above */
        p = put(p, &we, sizeof we);
        p = put_str(p, e->source, we.source_len);
        p = put_str(p, e->participant, we.participant_len);
        p = put_str(p, e->type, we.type_len);
        p = put_str(p, e->body, we.body_len);
        p = put_str(p, e->refused, we.reason_len);
    }
    int r = send_now(w, m);
    if (r == 0)
        w->outstanding++;
    return r;
}

int store_submit_record(struct store_writer *w, const struct store_record *r)
{
    struct wire_record wr;
    int e;
    memset(&wr, 0, sizeof wr);
    if ((e = str_len(r->participant, &wr.participant_len)) < 0 ||
        (e = str_len(r->feature, &wr.feature_len)) < 0 ||
        (e = str_len(r->window, &wr.window_len)) < 0)
        return e;
    if (!r->body)
        return -EINVAL;
    if (r->body_len > STORE_BODY_MAX)
        return -EMSGSIZE;
    wr.start = r->start;
    wr.end = r->end;
    wr.revision = r->revision;
    wr.body_len = (uint32_t)r->body_len;
    struct mq_msg *m = mq_msg_new(1 + sizeof wr + wr.participant_len + wr.feature_len +
                                  wr.window_len + wr.body_len + 4);
    if (!m)
        return -ENOMEM;
    uint8_t *p = m->data;
    *p++ = M_RECORD;
    p = put(p, &wr, sizeof wr);
    p = put_str(p, r->participant, wr.participant_len);
    p = put_str(p, r->feature, wr.feature_len);
    p = put_str(p, r->window, wr.window_len);
    put_str(p, r->body, wr.body_len);
    return send_now(w, m);
}

int store_submit_nudge(struct store_writer *w, const struct store_nudge *nu)
{
    struct wire_nudge wn;
    int e;
    memset(&wn, 0, sizeof wn);
    if ((e = str_len(nu->participant, &wn.participant_len)) < 0 ||
        (e = str_len(nu->rule, &wn.rule_len)) < 0)
        return e;
    if (nu->body && nu->body_len > STORE_BODY_MAX)
        return -EMSGSIZE;
    wn.ts = nu->ts;
    wn.decided = nu->decided;
    wn.has_body = nu->body != NULL;
    wn.body_len = nu->body ? (uint32_t)nu->body_len : 0;
    struct mq_msg *m = mq_msg_new(1 + sizeof wn + wn.participant_len + wn.rule_len +
                                  wn.body_len + 3);
    if (!m)
        return -ENOMEM;
    uint8_t *p = m->data;
    *p++ = M_NUDGE;
    p = put(p, &wn, sizeof wn);
    p = put_str(p, nu->participant, wn.participant_len);
    p = put_str(p, nu->rule, wn.rule_len);
    put_str(p, nu->body, wn.body_len);
    return send_now(w, m);
}

int store_submit_gatt_cache(struct store_writer *w, const char *device, const uint8_t *blob,
                            size_t len)
{
    struct wire_gatt wg;
    int e;
    memset(&wg, 0, sizeof wg);
    if ((e = str_len(device, &wg.device_len)) < 0)
        return e;
    if (blob && (len == 0 || len > STORE_BLOB_MAX))
        return len ? -EMSGSIZE : -EINVAL;
    wg.has_blob = blob != NULL;
    wg.blob_len = blob ? (uint32_t)len : 0;
    struct mq_msg *m = mq_msg_new(1 + sizeof wg + wg.device_len + 1 + wg.blob_len);
    if (!m)
        return -ENOMEM;
    uint8_t *p = m->data;
    *p++ = M_GATT;
    p = put(p, &wg, sizeof wg);
    p = put_str(p, device, wg.device_len);
    if (blob)
        memcpy(p, blob, len);
    return send_now(w, m);
}

/* Decodes an R_EVENTS reply; -EBADMSG for anything else. */
static int parse_reply(const uint8_t *d, size_t len, uint64_t *token, int *status_all,
                       uint8_t *per_event, size_t cap, size_t *n)
{
    struct wire_reply h;
    if (len < WIRE_REPLY_LEN || d[0] != R_EVENTS)
        return -EBADMSG;
    memcpy(&h, d + 1, sizeof h);
    if (len < WIRE_REPLY_LEN + (size_t)h.n)
        return -EBADMSG;
    *token = h.token;
    *status_all = h.status;
    if (per_event)
        memcpy(per_event, d + WIRE_REPLY_LEN, h.n < cap ? h.n : cap);
    *n = h.n;
    return 0;
}

int store_read_reply(struct store_writer *w, uint64_t *token, int *status_all,
                     uint8_t *per_event, size_t cap, size_t *n)
{
    for (;;) {
        struct mq_msg *m = w->head;
        if (m) {
            if (!(w->head = m->next))
                w->tail = NULL;
        } else if (!(m = mq_recv(&w->rep))) {
            return -EAGAIN;
        }
        /* Anything but an events reply is a leftover of a timed-out flush: skip it. */
        int r = parse_reply(m->data, m->len, token, status_all, per_event, cap, n);
        mq_msg_free(m);
        if (r == 0) {
            w->outstanding--;
            return 0;
        }
    }
}

static void hold(struct store_writer *w, struct mq_msg *m)
{
    m->next = NULL;
    if (w->tail)
        w->tail->next = m;
    else
        w->head = m;
    w->tail = m;
}

/* Sends a control message (M_FLUSH or M_STOP, whatever the queue's limit) and waits for its
 * answer, taking the replies that come before it: kept for store_read_reply (keep, a flush)
 * or dropped (a stop). Returns the answer's status, -ETIMEDOUT or a negative errno. */
static int control(struct store_writer *w, struct mq_msg *out, uint8_t want, int timeout_ms,
                   int keep)
{
    int64_t deadline = timeout_ms >= 0 ? daemon_mono_ms() + timeout_ms : 0;
    struct wire_req rq = {0};
    if (out->len >= 1 + sizeof rq)
        memcpy(&rq, out->data + 1, sizeof rq);
    mq_send_force(&w->req, out);
    for (;;) {
        struct mq_msg *m = mq_recv(&w->rep);
        if (!m) {
            long left = -1;
            if (timeout_ms >= 0 && (left = (long)(deadline - daemon_mono_ms())) <= 0)
                return -ETIMEDOUT;
            int r = mq_wait(&w->rep, left > INT32_MAX ? INT32_MAX : (int)left);
            if (r < 0)
                return r;
            continue;
        }
        const uint8_t *d = m->data;
        size_t dl = m->len;
        int done = 0, r = 0;
        struct wire_reply h;
        if (dl && d[0] == R_EVENTS) {
            if (keep) {
                hold(w, m);
                continue;
            }
        } else if (dl && d[0] == want && want == R_STOPPED) {
            done = 1;
        } else if (dl >= WIRE_REPLY_LEN && d[0] == want) {
            memcpy(&h, d + 1, sizeof h);
            if (h.token == rq.token) /* else the answer to an earlier, timed-out flush */
                done = 1, r = h.status;
        }
        mq_msg_free(m);
        if (done)
            return r;
    }
}

int store_flush(struct store_writer *w, int timeout_ms)
{
    struct mq_msg *m = mq_msg_new(1 + sizeof(struct wire_req));
    if (!m)
        return -ENOMEM;
    struct wire_req rq;
    memset(&rq, 0, sizeof rq);
    rq.token = ++w->flush_seq;
    m->data[0] = M_FLUSH;
    memcpy(m->data + 1, &rq, sizeof rq);
    return control(w, m, R_FLUSHED, timeout_ms, 1);
}

void store_writer_stats(const struct store_writer *w, struct store_stats *s)
{
    /* C11 atomic loads take a non-const pointer even when they only read. */
    struct store_writer *m = (struct store_writer *)w;
    s->events_inserted = atomic_load_explicit(&m->n_ins, memory_order_relaxed);
    s->events_duplicate = atomic_load_explicit(&m->n_dup, memory_order_relaxed);
    s->events_failed = atomic_load_explicit(&m->n_fail, memory_order_relaxed);
    s->records = atomic_load_explicit(&m->n_rec, memory_order_relaxed);
    s->nudges = atomic_load_explicit(&m->n_nudge, memory_order_relaxed);
    s->gatt_cache = atomic_load_explicit(&m->n_gatt, memory_order_relaxed);
    s->records_dropped = atomic_load_explicit(&m->n_drop, memory_order_relaxed);
    s->commits = atomic_load_explicit(&m->n_commit, memory_order_relaxed);
    s->commit_errors = atomic_load_explicit(&m->n_cerr, memory_order_relaxed);
    s->heartbeat = atomic_load_explicit(&m->hb, memory_order_relaxed);
    s->last_error = atomic_load_explicit(&m->last_err, memory_order_relaxed);
    store__ckpt_counts(m->ckpt, &s->checkpoints, &s->checkpoint_failures, &s->checkpoint_busy);
}

void store_writer_stop(struct store_writer *w)
{
    if (!w)
        return;
    /* No timeout: the thread answers once its last commit is done, however slow the disk;
     * returning earlier would leave it running with queues we are about to free. The
     * message was made at start, so nothing can fail here. */
    struct mq_msg *m = w->stop;
    w->stop = NULL;
    control(w, m, R_STOPPED, -1, 0);
    pthread_join(w->thr, NULL);
    writer_free(w);
}
