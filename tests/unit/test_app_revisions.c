/* The app and engage families through the pipeline: a random phone stream (screen, app,
 * module and battery events over several weeks) gives
 *  - byte-identical records when the events arrive shuffled within `lateness`, and
 *  - the same final value of every app.* / engage.* / adherence.intervention_7d record
 *    (the last revision of each window) when some events arrive up to 40 h late, within
 *    `revise` (2 d): revisions converge to what in-order data gives.
 * The reference is the same pipeline fed in time order; the values themselves are checked
 * by hand elsewhere (tests/replay/app_*, engage_*, integration/test_rapids_apps.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline/pipeline.h"

#define T0 1583470800000LL /* 2020-03-06 00:00 EST */
#define MIN 60000LL
#define HOUR (60 * MIN)
#define N_EV 6000

struct rec {
    char feature[48];
    int64_t end;
    int has, revision;
    double value, coverage;
};

struct out {
    struct rec *r;
    size_t n, cap;
    char *text; /* every record, for byte comparisons */
    size_t len, tcap;
};

static int sink(void *ud, const struct feature_record *r)
{
    struct out *o = ud;
    char line[512];
    int n = record_to_json(r, line, sizeof line);
    assert_true(n > 0);
    if (o->len + (size_t)n + 1 > o->tcap) {
        o->tcap = (o->tcap + (size_t)n + 1) * 2;
        o->text = realloc(o->text, o->tcap);
        assert_non_null(o->text);
    }
    memcpy(o->text + o->len, line, (size_t)n);
    o->len += (size_t)n;
    o->text[o->len++] = '\n';
    if (strncmp(r->feature, "app.", 4) && strncmp(r->feature, "engage.", 7) &&
        strcmp(r->feature, "adherence.intervention_7d"))
        return 0;
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 1024;
        o->r = realloc(o->r, o->cap * sizeof *o->r);
        assert_non_null(o->r);
    }
    struct rec *x = &o->r[o->n++];
    snprintf(x->feature, sizeof x->feature, "%s", r->feature);
    x->end = r->end;
    x->has = r->has_value;
    x->value = r->has_value ? r->value : 0;
    x->coverage = r->coverage;
    x->revision = r->revision;
    return 0;
}

static uint64_t rng;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

struct timed {
    int64_t arrive;
    uint32_t tie;
    struct event ev;
};

/* A participant's phone: unlock sessions with app switches (sometimes with missing
 * transitions or apps in front while locked), module completions, battery heartbeats. */
static size_t generate(struct timed *v, size_t n)
{
    static const char *const apps[] = {"com.mind", "com.b", "com.c", "com.chat", "com.web"};
    static const char *const mods[] = {"m1", "m2", "m3"};
    int64_t t = T0;
    size_t k = 0;
    while (k < n) {
        struct event *e = &v[k].ev;
        memset(e, 0, sizeof *e);
        snprintf(e->participant, sizeof e->participant, "p01");
        snprintf(e->source, sizeof e->source, "phone");
        uint32_t r = rnd();
        static const int64_t steps[] = {10, 49, 50, 1000, 20000, 31000, 10 * MIN, HOUR, 5 * HOUR};
        t += steps[r % 9] + (int64_t)(rnd() % 1000);
        e->ts = t;
        uint32_t kind = rnd() % 100;
        if (kind < 40) {
            e->type = EV_SCREEN;
            e->u.screen.state = (int)(rnd() % 4);
        } else if (kind < 85) {
            e->type = EV_APP;
            snprintf(e->u.app.app, sizeof e->u.app.app, "%s", apps[rnd() % 5]);
            e->u.app.foreground = rnd() % 8 != 0;
        } else if (kind < 90) {
            e->type = EV_MODULE;
            snprintf(e->u.module.module, sizeof e->u.module.module, "%s", mods[rnd() % 3]);
            e->u.module.completed = (int)(rnd() % 2);
        } else {
            e->type = EV_BATTERY;
            e->u.battery.pct = 50;
        }
        v[k].arrive = t;
        v[k].tie = (uint32_t)k;
        k++;
    }
    return k;
}

static int by_arrival(const void *a, const void *b)
{
    const struct timed *x = a, *y = b;
    if (x->arrive != y->arrive)
        return x->arrive < y->arrive ? -1 : 1;
    return (x->tie > y->tie) - (x->tie < y->tie);
}

static struct pipeline_participant_conf part;

