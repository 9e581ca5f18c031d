/* The kernel's Bluetooth management protocol (mgmt, HCI_CHANNEL_CONTROL), for what a raw-mode
 * hub must do itself when bluetoothd does not run (../shared/reference/ble.md §1-2; BlueZ
 * doc/mgmt-api.txt): keep the Long Term Keys of the devices it bonded with, and give them back
 * to the kernel after a restart, so that a wearable bonded once is not asked to pair again
 * after every reboot of the hub (many refuse, and then send nothing until someone re-pairs
 * them by hand).
 *
 * - the codec: commands built into a caller's buffer, events parsed with every length checked;
 * - a session driven by an already-open fd whose every read returns one mgmt packet: a real
 *   mgmt socket in the daemon (mgmt_open), one end of a socketpair(AF_UNIX, SOCK_SEQPACKET) in
 *   tests. It asks for the controller list, then for every controller (and every one added
 *   later) sets it bondable (without that, pairing makes keys the kernel marks not to keep)
 *   and loads the keys the owner hands it (Identity Resolving Keys, then Long Term Keys); it
 *   passes on every new LTK and IRK the kernel marks to keep, and answers Just Works confirmation requests (the kernel asks when a device that
 *   already has a key pairs again) for the devices the owner accepts, refusing the others.
 *   One command at a time, each with a 2 s timeout.
 *
 * Everything but mgmt_open() is pure: no Bluetooth header, no clock read (time is passed in,
 * CLOCK_MONOTONIC ns), no global state, never logs (lines go to ops->note). Errors are -errno.
 * Multi-byte fields are little-endian on the wire; addresses are kept in wire order (the
 * least significant byte first, as bdaddr_t). */
#ifndef ENGAGED_BLE_MGMT_H
#define ENGAGED_BLE_MGMT_H

#include <stddef.h>
#include <stdint.h>

#define MGMT_HDR_LEN 6            /* opcode or event code, controller index, parameter length */
#define MGMT_INDEX_NONE 0xFFFF    /* a command or event about no controller */
#define MGMT_LTK_LEN 36           /* one key in Load Long Term Keys and New Long Term Key */
#define MGMT_IRK_LEN 23           /* one key in Load Identity Resolving Keys and New IRK */
#define MGMT_MAX_KEYS 256         /* keys (of each kind) loaded into one controller at most */
#define MGMT_CMD_TIMEOUT_NS 2000000000LL
#define MGMT_MAX_QUEUE 64         /* commands waiting behind the one out */

enum {
    MGMT_OP_READ_INDEX_LIST = 0x0003,
    MGMT_OP_SET_BONDABLE = 0x0009,
    MGMT_OP_LOAD_LTKS = 0x0013,
    MGMT_OP_USER_CONFIRM_REPLY = 0x001C,
    MGMT_OP_USER_CONFIRM_NEG_REPLY = 0x001D,
    MGMT_OP_LOAD_IRKS = 0x0030,
};

enum {
    MGMT_EV_CMD_COMPLETE = 0x0001,
    MGMT_EV_CMD_STATUS = 0x0002,
    MGMT_EV_INDEX_ADDED = 0x0004,
    MGMT_EV_INDEX_REMOVED = 0x0005,
    MGMT_EV_NEW_LTK = 0x000A,
    MGMT_EV_USER_CONFIRM_REQUEST = 0x000F,
    MGMT_EV_NEW_IRK = 0x0018,
};

/* Address types in mgmt packets. */
enum { MGMT_ADDR_BREDR = 0, MGMT_ADDR_LE_PUBLIC = 1, MGMT_ADDR_LE_RANDOM = 2 };

