/* The nudge engine at the pipeline level: the late flag from the hub clock, three-valued
 * conditions, personal baselines, the randomisation draw, the rule-set checks, and that the
 * decisions do not depend on how events are batched into the pipeline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline/nudge.h"
#include "pipeline/pipeline.h"

#define T0 1772323200000LL /* 2026-03-01 00:00 UTC */
#define HOUR 3600000LL
#define DAY (24 * HOUR)

struct out {
    char (*lines)[2048];
    size_t n, cap;
};

static int sink(void *ud, const struct feature_record *r)
{
    struct out *o = ud;
    if (r->nudge && o->n < o->cap)
        record_to_json(r, o->lines[o->n++], 2048);
    return 0;
}

static struct out *out_new(void)
{
    struct out *o = calloc(1, sizeof *o);
    o->cap = 512;
    o->lines = calloc(o->cap, sizeof *o->lines);
    return o;
}

static void out_free(struct out *o)
{
    free(o->lines);
    free(o);
}

static struct event battery(int64_t seq, int64_t ts)
{
    struct event e;
    memset(&e, 0, sizeof e);
    snprintf(e.participant, sizeof e.participant, "p01");
    snprintf(e.source, sizeof e.source, "phone");
    e.seq = seq;
    e.has_seq = 1;
    e.ts = ts;
    e.type = EV_BATTERY;
    e.u.battery.pct = 50;
    return e;
}

/* an hourly battery heartbeat over [from, to), then the end of input */
static void hourly_then_finish(struct pipeline *pl, int64_t from, int64_t to)
{
    int64_t seq = 1;
    for (int64_t t = from; t < to; t += HOUR) {
        struct event e = battery(seq++, t);
        assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    }
    pipeline_finish(pl);
}

/* one comparison: FEATURE OP VALUE, or FEATURE rel OP VALUE from median N d */
static struct nudge_node cmp_node(const char *feature, int rel, int days, int cmp, double v)
{
    return (struct nudge_node){.kind = NUDGE_CMP, .a = -1, .b = -1, .feature = feature,
                               .rel = rel, .median_days = days, .cmp = cmp, .value = v};
}

static struct nudge_rule_conf rule(const char *name, const struct nudge_node *nodes, size_t n)
{
    return (struct nudge_rule_conf){
        .name = name, .message = "m", .probability = 1, .max_per_day = 100,
        .max_per_week = 700, .escalate_to = -1, .escalate_after_ms = DAY,
        .repeat_unanswered = 1, .n_nodes = n, .root = (int)n - 1, .nodes = nodes,
    };
}

static struct pipeline *new_pl(struct out *o, const struct nudge_rule_conf *rules, size_t n)
{
    struct pipeline_conf c;
    pipeline_conf_defaults(&c);
    c.nudge.seed = 42;
    c.nudge.rules = rules;
    c.nudge.n_rules = n;
    int err = 0;
    struct pipeline *pl = pipeline_new(&c, sink, o, &err);
    assert_non_null(pl);
    return pl;
}

static int count(const struct out *o, const char *needle)
{
    int n = 0;
    for (size_t i = 0; i < o->n; i++)
        n += strstr(o->lines[i], needle) != NULL;
    return n;
}

/* A decision is late when the data that lets it be made reached the hub late_after (6 h) or
 * more after the decision fell due: here days 1-3 arrive as they happen, then the hub is
 * "down" and days 4-6 arrive in one go at day 7 12:00. */
static void test_late_flag_follows_the_hub_clock(void **state)
{
    (void)state;
    struct nudge_node n[] = {cmp_node("yield.phone", NUDGE_VALUE, 0, NUDGE_GE, 0)};
    struct nudge_rule_conf r = rule("always", n, 1);
    struct out *o = out_new();
    struct pipeline *pl = new_pl(o, &r, 1);
    int64_t seq = 1;
    for (int64_t t = T0; t < T0 + 3 * DAY + HOUR; t += HOUR) {
        pipeline_set_clock(pl, t + 1000);
        struct event e = battery(seq++, t);
        assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    }
    /* days 1 and 2 decided at their ends (day 3's end is not yet past the watermark) */
    assert_int_equal(o->n, 2);
    assert_int_equal(count(o, "\"late\":false"), 2);
    for (int64_t t = T0 + 3 * DAY + HOUR; t < T0 + 6 * DAY + HOUR; t += HOUR) {
        pipeline_set_clock(pl, T0 + 6 * DAY + 12 * HOUR);
        struct event e = battery(seq++, t);
        assert_int_equal(pipeline_push(pl, &e), PIPE_ACCEPTED);
    }
    /* days 3, 4 and 5 close on the backlog: the hub clock is 2.5 d past day 3's end */
    assert_int_equal(o->n, 5);
    assert_int_equal(count(o, "\"late\":true"), 3);
    assert_non_null(strstr(o->lines[2], "\"late\":true"));
    pipeline_free(pl);
    out_free(o);
}

