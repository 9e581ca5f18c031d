/* A BLE device's profiles (daemon/ble_int.h), from the end of discovery on: the reads and
 * CCCD writes of the setup, and the values that arrive afterwards turned into events.
 *
 * For the profiles the device offers: Local Time Information and Current Time reads (the
 * device clock's offset; Current Time again every BLE_CTS_PERIOD_MS for its drift), Heart Rate
 * notifications -> hr events, Battery Level read and notifications -> battery events,
 * InfiniTime step count (read for the baseline, then notifications) -> steps events and raw
 * motion notifications -> accel events in blocks, Device Information strings for the status.
 * CCCDs are written on every connection (servers keep them only for bonded clients). The
 * device streams once every setup request is answered and one subscription at least worked.
 *
 * Runs inside the bearer's callbacks: a failure only marks the device (ble_dev_mark_dead) and
 * ble_dev.c acts on it once the bearer has returned. Events carry the hub's receive time: none
 * of these profiles timestamps its samples. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ble_int.h"
#include "daemon/log.h"
#include "drivers/relay.h"

#define NS_PER_MS INT64_C(1000000)
#define MALFORMED_LOG_MS 60000 /* one malformed-value warning per device per minute */

static const uint16_t dis_uuid[4] = {DEC_UUID_MANUFACTURER, DEC_UUID_MODEL, DEC_UUID_SERIAL,
                                     DEC_UUID_FIRMWARE_REV};

static int64_t mono(const struct ble_dev *d) { return ble_now(d->mgr)->mono_ns; }
static int64_t utc(const struct ble_dev *d) { return ble_now(d->mgr)->utc_ms; }

static struct dec_meta meta(const struct ble_dev *d)
{
    return (struct dec_meta){.ts = utc(d), .participant = d->participant, .source = d->name};
}

static void emit(struct ble_dev *d, struct event *ev)
{
    ble_emit(d->mgr, d, ev, utc(d));
}


static void malformed(struct ble_dev *d, const char *what, const char *why)
{
    d->malformed++;
    if (utc(d) - d->malformed_log_ms >= MALFORMED_LOG_MS) {
        d->malformed_log_ms = utc(d);
        log_warn("ble %s: %s: %s (%" PRIu64 " malformed values so far)", d->name, what, why,
                 d->malformed);
    }
}

static void noted(struct ble_dev *d)
{
    d->last_note_ms = utc(d);
}

/* ---- notifications ------------------------------------------------------------------ */

static void on_hr(struct gatt *g, uint16_t h, const uint8_t *v, size_t len, int64_t at, void *ud)
{
    struct ble_dev *d = ud;
    struct dec_hr hr;
    struct event ev;
    struct dec_meta m = meta(d);
    char why[DEC_WHY_MAX];
    noted(d);
    int r = decode_hr_measurement(v, len, &hr, why);
    if (r == 0)
        r = decode_hr_event(&hr, &m, &ev, why);
    if (r == -ENODATA)
        d->no_contact++;
    else if (r < 0)
        malformed(d, "heart rate", why);
    else
        emit(d, &ev);
}

static void battery_value(struct ble_dev *d, const uint8_t *v, size_t len)
{
    struct event ev;
    struct dec_meta m = meta(d);
    char why[DEC_WHY_MAX];
    if (decode_battery_event(v, len, &m, &ev, why) < 0) {
        malformed(d, "battery level", why);
        return;
    }
    d->battery_set = 1;
    d->battery = (unsigned)ev.u.battery.pct;
    emit(d, &ev);
}

static void on_battery(struct gatt *g, uint16_t h, const uint8_t *v, size_t len, int64_t at,
                       void *ud)
{
    noted(ud);
    battery_value(ud, v, len);
}

static void steps_value(struct ble_dev *d, const uint8_t *v, size_t len)
{
    uint32_t total;
    struct event ev;
    struct dec_meta m = meta(d);
    char why[DEC_WHY_MAX];
    if (decode_pinetime_steps(v, len, &total, why) < 0)
        malformed(d, "step count", why);
    else if (decode_steps_event(&d->steps, total, &m, &ev) == 1)
        emit(d, &ev);
}

