/* drivers/ble_adv.c and ble_hci.c: advertising data byte by byte (every type, zero-length
 * end, truncated and overlong structures), the HCI codec (command bytes, event headers,
 * Command Complete/Status, legacy and extended advertising reports, multi-report packets,
 * truncations, wrong lengths), and the scanner over a socketpair with a fake controller in
 * the test (the command/complete exchange, error status, a controller that never answers,
 * filters by address, by Identity Resolving Key (also keys replaced while the scan runs) and
 * by service UUID, duplicate suppression, stop, a closed socket, freeing from a callback), and hci_dev_open() failing cleanly on a kernel without
 * Bluetooth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tests/ble_script.h"
#include "drivers/ble_hci.h"

/* ---- advertising data ---- */

/* The bytes of hex in hb; returns their count. */
static uint8_t hb[600];
static size_t hx(const char *hex)
{
    return hex_bytes(hex, hb, sizeof hb);
}

/* Malformed input: each case must fail with -EBADMSG and a reason containing why. */
struct bad_case {
    const char *hex;
    const char *why;
};
static void expect_bad(const struct bad_case *cases, size_t n,
                       int (*parse)(const char *hex, const char **why))
{
    for (size_t i = 0; i < n; i++) {
        const char *why = NULL;
        int e = parse(cases[i].hex, &why);
        if (e != -EBADMSG || !why || !strstr(why, cases[i].why))
            fail_msg("case %zu \"%s\": %d %s", i, cases[i].hex, e, why ? why : "(null)");
    }
}

static int bad_ad(const char *hex, const char **why)
{
    struct adv_data ad;
    return adv_parse(hb, hx(hex), &ad, why);
}

static void test_adv_flags_name_tx(void **state)
{
    struct adv_data ad;
    const char *why = "x";
    /* flags 06, complete name "PT", TX power -4 dBm */
    assert_int_equal(adv_parse(hb, hx("020106 03095054 020afc"), &ad, &why), 0);
    assert_null(why);
    assert_int_equal(ad.have, ADV_HAVE_FLAGS | ADV_HAVE_NAME | ADV_HAVE_TX_POWER);
    assert_int_equal(ad.flags, 0x06);
    assert_string_equal(ad.name, "PT");
    assert_int_equal(ad.name_complete, 1);
    assert_int_equal(ad.tx_power, -4);
    assert_int_equal(ad.n_structs, 3);
    /* flags with a reserved second octet: the first is kept */
    assert_int_equal(adv_parse(hb, hx("03011a00"), &ad, NULL), 0);
    assert_int_equal(ad.flags, 0x1a);
    /* empty data */
    assert_int_equal(adv_parse(hb, 0, &ad, NULL), 0);
    assert_int_equal(ad.n_structs, 0);
    assert_int_equal(ad.have, 0);
}

static void test_adv_names(void **state)
{
    struct adv_data ad;
    /* shortened then complete: the complete one wins */
    assert_int_equal(adv_parse(hb, hx("020841 0409414243"), &ad, NULL), 0);
    assert_string_equal(ad.name, "ABC");
    assert_int_equal(ad.name_complete, 1);
    /* complete then shortened: still the complete one */
    assert_int_equal(adv_parse(hb, hx("0409414243 020841"), &ad, NULL), 0);
    assert_string_equal(ad.name, "ABC");
    /* shortened only */
    assert_int_equal(adv_parse(hb, hx("03084142"), &ad, NULL), 0);
    assert_string_equal(ad.name, "AB");
    assert_int_equal(ad.name_complete, 0);
    /* control bytes and NUL become '?' (names end up in logs and JSON) */
    assert_int_equal(adv_parse(hb, hx("0509410a0042"), &ad, NULL), 0);
    assert_string_equal(ad.name, "A??B");
    /* an empty name is a name */
    assert_int_equal(adv_parse(hb, hx("0109"), &ad, NULL), 0);
    assert_true(ad.have & ADV_HAVE_NAME);
    assert_string_equal(ad.name, "");
}

static void test_adv_uuid_lists(void **state)
{
    struct adv_data ad;
    struct att_uuid u;
    /* incomplete 16-bit 180d 180f, complete 32-bit 0x12345678, complete 128-bit */
    assert_int_equal(adv_parse(hb, hx("05020d180f18 050578563412 "
                               "1107d042193a3b43238efe48fc7801000300"), &ad, NULL), 0);
    assert_int_equal(ad.n_uuids, 4);
    u = att_uuid16(0x180d);
    assert_true(att_uuid_eq(&ad.uuids[0], &u));
    u = att_uuid16(0x180f);
    assert_true(att_uuid_eq(&ad.uuids[1], &u));
    assert_int_equal(att_uuid_parse(&u, "12345678-0000-1000-8000-00805f9b34fb"), 0);
    assert_true(att_uuid_eq(&ad.uuids[2], &u));
    u = adv_uuid32(0x180d);
    struct att_uuid u16 = att_uuid16(0x180d);
    assert_true(att_uuid_eq(&u, &u16)); /* a 32-bit form of a 16-bit UUID is the same UUID */
    assert_int_equal(att_uuid_parse(&u, "00030001-78fc-48fe-8e23-433b3a1942d0"), 0);
    assert_true(att_uuid_eq(&ad.uuids[3], &u));
    assert_int_equal(ad.uuids_complete, 1);
    assert_true(adv_has_uuid(&ad, &u));
    u = att_uuid16(0x1805);
    assert_false(adv_has_uuid(&ad, &u));
    /* only incomplete lists */
    assert_int_equal(adv_parse(hb, hx("03020d18 050478563412"), &ad, NULL), 0);
    assert_int_equal(ad.uuids_complete, 0);
    assert_int_equal(ad.n_uuids, 2);
    /* an empty list is allowed (a device saying it has no 16-bit services) */
    assert_int_equal(adv_parse(hb, hx("0103"), &ad, NULL), 0);
    assert_int_equal(ad.n_uuids, 0);
    assert_int_equal(ad.uuids_complete, 1);
    /* more than ADV_MAX_UUIDS: the rest counted as dropped */
    uint8_t big[2 + 40];
    big[0] = 41;
    big[1] = ADV_T_UUID16_ALL;
    for (int i = 0; i < 20; i++)
        att_put16(big + 2 + 2 * i, (uint16_t)(0x1800 + i));
    assert_int_equal(adv_parse(big, sizeof big, &ad, NULL), 0);
    assert_int_equal(ad.n_uuids, ADV_MAX_UUIDS);
    assert_int_equal(ad.n_dropped, 20 - ADV_MAX_UUIDS);
}

