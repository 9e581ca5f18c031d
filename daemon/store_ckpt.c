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
 * Closing the writer's connection last (after this thread stopped) checkpoints whatever is
 * left and removes the WAL, as before. */
#include "daemon/store_int.h"

#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>

#define STORE_CKPT_PAGES 1000 /* SQLite's own default threshold */

struct store_ckpt {
    sqlite3 *db;
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int want, stop;
    _Atomic uint64_t runs, failures;
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

static void *ckpt_main(void *arg)
{
    struct store_ckpt *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->want && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop)
            break;
        c->want = 0;
        pthread_mutex_unlock(&c->mu);
        int rc = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        atomic_fetch_add_explicit(rc == SQLITE_OK ? &c->runs : &c->failures, 1,
                                  memory_order_relaxed);
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
    pthread_cond_init(&c->cv, NULL);
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

void store__ckpt_counts(struct store_ckpt *c, uint64_t *runs, uint64_t *failures)
{
    *runs = c ? atomic_load_explicit(&c->runs, memory_order_relaxed) : 0;
    *failures = c ? atomic_load_explicit(&c->failures, memory_order_relaxed) : 0;
}
