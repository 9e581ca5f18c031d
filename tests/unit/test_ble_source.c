/* The pure parts of the daemon's BLE source (daemon/ble.h): the reconnect backoff schedule
 * (1 s doubling to 5 min, every delay within ±20 %, reproducible per source, reset), the
 * transport syntax check-config accepts, the device clock's offset and drift from Current Time
 * samples, and the status/<source> JSON (fields, order, nulls, escaping). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/ble.h"
#include "drivers/decode.h"
#include "pipeline/tz.h"

/* ---- backoff ---- */

static void test_backoff_doubles_to_five_minutes_within_jitter(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        struct ble_backoff b;
        ble_backoff_init(&b, ble_backoff_seed(seed, "w01"));
        int64_t base = 1000;
        for (int k = 0; k < 20; k++) {
            int64_t d = ble_backoff_next(&b);
            assert_true(d >= base * 8 / 10);
            assert_true(d < base * 12 / 10);
            base = base * 2 > BLE_BACKOFF_MAX_MS ? BLE_BACKOFF_MAX_MS : base * 2;
        }
    }
}

static void test_backoff_is_reproducible_per_source(void **state)
{
    (void)state;
    /* pinned: a change of the generator or of the schedule shows here */
    static const int64_t want[12] = {962,    1639,   3729,   6951,   18633,  26488,
                                     64624,  135867, 278844, 321441, 286407, 300653};
    struct ble_backoff a, b, c;
    ble_backoff_init(&a, ble_backoff_seed(20261126, "hr1"));
    ble_backoff_init(&b, ble_backoff_seed(20261126, "hr1"));
    ble_backoff_init(&c, ble_backoff_seed(20261126, "hr2"));
    int same_as_other = 0;
    for (int k = 0; k < 12; k++) {
        int64_t x = ble_backoff_next(&a), y = ble_backoff_next(&b), z = ble_backoff_next(&c);
        assert_int_equal(x, want[k]);
        assert_int_equal(x, y);
        same_as_other += x == z;
    }
    assert_true(same_as_other < 3); /* other sources retry at other moments */
    assert_int_not_equal(ble_backoff_seed(1, "hr1"), ble_backoff_seed(2, "hr1"));
}

static void test_backoff_reset_starts_again_at_one_second(void **state)
{
    (void)state;
    struct ble_backoff b;
    ble_backoff_init(&b, 42);
    for (int k = 0; k < 15; k++)
        ble_backoff_next(&b);
    assert_true(ble_backoff_next(&b) >= 240000);
    ble_backoff_reset(&b);
    int64_t d = ble_backoff_next(&b);
    assert_true(d >= 800 && d < 1200);
    d = ble_backoff_next(&b);
    assert_true(d >= 1600 && d < 2400);
}

static void test_backoff_jitter_is_spread(void **state)
{
    (void)state;
    struct ble_backoff b;
    ble_backoff_init(&b, 7);
    double sum = 0;
    int64_t lo = INT64_MAX, hi = 0;
    int below = 0;
    for (int i = 0; i < 20000; i++) {
        ble_backoff_reset(&b);
        int64_t d = ble_backoff_next(&b);
        sum += (double)d;
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        below += d < 1000;
    }
    assert_true(fabs(sum / 20000 - 1000) < 5);
    assert_true(lo >= 800 && lo < 805);
    assert_true(hi < 1200 && hi > 1195);
    assert_true(below > 9500 && below < 10500);
}

/* ---- transport ---- */

