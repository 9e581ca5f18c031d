/* libFuzzer harness for event lines: ev_parse_json must never crash, leak or read out of
 * bounds on any bytes; a failure must come with a printable reason; an accepted event must
 * serialise, re-parse to an equal event, and serialise again to the same bytes. */
#include "pipeline/event.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static float scratch_a[EV_ACCEL_MAX][3], scratch_b[EV_ACCEL_MAX][3];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct event a, b;
    const char *why = NULL;
    int r = ev_parse_json((const char *)data, size, &a, scratch_a, &why);
    if (r != 0) {
        if (!why)
            abort();
        for (const char *p = why; *p; p++)
            if (*p < 0x20 || *p > 0x7e)
                abort(); /* reasons are echoed into logs and JSON acknowledgements */
        return 0;
    }
    char *s1 = ev_to_json(&a);
    if (!s1)
        abort();
    r = ev_parse_json(s1, strlen(s1), &b, scratch_b, &why);
    if (r != 0) {
        fprintf(stderr, "canonical form rejected: %s\n%s\n", why, s1);
        abort();
    }
    if (!ev_equal(&a, &b)) {
        fprintf(stderr, "round trip changed the event:\n%s\n", s1);
        abort();
    }
    char *s2 = ev_to_json(&b);
    if (!s2 || strcmp(s1, s2) != 0) {
        fprintf(stderr, "canonical form not a fixpoint:\n%s\n%s\n", s1, s2 ? s2 : "(null)");
        abort();
    }
    free(s1);
    free(s2);
    return 0;
}
