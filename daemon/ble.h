/* The daemon's BLE sources: every `[source NAME] driver = ble` section becomes one device that
 * the daemon connects to, discovers (drivers/ble_gatt.h, with the attribute cache), subscribes
 * to and turns into events (drivers/decode.h), reconnecting with exponential backoff when the
 * link fails. docs/ble.md ("The daemon's BLE source") is the user reference.
 *
 * Events take the same durable path as ingested ones: they are batched, submitted to the store
 * writer, and handed to the pipeline (through the host's push function) only after the
 * writer's reply says they are committed, in commit order. Each source numbers its events with
 * `seq` continuing from the store's position for the source, so seq only ever grows, across
 * restarts too.
 *
 * All devices share one epoll set and one timerfd, both inside the one fd the daemon's loop
 * polls, however many devices there are. Single-threaded: everything runs on the daemon's
 * loop thread. Files: ble.c (the manager: loop glue, batches, status), ble_dev.c (one
 * device's connection), ble_prof.c (its profiles: setup, values to events), ble_relay.c (the
 * engaged relay service: a phone's own records, RESUME/ACK, nudges back), ble_link.c
 * (transports), ble_util.c (backoff, clock estimate, status JSON)
 * and conf_ble.c (the transport syntax, shared with check-config): the last two are pure and
 * unit-tested in tests/unit/test_ble_source.c. */
#ifndef ENGAGED_DAEMON_BLE_H
#define ENGAGED_DAEMON_BLE_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/ble_record.h"
#include "drivers/relay.h"
#include "pipeline/event.h"

struct conf;
struct store_writer;
struct publisher;

/* ---- transport (`[source] transport`) ---------------------------------------------- */

enum ble_link_kind { BLE_LINK_L2CAP = 0, BLE_LINK_SIM };
enum ble_addr_type { BLE_ADDR_PUBLIC = 0, BLE_ADDR_RANDOM };
/* BT_SECURITY levels (the kernel's numbering) */
enum ble_security { BLE_SEC_LOW = 1, BLE_SEC_MEDIUM = 2, BLE_SEC_HIGH = 3, BLE_SEC_FIPS = 4 };

#define BLE_SIM_PATH_MAX 107 /* sun_path without its NUL */

struct ble_transport {
    enum ble_link_kind kind;
    enum ble_addr_type addr_type;   /* l2cap */
    enum ble_security security;     /* l2cap */
    char path[BLE_SIM_PATH_MAX + 1]; /* sim */
};

/* Parses a transport value: "" and "l2cap" (public address, security low), "l2cap:OPT[,OPT]"
 * with OPT one of public, random, low, medium, high, fips (one address type and one level at
 * most), or "sim:/ABSOLUTE/PATH" (a tools/blesim socket). Returns 0, or -EINVAL with a reason
 * in why (cap bytes, may be NULL). */
int ble_transport_parse(const char *s, struct ble_transport *ret, char *why, size_t cap);

/* ---- scanning (`[source] hci`, `irk`; docs/ble-scan.md) ----------------------------- */

enum ble_hci_kind { BLE_HCI_AUTO = 0, BLE_HCI_DEV, BLE_HCI_SIM };
#define BLE_HCI_DEV_MAX 9999 /* the kernel numbers adapters below HCI_MAX_ID (10000) */

struct ble_hci {
    enum ble_hci_kind kind;
    int dev;                          /* BLE_HCI_DEV: N of hciN; else -1 */
    char path[BLE_SIM_PATH_MAX + 1];  /* BLE_HCI_SIM: a fake controller's socket */
};
/* Parses an hci value: "" and "auto" (the default adapter), "hciN" (N 0..9999, as the kernel
 * names adapters: no sign, no leading zero) or "sim:/ABSOLUTE/PATH" (at most 107 bytes).
 * Returns 0, or -EINVAL with a reason in why (cap bytes, may be NULL). */
