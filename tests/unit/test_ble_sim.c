/* The GATT client (drivers/ble_att.c, ble_gatt.c) against the peripheral simulator
 * (drivers/ble_sim.c, ble_sim_profiles.c) in-process over a socketpair, on test-controlled
 * time: full discovery of every profile checked against the simulator's own table,
 * notifications of every stream arriving as the bytes the simulator generated (Heart Rate
 * with every flag combination), reads of every profile, long values, the clock set through
 * CTS, indications confirmed, the cache skipping discovery on reconnect, Service Changed,
 * security raises (the control packet, refused raises), each injected fault, and the
 * simulator's answers to bad requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "drivers/ble_gatt.h"
#include "drivers/ble_sim.h"
#include "tests/ble_script.h"

#define MAX_NOTES 256

struct got {
    uint16_t handle;
    size_t len;
    uint8_t v[64];
};

struct link {
    int fd[2];
    struct att *att;
    struct blesim *sim;
    struct gatt *g;
    int64_t now;
    int ready_calls, ready_err;
    int changed_calls;
    uint16_t changed_start, changed_end;
    struct got notes[MAX_NOTES];
    int n_notes;
    int done_calls, done_err;
    int reads, read_err;
    int raises, raise_level;
    uint8_t value[ATT_MAX_VALUE_LEN];
    size_t value_len;
};

static void on_ready(struct gatt *g, int err, void *ud)
{
    struct link *l = ud;
    l->ready_calls++;
    l->ready_err = err;
}

static void on_changed(struct gatt *g, uint16_t start, uint16_t end, void *ud)
{
    struct link *l = ud;
    l->changed_calls++;
    l->changed_start = start;
    l->changed_end = end;
}

static void on_note(struct gatt *g, uint16_t h, const uint8_t *v, size_t len, int64_t at,
                    void *ud)
{
    struct link *l = ud;
    if (l->n_notes < MAX_NOTES && len <= sizeof l->notes[0].v) {
        l->notes[l->n_notes].handle = h;
        l->notes[l->n_notes].len = len;
        memcpy(l->notes[l->n_notes].v, v, len);
    }
    l->n_notes++;
}

static void on_done(struct gatt *g, int err, uint8_t ecode, void *ud)
{
    struct link *l = ud;
    l->done_calls++;
    l->done_err = err;
}

static void on_read(struct gatt *g, int err, uint8_t ecode, const uint8_t *v, size_t len,
                    void *ud)
{
    struct link *l = ud;
    l->reads++;
    l->read_err = err;
    l->value_len = len;
    if (len)
        memcpy(l->value, v, len);
}

/* Lets both sides read until neither has anything left. */
static void pump(struct link *l)
{
    for (int i = 0; i < 10000; i++) {
        int a = blesim_closed(l->sim) ? 0 : blesim_on_readable(l->sim, l->now);
        int b = att_dead(l->att) ? 0 : att_on_readable(l->att, l->now);
        if (a <= 0 && b <= 0)
            return;
    }
    fail_msg("the link never went quiet");
}

/* Moves time forward by dt, stopping at every simulator or bearer deadline on the way. */
static void run_for(struct link *l, int64_t dt)
{
    int64_t end = l->now + dt;
    for (int guard = 0; guard < 1000000; guard++) {
        int64_t t = blesim_next_timeout(l->sim), a = att_next_timeout(l->att);
        if (a < t)
            t = a;
        if (t > end)
            t = end;
        if (t > l->now)
            l->now = t;
        if (!blesim_closed(l->sim))
            blesim_on_timer(l->sim, l->now);
        if (!att_dead(l->att))
            att_on_timer(l->att, l->now);
        pump(l);
        if (l->now >= end && att_next_timeout(l->att) > l->now)
            return;
    }
    fail_msg("time did not advance");
}

static void link_sim(struct link *l, uint16_t server_mtu, unsigned profiles,
                     const struct blesim_profile_opts *o)
{
    memset(l, 0, sizeof *l);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, l->fd), 0);
    l->now = 50 * SEC;
    l->att = att_new(l->fd[0], l->now);
    l->sim = blesim_new(l->fd[1], server_mtu, l->now);
    assert_non_null(l->att);
    assert_non_null(l->sim);
    if (profiles)
        assert_int_equal(blesim_add_profiles(l->sim, profiles, o), 0);
}

/* BLE_TRACE=1 prints what the client receives (debugging aid). */
static void trace(struct att *a, int64_t at, const uint8_t *pdu, size_t len, void *ud)
{
    char s[2000];
    hex_str(pdu, len, s, sizeof s);
    fprintf(stderr, "< %s\n", s);
}

/* A client on the link (after a Service Changed of [start, end] on old's bearer when old is
 * given: gatt_new_changed), pumped until the simulator is quiet. */
static void link_client_after(struct link *l, uint16_t mtu, const struct att_uuid *wanted,
                              size_t n, struct gatt_cache *cache, const struct gatt *old,
                              uint16_t start, uint16_t end)
{
    struct gatt_opts go = {.mtu = mtu, .wanted = wanted, .n_wanted = n, .cache = cache,
                           .device = "sim-1", .ready = on_ready, .changed = on_changed,
                           .user_data = l};
    if (getenv("BLE_TRACE"))
        att_set_rx_hook(l->att, trace, NULL, NULL);
    l->g = old ? gatt_new_changed(l->att, &go, old, start, end) : gatt_new(l->att, &go);
    assert_non_null(l->g);
    pump(l);
}

static void link_client(struct link *l, uint16_t mtu, const struct att_uuid *wanted, size_t n,
                        struct gatt_cache *cache)
{
    link_client_after(l, mtu, wanted, n, cache, NULL, 0, 0);
}

static void link_close(struct link *l)
{
    l->g = gatt_free(l->g);
    l->att = att_free(l->att);
    l->sim = blesim_free(l->sim);
    close(l->fd[0]);
    close(l->fd[1]);
}

static struct att_uuid uuid(const char *s)
{
    struct att_uuid u;
    assert_int_equal(att_uuid_parse(&u, s), 0);
    return u;
}

static uint16_t value_handle(struct link *l, const char *u)
{
    struct att_uuid x = uuid(u);
    const struct gatt_chrc *c = gatt_db_chrc(gatt_get_db(l->g), NULL, &x);
    assert_non_null(c);
    assert_int_equal(c->value, blesim_find(l->sim, &x));
    return c->value;
}

