/* drivers/ble_mgmt.c: the mgmt codec byte by byte (commands, every event it parses with its
 * wrong lengths, the controller list), and the session against a fake kernel on a
 * socketpair(AF_UNIX, SOCK_SEQPACKET): the controller list, Set Bondable, Load Identity
 * Resolving Keys and Load Long Term Keys per controller (an invalid key left out, a refused
 * load, a kernel without Load IRKs), new LTKs and IRKs kept or not by their store hint, Just Works confirmations, a command never answered, a controller added
 * and removed, a Command Status, malformed packets, a socket that will not take a command
 * yet (EAGAIN), the bounded queue, the kernel side closing, and mgmt_open() failing with a
 * reason on a host without Bluetooth. The expected bytes are written out by hand from BlueZ
 * doc/mgmt-api.txt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tests/ble_script.h"
#include "drivers/ble_mgmt.h"

static uint8_t hb[9300];
static size_t hx(const char *hex)
{
    return hex_bytes(hex, hb, sizeof hb);
}

/* Key A: C4:7C:8D:6A:2F:01 random, P-256 unauthenticated, its key (central), 16 bytes. */
static const struct mgmt_ltk KEY_A = {
    .addr = {0x01, 0x2f, 0x6a, 0x8d, 0x7c, 0xc4},
    .addr_type = MGMT_ADDR_LE_RANDOM,
    .key_type = 2,
    .central = 1,
    .enc_size = 16,
    .ediv = 0x1234,
    .rand = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7},
    .val = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff},
};
#define KEY_A_HEX "012f6a8d7cc4 02 02 01 10 3412 a0a1a2a3a4a5a6a7 00112233445566778899aabbccddeeff"

/* Key B: 66:55:44:33:22:11 public, legacy unauthenticated, our key, 7 bytes. */
static const struct mgmt_ltk KEY_B = {
    .addr = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66},
    .addr_type = MGMT_ADDR_LE_PUBLIC,
    .key_type = 0,
    .central = 0,
    .enc_size = 7,
    .ediv = 0xbeef,
    .rand = {1, 2, 3, 4, 5, 6, 7, 8},
    .val = {0xf0, 0xe0, 0xd0, 0xc0, 0xb0, 0xa0, 0x90, 0x80, 0x70, 0x60, 0x50, 0x40, 0x30, 0x20,
            0x10, 0x00},
};
#define KEY_B_HEX "112233445566 01 00 00 07 efbe 0102030405060708 f0e0d0c0b0a090807060504030201000"

/* Identity Resolving Key A: key A's device (static random address). */
static const struct mgmt_irk IRK_A = {
    .addr = {0x01, 0x2f, 0x6a, 0x8d, 0x7c, 0xc4},
    .addr_type = MGMT_ADDR_LE_RANDOM,
    .val = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
            0x1e, 0x1f},
};
#define IRK_A_HEX "012f6a8d7cc4 02 101112131415161718191a1b1c1d1e1f"
#define NO_IRKS(i) "3000 " i "00 0200 0000"
#define CC_IRKS(i) "0100 " i "00 0300 3000 00"

/* ---- the codec ---- */

static void test_ltk_valid(void **state)
{
    struct mgmt_ltk k = KEY_A;
    assert_true(mgmt_ltk_valid(&k));
    k.addr_type = MGMT_ADDR_BREDR;
    assert_false(mgmt_ltk_valid(&k));
    k.addr_type = 3;
    assert_false(mgmt_ltk_valid(&k));
    k = KEY_A;
    k.key_type = 3;
    assert_true(mgmt_ltk_valid(&k));
    k.key_type = 4; /* debug */
    assert_false(mgmt_ltk_valid(&k));
    k = KEY_A;
    k.central = 2;
    assert_false(mgmt_ltk_valid(&k));
    k = KEY_A;
    k.enc_size = 6;
    assert_false(mgmt_ltk_valid(&k));
    k.enc_size = 7;
    assert_true(mgmt_ltk_valid(&k));
    k.enc_size = 17;
    assert_false(mgmt_ltk_valid(&k));
    /* a random address must be static (top bits 11): not resolvable (01) or not (00) */
    k = KEY_A;
    k.addr[5] = 0x4C;
    assert_false(mgmt_ltk_valid(&k));
    k.addr[5] = 0x0C;
    assert_false(mgmt_ltk_valid(&k));
    k.addr_type = MGMT_ADDR_LE_PUBLIC; /* any public address */
    assert_true(mgmt_ltk_valid(&k));
}

static void test_irk_valid(void **state)
{
    struct mgmt_irk k = IRK_A;
    assert_true(mgmt_irk_valid(&k));
    k.addr[5] = 0x4C; /* resolvable private: not an identity */
    assert_false(mgmt_irk_valid(&k));
    k.addr[5] = 0x0C; /* non-resolvable private */
    assert_false(mgmt_irk_valid(&k));
    k.addr_type = MGMT_ADDR_LE_PUBLIC;
    assert_true(mgmt_irk_valid(&k));
    k.addr_type = MGMT_ADDR_BREDR;
    assert_false(mgmt_irk_valid(&k));
    k.addr_type = 7;
    assert_false(mgmt_irk_valid(&k));
    k = IRK_A;
    memset(k.val, 0, sizeof k.val); /* no key */
    assert_false(mgmt_irk_valid(&k));
    k.val[15] = 1;
    assert_true(mgmt_irk_valid(&k));
}

