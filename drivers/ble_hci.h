/* LE scanning through an HCI socket (issue 6; ../shared/reference/ble.md §3.5, docs/ble-scan.md):
 *
 * - the advertising-data (AD) parser (drivers/ble_adv.c): `[len][type][data]` structures;
 * - the HCI codec: LE Set Scan Parameters / Enable commands, Command Complete / Status, LE Meta
 *   advertising reports, legacy (subevent 0x02) and extended (0x0D);
 * - a scanner driven by an already-open fd whose every read returns one H4 packet (type byte
 *   first): a raw HCI socket in the daemon, one end of a socketpair(AF_UNIX, SOCK_SEQPACKET)
 *   in tests. It sends one command at a time, waits for its completion with a timeout, turns
 *   reports into callbacks after an address / service-UUID filter and duplicate suppression;
 * - hci_dev_open(): the one function that needs libbluetooth, opening the real socket.
 *
 * Everything but hci_dev_open() is pure: no Bluetooth header, no clock read (time is passed
 * in, CLOCK_MONOTONIC ns), no global state, never logs. Errors are -errno; every length the
 * peer sends is checked against the packet. Written from the Core Specification's layouts as
 * the reference describes them. */
#ifndef ENGAGED_BLE_HCI_H
#define ENGAGED_BLE_HCI_H

#include <stddef.h>
#include <stdint.h>

#include "drivers/ble_att.h"

/* ---- advertising data (ble_adv.c) ---------------------------------------------------- */

/* The longest AD the parser takes: 1650 bytes, the most an extended advertising set may
 * carry (Core Vol 4 Part E §7.8.54, reassembled). A legacy report holds at most 31
 * (HCI_ADV_LEGACY_MAX), one extended report at most 229 (HCI_EXT_REPORT_DATA_MAX). */
#define ADV_DATA_MAX 1650
#define ADV_MAX_UUIDS 16        /* service UUIDs kept from all lists together */
#define ADV_NAME_MAX 248        /* the longest device name (Core Vol 3 Part C §12.1) */
#define ADV_MAX_SVC_DATA 4
#define ADV_MAX_MFR 4

/* AD types (Assigned Numbers §2.3). */
enum {
    ADV_T_FLAGS = 0x01,
    ADV_T_UUID16_SOME = 0x02,
    ADV_T_UUID16_ALL = 0x03,
    ADV_T_UUID32_SOME = 0x04,
    ADV_T_UUID32_ALL = 0x05,
    ADV_T_UUID128_SOME = 0x06,
    ADV_T_UUID128_ALL = 0x07,
    ADV_T_NAME_SHORT = 0x08,
    ADV_T_NAME_COMPLETE = 0x09,
    ADV_T_TX_POWER = 0x0A,
    ADV_T_SVC_DATA16 = 0x16,
    ADV_T_SVC_DATA32 = 0x20,
    ADV_T_SVC_DATA128 = 0x21,
    ADV_T_MFR_DATA = 0xFF,
};

/* Which optional fields of struct adv_data are set. */
enum {
    ADV_HAVE_FLAGS = 1 << 0,
    ADV_HAVE_TX_POWER = 1 << 1,
    ADV_HAVE_NAME = 1 << 2,
};

/* Service data and manufacturer data point into the parsed buffer (borrowed). */
struct adv_svc_data {
    struct att_uuid uuid;
    const uint8_t *data;
    size_t len;
};
struct adv_mfr_data {
    uint16_t company;
    const uint8_t *data;
    size_t len;
};

