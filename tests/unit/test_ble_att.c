/* drivers/ble_att.c and ble_att_pdu.c over a socketpair with a scripted peer: the MTU exchange
 * of the BLE reference §5.2 A byte for byte, one request at a time, notifications and
 * indications (confirmed always), error responses and their mapping, malformed, truncated,
 * oversized and unexpected PDUs, requests from the peer, the 30 s timeout on test-controlled
 * time, disconnects, cancellation, freeing from callbacks, the receive and transmit hooks,
 * output back-pressure, the security hook (raise, retry once, ordering, failures), and the
 * pure codec (UUIDs, list parsers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tests/ble_script.h"

/* ---- recording callbacks ---- */

struct rec {
    int calls, destroys;
    struct att_rsp last;
    uint8_t params[600];
    int order[16];
    int n_order;
};

static void on_rsp(struct att *a, const struct att_rsp *rsp, void *ud)
{
    struct rec *r = ud;
    r->calls++;
    r->last = *rsp;
    if (rsp->params && rsp->len <= sizeof r->params) {
        memcpy(r->params, rsp->params, rsp->len);
        r->last.params = r->params;
    }
}

static void on_destroy(void *ud)
{
    ((struct rec *)ud)->destroys++;
}

struct notes {
    int n;
    uint8_t op[16];
    uint16_t handle[16];
    size_t len[16];
    uint8_t value[16][600];
    int64_t at[16];
    int closes, close_err, destroyed;
};

static void notes_destroy(void *ud)
{
    ((struct notes *)ud)->destroyed++;
}

static void on_note(struct att *a, uint8_t op, uint16_t h, const uint8_t *v, size_t len,
                    int64_t recv_ns, void *ud)
{
    struct notes *n = ud;
    if (n->n < 16) {
        n->op[n->n] = op;
        n->handle[n->n] = h;
        n->len[n->n] = len;
        memcpy(n->value[n->n], v, len);
        n->at[n->n] = recv_ns;
    }
    n->n++;
}

static void on_close(struct att *a, int err, void *ud)
{
    struct notes *n = ud;
    n->closes++;
    n->close_err = err;
}

static int read_req(struct peer *p, uint16_t h, struct rec *r)
{
    uint8_t b[2];
    att_put16(b, h);
    return att_send(p->att, ATT_OP_READ_REQ, b, 2, on_rsp, r, on_destroy);
}

/* ---- tests ---- */

static void test_mtu_exchange_A(void **state)
{
    struct peer p;
    struct rec r = {0};
    peer_open(&p);
    assert_int_equal(att_mtu(p.att), 23);
    assert_true(att_exchange_mtu(p.att, 512, on_rsp, &r, on_destroy) > 0);
    expect_pdu(&p, "02 00 02");
    expect_none(&p);
    peer_send(&p, "03 00 02");
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.destroys, 1);
    assert_int_equal(r.last.err, 0);
    assert_int_equal(r.last.opcode, ATT_OP_MTU_RSP);
    assert_int_equal(att_mtu(p.att), 512);
    assert_int_equal(att_exchange_mtu(p.att, 512, NULL, NULL, NULL), -EALREADY);
    /* then the init's Read By Type for Server Supported Features, answered Not Found */
    uint8_t q[6] = {0x01, 0x00, 0xff, 0xff, 0x3a, 0x2b};
    assert_true(att_send(p.att, ATT_OP_READ_BY_TYPE_REQ, q, 6, on_rsp, &r, NULL) > 0);
    expect_pdu(&p, "08 01 00 ff ff 3a 2b");
    peer_send(&p, "01 08 01 00 0a");
    assert_int_equal(r.last.err, -ENOENT);
    assert_int_equal(r.last.ecode, ATT_ECODE_ATTR_NOT_FOUND);
    assert_int_equal(r.last.err_handle, 1);
    peer_close(&p);
}

static void test_mtu_bounds(void **state)
{
    static const struct { uint16_t client; const char *rsp; uint16_t want; } cases[] = {
        {517, "03 64 00", 100},   /* server smaller */
        {100, "03 05 02", 100},   /* client smaller */
        {517, "03 10 00", 23},    /* server below the minimum: 23 */
        {517, "03 00", 23},       /* truncated: request fails, MTU unchanged */
        {517, "01 02 00 00 06", 23},  /* not supported */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct peer p;
        struct rec r = {0};
        peer_open(&p);
        assert_int_equal(att_exchange_mtu(p.att, 23, NULL, NULL, NULL), -EINVAL);
        assert_int_equal(att_exchange_mtu(p.att, 518, NULL, NULL, NULL), -EINVAL);
        assert_true(att_exchange_mtu(p.att, cases[i].client, on_rsp, &r, NULL) > 0);
        expect_pdu(&p, cases[i].client == 517 ? "02 05 02" : "02 64 00");
        peer_send(&p, cases[i].rsp);
        assert_int_equal(r.calls, 1);
        assert_int_equal(att_mtu(p.att), cases[i].want);
        assert_int_equal(att_dead(p.att), 0);
        peer_close(&p);
    }
}

static void test_one_request_at_a_time(void **state)
{
    struct peer p;
    struct rec r[3] = {{0}};
    peer_open(&p);
    for (int i = 0; i < 3; i++)
        assert_true(read_req(&p, (uint16_t)(3 + i), &r[i]) > 0);
    expect_pdu(&p, "0a 03 00");
    expect_none(&p);
    peer_send(&p, "0b aa");
    assert_int_equal(r[0].calls, 1);
    assert_int_equal(r[0].last.len, 1);
    assert_int_equal(r[0].params[0], 0xaa);
    expect_pdu(&p, "0a 04 00");
    expect_none(&p);
    peer_send(&p, "0b");
    assert_int_equal(r[1].calls, 1);
    assert_int_equal(r[1].last.len, 0);
    expect_pdu(&p, "0a 05 00");
    peer_send(&p, "0b bb cc");
    assert_int_equal(r[2].calls, 1);
    assert_int_equal(r[2].destroys, 1);
    expect_none(&p);
    peer_close(&p);
}

