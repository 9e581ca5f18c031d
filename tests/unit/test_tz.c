/* pipeline/tz.c against the real tz database (/usr/share/zoneinfo), hand-made TZif files
 * for the POSIX footer forms and corrupt input, and glibc's localtime_r as an independent
 * oracle (only here may TZ be set: the module itself never touches it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pipeline/event.h"
#include "pipeline/tz.h"

#define ZI "/usr/share/zoneinfo"
#define HOUR_MS INT64_C(3600000)

static struct tz_db *db;  /* the system tz database */
static struct tz_db *tdb; /* hand-made files in tmpdir */

static const struct tz_zone *zone(const char *name)
{
    int err = 0;
    const struct tz_zone *z = tz_db_get(db, name, &err);
    if (!z)
        fail_msg("zone %s: %s", name, strerror(-err));
    return z;
}

static const struct tz_zone *tzone(const char *name)
{
    int err = 0;
    const struct tz_zone *z = tz_db_get(tdb, name, &err);
    if (!z)
        fail_msg("test zone %s: %s", name, strerror(-err));
    return z;
}

/* wall-clock or UTC instant in ms */
static int64_t at(int64_t y, unsigned mo, unsigned d, int hh, int mi, int ss)
{
    return (civil_to_days(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss) * 1000;
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* ---- temp tz directories ---- */

static char tmpdir[64];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup_tmp(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/test_tz.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *name, const void *buf, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_zi(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, ZI "/%s", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* Loads tmpdir/name with a fresh db (so nothing is cached); returns the error. */
static int try_load(const char *name)
{
    int err = 0;
    struct tz_db *d = tz_db_new(tmpdir);
    const struct tz_zone *z = tz_db_get(d, name, &err);
    if (z) { /* whatever was accepted must be usable without crashing */
        struct tzline l;
        struct day_window w;
        tzline_init(&l, z);
        for (int64_t t = EV_TS_MIN; t < EV_TS_MAX; t += 997 * 86400000LL) {
            (void)tz_offset(z, t);
            (void)tz_local_to_utc(z, t);
            cal_day_at(&l, t, &w);
        }
    }
    tz_db_free(d);
    return z ? 0 : err;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* A TZif file with no transitions, one time type and the given footer. */
static size_t make_tzif(unsigned char *out, char ver, int32_t utoff, const char *footer)
{
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        memset(out + n, 0, 44);
        memcpy(out + n, "TZif", 4);
        out[n + 4] = (unsigned char)ver;
        put32(out + n + 36, 1); /* typecnt */
        put32(out + n + 40, 4); /* charcnt */
        n += 44;
        put32(out + n, (uint32_t)utoff);
        out[n + 4] = 0, out[n + 5] = 0;
        memcpy(out + n + 6, "XXX", 4);
        n += 10;
    }
    n += (size_t)sprintf((char *)out + n, "\n%s\n", footer);
    return n;
}

static const struct tz_zone *footer_zone(const char *footer)
{
    static int k;
    unsigned char buf[512];
    char name[32];
    snprintf(name, sizeof name, "F%d", k++);
    write_file(name, buf, make_tzif(buf, '3', 0, footer));
    return tzone(name);
}

/* ---- calendar ---- */

static void test_civil_days_roundtrip_and_floor_div(void **state)
{
    (void)state;
    assert_int_equal(civil_to_days(1970, 1, 1), 0);
    assert_int_equal(civil_to_days(2000, 3, 1), 11017);
    assert_int_equal(civil_to_days(1900, 1, 1) * 86400000LL, EV_TS_MIN);
    assert_int_equal(civil_to_days(2200, 1, 1) * 86400000LL, EV_TS_MAX);
    assert_int_equal(civil_to_days(0, 3, 1), -719468);
    for (int64_t d = -800000; d <= 800000; d += 7) {
        int64_t y;
        unsigned m, dd;
        civil_from_days(d, &y, &m, &dd);
        assert_int_equal(civil_to_days(y, m, dd), d);
        assert_true(m >= 1 && m <= 12 && dd >= 1 && dd <= 31);
    }
    assert_int_equal(floor_div(-1, 1000), -1);
    assert_int_equal(floor_div(-1000, 1000), -1);
    assert_int_equal(floor_div(-1001, 1000), -2);
    assert_int_equal(floor_div(999, 1000), 0);
    assert_int_equal(floor_div(7, -2), -4);
    assert_int_equal(floor_mod(-1, 7), 6);
}

/* ---- New York, the RAPIDS test zone ---- */

static void day_of(const char *name, int64_t t, struct day_window *w)
{
    struct tzline l;
    tzline_init(&l, zone(name));
    cal_day_at(&l, t, w);
}

static void test_ny_spring_forward_day_is_23h(void **state)
{
    (void)state;
    struct day_window w;
    day_of("America/New_York", at(2020, 3, 8, 12, 0, 0), &w);
    assert_int_equal(w.start, 1583643600000);
    assert_int_equal(w.end, 1583726400000);
    assert_int_equal(w.end - w.start, 23 * HOUR_MS);
    assert_string_equal(w.local_date, "2020-03-08");
    assert_int_equal(w.day, civil_to_days(2020, 3, 8));
    day_of("America/New_York", w.start, &w); /* both ends are half-open */
    assert_string_equal(w.local_date, "2020-03-08");
    day_of("America/New_York", 1583726400000 - 1, &w);
    assert_string_equal(w.local_date, "2020-03-08");
}

static void test_ny_fall_back_day_is_25h(void **state)
{
    (void)state;
    struct day_window w;
    day_of("America/New_York", 1604210400000, &w); /* the second 01:00 */
    assert_int_equal(w.start, 1604203200000);
    assert_int_equal(w.end, 1604293200000);
    assert_int_equal(w.end - w.start, 25 * HOUR_MS);
    assert_string_equal(w.local_date, "2020-11-01");
    day_of("America/New_York", 1604203200000 - 1, &w);
    assert_string_equal(w.local_date, "2020-10-31");
    assert_int_equal(w.end, 1604203200000);
}

static void test_ny_offsets_switch_exactly_at_transitions(void **state)
{
    (void)state;
    const struct tz_zone *ny = zone("America/New_York");
    assert_int_equal(tz_offset(ny, 1583650800000 - 1), -18000);
    assert_int_equal(tz_offset(ny, 1583650800000), -14400);
    assert_int_equal(tz_offset(ny, 1604210400000 - 1), -14400);
    assert_int_equal(tz_offset(ny, 1604210400000), -18000);
    assert_string_equal(tz_zone_name(ny), "America/New_York");
}

static void test_local_to_utc_gap_maps_to_transition(void **state)
{
    (void)state;
    const struct tz_zone *ny = zone("America/New_York");
    assert_int_equal(tz_local_to_utc(ny, at(2020, 3, 8, 2, 30, 0)), 1583650800000);
    assert_int_equal(tz_local_to_utc(ny, at(2020, 3, 8, 2, 0, 0)), 1583650800000);
    assert_int_equal(tz_local_to_utc(ny, at(2020, 3, 8, 3, 0, 0)), 1583650800000);
    assert_int_equal(tz_local_to_utc(ny, at(2020, 3, 8, 2, 0, 0) - 1), 1583650800000 - 1);
    assert_int_equal(tz_local_to_utc(ny, at(2020, 3, 8, 3, 0, 0) + 1), 1583650800000 + 1);
}

static void test_local_to_utc_ambiguous_hour_takes_earlier(void **state)
{
    (void)state;
    const struct tz_zone *ny = zone("America/New_York");
    assert_int_equal(tz_local_to_utc(ny, at(2020, 11, 1, 1, 30, 0)), 1604208600000); /* EDT */
    assert_int_equal(tz_local_to_utc(ny, at(2020, 11, 1, 1, 0, 0)), 1604206800000);
    /* 02:00 EST comes after the whole repeated hour */
    assert_int_equal(tz_local_to_utc(ny, at(2020, 11, 1, 2, 0, 0)), 1604214000000);
    assert_int_equal(tz_local_to_utc(ny, at(2020, 11, 1, 1, 59, 59)), 1604210399000);
}

static void test_minutes_of_day_use_wall_clock(void **state)
{
    (void)state;
    const struct tz_zone *ny = zone("America/New_York");
    assert_true(cal_minutes_of_day(ny, at(2020, 3, 8, 7, 30, 0)) == 210.0);   /* 03:30 EDT */
    assert_true(cal_minutes_of_day(ny, at(2020, 11, 1, 5, 30, 0)) == 90.0);   /* 01:30 EDT */
    assert_true(cal_minutes_of_day(ny, at(2020, 11, 1, 6, 30, 0)) == 90.0);   /* 01:30 EST */
    assert_true(cal_minutes_of_day(ny, at(2020, 3, 8, 7, 30, 1) + 500) == 210.025);
    assert_true(cal_minutes_of_day(ny, at(2020, 3, 8, 5, 0, 0)) == 0.0);
}

/* ---- other zones ---- */

static void test_london_23h_and_25h_days(void **state)
{
    (void)state;
    struct day_window w;
    const struct tz_zone *z = zone("Europe/London");
    assert_int_equal(tz_offset(z, 1585443600000 - 1), 0);
    assert_int_equal(tz_offset(z, 1585443600000), 3600);
    day_of("Europe/London", at(2020, 3, 29, 12, 0, 0), &w);
    assert_int_equal(w.start, 1585440000000);
    assert_int_equal(w.end, 1585522800000);
    day_of("Europe/London", at(2020, 10, 25, 12, 0, 0), &w);
    assert_int_equal(w.start, 1603580400000);
    assert_int_equal(w.end, 1603670400000);
    assert_string_equal(w.local_date, "2020-10-25");
}

static void test_lord_howe_half_hour_dst(void **state)
{
    (void)state;
    struct day_window w;
    const struct tz_zone *z = zone("Australia/Lord_Howe");
    assert_int_equal(tz_offset(z, 1586012400000 - 1), 39600);
    assert_int_equal(tz_offset(z, 1586012400000), 37800);
    assert_int_equal(tz_offset(z, 1601739000000 - 1), 37800);
    assert_int_equal(tz_offset(z, 1601739000000), 39600);
    day_of("Australia/Lord_Howe", at(2020, 10, 4, 12, 0, 0), &w);
    assert_int_equal(w.start, 1601731800000);
    assert_int_equal(w.end, 1601816400000);
    assert_int_equal(w.end - w.start, 23 * HOUR_MS + HOUR_MS / 2);
    day_of("Australia/Lord_Howe", at(2020, 4, 5, 0, 0, 0), &w);
    assert_int_equal(w.start, 1586005200000);
    assert_int_equal(w.end, 1586093400000);
    assert_int_equal(tz_local_to_utc(z, at(2020, 10, 4, 2, 15, 0)), 1601739000000);
}

static void test_kolkata_fixed_half_hour_offset(void **state)
{
    (void)state;
    struct day_window w;
    const struct tz_zone *z = zone("Asia/Kolkata");
    assert_int_equal(tz_offset(z, at(2020, 6, 1, 0, 0, 0)), 19800);
    assert_int_equal(tz_offset(z, at(2150, 6, 1, 0, 0, 0)), 19800);
    assert_int_equal(tz_offset(z, -839030400000), 23400); /* war time, 1943 */
    day_of("Asia/Kolkata", at(2020, 6, 1, 12, 0, 0), &w);
    assert_int_equal(w.start, 1590949800000);
    assert_int_equal(w.end, 1591036200000);
}

/* Samoa skipped Friday 2011-12-30: that local day does not exist, so it has no window; the
 * window of the 29th is followed directly by that of the 31st, and a wall time on the 30th
 * maps to the instant of the jump. */
static void test_apia_skipped_day_has_no_window(void **state)
{
    (void)state;
    struct tzline l;
    struct day_window w, n;
    const struct tz_zone *z = zone("Pacific/Apia");
    tzline_init(&l, z);
    cal_day_at(&l, 1325239200000 - 1, &w);
    assert_string_equal(w.local_date, "2011-12-29");
    assert_int_equal(w.start, 1325152800000);
    assert_int_equal(w.end, 1325239200000);
    cal_day_next(&l, &w, &n);
    assert_string_equal(n.local_date, "2011-12-31");
    assert_int_equal(n.day, w.day + 2);
    assert_int_equal(n.start, 1325239200000);
    assert_int_equal(n.end, 1325325600000);
    assert_int_equal(tz_local_to_utc(z, at(2011, 12, 30, 12, 0, 0)), 1325239200000);
    assert_int_equal(tz_offset(z, 1325239200000 - 1), -36000);
    assert_int_equal(tz_offset(z, 1325239200000), 50400);
    int64_t s, e;
    cal_7d(&l, &n, &s, &e); /* the 7 dates 12-25..12-31 hold 6 real days */
    assert_int_equal(e - s, 6 * 24 * HOUR_MS);
}

/* St John's fell back from 00:01 NDT to 23:01 NST (1987-2010), so 23:01-00:00 of Nov 1 came
 * twice. Day boundaries are the first instant at or after local midnight, so the repeated
 * stretch belongs to Nov 2, which is 25 h long; minutes of day still read the wall clock. */
static void test_fall_back_across_midnight_belongs_to_next_day(void **state)
{
    (void)state;
    struct day_window w;
    const struct tz_zone *z = zone("America/St_Johns");
    const int64_t t = 1225593060000; /* 2008-11-02 02:31Z */
    assert_int_equal(tz_offset(z, t - 1), -9000);
    assert_int_equal(tz_offset(z, t), -12600);
    day_of("America/St_Johns", t - 60000, &w); /* 00:00 NDT on Nov 2 */
    assert_string_equal(w.local_date, "2008-11-02");
    assert_int_equal(w.start, 1225593000000);
    assert_int_equal(w.end, 1225683000000);
    day_of("America/St_Johns", t + 15 * 60000, &w); /* 23:16 NST, "Nov 1" again */
    assert_string_equal(w.local_date, "2008-11-02");
    assert_int_equal(w.start, 1225593000000);
    assert_true(cal_minutes_of_day(z, t + 15 * 60000) == 23 * 60 + 16);
    day_of("America/St_Johns", t - 60001, &w);
    assert_string_equal(w.local_date, "2008-11-01");
    assert_int_equal(w.start, 1225506600000);
    assert_int_equal(w.end, 1225593000000);
}

static void test_1900_and_lmt_before_first_transition(void **state)
{
    (void)state;
    struct day_window w;
    const struct tz_zone *ny = zone("America/New_York");
    assert_int_equal(tz_offset(ny, EV_TS_MIN), -18000);
    assert_int_equal(tz_offset(ny, -2840140800000), -17762); /* 1880: local mean time */
    assert_int_equal(tz_offset(ny, INT64_MIN / 2), -17762);
    day_of("America/New_York", EV_TS_MIN, &w);
    assert_string_equal(w.local_date, "1899-12-31");
    assert_int_equal(w.end, -2208970800000);
    cal_day_at(&(struct tzline){1, {EV_TS_MIN}, {ny}}, w.end, &w);
    assert_string_equal(w.local_date, "1900-01-01");
    assert_int_equal(w.end - w.start, 24 * HOUR_MS);
}

static void test_2150_uses_footer_rule(void **state)
{
    (void)state;
    struct day_window w;
    const struct tz_zone *ny = zone("America/New_York");
    assert_int_equal(tz_offset(ny, 5695920000000), -14400);
    assert_int_equal(tz_offset(ny, 5680281600000), -18000);
    assert_int_equal(tz_offset(ny, 5686009200000 - 1), -18000);
    assert_int_equal(tz_offset(ny, 5686009200000), -14400);
    assert_int_equal(tz_offset(ny, 5706568800000 - 1), -14400);
    assert_int_equal(tz_offset(ny, 5706568800000), -18000);
    day_of("America/New_York", at(2150, 3, 8, 12, 0, 0), &w);
    assert_int_equal(w.start, 5686002000000);
    assert_int_equal(w.end, 5686084800000);
    /* past the precomputed table the rule is evaluated directly */
    assert_int_equal(tz_offset(ny, at(2500, 7, 1, 0, 0, 0)), -14400);
    assert_int_equal(tz_offset(ny, at(2500, 12, 1, 0, 0, 0)), -18000);
}

static void test_utc_builtin_without_tz_database(void **state)
{
    (void)state;
    int err = 1;
    struct tz_db *d = tz_db_new(tmpdir);
    const struct tz_zone *z = tz_db_get(d, "UTC", &err);
    assert_non_null(z);
    assert_int_equal(err, 0);
    assert_string_equal(tz_zone_name(z), "UTC");
    assert_int_equal(tz_offset(z, 0), 0);
    assert_int_equal(tz_local_to_utc(z, 12345), 12345);
    assert_ptr_equal(tz_db_get(d, "UTC", NULL), z);
    assert_null(tz_db_get(d, "Europe/Paris", &err));
    assert_int_equal(err, -ENOENT);
    tz_db_free(d);
    tz_db_free(NULL);
}

/* ---- independent oracles ---- */

static const char *const many_zones[] = {
    "America/New_York", "America/Los_Angeles", "America/Chicago", "America/Phoenix",
    "America/St_Johns", "America/Goose_Bay", "America/Sao_Paulo", "America/Santiago", "America/Havana",
    "America/Nuuk", "America/Juneau", "Europe/London", "Europe/Dublin", "Europe/Berlin",
    "Europe/Moscow", "Europe/Lisbon", "Africa/Casablanca", "Africa/Cairo", "Asia/Kolkata",
    "Asia/Tehran", "Asia/Jerusalem", "Asia/Gaza", "Asia/Kathmandu", "Asia/Shanghai",
    "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Auckland", "Pacific/Chatham",
    "Pacific/Apia", "Pacific/Kiritimati", "Pacific/Kwajalein", "Etc/GMT+5", "UTC",
};
#define N_ZONES (sizeof many_zones / sizeof many_zones[0])

static long glibc_offset(int64_t s)
{
    time_t t = (time_t)s;
    struct tm tm;
    return localtime_r(&t, &tm) ? tm.tm_gmtoff : -999999;
}

static void test_offsets_agree_with_glibc_1900_to_2100(void **state)
{
    (void)state;
    long bad = 0, checked = 0;
    int64_t from = EV_TS_MIN / 1000, to = at(2100, 1, 1, 0, 0, 0) / 1000, step = 26111;
    if (sizeof(time_t) < 8)
        from = INT32_MIN, to = INT32_MAX - step;
    for (size_t i = 0; i < N_ZONES; i++) {
        char tzv[128];
        const struct tz_zone *z = zone(many_zones[i]);
        snprintf(tzv, sizeof tzv, ":" ZI "/%s", many_zones[i]);
        setenv("TZ", tzv, 1);
        tzset();
        int32_t prev = tz_offset(z, from * 1000);
        for (int64_t s = from; s < to; s += step) {
            int64_t probe[3] = {s, 0, 0};
            int np = 1;
            int32_t mine = tz_offset(z, s * 1000);
            if (mine != prev) { /* bisect to the exact transition second and check both sides */
                int64_t lo = s - step, hi = s;
                while (hi - lo > 1) {
                    int64_t mid = lo + (hi - lo) / 2;
                    *(tz_offset(z, mid * 1000) == prev ? &lo : &hi) = mid;
                }
                probe[np++] = hi - 1;
                probe[np++] = hi;
                if (tz_offset(z, hi * 1000 - 1) != tz_offset(z, (hi - 1) * 1000))
                    bad++;
            }
            for (int k = 0; k < np; k++, checked++) {
                long g = glibc_offset(probe[k]), m = tz_offset(z, probe[k] * 1000);
                if (g != m && bad++ < 10)
                    print_message("%s at %lld: glibc %ld, tz %ld\n", many_zones[i],
                                  (long long)probe[k], g, m);
            }
            prev = mine;
        }
    }
    unsetenv("TZ");
    tzset();
    assert_true(checked > 1000000);
    assert_int_equal(bad, 0);
}

/* The first instant whose wall time reaches L: it reaches L, the instant before does not. */
static void test_local_to_utc_is_first_instant_reaching_wall_time(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ZONES; i++) {
        const struct tz_zone *z = zone(many_zones[i]);
        for (int k = 0; k < 20000; k++) {
            int64_t l = EV_TS_MIN + (int64_t)(next_rand() % (uint64_t)(EV_TS_MAX - EV_TS_MIN));
            if (k & 1)
                l -= l % 1800000; /* often exactly on a half hour, where transitions are */
            int64_t u = tz_local_to_utc(z, l);
            assert_true(u + tz_offset(z, u) * 1000LL >= l);
            assert_true(u - 1 + tz_offset(z, u - 1) * 1000LL < l);
        }
    }
}

/* Day windows tile time with no gap or overlap, dates increase, t is in its own window. */
static void test_day_windows_tile_1900_to_2200(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ZONES; i++) {
        struct tzline l;
        struct day_window w, n, c;
        tzline_init(&l, zone(many_zones[i]));
        cal_day_at(&l, EV_TS_MIN, &w);
        while (w.start < EV_TS_MAX) {
            cal_day_next(&l, &w, &n);
            assert_int_equal(n.start, w.end);
            assert_true(n.end > n.start && n.day > w.day);
            assert_true(n.end - n.start <= 48 * HOUR_MS);
            int64_t probe[3] = {n.start, n.end - 1,
                                n.start + (int64_t)(next_rand() % (uint64_t)(n.end - n.start))};
            for (int k = 0; k < 3; k++) {
                cal_day_at(&l, probe[k], &c);
                assert_int_equal(c.start, n.start);
                assert_int_equal(c.end, n.end);
                assert_int_equal(c.day, n.day);
            }
            w = n;
        }
    }
}

/* ---- TZif variants ---- */

static void test_v1_only_file_matches_v2_data(void **state)
{
    (void)state;
    size_t len;
    unsigned char *buf = read_zi("America/New_York", &len);
    uint32_t c[6];
    for (int k = 0; k < 6; k++)
        c[k] = (uint32_t)buf[20 + 4 * k] << 24 | (uint32_t)buf[21 + 4 * k] << 16 |
               (uint32_t)buf[22 + 4 * k] << 8 | buf[23 + 4 * k];
    /* counts: isut, isstd, leap, time, type, chars; the v1 block has 32-bit times */
    size_t v1 = 44 + c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    buf[4] = 0;
    write_file("V1", buf, v1);
    const struct tz_zone *z1 = tzone("V1");
    const struct tz_zone *z2 = zone("America/New_York");
    for (int64_t s = INT32_MIN + 1; s < at(2037, 1, 1, 0, 0, 0) / 1000; s += 13007)
        assert_int_equal(tz_offset(z1, s * 1000), tz_offset(z2, s * 1000));
    free(buf);
}

static void test_posix_footer_forms(void **state)
{
    (void)state;
    const struct tz_zone *z;
    struct {
        const char *footer;
        int64_t t;
        int32_t off;
    } c[] = {
        {"EST5EDT,M3.2.0,M11.1.0", at(2020, 3, 8, 6, 59, 59), -18000},
        {"EST5EDT,M3.2.0,M11.1.0", at(2020, 3, 8, 7, 0, 0), -14400},
        {"EST5EDT,M3.2.0,M11.1.0", at(2020, 11, 1, 5, 59, 59), -14400},
        {"EST5EDT,M3.2.0,M11.1.0", at(2020, 11, 1, 6, 0, 0), -18000},
        {"EST5EDT", at(2020, 3, 8, 7, 0, 0), -14400}, /* no rule: the US one */
        {"EST5EDT", at(2020, 11, 1, 6, 0, 0), -18000},
        {"<+0330>-3:30", at(2020, 6, 1, 0, 0, 0), 12600},
        {"<-0330>3:30", at(1950, 6, 1, 0, 0, 0), -12600},
        {"UTC0", at(2020, 6, 1, 0, 0, 0), 0},
        /* Jn never counts Feb 29: J60 is Mar 1 in every year */
        {"XXX-2YYY,J60/2,J300/2", at(2020, 2, 29, 23, 59, 59), 7200},
        {"XXX-2YYY,J60/2,J300/2", at(2020, 3, 1, 0, 0, 0), 10800},
        {"XXX-2YYY,J60/2,J300/2", at(2020, 10, 26, 22, 59, 59), 10800},
        {"XXX-2YYY,J60/2,J300/2", at(2020, 10, 26, 23, 0, 0), 7200},
        /* n counts from 0 and does count Feb 29 */
        {"XXX-2YYY,59/2,299/2", at(2020, 2, 28, 23, 59, 59), 7200},
        {"XXX-2YYY,59/2,299/2", at(2020, 2, 29, 0, 0, 0), 10800},
        {"XXX-2YYY,59/2,299/2", at(2021, 2, 28, 23, 59, 59), 7200},
        {"XXX-2YYY,59/2,299/2", at(2021, 3, 1, 0, 0, 0), 10800},
        /* negative times (America/Nuuk): 23:00 on the day before the last Sunday */
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", at(2024, 3, 31, 0, 59, 59), -7200},
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", at(2024, 3, 31, 1, 0, 0), -3600},
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", at(2024, 10, 27, 0, 59, 59), -3600},
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", at(2024, 10, 27, 1, 0, 0), -7200},
        /* hours past 24 (Asia/Jerusalem): 02:00 on the Friday after the 4th Thursday */
        {"IST-2IDT,M3.4.4/26,M10.5.0", at(2024, 3, 28, 23, 59, 59), 7200},
        {"IST-2IDT,M3.4.4/26,M10.5.0", at(2024, 3, 29, 0, 0, 0), 10800},
        {"IST-2IDT,M3.4.4/26,M10.5.0", at(2024, 10, 26, 23, 0, 0), 7200},
        {"XXX5YYY,M3.2.0/-167,M11.1.0/167", at(2020, 3, 1, 6, 0, 0), -14400},
        {"XXX5YYY,M3.2.0/-167,M11.1.0/167", at(2020, 3, 1, 5, 59, 59), -18000},
        /* southern hemisphere, explicit DST offset, 30-minute DST */
        {"AEST-10AEDT,M10.1.0,M4.1.0/3", at(2020, 1, 15, 0, 0, 0), 39600},
        {"AEST-10AEDT,M10.1.0,M4.1.0/3", at(2020, 7, 15, 0, 0, 0), 36000},
        {"AEST-10AEDT,M10.1.0,M4.1.0/3", at(2020, 10, 3, 16, 0, 0), 39600},
        {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", at(2020, 7, 1, 0, 0, 0), 37800},
        {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", at(2020, 12, 1, 0, 0, 0), 39600},
        /* DST all year (RFC 8536 3.3.1), including the instant where the years meet */
        {"EST5EDT,0/0,J365/25", at(2020, 1, 1, 5, 0, 0), -14400},
        {"EST5EDT,0/0,J365/25", at(2021, 1, 1, 5, 0, 0), -14400},
        {"EST5EDT,0/0,J365/25", at(2021, 1, 1, 4, 59, 59), -14400},
        {"EST5EDT,0/0,J365/25", at(2020, 12, 31, 23, 0, 0), -14400},
        {"EST5EDT,0/0,J365/25", at(2150, 7, 1, 0, 0, 0), -14400},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        z = footer_zone(c[i].footer);
        if (tz_offset(z, c[i].t) != c[i].off)
            fail_msg("%s at %lld: %d, want %d", c[i].footer, (long long)c[i].t,
                     tz_offset(z, c[i].t), c[i].off);
    }
    z = footer_zone("EST5EDT,0/0,J365/25");
    for (int64_t t = at(2019, 1, 1, 0, 0, 0); t < at(2023, 1, 1, 0, 0, 0); t += 1800 * 1000)
        assert_int_equal(tz_offset(z, t), -14400);

    static const char *const bad[] = {
        "EST", "ES5", "<A>0", "<+03", "EST25", "EST5:60", "EST5EDT,M13.1.0,M11.1.0",
        "EST5EDT,M3.2.0", "EST5EDT,M3.6.0,M11.1.0", "EST5EDT,M3.2.7,M11.1.0",
        "EST5EDT,J0,J365", "EST5EDT,366,0", "EST5EDT,M3.2.0/168,M11.1.0",
        "EST5EDT,M3.2.0,M11.1.0x", "EST5EDT,,", "EST5EDT,M3.2.0/2:3:4:5,M11.1.0",
        "EST5EDT4x", "5EST", "EST 5", "EST5EDT,M3.2.0/1000,M11.1.0",
    };
    unsigned char buf[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file("Bad", buf, make_tzif(buf, '2', 0, bad[i]));
        if (try_load("Bad") != -EINVAL)
            fail_msg("footer \"%s\" accepted", bad[i]);
    }
    /* an empty footer: the last (here the only) type holds for ever; v4 is read too */
    write_file("Empty", buf, make_tzif(buf, '4', 3600, ""));
    assert_int_equal(tz_offset(tzone("Empty"), at(2150, 1, 1, 0, 0, 0)), 3600);
    write_file("V9", buf, make_tzif(buf, '9', 3600, ""));
    assert_int_equal(try_load("V9"), -EINVAL);
}

static void test_corrupt_files_are_einval_not_crashes(void **state)
{
    (void)state;
    size_t len;
    unsigned char *orig = read_zi("America/New_York", &len);
    unsigned char *buf = malloc(300 * 1024);
    assert_non_null(buf);
    for (size_t n = 0; n < len; n++) { /* every truncation */
        write_file("Trunc", orig, n);
        if (try_load("Trunc") != -EINVAL)
            fail_msg("truncated to %zu bytes: accepted", n);
    }
    for (int k = 0; k < 3000; k++) { /* random corruption: accepted or -EINVAL, never a crash */
        memcpy(buf, orig, len);
        for (int f = 1 + (int)(next_rand() % 4); f > 0; f--)
            buf[next_rand() % len] ^= (unsigned char)(1u << (next_rand() % 8));
        write_file("Flip", buf, len);
        int rc = try_load("Flip");
        assert_true(rc == 0 || rc == -EINVAL);
    }
    for (size_t i = 0; i < 4096; i++)
        buf[i] = (unsigned char)next_rand();
    write_file("Garbage", buf, 4096);
    assert_int_equal(try_load("Garbage"), -EINVAL);
    memcpy(buf, "TZif2", 5);
    memset(buf + 20, 0xff, 24); /* absurd counts */
    write_file("Counts", buf, 4096);
    assert_int_equal(try_load("Counts"), -EINVAL);
    memcpy(buf, orig, len);
    memset(buf + len, '\n', 300 * 1024 - len);
    write_file("Huge", buf, 300 * 1024);
    assert_int_equal(try_load("Huge"), -EINVAL);
    write_file("Empty0", buf, 0);
    assert_int_equal(try_load("Empty0"), -EINVAL);
    write_file("Whole", orig, len); /* the intact copy loads */
    assert_int_equal(try_load("Whole"), 0);
    free(buf);
    free(orig);

    int err = 0;
    assert_null(tz_db_get(db, "America", &err)); /* a directory */
    assert_int_equal(err, -ENOENT);
    if (access(ZI "/right/UTC", R_OK) == 0) { /* leap-second data is refused */
        assert_null(tz_db_get(db, "right/UTC", &err));
        assert_int_equal(err, -EINVAL);
    }
}

static void test_bad_zone_names_rejected(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "/etc/passwd", "../etc/passwd", "America/../../etc/passwd", "America/",
        "America//New_York", ".hidden", "America/.x", "Amer ica", "America/New_York\n",
        "0123456789012345678901234567890123456789012345678901234567890123",
    };
    int err = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = 0;
        assert_null(tz_db_get(db, bad[i], &err));
        assert_int_equal(err, -EINVAL);
    }
    assert_null(tz_db_get(db, NULL, &err));
    assert_int_equal(err, -EINVAL);
    assert_null(tz_db_get(db, "No/Such_Zone", &err));
    assert_int_equal(err, -ENOENT);
    assert_non_null(tz_db_get(db, "Etc/GMT+5", &err)); /* '+' is allowed */
}

static void test_zone_cache_is_bounded_at_256(void **state)
{
    (void)state;
    char name[16];
    size_t len;
    unsigned char *utc = read_zi("Etc/UTC", &len);
    struct tz_db *d = tz_db_new(tmpdir);
    const struct tz_zone *first = NULL;
    int err = 0;
    for (int i = 0; i <= 256; i++) {
        snprintf(name, sizeof name, "Z%03d", i);
        write_file(name, utc, len);
        const struct tz_zone *z = tz_db_get(d, name, &err);
        if (i < 256) {
            assert_non_null(z);
            first = first ? first : z;
        } else {
            assert_null(z);
            assert_int_equal(err, -E2BIG);
        }
    }
    assert_ptr_equal(tz_db_get(d, "Z000", &err), first); /* cached zones still resolve */
    assert_non_null(tz_db_get(d, "UTC", &err));          /* and UTC is never refused */
    tz_db_free(d);
    setenv("TZDIR", tmpdir, 1); /* NULL dir means $TZDIR */
    d = tz_db_new(NULL);
    assert_non_null(tz_db_get(d, "Z000", &err));
    tz_db_free(d);
    unsetenv("TZDIR");
    free(utc);
}

/* ---- tz events (travel) ---- */

static void test_tzline_switch_rules(void **state)
{
    (void)state;
    struct tzline l;
    const struct tz_zone *ny = zone("America/New_York"), *la = zone("America/Los_Angeles"),
                         *chi = zone("America/Chicago");
    tzline_init(&l, ny);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.from[0], EV_TS_MIN);
    assert_int_equal(tzline_switch(&l, 1000, ny), 0); /* same zone: nothing */
    assert_int_equal(l.n, 1);
    assert_int_equal(tzline_switch(&l, 1000, la), 0);
    assert_int_equal(tzline_switch(&l, 1000, chi), 0); /* same instant: replaces */
    assert_int_equal(l.n, 2);
    assert_ptr_equal(l.zone[1], chi);
    assert_int_equal(tzline_switch(&l, 1000, ny), 0); /* replacing by the previous: undone */
    assert_int_equal(l.n, 1);
    assert_int_equal(tzline_switch(&l, 2000, la), 0);
    assert_int_equal(tzline_switch(&l, 1999, chi), -EINVAL); /* out of order */
    assert_int_equal(tzline_switch(&l, 3000, NULL), -EINVAL);
    assert_ptr_equal(tzline_zone_at(&l, 1999), ny);
    assert_ptr_equal(tzline_zone_at(&l, 2000), la);
    assert_ptr_equal(tzline_zone_at(&l, EV_TS_MIN - 1), ny);
    assert_ptr_equal(tzline_zone_at(&l, INT64_MAX), la);
    for (int64_t ts = 3000; l.n < TZL_MAX; ts += 1000)
        assert_int_equal(tzline_switch(&l, ts, l.zone[l.n - 1] == ny ? la : ny), 0);
    assert_int_equal(tzline_switch(&l, INT64_C(1) << 40, l.zone[l.n - 1] == ny ? la : ny),
                     -E2BIG);
    assert_int_equal(l.n, TZL_MAX);
}

static void expect_window(const struct day_window *w, const char *date, const char *zname,
                          int64_t start, int64_t end)
{
    if (strcmp(w->local_date, date) || strcmp(tz_zone_name(w->zone), zname) ||
        w->start != start || w->end != end)
        fail_msg("got %s %s [%lld, %lld), want %s %s [%lld, %lld)", w->local_date,
                 tz_zone_name(w->zone), (long long)w->start, (long long)w->end, date, zname,
                 (long long)start, (long long)end);
}

/* The RAPIDS multi-zone test timeline (reference/engagement.md section 1). */
static void rapids_line(struct tzline *l)
{
    const struct tz_zone *ny = zone("America/New_York"), *la = zone("America/Los_Angeles");
    tzline_init(l, ny);
    assert_int_equal(tzline_switch(l, 1583600400000, la), 0);
    assert_int_equal(tzline_switch(l, 1583683200000, ny), 0);
    assert_int_equal(tzline_switch(l, 1604160000000, la), 0);
    assert_int_equal(tzline_switch(l, 1604250000000, ny), 0);
    assert_int_equal(tzline_switch(l, 1604379600000, ny), 0);
    assert_int_equal(l->n, 5);
}

static void test_travel_cuts_day_at_switch(void **state)
{
    (void)state;
    struct tzline l;
    struct day_window w, n;
    const char *ny = "America/New_York", *la = "America/Los_Angeles";
    rapids_line(&l);
    cal_day_at(&l, at(2020, 3, 6, 12, 0, 0), &w);
    expect_window(&w, "2020-03-06", ny, 1583470800000, 1583557200000);
    static const struct {
        const char *date;
        int is_la;
        int64_t s, e;
    } march[] = {
        {"2020-03-07", 0, 1583557200000, 1583600400000},
        {"2020-03-07", 1, 1583600400000, 1583654400000},
        {"2020-03-08", 1, 1583654400000, 1583683200000},
        {"2020-03-08", 0, 1583683200000, 1583726400000},
        {"2020-03-09", 0, 1583726400000, 1583812800000},
    }, autumn[] = {
        {"2020-10-31", 0, 1604116800000, 1604160000000},
        {"2020-10-31", 1, 1604160000000, 1604214000000},
        {"2020-11-01", 1, 1604214000000, 1604250000000},
        {"2020-11-01", 0, 1604250000000, 1604293200000},
        {"2020-11-02", 0, 1604293200000, 1604379600000},
    };
    for (size_t i = 0; i < 5; i++, w = n) {
        cal_day_next(&l, &w, &n);
        expect_window(&n, march[i].date, march[i].is_la ? la : ny, march[i].s, march[i].e);
    }
    cal_day_at(&l, 1604116800000, &w);
    expect_window(&w, autumn[0].date, ny, autumn[0].s, autumn[0].e);
    for (size_t i = 1; i < 5; i++, w = n) {
        cal_day_next(&l, &w, &n);
        expect_window(&n, autumn[i].date, autumn[i].is_la ? la : ny, autumn[i].s, autumn[i].e);
    }
    cal_day_at(&l, 1583600400000 - 1, &w); /* the instant before the switch is still NY */
    expect_window(&w, "2020-03-07", ny, 1583557200000, 1583600400000);
}

static void test_cal_7d_across_dst_and_travel(void **state)
{
    (void)state;
    struct tzline l;
    struct day_window w;
    int64_t s, e;
    tzline_init(&l, zone("America/New_York"));
    cal_day_at(&l, at(2020, 3, 10, 17, 0, 0), &w);
    cal_7d(&l, &w, &s, &e);
    assert_int_equal(s, 1583298000000); /* 2020-03-04 00:00 EST */
    assert_int_equal(e, at(2020, 3, 11, 4, 0, 0));
    assert_int_equal(e - s, 167 * HOUR_MS);
    cal_day_at(&l, at(2020, 11, 3, 17, 0, 0), &w);
    cal_7d(&l, &w, &s, &e);
    assert_int_equal(s, at(2020, 10, 28, 4, 0, 0));
    assert_int_equal(e - s, 169 * HOUR_MS);
    /* with travel the cut days count once per date: same span as without */
    rapids_line(&l);
    cal_day_at(&l, at(2020, 3, 10, 17, 0, 0), &w);
    cal_7d(&l, &w, &s, &e);
    assert_int_equal(s, 1583298000000);
    cal_day_at(&l, 1583600400000, &w); /* ending with the LA part of 03-07 */
    cal_7d(&l, &w, &s, &e);
    assert_int_equal(s, at(2020, 3, 1, 5, 0, 0));
    assert_int_equal(e, 1583654400000);
}

static int setup_db(void **state)
{
    if (setup_tmp(state) < 0)
        return -1;
    db = tz_db_new(ZI);
    tdb = tz_db_new(tmpdir);
    return db && tdb ? 0 : -1;
}

static int teardown_db(void **state)
{
    tz_db_free(db);
    tz_db_free(tdb);
    return teardown_tmp(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_civil_days_roundtrip_and_floor_div),
        cmocka_unit_test(test_ny_spring_forward_day_is_23h),
        cmocka_unit_test(test_ny_fall_back_day_is_25h),
        cmocka_unit_test(test_ny_offsets_switch_exactly_at_transitions),
        cmocka_unit_test(test_local_to_utc_gap_maps_to_transition),
        cmocka_unit_test(test_local_to_utc_ambiguous_hour_takes_earlier),
        cmocka_unit_test(test_minutes_of_day_use_wall_clock),
        cmocka_unit_test(test_london_23h_and_25h_days),
        cmocka_unit_test(test_lord_howe_half_hour_dst),
        cmocka_unit_test(test_kolkata_fixed_half_hour_offset),
        cmocka_unit_test(test_apia_skipped_day_has_no_window),
        cmocka_unit_test(test_fall_back_across_midnight_belongs_to_next_day),
        cmocka_unit_test(test_1900_and_lmt_before_first_transition),
        cmocka_unit_test(test_2150_uses_footer_rule),
        cmocka_unit_test(test_utc_builtin_without_tz_database),
        cmocka_unit_test(test_offsets_agree_with_glibc_1900_to_2100),
        cmocka_unit_test(test_local_to_utc_is_first_instant_reaching_wall_time),
        cmocka_unit_test(test_day_windows_tile_1900_to_2200),
        cmocka_unit_test(test_v1_only_file_matches_v2_data),
        cmocka_unit_test(test_posix_footer_forms),
        cmocka_unit_test(test_corrupt_files_are_einval_not_crashes),
        cmocka_unit_test(test_bad_zone_names_rejected),
        cmocka_unit_test(test_zone_cache_is_bounded_at_256),
        cmocka_unit_test(test_tzline_switch_rules),
        cmocka_unit_test(test_travel_cuts_day_at_switch),
        cmocka_unit_test(test_cal_7d_across_dst_and_travel),
    };
    return cmocka_run_group_tests(tests, setup_db, teardown_db);
}
