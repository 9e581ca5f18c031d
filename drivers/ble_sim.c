/* Simulated GATT server (see ble_sim.h): the attribute table, notifications and indications,
 * periodic streams.
 *
 * Invariants: attrs[i].handle == i + 1; a service's end is the handle of its last attribute.
 * The server side of the requests is in ble_sim_server.c.
 * Single-threaded; reads no clock. */
#include "drivers/ble_sim_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "drivers/ble_gatt.h"

struct blesim *blesim_new(int fd, uint16_t mtu, int64_t now_ns)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return NULL;
    if (mtu && (mtu < ATT_DEFAULT_LE_MTU || mtu > ATT_MAX_LE_MTU)) {
        errno = EINVAL;
        return NULL;
    }
    struct blesim *s = calloc(1, sizeof *s);
    if (!s || !(s->attrs = calloc(BLESIM_MAX_ATTRS, sizeof *s->attrs))) {
        free(s);
        return NULL;
    }
    s->fd = fd;
    s->server_mtu = mtu ? mtu : ATT_MAX_LE_MTU;
    s->mtu = ATT_DEFAULT_LE_MTU;
    s->now_ns = now_ns;
    s->cur_service = s->cur_chrc = -1;
    s->security = 1;
    return s;
}

struct blesim *blesim_free(struct blesim *s)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n_attrs; i++)
        free(s->attrs[i].value);
    for (size_t i = 0; i < s->n_owned; i++)
        free(s->owned[i]);
    free(s->attrs);
    free(s);
    return NULL;
}

int blesim_own(struct blesim *s, void *p)
{
    if (s->n_owned >= BLESIM_MAX_OWNED)
        return -ENOSPC;
    s->owned[s->n_owned++] = p;
    return 0;
}

struct sim_attr *blesim_attr(const struct blesim *s, uint16_t h)
{
    return h >= 1 && h <= s->n_attrs ? &s->attrs[h - 1] : NULL;
}

int blesim_store(struct sim_attr *a, const void *value, size_t len)
{
    if (len > ATT_MAX_VALUE_LEN)
        return -EMSGSIZE;
    uint8_t *v = malloc(len ? len : 1);
    if (!v)
        return -ENOMEM;
    if (len)
        memcpy(v, value, len);
    free(a->value);
    a->value = v;
    a->len = (uint16_t)len;
    return 0;
}

static int add(struct blesim *s, const struct att_uuid *type, uint8_t perm, const void *value,
               size_t len)
{
    if (s->n_attrs >= BLESIM_MAX_ATTRS)
        return -ENOSPC;
    struct sim_attr *a = &s->attrs[s->n_attrs];
    memset(a, 0, sizeof *a);
    int r = blesim_store(a, value, len);
    if (r < 0)
        return r;
    a->type = *type;
    a->perm = perm;
    a->handle = (uint16_t)++s->n_attrs;
    if (s->cur_service >= 0)
        s->attrs[s->cur_service].end = a->handle;
    return a->handle;
}

int blesim_add_service(struct blesim *s, const struct att_uuid *uuid, int primary)
{
    uint8_t v[16];
    size_t n = att_uuid_to_wire(uuid, v);
    struct att_uuid t = att_uuid16(primary ? GATT_PRIMARY_SERVICE : GATT_SECONDARY_SERVICE);
    s->cur_service = s->cur_chrc = -1;   /* the previous service ends before this one */
    int h = add(s, &t, BLESIM_PERM_READ, v, n);
    if (h < 0)
        return h;
    s->cur_service = h - 1;
    s->cur_chrc = -1;
    s->attrs[h - 1].end = (uint16_t)h;
    return h;
}

int blesim_add_include(struct blesim *s, uint16_t service_handle)
{
    struct sim_attr *inc = blesim_attr(s, service_handle);
    struct att_uuid ps = att_uuid16(GATT_PRIMARY_SERVICE), ss = att_uuid16(GATT_SECONDARY_SERVICE);
    if (!inc || s->cur_service < 0 ||
        (!att_uuid_eq(&inc->type, &ps) && !att_uuid_eq(&inc->type, &ss)))
        return -EINVAL;
    uint8_t v[6];
    att_put16(v, inc->handle);
    att_put16(v + 2, inc->end);
    size_t n = 4;
    if (inc->len == 2) {   /* a 16-bit service UUID is part of the declaration */
        memcpy(v + 4, inc->value, 2);
        n = 6;
    }
    struct att_uuid t = att_uuid16(GATT_INCLUDE);
    return add(s, &t, BLESIM_PERM_READ, v, n);
}

