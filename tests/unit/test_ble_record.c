/* daemon/ble_record.c (`[source] record`) and what drivers/file_btsnoop.c makes of its
 * captures: a new file (mode 0600, H4 header, HCI Reset, LE Connection Complete with the
 * device's address, ATT both ways, Disconnection Complete) replayed to the events of its
 * values; appending across sessions (the step count's baseline carries over a reconnection of
 * the device, not over a restart); a session killed with a connection open (its accel block
 * is dropped, not made an event, and the handle is reused); files that are not the daemon's
 * kind of capture refused untouched; record_max; a write error (a file-size limit) stopping
 * the recording with the file cut back to whole records; the once-a-second flush; the record
 * time; two sources naming one file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/ble_record.h"
#include "daemon/conf.h"
#include "drivers/ble_att.h"
#include "drivers/btsnoop.h"
#include "drivers/decode.h"
#include "drivers/reader.h"
#include "pipeline/event.h"

#define T0 INT64_C(1795700000000) /* UTC ms */
#define MS INT64_C(1000000)
#define RX BTSNOOP_DIR_RECEIVED
#define TX BTSNOOP_DIR_SENT
#define ADDR "C4:7C:8D:6A:2F:01"

static char tmpdir[64];
static char path[128];

static struct ble_rec_at at(int64_t ms)
{
    return (struct ble_rec_at){ms * MS, (T0 + ms) * 1000};
}

static void use(const char *name)
{
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
}

static struct ble_rec *rec_open(int64_t max, int64_t ms)
{
    struct ble_rec *r = NULL;
    char why[192] = "";
    int e = ble_rec_open(path, "src", max, at(ms), &r, why, sizeof why);
    if (e < 0)
        fail_msg("ble_rec_open %s: %s", path, why);
    return r;
}

static void att(struct ble_rec *r, int64_t ms, int dir, size_t n, ...)
{
    uint8_t b[64];
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)va_arg(ap, int);
    va_end(ap);
    ble_rec_att(r, at(ms), dir, b, n);
}

/* Characteristic discovery as the daemon's GATT client makes it: Heart Rate Measurement
 * (value 0x0010), Battery Level (0x0013), then InfiniTime step count (0x0020) and raw motion
 * (0x0023), 128-bit UUIDs in a second response. */
static void discover(struct ble_rec *r, int64_t ms)
{
    att(r, ms, TX, 7, 0x08, 0x01, 0x00, 0xff, 0xff, 0x03, 0x28);
    att(r, ms, RX, 16, 0x09, 7, 0x0f, 0x00, 0x10, 0x10, 0x00, 0x37, 0x2a, 0x12, 0x00, 0x12,
        0x13, 0x00, 0x19, 0x2a);
    struct att_uuid steps, motion;
    assert_int_equal(att_uuid_parse(&steps, DEC_UUID_PINETIME_STEPS), 0);
    assert_int_equal(att_uuid_parse(&motion, DEC_UUID_PINETIME_RAW_MOTION), 0);
    uint8_t rsp[2 + 2 * 21] = {0x09, 21, 0x1f, 0x00, 0x12, 0x20, 0x00};
    att_uuid_to_wire(&steps, rsp + 7);
    memcpy(rsp + 23, (uint8_t[]){0x22, 0x00, 0x10, 0x23, 0x00}, 5);
    att_uuid_to_wire(&motion, rsp + 28);
    att(r, ms, TX, 7, 0x08, 0x14, 0x00, 0xff, 0xff, 0x03, 0x28);
    ble_rec_att(r, at(ms), RX, rsp, sizeof rsp);
}

static void hr(struct ble_rec *r, int64_t ms, int bpm)
{
    att(r, ms, RX, 5, 0x1b, 0x10, 0x00, 0x00, bpm);
}

static void steps_read(struct ble_rec *r, int64_t ms, uint32_t total)
{
    att(r, ms, TX, 3, 0x0a, 0x20, 0x00);
    att(r, ms, RX, 5, 0x0b, total & 0xff, total >> 8 & 0xff, total >> 16 & 0xff, total >> 24);
}

