/* The pure parts of the BLE source (daemon/ble.h): the reconnect backoff schedule, the
 * device clock estimate and the status JSON (the transport syntax is in conf_ble.c). No I/O,
 * no clock reads, no global state, so tests/unit/test_ble_source.c pins them down exactly. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ble.h"
#include "daemon/relay_json.h"
#include "drivers/decode.h"
#include "pipeline/tz.h"

/* ---- backoff ------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

uint64_t ble_backoff_seed(uint64_t study_seed, const char *source)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)source; *p; p++)
        h = (h ^ *p) * UINT64_C(0x100000001b3);
    uint64_t x = h ^ study_seed;
    return splitmix64(&x);
}

void ble_backoff_init(struct ble_backoff *b, uint64_t seed)
{
    b->rng = seed;
    b->failures = 0;
}

int64_t ble_backoff_next(struct ble_backoff *b)
{
    int64_t base = BLE_BACKOFF_MIN_MS;
    for (unsigned i = 0; i < b->failures && base < BLE_BACKOFF_MAX_MS; i++)
        base *= 2;
    if (base > BLE_BACKOFF_MAX_MS)
        base = BLE_BACKOFF_MAX_MS;
    if (b->failures < 64)
        b->failures++;
    /* u in [0, 1) with 53 bits; factor in [1 - J, 1 + J) */
    double u = (double)(splitmix64(&b->rng) >> 11) * (1.0 / 9007199254740992.0);
    double f = 1.0 + (BLE_BACKOFF_JITTER_PCT / 100.0) * (2.0 * u - 1.0);
    return (int64_t)((double)base * f);
}

void ble_backoff_reset(struct ble_backoff *b)
{
    b->failures = 0;
}

int64_t ble_backoff_failed(struct ble_backoff *b, int64_t up_for_ms)
{
    if (up_for_ms >= BLE_BACKOFF_RESET_MS)
        ble_backoff_reset(b);
    return ble_backoff_next(b);
}

/* ---- device clock ------------------------------------------------------------------- */

#define CLOCK_JUMP_MS 2000

void ble_clock_reset(struct ble_clock *c)
{
    memset(c, 0, sizeof *c);
}

/* Least squares of offset (dev - hub) against hub time, relative to the first sample so the
 * sums stay small. 0 with slope (ms per ms) and the line's value at hub time x, or -ENODATA. */
static int fit(const struct ble_clock *c, double *slope, double *span)
{
    if (c->n < 2)
        return -ENODATA;
    size_t first = (c->next + BLE_CLOCK_SAMPLES - c->n) % BLE_CLOCK_SAMPLES;
    int64_t x0 = c->hub_ms[first], lo = INT64_MAX, hi = INT64_MIN;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t k = 0; k < c->n; k++) {
        size_t i = (first + k) % BLE_CLOCK_SAMPLES;
        double x = (double)(c->hub_ms[i] - x0);
        double y = (double)(c->dev_ms[i] - c->hub_ms[i]);
        sx += x, sy += y, sxx += x * x, sxy += x * y;
        lo = c->hub_ms[i] < lo ? c->hub_ms[i] : lo;
        hi = c->hub_ms[i] > hi ? c->hub_ms[i] : hi;
    }
    double n = (double)c->n, d = n * sxx - sx * sx;
    if (!(d > 0))
        return -ENODATA;
    *slope = (n * sxy - sx * sy) / d;
    *span = (double)(hi - lo);
    return 0;
}

void ble_clock_add(struct ble_clock *c, int64_t hub_ms, int64_t dev_ms)
{
    int64_t off = dev_ms - hub_ms;
    if (c->n > 0) {
        /* a device whose clock was set (or jumped) starts a new line */
        double slope = 0, span;
        if (fit(c, &slope, &span) < 0)
            slope = 0;
        size_t last = (c->next + BLE_CLOCK_SAMPLES - 1) % BLE_CLOCK_SAMPLES;
        double expect = (double)c->last_offset_ms + slope * (double)(hub_ms - c->hub_ms[last]);
        if (fabs((double)off - expect) > CLOCK_JUMP_MS)
            ble_clock_reset(c);
    }
    c->hub_ms[c->next] = hub_ms;
    c->dev_ms[c->next] = dev_ms;
    c->next = (c->next + 1) % BLE_CLOCK_SAMPLES;
    if (c->n < BLE_CLOCK_SAMPLES)
        c->n++;
    c->last_offset_ms = off;
}

int ble_clock_offset(const struct ble_clock *c, int64_t *ret_ms)
{
    if (c->n == 0)
        return -ENODATA;
    *ret_ms = c->last_offset_ms;
    return 0;
}

int ble_clock_drift(const struct ble_clock *c, double *ret_ppm)
{
    double slope, span;
    if (fit(c, &slope, &span) < 0 || span < BLE_CLOCK_DRIFT_SPAN_MS)
        return -ENODATA;
    *ret_ppm = slope * 1e6;
    return 0;
}

