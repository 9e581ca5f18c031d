/* CURVE authentication for engaged's ZeroMQ sockets: the ZAP handler (RFC 27), the key
 * file readers, and the one place that decides how an endpoint may be bound.
 *
 * Policy (docs/topics.md, "Security"):
 *   - ipc:// and inproc:// endpoints use the NULL mechanism; access control is the socket
 *     file's mode (0660) and its directory. Their listeners carry ZAP_DOMAIN_LOCAL, the only
 *     domain in which the handler accepts NULL.
 *   - tcp:// endpoints are always CURVE servers with a per-socket ZAP domain; the handler
 *     accepts a client only if its public key is on that domain's allowlist.
 *   - No other transport is bound.
 *
 * libzmq accepts every CURVE client when no handler is bound to inproc://zeromq.zap.01, so
 * the handler must be bound (zap_new) before any CURVE listener and must outlive it. */
#ifndef ENGAGED_ZAP_H
#define ENGAGED_ZAP_H

#include <stddef.h>
#include <stdint.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* ZAP domain set on ipc listeners: NULL mechanism allowed. */
#define ZAP_DOMAIN_LOCAL "engaged.local"

#define CURVE_KEY_LEN 32     /* binary key */
#define CURVE_Z85_LEN 40     /* Z85 text, without the terminating NUL */
#define CURVE_ALLOWLIST_MAX 4096
#define CURVE_KEYFILE_MAX_LINE 512

/* Where reading a key file went wrong, for "FILE:LINE: message" logs. line is 0 when the
 * problem concerns the whole file (missing, unreadable, bad mode, no key). */
struct curve_err {
    int line;
    char msg[160];
};

/* A list of client public keys (binary). Owned by the caller: release with
 * curve_keylist_release(). */
struct curve_keylist {
    uint8_t (*keys)[CURVE_KEY_LEN];
    size_t n;
};

/* How to secure one socket's tcp:// endpoints. Everything is borrowed and must outlive the
 * socket's bind call, except zap, which must outlive the socket itself. */
struct curve_opts {
    const char *secret_key;               /* server secret key, Z85; NULL = no CURVE */
    const struct curve_keylist *clients;  /* allowed client public keys */
    struct zap *zap;                      /* the running handler (zap_new) */
    const char *domain;                   /* ZAP domain for this socket, e.g. "publish" */
};

/* Checks the Z85 alphabet and length; decodes into key when key is non-NULL. 0 or -EINVAL. */
int curve_z85_decode(const char *z85, uint8_t key[CURVE_KEY_LEN]);

/* Reads a secret key file (format in docs/topics.md: "secret = Z85" with an optional
 * "public = Z85" that must match, or a bare 40-character Z85 line; '#' comments).
 * A file that others (not owner, not group) may read or write is refused with -EACCES: a
 * leaked key lets anyone impersonate its owner. Group access is accepted because systemd's
 * LoadCredential= grants the service user read access through an ACL, which shows as group
 * bits, and root:engaged 0440 is a common deployment. Returns 0, -ENOENT/-EACCES/-errno when
 * it cannot be read, -EINVAL for bad content. ret_err may be NULL. */
int curve_read_key_file(const char *path, char z85_out[CURVE_Z85_LEN + 1], struct curve_err *ret_err);

/* Like curve_read_key_file, also returning the public key (derived from the secret when the
 * file has no "public =" line). Used by clients such as engagectl. */
int curve_read_keypair(const char *path, char public_out[CURVE_Z85_LEN + 1],
                       char secret_out[CURVE_Z85_LEN + 1], struct curve_err *ret_err);

/* Reads an allowlist: one Z85 public key per line, optionally followed by whitespace and a
 * '#' comment; lines starting with '#' (that are not a key) and blank lines are ignored.
 * Duplicates are kept once. At most CURVE_ALLOWLIST_MAX keys (-E2BIG beyond). Any access
 * mode is fine: public keys are not secret. On success *ret owns the keys. */
int curve_read_allowlist(const char *path, struct curve_keylist *ret, struct curve_err *ret_err);
void curve_keylist_release(struct curve_keylist *l);

/* Binds socket to endpoint under the policy above:
 *   ipc://PATH  the parent directory must exist (-ENOENT otherwise); the socket file is
 *               chmod'ed to 0660 after the bind; abstract (@name) and wildcard names work.
 *   inproc://   bound as is.
 *   tcp://      needs curve with a secret key, a zap and a non-empty client list (-EINVAL);
 *               registers the clients in curve->domain, then binds as a CURVE server.
 *   others      -EPROTONOSUPPORT.
 * Socket options are snapshot per listener by libzmq, so one socket can carry NULL ipc and
 * CURVE tcp endpoints; this function sets the security options before each bind.
 * ret_endpoint (may be NULL) receives the bound address (ZMQ_LAST_ENDPOINT), e.g. the real
 * port for "tcp://127.0.0.1:*". Returns 0 or a negative errno. */
int zap_secure_bind(void *socket, const char *endpoint, const struct curve_opts *curve,
                    char *ret_endpoint, size_t ret_len);

/* ---- the handler ---- */

struct zap;

struct zap_stats {
    uint64_t requests;
    uint64_t accepted;
    uint64_t denied;
    uint64_t malformed;    /* requests that did not follow RFC 27 (answered 500) */
};

/* Creates the REP socket and binds it to ZAP_ENDPOINT in zctx (borrowed). There can be one
 * per context: -EADDRINUSE otherwise. Returns NULL with *ret_err set on failure. */
struct zap *zap_new(void *zctx, int *ret_err);
void zap_free(struct zap *z);

/* Adds key to domain's allowlist (creating the domain). 0, -EINVAL or -ENOMEM. */
int zap_allow(struct zap *z, const char *domain, const uint8_t key[CURVE_KEY_LEN]);
/* Lets domain accept the NULL mechanism (ZAP_DOMAIN_LOCAL is created so). */
int zap_allow_null(struct zap *z, const char *domain);
/* Number of CURVE keys allowed in domain (0 for an unknown domain). */
size_t zap_domain_keys(const struct zap *z, const char *domain);

/* The REP socket, polled by the daemon's loop (ZMQ_POLLIN). Borrowed. */
void *zap_socket(struct zap *z);

/* Answers pending ZAP requests without blocking (at most 64 per call; the loop serves the
 * socket again next turn while more wait): 200 for a CURVE client whose key is on
 * its domain's allowlist (user id = the key in Z85) or NULL in a domain that allows it, 400
 * for anything else. Returns the number of requests answered or a negative errno. */
int zap_on_readable(struct zap *z);

void zap_get_stats(const struct zap *z, struct zap_stats *ret);

#endif
