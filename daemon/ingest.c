#include "daemon/ingest.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define IDENTITY_MAX 256
#define REASONS_MAX 100 /* per-line reasons reported in one ack; the count is always exact */

struct pending {
    uint64_t token;
    unsigned char identity[IDENTITY_MAX];
    size_t identity_len;
    int envelope;              /* REQ client: reply with an empty delimiter frame */
    size_t n_ev, cap_ev;       /* cap_ev: the room of ev, samples and line_of */
    struct event *ev;          /* parsed events, in line order */
    float (**samples)[3];      /* owned accel samples per event (NULL if none) */
    size_t *line_of;           /* message line index of each event */
    size_t rejected;
    int64_t received;          /* hub clock at receipt, as stored with the events */
    json_t *errors;            /* [{"index":i,"reason":"..."}] */
    struct pending *next;
};

struct ingest {
    void *sock;
    struct ingest_opts o;
    struct ingest_stats st;
    uint64_t next_token;
    struct pending *head, *tail; /* store replies come in submit order */
    size_t n_pending;
    float (*scratch)[3];
};

static void pending_free(struct pending *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_ev; i++)
        free(p->samples[i]);
    free(p->samples);
    free(p->line_of);
    free(p->ev);
    json_decref(p->errors);
    free(p);
}

