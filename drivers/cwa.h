/* Axivity AX3/AX6 .cwa data (../shared/reference/ble.md §8.2): pure decoding of the 1024-byte
 * header and of the 512-byte blocks, and a resampler that lays the samples of consecutive
 * blocks on the time line their timestamps record and interpolates them onto the grid of
 * the nominal sample rate. No I/O, no clock, no allocation: the file reader
 * (drivers/file_cwa.c) and a live USB driver copying blocks from a docked device share it.
 *
 * Times here are the device's clock: its wall time (set from the PC that configured it), as
 * seconds since 1970-01-01 without a zone. Placing them in UTC is the caller's business. */
#ifndef ENGAGED_CWA_H
#define ENGAGED_CWA_H

#include <stddef.h>
#include <stdint.h>

#define CWA_HEADER_SIZE 1024
#define CWA_BLOCK_SIZE 512
#define CWA_BLOCK_SAMPLES_MAX 120 /* packed 3-axis format: 480 bytes / 4 */
#define CWA_HZ_MIN 6.25           /* rate codes outside 6.25..3200 Hz are refused */
#define CWA_HZ_MAX 3200.0

/* The header block ("MD"). */
struct cwa_header {
    uint8_t hardware;        /* 0x00, 0xFF, 0x17: AX3; 0x64: AX6 */
    uint32_t device_id;      /* low 16 bits | upper 16 bits << 16 (upper 0xFFFF read as 0) */
    uint32_t session_id;
    uint32_t logging_start;  /* packed times as recorded: 0 = always, 0xFFFFFFFF = never */
    uint32_t logging_end;
    uint8_t sensor_config;   /* 0x00/0xFF accelerometer only, else gyro range in the low nibble */
    uint8_t rate_code;
    double hz;               /* from rate_code; 0 if outside CWA_HZ_MIN..CWA_HZ_MAX */
    int range_g;             /* ±g from rate_code */
    uint8_t firmware;
    char annotation[449];    /* URL-encoded name=value text, trailing 0x20/0x00/0xFF removed;
                              * bytes outside printable ASCII replaced by '?' */
};

/* Parses the first CWA_HEADER_SIZE bytes of a file (n may be larger). 0, or -EINVAL with
 * *why (static) when b is not a CWA header ("MD", length 1020). A rate code outside the
 * supported rates is not an error here (hz = 0): the data blocks carry their own. */
int cwa_header_parse(const uint8_t *b, size_t n, struct cwa_header *h, const char **why);

enum cwa_kind {
    CWA_KIND_DATA,   /* "AX" with packet length 508 */
    CWA_KIND_HEADER, /* "MD" with packet length 1020: a header (a second recording appended) */
    CWA_KIND_ERASED, /* all 0x00 or all 0xFF: unwritten flash, no data */
    CWA_KIND_OTHER,  /* anything else: another block type, or garbage */
};
enum cwa_kind cwa_block_kind(const uint8_t b[CWA_BLOCK_SIZE]);

/* The 16-bit sum of the block's 256 little-endian words: 0 for an intact block. */
uint16_t cwa_block_sum(const uint8_t b[CWA_BLOCK_SIZE]);

/* Hz of a rate code (3200 / 2^(15 - (code & 15))), or 0 outside CWA_HZ_MIN..CWA_HZ_MAX. */
double cwa_rate_hz(uint8_t code);

/* A packed timestamp (YYYYYYMM MMDDDDDh hhhhmmmm mmssssss, year + 2000) as seconds since
 * 1970 on the device clock. 0, or -EINVAL for 0 (unknown) or an impossible date or time. */
int cwa_time_unpack(uint32_t packed, int64_t *secs);

/* A decoded data block. */
struct cwa_block {
    uint32_t session_id;
    uint32_t sequence;       /* 0-based, +1 per block of a recording */
    int64_t time_s;          /* the block's whole-second timestamp (device clock) */
    double fraction;         /* fraction of a second of the timestamp (0 if the block has none) */
    int offset;              /* timestampOffset: sample index the whole second belongs to */
    uint8_t rate_code;
    double hz;               /* nominal rate from rate_code */
    int range_g;
    uint8_t format;          /* numAxesBPS: 0x30 packed 3-axis, 0x32 int16 3-axis, 0x62 int16
                              * gyro + accel (AX6) */
    int n;                   /* samples in the block */
    uint16_t light;          /* raw light sensor value (10 bits) */
    double temperature_c;    /* v * 75 / 256 - 50 */
    double battery_v;        /* (b + 512) * 6000 / 1024 / 1000 */
    uint8_t events;          /* event flags (bit 0: logging resumed) */
    float g[CWA_BLOCK_SAMPLES_MAX][3]; /* acceleration x, y, z in g (AX6 gyro not kept) */
};

