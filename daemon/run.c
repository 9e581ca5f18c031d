/* `engaged run`: the daemon. One loop (epoll over the ZeroMQ sockets' ZMQ_FDs, a signalfd
 * and timerfds, see loop_open); the only other thread is the store writer. Start-up order matters:
 * signals are blocked before libzmq starts its threads, the ZAP handler is bound before any
 * CURVE listener, and the pipeline is rebuilt from the store before the ingest socket is read,
 * so a restart resumes exactly where the last committed event left it (sockets are bound
 * before recovery but not read until it is done). */
#include "daemon/run.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sysexits.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon/ble.h"
#include "daemon/ble_record.h"
#include "daemon/checkconf.h"
#include "daemon/conf.h"
#include "daemon/control.h"
#include "daemon/daemon.h"
#include "daemon/ingest.h"
#include "daemon/log.h"
#include "daemon/publish.h"
#include "daemon/store.h"
#include "daemon/usb.h"
#include "daemon/zap.h"
#include "pipeline/pipeline.h"
#include "pipeline/sources.h"

#ifndef ENGAGED_SYSCONFDIR
#define ENGAGED_SYSCONFDIR "/etc"
#endif

static void conf_error(void *ud, const char *file, int line, const char *msg)
{
    (void)ud;
    log_error("%s:%d: %s", file, line, msg);
}

/* The record sink: store first (the durable copy), then the feed. */
static int emit_record(void *ud, const struct feature_record *r)
{
    struct daemon *d = ud;
    int n = record_to_json(r, d->buf, sizeof d->buf);
    if (n < 0)
        return n;
    char topic[PUBLISH_TOPIC_MAX + 1];
    int have_topic = (r->nudge ? publish_topic_nudge(topic, sizeof topic, r->participant)
                               : publish_topic_feature(topic, sizeof topic, r->participant,
                                                       r->feature)) >= 0;
    if (d->replayed_records) {
        /* stored and published before the restart: only the last-value cache (and the
         * topic's seq) needs it, so late subscribers and seq continue as before */
        d->replayed_records--;
        if (d->pub && have_topic)
            publisher_prime(d->pub, topic, d->buf, (size_t)n);
        return 0;
    }
    if (r->nudge) /* BLE */
        ble_on_nudge(d->ble, r->participant, r->nudge); /* BLE */
    struct store_record sr = {
        .participant = r->participant, .feature = r->feature,
        .window = window_kind_name(r->window), .start = r->start, .end = r->end,
        .revision = r->revision, .body = d->buf, .body_len = (size_t)n,
    };
    struct store_nudge sn = {.participant = r->participant, .ts = r->nudge ? r->nudge->ts : 0,
                             .decided = r->nudge ? r->nudge->decided : 0,
                             .rule = r->nudge ? r->nudge->rule : NULL, .body = d->buf,
                             .body_len = (size_t)n};
    int e, tries = 0;
    while ((e = r->nudge ? store_submit_nudge(d->sw, &sn) : store_submit_record(d->sw, &sr)) ==
           -EAGAIN) {
        if (++tries > 100)
            break;
        /* the writer is behind: wait for room rather than lose a record (bounded) */
        store_wait_room(d->sw, 100);
    }
    if (e < 0) {
        d->records_unstored++;
        log_error("store: record %s/%s lost: %s", r->participant, r->feature, strerror(-e));
    }
    if (d->pub && have_topic)
        publisher_send(d->pub, topic, d->buf, (size_t)n);
    d->records_out++;
    return e < 0 ? e : 0;
}

/* [publish] event_topics: the stored event on event/<participant>/<type>, wrapped so that the
 * event's own "seq" and the topic's "seq" stay apart. json is its canonical text when the
 * caller has it (the body stored), else NULL. App package names stay on the hub unless
 * allow_app_names: they become "intervention" or "other" (whether the app is one of the
 * participant's intervention apps), which is what downstream apps need; such an event is
 * serialised again, without its name. */
