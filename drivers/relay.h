/* The engaged relay service (docs/relay-profile.md): a phone app streams its spec §3 event
 * records to the hub, the hub writes back where to resume and what it has stored, and sends
 * nudges to the phone. Pure code shared by the hub's driver, the phone simulator and the tests:
 * fragmentation (relay_tx), reassembly with the sequencing and resume rules (relay_rx), and the
 * small messages of the other characteristics. No I/O, no clock, no allocation, no globals.
 *
 * The framing does not depend on ATT: a fragment is one notification or write value over BLE,
 * and one envelope over a USB accessory pipe (docs/relay-profile.md §USB). */
#ifndef ENGAGED_RELAY_H
#define ENGAGED_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "drivers/decode.h"
#include "pipeline/event.h"

#define RELAY_UUID_SERVICE "6d690001-2c0b-401d-b49a-d6d98f9afb6b"
#define RELAY_UUID_RECORDS "6d690002-2c0b-401d-b49a-d6d98f9afb6b" /* notify: phone -> hub */
#define RELAY_UUID_RESUME "6d690003-2c0b-401d-b49a-d6d98f9afb6b"  /* write, read: hub -> phone */
#define RELAY_UUID_STATUS "6d690004-2c0b-401d-b49a-d6d98f9afb6b"  /* read, notify, write: control */
#define RELAY_UUID_NUDGES "6d690005-2c0b-401d-b49a-d6d98f9afb6b"  /* write: hub -> phone */

#define RELAY_VERSION 1
#define RELAY_RECORD_MAX 4096  /* bytes of one record (a JSON line without its newline) */
#define RELAY_FRAG_MIN 20      /* ATT_MTU 23 - 3: every max_frag is at least this */
#define RELAY_FIRST_HDR 16     /* ctl, gen, seq u64, len u16, crc32 u32 */
#define RELAY_CONT_HDR 2       /* ctl, index */
#define RELAY_FRAGS_MAX 256    /* fragments of one record: index 0 (first) .. 255 */
#define RELAY_SEQ_MAX INT64_MAX

/* Fragment control byte */
#define RELAY_CTL_FIRST 0x80
#define RELAY_CTL_LAST 0x40
#define RELAY_CTL_START 0x20   /* first record the phone sends after a RESUME */
#define RELAY_CTL_RESERVED 0x10
#define RELAY_CTL_VERSION 0x0F

/* ---- Fragmentation (sender side: the phone for records, the hub for nudges) ---- */

/* Fragments a record of len bytes takes at max_frag bytes per fragment (every fragment but the
 * last is full); 0 if it would take more than RELAY_FRAGS_MAX, or len is 0 or above 65535, or
 * max_frag is below RELAY_FRAG_MIN. */
size_t relay_frag_count(size_t len, size_t max_frag);

struct relay_tx {
    const uint8_t *rec;  /* borrowed */
    size_t len, off, max_frag;
    int64_t seq;
    uint8_t gen;
    int start;
    unsigned index;
    uint32_t crc;
};

/* CRC-32 (IEEE 802.3, as zlib and java.util.zip.CRC32): crc = relay_crc32(0, p, n) for a whole
 * buffer, or chained over pieces. The first fragment carries it over its bytes 1..11 (gen, seq,
 * len) followed by the whole record. */
uint32_t relay_crc32(uint32_t crc, const void *p, size_t n);

/* Prepares the fragments of record rec[0..len) (borrowed until the last fragment is taken).
 * gen is the generation of the RESUME being answered (0 for nudges), start marks the first
 * record after that RESUME. -EINVAL for seq < 0, -EMSGSIZE when relay_frag_count is 0. */
int relay_tx_start(struct relay_tx *tx, uint8_t gen, int start, int64_t seq, const void *rec,
                   size_t len, size_t max_frag);
/* Writes the next fragment into out (cap >= tx->max_frag bytes); returns its length, 0 when
 * the record is done, -ENOBUFS if cap is too small. */
int relay_tx_next(struct relay_tx *tx, uint8_t *out, size_t cap);

/* ---- Reassembly and sequencing (receiver side) ---- */

enum relay_mode {
    RELAY_RX_RECORDS = 0, /* the hub: generations, START, consecutive seqs, resume */
    RELAY_RX_PLAIN,       /* the phone receiving nudges: reassembly only */
};