static void test_discovers_every_profile(void **state)
{
    static const char *const services[] = {"1800", "1801", "180d", "180f", "1805", "180a",
                                           "00030000-78fc-48fe-8e23-433b3a1942d0"};
    struct att_uuid wanted[7];
    struct blesim_profile_opts o;
    struct link l;
    for (int i = 0; i < 7; i++)
        wanted[i] = uuid(services[i]);
    blesim_profile_defaults(&o);
    link_sim(&l, 0, BLESIM_PROFILE_ALL, &o);
    link_client(&l, 0, wanted, 7, NULL);
    assert_int_equal(l.ready_calls, 1);
    assert_int_equal(l.ready_err, 0);
    assert_int_equal(att_mtu(l.att), 517);
    assert_int_equal(blesim_mtu(l.sim), 517);
    const struct gatt_db *db = gatt_get_db(l.g);
    assert_int_equal(db->n_svc, 7);
    assert_int_equal(db->n_chrc, 20);
    size_t cccds = 0;
    for (size_t i = 0; i < db->n_chrc; i++) {
        const struct gatt_chrc *c = &db->chrc[i];
        const uint8_t *decl;
        size_t len;
        uint8_t w[16];
        /* every characteristic is the simulator's declaration, byte for byte */
        assert_int_equal(blesim_value(l.sim, c->decl, &decl, &len), 0);
        assert_int_equal(decl[0], c->props);
        assert_int_equal(att_get16(decl + 1), c->value);
        assert_int_equal(len, 3 + att_uuid_to_wire(&c->uuid, w));
        assert_memory_equal(decl + 3, w, len - 3);
        if (c->props & (GATT_PROP_NOTIFY | GATT_PROP_INDICATE)) {
            assert_int_equal(c->cccd, c->value + 1);
            cccds++;
        } else {
            assert_int_equal(c->cccd, 0);
        }
    }
    assert_int_equal(cccds, 6);
    /* Service Changed indications were enabled as the last step */
    assert_int_equal(blesim_cccd(l.sim, value_handle(&l, "2a05")), 2);
    for (size_t i = 0; i < db->n_svc; i++)
        assert_true(db->svc[i].n_chrc > 0);
    link_close(&l);
}

static void test_notifications_match_the_simulator(void **state)
{
    struct blesim_profile_opts o;
    struct link l;
    blesim_profile_defaults(&o);
    link_sim(&l, 0, BLESIM_PROFILE_ALL, &o);
    link_client(&l, 0, NULL, 0, NULL);
    uint16_t hr = value_handle(&l, "2a37"), bat = value_handle(&l, "2a19"),
             steps = value_handle(&l, "00030001-78fc-48fe-8e23-433b3a1942d0"),
             raw = value_handle(&l, "00030002-78fc-48fe-8e23-433b3a1942d0");
    uint16_t hs[] = {hr, bat, steps, raw};
    int ids[4];
    for (int i = 0; i < 4; i++)
        assert_true((ids[i] = gatt_subscribe(l.g, hs[i], on_note, on_done, &l, NULL)) > 0);
    pump(&l);
    assert_int_equal(l.done_calls, 4);
    assert_int_equal(l.done_err, 0);
    run_for(&l, 3 * SEC);
    int n_hr = 0, n_steps = 0, n_raw = 0;
    for (int i = 0; i < l.n_notes; i++) {
        struct got *g = &l.notes[i];
        uint8_t want[64];
        if (g->handle == hr) {
            size_t n = blesim_hr_value(&o, (uint64_t)n_hr++, 514, want);
            assert_int_equal(g->len, n);
            assert_memory_equal(g->v, want, n);
            /* decoded: contact detected + RR, u8 rate, one RR of 60/bpm s in 1/1024 s */
            assert_int_equal(g->v[0], 0x16);
            assert_int_equal(g->len, 4);
            assert_int_equal(att_get16(g->v + 2), 61440 / g->v[1]);
        } else if (g->handle == steps) {
            assert_int_equal(g->len, 4);
            assert_int_equal(att_get32(g->v), 1000 + 2 * n_steps++);
        } else if (g->handle == raw) {
            assert_int_equal(g->len, 6);
            int k = n_raw++;
            assert_int_equal((int16_t)att_get16(g->v), k * 37 % 2048 - 1024);
            assert_int_equal((int16_t)att_get16(g->v + 2), k * 53 % 2048 - 1024);
            assert_int_equal((int16_t)att_get16(g->v + 4), 1024 - k * 11 % 512);
        } else {
            fail_msg("notification on 0x%04x", g->handle);
        }
    }
    assert_int_equal(n_hr, 3);
    assert_int_equal(n_steps, 3);
    assert_int_equal(n_raw, 30);
    /* the latest value is also what a read returns */
    const uint8_t *v;
    size_t len;
    assert_int_equal(blesim_value(l.sim, steps, &v, &len), 0);
    assert_true(gatt_read(l.g, steps, on_read, &l, NULL) > 0);
    pump(&l);
    assert_int_equal(l.value_len, 4);
    assert_memory_equal(l.value, v, 4);
    /* the battery notifies once a minute, one percent lower each time (the other streams go
     * on, unheard) */
    assert_int_equal(gatt_unregister(l.g, ids[0]), 0);
    assert_int_equal(gatt_unregister(l.g, ids[2]), 0);
    assert_int_equal(gatt_unregister(l.g, ids[3]), 0);
    l.n_notes = 0;
    run_for(&l, 57 * SEC);
    int n_bat = 0;
    assert_int_equal(l.n_notes, 1);
    for (int i = 0; i < l.n_notes; i++)
        if (l.notes[i].handle == bat) {
            n_bat++;
            assert_int_equal(l.notes[i].len, 1);
            assert_int_equal(l.notes[i].v[0], 99);
        }
    assert_int_equal(n_bat, 1);
    assert_int_equal(att_stats(l.att)->malformed, 0);
    assert_int_equal(blesim_stats(l.sim)->dropped, 0);
    link_close(&l);
}

