/* engagectl: ask a running engaged over its control socket (docs/topics.md, "Control
 * protocol"), and generate CURVE keys.
 *
 * One REQ exchange per invocation. ZMQ_IMMEDIATE makes the send wait for a completed
 * connection (and, on tcp, a completed CURVE handshake), so "nothing is listening" or "our key
 * is refused" and "the daemon does not answer" are reported separately, both as 69
 * (EX_UNAVAILABLE). Exit codes follow sysexits.h; 1 means the daemon answered with an error. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon/control.h"
#include "daemon/zap.h"

enum { EX_OK_ = 0, EX_ERR_REPLY = 1, EX_USAGE_ = 64, EX_DATAERR_ = 65, EX_NOINPUT_ = 66,
       EX_UNAVAILABLE_ = 69, EX_SOFTWARE_ = 70, EX_IOERR_ = 74, EX_PROTOCOL_ = 76, EX_NOPERM_ = 77 };

#define DEFAULT_TIMEOUT_MS 5000
#define CELL_MAX 40

static const char usage_text[] =
    "usage: engagectl [-s ENDPOINT] [--json] [--timeout MS]\n"
    "                 [--curve-server-key Z85 --curve-keys FILE] COMMAND [ARGS]\n"
    "commands:\n"
    "  status                          daemon health and counters\n"
    "  sources                         configured sources and their state\n"
    "  participants                    known participants\n"
    "  latest PARTICIPANT [FEATURE]    latest feature values\n"
    "  nudges PARTICIPANT              recent nudge decisions\n"
    "  keygen [--out FILE]             new CURVE keypair (FILE: mode 0600, public key on stdout)\n"
    "  pubkey FILE                     the public key of a key file\n"
    "default endpoint " CONTROL_DEFAULT_ENDPOINT "; tcp:// endpoints need the CURVE options.\n";

static int usage(const char *why)
{
    if (why)
        fprintf(stderr, "engagectl: %s\n", why);
    fputs(usage_text, stderr);
    return EX_USAGE_;
}

static int key_error_exit(const char *path, int r, const struct curve_err *e)
{
    if (e->line)
        fprintf(stderr, "engagectl: %s:%d: %s\n", path, e->line, e->msg);
    else
        fprintf(stderr, "engagectl: %s: %s\n", path, e->msg);
    return r == -ENOENT ? EX_NOINPUT_ : r == -EACCES ? EX_NOPERM_ : r == -EINVAL ? EX_DATAERR_ : EX_IOERR_;
}

static int cmd_keygen(const char *out)
{
    char pub[CURVE_Z85_LEN + 1], sec[CURVE_Z85_LEN + 1];
    if (!zmq_has("curve") || zmq_curve_keypair(pub, sec) != 0) {
        fprintf(stderr, "engagectl: this libzmq has no CURVE support\n");
        return EX_UNAVAILABLE_;
    }
    char text[256];
    snprintf(text, sizeof text,
             "# engaged CURVE keypair (engagectl keygen). Keep secret: mode 0400 or 0600.\n"
             "# Give peers only the public key.\n"
             "public = %s\nsecret = %s\n", pub, sec);
    explicit_bzero(sec, sizeof sec);
    if (!out) {
        fputs(text, stdout);
        explicit_bzero(text, sizeof text);
        return fflush(stdout) == 0 ? EX_OK_ : EX_IOERR_;
    }
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "engagectl: %s: %s%s\n", out, strerror(errno),
                errno == EEXIST ? " (refusing to overwrite a key)" : "");
        explicit_bzero(text, sizeof text);
        return errno == EEXIST ? EX_USAGE_ : EX_IOERR_;
    }
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    explicit_bzero(text, sizeof text);
    if (w != (ssize_t)len || fsync(fd) != 0 || close(fd) != 0) {
        fprintf(stderr, "engagectl: %s: write failed\n", out);
        unlink(out);
        return EX_IOERR_;
    }
    printf("%s\n", pub);
    return fflush(stdout) == 0 ? EX_OK_ : EX_IOERR_;
}

static int cmd_pubkey(const char *path)
{
    char pub[CURVE_Z85_LEN + 1];
    struct curve_err e = {0, ""};
    int r = curve_read_keypair(path, pub, NULL, &e);
    if (r < 0)
        return key_error_exit(path, r, &e);
    printf("%s\n", pub);
    return EX_OK_;
}

/* ---- output ---- */