static struct out *run(struct timed *v, size_t n, uint64_t *revised)
{
    struct pipeline_conf c;
    pipeline_conf_defaults(&c);
    c.revise_ms = 48 * HOUR;
    c.app_ignore_shorter_min = 1.0 / 60;
    c.n_app_exclude = 1;
    snprintf(c.app_exclude[0], sizeof c.app_exclude[0], "com.c");
    c.participants = &part;
    c.n_participants = 1;
    struct out *o = calloc(1, sizeof *o);
    assert_non_null(o);
    int err = 0;
    struct pipeline *pl = pipeline_new(&c, sink, o, &err);
    assert_non_null(pl);
    for (size_t i = 0; i < n; i++) {
        int r = pipeline_push(pl, &v[i].ev);
        assert_true(r == PIPE_ACCEPTED || r == PIPE_REVISED);
    }
    pipeline_finish(pl);
    if (revised)
        *revised = pipeline_get_stats(pl)->revised;
    pipeline_free(pl);
    return o;
}

static void free_out(struct out *o)
{
    free(o->r);
    free(o->text);
    free(o);
}

/* The last record of (feature, end) in o, or NULL. */
static const struct rec *last_of(const struct out *o, const char *feature, int64_t end)
{
    for (size_t i = o->n; i-- > 0;)
        if (o->r[i].end == end && strcmp(o->r[i].feature, feature) == 0)
            return &o->r[i];
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    memset(&part, 0, sizeof part);
    snprintf(part.id, sizeof part.id, "p01");
    snprintf(part.tz, sizeof part.tz, "America/New_York");
    part.n_apps = 2;
    part.apps[0] = "com.mind";
    part.apps[1] = "com.b";
    part.prescribed_days_per_week = 3;
    return 0;
}

static void test_shuffle_within_lateness_gives_identical_records(void **state)
{
    (void)state;
    rng = 0x1234567887654321ULL;
    struct timed *v = calloc(N_EV, sizeof *v);
    assert_non_null(v);
    size_t n = generate(v, N_EV);
    struct out *ref = run(v, n, NULL);
    for (size_t i = 0; i < n; i++)
        v[i].arrive = v[i].ev.ts + (int64_t)(rnd() % (5 * MIN)); /* lateness is 10 min */
    qsort(v, n, sizeof *v, by_arrival);
    struct out *got = run(v, n, NULL);
    assert_true(ref->n > 1000);
    assert_int_equal(ref->len, got->len);
    assert_memory_equal(ref->text, got->text, ref->len);
    free_out(ref);
    free_out(got);
    free(v);
}

static void test_late_events_converge_to_the_in_order_values(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        rng = 0x9e3779b97f4a7c15ULL * seed;
        struct timed *v = calloc(N_EV, sizeof *v);
        assert_non_null(v);
        size_t n = generate(v, N_EV);
        struct out *ref = run(v, n, NULL);
        for (size_t i = 0; i < n; i++)
            if (rnd() % 20 == 0) /* 5 % of the events arrive up to 40 h late */
                v[i].arrive += 1 + (int64_t)(rnd() % (40 * HOUR));
        qsort(v, n, sizeof *v, by_arrival);
        uint64_t revised = 0;
        struct out *got = run(v, n, &revised);
        assert_true(revised > 100);
        size_t compared = 0, revisions = 0;
        for (size_t i = 0; i < ref->n; i++) {
            const struct rec *a = last_of(ref, ref->r[i].feature, ref->r[i].end);
            if (a != &ref->r[i])
                continue; /* compare each window once, by its last record */
            const struct rec *b = last_of(got, a->feature, a->end);
            if (!b)
                fail_msg("seed %d: %s ending %lld missing", (int)seed, a->feature,
                         (long long)a->end);
            if (a->has != b->has || a->value != b->value || a->coverage != b->coverage)
                fail_msg("seed %d: %s ending %lld: in order %d %.17g (%.17g), late %d %.17g "
                         "(%.17g)", (int)seed, a->feature, (long long)a->end, a->has, a->value,
                         a->coverage, b->has, b->value, b->coverage);
            compared++;
            revisions += b->revision > 0;
        }
        for (size_t i = 0; i < got->n; i++) /* and nothing extra */
            assert_non_null(last_of(ref, got->r[i].feature, got->r[i].end));
        assert_true(compared > 1000);
        assert_true(revisions > 10);
        free_out(ref);
        free_out(got);
        free(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_shuffle_within_lateness_gives_identical_records, setup),
        cmocka_unit_test_setup(test_late_events_converge_to_the_in_order_values, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