struct adv_data {
    unsigned have;              /* ADV_HAVE_* */
    uint8_t flags;              /* the first flags octet (later ones are reserved) */
    int8_t tx_power;            /* dBm */
    size_t n_uuids;             /* 16-, 32- and 128-bit lists, in order, expanded to 128 */
    struct att_uuid uuids[ADV_MAX_UUIDS];
    int uuids_complete;         /* some list was a "complete" one */
    char name[ADV_NAME_MAX + 1];/* NUL-terminated; control bytes replaced by '?' */
    int name_complete;          /* 0x09 (else a shortened 0x08 name) */
    size_t n_svc;
    struct adv_svc_data svc[ADV_MAX_SVC_DATA];
    size_t n_mfr;
    struct adv_mfr_data mfr[ADV_MAX_MFR];
    size_t n_structs;           /* structures read */
    size_t n_unknown;           /* of types not decoded above (kept nowhere, not an error) */
    size_t n_dropped;           /* UUIDs, service or manufacturer data beyond the arrays */
};

/* Parses len bytes of AD into *ad (cleared first). A zero length byte ends the data (the rest
 * is padding). Returns 0, or -EBADMSG for a structure running past the end or of a length
 * its type does not allow (a UUID list not a multiple of the UUID size, TX power not 1 byte,
 * flags or service/manufacturer data without their fixed part, a name above ADV_NAME_MAX),
 * or -EMSGSIZE for len > ADV_DATA_MAX; *why (may be NULL) then names the problem (static
 * text) and *ad holds the structures before the bad one. */
int adv_parse(const uint8_t *p, size_t len, struct adv_data *ad, const char **why);
/* 1 if ad names u in a service UUID list or as the UUID of service data, else 0. */
int adv_has_uuid(const struct adv_data *ad, const struct att_uuid *u);
/* A 32-bit UUID on the Bluetooth base (0xXXXXXXXX-0000-1000-8000-00805f9b34fb). */
struct att_uuid adv_uuid32(uint32_t v);

/* ---- addresses ------------------------------------------------------------------------ */

/* A device address in wire order (least significant byte first). */
struct hci_addr {
    uint8_t b[6];
};
/* Address types of reports (Core Vol 4 Part E §7.7.65.2). */
enum {
    HCI_ADDR_PUBLIC = 0x00,
    HCI_ADDR_RANDOM = 0x01,
    HCI_ADDR_PUBLIC_ID = 0x02,  /* resolved from an RPA: the identity is public */
    HCI_ADDR_RANDOM_ID = 0x03,  /* resolved: the identity is a static random address */
    HCI_ADDR_ANONYMOUS = 0xFF,  /* extended reports only: no address */
};
/* 1 for address types whose connection address type is random (1, 3), else 0. */
int hci_addr_is_random(uint8_t addr_type);
/* "C4:7C:8D:6A:2F:01" (most significant first) to wire order: 0 or -EINVAL. */
int hci_addr_parse(const char *s, struct hci_addr *a);
/* The text form; buf holds at least 18 bytes. Returns buf. */
char *hci_addr_str(const struct hci_addr *a, char *buf, size_t cap);

/* ---- HCI codec -------------------------------------------------------------------------- */

enum {
    HCI_H4_CMD = 0x01,
    HCI_H4_EVT = 0x04,
};
enum {
    HCI_OP_LE_SET_SCAN_PARAMS = 0x200B,
    HCI_OP_LE_SET_SCAN_ENABLE = 0x200C,
};
enum {
    HCI_EV_CMD_COMPLETE = 0x0E,
    HCI_EV_CMD_STATUS = 0x0F,
    HCI_EV_LE_META = 0x3E,
};
enum {
    HCI_LE_ADV_REPORT = 0x02,
    HCI_LE_EXT_ADV_REPORT = 0x0D,
};
/* Controller error codes named in messages (Core Vol 1 Part F). */
enum {
    HCI_ST_SUCCESS = 0x00,
    HCI_ST_UNKNOWN_COMMAND = 0x01,
    HCI_ST_COMMAND_DISALLOWED = 0x0C,
    HCI_ST_INVALID_PARAMS = 0x12,
};

