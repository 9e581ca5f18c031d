/* The BLE source manager (daemon/ble.h): the devices' shared epoll set and timerfd, the
 * batches of events on their way to the store and then the pipeline, and status/<source>.
 *
 * Durability: events are appended to an open batch as they are decoded. The batch is
 * submitted to the store writer at the end of the loop iteration that produced it unless
 * BLE_MAX_INFLIGHT batches are already waiting for their reply; meanwhile events keep joining
 * the open batch, so batches grow with the load and the store sees few, large transactions,
 * while a quiet hub stores each notification at once. Only the writer's reply (after COMMIT)
 * sends the stored events to the pipeline, in submit order, which is the store's id order:
 * replaying the store reproduces the live run. A batch the writer could not store is sent
 * again (BLE_MAX_TRIES times). A failed event was not stored (the writer's reply says so only
 * for rows it did not write), so its retry cannot store anything twice: events the hub
 * numbered itself are renumbered with everything else waiting (seqs stay in store order) and
 * go to the store as hub_seq, outside its dedupe index; relayed records keep the phone's seq
 * and its (source, seq) uniqueness.
 *
 * Wake-ups: the daemon's loop polls one fd, an epoll set holding the devices' epoll set and
 * the timerfd. When device input comes less than `[store] ble_coalesce` (3 ms) after the
 * previous input, the devices' set leaves the outer one for that long and the timer then
 * reads whatever arrived meanwhile, in one go, for as long as input keeps coming: a busy hub
 * (100 devices at 50 Hz) wakes and commits about 1000 / (window + ~0.1 ms) times a second
 * instead of once per notification, at a cost of at most the window in latency; a quiet one
 * handles every notification as it arrives. Every cycle wakes four threads (the loop twice,
 * the writer, libzmq's I/O thread), which is most of the CPU a busy hub uses: see
 * docs/ble.md, "Input under load". 0 turns coalescing off.
 *
 * Attribute cache: the devices share one cache of discovered databases (drivers/ble_gatt.h),
 * loaded at start from the store's gatt_cache table (whose rows are checked like a server's
 * answers); every later change goes back to the store through the writer thread.
 *
 * Bounds: `[store] ble_pending_max` events wait in the open batch. Past half of it (the store
 * has stalled: a slow disk, a lock held elsewhere) relay phones are asked to PAUSE, and to
 * CONTINUE when it is back under an eighth. When it is full, a sensor's event is dropped and
 * counted as `lost`; a relayed phone record is not lost: it is left with the phone, whose
 * acknowledgements stop short of it, and the phone sends it again after the next RESUME
 * (ble_relay_left). The same holds for a relayed record the store fails to write. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon/ble_int.h"
#include "daemon/ble_keys.h"
#include "daemon/ble_record.h"
#include "daemon/log.h"
#include "daemon/publish.h"
#include "daemon/refusal.h"
#include "daemon/store.h"
#include "drivers/ble_hci.h"
#include "pipeline/nudge.h"
#include "pipeline/sources.h"
#include "pipeline/tz.h"

#define BLE_MAX_INFLIGHT 2
#define BLE_MAX_TRIES 3             /* submissions of one event before it is given up */
#define BLE_RETRY_MS 10             /* the writer's queue was full: try again this much later */
#define BLE_EPOLL_BURST 64
#define BLE_IO_ROUNDS 8             /* epoll bursts per dispatch, at most */
#define NS_PER_MS INT64_C(1000000)

struct ble_ev {
    struct event ev;                /* for a refusal: seq only */
    int64_t received;
    struct ble_dev *dev;
    float (*g)[3];                  /* owned accel samples */
    struct refusal *ref;            /* owned; non-NULL: a refusal, not an event */
    unsigned tries;
    int own;                        /* seq is the device's (a relayed record), not the hub's */
};

struct ble_body {
    uint32_t off, len;              /* in json */
};

struct ble_batch {
    uint64_t token;
    size_t n, cap;
    struct ble_ev *ev;
    struct ble_batch *next;
    /* Once submitted: the bodies sent to the store (ev[i]'s at json + body[i].off), which
     * go on to the event/ topics with the reply, so no event is serialised twice. */
    char *json;
    size_t json_len, json_cap, n_body, n_body_cap;
    struct ble_body *body;
};

struct ble {
    struct ble_host h;
    int outer;                       /* what the loop polls: epfd (unless held) and tfd */
    int epfd, tfd;                   /* the devices' sockets; the timers */
    int holding;                     /* epfd is out of outer until hold_ns */
    int64_t hold_ns;
    int64_t coalesce_ns;             /* [store] ble_coalesce: the hold's length, 0 = none */
    int64_t last_io_ns;              /* the last dispatch that read device input */
    struct ble_dev *dev;
    size_t n_dev;
    struct gatt_cache *cache;
    struct tz_db *tz;
    struct ble_clocks now;
    int64_t status_period_ns, next_status_ns;
    int64_t armed_ns;                /* the timerfd's expiry (INT64_MAX: disarmed) */
    int64_t retry_ns;                /* submit again then (INT64_MAX: no need) */
    struct ble_batch *open;          /* events waiting to be submitted */
    struct ble_batch *spare;         /* a replied batch kept with its arrays, for the next */
    struct store_event *se;          /* submit()'s request rows, reused */
    size_t se_cap;
    struct ble_batch *head, *tail;   /* submitted, in submit order */
    size_t inflight;
    uint64_t next_token;
    int stopping;
    size_t open_max;                 /* [store] ble_pending_max */
    int paused;                      /* relay phones were asked to PAUSE */
    int64_t pause_log_ms[2];         /* the last CONTINUE [0] and PAUSE [1] lines */
    int64_t lost_log_ms;
    struct ble_stats st;
    struct ble_scan *scan;           /* LE scanners (ble_scan.c); NULL: none */
    struct ble_keys *keys;           /* bonding keys (ble_keys.c); NULL: not kept */
    struct ble_mgmt_where mgmt;      /* [daemon] ble_mgmt: where the keeper finds mgmt */
};

