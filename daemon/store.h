/* The SQLite store: the recording (raw events), feature records, nudge decisions,
 * per-source positions and the BLE attribute cache, in one WAL-mode database (docs/store.md
 * describes the schema).
 *
 * Three ways in:
 *  - store_writer_*: the daemon's path. A dedicated thread owns the only write connection
 *    and is fed through an in-process queue (daemon/mq.h), so an fsync on a slow SD card
 *    never blocks the main loop. Events are acknowledged (store_read_reply) only after COMMIT.
 *  - store_sync_*: the same writes, single-threaded, for replay --store and tools.
 *  - store_reader_*: a read-only connection, usable while a writer runs (replay of a
 *    store, restart recovery, engagectl).
 * Files: store.c (open, migrations, reads), store_sync.c (write engine), store_writer.c
 * (the thread), store_client.c (the caller's side), store_int.h (internal).
 *
 * All functions return 0 (or a count) on success and a negative errno on failure; none
 * of them print. Strings passed in are borrowed for the duration of the call only. */
#ifndef ENGAGED_STORE_H
#define ENGAGED_STORE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* PRAGMA application_id of an engaged store ('e','n','g','d'). */
#define STORE_APPLICATION_ID 0x656e6764
/* The schema version this code writes (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 6

#define STORE_BODY_MAX (1u << 20)     /* longest event/record/nudge body, bytes */
#define STORE_STR_MAX 1024u           /* longest source/participant/type/feature/... */
#define STORE_BATCH_MAX_LIMIT 100000u /* upper bound of store_opts.batch_max and of n per request */
#define STORE_REQ_MAX_BYTES (64u << 20) /* largest single EVENTS request, encoded */
#define STORE_BLOB_MAX (64u << 10)    /* longest attribute cache blob (a full GATT database
                                       * exports to at most ~32 KiB) */

/* Errors with a store-specific meaning (store_strerror() words them for users). */
#define STORE_ENEWER (-EPROTONOSUPPORT) /* database schema newer than this engaged knows */
#define STORE_EFOREIGN (-EMEDIUMTYPE)   /* an SQLite file, but not an engaged store */

/* Per-event outcome in a reply. */
enum store_status {
    STORE_INSERTED = 0,  /* stored by this request */
    STORE_DUPLICATE = 1, /* (source, seq) was already stored: safe to acknowledge */
    STORE_ERROR = 2      /* not stored: do not acknowledge; the client will resend */
};

/* One event to record. All pointers borrowed for the call. Strings need not be
 * NUL-terminated when a length is given; source/participant/type are NUL-terminated. */
struct store_event {
    const char *source;
    int64_t seq;        /* valid only if has_seq; events without seq are never deduplicated */
    int has_seq;
    int hub_seq;        /* seq was numbered by this hub, never reused (a retry of an event that
                           was not stored gets a new one): kept out of the (source, seq) dedupe
                           index, so never reported STORE_DUPLICATE */
    int64_t ts;         /* event time, ms UTC */
    const char *participant;
    const char *type;   /* event type name ("screen", "app", ...) */
    const char *body;   /* canonical JSON line (ev_to_json), no newline */
    size_t body_len;
    int64_t received;   /* ms UTC when the daemon received it; 0 = time of storing */
    const char *refused; /* NULL: an event. Else a record of a source with its own seq that
                            the hub refused, for this reason (NUL-terminated, at most
                            STORE_STR_MAX): kept in the refused table with body as its bytes
                            (body_len may be 0), so that its seq counts as processed; type and
                            ts are not used. STORE_DUPLICATE when (source, seq) is stored
                            already, as an event or a refusal. */
};

/* One feature record (spec §4): key fields for queries plus the canonical JSON body. */
struct store_record {
    const char *participant, *feature, *window; /* window: "day", "7d", "event", ... */
    int64_t start, end;
    int revision;
    const char *body;
    size_t body_len;
};

/* One nudge decision (spec §6). */
struct store_nudge {
    const char *participant;
    int64_t ts;
    int64_t decided;         /* ms UTC, the hub clock when decided; 0 = unknown (stored NULL) */
    const char *rule;
    const char *body;
    size_t body_len;
};

struct store_opts {
    unsigned batch_max;      /* rows per transaction at most; 0 = 5000; <= STORE_BATCH_MAX_LIMIT */
    unsigned batch_delay_ms; /* longest a transaction stays open under load; 0 = 200 */
    int queue_hwm;           /* event requests in flight (submitted, reply not yet read) are
                              * limited to queue_hwm / 2, beyond which submits return -EAGAIN;
                              * records and nudges queue up to queue_hwm + 1024; 0 = 1000 */
    int sync_full;           /* 1: PRAGMA synchronous=FULL (acknowledged = survives power
                              * loss); 0: NORMAL (survives a daemon crash, not power loss).
                              * store_opts_default() sets 1. */
    int busy_timeout_ms;     /* 0 = 5000 */
    int cache_kib;           /* page cache of the write connection; 0 = SQLite's (2 MiB) */
    /* Testing only. */
    int max_page_count;      /* > 0: PRAGMA max_page_count, to simulate a full disk */
    unsigned fail_after_steps; /* > 0: the Nth write statement fails with an I/O error */
};

