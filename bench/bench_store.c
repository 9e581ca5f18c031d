/* Store write throughput: what the writer thread costs over SQLite itself.
 *
 * The same N event rows (~100-byte canonical bodies, 3 sources, 2 participants) go into
 * a fresh database each time:
 *   sqlite   a bare loop on one connection: the store's schema, WAL, synchronous=NORMAL,
 *            the same prepared INSERT OR IGNORE, a transaction per batch_max rows (baseline)
 *   writer   store_submit_events in requests of REQ events through the writer thread,
 *            synchronous=NORMAL, timed until the last reply (i.e. the last COMMIT) arrived
 *   full     the same with synchronous=FULL, the daemon's default (for information)
 * and prints rows/s for each and the ratio writer/sqlite (target >= 0.5). The three runs
 * are interleaved ROUNDS times and the best time of each is kept: on a shared machine the
 * noise (other processes, write-back) is one-sided, it only ever makes a run slower.
 * Usage: bench_store [N, default 1000000] [REQ, default 1000] [batch_max, default 5000]
 *                    [ROUNDS, default 3]
 * Files go to a fresh directory under $TMPDIR (default /tmp) and are removed. */
#include "daemon/store.h"

#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const char *const sources[] = { "phone-p01", "band-p01", "phone-p02" };
static const char *const parts[] = { "p01", "p01", "p02" };
static const char *const types[] = { "screen", "steps", "app" };

struct rows {
    size_t n;
    struct store_event *ev;
    char *bodies;
};

static int make_rows(struct rows *r, size_t n)
{
    enum { BODY = 128 };
    int64_t seq[3] = { 0 };
    r->n = n;
    r->ev = calloc(n, sizeof *r->ev);
    r->bodies = malloc(n * BODY);
    if (!r->ev || !r->bodies)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t k = i % 3;
        int64_t ts = 1583470800000LL + (int64_t)i * 250;
        char *b = r->bodies + i * BODY;
        int len;
        if (k == 0)
            len = snprintf(b, BODY, "{\"ts\":%lld,\"participant\":\"%s\",\"source\":\"%s\","
                           "\"seq\":%lld,\"type\":\"screen\",\"state\":\"unlocked\"}",
                           (long long)ts, parts[k], sources[k], (long long)seq[k]);
        else if (k == 1)
            len = snprintf(b, BODY, "{\"ts\":%lld,\"participant\":\"%s\",\"source\":\"%s\","
                           "\"seq\":%lld,\"type\":\"steps\",\"steps\":42,\"interval_s\":60}",
                           (long long)ts, parts[k], sources[k], (long long)seq[k]);
        else
            len = snprintf(b, BODY, "{\"ts\":%lld,\"participant\":\"%s\",\"source\":\"%s\","
                           "\"seq\":%lld,\"type\":\"app\",\"app\":\"org.example.mindapp\"}",
                           (long long)ts, parts[k], sources[k], (long long)seq[k]);
        r->ev[i] = (struct store_event){ .source = sources[k], .seq = seq[k]++, .has_seq = 1,
                                         .ts = ts, .participant = parts[k], .type = types[k],
                                         .body = b, .body_len = (size_t)len,
                                         .received = ts + 40 };
    }
    return 0;
}

static void rm_db(const char *db)
{
    char p[4200];
    static const char *const sfx[] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", db, sfx[i]);
        unlink(p);
    }
}

/* Baseline: the schema comes from the store itself (so it is exactly the same), then a
 * plain connection does the inserts. */