static void on_steps(struct gatt *g, uint16_t h, const uint8_t *v, size_t len, int64_t at,
                     void *ud)
{
    noted(ud);
    steps_value(ud, v, len);
}

static void on_motion(struct gatt *g, uint16_t h, const uint8_t *v, size_t len, int64_t at,
                      void *ud)
{
    struct ble_dev *d = ud;
    float xyz[3];
    struct event ev;
    struct dec_meta m = meta(d);
    char why[DEC_WHY_MAX];
    noted(d);
    if (decode_pinetime_motion(v, len, DEC_PINETIME_LSB_PER_G, xyz, why) < 0) {
        malformed(d, "raw motion", why);
        return;
    }
    int r = dec_accel_block_add(d->accel, xyz, &m, &ev);
    if (r == 1)
        emit(d, &ev);
    else if (r < 0)
        malformed(d, "raw motion", "sample beyond 1000 g");
}

/* ---- the device clock ---------------------------------------------------------------- */

/* The device's wall clock minus UTC at UTC t: its own zone (Local Time Information, when it
 * gives both zone and DST), else the participant's. Readings and writes of the clock both
 * go through it, so a clock that was set reads back as offset 0. */
static int64_t device_zone_ms(struct ble_dev *d, int64_t t)
{
    int64_t z;
    if (d->lti_known && dec_lti_offset_ms(&d->lti, &z) == 0)
        return z;
    return ble_participant_zone_ms(d->mgr, d, t);
}

static void on_clock_written(struct gatt *g, int err, uint8_t ecode, void *ud)
{
    struct ble_dev *d = ud;
    if (d->dead)
        return;
    if (err == 0) {
        d->clock_sets++;
        d->clock_last_set_ms = utc(d);
        /* the old readings are of a clock that no longer runs: start again, from a reading
         * of the clock as set */
        ble_clock_reset(&d->clock);
        d->clock_check = 1;
        ble_prof_read_clock(d);
        return;
    }
    d->clock_refusals++;
    log_warn("ble %s: the device did not let its clock be set: %s%s%s; not tried again for "
             "an hour on this link", d->name, strerror(-err), ecode ? ", " : "",
             ecode ? att_ecode_str(ecode) : "");
}

/* A clock offset for the log: seconds with a sign and three decimals ("-34560000.011"). */
static const char *offset_text(char buf[32], int64_t ms)
{
    int64_t a = ms < 0 ? -ms : ms;
    snprintf(buf, 32, "%c%" PRId64 ".%03d", ms < 0 ? '-' : '+', a / 1000, (int)(a % 1000));
    return buf;
}

/* The first reading after an acknowledged write: a device that answers a write and keeps its
 * clock (or cannot hold it within the tolerance) is told apart from one that took it. The
 * hour's wait before the next write stands either way. */
static void check_clock_set(struct ble_dev *d, int known, int64_t offset_ms)
{
    if (!d->clock_check)
        return;
    d->clock_check = 0;
    if (!ble_clock_off(known, offset_ms, d->clock_tolerance_ms))
        return;
    d->clock_ignored++;
    char off[32];
    if (known)
        log_warn("ble %s: the device acknowledged the clock set, but its clock still reads "
                 "%s s off the hub's; not tried again for an hour on this link", d->name,
                 offset_text(off, offset_ms));
    else
        log_warn("ble %s: the device acknowledged the clock set, but its clock still does not "
                 "know the date; not tried again for an hour on this link", d->name);
}

/* Local Time Information for the log: "UTC-05:00 with DST +1:00", "UTC+01:00", or what of it
 * is unknown. */
static const char *lti_text(char buf[48], const struct dec_lti *l)
{
    int z = l->tz_quarters * 15, a = z < 0 ? -z : z, dst = l->dst_quarters * 15;
    int n = l->has_tz ? snprintf(buf, 48, "UTC%c%02d:%02d", z < 0 ? '-' : '+', a / 60, a % 60)
                      : snprintf(buf, 48, "an unknown zone");
    if (!l->has_dst)
        snprintf(buf + n, (size_t)(48 - n), ", DST unknown");
    else if (dst)
        snprintf(buf + n, (size_t)(48 - n), " with DST +%d:%02d", dst / 60, dst % 60);
    return buf;
}

