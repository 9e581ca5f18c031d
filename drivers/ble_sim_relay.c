/* The phone side of the engaged relay service (docs/relay-profile.md) in the BLE simulator
 * (drivers/ble_sim.h): a phone whose outbox is the records of a JSON Lines file.
 *
 * Each connection gets the relay service (Records notify, Resume write/read, Status read,
 * Nudges write). Nothing is sent before the hub's RESUME; then the records from the planned
 * first seq (relay_plan_resume) are notified one fragment per stream tick, the first with
 * START, at most `window` beyond the last ACK. A new RESUME abandons the record half sent and
 * starts over from where it says. An ACK frees records (the outbox is shared by every
 * connection of the process). Nudges written by the hub are reassembled and written as JSON
 * lines to the nudge file; with blesim_relay_set_ack each new one is answered with a
 * nudge_ack record at the end of the outbox. The Status answers the hub's control bytes. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/ble_gatt.h"
#include "drivers/ble_sim.h"
#include "drivers/relay.h"

struct blesim_relay {
    char **rec;           /* the lines, without newline */
    size_t *len;
    int64_t *seq;         /* consecutive: seq[i] = seq[0] + i */
    size_t n, alloc;
    int have_freed;
    int64_t freed;        /* acknowledged up to (the outbox starts after it) */
    FILE *nudges;         /* borrowed, may be NULL */
    unsigned corrupt_every; /* fault: flip a bit of every Nth fragment (0: off) */
    uint32_t dropped;     /* what the Status reports as discarded unsent */
    int ack_nudges;       /* answer each new nudge with a nudge_ack `delivered` record */
    int ignore_pause;     /* count PAUSEs, do not honour them */
    char **acked_ids;     /* the nudges so answered */
    size_t n_acked_ids;
    uint64_t fragments;
    uint64_t acks, resumes, records_sent, nudges_got, pauses, statuses;
};

struct relay_conn {
    struct blesim_relay *r;
    uint16_t h_records, h_resume, h_status, h_nudges;
    uint32_t max_frag;
    uint16_t window;
    uint8_t gen;              /* 0: no RESUME yet */
    int start;                /* the next record is the first after the RESUME */
    int64_t next;             /* next seq to send */
    int64_t acked;            /* the hub has everything up to it (RESUME or ACK) */
    int have_acked;
    int tx_active;
    int paused;               /* the hub's PAUSE, until CONTINUE or the next RESUME */
    int status_dirty;         /* the Status changed since it was last notified */
    int64_t now_ns, status_ns; /* the last stream tick; the last Status notification */
    struct relay_tx tx;
    struct relay_rx nrx;      /* nudges */
};

static int64_t seq_of(const char *line)
{
    const char *p = strstr(line, "\"seq\":");
    if (!p)
        return -1;
    char *end;
    long long v = strtoll(p + 6, &end, 10);
    return end == p + 6 || v < 0 ? -1 : (int64_t)v;
}

/* Appends a record (copied) with seq s: 0 or -ENOMEM. */
static int append(struct blesim_relay *r, const char *line, size_t len, int64_t s)
{
    if (r->n == r->alloc) {
        size_t alloc = r->alloc ? 2 * r->alloc : 256;
        char **a = realloc(r->rec, alloc * sizeof *a);
        if (a)
            r->rec = a;
        size_t *b = a ? realloc(r->len, alloc * sizeof *b) : NULL;
        if (b)
            r->len = b;
        int64_t *c = b ? realloc(r->seq, alloc * sizeof *c) : NULL;
        if (!c)
            return -ENOMEM;
        r->seq = c;
        r->alloc = alloc;
    }
    if (!(r->rec[r->n] = strndup(line, len)))
        return -ENOMEM;
    r->len[r->n] = len;
    r->seq[r->n] = s;
    r->n++;
    return 0;
}