static void test_heart_rate_flag_combinations(void **state)
{
    for (unsigned flags = 0; flags < 0x20; flags++) {
        struct blesim_profile_opts o;
        struct link l;
        blesim_profile_defaults(&o);
        o.hr_flags = (uint8_t)flags;
        o.hr_rr_count = 9;      /* more than MTU 23 leaves room for */
        link_sim(&l, 23, BLESIM_PROFILE_HR, &o);
        link_client(&l, 0, NULL, 0, NULL);
        assert_int_equal(att_mtu(l.att), 23);
        uint16_t hr = value_handle(&l, "2a37");
        assert_true(gatt_subscribe(l.g, hr, on_note, NULL, &l, NULL) > 0);
        run_for(&l, 2 * SEC);
        assert_int_equal(l.n_notes, 2);
        for (int k = 0; k < 2; k++) {
            const struct got *g = &l.notes[k];
            uint8_t want[64];
            size_t n = blesim_hr_value(&o, (uint64_t)k, 20, want);
            assert_int_equal(g->len, n);
            assert_memory_equal(g->v, want, n);
            /* decode per GSS 0x2A37 */
            size_t p = 1;
            unsigned bpm = flags & 1 ? att_get16(g->v + 1) : g->v[1];
            p += flags & 1 ? 2 : 1;
            assert_int_equal(bpm, 60 + (unsigned)(k * 7 % 40));
            if (flags & 8) {
                assert_int_equal(att_get16(g->v + p), k);
                p += 2;
            }
            size_t rr = flags & 0x10 ? (g->len - p) / 2 : 0;
            assert_int_equal(p + 2 * rr, g->len);
            if (flags & 0x10)
                assert_int_equal(rr, (20 - p) / 2);    /* as many as fit */
            for (size_t i = 0; i < rr; i++)
                assert_int_equal(att_get16(g->v + p + 2 * i), 61440 / bpm + i);
        }
        link_close(&l);
    }
}

static void test_reads_of_every_profile(void **state)
{
    struct blesim_profile_opts o;
    struct link l;
    blesim_profile_defaults(&o);
    o.name = "PineTime sim";
    link_sim(&l, 0, BLESIM_PROFILE_ALL, &o);
    link_client(&l, 0, NULL, 0, NULL);
    static const struct { const char *uuid, *value; } strings[] = {
        {"2a00", "PineTime sim"}, {"2a29", "engaged"}, {"2a24", "blesim"},
        {"2a25", "SIM-0001"}, {"2a26", "1.0.0"}, {"2a27", "1.0"},
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        assert_true(gatt_read(l.g, value_handle(&l, strings[i].uuid), on_read, &l, NULL) > 0);
        pump(&l);
        assert_int_equal(l.read_err, 0);
        assert_int_equal(l.value_len, strlen(strings[i].value));
        assert_memory_equal(l.value, strings[i].value, l.value_len);
    }
    assert_true(gatt_read(l.g, value_handle(&l, "2a50"), on_read, &l, NULL) > 0);
    pump(&l);
    assert_int_equal(l.value_len, 7);
    assert_memory_equal(l.value, "\x01\xf1\x05\x01\x00\x00\x01", 7);
    assert_true(gatt_read(l.g, value_handle(&l, "2a19"), on_read, &l, NULL) > 0);
    pump(&l);
    assert_int_equal(l.value[0], 100);
    assert_true(gatt_read(l.g, value_handle(&l, "2a38"), on_read, &l, NULL) > 0);
    pump(&l);
    assert_int_equal(l.value[0], 2);
    assert_true(gatt_read(l.g, value_handle(&l, "2b2a"), on_read, &l, NULL) > 0);
    pump(&l);
    uint8_t hash[16];
    blesim_db_hash(l.sim, hash);
    assert_int_equal(l.value_len, 16);
    assert_memory_equal(l.value, hash, 16);
    /* HRM is notify-only: reading it is refused */
    assert_true(gatt_read(l.g, value_handle(&l, "2a37"), on_read, &l, NULL) > 0);
    pump(&l);
    assert_int_equal(l.read_err, -EPERM);

    /* Current Time: 2024-01-01T00:00:00Z at the start, Monday, then 90.5 s later */
    uint16_t ct = value_handle(&l, "2a2b");
    run_for(&l, 90 * SEC + SEC / 2);
    assert_true(gatt_read(l.g, ct, on_read, &l, NULL) > 0);
    pump(&l);
    assert_int_equal(l.value_len, 10);
    assert_memory_equal(l.value, "\xe8\x07\x01\x01\x00\x01\x1e\x01\x80\x00", 10);
    /* the hub sets the clock: 2025-06-30 12:34:56.25 (a Monday) */
    const uint8_t set[10] = {0xe9, 0x07, 6, 30, 12, 34, 56, 1, 64, 0};
    assert_true(gatt_write(l.g, ct, set, 10, on_done, &l, NULL) > 0);
    pump(&l);
    assert_int_equal(l.done_err, 0);
    assert_int_equal(blesim_cts_now(l.sim, l.now), 1751286896);
    run_for(&l, 10 * SEC);
    assert_true(gatt_read(l.g, ct, on_read, &l, NULL) > 0);
    pump(&l);
    assert_memory_equal(l.value, "\xe9\x07\x06\x1e\x0c\x23\x06\x01\x40\x00", 10);
    link_close(&l);
}