static void publish_event(struct daemon *d, const struct event *ev, const char *json,
                          size_t json_len)
{
    static const char head[] = "{\"event\":";
    const size_t hl = sizeof head - 1;
    char topic[PUBLISH_TOPIC_MAX + 1];
    if (publish_topic_event(topic, sizeof topic, ev->participant, ev_type_name(ev->type)) < 0)
        return;
    struct event redacted;
    if (ev->type == EV_APP && !d->cf->publish.allow_app_names) {
        const struct conf_participant *p = conf_participant(d->cf, ev->participant);
        int intervention = 0;
        for (size_t i = 0; p && i < p->intervention_apps.n; i++)
            intervention |= strcmp(p->intervention_apps.items[i], ev->u.app.app) == 0;
        memcpy(&redacted, ev, sizeof redacted);
        snprintf(redacted.u.app.app, sizeof redacted.u.app.app, "%s",
                 intervention ? "intervention" : "other");
        ev = &redacted;
        json = NULL;
    }
    size_t len;
    if (json) {
        if (vec_grow((void **)&d->ev_msg, &d->ev_msg_cap, hl + json_len + 2, 1) < 0)
            return;
        memcpy(d->ev_msg + hl, json, json_len);
        len = json_len;
    } else {
        size_t bound = ev_json_bound(ev);
        if (vec_grow((void **)&d->ev_msg, &d->ev_msg_cap, hl + bound + 2, 1) < 0)
            return;
        long n = ev_json_write(ev, d->ev_msg + hl, bound);
        if (n < 0)
            return;
        len = (size_t)n;
    }
    memcpy(d->ev_msg, head, hl);
    d->ev_msg[hl + len] = '}';
    publisher_send(d->pub, topic, d->ev_msg, hl + len + 1);
}

static void push_stored(void *ud, const struct event *ev, int64_t received, const char *json,
                        size_t json_len)
{
    struct daemon *d = ud;
    pipeline_set_clock(d->pl, received); /* as recovery will, from the stored copy */
    int r = pipeline_push(d->pl, ev);
    if (r < 0)
        log_warn("pipeline: event of %s dropped: %s", ev->participant, strerror(-r));
    if (d->pub && d->cf->publish.event_topics)
        publish_event(d, ev, json, json_len);
}

static const struct tz_zone *participant_zone(void *ud, const char *participant, int64_t t)
{
    return pipeline_zone_at(((struct daemon *)ud)->pl, participant, t);
}

static void push_event(void *ud, const struct event *ev, int64_t received)
{
    push_stored(ud, ev, received, NULL, 0);
}

/* Rebuild the pipeline from the recording: same events, same order, so the same state and
 * the same records; the records already stored are not emitted again. */
struct recover_ctx {
    struct daemon *d;
    float (*scratch)[3];
    uint64_t n, bad;
};

static int recover_one(void *ud, int64_t id, const char *body, size_t len, int64_t received)
{
    struct recover_ctx *rc = ud;
    struct event ev;
    const char *why = NULL;
    if (ev_parse_json(body, len, &ev, rc->scratch, &why) < 0) {
        rc->bad++;
        log_warn("store: event %" PRId64 " unreadable: %s", id, why ? why : "?");
        return 0;
    }
    pipeline_set_clock(rc->d->pl, received);
    pipeline_push(rc->d->pl, &ev);
    rc->n++;
    return 0;
}

static int recover(struct daemon *d)
{
    struct store_reader *r;
    int e = store_open_readonly(d->cf->store.path, &r);
    if (e < 0) {
        log_error("store %s: %s", d->cf->store.path, store_strerror(e));
        return e;
    }
    int64_t stored = store_reader_count_features(r), nudges = store_reader_count_nudges(r);
    if (stored >= 0 && nudges < 0)
        stored = nudges;
    else if (stored >= 0)
        stored += nudges; /* decisions are re-derived too, in the same order */
    if (stored < 0) {
        store_reader_close(r);
        return (int)stored;
    }
    d->replayed_records = (uint64_t)stored;
    struct recover_ctx rc = {.d = d, .scratch = malloc(sizeof(float[3]) * EV_ACCEL_MAX)};
    if (!rc.scratch) {
        store_reader_close(r);
        return -ENOMEM;
    }
    e = store_reader_events(r, 0, recover_one, &rc);
    store_reader_close(r);
    free(rc.scratch);
    if (d->replayed_records)
        log_warn("recovery re-derived %" PRIu64 " records fewer than the store holds: the "
                 "[pipeline] configuration changed, or the store was written by `engaged replay "
                 "--store`, which also holds the final partial days", d->replayed_records);
    d->replayed_records = 0;
    if (e < 0)
        return e;
    log_info("recovered %" PRIu64 " events and %" PRId64 " stored records from %s", rc.n, stored,
             d->cf->store.path);
    return 0;
}

