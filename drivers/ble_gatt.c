/* GATT client over an ATT bearer (see ble_gatt.h for the procedure and the contract).
 *
 * Discovery is a chain of single requests, each sent from the previous one's response
 * callback; cursor is the first handle the next request asks from. Every list response must
 * start at or after cursor, stay within the range asked for and increase, and cursor moves
 * past its last handle, so the chain ends within 65535 requests whatever a server answers.
 *
 * Reads, writes and subscriptions are in ble_gatt_ops.c.
 *
 * Re-entrancy: user callbacks may call gatt_free(); depth/free_pending defer the release of
 * the struct until the outermost callback site returns, and everything after a user callback
 * checks free_pending. Ops outliving a freed gatt see op->g == NULL.
 * Single-threaded; never logs. */
#include "drivers/ble_gatt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/ble_gatt_db.h"
#include "drivers/ble_gatt_int.h"

static void g_release(struct gatt *g)
{
    gatt_db_clear(&g->db);
    gatt_db_clear(&g->keep);
    free(g);
}

void gatt_leave(struct gatt *g)
{
    if (--g->depth == 0 && g->free_pending)
        g_release(g);
}

int gatt_next_id(struct gatt *g)
{
    if (g->next_id <= 0 || g->next_id == INT32_MAX)
        g->next_id = 0;
    return ++g->next_id;
}

/* ---- discovery ---- */

static void disc_rsp(struct att *a, const struct att_rsp *rsp, void *user_data);

static int send_disc(struct gatt *g, uint8_t op, const uint8_t *p, size_t n)
{
    int id = att_send(g->att, op, p, n, disc_rsp, g, NULL);
    if (id < 0)
        return id;
    g->disc_id = id;
    return 0;
}

/* Read By Type or Read By Group Type over [start, end] for a 16-bit type. */
static int send_range(struct gatt *g, uint8_t op, uint32_t start, uint16_t end, uint16_t type)
{
    uint8_t p[6];
    att_put16(p, (uint16_t)start);
    att_put16(p + 2, end);
    att_put16(p + 4, type);
    return send_disc(g, op, p, 6);
}

/* Descriptor discovery: Find Information for the next characteristic with room, from
 * cursor (already set by the caller when continuing). 1 when none is left. */
static int send_desc(struct gatt *g, int restart)
{
    for (; g->chrc_i < g->db.n_chrc; g->chrc_i++, restart = 1) {
        const struct gatt_chrc *c = &g->db.chrc[g->chrc_i];
        if (restart)
            g->cursor = (uint32_t)c->value + 1;
        if (g->cursor > c->end)
            continue;
        uint8_t p[4];
        att_put16(p, (uint16_t)g->cursor);
        att_put16(p + 2, c->end);
        int r = send_disc(g, ATT_OP_FIND_INFO_REQ, p, 4);
        return r < 0 ? r : 0;
    }
    return 1;
}

static int cache_lookup(struct gatt *g)
{
    const uint8_t *blob;
    size_t len;
    struct gatt_db db = {0};
    if (!g->opts.cache || gatt_cache_export(g->opts.cache, g->device, &blob, &len) < 0 ||
        gatt_db_import(&db, blob, len) < 0)
        return 0;
    int ok = g->have_hash ? db.have_hash && !memcmp(db.hash, g->hash, 16)
                          : !db.have_hash && g->opts.trust_unhashed;
    if (!ok) {
        gatt_db_clear(&db);
        return 0;
    }
    gatt_db_clear(&g->db);
    g->db = db;
    g->from_cache = 1;
    return 1;
}

static void cache_store(struct gatt *g)
{
    uint8_t *blob;
    size_t len;
    if (!g->opts.cache)
        return;
    g->db.have_hash = g->have_hash;
    memcpy(g->db.hash, g->hash, 16);
    if (gatt_db_export(&g->db, &blob, &len) == 0) {
        (void)gatt_cache_import(g->opts.cache, g->device, blob, len);  /* best effort */
        free(blob);
    }
}