static void test_long_values_and_custom_service(void **state)
{
    uint8_t big[ATT_MAX_VALUE_LEN];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    for (int mtu_case = 0; mtu_case < 2; mtu_case++) {
        struct link l;
        link_sim(&l, 0, 0, NULL);
        struct att_uuid svc = uuid("a0b40001-926d-4d61-98df-8c5c62ee53b3"),
                        c1 = uuid("a0b40002-926d-4d61-98df-8c5c62ee53b3"),
                        c2 = uuid("a0b40003-926d-4d61-98df-8c5c62ee53b3"),
                        ud = att_uuid16(GATT_USER_DESC);
        assert_int_equal(blesim_add_service(l.sim, &svc, 1), 1);
        int h1 = blesim_add_chrc(l.sim, &c1, GATT_PROP_READ, big, 300);
        assert_int_equal(h1, 3);
        assert_int_equal(blesim_add_desc(l.sim, &ud, BLESIM_PERM_READ, "long", 4), 4);
        int h2 = blesim_add_chrc(l.sim, &c2, GATT_PROP_READ | GATT_PROP_WRITE, big, 512);
        assert_int_equal(h2, 6);
        assert_int_equal(blesim_add_chrc(l.sim, &c2, 0, big, 513), -EMSGSIZE);
        link_client(&l, mtu_case ? 517 : 23, &svc, 1, NULL);
        assert_int_equal(l.ready_err, 0);
        const struct gatt_db *db = gatt_get_db(l.g);
        assert_int_equal(db->n_chrc, 2);
        assert_int_equal(db->chrc[0].n_desc, 1);
        uint64_t before = blesim_stats(l.sim)->requests;
        assert_true(gatt_read(l.g, (uint16_t)h1, on_read, &l, NULL) > 0);
        pump(&l);
        assert_int_equal(l.read_err, 0);
        assert_int_equal(l.value_len, 300);
        assert_memory_equal(l.value, big, 300);
        /* MTU 23: one Read and 13 Read Blobs of 22 bytes; MTU 517: one Read */
        assert_int_equal(blesim_stats(l.sim)->requests - before, mtu_case ? 1 : 14);
        assert_true(gatt_read(l.g, (uint16_t)h2, on_read, &l, NULL) > 0);
        pump(&l);
        assert_int_equal(l.value_len, 512);
        assert_memory_equal(l.value, big, 512);
        link_close(&l);
    }
}

static void test_secondary_service_and_include(void **state)
{
    struct link l;
    struct att_uuid sec = att_uuid16(0x1822), prim = att_uuid16(0x1816), c = att_uuid16(0x2A5B);
    link_sim(&l, 0, 0, NULL);
    int sh = blesim_add_service(l.sim, &sec, 0);
    assert_int_equal(sh, 1);
    assert_true(blesim_add_chrc(l.sim, &c, GATT_PROP_READ, "\x01", 1) > 0);
    assert_int_equal(blesim_add_include(l.sim, 9), -EINVAL);
    assert_true(blesim_add_service(l.sim, &prim, 1) > 0);
    assert_int_equal(blesim_add_include(l.sim, (uint16_t)sh), 5);
    assert_true(blesim_add_chrc(l.sim, &c, GATT_PROP_NOTIFY, "\x02", 1) > 0);
    link_client(&l, 23, &prim, 1, NULL);
    assert_int_equal(l.ready_err, 0);
    const struct gatt_db *db = gatt_get_db(l.g);
    assert_int_equal(db->n_svc, 2);
    assert_int_equal(db->svc[0].primary, 0);
    assert_int_equal(db->svc[0].end, 3);
    assert_int_equal(db->svc[1].primary, 1);
    assert_int_equal(db->svc[1].start, 4);
    assert_int_equal(db->n_incl, 1);
    assert_int_equal(db->n_chrc, 2);
    assert_int_equal(db->chrc[1].cccd, 8);
    link_close(&l);
}

static void test_indications_are_confirmed(void **state)
{
    struct link l;
    link_sim(&l, 0, 0, NULL);
    struct att_uuid s = att_uuid16(0x183E), c = att_uuid16(0x2B3D);
    assert_true(blesim_add_service(l.sim, &s, 1) > 0);
    int h = blesim_add_chrc(l.sim, &c, GATT_PROP_INDICATE, "\x01", 1);
    assert_true(h > 0);
    assert_int_equal(blesim_indicate(l.sim, (uint16_t)h), 0);   /* not enabled yet */
    link_client(&l, 0, NULL, 0, NULL);
    assert_true(gatt_subscribe(l.g, (uint16_t)h, on_note, on_done, &l, NULL) > 0);
    pump(&l);
    assert_int_equal(blesim_cccd(l.sim, (uint16_t)h), 2);
    for (int i = 0; i < 5; i++) {
        uint8_t v = (uint8_t)(10 + i);
        blesim_set_value(l.sim, (uint16_t)h, &v, 1);
        assert_int_equal(blesim_indicate(l.sim, (uint16_t)h), 1);
        assert_int_equal(blesim_indicate(l.sim, (uint16_t)h), -EBUSY);  /* one at a time */
        pump(&l);
    }
    assert_int_equal(l.n_notes, 5);
    assert_int_equal(l.notes[4].v[0], 14);
    assert_int_equal(blesim_stats(l.sim)->indications, 5);
    assert_int_equal(blesim_stats(l.sim)->confirmations, 5);
    assert_int_equal(att_stats(l.att)->indications, 5);
    link_close(&l);
}

static void test_cache_on_reconnect_and_service_changed(void **state)
{
    struct gatt_cache *cache = gatt_cache_new(8);
    struct blesim_profile_opts o;
    struct link l;
    struct att_uuid hr_svc = att_uuid16(0x180D);
    blesim_profile_defaults(&o);
    link_sim(&l, 0, BLESIM_PROFILE_ALL, &o);
    link_client(&l, 0, &hr_svc, 1, cache);
    assert_int_equal(l.ready_err, 0);
    assert_false(gatt_from_cache(l.g));
    uint64_t full = blesim_stats(l.sim)->requests;
    assert_int_equal(blesim_stats(l.sim)->discovery, 14);
    link_close(&l);
    assert_int_equal(gatt_cache_count(cache), 1);

    /* reconnect to the same database: MTU, features, hash, Service Changed CCCD; no discovery */
    link_sim(&l, 0, BLESIM_PROFILE_ALL, &o);
    link_client(&l, 0, &hr_svc, 1, cache);
    assert_int_equal(l.ready_err, 0);
    assert_true(gatt_from_cache(l.g));
    assert_int_equal(blesim_stats(l.sim)->requests, 4);
    /* against MTU, features, hash, 3 + 1 for primary (16-bit, then 128-bit UUIDs) and
     * secondary services, 1 for includes, 3 for the 20 characteristics, 6 Find Information,
     * the Service Changed CCCD */
    assert_int_equal(full, 18);
    assert_int_equal(blesim_stats(l.sim)->discovery, 0);   /* 14 on the first connection */
    uint16_t hr = value_handle(&l, "2a37");
    assert_true(gatt_subscribe(l.g, hr, on_note, NULL, &l, NULL) > 0);
    run_for(&l, 2 * SEC);
    assert_int_equal(l.n_notes, 2);

    /* the server's database changes: the client is told and forgets the entry */
    assert_int_equal(blesim_service_changed(l.sim, 0x0010, 0xffff), 1);
    pump(&l);
    assert_int_equal(l.changed_calls, 1);
    assert_int_equal(l.changed_start, 0x0010);
    assert_int_equal(l.changed_end, 0xffff);
    assert_int_equal(blesim_stats(l.sim)->confirmations, 1);
    assert_int_equal(gatt_cache_count(cache), 0);
    link_close(&l);

    /* a different database under the same key: the hash differs, discovery runs */
    link_sim(&l, 0, BLESIM_PROFILE_ALL, &o);
    link_client(&l, 0, NULL, 0, cache);
    link_close(&l);
    link_sim(&l, 0, BLESIM_PROFILE_HR | BLESIM_PROFILE_GATT, &o);
    link_client(&l, 0, NULL, 0, cache);
    assert_int_equal(l.ready_err, 0);
    assert_false(gatt_from_cache(l.g));
    assert_int_equal(gatt_get_db(l.g)->n_svc, 3);
    link_close(&l);
    gatt_cache_free(cache);
}

