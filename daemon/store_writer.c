/* The store's writer thread. It owns the only write connection (a store_sync) and is fed
 * through a message queue by store_client.c (daemon/mq.h): requests are handed over as
 * whole messages, never as shared state, so the only lock is the queue's own.
 *
 * It keeps one transaction open while requests keep arriving and commits when the queue
 * is momentarily empty, batch_max rows are written or batch_delay has passed: under load
 * this groups many requests into one fsync, when idle it commits at once. Replies for
 * events are sent only after COMMIT returned, which is what lets the daemon acknowledge
 * ingest clients without ever losing an acknowledged event.
 *
 * Records, nudges and attribute cache entries are fire-and-forget, so a failed transaction
 * cannot hand them back to their sender the way events are: the thread keeps their messages
 * and writes them again, first and in their original order, in the next transaction.
 * Restart recovery counts stored records to know how many to suppress, so a record that
 * silently went missing would shift that count (docs/architecture.md). */
#include "daemon/store_int.h"

#include <stdlib.h>
#include <string.h>

#define ADD(w, f, v) atomic_fetch_add_explicit(&(w)->f, (v), memory_order_relaxed)

/* A bounded reader over a received frame; any overrun or missing terminator sets bad. */
struct cur {
    const uint8_t *p, *end;
    int bad;
};

/* The next n bytes (borrowed), or NULL with c->bad set when the message is shorter. */
static const uint8_t *get_bytes(struct cur *c, size_t n)
{
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = 1;
        return NULL;
    }
    const uint8_t *b = c->p;
    c->p += n;
    return b;
}

static void get(struct cur *c, void *v, size_t n)
{
    const uint8_t *b = get_bytes(c, n);
    if (b)
        memcpy(v, b, n);
    else
        memset(v, 0, n);
}

/* A string of n bytes and its terminating NUL. */
static const char *get_str(struct cur *c, size_t n)
{
    const uint8_t *b = n < SIZE_MAX ? get_bytes(c, n + 1) : NULL;
    if (!b || b[n] != 0) {
        c->bad = 1;
        return NULL;
    }
    return (const char *)b;
}

/* A record, nudge or cache entry message is kept, as it came, until its transaction
 * commits; its link serves the lists below. */
struct klist {
    struct mq_msg *head, **tailp;
    size_t n;
};

/* Most records and nudges waiting for a retry while the disk keeps failing; beyond it the
 * newest are dropped and counted (bounded memory). */
#define RETRY_MAX 65536

static void kl_init(struct klist *l)
{
    l->head = NULL;
    l->tailp = &l->head;
    l->n = 0;
}

static void kl_push(struct klist *l, struct mq_msg *k)
{
    k->next = NULL;
    *l->tailp = k;
    l->tailp = &k->next;
    l->n++;
}

static void kl_append(struct klist *to, struct klist *from)
{
    if (!from->head)
        return;
    *to->tailp = from->head;
    to->tailp = from->tailp;
    to->n += from->n;
    kl_init(from);
}

static void kl_free(struct klist *l)
{
    for (struct mq_msg *k = l->head, *next; k; k = next) {
        next = k->next;
        mq_msg_free(k);
    }
    kl_init(l);
}

struct wctx {
    struct store_writer *w;
    struct klist tx;    /* records and nudges written in the open transaction */
    struct klist retry; /* those of failed transactions, oldest first */
    struct store_event *evs;
    size_t evcap;
    struct mq_msg **pend; /* R_EVENTS replies waiting for COMMIT, in arrival order */
    size_t npend, cappend;
    uint64_t recs, nudges, gatts; /* written in the open transaction */
    int in_tx;
    int64_t t0; /* when the open transaction took its first request */
    int sticky; /* first failure since the last flush */
};

/* The reply queue has no limit: the caller's budget bounds the events replies in it. */
static void wsend(struct wctx *c, struct mq_msg *m)
{
    mq_send_force(&c->w->rep, m);
}

