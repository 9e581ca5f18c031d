/* btsnoop captures (Android HCI snoop logs, `btmon -w`, engaged's own recordings; codec in
 * drivers/btsnoop.c) replayed through the GATT decoders of drivers/decode.h. One participant
 * (--participant, required), source "btsnoop" unless given.
 *
 * The capture is read record by record (r->line = record number). ACL packets are reassembled
 * into ATT PDUs per (controller index, connection handle, direction). The reader learns each
 * connection's handle -> characteristic map from the discovery the capture holds: Read By Type
 * responses to a request for 0x2803 (characteristic declarations: value handle and UUID) and
 * Find Information responses (handle and UUID; a declaration's mapping wins); a Service
 * Changed value forgets what it learnt in the range the value names, which the discovery that
 * follows in the capture maps again. It then decodes Handle Value Notifications and
 * Indications, and Read Responses (matched to the Read Request going the other way), of Heart
 * Rate Measurement, Battery Level and the InfiniTime step count and raw motion
 * characteristics into hr, battery, steps and accel events, ts = the record's
 * time. Whichever side of the link the capture was taken on, requests and their responses are
 * paired by direction, so phone-side and peripheral-side captures read alike.
 *
 * A connection's state ends at the HCI Disconnection Complete event for its handle (handles are
 * reused by later connections); an LE Connection Complete on a handle still in use, or an HCI
 * Reset (its Command Complete), drops it without making events of what it held (a capture cut
 * short, a daemon killed: the connection's end was not seen). The step count's baseline
 * belongs to the device, known by the address its LE Connection Complete names, so it carries
 * over the device's reconnections until an HCI Reset (as in the daemon, which keeps it for
 * as long as it runs); a connection whose device is unknown has its own. Values on handles the discovery did not map are counted and
 * skipped, with one READ_BAD for the first (a capture started after discovery would otherwise
 * report every value); so are values of characteristics the decoders do not know (silently).
 * Anything malformed (a record, an ACL or L2CAP header, a value) is one READ_BAD naming the
 * record; only an absurd record length or a truncated file end the reading. Bounds: 16
 * connections (the least recently used is forgotten), 128 characteristics per connection,
 * one incomplete L2CAP frame per link and direction (drivers/btsnoop.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/ble_att.h"
#include "drivers/ble_gatt.h"
#include "drivers/btsnoop.h"
#include "drivers/decode.h"
#include "drivers/reader.h"

#define SNOOP_CONNS 16
#define SNOOP_CHARS 128
#define SNOOP_QUEUE 4

enum kind { K_OTHER = 0, K_HR, K_BATTERY, K_STEPS, K_MOTION, K_SVC_CHANGED };

struct chr {
    uint16_t handle;
    uint8_t kind;
    uint8_t from_decl;
};

/* A peer device, by its LE Connection Complete: address type and address. */
struct dev {
    int used;
    uint16_t index;
    uint8_t addr[7];
    uint64_t stamp;
    struct dec_steps_state steps;
};

struct conn {
    int used;
    uint16_t index, handle;
    int dev;               /* index into snoop.dev, -1: not known */
    uint64_t stamp;
    struct chr chr[SNOOP_CHARS];
    size_t n_chr;
    /* the request outstanding in each direction (ATT allows one) */
    uint8_t req_op[2];
    uint16_t req_handle[2];
    int req_2803[2];
    struct dec_steps_state steps;
    struct dec_accel_block *accel; /* allocated at the first motion value */
};

struct out {
    int rc;                /* READ_BAD or READ_EVENT */
    struct event ev;
    char why[192];
};

struct snoop {
    FILE *f;
    uint32_t datalink;
    uint64_t rec;
    int done;              /* no more records: flush, then EOF */
    size_t flushed;        /* connections flushed at the end */
    uint64_t clock;
    struct btsnoop_l2cap l2;
    struct conn conn[SNOOP_CONNS];
    struct dev dev[SNOOP_CONNS];
    struct out q[SNOOP_QUEUE];
    size_t qn, qi;
    struct btsnoop_reader_stats st;
    uint8_t buf[BTSNOOP_REC_MAX];
    char why[192];
    struct att_uuid steps_uuid, motion_uuid;
};