#define HCI_EVENT_MAX (3 + 255)   /* H4 type, code, plen, parameters */
#define HCI_CMD_MAX (4 + 255)
#define HCI_ADV_LEGACY_MAX 31     /* AD bytes of a legacy report */
#define HCI_EXT_REPORT_DATA_MAX 229 /* AD bytes of one extended report (255 - 26) */
#define HCI_LEGACY_REPORT_MIN 10  /* evt_type, addr_type, addr[6], len, rssi */
#define HCI_EXT_REPORT_MIN 24     /* the fixed part of an extended report, before its data */
#define HCI_RSSI_UNKNOWN 127
#define HCI_TX_POWER_UNKNOWN 127

/* LE Set Scan Parameters: the values the reference §3.5 lists. interval and window are in
 * units of 0.625 ms, 0x0004..0x4000, window <= interval. */
struct hci_scan_params {
    uint8_t active;             /* 0 passive, 1 active (sends SCAN_REQ, gets SCAN_RSP) */
    uint16_t interval, window;
    uint8_t own_addr_type;      /* 0 public, 1 random */
    uint8_t filter_policy;      /* 0 accept all */
};
/* The H4 command packets: their length, or 0 when cap is too small or (parameters) the
 * values fail hci_scan_params_check. */
size_t hci_cmd_scan_params(uint8_t *buf, size_t cap, const struct hci_scan_params *p);
size_t hci_cmd_scan_enable(uint8_t *buf, size_t cap, int enable, int filter_dup);
/* 0, or -EINVAL with *why set when the controller would refuse p. */
int hci_scan_params_check(const struct hci_scan_params *p, const char **why);

/* One H4 event packet: code and parameters (borrowed from the packet). */
struct hci_event {
    uint8_t code;
    const uint8_t *params;
    size_t plen;
};
/* 0, -EPROTO for another H4 type (not an event), or -EBADMSG (with *why) when the packet is
 * shorter than its header or plen disagrees with its length. */
int hci_event_parse(const uint8_t *pkt, size_t len, struct hci_event *ev, const char **why);

/* Command Complete / Command Status, as far as a command's outcome goes. */
struct hci_cmd_result {
    uint16_t opcode;            /* 0x0000: only "the controller takes commands" */
    uint8_t status;             /* the command's status (Complete: its first return byte) */
    int complete;               /* 1 Command Complete, 0 Command Status */
};
/* 0, -ENOENT for another event, or -EBADMSG (*why) when it is too short. */
int hci_cmd_result_parse(const struct hci_event *ev, struct hci_cmd_result *r, const char **why);
/* "Command Disallowed" ...; "unknown" for codes without a name here. */
const char *hci_status_str(uint8_t status);
/* The -errno of a controller status: UNKNOWN_COMMAND -EOPNOTSUPP, COMMAND_DISALLOWED -EBUSY,
 * INVALID_PARAMS -EINVAL, others -EIO (0 for success). */
int hci_status_errno(uint8_t status);

/* What a report says of its advertisement, legacy and extended alike. */
enum {
    HCI_ADV_CONNECTABLE = 1 << 0,
    HCI_ADV_SCANNABLE = 1 << 1,
    HCI_ADV_DIRECTED = 1 << 2,
    HCI_ADV_SCAN_RSP = 1 << 3,
    HCI_ADV_LEGACY_PDU = 1 << 4,
};
/* Data status of an extended report (event type bits 5-6). */
enum {
    HCI_DATA_COMPLETE = 0,
    HCI_DATA_MORE = 1,          /* incomplete, more reports follow */
    HCI_DATA_TRUNCATED = 2,     /* incomplete, no more */
};

