/* drivers/decode_*.c (docs/ble-profiles.md): every Heart Rate Measurement flag combination from
 * hand-computed bytes, RR lists and their limits, Battery Level, Current Time (valid and invalid
 * dates, day of week, encode round trip) with Local Time Information, Device Information strings
 * (padding, bad UTF-8, bounds), the InfiniTime motion service (step totals to steps events, raw
 * motion to accel blocks), PAMS general activity, and truncated or padded values of each. Every
 * event a decoder returns is checked to survive ev_to_json -> ev_parse_json unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/decode.h"
#include "pipeline/event.h"

static const struct dec_meta meta = {.ts = 1709210096500, .participant = "p01",
                                     .source = "band-p01"};
static float scratch[EV_ACCEL_MAX][3];

/* The event is valid by docs/events.md: its canonical JSON reads back as the same event. */
static void assert_event_valid(const struct event *ev)
{
    char *j = ev_to_json(ev);
    assert_non_null(j);
    struct event back;
    const char *why = NULL;
    int r = ev_parse_json(j, strlen(j), &back, scratch, &why);
    if (r != 0)
        fail_msg("%s: %s", j, why);
    assert_true(ev_equal(ev, &back));
    free(j);
}

/* ---- Heart Rate Measurement ---- */

#define UNSUP DEC_CONTACT_UNSUPPORTED
#define NOCON DEC_CONTACT_NOT_DETECTED
#define CONT DEC_CONTACT_DETECTED

/* flags = the first byte; u8 rate 0x48 = 72 bpm, u16 rate 02 01 = 258 bpm, energy 34 12 = 4660
 * kJ, RR 40 03 = 832/1024 s = 812.5 ms and 00 04 = 1024/1024 s = 1000 ms. */
struct hr_case {
    uint8_t b[16];
    size_t len;
    unsigned bpm;
    enum dec_contact contact;
    int has_energy;
    unsigned energy;
    size_t n_rr;
    double rr_ms[2];
    int ev_rc;
};

static const struct hr_case hr_cases[32] = {
    {{0x00, 0x48}, 2, 72, UNSUP, 0, 0, 0, {0}, 0},
    {{0x01, 0x02, 0x01}, 3, 258, UNSUP, 0, 0, 0, {0}, 0},
    {{0x02, 0x48}, 2, 72, UNSUP, 0, 0, 0, {0}, 0},
    {{0x03, 0x02, 0x01}, 3, 258, UNSUP, 0, 0, 0, {0}, 0},
    {{0x04, 0x48}, 2, 72, NOCON, 0, 0, 0, {0}, -ENODATA},
    {{0x05, 0x02, 0x01}, 3, 258, NOCON, 0, 0, 0, {0}, -ENODATA},
    {{0x06, 0x48}, 2, 72, CONT, 0, 0, 0, {0}, 0},
    {{0x07, 0x02, 0x01}, 3, 258, CONT, 0, 0, 0, {0}, 0},
    {{0x08, 0x48, 0x34, 0x12}, 4, 72, UNSUP, 1, 4660, 0, {0}, 0},
    {{0x09, 0x02, 0x01, 0x34, 0x12}, 5, 258, UNSUP, 1, 4660, 0, {0}, 0},
    {{0x0a, 0x48, 0x34, 0x12}, 4, 72, UNSUP, 1, 4660, 0, {0}, 0},
    {{0x0b, 0x02, 0x01, 0x34, 0x12}, 5, 258, UNSUP, 1, 4660, 0, {0}, 0},
    {{0x0c, 0x48, 0x34, 0x12}, 4, 72, NOCON, 1, 4660, 0, {0}, -ENODATA},
    {{0x0d, 0x02, 0x01, 0x34, 0x12}, 5, 258, NOCON, 1, 4660, 0, {0}, -ENODATA},
    {{0x0e, 0x48, 0x34, 0x12}, 4, 72, CONT, 1, 4660, 0, {0}, 0},
    {{0x0f, 0x02, 0x01, 0x34, 0x12}, 5, 258, CONT, 1, 4660, 0, {0}, 0},
    {{0x10, 0x48, 0x40, 0x03, 0x00, 0x04}, 6, 72, UNSUP, 0, 0, 2, {812.5, 1000.0}, 0},
    {{0x11, 0x02, 0x01, 0x40, 0x03, 0x00, 0x04}, 7, 258, UNSUP, 0, 0, 2, {812.5, 1000.0}, 0},
    {{0x12, 0x48, 0x40, 0x03, 0x00, 0x04}, 6, 72, UNSUP, 0, 0, 2, {812.5, 1000.0}, 0},
    {{0x13, 0x02, 0x01, 0x40, 0x03, 0x00, 0x04}, 7, 258, UNSUP, 0, 0, 2, {812.5, 1000.0}, 0},
    {{0x14, 0x48, 0x40, 0x03, 0x00, 0x04}, 6, 72, NOCON, 0, 0, 2, {812.5, 1000.0}, -ENODATA},
    {{0x15, 0x02, 0x01, 0x40, 0x03, 0x00, 0x04}, 7, 258, NOCON, 0, 0, 2, {812.5, 1000.0}, -ENODATA},
    {{0x16, 0x48, 0x40, 0x03, 0x00, 0x04}, 6, 72, CONT, 0, 0, 2, {812.5, 1000.0}, 0},
    {{0x17, 0x02, 0x01, 0x40, 0x03, 0x00, 0x04}, 7, 258, CONT, 0, 0, 2, {812.5, 1000.0}, 0},
    {{0x18, 0x48, 0x34, 0x12, 0x40, 0x03, 0x00, 0x04},
     8, 72, UNSUP, 1, 4660, 2, {812.5, 1000.0}, 0},
    {{0x19, 0x02, 0x01, 0x34, 0x12, 0x40, 0x03, 0x00, 0x04},
     9, 258, UNSUP, 1, 4660, 2, {812.5, 1000.0}, 0},
    {{0x1a, 0x48, 0x34, 0x12, 0x40, 0x03, 0x00, 0x04},
     8, 72, UNSUP, 1, 4660, 2, {812.5, 1000.0}, 0},
    {{0x1b, 0x02, 0x01, 0x34, 0x12, 0x40, 0x03, 0x00, 0x04},
     9, 258, UNSUP, 1, 4660, 2, {812.5, 1000.0}, 0},
    {{0x1c, 0x48, 0x34, 0x12, 0x40, 0x03, 0x00, 0x04},
     8, 72, NOCON, 1, 4660, 2, {812.5, 1000.0}, -ENODATA},
    {{0x1d, 0x02, 0x01, 0x34, 0x12, 0x40, 0x03, 0x00, 0x04},
     9, 258, NOCON, 1, 4660, 2, {812.5, 1000.0}, -ENODATA},
    {{0x1e, 0x48, 0x34, 0x12, 0x40, 0x03, 0x00, 0x04}, 8, 72, CONT, 1, 4660, 2, {812.5, 1000.0}, 0},
    {{0x1f, 0x02, 0x01, 0x34, 0x12, 0x40, 0x03, 0x00, 0x04},
     9, 258, CONT, 1, 4660, 2, {812.5, 1000.0}, 0},
};

