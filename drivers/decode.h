/* Pure decoders of BLE GATT characteristic values (ble.md §7; docs/ble-profiles.md): bytes in,
 * values or struct events out. No I/O, no clock, no allocation, no global state: what a decoder
 * needs to remember between values (the last step count, an accel block being filled) lives in
 * a caller-owned struct. Shared by the live BLE drivers, btsnoop/recording replay and the fuzz
 * harness (tests/fuzz/fuzz_decode.c).
 *
 * Conventions:
 *   - Functions return 0 (or a documented positive count) on success, or a negative errno:
 *       -EINVAL  malformed value (wrong length, reserved value, out of range)
 *       -ENODATA well-formed, but it carries nothing to turn into an event (e.g. a heart rate
 *                measured without skin contact); not a device error
 *   - why: NULL or a caller buffer of DEC_WHY_MAX bytes; on failure it receives a printable
 *     ASCII reason naming the byte offset or field, e.g. "HR measurement: 3 bytes, flags 0x19
 *     need at least 4".
 *   - Events: the decoder fills ts (from struct dec_meta), participant, source (copied from the
 *     meta, cut to EV_ID_MAX), type and the type's fields. has_seq is 0: the driver numbers the
 *     events of its source as it emits them. An event that passes is valid by docs/events.md
 *     (ev_to_json accepts it and ev_parse_json reads it back equal). */
#ifndef ENGAGED_DECODE_H
#define ENGAGED_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "pipeline/event.h"

#define DEC_WHY_MAX 128

/* 16-bit UUIDs of the characteristics decoded here (Bluetooth base UUID). */
#define DEC_UUID_HR_MEASUREMENT 0x2A37
#define DEC_UUID_BATTERY_LEVEL 0x2A19
#define DEC_UUID_CURRENT_TIME 0x2A2B
#define DEC_UUID_LOCAL_TIME_INFO 0x2A0F
#define DEC_UUID_MANUFACTURER 0x2A29
#define DEC_UUID_MODEL 0x2A24
#define DEC_UUID_SERIAL 0x2A25
#define DEC_UUID_HARDWARE_REV 0x2A27
#define DEC_UUID_FIRMWARE_REV 0x2A26
#define DEC_UUID_SOFTWARE_REV 0x2A28
#define DEC_UUID_PAMS_GENERAL_ACTIVITY 0x2B3C
/* InfiniTime Motion service, 128-bit: SSSSCCCC-78fc-48fe-8e23-433b3a1942d0 */
#define DEC_UUID_PINETIME_MOTION "00030000-78fc-48fe-8e23-433b3a1942d0"
#define DEC_UUID_PINETIME_STEPS "00030001-78fc-48fe-8e23-433b3a1942d0"
#define DEC_UUID_PINETIME_RAW_MOTION "00030002-78fc-48fe-8e23-433b3a1942d0"

/* A notification carries at most ATT_MTU - 3 = 514 bytes; a long read at most 512. */
#define DEC_VALUE_MAX 514

/* What the transport knows about a value: when it arrived (or the device's own time for it,
 * once corrected) and whose it is. Strings are borrowed for the call. */
struct dec_meta {
    int64_t ts;              /* UTC ms */
    const char *participant; /* NULL: left empty */
    const char *source;      /* NULL: left empty */
};

/* Zeroes *ev and fills the common fields and type from m. */
void dec_event_init(struct event *ev, const struct dec_meta *m, enum ev_type type);

/* ---- Heart Rate Measurement 0x2A37 ---- */

enum dec_contact {
    DEC_CONTACT_UNSUPPORTED = 0, /* flags bits 1-2 = 0 or 1 */
    DEC_CONTACT_NOT_DETECTED,    /* 2: supported, no skin contact */
    DEC_CONTACT_DETECTED,        /* 3 */
};

#define DEC_HR_RR_MAX 256 /* (514 - 2) / 2 */