static void on_zone_checked(struct gatt *g, int err, uint8_t ecode, const uint8_t *v,
                            size_t len, void *ud)
{
    struct ble_dev *d = ud;
    struct dec_lti got;
    char why[DEC_WHY_MAX], a[48], b[48];
    if (d->dead)
        return;
    d->lti_busy = 0;
    if (err < 0 || decode_local_time_info(v, len, &got, why) < 0)
        got = d->lti_want; /* acknowledged and not readable back: taken at its word */
    d->lti = got;
    d->lti_known = 1;
    if (memcmp(&got, &d->lti_want, sizeof got) == 0) {
        d->clock_zone_sets++;
    } else {
        d->clock_ignored++;
        d->lti_given_up = 1;
        log_warn("ble %s: the device acknowledged the time zone %s, but reads back %s; not "
                 "tried again on this link", d->name, lti_text(a, &d->lti_want),
                 lti_text(b, &got));
    }
    /* the clock is now read in the zone the device has; the reading decides whether it is
     * set, the zone's move lifting the hour's wait */
    ble_prof_read_clock(d);
}

static void on_zone_written(struct gatt *g, int err, uint8_t ecode, void *ud)
{
    struct ble_dev *d = ud;
    if (d->dead)
        return;
    if (err == 0 && gatt_read(d->gatt, d->h_lti, on_zone_checked, d, NULL) > 0)
        return;
    d->lti_busy = 0;
    if (err == 0) { /* cannot even ask: take it at its word */
        on_zone_checked(g, -EIO, 0, NULL, 0, d);
        return;
    }
    d->clock_refusals++;
    d->lti_given_up = 1;
    log_warn("ble %s: the device did not let its time zone be set: %s%s%s; not tried again on "
             "this link", d->name, strerror(-err), ecode ? ", " : "",
             ecode ? att_ecode_str(ecode) : "");
    ble_prof_read_clock(d); /* the clock is then set, if need be, in the zone it has */
}

/* Writes the wearer's zone into the device's Local Time Information when it shows another
 * (their travel, a DST change, a device set elsewhere): then the watch shows the wearer's
 * local time, and its clock is written in that zone. Only where `set_clock` allows, both
 * characteristics are writable (a zone written under a clock that cannot follow would leave
 * the old zone's wall time under the new zone) and the participant's zone is known; at most
 * once an hour on a link unless the wearer's zone has moved since, and never again on a link
 * that refused or kept a write. Returns 1 while a zone write is out (its answer reads the
 * clock again). */
static int maybe_set_zone(struct ble_dev *d)
{
    if (d->lti_busy)
        return 1;
    if (!d->set_clock || !d->lti_writable || !d->cts_writable || !d->lti_known ||
        d->lti_given_up || !d->gatt || d->dead || (d->profiles & BLE_PROF_RELAY))
        return 0;
    int64_t t = utc(d);
    const struct tz_zone *z = ble_participant_zone(d->mgr, d, t);
    struct dec_lti want;
    uint8_t v[2];
    if (!z || ble_lti_for_zone(z, t, &want) < 0 || memcmp(&want, &d->lti, sizeof want) == 0 ||
        dec_lti_encode(&want, v) < 0)
        return 0;
    if (!ble_link_write_due(d->lti_set_ns, mono(d), memcmp(&want, &d->lti_want, sizeof want)))
        return 0; /* this link wrote it within the hour, and something changed it back */
    int id = gatt_write(d->gatt, d->h_lti, v, sizeof v, on_zone_written, d, NULL);
    if (id <= 0) {
        log_warn("ble %s: cannot write the device's time zone: %s", d->name, strerror(-id));
        return 0;
    }
    char a[48], b[48];
    log_notice("ble %s: the device's time zone is %s, its wearer's %s; setting it", d->name,
               lti_text(a, &d->lti), lti_text(b, &want));
    d->lti_busy = 1;
    d->lti_set_ns = mono(d);
    d->lti_want = want;
    return 1;
}

