/* Record serialisation: fmt_number's integer path, fmt_u64, shortest round-trip form and its
 * cache, and the epoch record's extra fields. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
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

/* The reference: what fmt_number() wrote before its integer arithmetic (pipeline/record.c),
 * the first of %.15g..%.17g that strtod() reads back as v. */
static const char *by_printf(double v, char *buf, size_t cap)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, cap, "%.0f", v == 0 ? 0.0 : v);
        return buf;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

static uint64_t xorshift(uint64_t *r)
{
    *r ^= *r << 13, *r ^= *r >> 7, *r ^= *r << 17;
    return *r;
}

static double with_bits(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static double nearby(double v, int ulps)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return with_bits(bits + (uint64_t)(int64_t)ulps);
}

/* The same text as the printf loop, on values of every kind the integer arithmetic must get
 * right: any bits, decimals of 1 to 17 digits, a few ulps around powers of ten (where the
 * exponent and %g's layout change) and of two (where the gap below v halves), dyadic values
 * whose decimal expansion ends in 5 (exact ties, rounded to even), and ratios. */
static void test_shortest_matches_printf(void **state)
{
    (void)state;
    uint64_t r = 0x2545f4914f6cdd1dULL;
    char a[64], b[64];
    long n = 0;
    for (int i = 0; i < 120000; i++) {
        uint64_t x = xorshift(&r);
        double v;
        switch (i % 6) {
        case 0: v = with_bits(x); break;
        case 1: {
            uint64_t lim = 1;
            for (int k = (int)(x % 17); k >= 0; k--)
                lim *= 10;
            v = (double)(xorshift(&r) % lim) / pow(10, (double)((x >> 8) % 22));
            break;
        }
        case 2: v = nearby(pow(10, (double)((int)(x % 22) - 6)), (int)((x >> 8) % 33) - 16); break;
        case 3: v = nearby(ldexp(1, (int)(x % 72) - 20), (int)((x >> 8) % 17) - 8); break;
        case 4: /* few significant bits: exact decimal ties */
            v = ldexp((double)((xorshift(&r) >> (12 + x % 50)) | 1), -(int)((x >> 8) % 70));
            break;
        default: v = (double)(x % 100000) / (double)(1 + (x >> 20) % 100000); break;
        }
        if (x >> 63)
            v = -v;
        if (!isfinite(v))
            continue;
        assert_true(fmt_number(v, a, sizeof a) > 0);
        if (strcmp(a, by_printf(v, b, sizeof b)) != 0)
            fail_msg("%.17g (bits %016llx): \"%s\", printf loop \"%s\"", v,
                     (unsigned long long)x, a, b);
        n++;
    }
    assert_true(n > 100000);
    /* hand-picked: ties at 15 digits, rounding up to the next power of ten, the edges of
     * the range done without printf, and the forms of %g (0x1.4f8b588e368f0p-17 is
     * nextafter(1e-5, 0), written out so that the initializer stays a constant) */
    static const double picked[] = {
        0.1, 0.2, 0.3, 0.30000000000000004, 1.0 / 3, 2.0 / 3, 0.5, 0.25, 0.125, 1e-5,
        0x1.4f8b588e368f0p-17, 1e-4, 0.0001234, 0.00001234, 999999999999999.9, 99999.99999999999,
        9.999999999999999e14, 1e15 - 0.5, 1e15 + 0.5, 123456789012.34567, 5e-324, 1e-300,
        1.7976931348623157e308, 9.5367431640625e-07, 1.0000000000000002, 0.9999999999999999,
        4503599627370495.5, 2251799813685247.75, 1.5, 2.5, 0.015, 0.045, 1e14 + 0.25,
    };
    for (size_t i = 0; i < sizeof picked / sizeof picked[0]; i++) {
        for (int sign = 1; sign >= -1; sign -= 2) {
            double v = sign * picked[i];
            assert_true(fmt_number(v, a, sizeof a) > 0);
            assert_string_equal(a, by_printf(v, b, sizeof b));
        }
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

/* Times and revisions at every length and at int64's limits; strings with a character to
 * escape at every position of every length up to 24 (runs found eight bytes at a time). */
static void test_integers_and_strings_in_records(void **state)
{
    (void)state;
    static const int64_t times[] = {
        0, 1, 9, 10, 99, 100, 101, 999, 1000, 12345, 1583470800000LL, -1, -10, -99, -100,
        -1583470800000LL, INT64_MAX, INT64_MIN, INT64_MIN + 1, 1000000000000000000LL,
        999999999999999999LL,
    };
    struct feature_record r = {
        .participant = "p01", .feature = "f", .window = WIN_DAY, .has_value = 1, .value = 1,
        .unit = "count", .coverage = 1,
    };
    char buf[1024], want[1024], text[64], esc[256];
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        r.start = times[i];
        r.end = times[i] == INT64_MIN ? INT64_MAX : -times[i];
        r.revision = (int)(times[i] % 1000);
        assert_true(record_to_json(&r, buf, sizeof buf) > 0);
        snprintf(want, sizeof want, "\"start\":%lld,\"end\":%lld,", (long long)r.start,
                 (long long)r.end);
        assert_non_null(strstr(buf, want));
        snprintf(want, sizeof want, "\"revision\":%d}", r.revision);
        assert_non_null(strstr(buf, want));
    }
    static const char specials[] = {'"', '\\', '\001', '\037', '\n', ' ', '\177'};
    for (size_t len = 1; len <= 24; len++) {
        for (size_t k = 0; k < sizeof specials; k++) {
            for (size_t at = 0; at < len; at++) {
                size_t e = 0;
                for (size_t i = 0; i < len; i++) {
                    char c = i == at ? specials[k] : (char)('a' + i % 26);
                    text[i] = c;
                    if (c == '"' || c == '\\') {
                        esc[e++] = '\\';
                        esc[e++] = c;
                    } else if ((unsigned char)c < 0x20) {
                        e += (size_t)snprintf(esc + e, sizeof esc - e, "\\u%04x", c);
                    } else {
                        esc[e++] = c;
                    }
                }
                text[len] = 0;
                esc[e] = 0;
                r.feature = text;
                assert_true(record_to_json(&r, buf, sizeof buf) > 0);
                snprintf(want, sizeof want, "\"feature\":\"%s\",", esc);
                if (!strstr(buf, want))
                    fail_msg("%s does not contain %s", buf, want);
            }
        }
    }
}

/* buf (cap bytes, '#' before the call) holds want as its first n bytes and nothing after. */
static void check_digits(const char *buf, size_t cap, size_t n, const char *want)
{
    assert_int_equal(n, strlen(want));
    assert_memory_equal(buf, want, n);
    for (size_t j = n; j < cap; j++)
        assert_int_equal(buf[j], '#');
}

/* fmt_u64: every digit count, both ends of the range, no NUL written, nothing past them. */
static void test_u64_digits(void **state)
{
    (void)state;
    char buf[FMT_U64_MAX + 4], want[32];
    uint64_t cases[42];
    size_t n_cases = 0;
    cases[n_cases++] = 0;
    uint64_t p = 1; /* 10^(d-1): the smallest d-digit value; 10^d - 1 the largest */
    for (int d = 1; d <= 20; d++, p *= 10) {
        cases[n_cases++] = p;
        cases[n_cases++] = d < 20 ? p * 10 - 1 : UINT64_MAX;
    }
    for (size_t k = 0; k < n_cases; k++) {
        memset(buf, '#', sizeof buf);
        snprintf(want, sizeof want, "%" PRIu64, cases[k]);
        check_digits(buf, sizeof buf, fmt_u64(cases[k], buf), want);
    }
    memset(buf, '#', sizeof buf);
    assert_int_equal(fmt_u64(UINT64_MAX, buf), 20);
    assert_memory_equal(buf, "18446744073709551615", 20);
    /* fmt_i64: the sign, and INT64_MIN, whose magnitude has no int64_t */
    static const int64_t ic[] = {0, -1, 1, -9, -10, -99, -100, INT64_MAX, INT64_MIN,
                                 INT64_MIN + 1, -1234567890123LL};
    char ibuf[FMT_I64_MAX + 4];
    for (size_t k = 0; k < sizeof ic / sizeof ic[0]; k++) {
        memset(ibuf, '#', sizeof ibuf);
        snprintf(want, sizeof want, "%" PRId64, ic[k]);
        check_digits(ibuf, sizeof ibuf, fmt_i64(ic[k], ibuf), want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_u64_digits),
        cmocka_unit_test(test_shortest_round_trip),
        cmocka_unit_test(test_shortest_matches_printf),
        cmocka_unit_test(test_nospace),
        cmocka_unit_test(test_epoch_record),
        cmocka_unit_test(test_integers_and_strings_in_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
