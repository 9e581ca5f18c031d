/* A test helper, LD_PRELOADed into the daemon: it moves the wall clock (CLOCK_REALTIME and
 * its coarse variant through clock_gettime, gettimeofday and time) by CLOCKSHIFT_S seconds
 * and leaves every other clock alone. A test can then run the daemon at a chosen wall time,
 * a daylight-saving change say, while its timers, which are monotonic (timerfds armed with
 * TFD_TIMER_ABSTIME), run as they do in service. libfaketime (Debian's 0.9.10) cannot do
 * this: it rewrites an absolute monotonic timerfd deadline by the wall clock's offset, and
 * the timer never fires (or the kernel refuses it). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);
typedef int (*gettimeofday_fn)(struct timeval *, void *);
typedef time_t (*time_fn)(time_t *);

static long long shift_s; /* set before main; only read afterwards */

__attribute__((constructor)) static void clockshift_init(void)
{
    const char *e = getenv("CLOCKSHIFT_S");
    shift_s = e ? strtoll(e, NULL, 10) : 0;
}

/* The next definition of name, found once (a race finds the same pointer twice). */
static void *next(void **slot, const char *name)
{
    void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!f) {
        f = dlsym(RTLD_NEXT, name);
        __atomic_store_n(slot, f, __ATOMIC_RELEASE);
    }
    return f;
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
    static void *slot;
    clock_gettime_fn f = (clock_gettime_fn)next(&slot, "clock_gettime");
    int r = f(clk, ts);
    if (r == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE))
        ts->tv_sec += (time_t)shift_s;
    return r;
}

int gettimeofday(struct timeval *tv, void *tz)
{
    static void *slot;
    gettimeofday_fn f = (gettimeofday_fn)next(&slot, "gettimeofday");
    int r = f(tv, tz);
    if (r == 0) /* tv is declared nonnull */
        tv->tv_sec += (time_t)shift_s;
    return r;
}

time_t time(time_t *t)
{
    static void *slot;
    time_fn f = (time_fn)next(&slot, "time");
    time_t v = f(NULL);
    if (v != (time_t)-1)
        v += (time_t)shift_s;
    if (t)
        *t = v;
    return v;
}
