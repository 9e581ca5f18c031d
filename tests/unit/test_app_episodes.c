/* The app-episode builder (pipeline/appepisode.c): which foreground events start episodes,
 * where episodes end, the screen repair rules it shares with the screen family, ties at one
 * instant, late insertion, trimming and the app groups. Expected episodes are written out by
 * hand in each test. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline/appepisode.h"

#define T0 1583470800000LL /* 2020-03-06 00:00 EST, any instant would do */
#define SEC 1000LL

struct got {
    struct aep_episode app[64], unl[64];
    size_t n_app, n_unl, n_fg;
    int64_t fg_ts[64];
};

static void on_app(void *ud, const struct aep_episode *e)
{
    struct got *g = ud;
    if (g->n_app < 64)
        g->app[g->n_app++] = *e;
}

static void on_unlock(void *ud, const struct aep_episode *e)
{
    struct got *g = ud;
    if (g->n_unl < 64)
        g->unl[g->n_unl++] = *e;
}

static void on_fg(void *ud, int64_t ts, uint32_t app, unsigned flags)
{
    struct got *g = ud;
    (void)app, (void)flags;
    if (g->n_fg < 64)
        g->fg_ts[g->n_fg] = ts;
    g->n_fg++;
}

static struct pipeline_conf conf;
static struct pipeline_participant_conf part;

static int setup(void **state)
{
    (void)state;
    pipeline_conf_defaults(&conf);
    memset(&part, 0, sizeof part);
    snprintf(part.id, sizeof part.id, "p01");
    part.n_apps = 1;
    part.apps[0] = "org.example.mind";
    part.prescribed_days_per_week = 7;
    return 0;
}

static void add_screen(struct aep_log *l, int64_t ts, int state)
{
    struct event e;
    memset(&e, 0, sizeof e);
    e.type = EV_SCREEN;
    e.ts = ts;
    e.u.screen.state = state;
    assert_int_equal(aep_add(l, &e, &conf, &part, 1000), 1);
}

static void add_app(struct aep_log *l, int64_t ts, const char *app, int fg)
{
    struct event e;
    memset(&e, 0, sizeof e);
    e.type = EV_APP;
    e.ts = ts;
    snprintf(e.u.app.app, sizeof e.u.app.app, "%s", app);
    e.u.app.foreground = fg;
    assert_int_equal(aep_add(l, &e, &conf, &part, 1000), 1);
}

static struct got walk_from(const struct aep_log *l, int64_t from, int64_t to)
{
    struct got g;
    memset(&g, 0, sizeof g);
    struct aep_visitor v = {.app_episode = on_app, .unlock = on_unlock, .foreground = on_fg,
                            .ud = &g};
    aep_walk(l, from, to, &v);
    return g;
}

static struct got walk(const struct aep_log *l, int64_t to) { return walk_from(l, INT64_MIN, to); }

static void assert_ep(const struct aep_episode *e, int64_t a, int64_t b)
{
    assert_int_equal(e->start, a);
    assert_int_equal(e->end, b);
}

static void test_episode_runs_to_next_app_or_the_off(void **state)
{
    (void)state;
    struct aep_log l;
    aep_init(&l);
    add_screen(&l, T0, SCREEN_ON);
    add_screen(&l, T0 + 1 * SEC, SCREEN_UNLOCKED);
    add_app(&l, T0 + 5 * SEC, "com.a", 1);
    add_app(&l, T0 + 65 * SEC, "com.b", 1);
    add_screen(&l, T0 + 125 * SEC, SCREEN_OFF);
    struct got g = walk(&l, INT64_MAX);
    assert_int_equal(g.n_unl, 1);
    assert_ep(&g.unl[0], T0 + 1 * SEC, T0 + 125 * SEC);
    assert_int_equal(g.n_app, 2);
    assert_ep(&g.app[0], T0 + 5 * SEC, T0 + 65 * SEC);  /* com.a until com.b came */
    assert_ep(&g.app[1], T0 + 65 * SEC, T0 + 125 * SEC); /* com.b until the OFF */
    assert_int_not_equal(g.app[0].app, g.app[1].app);
    aep_release(&l);
}

