/* One BLE device of the daemon (daemon/ble_int.h): its connection state machine. What happens
 * on the link once discovery is done (reads, subscriptions, values to events) is in
 * ble_prof.c.
 *
 *   connecting --link up--> discovering --reads and CCCD writes answered--> streaming
 *        |                        |   ^                                        |  |
 *        |                        |   +------Service Changed (same link)-------+  |
 *        +--------failure---------+---------------link lost-----------------------+
 *                                 v
 *                        backoff (or error) --delay--> connecting
 *
 * On the link: MTU exchange and discovery (the GATT client, with the attribute cache keyed by
 * the device's address, so a reconnect to an unchanged device skips discovery), then the
 * profiles' setup; streaming once it is answered. A request the device refuses for want of
 * encryption or authentication raises the link's security level and is sent again once
 * (on_security). Every failure closes the link and schedules
 * the next attempt on the source's backoff schedule.
 *
 * With `record` (daemon/ble_record.h) every PDU of the link goes to the source's capture, and
 * discovery is done in full on every connection, without the cache: a capture must hold the
 * discovery its values are mapped with to be replayed on its own.
 *
 * Failures inside bearer callbacks only mark the device (dead); the entry points (I/O, timer)
 * handle them once the bearer has returned, so nothing is freed under a running callback. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "daemon/ble_int.h"
#include "daemon/ble_record.h"
#include "daemon/log.h"
#include "drivers/btsnoop.h"

#define NS_PER_MS INT64_C(1000000)

static int64_t mono(const struct ble_dev *d) { return ble_now(d->mgr)->mono_ns; }
static int64_t utc(const struct ble_dev *d) { return ble_now(d->mgr)->utc_ms; }

static void set_state(struct ble_dev *d, enum ble_state s)
{
    if (d->state == s)
        return;
    d->state = s;
    d->since_ms = utc(d);
    if (s == BLE_ST_STREAMING)
        d->streaming_ns = mono(d);
    ble_publish_status(d->mgr, d);
}

/* Failures on the hub's side, or settings that cannot work: they will not go away by trying
 * again soon (still retried, on the same schedule, in case the hub changes). */
static int local_error(int err)
{
    switch (-err) {
    case EAFNOSUPPORT: case EPROTONOSUPPORT: case EACCES: case EPERM: case EMFILE:
    case ENFILE: case ENOMEM: case ENAMETOOLONG: case EINVAL: case ENOTSOCK:
        return 1;
    default:
        return 0;
    }
}

/* ---- recording ------------------------------------------------------------------------ */

/* Now, for the capture: the dispatch's clocks (the bearer was given the dispatch's monotonic
 * time, and events take its UTC ms), refined within the ms by the UTC clock. */
static struct ble_rec_at rec_now(const struct ble_dev *d)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    int64_t real_us = (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
    return (struct ble_rec_at){mono(d), ble_rec_time_us(utc(d), real_us)};
}

/* Recording stopped (record_max, a write error): status/<source> says so at once. */
static void rec_check(struct ble_dev *d)
{
    if (d->rec && !d->rec_stop_told && ble_rec_stopped(d->rec)) {
        d->rec_stop_told = 1;
        ble_publish_status(d->mgr, d);
    }
}

static void on_rx(struct att *att, int64_t ns, const uint8_t *pdu, size_t len, void *ud)
{
    struct ble_dev *d = ud;
    ble_rec_att(d->rec, rec_now(d), BTSNOOP_DIR_RECEIVED, pdu, len);
    rec_check(d);
}

static void on_tx(struct att *att, int64_t ns, const uint8_t *pdu, size_t len, void *ud)
{
    struct ble_dev *d = ud;
    ble_rec_att(d->rec, rec_now(d), BTSNOOP_DIR_SENT, pdu, len);
    rec_check(d);
}