static void test_notification_not_a_response(void **state)
{
    struct peer p;
    struct rec r = {0};
    struct notes n = {0};
    peer_open(&p);
    assert_true(att_register_notify(p.att, on_note, &n, NULL) > 0);
    assert_true(read_req(&p, 3, &r) > 0);
    expect_pdu(&p, "0a 03 00");
    p.now += 5;
    peer_send(&p, "1b 03 00 01 02 03");
    assert_int_equal(r.calls, 0);
    assert_int_equal(n.n, 1);
    assert_int_equal(n.op[0], ATT_OP_NOTIFY);
    assert_int_equal(n.handle[0], 3);
    assert_int_equal(n.len[0], 3);
    assert_memory_equal(n.value[0], "\x01\x02\x03", 3);
    assert_int_equal(n.at[0], p.now);
    expect_none(&p);    /* a notification is never answered */
    peer_send(&p, "0b 05");
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.params[0], 5);
    assert_int_equal(att_stats(p.att)->notifications, 1);
    peer_close(&p);
}

static void test_indication_always_confirmed(void **state)
{
    struct peer p;
    struct notes n = {0};
    peer_open(&p);
    peer_send(&p, "1d 03 00 01 02 03");   /* nobody registered */
    expect_pdu(&p, "1e");
    assert_true(att_register_notify(p.att, on_note, &n, NULL) > 0);
    peer_send(&p, "1d 08 00 07");
    assert_int_equal(n.n, 1);
    assert_int_equal(n.op[0], ATT_OP_INDICATE);
    assert_int_equal(n.handle[0], 8);
    expect_pdu(&p, "1e");
    peer_send(&p, "1d 08");   /* truncated: not delivered, still confirmed */
    assert_int_equal(n.n, 1);
    expect_pdu(&p, "1e");
    expect_none(&p);
    assert_int_equal(att_stats(p.att)->indications, 2);
    assert_int_equal(att_stats(p.att)->malformed, 1);
    peer_close(&p);
}

static void test_error_mapping(void **state)
{
    static const struct { uint8_t e; int err; const char *name; } map[] = {
        {0x01, -EINVAL, "Invalid Handle"}, {0x02, -EPERM, "Read Not Permitted"},
        {0x03, -EPERM, "Write Not Permitted"}, {0x04, -EBADMSG, "Invalid PDU"},
        {0x05, -EACCES, "Insufficient Authentication"},
        {0x06, -EOPNOTSUPP, "Request Not Supported"}, {0x07, -ERANGE, "Invalid Offset"},
        {0x08, -EACCES, "Insufficient Authorization"}, {0x09, -ENOSPC, "Prepare Queue Full"},
        {0x0A, -ENOENT, "Attribute Not Found"}, {0x0B, -ENODATA, "Attribute Not Long"},
        {0x0C, -EACCES, "Encryption Key Size Too Short"},
        {0x0D, -EMSGSIZE, "Invalid Attribute Value Length"}, {0x0E, -EIO, "Unlikely Error"},
        {0x0F, -EACCES, "Insufficient Encryption"},
        {0x10, -EOPNOTSUPP, "Unsupported Group Type"},
        {0x11, -EBUSY, "Insufficient Resources"}, {0x12, -ESTALE, "Database Out Of Sync"},
        {0x13, -EINVAL, "Value Not Allowed"}, {0x14, -EREMOTEIO, "reserved"},
        {0x80, -EREMOTEIO, "application error"}, {0x9F, -EREMOTEIO, "application error"},
        {0xFD, -EREMOTEIO, "CCCD Improperly Configured"},
        {0xFE, -EALREADY, "Procedure Already in Progress"}, {0xFF, -ERANGE, "Out of Range"},
    };
    struct peer p;
    peer_open(&p);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        struct rec r = {0};
        char pdu[32];
        assert_int_equal(att_ecode_errno(map[i].e), map[i].err);
        assert_string_equal(att_ecode_str(map[i].e), map[i].name);
        assert_true(read_req(&p, 0, &r) > 0);
        expect_pdu(&p, "0a 00 00");
        /* the handle in the error may differ from the request's: matched by opcode */
        snprintf(pdu, sizeof pdu, "01 0a 07 00 %02x", map[i].e);
        peer_send(&p, pdu);
        assert_int_equal(r.calls, 1);
        assert_int_equal(r.last.err, map[i].err);
        assert_int_equal(r.last.ecode, map[i].e);
        assert_int_equal(r.last.err_handle, 7);
        assert_int_equal(r.last.opcode, ATT_OP_ERROR_RSP);
    }
    assert_int_equal(att_dead(p.att), 0);
    peer_close(&p);
}

