/* btsnoop codec (drivers/btsnoop.h; ../shared/reference/ble.md §6). Pure except the FILE
 * writer at the end. Every length read from a file is checked before it is used: a record
 * says how many bytes follow, the ACL header how many it carries, the L2CAP header how many
 * the frame has; a disagreement is reported, never trusted. */
#include "drivers/btsnoop.h"

#include <errno.h>
#include <string.h>

static uint32_t get32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint16_t get16le(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void put16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

#define WHY(...)                           \
    do {                                   \
        if (why)                           \
            snprintf(why, 128, __VA_ARGS__); \
    } while (0)

int btsnoop_parse_header(const uint8_t *p, size_t n, uint32_t *ret_datalink)
{
    if (n < BTSNOOP_HDR_LEN)
        return -ENODATA;
    if (memcmp(p, BTSNOOP_MAGIC, BTSNOOP_MAGIC_LEN) != 0)
        return -EINVAL;
    uint32_t link = get32be(p + 12);
    *ret_datalink = link;
    if (get32be(p + 8) != BTSNOOP_VERSION)
        return -EPROTONOSUPPORT;
    if (link != BTSNOOP_LINK_H1 && link != BTSNOOP_LINK_H4 && link != BTSNOOP_LINK_MONITOR)
        return -EPROTONOSUPPORT;
    return 0;
}

void btsnoop_encode_header(uint8_t out[BTSNOOP_HDR_LEN], uint32_t datalink)
{
    memcpy(out, BTSNOOP_MAGIC, BTSNOOP_MAGIC_LEN);
    put32be(out + 8, BTSNOOP_VERSION);
    put32be(out + 12, datalink);
}

int btsnoop_parse_record(const uint8_t p[BTSNOOP_REC_HDR_LEN], struct btsnoop_rec *ret,
                         char *why)
{
    ret->orig_len = get32be(p);
    ret->incl_len = get32be(p + 4);
    ret->flags = get32be(p + 8);
    ret->drops = get32be(p + 12);
    ret->ts_us = (int64_t)((uint64_t)get32be(p + 16) << 32 | get32be(p + 20));
    if (ret->incl_len > BTSNOOP_REC_MAX) {
        WHY("record length %lu is absurd (at most %d): the rest of the file is unreadable",
            (unsigned long)ret->incl_len, BTSNOOP_REC_MAX);
        return -EINVAL;
    }
    if (ret->incl_len > ret->orig_len) {
        WHY("record includes %lu bytes of a %lu-byte packet", (unsigned long)ret->incl_len,
            (unsigned long)ret->orig_len);
        return -EMSGSIZE;
    }
    return 0;
}

void btsnoop_encode_record(uint8_t out[BTSNOOP_REC_HDR_LEN], const struct btsnoop_rec *r)
{
    put32be(out, r->orig_len);
    put32be(out + 4, r->incl_len);
    put32be(out + 8, r->flags);
    put32be(out + 12, r->drops);
    put32be(out + 16, (uint32_t)((uint64_t)r->ts_us >> 32));
    put32be(out + 20, (uint32_t)r->ts_us);
}

int64_t btsnoop_ts_to_unix_ms(int64_t ts_us)
{
    /* both operands are in range for any int64: ts_us >= INT64_MIN, the epoch is positive */
    int64_t us = ts_us < INT64_MIN + BTSNOOP_EPOCH_UNIX_US ? INT64_MIN
                                                           : ts_us - BTSNOOP_EPOCH_UNIX_US;
    int64_t ms = us / 1000;
    if (us % 1000 < 0)
        ms--;
    return ms;
}

int64_t btsnoop_ts_from_unix_us(int64_t unix_us)
{
    return unix_us > INT64_MAX - BTSNOOP_EPOCH_UNIX_US ? INT64_MAX
                                                       : unix_us + BTSNOOP_EPOCH_UNIX_US;
}

static int acl(struct btsnoop_pkt *r, const uint8_t *p, size_t n, char *why)
{
    if (n < 4) {
        WHY("ACL packet of %zu bytes: shorter than its 4-byte header", n);
        return -EINVAL;
    }
    uint16_t h = get16le(p);
    size_t len = get16le(p + 2);
    if (len != n - 4) {
        WHY("ACL header says %zu data bytes, the record holds %zu", len, n - 4);
        return -EINVAL;
    }
    r->type = BTSNOOP_PKT_ACL;
    r->handle = h & 0x0FFF;
    r->pb = (uint8_t)(h >> 12 & 3);
    r->bc = (uint8_t)(h >> 14 & 3);
    r->data = p + 4;
    r->len = len;
    return 0;
}

static int event(struct btsnoop_pkt *r, const uint8_t *p, size_t n, char *why)
{
    if (n < 2) {
        WHY("HCI event of %zu bytes: shorter than its 2-byte header", n);
        return -EINVAL;
    }
    if ((size_t)p[1] != n - 2) {
        WHY("HCI event header says %u parameter bytes, the record holds %zu", p[1], n - 2);
        return -EINVAL;
    }
    r->type = BTSNOOP_PKT_EVENT;
    r->evt = p[0];
    r->data = p + 2;
    r->len = p[1];
    return 0;
}

int btsnoop_packet(uint32_t datalink, uint32_t flags, const uint8_t *p, size_t n,
                   struct btsnoop_pkt *ret, char *why)
{
    memset(ret, 0, sizeof *ret);
    ret->type = BTSNOOP_PKT_OTHER;
    switch (datalink) {
    case BTSNOOP_LINK_H4:
        ret->dir = flags & BTSNOOP_FLAG_RECEIVED ? BTSNOOP_DIR_RECEIVED : BTSNOOP_DIR_SENT;
        if (n < 1)
            return 0;
        if (p[0] == BTSNOOP_H4_ACL)
            return acl(ret, p + 1, n - 1, why);
        if (p[0] == BTSNOOP_H4_EVT)
            return event(ret, p + 1, n - 1, why);
        return 0;
    case BTSNOOP_LINK_H1:
        ret->dir = flags & BTSNOOP_FLAG_RECEIVED ? BTSNOOP_DIR_RECEIVED : BTSNOOP_DIR_SENT;
        if (!(flags & BTSNOOP_FLAG_CMD_EVT))
            return acl(ret, p, n, why); /* H1 does not tell SCO from ACL: taken as ACL */
        if (flags & BTSNOOP_FLAG_RECEIVED)
            return event(ret, p, n, why);
        return 0;
    case BTSNOOP_LINK_MONITOR:
        ret->index = (uint16_t)(flags >> 16);
        switch (flags & 0xFFFF) {
        case BTSNOOP_MON_ACL_TX:
            ret->dir = BTSNOOP_DIR_SENT;
            return acl(ret, p, n, why);
        case BTSNOOP_MON_ACL_RX:
            ret->dir = BTSNOOP_DIR_RECEIVED;
            return acl(ret, p, n, why);
        case BTSNOOP_MON_EVENT:
            ret->dir = BTSNOOP_DIR_RECEIVED;
            return event(ret, p, n, why);
        }
        return 0;
    }
    return 0;
}

/* ---- L2CAP reassembly ---- */

static struct btsnoop_l2cap_slot *find_slot(struct btsnoop_l2cap *l, const struct btsnoop_pkt *a)
{
    for (size_t i = 0; i < BTSNOOP_L2CAP_SLOTS; i++) {
        struct btsnoop_l2cap_slot *s = &l->slot[i];
        if (s->used && s->index == a->index && s->handle == a->handle && s->dir == a->dir)
            return s;
    }
    return NULL;
}

int btsnoop_l2cap_push(struct btsnoop_l2cap *l, const struct btsnoop_pkt *a,
                       struct btsnoop_frame *ret, const char **ret_dropped, char *why)
{
    *ret_dropped = NULL;
    struct btsnoop_l2cap_slot *s = find_slot(l, a);
    if (a->pb == 1) { /* continuation */
        if (!s) {
            WHY("ACL continuation fragment (%zu bytes) on handle 0x%04x without a start",
                a->len, a->handle);
            return -EPROTO;
        }
    } else { /* 0, 2: start; 3 (BR/EDR, complete and flushable) read as a start too */
        if (s)
            *ret_dropped = "an incomplete L2CAP frame was cut short by a new start fragment";
        else {
            for (size_t i = 0; i < BTSNOOP_L2CAP_SLOTS && !s; i++)
                if (!l->slot[i].used)
                    s = &l->slot[i];
            if (!s) {
                s = &l->slot[0];
                for (size_t i = 1; i < BTSNOOP_L2CAP_SLOTS; i++)
                    if (l->slot[i].stamp < s->stamp)
                        s = &l->slot[i];
                *ret_dropped = "an incomplete L2CAP frame was dropped: more than 16 links "
                               "with incomplete frames";
            }
        }
        s->used = 1;
        s->index = a->index;
        s->handle = a->handle;
        s->dir = a->dir;
        s->discard = 0;
        s->have = 0;
        s->need = 0;
    }
    s->stamp = ++l->clock;
    const uint8_t *p = a->data;
    size_t n = a->len;
    while (s->have < 4 && n) { /* the L2CAP header may itself be split */
        s->buf[s->have++] = *p++;
        n--;
    }
    if (s->have < 4)
        return 0;
    if (!s->need) {
        size_t len = get16le(s->buf);
        uint16_t cid = get16le(s->buf + 2);
        s->need = 4 + len;
        if (cid != BTSNOOP_ATT_CID)
            s->discard = 1;
        else if (len > BTSNOOP_ATT_MAX) {
            s->used = 0;
            WHY("ATT frame of %zu bytes: longer than the %d an ATT_MTU allows", len,
                BTSNOOP_ATT_MAX);
            return -EMSGSIZE;
        }
    }
    if (n > s->need - s->have) {
        WHY("L2CAP header says %zu bytes, the ACL fragments carry at least %zu", s->need - 4,
            s->have + n - 4);
        s->used = 0;
        return -EPROTO;
    }
    if (!s->discard)
        memcpy(s->buf + s->have, p, n);
    s->have += n;
    if (s->have < s->need)
        return 0;
    s->used = 0;
    if (s->discard)
        return 0;
    ret->index = s->index;
    ret->handle = s->handle;
    ret->dir = s->dir;
    ret->len = s->need - 4;
    memcpy(l->out, s->buf + 4, ret->len);
    ret->att = l->out;
    return 1;
}

void btsnoop_l2cap_forget(struct btsnoop_l2cap *l, uint16_t index, uint16_t handle)
{
    for (size_t i = 0; i < BTSNOOP_L2CAP_SLOTS; i++)
        if (l->slot[i].index == index && l->slot[i].handle == handle)
            l->slot[i].used = 0;
}

/* ---- writing ---- */

long btsnoop_encode_att(uint8_t *out, size_t cap, uint32_t datalink, uint16_t handle, int dir,
                        int64_t unix_us, const uint8_t *att, size_t len, size_t frag)
{
    if (len > BTSNOOP_ATT_MAX || handle > 0x0EFF ||
        (datalink != BTSNOOP_LINK_H1 && datalink != BTSNOOP_LINK_H4))
        return -EINVAL;
    uint8_t l2[4 + BTSNOOP_ATT_MAX];
    put16le(l2, (uint16_t)len);
    put16le(l2 + 2, BTSNOOP_ATT_CID);
    if (len)
        memcpy(l2 + 4, att, len);
    size_t total = 4 + len, off = 0, w = 0;
    size_t h4 = datalink == BTSNOOP_LINK_H4;
    if (!frag || frag > total)
        frag = total;
    while (off < total) {
        size_t k = total - off < frag ? total - off : frag;
        size_t rec = h4 + 4 + k;
        if (cap - w < BTSNOOP_REC_HDR_LEN + rec)
            return -ENOSPC;
        struct btsnoop_rec r = {
            .orig_len = (uint32_t)rec,
            .incl_len = (uint32_t)rec,
            .flags = dir == BTSNOOP_DIR_RECEIVED ? BTSNOOP_FLAG_RECEIVED : 0,
            .ts_us = btsnoop_ts_from_unix_us(unix_us),
        };
        btsnoop_encode_record(out + w, &r);
        w += BTSNOOP_REC_HDR_LEN;
        if (h4)
            out[w++] = BTSNOOP_H4_ACL;
        /* PB: 1 continuation; a start is 0 from the host (LE), 2 from the controller */
        unsigned pb = off ? 1 : dir == BTSNOOP_DIR_RECEIVED ? 2 : 0;
        put16le(out + w, (uint16_t)(handle | pb << 12));
        put16le(out + w + 2, (uint16_t)k);
        memcpy(out + w + 4, l2 + off, k);
        w += 4 + k;
        off += k;
    }
    return (long)w;
}

int btsnoop_writer_open(struct btsnoop_writer *w, FILE *f, uint32_t datalink)
{
    uint8_t h[BTSNOOP_HDR_LEN];
    w->f = f;
    w->datalink = datalink;
    btsnoop_encode_header(h, datalink);
    return fwrite(h, 1, sizeof h, f) == sizeof h ? 0 : -EIO;
}

int btsnoop_write_record(struct btsnoop_writer *w, uint32_t flags, int64_t unix_us,
                         const uint8_t *data, size_t len)
{
    if (len > BTSNOOP_REC_MAX)
        return -EINVAL;
    uint8_t h[BTSNOOP_REC_HDR_LEN];
    struct btsnoop_rec r = {.orig_len = (uint32_t)len, .incl_len = (uint32_t)len,
                            .flags = flags, .ts_us = btsnoop_ts_from_unix_us(unix_us)};
    btsnoop_encode_record(h, &r);
    if (fwrite(h, 1, sizeof h, w->f) != sizeof h || (len && fwrite(data, 1, len, w->f) != len))
        return -EIO;
    return 0;
}

int btsnoop_write_att(struct btsnoop_writer *w, uint16_t handle, int dir, int64_t unix_us,
                      const uint8_t *att, size_t len, size_t frag)
{
    /* worst case: one byte of ACL data per record */
    uint8_t buf[(4 + BTSNOOP_ATT_MAX) * (BTSNOOP_REC_HDR_LEN + 1 + 4 + 1)];
    long n = btsnoop_encode_att(buf, sizeof buf, w->datalink, handle, dir, unix_us, att, len,
                                frag);
    if (n < 0)
        return (int)n;
    return fwrite(buf, 1, (size_t)n, w->f) == (size_t)n ? 0 : -EIO;
}