/* Counters of a running writer (read with relaxed atomics; monotonic). */
struct store_stats {
    uint64_t events_inserted, events_duplicate, events_failed;
    uint64_t records, nudges, records_dropped; /* dropped: lost with a failed transaction */
    uint64_t gatt_cache;     /* attribute cache entries written or dropped */
    uint64_t commits, commit_errors;
    uint64_t checkpoints, checkpoint_failures; /* of the WAL, by the checkpointer thread */
    uint64_t checkpoint_busy; /* checkpoints that found the database busy (tried again) */
    uint64_t heartbeat;  /* advances at least once a second while the thread is alive */
    int last_error;      /* negative errno of the last failed transaction, 0 if none */
};

void store_opts_default(struct store_opts *o);
const char *store_strerror(int err);

/* 1 if path is an engaged store (SQLite header and our application_id), 0 if it is
 * something else (including another SQLite database), negative errno if unreadable. */
int store_is_engaged_db(const char *path);

/* ---- Writer thread (daemon) ---------------------------------------------------------- */

struct store_writer;

/* Opens (creating with mode 0600 and migrating if needed) the database in the calling
 * thread, so schema errors are reported here, then starts the writer thread with all
 * signals blocked. Returns NULL with *err. */
struct store_writer *store_writer_start(const char *path, const struct store_opts *o, int *err);

/* Readable (POLLIN, level) while replies may wait for store_read_reply; it can also be
 * readable with none (read until -EAGAIN, which clears it). Do not read it directly. */
int store_writer_fd(const struct store_writer *w);

/* 1 while replies that arrived during store_flush wait in memory for store_read_reply: the
 * fd does not signal those. */
int store_replies_held(const struct store_writer *w);

/* Waits up to timeout_ms for room to send (after a submit returned -EAGAIN for a full
 * queue). Returns 0 (room or not) or -errno. */
int store_wait_room(struct store_writer *w, int timeout_ms);

/* Queue events for storage; nothing blocks. token comes back in the reply. Returns 0,
 * -EAGAIN when the queue is full (backpressure: stop reading inputs, read replies, retry),
 * -EINVAL / -EMSGSIZE for a malformed request (n == 0 or > STORE_BATCH_MAX_LIMIT, missing
 * fields, body > STORE_BODY_MAX, request > STORE_REQ_MAX_BYTES). */
int store_submit_events(struct store_writer *w, uint64_t token, const struct store_event *ev,
                        size_t n);
/* 1 when store_submit_events would take a request now, 0 when it would answer -EAGAIN (the
 * replies of earlier requests are to be read first): a caller can skip building one. */
int store_writer_has_room(const struct store_writer *w);
/* Whether one more event fits in a store_submit_events request being built: start with {0};
 * store_fit_add counts e and returns 1 while the request still holds it (at most
 * STORE_BATCH_MAX_LIMIT events and STORE_REQ_MAX_BYTES encoded), else 0 and e is not counted
 * (also for an event that never fits: a body over STORE_BODY_MAX, a string over
 * STORE_STR_MAX, no body). */
struct store_fit {
    size_t n, bytes;
};
int store_fit_add(struct store_fit *f, const struct store_event *e);
/* Fire-and-forget; same return values. A record lost later (its transaction rolled back)
 * is counted in store_stats.records_dropped. */
int store_submit_record(struct store_writer *w, const struct store_record *r);
int store_submit_nudge(struct store_writer *w, const struct store_nudge *n);

/* The attribute cache entry of a BLE device (drivers/ble_gatt.h: an exported GATT database)
 * under its cache key, a device identifier (address and type; never who wears it): replaced
 * by blob, or dropped when blob is NULL. Fire-and-forget like records, and written again with
 * them when a transaction fails. 0, -EAGAIN, -EINVAL (no device), -EMSGSIZE (device longer
 * than STORE_STR_MAX or blob than STORE_BLOB_MAX). */
int store_submit_gatt_cache(struct store_writer *w, const char *device, const uint8_t *blob,
                            size_t len);

/* Takes one reply without blocking: -EAGAIN if none. *status_all is 0 when the request's
 * transaction committed (per_event then says inserted/duplicate/error per event) or a
 * negative errno when nothing of it was stored (every per_event is STORE_ERROR; acknowledge
 * none of it). Up to cap statuses are copied; *n is the request's full event count (0 when
 * the writer ran out of memory before reading the request). Replies come in submit order. */
int store_read_reply(struct store_writer *w, uint64_t *token, int *status_all,
                     uint8_t *per_event, size_t cap, size_t *n);

/* Blocks until everything submitted before it is committed (or timeout_ms passes; < 0 =
 * no limit). Replies that arrive meanwhile are kept for store_read_reply, which the caller
 * must then drain (they no longer show as POLLIN). Returns 0, -ETIMEDOUT, or the first
 * transaction error since the previous flush. */
int store_flush(struct store_writer *w, int timeout_ms);