static void test_hr_every_flag_combination(void **state)
{
    for (unsigned f = 0; f < 32; f++) {
        const struct hr_case *c = &hr_cases[f];
        struct dec_hr hr;
        char why[DEC_WHY_MAX] = "";
        assert_int_equal(c->b[0], f);
        int r = decode_hr_measurement(c->b, c->len, &hr, why);
        if (r != 0)
            fail_msg("flags 0x%02x: %s", f, why);
        assert_int_equal(hr.flags, f);
        assert_int_equal(hr.bpm, c->bpm);
        assert_int_equal(hr.contact, c->contact);
        assert_int_equal(hr.has_energy, c->has_energy);
        assert_int_equal(hr.energy_kj, c->energy);
        assert_int_equal(hr.n_rr, c->n_rr);
        for (size_t i = 0; i < c->n_rr; i++)
            assert_true(dec_rr_ms(hr.rr[i]) == c->rr_ms[i]);
        struct event ev;
        r = decode_hr_event(&hr, &meta, &ev, why);
        assert_int_equal(r, c->ev_rc);
        if (r == 0) {
            assert_int_equal(ev.type, EV_HR);
            assert_true(ev.u.hr.bpm == c->bpm);
            assert_int_equal(ev.u.hr.n_rr, c->n_rr);
            for (size_t i = 0; i < c->n_rr; i++)
                assert_true(ev.u.hr.rr_ms[i] == c->rr_ms[i]);
            assert_true(ev.ts == meta.ts);
            assert_string_equal(ev.participant, "p01");
            assert_string_equal(ev.source, "band-p01");
            assert_false(ev.has_seq);
            assert_event_valid(&ev);
        } else {
            assert_non_null(strstr(why, "skin contact"));
        }
    }
}

static void test_hr_reference_examples(void **state)
{
    /* ble.md §7.1: contact detected, 72 bpm, RR 0x0340 = 0.8125 s */
    static const uint8_t polar[] = {0x16, 0x48, 0x40, 0x03};
    /* InfiniTime: flags 0, u8 rate */
    static const uint8_t pinetime[] = {0x00, 0x41};
    /* reserved bits 5-7 are ignored */
    static const uint8_t rfu[] = {0xF6, 0x48, 0x40, 0x03};
    struct dec_hr hr;
    assert_int_equal(decode_hr_measurement(polar, sizeof polar, &hr, NULL), 0);
    assert_int_equal(hr.bpm, 72);
    assert_int_equal(hr.contact, DEC_CONTACT_DETECTED);
    assert_int_equal(hr.n_rr, 1);
    assert_int_equal(hr.rr[0], 832);
    assert_true(dec_rr_ms(hr.rr[0]) == 812.5);
    assert_int_equal(decode_hr_measurement(pinetime, sizeof pinetime, &hr, NULL), 0);
    assert_int_equal(hr.bpm, 65);
    assert_int_equal(hr.contact, DEC_CONTACT_UNSUPPORTED);
    assert_int_equal(hr.n_rr, 0);
    assert_int_equal(decode_hr_measurement(rfu, sizeof rfu, &hr, NULL), 0);
    assert_int_equal(hr.bpm, 72);
    assert_int_equal(hr.n_rr, 1);
}

/* Every strict prefix and every padded copy of every vector: refused, except where the shorter
 * or longer value is itself a valid value with one RR interval fewer or more. */