/* The Service Changed characteristic, if the database has one. */
static const struct gatt_chrc *sc_chrc(const struct gatt_db *db)
{
    struct att_uuid sc = att_uuid16(GATT_SERVICE_CHANGED), gu = att_uuid16(GATT_SERVICE_GATT);
    const struct gatt_service *gs = gatt_db_service(db, &gu);
    return gs ? gatt_db_chrc(db, gs, &sc) : NULL;
}

/* The last handle service discovery asks for. */
static uint16_t disc_end(const struct gatt *g)
{
    return g->partial ? g->range_hi : 0xFFFF;
}

/* Sends the request that starts step s, or moves on when it has none. 1: procedure done. */
static int start_step(struct gatt *g, enum gatt_step s)
{
    int r;
    g->step = s;
    switch (s) {
    case S_MTU:
        if (g->opts.mtu == ATT_DEFAULT_LE_MTU)
            return start_step(g, S_FEAT);
        r = att_exchange_mtu(g->att, g->opts.mtu, disc_rsp, g, NULL);
        if (r == -EALREADY)   /* the owner did it */
            return start_step(g, S_FEAT);
        if (r > 0)
            g->disc_id = r;
        return r < 0 ? r : 0;
    case S_FEAT:
        if (g->partial)   /* the previous client's, which read them on this bearer */
            return start_step(g, S_HASH);
        return send_range(g, ATT_OP_READ_BY_TYPE_REQ, 1, 0xFFFF, GATT_SERVER_FEATURES);
    case S_HASH:
        if (!g->opts.cache)
            return start_step(g, S_PRIM);
        return send_range(g, ATT_OP_READ_BY_TYPE_REQ, 1, 0xFFFF, GATT_DB_HASH);
    case S_PRIM:
    case S_SEC:
        g->cursor = g->partial ? g->range_lo : 1;
        return send_range(g, ATT_OP_READ_BY_GROUP_REQ, g->cursor, disc_end(g),
                          s == S_PRIM ? GATT_PRIMARY_SERVICE : GATT_SECONDARY_SERVICE);
    case S_INCL:
    case S_CHRC:
        if (s == S_INCL) {
            if ((r = gatt_db_finish_services(&g->db)) < 0)
                return r;
            if (g->db.n_svc == 0) /* partial: the range may have lost its services */
                return start_step(g, g->partial ? S_DESC : S_SC);
            g->lo = g->db.svc[0].start;
            g->hi = 0;
            for (size_t i = 0; i < g->db.n_svc; i++)
                if (g->db.svc[i].end > g->hi)
                    g->hi = g->db.svc[i].end;
        }
        g->cursor = g->lo;
        return send_range(g, ATT_OP_READ_BY_TYPE_REQ, g->lo, g->hi,
                          s == S_INCL ? GATT_INCLUDE : GATT_CHARACTERISTIC);
    case S_DESC:
        if ((r = gatt_db_finish_chrcs(&g->db)) < 0)
            return r;
        g->chrc_i = 0;
        return send_desc(g, 1);
    case S_SC: {
        const struct gatt_chrc *c = sc_chrc(&g->db);
        if (!c || !c->cccd || !(c->props & GATT_PROP_INDICATE))
            return 1;
        g->sc_handle = c->value;
        uint8_t p[4];
        att_put16(p, c->cccd);
        att_put16(p + 2, 0x0002);
        return send_disc(g, ATT_OP_WRITE_REQ, p, 4);
    }
    default:
        return 1;
    }
}

/* A list response's entries must start at cursor or later, stay <= end and increase. */
static int in_order(struct gatt *g, uint16_t h, uint16_t end)
{
    if (h < g->cursor || h > end)
        return 0;
    g->cursor = (uint32_t)h + 1;
    return 1;
}

