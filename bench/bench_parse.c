/* Event line parsing throughput (replay's inner loop).
 *
 * Prints lines/s for three loops over the same in-memory lines (a typical mix of short
 * phone and wearable events, ~100 bytes each):
 *   jansson   json_loadb + json_decref only: the floor set by the JSON library (baseline)
 *   parse     ev_parse_json: jansson plus the event format's checks
 *   to_json   ev_to_json + free: the canonical writer the store uses
 * and the ratio of parse to the baseline (best of 5 alternating rounds).
 * Usage: bench_parse [seconds per loop and round, default 0.4]. */
#include "pipeline/event.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NLINES 4096

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* per template: the source's device kind and the type's fields */
static const char *const templates[][2] = {
    {"phone", "\"type\":\"screen\",\"state\":\"unlocked\""},
    {"phone", "\"type\":\"app\",\"app\":\"org.example.mindapp\""},
    {"band", "\"type\":\"steps\",\"steps\":42,\"interval_s\":60"},
    {"band", "\"type\":\"hr\",\"bpm\":71.5,\"rr_ms\":[840,812]"},
    {"phone", "\"type\":\"ema\",\"prompt\":\"mood-am\",\"state\":\"answered\""},
    {"watch", "\"type\":\"counts\",\"epoch_s\":60,\"counts\":[12,310,7]"},
    {"phone", "\"type\":\"battery\",\"pct\":87"},
};

static char buf[NLINES][200];
static size_t lens[NLINES];
static struct event evs[NLINES];
static float scratch[EV_ACCEL_MAX][3];

/* lines per second of one loop over all lines, repeated for at least secs */
static double run(int loop, double secs)
{
    const char *why;
    long long n = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < NLINES; i++) {
            if (loop == 0) {
                json_error_t err;
                json_decref(json_loadb(buf[i], lens[i], JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                                       &err));
            } else if (loop == 1) {
                struct event ev;
                if (ev_parse_json(buf[i], lens[i], &ev, scratch, &why) != 0)
                    return -1;
            } else {
                free(ev_to_json(&evs[i]));
            }
        }
        n += NLINES;
        t = now() - t0;
    } while (t < secs);
    return (double)n / t;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 0.4;
    size_t ntpl = sizeof templates / sizeof templates[0], bytes = 0;
    const char *why;

    if (secs <= 0)
        secs = 0.4;
    for (int i = 0; i < NLINES; i++) {
        int p = i % 40;
        const char *const *t = templates[(size_t)i % ntpl];
        int n = snprintf(buf[i], sizeof buf[i],
                         "{\"ts\":%lld,\"participant\":\"p%02d\",\"source\":\"%s-p%02d\","
                         "\"seq\":%d,%s}",
                         1583470800000LL + 1000LL * i, p, t[0], p, i, t[1]);
        lens[i] = (size_t)n;
        bytes += (size_t)n;
        if (ev_parse_json(buf[i], lens[i], &evs[i], scratch, &why) != 0) {
            fprintf(stderr, "bench_parse: template line rejected: %s\n", why);
            return 1;
        }
    }
    printf("lines: %d distinct, mean %.0f bytes\n", NLINES, (double)bytes / NLINES);

    /* rounds alternate the loops and the best round counts, so that a burst of other load
     * on the machine penalises neither side of the ratio */
    double rate[3] = {0, 0, 0};
    const char *names[3] = {"jansson", "parse", "to_json"};
    for (int round = 0; round < 5; round++) {
        for (int loop = 0; loop < 3; loop++) {
            double r = run(loop, secs);
            if (r < 0)
                return 1;
            if (r > rate[loop])
                rate[loop] = r;
        }
    }
    for (int loop = 0; loop < 3; loop++)
        printf("%-8s %12.0f lines/s  %7.1f MB/s\n", names[loop], rate[loop],
               rate[loop] * (double)bytes / NLINES / 1e6);
    printf("parse/jansson ratio: %.2f (> 1: the fast path beats a bare jansson parse)\n",
           rate[1] / rate[0]);
    return 0;
}