static void test_hr_truncated_and_padded_values(void **state)
{
    for (unsigned f = 0; f < 32; f++) {
        const struct hr_case *c = &hr_cases[f];
        size_t fixed = c->len - 2 * c->n_rr;
        struct dec_hr hr;
        char why[DEC_WHY_MAX];
        for (size_t n = 0; n < c->len; n++) {
            int valid = (f & 0x10) && n > fixed && (n - fixed) % 2 == 0;
            int r = decode_hr_measurement(c->b, n, &hr, why);
            assert_int_equal(r, valid ? 0 : -EINVAL);
            if (r == 0)
                assert_int_equal(hr.n_rr, (n - fixed) / 2);
            else if (n > 0)
                assert_true(strstr(why, "bytes") || strstr(why, "RR"));
        }
        uint8_t pad[20];
        memcpy(pad, c->b, c->len);
        pad[c->len] = 0x01;
        pad[c->len + 1] = 0x02;
        assert_int_equal(decode_hr_measurement(pad, c->len + 1, &hr, why), -EINVAL);
        int r = decode_hr_measurement(pad, c->len + 2, &hr, why);
        assert_int_equal(r, (f & 0x10) ? 0 : -EINVAL);
        if (r == 0)
            assert_int_equal(hr.rr[hr.n_rr - 1], 0x0201);
    }
    struct dec_hr hr;
    char why[DEC_WHY_MAX];
    assert_int_equal(decode_hr_measurement((const uint8_t *)"", 0, &hr, why), -EINVAL);
    assert_string_equal(why, "HR measurement: empty value");
    static const uint8_t no_rr[] = {0x10, 0x48};
    assert_int_equal(decode_hr_measurement(no_rr, 2, &hr, why), -EINVAL);
    assert_non_null(strstr(why, "no RR interval"));
    static const uint8_t rr0[] = {0x10, 0x48, 0x00, 0x00};
    assert_int_equal(decode_hr_measurement(rr0, 4, &hr, why), -EINVAL);
    assert_string_equal(why, "HR measurement: RR interval 0 at byte 2");
    static const uint8_t trunc16[] = {0x01, 0x48};
    assert_int_equal(decode_hr_measurement(trunc16, 2, &hr, why), -EINVAL);
    assert_string_equal(why, "HR measurement: 2 bytes, flags 0x01 need at least 3");
    static const uint8_t extra[] = {0x00, 0x48, 0x00};
    assert_int_equal(decode_hr_measurement(extra, 3, &hr, why), -EINVAL);
    assert_string_equal(why, "HR measurement: 1 extra bytes at byte 2 (flags 0x00 carry no RR "
                             "intervals)");
}

static void test_hr_rate_limits(void **state)
{
    struct dec_hr hr;
    struct event ev;
    char why[DEC_WHY_MAX];
    static const uint8_t u16_300[] = {0x01, 0x2C, 0x01};
    static const uint8_t u16_301[] = {0x01, 0x2D, 0x01};
    static const uint8_t u16_max[] = {0x01, 0xFF, 0xFF};
    static const uint8_t zero[] = {0x06, 0x00};
    assert_int_equal(decode_hr_measurement(u16_300, 3, &hr, why), 0);
    assert_int_equal(decode_hr_event(&hr, &meta, &ev, why), 0);
    assert_true(ev.u.hr.bpm == 300);
    assert_event_valid(&ev);
    assert_int_equal(decode_hr_measurement(u16_301, 3, &hr, why), -EINVAL);
    assert_non_null(strstr(why, "301 bpm"));
    assert_int_equal(decode_hr_measurement(u16_max, 3, &hr, why), -EINVAL);
    assert_int_equal(decode_hr_measurement(zero, 2, &hr, why), 0);
    assert_int_equal(decode_hr_event(&hr, &meta, &ev, why), -ENODATA);
    assert_string_equal(why, "HR measurement: no heart rate (0 bpm)");
}

static void test_hr_rr_lists(void **state)
{
    uint8_t b[DEC_VALUE_MAX + 2];
    struct dec_hr hr;
    struct event ev;
    char why[DEC_WHY_MAX];
    /* the most a notification can hold: flags, u8 rate, 256 intervals = 514 bytes */
    b[0] = 0x10;
    b[1] = 60;
    for (int i = 0; i < 256; i++) {
        b[2 + 2 * i] = (uint8_t)i;
        b[3 + 2 * i] = 0x04; /* 1024 + i */
    }
    assert_int_equal(decode_hr_measurement(b, 514, &hr, why), 0);
    assert_int_equal(hr.n_rr, 256);
    assert_int_equal(hr.rr[255], 0x04FF);
    assert_int_equal(decode_hr_measurement(b, 516, &hr, why), -EINVAL);
    assert_non_null(strstr(why, "at most 514"));
    /* an hr event holds 32 intervals */
    assert_int_equal(decode_hr_event(&hr, &meta, &ev, why), -EINVAL);
    assert_non_null(strstr(why, "256 RR intervals"));
    assert_int_equal(decode_hr_measurement(b, 2 + 2 * EV_RR_MAX, &hr, why), 0);
    assert_int_equal(decode_hr_event(&hr, &meta, &ev, why), 0);
    assert_int_equal(ev.u.hr.n_rr, EV_RR_MAX);
    assert_true(ev.u.hr.rr_ms[0] == 1000.0 && ev.u.hr.rr_ms[31] == 1055 * 1000.0 / 1024);
    assert_event_valid(&ev);
    /* 61440/1024 s = 60000 ms is the longest interval an event takes */
    static const uint8_t longest[] = {0x10, 0x30, 0x00, 0xF0};
    static const uint8_t beyond[] = {0x10, 0x30, 0x01, 0xF0};
    assert_int_equal(decode_hr_measurement(longest, 4, &hr, why), 0);
    assert_int_equal(decode_hr_event(&hr, &meta, &ev, why), 0);
    assert_true(ev.u.hr.rr_ms[0] == 60000.0);
    assert_event_valid(&ev);
    assert_int_equal(decode_hr_measurement(beyond, 4, &hr, why), 0);
    assert_int_equal(decode_hr_event(&hr, &meta, &ev, why), -EINVAL);
    /* 1/1024 s steps are exact in ms */
    assert_true(dec_rr_ms(1) == 0.9765625);
    assert_true(dec_rr_ms(65535) == 63999.0234375);
}