int ble_hci_parse(const char *s, struct ble_hci *ret, char *why, size_t cap);

/* `[daemon] ble_mgmt`: where the bonding-key keeper (daemon/ble_keys.h) finds the kernel's
 * management socket. */
enum ble_mgmt_kind { BLE_MGMT_AUTO = 0, BLE_MGMT_OFF, BLE_MGMT_SIM };
struct ble_mgmt_where {
    enum ble_mgmt_kind kind;
    char path[BLE_SIM_PATH_MAX + 1];  /* BLE_MGMT_SIM: a fake kernel's socket */
};
/* Parses a ble_mgmt value: "" and "auto" (the kernel's, when any source uses l2cap), "off"
 * (keys not kept by engaged) or "sim:/ABSOLUTE/PATH" (a fake kernel on a Unix SEQPACKET
 * socket, for tests: the keeper then runs whatever the transports). 0, or -EINVAL with a
 * reason in why (cap bytes, may be NULL). */
int ble_mgmt_parse(const char *s, struct ble_mgmt_where *ret, char *why, size_t cap);

#define BLE_IRK_SIZE 16
/* Parses an irk value: exactly 32 hex digits (either case), least significant octet first as
 * BlueZ writes `[IdentityResolvingKey] Key=` in /var/lib/bluetooth/ADAPTER/DEVICE/info, not
 * all zero. ret gets the key most significant octet first (drivers/ble_rpa.h). Returns 0, or
 * -EINVAL with a reason in why that never quotes the value (a secret). */
int ble_irk_parse(const char *s, uint8_t ret[BLE_IRK_SIZE], char *why, size_t cap);

/* ---- reconnect backoff -------------------------------------------------------------- */

#define BLE_BACKOFF_MIN_MS 1000      /* first delay */
#define BLE_BACKOFF_MAX_MS 300000    /* the doubling stops at 5 min */
#define BLE_BACKOFF_JITTER_PCT 20    /* each delay is scaled by a factor in [0.8, 1.2) */
#define BLE_BACKOFF_RESET_MS 60000   /* streaming this long starts the schedule again */

/* Delays 1 s, 2 s, 4 s, ... 300 s, 300 s, ... each scaled by its own jitter factor from a
 * PRNG (splitmix64) seeded per source, so a run is reproducible and many devices that dropped
 * at the same moment do not retry in step. */
struct ble_backoff {
    uint64_t rng;
    unsigned failures;   /* delays handed out since the last reset */
};
/* The seed of a source: the study seed mixed with the source name. */
uint64_t ble_backoff_seed(uint64_t study_seed, const char *source);
void ble_backoff_init(struct ble_backoff *b, uint64_t seed);
/* The next delay in ms (and counts it). */
int64_t ble_backoff_next(struct ble_backoff *b);
/* Back to 1 s for the next failure (the jitter sequence goes on). */
void ble_backoff_reset(struct ble_backoff *b);
/* The delay after a failure that ended a time up (streaming, scanning) of up_for_ms (< 0:
 * it was not up): after BLE_BACKOFF_RESET_MS up the schedule starts again, so a link or
 * scanner that drops right after coming up is not retried every second. */
int64_t ble_backoff_failed(struct ble_backoff *b, int64_t up_for_ms);

/* ---- device clock (Current Time Service) ------------------------------------------- */

#define BLE_CLOCK_SAMPLES 32
#define BLE_CLOCK_DRIFT_SPAN_MS 60000 /* drift is reported once the samples span this */

/* Samples of (hub time, device time) from Current Time reads, for the device clock's offset
 * and its drift against the hub clock (a least-squares slope). */
struct ble_clock {
    size_t n, next;
    int64_t hub_ms[BLE_CLOCK_SAMPLES];
    int64_t dev_ms[BLE_CLOCK_SAMPLES];
    int64_t last_offset_ms;
};
void ble_clock_reset(struct ble_clock *c);
/* A device clock reading dev_ms (UTC) taken at hub time hub_ms (UTC). A reading more than 2 s
 * off the current line (the clock was set) restarts the estimate. */
