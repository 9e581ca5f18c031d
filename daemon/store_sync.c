/* The synchronous write engine: one connection, prepared statements reused, rows batched
 * into explicit transactions (events, records, nudges, attribute cache entries). replay
 * --store drives it directly; store_writer.c drives it from its own thread and acknowledges
 * events only after store_sync_commit succeeds. */
#include "daemon/store_int.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

enum { ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_EVENT, ST_FEATURE, ST_NUDGE, ST_POSITION,
       ST_GATT_PUT, ST_GATT_DROP, ST__N };

static const char *const stmt_sql[ST__N] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_EVENT] = "INSERT OR IGNORE INTO events(source, seq, ts, participant, type, body, received,"
                 " hub_seq) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_FEATURE] = "INSERT INTO features(participant, feature, \"window\", start, \"end\","
                   " revision, body) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_NUDGE] = "INSERT INTO nudges(participant, ts, rule, body) VALUES(?1, ?2, ?3, ?4)",
    /* Positions only move forward, whatever order batches commit in. */
    [ST_POSITION] = "INSERT INTO positions(source, seq, ts, updated) VALUES(?1, ?2, ?3, ?4)"
                    " ON CONFLICT(source) DO UPDATE SET"
                    " seq = CASE WHEN excluded.seq IS NOT NULL AND (positions.seq IS NULL"
                    " OR excluded.seq > positions.seq) THEN excluded.seq ELSE positions.seq END,"
                    " ts = CASE WHEN positions.ts IS NULL OR excluded.ts > positions.ts"
                    " THEN excluded.ts ELSE positions.ts END,"
                    " updated = excluded.updated",
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
    int64_t seq, ts;
    int has_seq;
};

struct store_sync {
    sqlite3 *db;
    sqlite3_stmt *st[ST__N];
    int in_tx;
    size_t pending;
    struct pos_acc pos[POS_SLOTS];
    size_t npos;
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

static int pos_write(struct store_sync *s)
{
    sqlite3_stmt *st = s->st[ST_POSITION];
    int64_t now = daemon_now_ms();
    for (size_t i = 0; i < s->npos; i++) {
        struct pos_acc *p = &s->pos[i];
        sqlite3_bind_text(st, 1, p->source, -1, SQLITE_STATIC);
        if (p->has_seq)
            sqlite3_bind_int64(st, 2, p->seq);
        else
            sqlite3_bind_null(st, 2);
        sqlite3_bind_int64(st, 3, p->ts);
        sqlite3_bind_int64(st, 4, now);
        int rc = step(s, st);
        if (rc != SQLITE_DONE)
            return store__sqlite_err(s->db, rc);
    }
    pos_clear(s);
    return 0;
}

static int pos_note(struct store_sync *s, const struct store_event *e)
{
    struct pos_acc *p = NULL;
    for (size_t i = 0; i < s->npos && !p; i++)
        if (strcmp(s->pos[i].source, e->source) == 0)
            p = &s->pos[i];
    if (!p) {
        if (s->npos == POS_SLOTS) {
            int r = pos_write(s);
            if (r < 0)
                return r;
        }
        p = &s->pos[s->npos];
        if (!(p->source = strdup(e->source)))
            return -ENOMEM;
        s->npos++;
        p->has_seq = 0;
        p->seq = 0;
        p->ts = e->ts;
    }
    if (e->has_seq && (!p->has_seq || e->seq > p->seq)) {
        p->seq = e->seq;
        p->has_seq = 1;
    }
    if (e->ts > p->ts)
        p->ts = e->ts;
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

int store_sync_events(struct store_sync *s, const struct store_event *ev, size_t n,
                      uint8_t *status)
{
    int r = begin_tx(s);
    if (r < 0)
        return r;
    sqlite3_stmt *st = s->st[ST_EVENT];
    int64_t now = daemon_now_ms();
    for (size_t i = 0; i < n; i++) {
        const struct store_event *e = &ev[i];
        if (!valid_str(e->source) || !valid_str(e->participant) || !valid_str(e->type) ||
            !e->body || e->body_len > STORE_BODY_MAX) {
            status[i] = STORE_ERROR;
            continue;
        }
        sqlite3_bind_text(st, 1, e->source, -1, SQLITE_STATIC);
        if (e->has_seq)
            sqlite3_bind_int64(st, 2, e->seq);
        else
            sqlite3_bind_null(st, 2);
        sqlite3_bind_int64(st, 3, e->ts);
        sqlite3_bind_text(st, 4, e->participant, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, e->type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, e->body, (int)e->body_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, e->received ? e->received : now);
        sqlite3_bind_int(st, 8, e->has_seq && e->hub_seq);
        int rc = step(s, st);
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
        status[i] = STORE_INSERTED;
        s->pending++;
        if ((r = pos_note(s, e)) < 0)
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
    int r = pos_write(s);
    if (r < 0)
        return abort_tx(s, r);
    int rc = step(s, s->st[ST_COMMIT]);
    if (rc != SQLITE_DONE)
        return abort_tx(s, store__sqlite_err(s->db, rc));
    s->in_tx = 0;
    s->pending = 0;
    return 0;
}

struct sqlite3 *store__sync_db(struct store_sync *s) { return s->db; }

int store_sync_close(struct store_sync *s)
{
    if (!s)
        return 0;
    int r = s->db ? store_sync_commit(s) : 0;
    pos_clear(s);
    for (int i = 0; i < ST__N; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    free(s);
    return r;
}