int blesim_add_chrc(struct blesim *s, const struct att_uuid *uuid, uint8_t props,
                    const void *value, size_t len)
{
    if (s->cur_service < 0)
        return -EINVAL;
    if (len > ATT_MAX_VALUE_LEN)
        return -EMSGSIZE;
    if (s->n_attrs + 2 + !!(props & (GATT_PROP_NOTIFY | GATT_PROP_INDICATE)) > BLESIM_MAX_ATTRS)
        return -ENOSPC;
    uint8_t decl[19];
    decl[0] = props;
    att_put16(decl + 1, (uint16_t)(s->n_attrs + 2));
    size_t n = 3 + att_uuid_to_wire(uuid, decl + 3);
    struct att_uuid t = att_uuid16(GATT_CHARACTERISTIC);
    int r = add(s, &t, BLESIM_PERM_READ, decl, n);
    if (r < 0)
        return r;
    uint8_t perm = (props & GATT_PROP_READ ? BLESIM_PERM_READ : 0) |
                   (props & (GATT_PROP_WRITE | GATT_PROP_WRITE_NO_RSP) ? BLESIM_PERM_WRITE : 0);
    int vh = add(s, uuid, perm, value, len);
    if (vh < 0)
        return vh;
    s->attrs[vh - 1].props = props;
    s->cur_chrc = vh - 1;
    if (props & (GATT_PROP_NOTIFY | GATT_PROP_INDICATE)) {
        uint8_t zero[2] = {0, 0};
        t = att_uuid16(GATT_CCCD);
        r = add(s, &t, BLESIM_PERM_READ | BLESIM_PERM_WRITE, zero, 2);
        if (r < 0)
            return r;
        s->attrs[vh - 1].cccd = (uint16_t)r;
        s->attrs[r - 1].cccd = (uint16_t)vh;
    }
    return vh;
}

int blesim_add_desc(struct blesim *s, const struct att_uuid *uuid, uint8_t perm,
                    const void *value, size_t len)
{
    if (s->cur_chrc < 0)
        return -EINVAL;
    return add(s, uuid, perm, value, len);
}

int blesim_set_attr_hooks(struct blesim *s, uint16_t handle, blesim_gen_fn refresh,
                          blesim_write_fn on_write, void *user_data)
{
    struct sim_attr *a = blesim_attr(s, handle);
    if (!a)
        return -ENOENT;
    a->refresh = refresh;
    a->on_write = on_write;
    a->hook_data = user_data;
    return 0;
}

void blesim_set_write_hook(struct blesim *s, blesim_write_fn fn, void *user_data)
{
    s->write_hook = fn;
    s->write_data = user_data;
}

int blesim_set_value(struct blesim *s, uint16_t handle, const void *value, size_t len)
{
    struct sim_attr *a = blesim_attr(s, handle);
    return a ? blesim_store(a, value, len) : -ENOENT;
}

int blesim_value(const struct blesim *s, uint16_t handle, const uint8_t **ret, size_t *ret_len)
{
    const struct sim_attr *a = blesim_attr(s, handle);
    if (!a)
        return -ENOENT;
    *ret = a->value;
    *ret_len = a->len;
    return 0;
}

uint16_t blesim_find(const struct blesim *s, const struct att_uuid *uuid)
{
    for (size_t i = 0; i < s->n_attrs; i++)
        if (s->attrs[i].props && att_uuid_eq(&s->attrs[i].type, uuid))
            return s->attrs[i].handle;
    return 0;
}

uint16_t blesim_cccd(const struct blesim *s, uint16_t value_handle)
{
    const struct sim_attr *a = blesim_attr(s, value_handle);
    const struct sim_attr *c = a ? blesim_attr(s, a->cccd) : NULL;
    return c && c->len == 2 ? att_get16(c->value) : 0;
}

uint16_t blesim_cccd_handle(const struct blesim *s, uint16_t value_handle)
{
    const struct sim_attr *a = blesim_attr(s, value_handle);
    return a ? a->cccd : 0;
}

static int is_decl(const struct sim_attr *a)
{
    uint16_t t;
    return att_uuid_to16(&a->type, &t) && t >= GATT_PRIMARY_SERVICE && t <= GATT_CHARACTERISTIC;
}

