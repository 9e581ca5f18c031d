/* The mgmt codec, the key-keeping session and the mgmt socket (drivers/ble_mgmt.h; BlueZ
 * doc/mgmt-api.txt).
 *
 * Packet layouts, all little-endian:
 *   every packet        code or opcode(2) | controller index(2) | parameter length(2) | params
 *   Command Complete    0x0001: opcode(2) | status | return parameters
 *   Command Status      0x0002: opcode(2) | status                           (3 bytes)
 *   Index Added/Removed 0x0004/0x0005: nothing
 *   New Long Term Key   0x000A: store_hint | key                             (37 bytes)
 *   New IRK             0x0018: store_hint | rpa(6) | irk                    (30 bytes)
 *   User Confirm Req    0x000F: addr(6) | addr_type | confirm_hint | value(4) (12 bytes)
 *   a key               addr(6) | addr_type | key_type | central | enc_size | ediv(2) |
 *                       rand(8) | value(16)                                  (36 bytes)
 *   an irk              addr(6) | addr_type | value(16)                      (23 bytes)
 *
 * The session keeps one command out at a time and waits for its Command Complete (or a
 * Command Status that is not a success: a successful status only says the command is
 * pending) with the same opcode and controller index; the answers of a mgmt socket are its
 * own, so anything else is a stale answer to a command that timed out, and is ignored.
 * Commands wait in a bounded FIFO as their opcode, index and short parameters; the bytes are
 * built when the command goes out, so Load Long Term Keys carries the keys the owner holds
 * at that moment (a key that arrived while it waited is not dropped from the kernel). A
 * command the socket would not take (EAGAIN) stays built until the fd is writable; its
 * deadline starts when it is actually sent. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef ENGAGED_HAVE_BLE
#include <bluetooth/bluetooth.h>
#include <bluetooth/hci.h>
#endif

#include "drivers/ble_mgmt.h"

#define MGMT_PARAMS_MAX 65535
#define MGMT_RX_BURST 64          /* packets read per mgmt_on_readable() */
#define MGMT_LOAD_LTKS_MAX (MGMT_HDR_LEN + 2 + MGMT_LTK_LEN * MGMT_MAX_KEYS)
#define NOTE_MAX 200

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* ---- the codec ------------------------------------------------------------------------- */

int mgmt_ltk_valid(const struct mgmt_ltk *k)
{
    /* an identity address: public, or static random (the top two bits set); the kernel
     * refuses the whole command for one key with a resolvable or non-resolvable address */
    return (k->addr_type == MGMT_ADDR_LE_PUBLIC ||
            (k->addr_type == MGMT_ADDR_LE_RANDOM && (k->addr[5] & 0xC0) == 0xC0)) &&
           k->key_type <= 0x03 && k->central <= 1 && k->enc_size >= 7 && k->enc_size <= 16;
}

int mgmt_irk_valid(const struct mgmt_irk *k)
{
    static const uint8_t zero[16];
    return (k->addr_type == MGMT_ADDR_LE_PUBLIC ||
            (k->addr_type == MGMT_ADDR_LE_RANDOM && (k->addr[5] & 0xC0) == 0xC0)) &&
           memcmp(k->val, zero, sizeof zero) != 0;
}

static void irk_read(const uint8_t *p, struct mgmt_irk *k)
{
    memcpy(k->addr, p, 6);
    k->addr_type = p[6];
    memcpy(k->val, p + 7, 16);
}

static void irk_write(uint8_t *p, const struct mgmt_irk *k)
{
    memcpy(p, k->addr, 6);
    p[6] = k->addr_type;
    memcpy(p + 7, k->val, 16);
}

static void ltk_read(const uint8_t *p, struct mgmt_ltk *k)
{
    memcpy(k->addr, p, 6);
    k->addr_type = p[6];
    k->key_type = p[7];
    k->central = p[8];
    k->enc_size = p[9];
    k->ediv = get16(p + 10);
    memcpy(k->rand, p + 12, 8);
    memcpy(k->val, p + 20, 16);
}

static void ltk_write(uint8_t *p, const struct mgmt_ltk *k)
{
    memcpy(p, k->addr, 6);
    p[6] = k->addr_type;
    p[7] = k->key_type;
    p[8] = k->central;
    p[9] = k->enc_size;
    put16(p + 10, k->ediv);
    memcpy(p + 12, k->rand, 8);
    memcpy(p + 20, k->val, 16);
}

