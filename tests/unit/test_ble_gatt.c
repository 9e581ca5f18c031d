/* drivers/ble_gatt.c and ble_gatt_db.c against scripted servers: the conformance exchanges
 * of the BLE reference §5.2 byte for byte (A+B: MTU and discovery of a Heart Rate database;
 * C: CCCD write then notification; D: indication then confirmation; E: mixed 16/128-bit
 * services, two descriptors in one response, Read, Read of an invalid handle, Read By Type,
 * Find By Type Value), long reads through Read Blob, error and malformed responses during
 * discovery, handles that do not advance, limits, a server that never answers (30 s of test
 * time), a disconnect mid-discovery, freeing from callbacks, a CCCD write and a read refused
 * for want of security and sent again after the raise, and the attribute cache (blob round
 * trip, corruption, eviction, discovery skipped on an unchanged Database Hash, its changes
 * reported, hostile blobs refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "drivers/ble_gatt.h"
#include "tests/ble_script.h"

struct ctx {
    struct peer p;
    struct gatt *g;
    int ready_calls, ready_err, destroyed;
    int free_in_ready;
    int reads, read_err;
    uint8_t read_ecode, value[600];
    size_t value_len;
    int writes, write_err;
    int notes;
    uint16_t note_handle;
    uint8_t note[600];
    size_t note_len;
    int changed;
};

static void on_ready(struct gatt *g, int err, void *ud)
{
    struct ctx *c = ud;
    c->ready_calls++;
    c->ready_err = err;
    if (c->free_in_ready) {
        c->g = gatt_free(g);
        c->p.att = att_free(c->p.att);
    }
}

static void on_destroy(void *ud)
{
    ((struct ctx *)ud)->destroyed++;
}

static void on_read(struct gatt *g, int err, uint8_t ecode, const uint8_t *v, size_t len,
                    void *ud)
{
    struct ctx *c = ud;
    c->reads++;
    c->read_err = err;
    c->read_ecode = ecode;
    c->value_len = len;
    if (len)
        memcpy(c->value, v, len);
}

static void on_write(struct gatt *g, int err, uint8_t ecode, void *ud)
{
    struct ctx *c = ud;
    c->writes++;
    c->write_err = err;
}

static void on_note(struct gatt *g, uint16_t h, const uint8_t *v, size_t len, int64_t at,
                    void *ud)
{
    struct ctx *c = ud;
    c->notes++;
    c->note_handle = h;
    c->note_len = len;
    memcpy(c->note, v, len);
}

static void start(struct ctx *c, uint16_t mtu, const struct att_uuid *wanted, size_t n_wanted,
                  struct gatt_cache *cache)
{
    memset(c, 0, sizeof *c);
    peer_open(&c->p);
    struct gatt_opts o = {.mtu = mtu, .wanted = wanted, .n_wanted = n_wanted, .cache = cache,
                          .device = "C4:7C:8D:6A:2F:01/random", .ready = on_ready,
                          .user_data = c, .destroy = on_destroy};
    c->g = gatt_new(c->p.att, &o);
    assert_non_null(c->g);
}

static void finish(struct ctx *c)
{
    c->g = gatt_free(c->g);
    peer_close(&c->p);
}

/* §5.2 A then B */
static const char *const script_ab[] = {
    "> 02 00 02", "< 03 00 02",
    "> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a",
    "> 10 01 00 ff ff 00 28", "< 11 06 01 00 04 00 01 18",
    "> 10 05 00 ff ff 00 28", "< 11 06 05 00 08 00 0d 18",
    "> 10 09 00 ff ff 00 28", "< 01 10 09 00 0a",
    "> 10 01 00 ff ff 01 28", "< 01 10 01 00 0a",
    "> 08 01 00 08 00 02 28", "< 01 08 01 00 0a",
    "> 08 01 00 08 00 03 28", "< 09 07 02 00 02 03 00 00 2a",
    "> 08 03 00 08 00 03 28", "< 09 07 06 00 0a 07 00 29 2a",
    "> 08 07 00 08 00 03 28", "< 01 08 07 00 0a",
    "> 04 04 00 04 00", "< 05 01 04 00 01 29",
    "> 04 08 00 08 00", "< 05 01 08 00 01 29",
    NULL,
};

