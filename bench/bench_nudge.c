/* Nudge rule evaluation (issue: alliance-informed nudges): N participants (default 10,000)
 * with 5 rules each over a year of daily features, fed straight to the nudge engine
 * (pipeline/nudge.c) as the pipeline would feed it: the day's records of the features the
 * rules read, the day close, then nudge_run. Every decision is serialised (record_to_json) as
 * the sinks do. Prints rule evaluations per CPU second (target >= 1 M on one core), decisions
 * per second, memory per participant, and the ratio to a baseline measured in the same run:
 * the same five conditions hand-written in C over the same values (no queue, no policies, no
 * records), i.e. what the engine's generality costs.
 *
 *   bench_nudge [PARTICIPANTS [DAYS]] */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/benchlib.h"
#include "pipeline/nudge.h"
#include "pipeline/pipeline.h"
#include "pipeline/tz.h"

#define N_FEAT 7
static const char *const feat[N_FEAT] = {
    "engage.days_since_last_use", "yield.phone", "ema.compliance_7d", "adherence.wear_7d",
    "act.sleep_midpoint", "yield.wearable", "alliance.dwai",
};

struct sink {
    char buf[8192];
    uint64_t decisions, sent, bytes;
};

static void emit(void *ud, struct feature_record *r)
{
    struct sink *s = ud;
    r->participant = "p";
    int n = record_to_json(r, s->buf, sizeof s->buf);
    if (n > 0)
        s->bytes += (uint64_t)n;
    if (r->nudge) {
        s->decisions++;
        s->sent += strcmp(r->nudge->decision, "send") == 0;
    }
}

static double no_coverage(void *ud, int64_t a, int64_t b) { return 1; }

/* resident set size now, KiB (/proc/self/statm) */
static double rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (double)resident * 4.0;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static double uniform(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1.0p-53;
}

/* the day's values of participant p: a slow drift plus noise, so rules fire now and then */
static void values(int p, int d, double *v)
{
    double phase = sin((p * 0.37 + d) * 0.11);
    v[0] = floor(fmax(0, 2.5 + 3 * phase + 2 * uniform() - 1));
    v[1] = fmin(1, fmax(0, 0.7 + 0.3 * phase + 0.2 * (uniform() - 0.5)));
    v[2] = fmin(1, fmax(0, 0.6 + 0.3 * phase + 0.2 * (uniform() - 0.5)));
    v[3] = fmin(1, fmax(0, 0.7 + 0.2 * phase + 0.2 * (uniform() - 0.5)));
    v[4] = 180 + 60 * phase + 90 * (uniform() - 0.5);
    v[5] = fmin(1, fmax(0, 0.8 + 0.2 * phase + 0.1 * (uniform() - 0.5)));
    v[6] = 1 + 4 * uniform();
}