/* The simulated device adds a service while connected (blesim_change_services): Service
 * Changed names the new handles, and a new client on the same bearer (no second MTU exchange)
 * discovers the grown database in full and sees the new service's stream once subscribed. */
static void test_database_change_rediscovered_on_the_same_bearer(void **state)
{
    struct gatt_cache *cache = gatt_cache_new(8);
    struct blesim_profile_opts o;
    struct link l;
    blesim_profile_defaults(&o);
    o.battery_period_ms = 1000;
    o.battery_level = 61;
    link_sim(&l, 0, BLESIM_PROFILE_GATT | BLESIM_PROFILE_HR, &o);
    link_client(&l, 0, NULL, 0, cache);
    assert_int_equal(l.ready_err, 0);
    const struct gatt_db *db = gatt_get_db(l.g);
    size_t n_svc = db->n_svc;
    uint16_t last = 0;
    for (size_t i = 0; i < db->n_svc; i++)
        last = db->svc[i].end > last ? db->svc[i].end : last;
    struct att_uuid bat = att_uuid16(0x180F);
    assert_null(gatt_db_service(gatt_get_db(l.g), &bat));
    assert_int_equal(blesim_change_services(l.sim, BLESIM_PROFILE_GATT), -EINVAL);
    assert_int_equal(blesim_change_services(l.sim, BLESIM_PROFILE_BATTERY), 1);
    pump(&l);
    assert_int_equal(l.changed_calls, 1);
    assert_int_equal(l.changed_start, last + 1);
    assert_int_equal(l.changed_end, 0xffff);
    assert_int_equal(gatt_cache_count(cache), 0);

    /* as the daemon does: outside the callback, a new client on the same bearer */
    l.g = gatt_free(l.g);
    uint64_t before = blesim_stats(l.sim)->requests;
    l.ready_calls = 0;
    link_client(&l, 0, &bat, 1, cache);
    assert_int_equal(l.ready_calls, 1);
    assert_int_equal(l.ready_err, 0);
    assert_false(gatt_from_cache(l.g));
    assert_int_equal(gatt_get_db(l.g)->n_svc, n_svc + 1);
    const struct gatt_service *sv = gatt_db_service(gatt_get_db(l.g), &bat);
    assert_non_null(sv);
    assert_int_equal(sv->start, last + 1);
    assert_int_equal(gatt_cache_count(cache), 1);
    /* MTU exchange not repeated: the first request of the new client is Read By Type */
    assert_true(blesim_stats(l.sim)->requests > before);
    assert_int_equal(att_mtu(l.att), 517);
    uint16_t h = value_handle(&l, "2a19");
    assert_true(gatt_subscribe(l.g, h, on_note, NULL, &l, NULL) > 0);
    run_for(&l, 2 * SEC);
    int battery = 0;
    for (int i = 0; i < l.n_notes; i++)
        battery += l.notes[i].handle == h && l.notes[i].len == 1 && l.notes[i].v[0] < 61;
    assert_true(battery >= 1);
    link_close(&l);
    gatt_cache_free(cache);
}

/* The database a full discovery finds on a simulator of profiles, then grown by change. */
static void export_full(unsigned profiles, unsigned change, uint8_t **blob, size_t *len)
{
    struct blesim_profile_opts o;
    struct link l;
    blesim_profile_defaults(&o);
    o.battery_period_ms = 500;
    link_sim(&l, 0, profiles, &o);
    assert_int_equal(blesim_change_services(l.sim, change), 0); /* nobody to indicate to */
    link_client(&l, 0, NULL, 0, NULL);
    assert_int_equal(l.ready_err, 0);
    assert_int_equal(gatt_db_export(gatt_get_db(l.g), blob, len), 0);
    link_close(&l);
}

/* After a Service Changed of [start, end], gatt_new_changed keeps what lies outside and
 * discovers only the range: the merged database is byte for byte what a full discovery of
 * the changed server finds, in at most half the requests of a full discovery (8 against 17
 * here, at the 23-byte MTU). A range that cuts through a service means a full discovery. A
 * change indicated while the range is read again is seen (the kept Service Changed handle). */
