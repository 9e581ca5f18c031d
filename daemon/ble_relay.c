/* The engaged relay service on a BLE source (docs/relay-profile.md; docs/ble.md, "The daemon's
 * BLE source"): the hub's side of a phone streaming its own records.
 *
 * On every connection, once the Records (and Status) notifications are enabled, the hub writes
 * a RESUME with the source's resume point: the highest seq processed, i.e. stored (the store's
 * position at start, then every commit of this source) or refused for its content. Fragments
 * are reassembled by relay_rx; each complete record becomes an event with the phone's own seq
 * and goes into the manager's batches like any other event; after the store's reply the hub
 * writes an ACK. Any stream error drops the partial record and writes a new RESUME, so the
 * phone sends again from what is stored; the (source, seq) dedupe drops what arrives twice.
 *
 * A refused record (invalid, oversized, unknown type) is kept in the store's refused table,
 * with why and its bytes, through the same batches as events (ble_refuse_own): it counts as
 * processed once committed, in order with the records around it, after a restart too (the
 * refused rows move the store's position and fill the gaps relay_resume_point looks for).
 *
 * A record that will not be stored now (the manager's batch is full because the store is
 * behind, or the store failed to write it) is left with the phone (ble_relay_left): the resume
 * point never passes it (`gap`), so no ACK lets the phone delete it; records the phone sends
 * meanwhile are not queued; once nothing of the source is in flight and the store has room, a
 * RESUME from the resume point asks for it again. Records after it that were stored already
 * come back as duplicates and are processed in order then. While the store is behind, the
 * phone is asked to PAUSE (CONTINUE, or that RESUME, when it caught up). A record whose row
 * alone the store fails is refused after BLE_RELAY_ROW_TRIES sends. After a restart the
 * resume point is the store's position, or the seq before the first of the source's last
 * records missing from the store (ble.c, relay_resume_point), so a record left with the phone
 * while a later one was stored is asked for again after a restart too.
 *
 * Nudges for the source's participant are queued (BLE_RELAY_NUDGES at most) and written to
 * the Nudges characteristic, fragment by fragment with Write Requests, one nudge at a time; a
 * nudge leaves the queue once its last fragment's write is answered, and one cut off by a lost
 * link is written again after the next connection. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemon/ble_int.h"
#include "daemon/log.h"
#include "daemon/store.h"
#include "drivers/relay.h"
#include "pipeline/nudge.h"

#define BLE_RELAY_WINDOW 64
#define BLE_RELAY_NUDGES 16
#define BLE_RELAY_IDLE_MS 10000  /* a partial record or backlog without progress: RESUME */
#define BLE_RELAY_GAP_RETRY_MS 200 /* the first RESUME for records left with the phone, at the
                                      earliest; then doubling to BLE_RELAY_GAP_MAX_MS while the
                                      same record is left again */
#define BLE_RELAY_GAP_MAX_MS 30000
#define BLE_RELAY_ROW_TRIES 3       /* sends of a record whose row alone the store fails: then
                                       refused */
#define BLE_RELAY_NUDGE_TTL_MS (24 * INT64_C(3600000)) /* then given up */
#define NS_PER_MS INT64_C(1000000)

struct relay_nq {
    uint8_t buf[RELAY_NUDGE_MAX];
    size_t len;
    char id[EV_NAME_MAX + 1];
    int64_t queued_ms;       /* hub UTC when queued: BLE_RELAY_NUDGE_TTL_MS counts from it */
    unsigned writes;         /* whole writes answered so far */
    int64_t written_ns;      /* the last one's end (mono) */
    int doomed;              /* leaves the list when its write in progress ends */
};

struct ble_relay {
    struct relay_rx rx;
    uint16_t h_records, h_resume, h_status, h_nudges;
    int status_writable;     /* the hub may write control bytes to Status */
    int have_done;
    int64_t done;            /* processed: stored or refused, up to here */
    int have_acked;
    int64_t acked;           /* the last resume point written (RESUME or ACK) */
    size_t uncommitted;      /* this source's events and refusals queued or waiting for the
                                store */
    int gap;                 /* records from gap_seq on were left with the phone */
    int64_t gap_seq;
    int gap_resume;          /* the RESUME asking for them again is still to be written */
    int64_t gap_try_ns;      /* not before then */
    int64_t gap_wait_ms;     /* the next gap_try_ns from a left record (0: the first wait) */
    int64_t row_seq;         /* the record whose row the store failed, row_fails times */
    unsigned row_fails;
    uint64_t left, held_back, pauses;
    int ack_due;
    uint64_t frags_at_progress;
    int64_t progress_ns;     /* last record (or RESUME): for the idle timeout */
    uint64_t records, refused, skipped, acks;
    /* the phone's Status (docs/relay-profile.md, "Status and control") */
    int have_phone;
    struct relay_status phone;
    int64_t phone_at_ms;
    int64_t status_pub_ms;   /* the last status/<source> published for a Status change */
    /* nudges */
    struct relay_nq nq[BLE_RELAY_NUDGES]; /* in the order queued */
    size_t nq_n;
    int n_busy;              /* nq[n_cur] is being written */
    size_t n_cur;
    struct relay_tx ntx;
    int64_t next_delivery;
    uint64_t nudges_sent, nudges_resent, nudges_confirmed, nudges_dropped, nudges_expired,
        nudges_unconfirmed, nudges_restored;
};