static void arm(struct ble *b);

static void tick(struct ble *b)
{
    struct timespec m, r;
    clock_gettime(CLOCK_MONOTONIC, &m);
    clock_gettime(CLOCK_REALTIME, &r);
    b->now.mono_ns = (int64_t)m.tv_sec * 1000000000 + m.tv_nsec;
    b->now.utc_ms = (int64_t)r.tv_sec * 1000 + r.tv_nsec / 1000000;
}

const struct ble_clocks *ble_now(const struct ble *b) { return &b->now; }
struct gatt_cache *ble_cache(struct ble *b) { return b->cache; }
int ble_fd(const struct ble *b) { return b->outer; }

int ble_watch(struct ble *b, struct ble_dev *d, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = d};
    int op = events == 0 ? EPOLL_CTL_DEL : d->ep_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (op == EPOLL_CTL_DEL && !d->ep_events)
        return 0;
    if (epoll_ctl(b->epfd, op, d->fd, &ev) < 0)
        return -errno;
    d->ep_events = events;
    return 0;
}

const struct tz_zone *ble_participant_zone(struct ble *b, const struct ble_dev *d,
                                           int64_t utc_ms)
{
    int err;
    const struct tz_zone *in = b->h.zone ? b->h.zone(b->h.ud, d->participant, utc_ms) : NULL;
    if (in || !d->tz[0])
        return in;
    if (!b->tz && !(b->tz = tz_db_new(NULL)))
        return NULL;
    return tz_db_get(b->tz, d->tz, &err);
}

int64_t ble_participant_zone_ms(struct ble *b, const struct ble_dev *d, int64_t utc_ms)
{
    const struct tz_zone *z = ble_participant_zone(b, d, utc_ms);
    return z ? (int64_t)tz_offset(z, utc_ms) * 1000 : 0;
}

/* ---- status ------------------------------------------------------------------------- */

/* The device's status and its scanner's. */
static void dev_status(struct ble *b, const struct ble_dev *d, struct ble_status *st)
{
    ble_dev_status(d, st);
    ble_scan_status(b->scan, d, st);
    st->now_ms = b->now.utc_ms;
}

int ble_source_status(struct ble *b, const char *source, struct ble_status *ret)
{
    for (size_t i = 0; b && i < b->n_dev; i++)
        if (strcmp(b->dev[i].name, source) == 0) {
            dev_status(b, &b->dev[i], ret);
            return 0;
        }
    return -ENOENT;
}

void ble_publish_status(struct ble *b, struct ble_dev *d)
{
    char topic[PUBLISH_TOPIC_MAX + 1];
    struct ble_status st;
    if (b->stopping || !b->h.pub || publish_topic_status(topic, sizeof topic, d->name) < 0)
        return;
    dev_status(b, d, &st);
    char *json = ble_status_json(&st);
    if (json) {
        publisher_send(b->h.pub, topic, json, strlen(json));
        free(json);
    }
}

/* ---- batches ------------------------------------------------------------------------ */

/* What an entry owns. */
static void ev_release(struct ble_ev *e)
{
    free(e->g);
    e->g = NULL;
    free(e->ref);
    e->ref = NULL;
}

static void batch_free(struct ble_batch *bt)
{
    if (!bt)
        return;
    for (size_t i = 0; i < bt->n; i++)
        ev_release(&bt->ev[i]);
    free(bt->ev);
    free(bt->json);
    free(bt->body);
    free(bt);
}

/* A batch done with: kept, arrays and all, as the next open batch (a busy hub opens one
 * every cycle), unless one is kept already. */
static void batch_done(struct ble *b, struct ble_batch *bt)
{
    if (b->spare || !bt) {
        batch_free(bt);
        return;
    }
    for (size_t i = 0; i < bt->n; i++)
        ev_release(&bt->ev[i]);
    bt->n = bt->json_len = bt->n_body = 0;
    bt->token = 0;
    bt->next = NULL;
    b->spare = bt;
}

/* Appends ev's canonical JSON (NUL-terminated) to the batch's bodies: its length, or -ENOMEM
 * or -EINVAL (an event ev_to_json refuses). */
static long body_add(struct ble_batch *o, const struct event *ev)
{
    size_t bound = ev_json_bound(ev);
    if (vec_grow((void **)&o->json, &o->json_cap, o->json_len + bound, 1) < 0)
        return -ENOMEM;
    long n = ev_json_write(ev, o->json + o->json_len, bound);
    if (n >= 0)
        o->json_len += (size_t)n + 1;
    return n;
}

static void count_lost(struct ble *b, struct ble_dev *d, const char *why)
{
    d->lost++;
    b->st.lost++;
    if (b->now.utc_ms - b->lost_log_ms >= 1000) {
        b->lost_log_ms = b->now.utc_ms;
        log_error("ble %s: event lost: %s (%" PRIu64 " lost in all)", d->name, why, b->st.lost);
    }
}

/* Room for one more event in the open batch (NULL: none). */
static struct ble_ev *open_slot(struct ble *b)
{
    if (!b->open) {
        b->open = b->spare ? b->spare : calloc(1, sizeof *b->open);
        b->spare = NULL;
        if (!b->open)
            return NULL;
    }
    struct ble_batch *o = b->open;
    if (o->n >= b->open_max)
        return NULL;
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 64;
        struct ble_ev *ev = realloc(o->ev, cap * sizeof *ev);
        if (!ev)
            return NULL;
        o->ev = ev;
        o->cap = cap;
    }
    return &o->ev[o->n];
}

/* 1 for a relayed phone record: one the phone keeps until acknowledged. */
static int relayed(const struct ble_ev *e) { return e->own && e->dev && e->dev->relay; }