static int on_services(struct gatt *g, const struct att_rsp *rsp)
{
    struct att_list l;
    struct att_uuid u;
    if (att_parse_read_by_group(rsp->params, rsp->len, &l) < 0 || (l.elen != 6 && l.elen != 20))
        return -EPROTO;
    for (size_t i = 0; i < l.count; i++) {
        const uint8_t *e = att_list_entry(&l, i);
        uint16_t s = att_get16(e), end = att_get16(e + 2);
        int r;
        if (!in_order(g, s, disc_end(g)) || end < s || end > disc_end(g))
            return -EPROTO;
        g->cursor = (uint32_t)end + 1;
        att_uuid_from_wire(&u, e + 4, l.elen - 4);
        if ((r = gatt_db_add_service(&g->db, s, end, &u, g->step == S_PRIM)) < 0)
            return r;
    }
    return g->cursor > disc_end(g) ? 1 : send_range(g, ATT_OP_READ_BY_GROUP_REQ, g->cursor,
                                                    disc_end(g), g->step == S_PRIM
                                                    ? GATT_PRIMARY_SERVICE
                                                    : GATT_SECONDARY_SERVICE);
}

static int on_includes_or_chrcs(struct gatt *g, const struct att_rsp *rsp)
{
    struct att_list l;
    struct att_uuid u;
    int incl = g->step == S_INCL;
    if (att_parse_read_by_type(rsp->params, rsp->len, &l) < 0)
        return -EPROTO;
    if (incl ? l.elen != 6 && l.elen != 8 : l.elen != 7 && l.elen != 21)
        return -EPROTO;
    for (size_t i = 0; i < l.count; i++) {
        const uint8_t *e = att_list_entry(&l, i);
        uint16_t h = att_get16(e);
        int r;
        if (!in_order(g, h, g->hi))
            return -EPROTO;
        if (incl) {
            g->db.n_incl++;
            continue;
        }
        att_uuid_from_wire(&u, e + 5, l.elen - 5);
        if ((r = gatt_db_add_chrc(&g->db, h, e[2], att_get16(e + 3), &u)) < 0)
            return r;
    }
    return g->cursor > g->hi ? 1 : send_range(g, ATT_OP_READ_BY_TYPE_REQ, g->cursor, g->hi,
                                              incl ? GATT_INCLUDE : GATT_CHARACTERISTIC);
}

static int on_descs(struct gatt *g, const struct att_rsp *rsp)
{
    struct att_list l;
    struct att_uuid u;
    const struct gatt_chrc *c = &g->db.chrc[g->chrc_i];
    if (att_parse_find_info(rsp->params, rsp->len, &l) < 0)
        return -EPROTO;
    for (size_t i = 0; i < l.count; i++) {
        const uint8_t *e = att_list_entry(&l, i);
        uint16_t h = att_get16(e);
        int r;
        if (!in_order(g, h, c->end))
            return -EPROTO;
        att_uuid_from_wire(&u, e + 2, l.elen - 2);
        if ((r = gatt_db_add_desc(&g->db, h, &u)) < 0)
            return r;
    }
    return send_desc(g, 0);
}

/* Optional steps go on after an ATT error or a malformed answer, not after the bearer died. */
static int fatal(const struct att_rsp *rsp)
{
    return rsp->err && !rsp->ecode && rsp->err != -EPROTO;
}

/* Handles the response of the current step: 0 (next request sent), 1 (the step is over),
 * or -errno. */
static int on_step(struct gatt *g, const struct att_rsp *rsp)
{
    struct att_list l;
    uint8_t ec = rsp->ecode;
    switch (g->step) {
    case S_MTU:
    case S_SC:
        return fatal(rsp) ? rsp->err : 1;
    case S_FEAT:
    case S_HASH:
        if (fatal(rsp))
            return rsp->err;
        if (!rsp->err && att_parse_read_by_type(rsp->params, rsp->len, &l) == 0) {
            const uint8_t *e = att_list_entry(&l, 0);
            if (g->step == S_FEAT && l.elen >= 3)
                g->features = e[2];
            if (g->step == S_HASH && l.elen == 18) {
                g->have_hash = 1;
                memcpy(g->hash, e + 2, 16);
            }
        }
        return 1;
    case S_PRIM:
    case S_SEC:
        if (ec == ATT_ECODE_ATTR_NOT_FOUND ||
            (g->step == S_SEC && ec == ATT_ECODE_UNSUPPORTED_GROUP))
            return 1;
        return rsp->err ? rsp->err : on_services(g, rsp);
    case S_INCL:
    case S_CHRC:
        if (ec == ATT_ECODE_ATTR_NOT_FOUND)
            return 1;
        return rsp->err ? rsp->err : on_includes_or_chrcs(g, rsp);
    case S_DESC:
        if (ec == ATT_ECODE_ATTR_NOT_FOUND) {
            g->chrc_i++;
            return send_desc(g, 1);
        }
        return rsp->err ? rsp->err : on_descs(g, rsp);
    default:
        return -EINVAL;
    }
}

