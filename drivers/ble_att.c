/* ATT bearer, client role (see ble_att.h for the contract).
 *
 * Invariants:
 * - At most one request is on the wire (cur); the rest wait in reqq, in order. Output that
 *   needs no transaction (confirmations, our Error Responses, Write Commands) waits in outq
 *   and always goes out before the next request.
 * - A request's 30 s start when it is written. Written from an entry point that carries the
 *   time (on_readable, on_writable, on_timer, or a callback they run), the deadline is set at
 *   once; written from a bare att_send(), it is set by the next att_on_timer(), which
 *   att_next_timeout() asks for immediately. So a deadline is never earlier than the write.
 * - A socket error seen while writing outside an entry point is kept in pending_err and acted
 *   on by the next entry point, so att_send() never runs callbacks.
 * - A request answered with an error a higher security level may satisfy goes back to the
 *   head of reqq (retried set) once the security hook accepted the raise: it is the next
 *   request on the wire, before those that queued behind it, and never goes back twice.
 *   sec_tried has a bit per level asked for, so no level is asked for twice on a bearer.
 * - depth counts nested calls; att_free() inside a callback only sets free_pending and the
 *   object goes when the outermost call returns. Loops that run callbacks stop as soon as
 *   free_pending is set.
 * Single-threaded; never logs. */
#include "drivers/ble_att.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DEADLINE_UNSET INT64_MIN

struct pdu {
    struct pdu *next;
    int id;
    att_response_fn cb;
    void *user_data;
    att_destroy_fn destroy;
    uint16_t len;
    uint8_t retried;      /* sent again after a security raise */
    uint8_t data[];       /* opcode first */
};

struct pduq {
    struct pdu *head, *tail;
    size_t n;
};

enum { H_NONE, H_NOTIFY, H_CLOSE };

struct handler {
    int id;
    int kind;
    union {
        att_notify_fn notify;
        att_close_fn close;
    } fn;
    void *user_data;
    att_destroy_fn destroy;
};

struct att {
    int fd;
    uint16_t mtu, client_mtu;
    int mtu_requested;
    int dead;             /* 0 or the error it died of */
    int pending_err;      /* write error not yet acted on */
    int want_write;
    int64_t now_ns;       /* last time an entry point was given */
    int timed;            /* > 0 while inside an entry point that carries now_ns */
    int depth;
    int free_pending;
    int reading;
    int next_id;
    struct pdu *cur;
    int64_t deadline_ns;
    struct pduq reqq, outq;
    struct handler handlers[ATT_MAX_HANDLERS];
    att_rx_fn rx;
    void *rx_user_data;
    att_destroy_fn rx_destroy;
    att_tx_fn tx;
    void *tx_user_data;
    att_destroy_fn tx_destroy;
    att_security_fn sec;
    void *sec_user_data;
    att_destroy_fn sec_destroy;
    int sec_level;        /* the link's ATT_SECURITY_* level */
    unsigned sec_tried;   /* bit n: level n was asked for */
    struct att_stats stats;
};

static void q_push(struct pduq *q, struct pdu *p)
{
    p->next = NULL;
    if (q->tail)
        q->tail->next = p;
    else
        q->head = p;
    q->tail = p;
    q->n++;
}

/* Puts p back in front: it goes out before everything that waits. */
static void q_push_front(struct pduq *q, struct pdu *p)
{
    p->next = q->head;
    q->head = p;
    if (!q->tail)
        q->tail = p;
    q->n++;
}

static struct pdu *q_pop(struct pduq *q)
{
    struct pdu *p = q->head;
    if (!p)
        return NULL;
    q->head = p->next;
    if (!q->head)
        q->tail = NULL;
    q->n--;
    return p;
}

static struct pdu *pdu_new(uint8_t op, const void *params, size_t len)
{
    struct pdu *p = calloc(1, sizeof *p + 1 + len);
    if (!p)
        return NULL;
    p->data[0] = op;
    if (len)
        memcpy(p->data + 1, params, len);
    p->len = (uint16_t)(1 + len);
    return p;
}

/* Releases p: its destroy runs (its callback does not). */
static void pdu_drop(struct pdu *p)
{
    if (p->destroy)
        p->destroy(p->user_data);
    free(p);
}

static int new_id(struct att *a)
{
    if (a->next_id <= 0 || a->next_id == INT32_MAX)
        a->next_id = 0;
    return ++a->next_id;
}