static int64_t utc(const struct ble_dev *d) { return ble_now(d->mgr)->utc_ms; }
static int64_t mono(const struct ble_dev *d) { return ble_now(d->mgr)->mono_ns; }

static int live(const struct ble_dev *d)
{
    return d->gatt && !d->dead && d->state == BLE_ST_STREAMING && d->relay && d->relay->h_resume;
}

static void on_written(struct gatt *g, int err, uint8_t ecode, void *ud)
{
    struct ble_dev *d = ud;
    if (err < 0 && !d->dead && err != -ECONNRESET && err != -ENOTCONN && err != -ECANCELED)
        log_warn("ble %s: relay: write refused: %s%s%s", d->name, strerror(-err),
                 ecode ? ", " : "", ecode ? att_ecode_str(ecode) : "");
}

/* The largest fragment on this link: a notification or write value, ATT_MTU - 3 bytes, and
 * never more than an attribute value (512). */
static size_t frag_max(const struct ble_dev *d)
{
    unsigned mtu = att_mtu(d->att);
    size_t mf = mtu > 3 + RELAY_FRAG_MIN ? mtu - 3 : RELAY_FRAG_MIN;
    return mf < ATT_MAX_VALUE_LEN ? mf : ATT_MAX_VALUE_LEN;
}

static void write_resume(struct ble_dev *d)
{
    struct ble_relay *r = d->relay;
    uint8_t m[RELAY_RESUME_LEN];
    uint16_t max_frag = (uint16_t)frag_max(d);
    r->rx.max_frag = max_frag;
    int n = relay_rx_resume(&r->rx, r->have_done, r->have_done ? r->done : 0, max_frag,
                            BLE_RELAY_WINDOW, m, sizeof m);
    r->frags_at_progress = r->rx.st.fragments;
    r->progress_ns = mono(d);
    if (n < 0)
        return;
    r->have_acked = r->have_done;
    r->acked = r->done;
    r->ack_due = 0;
    r->gap_resume = 0; /* it asks for everything after the resume point */
    int id = gatt_write(d->gatt, r->h_resume, m, (size_t)n, on_written, d, NULL);
    if (id < 0)
        ble_dev_mark_dead(d, id, "relay: cannot write RESUME", 0);
}

static void write_ack(struct ble_dev *d)
{
    struct ble_relay *r = d->relay;
    uint8_t m[RELAY_ACK_LEN];
    r->ack_due = 0;
    if (!r->have_done || (r->have_acked && r->done <= r->acked))
        return;
    int n = relay_ack_encode(r->rx.gen ? r->rx.gen : 1, r->done, m, sizeof m);
    if (n < 0)
        return;
    r->have_acked = 1;
    r->acked = r->done;
    if (gatt_write(d->gatt, r->h_resume, m, (size_t)n, on_written, d, NULL) < 0)
        log_warn("ble %s: relay: cannot write ACK", d->name);
    else
        r->acks++;
}

/* ---- nudges ------------------------------------------------------------------------- */

/* Removes nudge i from the list. A nudge being written is not removed: its write goes on and
 * it leaves when the write ends (doomed). */
static void nudge_remove(struct ble_relay *r, size_t i)
{
    if (r->n_busy && r->n_cur == i) {
        r->nq[i].doomed = 1;
        return;
    }
    memmove(&r->nq[i], &r->nq[i + 1], (r->nq_n - i - 1) * sizeof r->nq[0]);
    r->nq_n--;
    if (r->n_busy && r->n_cur > i)
        r->n_cur--;
}

