/* Recording a BLE source's raw traffic (`[source] record = PATH`, docs/ble.md "Recording raw
 * traffic"): every ATT PDU the daemon exchanges with the device, both directions, with the
 * hub's UTC time, appended to a btsnoop capture (datalink 1002, H4, as Android's HCI snoop
 * log) that `engaged replay` reads through the same decoders as the daemon.
 *
 * The capture is a faithful HCI-level log of what the daemon saw: each daemon start writes an
 * HCI Reset and its Command Complete (a new session: the reader forgets every connection),
 * each connection an LE Connection Complete with the device's address and its own ACL handle
 * (1 + a per-session connection counter mod 0x0EFF), then its ATT PDUs, then a Disconnection
 * Complete. Parameters the daemon does not know (connection interval, latency, supervision
 * timeout, clock accuracy) are written as 0.
 *
 * Records are collected in a buffer of whole records and written with write(2) when it is full
 * or its oldest record is BLE_REC_FLUSH_MS old, and on close, so a killed daemon loses at most
 * that much of the capture and never leaves half a record behind (a short write, such as a
 * full disk, is cut back to the last flush). The file never grows beyond `record_max`: the
 * PDU that would pass it stops the recording, with one log line; so does a write error. The
 * daemon goes on either way; what is not recorded is counted. Never blocks on anything but
 * the write itself. Single-threaded: the daemon's loop. */
#ifndef ENGAGED_DAEMON_BLE_RECORD_H
#define ENGAGED_DAEMON_BLE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define BLE_REC_FLUSH_MS 1000   /* a buffered record is written within this */
#define BLE_REC_BUF (64 * 1024) /* bytes buffered at most */
#define BLE_REC_MODE 0600       /* health data: the daemon's user only */

struct conf;
struct ble_rec;

/* When a record is made: monotonic ns (for the flush deadline) and the time written (UTC µs). */
struct ble_rec_at {
    int64_t mono_ns;
    int64_t utc_us;
};

struct ble_rec_stats {
    uint64_t records;        /* records written or buffered this session */
    uint64_t dropped;        /* ATT PDUs not recorded: recording stopped, or over 517 bytes */
    int64_t size;            /* bytes in the file, buffered ones included */
    int stopped;             /* 0, or why recording stopped: -EDQUOT (record_max), a write -errno */
};

/* Opens path for appending: a missing or empty file is created (BLE_REC_MODE) with the btsnoop
 * header; an existing one must be a btsnoop capture of datalink 1002, else -EINVAL or
 * -EPROTONOSUPPORT with a reason in why (cap bytes), and it is left untouched. Then writes the
 * session start. name: the source, for log lines. max: bytes the file may reach (a file already
 * that large records nothing, with one log line). -errno of open/read/write otherwise. */
int ble_rec_open(const char *path, const char *name, int64_t max, struct ble_rec_at at,
                 struct ble_rec **ret, char *why, size_t cap);
/* Ends the connection still open (reason 0x16, local host), writes what is buffered, closes
 * and frees. Accepts NULL; returns NULL. */
struct ble_rec *ble_rec_close(struct ble_rec *r, struct ble_rec_at at);

/* A connection to the device at address ("XX:XX:XX:XX:XX:XX") began: LE Connection Complete
 * on the next handle. One connection at a time: one still open is ended first. */
void ble_rec_connect(struct ble_rec *r, struct ble_rec_at at, const char *address, int random);
/* The connection ended with an HCI reason (0x13 the device closed it, 0x16 the hub did):
 * Disconnection Complete. Nothing without an open connection. */
void ble_rec_disconnect(struct ble_rec *r, struct ble_rec_at at, uint8_t reason);
/* One ATT PDU of the open connection, dir BTSNOOP_DIR_SENT or BTSNOOP_DIR_RECEIVED. */
void ble_rec_att(struct ble_rec *r, struct ble_rec_at at, int dir, const uint8_t *pdu,
                 size_t len);

/* When buffered records must be written (monotonic ns; INT64_MAX: nothing buffered). */
int64_t ble_rec_deadline(const struct ble_rec *r);
/* Writes the buffer when its deadline has come. */
void ble_rec_on_timer(struct ble_rec *r, int64_t now_mono_ns);
void ble_rec_stats(const struct ble_rec *r, struct ble_rec_stats *ret);
/* 0 while recording, else why it stopped (as ble_rec_stats' stopped). */
int ble_rec_stopped(const struct ble_rec *r);

/* The record time of something the daemon handles in a dispatch whose UTC clock read utc_ms:
 * real_us (CLOCK_REALTIME now, µs) kept inside that millisecond, so the capture's times give
 * the same event times to the ms as the daemon's, with the finer clock's order within it. */
int64_t ble_rec_time_us(int64_t utc_ms, int64_t real_us);

/* ---- the daemon's sources ---- */

struct ble_recset;
/* Opens the capture of every ble source with `record` (run.c, before ble_new, which hands
 * each device its own through struct ble_host): 0 with *ret, or -errno when one cannot be used
 * (logged as FILE:LINE: [source NAME] record: ...; nothing is left open). Two sources naming
 * the same file is an error. Ignores SIGXFSZ when any is opened, so a file-size limit is a
 * write error (recording stops), not the daemon's death. */
int ble_record_open_all(const struct conf *cf, int64_t mono_ns, int64_t utc_us,
                        struct ble_recset **ret);
/* The capture opened for source (NULL: none, or set NULL); the caller owns it from now on. */
struct ble_rec *ble_record_claim(struct ble_recset *set, const char *source);
/* Closes the captures nobody claimed and frees the set. Accepts NULL. */
void ble_recset_free(struct ble_recset *set);

#endif