static void test_malformed_responses(void **state)
{
    static const struct { uint8_t op; const char *req, *sent, *rsp; } cases[] = {
        {ATT_OP_READ_REQ, "03 00", "0a 03 00", "01 0a 03"},              /* short error */
        {ATT_OP_READ_REQ, "03 00", "0a 03 00", "01 0a 03 00 0a 00"},     /* long error */
        {ATT_OP_READ_REQ, "03 00", "0a 03 00", "01 08 03 00 0a"},        /* other request */
        {ATT_OP_READ_REQ, "03 00", "0a 03 00", "01 0a 03 00 00"},        /* code 0 */
        {ATT_OP_READ_REQ, "03 00", "0a 03 00", "13"},                    /* wrong opcode */
        {ATT_OP_READ_REQ, "03 00", "0a 03 00", "0d 01"},                 /* blob for read */
        {ATT_OP_WRITE_REQ, "04 00 01 00", "12 04 00 01 00", "13 00"},   /* write rsp + byte */
        {ATT_OP_FIND_INFO_REQ, "01 00 ff ff", "04 01 00 ff ff", "05 03 01 00 02 29"},
        {ATT_OP_FIND_INFO_REQ, "01 00 ff ff", "04 01 00 ff ff", "05 01 01 00 02"},
        {ATT_OP_FIND_INFO_REQ, "01 00 ff ff", "04 01 00 ff ff", "05 01"},
        {ATT_OP_FIND_INFO_REQ, "01 00 ff ff", "04 01 00 ff ff", "05"},
        {ATT_OP_READ_BY_TYPE_REQ, "01 00 ff ff 03 28", "08 01 00 ff ff 03 28", "09 00"},
        {ATT_OP_READ_BY_TYPE_REQ, "01 00 ff ff 03 28", "08 01 00 ff ff 03 28", "09 01 aa"},
        {ATT_OP_READ_BY_TYPE_REQ, "01 00 ff ff 03 28", "08 01 00 ff ff 03 28",
         "09 07 02 00 02 03 00 00"},
        {ATT_OP_READ_BY_TYPE_REQ, "01 00 ff ff 03 28", "08 01 00 ff ff 03 28", "09 07"},
        {ATT_OP_READ_BY_GROUP_REQ, "01 00 ff ff 00 28", "10 01 00 ff ff 00 28",
         "11 06 01 00 04 00 01"},
        {ATT_OP_READ_BY_GROUP_REQ, "01 00 ff ff 00 28", "10 01 00 ff ff 00 28", "11 03 01 00 04"},
        {ATT_OP_FIND_BY_TYPE_REQ, "01 00 ff ff 00 28 0d 18", "06 01 00 ff ff 00 28 0d 18",
         "07 01 00 05"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct peer p;
        struct rec r = {0}, r2 = {0};
        uint8_t b[32];
        size_t n;
        peer_open(&p);
        n = hex_bytes(cases[i].req, b, sizeof b);
        assert_true(att_send(p.att, cases[i].op, b, n, on_rsp, &r, on_destroy) > 0);
        assert_true(read_req(&p, 9, &r2) > 0);
        expect_pdu(&p, cases[i].sent);
        peer_send(&p, cases[i].rsp);
        if (r.calls != 1 || r.last.err != -EPROTO)
            fail_msg("case %zu (%s): calls %d err %d", i, cases[i].rsp, r.calls, r.last.err);
        assert_int_equal(r.destroys, 1);
        assert_int_equal(att_stats(p.att)->malformed, 1);
        /* the bearer goes on: the next request is sent and answered */
        expect_pdu(&p, "0a 09 00");
        peer_send(&p, "0b 01");
        assert_int_equal(r2.calls, 1);
        assert_int_equal(r2.last.err, 0);
        peer_close(&p);
    }
}

static void test_truncated_and_odd_pdus(void **state)
{
    struct peer p;
    struct notes n = {0};
    peer_open(&p);
    assert_true(att_register_notify(p.att, on_note, &n, NULL) > 0);
    peer_send(&p, "1b 03");            /* notification without a full handle */
    peer_send(&p, "1b");
    assert_int_equal(n.n, 0);
    assert_int_equal(att_stats(p.att)->malformed, 2);
    peer_send(&p, "0b 01 02");         /* response with nothing outstanding */
    peer_send(&p, "01 0a 03 00 0a");
    peer_send(&p, "1e");               /* stray confirmation */
    assert_int_equal(att_stats(p.att)->unexpected, 3);
    /* Multiple Handle Value Notification: two tuples, then a torn one */
    peer_send(&p, "23 03 00 02 00 aa bb 07 00 00 00 09 00 05 00 01");
    assert_int_equal(n.n, 2);
    assert_int_equal(n.op[0], ATT_OP_MULT_NOTIFY);
    assert_int_equal(n.handle[0], 3);
    assert_int_equal(n.len[0], 2);
    assert_memory_equal(n.value[0], "\xaa\xbb", 2);
    assert_int_equal(n.handle[1], 7);
    assert_int_equal(n.len[1], 0);
    assert_int_equal(att_stats(p.att)->malformed, 3);
    expect_none(&p);
    assert_int_equal(att_dead(p.att), 0);
    peer_close(&p);
}

static void test_peer_requests_not_supported(void **state)
{
    static const char *const script[] = {
        "< 0a 03 00", "> 01 0a 00 00 06",         /* Read Request */
        "< 02 17 00", "> 01 02 00 00 06",         /* Exchange MTU from the peer */
        "< 10 01 00 ff ff 00 28", "> 01 10 00 00 06",
        "< 12 03 00 01 00", "> 01 12 00 00 06",
        "< 3f 01 02", "> 01 3f 00 00 06",         /* unknown, no command bit: a request */
        "< 00", "> 01 00 00 00 06",
        NULL,
    };
    struct peer p;
    peer_open(&p);
    run_script(&p, script);
    peer_send(&p, "52 03 00 01");                 /* Write Command: ignored */
    peer_send(&p, "7f 01");                       /* unknown command: ignored */
    peer_send(&p, "d2 03 00 01 00 00 00 00 00 00 00 00 00 00 00 00");
    expect_none(&p);
    assert_int_equal(att_stats(p.att)->unsupported, 6);
    assert_int_equal(att_stats(p.att)->ignored, 3);
    peer_close(&p);
}

static void test_oversized_pdus(void **state)
{
    struct peer p;
    struct rec r = {0};
    struct notes n = {0};
    uint8_t b[600];
    peer_open(&p);
    assert_true(att_register_notify(p.att, on_note, &n, NULL) > 0);
    memset(b, 0x11, sizeof b);
    b[0] = ATT_OP_NOTIFY;
    peer_send_raw(&p, b, 24);     /* MTU 23 */
    peer_send_raw(&p, b, 23);
    assert_int_equal(n.n, 1);
    assert_int_equal(n.len[0], 20);
    peer_send_raw(&p, b, 600);    /* longer than any ATT PDU */
    assert_int_equal(n.n, 1);
    assert_true(read_req(&p, 3, &r) > 0);
    expect_pdu(&p, "0a 03 00");
    b[0] = ATT_OP_READ_RSP;
    peer_send_raw(&p, b, 24);
    assert_int_equal(r.last.err, -EPROTO);
    assert_int_equal(att_stats(p.att)->malformed, 3);
    peer_close(&p);
}

static void test_timeout_30s(void **state)
{
    struct peer p;
    struct rec r[2] = {{0}};
    struct notes n = {0};
    peer_open(&p);
    assert_true(att_register_close(p.att, on_close, &n, NULL) > 0);
    assert_int_equal(att_next_timeout(p.att), INT64_MAX);
    assert_true(read_req(&p, 3, &r[0]) > 0);
    assert_true(read_req(&p, 4, &r[1]) > 0);
    expect_pdu(&p, "0a 03 00");
    /* sent outside an entry point: the 30 s start at the next att_on_timer, asked at once */
    assert_true(att_next_timeout(p.att) <= p.now);
    p.now += SEC;
    assert_int_equal(att_on_timer(p.att, p.now), 0);
    assert_int_equal(att_next_timeout(p.att), p.now + ATT_TIMEOUT_NS);
    assert_int_equal(att_on_timer(p.att, p.now + ATT_TIMEOUT_NS - 1), 0);
    assert_int_equal(r[0].calls, 0);
    assert_int_equal(att_on_timer(p.att, p.now + ATT_TIMEOUT_NS), -ETIMEDOUT);
    assert_int_equal(r[0].last.err, -ETIMEDOUT);
    assert_int_equal(r[1].last.err, -ETIMEDOUT);
    assert_int_equal(r[0].destroys + r[1].destroys, 2);
    assert_int_equal(n.closes, 1);
    assert_int_equal(n.close_err, -ETIMEDOUT);
    assert_int_equal(att_dead(p.att), -ETIMEDOUT);
    assert_int_equal(att_stats(p.att)->timeouts, 1);
    assert_int_equal(read_req(&p, 5, &r[0]), -ENOTCONN);
    assert_int_equal(att_next_timeout(p.att), INT64_MAX);
    expect_none(&p);   /* nothing after the 4th... never the queued second request */
    peer_close(&p);
}

/* A request sent from a response callback inside att_on_readable starts its 30 s then. */
static void chain(struct att *a, const struct att_rsp *rsp, void *ud)
{
    uint8_t b[2] = {4, 0};
    struct rec *r = ud;
    r->calls++;
    assert_true(att_send(a, ATT_OP_READ_REQ, b, 2, on_rsp, r + 1, NULL) > 0);
}

static void test_timeout_of_chained_request(void **state)
{
    struct peer p;
    struct rec r[2] = {{0}};
    uint8_t b[2] = {3, 0};
    peer_open(&p);
    assert_true(att_send(p.att, ATT_OP_READ_REQ, b, 2, chain, r, NULL) > 0);
    expect_pdu(&p, "0a 03 00");
    p.now = 2000 * SEC;
    peer_send(&p, "0b 01");
    expect_pdu(&p, "0a 04 00");
    assert_int_equal(att_next_timeout(p.att), 2000 * SEC + ATT_TIMEOUT_NS);
    assert_int_equal(att_on_timer(p.att, 2000 * SEC + ATT_TIMEOUT_NS), -ETIMEDOUT);
    assert_int_equal(r[1].last.err, -ETIMEDOUT);
    peer_close(&p);
}

static void test_disconnect(void **state)
{
    struct peer p;
    struct rec r = {0};
    struct notes n = {0};
    peer_open(&p);
    assert_true(att_register_close(p.att, on_close, &n, NULL) > 0);
    assert_true(read_req(&p, 3, &r) > 0);
    close(p.fd[1]);
    p.fd[1] = -1;
    assert_int_equal(att_on_readable(p.att, p.now), -ECONNRESET);
    assert_int_equal(r.last.err, -ECONNRESET);
    assert_int_equal(n.closes, 1);
    assert_int_equal(n.close_err, -ECONNRESET);
    assert_int_equal(att_on_readable(p.att, p.now), -ECONNRESET);
    assert_int_equal(n.closes, 1);
    peer_close(&p);

    /* the owner saw the hang-up itself */
    peer_open(&p);
    memset(&n, 0, sizeof n);
    assert_true(att_register_close(p.att, on_close, &n, NULL) > 0);
    assert_true(read_req(&p, 3, &r) > 0);
    att_disconnect(p.att, -EHOSTDOWN);
    assert_int_equal(r.last.err, -EHOSTDOWN);
    assert_int_equal(n.close_err, -EHOSTDOWN);
    peer_close(&p);
}

static void test_cancel(void **state)
{
    struct peer p;
    struct rec r[3] = {{0}};
    int id[3];
    peer_open(&p);
    for (int i = 0; i < 3; i++)
        id[i] = read_req(&p, (uint16_t)(3 + i), &r[i]);
    expect_pdu(&p, "0a 03 00");
    assert_int_equal(att_cancel(p.att, id[1]), 0);      /* queued */
    assert_int_equal(r[1].destroys, 1);
    assert_int_equal(att_cancel(p.att, id[1]), -ENOENT);
    assert_int_equal(att_cancel(p.att, id[0]), 0);      /* outstanding */
    assert_int_equal(r[0].destroys, 1);
    expect_none(&p);                                    /* still waits for its response */
    peer_send(&p, "0b 01");
    assert_int_equal(r[0].calls, 0);
    expect_pdu(&p, "0a 05 00");
    peer_send(&p, "0b 02");
    assert_int_equal(r[2].calls, 1);
    assert_int_equal(r[1].calls, 0);
    peer_close(&p);
}

static void free_in_cb(struct att *a, const struct att_rsp *rsp, void *ud)
{
    struct rec *r = ud;
    r->calls++;
    att_free(a);
    assert_int_equal(att_send(a, ATT_OP_READ_REQ, "\x01\x00", 2, NULL, NULL, NULL), -ENOTCONN);
}

static void test_free_from_callback(void **state)
{
    struct peer p;
    struct rec r[3] = {{0}};
    struct notes n = {0};
    peer_open(&p);
    assert_true(att_register_close(p.att, on_close, &n, notes_destroy) > 0);
    assert_true(att_send(p.att, ATT_OP_READ_REQ, "\x03\x00", 2, free_in_cb, &r[0],
                         on_destroy) > 0);
    assert_true(read_req(&p, 4, &r[1]) > 0);
    assert_true(read_req(&p, 5, &r[2]) > 0);
    expect_pdu(&p, "0a 03 00");
    peer_send(&p, "0b 01 1b 03 00 01");
    p.att = NULL;   /* freed by the callback */
    assert_int_equal(r[0].calls, 1);
    assert_int_equal(r[0].destroys, 1);
    assert_int_equal(r[1].calls + r[2].calls, 0);
    assert_int_equal(r[1].destroys + r[2].destroys, 2);
    assert_int_equal(n.closes, 0);      /* freeing is not a close */
    assert_int_equal(n.destroyed, 1);
    peer_close(&p);
}

static void rx_hook(struct att *a, int64_t recv_ns, const uint8_t *pdu, size_t len, void *ud)
{
    struct notes *n = ud;
    if (n->n < 16) {
        n->len[n->n] = len;
        n->at[n->n] = recv_ns;
        memcpy(n->value[n->n], pdu, len);
    }
    n->n++;
}

static void test_rx_hook_sees_every_pdu(void **state)
{
    struct peer p;
    struct notes n = {0};
    uint8_t big[700];
    peer_open(&p);
    att_set_rx_hook(p.att, rx_hook, &n, NULL);
    p.now = 5 * SEC;
    peer_send(&p, "1b 03 00 01 02");
    p.now = 6 * SEC;
    peer_send(&p, "1b");
    memset(big, 0x1b, sizeof big);
    peer_send_raw(&p, big, sizeof big);
    assert_int_equal(n.n, 3);
    assert_int_equal(n.len[0], 5);
    assert_memory_equal(n.value[0], "\x1b\x03\x00\x01\x02", 5);
    assert_int_equal(n.at[0], 5 * SEC);
    assert_int_equal(n.len[1], 1);
    assert_int_equal(n.at[1], 6 * SEC);
    assert_int_equal(n.len[2], ATT_MAX_LE_MTU + 1);   /* truncated to the buffer */
    att_set_rx_hook(p.att, NULL, NULL, NULL);
    peer_send(&p, "1b 03 00");
    assert_int_equal(n.n, 3);
    peer_close(&p);
}

/* The transmit hook: every PDU the bearer wrote, in the order written, with the entry
 * point's time; requests, Write Commands, confirmations and the bearer's Error Responses. */
struct txlog {
    int n;
    uint8_t pdu[16][32];
    size_t len[16];
    int64_t at[16];
    struct att *send_from_hook; /* sends a Write Command from inside the first call */
    int destroyed;
};

static void tx_hook(struct att *a, int64_t sent_ns, const uint8_t *pdu, size_t len, void *ud)
{
    struct txlog *t = ud;
    int i = t->n++;
    if (i >= 16)
        return;
    t->len[i] = len;
    t->at[i] = sent_ns;
    memcpy(t->pdu[i], pdu, len < 32 ? len : 32);
    if (i == 0 && t->send_from_hook) {
        uint8_t w[3] = {0x20, 0x00, 0x07};
        assert_int_equal(att_send(t->send_from_hook, ATT_OP_WRITE_CMD, w, 3, NULL, NULL, NULL), 0);
    }
}

static void txlog_destroy(void *ud)
{
    ((struct txlog *)ud)->destroyed++;
}

static void test_tx_hook_sees_every_pdu(void **state)
{
    struct peer p;
    struct txlog t = {0};
    struct rec r = {0};
    peer_open(&p);
    att_set_tx_hook(p.att, tx_hook, &t, txlog_destroy);
    assert_true(att_exchange_mtu(p.att, 100, on_rsp, &r, NULL) > 0);   /* bare: last time */
    expect_pdu(&p, "02 64 00");
    p.now = 1007 * SEC;
    peer_send(&p, "03 64 00");
    assert_true(read_req(&p, 0x0003, &r) > 0);
    expect_pdu(&p, "0a 03 00");
    p.now = 1008 * SEC;
    peer_send(&p, "1d 05 00 aa");            /* indication: confirmed */
    expect_pdu(&p, "1e");
    peer_send(&p, "0a 09 00");               /* the peer's request: Request Not Supported */
    expect_pdu(&p, "01 0a 00 00 06");
    uint8_t w[3] = {0x10, 0x00, 0x01};
    assert_int_equal(att_send(p.att, ATT_OP_WRITE_CMD, w, 3, NULL, NULL, NULL), 0);
    expect_pdu(&p, "52 10 00 01");
    peer_send(&p, "0b 01");
    assert_int_equal(t.n, 5);
    assert_int_equal(t.len[0], 3);
    assert_memory_equal(t.pdu[0], "\x02\x64\x00", 3);
    assert_int_equal(t.at[0], 1000 * SEC);   /* the time att_new was given */
    assert_memory_equal(t.pdu[1], "\x0a\x03\x00", 3);
    assert_int_equal(t.at[1], 1007 * SEC);
    assert_int_equal(t.len[2], 1);
    assert_int_equal(t.pdu[2][0], ATT_OP_CONFIRM);
    assert_int_equal(t.at[2], 1008 * SEC);
    assert_memory_equal(t.pdu[3], "\x01\x0a\x00\x00\x06", 5);
    assert_memory_equal(t.pdu[4], "\x52\x10\x00\x01", 4);
    assert_int_equal(att_stats(p.att)->tx_pdus, 5);
    /* a hook that sends: each PDU is written and reported once, in order */
    t.n = 0;
    t.send_from_hook = p.att;
    assert_true(read_req(&p, 0x0004, &r) > 0);
    expect_pdu(&p, "0a 04 00");
    expect_pdu(&p, "52 20 00 07");
    expect_none(&p);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.pdu[1][0], ATT_OP_WRITE_CMD);
    /* removed: its destroy runs, nothing more is reported */
    t.send_from_hook = NULL;
    att_set_tx_hook(p.att, NULL, NULL, NULL);
    assert_int_equal(t.destroyed, 1);
    peer_send(&p, "0b 02");
    assert_true(read_req(&p, 0x0005, &r) > 0);
    expect_pdu(&p, "0a 05 00");
    assert_int_equal(t.n, 2);
    peer_close(&p);
}