struct blesim_relay *blesim_relay_load(const char *path, FILE *nudges, char *why, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, cap, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct blesim_relay *r = calloc(1, sizeof *r);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    int bad = !r;
    while (!bad && (got = getline(&line, &lcap, f)) >= 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        if (got == 0)
            continue;
        int64_t s = seq_of(line);
        if (s < 0 || (r->n && s != r->seq[r->n - 1] + 1)) {
            snprintf(why, cap, "%s: line %zu: records need consecutive \"seq\" values", path,
                     r->n + 1);
            bad = 1;
            break;
        }
        if (append(r, line, (size_t)got, s) < 0) {
            snprintf(why, cap, "out of memory");
            bad = 1;
            break;
        }
    }
    free(line);
    fclose(f);
    if (!bad && r->n == 0) {
        snprintf(why, cap, "%s: no records", path);
        bad = 1;
    }
    if (bad) {
        blesim_relay_free(r);
        return NULL;
    }
    r->nudges = nudges;
    return r;
}

void blesim_relay_free(struct blesim_relay *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->rec[i]);
    for (size_t i = 0; i < r->n_acked_ids; i++)
        free(r->acked_ids[i]);
    free(r->acked_ids);
    free(r->rec);
    free(r->len);
    free(r->seq);
    free(r);
}

void blesim_relay_set_corrupt(struct blesim_relay *r, unsigned every)
{
    r->corrupt_every = every;
}

void blesim_relay_set_ignore_pause(struct blesim_relay *r, int on)
{
    r->ignore_pause = on;
}

void blesim_relay_set_dropped(struct blesim_relay *r, uint32_t dropped)
{
    r->dropped = dropped;
}

void blesim_relay_set_ack(struct blesim_relay *r, int on)
{
    r->ack_nudges = on;
}

/* The phone has nudge n for the first time: a nudge_ack `delivered` record joins the outbox,
 * with the source of the outbox's first record and the nudge's time (so that a replayed
 * recording's clock does not jump). Each id is answered once, as a phone shows a nudge once. */
static void ack_nudge(struct blesim_relay *r, const struct relay_nudge *n)
{
    for (size_t i = 0; i < r->n_acked_ids; i++)
        if (strcmp(r->acked_ids[i], n->id) == 0)
            return;
    char src[EV_ID_MAX + 1] = "", line[RELAY_RECORD_MAX];
    const char *p = strstr(r->rec[0], "\"source\":\"");
    if (p)
        sscanf(p + 10, "%64[^\"]", src);
    int len = snprintf(line, sizeof line, "{\"ts\":%" PRId64 ",\"participant\":\"%s\","
                       "\"source\":\"%s\",\"seq\":%" PRId64 ",\"type\":\"nudge_ack\","
                       "\"nudge\":\"%s\",\"state\":\"delivered\"}", n->ts, n->participant, src,
                       r->seq[r->n - 1] + 1, n->id);
    if (len < 0 || (size_t)len >= sizeof line)
        return;
    char **ids = realloc(r->acked_ids, (r->n_acked_ids + 1) * sizeof *ids);
    if (!ids)
        return;
    r->acked_ids = ids;
    if (!(ids[r->n_acked_ids] = strdup(n->id)))
        return;
    r->n_acked_ids++;
    if (append(r, line, (size_t)len, r->seq[r->n - 1] + 1) < 0)
        fprintf(stderr, "blesim: relay: nudge %s: out of memory for its nudge_ack\n", n->id);
}

void blesim_relay_report(const struct blesim_relay *r, FILE *out)
{
    fprintf(out, "blesim: relay: %zu records (seq %" PRId64 "..%" PRId64 "), acknowledged up "
            "to %" PRId64 "%s, %" PRIu64 " sent, %" PRIu64 " resumes, %" PRIu64 " acks, %"
            PRIu64 " nudges, %" PRIu64 " pauses, %" PRIu64 " status requests\n", r->n,
            r->seq[0], r->seq[r->n - 1], r->have_freed ? r->freed : (int64_t)-1,
            r->have_freed ? "" : " (none)", r->records_sent, r->resumes, r->acks, r->nudges_got,
            r->pauses, r->statuses);
}

/* The Status value of this connection's phone, stored for reads; notified when asked (now),
 * else marked for the next stream tick a second after the last notification. */