struct att *att_new(int fd, int64_t now_mono_ns)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return NULL;
    struct att *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->fd = fd;
    a->mtu = ATT_DEFAULT_LE_MTU;
    a->now_ns = now_mono_ns;
    a->deadline_ns = DEADLINE_UNSET;
    a->sec_level = ATT_SECURITY_LOW;
    return a;
}

static void destroy_all(struct att *a)
{
    struct pdu *p;
    if (a->cur)
        pdu_drop(a->cur);
    a->cur = NULL;
    while ((p = q_pop(&a->reqq)))
        pdu_drop(p);
    while ((p = q_pop(&a->outq)))
        pdu_drop(p);
    for (size_t i = 0; i < ATT_MAX_HANDLERS; i++) {
        struct handler h = a->handlers[i];
        a->handlers[i].kind = H_NONE;
        if (h.kind != H_NONE && h.destroy)
            h.destroy(h.user_data);
    }
    att_set_rx_hook(a, NULL, NULL, NULL);
    att_set_tx_hook(a, NULL, NULL, NULL);
    att_set_security_hook(a, a->sec_level, NULL, NULL, NULL);
    free(a);
}

struct att *att_free(struct att *a)
{
    if (!a || a->free_pending)
        return NULL;
    a->free_pending = 1;
    if (a->depth == 0)
        destroy_all(a);
    return NULL;
}

static void enter(struct att *a)
{
    a->depth++;
}

/* Returns r, or frees a and returns r when this was the outermost call of a freed bearer. */
static int leave(struct att *a, int r)
{
    if (--a->depth == 0 && a->free_pending)
        destroy_all(a);
    return r;
}

int att_fd(const struct att *a)
{
    return a->fd;
}

uint16_t att_mtu(const struct att *a)
{
    return a->mtu;
}

int att_dead(const struct att *a)
{
    return a->dead;
}

const struct att_stats *att_stats(const struct att *a)
{
    return &a->stats;
}

int att_want_write(const struct att *a)
{
    return a->want_write && !a->dead;
}

/* 1 sent, 0 the socket is full, or -errno. */
static int xmit(struct att *a, const struct pdu *p)
{
    for (;;) {
        ssize_t r = send(a->fd, p->data, p->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r == (ssize_t)p->len) {
            a->stats.tx_pdus++;
            return 1;
        }
        if (r >= 0)
            return -EIO;  /* a packet socket never sends part of a packet */
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
            return 0;
        return errno == EPIPE ? -ECONNRESET : -errno;
    }
}

/* The transmit hook sees p, which has left its queue: a hook that sends (and so flushes
 * again) cannot write p twice, and hooks run in the order PDUs went out. */
static void sent(struct att *a, const struct pdu *p)
{
    if (a->tx)
        a->tx(a, a->now_ns, p->data, p->len, a->tx_user_data);
}

/* 1 while flush() may go on writing: a hook may have freed or killed the bearer. */
static int writing(const struct att *a)
{
    return !a->dead && !a->pending_err && !a->free_pending;
}

/* Writes outq, then the next request if none is outstanding. Errors go to pending_err. */
static void flush(struct att *a)
{
    if (!writing(a))
        return;
    a->want_write = 0;
    while (a->outq.head) {
        int r = xmit(a, a->outq.head);
        if (r <= 0) {
            if (r < 0)
                a->pending_err = r;
            else
                a->want_write = 1;
            return;
        }
        struct pdu *p = q_pop(&a->outq);
        sent(a, p);
        pdu_drop(p);
        if (!writing(a))
            return;
    }
    if (a->cur || !a->reqq.head)
        return;
    int r = xmit(a, a->reqq.head);
    if (r <= 0) {
        if (r < 0)
            a->pending_err = r;
        else
            a->want_write = 1;
        return;
    }
    a->cur = q_pop(&a->reqq);
    a->deadline_ns = a->timed ? a->now_ns + ATT_TIMEOUT_NS : DEADLINE_UNSET;
    sent(a, a->cur);
}

/* Runs p's callback with rsp, then releases p. */
static void complete(struct att *a, struct pdu *p, struct att_rsp *rsp)
{
    if (p->cb)
        p->cb(a, rsp, p->user_data);
    pdu_drop(p);
}

static void fail(struct att *a, struct pdu *p, int err)
{
    struct att_rsp rsp = {.err = err, .recv_ns = a->now_ns};
    complete(a, p, &rsp);
}