struct dec_hr {
    uint8_t flags;          /* as received; bits 5-7 are reserved and ignored */
    unsigned bpm;           /* 0..255 (u8 format) or 0..300 (u16 format; more is refused) */
    enum dec_contact contact;
    int has_energy;
    unsigned energy_kj;     /* cumulative since the last reset; 0xFFFF = "at least 65535" */
    size_t n_rr;
    uint16_t rr[DEC_HR_RR_MAX]; /* RR intervals in units of 1/1024 s, as received */
};

/* Decodes every flag combination. Refused (-EINVAL): a value shorter than its flags need,
 * bytes left over when the RR flag is clear, an odd RR tail, the RR flag with no interval, an
 * RR interval of 0, a u16 heart rate above 300 bpm, more than DEC_VALUE_MAX bytes. */
int decode_hr_measurement(const uint8_t *buf, size_t len, struct dec_hr *ret, char *why);

/* RR interval in ms: raw * 1000 / 1024 (exact in a double). */
double dec_rr_ms(uint16_t raw);

/* EV_HR from a decoded measurement: bpm, and rr_ms converted to ms. -ENODATA (no event) when
 * the sensor reports no skin contact or a rate of 0 bpm; -EINVAL when it has more than
 * EV_RR_MAX intervals or an interval above 60000 ms (docs/events.md limits). */
int decode_hr_event(const struct dec_hr *hr, const struct dec_meta *m, struct event *ev,
                    char *why);

/* ---- Battery Level 0x2A19 ---- */

/* One byte, 0..100 %. */
int decode_battery_level(const uint8_t *buf, size_t len, unsigned *ret_pct, char *why);
/* EV_BATTERY with pct. */
int decode_battery_event(const uint8_t *buf, size_t len, const struct dec_meta *m,
                         struct event *ev, char *why);

/* ---- Current Time 0x2A2B and Local Time Information 0x2A0F ---- */

#define DEC_CTS_LEN 10
#define DEC_CTS_ADJUST_MANUAL 0x01
#define DEC_CTS_ADJUST_EXTERNAL 0x02
#define DEC_CTS_ADJUST_TZ 0x04
#define DEC_CTS_ADJUST_DST 0x08

struct dec_cts {
    unsigned year, month, day, hour, minute, second;
    unsigned dow;       /* 1 = Monday .. 7 = Sunday, 0 = unknown */
    unsigned frac256;   /* 1/256 s */
    unsigned adjust;    /* adjust reason; bits 4-7 reserved, kept as received */
    /* The device's wall clock as ms since 1970-01-01T00:00 *of that wall clock*: the value
     * carries no zone. Convert with tz_local_to_utc(zone, local_ms) for a known zone, or with
     * dec_cts_utc() and the device's Local Time Information. Fractions are rounded up to
     * whole ms (at most 3.9 ms; dec_cts_encode of the result gives back the same bytes). */
    int64_t local_ms;
};

/* Exactly 10 bytes. Refused: a date or time field out of range (year 1582..9999, month 1..12,
 * day within the month, hour 0..23, minute and second 0..59, day of week 0..7), the "unknown"
 * 0 in year, month or day (the value then names no instant), and a day of week that does not
 * match the date. */
int decode_current_time(const uint8_t *buf, size_t len, struct dec_cts *out, char *why);

/* Encodes local_ms (a wall-clock time as above, year 1582..9999) as a Current Time value, with
 * its day of week, for writing a device's clock. Fractions are floor(ms * 256 / 1000), so
 * decoding gives back local_ms or up to 3 ms less. -EINVAL out of range or adjust > 0xFF. */
int dec_cts_encode(int64_t local_ms, unsigned adjust, uint8_t out[DEC_CTS_LEN]);

struct dec_lti {
    int has_tz;
    int tz_quarters;   /* offset from UTC in 15-minute units, -48..+56 */
    int has_dst;
    int dst_quarters;  /* DST offset in 15-minute units: 0, 2, 4 or 8 */
};

/* Two bytes: tz s8 (-128 = unknown) and dst u8 (255 = unknown). */
int decode_local_time_info(const uint8_t *buf, size_t len, struct dec_lti *out, char *why);

/* Encodes l as a Local Time Information value, for writing a device's zone: an unknown part
 * as -128 / 255. -EINVAL for a zone or DST offset decode_local_time_info would refuse. */