int main(int argc, char **argv)
{
    int n_part = argc > 1 ? atoi(argv[1]) : 10000;
    int n_days = argc > 2 ? atoi(argv[2]) : 365;
    if (n_part < 1 || n_days < 2) {
        fprintf(stderr, "usage: bench_nudge [PARTICIPANTS >= 1 [DAYS >= 2]]\n");
        return 64;
    }
    /* the five rules (docs/nudges.md syntax in the comments) */
    /* engage.days_since_last_use >= 3 and yield.phone >= 0.5 */
    static const struct nudge_node r0[] = {
        {.kind = NUDGE_CMP, .feature = "engage.days_since_last_use", .cmp = NUDGE_GE, .value = 3},
        {.kind = NUDGE_CMP, .feature = "yield.phone", .cmp = NUDGE_GE, .value = 0.5},
        {.kind = NUDGE_AND, .a = 0, .b = 1}};
    static const struct nudge_node r1[] = { /* ema.compliance_7d < 0.5 */
        {.kind = NUDGE_CMP, .feature = "ema.compliance_7d", .cmp = NUDGE_LT, .value = 0.5}};
    static const struct nudge_node r2[] = { /* adherence.wear_7d < 0.6 */
        {.kind = NUDGE_CMP, .feature = "adherence.wear_7d", .cmp = NUDGE_LT, .value = 0.6}};
    static const struct nudge_node r3[] = { /* act.sleep_midpoint shifts > 120 from median 14d */
        {.kind = NUDGE_CMP, .feature = "act.sleep_midpoint", .rel = NUDGE_SHIFTS,
         .median_days = 14, .cmp = NUDGE_GT, .value = 120}};
    static const struct nudge_node r4[] = { /* yield.phone < 0.3 and yield.wearable > 0.5 */
        {.kind = NUDGE_CMP, .feature = "yield.phone", .cmp = NUDGE_LT, .value = 0.3},
        {.kind = NUDGE_CMP, .feature = "yield.wearable", .cmp = NUDGE_GT, .value = 0.5},
        {.kind = NUDGE_AND, .a = 0, .b = 1}};
    struct nudge_rule_conf rules[5];
    const struct nudge_node *nodes[5] = {r0, r1, r2, r3, r4};
    size_t n_nodes[5] = {3, 1, 1, 1, 3};
    const char *names[5] = {"disengaged", "prompts", "wear", "sleep-shift", "device"};
    for (int i = 0; i < 5; i++)
        rules[i] = (struct nudge_rule_conf){
            .name = names[i], .message = names[i], .probability = i == 1 ? 0.5 : 1,
            .cooldown_ms = 24 * 3600000LL, .max_per_day = 1, .max_per_week = 3,
            .quiet = i == 0, .quiet_start_min = 22 * 60, .quiet_end_min = 8 * 60,
            .escalate_to = -1, .escalate_after_ms = 48 * 3600000LL, .min_coverage = 0.5,
            .repeat_unanswered = i == 1, .n_nodes = n_nodes[i], .root = (int)n_nodes[i] - 1,
            .nodes = nodes[i]};
    struct nudge_conf nc = {.seed = 1, .late_after_ms = 6 * 3600000LL, .n_rules = 5,
                            .rules = rules};
    int err = 0;
    struct nudge_plan *plan = nudge_plan_new(&nc, &err);
    struct tz_db *db = tz_db_new(NULL);
    const struct tz_zone *utc = db ? tz_db_get(db, "UTC", &err) : NULL;
    struct nudge_state **st = calloc((size_t)n_part, sizeof *st);
    if (!plan || !utc || !st) {
        fprintf(stderr, "bench_nudge: setup failed (%d)\n", err);
        return 1;
    }
    struct tzline tzl;
    tzline_init(&tzl, utc);
    struct sink sink = {0};
    struct nudge_host h = {.ud = &sink, .participant = "p", .tzl = &tzl,
                           .phone_coverage = no_coverage, .emit = emit};
    double rss0 = rss_kib();
    for (int p = 0; p < n_part; p++)
        if (!(st[p] = nudge_state_new(plan)))
            return 1;
    const int64_t t0 = 1767225600000LL; /* 2026-01-01 UTC */
    const int64_t day_ms = 86400000LL;
    double v[N_FEAT];

    double c0 = bench_cpu();
    for (int d = 0; d < n_days; d++) {
        struct day_window w = {.start = t0 + d * day_ms, .end = t0 + (d + 1) * day_ms,
                               .day = 20454 + d, .zone = utc};
        int64_t y;
        unsigned m, dm;
        civil_from_days(w.day, &y, &m, &dm);
        w.local_date[0] = 0;
        if (snprintf(w.local_date, sizeof w.local_date, "%04d-%02u-%02u", (int)(y % 10000),
                     m % 100, dm % 100) != 10)
            return 1;
        for (int p = 0; p < n_part; p++) {
            values(p, d, v);
            for (int f = 0; f < N_FEAT; f++) {
                struct feature_record r = {
                    .feature = feat[f], .window = WIN_DAY, .start = w.start, .end = w.end,
                    .has_value = 1, .value = v[f], .coverage = 1};
                memcpy(r.local_date, w.local_date, sizeof r.local_date);
                nudge_feed_record(st[p], &r);
            }
            nudge_feed_day(st[p], &w);
            h.clock = w.end;
            nudge_run(st[p], &h, w.end + 12 * 3600000LL); /* deferrals to 08:00 too */
        }
    }
    double engine_s = bench_cpu() - c0;
    double rss1 = rss_kib();
    uint64_t evals = 0;
    for (int p = 0; p < n_part; p++)
        evals += nudge_state_evaluations(st[p]);

    /* baseline: the five conditions hand-written, over the same generated values */
    rng = 0x9e3779b97f4a7c15ULL;
    uint64_t fired = 0, base_evals = 0;
    double *mid = calloc((size_t)n_part * 15, sizeof *mid);
    c0 = bench_cpu();
    for (int d = 0; d < n_days; d++)
        for (int p = 0; p < n_part; p++) {
            values(p, d, v);
            double *hist = &mid[(size_t)p * 15];
            double s[14];
            int k = d < 14 ? d : 14;
            memcpy(s, hist, sizeof(double) * (size_t)k);
            for (int i = 1; i < k; i++)
                for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
                    double t = s[j];
                    s[j] = s[j - 1], s[j - 1] = t;
                }
            fired += v[0] >= 3 && v[1] >= 0.5;
            fired += v[2] < 0.5;
            fired += v[3] < 0.6;
            if (k >= 7) {
                double med = k % 2 ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
                fired += fabs(v[4] - med) > 120;
            }
            fired += v[1] < 0.3 && v[5] > 0.5;
            memmove(hist + 1, hist, 13 * sizeof *hist);
            hist[0] = v[4];
            base_evals += 5;
        }
    double base_s = bench_cpu() - c0;

    double per_s = evals / engine_s, base_per_s = base_evals / base_s;
    printf("bench_nudge: %d participants x %d days x 5 rules\n", n_part, n_days);
    printf("  engine:   %llu rule evaluations in %.3f s CPU = %.0f evaluations/s "
           "(target >= 1,000,000)\n", (unsigned long long)evals, engine_s, per_s);
    printf("            %llu decisions (%llu sent), %.0f decisions/s, %.1f MiB of JSON written\n",
           (unsigned long long)sink.decisions, (unsigned long long)sink.sent,
           sink.decisions / engine_s, sink.bytes / 1048576.0);
    printf("            memory %.2f KiB per participant (RSS growth over the run)\n",
           (rss1 - rss0) / n_part);
    printf("  baseline: the same conditions hand-written: %.0f evaluations/s (%llu true)\n",
           base_per_s, (unsigned long long)fired);
    printf("  ratio engine/baseline: %.3f\n", per_s / base_per_s);
    for (int p = 0; p < n_part; p++)
        nudge_state_free(st[p]);
    free(st);
    free(mid);
    nudge_plan_free(plan);
    tz_db_free(db);
    return per_s >= 0 ? 0 : 1;
}
