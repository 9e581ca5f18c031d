/* Internal to the daemon's BLE source (daemon/ble.c, ble_dev.c, ble_prof.c, ble_link.c). */
#ifndef ENGAGED_DAEMON_BLE_INT_H
#define ENGAGED_DAEMON_BLE_INT_H

#include <stdint.h>

#include "daemon/ble.h"
#include "daemon/conf.h"
#include "drivers/ble_gatt.h"
#include "drivers/decode.h"

#define BLE_CONNECT_TIMEOUT_MS 10000  /* link setup (an L2CAP connect waits for the device) */
#define BLE_SETUP_TIMEOUT_MS 60000    /* link up to streaming: discovery, reads, CCCD writes */
#define BLE_REDISCOVER_MAX 3          /* Service Changed on one link without reaching streaming
                                       * in between: after this many, the link is dropped */
#define BLE_CTS_PERIOD_MS 60000       /* Current Time re-read while streaming (drift) */
#define BLE_ACCEL_HZ 10.0             /* InfiniTime raw motion: one sample per ~100 ms */
#define BLE_ACCEL_BLOCK 100           /* samples per accel event */
#define BLE_ACCEL_TOLERANCE_MS 500

/* ---- links (ble_link.c) ---- */

/* Opens a link to the device: 0 connected, 1 connecting (wait for POLLOUT, then
 * ble_link_finish), or -errno. *ret_fd is non-blocking and close-on-exec. */
int ble_link_open(const struct ble_transport *t, const char *address, int *ret_fd);
/* A simulated peer's socket at path (a fake controller for `hci = sim:`, a fake kernel for
 * `ble_mgmt = sim:`): the fd, or -errno with "PATH: reason" in why. */
int ble_link_open_sim_path(const char *path, char *why, size_t cap);
/* The outcome of a background connect: 0 or -errno. */
int ble_link_finish(int fd);
/* A failure worded for the log and the status topic (static string or strerror). */
const char *ble_link_strerror(const struct ble_transport *t, int err);
/* The security level a new link has: the configured one (l2cap), LOW for the simulator. */
int ble_link_security(const struct ble_transport *t);
/* Raises the link on fd to level (BLE_SEC_*): BT_SECURITY on an L2CAP socket, which makes the
 * kernel pair or encrypt (sends wait meanwhile); the simulator's control packet. 0 or
 * -errno. */
int ble_link_secure(const struct ble_transport *t, int fd, int level);

/* ---- one device (ble_dev.c) ---- */

struct ble;
struct ble_dev;
struct ble_nudge_restore;

/* user_data of a Device Information read: which of ble_dev.dis[] it fills */
struct ble_dis_ctx {
    struct ble_dev *d;
    int field;
};

struct ble_dev {
    struct ble *mgr;
    char name[CONF_ID_SIZE];
    char participant[CONF_ID_SIZE];
    char tz[CONF_TZ_SIZE];        /* the participant's zone ("" = none configured) */
    char address[32];             /* as configured: XX:XX:XX:XX:XX:XX; names the device
                                   * everywhere (logs, status, attribute cache) */
    char link_address[32];        /* what a connect names: address, or the resolvable private
                                   * address it last advertised with (ble_scan.c, `irk`) */
    char transport_text[CONF_STR_SIZE];
    char cache_key[GATT_DEVICE_MAX + 1];
    struct ble_transport tr;

    enum ble_state state;
    int64_t since_ms;             /* UTC of the last state change */
    int fd;
    int connecting;               /* waiting for the background connect */
    uint32_t ep_events;           /* what epoll watches for fd (0: not registered) */
    struct att *att;
    struct gatt *gatt;
    int dead;                     /* the link failed inside a callback: -errno, handled after */
    const char *dead_why;
    int dead_local;               /* ... for a reason that makes the state error */
    int changed;                  /* Service Changed arrived: discover again after the bearer */
    uint16_t changed_start, changed_end;
    int rediscoveries;            /* on this link since it last reached streaming */
    int64_t deadline_ns;          /* connect/setup timeout, backoff end (INT64_MAX: none) */
    int64_t next_cts_ns;          /* streaming: next Current Time read (INT64_MAX: none) */
    int64_t dl_ns;                /* ble_dev_deadline() as of the last ble_dev_deadline_cached */
    int dl_fresh;                 /* dl_ns holds: cleared by ble_dev_touch */
    int64_t next_attempt_ms;
    int64_t streaming_ns;         /* mono time streaming began (backoff reset) */
    struct ble_backoff bo;
    char error[BLE_TEXT_MAX];     /* last failure, "" = none */
    int last_err;                 /* its -errno, to log a repeated error once */