int mgmt_parse_event(const uint8_t *p, size_t len, struct mgmt_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (len < MGMT_HDR_LEN || get16(p + 4) != len - MGMT_HDR_LEN)
        return -EBADMSG;
    const uint8_t *q = p + MGMT_HDR_LEN;
    size_t plen = len - MGMT_HDR_LEN;
    ev->code = get16(p);
    ev->index = get16(p + 2);
    switch (ev->code) {
    case MGMT_EV_CMD_COMPLETE:
    case MGMT_EV_CMD_STATUS:
        if (plen < 3 || (ev->code == MGMT_EV_CMD_STATUS && plen != 3))
            return -EBADMSG;
        ev->u.cmd.opcode = get16(q);
        ev->u.cmd.status = q[2];
        if (plen > 3) {
            ev->u.cmd.params = q + 3;
            ev->u.cmd.len = plen - 3;
        }
        return 0;
    case MGMT_EV_INDEX_ADDED:
    case MGMT_EV_INDEX_REMOVED:
        return plen == 0 ? 0 : -EBADMSG;
    case MGMT_EV_NEW_LTK:
        if (plen != 1 + MGMT_LTK_LEN)
            return -EBADMSG;
        ev->u.ltk.store_hint = q[0];
        ltk_read(q + 1, &ev->u.ltk.key);
        return 0;
    case MGMT_EV_NEW_IRK:
        if (plen != 1 + 6 + MGMT_IRK_LEN)
            return -EBADMSG;
        ev->u.irk.store_hint = q[0];
        memcpy(ev->u.irk.rpa, q + 1, 6);
        irk_read(q + 7, &ev->u.irk.key);
        return 0;
    case MGMT_EV_USER_CONFIRM_REQUEST:
        if (plen != 12)
            return -EBADMSG;
        memcpy(ev->u.confirm.addr, q, 6);
        ev->u.confirm.addr_type = q[6];
        ev->u.confirm.confirm_hint = q[7];
        ev->u.confirm.value = get32(q + 8);
        return 0;
    default:
        return 0; /* an event this module does not act on: its header was right */
    }
}

int mgmt_parse_index_list(const uint8_t *params, size_t len, uint16_t *idx, size_t max, size_t *n)
{
    *n = 0;
    if (len < 2)
        return -EBADMSG;
    size_t count = get16(params);
    if (len - 2 < 2 * count)
        return -EBADMSG;
    for (size_t i = 0; i < count && i < max; i++)
        idx[(*n)++] = get16(params + 2 + 2 * i);
    return 0;
}

size_t mgmt_cmd(uint8_t *buf, size_t cap, uint16_t op, uint16_t index, const void *params,
                size_t len)
{
    if (len > MGMT_PARAMS_MAX || cap < MGMT_HDR_LEN || cap - MGMT_HDR_LEN < len || (len && !params))
        return 0;
    put16(buf, op);
    put16(buf + 2, index);
    put16(buf + 4, (uint16_t)len);
    if (len)
        memcpy(buf + MGMT_HDR_LEN, params, len);
    return MGMT_HDR_LEN + len;
}

/* The header and key count of a Load command of n keys of len bytes each: the command's
 * length, or 0 (n too big, no room). The keys go after it at MGMT_HDR_LEN + 2. The callers
 * check n first too: before they look at the keys. */
static size_t load_head(uint8_t *buf, size_t cap, uint16_t op, uint16_t index, size_t n,
                        size_t len)
{
    size_t plen = 2 + len * n;
    if (n > MGMT_MAX_KEYS || cap < MGMT_HDR_LEN + plen)
        return 0;
    put16(buf, op);
    put16(buf + 2, index);
    put16(buf + 4, (uint16_t)plen);
    put16(buf + MGMT_HDR_LEN, (uint16_t)n);
    return MGMT_HDR_LEN + plen;
}

