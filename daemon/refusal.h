/* A record a relay phone sent (over BLE or USB) that the hub refused: kept, with why, in the
 * store's refused table (docs/store.md), submitted in the same batch as the events around it
 * so that its seq counts as processed once that commits, as a stored record's does. */
#ifndef ENGAGED_REFUSAL_H
#define ENGAGED_REFUSAL_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/store.h"

#define REFUSAL_WHY_MAX 256

struct refusal {
    char why[REFUSAL_WHY_MAX]; /* printable; "refused" when none was given */
    size_t len;
    uint8_t rec[];             /* the record's bytes as the phone sent them */
};

/* A copy of why (cut at REFUSAL_WHY_MAX - 1 bytes) and of rec's len bytes (rec may be NULL
 * when len is 0: a record too long to keep). NULL when out of memory. Free with free(). */
struct refusal *refusal_new(const char *why, const void *rec, size_t len);

/* The store_submit_events element for r: seq of source, participant the source's (borrowed,
 * like r, until the submit returns). */
struct store_event refusal_store_event(const struct refusal *r, const char *source,
                                       const char *participant, int64_t seq,
                                       int64_t received_ms);

#endif
