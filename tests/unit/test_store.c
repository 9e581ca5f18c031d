/* The SQLite store: migrations (v1 and v2 files upgraded in place), file modes,
 * deduplication, commit-before-reply, reads, the attribute cache table, the disk-full and I/O
 * error paths, checkpoints beside the writer (and busy ones), backpressure and shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/store.h"

struct fx {
    char dir[64];
    char db[128];
    struct store_writer *w; /* stopped by teardown if a failed assertion left it running */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_store.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof f->db, "%s/engaged.db", f->dir);
    *state = f;
    return 0;
}

static void rm_db(const char *db)
{
    char p[160];
    static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", db, sfx[i]);
        unlink(p);
    }
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[160];
    rm_db(f->db);
    snprintf(p, sizeof p, "%s/other.db", f->dir);
    rm_db(p);
    snprintf(p, sizeof p, "%s/text.txt", f->dir);
    unlink(p);
    rmdir(f->dir);
    store_writer_stop(f->w);
    free(f);
    return 0;
}

static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void sql_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static struct store_event mk(const char *source, int64_t seq, int has_seq, char *body)
{
    snprintf(body, 64, "{\"source\":\"%s\",\"seq\":%lld}", source, (long long)seq);
    return (struct store_event){ .source = source, .seq = seq, .has_seq = has_seq,
                                 .ts = 1600000000000LL + seq * 1000, .participant = "p01",
                                 .type = "screen", .body = body, .body_len = strlen(body) };
}

static struct store_writer *start(struct fx *f, const struct store_opts *o)
{
    int e = 0;
    struct store_writer *w = store_writer_start(f->db, o, &e);
    assert_non_null(w);
    assert_int_equal(e, 0);
    f->w = w;
    return w;
}

static void stop(struct fx *f)
{
    store_writer_stop(f->w);
    f->w = NULL;
}

/* Waits for the next reply (up to 10 s). */
static void reply(struct store_writer *w, uint64_t *token, int *all, uint8_t *st, size_t cap,
                  size_t *n)
{
    for (int i = 0; i < 1000; i++) {
        int r = store_read_reply(w, token, all, st, cap, n);
        if (r == 0)
            return;
        assert_int_equal(r, -EAGAIN);
        struct pollfd p = { .fd = store_writer_fd(w), .events = POLLIN };
        poll(&p, 1, 10);
    }
    fail_msg("no reply from the store writer");
}

static void submit_and_check(struct store_writer *w, uint64_t token, const struct store_event *ev,
                             size_t n, const uint8_t *want)
{
    uint64_t t;
    int all;
    uint8_t st[64];
    size_t got;
    assert_int_equal(store_submit_events(w, token, ev, n), 0);
    reply(w, &t, &all, st, sizeof st, &got);
    assert_int_equal(t, token);
    assert_int_equal(all, 0);
    assert_int_equal(got, n);
    assert_memory_equal(st, want, n);
}

/* First in the group: before anything in this process initialised SQLite. With its memory
 * statistics on (SQLite's default), an open connection shows as memory in use. */
static void test_sqlite_memory_statistics_are_off(void **state)
{
    struct fx *f = *state;
    struct store_sync *s;
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    assert_int_equal(sqlite3_memory_used(), 0);
    assert_int_equal(store_sync_close(s), 0);
    assert_int_equal(sqlite3_memory_highwater(0), 0);
}

/* The checkpointer's retry deadline (and replay's pacing) add to a timespec through
 * daemon_ts_add: the nanoseconds carry into the seconds at exactly 1e9. */
static void test_timespec_add_carries(void **state)
{
    (void)state;
    struct timespec t = {10, 999999999L};
    daemon_ts_add(&t, 0, 1);
    assert_int_equal(t.tv_sec, 11);
    assert_int_equal(t.tv_nsec, 0);
    t = (struct timespec){10, 500000000L};
    daemon_ts_add(&t, 2, 499999999L);
    assert_int_equal(t.tv_sec, 12);
    assert_int_equal(t.tv_nsec, 999999999L);
    daemon_ts_add(&t, 0, 999999999L);
    assert_int_equal(t.tv_sec, 13);
    assert_int_equal(t.tv_nsec, 999999998L);
}

static void test_migrates_empty_file_and_reopens(void **state)
{
    struct fx *f = *state;
    struct store_sync *s;
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    assert_int_equal(store_sync_close(s), 0);
    assert_int_equal(sql_int(f->db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(sql_int(f->db, "PRAGMA application_id"), STORE_APPLICATION_ID);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND"
                                    " name IN ('events','features','nudges','positions','meta')"),
                     5);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM pragma_journal_mode"
                                    " WHERE journal_mode = 'wal'"), 1);
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0); /* reopen: nothing to migrate */
    assert_int_equal(store_sync_close(s), 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM meta WHERE key='created'"), 1);
    assert_int_equal(store_is_engaged_db(f->db), 1);

    char other[160], text[160];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    sql_exec(other, "CREATE TABLE t(x)");
    assert_int_equal(store_is_engaged_db(other), 0);
    snprintf(text, sizeof text, "%s/text.txt", f->dir);
    FILE *fp = fopen(text, "w");
    fputs("{\"ts\":1}\n", fp);
    fclose(fp);
    assert_int_equal(store_is_engaged_db(text), 0);
    assert_int_equal(store_is_engaged_db("/nonexistent/engaged.db"), -ENOENT);
}

static void test_refuses_newer_schema_and_foreign_databases(void **state)
{
    struct fx *f = *state;
    struct store_sync *s;
    struct store_reader *rd;
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    store_sync_close(s);
    sql_exec(f->db, "PRAGMA user_version=99");
    assert_int_equal(store_sync_open(f->db, NULL, &s), STORE_ENEWER);
    assert_int_equal(store_open_readonly(f->db, &rd), STORE_ENEWER);
    assert_non_null(strstr(store_strerror(STORE_ENEWER), "newer"));
    assert_int_equal(sql_int(f->db, "PRAGMA user_version"), 99); /* untouched */

    char other[160];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    sql_exec(other, "CREATE TABLE t(x)");
    assert_int_equal(store_sync_open(other, NULL, &s), STORE_EFOREIGN);
    assert_int_equal(store_open_readonly(other, &rd), STORE_EFOREIGN);
    assert_int_equal(sql_int(other, "SELECT count(*) FROM sqlite_master"), 1);
    struct store_opts o;
    store_opts_default(&o);
    o.batch_max = STORE_BATCH_MAX_LIMIT + 1;
    assert_int_equal(store_sync_open(f->db, &o, &s), -EINVAL);
}

static void assert_mode(const char *path, const char *sfx)
{
    char p[160];
    struct stat st;
    snprintf(p, sizeof p, "%s%s", path, sfx);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_files_are_owner_only(void **state)
{
    struct fx *f = *state;
    mode_t old = umask(0);
    struct store_writer *w = start(f, NULL);
    char b[64];
    struct store_event e = mk("phone", 1, 1, b);
    submit_and_check(w, 1, &e, 1, (const uint8_t[]){ STORE_INSERTED });
    assert_mode(f->db, "");
    assert_mode(f->db, "-wal");
    assert_mode(f->db, "-shm");
    stop(f);
    /* An existing store with loose permissions is tightened on open. */
    assert_int_equal(chmod(f->db, 0644), 0);
    struct store_sync *s;
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    assert_mode(f->db, "");
    assert_mode(f->db, "-wal");
    assert_mode(f->db, "-shm");
    store_sync_close(s);
    umask(old);
}

static void test_duplicates_detected_in_batch_across_batches_and_reopen(void **state)
{
    struct fx *f = *state;
    char b[8][64];
    struct store_writer *w = start(f, NULL);
    struct store_event first[] = { mk("phone", 1, 1, b[0]), mk("phone", 2, 1, b[1]),
                                   mk("phone", 2, 1, b[2]), mk("watch", 2, 1, b[3]),
                                   mk("phone", 0, 0, b[4]), mk("phone", 0, 0, b[5]) };
    submit_and_check(w, 10, first, 6,
                     (const uint8_t[]){ 0, 0, STORE_DUPLICATE, 0, 0, 0 }); /* no seq: kept */
    struct store_event second[] = { mk("phone", 2, 1, b[0]), mk("phone", 3, 1, b[1]) };
    submit_and_check(w, 11, second, 2, (const uint8_t[]){ STORE_DUPLICATE, 0 });
    struct store_stats ss;
    store_writer_stats(w, &ss);
    assert_int_equal(ss.events_inserted, 6);
    assert_int_equal(ss.events_duplicate, 2);
    stop(f);

    w = start(f, NULL);
    struct store_event third[] = { mk("phone", 3, 1, b[0]), mk("phone", 4, 1, b[1]),
                                   mk("watch", 2, 1, b[2]) };
    submit_and_check(w, 12, third, 3, (const uint8_t[]){ STORE_DUPLICATE, 0, STORE_DUPLICATE });
    stop(f);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events"), 7);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events WHERE seq IS NULL"), 2);
}