/* A relayed record's event (or refusal) is done with: stored or a duplicate (processed), or
 * not stored (left with the phone, which sends it again after a RESUME). body: the event's
 * stored form, when known. */
static void relay_done(struct ble_ev *e, int processed, int row_error, const char *body,
                       size_t len)
{
    if (!relayed(e))
        return;
    if (!processed && e->ref && row_error) {
        /* the refused table will not take it: as good as refused in memory, or the phone
         * would send it for ever */
        log_error("ble %s: relay: refused record %" PRId64 " not kept in the store (the store "
                  "failed its row); counted as processed", e->dev->name, e->ev.seq);
        processed = 1;
    }
    if (!processed) /* first: the resume point must not pass it */
        ble_relay_left(e->dev, e->ev.seq, row_error, body, len);
    ble_relay_stored(e->dev, e->ev.seq, processed);
}

/* An event that will not be stored: lost for a sensor, left with the phone for a relayed
 * record. row_error: the store failed that row only (the transaction went through). */
static void not_stored(struct ble *b, struct ble_ev *e, int row_error, const char *body,
                       size_t len, const char *why)
{
    if (relayed(e))
        relay_done(e, 0, row_error, body, len);
    else
        count_lost(b, e->dev, why);
}

int ble_store_behind(const struct ble *b) { return b->paused; }

/* PAUSE relay phones while the open batch is over half full, CONTINUE under an eighth. */
static void pressure(struct ble *b)
{
    size_t n = b->open ? b->open->n : 0;
    int want = b->paused ? n > b->open_max / 8 : n >= b->open_max / 2;
    if (want == b->paused)
        return;
    b->paused = want;
    int relays = 0;
    for (size_t i = 0; i < b->n_dev; i++)
        relays += b->dev[i].relay != NULL;
    /* each kind of line at most every 10 s: a store that barely keeps up flips often */
    int64_t *last = &b->pause_log_ms[want];
    if (b->now.utc_ms - *last >= 10000) {
        *last = b->now.utc_ms;
        if (want)
            log_warn("ble: %zu events wait for the store, which is behind%s", n,
                     relays ? "; asking relay phones to pause" : "");
        else
            log_notice("ble: the store caught up%s", relays ? "; relay phones may continue" : "");
    }
    for (size_t i = 0; i < b->n_dev; i++)
        ble_relay_pause(&b->dev[i], want);
}

/* The open batch's next slot e, filled in (seq set by the caller), joins the batch. */
static void take_slot(struct ble *b, struct ble_ev *e, struct ble_dev *d, int own,
                      int64_t received_ms)
{
    e->ev.has_seq = 1;
    e->own = own;
    e->received = received_ms;
    e->dev = d;
    b->open->n++;
}

static int emit(struct ble *b, struct ble_dev *d, struct event *ev, int64_t received_ms, int own)
{
    struct ble_ev *e = open_slot(b);
    if (!e) {
        if (!own) /* a relayed record: the caller leaves it with the phone */
            count_lost(b, d, b->open && b->open->n >= b->open_max ? "the store is not keeping up"
                                                                  : "out of memory");
        return -ENOBUFS;
    }
    memset(e, 0, sizeof *e);
    e->ev = *ev;
    if (ev->type == EV_ACCEL && ev->u.accel.n) {
        if (!(e->g = malloc(ev->u.accel.n * sizeof *e->g))) {
            if (!own)
                count_lost(b, d, "out of memory");
            return -ENOBUFS;
        }
        memcpy(e->g, ev->u.accel.g, ev->u.accel.n * sizeof *e->g);
        e->ev.u.accel.g = (const float(*)[3])e->g;
    }
    if (!own)
        e->ev.seq = ++d->seq;
    take_slot(b, e, d, own, received_ms);
    d->events++;
    b->st.events++;
    return 0;
}

void ble_emit(struct ble *b, struct ble_dev *d, struct event *ev, int64_t received_ms)
{
    (void)emit(b, d, ev, received_ms, 0);
}

int ble_emit_own(struct ble *b, struct ble_dev *d, struct event *ev, int64_t received_ms)
{
    return emit(b, d, ev, received_ms, 1);
}

int ble_refuse_own(struct ble *b, struct ble_dev *d, int64_t seq, const char *why,
                   const void *rec, size_t len, int64_t received_ms)
{
    struct ble_ev *e = open_slot(b);
    struct refusal *ref = e ? refusal_new(why, rec, len) : NULL;
    if (!ref)
        return -ENOBUFS;
    memset(e, 0, sizeof *e);
    e->ref = ref;
    e->ev.seq = seq;
    take_slot(b, e, d, 1, received_ms);
    return 0;
}

/* Moves the open batch's events from k on to a new open batch, so that ev[0..k) can be
 * submitted alone. 0 or -ENOMEM. */
static int split_open(struct ble *b, size_t k)
{
    struct ble_batch *o = b->open, *rest = calloc(1, sizeof *rest);
    size_t m = o->n - k;
    if (!rest || !(rest->ev = malloc(m * sizeof *rest->ev))) {
        free(rest);
        return -ENOMEM;
    }
    memcpy(rest->ev, o->ev + k, m * sizeof *rest->ev);
    rest->n = rest->cap = m;
    o->n = k;
    b->open = rest;
    return 0;
}

/* Submits the open batch, or as much of it as one request holds (store_fit_add: a backlog
 * after a stall goes in several). 0 (submitted or nothing to do), -EAGAIN (writer busy: kept)
 * or another -errno (what was to be submitted is dropped: lost, or left with relay phones). */