/* ---- CURVE material ----------------------------------------------------------------- */

int daemon_curve_setup(struct zap *zap, struct daemon_curve *c, const char *domain,
                       const char *secret_file, const char *clients_file)
{
    memset(c, 0, sizeof *c);
    c->opts.zap = zap;
    c->opts.domain = domain;
    if (!secret_file[0])
        return 0;
    struct curve_err ce = {0};
    int e = curve_read_key_file(secret_file, c->secret, &ce);
    if (e < 0) {
        log_error("%s:%d: %s", secret_file, ce.line, ce.msg[0] ? ce.msg : strerror(-e));
        return e;
    }
    if (clients_file[0]) {
        e = curve_read_allowlist(clients_file, &c->clients, &ce);
        if (e < 0) {
            log_error("%s:%d: %s", clients_file, ce.line, ce.msg[0] ? ce.msg : strerror(-e));
            return e;
        }
    }
    c->opts.secret_key = c->secret;
    c->opts.clients = &c->clients;
    return 0;
}

int daemon_needs_zap(const struct conf *cf)
{
    for (size_t i = 0; i < cf->publish.n_endpoints; i++)
        if (strncmp(cf->publish.endpoints[i], "tcp://", 6) == 0)
            return 1;
    return strncmp(cf->control.endpoint, "tcp://", 6) == 0 ||
           strncmp(cf->ingest.endpoint, "tcp://", 6) == 0;
}

/* ---- timers and signals ------------------------------------------------------------- */

