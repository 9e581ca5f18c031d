/* Record serialisation: fmt_number's integer path, shortest round-trip form and its cache,
 * and the epoch record's extra fields. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline/record.h"

static const char *fmt(double v)
{
    static char buf[64];
    assert_true(fmt_number(v, buf, sizeof buf) > 0);
    return buf;
}

static void test_integers(void **state)
{
    (void)state;
    assert_string_equal(fmt(0), "0");
    assert_string_equal(fmt(-0.0), "0");
    assert_string_equal(fmt(7), "7");
    assert_string_equal(fmt(-42), "-42");
    assert_string_equal(fmt(1440), "1440");
    assert_string_equal(fmt(9007199254740991.0), "9007199254740991");
    assert_string_equal(fmt(-9007199254740991.0), "-9007199254740991");
    assert_string_equal(fmt(9007199254740992.0), "9007199254740992"); /* shortest path */
    assert_string_equal(fmt(1e300), "1e+300");
}

static void test_shortest_round_trip(void **state)
{
    (void)state;
    assert_string_equal(fmt(0.1), "0.1");
    assert_string_equal(fmt(-2.5), "-2.5");
    assert_string_equal(fmt(NAN), "null");
    assert_string_equal(fmt(INFINITY), "null");
    /* many values, each formatted twice (the second from the cache), must read back exactly
     * and be the same string both times, whatever other values share their cache slot */
    uint64_t r = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        double v = (double)(r >> 11) / 9007199254740992.0 * 1000.0 - 500.0;
        char a[64], b[64];
        assert_true(fmt_number(v, a, sizeof a) > 0);
        assert_true(strtod(a, NULL) == v);
        assert_true(fmt_number(v, b, sizeof b) > 0);
        assert_string_equal(a, b);
        /* never longer than the 17-digit form */
        char c[64];
        snprintf(c, sizeof c, "%.17g", v);
        assert_true(strlen(a) <= strlen(c));
    }
}

static void test_nospace(void **state)
{
    (void)state;
    char buf[4];
    assert_int_equal(fmt_number(12345, buf, sizeof buf), -ENOSPC);
    assert_int_equal(fmt_number(0.123456, buf, sizeof buf), -ENOSPC);
    assert_int_equal(fmt_number(0.123456, buf, sizeof buf), -ENOSPC); /* cached, still too long */
    assert_int_equal(fmt_number(123, buf, sizeof buf), 3);
}

static void test_epoch_record(void **state)
{
    (void)state;
    struct epoch_extra x = {.wear = 1, .sleep = -1, .has_axes = 1, .axes = {3, 5552, 0.5}};
    struct feature_record r = {
        .participant = "p01", .feature = "act.epoch", .window = WIN_EPOCH, .start = 60000,
        .end = 120000, .tz = "UTC", .has_value = 1, .value = 5552, .unit = "count",
        .coverage = 1, .revision = 0, .epoch = &x,
    };
    strcpy(r.local_date, "1970-01-01");
    char buf[512];
    assert_true(record_to_json(&r, buf, sizeof buf) > 0);
    assert_string_equal(buf,
                        "{\"participant\":\"p01\",\"feature\":\"act.epoch\",\"window\":\"epoch\","
                        "\"start\":60000,\"end\":120000,\"local_date\":\"1970-01-01\",\"tz\":\"UTC\","
                        "\"value\":5552,\"unit\":\"count\",\"coverage\":1,\"revision\":0,"
                        "\"wear\":1,\"sleep\":null,\"axes\":[3,5552,0.5]}");
    r.epoch = NULL;
    assert_true(record_to_json(&r, buf, sizeof buf) > 0);
    assert_null(strstr(buf, "wear"));
    /* strings are escaped as JSON needs, runs of plain characters copied whole */
    r.feature = "plain\"quote\\back\001ctl-end";
    assert_true(record_to_json(&r, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "\"feature\":\"plain\\\"quote\\\\back\\u0001ctl-end\","));
    /* too small a buffer for a long plain run */
    assert_int_equal(record_to_json(&r, buf, 40), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_shortest_round_trip),
        cmocka_unit_test(test_nospace),
        cmocka_unit_test(test_epoch_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
