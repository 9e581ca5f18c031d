/* The HCI codec, the LE scanner and the HCI socket (drivers/ble_hci.h, docs/ble-scan.md).
 *
 * Packet layouts (Core Vol 4 Part E §5.4, §7.7, §7.8; the reference §3.5), all little-endian:
 *   command  01 | opcode(2) | plen | parameters
 *   event    04 | code | plen | parameters
 *   Command Complete (0x0E): ncmd | opcode(2) | return parameters (status first)
 *   Command Status   (0x0F): status | ncmd | opcode(2)
 *   LE Meta (0x3E) 0x02: num | num x (evt_type, addr_type, addr[6], len, data[len], rssi)
 *   LE Meta (0x3E) 0x0D: num | num x (evt_type(2), addr_type, addr[6], primary_phy,
 *                  secondary_phy, sid, tx_power, rssi, periodic_interval(2),
 *                  direct_addr_type, direct_addr[6], len, data[len])
 *
 * The scanner keeps one command outstanding (the controller's command flow control allows
 * more, but each step depends on the previous one's outcome) and matches completions by
 * opcode: a raw HCI socket also sees the events of other users of the controller, which are
 * ignored. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef ENGAGED_HAVE_BLE
#include <bluetooth/bluetooth.h>
#include <bluetooth/hci.h>
#include <bluetooth/hci_lib.h>
#endif

#include "drivers/ble_hci.h"
#include "drivers/ble_rpa.h"

#define NS_PER_MS INT64_C(1000000)

static int bad(const char **why, const char *text)
{
    if (why)
        *why = text;
    return -EBADMSG;
}

/* ---- addresses --------------------------------------------------------------------------- */

int hci_addr_is_random(uint8_t addr_type)
{
    return addr_type == HCI_ADDR_RANDOM || addr_type == HCI_ADDR_RANDOM_ID;
}

int hci_addr_parse(const char *s, struct hci_addr *a)
{
    if (strlen(s) != 17)
        return -EINVAL;
    for (int i = 0; i < 6; i++) {
        const char *p = s + 3 * i;
        if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
            (i < 5 && p[2] != ':'))
            return -EINVAL;
        char pair[3] = {p[0], p[1], '\0'};
        a->b[5 - i] = (uint8_t)strtoul(pair, NULL, 16); /* text is most significant first */
    }
    return 0;
}

char *hci_addr_str(const struct hci_addr *a, char *buf, size_t cap)
{
    snprintf(buf, cap, "%02X:%02X:%02X:%02X:%02X:%02X", a->b[5], a->b[4], a->b[3], a->b[2],
             a->b[1], a->b[0]);
    return buf;
}

/* ---- commands ----------------------------------------------------------------------------- */

static size_t cmd_header(uint8_t *buf, size_t cap, uint16_t opcode, uint8_t plen)
{
    if (cap < 4u + plen)
        return 0;
    buf[0] = HCI_H4_CMD;
    att_put16(buf + 1, opcode);
    buf[3] = plen;
    return 4;
}

int hci_scan_params_check(const struct hci_scan_params *p, const char **why)
{
    const char *w = NULL;
    if (p->active > 1)
        w = "scan type not 0 (passive) or 1 (active)";
    else if (p->interval < 0x0004 || p->interval > 0x4000)
        w = "scan interval outside 0x0004..0x4000 (2.5 ms..10.24 s)";
    else if (p->window < 0x0004 || p->window > p->interval)
        w = "scan window outside 0x0004..interval";
    else if (p->own_addr_type > 3)
        w = "own address type above 3";
    else if (p->filter_policy > 3)
        w = "filter policy above 3";
    if (why)
        *why = w;
    return w ? -EINVAL : 0;
}