/* A Long Term Key as mgmt carries it. */
struct mgmt_ltk {
    uint8_t addr[6];    /* the device's identity address, wire order */
    uint8_t addr_type;  /* MGMT_ADDR_LE_PUBLIC or MGMT_ADDR_LE_RANDOM */
    uint8_t key_type;   /* 0x00-0x01 legacy (unauthenticated, authenticated), 0x02-0x04 P-256
                         * (unauthenticated, authenticated, debug) */
    uint8_t central;    /* 1: used when this host, as the central, starts encryption (the key
                         * the peripheral handed over); 0: used when the peer is the central */
    uint8_t enc_size;   /* 7..16 */
    uint16_t ediv;
    uint8_t rand[8];
    uint8_t val[16];
};

/* 1 when k is a key the kernel would take in Load Long Term Keys: an identity address (LE
 * public, or LE random with the two top bits of its most significant byte set: static), a
 * defined key type other than debug (0x04), central 0 or 1, enc_size 7..16. */
int mgmt_ltk_valid(const struct mgmt_ltk *k);

/* An Identity Resolving Key as mgmt carries it: the key a device that uses resolvable private
 * addresses handed over in pairing, with which the kernel (and the hub's scanner) recognises
 * its changing addresses as the device. */
struct mgmt_irk {
    uint8_t addr[6];    /* the device's identity address, wire order */
    uint8_t addr_type;  /* MGMT_ADDR_LE_PUBLIC or MGMT_ADDR_LE_RANDOM */
    uint8_t val[16];    /* wire order (least significant octet first) */
};

/* 1 when k is a key worth loading: an identity address, as for mgmt_ltk_valid (the kernel
 * refuses others), and not all zero (a device that distributes no key; no address resolves
 * with it). */
int mgmt_irk_valid(const struct mgmt_irk *k);

/* A parsed event. Pointers point into the packet parsed (borrowed). */
struct mgmt_event {
    uint16_t code, index;
    union {
        struct {                  /* MGMT_EV_CMD_COMPLETE (params) and MGMT_EV_CMD_STATUS */
            uint16_t opcode;
            uint8_t status;       /* 0 success; mgmt error codes otherwise */
            const uint8_t *params;
            size_t len;
        } cmd;
        struct {                  /* MGMT_EV_NEW_LTK */
            uint8_t store_hint;
            struct mgmt_ltk key;
        } ltk;
        struct {                  /* MGMT_EV_NEW_IRK */
            uint8_t store_hint;
            uint8_t rpa[6];       /* the address it was learnt under (all zero: none) */
            struct mgmt_irk key;
        } irk;
        struct {                  /* MGMT_EV_USER_CONFIRM_REQUEST */
            uint8_t addr[6], addr_type, confirm_hint;
            uint32_t value;
        } confirm;
    } u;
};

/* Parses one packet. 0: ev is set (for an event code not listed above only code and index,
 * and those listed with their fields); -EBADMSG: shorter than its header, a parameter length
 * that is not the packet's, or parameters too short (or, for a fixed-size event, not exactly
 * the size) for the event. */
int mgmt_parse_event(const uint8_t *p, size_t len, struct mgmt_event *ev);

/* Parses the return parameters of Read Controller Index List: *n indexes into idx (at most
 * max; the rest are ignored). 0 or -EBADMSG (a count the parameters do not hold). */
int mgmt_parse_index_list(const uint8_t *params, size_t len, uint16_t *idx, size_t max, size_t *n);

/* Builds a command: header and len bytes of params. Returns its length, 0 when cap is too
 * small or len > 65535. */
size_t mgmt_cmd(uint8_t *buf, size_t cap, uint16_t op, uint16_t index, const void *params,
                size_t len);
/* Load Long Term Keys with n keys (n <= MGMT_MAX_KEYS). Its length, or 0 (no room, n too big,
 * or a key that is not mgmt_ltk_valid). */
size_t mgmt_cmd_load_ltks(uint8_t *buf, size_t cap, uint16_t index, const struct mgmt_ltk *keys,
                          size_t n);
/* Load Identity Resolving Keys with n keys (n <= MGMT_MAX_KEYS). Its length, or 0 (no room, n
 * too big, or a key that is not mgmt_irk_valid). */
