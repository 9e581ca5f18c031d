/* The configuration loader: exact `FILE:LINE: message` errors for every kind of mistake,
 * the merge rules of drop-ins, the `when` expression AST, and that the shipped default
 * config, the examples and docs/config.md agree with the key table. Each test runs in its
 * own temporary directory so file names in messages are short and stable. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/ble.h"
#include "daemon/conf.h"
#include "daemon/conf_internal.h"
#include "pipeline/pipeline.h"

static char src_root[PATH_MAX];
static char start_dir[PATH_MAX];
static char tmp_dir[PATH_MAX];

struct errs {
    char buf[32768];
    size_t len;
    int n;
};

static void collect(void *ud, const char *file, int line, const char *msg)
{
    struct errs *e = ud;
    e->n++;
    if (e->len < sizeof(e->buf))
        e->len += (size_t)snprintf(e->buf + e->len, sizeof(e->buf) - e->len, "%s:%d: %s\n",
                                   file, line, msg);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/test_conf.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmp_dir) || chdir(tmp_dir) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (chdir(start_dir) < 0)
        return -1;
    return nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Loads text as t.conf (plus nothing else) and returns the errors, one per line. */
static int load_text(const char *text, struct conf **out, struct errs *e)
{
    memset(e, 0, sizeof(*e));
    write_file("t.conf", text);
    return conf_load("t.conf", out, collect, e);
}

/* The load fails, and reports exactly `expected` (lines ending in \n). */
static void expect_errors(const char *text, const char *expected)
{
    struct errs e;
    struct conf *c = (struct conf *)1;
    int r = load_text(text, &c, &e);
    assert_string_equal(e.buf, expected);
    assert_int_equal(r, -e.n);
    assert_null(c);
}

static struct conf *expect_ok(const char *text)
{
    struct errs e;
    struct conf *c = NULL;
    int r = load_text(text, &c, &e);
    assert_string_equal(e.buf, "");
    assert_int_equal(r, 0);
    assert_non_null(c);
    return c;
}

/* ---- syntax ------------------------------------------------------------------------ */

static void test_unknown_section_is_an_error(void **state)
{
    (void)state;
    expect_errors("[store]\n\n[stor]\npath = /x\n[participant]\n[store x]\n[source a b]\n",
                  "t.conf:3: unknown section [stor]\n"
                  "t.conf:5: section [participant] needs a name: [participant NAME]\n"
                  "t.conf:6: section [store] takes no name\n"
                  "t.conf:7: invalid source name \"a b\" (1-64 of A-Z a-z 0-9 _ -)\n");
}

static void test_unknown_key_is_an_error(void **state)
{
    (void)state;
    expect_errors("lateness = 1h\n[pipeline]\nlatenes = 1h\n[participant p01]\ntimezone = UTC\n",
                  "t.conf:1: key \"lateness\" outside any section\n"
                  "t.conf:3: unknown key \"latenes\" in [pipeline]\n"
                  "t.conf:5: unknown key \"timezone\" in [participant p01]\n");
}

static void test_malformed_lines_are_errors(void **state)
{
    (void)state;
    expect_errors("[store\n[store] x\n[store]\njust words\n= 5\n",
                  "t.conf:1: missing \"]\" in section header\n"
                  "t.conf:2: unexpected text after \"]\"\n"
                  "t.conf:4: expected \"key = value\", \"[section]\" or a comment\n"
                  "t.conf:5: missing key name before \"=\"\n");
}

static void test_indented_keys_crlf_bom_and_comments_are_accepted(void **state)
{
    (void)state;
    /* inih alone would read an indented key as a continuation of the previous value */
    struct conf *c = expect_ok("\xef\xbb\xbf# comment\r\n[store]\r\n  batch_max = 7 ; inline\r\n"
                               "\tbatch_delay = 1s\r\n; other comment\n[study]\nname = a;b\n");
    assert_int_equal(c->store.batch_max, 7);
    assert_int_equal(c->store.batch_delay_ms, 1000);
    assert_string_equal(c->study.name, "a;b");
    assert_string_equal(c->files[0], "t.conf");
    conf_free(c);
}

static void test_line_longer_than_199_bytes_is_an_error(void **state)
{
    (void)state;
    char text[1024];
    /* "name = " + 192 bytes = 199: the longest line accepted */
    snprintf(text, sizeof(text), "[study]\nname = %0192d\n", 0);
    conf_free(expect_ok(text));
    snprintf(text, sizeof(text), "[study]\nname = %0193d\nseed = x\n", 0);
    expect_errors(text, "t.conf:2: line too long (200 bytes, max 199)\n"
                        "t.conf:3: [study] seed: invalid unsigned 64-bit integer \"x\"\n");
}

static void test_nul_byte_and_oversized_file_are_errors(void **state)
{
    (void)state;
    struct errs e = {0};
    struct conf *c = NULL;
    FILE *f = fopen("t.conf", "w");
    assert_non_null(f);
    fwrite("[store]\nbatch_max = 1\0\n", 1, 23, f);
    fclose(f);
    assert_int_equal(conf_load("t.conf", &c, collect, &e), -1);
    assert_string_equal(e.buf, "t.conf:2: NUL byte in line\n");

    f = fopen("big.conf", "w");
    assert_non_null(f);
    for (long written = 0; written <= CONF_MAX_FILE_SIZE; written += 16)
        fputs("# 16 bytes ....\n", f);
    fclose(f);
    memset(&e, 0, sizeof(e));
    assert_true(conf_load("big.conf", &c, collect, &e) < 0);
    assert_string_equal(e.buf, "big.conf:0: file is larger than 1048576 bytes\n");
}

static void test_missing_main_file_is_enoent(void **state)
{
    (void)state;
    struct errs e = {0};
    struct conf *c = (struct conf *)1;
    assert_int_equal(conf_load("nope.conf", &c, collect, &e), -ENOENT);
    assert_null(c);
    assert_string_equal(e.buf, "nope.conf:0: cannot read: No such file or directory\n");
    /* a NULL callback is allowed */
    assert_int_equal(conf_load("nope.conf", &c, NULL, NULL), -ENOENT);
}

static void test_errors_stop_after_the_cap(void **state)
{
    (void)state;
    char *text = malloc(200 * 8 + 16);
    size_t n = (size_t)sprintf(text, "[store]\n");
    for (int i = 0; i < 150; i++)
        n += (size_t)sprintf(text + n, "x%d = 1\n", i);
    struct errs e;
    struct conf *c = NULL;
    assert_int_equal(load_text(text, &c, &e), -CONF_MAX_ERRORS);
    assert_int_equal(e.n, CONF_MAX_ERRORS + 1);
    assert_non_null(strstr(e.buf, "t.conf:102: too many errors, not reading further\n"));
    free(text);
}

/* ---- values ------------------------------------------------------------------------ */

