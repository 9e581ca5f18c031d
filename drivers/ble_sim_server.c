/* The simulator's ATT server side (see ble_sim.h): every request a GATT client sends, and
 * fault injection.
 *
 * Every response is built within the connection's MTU (entries that would not fit are left for
 * the client's next request, as a real server does); requests are parsed with explicit length
 * checks and a wrong length gets Invalid PDU. Written from the Core specification's ATT/GATT
 * server rules, not from any server's code. Single-threaded; reads no clock. */
#include "drivers/ble_sim_int.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "drivers/ble_gatt.h"

static int error_rsp(struct blesim *s, uint8_t req, uint16_t h, uint8_t code)
{
    uint8_t p[5] = {ATT_OP_ERROR_RSP, req, 0, 0, code};
    att_put16(p + 2, h);
    return blesim_xmit(s, p, 5);
}

static void refresh(struct blesim *s, struct sim_attr *a)
{
    uint8_t buf[ATT_MAX_VALUE_LEN];
    if (!a->refresh)
        return;
    int n = a->refresh(s, a->handle, 0, s->now_ns, buf, sizeof buf, a->hook_data);
    if (n >= 0)
        blesim_store(a, buf, (size_t)n);
}

static int readable(const struct sim_attr *a)
{
    return a->perm & BLESIM_PERM_READ;
}

/* The error for reading or writing a on this link, 0 when the link is secure enough. */
static uint8_t insecure(const struct blesim *s, const struct sim_attr *a)
{
    if (!a->sec_level || s->security >= a->sec_level)
        return 0;
    if (a->sec_ecode)
        return a->sec_ecode;
    return a->sec_level == 2 ? ATT_ECODE_ENCRYPTION : ATT_ECODE_AUTHENTICATION;
}

/* The error for reading a (permission, then security), 0 when it may be read. */
static uint8_t unreadable(const struct blesim *s, const struct sim_attr *a)
{
    return !readable(a) ? ATT_ECODE_READ_NOT_PERMITTED : insecure(s, a);
}

/* Read By Type / Read By Group Type / Find Information / Find By Type Value over
 * [start, end]: the shared checks. 0, or an error code. */
static uint8_t range_ok(uint16_t start, uint16_t end)
{
    return start == 0 || start > end ? ATT_ECODE_INVALID_HANDLE : 0;
}

static int read_by_type(struct blesim *s, const uint8_t *p, size_t n, int group)
{
    uint8_t op = group ? ATT_OP_READ_BY_GROUP_REQ : ATT_OP_READ_BY_TYPE_REQ;
    struct att_uuid type;
    if ((n != 6 && n != 20) || att_uuid_from_wire(&type, p + 4, n - 4) < 0)
        return error_rsp(s, op, 0, ATT_ECODE_INVALID_PDU);
    uint16_t start = att_get16(p), end = att_get16(p + 2);
    if (range_ok(start, end))
        return error_rsp(s, op, start, ATT_ECODE_INVALID_HANDLE);
    struct att_uuid ps = att_uuid16(GATT_PRIMARY_SERVICE), ss = att_uuid16(GATT_SECONDARY_SERVICE);
    if (group && !att_uuid_eq(&type, &ps) && !att_uuid_eq(&type, &ss))
        return error_rsp(s, op, start, ATT_ECODE_UNSUPPORTED_GROUP);
    uint8_t rsp[ATT_MAX_LE_MTU];
    size_t len = 2, elen = 0, hdr = group ? 4 : 2;
    size_t maxv = (size_t)s->mtu - 2 - hdr;
    if (maxv > 255 - hdr)
        maxv = 255 - hdr;
    for (uint32_t h = start; h <= end && h <= s->n_attrs; h++) {
        struct sim_attr *a = blesim_attr(s, (uint16_t)h);
        if (!att_uuid_eq(&a->type, &type))
            continue;
        uint8_t code = unreadable(s, a);
        if (code) {
            if (elen)
                break;
            return error_rsp(s, op, a->handle, code);
        }
        refresh(s, a);
        size_t vl = a->len < maxv ? a->len : maxv;
        if (elen && hdr + vl != elen)
            break;
        if (len + hdr + vl > s->mtu)
            break;
        elen = hdr + vl;
        att_put16(rsp + len, a->handle);
        if (group)
            att_put16(rsp + len + 2, a->end);
        memcpy(rsp + len + hdr, a->value, vl);
        len += elen;
    }
    if (!elen)
        return error_rsp(s, op, start, ATT_ECODE_ATTR_NOT_FOUND);
    rsp[0] = (uint8_t)(op + 1);
    rsp[1] = (uint8_t)elen;
    return blesim_xmit(s, rsp, len);
}