static void test_load_irks(void **state)
{
    static uint8_t b[MGMT_HDR_LEN + 2 + MGMT_IRK_LEN * (MGMT_MAX_KEYS + 1)];
    size_t n = mgmt_cmd_load_irks(b, sizeof b, 1, &IRK_A, 1);
    assert_int_equal(n, 6 + 2 + 23);
    assert_int_equal(hx("3000 0100 1900 0100 " IRK_A_HEX), n);
    assert_memory_equal(b, hb, n);
    assert_int_equal(mgmt_cmd_load_irks(b, sizeof b, 0, NULL, 0), 8);
    assert_memory_equal(b, hb, hx(NO_IRKS("00")));
    assert_int_equal(mgmt_cmd_load_irks(b, 30, 0, &IRK_A, 1), 0); /* one byte short */
    assert_int_equal(mgmt_cmd_load_irks(b, 31, 0, &IRK_A, 1), 31);
    struct mgmt_irk two[2] = {IRK_A, IRK_A};
    two[1].addr[5] = 0x40;
    assert_int_equal(mgmt_cmd_load_irks(b, sizeof b, 0, two, 2), 0);
    static struct mgmt_irk many[MGMT_MAX_KEYS + 1];
    for (size_t i = 0; i <= MGMT_MAX_KEYS; i++)
        many[i] = IRK_A;
    n = mgmt_cmd_load_irks(b, sizeof b, 0, many, MGMT_MAX_KEYS);
    assert_int_equal(n, 6 + 2 + 23 * MGMT_MAX_KEYS);
    assert_int_equal(b[6] | b[7] << 8, MGMT_MAX_KEYS);
    assert_memory_equal(b + n - 23, hb, hx(IRK_A_HEX));
    assert_int_equal(mgmt_cmd_load_irks(b, sizeof b, 0, many, MGMT_MAX_KEYS + 1), 0);
}

static void test_commands(void **state)
{
    uint8_t b[64];
    size_t n = mgmt_cmd(b, sizeof b, MGMT_OP_READ_INDEX_LIST, MGMT_INDEX_NONE, NULL, 0);
    assert_int_equal(n, 6);
    assert_memory_equal(b, hb, hx("0300 ffff 0000"));
    const uint8_t on = 1;
    n = mgmt_cmd(b, sizeof b, MGMT_OP_SET_BONDABLE, 0, &on, 1);
    assert_int_equal(n, 7);
    assert_memory_equal(b, hb, hx("0900 0000 0100 01"));
    const uint8_t addr[7] = {1, 2, 3, 4, 5, 6, 2};
    n = mgmt_cmd(b, sizeof b, MGMT_OP_USER_CONFIRM_NEG_REPLY, 0x0102, addr, 7);
    assert_int_equal(n, 13);
    assert_memory_equal(b, hb, hx("1d00 0201 0700 010203040506 02"));
    /* exactly enough room, then one byte short */
    assert_int_equal(mgmt_cmd(b, 7, MGMT_OP_SET_BONDABLE, 0, &on, 1), 7);
    assert_int_equal(mgmt_cmd(b, 6, MGMT_OP_SET_BONDABLE, 0, &on, 1), 0);
    assert_int_equal(mgmt_cmd(b, 5, MGMT_OP_READ_INDEX_LIST, 0, NULL, 0), 0);
    /* parameters longer than a packet holds */
    static uint8_t big[65536 + 6], params[65536];
    params[65534] = 0x5a;
    assert_int_equal(mgmt_cmd(big, sizeof big, 0x0001, 0, params, 65536), 0);
    assert_int_equal(mgmt_cmd(big, sizeof big, 0x0001, 0, params, 65535), 65541);
    assert_int_equal(big[4] | big[5] << 8, 65535);
    assert_int_equal(big[65540], 0x5a);
}

static void test_load_ltks(void **state)
{
    static uint8_t b[MGMT_HDR_LEN + 2 + MGMT_LTK_LEN * (MGMT_MAX_KEYS + 1)];
    /* one key, byte by byte */
    size_t n = mgmt_cmd_load_ltks(b, sizeof b, 0, &KEY_A, 1);
    assert_int_equal(n, 6 + 2 + 36);
    size_t w = hx("1300 0000 2600 0100 " KEY_A_HEX);
    assert_int_equal(w, n);
    for (size_t i = 0; i < n; i++)
        if (b[i] != hb[i])
            fail_msg("byte %zu: %02x, not %02x", i, b[i], hb[i]);
    /* two keys on controller 1 */
    struct mgmt_ltk two[2] = {KEY_B, KEY_A};
    n = mgmt_cmd_load_ltks(b, sizeof b, 1, two, 2);
    assert_int_equal(n, 6 + 2 + 72);
    assert_memory_equal(b, hb, hx("1300 0100 4a00 0200 " KEY_B_HEX KEY_A_HEX));
    /* none: a load that clears the controller's keys */
    assert_int_equal(mgmt_cmd_load_ltks(b, sizeof b, 2, NULL, 0), 8);
    assert_memory_equal(b, hb, hx("1300 0200 0200 0000"));
    /* a buffer one byte short */
    assert_int_equal(mgmt_cmd_load_ltks(b, 43, 0, &KEY_A, 1), 0);
    assert_int_equal(mgmt_cmd_load_ltks(b, 44, 0, &KEY_A, 1), 44);
    /* an invalid key anywhere: nothing */
    two[1].key_type = 4;
    assert_int_equal(mgmt_cmd_load_ltks(b, sizeof b, 0, two, 2), 0);
    two[1] = KEY_A;
    two[0].addr_type = MGMT_ADDR_BREDR;
    assert_int_equal(mgmt_cmd_load_ltks(b, sizeof b, 0, two, 2), 0);
    /* MGMT_MAX_KEYS keys fit, one more does not */
    static struct mgmt_ltk many[MGMT_MAX_KEYS + 1];
    for (size_t i = 0; i <= MGMT_MAX_KEYS; i++)
        many[i] = KEY_B;
    n = mgmt_cmd_load_ltks(b, sizeof b, 0, many, MGMT_MAX_KEYS);
    assert_int_equal(n, 6 + 2 + 36 * MGMT_MAX_KEYS);
    assert_int_equal(b[4] | b[5] << 8, 2 + 36 * MGMT_MAX_KEYS);
    assert_int_equal(b[6] | b[7] << 8, MGMT_MAX_KEYS);
    assert_memory_equal(b + n - 36, hb, hx(KEY_B_HEX));
    assert_int_equal(mgmt_cmd_load_ltks(b, sizeof b, 0, many, MGMT_MAX_KEYS + 1), 0);
}

