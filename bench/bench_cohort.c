/* Cohort benchmark (issue 3): a synthetic study of P participants x D days of phone streams
 * (about 300 events per participant-day: unlock sessions with app foreground events, hourly
 * battery heartbeats, EMA prompt lifecycles, module completions, weekly D-WAI), interleaved in
 * time order as a hub receives them, with a config naming every participant (six time zones,
 * an intervention app, a prescribed dose). Participants differ: engaged, drifting away from
 * the intervention, dropping out (their phone stops), and irregular night owls.
 *
 * Measured in the same run:
 *   baseline: reading the recording and parsing every line with jansson, nothing else;
 *   cohort:   `engaged replay -c CONF --out /dev/null` of the whole cohort: events/s (wall and
 *             per CPU second) and peak RSS;
 *   small:    the same for a cohort of P/10 participants over the same days;
 *   memory per participant = (peak RSS cohort - peak RSS small) / (P - P/10).
 * usage: bench_cohort ENGAGED_BINARY [PARTICIPANTS (1000)] [DAYS (90)] [TMPDIR (/tmp)] [keep|gen]
 * (keep: leave the generated recordings and configs in TMPDIR, for profiling; gen: only
 * generate them there and measure nothing, e.g. for callgrind or output comparisons) */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchlib.h"

#define DAY_MS 86400000LL
#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */

static const char *const zones[] = {"America/New_York", "Europe/London", "Europe/Berlin",
                                    "Asia/Tokyo", "Australia/Sydney", "America/Los_Angeles"};
static const int zone_hours[] = {-5, 0, 1, 9, 11, -8}; /* winter offsets: for shaping days only */
static const char *const apps[] = {
    "org.example.mindapp", "com.whatsapp", "com.android.chrome", "com.google.android.youtube",
    "com.instagram.android", "com.spotify.music", "com.google.android.gm", "com.android.dialer",
    "com.google.android.apps.maps", "com.facebook.katana", "com.android.camera", "org.telegram.messenger",
};
#define N_APPS (sizeof apps / sizeof apps[0])
#define INTERVENTION 0

struct line {
    int64_t ts;
    uint32_t p, off;
};

struct day_buf {
    struct line *v;
    size_t n, cap;
    char *text;
    size_t len, tcap;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static double unif(void) { return (double)rnd() / 4294967296.0; }

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) {
        perror("realloc");
        exit(1);
    }
    return p;
}

static int64_t seqs[1 << 16];

/* Appends one event line of participant p; body is the part after "type". */
static void add(struct day_buf *d, uint32_t p, int64_t ts, const char *body)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 1 << 16;
        d->v = xrealloc(d->v, d->cap * sizeof *d->v);
    }
    if (d->tcap - d->len < 512) {
        d->tcap = d->tcap ? d->tcap * 2 : 1 << 22;
        d->text = xrealloc(d->text, d->tcap);
    }
    d->v[d->n++] = (struct line){ts, p, (uint32_t)d->len};
    int k = snprintf(d->text + d->len, 512, "\"participant\":\"p%04u\",\"source\":\"ph-%04u\",%s}\n",
                     p, p, body);
    d->len += (size_t)k + 1; /* keep the NUL as separator */
}

static void app_body(char *b, size_t n, size_t app)
{
    snprintf(b, n, "\"type\":\"app\",\"app\":\"%s\",\"state\":\"foreground\"", apps[app]);
}

/* One unlock session at t: maybe on, unlocked, 1..5 apps, off. Returns its end. */
static int64_t session(struct day_buf *d, uint32_t p, int64_t t, double p_intervention)
{
    char b[256];
    if (unif() < 0.5) {
        add(d, p, t, "\"type\":\"screen\",\"state\":\"on\"");
        t += 300 + rnd() % 700;
    }
    add(d, p, t, "\"type\":\"screen\",\"state\":\"unlocked\"");
    int n_apps = 1 + (int)(rnd() % 5);
    for (int i = 0; i < n_apps; i++) {
        t += 1000 + rnd() % 4000;
        size_t app = unif() < p_intervention ? INTERVENTION : 1 + rnd() % (N_APPS - 1);
        app_body(b, sizeof b, app);
        add(d, p, t, b);
        t += 5000 + (int64_t)(rnd() % 120000);
    }
    add(d, p, t, "\"type\":\"screen\",\"state\":\"off\"");
    return t;
}

