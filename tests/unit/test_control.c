/* The control socket with real REQ and DEALER clients, a dummy handler and garbage input,
 * and the engagectl binary (from $ENGAGED_BIN) against it, over ipc and CURVE tcp. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "daemon/control.h"
#include "daemon/zap.h"

static void *ctx;
static char tmpdir[64];
static void *socks[16];
static size_t nsocks;
static struct control *ctl;
static struct zap *zap;

static void *track(void *s)
{
    assert_non_null(s);
    assert_true(nsocks < sizeof socks / sizeof socks[0]);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    return socks[nsocks++] = s;
}

static int setup(void **state)
{
    ctx = zmq_ctx_new();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/engaged-ctl-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    for (size_t i = 0; i < nsocks; i++)
        zmq_close(socks[i]);
    nsocks = 0;
    control_free(ctl);
    ctl = NULL;
    zap_free(zap);
    zap = NULL;
    zmq_ctx_term(ctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int handler(const char *cmd, const json_t *req, json_t *reply, void *ud)
{
    int *calls = ud;
    (*calls)++;
    if (!strcmp(cmd, "status")) {
        json_object_set_new(reply, "version", json_string("test"));
        json_object_set_new(reply, "uptime_s", json_integer(5));
        json_object_set_new(reply, "publish", json_pack("{s:i,s:i}", "sent", 3, "dropped", 0));
        return 0;
    }
    if (!strcmp(cmd, "latest")) {
        json_object_set(reply, "participant", json_object_get(req, "participant"));
        const json_t *f = json_object_get(req, "feature");
        json_t *rec = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:i,s:s,s:f,s:i,s:i}", "participant", "p01",
                                "feature", f ? json_string_value(f) : "screen.countepisodeunlock", "window",
                                "day", "start", (json_int_t)1583470800000LL, "end", (json_int_t)1583557200000LL,
                                "local_date", "2020-03-06", "tz", "America/New_York", "value", 7, "unit",
                                "count", "coverage", 1.0, "revision", 0, "seq", 3);
        json_object_set_new(reply, "features", json_pack("[o]", rec));
        return 0;
    }
    if (!strcmp(cmd, "nudges")) {
        json_object_set_new(reply, "error", json_string("no such participant"));
        return -ENOENT;
    }
    if (!strcmp(cmd, "sources"))
        return -EIO; /* no message of its own: the client gets strerror */
    json_object_set_new(reply, "participants", json_array());
    return 0;
}