/* The link is up: a new connection in the capture, then every PDU both ways. */
static void record_link(struct ble_dev *d)
{
    if (!d->rec)
        return;
    ble_rec_connect(d->rec, rec_now(d), d->link_address, d->tr.addr_type == BLE_ADDR_RANDOM);
    att_set_rx_hook(d->att, on_rx, d, NULL);
    att_set_tx_hook(d->att, on_tx, d, NULL);
}

/* ---- the link ------------------------------------------------------------------------ */

/* err: why the link goes; the capture's Disconnection Complete says whether the device
 * (0x13, Remote User Terminated) or the hub (0x16, Local Host) ended it. */
static void drop_link(struct ble_dev *d, int err)
{
    ble_rec_disconnect(d->rec, rec_now(d), err == -ECONNRESET ? 0x13 : 0x16);
    ble_prof_flush(d);
    if (d->fd >= 0 && d->ep_events)
        ble_watch(d->mgr, d, 0);
    d->ep_events = 0;
    d->gatt = gatt_free(d->gatt);
    d->att = att_free(d->att);
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    d->connecting = 0;
    d->dead = 0;
    d->dead_why = NULL;
    d->dead_local = 0;
    d->changed = 0;
    d->deadline_ns = INT64_MAX;
    d->next_cts_ns = INT64_MAX;
}

static void fail(struct ble_dev *d, int err, const char *why, int local)
{
    enum ble_state from = d->state;
    drop_link(d, err);
    d->failures++;
    int64_t delay = ble_backoff_failed(&d->bo, from == BLE_ST_STREAMING
                                                   ? (mono(d) - d->streaming_ns) / NS_PER_MS
                                                   : -1);
    d->deadline_ns = mono(d) + delay * NS_PER_MS;
    d->next_attempt_ms = utc(d) + delay;
    int repeated = err == d->last_err && strcmp(d->error, why) == 0;
    snprintf(d->error, sizeof d->error, "%s", why);
    d->last_err = err;
    /* a device that keeps failing the same way is logged once, then quietly (status shows it) */
    log_msg(repeated ? LOG_LVL_INFO : LOG_LVL_WARNING, "ble %s (%s): %s; next attempt in %.1f s",
            d->name, d->address, why, (double)delay / 1000.0);
    set_state(d, local ? BLE_ST_ERROR : BLE_ST_BACKOFF);
}

void ble_dev_mark_dead(struct ble_dev *d, int err, const char *why, int local)
{
    ble_dev_touch(d);
    if (!d->dead) {
        d->dead = err < 0 ? err : -EIO;
        d->dead_why = why;
        d->dead_local = local;
    }
}

static void update_watch(struct ble_dev *d)
{
    if (d->fd < 0)
        return;
    uint32_t want = d->connecting ? EPOLLOUT
                                  : EPOLLIN | (d->att && att_want_write(d->att) ? EPOLLOUT : 0);
    if (want != d->ep_events) {
        int e = ble_watch(d->mgr, d, want);
        if (e < 0)
            ble_dev_mark_dead(d, e, "cannot watch the socket (epoll)", 1);
    }
}

static void rediscover(struct ble_dev *d);

/* After any call into the bearer: a failure or a Service Changed seen inside a callback is
 * handled here. */
static void after_att(struct ble_dev *d)
{
    if (d->changed && !d->dead)
        rediscover(d);
    if (d->dead) {
        char why[BLE_TEXT_MAX];
        int err = d->dead;
        snprintf(why, sizeof why, "%s", d->dead_why ? d->dead_why : strerror(-err));
        fail(d, err, why, d->dead_local);
        return;
    }
    update_watch(d);
}

void ble_dev_after(struct ble_dev *d)
{
    ble_dev_touch(d);
    after_att(d);
}

static void on_changed(struct gatt *g, uint16_t start, uint16_t end, void *ud)
{
    struct ble_dev *d = ud;
    ble_dev_touch(d);
    d->changed = 1;
    d->changed_start = start;
    d->changed_end = end;
}