void blesim_db_hash(const struct blesim *s, uint8_t out[16])
{
    uint64_t h1 = 1469598103934665603u, h2 = 1099511628211u * 31;
    for (size_t i = 0; i < s->n_attrs; i++) {
        const struct sim_attr *a = &s->attrs[i];
        uint8_t b[2 + 16 + 19];
        size_t n = 0;
        att_put16(b, a->handle);
        n = 2 + att_uuid_to_wire(&a->type, b + 2);
        if (is_decl(a) && a->len <= 19) {
            memcpy(b + n, a->value, a->len);
            n += a->len;
        }
        for (size_t k = 0; k < n; k++) {
            h1 = (h1 ^ b[k]) * 1099511628211u;
            h2 = (h2 + b[k] + 1) * 6364136223846793005u;
        }
    }
    for (int k = 0; k < 8; k++) {
        out[k] = (uint8_t)(h1 >> (8 * k));
        out[8 + k] = (uint8_t)(h2 >> (8 * k));
    }
}

void blesim_dump(const struct blesim *s, FILE *out)
{
    char u[40];
    for (size_t i = 0; i < s->n_attrs; i++) {
        const struct sim_attr *a = &s->attrs[i];
        fprintf(out, "0x%04x %-36s", a->handle, att_uuid_str(&a->type, u, sizeof u));
        if (a->end)
            fprintf(out, " end 0x%04x", a->end);
        if (a->props)
            fprintf(out, " props 0x%02x", a->props);
        if (a->sec_level)
            fprintf(out, " security %u", a->sec_level);
        fprintf(out, " len %u\n", a->len);
    }
}

/* ---- output ---- */

int blesim_xmit(struct blesim *s, const uint8_t *p, size_t n)
{
    if (s->closed)
        return -ENOTCONN;
    for (;;) {
        ssize_t r = send(s->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r == (ssize_t)n) {
            s->stats.tx_pdus++;
            return 0;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            s->stats.dropped++;
            return -EAGAIN;
        }
        s->closed = 1;
        return -ENOTCONN;
    }
}

int blesim_send_raw(struct blesim *s, const void *pdu, size_t len)
{
    return blesim_xmit(s, pdu, len);
}

static int send_value(struct blesim *s, uint16_t h, uint8_t op)
{
    struct sim_attr *a = blesim_attr(s, h);
    if (s->closed)
        return -ENOTCONN;
    if (!a || !a->cccd)
        return -ENOENT;
    uint16_t want = op == ATT_OP_NOTIFY ? 0x0001 : 0x0002;
    if (!(blesim_cccd(s, h) & want))
        return 0;
    if (op == ATT_OP_INDICATE && s->ind_pending)
        return -EBUSY;
    uint8_t p[ATT_MAX_LE_MTU];
    size_t n = a->len < (size_t)s->mtu - 3 ? a->len : (size_t)s->mtu - 3;
    p[0] = op;
    att_put16(p + 1, h);
    memcpy(p + 3, a->value, n);
    int r = blesim_xmit(s, p, 3 + n);
    if (r == 0 && op == ATT_OP_INDICATE) {
        s->ind_pending = 1;
        s->stats.indications++;
    } else if (r == 0) {
        s->stats.notifications++;
    }
    return r == 0 ? 1 : r;
}

int blesim_notify(struct blesim *s, uint16_t value_handle)
{
    return send_value(s, value_handle, ATT_OP_NOTIFY);
}

int blesim_indicate(struct blesim *s, uint16_t value_handle)
{
    return send_value(s, value_handle, ATT_OP_INDICATE);
}

/* ---- streams ---- */

int blesim_add_stream(struct blesim *s, uint16_t value_handle, int64_t period_ns,
                      blesim_gen_fn gen, void *user_data)
{
    struct sim_attr *a = blesim_attr(s, value_handle);
    if (!a || !a->cccd || period_ns <= 0 || !gen)
        return -EINVAL;
    if (s->n_streams >= BLESIM_MAX_STREAMS)
        return -ENOSPC;
    s->streams[s->n_streams++] = (struct sim_stream){.handle = value_handle,
        .period_ns = period_ns, .next_ns = INT64_MAX, .phase_ns = -1, .gen = gen,
        .user_data = user_data};
    return 0;
}