static int find_info(struct blesim *s, const uint8_t *p, size_t n)
{
    if (n != 4)
        return error_rsp(s, ATT_OP_FIND_INFO_REQ, 0, ATT_ECODE_INVALID_PDU);
    uint16_t start = att_get16(p), end = att_get16(p + 2);
    if (range_ok(start, end))
        return error_rsp(s, ATT_OP_FIND_INFO_REQ, start, ATT_ECODE_INVALID_HANDLE);
    uint8_t rsp[ATT_MAX_LE_MTU];
    size_t len = 2, ul = 0;
    for (uint32_t h = start; h <= end && h <= s->n_attrs; h++) {
        uint8_t u[16];
        size_t k = att_uuid_to_wire(&blesim_attr(s, (uint16_t)h)->type, u);
        if ((ul && k != ul) || len + 2 + k > s->mtu)
            break;
        ul = k;
        att_put16(rsp + len, (uint16_t)h);
        memcpy(rsp + len + 2, u, k);
        len += 2 + k;
    }
    if (!ul)
        return error_rsp(s, ATT_OP_FIND_INFO_REQ, start, ATT_ECODE_ATTR_NOT_FOUND);
    rsp[0] = ATT_OP_FIND_INFO_RSP;
    rsp[1] = ul == 2 ? 1 : 2;
    return blesim_xmit(s, rsp, len);
}

static int find_by_type(struct blesim *s, const uint8_t *p, size_t n)
{
    if (n < 6)
        return error_rsp(s, ATT_OP_FIND_BY_TYPE_REQ, 0, ATT_ECODE_INVALID_PDU);
    uint16_t start = att_get16(p), end = att_get16(p + 2);
    if (range_ok(start, end))
        return error_rsp(s, ATT_OP_FIND_BY_TYPE_REQ, start, ATT_ECODE_INVALID_HANDLE);
    struct att_uuid type = att_uuid16(att_get16(p + 4));
    uint8_t rsp[ATT_MAX_LE_MTU];
    size_t len = 1;
    for (uint32_t h = start; h <= end && h <= s->n_attrs && len + 4 <= s->mtu; h++) {
        struct sim_attr *a = blesim_attr(s, (uint16_t)h);
        if (!att_uuid_eq(&a->type, &type) || a->len != n - 6 || memcmp(a->value, p + 6, n - 6))
            continue;
        att_put16(rsp + len, a->handle);
        att_put16(rsp + len + 2, a->end ? a->end : a->handle);
        len += 4;
    }
    if (len == 1)
        return error_rsp(s, ATT_OP_FIND_BY_TYPE_REQ, start, ATT_ECODE_ATTR_NOT_FOUND);
    rsp[0] = ATT_OP_FIND_BY_TYPE_RSP;
    return blesim_xmit(s, rsp, len);
}

static int read_value(struct blesim *s, uint8_t op, const uint8_t *p, size_t n)
{
    if (n != (op == ATT_OP_READ_REQ ? 2u : 4u))
        return error_rsp(s, op, 0, ATT_ECODE_INVALID_PDU);
    uint16_t h = att_get16(p), off = op == ATT_OP_READ_REQ ? 0 : att_get16(p + 2);
    struct sim_attr *a = blesim_attr(s, h);
    if (!a)
        return error_rsp(s, op, h, ATT_ECODE_INVALID_HANDLE);
    uint8_t code = unreadable(s, a);
    if (code)
        return error_rsp(s, op, h, code);
    if (off == 0)
        refresh(s, a);
    if (off > a->len)
        return error_rsp(s, op, h, ATT_ECODE_INVALID_OFFSET);
    uint8_t rsp[ATT_MAX_LE_MTU];
    size_t vl = (size_t)(a->len - off) < (size_t)s->mtu - 1 ? (size_t)(a->len - off)
                                                             : (size_t)s->mtu - 1;
    rsp[0] = (uint8_t)(op + 1);
    memcpy(rsp + 1, a->value + off, vl);
    return blesim_xmit(s, rsp, 1 + vl);
}