struct hci_adv_report {
    int extended;               /* from subevent 0x0D */
    uint16_t evt_type;          /* legacy: 0 ADV_IND .. 4 SCAN_RSP; extended: the bit field */
    unsigned props;             /* HCI_ADV_* from evt_type */
    uint8_t data_status;        /* HCI_DATA_*; legacy reports are complete */
    uint8_t addr_type;          /* HCI_ADDR_* */
    struct hci_addr addr;
    int8_t rssi;                /* dBm, HCI_RSSI_UNKNOWN if not available */
    int8_t tx_power;            /* extended only; HCI_TX_POWER_UNKNOWN otherwise */
    uint8_t primary_phy, secondary_phy, sid; /* extended only */
    uint16_t periodic_interval; /* extended only */
    const uint8_t *data;        /* the AD, borrowed from the packet */
    size_t len;
};
/* Called per report; a non-zero return stops the walk and is returned. */
typedef int (*hci_report_fn)(const struct hci_adv_report *r, void *ud);
/* The reports of an LE Meta event (subevent 0x02 or 0x0D). The whole event is checked before
 * the first report is delivered: every report's length against the event, 1..25 reports,
 * no bytes left over, legacy data at most 31 bytes. Returns 0 (or fn's non-zero value),
 * -ENOENT for another event or subevent, or -EBADMSG (*why) for a malformed one, in which
 * case no report is delivered. */
int hci_adv_reports_parse(const struct hci_event *ev, hci_report_fn fn, void *ud,
                          const char **why);

/* ---- the scanner ------------------------------------------------------------------------ */

#define HCI_CMD_TIMEOUT_NS (2 * INT64_C(1000000000)) /* the kernel's own HCI command timeout */
#define HCI_SCAN_DEDUPE_NS (10 * INT64_C(1000000000))
#define HCI_SCAN_DEDUPE_MAX 512    /* addresses remembered for duplicate suppression */
#define HCI_SCAN_FILTER_MAX 4096   /* addresses or UUIDs in a filter (CONF_MAX_SOURCES) */
#define HCI_SCAN_RX_BURST 64       /* packets read per hci_scan_on_readable() */

enum hci_scan_state {
    HCI_SCAN_IDLE = 0,          /* not started, stopped, or failed */
    HCI_SCAN_STARTING,          /* commands of start() out */
    HCI_SCAN_ON,                /* scanning: reports arrive */
    HCI_SCAN_STOPPING,          /* the disable is out */
};

/* One matching report: the raw report and its parsed AD (ad_err 0, or the parser's error with
 * ad_why; an extended fragment that is not the complete data is not parsed: ad_err -EAGAIN). */
struct hci_scan_result {
    struct hci_adv_report rep;
    const struct adv_data *ad;
    int ad_err;
    const char *ad_why;
    int irk;                        /* the address is a resolvable private address made with
                                     * opts.irks[irk] (drivers/ble_rpa.h); -1: not so */
};

struct hci_scan;
typedef void (*hci_scan_report_fn)(struct hci_scan *s, const struct hci_scan_result *r,
                                   void *ud);
/* start() or stop() finished: err 0, or -errno (status: the controller's code, 0 if the
 * failure was not its answer, e.g. -ETIMEDOUT). */
typedef void (*hci_scan_done_fn)(struct hci_scan *s, int starting, int err, uint8_t status,
                                 void *ud);

struct hci_scan_opts {
    struct hci_scan_params params;  /* all zero: passive, 0x0010/0x0010 (10 ms), public */
    int64_t cmd_timeout_ns;         /* 0: HCI_CMD_TIMEOUT_NS */
    int64_t dedupe_ns;              /* 0: HCI_SCAN_DEDUPE_NS; < 0: every report */
    /* The filter: a report matches when all three lists are empty, or its address is in
     * addrs, or it is a resolvable private address made with one of irks (Identity Resolving
     * Keys, most significant octet first), or its AD names one of uuids. Copied by
     * hci_scan_new (of irks, only libgcrypt's key schedules). */
    const struct hci_addr *addrs;
    size_t n_addrs;
    const uint8_t (*irks)[16];
    size_t n_irks;
    const struct att_uuid *uuids;
    size_t n_uuids;
    hci_scan_report_fn on_report;
    hci_scan_done_fn on_done;       /* may be NULL */
    void *user_data;
};

