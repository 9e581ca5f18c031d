/* A BLE peripheral simulator: a GATT server serving a table-driven attribute database over
 * an ATT socket (one PDU per read: a socketpair(AF_UNIX, SOCK_SEQPACKET) end in-process, or
 * a connection accepted by tools/blesim on a Unix SEQPACKET socket path).
 *
 * The database is built with blesim_add_service / _chrc / _desc (handles are given in order)
 * or with the stock profiles (ble_sim_profiles.c: GAP/GATT, Heart Rate, Battery, Current Time,
 * Device Information, InfiniTime Motion). Periodic streams notify or indicate a
 * characteristic while the client has enabled its CCCD. Attributes may need an encrypted or
 * authenticated link, which the client raises with a control packet (blesim_ctl_security).
 * Faults can be injected: requests never answered, truncated responses, an error for a
 * handle, a disconnect after N PDUs, security raises refused.
 *
 * Like the client it reads no clock: the owner calls blesim_on_readable() when the fd is
 * readable and blesim_on_timer() at blesim_next_timeout(), passing CLOCK_MONOTONIC time.
 * Output that does not fit the socket is dropped and counted (a simulator, not a bearer).
 * Single-threaded; never logs (blesim_dump prints the database on request). */
#ifndef ENGAGED_BLE_SIM_H
#define ENGAGED_BLE_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "drivers/ble_att.h"

#define BLESIM_MAX_ATTRS 512
#define BLESIM_MAX_STREAMS 16
#define BLESIM_MAX_OWNED 8

enum {
    BLESIM_PERM_READ = 0x01,
    BLESIM_PERM_WRITE = 0x02,
};

struct blesim;

struct blesim_faults {
    uint32_t silent_after;     /* answer only the first N requests, none after (0: off) */
    uint8_t silent_opcode;     /* never answer requests with this opcode (0: off) */
    uint8_t malformed_opcode;  /* answer requests with this opcode with a truncated Error
                                * Response (2 bytes) (0: off) */
    uint16_t error_handle;     /* requests naming this handle (or starting their range at it)
                                * get error_code */
    uint8_t error_code;        /* 0: Unlikely Error 0x0E */
    uint32_t disconnect_after; /* shut the link down on receiving the Nth PDU (0: off) */
    uint8_t refuse_security;   /* ignore the client's security raises: the link keeps its
                                * level, as when pairing fails */
};

struct blesim_stats {
    uint64_t rx_pdus, tx_pdus, requests, unanswered;
    uint64_t notifications, indications, confirmations, writes;
    uint64_t dropped;          /* PDUs that did not fit the socket */
    uint64_t skipped;          /* stream ticks skipped: an indication awaited confirmation */
    uint64_t discovery;        /* requests only discovery makes: Read By Group Type, Find
                                * Information, Read By Type for includes and characteristics */
    uint64_t security_raises;  /* raises of the link's level the client asked for and got */
};

/* Computes a value into buf (cap bytes): returns its length (<= cap) or -errno. count is the
 * number of earlier calls for a stream, 0 for a read refresh. */
typedef int (*blesim_gen_fn)(struct blesim *s, uint16_t handle, uint64_t count, int64_t now_ns,
                             uint8_t *buf, size_t cap, void *user_data);
/* An attribute was written (after it was stored); CCCD writes included. */
typedef void (*blesim_write_fn)(struct blesim *s, uint16_t handle, const uint8_t *value,
                                size_t len, void *user_data);

/* A server on fd (borrowed, made non-blocking) with server Rx MTU mtu (0: 517). */
struct blesim *blesim_new(int fd, uint16_t mtu, int64_t now_ns);
struct blesim *blesim_free(struct blesim *s);

/* ---- database (handles are assigned in call order, from 0x0001) ---- */

/* Service declaration: its handle, or -ENOSPC (BLESIM_MAX_ATTRS) / -ENOMEM. */
int blesim_add_service(struct blesim *s, const struct att_uuid *uuid, int primary);
/* Include declaration of the service declared at service_handle. Handle or -errno. */
int blesim_add_include(struct blesim *s, uint16_t service_handle);
/* Characteristic declaration + value (+ a CCCD when props has notify or indicate): returns
 * the value handle. Readable if props has READ, writable if WRITE or WRITE_NO_RSP. value may
 * be NULL with len 0. -EINVAL without a service, -EMSGSIZE past ATT_MAX_VALUE_LEN. */