static void test_foreground_with_screen_off_starts_no_episode(void **state)
{
    (void)state;
    struct aep_log l;
    aep_init(&l);
    add_app(&l, T0, "com.a", 1);                  /* before any screen event */
    add_screen(&l, T0 + 10 * SEC, SCREEN_UNLOCKED);
    add_screen(&l, T0 + 20 * SEC, SCREEN_OFF);
    add_app(&l, T0 + 30 * SEC, "com.b", 1);       /* screen off */
    add_screen(&l, T0 + 40 * SEC, SCREEN_ON);
    add_app(&l, T0 + 45 * SEC, "com.c", 1);       /* on but locked */
    add_screen(&l, T0 + 50 * SEC, SCREEN_OFF);
    struct got g = walk(&l, INT64_MAX);
    assert_int_equal(g.n_app, 0);
    assert_int_equal(g.n_unl, 1);
    assert_int_equal(g.n_fg, 3); /* events are still events */
    aep_release(&l);
}

static void test_repeated_foreground_continues_and_background_ends(void **state)
{
    (void)state;
    struct aep_log l;
    aep_init(&l);
    add_screen(&l, T0, SCREEN_UNLOCKED);
    add_app(&l, T0 + 1 * SEC, "com.a", 1);
    add_app(&l, T0 + 2 * SEC, "com.a", 1);  /* a new activity of the app in front */
    add_app(&l, T0 + 3 * SEC, "com.b", 0);  /* background of another app: nothing */
    add_app(&l, T0 + 4 * SEC, "com.a", 0);  /* background of the app in front: ends it */
    add_app(&l, T0 + 6 * SEC, "com.b", 1);
    add_screen(&l, T0 + 9 * SEC, SCREEN_OFF);
    struct got g = walk(&l, INT64_MAX);
    assert_int_equal(g.n_app, 2);
    assert_ep(&g.app[0], T0 + 1 * SEC, T0 + 4 * SEC);
    assert_ep(&g.app[1], T0 + 6 * SEC, T0 + 9 * SEC);
    assert_int_equal(g.n_fg, 3);
    aep_release(&l);
}

static void test_unlock_without_off_has_no_app_episodes(void **state)
{
    (void)state;
    struct aep_log l;
    aep_init(&l);
    add_screen(&l, T0, SCREEN_UNLOCKED);
    add_app(&l, T0 + 1 * SEC, "com.a", 1);
    add_screen(&l, T0 + 5 * SEC, SCREEN_LOCKED);      /* UNLOCK then LOCK: no episode */
    add_screen(&l, T0 + 6 * SEC, SCREEN_OFF);
    add_screen(&l, T0 + 10 * SEC, SCREEN_UNLOCKED);   /* two UNLOCKs: the first is lost */
    add_app(&l, T0 + 11 * SEC, "com.b", 1);
    add_screen(&l, T0 + 12 * SEC, SCREEN_UNLOCKED);
    add_app(&l, T0 + 13 * SEC, "com.c", 1);
    add_screen(&l, T0 + 15 * SEC, SCREEN_OFF);
    struct got g = walk(&l, INT64_MAX);
    assert_int_equal(g.n_unl, 1);
    assert_ep(&g.unl[0], T0 + 12 * SEC, T0 + 15 * SEC);
    assert_int_equal(g.n_app, 1);
    assert_ep(&g.app[0], T0 + 13 * SEC, T0 + 15 * SEC);
    aep_release(&l);
}

static void test_lock_just_after_on_is_dropped_as_in_screen(void **state)
{
    (void)state;
    struct aep_log l;
    aep_init(&l);
    add_screen(&l, T0, SCREEN_UNLOCKED);
    add_app(&l, T0 + 1 * SEC, "com.a", 1);
    add_screen(&l, T0 + 2 * SEC, SCREEN_ON);
    add_screen(&l, T0 + 2 * SEC + 49, SCREEN_LOCKED); /* < 50 ms after ON: dropped */
    add_screen(&l, T0 + 3 * SEC, SCREEN_OFF);
    add_screen(&l, T0 + 10 * SEC, SCREEN_UNLOCKED);
    add_app(&l, T0 + 11 * SEC, "com.a", 1);
    add_screen(&l, T0 + 12 * SEC, SCREEN_ON);
    add_screen(&l, T0 + 12 * SEC + 50, SCREEN_LOCKED); /* 50 ms: kept, breaks the unlock */
    add_screen(&l, T0 + 13 * SEC, SCREEN_OFF);
    struct got g = walk(&l, INT64_MAX);
    assert_int_equal(g.n_app, 1);
    assert_ep(&g.app[0], T0 + 1 * SEC, T0 + 3 * SEC);
    aep_release(&l);
}