static void test_conformance_AB_heart_rate_discovery(void **state)
{
    struct ctx c;
    struct att_uuid hr = att_uuid16(0x180D), bat = att_uuid16(0x180F);
    start(&c, 512, &hr, 1, NULL);
    for (size_t i = 0; script_ab[i + 1]; i++) {
        if (script_ab[i][0] == '>')
            assert_int_equal(c.ready_calls, 0);
        run_script(&c.p, (const char *const[]){script_ab[i], NULL});
    }
    run_script(&c.p, (const char *const[]){"< 05 01 08 00 01 29", NULL});
    expect_none(&c.p);
    assert_int_equal(c.ready_calls, 1);
    assert_int_equal(c.ready_err, 0);
    assert_true(gatt_is_ready(c.g));
    assert_int_equal(att_mtu(c.p.att), 512);
    const struct gatt_db *db = gatt_get_db(c.g);
    assert_int_equal(db->n_svc, 2);
    assert_int_equal(db->svc[0].start, 1);
    assert_int_equal(db->svc[0].end, 4);
    struct att_uuid u1801 = att_uuid16(0x1801), u2a00 = att_uuid16(0x2A00),
                    u2a29 = att_uuid16(0x2A29), u2901 = att_uuid16(0x2901);
    assert_true(att_uuid_eq(&db->svc[0].uuid, &u1801));
    assert_true(att_uuid_eq(&db->svc[1].uuid, &hr));
    assert_int_equal(db->svc[1].start, 5);
    assert_int_equal(db->svc[1].end, 8);
    assert_int_equal(db->n_chrc, 2);
    assert_int_equal(db->chrc[0].decl, 2);
    assert_int_equal(db->chrc[0].value, 3);
    assert_int_equal(db->chrc[0].end, 4);
    assert_int_equal(db->chrc[0].props, 0x02);
    assert_true(att_uuid_eq(&db->chrc[0].uuid, &u2a00));
    assert_int_equal(db->chrc[1].decl, 6);
    assert_int_equal(db->chrc[1].value, 7);
    assert_int_equal(db->chrc[1].props, 0x0a);
    assert_int_equal(db->chrc[1].service, 1);
    assert_true(att_uuid_eq(&db->chrc[1].uuid, &u2a29));
    assert_int_equal(db->n_desc, 2);
    assert_int_equal(db->desc[1].handle, 8);
    assert_true(att_uuid_eq(&db->desc[1].uuid, &u2901));
    assert_int_equal(db->chrc[1].n_desc, 1);
    assert_int_equal(db->chrc[1].cccd, 0);
    assert_ptr_equal(gatt_db_chrc(db, gatt_db_service(db, &hr), &u2a29), &db->chrc[1]);
    assert_null(gatt_db_chrc(db, gatt_db_service(db, &hr), &u2a00));
    assert_ptr_equal(gatt_db_chrc_by_value(db, 3), &db->chrc[0]);
    /* no CCCD, no notify */
    assert_int_equal(gatt_subscribe(c.g, 7, on_note, NULL, &c, NULL), -ENOENT);
    assert_int_equal(gatt_subscribe(c.g, 99, on_note, NULL, &c, NULL), -ENOENT);
    finish(&c);
    assert_int_equal(c.destroyed, 1);

    /* the same exchange with a wanted service that is not there */
    start(&c, 512, &bat, 1, NULL);
    run_script(&c.p, script_ab);
    assert_int_equal(c.ready_err, -ENOENT);
    assert_true(gatt_is_ready(c.g));
    finish(&c);
}

/* a small database: 0x180D at 0x0001-0x0004, HRM value 0x0003 (notify), CCCD 0x0004 */
static const char *const script_small[] = {
    "> 08 01 00 ff ff 3a 2b", "< 09 03 05 00 01",
    "> 10 01 00 ff ff 00 28", "< 11 06 01 00 04 00 0d 18",
    "> 10 05 00 ff ff 00 28", "< 01 10 05 00 0a",
    "> 10 01 00 ff ff 01 28", "< 01 10 01 00 0a",
    "> 08 01 00 04 00 02 28", "< 01 08 01 00 0a",
    "> 08 01 00 04 00 03 28", "< 09 07 02 00 10 03 00 37 2a",
    "> 08 03 00 04 00 03 28", "< 01 08 03 00 0a",
    "> 04 04 00 04 00", "< 05 01 04 00 02 29",
    NULL,
};

static void test_conformance_C_cccd_then_notification(void **state)
{
    struct ctx c;
    start(&c, 23, NULL, 0, NULL);
    run_script(&c.p, script_small);
    assert_int_equal(c.ready_err, 0);
    assert_int_equal(gatt_server_features(c.g), 1);
    assert_int_equal(gatt_get_db(c.g)->chrc[0].cccd, 4);
    assert_true(gatt_subscribe(c.g, 3, on_note, on_write, &c, NULL) > 0);
    expect_pdu(&c.p, "12 04 00 01 00");
    peer_send(&c.p, "13");
    assert_int_equal(c.writes, 1);
    assert_int_equal(c.write_err, 0);
    peer_send(&c.p, "1b 03 00 01 02 03");
    assert_int_equal(c.notes, 1);
    assert_int_equal(c.note_handle, 3);
    assert_int_equal(c.note_len, 3);
    assert_memory_equal(c.note, "\x01\x02\x03", 3);
    expect_none(&c.p);
    peer_send(&c.p, "1b 05 00 01");    /* another handle: not this subscriber's */
    assert_int_equal(c.notes, 1);
    finish(&c);
}

static void test_conformance_D_indication_then_confirmation(void **state)
{
    struct ctx c, other;
    memset(&other, 0, sizeof other);
    start(&c, 23, NULL, 0, NULL);
    run_script(&c.p, script_small);
    assert_true(gatt_register_notify(c.g, 8, on_note, &other, NULL) > 0);
    int all = gatt_register_notify(c.g, 0, on_note, &c, NULL);
    assert_true(all > 0);
    assert_true(gatt_write_cccd(c.g, 9, 0x0002, on_write, &c, NULL) > 0);
    expect_pdu(&c.p, "12 09 00 02 00");
    peer_send(&c.p, "13");
    assert_int_equal(c.writes, 1);
    peer_send(&c.p, "1d 03 00 01 02 03");
    expect_pdu(&c.p, "1e");
    assert_int_equal(other.notes, 0);    /* subscribed to 0x0008, not 0x0003 */
    assert_int_equal(c.notes, 1);        /* the catch-all registration */
    assert_int_equal(c.note_handle, 3);
    assert_int_equal(gatt_unregister(c.g, all), 0);
    assert_int_equal(gatt_unregister(c.g, all), -ENOENT);
    peer_send(&c.p, "1d 03 00 04");
    expect_pdu(&c.p, "1e");
    assert_int_equal(c.notes, 1);
    finish(&c);
}