/* Nudges past BLE_RELAY_NUDGE_TTL_MS since the hub queued them are given up. */
static void nudge_expire(struct ble_dev *d)
{
    struct ble_relay *r = d->relay;
    for (size_t i = r->nq_n; i-- > 0;) {
        struct relay_nq *q = &r->nq[i];
        if (!q->doomed && utc(d) - q->queued_ms >= BLE_RELAY_NUDGE_TTL_MS) {
            r->nudges_expired++;
            log_warn("ble %s: relay: nudge %s not confirmed by the phone within %d h: given up",
                     d->name, q->id, (int)(BLE_RELAY_NUDGE_TTL_MS / 3600000));
            nudge_remove(r, i);
        }
    }
}

/* The next nudge to write: the first never written, or written without `nudge_ack` for
 * `nudge_resend`. -1 if none is due. */
static long nudge_due(const struct ble_dev *d)
{
    const struct ble_relay *r = d->relay;
    for (size_t i = 0; i < r->nq_n; i++)
        if (!r->nq[i].doomed && (!r->nq[i].writes ||
                                 mono(d) - r->nq[i].written_ns >= d->nudge_resend_ms * NS_PER_MS))
            return (long)i;
    return -1;
}

/* The write of nq[n_cur] is over (done, refused or cut off): a nudge confirmed or given up
 * meanwhile leaves now. */
static void write_ended(struct ble_relay *r)
{
    if (!r->n_busy)
        return;
    r->n_busy = 0;
    if (r->nq[r->n_cur].doomed)
        nudge_remove(r, r->n_cur);
}

static void send_nudge(struct ble_dev *d);

static void on_nudge_written(struct gatt *g, int err, uint8_t ecode, void *ud)
{
    struct ble_dev *d = ud;
    struct ble_relay *r = d->relay;
    if (err < 0) {
        write_ended(r); /* written again after the next connection */
        if (!d->dead && err != -ECONNRESET && err != -ENOTCONN && err != -ECANCELED)
            log_warn("ble %s: relay: nudge write refused: %s%s%s", d->name, strerror(-err),
                     ecode ? ", " : "", ecode ? att_ecode_str(ecode) : "");
        return;
    }
    send_nudge(d);
}

/* The next fragment of the nudge being written, or the first of the next one due. A nudge
 * whose last fragment was answered stays in the list until the phone's `nudge_ack` names it
 * (docs/relay-profile.md, "Nudges"): it is written again after each reconnection and after
 * `nudge_resend`, each time with a new delivery number. */
static void send_nudge(struct ble_dev *d)
{
    struct ble_relay *r = d->relay;
    uint8_t frag[ATT_MAX_VALUE_LEN];
    if (!live(d) || !r->h_nudges)
        return;
    if (r->n_busy && r->ntx.index > 0 && r->ntx.off == r->ntx.len) {
        /* the last fragment was answered: the phone has it */
        struct relay_nq *q = &r->nq[r->n_cur];
        if (q->writes++ == 0)
            r->nudges_sent++;
        else
            r->nudges_resent++;
        q->written_ns = mono(d);
        write_ended(r);
    }
    if (!r->n_busy) {
        nudge_expire(d);
        long i = nudge_due(d);
        if (i < 0)
            return;
        struct relay_nq *q = &r->nq[i];
        if (relay_tx_start(&r->ntx, 0, 0, r->next_delivery++, q->buf, q->len, frag_max(d)) < 0) {
            r->nudges_dropped++;
            nudge_remove(r, (size_t)i);
            return;
        }
        r->n_cur = (size_t)i;
        r->n_busy = 1;
    }
    int n = relay_tx_next(&r->ntx, frag, sizeof frag);
    if (n <= 0 || gatt_write(d->gatt, r->h_nudges, frag, (size_t)n, on_nudge_written, d, NULL) < 0)
        write_ended(r);
}

/* Room for one more nudge: when every place is taken, the oldest nudge the phone has been
 * given at least once makes way (counted unconfirmed); 0, or -1 when all wait for a first
 * write. */
static int nudge_room(struct ble_dev *d)
{
    struct ble_relay *r = d->relay;
    if (r->nq_n < BLE_RELAY_NUDGES)
        return 0;
    for (size_t i = 0; i < r->nq_n; i++)
        if (r->nq[i].writes && !(r->n_busy && r->n_cur == i)) {
            r->nudges_unconfirmed++;
            log_warn("ble %s: relay: nudge %s given up unconfirmed to make room", d->name,
                     r->nq[i].id);
            nudge_remove(r, i);
            return 0;
        }
    return -1;
}