static void test_transport_syntax(void **state)
{
    (void)state;
    struct ble_transport t;
    char why[128];
    assert_int_equal(ble_transport_parse("", &t, why, sizeof why), 0);
    assert_int_equal(t.kind, BLE_LINK_L2CAP);
    assert_int_equal(t.addr_type, BLE_ADDR_PUBLIC);
    assert_int_equal(t.security, BLE_SEC_LOW);
    assert_int_equal(ble_transport_parse("l2cap", &t, why, sizeof why), 0);
    assert_int_equal(t.kind, BLE_LINK_L2CAP);
    assert_int_equal(ble_transport_parse("l2cap:random", &t, why, sizeof why), 0);
    assert_int_equal(t.addr_type, BLE_ADDR_RANDOM);
    assert_int_equal(t.security, BLE_SEC_LOW);
    assert_int_equal(ble_transport_parse("l2cap:medium,random", &t, why, sizeof why), 0);
    assert_int_equal(t.addr_type, BLE_ADDR_RANDOM);
    assert_int_equal(t.security, BLE_SEC_MEDIUM);
    assert_int_equal(ble_transport_parse("l2cap:public,fips", &t, why, sizeof why), 0);
    assert_int_equal(t.addr_type, BLE_ADDR_PUBLIC);
    assert_int_equal(t.security, BLE_SEC_FIPS);
    assert_int_equal(ble_transport_parse("l2cap:high", &t, why, sizeof why), 0);
    assert_int_equal(t.security, BLE_SEC_HIGH);
    assert_int_equal(ble_transport_parse("sim:/run/blesim/hr.sock", &t, why, sizeof why), 0);
    assert_int_equal(t.kind, BLE_LINK_SIM);
    assert_string_equal(t.path, "/run/blesim/hr.sock");

    static const struct { const char *in, *why; } bad[] = {
        {"sim:", "absolute"},
        {"sim:hr.sock", "absolute"},
        {"l2cap:", "unknown l2cap option \"\""},
        {"l2cap:random,", "unknown l2cap option \"\""},
        {"l2cap:sideways", "unknown l2cap option \"sideways\""},
        {"l2cap:public,random", "two address types"},
        {"l2cap:low,high", "two security levels"},
        {"L2CAP", "unknown transport"},
        {"dbus", "unknown transport"},
        {"l2capx", "unknown transport"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        assert_int_equal(ble_transport_parse(bad[i].in, &t, why, sizeof why), -EINVAL);
        assert_non_null(strstr(why, bad[i].why));
    }
    char longp[200] = "sim:/";
    memset(longp + 5, 'a', 110);
    assert_int_equal(ble_transport_parse(longp, &t, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "longer than 107"));
    assert_int_equal(ble_transport_parse("sideways", &t, NULL, 0), -EINVAL);
}

/* ---- device clock ---- */

static void test_clock_offset_and_drift(void **state)
{
    (void)state;
    struct ble_clock c;
    int64_t off;
    double ppm;
    ble_clock_reset(&c);
    assert_int_equal(ble_clock_offset(&c, &off), -ENODATA);
    assert_int_equal(ble_clock_drift(&c, &ppm), -ENODATA);
    /* a device 1.5 s behind that gains 50 ppm, read every 10 s with +-2 ms of noise */
    int64_t t0 = 1795700000000;
    for (int k = 0; k <= 12; k++) {
        int64_t hub = t0 + k * 10000;
        int64_t dev = hub - 1500 + (int64_t)llround(k * 10000 * 50e-6) + (k % 3 - 1) * 2;
        ble_clock_add(&c, hub, dev);
        assert_int_equal(ble_clock_offset(&c, &off), 0);
        assert_int_equal(off, dev - hub);
        if (k < 6)
            assert_int_equal(ble_clock_drift(&c, &ppm), -ENODATA); /* span < 60 s */
    }
    assert_int_equal(ble_clock_drift(&c, &ppm), 0);
    assert_true(fabs(ppm - 50) < 25);
    assert_int_equal(c.n, 13);
}

static void test_clock_exact_drift_and_ring(void **state)
{
    (void)state;
    struct ble_clock c;
    double ppm;
    ble_clock_reset(&c);
    /* exactly -100 ppm, 100 samples a minute apart: the ring keeps the last 32 */
    for (int k = 0; k < 100; k++) {
        int64_t hub = (int64_t)k * 60000;
        ble_clock_add(&c, hub, hub + 250 - k * 6);
    }
    assert_int_equal(c.n, BLE_CLOCK_SAMPLES);
    assert_int_equal(ble_clock_drift(&c, &ppm), 0);
    assert_true(fabs(ppm + 100) < 1e-6);
}

static void test_clock_set_restarts_the_estimate(void **state)
{
    (void)state;
    struct ble_clock c;
    int64_t off;
    double ppm;
    ble_clock_reset(&c);
    for (int k = 0; k < 10; k++)
        ble_clock_add(&c, k * 10000, k * 10000 + 40);
    assert_int_equal(ble_clock_drift(&c, &ppm), 0);
    assert_true(fabs(ppm) < 1e-9);
    /* the watch was set by its phone: 3 h ahead now */
    ble_clock_add(&c, 100000, 100000 + 3 * 3600000);
    assert_int_equal(c.n, 1);
    assert_int_equal(ble_clock_offset(&c, &off), 0);
    assert_int_equal(off, 3 * 3600000);
    assert_int_equal(ble_clock_drift(&c, &ppm), -ENODATA);
    /* within 2 s of the line: kept */
    ble_clock_add(&c, 110000, 110000 + 3 * 3600000 + 1500);
    assert_int_equal(c.n, 2);
}

/* When a reading calls for writing the device clock: beyond the tolerance either way (not
 * at it), or a date the device does not know, and at most once an hour on a link unless the
 * zone moved. */
/* The Local Time Information a zone calls for: standard offset and DST split, in
 * quarter-hours, for zones north and south, half and three-quarter hours, and refusals. */
static void test_lti_for_zone(void **state)
{
    (void)state;
    struct tz_db *db = tz_db_new(NULL);
    assert_non_null(db);
    static const struct {
        const char *zone;
        int64_t utc_ms;
        int tz, dst, rc;
    } cases[] = {
        {"America/New_York", INT64_C(1799020800000), -20, 0, 0}, /* 2027-01-04 */
        {"America/New_York", INT64_C(1814400000000), -20, 4, 0}, /* 2027-07-01 */
        /* either side of the March change, when half a year either side is summer twice */
        {"America/New_York", INT64_C(1805007599999), -20, 0, 0}, /* 2027-03-14 06:59:59.999 */
        {"America/New_York", INT64_C(1805007600000), -20, 4, 0},
        {"America/New_York", INT64_C(1793512799999), -20, 4, 0}, /* 2026-11-01 05:59:59.999 */
        {"America/New_York", INT64_C(1793512800000), -20, 0, 0},
        {"Europe/London", INT64_C(1799020800000), 0, 0, 0},
        {"Europe/London", INT64_C(1814400000000), 0, 4, 0},
        {"Australia/Sydney", INT64_C(1799020800000), 40, 4, 0}, /* summer in January */
        {"Australia/Sydney", INT64_C(1814400000000), 40, 0, 0},
        {"Australia/Lord_Howe", INT64_C(1799020800000), 42, 2, 0}, /* +10:30, DST 30 min */
        {"Asia/Kolkata", INT64_C(1814400000000), 22, 0, 0},
        {"Asia/Kathmandu", INT64_C(1814400000000), 23, 0, 0},
        {"UTC", INT64_C(1814400000000), 0, 0, 0},
        {"Pacific/Kiritimati", INT64_C(1814400000000), 56, 0, 0},            /* +14:00 */
        {"Africa/Monrovia", INT64_C(0), 0, 0, -ERANGE}, /* 1970: -0:44:30 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int err;
        const struct tz_zone *z = tz_db_get(db, cases[i].zone, &err);
        assert_non_null(z);
        struct dec_lti l = {0};
        int rc = ble_lti_for_zone(z, cases[i].utc_ms, &l);
        assert_int_equal(rc, cases[i].rc);
        if (rc < 0)
            continue;
        assert_true(l.has_tz && l.has_dst);
        assert_int_equal(l.tz_quarters, cases[i].tz);
        assert_int_equal(l.dst_quarters, cases[i].dst);
        int64_t off;
        assert_int_equal(dec_lti_offset_ms(&l, &off), 0);
        assert_int_equal(off, (int64_t)tz_offset(z, cases[i].utc_ms) * 1000);
    }
    tz_db_free(db);
}

static void test_clock_set_due(void **state)
{
    (void)state;
    const int64_t h = BLE_CLOCK_SET_MIN_MS * INT64_C(1000000), t0 = INT64_C(5000000000000);
    assert_int_equal(BLE_CLOCK_SET_MIN_MS, 3600000);
    /* no write yet on the link */
    assert_int_equal(ble_clock_set_due(1, 0, 1000, 0, t0, 0), 0);
    assert_int_equal(ble_clock_set_due(1, 1000, 1000, 0, t0, 0), 0);
    assert_int_equal(ble_clock_set_due(1, -1000, 1000, 0, t0, 0), 0);
    assert_int_equal(ble_clock_set_due(1, 1001, 1000, 0, t0, 0), 1);
    assert_int_equal(ble_clock_set_due(1, -1001, 1000, 0, t0, 0), 1);
    assert_int_equal(ble_clock_set_due(1, -400 * INT64_C(86400000), 1000, 0, t0, 0), 1);
    assert_int_equal(ble_clock_set_due(0, 0, 1000, 0, t0, 0), 1); /* date unknown */
    assert_int_equal(ble_clock_set_due(1, 30000, 120000, 0, t0, 0), 0);
    /* a write on this link 1 ns short of an hour ago, and exactly an hour ago */
    assert_int_equal(ble_clock_set_due(1, 5000, 1000, t0 - h + 1, t0, 0), 0);
    assert_int_equal(ble_clock_set_due(0, 0, 1000, t0 - h + 1, t0, 0), 0);
    assert_int_equal(ble_clock_set_due(1, 5000, 1000, t0 - h, t0, 0), 1);
    assert_int_equal(ble_clock_set_due(1, 500, 1000, t0 - h, t0, 0), 0);
    /* the zone moved since the last write (travel, DST): at once, but only when off */
    assert_int_equal(ble_clock_set_due(1, -3 * 3600000, 1000, t0 - 1, t0, 1), 1);
    assert_int_equal(ble_clock_set_due(0, 0, 1000, t0 - 1, t0, 1), 1);
    assert_int_equal(ble_clock_set_due(1, 500, 1000, t0 - 1, t0, 1), 0);
    /* what "off" means on its own (also the test of a write the device acknowledged) */
    assert_int_equal(ble_clock_off(1, 1000, 1000), 0);
    assert_int_equal(ble_clock_off(1, -1000, 1000), 0);
    assert_int_equal(ble_clock_off(1, 1001, 1000), 1);
    assert_int_equal(ble_clock_off(1, -1001, 1000), 1);
    assert_int_equal(ble_clock_off(0, 0, 1000), 1);
}

/* ---- status JSON ---- */

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(ble_state_name(BLE_ST_CONNECTING), "connecting");
    assert_string_equal(ble_state_name(BLE_ST_DISCOVERING), "discovering");
    assert_string_equal(ble_state_name(BLE_ST_STREAMING), "streaming");
    assert_string_equal(ble_state_name(BLE_ST_BACKOFF), "backoff");
    assert_string_equal(ble_state_name(BLE_ST_ERROR), "error");
    assert_string_equal(ble_state_name(_BLE_ST_MAX), "unknown");
}

static void test_status_json_streaming(void **state)
{
    (void)state;
    struct ble_status st = {
        .source = "hr1", .participant = "p01", .address = "C4:7C:8D:6A:2F:01",
        .transport = "sim:/tmp/a.s", .state = BLE_ST_STREAMING, .since_ms = 1795700000000,
        .now_ms = 1795700005000, .next_attempt_ms = 99, .attempts = 4, .connects = 2,
        .reconnects = 1, .failures = 3, .events = 1234, .no_contact = 2, .malformed = 1,
        .lost = 0, .last_notification_ms = 1795700004999, .battery_set = 1, .battery = 87,
        .mtu = 247, .cached = 1, .security_raises = 2,
        .profiles = BLE_PROF_HR | BLE_PROF_BATTERY | BLE_PROF_CTS,
        .offset_set = 1, .clock_offset_ms = -1520, .drift_set = 1, .clock_drift_ppm = 12.3456,
        .clock_samples = 5, .clock_sets = 1, .clock_last_set_ms = 1795700001000,
        .clock_refusals = 0, .clock_ignored = 3, .zone_set = 1, .clock_zone_ms = -14400000,
        .clock_zone_sets = 2, .manufacturer = "Pine64",
        .model = "PineTime",
    };
    char *s = ble_status_json(&st);
    assert_non_null(s);
    const char *want =
        "{\"source\":\"hr1\",\"driver\":\"ble\",\"participant\":\"p01\",\"address\":"
        "\"C4:7C:8D:6A:2F:01\",\"transport\":\"sim:/tmp/a.s\",\"state\":\"streaming\","
        "\"since\":1795700000000,\"time\":1795700005000,\"error\":null,\"next_attempt\":null,"
        "\"attempts\":4,\"connects\":2,\"reconnects\":1,\"failures\":3,\"events\":1234,"
        "\"last_notification\":1795700004999,\"battery\":87,\"mtu\":247,\"cached\":true,"
        "\"security_raises\":2,"
        "\"profiles\":[\"hr\",\"battery\",\"cts\"],\"clock_offset_ms\":-1520,"
        "\"clock_drift_ppm\":12.35,\"clock_samples\":5,\"clock_sets\":1,"
        "\"clock_last_set\":1795700001000,\"clock_refusals\":0,\"clock_ignored\":3,"
        "\"clock_zone_ms\":-14400000,\"clock_zone_sets\":2,"
        "\"no_contact\":2,\"malformed\":1,\"lost\":0,\"device\":{\"manufacturer\":\"Pine64\",\"model\":\"PineTime\","
        "\"serial\":null,\"firmware\":null},\"relay\":null,\"record\":null,\"scan\":null}";
    assert_string_equal(s, want);
    free(s);
}

/* A relay phone's counters and Status, and a capture that reached record_max. */
static void test_status_json_relay_and_record(void **state)
{
    (void)state;
    struct ble_status st = {
        .source = "ph1", .participant = "p01", .address = "C4:7C:8D:6A:2F:11",
        .transport = "sim:/tmp/p.s", .state = BLE_ST_STREAMING, .profiles = BLE_PROF_RELAY,
        .has_relay = 1,
        .relay = {.records = 120, .refused = 2, .skipped = 1, .acks = 30, .resumes = 3,
                  .left = 13, .held_back = 14, .pauses = 2,
                  .rx = {.errors = 4, .stale = 5, .duplicates = 6, .gaps = 1, .gap_records = 9},
                  .nudges_sent = 7, .nudges_resent = 3, .nudges_confirmed = 5,
                  .nudges_dropped = 0, .nudges_expired = 1, .nudges_unconfirmed = 0,
                  .nudges_restored = 4,
                  .nudges_waiting = 2, .have_phone = 1,
                  .phone = {.version = 1, .flags = RELAY_STATUS_PAUSED | RELAY_STATUS_OUTBOX_FULL,
                            .newest = 0, .pending = 11, .dropped = 12},
                  .phone_at_ms = 1795700001000},
        .has_record = 1,
        .record = {.records = 50, .dropped = 8, .size = 8190, .stopped = -EDQUOT},
    };
    char *s = ble_status_json(&st);
    assert_non_null(s);
    const char *relay =
        "\"relay\":{\"records\":120,\"refused\":2,\"skipped\":1,\"errors\":4,\"stale\":5,"
        "\"duplicates\":6,\"gaps\":1,\"gap_records\":9,\"resumes\":3,\"acks\":30,"
        "\"left\":13,\"held_back\":14,\"pauses\":2,"
        "\"nudges_sent\":7,\"nudges_resent\":3,\"nudges_confirmed\":5,\"nudges_dropped\":0,"
        "\"nudges_expired\":1,\"nudges_unconfirmed\":0,\"nudges_restored\":4,"
        "\"nudges_waiting\":2,"
        "\"phone_status\":1795700001000,\"phone_newest\":null,\"phone_pending\":11,"
        "\"phone_dropped\":12,\"phone_paused\":true,\"phone_outbox_full\":true},"
        "\"record\":{\"records\":50,\"bytes\":8190,\"not_recorded\":8,"
        "\"stopped\":\"record_max\"},\"scan\":null}";
    assert_non_null(strstr(s, relay));
    free(s);
    /* before the phone's Status arrives: no phone_* fields; a write error by name */
    st.relay.have_phone = 0;
    st.record.stopped = -ENOSPC;
    s = ble_status_json(&st);
    assert_non_null(s);
    assert_non_null(strstr(s, "\"phone_status\":null}"));
    assert_null(strstr(s, "phone_pending"));
    assert_non_null(strstr(s, "\"stopped\":\"No space left on device\"}"));
    free(s);
}

static void test_status_json_backoff_nulls_and_escaping(void **state)
{
    (void)state;
    struct ble_status st = {
        .source = "w07", .participant = "p07", .address = "C4:7C:8D:6A:2F:07",
        .transport = "l2cap", .state = BLE_ST_BACKOFF, .since_ms = 10, .now_ms = 20,
        .error = "device said \"no\"\n", .next_attempt_ms = 2010, .attempts = 1, .failures = 1,
        .profiles = BLE_PROF_MOTION | BLE_PROF_DIS | BLE_PROF_RELAY,
        .drift_set = 1, .clock_drift_ppm = NAN,
    };
    char *s = ble_status_json(&st);
    assert_non_null(s);
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "backoff");
    assert_string_equal(json_string_value(json_object_get(j, "error")), "device said \"no\"\n");
    assert_int_equal(json_integer_value(json_object_get(j, "next_attempt")), 2010);
    const char *nulls[] = {"last_notification", "battery", "mtu", "clock_offset_ms",
                           "clock_drift_ppm", "clock_last_set", "clock_zone_ms"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        assert_true(json_is_null(json_object_get(j, nulls[i])));
    assert_true(json_is_false(json_object_get(j, "cached")));
    json_t *p = json_object_get(j, "profiles");
    assert_int_equal(json_array_size(p), 3);
    assert_string_equal(json_string_value(json_array_get(p, 0)), "dis");
    assert_string_equal(json_string_value(json_array_get(p, 1)), "motion");
    assert_string_equal(json_string_value(json_array_get(p, 2)), "relay");
    json_t *dev = json_object_get(j, "device");
    assert_int_equal(json_object_size(dev), 4);
    assert_true(json_is_null(json_object_get(dev, "model")));
    /* every key, in the documented order */
    static const char *const keys[] = {
        "source", "driver", "participant", "address", "transport", "state", "since", "time",
        "error", "next_attempt", "attempts", "connects", "reconnects", "failures", "events",
        "last_notification", "battery", "mtu", "cached", "security_raises", "profiles",
        "clock_offset_ms", "clock_drift_ppm", "clock_samples", "clock_sets", "clock_last_set",
        "clock_refusals", "clock_ignored", "clock_zone_ms", "clock_zone_sets", "no_contact",
        "malformed", "lost",
        "device",
        "relay", "record", "scan"};
    assert_int_equal(json_object_size(j), sizeof keys / sizeof keys[0]);
    const char *at = s;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char k[40];
        snprintf(k, sizeof k, "\"%s\":", keys[i]);
        const char *f = strstr(at, k);
        assert_non_null(f);
        at = f;
    }
    json_decref(j);
    free(s);
    /* waiting states publish next_attempt; others do not */
    st.state = BLE_ST_ERROR;
    s = ble_status_json(&st);
    assert_non_null(strstr(s, "\"next_attempt\":2010"));
    free(s);
    st.state = BLE_ST_CONNECTING;
    s = ble_status_json(&st);
    assert_non_null(strstr(s, "\"next_attempt\":null"));
    free(s);
}

