/* libFuzzer harness for the mgmt codec and session (drivers/ble_mgmt.c).
 *
 * The whole input goes, as it is, to the event parser and to the controller-list parser
 * (and, when the event is a Command Complete, its return parameters to the list parser).
 * Then it is played as a script against a session on one end of a socketpair, the harness
 * being the kernel:
 *   byte 0        options: bit 0 confirm() says yes, bit 1 keys_for hands out no key,
 *                 bit 2 mgmt_start() is not called
 *   then steps    L bytes[L]  (L < 0xF0) the kernel sends these L bytes as one packet
 *                 0xF0        time passes beyond the command timeout (on_timer)
 *                 0xF1        the kernel reads and discards what the session sent
 *                 0xF2        the kernel answers the command it reads next with success
 *                 0xF3 s      ... with status s (a Command Status)
 *                 0xF4        mgmt_on_writable
 *                 others      the kernel hangs up
 * keys_for hands out a few keys, two of them invalid; irks_for three, one invalid. Any input must end without a crash,
 * leak, hang or sanitizer report; what the parsers hand out must lie inside the input, the
 * session must never pass on an invalid key (LTK or IRK) nor send a malformed command, and its
 * counters
 * must add up. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drivers/ble_mgmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEC INT64_C(1000000000)

static void parsers(const uint8_t *data, size_t size)
{
    struct mgmt_event ev;
    uint16_t idx[8];
    size_t n = 99;
    if (mgmt_parse_event(data, size, &ev) == 0) {
        if (size < MGMT_HDR_LEN)
            abort();
        if (ev.code == MGMT_EV_CMD_COMPLETE || ev.code == MGMT_EV_CMD_STATUS) {
            if (ev.u.cmd.len && (ev.u.cmd.params < data + MGMT_HDR_LEN + 3 ||
                                 ev.u.cmd.params + ev.u.cmd.len != data + size))
                abort();
            if (ev.code == MGMT_EV_CMD_STATUS && ev.u.cmd.len)
                abort();
            if (mgmt_parse_index_list(ev.u.cmd.params, ev.u.cmd.len, idx, 8, &n) == 0 && n > 8)
                abort();
        }
    }
    int e = mgmt_parse_index_list(data, size, idx, 8, &n);
    if ((e != 0 && (e != -EBADMSG || n != 0)) || n > 8 || (e == 0 && size < 2 + 2 * n))
        abort();
}

struct ctx {
    int yes, no_keys;
    uint64_t new_keys, new_irks, notes;
    uint64_t irk_loads_sent;    /* Load Identity Resolving Keys commands seen */
    uint64_t loads_sent;        /* Load Long Term Keys commands seen on the kernel's side */
};

static size_t keys_for(void *ud, uint16_t index, struct mgmt_ltk *keys, size_t max)
{
    struct ctx *c = ud;
    if (c->no_keys || max < 4)
        return 0;
    memset(keys, 0, 4 * sizeof *keys);
    for (size_t i = 0; i < 4; i++) {
        keys[i].addr[0] = (uint8_t)i;
        keys[i].addr[5] = 0xc0;
        keys[i].addr_type = MGMT_ADDR_LE_RANDOM;
        keys[i].key_type = 2;
        keys[i].enc_size = 16;
        keys[i].ediv = index;
    }
    keys[1].key_type = 4;       /* debug: not loaded */
    keys[3].addr_type = 0;      /* BR/EDR: not loaded */
    return 4;
}

static void new_key(void *ud, uint16_t index, const struct mgmt_ltk *key)
{
    struct ctx *c = ud;
    if (!mgmt_ltk_valid(key))
        abort();
    c->new_keys++;
}

