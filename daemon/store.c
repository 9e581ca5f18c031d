/* The SQLite store: creating, opening and migrating the database, recognising it, and the
 * read-only queries. The write engine is store_sync.c, its thread store_writer.c and the
 * caller's side of that thread store_client.c.
 * docs/store.md is the user-facing description of the schema and its guarantees. */
#include "daemon/store_int.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Forward-only migrations: entry i takes the schema from user_version i to i + 1. Adding
 * v2 means appending one string here and bumping STORE_SCHEMA_VERSION; all pending steps
 * run in one transaction, so a failed upgrade leaves the old version intact. */
static const char *const migrations[] = {
    /* v1 */
    "CREATE TABLE events(id INTEGER PRIMARY KEY, source TEXT NOT NULL, seq INTEGER,"
    " ts INTEGER NOT NULL, participant TEXT NOT NULL, type TEXT NOT NULL,"
    " body TEXT NOT NULL, received INTEGER NOT NULL);"
    /* NULLs are distinct in a UNIQUE index, so events without seq are never deduplicated. */
    "CREATE UNIQUE INDEX events_source_seq ON events(source, seq);"
    "CREATE TABLE features(id INTEGER PRIMARY KEY, participant TEXT NOT NULL,"
    " feature TEXT NOT NULL, \"window\" TEXT NOT NULL, start INTEGER NOT NULL,"
    " \"end\" INTEGER NOT NULL, revision INTEGER NOT NULL, body TEXT NOT NULL);"
    "CREATE INDEX features_latest ON features(participant, feature, \"window\", start, revision);"
    "CREATE TABLE nudges(id INTEGER PRIMARY KEY, participant TEXT NOT NULL,"
    " ts INTEGER NOT NULL, rule TEXT NOT NULL, body TEXT);"
    "CREATE INDEX nudges_participant_ts ON nudges(participant, ts);"
    "CREATE TABLE positions(source TEXT PRIMARY KEY, seq INTEGER, ts INTEGER, updated INTEGER);"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value);",
    /* v2: events this hub numbered itself (devices it reads: BLE sensors) are unique by
     * construction, so they stay out of the dedupe index. With one index leaf per source, a
     * commit of a few events from many devices dirtied one index page per event, which was
     * most of the cost of storing 100 devices at 50 Hz (docs/store.md). */
    "ALTER TABLE events ADD COLUMN hub_seq INTEGER NOT NULL DEFAULT 0;"
    "DROP INDEX events_source_seq;"
    "CREATE UNIQUE INDEX events_source_seq ON events(source, seq) WHERE hub_seq = 0;",
    /* v3: the BLE attribute cache, so that a restart does not rediscover every device (slow,
     * and costly for a wearable's battery). device is the cache key: address and type. */
    "CREATE TABLE gatt_cache(device TEXT PRIMARY KEY, blob BLOB NOT NULL,"
    " updated INTEGER NOT NULL);",
    /* v4: positions of hub-numbered sources are written at most once a second, with this
     * mark of the events they cover; up to v3 every commit wrote them, so they cover all. */
    "INSERT INTO meta(key, value) SELECT '" STORE_META_HUB_POSITIONS "', coalesce(max(id), 0)"
    " FROM events;",
    /* v5: the hub clock when a nudge was decided. Its ts is event time, which for data a
     * phone sends days late is days old: a restart counts a pending nudge's 24 hours from
     * decided, as the live queue does (docs/ble.md). NULL for decisions stored before. */
    "ALTER TABLE nudges ADD COLUMN decided INTEGER;",
    /* v6: records of sources with their own seqs (relay phones) that the hub refused, with
     * why and their bytes: their seqs count as processed after a restart too, and what the
     * phone sent is kept, not only a log line (docs/store.md). */
    "CREATE TABLE refused(id INTEGER PRIMARY KEY, source TEXT NOT NULL, seq INTEGER NOT NULL,"
    " participant TEXT NOT NULL, received INTEGER NOT NULL, reason TEXT NOT NULL,"
    " record BLOB NOT NULL);"
    "CREATE UNIQUE INDEX refused_source_seq ON refused(source, seq);",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* SQLite result codes to the project's negative errno convention. */
