/* The store writer's message queue (daemon/mq.h): order, the limit and forced sends, the
 * fd's readiness, waiting for room, and two threads passing many messages with no loss, no
 * lost wake-up and no spinning on a stale fd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/mq.h"

static struct mq_msg *msg_of(uint64_t v)
{
    struct mq_msg *m = mq_msg_new(sizeof v);
    assert_non_null(m);
    memcpy(m->data, &v, sizeof v);
    return m;
}

static uint64_t value_of(const struct mq_msg *m)
{
    uint64_t v;
    assert_int_equal(m->len, sizeof v);
    memcpy(&v, m->data, sizeof v);
    return v;
}

static int readable(const struct mq *q)
{
    struct pollfd p = {.fd = mq_fd(q), .events = POLLIN};
    return poll(&p, 1, 0);
}

static void test_order_and_readiness(void **state)
{
    (void)state;
    struct mq q;
    assert_int_equal(mq_init(&q, 0), 0);
    assert_int_equal(readable(&q), 0);
    assert_null(mq_recv(&q));
    for (uint64_t i = 0; i < 5; i++)
        assert_int_equal(mq_send(&q, msg_of(i)), 0);
    assert_int_equal(readable(&q), 1);
    assert_int_equal(mq_wait(&q, 0), 1);
    for (uint64_t i = 0; i < 5; i++) {
        struct mq_msg *m = mq_recv(&q);
        assert_non_null(m);
        assert_int_equal(value_of(m), i);
        assert_null(m->next);
        mq_msg_free(m);
        assert_int_equal(readable(&q), 1); /* still set: only an empty receive clears it */
    }
    assert_null(mq_recv(&q));
    assert_int_equal(readable(&q), 0);
    assert_int_equal(mq_wait(&q, 20), 0);
    /* a message into the drained queue sets it again */
    assert_int_equal(mq_send(&q, msg_of(9)), 0);
    assert_int_equal(readable(&q), 1);
    mq_destroy(&q); /* frees the message still queued (the leak checker of the ASan build) */
}

static void test_limit_and_forced_sends(void **state)
{
    (void)state;
    struct mq q;
    assert_int_equal(mq_init(&q, 3), 0);
    for (uint64_t i = 0; i < 3; i++)
        assert_int_equal(mq_send(&q, msg_of(i)), 0);
    struct mq_msg *extra = msg_of(3);
    assert_int_equal(mq_send(&q, extra), -EAGAIN); /* not taken: still ours */
    assert_int_equal(mq_wait_room(&q, 0), 0);
    assert_int_equal(mq_wait_room(&q, 30), 0);
    mq_send_force(&q, extra); /* a control message gets through */
    for (uint64_t i = 0; i < 4; i++) {
        struct mq_msg *m = mq_recv(&q);
        assert_non_null(m);
        assert_int_equal(value_of(m), i);
        mq_msg_free(m);
        if (i == 1) /* 2 left of a limit of 3 */
            assert_int_equal(mq_wait_room(&q, 0), 1);
    }
    assert_int_equal(mq_wait_room(&q, -1), 1);
    mq_destroy(&q);
}

struct taker {
    struct mq *q;
    int delay_ms;
};

static void *take_one_later(void *arg)
{
    struct taker *t = arg;
    struct timespec ts = {0, (long)t->delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    mq_msg_free(mq_recv(t->q));
    return NULL;
}

/* A sender waiting for room wakes when the receiver takes a message, not at its timeout. */
static void test_room_wakes_the_waiting_sender(void **state)
{
    (void)state;
    struct mq q;
    assert_int_equal(mq_init(&q, 1), 0);
    assert_int_equal(mq_send(&q, msg_of(1)), 0);
    struct taker t = {&q, 50};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, take_one_later, &t), 0);
    int64_t t0 = daemon_mono_ms();
    assert_int_equal(mq_wait_room(&q, 10000), 1);
    int64_t waited = daemon_mono_ms() - t0;
    pthread_join(th, NULL);
    assert_true(waited >= 40 && waited < 5000);
    mq_destroy(&q);
}

#define N_STRESS 200000

struct producer {
    struct mq *q;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (uint64_t i = 0; i < N_STRESS; i++) {
        struct mq_msg *m = msg_of(i);
        while (mq_send(p->q, m) == -EAGAIN)
            mq_wait_room(p->q, 1000);
        if (i % 1000 == 999) { /* let the consumer drain and go to sleep now and then */
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* The consumer waits on the fd the way the daemon's loop and the writer thread do. A lost
 * wake-up would leave it waiting while messages sit in the queue (the 5 s wait fails); a
 * fd left readable over an empty queue would make it spin (the count of empty wake-ups
 * would approach the count of waits that found nothing to do). */
static void test_two_threads_no_loss_no_spin(void **state)
{
    (void)state;
    struct mq q;
    assert_int_equal(mq_init(&q, 64), 0);
    struct producer p = {&q};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, produce, &p), 0);
    uint64_t next = 0, wakes = 0, empty_wakes = 0;
    while (next < N_STRESS) {
        int r = mq_wait(&q, 5000);
        assert_int_equal(r, 1);
        wakes++;
        struct mq_msg *m;
        int got = 0;
        while ((m = mq_recv(&q))) {
            assert_int_equal(value_of(m), next);
            next++;
            got = 1;
            mq_msg_free(m);
        }
        empty_wakes += !got;
    }
    pthread_join(th, NULL);
    assert_null(mq_recv(&q));
    assert_int_equal(readable(&q), 0);
    /* every empty wake-up needs a send that came into an empty queue and whose write landed
     * after the receive that took its message: at most one per wake-up that got something */
    assert_true(empty_wakes <= wakes - empty_wakes);
    print_message("  %llu wake-ups, %llu of them empty, for %d messages\n",
                  (unsigned long long)wakes, (unsigned long long)empty_wakes, N_STRESS);
    mq_destroy(&q);
}

static void test_destroy_twice_is_harmless(void **state)
{
    (void)state;
    struct mq q;
    assert_int_equal(mq_init(&q, 0), 0);
    mq_destroy(&q);
    mq_destroy(&q);
    assert_int_equal(q.efd, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_readiness),
        cmocka_unit_test(test_limit_and_forced_sends),
        cmocka_unit_test(test_room_wakes_the_waiting_sender),
        cmocka_unit_test(test_two_threads_no_loss_no_spin),
        cmocka_unit_test(test_destroy_twice_is_harmless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