/* Without pipeline_set_clock (replay of a recording) events arrive at their own time. */
static void test_replay_without_clock_is_never_late(void **state)
{
    (void)state;
    struct nudge_node n[] = {cmp_node("yield.phone", NUDGE_VALUE, 0, NUDGE_GE, 0)};
    struct nudge_rule_conf r = rule("always", n, 1);
    struct out *o = out_new();
    struct pipeline *pl = new_pl(o, &r, 1);
    hourly_then_finish(pl, T0, T0 + 6 * DAY);
    assert_int_equal(o->n, 6);
    assert_int_equal(count(o, "\"late\":false"), 6);
    pipeline_free(pl);
    out_free(o);
}

/* Unknown is neither true nor false: `F > 0 or G >= 0` is true when G holds although F (never
 * emitted) is unknown; `F > 0 and G >= 0` is unknown: no decision. */
static void test_three_valued_conditions(void **state)
{
    (void)state;
    struct nudge_node b[] = {cmp_node("nosuch.feature", NUDGE_VALUE, 0, NUDGE_GT, 0),
                             cmp_node("yield.phone", NUDGE_VALUE, 0, NUDGE_GE, 0),
                             {.kind = NUDGE_OR, .a = 0, .b = 1}};
    struct nudge_node c[] = {cmp_node("nosuch.feature", NUDGE_VALUE, 0, NUDGE_GT, 0),
                             cmp_node("yield.phone", NUDGE_VALUE, 0, NUDGE_GE, 0),
                             {.kind = NUDGE_AND, .a = 0, .b = 1}};
    struct nudge_rule_conf r[] = {rule("or-true", b, 3), rule("and-unknown", c, 3)};
    struct out *o = out_new();
    struct pipeline *pl = new_pl(o, r, 2);
    hourly_then_finish(pl, T0, T0 + 3 * DAY);
    assert_int_equal(count(o, "\"rule\":\"or-true\""), 3);
    assert_int_equal(count(o, "\"rule\":\"and-unknown\""), 0);
    assert_non_null(strstr(o->lines[0],
                           "{\"feature\":\"nosuch.feature\",\"value\":null,\"result\":null}"));
    pipeline_free(pl);
    out_free(o);
}

static void test_missing_feature_is_unknown(void **state)
{
    (void)state;
    struct nudge_node a[] = {cmp_node("nosuch.feature", NUDGE_VALUE, 0, NUDGE_GT, 0),
                             {.kind = NUDGE_NOT, .a = 0, .b = -1}};
    struct nudge_node b[] = {cmp_node("nosuch.feature", NUDGE_VALUE, 0, NUDGE_GT, 0),
                             cmp_node("yield.phone", NUDGE_VALUE, 0, NUDGE_LT, 0),
                             {.kind = NUDGE_OR, .a = 0, .b = 1}};
    struct nudge_rule_conf r[] = {rule("not-missing", a, 2), rule("or-false", b, 3)};
    struct out *o = out_new();
    struct pipeline *pl = new_pl(o, r, 2);
    hourly_then_finish(pl, T0, T0 + 3 * DAY);
    assert_int_equal(o->n, 0); /* unknown, and unknown or false: no decision at all */
    pipeline_free(pl);
    out_free(o);
}

/* `yield.phone rises > X from median 3d`: no baseline until at least 2 of the 3 previous days
 * have a value; then x - median. A heartbeat every hour gives 24/1440; doubling it on day 6
 * gives 48/1440, a rise of 24/1440 over the median. */