/* The bearer is dead: fail everything, then tell the close handlers. */
static void die(struct att *a, int err)
{
    struct pdu *p;
    if (a->dead)
        return;
    a->dead = err;
    a->want_write = 0;
    while ((p = q_pop(&a->outq)))
        pdu_drop(p);
    if (a->cur) {
        p = a->cur;
        a->cur = NULL;
        fail(a, p, err);
    }
    while (!a->free_pending && (p = q_pop(&a->reqq)))
        fail(a, p, err);
    int ids[ATT_MAX_HANDLERS];
    for (size_t i = 0; i < ATT_MAX_HANDLERS; i++)
        ids[i] = a->handlers[i].kind == H_CLOSE ? a->handlers[i].id : 0;
    for (size_t k = 0; k < ATT_MAX_HANDLERS && !a->free_pending; k++) {
        for (size_t i = 0; ids[k] && i < ATT_MAX_HANDLERS; i++) {
            struct handler *h = &a->handlers[i];
            if (h->kind == H_CLOSE && h->id == ids[k]) {
                h->fn.close(a, err, h->user_data);
                break;
            }
        }
    }
}

/* Acts on a write error met outside an entry point. */
static int check(struct att *a)
{
    if (a->pending_err && !a->dead && !a->free_pending)
        die(a, a->pending_err);
    return a->dead;
}

void att_disconnect(struct att *a, int err)
{
    if (a->free_pending)
        return;
    enter(a);
    die(a, err < 0 ? err : -ECONNRESET);
    leave(a, 0);
}

static int queue_out(struct att *a, uint8_t op, const void *params, size_t len)
{
    if (a->outq.n >= ATT_MAX_OUT) {
        a->stats.out_dropped++;
        return -ENOBUFS;
    }
    struct pdu *p = pdu_new(op, params, len);
    if (!p)
        return -ENOMEM;
    q_push(&a->outq, p);
    return 0;
}

static int queue_req(struct att *a, uint8_t op, const void *params, size_t len,
                     att_response_fn cb, void *user_data, att_destroy_fn destroy)
{
    if (a->reqq.n >= ATT_MAX_QUEUED)
        return -ENOBUFS;
    struct pdu *p = pdu_new(op, params, len);
    if (!p)
        return -ENOMEM;
    p->id = new_id(a);
    p->cb = cb;
    p->user_data = user_data;
    p->destroy = destroy;
    q_push(&a->reqq, p);
    return p->id;
}

int att_send(struct att *a, uint8_t op, const void *params, size_t len, att_response_fn cb,
             void *user_data, att_destroy_fn destroy)
{
    int r;
    if (a->dead || a->free_pending)
        return -ENOTCONN;
    if (len && !params)
        return -EINVAL;
    if (len > (size_t)a->mtu - 1)
        return -EMSGSIZE;
    if (op == ATT_OP_WRITE_CMD)
        r = queue_out(a, op, params, len);
    else if (op == ATT_OP_SIGNED_WRITE_CMD)
        return -EOPNOTSUPP;
    else if (op == ATT_OP_MTU_REQ || att_rsp_opcode(op) == 0)
        return -EINVAL;
    else
        r = queue_req(a, op, params, len, cb, user_data, destroy);
    if (r >= 0) {
        enter(a);
        flush(a);
        leave(a, 0);
    }
    return r;
}

int att_exchange_mtu(struct att *a, uint16_t client_mtu, att_response_fn cb, void *user_data,
                     att_destroy_fn destroy)
{
    if (a->dead || a->free_pending)
        return -ENOTCONN;
    if (client_mtu <= ATT_DEFAULT_LE_MTU || client_mtu > ATT_MAX_LE_MTU)
        return -EINVAL;
    if (a->mtu_requested)
        return -EALREADY;
    uint8_t p[2];
    att_put16(p, client_mtu);
    int r = queue_req(a, ATT_OP_MTU_REQ, p, 2, cb, user_data, destroy);
    if (r < 0)
        return r;
    a->mtu_requested = 1;
    a->client_mtu = client_mtu;
    enter(a);
    flush(a);
    leave(a, 0);
    return r;
}

int att_cancel(struct att *a, int id)
{
    if (id <= 0)
        return -ENOENT;
    if (a->cur && a->cur->id == id) {
        att_destroy_fn d = a->cur->destroy;
        void *ud = a->cur->user_data;
        a->cur->cb = NULL;
        a->cur->destroy = NULL;
        a->cur->id = 0;
        if (d)
            d(ud);
        return 0;
    }
    for (struct pdu **pp = &a->reqq.head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
        if ((*pp)->id != id)
            continue;
        struct pdu *p = *pp;
        *pp = p->next;
        if (a->reqq.tail == p)
            a->reqq.tail = prev;
        a->reqq.n--;
        pdu_drop(p);
        return 0;
    }
    return -ENOENT;
}

