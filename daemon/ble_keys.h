/* Bonding keys of raw-mode BLE links, kept by the daemon itself (docs/ble.md "Bonding keys").
 *
 * Without bluetoothd nothing keeps the Long Term Keys the kernel makes when a device pairs:
 * after a reboot of the hub a bonded wearable would be asked to pair again, and many refuse
 * until someone re-pairs them by hand. When any source uses an `l2cap` transport, the daemon
 * opens the kernel's mgmt socket (drivers/ble_mgmt.h) and:
 *   - sets every controller bondable and loads the keys of the key file into it (Identity
 *     Resolving Keys, with which the kernel knows a device that uses resolvable private
 *     addresses by its identity address, and Long Term Keys);
 *   - writes every new key the kernel marks to keep to the key file (atomically, mode 0600);
 *   - confirms Just Works pairing with configured devices only.
 * The key file is `[store] path` + ".ble-keys": next to the store but not in it, so a copy of
 * the store made for analysis carries no keys. */
#ifndef ENGAGED_DAEMON_BLE_KEYS_H
#define ENGAGED_DAEMON_BLE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "drivers/ble_mgmt.h"

#define BLE_KEYS_FILE_MAX (1 << 20)  /* bytes of key file read at most */
#define BLE_KEYS_MAX 1024            /* keys in the file at most (all controllers) */
#define BLE_KEYS_SUFFIX ".ble-keys"

enum { BLE_KEY_LTK = 0, BLE_KEY_IRK = 1 };

/* One key of the file: a Long Term Key (kind BLE_KEY_LTK, ltk set, irk all zero) or an
 * Identity Resolving Key (BLE_KEY_IRK, irk set, ltk all zero). No padding: keys compare with
 * memcmp. */
struct ble_key {
    uint16_t controller;             /* the mgmt controller index (hciN: N) */
    struct mgmt_ltk ltk;
    struct mgmt_irk irk;
    uint8_t kind;
};

/* ---- the key file (pure: fuzzed by tests/fuzz/fuzz_blekeys.c) ------------------------ */

/* Parses a key file's text (JSON, docs/ble.md): up to max keys into out, *n of them. 0, or
 * -EINVAL with the reason in why (the first fault: the file is refused whole, so that nothing
 * in it is dropped by the next save). */
int ble_keys_parse(const char *text, size_t len, struct ble_key *out, size_t max, size_t *n,
                   char *why, size_t cap);
/* The file's text for keys[0..n) (malloc'd, NUL-terminated), NULL when out of memory. */
char *ble_keys_format(const struct ble_key *keys, size_t n);

/* Reads path: 0 (a missing file is 0 with *n 0), or -errno / -EINVAL with why set. */
int ble_keys_load(const char *path, struct ble_key *out, size_t max, size_t *n, char *why,
                  size_t cap);
/* Replaces path with keys[0..n) (a temporary file in the same directory, mode 0600, fsync,
 * rename, fsync of the directory). 0 or -errno. */
int ble_keys_save(const char *path, const struct ble_key *keys, size_t n);

/* ---- the daemon's side --------------------------------------------------------------- */

/* A device that may pair: its identity address (wire order) and mgmt address type. */
struct ble_keys_device {
    uint8_t addr[6];
    uint8_t addr_type;
};

struct ble_keys;

/* Opens the mgmt socket: an fd (owned by the keeper from then on), or -errno with the reason in
 * why. The daemon's calls mgmt_open; a test's hands out socketpair ends. */
typedef int (*ble_keys_open_fn)(void *ud, char *why, size_t cap);

#define BLE_KEYS_REOPEN_MIN_S 2    /* the first try after a failed open or a closed socket */
#define BLE_KEYS_REOPEN_MAX_S 300  /* the longest wait between tries */
#define BLE_KEYS_STEADY_S 60       /* a session that lasted this long restarts the backoff */

/* What the keeper calls. */
struct ble_keys_hooks {
    ble_keys_open_fn open;
    /* An Identity Resolving Key was kept (new, or replacing the device's): the scanner can
     * resolve the device's addresses with it from now on. May be NULL. */
    void (*irk_kept)(void *ud, const struct mgmt_irk *irk);
    void *ud;                      /* for both */
};

/* Starts the keeper: reads the key file, then opens the mgmt socket with h->open. When
 * that fails, or the socket closes later (the Bluetooth module unloaded, ...), the keeper
 * tries again BLE_KEYS_REOPEN_MIN_S later, doubling to BLE_KEYS_REOPEN_MAX_S, and hands the
 * kernel every key it holds once it is open; a failure that cannot change while the daemon
 * runs (-EPROTONOSUPPORT: built without Bluetooth; -EPERM, -EACCES: no CAP_NET_ADMIN) is not
 * tried again. A reason is logged once, not at every try. path: the key file; devices: those
 * whose pairing is confirmed; outer: an epoll set the fd is added to (data.fd = the fd), or
 * -1 (the caller polls ble_keys_fd itself). NULL when out of memory. */
struct ble_keys *ble_keys_start(const struct ble_keys_hooks *h, const char *path,
                                const struct ble_keys_device *devices, size_t n_devices,
                                int outer, int64_t now_ns);
/* Frees k (closes its fd), returns NULL. */
struct ble_keys *ble_keys_free(struct ble_keys *k);
int ble_keys_fd(const struct ble_keys *k);
/* The fd had events (EPOLLIN / EPOLLOUT / EPOLLHUP / EPOLLERR). When the kernel side is gone
 * the session ends (logged; the keys already written stay in the file) and a new one is
 * opened later. */
void ble_keys_on_fd(struct ble_keys *k, uint32_t events, int64_t now_ns);
/* The session's next timeout, or the next open; INT64_MAX: none. k may be NULL. */
int64_t ble_keys_deadline(const struct ble_keys *k);
void ble_keys_on_timer(struct ble_keys *k, int64_t now_ns);
/* What the keeper is doing, for `engagectl status`. */
enum ble_keys_state {
    BLE_KEYS_KEPT,         /* the mgmt socket is open: keys loaded, new ones saved */
    BLE_KEYS_RETRYING,     /* not open (error says why): tried again at reopen_ns */
    BLE_KEYS_FAILED,       /* not open, and not tried again (error says why) */
};
struct ble_keys_status {
    enum ble_keys_state state;
    size_t ltks, irks;              /* keys held (file and new) */
    uint64_t controllers;           /* set up in the current session */
    const char *error;              /* "" when kept; borrowed from k */
    int64_t reopen_ns;              /* RETRYING: the next try (monotonic ns) */
};
void ble_keys_get_status(const struct ble_keys *k, struct ble_keys_status *ret);
/* The session's counters (tests, status), NULL once stopped. */
const struct mgmt_stats *ble_keys_stats(const struct ble_keys *k);
size_t ble_keys_count(const struct ble_keys *k);  /* keys held (file and new), both kinds */
/* The Identity Resolving Key held for a device (identity address in wire order, mgmt address
 * type), on any controller: 1 with it in irk (wire order), else 0. k may be NULL. */
int ble_keys_irk(const struct ble_keys *k, const uint8_t addr[6], uint8_t addr_type,
                 uint8_t irk[16]);

#endif