static void on_close(struct att *att, int err, void *ud)
{
    ble_dev_mark_dead(ud, err, err == -ETIMEDOUT ? "ATT request not answered in 30 s"
                       : err == -ECONNRESET || err == 0 ? "link closed by the device"
                                                        : NULL, 0);
}

void ble_dev_streaming(struct ble_dev *d)
{
    ble_dev_touch(d);
    d->deadline_ns = INT64_MAX;
    if (d->h_cts)
        d->next_cts_ns = mono(d) + BLE_CTS_PERIOD_MS * NS_PER_MS;
    d->error[0] = '\0';
    d->last_err = 0;
    d->rediscoveries = 0;
    log_info("ble %s (%s): streaming (%s, MTU %u)", d->name, d->address,
             d->cached ? "cached database" : "discovered", att_mtu(d->att));
    set_state(d, BLE_ST_STREAMING);
    if (d->profiles & BLE_PROF_RELAY)
        ble_relay_streaming(d);
}

static const char *level_name(int level)
{
    static const char *const names[] = {"low", "medium", "high", "fips"};
    return level >= BLE_SEC_LOW && level <= BLE_SEC_FIPS ? names[level - 1] : "?";
}

/* The device refused a request for want of encryption or authentication: the link's level
 * goes up (the bearer then sends the request again, once). A wearable that wants pairing shows
 * here, in the log and the count. */
static int on_security(struct att *att, int level, uint8_t ecode, void *ud)
{
    struct ble_dev *d = ud;
    int r = ble_link_secure(&d->tr, d->fd, level);
    if (r < 0) {
        log_warn("ble %s (%s): %s; cannot raise the link's security to %s: %s", d->name,
                 d->address, att_ecode_str(ecode), level_name(level), strerror(-r));
        return r;
    }
    d->security_raises++;
    log_info("ble %s (%s): %s; raising the link's security to %s", d->name, d->address,
             att_ecode_str(ecode), level_name(level));
    return 0;
}

/* A GATT client on the link's bearer: discovery (from the attribute cache when it holds the
 * device's database; after a Service Changed of [start, end], of that range only, the rest
 * kept from old), then the profiles' setup (ble_prof_ready). Failures mark the device. */
static void start_gatt(struct ble_dev *d, const struct gatt *old, uint16_t start, uint16_t end)
{
    struct gatt_opts o = {
        .mtu = 0, .cache = d->rec ? NULL : ble_cache(d->mgr), .device = d->cache_key,
        .ready = ble_prof_ready, .changed = on_changed, .user_data = d,
    };
    d->pending = d->subscribed = 0;
    d->profiles = 0;
    d->cached = 0;
    d->cts_sent_ns = 0;
    d->next_cts_ns = INT64_MAX;
    if (!(d->gatt = old ? gatt_new_changed(d->att, &o, old, start, end) : gatt_new(d->att, &o))) {
        ble_dev_mark_dead(d, -errno, "cannot start the GATT client", 1);
        return;
    }
    d->deadline_ns = mono(d) + BLE_SETUP_TIMEOUT_MS * NS_PER_MS;
    set_state(d, BLE_ST_DISCOVERING);
}

/* Service Changed (the reference's discovery step 7): the attribute cache entry is gone
 * (ble_gatt.c), and the changed range of the database is discovered again on the same link
 * (all of it if the range cuts through a service, or if the first discovery had not ended),
 * and the profiles set up again from it, so a device that adds or moves a service does not
 * lose its link. What it notifies meanwhile on the old subscriptions is dropped; a relay
 * phone sends it again after the RESUME that ends the setup. A device that keeps changing
 * before setup ends is reconnected instead, on the backoff schedule. */