/* After a Current Time reading off by offset_ms (known = 0: the device does not know the
 * date), taken with a round trip of 2 * half_rtt_ms: writes the hub's time to the device
 * when `set_clock` allows, the characteristic is writable, the device is not a relay phone,
 * and ble_clock_set_due says so (more than `clock_tolerance` off, and no write on this link
 * in the last hour, whether answered, refused or still out: a request unanswered for 30 s
 * closes the link; unless the zone it is written in has moved since). */
static void maybe_set_clock(struct ble_dev *d, int known, int64_t offset_ms, int64_t half_rtt_ms)
{
    if (!d->set_clock || !d->cts_writable || !d->gatt || d->dead ||
        (d->profiles & BLE_PROF_RELAY)) /* a phone keeps its own time */
        return;
    /* the device takes the value about half a round trip after it leaves */
    int64_t t = utc(d) + half_rtt_ms, zone = device_zone_ms(d, t);
    if (!ble_clock_set_due(known, offset_ms, d->clock_tolerance_ms, d->clock_set_ns, mono(d),
                           d->clock_set_ns && zone != d->clock_set_zone_ms))
        return;
    uint8_t v[DEC_CTS_LEN];
    if (dec_cts_encode(t + zone, DEC_CTS_ADJUST_EXTERNAL, v) < 0)
        return;
    int id = gatt_write(d->gatt, d->h_cts, v, sizeof v, on_clock_written, d, NULL);
    if (id <= 0) {
        log_warn("ble %s: cannot write the device clock: %s", d->name, strerror(-id));
        return;
    }
    d->clock_set_ns = mono(d);
    d->clock_set_zone_ms = zone;
    char off[32];
    if (known)
        log_notice("ble %s: the device clock is %s s off the hub's; setting it", d->name,
                   offset_text(off, offset_ms));
    else
        log_notice("ble %s: the device clock does not know the date; setting it", d->name);
}

/* A Current Time value read now with a round trip of 2 * half_rtt_ms (0: notified). The
 * device time is taken to be that of the middle of the round trip. */
static void cts_value(struct ble_dev *d, const uint8_t *v, size_t len, int64_t half_rtt_ms)
{
    struct dec_cts c;
    char why[DEC_WHY_MAX];
    if (decode_current_time(v, len, &c, why) < 0) {
        /* a value of the right size whose date is 0 (year, month or day) is a clock never
         * set, which Current Time may say; anything else it refuses is malformed */
        if (len == DEC_CTS_LEN && ((v[0] | v[1]) == 0 || v[2] == 0 || v[3] == 0)) {
            check_clock_set(d, 0, 0);
            if (!maybe_set_zone(d))
                maybe_set_clock(d, 0, 0, half_rtt_ms);
        } else
            malformed(d, "clock", why);
        return;
    }
    int64_t hub = utc(d) - half_rtt_ms, dev = c.local_ms - device_zone_ms(d, hub);
    ble_clock_add(&d->clock, hub, dev);
    check_clock_set(d, 1, dev - hub);
    if (!maybe_set_zone(d))
        maybe_set_clock(d, 1, dev - hub, half_rtt_ms);
}

static void on_cts(struct gatt *g, uint16_t h, const uint8_t *v, size_t len, int64_t at,
                   void *ud)
{
    cts_value(ud, v, len, 0);
}

/* ---- setup: reads and subscriptions after discovery ----------------------------------- */

static void check_setup(struct ble_dev *d)
{
    if (d->dead || d->state != BLE_ST_DISCOVERING || d->pending > 0)
        return;
    if (d->subscribed == 0)
        ble_dev_mark_dead(d, -ENOENT, "no subscription succeeded", 1);
    else
        ble_dev_streaming(d);
}

static void op_done(struct ble_dev *d)
{
    d->pending--;
    check_setup(d);
}

static void on_sub_done(struct gatt *g, int err, uint8_t ecode, void *ud)
{
    struct ble_dev *d = ud;
    if (err == 0)
        d->subscribed++;
    else if (!d->dead)
        log_warn("ble %s: enabling notifications failed: %s%s%s", d->name, strerror(-err),
                 ecode ? ", " : "", ecode ? att_ecode_str(ecode) : "");
    op_done(d);
}

