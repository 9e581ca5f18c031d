/* Current Time 0x2A2B and Local Time Information 0x2A0F (ble.md §7.3).
 *
 * Current Time is the device's wall clock (Exact Time 256: date, time, day of week, 1/256 s)
 * plus an adjust reason. It names no zone, so the decoder returns it as device-local wall time
 * (ms on the device's own clock), and the caller decides what that clock means: with the
 * device's Local Time Information (dec_cts_utc), or with the participant's zone
 * (tz_local_to_utc). The decoder does not guess a zone because a watch set by a phone abroad,
 * or never set, is common, and a wrong guess would shift every timestamp it corrects. */
#include <errno.h>

#include "drivers/decode.h"
#include "drivers/decode_int.h"
#include "pipeline/tz.h"

#define YEAR_MIN 1582
#define YEAR_MAX 9999
#define MS_DAY INT64_C(86400000)

static int leap(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : dim[m - 1];
}

/* 1 = Monday .. 7 = Sunday; 1970-01-01 was a Thursday. */
static unsigned day_of_week(int64_t days)
{
    return (unsigned)floor_mod(days + 3, 7) + 1;
}

int decode_current_time(const uint8_t *buf, size_t len, struct dec_cts *out, char *why)
{
    if (len != DEC_CTS_LEN)
        return dec_fail(why, -EINVAL, "current time: %zu bytes (exactly %d)", len, DEC_CTS_LEN);
    struct dec_cts c = {
        .year = get_le16(buf), .month = buf[2], .day = buf[3], .hour = buf[4],
        .minute = buf[5], .second = buf[6], .dow = buf[7], .frac256 = buf[8], .adjust = buf[9],
    };
    if (c.year == 0 || c.month == 0 || c.day == 0)
        return dec_fail(why, -EINVAL, "current time: date not known to the device (%04u-%02u-%02u)",
                        c.year, c.month, c.day);
    if (c.year < YEAR_MIN || c.year > YEAR_MAX)
        return dec_fail(why, -EINVAL, "current time: year %u out of range (%d..%d)", c.year,
                        YEAR_MIN, YEAR_MAX);
    if (c.month > 12)
        return dec_fail(why, -EINVAL, "current time: month %u out of range (1..12)", c.month);
    if (c.day > days_in_month(c.year, c.month))
        return dec_fail(why, -EINVAL, "current time: day %u out of range for %04u-%02u (1..%u)",
                        c.day, c.year, c.month, days_in_month(c.year, c.month));
    if (c.hour > 23 || c.minute > 59 || c.second > 59)
        return dec_fail(why, -EINVAL, "current time: time %02u:%02u:%02u out of range",
                        c.hour, c.minute, c.second);
    if (c.dow > 7)
        return dec_fail(why, -EINVAL, "current time: day of week %u out of range (0..7)", c.dow);
    int64_t days = civil_to_days(c.year, c.month, c.day);
    if (c.dow && c.dow != day_of_week(days))
        return dec_fail(why, -EINVAL, "current time: day of week %u, but %04u-%02u-%02u is "
                        "day %u", c.dow, c.year, c.month, c.day, day_of_week(days));
    /* 1/256 s rounded up to whole ms, so that dec_cts_encode gives back the same bytes */
    c.local_ms = days * MS_DAY + ((int64_t)c.hour * 3600 + c.minute * 60 + c.second) * 1000 +
                 ((int64_t)c.frac256 * 1000 + 255) / 256;
    *out = c;
    return 0;
}

int dec_cts_encode(int64_t local_ms, unsigned adjust, uint8_t out[DEC_CTS_LEN])
{
    int64_t days = floor_div(local_ms, MS_DAY), ms = floor_mod(local_ms, MS_DAY);
    int64_t y;
    unsigned m, d;
    if (adjust > 0xFF)
        return -EINVAL;
    /* bound days first so civil_from_days never sees an absurd value */
    if (days < civil_to_days(YEAR_MIN, 1, 1) || days > civil_to_days(YEAR_MAX, 12, 31))
        return -EINVAL;
    civil_from_days(days, &y, &m, &d);
    put_le16(out, (uint16_t)y);
    out[2] = (uint8_t)m;
    out[3] = (uint8_t)d;
    out[4] = (uint8_t)(ms / 3600000);
    out[5] = (uint8_t)(ms / 60000 % 60);
    out[6] = (uint8_t)(ms / 1000 % 60);
    out[7] = (uint8_t)day_of_week(days);
    out[8] = (uint8_t)(ms % 1000 * 256 / 1000);
    out[9] = (uint8_t)adjust;
    return 0;
}

int decode_local_time_info(const uint8_t *buf, size_t len, struct dec_lti *out, char *why)
{
    if (len != 2)
        return dec_fail(why, -EINVAL, "local time information: %zu bytes (exactly 2)", len);
    int tz = (int8_t)buf[0];
    unsigned dst = buf[1];
    if (tz != -128 && (tz < -48 || tz > 56))
        return dec_fail(why, -EINVAL, "local time information: time zone %d quarter-hours out "
                        "of range (-48..56, -128 unknown)", tz);
    if (dst != 0 && dst != 2 && dst != 4 && dst != 8 && dst != 255)
        return dec_fail(why, -EINVAL, "local time information: DST offset %u not one of 0, 2, "
                        "4, 8 (255 unknown)", dst);
    out->has_tz = tz != -128;
    out->tz_quarters = out->has_tz ? tz : 0;
    out->has_dst = dst != 255;
    out->dst_quarters = out->has_dst ? (int)dst : 0;
    return 0;
}

int dec_lti_encode(const struct dec_lti *l, uint8_t out[2])
{
    int dst = l->dst_quarters;
    if ((l->has_tz && (l->tz_quarters < -48 || l->tz_quarters > 56)) ||
        (l->has_dst && dst != 0 && dst != 2 && dst != 4 && dst != 8))
        return -EINVAL;
    out[0] = (uint8_t)(int8_t)(l->has_tz ? l->tz_quarters : -128);
    out[1] = (uint8_t)(l->has_dst ? dst : 255);
    return 0;
}

int dec_lti_offset_ms(const struct dec_lti *l, int64_t *ret_ms)
{
    if (!l->has_tz || !l->has_dst)
        return -ENODATA;
    *ret_ms = (int64_t)(l->tz_quarters + l->dst_quarters) * 15 * 60000;
    return 0;
}

int dec_cts_utc(const struct dec_cts *c, const struct dec_lti *l, int64_t *ret_utc_ms)
{
    int64_t off;
    int r = dec_lti_offset_ms(l, &off);
    if (r < 0)
        return r;
    *ret_utc_ms = c->local_ms - off;
    return 0;
}