static int snoop_probe(const char *path, const unsigned char *head, size_t n)
{
    (void)path;
    return n >= BTSNOOP_MAGIC_LEN && memcmp(head, BTSNOOP_MAGIC, BTSNOOP_MAGIC_LEN) == 0;
}

static int snoop_fail(struct reader *r, const char *why)
{
    r->why = why;
    return -EINVAL;
}

static int snoop_open(struct reader *r, const char *path, const struct reader_opts *o)
{
    if (!o->participant)
        return snoop_fail(r, "btsnoop captures name no participant id: give --participant");
    if (!ev_valid_id(o->participant))
        return snoop_fail(r, "--participant must match [A-Za-z0-9_-]{1,64}");
    if (o->source && !ev_valid_id(o->source))
        return snoop_fail(r, "source must match [A-Za-z0-9_-]{1,64}");
    struct snoop *s = calloc(1, sizeof *s);
    if (!s) {
        r->why = "out of memory";
        return -ENOMEM;
    }
    r->priv = s;
    if (att_uuid_parse(&s->steps_uuid, DEC_UUID_PINETIME_STEPS) < 0 ||
        att_uuid_parse(&s->motion_uuid, DEC_UUID_PINETIME_RAW_MOTION) < 0)
        return snoop_fail(r, "internal: bad InfiniTime UUID");
    s->f = fopen(path, "re");
    if (!s->f) {
        int e = errno;
        r->why = strerror(e);
        return -e;
    }
    uint8_t h[BTSNOOP_HDR_LEN];
    size_t n = fread(h, 1, sizeof h, s->f);
    switch (btsnoop_parse_header(h, n, &s->datalink)) {
    case 0: break;
    case -ENODATA: return snoop_fail(r, "btsnoop header truncated (16 bytes expected)");
    case -EINVAL: return snoop_fail(r, "not a btsnoop file (no \"btsnoop\\0\" signature)");
    default:
        return snoop_fail(r, "btsnoop: unsupported version or datalink (version 1 with "
                             "datalink 1001, 1002 or 2001 is read)");
    }
    return 0;
}

static struct out *push(struct snoop *s, int rc)
{
    if (s->qn == SNOOP_QUEUE) /* cannot happen: a record makes at most 3 items (a dropped
                               * frame, an evicted connection's last accel block, a value) */
        return NULL;
    struct out *o = &s->q[s->qn++];
    o->rc = rc;
    o->why[0] = 0;
    return o;
}

#define BAD(s, ...)                                              \
    do {                                                         \
        struct out *o_ = push(s, READ_BAD);                      \
        if (o_)                                                  \
            snprintf(o_->why, sizeof o_->why, __VA_ARGS__);      \
        (s)->st.bad++;                                           \
    } while (0)

static void flush_conn(struct reader *r, struct snoop *s, struct conn *c, int64_t ts);

static struct conn *conn_get(struct reader *r, struct snoop *s, uint16_t index,
                             uint16_t handle, int64_t ts)
{
    struct conn *c = NULL;
    for (size_t i = 0; i < SNOOP_CONNS && !c; i++)
        if (s->conn[i].used && s->conn[i].index == index && s->conn[i].handle == handle)
            c = &s->conn[i];
    if (!c) {
        for (size_t i = 0; i < SNOOP_CONNS && !c; i++)
            if (!s->conn[i].used)
                c = &s->conn[i];
        if (!c) { /* all in use: forget the least recently used */
            c = &s->conn[0];
            for (size_t i = 1; i < SNOOP_CONNS; i++)
                if (s->conn[i].stamp < c->stamp)
                    c = &s->conn[i];
            s->st.conns_evicted++;
            flush_conn(r, s, c, ts);
        }
        struct dec_accel_block *b = c->accel;
        memset(c, 0, sizeof *c);
        c->accel = b; /* kept allocated; an event made from it was copied out (accel_out) */
        if (b)
            dec_accel_block_init(b, 10.0, 100, 500);
        c->used = 1;
        c->index = index;
        c->handle = handle;
        c->dev = -1;
    }
    c->stamp = ++s->clock;
    return c;
}

