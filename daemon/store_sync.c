/* The synchronous write engine: one connection, prepared statements reused, rows batched
 * into explicit transactions (events, records, nudges, attribute cache entries). replay
 * --store drives it directly; store_writer.c drives it from its own thread and acknowledges
 * events only after store_sync_commit succeeds. */
#include "daemon/store_int.h"
#include "pipeline/sources.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

enum { ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_EVENT, ST_REFUSED, ST_FEATURE, ST_NUDGE,
       ST_POSITION, ST_HUB_MARK, ST_GATT_PUT, ST_GATT_DROP, ST__N };

/* The columns bind_event_at binds, in its order: the single and the multi-row inserts */
#define EVENT_INTO "INTO events(source, seq, ts, participant, type, body, received, hub_seq) VALUES"
#define EVENT_COLS 8

static const char *const stmt_sql[ST__N] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_EVENT] = "INSERT OR IGNORE " EVENT_INTO "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    /* a seq stored as an event or refused before is a duplicate (no row: changes() = 0) */
    [ST_REFUSED] = "INSERT OR IGNORE INTO refused(source, seq, participant, received, reason,"
                   " record) SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE NOT EXISTS (SELECT 1 FROM"
                   " events WHERE source = ?1 AND seq = ?2 AND hub_seq = 0)",
    [ST_FEATURE] = "INSERT INTO features(participant, feature, \"window\", start, \"end\","
                   " revision, body) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_NUDGE] = "INSERT INTO nudges(participant, ts, rule, body, decided)"
                 " VALUES(?1, ?2, ?3, ?4, ?5)",
    /* Positions only move forward, whatever order batches commit in. */
    [ST_POSITION] = "INSERT INTO positions(source, seq, ts, updated) VALUES(?1, ?2, ?3, ?4)"
                    " ON CONFLICT(source) DO UPDATE SET"
                    " seq = CASE WHEN excluded.seq IS NOT NULL AND (positions.seq IS NULL"
                    " OR excluded.seq > positions.seq) THEN excluded.seq ELSE positions.seq END,"
                    " ts = CASE WHEN positions.ts IS NULL OR excluded.ts > positions.ts"
                    " THEN excluded.ts ELSE positions.ts END,"
                    " updated = excluded.updated",
    /* the events the positions of hub-numbered sources cover: all those up to this id */
    [ST_HUB_MARK] = "INSERT INTO meta(key, value) SELECT '" STORE_META_HUB_POSITIONS "',"
                    " coalesce(max(id), 0) FROM events WHERE true ON CONFLICT(key)"
                    " DO UPDATE SET value = excluded.value",
    [ST_GATT_PUT] = "INSERT INTO gatt_cache(device, blob, updated) VALUES(?1, ?2, ?3)"
                    " ON CONFLICT(device) DO UPDATE SET blob = excluded.blob,"
                    " updated = excluded.updated",
    [ST_GATT_DROP] = "DELETE FROM gatt_cache WHERE device = ?1",
};

/* Highest seq/ts written per source in the open transaction; written to positions just
 * before COMMIT, so a position never runs ahead of the events it covers. A handful of
 * sources is typical; when more appear, the slots are written out early (still inside
 * the same transaction) and reused. */
#define POS_SLOTS 32
struct pos_acc {
    char *source;
    uint64_t hash; /* str_hash64(source): compared before the names */
    int64_t seq, ts;
    int has_seq, has_ts; /* has_ts: 0 while only refusals (no event time) were written */
    int hub; /* every event of the source in this transaction was hub-numbered */
};

/* Hub-numbered sources (BLE sensors, each notifying many times a second) would cost a
 * positions upsert per source in every commit. Their positions are instead kept here once
 * committed and written at most every HUB_POS_EVERY_MS, together with the meta row
 * STORE_META_HUB_POSITIONS: the highest events.id the written positions cover. Readers add
 * what the events after that id say (store_reader_positions), so positions read are exact
 * at any time, after a crash too; only the table itself lags, by at most that period. */
