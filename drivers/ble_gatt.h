/* GATT client (Bluetooth Core Vol 3 Part G) on an ATT bearer (ble_att.h), plus the
 * discovered database and an in-memory attribute cache keyed by device.
 *
 * gatt_new() starts the client procedure at once, as BlueZ's client does it (and as the
 * conformance exchanges in tests/unit/test_ble_gatt.c pin down byte for byte):
 *   1. Exchange MTU (skipped when the wanted MTU is 23);
 *   2. Read By Type 0x0001-0xFFFF for Server Supported Features 0x2B3A (errors tolerated);
 *   3. with a cache: Read By Type for the Database Hash 0x2B2A; a cache entry with the same
 *      hash is used instead of steps 4-8;
 *   4. primary services (Read By Group Type 0x2800), 5. secondary services (0x2801),
 *   6. includes (Read By Type 0x2802), 7. characteristics (Read By Type 0x2803, 16- and
 *      128-bit UUIDs), each over the range the services span;
 *   8. descriptors (Find Information) after every characteristic with room for some;
 *   9. when the server has Service Changed 0x2A05 with a CCCD, indications on it are enabled;
 *  10. ready(err) runs once: 0 when every wanted service is there, -ENOENT when one is
 *      missing (the database is usable anyway), or the error that stopped the procedure
 *      (the bearer's -ETIMEDOUT / -ECONNRESET, -EPROTO for a malformed or inconsistent
 *      response, -ENOBUFS past a limit below, the mapped ATT error of a failed step).
 * Every response is checked: handles must lie in the range asked for and increase, so a
 * hostile server cannot loop the client or make it read out of bounds.
 *
 * Reads, writes and subscriptions may be issued at any time (they queue behind discovery on
 * the bearer). Callbacks may call gatt_free() (and att_free()); free the gatt before its
 * bearer. Single-threaded; never logs. */
#ifndef ENGAGED_BLE_GATT_H
#define ENGAGED_BLE_GATT_H

#include <stddef.h>
#include <stdint.h>

#include "drivers/ble_att.h"

#define GATT_MAX_SERVICES 64
#define GATT_MAX_CHRCS 512
#define GATT_MAX_DESCS 1024
#define GATT_MAX_WANTED 8
#define GATT_MAX_SUBS 64        /* notification subscriptions per client */
#define GATT_MAX_OPS 48         /* reads/writes in flight per client (< ATT_MAX_QUEUED) */
#define GATT_DEVICE_MAX 63      /* cache key length */

/* Declaration and descriptor types (16-bit) */
enum {
    GATT_PRIMARY_SERVICE = 0x2800,
    GATT_SECONDARY_SERVICE = 0x2801,
    GATT_INCLUDE = 0x2802,
    GATT_CHARACTERISTIC = 0x2803,
    GATT_EXT_PROPS = 0x2900,
    GATT_USER_DESC = 0x2901,
    GATT_CCCD = 0x2902,
    GATT_SCCD = 0x2903,
    GATT_PRESENTATION = 0x2904,
    GATT_SERVICE_GATT = 0x1801,
    GATT_SERVICE_CHANGED = 0x2A05,
    GATT_DB_HASH = 0x2B2A,
    GATT_SERVER_FEATURES = 0x2B3A,
};

/* Characteristic properties */
enum {
    GATT_PROP_BROADCAST = 0x01,
    GATT_PROP_READ = 0x02,
    GATT_PROP_WRITE_NO_RSP = 0x04,
    GATT_PROP_WRITE = 0x08,
    GATT_PROP_NOTIFY = 0x10,
    GATT_PROP_INDICATE = 0x20,
    GATT_PROP_SIGNED_WRITE = 0x40,
    GATT_PROP_EXT = 0x80,
};

struct gatt_service {
    uint16_t start, end;
    struct att_uuid uuid;
    uint8_t primary;
    uint16_t first_chrc, n_chrc;  /* index range in gatt_db.chrc */
};

struct gatt_chrc {
    uint16_t decl, value, end;    /* declaration, value handle, last handle it owns */
    uint8_t props;
    struct att_uuid uuid;
    uint16_t cccd;                /* 0: none */
    uint16_t service;             /* index in gatt_db.svc */
    uint16_t first_desc, n_desc;  /* index range in gatt_db.desc */
};

struct gatt_desc {
    uint16_t handle;
    struct att_uuid uuid;
};