static size_t irks_for(void *ud, uint16_t index, struct mgmt_irk *keys, size_t max)
{
    struct ctx *c = ud;
    if (c->no_keys || max < 3)
        return 0;
    memset(keys, 0, 3 * sizeof *keys);
    for (size_t i = 0; i < 3; i++) {
        keys[i].addr[0] = (uint8_t)(0x10 + i);
        keys[i].addr[5] = 0xc0;
        keys[i].addr_type = MGMT_ADDR_LE_RANDOM;
        keys[i].val[0] = (uint8_t)index;
        keys[i].val[15] = 0xa5; /* never all zero: that is no key */
    }
    keys[1].addr[5] = 0x40;     /* resolvable: not loaded */
    return 3;
}

static void new_irk(void *ud, uint16_t index, const struct mgmt_irk *key)
{
    struct ctx *c = ud;
    (void)index;
    if (!mgmt_irk_valid(key))
        abort();
    c->new_irks++;
}

static int confirm(void *ud, uint16_t index, const uint8_t addr[6], uint8_t addr_type)
{
    return ((struct ctx *)ud)->yes;
}

static void note(void *ud, int level, const char *msg)
{
    if ((level != MGMT_NOTE_INFO && level != MGMT_NOTE_WARN) || !msg[0])
        abort();
    ((struct ctx *)ud)->notes++;
}

static const struct mgmt_ops OPS = {.keys_for = keys_for, .new_key = new_key,
                                    .confirm = confirm, .note = note, .irks_for = irks_for,
                                    .new_irk = new_irk};

/* What the session sent must be a well-formed command of those it knows, carrying only the
 * valid keys keys_for handed out. */
static void check_cmd(struct ctx *c, const uint8_t *p, ssize_t n)
{
    if (n < MGMT_HDR_LEN || (size_t)(p[4] | p[5] << 8) != (size_t)n - MGMT_HDR_LEN)
        abort();
    size_t plen = (size_t)n - MGMT_HDR_LEN;
    switch (p[0] | p[1] << 8) {
    case MGMT_OP_READ_INDEX_LIST:
        if (plen != 0 || (p[2] | p[3] << 8) != MGMT_INDEX_NONE)
            abort();
        break;
    case MGMT_OP_SET_BONDABLE:
        if (plen != 1 || p[6] != 1)
            abort();
        break;
    case MGMT_OP_LOAD_LTKS: {
        size_t keys = (size_t)(p[6] | p[7] << 8);
        if (plen != 2 + MGMT_LTK_LEN * keys || keys != (c->no_keys ? 0u : 2u))
            abort();
        for (size_t i = 0; i < keys; i++) {
            const uint8_t *k = p + 8 + MGMT_LTK_LEN * i;
            if (k[0] != 2 * i || k[6] != MGMT_ADDR_LE_RANDOM || k[7] != 2 ||
                (k[10] | k[11] << 8) != (p[2] | p[3] << 8))
                abort();
        }
        c->loads_sent++;
        break;
    }
    case MGMT_OP_LOAD_IRKS: {
        size_t keys = (size_t)(p[6] | p[7] << 8);
        if (plen != 2 + MGMT_IRK_LEN * keys || keys != (c->no_keys ? 0u : 2u))
            abort();
        for (size_t i = 0; i < keys; i++) {
            const uint8_t *k = p + 8 + MGMT_IRK_LEN * i;
            if (k[0] != 0x10 + 2 * i || k[5] != 0xc0 || k[6] != MGMT_ADDR_LE_RANDOM ||
                k[7] != (uint8_t)(p[2] | p[3] << 8))
                abort();
        }
        c->irk_loads_sent++;
        break;
    }
    case MGMT_OP_USER_CONFIRM_REPLY:
    case MGMT_OP_USER_CONFIRM_NEG_REPLY:
        if (plen != 7)
            abort();
        break;
    default:
        abort();
    }
}

/* Reads the next command; with answer, answers it (a Command Complete, or a Command Status
 * with status st). */
