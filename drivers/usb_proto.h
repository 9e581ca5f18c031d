/* Pure parts of the live USB drivers (docs/usb.md; reference ../shared/reference/ble.md §8):
 * no libusb, no I/O, no clock, no allocation. The daemon's USB manager (daemon/usb*.c) feeds
 * them bytes; the unit tests (tests/unit/test_usb_proto.c) feed them everything else.
 *
 *  - ax3cmd_*  (drivers/usb_ax3cmd.c): the Axivity AX3/AX6 serial command interface (CDC-ACM):
 *              splitting the byte stream into reply lines, parsing the ID, battery and TIME
 *              replies, formatting the TIME command.
 *  - cwain_*   (drivers/usb_cwain.c): turning the data blocks of a docked device's CWA file
 *              into `accel` events incrementally, skipping what an earlier dock ingested.
 *  - aoaenv_*  (drivers/usb_aoaenv.c): Android Open Accessory identification and the envelope
 *              framing that carries the relay protocol (docs/relay-profile.md) over bulk
 *              endpoints. */
#ifndef ENGAGED_USB_PROTO_H
#define ENGAGED_USB_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "drivers/cwa.h"
#include "pipeline/event.h"
#include "pipeline/tz.h"

#define USB_WHY_MAX 160 /* reasons: printable ASCII, NUL-terminated */

/* ---- AX3/AX6 command interface ---------------------------------------------------------- */

#define AX3CMD_LINE_MAX 255 /* reply bytes per line; longer lines are cut and counted */

/* Collects the device's bytes into lines ending in CR, LF or CRLF. */
struct ax3cmd_lines {
    char buf[AX3CMD_LINE_MAX + 1];
    size_t len;
    int overlong;         /* the current line passed AX3CMD_LINE_MAX: its rest is dropped */
    uint64_t lines, overlong_lines, nul_bytes;
};
void ax3cmd_lines_init(struct ax3cmd_lines *l);
/* Takes bytes from p[0..n) up to and including the first line end that completes a non-empty
 * line; returns how many bytes were used. *ret_line points at the line (NUL-terminated, no line
 * end; borrowed until the next call) when one is complete, else NULL. NUL bytes are dropped
 * (counted). Call again with the rest until it returns 0 bytes used. */
size_t ax3cmd_lines_feed(struct ax3cmd_lines *l, const char *p, size_t n, const char **ret_line);

/* "ID=CWA,17,47,123" (kind, hardware, firmware, device id) */
struct ax3cmd_id {
    char kind[8];          /* "CWA" (AX3) or "AX6"; other words are kept as sent */
    unsigned hardware, firmware;
    uint32_t device_id;
};
/* Returns 0, -ENOENT if the line is not an ID reply, or -EINVAL with a reason in why
 * (USB_WHY_MAX bytes, may be NULL). */
int ax3cmd_parse_id(const char *line, struct ax3cmd_id *ret, char *why);

/* "$BATT=<raw>,<mV>,mV,<percent>,<charged>" */
struct ax3cmd_batt {
    unsigned raw, mv, pct;
    int charged;           /* 0 or 1 */
};
int ax3cmd_parse_batt(const char *line, struct ax3cmd_batt *ret, char *why);

/* "TIME=YYYY-MM-DD,hh:mm:ss" (the device's wall clock): *ret_s = seconds since 1970 on that
 * clock. Years 2000..2063 (the range the device's packed timestamps hold). */
int ax3cmd_parse_time(const char *line, int64_t *ret_s, char *why);

/* The command that sets the clock: "TIME YYYY-MM-DD,hh:mm:ss\r\n". Returns its length, or
 * -ERANGE for a time outside 2000..2063, -ENOBUFS when cap is too small. */
int ax3cmd_format_set_time(int64_t local_s, char *buf, size_t cap);

/* ---- CWA blocks of a docked device to accel events ------------------------------------- */

/* An event's seq is the device-clock instant of its LAST sample in nanoseconds since 1970
 * (every supported rate has a whole number of ns per sample). So the store's position for the
 * source (its highest committed seq) is exactly the last sample ingested, and the next dock
 * emits only samples after it: nothing twice, nothing skipped, across any number of docks,
 * restarts and unplugs, even with a different device for the same source. */
struct cwain_stats {
    uint64_t blocks;        /* blocks given */
    uint64_t data;          /* data blocks decoded */
    uint64_t bad;           /* damaged or impossible blocks (reported, skipped) */
    uint64_t other;         /* blocks of another type (reported, skipped) */
    uint64_t erased;        /* unwritten flash (skipped silently) */
    uint64_t headers;       /* a second recording's header inside the file */
    uint64_t samples;       /* samples put into events */
    uint64_t skipped;       /* samples at or before the resume point (ingested before) */
    uint64_t events;
    uint64_t segments;      /* runs of consecutive blocks */
};

struct cwain {
    const struct tz_zone *zone; /* device clock -> UTC; NULL = UTC */
    int have_after;
    int64_t after_ns;        /* skip samples at or before this device-clock instant */
    int have_off;
    int64_t off_ms;          /* device clock minus UTC, fixed per recording */
    int in_header;           /* the block after an "MD" block is the header's second half */
    int pending;             /* blk starts a new segment once the open one is drained */
    int flushing;            /* the open segment has ended: drain it */
    struct cwa_block blk;
    size_t n_out;
    int64_t out_index;
    double out_hz;
    struct cwain_stats st;
    char why[USB_WHY_MAX];
    float out[EV_ACCEL_MAX][3];
    struct cwa_stream cs;
};