int blesim_add_chrc(struct blesim *s, const struct att_uuid *uuid, uint8_t props,
                    const void *value, size_t len);
/* Descriptor after the last characteristic: its handle. perm: BLESIM_PERM_*. */
int blesim_add_desc(struct blesim *s, const struct att_uuid *uuid, uint8_t perm,
                    const void *value, size_t len);
/* Hooks of one attribute: refresh computes the value before a read serves it; on_write sees
 * what the client wrote. Either may be NULL. 0 or -ENOENT. */
int blesim_set_attr_hooks(struct blesim *s, uint16_t handle, blesim_gen_fn refresh,
                          blesim_write_fn on_write, void *user_data);
/* Called for every write of any attribute (for services added from outside, e.g. relay). */
void blesim_set_write_hook(struct blesim *s, blesim_write_fn fn, void *user_data);
int blesim_set_value(struct blesim *s, uint16_t handle, const void *value, size_t len);
/* The stored value (borrowed until the attribute changes). 0 or -ENOENT. */
int blesim_value(const struct blesim *s, uint16_t handle, const uint8_t **ret, size_t *ret_len);
/* The value handle of the first characteristic of type uuid, or 0. */
uint16_t blesim_find(const struct blesim *s, const struct att_uuid *uuid);
/* The CCCD value the client last wrote for a characteristic (0 when none). */
uint16_t blesim_cccd(const struct blesim *s, uint16_t value_handle);
/* The handle of a characteristic's CCCD (0 when it has none). */
uint16_t blesim_cccd_handle(const struct blesim *s, uint16_t value_handle);
/* A hash over the database layout (handles, types, declaration values), standing in for the
 * Database Hash 0x2B2A (the spec's AES-CMAC is not needed: clients only compare it). */
void blesim_db_hash(const struct blesim *s, uint8_t out[16]);
/* Frees p with the simulator (profile state). 0 or -ENOSPC. */
int blesim_own(struct blesim *s, void *p);
/* Prints the database, one attribute a line. */
void blesim_dump(const struct blesim *s, FILE *out);

/* ---- traffic ---- */

/* Periodic stream: every period_ns while the client enabled the CCCD of value_handle, gen
 * makes a new value, which is stored and notified (or indicated when only indications are
 * enabled). The first comes one period after the CCCD write. 0 or -errno. */
int blesim_add_stream(struct blesim *s, uint16_t value_handle, int64_t period_ns,
                      blesim_gen_fn gen, void *user_data);
/* The stream(s) of value_handle tick at the monotonic times t with t % period == phase_ns,
 * the first after the CCCD write, rather than a period after it: many simulated devices
 * then spread their notifications over the period as independent devices do, whenever they
 * were connected. 0, -EINVAL (phase outside 0..period), -ENOENT (no such stream). */
int blesim_set_phase(struct blesim *s, uint16_t value_handle, int64_t phase_ns);
/* Notifies (indicates) the current value, cut to MTU - 3: 1 sent, 0 the client has not
 * enabled it, -EBUSY (indication awaiting confirmation), -ENOTCONN. */
int blesim_notify(struct blesim *s, uint16_t value_handle);
int blesim_indicate(struct blesim *s, uint16_t value_handle);
/* Sends any bytes as one PDU (for tests: malformed PDUs). 0 or -errno. */
int blesim_send_raw(struct blesim *s, const void *pdu, size_t len);
void blesim_set_faults(struct blesim *s, const struct blesim_faults *f);

/* ---- link security ---- */

/* An attribute may need an encrypted or authenticated link, as on a wearable that refuses
 * its CCCD writes until it is paired. A link starts unencrypted (level 1). The client raises
 * it where it would call setsockopt(BT_SECURITY) on an L2CAP socket, with a control packet on
 * the same socket: BLESIM_CTL_LEN bytes, longer than any ATT PDU can be (517), so that neither
 * is ever taken for the other, starting with BLESIM_CTL_MAGIC (NUL included), then a command
 * byte and its argument. The socket keeps the order: a raise applies to every PDU sent after
 * it. A level only goes up, as on a real link. */