static int write_value(struct blesim *s, uint8_t op, const uint8_t *p, size_t n)
{
    int cmd = op == ATT_OP_WRITE_CMD;
    if (n < 2)
        return cmd ? 0 : error_rsp(s, op, 0, ATT_ECODE_INVALID_PDU);
    uint16_t h = att_get16(p);
    struct sim_attr *a = blesim_attr(s, h);
    uint8_t code = 0;
    struct att_uuid cccd = att_uuid16(GATT_CCCD);
    int is_cccd = a && att_uuid_eq(&a->type, &cccd);
    if (!a)
        code = ATT_ECODE_INVALID_HANDLE;
    else if (!(a->perm & BLESIM_PERM_WRITE))
        code = ATT_ECODE_WRITE_NOT_PERMITTED;
    else if (insecure(s, a))
        code = insecure(s, a);
    else if (n - 2 > ATT_MAX_VALUE_LEN || (is_cccd && n - 2 != 2))
        code = ATT_ECODE_INVALID_VALUE_LEN;
    else if (is_cccd && att_get16(p + 2) > 3)
        code = ATT_ECODE_VALUE_NOT_ALLOWED;
    else if (blesim_store(a, p + 2, n - 2) < 0)
        code = ATT_ECODE_INSUFFICIENT_RESOURCES;
    if (code)
        return cmd ? 0 : error_rsp(s, op, h, code);
    s->stats.writes++;
    if (is_cccd)
        blesim_cccd_changed(s, a->cccd);
    if (!cmd) {
        uint8_t rsp = ATT_OP_WRITE_RSP;
        blesim_xmit(s, &rsp, 1);
    }
    if (a->on_write)
        a->on_write(s, h, a->value, a->len, a->hook_data);
    if (s->write_hook)
        s->write_hook(s, h, a->value, a->len, s->write_data);
    return 0;
}

static int mtu_exchange(struct blesim *s, const uint8_t *p, size_t n)
{
    if (n != 2)
        return error_rsp(s, ATT_OP_MTU_REQ, 0, ATT_ECODE_INVALID_PDU);
    uint16_t c = att_get16(p), m = c < s->server_mtu ? c : s->server_mtu;
    uint8_t rsp[3] = {ATT_OP_MTU_RSP};
    att_put16(rsp + 1, s->server_mtu);
    int r = blesim_xmit(s, rsp, 3);
    s->mtu = m < ATT_DEFAULT_LE_MTU ? ATT_DEFAULT_LE_MTU : m;  /* applies after the response */
    return r;
}

/* Whether a request names handle h: as its handle, or as the start of its range (for error
 * injection). */
static int names(uint8_t op, const uint8_t *p, size_t n, uint16_t h)
{
    switch (op) {
    case ATT_OP_READ_REQ: case ATT_OP_READ_BLOB_REQ: case ATT_OP_WRITE_REQ:
    case ATT_OP_PREP_WRITE_REQ: case ATT_OP_FIND_INFO_REQ: case ATT_OP_FIND_BY_TYPE_REQ:
    case ATT_OP_READ_BY_TYPE_REQ: case ATT_OP_READ_BY_GROUP_REQ:
        return n >= 2 && att_get16(p) == h;
    default:
        return 0;
    }
}

/* 1 for requests a client makes only to discover the database (counted: a client that uses
 * its cache makes none). */
static int discovery(uint8_t op, const uint8_t *p, size_t n)
{
    if (op == ATT_OP_READ_BY_GROUP_REQ || op == ATT_OP_FIND_INFO_REQ)
        return 1;
    return op == ATT_OP_READ_BY_TYPE_REQ && n == 6 &&
           (att_get16(p + 4) == GATT_INCLUDE || att_get16(p + 4) == GATT_CHARACTERISTIC);
}