/* The device with this address, added (the least recently used one replaced) if new. */
static int dev_get(struct snoop *s, uint16_t index, const uint8_t addr[7])
{
    size_t k = 0;
    for (size_t i = 0; i < SNOOP_CONNS; i++) {
        struct dev *v = &s->dev[i];
        if (v->used && v->index == index && memcmp(v->addr, addr, 7) == 0) {
            v->stamp = ++s->clock;
            return (int)i;
        }
        if (!v->used || (s->dev[k].used && v->stamp < s->dev[k].stamp))
            k = i;
    }
    struct dev *v = &s->dev[k];
    memset(v, 0, sizeof *v);
    v->used = 1;
    v->index = index;
    memcpy(v->addr, addr, 7);
    v->stamp = ++s->clock;
    for (size_t i = 0; i < SNOOP_CONNS; i++) /* a connection of the replaced device */
        if (s->conn[i].dev == (int)k)
            s->conn[i].dev = -1;
    return (int)k;
}

static void meta(struct reader *r, int64_t ts, struct dec_meta *m)
{
    m->ts = ts;
    m->participant = r->opts.participant;
    m->source = r->opts.source ? r->opts.source : "btsnoop";
}

/* Queues the accel block being filled on c, its samples copied to r->scratch (the block is
 * reused before the event is read when the connection ends). */
static void accel_out(struct reader *r, struct snoop *s, const struct event *ev)
{
    struct out *o = push(s, READ_EVENT);
    if (!o)
        return;
    o->ev = *ev;
    memcpy(r->scratch, ev->u.accel.g, sizeof(float[3]) * ev->u.accel.n);
    o->ev.u.accel.g = (const float(*)[3])r->scratch;
    s->st.events++;
}

static void flush_conn(struct reader *r, struct snoop *s, struct conn *c, int64_t ts)
{
    struct event ev;
    struct dec_meta m;
    meta(r, ts, &m);
    if (c->accel && dec_accel_block_flush(c->accel, &m, &ev) == 1)
        accel_out(r, s, &ev);
}

static void map(struct snoop *s, struct conn *c, uint16_t handle, const uint8_t *u, size_t ulen,
                int decl)
{
    struct att_uuid uu;
    uint16_t v;
    uint8_t kind = K_OTHER;
    if (att_uuid_from_wire(&uu, u, ulen) < 0)
        return;
    if (att_uuid_to16(&uu, &v)) {
        if (v == DEC_UUID_HR_MEASUREMENT)
            kind = K_HR;
        else if (v == DEC_UUID_BATTERY_LEVEL)
            kind = K_BATTERY;
        else if (v == GATT_SERVICE_CHANGED)
            kind = K_SVC_CHANGED;
    } else if (att_uuid_eq(&uu, &s->steps_uuid))
        kind = K_STEPS;
    else if (att_uuid_eq(&uu, &s->motion_uuid))
        kind = K_MOTION;
    for (size_t i = 0; i < c->n_chr; i++)
        if (c->chr[i].handle == handle) {
            if (decl || !c->chr[i].from_decl) {
                c->chr[i].kind = kind;
                c->chr[i].from_decl = (uint8_t)decl;
            }
            return;
        }
    if (c->n_chr == SNOOP_CHARS) {
        if (s->st.map_full++ == 0)
            BAD(s, "more than %d attribute handles on connection 0x%04x: further ones are "
                   "not mapped", SNOOP_CHARS, c->handle);
        return;
    }
    c->chr[c->n_chr++] = (struct chr){.handle = handle, .kind = kind, .from_decl = (uint8_t)decl};
}

