/* GATT client reads, writes and subscriptions (see ble_gatt.h).
 *
 * An op is one user operation: it holds one bearer request at a time (a long read chains Read
 * Blobs from the previous response's callback) and counts the bearer requests holding it
 * (refs); it goes with the last of them, after its callback ran once (done). An op that
 * outlives its gatt (gatt_free from a callback) sees op->g == NULL and calls nobody.
 * Single-threaded; never logs. */
#include "drivers/ble_gatt_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void op_unref(void *user_data)
{
    struct gatt_op *op = user_data;
    if (--op->refs > 0)
        return;
    if (op->g) {
        if (op->prev)
            op->prev->next = op->next;
        else
            op->g->ops = op->next;
        if (op->next)
            op->next->prev = op->prev;
        op->g->n_ops--;
    }
    if (op->destroy)
        op->destroy(op->user_data);
    free(op->buf);
    free(op);
}

static void op_rsp(struct att *a, const struct att_rsp *rsp, void *user_data);

static int op_send(struct gatt_op *op, uint8_t opcode, const uint8_t *p, size_t n)
{
    int id = att_send(op->g->att, opcode, p, n, op_rsp, op, op_unref);
    if (id < 0)
        return id;
    op->refs++;
    op->att_id = id;
    return 0;
}

/* Runs the op's callback once (the op itself goes with its last bearer request). */
static void op_finish(struct gatt *g, struct gatt_op *op, int err, uint8_t ecode)
{
    if (op->done)
        return;
    op->done = 1;
    if (op->kind == OP_READ) {
        if (op->read_cb)
            op->read_cb(g, err, ecode, err ? NULL : op->buf, err ? 0 : op->len, op->user_data);
    } else if (op->kind == OP_WRITE) {
        if (op->write_cb)
            op->write_cb(g, err, ecode, op->user_data);
    } else {
        for (size_t i = 0; i < GATT_MAX_SUBS; i++)
            if (g->subs[i].id == op->sub_id && g->subs[i].done) {
                g->subs[i].done(g, err, ecode, g->subs[i].user_data);
                break;
            }
    }
}

static void op_rsp(struct att *a, const struct att_rsp *rsp, void *user_data)
{
    struct gatt_op *op = user_data;
    struct gatt *g = op->g;
    op->att_id = 0;
    if (!g || op->done)
        return;
    g->depth++;
    if (op->kind != OP_READ || (rsp->err && op->len == 0)) {
        op_finish(g, op, rsp->err, rsp->ecode);
    } else if (rsp->err) {
        /* a value exactly filling the previous response has nothing more to give */
        int end = rsp->ecode == ATT_ECODE_ATTR_NOT_LONG || rsp->ecode == ATT_ECODE_INVALID_OFFSET;
        op_finish(g, op, end ? 0 : rsp->err, end ? 0 : rsp->ecode);
    } else if (op->len + rsp->len > ATT_MAX_VALUE_LEN) {
        op_finish(g, op, -EPROTO, 0);
    } else {
        if (rsp->len)
            memcpy(op->buf + op->len, rsp->params, rsp->len);
        op->len += rsp->len;
        int r = 1;
        if (rsp->len == (size_t)att_mtu(a) - 1 && op->len < ATT_MAX_VALUE_LEN) {
            uint8_t p[4];
            att_put16(p, op->handle);
            att_put16(p + 2, (uint16_t)op->len);
            r = op_send(op, ATT_OP_READ_BLOB_REQ, p, 4);
        }
        if (r != 0)
            op_finish(g, op, r < 0 ? r : 0, 0);
    }
    gatt_leave(g);
}

static struct gatt_op *op_new(struct gatt *g, int kind, uint16_t handle)
{
    if (g->free_pending || g->n_ops >= GATT_MAX_OPS)
        return NULL;
    struct gatt_op *op = calloc(1, sizeof *op);
    if (!op || (kind == OP_READ && !(op->buf = malloc(ATT_MAX_VALUE_LEN)))) {
        free(op);
        return NULL;
    }
    op->g = g;
    op->kind = kind;
    op->handle = handle;
    op->id = gatt_next_id(g);
    op->next = g->ops;
    if (g->ops)
        g->ops->prev = op;
    g->ops = op;
    g->n_ops++;
    op->refs = 1;    /* held by the caller until the first request is sent */
    return op;
}

/* Sends op's first request; on failure the op goes without running its callbacks. */
static int op_start(struct gatt_op *op, uint8_t opcode, const uint8_t *p, size_t n)
{
    int r = op_send(op, opcode, p, n);
    int id = op->id;
    if (r < 0)
        op->destroy = NULL;   /* the caller keeps its user_data on failure */
    op_unref(op);
    return r < 0 ? r : id;
}

int gatt_read(struct gatt *g, uint16_t handle, gatt_read_fn cb, void *user_data,
              att_destroy_fn destroy)
{
    struct gatt_op *op = op_new(g, OP_READ, handle);
    if (!op)
        return g->n_ops >= GATT_MAX_OPS ? -ENOBUFS : -ENOMEM;
    op->read_cb = cb;
    op->user_data = user_data;
    op->destroy = destroy;
    uint8_t p[2];
    att_put16(p, handle);
    return op_start(op, ATT_OP_READ_REQ, p, 2);
}

