/* The pipeline core: dedupe, lateness, reordering, watermarks over several sources, the
 * end-of-input flush. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline/pipeline.h"
#include "pipeline/tz.h"

#define T0 1583470800000LL /* 2020-03-06 00:00 EST */
#define MIN 60000LL

struct out {
    char lines[4096][512];
    size_t n;
};

/* records per closed day with phone data: 7 screen, 7 ema (adherence.ema_7d included),
 * 1 alliance.dwai, 1 yield.phone, 18 app, 7 engage (adherence.intervention_7d included) */
#define PER_DAY 41

static int sink(void *ud, const struct feature_record *r)
{
    struct out *o = ud;
    if (o->n < 4096)
        record_to_json(r, o->lines[o->n++], 512);
    return 0;
}

static struct event screen(const char *p, const char *src, int64_t seq, int64_t ts, int state)
{
    struct event e;
    memset(&e, 0, sizeof e);
    snprintf(e.participant, sizeof e.participant, "%s", p);
    snprintf(e.source, sizeof e.source, "%s", src);
    e.seq = seq;
    e.has_seq = seq >= 0;
    e.ts = ts;
    e.type = EV_SCREEN;
    e.u.screen.state = state;
    return e;
}

static struct pipeline_participant_conf part = {.id = "p01", .tz = "America/New_York",
                                                .prescribed_days_per_week = 7};

static struct pipeline *new_pl_idle(struct out *o, int64_t source_idle_ms)
{
    struct pipeline_conf c;
    pipeline_conf_defaults(&c);
    c.lateness_ms = 5 * MIN;
    c.source_idle_ms = source_idle_ms;
    c.participants = &part;
    c.n_participants = 1;
    int err = 0;
    struct pipeline *pl = pipeline_new(&c, sink, o, &err);
    assert_non_null(pl);
    return pl;
}

static struct pipeline *new_pl(struct out *o) { return new_pl_idle(o, 24 * 60 * MIN); }

/* one unlock episode of `len` minutes at minute m of day d (source phone, seq from *seq) */
static void episode(struct pipeline *pl, int64_t *seq, int d, int m, int len)
{
    int64_t t = T0 + d * 86400000LL + m * MIN;
    struct event e1 = screen("p01", "phone", (*seq)++, t, SCREEN_UNLOCKED);
    struct event e2 = screen("p01", "phone", (*seq)++, t + len * MIN, SCREEN_OFF);
    assert_int_equal(pipeline_push(pl, &e1), PIPE_ACCEPTED);
    assert_int_equal(pipeline_push(pl, &e2), PIPE_ACCEPTED);
}

static void test_duplicates_are_dropped_and_counted(void **state)
{
    (void)state;
    struct out *o = calloc(1, sizeof *o);
    struct pipeline *pl = new_pl(o);
    struct event e = screen("p01", "phone", 7, T0 + 60 * MIN, SCREEN_UNLOCKED);
    assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    assert_int_equal(pipeline_push(pl, &e), PIPE_DUPLICATE);
    e.ts += 1000; /* same (source, seq), other content: still a duplicate */
    assert_int_equal(pipeline_push(pl, &e), PIPE_DUPLICATE);
    struct event other = screen("p01", "watch", 7, T0 + 61 * MIN, SCREEN_OFF);
    assert_int_equal(pipeline_push(pl, &other), PIPE_ACCEPTED);
    assert_int_equal(pipeline_get_stats(pl)->duplicates, 2);
    pipeline_free(pl);
    free(o);
}

static void test_out_of_order_within_lateness_equals_sorted(void **state)
{
    (void)state;
    struct out *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    struct pipeline *pa = new_pl(a), *pb = new_pl(b);
    int64_t s = 1;
    for (int d = 0; d < 3; d++)
        for (int k = 0; k < 5; k++)
            episode(pa, &s, d, 60 + 120 * k, 1 + k % 4);
    pipeline_finish(pa);
    /* the same events, each episode's OFF arriving before its UNLOCK (1-4 min apart, within lateness) */
    s = 1;
    for (int d = 0; d < 3; d++)
        for (int k = 0; k < 5; k++) {
            int64_t t = T0 + d * 86400000LL + (60 + 120 * k) * MIN;
            struct event e2 = screen("p01", "phone", s + 1, t + (1 + k % 4) * MIN, SCREEN_OFF);
            struct event e1 = screen("p01", "phone", s, t, SCREEN_UNLOCKED);
            s += 2;
            assert_int_equal(pipeline_push(pb, &e2), PIPE_ACCEPTED);
            assert_int_equal(pipeline_push(pb, &e1), PIPE_ACCEPTED);
        }
    pipeline_finish(pb);
    assert_true(a->n > 0);
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        assert_string_equal(a->lines[i], b->lines[i]);
    pipeline_free(pa);
    pipeline_free(pb);
    free(a);
    free(b);
}