struct relay_rx_stats {
    uint64_t fragments;    /* fed */
    uint64_t records;      /* returned as RELAY_RECORD */
    uint64_t bytes;        /* of those records */
    uint64_t errors;       /* fragments or records refused (reason in why) */
    uint64_t stale;        /* fragments of an earlier generation, ignored */
    uint64_t dropped;      /* fragments ignored after an error, until the next RESUME */
    uint64_t duplicates;   /* complete records below the expected seq, ignored */
    uint64_t oversized;    /* records above RELAY_RECORD_MAX, consumed without their data */
    uint64_t gaps;         /* START records that skipped seqs the phone no longer had */
    uint64_t gap_records;  /* seqs so skipped */
    uint64_t aborted;      /* partial records cut off by a RESUME */
    uint64_t resumes;      /* RESUME messages made */
};

struct relay_rx {
    enum relay_mode mode;
    size_t max_frag;
    /* partial record */
    int state;
    uint8_t pgen;
    int pstart;
    int64_t pseq;
    size_t plen, got;
    unsigned next_index;
    uint32_t pcrc, crc;   /* declared, and running over what arrived */
    /* sequencing (RELAY_RX_RECORDS) */
    uint8_t gen;          /* of the last RESUME; 0 before the first */
    int synced;           /* the START record of gen arrived */
    int broken;           /* an error since the last RESUME: ignore until the next */
    int have_floor;
    int64_t floor;        /* the seq the last RESUME carried */
    uint64_t next;        /* expected seq once synced */
    struct relay_rx_stats st;
    char why[DEC_WHY_MAX];
    uint8_t buf[RELAY_RECORD_MAX];
};

/* A complete record. data is borrowed from the relay_rx until its next feed or resume. */
struct relay_frame {
    int64_t seq;
    const uint8_t *data;  /* NULL for RELAY_OVERSIZED */
    size_t len;           /* bytes, or the declared length for RELAY_OVERSIZED */
    int64_t gap;          /* seqs seq-gap .. seq-1 were skipped by the phone (START only) */
};

enum {
    RELAY_NONE = 0,       /* fragment taken (or ignored, see stats); no record yet */
    RELAY_RECORD = 1,     /* *out holds a complete record, in sequence */
    RELAY_OVERSIZED = 2,  /* a record above RELAY_RECORD_MAX was consumed: its seq is used up,
                           * its content refused (count it as a rejected record) */
};

/* max_frag: the largest fragment the peer may send (ATT_MTU - 3 over BLE), >= RELAY_FRAG_MIN.
 * Records mode starts with every fragment stale until relay_rx_resume. */
int relay_rx_init(struct relay_rx *rx, enum relay_mode mode, size_t max_frag);

/* Feeds one fragment. Returns RELAY_NONE, RELAY_RECORD or RELAY_OVERSIZED, or -EBADMSG for a
 * refused fragment or record (reason in rx->why, counted in errors). In records mode an error
 * drops the partial record, sets rx->broken and makes every later fragment count as dropped
 * until the next relay_rx_resume: the caller then writes a RESUME (relay_rx_need_resume). */
int relay_rx_feed(struct relay_rx *rx, const uint8_t *frag, size_t len, struct relay_frame *out);

/* 1 when the stream needs a RESUME: an error since the last one, or none written yet. */
int relay_rx_need_resume(const struct relay_rx *rx);

/* ---- Resume characteristic (hub -> phone) ---- */

enum { RELAY_OP_RESUME = 0x01, RELAY_OP_ACK = 0x02 };
#define RELAY_RESUME_LEN 15
#define RELAY_ACK_LEN 11
#define RELAY_FLAG_HAVE_SEQ 0x01

struct relay_resume {
    int op;              /* RELAY_OP_RESUME or RELAY_OP_ACK */
    uint8_t gen;         /* 1..255 */
    int have_seq;        /* ACK: always 1 */
    int64_t seq;         /* RESUME: send records above it; ACK: stored up to it */
    uint16_t max_frag;   /* RESUME only: largest fragment the hub takes, >= RELAY_FRAG_MIN */
    uint16_t window;     /* RESUME only: records the phone may send beyond the last ACK, >= 1 */
};

/* Starts a new generation of the stream after a (re)connection or an error: drops the partial
 * record, and writes into out (cap >= RELAY_RESUME_LEN) the RESUME the hub then writes to the
 * phone. Returns its length or -EINVAL.
 * The resume point (have_stored, stored_seq) is the last seq of this source that is durably
 * stored, or durably recorded as refused (the store's position for the source), never one
 * merely received: records received but not yet committed are sent again and dropped by the
 * daemon's (source, seq) dedupe, so a hub that dies before committing loses nothing. */