static int wanted_present(const struct gatt *g)
{
    for (size_t i = 0; i < g->opts.n_wanted; i++)
        if (!gatt_db_service(&g->db, &g->wanted[i]))
            return 0;
    return 1;
}

/* Moves the procedure on after step s ended; the ready callback runs last. */
static void advance(struct gatt *g, int r)
{
    while (r == 1) {
        switch (g->step) {
        case S_MTU: r = start_step(g, S_FEAT); break;
        case S_FEAT: r = start_step(g, S_HASH); break;
        case S_HASH: r = cache_lookup(g) ? start_step(g, S_SC) : start_step(g, S_PRIM); break;
        case S_PRIM: r = start_step(g, S_SEC); break;
        case S_SEC: r = start_step(g, S_INCL); break;
        case S_INCL: r = start_step(g, S_CHRC); break;
        case S_CHRC: r = start_step(g, S_DESC); break;
        case S_DESC: /* send_desc ran out of characteristics */
            if ((r = gatt_db_finish(&g->db)) == 0 && g->partial) {
                struct gatt_db m;
                if ((r = gatt_db_merge(&m, &g->keep, &g->db)) == 0) {
                    gatt_db_clear(&g->db);
                    g->db = m;
                }
            }
            if (r == 0) {
                cache_store(g);
                r = start_step(g, S_SC);
            }
            break;
        default: r = 2; break;
        }
    }
    if (r == 0)
        return;
    if (r < 0) {
        g->step = S_FAILED;
    } else {
        g->step = S_READY;
        r = wanted_present(g) ? 0 : -ENOENT;
    }
    if (g->opts.ready)
        g->opts.ready(g, r, g->opts.user_data);
}

static void disc_rsp(struct att *a, const struct att_rsp *rsp, void *user_data)
{
    struct gatt *g = user_data;
    g->disc_id = 0;
    if (g->step >= S_READY)
        return;
    g->depth++;
    advance(g, on_step(g, rsp));
    gatt_leave(g);
}

static void on_close(struct att *a, int err, void *user_data)
{
    struct gatt *g = user_data;
    if (g->step >= S_READY)
        return;
    g->depth++;
    advance(g, err < 0 ? err : -ECONNRESET);
    gatt_leave(g);
}

static void on_notify(struct att *a, uint8_t opcode, uint16_t handle, const uint8_t *v,
                      size_t len, int64_t recv_ns, void *user_data)
{
    struct gatt *g = user_data;
    int ids[GATT_MAX_SUBS];
    size_t n = 0;
    g->depth++;
    if (opcode == ATT_OP_INDICATE && handle && handle == g->sc_handle && len >= 4) {
        if (g->opts.cache)
            gatt_cache_forget(g->opts.cache, g->device);
        if (g->opts.changed)
            g->opts.changed(g, att_get16(v), att_get16(v + 2), g->opts.user_data);
    }
    for (size_t i = 0; i < g->subs_end; i++)
        if (g->subs[i].id && (g->subs[i].handle == handle || g->subs[i].handle == 0))
            ids[n++] = g->subs[i].id;
    for (size_t k = 0; k < n && !g->free_pending; k++)
        for (size_t i = 0; i < g->subs_end; i++) /* a callback may have registered more */
            if (g->subs[i].id == ids[k]) {
                g->subs[i].fn(g, handle, v, len, recv_ns, g->subs[i].user_data);
                break;
            }
    gatt_leave(g);
}