static void test_adv_service_mfr(void **state)
{
    struct adv_data ad;
    struct att_uuid u;
    /* service data 180f "57" (16-bit), 32-bit 0xaabbccdd "01 02", 128-bit with no data,
     * manufacturer 0x0059 "de ad", manufacturer 0x004c with nothing after the id */
    assert_int_equal(adv_parse(hb, hx("04160f1857 0720ddccbbaa0102 "
                               "1121d042193a3b43238efe48fc7801000300 "
                               "05ff5900dead 03ff4c00"), &ad, NULL), 0);
    assert_int_equal(ad.n_svc, 3);
    u = att_uuid16(0x180f);
    assert_true(att_uuid_eq(&ad.svc[0].uuid, &u));
    assert_int_equal(ad.svc[0].len, 1);
    assert_int_equal(ad.svc[0].data[0], 0x57);
    assert_ptr_equal(ad.svc[0].data, hb + 4); /* borrowed from the buffer */
    u = adv_uuid32(0xaabbccdd);
    assert_true(att_uuid_eq(&ad.svc[1].uuid, &u));
    assert_int_equal(ad.svc[1].len, 2);
    assert_memory_equal(ad.svc[1].data, "\x01\x02", 2);
    assert_int_equal(att_uuid_parse(&u, "00030001-78fc-48fe-8e23-433b3a1942d0"), 0);
    assert_true(att_uuid_eq(&ad.svc[2].uuid, &u));
    assert_int_equal(ad.svc[2].len, 0);
    assert_true(adv_has_uuid(&ad, &u)); /* service data names its service */
    assert_int_equal(ad.n_mfr, 2);
    assert_int_equal(ad.mfr[0].company, 0x0059);
    assert_int_equal(ad.mfr[0].len, 2);
    assert_memory_equal(ad.mfr[0].data, "\xde\xad", 2);
    assert_int_equal(ad.mfr[1].company, 0x004c);
    assert_int_equal(ad.mfr[1].len, 0);
    /* five manufacturer structures: one dropped */
    assert_int_equal(adv_parse(hb, hx("03ff0100 03ff0200 03ff0300 03ff0400 03ff0500"), &ad,
                               NULL), 0);
    assert_int_equal(ad.n_mfr, ADV_MAX_MFR);
    assert_int_equal(ad.n_dropped, 1);
}

static void test_adv_zero_end_unknown(void **state)
{
    struct adv_data ad;
    /* legacy padding: zeros after the last structure, and garbage after a zero length */
    assert_int_equal(adv_parse(hb, hx("020106 00 0000000000"), &ad, NULL), 0);
    assert_int_equal(ad.n_structs, 1);
    assert_int_equal(adv_parse(hb, hx("020106 00 ff0102"), &ad, NULL), 0);
    assert_int_equal(ad.n_structs, 1);
    assert_int_equal(ad.n_mfr, 0);
    /* a leading zero: nothing */
    assert_int_equal(adv_parse(hb, hx("00020106"), &ad, NULL), 0);
    assert_int_equal(ad.n_structs, 0);
    /* unknown types (appearance 0x19, URI 0x24) and a structure of type only are skipped */
    assert_int_equal(adv_parse(hb, hx("03194000 022401 0124 020106"), &ad, NULL), 0);
    assert_int_equal(ad.n_unknown, 3);
    assert_int_equal(ad.n_structs, 4);
    assert_int_equal(ad.flags, 6);
}

static void test_adv_errors(void **state)
{
    static const struct bad_case cases[] = {
        {"020106 05095054", "runs past the end"},        /* name cut short */
        {"02", "runs past the end"},                     /* a length byte alone */
        {"0201", "runs past the end"},
        {"ff0102", "runs past the end"},
        {"0101", "empty flags"},
        {"04020d180f", "multiple of 2"},
        {"0405785634", "multiple of 4"},
        {"1007d042193a3b43238efe48fc78010003", "multiple of 16"},
        {"030afc00", "TX power"},
        {"010a", "TX power"},
        {"02160f", "shorter than its UUID"},
        {"0420ddccbb", "shorter than its UUID"},
        {"1021d042193a3b43238efe48fc78010003", "shorter than its UUID"},
        {"02ff59", "company identifier"},
        {"01ff", "company identifier"},
    };
    struct adv_data ad;
    expect_bad(cases, sizeof cases / sizeof cases[0], bad_ad);
    /* what came before the bad structure is kept */
    assert_int_equal(adv_parse(hb, hx("020106 030afc00"), &ad, NULL), -EBADMSG);
    assert_int_equal(ad.flags, 6);
    assert_int_equal(ad.n_structs, 1);
    /* overlong: more than ADV_DATA_MAX bytes; a name above 248 bytes (extended data) */
    static uint8_t big[ADV_DATA_MAX + 1];
    const char *why;
    assert_int_equal(adv_parse(big, sizeof big, &ad, &why), -EMSGSIZE);
    assert_non_null(strstr(why, "1650"));
    assert_int_equal(adv_parse(big, ADV_DATA_MAX, &ad, &why), 0); /* all zero: ends at once */
    memset(big, 'n', 251);
    big[0] = 250;
    big[1] = ADV_T_NAME_COMPLETE;
    assert_int_equal(adv_parse(big, 251, &ad, &why), -EBADMSG);
    assert_non_null(strstr(why, "248"));
    big[0] = 249; /* exactly 248 bytes of name */
    assert_int_equal(adv_parse(big, 250, &ad, &why), 0);
    assert_int_equal(strlen(ad.name), ADV_NAME_MAX);
}

/* ---- HCI codec ---- */

static void test_addr(void **state)
{
    struct hci_addr a;
    char s[18];
    assert_int_equal(hci_addr_parse("C4:7C:8D:6A:2F:01", &a), 0);
    assert_memory_equal(a.b, "\x01\x2f\x6a\x8d\x7c\xc4", 6); /* wire order */
    assert_string_equal(hci_addr_str(&a, s, sizeof s), "C4:7C:8D:6A:2F:01");
    assert_int_equal(hci_addr_parse("c4:7c:8d:6a:2f:0a", &a), 0);
    assert_string_equal(hci_addr_str(&a, s, sizeof s), "C4:7C:8D:6A:2F:0A");
    assert_int_equal(hci_addr_parse("C4:7C:8D:6A:2F", &a), -EINVAL);
    assert_int_equal(hci_addr_parse("C4-7C-8D-6A-2F-01", &a), -EINVAL);
    assert_int_equal(hci_addr_parse("G4:7C:8D:6A:2F:01", &a), -EINVAL);
    assert_int_equal(hci_addr_parse("C4:7C:8D:6A:2F:011", &a), -EINVAL);
    assert_true(hci_addr_is_random(HCI_ADDR_RANDOM));
    assert_true(hci_addr_is_random(HCI_ADDR_RANDOM_ID));
    assert_false(hci_addr_is_random(HCI_ADDR_PUBLIC));
    assert_false(hci_addr_is_random(HCI_ADDR_PUBLIC_ID));
}