static int write_req(struct gatt *g, int kind, int sub_id, uint16_t handle, const void *value,
                     size_t len, gatt_write_fn cb, void *user_data, att_destroy_fn destroy)
{
    uint8_t p[ATT_MAX_LE_MTU];
    if (len > (size_t)att_mtu(g->att) - 3)
        return -EMSGSIZE;
    struct gatt_op *op = op_new(g, kind, handle);
    if (!op)
        return g->n_ops >= GATT_MAX_OPS ? -ENOBUFS : -ENOMEM;
    op->write_cb = cb;
    op->user_data = user_data;
    op->destroy = destroy;
    op->sub_id = sub_id;
    att_put16(p, handle);
    if (len)
        memcpy(p + 2, value, len);
    return op_start(op, ATT_OP_WRITE_REQ, p, 2 + len);
}

int gatt_write(struct gatt *g, uint16_t handle, const void *value, size_t len, gatt_write_fn cb,
               void *user_data, att_destroy_fn destroy)
{
    return write_req(g, OP_WRITE, 0, handle, value, len, cb, user_data, destroy);
}

int gatt_write_cccd(struct gatt *g, uint16_t cccd_handle, uint16_t value, gatt_write_fn cb,
                    void *user_data, att_destroy_fn destroy)
{
    uint8_t v[2];
    att_put16(v, value);
    return write_req(g, OP_WRITE, 0, cccd_handle, v, 2, cb, user_data, destroy);
}

int gatt_write_cmd(struct gatt *g, uint16_t handle, const void *value, size_t len)
{
    uint8_t p[ATT_MAX_LE_MTU];
    if (len > (size_t)att_mtu(g->att) - 3)
        return -EMSGSIZE;
    att_put16(p, handle);
    if (len)
        memcpy(p + 2, value, len);
    return att_send(g->att, ATT_OP_WRITE_CMD, p, 2 + len, NULL, NULL, NULL);
}

int gatt_cancel(struct gatt *g, int id)
{
    for (struct gatt_op *op = g->ops; op; op = op->next) {
        if (op->id != id || op->done)
            continue;
        op->done = 1;
        if (op->att_id)
            att_cancel(g->att, op->att_id);   /* releases the op */
        return 0;
    }
    return -ENOENT;
}

int gatt_register_notify(struct gatt *g, uint16_t value_handle, gatt_notify_fn fn,
                         void *user_data, att_destroy_fn destroy)
{
    if (!fn)
        return -EINVAL;
    for (size_t i = 0; i < GATT_MAX_SUBS; i++) {
        struct gatt_sub *s = &g->subs[i];
        if (s->id)
            continue;
        *s = (struct gatt_sub){.id = gatt_next_id(g), .handle = value_handle, .fn = fn,
                          .user_data = user_data, .destroy = destroy};
        if (i + 1 > g->subs_end)
            g->subs_end = i + 1;
        return s->id;
    }
    return -ENOBUFS;
}

int gatt_unregister(struct gatt *g, int id)
{
    for (size_t i = 0; id > 0 && i < GATT_MAX_SUBS; i++) {
        struct gatt_sub s = g->subs[i];
        if (s.id != id)
            continue;
        memset(&g->subs[i], 0, sizeof g->subs[i]);
        if (s.destroy)
            s.destroy(s.user_data);
        return 0;
    }
    return -ENOENT;
}

int gatt_subscribe(struct gatt *g, uint16_t value_handle, gatt_notify_fn fn, gatt_write_fn done,
                   void *user_data, att_destroy_fn destroy)
{
    const struct gatt_chrc *c = gatt_db_chrc_by_value(&g->db, value_handle);
    if (!c || !c->cccd)
        return -ENOENT;
    if (!(c->props & (GATT_PROP_NOTIFY | GATT_PROP_INDICATE)))
        return -EOPNOTSUPP;
    uint8_t v[2];
    att_put16(v, c->props & GATT_PROP_NOTIFY ? 0x0001 : 0x0002);
    int id = gatt_register_notify(g, value_handle, fn, user_data, destroy);
    if (id < 0)
        return id;
    for (size_t i = 0; i < GATT_MAX_SUBS; i++)
        if (g->subs[i].id == id)
            g->subs[i].done = done;
    int r = write_req(g, OP_SUB, id, c->cccd, v, 2, NULL, NULL, NULL);
    if (r < 0) {
        for (size_t i = 0; i < GATT_MAX_SUBS; i++)
            if (g->subs[i].id == id)
                memset(&g->subs[i], 0, sizeof g->subs[i]);  /* caller keeps user_data */
        return r;
    }
    return id;
}

void gatt_ops_detach(struct gatt *g)
{
    struct gatt_op *op = g->ops, *next;
    g->ops = NULL;
    for (; op; op = next) {
        next = op->next;
        op->g = NULL;
        op->done = 1;
        op->prev = op->next = NULL;
        if (op->att_id)
            att_cancel(g->att, op->att_id);   /* may release op */
    }
    for (size_t i = 0; i < GATT_MAX_SUBS; i++)
        if (g->subs[i].id)
            gatt_unregister(g, g->subs[i].id);
}