static void test_changed_range_discovered_alone(void **state)
{
    const unsigned base = BLESIM_PROFILE_GATT | BLESIM_PROFILE_HR | BLESIM_PROFILE_DIS;
    struct blesim_profile_opts o;
    struct link l;
    blesim_profile_defaults(&o);
    o.battery_period_ms = 500;
    link_sim(&l, 0, base, &o);
    link_client(&l, 23, NULL, 0, NULL);
    assert_int_equal(l.ready_err, 0);
    uint64_t full = blesim_stats(l.sim)->requests;
    size_t n_svc = gatt_get_db(l.g)->n_svc;
    assert_int_equal(blesim_change_services(l.sim, BLESIM_PROFILE_BATTERY), 1);
    pump(&l);
    assert_int_equal(l.changed_calls, 1);

    uint64_t before = blesim_stats(l.sim)->requests;
    struct gatt *old = l.g;
    l.ready_calls = 0;
    link_client_after(&l, 23, NULL, 0, NULL, old, l.changed_start, l.changed_end);
    gatt_free(old);
    assert_int_equal(l.ready_calls, 1);
    assert_int_equal(l.ready_err, 0);
    assert_true(gatt_partial(l.g));
    uint64_t partial = blesim_stats(l.sim)->requests - before;
    assert_true(partial > 0 && partial < full);
    assert_int_equal(gatt_get_db(l.g)->n_svc, n_svc + 1);
    uint8_t *got, *want;
    size_t got_len, want_len;
    assert_int_equal(gatt_db_export(gatt_get_db(l.g), &got, &got_len), 0);
    export_full(base, BLESIM_PROFILE_BATTERY, &want, &want_len);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    free(got);
    free(want);
    /* the merged database serves: the new battery level and the old heart rate notify */
    uint16_t bat = value_handle(&l, "2a19"), hr = value_handle(&l, "2a37");
    const struct gatt_chrc *c = gatt_db_chrc_by_value(gatt_get_db(l.g), hr);
    assert_non_null(c);
    assert_true(c->cccd > 0);
    assert_true(gatt_subscribe(l.g, hr, on_note, NULL, &l, NULL) > 0);
    assert_true(gatt_subscribe(l.g, bat, on_note, NULL, &l, NULL) > 0);
    run_for(&l, 2 * SEC);
    int n_hr = 0, n_bat = 0;
    for (int i = 0; i < l.n_notes; i++) {
        n_hr += l.notes[i].handle == hr;
        n_bat += l.notes[i].handle == bat;
    }
    assert_true(n_hr >= 1 && n_bat >= 1);

    /* a range from inside the heart rate service on: whole services only, so all again */
    struct att_uuid hrs = att_uuid16(0x180D);
    const struct gatt_service *sv = gatt_db_service(gatt_get_db(l.g), &hrs);
    assert_non_null(sv);
    uint16_t cut = (uint16_t)(sv->start + 1);
    old = l.g;
    before = blesim_stats(l.sim)->requests;
    link_client_after(&l, 23, NULL, 0, NULL, old, cut, 0xFFFF);
    gatt_free(old);
    assert_false(gatt_partial(l.g));
    assert_int_equal(l.ready_err, 0);
    assert_int_equal(gatt_get_db(l.g)->n_svc, n_svc + 1);
    uint64_t whole = blesim_stats(l.sim)->requests - before;
    assert_true(whole >= full && 2 * partial <= whole);

    /* a change while the range is discovered again: the kept Service Changed is known */
    assert_int_equal(blesim_change_services(l.sim, BLESIM_PROFILE_CTS), 1);
    pump(&l);
    assert_int_equal(l.changed_calls, 2);
    old = l.g;
    struct gatt_opts go = {.mtu = 23, .ready = on_ready, .changed = on_changed, .user_data = &l};
    l.ready_calls = 0;
    l.g = gatt_new_changed(l.att, &go, old, l.changed_start, l.changed_end);
    assert_non_null(l.g);
    gatt_free(old);
    assert_true(gatt_partial(l.g));
    assert_int_equal(blesim_change_services(l.sim, BLESIM_PROFILE_MOTION), 1);
    pump(&l);
    assert_int_equal(l.changed_calls, 3);
    assert_int_equal(l.ready_calls, 1);
    assert_int_equal(l.ready_err, 0);
    struct att_uuid cts = att_uuid16(0x1805);
    assert_non_null(gatt_db_service(gatt_get_db(l.g), &cts));
    link_close(&l);
}

/* The client's side of a simulator link raising its security: the control packet. */
static int sim_raise(struct att *a, int level, uint8_t ecode, void *ud)
{
    struct link *l = ud;
    l->raises++;
    l->raise_level = level;
    return blesim_ctl_security(l->fd[0], level);
}

/* A wearable that streams heart rate only over an encrypted link: the CCCD write is refused
 * with Insufficient Encryption, the bearer raises the link (a control packet the simulator
 * takes as the encryption the kernel would start), writes the CCCD again and notifications
 * flow. A characteristic needing authentication takes the link on to HIGH. With raises
 * refused (pairing fails) the second refusal is the subscriber's. */
static void test_security_raise_with_the_simulator(void **state)
{
    struct blesim_profile_opts o;
    struct link l;
    blesim_profile_defaults(&o);
    o.hr_security = 2;
    link_sim(&l, 0, BLESIM_PROFILE_GATT | BLESIM_PROFILE_HR, &o);
    att_set_security_hook(l.att, ATT_SECURITY_LOW, sim_raise, &l, NULL);
    link_client(&l, 0, NULL, 0, NULL);
    assert_int_equal(l.ready_err, 0);
    uint16_t hr = value_handle(&l, "2a37"), loc = value_handle(&l, "2a38");
    assert_int_equal(blesim_security(l.sim), 1);
    assert_true(gatt_subscribe(l.g, hr, on_note, on_done, &l, NULL) > 0);
    pump(&l);
    assert_int_equal(l.done_calls, 1);
    assert_int_equal(l.done_err, 0);
    assert_int_equal(l.raises, 1);
    assert_int_equal(l.raise_level, ATT_SECURITY_MEDIUM);
    assert_int_equal(blesim_security(l.sim), 2);
    assert_int_equal(blesim_stats(l.sim)->security_raises, 1);
    assert_int_equal(blesim_cccd(l.sim, hr), 1);
    run_for(&l, 2 * SEC);
    assert_int_equal(l.n_notes, 2);
    assert_int_equal(blesim_set_security(l.sim, loc, 3, 0), 0);
    assert_true(gatt_read(l.g, loc, on_read, &l, NULL) > 0);
    pump(&l);
    assert_int_equal(l.reads, 1);
    assert_int_equal(l.read_err, 0);
    assert_int_equal(l.raise_level, ATT_SECURITY_HIGH);
    assert_int_equal(blesim_security(l.sim), 3);
    /* the control packets were not PDUs: the last request is the read, nothing is pending */
    assert_int_equal(blesim_stats(l.sim)->rx_pdus, blesim_stats(l.sim)->requests);
    link_close(&l);

    /* pairing fails: the link stays unencrypted, the retry is refused again */
    o.security_ecode = ATT_ECODE_AUTHENTICATION;
    link_sim(&l, 0, BLESIM_PROFILE_GATT | BLESIM_PROFILE_HR, &o);
    struct blesim_faults f = {.refuse_security = 1};
    blesim_set_faults(l.sim, &f);
    att_set_security_hook(l.att, ATT_SECURITY_LOW, sim_raise, &l, NULL);
    link_client(&l, 0, NULL, 0, NULL);
    hr = value_handle(&l, "2a37");
    assert_true(gatt_subscribe(l.g, hr, on_note, on_done, &l, NULL) > 0);
    pump(&l);
    assert_int_equal(l.done_calls, 1);
    assert_int_equal(l.done_err, -EACCES);
    assert_int_equal(l.raises, 1);
    assert_int_equal(blesim_security(l.sim), 1);
    assert_int_equal(blesim_cccd(l.sim, hr), 0);
    run_for(&l, 2 * SEC);
    assert_int_equal(l.n_notes, 0);
    link_close(&l);

    /* no requirement: no error, no raise */
    o.hr_security = 0;
    link_sim(&l, 0, BLESIM_PROFILE_GATT | BLESIM_PROFILE_HR, &o);
    att_set_security_hook(l.att, ATT_SECURITY_LOW, sim_raise, &l, NULL);
    link_client(&l, 0, NULL, 0, NULL);
    assert_true(gatt_subscribe(l.g, value_handle(&l, "2a37"), on_note, on_done, &l, NULL) > 0);
    pump(&l);
    assert_int_equal(l.done_err, 0);
    assert_int_equal(l.raises, 0);
    assert_int_equal(blesim_ctl_security(l.fd[0], 5), -EINVAL);
    link_close(&l);
}

