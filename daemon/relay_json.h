/* The engaged relay service's counters and a phone's Status as JSON fields, shared by the
 * sources that read phones (BLE: daemon/ble_util.c, USB accessory: daemon/usb_status.c), so
 * that status/<source> spells them the same way whichever link the phone uses. */
#ifndef ENGAGED_DAEMON_RELAY_JSON_H
#define ENGAGED_DAEMON_RELAY_JSON_H

#include <jansson.h>
#include <stdint.h>

#include "drivers/relay.h"

/* Sets errors (rx errors + extra_errors), stale, duplicates, gaps, gap_records on o. */
void relay_json_rx(json_t *o, const struct relay_rx_stats *rx, uint64_t extra_errors);
/* Sets phone_newest (null without HAVE_NEWEST), phone_pending, phone_dropped, phone_paused,
 * phone_outbox_full on o. */
void relay_json_phone(json_t *o, const struct relay_status *st);

#endif