/* A store written by schema v1 (every event in the (source, seq) index) is upgraded in place:
 * its rows keep deduplicating; events the hub numbers itself are stored outside the index. */
static void test_v1_store_upgrades_and_hub_numbered_events_skip_the_index(void **state)
{
    struct fx *f = *state;
    /* a v1 file: a fresh store taken back to what version 1 created */
    struct store_sync *s;
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    assert_int_equal(store_sync_close(s), 0);
    const char *sql =
        "DROP TABLE gatt_cache; ALTER TABLE nudges DROP COLUMN decided;"
        "DROP INDEX events_source_seq; ALTER TABLE events DROP COLUMN hub_seq;"
        "CREATE UNIQUE INDEX events_source_seq ON events(source, seq);"
        "DELETE FROM meta WHERE key = 'hub_positions_id'; DROP TABLE refused;"
        " PRAGMA user_version=1;"
        "INSERT INTO events(source, seq, ts, participant, type, body, received)"
        " VALUES('phone', 1, 1600000001000, 'p01', 'screen', '{}', 1600000001000);";
    sql_exec(f->db, sql);
    struct store_writer *w = start(f, NULL);
    stop(f);
    assert_int_equal(sql_int(f->db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events WHERE hub_seq = 0"), 1);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sqlite_master WHERE"
                                    " name = 'events_source_seq' AND sql LIKE '%WHERE hub_seq = 0'"),
                     1);

    w = start(f, NULL);
    char b[6][64];
    struct store_event ev[] = { mk("phone", 1, 1, b[0]), mk("hr", 7, 1, b[1]),
                                mk("hr", 8, 1, b[2]), mk("relay", 7, 1, b[3]),
                                mk("relay", 7, 1, b[4]), mk("hr", 8, 1, b[5]) };
    ev[1].hub_seq = ev[2].hub_seq = ev[5].hub_seq = 1;
    /* the last one shows that the index does not hold them: the hub must never reuse a seq */
    submit_and_check(w, 20, ev, 6,
                     (const uint8_t[]){ STORE_DUPLICATE, 0, 0, 0, STORE_DUPLICATE, 0 });
    stop(f);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events WHERE hub_seq = 1"), 3);
    assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source = 'hr'"), 8);
}

struct cache_seen {
    int n;
    char device[4][32];
    uint8_t blob[4][64];
    size_t len[4];
    int64_t updated[4];
};

static int on_cache_row(void *ud, const char *device, const uint8_t *blob, size_t len,
                        int64_t updated)
{
    struct cache_seen *cs = ud;
    if (cs->n < 4 && len <= sizeof cs->blob[0]) {
        snprintf(cs->device[cs->n], sizeof cs->device[0], "%s", device);
        if (len)
            memcpy(cs->blob[cs->n], blob, len);
        cs->len[cs->n] = len;
        cs->updated[cs->n] = updated;
    }
    cs->n++;
    return 0;
}

static void read_cache(struct fx *f, struct cache_seen *cs)
{
    struct store_reader *rd;
    memset(cs, 0, sizeof *cs);
    assert_int_equal(store_open_readonly(f->db, &rd), 0);
    assert_int_equal(store_reader_gatt_cache(rd, on_cache_row, cs), 0);
    store_reader_close(rd);
}

/* Hub-numbered events go in as runs of up to 8 rows per INSERT (store_sync.c): broken by
 * relayed and invalid events, stored in submit order (the id order replay relies on), and
 * when a row of a run fails the run's rows go one by one, so that only that row fails. */
static void test_hub_numbered_runs_keep_order_and_find_the_failing_row(void **state)
{
    struct fx *f = *state;
    char b[40][64], name[40][8];
    struct store_event ev[40];
    uint8_t want[40] = {0}, got[40];
    for (int i = 0; i < 40; i++) {
        snprintf(name[i], sizeof name[i], "d%02d", i % 20);
        ev[i] = mk(name[i], 100 + i, 1, b[i]);
        ev[i].hub_seq = 1;
    }
    ev[18] = mk("phone", 1, 1, b[18]); /* relayed: its own seq, in the dedupe index */
    ev[25].participant = ""; /* invalid (the writer's client refuses it before, replay does
                                * not): refused before SQLite, it breaks the run */
    want[25] = STORE_ERROR;
    struct store_sync *s;
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    assert_int_equal(store_sync_events(s, ev, 40, got), 0); /* runs of 8, 8, 2, 6, 8, 6 */
    assert_memory_equal(got, want, 40);
    assert_int_equal(store_sync_commit(s), 0);
    assert_int_equal(store_sync_close(s), 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events"), 39);
    /* ids follow the submission: a row's seq is 100 + its place c in id order (c + 1 from
     * the place of the one not stored), but for "phone" */
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM (SELECT source, seq, (SELECT count(*)"
                                    " FROM events o WHERE o.id < e.id) AS c FROM events e)"
                                    " WHERE source != 'phone' AND seq != 100 + c + (c >= 25)"),
                     0);
    assert_int_equal(sql_int(f->db, "SELECT seq FROM events WHERE source = 'phone' AND"
                                    " id = (SELECT min(id) FROM events) + 18"),
                     1);
    /* d05's second event was the invalid one */
    assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source = 'd05'"), 105);
    assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source = 'd06'"), 126);
    assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source = 'd19'"), 139);

    /* sixteen of them are two statements: the fourth write statement (after BEGIN and two
     * runs) is the commit's first position row, which fails. That also once freed a source
     * name twice: a failed position row with more slots after it */
    struct store_opts o;
    store_opts_default(&o);
    o.fail_after_steps = 4;
    for (int i = 0; i < 16; i++) {
        ev[i] = mk(name[i], 200 + i, 1, b[i]);
        ev[i].hub_seq = 1;
    }
    assert_int_equal(store_sync_open(f->db, &o, &s), 0);
    assert_int_equal(store_sync_events(s, ev, 16, got), 0);
    assert_int_equal(store_sync_commit(s), -EIO);
    assert_int_equal(store_sync_close(s), 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events WHERE seq >= 200"), 0);

    /* a row of a run that SQLite refuses (here a trigger; a constraint or a too-big row in
     * life): the other nine are stored, in order, and only that one is reported */
    sql_exec(f->db, "CREATE TRIGGER no_1005 BEFORE INSERT ON events WHEN NEW.seq = 1005"
                    " BEGIN SELECT RAISE(ABORT, 'refused'); END;");
    struct store_writer *w = start(f, NULL);
    uint8_t want2[10] = {0};
    for (int i = 0; i < 10; i++) {
        ev[i] = mk("d00", 1000 + i, 1, b[i]);
        ev[i].hub_seq = 1;
    }
    want2[5] = STORE_ERROR;
    submit_and_check(w, 2, ev, 10, want2);
    stop(f);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events WHERE seq >= 1000"), 9);
    assert_int_equal(sql_int(f->db, "SELECT group_concat(seq - 1000, '') FROM (SELECT seq FROM"
                                    " events WHERE seq >= 1000 ORDER BY id)"),
                     12346789);
}

/* Two transactions as the writer makes them (hub-numbered runs, relayed events, a refused
 * record, a feature record, a nudge), with the Nth write statement failing, for every N up
 * to past the end: each transaction is stored whole exactly when its calls all succeeded,
 * positions never run ahead of what is stored, and nothing is freed twice or leaked (ASan,
 * in the sanitizer build). A failing disk may hit any statement. */
static void test_a_failure_at_any_write_statement_keeps_transactions_whole(void **state)
{
    struct fx *f = *state;
    char b[24][64], name[24][8];
    int last_failed = 0;
    for (unsigned n = 1; n <= 64; n++) {
        rm_db(f->db);
        struct store_opts o;
        store_opts_default(&o);
        o.fail_after_steps = n;
        struct store_sync *s;
        assert_int_equal(store_sync_open(f->db, &o, &s), 0);
        int ok[2];
        for (int tx = 0; tx < 2; tx++) {
            struct store_event ev[24];
            uint8_t st[24];
            size_t m = 0;
            for (int i = 0; i < 12; i++, m++) {
                snprintf(name[m], sizeof name[m], "d%02d", i);
                ev[m] = mk(name[m], 1 + tx * 100 + i, 1, b[m]);
                ev[m].hub_seq = 1;
            }
            if (tx == 0) {
                ev[m] = mk("phone", 1, 1, b[m]), m++;
                ev[m] = mk("phone", 2, 1, b[m]), m++;
                ev[m] = mk("phone", 3, 1, b[m]);
                ev[m++].refused = "no participant";
            }
            struct store_record rec = {.participant = "p01", .feature = "screen.unlocks",
                                       .window = "day", .start = 1, .end = 2, .revision = 0,
                                       .body = "{}", .body_len = 2};
            struct store_nudge nu = {.participant = "p01", .ts = 1, .rule = "r",
                                     .body = "{}", .body_len = 2};
            ok[tx] = store_sync_events(s, ev, m, st) == 0 && store_sync_record(s, &rec) == 0 &&
                     store_sync_nudge(s, &nu) == 0 && store_sync_commit(s) == 0;
            if (!ok[tx])
                continue; /* the failed call rolled back: a caller need not */
            for (size_t i = 0; i < m; i++)
                assert_int_equal(st[i], STORE_INSERTED);
        }
        int closed = store_sync_close(s);
        int64_t want_events = ok[0] * 14 + ok[1] * 12;
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events"), want_events);
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM refused"), ok[0]);
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM features"), ok[0] + ok[1]);
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM nudges"), ok[0] + ok[1]);
        /* positions: never past what is stored; the relayed source's exact when stored */
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM positions p WHERE p.seq >"
                                        " (SELECT coalesce(max(seq), -1) FROM (SELECT source,"
                                        " seq FROM events UNION ALL SELECT source, seq FROM"
                                        " refused) WHERE source = p.source)"),
                         0);
        if (ok[0])
            assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source = 'phone'"),
                             3);
        /* hub-numbered positions lag by at most the close's own write, which may be the one
         * that failed */
        if (closed == 0 && (ok[0] || ok[1]))
            assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source = 'd11'"),
                             ok[1] ? 112 : 12);
        last_failed = !(ok[0] && ok[1] && closed == 0) ? (int)n : last_failed;
    }
    /* the sweep went past the last statement: the last runs failed nothing */
    assert_true(last_failed > 10 && last_failed < 60);
}