static int submit(struct ble *b)
{
    struct ble_batch *o = b->open;
    if (!o || o->n == 0)
        return 0;
    if (!store_writer_has_room(b->h.sw))
        return -EAGAIN; /* before any body is built: a backlog is retried every 10 ms */
    size_t cap = o->n < STORE_BATCH_MAX_LIMIT ? o->n : STORE_BATCH_MAX_LIMIT;
    o->json_len = o->n_body = 0;
    int e = vec_grow((void **)&b->se, &b->se_cap, cap, sizeof *b->se) < 0 ||
                    vec_grow((void **)&o->body, &o->n_body_cap, cap, sizeof *o->body) < 0
                ? -ENOMEM
                : 0;
    struct store_event *se = b->se;
    struct store_fit fit = {0}; /* bodies are built only for what one request holds */
    size_t k = 0;
    while (e == 0 && k < cap) {
        const struct event *ev = &o->ev[k].ev;
        const struct refusal *ref = o->ev[k].ref;
        size_t off = o->json_len;
        if (ref) { /* the record's own bytes, not an event's body */
            o->body[k] = (struct ble_body){(uint32_t)off, 0};
            se[k] = refusal_store_event(ref, o->ev[k].dev->name, o->ev[k].dev->participant,
                                        ev->seq, o->ev[k].received);
            if (!store_fit_add(&fit, &se[k]))
                break;
            k++;
            continue;
        }
        long len = body_add(o, ev);
        if (len < 0) {
            e = (int)len;
            break;
        }
        o->body[k] = (struct ble_body){(uint32_t)off, (uint32_t)len};
        se[k] = (struct store_event){
            .source = ev->source, .seq = ev->seq, .has_seq = 1, .hub_seq = !o->ev[k].own,
            .ts = ev->ts,
            .participant = ev->participant, .type = ev_type_name(ev->type),
            .body = o->json + off, .body_len = (size_t)len, .received = o->ev[k].received,
        };
        if (!store_fit_add(&fit, &se[k]))
            break; /* its body stays unused at the end of json */
        k++;
    }
    if (e == 0 && k == 0)
        e = -EMSGSIZE; /* cannot happen: an event's body is far below the limits */
    for (size_t i = 0; i < k; i++)
        if (!o->ev[i].ref)
            se[i].body = o->json + o->body[i].off; /* where json ended up */
    o->n_body = k;
    uint64_t token = BLE_TOKEN_FLAG | b->next_token;
    if (e == 0)
        e = store_submit_events(b->h.sw, token, se, k);
    if (e == -EAGAIN)
        return e;
    if (e == 0 && k < o->n && split_open(b, k) < 0) {
        /* sent, but the rest cannot be kept apart: everything goes as one batch, so the
         * reply covers the first k and the rest is retried as not stored */
        log_error("ble: out of memory splitting a batch of %zu events", o->n);
    }
    if (e < 0) {
        log_error("ble: %zu events not stored: %s", o->n, strerror(-e));
        for (size_t i = 0; i < o->n; i++)
            not_stored(b, &o->ev[i], 0, NULL, 0, "the store refused them");
        batch_free(o);
        b->open = NULL;
        return e;
    }
    b->next_token++;
    b->st.batches++;
    o->token = token;
    o->next = NULL;
    if (b->tail)
        b->tail->next = o;
    else
        b->head = o;
    b->tail = o;
    b->inflight++;
    if (b->open == o)
        b->open = NULL;
    return 0;
}

static void flush(struct ble *b)
{
    if (b->open && b->open->n && b->inflight < BLE_MAX_INFLIGHT) {
        if (submit(b) == -EAGAIN) {
            if (b->retry_ns == INT64_MAX)
                b->retry_ns = b->now.mono_ns + BLE_RETRY_MS * NS_PER_MS;
            pressure(b);
            return;
        }
    }
    b->retry_ns = INT64_MAX;
    pressure(b);
}

/* Puts events of a failed batch back in front of the open batch. The hub's own numbers of
 * everything now waiting are handed out again in that order: none of them is stored, and a
 * seq is never given to two stored events (the store does not check hub_seq events). */
static void requeue(struct ble *b, struct ble_ev *ev, size_t n)
{
    size_t have = b->open ? b->open->n : 0;
    struct ble_ev *nev = malloc((have + n) * sizeof *nev);
    if (!nev || (!b->open && !(b->open = calloc(1, sizeof *b->open)))) {
        free(nev);
        for (size_t i = 0; i < n; i++) {
            not_stored(b, &ev[i], 0, NULL, 0, "out of memory");
            ev_release(&ev[i]);
        }
        return;
    }
    memcpy(nev, ev, n * sizeof *nev);
    if (have)
        memcpy(nev + n, b->open->ev, have * sizeof *nev);
    free(b->open->ev);
    b->open->ev = nev;
    b->open->n = b->open->cap = have + n;
    for (size_t i = 0; i < b->open->n; i++)
        if (!nev[i].own)
            nev[i].ev.seq = ++nev[i].dev->seq;
}