int dec_lti_encode(const struct dec_lti *l, uint8_t out[2]);
/* The device's wall clock minus UTC by its Local Time Information: (tz + dst) * 15 min, in
 * ms. -ENODATA when the zone or DST offset is unknown. */
int dec_lti_offset_ms(const struct dec_lti *l, int64_t *ret_ms);
/* UTC ms of a Current Time value given the device's Local Time Information:
 * local - dec_lti_offset_ms. -ENODATA when the zone or DST offset is unknown. */
int dec_cts_utc(const struct dec_cts *c, const struct dec_lti *l, int64_t *ret_utc_ms);

/* ---- Device Information strings 0x2A29 0x2A24 0x2A25 0x2A27 0x2A26 0x2A28 ---- */

#define DEC_DIS_MAX 128 /* bytes kept per string, without the NUL */
#define DEC_TEXT_TRUNCATED 0x1 /* cut at DEC_DIS_MAX bytes (at a character boundary) */
#define DEC_TEXT_REPLACED 0x2  /* invalid UTF-8 or control characters replaced by '?' */

enum dec_dis_field {
    DEC_DIS_MANUFACTURER = 0,
    DEC_DIS_MODEL,
    DEC_DIS_SERIAL,
    DEC_DIS_HARDWARE_REV,
    DEC_DIS_FIRMWARE_REV,
    DEC_DIS_SOFTWARE_REV,
    _DEC_DIS_FIELD_MAX
};

struct dec_devinfo {
    char text[_DEC_DIS_FIELD_MAX][DEC_DIS_MAX + 1];
    unsigned have;             /* bit f: field f was read */
    unsigned flags[_DEC_DIS_FIELD_MAX]; /* DEC_TEXT_* */
};

/* The field a 16-bit characteristic UUID carries, or -ENOENT. */
int dec_dis_field(uint16_t uuid);
/* "manufacturer", "model", "serial", "hardware_rev", "firmware_rev", "software_rev"; NULL for
 * an unknown field. */
const char *dec_dis_name(int field);

/* Sanitises a Device Information string (UTF-8, not NUL-terminated) into out (DEC_DIS_MAX + 1
 * bytes): trailing NUL padding dropped, leading and trailing spaces trimmed, invalid UTF-8 and
 * control characters (C0, DEL, C1, including NUL) replaced by '?', cut at DEC_DIS_MAX bytes.
 * The result is valid UTF-8 without control characters; it may be empty. Returns DEC_TEXT_*
 * flags (>= 0), or -EINVAL for a value longer than 512 bytes (the ATT attribute maximum). */
int decode_dis_string(const uint8_t *buf, size_t len, char out[DEC_DIS_MAX + 1], char *why);

/* Stores the string of characteristic uuid into di. -ENOENT for a UUID that is not one of the
 * six strings. */
int decode_dis(uint16_t uuid, const uint8_t *buf, size_t len, struct dec_devinfo *di,
               char *why);

/* 1 if s[0..n) is valid UTF-8 (shortest forms, no surrogates, at most U+10FFFF) without
 * control characters (C0, DEL, C1): the rule docs/events.md sets for names. */
int dec_text_ok(const uint8_t *s, size_t n);

/* ---- PineTime / InfiniTime Motion service ---- */

/* Step count characteristic: u32, the watch's total steps (InfiniTime resets it daily). */
int decode_pinetime_steps(const uint8_t *buf, size_t len, uint32_t *ret_total, char *why);

/* The last total a steps event was derived from: caller-owned, one per device, kept across
 * reconnections (zeroed at start). */
struct dec_steps_state {
    int have;
    int64_t ts;
    uint32_t total;
};

/* EV_STEPS from a new total read at m->ts: the steps since the previous total, over the
 * interval since it (rounded to whole seconds, at most 86400 s: steps counted over a longer
 * disconnection are put in the day before the reading). A total below the previous one is a
 * reset (midnight, reboot): the steps are the new total. Returns 1 with *ev filled, or 0 with
 * no event: the first total (it only sets the baseline), or less than 1 s after the baseline
 * (the steps stay in the baseline's interval and come with the next total), or a time before
 * the baseline (a clock step: the baseline keeps its total and takes this reading's time, so
 * its steps come with the next total). */