static int parse_hex(const char *hex, struct mgmt_event *ev)
{
    return mgmt_parse_event(hb, hx(hex), ev);
}

static void test_parse_events(void **state)
{
    struct mgmt_event ev;
    /* Command Complete of Read Controller Index List: two controllers */
    assert_int_equal(parse_hex("0100 ffff 0900 0300 00 0200 0000 0100", &ev), 0);
    assert_int_equal(ev.code, MGMT_EV_CMD_COMPLETE);
    assert_int_equal(ev.index, 0xffff);
    assert_int_equal(ev.u.cmd.opcode, MGMT_OP_READ_INDEX_LIST);
    assert_int_equal(ev.u.cmd.status, 0);
    assert_ptr_equal(ev.u.cmd.params, hb + 9);
    assert_int_equal(ev.u.cmd.len, 6);
    /* without return parameters */
    assert_int_equal(parse_hex("0100 0100 0300 1300 0d", &ev), 0);
    assert_int_equal(ev.index, 1);
    assert_int_equal(ev.u.cmd.opcode, MGMT_OP_LOAD_LTKS);
    assert_int_equal(ev.u.cmd.status, 0x0d);
    assert_int_equal(ev.u.cmd.len, 0);
    assert_int_equal(parse_hex("0100 0100 0200 1300", &ev), -EBADMSG);
    /* Command Status: exactly 3 bytes */
    assert_int_equal(parse_hex("0200 0000 0300 0900 0a", &ev), 0);
    assert_int_equal(ev.code, MGMT_EV_CMD_STATUS);
    assert_int_equal(ev.u.cmd.opcode, MGMT_OP_SET_BONDABLE);
    assert_int_equal(ev.u.cmd.status, 0x0a);
    assert_int_equal(ev.u.cmd.len, 0);
    assert_int_equal(parse_hex("0200 0000 0400 0900 0a00", &ev), -EBADMSG);
    assert_int_equal(parse_hex("0200 0000 0200 0900", &ev), -EBADMSG);
    /* Index Added / Removed: no parameters */
    assert_int_equal(parse_hex("0400 0200 0000", &ev), 0);
    assert_int_equal(ev.code, MGMT_EV_INDEX_ADDED);
    assert_int_equal(ev.index, 2);
    assert_int_equal(parse_hex("0500 0300 0000", &ev), 0);
    assert_int_equal(ev.code, MGMT_EV_INDEX_REMOVED);
    assert_int_equal(ev.index, 3);
    assert_int_equal(parse_hex("0400 0200 0100 00", &ev), -EBADMSG);
    assert_int_equal(parse_hex("0500 0200 0100 00", &ev), -EBADMSG);
    /* New Long Term Key: store hint and the key, field by field */
    assert_int_equal(parse_hex("0a00 0000 2500 01 " KEY_A_HEX, &ev), 0);
    assert_int_equal(ev.code, MGMT_EV_NEW_LTK);
    assert_int_equal(ev.u.ltk.store_hint, 1);
    assert_memory_equal(ev.u.ltk.key.addr, KEY_A.addr, 6);
    assert_int_equal(ev.u.ltk.key.addr_type, MGMT_ADDR_LE_RANDOM);
    assert_int_equal(ev.u.ltk.key.key_type, 2);
    assert_int_equal(ev.u.ltk.key.central, 1);
    assert_int_equal(ev.u.ltk.key.enc_size, 16);
    assert_int_equal(ev.u.ltk.key.ediv, 0x1234);
    assert_memory_equal(ev.u.ltk.key.rand, KEY_A.rand, 8);
    assert_memory_equal(ev.u.ltk.key.val, KEY_A.val, 16);
    assert_int_equal(parse_hex("0a00 0000 2400 " KEY_A_HEX, &ev), -EBADMSG);
    assert_int_equal(parse_hex("0a00 0000 2600 01 " KEY_A_HEX "00", &ev), -EBADMSG);
    /* New Identity Resolving Key: store hint, the address it came from, the key */
    assert_int_equal(parse_hex("1800 0100 1e00 01 a1a2a3a4a5 4b " IRK_A_HEX, &ev), 0);
    assert_int_equal(ev.code, MGMT_EV_NEW_IRK);
    assert_int_equal(ev.index, 1);
    assert_int_equal(ev.u.irk.store_hint, 1);
    assert_int_equal(ev.u.irk.rpa[0], 0xa1);
    assert_int_equal(ev.u.irk.rpa[5], 0x4b);
    assert_memory_equal(ev.u.irk.key.addr, IRK_A.addr, 6);
    assert_int_equal(ev.u.irk.key.addr_type, MGMT_ADDR_LE_RANDOM);
    assert_memory_equal(ev.u.irk.key.val, IRK_A.val, 16);
    assert_int_equal(parse_hex("1800 0100 1d00 01 a1a2a3a4a5 4b 012f6a8d7cc4 02 "
                               "1011121314151617 18191a1b1c1d1e", &ev), -EBADMSG);
    assert_int_equal(parse_hex("1800 0100 1f00 01 a1a2a3a4a5 4b " IRK_A_HEX "00", &ev),
                     -EBADMSG);
    /* User Confirmation Request */
    assert_int_equal(parse_hex("0f00 0000 0c00 0a2f6a8d7cc4 02 01 78563412", &ev), 0);
    assert_int_equal(ev.code, MGMT_EV_USER_CONFIRM_REQUEST);
    assert_int_equal(ev.u.confirm.addr[0], 0x0a);
    assert_int_equal(ev.u.confirm.addr[5], 0xc4);
    assert_int_equal(ev.u.confirm.addr_type, 2);
    assert_int_equal(ev.u.confirm.confirm_hint, 1);
    assert_int_equal(ev.u.confirm.value, 0x12345678);
    assert_int_equal(parse_hex("0f00 0000 0b00 0a2f6a8d7cc4 02 01 785634", &ev), -EBADMSG);
    assert_int_equal(parse_hex("0f00 0000 0d00 0a2f6a8d7cc4 02 01 7856341200", &ev), -EBADMSG);
    /* an event not acted on: only code and index */
    memset(&ev, 0xAA, sizeof ev);
    assert_int_equal(parse_hex("0600 0000 0400 01020304", &ev), 0);
    assert_int_equal(ev.code, 0x0006);
    assert_int_equal(ev.index, 0);
    assert_int_equal(ev.u.cmd.opcode, 0);
    assert_null(ev.u.cmd.params);
    assert_int_equal(ev.u.cmd.len, 0);
    /* headers: short, and a parameter length that is not the packet's */
    assert_int_equal(mgmt_parse_event(hb, 0, &ev), -EBADMSG);
    assert_int_equal(parse_hex("0400 0000 00", &ev), -EBADMSG);
    assert_int_equal(parse_hex("0600 0000 0500 01020304", &ev), -EBADMSG);
    assert_int_equal(parse_hex("0600 0000 0300 01020304", &ev), -EBADMSG);
}