void store_writer_stats(const struct store_writer *w, struct store_stats *s);

/* Commits what is queued, stops and joins the thread, closes everything. Replies not yet
 * read are discarded (their data is committed). Accepts NULL. */
void store_writer_stop(struct store_writer *w);

/* ---- Synchronous writes (replay --store, tools; also the writer thread's engine) ----- */

struct store_sync;

int store_sync_open(const char *path, const struct store_opts *o, struct store_sync **out);
/* Writes into the open transaction (begun on demand). status[i] gets enum store_status.
 * A failure that aborts the transaction (disk full, I/O error, ...) rolls back everything
 * since the last commit and returns its negative errno; a row-level failure only marks
 * that row STORE_ERROR. */
int store_sync_events(struct store_sync *s, const struct store_event *ev, size_t n,
                      uint8_t *status);
int store_sync_record(struct store_sync *s, const struct store_record *r);
int store_sync_nudge(struct store_sync *s, const struct store_nudge *n);
int store_sync_gatt_cache(struct store_sync *s, const char *device, const uint8_t *blob,
                          size_t len);
/* Rows written in the open transaction (0 when none is open). */
size_t store_sync_pending(const struct store_sync *s);
/* 1 while a transaction is open; 0 after a commit or a rollback (including one a failure
 * caused: then everything written since the last commit is gone). */
int store_sync_in_transaction(const struct store_sync *s);
/* Discards the open transaction, if any. */
void store_sync_rollback(struct store_sync *s);
/* Advances positions and commits; rolls back and returns negative errno on failure. */
int store_sync_commit(struct store_sync *s);
/* Commits, closes. Returns the commit's result. Accepts NULL. */
int store_sync_close(struct store_sync *s);

/* ---- Read-only access ------------------------------------------------------------------ */

struct store_reader;

/* Refuses files that are not engaged stores (STORE_EFOREIGN) or too new (STORE_ENEWER). */
int store_open_readonly(const char *path, struct store_reader **out);
void store_reader_close(struct store_reader *r);

/* Callbacks return 0 to go on; any other value stops the iteration and is returned. */
/* received: the hub clock when the event arrived (ms, UTC) */
typedef int (*store_event_fn)(void *ud, int64_t id, const char *body, size_t len,
                              int64_t received);
typedef int (*store_record_fn)(void *ud, int64_t id, const struct store_record *r);
typedef int (*store_nudge_fn)(void *ud, int64_t id, const struct store_nudge *n);
/* A source's stored position: its highest seq (has_seq: it numbers its records), its newest
 * event time (has_ts: 0 while it has stored only refused records, which carry none) and when
 * it was last written (ms, UTC). */
struct store_position {
    int64_t seq, ts, updated;
    int has_seq, has_ts;
};
typedef int (*store_position_fn)(void *ud, const char *source, const struct store_position *p);
/* blob: as stored, unchecked (len 0 for an empty or non-blob value): the caller validates. */
typedef int (*store_gatt_cache_fn)(void *ud, const char *device, const uint8_t *blob,
                                   size_t len, int64_t updated);

/* Events with id > after_id in id (= storage) order, from one consistent snapshot. */
int store_reader_events(struct store_reader *r, int64_t after_id, store_event_fn fn, void *ud);
int64_t store_reader_count_events(struct store_reader *r);
int64_t store_reader_count_features(struct store_reader *r);
int64_t store_reader_count_nudges(struct store_reader *r);
/* The newest record (greatest start, then revision, then id) of each (feature, window) of
 * a participant, ordered by feature and window; feature NULL = all features. */
int store_reader_latest(struct store_reader *r, const char *participant, const char *feature,
                        store_record_fn fn, void *ud);
/* Nudge decisions of a participant the hub made at or after since (hub clock, ms UTC: the
 * decided column; ts for a decision stored without it, before schema v5), in ts then id
 * order. */
int store_reader_nudges(struct store_reader *r, const char *participant, int64_t since,
                        store_nudge_fn fn, void *ud);
/* The nudge ids named by nudge_ack events of a source that reached the hub at or after
 * since (received, ms UTC), in storage order (a scan of the source's own events: it needs no
 * index beyond (source, seq)). */
typedef int (*store_nudge_ack_fn)(void *ud, const char *nudge_id);
int store_reader_nudge_acks(struct store_reader *r, const char *source, int64_t since,
                            store_nudge_ack_fn fn, void *ud);
/* Every source's position, ordered by source. */
int store_reader_positions(struct store_reader *r, store_position_fn fn, void *ud);
/* Among source's seqs of its own (not hub-numbered) in [lo, hi] (hi < INT64_MAX), stored as
 * events or as refusals: how many are stored (*n) and the smallest seq above the first of them
 * that is not (*gap; hi + 1 when none is missing or none is stored). */
int store_reader_seq_gap(struct store_reader *r, const char *source, int64_t lo, int64_t hi,
                         int64_t *gap, int64_t *n);
/* Every attribute cache entry, ordered by device. */
int store_reader_gatt_cache(struct store_reader *r, store_gatt_cache_fn fn, void *ud);

#endif
