/* daemon/relay_json.h: the relay's counters as JSON fields. */
#include "daemon/relay_json.h"

static json_t *u64(uint64_t v)
{
    return json_integer((json_int_t)v);
}

void relay_json_rx(json_t *o, const struct relay_rx_stats *rx, uint64_t extra_errors)
{
    json_object_set_new(o, "errors", u64(rx->errors + extra_errors));
    json_object_set_new(o, "stale", u64(rx->stale));
    json_object_set_new(o, "duplicates", u64(rx->duplicates));
    json_object_set_new(o, "gaps", u64(rx->gaps));
    json_object_set_new(o, "gap_records", u64(rx->gap_records));
}

void relay_json_phone(json_t *o, const struct relay_status *st)
{
    json_object_set_new(o, "phone_newest", st->flags & RELAY_STATUS_HAVE_NEWEST
                                               ? json_integer(st->newest) : json_null());
    json_object_set_new(o, "phone_pending", u64(st->pending));
    json_object_set_new(o, "phone_dropped", u64(st->dropped));
    json_object_set_new(o, "phone_paused", json_boolean(st->flags & RELAY_STATUS_PAUSED));
    json_object_set_new(o, "phone_outbox_full",
                        json_boolean(st->flags & RELAY_STATUS_OUTBOX_FULL));
}