#define HUB_POS_EVERY_MS 1000
struct hub_pos {
    char *source;
    uint64_t hash;
    int64_t seq, ts;
    int dirty; /* committed since the last write of the positions table */
};

/* Runs of hub-numbered events (a BLE batch: one notification from each of many devices) go
 * in as one INSERT of up to RUN_MAX rows: per row, a statement's own work (open the table,
 * halt, reset) was a sixth of the writer's instructions. Their rows are outside the dedupe
 * index (hub_seq = 1), so all of them are stored or, on a row's error, none, and then they
 * go one by one, which says which. The statement of k rows is prepared when first needed;
 * the seven of 2..8 rows take about 50 KiB (those of 2..16, about 150 KiB, showed in
 * bench_ble's RSS for little more gain). */
#define RUN_MAX 8

struct store_sync {
    sqlite3 *db;
    sqlite3_stmt *st[ST__N];
    sqlite3_stmt *run[RUN_MAX + 1]; /* [k]: k hub-numbered events */
    int in_tx;
    size_t pending;
    struct pos_acc pos[POS_SLOTS];
    size_t npos;
    struct hub_pos *hub; /* sorted by hash, then source */
    size_t nhub, hubcap, hub_dirty;
    int64_t hub_written_ms; /* monotonic */
    int hub_force;          /* write them at the next commit, whatever the time */
    int events_since_mark;  /* events inserted since STORE_META_HUB_POSITIONS was written */
    unsigned fail_after, steps;
};

static void pos_clear(struct store_sync *s)
{
    for (size_t i = 0; i < s->npos; i++)
        free(s->pos[i].source);
    s->npos = 0;
}

/* Steps a write statement to completion and resets it, so it is reusable whatever
 * happened. The fault switch stands in for a failing disk in tests. */
static int step(struct store_sync *s, sqlite3_stmt *st)
{
    int rc;
    if (s->fail_after && ++s->steps == s->fail_after)
        rc = SQLITE_IOERR;
    else
        rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc;
}

/* Errors that concern one row; anything else (full, I/O, busy, no memory) is treated as
 * fatal for the transaction. */
static int row_level(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_CONSTRAINT || rc == SQLITE_TOOBIG || rc == SQLITE_MISMATCH ||
           rc == SQLITE_RANGE;
}

static int abort_tx(struct store_sync *s, int err)
{
    if (!sqlite3_get_autocommit(s->db))
        step(s, s->st[ST_ROLLBACK]);
    s->in_tx = 0;
    s->pending = 0;
    pos_clear(s);
    return err;
}

static int begin_tx(struct store_sync *s)
{
    if (s->in_tx)
        return 0;
    int rc = step(s, s->st[ST_BEGIN]);
    if (rc != SQLITE_DONE)
        return abort_tx(s, store__sqlite_err(s->db, rc));
    s->in_tx = 1;
    return 0;
}

static int pos_row(struct store_sync *s, const char *source, int has_seq, int64_t seq,
                   int has_ts, int64_t ts, int64_t now)
{
    sqlite3_stmt *st = s->st[ST_POSITION];
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    if (has_seq)
        sqlite3_bind_int64(st, 2, seq);
    else
        sqlite3_bind_null(st, 2);
    if (has_ts)
        sqlite3_bind_int64(st, 3, ts);
    else
        sqlite3_bind_null(st, 3); /* the row's own ts stays (ST_POSITION) */
    sqlite3_bind_int64(st, 4, now);
    int rc = step(s, st);
    return rc == SQLITE_DONE ? 0 : store__sqlite_err(s->db, rc);
}

/* Writes the slots into the open transaction and empties them; with keep_hub, the slots of
 * hub-numbered sources stay (for hub_keep after the commit). */