static void value(struct reader *r, struct snoop *s, struct conn *c, uint16_t handle,
                  const uint8_t *v, size_t n, int64_t ts)
{
    const struct chr *k = NULL;
    for (size_t i = 0; i < c->n_chr && !k; i++)
        if (c->chr[i].handle == handle)
            k = &c->chr[i];
    if (!k) {
        if (s->st.unmapped++ == 0)
            BAD(s, "value on handle 0x%04x of connection 0x%04x, which the capture's discovery "
                   "did not map to a characteristic: skipped (further ones are counted, not "
                   "reported)", handle, c->handle);
        return;
    }
    struct dec_meta m;
    meta(r, ts, &m);
    char why[DEC_WHY_MAX];
    struct out *o;
    int e;
    switch (k->kind) {
    case K_HR: {
        struct dec_hr hr;
        struct event ev;
        e = decode_hr_measurement(v, n, &hr, why);
        if (e == 0)
            e = decode_hr_event(&hr, &m, &ev, why);
        if (e == -ENODATA) {
            s->st.no_data++;
            return;
        }
        if (e < 0)
            break;
        if ((o = push(s, READ_EVENT))) {
            o->ev = ev;
            s->st.events++;
        }
        return;
    }
    case K_BATTERY: {
        struct event ev;
        if ((e = decode_battery_event(v, n, &m, &ev, why)) < 0)
            break;
        if ((o = push(s, READ_EVENT))) {
            o->ev = ev;
            s->st.events++;
        }
        return;
    }
    case K_STEPS: {
        uint32_t total;
        struct event ev;
        if ((e = decode_pinetime_steps(v, n, &total, why)) < 0)
            break;
        struct dec_steps_state *st = c->dev >= 0 ? &s->dev[c->dev].steps : &c->steps;
        if (decode_steps_event(st, total, &m, &ev) == 1 && (o = push(s, READ_EVENT))) {
            o->ev = ev;
            s->st.events++;
        }
        return;
    }
    case K_MOTION: {
        float g[3];
        struct event ev;
        if ((e = decode_pinetime_motion(v, n, DEC_PINETIME_LSB_PER_G, g, why)) < 0)
            break;
        if (!c->accel) {
            c->accel = malloc(sizeof *c->accel);
            if (!c->accel) {
                BAD(s, "out of memory for an accel block: motion value skipped");
                return;
            }
            dec_accel_block_init(c->accel, 10.0, 100, 500);
        }
        e = dec_accel_block_add(c->accel, g, &m, &ev);
        if (e == 1)
            accel_out(r, s, &ev);
        else if (e < 0) {
            snprintf(why, sizeof why, "raw motion sample beyond 1000 g");
            break;
        }
        return;
    }
    case K_SVC_CHANGED:
        /* the device's database changed over [start, end]: what the connection learnt
         * there is forgotten, and the discovery that follows in the capture maps it again */
        if (n >= 4) {
            uint16_t lo = att_get16(v), hi = att_get16(v + 2);
            size_t kept = 0;
            for (size_t i = 0; i < c->n_chr; i++)
                if (c->chr[i].handle < lo || c->chr[i].handle > hi || c->chr[i].handle == handle)
                    c->chr[kept++] = c->chr[i];
            c->n_chr = kept;
            s->st.changed++;
            return;
        }
        snprintf(why, sizeof why, "Service Changed value of %zu bytes (4 expected)", n);
        break;
    default:
        s->st.undecoded++;
        return;
    }
    s->st.malformed++;
    BAD(s, "handle 0x%04x: %s", handle, why);
}