static void test_backoff_after_a_time_up(void **state)
{
    (void)state;
    struct ble_backoff b;
    ble_backoff_init(&b, 42);
    for (int i = 0; i < 5; i++)
        (void)ble_backoff_failed(&b, -1);
    /* not up, or up for less than a minute: the schedule goes on doubling */
    assert_true(ble_backoff_failed(&b, -1) >= 25600);
    assert_true(ble_backoff_failed(&b, BLE_BACKOFF_RESET_MS - 1) >= 51200);
    /* up for a minute: back to about a second */
    int64_t d = ble_backoff_failed(&b, BLE_BACKOFF_RESET_MS);
    assert_true(d >= 800 && d < 1200);
}

static void test_status_json_scan(void **state)
{
    (void)state;
    struct ble_status st = {
        .source = "hr3", .participant = "p01", .address = "C4:7C:8D:6A:2F:03",
        .transport = "l2cap", .state = BLE_ST_BACKOFF, .has_scan = 1,
        .scan = {.state = BLE_SCAN_RETRYING, .since_ms = 1000, .error = "HCI socket: closed",
                 .next_attempt_ms = 3000, .failures = 2, .rpa = "70:81:94:0D:FB:AA"},
    };
    char *s = ble_status_json(&st);
    assert_non_null(s);
    assert_non_null(strstr(s, ",\"scan\":{\"state\":\"retrying\",\"since\":1000,\"error\":"
                              "\"HCI socket: closed\",\"next_attempt\":3000,\"failures\":2,"
                              "\"rpa\":\"70:81:94:0D:FB:AA\"}}"));
    free(s);
    /* up: no next attempt, no error; starting the same */
    st.scan = (struct ble_scan_info){.state = BLE_SCAN_UP, .since_ms = 5000, .failures = 2,
                                     .next_attempt_ms = 3000};
    s = ble_status_json(&st);
    assert_non_null(strstr(s, "\"scan\":{\"state\":\"up\",\"since\":5000,\"error\":null,"
                              "\"next_attempt\":null,\"failures\":2,\"rpa\":null}"));
    free(s);
    assert_string_equal(ble_scan_state_name(BLE_SCAN_STARTING), "starting");
    assert_string_equal(ble_scan_state_name(_BLE_SCAN_MAX), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_to_five_minutes_within_jitter),
        cmocka_unit_test(test_backoff_is_reproducible_per_source),
        cmocka_unit_test(test_backoff_reset_starts_again_at_one_second),
        cmocka_unit_test(test_backoff_jitter_is_spread),
        cmocka_unit_test(test_transport_syntax),
        cmocka_unit_test(test_clock_offset_and_drift),
        cmocka_unit_test(test_clock_exact_drift_and_ring),
        cmocka_unit_test(test_clock_set_restarts_the_estimate),
        cmocka_unit_test(test_clock_set_due),
        cmocka_unit_test(test_lti_for_zone),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_backoff_after_a_time_up),
        cmocka_unit_test(test_status_json_scan),
        cmocka_unit_test(test_status_json_streaming),
        cmocka_unit_test(test_status_json_backoff_nulls_and_escaping),
        cmocka_unit_test(test_status_json_relay_and_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