static void test_ties_put_screen_first_whatever_the_arrival(void **state)
{
    (void)state;
    struct aep_log l;
    aep_init(&l);
    /* arrival: app first, then the UNLOCK of the same millisecond */
    add_app(&l, T0 + 1 * SEC, "com.a", 1);
    add_screen(&l, T0 + 1 * SEC, SCREEN_UNLOCKED);
    add_app(&l, T0 + 5 * SEC, "com.b", 1);
    add_screen(&l, T0 + 5 * SEC, SCREEN_OFF); /* same millisecond as com.b: b is outside */
    struct got g = walk(&l, INT64_MAX);
    assert_int_equal(g.n_app, 1);
    assert_ep(&g.app[0], T0 + 1 * SEC, T0 + 5 * SEC);
    aep_release(&l);
}

static void test_late_insertion_equals_in_order(void **state)
{
    (void)state;
    struct aep_log a, b;
    aep_init(&a);
    aep_init(&b);
    add_screen(&a, T0, SCREEN_UNLOCKED);
    add_app(&a, T0 + 1 * SEC, "com.a", 1);
    add_app(&a, T0 + 2 * SEC, "com.b", 1);
    add_app(&a, T0 + 3 * SEC, "com.a", 1);
    add_screen(&a, T0 + 4 * SEC, SCREEN_OFF);
    /* the same events, the UNLOCK and the second app arriving last */
    add_app(&b, T0 + 1 * SEC, "com.a", 1);
    add_app(&b, T0 + 3 * SEC, "com.a", 1);
    add_screen(&b, T0 + 4 * SEC, SCREEN_OFF);
    assert_int_equal(aep_open_unlock_at(&b, INT64_MAX), INT64_MIN);
    add_screen(&b, T0, SCREEN_UNLOCKED);
    add_app(&b, T0 + 2 * SEC, "com.b", 1);
    struct got ga = walk(&a, INT64_MAX), gb = walk(&b, INT64_MAX);
    assert_int_equal(ga.n_app, 3);
    assert_int_equal(gb.n_app, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(ga.app[i].start, gb.app[i].start);
        assert_int_equal(ga.app[i].end, gb.app[i].end);
    }
    aep_release(&a);
    aep_release(&b);
}

static void test_open_unlock_and_walk_bound(void **state)
{
    (void)state;
    struct aep_log l;
    aep_init(&l);
    int64_t mid = T0 + 100 * SEC; /* a day boundary, say */
    add_screen(&l, T0 + 90 * SEC, SCREEN_UNLOCKED);
    add_app(&l, T0 + 95 * SEC, "com.a", 1);
    add_app(&l, T0 + 105 * SEC, "com.b", 1);
    assert_int_equal(aep_open_unlock_at(&l, mid), T0 + 90 * SEC);
    assert_int_equal(aep_open_unlock_at(&l, T0 + 90 * SEC), INT64_MIN); /* starts at t */
    struct got g = walk(&l, mid);
    assert_int_equal(g.n_app, 0); /* not closed yet: nothing reported */
    assert_int_equal(g.n_fg, 1);
    add_screen(&l, T0 + 110 * SEC, SCREEN_OFF);
    assert_int_equal(aep_open_unlock_at(&l, mid), INT64_MIN);
    g = walk(&l, mid);
    /* only what starts before `to`: com.a's episode, whole (the caller clips it) */
    assert_int_equal(g.n_app, 1);
    assert_ep(&g.app[0], T0 + 95 * SEC, T0 + 105 * SEC);
    assert_int_equal(g.n_unl, 1);
    aep_release(&l);
}

