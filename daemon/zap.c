/* CURVE key files, secure binding and the ZAP handler (RFC 27: ZeroMQ Authentication
 * Protocol).
 *
 * libzmq asks the handler about every CURVE handshake, and about NULL handshakes on listeners
 * that carry a ZAP domain, by sending a request over inproc://zeromq.zap.01 and waiting for the
 * reply before the peer's connection becomes usable. The handler runs in the daemon's loop
 * thread (it is just another socket in its poll set), so a slow loop delays new connections but
 * never established ones.
 *
 * Threading: everything here belongs to the loop thread, like all of engaged's sockets. */
#include "daemon/zap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#define ZAP_DOMAIN_MAX 254          /* libzmq's limit for ZMQ_ZAP_DOMAIN is < 256 */
#define KEYFILE_MAX_BYTES (1 << 20) /* 4096 keys with comments fit easily */
#define ZAP_REQUEST_FRAMES 8        /* 7 for CURVE; anything beyond is read and dropped */
#define ZAP_FRAME_MAX 512
#define ZAP_BATCH_MAX 64            /* requests per call, so a connection flood cannot hog the loop */

static const char z85_alphabet[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

static int __attribute__((format(printf, 4, 5)))
fail(struct curve_err *e, int line, int r, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        e->line = line;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return r;
}

int curve_z85_decode(const char *z85, uint8_t key[CURVE_KEY_LEN])
{
    uint8_t tmp[CURVE_KEY_LEN];
    if (!z85 || strlen(z85) != CURVE_Z85_LEN)
        return -EINVAL;
    /* Each group of 5 characters encodes a 32-bit big-endian word; groups whose value
     * exceeds 2^32 - 1 are invalid, which is also why no key can start with '$' or '#'. */
    for (size_t g = 0; g < CURVE_Z85_LEN; g += 5) {
        uint64_t v = 0;
        for (size_t i = g; i < g + 5; i++) {
            const char *at = strchr(z85_alphabet, z85[i]);
            if (!at)
                return -EINVAL;
            v = v * 85 + (uint64_t)(at - z85_alphabet);
        }
        if (v > UINT32_MAX)
            return -EINVAL;
    }
    if (!zmq_z85_decode(key ? key : tmp, z85))
        return -EINVAL;
    explicit_bzero(tmp, sizeof tmp);
    return 0;
}

/* A key is 40 Z85 characters, standing alone or followed by whitespace and an optional '#'
 * comment. '#' is a Z85 character but never the first of a valid key (see curve_z85_decode),
 * so a line starting with '#' is always a comment. Returns 0, or -EINVAL with why filled in
 * the terms a person editing the file needs. */
static int parse_key(const char *s, char out[CURVE_Z85_LEN + 1], char *why, size_t cap)
{
    size_t n = strcspn(s, " \t");
    const char *rest = s + n + strspn(s + n, " \t");
    if (n != CURVE_Z85_LEN) {
        snprintf(why, cap, "key has %zu characters, a Z85 CURVE key has %d", n, CURVE_Z85_LEN);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if (!strchr(z85_alphabet, s[i])) {
            snprintf(why, cap, "character %zu ('%c') is not in the Z85 alphabet", i + 1, s[i]);
            return -EINVAL;
        }
    memcpy(out, s, CURVE_Z85_LEN);
    out[CURVE_Z85_LEN] = '\0';
    if (curve_z85_decode(out, NULL) < 0)
        snprintf(why, cap, "not a valid Z85 key (a 5-character group is out of range)");
    else if (*rest && *rest != '#')
        snprintf(why, cap, "unexpected text after the key (comments start with '#')");
    else
        return 0;
    explicit_bzero(out, CURVE_Z85_LEN + 1);
    return -EINVAL;
}

typedef int (*line_fn)(void *ud, char *line, int lineno, struct curve_err *e);

/* Reads path line by line with trimmed lines (blank lines skipped). secret: refuse files
 * others may access. */
static int for_each_line(const char *path, int secret, line_fn fn, void *ud, struct curve_err *e)
{
    struct stat st;
    FILE *f = NULL;
    int r, fd;
    if (!path || !*path)
        return fail(e, 0, -EINVAL, "no file name given");
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
        return fail(e, 0, -errno, "cannot open: %s", strerror(errno));
    if (fstat(fd, &st) < 0)
        r = fail(e, 0, -errno, "cannot stat: %s", strerror(errno));
    else if (!S_ISREG(st.st_mode))
        r = fail(e, 0, -EINVAL, "not a regular file");
    else if (secret && (st.st_mode & 0007))
        r = fail(e, 0, -EACCES, "secret key file has mode %04o, readable or writable by others; "
                 "chmod 0400 (or 0440 with a dedicated group)", (unsigned)(st.st_mode & 07777));
    else if (st.st_size > KEYFILE_MAX_BYTES)
        r = fail(e, 0, -EFBIG, "file larger than %d bytes", KEYFILE_MAX_BYTES);
    else if (!(f = fdopen(fd, "r")))
        r = fail(e, 0, -errno, "cannot read: %s", strerror(errno));
    else
        r = 0;
    if (r < 0) {
        close(fd);
        return r;
    }
    char buf[CURVE_KEYFILE_MAX_LINE + 2];
    int lineno = 0;
    while (fgets(buf, sizeof buf, f)) {
        lineno++;
        size_t len = strlen(buf);
        if (len && buf[len - 1] == '\n')
            buf[--len] = '\0';
        else if (!feof(f)) {
            r = fail(e, lineno, -EINVAL, "line longer than %d characters", CURVE_KEYFILE_MAX_LINE);
            break;
        }
        while (len && (buf[len - 1] == ' ' || buf[len - 1] == '\t' || buf[len - 1] == '\r'))
            buf[--len] = '\0';
        char *s = buf + strspn(buf, " \t");
        if (!*s)
            continue;
        r = fn(ud, s, lineno, e);
        if (r < 0)
            break;
    }
    if (r == 0 && ferror(f))
        r = fail(e, lineno, -EIO, "read error");
    explicit_bzero(buf, sizeof buf);
    fclose(f);
    return r;
}

struct keypair_parse {
    char pub[CURVE_Z85_LEN + 1];
    char sec[CURVE_Z85_LEN + 1];
};

static int keypair_line(void *ud, char *s, int lineno, struct curve_err *e)
{
    struct keypair_parse *kp = ud;
    char key[CURVE_Z85_LEN + 1];
    char why[96];

    if (*s == '#')
        return 0;
    if (parse_key(s, key, why, sizeof why) == 0) {
        if (kp->sec[0])
            return fail(e, lineno, -EINVAL, "second secret key");
        memcpy(kp->sec, key, sizeof key);
        explicit_bzero(key, sizeof key);
        return 0;
    }
    size_t nlen = strcspn(s, " \t=");
    const char *v = s + nlen + strspn(s + nlen, " \t");
    if (*v != '=')
        return fail(e, lineno, -EINVAL, "expected 'secret = KEY', 'public = KEY' or a Z85 key");
    v++;
    v += strspn(v, " \t");
    char *target;
    if (nlen == 6 && !strncmp(s, "secret", 6))
        target = kp->sec;
    else if (nlen == 6 && !strncmp(s, "public", 6))
        target = kp->pub;
    else
        return fail(e, lineno, -EINVAL, "unknown key name '%.*s' (expected secret or public)",
                    (int)(nlen > 32 ? 32 : nlen), s);
    if (target[0])
        return fail(e, lineno, -EINVAL, "'%.6s' given twice", s);
    if (parse_key(v, key, why, sizeof why) < 0)
        return fail(e, lineno, -EINVAL, "%s", why);
    memcpy(target, key, sizeof key);
    explicit_bzero(key, sizeof key);
    return 0;
}

int curve_read_keypair(const char *path, char public_out[CURVE_Z85_LEN + 1],
                       char secret_out[CURVE_Z85_LEN + 1], struct curve_err *ret_err)
{
    struct keypair_parse kp = {{0}, {0}};
    int r = for_each_line(path, 1, keypair_line, &kp, ret_err);
    if (r < 0)
        goto out;
    if (!kp.sec[0]) {
        r = fail(ret_err, 0, -EINVAL, "no secret key in file");
        goto out;
    }
    char derived[CURVE_Z85_LEN + 1];
    if (zmq_curve_public(derived, kp.sec) != 0) {
        r = fail(ret_err, 0, zmq_errno() == ENOTSUP ? -ENOTSUP : -EINVAL,
                 "cannot derive the public key: %s", zmq_strerror(zmq_errno()));
        goto out;
    }
    if (kp.pub[0] && strcmp(kp.pub, derived) != 0) {
        r = fail(ret_err, 0, -EINVAL, "public key does not belong to the secret key");
        goto out;
    }
    if (public_out)
        memcpy(public_out, derived, sizeof derived);
    if (secret_out)
        memcpy(secret_out, kp.sec, sizeof kp.sec);
    r = 0;
out:
    explicit_bzero(&kp, sizeof kp);
    return r;
}

int curve_read_key_file(const char *path, char z85_out[CURVE_Z85_LEN + 1], struct curve_err *ret_err)
{
    return curve_read_keypair(path, NULL, z85_out, ret_err);
}

static int keylist_add(struct curve_keylist *l, size_t *cap, const uint8_t key[CURVE_KEY_LEN])
{
    for (size_t i = 0; i < l->n; i++)
        if (!memcmp(l->keys[i], key, CURVE_KEY_LEN))
            return 0;
    if (l->n >= CURVE_ALLOWLIST_MAX)
        return -E2BIG;
    if (l->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        void *p = realloc(l->keys, ncap * CURVE_KEY_LEN);
        if (!p)
            return -ENOMEM;
        l->keys = p;
        *cap = ncap;
    }
    memcpy(l->keys[l->n++], key, CURVE_KEY_LEN);
    return 0;
}

struct allow_parse {
    struct curve_keylist *list;
    size_t cap;
};

static int allow_line(void *ud, char *s, int lineno, struct curve_err *e)
{
    struct allow_parse *ap = ud;
    char z85[CURVE_Z85_LEN + 1];
    uint8_t key[CURVE_KEY_LEN];
    char why[96];

    if (*s == '#')
        return 0;
    if (parse_key(s, z85, why, sizeof why) < 0)
        return fail(e, lineno, -EINVAL, "%s", why);
    curve_z85_decode(z85, key);
    int r = keylist_add(ap->list, &ap->cap, key);
    if (r == -E2BIG)
        return fail(e, lineno, r, "more than %d keys", CURVE_ALLOWLIST_MAX);
    if (r < 0)
        return fail(e, lineno, r, "%s", strerror(-r));
    return 0;
}

int curve_read_allowlist(const char *path, struct curve_keylist *ret, struct curve_err *ret_err)
{
    if (!ret)
        return -EINVAL;
    struct curve_keylist l = {NULL, 0};
    struct allow_parse ap = {&l, 0};
    int r = for_each_line(path, 0, allow_line, &ap, ret_err);
    if (r < 0) {
        curve_keylist_release(&l);
        return r;
    }
    *ret = l;
    return 0;
}

void curve_keylist_release(struct curve_keylist *l)
{
    if (!l)
        return;
    free(l->keys);
    l->keys = NULL;
    l->n = 0;
}

/* ---- binding ---- */

static int set_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof v) == 0 ? 0 : -zmq_errno();
}