static int reg(struct att *a, int kind, att_notify_fn nfn, att_close_fn cfn, void *user_data,
               att_destroy_fn destroy)
{
    for (size_t i = 0; i < ATT_MAX_HANDLERS; i++) {
        struct handler *h = &a->handlers[i];
        if (h->kind != H_NONE)
            continue;
        h->kind = kind;
        if (kind == H_NOTIFY)
            h->fn.notify = nfn;
        else
            h->fn.close = cfn;
        h->user_data = user_data;
        h->destroy = destroy;
        h->id = new_id(a);
        return h->id;
    }
    return -ENOBUFS;
}

int att_register_notify(struct att *a, att_notify_fn fn, void *user_data, att_destroy_fn destroy)
{
    return fn ? reg(a, H_NOTIFY, fn, NULL, user_data, destroy) : -EINVAL;
}

int att_register_close(struct att *a, att_close_fn fn, void *user_data, att_destroy_fn destroy)
{
    return fn ? reg(a, H_CLOSE, NULL, fn, user_data, destroy) : -EINVAL;
}

int att_unregister(struct att *a, int id)
{
    for (size_t i = 0; id > 0 && i < ATT_MAX_HANDLERS; i++) {
        struct handler h = a->handlers[i];
        if (h.kind == H_NONE || h.id != id)
            continue;
        memset(&a->handlers[i], 0, sizeof a->handlers[i]);
        if (h.destroy)
            h.destroy(h.user_data);
        return 0;
    }
    return -ENOENT;
}

/* Installs fn in one of the two hook slots; the old one's destroy runs last, so it may
 * install another. */
#define SET_HOOK(a, dir, fn, user_data, destroy)                 \
    do {                                                         \
        att_destroy_fn old_ = (a)->dir##_destroy;                \
        void *old_ud_ = (a)->dir##_user_data;                    \
        (a)->dir = (fn);                                         \
        (a)->dir##_user_data = (fn) ? (user_data) : NULL;        \
        (a)->dir##_destroy = (fn) ? (destroy) : NULL;            \
        if (old_)                                                \
            old_(old_ud_);                                       \
    } while (0)

void att_set_rx_hook(struct att *a, att_rx_fn fn, void *user_data, att_destroy_fn destroy)
{
    SET_HOOK(a, rx, fn, user_data, destroy);
}

void att_set_tx_hook(struct att *a, att_tx_fn fn, void *user_data, att_destroy_fn destroy)
{
    SET_HOOK(a, tx, fn, user_data, destroy);
}

void att_set_security_hook(struct att *a, int level, att_security_fn fn, void *user_data,
                           att_destroy_fn destroy)
{
    a->sec_level = level;
    SET_HOOK(a, sec, fn, user_data, destroy);
}

int att_security(const struct att *a)
{
    return a->sec_level;
}

static void deliver(struct att *a, uint8_t op, uint16_t handle, const uint8_t *v, size_t len)
{
    int ids[ATT_MAX_HANDLERS];
    for (size_t i = 0; i < ATT_MAX_HANDLERS; i++)
        ids[i] = a->handlers[i].kind == H_NOTIFY ? a->handlers[i].id : 0;
    for (size_t k = 0; k < ATT_MAX_HANDLERS && !a->free_pending; k++) {
        for (size_t i = 0; ids[k] && i < ATT_MAX_HANDLERS; i++) {
            struct handler *h = &a->handlers[i];
            if (h->kind == H_NOTIFY && h->id == ids[k]) {
                h->fn.notify(a, op, handle, v, len, a->now_ns, h->user_data);
                break;
            }
        }
    }
}