static int pos_write(struct store_sync *s, int keep_hub)
{
    int64_t now = daemon_now_ms();
    size_t kept = 0;
    for (size_t i = 0; i < s->npos; i++) {
        struct pos_acc *p = &s->pos[i];
        if (keep_hub && p->hub) {
            s->pos[kept++] = *p;
            continue;
        }
        int r = pos_row(s, p->source, p->has_seq, p->seq, p->has_ts, p->ts, now);
        if (r < 0) {
            free(p->source); /* before the rest move down, maybe over *p */
            for (size_t j = i + 1; j < s->npos; j++) /* the rest are still owned here */
                s->pos[kept++] = s->pos[j];
            s->npos = kept;
            return r;
        }
        free(p->source);
    }
    s->npos = kept;
    return 0;
}

static struct hub_pos *hub_find(struct store_sync *s, const char *source, uint64_t hash,
                                size_t *at)
{
    size_t lo = 0, hi = s->nhub;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t h = s->hub[mid].hash;
        int c = h != hash ? (h < hash ? -1 : 1) : strcmp(s->hub[mid].source, source);
        if (c == 0)
            return &s->hub[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return NULL;
}

/* Room for every kept slot to become a new source: 0 or -ENOMEM. */
static int hub_reserve(struct store_sync *s)
{
    if (s->nhub + s->npos <= s->hubcap)
        return 0;
    size_t cap = s->hubcap ? 2 * s->hubcap : 16;
    while (cap < s->nhub + s->npos)
        cap *= 2;
    struct hub_pos *n = realloc(s->hub, cap * sizeof *n);
    if (!n)
        return -ENOMEM;
    s->hub = n;
    s->hubcap = cap;
    return 0;
}

/* After a commit: the kept slots join the committed positions (room reserved before). */
static void hub_keep(struct store_sync *s)
{
    for (size_t i = 0; i < s->npos; i++) {
        struct pos_acc *p = &s->pos[i];
        size_t at = 0;
        struct hub_pos *h = hub_find(s, p->source, p->hash, &at);
        if (!h) {
            memmove(&s->hub[at + 1], &s->hub[at], (s->nhub - at) * sizeof *s->hub);
            h = &s->hub[at];
            *h = (struct hub_pos){.source = p->source, .hash = p->hash, .seq = p->seq,
                                  .ts = p->ts};
            p->source = NULL; /* moved */
            s->nhub++;
        } else {
            if (p->seq > h->seq)
                h->seq = p->seq;
            if (p->ts > h->ts)
                h->ts = p->ts;
        }
        if (!h->dirty) {
            h->dirty = 1;
            s->hub_dirty++;
        }
    }
}

/* Inside the open transaction: the positions of hub-numbered sources not yet in the table
 * (committed before, and this transaction's kept slots, which it empties), and the mark of
 * the events they cover. */
static int hub_write(struct store_sync *s)
{
    int64_t now = daemon_now_ms();
    for (size_t i = 0; i < s->nhub && s->hub_dirty; i++) {
        struct hub_pos *h = &s->hub[i];
        if (!h->dirty)
            continue;
        int r = pos_row(s, h->source, 1, h->seq, 1, h->ts, now);
        if (r < 0)
            return r;
    }
    int r = pos_write(s, 0);
    if (r < 0)
        return r;
    int rc = step(s, s->st[ST_HUB_MARK]);
    return rc == SQLITE_DONE ? 0 : store__sqlite_err(s->db, rc);
}

/* After the commit that wrote them. */
static void hub_written(struct store_sync *s)
{
    for (size_t i = 0; i < s->nhub; i++)
        s->hub[i].dirty = 0;
    s->hub_dirty = 0;
    s->hub_force = 0;
    s->events_since_mark = 0;
    s->hub_written_ms = daemon_mono_ms();
}

static int pos_note(struct store_sync *s, const struct store_event *e)
{
    struct pos_acc *p = NULL;
    uint64_t hash = str_hash64(e->source);
    for (size_t i = 0; i < s->npos && !p; i++)
        if (s->pos[i].hash == hash && strcmp(s->pos[i].source, e->source) == 0)
            p = &s->pos[i];
    if (!p) {
        if (s->npos == POS_SLOTS) {
            int r = pos_write(s, 0); /* all of them, early, in this transaction */
            if (r < 0)
                return r;
        }
        p = &s->pos[s->npos];
        if (!(p->source = strdup(e->source)))
            return -ENOMEM;
        p->hash = hash;
        s->npos++;
        p->has_seq = 0;
        p->seq = 0;
        p->has_ts = 0;
        p->hub = 1;
    }
    if (!(e->has_seq && e->hub_seq))
        p->hub = 0;
    if (e->has_seq && (!p->has_seq || e->seq > p->seq)) {
        p->seq = e->seq;
        p->has_seq = 1;
    }
    if (!e->refused && (!p->has_ts || e->ts > p->ts)) {
        p->ts = e->ts;
        p->has_ts = 1;
    }
    return 0;
}

int store_sync_open(const char *path, const struct store_opts *in, struct store_sync **out)
{
    struct store_opts o;
    int r = store__norm_opts(in, &o);
    if (r < 0)
        return r;
    struct store_sync *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->fail_after = o.fail_after_steps;
    if ((r = store__open_rw(path, &o, &s->db)) < 0) {
        free(s);
        return r;
    }
    for (int i = 0; i < ST__N; i++) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            r = store__sqlite_err(s->db, rc);
            store_sync_close(s);
            return r;
        }
    }
    *out = s;
    return 0;
}