/* A server's database, sorted by handle. */
struct gatt_db {
    struct gatt_service *svc;
    struct gatt_chrc *chrc;
    struct gatt_desc *desc;
    size_t n_svc, n_chrc, n_desc;
    size_t cap_svc, cap_chrc, cap_desc;
    size_t n_incl;                /* include declarations seen (not kept) */
    int have_hash;
    uint8_t hash[16];             /* Database Hash, when the server has one */
};

const struct gatt_service *gatt_db_service(const struct gatt_db *db, const struct att_uuid *uuid);
/* In service s (NULL: anywhere), the first characteristic of that type. */
const struct gatt_chrc *gatt_db_chrc(const struct gatt_db *db, const struct gatt_service *s,
                                     const struct att_uuid *uuid);
const struct gatt_chrc *gatt_db_chrc_by_value(const struct gatt_db *db, uint16_t value_handle);
/* Compact binary form (16-bit UUIDs where possible, a checksum at the end); *ret is malloc'd.
 * 0 or -ENOMEM. */
int gatt_db_export(const struct gatt_db *db, uint8_t **ret, size_t *ret_len);
/* Rebuilds db (cleared first) from an exported blob, checking it as a server response would
 * be checked. 0, -EBADMSG (corrupt, wrong version or inconsistent) or -ENOBUFS. */
int gatt_db_import(struct gatt_db *db, const uint8_t *blob, size_t len);
void gatt_db_clear(struct gatt_db *db);

/* ---- attribute cache ---- */

/* Exported databases keyed by device (its address in text form, e.g.
 * "C4:7C:8D:6A:2F:01/random", or any stable name up to GATT_DEVICE_MAX bytes), in memory.
 * The least recently used entry goes when max_devices are held. */
struct gatt_cache;
struct gatt_cache *gatt_cache_new(size_t max_devices);
struct gatt_cache *gatt_cache_free(struct gatt_cache *c);
/* Stores a copy of blob for device after validating it (the checks of gatt_db_import: a
 * blob from storage is untrusted input). 0, -EBADMSG (corrupt), -ENOBUFS (past the limits),
 * -EINVAL (key), -ENOMEM. */
int gatt_cache_import(struct gatt_cache *c, const char *device, const uint8_t *blob, size_t len);
/* The blob held for device (borrowed until the cache next changes; counts as a use for the
 * eviction order). 0 or -ENOENT. */
int gatt_cache_export(struct gatt_cache *c, const char *device, const uint8_t **ret,
                      size_t *ret_len);
int gatt_cache_forget(struct gatt_cache *c, const char *device);
size_t gatt_cache_count(const struct gatt_cache *c);
/* The entry of device was created or replaced by another blob (blob, len: the new one,
 * borrowed for the call), or dropped (blob NULL): forgotten (a Service Changed indication),
 * or evicted for another device. A blob equal to the one held changes nothing and is not
 * reported. For keeping a copy elsewhere (the daemon's store). */
typedef void (*gatt_cache_change_fn)(const char *device, const uint8_t *blob, size_t len,
                                     void *user_data);
/* Reports every later change to fn (NULL: none). Set it after loading a saved copy, so the
 * loading is not reported back. The function must not change the cache. */
void gatt_cache_set_observer(struct gatt_cache *c, gatt_cache_change_fn fn, void *user_data);

/* ---- client ---- */

struct gatt;

typedef void (*gatt_ready_fn)(struct gatt *g, int err, void *user_data);
/* The server indicated Service Changed for [start, end]; the cache entry is already dropped.
 * Rediscovering means a new gatt, on the same bearer or a new one; not from inside this
 * callback. */
typedef void (*gatt_changed_fn)(struct gatt *g, uint16_t start, uint16_t end, void *user_data);
/* err 0, or as att_rsp.err with ecode the peer's ATT error (0 if none). value is borrowed. */
typedef void (*gatt_read_fn)(struct gatt *g, int err, uint8_t ecode, const uint8_t *value,
                             size_t len, void *user_data);
typedef void (*gatt_write_fn)(struct gatt *g, int err, uint8_t ecode, void *user_data);
typedef void (*gatt_notify_fn)(struct gatt *g, uint16_t value_handle, const uint8_t *value,
                               size_t len, int64_t recv_ns, void *user_data);