size_t hci_cmd_scan_params(uint8_t *buf, size_t cap, const struct hci_scan_params *p)
{
    if (hci_scan_params_check(p, NULL) < 0 || !cmd_header(buf, cap, HCI_OP_LE_SET_SCAN_PARAMS, 7))
        return 0;
    buf[4] = p->active;
    att_put16(buf + 5, p->interval);
    att_put16(buf + 7, p->window);
    buf[9] = p->own_addr_type;
    buf[10] = p->filter_policy;
    return 11;
}

size_t hci_cmd_scan_enable(uint8_t *buf, size_t cap, int enable, int filter_dup)
{
    if (!cmd_header(buf, cap, HCI_OP_LE_SET_SCAN_ENABLE, 2))
        return 0;
    buf[4] = enable ? 1 : 0;
    buf[5] = filter_dup ? 1 : 0;
    return 6;
}

/* ---- events ------------------------------------------------------------------------------- */

int hci_event_parse(const uint8_t *pkt, size_t len, struct hci_event *ev, const char **why)
{
    if (len < 1)
        return bad(why, "empty packet");
    if (pkt[0] != HCI_H4_EVT)
        return -EPROTO;
    if (len < 3)
        return bad(why, "event shorter than its header");
    if (pkt[2] != len - 3)
        return bad(why, "event parameter length disagrees with the packet");
    ev->code = pkt[1];
    ev->params = pkt + 3;
    ev->plen = pkt[2];
    return 0;
}

int hci_cmd_result_parse(const struct hci_event *ev, struct hci_cmd_result *r, const char **why)
{
    const uint8_t *p = ev->params;
    if (ev->code == HCI_EV_CMD_COMPLETE) {
        if (ev->plen < 3)
            return bad(why, "Command Complete shorter than 3 bytes");
        r->opcode = att_get16(p + 1);
        /* opcode 0 is the controller saying it takes commands: no status follows */
        if (r->opcode != 0 && ev->plen < 4)
            return bad(why, "Command Complete without a status");
        r->status = r->opcode ? p[3] : 0;
        r->complete = 1;
        return 0;
    }
    if (ev->code == HCI_EV_CMD_STATUS) {
        if (ev->plen != 4)
            return bad(why, "Command Status not 4 bytes");
        r->status = p[0];
        r->opcode = att_get16(p + 2);
        r->complete = 0;
        return 0;
    }
    return -ENOENT;
}

const char *hci_status_str(uint8_t status)
{
    switch (status) {
    case 0x00: return "Success";
    case 0x01: return "Unknown HCI Command";
    case 0x03: return "Hardware Failure";
    case 0x07: return "Memory Capacity Exceeded";
    case 0x0C: return "Command Disallowed";
    case 0x11: return "Unsupported Feature or Parameter Value";
    case 0x12: return "Invalid HCI Command Parameters";
    case 0x1F: return "Unspecified Error";
    case 0x3A: return "Controller Busy";
    default: return "unknown";
    }
}

int hci_status_errno(uint8_t status)
{
    switch (status) {
    case HCI_ST_SUCCESS: return 0;
    case HCI_ST_UNKNOWN_COMMAND: return -EOPNOTSUPP;
    case HCI_ST_COMMAND_DISALLOWED: return -EBUSY;
    case HCI_ST_INVALID_PARAMS: return -EINVAL;
    default: return -EIO;
    }
}

/* Legacy event types 0..4 (ADV_IND, ADV_DIRECT_IND, ADV_SCAN_IND, ADV_NONCONN_IND,
 * SCAN_RSP) as the extended event's property bits. */
static unsigned legacy_props(uint8_t t)
{
    static const unsigned props[5] = {
        HCI_ADV_CONNECTABLE | HCI_ADV_SCANNABLE,
        HCI_ADV_CONNECTABLE | HCI_ADV_DIRECTED,
        HCI_ADV_SCANNABLE,
        0,
        HCI_ADV_SCAN_RSP,
    };
    return HCI_ADV_LEGACY_PDU | (t < 5 ? props[t] : 0);
}

