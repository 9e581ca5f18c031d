/* btsnoop captures (../shared/reference/ble.md §6: Android HCI snoop logs, `btmon -w`): a pure
 * codec. Parses and encodes the file and record headers, converts timestamps, picks HCI ACL
 * data and events out of records of datalinks 1001 (unencapsulated HCI, H1), 1002 (HCI UART,
 * H4: the Android log) and 2001 (Linux monitor, btmon), and reassembles fragmented ACL packets
 * into L2CAP frames, bounded, keeping only ATT (CID 4) frames. No clock, no global state; the
 * only I/O is the optional FILE writer at the end, for recording ATT PDUs as they arrive.
 *
 * All header fields are big-endian; ACL and L2CAP headers are little-endian. Timestamps are
 * microseconds since 0000-01-01 00:00 UTC (nominal), the Unix epoch being
 * BTSNOOP_EPOCH_UNIX_US. Used by drivers/file_btsnoop.c (`engaged replay`) and
 * tests/fuzz/fuzz_btsnoop.c. */
#ifndef ENGAGED_BTSNOOP_H
#define ENGAGED_BTSNOOP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BTSNOOP_MAGIC "btsnoop\0"       /* 8 bytes, with the NUL */
#define BTSNOOP_MAGIC_LEN 8
#define BTSNOOP_HDR_LEN 16              /* magic, u32 version, u32 datalink */
#define BTSNOOP_REC_HDR_LEN 24
#define BTSNOOP_VERSION 1
#define BTSNOOP_LINK_H1 1001            /* unencapsulated HCI */
#define BTSNOOP_LINK_H4 1002            /* HCI UART: an H4 type byte before each packet */
#define BTSNOOP_LINK_MONITOR 2001       /* Linux monitor: flags = index << 16 | opcode */
#define BTSNOOP_EPOCH_UNIX_US INT64_C(0x00DCDDB30F2F8000) /* 1970-01-01 in btsnoop time */

/* Longest record accepted: an H4 byte, an ACL header and 65535 bytes of ACL data. A longer
 * included length is corruption: the reader cannot find the next record after it. */
#define BTSNOOP_REC_MAX (1 + 4 + 65535)

/* Record flags of datalinks 1001/1002. */
#define BTSNOOP_FLAG_RECEIVED 0x1       /* controller to host; clear: host to controller */
#define BTSNOOP_FLAG_CMD_EVT 0x2        /* command or event; clear: data */

/* H4 packet types. */
#define BTSNOOP_H4_CMD 0x01
#define BTSNOOP_H4_ACL 0x02
#define BTSNOOP_H4_EVT 0x04

/* Monitor opcodes used here. */
#define BTSNOOP_MON_EVENT 3
#define BTSNOOP_MON_ACL_TX 4
#define BTSNOOP_MON_ACL_RX 5

/* Directions: what the host sent, or what it received (from the controller, i.e. the peer). */
#define BTSNOOP_DIR_SENT 0
#define BTSNOOP_DIR_RECEIVED 1

#define BTSNOOP_ATT_CID 4
#define BTSNOOP_ATT_MAX 517             /* longest ATT PDU (the largest LE ATT_MTU) */
#define BTSNOOP_L2CAP_SLOTS 16          /* links with an incomplete frame at a time */

/* ---- file and record headers ---- */

/* The 16-byte file header: 0 with the datalink, -ENODATA for fewer than 16 bytes, -EINVAL
 * without the magic, -EPROTONOSUPPORT for a version other than 1 or a datalink other than
 * 1001, 1002 and 2001 (*ret_datalink is set all the same once the magic matched). */
int btsnoop_parse_header(const uint8_t *p, size_t n, uint32_t *ret_datalink);
void btsnoop_encode_header(uint8_t out[BTSNOOP_HDR_LEN], uint32_t datalink);

struct btsnoop_rec {
    uint32_t orig_len;     /* length of the packet on the wire */
    uint32_t incl_len;     /* bytes of it in the file, following the header */
    uint32_t flags;
    uint32_t drops;        /* cumulative drops */
    int64_t ts_us;         /* btsnoop time */
};
/* A 24-byte record header. 0, or -EINVAL when incl_len is above BTSNOOP_REC_MAX (why names
 * it; the rest of the file cannot be trusted), or -EMSGSIZE when incl_len is above orig_len
 * (that record is bad, the next one can be read). why: NULL or a buffer of 128 bytes. */
int btsnoop_parse_record(const uint8_t p[BTSNOOP_REC_HDR_LEN], struct btsnoop_rec *ret,
                         char *why);
void btsnoop_encode_record(uint8_t out[BTSNOOP_REC_HDR_LEN], const struct btsnoop_rec *r);

/* btsnoop time to Unix ms: (ts - BTSNOOP_EPOCH_UNIX_US) / 1000, rounded down. */
int64_t btsnoop_ts_to_unix_ms(int64_t ts_us);
/* Unix µs to btsnoop time. */
int64_t btsnoop_ts_from_unix_us(int64_t unix_us);

/* ---- HCI packets in a record ---- */

enum btsnoop_pkt_type {
    BTSNOOP_PKT_OTHER = 0, /* commands, SCO, ISO, monitor notes: nothing for the reader */
    BTSNOOP_PKT_ACL,
    BTSNOOP_PKT_EVENT,
};