static void test_conformance_E_mixed_uuids_and_descriptors(void **state)
{
    static const char *const script[] = {
        "> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a",
        "> 10 01 00 ff ff 00 28", "< 11 06 01 00 0f 00 00 18",
        "> 10 10 00 ff ff 00 28",
        "< 11 14 90 00 96 00 ef cd ab 89 67 45 23 01 00 00 00 00 85 60 00 00",
        "> 10 97 00 ff ff 00 28", "< 01 10 97 00 0a",
        "> 10 01 00 ff ff 01 28", "< 01 10 01 00 0a",
        "> 08 01 00 96 00 02 28", "< 01 08 01 00 0a",
        "> 08 01 00 96 00 03 28",
        "< 09 15 92 00 12 93 00 d0 42 19 3a 3b 43 23 8e fe 48 fc 78 02 00 03 00",
        "> 08 93 00 96 00 03 28", "< 01 08 93 00 0a",
        "> 04 94 00 96 00", "< 05 01 94 00 02 29 95 00 01 29",
        "> 04 96 00 96 00", "< 01 04 96 00 0a",
        NULL,
    };
    struct ctx c;
    struct att_uuid u, raw;
    char s[40];
    start(&c, 23, NULL, 0, NULL);
    run_script(&c.p, script);
    assert_int_equal(c.ready_err, 0);
    const struct gatt_db *db = gatt_get_db(c.g);
    assert_int_equal(db->n_svc, 2);
    assert_string_equal(att_uuid_str(&db->svc[1].uuid, s, sizeof s),
                        "00006085-0000-0000-0123-456789abcdef");
    assert_int_equal(att_uuid_parse(&raw, "00030002-78fc-48fe-8e23-433b3a1942d0"), 0);
    assert_int_equal(db->n_chrc, 1);
    assert_true(att_uuid_eq(&db->chrc[0].uuid, &raw));
    assert_int_equal(db->chrc[0].service, 1);
    assert_int_equal(db->chrc[0].end, 0x96);
    assert_int_equal(db->n_desc, 2);
    assert_int_equal(db->chrc[0].n_desc, 2);
    assert_int_equal(db->chrc[0].cccd, 0x94);
    u = att_uuid16(0x2901);
    assert_true(att_uuid_eq(&db->desc[1].uuid, &u));

    /* Read (/TP/GAR/CL/BV-01-C) and an invalid handle (BI-01-C) */
    assert_true(gatt_read(c.g, 3, on_read, &c, NULL) > 0);
    expect_pdu(&c.p, "0a 03 00");
    peer_send(&c.p, "0b 01 02 03");
    assert_int_equal(c.reads, 1);
    assert_int_equal(c.read_err, 0);
    assert_int_equal(c.value_len, 3);
    assert_memory_equal(c.value, "\x01\x02\x03", 3);
    assert_true(gatt_read(c.g, 0, on_read, &c, NULL) > 0);
    expect_pdu(&c.p, "0a 00 00");
    peer_send(&c.p, "01 0a 00 00 01");
    assert_int_equal(c.reads, 2);
    assert_int_equal(c.read_err, -EINVAL);
    assert_int_equal(c.read_ecode, ATT_ECODE_INVALID_HANDLE);
    finish(&c);
}

struct raw {
    int calls;
    int err;
    uint8_t op;
    size_t len;
    uint8_t b[64];
};

static void on_raw(struct att *a, const struct att_rsp *rsp, void *ud)
{
    struct raw *r = ud;
    r->calls++;
    r->err = rsp->err;
    r->op = rsp->opcode;
    r->len = rsp->len;
    if (rsp->params && rsp->len <= sizeof r->b)
        memcpy(r->b, rsp->params, rsp->len);
}

/* Read By Type (/TP/GAR/CL/BV-03-C-1) and Primary by UUID (/TP/GAD/CL/BV-02-C-1) at the
 * bearer: the requests go out as given and the responses parse as the reference says. */
static void test_conformance_E_bearer_vectors(void **state)
{
    struct peer p;
    struct raw r = {0};
    struct att_list l;
    uint8_t q[16];
    peer_open(&p);
    size_t n = hex_bytes("01 00 ff ff 0d 2a", q, sizeof q);
    assert_true(att_send(p.att, ATT_OP_READ_BY_TYPE_REQ, q, n, on_raw, &r, NULL) > 0);
    run_script(&p, (const char *const[]){"> 08 01 00 ff ff 0d 2a", "< 09 05 0a 00 01 02 03",
                                         NULL});
    assert_int_equal(r.err, 0);
    assert_int_equal(att_parse_read_by_type(r.b, r.len, &l), 0);
    assert_int_equal(l.count, 1);
    assert_int_equal(att_get16(att_list_entry(&l, 0)), 0x0a);
    assert_memory_equal(att_list_entry(&l, 0) + 2, "\x01\x02\x03", 3);
    n = hex_bytes("0b 00 ff ff 0d 2a", q, sizeof q);
    assert_true(att_send(p.att, ATT_OP_READ_BY_TYPE_REQ, q, n, on_raw, &r, NULL) > 0);
    run_script(&p, (const char *const[]){"> 08 0b 00 ff ff 0d 2a", "< 01 08 0b 00 0a", NULL});
    assert_int_equal(r.err, -ENOENT);

    n = hex_bytes("01 00 ff ff 00 28 00 18", q, sizeof q);
    assert_true(att_send(p.att, ATT_OP_FIND_BY_TYPE_REQ, q, n, on_raw, &r, NULL) > 0);
    run_script(&p, (const char *const[]){"> 06 01 00 ff ff 00 28 00 18", "< 07 01 00 07 00",
                                         NULL});
    assert_int_equal(r.err, 0);
    assert_int_equal(att_parse_find_by_type(r.b, r.len, &l), 0);
    assert_int_equal(att_get16(att_list_entry(&l, 0) + 2), 7);
    n = hex_bytes("08 00 ff ff 00 28 00 18", q, sizeof q);
    assert_true(att_send(p.att, ATT_OP_FIND_BY_TYPE_REQ, q, n, on_raw, &r, NULL) > 0);
    run_script(&p, (const char *const[]){"> 06 08 00 ff ff 00 28 00 18", "< 01 06 08 00 0a",
                                         NULL});
    assert_int_equal(r.err, -ENOENT);
    assert_int_equal(r.calls, 4);
    peer_close(&p);
}