/* Structural check of a response to request req (parameters p, n bytes). */
static int rsp_valid(uint8_t req, uint8_t op, const uint8_t *p, size_t n)
{
    struct att_list l;
    switch (op) {
    case ATT_OP_MTU_RSP: return n == 2;
    case ATT_OP_FIND_INFO_RSP: return att_parse_find_info(p, n, &l) == 0;
    case ATT_OP_FIND_BY_TYPE_RSP: return att_parse_find_by_type(p, n, &l) == 0;
    case ATT_OP_READ_BY_TYPE_RSP: return att_parse_read_by_type(p, n, &l) == 0;
    case ATT_OP_READ_BY_GROUP_RSP: return att_parse_read_by_group(p, n, &l) == 0;
    case ATT_OP_WRITE_RSP: case ATT_OP_EXEC_WRITE_RSP: return n == 0;
    case ATT_OP_PREP_WRITE_RSP: return n >= 4;
    case ATT_OP_READ_MULT_VAR_RSP: return n == 0 || n >= 2;
    default: return req != 0; /* Read, Read Blob, Read Multiple: any value */
    }
}

/* r was answered with ecode: when a higher security level may satisfy the peer and the hook
 * raised the link to it, r goes back to the head of the queue (flush sends it next). 1 if so.
 * r is out of every queue meanwhile, so a hook that ends the bearer cannot fail it twice. */
static int raise_security(struct att *a, struct pdu *r, uint8_t ecode)
{
    int level = att_security_next(ecode, a->sec_level);
    if (!a->sec || r->retried || r->id == 0 || level == 0 || (a->sec_tried & 1u << level))
        return 0;
    a->sec_tried |= 1u << level;
    if (a->sec(a, level, ecode, a->sec_user_data) < 0 || a->dead || a->free_pending)
        return 0;
    a->sec_level = level;
    r->retried = 1;
    q_push_front(&a->reqq, r);
    return 1;
}

static void handle_rsp(struct att *a, const uint8_t *pdu, size_t len, int oversize)
{
    struct pdu *r = a->cur;
    if (!r) {
        a->stats.unexpected++;
        return;
    }
    uint8_t req = r->data[0];
    struct att_rsp rsp = {.opcode = pdu[0], .params = pdu + 1, .len = len - 1,
                          .recv_ns = a->now_ns};
    struct att_error_rsp e;
    if (oversize) {
        rsp.err = -EPROTO;
    } else if (pdu[0] == ATT_OP_ERROR_RSP) {
        if (att_parse_error(pdu + 1, len - 1, &e) < 0 || e.req_opcode != req || e.ecode == 0) {
            rsp.err = -EPROTO;
        } else {
            rsp.ecode = e.ecode;
            rsp.err_handle = e.handle;
            rsp.err = att_ecode_errno(e.ecode);
        }
    } else if (pdu[0] != att_rsp_opcode(req) || !rsp_valid(req, pdu[0], pdu + 1, len - 1)) {
        rsp.err = -EPROTO;
    } else if (req == ATT_OP_MTU_REQ) {
        uint16_t server = att_get16(pdu + 1);
        uint16_t m = server < a->client_mtu ? server : a->client_mtu;
        a->mtu = m < ATT_DEFAULT_LE_MTU ? ATT_DEFAULT_LE_MTU : m;
    }
    if (rsp.err == -EPROTO)
        a->stats.malformed++;
    a->cur = NULL;
    a->deadline_ns = DEADLINE_UNSET;
    if (rsp.ecode && raise_security(a, r, rsp.ecode))
        return;
    if (a->free_pending)   /* the security hook freed the bearer: no callback, as att_free says */
        pdu_drop(r);
    else
        complete(a, r, &rsp);
}

static void handle_pdu(struct att *a, const uint8_t *pdu, size_t len, int oversize)
{
    uint8_t op = pdu[0];
    switch (att_op_kind(op)) {
    case ATT_KIND_RESPONSE:
        handle_rsp(a, pdu, len, oversize);
        break;
    case ATT_KIND_NOTIFY:
        if (oversize || len < 3) {
            a->stats.malformed++;
        } else if (op == ATT_OP_NOTIFY) {
            a->stats.notifications++;
            deliver(a, op, att_get16(pdu + 1), pdu + 3, len - 3);
        } else {
            /* {handle u16, length u16, value}*: deliver the whole tuples, count a torn tail */
            size_t i = 1;
            while (i + 4 <= len && !a->free_pending) {
                size_t vl = att_get16(pdu + i + 2);
                if (vl > len - i - 4)
                    break;
                a->stats.notifications++;
                deliver(a, op, att_get16(pdu + i), pdu + i + 4, vl);
                i += 4 + vl;
            }
            if (i != len)
                a->stats.malformed++;
        }
        break;
    case ATT_KIND_INDICATE:
        /* Confirmed even when malformed: the peer sends no further indication until then. */
        if (oversize || len < 3) {
            a->stats.malformed++;
        } else {
            a->stats.indications++;
            deliver(a, op, att_get16(pdu + 1), pdu + 3, len - 3);
        }
        if (!a->free_pending)
            queue_out(a, ATT_OP_CONFIRM, NULL, 0);
        break;
    case ATT_KIND_REQUEST: {
        uint8_t e[4] = {op, 0, 0, ATT_ECODE_REQ_NOT_SUPPORTED};
        a->stats.unsupported++;
        queue_out(a, ATT_OP_ERROR_RSP, e, sizeof e);
        break;
    }
    case ATT_KIND_COMMAND:
        a->stats.ignored++;
        break;
    case ATT_KIND_CONFIRM:
        a->stats.unexpected++;
        break;
    }
}