int ble_on_store_reply(struct ble *b, uint64_t token, int status_all, const uint8_t *per_event,
                       size_t n)
{
    if (!b || !(token & BLE_TOKEN_FLAG))
        return 0;
    struct ble_batch *bt = b->head, *prev = NULL;
    while (bt && bt->token != token) {
        prev = bt;
        bt = bt->next;
    }
    if (!bt)
        return 0;
    if (prev)
        prev->next = bt->next;
    else
        b->head = bt->next;
    if (b->tail == bt)
        b->tail = prev;
    b->inflight--;
    tick(b);
    /* events to send again are compacted to the front of bt->ev */
    size_t again = 0;
    for (size_t i = 0; i < bt->n; i++) {
        struct ble_ev *e = &bt->ev[i];
        int s = status_all < 0 || i >= n ? STORE_ERROR : per_event[i];
        int body = i < bt->n_body && !e->ref; /* every event submitted has one */
        if (s == STORE_INSERTED) {
            relay_done(e, 1, 0, NULL, 0);
            if (!e->ref) { /* a refusal kept is not an event: neither counted nor pushed */
                b->st.stored++;
                if (!b->stopping && b->h.push)
                    b->h.push(b->h.ud, &e->ev, e->received,
                              body ? bt->json + bt->body[i].off : NULL,
                              body ? bt->body[i].len : 0);
            }
        } else if (s == STORE_DUPLICATE) {
            b->st.duplicate += !e->ref;
            relay_done(e, 1, 0, NULL, 0);
        } else if (++e->tries < BLE_MAX_TRIES) {
            b->st.retries++;
            if (again != i) {
                bt->ev[again] = *e; /* the samples and the refusal move with it */
                e->g = NULL;
                e->ref = NULL;
            }
            again++;
            continue;
        } else {
            not_stored(b, e, status_all >= 0 && i < n, body ? bt->json + bt->body[i].off : NULL,
                       body ? bt->body[i].len : 0, "the store failed to write it");
        }
        ev_release(e);
    }
    if (again) {
        log_warn("ble: the store could not write %zu events (%s); sending them again", again,
                 status_all < 0 ? store_strerror(status_all) : "row errors");
        requeue(b, bt->ev, again);
    }
    bt->n = 0;
    batch_done(b, bt);
    if (!b->stopping) {
        for (size_t i = 0; i < b->n_dev; i++)
            ble_relay_after_reply(&b->dev[i]);
        flush(b);
        arm(b);
    }
    return 1;
}

/* ---- the loop ----------------------------------------------------------------------- */

static void arm(struct ble *b)
{
    int64_t t = b->next_status_ns < b->retry_ns ? b->next_status_ns : b->retry_ns;
    if (b->holding && b->hold_ns < t)
        t = b->hold_ns;
    if (ble_scan_deadline(b->scan) < t)
        t = ble_scan_deadline(b->scan);
    if (ble_keys_deadline(b->keys) < t)
        t = ble_keys_deadline(b->keys);
    for (size_t i = 0; i < b->n_dev; i++) {
        if (ble_scan_holds(b->scan, &b->dev[i]))
            continue; /* waits for its advertisement, however overdue */
        int64_t d = ble_dev_deadline_cached(&b->dev[i]);
        if (d < t)
            t = d;
    }
    if (t == b->armed_ns)
        return;
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (t != INT64_MAX) {
        if (t <= 0)
            t = 1;
        its.it_value.tv_sec = (time_t)(t / 1000000000);
        its.it_value.tv_nsec = (long)(t % 1000000000);
    }
    if (timerfd_settime(b->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        b->armed_ns = t;
}

/* The end of every entry point: submit what the dispatch produced, re-arm the timer. */
static void after(struct ble *b)
{
    if (!b->stopping)
        flush(b);
    arm(b);
}

/* Reads device input: returns how many fds had events. */
static int device_io(struct ble *b)
{
    struct epoll_event evs[BLE_EPOLL_BURST];
    int total = 0;
    for (int round = 0; round < BLE_IO_ROUNDS; round++) {
        int n = epoll_wait(b->epfd, evs, BLE_EPOLL_BURST, 0);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++)
            ble_dev_on_io(evs[i].data.ptr, evs[i].events);
        total += n;
        if (n < BLE_EPOLL_BURST)
            break;
    }
    return total;
}

/* Takes the devices' set out of the loop's poll set until the hold ends (hold), or puts it
 * back (release). */
static void hold(struct ble *b, int on)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = b->epfd};
    if (on) {
        b->hold_ns = b->now.mono_ns + b->coalesce_ns;
        if (!b->holding && epoll_ctl(b->outer, EPOLL_CTL_DEL, b->epfd, NULL) == 0)
            b->holding = 1;
    } else if (b->holding) {
        if (epoll_ctl(b->outer, EPOLL_CTL_ADD, b->epfd, &ev) == 0 || errno == EEXIST)
            b->holding = 0;
    }
}

static void timers(struct ble *b)
{
    uint64_t x; /* one read takes every expiry: a second would only say EAGAIN */
    ssize_t r = read(b->tfd, &x, sizeof x);
    (void)r;
    b->armed_ns = INT64_MAX; /* expired: arm() sets it again */
    if (b->holding && b->now.mono_ns >= b->hold_ns)
        hold(b, device_io(b) > 0); /* still busy: hold on; quiet: back to waking at once */
    ble_scan_on_timer(b->scan);
    ble_keys_on_timer(b->keys, b->now.mono_ns);
    for (size_t i = 0; i < b->n_dev; i++)
        if (ble_dev_deadline_cached(&b->dev[i]) <= b->now.mono_ns &&
            !ble_scan_holds(b->scan, &b->dev[i]))
            ble_dev_on_timer(&b->dev[i]);
    if (b->now.mono_ns >= b->next_status_ns) {
        for (size_t i = 0; i < b->n_dev; i++)
            ble_publish_status(b, &b->dev[i]);
        b->next_status_ns = b->now.mono_ns + b->status_period_ns;
    }
}

void ble_dispatch(struct ble *b)
{
    struct epoll_event evs[8];
    int n = epoll_wait(b->outer, evs, 8, 0);
    if (n <= 0)
        return;
    tick(b);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.fd == b->epfd) {
            if (device_io(b) > 0) {
                if (b->now.mono_ns - b->last_io_ns < b->coalesce_ns)
                    hold(b, 1);
                b->last_io_ns = b->now.mono_ns;
            }
        } else if (evs[i].data.fd == b->tfd) {
            timers(b);
        } else if (b->keys && evs[i].data.fd == ble_keys_fd(b->keys)) {
            ble_keys_on_fd(b->keys, evs[i].events, b->now.mono_ns);
        } else {
            ble_scan_on_fd(b->scan, evs[i].data.fd);
        }
    }
    after(b);
}

