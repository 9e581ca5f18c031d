/* Control socket: ROUTER, JSON requests validated before the daemon's handler sees them.
 *
 * Envelopes: a REQ client's message arrives as [routing id][""][body], a DEALER's as
 * [routing id][body]; the reply mirrors whichever was received. Replies are sent with
 * ZMQ_DONTWAIT and ROUTER_MANDATORY so a vanished or stalled client costs a counted drop,
 * never a blocked loop.
 *
 * Threading: loop thread only. */
#include "daemon/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ROUTING_ID_MAX 256
/* libzmq disconnects a peer that sends a bigger frame; below this we answer politely. */
#define CONTROL_HARD_MAX (1 << 20)

struct control {
    void *sock;
    char *endpoint;
    struct control_stats st;
};

struct command {
    const char *name;
    int needs_participant;
    int takes_feature;
};

static const struct command commands[] = {
    {"status", 0, 0},
    {"sources", 0, 0},
    {"participants", 0, 0},
    {"latest", 1, 1},
    {"nudges", 1, 0},
};

static int set_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof v) == 0 ? 0 : -zmq_errno();
}

struct control *control_new(void *zctx, const char *endpoint, const struct curve_opts *curve, int *err)
{
    char bound[256];
    int r = -ENOMEM;
    struct control *c = calloc(1, sizeof *c);
    if (!c)
        goto fail;
    if (!endpoint)
        endpoint = CONTROL_DEFAULT_ENDPOINT;
    c->sock = zmq_socket(zctx, ZMQ_ROUTER);
    if (!c->sock) {
        r = -zmq_errno();
        goto fail;
    }
    int64_t hard = CONTROL_HARD_MAX;
    if ((r = set_int(c->sock, ZMQ_LINGER, 0)) < 0 ||
        (r = set_int(c->sock, ZMQ_ROUTER_MANDATORY, 1)) < 0 ||
        (r = set_int(c->sock, ZMQ_RCVHWM, 1000)) < 0)
        goto fail;
    if (zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &hard, sizeof hard) != 0) {
        r = -zmq_errno();
        goto fail;
    }
    if ((r = zap_secure_bind(c->sock, endpoint, curve, bound, sizeof bound)) < 0)
        goto fail;
    c->endpoint = strdup(bound);
    if (!c->endpoint) {
        r = -ENOMEM;
        goto fail;
    }
    return c;
fail:
    control_free(c);
    if (err)
        *err = r;
    return NULL;
}

void control_free(struct control *c)
{
    if (!c)
        return;
    if (c->sock)
        zmq_close(c->sock);
    free(c->endpoint);
    free(c);
}

void *control_socket(struct control *c)
{
    return c ? c->sock : NULL;
}

const char *control_endpoint(const struct control *c)
{
    return c ? c->endpoint : NULL;
}

void control_get_stats(const struct control *c, struct control_stats *ret)
{
    if (ret)
        *ret = c ? c->st : (struct control_stats){0};
}

/* Same alphabets as the spec's participant IDs and the feature catalogue's names. */
static int name_ok(const char *s, size_t max, int allow_dot)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || (allow_dot && ch == '.')))
            return 0;
    }
    return n >= 1 && n <= max;
}

int control_validate(const json_t *req, const char **ret_cmd, char *why, size_t cap)
{
    if (!json_is_object(req)) {
        snprintf(why, cap, "request must be a JSON object");
        return -EINVAL;
    }
    const json_t *jc = json_object_get(req, "cmd");
    if (!json_is_string(jc)) {
        snprintf(why, cap, "request needs \"cmd\" (a string)");
        return -EINVAL;
    }
    const char *cmd = json_string_value(jc);
    const struct command *k = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, cmd))
            k = &commands[i];
    if (!k) {
        snprintf(why, cap, "unknown command '%.64s' (known: status, sources, participants, latest, nudges)", cmd);
        return -EINVAL;
    }
    const json_t *jp = json_object_get(req, "participant");
    if (k->needs_participant) {
        if (!json_is_string(jp)) {
            snprintf(why, cap, "%s needs \"participant\" (a string)", k->name);
            return -EINVAL;
        }
        if (!name_ok(json_string_value(jp), 64, 0)) {
            snprintf(why, cap, "participant must be 1 to 64 of A-Z a-z 0-9 _ -");
            return -EINVAL;
        }
    }
    const json_t *jf = json_object_get(req, "feature");
    if (jf && !json_is_null(jf)) {
        if (!k->takes_feature) {
            snprintf(why, cap, "%s takes no \"feature\"", k->name);
            return -EINVAL;
        }
        if (!json_is_string(jf) || !name_ok(json_string_value(jf), 128, 1)) {
            snprintf(why, cap, "feature must be a string of 1 to 128 of A-Z a-z 0-9 _ - .");
            return -EINVAL;
        }
    }
    if (ret_cmd)
        *ret_cmd = k->name;
    return 0;
}