static void on_battery_read(struct gatt *g, int err, uint8_t ecode, const uint8_t *v, size_t len,
                            void *ud)
{
    if (err == 0)
        battery_value(ud, v, len);
    op_done(ud);
}

static void on_steps_read(struct gatt *g, int err, uint8_t ecode, const uint8_t *v, size_t len,
                          void *ud)
{
    if (err == 0)
        steps_value(ud, v, len);
    op_done(ud);
}

static void on_cts_read(struct gatt *g, int err, uint8_t ecode, const uint8_t *v, size_t len,
                        void *ud)
{
    struct ble_dev *d = ud;
    int64_t half_rtt_ms = d->cts_sent_ns ? (mono(d) - d->cts_sent_ns) / 2 / NS_PER_MS : 0;
    d->cts_sent_ns = 0;
    if (err == 0)
        cts_value(d, v, len, half_rtt_ms);
}

static void on_cts_setup_read(struct gatt *g, int err, uint8_t ecode, const uint8_t *v,
                              size_t len, void *ud)
{
    on_cts_read(g, err, ecode, v, len, ud);
    op_done(ud);
}

static void on_dis_read(struct gatt *g, int err, uint8_t ecode, const uint8_t *v, size_t len,
                        void *ud)
{
    struct ble_dis_ctx *c = ud;
    char why[DEC_WHY_MAX];
    if (err == 0 && decode_dis_string(v, len, c->d->dis[c->field], why) < 0)
        c->d->dis[c->field][0] = '\0';
    op_done(c->d);
}

static const struct gatt_chrc *find16(const struct gatt_db *db, uint16_t svc, uint16_t chrc)
{
    struct att_uuid s = att_uuid16(svc), c = att_uuid16(chrc);
    const struct gatt_service *sv = gatt_db_service(db, &s);
    return sv ? gatt_db_chrc(db, sv, &c) : NULL;
}

static const struct gatt_chrc *find128(const struct gatt_db *db, const char *svc,
                                       const char *chrc)
{
    struct att_uuid s, c;
    if (att_uuid_parse(&s, svc) < 0 || att_uuid_parse(&c, chrc) < 0)
        return NULL;
    const struct gatt_service *sv = gatt_db_service(db, &s);
    return sv ? gatt_db_chrc(db, sv, &c) : NULL;
}

static void track(struct ble_dev *d, int id)
{
    if (id > 0)
        d->pending++;
    else if (!d->dead)
        log_warn("ble %s: request refused: %s", d->name, strerror(-id));
}

static void subscribe(struct ble_dev *d, const struct gatt_chrc *c, gatt_notify_fn fn)
{
    if (c && (c->props & (GATT_PROP_NOTIFY | GATT_PROP_INDICATE)) && c->cccd)
        track(d, gatt_subscribe(d->gatt, c->value, fn, on_sub_done, d, NULL));
}

void ble_prof_subscribe(struct ble_dev *d, const struct gatt_chrc *c, gatt_notify_fn fn)
{
    subscribe(d, c, fn);
}

/* After Local Time Information (if any): Current Time first, while the bearer's queue is
 * empty, so its round trip is short; then everything else. */