static void send_reply(struct wctx *c, struct mq_msg *m, int status)
{
    uint8_t *rep = m->data;
    struct wire_reply h;
    uint8_t *st = rep + WIRE_REPLY_LEN;
    memcpy(&h, rep + 1, sizeof h);
    h.status = status;
    memcpy(rep + 1, &h, sizeof h);
    if (status < 0) {
        memset(st, STORE_ERROR, h.n);
        ADD(c->w, n_fail, h.n);
    } else {
        uint64_t count[3] = { 0 };
        for (uint32_t i = 0; i < h.n; i++)
            count[st[i] <= STORE_ERROR ? st[i] : STORE_ERROR]++;
        ADD(c->w, n_ins, count[STORE_INSERTED]);
        ADD(c->w, n_dup, count[STORE_DUPLICATE]);
        ADD(c->w, n_fail, count[STORE_ERROR]);
    }
    wsend(c, m);
}

/* Ends the open transaction: commits it (err == 0) or discards it, then answers every
 * request it held, in order. */
static void finish_tx(struct wctx *c, int err)
{
    if (!c->in_tx)
        return;
    struct store_writer *w = c->w;
    if (err == 0)
        err = store_sync_commit(w->db);
    else
        store_sync_rollback(w->db);
    if (err < 0) {
        ADD(w, n_cerr, 1);
        atomic_store_explicit(&w->last_err, err, memory_order_relaxed);
        if (!c->sticky)
            c->sticky = err;
        kl_append(&c->retry, &c->tx);
        if (c->retry.n > RETRY_MAX) { /* drop the newest: the order of the rest holds */
            struct mq_msg **pp = &c->retry.head;
            for (size_t i = 0; i < RETRY_MAX; i++)
                pp = &(*pp)->next;
            struct klist cut = { *pp, c->retry.tailp, c->retry.n - RETRY_MAX };
            *pp = NULL;
            c->retry.tailp = pp;
            c->retry.n = RETRY_MAX;
            ADD(w, n_drop, cut.n);
            kl_free(&cut);
        }
    } else {
        ADD(w, n_commit, 1);
        ADD(w, n_rec, c->recs);
        ADD(w, n_nudge, c->nudges);
        ADD(w, n_gatt, c->gatts);
        kl_free(&c->tx);
    }
    for (size_t i = 0; i < c->npend; i++)
        send_reply(c, c->pend[i], err);
    c->npend = 0;
    c->recs = c->nudges = c->gatts = 0;
    c->in_tx = 0;
}

static int apply_kept(struct wctx *c, struct mq_msg *k);

/* Starts accounting for a new transaction (the engine begins it on the first write),
 * writing first whatever failed transactions left to retry. */
static void open_tx(struct wctx *c)
{
    if (c->in_tx)
        return;
    c->in_tx = 1;
    c->t0 = daemon_mono_ms();
    struct klist todo = c->retry;
    if (!todo.head)
        return;
    kl_init(&c->retry);
    for (struct mq_msg *k = todo.head, *next; k; k = next) {
        next = k->next;
        if (apply_kept(c, k) < 0) { /* failed again: the rest waits, in order, behind it */
            while ((k = next)) {
                next = k->next;
                kl_push(&c->retry, k);
            }
            break;
        }
    }
    /* The message that opened this transaction is written next, whatever happened. */
    if (!c->in_tx) {
        c->in_tx = 1;
        c->t0 = daemon_mono_ms();
    }
}

static int write_record(struct wctx *c, struct cur *cu)
{
    struct wire_record wr;
    get(cu, &wr, sizeof wr);
    struct store_record r = { .start = wr.start, .end = wr.end, .revision = wr.revision,
                              .body_len = wr.body_len };
    r.participant = get_str(cu, wr.participant_len);
    r.feature = get_str(cu, wr.feature_len);
    r.window = get_str(cu, wr.window_len);
    r.body = get_str(cu, wr.body_len);
    return cu->bad ? -EBADMSG : store_sync_record(c->w->db, &r);
}