static void test_baseline_needs_half_the_days(void **state)
{
    (void)state;
    struct nudge_node n[] = {cmp_node("yield.phone", NUDGE_RISES, 3, NUDGE_GT, 0.01)};
    struct nudge_rule_conf r = rule("rise", n, 1);
    struct out *o = out_new();
    struct pipeline *pl = new_pl(o, &r, 1);
    int64_t seq = 1;
    for (int64_t t = T0; t < T0 + 7 * DAY; t += HOUR / 2) {
        int day = (int)((t - T0) / DAY);
        if (day != 5 && (t - T0) % HOUR != 0)
            continue; /* day 6 (index 5) has twice as many */
        struct event e = battery(seq++, t);
        pipeline_push(pl, &e);
    }
    pipeline_finish(pl);
    assert_int_equal(o->n, 1);
    assert_non_null(strstr(o->lines[0], "\"local_date\":\"2026-03-07\""));
    assert_non_null(strstr(o->lines[0], "\"median\":0.016666666666666666"));
    pipeline_free(pl);
    out_free(o);
}

/* Feeding the same events with the hub clock set per event, or never, or with a reordering
 * inside the lateness gives the same decisions (flags aside, the clock here equals ts). */
static void test_decisions_do_not_depend_on_batching(void **state)
{
    (void)state;
    struct nudge_node n[] = {cmp_node("yield.phone", NUDGE_VALUE, 0, NUDGE_GE, 0)};
    struct nudge_rule_conf r = rule("always", n, 1);
    r.probability = 0.5;
    struct out *o1 = out_new(), *o2 = out_new();
    struct pipeline *a = new_pl(o1, &r, 1), *b = new_pl(o2, &r, 1);
    int64_t seq = 1;
    for (int64_t t = T0; t < T0 + 20 * DAY; t += HOUR, seq += 2) {
        struct event e1 = battery(seq, t), e2 = battery(seq + 1, t + 60000);
        pipeline_push(a, &e1);
        pipeline_push(a, &e2);
        pipeline_set_clock(b, t + 60000);
        pipeline_push(b, &e2); /* swapped: within the 10 min lateness */
        pipeline_push(b, &e1);
    }
    pipeline_finish(a);
    pipeline_finish(b);
    assert_int_equal(o1->n, 20);
    assert_int_equal(o2->n, o1->n);
    for (size_t i = 0; i < o1->n; i++)
        assert_string_equal(o1->lines[i], o2->lines[i]);
    assert_true(count(o1, "\"decision\":\"send\"") > 0);
    assert_true(count(o1, "\"decision\":\"withhold\"") > 0);
    pipeline_free(a);
    pipeline_free(b);
    out_free(o1);
    out_free(o2);
}

/* No decision points after the participant's study_end (local date): days 03-01..03-05 are
 * decided at 03-02..03-06 00:00 local; with study_end 03-03 only the decisions dated up to
 * 03-03 are made (03-02 and 03-03 00:00 Europe/Berlin), and the daily nudge features go on. */
static void test_no_decisions_after_study_end(void **state)
{
    (void)state;
    struct nudge_node n[] = {cmp_node("yield.phone", NUDGE_VALUE, 0, NUDGE_GE, 0)};
    struct nudge_rule_conf r = rule("always", n, 1);
    struct pipeline_participant_conf part = {.id = "p01", .tz = "Europe/Berlin",
                                             .prescribed_days_per_week = 7, .has_study_end = 1,
                                             .study_end_day = 20515 /* 2026-03-03 */};
    struct pipeline_conf c;
    pipeline_conf_defaults(&c);
    c.nudge.seed = 42;
    c.nudge.rules = &r;
    c.nudge.n_rules = 1;
    c.participants = &part;
    c.n_participants = 1;
    struct out *o = out_new();
    int err = 0;
    struct pipeline *pl = pipeline_new(&c, sink, o, &err);
    assert_non_null(pl);
    hourly_then_finish(pl, T0 - HOUR, T0 + 5 * DAY - HOUR);
    assert_int_equal(o->n, 2);
    assert_non_null(strstr(o->lines[0], "\"local_date\":\"2026-03-02\""));
    assert_non_null(strstr(o->lines[1], "\"local_date\":\"2026-03-03\""));
    pipeline_free(pl);
    out_free(o);
}

/* reengaged_when: rule "a" (always true) escalates to "b" 24 h after each nudge unless
 * `yield.phone > 0.02` turns true first. Hourly heartbeats give 24/1440 = 0.0167; 03-03 has
 * one every 30 min, 0.033. "a" sends at each day close, 03-02 .. 03-06 00:00. The nudge of
 * 03-03 00:00 is followed: 03-03's yield, judged at the close at 03-04 00:00 (the same instant
 * as its escalation, and data comes before timers), is above 0.02. The others are not: "b" at
 * 03-03, 03-05 and 03-06 00:00; the escalation of 03-06's nudge is after the input. */