static void test_walk_from_a_later_start_sees_what_overlaps_it(void **state)
{
    (void)state;
    struct aep_log l;
    aep_init(&l);
    add_screen(&l, T0, SCREEN_UNLOCKED);
    add_app(&l, T0 + 1 * SEC, "com.a", 1);
    add_screen(&l, T0 + 2 * SEC, SCREEN_OFF);
    add_screen(&l, T0 + 10 * SEC, SCREEN_ON);
    add_screen(&l, T0 + 10 * SEC + 20, SCREEN_UNLOCKED);
    add_app(&l, T0 + 11 * SEC, "com.b", 1);
    add_screen(&l, T0 + 12 * SEC, SCREEN_ON);
    add_screen(&l, T0 + 12 * SEC + 10, SCREEN_LOCKED); /* dropped: rule 1 sees the ON */
    add_app(&l, T0 + 13 * SEC, "com.c", 1);
    add_screen(&l, T0 + 20 * SEC, SCREEN_OFF);
    /* from inside the second unlock: the walk must go back to the OFF before it */
    struct got g = walk_from(&l, T0 + 12 * SEC + 5, INT64_MAX);
    assert_int_equal(g.n_unl, 1);
    assert_ep(&g.unl[0], T0 + 10 * SEC + 20, T0 + 20 * SEC);
    assert_int_equal(g.n_app, 2);
    assert_ep(&g.app[0], T0 + 11 * SEC, T0 + 13 * SEC);
    assert_ep(&g.app[1], T0 + 13 * SEC, T0 + 20 * SEC);
    aep_release(&l);
}

static void test_trim_keeps_an_unlock_open_at_the_cut(void **state)
{
    (void)state;
    struct aep_log l;
    aep_init(&l);
    add_screen(&l, T0, SCREEN_UNLOCKED);
    add_app(&l, T0 + 1 * SEC, "com.x", 1);
    add_screen(&l, T0 + 2 * SEC, SCREEN_OFF);
    add_screen(&l, T0 + 10 * SEC, SCREEN_UNLOCKED);
    add_app(&l, T0 + 11 * SEC, "com.a", 1);
    add_app(&l, T0 + 30 * SEC, "com.b", 1);
    add_screen(&l, T0 + 40 * SEC, SCREEN_OFF);
    aep_trim(&l, T0 + 20 * SEC); /* inside the second unlock */
    assert_int_equal(aep_first_ts(&l), T0 + 10 * SEC);
    struct got g = walk(&l, INT64_MAX);
    assert_int_equal(g.n_app, 2);
    assert_ep(&g.app[0], T0 + 11 * SEC, T0 + 30 * SEC);
    aep_trim(&l, T0 + 50 * SEC); /* after everything: the last screen event stays */
    assert_int_equal(l.n, 1);
    assert_int_equal(aep_first_ts(&l), T0 + 40 * SEC);
    aep_release(&l);
}

static void test_trim_keeps_the_screen_event_rule_1_looks_at(void **state)
{
    (void)state;
    struct aep_log l;
    aep_init(&l);
    add_screen(&l, T0, SCREEN_ON);
    add_screen(&l, T0 + 10, SCREEN_UNLOCKED);
    add_screen(&l, T0 + 20, SCREEN_LOCKED); /* 20 ms after the ON, after the UNLOCK */
    add_app(&l, T0 + 1 * SEC, "com.a", 1);
    add_screen(&l, T0 + 2 * SEC, SCREEN_OFF);
    /* the LOCK follows the UNLOCK, not the ON: it is kept and breaks the unlock */
    struct got g = walk(&l, INT64_MAX);
    assert_int_equal(g.n_app, 0);
    aep_release(&l);

    aep_init(&l);
    add_screen(&l, T0, SCREEN_UNLOCKED);
    add_screen(&l, T0 + 1 * SEC, SCREEN_ON);
    add_app(&l, T0 + 1 * SEC + 10, "com.a", 1);
    add_screen(&l, T0 + 1 * SEC + 20, SCREEN_LOCKED); /* 20 ms after the ON: dropped */
    add_screen(&l, T0 + 3 * SEC, SCREEN_OFF);
    aep_trim(&l, T0 + 1 * SEC + 15); /* the UNLOCK is still open there: kept */
    g = walk(&l, INT64_MAX);
    assert_int_equal(g.n_app, 1);
    assert_ep(&g.app[0], T0 + 1 * SEC + 10, T0 + 3 * SEC);
    aep_release(&l);
}

