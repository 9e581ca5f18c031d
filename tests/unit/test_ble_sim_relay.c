/* The phone side of the relay service in the simulator (drivers/ble_sim_relay.c), driven with
 * raw ATT PDUs over a socketpair and read back with relay_rx: nothing before the hub's RESUME;
 * records from the planned seq, fragmented at ATT_MTU 23, START on the first, at most `window`
 * beyond the resume point; an ACK moves the window; a new RESUME re-sends from its seq with
 * the new generation; nudges written in fragments land in the nudge file; the Status answers
 * the hub's control bytes (send status, PAUSE, CONTINUE). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/ble_sim.h"
#include "drivers/relay.h"

#define FIRST 5
#define COUNT 10

struct t {
    int fd[2];
    struct blesim *sim;
    struct blesim_relay *phone;
    FILE *nudges;
    char path[64], npath[64];
    char lines[COUNT][256];
    uint16_t h_rec, h_resume, h_nudges, h_status;
    uint8_t status[RELAY_STATUS_LEN];   /* the last Status notified */
    int n_status;
    int64_t now;
    struct relay_rx rx;
    int64_t got[64];
    int n_got;
    int starts;
};

static void line(char *b, size_t cap, int64_t seq)
{
    snprintf(b, cap, "{\"ts\":%lld,\"participant\":\"p01\",\"source\":\"phone-p01\",\"seq\":%lld,"
             "\"type\":\"app\",\"app\":\"org.example.mindapp\",\"state\":\"foreground\"}",
             1709251200000LL + seq * 1000, (long long)seq);
}

static uint16_t find(struct blesim *s, const char *uuid)
{
    struct att_uuid u;
    assert_int_equal(att_uuid_parse(&u, uuid), 0);
    return blesim_find(s, &u);
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    snprintf(t->path, sizeof t->path, "/tmp/test-sim-relay-%d.jsonl", (int)getpid());
    snprintf(t->npath, sizeof t->npath, "/tmp/test-sim-relay-%d.nudges", (int)getpid());
    FILE *f = fopen(t->path, "w");
    assert_non_null(f);
    for (int i = 0; i < COUNT; i++) {
        line(t->lines[i], sizeof t->lines[i], FIRST + i);
        fprintf(f, "%s\n", t->lines[i]);
    }
    fclose(f);
    t->nudges = fopen(t->npath, "w");
    char why[256];
    t->phone = blesim_relay_load(t->path, t->nudges, why, sizeof why);
    assert_non_null(t->phone);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, t->fd), 0);
    t->sim = blesim_new(t->fd[0], 23, 0);
    assert_non_null(t->sim);
    assert_int_equal(blesim_add_relay(t->sim, t->phone, 1000), 0);
    t->h_rec = find(t->sim, RELAY_UUID_RECORDS);
    t->h_resume = find(t->sim, RELAY_UUID_RESUME);
    t->h_nudges = find(t->sim, RELAY_UUID_NUDGES);
    t->h_status = find(t->sim, RELAY_UUID_STATUS);
    assert_true(t->h_rec && t->h_resume && t->h_nudges && t->h_status);
    relay_rx_init(&t->rx, RELAY_RX_RECORDS, 20);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;
    blesim_free(t->sim);
    blesim_relay_free(t->phone);
    close(t->fd[0]);
    close(t->fd[1]);
    fclose(t->nudges);
    unlink(t->path);
    unlink(t->npath);
    free(t);
    return 0;
}

/* A Write Request; its Write Response is read and checked. */
static void write_req(struct t *t, uint16_t h, const uint8_t *v, size_t n)
{
    uint8_t pdu[64] = {0x12, (uint8_t)h, (uint8_t)(h >> 8)};
    assert_true(n + 3 <= sizeof pdu);
    memcpy(pdu + 3, v, n);
    assert_int_equal(write(t->fd[1], pdu, n + 3), (ssize_t)(n + 3));
    assert_true(blesim_on_readable(t->sim, t->now) >= 1);
    uint8_t rsp[32];
    assert_int_equal(read(t->fd[1], rsp, sizeof rsp), 1);
    assert_int_equal(rsp[0], 0x13);
}

/* A Status notification (pdu of n bytes) is kept in t->status. 1 if it was one. */
static int status_note(struct t *t, const uint8_t *pdu, ssize_t n)
{
    if (n < 3 || pdu[0] != 0x1B || (pdu[1] | pdu[2] << 8) != t->h_status)
        return 0;
    assert_int_equal(n - 3, RELAY_STATUS_LEN);
    memcpy(t->status, pdu + 3, RELAY_STATUS_LEN);
    t->n_status++;
    return 1;
}