/* ---- set-up and shutdown ------------------------------------------------------------- */

static int take_position(void *ud, const char *source, const struct store_position *p)
{
    struct ble *b = ud;
    for (size_t i = 0; i < b->n_dev; i++)
        if (p->has_seq && strcmp(b->dev[i].name, source) == 0 &&
            (!b->dev[i].have_pos || p->seq > b->dev[i].seq)) {
            b->dev[i].seq = p->seq;
            b->dev[i].have_pos = 1;
        }
    return 0;
}

/* Where a relay phone is asked to resume after a restart. The store's position is the highest
 * seq stored, but a record can be missing below it: one left with the phone (ble_relay_left)
 * while a later one was stored, not yet sent again when the hub stopped. Resuming after the
 * position would let the phone delete it, so the resume point is the seq before the first
 * missing one among the last BLE_RELAY_LOOKBACK (the phone's window, 64, is well inside).
 * A record refused for its content is not missing: it is kept in the refused table, which
 * store_reader_seq_gap counts. Hub-numbered sources have no such rows. */
#define BLE_RELAY_LOOKBACK 256
static void relay_resume_point(struct ble_dev *d, struct store_reader *rd)
{
    d->relay_from = d->seq;
    if (!d->have_pos || d->seq == INT64_MAX)
        return;
    int64_t lo = d->seq > INT64_MIN + BLE_RELAY_LOOKBACK ? d->seq - BLE_RELAY_LOOKBACK + 1
                                                         : d->seq;
    int64_t gap, n;
    int r = store_reader_seq_gap(rd, d->name, lo, d->seq, &gap, &n);
    if (r < 0) {
        log_error("ble %s: cannot check the store for missing records: %s", d->name,
                  store_strerror(r));
        return;
    }
    if (n == 0 || gap > d->seq)
        return;
    d->relay_from = gap - 1;
    log_notice("ble %s: seq %" PRId64 " is missing from the store below the source's position "
               "%" PRId64 ": a relay phone is asked for its records after %" PRId64, d->name,
               gap, d->seq, d->relay_from);
}

/* ---- the attribute cache in the store ------------------------------------------------ */

/* 1 when a source uses the cache under key: one that does not record (a recorded source
 * discovers in full on every connection, ble_dev.c). */
static int cache_used(const struct ble *b, const char *key)
{
    for (size_t i = 0; i < b->n_dev; i++)
        if (!b->dev[i].rec && strcmp(b->dev[i].cache_key, key) == 0)
            return 1;
    return 0;
}

/* The store's copy of device's entry goes (never blocks; a failure is logged: the next start
 * tries again). */
static void drop_saved(struct ble *b, const char *device)
{
    int r = store_submit_gatt_cache(b->h.sw, device, NULL, 0);
    if (r < 0)
        log_warn("ble: the saved attribute cache of %s was not dropped: %s", device,
                 strerror(-r));
}

struct cache_load {
    struct ble *b;
    size_t loaded, unused;
};

/* A row of the store's gatt_cache table: untrusted input, checked by gatt_cache_import as a
 * server's answers are. A corrupt row is dropped with a line in the log, and its device is
 * discovered in full, which saves a good copy again. */
static int take_cache(void *ud, const char *device, const uint8_t *blob, size_t len,
                      int64_t updated)
{
    struct cache_load *cl = ud;
    if (!cache_used(cl->b, device)) {
        cl->unused++;   /* no source (or only a recording one) has this device now */
        drop_saved(cl->b, device);
        return 0;
    }
    int r = gatt_cache_import(cl->b->cache, device, blob, len);
    if (r == 0) {
        cl->loaded++;
    } else if (r == -ENOMEM) {
        log_warn("ble: the saved attribute cache of %s not loaded: %s", device, strerror(-r));
    } else {
        log_warn("ble: the saved attribute cache of %s is not valid (%s); dropped, the device "
                 "will be discovered in full", device, strerror(-r));
        drop_saved(cl->b, device);
    }
    return 0;
}

/* The cache changed (a discovery saved a database, Service Changed dropped one): the store's
 * copy follows, through the writer thread, so the loop never waits for the disk. A change the
 * writer's queue cannot take now is logged; the device's next discovery saves it. */
static void cache_changed(const char *device, const uint8_t *blob, size_t len, void *ud)
{
    struct ble *b = ud;
    int r = store_submit_gatt_cache(b->h.sw, device, blob, len);
    if (r < 0)
        log_warn("ble: the attribute cache of %s was not saved (%s); its next discovery will "
                 "save it", device, strerror(-r));
}

/* Loads the saved databases of the configured devices through rd (the start's reader of
 * the store at path), so a restart does not rediscover every device, then has every later
 * change saved. A table that cannot be read only costs discoveries. */
static void load_cache(struct ble *b, struct store_reader *rd, const char *path)
{
    struct cache_load cl = {.b = b};
    int e = store_reader_gatt_cache(rd, take_cache, &cl);
    if (e < 0)
        log_warn("ble: reading the saved attribute cache from %s: %s; devices will be "
                 "discovered in full", path, store_strerror(e));
    if (cl.loaded || cl.unused)
        log_info("ble: attribute cache: %zu device%s loaded from the store, %zu no longer "
                 "used dropped", cl.loaded, cl.loaded == 1 ? "" : "s", cl.unused);
    gatt_cache_set_observer(b->cache, cache_changed, b);
}