/* One report at p (n bytes left in the event): its length, or 0 if it does not fit. */
static size_t legacy_report(const uint8_t *p, size_t n, struct hci_adv_report *r,
                            const char **why)
{
    if (n < HCI_LEGACY_REPORT_MIN) {
        bad(why, "advertising report cut short");
        return 0;
    }
    size_t len = p[8];
    if (len > HCI_ADV_LEGACY_MAX) {
        bad(why, "legacy advertising report with more than 31 bytes of data");
        return 0;
    }
    if (len > n - HCI_LEGACY_REPORT_MIN) {
        bad(why, "advertising report data runs past the event");
        return 0;
    }
    memset(r, 0, sizeof *r);
    r->evt_type = p[0];
    r->props = legacy_props(p[0]);
    r->addr_type = p[1];
    memcpy(r->addr.b, p + 2, 6);
    r->len = len;
    r->data = p + 9;
    r->rssi = (int8_t)p[9 + len];
    r->tx_power = HCI_TX_POWER_UNKNOWN;
    return HCI_LEGACY_REPORT_MIN + len;
}

static size_t ext_report(const uint8_t *p, size_t n, struct hci_adv_report *r, const char **why)
{
    if (n < HCI_EXT_REPORT_MIN) {
        bad(why, "extended advertising report cut short");
        return 0;
    }
    size_t len = p[23];
    if (len > n - HCI_EXT_REPORT_MIN) {
        bad(why, "extended advertising report data runs past the event");
        return 0;
    }
    memset(r, 0, sizeof *r);
    r->extended = 1;
    r->evt_type = att_get16(p);
    unsigned t = r->evt_type;
    r->props = (t & 0x01 ? HCI_ADV_CONNECTABLE : 0) | (t & 0x02 ? HCI_ADV_SCANNABLE : 0) |
               (t & 0x04 ? HCI_ADV_DIRECTED : 0) | (t & 0x08 ? HCI_ADV_SCAN_RSP : 0) |
               (t & 0x10 ? HCI_ADV_LEGACY_PDU : 0);
    r->data_status = (uint8_t)(t >> 5 & 3);
    r->addr_type = p[2];
    memcpy(r->addr.b, p + 3, 6);
    r->primary_phy = p[9];
    r->secondary_phy = p[10];
    r->sid = p[11];
    r->tx_power = (int8_t)p[12];
    r->rssi = (int8_t)p[13];
    r->periodic_interval = att_get16(p + 14);
    /* p[16] direct address type and p[17..22] direct address: for directed advertising to
     * another device, not used here */
    r->len = len;
    r->data = p + HCI_EXT_REPORT_MIN;
    return HCI_EXT_REPORT_MIN + len;
}

/* Walks the reports; with fn NULL it only checks them. */
static int walk_reports(const struct hci_event *ev, int ext, hci_report_fn fn, void *ud,
                        const char **why)
{
    const uint8_t *p = ev->params + 2;
    size_t left = ev->plen - 2;
    unsigned num = ev->params[1];
    if (num < 1 || num > 25)
        return bad(why, "number of advertising reports outside 1..25");
    for (unsigned i = 0; i < num; i++) {
        struct hci_adv_report r;
        size_t used = ext ? ext_report(p, left, &r, why) : legacy_report(p, left, &r, why);
        if (used == 0)
            return -EBADMSG;
        if (fn) {
            int e = fn(&r, ud);
            if (e)
                return e;
        }
        p += used;
        left -= used;
    }
    if (left)
        return bad(why, "bytes left over after the advertising reports");
    return 0;
}

int hci_adv_reports_parse(const struct hci_event *ev, hci_report_fn fn, void *ud,
                          const char **why)
{
    if (ev->code != HCI_EV_LE_META)
        return -ENOENT;
    if (ev->plen < 1)
        return bad(why, "LE Meta event without a subevent");
    uint8_t sub = ev->params[0];
    if (sub != HCI_LE_ADV_REPORT && sub != HCI_LE_EXT_ADV_REPORT)
        return -ENOENT;
    if (ev->plen < 2)
        return bad(why, "advertising report event without a report count");
    int ext = sub == HCI_LE_EXT_ADV_REPORT;
    /* check everything first, so that a malformed event delivers nothing */
    int e = walk_reports(ev, ext, NULL, NULL, why);
    return e < 0 ? e : walk_reports(ev, ext, fn, ud, why);
}