#define BLESIM_CTL_LEN 520
#define BLESIM_CTL_MAGIC "blesim-ctl"
enum { BLESIM_CTL_SECURITY = 1 };   /* argument: the link's new level, 2..4 */
/* From the client's end fd of a link: raises it to level (2 encrypted, 3 authenticated,
 * 4 Secure Connections). 0, -EINVAL, or the send's -errno. */
int blesim_ctl_security(int fd, int level);
/* Attribute handle needs a link at level (0: none, 2..4 as above): reading or writing it on a
 * lower link is answered with ecode (0: Insufficient Encryption 0x0F for level 2,
 * Insufficient Authentication 0x05 above). 0, -ENOENT or -EINVAL. */
int blesim_set_security(struct blesim *s, uint16_t handle, uint8_t level, uint8_t ecode);
/* The link's level: 1 until the client raises it. */
int blesim_security(const struct blesim *s);

/* Handles waiting requests: number of PDUs read, or -ECONNRESET once the link is gone. */
int blesim_on_readable(struct blesim *s, int64_t now_ns);
/* Runs due streams: number of PDUs sent, or -ENOTCONN. */
int blesim_on_timer(struct blesim *s, int64_t now_ns);
/* When blesim_on_timer is due (INT64_MAX: no stream enabled). */
int64_t blesim_next_timeout(const struct blesim *s);
uint16_t blesim_mtu(const struct blesim *s);
int blesim_closed(const struct blesim *s);
const struct blesim_stats *blesim_stats(const struct blesim *s);

/* ---- stock profiles (ble_sim_profiles.c) ---- */

enum {
    BLESIM_PROFILE_GATT = 1 << 0,     /* 0x1800 GAP (name, appearance), 0x1801 GATT (Service
                                       * Changed, Database Hash) */
    BLESIM_PROFILE_HR = 1 << 1,       /* 0x180D: 0x2A37 notify, 0x2A38 location, 0x2A39 */
    BLESIM_PROFILE_BATTERY = 1 << 2,  /* 0x180F: 0x2A19 read + notify */
    BLESIM_PROFILE_CTS = 1 << 3,      /* 0x1805: 0x2A2B read/write/notify, 0x2A0F */
    BLESIM_PROFILE_DIS = 1 << 4,      /* 0x180A: strings, System ID, PnP ID */
    BLESIM_PROFILE_MOTION = 1 << 5,   /* InfiniTime 00030000-78fc-…: steps, raw motion */
    BLESIM_PROFILE_ALL = 0x3F,
};

enum {
    BLESIM_CTS_WRITE_SET,      /* the Write property; a write sets the clock */
    BLESIM_CTS_WRITE_REFUSE,   /* the Write property, but writes get Write Not Permitted */
    BLESIM_CTS_WRITE_NONE,     /* read and notify only */
    BLESIM_CTS_WRITE_IGNORE,   /* the Write property; a write is answered but changes nothing */
};

/* What writing Local Time Information does (blesim_profile_opts.lti_write). */
enum { BLESIM_LTI_WRITE_NONE, BLESIM_LTI_WRITE_SET, BLESIM_LTI_WRITE_KEEP };