static void test_event_older_than_watermark_is_late(void **state)
{
    (void)state;
    struct out *o = calloc(1, sizeof *o);
    struct pipeline *pl = new_pl(o);
    struct event e = screen("p01", "phone", 1, T0 + 100 * MIN, SCREEN_UNLOCKED);
    assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    e = screen("p01", "phone", 2, T0 + 200 * MIN, SCREEN_OFF);
    assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    /* watermark is now 195 min: 190 is behind it (revising, within the 1-day default),
     * 196 is still in time, and two days back is late */
    e = screen("p01", "phone", 3, T0 + 190 * MIN, SCREEN_ON);
    assert_int_equal(pipeline_push(pl, &e), PIPE_REVISED);
    e = screen("p01", "phone", 5, T0 - 2 * 86400000LL, SCREEN_ON);
    assert_int_equal(pipeline_push(pl, &e), PIPE_LATE);
    e = screen("p01", "phone", 4, T0 + 196 * MIN, SCREEN_ON);
    assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    assert_int_equal(pipeline_get_stats(pl)->late, 1);
    pipeline_free(pl);
    free(o);
}

static void test_slowest_source_holds_the_watermark(void **state)
{
    (void)state;
    struct out *o = calloc(1, sizeof *o);
    struct pipeline *pl = new_pl_idle(o, 0);  /* source_idle 0: a silent source holds forever */
    int64_t s = 1;
    episode(pl, &s, 0, 600, 5);               /* phone on day 0 */
    struct event w = screen("p01", "watch", 1, T0 + 600 * MIN, SCREEN_ON);
    assert_int_equal(pipeline_push(pl, &w), PIPE_ACCEPTED);
    episode(pl, &s, 2, 600, 5);               /* phone jumps to day 2 */
    assert_int_equal(o->n, 0);                /* the watch still holds day 0 open */
    /* the watch catches up with an event of day 1: not late, since the watch held it */
    w = screen("p01", "watch", 2, T0 + 86400000LL + 60 * MIN, SCREEN_ON);
    assert_int_equal(pipeline_push(pl, &w), PIPE_ACCEPTED);
    assert_int_equal(o->n, PER_DAY);          /* day 0 closed: all features of a day */
    assert_non_null(strstr(o->lines[0], "\"local_date\":\"2020-03-06\""));
    pipeline_free(pl);
    free(o);
}

/* The same with the default source_idle (24 h): once the phone is more than 24 h ahead of the
 * watch, the watch no longer holds the days; what it sends later is behind the watermark:
 * revising within `revise` (1 d), late beyond it. */
static void test_idle_source_stops_holding(void **state)
{
    (void)state;
    struct out *o = calloc(1, sizeof *o);
    struct pipeline *pl = new_pl(o);
    int64_t s = 1;
    episode(pl, &s, 0, 600, 5);
    struct event w = screen("p01", "watch", 1, T0 + 600 * MIN, SCREEN_ON);
    assert_int_equal(pipeline_push(pl, &w), PIPE_ACCEPTED);
    episode(pl, &s, 1, 500, 5);               /* 23 h 20 min ahead of the watch: still held */
    assert_int_equal(o->n, 0);
    episode(pl, &s, 2, 600, 5);               /* 48 h ahead: the watch is idle */
    assert_int_equal(o->n, 2 * PER_DAY);      /* days 0 and 1 closed on the phone's time */
    w = screen("p01", "watch", 2, T0 + 86400000LL + 14 * 60 * MIN, SCREEN_ON);
    assert_int_equal(pipeline_push(pl, &w), PIPE_REVISED);   /* 20 h behind */
    w = screen("p01", "watch", 3, T0 + 86400000LL + 60 * MIN, SCREEN_ON);
    assert_int_equal(pipeline_push(pl, &w), PIPE_LATE);      /* 33 h behind */
    pipeline_free(pl);
    free(o);
}

static void test_finish_emits_the_partial_last_day(void **state)
{
    (void)state;
    struct out *o = calloc(1, sizeof *o);
    struct pipeline *pl = new_pl(o);
    int64_t s = 1;
    episode(pl, &s, 0, 600, 5);
    episode(pl, &s, 1, 120, 10);
    assert_int_equal(o->n, PER_DAY); /* day 0 closed by the watermark, day 1 still open */
    pipeline_finish(pl);
    assert_int_equal(o->n, 2 * PER_DAY);
    assert_non_null(strstr(o->lines[PER_DAY], "\"local_date\":\"2020-03-07\""));
    assert_non_null(strstr(o->lines[PER_DAY], "\"value\":1"));
    pipeline_free(pl);
    free(o);
}

static struct event tz_event(int64_t ts, const char *zone)
{
    struct event e;
    memset(&e, 0, sizeof e);
    strcpy(e.participant, "p01");
    strcpy(e.source, "phone");
    e.ts = ts;
    e.type = EV_TZ;
    snprintf(e.u.tz.tz, sizeof e.u.tz.tz, "%s", zone);
    return e;
}

static void test_unknown_tz_is_refused(void **state)
{
    (void)state;
    struct out *o = calloc(1, sizeof *o);
    struct pipeline *pl = new_pl(o);
    struct event e = tz_event(T0, "Mars/Olympus_Mons");
    assert_int_equal(pipeline_push(pl, &e), PIPE_BAD_TZ);
    e = tz_event(T0, "Europe/Paris");
    assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    pipeline_free(pl);
    free(o);
}