static void motion(struct ble_rec *r, int64_t ms)
{
    att(r, ms, RX, 9, 0x1b, 0x23, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00);
}

/* ---- reading back ---- */

struct got {
    struct event ev[256];
    size_t n, n_bad;
    char bad[192];
};

static void replay(struct got *g)
{
    memset(g, 0, sizeof *g);
    struct reader r;
    struct reader_opts o = {.participant = "p1"};
    assert_int_equal(reader_open(&r, path, NULL, &o), 0);
    for (;;) {
        struct event ev;
        int rc = r.ops->next(&r, &ev);
        assert_true(rc >= 0);
        if (rc == READ_EOF)
            break;
        if (rc == READ_BAD) {
            if (g->n_bad++ == 0)
                snprintf(g->bad, sizeof g->bad, "%llu: %s", (unsigned long long)r.line, r.why);
            continue;
        }
        assert_true(g->n < 256);
        if (ev.type == EV_ACCEL)
            ev.u.accel.g = NULL;
        g->ev[g->n++] = ev;
    }
    reader_close(&r);
    if (g->n_bad)
        fail_msg("%zu bad records, the first at %s", g->n_bad, g->bad);
}

static off_t file_size(void)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_size;
}

/* The records of the file: data (H4) of record i in rec[i], up to 64. */
struct recs {
    size_t n;
    uint32_t flags[64];
    uint8_t data[64][64];
    size_t len[64];
};

static void records(struct recs *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t h[BTSNOOP_REC_HDR_LEN];
    assert_int_equal(fread(h, 1, BTSNOOP_HDR_LEN, f), BTSNOOP_HDR_LEN);
    while (fread(h, 1, sizeof h, f) == sizeof h && out->n < 64) {
        struct btsnoop_rec rec;
        assert_int_equal(btsnoop_parse_record(h, &rec, NULL), 0);
        uint8_t buf[600];
        assert_int_equal(fread(buf, 1, rec.incl_len, f), rec.incl_len);
        out->flags[out->n] = rec.flags;
        out->len[out->n] = rec.incl_len;
        memcpy(out->data[out->n], buf, rec.incl_len < 64 ? rec.incl_len : 64);
        out->n++;
    }
    fclose(f);
}

/* ---- tests ---- */

static void test_new_capture(void **state)
{
    use("new.btsnoop");
    struct ble_rec *r = rec_open(1 << 20, 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sb.st_size, BTSNOOP_HDR_LEN);   /* the header at once, records buffered */
    ble_rec_connect(r, at(100), ADDR, 1);
    discover(r, 120);
    att(r, 130, TX, 3, 0x0a, 0x13, 0x00);           /* battery read */
    att(r, 140, RX, 2, 0x0b, 90);
    hr(r, 1000, 72);
    hr(r, 2000, 74);
    ble_rec_disconnect(r, at(2500), 0x13);
    hr(r, 2600, 99);                                /* no connection: nothing */
    struct ble_rec_stats st;
    ble_rec_stats(r, &st);
    assert_int_equal(st.records, 2 + 1 + 4 + 2 + 2 + 1);
    assert_int_equal(st.dropped, 0);
    r = ble_rec_close(r, at(3000));
    assert_int_equal(file_size(), st.size);

    struct recs rc;
    records(&rc);
    assert_int_equal(rc.n, st.records);
    uint8_t hdr[BTSNOOP_HDR_LEN];
    FILE *f = fopen(path, "rb");
    assert_int_equal(fread(hdr, 1, sizeof hdr, f), sizeof hdr);
    fclose(f);
    assert_memory_equal(hdr, "btsnoop\0\0\0\0\1\0\0\x03\xea", 16);
    assert_int_equal(rc.flags[0], BTSNOOP_FLAG_CMD_EVT);                 /* HCI Reset */
    assert_memory_equal(rc.data[0], "\x01\x03\x0c\x00", 4);
    assert_memory_equal(rc.data[1], "\x04\x0e\x04\x01\x03\x0c\x00", 7);  /* its completion */
    assert_int_equal(rc.flags[2], BTSNOOP_FLAG_RECEIVED | BTSNOOP_FLAG_CMD_EVT);
    /* LE Connection Complete: handle 1, central, random address, least significant first */
    assert_int_equal(rc.len[2], 3 + 19);
    assert_memory_equal(rc.data[2], "\x04\x3e\x13\x01\x00\x01\x00\x00\x01"
                                    "\x01\x2f\x6a\x8d\x7c\xc4", 15);
    assert_int_equal(rc.flags[3], 0);                                    /* ACL, sent */
    assert_memory_equal(rc.data[3], "\x02\x01\x00\x0b\x00\x07\x00\x04\x00\x08", 10);
    assert_int_equal(rc.flags[4], BTSNOOP_FLAG_RECEIVED);                /* PB 2 */
    assert_memory_equal(rc.data[4], "\x02\x01\x20", 3);
    assert_memory_equal(rc.data[rc.n - 1], "\x04\x05\x04\x00\x01\x00\x13", 7);

    struct got g;
    replay(&g);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.ev[0].type, EV_BATTERY);
    assert_int_equal(g.ev[0].ts, T0 + 140);
    assert_int_equal(g.ev[1].type, EV_HR);
    assert_int_equal(g.ev[1].ts, T0 + 1000);
    assert_int_equal(g.ev[2].ts, T0 + 2000);
}