static void participant_day(struct day_buf *d, uint32_t p, int day)
{
    int kind = (int)(p % 4); /* 0 engaged, 1 drifting, 2 dropping out, 3 night owl */
    if (kind == 2 && day >= 30 + (int)(p % 40))
        return;
    int64_t midnight = T0 + day * DAY_MS - (int64_t)zone_hours[p % 6] * 3600000;
    double wake_h = kind == 3 ? 10 + unif() * 4 : 6.5 + unif();
    double sleep_h = kind == 3 ? 26 + unif() * 2 : 22.5 + unif();
    double p_int = kind == 1 ? 0.12 * (1.0 - day / 90.0) : 0.10;
    char b[256];
    for (int h = 0; h < 24; h++) { /* heartbeat */
        snprintf(b, sizeof b, "\"type\":\"battery\",\"pct\":%u", 20 + rnd() % 80);
        add(d, p, midnight + h * 3600000LL + rnd() % 60000, b);
    }
    int sessions = 60 + (int)(rnd() % 10);
    double span = sleep_h - wake_h;
    int64_t t = midnight + (int64_t)(wake_h * 3600000);
    for (int s = 0; s < sessions; s++) {
        int64_t gap = (int64_t)(span * 3600000 / sessions * (0.5 + unif()));
        t = session(d, p, t + gap / 2, p_int) + gap / 2;
        if (t >= midnight + DAY_MS - 1800000) /* keep a participant-day inside its day */
            break;
    }
    for (int k = 0; k < 4; k++) { /* prompts at 9, 13, 17, 21 h local */
        int64_t td = midnight + (9 + 4 * k) * 3600000LL;
        snprintf(b, sizeof b, "\"type\":\"ema\",\"prompt\":\"d%d-%d\",\"state\":\"delivered\"", day, k);
        add(d, p, td, b);
        double answer = kind == 1 ? 0.8 - day / 120.0 : 0.7;
        if (unif() < answer) {
            snprintf(b, sizeof b, "\"type\":\"ema\",\"prompt\":\"d%d-%d\",\"state\":\"opened\"", day, k);
            add(d, p, td + 60000 + rnd() % 1800000, b);
            snprintf(b, sizeof b, "\"type\":\"ema\",\"prompt\":\"d%d-%d\",\"state\":\"answered\"", day, k);
            add(d, p, td + 1900000 + rnd() % 1800000, b);
        }
    }
    if (unif() < p_int * 5) {
        snprintf(b, sizeof b, "\"type\":\"module\",\"module\":\"m%d\",\"state\":\"completed\"", day);
        add(d, p, midnight + 20 * 3600000LL + rnd() % 3600000, b);
    }
    if (day % 7 == (int)(p % 7)) {
        snprintf(b, sizeof b, "\"type\":\"dwai\",\"items\":[%u,%u,%u,%u,%u,%u]", 1 + rnd() % 5,
                 1 + rnd() % 5, 1 + rnd() % 5, 1 + rnd() % 5, 1 + rnd() % 5, 1 + rnd() % 5);
        add(d, p, midnight + 19 * 3600000LL, b);
    }
}

static int by_time(const void *a, const void *b)
{
    const struct line *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->p != y->p)
        return x->p < y->p ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Writes the recording and its config; returns the number of events. */