/* ---- Battery ---- */

static void test_battery_level(void **state)
{
    struct event ev;
    unsigned pct;
    char why[DEC_WHY_MAX];
    for (unsigned v = 0; v < 256; v++) {
        uint8_t b = (uint8_t)v;
        int r = decode_battery_event(&b, 1, &meta, &ev, why);
        assert_int_equal(r, v <= 100 ? 0 : -EINVAL);
        if (r == 0) {
            assert_int_equal(ev.type, EV_BATTERY);
            assert_true(ev.u.battery.pct == v);
            assert_event_valid(&ev);
        }
    }
    static const uint8_t two[] = {50, 0};
    assert_int_equal(decode_battery_level(two, 0, &pct, why), -EINVAL);
    assert_int_equal(decode_battery_level(two, 2, &pct, why), -EINVAL);
    assert_string_equal(why, "battery level: 2 bytes (exactly 1)");
    uint8_t b = 101;
    assert_int_equal(decode_battery_level(&b, 1, &pct, why), -EINVAL);
    assert_string_equal(why, "battery level: 101 % out of range (0..100)");
}

/* ---- Current Time and Local Time Information ---- */

static void test_current_time_decodes_to_device_local_time(void **state)
{
    /* 2024-02-29 (a Thursday, day 4) 12:34:56 + 128/256 s, adjusted manually */
    static const uint8_t b[] = {0xE8, 0x07, 0x02, 0x1D, 0x0C, 0x22, 0x38, 0x04, 0x80, 0x01};
    struct dec_cts c;
    char why[DEC_WHY_MAX];
    assert_int_equal(decode_current_time(b, sizeof b, &c, why), 0);
    assert_int_equal(c.year, 2024);
    assert_int_equal(c.month, 2);
    assert_int_equal(c.day, 29);
    assert_int_equal(c.hour, 12);
    assert_int_equal(c.minute, 34);
    assert_int_equal(c.second, 56);
    assert_int_equal(c.dow, 4);
    assert_int_equal(c.frac256, 128);
    assert_int_equal(c.adjust, DEC_CTS_ADJUST_MANUAL);
    assert_true(c.local_ms == 1709210096500); /* 2024-02-29T12:34:56.5 on the device's clock */

    /* Local Time Information: UTC-5 (-20 quarters) with DST +1 h (4): 16:34:56.5 UTC */
    static const uint8_t lti_ny[] = {0xEC, 0x04};
    struct dec_lti l;
    int64_t utc;
    assert_int_equal(decode_local_time_info(lti_ny, 2, &l, why), 0);
    assert_int_equal(l.tz_quarters, -20);
    assert_int_equal(l.dst_quarters, 4);
    assert_int_equal(dec_cts_utc(&c, &l, &utc), 0);
    assert_true(utc == 1709210096500 + 4 * 3600000);
    int64_t off;
    assert_int_equal(dec_lti_offset_ms(&l, &off), 0);
    assert_true(off == -4 * 3600000);
    static const uint8_t lti_unknown_tz[] = {0x80, 0x00}, lti_unknown_dst[] = {0x04, 0xFF};
    assert_int_equal(decode_local_time_info(lti_unknown_tz, 2, &l, why), 0);
    assert_int_equal(dec_cts_utc(&c, &l, &utc), -ENODATA);
    assert_int_equal(dec_lti_offset_ms(&l, &off), -ENODATA);
    assert_int_equal(decode_local_time_info(lti_unknown_dst, 2, &l, why), 0);
    assert_int_equal(dec_cts_utc(&c, &l, &utc), -ENODATA);
    assert_int_equal(dec_lti_offset_ms(&l, &off), -ENODATA);
    static const uint8_t bad_tz[] = {57, 0}, bad_dst[] = {0, 3};
    assert_int_equal(decode_local_time_info(bad_tz, 2, &l, why), -EINVAL);
    assert_int_equal(decode_local_time_info(bad_dst, 2, &l, why), -EINVAL);
    assert_int_equal(decode_local_time_info(bad_dst, 1, &l, why), -EINVAL);
    /* encoding gives back the bytes decoded, unknown parts included; out of range refused */
    const uint8_t *const ltis[] = {lti_ny, lti_unknown_tz, lti_unknown_dst};
    for (size_t i = 0; i < 3; i++) {
        uint8_t enc[2];
        assert_int_equal(decode_local_time_info(ltis[i], 2, &l, why), 0);
        assert_int_equal(dec_lti_encode(&l, enc), 0);
        assert_memory_equal(enc, ltis[i], 2);
    }
    uint8_t enc[2];
    l = (struct dec_lti){.has_tz = 1, .tz_quarters = 57, .has_dst = 1};
    assert_int_equal(dec_lti_encode(&l, enc), -EINVAL);
    l = (struct dec_lti){.has_tz = 1, .tz_quarters = -49, .has_dst = 1};
    assert_int_equal(dec_lti_encode(&l, enc), -EINVAL);
    l = (struct dec_lti){.has_tz = 1, .has_dst = 1, .dst_quarters = 3};
    assert_int_equal(dec_lti_encode(&l, enc), -EINVAL);

    /* day of week 0 = unknown is accepted; 255/256 s = 996.1 ms rounds up to 997 ms */
    static const uint8_t nodow[] = {0xD0, 0x07, 0x02, 0x1D, 0x17, 0x3B, 0x3B, 0x00, 0xFF, 0x00};
    assert_int_equal(decode_current_time(nodow, 10, &c, why), 0);
    assert_true(c.local_ms == 951868799000 + 997); /* 2000-02-29T23:59:59.997 */
}

