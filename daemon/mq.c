/* One-way message queue between two threads (mq.h). */
#include "daemon/mq.h"

#include "daemon/daemon.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct mq_msg *mq_msg_new(size_t len)
{
    if (len > SIZE_MAX - sizeof(struct mq_msg))
        return NULL;
    struct mq_msg *m = malloc(sizeof *m + len);
    if (m) {
        m->next = NULL;
        m->len = len;
    }
    return m;
}

void mq_msg_free(struct mq_msg *m)
{
    free(m);
}

int mq_init(struct mq *q, size_t limit)
{
    q->head = NULL;
    q->tailp = &q->head;
    q->n = 0;
    q->limit = limit;
    q->room_waiters = 0;
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0)
        return -errno;
    pthread_condattr_t ca;
    int e = pthread_condattr_init(&ca);
    if (e == 0) {
        e = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (e == 0)
            e = pthread_cond_init(&q->room, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (e == 0 && (e = pthread_mutex_init(&q->mu, NULL)) != 0)
        pthread_cond_destroy(&q->room);
    if (e) {
        close(q->efd);
        q->efd = -1;
        return -e;
    }
    return 0;
}

void mq_destroy(struct mq *q)
{
    if (q->efd < 0)
        return;
    for (struct mq_msg *m = q->head, *next; m; m = next) {
        next = m->next;
        mq_msg_free(m);
    }
    q->head = NULL;
    q->tailp = &q->head;
    q->n = 0;
    pthread_cond_destroy(&q->room);
    pthread_mutex_destroy(&q->mu);
    close(q->efd);
    q->efd = -1;
}

int mq_fd(const struct mq *q)
{
    return q->efd;
}

/* The eventfd is written outside the lock: the write wakes the receiver, which would
 * otherwise find the lock still held and sleep on it. A receiver that finds the queue empty
 * clears the fd under the lock, so a message queued after that check always writes again
 * afterwards (no lost wake-up); a write that lands after a clear for a message already
 * taken costs one spurious wake-up, which clears it. */
static int push(struct mq *q, struct mq_msg *m, int force)
{
    pthread_mutex_lock(&q->mu);
    if (!force && q->limit && q->n >= q->limit) {
        pthread_mutex_unlock(&q->mu);
        return -EAGAIN;
    }
    int was_empty = q->head == NULL;
    m->next = NULL;
    *q->tailp = m;
    q->tailp = &m->next;
    q->n++;
    pthread_mutex_unlock(&q->mu);
    if (was_empty) {
        uint64_t one = 1;
        /* Cannot fail: the fd is ours, open while the queue is in use, and its count is
         * cleared long before it could reach 2^64 - 2. */
        ssize_t r = write(q->efd, &one, sizeof one);
        (void)r;
    }
    return 0;
}

int mq_send(struct mq *q, struct mq_msg *m)
{
    return push(q, m, 0);
}

void mq_send_force(struct mq *q, struct mq_msg *m)
{
    push(q, m, 1);
}

struct mq_msg *mq_recv(struct mq *q)
{
    pthread_mutex_lock(&q->mu);
    struct mq_msg *m = q->head;
    if (m) {
        if (!(q->head = m->next))
            q->tailp = &q->head;
        q->n--;
        m->next = NULL;
        if (q->room_waiters && q->n < q->limit)
            pthread_cond_broadcast(&q->room);
    } else {
        uint64_t v;
        ssize_t r = read(q->efd, &v, sizeof v); /* non-blocking: EAGAIN if already clear */
        (void)r;
    }
    pthread_mutex_unlock(&q->mu);
    return m;
}

int mq_wait(struct mq *q, int timeout_ms)
{
    struct pollfd p = {.fd = q->efd, .events = POLLIN};
    for (;;) {
        int r = poll(&p, 1, timeout_ms);
        if (r >= 0)
            return r > 0;
        if (errno != EINTR)
            return -errno;
    }
}

int mq_wait_room(struct mq *q, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    if (timeout_ms > 0)
        daemon_ts_add(&dl, timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L);
    pthread_mutex_lock(&q->mu);
    while (q->limit && q->n >= q->limit && timeout_ms != 0) {
        q->room_waiters++;
        int e = timeout_ms < 0 ? pthread_cond_wait(&q->room, &q->mu)
                               : pthread_cond_timedwait(&q->room, &q->mu, &dl);
        q->room_waiters--;
        if (e == ETIMEDOUT)
            break;
    }
    int room = !(q->limit && q->n >= q->limit);
    pthread_mutex_unlock(&q->mu);
    return room;
}