/* Resets u for a new file. have_after/after_ns: the resume point (the source's position), if
 * any. zone: borrowed, may be NULL. */
void cwain_init(struct cwain *u, const struct tz_zone *zone, int have_after, int64_t after_ns);

/* Fixes the device-clock -> UTC offset from a device-clock instant of the recording (its first
 * block): the zone's offset then applies to the whole recording, because the device's clock
 * does not follow daylight saving time (the same rule as the file reader, drivers/file_cwa.c).
 * Without this call the first block decoded sets it. */
void cwain_set_origin(struct cwain *u, int64_t device_s);

enum {
    CWAIN_OK = 0,            /* block taken (or skipped silently) */
    CWAIN_BAD = 1,           /* damaged or impossible block skipped: reason in u->why */
    CWAIN_OTHER = 2,         /* a block of another type skipped: reason in u->why */
};
/* Gives the next 512-byte block of the data area (file_off: its byte offset in the file, for
 * the reason). Returns CWAIN_OK/BAD/OTHER, or -EBUSY when the events of the previous block
 * have not all been taken yet (take them first). */
int cwain_block(struct cwain *u, const uint8_t b[CWA_BLOCK_SIZE], uint64_t file_off);

/* The next event, if one is complete (end = 0) or, at the end of the data (end = 1), whatever
 * is left. Returns 1 with *ev filled (ev->u.accel.g borrows u->out until the next call), else
 * 0. participant and source are copied into the event. */
int cwain_take(struct cwain *u, int end, const char *participant, const char *source,
               struct event *ev);

/* Nanoseconds per sample at hz (a supported CWA rate), or 0. */
int64_t cwain_period_ns(double hz);

/* For finding where to resume without reading the whole file: the device-clock second of a
 * data block whose checksum holds, or -EINVAL for any other block. */
int cwain_block_time(const uint8_t b[CWA_BLOCK_SIZE], int64_t *ret_s);

/* ---- Android Open Accessory --------------------------------------------------------------- */

#define AOA_VID 0x18D1
#define AOA_PID_FIRST 0x2D00    /* accessory */
#define AOA_PID_LAST 0x2D05     /* ... accessory + ADB + audio variants */
#define AOA_REQ_GET_PROTOCOL 51
#define AOA_REQ_SEND_STRING 52
#define AOA_REQ_START 53
#define AOA_STRINGS 6           /* manufacturer, model, description, version, URI, serial */
#define AOA_STRING_MAX 255      /* bytes of one identification string with its NUL */

/* The identification strings the hub sends (id 0..5). The phone app's accessory filter must
 * match manufacturer and model (docs/relay-profile.md, USB). */
#define AOA_MANUFACTURER "engaged"
#define AOA_MODEL "engaged-hub"
#define AOA_DESCRIPTION "engaged passive-sensing hub"
#define AOA_URI "https://github.com/engaged-study/engaged"
const char *aoaenv_string(unsigned id, const char *version, const char *serial);

/* 1 if vid:pid is a phone in accessory mode (18D1:2D00..2D05). */
int aoaenv_is_accessory(uint16_t vid, uint16_t pid);

/* Envelopes on the bulk pipes: channel u8, length u16 (little-endian), value[length]. */
#define AOAENV_HDR 3
#define AOAENV_VALUE_MAX 4112   /* RELAY_RECORD_MAX + RELAY_FIRST_HDR: a record in one fragment */
enum {
    AOAENV_RECORDS = 0x02,  /* phone -> hub: relay fragments */
    AOAENV_RESUME = 0x03,   /* hub -> phone: RESUME, ACK */
    AOAENV_STATUS = 0x04,   /* phone -> hub: status; hub -> phone: control */
    AOAENV_NUDGES = 0x05,   /* hub -> phone: nudge fragments */
};

/* Wraps value[0..len) into out (cap >= AOAENV_HDR + len). Returns the envelope's length, or
 * -EMSGSIZE (len > AOAENV_VALUE_MAX) / -ENOBUFS. */
int aoaenv_encode(uint8_t channel, const void *value, size_t len, uint8_t *out, size_t cap);

/* Reassembles envelopes from the bytes of successive bulk IN transfers. */
struct aoaenv_rx {
    size_t have;                       /* bytes of the current envelope held */
    int skip_transfer;                 /* after an error: ignore the rest of this transfer */
    uint64_t envelopes, errors, truncated, bytes;
    char why[USB_WHY_MAX];
    uint8_t buf[AOAENV_HDR + AOAENV_VALUE_MAX];
};
void aoaenv_rx_init(struct aoaenv_rx *rx);
/* Takes bytes of one transfer from p[0..n) up to the end of the first complete envelope;
 * returns the bytes used (>= 0). *ret_channel, *ret_value, *ret_len describe the envelope when
 * one is complete (value borrowed until the next call), else *ret_value is NULL. A bad
 * envelope (unknown channel, length above AOAENV_VALUE_MAX) sets *ret_err to -EBADMSG with the
 * reason in rx->why, drops what is held and ignores the rest of the transfer (the next one
 * starts afresh). Call aoaenv_rx_end_transfer() after the last bytes of each transfer. */
size_t aoaenv_rx_feed(struct aoaenv_rx *rx, const uint8_t *p, size_t n, uint8_t *ret_channel,
                      const uint8_t **ret_value, size_t *ret_len, int *ret_err);
void aoaenv_rx_end_transfer(struct aoaenv_rx *rx);
/* The stream was cut (unplug, reset): drops a partial envelope (counted as truncated);
 * returns 1 if there was one. */
int aoaenv_rx_reset(struct aoaenv_rx *rx);

#endif