int blesim_set_phase(struct blesim *s, uint16_t value_handle, int64_t phase_ns)
{
    int found = 0;
    for (size_t i = 0; i < s->n_streams; i++) {
        struct sim_stream *st = &s->streams[i];
        if (st->handle != value_handle)
            continue;
        if (phase_ns < 0 || phase_ns >= st->period_ns)
            return -EINVAL;
        st->phase_ns = phase_ns;
        found = 1;
    }
    return found ? 0 : -ENOENT;
}

/* The CCCD of value handle h changed: (re)start or stop its streams. */
void blesim_cccd_changed(struct blesim *s, uint16_t h)
{
    for (size_t i = 0; i < s->n_streams; i++) {
        struct sim_stream *st = &s->streams[i];
        if (st->handle != h)
            continue;
        if (!(blesim_cccd(s, h) & 3))
            st->next_ns = INT64_MAX;
        else if (st->next_ns == INT64_MAX && st->phase_ns >= 0) /* the next tick of its phase */
            st->next_ns = s->now_ns + st->period_ns -
                          ((s->now_ns - st->phase_ns) % st->period_ns + st->period_ns) %
                              st->period_ns;
        else if (st->next_ns == INT64_MAX)
            st->next_ns = s->now_ns + st->period_ns;
    }
}

int blesim_on_timer(struct blesim *s, int64_t now_ns)
{
    int sent = 0;
    if (s->closed)
        return -ENOTCONN;
    s->now_ns = now_ns;
    for (size_t i = 0; i < s->n_streams && !s->closed; i++) {
        struct sim_stream *st = &s->streams[i];
        /* a loop that fell behind skips ahead rather than bursting */
        if (st->next_ns != INT64_MAX && now_ns - st->next_ns > 100 * st->period_ns)
            st->next_ns = now_ns - (now_ns - st->next_ns) % st->period_ns;
        while (st->next_ns <= now_ns && !s->closed) {
            uint8_t buf[ATT_MAX_VALUE_LEN];
            st->next_ns += st->period_ns;
            uint16_t cccd = blesim_cccd(s, st->handle);
            if (!(cccd & 1) && s->ind_pending) {
                s->stats.skipped++;
                continue;
            }
            int n = st->gen(s, st->handle, st->count++, now_ns, buf, sizeof buf, st->user_data);
            if (n < 0 || blesim_set_value(s, st->handle, buf, (size_t)n) < 0)
                continue;
            if (send_value(s, st->handle, cccd & 1 ? ATT_OP_NOTIFY : ATT_OP_INDICATE) == 1)
                sent++;
        }
    }
    return s->closed ? -ENOTCONN : sent;
}

int64_t blesim_next_timeout(const struct blesim *s)
{
    int64_t t = INT64_MAX;
    for (size_t i = 0; !s->closed && i < s->n_streams; i++)
        if (s->streams[i].next_ns < t)
            t = s->streams[i].next_ns;
    return t;
}

void blesim_set_faults(struct blesim *s, const struct blesim_faults *f)
{
    s->faults = *f;
}

/* ---- link security ---- */

int blesim_ctl_security(int fd, int level)
{
    uint8_t p[BLESIM_CTL_LEN] = {0};
    if (level < 2 || level > 4)
        return -EINVAL;
    memcpy(p, BLESIM_CTL_MAGIC, sizeof BLESIM_CTL_MAGIC);
    p[sizeof BLESIM_CTL_MAGIC] = BLESIM_CTL_SECURITY;
    p[sizeof BLESIM_CTL_MAGIC + 1] = (uint8_t)level;
    for (;;) {
        ssize_t r = send(fd, p, sizeof p, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r == (ssize_t)sizeof p)
            return 0;
        if (r >= 0)
            return -EIO;
        if (errno != EINTR)
            return -errno;
    }
}

int blesim_set_security(struct blesim *s, uint16_t handle, uint8_t level, uint8_t ecode)
{
    struct sim_attr *a = blesim_attr(s, handle);
    if (!a)
        return -ENOENT;
    if (level == 1 || level > 4)
        return -EINVAL;
    a->sec_level = level;
    a->sec_ecode = ecode;
    return 0;
}

int blesim_security(const struct blesim *s)
{
    return s->security;
}

uint16_t blesim_mtu(const struct blesim *s)
{
    return s->mtu;
}

int blesim_closed(const struct blesim *s)
{
    return s->closed;
}

const struct blesim_stats *blesim_stats(const struct blesim *s)
{
    return &s->stats;
}