struct gatt_opts {
    uint16_t mtu;                   /* client Rx MTU to offer: 0 = 517; 23 = no exchange */
    const struct att_uuid *wanted;  /* services ready() checks for (copied) */
    size_t n_wanted;                /* <= GATT_MAX_WANTED */
    struct gatt_cache *cache;       /* borrowed, may be shared by clients; NULL: none */
    const char *device;             /* cache key (copied); required with a cache */
    int trust_unhashed;             /* use a hashless entry when the server has no hash */
    gatt_ready_fn ready;
    gatt_changed_fn changed;        /* optional */
    void *user_data;                /* for ready and changed */
    att_destroy_fn destroy;         /* runs on user_data at gatt_free() */
};

/* A client on att (borrowed; it must outlive the gatt), starting the procedure now.
 * NULL with errno EINVAL (bad options) or ENOMEM, or the bearer's send error. */
struct gatt *gatt_new(struct att *att, const struct gatt_opts *opts);
/* After a Service Changed of [start, end] on the bearer of old (a client whose procedure
 * completed; the caller frees it afterwards): a new client that keeps old's services lying
 * wholly outside the range, with their characteristics and descriptors, and discovers only
 * within it (no Server Supported Features read either: old's are kept). The merged database
 * is what a full discovery would find, at the cost of the changed range's requests. When a
 * service straddles the range, or old is not ready, it discovers everything, as gatt_new. */
struct gatt *gatt_new_changed(struct att *att, const struct gatt_opts *opts,
                              const struct gatt *old, uint16_t start, uint16_t end);
/* 1 when the client discovers only a changed range (gatt_new_changed). */
int gatt_partial(const struct gatt *g);
/* Cancels what is in flight (no callbacks; destroys run). Accepts NULL; returns NULL. */
struct gatt *gatt_free(struct gatt *g);

struct att *gatt_att(const struct gatt *g);
/* 1 once ready() ran with 0 or -ENOENT. */
int gatt_is_ready(const struct gatt *g);
/* 1 when the database came from the cache. */
int gatt_from_cache(const struct gatt *g);
/* The discovered database: complete once ready. */
const struct gatt_db *gatt_get_db(const struct gatt *g);
/* Server Supported Features octet 0 (0 when absent). */
uint8_t gatt_server_features(const struct gatt *g);

/* Reads handle's value, the long way (Read Blob) when it fills a Read Response, up to
 * ATT_MAX_VALUE_LEN bytes. id > 0 or -errno; cb runs once, then destroy(user_data). */
int gatt_read(struct gatt *g, uint16_t handle, gatt_read_fn cb, void *user_data,
              att_destroy_fn destroy);
/* Write Request of len (<= MTU - 3) bytes. id > 0 or -errno (-EMSGSIZE). */
int gatt_write(struct gatt *g, uint16_t handle, const void *value, size_t len, gatt_write_fn cb,
               void *user_data, att_destroy_fn destroy);
/* Write Command (no response): 0 or -errno. */
int gatt_write_cmd(struct gatt *g, uint16_t handle, const void *value, size_t len);
/* Writes value (0x0001 notify, 0x0002 indicate, 0 off) to a CCCD with a Write Request. */
int gatt_write_cccd(struct gatt *g, uint16_t cccd_handle, uint16_t value, gatt_write_fn cb,
                    void *user_data, att_destroy_fn destroy);
/* Cancels read/write id: its callback will not run, destroy runs. 0 or -ENOENT. */
int gatt_cancel(struct gatt *g, int id);

/* Calls fn for every notification/indication of value_handle (0: of every handle).
 * id > 0 or -ENOBUFS. */
int gatt_register_notify(struct gatt *g, uint16_t value_handle, gatt_notify_fn fn,
                         void *user_data, att_destroy_fn destroy);
/* Registers fn for a discovered characteristic's value handle and writes its CCCD: 0x0001
 * when it can notify, else 0x0002 when it can indicate. done (optional) gets the write's
 * outcome. Must be called again after every reconnect: servers keep CCCDs only for bonded
 * clients. id > 0, -ENOENT (no such characteristic, or no CCCD), -EOPNOTSUPP (neither
 * property), or another -errno. */
int gatt_subscribe(struct gatt *g, uint16_t value_handle, gatt_notify_fn fn, gatt_write_fn done,
                   void *user_data, att_destroy_fn destroy);
/* Removes a registration or subscription (the CCCD is left as it is). 0 or -ENOENT. */
int gatt_unregister(struct gatt *g, int id);

#endif