static void att(struct reader *r, struct snoop *s, const struct btsnoop_frame *fr, int64_t ts)
{
    if (fr->len < 1) {
        BAD(s, "empty ATT PDU on connection 0x%04x", fr->handle);
        return;
    }
    s->st.att++;
    struct conn *c = conn_get(r, s, fr->index, fr->handle, ts);
    const uint8_t *p = fr->att + 1;
    size_t n = fr->len - 1;
    int d = fr->dir, o = !fr->dir; /* o: the direction of the request a response answers */
    struct att_list l;
    switch (fr->att[0]) {
    case ATT_OP_READ_BY_TYPE_REQ:
        c->req_op[d] = ATT_OP_READ_BY_TYPE_REQ;
        c->req_2803[d] = (n == 6 && att_get16(p + 4) == 0x2803);
        return;
    case ATT_OP_READ_REQ:
        if (n != 2) {
            BAD(s, "Read Request with %zu parameter bytes (2 expected)", n);
            c->req_op[d] = 0;
            return;
        }
        c->req_op[d] = ATT_OP_READ_REQ;
        c->req_handle[d] = att_get16(p);
        return;
    case ATT_OP_READ_BY_TYPE_RSP: {
        int want = c->req_op[o] == ATT_OP_READ_BY_TYPE_REQ && c->req_2803[o];
        c->req_op[o] = 0;
        if (!want)
            return;
        if (att_parse_read_by_type(p, n, &l) < 0 || (l.elen != 7 && l.elen != 21)) {
            BAD(s, "malformed Read By Type Response to a characteristic discovery");
            return;
        }
        for (size_t i = 0; i < l.count; i++) {
            const uint8_t *e = att_list_entry(&l, i);
            map(s, c, att_get16(e + 3), e + 5, l.elen - 5, 1);
        }
        return;
    }
    case ATT_OP_FIND_INFO_RSP:
        c->req_op[o] = 0;
        if (att_parse_find_info(p, n, &l) < 0) {
            BAD(s, "malformed Find Information Response");
            return;
        }
        for (size_t i = 0; i < l.count; i++) {
            const uint8_t *e = att_list_entry(&l, i);
            map(s, c, att_get16(e), e + 2, l.elen - 2, 0);
        }
        return;
    case ATT_OP_READ_RSP: {
        int want = c->req_op[o] == ATT_OP_READ_REQ;
        c->req_op[o] = 0;
        if (want)
            value(r, s, c, c->req_handle[o], p, n, ts);
        return;
    }
    case ATT_OP_NOTIFY:
    case ATT_OP_INDICATE:
        if (n < 2) {
            BAD(s, "Handle Value %s of %zu bytes: no handle",
                fr->att[0] == ATT_OP_NOTIFY ? "Notification" : "Indication", fr->len);
            return;
        }
        value(r, s, c, att_get16(p), p + 2, n - 2, ts);
        return;
    default:
        /* other requests, and responses (errors included) ending the outstanding request */
        if (att_op_kind(fr->att[0]) == ATT_KIND_RESPONSE)
            c->req_op[o] = 0;
        else if (att_op_kind(fr->att[0]) == ATT_KIND_REQUEST)
            c->req_op[d] = fr->att[0];
        return;
    }
}

/* The connection on handle h ends: flush (a Disconnection Complete: what it held is
 * complete) or not (its end was not seen). */
static void conn_end(struct reader *r, struct snoop *s, uint16_t index, uint16_t h, int flush,
                     int64_t ts)
{
    btsnoop_l2cap_forget(&s->l2, index, h);
    for (size_t i = 0; i < SNOOP_CONNS; i++) {
        struct conn *c = &s->conn[i];
        if (c->used && c->index == index && c->handle == h) {
            if (flush)
                flush_conn(r, s, c, ts);
            c->used = 0; /* the block stays allocated: conn_get re-initialises it */
        }
    }
}

/* LE Connection Complete (0x01) or Enhanced (0x0A), which begin alike: subevent, status,
 * handle, role, peer address type, peer address. */
static void le_connected(struct reader *r, struct snoop *s, const struct btsnoop_pkt *pk,
                         int64_t ts)
{
    const uint8_t *p = pk->data;
    if (pk->len < 11 || (p[0] != 0x01 && p[0] != 0x0A) || p[1] != 0)
        return;
    uint16_t h = att_get16(p + 2) & 0x0FFF;
    conn_end(r, s, pk->index, h, 0, ts);
    struct conn *c = conn_get(r, s, pk->index, h, ts);
    c->dev = dev_get(s, pk->index, p + 5);
}

/* HCI Reset done: every connection and device of the controller is gone. */
static void reset(struct snoop *s, uint16_t index)
{
    for (size_t i = 0; i < BTSNOOP_L2CAP_SLOTS; i++)
        if (s->l2.slot[i].index == index)
            s->l2.slot[i].used = 0;
    for (size_t i = 0; i < SNOOP_CONNS; i++) {
        if (s->conn[i].index == index)
            s->conn[i].used = 0;
        if (s->dev[i].index == index)
            s->dev[i].used = 0;
    }
}

static void hci_event(struct reader *r, struct snoop *s, const struct btsnoop_pkt *pk,
                      int64_t ts)
{
    const uint8_t *p = pk->data;
    if (pk->evt == 0x05 && pk->len >= 4 && p[0] == 0) /* Disconnection Complete, OK */
        conn_end(r, s, pk->index, att_get16(p + 1) & 0x0FFF, 1, ts);
    else if (pk->evt == 0x3E && pk->len >= 1)         /* LE Meta */
        le_connected(r, s, pk, ts);
    else if (pk->evt == 0x0E && pk->len >= 4 && att_get16(p + 1) == 0x0C03 && p[3] == 0)
        reset(s, pk->index);                           /* Command Complete of HCI Reset */
}