static int is_time_column(const char *k)
{
    return !strcmp(k, "ts") || !strcmp(k, "start") || !strcmp(k, "end") || !strcmp(k, "updated") ||
           (strlen(k) > 3 && !strcmp(k + strlen(k) - 3, "_ts"));
}

/* Formats one value for a terminal: control characters replaced, millisecond timestamps in
 * time-like columns shown as UTC, long cells cut. */
static void cell(const char *key, const json_t *v, char *buf, size_t cap)
{
    if (!v || json_is_null(v))
        snprintf(buf, cap, "null");
    else if (json_is_string(v))
        snprintf(buf, cap, "%s", json_string_value(v));
    else if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        time_t t = (time_t)(i / 1000);
        struct tm tm;
        if (key && is_time_column(key) && i > 100000000000LL && gmtime_r(&t, &tm))
            strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
        else
            snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, i);
    } else if (json_is_real(v))
        snprintf(buf, cap, "%.6g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(buf, cap, "%s", s ? s : "?");
        free(s);
    }
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

static int is_table(const json_t *v)
{
    if (!json_is_array(v))
        return 0;
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!json_is_object(json_array_get(v, i)))
            return 0;
    return 1;
}

static void print_table(const json_t *rows, const char *const *preferred)
{
    if (json_array_size(rows) == 0) {
        printf("(none)\n");
        return;
    }
    /* Columns: the preferred ones present in any row; if none are, every key in order of
     * first appearance. */
    json_t *cols = json_array();
    for (int pass = 0; pass < 2 && json_array_size(cols) == 0; pass++) {
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row) {
            const char *k;
            json_t *v;
            json_object_foreach(row, k, v) {
                int want = pass == 1;
                for (const char *const *p = preferred; !want && p && *p; p++)
                    want = !strcmp(*p, k);
                int seen = 0;
                for (size_t c = 0; c < json_array_size(cols); c++)
                    seen |= !strcmp(json_string_value(json_array_get(cols, c)), k);
                if (want && !seen)
                    json_array_append_new(cols, json_string(k));
            }
        }
        if (pass == 0 && preferred && json_array_size(cols)) {
            /* keep the preferred order, not the order of appearance */
            json_t *ordered = json_array();
            for (const char *const *p = preferred; *p; p++)
                for (size_t c = 0; c < json_array_size(cols); c++)
                    if (!strcmp(json_string_value(json_array_get(cols, c)), *p))
                        json_array_append_new(ordered, json_string(*p));
            json_decref(cols);
            cols = ordered;
        }
    }
    size_t nc = json_array_size(cols), nr = json_array_size(rows);
    size_t *w = calloc(nc ? nc : 1, sizeof *w);
    int *num = calloc(nc ? nc : 1, sizeof *num);
    char buf[256];
    if (!w || !num)
        goto out;
    for (size_t c = 0; c < nc; c++) {
        const char *k = json_string_value(json_array_get(cols, c));
        w[c] = strlen(k);
        num[c] = 1;
        for (size_t r = 0; r < nr; r++) {
            const json_t *v = json_object_get(json_array_get(rows, r), k);
            cell(k, v, buf, sizeof buf);
            size_t l = strlen(buf) > CELL_MAX ? CELL_MAX : strlen(buf);
            if (l > w[c])
                w[c] = l;
            if (v && !json_is_null(v) && !(json_is_number(v) && !is_time_column(k)))
                num[c] = 0;
        }
    }
    for (size_t c = 0; c < nc; c++)
        printf("%s%-*s", c ? "  " : "", c + 1 < nc ? (int)w[c] : 0,
               json_string_value(json_array_get(cols, c)));
    printf("\n");
    for (size_t r = 0; r < nr; r++) {
        for (size_t c = 0; c < nc; c++) {
            const char *k = json_string_value(json_array_get(cols, c));
            cell(k, json_object_get(json_array_get(rows, r), k), buf, sizeof buf);
            if (strlen(buf) > CELL_MAX)
                memcpy(buf + CELL_MAX - 3, "...", 4);
            if (num[c])
                printf("%s%*s", c ? "  " : "", (int)w[c], buf);
            else
                printf("%s%-*s", c ? "  " : "", c + 1 < nc ? (int)w[c] : 0, buf);
        }
        printf("\n");
    }
out:
    free(w);
    free(num);
    json_decref(cols);
}

