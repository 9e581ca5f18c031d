/* Resolvable private addresses (issue 6; docs/ble-scan.md "Devices with rotating addresses").
 *
 * A device with LE privacy advertises with a random address that changes every ~15 minutes:
 * 24 bits prand (its two top bits 01) and 24 bits hash = ah(IRK, prand), the Identity
 * Resolving Key being what the device handed out when it was paired (Core Vol 6 Part B
 * §1.3.2.2; the function ah is Vol 3 Part H §2.2.2). Whoever holds the IRK recognises every
 * address the device makes; nobody else can link them.
 *
 *   ah(k, r) = e(k, 0^104 || r) mod 2^24      e: AES-128, most significant octet first
 *
 * Keys, prand and hash are most significant octet first here, as the Core spec writes them
 * and as AES takes them; struct hci_addr is in wire order (least significant first), as HCI
 * carries it: prand is b[5] b[4] b[3], hash b[2] b[1] b[0]. (BlueZ stores an IRK least
 * significant octet first; daemon/conf_ble.c turns that text around, ble_irk_parse.)
 *
 * AES comes from libgcrypt, which the daemon has loaded anyway (libsystemd links it). The one
 * piece of global state is libgcrypt's initialisation, done once (pthread_once) by the first
 * call that needs it. Never logs; keys are never copied into memory this module owns (only
 * libgcrypt's key schedules, which it wipes on close). */
#ifndef ENGAGED_BLE_RPA_H
#define ENGAGED_BLE_RPA_H

#include <stddef.h>
#include <stdint.h>

#include "drivers/ble_hci.h"

#define RPA_IRK_SIZE 16
#define RPA_CACHE 256            /* addresses whose verdict rpa_keys remembers */

/* Initialises libgcrypt unless something in the process did already: 0, or -ENOSYS when the
 * library is older than the headers the daemon was built with. Called by everything below;
 * calling it first only moves the work. Thread-safe. */
int rpa_init(void);

/* ah(irk, prand) into ret_hash: 0, or -ENOSYS/-EIO when libgcrypt fails. */
int rpa_ah(const uint8_t irk[RPA_IRK_SIZE], const uint8_t prand[3], uint8_t ret_hash[3]);
/* 1 when the report's address is a resolvable private address (type random, HCI 0x01, and the
 * two most significant bits 01); 0 for public, static random, non-resolvable and resolved
 * (0x02, 0x03: the controller resolved it and reports the identity) addresses. */
int rpa_is_resolvable(uint8_t addr_type, const struct hci_addr *a);
/* The resolvable private address of irk with prand (its top two bits are replaced by 01), as
 * a device makes it: for tests and simulators. 0 or -errno of rpa_ah. */
int rpa_make(const uint8_t irk[RPA_IRK_SIZE], const uint8_t prand[3], struct hci_addr *ret);
/* 1 when a (an address of type random) is a resolvable private address made with irk, 0 when
 * it is not (or not an RPA at all), -errno of rpa_ah. */
int rpa_resolves(const uint8_t irk[RPA_IRK_SIZE], const struct hci_addr *a);

/* A set of keys that many reports are resolved against: each key's AES schedule is set up
 * once, and the verdict on the last addresses seen is remembered (RPA_CACHE, direct-mapped on
 * the hash's low octet): a device repeats its address for 15 minutes, several times a
 * second, and a crowded room holds many devices that resolve with no key at all. */
struct rpa_keys;
/* NULL with errno EINVAL (n is 0 or above HCI_SCAN_FILTER_MAX), ENOMEM, or ENOSYS/EIO
 * (libgcrypt). The keys are not kept: only their schedules. */
struct rpa_keys *rpa_keys_new(const uint8_t (*irks)[RPA_IRK_SIZE], size_t n);
/* Accepts NULL; returns NULL. */
struct rpa_keys *rpa_keys_free(struct rpa_keys *k);
/* The index of the first key that resolves (addr_type, a), or -1: not a resolvable private
 * address, resolved by no key, or (cannot happen with a working libgcrypt) AES failed. */
int rpa_keys_resolve(struct rpa_keys *k, uint8_t addr_type, const struct hci_addr *a);

#endif