static void test_long_read(void **state)
{
    static const char *const empty[] = {
        "> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a",
        "> 10 01 00 ff ff 00 28", "< 01 10 01 00 0a",
        "> 10 01 00 ff ff 01 28", "< 01 10 01 00 0a",
        NULL,
    };
    struct ctx c;
    start(&c, 23, NULL, 0, NULL);
    run_script(&c.p, empty);
    assert_int_equal(c.ready_err, 0);
    assert_int_equal(gatt_get_db(c.g)->n_svc, 0);
    /* 22 + 22 + 5 bytes */
    assert_true(gatt_read(c.g, 3, on_read, &c, NULL) > 0);
    run_script(&c.p, (const char *const[]){
        "> 0a 03 00", "< 0b 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15",
        "> 0c 03 00 16 00",
        "< 0d 16 17 18 19 1a 1b 1c 1d 1e 1f 20 21 22 23 24 25 26 27 28 29 2a 2b",
        "> 0c 03 00 2c 00", "< 0d 2c 2d 2e 2f 30", NULL});
    assert_int_equal(c.reads, 1);
    assert_int_equal(c.read_err, 0);
    assert_int_equal(c.value_len, 49);
    for (size_t i = 0; i < 49; i++)
        assert_int_equal(c.value[i], i);
    /* exactly 22 bytes: the server says Attribute Not Long to the blob */
    assert_true(gatt_read(c.g, 4, on_read, &c, NULL) > 0);
    run_script(&c.p, (const char *const[]){
        "> 0a 04 00", "< 0b 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15",
        "> 0c 04 00 16 00", "< 01 0c 04 00 0b", NULL});
    assert_int_equal(c.reads, 2);
    assert_int_equal(c.read_err, 0);
    assert_int_equal(c.value_len, 22);
    /* a blob failing otherwise fails the read */
    assert_true(gatt_read(c.g, 5, on_read, &c, NULL) > 0);
    run_script(&c.p, (const char *const[]){
        "> 0a 05 00", "< 0b 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15",
        "> 0c 05 00 16 00", "< 01 0c 05 00 05", NULL});
    assert_int_equal(c.read_err, -EACCES);
    assert_int_equal(c.value_len, 0);
    /* writes: a value longer than MTU - 3 is refused before it is sent */
    uint8_t v[21] = {0};
    assert_int_equal(gatt_write(c.g, 3, v, 21, on_write, &c, NULL), -EMSGSIZE);
    assert_true(gatt_write(c.g, 3, v, 20, on_write, &c, NULL) > 0);
    expect_pdu(&c.p, "12 03 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
    peer_send(&c.p, "01 12 03 00 03");
    assert_int_equal(c.write_err, -EPERM);
    assert_int_equal(gatt_write_cmd(c.g, 3, v, 2), 0);
    expect_pdu(&c.p, "52 03 00 00 00");
    /* a cancelled read never calls back */
    int id = gatt_read(c.g, 6, on_read, &c, on_destroy);
    assert_int_equal(gatt_cancel(c.g, id), 0);
    assert_int_equal(c.destroyed, 1);
    assert_int_equal(gatt_cancel(c.g, id), -ENOENT);
    expect_pdu(&c.p, "0a 06 00");
    peer_send(&c.p, "0b 01");
    assert_int_equal(c.reads, 3);
    finish(&c);
}

/* discovery stopped by one bad response; every case expects ready(err) */
static void test_discovery_failures(void **state)
{
    static const struct { const char *rsp; int err; } cases[] = {
        {"01 10 01 00 0e", -EIO},                                 /* Unlikely Error */
        {"01 10 01 00 05", -EACCES},                              /* authentication */
        {"11 05 01 00 04 00 01", -EPROTO},                        /* entry length 5 */
        {"11 06 01 00 04 00 01", -EPROTO},                        /* torn entry */
        {"11 06 04 00 01 00 01 18", -EPROTO},                     /* end < start */
        {"11 06 00 00 01 00 01 18", -EPROTO},                     /* handle 0 */
        {"0b 01", -EPROTO},                                       /* wrong opcode */
        {"01 10 01 00", -EPROTO},                                 /* truncated error */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ctx c;
        start(&c, 23, NULL, 0, NULL);
        run_script(&c.p, (const char *const[]){"> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a",
                                               "> 10 01 00 ff ff 00 28", NULL});
        peer_send(&c.p, cases[i].rsp);
        if (c.ready_calls != 1 || c.ready_err != cases[i].err)
            fail_msg("case %zu (%s): ready %d err %d", i, cases[i].rsp, c.ready_calls,
                     c.ready_err);
        assert_false(gatt_is_ready(c.g));
        expect_none(&c.p);
        finish(&c);
    }
}

static void test_discovery_hostile_handles(void **state)
{
    static const char *const head[] = {
        "> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a",
        "> 10 01 00 ff ff 00 28", "< 11 06 05 00 08 00 0d 18",
        "> 10 09 00 ff ff 00 28", NULL,
    };
    static const char *const tails[][16] = {
        /* a service before the cursor (would loop) */
        {"< 11 06 03 00 04 00 0f 18", NULL},
        /* overlapping secondary service */
        {"< 01 10 09 00 0a", "> 10 01 00 ff ff 01 28", "< 11 06 06 00 07 00 0f 18",
         "> 10 08 00 ff ff 01 28", "< 01 10 08 00 0a", NULL},
        /* characteristic whose value handle is not after its declaration */
        {"< 01 10 09 00 0a", "> 10 01 00 ff ff 01 28", "< 01 10 01 00 0a",
         "> 08 05 00 08 00 02 28", "< 01 08 05 00 0a", "> 08 05 00 08 00 03 28",
         "< 09 07 06 00 02 06 00 37 2a", NULL},
        /* characteristic outside the range asked for */
        {"< 01 10 09 00 0a", "> 10 01 00 ff ff 01 28", "< 01 10 01 00 0a",
         "> 08 05 00 08 00 02 28", "< 01 08 05 00 0a", "> 08 05 00 08 00 03 28",
         "< 09 07 09 00 02 0a 00 37 2a", NULL},
        /* characteristic declarations not increasing */
        {"< 01 10 09 00 0a", "> 10 01 00 ff ff 01 28", "< 01 10 01 00 0a",
         "> 08 05 00 08 00 02 28", "< 01 08 05 00 0a", "> 08 05 00 08 00 03 28",
         "< 09 07 06 00 02 07 00 37 2a", "> 08 07 00 08 00 03 28",
         "< 09 07 06 00 02 07 00 38 2a", NULL},
        /* descriptor outside the characteristic */
        {"< 01 10 09 00 0a", "> 10 01 00 ff ff 01 28", "< 01 10 01 00 0a",
         "> 08 05 00 08 00 02 28", "< 01 08 05 00 0a", "> 08 05 00 08 00 03 28",
         "< 09 07 06 00 12 07 00 37 2a", "> 08 07 00 08 00 03 28", "< 01 08 07 00 0a",
         "> 04 08 00 08 00", "< 05 01 09 00 02 29", NULL},
        /* include entry of a bad length */
        {"< 01 10 09 00 0a", "> 10 01 00 ff ff 01 28", "< 01 10 01 00 0a",
         "> 08 05 00 08 00 02 28", "< 09 05 06 00 01 00 04", NULL},
    };
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        struct ctx c;
        start(&c, 23, NULL, 0, NULL);
        run_script(&c.p, head);
        run_script(&c.p, tails[i]);
        if (c.ready_calls != 1 || c.ready_err != -EPROTO)
            fail_msg("case %zu: ready %d err %d", i, c.ready_calls, c.ready_err);
        expect_none(&c.p);
        finish(&c);
    }
}