struct ingest *ingest_new(void *zctx, const char *const *endpoints, size_t n_endpoints,
                          const struct curve_opts *curve, const struct ingest_opts *o, int *err)
{
    struct ingest *in = calloc(1, sizeof *in);
    if (!in || !(in->scratch = malloc(sizeof(float[3]) * EV_ACCEL_MAX))) {
        free(in);
        *err = -ENOMEM;
        return NULL;
    }
    in->o = *o;
    in->next_token = 1;
    in->sock = zmq_socket(zctx, ZMQ_ROUTER);
    if (!in->sock) {
        *err = -errno;
        ingest_free(in);
        return NULL;
    }
    int linger = 0, hwm = 10000;
    /* Messages up to 4x max_message are read and refused with a clear error; beyond that
     * libzmq drops the connection before buffering the message (memory bound). */
    int64_t maxmsg = 4 * (int64_t)o->max_message + 4096;
    zmq_setsockopt(in->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(in->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(in->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    for (size_t i = 0; i < n_endpoints; i++) {
        int e = zap_secure_bind(in->sock, endpoints[i], curve, NULL, 0);
        if (e < 0) {
            *err = e;
            ingest_free(in);
            return NULL;
        }
    }
    return in;
}

void ingest_free(struct ingest *in)
{
    if (!in)
        return;
    while (in->head) {
        struct pending *p = in->head;
        in->head = p->next;
        pending_free(p);
    }
    if (in->sock) {
        /* the acknowledgements sent at shutdown get half a second to leave (a vanished
         * client cannot hold the exit longer) */
        int linger = 500;
        zmq_setsockopt(in->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(in->sock);
    }
    free(in->scratch);
    free(in);
}

void *ingest_socket(struct ingest *in) { return in->sock; }
int ingest_can_read(const struct ingest *in) { return in->n_pending < in->o.max_pending; }
void ingest_get_stats(const struct ingest *in, struct ingest_stats *s) { *s = in->st; }

static void send_reply(struct ingest *in, const unsigned char *id, size_t id_len, int envelope,
                       json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        return;
    /* DONTWAIT: a client that vanished or stopped reading must never block the loop */
    zmq_send(in->sock, id, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (envelope)
        zmq_send(in->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(in->sock, text, strlen(text), ZMQ_DONTWAIT);
    free(text);
}

static void reply_error(struct ingest *in, const unsigned char *id, size_t id_len, int envelope,
                        const char *msg)
{
    json_t *j = json_pack("{s:s}", "error", msg);
    if (j) {
        send_reply(in, id, id_len, envelope, j);
        json_decref(j);
    }
}

static void reply_ack(struct ingest *in, struct pending *p, size_t accepted, size_t duplicate)
{
    json_t *j = json_pack("{s:I,s:I,s:I,s:O}", "accepted", (json_int_t)accepted, "duplicate",
                          (json_int_t)duplicate, "rejected", (json_int_t)p->rejected, "errors",
                          p->errors);
    if (j) {
        send_reply(in, p->identity, p->identity_len, p->envelope, j);
        json_decref(j);
    }
}

static void reject(struct pending *p, size_t index, const char *reason)
{
    p->rejected++;
    if (json_array_size(p->errors) < REASONS_MAX)
        json_array_append_new(p->errors, json_pack("{s:I,s:s}", "index", (json_int_t)index,
                                                   "reason", reason));
}

/* Parse the payload lines of one message into p. */
/* Room for more events: the arrays double (one realloc per event made a message of N lines
 * cost O(N^2) in copies wherever realloc moves the block). */
static int grow(struct pending *p)
{
    size_t cap = p->cap_ev ? 2 * p->cap_ev : 64;
    struct event *nev = realloc(p->ev, cap * sizeof *nev);
    if (!nev)
        return -ENOMEM;
    p->ev = nev;
    float(**ns)[3] = realloc(p->samples, cap * sizeof *ns);
    if (!ns)
        return -ENOMEM;
    p->samples = ns;
    size_t *nl_of = realloc(p->line_of, cap * sizeof *nl_of);
    if (!nl_of)
        return -ENOMEM;
    p->line_of = nl_of;
    p->cap_ev = cap;
    return 0;
}

static int parse_payload(struct ingest *in, struct pending *p, const char *data, size_t len,
                         size_t *line_index, int64_t now_ms)
{
    const char *end = data + len;
    while (data < end) {
        const char *nl = memchr(data, '\n', (size_t)(end - data));
        size_t l = nl ? (size_t)(nl - data) : (size_t)(end - data);
        const char *line = data;
        data += l + (nl ? 1 : 0);
        if (l && line[l - 1] == '\r')
            l--;
        if (l == 0)
            continue;
        size_t index = (*line_index)++;
        if (*line_index > in->o.max_lines)
            return -E2BIG;
        struct event ev;
        const char *why = NULL;
        int e = l > EV_LINE_MAX ? -EMSGSIZE : ev_parse_json(line, l, &ev, in->scratch, &why);
        if (e == -EMSGSIZE && !why)
            why = "line longer than 1048576 bytes";
        if (e < 0) {
            reject(p, index, why ? why : "invalid event");
            continue;
        }
        const struct conf_source *cs =
            in->o.conf ? conf_source(in->o.conf, ev.source[0] ? ev.source : "replay") : NULL;
        if (cs && (cs->driver == CONF_DRIVER_BLE || cs->driver == CONF_DRIVER_USB)) {
            /* the hub numbers those sources' events itself: a client's seqs would collide */
            char msg[CONF_ID_SIZE + 80];
            snprintf(msg, sizeof msg, "source \"%s\" is read by the hub itself (driver %s), not "
                     "through the ingest socket", cs->name,
                     cs->driver == CONF_DRIVER_BLE ? "ble" : "usb");
            reject(p, index, msg);
            continue;
        }
        if (cs && cs->participant[0] && strcmp(cs->participant, ev.participant) != 0) {
            char msg[3 * CONF_ID_SIZE + 64];
            snprintf(msg, sizeof msg, "source \"%s\" belongs to participant \"%s\", not \"%s\"",
                     cs->name, cs->participant, ev.participant);
            reject(p, index, msg);
            continue;
        }
        if (ev.ts > now_ms + in->o.max_future_ms) {
            char msg[128];
            snprintf(msg, sizeof msg, "ts %lld is %lld s ahead of the hub's clock (max_future)",
                     (long long)ev.ts, (long long)((ev.ts - now_ms) / 1000));
            reject(p, index, msg);
            continue;
        }
        if (p->n_ev == p->cap_ev && grow(p) < 0)
            return -ENOMEM;
        p->samples[p->n_ev] = NULL;
        p->line_of[p->n_ev] = index;
        if (ev.type == EV_ACCEL && ev.u.accel.n) {
            float(*s)[3] = malloc(ev.u.accel.n * sizeof *s);
            if (!s)
                return -ENOMEM;
            memcpy(s, ev.u.accel.g, ev.u.accel.n * sizeof *s);
            ev.u.accel.g = (const float(*)[3])s;
            p->samples[p->n_ev] = s;
        }
        p->ev[p->n_ev++] = ev;
    }
    return 0;
}

static int submit(struct ingest *in, struct pending *p, struct store_writer *w, int64_t now_ms)
{
    struct store_event *se = calloc(p->n_ev, sizeof *se);
    char **bodies = calloc(p->n_ev, sizeof *bodies);
    int e = 0;
    if (!se || !bodies) {
        e = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < p->n_ev; i++) {
        const struct event *ev = &p->ev[i];
        bodies[i] = ev_to_json(ev);
        if (!bodies[i]) {
            e = -ENOMEM;
            goto out;
        }
        se[i] = (struct store_event){
            .source = ev->source[0] ? ev->source : "replay",
            .seq = ev->seq,
            .has_seq = ev->has_seq,
            .ts = ev->ts,
            .participant = ev->participant,
            .type = ev_type_name(ev->type),
            .body = bodies[i],
            .body_len = strlen(bodies[i]),
            .received = now_ms,
        };
    }
    p->received = now_ms;
    e = store_submit_events(w, p->token, se, p->n_ev);
out:
    if (bodies)
        for (size_t i = 0; i < p->n_ev; i++)
            free(bodies[i]);
    free(bodies);
    free(se);
    return e;
}

static int read_one(struct ingest *in, struct store_writer *w, int64_t now_ms)
{
    zmq_msg_t part;
    struct pending *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->errors = json_array();
    int more = 1, frame = 0, oversize = 0, err = 0;
    size_t total = 0, line_index = 0;
    while (more) {
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, in->sock, frame == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            int e = errno;
            zmq_msg_close(&part);
            pending_free(p);
            return e == EAGAIN ? 0 : -e;
        }
        more = zmq_msg_more(&part);
        size_t len = zmq_msg_size(&part);
        const char *data = zmq_msg_data(&part);
        if (frame == 0) {
            p->identity_len = len < IDENTITY_MAX ? len : IDENTITY_MAX;
            memcpy(p->identity, data, p->identity_len);
        } else if (frame == 1 && len == 0 && more) {
            p->envelope = 1;
        } else if (!oversize && !err) {
            total += len;
            if (total > in->o.max_message)
                oversize = 1;
            else
                err = parse_payload(in, p, data, len, &line_index, now_ms);
        }
        zmq_msg_close(&part);
        frame++;
    }
    in->st.messages++;
    if (oversize || err) {
        char msg[128];
        if (oversize)
            snprintf(msg, sizeof msg, "message larger than %zu bytes: nothing stored", in->o.max_message);
        else if (err == -E2BIG)
            snprintf(msg, sizeof msg, "more than %zu lines in one message: nothing stored", in->o.max_lines);
        else
            snprintf(msg, sizeof msg, "cannot process message: %s", strerror(-err));
        in->st.rejected++;
        reply_error(in, p->identity, p->identity_len, p->envelope, msg);
        pending_free(p);
        return 1;
    }
    in->st.lines += line_index;
    in->st.rejected += p->rejected;
    if (p->n_ev == 0) {
        reply_ack(in, p, 0, 0);
        pending_free(p);
        return 1;
    }
    p->token = in->next_token++;
    int e = submit(in, p, w, now_ms);
    if (e < 0) {
        in->st.busy++;
        reply_error(in, p->identity, p->identity_len, p->envelope,
                    e == -EAGAIN    ? "busy: nothing stored, resend later"
                    : e == -EMSGSIZE ? "too large for one store request (64 MiB encoded): "
                                       "nothing stored, send fewer lines per message"
                                     : "store refused the batch: nothing stored");
        pending_free(p);
        return 1;
    }
    if (in->tail)
        in->tail->next = p;
    else
        in->head = p;
    in->tail = p;
    in->n_pending++;
    return 1;
}

int ingest_on_readable(struct ingest *in, struct store_writer *w, int64_t now_ms)
{
    int n = 0;
    while (ingest_can_read(in)) {
        int r = read_one(in, w, now_ms);
        if (r <= 0)
            return r < 0 ? r : n;
        n++;
    }
    in->st.queue_full++; /* the loop reads on once store replies make room */
    return n;
}

int ingest_on_store_reply(struct ingest *in, uint64_t token, int status_all,
                          const uint8_t *per_event, size_t n, ingest_push_fn push, void *ud)
{
    struct pending *p = in->head, *prev = NULL;
    while (p && p->token != token) {
        prev = p;
        p = p->next;
    }
    if (!p)
        return 0;
    if (prev)
        prev->next = p->next;
    else
        in->head = p->next;
    if (in->tail == p)
        in->tail = prev;
    in->n_pending--;
    if (status_all < 0) {
        in->st.store_errors++;
        reply_error(in, p->identity, p->identity_len, p->envelope,
                    "store error: nothing stored, resend later");
        pending_free(p);
        return 1;
    }
    size_t accepted = 0, duplicate = 0;
    for (size_t i = 0; i < p->n_ev && i < n; i++) {
        if (per_event[i] == STORE_INSERTED) {
            accepted++;
            push(ud, &p->ev[i], p->received);
        } else if (per_event[i] == STORE_DUPLICATE) {
            duplicate++;
        } else {
            reject(p, p->line_of[i], "not stored: resend");
        }
    }
    in->st.accepted += accepted;
    in->st.duplicate += duplicate;
    reply_ack(in, p, accepted, duplicate);
    pending_free(p);
    return 1;
}