static int timer_new(int64_t period_ms)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct itimerspec its = {
        .it_interval = {period_ms / 1000, (period_ms % 1000) * 1000000},
        .it_value = {period_ms / 1000, (period_ms % 1000) * 1000000},
    };
    if (timerfd_settime(fd, 0, &its, NULL) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

static void timer_drain(int fd)
{
    uint64_t n; /* one read takes every expiry */
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
}

static void notify_status(struct daemon *d)
{
    const struct pipeline_stats *st = pipeline_get_stats(d->pl);
    struct ingest_stats is = {0};
    if (d->ing)
        ingest_get_stats(d->ing, &is);
    sd_notifyf(0, "STATUS=%" PRIu64 " events, %" PRIu64 " records, %" PRIu64 " late, %" PRIu64
                  " rejected lines",
               st->accepted, d->records_out, st->late, is.rejected);
}

static void watchdog_tick(struct daemon *d)
{
    /* Pet the watchdog only while the store writer is alive too: a wedged writer means
     * nothing gets acknowledged, and a restart is the right remedy. */
    struct store_stats ss;
    store_writer_stats(d->sw, &ss);
    if (ss.heartbeat != d->last_heartbeat) {
        d->last_heartbeat = ss.heartbeat;
        sd_notify(0, "WATCHDOG=1");
    } else {
        log_warn("store writer made no progress since the last watchdog tick");
    }
}

static void reload(struct daemon *d)
{
    struct conf *nc = NULL;
    d->reloads++;
    if (conf_load(d->conf_path, &nc, conf_error, NULL) < 0 || !nc) {
        log_error("reload: %s has errors; keeping the running configuration", d->conf_path);
        return;
    }
    sd_notify(0, "RELOADING=1");
    log_set_level(nc->daemon.log_level);
    /* Sockets, the store and the pipeline's parameters are fixed for the process's life:
     * changing them live would make the live features differ from a replay of the store. */
    if (strcmp(nc->store.path, d->cf->store.path) != 0 ||
        memcmp(&nc->pipeline, &d->cf->pipeline, sizeof nc->pipeline) != 0 ||
        nc->n_participants != d->cf->n_participants ||
        nc->publish.n_endpoints != d->cf->publish.n_endpoints ||
        strcmp(nc->control.endpoint, d->cf->control.endpoint) != 0 ||
        strcmp(nc->ingest.endpoint, d->cf->ingest.endpoint) != 0)
        log_notice("reload: store, endpoint, pipeline and participant changes take effect "
                   "at the next restart");
    conf_free(nc);
    log_info("reload: configuration re-read, log level applied");
    sd_notify(0, "READY=1");
}

static int handle_signal(struct daemon *d)
{
    struct signalfd_siginfo si;
    while (read(d->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP)
            reload(d);
        else
            d->stopping = 1;
    }
    return 0;
}

/* ---- the loop ----------------------------------------------------------------------- */

/* Returns 1 if an ingest request was among the replies (its client's queue has room). */
static int drain_store_replies(struct daemon *d)
{
    uint64_t token;
    int status_all, ingest = 0;
    size_t n;
    static uint8_t per_event[STORE_BATCH_MAX_LIMIT];
    while (store_read_reply(d->sw, &token, &status_all, per_event, sizeof per_event, &n) == 0) {
        /* BLE: events of the BLE sources (tokens with BLE_TOKEN_FLAG) */
        if (ble_on_store_reply(d->ble, token, status_all, per_event, n))
            continue;
        /* USB: events of the USB sources (tokens with USB_TOKEN_FLAG) */
        if (usb_on_store_reply(d->usb, token, status_all, per_event, n))
            continue;
        if (d->ing && ingest_on_store_reply(d->ing, token, status_all, per_event, n, push_event, d))
            ingest = 1;
        else
            log_warn("store: reply for unknown request %" PRIu64, token);
    }
    return ingest;
}

/* The loop's poll set is an epoll fd. The signalfd, the timerfds, the store writer's reply
 * queue and the BLE and USB sets are in it as they are; a ZeroMQ socket is in it through its
 * ZMQ_FD, which only says that commands reached the socket's mailbox (a peer's message, a
 * new pipe). What the socket can do is then read with ZMQ_EVENTS, and since any call on the
 * socket may take in those commands without the fd ever showing them, ZMQ_EVENTS is asked
 * again after every use of the socket, not only when its fd fires. zmq_poll asks every
 * socket on every call, twice (before and after waiting), each time with a poll() on the
 * mailbox and a getpid(); asking only the sockets that can have changed saves most of those
 * system calls under load. */
enum { Z_ZAP, Z_CTL, Z_ING, Z_PUB, Z_N }; /* the order sockets are served in */
enum { T_SIG = Z_N, T_WD, T_ST, T_STORE, T_BLE, T_USB };

struct zwatch {
    void *sock;
    int check;    /* ask ZMQ_EVENTS: the fd fired, or the socket was used since last asked */
    uint64_t ops; /* for the publisher: its use count when last asked */
};

static uint64_t zwatch_ops(const struct daemon *d, int k)
{
    return k == Z_PUB ? publisher_socket_ops(d->pub) : 0;
}

static int epoll_add(int ep, int fd, uint32_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};
    return fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static int loop_open(struct daemon *d, struct zwatch *z)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -errno;
    z[Z_ZAP].sock = d->zap ? zap_socket(d->zap) : NULL;
    z[Z_CTL].sock = d->ctl ? control_socket(d->ctl) : NULL;
    z[Z_ING].sock = d->ing ? ingest_socket(d->ing) : NULL;
    z[Z_PUB].sock = d->pub ? publisher_socket(d->pub) : NULL;
    int e = 0;
    for (int k = 0; k < Z_N && !e; k++) {
        z[k].check = 1; /* ask everything once at the start */
        int fd;
        size_t len = sizeof fd;
        if (!z[k].sock)
            continue;
        if (zmq_getsockopt(z[k].sock, ZMQ_FD, &fd, &len) < 0)
            e = -errno;
        else
            e = epoll_add(ep, fd, (uint32_t)k);
    }
    if (!e && !((e = epoll_add(ep, d->sfd, T_SIG)) || (e = epoll_add(ep, d->wdfd, T_WD)) ||
                (e = epoll_add(ep, d->stfd, T_ST)) ||
                (e = epoll_add(ep, store_writer_fd(d->sw), T_STORE)) ||
                (e = epoll_add(ep, d->ble ? ble_fd(d->ble) : -1, T_BLE)) || /* BLE */
                (e = epoll_add(ep, usb_fd(d->usb), T_USB))))                /* USB */
        return ep;
    close(ep);
    return e;
}