int decode_steps_event(struct dec_steps_state *st, uint32_t total, const struct dec_meta *m,
                       struct event *ev);

/* Raw motion characteristic: 3 x s16 (x, y, z), exactly 6 bytes, converted to g with
 * lsb_per_g (> 0; DEC_PINETIME_LSB_PER_G unless configured: the reference leaves the scale to
 * measurement, docs/ble-profiles.md). */
#define DEC_PINETIME_LSB_PER_G 1024.0
int decode_pinetime_motion(const uint8_t *buf, size_t len, double lsb_per_g, float g[3],
                           char *why);

/* Collects single samples (one per notification) into EV_ACCEL blocks at a nominal rate, so
 * the store keeps one row per block rather than per sample. A block starts at its first
 * sample's time; it ends when it holds block_len samples, or before a sample that arrives more
 * than tolerance_ms away from where the nominal rate puts it (a gap or a rate change).
 * Caller-owned; one per device. */
#define DEC_ACCEL_BLOCK_MAX 1024
struct dec_accel_block {
    double hz;
    size_t block_len;
    int64_t tolerance_ms;
    int64_t ts0;       /* first sample of the block being filled */
    size_t n;          /* samples in it */
    int cur;           /* which half of g is being filled */
    float g[2][DEC_ACCEL_BLOCK_MAX][3];
};

/* hz 0 < hz <= 10000, block_len 1..DEC_ACCEL_BLOCK_MAX, tolerance_ms >= 0. */
int dec_accel_block_init(struct dec_accel_block *b, double hz, size_t block_len,
                         int64_t tolerance_ms);
/* Adds the sample received at m->ts. Returns 1 when the block before it was finished and
 * written to *ev (its samples borrowed from b until the next call on b), 0 otherwise, -EINVAL
 * for a sample beyond ±1000 g (not added). */
int dec_accel_block_add(struct dec_accel_block *b, const float g[3], const struct dec_meta *m,
                        struct event *ev);
/* Ends the block being filled (disconnect, shutdown): 1 with *ev, or 0 if it is empty. */
int dec_accel_block_flush(struct dec_accel_block *b, const struct dec_meta *m,
                          struct event *ev);

/* ---- Physical Activity Monitor Service: General Activity Instantaneous Data 0x2B3C ---- */

/* Optional fields, in flag-bit order (bit i of flags = field i present). */
enum dec_pams_field {
    DEC_PAMS_WALKING_EE = 0, /* u16, energy expenditure per hour while walking */
    DEC_PAMS_INTENSITY_EE,   /* u16 */
    DEC_PAMS_TOTAL_EE,       /* u16 */
    DEC_PAMS_FAT_BURNED,     /* u16 */
    DEC_PAMS_MET,            /* u8 */
    DEC_PAMS_SPEED,          /* u16 */
    DEC_PAMS_CADENCE,        /* u16 */
    DEC_PAMS_ELEVATION,      /* s24 */
    DEC_PAMS_ACTIVITY_COUNT, /* u16, per minute */
    _DEC_PAMS_FIELD_MAX
};

struct dec_pams_ga {
    uint8_t header;      /* segmentation header, as received (not interpreted) */
    uint32_t flags;      /* u24 */
    uint16_t session_id, sub_session_id;
    uint32_t relative_ts_s;
    uint32_t sequence;
    unsigned present;    /* bit i: field i decoded into value[i] */
    int32_t value[_DEC_PAMS_FIELD_MAX]; /* raw integers, no scaling */
    int device_worn;     /* flags bit 23 */
    size_t undecoded;    /* trailing bytes of fields the reference does not size (bits 9-22) */
};

/* The fixed 16 bytes, then fields 0..8 as the flags say. When a flag in bits 9..22 is set the
 * bytes after field 8 cannot be located and are counted in undecoded; otherwise the length must
 * match the flags exactly. Values only: no event type fits these fields yet. */
int decode_pams_general_activity(const uint8_t *buf, size_t len, struct dec_pams_ga *out,
                                 char *why);

#endif