static int valid_str(const char *p)
{
    return p && *p && strnlen(p, STORE_STR_MAX + 1) <= STORE_STR_MAX;
}

/* A refused record into the refused table (bound; stepped by the caller). */
static sqlite3_stmt *bind_refused(struct store_sync *s, const struct store_event *e, int64_t now)
{
    sqlite3_stmt *st = s->st[ST_REFUSED];
    sqlite3_bind_text(st, 1, e->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, e->seq);
    sqlite3_bind_text(st, 3, e->participant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, e->received ? e->received : now);
    sqlite3_bind_text(st, 5, e->refused, -1, SQLITE_STATIC);
    /* a NULL pointer would bind NULL: an empty record is a zero-length blob */
    sqlite3_bind_blob(st, 6, e->body_len ? e->body : "", (int)e->body_len, SQLITE_STATIC);
    return st;
}

static int valid_event(const struct store_event *e)
{
    if (!valid_str(e->source) || !valid_str(e->participant) || e->body_len > STORE_BODY_MAX)
        return 0;
    if (e->refused)
        return valid_str(e->refused) && e->has_seq && !e->hub_seq && (e->body || !e->body_len);
    return valid_str(e->type) && e->body;
}

/* Binds e to the EVENT_COLS parameters of st after the first c. */
static void bind_event_at(sqlite3_stmt *st, int c, const struct store_event *e, int64_t now)
{
    sqlite3_bind_text(st, c + 1, e->source, -1, SQLITE_STATIC);
    if (e->has_seq)
        sqlite3_bind_int64(st, c + 2, e->seq);
    else
        sqlite3_bind_null(st, c + 2);
    sqlite3_bind_int64(st, c + 3, e->ts);
    sqlite3_bind_text(st, c + 4, e->participant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, c + 5, e->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, c + 6, e->body, (int)e->body_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, c + 7, e->received ? e->received : now);
    sqlite3_bind_int(st, c + 8, e->has_seq && e->hub_seq);
}

static sqlite3_stmt *bind_event(struct store_sync *s, const struct store_event *e, int64_t now)
{
    sqlite3_stmt *st = s->st[ST_EVENT];
    bind_event_at(st, 0, e, now);
    return st;
}

static int hub_numbered(const struct store_event *e)
{
    return !e->refused && e->has_seq && e->hub_seq && valid_event(e);
}