int store__sqlite_err(sqlite3 *db, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return 0;
    case SQLITE_FULL: return -ENOSPC;
    case SQLITE_NOMEM: return -ENOMEM;
    case SQLITE_BUSY: case SQLITE_LOCKED: return -EBUSY;
    case SQLITE_READONLY: return -EROFS;
    case SQLITE_PERM: case SQLITE_AUTH: return -EACCES;
    case SQLITE_CONSTRAINT: case SQLITE_MISMATCH: case SQLITE_RANGE: return -EINVAL;
    case SQLITE_TOOBIG: return -EMSGSIZE;
    case SQLITE_CORRUPT: case SQLITE_NOTADB: case SQLITE_FORMAT: return -EBADMSG;
    case SQLITE_INTERRUPT: return -EINTR;
    case SQLITE_CANTOPEN: {
        int e = db ? sqlite3_system_errno(db) : 0;
        return e > 0 ? -e : -ENOENT;
    }
    default: return -EIO;
    }
}

void store_opts_default(struct store_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch_max = 5000;
    o->batch_delay_ms = 200;
    o->queue_hwm = 1000;
    o->sync_full = 1;
    o->busy_timeout_ms = 5000;
}

const char *store_strerror(int err)
{
    if (err == STORE_ENEWER)
        return "database schema is newer than this engaged understands (upgrade engaged)";
    if (err == STORE_EFOREIGN)
        return "not an engaged store (an SQLite file with another application's data)";
    return strerror(err < 0 ? -err : err);
}

static int exec(sqlite3 *db, const char *sql)
{
    return store__sqlite_err(db, sqlite3_exec(db, sql, NULL, NULL, NULL));
}

/* Runs a one-value query (a PRAGMA); *v gets the integer result. */
static int query_int(sqlite3 *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db, rc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENODATA : store__sqlite_err(db, rc);
}

/* The file is created here, not by SQLite, so that it never exists with umask-derived
 * permissions; an existing store is tightened to owner-only for the same reason (it holds
 * participants' data). */
static int prepare_file(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0)
        r = -errno;
    else if (!S_ISREG(st.st_mode))
        r = -EINVAL;
    else if ((st.st_mode & 077) && fchmod(fd, st.st_mode & 0700) < 0)
        r = -errno;
    close(fd);
    return r;
}

/* SQLite copies the main file's mode to -wal and -shm, but only what the umask allows and
 * only when it creates them; enforce 0600 on whatever exists now. */
static int chmod_sidecars(const char *path)
{
    static const char *const sfx[] = { "-wal", "-shm" };
    size_t len = strlen(path);
    char *p = malloc(len + 5);
    if (!p)
        return -ENOMEM;
    int r = 0;
    for (size_t i = 0; i < 2; i++) {
        memcpy(p, path, len);
        memcpy(p + len, sfx[i], 5);
        if (chmod(p, 0600) < 0 && errno != ENOENT && !r)
            r = -errno;
    }
    free(p);
    return r;
}