static long generate(const char *path, const char *conf, unsigned n_part, int days)
{
    FILE *f = fopen(path, "w"), *c = fopen(conf, "w");
    if (!f || !c) {
        perror("bench_cohort: output");
        exit(1);
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    fprintf(c, "[pipeline]\nmax_participants = %u\n", n_part + 16);
    for (unsigned p = 0; p < n_part; p++)
        fprintf(c, "\n[participant p%04u]\ntz = %s\nintervention_apps = %s\n"
                   "prescribed_days_per_week = %u\n",
                p, zones[p % 6], apps[INTERVENTION], 3 + p % 5);
    fclose(c);
    memset(seqs, 0, sizeof seqs);
    rng_state = 0x9e3779b97f4a7c15ULL;
    struct day_buf d = {0};
    long total = 0;
    for (int day = 0; day < days; day++) {
        d.n = d.len = 0;
        for (unsigned p = 0; p < n_part; p++)
            participant_day(&d, p, day);
        qsort(d.v, d.n, sizeof *d.v, by_time);
        for (size_t i = 0; i < d.n; i++)
            fprintf(f, "{\"ts\":%" PRId64 ",\"seq\":%" PRId64 ",%s", d.v[i].ts, ++seqs[d.v[i].p],
                    d.text + d.v[i].off);
        total += (long)d.n;
    }
    free(d.v);
    free(d.text);
    if (fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    return total;
}

static struct bench_run replay(const char *engaged, const char *conf, const char *path, long n,
                               const char *label)
{
    char *args[] = {(char *)engaged, "replay", "-c", (char *)conf, "--out", "/dev/null",
                    (char *)path, NULL};
    struct bench_run r = bench_run_child(args);
    printf("%s: exit %d, %ld events in %.2f s: %.0f events/s wall, %.0f per CPU second, "
           "peak RSS %.1f MiB\n",
           label, r.exit_code, n, r.wall_s, (double)n / r.wall_s, (double)n / r.cpu_s,
           r.maxrss_mib);
    if (r.exit_code != 0) {
        fprintf(stderr, "bench_cohort: replay failed\n");
        exit(1);
    }
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_cohort ENGAGED_BINARY [PARTICIPANTS] [DAYS] [TMPDIR] "
                        "[keep|gen]\n");
        return 64;
    }
    unsigned n_part = argc > 2 ? (unsigned)atoi(argv[2]) : 1000;
    int days = argc > 3 ? atoi(argv[3]) : 90;
    const char *dir = argc > 4 ? argv[4] : "/tmp";
    if (n_part < 10 || n_part > 9999 || days < 1 || days > 3650) {
        fprintf(stderr, "bench_cohort: 10..9999 participants, 1..3650 days\n");
        return 64;
    }
    char path[512], conf[512], spath[512], sconf[512];
    snprintf(path, sizeof path, "%s/bench_cohort_%d.jsonl", dir, (int)getpid());
    snprintf(conf, sizeof conf, "%s/bench_cohort_%d.conf", dir, (int)getpid());
    snprintf(spath, sizeof spath, "%s/bench_cohort_small_%d.jsonl", dir, (int)getpid());
    snprintf(sconf, sizeof sconf, "%s/bench_cohort_small_%d.conf", dir, (int)getpid());

    double t0 = bench_now();
    long n = generate(path, conf, n_part, days);
    printf("cohort: %u participants x %d days = %ld events (%.0f per participant-day), "
           "generated in %.1f s\n", n_part, days, n, (double)n / n_part / days, bench_now() - t0);
    unsigned n_small = n_part / 10;
    long n_s = generate(spath, sconf, n_small, days);
    if (argc > 5 && strcmp(argv[5], "gen") == 0) {
        printf("generated %s, %s (%ld events), %s, %s\n", path, conf, n, spath, sconf);
        return 0;
    }

    long parsed;
    double tb = bench_jansson_pass(path, &parsed);
    printf("baseline (read + jansson parse only): %.0f lines/s (%.2f s)\n", (double)parsed / tb, tb);
    struct bench_run big = replay(argv[1], conf, path, n, "engaged replay, cohort");
    struct bench_run small = replay(argv[1], sconf, spath, n_s, "engaged replay, P/10 cohort");
    double per = (big.maxrss_mib - small.maxrss_mib) * 1024.0 / (double)(n_part - n_small);
    printf("memory per participant: %.1f KiB ((%.1f - %.1f MiB) / %u participants)\n", per,
           big.maxrss_mib, small.maxrss_mib, n_part - n_small);
    printf("ratio cohort replay/baseline: %.2f; targets: >= 1,000,000 events/s on one core, "
           "< 64 KiB per participant\n", ((double)n / big.wall_s) / ((double)parsed / tb));
    if (argc > 5 && strcmp(argv[5], "keep") == 0) {
        printf("kept %s, %s, %s, %s\n", path, conf, spath, sconf);
        return 0;
    }
    unlink(path);
    unlink(conf);
    unlink(spath);
    unlink(sconf);
    return 0;
}