/* Inserts ev[0..k) (hub-numbered, valid) with one statement: SQLITE_DONE when every row was
 * stored, else the statement's error, and nothing of it was stored. */
static int insert_run(struct store_sync *s, const struct store_event *ev, size_t k, int64_t now)
{
    sqlite3_stmt *st = s->run[k];
    if (!st) {
        static const char head[] = "INSERT " EVENT_INTO;
        static const char row[] = "(?,?,?,?,?,?,?,?),"; /* EVENT_COLS */
        char sql[sizeof head + RUN_MAX * (sizeof row - 1)];
        memcpy(sql, head, sizeof head - 1);
        char *p = sql + sizeof head - 1;
        for (size_t i = 0; i < k; i++, p += sizeof row - 1)
            memcpy(p, row, sizeof row - 1);
        p[-1] = '\0'; /* the last comma */
        int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->run[k], NULL);
        if (rc != SQLITE_OK)
            return rc;
        st = s->run[k];
    }
    for (size_t i = 0; i < k; i++)
        bind_event_at(st, (int)i * EVENT_COLS, &ev[i], now);
    return step(s, st); /* a plain INSERT: no row is skipped without an error */
}

/* What a stored row of store_sync_events means, whichever statement stored it. */
static int inserted(struct store_sync *s, const struct store_event *e, uint8_t *status)
{
    *status = STORE_INSERTED;
    s->pending++;
    s->events_since_mark |= !e->refused;
    return pos_note(s, e);
}

int store_sync_events(struct store_sync *s, const struct store_event *ev, size_t n,
                      uint8_t *status)
{
    int r = begin_tx(s);
    if (r < 0)
        return r;
    int64_t now = daemon_now_ms();
    size_t single_until = 0; /* rows of a run that failed go one by one */
    for (size_t i = 0; i < n; i++) {
        const struct store_event *e = &ev[i];
        size_t k = 0;
        while (i >= single_until && k < RUN_MAX && i + k < n && hub_numbered(&ev[i + k]))
            k++;
        if (k >= 2) {
            int rc = insert_run(s, e, k, now);
            if (rc == SQLITE_DONE) {
                for (size_t j = i; j < i + k; j++)
                    if ((r = inserted(s, &ev[j], &status[j])) < 0)
                        return abort_tx(s, r);
                i += k - 1;
                continue;
            }
            if (!row_level(rc))
                return abort_tx(s, store__sqlite_err(s->db, rc));
            single_until = i + k;
        }
        if (!valid_event(e)) {
            status[i] = STORE_ERROR;
            continue;
        }
        int rc = step(s, e->refused ? bind_refused(s, e, now) : bind_event(s, e, now));
        if (rc != SQLITE_DONE) {
            if (!row_level(rc))
                return abort_tx(s, store__sqlite_err(s->db, rc));
            status[i] = STORE_ERROR;
            continue;
        }
        /* OR IGNORE reports success either way; no change means (source, seq) existed. */
        if (sqlite3_changes(s->db) == 0) {
            status[i] = STORE_DUPLICATE;
            continue;
        }
        if ((r = inserted(s, e, &status[i])) < 0)
            return abort_tx(s, r);
    }
    return 0;
}

/* Shared tail of the single-row writes (records, nudges, cache entries): statement bound. */
static int insert_one(struct store_sync *s, sqlite3_stmt *st)
{
    int rc = step(s, st);
    if (rc == SQLITE_DONE) {
        s->pending++;
        return 0;
    }
    return row_level(rc) ? store__sqlite_err(s->db, rc) : abort_tx(s, store__sqlite_err(s->db, rc));
}