static void setup_rest(struct ble_dev *d)
{
    const struct gatt_db *db = gatt_get_db(d->gatt);
    const struct gatt_chrc *c;
    /* a phone with the relay service: its records carry their own seqs, so nothing else of
     * the device is turned into events (the seqs would collide) */
    if (ble_relay_setup(d, db)) {
        d->profiles |= BLE_PROF_RELAY;
        check_setup(d);
        return;
    }
    if (d->h_cts) {
        d->cts_sent_ns = mono(d);
        track(d, gatt_read(d->gatt, d->h_cts, on_cts_setup_read, d, NULL));
        subscribe(d, find16(db, 0x1805, DEC_UUID_CURRENT_TIME), on_cts);
    }
    if ((c = find16(db, 0x180D, DEC_UUID_HR_MEASUREMENT))) {
        d->profiles |= BLE_PROF_HR;
        subscribe(d, c, on_hr);
    }
    if ((c = find16(db, 0x180F, DEC_UUID_BATTERY_LEVEL))) {
        d->profiles |= BLE_PROF_BATTERY;
        if (c->props & GATT_PROP_READ)
            track(d, gatt_read(d->gatt, c->value, on_battery_read, d, NULL));
        subscribe(d, c, on_battery);
    }
    if ((c = find128(db, DEC_UUID_PINETIME_MOTION, DEC_UUID_PINETIME_STEPS))) {
        d->profiles |= BLE_PROF_MOTION;
        if (c->props & GATT_PROP_READ)
            track(d, gatt_read(d->gatt, c->value, on_steps_read, d, NULL));
        subscribe(d, c, on_steps);
    }
    if ((c = find128(db, DEC_UUID_PINETIME_MOTION, DEC_UUID_PINETIME_RAW_MOTION))) {
        d->profiles |= BLE_PROF_MOTION;
        if (!d->accel && (d->accel = malloc(sizeof *d->accel)) &&
            dec_accel_block_init(d->accel, BLE_ACCEL_HZ, BLE_ACCEL_BLOCK,
                                 BLE_ACCEL_TOLERANCE_MS) < 0) {
            free(d->accel);
            d->accel = NULL;
        }
        if (d->accel)
            subscribe(d, c, on_motion);
    }
    for (int i = 0; i < 4; i++)
        if ((c = find16(db, 0x180A, dis_uuid[i])) && (c->props & GATT_PROP_READ)) {
            d->profiles |= BLE_PROF_DIS;
            d->dis_ctx[i] = (struct ble_dis_ctx){d, i};
            track(d, gatt_read(d->gatt, c->value, on_dis_read, &d->dis_ctx[i], NULL));
        }
    if (!(d->profiles & (BLE_PROF_HR | BLE_PROF_BATTERY | BLE_PROF_MOTION)))
        ble_dev_mark_dead(d, -ENOENT,
                          "no supported profile (Heart Rate, Battery, InfiniTime Motion)", 1);
    check_setup(d);
}

static void on_lti_read(struct gatt *g, int err, uint8_t ecode, const uint8_t *v, size_t len,
                        void *ud)
{
    struct ble_dev *d = ud;
    char why[DEC_WHY_MAX];
    d->pending--;
    if (err == 0 && decode_local_time_info(v, len, &d->lti, why) == 0)
        d->lti_known = 1;
    if (!d->dead && d->gatt)
        setup_rest(d);
}

void ble_prof_ready(struct gatt *g, int err, void *ud)
{
    struct ble_dev *d = ud;
    if (err < 0 && err != -ENOENT) {
        ble_dev_mark_dead(d, err, err == -ETIMEDOUT ? "discovery timed out" : "discovery failed",
                          0);
        return;
    }
    const struct gatt_db *db = gatt_get_db(g);
    const struct gatt_chrc *c;
    d->cached = gatt_from_cache(g);
    d->h_cts = d->h_lti = 0;
    d->lti_known = 0;
    d->cts_writable = d->lti_writable = 0;
    if ((c = find16(db, 0x1805, DEC_UUID_CURRENT_TIME)) && (c->props & GATT_PROP_READ)) {
        d->profiles |= BLE_PROF_CTS;
        d->h_cts = c->value;
        d->cts_writable = (c->props & GATT_PROP_WRITE) != 0;
        if ((c = find16(db, 0x1805, DEC_UUID_LOCAL_TIME_INFO)) && (c->props & GATT_PROP_READ)) {
            d->h_lti = c->value;
            d->lti_writable = (c->props & GATT_PROP_WRITE) != 0;
        }
    }
    if (d->h_lti) {
        int id = gatt_read(g, d->h_lti, on_lti_read, d, NULL);
        if (id > 0) {
            d->pending++;
            return;
        }
    }
    setup_rest(d);
}

void ble_prof_read_clock(struct ble_dev *d)
{
    if (!d->cts_sent_ns && gatt_read(d->gatt, d->h_cts, on_cts_read, d, NULL) > 0)
        d->cts_sent_ns = mono(d);
}

void ble_prof_flush(struct ble_dev *d)
{
    struct event ev;
    struct dec_meta m = meta(d);
    if (d->accel && d->accel->n && dec_accel_block_flush(d->accel, &m, &ev) == 1)
        emit(d, &ev);
}