/* The writer's replies. If ingest acknowledgements went out, its queue has room again and
 * the ingest socket is to be asked again (BLE and USB replies leave it alone). */
static void store_replies(struct daemon *d, struct zwatch *z)
{
    if (drain_store_replies(d))
        z[Z_ING].check = 1;
}

/* One turn over the ZeroMQ sockets that may have something: each is asked for its events
 * and, if readable, served one batch. Returns 1 if any was served (more may be waiting, so
 * the next wait must not block). */
static int zmq_turn(struct daemon *d, struct zwatch *z)
{
    int served = 0;
    if (store_replies_held(d->sw)) { /* kept by a flush: the reply queue's fd does not say */
        store_replies(d, z);
        served = 1;
    }
    for (int k = 0; k < Z_N; k++) {
        if (!z[k].sock)
            continue;
        uint64_t ops = zwatch_ops(d, k);
        if (ops != z[k].ops)
            z[k].check = 1;
        if (!z[k].check)
            continue;
        int want = k != Z_ING || ingest_can_read(d->ing);
        int ev = 0;
        size_t len = sizeof ev;
        if (zmq_getsockopt(z[k].sock, ZMQ_EVENTS, &ev, &len) < 0) {
            log_warn("zmq_getsockopt(ZMQ_EVENTS): %s", zmq_strerror(errno));
            ev = ZMQ_POLLIN; /* let the handler meet the error */
        }
        z[k].ops = ops;
        z[k].check = 0;
        /* A full ingest queue: asked only to take in the fd's signal (level-triggered, it
         * would fire again and again). The store reply that makes room asks again. */
        if (!want || !(ev & ZMQ_POLLIN))
            continue;
        switch (k) {
        case Z_ZAP: zap_on_readable(d->zap); break;
        case Z_CTL: control_on_readable(d->ctl, daemon_control, d); break;
        case Z_ING: ingest_on_readable(d->ing, d->sw, daemon_now_ms()); break;
        case Z_PUB: publisher_on_readable(d->pub); break;
        }
        /* a batch may have left input behind, and the handler used the socket */
        z[k].check = 1;
        served = 1;
    }
    return served;
}