/* Queues a nudge; queued_ms: when the hub had it (BLE_RELAY_NUDGE_TTL_MS counts from it). */
static void enqueue(struct ble_dev *d, const struct nudge_decision *nd, const char *participant,
                    int64_t queued_ms)
{
    struct ble_relay *r = d->relay;
    struct relay_nudge n;
    memset(&n, 0, sizeof n);
    n.priority = nd->priority >= RELAY_PRIO_LOW && nd->priority <= RELAY_PRIO_HIGH
                 ? (unsigned)nd->priority : RELAY_PRIO_NORMAL;
    n.ts = nd->ts;
    n.expires = 0;
    snprintf(n.participant, sizeof n.participant, "%s", participant);
    snprintf(n.id, sizeof n.id, "%s", nd->id);
    snprintf(n.tmpl, sizeof n.tmpl, "%s", nd->message && nd->message[0] ? nd->message
                                          : nd->rule ? nd->rule : "nudge");
    if (nudge_room(d) < 0) {
        r->nudges_dropped++;
        log_warn("ble %s: relay: nudge %s dropped: %d nudges wait for the phone already",
                 d->name, nd->id, BLE_RELAY_NUDGES);
        return;
    }
    struct relay_nq *q = &r->nq[r->nq_n];
    memset(q, 0, sizeof *q);
    int len = relay_nudge_encode(&n, q->buf, sizeof q->buf);
    if (len < 0) {
        r->nudges_dropped++;
        log_warn("ble %s: relay: nudge %s cannot be encoded: %s", d->name, nd->id,
                 strerror(-len));
        return;
    }
    q->len = (size_t)len;
    snprintf(q->id, sizeof q->id, "%s", nd->id);
    q->queued_ms = queued_ms;
    r->nq_n++;
    if (!r->n_busy)
        send_nudge(d);
}

void ble_relay_nudge(struct ble_dev *d, const struct nudge_decision *nd, const char *participant)
{
    ble_dev_touch(d);
    enqueue(d, nd, participant, utc(d));
}

/* ---- nudges across a restart -------------------------------------------------------- */

/* A stored decision to queue again: its body, parsed, and when the hub had it. */
struct ble_nudge_restore {
    json_t *body;
    int64_t decided;         /* hub clock, ms UTC; 0 when stored before schema v5 */
};

struct restore {
    char **acked;            /* nudge ids the source's nudge_ack events name */
    size_t n_acked, cap;
    struct ble_nudge_restore dec[BLE_RELAY_NUDGES]; /* the newest unconfirmed sends, oldest
                                                      * first */
    size_t n;
};

