#include "daemon/log.h"

#include <stdio.h>
#include <time.h>

/* Process-wide logging settings: the one piece of global state the house style allows,
 * set once at start-up from argv/config. The rate limit keeps a flood of bad input from
 * filling an SD card: at most LOG_BURST messages per second, the rest counted. */
#define LOG_BURST 200

static int g_level = LOG_LVL_INFO;
static int g_journal;
static time_t g_window;
static unsigned g_in_window;
static unsigned long g_suppressed;

void log_set_level(int level) { g_level = level; }
int log_get_level(void) { return g_level; }
void log_set_journal(int on) { g_journal = on; }
unsigned long log_suppressed(void) { return g_suppressed; }

void log_msg(int level, const char *fmt, ...)
{
    if (level > g_level)
        return;
    time_t now = time(NULL);
    if (now != g_window) {
        g_window = now;
        g_in_window = 0;
    }
    if (++g_in_window > LOG_BURST) {
        g_suppressed++;
        return;
    }
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (g_journal)
        fprintf(stderr, "<%d>%s\n", level, buf);
    else
        fprintf(stderr, "engaged: %s\n", buf);
}
