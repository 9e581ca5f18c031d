/* Refused relay records on their way to the store (daemon/refusal.h). */
#include "daemon/refusal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct refusal *refusal_new(const char *why, const void *rec, size_t len)
{
    struct refusal *r = malloc(sizeof *r + len);
    if (!r)
        return NULL;
    snprintf(r->why, sizeof r->why, "%s", why && *why ? why : "refused");
    r->len = len;
    if (len)
        memcpy(r->rec, rec, len);
    return r;
}

struct store_event refusal_store_event(const struct refusal *r, const char *source,
                                       const char *participant, int64_t seq,
                                       int64_t received_ms)
{
    return (struct store_event){
        .source = source, .seq = seq, .has_seq = 1, .participant = participant,
        .body = (const char *)r->rec, .body_len = r->len, .received = received_ms,
        .refused = r->why,
    };
}