size_t mgmt_cmd_load_ltks(uint8_t *buf, size_t cap, uint16_t index, const struct mgmt_ltk *keys,
                          size_t n)
{
    if (n > MGMT_MAX_KEYS || (n && !keys))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!mgmt_ltk_valid(&keys[i]))
            return 0;
    size_t total = load_head(buf, cap, MGMT_OP_LOAD_LTKS, index, n, MGMT_LTK_LEN);
    for (size_t i = 0; total && i < n; i++)
        ltk_write(buf + MGMT_HDR_LEN + 2 + MGMT_LTK_LEN * i, &keys[i]);
    return total;
}

size_t mgmt_cmd_load_irks(uint8_t *buf, size_t cap, uint16_t index, const struct mgmt_irk *keys,
                          size_t n)
{
    if (n > MGMT_MAX_KEYS || (n && !keys))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!mgmt_irk_valid(&keys[i]))
            return 0;
    size_t total = load_head(buf, cap, MGMT_OP_LOAD_IRKS, index, n, MGMT_IRK_LEN);
    for (size_t i = 0; total && i < n; i++)
        irk_write(buf + MGMT_HDR_LEN + 2 + MGMT_IRK_LEN * i, &keys[i]);
    return total;
}

/* The names of mgmt status codes (mgmt-api.txt, "Error Codes"). */
static const char *status_str(uint8_t status)
{
    static const char *const names[] = {
        "Success",           "Unknown Command",       "Not Connected", "Failed",
        "Connect Failed",    "Authentication Failed", "Not Paired",    "No Resources",
        "Timeout",           "Already Connected",     "Busy",          "Rejected",
        "Not Supported",     "Invalid Parameters",    "Disconnected",  "Not Powered",
        "Cancelled",         "Invalid Index",         "RFKilled",      "Already Paired",
        "Permission Denied",
    };
    return status < sizeof names / sizeof names[0] ? names[status] : "unknown status";
}

static const char *op_name(uint16_t op)
{
    switch (op) {
    case MGMT_OP_READ_INDEX_LIST:
        return "Read Controller Index List";
    case MGMT_OP_SET_BONDABLE:
        return "Set Bondable";
    case MGMT_OP_LOAD_LTKS:
        return "Load Long Term Keys";
    case MGMT_OP_LOAD_IRKS:
        return "Load Identity Resolving Keys";
    case MGMT_OP_USER_CONFIRM_REPLY:
        return "User Confirmation Reply";
    case MGMT_OP_USER_CONFIRM_NEG_REPLY:
        return "User Confirmation Negative Reply";
    default:
        return "a command";
    }
}

/* ---- the session ----------------------------------------------------------------------- */

/* A command waiting: what it is, not its bytes (built when it goes out). */
struct qcmd {
    uint16_t op, index;
    uint8_t params[7];            /* Set Bondable's flag, or a confirmation's address+type */
    uint8_t plen;
    uint8_t not_bondable;         /* Load LTKs: the Set Bondable before it failed */
};

enum { CUR_NONE, CUR_BLOCKED, CUR_SENT };

struct mgmt {
    int fd;
    const struct mgmt_ops *ops;
    void *ud;
    int64_t now_ns;
    struct mgmt_stats st;
    struct qcmd q[MGMT_MAX_QUEUE];
    size_t q_n;
    /* the command out (CUR_SENT) or built but not taken by the socket yet (CUR_BLOCKED) */
    int cur_state;
    struct qcmd cur;
    size_t cur_keys;              /* Load LTKs / IRKs: how many keys it carries */
    int irks_index;               /* the controller of the last Load IRKs answered, -1: none */
    size_t irks_done;             /* ... and how many keys it loaded (for the LTKs' note) */
    int64_t deadline_ns;
    uint8_t tx[MGMT_LOAD_LTKS_MAX];
    size_t tx_len;
    struct mgmt_ltk keys[MGMT_MAX_KEYS];
    struct mgmt_irk irks[MGMT_MAX_KEYS];
    uint8_t rx[MGMT_PARAMS_MAX + MGMT_HDR_LEN];
};