static int migrate(sqlite3 *db)
{
    int r = exec(db, "BEGIN IMMEDIATE");
    if (r < 0)
        return r;
    int64_t app = 0, ver = 0, ntab = 0;
    if ((r = query_int(db, "PRAGMA application_id", &app)) < 0 ||
        (r = query_int(db, "PRAGMA user_version", &ver)) < 0 ||
        (r = query_int(db, "SELECT count(*) FROM sqlite_master", &ntab)) < 0)
        goto fail;
    if (app != STORE_APPLICATION_ID && (app != 0 || ver != 0 || ntab != 0)) {
        r = STORE_EFOREIGN; /* never write our tables into someone else's database */
        goto fail;
    }
    if (ver > STORE_SCHEMA_VERSION) {
        r = STORE_ENEWER;
        goto fail;
    }
    if (ver == STORE_SCHEMA_VERSION)
        return exec(db, "COMMIT");
    if (app == 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA application_id=%d", STORE_APPLICATION_ID);
        if ((r = exec(db, sql)) < 0)
            goto fail;
    }
    for (int64_t v = ver; v < STORE_SCHEMA_VERSION; v++)
        if ((r = exec(db, migrations[v])) < 0)
            goto fail;
    char sql[160];
    snprintf(sql, sizeof sql,
             "PRAGMA user_version=%d;"
             "INSERT OR IGNORE INTO meta(key, value) VALUES('created', %lld);",
             STORE_SCHEMA_VERSION, (long long)daemon_now_ms());
    if ((r = exec(db, sql)) < 0)
        goto fail;
    return exec(db, "COMMIT");
fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

int store__norm_opts(const struct store_opts *in, struct store_opts *o)
{
    if (in)
        *o = *in;
    else
        store_opts_default(o);
    if (o->batch_max == 0)
        o->batch_max = 5000;
    if (o->batch_max > STORE_BATCH_MAX_LIMIT || o->queue_hwm < 0 || o->busy_timeout_ms < 0)
        return -EINVAL;
    if (o->batch_delay_ms == 0)
        o->batch_delay_ms = 200;
    if (o->queue_hwm == 0)
        o->queue_hwm = 1000;
    if (o->busy_timeout_ms == 0)
        o->busy_timeout_ms = 5000;
    return 0;
}

/* SQLite keeps memory statistics by default, taking a global mutex around every allocation
 * and free; Debian builds it without lookaside memory, so each INSERT allocates a few times.
 * Nothing here reads the statistics (no soft heap limit either). The setting only takes
 * before SQLite initialises: once that happened (a test that opened a database itself),
 * sqlite3_config refuses it and the statistics stay on, which changes nothing else. */
static void sqlite_setup(void) { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

void store__sqlite_setup(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_setup);
}

int store__open_rw(const char *path, const struct store_opts *o, sqlite3 **out)
{
    sqlite3 *db = NULL;
    store__sqlite_setup();
    int r = prepare_file(path);
    if (r < 0)
        return r;
    /* NOMUTEX: the connection is used by one thread at a time (handed to the writer
     * thread once, after which only that thread touches it). */
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        r = store__sqlite_err(db, rc);
        goto fail;
    }
    sqlite3_busy_timeout(db, o->busy_timeout_ms);
    /* Migrate before switching to WAL: on a new file the header (application_id) and
     * schema then land in the main file at once, so store_is_engaged_db can recognise a
     * live store from its first 100 bytes even before the first checkpoint. */
    if ((r = migrate(db)) < 0)
        goto fail;
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        r = store__sqlite_err(db, rc);
        goto fail;
    }
    rc = sqlite3_step(st);
    const unsigned char *mode = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    if (rc != SQLITE_ROW)
        r = store__sqlite_err(db, rc);
    else /* a file system without shared memory support keeps the old mode */
        r = mode && strcmp((const char *)mode, "wal") == 0 ? 0 : -ENOTSUP;
    sqlite3_finalize(st);
    if (r < 0)
        goto fail;
    char sql[160];
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous=%s; PRAGMA journal_size_limit=67108864;"
             " PRAGMA temp_store=MEMORY;",
             o->sync_full ? "FULL" : "NORMAL");
    if ((r = exec(db, sql)) < 0)
        goto fail;
    if (o->cache_kib > 0) {
        snprintf(sql, sizeof sql, "PRAGMA cache_size=-%d", o->cache_kib);
        if ((r = exec(db, sql)) < 0)
            goto fail;
    }
    if (o->max_page_count > 0) {
        snprintf(sql, sizeof sql, "PRAGMA max_page_count=%d", o->max_page_count);
        if ((r = exec(db, sql)) < 0)
            goto fail;
    }
    if ((r = chmod_sidecars(path)) < 0)
        goto fail;
    *out = db;
    return 0;
fail:
    sqlite3_close(db);
    return r;
}

/* ---- Detection and read-only access ----------------------------------------------------- */

struct store_reader {
    sqlite3 *db;
};

static int check_ids(sqlite3 *db)
{
    int64_t app = 0, ver = 0;
    int r;
    if ((r = query_int(db, "PRAGMA application_id", &app)) < 0 ||
        (r = query_int(db, "PRAGMA user_version", &ver)) < 0)
        return r;
    if (app != STORE_APPLICATION_ID || ver < 1)
        return STORE_EFOREIGN;
    return ver > STORE_SCHEMA_VERSION ? STORE_ENEWER : 0;
}