static void test_parse_index_list(void **state)
{
    uint16_t idx[4];
    size_t n = 99;
    assert_int_equal(mgmt_parse_index_list(hb, hx("0300 0000 0100 0501"), idx, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 1);
    assert_int_equal(idx[2], 0x0105);
    /* more than max: the first max */
    idx[2] = 0xeeee;
    assert_int_equal(mgmt_parse_index_list(hb, hx("0300 0700 0800 0900"), idx, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(idx[0], 7);
    assert_int_equal(idx[1], 8);
    assert_int_equal(idx[2], 0xeeee);
    /* none */
    assert_int_equal(mgmt_parse_index_list(hb, hx("0000"), idx, 4, &n), 0);
    assert_int_equal(n, 0);
    /* a count the parameters do not hold, no count at all */
    n = 99;
    assert_int_equal(mgmt_parse_index_list(hb, hx("0300 0000 0100 05"), idx, 4, &n), -EBADMSG);
    assert_int_equal(n, 0);
    assert_int_equal(mgmt_parse_index_list(hb, hx("0100"), idx, 4, &n), -EBADMSG);
    assert_int_equal(mgmt_parse_index_list(hb, hx("01"), idx, 4, &n), -EBADMSG);
    assert_int_equal(mgmt_parse_index_list(NULL, 0, idx, 4, &n), -EBADMSG);
    assert_int_equal(mgmt_parse_index_list(hb, hx("ffff 0000"), idx, 4, &n), -EBADMSG);
}

/* ---- the session against a fake kernel ---- */

struct kern {
    int fd[2];                   /* fd[0] the session's, fd[1] the fake kernel's */
    int64_t now;
    struct mgmt *m;
    struct mgmt_ltk keys[3][4];  /* what keys_for hands out per controller */
    size_t n_keys[3];
    size_t keys_for_calls;
    int new_keys;
    uint16_t new_index;
    struct mgmt_ltk new_key;
    struct mgmt_irk irks[3][2];  /* what irks_for hands out per controller */
    size_t n_irks[3];
    int new_irks;
    struct mgmt_irk new_irk;
    uint8_t accept[6];           /* the one address confirm() says yes to */
    int confirms;
    char notes[80][200];
    int levels[80];
    int n_notes;
};

static size_t k_keys_for(void *ud, uint16_t index, struct mgmt_ltk *keys, size_t max)
{
    struct kern *k = ud;
    k->keys_for_calls++;
    if (index >= 3)
        return 0;
    size_t n = k->n_keys[index] < max ? k->n_keys[index] : max;
    memcpy(keys, k->keys[index], n * sizeof *keys);
    return n;
}

static void k_new_key(void *ud, uint16_t index, const struct mgmt_ltk *key)
{
    struct kern *k = ud;
    k->new_keys++;
    k->new_index = index;
    k->new_key = *key;
}

static int k_confirm(void *ud, uint16_t index, const uint8_t addr[6], uint8_t addr_type)
{
    struct kern *k = ud;
    k->confirms++;
    return memcmp(addr, k->accept, 6) == 0 && addr_type == MGMT_ADDR_LE_RANDOM;
}

static void k_note(void *ud, int level, const char *msg)
{
    struct kern *k = ud;
    if (k->n_notes < 80) {
        snprintf(k->notes[k->n_notes], sizeof k->notes[0], "%s", msg);
        k->levels[k->n_notes] = level;
    }
    k->n_notes++;
}

static size_t k_irks_for(void *ud, uint16_t index, struct mgmt_irk *keys, size_t max)
{
    struct kern *k = ud;
    if (index >= 3)
        return 0;
    size_t n = k->n_irks[index] < max ? k->n_irks[index] : max;
    memcpy(keys, k->irks[index], n * sizeof *keys);
    return n;
}

static void k_new_irk(void *ud, uint16_t index, const struct mgmt_irk *key)
{
    struct kern *k = ud;
    (void)index;
    k->new_irks++;
    k->new_irk = *key;
}

static const struct mgmt_ops OPS = {.keys_for = k_keys_for, .new_key = k_new_key,
                                    .confirm = k_confirm, .note = k_note,
                                    .irks_for = k_irks_for, .new_irk = k_new_irk};

static void k_open(struct kern *k)
{
    memset(k, 0, sizeof *k);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, k->fd), 0);
    assert_int_equal(fcntl(k->fd[1], F_SETFL, O_NONBLOCK), 0);
    k->now = 1000 * SEC;
    k->m = mgmt_new(k->fd[0], &OPS, k);
    assert_non_null(k->m);
    assert_int_equal(mgmt_next_timeout(k->m), INT64_MAX);
    assert_int_equal(mgmt_want_write(k->m), 0);
}

static void k_close(struct kern *k)
{
    mgmt_free(k->m);
    k->m = NULL;
    for (int i = 0; i < 2; i++)
        if (k->fd[i] >= 0)
            close(k->fd[i]);
}

/* The session must have sent exactly this packet next. */
static void k_expect(struct kern *k, const char *hex)
{
    static uint8_t want[9300], got[9300];
    size_t n = hex_bytes(hex, want, sizeof want);
    ssize_t r = recv(k->fd[1], got, sizeof got, MSG_DONTWAIT);
    if (r != (ssize_t)n || memcmp(got, want, n) != 0) {
        char g[200] = "";
        if (r > 0)
            hex_str(got, (size_t)r < 40 ? (size_t)r : 40, g, sizeof g);
        fail_msg("expected %s, got %zd bytes: %s", hex, r, g);
    }
}

static void k_nothing(struct kern *k)
{
    uint8_t got[64];
    assert_int_equal(recv(k->fd[1], got, sizeof got, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
}

/* The kernel sends this packet; the session reads it. */
static void k_send(struct kern *k, const char *hex)
{
    uint8_t b[600];
    size_t n = hex_bytes(hex, b, sizeof b);
    assert_int_equal(send(k->fd[1], b, n, 0), (ssize_t)n);
    k->now += 1000000;
    assert_int_equal(mgmt_on_readable(k->m, k->now), 0);
}

/* The index of the last note containing text (and of this level), -1 if none. */
static int k_noted(const struct kern *k, int level, const char *text)
{
    for (int i = (k->n_notes < 80 ? k->n_notes : 80) - 1; i >= 0; i--)
        if (k->levels[i] == level && strstr(k->notes[i], text))
            return i;
    return -1;
}

#define CMD_INDEX_LIST "0300 ffff 0000"
#define BONDABLE(i) "0900 " i "00 0100 01"
#define CC_BONDABLE(i) "0100 " i "00 0700 0900 00 81000000"

static void test_session(void **state)
{
    struct kern k;
    k_open(&k);
    const struct mgmt_stats *st = mgmt_stats(k.m);
    struct mgmt_ltk bad = KEY_A;
    bad.enc_size = 99;
    k.keys[0][0] = KEY_A;
    k.keys[0][1] = bad;        /* skipped, not sent */
    k.keys[0][2] = KEY_B;
    k.n_keys[0] = 3;
    k.keys[1][0] = KEY_B;
    k.n_keys[1] = 1;
    k.irks[0][0] = IRK_A;
    k.irks[0][1] = IRK_A;
    k.irks[0][1].addr[5] = 0x44; /* resolvable: skipped */
    k.n_irks[0] = 2;
    memcpy(k.accept, KEY_A.addr, 6);

    /* the controller list */
    assert_int_equal(mgmt_start(k.m, k.now), 0);
    assert_int_equal(mgmt_next_timeout(k.m), k.now + MGMT_CMD_TIMEOUT_NS);
    k_expect(&k, CMD_INDEX_LIST);
    k_nothing(&k);
    k_send(&k, "0100 ffff 0900 0300 00 0200 0000 0100");

    /* controller 0: bondable, then its two valid keys */
    k_expect(&k, BONDABLE("00"));
    k_nothing(&k); /* one command out at a time */
    assert_int_equal(k.keys_for_calls, 0);
    k_send(&k, CC_BONDABLE("00"));
    k_expect(&k, "3000 0000 1900 0100 " IRK_A_HEX);
    assert_true(k_noted(&k, MGMT_NOTE_WARN, "hci0: 1 key not loaded") >= 0);
    assert_int_equal(k.keys_for_calls, 0); /* the LTKs are taken when they go */
    k.n_notes = 0; /* the next "not loaded" is the LTKs' */
    k_send(&k, CC_IRKS("00"));
    assert_int_equal(st->irks_loaded, 1);
    k_expect(&k, "1300 0000 4a00 0200 " KEY_A_HEX KEY_B_HEX);
    assert_true(k_noted(&k, MGMT_NOTE_WARN, "hci0: 1 key not loaded") >= 0);
    assert_int_equal(st->controllers, 0);
    k_send(&k, "0100 0000 0300 1300 00");
    assert_int_equal(st->controllers, 1);
    assert_int_equal(st->keys_loaded, 2);
    assert_int_equal(st->failed, 0);
    assert_true(k_noted(&k, MGMT_NOTE_INFO,
                        "hci0: bondable, 2 keys loaded, 1 identity resolving key") >= 0);

    /* controller 1: a kernel without Load Identity Resolving Keys; then it refuses its keys */
    k_expect(&k, BONDABLE("01"));
    k_send(&k, CC_BONDABLE("01"));
    k_expect(&k, NO_IRKS("01"));
    k_send(&k, "0100 0100 0300 3000 01");
    assert_int_equal(st->failed, 1);
    assert_true(k_noted(&k, MGMT_NOTE_WARN,
                        "hci1: Load Identity Resolving Keys failed: Unknown Command (0x01)") >= 0);
    k_expect(&k, "1300 0100 2600 0100 " KEY_B_HEX);
    k_send(&k, "0100 0100 0300 1300 0d");
    assert_int_equal(st->failed, 2);
    assert_int_equal(st->controllers, 1);
    assert_int_equal(st->keys_loaded, 2);
    assert_true(k_noted(&k, MGMT_NOTE_WARN,
                        "hci1: Load Long Term Keys failed: Invalid Parameters (0x0d)") >= 0);
    k_nothing(&k);
    assert_int_equal(mgmt_next_timeout(k.m), INT64_MAX);

    /* a new key to keep, one not to keep, an invalid one */
    k_send(&k, "0a00 0000 2500 01 " KEY_A_HEX);
    assert_int_equal(k.new_keys, 1);
    assert_int_equal(k.new_index, 0);
    assert_memory_equal(&k.new_key, &KEY_A, sizeof KEY_A);
    k_send(&k, "0a00 0100 2500 00 " KEY_B_HEX);
    assert_int_equal(k.new_keys, 1);
    k_send(&k, "0a00 0000 2500 01 012f6a8d7cc4 02 04 01 10 3412 a0a1a2a3a4a5a6a7 "
               "00112233445566778899aabbccddeeff"); /* a debug key */
    assert_int_equal(k.new_keys, 1);
    assert_int_equal(st->new_keys, 1);
    assert_true(k_noted(&k, MGMT_NOTE_WARN, "hci0: new key ignored") >= 0);
    k_nothing(&k);

    /* a new identity resolving key to keep, one not to keep, one for a non-identity address */
    k_send(&k, "1800 0000 1e00 01 a1a2a3a4a5 4b " IRK_A_HEX);
    assert_int_equal(k.new_irks, 1);
    assert_memory_equal(&k.new_irk, &IRK_A, sizeof IRK_A);
    k_send(&k, "1800 0000 1e00 00 a1a2a3a4a5 4b " IRK_A_HEX);
    k_send(&k, "1800 0000 1e00 01 a1a2a3a4a5 4b 012f6a8d7c44 02 101112131415161718191a1b1c1d1e1f");
    k_send(&k, "1800 0000 1e00 01 a1a2a3a4a5 4b 012f6a8d7cc4 02 00000000000000000000000000000000");
    assert_int_equal(k.new_irks, 1);
    assert_int_equal(st->new_irks, 1);
    assert_true(k_noted(&k, MGMT_NOTE_WARN, "hci0: new identity resolving key ignored") >= 0);
    k_nothing(&k);

    /* Just Works: yes for the accepted device, no for another */
    k_send(&k, "0f00 0000 0c00 012f6a8d7cc4 02 01 00000000");
    k_expect(&k, "1c00 0000 0700 012f6a8d7cc4 02");
    k_send(&k, "0100 0000 0a00 1c00 00 012f6a8d7cc4 02");
    k_send(&k, "0f00 0100 0c00 0a2f6a8d7cc4 02 01 00000000");
    k_expect(&k, "1d00 0100 0700 0a2f6a8d7cc4 02");
    assert_int_equal(st->confirmed, 1);
    assert_int_equal(st->refused, 1);
    assert_int_equal(k.confirms, 2);
    assert_true(k_noted(&k, MGMT_NOTE_INFO, "hci1: pairing with C4:7C:8D:6A:2F:0A") >= 0);

    /* the Negative Reply is never answered: once its deadline passes it fails and the
     * next command goes out */
    k_send(&k, "0f00 0000 0c00 012f6a8d7cc4 01 01 00000000"); /* public: refused */
    k_nothing(&k);
    int64_t dl = mgmt_next_timeout(k.m);
    assert_true(dl > k.now && dl != INT64_MAX);
    mgmt_on_timer(k.m, dl - 1);
    k_nothing(&k);
    assert_int_equal(st->failed, 2);
    mgmt_on_timer(k.m, dl);
    assert_int_equal(st->failed, 3);
    assert_true(k_noted(&k, MGMT_NOTE_WARN,
                        "hci1: User Confirmation Negative Reply not answered in 2 s") >= 0);
    k_expect(&k, "1d00 0000 0700 012f6a8d7cc4 01");
    assert_int_equal(mgmt_next_timeout(k.m), dl + MGMT_CMD_TIMEOUT_NS);
    /* its late answer is not taken for the one out */
    k_send(&k, "0100 0100 0a00 1d00 00 0a2f6a8d7cc4 02");
    assert_int_equal(mgmt_next_timeout(k.m), dl + MGMT_CMD_TIMEOUT_NS);
    k.now = dl + 1000;
    k_send(&k, "0100 0000 0a00 1d00 00 012f6a8d7cc4 01");
    assert_int_equal(mgmt_next_timeout(k.m), INT64_MAX);

    /* a controller added: bondable and its (no) keys */
    k_send(&k, "0400 0200 0000");
    k_expect(&k, BONDABLE("02"));
    k_send(&k, CC_BONDABLE("02"));
    k_expect(&k, NO_IRKS("02"));
    k_send(&k, CC_IRKS("02"));
    k_expect(&k, "1300 0200 0200 0000");
    k_send(&k, "0100 0200 0300 1300 00");
    assert_int_equal(st->controllers, 2);
    assert_int_equal(st->keys_loaded, 2);
    assert_true(k_noted(&k, MGMT_NOTE_INFO, "hci2: bondable, 0 keys loaded") >= 0);
    assert_int_equal(k_noted(&k, MGMT_NOTE_INFO, "hci2: bondable, 0 keys loaded, "), -1);

    /* malformed packets are counted and noted; the session goes on */
    int notes = k.n_notes;
    k_send(&k, "0f00 0000 0b00 012f6a8d7cc4 02 01 000000");
    k_send(&k, "0100 0000 0500 1c00");
    assert_int_equal(st->malformed, 2);
    assert_int_equal(k.n_notes, notes + 2);
    assert_int_equal(k.levels[notes], MGMT_NOTE_WARN);
    assert_non_null(strstr(k.notes[notes], "malformed"));
    k_send(&k, "0f00 0000 0c00 012f6a8d7cc4 02 01 00000000");
    k_expect(&k, "1c00 0000 0700 012f6a8d7cc4 02");
    /* other events are ignored */
    k_send(&k, "0600 0000 0400 01000000");
    k_nothing(&k);
    assert_int_equal(st->malformed, 2);

    /* the kernel side closes */
    close(k.fd[1]);
    k.fd[1] = -1;
    assert_int_equal(mgmt_on_readable(k.m, k.now), -EPIPE);
    assert_int_equal(st->failed, 3);
    k_close(&k);
}

/* A refused Set Bondable: the keys still go, the controller is not counted as set up. A
 * Command Status with success only says "pending"; one with an error ends the command. */
static void test_bondable_refused_and_status(void **state)
{
    struct kern k;
    k_open(&k);
    const struct mgmt_stats *st = mgmt_stats(k.m);
    k.keys[0][0] = KEY_A;
    k.n_keys[0] = 1;
    assert_int_equal(mgmt_start(k.m, k.now), 0);
    k_expect(&k, CMD_INDEX_LIST);
    k_send(&k, "0100 ffff 0700 0300 00 0100 0000");
    k_expect(&k, BONDABLE("00"));
    k_send(&k, "0200 0000 0300 0900 00"); /* pending */
    k_nothing(&k);
    assert_int_equal(st->failed, 0);
    k_send(&k, "0200 0000 0300 0900 0f"); /* Not Powered */
    assert_int_equal(st->failed, 1);
    assert_true(k_noted(&k, MGMT_NOTE_WARN, "hci0: Set Bondable failed: Not Powered (0x0f)") >= 0);
    k_expect(&k, NO_IRKS("00"));
    k_send(&k, CC_IRKS("00"));
    k_expect(&k, "1300 0000 2600 0100 " KEY_A_HEX);
    k_send(&k, "0100 0000 0300 1300 00");
    assert_int_equal(st->controllers, 0);
    assert_int_equal(st->keys_loaded, 1);
    assert_true(k_noted(&k, MGMT_NOTE_INFO, "hci0: not bondable, 1 key loaded") >= 0);
    /* a status code without a name here */
    k_send(&k, "0f00 0000 0c00 012f6a8d7cc4 02 01 00000000");
    k_expect(&k, "1d00 0000 0700 012f6a8d7cc4 02");
    k_send(&k, "0200 0000 0300 1d00 99");
    assert_int_equal(st->failed, 2);
    assert_true(k_noted(&k, MGMT_NOTE_WARN, "(0x99)") >= 0);
    /* the list itself refused */
    assert_int_equal(mgmt_start(k.m, k.now), 0);
    k_expect(&k, CMD_INDEX_LIST);
    k_send(&k, "0100 ffff 0300 0300 14");
    assert_int_equal(st->failed, 3);
    assert_int_equal(k_noted(&k, MGMT_NOTE_WARN,
                             "Read Controller Index List failed: Permission Denied (0x14)"),
                     k.n_notes - 1);
    /* a list its count does not fit: malformed, nothing sent */
    assert_int_equal(mgmt_start(k.m, k.now), 0);
    k_expect(&k, CMD_INDEX_LIST);
    k_send(&k, "0100 ffff 0700 0300 00 0200 0000");
    assert_int_equal(st->malformed, 1);
    k_nothing(&k);
    k_close(&k);
}

/* Index Removed drops what waits for that controller, not what is out. */
static void test_index_removed(void **state)
{
    struct kern k;
    k_open(&k);
    const struct mgmt_stats *st = mgmt_stats(k.m);
    assert_int_equal(mgmt_start(k.m, k.now), 0);
    k_expect(&k, CMD_INDEX_LIST);
    k_send(&k, "0100 ffff 0900 0300 00 0200 0000 0100");
    k_expect(&k, BONDABLE("00"));
    k_send(&k, "0500 0100 0000"); /* controller 1 goes */
    k_send(&k, "0500 0000 0000"); /* and controller 0, whose Set Bondable is out */
    k_nothing(&k);
    k_send(&k, "0100 0000 0300 0900 11"); /* the kernel cancels it */
    assert_int_equal(st->failed, 1);
    k_nothing(&k); /* no Load LTKs for 0, nothing for 1 */
    assert_int_equal(k.keys_for_calls, 0);
    assert_int_equal(mgmt_next_timeout(k.m), INT64_MAX);
    /* Index Added twice while one waits: set up once */
    k_send(&k, "0f00 0000 0c00 012f6a8d7cc4 02 01 00000000");
    k_expect(&k, "1d00 0000 0700 012f6a8d7cc4 02");
    k_send(&k, "0400 0100 0000");
    k_send(&k, "0400 0100 0000");
    k_send(&k, "0100 0000 0a00 1d00 00 012f6a8d7cc4 02");
    k_expect(&k, BONDABLE("01"));
    k_send(&k, CC_BONDABLE("01"));
    k_expect(&k, NO_IRKS("01"));
    k_send(&k, CC_IRKS("01"));
    k_expect(&k, "1300 0100 0200 0000");
    k_send(&k, "0100 0100 0300 1300 00");
    k_nothing(&k);
    assert_int_equal(st->controllers, 1);
    k_close(&k);
}

/* At most MGMT_MAX_QUEUE commands wait behind the one out. */
static void test_queue_bound(void **state)
{
    struct kern k;
    k_open(&k);
    const struct mgmt_stats *st = mgmt_stats(k.m);
    assert_int_equal(mgmt_start(k.m, k.now), 0);
    k_expect(&k, CMD_INDEX_LIST);
    for (int i = 0; i < MGMT_MAX_QUEUE + 2; i++) {
        char ev[80];
        snprintf(ev, sizeof ev, "0f00 0000 0c00 %02x2f6a8d7cc4 02 01 00000000", i);
        k_send(&k, ev);
    }
    assert_int_equal(st->refused, MGMT_MAX_QUEUE + 2);
    assert_true(k_noted(&k, MGMT_NOTE_WARN, "User Confirmation Negative Reply dropped") >= 0);
    int dropped = 0;
    for (int i = 0; i < k.n_notes && i < 80; i++)
        dropped += strstr(k.notes[i], "dropped") != NULL;
    assert_int_equal(dropped, 2);
    /* the list answered with nothing: the waiting replies go, in order */
    k_send(&k, "0100 ffff 0500 0300 00 0000");
    for (int i = 0; i < MGMT_MAX_QUEUE; i++) {
        char cmd[80], cc[80];
        snprintf(cmd, sizeof cmd, "1d00 0000 0700 %02x2f6a8d7cc4 02", i);
        k_expect(&k, cmd);
        snprintf(cc, sizeof cc, "0100 0000 0a00 1d00 00 %02x2f6a8d7cc4 02", i);
        k_send(&k, cc);
    }
    k_nothing(&k);
    assert_int_equal(st->failed, 0);
    k_close(&k);
}

/* Fills the session's socket with junk until it would block: how many went. */
static int k_fill(struct kern *k)
{
    uint8_t junk[512] = {0};
    int filled = 0;
    while (send(k->fd[0], junk, sizeof junk, MSG_DONTWAIT) == (ssize_t)sizeof junk)
        filled++;
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    assert_true(filled > 0);
    return filled;
}

static void k_drain(struct kern *k, int filled)
{
    uint8_t b[600];
    for (int i = 0; i < filled; i++)
        assert_int_equal(recv(k->fd[1], b, sizeof b, MSG_DONTWAIT), 512);
}

/* A socket that does not take the command yet: it waits for POLLOUT, and its deadline
 * starts when it goes; a controller removed meanwhile takes its commands with it. A socket
 * that fails: the command counts as failed. */
static void test_eagain_and_send_error(void **state)
{
    struct kern k;
    k_open(&k);
    const struct mgmt_stats *st = mgmt_stats(k.m);
    /* a controller added and removed while its Set Bondable cannot go */
    int filled = k_fill(&k);
    k_send(&k, "0400 0300 0000");
    assert_int_equal(mgmt_want_write(k.m), 1);
    assert_int_equal(mgmt_next_timeout(k.m), INT64_MAX);
    k_send(&k, "0500 0300 0000");
    assert_int_equal(mgmt_want_write(k.m), 0);
    k_drain(&k, filled);
    assert_int_equal(mgmt_on_writable(k.m, k.now), 0);
    k_nothing(&k);
    assert_int_equal(k.keys_for_calls, 0);
    assert_int_equal(st->failed, 0);

    /* the list cannot go at once */
    filled = k_fill(&k);
    assert_int_equal(mgmt_start(k.m, k.now), 0);
    assert_int_equal(mgmt_want_write(k.m), 1);
    assert_int_equal(mgmt_next_timeout(k.m), INT64_MAX);
    mgmt_on_timer(k.m, k.now + 10 * MGMT_CMD_TIMEOUT_NS);
    assert_int_equal(st->failed, 0);
    assert_int_equal(mgmt_want_write(k.m), 1);
    /* the kernel reads; the fd is writable again */
    k_drain(&k, filled);
    k.now += 5 * SEC;
    assert_int_equal(mgmt_on_writable(k.m, k.now), 0);
    assert_int_equal(mgmt_want_write(k.m), 0);
    assert_int_equal(mgmt_next_timeout(k.m), k.now + MGMT_CMD_TIMEOUT_NS);
    k_expect(&k, CMD_INDEX_LIST);
    /* the kernel side goes: a command that cannot be sent fails at once */
    k_send(&k, "0100 ffff 0300 0300 00"); /* too short for a list: malformed, done */
    assert_int_equal(st->malformed, 1);
    close(k.fd[1]);
    k.fd[1] = -1;
    assert_int_equal(mgmt_start(k.m, k.now), -EPIPE);
    assert_int_equal(st->failed, 1);
    assert_true(k_noted(&k, MGMT_NOTE_WARN, "Read Controller Index List not sent") >= 0);
    assert_int_equal(mgmt_want_write(k.m), 0);
    assert_int_equal(mgmt_next_timeout(k.m), INT64_MAX);
    k_close(&k);
}

/* A packet longer than any mgmt packet is malformed, not cut and parsed. */
static void test_oversized_packet(void **state)
{
    struct kern k;
    k_open(&k);
    int sz = 200000;
    assert_int_equal(setsockopt(k.fd[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz), 0);
    assert_int_equal(setsockopt(k.fd[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz), 0);
    size_t n = 65541 + 10;
    uint8_t *big = calloc(1, n);
    assert_non_null(big);
    big[0] = 0x0f; /* a confirmation request, if it were taken cut */
    big[4] = 0x0c;
    ssize_t r = send(k.fd[1], big, n, 0);
    free(big);
    if (r < 0)
        skip(); /* the socket buffer limits do not allow it here */
    assert_int_equal(mgmt_on_readable(k.m, k.now), 0);
    assert_int_equal(mgmt_stats(k.m)->malformed, 1);
    assert_int_equal(k.confirms, 0);
    k_close(&k);
}

static void test_open_fails_cleanly(void **state)
{
    char why[160] = "";
    int fd = mgmt_open(why, sizeof why);
    if (fd >= 0) {
        close(fd); /* a host with Bluetooth and CAP_NET_ADMIN: nothing to check */
        skip();
    }
    assert_true(why[0] != '\0');
    if (fd == -EAFNOSUPPORT)
        assert_string_equal(why, "no Bluetooth in this kernel");
    else if (fd == -EPERM || fd == -EACCES)
        assert_string_equal(why, "no CAP_NET_ADMIN: the mgmt socket needs it");
    else if (fd == -EPROTONOSUPPORT)
        assert_string_equal(why, "this engaged was built without Bluetooth support (libbluetooth)");
    assert_true(mgmt_open(NULL, 0) < 0); /* no room for a reason: still fails cleanly */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ltk_valid),
        cmocka_unit_test(test_irk_valid),
        cmocka_unit_test(test_load_irks),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_load_ltks),
        cmocka_unit_test(test_parse_events),
        cmocka_unit_test(test_parse_index_list),
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_bondable_refused_and_status),
        cmocka_unit_test(test_index_removed),
        cmocka_unit_test(test_queue_bound),
        cmocka_unit_test(test_eagain_and_send_error),
        cmocka_unit_test(test_oversized_packet),
        cmocka_unit_test(test_open_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