int store_sync_record(struct store_sync *s, const struct store_record *rec)
{
    if (!valid_str(rec->participant) || !valid_str(rec->feature) || !valid_str(rec->window) ||
        !rec->body || rec->body_len > STORE_BODY_MAX)
        return -EINVAL;
    int r = begin_tx(s);
    if (r < 0)
        return r;
    sqlite3_stmt *st = s->st[ST_FEATURE];
    sqlite3_bind_text(st, 1, rec->participant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, rec->feature, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, rec->window, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, rec->start);
    sqlite3_bind_int64(st, 5, rec->end);
    sqlite3_bind_int(st, 6, rec->revision);
    sqlite3_bind_text(st, 7, rec->body, (int)rec->body_len, SQLITE_STATIC);
    return insert_one(s, st);
}

int store_sync_nudge(struct store_sync *s, const struct store_nudge *nu)
{
    if (!valid_str(nu->participant) || !valid_str(nu->rule) || nu->body_len > STORE_BODY_MAX)
        return -EINVAL;
    int r = begin_tx(s);
    if (r < 0)
        return r;
    sqlite3_stmt *st = s->st[ST_NUDGE];
    sqlite3_bind_text(st, 1, nu->participant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, nu->ts);
    sqlite3_bind_text(st, 3, nu->rule, -1, SQLITE_STATIC);
    if (nu->body)
        sqlite3_bind_text(st, 4, nu->body, (int)nu->body_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    if (nu->decided)
        sqlite3_bind_int64(st, 5, nu->decided);
    else
        sqlite3_bind_null(st, 5);
    return insert_one(s, st);
}

int store_sync_gatt_cache(struct store_sync *s, const char *device, const uint8_t *blob,
                          size_t len)
{
    if (!valid_str(device) || (blob && (len == 0 || len > STORE_BLOB_MAX)))
        return -EINVAL;
    int r = begin_tx(s);
    if (r < 0)
        return r;
    sqlite3_stmt *st = s->st[blob ? ST_GATT_PUT : ST_GATT_DROP];
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    if (blob) {
        sqlite3_bind_blob(st, 2, blob, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, daemon_now_ms());
    }
    return insert_one(s, st);
}

size_t store_sync_pending(const struct store_sync *s)
{
    return s->in_tx ? s->pending : 0;
}

int store_sync_in_transaction(const struct store_sync *s)
{
    return s->in_tx;
}

void store_sync_rollback(struct store_sync *s)
{
    abort_tx(s, 0);
}

int store_sync_commit(struct store_sync *s)
{
    if (!s->in_tx)
        return 0;
    /* the mark moves with the positions, and at least as often: readers scan the events
     * after it */
    int due = s->events_since_mark &&
              (s->hub_force || daemon_mono_ms() - s->hub_written_ms >= HUB_POS_EVERY_MS);
    int r = pos_write(s, 1);
    if (r == 0 && !due && hub_reserve(s) < 0)
        due = 1; /* no room to keep them: written now */
    if (r == 0 && due)
        r = hub_write(s);
    if (r < 0)
        return abort_tx(s, r);
    int rc = step(s, s->st[ST_COMMIT]);
    if (rc != SQLITE_DONE)
        return abort_tx(s, store__sqlite_err(s->db, rc));
    if (due)
        hub_written(s);
    else
        hub_keep(s);
    pos_clear(s);
    s->in_tx = 0;
    s->pending = 0;
    return 0;
}

struct sqlite3 *store__sync_db(struct store_sync *s) { return s->db; }

int store_sync_close(struct store_sync *s)
{
    if (!s)
        return 0;
    int r = 0;
    if (s->db) {
        s->hub_force = 1; /* the table itself up to date when the store is closed */
        if (s->hub_dirty)
            r = begin_tx(s);
        if (r == 0)
            r = store_sync_commit(s);
    }
    pos_clear(s);
    for (size_t i = 0; i < s->nhub; i++)
        free(s->hub[i].source);
    free(s->hub);
    for (int i = 0; i < ST__N; i++)
        sqlite3_finalize(s->st[i]);
    for (int k = 0; k <= RUN_MAX; k++)
        sqlite3_finalize(s->run[k]);
    sqlite3_close(s->db);
    free(s);
    return r;
}