int ble_clock_off(int known, int64_t offset_ms, int64_t tolerance_ms)
{
    return !known || offset_ms > tolerance_ms || offset_ms < -tolerance_ms;
}

int ble_link_write_due(int64_t last_ns, int64_t now_ns, int zone_moved)
{
    return last_ns == 0 || zone_moved ||
           now_ns - last_ns >= BLE_CLOCK_SET_MIN_MS * INT64_C(1000000);
}

int ble_clock_set_due(int known, int64_t offset_ms, int64_t tolerance_ms, int64_t last_ns,
                      int64_t now_ns, int zone_moved)
{
    return ble_clock_off(known, offset_ms, tolerance_ms) &&
           ble_link_write_due(last_ns, now_ns, zone_moved);
}

/* A zone's standard offset is its least one over the year around t, taken every 30 days:
 * some of those fall in its standard time whenever DST starts or ends (half a year either side
 * alone would both fall in summer at a change in March). */
#define STD_STEP_MS (INT64_C(30) * 86400000)
#define STD_STEPS 6

static int lti_fits(int32_t zone_s, int32_t dst_s, struct dec_lti *out)
{
    if (zone_s % 900 || dst_s % 900 || zone_s / 900 < -48 || zone_s / 900 > 56)
        return 0;
    int dst = dst_s / 900;
    if (dst != 0 && dst != 2 && dst != 4 && dst != 8)
        return 0;
    *out = (struct dec_lti){.has_tz = 1, .tz_quarters = zone_s / 900, .has_dst = 1,
                            .dst_quarters = dst};
    return 1;
}

int ble_lti_for_zone(const struct tz_zone *z, int64_t utc_ms, struct dec_lti *out)
{
    int32_t now = tz_offset(z, utc_ms), std = now;
    for (int k = -STD_STEPS; k <= STD_STEPS; k++) {
        int32_t o = tz_offset(z, utc_ms + k * STD_STEP_MS);
        if (o < std)
            std = o;
    }
    if (lti_fits(std, now - std, out) || lti_fits(now, 0, out))
        return 0;
    return -ERANGE;
}

/* ---- status ------------------------------------------------------------------------- */

const char *ble_state_name(enum ble_state s)
{
    static const char *const names[_BLE_ST_MAX] = {
        [BLE_ST_CONNECTING] = "connecting", [BLE_ST_DISCOVERING] = "discovering",
        [BLE_ST_STREAMING] = "streaming",   [BLE_ST_BACKOFF] = "backoff",
        [BLE_ST_ERROR] = "error",
    };
    return (unsigned)s < _BLE_ST_MAX ? names[s] : "unknown";
}

static json_t *opt_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *u64(uint64_t v)
{
    return json_integer((json_int_t)v);
}

static json_t *relay_json(const struct ble_relay_info *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "records", u64(r->records));
    json_object_set_new(o, "refused", u64(r->refused));
    json_object_set_new(o, "skipped", u64(r->skipped));
    relay_json_rx(o, &r->rx, 0);
    json_object_set_new(o, "resumes", u64(r->resumes));
    json_object_set_new(o, "acks", u64(r->acks));
    json_object_set_new(o, "left", u64(r->left));
    json_object_set_new(o, "held_back", u64(r->held_back));
    json_object_set_new(o, "pauses", u64(r->pauses));
    json_object_set_new(o, "nudges_sent", u64(r->nudges_sent));
    json_object_set_new(o, "nudges_resent", u64(r->nudges_resent));
    json_object_set_new(o, "nudges_confirmed", u64(r->nudges_confirmed));
    json_object_set_new(o, "nudges_dropped", u64(r->nudges_dropped));
    json_object_set_new(o, "nudges_expired", u64(r->nudges_expired));
    json_object_set_new(o, "nudges_unconfirmed", u64(r->nudges_unconfirmed));
    json_object_set_new(o, "nudges_restored", u64(r->nudges_restored));
    json_object_set_new(o, "nudges_waiting", u64(r->nudges_waiting));
    json_object_set_new(o, "phone_status", r->have_phone ? json_integer(r->phone_at_ms)
                                                          : json_null());
    if (r->have_phone)
        relay_json_phone(o, &r->phone);
    return o;
}

static json_t *record_json(const struct ble_rec_stats *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "records", u64(r->records));
    json_object_set_new(o, "bytes", json_integer(r->size));
    json_object_set_new(o, "not_recorded", u64(r->dropped));
    json_object_set_new(o, "stopped", !r->stopped ? json_null()
                                      : json_string(r->stopped == -EDQUOT ? "record_max"
                                                                          : strerror(-r->stopped)));
    return o;
}

const char *ble_scan_state_name(enum ble_scan_state s)
{
    static const char *const names[_BLE_SCAN_MAX] = {
        [BLE_SCAN_STARTING] = "starting", [BLE_SCAN_UP] = "up", [BLE_SCAN_RETRYING] = "retrying",
    };
    return (unsigned)s < _BLE_SCAN_MAX ? names[s] : "unknown";
}