/* ---- the scanner -------------------------------------------------------------------------- */

#define SCAN_MAX_CMDS 4
#define SCAN_ERR_MAX 256

struct scan_cmd {
    uint16_t opcode;
    uint8_t len;
    uint8_t buf[16];
    int ignore_status;          /* the initial disable: scanning may be off already */
    int last;                   /* ends a start (starting 1) or a stop (starting 0) */
    int starting;
};

struct dedupe_entry {
    struct hci_addr addr;
    uint8_t addr_type;
    uint8_t scan_rsp;
    uint8_t used;
    int64_t last_ns;
};

struct hci_scan {
    int fd;
    struct hci_scan_opts o;     /* addrs and uuids point at the copies below */
    struct hci_addr *addrs;
    struct att_uuid *uuids;
    struct rpa_keys *keys;      /* opts.irks; NULL: none */
    enum hci_scan_state state;
    struct scan_cmd q[SCAN_MAX_CMDS];
    size_t q_n;                 /* q[0] is sent when out */
    int out;
    int64_t deadline_ns;
    int64_t now_ns;             /* of the entry point running */
    struct dedupe_entry dd[HCI_SCAN_DEDUPE_MAX];
    struct adv_data ad;
    struct hci_scan_stats st;
    char err[SCAN_ERR_MAX];
    int busy, freed;
};

struct hci_scan *hci_scan_new(int fd, const struct hci_scan_opts *o)
{
    struct hci_scan_opts d = *o;
    if (d.params.interval == 0 && d.params.window == 0)
        d.params.interval = d.params.window = 0x0010; /* hcitool's 10 ms */
    if (fd < 0 || !d.on_report || hci_scan_params_check(&d.params, NULL) < 0 ||
        d.n_addrs > HCI_SCAN_FILTER_MAX || d.n_uuids > HCI_SCAN_FILTER_MAX ||
        d.n_irks > HCI_SCAN_FILTER_MAX || (d.n_addrs && !d.addrs) || (d.n_uuids && !d.uuids) ||
        (d.n_irks && !d.irks)) {
        errno = EINVAL;
        return NULL;
    }
    struct hci_scan *s = calloc(1, sizeof *s);
    if (!s || (d.n_addrs && !(s->addrs = calloc(d.n_addrs, sizeof *s->addrs))) ||
        (d.n_uuids && !(s->uuids = calloc(d.n_uuids, sizeof *s->uuids)))) {
        hci_scan_free(s);
        errno = ENOMEM;
        return NULL;
    }
    int e = hci_scan_set_irks(s, d.irks, d.n_irks);
    if (e < 0) {
        hci_scan_free(s);
        errno = -e;
        return NULL;
    }
    d.irks = NULL; /* not kept: the schedules in keys are */
    if (d.n_addrs)
        memcpy(s->addrs, d.addrs, d.n_addrs * sizeof *s->addrs);
    if (d.n_uuids)
        memcpy(s->uuids, d.uuids, d.n_uuids * sizeof *s->uuids);
    d.addrs = s->addrs;
    d.uuids = s->uuids;
    if (d.cmd_timeout_ns <= 0)
        d.cmd_timeout_ns = HCI_CMD_TIMEOUT_NS;
    if (d.dedupe_ns == 0)
        d.dedupe_ns = HCI_SCAN_DEDUPE_NS;
    s->o = d;
    s->fd = fd;
    s->deadline_ns = INT64_MAX;
    return s;
}