static void test_current_time_invalid_dates(void **state)
{
    static const struct {
        uint8_t b[10];
        const char *why;
    } bad[] = {
        {{0xE7, 0x07, 0x02, 0x1D, 0, 0, 0, 0, 0, 0}, "day 29 out of range for 2023-02"},
        {{0x34, 0x08, 0x02, 0x1D, 0, 0, 0, 0, 0, 0}, "day 29 out of range for 2100-02"},
        {{0xE8, 0x07, 0x04, 0x1F, 0, 0, 0, 0, 0, 0}, "day 31 out of range for 2024-04"},
        {{0xE8, 0x07, 0x0D, 0x01, 0, 0, 0, 0, 0, 0}, "month 13"},
        {{0xE8, 0x07, 0x01, 0x00, 0, 0, 0, 0, 0, 0}, "not known"},
        {{0xE8, 0x07, 0x00, 0x01, 0, 0, 0, 0, 0, 0}, "not known"},
        {{0x00, 0x00, 0x01, 0x01, 0, 0, 0, 0, 0, 0}, "not known"},
        {{0x2D, 0x06, 0x01, 0x01, 0, 0, 0, 0, 0, 0}, "year 1581"},
        {{0x10, 0x27, 0x01, 0x01, 0, 0, 0, 0, 0, 0}, "year 10000"},
        {{0xE8, 0x07, 0x01, 0x01, 24, 0, 0, 0, 0, 0}, "time 24:00:00"},
        {{0xE8, 0x07, 0x01, 0x01, 0, 60, 0, 0, 0, 0}, "time 00:60:00"},
        {{0xE8, 0x07, 0x01, 0x01, 0, 0, 60, 0, 0, 0}, "time 00:00:60"},
        {{0xE8, 0x07, 0x01, 0x01, 0, 0, 0, 8, 0, 0}, "day of week 8"},
        /* 2024-01-01 was a Monday */
        {{0xE8, 0x07, 0x01, 0x01, 0, 0, 0, 2, 0, 0}, "day of week 2, but 2024-01-01 is day 1"},
    };
    struct dec_cts c;
    char why[DEC_WHY_MAX];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(decode_current_time(bad[i].b, 10, &c, why), -EINVAL);
        if (!strstr(why, bad[i].why))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, bad[i].why);
    }
    /* leap days that exist, and the Monday that does match */
    static const uint8_t ok[][10] = {
        {0xD0, 0x07, 0x02, 0x1D, 0, 0, 0, 2, 0, 0}, /* 2000-02-29, Tuesday */
        {0xE8, 0x07, 0x01, 0x01, 0, 0, 0, 1, 0, 0},
        {0x2E, 0x06, 0x01, 0x01, 0, 0, 0, 0, 0, 0}, /* 1582-01-01 */
        {0x0F, 0x27, 0x0C, 0x1F, 23, 59, 59, 0, 255, 0x0F}, /* 9999-12-31 */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_int_equal(decode_current_time(ok[i], 10, &c, why), 0);
    assert_int_equal(decode_current_time(ok[0], 9, &c, why), -EINVAL);
    assert_string_equal(why, "current time: 9 bytes (exactly 10)");
    uint8_t eleven[11] = {0xD0, 0x07, 0x02, 0x1D, 0, 0, 0, 2, 0, 0, 0};
    assert_int_equal(decode_current_time(eleven, 11, &c, why), -EINVAL);
}

static void test_current_time_encode_round_trips(void **state)
{
    uint8_t b[DEC_CTS_LEN];
    struct dec_cts c;
    static const uint8_t want[] = {0xE8, 0x07, 0x02, 0x1D, 0x0C, 0x22, 0x38, 0x04, 0x80, 0x01};
    assert_int_equal(dec_cts_encode(1709210096500, DEC_CTS_ADJUST_MANUAL, b), 0);
    assert_memory_equal(b, want, sizeof want);
    for (unsigned f = 0; f < 256; f++) { /* every fraction survives decode then encode */
        uint8_t v[DEC_CTS_LEN];
        memcpy(v, want, sizeof v);
        v[8] = (uint8_t)f;
        assert_int_equal(decode_current_time(v, sizeof v, &c, NULL), 0);
        assert_int_equal(dec_cts_encode(c.local_ms, DEC_CTS_ADJUST_MANUAL, b), 0);
        assert_memory_equal(b, v, sizeof v);
    }
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 20000; i++) { /* xorshift over 1582..9999 */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t lo = -12244089600000, hi = 253402300799999; /* 1582-01-01 .. 9999 */
        int64_t t = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
        assert_int_equal(dec_cts_encode(t, 0, b), 0);
        assert_int_equal(decode_current_time(b, sizeof b, &c, NULL), 0);
        assert_true(c.local_ms <= t && c.local_ms >= t - 3); /* 1/256 s steps */
        uint8_t again[DEC_CTS_LEN];
        assert_int_equal(dec_cts_encode(c.local_ms, 0, again), 0);
        assert_memory_equal(again, b, sizeof b); /* and the bytes come back exactly */
    }
    assert_int_equal(dec_cts_encode(-12244089600001, 0, b), -EINVAL); /* 1581-12-31 */
    assert_int_equal(dec_cts_encode(253402300800000, 0, b), -EINVAL); /* 10000-01-01 */
    assert_int_equal(dec_cts_encode(0, 0x100, b), -EINVAL);
}

