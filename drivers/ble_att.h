/* ATT (Bluetooth Core Vol 3 Part F), client role: the PDU codec and an fd-driven bearer.
 *
 * The bearer is created on an already-connected socket whose reads return one ATT PDU each:
 * an L2CAP socket on the ATT fixed channel (CID 4), or one end of a
 * socketpair(AF_UNIX, SOCK_SEQPACKET) in tests and with the simulator (tools/blesim). It
 * includes no Bluetooth header, so it builds and runs on hosts without AF_BLUETOOTH.
 *
 * Driving it: the owner's loop polls att_fd() for input (and for output while
 * att_want_write()), calls att_on_readable() / att_on_writable() with the current
 * CLOCK_MONOTONIC time, and calls att_on_timer() when att_next_timeout() is reached. The
 * bearer reads no clock: all time comes from these calls, so tests control it.
 *
 * Transactions: one request is outstanding at a time, further ones wait in a bounded queue
 * (ATT_MAX_QUEUED). A request not answered within ATT_TIMEOUT_NS kills the bearer (ATT
 * forbids further requests on it): every pending request fails with -ETIMEDOUT and the close
 * handlers run. Notifications and indications are delivered to the notify handlers;
 * indications are then confirmed (0x1E) whether or not anyone subscribed. Requests from the
 * peer (it acting as a client) get an Error Response "Request Not Supported"; commands from
 * it are ignored. Malformed responses fail the request they answer with -EPROTO; other
 * malformed PDUs are counted and dropped. Nothing the peer sends can make the bearer read or
 * write out of bounds.
 *
 * Security: given a hook by the owner (att_set_security_hook), a request the peer refuses for
 * want of encryption or authentication is sent again once, after the hook raised the link's
 * security level (BT_SECURITY on an L2CAP socket, a control packet to the simulator).
 *
 * Callbacks may call any function here, including att_free() (the object is released when
 * the outermost call returns). Single-threaded: one loop thread owns the bearer.
 * Never logs; errors are -errno values. */
#ifndef ENGAGED_BLE_ATT_H
#define ENGAGED_BLE_ATT_H

#include <stddef.h>
#include <stdint.h>

#define ATT_CID 4               /* LE fixed channel (l2cap.h does not define it) */
#define ATT_PSM 31              /* BR/EDR */
#define ATT_DEFAULT_LE_MTU 23
#define ATT_MAX_LE_MTU 517
#define ATT_MAX_VALUE_LEN 512   /* longest attribute value (Core Vol 3 Part F §3.2.9) */
#define ATT_TIMEOUT_NS (30 * INT64_C(1000000000))
#define ATT_MAX_QUEUED 64       /* requests waiting behind the outstanding one */
#define ATT_MAX_OUT 32          /* confirmations, error responses, commands for the socket */
#define ATT_MAX_HANDLERS 8      /* notify + close registrations */
#define ATT_RX_BURST 64         /* PDUs read per att_on_readable() call */
#define ATT_RX_BATCH 8          /* PDUs read per system call (recvmmsg) */

/* Opcodes (Core Vol 3 Part F §3.4.8). */
enum {
    ATT_OP_ERROR_RSP = 0x01,
    ATT_OP_MTU_REQ = 0x02,
    ATT_OP_MTU_RSP = 0x03,
    ATT_OP_FIND_INFO_REQ = 0x04,
    ATT_OP_FIND_INFO_RSP = 0x05,
    ATT_OP_FIND_BY_TYPE_REQ = 0x06,
    ATT_OP_FIND_BY_TYPE_RSP = 0x07,
    ATT_OP_READ_BY_TYPE_REQ = 0x08,
    ATT_OP_READ_BY_TYPE_RSP = 0x09,
    ATT_OP_READ_REQ = 0x0A,
    ATT_OP_READ_RSP = 0x0B,
    ATT_OP_READ_BLOB_REQ = 0x0C,
    ATT_OP_READ_BLOB_RSP = 0x0D,
    ATT_OP_READ_MULT_REQ = 0x0E,
    ATT_OP_READ_MULT_RSP = 0x0F,
    ATT_OP_READ_BY_GROUP_REQ = 0x10,
    ATT_OP_READ_BY_GROUP_RSP = 0x11,
    ATT_OP_WRITE_REQ = 0x12,
    ATT_OP_WRITE_RSP = 0x13,
    ATT_OP_PREP_WRITE_REQ = 0x16,
    ATT_OP_PREP_WRITE_RSP = 0x17,
    ATT_OP_EXEC_WRITE_REQ = 0x18,
    ATT_OP_EXEC_WRITE_RSP = 0x19,
    ATT_OP_NOTIFY = 0x1B,
    ATT_OP_INDICATE = 0x1D,
    ATT_OP_CONFIRM = 0x1E,
    ATT_OP_READ_MULT_VAR_REQ = 0x20,
    ATT_OP_READ_MULT_VAR_RSP = 0x21,
    ATT_OP_MULT_NOTIFY = 0x23,
    ATT_OP_WRITE_CMD = 0x52,
    ATT_OP_SIGNED_WRITE_CMD = 0xD2,
};
#define ATT_OP_CMD_FLAG 0x40    /* opcode bit 6: command, never answered */

