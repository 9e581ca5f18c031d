/* The running daemon's context: everything the loop owns. One instance, passed explicitly
 * (no global mutable state beyond logging settings). */
#ifndef ENGAGED_DAEMON_H
#define ENGAGED_DAEMON_H

#include <stdint.h>
#include <time.h>

#include "daemon/zap.h"

struct conf;
struct zap;
struct store_writer;
struct publisher;
struct control;
struct ingest;
struct ble;
struct usb;
struct pipeline;
struct pipeline_participant_conf;

struct daemon_curve {
    char secret[CURVE_Z85_LEN + 1];
    struct curve_keylist clients;
    struct curve_opts opts;
};

struct daemon {
    struct conf *cf;
    const char *conf_path;
    void *zctx;
    struct zap *zap;
    struct store_writer *sw;
    struct publisher *pub;
    struct control *ctl;
    struct ingest *ing;
    struct ble *ble;     /* [source] driver = ble (daemon/ble.h); NULL when none */
    struct usb *usb;     /* [source] driver = usb (daemon/usb.h); NULL when none */
    struct pipeline *pl;
    struct pipeline_participant_conf *parts;
    struct daemon_curve curve_pub, curve_ctl, curve_ing;
    int sfd, wdfd, stfd;
    int stopping;
    uint64_t records_out, records_unstored, reloads;
    uint64_t replayed_records; /* during recovery: records re-derived that were stored before */
    uint64_t last_heartbeat;
    int64_t started_ms;
    char buf[16384];
    char *ev_msg;        /* the message of an event/ topic, built here (publish_event) */
    size_t ev_msg_cap;
};

/* daemon/clock.c: UTC and monotonic milliseconds */
int64_t daemon_now_ms(void);
int64_t daemon_mono_ms(void);
/* t moved on by sec seconds and nsec (0 <= nsec < 1e9) nanoseconds, tv_nsec kept below 1e9:
 * the deadlines of pthread_cond_timedwait and clock_nanosleep. */
void daemon_ts_add(struct timespec *t, time_t sec, long nsec);
/* Reads a socket's CURVE key files (if configured) into c, logging FILE:LINE errors. */
int daemon_curve_setup(struct zap *zap, struct daemon_curve *c, const char *domain,
                       const char *secret_file, const char *clients_file);
/* 1 if any configured endpoint is tcp:// and so needs the ZAP handler. */
int daemon_needs_zap(const struct conf *cf);

#include <jansson.h>
/* The control socket's handler (daemon/ctlcmds.c); matches control_handler_fn. */
int daemon_control(const char *cmd, const json_t *req, json_t *reply, void *ud);

#endif