/* Decodes a data block: the checksum first, then every field. Returns 0, or with *why set
 * to a static reason: -EBADMSG (checksum mismatch: the block is damaged), -EINVAL (not an
 * "AX" block, or a field out of range: no timestamp, impossible date, rate code, sample
 * count above the format's capacity, timestampOffset beyond a second of samples outside the
 * block), -ENOTSUP (a sample format other than the three above). */
int cwa_block_decode(const uint8_t b[CWA_BLOCK_SIZE], struct cwa_block *out, const char **why);

/* Samples (3 axes) unpacked from a block whose checksum and fields are known to be good:
 * the hot loop of cwa_block_decode, exposed for the benchmark. */
void cwa_unpack_packed(const uint8_t *p, int n, float (*g)[3]);

/* ---- Resampling a recording onto its nominal rate ----
 *
 * A segment is a run of blocks of one recording (same session, rate and format) with
 * consecutive sequence numbers and consistent timestamps. Each block anchors one instant:
 * its whole-second time at sample index timestampOffset (with a fraction of a second f, the
 * instant time + f at index timestampOffset + f * hz, as the format defines the fraction).
 * Between anchors the sample times are interpolated linearly; before the first and after the
 * last the nearest pair's rate continues (the nominal rate if the segment has one anchor).
 * The output is the signal at the grid instants k / hz (k whole, device clock), linearly
 * interpolated between the two raw samples around each instant, from the first instant at
 * or after the segment's first sample to the last at or before its last sample: what GGIR
 * does with AX3 data. Memory is fixed whatever the recording's length. */
#define CWA_RING 8192    /* raw samples held: over 2 s at 3200 Hz */
#define CWA_ANCHORS 64

struct cwa_anchor {
    double x; /* raw sample index in the segment */
    double t; /* seconds after the segment's origin */
};

struct cwa_stream {
    int active;              /* a segment is open */
    uint32_t session_id, next_sequence;
    uint8_t rate_code, format;
    double hz;
    int64_t origin_s;        /* device-clock second the segment's times count from (a
                              * multiple of 4, so that origin_s * hz is whole) */
    int64_t raw_n;           /* raw samples received in the segment */
    int64_t raw_lo;          /* the oldest still held */
    int n_anc;
    int started;             /* j is set */
    int64_t j;               /* next grid instant, in periods after origin_s */
    uint64_t blocks;         /* blocks added to the segment */
    struct cwa_anchor anc[CWA_ANCHORS];
    float raw[CWA_RING][3];
};

/* Closes any segment (its unread samples are dropped: take them with flush first). */
void cwa_stream_reset(struct cwa_stream *s);
/* 1 if b can continue the open segment: same session, rate code and format, the next
 * sequence number, a timestamp consistent with the segment's last one (at most 5 % + 2
 * samples away from the nominal rate's count between them, a rate within half to twice the
 * nominal one, never backwards) and room in the buffers; 0 if it must start a new segment
 * (or if none is open). */
int cwa_stream_continues(const struct cwa_stream *s, const struct cwa_block *b);
/* Adds b to the open segment (b must continue it) or, with none open, starts one with b. */
void cwa_stream_add(struct cwa_stream *s, const struct cwa_block *b);
/* Takes up to max samples on the grid, in order, into out. Without flush only the samples
 * the anchors received so far determine are given; with flush (the segment has ended) the
 * rest up to its last raw sample. Returns the count; *index is the grid index of out[0]
 * (device-clock time index / hz s since 1970). Consecutive calls continue the grid
 * without a gap within one segment. */
size_t cwa_stream_take(struct cwa_stream *s, int flush, float (*out)[3], size_t max,
                       int64_t *index);

#endif
