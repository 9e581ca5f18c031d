/* Bonding keys of raw-mode BLE links, kept by the daemon itself (docs/ble.md "Bonding keys").
 *
 * Without bluetoothd nothing keeps the Long Term Keys the kernel makes when a device pairs:
 * after a reboot of the hub a bonded wearable would be asked to pair again, and many refuse
 * until someone re-pairs them by hand. When any source uses an `l2cap` transport, the daemon
 * opens the kernel's mgmt socket (drivers/ble_mgmt.h) and:
 *   - sets every controller bondable and loads the keys of the key file into it;
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

struct ble_key {
    uint16_t controller;             /* the mgmt controller index (hciN: N) */
    struct mgmt_ltk ltk;
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

/* Starts the keeper on an open mgmt fd (owned from here on; the daemon's is mgmt_open's, a
 * test's a socketpair end). path: the key file; devices: those whose pairing is confirmed;
 * outer: an epoll set the fd is added to (data.fd = the fd), or -1 (the caller polls
 * ble_keys_fd itself). NULL when out of memory (fd closed). */
struct ble_keys *ble_keys_start(int fd, const char *path, const struct ble_keys_device *devices,
                                size_t n_devices, int outer, int64_t now_ns);
/* Frees k (closes its fd), returns NULL. */
struct ble_keys *ble_keys_free(struct ble_keys *k);
int ble_keys_fd(const struct ble_keys *k);
/* The fd had events (EPOLLIN / EPOLLOUT / EPOLLHUP / EPOLLERR). When the kernel side is gone
 * the keeper stops (logged); the keys already written stay in the file. */
void ble_keys_on_fd(struct ble_keys *k, uint32_t events, int64_t now_ns);
int64_t ble_keys_deadline(const struct ble_keys *k);  /* INT64_MAX: none; k may be NULL */
void ble_keys_on_timer(struct ble_keys *k, int64_t now_ns);
/* The session's counters (tests, status), NULL once stopped. */
const struct mgmt_stats *ble_keys_stats(const struct ble_keys *k);
size_t ble_keys_count(const struct ble_keys *k);  /* keys held (file and new) */

#endif