static void test_commands(void **state)
{
    uint8_t b[32];
    struct hci_scan_params p = {.active = 0, .interval = 0x0010, .window = 0x0010};
    assert_int_equal(hci_cmd_scan_params(b, sizeof b, &p), 11);
    assert_memory_equal(b, "\x01\x0b\x20\x07\x00\x10\x00\x10\x00\x00\x00", 11);
    p = (struct hci_scan_params){1, 0x0060, 0x0030, 1, 0};
    assert_int_equal(hci_cmd_scan_params(b, sizeof b, &p), 11);
    assert_memory_equal(b, "\x01\x0b\x20\x07\x01\x60\x00\x30\x00\x01\x00", 11);
    assert_int_equal(hci_cmd_scan_enable(b, sizeof b, 1, 0), 6);
    assert_memory_equal(b, "\x01\x0c\x20\x02\x01\x00", 6);
    assert_int_equal(hci_cmd_scan_enable(b, sizeof b, 0, 1), 6);
    assert_memory_equal(b, "\x01\x0c\x20\x02\x00\x01", 6);
    assert_int_equal(hci_cmd_scan_enable(b, 5, 1, 0), 0); /* no room */
    assert_int_equal(hci_cmd_scan_params(b, 10, &p), 0);
    /* values the controller would refuse are refused here */
    const char *why;
    struct hci_scan_params badp[] = {
        {2, 0x10, 0x10, 0, 0}, {0, 0x03, 0x03, 0, 0}, {0, 0x4001, 0x10, 0, 0},
        {0, 0x10, 0x11, 0, 0}, {0, 0x10, 0x10, 4, 0}, {0, 0x10, 0x10, 0, 4},
    };
    for (size_t i = 0; i < sizeof badp / sizeof badp[0]; i++) {
        assert_int_equal(hci_scan_params_check(&badp[i], &why), -EINVAL);
        assert_non_null(why);
        assert_int_equal(hci_cmd_scan_params(b, sizeof b, &badp[i]), 0);
    }
}

static void test_events(void **state)
{
    struct hci_event ev;
    struct hci_cmd_result r;
    const char *why;
    /* Command Complete of LE Set Scan Parameters, status 0 */
    assert_int_equal(hci_event_parse(hb, hx("040e0401 0b2000"), &ev, &why), 0);
    assert_int_equal(ev.code, HCI_EV_CMD_COMPLETE);
    assert_int_equal(ev.plen, 4);
    assert_int_equal(hci_cmd_result_parse(&ev, &r, &why), 0);
    assert_int_equal(r.opcode, HCI_OP_LE_SET_SCAN_PARAMS);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.complete, 1);
    /* Command Status: 0x0c for the enable */
    assert_int_equal(hci_event_parse(hb, hx("040f04 0c01 0c20"), &ev, &why), 0);
    assert_int_equal(hci_cmd_result_parse(&ev, &r, &why), 0);
    assert_int_equal(r.opcode, HCI_OP_LE_SET_SCAN_ENABLE);
    assert_int_equal(r.status, 0x0c);
    assert_int_equal(r.complete, 0);
    /* the controller's "ready for commands" (opcode 0, no status) */
    assert_int_equal(hci_event_parse(hb, hx("040e03 010000"), &ev, &why), 0);
    assert_int_equal(hci_cmd_result_parse(&ev, &r, &why), 0);
    assert_int_equal(r.opcode, 0);
    /* malformed */
    assert_int_equal(hci_event_parse(hb, hx("040e03 010b20"), &ev, &why), 0);
    assert_int_equal(hci_cmd_result_parse(&ev, &r, &why), -EBADMSG); /* no status */
    assert_int_equal(hci_event_parse(hb, hx("040e02 010b"), &ev, &why), 0);
    assert_int_equal(hci_cmd_result_parse(&ev, &r, &why), -EBADMSG);
    assert_int_equal(hci_event_parse(hb, hx("040f03 00010c"), &ev, &why), 0);
    assert_int_equal(hci_cmd_result_parse(&ev, &r, &why), -EBADMSG);
    assert_int_equal(hci_event_parse(hb, hx("040500"), &ev, &why), 0);
    assert_int_equal(hci_cmd_result_parse(&ev, &r, &why), -ENOENT);
    /* headers: wrong plen either way, too short, not an event, empty */
    assert_int_equal(hci_event_parse(hb, hx("040e05 010b2000"), &ev, &why), -EBADMSG);
    assert_non_null(strstr(why, "parameter length"));
    assert_int_equal(hci_event_parse(hb, hx("040e03 010b2000"), &ev, &why), -EBADMSG);
    assert_int_equal(hci_event_parse(hb, hx("040e"), &ev, &why), -EBADMSG);
    assert_int_equal(hci_event_parse(hb, hx("02010203"), &ev, &why), -EPROTO);
    assert_int_equal(hci_event_parse(hb, 0, &ev, &why), -EBADMSG);
    /* status names and errnos */
    assert_string_equal(hci_status_str(0x0c), "Command Disallowed");
    assert_int_equal(hci_status_errno(0x0c), -EBUSY);
    assert_int_equal(hci_status_errno(0x01), -EOPNOTSUPP);
    assert_int_equal(hci_status_errno(0x12), -EINVAL);
    assert_int_equal(hci_status_errno(0x3a), -EIO);
    assert_int_equal(hci_status_errno(0), 0);
}

struct reps {
    int n;
    struct hci_adv_report r[8];
    uint8_t data[8][256];
};

static int take_rep(const struct hci_adv_report *r, void *ud)
{
    struct reps *x = ud;
    if (x->n < 8) {
        x->r[x->n] = *r;
        memcpy(x->data[x->n], r->data, r->len);
    }
    x->n++;
    return 0;
}

static int reports_hex(const char *hex, struct reps *x, const char **why)
{
    static uint8_t b[600];
    struct hci_event ev;
    memset(x, 0, sizeof *x);
    size_t n = hex_bytes(hex, b, sizeof b);
    int e = hci_event_parse(b, n, &ev, why);
    return e < 0 ? e : hci_adv_reports_parse(&ev, take_rep, x, why);
}

/* A malformed event delivers no report at all. */
static int bad_reports(const char *hex, const char **why)
{
    struct reps x;
    int e = reports_hex(hex, &x, why);
    return x.n ? -EEXIST : e;
}

/* Two legacy reports: ADV_IND from a random address with flags + 180d, SCAN_RSP from a public
 * one with a name; RSSI -60 and -72. */
#define TWO_REPORTS "043e 21 02 02" \
    " 00 01 012f6a8d7cc4 07 020106 03020d18 c4" \
    " 04 00 aabbccddeeff 04 03095054 b8"