int att_on_readable(struct att *a, int64_t now_mono_ns)
{
    if (a->free_pending)
        return -ENOTCONN;
    if (a->dead || a->reading)
        return a->dead;
    enter(a);
    a->timed++;
    a->reading = 1;
    a->now_ns = now_mono_ns;
    int n = 0, more = 1;
    while (more && n < ATT_RX_BURST && !check(a) && !a->free_pending) {
        /* up to ATT_RX_BATCH PDUs per system call: a device's wake-up usually finds one,
         * and reading until EAGAIN would cost a second call for it */
        uint8_t buf[ATT_RX_BATCH][ATT_MAX_LE_MTU + 1]; /* + 1: a PDU above the MTU shows */
        struct iovec iov[ATT_RX_BATCH];
        struct mmsghdr mm[ATT_RX_BATCH];
        unsigned want = ATT_RX_BURST - n < ATT_RX_BATCH ? (unsigned)(ATT_RX_BURST - n)
                                                         : ATT_RX_BATCH;
        memset(mm, 0, want * sizeof mm[0]);
        for (unsigned i = 0; i < want; i++) {
            iov[i] = (struct iovec){buf[i], sizeof buf[i]};
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
        }
        int got = recvmmsg(a->fd, mm, want, MSG_DONTWAIT | MSG_TRUNC, NULL);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                die(a, errno == EPIPE ? -ECONNRESET : -errno);
            break;
        }
        more = (unsigned)got == want; /* fewer than asked: the queue is empty for now */
        for (int i = 0; i < got && !a->free_pending && !a->dead; i++) {
            size_t r = mm[i].msg_len;
            if (r == 0) {   /* SEQPACKET: end of stream (an ATT PDU is never empty) */
                die(a, -ECONNRESET);
                break;
            }
            n++;
            size_t len = r < sizeof buf[i] ? r : sizeof buf[i];
            a->stats.rx_pdus++;
            a->stats.rx_bytes += (uint64_t)r;
            if (a->rx)
                a->rx(a, now_mono_ns, buf[i], len, a->rx_user_data);
            if (a->free_pending || a->dead)
                break;
            handle_pdu(a, buf[i], len, r > a->mtu);
            flush(a);
        }
        if (got == 0)
            break;
    }
    a->reading = 0;
    a->timed--;
    return leave(a, a->dead ? a->dead : n);
}

int att_on_writable(struct att *a, int64_t now_mono_ns)
{
    if (a->free_pending)
        return -ENOTCONN;
    if (a->dead)
        return a->dead;
    enter(a);
    a->timed++;
    a->now_ns = now_mono_ns;
    flush(a);
    check(a);
    a->timed--;
    return leave(a, a->dead);
}

int att_on_timer(struct att *a, int64_t now_mono_ns)
{
    if (a->free_pending)
        return -ENOTCONN;
    if (a->dead)
        return a->dead;
    enter(a);
    a->now_ns = now_mono_ns;
    if (!check(a) && a->cur) {
        if (a->deadline_ns == DEADLINE_UNSET) {
            a->deadline_ns = now_mono_ns + ATT_TIMEOUT_NS;
        } else if (now_mono_ns >= a->deadline_ns) {
            a->stats.timeouts++;
            die(a, -ETIMEDOUT);
        }
    }
    return leave(a, a->dead);
}

int64_t att_next_timeout(const struct att *a)
{
    if (a->free_pending)
        return INT64_MAX;
    if (!a->dead && a->pending_err)
        return a->now_ns;
    if (a->dead || !a->cur)
        return INT64_MAX;
    return a->deadline_ns == DEADLINE_UNSET ? a->now_ns : a->deadline_ns;
}