static int request(struct blesim *s, const uint8_t *pdu, size_t len)
{
    uint8_t op = pdu[0];
    const uint8_t *p = pdu + 1;
    size_t n = len - 1;
    const struct blesim_faults *f = &s->faults;
    s->stats.requests++;
    s->stats.discovery += (uint64_t)discovery(op, p, n);
    if ((f->silent_after && s->stats.requests > f->silent_after) ||
        (f->silent_opcode && op == f->silent_opcode)) {
        s->stats.unanswered++;
        return 0;
    }
    if (f->malformed_opcode && op == f->malformed_opcode) {
        uint8_t bad[2] = {ATT_OP_ERROR_RSP, op};
        return blesim_xmit(s, bad, 2);
    }
    if (f->error_handle && names(op, p, n, f->error_handle))
        return error_rsp(s, op, f->error_handle, f->error_code ? f->error_code
                                                                : ATT_ECODE_UNLIKELY);
    switch (op) {
    case ATT_OP_MTU_REQ: return mtu_exchange(s, p, n);
    case ATT_OP_FIND_INFO_REQ: return find_info(s, p, n);
    case ATT_OP_FIND_BY_TYPE_REQ: return find_by_type(s, p, n);
    case ATT_OP_READ_BY_TYPE_REQ: return read_by_type(s, p, n, 0);
    case ATT_OP_READ_BY_GROUP_REQ: return read_by_type(s, p, n, 1);
    case ATT_OP_READ_REQ: case ATT_OP_READ_BLOB_REQ: return read_value(s, op, p, n);
    case ATT_OP_WRITE_REQ: return write_value(s, op, p, n);
    default: return error_rsp(s, op, 0, ATT_ECODE_REQ_NOT_SUPPORTED);
    }
}

/* A control packet (ble_sim.h) of r bytes in rx: applied, 1; anything else 0. Unknown
 * commands and levels that would not raise the link are ignored. */
static int control(struct blesim *s, size_t r)
{
    const size_t m = sizeof BLESIM_CTL_MAGIC;
    if (r != BLESIM_CTL_LEN || memcmp(s->rx, BLESIM_CTL_MAGIC, m))
        return 0;
    uint8_t cmd = s->rx[m], level = s->rx[m + 1];
    if (cmd == BLESIM_CTL_SECURITY && level > s->security && level <= 4 &&
        !s->faults.refuse_security) {
        s->security = level;
        s->stats.security_raises++;
    }
    return 1;
}

int blesim_on_readable(struct blesim *s, int64_t now_ns)
{
    int count = 0;
    s->now_ns = now_ns;
    while (!s->closed && count < ATT_RX_BURST) {
        ssize_t r = recv(s->fd, s->rx, sizeof s->rx, MSG_DONTWAIT | MSG_TRUNC);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r <= 0) {
            s->closed = 1;
            break;
        }
        count++;
        if (control(s, (size_t)r))
            continue;   /* not a PDU: neither counted nor a fault's trigger */
        s->stats.rx_pdus++;
        if (s->faults.disconnect_after && s->stats.rx_pdus >= s->faults.disconnect_after) {
            shutdown(s->fd, SHUT_RDWR);
            s->closed = 1;
            break;
        }
        size_t len = (size_t)r;
        if (len > s->mtu) {   /* longer than the MTU: not a PDU this server accepts */
            if (att_op_kind(s->rx[0]) == ATT_KIND_REQUEST)
                error_rsp(s, s->rx[0], 0, ATT_ECODE_INVALID_PDU);
            continue;
        }
        switch (att_op_kind(s->rx[0])) {
        case ATT_KIND_REQUEST:
            request(s, s->rx, len);
            break;
        case ATT_KIND_COMMAND:
            if (s->rx[0] == ATT_OP_WRITE_CMD)
                write_value(s, ATT_OP_WRITE_CMD, s->rx + 1, len - 1);
            break;
        case ATT_KIND_CONFIRM:
            if (s->ind_pending)
                s->stats.confirmations++;
            s->ind_pending = 0;
            break;
        default:   /* responses, notifications: this side has no client */
            break;
        }
    }
    return s->closed ? -ECONNRESET : count;
}