static void test_discovery_limits(void **state)
{
    struct ctx c;
    char pdu[64];
    start(&c, 23, NULL, 0, NULL);
    run_script(&c.p, (const char *const[]){"> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a", NULL});
    for (int i = 0; i <= GATT_MAX_SERVICES; i++) {
        uint16_t h = (uint16_t)(1 + 2 * i);
        snprintf(pdu, sizeof pdu, "10 %02x %02x ff ff 00 28", h & 0xff, h >> 8);
        expect_pdu(&c.p, pdu);
        snprintf(pdu, sizeof pdu, "11 06 %02x %02x %02x %02x 0f 18", h & 0xff, h >> 8,
                 (h + 1) & 0xff, (h + 1) >> 8);
        peer_send(&c.p, pdu);
    }
    assert_int_equal(c.ready_calls, 1);
    assert_int_equal(c.ready_err, -ENOBUFS);
    finish(&c);
}

static void test_server_never_answers(void **state)
{
    struct ctx c;
    start(&c, 23, NULL, 0, NULL);
    run_script(&c.p, (const char *const[]){"> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a",
                                           "> 10 01 00 ff ff 00 28", NULL});
    int64_t t0 = c.p.now;
    assert_int_equal(att_next_timeout(c.p.att), t0 + ATT_TIMEOUT_NS);
    assert_int_equal(att_on_timer(c.p.att, t0 + ATT_TIMEOUT_NS - 1), 0);
    assert_int_equal(c.ready_calls, 0);
    assert_int_equal(att_on_timer(c.p.att, t0 + ATT_TIMEOUT_NS), -ETIMEDOUT);
    assert_int_equal(c.ready_calls, 1);
    assert_int_equal(c.ready_err, -ETIMEDOUT);
    assert_int_equal(gatt_read(c.g, 3, on_read, &c, NULL), -ENOTCONN);
    finish(&c);
}

static void test_disconnect_mid_discovery(void **state)
{
    struct ctx c;
    start(&c, 517, NULL, 0, NULL);
    run_script(&c.p, (const char *const[]){"> 02 05 02", "< 03 17 00",
                                           "> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a",
                                           "> 10 01 00 ff ff 00 28", "< 11 06 01 00 04 00 0d 18",
                                           NULL});
    assert_true(gatt_read(c.g, 3, on_read, &c, on_destroy) > 0);   /* queued behind */
    close(c.p.fd[1]);
    c.p.fd[1] = -1;
    assert_int_equal(att_on_readable(c.p.att, c.p.now), -ECONNRESET);
    assert_int_equal(c.ready_calls, 1);
    assert_int_equal(c.ready_err, -ECONNRESET);
    assert_int_equal(c.reads, 1);
    assert_int_equal(c.read_err, -ECONNRESET);
    assert_int_equal(c.destroyed, 1);
    finish(&c);
    assert_int_equal(c.destroyed, 2);

    /* freeing everything from the ready callback */
    start(&c, 23, NULL, 0, NULL);
    c.free_in_ready = 1;
    assert_true(gatt_read(c.g, 3, on_read, &c, NULL) > 0);
    expect_pdu(&c.p, "08 01 00 ff ff 3a 2b");
    close(c.p.fd[1]);
    c.p.fd[1] = -1;
    att_on_readable(c.p.att, c.p.now);
    assert_int_equal(c.ready_err, -ECONNRESET);
    assert_null(c.g);
    assert_null(c.p.att);
    finish(&c);

    /* and freeing while discovery is in flight */
    start(&c, 23, NULL, 0, NULL);
    expect_pdu(&c.p, "08 01 00 ff ff 3a 2b");
    assert_true(gatt_read(c.g, 3, on_read, &c, on_destroy) > 0);
    finish(&c);
    assert_int_equal(c.ready_calls, 0);
    assert_int_equal(c.reads, 0);
    assert_int_equal(c.destroyed, 2);   /* the read's and the gatt's */
}

static const char *const hash_rsp =
    "< 09 12 0c 00 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff";