static void put_status(struct blesim *s, struct relay_conn *c, int now)
{
    struct blesim_relay *r = c->r;
    int64_t newest = r->seq[r->n - 1];
    int64_t freed = r->have_freed ? r->freed : r->seq[0] - 1;
    struct relay_status rs = {
        .version = RELAY_VERSION,
        .flags = RELAY_STATUS_HAVE_NEWEST | (c->paused ? RELAY_STATUS_PAUSED : 0),
        .newest = newest,
        .pending = (uint32_t)(newest > freed ? newest - freed : 0),
        .dropped = r->dropped,
    };
    uint8_t st[RELAY_STATUS_LEN];
    if (relay_status_encode(&rs, st, sizeof st) < 0 ||
        blesim_set_value(s, c->h_status, st, sizeof st) < 0)
        return;
    c->status_dirty = 1;
    if (now || c->now_ns - c->status_ns >= INT64_C(1000000000)) {
        c->status_ns = c->now_ns;
        c->status_dirty = 0;
        (void)blesim_notify(s, c->h_status); /* nothing without a subscription */
    }
}

static void on_status_write(struct blesim *s, uint16_t h, const uint8_t *v, size_t len, void *ud)
{
    struct relay_conn *c = ud;
    char why[DEC_WHY_MAX];
    int op;
    if (relay_control_decode(v, len, &op, why) < 0)
        return;
    if (op == RELAY_CTL_STATUS)
        c->r->statuses++;
    else if (op == RELAY_CTL_PAUSE && !c->paused)
        c->r->pauses++;
    if ((op == RELAY_CTL_PAUSE || op == RELAY_CTL_CONTINUE) && !c->r->ignore_pause)
        c->paused = op == RELAY_CTL_PAUSE;
    put_status(s, c, 1);
}

static void free_upto(struct blesim_relay *r, int64_t s)
{
    if (!r->have_freed || s > r->freed) {
        r->freed = s;
        r->have_freed = 1;
    }
}

static void on_resume_write(struct blesim *s, uint16_t h, const uint8_t *v, size_t len, void *ud)
{
    struct relay_conn *c = ud;
    struct blesim_relay *r = c->r;
    struct relay_resume m;
    char why[DEC_WHY_MAX];
    if (relay_resume_decode(v, len, &m, why) < 0)
        return;
    if (m.op == RELAY_OP_ACK) {
        r->acks++;
        free_upto(r, m.seq);
        if (!c->have_acked || m.seq > c->acked)
            c->acked = m.seq;
        c->have_acked = 1;
        put_status(s, c, 0);
        return;
    }
    r->resumes++;
    c->paused = 0;
    int64_t oldest = r->have_freed && r->freed + 1 > r->seq[0] ? r->freed + 1 : r->seq[0];
    int64_t newest = r->seq[r->n - 1];
    struct relay_plan p;
    if (relay_plan_resume(&m, oldest <= newest, oldest, newest, 1, newest, &p) < 0)
        return;
    if (p.have_free)
        free_upto(r, p.free_upto);
    c->gen = m.gen;
    c->max_frag = m.max_frag;
    c->window = m.window;
    c->tx_active = 0; /* the hub ignores the rest of a record half sent */
    c->start = 1;
    c->next = p.send ? p.first : newest + 1;
    c->have_acked = m.have_seq;
    c->acked = m.have_seq ? m.seq : 0;
    put_status(s, c, 0);
}

static void on_nudge_write(struct blesim *s, uint16_t h, const uint8_t *v, size_t len, void *ud)
{
    struct relay_conn *c = ud;
    struct relay_frame f;
    struct relay_nudge n;
    char why[DEC_WHY_MAX];
    if (relay_rx_feed(&c->nrx, v, len, &f) != RELAY_RECORD)
        return;
    c->r->nudges_got++;
    if (relay_nudge_decode(f.data, f.len, &n, why) < 0) {
        fprintf(stderr, "blesim: relay: nudge %" PRId64 " refused: %s\n", f.seq, why);
        return;
    }
    if (c->r->ack_nudges)
        ack_nudge(c->r, &n);
    if (c->r->nudges) {
        fprintf(c->r->nudges, "{\"delivery\":%" PRId64 ",\"participant\":\"%s\",\"id\":\"%s\","
                "\"template\":\"%s\",\"priority\":%u,\"ts\":%" PRId64 ",\"expires\":%" PRId64
                "}\n", f.seq, n.participant, n.id, n.tmpl, n.priority, n.ts, n.expires);
        fflush(c->r->nudges);
    }
}