int hci_scan_set_irks(struct hci_scan *s, const uint8_t (*irks)[16], size_t n)
{
    if (n > HCI_SCAN_FILTER_MAX || (n && !irks))
        return -EINVAL;
    struct rpa_keys *k = NULL;
    if (n && !(k = rpa_keys_new(irks, n)))
        return -errno;
    rpa_keys_free(s->keys);
    s->keys = k;
    s->o.n_irks = n;
    return 0;
}

static void really_free(struct hci_scan *s)
{
    rpa_keys_free(s->keys);
    free(s->addrs);
    free(s->uuids);
    free(s);
}

struct hci_scan *hci_scan_free(struct hci_scan *s)
{
    if (!s)
        return NULL;
    if (s->busy)
        s->freed = 1; /* inside a callback: the entry point frees it on the way out */
    else
        really_free(s);
    return NULL;
}

/* Entry points bracket their work with enter/leave so callbacks may free the scanner. */
static void enter(struct hci_scan *s, int64_t now_ns)
{
    s->busy++;
    s->now_ns = now_ns;
}

static void leave(struct hci_scan *s)
{
    if (--s->busy == 0 && s->freed)
        really_free(s);
}

enum hci_scan_state hci_scan_get_state(const struct hci_scan *s) { return s->state; }
const struct hci_scan_stats *hci_scan_get_stats(const struct hci_scan *s) { return &s->st; }
int hci_scan_fd(const struct hci_scan *s) { return s->fd; }
const char *hci_scan_strerror(const struct hci_scan *s) { return s->err; }

int64_t hci_scan_next_timeout(const struct hci_scan *s)
{
    return s->out ? s->deadline_ns : INT64_MAX;
}

static const char *op_name(uint16_t opcode)
{
    return opcode == HCI_OP_LE_SET_SCAN_PARAMS ? "LE Set Scan Parameters" : "LE Set Scan Enable";
}

static void done(struct hci_scan *s, int starting, int err, uint8_t status)
{
    if (s->o.on_done && !s->freed)
        s->o.on_done(s, starting, err, status, s->o.user_data);
}

/* The command sequence failed: nothing more goes out, the scanner is idle. */
static void fail(struct hci_scan *s, int err, uint8_t status)
{
    int starting = s->q_n ? s->q[0].starting : s->state == HCI_SCAN_STARTING;
    s->q_n = 0;
    s->out = 0;
    s->deadline_ns = INT64_MAX;
    s->state = HCI_SCAN_IDLE;
    done(s, starting, err, status);
}

static void set_err_status(struct hci_scan *s, uint16_t opcode, uint8_t status)
{
    const char *hint = "";
    if (status == HCI_ST_COMMAND_DISALLOWED)
        hint = ": the controller refuses legacy scanning once the kernel or bluetoothd has used "
               "extended scanning (or another program's scan is running)";
    else if (status == HCI_ST_UNKNOWN_COMMAND)
        hint = ": the controller does not support LE scanning";
    snprintf(s->err, sizeof s->err, "controller refused %s: %s (0x%02x)%s", op_name(opcode),
             hci_status_str(status), status, hint);
}

/* Writes q[0] if nothing is out. 0 or -errno (the sequence failed). */
static int send_next(struct hci_scan *s)
{
    if (s->out || s->q_n == 0)
        return 0;
    ssize_t n = send(s->fd, s->q[0].buf, s->q[0].len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n != (ssize_t)s->q[0].len) {
        /* a command is a few bytes: a socket that cannot take it is not going to get better */
        int e = n < 0 ? -errno : -EIO;
        snprintf(s->err, sizeof s->err, "writing %s to the HCI socket: %s",
                 op_name(s->q[0].opcode), strerror(-e));
        fail(s, e, 0);
        return e;
    }
    s->out = 1;
    s->deadline_ns = s->now_ns + s->o.cmd_timeout_ns;
    return 0;
}

static void push_cmd(struct hci_scan *s, const uint8_t *buf, size_t len, int ignore, int last,
                     int starting)
{
    struct scan_cmd *c = &s->q[s->q_n++];
    memcpy(c->buf, buf, len);
    c->len = (uint8_t)len;
    c->opcode = att_get16(buf + 1);
    c->ignore_status = ignore;
    c->last = last;
    c->starting = starting;
}