/* A store written by schema v2 gets the attribute cache table; its rows stay as they were. */
static void test_v2_store_upgrades_with_an_empty_gatt_cache(void **state)
{
    struct fx *f = *state;
    /* a v2 file: a fresh store taken back to what version 2 created */
    struct store_sync *s;
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    char b[64];
    struct store_event ev = mk("phone", 1, 1, b);
    uint8_t st;
    assert_int_equal(store_sync_events(s, &ev, 1, &st), 0);
    assert_int_equal(store_sync_close(s), 0);
    sql_exec(f->db, "DROP TABLE gatt_cache; DELETE FROM meta WHERE key = 'hub_positions_id';"
                    " ALTER TABLE nudges DROP COLUMN decided; DROP TABLE refused;"
                    " PRAGMA user_version=2;");
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sqlite_master WHERE name = 'gatt_cache'"),
                     0);
    struct store_reader *rd;
    assert_int_equal(store_open_readonly(f->db, &rd), 0);   /* v2 is readable as it is */
    store_reader_close(rd);
    start(f, NULL);
    stop(f);
    assert_int_equal(sql_int(f->db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sqlite_master WHERE name = 'gatt_cache'"
                                    " AND sql LIKE '%device TEXT PRIMARY KEY%'"),
                     1);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events WHERE source = 'phone'"), 1);
    assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source = 'phone'"), 1);
    struct cache_seen cs;
    read_cache(f, &cs);
    assert_int_equal(cs.n, 0);
}

/* Cache entries through the writer: created, replaced, dropped; the reader sees the last
 * state, blob for blob; bad requests are refused before they are queued. */
static void test_gatt_cache_entries_are_written_through_the_writer(void **state)
{
    struct fx *f = *state;
    struct store_writer *w = start(f, NULL);
    const uint8_t one[] = {'E', 'G', 'D', 1, 0, 1}, two[] = {'E', 'G', 'D', 1, 0, 2, 0, 3};
    int64_t before = sql_int(f->db, "SELECT CAST(strftime('%s','now') AS INTEGER) * 1000");
    assert_int_equal(store_submit_gatt_cache(w, "C4:7C:8D:6A:2F:01/random", one, sizeof one), 0);
    assert_int_equal(store_submit_gatt_cache(w, "C4:7C:8D:6A:2F:02/public", one, sizeof one), 0);
    assert_int_equal(store_submit_gatt_cache(w, "C4:7C:8D:6A:2F:01/random", two, sizeof two), 0);
    assert_int_equal(store_submit_gatt_cache(w, "C4:7C:8D:6A:2F:02/public", NULL, 0), 0);
    assert_int_equal(store_submit_gatt_cache(w, "C4:7C:8D:6A:2F:03/sim", one, sizeof one), 0);
    assert_int_equal(store_submit_gatt_cache(w, "gone", NULL, 0), 0);   /* nothing to drop */
    assert_int_equal(store_submit_gatt_cache(w, NULL, one, sizeof one), -EINVAL);
    assert_int_equal(store_submit_gatt_cache(w, "", one, sizeof one), -EINVAL);
    assert_int_equal(store_submit_gatt_cache(w, "x", one, 0), -EINVAL);
    assert_int_equal(store_submit_gatt_cache(w, "x", one, STORE_BLOB_MAX + 1), -EMSGSIZE);
    assert_int_equal(store_flush(w, 5000), 0);
    struct store_stats ss;
    store_writer_stats(w, &ss);
    assert_int_equal(ss.gatt_cache, 6);
    assert_int_equal(ss.records, 0);
    struct cache_seen cs;
    read_cache(f, &cs);                      /* while the writer runs (WAL) */
    assert_int_equal(cs.n, 2);
    assert_string_equal(cs.device[0], "C4:7C:8D:6A:2F:01/random");
    assert_int_equal(cs.len[0], sizeof two);
    assert_memory_equal(cs.blob[0], two, sizeof two);
    assert_true(cs.updated[0] >= before);
    assert_string_equal(cs.device[1], "C4:7C:8D:6A:2F:03/sim");
    assert_memory_equal(cs.blob[1], one, sizeof one);
    stop(f);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM gatt_cache WHERE typeof(blob) = 'blob'"),
                     2);
}

/* A transaction that fails takes the cache entries with it; they are written again, in
 * order, in the next one (a replace then a drop stays a drop). */
static void test_gatt_cache_entries_of_a_failed_transaction_are_written_again(void **state)
{
    struct fx *f = *state;
    struct store_opts o;
    store_opts_default(&o);
    o.fail_after_steps = 3; /* BEGIN, the first entry, then the second fails */
    struct store_writer *w = start(f, &o);
    const uint8_t one[] = {1, 2, 3}, two[] = {4, 5};
    assert_int_equal(store_submit_gatt_cache(w, "a", one, sizeof one), 0);
    assert_int_equal(store_submit_gatt_cache(w, "b", one, sizeof one), 0);
    assert_int_equal(store_submit_gatt_cache(w, "b", two, sizeof two), 0);
    assert_int_equal(store_submit_gatt_cache(w, "a", NULL, 0), 0);
    assert_int_equal(store_flush(w, 5000), -EIO);
    struct store_stats ss;
    store_writer_stats(w, &ss);
    assert_int_equal(ss.gatt_cache, 4);
    assert_int_equal(ss.records_dropped, 0);
    stop(f);
    struct cache_seen cs;
    read_cache(f, &cs);
    assert_int_equal(cs.n, 1);
    assert_string_equal(cs.device[0], "b");
    assert_int_equal(cs.len[0], sizeof two);
    assert_memory_equal(cs.blob[0], two, sizeof two);
}

static void test_reply_comes_only_after_commit(void **state)
{
    struct fx *f = *state;
    struct store_opts o;
    store_opts_default(&o);
    o.batch_delay_ms = 1000; /* a long open transaction would be caught below */
    struct store_writer *w = start(f, &o);
    char b[50][64];
    for (int round = 0; round < 20; round++) {
        struct store_event ev[50];
        for (int i = 0; i < 50; i++)
            ev[i] = mk("phone", round * 50 + i, 1, b[i]);
        assert_int_equal(store_submit_events(w, (uint64_t)round, ev, 50), 0);
        uint64_t t;
        int all;
        uint8_t st[50];
        size_t n;
        reply(w, &t, &all, st, sizeof st, &n);
        assert_int_equal(t, (uint64_t)round);
        assert_int_equal(all, 0);
        /* A second connection sees every acknowledged event the moment the reply arrives. */
        struct store_reader *rd;
        assert_int_equal(store_open_readonly(f->db, &rd), 0);
        assert_int_equal(store_reader_count_events(rd), (round + 1) * 50);
        store_reader_close(rd);
    }
    /* Recognisable while live, before any checkpoint: the header is written on creation. */
    assert_int_equal(store_is_engaged_db(f->db), 1);
    stop(f);
}