static void rediscover(struct ble_dev *d)
{
    ble_dev_touch(d);
    d->changed = 0;
    if (++d->rediscoveries > BLE_REDISCOVER_MAX) {
        ble_dev_mark_dead(d, -ESTALE, "the device's services keep changing during setup; "
                          "reconnecting", 0);
        return;
    }
    ble_prof_flush(d);
    struct gatt *old = d->gatt;
    start_gatt(d, old, d->changed_start, d->changed_end);
    gatt_free(old);
    if (d->gatt)
        log_notice("ble %s (%s): the device's services changed (handles 0x%04x-0x%04x); "
                   "discovering %s again on the same link", d->name, d->address,
                   d->changed_start, d->changed_end,
                   gatt_partial(d->gatt) ? "that range" : "the whole database");
}

static void linked(struct ble_dev *d)
{
    d->connecting = 0;
    d->att = att_new(d->fd, mono(d));
    if (!d->att) {
        fail(d, -errno, "cannot start the ATT bearer", 1);
        return;
    }
    record_link(d);
    att_set_security_hook(d->att, ble_link_security(&d->tr), on_security, d, NULL);
    int e = att_register_close(d->att, on_close, d, NULL);
    d->connects++;
    d->rediscoveries = 0; /* changed: cleared with the last link (drop_link) */
    d->clock_set_ns = 0; /* a new link may set the device clock at once */
    d->clock_check = 0;
    d->lti_busy = d->lti_given_up = 0; /* and its zone */
    d->lti_set_ns = 0;
    if (e < 0) {
        fail(d, e, "cannot start the GATT client", 1);
        return;
    }
    start_gatt(d, NULL, 0, 0);
    after_att(d);
}

static void attempt(struct ble_dev *d)
{
    int fd = -1;
    d->attempts++;
    set_state(d, BLE_ST_CONNECTING);
    int r = ble_link_open(&d->tr, d->link_address, &fd);
    if (r < 0) {
        fail(d, r, ble_link_strerror(&d->tr, r), local_error(r));
        return;
    }
    d->fd = fd;
    if (r == 0) {
        linked(d);
        return;
    }
    d->connecting = 1;
    d->deadline_ns = mono(d) + BLE_CONNECT_TIMEOUT_MS * NS_PER_MS;
    update_watch(d);
    if (d->dead)
        after_att(d);
}

void ble_dev_start(struct ble_dev *d)
{
    ble_dev_touch(d);
    d->fd = -1;
    d->deadline_ns = d->next_cts_ns = INT64_MAX;
    d->state = _BLE_ST_MAX; /* so that the first state is published */
    attempt(d);
}

void ble_dev_on_io(struct ble_dev *d, uint32_t events)
{
    ble_dev_touch(d);
    if (d->fd < 0)
        return;
    if (d->connecting) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int r = ble_link_finish(d->fd);
        if (r < 0)
            fail(d, r, ble_link_strerror(&d->tr, r), local_error(r));
        else
            linked(d);
        return;
    }
    if (!d->att)
        return;
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        att_on_readable(d->att, mono(d));
    if (!d->dead && (events & EPOLLOUT))
        att_on_writable(d->att, mono(d));
    after_att(d);
}

int64_t ble_dev_deadline_cached(struct ble_dev *d)
{
    if (!d->dl_fresh) {
        d->dl_ns = ble_dev_deadline(d);
        d->dl_fresh = 1;
    }
    assert(d->dl_ns == ble_dev_deadline(d)); /* a path that moves a deadline without a touch */
    return d->dl_ns;
}

int64_t ble_dev_deadline(const struct ble_dev *d)
{
    int64_t t = d->deadline_ns < d->next_cts_ns ? d->deadline_ns : d->next_cts_ns;
    int64_t r = ble_relay_deadline(d);
    if (r < t)
        t = r;
    r = ble_rec_deadline(d->rec);
    if (r < t)
        t = r;
    if (d->att) {
        int64_t a = att_next_timeout(d->att);
        if (a < t)
            t = a;
    }
    return t;
}