struct blesim_profile_opts {
    const char *name;          /* GAP Device Name */
    uint8_t hr_flags;          /* 0x2A37 flags: bit0 u16 rate, bits1-2 contact, bit3 energy,
                                * bit4 RR intervals */
    uint8_t hr_rr_count;       /* RR intervals per notification with bit4 (cut to fit MTU-3) */
    uint32_t hr_period_ms;     /* notification period; 0: none */
    uint8_t battery_level;     /* starting %, falls by 1 per notification down to 0 */
    uint32_t battery_period_ms;
    int64_t cts_unix_ms;       /* device clock (UTC ms) when the connection opens */
    uint32_t cts_period_ms;
    uint8_t cts_write;         /* BLESIM_CTS_WRITE_*: what writing Current Time does */
    uint8_t cts_unset;         /* Current Time reads as date 0 (never set) until written */
    uint8_t cts_no_lti;        /* no Local Time Information characteristic */
    int8_t lti_tz;             /* its bytes: zone and DST in quarter-hours (0, 0: UTC) */
    uint8_t lti_dst;
    uint8_t lti_write;         /* BLESIM_LTI_WRITE_*: whether it is writable, and takes it */
    uint32_t steps_period_ms;  /* step count notifications */
    uint32_t motion_period_ms; /* raw motion notifications */
    uint8_t hr_security;       /* Heart Rate Measurement (its CCCD) needs a link at this level,
                                * as blesim_set_security (0: none) ... */
    uint8_t security_ecode;    /* ... answered with this code below it (0: by the level) */
    const char *manufacturer, *model, *serial, *firmware;
};

/* name "blesim", HR flags 0x16 (contact detected, RR), 1 RR, 1 s; battery 100 %, 60 s;
 * clock 2024-01-01T00:00:00Z, no CTS notifications; steps 1 s; motion 100 ms (10 Hz). */
void blesim_profile_defaults(struct blesim_profile_opts *o);
/* Adds the profiles in mask, in the order of the enum. 0 or -errno. */
int blesim_add_profiles(struct blesim *s, unsigned mask, const struct blesim_profile_opts *o);
/* The value the HR stream sends as its count-th notification (for checking a client). */
size_t blesim_hr_value(const struct blesim_profile_opts *o, uint64_t count, size_t cap,
                       uint8_t *buf);
/* Writing the device clock through CTS: the simulated UTC seconds at now_ns. */
int64_t blesim_cts_now(const struct blesim *s, int64_t now_ns);
/* Indicates Service Changed for [start, end] when the client enabled it: as blesim_indicate. */
int blesim_service_changed(struct blesim *s, uint16_t start, uint16_t end);
/* The device's database changes while connected: the services of the profiles in mask
 * (not gatt) are added after the last handle, with the options given to blesim_add_profiles
 * (the device information strings empty), and Service Changed is indicated for the new range.
 * Their streams start once the client writes their CCCDs. As blesim_indicate, or -EINVAL
 * (no profiles yet, or gatt in mask). */
int blesim_change_services(struct blesim *s, unsigned mask);

/* ---- the engaged relay service, phone side (ble_sim_relay.c) ---- */

/* A phone whose outbox is the records of a JSON Lines file (one record a line, each with a
 * "seq", consecutive), shared by every connection that serves it; nudges the hub writes are
 * appended to nudges (may be NULL) as JSON lines. NULL with a reason in why. */
struct blesim_relay;
struct blesim_relay *blesim_relay_load(const char *path, FILE *nudges, char *why, size_t cap);
void blesim_relay_free(struct blesim_relay *r);
/* Fault: every Nth fragment sent has a bit flipped in its data (0: off), so the hub's CRC
 * check fails and it must write a new RESUME. */
void blesim_relay_set_corrupt(struct blesim_relay *r, unsigned every);
/* What the phone's Status reports as records it discarded unsent (a phone losing data). */
void blesim_relay_set_dropped(struct blesim_relay *r, uint32_t dropped);
/* on: the phone answers each nudge it gets for the first time with a nudge_ack `delivered`
 * record appended to its outbox (the next seq), as a phone app does. */
void blesim_relay_set_ack(struct blesim_relay *r, int on);
/* on: the phone counts the hub's PAUSEs but goes on sending (a phone that does not honour
 * them; its Status never says PAUSED). */
void blesim_relay_set_ignore_pause(struct blesim_relay *r, int on);
/* One line of counters (acknowledged up to, records sent, RESUMEs, ACKs, nudges, PAUSEs,
 * status requests). */
void blesim_relay_report(const struct blesim_relay *r, FILE *out);
/* Adds the relay service to s, serving r: after the hub's RESUME, one fragment every
 * period_us. 0 or -errno. */
int blesim_add_relay(struct blesim *s, struct blesim_relay *r, uint32_t period_us);

#endif