static int setup_dev(struct ble *b, struct ble_dev *d, const struct conf *cf,
                     const struct conf_source *s)
{
    char why[BLE_TEXT_MAX];
    d->mgr = b;
    d->fd = -1;
    snprintf(d->name, sizeof d->name, "%s", s->name);
    snprintf(d->participant, sizeof d->participant, "%s", s->participant);
    snprintf(d->address, sizeof d->address, "%s", s->address);
    snprintf(d->link_address, sizeof d->link_address, "%s", s->address);
    snprintf(d->transport_text, sizeof d->transport_text, "%s", s->transport);
    /* a conf not made by the parser may leave it 0: never resend in a loop */
    d->nudge_resend_ms = s->nudge_resend_ms > 0 ? s->nudge_resend_ms : 60000;
    d->set_clock = s->set_clock;
    d->clock_tolerance_ms = s->clock_tolerance_ms > 0 ? s->clock_tolerance_ms : 1000;
    const struct conf_participant *p = conf_participant(cf, s->participant);
    if (p)
        snprintf(d->tz, sizeof d->tz, "%s", p->tz);
    if (ble_transport_parse(s->transport, &d->tr, why, sizeof why) < 0) {
        log_error("%s:%d: [source %s] transport: %s", s->loc.file ? s->loc.file : "?",
                  s->loc.line, s->name, why);
        return -EINVAL;
    }
    snprintf(d->cache_key, sizeof d->cache_key, "%s/%s", d->address,
             d->tr.kind == BLE_LINK_SIM ? "sim"
             : d->tr.addr_type == BLE_ADDR_RANDOM ? "random" : "public");
    ble_backoff_init(&d->bo, ble_backoff_seed(cf->study.seed, d->name));
    ble_clock_reset(&d->clock);
    return 0;
}

/* The keeper's mgmt socket: the kernel's, or with `ble_mgmt = sim:PATH` a fake kernel's. */
static int open_mgmt(void *ud, char *why, size_t cap)
{
    const struct ble_mgmt_where *w = &((struct ble *)ud)->mgmt;
    return w->kind == BLE_MGMT_SIM ? ble_link_open_sim_path(w->path, why, cap)
                                   : mgmt_open(why, cap);
}

static void irk_kept(void *ud, const struct mgmt_irk *irk)
{
    struct ble *b = ud;
    (void)irk; /* the scanner asks the keeper for its sources' keys */
    ble_scan_learn_irk(b->scan, b->keys);
}

/* Bonding keys kept by the daemon (daemon/ble_keys.h) when any source links over L2CAP (or
 * `[daemon] ble_mgmt` names a fake kernel): started before the devices and the scanners, so
 * that the kernel has the keys before a link asks for them (the mgmt commands take
 * milliseconds, an L2CAP connect longer) and the scanners the identity resolving keys. */
static void start_keys(struct ble *b, const struct conf *cf)
{
    if (ble_mgmt_parse(cf->daemon.ble_mgmt, &b->mgmt, NULL, 0) < 0)
        return; /* check-config refuses a bad value */
    int l2cap = 0;
    for (size_t i = 0; i < b->n_dev && !l2cap; i++)
        l2cap = b->dev[i].tr.kind == BLE_LINK_L2CAP;
    if (b->mgmt.kind == BLE_MGMT_OFF) {
        if (l2cap)
            log_info("ble: bonding keys are left to the kernel ([daemon] ble_mgmt = off): "
                     "bonded devices pair again after the hub restarts");
        return;
    }
    if (!l2cap && b->mgmt.kind != BLE_MGMT_SIM)
        return;
    struct ble_keys_device *devs = calloc(b->n_dev, sizeof *devs);
    size_t n = 0;
    for (size_t i = 0; devs && i < b->n_dev; i++) {
        struct hci_addr a;
        const struct ble_dev *d = &b->dev[i];
        if (hci_addr_parse(d->address, &a) < 0)
            continue;
        memcpy(devs[n].addr, a.b, sizeof a.b);
        devs[n++].addr_type = ble_mgmt_addr_type(d);
    }
    const struct ble_keys_hooks hooks = {open_mgmt, irk_kept, b};
    char path[CONF_STR_SIZE + sizeof BLE_KEYS_SUFFIX];
    if (devs && snprintf(path, sizeof path, "%s%s", cf->store.path, BLE_KEYS_SUFFIX) <
            (int)sizeof path &&
        !(b->keys = ble_keys_start(&hooks, path, devs, n, b->outer, b->now.mono_ns)))
        log_error("ble: bonding keys are not kept: out of memory");
    free(devs);
}