static void test_reengaged_when_stops_escalation(void **state)
{
    (void)state;
    struct nudge_node n[] = {cmp_node("yield.phone", NUDGE_VALUE, 0, NUDGE_GE, 0)};
    struct nudge_node out[] = {cmp_node("yield.phone", NUDGE_VALUE, 0, NUDGE_GT, 0.02)};
    struct nudge_rule_conf r[2] = {rule("a", n, 1), rule("b", n, 1)};
    r[0].escalate_to = 1;
    r[0].n_out_nodes = 1;
    r[0].out_nodes = out;
    r[0].out_root = 0;
    struct out *o = out_new();
    struct pipeline *pl = new_pl(o, r, 2);
    int64_t seq = 1;
    for (int64_t t = T0; t < T0 + 5 * DAY; t += HOUR / 2) {
        if ((t - T0) / DAY != 2 && (t - T0) % HOUR != 0)
            continue;
        struct event e = battery(seq++, t);
        pipeline_push(pl, &e);
    }
    pipeline_finish(pl);
    assert_int_equal(count(o, "\"rule\":\"a\""), 5);
    assert_int_equal(count(o, "\"rule\":\"b\""), 3);
    assert_int_equal(count(o, "\"escalated_from\":\"a\""), 3);
    int at_0304 = 0; /* 03-04 00:00 UTC */
    for (size_t i = 0; i < o->n; i++)
        at_0304 += strstr(o->lines[i], "\"rule\":\"b\"") &&
                   strstr(o->lines[i], "\"ts\":1772582400000,");
    assert_int_equal(at_0304, 0);
    pipeline_free(pl);
    out_free(o);
}

static void test_draw_is_a_pure_function(void **state)
{
    (void)state;
    double u = nudge_draw(1, "p01", "r", T0);
    assert_true(u >= 0 && u < 1);
    assert_true(nudge_draw(1, "p01", "r", T0) == u);
    assert_true(nudge_draw(2, "p01", "r", T0) != u);
    assert_true(nudge_draw(1, "p02", "r", T0) != u);
    assert_true(nudge_draw(1, "p01", "s", T0) != u);
    assert_true(nudge_draw(1, "p01", "r", T0 + 1) != u);
    /* uniform enough: 100,000 draws over 10 bins, each within 5 % of 10,000 */
    int bins[10] = {0};
    for (int i = 0; i < 100000; i++)
        bins[(int)(nudge_draw(7, "p", "r", T0 + i * 60000LL) * 10)]++;
    for (int i = 0; i < 10; i++)
        assert_in_range(bins[i], 9500, 10500);
}

static void test_rule_set_checks(void **state)
{
    (void)state;
    const char *why = NULL;
    struct nudge_node ok[] = {cmp_node("a.b", NUDGE_VALUE, 0, NUDGE_GT, 0)};
    struct nudge_node parent_first[] = {{.kind = NUDGE_NOT, .a = 1, .b = -1},
                                        cmp_node("a.b", NUDGE_VALUE, 0, NUDGE_GT, 0)};
    struct nudge_node bad_days[] = {cmp_node("a.b", NUDGE_SHIFTS, 2, NUDGE_GT, 0)};
    struct nudge_rule_conf r = rule("r", ok, 1);
    struct nudge_conf c = {.n_rules = 1, .rules = &r};
    assert_int_equal(nudge_conf_check(&c, &why), 0);
    r = rule("r", parent_first, 2);
    r.root = 0;
    assert_int_equal(nudge_conf_check(&c, &why), -22);
    r = rule("r", bad_days, 1);
    assert_int_equal(nudge_conf_check(&c, &why), -22);
    r = rule("r", ok, 1);
    r.escalate_to = 0; /* itself */
    assert_int_equal(nudge_conf_check(&c, &why), -22);
    r = rule("r", ok, 1);
    r.probability = 1.5;
    assert_int_equal(nudge_conf_check(&c, &why), -22);
    assert_non_null(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_late_flag_follows_the_hub_clock),
        cmocka_unit_test(test_replay_without_clock_is_never_late),
        cmocka_unit_test(test_three_valued_conditions),
        cmocka_unit_test(test_missing_feature_is_unknown),
        cmocka_unit_test(test_baseline_needs_half_the_days),
        cmocka_unit_test(test_decisions_do_not_depend_on_batching),
        cmocka_unit_test(test_no_decisions_after_study_end),
        cmocka_unit_test(test_reengaged_when_stops_escalation),
        cmocka_unit_test(test_draw_is_a_pure_function),
        cmocka_unit_test(test_rule_set_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