/* Three sessions of the daemon in one file: a reconnection keeps the step baseline (steps
 * over the gap, as the daemon counts them), a restart starts a new one. */
static void test_append_sessions(void **state)
{
    use("append.btsnoop");
    struct ble_rec *r = rec_open(1 << 20, 0);
    ble_rec_connect(r, at(10), ADDR, 0);
    discover(r, 20);
    steps_read(r, 1000, 100);                        /* baseline */
    att(r, 6000, RX, 7, 0x1b, 0x20, 0x00, 110, 0, 0, 0);
    ble_rec_disconnect(r, at(7000), 0x13);
    ble_rec_connect(r, at(9000), ADDR, 0);           /* handle 2 */
    discover(r, 9010);
    steps_read(r, 21000, 130);                       /* 20 steps over 15 s */
    r = ble_rec_close(r, at(22000));
    off_t one = file_size();

    r = rec_open(1 << 20, 30000);                    /* a restart: HCI Reset, handle 1 again */
    ble_rec_connect(r, at(30010), ADDR, 0);
    discover(r, 30020);
    steps_read(r, 31000, 150);                       /* the new session's baseline */
    att(r, 41000, RX, 7, 0x1b, 0x20, 0x00, 160, 0, 0, 0);
    r = ble_rec_close(r, at(42000));
    assert_true(file_size() > one);

    struct got g;
    replay(&g);
    assert_int_equal(g.n, 3);
    int64_t ts[] = {T0 + 6000, T0 + 21000, T0 + 41000};
    int steps[] = {10, 20, 10}, interval[] = {5, 15, 10};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g.ev[i].type, EV_STEPS);
        assert_int_equal(g.ev[i].ts, ts[i]);
        assert_int_equal(g.ev[i].u.steps.steps, steps[i]);
        assert_int_equal(g.ev[i].u.steps.interval_s, interval[i]);
    }
}

/* A daemon killed with a link up leaves its connection open in the capture: the next
 * session's reset drops what it held (the daemon lost it too), and handle 1 is a new link. */