static void test_injected_faults(void **state)
{
    struct blesim_profile_opts o;
    struct link l;
    struct blesim_faults f;
    blesim_profile_defaults(&o);

    /* a server that stops answering: the request times out after 30 s */
    link_sim(&l, 0, BLESIM_PROFILE_ALL, &o);
    f = (struct blesim_faults){.silent_after = 5};
    blesim_set_faults(l.sim, &f);
    link_client(&l, 0, NULL, 0, NULL);
    assert_int_equal(l.ready_calls, 0);
    run_for(&l, ATT_TIMEOUT_NS - 1);
    assert_int_equal(l.ready_calls, 0);
    run_for(&l, 1);
    assert_int_equal(l.ready_calls, 1);
    assert_int_equal(l.ready_err, -ETIMEDOUT);
    assert_int_equal(blesim_stats(l.sim)->unanswered, 1);
    link_close(&l);

    /* never answering one opcode */
    link_sim(&l, 0, BLESIM_PROFILE_ALL, &o);
    f = (struct blesim_faults){.silent_opcode = ATT_OP_FIND_INFO_REQ};
    blesim_set_faults(l.sim, &f);
    link_client(&l, 0, NULL, 0, NULL);
    run_for(&l, ATT_TIMEOUT_NS);
    assert_int_equal(l.ready_err, -ETIMEDOUT);
    link_close(&l);

    /* a truncated response during discovery */
    link_sim(&l, 0, BLESIM_PROFILE_ALL, &o);
    f = (struct blesim_faults){.malformed_opcode = ATT_OP_READ_BY_GROUP_REQ};
    blesim_set_faults(l.sim, &f);
    link_client(&l, 0, NULL, 0, NULL);
    assert_int_equal(l.ready_err, -EPROTO);
    assert_int_equal(att_dead(l.att), 0);
    link_close(&l);

    /* an error for one handle: the HRM CCCD needs authentication */
    link_sim(&l, 0, BLESIM_PROFILE_ALL, &o);
    link_client(&l, 0, NULL, 0, NULL);
    uint16_t hr = value_handle(&l, "2a37");
    f = (struct blesim_faults){.error_handle = (uint16_t)(hr + 1), .error_code = 0x05};
    blesim_set_faults(l.sim, &f);
    assert_true(gatt_subscribe(l.g, hr, on_note, on_done, &l, NULL) > 0);
    pump(&l);
    assert_int_equal(l.done_err, -EACCES);
    f = (struct blesim_faults){.error_handle = hr - 2};
    blesim_set_faults(l.sim, &f);
    assert_true(gatt_read(l.g, hr - 2, on_read, &l, NULL) > 0);
    pump(&l);
    assert_int_equal(l.read_err, -EIO);
    link_close(&l);

    /* the link drops on the 6th PDU, mid-discovery */
    link_sim(&l, 0, BLESIM_PROFILE_ALL, &o);
    f = (struct blesim_faults){.disconnect_after = 6};
    blesim_set_faults(l.sim, &f);
    link_client(&l, 0, NULL, 0, NULL);
    assert_int_equal(l.ready_calls, 1);
    assert_int_equal(l.ready_err, -ECONNRESET);
    assert_true(blesim_closed(l.sim));
    assert_int_equal(blesim_on_timer(l.sim, l.now), -ENOTCONN);
    link_close(&l);
}

static int gen_count(struct blesim *s, uint16_t h, uint64_t count, int64_t now_ns, uint8_t *buf,
                     size_t cap, void *ud)
{
    (void)s; (void)h; (void)now_ns; (void)cap; (void)ud;
    buf[0] = (uint8_t)count;
    return 1;
}

/* A stream with a phase ticks on the monotonic times of that phase, the first after the CCCD
 * write; without one, a period after the write. */