int store_open_readonly(const char *path, struct store_reader **out)
{
    if (access(path, R_OK) < 0)
        return -errno;
    struct store_reader *rd = calloc(1, sizeof *rd);
    if (!rd)
        return -ENOMEM;
    store__sqlite_setup();
    int rc = sqlite3_open_v2(path, &rd->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    int r = rc == SQLITE_OK ? 0 : store__sqlite_err(rd->db, rc);
    if (r == 0) {
        sqlite3_busy_timeout(rd->db, 5000);
        r = check_ids(rd->db);
    }
    if (r < 0) {
        store_reader_close(rd);
        return r;
    }
    *out = rd;
    return 0;
}

void store_reader_close(struct store_reader *rd)
{
    if (!rd)
        return;
    sqlite3_close(rd->db);
    free(rd);
}

int store_is_engaged_db(const char *path)
{
    unsigned char h[100];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t got = read(fd, h, sizeof h);
    int e = errno;
    close(fd);
    if (got < 0)
        return -e;
    if (got < (ssize_t)sizeof h || memcmp(h, "SQLite format 3", 16) != 0)
        return 0;
    uint32_t app = (uint32_t)h[68] << 24 | (uint32_t)h[69] << 16 | (uint32_t)h[70] << 8 | h[71];
    if (app == STORE_APPLICATION_ID)
        return 1;
    if (app != 0)
        return 0;
    /* Page 1 may still live only in the WAL; ask SQLite, which reads through it. */
    struct store_reader *rd = NULL;
    int r = store_open_readonly(path, &rd);
    store_reader_close(rd);
    if (r == 0 || r == STORE_ENEWER)
        return 1;
    return r == STORE_EFOREIGN || r == -EBADMSG ? 0 : r;
}

static int prep(struct store_reader *rd, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(rd->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : store__sqlite_err(rd->db, rc);
}

/* Steps a read statement; fn_rc is what the row callback returned. */
static int finish_rows(struct store_reader *rd, sqlite3_stmt *st, int rc, int fn_rc)
{
    sqlite3_finalize(st);
    if (fn_rc)
        return fn_rc;
    return rc == SQLITE_DONE ? 0 : store__sqlite_err(rd->db, rc);
}

static const char *col_text(sqlite3_stmt *st, int i, size_t *len)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    if (len)
        *len = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    return t;
}

int store_reader_events(struct store_reader *rd, int64_t after_id, store_event_fn fn, void *ud)
{
    sqlite3_stmt *st;
    int r = prep(rd, "SELECT id, body, received FROM events WHERE id > ?1 ORDER BY id", &st);
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, after_id);
    int rc = SQLITE_DONE, f = 0;
    while (!f && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t len;
        const char *body = col_text(st, 1, &len);
        f = fn(ud, sqlite3_column_int64(st, 0), body ? body : "", len,
               sqlite3_column_int64(st, 2));
    }
    return finish_rows(rd, st, f ? SQLITE_DONE : rc, f);
}

static int64_t count(struct store_reader *rd, const char *sql)
{
    int64_t v = 0;
    int r = query_int(rd->db, sql, &v);
    return r < 0 ? r : v;
}

int64_t store_reader_count_events(struct store_reader *rd)
{
    return count(rd, "SELECT count(*) FROM events");
}

int64_t store_reader_count_features(struct store_reader *rd)
{
    return count(rd, "SELECT count(*) FROM features");
}

int64_t store_reader_count_nudges(struct store_reader *rd)
{
    return count(rd, "SELECT count(*) FROM nudges");
}

int store_reader_latest(struct store_reader *rd, const char *participant, const char *feature,
                        store_record_fn fn, void *ud)
{
    sqlite3_stmt *st;
    int r = prep(rd,
                 "SELECT f.id, f.participant, f.feature, f.\"window\", f.start, f.\"end\","
                 " f.revision, f.body FROM features f"
                 " WHERE f.participant = ?1 AND (?2 IS NULL OR f.feature = ?2)"
                 " AND f.id = (SELECT g.id FROM features g WHERE g.participant = f.participant"
                 " AND g.feature = f.feature AND g.\"window\" = f.\"window\""
                 " ORDER BY g.start DESC, g.revision DESC, g.id DESC LIMIT 1)"
                 " ORDER BY f.feature, f.\"window\"",
                 &st);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, participant, -1, SQLITE_STATIC);
    if (feature)
        sqlite3_bind_text(st, 2, feature, -1, SQLITE_STATIC);
    int rc = SQLITE_DONE, f = 0;
    while (!f && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_record rec = {
            .participant = col_text(st, 1, NULL),
            .feature = col_text(st, 2, NULL),
            .window = col_text(st, 3, NULL),
            .start = sqlite3_column_int64(st, 4),
            .end = sqlite3_column_int64(st, 5),
            .revision = sqlite3_column_int(st, 6),
        };
        rec.body = col_text(st, 7, &rec.body_len);
        f = fn(ud, sqlite3_column_int64(st, 0), &rec);
    }
    return finish_rows(rd, st, f ? SQLITE_DONE : rc, f);
}

int store_reader_nudge_acks(struct store_reader *rd, const char *source, int64_t since,
                            store_nudge_ack_fn fn, void *ud)
{
    sqlite3_stmt *st;
    int r = prep(rd,
                 "SELECT CASE WHEN json_valid(body) THEN json_extract(body, '$.nudge') END"
                 " FROM events INDEXED BY events_source_seq"
                 " WHERE source = ?1 AND hub_seq = 0 AND type = 'nudge_ack'"
                 " AND received >= ?2"
                 " ORDER BY seq",
                 &st);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since);
    int rc = SQLITE_DONE, f = 0;
    while (!f && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = col_text(st, 0, NULL);
        if (id)
            f = fn(ud, id);
    }
    return finish_rows(rd, st, f ? SQLITE_DONE : rc, f);
}