/* One request over a fresh client socket; the reply body is returned in buf. */
static void roundtrip(int type, const void *body, size_t len, char *buf, size_t cap)
{
    void *c = track(zmq_socket(ctx, type));
    assert_int_equal(zmq_connect(c, control_endpoint(ctl)), 0);
    if (type == ZMQ_DEALER)
        zmq_send(c, "", 0, ZMQ_SNDMORE); /* behave like REQ */
    assert_true(zmq_send(c, body, len, 0) >= 0);
    int calls = 0;
    zmq_pollitem_t it[2] = {{control_socket(ctl), 0, ZMQ_POLLIN, 0}, {c, 0, ZMQ_POLLIN, 0}};
    for (int i = 0; i < 400 && !(it[1].revents & ZMQ_POLLIN); i++) {
        zmq_poll(it, 2, 10);
        if (it[0].revents & ZMQ_POLLIN)
            assert_true(control_on_readable(ctl, handler, &calls) >= 0);
    }
    assert_true(it[1].revents & ZMQ_POLLIN);
    if (type == ZMQ_DEALER) {
        char d[8];
        assert_int_equal(zmq_recv(c, d, sizeof d, 0), 0);
    }
    int n = zmq_recv(c, buf, cap - 1, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
}

static void ask(const char *body, char *buf, size_t cap)
{
    roundtrip(ZMQ_REQ, body, strlen(body), buf, cap);
}

static void new_ipc_control(void)
{
    char ep[128];
    int err = 0;
    snprintf(ep, sizeof ep, "ipc://%s/control", tmpdir);
    ctl = control_new(ctx, ep, NULL, &err);
    assert_non_null(ctl);
}

static void test_requests_reach_handler_and_replies_return(void **state)
{
    new_ipc_control();
    struct stat st;
    assert_int_equal(stat(control_endpoint(ctl) + 6, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0660);

    char b[4096];
    ask("{\"cmd\":\"status\"}", b, sizeof b);
    assert_string_equal(b, "{\"version\":\"test\",\"uptime_s\":5,\"publish\":{\"sent\":3,\"dropped\":0}}");
    ask("{\"cmd\":\"latest\",\"participant\":\"p01\",\"feature\":\"ema.answered\"}", b, sizeof b);
    assert_non_null(strstr(b, "\"feature\":\"ema.answered\""));
    ask("{\"cmd\":\"nudges\",\"participant\":\"p01\"}", b, sizeof b);
    assert_string_equal(b, "{\"error\":\"no such participant\"}");
    ask("{\"cmd\":\"sources\"}", b, sizeof b);
    assert_string_equal(b, "{\"error\":\"Input/output error\"}");
    ask("{\"cmd\":\"participants\",\"future_option\":1}", b, sizeof b); /* unknown keys ignored */
    assert_string_equal(b, "{\"participants\":[]}");
    roundtrip(ZMQ_DEALER, "{\"cmd\":\"status\"}", 16, b, sizeof b);
    assert_non_null(strstr(b, "\"version\""));

    struct control_stats cs;
    control_get_stats(ctl, &cs);
    assert_int_equal(cs.requests, 6);
    assert_int_equal(cs.handler_errors, 2);
    assert_int_equal(cs.invalid, 0);
}

/* len SIZE_MAX: strlen(body) */
static void expect_error(const char *body, size_t len, const char *needle)
{
    char b[4096];
    if (len == SIZE_MAX)
        len = strlen(body);
    roundtrip(ZMQ_REQ, body, len, b, sizeof b);
    assert_true(strncmp(b, "{\"error\":", 9) == 0);
    if (!strstr(b, needle))
        fail_msg("reply %s lacks '%s'", b, needle);
}

static void test_invalid_requests_get_error_replies(void **state)
{
    new_ipc_control();
    expect_error("{\"cmd\":\"reboot\"}", SIZE_MAX, "unknown command 'reboot'");
    expect_error("{\"cmd\":\"latest\"}", SIZE_MAX, "needs \\\"participant\\\"");
    expect_error("{\"cmd\":\"latest\",\"participant\":\"p/01\"}", SIZE_MAX, "participant must be");
    expect_error("{\"cmd\":\"status\",\"feature\":\"x\"}", SIZE_MAX, "takes no");
    expect_error("{\"cmd\":7}", SIZE_MAX, "needs \\\"cmd\\\"");
    expect_error("[1,2]", SIZE_MAX, "JSON object");
    expect_error("{\"cmd\":\"status\"", SIZE_MAX, "not valid JSON");
    expect_error("{\"cmd\":\"status\",\"cmd\":\"status\"}", SIZE_MAX, "not valid JSON"); /* duplicate key */
    expect_error("", 0, "not valid JSON");
    expect_error("\xff\xfe\x00\x01", 4, "not valid JSON");
    char *big = malloc(70000);
    memset(big, ' ', 70000);
    memcpy(big, "{\"cmd\":\"status\"}", 16);
    expect_error(big, 70000, "larger than 65536");
    free(big);

    /* no handler: valid commands are answered, not dropped */
    char b[256];
    void *c = track(zmq_socket(ctx, ZMQ_REQ));
    zmq_connect(c, control_endpoint(ctl));
    zmq_send(c, "{\"cmd\":\"status\"}", 16, 0);
    for (int i = 0; i < 300 && control_on_readable(ctl, NULL, NULL) == 0; i++)
        usleep(1000);
    int n = zmq_recv(c, b, sizeof b - 1, 0);
    assert_true(n > 0);
    b[n] = '\0';
    assert_string_equal(b, "{\"error\":\"not implemented\"}");
}

static void test_garbage_envelopes_never_crash(void **state)
{
    new_ipc_control();
    void *d = track(zmq_socket(ctx, ZMQ_DEALER));
    assert_int_equal(zmq_connect(d, control_endpoint(ctl)), 0);
    srand(42);
    int sent = 0;
    for (int i = 0; i < 300; i++) {
        int frames = 1 + rand() % 4;
        for (int f = 0; f < frames; f++) {
            char junk[64];
            size_t len = (size_t)(rand() % (int)sizeof junk);
            for (size_t k = 0; k < len; k++)
                junk[k] = (char)rand();
            zmq_send(d, junk, len, f + 1 < frames ? ZMQ_SNDMORE : 0);
        }
        sent++;
    }
    /* every message, whatever its shape, gets exactly one reply */
    int got = 0, calls = 0;
    for (int i = 0; i < 2000 && got < sent; i++) {
        zmq_pollitem_t it[2] = {{control_socket(ctl), 0, ZMQ_POLLIN, 0}, {d, 0, ZMQ_POLLIN, 0}};
        zmq_poll(it, 2, 10);
        if (it[0].revents & ZMQ_POLLIN)
            assert_true(control_on_readable(ctl, handler, &calls) >= 0);
        zmq_msg_t m;
        zmq_msg_init(&m);
        while (zmq_msg_recv(&m, d, ZMQ_DONTWAIT) >= 0)
            if (!zmq_msg_more(&m))
                got++;
        zmq_msg_close(&m);
    }
    assert_int_equal(got, sent);
    struct control_stats cs;
    control_get_stats(ctl, &cs);
    assert_int_equal(cs.requests, (uint64_t)sent);
}

/* ---- engagectl ---- */

static char ctl_bin[512];

static int have_engagectl(void)
{
    const char *bin = getenv("ENGAGED_BIN");
    if (!bin)
        return 0;
    snprintf(ctl_bin, sizeof ctl_bin, "%s/engagectl", bin);
    return access(ctl_bin, X_OK) == 0;
}

/* Runs engagectl while serving the control socket (and ZAP) like the daemon's loop would. */
static int run_ctl(char *out, size_t ocap, char *err, size_t ecap, const char *const *args)
{
    const char *argv[16] = {ctl_bin};
    size_t na = 1;
    for (; args[na - 1] && na < 15; na++)
        argv[na] = args[na - 1];
    argv[na] = NULL;
    int po[2], pe[2];
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        execv(ctl_bin, (char *const *)argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    fcntl(po[0], F_SETFL, O_NONBLOCK);
    fcntl(pe[0], F_SETFL, O_NONBLOCK);
    size_t no = 0, ne = 0;
    int status = -1, calls = 0;
    for (int i = 0; i < 3000; i++) {
        zmq_pollitem_t it[2] = {{ctl ? control_socket(ctl) : NULL, 0, ZMQ_POLLIN, 0},
                                {zap ? zap_socket(zap) : NULL, 0, ZMQ_POLLIN, 0}};
        int nit = ctl ? (zap ? 2 : 1) : 0;
        if (nit)
            zmq_poll(it, nit, 10);
        else
            usleep(10000);
        if (ctl && (it[0].revents & ZMQ_POLLIN))
            control_on_readable(ctl, handler, &calls);
        if (zap && (it[1].revents & ZMQ_POLLIN))
            zap_on_readable(zap);
        ssize_t r;
        while (no + 1 < ocap && (r = read(po[0], out + no, ocap - 1 - no)) > 0)
            no += (size_t)r;
        while (ne + 1 < ecap && (r = read(pe[0], err + ne, ecap - 1 - ne)) > 0)
            ne += (size_t)r;
        if (status == -1 && waitpid(pid, &status, WNOHANG) == pid) {
            i = 2990; /* a few more rounds to drain the pipes */
            continue;
        }
        if (status != -1 && i > 2995)
            break;
    }
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("engagectl did not finish");
    }
    out[no] = err[ne] = '\0';
    close(po[0]);
    close(pe[0]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void test_engagectl_against_control_socket(void **state)
{
    if (!have_engagectl())
        skip();
    new_ipc_control();
    const char *ep = control_endpoint(ctl);
    char out[4096], err[4096];

    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err, (const char *[]){"-s", ep, "--json", "status", NULL}), 0);
    assert_string_equal(out, "{\"version\":\"test\",\"uptime_s\":5,\"publish\":{\"sent\":3,\"dropped\":0}}\n");

    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err, (const char *[]){"-s", ep, "status", NULL}), 0);
    assert_non_null(strstr(out, "publish.sent"));

    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err, (const char *[]){"-s", ep, "latest", "p01", NULL}), 0);
    assert_non_null(strstr(out, "feature"));
    assert_non_null(strstr(out, "screen.countepisodeunlock"));
    assert_non_null(strstr(out, "2020-03-06"));

    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err, (const char *[]){"-s", ep, "nudges", "p01", NULL}), 1);
    assert_non_null(strstr(err, "no such participant"));

    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err, (const char *[]){"-s", ep, "latest", NULL}), 64);
    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err, (const char *[]){"frobnicate", NULL}), 64);
    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err, (const char *[]){"-s", "tcp://127.0.0.1:1", "status", NULL}), 64);

    char missing[128];
    snprintf(missing, sizeof missing, "ipc://%s/nothing", tmpdir);
    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err, (const char *[]){"-s", missing, "status", NULL}), 69);

    /* a socket that exists but is never served: the timeout applies */
    void *mute = track(zmq_socket(ctx, ZMQ_ROUTER));
    char mute_ep[128];
    snprintf(mute_ep, sizeof mute_ep, "ipc://%s/mute", tmpdir);
    assert_int_equal(zmq_bind(mute, mute_ep), 0);
    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err,
                             (const char *[]){"-s", mute_ep, "--timeout", "300", "status", NULL}), 69);
    assert_non_null(strstr(err, "no answer"));
}

