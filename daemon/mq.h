/* A one-way message queue between two threads of this process: the store writer's requests
 * and its replies (daemon/store_client.c, store_writer.c).
 *
 * Messages are heap blocks handed over whole (the receiver frees them or keeps them; no
 * copy). The receiving side waits on an eventfd, so the main loop can keep it in its epoll
 * set, and a thread can wait on it with a timeout. The eventfd is written only when a
 * message goes into an empty queue and cleared when a receive finds the queue empty, so a
 * burst costs one write and one read whatever its length; "the fd is readable whenever a
 * message waits" always holds. A receiver should therefore check for empty once per wake-up:
 * each such check is a read(2).
 *
 * It replaced an inproc ZeroMQ PAIR (docs/architecture.md, "Threads and the loop"): every
 * libzmq call on a socket also polls the socket's command mailbox and calls getpid(), about
 * twenty system calls per commit cycle between the two threads. */
#ifndef ENGAGED_MQ_H
#define ENGAGED_MQ_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct mq_msg {
    struct mq_msg *next; /* the queue's link; free for the receiver's own lists once taken */
    size_t len;
    uint8_t data[];
};

/* A message of len bytes (uninitialised), or NULL when out of memory. */
struct mq_msg *mq_msg_new(size_t len);
void mq_msg_free(struct mq_msg *m);

struct mq {
    pthread_mutex_t mu;
    pthread_cond_t room; /* signalled when a full queue is below its limit again */
    struct mq_msg *head, **tailp;
    size_t n, limit;     /* limit 0: unbounded */
    unsigned room_waiters;
    int efd;
};

/* limit: most messages queued by mq_send (0: no limit). 0 or -errno. */
int mq_init(struct mq *q, size_t limit);
/* Frees what is still queued. Nobody may use q any more. */
void mq_destroy(struct mq *q);

/* Readable (POLLIN) whenever a message waits; may also be readable spuriously. */
int mq_fd(const struct mq *q);

/* Queues m (taken) and returns 0; -EAGAIN (m not taken) when the queue is at its limit. */
int mq_send(struct mq *q, struct mq_msg *m);
/* Queues m whatever the limit (control messages: a flush must get through a full queue). */
void mq_send_force(struct mq *q, struct mq_msg *m);

/* The oldest message (the caller owns it), or NULL when the queue is empty (and the fd is
 * then cleared). */
struct mq_msg *mq_recv(struct mq *q);

/* Waits until a message may wait: 1, or 0 after timeout_ms (-1: no limit), or -errno. */
int mq_wait(struct mq *q, int timeout_ms);
/* Waits until the queue is below its limit: 1, or 0 after timeout_ms (-1: no limit). */
int mq_wait_room(struct mq *q, int timeout_ms);

#endif
