/* What a batch's thread hand-offs cost on this machine, without any work: the floor under
 * bench_ble's CPU figure. Each round is what the daemon does per BLE batch under load:
 *
 *   loop thread   wakes on a timerfd (the end of an input hold), signals the writer (eventfd)
 *   writer thread wakes, signals the loop back (the store's reply)
 *   loop thread   wakes, signals a third thread (libzmq's I/O thread, for the publications)
 *   third thread  wakes
 *
 * so four wake-ups per round, ROUNDS_PER_S rounds a second (bench_ble's spread load makes
 * about 500 batches a second). Prints the process's CPU (all threads, getrusage) as % of one
 * core and per round, and the mean time of an eventfd write that wakes a sleeping thread
 * (measured in a second pass, one write every 2 ms).
 * usage: bench_wake [ROUNDS_PER_S, default 500] [SECONDS, default 10] */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

struct hop {
    int in, out; /* wait on in; signal out (-1: none) */
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void signal_fd(int fd)
{
    uint64_t one = 1;
    if (write(fd, &one, sizeof one) != (ssize_t)sizeof one)
        perror("bench_wake: write");
}

static void *hop_main(void *p)
{
    const struct hop *h = p;
    uint64_t x;
    while (read(h->in, &x, sizeof x) == (ssize_t)sizeof x) {
        if (x == UINT64_C(0xfffffffffffffffe))
            break; /* stop */
        if (h->out >= 0)
            signal_fd(h->out);
    }
    return NULL;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void stop(int fd)
{
    uint64_t v = UINT64_C(0xfffffffffffffffe);
    if (write(fd, &v, sizeof v) != (ssize_t)sizeof v)
        perror("bench_wake: write");
}

int main(int argc, char **argv)
{
    double hz = argc > 1 ? atof(argv[1]) : 500;
    double secs = argc > 2 ? atof(argv[2]) : 10;
    if (!(hz >= 1 && hz <= 100000) || !(secs >= 1 && secs <= 3600)) {
        fprintf(stderr, "usage: bench_wake [ROUNDS_PER_S 1..100000] [SECONDS 1..3600]\n");
        return 2;
    }
    int to_writer = eventfd(0, 0), to_loop = eventfd(0, 0), to_io = eventfd(0, 0);
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0), ep = epoll_create1(0);
    if (to_writer < 0 || to_loop < 0 || to_io < 0 || tfd < 0 || ep < 0) {
        perror("bench_wake");
        return 1;
    }
    struct hop writer = {to_writer, to_loop}, io = {to_io, -1};
    pthread_t tw, ti;
    if (pthread_create(&tw, NULL, hop_main, &writer) || pthread_create(&ti, NULL, hop_main, &io)) {
        fprintf(stderr, "bench_wake: cannot start threads\n");
        return 1;
    }
    long period = (long)(1e9 / hz);
    struct itimerspec its = {{period / 1000000000, period % 1000000000},
                             {period / 1000000000, period % 1000000000}};
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = tfd};
    if (timerfd_settime(tfd, 0, &its, NULL) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) < 0) {
        perror("bench_wake");
        return 1;
    }
    ev.data.fd = to_loop;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, to_loop, &ev) < 0) {
        perror("bench_wake");
        return 1;
    }
    double t0 = now_s(), c0 = cpu_s();
    long rounds = 0;
    while (now_s() - t0 < secs) {
        struct epoll_event evs[4];
        int n = epoll_wait(ep, evs, 4, 1000);
        for (int i = 0; i < n; i++) {
            uint64_t x;
            if (read(evs[i].data.fd, &x, sizeof x) != (ssize_t)sizeof x)
                continue;
            if (evs[i].data.fd == tfd) {
                signal_fd(to_writer); /* submit */
            } else {
                signal_fd(to_io); /* the reply: publish */
                rounds++;
            }
        }
    }
    double wall = now_s() - t0, cpu = cpu_s() - c0;
    /* the cost of one waking write, seen by the writer of the eventfd */
    double wsum = 0;
    int nw = (int)(secs * 100 < 2000 ? secs * 100 : 2000);
    for (int i = 0; i < nw; i++) {
        struct timespec gap = {0, 2000000};
        nanosleep(&gap, NULL);
        double a = now_s();
        signal_fd(to_io);
        wsum += now_s() - a;
    }
    stop(to_writer);
    stop(to_io);
    pthread_join(tw, NULL);
    pthread_join(ti, NULL);
    printf("bench_wake: %.0f rounds/s of 4 thread wake-ups (timer -> writer -> loop -> I/O) for "
           "%.1f s: CPU %.2f %% of one core, %.1f us per round; an eventfd write waking a "
           "sleeping thread takes %.1f us (mean of %d)\n",
           (double)rounds / wall, wall, 100 * cpu / wall, 1e6 * cpu / (double)rounds,
           1e6 * wsum / nw, nw);
    return 0;
}