static void test_durations_parse_and_bad_ones_are_errors(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {
        {"30s", 30000}, {"10min", 600000}, {"2h", 7200000}, {"7d", 604800000},
        {"500ms", 500}, {"45", 45000}, {"1h30min", 5400000}, {"1h 30min", 5400000},
        {"1w", 604800000}, {"0", 0},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ms = -1;
        assert_int_equal(conf_parse_duration(ok[i].in, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *const bad[] = {"", "5m", "10 minutes", "1.5h", "h", "1h30", "-1s", "10x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms;
        assert_int_equal(conf_parse_duration(bad[i], &ms), -EINVAL);
    }
    int64_t ms;
    assert_int_equal(conf_parse_duration("9223372036854775807d", &ms), -ERANGE);
    assert_int_equal(conf_parse_duration("99999999999999999999", &ms), -ERANGE);

    expect_errors("[pipeline]\nlateness = 10 minutes\ncoverage_gap = 5m\nscreen_hold = -1h\n"
                  "screen_ignore_longer = 106751991168d\n[daemon]\nwatchdog = sometimes\n",
                  "t.conf:2: [pipeline] lateness: invalid duration \"10 minutes\" (use e.g. 500ms, "
                  "30s, 10min, 2h, 7d)\n"
                  "t.conf:3: [pipeline] coverage_gap: invalid duration \"5m\" (use e.g. "
                  "500ms, 30s, 10min, 2h, 7d)\n"
                  "t.conf:4: [pipeline] screen_hold: negative duration \"-1h\"\n"
                  "t.conf:5: [pipeline] screen_ignore_longer: duration \"106751991168d\" is too "
                  "large\n"
                  "t.conf:7: [daemon] watchdog: invalid duration \"sometimes\" (use e.g. "
                  "500ms, 30s, 10min, 2h, 7d) or auto\n");
}

static void test_out_of_range_values_are_errors(void **state)
{
    (void)state;
    expect_errors("[store]\nbatch_max = 0\nbatch_delay = 11s\n[publish]\nsndhwm = 99999999999\n"
                  "[ingest]\nmax_message = 512\nmax_lines = 12x\n[participant p]\n"
                  "prescribed_days_per_week = 8\n[nudge n]\nwhen = ema.answered > 1\nmessage = m\n"
                  "probability = 1.5\nmin_coverage = nan\n[publish]\nevent_topics = maybe\n",
                  "t.conf:2: [store] batch_max: 0 is out of range (1..100000)\n"
                  "t.conf:3: [store] batch_delay: 11s is out of range (0..10s)\n"
                  "t.conf:5: [publish] sndhwm: 99999999999 is out of range (1..10000000)\n"
                  "t.conf:7: [ingest] max_message: 512 is out of range (1KiB..64MiB)\n"
                  "t.conf:8: [ingest] max_lines: invalid integer \"12x\"\n"
                  "t.conf:10: [participant p] prescribed_days_per_week: 8 is out of range (1..7)\n"
                  "t.conf:14: [nudge n] probability: 1.5 is out of range (0..1)\n"
                  "t.conf:15: [nudge n] min_coverage: invalid number \"nan\"\n"
                  "t.conf:17: [publish] event_topics: invalid boolean \"maybe\" (expected yes or "
                  "no)\n");
}

static void test_bad_enum_is_an_error(void **state)
{
    (void)state;
    expect_errors("[daemon]\nlog_level = verbose\n[pipeline]\nsleep_algorithm = cole_kripke\n",
                  "t.conf:2: [daemon] log_level: invalid value \"verbose\" (expected one of: err, "
                  "warning, notice, info, debug)\n"
                  "t.conf:4: [pipeline] sleep_algorithm: invalid value \"cole_kripke\" (expected "
                  "one of: cole-kripke, sadeh)\n");
    struct conf *c = expect_ok("[daemon]\nlog_level = debug\n[pipeline]\nsleep_algorithm = sadeh\n"
                               "nonwear = none\ncount_axis = vm\n");
    assert_int_equal(c->daemon.log_level, 7);
    assert_int_equal(c->pipeline.sleep_algorithm, CONF_SLEEP_SADEH);
    assert_int_equal(c->pipeline.nonwear, CONF_NONWEAR_NONE);
    assert_int_equal(c->pipeline.count_axis, CONF_AXIS_VM);
    assert_string_equal(conf_enum_name("pipeline", "nonwear", CONF_NONWEAR_TROIANO), "troiano");
    assert_string_equal(conf_enum_name("daemon", "log_level", 4), "warning");
    assert_null(conf_enum_name("daemon", "log_level", 9));
    conf_free(c);
}

static void test_ble_mgmt_values(void **state)
{
    (void)state;
    expect_errors("[daemon]\nble_mgmt = kernel\n",
                  "t.conf:2: [daemon] ble_mgmt: invalid \"kernel\": expected auto, off or "
                  "sim:/PATH\n");
    expect_errors("[daemon]\nble_mgmt = sim:m.s\n",
                  "t.conf:2: [daemon] ble_mgmt: invalid \"sim:m.s\": sim: needs an absolute "
                  "socket path (sim:/PATH)\n");
    const char *ok[] = {"auto", "off", "sim:/run/fake-mgmt.s"};
    const enum ble_mgmt_kind kind[] = {BLE_MGMT_AUTO, BLE_MGMT_OFF, BLE_MGMT_SIM};
    for (size_t i = 0; i < 3; i++) {
        char text[128];
        snprintf(text, sizeof text, "[daemon]\nble_mgmt = %s\n", ok[i]);
        struct conf *c = expect_ok(text);
        struct ble_mgmt_where w;
        assert_int_equal(ble_mgmt_parse(c->daemon.ble_mgmt, &w, NULL, 0), 0);
        assert_int_equal(w.kind, kind[i]);
        if (kind[i] == BLE_MGMT_SIM)
            assert_string_equal(w.path, "/run/fake-mgmt.s");
        conf_free(c);
    }
    struct conf *c = expect_ok("[store]\npath = /tmp/x.db\n");
    assert_string_equal(c->daemon.ble_mgmt, "auto");
    conf_free(c);
}

static void test_bad_tz_is_an_error(void **state)
{
    (void)state;
    const char *old = getenv("TZDIR");
    char *saved = old ? strdup(old) : NULL;
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/zi", tmp_dir);
    assert_int_equal(mkdir("zi", 0700), 0);
    assert_int_equal(mkdir("zi/Test", 0700), 0);
    write_file("zi/Test/Zone", "TZif2...");
    write_file("zi/Test/Text", "not a zone");
    setenv("TZDIR", dir, 1);

    static char expected[4 * PATH_MAX + 1024];
    snprintf(expected, sizeof(expected),
             "t.conf:2: [participant a] tz: unknown time zone \"Mars/Olympus\" (not found in %s)\n"
             "t.conf:4: [participant b] tz: invalid time zone name \"../etc/passwd\" (expected an "
             "IANA name such as Europe/London)\n"
             "t.conf:6: [participant c] tz: \"Test/Text\" is not a time zone (%s/Test/Text is not "
             "a TZif file)\n"
             "t.conf:8: [participant d] tz: unknown time zone \"Test\" (not found in %s)\n",
             dir, dir, dir);
    expect_errors("[participant a]\ntz = Mars/Olympus\n[participant b]\ntz = ../etc/passwd\n"
                  "[participant c]\ntz = Test/Text\n[participant d]\ntz = Test\n", expected);
    struct conf *c = expect_ok("[participant a]\ntz = Test/Zone\n[participant u]\ntz = UTC\n");
    assert_string_equal(c->participants[0].tz, "Test/Zone");
    conf_free(c);

    if (saved)
        setenv("TZDIR", saved, 1);
    else
        unsetenv("TZDIR");
    free(saved);
}

static void test_other_value_types(void **state)
{
    (void)state;
    struct conf *c = expect_ok(
        "[participant p01]\nintervention_apps = org.a.b , com.x-y,z\nstudy_end = 2028-02-29\n"
        "supporter = s-1\n[study]\nseed = 18446744073709551615\n[nudge n]\n"
        "when = ema.answered > 1\n"
        "message = m\nquiet_hours = 22:30-07:15\n[ingest]\nmax_message = 64KiB\n");
    const struct conf_participant *p = conf_participant(c, "p01");
    assert_non_null(p);
    assert_int_equal(p->intervention_apps.n, 3);
    assert_string_equal(p->intervention_apps.items[1], "com.x-y");
    assert_string_equal(p->intervention_apps.items[2], "z");
    assert_true(p->study_end.set);
    assert_int_equal(p->study_end.day, 21243); /* 2028-02-29 */
    assert_string_equal(p->supporter, "s-1");
    assert_true(c->study.seed == UINT64_MAX);
    const struct conf_nudge *n = conf_nudge(c, "n");
    assert_true(n->quiet_hours.set);
    assert_int_equal(n->quiet_hours.start_min, 22 * 60 + 30);
    assert_int_equal(n->quiet_hours.end_min, 7 * 60 + 15);
    assert_int_equal(c->ingest.max_message, 65536);
    conf_free(c);

    expect_errors("[participant p01]\nintervention_apps = a, a\nstudy_end = 2027-02-29\n"
                  "supporter = x y\n[nudge n]\nwhen = ema.answered > 1\nmessage = m\nquiet_hours = "
                  "25:00-01:00\n"
                  "[participant p02]\nintervention_apps = a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,"
                  "q,r,s,t,u,v,"
                  "w,x,y,z,a1,b1,c1,d1,e1,f1,g1\n[study]\nseed = 18446744073709551616\n",
                  "t.conf:2: [participant p01] intervention_apps: column 24: \"a\" is listed "
                  "twice\n"
                  "t.conf:3: [participant p01] study_end: invalid date \"2027-02-29\" (expected "
                  "YYYY-MM-DD, 1970..2199)\n"
                  "t.conf:4: [participant p01] supporter: invalid id \"x y\" (1-64 of A-Z "
                  "a-z 0-9 _ -)\n"
                  "t.conf:8: [nudge n] quiet_hours: invalid time range \"25:00-01:00\" (expected "
                  "HH:MM-HH:MM, e.g. 22:00-08:00)\n"
                  "t.conf:10: [participant p02] intervention_apps: column 91: too many items "
                  "(max 32)\n"
                  "t.conf:12: [study] seed: invalid unsigned 64-bit integer "
                  "\"18446744073709551616\"\n");
}

static void test_quiet_hours_edges(void **state)
{
    (void)state;
    struct conf *c = expect_ok("[nudge n]\nwhen = ema.answered > 1\nmessage = m\n"
                               "quiet_hours = 22:00-24:00\n");
    assert_int_equal(c->nudges[0].quiet_hours.end_min, 1440);
    conf_free(c);
    expect_errors("[nudge n]\nwhen = ema.answered > 1\nmessage = m\nquiet_hours = 10:00-10:00\n"
                  "[nudge o]\nwhen = ema.answered > 1\nmessage = m\nquiet_hours = 00:00-24:00\n",
                  "t.conf:4: [nudge n] quiet_hours: time range \"10:00-10:00\" is empty or the "
                  "whole day\n"
                  "t.conf:8: [nudge o] quiet_hours: time range \"00:00-24:00\" is empty or the "
                  "whole day\n");
}

static void test_a_refused_value_does_not_cascade(void **state)
{
    (void)state;
    /* one mistake, one message: no "needs participant" or "missing driver" on top */
    expect_errors("[source band]\ndriver = ble\nparticipant = p 01\naddress = 00:11:22:33:44:55\n"
                  "[source s]\ndriver = blue\n",
                  "t.conf:3: [source band] participant: invalid id \"p 01\" (1-64 of A-Z a-z 0-9 "
                  "_ -)\n"
                  "t.conf:6: [source s] driver: invalid value \"blue\" (expected one of: file, "
                  "ingest, ble, usb)\n");
}

static void test_duplicate_key_is_an_error(void **state)
{
    (void)state;
    expect_errors("[pipeline]\nlateness = 1h\nnonwear = choi\nlateness = 2h\n"
                  "[participant p]\ntz = UTC\n[pipeline]\nlateness = 3h\n",
                  "t.conf:4: duplicate key \"lateness\" in [pipeline] (first set at line 2)\n"
                  "t.conf:8: duplicate key \"lateness\" in [pipeline] (first set at line 2)\n");
}

static void test_duplicate_participant_is_an_error(void **state)
{
    (void)state;
    expect_errors("[participant p01]\ntz = UTC\n\n[participant p01]\ntz = Europe/London\n"
                  "[nudge a]\nwhen = ema.answered > 1\nmessage = m\n[nudge a]\n",
                  "t.conf:4: duplicate section [participant p01] (first at line 1)\n"
                  "t.conf:9: duplicate section [nudge a] (first at line 6)\n");
}

/* ---- cross-checks ------------------------------------------------------------------- */

static void test_source_naming_a_missing_participant_is_an_error(void **state)
{
    (void)state;
    expect_errors("[participant p01]\n[source phone-p09]\ndriver = ingest\nparticipant = p09\n",
                  "t.conf:4: [source phone-p09] participant: no [participant p09] is defined\n");
    struct conf *c = expect_ok("[source phone]\ndriver = ingest\nparticipant = p01\n"
                               "[participant p01]\n");  /* order does not matter */
    assert_int_equal(c->n_sources, 1);
    assert_int_equal(c->sources[0].driver, CONF_DRIVER_INGEST);
    assert_string_equal(conf_source(c, "phone")->participant, "p01");
    assert_null(conf_source(c, "other"));
    conf_free(c);
}

static void test_driver_options_are_checked(void **state)
{
    (void)state;
    expect_errors("[participant p]\n[source a]\nparticipant = p\n[source b]\ndriver = file\n"
                  "address = 00:11:22:33:44:55\n[source c]\ndriver = ble\n[source d]\ndriver "
                  "= usb\n"
                  "participant = p\nvid_pid = 4d8:57\n[source e]\ndriver = usb\nparticipant = p\n"
                  "[source f]\ndriver = bluetooth\npath = /x\n[source g]\ndriver = ble\n"
                  "participant = p\naddress = 00:11:22:33:44\n",
                  "t.conf:17: [source f] driver: invalid value \"bluetooth\" (expected one of: "
                  "file, ingest, ble, usb)\n"
                  "t.conf:2: [source a]: required key \"driver\" is missing\n"
                  "t.conf:6: [source b] address: not used by driver file\n"
                  "t.conf:4: [source b]: driver file needs \"path\"\n"
                  "t.conf:7: [source c]: driver ble needs \"participant\"\n"
                  "t.conf:7: [source c]: driver ble needs \"address\"\n"
                  "t.conf:12: [source d] vid_pid: invalid \"4d8:57\" (expected VVVV:PPPP in hex, "
                  "e.g. 04d8:0057)\n"
                  "t.conf:13: [source e]: driver usb needs \"vid_pid\" or \"serial\"\n"
                  "t.conf:22: [source g] address: invalid Bluetooth address \"00:11:22:33:44\" "
                  "(expected XX:XX:XX:XX:XX:XX)\n");
}

/* [source] hci and irk (docs/ble-scan.md): what the scanner is opened with, and the key its
 * advertisements are resolved with, both refused with FILE:LINE before the daemon starts.
 * An irk is a secret: no message quotes it. */
static void test_ble_hci_and_irk_are_checked(void **state)
{
    (void)state;
#define BLE_SRC(n) "[source " n "]\ndriver = ble\nparticipant = p\naddress = 00:11:22:33:44:55\n"
#define IRK "9B7D390AA610103405ADC857A33402EC"
    char longpath[160] = "hci = sim:/";
    memset(longpath + strlen(longpath), 'a', 110);
    char text[2048];
    snprintf(text, sizeof text, "[participant p]\n"
             BLE_SRC("a") "hci = foo\n" BLE_SRC("b") "hci = hci\n"
             BLE_SRC("c") "hci = hci99999999999\n" BLE_SRC("d") "hci = sim:\n"
             BLE_SRC("e") "%s\n" BLE_SRC("f") "hci = hci01\n" BLE_SRC("g") "hci = hci10000\n"
             BLE_SRC("h") "hci = sim:relative.sock\n"
             BLE_SRC("i") "irk = 9B7D390AA610103405ADC857A33402E\n"
             BLE_SRC("j") "irk = 9B7D390AA610103405ADC857A3340ZEC\n"
             BLE_SRC("k") "irk = 00000000000000000000000000000000\n"
             BLE_SRC("l") "transport = sim:/tmp/a.s\nirk = " IRK "\n"
             BLE_SRC("m") "connect = direct\nirk = " IRK "\n"
             "[source n]\ndriver = file\npath = /x\nirk = " IRK "\n", longpath);
    expect_errors(text,
                  "t.conf:6: [source a] hci: invalid \"foo\": unknown controller (expected "
                  "auto, hciN or sim:/PATH)\n"
                  "t.conf:11: [source b] hci: invalid \"hci\": invalid adapter \"hci\" "
                  "(expected hciN, N 0..9999)\n"
                  "t.conf:16: [source c] hci: invalid \"hci99999999999\": invalid adapter "
                  "\"hci999999999...\" (expected hciN, N 0..9999)\n"
                  "t.conf:21: [source d] hci: invalid \"sim:\": sim: needs an absolute socket "
                  "path (sim:/PATH)\n"
                  "t.conf:26: [source e] hci: invalid \"sim:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                  "...\": socket path longer than 107 bytes\n"
                  "t.conf:31: [source f] hci: invalid \"hci01\": invalid adapter \"hci01\" "
                  "(expected hciN, N 0..9999)\n"
                  "t.conf:36: [source g] hci: invalid \"hci10000\": invalid adapter "
                  "\"hci10000\" (expected hciN, N 0..9999)\n"
                  "t.conf:41: [source h] hci: invalid \"sim:relative.sock\": sim: needs an "
                  "absolute socket path (sim:/PATH)\n"
                  "t.conf:46: [source i] irk: expected 32 hex digits, got 31 characters (the "
                  "key as BlueZ stores it: [IdentityResolvingKey] Key= in "
                  "/var/lib/bluetooth/ADAPTER/DEVICE/info)\n"
                  "t.conf:51: [source j] irk: not a hex digit at character 30 (the key as "
                  "BlueZ stores it: [IdentityResolvingKey] Key= in "
                  "/var/lib/bluetooth/ADAPTER/DEVICE/info)\n"
                  "t.conf:56: [source k] irk: all zeros, which stands for no key: the device "
                  "did not hand one out (the key as BlueZ stores it: [IdentityResolvingKey] "
                  "Key= in /var/lib/bluetooth/ADAPTER/DEVICE/info)\n"
                  "t.conf:62: [source l] irk: only used when scanning (connect = scan, or auto "
                  "with an l2cap transport)\n"
                  "t.conf:68: [source m] irk: only used when scanning (connect = scan, or auto "
                  "with an l2cap transport)\n"
                  "t.conf:72: [source n] irk: not used by driver file\n");
    /* what is accepted: the forms of hci, an irk in either case where the source scans */
    struct conf *c = expect_ok("[participant p]\n" BLE_SRC("a") "hci = auto\nirk = " IRK "\n"
                               BLE_SRC("b") "hci = hci0\n" BLE_SRC("c") "hci = hci9999\n"
                               BLE_SRC("d") "hci = sim:/run/h.s\ntransport = sim:/run/a.s\n"
                               "connect = scan\nirk = 9b7d390aa610103405adc857a33402ec\n");
    assert_string_equal(c->sources[0].irk, IRK);
    assert_string_equal(c->sources[2].hci, "hci9999");
    conf_free(c);
#undef BLE_SRC
#undef IRK
}

/* A ble source's duration key: one value below its range, one above, its use on a file
 * source refused with their lines; a good value and the default read back. */
static void check_ble_duration(const char *key, const char *low, const char *high,
                               const char *range, const char *good, int64_t good_ms,
                               int64_t def_ms, size_t off)
{
#define BLE_SRC(n) "[source " n "]\ndriver = ble\nparticipant = p\naddress = 00:11:22:33:44:55\n"
    char text[1024], want[1024];
    snprintf(text, sizeof text,
             "[participant p]\n" BLE_SRC("a") "%s = %s\n" BLE_SRC("b") "%s = %s\n"
             "[source c]\ndriver = file\npath = /x\n%s = 10s\n",
             key, low, key, high, key);
    snprintf(want, sizeof want,
             "t.conf:6: [source a] %s: %s is out of range (%s)\n"
             "t.conf:11: [source b] %s: %s is out of range (%s)\n"
             "t.conf:15: [source c] %s: not used by driver file\n",
             key, low, range, key, high, range, key);
    expect_errors(text, want);
    snprintf(text, sizeof text, "[participant p]\n" BLE_SRC("a") "%s = %s\n" BLE_SRC("b"), key,
             good);
    struct conf *c = expect_ok(text);
    assert_int_equal(*(const int64_t *)((const char *)&c->sources[0] + off), good_ms);
    assert_int_equal(*(const int64_t *)((const char *)&c->sources[1] + off), def_ms);
    conf_free(c);
#undef BLE_SRC
}

/* [source] nudge_resend: how often a relay phone's unconfirmed nudge is written again;
 * scan_silence: how long a scanner may hear nothing while a source waits. */
static void test_ble_durations_are_checked(void **state)
{
    (void)state;
    check_ble_duration("nudge_resend", "0s", "2h", "1s..1h", "5min", 300000, 60000,
                       offsetof(struct conf_source, nudge_resend_ms));
    check_ble_duration("scan_silence", "4s", "61min", "5s..1h", "5s", 5000, 60000,
                       offsetof(struct conf_source, scan_silence_ms));
}

static void test_tcp_endpoint_without_curve_keys_is_an_error(void **state)
{
    (void)state;
    expect_errors("[publish]\nendpoint = tcp://0.0.0.0:5556\ncurve_secret_key_file = /k\n"
                  "[control]\nendpoint = tcp://127.0.0.1:5557\n[ingest]\nendpoint = tcp://[::1]:0\n"
                  "",
                  "t.conf:7: [ingest] endpoint: \"tcp://[::1]:0\": the port must be a number "
                  "1..65535\n"
                  "t.conf:2: [publish] endpoint: \"tcp://0.0.0.0:5556\" needs CURVE: set "
                  "curve_secret_key_file and curve_clients_file in [publish]\n"
                  "t.conf:5: [control] endpoint: \"tcp://127.0.0.1:5557\" needs CURVE: set "
                  "curve_secret_key_file and curve_clients_file in [control]\n");
    struct conf *c = expect_ok("[publish]\nendpoint = tcp://*:5556\ncurve_secret_key_file = /k\n"
                               "curve_clients_file = /c\n");
    assert_int_equal(c->publish.n_endpoints, 1);
    assert_string_equal(c->publish.endpoints[0], "tcp://*:5556");
    assert_true(c->publish.endpoints_explicit);
    conf_free(c);
}

static void test_endpoint_forms(void **state)
{
    (void)state;
    expect_errors("[publish]\nendpoint = inproc://feed\nendpoint = ipc://run/x\nendpoint = "
                  "udp://x:1\n"
                  "endpoint = tcp://host\nendpoint = ipc:///a\nendpoint = ipc:///a\n"
                  "[control]\nendpoint = ipc:///a\n",
                  "t.conf:2: [publish] endpoint: inproc:// endpoints only work inside one process; "
                  "use ipc:// or tcp://\n"
                  "t.conf:3: [publish] endpoint: \"ipc://run/x\": ipc:// needs an absolute path, "
                  "e.g. ipc:///run/engaged/feed\n"
                  "t.conf:4: [publish] endpoint: invalid endpoint \"udp://x:1\" (expected "
                  "ipc:///ABSOLUTE/PATH or tcp://HOST:PORT)\n"
                  "t.conf:5: [publish] endpoint: invalid endpoint \"tcp://host\" (expected "
                  "tcp://HOST:PORT)\n"
                  "t.conf:7: [publish] endpoint: \"ipc:///a\" is listed twice\n"
                  "t.conf:9: [control] endpoint: \"ipc:///a\" is also the [publish] endpoint\n");
}

static void test_nudge_escalation_is_checked(void **state)
{
    (void)state;
    expect_errors("[nudge a]\nwhen = ema.expired > 1\nmessage = m\nescalate_to = b\n"
                  "[nudge b]\nwhen = ema.expired > 1\nmessage = m\nescalate_to = a\n"
                  "[nudge c]\nwhen = ema.expired > 1\nmessage = m\nescalate_to = c\n"
                  "[nudge d]\nwhen = ema.expired > 1\nmessage = m\nescalate_to = zz\n"
                  "[nudge e]\nmessage = m\nmax_per_day = 3\nmax_per_week = 2\n",
                  "t.conf:12: [nudge c] escalate_to: a rule cannot escalate to itself\n"
                  "t.conf:16: [nudge d] escalate_to: no [nudge zz] is defined\n"
                  "t.conf:17: [nudge e]: required key \"when\" is missing\n"
                  "t.conf:17: [nudge e]: max_per_week (2) is less than max_per_day (3)\n"
                  "t.conf:4: [nudge a] escalate_to: escalation loop a -> b -> a\n");
    struct conf *c = expect_ok("[nudge a]\nwhen = ema.expired > 1\nmessage = m\nescalate_to = b\n"
                               "[nudge b]\nwhen = ema.expired > 1\nmessage = m\n"
                               "recipient = supporter\n");
    assert_int_equal(c->nudges[0].escalate_index, 1);
    assert_int_equal(c->nudges[1].escalate_index, -1);
    assert_int_equal(c->nudges[1].recipient, CONF_TO_SUPPORTER);
    assert_int_equal(c->nudges[0].escalate_after_ms, 48 * 3600000LL);
    conf_free(c);
}

/* ---- the `when` expression ------------------------------------------------------------ */

static void test_when_syntax_errors_report_the_column(void **state)
{
    (void)state;
    static const struct {
        const char *when, *msg;
    } cases[] = {
        /* "when = " is 7 bytes: the expression's first byte is column 8 */
        {"engage.minutes >= and x.y < 3", "column 26: expected a number after \">=\""},
        {"a.b > 1 and", "column 19: unexpected end of expression (expected a feature name such "
                        "as engage.minutes)"},
        {"Engage.x > 1", "column 8: invalid feature name \"Engage.x\" (expected family.name in "
                         "lowercase, e.g. engage.minutes)"},
        {"a.b = 1", "column 12: unexpected \"=\" (compare with \"==\")"},
        {"a.b > 1 && c.d < 2", "column 16: unexpected \"&\" (write \"and\")"},
        {"a.b > 1 c.d < 2", "column 16: expected \"and\", \"or\" or the end of the expression"},
        {"(a.b > 1 or c.d < 2", "column 27: missing \")\""},
        {"a.b > 1)", "column 15: unexpected \")\""},
        {"a.b 1", "column 12: expected <, <=, >, >=, ==, != or shifts/rises/falls after \"a.b\""},
        {"a.b shifts 1", "column 19: expected <, <=, >, >=, ==, != after \"a.b\""},
        {"a.b > x", "column 14: expected a number after \">\""},
        {"a.b > 1.", "column 14: expected a number after \">\""},
        {"a.b shifts > 90 median 14d", "column 24: expected \"from median Nd\" after the number"},
        {"a.b rises > 1 from median 14", "column 34: expected a number of days after "
                                         "\"median\", e.g. 14d"},
        {"a.b falls > 1 from median 100d", "column 34: the median window must be 3d..90d"},
        {"", NULL},  /* an empty required value */
        {"not", "column 11: unexpected end of expression (expected a feature name such as "
                "engage.minutes)"},
        {"((((((((((((((((((a.b > 1))))))))))))))))))", "column 24: expression nested too deeply "
                                                        "(max 16)"},
        {"a.b > 1 \xc3\xa9", "column 16: unexpected byte 0xc3 (expressions are plain ASCII)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[512], expected[512];
        snprintf(text, sizeof(text), "[nudge n]\nmessage = m\nwhen = %s\n", cases[i].when);
        if (cases[i].msg)
            snprintf(expected, sizeof(expected), "t.conf:3: [nudge n] when: %s\n", cases[i].msg);
        else
            snprintf(expected, sizeof(expected), "t.conf:3: [nudge n] when: needs a value\n");
        expect_errors(text, expected);
    }
    /* the column counts from the start of the line, indentation included */
    expect_errors("[nudge n]\nmessage = m\n    when   =  a.b >\n",
                  "t.conf:3: [nudge n] when: column 20: unexpected end of expression (expected a "
                  "number after \">\")\n");
    /* The line limit keeps file expressions to about 21 comparisons; the parser's own bound
     * (32) is a backstop, tested directly. */
    char text[1024] = "a.b>1", msg[256];
    struct conf_when w = {0};
    int col;
    for (int i = 0; i < 31; i++)
        strcat(text, " or a.b>1");
    assert_int_equal(conf_when_parse(text, &w, msg, sizeof(msg), &col), 0);
    assert_int_equal(w.n, 63);
    free(w.nodes);
    strcat(text, " or a.b>1");
    assert_int_equal(conf_when_parse(text, &w, msg, sizeof(msg), &col), -EINVAL);
    assert_string_equal(msg, "too many conditions (max 32)");
    assert_int_equal(col, (int)strlen(text));
}

/* Conditions name features of the catalogue: a misspelling is an error, with the nearest name. */
static void test_unknown_feature_is_an_error(void **state)
{
    (void)state;
    expect_errors("[nudge n]\nmessage = m\nwhen = engage.minute < 5 or yield.phone > 0\n"
                  "[nudge o]\nmessage = m\nwhen = foo.bar > 1\nescalate_to = n\n"
                  "reengaged_when = engage.sesions >= 1\n",
                  "t.conf:3: [nudge n] when: unknown feature \"engage.minute\" (did you mean "
                  "engage.minutes?); the features are listed in docs/features.md\n"
                  "t.conf:6: [nudge o] when: unknown feature \"foo.bar\"; the features are "
                  "listed in docs/features.md\n"
                  "t.conf:8: [nudge o] reengaged_when: unknown feature \"engage.sesions\" (did you "
                  "mean engage.sessions?); the features are listed in docs/features.md\n");
}

static void test_when_parses_into_an_ast(void **state)
{
    (void)state;
    struct conf *c = expect_ok(
        "[nudge n]\nmessage = m\nwhen = not (ema.answered > 1 or ema.delivered rises >= -2.5 "
        "from median 7d) and engage.minutes != 0\n[nudge s]\nmessage = m\n"
        "when = act.sleep_midpoint shifts > 90 from median "
        "14d\n");
    const struct conf_when *w = &c->nudges[0].when;
    assert_string_equal(w->text, "not (ema.answered > 1 or ema.delivered rises >= -2.5 from "
                                 "median 7d) and engage.minutes != 0");
    const struct conf_expr *root = &w->nodes[w->root];
    assert_int_equal(root->kind, CONF_EXPR_AND);
    const struct conf_expr *neg = &w->nodes[root->a], *cmp = &w->nodes[root->b];
    assert_int_equal(neg->kind, CONF_EXPR_NOT);
    assert_int_equal(cmp->kind, CONF_EXPR_CMP);
    assert_string_equal(cmp->feature, "engage.minutes");
    assert_int_equal(cmp->cmp, CONF_CMP_NE);
    assert_true(cmp->value == 0.0);
    const struct conf_expr *or = &w->nodes[neg->a];
    assert_int_equal(or->kind, CONF_EXPR_OR);
    const struct conf_expr *a = &w->nodes[or->a], *rise = &w->nodes[or->b];
    assert_string_equal(a->feature, "ema.answered");
    assert_int_equal(a->rel, CONF_REL_VALUE);
    assert_int_equal(a->cmp, CONF_CMP_GT);
    assert_true(a->value == 1.0);
    assert_string_equal(rise->feature, "ema.delivered");
    assert_int_equal(rise->rel, CONF_REL_RISES);
    assert_int_equal(rise->median_days, 7);
    assert_int_equal(rise->cmp, CONF_CMP_GE);
    assert_true(rise->value == -2.5);
    assert_int_equal(w->n, 6);

    const struct conf_when *s = &c->nudges[1].when;
    assert_int_equal(s->n, 1);
    assert_int_equal(s->nodes[s->root].rel, CONF_REL_SHIFTS);
    assert_int_equal(s->nodes[s->root].median_days, 14);
    assert_string_equal(s->nodes[s->root].feature, "act.sleep_midpoint");
    conf_free(c);

    /* "and" binds tighter than "or" */
    c = expect_ok("[nudge n]\nmessage = m\n"
                  "when = ema.answered < 1 or ema.delivered <= 2 and engage.minutes == 3\n");
    w = &c->nudges[0].when;
    assert_int_equal(w->nodes[w->root].kind, CONF_EXPR_OR);
    assert_int_equal(w->nodes[w->nodes[w->root].b].kind, CONF_EXPR_AND);
    conf_free(c);
}

/* ---- drop-ins ----------------------------------------------------------------------- */

static void test_dropins_override_in_byte_order(void **state)
{
    (void)state;
    write_file("main.conf", "[pipeline]\nlateness = 10min\nnonwear = troiano\n"
                            "[participant p01]\ntz = UTC\nprescribed_days_per_week = 5\n"
                            "[publish]\nendpoint = ipc:///run/a\n");
    assert_int_equal(mkdir("main.conf.d", 0700), 0);
    /* strcmp order: "10-b" < "9-a"; ".hidden.conf" and "x.conf.bak" are not read */
    write_file("main.conf.d/9-a.conf", "[pipeline]\nlateness = 30min\n[participant p02]\n"
                                       "[publish]\nendpoint = ipc:///run/c\n");
    write_file("main.conf.d/10-b.conf", "[pipeline]\nlateness = 20min\nnonwear =\n"
                                        "[participant p01]\ntz = Europe/London\n"
                                        "[publish]\nendpoint = ipc:///run/b\n");
    write_file("main.conf.d/.hidden.conf", "[bogus]\n");
    write_file("main.conf.d/x.conf.bak", "[bogus]\n");
    struct errs e = {0};
    struct conf *c = NULL;
    assert_int_equal(conf_load("main.conf", &c, collect, &e), 0);
    assert_string_equal(e.buf, "");
    assert_int_equal(c->n_files, 3);
    assert_string_equal(c->files[1], "main.conf.d/10-b.conf");
    assert_string_equal(c->files[2], "main.conf.d/9-a.conf");
    assert_int_equal(c->pipeline.lateness_ms, 30 * 60000);          /* last file wins */
    assert_int_equal(c->pipeline.nonwear, CONF_NONWEAR_CHOI);        /* empty = default */
    assert_int_equal(c->n_participants, 2);                          /* amended + added */
    assert_string_equal(c->participants[0].tz, "Europe/London");
    assert_int_equal(c->participants[0].prescribed_days_per_week, 5);
    assert_string_equal(c->participants[0].loc.file, "main.conf");
    assert_string_equal(c->participants[1].id, "p02");
    assert_int_equal(c->publish.n_endpoints, 3);                     /* accumulate */
    assert_string_equal(c->publish.endpoints[1], "ipc:///run/b");
    assert_string_equal(c->publish.endpoints[2], "ipc:///run/c");
    conf_free(c);

    /* an empty value clears a repeatable key; errors name the drop-in */
    write_file("main.conf.d/11-c.conf", "[publish]\nendpoint =\n[pipeline]\nlateness = 1y\n");
    memset(&e, 0, sizeof(e));
    assert_int_equal(conf_load("main.conf", &c, collect, &e), -1);
    assert_string_equal(e.buf, "main.conf.d/11-c.conf:4: [pipeline] lateness: invalid duration "
                               "\"1y\" (use e.g. 500ms, 30s, 10min, 2h, 7d)\n");
    write_file("main.conf.d/11-c.conf", "[publish]\nendpoint =\n");
    memset(&e, 0, sizeof(e));
    assert_int_equal(conf_load("main.conf", &c, collect, &e), 0);
    assert_int_equal(c->publish.n_endpoints, 1);
    assert_string_equal(c->publish.endpoints[0], "ipc:///run/c");
    conf_free(c);
}

static void test_too_many_dropins_is_an_error(void **state)
{
    (void)state;
    write_file("m.conf", "");
    assert_int_equal(mkdir("m.conf.d", 0700), 0);
    for (int i = 0; i < CONF_MAX_DROPINS + 1; i++) {
        char name[64];
        snprintf(name, sizeof(name), "m.conf.d/%02d.conf", i);
        write_file(name, "[store]\n");
    }
    struct errs e = {0};
    struct conf *c = NULL;
    assert_int_equal(conf_load("m.conf", &c, collect, &e), -1);
    assert_string_equal(e.buf, "m.conf.d:0: more than 64 drop-in files; only the first 64 are "
                               "read\n");
}

/* ---- shipped files ------------------------------------------------------------------- */

static void src_path(char *buf, size_t cap, const char *rel)
{
    snprintf(buf, cap, "%s/%s", src_root, rel);
}

/* The fixed sections of two configs are equal (named sections are not compared). */
static void assert_same_fixed_sections(const struct conf *a, const struct conf *b)
{
    assert_memory_equal(&a->daemon, &b->daemon, sizeof(a->daemon));
    assert_memory_equal(&a->store, &b->store, sizeof(a->store));
    struct conf_publish pa = a->publish, pb = b->publish;
    pa.endpoints_explicit = pb.endpoints_explicit = false;
    assert_memory_equal(&pa, &pb, sizeof(pa));
    assert_memory_equal(&a->control, &b->control, sizeof(a->control));
    assert_memory_equal(&a->ingest, &b->ingest, sizeof(a->ingest));
    assert_memory_equal(&a->pipeline, &b->pipeline, sizeof(a->pipeline));
    assert_memory_equal(&a->study, &b->study, sizeof(a->study));
}

static void test_shipped_default_config_is_valid_and_documents_the_defaults(void **state)
{
    (void)state;
    char path[PATH_MAX + 64];
    src_path(path, sizeof(path), "config/engaged.conf");
    struct errs e = {0};
    struct conf *c = NULL, *def = conf_new_default();
    assert_non_null(def);
    assert_int_equal(conf_load(path, &c, collect, &e), 0);
    assert_string_equal(e.buf, "");
    assert_same_fixed_sections(c, def);
    assert_int_equal(c->n_participants + c->n_sources + c->n_nudges, 0);
    assert_false(c->publish.endpoints_explicit);
    conf_free(c);

    /* Uncommenting every "#key = value" and "#[section]" line must give a valid config
     * whose values are exactly the built-in defaults: the file documents them truly. */
    FILE *in = fopen(path, "r"), *out = fopen("uncommented.conf", "w");
    assert_non_null(in);
    assert_non_null(out);
    char line[512];
    int uncommented = 0;
    while (fgets(line, sizeof(line), in)) {
        size_t key = strspn(line + 1, "abcdefghijklmnopqrstuvwxyz_");
        int setting = line[0] == '#' && ((key > 0 && strncmp(line + 1 + key, " =", 2) == 0) ||
                                         line[1] == '[');
        fputs(setting ? line + 1 : line, out);
        uncommented += setting;
    }
    fclose(in);
    fclose(out);
    assert_true(uncommented > 50);
    memset(&e, 0, sizeof(e));
    assert_int_equal(conf_load("uncommented.conf", &c, collect, &e), 0);
    assert_string_equal(e.buf, "");
    assert_same_fixed_sections(c, def);
    assert_true(c->publish.endpoints_explicit);
    assert_int_equal(c->n_participants, 1);
    conf_free(c);
    conf_free(def);
}

static void test_shipped_examples_are_valid(void **state)
{
    (void)state;
    static const char *const examples[] = {
        "config/examples/20-participant-p01.conf", "config/examples/40-nudges.conf",
        "config/examples/60-publish-tcp.conf",
    };
    char path[PATH_MAX + 64];
    struct errs e = {0};
    struct conf *c = NULL;
    /* each on its own ... */
    for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
        src_path(path, sizeof(path), examples[i]);
        assert_int_equal(conf_load(path, &c, collect, &e), 0);
        assert_string_equal(e.buf, "");
        conf_free(c);
    }
    /* ... and all together as drop-ins of the shipped default */
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof(cmd), "cp '%s/config/engaged.conf' engaged.conf && mkdir engaged.conf.d "
             "&& cp '%s'/config/examples/*.conf engaged.conf.d/", src_root, src_root);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(conf_load("engaged.conf", &c, collect, &e), 0);
    assert_string_equal(e.buf, "");
    assert_true(c->n_files >= 4);
    assert_int_equal(c->n_participants, 1);
    assert_int_equal(c->n_sources, 4);
    assert_true(c->n_nudges >= 4);
    assert_int_equal(c->publish.n_endpoints, 2);
    assert_string_equal(conf_participant(c, "p01")->tz, "America/New_York");
    conf_free(c);
}

static void test_docs_and_default_file_cover_every_key(void **state)
{
    (void)state;
    char path[PATH_MAX + 64];
    static char docs[256 * 1024], dflt[64 * 1024];
    src_path(path, sizeof(path), "docs/config.md");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    docs[fread(docs, 1, sizeof(docs) - 1, f)] = 0;
    fclose(f);
    src_path(path, sizeof(path), "config/engaged.conf");
    f = fopen(path, "r");
    assert_non_null(f);
    dflt[fread(dflt, 1, sizeof(dflt) - 1, f)] = 0;
    fclose(f);
    for (size_t i = 0; i < conf_n_keys; i++) {
        const struct conf_key *k = &conf_keys[i];
        char want[128];
        snprintf(want, sizeof(want), "`%s`", k->name);
        if (!strstr(docs, want))
            fail_msg("docs/config.md does not document %s", k->name);
        snprintf(want, sizeof(want), "\n#%s =", k->name);
        if (k->sect < CS__FIXED && !strstr(dflt, want))
            fail_msg("config/engaged.conf does not show %s", k->name);
        for (int j = 0; k->names && k->names[j]; j++) {
            snprintf(want, sizeof(want), "`%s`", k->names[j]);
            if (!strstr(docs, want))
                fail_msg("docs/config.md does not name %s value %s", k->name, k->names[j]);
        }
    }
}

/* ---- the table and the defaults ------------------------------------------------------- */

static void test_every_default_in_the_table_parses(void **state)
{
    (void)state;
    struct conf_ctx ctx = {"/nonexistent"};
    size_t per_sect[CS__COUNT] = {0};
    for (size_t i = 0; i < conf_n_keys; i++) {
        const struct conf_key *k = &conf_keys[i];
        union {
            struct conf_when w;
            struct conf_list l;
            int64_t i;
            double d;
            char s[CONF_STR_SIZE];
        } field;
        char msg[256] = "";
        int col;
        per_sect[k->sect]++;
        assert_true(conf_key_slot(k) < CONF_SECT_KEYS_MAX);
        if (k->flags & CK_REQUIRED)
            assert_null(k->def);
        if (!k->def)
            continue;
        memset(&field, 0, sizeof(field));
        if (conf_key_parse(k, &field, k->def, &ctx, msg, sizeof(msg), &col) != 0)
            fail_msg("default of %s does not parse: %s", k->name, msg);
    }
    for (int s = 0; s < CS__COUNT; s++)
        assert_true(per_sect[s] > 0 && per_sect[s] <= CONF_SECT_KEYS_MAX);
}

static void test_built_in_defaults_match_the_spec(void **state)
{
    (void)state;
    struct conf *c = conf_new_default();
    assert_non_null(c);
    assert_int_equal(c->daemon.log_level, 6);
    assert_int_equal(c->daemon.watchdog_ms, -1);
    assert_string_equal(c->store.path, "/var/lib/engaged/engaged.db");
    assert_int_equal(c->store.batch_max, 1000);
    assert_int_equal(c->store.batch_delay_ms, 50);
    assert_int_equal(c->store.synchronous, CONF_SYNC_NORMAL);
    assert_int_equal(c->publish.n_endpoints, 1);
    assert_string_equal(c->publish.endpoints[0], "ipc:///run/engaged/feed");
    assert_false(c->publish.endpoints_explicit);
    assert_int_equal(c->publish.lvc_max_topics, 100000);
    assert_int_equal(c->publish.sndhwm, 10000);
    assert_false(c->publish.event_topics);
    assert_false(c->publish.allow_app_names);
    assert_string_equal(c->control.endpoint, "ipc:///run/engaged/control");
    assert_string_equal(c->ingest.endpoint, "ipc:///run/engaged/ingest");
    assert_int_equal(c->ingest.max_message, 4 << 20);
    assert_int_equal(c->ingest.max_lines, 10000);
    assert_int_equal(c->pipeline.lateness_ms, 600000);
    assert_int_equal(c->pipeline.coverage_gap_ms, 12 * 3600000LL);
    assert_int_equal(c->pipeline.screen_hold_ms, 24 * 3600000LL);
    assert_int_equal(c->pipeline.revise_ms, 24 * 3600000LL);
    assert_int_equal(c->pipeline.ema_expire_ms, 2 * 3600000LL);
    assert_int_equal(c->pipeline.screen_ignore_shorter_ms, 0);
    assert_int_equal(c->pipeline.screen_ignore_longer_ms, 360 * 60000);
    assert_int_equal(c->pipeline.rhythm_convention, CONF_RHYTHM_CLASSIC);
    assert_int_equal(c->pipeline.sleep_algorithm, CONF_SLEEP_COLE_KRIPKE);
    assert_int_equal(c->pipeline.rhythm_binarize, CONF_AUTO);
    assert_int_equal(c->pipeline.sleep_scoring, CONF_SCORING_ACTILIFE);
    assert_int_equal(c->pipeline.sleep_rescore, CONF_RESCORE_AUTO);
    assert_int_equal(c->pipeline.nonwear, CONF_NONWEAR_CHOI);
    assert_int_equal(c->n_participants + c->n_sources + c->n_nudges + c->n_files, 0);
    conf_free(c);
    conf_free(NULL);

    c = expect_ok("[participant p]\n[nudge n]\nwhen = ema.answered > 1\nmessage = m\n");
    assert_string_equal(c->participants[0].tz, "UTC");
    assert_int_equal(c->participants[0].prescribed_days_per_week, 7);
    assert_false(c->participants[0].study_end.set);
    const struct conf_nudge *n = &c->nudges[0];
    assert_int_equal(n->recipient, CONF_TO_PARTICIPANT);
    assert_int_equal(n->priority, CONF_PRIO_NORMAL);
    assert_true(n->probability == 1.0);
    assert_int_equal(n->cooldown_ms, 24 * 3600000LL);
    assert_false(n->quiet_hours.set);
    assert_string_equal(n->escalate_to, "");
    conf_free(c);
}

static void test_fill_pipeline_copies_keys_and_participants(void **state)
{
    (void)state;
    struct conf *c = expect_ok("[pipeline]\nlateness = 1h\nscreen_ignore_shorter = 30s\n"
                               "max_buffered = 77\n[participant p01]\ntz = Europe/Paris\n"
                               "intervention_apps = a.b, c.d\nprescribed_days_per_week = 3\n"
                               "[participant p02]\n");
    struct pipeline_conf pc;
    struct pipeline_participant_conf *parts = NULL;
    assert_int_equal(conf_fill_pipeline(c, &pc, &parts), 0);
    assert_int_equal(pc.lateness_ms, 3600000);
    assert_true(pc.screen_ignore_shorter_min == 0.5);
    assert_true(pc.screen_ignore_longer_min == 360.0);
    assert_int_equal(pc.max_buffered, 77);
    assert_int_equal(pc.max_day_events, 100000);
    assert_int_equal(pc.n_participants, 2);
    assert_ptr_equal(pc.participants, parts);
    assert_string_equal(parts[0].id, "p01");
    assert_string_equal(parts[0].tz, "Europe/Paris");
    assert_int_equal(parts[0].n_apps, 2);
    assert_string_equal(parts[0].apps[1], "c.d");
    assert_true(parts[0].prescribed_days_per_week == 3.0);
    assert_string_equal(parts[1].tz, "UTC");
    free(parts);
    conf_free(c);

    c = conf_new_default();
    assert_int_equal(conf_fill_pipeline(c, &pc, &parts), 0);
    assert_null(parts);
    assert_int_equal(pc.n_participants, 0);
    conf_free(c);
}

int main(void)
{
    const char *src = getenv("ENGAGED_SRC");
    if (!getcwd(start_dir, sizeof(start_dir)))
        return 1;
    /* ctest runs this from tests/, with ENGAGED_SRC set; by hand, from tests/ too */
    if (src && *src)
        snprintf(src_root, sizeof(src_root), "%s", src);
    else if (!realpath("..", src_root))
        return 1;
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_unknown_section_is_an_error),
        T(test_unknown_key_is_an_error),
        T(test_malformed_lines_are_errors),
        T(test_indented_keys_crlf_bom_and_comments_are_accepted),
        T(test_line_longer_than_199_bytes_is_an_error),
        T(test_nul_byte_and_oversized_file_are_errors),
        T(test_missing_main_file_is_enoent),
        T(test_errors_stop_after_the_cap),
        T(test_durations_parse_and_bad_ones_are_errors),
        T(test_out_of_range_values_are_errors),
        T(test_bad_enum_is_an_error),
        T(test_ble_mgmt_values),
        T(test_bad_tz_is_an_error),
        T(test_other_value_types),
        T(test_quiet_hours_edges),
        T(test_a_refused_value_does_not_cascade),
        T(test_duplicate_key_is_an_error),
        T(test_duplicate_participant_is_an_error),
        T(test_source_naming_a_missing_participant_is_an_error),
        T(test_driver_options_are_checked),
        T(test_ble_hci_and_irk_are_checked),
        T(test_ble_durations_are_checked),
        T(test_tcp_endpoint_without_curve_keys_is_an_error),
        T(test_endpoint_forms),
        T(test_nudge_escalation_is_checked),
        T(test_when_syntax_errors_report_the_column),
        T(test_unknown_feature_is_an_error),
        T(test_when_parses_into_an_ast),
        T(test_dropins_override_in_byte_order),
        T(test_too_many_dropins_is_an_error),
        T(test_shipped_default_config_is_valid_and_documents_the_defaults),
        T(test_shipped_examples_are_valid),
        T(test_docs_and_default_file_cover_every_key),
        T(test_every_default_in_the_table_parses),
        T(test_built_in_defaults_match_the_spec),
        T(test_fill_pipeline_copies_keys_and_participants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