/* Runs the simulator for ms milliseconds of its time, feeding every notification to rx. */
static void run(struct t *t, int ms)
{
    for (int i = 0; i < ms; i++) {
        t->now += 1000000;
        blesim_on_timer(t->sim, t->now);
        uint8_t pdu[64];
        ssize_t n;
        while ((n = read(t->fd[1], pdu, sizeof pdu)) > 0) {
            if (status_note(t, pdu, n))
                continue;
            assert_int_equal(pdu[0], 0x1B);
            assert_int_equal(pdu[1] | pdu[2] << 8, t->h_rec);
            assert_true(n - 3 <= 20);
            if (n > 3 && (pdu[3] & RELAY_CTL_START))
                t->starts++;
            struct relay_frame f;
            int r = relay_rx_feed(&t->rx, pdu + 3, (size_t)n - 3, &f);
            assert_true(r >= 0);
            if (r == RELAY_RECORD) {
                assert_true(f.seq >= FIRST && f.seq < FIRST + COUNT);
                assert_int_equal(f.len, strlen(t->lines[f.seq - FIRST]));
                assert_memory_equal(f.data, t->lines[f.seq - FIRST], f.len);
                t->got[t->n_got++] = f.seq;
            }
        }
    }
}

static void resume(struct t *t, int64_t s, uint16_t window)
{
    uint8_t m[RELAY_RESUME_LEN];
    assert_int_equal(relay_rx_resume(&t->rx, 1, s, 20, window, m, sizeof m), RELAY_RESUME_LEN);
    write_req(t, t->h_resume, m, sizeof m);
}

static void test_stream(void **state)
{
    struct t *t = *state;
    uint8_t on[2] = {1, 0};
    write_req(t, t->h_rec + 1, on, 2); /* the CCCD follows the value */
    run(t, 50);
    assert_int_equal(t->n_got, 0);     /* nothing before the RESUME */

    resume(t, 6, 3);                    /* the hub has up to 6: 7, 8, 9 then the window */
    run(t, 200);
    assert_int_equal(t->n_got, 3);
    assert_int_equal(t->got[0], 7);
    assert_int_equal(t->got[2], 9);
    assert_int_equal(t->starts, 1);

    uint8_t ack[RELAY_ACK_LEN];
    assert_int_equal(relay_ack_encode(t->rx.gen, 9, ack, sizeof ack), RELAY_ACK_LEN);
    write_req(t, t->h_resume, ack, sizeof ack);
    run(t, 200);
    assert_int_equal(t->n_got, 6);      /* 10, 11, 12 */
    assert_int_equal(t->got[5], 12);

    resume(t, 10, 64);                  /* the hub lost 11, 12: again from 11, to the end */
    run(t, 300);
    assert_int_equal(t->n_got, 10);
    assert_int_equal(t->got[6], 11);
    assert_int_equal(t->got[9], FIRST + COUNT - 1);
    assert_int_equal(t->starts, 2);

    char rep[512];
    FILE *m = fmemopen(rep, sizeof rep, "w");
    blesim_relay_report(t->phone, m);
    fclose(m);
    assert_non_null(strstr(rep, "acknowledged up to 10,"));
}

/* A Write Request of one control byte to Status: the Write Response, then (for every control)
 * the Status notified at once. */
static void control(struct t *t, uint8_t op, struct relay_status *ret)
{
    uint8_t pdu[8] = {0x12, (uint8_t)t->h_status, (uint8_t)(t->h_status >> 8), op}, rsp[32];
    int before = t->n_status;
    char why[DEC_WHY_MAX];
    assert_int_equal(write(t->fd[1], pdu, 4), 4);
    assert_true(blesim_on_readable(t->sim, t->now) >= 1);
    ssize_t n;
    int answered = 0;
    while ((n = read(t->fd[1], rsp, sizeof rsp)) > 0)
        if (!status_note(t, rsp, n)) {
            assert_int_equal(n, 1);
            assert_int_equal(rsp[0], 0x13);
            answered = 1;
        }
    assert_true(answered);
    assert_int_equal(t->n_status, before + 1);
    assert_int_equal(relay_status_decode(t->status, RELAY_STATUS_LEN, ret, why), 0);
}