__attribute__((format(printf, 3, 4)))
static void note(struct mgmt *m, int level, const char *fmt, ...)
{
    if (!m->ops->note)
        return;
    char msg[NOTE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    m->ops->note(m->ud, level, msg);
}

/* "hci0: " before a message about a controller, nothing for one about none. */
static const char *ctl_prefix(uint16_t index, char *buf, size_t cap)
{
    if (index == MGMT_INDEX_NONE)
        buf[0] = '\0';
    else
        snprintf(buf, cap, "hci%u: ", (unsigned)index);
    return buf;
}

struct mgmt *mgmt_new(int fd, const struct mgmt_ops *ops, void *ud)
{
    if (!ops) {
        errno = EINVAL;
        return NULL;
    }
    struct mgmt *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->fd = fd;
    m->ops = ops;
    m->ud = ud;
    m->deadline_ns = INT64_MAX;
    m->irks_index = -1;
    return m;
}

void mgmt_free(struct mgmt *m) { free(m); }

const struct mgmt_stats *mgmt_stats(const struct mgmt *m) { return &m->st; }

int mgmt_want_write(const struct mgmt *m) { return m->cur_state == CUR_BLOCKED; }

int64_t mgmt_next_timeout(const struct mgmt *m)
{
    return m->cur_state == CUR_SENT ? m->deadline_ns : INT64_MAX;
}

static void enqueue(struct mgmt *m, uint16_t op, uint16_t index, const uint8_t *params, size_t plen)
{
    char pre[16];
    if (m->q_n == MGMT_MAX_QUEUE) {
        note(m, MGMT_NOTE_WARN, "%s%s dropped: %d commands wait already",
             ctl_prefix(index, pre, sizeof pre), op_name(op), MGMT_MAX_QUEUE);
        return;
    }
    struct qcmd *c = &m->q[m->q_n++];
    memset(c, 0, sizeof *c);
    c->op = op;
    c->index = index;
    c->plen = (uint8_t)plen;
    if (plen)
        memcpy(c->params, params, plen);
}

/* Set Bondable, Load Identity Resolving Keys, Load Long Term Keys, unless they wait for this
 * controller already: all three or none. */
static void enqueue_controller(struct mgmt *m, uint16_t index)
{
    for (size_t i = 0; i < m->q_n; i++)
        if (m->q[i].op == MGMT_OP_SET_BONDABLE && m->q[i].index == index)
            return;
    if (m->q_n + 3 > MGMT_MAX_QUEUE) {
        note(m, MGMT_NOTE_WARN, "hci%u: not set up: %d commands wait already", (unsigned)index,
             MGMT_MAX_QUEUE);
        return;
    }
    const uint8_t on = 1;
    enqueue(m, MGMT_OP_SET_BONDABLE, index, &on, 1);
    enqueue(m, MGMT_OP_LOAD_IRKS, index, NULL, 0);
    enqueue(m, MGMT_OP_LOAD_LTKS, index, NULL, 0);
}

/* The command out is over (answered, failed or timed out). */
static void finish_cur(struct mgmt *m)
{
    m->cur_state = CUR_NONE;
    m->deadline_ns = INT64_MAX;
    m->tx_len = 0;
}

/* The command out failed: counted and noted. A failed Set Bondable marks the Load Long Term
 * Keys that follows it, so that the controller is not reported as set up. */
static void cur_failed(struct mgmt *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cur_failed(struct mgmt *m, const char *fmt, ...)
{
    char why[120], pre[16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    m->st.failed++;
    note(m, MGMT_NOTE_WARN, "%s%s %s", ctl_prefix(m->cur.index, pre, sizeof pre),
         op_name(m->cur.op), why);
    if (m->cur.op == MGMT_OP_SET_BONDABLE)
        for (size_t i = 0; i < m->q_n; i++)
            if (m->q[i].op == MGMT_OP_LOAD_LTKS && m->q[i].index == m->cur.index) {
                m->q[i].not_bondable = 1;
                break;
            }
    finish_cur(m);
}

static void note_skipped(struct mgmt *m, size_t skipped)
{
    char pre[16];
    if (skipped)
        note(m, MGMT_NOTE_WARN, "%s%zu key%s not loaded: not a key the kernel takes",
             ctl_prefix(m->cur.index, pre, sizeof pre), skipped, skipped == 1 ? "" : "s");
}

/* Load Identity Resolving Keys with the owner's keys for the controller, as they are now. */
static void build_load_irks(struct mgmt *m)
{
    size_t got =
        m->ops->irks_for ? m->ops->irks_for(m->ud, m->cur.index, m->irks, MGMT_MAX_KEYS) : 0;
    if (got > MGMT_MAX_KEYS)
        got = MGMT_MAX_KEYS;
    size_t n = 0;
    for (size_t i = 0; i < got; i++)
        if (mgmt_irk_valid(&m->irks[i]))
            m->irks[n++] = m->irks[i];
    note_skipped(m, got - n);
    m->cur_keys = n;
    m->tx_len = mgmt_cmd_load_irks(m->tx, sizeof m->tx, m->cur.index, m->irks, n);
}

/* Builds q[0] into tx as the current command. */
static void build_next(struct mgmt *m)
{
    m->cur = m->q[0];
    memmove(m->q, m->q + 1, --m->q_n * sizeof m->q[0]);
    m->cur_keys = 0;
    if (m->cur.op == MGMT_OP_LOAD_IRKS) {
        build_load_irks(m);
        return;
    }
    if (m->cur.op != MGMT_OP_LOAD_LTKS) {
        m->tx_len =
            mgmt_cmd(m->tx, sizeof m->tx, m->cur.op, m->cur.index, m->cur.params, m->cur.plen);
        return;
    }
    size_t got =
        m->ops->keys_for ? m->ops->keys_for(m->ud, m->cur.index, m->keys, MGMT_MAX_KEYS) : 0;
    if (got > MGMT_MAX_KEYS)
        got = MGMT_MAX_KEYS;
    size_t n = 0, skipped = 0;
    for (size_t i = 0; i < got; i++) {
        if (!mgmt_ltk_valid(&m->keys[i]))
            skipped++;
        else
            m->keys[n++] = m->keys[i];
    }
    note_skipped(m, skipped);
    m->cur_keys = n;
    m->tx_len = mgmt_cmd_load_ltks(m->tx, sizeof m->tx, m->cur.index, m->keys, n);
}

/* Sends what waits until one command is out, the socket is full, or nothing waits. Returns
 * 0, or the -errno of the last send that failed other than with EAGAIN (that command
 * counted as failed and the next one tried). */
static int pump(struct mgmt *m)
{
    int err = 0;
    for (;;) {
        if (m->cur_state == CUR_SENT)
            return err;
        if (m->cur_state == CUR_NONE) {
            if (m->q_n == 0)
                return err;
            build_next(m);
            m->cur_state = CUR_BLOCKED;
            if (m->tx_len == 0) { /* cannot happen with the sizes above: never sent empty */
                cur_failed(m, "not sent: it could not be built");
                continue;
            }
        }
        ssize_t n;
        do
            n = send(m->fd, m->tx, m->tx_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return err; /* kept built: mgmt_on_writable sends it */
        if (n != (ssize_t)m->tx_len) {
            err = n < 0 ? -errno : -EIO;
            cur_failed(m, "not sent: %s", strerror(-err));
            continue;
        }
        m->cur_state = CUR_SENT;
        m->deadline_ns = m->now_ns + MGMT_CMD_TIMEOUT_NS;
    }
}

int mgmt_start(struct mgmt *m, int64_t now_ns)
{
    m->now_ns = now_ns;
    enqueue(m, MGMT_OP_READ_INDEX_LIST, MGMT_INDEX_NONE, NULL, 0);
    return pump(m);
}

int mgmt_on_writable(struct mgmt *m, int64_t now_ns)
{
    m->now_ns = now_ns;
    return pump(m);
}

void mgmt_on_timer(struct mgmt *m, int64_t now_ns)
{
    m->now_ns = now_ns;
    if (m->cur_state == CUR_SENT && now_ns >= m->deadline_ns)
        cur_failed(m, "not answered in %lld s", (long long)(MGMT_CMD_TIMEOUT_NS / 1000000000));
    (void)pump(m);
}

static void malformed(struct mgmt *m, const char *what, size_t len)
{
    m->st.malformed++;
    note(m, MGMT_NOTE_WARN, "malformed mgmt packet ignored (%zu bytes): %s", len, what);
}

/* The answer to Read Controller Index List: every controller listed is set up. */
static void on_index_list(struct mgmt *m, const struct mgmt_event *ev)
{
    uint16_t idx[MGMT_MAX_QUEUE];
    size_t n;
    if (mgmt_parse_index_list(ev->u.cmd.params, ev->u.cmd.len, idx, MGMT_MAX_QUEUE, &n) < 0) {
        malformed(m, "a controller list longer than its parameters",
                  MGMT_HDR_LEN + 3 + ev->u.cmd.len);
        return;
    }
    size_t listed = get16(ev->u.cmd.params);
    if (listed > n)
        note(m, MGMT_NOTE_WARN, "%zu controllers listed: only the first %zu are set up", listed,
             n);
    for (size_t i = 0; i < n; i++)
        enqueue_controller(m, idx[i]);
}

static void on_cmd_result(struct mgmt *m, const struct mgmt_event *ev)
{
    if (m->cur_state != CUR_SENT || ev->u.cmd.opcode != m->cur.op || ev->index != m->cur.index)
        return; /* a late answer to a command that timed out */
    uint8_t st = ev->u.cmd.status;
    if (ev->code == MGMT_EV_CMD_STATUS && st == 0)
        return; /* pending: its Command Complete follows */
    if (st != 0) {
        cur_failed(m, "failed: %s (0x%02x)", status_str(st), st);
        return;
    }
    struct qcmd c = m->cur;
    size_t keys = m->cur_keys;
    finish_cur(m);
    if (c.op == MGMT_OP_READ_INDEX_LIST) {
        on_index_list(m, ev);
    } else if (c.op == MGMT_OP_LOAD_IRKS) {
        m->st.irks_loaded += keys;
        m->irks_index = c.index;
        m->irks_done = keys;
    } else if (c.op == MGMT_OP_LOAD_LTKS) {
        m->st.keys_loaded += keys;
        if (!c.not_bondable)
            m->st.controllers++;
        char irks[64] = ""; /* the IRKs loaded just before, when there were any */
        if (m->irks_index == c.index && m->irks_done)
            snprintf(irks, sizeof irks, ", %zu identity resolving key%s", m->irks_done,
                     m->irks_done == 1 ? "" : "s");
        m->irks_index = -1;
        note(m, MGMT_NOTE_INFO, "hci%u: %s%zu key%s loaded%s", (unsigned)c.index,
             c.not_bondable ? "not bondable, " : "bondable, ", keys, keys == 1 ? "" : "s",
             irks);
    }
}

static void on_index_removed(struct mgmt *m, uint16_t index)
{
    size_t k = 0;
    for (size_t i = 0; i < m->q_n; i++)
        if (m->q[i].index != index)
            m->q[k++] = m->q[i];
    m->q_n = k;
    /* built but not sent: it goes too. One sent is answered (Invalid Index) or times out. */
    if (m->cur_state == CUR_BLOCKED && m->cur.index == index)
        finish_cur(m);
}

static void on_new_ltk(struct mgmt *m, const struct mgmt_event *ev)
{
    if (ev->u.ltk.store_hint != 1)
        return; /* a key the kernel does not mean to be kept */
    const struct mgmt_ltk *k = &ev->u.ltk.key;
    if (!mgmt_ltk_valid(k)) {
        char pre[16];
        note(m, MGMT_NOTE_WARN,
             "%snew key ignored: not one Load Long Term Keys takes (address type %u, key "
             "type %u, central %u, size %u)",
             ctl_prefix(ev->index, pre, sizeof pre), k->addr_type, k->key_type, k->central,
             k->enc_size);
        return;
    }
    m->st.new_keys++;
    if (m->ops->new_key)
        m->ops->new_key(m->ud, ev->index, k);
}

static void on_new_irk(struct mgmt *m, const struct mgmt_event *ev)
{
    if (ev->u.irk.store_hint != 1)
        return; /* a key the kernel does not mean to be kept */
    if (!mgmt_irk_valid(&ev->u.irk.key)) {
        char pre[16];
        note(m, MGMT_NOTE_WARN, "%snew identity resolving key ignored: all zero, or its "
             "address is not an identity address (type %u)", ctl_prefix(ev->index, pre,
             sizeof pre), ev->u.irk.key.addr_type);
        return;
    }
    m->st.new_irks++;
    if (m->ops->new_irk)
        m->ops->new_irk(m->ud, ev->index, &ev->u.irk.key);
}

static const char *addr_type_str(uint8_t t)
{
    return t == MGMT_ADDR_LE_PUBLIC ? "LE public"
           : t == MGMT_ADDR_LE_RANDOM ? "LE random"
           : t == MGMT_ADDR_BREDR ? "BR/EDR"
                                  : "unknown type";
}

static void on_confirm_request(struct mgmt *m, const struct mgmt_event *ev)
{
    const uint8_t *a = ev->u.confirm.addr;
    uint8_t params[7];
    memcpy(params, a, 6);
    params[6] = ev->u.confirm.addr_type;
    int yes = m->ops->confirm && m->ops->confirm(m->ud, ev->index, a, ev->u.confirm.addr_type);
    if (yes) {
        m->st.confirmed++;
    } else {
        char pre[16];
        m->st.refused++;
        note(m, MGMT_NOTE_INFO, "%spairing with %02X:%02X:%02X:%02X:%02X:%02X (%s) refused",
             ctl_prefix(ev->index, pre, sizeof pre), a[5], a[4], a[3], a[2], a[1], a[0],
             addr_type_str(ev->u.confirm.addr_type));
    }
    enqueue(m, yes ? MGMT_OP_USER_CONFIRM_REPLY : MGMT_OP_USER_CONFIRM_NEG_REPLY, ev->index,
            params, sizeof params);
}

static void on_packet(struct mgmt *m, const uint8_t *p, size_t len)
{
    struct mgmt_event ev;
    if (mgmt_parse_event(p, len, &ev) < 0) {
        malformed(m, len < MGMT_HDR_LEN ? "shorter than its header"
                     : get16(p + 4) != len - MGMT_HDR_LEN
                         ? "its parameter length is not the packet's"
                         : "parameters of the wrong size for the event",
                  len);
        return;
    }
    switch (ev.code) {
    case MGMT_EV_CMD_COMPLETE:
    case MGMT_EV_CMD_STATUS:
        on_cmd_result(m, &ev);
        break;
    case MGMT_EV_INDEX_ADDED:
        enqueue_controller(m, ev.index);
        break;
    case MGMT_EV_INDEX_REMOVED:
        on_index_removed(m, ev.index);
        break;
    case MGMT_EV_NEW_LTK:
        on_new_ltk(m, &ev);
        break;
    case MGMT_EV_USER_CONFIRM_REQUEST:
        on_confirm_request(m, &ev);
        break;
    case MGMT_EV_NEW_IRK:
        on_new_irk(m, &ev);
        break;
    default:
        break; /* settings, connections, devices found ...: not this module's business */
    }
}

int mgmt_on_readable(struct mgmt *m, int64_t now_ns)
{
    int err = 0;
    m->now_ns = now_ns;
    for (int i = 0; i < MGMT_RX_BURST; i++) {
        struct iovec iov = {m->rx, sizeof m->rx};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n = recvmsg(m->fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            err = n == 0 ? -EPIPE : -errno;
            break;
        }
        if ((msg.msg_flags & MSG_TRUNC) || (size_t)n > sizeof m->rx)
            malformed(m, "longer than any mgmt packet", (size_t)n);
        else
            on_packet(m, m->rx, (size_t)n);
    }
    if (err == 0) /* a dead fd would fail every command waiting, each with a note */
        (void)pump(m);
    return err;
}

/* ---- the real socket ------------------------------------------------------------------- */

void mgmt_say(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

#ifdef ENGAGED_HAVE_BLE
int mgmt_open(char *why, size_t cap)
{
    int fd = socket(PF_BLUETOOTH, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, BTPROTO_HCI);
    int err = 0;
    if (fd < 0) {
        err = -errno;
    } else {
        struct sockaddr_hci a;
        memset(&a, 0, sizeof a);
        a.hci_family = AF_BLUETOOTH;
        a.hci_dev = HCI_DEV_NONE;
        a.hci_channel = HCI_CHANNEL_CONTROL;
        if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
            err = -errno;
            close(fd);
        }
    }
    if (err == 0)
        return fd;
    if (err == -EAFNOSUPPORT)
        mgmt_say(why, cap, "no Bluetooth in this kernel");
    else if (err == -EPERM || err == -EACCES)
        mgmt_say(why, cap, "no CAP_NET_ADMIN: the mgmt socket needs it");
    else
        mgmt_say(why, cap, "mgmt socket: %s", strerror(-err));
    return err;
}
#else
int mgmt_open(char *why, size_t cap)
{
    mgmt_say(why, cap, "this engaged was built without Bluetooth support (libbluetooth)");
    return -EPROTONOSUPPORT;
}
#endif