static void test_killed_session(void **state)
{
    use("killed.btsnoop");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct ble_rec *r = rec_open(1 << 20, 0);
        ble_rec_connect(r, at(10), ADDR, 1);
        discover(r, 20);
        for (int i = 0; i < 5; i++)
            motion(r, 1000 + 100 * i);
        ble_rec_on_timer(r, at(2100).mono_ns);       /* written, then killed */
        _exit(file_size() > 200 ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct ble_rec *r = rec_open(1 << 20, 5000);
    ble_rec_connect(r, at(5010), ADDR, 1);
    discover(r, 5020);
    for (int i = 0; i < 3; i++)
        motion(r, 6000 + 100 * i);
    r = ble_rec_close(r, at(7000));
    struct got g;
    replay(&g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.ev[0].type, EV_ACCEL);
    assert_int_equal(g.ev[0].ts, T0 + 6000);
    assert_int_equal(g.ev[0].u.accel.n, 3);
}

static void write_file(const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void expect_refused(int err, const char *needle)
{
    struct ble_rec *r = (struct ble_rec *)1;
    char why[192] = "";
    off_t before = file_size();
    assert_int_equal(ble_rec_open(path, "src", 1 << 20, at(0), &r, why, sizeof why), err);
    assert_null(r);
    assert_non_null(strstr(why, needle));
    assert_int_equal(file_size(), before);          /* untouched */
}

static void test_refuses_other_files(void **state)
{
    use("notes.txt");
    const char text[] = "a participant's notes, not a capture\n";
    write_file(text, sizeof text - 1);
    expect_refused(-EINVAL, "not a btsnoop capture");
    use("short");
    write_file("btsno", 5);
    expect_refused(-EINVAL, "not a btsnoop capture");
    use("monitor.btsnoop");
    uint8_t h[BTSNOOP_HDR_LEN];
    btsnoop_encode_header(h, BTSNOOP_LINK_MONITOR);
    write_file(h, sizeof h);
    expect_refused(-EPROTONOSUPPORT, "2001");
    use("dir");
    assert_int_equal(mkdir(path, 0700), 0);
    struct ble_rec *r;
    char why[192];
    assert_true(ble_rec_open(path, "src", 1 << 20, at(0), &r, why, sizeof why) < 0);
    use("nodir/x.btsnoop");
    assert_int_equal(ble_rec_open(path, "src", 1 << 20, at(0), &r, why, sizeof why), -ENOENT);
    use("empty.btsnoop");                           /* an empty file gets its header */
    write_file("", 0);
    r = rec_open(1 << 20, 0);
    r = ble_rec_close(r, at(1));
    assert_int_equal(file_size(), BTSNOOP_HDR_LEN + 2 * BTSNOOP_REC_HDR_LEN + 4 + 7);
}

static void test_record_max(void **state)
{
    use("max.btsnoop");
    int64_t max = 4096;
    struct ble_rec *r = rec_open(max, 0);
    ble_rec_connect(r, at(1), ADDR, 0);
    discover(r, 2);
    struct ble_rec_stats st;
    int sent = 0;
    do {
        hr(r, 1000 + 10 * sent++, 70);
        ble_rec_stats(r, &st);
    } while (!st.stopped);
    assert_int_equal(st.stopped, -EDQUOT);
    assert_int_equal(st.dropped, 1);
    for (int i = 0; i < 10; i++)
        hr(r, 90000 + i, 70);
    ble_rec_stats(r, &st);
    assert_int_equal(st.dropped, 11);
    r = ble_rec_close(r, at(100000));
    assert_true(file_size() <= max);
    assert_true(file_size() > max - 64);
    struct got g;
    replay(&g);                                     /* whole records only */
    assert_int_equal(g.n, sent - 1);
    /* a file already at its limit records nothing more */
    off_t full = file_size();
    r = rec_open(full, 200000);
    ble_rec_stats(r, &st);
    assert_int_equal(st.stopped, -EDQUOT);
    r = ble_rec_close(r, at(200001));
    assert_int_equal(file_size(), full);
}

/* A write error (here a file-size limit, as a full disk would be) stops the recording; the
 * file ends after a whole record and replays. */
static void test_write_error(void **state)
{
    use("full.btsnoop");
    struct ble_rec *r = rec_open(1 << 30, 0);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 3000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ble_rec_connect(r, at(1), ADDR, 0);
    discover(r, 2);
    struct ble_rec_stats st;
    for (int i = 0; i < 400; i++) {
        hr(r, 1000 + 10 * i, 70);
        ble_rec_on_timer(r, at(1000 + 10 * i).mono_ns);
    }
    ble_rec_stats(r, &st);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, was);
    assert_int_equal(st.stopped, -EFBIG);
    assert_true(st.dropped > 0);
    r = ble_rec_close(r, at(10000));
    assert_true(file_size() <= 3000);
    struct got g;
    replay(&g);
    assert_true(g.n > 0);
}

static void test_flush_deadline(void **state)
{
    use("flush.btsnoop");
    struct ble_rec *r = rec_open(1 << 20, 0);
    assert_int_equal(ble_rec_deadline(r), BLE_REC_FLUSH_MS * MS);  /* the session records */
    ble_rec_on_timer(r, 999 * MS);
    assert_int_equal(file_size(), BTSNOOP_HDR_LEN);
    ble_rec_on_timer(r, 1000 * MS);
    assert_true(file_size() > BTSNOOP_HDR_LEN);
    assert_int_equal(ble_rec_deadline(r), INT64_MAX);
    ble_rec_connect(r, at(5000), ADDR, 0);
    assert_int_equal(ble_rec_deadline(r), 6000 * MS);
    r = ble_rec_close(r, at(5001));
    assert_int_equal(ble_rec_deadline(NULL), INT64_MAX);
}

static void test_time(void **state)
{
    assert_int_equal(ble_rec_time_us(T0, T0 * 1000 + 250), T0 * 1000 + 250);
    assert_int_equal(ble_rec_time_us(T0, T0 * 1000 + 1250), T0 * 1000 + 999);  /* later ms */
    assert_int_equal(ble_rec_time_us(T0, T0 * 1000 - 5), T0 * 1000);           /* stepped */
}

static void test_sources(void **state)
{
    struct conf c = {0};
    struct conf_source s[3] = {0};
    c.sources = s;
    c.n_sources = 3;
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        snprintf(s[i].name, sizeof s[i].name, "%s", names[i]);
        s[i].driver = CONF_DRIVER_BLE;
        s[i].record_max = 1 << 20;
        snprintf(s[i].record, sizeof s[i].record, "%s/src-%s.btsnoop", tmpdir, names[i]);
    }
    s[2].driver = CONF_DRIVER_INGEST;               /* not a ble source: not opened */
    struct ble_recset *set = NULL;
    assert_int_equal(ble_record_open_all(&c, 0, T0 * 1000, &set), 0);
    struct ble_rec *a = ble_record_claim(set, "a");
    assert_non_null(a);
    assert_null(ble_record_claim(set, "a"));
    assert_null(ble_record_claim(set, "c"));
    struct ble_rec *b = ble_record_claim(set, "b");
    assert_non_null(b);
    ble_recset_free(set);
    ble_rec_close(a, at(1));
    ble_rec_close(b, at(1));
    snprintf(path, sizeof path, "%s/src-c.btsnoop", tmpdir);
    assert_int_equal(access(path, F_OK), -1);
    /* two sources, one file (here through a symbolic link): refused, nothing left open */
    snprintf(path, sizeof path, "%s/link.btsnoop", tmpdir);
    assert_int_equal(symlink(s[0].record, path), 0);
    snprintf(s[1].record, sizeof s[1].record, "%s", path);
    set = NULL;
    assert_int_equal(ble_record_open_all(&c, 0, T0 * 1000, &set), -EEXIST);
    assert_null(set);
    assert_null(ble_record_claim(set, "a"));
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_ble_record.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_capture),
        cmocka_unit_test(test_append_sessions),
        cmocka_unit_test(test_killed_session),
        cmocka_unit_test(test_refuses_other_files),
        cmocka_unit_test(test_record_max),
        cmocka_unit_test(test_write_error),
        cmocka_unit_test(test_flush_deadline),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_sources),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