static void test_cache_skips_discovery(void **state)
{
    struct gatt_cache *cache = gatt_cache_new(4);
    struct ctx c;
    const char *const *body = script_small + 2;   /* after the features read */
    start(&c, 23, NULL, 0, cache);
    run_script(&c.p, (const char *const[]){"> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a",
                                           "> 08 01 00 ff ff 2a 2b", hash_rsp, NULL});
    run_script(&c.p, body);
    assert_int_equal(c.ready_err, 0);
    assert_false(gatt_from_cache(c.g));
    assert_int_equal(gatt_cache_count(cache), 1);
    finish(&c);

    /* same hash: no discovery, the database comes from the cache */
    start(&c, 23, NULL, 0, cache);
    run_script(&c.p, (const char *const[]){"> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a",
                                           "> 08 01 00 ff ff 2a 2b", hash_rsp, NULL});
    expect_none(&c.p);
    assert_int_equal(c.ready_calls, 1);
    assert_int_equal(c.ready_err, 0);
    assert_true(gatt_from_cache(c.g));
    assert_int_equal(gatt_get_db(c.g)->chrc[0].cccd, 4);
    assert_true(gatt_subscribe(c.g, 3, on_note, NULL, &c, NULL) > 0);
    expect_pdu(&c.p, "12 04 00 01 00");
    finish(&c);

    /* another hash: full discovery again */
    start(&c, 23, NULL, 0, cache);
    run_script(&c.p, (const char *const[]){"> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a",
        "> 08 01 00 ff ff 2a 2b",
        "< 09 12 0c 00 01 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff", NULL});
    run_script(&c.p, body);
    assert_false(gatt_from_cache(c.g));
    finish(&c);

    /* no hash on the server: the cache is not trusted unless asked to */
    start(&c, 23, NULL, 0, cache);
    run_script(&c.p, (const char *const[]){"> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a",
                                           "> 08 01 00 ff ff 2a 2b", "< 01 08 01 00 0a", NULL});
    run_script(&c.p, body);
    assert_false(gatt_from_cache(c.g));
    finish(&c);
    memset(&c, 0, sizeof c);
    peer_open(&c.p);
    struct gatt_opts o = {.mtu = 23, .cache = cache, .device = "C4:7C:8D:6A:2F:01/random",
                          .trust_unhashed = 1, .ready = on_ready, .user_data = &c};
    c.g = gatt_new(c.p.att, &o);
    run_script(&c.p, (const char *const[]){"> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a",
                                           "> 08 01 00 ff ff 2a 2b", "< 01 08 01 00 0a", NULL});
    expect_none(&c.p);
    assert_true(gatt_from_cache(c.g));
    finish(&c);
    gatt_cache_free(cache);
}

static void test_cache_blob(void **state)
{
    struct ctx c;
    struct gatt_db db = {0};
    uint8_t *blob;
    size_t len;
    start(&c, 512, NULL, 0, NULL);
    run_script(&c.p, script_ab);
    const struct gatt_db *d = gatt_get_db(c.g);
    assert_int_equal(gatt_db_export(d, &blob, &len), 0);
    assert_int_equal(gatt_db_import(&db, blob, len), 0);
    assert_int_equal(db.n_svc, d->n_svc);
    assert_int_equal(db.n_chrc, d->n_chrc);
    assert_int_equal(db.n_desc, d->n_desc);
    assert_memory_equal(db.svc, d->svc, d->n_svc * sizeof *d->svc);
    assert_memory_equal(db.chrc, d->chrc, d->n_chrc * sizeof *d->chrc);
    assert_memory_equal(db.desc, d->desc, d->n_desc * sizeof *d->desc);
    /* every single-byte change and every truncation is refused */
    for (size_t i = 0; i < len; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            blob[i] ^= (uint8_t)(1u << bit);
            assert_true(gatt_db_import(&db, blob, len) < 0);
            blob[i] ^= (uint8_t)(1u << bit);
        }
        assert_true(gatt_db_import(&db, blob, i) < 0);
    }
    assert_int_equal(db.n_svc, 0);
    struct gatt_cache *cache = gatt_cache_new(2);
    const uint8_t *got;
    size_t got_len;
    assert_int_equal(gatt_cache_import(cache, "a", blob, len), 0);
    assert_int_equal(gatt_cache_import(cache, "b", blob, len), 0);
    assert_int_equal(gatt_cache_export(cache, "a", &got, &got_len), 0);   /* a used last */
    assert_int_equal(gatt_cache_import(cache, "c", blob, len), 0);         /* b evicted */
    assert_int_equal(gatt_cache_count(cache), 2);
    assert_int_equal(gatt_cache_export(cache, "b", &got, &got_len), -ENOENT);
    assert_int_equal(gatt_cache_export(cache, "a", &got, &got_len), 0);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, blob, len);
    assert_int_equal(gatt_cache_import(cache, "d", blob, len - 1), -EBADMSG);
    assert_int_equal(gatt_cache_import(cache, "", blob, len), -EINVAL);
    assert_int_equal(gatt_cache_forget(cache, "a"), 0);
    assert_int_equal(gatt_cache_forget(cache, "a"), -ENOENT);
    assert_int_equal(gatt_cache_count(cache), 1);
    /* a slot vacated by forget is reused cleanly (it once kept a stale blob pointer) */
    assert_int_equal(gatt_cache_import(cache, "e", blob, len), 0);
    assert_int_equal(gatt_cache_import(cache, "f", blob, len), 0);
    assert_int_equal(gatt_cache_count(cache), 2);
    assert_int_equal(gatt_cache_forget(cache, "c"), -ENOENT);   /* evicted by f */
    assert_int_equal(gatt_cache_forget(cache, "e"), 0);
    assert_int_equal(gatt_cache_import(cache, "g", blob, len), 0);
    gatt_cache_free(cache);
    free(blob);
    gatt_db_clear(&db);
    finish(&c);
}

/* ---- security ---- */

struct sec {
    int calls, level;
    uint8_t ecode;
};

static int sec_hook(struct att *a, int level, uint8_t ecode, void *ud)
{
    struct sec *s = ud;
    s->calls++;
    s->level = level;
    s->ecode = ecode;
    return 0;
}

/* A wearable refuses the CCCD write until the link is encrypted (Insufficient
 * Authentication on an unencrypted link): the bearer asks for MEDIUM, writes the CCCD again,
 * and the subscription succeeds; notifications then arrive. */