void ble_clock_add(struct ble_clock *c, int64_t hub_ms, int64_t dev_ms);
/* Device minus hub, of the latest sample: 0, or -ENODATA without samples. */
int ble_clock_offset(const struct ble_clock *c, int64_t *ret_ms);
/* Device clock rate error in parts per million (positive: the device runs fast): 0, or
 * -ENODATA until the samples span BLE_CLOCK_DRIFT_SPAN_MS. */
int ble_clock_drift(const struct ble_clock *c, double *ret_ppm);

#define BLE_CLOCK_SET_MIN_MS 3600000 /* a link writes the device clock at most this often */
/* Whether a Current Time reading is off: more than tolerance_ms from the hub's clock
 * (offset_ms = device minus hub), or the device does not know the date (known = 0). */
int ble_clock_off(int known, int64_t offset_ms, int64_t tolerance_ms);
struct tz_zone;
struct dec_lti;
/* The Local Time Information a device worn in zone z shows at UTC utc_ms: the zone's standard
 * offset (the least of its offsets over the year around utc_ms, every 30 days) and the DST on
 * top of it.
 * Where that split does not fit Local Time Information (DST other than 0, 30, 60 or 120 min),
 * the whole offset as the zone with no DST. -ERANGE when even that does not fit (an offset
 * that is not whole quarter-hours, or outside -12..+14 h). */
int ble_lti_for_zone(const struct tz_zone *z, int64_t utc_ms, struct dec_lti *out);
/* The rule a link's device clock and zone writes share: none yet on this link (last_ns 0),
 * the last one at least BLE_CLOCK_SET_MIN_MS before now_ns, or the zone moved since it. */
int ble_link_write_due(int64_t last_ns, int64_t now_ns, int zone_moved);
/* Whether a Current Time reading calls for writing the device clock: it is off
 * (ble_clock_off); and (ble_link_write_due) the link's last write (at last_ns, 0: none yet) was at least
 * BLE_CLOCK_SET_MIN_MS before now_ns, so that a device another time source keeps setting (a
 * phone in another zone, say) is not fought over at every reading; or the zone the clock is
 * written in has moved since that write (zone_moved: the wearer travelled, or DST began or
 * ended), which is the hub's own reason to set it again. */
int ble_clock_set_due(int known, int64_t offset_ms, int64_t tolerance_ms, int64_t last_ns,
                      int64_t now_ns, int zone_moved);

/* ---- status/<source> ---------------------------------------------------------------- */

enum ble_state {
    BLE_ST_CONNECTING = 0, /* opening the link */
    BLE_ST_DISCOVERING,    /* linked: MTU, discovery, reads and subscriptions */
    BLE_ST_STREAMING,      /* subscribed; values arrive */
    BLE_ST_BACKOFF,        /* waiting to reconnect after a failed attempt or a lost link */
    BLE_ST_ERROR,          /* waiting too, after a failure on the hub's side or a device
                            * without a supported profile: not expected to clear by itself */
    _BLE_ST_MAX
};
const char *ble_state_name(enum ble_state s);

/* Profiles a device was found to have (bits of ble_status.profiles). */
enum {
    BLE_PROF_HR = 1 << 0,
    BLE_PROF_BATTERY = 1 << 1,
    BLE_PROF_CTS = 1 << 2,
    BLE_PROF_DIS = 1 << 3,
    BLE_PROF_MOTION = 1 << 4,
    BLE_PROF_RELAY = 1 << 5,   /* the engaged relay service (docs/relay-profile.md) */
};

#define BLE_TEXT_MAX 128