/* Builds the reply text for one request body. Returns a malloc'ed string or NULL (OOM). */
static char *serve(struct control *c, const char *body, size_t len, control_handler_fn h, void *ud)
{
    char why[160];
    json_t *reply = NULL, *req = NULL;
    const char *cmd = NULL;

    if (len > CONTROL_REQUEST_MAX) {
        snprintf(why, sizeof why, "request larger than %d bytes", CONTROL_REQUEST_MAX);
        goto invalid;
    }
    json_error_t jerr;
    req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req) {
        snprintf(why, sizeof why, "request is not valid JSON: %.100s (at byte %d)", jerr.text, jerr.position);
        goto invalid;
    }
    if (control_validate(req, &cmd, why, sizeof why) < 0)
        goto invalid;

    reply = json_object();
    if (!reply)
        goto oom;
    int r = h ? h(cmd, req, reply, ud) : -ENOSYS;
    if (r < 0 || json_object_get(reply, "error")) {
        c->st.handler_errors++;
        const json_t *e = json_object_get(reply, "error");
        if (!json_is_string(e)) {
            json_object_clear(reply);
            json_object_set_new(reply, "error", json_string(r == -ENOSYS ? "not implemented" : strerror(-r)));
        }
    }
    goto dump;
invalid:
    c->st.invalid++;
    json_decref(reply);
    reply = json_pack("{s:s}", "error", why);
    if (!reply)
        goto oom;
dump:
    json_decref(req);
    {
        /* jansson refuses invalid UTF-8 on input, so anything the handler stored is encodable;
         * a failure here can only be memory. */
        char *out = json_dumps(reply, JSON_COMPACT);
        json_decref(reply);
        return out;
    }
oom:
    json_decref(req);
    json_decref(reply);
    return NULL;
}

static int send_part(void *s, const void *d, size_t n, int more)
{
    return zmq_send(s, d, n, (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0 ? -zmq_errno() : 0;
}

/* Reads one whole message: the routing id, then up to two more frames (delimiter, body).
 * Extra frames are drained and mark the request malformed. Returns 1, 0 (nothing pending)
 * or a negative errno. */
static int recv_request(void *s, zmq_msg_t *f, int *nf, int *malformed)
{
    int more = 1;
    *nf = 0;
    *malformed = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
            int e = zmq_errno();
            zmq_msg_close(&m);
            if (*nf == 0)
                return e == EAGAIN || e == EINTR ? 0 : -e;
            *malformed = 1;
            break;
        }
        more = zmq_msg_more(&m);
        if (*nf < 3)
            f[(*nf)++] = m;
        else {
            zmq_msg_close(&m);
            *malformed = 1;
        }
    }
    return 1;
}

int control_on_readable(struct control *c, control_handler_fn h, void *userdata)
{
    if (!c)
        return -EINVAL;
    int served = 0;
    while (served < CONTROL_BATCH_MAX) {
        zmq_msg_t f[3];
        int nf, malformed;
        int r = recv_request(c->sock, f, &nf, &malformed);
        if (r <= 0)
            return r < 0 ? r : served;
        served++;
        c->st.requests++;

        /* f[0] is the routing id. A REQ envelope adds an empty delimiter before the body. */
        int delim = nf >= 2 && zmq_msg_size(&f[1]) == 0;
        const char *body = "";
        size_t blen = 0;
        if (delim && nf == 3) {
            body = zmq_msg_data(&f[2]);
            blen = zmq_msg_size(&f[2]);
        } else if (!delim && nf == 2) {
            body = zmq_msg_data(&f[1]);
            blen = zmq_msg_size(&f[1]);
        } else
            malformed = 1;

        char *out;
        if (malformed || zmq_msg_size(&f[0]) > ROUTING_ID_MAX) {
            c->st.invalid++;
            out = strdup("{\"error\":\"malformed request: send one frame of JSON\"}");
        } else
            out = serve(c, body, blen, h, userdata);

        int s = out ? 0 : -ENOMEM;
        if (!s)
            s = send_part(c->sock, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), 1);
        if (!s && delim)
            s = send_part(c->sock, "", 0, 1);
        if (!s)
            s = send_part(c->sock, out, strlen(out), 0);
        /* EHOSTUNREACH: the client left; EAGAIN: it is not reading. Either way its reply is
         * dropped and the next client is served. */
        if (s < 0)
            c->st.replies_dropped++;
        free(out);
        for (int i = 0; i < nf; i++)
            zmq_msg_close(&f[i]);
        if (s < 0 && s != -EHOSTUNREACH && s != -EAGAIN && s != -ENOMEM)
            return s;
    }
    return served;
}