/* ---- Device Information ---- */

static void test_dis_strings(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
        int flags;
    } cases[] = {
        {"PINE64", 6, "PINE64", 0},
        {"InfiniTime\0\0\0", 13, "InfiniTime", 0},
        {"  1.2.3  \0", 10, "1.2.3", 0},
        {"Caf\xc3\xa9 \xe2\x82\xac", 9, "Caf\xc3\xa9 \xe2\x82\xac", 0},
        {"Caf\xe9", 4, "Caf?", DEC_TEXT_REPLACED},            /* Latin-1 */
        {"A\x01" "B", 3, "A?B", DEC_TEXT_REPLACED},           /* control character */
        {"A\0B", 3, "A?B", DEC_TEXT_REPLACED},                /* embedded NUL */
        {"\xc2\x85x", 3, "?x", DEC_TEXT_REPLACED},            /* C1 control NEL */
        {"\xed\xa0\x80", 3, "???", DEC_TEXT_REPLACED},        /* encoded surrogate */
        {"\xc0\xaf", 2, "??", DEC_TEXT_REPLACED},             /* overlong */
        {"\xe2\x82", 2, "??", DEC_TEXT_REPLACED},             /* truncated sequence */
        {"", 0, "", 0},
        {"\0\0\0\0", 4, "", 0},
    };
    char out[DEC_DIS_MAX + 1], why[DEC_WHY_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int r = decode_dis_string((const uint8_t *)cases[i].in, cases[i].len, out, why);
        assert_int_equal(r, cases[i].flags);
        assert_string_equal(out, cases[i].out);
        assert_true(dec_text_ok((const uint8_t *)out, strlen(out)));
    }
    /* bounded: cut at DEC_DIS_MAX bytes, never inside a character */
    uint8_t big[600];
    memset(big, 'a', sizeof big);
    assert_int_equal(decode_dis_string(big, 300, out, why), DEC_TEXT_TRUNCATED);
    assert_int_equal(strlen(out), DEC_DIS_MAX);
    big[127] = 0xC3, big[128] = 0xA9; /* an e-acute straddling the limit */
    assert_int_equal(decode_dis_string(big, 200, out, why), DEC_TEXT_TRUNCATED);
    assert_int_equal(strlen(out), 127);
    assert_int_equal(decode_dis_string(big, 512, out, why), DEC_TEXT_TRUNCATED);
    assert_int_equal(decode_dis_string(big, 513, out, why), -EINVAL);
    assert_string_equal(why, "device information: 513 bytes (at most 512)");
}

static void test_dis_fields(void **state)
{
    static const uint16_t uuids[] = {0x2A29, 0x2A24, 0x2A25, 0x2A27, 0x2A26, 0x2A28};
    static const char *const names[] = {"manufacturer", "model", "serial", "hardware_rev",
                                        "firmware_rev", "software_rev"};
    struct dec_devinfo di;
    memset(&di, 0, sizeof di);
    char why[DEC_WHY_MAX];
    for (int f = 0; f < 6; f++) {
        char v[16];
        snprintf(v, sizeof v, "value %d", f);
        assert_int_equal(dec_dis_field(uuids[f]), f);
        assert_string_equal(dec_dis_name(f), names[f]);
        assert_int_equal(decode_dis(uuids[f], (const uint8_t *)v, strlen(v), &di, why), 0);
        assert_string_equal(di.text[f], v);
        assert_true(di.have & (1u << f));
    }
    assert_int_equal(di.have, 0x3F);
    assert_int_equal(dec_dis_field(0x2A23), -ENOENT); /* System ID is not a string */
    assert_null(dec_dis_name(6));
    assert_null(dec_dis_name(-1));
    assert_int_equal(decode_dis(0x2A50, (const uint8_t *)"x", 1, &di, why), -ENOENT);
    assert_int_equal(decode_dis(0x2A29, (const uint8_t *)"\xff", 1, &di, why), 0);
    assert_int_equal(di.flags[DEC_DIS_MANUFACTURER], DEC_TEXT_REPLACED);
}

/* ---- InfiniTime motion service ---- */