static void test_stream_phase(void **state)
{
    (void)state;
    struct peer p;
    peer_open(&p);
    p.att = att_free(p.att);
    const int64_t ms = 1000000;
    p.now = 1000 * SEC + 123 * ms;
    struct blesim *s = blesim_new(p.fd[0], 0, p.now);
    struct att_uuid sv = att_uuid16(0x180D), c = att_uuid16(0x2A37);
    assert_true(blesim_add_service(s, &sv, 1) > 0);
    int h = blesim_add_chrc(s, &c, GATT_PROP_NOTIFY, "\x00", 1);
    assert_true(h > 0);
    assert_int_equal(blesim_set_phase(s, (uint16_t)h, 0), -ENOENT); /* no stream yet */
    assert_int_equal(blesim_add_stream(s, (uint16_t)h, 20 * ms, gen_count, NULL), 0);
    assert_int_equal(blesim_set_phase(s, (uint16_t)h, 20 * ms), -EINVAL);
    assert_int_equal(blesim_set_phase(s, (uint16_t)h, -1), -EINVAL);
    assert_int_equal(blesim_set_phase(s, (uint16_t)h, 5 * ms), 0);
    uint8_t b[5] = {0x12, (uint8_t)(h + 1), 0, 1, 0}; /* Write Request: its CCCD, on */
    size_t n = sizeof b;
    assert_int_equal(send(p.fd[1], b, n, 0), (ssize_t)n);
    assert_int_equal(blesim_on_readable(s, p.now), 1);
    expect_pdu(&p, "13");
    /* 1000.123 s: the next time of phase 5 ms in a 20 ms period is 1000.125 s */
    assert_int_equal(blesim_next_timeout(s), 1000 * SEC + 125 * ms);
    assert_int_equal(blesim_on_timer(s, 1000 * SEC + 125 * ms), 1);
    assert_int_equal(blesim_next_timeout(s), 1000 * SEC + 145 * ms);
    /* off and on again at a time of its phase: a whole period later */
    b[3] = 0;
    assert_int_equal(send(p.fd[1], b, n, 0), (ssize_t)n);
    assert_int_equal(blesim_on_readable(s, 1000 * SEC + 130 * ms), 1);
    assert_int_equal(blesim_next_timeout(s), INT64_MAX);
    b[3] = 1;
    assert_int_equal(send(p.fd[1], b, n, 0), (ssize_t)n);
    assert_int_equal(blesim_on_readable(s, 1000 * SEC + 165 * ms), 1);
    assert_int_equal(blesim_next_timeout(s), 1000 * SEC + 185 * ms);
    blesim_free(s);
    peer_close(&p);
}

/* The simulator's own checks, seen from a raw peer. */
static void test_simulator_answers_bad_requests(void **state)
{
    struct peer p;
    struct blesim_profile_opts o;
    blesim_profile_defaults(&o);
    peer_open(&p);
    p.att = att_free(p.att);     /* the scripted end talks to the simulator directly */
    struct blesim *s = blesim_new(p.fd[0], 0, p.now);
    assert_int_equal(blesim_add_profiles(s, BLESIM_PROFILE_GATT | BLESIM_PROFILE_HR, &o), 0);
    assert_int_equal(blesim_add_profiles(s, BLESIM_PROFILE_HR, &o), -EALREADY);
    /* 1800: 1-5, 1801: 6-11 (2a05 7-9, 2b2a 10-11), 180d: 12-19 (2a37 13-15) */
    static const char *const req_rsp[][2] = {
        {"0a 03", "01 0a 00 00 04"},                    /* short Read */
        {"3f", "01 3f 00 00 06"},                       /* unknown request */
        {"16 03 00 00 00 01", "01 16 00 00 06"},        /* Prepare Write: not supported */
        {"10 01 00 ff ff 03 28", "01 10 01 00 10"},     /* group type not a service */
        {"10 01 00 ff ff 00", "01 10 00 00 04"},        /* odd uuid length */
        {"04 00 00 ff ff", "01 04 00 00 01"},           /* start 0 */
        {"04 05 00 04 00", "01 04 05 00 01"},           /* start > end */
        {"04 40 00 ff ff", "01 04 40 00 0a"},           /* nothing there */
        {"0a 0e 00", "01 0a 0e 00 02"},                 /* HRM value is not readable */
        {"0a ff 00", "01 0a ff 00 01"},                 /* no such handle */
        {"12 0e 00 01", "01 12 0e 00 03"},              /* not writable */
        {"12 0f 00 01 00 00", "01 12 0f 00 0d"},        /* CCCD of 3 bytes */
        {"12 0f 00 04 00", "01 12 0f 00 13"},           /* CCCD value 4 */
        {"0c 02 00 09 00", "01 0c 02 00 07"},           /* offset past the end */
        {"0c 02 00 05 00", "0d"},                       /* offset at the end: empty */
        {"12 0f 00 01 00", "13"},                       /* notifications on */
        {"06 01 00 ff ff 00 28 0d 18", "07 0c 00 13 00"},  /* find 180d by value */
        {"02 05 02", "03 05 02"},
        {"08 01 00 ff ff 2b 2a", "01 08 01 00 0a"},
    };
    for (size_t i = 0; i < sizeof req_rsp / sizeof req_rsp[0]; i++) {
        uint8_t b[64];
        size_t n = hex_bytes(req_rsp[i][0], b, sizeof b);
        assert_int_equal(send(p.fd[1], b, n, 0), (ssize_t)n);
        assert_int_equal(blesim_on_readable(s, p.now), 1);
        expect_pdu(&p, req_rsp[i][1]);
    }
    assert_int_equal(blesim_cccd(s, 0x0e), 1);
    peer_send(&p, "52 0f 00 00 00");           /* Write Command turns it off, no answer */
    assert_int_equal(blesim_on_readable(s, p.now), 1);
    expect_none(&p);
    assert_int_equal(blesim_cccd(s, 0x0e), 0);
    peer_send(&p, "1b 03 00 01");              /* client-side PDUs are ignored */
    peer_send(&p, "1e");
    assert_int_equal(blesim_on_readable(s, p.now), 2);
    expect_none(&p);
    FILE *devnull = fopen("/dev/null", "w");
    blesim_dump(s, devnull);
    fclose(devnull);
    close(p.fd[1]);
    p.fd[1] = -1;
    assert_int_equal(blesim_on_readable(s, p.now), -ECONNRESET);
    blesim_free(s);
    peer_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovers_every_profile),
        cmocka_unit_test(test_notifications_match_the_simulator),
        cmocka_unit_test(test_heart_rate_flag_combinations),
        cmocka_unit_test(test_reads_of_every_profile),
        cmocka_unit_test(test_long_values_and_custom_service),
        cmocka_unit_test(test_secondary_service_and_include),
        cmocka_unit_test(test_indications_are_confirmed),
        cmocka_unit_test(test_cache_on_reconnect_and_service_changed),
        cmocka_unit_test(test_database_change_rediscovered_on_the_same_bearer),
        cmocka_unit_test(test_changed_range_discovered_alone),
        cmocka_unit_test(test_security_raise_with_the_simulator),
        cmocka_unit_test(test_injected_faults),
        cmocka_unit_test(test_simulator_answers_bad_requests),
        cmocka_unit_test(test_stream_phase),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
