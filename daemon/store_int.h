/* Internal to the store module: shared by store.c, store_sync.c, store_writer.c (the
 * thread) and store_client.c (the caller's side). Nothing outside daemon/store*.c includes
 * this; the public API is store.h. */
#ifndef ENGAGED_STORE_INT_H
#define ENGAGED_STORE_INT_H

#include "daemon/daemon.h"
#include "daemon/mq.h"
#include "daemon/store.h"

#include <pthread.h>
#include <stdatomic.h>

/* meta key: the highest events.id the positions table covers for hub-numbered sources,
 * whose rows are written at most once a second (store_sync.c); store_reader_positions adds
 * the events after it. */
#define STORE_META_HUB_POSITIONS "hub_positions_id"

struct sqlite3;

/* Applies defaults to zero fields; -EINVAL for out-of-range values. in NULL = defaults. */
int store__norm_opts(const struct store_opts *in, struct store_opts *out);
/* Creates (0600) or opens, migrates and configures a write connection. */
int store__open_rw(const char *path, const struct store_opts *o, struct sqlite3 **db);
/* Process-wide SQLite settings, once, before the first connection (every open calls it). */
void store__sqlite_setup(void);
int store__sqlite_err(struct sqlite3 *db, int rc);
/* The connection of a store_sync (the writer's). */
struct sqlite3 *store__sync_db(struct store_sync *s);

/* The checkpointer (store_ckpt.c): a thread with its own connection to path that checkpoints
 * the WAL when the writer's commits grew it; the writer's connection stops checkpointing
 * itself. Stop it (after the writer thread, before closing the writer's connection). */
struct store_ckpt;
int store__ckpt_start(const char *path, struct sqlite3 *writer, struct store_ckpt **ret);
void store__ckpt_stop(struct store_ckpt *c, struct sqlite3 *writer);
void store__ckpt_counts(struct store_ckpt *c, uint64_t *runs, uint64_t *failures,
                        uint64_t *busy);

/* Wire format of the queues (daemon/mq.h): one message each, a type byte, then a fixed header
 * copied in and out with memcpy (both ends are one process: native layout and byte order),
 * then the strings, each followed by a NUL so the thread can bind them in place. No JSON
 * is parsed on this path. Headers are memset before filling so no padding byte is sent
 * uninitialised. */
enum {
    M_EVENTS = 1, /* wire_req, then n x (wire_event, source, participant, type, body,
                   * reason); a refusal's type and an event's reason are "" */
    M_RECORD,     /* wire_record, participant, feature, window, body */
    M_NUDGE,      /* wire_nudge, participant, rule, body ("" when absent) */
    M_FLUSH,      /* wire_req with n = 0 */
    M_STOP,       /* the type byte only */
    M_GATT,       /* wire_gatt, device, then blob_len bytes (no NUL; none to drop the entry) */
    R_EVENTS = 0x81, /* wire_reply, then n status bytes */
    R_FLUSHED,       /* wire_reply: status = first transaction error since the last flush */
    R_STOPPED,       /* the type byte only */
};

struct wire_req {
    uint64_t token;
    uint32_t n;
};

struct wire_event {
    int64_t seq, ts, received;
    uint32_t body_len;
    uint16_t source_len, participant_len, type_len, reason_len;
    uint8_t has_seq, hub_seq, refused;
};

struct wire_record {
    int64_t start, end;
    int32_t revision;
    uint32_t body_len;
    uint16_t participant_len, feature_len, window_len;
};

struct wire_nudge {
    int64_t ts, decided;
    uint32_t body_len;
    uint16_t participant_len, rule_len;
    uint8_t has_body;
};

struct wire_gatt {
    uint32_t blob_len;
    uint16_t device_len;
    uint8_t has_blob;
};

struct wire_reply {
    uint64_t token;
    int32_t status; /* 0 committed, or the negative errno that rolled it back */
    uint32_t n;
};

#define WIRE_REPLY_LEN (1 + sizeof(struct wire_reply))

struct store_writer {
    struct mq req; /* the caller's requests, to the thread */
    struct mq rep; /* the thread's replies */
    struct mq_msg *stop; /* made at start, so that stopping cannot fail */
    pthread_t thr;
    struct store_sync *db; /* the thread's, once started */
    struct store_ckpt *ckpt;
    struct store_opts o;
    uint64_t flush_seq;
    struct mq_msg *head, *tail; /* replies that arrived during store_flush */
    /* Event requests whose reply the caller has not read yet are limited to `budget`, so
     * the reply queue, which has no limit, holds at most that many events replies (plus a
     * flush's or stop's answer). The request queue's limit bounds records and nudges. */
    size_t outstanding, budget;
    _Atomic uint64_t n_ins, n_dup, n_fail, n_rec, n_nudge, n_gatt, n_drop, n_commit, n_cerr, hb;
    _Atomic int last_err;
};

/* The thread's entry point (store_writer.c); arg is the struct store_writer. */
void *store__writer_main(void *arg);

#endif