static void print_fields(const char *prefix, const json_t *obj)
{
    const char *k;
    json_t *v;
    char key[256], buf[256];
    json_object_foreach((json_t *)obj, k, v) {
        snprintf(key, sizeof key, "%s%s", prefix, k);
        if (json_is_object(v)) {
            char sub[sizeof key + 1];
            snprintf(sub, sizeof sub, "%s.", key);
            print_fields(sub, v);
        } else if (json_is_array(v) && json_array_size(v) == 0) {
            printf("%-28s (none)\n", key);
        } else if (!is_table(v)) {
            cell(k, v, buf, sizeof buf);
            printf("%-28s %s\n", key, buf);
        }
    }
}

/* Scalars and nested objects as "key value" lines, then every array of objects as a table. */
static void print_human(const char *cmd, const json_t *reply)
{
    static const char *const latest_cols[] = {"feature", "window", "local_date", "value", "unit",
                                              "coverage", "revision", NULL};
    static const char *const nudge_cols[] = {"ts", "rule", "recipient", "decision", "reason", "p", NULL};
    const char *const *pref = !strcmp(cmd, "latest") ? latest_cols : !strcmp(cmd, "nudges") ? nudge_cols : NULL;
    const char *k;
    json_t *v;
    int tables = 0, fields = 0;

    json_object_foreach((json_t *)reply, k, v) {
        if (is_table(v) && json_array_size(v))
            tables++;
        else
            fields++;
    }
    print_fields("", reply);
    json_object_foreach((json_t *)reply, k, v) {
        if (!is_table(v) || !json_array_size(v))
            continue;
        if (fields || tables > 1)
            printf("%s%s:\n", fields ? "\n" : "", k);
        print_table(v, pref);
        fields = 1;
    }
}

/* ---- the exchange ---- */

static long ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000L + (t.tv_nsec - t0->tv_nsec) / 1000000L;
}

static int request(const char *endpoint, const char *body, int timeout, const char *server_key,
                   const char *keys_file, char **ret_reply)
{
    int ex = EX_SOFTWARE_;
    char pub[CURVE_Z85_LEN + 1], sec[CURVE_Z85_LEN + 1];
    void *ctx = zmq_ctx_new(), *s = ctx ? zmq_socket(ctx, ZMQ_REQ) : NULL;
    int zero = 0, one = 1;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    if (!s) {
        fprintf(stderr, "engagectl: zmq: %s\n", zmq_strerror(zmq_errno()));
        goto out;
    }
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    if (server_key) {
        struct curve_err e = {0, ""};
        int r = curve_read_keypair(keys_file, pub, sec, &e);
        if (r < 0) {
            ex = key_error_exit(keys_file, r, &e);
            goto out;
        }
        int ok = zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_key, CURVE_Z85_LEN) == 0 &&
                 zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, CURVE_Z85_LEN) == 0 &&
                 zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, CURVE_Z85_LEN) == 0;
        explicit_bzero(sec, sizeof sec);
        if (!ok) {
            fprintf(stderr, "engagectl: CURVE setup: %s\n", zmq_strerror(zmq_errno()));
            goto out;
        }
    }
    if (zmq_connect(s, endpoint) != 0) {
        fprintf(stderr, "engagectl: %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        ex = zmq_errno() == EINVAL || zmq_errno() == EPROTONOSUPPORT ? EX_USAGE_ : EX_UNAVAILABLE_;
        goto out;
    }
    if (zmq_send(s, body, strlen(body), 0) < 0) {
        fprintf(stderr, "engagectl: cannot connect to %s within %d ms (is engaged running%s?)\n",
                endpoint, timeout, server_key ? ", and is this key on its allowlist" : "");
        ex = EX_UNAVAILABLE_;
        goto out;
    }
    long left = timeout - ms_since(&t0);
    int rcv = left > 100 ? (int)left : 100;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &rcv, sizeof rcv);
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s, 0) < 0) {
        fprintf(stderr, "engagectl: no answer from %s within %d ms\n", endpoint, timeout);
        zmq_msg_close(&m);
        ex = EX_UNAVAILABLE_;
        goto out;
    }
    size_t n = zmq_msg_size(&m);
    *ret_reply = malloc(n + 1);
    if (*ret_reply) {
        memcpy(*ret_reply, zmq_msg_data(&m), n);
        (*ret_reply)[n] = '\0';
        ex = EX_OK_;
    }
    zmq_msg_close(&m);
out:
    if (s)
        zmq_close(s);
    if (ctx)
        zmq_ctx_term(ctx);
    return ex;
}

