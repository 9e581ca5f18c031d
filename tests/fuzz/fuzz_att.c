/* libFuzzer harness for the ATT bearer and GATT client (drivers/ble_att.c, ble_att_pdu.c,
 * ble_gatt.c, ble_gatt_db.c), with the simulator's request parser (ble_sim*.c) on the side.
 *
 * The input is a script of steps played against a client that starts discovery (with a
 * cache) on one end of a socketpair; the harness is the peer on the other end. Steps:
 *   0 len bytes   the peer sends bytes as a PDU (len > 200: an oversized PDU of filler)
 *   1 len bytes   the peer answers the client's last request: its response opcode + bytes
 *   2 code        the peer answers the last request with an Error Response of that code
 *   3 n           n seconds pass (att_on_timer: the 30 s timeout)
 *   4 op h h      the client's owner calls read / write / subscribe / cancel / CCCD write /
 *                 write command / unregister on handle h; op >= 0xF0 (then h h more): a
 *                 Service Changed of [h, h2]: a new client (gatt_new_changed) replaces it
 *   5             the peer hangs up (everything later sees a dead bearer)
 *   6 len bytes   the bytes go to a simulated server as a request PDU (len > 250: a control
 *                 packet raising its link to the level in the next byte instead)
 *   7 hi lo bytes the bytes ((hi & 7) << 8 | lo of them) are imported as a cache blob
 * The first byte sets the client up: bit 0 MTU 23 (else 24 + the byte), bit 1 a cache, bit 2
 * trusting an unhashed entry, bit 3 a security hook (bit 4: one that fails), so that error
 * responses asking for encryption or authentication send requests again.
 * Any input must end without a crash, leak, hang or sanitizer report, and a database the
 * client calls ready must survive export and import unchanged. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drivers/ble_gatt.h"
#include "drivers/ble_sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEC INT64_C(1000000000)

struct run {
    const uint8_t *p, *end;
    int fd[2], sfd[2];
    struct att *att;
    struct gatt *g;
    struct gatt_cache *cache;
    struct gatt_opts o;
    struct blesim *sim;
    int64_t now;
    uint8_t last_req;
    int ids[16];
    size_t n_ids;
};

static int byte(struct run *r)
{
    return r->p < r->end ? *r->p++ : -1;
}

static size_t take(struct run *r, size_t want, const uint8_t **ret)
{
    size_t n = (size_t)(r->end - r->p);
    if (want < n)
        n = want;
    *ret = r->p;
    r->p += n;
    return n;
}

/* Reads what the client sent; remembers its last request. */
static void drain(struct run *r)
{
    uint8_t b[ATT_MAX_LE_MTU + 8];
    ssize_t n;
    while (r->fd[1] >= 0 && (n = recv(r->fd[1], b, sizeof b, MSG_DONTWAIT)) > 0)
        if (att_op_kind(b[0]) == ATT_KIND_REQUEST && b[0] != ATT_OP_ERROR_RSP)
            r->last_req = b[0];
    while (r->sfd[1] >= 0 && recv(r->sfd[1], b, sizeof b, MSG_DONTWAIT) > 0)
        ;
}