void ble_dev_on_timer(struct ble_dev *d)
{
    ble_dev_touch(d);
    int64_t now = mono(d);
    if (d->rec) {
        ble_rec_on_timer(d->rec, now);
        rec_check(d);
    }
    if (d->att && att_next_timeout(d->att) <= now) {
        att_on_timer(d->att, now);
        after_att(d);
    }
    if (d->state == BLE_ST_STREAMING && ble_relay_deadline(d) <= now) {
        ble_relay_on_timer(d);
        after_att(d);
    }
    if (now < d->deadline_ns && now < d->next_cts_ns)
        return;
    switch (d->state) {
    case BLE_ST_CONNECTING:
    case BLE_ST_DISCOVERING:
        if (now >= d->deadline_ns)
            fail(d, -ETIMEDOUT, d->state == BLE_ST_CONNECTING ? "connection attempt timed out"
                                                              : "setup timed out", 0);
        break;
    case BLE_ST_BACKOFF:
    case BLE_ST_ERROR:
        if (now >= d->deadline_ns)
            attempt(d);
        break;
    case BLE_ST_STREAMING:
        if (now >= d->next_cts_ns && d->h_cts && d->gatt) {
            d->next_cts_ns = now + BLE_CTS_PERIOD_MS * NS_PER_MS;
            ble_prof_read_clock(d);
            after_att(d);
        }
        break;
    case _BLE_ST_MAX:
        break;
    }
}

void ble_dev_close(struct ble_dev *d)
{
    ble_dev_touch(d);
    drop_link(d, 0);
    d->rec = ble_rec_close(d->rec, rec_now(d));
    free(d->accel);
    d->accel = NULL;
    ble_relay_free(d);
}

void ble_dev_status(const struct ble_dev *d, struct ble_status *st)
{
    memset(st, 0, sizeof *st);
    st->source = d->name;
    st->participant = d->participant;
    st->address = d->address;
    st->transport = d->transport_text[0] ? d->transport_text : "l2cap";
    st->state = d->state;
    st->since_ms = d->since_ms;
    st->error = d->error[0] ? d->error : NULL;
    st->next_attempt_ms = d->next_attempt_ms;
    st->attempts = d->attempts;
    st->connects = d->connects;
    st->reconnects = d->connects > 1 ? d->connects - 1 : 0;
    st->failures = d->failures;
    st->events = d->events;
    st->no_contact = d->no_contact;
    st->malformed = d->malformed;
    st->lost = d->lost;
    st->last_notification_ms = d->last_note_ms;
    st->battery_set = d->battery_set;
    st->battery = d->battery;
    st->mtu = d->att ? att_mtu(d->att) : 0;
    st->cached = d->cached;
    st->security_raises = d->security_raises;
    st->profiles = d->profiles;
    st->offset_set = ble_clock_offset(&d->clock, &st->clock_offset_ms) == 0;
    st->drift_set = ble_clock_drift(&d->clock, &st->clock_drift_ppm) == 0;
    st->clock_samples = d->clock.n;
    st->clock_sets = d->clock_sets;
    st->clock_refusals = d->clock_refusals;
    st->clock_ignored = d->clock_ignored;
    st->clock_zone_sets = d->clock_zone_sets;
    st->zone_set = d->lti_known && dec_lti_offset_ms(&d->lti, &st->clock_zone_ms) == 0;
    st->clock_last_set_ms = d->clock_last_set_ms;
    const char **dis[4] = {&st->manufacturer, &st->model, &st->serial, &st->firmware};
    for (int i = 0; i < 4; i++)
        *dis[i] = d->dis[i][0] ? d->dis[i] : NULL;
    if ((st->has_relay = d->relay != NULL))
        ble_relay_info(d, &st->relay);
    if ((st->has_record = d->rec != NULL))
        ble_rec_stats(d->rec, &st->record);
}