/* A transmit hook may free the bearer: nothing more is written or reported. */
static void tx_hook_frees(struct att *a, int64_t sent_ns, const uint8_t *pdu, size_t len,
                          void *ud)
{
    (*(int *)ud)++;
    att_free(a);
}

static void test_tx_hook_may_free(void **state)
{
    struct peer p;
    int calls = 0;
    uint8_t w[3] = {0x10, 0x00, 0x01};
    peer_open(&p);
    att_set_tx_hook(p.att, tx_hook_frees, &calls, NULL);
    assert_int_equal(att_send(p.att, ATT_OP_WRITE_CMD, w, 3, NULL, NULL, NULL), 0);
    assert_int_equal(calls, 1);
    expect_pdu(&p, "52 10 00 01");
    p.att = NULL;    /* freed by the hook */
    peer_close(&p);
}

static void test_send_limits(void **state)
{
    struct peer p;
    uint8_t b[600] = {3, 0};
    peer_open(&p);
    assert_int_equal(att_send(p.att, ATT_OP_WRITE_REQ, b, 23, NULL, NULL, NULL), -EMSGSIZE);
    assert_int_equal(att_send(p.att, ATT_OP_WRITE_CMD, b, 22, NULL, NULL, NULL), 0);
    expect_pdu(&p, "52 03 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
    assert_int_equal(att_send(p.att, ATT_OP_MTU_REQ, b, 2, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(att_send(p.att, ATT_OP_NOTIFY, b, 3, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(att_send(p.att, ATT_OP_CONFIRM, NULL, 0, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(att_send(p.att, ATT_OP_READ_RSP, b, 1, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(att_send(p.att, ATT_OP_SIGNED_WRITE_CMD, b, 14, NULL, NULL, NULL),
                     -EOPNOTSUPP);
    assert_int_equal(att_send(p.att, ATT_OP_READ_REQ, NULL, 2, NULL, NULL, NULL), -EINVAL);
    assert_true(att_send(p.att, ATT_OP_READ_REQ, b, 2, NULL, NULL, NULL) > 0);  /* on the wire */
    for (int i = 0; i < ATT_MAX_QUEUED; i++)
        assert_true(att_send(p.att, ATT_OP_READ_REQ, b, 2, NULL, NULL, NULL) > 0);
    assert_int_equal(att_send(p.att, ATT_OP_READ_REQ, b, 2, NULL, NULL, NULL), -ENOBUFS);
    peer_close(&p);
}

static void test_output_backpressure(void **state)
{
    struct peer p;
    uint8_t b[20] = {3, 0}, got[600];
    int queued = 0, sent = 0;
    peer_open(&p);
    int sz = 4096;
    setsockopt(p.fd[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    while (!att_want_write(p.att)) {
        assert_int_equal(att_send(p.att, ATT_OP_WRITE_CMD, b, sizeof b, NULL, NULL, NULL), 0);
        sent++;
        assert_true(sent < 100000);
    }
    while (att_send(p.att, ATT_OP_WRITE_CMD, b, sizeof b, NULL, NULL, NULL) == 0)
        queued++;
    assert_int_equal(queued, ATT_MAX_OUT - 1);
    assert_int_equal(att_send(p.att, ATT_OP_WRITE_CMD, b, sizeof b, NULL, NULL, NULL), -ENOBUFS);
    int drained = 0, rounds = 0;
    do {
        while (peer_recv(&p, got, sizeof got) > 0)
            drained++;
        assert_int_equal(att_on_writable(p.att, p.now), 0);
        assert_true(++rounds < 100);
    } while (att_want_write(p.att));
    while (peer_recv(&p, got, sizeof got) > 0)
        drained++;
    assert_int_equal(drained, sent + queued);
    assert_int_equal(att_stats(p.att)->tx_pdus, (uint64_t)(sent + queued));
    peer_close(&p);
}

/* ---- security raises ---- */

struct sec {
    int calls, levels[8], destroyed;
    uint8_t ecodes[8];
    int fail;            /* the transport cannot raise: the hook returns -EIO */
    int free_bearer;     /* the hook frees the bearer */
};

static int sec_hook(struct att *a, int level, uint8_t ecode, void *ud)
{
    struct sec *s = ud;
    if (s->calls < 8) {
        s->levels[s->calls] = level;
        s->ecodes[s->calls] = ecode;
    }
    s->calls++;
    if (s->free_bearer)
        att_free(a);
    return s->fail ? -EIO : 0;
}

static void sec_destroy(void *ud)
{
    ((struct sec *)ud)->destroyed++;
}

static void test_security_levels(void **state)
{
    static const struct { uint8_t ecode; int level, want; } cases[] = {
        {ATT_ECODE_ENCRYPTION, 1, 2}, {ATT_ECODE_ENCRYPTION, 2, 0}, {ATT_ECODE_ENCRYPTION, 3, 0},
        {ATT_ECODE_ENC_KEY_SIZE, 1, 2}, {ATT_ECODE_ENC_KEY_SIZE, 2, 0},
        {ATT_ECODE_AUTHENTICATION, 1, 2}, {ATT_ECODE_AUTHENTICATION, 2, 3},
        {ATT_ECODE_AUTHENTICATION, 3, 4}, {ATT_ECODE_AUTHENTICATION, 4, 0},
        {ATT_ECODE_AUTHORIZATION, 1, 0}, {ATT_ECODE_READ_NOT_PERMITTED, 1, 0}, {0x80, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(att_security_next(cases[i].ecode, cases[i].level), cases[i].want);
    struct peer p;
    struct sec s = {0};
    peer_open(&p);
    assert_int_equal(att_security(p.att), ATT_SECURITY_LOW);
    att_set_security_hook(p.att, ATT_SECURITY_HIGH, sec_hook, &s, sec_destroy);
    assert_int_equal(att_security(p.att), ATT_SECURITY_HIGH);
    att_set_security_hook(p.att, ATT_SECURITY_MEDIUM, NULL, NULL, NULL);   /* removed */
    assert_int_equal(s.destroyed, 1);
    peer_close(&p);
}

/* Insufficient Encryption on a Write Request: the hook raises the link to MEDIUM and the same
 * write goes out again, ahead of the read queued behind it; its success is what the caller
 * sees. The read's own Insufficient Authentication then raises to HIGH, once. */
static void test_security_raise_then_retry(void **state)
{
    struct peer p;
    struct rec w = {0}, r = {0};
    struct sec s = {0};
    peer_open(&p);
    att_set_security_hook(p.att, ATT_SECURITY_LOW, sec_hook, &s, sec_destroy);
    assert_true(att_send(p.att, ATT_OP_WRITE_REQ, "\x09\x00\x01\x00", 4, on_rsp, &w,
                         on_destroy) > 0);
    assert_true(read_req(&p, 3, &r) > 0);
    expect_pdu(&p, "12 09 00 01 00");
    peer_send(&p, "01 12 09 00 0f");
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.levels[0], ATT_SECURITY_MEDIUM);
    assert_int_equal(s.ecodes[0], ATT_ECODE_ENCRYPTION);
    assert_int_equal(att_security(p.att), ATT_SECURITY_MEDIUM);
    assert_int_equal(w.calls, 0);             /* not failed: sent again */
    expect_pdu(&p, "12 09 00 01 00");         /* the same PDU, before the queued read */
    expect_none(&p);
    peer_send(&p, "13");
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.last.err, 0);
    assert_int_equal(w.destroys, 1);
    expect_pdu(&p, "0a 03 00");
    peer_send(&p, "01 0a 03 00 05");          /* authentication on an encrypted link: HIGH */
    assert_int_equal(s.calls, 2);
    assert_int_equal(s.levels[1], ATT_SECURITY_HIGH);
    expect_pdu(&p, "0a 03 00");
    peer_send(&p, "0b 2a");
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last.err, 0);
    assert_int_equal(r.params[0], 0x2a);
    assert_int_equal(att_security(p.att), ATT_SECURITY_HIGH);
    expect_none(&p);
    peer_close(&p);
    assert_int_equal(s.destroyed, 1);
}

/* The hook cannot raise: the caller gets the peer's error as without a hook, and the level
 * is not asked for again on this bearer. */
static void test_security_hook_failure_passes_the_error(void **state)
{
    struct peer p;
    struct rec r[2] = {{0}};
    struct sec s = {.fail = 1};
    peer_open(&p);
    att_set_security_hook(p.att, ATT_SECURITY_LOW, sec_hook, &s, NULL);
    for (int i = 0; i < 2; i++) {
        assert_true(read_req(&p, 3, &r[i]) > 0);
        expect_pdu(&p, "0a 03 00");
        peer_send(&p, "01 0a 03 00 05");
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].last.err, -EACCES);
        assert_int_equal(r[i].last.ecode, ATT_ECODE_AUTHENTICATION);
        assert_int_equal(r[i].last.err_handle, 3);
        expect_none(&p);
    }
    assert_int_equal(s.calls, 1);             /* MEDIUM was asked for once */
    assert_int_equal(att_security(p.att), ATT_SECURITY_LOW);
    assert_int_equal(att_dead(p.att), 0);
    peer_close(&p);
}

/* The retry is refused again: that error is the caller's, the request is not sent a third
 * time, and an error no raise helps with never calls the hook. */
static void test_security_second_error_no_loop(void **state)
{
    struct peer p;
    struct rec r = {0}, q = {0};
    struct sec s = {0};
    peer_open(&p);
    att_set_security_hook(p.att, ATT_SECURITY_LOW, sec_hook, &s, NULL);
    assert_true(read_req(&p, 3, &r) > 0);
    expect_pdu(&p, "0a 03 00");
    peer_send(&p, "01 0a 03 00 0f");
    expect_pdu(&p, "0a 03 00");
    peer_send(&p, "01 0a 03 00 0c");          /* key size now: already encrypted, no raise */
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last.ecode, ATT_ECODE_ENC_KEY_SIZE);
    assert_int_equal(r.last.err, -EACCES);
    expect_none(&p);
    assert_int_equal(s.calls, 1);
    /* at MEDIUM, 0x05 asks for HIGH; the retry's 0x05 could ask for FIPS, but a request goes
     * back once only */
    assert_true(read_req(&p, 4, &q) > 0);
    expect_pdu(&p, "0a 04 00");
    peer_send(&p, "01 0a 04 00 05");
    expect_pdu(&p, "0a 04 00");
    peer_send(&p, "01 0a 04 00 05");
    assert_int_equal(q.calls, 1);
    assert_int_equal(q.last.ecode, ATT_ECODE_AUTHENTICATION);
    assert_int_equal(s.calls, 2);
    assert_int_equal(att_security(p.att), ATT_SECURITY_HIGH);
    expect_none(&p);
    assert_true(read_req(&p, 5, &q) > 0);     /* Read Not Permitted: no hook */
    expect_pdu(&p, "0a 05 00");
    peer_send(&p, "01 0a 05 00 02");
    assert_int_equal(q.last.err, -EPERM);
    assert_int_equal(s.calls, 2);
    peer_close(&p);
}

/* The order of requests holds around a retry: an error while three more wait sends the
 * refused one again first, then the others in their order; a retried request still has its
 * own 30 s. */
static void test_security_retry_keeps_order(void **state)
{
    struct peer p;
    struct rec r[4] = {{0}};
    struct sec s = {0};
    peer_open(&p);
    att_set_security_hook(p.att, ATT_SECURITY_LOW, sec_hook, &s, NULL);
    for (int i = 0; i < 4; i++)
        assert_true(read_req(&p, (uint16_t)(3 + i), &r[i]) > 0);
    expect_pdu(&p, "0a 03 00");
    peer_send(&p, "0b 01");
    expect_pdu(&p, "0a 04 00");
    p.now += 10 * SEC;
    peer_send(&p, "01 0a 04 00 0f");
    expect_pdu(&p, "0a 04 00");
    expect_none(&p);
    assert_int_equal(att_next_timeout(p.att), p.now + ATT_TIMEOUT_NS);
    peer_send(&p, "0b 02");
    expect_pdu(&p, "0a 05 00");
    peer_send(&p, "0b 03");
    expect_pdu(&p, "0a 06 00");
    peer_send(&p, "0b 04");
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].last.err, 0);
        assert_int_equal(r[i].params[0], i + 1);
    }
    expect_none(&p);
    peer_close(&p);
}

/* A cancelled request is not sent again; a hook that frees the bearer runs no callback. */
static void test_security_cancelled_and_freed(void **state)
{
    struct peer p;
    struct rec r = {0}, q = {0};
    struct sec s = {0};
    peer_open(&p);
    att_set_security_hook(p.att, ATT_SECURITY_LOW, sec_hook, &s, sec_destroy);
    int id = read_req(&p, 3, &r);
    assert_true(read_req(&p, 4, &q) > 0);
    expect_pdu(&p, "0a 03 00");
    assert_int_equal(att_cancel(p.att, id), 0);
    peer_send(&p, "01 0a 03 00 0f");
    assert_int_equal(s.calls, 0);
    assert_int_equal(r.calls, 0);
    expect_pdu(&p, "0a 04 00");
    s.free_bearer = 1;
    peer_send(&p, "01 0a 04 00 0f");
    p.att = NULL;                             /* freed by the hook */
    assert_int_equal(s.calls, 1);
    assert_int_equal(q.calls, 0);
    assert_int_equal(q.destroys, 1);
    assert_int_equal(s.destroyed, 1);
    peer_close(&p);
}

static void test_uuid_and_codec(void **state)
{
    struct att_uuid u, v;
    char s[40];
    uint16_t x;
    uint8_t w[16];
    assert_int_equal(att_uuid_parse(&u, "180d"), 0);
    assert_true(att_uuid_to16(&u, &x));
    assert_int_equal(x, 0x180d);
    assert_string_equal(att_uuid_str(&u, s, sizeof s), "0x180d");
    assert_int_equal(att_uuid_parse(&v, "0000180D-0000-1000-8000-00805F9B34FB"), 0);
    assert_true(att_uuid_eq(&u, &v));
    assert_int_equal(att_uuid_to_wire(&u, w), 2);
    assert_memory_equal(w, "\x0d\x18", 2);
    assert_int_equal(att_uuid_parse(&u, "00030001-78fc-48fe-8e23-433b3a1942d0"), 0);
    assert_false(att_uuid_to16(&u, &x));
    assert_string_equal(att_uuid_str(&u, s, sizeof s), "00030001-78fc-48fe-8e23-433b3a1942d0");
    assert_int_equal(att_uuid_to_wire(&u, w), 16);
    assert_int_equal(w[0], 0xd0);
    assert_int_equal(w[15], 0x00);
    assert_int_equal(w[14], 0x03);
    assert_int_equal(w[12], 0x01);
    assert_int_equal(att_uuid_from_wire(&v, w, 16), 0);
    assert_true(att_uuid_eq(&u, &v));
    assert_int_equal(att_uuid_from_wire(&v, w, 4), -EINVAL);
    assert_int_equal(att_uuid_parse(&u, "18d"), -EINVAL);
    assert_int_equal(att_uuid_parse(&u, "0x18g0"), -EINVAL);
    assert_int_equal(att_uuid_parse(&u, "00030001x78fc-48fe-8e23-433b3a1942d0"), -EINVAL);

    struct att_list l;
    const uint8_t fi[] = {0x01, 0x13, 0x00, 0x02, 0x29, 0x14, 0x00, 0x03, 0x29};
    assert_int_equal(att_parse_find_info(fi, sizeof fi, &l), 0);
    assert_int_equal(l.count, 2);
    assert_int_equal(att_get16(att_list_entry(&l, 1)), 0x14);
    const uint8_t rbt[] = {0x05, 0x0a, 0x00, 0x01, 0x02, 0x03};
    assert_int_equal(att_parse_read_by_type(rbt, sizeof rbt, &l), 0);
    assert_int_equal(l.count, 1);
    assert_int_equal(l.elen, 5);
    assert_int_equal(att_parse_read_by_type(rbt, 5, &l), -EPROTO);
    assert_int_equal(att_parse_read_by_group(rbt, sizeof rbt, &l), 0);
    const uint8_t grp[] = {0x03, 0, 0, 0};
    assert_int_equal(att_parse_read_by_group(grp, sizeof grp, &l), -EPROTO);
    assert_int_equal(att_parse_find_by_type(rbt, 4, &l), 0);
    assert_int_equal(att_parse_find_by_type(rbt, 5, &l), -EPROTO);
    assert_int_equal(att_parse_find_by_type(rbt, 0, &l), -EPROTO);
    struct att_error_rsp e;
    assert_int_equal(att_parse_error((const uint8_t *)"\x0a\x03\x00\x0a", 4, &e), 0);
    assert_int_equal(e.req_opcode, 0x0a);
    assert_int_equal(e.handle, 3);
    assert_int_equal(e.ecode, 0x0a);

    assert_int_equal(att_op_kind(0x0a), ATT_KIND_REQUEST);
    assert_int_equal(att_op_kind(0x0b), ATT_KIND_RESPONSE);
    assert_int_equal(att_op_kind(0x52), ATT_KIND_COMMAND);
    assert_int_equal(att_op_kind(0x1b), ATT_KIND_NOTIFY);
    assert_int_equal(att_op_kind(0x23), ATT_KIND_NOTIFY);
    assert_int_equal(att_op_kind(0x1d), ATT_KIND_INDICATE);
    assert_int_equal(att_op_kind(0x1e), ATT_KIND_CONFIRM);
    assert_int_equal(att_op_kind(0x3f), ATT_KIND_REQUEST);
    assert_int_equal(att_rsp_opcode(0x10), 0x11);
    assert_int_equal(att_rsp_opcode(0x1b), 0);
    assert_string_equal(att_op_str(0x10), "Read By Group Type Request");
    assert_string_equal(att_op_str(0x3f), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mtu_exchange_A),
        cmocka_unit_test(test_mtu_bounds),
        cmocka_unit_test(test_one_request_at_a_time),
        cmocka_unit_test(test_notification_not_a_response),
        cmocka_unit_test(test_indication_always_confirmed),
        cmocka_unit_test(test_error_mapping),
        cmocka_unit_test(test_malformed_responses),
        cmocka_unit_test(test_truncated_and_odd_pdus),
        cmocka_unit_test(test_peer_requests_not_supported),
        cmocka_unit_test(test_oversized_pdus),
        cmocka_unit_test(test_timeout_30s),
        cmocka_unit_test(test_timeout_of_chained_request),
        cmocka_unit_test(test_disconnect),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_free_from_callback),
        cmocka_unit_test(test_rx_hook_sees_every_pdu),
        cmocka_unit_test(test_tx_hook_sees_every_pdu),
        cmocka_unit_test(test_tx_hook_may_free),
        cmocka_unit_test(test_send_limits),
        cmocka_unit_test(test_output_backpressure),
        cmocka_unit_test(test_security_levels),
        cmocka_unit_test(test_security_raise_then_retry),
        cmocka_unit_test(test_security_hook_failure_passes_the_error),
        cmocka_unit_test(test_security_second_error_no_loop),
        cmocka_unit_test(test_security_retry_keeps_order),
        cmocka_unit_test(test_security_cancelled_and_freed),
        cmocka_unit_test(test_uuid_and_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