static int write_nudge(struct wctx *c, struct cur *cu)
{
    struct wire_nudge wn;
    get(cu, &wn, sizeof wn);
    struct store_nudge nu = { .ts = wn.ts, .decided = wn.decided, .body_len = wn.body_len };
    nu.participant = get_str(cu, wn.participant_len);
    nu.rule = get_str(cu, wn.rule_len);
    nu.body = get_str(cu, wn.body_len);
    if (!wn.has_body)
        nu.body = NULL;
    return cu->bad ? -EBADMSG : store_sync_nudge(c->w->db, &nu);
}

static int write_gatt(struct wctx *c, struct cur *cu)
{
    struct wire_gatt wg;
    get(cu, &wg, sizeof wg);
    const char *device = get_str(cu, wg.device_len);
    const uint8_t *blob = wg.has_blob ? get_bytes(cu, wg.blob_len) : NULL;
    return cu->bad ? -EBADMSG : store_sync_gatt_cache(c->w->db, device, blob, wg.blob_len);
}

/* Writes a record, nudge or cache entry message into the open transaction and keeps it until
 * the commit. Returns 0, or the negative errno that rolled the transaction back (k then waits
 * for a retry). A row-level failure (an invalid row) drops k, counted. */
static int apply_kept(struct wctx *c, struct mq_msg *k)
{
    const uint8_t *p = k->data;
    size_t len = k->len;
    struct cur cu = { p + 1, p + len, 0 };
    int e = p[0] == M_RECORD ? write_record(c, &cu)
            : p[0] == M_NUDGE ? write_nudge(c, &cu) : write_gatt(c, &cu);
    if (e < 0 && store_sync_in_transaction(c->w->db)) {
        ADD(c->w, n_drop, 1);
        mq_msg_free(k);
        return 0;
    }
    kl_push(&c->tx, k); /* committed with its transaction, or retried with it */
    if (e < 0) {
        finish_tx(c, e);
        return e;
    }
    if (p[0] == M_RECORD)
        c->recs++;
    else if (p[0] == M_NUDGE)
        c->nudges++;
    else
        c->gatts++;
    return 0;
}

static void on_kept(struct wctx *c, struct mq_msg *k)
{
    open_tx(c);
    apply_kept(c, k);
}

/* Makes room for a request of n events; 0 or -ENOMEM. */
static int reserve(struct wctx *c, uint32_t n)
{
    if (n > c->evcap) {
        struct store_event *ne = realloc(c->evs, n * sizeof *ne);
        if (!ne)
            return -ENOMEM;
        c->evs = ne;
        c->evcap = n;
    }
    if (c->npend == c->cappend) {
        size_t cap = c->cappend ? 2 * c->cappend : 64;
        struct mq_msg **np = realloc(c->pend, cap * sizeof *np);
        if (!np)
            return -ENOMEM;
        c->pend = np;
        c->cappend = cap;
    }
    return 0;
}

/* The request's own message becomes a short answer (it is at least as long: both are a
 * type byte and a 16-byte header), so that answering needs no memory. */
_Static_assert(sizeof(struct wire_req) + 1 >= WIRE_REPLY_LEN, "a request holds a reply");

static void answer_in_place(struct wctx *c, struct mq_msg *m, uint8_t type,
                            const struct wire_reply *h)
{
    m->data[0] = type;
    memcpy(m->data + 1, h, sizeof *h);
    m->len = WIRE_REPLY_LEN;
    wsend(c, m);
}