static int kernel_read(struct ctx *c, int fd, int answer, int complete, uint8_t st)
{
    static uint8_t cmd[MGMT_HDR_LEN + 2 + MGMT_LTK_LEN * MGMT_MAX_KEYS + 64];
    ssize_t n = recv(fd, cmd, sizeof cmd, MSG_DONTWAIT);
    if (n < 0)
        return 0;
    check_cmd(c, cmd, n);
    if (!answer)
        return 1;
    /* Read Index List answered with controllers 0 and 1 */
    uint8_t ev[16] = {complete ? 0x01 : 0x02, 0, cmd[2], cmd[3], 3, 0, cmd[0], cmd[1], st,
                      2, 0, 0, 0, 1, 0};
    size_t len = 9;
    if (complete && st == 0 && (cmd[0] | cmd[1] << 8) == MGMT_OP_READ_INDEX_LIST) {
        ev[4] = 9;
        len = 15;
    }
    (void)send(fd, ev, len, MSG_DONTWAIT);
    return 1;
}

static void script(const uint8_t *data, size_t size)
{
    int fd[2];
    if (size < 1 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fd) < 0)
        return;
    struct ctx c = {.yes = data[0] & 1, .no_keys = data[0] >> 1 & 1};
    struct mgmt *m = mgmt_new(fd[0], &OPS, &c);
    int64_t now = 1000 * SEC;
    size_t i = 1;
    if (!m)
        goto out;
    if (!(data[0] & 4))
        (void)mgmt_start(m, now);
    for (int steps = 0; i < size && steps < 256; steps++) {
        uint8_t op = data[i++];
        if (op < 0xF0) {
            size_t n = op <= size - i ? op : size - i;
            if (fd[1] >= 0)
                (void)send(fd[1], data + i, n, MSG_DONTWAIT);
            i += n;
        } else if (op == 0xF0) {
            now += MGMT_CMD_TIMEOUT_NS + 1;
            mgmt_on_timer(m, now);
        } else if (op == 0xF1 || op == 0xF2 || op == 0xF3) {
            uint8_t st = op == 0xF3 && i < size ? data[i++] : 0;
            if (fd[1] >= 0)
                (void)kernel_read(&c, fd[1], op != 0xF1, op == 0xF2, st);
        } else if (op == 0xF4) {
            (void)mgmt_on_writable(m, now);
        } else if (fd[1] >= 0) {
            while (kernel_read(&c, fd[1], 0, 0, 0))
                ; /* what was sent is checked before it is lost */
            close(fd[1]);
            fd[1] = -1;
        }
        now += 1000;
        int r = mgmt_on_readable(m, now);
        if (r > 0 || (fd[1] >= 0 && r < 0 && r != -EPIPE))
            abort();
        int64_t t = mgmt_next_timeout(m);
        if (t != INT64_MAX && t > now + MGMT_CMD_TIMEOUT_NS)
            abort();
        if (mgmt_want_write(m) && t != INT64_MAX)
            abort(); /* a command waiting for the socket has no deadline yet */
    }
    if (fd[1] >= 0)
        while (kernel_read(&c, fd[1], 0, 0, 0))
            ;
    /* a load counts only when answered, and carries the two valid keys (none with no_keys) */
    const struct mgmt_stats *st = mgmt_stats(m);
    if (st->new_irks != c.new_irks || st->irks_loaded > (c.no_keys ? 0 : 2) * c.irk_loads_sent ||
        st->irks_loaded % (c.no_keys ? 1 : 2) != 0)
        abort();
    if (st->new_keys != c.new_keys || st->controllers > c.loads_sent ||
        st->keys_loaded > (c.no_keys ? 0 : 2) * c.loads_sent ||
        st->keys_loaded % (c.no_keys ? 1 : 2) != 0)
        abort();
    mgmt_free(m);
out:
    close(fd[0]);
    if (fd[1] >= 0)
        close(fd[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parsers(data, size);
    script(data, size);
    return 0;
}