static double bare_sqlite(const char *db, const struct rows *r, unsigned batch_max)
{
    struct store_sync *s;
    sqlite3 *c;
    sqlite3_stmt *st;
    if (store_sync_open(db, NULL, &s) < 0 || store_sync_close(s) < 0 ||
        /* NOMUTEX as the writer's own connection: no locking cost on either side. */
        sqlite3_open_v2(db, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c, "INSERT OR IGNORE INTO events(source, seq, ts, participant, type,"
                              " body, received) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    double t0 = now();
    for (size_t i = 0; i < r->n; i++) {
        if (i % batch_max == 0 && sqlite3_exec(c, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
            return -1;
        const struct store_event *e = &r->ev[i];
        sqlite3_bind_text(st, 1, e->source, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, e->seq);
        sqlite3_bind_int64(st, 3, e->ts);
        sqlite3_bind_text(st, 4, e->participant, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, e->type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, e->body, (int)e->body_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, e->received);
        if (sqlite3_step(st) != SQLITE_DONE)
            return -1;
        sqlite3_reset(st);
        if ((i + 1) % batch_max == 0 || i + 1 == r->n)
            if (sqlite3_exec(c, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                return -1;
    }
    double t = now() - t0;
    sqlite3_finalize(st);
    sqlite3_close(c);
    return t;
}

static double through_writer(const char *db, const struct rows *r, size_t req,
                             unsigned batch_max, int sync_full, size_t *bad)
{
    struct store_opts o;
    store_opts_default(&o);
    o.batch_max = batch_max;
    o.sync_full = sync_full;
    int e = 0;
    struct store_writer *w = store_writer_start(db, &o, &e);
    if (!w) {
        fprintf(stderr, "bench_store: %s: %s\n", db, store_strerror(e));
        return -1;
    }
    uint8_t *st = malloc(req);
    size_t acked = 0, nreq = (r->n + req - 1) / req, next = 0;
    *bad = 0;
    double t0 = now();
    while (acked < nreq) {
        while (next < nreq) {
            size_t off = next * req, n = r->n - off < req ? r->n - off : req;
            int rc = store_submit_events(w, next, r->ev + off, n);
            if (rc == -EAGAIN)
                break;
            if (rc < 0) {
                fprintf(stderr, "bench_store: submit: %s\n", store_strerror(rc));
                return -1;
            }
            next++;
        }
        uint64_t token;
        int all;
        size_t n;
        int rc;
        while ((rc = store_read_reply(w, &token, &all, st, req, &n)) == 0) {
            acked++;
            for (size_t i = 0; i < n; i++)
                *bad += all != 0 || st[i] != STORE_INSERTED;
        }
        if (acked < nreq) {
            struct pollfd p = { .fd = store_writer_fd(w), .events = POLLIN };
            poll(&p, 1, 1000);
        }
    }
    double t = now() - t0;
    store_writer_stop(w);
    free(st);
    return t;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    size_t req = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000;
    unsigned batch_max = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 5000;
    int rounds = argc > 4 ? atoi(argv[4]) : 3;
    if (rounds < 1 || n == 0 || req == 0 || req > STORE_BATCH_MAX_LIMIT || batch_max == 0 ||
        batch_max > STORE_BATCH_MAX_LIMIT) {
        fprintf(stderr, "usage: bench_store [N] [REQ <= %u] [batch_max <= %u] [ROUNDS]\n",
                STORE_BATCH_MAX_LIMIT, STORE_BATCH_MAX_LIMIT);
        return 64;
    }
    struct rows r;
    if (make_rows(&r, n) < 0) {
        fprintf(stderr, "bench_store: out of memory\n");
        return 1;
    }
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[4096], db[4200];
    snprintf(dir, sizeof dir, "%s/bench_store.XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("bench_store: mkdtemp");
        return 1;
    }
    snprintf(db, sizeof db, "%s/bench.db", dir);
    size_t bad_b = 0, bad_c = 0;

    double ta = 1e30, tb = 1e30, tc = 1e30;
    for (int i = 0; i < rounds; i++) {
        double t[3];
        rm_db(db);
        t[0] = bare_sqlite(db, &r, batch_max);
        rm_db(db);
        t[1] = through_writer(db, &r, req, batch_max, 0, &bad_b);
        rm_db(db);
        t[2] = through_writer(db, &r, req, batch_max, 1, &bad_c);
        rm_db(db);
        if (t[0] <= 0 || t[1] <= 0 || t[2] <= 0 || bad_b || bad_c) {
            ta = -1;
            break;
        }
        ta = t[0] < ta ? t[0] : ta;
        tb = t[1] < tb ? t[1] : tb;
        tc = t[2] < tc ? t[2] : tc;
    }
    rmdir(dir);
    if (ta <= 0 || tb <= 0 || tc <= 0) {
        fprintf(stderr, "bench_store: a run failed\n");
        return 1;
    }
    printf("rows %zu, request %zu events, batch_max %u, best of %d rounds\n", n, req,
           batch_max, rounds);
    printf("sqlite  (bare loop, NORMAL)   %10.0f rows/s  %.3f s\n", (double)n / ta, ta);
    printf("writer  (thread, NORMAL)      %10.0f rows/s  %.3f s\n", (double)n / tb, tb);
    printf("full    (thread, FULL)        %10.0f rows/s  %.3f s\n", (double)n / tc, tc);
    printf("ratio writer/sqlite %.2f (target >= 0.50)\n", ta / tb);
    if (bad_b || bad_c)
        printf("WARNING: %zu + %zu events not reported inserted\n", bad_b, bad_c);
    free(r.ev);
    free(r.bodies);
    return bad_b || bad_c ? 1 : 0;
}