/* Takes m. */
static void on_events(struct wctx *c, struct mq_msg *m)
{
    struct cur cu = { m->data + 1, m->data + m->len, 0 };
    struct wire_req rq;
    get(&cu, &rq, sizeof rq);
    if (cu.bad || rq.n > STORE_BATCH_MAX_LIMIT) {
        mq_msg_free(m);
        return; /* cannot even name the request: impossible with our own encoder */
    }
    struct wire_reply h = { .token = rq.token, .n = rq.n };
    struct mq_msg *rm = mq_msg_new(WIRE_REPLY_LEN + (size_t)rq.n);
    if (!rm || reserve(c, rq.n) < 0) {
        /* Out of memory: refuse the request with no statuses, after answering the held
         * ones so that replies stay in submit order. The client will resend. */
        mq_msg_free(rm);
        finish_tx(c, 0);
        ADD(c->w, n_fail, rq.n);
        h.status = -ENOMEM;
        h.n = 0;
        answer_in_place(c, m, R_EVENTS, &h);
        return;
    }
    uint8_t *rep = rm->data;
    rep[0] = R_EVENTS;
    memcpy(rep + 1, &h, sizeof h);
    for (uint32_t i = 0; i < rq.n; i++) {
        struct store_event *e = &c->evs[i];
        struct wire_event we;
        get(&cu, &we, sizeof we);
        *e = (struct store_event){ .seq = we.seq, .has_seq = we.has_seq,
                                   .hub_seq = we.hub_seq, .ts = we.ts,
                                   .received = we.received, .body_len = we.body_len };
        e->source = get_str(&cu, we.source_len);
        e->participant = get_str(&cu, we.participant_len);
        e->type = get_str(&cu, we.type_len);
        e->body = get_str(&cu, we.body_len);
        const char *why = get_str(&cu, we.reason_len);
        e->refused = we.refused ? why : NULL;
    }
    if (cu.bad) { /* a corrupt request fails alone */
        mq_msg_free(m);
        finish_tx(c, 0);
        send_reply(c, rm, -EBADMSG);
        return;
    }
    open_tx(c);
    c->pend[c->npend++] = rm;
    int r = store_sync_events(c->w->db, c->evs, rq.n, rep + WIRE_REPLY_LEN);
    mq_msg_free(m); /* the strings were bound for the call only */
    if (r < 0) /* the transaction is gone, and with it every request it held */
        finish_tx(c, r);
}

/* Takes m. */
static void on_flush(struct wctx *c, struct mq_msg *m)
{
    struct cur cu = { m->data + 1, m->data + m->len, 0 };
    struct wire_req rq;
    get(&cu, &rq, sizeof rq);
    finish_tx(c, 0);
    if (c->retry.head) { /* a flush is a good moment to try the leftovers again */
        open_tx(c);
        finish_tx(c, 0);
    }
    struct wire_reply h = { .token = rq.token, .status = c->sticky };
    c->sticky = 0;
    if (cu.bad) { /* impossible with our own encoder; answer anyway, nobody waits for ever */
        mq_msg_free(m);
        if (!(m = mq_msg_new(WIRE_REPLY_LEN)))
            return;
    }
    answer_in_place(c, m, R_FLUSHED, &h);
}

void *store__writer_main(void *arg)
{
    struct wctx c = { .w = arg };
    struct store_writer *w = c.w;
    kl_init(&c.tx);
    kl_init(&c.retry);
    struct mq_msg *stop = NULL;
    while (!stop) {
        ADD(w, hb, 1);
        struct mq_msg *m = mq_recv(&w->req);
        if (!m) {
            /* Momentarily empty: commit now, then wait (a request queued meanwhile has made
             * the queue's fd readable again). The wait lasts at most a second, so the
             * heartbeat shows the thread alive, and what a failed transaction left is
             * retried after a second without requests. */
            if (c.in_tx)
                finish_tx(&c, 0);
            if (mq_wait(&w->req, 1000) == 0 && c.retry.head) {
                open_tx(&c);
                finish_tx(&c, 0);
            }
            continue;
        }
        switch (m->len ? m->data[0] : 0) {
        case M_EVENTS: on_events(&c, m); break;
        case M_RECORD: case M_NUDGE: case M_GATT: on_kept(&c, m); break;
        case M_FLUSH: on_flush(&c, m); break;
        case M_STOP: stop = m; break;
        default: mq_msg_free(m); break;
        }
        if (c.in_tx && (store_sync_pending(w->db) >= w->o.batch_max ||
                        daemon_mono_ms() - c.t0 >= (int64_t)w->o.batch_delay_ms))
            finish_tx(&c, 0);
    }
    finish_tx(&c, 0);
    if (c.retry.head) { /* one last try */
        open_tx(&c);
        finish_tx(&c, 0);
    }
    ADD(w, n_drop, c.retry.n);
    kl_free(&c.retry);
    stop->data[0] = R_STOPPED; /* the stop message is the answer */
    wsend(&c, stop);
    free(c.evs);
    free(c.pend);
    return NULL;
}