static void test_legacy_reports(void **state)
{
    struct reps x;
    const char *why;
    assert_int_equal(reports_hex(TWO_REPORTS, &x, &why), 0);
    assert_int_equal(x.n, 2);
    assert_int_equal(x.r[0].extended, 0);
    assert_int_equal(x.r[0].evt_type, 0);
    assert_int_equal(x.r[0].props, HCI_ADV_LEGACY_PDU | HCI_ADV_CONNECTABLE | HCI_ADV_SCANNABLE);
    assert_int_equal(x.r[0].addr_type, HCI_ADDR_RANDOM);
    char s[18];
    assert_string_equal(hci_addr_str(&x.r[0].addr, s, sizeof s), "C4:7C:8D:6A:2F:01");
    assert_int_equal(x.r[0].len, 7);
    assert_memory_equal(x.data[0], "\x02\x01\x06\x03\x02\x0d\x18", 7);
    assert_int_equal(x.r[0].rssi, -60);
    assert_int_equal(x.r[0].tx_power, HCI_TX_POWER_UNKNOWN);
    assert_int_equal(x.r[0].data_status, HCI_DATA_COMPLETE);
    assert_int_equal(x.r[1].evt_type, 4);
    assert_int_equal(x.r[1].props, HCI_ADV_LEGACY_PDU | HCI_ADV_SCAN_RSP);
    assert_int_equal(x.r[1].addr_type, HCI_ADDR_PUBLIC);
    assert_string_equal(hci_addr_str(&x.r[1].addr, s, sizeof s), "FF:EE:DD:CC:BB:AA");
    assert_int_equal(x.r[1].rssi, -72);
    /* one report with no data, directed, RSSI unavailable */
    assert_int_equal(reports_hex("043e0c 0201 01 00 010203040506 00 7f", &x, &why), 0);
    assert_int_equal(x.n, 1);
    assert_int_equal(x.r[0].len, 0);
    assert_int_equal(x.r[0].rssi, HCI_RSSI_UNKNOWN);
    assert_true(x.r[0].props & HCI_ADV_DIRECTED);
    /* 31 bytes of data is the legacy maximum */
    char hex[400];
    snprintf(hex, sizeof hex, "043e%02x 0201 03 00 010203040506 1f %062d c0", 12 + 31, 0);
    assert_int_equal(reports_hex(hex, &x, &why), 0);
    assert_int_equal(x.r[0].len, 31);
    /* other events and subevents are not reports */
    assert_int_equal(reports_hex("043e0201 00", &x, &why), -ENOENT);
    assert_int_equal(reports_hex("040e0401 0b2000", &x, &why), -ENOENT);
}

static void test_reports_malformed(void **state)
{
    static const struct bad_case cases[] = {
        /* two reports announced, one present */
        {"043e13 0202 00 01 012f6a8d7cc4 07 020106 03020d18 c4", "cut short"},
        /* data length runs past the event (the RSSI byte missing) */
        {"043e12 0201 00 01 012f6a8d7cc4 07 020106 03020d18", "runs past"},
        /* cut inside the fixed part */
        {"043e06 0201 00 01 012f", "cut short"},
        /* a byte left over after the last report */
        {"043e14 0201 00 01 012f6a8d7cc4 07 020106 03020d18 c4 00", "left over"},
        /* no reports, too many reports */
        {"043e02 0200", "1..25"},
        {"043e02 021a", "1..25"},
        /* no report count, no subevent */
        {"043e01 02", "report count"},
        {"043e00", "subevent"},
        /* 32 bytes of legacy data */
        {"043e2c 0201 03 00 010203040506 20 "
         "0000000000000000000000000000000000000000000000000000000000000000 c0", "31 bytes"},
        /* extended: cut in the fixed part; data past the end */
        {"043e0b 0d01 1300 01 010203040506", "cut short"},
        {"043e1d 0d01 1300 01 010203040506 01 00 ff 7f c4 0000 00 000000000000 05 020106",
         "runs past"},
    };
    expect_bad(cases, sizeof cases / sizeof cases[0], bad_reports);
    /* the first report is fine and the second is not: neither is delivered */
    struct reps x;
    const char *why;
    assert_int_equal(reports_hex("043e1b 0202 00 01 012f6a8d7cc4 03 020106 c4 "
                                 "04 00 aabbccddeeff 04 030950", &x, &why), -EBADMSG);
    assert_int_equal(x.n, 0);
}

static void test_ext_reports(void **state)
{
    struct reps x;
    const char *why;
    /* an extended connectable scannable advertisement (legacy PDU, 0x13) from a random
     * address on LE 1M, SID 0xff, tx 127 (unknown), RSSI -60, then an extended (non-legacy)
     * connectable one on Coded PHY with an incomplete fragment (data status 1) */
    assert_int_equal(reports_hex("043e 3d 0d02"
                                 " 1300 01 012f6a8d7cc4 01 00 ff 7f c4 0000 00 000000000000"
                                 "  07 020106 03020d18"
                                 " 2100 00 aabbccddeeff 03 03 02 f8 b8 5000 00 000000000000"
                                 "  04 0309 5054",
                                 &x, &why), 0);
    assert_int_equal(x.n, 2);
    assert_int_equal(x.r[0].extended, 1);
    assert_int_equal(x.r[0].evt_type, 0x13);
    assert_int_equal(x.r[0].props, HCI_ADV_LEGACY_PDU | HCI_ADV_CONNECTABLE | HCI_ADV_SCANNABLE);
    assert_int_equal(x.r[0].data_status, HCI_DATA_COMPLETE);
    assert_int_equal(x.r[0].addr_type, HCI_ADDR_RANDOM);
    assert_int_equal(x.r[0].addr.b[5], 0xc4);
    assert_int_equal(x.r[0].primary_phy, 1);
    assert_int_equal(x.r[0].sid, 0xff);
    assert_int_equal(x.r[0].tx_power, 127);
    assert_int_equal(x.r[0].rssi, -60);
    assert_int_equal(x.r[0].len, 7);
    assert_memory_equal(x.data[0], "\x02\x01\x06\x03\x02\x0d\x18", 7);
    assert_int_equal(x.r[1].props, HCI_ADV_CONNECTABLE);
    assert_int_equal(x.r[1].data_status, HCI_DATA_MORE);
    assert_int_equal(x.r[1].primary_phy, 3);
    assert_int_equal(x.r[1].secondary_phy, 3);
    assert_int_equal(x.r[1].sid, 2);
    assert_int_equal(x.r[1].tx_power, -8);
    assert_int_equal(x.r[1].rssi, -72);
    assert_int_equal(x.r[1].periodic_interval, 0x50);
    assert_int_equal(x.r[1].len, 4);
    /* an extended report may carry more than 31 bytes */
    char hex[600];
    snprintf(hex, sizeof hex, "043e%02x 0d01 0100 00 010203040506 01 00 00 7f c4 0000 00 "
             "000000000000 28 %080d", 2 + 24 + 40, 0);
    assert_int_equal(reports_hex(hex, &x, &why), 0);
    assert_int_equal(x.r[0].len, 40);
}

/* ---- the scanner over a socketpair ---- */

struct ctl {
    int fd[2];           /* fd[0] the scanner's, fd[1] the fake controller's */
    int64_t now;
    struct hci_scan *s;
    int reports, dones, done_starting, done_err;
    uint8_t done_status;
    struct hci_scan_result last;
    struct hci_adv_report rep[8];
    char names[8][ADV_NAME_MAX + 1];
    int free_in_report;
    uint8_t flags[8];   /* the AD is the scanner's only during the callback */
};

static void ctl_on_report(struct hci_scan *s, const struct hci_scan_result *r, void *ud)
{
    struct ctl *c = ud;
    if (c->reports < 8) {
        c->rep[c->reports] = r->rep;
        snprintf(c->names[c->reports], sizeof c->names[0], "%s", r->ad->name);
        c->flags[c->reports] = r->ad->flags;
    }
    c->reports++;
    c->last = *r;
    if (c->free_in_report)
        c->s = hci_scan_free(s);
}