static void test_pinetime_steps(void **state)
{
    static const uint8_t b[] = {0x10, 0x27, 0x00, 0x00}; /* 10000 */
    uint32_t total;
    char why[DEC_WHY_MAX];
    assert_int_equal(decode_pinetime_steps(b, 4, &total, why), 0);
    assert_int_equal(total, 10000);
    assert_int_equal(decode_pinetime_steps(b, 3, &total, why), -EINVAL);
    assert_string_equal(why, "step count: 3 bytes (exactly 4)");
    assert_int_equal(decode_pinetime_steps(b, 5, &total, why), -EINVAL);

    struct dec_steps_state st = {0};
    struct event ev;
    struct dec_meta m = meta;
    assert_int_equal(decode_steps_event(&st, 10000, &m, &ev), 0); /* baseline only */
    m.ts += 60000;
    assert_int_equal(decode_steps_event(&st, 10100, &m, &ev), 1);
    assert_int_equal(ev.type, EV_STEPS);
    assert_true(ev.u.steps.steps == 100);
    assert_int_equal(ev.u.steps.interval_s, 60);
    assert_true(ev.ts == m.ts);
    assert_event_valid(&ev);
    /* under a second later: held, then reported with the next total */
    m.ts += 400;
    assert_int_equal(decode_steps_event(&st, 10103, &m, &ev), 0);
    m.ts += 1100;
    assert_int_equal(decode_steps_event(&st, 10110, &m, &ev), 1);
    assert_true(ev.u.steps.steps == 10);
    assert_int_equal(ev.u.steps.interval_s, 2); /* 1.5 s rounds to 2 */
    /* the midnight reset: the new total is the steps since */
    m.ts += 30000;
    assert_int_equal(decode_steps_event(&st, 25, &m, &ev), 1);
    assert_true(ev.u.steps.steps == 25);
    /* a reset inside a held interval */
    m.ts += 500;
    assert_int_equal(decode_steps_event(&st, 3, &m, &ev), 0);
    m.ts += 1000;
    assert_int_equal(decode_steps_event(&st, 9, &m, &ev), 1);
    assert_true(ev.u.steps.steps == 9);
    /* zero steps over a reconnection are data, not missing */
    m.ts += 3600000;
    assert_int_equal(decode_steps_event(&st, 9, &m, &ev), 1);
    assert_true(ev.u.steps.steps == 0);
    assert_int_equal(ev.u.steps.interval_s, 3600);
    /* a clock step backwards keeps the total; the steps come later */
    m.ts -= 10000;
    assert_int_equal(decode_steps_event(&st, 20, &m, &ev), 0);
    m.ts += 5000;
    assert_int_equal(decode_steps_event(&st, 30, &m, &ev), 1);
    assert_true(ev.u.steps.steps == 21);
    assert_int_equal(ev.u.steps.interval_s, 5);
    /* more than a day apart: capped at a day */
    m.ts += 3 * 86400000LL;
    assert_int_equal(decode_steps_event(&st, 5000, &m, &ev), 1);
    assert_int_equal(ev.u.steps.interval_s, 86400);
    assert_event_valid(&ev);
}

static void test_pinetime_motion_and_accel_blocks(void **state)
{
    static const uint8_t b[] = {0x00, 0x04, 0x00, 0xFC, 0x00, 0x02}; /* 1024, -1024, 512 */
    float g[3];
    char why[DEC_WHY_MAX];
    assert_int_equal(decode_pinetime_motion(b, 6, DEC_PINETIME_LSB_PER_G, g, why), 0);
    assert_true(g[0] == 1.0f && g[1] == -1.0f && g[2] == 0.5f);
    assert_int_equal(decode_pinetime_motion(b, 5, 1024, g, why), -EINVAL);
    assert_int_equal(decode_pinetime_motion(b, 7, 1024, g, why), -EINVAL);
    assert_int_equal(decode_pinetime_motion(b, 12, 1024, g, why), -EINVAL);
    assert_string_equal(why, "raw motion: 12 bytes (exactly 6: x, y, z as s16)");
    assert_int_equal(decode_pinetime_motion(b, 6, 0, g, why), -EINVAL);
    assert_int_equal(decode_pinetime_motion(b, 6, NAN, g, why), -EINVAL);
    assert_int_equal(decode_pinetime_motion(b, 6, 1.0, g, why), -EINVAL); /* 1024 g */
    static const uint8_t neg[] = {0x00, 0x80, 0xFF, 0x7F, 0x00, 0x00};
    assert_int_equal(decode_pinetime_motion(neg, 6, 1024, g, why), 0);
    assert_true(g[0] == -32.0f && g[1] == 32767.0f / 1024.0f);

    static struct dec_accel_block blk;
    struct event ev;
    struct dec_meta m = meta;
    assert_int_equal(dec_accel_block_init(&blk, 0, 4, 200), -EINVAL);
    assert_int_equal(dec_accel_block_init(&blk, 10, 0, 200), -EINVAL);
    assert_int_equal(dec_accel_block_init(&blk, 10, DEC_ACCEL_BLOCK_MAX + 1, 200), -EINVAL);
    assert_int_equal(dec_accel_block_init(&blk, 10, 4, 200), 0);
    int64_t t0 = m.ts;
    float s[3] = {0.25f, -0.5f, 1.0f};
    for (int i = 0; i < 4; i++) { /* 10 Hz, with 30 ms of jitter */
        m.ts = t0 + 100 * i + (i % 2) * 30;
        s[0] = (float)i;
        assert_int_equal(dec_accel_block_add(&blk, s, &m, &ev), 0);
    }
    m.ts = t0 + 400;
    s[0] = 4;
    assert_int_equal(dec_accel_block_add(&blk, s, &m, &ev), 1); /* full: 4 samples */
    assert_int_equal(ev.type, EV_ACCEL);
    assert_true(ev.ts == t0);
    assert_true(ev.u.accel.hz == 10);
    assert_int_equal(ev.u.accel.n, 4);
    for (int i = 0; i < 4; i++)
        assert_true(ev.u.accel.g[i][0] == i && ev.u.accel.g[i][1] == -0.5f);
    assert_event_valid(&ev);
    m.ts = t0 + 2000; /* a gap: the block of one sample (at 400) ends */
    s[0] = 5;
    assert_int_equal(dec_accel_block_add(&blk, s, &m, &ev), 1);
    assert_true(ev.ts == t0 + 400);
    assert_int_equal(ev.u.accel.n, 1);
    assert_true(ev.u.accel.g[0][0] == 4);
    assert_event_valid(&ev);
    float huge[3] = {2000, 0, 0};
    assert_int_equal(dec_accel_block_add(&blk, huge, &m, &ev), -EINVAL);
    assert_int_equal(dec_accel_block_flush(&blk, &m, &ev), 1);
    assert_true(ev.ts == t0 + 2000);
    assert_int_equal(ev.u.accel.n, 1);
    assert_true(ev.u.accel.g[0][0] == 5);
    assert_int_equal(dec_accel_block_flush(&blk, &m, &ev), 0);
}

