/* The daemon's two clocks, in milliseconds: wall-clock UTC (what is stored and published) and
 * monotonic (timeouts and periods, immune to clock steps). */
#include <time.h>

#include "daemon/daemon.h"

static int64_t ms_of(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t daemon_now_ms(void) { return ms_of(CLOCK_REALTIME); }
int64_t daemon_mono_ms(void) { return ms_of(CLOCK_MONOTONIC); }

void daemon_ts_add(struct timespec *t, time_t sec, long nsec)
{
    t->tv_sec += sec;
    t->tv_nsec += nsec;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}