int hci_scan_start(struct hci_scan *s, int64_t now_ns)
{
    if (s->state != HCI_SCAN_IDLE)
        return -EALREADY;
    uint8_t b[16];
    enter(s, now_ns);
    s->err[0] = '\0';
    push_cmd(s, b, hci_cmd_scan_enable(b, sizeof b, 0, 0), 1, 0, 1);
    push_cmd(s, b, hci_cmd_scan_params(b, sizeof b, &s->o.params), 0, 0, 1);
    /* duplicates are filtered here, per interval, not by the controller: its filter would
     * hide a device's advertisements until the scan restarts, and a device that drops its
     * link must be seen again to reconnect */
    push_cmd(s, b, hci_cmd_scan_enable(b, sizeof b, 1, 0), 0, 1, 1);
    s->state = HCI_SCAN_STARTING;
    int e = send_next(s);
    leave(s);
    return e;
}

int hci_scan_stop(struct hci_scan *s, int64_t now_ns)
{
    enter(s, now_ns);
    int e = 0;
    if (s->state == HCI_SCAN_IDLE) {
        done(s, 0, 0, 0);
    } else if (s->state != HCI_SCAN_STOPPING) {
        if (s->state == HCI_SCAN_STARTING) {
            /* the command out is answered first; what start had not sent yet is dropped */
            s->q_n = s->out ? 1 : 0;
            if (s->q_n) {
                s->q[0].last = 0;
                s->q[0].ignore_status = 1; /* whatever its outcome, the disable follows */
            }
            done(s, 1, -ECANCELED, 0);
        }
        uint8_t b[16];
        push_cmd(s, b, hci_cmd_scan_enable(b, sizeof b, 0, 0), 0, 1, 0);
        s->state = HCI_SCAN_STOPPING;
        e = send_next(s);
    }
    leave(s);
    return e;
}

/* A Command Complete or Status. */
static void on_cmd_result(struct hci_scan *s, const struct hci_cmd_result *r)
{
    if (!s->out || r->opcode != s->q[0].opcode) {
        s->st.ignored++; /* another user's command, or "ready for commands" */
        return;
    }
    if (!r->complete && r->status == HCI_ST_SUCCESS)
        return; /* pending: the Command Complete comes later */
    struct scan_cmd c = s->q[0];
    if (r->status != HCI_ST_SUCCESS && !c.ignore_status) {
        set_err_status(s, c.opcode, r->status);
        fail(s, hci_status_errno(r->status), r->status);
        return;
    }
    memmove(s->q, s->q + 1, --s->q_n * sizeof s->q[0]);
    s->out = 0;
    s->deadline_ns = INT64_MAX;
    if (c.last) {
        s->state = c.starting ? HCI_SCAN_ON : HCI_SCAN_IDLE;
        done(s, c.starting, 0, 0);
    }
    if (!s->freed)
        send_next(s);
}

static int addr_wanted(const struct hci_scan *s, const struct hci_addr *a)
{
    for (size_t i = 0; i < s->o.n_addrs; i++)
        if (memcmp(s->addrs[i].b, a->b, 6) == 0)
            return 1;
    return 0;
}

static int uuid_wanted(const struct hci_scan *s, const struct adv_data *ad)
{
    for (size_t i = 0; i < s->o.n_uuids; i++)
        if (adv_has_uuid(ad, &s->uuids[i]))
            return 1;
    return 0;
}

/* 1 when the report repeats one delivered less than dedupe_ns ago (else it is recorded as
 * delivered now). Advertisements and scan responses count apart: they carry different data. */
