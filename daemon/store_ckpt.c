/* WAL checkpoints off the commit path: a thread of its own, with its own connection.
 *
 * SQLite checkpoints inside the COMMIT that pushes the WAL past wal_autocheckpoint pages: that
 * commit copies the WAL into the database file and syncs both, several milliseconds on an SD
 * card or ext4, and every event waiting behind it waits as long (bench_ble's p99). Here the
 * writer's connection never checkpoints (its WAL hook replaces the automatic one); the hook
 * only wakes this thread once the WAL holds STORE_CKPT_PAGES pages, and the thread runs a
 * PASSIVE checkpoint, which copies what no reader still needs without taking the write lock:
 * the writer keeps committing meanwhile. The next writer transaction after a checkpoint that
 * copied everything starts the WAL again from its beginning (journal_size_limit then trims
 * the file), so the WAL stays near STORE_CKPT_PAGES pages under any steady load.
 *
 * A passive checkpoint can still find the database busy: another process holds the checkpoint
 * lock (the sqlite3 shell running one, say), or the wal-index header was being rewritten by
 * the writer's commit at the instant it was read, when SQLite answers SQLITE_BUSY rather than
 * wait for the write lock. Nothing was copied then and nothing is wrong: the thread tries
 * again after 5 ms, doubling up to 1 s while it stays busy (or at the writer's next signal,
 * whichever comes first), and counts these apart from failures.
 *
 * Closing the writer's connection last (after this thread stopped) checkpoints whatever is
 * left and removes the WAL, as before. */
#include "daemon/store_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define STORE_CKPT_PAGES 1000 /* SQLite's own default threshold */
#define CKPT_BUSY_FIRST_MS 5  /* first retry after a busy checkpoint, */
#define CKPT_BUSY_MAX_MS 1000 /* doubling up to this */

struct store_ckpt {
    sqlite3 *db;
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int want, stop;
    _Atomic uint64_t runs, failures, busy;
};

/* The writer's connection, after each commit (its thread): n is the WAL's size in pages. */
static int on_wal(void *ud, sqlite3 *db, const char *schema, int n)
{
    (void)db, (void)schema;
    struct store_ckpt *c = ud;
    if (n >= STORE_CKPT_PAGES) {
        pthread_mutex_lock(&c->mu);
        c->want = 1;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

/* Waits on the condition variable until want or stop, or for retry_ms (> 0) at most, after
 * which a checkpoint is wanted again. Called and returns with c->mu held. */
static void ckpt_wait(struct store_ckpt *c, int retry_ms)
{
    if (retry_ms <= 0) {
        while (!c->want && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        return;
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    daemon_ts_add(&until, retry_ms / 1000, (long)(retry_ms % 1000) * 1000000L);
    while (!c->want && !c->stop)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT) {
            c->want = 1;
            break;
        }
}

static void *ckpt_main(void *arg)
{
    struct store_ckpt *c = arg;
    int retry_ms = 0; /* > 0 while the last checkpoint found the database busy */
    pthread_mutex_lock(&c->mu);
    for (;;) {
        ckpt_wait(c, retry_ms);
        if (c->stop)
            break;
        c->want = 0;
        pthread_mutex_unlock(&c->mu);
        int rc = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if ((rc & 0xff) == SQLITE_BUSY) {
            atomic_fetch_add_explicit(&c->busy, 1, memory_order_relaxed);
            retry_ms = retry_ms ? retry_ms * 2 : CKPT_BUSY_FIRST_MS;
            if (retry_ms > CKPT_BUSY_MAX_MS)
                retry_ms = CKPT_BUSY_MAX_MS;
        } else {
            retry_ms = 0;
            atomic_fetch_add_explicit(rc == SQLITE_OK ? &c->runs : &c->failures, 1,
                                      memory_order_relaxed);
        }
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int store__ckpt_start(const char *path, sqlite3 *writer, struct store_ckpt **ret)
{
    struct store_ckpt *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca; /* the retry wait must not jump with the wall clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    store__sqlite_setup();
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(c->db, 5000);
    /* checkpoints read WAL frames straight from the file: no page cache to speak of */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, "PRAGMA cache_size=-64", NULL, NULL, NULL);
    int r = rc == SQLITE_OK ? 0 : store__sqlite_err(c->db, rc);
    if (r == 0) {
        sigset_t all, old; /* signals are the main thread's (signalfd) */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&c->thr, NULL, ckpt_main, c);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (r < 0) {
        sqlite3_close(c->db);
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return r;
    }
    sqlite3_wal_hook(writer, on_wal, c); /* replaces (turns off) the automatic checkpoint */
    *ret = c;
    return 0;
}

void store__ckpt_stop(struct store_ckpt *c, sqlite3 *writer)
{
    if (!c)
        return;
    sqlite3_wal_hook(writer, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thr, NULL);
    sqlite3_close(c->db);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void store__ckpt_counts(struct store_ckpt *c, uint64_t *runs, uint64_t *failures,
                        uint64_t *busy)
{
    *runs = c ? atomic_load_explicit(&c->runs, memory_order_relaxed) : 0;
    *failures = c ? atomic_load_explicit(&c->failures, memory_order_relaxed) : 0;
    *busy = c ? atomic_load_explicit(&c->busy, memory_order_relaxed) : 0;
}