/* Error codes of the Error Response (Core Vol 3 Part F §3.4.1.1, CSS Part B §1.2). */
enum {
    ATT_ECODE_INVALID_HANDLE = 0x01,
    ATT_ECODE_READ_NOT_PERMITTED = 0x02,
    ATT_ECODE_WRITE_NOT_PERMITTED = 0x03,
    ATT_ECODE_INVALID_PDU = 0x04,
    ATT_ECODE_AUTHENTICATION = 0x05,
    ATT_ECODE_REQ_NOT_SUPPORTED = 0x06,
    ATT_ECODE_INVALID_OFFSET = 0x07,
    ATT_ECODE_AUTHORIZATION = 0x08,
    ATT_ECODE_PREP_QUEUE_FULL = 0x09,
    ATT_ECODE_ATTR_NOT_FOUND = 0x0A,
    ATT_ECODE_ATTR_NOT_LONG = 0x0B,
    ATT_ECODE_ENC_KEY_SIZE = 0x0C,
    ATT_ECODE_INVALID_VALUE_LEN = 0x0D,
    ATT_ECODE_UNLIKELY = 0x0E,
    ATT_ECODE_ENCRYPTION = 0x0F,
    ATT_ECODE_UNSUPPORTED_GROUP = 0x10,
    ATT_ECODE_INSUFFICIENT_RESOURCES = 0x11,
    ATT_ECODE_DB_OUT_OF_SYNC = 0x12,
    ATT_ECODE_VALUE_NOT_ALLOWED = 0x13,
    ATT_ECODE_CCCD_IMPROPER = 0xFD,
    ATT_ECODE_PROC_IN_PROGRESS = 0xFE,
    ATT_ECODE_OUT_OF_RANGE = 0xFF,
};

/* The kind of an opcode as the client sees it. Unknown opcodes without the command bit count
 * as requests (a newer peer's request must still get an Error Response). */
enum att_kind {
    ATT_KIND_REQUEST,
    ATT_KIND_RESPONSE,
    ATT_KIND_COMMAND,
    ATT_KIND_NOTIFY,         /* 0x1B and 0x23 */
    ATT_KIND_INDICATE,
    ATT_KIND_CONFIRM,
};
enum att_kind att_op_kind(uint8_t opcode);
/* The response opcode answering request opcode req, or 0 when req is not a known request. */
uint8_t att_rsp_opcode(uint8_t req);
/* Name of an opcode ("Read By Type Request"), "unknown" for others. */
const char *att_op_str(uint8_t opcode);
/* Name of an error code ("Attribute Not Found"); "application error" for 0x80-0x9F,
 * "reserved" for unassigned codes. */
const char *att_ecode_str(uint8_t ecode);
/* The -errno an error code maps to: INVALID_HANDLE/VALUE_NOT_ALLOWED -EINVAL, READ/WRITE_NOT_
 * PERMITTED -EPERM, INVALID_PDU -EBADMSG, AUTHENTICATION/AUTHORIZATION/ENC_KEY_SIZE/ENCRYPTION
 * -EACCES, REQ_NOT_SUPPORTED/UNSUPPORTED_GROUP -EOPNOTSUPP, INVALID_OFFSET/OUT_OF_RANGE -ERANGE,
 * PREP_QUEUE_FULL -ENOSPC, ATTR_NOT_FOUND -ENOENT, ATTR_NOT_LONG -ENODATA, INVALID_VALUE_LEN
 * -EMSGSIZE, UNLIKELY -EIO, INSUFFICIENT_RESOURCES -EBUSY, DB_OUT_OF_SYNC -ESTALE,
 * PROC_IN_PROGRESS -EALREADY, anything else (application, CCCD_IMPROPER, reserved) -EREMOTEIO. */