struct latest_seen {
    int n;
    char feature[4][32];
    int revision[4];
};

static int on_latest(void *ud, int64_t id, const struct store_record *r)
{
    struct latest_seen *ls = ud;
    assert_true(ls->n < 4);
    snprintf(ls->feature[ls->n], 32, "%s", r->feature);
    ls->revision[ls->n++] = r->revision;
    assert_non_null(strstr(r->body, r->feature));
    return 0;
}

struct pos_seen {
    int n;
    int64_t seq[4], ts[4];
    int has_seq[4], has_ts[4];
};

static int on_position(void *ud, const char *source, const struct store_position *p)
{
    struct pos_seen *ps = ud;
    (void)source;
    assert_true(ps->n < 4);
    ps->seq[ps->n] = p->seq;
    ps->has_seq[ps->n] = p->has_seq;
    ps->has_ts[ps->n] = p->has_ts;
    ps->ts[ps->n++] = p->ts;
    assert_true(p->updated > 0);
    return 0;
}

static int on_nudge(void *ud, int64_t id, const struct store_nudge *nu)
{
    int *n = ud;
    assert_string_equal(nu->rule, "disengaged");
    assert_int_equal(nu->ts, 1000 + *n);
    (*n)++;
    return 0;
}

static void put_record(struct store_writer *w, const char *feature, int64_t start, int revision)
{
    char body[128];
    snprintf(body, sizeof body, "{\"feature\":\"%s\",\"start\":%lld,\"revision\":%d}", feature,
             (long long)start, revision);
    struct store_record r = { .participant = "p01", .feature = feature, .window = "day",
                              .start = start, .end = start + 86400000, .revision = revision,
                              .body = body, .body_len = strlen(body) };
    assert_int_equal(store_submit_record(w, &r), 0);
}

static void test_records_nudges_and_positions_are_stored(void **state)
{
    struct fx *f = *state;
    struct store_writer *w = start(f, NULL);
    put_record(w, "screen.countepisodeunlock", 0, 0);
    put_record(w, "screen.countepisodeunlock", 0, 1);          /* a late revision */
    put_record(w, "screen.countepisodeunlock", 86400000, 0);   /* the next day */
    put_record(w, "ema.answered", 0, 0);
    for (int i = 0; i < 3; i++) {
        struct store_nudge nu = { .participant = "p01", .ts = 1000 + i, .rule = "disengaged",
                                  .body = "{\"decision\":\"send\"}", .body_len = 19 };
        assert_int_equal(store_submit_nudge(w, &nu), 0);
    }
    char b[4][64];
    struct store_event ev[] = { mk("phone", 7, 1, b[0]), mk("phone", 5, 1, b[1]),
                                mk("watch", 0, 0, b[2]) };
    submit_and_check(w, 1, ev, 3, (const uint8_t[]){ 0, 0, 0 });
    /* An older seq is stored but never moves a position backwards. */
    struct store_event older[] = { mk("phone", 3, 1, b[3]) };
    submit_and_check(w, 2, older, 1, (const uint8_t[]){ 0 });
    assert_int_equal(store_flush(w, 5000), 0);
    struct store_stats ss;
    store_writer_stats(w, &ss);
    assert_int_equal(ss.records, 4);
    assert_int_equal(ss.nudges, 3);

    struct store_reader *rd;
    assert_int_equal(store_open_readonly(f->db, &rd), 0);
    assert_int_equal(store_reader_count_features(rd), 4);
    struct latest_seen ls = { 0 };
    assert_int_equal(store_reader_latest(rd, "p01", NULL, on_latest, &ls), 0);
    assert_int_equal(ls.n, 2);
    assert_string_equal(ls.feature[0], "ema.answered");
    assert_string_equal(ls.feature[1], "screen.countepisodeunlock");
    assert_int_equal(ls.revision[1], 0); /* the newest window, not the revised older one */
    memset(&ls, 0, sizeof ls);
    assert_int_equal(store_reader_latest(rd, "p01", "ema.answered", on_latest, &ls), 0);
    assert_int_equal(ls.n, 1);
    memset(&ls, 0, sizeof ls);
    assert_int_equal(store_reader_latest(rd, "p02", NULL, on_latest, &ls), 0);
    assert_int_equal(ls.n, 0);

    struct pos_seen ps = { 0 };
    assert_int_equal(store_reader_positions(rd, on_position, &ps), 0);
    assert_int_equal(ps.n, 2); /* phone, watch */
    assert_int_equal(ps.seq[0], 7);
    assert_int_equal(ps.ts[0], 1600000000000LL + 7000);
    assert_int_equal(ps.has_seq[1], 0);
    int nn = 0;
    assert_int_equal(store_reader_nudges(rd, "p01", 0, on_nudge, &nn), 0);
    assert_int_equal(nn, 3);
    store_reader_close(rd);
    stop(f);
}

/* Positions as a reader gets them, by source name. */
struct pos_named {
    int n;
    char source[8][16];
    int64_t seq[8];
};

static int on_named(void *ud, const char *source, const struct store_position *p)
{
    struct pos_named *pn = ud;
    assert_true(p->has_seq);
    assert_true(pn->n < 8);
    snprintf(pn->source[pn->n], sizeof pn->source[0], "%s", source);
    pn->seq[pn->n++] = p->seq;
    return 0;
}

/* The reader's seq for source (-1: no position). */
static int64_t read_pos(const char *db, const char *source)
{
    struct store_reader *rd;
    struct pos_named pn = { 0 };
    assert_int_equal(store_open_readonly(db, &rd), 0);
    assert_int_equal(store_reader_positions(rd, on_named, &pn), 0);
    store_reader_close(rd);
    for (int i = 0; i < pn.n; i++)
        if (strcmp(pn.source[i], source) == 0)
            return pn.seq[i];
    return -1;
}

/* Commits events seq lo..hi of a hub-numbered source, and one of a phone's if phone_seq. */
static void hub_commit(struct store_sync *s, const char *source, int64_t lo, int64_t hi,
                       int64_t phone_seq)
{
    char b[16][64];
    struct store_event ev[16];
    uint8_t st[16];
    size_t n = 0;
    for (int64_t q = lo; q <= hi && n < 15; q++) {
        ev[n] = mk(source, q, 1, b[n]);
        ev[n++].hub_seq = 1;
    }
    if (phone_seq) {
        ev[n] = mk("phone", phone_seq, 1, b[n]);
        n++;
    }
    assert_int_equal(store_sync_events(s, ev, n, st), 0);
    assert_int_equal(store_sync_commit(s), 0);
}

/* Positions of hub-numbered sources reach the table at most once a second, yet a reader,
 * and a copy of the files taken as a crash would leave them, gets them exact: the events
 * after the mark are added. A device's own seq (the phone) is written at every commit, and
 * a rolled-back transaction never moves a position. */
static void test_hub_positions_are_written_once_a_second_and_read_exactly(void **state)
{
    struct fx *f = *state;
    struct store_sync *s;
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    assert_int_equal(sql_int(f->db, "SELECT value FROM meta WHERE key = 'hub_positions_id'"), 0);
    hub_commit(s, "hr", 1, 5, 0); /* the first commit writes them */
    assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source = 'hr'"), 5);
    assert_int_equal(sql_int(f->db, "SELECT value FROM meta WHERE key = 'hub_positions_id'"), 5);
    hub_commit(s, "hr", 6, 10, 7);
    hub_commit(s, "hr2", 1, 3, 0);
    assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source = 'hr'"), 5);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM positions WHERE source = 'hr2'"), 0);
    assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source = 'phone'"), 7);
    assert_int_equal(read_pos(f->db, "hr"), 10);
    assert_int_equal(read_pos(f->db, "hr2"), 3);
    assert_int_equal(read_pos(f->db, "phone"), 7);

    /* a crash now: the files as they are, opened by a new reader */
    char cp[512];
    snprintf(cp, sizeof cp, "cp %s %s/crash.db && cp %s-wal %s/crash.db-wal", f->db, f->dir,
             f->db, f->dir);
    assert_int_equal(system(cp), 0);
    char crash[160];
    snprintf(crash, sizeof crash, "%s/crash.db", f->dir);
    assert_int_equal(read_pos(crash, "hr"), 10);
    assert_int_equal(read_pos(crash, "hr2"), 3);
    rm_db(crash);

    /* rolled back: never counted */
    char b[64];
    struct store_event ev = mk("hr", 11, 1, b);
    ev.hub_seq = 1;
    uint8_t st;
    assert_int_equal(store_sync_events(s, &ev, 1, &st), 0);
    store_sync_rollback(s);
    assert_int_equal(read_pos(f->db, "hr"), 10);

    usleep(1100 * 1000); /* the next commit writes them */
    hub_commit(s, "hr2", 4, 4, 0);
    assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source = 'hr'"), 10);
    assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source = 'hr2'"), 4);
    assert_int_equal(sql_int(f->db, "SELECT value FROM meta WHERE key = 'hub_positions_id'"),
                     sql_int(f->db, "SELECT max(id) FROM events"));
    hub_commit(s, "hr", 11, 12, 0);
    assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source = 'hr'"), 10);
    assert_int_equal(read_pos(f->db, "hr"), 12);
    assert_int_equal(store_sync_close(s), 0); /* closing writes the table */
    assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source = 'hr'"), 12);
    assert_int_equal(sql_int(f->db, "SELECT value FROM meta WHERE key = 'hub_positions_id'"),
                     sql_int(f->db, "SELECT max(id) FROM events"));
    assert_int_equal(read_pos(f->db, "hr"), 12);
}