/* A phone's relay service as seen by the hub (ble_status.relay). */
struct ble_relay_info {
    uint64_t records, refused, skipped;   /* complete records; refused; of types not taken */
    uint64_t acks, resumes;               /* ACKs and RESUMEs written */
    uint64_t left;                        /* records not stored then (the store was behind or
                                             failed): left with the phone, asked for again */
    uint64_t held_back;                   /* received while that RESUME was due: not queued */
    uint64_t pauses;                      /* PAUSEs written (the store was behind) */
    struct relay_rx_stats rx;             /* the reassembly's counters */
    uint64_t nudges_sent;                 /* nudges written to the phone (first time) */
    uint64_t nudges_resent;               /* writes again without nudge_ack */
    uint64_t nudges_confirmed;            /* named by a nudge_ack: not written again */
    uint64_t nudges_dropped;              /* never written: no room, cannot be encoded */
    uint64_t nudges_expired;              /* not confirmed within a day: given up */
    uint64_t nudges_unconfirmed;          /* given up unconfirmed to make room */
    uint64_t nudges_restored;             /* read from the store at start (not confirmed) */
    size_t nudges_waiting;                /* not yet written or not yet confirmed */
    int have_phone;                       /* the phone's Status has been read */
    struct relay_status phone;
    int64_t phone_at_ms;                  /* when (UTC ms) */
};

/* The scanner a scanning source waits on (ble_status.scan; docs/ble-scan.md). */
enum ble_scan_state {
    BLE_SCAN_STARTING = 0, /* opened: the scan commands are out */
    BLE_SCAN_UP,           /* scanning: the source waits for its advertisements */
    BLE_SCAN_RETRYING,     /* failed: the source connects directly until the next attempt works */
    _BLE_SCAN_MAX
};
const char *ble_scan_state_name(enum ble_scan_state s);

struct ble_scan_info {
    enum ble_scan_state state;
    int64_t since_ms;            /* UTC ms of its last state change */
    const char *error;           /* its last failure; NULL once it is up */
    int64_t next_attempt_ms;     /* retrying: UTC ms of its next attempt */
    uint64_t failures;           /* since the daemon started */
    const char *rpa;             /* the resolvable private address the device last advertised
                                  * with (`irk`), NULL if none */
};

/* One source's status as published. Strings are borrowed for the call; *_set say whether an
 * optional value is known (else it is published as null). */
struct ble_status {
    const char *source, *participant, *address, *transport;
    enum ble_state state;
    int64_t since_ms;            /* UTC ms of the last state change */
    int64_t now_ms;              /* when this status was made */
    const char *error;           /* NULL: none; the last failure otherwise */
    int64_t next_attempt_ms;     /* backoff/error: UTC ms of the next attempt */
    uint64_t attempts, connects, reconnects, failures;
    uint64_t events, no_contact, malformed, lost;
    int64_t last_notification_ms; /* 0: none yet */
    int battery_set;
    unsigned battery;
    unsigned mtu;                /* 0: no link */
    int cached;                  /* the database came from the attribute cache */
    uint64_t security_raises;    /* link security raises since the daemon started */
    unsigned profiles;           /* BLE_PROF_* */
    int offset_set;
    int64_t clock_offset_ms;
    int drift_set;
    double clock_drift_ppm;
    size_t clock_samples;
    uint64_t clock_sets, clock_refusals; /* device clock writes acknowledged, refused */
    uint64_t clock_ignored;      /* acknowledged writes the next reading showed not taken */
    uint64_t clock_zone_sets;    /* Local Time Information writes the device took */
    int zone_set;
    int64_t clock_zone_ms;       /* the device's own zone (Local Time Information), if set */
    int64_t clock_last_set_ms;   /* UTC ms of the last acknowledged one, 0: none */
    const char *manufacturer, *model, *serial, *firmware; /* NULL: not read */
    int has_relay;                        /* a relay phone: relay is set */
    struct ble_relay_info relay;
    int has_record;                       /* `record`: record is set */
    struct ble_rec_stats record;
    int has_scan;                         /* the source scans: scan is set */
    struct ble_scan_info scan;
};