int att_ecode_errno(uint8_t ecode);

/* ---- little-endian fields ---- */
static inline uint16_t att_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t att_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void att_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void att_put32(uint8_t *p, uint32_t v)
{
    att_put16(p, (uint16_t)v);
    att_put16(p + 2, (uint16_t)(v >> 16));
}

/* ---- UUIDs ---- */

/* ---- link security ---- */

/* Security levels of the link, in the kernel's BT_SECURITY numbering. */
enum {
    ATT_SECURITY_LOW = 1,     /* unencrypted: a link starts here unless set up otherwise */
    ATT_SECURITY_MEDIUM = 2,  /* encrypted, unauthenticated key (Just Works pairing) */
    ATT_SECURITY_HIGH = 3,    /* encrypted, authenticated key (MITM-protected pairing) */
    ATT_SECURITY_FIPS = 4,    /* LE Secure Connections, authenticated */
};
/* The level that may satisfy a peer that answered ecode on a link at level, or 0 when raising
 * cannot help. Insufficient Encryption (0x0F) and Insufficient Encryption Key Size (0x0C) ask
 * for MEDIUM from below it. Insufficient Authentication (0x05) asks for the next level up:
 * MEDIUM from LOW (a peer without a key for us answers 0x05 to an unencrypted request, and
 * pairing gives it one), then HIGH, then FIPS (a peer wanting an authenticated key, or Secure
 * Connections, answers 0x05 to an encrypted link that lacks it), as BlueZ's client does. */
int att_security_next(uint8_t ecode, int level);

/* A UUID held as 128 bits in wire (little-endian) order; 16-bit UUIDs are expanded with the
 * Bluetooth base UUID 0000xxxx-0000-1000-8000-00805f9b34fb, so comparisons are plain. */
struct att_uuid {
    uint8_t b[16];
};
struct att_uuid att_uuid16(uint16_t v);
/* 1 and the short form in *ret when u is on the base UUID, else 0. */
int att_uuid_to16(const struct att_uuid *u, uint16_t *ret);
int att_uuid_eq(const struct att_uuid *a, const struct att_uuid *b);
/* From 2 or 16 wire bytes: 0, or -EINVAL for another length. */
int att_uuid_from_wire(struct att_uuid *u, const uint8_t *p, size_t len);
/* Writes the short (2-byte) form when possible, else 16 bytes; returns the length. */
size_t att_uuid_to_wire(const struct att_uuid *u, uint8_t *p);
/* Parses "180d", "0x180D" or "00030001-78fc-48fe-8e23-433b3a1942d0": 0 or -EINVAL. */
int att_uuid_parse(struct att_uuid *u, const char *s);
/* "0x180d" for base UUIDs, the 36-character form otherwise; buf holds at least 37 bytes. */
char *att_uuid_str(const struct att_uuid *u, char *buf, size_t cap);

/* ---- response parsing (parameters after the opcode; pure, no bearer) ---- */

struct att_error_rsp {
    uint8_t req_opcode;
    uint16_t handle;
    uint8_t ecode;
};
/* Error Response: exactly 4 parameter bytes. 0 or -EPROTO. */
int att_parse_error(const uint8_t *p, size_t n, struct att_error_rsp *ret);

/* A validated list response: count entries of elen bytes each at p. */
struct att_list {
    const uint8_t *p;
    size_t elen, count;
    uint8_t format;     /* Find Information: 1 = 16-bit UUIDs, 2 = 128-bit */
};
/* Find Information Response: format 1 (entries of 4) or 2 (entries of 18), at least one. */
int att_parse_find_info(const uint8_t *p, size_t n, struct att_list *ret);
/* Find By Type Value Response: entries (found u16, group end u16), at least one. */
int att_parse_find_by_type(const uint8_t *p, size_t n, struct att_list *ret);
/* Read By Type Response: length byte >= 2 (handle, then the value), whole entries, at least
 * one. */