/* Reads and handles one record, queueing what it yields. 0, or 1 at the end of the records. */
static int record(struct reader *r, struct snoop *s)
{
    uint8_t h[BTSNOOP_REC_HDR_LEN];
    size_t n = fread(h, 1, sizeof h, s->f);
    if (n == 0 && !ferror(s->f))
        return 1;
    r->line = ++s->rec;
    if (n < sizeof h) {
        BAD(s, "record header truncated (%zu of 24 bytes): end of the capture", n);
        return 1;
    }
    struct btsnoop_rec rec;
    char why[128];
    int e = btsnoop_parse_record(h, &rec, why);
    if (e == -EINVAL) {
        BAD(s, "%s", why);
        return 1;
    }
    size_t got = fread(s->buf, 1, rec.incl_len, s->f);
    if (got < rec.incl_len) {
        BAD(s, "record truncated (%zu of %lu bytes): end of the capture", got,
            (unsigned long)rec.incl_len);
        return 1;
    }
    if (e < 0) {
        BAD(s, "%s", why);
        return 0;
    }
    s->st.records++;
    if (rec.incl_len < rec.orig_len) {
        BAD(s, "record holds %lu of the packet's %lu bytes (cut by the capture): skipped",
            (unsigned long)rec.incl_len, (unsigned long)rec.orig_len);
        return 0;
    }
    int64_t ts = btsnoop_ts_to_unix_ms(rec.ts_us);
    struct btsnoop_pkt pk;
    if (btsnoop_packet(s->datalink, rec.flags, s->buf, rec.incl_len, &pk, why) < 0) {
        BAD(s, "%s", why);
        return 0;
    }
    if (pk.type == BTSNOOP_PKT_EVENT) {
        hci_event(r, s, &pk, ts);
        return 0;
    }
    if (pk.type != BTSNOOP_PKT_ACL)
        return 0;
    s->st.acl++;
    struct btsnoop_frame fr;
    const char *dropped;
    e = btsnoop_l2cap_push(&s->l2, &pk, &fr, &dropped, why);
    if (dropped)
        BAD(s, "%s", dropped);
    if (e < 0)
        BAD(s, "%s", why);
    else if (e == 1) {
        if (ts < EV_TS_MIN || ts >= EV_TS_MAX) {
            BAD(s, "record time outside 1900..2199");
            return 0;
        }
        att(r, s, &fr, ts);
    }
    return 0;
}

static int snoop_next(struct reader *r, struct event *ev)
{
    struct snoop *s = r->priv;
    for (;;) {
        if (s->qi < s->qn) {
            struct out *o = &s->q[s->qi++];
            if (o->rc == READ_EVENT) {
                *ev = o->ev;
                return READ_EVENT;
            }
            snprintf(s->why, sizeof s->why, "%s", o->why);
            r->why = s->why;
            return READ_BAD;
        }
        s->qi = s->qn = 0;
        if (!s->done) {
            if (record(r, s) == 1) {
                if (ferror(s->f)) {
                    r->why = "read error";
                    return -EIO;
                }
                s->done = 1;
            }
            continue;
        }
        if (s->flushed < SNOOP_CONNS) {
            struct conn *c = &s->conn[s->flushed++];
            if (c->used)
                flush_conn(r, s, c, 0);
            continue;
        }
        return READ_EOF;
    }
}

static void snoop_close(struct reader *r)
{
    struct snoop *s = r->priv;
    if (!s)
        return;
    if (s->f)
        fclose(s->f);
    for (size_t i = 0; i < SNOOP_CONNS; i++)
        free(s->conn[i].accel);
    free(s);
    r->priv = NULL;
}

const struct btsnoop_reader_stats *btsnoop_reader_stats(const struct reader *r)
{
    const struct snoop *s = r->ops == &reader_btsnoop ? r->priv : NULL;
    return s ? &s->st : NULL;
}

const struct reader_ops reader_btsnoop = {
    .name = "btsnoop",
    .probe = snoop_probe,
    .open = snoop_open,
    .next = snoop_next,
    .close = snoop_close,
};