static int duplicate(struct hci_scan *s, const struct hci_adv_report *r)
{
    if (s->o.dedupe_ns < 0)
        return 0;
    uint8_t rsp = (r->props & HCI_ADV_SCAN_RSP) != 0;
    struct dedupe_entry *slot = NULL;
    for (size_t i = 0; i < HCI_SCAN_DEDUPE_MAX; i++) {
        struct dedupe_entry *e = &s->dd[i];
        if (e->used && e->addr_type == r->addr_type && e->scan_rsp == rsp &&
            memcmp(e->addr.b, r->addr.b, 6) == 0) {
            if (s->now_ns - e->last_ns < s->o.dedupe_ns)
                return 1;
            slot = e;
            break;
        }
        /* else remember a free entry, or the oldest to evict */
        if (!slot || (slot->used && (!e->used || e->last_ns < slot->last_ns)))
            slot = e;
    }
    *slot = (struct dedupe_entry){r->addr, r->addr_type, rsp, 1, s->now_ns};
    return 0;
}

static int on_report(const struct hci_adv_report *r, void *ud)
{
    struct hci_scan *s = ud;
    struct hci_scan_result res = {.rep = *r, .ad = &s->ad, .irk = -1};
    s->st.reports++;
    if (s->keys)
        res.irk = rpa_keys_resolve(s->keys, r->addr_type, &r->addr);
    if (r->data_status == HCI_DATA_COMPLETE) {
        res.ad_err = adv_parse(r->data, r->len, &s->ad, &res.ad_why);
    } else {
        /* an AD structure may straddle fragments, so a fragment is not parsed (fragments
         * are not reassembled: legacy scanning does not produce them) */
        memset(&s->ad, 0, sizeof s->ad);
        res.ad_err = -EAGAIN;
        res.ad_why = "extended advertising data incomplete";
    }
    if (res.ad_err < 0 && res.ad_err != -EAGAIN)
        s->st.bad_ad++;
    int filtered = s->o.n_addrs || s->o.n_uuids || s->o.n_irks;
    if (filtered && !addr_wanted(s, &r->addr) && res.irk < 0 && !uuid_wanted(s, &s->ad))
        return 0;
    if (duplicate(s, r)) {
        s->st.suppressed++;
        return 0;
    }
    s->st.matched++;
    s->o.on_report(s, &res, s->o.user_data);
    return s->freed; /* stop walking once the scanner is gone */
}

static void malformed(struct hci_scan *s, const char *why)
{
    s->st.malformed++;
    s->st.last_malformed = why;
}

static void on_packet(struct hci_scan *s, const uint8_t *pkt, size_t len)
{
    struct hci_event ev;
    struct hci_cmd_result r;
    const char *why = NULL;
    s->st.packets++;
    int e = hci_event_parse(pkt, len, &ev, &why);
    if (e == -EPROTO) {
        s->st.ignored++;
        return;
    }
    if (e < 0) {
        malformed(s, why);
        return;
    }
    s->st.events++;
    e = hci_cmd_result_parse(&ev, &r, &why);
    if (e == 0) {
        on_cmd_result(s, &r);
        return;
    }
    if (e != -ENOENT) {
        malformed(s, why);
        return;
    }
    e = hci_adv_reports_parse(&ev, on_report, s, &why);
    if (e == -ENOENT)
        s->st.ignored++;
    else if (e < 0)
        malformed(s, why);
}

/* The fd failed: the scanner is idle; a pending start/stop fails with err. */
static void fd_failed(struct hci_scan *s, int err)
{
    snprintf(s->err, sizeof s->err, "HCI socket: %s",
             err == -ECONNRESET ? "closed" : strerror(-err));
    if (s->state == HCI_SCAN_STARTING || s->state == HCI_SCAN_STOPPING)
        fail(s, err, 0);
    else
        s->state = HCI_SCAN_IDLE;
}

