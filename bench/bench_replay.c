/* Replay throughput: generates a mixed JSON Lines recording (default 10 M events, two
 * participants, phone and wearable types), then measures in the same run
 *   baseline: reading the file and parsing every line with jansson (json_loadb), nothing else;
 *   replay:   `engaged replay --out /dev/null FILE` as a whole process (events/s, peak RSS).
 * usage: bench_replay ENGAGED_BINARY [N_EVENTS] [TMPDIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchlib.h"

static void generate(const char *path, long n)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    long long ts = 1774483200000LL; /* 2026-03-26 */
    static const char *const screen[] = {"on", "unlocked", "off", "locked"};
    static const char *const apps[] = {"com.whatsapp", "org.example.mindapp", "com.android.chrome"};
    long seq[2] = {0, 0};
    unsigned r = 12345;
    for (long i = 0; i < n; i++) {
        int p = (int)(i & 1);
        r = r * 1103515245u + 12345u;
        ts += 5 + (r >> 28); /* ~12 ms apart: 10 M events span ~1.4 days */
        seq[p]++;
        switch ((r >> 16) % 8) {
        case 0: case 1:
            fprintf(f, "{\"ts\":%lld,\"participant\":\"p0%d\",\"source\":\"phone-%d\",\"seq\":%ld,"
                       "\"type\":\"screen\",\"state\":\"%s\"}\n", ts, p + 1, p, seq[p], screen[(i >> 1) & 3]);
            break;
        case 2:
            fprintf(f, "{\"ts\":%lld,\"participant\":\"p0%d\",\"source\":\"phone-%d\",\"seq\":%ld,"
                       "\"type\":\"app\",\"app\":\"%s\",\"state\":\"foreground\"}\n", ts, p + 1, p,
                    seq[p], apps[(r >> 8) % 3]);
            break;
        case 3:
            fprintf(f, "{\"ts\":%lld,\"participant\":\"p0%d\",\"source\":\"phone-%d\",\"seq\":%ld,"
                       "\"type\":\"battery\",\"pct\":%u}\n", ts, p + 1, p, seq[p], (r >> 9) % 100);
            break;
        case 4:
            fprintf(f, "{\"ts\":%lld,\"participant\":\"p0%d\",\"source\":\"phone-%d\",\"seq\":%ld,"
                       "\"type\":\"ema\",\"prompt\":\"ema-%u\",\"state\":\"delivered\"}\n", ts, p + 1, p,
                    seq[p], (r >> 10) % 50);
            break;
        case 5:
            fprintf(f, "{\"ts\":%lld,\"participant\":\"p0%d\",\"source\":\"phone-%d\",\"seq\":%ld,"
                       "\"type\":\"hr\",\"bpm\":%u}\n", ts, p + 1, p, seq[p], 50 + (r >> 10) % 60);
            break;
        case 6:
            fprintf(f, "{\"ts\":%lld,\"participant\":\"p0%d\",\"source\":\"phone-%d\",\"seq\":%ld,"
                       "\"type\":\"steps\",\"steps\":%u,\"interval_s\":60}\n", ts, p + 1, p, seq[p],
                    (r >> 10) % 120);
            break;
        default:
            fprintf(f, "{\"ts\":%lld,\"participant\":\"p0%d\",\"source\":\"phone-%d\",\"seq\":%ld,"
                       "\"type\":\"counts\",\"epoch_s\":60,\"counts\":%u}\n", ts, p + 1, p, seq[p],
                    (r >> 10) % 3000);
        }
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_replay ENGAGED_BINARY [N_EVENTS] [TMPDIR]\n");
        return 64;
    }
    long n = argc > 2 ? atol(argv[2]) : 10000000L;
    const char *dir = argc > 3 ? argv[3] : "/tmp";
    char path[512];
    snprintf(path, sizeof path, "%s/bench_replay_%d.jsonl", dir, (int)getpid());
    double t0 = bench_now();
    generate(path, n);
    printf("generated %ld events in %.1f s\n", n, bench_now() - t0);

    long parsed;
    double tb = bench_jansson_pass(path, &parsed);
    printf("baseline (read + jansson parse only): %.0f lines/s (%.2f s)\n", (double)parsed / tb, tb);

    char *args[] = {argv[1], "replay", "--out", "/dev/null", path, NULL};
    struct bench_run r = bench_run_child(args);
    printf("engaged replay: exit %d, %.0f events/s wall (%.2f s), %.0f events/s per CPU second,"
           " peak RSS %.1f MiB\n",
           r.exit_code, (double)n / r.wall_s, r.wall_s, (double)n / r.cpu_s, r.maxrss_mib);
    printf("ratio replay/baseline: %.2f (target: replay >= 1,000,000 events/s on one core)\n",
           ((double)n / r.wall_s) / ((double)parsed / tb));
    unlink(path);
    return 0;
}
