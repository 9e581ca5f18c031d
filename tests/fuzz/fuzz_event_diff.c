/* Differential libFuzzer harness for event lines: the fast path (pipeline/event_fast.c) must
 * never change what a line means. For every input, ev_parse_json() (fast path first) and
 * ev_parse_json_slow() (jansson alone) must return the same code, the same reason and the
 * same event, bit for bit; and whenever ev_parse_fast() claims a line, jansson must accept it
 * as the same event. Any difference aborts. */
#include "pipeline/event.h"
#include "pipeline/event_fast.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static float scratch_slow[EV_ACCEL_MAX][3], scratch_fast[EV_ACCEL_MAX][3];

#include "tests/event_identical.h"

static void differ(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fast and slow paths differ: %s\ninput (%zu bytes): %.*s\n", what, size,
            (int)(size < 400 ? size : 400), (const char *)data);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    struct event slow, fast, both;
    const char *why_slow = NULL, *why_both = NULL;
    char reason[sizeof slow.u.err.why];

    int r_slow = ev_parse_json_slow(line, size, &slow, scratch_slow, &why_slow);
    if (r_slow != 0) /* the reason may live in slow.u.err.why: keep a copy */
        snprintf(reason, sizeof reason, "%s", why_slow ? why_slow : "(null)");

    if (ev_parse_fast(line, size, &fast, scratch_fast)) {
        if (r_slow != 0)
            differ("fast path accepted a line jansson rejects", data, size);
        if (!identical(&slow, &fast))
            differ("fast path produced another event", data, size);
    }

    int r_both = ev_parse_json(line, size, &both, scratch_fast, &why_both);
    if (r_both != r_slow)
        differ("return codes", data, size);
    if (r_slow != 0 && (!why_both || strcmp(reason, why_both) != 0))
        differ("reasons", data, size);
    if (r_slow == 0 && !identical(&slow, &both))
        differ("events", data, size);
    return 0;
}