static int take_ack(void *ud, const char *id)
{
    struct restore *rs = ud;
    if (rs->n_acked == rs->cap) {
        size_t cap = rs->cap ? 2 * rs->cap : 16;
        char **a = realloc(rs->acked, cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        rs->acked = a;
        rs->cap = cap;
    }
    if (!(rs->acked[rs->n_acked] = strdup(id)))
        return -ENOMEM;
    rs->n_acked++;
    return 0;
}

static int acked(const struct restore *rs, const char *id)
{
    for (size_t i = 0; i < rs->n_acked; i++)
        if (strcmp(rs->acked[i], id) == 0)
            return 1;
    return 0;
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* A stored decision: kept if it is a send to the participant no nudge_ack has named. */
static int take_decision(void *ud, int64_t row, const struct store_nudge *n)
{
    struct restore *rs = ud;
    json_t *o = n->body ? json_loadb(n->body, n->body_len, 0, NULL) : NULL;
    const char *dec = jstr(o, "decision"), *to = jstr(o, "recipient"), *id = jstr(o, "id");
    if (!(dec && to && id && strcmp(dec, "send") == 0 && strcmp(to, "participant") == 0 &&
          !acked(rs, id))) {
        json_decref(o);
        return 0;
    }
    if (rs->n == BLE_RELAY_NUDGES) { /* the newest count: the oldest makes way */
        json_decref(rs->dec[0].body);
        memmove(rs->dec, rs->dec + 1, (BLE_RELAY_NUDGES - 1) * sizeof rs->dec[0]);
        rs->n--;
    }
    rs->dec[rs->n++] = (struct ble_nudge_restore){.body = o, .decided = n->decided};
    return 0;
}

int ble_relay_restore(struct ble_dev *d, struct store_reader *rd, int64_t now_ms)
{
    ble_dev_touch(d);
    struct restore rs = {0};
    /* hub time, as the live queue counts: an ack arrives after its nudge was decided */
    int64_t since = now_ms - BLE_RELAY_NUDGE_TTL_MS;
    int e = store_reader_nudge_acks(rd, d->name, since, take_ack, &rs);
    if (e == 0)
        e = store_reader_nudges(rd, d->participant, since, take_decision, &rs);
    for (size_t i = 0; i < rs.n_acked; i++)
        free(rs.acked[i]);
    free(rs.acked);
    if (e == 0 && rs.n && !(d->nudge_restore = calloc(rs.n, sizeof *d->nudge_restore)))
        e = -ENOMEM;
    if (e < 0) {
        for (size_t i = 0; i < rs.n; i++)
            json_decref(rs.dec[i].body);
        return e;
    }
    if (rs.n)
        memcpy(d->nudge_restore, rs.dec, rs.n * sizeof *rs.dec);
    d->n_nudge_restore = rs.n;
    return 0;
}

static void restore_free(struct ble_dev *d)
{
    for (size_t i = 0; i < d->n_nudge_restore; i++)
        json_decref(d->nudge_restore[i].body);
    free(d->nudge_restore);
    d->nudge_restore = NULL;
    d->n_nudge_restore = 0;
}

/* The phone is seen for the first time since the start: the nudges the store holds for it
 * unconfirmed join its queue, their 24 hours counted from when the hub decided them (from
 * their event time, if earlier than now, for decisions stored before schema v5). */
static void restore_queue(struct ble_dev *d)
{
    for (size_t i = 0; i < d->n_nudge_restore; i++) {
        json_t *o = d->nudge_restore[i].body;
        struct nudge_decision nd;
        memset(&nd, 0, sizeof nd);
        const char *id = jstr(o, "id"), *prio = jstr(o, "priority");
        nd.ts = json_integer_value(json_object_get(o, "ts"));
        nd.rule = jstr(o, "rule");
        nd.message = jstr(o, "message");
        nd.priority = NUDGE_PRIO_NORMAL;
        for (int p = NUDGE_PRIO_LOW; prio && p <= NUDGE_PRIO_HIGH; p++)
            if (strcmp(prio, nudge_priority_name(p)) == 0)
                nd.priority = p;
        int64_t had = d->nudge_restore[i].decided ? d->nudge_restore[i].decided : nd.ts;
        if (id && strlen(id) < sizeof nd.id) {
            strcpy(nd.id, id);
            enqueue(d, &nd, d->participant, had < utc(d) ? had : utc(d));
            d->relay->nudges_restored++;
        }
    }
    if (d->n_nudge_restore)
        log_info("ble %s: relay: %zu nudges not confirmed before the restart are queued again",
                 d->name, d->n_nudge_restore);
    restore_free(d);
}

/* The phone's nudge_ack names a nudge: it has it, so it is not written again. */
static void nudge_acked(struct ble_dev *d, const char *id)
{
    struct ble_relay *r = d->relay;
    for (size_t i = 0; i < r->nq_n; i++)
        if (!r->nq[i].doomed && strcmp(r->nq[i].id, id) == 0) {
            r->nudges_confirmed++;
            nudge_remove(r, i);
            return;
        }
}

/* ---- records ------------------------------------------------------------------------ */

/* seq is processed: the resume point moves to it, unless a record before it was left with
 * the phone (that one comes again first, then the records after it, processed again). */
static void processed(struct ble_relay *r, int64_t seq)
{
    if (r->gap) {
        if (seq > r->gap_seq)
            return;
        if (seq == r->gap_seq) {
            r->gap = 0;
            r->gap_wait_ms = 0;
        }
    }
    if (!r->have_done || seq > r->done) {
        r->done = seq;
        r->have_done = 1;
    }
}

/* seq is refused or skipped (why; rec: its bytes, len 0 when not kept): it goes to the
 * store's refused table in order with the source's events and is processed once that
 * commits (ble_relay_stored); when the batch is full it is left with the phone instead. */
static void refuse(struct ble_dev *d, int64_t seq, const char *why, const void *rec, size_t len)
{
    if (ble_refuse_own(d->mgr, d, seq, why, rec, len, utc(d)) == 0)
        d->relay->uncommitted++;
    else
        ble_relay_left(d, seq, 0, NULL, 0);
}

static void on_record(struct ble_dev *d, const struct relay_frame *f, int oversized)
{
    struct ble_relay *r = d->relay;
    char why[DEC_WHY_MAX];
    struct event ev;
    r->records++;
    r->frags_at_progress = r->rx.st.fragments;
    r->progress_ns = mono(d);
    if (r->gap_resume) {
        r->held_back++; /* after one left with the phone: asked for again with it */
        return;
    }
    if (oversized) {
        r->refused++;
        d->malformed++;
        log_warn("ble %s: relay: record %" PRId64 " of %zu bytes refused (more than %d)",
                 d->name, f->seq, f->len, RELAY_RECORD_MAX);
        snprintf(why, sizeof why, "a record of %zu bytes (more than %d; not kept)", f->len,
                 RELAY_RECORD_MAX);
        refuse(d, f->seq, why, NULL, 0);
        return;
    }
    int e = relay_record_event(f, d->participant, d->name, &ev, why);
    if (e == -ENOENT) {
        r->skipped++;
        refuse(d, f->seq, why, f->data, f->len);
        return;
    }
    if (e < 0) {
        r->refused++;
        d->malformed++;
        log_warn("ble %s: relay: record %" PRId64 " refused: %s", d->name, f->seq, why);
        refuse(d, f->seq, why, f->data, f->len);
        return;
    }
    if (ev.type == EV_BATTERY) {
        d->battery_set = 1;
        d->battery = (unsigned)ev.u.battery.pct;
    }
    if (ev.type == EV_NUDGE_ACK)
        nudge_acked(d, ev.u.nudge_ack.nudge);
    if (ble_emit_own(d->mgr, d, &ev, utc(d)) == 0)
        r->uncommitted++;
    else
        ble_relay_left(d, f->seq, 0, NULL, 0); /* the batch is full: the phone keeps it */
}

static void on_records(struct gatt *g, uint16_t h, const uint8_t *v, size_t len, int64_t at,
                       void *ud)
{
    struct ble_dev *d = ud;
    struct ble_relay *r = d->relay;
    struct relay_frame f;
    d->last_note_ms = utc(d);
    int res = relay_rx_feed(&r->rx, v, len, &f);
    if (res == RELAY_RECORD || res == RELAY_OVERSIZED)
        on_record(d, &f, res == RELAY_OVERSIZED);
    else if (res < 0)
        log_warn("ble %s: relay stream: %s; asking the phone to resume", d->name, r->rx.why);
    if (!live(d))
        return;
    if (relay_rx_need_resume(&r->rx))
        write_resume(d);
    else if (r->ack_due)
        write_ack(d);
}

/* The phone's Status, notified on change. It goes out with the source's status: at once
 * when the phone started discarding records (dropped grew, or OUTBOX_FULL came on), at most
 * once a second, so that staff see losses as they happen; else with the periodic status. */
static void on_status(struct gatt *g, uint16_t h, const uint8_t *v, size_t len, int64_t at,
                      void *ud)
{
    struct ble_dev *d = ud;
    struct ble_relay *r = d->relay;
    struct relay_status st;
    char why[DEC_WHY_MAX];
    if (relay_status_decode(v, len, &st, why) < 0) {
        d->malformed++;
        log_warn("ble %s: relay: phone status refused: %s", d->name, why);
        return;
    }
    int losing = st.dropped > (r->have_phone ? r->phone.dropped : 0) ||
                 ((st.flags & RELAY_STATUS_OUTBOX_FULL) &&
                  !(r->have_phone && (r->phone.flags & RELAY_STATUS_OUTBOX_FULL)));
    if (losing)
        log_warn("ble %s: relay: the phone has discarded %" PRIu32 " records unsent%s",
                 d->name, st.dropped,
                 st.flags & RELAY_STATUS_OUTBOX_FULL ? " (its outbox is full)" : "");
    r->phone = st;
    r->have_phone = 1;
    r->phone_at_ms = utc(d);
    if (losing && r->phone_at_ms - r->status_pub_ms >= 1000) {
        r->status_pub_ms = r->phone_at_ms;
        ble_publish_status(d->mgr, d);
    }
}

/* ---- the device's hooks ------------------------------------------------------------- */

static const struct gatt_chrc *chrc(const struct gatt_db *db, const struct gatt_service *sv,
                                    const char *uuid)
{
    struct att_uuid c;
    return att_uuid_parse(&c, uuid) == 0 ? gatt_db_chrc(db, sv, &c) : NULL;
}

int ble_relay_setup(struct ble_dev *d, const struct gatt_db *db)
{
    ble_dev_touch(d);
    struct att_uuid u;
    const struct gatt_service *sv;
    if (att_uuid_parse(&u, RELAY_UUID_SERVICE) < 0 || !(sv = gatt_db_service(db, &u)))
        return 0;
    const struct gatt_chrc *rec = chrc(db, sv, RELAY_UUID_RECORDS);
    const struct gatt_chrc *res = chrc(db, sv, RELAY_UUID_RESUME);
    if (!rec || !res || !(res->props & GATT_PROP_WRITE)) {
        log_warn("ble %s: relay service without Records or a writable Resume: not read",
                 d->name);
        return 0;
    }
    if (!d->relay) {
        if (!(d->relay = calloc(1, sizeof *d->relay))) {
            ble_dev_mark_dead(d, -ENOMEM, "out of memory", 1);
            return 0;
        }
        /* the resume point starts at the store's position for the source, or below a record
         * missing under it (ble.c, relay_resume_point) */
        d->relay->have_done = d->have_pos;
        d->relay->done = d->relay_from;
        /* delivery numbers only grow, across restarts too */
        d->relay->next_delivery = utc(d);
        restore_queue(d);
    }
    struct ble_relay *r = d->relay;
    relay_rx_init(&r->rx, RELAY_RX_RECORDS, ATT_MAX_VALUE_LEN);
    r->h_records = rec->value;
    r->h_resume = res->value;
    const struct gatt_chrc *c = chrc(db, sv, RELAY_UUID_NUDGES);
    r->h_nudges = c && (c->props & GATT_PROP_WRITE) ? c->value : 0;
    r->h_status = 0;
    r->status_writable = 0;
    write_ended(r); /* a write the lost link cut off without an answer */
    ble_prof_subscribe(d, rec, on_records);
    if ((c = chrc(db, sv, RELAY_UUID_STATUS))) {
        r->h_status = c->value;
        r->status_writable = (c->props & GATT_PROP_WRITE) != 0;
        ble_prof_subscribe(d, c, on_status);
    }
    return 1;
}

void ble_relay_streaming(struct ble_dev *d)
{
    ble_dev_touch(d);
    if (!live(d))
        return;
    write_resume(d);
    /* a new link: every nudge not yet confirmed is written again */
    for (size_t i = 0; i < d->relay->nq_n; i++)
        if (d->relay->nq[i].writes)
            d->relay->nq[i].written_ns = INT64_MIN / 2;
    send_nudge(d);
    /* the phone notifies its Status on change only: ask for it now */
    static const uint8_t now = RELAY_CTL_STATUS;
    if (d->relay->h_status && d->relay->status_writable)
        (void)gatt_write(d->gatt, d->relay->h_status, &now, 1, on_written, d, NULL);
    if (ble_store_behind(d->mgr))
        ble_relay_pause(d, 1);
}

void ble_relay_stored(struct ble_dev *d, int64_t seq, int ok)
{
    struct ble_relay *r = d->relay;
    if (!r)
        return;
    ble_dev_touch(d); /* a relay's deadlines move below */
    if (r->uncommitted)
        r->uncommitted--;
    if (ok)
        processed(r, seq);
    r->ack_due = 1;
}

void ble_relay_left(struct ble_dev *d, int64_t seq, int row_error, const char *body,
                    size_t len)
{
    struct ble_relay *r = d->relay;
    if (!r || (r->have_done && seq <= r->done))
        return; /* stored before */
    ble_dev_touch(d); /* a relay's deadlines move below */
    if (row_error) {
        r->row_fails = r->row_fails && r->row_seq == seq ? r->row_fails + 1 : 1;
        r->row_seq = seq;
        if (r->row_fails >= BLE_RELAY_ROW_TRIES) {
            /* its content, not the store's state: sending it again would never end */
            r->row_fails = 0;
            r->refused++;
            d->malformed++;
            char why[DEC_WHY_MAX];
            snprintf(why, sizeof why, "the store failed its row each of the %d times the "
                     "phone sent it", BLE_RELAY_ROW_TRIES);
            log_error("ble %s: relay: record %" PRId64 " refused: %s", d->name, seq, why);
            refuse(d, seq, why, body, len);
            return;
        }
    }
    r->left++;
    if (!r->gap)
        log_warn("ble %s: relay: record %" PRId64 " not stored now (the store is behind or "
                 "failed); the phone keeps it and is asked for it again", d->name, seq);
    if (!r->gap || seq < r->gap_seq)
        r->gap_seq = seq;
    r->gap = 1;
    if (!r->gap_resume)
        r->gap_try_ns = mono(d) + (r->gap_wait_ms ? r->gap_wait_ms : BLE_RELAY_GAP_RETRY_MS) *
                                      NS_PER_MS;
    r->gap_resume = 1;
}

/* Writes the RESUME for records left with the phone once nothing of the source is in flight
 * (its resume point is final) and the store has room. 1 if written. */
static int gap_resume(struct ble_dev *d)
{
    struct ble_relay *r = d->relay;
    if (!r->gap_resume || !live(d) || r->uncommitted || ble_store_behind(d->mgr) ||
        mono(d) < r->gap_try_ns)
        return 0;
    log_info("ble %s: relay: asking the phone again for its records after %" PRId64, d->name,
             r->have_done ? r->done : 0);
    /* the same record left again (a store that keeps failing): wait longer next time */
    int64_t w = r->gap_wait_ms ? 2 * r->gap_wait_ms : 2 * BLE_RELAY_GAP_RETRY_MS;
    r->gap_wait_ms = w < BLE_RELAY_GAP_MAX_MS ? w : BLE_RELAY_GAP_MAX_MS;
    write_resume(d);
    return 1;
}

void ble_relay_pause(struct ble_dev *d, int on)
{
    struct ble_relay *r = d->relay;
    if (!r || !live(d))
        return;
    ble_dev_touch(d); /* a relay's deadlines move below */
    if (!on && gap_resume(d)) {
        ble_dev_after(d); /* a RESUME also ends a PAUSE */
        return;
    }
    const uint8_t op = on ? RELAY_CTL_PAUSE : RELAY_CTL_CONTINUE;
    if (r->h_status && r->status_writable &&
        gatt_write(d->gatt, r->h_status, &op, 1, on_written, d, NULL) >= 0 && on)
        r->pauses++;
    ble_dev_after(d);
}

void ble_relay_after_reply(struct ble_dev *d)
{
    struct ble_relay *r = d->relay;
    if (!r || !live(d))
        return;
    ble_dev_touch(d); /* a relay's deadlines move below */
    if (gap_resume(d) || r->ack_due) {
        if (r->ack_due)
            write_ack(d);
        ble_dev_after(d);
    }
}

/* When a partial record or backlog without progress calls for a RESUME (INT64_MAX: none). */
static int64_t idle_deadline(const struct ble_dev *d)
{
    const struct ble_relay *r = d->relay;
    if (r->rx.st.fragments == r->frags_at_progress)
        return INT64_MAX;
    return r->progress_ns + BLE_RELAY_IDLE_MS * NS_PER_MS;
}

/* When the next nudge written without nudge_ack is due again (INT64_MAX: none waits). */
static int64_t resend_deadline(const struct ble_dev *d)
{
    const struct ble_relay *r = d->relay;
    int64_t t = INT64_MAX;
    if (r->n_busy || !r->h_nudges)
        return t; /* the write's end schedules the next */
    for (size_t i = 0; i < r->nq_n; i++)
        if (r->nq[i].writes && r->nq[i].written_ns + d->nudge_resend_ms * NS_PER_MS < t)
            t = r->nq[i].written_ns + d->nudge_resend_ms * NS_PER_MS;
    return t;
}

int64_t ble_relay_deadline(const struct ble_dev *d)
{
    if (!d->relay || d->state != BLE_ST_STREAMING || !d->relay->h_resume)
        return INT64_MAX;
    int64_t a = idle_deadline(d), b = resend_deadline(d);
    if (d->relay->gap_resume && d->relay->gap_try_ns < a)
        a = d->relay->gap_try_ns;
    return a < b ? a : b;
}

void ble_relay_on_timer(struct ble_dev *d)
{
    ble_dev_touch(d);
    if (!live(d))
        return;
    struct ble_relay *r = d->relay;
    if (r->gap_resume && mono(d) >= r->gap_try_ns && !gap_resume(d))
        r->gap_try_ns = mono(d) + BLE_RELAY_GAP_RETRY_MS * NS_PER_MS;
    if (live(d) && mono(d) >= idle_deadline(d)) {
        log_warn("ble %s: relay: a record stayed incomplete for %d s; asking the phone to "
                 "resume", d->name, BLE_RELAY_IDLE_MS / 1000);
        write_resume(d);
    }
    if (mono(d) >= resend_deadline(d))
        send_nudge(d);
}

void ble_relay_info(const struct ble_dev *d, struct ble_relay_info *ret)
{
    const struct ble_relay *r = d->relay;
    memset(ret, 0, sizeof *ret);
    ret->records = r->records;
    ret->refused = r->refused;
    ret->skipped = r->skipped;
    ret->acks = r->acks;
    ret->left = r->left;
    ret->held_back = r->held_back;
    ret->pauses = r->pauses;
    ret->rx = r->rx.st;
    ret->resumes = r->rx.st.resumes;
    ret->nudges_sent = r->nudges_sent;
    ret->nudges_resent = r->nudges_resent;
    ret->nudges_confirmed = r->nudges_confirmed;
    ret->nudges_dropped = r->nudges_dropped;
    ret->nudges_expired = r->nudges_expired;
    ret->nudges_unconfirmed = r->nudges_unconfirmed;
    ret->nudges_restored = r->nudges_restored;
    ret->nudges_waiting = r->nq_n;
    ret->have_phone = r->have_phone;
    ret->phone = r->phone;
    ret->phone_at_ms = r->phone_at_ms;
}

void ble_relay_free(struct ble_dev *d)
{
    ble_dev_touch(d);
    restore_free(d);
    free(d->relay);
    d->relay = NULL;
}
