/* Building a gatt_db (drivers/ble_gatt_db.c), shared by the client's discovery and the cache
 * import: add entries in handle order, then finish. Internal to the GATT client. */
#ifndef ENGAGED_BLE_GATT_DB_H
#define ENGAGED_BLE_GATT_DB_H

#include "drivers/ble_gatt.h"

/* 0, -ENOBUFS past the limits, -ENOMEM, -EPROTO (bad range). */
int gatt_db_add_service(struct gatt_db *db, uint16_t start, uint16_t end,
                        const struct att_uuid *uuid, int primary);
/* After all services: sorts them and checks they do not overlap. 0 or -EPROTO. */
int gatt_db_finish_services(struct gatt_db *db);
/* Characteristics in increasing declaration order. A declaration outside every service is
 * skipped (returns 0); -EPROTO when value <= decl. */
int gatt_db_add_chrc(struct gatt_db *db, uint16_t decl, uint8_t props, uint16_t value,
                     const struct att_uuid *uuid);
/* After all characteristics: assigns them to services and sets their end handles. 0 or
 * -EPROTO (a value handle past its characteristic's end). */
int gatt_db_finish_chrcs(struct gatt_db *db);
/* Descriptors in increasing handle order, each inside a characteristic's range. */
int gatt_db_add_desc(struct gatt_db *db, uint16_t handle, const struct att_uuid *uuid);
/* After all descriptors: groups them by characteristic and finds the CCCDs. 0 or -EPROTO. */
int gatt_db_finish(struct gatt_db *db);

/* For a Service Changed of [lo, hi] (finished databases in, finished out; out is
 * overwritten, and cleared on failure):
 * gatt_db_outside: db's services lying wholly outside [lo, hi], with their characteristics
 * and descriptors; -ERANGE when a service straddles lo or hi (the range does not cover whole
 * services: only a full discovery knows what changed).
 * gatt_db_merge: a and b together, their services not overlapping (else -EPROTO). */
int gatt_db_outside(struct gatt_db *out, const struct gatt_db *db, uint16_t lo, uint16_t hi);
int gatt_db_merge(struct gatt_db *out, const struct gatt_db *a, const struct gatt_db *b);

#endif