static json_t *scan_json(const struct ble_scan_info *sc)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "state", json_string(ble_scan_state_name(sc->state)));
    json_object_set_new(o, "since", json_integer(sc->since_ms));
    json_object_set_new(o, "error", opt_str(sc->error));
    json_object_set_new(o, "next_attempt", sc->state == BLE_SCAN_RETRYING
                                               ? json_integer(sc->next_attempt_ms)
                                               : json_null());
    json_object_set_new(o, "failures", u64(sc->failures));
    json_object_set_new(o, "rpa", opt_str(sc->rpa));
    return o;
}

char *ble_status_json(const struct ble_status *st)
{
    static const struct { unsigned bit; const char *name; } profs[] = {
        {BLE_PROF_HR, "hr"},   {BLE_PROF_BATTERY, "battery"}, {BLE_PROF_CTS, "cts"},
        {BLE_PROF_DIS, "dis"}, {BLE_PROF_MOTION, "motion"},   {BLE_PROF_RELAY, "relay"},
    };
    json_t *o = json_object(), *p = json_array(), *dev = json_object();
    if (!o || !p || !dev) {
        json_decref(o);
        json_decref(p);
        json_decref(dev);
        return NULL;
    }
    int waiting = st->state == BLE_ST_BACKOFF || st->state == BLE_ST_ERROR;
    json_object_set_new(o, "source", json_string(st->source));
    json_object_set_new(o, "driver", json_string("ble"));
    json_object_set_new(o, "participant", json_string(st->participant));
    json_object_set_new(o, "address", json_string(st->address));
    json_object_set_new(o, "transport", json_string(st->transport));
    json_object_set_new(o, "state", json_string(ble_state_name(st->state)));
    json_object_set_new(o, "since", json_integer(st->since_ms));
    json_object_set_new(o, "time", json_integer(st->now_ms));
    json_object_set_new(o, "error", opt_str(st->error));
    json_object_set_new(o, "next_attempt",
                        waiting ? json_integer(st->next_attempt_ms) : json_null());
    json_object_set_new(o, "attempts", u64(st->attempts));
    json_object_set_new(o, "connects", u64(st->connects));
    json_object_set_new(o, "reconnects", u64(st->reconnects));
    json_object_set_new(o, "failures", u64(st->failures));
    json_object_set_new(o, "events", u64(st->events));
    json_object_set_new(o, "last_notification", st->last_notification_ms
                                                    ? json_integer(st->last_notification_ms)
                                                    : json_null());
    json_object_set_new(o, "battery", st->battery_set ? json_integer(st->battery) : json_null());
    json_object_set_new(o, "mtu", st->mtu ? json_integer(st->mtu) : json_null());
    json_object_set_new(o, "cached", json_boolean(st->cached));
    json_object_set_new(o, "security_raises", u64(st->security_raises));
    for (size_t i = 0; i < sizeof profs / sizeof profs[0]; i++)
        if (st->profiles & profs[i].bit)
            json_array_append_new(p, json_string(profs[i].name));
    json_object_set_new(o, "profiles", p);
    json_object_set_new(o, "clock_offset_ms",
                        st->offset_set ? json_integer(st->clock_offset_ms) : json_null());
    /* 0.01 ppm is far below what CTS readings (1/256 s) can resolve */
    json_object_set_new(o, "clock_drift_ppm",
                        st->drift_set && isfinite(st->clock_drift_ppm)
                            ? json_real(round(st->clock_drift_ppm * 100.0) / 100.0)
                            : json_null());
    json_object_set_new(o, "clock_samples", u64(st->clock_samples));
    json_object_set_new(o, "clock_sets", u64(st->clock_sets));
    json_object_set_new(o, "clock_last_set", st->clock_last_set_ms
                                                 ? json_integer(st->clock_last_set_ms)
                                                 : json_null());
    json_object_set_new(o, "clock_refusals", u64(st->clock_refusals));
    json_object_set_new(o, "clock_ignored", u64(st->clock_ignored));
    json_object_set_new(o, "clock_zone_ms",
                        st->zone_set ? json_integer(st->clock_zone_ms) : json_null());
    json_object_set_new(o, "clock_zone_sets", u64(st->clock_zone_sets));
    json_object_set_new(o, "no_contact", u64(st->no_contact));
    json_object_set_new(o, "malformed", u64(st->malformed));
    json_object_set_new(o, "lost", u64(st->lost));
    json_object_set_new(dev, "manufacturer", opt_str(st->manufacturer));
    json_object_set_new(dev, "model", opt_str(st->model));
    json_object_set_new(dev, "serial", opt_str(st->serial));
    json_object_set_new(dev, "firmware", opt_str(st->firmware));
    json_object_set_new(o, "device", dev);
    json_object_set_new(o, "relay", st->has_relay ? relay_json(&st->relay) : json_null());
    json_object_set_new(o, "record", st->has_record ? record_json(&st->record) : json_null());
    json_object_set_new(o, "scan", st->has_scan ? scan_json(&st->scan) : json_null());
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    return s;
}
