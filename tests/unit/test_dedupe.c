/* Duplicate detection per source (pipeline/sources.c): the compact gap list and the bitmap it
 * switches to must answer exactly as the documented rule (docs/events.md): a (source, seq) pair
 * seen before is a duplicate; seqs more than DEDUPE_BITS below the highest count as seen. A
 * plain model of that rule is compared with the real thing on many random streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline/sources.h"

#define SPAN 400000 /* seqs used by the streams */

struct model {
    uint8_t *seen;
    int64_t hwm;
    int any;
};

static int model_seen(struct model *m, int64_t seq)
{
    if (!m->any || seq > m->hwm) {
        if (m->any && seq - m->hwm >= DEDUPE_BITS)
            memset(m->seen, 0, SPAN); /* everything older is outside the window anyway */
        m->any = 1;
        m->hwm = seq;
        m->seen[seq] = 1;
        return 0;
    }
    if (m->hwm - seq >= DEDUPE_BITS)
        return 1;
    if (m->seen[seq])
        return 1;
    m->seen[seq] = 1;
    return 0;
}

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* One stream: mostly in order, with skips, resends of recent seqs, old seqs and jumps. */
static void run_stream(int style, size_t n, int *went_bitmap)
{
    struct source s;
    memset(&s, 0, sizeof s);
    struct model m = {calloc(SPAN, 1), 0, 0};
    assert_non_null(m.seen);
    int64_t next = (int64_t)(rnd() % 1000);
    for (size_t i = 0; i < n; i++) {
        int64_t seq;
        uint64_t r = rnd() % 100;
        if (r < 70 || next < 10)
            seq = next++;
        else if (r < 80)
            seq = (next += 1 + (int64_t)(rnd() % (style ? 40 : 3)));   /* a skip */
        else if (r < 92)
            seq = next - 1 - (int64_t)(rnd() % 50);                     /* a resend */
        else if (r < 97)
            seq = next - 1 - (int64_t)(rnd() % (DEDUPE_BITS + 5000));   /* old, near the edge */
        else
            seq = (next += (int64_t)(rnd() % (style == 2 ? DEDUPE_BITS + 10 : 500)));
        if (seq < 0)
            seq = 0;
        if (seq >= SPAN || next >= SPAN)
            break;
        int err = 0;
        int got = source_seen(&s, seq, &err);
        assert_int_equal(err, 0);
        assert_int_equal(got, model_seen(&m, seq));
    }
    *went_bitmap |= s.seen != NULL;
    free(s.seen);
    free(s.gaps);
    free(m.seen);
}

static void test_matches_the_rule(void **state)
{
    (void)state;
    int bitmap = 0;
    for (int k = 0; k < 60; k++)
        run_stream(k % 3, 20000, &bitmap);
    assert_true(bitmap); /* the many-gaps streams did switch to the bitmap */
}

static void test_in_order_stream_keeps_no_gaps(void **state)
{
    (void)state;
    struct source s;
    memset(&s, 0, sizeof s);
    int err = 0;
    for (int64_t q = 70000; q < 200000; q++)
        assert_int_equal(source_seen(&s, q, &err), 0);
    assert_int_equal(err, 0);
    assert_null(s.seen);
    assert_int_equal(s.n_gaps, 0); /* the initial window below the first seq has aged out */
    assert_int_equal(source_seen(&s, 199999, &err), 1);
    assert_int_equal(source_seen(&s, 200000 - DEDUPE_BITS - 1, &err), 1); /* below the window */
    free(s.gaps);
}

static void test_first_seq_leaves_the_window_below_unseen(void **state)
{
    (void)state;
    struct source s;
    memset(&s, 0, sizeof s);
    int err = 0;
    assert_int_equal(source_seen(&s, 100, &err), 0);
    assert_int_equal(source_seen(&s, 5, &err), 0);  /* never seen */
    assert_int_equal(source_seen(&s, 5, &err), 1);
    assert_int_equal(source_seen(&s, 0, &err), 0);
    assert_int_equal(source_seen(&s, 100, &err), 1);
    free(s.gaps);
    free(s.seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_the_rule),
        cmocka_unit_test(test_in_order_stream_keeps_no_gaps),
        cmocka_unit_test(test_first_seq_leaves_the_window_below_unseen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