static void test_groups_from_include_exclude_and_intervention(void **state)
{
    (void)state;
    conf.n_app_exclude = 2;
    snprintf(conf.app_exclude[0], sizeof conf.app_exclude[0], "com.android.systemui");
    snprintf(conf.app_exclude[1], sizeof conf.app_exclude[1], "com.aware."); /* prefix */
    struct aep_log l;
    aep_init(&l);
    add_screen(&l, T0, SCREEN_UNLOCKED);
    add_app(&l, T0 + 1 * SEC, "com.android.systemui", 1);
    add_app(&l, T0 + 2 * SEC, "com.aware.plugin.fitbit", 1);
    add_app(&l, T0 + 3 * SEC, "com.awarex", 1);          /* not under the prefix */
    add_app(&l, T0 + 4 * SEC, "org.example.mind", 1);
    add_app(&l, T0 + 5 * SEC, "org.example.mind.x", 1);  /* intervention ids are exact */
    add_screen(&l, T0 + 6 * SEC, SCREEN_OFF);
    struct got g = walk(&l, INT64_MAX);
    assert_int_equal(g.n_app, 5);
    const unsigned want[5] = {0, 0, AEP_IN_ALL, AEP_IN_ALL | AEP_INTERVENTION, AEP_IN_ALL};
    for (int i = 0; i < 5; i++)
        assert_int_equal(g.app[i].flags, want[i]);
    aep_release(&l);

    conf.n_app_exclude = 0;
    conf.n_app_include = 1;
    snprintf(conf.app_include[0], sizeof conf.app_include[0], "com.awarex");
    aep_init(&l);
    add_screen(&l, T0, SCREEN_UNLOCKED);
    add_app(&l, T0 + 1 * SEC, "com.awarex", 1);
    add_app(&l, T0 + 2 * SEC, "org.example.mind", 1);
    add_screen(&l, T0 + 3 * SEC, SCREEN_OFF);
    g = walk(&l, INT64_MAX);
    assert_int_equal(g.app[0].flags, AEP_IN_ALL);
    assert_int_equal(g.app[1].flags, AEP_INTERVENTION); /* the include list is for `all` */
    aep_release(&l);
    conf.n_app_include = 0;
}

static void test_bounds_are_errors_not_crashes(void **state)
{
    (void)state;
    struct aep_log l;
    aep_init(&l);
    struct event e;
    memset(&e, 0, sizeof e);
    e.type = EV_APP;
    e.u.app.foreground = 1;
    char name[32];
    for (int i = 0; i < AEP_MAX_APPS; i++) {
        snprintf(e.u.app.app, sizeof e.u.app.app, "app.%d", i);
        e.ts = T0 + i;
        assert_int_equal(aep_add(&l, &e, &conf, NULL, 100000), 1);
    }
    snprintf(name, sizeof name, "app.%d", AEP_MAX_APPS);
    snprintf(e.u.app.app, sizeof e.u.app.app, "%s", name);
    assert_int_equal(aep_add(&l, &e, &conf, NULL, 100000), -E2BIG);
    snprintf(e.u.app.app, sizeof e.u.app.app, "app.7"); /* a known app is still fine */
    assert_int_equal(aep_add(&l, &e, &conf, NULL, 100000), 1);
    assert_int_equal(aep_add(&l, &e, &conf, NULL, l.n), -E2BIG); /* max_events */
    e.type = EV_BATTERY; /* not kept */
    assert_int_equal(aep_add(&l, &e, &conf, NULL, 100000), 0);
    aep_release(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_episode_runs_to_next_app_or_the_off, setup),
        cmocka_unit_test_setup(test_foreground_with_screen_off_starts_no_episode, setup),
        cmocka_unit_test_setup(test_repeated_foreground_continues_and_background_ends, setup),
        cmocka_unit_test_setup(test_unlock_without_off_has_no_app_episodes, setup),
        cmocka_unit_test_setup(test_lock_just_after_on_is_dropped_as_in_screen, setup),
        cmocka_unit_test_setup(test_ties_put_screen_first_whatever_the_arrival, setup),
        cmocka_unit_test_setup(test_late_insertion_equals_in_order, setup),
        cmocka_unit_test_setup(test_open_unlock_and_walk_bound, setup),
        cmocka_unit_test_setup(test_walk_from_a_later_start_sees_what_overlaps_it, setup),
        cmocka_unit_test_setup(test_trim_keeps_an_unlock_open_at_the_cut, setup),
        cmocka_unit_test_setup(test_trim_keeps_the_screen_event_rule_1_looks_at, setup),
        cmocka_unit_test_setup(test_groups_from_include_exclude_and_intervention, setup),
        cmocka_unit_test_setup(test_bounds_are_errors_not_crashes, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