static void ctl_on_done(struct hci_scan *s, int starting, int err, uint8_t status, void *ud)
{
    struct ctl *c = ud;
    c->dones++;
    c->done_starting = starting;
    c->done_err = err;
    c->done_status = status;
}

static void ctl_open(struct ctl *c, struct hci_scan_opts *o)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c->fd), 0);
    assert_int_equal(fcntl(c->fd[1], F_SETFL, O_NONBLOCK), 0);
    c->now = 1000 * SEC;
    o->on_report = ctl_on_report;
    o->on_done = ctl_on_done;
    o->user_data = c;
    c->s = hci_scan_new(c->fd[0], o);
    assert_non_null(c->s);
}

static void ctl_close(struct ctl *c)
{
    c->s = hci_scan_free(c->s);
    for (int i = 0; i < 2; i++)
        if (c->fd[i] >= 0)
            close(c->fd[i]);
}

/* The scanner must have written exactly this command. */
static void ctl_expect(struct ctl *c, const char *hex)
{
    uint8_t want[64], got[300];
    size_t n = hex_bytes(hex, want, sizeof want);
    ssize_t r = recv(c->fd[1], got, sizeof got, MSG_DONTWAIT);
    if (r != (ssize_t)n || memcmp(got, want, n) != 0)
        fail_msg("expected command %s, got %zd bytes (first %02x %02x %02x)", hex, r,
                 r > 0 ? got[0] : 0, r > 1 ? got[1] : 0, r > 2 ? got[2] : 0);
}