static int set_str(void *s, int opt, const char *v)
{
    return zmq_setsockopt(s, opt, v, strlen(v)) == 0 ? 0 : -zmq_errno();
}

/* The socket file of an ipc endpoint is created by bind(), so its directory must exist; a
 * missing RuntimeDirectory would otherwise surface as a bare ENOENT from libzmq. */
static int ipc_check_parent(const char *path)
{
    if (path[0] == '@' || !strcmp(path, "*"))
        return 0; /* abstract namespace or libzmq-chosen name: no directory to check */
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return -ENAMETOOLONG;
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0; /* relative to the working directory, or in / */
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    size_t n = (size_t)(slash - path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    struct stat st;
    if (stat(dir, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int bind_and_report(void *s, const char *endpoint, char *ret, size_t len)
{
    if (zmq_bind(s, endpoint) != 0)
        return -zmq_errno();
    if (ret && len) {
        size_t l = len;
        if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ret, &l) != 0)
            snprintf(ret, len, "%s", endpoint);
    }
    return 0;
}

int zap_secure_bind(void *s, const char *endpoint, const struct curve_opts *c, char *ret_endpoint,
                    size_t ret_len)
{
    char last[256];
    int r;

    if (!s || !endpoint)
        return -EINVAL;
    if (!strncmp(endpoint, "inproc://", 9))
        return bind_and_report(s, endpoint, ret_endpoint, ret_len);

    if (!strncmp(endpoint, "ipc://", 6)) {
        r = ipc_check_parent(endpoint + 6);
        if (r < 0)
            return r;
        if (zmq_has("curve") && (r = set_int(s, ZMQ_CURVE_SERVER, 0)) < 0)
            return r;
        if ((r = set_str(s, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN_LOCAL)) < 0)
            return r;
        if ((r = bind_and_report(s, endpoint, last, sizeof last)) < 0)
            return r;
        const char *path = last + 6;
        /* chmod after bind rather than umask around it: umask is process-wide and the store
         * thread may be creating files. The window is harmless with the usual umask (022 or
         * 027 leave the socket unwritable, hence unconnectable, by group and others). */
        if (strncmp(last, "ipc://", 6) == 0 && path[0] != '@' && chmod(path, 0660) < 0) {
            r = -errno;
            zmq_unbind(s, last);
            return r;
        }
        if (ret_endpoint && ret_len)
            snprintf(ret_endpoint, ret_len, "%s", last);
        return 0;
    }

    if (!strncmp(endpoint, "tcp://", 6)) {
        if (!c || !c->secret_key || !c->zap || !c->domain || !c->clients || c->clients->n == 0)
            return -EINVAL;
        if (!zmq_has("curve"))
            return -ENOTSUP;
        if (curve_z85_decode(c->secret_key, NULL) < 0)
            return -EINVAL;
        size_t dl = strlen(c->domain);
        if (dl == 0 || dl > ZAP_DOMAIN_MAX || !strcmp(c->domain, ZAP_DOMAIN_LOCAL))
            return -EINVAL;
        for (size_t i = 0; i < c->clients->n; i++)
            if ((r = zap_allow(c->zap, c->domain, c->clients->keys[i])) < 0)
                return r;
        if ((r = set_int(s, ZMQ_CURVE_SERVER, 1)) < 0 ||
            (r = set_str(s, ZMQ_CURVE_SECRETKEY, c->secret_key)) < 0 ||
            (r = set_str(s, ZMQ_ZAP_DOMAIN, c->domain)) < 0)
            return r;
        r = bind_and_report(s, endpoint, ret_endpoint, ret_len);
        /* Later ipc binds reset the mechanism; the secret key stays in the socket's options,
         * where only this process can read it. */
        return r;
    }
    return -EPROTONOSUPPORT;
}

/* ---- the handler ---- */

struct zap_domain {
    char name[ZAP_DOMAIN_MAX + 1];
    int allow_null;
    struct curve_keylist keys;
    size_t cap;
};

struct zap {
    void *sock;
    struct zap_domain *domains;
    size_t n_domains;
    struct zap_stats stats;
};

static struct zap_domain *domain_find(const struct zap *z, const char *name, size_t len)
{
    for (size_t i = 0; i < z->n_domains; i++)
        if (strlen(z->domains[i].name) == len && !memcmp(z->domains[i].name, name, len))
            return &z->domains[i];
    return NULL;
}

/* Finds or creates a domain; with key NULL, lets it accept the NULL mechanism. */
static int domain_add(struct zap *z, const char *name, const uint8_t *key)
{
    size_t len = name ? strlen(name) : 0;
    if (!z || len == 0 || len > ZAP_DOMAIN_MAX)
        return -EINVAL;
    struct zap_domain *d = domain_find(z, name, len);
    if (!d) {
        void *p = realloc(z->domains, (z->n_domains + 1) * sizeof *z->domains);
        if (!p)
            return -ENOMEM;
        z->domains = p;
        d = &z->domains[z->n_domains++];
        memset(d, 0, sizeof *d);
        memcpy(d->name, name, len + 1);
    }
    if (!key) {
        d->allow_null = 1;
        return 0;
    }
    return keylist_add(&d->keys, &d->cap, key);
}

int zap_allow(struct zap *z, const char *domain, const uint8_t key[CURVE_KEY_LEN])
{
    return key ? domain_add(z, domain, key) : -EINVAL;
}

int zap_allow_null(struct zap *z, const char *domain)
{
    return domain_add(z, domain, NULL);
}

size_t zap_domain_keys(const struct zap *z, const char *domain)
{
    if (!z || !domain)
        return 0;
    const struct zap_domain *d = domain_find(z, domain, strlen(domain));
    return d ? d->keys.n : 0;
}

struct zap *zap_new(void *zctx, int *ret_err)
{
    int r = -ENOMEM;
    struct zap *z = calloc(1, sizeof *z);
    if (!z)
        goto fail;
    z->sock = zmq_socket(zctx, ZMQ_REP);
    if (!z->sock) {
        r = -zmq_errno();
        goto fail;
    }
    if ((r = set_int(z->sock, ZMQ_LINGER, 0)) < 0)
        goto fail;
    if (zmq_bind(z->sock, ZAP_ENDPOINT) != 0) {
        r = -zmq_errno();
        goto fail;
    }
    if ((r = zap_allow_null(z, ZAP_DOMAIN_LOCAL)) < 0)
        goto fail;
    return z;
fail:
    zap_free(z);
    if (ret_err)
        *ret_err = r;
    return NULL;
}

void zap_free(struct zap *z)
{
    if (!z)
        return;
    if (z->sock)
        zmq_close(z->sock);
    for (size_t i = 0; i < z->n_domains; i++)
        curve_keylist_release(&z->domains[i].keys);
    free(z->domains);
    free(z);
}

void *zap_socket(struct zap *z)
{
    return z ? z->sock : NULL;
}

void zap_get_stats(const struct zap *z, struct zap_stats *ret)
{
    if (ret)
        *ret = z ? z->stats : (struct zap_stats){0};
}

static int frame_is(zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(m) == n && !memcmp(zmq_msg_data(m), s, n);
}

/* Decides one request. Frames: version, request id, domain, address, identity, mechanism,
 * credentials. Returns the status code; fills text and user id. */
static const char *decide(struct zap *z, zmq_msg_t *f, int nf, const char **text, char user[41])
{
    user[0] = '\0';
    if (nf < 6 || !frame_is(&f[0], "1.0")) {
        z->stats.malformed++;
        *text = "malformed ZAP request";
        return "500";
    }
    const struct zap_domain *d = domain_find(z, zmq_msg_data(&f[2]), zmq_msg_size(&f[2]));
    if (frame_is(&f[5], "NULL")) {
        if (d && d->allow_null) {
            *text = "OK";
            return "200";
        }
        *text = "NULL mechanism not allowed in this domain";
        return "400";
    }
    if (frame_is(&f[5], "CURVE")) {
        if (nf < 7 || zmq_msg_size(&f[6]) != CURVE_KEY_LEN) {
            z->stats.malformed++;
            *text = "malformed CURVE credentials";
            return "500";
        }
        /* Linear search: this runs once per handshake, not per message. */
        const uint8_t *key = zmq_msg_data(&f[6]);
        for (size_t i = 0; d && i < d->keys.n; i++)
            if (!memcmp(d->keys.keys[i], key, CURVE_KEY_LEN)) {
                zmq_z85_encode(user, key, CURVE_KEY_LEN);
                *text = "OK";
                return "200";
            }
        *text = d ? "client key not allowed" : "unknown ZAP domain";
        return "400";
    }
    *text = "mechanism not allowed";
    return "400";
}

int zap_on_readable(struct zap *z)
{
    if (!z)
        return -EINVAL;
    int answered = 0;
    while (answered < ZAP_BATCH_MAX) {
        zmq_msg_t f[ZAP_REQUEST_FRAMES];
        int nf = 0, more = 1, r = 0;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, z->sock, ZMQ_DONTWAIT) < 0) {
                r = -zmq_errno();
                zmq_msg_close(&m);
                break;
            }
            more = zmq_msg_more(&m);
            if (nf < ZAP_REQUEST_FRAMES && zmq_msg_size(&m) <= ZAP_FRAME_MAX)
                f[nf++] = m;
            else {
                zmq_msg_close(&m);
                r = 1; /* extra or oversized frames make the request malformed */
            }
        }
        if (r < 0 && nf == 0) {
            if (r == -EAGAIN || r == -EINTR)
                return answered;
            return r;
        }
        const char *text, *code;
        char user[41];
        if (r != 0) {
            z->stats.malformed++;
            text = "malformed ZAP request";
            code = "500";
            user[0] = '\0';
        } else
            code = decide(z, f, nf, &text, user);
        z->stats.requests++;
        if (code[0] == '2')
            z->stats.accepted++;
        else
            z->stats.denied++;
        /* version, request id, status code, status text, user id, metadata */
        const void *rd[6] = {"1.0", nf > 1 ? zmq_msg_data(&f[1]) : "", code, text, user, ""};
        size_t rl[6] = {3, nf > 1 ? zmq_msg_size(&f[1]) : 0, 3, strlen(text), strlen(user), 0};
        int s = 0;
        for (int i = 0; i < 6 && !s; i++)
            if (zmq_send(z->sock, rd[i], rl[i], (i < 5 ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0)
                s = -zmq_errno();
        for (int i = 0; i < nf; i++)
            zmq_msg_close(&f[i]);
        if (s < 0)
            return s;
        answered++;
    }
    return answered;
}