/* ---- PAMS general activity ---- */

static void test_pams_general_activity(void **state)
{
    struct dec_pams_ga g;
    char why[DEC_WHY_MAX];
    /* header 0x80, no optional field, session 1, sub-session 2, 3600 s, sequence 7 */
    static const uint8_t fixed[] = {0x80, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00,
                                    0x10, 0x0E, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00};
    assert_int_equal(decode_pams_general_activity(fixed, 16, &g, why), 0);
    assert_int_equal(g.header, 0x80);
    assert_int_equal(g.flags, 0);
    assert_int_equal(g.session_id, 1);
    assert_int_equal(g.sub_session_id, 2);
    assert_int_equal(g.relative_ts_s, 3600);
    assert_int_equal(g.sequence, 7);
    assert_int_equal(g.present, 0);
    assert_int_equal(g.device_worn, 0);
    assert_int_equal(decode_pams_general_activity(fixed, 15, &g, why), -EINVAL);
    assert_string_equal(why, "PAMS general activity: 15 bytes (at least 16)");
    uint8_t pad[17];
    memcpy(pad, fixed, 16);
    pad[16] = 0;
    assert_int_equal(decode_pams_general_activity(pad, 17, &g, why), -EINVAL);

    /* every field of bits 0..8 and the worn bit 23: flags 0x8001FF */
    static const uint8_t all[] = {
        0x03, 0xFF, 0x01, 0x80, 0x05, 0x00, 0x00, 0x00, 0x3C, 0x00, 0x00, 0x00,
        0xFF, 0xFF, 0xFF, 0xFF,
        0x2C, 0x01,       /* walking EE 300 */
        0x90, 0x01,       /* intensity EE 400 */
        0xF4, 0x01,       /* total EE 500 */
        0x0A, 0x00,       /* fat burned 10 */
        0x23,             /* MET 35 */
        0x96, 0x00,       /* speed 150 */
        0x64, 0x00,       /* cadence 100 */
        0x9C, 0xFF, 0xFF, /* elevation -100 (s24) */
        0xE8, 0x03,       /* activity count 1000 */
    };
    static const int32_t want[] = {300, 400, 500, 10, 35, 150, 100, -100, 1000};
    assert_int_equal(sizeof all, 16 + 18);
    assert_int_equal(decode_pams_general_activity(all, sizeof all, &g, why), 0);
    assert_int_equal(g.flags, 0x8001FF);
    assert_int_equal(g.present, 0x1FF);
    assert_int_equal(g.device_worn, 1);
    assert_int_equal(g.session_id, 5);
    assert_int_equal(g.relative_ts_s, 60);
    assert_int_equal(g.sequence, 0xFFFFFFFFu);
    for (int f = 0; f < _DEC_PAMS_FIELD_MAX; f++)
        assert_int_equal(g.value[f], want[f]);
    assert_int_equal(g.undecoded, 0);
    for (size_t n = 16; n < sizeof all; n++)
        assert_int_equal(decode_pams_general_activity(all, n, &g, why), -EINVAL);

    /* one field only: MET (bit 4) */
    static const uint8_t met[] = {0x80, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                                  0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1E};
    assert_int_equal(decode_pams_general_activity(met, sizeof met, &g, why), 0);
    assert_int_equal(g.present, 1u << DEC_PAMS_MET);
    assert_int_equal(g.value[DEC_PAMS_MET], 30);

    /* activity level (bit 9) has no size in the reference: its bytes are counted, not read */
    uint8_t lvl[16 + 2 + 3];
    memcpy(lvl, fixed, 16);
    lvl[1] = 0x01, lvl[2] = 0x02; /* bits 0 and 9 */
    lvl[16] = 0x2C, lvl[17] = 0x01, lvl[18] = 1, lvl[19] = 2, lvl[20] = 3;
    assert_int_equal(decode_pams_general_activity(lvl, sizeof lvl, &g, why), 0);
    assert_int_equal(g.present, 1);
    assert_int_equal(g.value[0], 300);
    assert_int_equal(g.undecoded, 3);
    assert_int_equal(decode_pams_general_activity(lvl, 17, &g, why), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hr_every_flag_combination),
        cmocka_unit_test(test_hr_reference_examples),
        cmocka_unit_test(test_hr_truncated_and_padded_values),
        cmocka_unit_test(test_hr_rate_limits),
        cmocka_unit_test(test_hr_rr_lists),
        cmocka_unit_test(test_battery_level),
        cmocka_unit_test(test_current_time_decodes_to_device_local_time),
        cmocka_unit_test(test_current_time_invalid_dates),
        cmocka_unit_test(test_current_time_encode_round_trips),
        cmocka_unit_test(test_dis_strings),
        cmocka_unit_test(test_dis_fields),
        cmocka_unit_test(test_pinetime_steps),
        cmocka_unit_test(test_pinetime_motion_and_accel_blocks),
        cmocka_unit_test(test_pams_general_activity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
