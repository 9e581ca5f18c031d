/* File readers for `engaged replay`: each turns one recorded file into events, one at a
 * time, with the file and line (or record) of every problem. One const struct reader_ops per
 * format, listed in drivers/readers.c; formats are auto-detected from the first bytes. */
#ifndef ENGAGED_READER_H
#define ENGAGED_READER_H

#include <stdint.h>
#include <stdio.h>

#include "pipeline/event.h"
#include "pipeline/tz.h"

enum read_result {
    READ_EOF = 0,
    READ_EVENT = 1,
    READ_BAD = 2,      /* bad input at r->line: reason in r->why; counted, not fatal */
    READ_UNKNOWN = 3,  /* an event of a type this version does not know: counted, skipped */
};

struct reader_opts {
    const char *participant; /* --participant: for single-participant formats */
    const char *source;      /* source name to stamp on events, NULL = format default */
    /* Time zone of formats that record local wall-clock time (Actiwatch AWD, ActiGraph agd
     * and CSV): --tz, else the --participant's configured zone; NULL = UTC. */
    const struct tz_zone *zone;
};

struct reader;

struct reader_ops {
    const char *name; /* --format name */
    /* 1 if the first bytes (n may be small) look like this format */
    int (*probe)(const char *path, const unsigned char *head, size_t n);
    int (*open)(struct reader *r, const char *path, const struct reader_opts *o);
    /* READ_* (>= 0) or a negative errno for an I/O error (reason in r->why) */
    int (*next)(struct reader *r, struct event *ev);
    void (*close)(struct reader *r);
};

struct reader {
    const struct reader_ops *ops;
    void *priv;
    const char *path;
    uint64_t line;      /* 1-based line (or record) of the last item returned */
    const char *why;    /* reason of the last READ_BAD / error (static or priv-owned) */
    struct reader_opts opts;
    float (*scratch)[3]; /* EV_ACCEL_MAX samples, for accel events */
    int64_t received;    /* when the hub received the last event (the store), 0 = unknown */
};

const struct reader_ops *reader_find(const char *format); /* by --format name */
/* Opens path with the given format, or auto-detects it when format is NULL. Returns 0 or a
 * negative errno (-ENOENT missing, -EPROTONOSUPPORT unknown format) with r->why set. */
int reader_open(struct reader *r, const char *path, const char *format,
                const struct reader_opts *o);
void reader_close(struct reader *r);
/* For a reader's open: sets r->why to the formatted reason (a per-thread buffer, valid until
 * the next call on the thread) and returns err. */
int reader_fail_open(struct reader *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

extern const struct reader_ops reader_jsonl;
extern const struct reader_ops reader_aware_csv;
extern const struct reader_ops reader_store;
extern const struct reader_ops reader_agd;   /* ActiGraph .agd (SQLite) */
extern const struct reader_ops reader_agcsv; /* ActiGraph/ActiLife epoch CSV */
extern const struct reader_ops reader_cwa;   /* Axivity AX3/AX6 .cwa (drivers/file_cwa.c) */
extern const struct reader_ops reader_gt3x;  /* ActiGraph .gt3x (drivers/file_gt3x.c) */
extern const struct reader_ops reader_btsnoop; /* btsnoop BLE captures (drivers/file_btsnoop.c) */

#endif