    int64_t seq;                  /* last seq given to an event of this source (the store's
                                   * position at start) */
    int have_pos;                 /* the store had a seq for this source at start */
    int64_t relay_from;           /* a relay phone's resume point at start: seq, or below the
                                   * first of its last records missing from the store */
    int64_t nudge_resend_ms;      /* `nudge_resend`: a relay nudge without nudge_ack again */
    int set_clock;                /* `set_clock` */
    int64_t clock_tolerance_ms;   /* `clock_tolerance` */
    struct ble_relay *relay;      /* the relay service, once seen (ble_relay.c) */
    struct ble_rec *rec;          /* `record`: the capture of the link's traffic, or NULL */
    int rec_stop_told;            /* status/<source> has told that recording stopped */
    struct ble_nudge_restore *nudge_restore; /* stored nudge decisions to queue once the relay
                                              * is seen (ble_relay.c) */
    size_t n_nudge_restore;

    /* setup */
    int pending;                  /* reads and subscriptions not yet answered */
    int subscribed;               /* subscriptions that succeeded */
    unsigned profiles;
    uint16_t h_cts, h_lti;
    int64_t cts_sent_ns;          /* a Current Time read is out since then (0: none) */
    int cts_writable;             /* Current Time has the Write property */
    int64_t clock_set_ns;         /* mono time of this link's last write (0: none yet); no
                                   * other write for an hour, so none while one is out,
                                   * unless the zone moves */
    int64_t clock_set_zone_ms;    /* the zone offset that write was made in */
    int clock_check;              /* a write was acknowledged on this link: the next reading
                                   * says whether the device took it */
    int lti_known;
    struct dec_lti lti;           /* the device's Local Time Information */
    int lti_writable;             /* Local Time Information has the Write property */
    int lti_busy;                 /* a zone write, or the read that checks it, is out */
    int lti_given_up;             /* this link refused or kept a zone write: none again on it */
    int64_t lti_set_ns;           /* mono time of this link's last zone write (0: none yet) */
    struct dec_lti lti_want;      /* what that write asked for */
    struct ble_dis_ctx dis_ctx[4];

    /* decoder state, kept across reconnections */
    struct dec_steps_state steps;
    struct dec_accel_block *accel; /* allocated for devices with raw motion */
    struct ble_clock clock;

    /* status */
    uint64_t attempts, connects, failures, events, no_contact, malformed, lost;
    uint64_t security_raises;     /* raises of a link's security level the transport took */
    uint64_t clock_sets, clock_refusals; /* Current Time writes acknowledged, refused */
    uint64_t clock_ignored;       /* acknowledged, and the next reading still off */
    uint64_t clock_zone_sets;     /* Local Time Information writes the device took */
    int64_t clock_last_set_ms;    /* UTC of the last acknowledged one (0: none) */
    int64_t last_note_ms;
    int64_t malformed_log_ms;
    int battery_set;
    unsigned battery;
    int cached;
    char dis[4][DEC_DIS_MAX + 1]; /* manufacturer, model, serial, firmware ("" = not read) */
};

/* Starts the first connection attempt. */
void ble_dev_start(struct ble_dev *d);
/* epoll reported events for the device's fd. */
void ble_dev_on_io(struct ble_dev *d, uint32_t events);
/* The device's deadline (or its bearer's) has passed. */
void ble_dev_on_timer(struct ble_dev *d);
/* When the device next needs ble_dev_on_timer (INT64_MAX: never). */
int64_t ble_dev_deadline(const struct ble_dev *d);
/* The same, kept from the last call until the device is touched: the manager asks it for
 * every device twice a cycle (arm, timers), and with 100 devices computing each one's (its
 * bearer's, relay's and recorder's timers) was a visible share of a cycle. Every function
 * here, in ble_relay.c and in ble_scan.c that can move one of those deadlines calls
 * ble_dev_touch(d) first; builds with assertions check the cached value against a fresh one
 * on every use, so a path that forgets fails the tests. */