int store_reader_nudges(struct store_reader *rd, const char *participant, int64_t since,
                        store_nudge_fn fn, void *ud)
{
    sqlite3_stmt *st;
    int r = prep(rd,
                 "SELECT id, participant, ts, rule, body, decided FROM nudges"
                 " WHERE participant = ?1 AND coalesce(decided, ts) >= ?2 ORDER BY ts, id",
                 &st);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, participant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since);
    int rc = SQLITE_DONE, f = 0;
    while (!f && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_nudge nu = {
            .participant = col_text(st, 1, NULL),
            .ts = sqlite3_column_int64(st, 2),
            .rule = col_text(st, 3, NULL),
            .decided = sqlite3_column_int64(st, 5), /* NULL reads as 0 */
        };
        nu.body = col_text(st, 4, &nu.body_len);
        f = fn(ud, sqlite3_column_int64(st, 0), &nu);
    }
    return finish_rows(rd, st, f ? SQLITE_DONE : rc, f);
}

int store_reader_gatt_cache(struct store_reader *rd, store_gatt_cache_fn fn, void *ud)
{
    sqlite3_stmt *st;
    int r = prep(rd, "SELECT device, blob, updated FROM gatt_cache ORDER BY device", &st);
    if (r < 0)
        return r;
    int rc = SQLITE_DONE, f = 0;
    while (!f && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *blob = sqlite3_column_blob(st, 1);
        size_t len = blob ? (size_t)sqlite3_column_bytes(st, 1) : 0;
        const char *device = col_text(st, 0, NULL);
        f = fn(ud, device ? device : "", blob, len, sqlite3_column_int64(st, 2));
    }
    return finish_rows(rd, st, f ? SQLITE_DONE : rc, f);
}

int store_reader_seq_gap(struct store_reader *rd, const char *source, int64_t lo, int64_t hi,
                         int64_t *gap, int64_t *n)
{
    if (lo > hi || hi == INT64_MAX)
        return -EINVAL;
    sqlite3_stmt *st;
    /* hub_seq = 0: the partial unique index on (source, seq) answers it; UNION counts once
     * a seq found in both (an event stored after its seq was refused: store.h) */
    int r = prep(rd, "SELECT seq FROM events WHERE source = ?1 AND hub_seq = 0"
                     " AND seq BETWEEN ?2 AND ?3 UNION"
                     " SELECT seq FROM refused WHERE source = ?1 AND seq BETWEEN ?2 AND ?3"
                     " ORDER BY seq", &st);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, lo);
    sqlite3_bind_int64(st, 3, hi);
    /* what comes before the first row is not judged; s <= hi < INT64_MAX, so s + 1 is safe */
    int64_t next = 0;
    *gap = hi + 1;
    *n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t s = sqlite3_column_int64(st, 0);
        if (*n > 0 && s != next && *gap > hi)
            *gap = next; /* the first missing one */
        next = s + 1;
        (*n)++;
    }
    return finish_rows(rd, st, rc, 0);
}

int store_reader_positions(struct store_reader *rd, store_position_fn fn, void *ud)
{
    sqlite3_stmt *st;
    /* the table, and for hub-numbered sources the events after the mark it covers (store
     * _sync.c): one statement, so one snapshot; the mark bounds a rowid range scan */
    int r = prep(rd,
                 "SELECT source, max(seq), max(ts), max(updated) FROM ("
                 " SELECT source, seq, ts, updated FROM positions UNION ALL"
                 " SELECT source, max(seq), max(ts), max(received) FROM events"
                 "  WHERE id > (SELECT value FROM meta WHERE key = '" STORE_META_HUB_POSITIONS "')"
                 "  AND hub_seq = 1 GROUP BY source)"
                 " GROUP BY source ORDER BY source", &st);
    if (r < 0)
        return r;
    int rc = SQLITE_DONE, f = 0;
    while (!f && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_position p = {
            .seq = sqlite3_column_int64(st, 1), .ts = sqlite3_column_int64(st, 2),
            .updated = sqlite3_column_int64(st, 3),
            .has_seq = sqlite3_column_type(st, 1) != SQLITE_NULL,
            .has_ts = sqlite3_column_type(st, 2) != SQLITE_NULL};
        f = fn(ud, col_text(st, 0, NULL), &p);
    }
    return finish_rows(rd, st, f ? SQLITE_DONE : rc, f);
}