size_t mgmt_cmd_load_irks(uint8_t *buf, size_t cap, uint16_t index, const struct mgmt_irk *keys,
                          size_t n);

/* ---- the session --------------------------------------------------------------------- */

enum { MGMT_NOTE_INFO, MGMT_NOTE_WARN };

struct mgmt_ops {
    /* The keys to load into the controller `index` (its Load Long Term Keys replaces what the
     * kernel holds there): up to max into keys; returns how many. */
    size_t (*keys_for)(void *ud, uint16_t index, struct mgmt_ltk *keys, size_t max);
    /* A new key the kernel marks to keep (store_hint 1), valid (mgmt_ltk_valid). */
    void (*new_key)(void *ud, uint16_t index, const struct mgmt_ltk *key);
    /* 1 to confirm a Just Works pairing with this device, 0 to refuse it. */
    int (*confirm)(void *ud, uint16_t index, const uint8_t addr[6], uint8_t addr_type);
    /* A line for the log: a controller set up (with how many keys), a command refused or
     * timed out, a malformed packet, a refused pairing. */
    void (*note)(void *ud, int level, const char *msg);
    /* As keys_for and new_key, for Identity Resolving Keys (Load Identity Resolving Keys goes
     * to a controller between Set Bondable and Load Long Term Keys). Either may be NULL. */
    size_t (*irks_for)(void *ud, uint16_t index, struct mgmt_irk *keys, size_t max);
    void (*new_irk)(void *ud, uint16_t index, const struct mgmt_irk *key);
};

struct mgmt_stats {
    uint64_t controllers;     /* controllers set up (bondable and keys loaded) */
    uint64_t keys_loaded;     /* keys sent in Load Long Term Keys that the kernel accepted */
    uint64_t new_keys;        /* New Long Term Key events passed to new_key */
    uint64_t irks_loaded;     /* keys sent in Load Identity Resolving Keys, accepted */
    uint64_t new_irks;        /* New Identity Resolving Key events passed to new_irk */
    uint64_t confirmed, refused;
    uint64_t failed;          /* commands answered with an error status or timed out */
    uint64_t malformed;       /* packets mgmt_parse_event refused */
};

struct mgmt;

/* A session on fd (not owned: the caller closes it). ops and ud stay the caller's. NULL when
 * out of memory. */
struct mgmt *mgmt_new(int fd, const struct mgmt_ops *ops, void *ud);
void mgmt_free(struct mgmt *m);
/* Sends Read Controller Index List. 0 or -errno. */
int mgmt_start(struct mgmt *m, int64_t now_ns);
/* Reads what is there (up to 64 packets) and acts on it. 0, or -errno when the fd is dead
 * (EOF or a read error other than EAGAIN/EINTR): the caller drops the session. */
int mgmt_on_readable(struct mgmt *m, int64_t now_ns);
/* 1 while a command waits for the fd to take it (EAGAIN on send): poll for POLLOUT. */
int mgmt_want_write(const struct mgmt *m);
int mgmt_on_writable(struct mgmt *m, int64_t now_ns);
/* The command out's deadline, INT64_MAX when none. */
int64_t mgmt_next_timeout(const struct mgmt *m);
/* A command past its deadline counts as failed (noted) and the next one goes out. */
void mgmt_on_timer(struct mgmt *m, int64_t now_ns);
const struct mgmt_stats *mgmt_stats(const struct mgmt *m);

/* Opens the real mgmt socket (AF_BLUETOOTH, BTPROTO_HCI, HCI_CHANNEL_CONTROL, non-blocking,
 * close-on-exec). The fd, or -errno with a sentence for the log in why (no Bluetooth in this
 * kernel, no CAP_NET_ADMIN, built without Bluetooth support). */
int mgmt_open(char *why, size_t cap);
/* printf into why (cap bytes; nothing when why is NULL or cap 0): the reason a call gives. */
void mgmt_say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