/* The status as one JSON object (fixed key order, compact), malloc'd; NULL on allocation
 * failure. docs/ble.md lists the fields. */
char *ble_status_json(const struct ble_status *st);

/* ---- the manager -------------------------------------------------------------------- */

/* Called once per newly stored event, in commit order (ev borrowed; received: hub UTC ms at
 * receipt, as stored with it; json, json_len: the event's canonical JSON as stored, borrowed,
 * or NULL). */
typedef void (*ble_push_fn)(void *ud, const struct event *ev, int64_t received_ms,
                            const char *json, size_t json_len);

struct ble_host {
    struct store_writer *sw;     /* borrowed; must outlive the manager */
    struct publisher *pub;       /* borrowed, may be NULL; not used after ble_stop() */
    ble_push_fn push;
    /* The participant's zone at UTC ms t (travel: `tz` events), or NULL for the configured
     * one; may be NULL. Device clocks without a zone of their own are read and set in it. */
    const struct tz_zone *(*zone)(void *ud, const char *participant, int64_t t);
    void *ud;
    struct ble_recset *records;  /* borrowed, may be NULL: each device claims its capture */
};

/* Store request tokens of the BLE sources have this bit set (ingest's never do). */
#define BLE_TOKEN_FLAG (UINT64_C(1) << 62)

struct ble;

/* Sets up every ble source of cf (copied: cf may go after the call) and starts connecting.
 * Reads the sources' positions from the store (cf->store.path). *ret is NULL when cf has no
 * ble source. 0 or -errno (logged). */
int ble_new(const struct conf *cf, const struct ble_host *h, struct ble **ret);
/* Accepts NULL; returns NULL. Events not yet stored are lost (call ble_stop first). */
struct ble *ble_free(struct ble *b);

/* The one fd the loop polls for input (POLLIN): an epoll set of the devices' sockets and the
 * BLE timerfd. When it is readable, call ble_dispatch. */
int ble_fd(const struct ble *b);
void ble_dispatch(struct ble *b);
/* A store reply: 1 if the token was ours (the stored events went to the push function), 0 if
 * not. */
int ble_on_store_reply(struct ble *b, uint64_t token, int status_all, const uint8_t *per_event,
                       size_t n);
/* Shutdown: closes every link, submits the events still waiting (waiting up to 1 s for room
 * in the writer's queue) and stops publishing and pushing: what is stored from here on is
 * applied by the next start's recovery. Accepts NULL. */
void ble_stop(struct ble *b);

/* A nudge decision of the pipeline (run.c's record sink): a `send` to the participant goes to
 * the phones (relay sources) of that participant over the relay service's Nudges
 * characteristic. Accepts NULL b. */
struct nudge_decision;
void ble_on_nudge(struct ble *b, const char *participant, const struct nudge_decision *n);

/* Source `source`'s status as status/<source> publishes it (strings borrowed from b until
 * its next dispatch; `time` is the last dispatch's): 0, or -ENOENT (not a ble source of b, or
 * b NULL). */
int ble_source_status(struct ble *b, const char *source, struct ble_status *ret);

struct ble_stats {
    uint64_t events, stored, duplicate, lost, batches, retries;
    size_t devices, streaming;
    /* the bonding-key keeper (docs/ble.md "Bonding keys") */
    const char *keys_state;           /* "kept", "retrying", "failed", "off" (ble_mgmt = off),
                                       * "none" (no source uses l2cap) */
    size_t keys_ltks, keys_irks;      /* keys held */
    uint64_t keys_controllers;        /* controllers set up by the open session */
    const char *keys_error;           /* why the mgmt socket is not open, "" if it is */
    int64_t keys_next_attempt_ms;     /* retrying: UTC of the next try, else 0 */
};
void ble_get_stats(const struct ble *b, struct ble_stats *ret);

#endif