static void peer_send(struct run *r, const uint8_t *b, size_t n)
{
    if (r->fd[1] < 0 || n == 0)
        return;
    (void)send(r->fd[1], b, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    att_on_readable(r->att, r->now);
}

/* The transport's side of a raise: fails when the input said so. */
static int on_security(struct att *a, int level, uint8_t ecode, void *ud)
{
    const int *fails = ud;
    if (level < ATT_SECURITY_MEDIUM || level > ATT_SECURITY_FIPS || !ecode)
        abort();
    return *fails ? -EIO : 0;
}

static void on_ready(struct gatt *g, int err, void *ud)
{
    const struct gatt_db *db = gatt_get_db(g);
    uint8_t *blob;
    size_t len;
    struct gatt_db copy = {0};
    if (err != 0 && err != -ENOENT)
        return;
    /* a database the client accepted is consistent: export and import give it back */
    if (gatt_db_export(db, &blob, &len) < 0)
        abort();
    if (gatt_db_import(&copy, blob, len) < 0 || copy.n_svc != db->n_svc ||
        copy.n_chrc != db->n_chrc || copy.n_desc != db->n_desc ||
        (db->n_chrc && memcmp(copy.chrc, db->chrc, db->n_chrc * sizeof *db->chrc)))
        abort();
    for (size_t i = 1; i < db->n_svc; i++)
        if (db->svc[i].start <= db->svc[i - 1].end)
            abort();
    gatt_db_clear(&copy);
    free(blob);
}

static void on_read(struct gatt *g, int err, uint8_t ecode, const uint8_t *v, size_t len,
                    void *ud)
{
    if (len > ATT_MAX_VALUE_LEN || (err && len))
        abort();
    if (len)
        (void)*(volatile const uint8_t *)&v[len - 1];
}

static void on_write(struct gatt *g, int err, uint8_t ecode, void *ud)
{
}

static void on_note(struct gatt *g, uint16_t h, const uint8_t *v, size_t len, int64_t at,
                    void *ud)
{
    if (len)
        (void)*(volatile const uint8_t *)&v[len - 1];
}

static void api(struct run *r)
{
    int op = byte(r), lo = byte(r), hi = byte(r);
    if (op < 0 || lo < 0 || hi < 0)
        return;
    uint16_t h = (uint16_t)(lo | hi << 8);
    uint8_t v[4] = {1, 0, 0, 0};
    int id = 0;
    if (op >= 0xF0) {
        int lo2 = byte(r), hi2 = byte(r);
        if (lo2 < 0 || hi2 < 0)
            return;
        struct gatt *g = gatt_new_changed(r->att, &r->o, r->g, h, (uint16_t)(lo2 | hi2 << 8));
        if (g) {
            gatt_free(r->g);
            r->g = g;
            r->n_ids = 0;
        }
        return;
    }
    switch (op % 7) {
    case 0: id = gatt_read(r->g, h, on_read, NULL, NULL); break;
    case 1: id = gatt_write(r->g, h, v, (size_t)(op / 7 % 5), on_write, NULL, NULL); break;
    case 2: id = gatt_subscribe(r->g, h, on_note, on_write, NULL, NULL); break;
    case 3: if (r->n_ids) gatt_cancel(r->g, r->ids[h % r->n_ids]); break;
    case 4: id = gatt_write_cccd(r->g, h, (uint16_t)(op / 7 % 4), on_write, NULL, NULL); break;
    case 5: gatt_write_cmd(r->g, h, v, 2); break;
    case 6: if (r->n_ids) gatt_unregister(r->g, r->ids[h % r->n_ids]); break;
    }
    if (id > 0 && r->n_ids < 16)
        r->ids[r->n_ids++] = id;
}

static void step(struct run *r, int cmd)
{
    const uint8_t *b;
    uint8_t pdu[1024];   /* oversized PDUs: up to 200 + 55 * 11 bytes */
    size_t n;
    int len;
    switch (cmd % 8) {
    case 0:
        if ((len = byte(r)) < 0)
            return;
        if (len > 200) {           /* oversized: longer than any MTU */
            n = 200 + (size_t)(len - 200) * 11;
            memset(pdu, 0x1b, n);
            peer_send(r, pdu, n);
        } else {
            n = take(r, (size_t)len, &b);
            peer_send(r, b, n);
        }
        break;
    case 1:
        if ((len = byte(r)) < 0 || !r->last_req)
            return;
        pdu[0] = att_rsp_opcode(r->last_req);
        n = take(r, (size_t)len, &b);
        memcpy(pdu + 1, b, n);
        peer_send(r, pdu, n + 1);
        break;
    case 2:
        if ((len = byte(r)) < 0 || !r->last_req)
            return;
        pdu[0] = ATT_OP_ERROR_RSP;
        pdu[1] = r->last_req;
        pdu[2] = pdu[3] = 0;
        pdu[4] = (uint8_t)len;
        peer_send(r, pdu, 5);
        break;
    case 3:
        if ((len = byte(r)) < 0)
            return;
        r->now += len * SEC;
        att_on_timer(r->att, r->now);
        if (att_next_timeout(r->att) <= r->now)
            att_on_timer(r->att, r->now);
        break;
    case 4:
        api(r);
        break;
    case 5:
        if (r->fd[1] >= 0) {
            close(r->fd[1]);
            r->fd[1] = -1;
            att_on_readable(r->att, r->now);
        }
        break;
    case 6:
        if ((len = byte(r)) < 0)
            return;
        if (len > 250) {
            int level = byte(r);
            if (level >= 0 && blesim_ctl_security(r->sfd[1], level % 6) == 0)
                blesim_on_readable(r->sim, r->now);
            break;
        }
        n = take(r, (size_t)len, &b);
        if (n && r->sfd[1] >= 0 && send(r->sfd[1], b, n, MSG_DONTWAIT) == (ssize_t)n)
            blesim_on_readable(r->sim, r->now);
        blesim_on_timer(r->sim, r->now);
        break;
    case 7: {
        int hi = byte(r);
        if ((len = byte(r)) < 0 || hi < 0)
            return;
        n = take(r, (size_t)(len | (hi & 7) << 8), &b);
        gatt_cache_import(r->cache, "fuzz", b, n);
        break;
    }
    }
    att_on_writable(r->att, r->now);
    drain(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run r = {.p = data, .end = data + size, .now = 100 * SEC};
    struct blesim_profile_opts po;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, r.fd) < 0)
        return 0;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, r.sfd) < 0) {
        close(r.fd[0]);
        close(r.fd[1]);
        return 0;
    }
    r.att = att_new(r.fd[0], r.now);
    r.cache = gatt_cache_new(2);
    r.sim = blesim_new(r.sfd[0], 0, r.now);
    blesim_profile_defaults(&po);
    po.hr_security = 2;   /* the Heart Rate CCCD needs the control packet's raise */
    if (!r.att || !r.cache || !r.sim || blesim_add_profiles(r.sim, BLESIM_PROFILE_ALL, &po) < 0)
        abort();
    int first = byte(&r), sec_fails = first >= 0 && (first & 16);
    if (first >= 0 && (first & 8))
        att_set_security_hook(r.att, ATT_SECURITY_LOW, on_security, &sec_fails, NULL);
    r.o = (struct gatt_opts){.mtu = first < 0 ? 0 : (first & 1 ? 23 : (uint16_t)(24 + first)),
                             .cache = first >= 0 && (first & 2) ? r.cache : NULL,
                             .device = "fuzz", .trust_unhashed = first >= 0 && (first & 4),
                             .ready = on_ready};
    r.g = gatt_new(r.att, &r.o);
    if (!r.g)
        abort();
    drain(&r);
    for (int cmd; (cmd = byte(&r)) >= 0;)
        step(&r, cmd);
    if (att_mtu(r.att) < ATT_DEFAULT_LE_MTU || att_mtu(r.att) > ATT_MAX_LE_MTU)
        abort();
    gatt_free(r.g);
    att_free(r.att);
    blesim_free(r.sim);
    gatt_cache_free(r.cache);
    close(r.fd[0]);
    if (r.fd[1] >= 0)
        close(r.fd[1]);
    close(r.sfd[0]);
    close(r.sfd[1]);
    return 0;
}