int att_parse_read_by_type(const uint8_t *p, size_t n, struct att_list *ret);
/* Read By Group Type Response: length byte >= 4, whole entries, at least one. */
int att_parse_read_by_group(const uint8_t *p, size_t n, struct att_list *ret);
/* Entry i (< count) of a parsed list. */
static inline const uint8_t *att_list_entry(const struct att_list *l, size_t i)
{
    return l->p + i * l->elen;
}

/* ---- the bearer ---- */

struct att;

/* The outcome of a request, borrowed for the callback. */
struct att_rsp {
    int err;             /* 0; the mapped -errno of an Error Response (ecode != 0); -EPROTO for
                          * a malformed or mismatched response; -ETIMEDOUT; -ECONNRESET when the
                          * peer closed; another -errno of the socket */
    uint8_t ecode;       /* the peer's error code, 0 when it did not send an Error Response */
    uint16_t err_handle; /* the handle its Error Response named (may differ from the request's) */
    uint8_t opcode;      /* the response's opcode, 0 when none arrived */
    const uint8_t *params; /* the response after its opcode (NULL when none arrived) */
    size_t len;
    int64_t recv_ns;     /* when it was read (the owner's clock), or when the request failed */
};

typedef void (*att_destroy_fn)(void *user_data);
typedef void (*att_response_fn)(struct att *att, const struct att_rsp *rsp, void *user_data);
/* opcode: ATT_OP_NOTIFY, ATT_OP_INDICATE (confirmed after all handlers returned), or
 * ATT_OP_MULT_NOTIFY (one call per contained value). value is borrowed for the call. */
typedef void (*att_notify_fn)(struct att *att, uint8_t opcode, uint16_t handle,
                              const uint8_t *value, size_t len, int64_t recv_ns,
                              void *user_data);
/* The bearer died: err as in att_rsp. Called once, after pending requests have failed. */
typedef void (*att_close_fn)(struct att *att, int err, void *user_data);
/* Every PDU read, as received (truncated to ATT_MAX_LE_MTU + 1 bytes if longer), before it is
 * parsed: for recording raw traffic. */
typedef void (*att_rx_fn)(struct att *att, int64_t recv_ns, const uint8_t *pdu, size_t len,
                          void *user_data);
/* Every PDU written to the socket (requests, commands, confirmations, the bearer's own Error
 * Responses), whole, in the order written, after the write succeeded: with the receive hook,
 * a recording holds both directions. sent_ns: the time of the entry point that wrote it; a
 * PDU written by a bare att_send() (outside the entry points) gets the last time the bearer
 * was given, as the bearer reads no clock. pdu is borrowed until the hook returns or calls
 * into the bearer. */
typedef void (*att_tx_fn)(struct att *att, int64_t sent_ns, const uint8_t *pdu, size_t len,
                          void *user_data);

struct att_stats {
    uint64_t rx_pdus, rx_bytes, tx_pdus;
    uint64_t notifications, indications;
    uint64_t malformed;     /* PDUs dropped, or failing their request, for their length/content */
    uint64_t unexpected;    /* responses with nothing outstanding, stray confirmations */
    uint64_t unsupported;   /* peer requests answered with Request Not Supported */
    uint64_t ignored;       /* peer commands */
    uint64_t out_dropped;   /* confirmations/error responses dropped: output queue full */
    uint64_t timeouts;
};

/* A bearer on fd, which stays the caller's (att_free() does not close it) and is made
 * non-blocking. now_mono_ns: the current time. MTU starts at 23. NULL with errno on failure. */
struct att *att_new(int fd, int64_t now_mono_ns);
/* Fails nothing and calls no response or close callback: queued and outstanding requests and
 * registrations get their destroy functions only. Accepts NULL; returns NULL. */
struct att *att_free(struct att *att);

int att_fd(const struct att *att);
uint16_t att_mtu(const struct att *att);
/* 0 while alive, else the error it died of (negative). */
int att_dead(const struct att *att);
const struct att_stats *att_stats(const struct att *att);

/* Exchange MTU Request offering client_mtu (24..517). On a valid response the MTU becomes
 * max(23, min(client_mtu, server's)), before cb runs. Once per bearer: -EALREADY after. */
int att_exchange_mtu(struct att *att, uint16_t client_mtu, att_response_fn cb, void *user_data,
                     att_destroy_fn destroy);
