/* The pipeline's two small data structures: phone-stream coverage intervals (in-order and late
 * insertion) and the reorder buffer (FIFO + heap) against a sorted reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline/coverage.h"
#include "pipeline/reorder.h"

#define GAP 100

static void test_coverage_joins_events_closer_than_the_gap(void **state)
{
    (void)state;
    struct coverage c = {0};
    int64_t in_order[] = {0, 50, 150, 400, 450};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(coverage_add(&c, in_order[i], GAP), 0);
    /* runs [0,150] and [400,450]: the 250 ms silence is longer than the gap */
    assert_int_equal(c.n, 2);
    assert_true(c.iv[0].a == 0 && c.iv[0].b == 150 && c.iv[1].a == 400 && c.iv[1].b == 450);
    assert_true(coverage_fraction(&c, 0, 500) == 200.0 / 500.0);
    assert_true(coverage_fraction(&c, 100, 200) == 0.5);
    assert_int_equal(coverage_last(&c), 450);
    coverage_release(&c);
}

static void test_coverage_late_events_extend_or_bridge(void **state)
{
    (void)state;
    struct coverage c = {0};
    coverage_add(&c, 0, GAP);
    coverage_add(&c, 300, GAP);
    coverage_add(&c, 1000, GAP);
    assert_int_equal(c.n, 3);
    coverage_add(&c, 20, GAP); /* inside-after: extends [0,0] to [0,20] */
    assert_int_equal(c.iv[0].b, 20);
    coverage_add(&c, 220, GAP); /* within the gap of the next run only: moves its start */
    assert_int_equal(c.n, 3);
    assert_int_equal(c.iv[1].a, 220);
    coverage_add(&c, 120, GAP); /* bridges [0,20] and [220,300] */
    assert_int_equal(c.n, 2);
    assert_true(c.iv[0].a == 0 && c.iv[0].b == 300);
    coverage_add(&c, 600, GAP); /* far from both: a run of its own, in order */
    assert_int_equal(c.n, 3);
    assert_true(c.iv[1].a == 600 && c.iv[2].a == 1000);
    coverage_add(&c, -500, GAP); /* before everything */
    assert_int_equal(c.n, 4);
    assert_int_equal(c.iv[0].a, -500);
    coverage_trim(&c, 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.iv[0].a, 0);
    coverage_release(&c);
}

/* Same as building runs from the sorted event times: any insertion order gives the same runs. */
static void test_coverage_is_independent_of_arrival_order(void **state)
{
    (void)state;
    int64_t t[200];
    srand(7);
    for (int i = 0; i < 200; i++)
        t[i] = rand() % 20000;
    struct coverage a = {0}, b = {0};
    for (int i = 0; i < 200; i++)
        coverage_add(&a, t[i], GAP);
    int64_t s[200];
    memcpy(s, t, sizeof s);
    for (int i = 1; i < 200; i++) /* insertion sort: small */
        for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
            int64_t x = s[j];
            s[j] = s[j - 1];
            s[j - 1] = x;
        }
    for (int i = 0; i < 200; i++)
        coverage_add(&b, s[i], GAP);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++)
        assert_true(a.iv[i].a == b.iv[i].a && a.iv[i].b == b.iv[i].b);
    coverage_release(&a);
    coverage_release(&b);
}

static void test_reorder_pops_in_time_then_arrival_order(void **state)
{
    (void)state;
    struct reorder r = {0};
    enum { N = 5000 };
    int64_t *ts = malloc(N * sizeof *ts);
    srand(11);
    int64_t t = 0;
    for (uint64_t i = 0; i < N; i++) {
        t += rand() % 3;                          /* mostly in order, with ties */
        ts[i] = (rand() % 10 == 0) ? t - rand() % 50 : t; /* some late arrivals */
        assert_int_equal(reorder_push(&r, (struct held){ts[i], i, NULL}), 0);
        if (i % 7 == 0 && reorder_size(&r) > 100) { /* interleave pops */
            struct held a = reorder_pop(&r);
            const struct held *b = reorder_peek(&r);
            assert_true(a.ts < b->ts || (a.ts == b->ts && a.arrival < b->arrival));
        }
    }
    struct held prev = reorder_pop(&r);
    while (reorder_size(&r)) {
        struct held h = reorder_pop(&r);
        assert_true(prev.ts < h.ts || (prev.ts == h.ts && prev.arrival < h.arrival));
        prev = h;
    }
    reorder_release(&r);
    free(ts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coverage_joins_events_closer_than_the_gap),
        cmocka_unit_test(test_coverage_late_events_extend_or_bridge),
        cmocka_unit_test(test_coverage_is_independent_of_arrival_order),
        cmocka_unit_test(test_reorder_pops_in_time_then_arrival_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