struct hci_scan_stats {
    uint64_t packets, events, reports, matched, suppressed, ignored, malformed, bad_ad;
    const char *last_malformed;     /* static text, NULL if none */
};

/* A scanner on fd (not owned, never closed here). NULL with errno EINVAL (bad parameters, a
 * filter longer than HCI_SCAN_FILTER_MAX, no on_report), ENOMEM, or ENOSYS/EIO (libgcrypt,
 * for irks). */
struct hci_scan *hci_scan_new(int fd, const struct hci_scan_opts *o);
/* Replaces the filter's Identity Resolving Keys with irks[0..n) (n 0 leaves none), e.g. with
 * one learnt while scanning. Takes effect from the next report; the scan itself goes on. 0,
 * or -EINVAL (n above HCI_SCAN_FILTER_MAX), -ENOMEM, -ENOSYS/-EIO (libgcrypt): the old keys
 * stay then. */
int hci_scan_set_irks(struct hci_scan *s, const uint8_t (*irks)[16], size_t n);
/* Sends nothing: call hci_scan_stop() first for a clean end. Accepts NULL; callbacks may call
 * it (the scanner goes when the outermost call returns). Returns NULL. */
struct hci_scan *hci_scan_free(struct hci_scan *s);
/* Scan disable (ignoring its status: scanning may be off, or left on by an earlier run,
 * which would make the parameters Command Disallowed), parameters, enable; on_done(starting
 * 1) once the enable is answered or a command failed. 0, -EALREADY unless idle, or -errno
 * of the write (on_done has then run with it and the scanner is idle). */
int hci_scan_start(struct hci_scan *s, int64_t now_ns);
/* Sends the scan disable (after the command out, if one is). 0 (on_done(starting 0) follows;
 * at once when idle), or -errno of the write. */
int hci_scan_stop(struct hci_scan *s, int64_t now_ns);
/* Reads up to HCI_SCAN_RX_BURST packets. 0, or -errno when the fd failed or the peer closed
 * it (-ECONNRESET): the scanner is then idle and a pending start/stop fails with it. */
int hci_scan_on_readable(struct hci_scan *s, int64_t now_ns);
/* A command unanswered for cmd_timeout_ns fails (-ETIMEDOUT) and the scanner goes idle. */
void hci_scan_on_timer(struct hci_scan *s, int64_t now_ns);
/* When hci_scan_on_timer is next needed: INT64_MAX for never. */
int64_t hci_scan_next_timeout(const struct hci_scan *s);
enum hci_scan_state hci_scan_get_state(const struct hci_scan *s);
const struct hci_scan_stats *hci_scan_get_stats(const struct hci_scan *s);
int hci_scan_fd(const struct hci_scan *s);
/* The last failure of start/stop/the fd worded for people ("controller refused LE Set Scan
 * Parameters: Command Disallowed (0x0c): ..."), "" if none. */
const char *hci_scan_strerror(const struct hci_scan *s);

/* ---- the real socket (libbluetooth) ----------------------------------------------------- */

/* What hci_dev_close() restores: the socket's filter before hci_dev_open() changed it. */
struct hci_dev_saved {
    uint8_t filter[16];
    int valid;
};
/* Opens the HCI device dev_id (-1: the default route, hci_get_route), non-blocking and
 * close-on-exec, with an HCI_FILTER passing only event packets Command Complete, Command
 * Status and LE Meta. Returns the fd, or -errno with why (cap bytes) worded for the log:
 * -EAFNOSUPPORT no Bluetooth in the kernel, -ENODEV no adapter, -EPROTONOSUPPORT built
 * without libbluetooth. */
int hci_dev_open(int dev_id, struct hci_dev_saved *saved, char *why, size_t cap);
/* Restores the saved filter and closes fd. Accepts fd < 0. */
void hci_dev_close(int fd, const struct hci_dev_saved *saved);

#endif