static const char *zone_at(const struct pipeline *pl, const char *p, int64_t t)
{
    const struct tz_zone *z = pipeline_zone_at(pl, p, t);
    return z ? tz_zone_name(z) : "(none)";
}

/* The zone a device clock is read in: the newest tz event accepted from its ts on, before
 * the watermark reaches it; the applied zone line before it; nothing for a participant
 * without events. */
static void test_zone_at(void **state)
{
    (void)state;
    struct out *o = calloc(1, sizeof *o);
    struct pipeline *pl = new_pl(o);
    assert_string_equal(zone_at(pl, "p01", T0), "(none)");
    struct event e = screen("p01", "phone", -1, T0, SCREEN_ON);
    assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    assert_string_equal(zone_at(pl, "p01", T0), "America/New_York");
    assert_string_equal(zone_at(pl, "p02", T0), "(none)");
    /* waiting for the watermark (lateness 5 min): in force from its ts for pipeline_zone_at */
    e = tz_event(T0 + 60 * MIN, "America/Los_Angeles");
    assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    assert_string_equal(zone_at(pl, "p01", T0 + 59 * MIN), "America/New_York");
    assert_string_equal(zone_at(pl, "p01", T0 + 60 * MIN), "America/Los_Angeles");
    /* an older switch (still after the watermark, now 55 min) does not replace the newest;
     * one at the same ts does */
    e = tz_event(T0 + 58 * MIN, "Europe/Paris");
    assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    assert_string_equal(zone_at(pl, "p01", T0 + 59 * MIN), "America/New_York");
    assert_string_equal(zone_at(pl, "p01", T0 + 120 * MIN), "America/Los_Angeles");
    e = tz_event(T0 + 60 * MIN, "Asia/Tokyo");
    assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    assert_string_equal(zone_at(pl, "p01", T0 + 120 * MIN), "Asia/Tokyo");
    /* the watermark passes them all: the zone line has Paris from +58 min, Tokyo from +60 */
    e = screen("p01", "phone", -1, T0 + 180 * MIN, SCREEN_OFF);
    assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    assert_string_equal(zone_at(pl, "p01", T0 + 10 * MIN), "America/New_York");
    assert_string_equal(zone_at(pl, "p01", T0 + 59 * MIN), "Europe/Paris");
    assert_string_equal(zone_at(pl, "p01", T0 + 240 * MIN), "Asia/Tokyo");
    /* a switch behind the watermark is late and changes nothing */
    e = tz_event(T0 + 100 * MIN, "Europe/London");
    assert_int_equal(pipeline_push(pl, &e), PIPE_LATE);
    assert_string_equal(zone_at(pl, "p01", T0 + 240 * MIN), "Asia/Tokyo");
    pipeline_free(pl);
    free(o);
}

/* A zone line already full (TZL_MAX periods) refuses further switches when they are applied:
 * pipeline_zone_at does not take them up meanwhile either. */
static void test_zone_at_full_line(void **state)
{
    (void)state;
    struct out *o = calloc(1, sizeof *o);
    struct pipeline *pl = new_pl(o);
    struct event e = screen("p01", "phone", -1, T0, SCREEN_ON);
    assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    for (int i = 1; i < TZL_MAX; i++) { /* New York + 63 switches, every one a change */
        e = tz_event(T0 + i * 10 * MIN, i % 2 ? "Europe/Paris" : "Europe/London");
        assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    }
    e = screen("p01", "phone", -1, T0 + TZL_MAX * 10 * MIN, SCREEN_OFF);
    assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED); /* applies them all */
    int64_t later = T0 + (TZL_MAX + 10) * 10 * MIN;
    assert_string_equal(zone_at(pl, "p01", later), "Europe/Paris"); /* the 63rd */
    e = tz_event(later, "Asia/Tokyo");
    assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    assert_string_equal(zone_at(pl, "p01", later), "Europe/Paris");
    uint64_t hits = pipeline_get_stats(pl)->limit_hits;
    e = screen("p01", "phone", -1, later + 60 * MIN, SCREEN_ON);
    assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED); /* Tokyo is applied: refused */
    assert_int_equal(pipeline_get_stats(pl)->limit_hits, hits + 1);
    assert_string_equal(zone_at(pl, "p01", later), "Europe/Paris");
    pipeline_free(pl);
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duplicates_are_dropped_and_counted),
        cmocka_unit_test(test_out_of_order_within_lateness_equals_sorted),
        cmocka_unit_test(test_event_older_than_watermark_is_late),
        cmocka_unit_test(test_slowest_source_holds_the_watermark),
        cmocka_unit_test(test_idle_source_stops_holding),
        cmocka_unit_test(test_finish_emits_the_partial_last_day),
        cmocka_unit_test(test_unknown_tz_is_refused),
        cmocka_unit_test(test_zone_at),
        cmocka_unit_test(test_zone_at_full_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