int64_t ble_dev_deadline_cached(struct ble_dev *d);
static inline void ble_dev_touch(struct ble_dev *d) { d->dl_fresh = 0; }
/* Closes the link without scheduling a reconnect (shutdown). */
void ble_dev_close(struct ble_dev *d);
/* Fills st from the device (strings borrowed from d). */
void ble_dev_status(const struct ble_dev *d, struct ble_status *st);
/* From inside a bearer callback: the link must go, for err (why: static text, NULL for
 * strerror). local: the device cannot be used as it is (state error, not backoff). The first
 * call counts; the device acts on it when the bearer returns. */
void ble_dev_mark_dead(struct ble_dev *d, int err, const char *why, int local);
/* The setup is answered: streaming from now. */
void ble_dev_streaming(struct ble_dev *d);

/* ---- its profiles (ble_prof.c) ---- */

/* The GATT client's ready callback (user_data: the device): starts the setup. */
void ble_prof_ready(struct gatt *g, int err, void *ud);
/* Reads Current Time again (drift), unless a read is out. */
void ble_prof_read_clock(struct ble_dev *d);
/* Stores the accel block being filled (the link goes). */
void ble_prof_flush(struct ble_dev *d);

/* Subscribes to c's notifications (or indications) with fn, as part of the setup. */
void ble_prof_subscribe(struct ble_dev *d, const struct gatt_chrc *c, gatt_notify_fn fn);
/* Outside bearer callbacks, after writing on the device's link: acts on a failure, watches
 * for POLLOUT. */
void ble_dev_after(struct ble_dev *d);

/* ---- the engaged relay service (ble_relay.c) ---- */

struct ble_relay;
struct nudge_decision;
/* During setup: 1 if db has the relay service (Records and Status subscribed), else 0. */
int ble_relay_setup(struct ble_dev *d, const struct gatt_db *db);
/* Streaming began: writes the RESUME, then the nudges waiting. */
void ble_relay_streaming(struct ble_dev *d);
/* The store's outcome for one of the source's events (processed: stored or a duplicate). */
void ble_relay_stored(struct ble_dev *d, int64_t seq, int processed);
/* A record of the source that will not be stored now (the store is behind or failed it):
 * acknowledgements stop short of it, later records wait with the phone, and a RESUME asks
 * for it again once the store has room. row_error: the store failed that row alone (the
 * transaction went through); after BLE_RELAY_ROW_TRIES such sends it is refused, and kept
 * in the refused table with body (its event's stored form; NULL when not known). */
void ble_relay_left(struct ble_dev *d, int64_t seq, int row_error, const char *body,
                    size_t len);
/* The store is behind (on) or caught up (off): writes PAUSE or CONTINUE to the phone. */
void ble_relay_pause(struct ble_dev *d, int on);
/* After a store reply: writes the ACK if the resume point moved, or the RESUME for records
 * left with the phone. */
void ble_relay_after_reply(struct ble_dev *d);
/* Queues a nudge decision for the phone (sent at once if it is streaming). */
void ble_relay_nudge(struct ble_dev *d, const struct nudge_decision *n, const char *participant);
/* Idle timeout: a RESUME when a partial record makes no progress. */
int64_t ble_relay_deadline(const struct ble_dev *d);
void ble_relay_on_timer(struct ble_dev *d);
/* At start: the send decisions of the last 24 h to d's participant that no nudge_ack of d
 * named are read from the store, to be queued when the phone's relay service is found. */
struct store_reader;
int ble_relay_restore(struct ble_dev *d, struct store_reader *rd, int64_t now_ms);
/* The relay's counters and the phone's last Status, for the source's status. */
void ble_relay_info(const struct ble_dev *d, struct ble_relay_info *ret);
void ble_relay_free(struct ble_dev *d);

/* ---- the manager, as devices see it (ble.c) ---- */

