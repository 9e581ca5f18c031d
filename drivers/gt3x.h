/* ActiGraph .gt3x contents (../shared/reference/ble.md §8.3, actigraphy.md §8.5): pure
 * parsing of info.txt, of the log.bin record stream (current format: records with
 * checksums, ACTIVITY and ACTIVITY2 samples, idle-sleep-mode gaps filled with the last sample
 * as ActiLife does, PARAMETERS for the acceleration scale) and of the activity.bin bit stream
 * (NEO format: 12-bit samples from the start date at the sample rate). No I/O (the ZIP
 * container is read by drivers/file_gt3x.c), no allocation, no clock.
 *
 * Times are the device's clock: local wall time without a zone, seconds since 1970. A
 * sample's index is its time times the sample rate (second * rate + position in the
 * second), so consecutive samples have consecutive indexes and a gap is a jump. */
#ifndef ENGAGED_GT3X_H
#define ENGAGED_GT3X_H

#include <stddef.h>
#include <stdint.h>

#define GT3X_INFO_MAX 65536       /* info.txt above this is refused */
#define GT3X_RATE_MAX 1000        /* Sample Rate: a whole number of Hz, 1..1000 */
#define GT3X_SCALE_MIN 64.0       /* acceleration scale, LSB/g (int16 / 64: within ±512 g) */
#define GT3X_SCALE_MAX 65536.0
#define GT3X_FILL_MAX_S (31 * 86400) /* a longer idle-sleep gap is reported, not filled */
#define GT3X_RECORD_MAX (8 + 65535 + 1)
#define GT3X_BUF (4 * GT3X_RECORD_MAX)
#define GT3X_NEO_CHUNK 1024       /* samples per item from activity.bin */

/* .NET ticks (100 ns since 0001-01-01) of the Unix epoch */
#define GT3X_TICKS_UNIX INT64_C(621355968000000000)

struct gt3x_info {
    char serial[48];
    char device_type[48];
    char firmware[24];
    int sample_rate;           /* Hz; 0 if absent */
    int64_t start_ticks;       /* Start Date etc.: .NET ticks on the device clock, 0 if absent */
    int64_t stop_ticks;
    int64_t last_sample_ticks;
    int64_t download_ticks;
    int has_tz;
    int32_t tz_s;              /* TimeZone: device clock minus UTC, seconds */
    double accel_scale;        /* Acceleration Scale (LSB/g); 0 if absent */
};

/* Parses info.txt ("Key: value" lines; unknown keys ignored). Returns 0, or -EINVAL with
 * the reason in why: NUL bytes, a line over 1 KiB, or a malformed value of a key this reader
 * uses (Sample Rate 1..1000, dates as ticks within 1900..2199, TimeZone [+-]HH:MM[:SS] within
 * ±15 h, Acceleration Scale 64..65536). */
int gt3x_info_parse(const char *text, size_t n, struct gt3x_info *out, char *why, size_t cap);

/* The scale the serial number implies (NEO, CLE, MRA: 341; MOS, TAS: 256), 0 if unknown. */
double gt3x_serial_scale(const char *serial);
/* 1 if the device rotates its axes (wGT3X-BT firmware 1.6.0: x' = y, y' = -x). */
int gt3x_rotated(const struct gt3x_info *info);
/* ActiGraph's float encoding of PARAMETERS values (24-bit two's-complement fraction of 2^23,
 * 8-bit two's-complement power of two). */
double gt3x_param_float(uint32_t v);
/* Decodes n samples of 12-bit two's-complement Y, X, Z values packed most-significant first
 * (36 bits each; p holds at least ceil(4.5 n) bytes) into x, y, z in g: value / scale rounded
 * to 3 decimals (half away from zero), rotated if asked. */
void gt3x_unpack12(const uint8_t *p, size_t n, double scale, int rotate, float (*g)[3]);

enum gt3x_item_kind {
    GT3X_NEED_MORE = 0, /* feed more bytes (gt3x_log_space / gt3x_log_wrote) or gt3x_log_end */
    GT3X_SAMPLES,       /* n samples in g, from index on */
    GT3X_FILL,          /* n samples all equal to fill, from index on (idle sleep mode) */
    GT3X_BAD,           /* a damaged or impossible record, skipped: why, offset, record */
    GT3X_ERROR,         /* the rest cannot be read: why (no acceleration scale) */
    GT3X_END,           /* everything was read (returned again on later calls) */
};

struct gt3x_item {
    int64_t index;
    size_t n;
    const float (*g)[3];  /* GT3X_SAMPLES: valid until the next gt3x_log_next */
    float fill[3];
    uint64_t offset;      /* byte offset in log.bin / activity.bin of the record concerned */
    uint64_t record;      /* 1-based record number (log.bin) */
    const char *why;      /* GT3X_BAD, GT3X_ERROR: valid until the next gt3x_log_next */
};

/* The decoder of one log.bin or activity.bin stream. About 270 KiB: allocate it. */
struct gt3x_log {
    int neo;               /* activity.bin instead of log.bin */
    int rate;
    double scale;          /* LSB/g; 0 = not known yet (PARAMETERS may give it) */
    int rotate;
    int64_t neo_index;     /* NEO: index of the next sample */
    size_t lo, hi;         /* unread bytes are buf[lo..hi) */
    uint64_t base;         /* stream offset of buf[0] */
    int eof;
    int state;             /* framing state (gt3x.c) */
    uint64_t bad_off, bad_end; /* resynchronisation after a damaged record */
    uint64_t junk_off, junk_n; /* bytes that are not records, not yet reported */
    uint64_t records;      /* records framed (valid or not) */
    uint64_t bad;          /* records or byte runs reported */
    /* samples */
    int have_last;
    int64_t last_sec;      /* second of the last activity record */
    float last[3];         /* its last sample */
    int in_ism;            /* idle sleep mode entered and not left */
    int64_t max_ts;        /* newest record timestamp seen */
    int ended;             /* the end-of-stream fill was considered */
    int pending;           /* samples decoded for the record after a fill */
    int64_t pending_index;
    size_t pending_n;
    uint64_t pending_off, pending_rec;
    char why[200];
    uint8_t buf[GT3X_BUF];
    float g[GT3X_RATE_MAX > GT3X_NEO_CHUNK ? GT3X_RATE_MAX : GT3X_NEO_CHUNK][3];
};

/* log.bin (neo 0) or activity.bin (neo 1: start_s is the Start Date, in whole device-clock
 * seconds). rate 1..GT3X_RATE_MAX; scale may be 0 for log.bin (PARAMETERS or an error). */
void gt3x_log_init(struct gt3x_log *l, int neo, int rate, double scale, int rotate,
                   int64_t start_s);
/* Room to write the next bytes of the stream into (*room > 0 unless gt3x_log_end was
 * called); then gt3x_log_wrote(n). */
uint8_t *gt3x_log_space(struct gt3x_log *l, size_t *room);
void gt3x_log_wrote(struct gt3x_log *l, size_t n);
void gt3x_log_end(struct gt3x_log *l);
/* The next item (enum gt3x_item_kind). */
int gt3x_log_next(struct gt3x_log *l, struct gt3x_item *it);

#endif