static void ctl_nothing(struct ctl *c)
{
    uint8_t got[300];
    assert_int_equal(recv(c->fd[1], got, sizeof got, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
}

/* The controller sends this packet and the scanner reads it. */
static void ctl_send(struct ctl *c, const char *hex)
{
    uint8_t b[600];
    size_t n = hex_bytes(hex, b, sizeof b);
    assert_int_equal(send(c->fd[1], b, n, 0), (ssize_t)n);
    assert_int_equal(hci_scan_on_readable(c->s, c->now), 0);
}

#define CC_DISABLE "040e04 01 0c20 00"
#define CC_PARAMS "040e04 01 0b20 00"
#define CC_ENABLE "040e04 01 0c20 00"
#define CMD_DISABLE "010c2002 0000"
#define CMD_PARAMS "010b2007 00 1000 1000 00 00"
#define CMD_ENABLE "010c2002 0100"

static void ctl_start(struct ctl *c)
{
    assert_int_equal(hci_scan_start(c->s, c->now), 0);
    ctl_expect(c, CMD_DISABLE);
    ctl_send(c, CC_DISABLE);
    ctl_expect(c, CMD_PARAMS);
    ctl_send(c, CC_PARAMS);
    ctl_expect(c, CMD_ENABLE);
    ctl_send(c, CC_ENABLE);
    assert_int_equal(c->dones, 1);
    assert_int_equal(c->done_starting, 1);
    assert_int_equal(c->done_err, 0);
    assert_int_equal(hci_scan_get_state(c->s), HCI_SCAN_ON);
}

static void test_scan_start_exchange(void **state)
{
    struct ctl c;
    struct hci_scan_opts o = {0};
    ctl_open(&c, &o);
    assert_int_equal(hci_scan_get_state(c.s), HCI_SCAN_IDLE);
    assert_int_equal(hci_scan_next_timeout(c.s), INT64_MAX);
    assert_int_equal(hci_scan_start(c.s, c.now), 0);
    assert_int_equal(hci_scan_start(c.s, c.now), -EALREADY);
    assert_int_equal(hci_scan_get_state(c.s), HCI_SCAN_STARTING);
    /* one command at a time: the disable, then nothing until it is answered */
    ctl_expect(&c, CMD_DISABLE);
    ctl_nothing(&c);
    assert_int_equal(hci_scan_next_timeout(c.s), c.now + HCI_CMD_TIMEOUT_NS);
    /* scanning was off: the controller may refuse the disable; that is fine */
    ctl_send(&c, "040e04 01 0c20 0c");
    ctl_expect(&c, CMD_PARAMS);
    /* another user's command completing, "ready", and a pending Command Status change
     * nothing */
    ctl_send(&c, "040e04 01 0310 00");
    ctl_send(&c, "040e03 01 0000");
    ctl_send(&c, "040f04 00 01 0b20");
    ctl_nothing(&c);
    assert_int_equal(c.dones, 0);
    c.now += SEC;
    ctl_send(&c, CC_PARAMS);
    ctl_expect(&c, CMD_ENABLE);
    assert_int_equal(hci_scan_next_timeout(c.s), c.now + HCI_CMD_TIMEOUT_NS);
    ctl_send(&c, CC_ENABLE);
    assert_int_equal(c.dones, 1);
    assert_int_equal(c.done_starting, 1);
    assert_int_equal(c.done_err, 0);
    assert_int_equal(hci_scan_get_state(c.s), HCI_SCAN_ON);
    assert_int_equal(hci_scan_next_timeout(c.s), INT64_MAX);
    assert_string_equal(hci_scan_strerror(c.s), "");
    const struct hci_scan_stats *st = hci_scan_get_stats(c.s);
    assert_int_equal(st->ignored, 2);
    assert_int_equal(st->events, 6);
    ctl_close(&c);
}

static void test_scan_params_sent(void **state)
{
    struct ctl c;
    struct hci_scan_opts o = {.params = {1, 0x0060, 0x0030, 1, 0}};
    ctl_open(&c, &o);
    assert_int_equal(hci_scan_start(c.s, c.now), 0);
    ctl_expect(&c, CMD_DISABLE);
    ctl_send(&c, CC_DISABLE);
    ctl_expect(&c, "010b2007 01 6000 3000 01 00");
    ctl_close(&c);
    /* bad parameters: no scanner */
    struct hci_scan_opts bad = {.params = {0, 0x0010, 0x0020, 0, 0}, .on_report = ctl_on_report};
    errno = 0;
    assert_null(hci_scan_new(3, &bad));
    assert_int_equal(errno, EINVAL);
    struct hci_scan_opts noreport = {0};
    assert_null(hci_scan_new(3, &noreport));
    struct hci_scan_opts toolong = {.on_report = ctl_on_report, .n_addrs = HCI_SCAN_FILTER_MAX + 1,
                                    .addrs = (struct hci_addr[1]){{{0}}}};
    assert_null(hci_scan_new(3, &toolong));
}

static void test_scan_error_status(void **state)
{
    struct ctl c;
    struct hci_scan_opts o = {0};
    ctl_open(&c, &o);
    assert_int_equal(hci_scan_start(c.s, c.now), 0);
    ctl_expect(&c, CMD_DISABLE);
    ctl_send(&c, CC_DISABLE);
    ctl_expect(&c, CMD_PARAMS);
    /* Command Disallowed: the kernel uses extended scanning */
    ctl_send(&c, "040e04 01 0b20 0c");
    assert_int_equal(c.dones, 1);
    assert_int_equal(c.done_starting, 1);
    assert_int_equal(c.done_err, -EBUSY);
    assert_int_equal(c.done_status, 0x0c);
    assert_int_equal(hci_scan_get_state(c.s), HCI_SCAN_IDLE);
    assert_non_null(strstr(hci_scan_strerror(c.s), "LE Set Scan Parameters"));
    assert_non_null(strstr(hci_scan_strerror(c.s), "Command Disallowed (0x0c)"));
    assert_non_null(strstr(hci_scan_strerror(c.s), "extended scanning"));
    ctl_nothing(&c); /* no enable after a failure */
    assert_int_equal(hci_scan_next_timeout(c.s), INT64_MAX);
    /* it can be started again; this time the enable fails with a Command Status */
    assert_int_equal(hci_scan_start(c.s, c.now), 0);
    ctl_expect(&c, CMD_DISABLE);
    ctl_send(&c, CC_DISABLE);
    ctl_expect(&c, CMD_PARAMS);
    ctl_send(&c, CC_PARAMS);
    ctl_expect(&c, CMD_ENABLE);
    ctl_send(&c, "040f04 01 01 0c20");
    assert_int_equal(c.dones, 2);
    assert_int_equal(c.done_err, -EOPNOTSUPP);
    assert_non_null(strstr(hci_scan_strerror(c.s), "LE Set Scan Enable: Unknown HCI Command"));
    assert_int_equal(hci_scan_get_state(c.s), HCI_SCAN_IDLE);
    ctl_close(&c);
}

static void test_scan_timeout(void **state)
{
    struct ctl c;
    struct hci_scan_opts o = {.cmd_timeout_ns = 3 * SEC};
    ctl_open(&c, &o);
    assert_int_equal(hci_scan_start(c.s, c.now), 0);
    ctl_expect(&c, CMD_DISABLE);
    assert_int_equal(hci_scan_next_timeout(c.s), c.now + 3 * SEC);
    hci_scan_on_timer(c.s, c.now + 3 * SEC - 1);
    assert_int_equal(c.dones, 0);
    hci_scan_on_timer(c.s, c.now + 3 * SEC);
    assert_int_equal(c.dones, 1);
    assert_int_equal(c.done_err, -ETIMEDOUT);
    assert_int_equal(c.done_status, 0);
    assert_int_equal(hci_scan_get_state(c.s), HCI_SCAN_IDLE);
    assert_string_equal(hci_scan_strerror(c.s), "LE Set Scan Enable not answered in 3.0 s");
    assert_int_equal(hci_scan_next_timeout(c.s), INT64_MAX);
    /* a late answer is ignored */
    ctl_send(&c, CC_DISABLE);
    ctl_nothing(&c);
    assert_int_equal(c.dones, 1);
    ctl_close(&c);
}

/* The reports of TWO_REPORTS with the given first address (hex, wire order) and UUID. */
static void send_reports(struct ctl *c, const char *addr, const char *uuid16)
{
    char hex[300];
    snprintf(hex, sizeof hex, "043e 21 02 02 00 01 %s 07 020106 0302%s c4"
             " 04 00 aabbccddeeff 04 03095054 b8", addr, uuid16);
    ctl_send(c, hex);
}

static void test_scan_filter_addr(void **state)
{
    struct ctl c;
    struct hci_addr want[2];
    assert_int_equal(hci_addr_parse("C4:7C:8D:6A:2F:01", &want[0]), 0);
    assert_int_equal(hci_addr_parse("11:22:33:44:55:66", &want[1]), 0);
    struct hci_scan_opts o = {.addrs = want, .n_addrs = 2};
    ctl_open(&c, &o);
    ctl_start(&c);
    send_reports(&c, "012f6a8d7cc4", "0d18");
    assert_int_equal(c.reports, 1); /* AA:BB.. is not wanted */
    assert_int_equal(c.rep[0].addr_type, HCI_ADDR_RANDOM);
    assert_int_equal(c.rep[0].rssi, -60);
    assert_int_equal(c.last.ad_err, 0);
    assert_int_equal(c.flags[0], 6);
    send_reports(&c, "665544332211", "0f18");
    assert_int_equal(c.reports, 2);
    char s[18];
    assert_string_equal(hci_addr_str(&c.rep[1].addr, s, sizeof s), "11:22:33:44:55:66");
    send_reports(&c, "010203040506", "0d18");
    assert_int_equal(c.reports, 2);
    const struct hci_scan_stats *st = hci_scan_get_stats(c.s);
    assert_int_equal(st->reports, 6);
    assert_int_equal(st->matched, 2);
    ctl_close(&c);
}

static void test_scan_filter_irk(void **state)
{
    struct ctl c;
    /* another key, and the Core spec's sample (Vol 3 Part H D.7), most significant first */
    static const uint8_t irks[2][16] = {
        {0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee,
         0xef, 0xf0},
        {0xec, 0x02, 0x34, 0xa3, 0x57, 0xc8, 0xad, 0x05, 0x34, 0x10, 0x10, 0xa6, 0x0a, 0x39,
         0x7d, 0x9b},
    };
    struct hci_addr id;
    assert_int_equal(hci_addr_parse("C4:7C:8D:6A:2F:03", &id), 0);
    struct hci_scan_opts o = {.addrs = &id, .n_addrs = 1, .irks = irks, .n_irks = 2};
    ctl_open(&c, &o);
    ctl_start(&c);
    /* 70:81:94:0D:FB:AA, random: made with the sample key */
    ctl_send(&c, "043e0c 0201 00 01 aafb0d948170 00 c0");
    assert_int_equal(c.reports, 1);
    assert_int_equal(c.last.irk, 1);
    /* the same bytes as a public address, or resolved by the controller (0x02): no key */
    ctl_send(&c, "043e0c 0201 00 00 aafb0d948170 00 c0");
    ctl_send(&c, "043e0c 0201 00 02 aafb0d948170 00 c0");
    /* 5A:1B:2C:D7:44:F1: an RPA of a key not in the filter */
    ctl_send(&c, "043e0c 0201 00 01 f144d72c1b5a 00 c0");
    /* non-resolvable (00) and static (11) addresses with the RPA's other bits */
    ctl_send(&c, "043e0c 0201 00 01 aafb0d948130 00 c0");
    ctl_send(&c, "043e0c 0201 00 01 aafb0d9481f0 00 c0");
    assert_int_equal(c.reports, 1);
    /* the identity address: by address, no key */
    ctl_send(&c, "043e0c 0201 00 00 032f6a8d7cc4 00 c0");
    assert_int_equal(c.reports, 2);
    assert_int_equal(c.last.irk, -1);
    /* another RPA of the same key (5A:1B:2C:02:81:32) in an extended report */
    ctl_send(&c, "043e 1a 0d01 1300 01 3281022c1b5a 01 00 ff 7f b0 0000 00 000000000000 00");
    assert_int_equal(c.reports, 3);
    assert_int_equal(c.last.irk, 1);
    assert_int_equal(hci_scan_get_stats(c.s)->matched, 3);
    ctl_close(&c);
    /* without other filters, every report, with the key where one resolves it */
    o = (struct hci_scan_opts){.irks = irks, .n_irks = 2, .dedupe_ns = -1};
    ctl_open(&c, &o);
    ctl_start(&c);
    ctl_send(&c, "043e0c 0201 00 01 aafb0d948170 00 c0");
    assert_int_equal(c.last.irk, 1);
    assert_int_equal(c.reports, 1);
    ctl_close(&c);
    o = (struct hci_scan_opts){.n_irks = 1, .on_report = ctl_on_report};
    assert_null(hci_scan_new(3, &o));

    /* keys set while the scan runs (one learnt in a bonding): from the next report on */
    o = (struct hci_scan_opts){.addrs = &id, .n_addrs = 1, .dedupe_ns = -1};
    ctl_open(&c, &o);
    ctl_start(&c);
    ctl_send(&c, "043e0c 0201 00 01 aafb0d948170 00 c0");
    assert_int_equal(c.reports, 0);
    assert_int_equal(hci_scan_set_irks(c.s, irks, 2), 0);
    ctl_send(&c, "043e0c 0201 00 01 aafb0d948170 00 c0");
    assert_int_equal(c.reports, 1);
    assert_int_equal(c.last.irk, 1);
    assert_int_equal(hci_scan_set_irks(c.s, irks + 1, 1), 0); /* the sample key alone */
    ctl_send(&c, "043e0c 0201 00 01 aafb0d948170 00 c0");
    assert_int_equal(c.reports, 2);
    assert_int_equal(c.last.irk, 0);
    assert_int_equal(hci_scan_set_irks(c.s, irks, HCI_SCAN_FILTER_MAX + 1), -EINVAL);
    assert_int_equal(hci_scan_set_irks(c.s, NULL, 1), -EINVAL);
    ctl_send(&c, "043e0c 0201 00 01 aafb0d948170 00 c0"); /* refused: the keys stay */
    assert_int_equal(c.reports, 3);
    assert_int_equal(hci_scan_set_irks(c.s, NULL, 0), 0); /* none: the address alone again */
    ctl_send(&c, "043e0c 0201 00 01 aafb0d948170 00 c0");
    ctl_send(&c, "043e0c 0201 00 00 032f6a8d7cc4 00 c0");
    assert_int_equal(c.reports, 4);
    assert_int_equal(c.last.irk, -1);
    ctl_close(&c);
}

static void test_scan_filter_uuid(void **state)
{
    struct ctl c;
    struct att_uuid want = att_uuid16(0x180d);
    struct hci_scan_opts o = {.uuids = &want, .n_uuids = 1};
    ctl_open(&c, &o);
    ctl_start(&c);
    send_reports(&c, "012f6a8d7cc4", "0d18");
    assert_int_equal(c.reports, 1);
    send_reports(&c, "010203040506", "0f18"); /* Battery only: not wanted */
    assert_int_equal(c.reports, 1);
    /* the UUID as service data, 128-bit in an extended report */
    ctl_send(&c, "043e 2c 0d01 1300 00 0a0b0c0d0e0f 01 00 ff 7f b0 0000 00 000000000000"
                 " 12 1106fb349b5f80000080001000000d180000");
    assert_int_equal(c.reports, 2);
    assert_int_equal(c.rep[1].extended, 1);
    ctl_send(&c, "043e 11 0201 03 00 0b0b0c0d0e0f 05 04160d1801 b0");
    assert_int_equal(c.reports, 3);
    assert_int_equal(c.last.ad->n_svc, 1);
    /* address and UUID filters together: either matches */
    ctl_close(&c);
    struct hci_addr a;
    assert_int_equal(hci_addr_parse("FF:EE:DD:CC:BB:AA", &a), 0);
    o = (struct hci_scan_opts){.uuids = &want, .n_uuids = 1, .addrs = &a, .n_addrs = 1};
    ctl_open(&c, &o);
    ctl_start(&c);
    send_reports(&c, "012f6a8d7cc4", "0d18");
    assert_int_equal(c.reports, 2); /* the 180d one, and AA:.. by address */
    assert_string_equal(c.names[1], "PT");
    /* bad AD in a wanted device's report: delivered with the parser's error */
    ctl_send(&c, "043e 0e 0201 00 00 aabbccddeeff 02 0501 b0");
    assert_int_equal(c.reports, 3);
    assert_int_equal(c.last.ad_err, -EBADMSG);
    assert_non_null(c.last.ad_why);
    assert_int_equal(hci_scan_get_stats(c.s)->bad_ad, 1);
    /* an incomplete extended fragment is not parsed, but still matched by address */
    c.now += HCI_SCAN_DEDUPE_NS;
    ctl_send(&c, "043e 1d 0d01 2100 00 aabbccddeeff 01 00 ff 7f b0 0000 00 000000000000"
                 " 03 020106");
    assert_int_equal(c.reports, 4);
    assert_int_equal(c.last.ad_err, -EAGAIN);
    ctl_close(&c);
}

static void test_scan_dedupe(void **state)
{
    struct ctl c;
    struct hci_scan_opts o = {.dedupe_ns = 5 * SEC};
    ctl_open(&c, &o);
    ctl_start(&c);
    send_reports(&c, "012f6a8d7cc4", "0d18");
    assert_int_equal(c.reports, 2); /* no filter: everything */
    c.now += 4 * SEC;
    send_reports(&c, "012f6a8d7cc4", "0d18");
    assert_int_equal(c.reports, 2);
    assert_int_equal(hci_scan_get_stats(c.s)->suppressed, 2);
    /* the same address as a scan response counts apart from its advertisement */
    ctl_send(&c, "043e 0f 0201 04 01 012f6a8d7cc4 03 020106 c4");
    assert_int_equal(c.reports, 3);
    assert_true(c.last.rep.props & HCI_ADV_SCAN_RSP);
    c.now += SEC; /* 5 s after the first: delivered again */
    send_reports(&c, "012f6a8d7cc4", "0d18");
    assert_int_equal(c.reports, 5);
    ctl_close(&c);
    /* dedupe off */
    o = (struct hci_scan_opts){.dedupe_ns = -1};
    ctl_open(&c, &o);
    ctl_start(&c);
    send_reports(&c, "012f6a8d7cc4", "0d18");
    send_reports(&c, "012f6a8d7cc4", "0d18");
    assert_int_equal(c.reports, 4);
    ctl_close(&c);
    /* more addresses than the table: the oldest is forgotten, nothing breaks */
    o = (struct hci_scan_opts){.dedupe_ns = 100 * SEC};
    ctl_open(&c, &o);
    ctl_start(&c);
    for (int i = 0; i < HCI_SCAN_DEDUPE_MAX + 10; i++) {
        char hex[100];
        snprintf(hex, sizeof hex, "043e0c 0201 03 00 %02x%02x00000000 00 c0", i & 0xff, i >> 8);
        ctl_send(&c, hex);
        c.now++;
    }
    assert_int_equal(c.reports, HCI_SCAN_DEDUPE_MAX + 10);
    ctl_send(&c, "043e0c 0201 03 00 000000000000 00 c0"); /* the first, evicted: new again */
    assert_int_equal(c.reports, HCI_SCAN_DEDUPE_MAX + 11);
    ctl_send(&c, "043e0c 0201 03 00 ff0100000000 00 c0"); /* a recent one: suppressed */
    assert_int_equal(c.reports, HCI_SCAN_DEDUPE_MAX + 11);
    ctl_close(&c);
}

static void test_scan_stop(void **state)
{
    struct ctl c;
    struct hci_scan_opts o = {0};
    ctl_open(&c, &o);
    /* idle: done at once, nothing sent */
    assert_int_equal(hci_scan_stop(c.s, c.now), 0);
    assert_int_equal(c.dones, 1);
    assert_int_equal(c.done_starting, 0);
    ctl_nothing(&c);
    c.dones = 0;
    ctl_start(&c);
    assert_int_equal(hci_scan_stop(c.s, c.now), 0);
    assert_int_equal(hci_scan_get_state(c.s), HCI_SCAN_STOPPING);
    ctl_expect(&c, CMD_DISABLE);
    assert_int_equal(hci_scan_stop(c.s, c.now), 0); /* already stopping: nothing more */
    ctl_nothing(&c);
    ctl_send(&c, CC_DISABLE);
    assert_int_equal(c.dones, 2);
    assert_int_equal(c.done_starting, 0);
    assert_int_equal(c.done_err, 0);
    assert_int_equal(hci_scan_get_state(c.s), HCI_SCAN_IDLE);
    /* stop during start: the command out is answered, the rest of start dropped, disable */
    c.dones = 0;
    assert_int_equal(hci_scan_start(c.s, c.now), 0);
    ctl_expect(&c, CMD_DISABLE);
    ctl_send(&c, CC_DISABLE);
    ctl_expect(&c, CMD_PARAMS);
    assert_int_equal(hci_scan_stop(c.s, c.now), 0);
    assert_int_equal(c.dones, 1);
    assert_int_equal(c.done_err, -ECANCELED);
    ctl_nothing(&c);
    ctl_send(&c, "040e04 01 0b20 0c"); /* whatever the parameters' outcome */
    ctl_expect(&c, CMD_DISABLE);
    ctl_send(&c, CC_DISABLE);
    assert_int_equal(c.dones, 2);
    assert_int_equal(c.done_starting, 0);
    assert_int_equal(c.done_err, 0);
    assert_int_equal(hci_scan_get_state(c.s), HCI_SCAN_IDLE);
    ctl_close(&c);
}

static void test_scan_socket_errors(void **state)
{
    struct ctl c;
    struct hci_scan_opts o = {0};
    ctl_open(&c, &o);
    ctl_start(&c);
    /* malformed and foreign packets are counted, not fatal */
    ctl_send(&c, "043e0c 0201 03 00 0102"); /* wrong plen */
    ctl_send(&c, "02 0100 0000");            /* ACL */
    ctl_send(&c, "040500");                  /* another event */
    const struct hci_scan_stats *st = hci_scan_get_stats(c.s);
    assert_int_equal(st->malformed, 1);
    assert_non_null(st->last_malformed);
    assert_int_equal(st->ignored, 2);
    assert_int_equal(c.reports, 0);
    /* an oversized packet */
    uint8_t big[400] = {4, 0x3e, 0xff};
    assert_int_equal(send(c.fd[1], big, sizeof big, 0), (ssize_t)sizeof big);
    assert_int_equal(hci_scan_on_readable(c.s, c.now), 0);
    assert_int_equal(st->malformed, 2);
    /* the controller goes away during a stop */
    assert_int_equal(hci_scan_stop(c.s, c.now), 0);
    close(c.fd[1]);
    c.fd[1] = -1;
    assert_int_equal(hci_scan_on_readable(c.s, c.now), -ECONNRESET);
    assert_int_equal(c.done_err, -ECONNRESET);
    assert_int_equal(hci_scan_get_state(c.s), HCI_SCAN_IDLE);
    assert_string_equal(hci_scan_strerror(c.s), "HCI socket: closed");
    /* writing to it now fails: start says so */
    assert_true(hci_scan_start(c.s, c.now) < 0);
    assert_int_equal(hci_scan_get_state(c.s), HCI_SCAN_IDLE);
    assert_non_null(strstr(hci_scan_strerror(c.s), "writing LE Set Scan Enable"));
    ctl_close(&c);
}

static void test_scan_free_in_callback(void **state)
{
    struct ctl c;
    struct hci_scan_opts o = {0};
    ctl_open(&c, &o);
    ctl_start(&c);
    c.free_in_report = 1;
    uint8_t b[100];
    size_t n = hex_bytes(TWO_REPORTS, b, sizeof b);
    assert_int_equal(send(c.fd[1], b, n, 0), (ssize_t)n);
    assert_int_equal(send(c.fd[1], b, n, 0), (ssize_t)n);
    struct hci_scan *s = c.s;
    assert_int_equal(hci_scan_on_readable(s, c.now), 0);
    assert_null(c.s);
    assert_int_equal(c.reports, 1); /* nothing after the free */
    ctl_close(&c);
}

static void test_dev_open_fails_cleanly(void **state)
{
    struct hci_dev_saved saved;
    char why[160] = "";
    int fd = hci_dev_open(-1, &saved, why, sizeof why);
    if (fd >= 0) {
        /* a host with Bluetooth: nothing to check here */
        hci_dev_close(fd, &saved);
        skip();
    }
    assert_true(fd < 0);
    assert_true(why[0] != '\0');
    assert_int_equal(saved.valid, 0);
    if (fd == -EAFNOSUPPORT)
        assert_string_equal(why, "no Bluetooth in this kernel (AF_BLUETOOTH not supported)");
    /* a named device fails the same way */
    why[0] = '\0';
    assert_true(hci_dev_open(0, &saved, why, sizeof why) < 0);
    assert_true(why[0] != '\0');
    hci_dev_close(-1, &saved); /* accepted */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adv_flags_name_tx),
        cmocka_unit_test(test_adv_names),
        cmocka_unit_test(test_adv_uuid_lists),
        cmocka_unit_test(test_adv_service_mfr),
        cmocka_unit_test(test_adv_zero_end_unknown),
        cmocka_unit_test(test_adv_errors),
        cmocka_unit_test(test_addr),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_legacy_reports),
        cmocka_unit_test(test_reports_malformed),
        cmocka_unit_test(test_ext_reports),
        cmocka_unit_test(test_scan_start_exchange),
        cmocka_unit_test(test_scan_params_sent),
        cmocka_unit_test(test_scan_error_status),
        cmocka_unit_test(test_scan_timeout),
        cmocka_unit_test(test_scan_filter_addr),
        cmocka_unit_test(test_scan_filter_irk),
        cmocka_unit_test(test_scan_filter_uuid),
        cmocka_unit_test(test_scan_dedupe),
        cmocka_unit_test(test_scan_stop),
        cmocka_unit_test(test_scan_socket_errors),
        cmocka_unit_test(test_scan_free_in_callback),
        cmocka_unit_test(test_dev_open_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
