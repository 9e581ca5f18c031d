/* The control socket (spec §5) that engagectl talks to: JSON request in, JSON reply out.
 *
 * A ROUTER socket, so one client that never reads its reply cannot stop the others (a REP
 * must finish each exchange before the next); REQ clients (engagectl, pyzmq) and DEALER
 * clients both work. Requests are validated here (size, JSON, known command, argument types)
 * so the handler only ever sees well-formed commands. The protocol is documented for users
 * in docs/topics.md ("Control protocol"). */
#ifndef ENGAGED_CONTROL_H
#define ENGAGED_CONTROL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/zap.h"

#define CONTROL_DEFAULT_ENDPOINT "ipc:///run/engaged/control"
#define CONTROL_REQUEST_MAX (64 * 1024)     /* bytes of JSON per request */
#define CONTROL_BATCH_MAX 64                /* requests served per control_on_readable call */

/* Serves one validated request. cmd is the request's "cmd" (one of status, sources,
 * participants, latest, nudges); request is the whole object (borrowed; "participant" is a
 * valid participant ID when the command needs one, "feature" is absent or a valid name).
 * reply is an empty object owned by control: fill it (json_object_set_new).
 * Return 0, or a negative errno; on error the client gets {"error": reply's "error" if the
 * handler set one, else strerror}. A reply with an "error" key is an error reply either way. */
typedef int (*control_handler_fn)(const char *cmd, const json_t *request, json_t *reply, void *userdata);

struct control_stats {
    uint64_t requests;          /* messages received */
    uint64_t invalid;           /* answered with an error before reaching the handler */
    uint64_t handler_errors;    /* the handler returned < 0 or set "error" */
    uint64_t replies_dropped;   /* the client had gone or its queue was full */
};

struct control;

/* Creates the ROUTER socket in zctx (borrowed) and binds endpoint (NULL = the default) with
 * zap_secure_bind: an ipc socket file gets mode 0660; tcp needs curve (may be NULL otherwise).
 * Returns NULL and sets *err (may be NULL) on failure. */
struct control *control_new(void *zctx, const char *endpoint, const struct curve_opts *curve, int *err);
void control_free(struct control *c);

/* The ROUTER socket, polled for ZMQ_POLLIN. Borrowed. */
void *control_socket(struct control *c);
/* The bound address (real port for tcp "*" ports). Borrowed. */
const char *control_endpoint(const struct control *c);

/* Answers up to CONTROL_BATCH_MAX pending requests without blocking, calling h for each valid
 * one (h may be NULL: valid commands then get {"error":"not implemented"}). Garbage of any
 * kind gets an error reply, never a crash. Returns the number of requests read (more may be
 * pending: the loop serves the socket again next turn), or a negative errno. */
int control_on_readable(struct control *c, control_handler_fn h, void *userdata);

void control_get_stats(const struct control *c, struct control_stats *ret);

/* Checks a request object. Returns 0 and sets *ret_cmd (borrowed from req), or -EINVAL with
 * a reason for the client in why. Exposed for engagectl and tests. */
int control_validate(const json_t *req, const char **ret_cmd, char *why, size_t cap);

#endif