struct ble_clocks {
    int64_t mono_ns;  /* CLOCK_MONOTONIC at the start of this dispatch */
    int64_t utc_ms;   /* CLOCK_REALTIME at the same moment */
};
const struct ble_clocks *ble_now(const struct ble *b);
struct gatt_cache *ble_cache(struct ble *b);
/* 1 while the store is behind: relay phones are paused, records left with them wait. */
int ble_store_behind(const struct ble *b);
/* Adds or changes (events != 0) or removes (events == 0) the device's fd in the epoll set. */
int ble_watch(struct ble *b, struct ble_dev *d, uint32_t events);
/* Queues an event of the device for the store (copies it, accel samples included; gives it
 * the source's next seq). received_ms: hub UTC at receipt. */
void ble_emit(struct ble *b, struct ble_dev *d, struct event *ev, int64_t received_ms);
/* The same for an event that has its own seq (a relayed record): 0, or -ENOBUFS when it was
 * not queued (counted lost). */
int ble_emit_own(struct ble *b, struct ble_dev *d, struct event *ev, int64_t received_ms);
/* A relayed record the hub refused (seq: the phone's; why and rec copied: daemon/refusal.h)
 * goes to the store's refused table in order with the source's events, so that its seq is
 * processed once committed, as an event's (ble_relay_stored). 0, or -ENOBUFS when it was not
 * queued (the batch is full). */
int ble_refuse_own(struct ble *b, struct ble_dev *d, int64_t seq, const char *why,
                   const void *rec, size_t len, int64_t received_ms);
/* The device's state or status changed: publish status/<source> now. */
void ble_publish_status(struct ble *b, struct ble_dev *d);
/* The zone of the device's participant at utc_ms: the pipeline's (configured, switched by
 * `tz` events), else the configured zone; NULL if unknown. */
const struct tz_zone *ble_participant_zone(struct ble *b, const struct ble_dev *d,
                                           int64_t utc_ms);
/* Its offset (ms, local minus UTC) at utc_ms; 0 if unknown. */
int64_t ble_participant_zone_ms(struct ble *b, const struct ble_dev *d, int64_t utc_ms);

/* ---- LE scanning (ble_scan.c, docs/ble-scan.md) ---- */

struct ble_scan;
struct ble_keys;
/* One scanner per HCI device the scanning sources of cf name (`connect`, `hci`; `irk`s for
 * their resolvable private addresses, or else those keys holds from their bonding: may be
 * NULL), its fd in the loop's epoll set `outer` (data.fd). NULL when no source scans (or out
 * of memory: all direct). */
struct ble_scan *ble_scan_new(struct ble *b, const struct conf *cf, struct ble_dev *devs,
                              size_t n_dev, int outer, const struct ble_keys *keys);
/* The keeper kept a new Identity Resolving Key: sources without an `irk` of their own whose
 * key keys now holds take it, and their running scans resolve with it from the next report.
 * Accepts NULL sc. */
void ble_scan_learn_irk(struct ble_scan *sc, const struct ble_keys *keys);
/* mgmt's address type (MGMT_ADDR_LE_*) of device d's identity address: its l2cap type;
 * public for a simulated link, which has none. */
uint8_t ble_mgmt_addr_type(const struct ble_dev *d);
/* Starts the devices (those waiting for an advertisement are only marked so) and opens the
 * scanners. A scanner that cannot scan is logged once and retried on the backoff schedule;
 * meanwhile its sources connect directly. */
void ble_scan_start_devices(struct ble_scan *sc);
/* 1 while device d waits for its advertisement: the manager neither arms its deadline nor
 * calls its timer. Accepts NULL sc. */
int ble_scan_holds(const struct ble_scan *sc, const struct ble_dev *d);
/* epoll reported fd: 1 if it was a scanner's (handled), else 0. */
int ble_scan_on_fd(struct ble_scan *sc, int fd);
/* Command timeouts and retries. */
int64_t ble_scan_deadline(const struct ble_scan *sc);
void ble_scan_on_timer(struct ble_scan *sc);
/* Sets st->has_scan and st->scan for device d (strings borrowed from sc and d). Accepts NULL
 * sc. */
void ble_scan_status(const struct ble_scan *sc, const struct ble_dev *d, struct ble_status *st);
/* Shutdown: disables the scans (not waiting for the answer) and frees. Accepts NULL. */
struct ble_scan *ble_scan_free(struct ble_scan *sc);

#endif