static void test_engagectl_keygen_and_curve_tcp(void **state)
{
    if (!have_engagectl() || !zmq_has("curve"))
        skip();
    char out[4096], err[4096], good[128], bad[128], spub[41], ssec[41];
    snprintf(good, sizeof good, "%s/good.key", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.key", tmpdir);
    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err, (const char *[]){"keygen", "--out", good, NULL}), 0);
    struct stat st;
    assert_int_equal(stat(good, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char gpub[41];
    assert_int_equal(strlen(out), 41); /* key and newline */
    memcpy(gpub, out, 40);
    gpub[40] = '\0';
    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err, (const char *[]){"pubkey", good, NULL}), 0);
    assert_int_equal(strncmp(out, gpub, 40), 0);
    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err, (const char *[]){"keygen", "--out", good, NULL}), 64);
    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err, (const char *[]){"keygen", "--out", bad, NULL}), 0);
    /* without --out the whole keypair goes to stdout, in the key file format */
    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err, (const char *[]){"keygen", NULL}), 0);
    assert_non_null(strstr(out, "\npublic = "));
    assert_non_null(strstr(out, "\nsecret = "));

    int e = 0;
    zap = zap_new(ctx, &e);
    assert_non_null(zap);
    zmq_curve_keypair(spub, ssec);
    uint8_t k[32];
    assert_int_equal(curve_z85_decode(gpub, k), 0);
    struct curve_keylist clients = {(uint8_t(*)[32])k, 1};
    struct curve_opts co = {.secret_key = ssec, .clients = &clients, .zap = zap, .domain = "control"};
    ctl = control_new(ctx, "tcp://127.0.0.1:*", &co, &e);
    assert_non_null(ctl);
    const char *ep = control_endpoint(ctl);

    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err,
                             (const char *[]){"-s", ep, "--curve-server-key", spub, "--curve-keys", good,
                                              "--json", "status", NULL}), 0);
    assert_non_null(strstr(out, "\"version\":\"test\""));
    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err,
                             (const char *[]){"-s", ep, "--curve-server-key", spub, "--curve-keys", bad,
                                              "--timeout", "500", "status", NULL}), 69);
    assert_non_null(strstr(err, "allowlist"));
    chmod(good, 0644);
    assert_int_equal(run_ctl(out, sizeof out, err, sizeof err,
                             (const char *[]){"-s", ep, "--curve-server-key", spub, "--curve-keys", good,
                                              "status", NULL}), 77);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_requests_reach_handler_and_replies_return, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_requests_get_error_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_envelopes_never_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engagectl_against_control_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engagectl_keygen_and_curve_tcp, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
