/* Helpers shared by the file readers (drivers/reader.h). */
#include <stdarg.h>
#include <stdio.h>

#include "drivers/reader.h"

/* Open errors cannot live in a reader's priv (reader_open closes the reader before its caller
 * reads r->why): one per-thread buffer, read right after the failed open. */
static _Thread_local char open_why[320];

int reader_fail_open(struct reader *r, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(open_why, sizeof open_why, fmt, ap);
    va_end(ap);
    r->why = open_why;
    return err;
}