/* An ipc endpoint's socket file can be checked before waiting for a timeout. */
static int precheck_ipc(const char *endpoint)
{
    if (strncmp(endpoint, "ipc://", 6) || endpoint[6] == '@')
        return EX_OK_;
    const char *path = endpoint + 6;
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "engagectl: %s: %s (is engaged running?)\n", path, strerror(errno));
        return errno == EACCES ? EX_NOPERM_ : EX_UNAVAILABLE_;
    }
    if (access(path, W_OK) < 0) {
        fprintf(stderr, "engagectl: %s: %s (the control socket is mode 0660: join its group)\n",
                path, strerror(errno));
        return EX_NOPERM_;
    }
    return EX_OK_;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, 't'},
        {"curve-server-key", required_argument, NULL, 'K'},
        {"curve-keys", required_argument, NULL, 'k'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *endpoint = CONTROL_DEFAULT_ENDPOINT, *server_key = NULL, *keys = NULL, *out = NULL;
    char ep_buf[300];
    int as_json = 0, timeout = DEFAULT_TIMEOUT_MS, c;

    while ((c = getopt_long(argc, argv, "s:jt:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            endpoint = optarg;
            break;
        case 'j':
            as_json = 1;
            break;
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || v < 1 || v > 3600000)
                return usage("--timeout takes milliseconds, 1 to 3600000");
            timeout = (int)v;
            break;
        }
        case 'K':
            server_key = optarg;
            break;
        case 'k':
            keys = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EX_OK_;
        case 'V':
            printf("engagectl %s\n", ENGAGED_VERSION);
            return EX_OK_;
        default:
            return usage(NULL);
        }
    }
    if (optind >= argc)
        return usage("no command given");
    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;

    if (!strcmp(cmd, "keygen"))
        return nargs ? usage("keygen takes no arguments") : cmd_keygen(out);
    if (out)
        return usage("--out only applies to keygen");
    if (!strcmp(cmd, "pubkey"))
        return nargs != 1 ? usage("pubkey takes one key file") : cmd_pubkey(args[0]);

    /* A bare path is taken as an ipc socket, the way people tend to type it. */
    if (!strstr(endpoint, "://")) {
        snprintf(ep_buf, sizeof ep_buf, "ipc://%s", endpoint);
        endpoint = ep_buf;
    }
    int is_tcp = !strncmp(endpoint, "tcp://", 6);
    if (is_tcp && (!server_key || !keys))
        return usage("tcp:// endpoints need --curve-server-key and --curve-keys");
    if (!is_tcp && (server_key || keys))
        return usage("the CURVE options only apply to tcp:// endpoints");
    if (server_key && curve_z85_decode(server_key, NULL) < 0)
        return usage("--curve-server-key must be a 40-character Z85 public key");

    json_t *req = json_pack("{s:s}", "cmd", cmd);
    if (!req)
        return EX_SOFTWARE_;
    int maxargs = !strcmp(cmd, "latest") ? 2 : !strcmp(cmd, "nudges") ? 1 : 0;
    if (nargs > maxargs) {
        json_decref(req);
        return usage("too many arguments");
    }
    if (nargs >= 1)
        json_object_set_new(req, "participant", json_string(args[0]));
    if (nargs >= 2)
        json_object_set_new(req, "feature", json_string(args[1]));
    char why[160];
    if (control_validate(req, NULL, why, sizeof why) < 0) {
        json_decref(req);
        return usage(why);
    }
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body)
        return EX_SOFTWARE_;

    int ex = precheck_ipc(endpoint);
    char *text = NULL;
    if (ex == EX_OK_)
        ex = request(endpoint, body, timeout, server_key, keys, &text);
    free(body);
    if (ex != EX_OK_)
        return ex;

    json_error_t jerr;
    json_t *reply = json_loads(text, 0, &jerr);
    if (!json_is_object(reply)) {
        fprintf(stderr, "engagectl: the daemon's reply is not a JSON object: %s\n", reply ? "" : jerr.text);
        json_decref(reply);
        free(text);
        return EX_PROTOCOL_;
    }
    const json_t *err = json_object_get(reply, "error");
    if (as_json)
        printf("%s\n", text);
    else if (err) {
        char buf[256];
        cell(NULL, err, buf, sizeof buf);
        fprintf(stderr, "engagectl: %s: %s\n", cmd, buf);
    } else
        print_human(cmd, reply);
    json_decref(reply);
    free(text);
    if (fflush(stdout) != 0)
        return EX_IOERR_;
    return err ? EX_ERR_REPLY : EX_OK_;
}