int relay_rx_resume(struct relay_rx *rx, int have_stored, int64_t stored_seq, uint16_t max_frag,
                    uint16_t window, uint8_t *out, size_t cap);

/* An ACK of generation gen: records up to seq are durably stored. Returns RELAY_ACK_LEN or
 * -EINVAL (cap too small, seq < 0). */
int relay_ack_encode(uint8_t gen, int64_t seq, uint8_t *out, size_t cap);
int relay_resume_encode(const struct relay_resume *m, uint8_t *out, size_t cap);
int relay_resume_decode(const uint8_t *buf, size_t len, struct relay_resume *m, char *why);

/* Phone side of a RESUME: which of its records to send. The phone holds the unacknowledged
 * records seqs oldest..newest (have_records), and has assigned seqs up to last_assigned
 * (have_assigned; it persists this across restarts). */
struct relay_plan {
    int send;            /* 1 if there is something to send */
    int64_t first;       /* first seq to send (the START record) */
    int64_t free_upto;   /* records up to this seq may be freed (have_free) */
    int have_free;
    int renumber;        /* the hub is ahead of the phone's numbering (reinstall, wipe): */
    int64_t renumber_to; /* renumber the records from oldest on as renumber_to, +1, ... and
                          * assign new seqs after them */
};
int relay_plan_resume(const struct relay_resume *m, int have_records, int64_t oldest,
                      int64_t newest, int have_assigned, int64_t last_assigned,
                      struct relay_plan *plan);

/* ---- Status / control characteristic ---- */

#define RELAY_STATUS_LEN 18
#define RELAY_STATUS_HAVE_NEWEST 0x01
#define RELAY_STATUS_PAUSED 0x02
#define RELAY_STATUS_OUTBOX_FULL 0x04

/* Read or notified by the phone. */
struct relay_status {
    unsigned version;    /* RELAY_VERSION */
    unsigned flags;      /* RELAY_STATUS_* */
    int64_t newest;      /* last seq assigned (HAVE_NEWEST) */
    uint32_t pending;    /* records not yet acknowledged */
    uint32_t dropped;    /* records the phone discarded unsent, since install */
};
int relay_status_encode(const struct relay_status *s, uint8_t *out, size_t cap);
int relay_status_decode(const uint8_t *buf, size_t len, struct relay_status *s, char *why);

/* Written by the hub to the status characteristic: one byte. */
enum { RELAY_CTL_STATUS = 0x01, RELAY_CTL_PAUSE = 0x02, RELAY_CTL_CONTINUE = 0x03 };
int relay_control_decode(const uint8_t *buf, size_t len, int *ret_op, char *why);

/* ---- Nudges (hub -> phone), carried in fragments like records (gen 0, seq = the hub's
 * delivery number for this phone) ---- */

#define RELAY_NUDGE_VERSION 1
#define RELAY_NUDGE_MAX (18 + 1 + EV_ID_MAX + 1 + EV_NAME_MAX + 1 + EV_NAME_MAX)

enum { RELAY_PRIO_LOW = 0, RELAY_PRIO_NORMAL = 1, RELAY_PRIO_HIGH = 2 };

struct relay_nudge {
    unsigned priority;                 /* RELAY_PRIO_* */
    int64_t ts;                        /* decision time, UTC ms */
    int64_t expires;                   /* UTC ms after which not to show it; 0 = never */
    char participant[EV_ID_MAX + 1];   /* [A-Za-z0-9_-]{1,64} */
    char id[EV_NAME_MAX + 1];          /* the nudge id its nudge_ack events name */
    char tmpl[EV_NAME_MAX + 1];        /* message template key (the rule's `message`) */
};
/* Returns the encoded length or -EINVAL (a field out of range) / -ENOBUFS. */
int relay_nudge_encode(const struct relay_nudge *n, uint8_t *out, size_t cap);
int relay_nudge_decode(const uint8_t *buf, size_t len, struct relay_nudge *n, char *why);

/* ---- Records as events ---- */

/* Parses a record (a spec §3 JSON line) into *ev and checks it against the stream: the line's
 * seq equals the frame's, its type is one a phone sends (ev_is_phone), and its participant and
 * source equal the expected ones (when not NULL). Returns 0, -ENOENT for an unknown type (to be
 * counted as skipped, like ev_parse_json), or -EINVAL with the reason in why (DEC_WHY_MAX). */
int relay_record_event(const struct relay_frame *f, const char *participant, const char *source,
                       struct event *ev, char *why);

#endif