struct btsnoop_pkt {
    enum btsnoop_pkt_type type;
    int dir;               /* BTSNOOP_DIR_* */
    uint16_t index;        /* controller index (monitor datalink), else 0 */
    /* ACL: the header fields and the data after it (length checked against the header) */
    uint16_t handle;       /* 12 bits */
    uint8_t pb, bc;        /* packet boundary and broadcast flags */
    /* event: code and parameters (length checked) */
    uint8_t evt;
    const uint8_t *data;   /* borrowed from the record */
    size_t len;
};

/* Classifies a record's data (incl_len bytes at p) of the given datalink and flags. 0 with
 * *ret filled (type OTHER for what is not ACL data or an event), or -EINVAL for an ACL packet
 * or event whose header is short or whose length field disagrees with the record (why). */
int btsnoop_packet(uint32_t datalink, uint32_t flags, const uint8_t *p, size_t n,
                   struct btsnoop_pkt *ret, char *why);

/* ---- L2CAP reassembly ---- */

struct btsnoop_l2cap_slot {
    int used;
    uint16_t index, handle;
    int dir;
    int discard;           /* another CID, or too long: counted through, not kept */
    size_t have, need;     /* bytes so far (with the 4-byte L2CAP header); need 0 = unknown */
    uint64_t stamp;        /* for evicting the stalest slot */
    uint8_t buf[4 + BTSNOOP_ATT_MAX];
};

/* Caller-owned, zeroed to start. */
struct btsnoop_l2cap {
    struct btsnoop_l2cap_slot slot[BTSNOOP_L2CAP_SLOTS];
    uint64_t clock;
    uint8_t out[BTSNOOP_ATT_MAX];  /* the last complete frame's payload */
};

/* A complete ATT (CID 4) frame. */
struct btsnoop_frame {
    uint16_t index, handle;
    int dir;
    const uint8_t *att;    /* borrowed from the reassembler until its next call */
    size_t len;
};

/* Feeds one ACL packet (type BTSNOOP_PKT_ACL). Returns 1 with *ret when it completes an ATT
 * frame, 0 when it completes nothing or a frame of another CID, or a negative errno with
 * why for a bad fragment (a continuation without a start; an L2CAP length smaller than the
 * fragments carry; an ATT frame longer than BTSNOOP_ATT_MAX): the frame it belongs to is
 * dropped. *ret_dropped (never NULL) is set to a static reason when the call also dropped an
 * earlier incomplete frame (cut by a new start, or evicted for lack of slots), else NULL. */
int btsnoop_l2cap_push(struct btsnoop_l2cap *l, const struct btsnoop_pkt *acl,
                       struct btsnoop_frame *ret, const char **ret_dropped, char *why);
/* Forgets the incomplete frames of a link (it disconnected). */
void btsnoop_l2cap_forget(struct btsnoop_l2cap *l, uint16_t index, uint16_t handle);

/* ---- the replay reader (drivers/file_btsnoop.c) ---- */

/* What a btsnoop reader skipped or made, for tests and summaries. */
struct btsnoop_reader_stats {
    uint64_t records, acl, att;  /* records read whole, ACL packets, ATT PDUs */
    uint64_t events;             /* events made */
    uint64_t bad;                /* READ_BADs */
    uint64_t unmapped;           /* values on handles the discovery did not map */
    uint64_t undecoded;          /* values of characteristics no decoder takes */
    uint64_t malformed;          /* values a decoder refused */
    uint64_t no_data;            /* values carrying nothing (no skin contact, 0 bpm) */
    uint64_t map_full;           /* handles beyond the per-connection map */
    uint64_t conns_evicted;      /* connections forgotten for lack of room */
    uint64_t changed;            /* Service Changed values: their range's mapping forgotten */
};
struct reader;
/* The counters of a reader opened on a btsnoop file; NULL for any other reader. */
const struct btsnoop_reader_stats *btsnoop_reader_stats(const struct reader *r);

/* ---- writing ---- */

/* Encodes one ATT PDU sent or received on ACL handle as an H4 (datalink 1002) or H1 (1001)
 * capture: the L2CAP header and the PDU split into ACL packets of at most frag bytes of ACL
 * data each (0: one packet), each a complete record (header + data) appended to out.
 * Returns the bytes written, or -ENOSPC when cap is too small, -EINVAL for a PDU above
 * BTSNOOP_ATT_MAX, a handle above 0x0EFF or another datalink. */
long btsnoop_encode_att(uint8_t *out, size_t cap, uint32_t datalink, uint16_t handle, int dir,
                        int64_t unix_us, const uint8_t *att, size_t len, size_t frag);

/* A recorder of ATT PDUs as they arrive: the daemon's record of a device's traffic, readable
 * by `engaged replay` as any capture. */
struct btsnoop_writer {
    FILE *f;               /* borrowed */
    uint32_t datalink;
};
/* Writes the file header. 0 or -EIO. */
int btsnoop_writer_open(struct btsnoop_writer *w, FILE *f, uint32_t datalink);
/* One raw record (data as the datalink has it, e.g. with its H4 byte). 0, -EIO or -EINVAL
 * (longer than BTSNOOP_REC_MAX). */
int btsnoop_write_record(struct btsnoop_writer *w, uint32_t flags, int64_t unix_us,
                         const uint8_t *data, size_t len);
/* One ATT PDU as btsnoop_encode_att makes it. 0, -EIO or -EINVAL. */
int btsnoop_write_att(struct btsnoop_writer *w, uint16_t handle, int dir, int64_t unix_us,
                      const uint8_t *att, size_t len, size_t frag);

#endif