/* A v3 store wrote every position at every commit: the upgrade marks all its events as
 * covered, so that its readers do not scan them again. */
static void test_v3_store_upgrade_marks_its_events_covered(void **state)
{
    struct fx *f = *state;
    struct store_sync *s;
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    hub_commit(s, "hr", 1, 4, 9);
    assert_int_equal(store_sync_close(s), 0);
    sql_exec(f->db, "DELETE FROM meta WHERE key = 'hub_positions_id';"
                    " ALTER TABLE nudges DROP COLUMN decided; DROP TABLE refused;"
                    " PRAGMA user_version=3;");
    assert_int_equal(read_pos(f->db, "hr"), 4); /* v3 as it is: the table */
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    assert_int_equal(store_sync_close(s), 0);
    assert_int_equal(sql_int(f->db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(sql_int(f->db, "SELECT value FROM meta WHERE key = 'hub_positions_id'"), 5);
    assert_int_equal(read_pos(f->db, "hr"), 4);
    assert_int_equal(read_pos(f->db, "phone"), 9);
}

/* Nudge decisions as a reader gets them. */
struct nudges_seen {
    int n;
    int64_t ts[4], decided[4];
};

static int on_nudge_seen(void *ud, int64_t id, const struct store_nudge *nu)
{
    (void)id;
    struct nudges_seen *ns = ud;
    assert_true(ns->n < 4);
    ns->ts[ns->n] = nu->ts;
    ns->decided[ns->n++] = nu->decided;
    return 0;
}

static int on_ack(void *ud, const char *id)
{
    struct nudges_seen *ns = ud;
    assert_string_equal(id, "n0000000000000007");
    ns->n++;
    return 0;
}

/* A restart counts a pending nudge's 24 hours from when the hub decided it (decided, schema
 * v5), not from its event time, which for data a phone sends late is days old; a decision
 * stored by v4 has no decided and is selected by its ts. nudge_acks: by their arrival. */
static void test_nudges_are_selected_by_when_the_hub_decided_them(void **state)
{
    struct fx *f = *state;
    struct store_sync *s;
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    struct store_nudge old = { .participant = "p01", .ts = 1000, .rule = "r", .body = "{}",
                               .body_len = 2 }; /* stored without a decided */
    assert_int_equal(store_sync_nudge(s, &old), 0);
    assert_int_equal(store_sync_close(s), 0);
    sql_exec(f->db, "ALTER TABLE nudges DROP COLUMN decided; DROP TABLE refused;"
                    " PRAGMA user_version=4;");

    assert_int_equal(store_sync_open(f->db, NULL, &s), 0); /* upgrades to v5 */
    struct store_nudge late = { .participant = "p01", .ts = 2000, .decided = 5000000,
                                .rule = "r", .body = "{}", .body_len = 2 };
    struct store_nudge other = { .participant = "p02", .ts = 2000, .decided = 5000000,
                                 .rule = "r", .body = "{}", .body_len = 2 };
    assert_int_equal(store_sync_nudge(s, &late), 0);
    assert_int_equal(store_sync_nudge(s, &other), 0);
    /* an ack the phone timestamped long before it reached the hub */
    char body[64] = "{\"nudge\":\"n0000000000000007\"}";
    struct store_event ack = { .source = "phone", .seq = 1, .has_seq = 1, .ts = 1500,
                               .participant = "p01", .type = "nudge_ack", .body = body,
                               .body_len = strlen(body), .received = 5000100 };
    uint8_t st;
    assert_int_equal(store_sync_events(s, &ack, 1, &st), 0);
    assert_int_equal(st, 0);
    assert_int_equal(store_sync_close(s), 0);
    assert_int_equal(sql_int(f->db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM nudges WHERE decided IS NULL"), 1);

    struct store_reader *rd;
    assert_int_equal(store_open_readonly(f->db, &rd), 0);
    struct nudges_seen ns = { 0 };
    assert_int_equal(store_reader_nudges(rd, "p01", INT64_MIN, on_nudge_seen, &ns), 0);
    assert_int_equal(ns.n, 2); /* ts order */
    assert_int_equal(ns.ts[0], 1000);
    assert_int_equal(ns.decided[0], 0);
    assert_int_equal(ns.ts[1], 2000);
    assert_int_equal(ns.decided[1], 5000000);
    memset(&ns, 0, sizeof ns);
    /* after both event times: only the one decided since */
    assert_int_equal(store_reader_nudges(rd, "p01", 4000000, on_nudge_seen, &ns), 0);
    assert_int_equal(ns.n, 1);
    assert_int_equal(ns.decided[0], 5000000);
    memset(&ns, 0, sizeof ns);
    assert_int_equal(store_reader_nudges(rd, "p01", 5000001, on_nudge_seen, &ns), 0);
    assert_int_equal(ns.n, 0);
    /* the v4 row by its ts */
    assert_int_equal(store_reader_nudges(rd, "p01", 1000, on_nudge_seen, &ns), 0);
    assert_int_equal(ns.n, 2);
    memset(&ns, 0, sizeof ns);
    assert_int_equal(store_reader_nudges(rd, "p01", 1001, on_nudge_seen, &ns), 0);
    assert_int_equal(ns.n, 1);
    memset(&ns, 0, sizeof ns);
    assert_int_equal(store_reader_nudge_acks(rd, "phone", 5000000, on_ack, &ns), 0);
    assert_int_equal(ns.n, 1);
    memset(&ns, 0, sizeof ns);
    assert_int_equal(store_reader_nudge_acks(rd, "phone", 5000101, on_ack, &ns), 0);
    assert_int_equal(ns.n, 0);
    store_reader_close(rd);
}

struct iter {
    int n;
    int64_t last_id;
    int stop_at;
};

static int on_event(void *ud, int64_t id, const char *body, size_t len, int64_t received)
{
    struct iter *it = ud;
    char want[64];
    assert_true(id > it->last_id);
    it->last_id = id;
    snprintf(want, sizeof want, "{\"source\":\"phone\",\"seq\":%d}", 1000 - it->n);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(body, want, len);
    it->n++;
    return it->n == it->stop_at ? 42 : 0;
}

static void test_reader_iterates_in_storage_order(void **state)
{
    struct fx *f = *state;
    struct store_sync *s;
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    char b[64];
    for (int i = 0; i < 100; i++) { /* descending seq: order is by storage, not by seq */
        struct store_event e = mk("phone", 1000 - i, 1, b);
        uint8_t st;
        assert_int_equal(store_sync_events(s, &e, 1, &st), 0);
        assert_int_equal(st, STORE_INSERTED);
    }
    assert_int_equal(store_sync_pending(s), 100);
    assert_int_equal(store_sync_commit(s), 0);
    assert_int_equal(store_sync_close(s), 0);

    struct store_reader *rd;
    assert_int_equal(store_open_readonly(f->db, &rd), 0);
    struct iter it = { 0 };
    assert_int_equal(store_reader_events(rd, 0, on_event, &it), 0);
    assert_int_equal(it.n, 100);
    struct iter half = { .n = 50, .last_id = 50 };
    assert_int_equal(store_reader_events(rd, 50, on_event, &half), 0);
    assert_int_equal(half.n, 100);
    struct iter stop = { .stop_at = 10 };
    assert_int_equal(store_reader_events(rd, 0, on_event, &stop), 42);
    assert_int_equal(stop.n, 10);
    store_reader_close(rd);
}

/* store_reader_seq_gap: the first own-seq record missing above the first stored one in a
 * range; hub-numbered events and other sources do not count. */
static void test_reader_finds_the_first_missing_seq(void **state)
{
    struct fx *f = *state;
    struct store_sync *s;
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    char b[64];
    static const int64_t have[] = {10, 11, 12, 14, 15, 17, 40};
    for (size_t i = 0; i < sizeof have / sizeof have[0]; i++) {
        struct store_event e = mk("phone", have[i], 1, b);
        uint8_t st;
        assert_int_equal(store_sync_events(s, &e, 1, &st), 0);
        assert_int_equal(st, STORE_INSERTED);
    }
    char b2[64], b3[64];
    struct store_event hub = mk("phone", 13, 1, b2); /* hub-numbered: not a phone record */
    hub.hub_seq = 1;
    struct store_event other = mk("band", 16, 1, b3);
    uint8_t st2[2];
    struct store_event two[2] = {hub, other};
    assert_int_equal(store_sync_events(s, two, 2, st2), 0);
    assert_int_equal(store_sync_commit(s), 0);
    assert_int_equal(store_sync_close(s), 0);

    struct store_reader *rd;
    assert_int_equal(store_open_readonly(f->db, &rd), 0);
    int64_t gap, n;
    assert_int_equal(store_reader_seq_gap(rd, "phone", 1, 17, &gap, &n), 0);
    assert_int_equal(gap, 13); /* 1..9 come before the first stored: not judged */
    assert_int_equal(n, 6);
    assert_int_equal(store_reader_seq_gap(rd, "phone", 14, 17, &gap, &n), 0);
    assert_int_equal(gap, 16);
    assert_int_equal(store_reader_seq_gap(rd, "phone", 10, 12, &gap, &n), 0);
    assert_int_equal(gap, 13); /* none missing: hi + 1 */
    assert_int_equal(n, 3);
    assert_int_equal(store_reader_seq_gap(rd, "phone", 18, 39, &gap, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(gap, 40); /* none stored: hi + 1 */
    assert_int_equal(store_reader_seq_gap(rd, "band", 1, 16, &gap, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(gap, 17);
    assert_int_equal(store_reader_seq_gap(rd, "phone", 5, 4, &gap, &n), -EINVAL);
    assert_int_equal(store_reader_seq_gap(rd, "phone", 1, INT64_MAX, &gap, &n), -EINVAL);
    store_reader_close(rd);
}

/* A refused record (store_event.refused) goes to the refused table through the writer, with
 * its bytes (any, NULs included) and reason; a seq stored as an event or refused before is a
 * duplicate; refusals move the source's seq position but not its event time, and fill the
 * gaps store_reader_seq_gap looks for. A v5 store gains the table on upgrade. */
static void test_refused_records_are_kept_and_count_as_processed(void **state)
{
    struct fx *f = *state;
    struct store_sync *s;
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    assert_int_equal(store_sync_close(s), 0);
    /* a v5 store: the table comes with the upgrade */
    sql_exec(f->db, "DROP TABLE refused; PRAGMA user_version=5;");
    struct store_writer *w = start(f, NULL);
    assert_int_equal(sql_int(f->db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);

    char b1[64], b2[64];
    static const char raw[] = {'{', '"', 0, '\xff', 'x'}; /* not text: kept byte for byte */
    struct store_event ev[5] = {
        mk("phone", 1, 1, b1),
        {.source = "phone", .seq = 2, .has_seq = 1, .participant = "p01", .body = raw,
         .body_len = sizeof raw, .received = 1700000000123LL, .refused = "type hr: not sent"},
        mk("phone", 3, 1, b2),
        {.source = "phone", .seq = 4, .has_seq = 1, .participant = "p01",
         .refused = "a record of 9000 bytes"}, /* oversized: no bytes */
        {.source = "phone", .seq = 1, .has_seq = 1, .participant = "p01", .body = "x",
         .body_len = 1, .refused = "stored as an event before"},
    };
    submit_and_check(w, 1, ev, 5,
                     (const uint8_t[]){STORE_INSERTED, STORE_INSERTED, STORE_INSERTED,
                                       STORE_INSERTED, STORE_DUPLICATE});
    struct store_event again = {.source = "phone", .seq = 2, .has_seq = 1,
                                .participant = "p01", .body = "y", .body_len = 1,
                                .refused = "sent again"};
    submit_and_check(w, 2, &again, 1, (const uint8_t[]){STORE_DUPLICATE});
    /* malformed refusals: no reason is refused by the encoder; hub-numbered is invalid */
    struct store_event bad = {.source = "phone", .seq = 9, .has_seq = 1, .hub_seq = 1,
                              .participant = "p01", .refused = "why"};
    assert_int_equal(store_submit_events(w, 3, &bad, 1), -EINVAL);
    bad.hub_seq = 0;
    bad.refused = "";
    assert_int_equal(store_submit_events(w, 3, &bad, 1), -EINVAL);
    bad.refused = "why";
    bad.body_len = 3; /* bytes promised, none given */
    assert_int_equal(store_submit_events(w, 3, &bad, 1), -EINVAL);
    stop(f);

    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM refused"), 2);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events"), 2);
    assert_int_equal(sql_int(f->db, "SELECT length(record) FROM refused WHERE seq = 2"), 5);
    assert_int_equal(sql_int(f->db, "SELECT record = x'7b2200ff78' AND reason = 'type hr: not "
                                    "sent' AND received = 1700000000123 AND participant = 'p01'"
                                    " FROM refused WHERE seq = 2"), 1);
    assert_int_equal(sql_int(f->db, "SELECT length(record) = 0 AND typeof(record) = 'blob'"
                                    " FROM refused WHERE seq = 4"), 1);
    assert_int_equal(sql_int(f->db, "SELECT received > 1700000000123 FROM refused WHERE seq = 4"),
                     1); /* 0: the time of storing */
    /* the position: seq 4 (a refusal), event time of seq 3 (a refusal has none) */
    struct store_reader *rd;
    assert_int_equal(store_open_readonly(f->db, &rd), 0);
    struct pos_seen ps = {0};
    assert_int_equal(store_reader_positions(rd, on_position, &ps), 0);
    assert_int_equal(ps.n, 1);
    assert_int_equal(ps.seq[0], 4);
    assert_true(ps.has_ts[0]);
    assert_int_equal(ps.ts[0], 1600000000000LL + 3 * 1000);
    int64_t gap, n;
    assert_int_equal(store_reader_seq_gap(rd, "phone", 1, 4, &gap, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(gap, 5); /* none missing */
    store_reader_close(rd);

    /* a source whose first row is a refusal: a position with a seq and no event time */
    assert_int_equal(store_sync_open(f->db, NULL, &s), 0);
    uint8_t st;
    struct store_event first = {.source = "phone2", .seq = 7, .has_seq = 1,
                                .participant = "p02", .refused = "why"};
    assert_int_equal(store_sync_events(s, &first, 1, &st), 0);
    assert_int_equal(st, STORE_INSERTED);
    assert_int_equal(store_sync_commit(s), 0);
    assert_int_equal(store_sync_close(s), 0);
    assert_int_equal(sql_int(f->db, "SELECT seq = 7 AND ts IS NULL FROM positions"
                                    " WHERE source = 'phone2'"), 1);
    /* and a reader is told it has no event time, not given 0 */
    assert_int_equal(store_open_readonly(f->db, &rd), 0);
    ps = (struct pos_seen){0};
    assert_int_equal(store_reader_positions(rd, on_position, &ps), 0);
    assert_int_equal(ps.n, 2); /* phone, phone2 */
    assert_true(ps.has_seq[1]);
    assert_int_equal(ps.seq[1], 7);
    assert_false(ps.has_ts[1]);
    store_reader_close(rd);
}

static void test_disk_full_fails_the_batch_and_the_writer_recovers(void **state)
{
    struct fx *f = *state;
    struct store_opts o;
    store_opts_default(&o);
    o.max_page_count = 64; /* 256 KiB with 4 KiB pages */
    struct store_writer *w = start(f, &o);
    enum { N = 100 };
    static char big[N][8192];
    struct store_event ev[N];
    for (int i = 0; i < N; i++) {
        memset(big[i], 'x', sizeof big[i]);
        ev[i] = (struct store_event){ .source = "phone", .seq = i, .has_seq = 1, .ts = i,
                                      .participant = "p01", .type = "accel", .body = big[i],
                                      .body_len = sizeof big[i] };
    }
    /* Whether this record shares the doomed transaction or commits before it, it ends up
     * stored exactly once: records of a failed transaction are written again. */
    put_record(w, "ema.answered", 0, 0);
    assert_int_equal(store_submit_events(w, 1, ev, N), 0);
    uint64_t t;
    int all;
    uint8_t st[N];
    size_t n;
    reply(w, &t, &all, st, sizeof st, &n);
    assert_int_equal(t, 1);
    assert_int_equal(all, -ENOSPC);
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(st[i], STORE_ERROR);
    assert_int_equal(store_flush(w, 5000), -ENOSPC); /* reported once ... */
    assert_int_equal(store_flush(w, 5000), 0);       /* ... then cleared */

    /* The next batch is a new transaction and fits. */
    char b[2][64];
    struct store_event small[] = { mk("phone", 1, 1, b[0]), mk("phone", 2, 1, b[1]) };
    submit_and_check(w, 2, small, 2, (const uint8_t[]){ 0, 0 });
    struct store_stats ss;
    store_writer_stats(w, &ss);
    assert_int_equal(ss.commit_errors, 1);
    assert_int_equal(ss.last_error, -ENOSPC);
    assert_int_equal(ss.events_failed, N);
    assert_int_equal(ss.records, 1);
    assert_int_equal(ss.records_dropped, 0);
    stop(f);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events"), 2);
    assert_int_equal(sql_int(f->db, "SELECT seq FROM positions WHERE source='phone'"), 2);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM features"), 1);
}

static void test_io_error_rolls_back_and_the_writer_keeps_running(void **state)
{
    struct fx *f = *state;
    struct store_opts o;
    store_opts_default(&o);
    o.fail_after_steps = 4; /* BEGIN, 2 inserts, then the third insert fails */
    struct store_writer *w = start(f, &o);
    char b[3][64];
    struct store_event ev[] = { mk("phone", 1, 1, b[0]), mk("phone", 2, 1, b[1]),
                                mk("phone", 3, 1, b[2]) };
    assert_int_equal(store_submit_events(w, 7, ev, 3), 0);
    uint64_t t;
    int all;
    uint8_t st[3];
    size_t n;
    reply(w, &t, &all, st, sizeof st, &n);
    assert_int_equal(all, -EIO);
    assert_memory_equal(st, ((const uint8_t[]){ 2, 2, 2 }), 3);
    /* The client resends the same events: all stored once, none counted twice. */
    submit_and_check(w, 8, ev, 3, (const uint8_t[]){ 0, 0, 0 });
    submit_and_check(w, 9, ev, 3, (const uint8_t[]){ 1, 1, 1 });
    stop(f);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events"), 3);
}

static int on_latest_start(void *ud, int64_t id, const struct store_record *r)
{
    int64_t *ids = ud;
    ids[r->start / 86400000] = id;
    return 0;
}

/* Records engage.day0 .. engage.day<n-1>, one a day from the epoch. */
static void put_days(struct store_writer *w, int n)
{
    for (int d = 0; d < n; d++) {
        char feature[32];
        snprintf(feature, sizeof feature, "engage.day%d", d);
        put_record(w, feature, d * 86400000LL, 0);
    }
}

static void test_records_of_a_failed_transaction_are_written_again_in_order(void **state)
{
    struct fx *f = *state;
    struct store_opts o;
    store_opts_default(&o);
    o.fail_after_steps = 3; /* BEGIN, day 0, then day 1 fails */
    struct store_writer *w = start(f, &o);
    put_days(w, 3);
    /* The flush reports the failure, and by then the retry has stored the records. */
    assert_int_equal(store_flush(w, 5000), -EIO);
    struct store_stats ss;
    store_writer_stats(w, &ss);
    assert_int_equal(ss.records, 3);
    assert_int_equal(ss.records_dropped, 0);
    assert_int_equal(ss.last_error, -EIO);
    stop(f);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM features"), 3);
    /* Stored in emission order: restart recovery relies on it. */
    struct store_reader *rd;
    int64_t ids[3] = { 0 };
    assert_int_equal(store_open_readonly(f->db, &rd), 0);
    for (int d = 0; d < 3; d++) {
        char feature[32];
        snprintf(feature, sizeof feature, "engage.day%d", d);
        assert_int_equal(store_reader_latest(rd, "p01", feature, on_latest_start, ids), 0);
    }
    store_reader_close(rd);
    assert_true(ids[0] < ids[1] && ids[1] < ids[2]);
}

/* Nothing more to do after the failure (no flush, no new request): the idle writer retries
 * on its own once a second. */
static void test_records_of_a_failed_transaction_are_retried_when_idle(void **state)
{
    struct fx *f = *state;
    struct store_opts o;
    store_opts_default(&o);
    o.fail_after_steps = 3;
    struct store_writer *w = start(f, &o);
    put_days(w, 2); /* the second fails, and nothing comes after it */
    int64_t n = 0;
    for (int i = 0; i < 50 && n < 2; i++) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        n = sql_int(f->db, "SELECT count(*) FROM features");
    }
    assert_int_equal(n, 2);
    struct store_stats ss;
    store_writer_stats(w, &ss);
    assert_int_equal(ss.records_dropped, 0);
    assert_int_equal(ss.last_error, -EIO);
    stop(f);
}

static void test_stop_commits_everything_queued(void **state)
{
    struct fx *f = *state;
    struct store_opts o;
    store_opts_default(&o);
    o.batch_delay_ms = 60000;
    struct store_writer *w = start(f, &o);
    char b[64];
    for (int i = 0; i < 200; i++) {
        struct store_event e = mk("phone", i, 1, b);
        assert_int_equal(store_submit_events(w, (uint64_t)i, &e, 1), 0);
        put_record(w, "engage.sessions", i * 86400000LL, 0);
    }
    stop(f); /* replies unread: discarded, data kept */
    store_writer_stop(NULL);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events"), 200);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM features"), 200);
    assert_int_equal(sql_int(f->db, "SELECT seq FROM positions"), 199);
}

/* Submits rounds x 16 events of 2 KiB (hub-numbered, seq from *seq on) and waits for each
 * reply: 200 rounds are 6.4 MB of WAL, past the checkpointer's 1000 pages. */
static void write_wal(struct store_writer *w, int rounds, int64_t *seq, uint64_t *token)
{
    static char body[2048];
    memset(body, 'x', sizeof body - 1);
    struct store_event ev[16];
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < 16; i++, ++*seq)
            ev[i] = (struct store_event){ .source = "hr", .seq = *seq, .has_seq = 1,
                                          .hub_seq = 1, .ts = 1600000000000LL + *seq,
                                          .participant = "p01", .type = "hr", .body = body,
                                          .body_len = sizeof body - 1 };
        uint64_t t;
        int all;
        uint8_t s[16];
        size_t n;
        assert_int_equal(store_submit_events(w, *token, ev, 16), 0);
        reply(w, &t, &all, s, sizeof s, &n);
        assert_int_equal(all, 0);
        ++*token;
    }
}

/* Polls the writer's counters (up to 10 s) until a checkpoint has run. */
static void wait_checkpoint(struct store_writer *w, struct store_stats *ss)
{
    memset(ss, 0, sizeof *ss);
    for (int i = 0; i < 1000 && ss->checkpoints == 0; i++) {
        store_writer_stats(w, ss);
        if (ss->checkpoints == 0)
            usleep(10000);
    }
}

/* The writer's commits never checkpoint: the checkpointer thread copies the WAL into the
 * database file once it holds 1000 pages, while the writer goes on. */
static void test_checkpoints_run_beside_the_writer(void **state)
{
    struct fx *f = *state;
    struct store_writer *w = start(f, NULL);
    uint64_t token = 1;
    int64_t seq = 0;
    struct stat st;
    struct store_stats ss;
    write_wal(w, 200, &seq, &token);
    wait_checkpoint(w, &ss);
    assert_true(ss.checkpoints >= 1);
    assert_int_equal(ss.checkpoint_failures, 0);
    /* the database file itself holds data while the writer still runs */
    assert_int_equal(stat(f->db, &st), 0);
    assert_true(st.st_size > 2 * 1024 * 1024);
    stop(f);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events"), 3200);
}

/* Another process holding the WAL's checkpoint lock (as the sqlite3 shell does while it runs
 * one) makes every passive checkpoint busy: that is not a failure, the checkpointer tries again
 * until the lock is free, and the writer never waits. The lock is byte 121 of the -shm file
 * (SQLite's unix VFS: the lock bytes start at 120, the checkpoint lock is the second). */
static void test_busy_checkpoints_are_tried_again(void **state)
{
    struct fx *f = *state;
    struct store_writer *w = start(f, NULL);
    uint64_t token = 1;
    int64_t seq = 0;
    write_wal(w, 1, &seq, &token); /* the -shm file exists from the first commit */
    char shm[160];
    snprintf(shm, sizeof shm, "%s-shm", f->db);
    int go[2], held[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(held), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* only async-signal-safe calls: the parent has threads */
        close(go[1]); /* or the read below never sees the parent's close */
        close(held[0]);
        int fd = open(shm, O_RDWR);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 121, .l_len = 1 };
        char ok = fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0 ? 'y' : 'n';
        if (write(held[1], &ok, 1) != 1)
            _exit(1);
        char c;
        while (read(go[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(0); /* the lock goes with the process */
    }
    close(held[1]);
    close(go[0]);
    char ok = 0;
    assert_int_equal(read(held[0], &ok, 1), 1);
    assert_int_equal(ok, 'y');
    write_wal(w, 200, &seq, &token); /* the writer's replies come while the lock is held */
    struct store_stats ss = {0};
    for (int i = 0; i < 1000 && ss.checkpoint_busy < 3; i++) {
        store_writer_stats(w, &ss);
        usleep(10000);
    }
    assert_true(ss.checkpoint_busy >= 3); /* tried again without further commits */
    assert_int_equal(ss.checkpoints, 0);
    assert_int_equal(ss.checkpoint_failures, 0);
    close(go[1]); /* the child exits, the lock is free */
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(held[0]);
    wait_checkpoint(w, &ss); /* no commit since: the retry alone runs it */
    assert_true(ss.checkpoints >= 1);
    assert_int_equal(ss.checkpoint_failures, 0);
    stop(f);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events"), 3216);
}

static void test_full_queue_pushes_back_with_eagain(void **state)
{
    struct fx *f = *state;
    struct store_opts o;
    store_opts_default(&o);
    o.queue_hwm = 4;
    /* backpressure, not durability, is under test: with a queue this short every message
     * commits on its own, and 2000 fsyncs on a busy CI disk can stall past the reply timeout */
    o.sync_full = 0;
    struct store_writer *w = start(f, &o);
    char b[64];
    int64_t next = 0, acked = 0;
    int saw_eagain = 0;
    while (acked < 2000) {
        while (next < 2000) { /* submit until pushed back, never reading replies here */
            struct store_event e = mk("phone", next, 1, b);
            int room = store_writer_has_room(w); /* says beforehand what the submit answers */
            int r = store_submit_events(w, (uint64_t)next, &e, 1);
            assert_int_equal(room, r != -EAGAIN);
            if (r == -EAGAIN) {
                saw_eagain = 1;
                break;
            }
            assert_int_equal(r, 0);
            next++;
        }
        uint64_t t;
        int all;
        uint8_t st;
        size_t n;
        reply(w, &t, &all, &st, 1, &n);
        assert_int_equal((int64_t)t, acked); /* replies in submit order */
        assert_int_equal(all, 0);
        acked++;
    }
    assert_true(saw_eagain);
    stop(f);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events"), 2000);
}

static void test_submit_rejects_malformed_requests(void **state)
{
    struct fx *f = *state;
    struct store_writer *w = start(f, NULL);
    char b[64];
    struct store_event e = mk("phone", 1, 1, b);
    assert_int_equal(store_submit_events(w, 1, &e, 0), -EINVAL);
    e.source = NULL;
    assert_int_equal(store_submit_events(w, 1, &e, 1), -EINVAL);
    e = mk("phone", 1, 1, b);
    e.body_len = STORE_BODY_MAX + 1;
    assert_int_equal(store_submit_events(w, 1, &e, 1), -EMSGSIZE);
    struct store_record r = { .participant = "p01", .feature = "x", .window = NULL, .body = "{}",
                              .body_len = 2 };
    assert_int_equal(store_submit_record(w, &r), -EINVAL);
    struct store_nudge nu = { .participant = "p01", .rule = "" };
    assert_int_equal(store_submit_nudge(w, &nu), -EINVAL);
    assert_int_equal(store_flush(w, 5000), 0);
    uint64_t t;
    int all;
    size_t n;
    assert_int_equal(store_read_reply(w, &t, &all, NULL, 0, &n), -EAGAIN);
    stop(f);
}

/* How many of ev[0..n), from the first, one request holds, by store_fit_add. */
static size_t store_events_fit(const struct store_event *ev, size_t n)
{
    struct store_fit f = {0};
    while (f.n < n && store_fit_add(&f, &ev[f.n]))
        ;
    return f.n;
}

/* store_fit_add: how many leading events one request holds, by count and by bytes; what it
 * says fits is accepted by store_submit_events, one more is not. */
static void test_events_fit_one_request(void **state)
{
    struct fx *f = *state;
    struct store_writer *w = start(f, NULL);
    /* by count: the bodies are small */
    size_t n = STORE_BATCH_MAX_LIMIT + 5;
    struct store_event *ev = calloc(n, sizeof *ev);
    assert_non_null(ev);
    for (size_t i = 0; i < n; i++)
        ev[i] = (struct store_event){.source = "band", .seq = (int64_t)i + 1, .has_seq = 1,
                                     .hub_seq = 1, .ts = 1700000000000, .participant = "p01",
                                     .type = "hr", .body = "{}", .body_len = 2};
    assert_int_equal(store_events_fit(ev, n), STORE_BATCH_MAX_LIMIT);
    assert_int_equal(store_events_fit(ev, 7), 7);
    assert_int_equal(store_events_fit(ev, 0), 0);
    assert_int_equal(store_submit_events(w, 1, ev, STORE_BATCH_MAX_LIMIT + 1), -EINVAL);
    /* by bytes: 1 MiB bodies, so about 64 fit in 64 MiB */
    char *big = malloc(STORE_BODY_MAX);
    assert_non_null(big);
    memset(big, 'x', STORE_BODY_MAX);
    for (size_t i = 0; i < 80; i++) {
        ev[i].body = big;
        ev[i].body_len = STORE_BODY_MAX;
    }
    size_t k = store_events_fit(ev, 80);
    assert_true(k >= 60 && k < 64);
    struct store_fit fit = {0}; /* nothing past the last that fits is counted */
    for (size_t i = 0; i < k; i++)
        assert_int_equal(store_fit_add(&fit, &ev[i]), 1);
    assert_int_equal(store_fit_add(&fit, &ev[k]), 0);
    assert_int_equal(store_fit_add(&fit, &ev[0]), 0);
    assert_int_equal(fit.n, k);
    assert_int_equal(store_submit_events(w, 2, ev, k + 1), -EMSGSIZE);
    assert_int_equal(store_submit_events(w, 3, ev, k), 0);
    /* a first event that cannot go at all */
    ev[0].body_len = STORE_BODY_MAX + 1;
    assert_int_equal(store_events_fit(ev, 80), 0);
    ev[0].body_len = 2;
    ev[0].body = NULL;
    assert_int_equal(store_events_fit(ev, 80), 0);
    assert_int_equal(store_flush(w, 60000), 0);
    uint64_t t;
    int all;
    size_t got;
    assert_int_equal(store_read_reply(w, &t, &all, NULL, 0, &got), 0);
    assert_int_equal(t, 3);
    assert_int_equal(all, 0);
    free(big);
    free(ev);
    stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sqlite_memory_statistics_are_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrates_empty_file_and_reopens, setup, teardown),
        cmocka_unit_test(test_timespec_add_carries),
        cmocka_unit_test_setup_teardown(test_refuses_newer_schema_and_foreign_databases, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_files_are_owner_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_detected_in_batch_across_batches_and_reopen,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_v1_store_upgrades_and_hub_numbered_events_skip_the_index, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_failure_at_any_write_statement_keeps_transactions_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_hub_numbered_runs_keep_order_and_find_the_failing_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_store_upgrades_with_an_empty_gatt_cache, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gatt_cache_entries_are_written_through_the_writer,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_gatt_cache_entries_of_a_failed_transaction_are_written_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_comes_only_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_positions_are_written_once_a_second_and_read_exactly,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_v3_store_upgrade_marks_its_events_covered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_nudges_are_selected_by_when_the_hub_decided_them,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_nudges_and_positions_are_stored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reader_iterates_in_storage_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_finds_the_first_missing_seq, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_fails_the_batch_and_the_writer_recovers,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_error_rolls_back_and_the_writer_keeps_running,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_records_of_a_failed_transaction_are_retried_when_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_records_of_a_failed_transaction_are_written_again_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_commits_everything_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_run_beside_the_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_checkpoints_are_tried_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_pushes_back_with_eagain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_rejects_malformed_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_fit_one_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_records_are_kept_and_count_as_processed,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