static void test_status_control(void **state)
{
    struct t *t = *state;
    struct relay_status st;
    uint8_t on[2] = {1, 0};
    blesim_relay_set_dropped(t->phone, 7);
    write_req(t, t->h_rec + 1, on, 2);
    write_req(t, t->h_status + 1, on, 2);
    control(t, RELAY_CTL_STATUS, &st);   /* nothing acknowledged: all 10 pending */
    assert_int_equal(st.flags, RELAY_STATUS_HAVE_NEWEST);
    assert_int_equal(st.newest, FIRST + COUNT - 1);
    assert_int_equal(st.pending, COUNT);
    assert_int_equal(st.dropped, 7);

    resume(t, 6, 64);                    /* 5, 6 are freed */
    control(t, RELAY_CTL_PAUSE, &st);
    assert_int_equal(st.flags, RELAY_STATUS_HAVE_NEWEST | RELAY_STATUS_PAUSED);
    assert_int_equal(st.pending, COUNT - 2);
    run(t, 300);
    assert_int_equal(t->n_got, 0);       /* paused: nothing sent */
    control(t, RELAY_CTL_CONTINUE, &st);
    assert_int_equal(st.flags, RELAY_STATUS_HAVE_NEWEST);
    run(t, 300);
    assert_int_equal(t->n_got, COUNT - 2);
    assert_int_equal(t->got[0], 7);

    control(t, RELAY_CTL_PAUSE, &st);    /* a RESUME ends a PAUSE too */
    resume(t, 8, 64);
    uint8_t ack[RELAY_ACK_LEN];          /* an ACK changes pending: notified within a second */
    assert_int_equal(relay_ack_encode(t->rx.gen, FIRST + COUNT - 1, ack, sizeof ack),
                     RELAY_ACK_LEN);
    write_req(t, t->h_resume, ack, sizeof ack);
    int before = t->n_status;
    run(t, 1100);
    assert_true(t->n_status > before);
    char why[DEC_WHY_MAX];
    assert_int_equal(relay_status_decode(t->status, RELAY_STATUS_LEN, &st, why), 0);
    assert_int_equal(st.flags, RELAY_STATUS_HAVE_NEWEST);
    assert_int_equal(st.pending, 0);

    char rep[512];
    FILE *m = fmemopen(rep, sizeof rep, "w");
    blesim_relay_report(t->phone, m);
    fclose(m);
    assert_non_null(strstr(rep, "2 pauses, 1 status requests"));
}

static void test_nudge(void **state)
{
    struct t *t = *state;
    struct relay_nudge n = {.priority = RELAY_PRIO_HIGH, .ts = 1709355600000LL};
    strcpy(n.participant, "p01");
    strcpy(n.id, "n86b6838b819d000f");
    strcpy(n.tmpl, "checkin-1");
    uint8_t buf[RELAY_NUDGE_MAX], frag[20];
    int len = relay_nudge_encode(&n, buf, sizeof buf);
    assert_true(len > 0);
    struct relay_tx tx;
    assert_int_equal(relay_tx_start(&tx, 0, 0, 42, buf, (size_t)len, 20), 0);
    int k, frags = 0;
    while ((k = relay_tx_next(&tx, frag, sizeof frag)) > 0) {
        write_req(t, t->h_nudges, frag, (size_t)k);
        frags++;
    }
    assert_true(frags > 1);
    fflush(t->nudges);
    FILE *f = fopen(t->npath, "r");
    char got[512] = "";
    assert_non_null(fgets(got, sizeof got, f));
    fclose(f);
    assert_non_null(strstr(got, "\"delivery\":42,"));
    assert_non_null(strstr(got, "\"id\":\"n86b6838b819d000f\""));
    assert_non_null(strstr(got, "\"template\":\"checkin-1\""));
    assert_non_null(strstr(got, "\"priority\":2"));
}

static void test_load_errors(void **state)
{
    char path[64], why[256];
    snprintf(path, sizeof path, "/tmp/test-sim-relay-bad-%d.jsonl", (int)getpid());
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"seq\":1}\n{\"seq\":3}\n");
    fclose(f);
    assert_null(blesim_relay_load(path, NULL, why, sizeof why));
    assert_non_null(strstr(why, "consecutive"));
    unlink(path);
    assert_null(blesim_relay_load("/nonexistent/x.jsonl", NULL, why, sizeof why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nudge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_control, setup, teardown),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