static void test_cccd_write_after_security_raise(void **state)
{
    struct ctx c;
    struct sec s = {0};
    start(&c, 23, NULL, 0, NULL);
    att_set_security_hook(c.p.att, ATT_SECURITY_LOW, sec_hook, &s, NULL);
    run_script(&c.p, script_small);
    assert_int_equal(c.ready_err, 0);
    assert_true(gatt_subscribe(c.g, 3, on_note, on_write, &c, NULL) > 0);
    expect_pdu(&c.p, "12 04 00 01 00");
    peer_send(&c.p, "01 12 04 00 05");
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.level, ATT_SECURITY_MEDIUM);
    assert_int_equal(s.ecode, ATT_ECODE_AUTHENTICATION);
    assert_int_equal(c.writes, 0);
    expect_pdu(&c.p, "12 04 00 01 00");
    peer_send(&c.p, "13");
    assert_int_equal(c.writes, 1);
    assert_int_equal(c.write_err, 0);
    peer_send(&c.p, "1b 03 00 48");
    assert_int_equal(c.notes, 1);
    assert_int_equal(c.note_handle, 3);
    /* a read refused at MEDIUM for want of authentication: HIGH, then the read again */
    assert_true(gatt_read(c.g, 3, on_read, &c, NULL) > 0);
    expect_pdu(&c.p, "0a 03 00");
    peer_send(&c.p, "01 0a 03 00 05");
    assert_int_equal(s.level, ATT_SECURITY_HIGH);
    expect_pdu(&c.p, "0a 03 00");
    peer_send(&c.p, "01 0a 03 00 05");   /* still refused: the caller gets it, no loop */
    assert_int_equal(c.reads, 1);
    assert_int_equal(c.read_err, -EACCES);
    assert_int_equal(c.read_ecode, ATT_ECODE_AUTHENTICATION);
    assert_int_equal(s.calls, 2);
    expect_none(&c.p);
    finish(&c);
}

/* ---- the cache's observer and hostile blobs ---- */

struct changes {
    int n;
    char device[8][GATT_DEVICE_MAX + 1];
    size_t len[8];
    int dropped[8];
};

static void on_cache_change(const char *device, const uint8_t *blob, size_t len, void *ud)
{
    struct changes *ch = ud;
    if (ch->n < 8) {
        snprintf(ch->device[ch->n], sizeof ch->device[0], "%s", device);
        ch->len[ch->n] = len;
        ch->dropped[ch->n] = blob == NULL;
    }
    ch->n++;
}

/* Every creation, replacement, drop (Service Changed) and eviction is reported once, with the
 * new blob; storing the same blob again or a refused one is not a change. */
static void test_cache_reports_changes(void **state)
{
    struct gatt_cache *cache = gatt_cache_new(2);
    struct changes ch = {0};
    struct ctx c;
    const char *const *body = script_small + 2;
    uint8_t *blob;
    size_t len;
    gatt_cache_set_observer(cache, on_cache_change, &ch);
    start(&c, 23, NULL, 0, cache);     /* device C4:7C:8D:6A:2F:01/random */
    run_script(&c.p, (const char *const[]){"> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a",
                                           "> 08 01 00 ff ff 2a 2b", hash_rsp, NULL});
    run_script(&c.p, body);
    assert_int_equal(ch.n, 1);
    assert_string_equal(ch.device[0], "C4:7C:8D:6A:2F:01/random");
    assert_false(ch.dropped[0]);
    assert_int_equal(gatt_db_export(gatt_get_db(c.g), &blob, &len), 0);
    assert_int_equal(ch.len[0], len);
    finish(&c);
    /* the same blob again: nothing to report */
    const uint8_t *held;
    size_t held_len;
    assert_int_equal(gatt_cache_export(cache, "C4:7C:8D:6A:2F:01/random", &held, &held_len), 0);
    uint8_t *same = malloc(held_len);
    memcpy(same, held, held_len);
    assert_int_equal(gatt_cache_import(cache, "C4:7C:8D:6A:2F:01/random", same, held_len), 0);
    assert_int_equal(ch.n, 1);
    assert_int_equal(gatt_cache_import(cache, "x", same, held_len - 1), -EBADMSG);
    assert_int_equal(ch.n, 1);
    /* a second device, then a third: the least recently used goes, and says so */
    assert_int_equal(gatt_cache_import(cache, "dev2", blob, len), 0);
    assert_int_equal(gatt_cache_import(cache, "dev3", blob, len), 0);
    assert_int_equal(ch.n, 4);
    assert_string_equal(ch.device[1], "dev2");
    assert_string_equal(ch.device[2], "C4:7C:8D:6A:2F:01/random");
    assert_true(ch.dropped[2]);
    assert_string_equal(ch.device[3], "dev3");
    /* a Service Changed indication drops the entry */
    assert_int_equal(gatt_cache_import(cache, "C4:7C:8D:6A:2F:01/random", same, held_len), 0);
    assert_int_equal(ch.n, 6);             /* dev2 evicted, the device back */
    start(&c, 23, NULL, 0, cache);
    run_script(&c.p, (const char *const[]){"> 08 01 00 ff ff 3a 2b", "< 01 08 01 00 0a",
                                           "> 08 01 00 ff ff 2a 2b", hash_rsp, NULL});
    assert_true(gatt_from_cache(c.g));
    finish(&c);
    /* (script_small has no Service Changed: the forget the indication does is the same call) */
    assert_int_equal(gatt_cache_forget(cache, "C4:7C:8D:6A:2F:01/random"), 0);
    assert_int_equal(ch.n, 7);
    assert_true(ch.dropped[6]);
    assert_int_equal(gatt_cache_forget(cache, "C4:7C:8D:6A:2F:01/random"), -ENOENT);
    assert_int_equal(ch.n, 7);
    gatt_cache_set_observer(cache, NULL, NULL);
    assert_int_equal(gatt_cache_forget(cache, "dev3"), 0);
    assert_int_equal(ch.n, 7);
    free(same);
    free(blob);
    gatt_cache_free(cache);
}

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Makes b's checksum right again, so a mutation gets past it to the structural checks. */
static void reseal(uint8_t *b, size_t len)
{
    if (len >= 4)
        att_put32(b + len - 4, fnv1a(b, len - 4));
}