int hci_scan_on_readable(struct hci_scan *s, int64_t now_ns)
{
    /* larger than any event, so an oversized packet shows as such rather than cut */
    uint8_t buf[HCI_EVENT_MAX + 64];
    int err = 0;
    enter(s, now_ns);
    for (int i = 0; i < HCI_SCAN_RX_BURST && !s->freed; i++) {
        ssize_t n = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            err = n == 0 ? -ECONNRESET : -errno;
            fd_failed(s, err);
            break;
        }
        if ((size_t)n > HCI_EVENT_MAX)
            malformed(s, "packet longer than an HCI event");
        else
            on_packet(s, buf, (size_t)n);
    }
    leave(s);
    return err;
}

void hci_scan_on_timer(struct hci_scan *s, int64_t now_ns)
{
    if (!s->out || now_ns < s->deadline_ns)
        return;
    enter(s, now_ns);
    snprintf(s->err, sizeof s->err, "%s not answered in %.1f s", op_name(s->q[0].opcode),
             (double)s->o.cmd_timeout_ns / 1e9);
    fail(s, -ETIMEDOUT, 0);
    leave(s);
}

/* ---- the real socket ---------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static void say(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

#ifdef ENGAGED_HAVE_BLE
static int open_error(int err, const char *step, char *why, size_t cap)
{
    if (err == -EAFNOSUPPORT)
        say(why, cap, "no Bluetooth in this kernel (AF_BLUETOOTH not supported)");
    else if (err == -ENODEV)
        say(why, cap, "no Bluetooth adapter");
    else if (err == -EPERM || err == -EACCES)
        say(why, cap, "%s: %s (HCI commands need CAP_NET_RAW)", step, strerror(-err));
    else
        say(why, cap, "%s: %s", step, strerror(-err));
    return err;
}

_Static_assert(sizeof(struct hci_filter) <= sizeof(((struct hci_dev_saved *)0)->filter),
               "struct hci_filter does not fit struct hci_dev_saved");

int hci_dev_open(int dev_id, struct hci_dev_saved *saved, char *why, size_t cap)
{
    memset(saved, 0, sizeof *saved);
    if (dev_id < 0) {
        errno = 0;
        dev_id = hci_get_route(NULL);
        if (dev_id < 0)
            return open_error(errno ? -errno : -ENODEV, "hci_get_route", why, cap);
    }
    int fd = hci_open_dev(dev_id);
    if (fd < 0)
        return open_error(-errno, "hci_open_dev", why, cap);
    struct hci_filter old, nf;
    socklen_t olen = sizeof old;
    int e = 0;
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
        getsockopt(fd, SOL_HCI, HCI_FILTER, &old, &olen) < 0)
        e = -errno;
    if (e == 0) {
        hci_filter_clear(&nf);
        hci_filter_set_ptype(HCI_EVENT_PKT, &nf);
        hci_filter_set_event(EVT_CMD_COMPLETE, &nf);
        hci_filter_set_event(EVT_CMD_STATUS, &nf);
        hci_filter_set_event(EVT_LE_META_EVENT, &nf);
        if (setsockopt(fd, SOL_HCI, HCI_FILTER, &nf, sizeof nf) < 0)
            e = -errno;
    }
    if (e < 0) {
        hci_close_dev(fd);
        return open_error(e, "setting up the HCI socket", why, cap);
    }
    memcpy(saved->filter, &old, sizeof old);
    saved->valid = 1;
    return fd;
}

void hci_dev_close(int fd, const struct hci_dev_saved *saved)
{
    if (fd < 0)
        return;
    if (saved && saved->valid)
        (void)setsockopt(fd, SOL_HCI, HCI_FILTER, saved->filter, sizeof(struct hci_filter));
    close(fd);
}
#else
int hci_dev_open(int dev_id, struct hci_dev_saved *saved, char *why, size_t cap)
{
    (void)dev_id;
    memset(saved, 0, sizeof *saved);
    say(why, cap, "this engaged was built without Bluetooth support (libbluetooth)");
    return -EPROTONOSUPPORT;
}

void hci_dev_close(int fd, const struct hci_dev_saved *saved)
{
    (void)saved;
    if (fd >= 0)
        close(fd);
}
#endif