static int loop(struct daemon *d)
{
    struct zwatch z[Z_N] = {0};
    int ep = loop_open(d, z);
    if (ep < 0) {
        log_error("loop: %s", strerror(-ep));
        return ep;
    }
    int e = 0;
    while (!d->stopping) {
        int busy = zmq_turn(d, z);
        struct epoll_event evs[16];
        int n = epoll_wait(ep, evs, 16, busy ? 0 : -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            e = -errno;
            log_error("epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            uint32_t tag = evs[i].data.u32;
            switch (tag) {
            case T_SIG: handle_signal(d); break;
            case T_WD: timer_drain(d->wdfd); watchdog_tick(d); break;
            case T_ST: timer_drain(d->stfd); notify_status(d); break;
            case T_STORE: store_replies(d, z); break;
            case T_BLE: ble_dispatch(d->ble); break; /* BLE */
            case T_USB: usb_dispatch(d->usb); break; /* USB */
            default:
                if (tag < Z_N)
                    z[tag].check = 1;
            }
        }
    }
    close(ep);
    return e;
}

static int open_sockets(struct daemon *d)
{
    int e = 0;
    const struct conf *cf = d->cf;
    if (daemon_needs_zap(cf)) {
        d->zap = zap_new(d->zctx, &e);
        if (!d->zap) {
            log_error("zap: %s", strerror(-e));
            return e;
        }
    }
    if ((e = daemon_curve_setup(d->zap, &d->curve_pub, "publish", cf->publish.curve_secret_key_file,
                         cf->publish.curve_clients_file)) < 0 ||
        (e = daemon_curve_setup(d->zap, &d->curve_ctl, "control", cf->control.curve_secret_key_file,
                         cf->control.curve_clients_file)) < 0 ||
        (e = daemon_curve_setup(d->zap, &d->curve_ing, "ingest", cf->ingest.curve_secret_key_file,
                         cf->ingest.curve_clients_file)) < 0)
        return e;
    if (cf->publish.n_endpoints) {
        const char *eps[CONF_MAX_ENDPOINTS];
        for (size_t i = 0; i < cf->publish.n_endpoints; i++)
            eps[i] = cf->publish.endpoints[i];
        struct publish_opts po = {
            .sndhwm = (int)cf->publish.sndhwm,
            .linger_ms = PUBLISH_DEFAULT_LINGER_MS,
            .lvc_max_topics = (size_t)cf->publish.lvc_max_topics,
            .curve = d->curve_pub.opts,
        };
        size_t bad = 0;
        d->pub = publisher_new_ex(d->zctx, eps, cf->publish.n_endpoints, &po, &e, &bad);
        if (!d->pub) {
            log_error("publish %s: %s", eps[bad < cf->publish.n_endpoints ? bad : 0], strerror(-e));
            return e;
        }
    }
    if (cf->control.endpoint[0]) {
        d->ctl = control_new(d->zctx, cf->control.endpoint, &d->curve_ctl.opts, &e);
        if (!d->ctl) {
            log_error("control %s: %s", cf->control.endpoint, strerror(-e));
            return e;
        }
    }
    if (cf->ingest.endpoint[0]) {
        const char *ep = cf->ingest.endpoint;
        struct ingest_opts io = {
            .max_message = (size_t)cf->ingest.max_message,
            .max_lines = (size_t)cf->ingest.max_lines,
            .max_pending = 256,
            .max_future_ms = cf->ingest.max_future_ms,
            .conf = cf,
        };
        d->ing = ingest_new(d->zctx, &ep, 1, &d->curve_ing.opts, &io, &e);
        if (!d->ing) {
            log_error("ingest %s: %s", ep, strerror(-e));
            return e;
        }
    }
    return 0;
}

static void teardown(struct daemon *d)
{
    ble_stop(d->ble); /* BLE: close the links, submit the last events */
    usb_stop(d->usb); /* USB: close the devices; what is in flight still commits */
    /* The last replies go where they belong: ingest clients get the acknowledgements of
     * what was stored, the events are pushed and published; the sockets close after that. */
    if (d->sw) {
        int e = store_flush(d->sw, 10000);
        if (e == -ETIMEDOUT)
            log_error("store: final flush: not done within 10 s");
        else if (e < 0) /* the first failed transaction since start: retried or reported */
            log_notice("store: a transaction had failed while running (first error: %s); its "
                       "events were sent again or reported to their sources", store_strerror(e));
        drain_store_replies(d);
    }
    ingest_free(d->ing);
    control_free(d->ctl);
    publisher_free(d->pub);
    d->ing = NULL;
    d->ctl = NULL;
    d->pub = NULL;
    if (d->sw)
        store_writer_stop(d->sw);
    d->ble = ble_free(d->ble); /* BLE */
    d->usb = usb_free(d->usb); /* USB */
    zap_free(d->zap);
    if (d->zctx)
        zmq_ctx_term(d->zctx);
    pipeline_free(d->pl);
    free(d->parts);
    free(d->ev_msg);
    curve_keylist_release(&d->curve_pub.clients);
    curve_keylist_release(&d->curve_ctl.clients);
    curve_keylist_release(&d->curve_ing.clients);
    if (d->sfd >= 0)
        close(d->sfd);
    if (d->wdfd >= 0)
        close(d->wdfd);
    if (d->stfd >= 0)
        close(d->stfd);
    conf_free(d->cf);
}

int run_main(int argc, char **argv)
{
    const char *path;
    int u = config_path_arg(argc, argv, "run", &path);
    if (u)
        return u;
    if (getenv("JOURNAL_STREAM"))
        log_set_journal(1);

    static struct daemon dd;
    struct daemon *d = &dd;
    memset(d, 0, sizeof *d);
    d->sfd = d->wdfd = d->stfd = -1;
    d->conf_path = path;
    d->started_ms = daemon_now_ms();
    if (conf_load(path, &d->cf, conf_error, NULL) < 0 || !d->cf)
        return EX_CONFIG;
    log_set_level(d->cf->daemon.log_level);
    for (size_t i = 0; i < d->cf->n_sources; i++) {
        const struct conf_source *s = &d->cf->sources[i];
        if (s->driver == CONF_DRIVER_FILE)
            log_notice("source %s: file sources are read by `engaged replay`, not the daemon",
                       s->name);
    }

    /* Before any thread exists (libzmq's I/O threads, the store writer): block the signals
     * we take through signalfd, so no thread is interrupted by them. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    sigdelset(&mask, SIGPIPE);
    d->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    int rc = EX_OK, e = 0;
    struct pipeline_conf pc;
    if (d->sfd < 0 || conf_fill_pipeline(d->cf, &pc, &d->parts) < 0) {
        rc = EX_OSERR;
        goto out;
    }
    d->pl = pipeline_new(&pc, emit_record, d, &e);
    if (!d->pl) {
        log_error("pipeline: %s", strerror(-e));
        rc = EX_CONFIG;
        goto out;
    }
    d->zctx = zmq_ctx_new();
    if (!d->zctx) {
        rc = EX_OSERR;
        goto out;
    }
    struct store_opts so;
    store_opts_default(&so);
    so.batch_max = (unsigned)d->cf->store.batch_max;
    so.batch_delay_ms = (unsigned)d->cf->store.batch_delay_ms;
    so.sync_full = d->cf->store.synchronous == CONF_SYNC_FULL;
    so.cache_kib = (int)(d->cf->store.cache_size >> 10);
    so.queue_hwm = 100000;
    d->sw = store_writer_start(d->cf->store.path, &so, &e);
    if (!d->sw) {
        log_error("store %s: %s", d->cf->store.path, store_strerror(e));
        rc = EX_CANTCREAT;
        goto out;
    }
    /* open the feed first so records re-derived during recovery reach the last-value cache */
    if (open_sockets(d) < 0) {
        rc = EX_UNAVAILABLE;
        goto out;
    }
    if (recover(d) < 0) {
        rc = EX_IOERR;
        goto out;
    }
    /* BLE: after recovery, so stored events reach the pipeline in store order; the sources'
     * captures (`record`) first: one that cannot be used stops the start */
    struct ble_recset *records = NULL;
    if (ble_record_open_all(d->cf, daemon_mono_ms() * 1000000, daemon_now_ms() * 1000,
                            &records) < 0) {
        rc = EX_CANTCREAT;
        goto out;
    }
    struct ble_host bh = {.sw = d->sw, .pub = d->pub, .push = push_stored,
                          .zone = participant_zone, .ud = d, .records = records};
    int ble_err = ble_new(d->cf, &bh, &d->ble);
    ble_recset_free(records);
    if (ble_err < 0) {
        rc = EX_OSERR;
        goto out;
    }
    /* USB: after recovery too; libusb starts its hotplug thread here (signals are blocked).
     * Not fatal: the other sources go on without it. */
    struct usb_host uh = {.sw = d->sw, .pub = d->pub, .push = push_event, .ud = d};
    if (usb_new(d->cf, &uh, &d->usb) < 0)
        log_error("usb: the usb sources are not served (see above)");
    uint64_t wd_usec = 0;
    int64_t wd_ms = d->cf->daemon.watchdog_ms;
    if (wd_ms < 0 && sd_watchdog_enabled(0, &wd_usec) > 0)
        wd_ms = (int64_t)(wd_usec / 2000);
    if (wd_ms > 0)
        d->wdfd = timer_new(wd_ms);
    d->stfd = timer_new(d->cf->daemon.status_interval_ms > 0 ? d->cf->daemon.status_interval_ms
                                                             : 10000);
    sd_notify(0, "READY=1");
    notify_status(d);
    log_info("engaged %s running: store %s", ENGAGED_VERSION, d->cf->store.path);
    if (loop(d) < 0)
        rc = EX_SOFTWARE;
    sd_notify(0, "STOPPING=1");
    log_info("stopping: flushing the store");
out:
    teardown(d);
    return rc;
}