/* One fragment per tick: the next of the record being sent, or the first of the next one. */
static int gen_fragment(struct blesim *s, uint16_t h, uint64_t count, int64_t now_ns,
                        uint8_t *buf, size_t cap, void *ud)
{
    struct relay_conn *c = ud;
    struct blesim_relay *r = c->r;
    c->now_ns = now_ns;
    if (c->status_dirty)
        put_status(s, c, 0);
    if (!c->gen || c->paused)
        return -EAGAIN;
    if (!c->tx_active) {
        int64_t newest = r->seq[r->n - 1];
        if (c->next > newest || c->next < r->seq[0])
            return -EAGAIN;
        if (c->have_acked ? c->next > c->acked + c->window
                          : c->next - r->seq[0] >= (int64_t)c->window)
            return -EAGAIN;
        size_t mf = blesim_mtu(s) - 3u;
        if (c->max_frag < mf)
            mf = c->max_frag;
        if (mf > cap)
            mf = cap; /* a value is at most ATT_MAX_VALUE_LEN */
        size_t i = (size_t)(c->next - r->seq[0]);
        if (relay_tx_start(&c->tx, c->gen, c->start, c->next, r->rec[i], r->len[i], mf) < 0) {
            c->next++; /* cannot be sent: skipped */
            return -EAGAIN;
        }
        c->tx_active = 1;
    }
    int n = relay_tx_next(&c->tx, buf, cap);
    if (n <= 0) {
        c->tx_active = 0;
        return -EAGAIN;
    }
    if (r->corrupt_every && ++r->fragments % r->corrupt_every == 0)
        buf[n - 1] ^= 0x01; /* the record's last byte here: the CRC check fails */
    if (c->tx.off == c->tx.len) {
        c->tx_active = 0;
        c->start = 0;
        c->next++;
        r->records_sent++;
    }
    return n;
}

int blesim_add_relay(struct blesim *s, struct blesim_relay *r, uint32_t period_us)
{
    struct att_uuid u;
    struct relay_conn *c = calloc(1, sizeof *c);
    int h, e;
    if (!c)
        return -ENOMEM;
    if ((e = blesim_own(s, c)) < 0) {
        free(c);
        return e;
    }
    c->r = r;
    relay_rx_init(&c->nrx, RELAY_RX_PLAIN, ATT_MAX_VALUE_LEN);
    if (att_uuid_parse(&u, RELAY_UUID_SERVICE) < 0 || (h = blesim_add_service(s, &u, 1)) < 0)
        return -EINVAL;
    if (att_uuid_parse(&u, RELAY_UUID_RECORDS) < 0 ||
        (h = blesim_add_chrc(s, &u, GATT_PROP_NOTIFY, NULL, 0)) < 0)
        return h < 0 ? h : -EINVAL;
    c->h_records = (uint16_t)h;
    if (att_uuid_parse(&u, RELAY_UUID_RESUME) < 0 ||
        (h = blesim_add_chrc(s, &u, GATT_PROP_READ | GATT_PROP_WRITE, NULL, 0)) < 0)
        return h < 0 ? h : -EINVAL;
    c->h_resume = (uint16_t)h;
    if (att_uuid_parse(&u, RELAY_UUID_STATUS) < 0 ||
        (h = blesim_add_chrc(s, &u, GATT_PROP_READ | GATT_PROP_WRITE | GATT_PROP_NOTIFY, NULL,
                             0)) < 0)
        return h < 0 ? h : -EINVAL;
    c->h_status = (uint16_t)h;
    put_status(s, c, 0);
    if (att_uuid_parse(&u, RELAY_UUID_NUDGES) < 0 ||
        (h = blesim_add_chrc(s, &u, GATT_PROP_WRITE, NULL, 0)) < 0)
        return h < 0 ? h : -EINVAL;
    c->h_nudges = (uint16_t)h;
    if ((e = blesim_set_attr_hooks(s, c->h_resume, NULL, on_resume_write, c)) < 0 ||
        (e = blesim_set_attr_hooks(s, c->h_status, NULL, on_status_write, c)) < 0 ||
        (e = blesim_set_attr_hooks(s, c->h_nudges, NULL, on_nudge_write, c)) < 0)
        return e;
    return blesim_add_stream(s, c->h_records, (int64_t)(period_us ? period_us : 1) * 1000,
                             gen_fragment, c);
}