static struct gatt *create(struct att *att, const struct gatt_opts *opts,
                           const struct gatt *old, uint16_t start, uint16_t end)
{
    uint16_t mtu = opts->mtu ? opts->mtu : ATT_MAX_LE_MTU;
    if (mtu < ATT_DEFAULT_LE_MTU || mtu > ATT_MAX_LE_MTU || opts->n_wanted > GATT_MAX_WANTED ||
        (opts->n_wanted && !opts->wanted) ||
        (opts->cache && (!opts->device || !*opts->device ||
                         strlen(opts->device) > GATT_DEVICE_MAX))) {
        errno = EINVAL;
        return NULL;
    }
    if (att_dead(att)) {
        errno = ENOTCONN;
        return NULL;
    }
    struct gatt *g = calloc(1, sizeof *g);
    if (!g) {
        errno = ENOMEM;
        return NULL;
    }
    g->att = att;
    g->opts = *opts;
    g->opts.mtu = mtu;
    if (opts->n_wanted)
        memcpy(g->wanted, opts->wanted, opts->n_wanted * sizeof *g->wanted);
    g->opts.wanted = g->wanted;
    if (opts->device)
        snprintf(g->device, sizeof g->device, "%s", opts->device);
    g->opts.device = g->device;
    g->notify_id = att_register_notify(att, on_notify, g, NULL);
    g->close_id = att_register_close(att, on_close, g, NULL);
    int r = g->notify_id < 0 ? g->notify_id : g->close_id < 0 ? g->close_id : 0;
    if (r == 0 && old) {
        r = gatt_db_outside(&g->keep, &old->db, start, end);
        if (r == 0) {
            g->partial = 1;
            g->range_lo = start;
            g->range_hi = end;
            g->features = old->features;
            /* a kept Service Changed is recognised while the range is discovered again */
            const struct gatt_chrc *c = sc_chrc(&g->keep);
            g->sc_handle = c && (c->props & GATT_PROP_INDICATE) ? c->value : 0;
        } else if (r == -ERANGE) {
            r = 0; /* a service straddles the range: everything is discovered again */
        }
    }
    if (r == 0)
        r = start_step(g, S_MTU);
    if (r < 0) {
        g->opts.destroy = NULL;   /* the caller keeps its user_data on failure */
        gatt_free(g);
        errno = -r;
        return NULL;
    }
    return g;
}

struct gatt *gatt_new(struct att *att, const struct gatt_opts *opts)
{
    return create(att, opts, NULL, 0, 0);
}

struct gatt *gatt_new_changed(struct att *att, const struct gatt_opts *opts,
                              const struct gatt *old, uint16_t start, uint16_t end)
{
    int whole = !old || old->step != S_READY || old->att != att || start == 0 || end < start;
    return whole ? create(att, opts, NULL, 0, 0) : create(att, opts, old, start, end);
}

int gatt_partial(const struct gatt *g)
{
    return g->partial;
}

struct gatt *gatt_free(struct gatt *g)
{
    if (!g || g->free_pending)
        return NULL;
    g->free_pending = 1;
    att_unregister(g->att, g->notify_id);
    att_unregister(g->att, g->close_id);
    if (g->disc_id)
        att_cancel(g->att, g->disc_id);
    g->disc_id = 0;
    gatt_ops_detach(g);
    if (g->opts.destroy)
        g->opts.destroy(g->opts.user_data);
    if (g->depth == 0)
        g_release(g);
    return NULL;
}

struct att *gatt_att(const struct gatt *g)
{
    return g->att;
}

int gatt_is_ready(const struct gatt *g)
{
    return g->step == S_READY;
}

int gatt_from_cache(const struct gatt *g)
{
    return g->from_cache;
}

const struct gatt_db *gatt_get_db(const struct gatt *g)
{
    return &g->db;
}

uint8_t gatt_server_features(const struct gatt *g)
{
    return g->features;
}