/* An imported blob must give a database discovery could have given: re-exported, it imports
 * again, and its lookups stay in bounds. */
static void check_imported(struct gatt_cache *cache, const char *device)
{
    const uint8_t *b;
    size_t n;
    struct gatt_db db = {0};
    assert_int_equal(gatt_cache_export(cache, device, &b, &n), 0);
    assert_int_equal(gatt_db_import(&db, b, n), 0);
    for (size_t i = 0; i < db.n_chrc; i++) {
        const struct gatt_chrc *ch = &db.chrc[i];
        assert_true(ch->service < db.n_svc);
        assert_true(ch->decl < ch->value && ch->value <= ch->end);
        assert_true(ch->first_desc + ch->n_desc <= db.n_desc || ch->n_desc == 0);
        assert_ptr_equal(gatt_db_chrc_by_value(&db, ch->value), ch);
    }
    for (size_t i = 0; i < db.n_svc; i++)
        assert_true(db.svc[i].first_chrc + db.svc[i].n_chrc <= db.n_chrc ||
                    db.svc[i].n_chrc == 0);
    gatt_db_clear(&db);
}

/* Blobs are untrusted input once they come back from storage: truncated, corrupted (with the
 * checksum made right again, so the structure itself is what is checked), lying counts,
 * random bytes behind a valid header. Each is refused with -EBADMSG or -ENOBUFS or gives a
 * consistent database; never a crash (ASan/UBSan builds run this). */
static void test_cache_import_hostile_blobs(void **state)
{
    struct ctx c;
    uint8_t *blob, b[4096];
    size_t len;
    start(&c, 512, NULL, 0, NULL);
    run_script(&c.p, script_ab);
    assert_int_equal(gatt_db_export(gatt_get_db(c.g), &blob, &len), 0);
    finish(&c);
    assert_true(len <= sizeof b);
    struct gatt_cache *cache = gatt_cache_new(1);
    unsigned seed = 12345, ok = 0, refused = 0;
    for (int round = 0; round < 20000; round++) {
        size_t n = len;
        memcpy(b, blob, len);
        switch (round % 5) {
        case 0: /* truncated, resealed */
            n = (size_t)rand_r(&seed) % len;
            break;
        case 1: /* a few bytes changed */
            for (int k = 0, m = 1 + rand_r(&seed) % 4; k < m; k++)
                b[5 + (size_t)rand_r(&seed) % (len - 9)] = (uint8_t)rand_r(&seed);
            break;
        case 2: /* a count changed (services, characteristics, descriptors, includes) */
            b[5 + 2 * (rand_r(&seed) % 4) + (rand_r(&seed) % 2)] = (uint8_t)rand_r(&seed);
            break;
        case 3: /* random bytes after the header, random length */
            n = 13 + (size_t)rand_r(&seed) % (sizeof b - 13);
            for (size_t i = 5; i < n; i++)
                b[i] = (uint8_t)rand_r(&seed);
            b[4] = (uint8_t)(rand_r(&seed) % 3);
            break;
        default: /* one handle moved by one */
            b[13 + (size_t)rand_r(&seed) % (len - 17)] += rand_r(&seed) % 2 ? 1 : 0xFF;
            break;
        }
        reseal(b, n);
        int r = gatt_cache_import(cache, "dev", b, n);
        if (r == 0) {
            ok++;
            check_imported(cache, "dev");
        } else {
            assert_true(r == -EBADMSG || r == -ENOBUFS);
            refused++;
        }
    }
    assert_true(refused > 10000);
    /* and the intact blob still imports */
    assert_int_equal(gatt_cache_import(cache, "dev", blob, len), 0);
    print_message("hostile blobs: %u refused, %u consistent\n", refused, ok);
    gatt_cache_free(cache);
    free(blob);
}

static void test_bad_options(void **state)
{
    struct peer p;
    struct att_uuid w[GATT_MAX_WANTED + 1];
    struct gatt_cache *cache = gatt_cache_new(1);
    peer_open(&p);
    struct gatt_opts o = {.mtu = 22};
    assert_null(gatt_new(p.att, &o));
    assert_int_equal(errno, EINVAL);
    o = (struct gatt_opts){.wanted = w, .n_wanted = GATT_MAX_WANTED + 1};
    assert_null(gatt_new(p.att, &o));
    o = (struct gatt_opts){.cache = cache};
    assert_null(gatt_new(p.att, &o));
    expect_none(&p);
    att_disconnect(p.att, -ECONNRESET);
    o = (struct gatt_opts){0};
    assert_null(gatt_new(p.att, &o));
    assert_int_equal(errno, ENOTCONN);
    gatt_cache_free(cache);
    peer_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conformance_AB_heart_rate_discovery),
        cmocka_unit_test(test_conformance_C_cccd_then_notification),
        cmocka_unit_test(test_conformance_D_indication_then_confirmation),
        cmocka_unit_test(test_conformance_E_mixed_uuids_and_descriptors),
        cmocka_unit_test(test_conformance_E_bearer_vectors),
        cmocka_unit_test(test_long_read),
        cmocka_unit_test(test_discovery_failures),
        cmocka_unit_test(test_discovery_hostile_handles),
        cmocka_unit_test(test_discovery_limits),
        cmocka_unit_test(test_server_never_answers),
        cmocka_unit_test(test_disconnect_mid_discovery),
        cmocka_unit_test(test_cache_skips_discovery),
        cmocka_unit_test(test_cache_blob),
        cmocka_unit_test(test_cccd_write_after_security_raise),
        cmocka_unit_test(test_cache_reports_changes),
        cmocka_unit_test(test_cache_import_hostile_blobs),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