/* Sends opcode with params (the PDU is 1 + len bytes, at most the MTU: else -EMSGSIZE).
 * Requests are queued (-ENOBUFS when ATT_MAX_QUEUED wait) and return an id > 0; cb (may be
 * NULL) runs once with the outcome, then destroy(user_data). Write Command (0x52) is sent
 * without a response and returns 0 (cb and destroy unused). Other opcodes: -EINVAL (use
 * att_exchange_mtu for 0x02; signed writes -EOPNOTSUPP). -ENOTCONN once the bearer is dead. */
int att_send(struct att *att, uint8_t opcode, const void *params, size_t len, att_response_fn cb,
             void *user_data, att_destroy_fn destroy);
/* Cancels request id: its callback will not run, destroy runs now. An outstanding request
 * stays outstanding on the wire (its response is absorbed, its timeout still applies).
 * 0 or -ENOENT. */
int att_cancel(struct att *att, int id);

/* Handler registrations (ATT_MAX_HANDLERS in all): id > 0 or -ENOBUFS. */
int att_register_notify(struct att *att, att_notify_fn fn, void *user_data,
                        att_destroy_fn destroy);
int att_register_close(struct att *att, att_close_fn fn, void *user_data, att_destroy_fn destroy);
/* 0 or -ENOENT; destroy runs. Safe from inside any callback. */
int att_unregister(struct att *att, int id);
/* Replaces the receive hook (NULL fn removes it); the old one's destroy runs. */
void att_set_rx_hook(struct att *att, att_rx_fn fn, void *user_data, att_destroy_fn destroy);
/* The same for the transmit hook. */
void att_set_tx_hook(struct att *att, att_tx_fn fn, void *user_data, att_destroy_fn destroy);

/* Asks the transport to raise the link to level (setsockopt(BT_SECURITY) on an L2CAP socket,
 * after which the kernel pairs or encrypts before it sends anything more). ecode: the peer's
 * error that asked for it. 0: raised or being raised (the retry then waits for the socket, if
 * need be); -errno: not possible. Runs inside att_on_readable(). */
typedef int (*att_security_fn)(struct att *att, int level, uint8_t ecode, void *user_data);
/* Lets the bearer raise the link's security. level: the link's level now (ATT_SECURITY_*).
 * A request answered with an error att_security_next() gives a level for is then, instead of
 * failing: fn is called with that level and, when it returns 0, the same request is sent again
 * at once, ahead of the queued ones (so their order holds), with a new 30 s. A request is sent
 * again once at most, and each level is asked for once per bearer (a level fn could not
 * reach is not asked for again): when fn fails, no level would help or the retry is answered
 * with an error too, the callback gets the error as without a hook. Cancelled requests are
 * not retried. Replaces an earlier hook (its destroy runs); NULL fn removes it. */
void att_set_security_hook(struct att *att, int level, att_security_fn fn, void *user_data,
                           att_destroy_fn destroy);
/* The link's level: the last one given to att_set_security_hook (ATT_SECURITY_LOW before),
 * raised by every raise the hook accepted. */
int att_security(const struct att *att);

/* Reads and handles up to ATT_RX_BURST PDUs. Returns how many it read (0: nothing was
 * waiting), or the error the bearer died of (already reported to the close handlers). */
int att_on_readable(struct att *att, int64_t now_mono_ns);
/* Sends what waited for the socket. 0 or the error the bearer died of. */
int att_on_writable(struct att *att, int64_t now_mono_ns);
/* Expires the outstanding request (-ETIMEDOUT) when its 30 s are up. 0 or the death error. */
int att_on_timer(struct att *att, int64_t now_mono_ns);
/* When att_on_timer must be called next (INT64_MAX: not needed). May be in the past: a request
 * sent outside the entry points above starts its 30 s at the next att_on_timer() call, and
 * the bearer asks for that call at once. Re-read after every call that may send. */
int64_t att_next_timeout(const struct att *att);
/* 1 while output waits for the socket to become writable. */
int att_want_write(const struct att *att);
/* The owner saw the link go (POLLHUP, a connection error): fails everything with err (< 0)
 * and runs the close handlers, as if the bearer had seen it itself. */
void att_disconnect(struct att *att, int err);

#endif