int ble_new(const struct conf *cf, const struct ble_host *h, struct ble **ret)
{
    size_t n = 0;
    *ret = NULL;
    for (size_t i = 0; i < cf->n_sources; i++)
        n += cf->sources[i].driver == CONF_DRIVER_BLE;
    if (n == 0)
        return 0;
    struct ble *b = calloc(1, sizeof *b);
    int e = -ENOMEM;
    if (!b || !(b->dev = calloc(n, sizeof *b->dev)) || !(b->cache = gatt_cache_new(n)))
        goto fail;
    b->h = *h;
    b->outer = b->epfd = b->tfd = -1;
    b->armed_ns = b->retry_ns = INT64_MAX;
    b->next_token = 1;
    b->pause_log_ms[0] = b->pause_log_ms[1] = INT64_MIN / 2;
    b->open_max = cf->store.ble_pending_max > 0 ? (size_t)cf->store.ble_pending_max : 50000;
    b->coalesce_ns = cf->store.ble_coalesce_ms * NS_PER_MS;
    for (size_t i = 0; i < cf->n_sources; i++) {
        if (cf->sources[i].driver != CONF_DRIVER_BLE)
            continue;
        if ((e = setup_dev(b, &b->dev[b->n_dev], cf, &cf->sources[i])) < 0)
            goto fail;
        b->n_dev++;
    }
    /* each device's capture (before the cache loads: a recorded source does not use it) */
    for (size_t i = 0; i < b->n_dev; i++)
        b->dev[i].rec = ble_record_claim(h->records, b->dev[i].name);
    /* seq goes on from what the store holds for each source */
    struct store_reader *rd;
    if ((e = store_open_readonly(cf->store.path, &rd)) < 0) {
        log_error("ble: store %s: %s", cf->store.path, store_strerror(e));
        goto fail;
    }
    e = store_reader_positions(rd, take_position, b);
    for (size_t i = 0; e == 0 && i < b->n_dev; i++)
        relay_resume_point(&b->dev[i], rd);
    tick(b);
    /* and relay phones get again the nudges they had not confirmed before the restart; a
     * failure there costs those nudges (logged), not the start */
    for (size_t i = 0; e == 0 && i < b->n_dev; i++) {
        int r = ble_relay_restore(&b->dev[i], rd, b->now.utc_ms);
        if (r < 0)
            log_error("ble %s: relay: the nudges not confirmed before the restart cannot be "
                      "read: %s", b->dev[i].name, store_strerror(r));
    }
    if (e == 0)
        load_cache(b, rd, cf->store.path);
    store_reader_close(rd);
    if (e < 0) {
        log_error("ble: reading source positions from %s: %s", cf->store.path,
                  store_strerror(e));
        goto fail;
    }
    b->outer = epoll_create1(EPOLL_CLOEXEC);
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    b->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev1 = {.events = EPOLLIN, .data.fd = b->epfd};
    struct epoll_event ev2 = {.events = EPOLLIN, .data.fd = b->tfd};
    if (b->outer < 0 || b->epfd < 0 || b->tfd < 0 ||
        epoll_ctl(b->outer, EPOLL_CTL_ADD, b->epfd, &ev1) < 0 ||
        epoll_ctl(b->outer, EPOLL_CTL_ADD, b->tfd, &ev2) < 0) {
        e = -errno;
        log_error("ble: %s", strerror(-e));
        goto fail;
    }
    tick(b);
    b->status_period_ns = (cf->daemon.status_interval_ms > 0 ? cf->daemon.status_interval_ms
                                                             : 60000) * NS_PER_MS;
    b->next_status_ns = b->now.mono_ns + b->status_period_ns;
    log_info("ble: %zu source%s", b->n_dev, b->n_dev == 1 ? "" : "s");
    start_keys(b, cf);
    /* sources that scan connect once they advertise (docs/ble-scan.md) */
    if ((b->scan = ble_scan_new(b, cf, b->dev, b->n_dev, b->outer, b->keys)))
        ble_scan_start_devices(b->scan);
    else
        for (size_t i = 0; i < b->n_dev; i++)
            ble_dev_start(&b->dev[i]);
    after(b);
    *ret = b;
    return 0;
fail:
    if (e == -ENOMEM)
        log_error("ble: out of memory");
    ble_free(b);
    return e;
}

void ble_stop(struct ble *b)
{
    if (!b)
        return;
    tick(b);
    b->scan = ble_scan_free(b->scan);
    for (size_t i = 0; i < b->n_dev; i++)
        ble_dev_close(&b->dev[i]);
    b->stopping = 1;
    /* the writer drains its queue during shutdown: wait (bounded) for room; a backlog goes
     * in several requests (each submit takes what fits) */
    for (int tries = 0; b->open && b->open->n && tries < 10;) {
        int e = submit(b);
        if (e == -EAGAIN) {
            store_wait_room(b->h.sw, 100);
            tries++;
        } else if (e < 0) {
            break;
        }
    }
    if (b->open && b->open->n)
        log_error("ble: %zu events not stored at shutdown", b->open->n);
}

struct ble *ble_free(struct ble *b)
{
    if (!b)
        return NULL;
    for (size_t i = 0; i < b->n_dev; i++)
        ble_dev_close(&b->dev[i]);
    while (b->head) {
        struct ble_batch *bt = b->head;
        b->head = bt->next;
        batch_free(bt);
    }
    batch_free(b->open);
    batch_free(b->spare);
    free(b->se);
    if (b->outer >= 0)
        close(b->outer);
    if (b->epfd >= 0)
        close(b->epfd);
    if (b->tfd >= 0)
        close(b->tfd);
    b->scan = ble_scan_free(b->scan);
    b->keys = ble_keys_free(b->keys);
    gatt_cache_free(b->cache);
    tz_db_free(b->tz);
    free(b->dev);
    free(b);
    return NULL;
}

void ble_on_nudge(struct ble *b, const char *participant, const struct nudge_decision *n)
{
    if (!b || b->stopping || !n || !participant || n->recipient != NUDGE_TO_PARTICIPANT ||
        !n->decision || strcmp(n->decision, "send") != 0)
        return;
    tick(b);
    for (size_t i = 0; i < b->n_dev; i++)
        if (b->dev[i].relay && strcmp(b->dev[i].participant, participant) == 0) {
            ble_relay_nudge(&b->dev[i], n, participant);
            ble_dev_after(&b->dev[i]);
        }
    arm(b);
}

void ble_get_stats(const struct ble *b, struct ble_stats *ret)
{
    static const char *const states[] = {"kept", "retrying", "failed"};
    *ret = b->st;
    ret->devices = b->n_dev;
    ret->streaming = 0;
    for (size_t i = 0; i < b->n_dev; i++)
        ret->streaming += b->dev[i].state == BLE_ST_STREAMING;
    ret->keys_state = b->mgmt.kind == BLE_MGMT_OFF ? "off" : "none";
    ret->keys_error = "";
    if (b->keys) {
        struct ble_keys_status ks;
        ble_keys_get_status(b->keys, &ks);
        ret->keys_state = states[ks.state];
        ret->keys_ltks = ks.ltks;
        ret->keys_irks = ks.irks;
        ret->keys_controllers = ks.controllers;
        ret->keys_error = ks.error;
        if (ks.state == BLE_KEYS_RETRYING)
            ret->keys_next_attempt_ms = b->now.utc_ms + (ks.reopen_ns - b->now.mono_ns) / NS_PER_MS;
    }
}
