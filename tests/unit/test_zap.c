/* CURVE: key files, the ZAP handler's decisions, and end to end over tcp://127.0.0.1: an
 * allowed subscriber gets the feed, one with another key (or none) gets nothing, and a local
 * ipc subscriber on the same XPUB socket still works without keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "daemon/publish.h"
#include "daemon/zap.h"

static void *ctx;
static char tmpdir[64];
static void *socks[16];
static size_t nsocks;
static struct publisher *pub;
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
    snprintf(tmpdir, sizeof tmpdir, "/tmp/engaged-zap-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

/* Closes everything, also after a failed assertion, so zmq_ctx_term cannot hang. */
static int teardown(void **state)
{
    for (size_t i = 0; i < nsocks; i++)
        zmq_close(socks[i]);
    nsocks = 0;
    publisher_free(pub);
    pub = NULL;
    zap_free(zap);
    zap = NULL;
    zmq_ctx_term(ctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, mode_t mode, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void test_z85_validation(void **state)
{
    char pub_[41], sec[41];
    uint8_t key[32];
    assert_int_equal(zmq_curve_keypair(pub_, sec), 0);
    assert_int_equal(curve_z85_decode(pub_, key), 0);
    assert_int_equal(curve_z85_decode("abc", key), -EINVAL);
    char bad[41];
    memcpy(bad, pub_, 41);
    bad[7] = '"';
    assert_int_equal(curve_z85_decode(bad, key), -EINVAL);
    /* "#####" is 85^5 - 1, beyond 32 bits: not a key even though every character is Z85 */
    memcpy(bad, pub_, 41);
    memset(bad, '#', 5);
    assert_int_equal(curve_z85_decode(bad, key), -EINVAL);
}

static void test_key_file_formats_and_errors(void **state)
{
    char pub_[41], sec[41], out[41], pout[41], text[512];
    struct curve_err e;
    assert_int_equal(zmq_curve_keypair(pub_, sec), 0);

    snprintf(text, sizeof text, "# a comment\n\npublic = %s\nsecret = %s\n", pub_, sec);
    const char *p = write_file("kp", 0600, text);
    assert_int_equal(curve_read_keypair(p, pout, out, &e), 0);
    assert_string_equal(out, sec);
    assert_string_equal(pout, pub_);

    snprintf(text, sizeof text, "  %s  # the daemon's key\n", sec);
    p = write_file("bare", 0400, text);
    assert_int_equal(curve_read_keypair(p, pout, out, &e), 0);
    assert_string_equal(out, sec);
    assert_string_equal(pout, pub_); /* derived */

    p = write_file("group", 0640, text); /* group access: systemd credentials via ACL */
    assert_int_equal(curve_read_key_file(p, out, &e), 0);

    p = write_file("world", 0644, text);
    assert_int_equal(curve_read_key_file(p, out, &e), -EACCES);
    assert_int_equal(e.line, 0);
    assert_non_null(strstr(e.msg, "0644"));

    snprintf(text, sizeof text, "# k\n\nsecret = %.20s\"%.19s\n", sec, sec + 21);
    p = write_file("badchar", 0600, text);
    assert_int_equal(curve_read_key_file(p, out, &e), -EINVAL);
    assert_int_equal(e.line, 3);
    assert_non_null(strstr(e.msg, "Z85 alphabet"));

    snprintf(text, sizeof text, "secret = %.39s\n", sec);
    p = write_file("short", 0600, text);
    assert_int_equal(curve_read_key_file(p, out, &e), -EINVAL);
    assert_int_equal(e.line, 1);
    assert_non_null(strstr(e.msg, "39 characters"));

    char other_pub[41], other_sec[41];
    assert_int_equal(zmq_curve_keypair(other_pub, other_sec), 0);
    snprintf(text, sizeof text, "public = %s\nsecret = %s\n", other_pub, sec);
    p = write_file("mismatch", 0600, text);
    assert_int_equal(curve_read_key_file(p, out, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "does not belong"));

    p = write_file("empty", 0600, "# nothing here\n");
    assert_int_equal(curve_read_key_file(p, out, &e), -EINVAL);

    snprintf(text, sizeof text, "secrte = %s\n", sec);
    p = write_file("typo", 0600, text);
    assert_int_equal(curve_read_key_file(p, out, &e), -EINVAL);
    assert_int_equal(e.line, 1);

    snprintf(text, sizeof text, "%s/does-not-exist", tmpdir);
    assert_int_equal(curve_read_key_file(text, out, &e), -ENOENT);
    assert_int_equal(curve_read_key_file(tmpdir, out, &e), -EINVAL); /* a directory */
}

static void test_allowlist_parsing(void **state)
{
    char k[3][41], sec[41], text[1024];
    for (int i = 0; i < 3; i++)
        assert_int_equal(zmq_curve_keypair(k[i], sec), 0);
    snprintf(text, sizeof text,
             "# dashboards\n%s\n\n   %s   # phone app\n%s\n# again, duplicate:\n%s\n", k[0], k[1], k[2], k[0]);
    const char *p = write_file("clients", 0644, text); /* public keys may be world-readable */
    struct curve_keylist l = {NULL, 0};
    struct curve_err e;
    assert_int_equal(curve_read_allowlist(p, &l, &e), 0);
    assert_int_equal(l.n, 3);
    uint8_t b[32];
    curve_z85_decode(k[1], b);
    assert_memory_equal(l.keys[1], b, 32);
    curve_keylist_release(&l);

    snprintf(text, sizeof text, "%s\n%s extra words\n", k[0], k[1]);
    p = write_file("bad", 0644, text);
    assert_int_equal(curve_read_allowlist(p, &l, &e), -EINVAL);
    assert_int_equal(e.line, 2);
    assert_non_null(strstr(e.msg, "after the key"));
    assert_null(l.keys);

    char longline[700];
    memset(longline, 'a', sizeof longline - 2);
    longline[sizeof longline - 2] = '\n';
    longline[sizeof longline - 1] = '\0';
    p = write_file("long", 0644, longline);
    assert_int_equal(curve_read_allowlist(p, &l, &e), -EINVAL);
    assert_int_equal(e.line, 1);
}

/* Sends one ZAP request as libzmq would and returns the status code of the reply. */
static int zap_ask(void *req, const char *domain, const char *mech, const void *cred, size_t clen)
{
    zmq_send(req, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(req, "7", 1, ZMQ_SNDMORE);
    zmq_send(req, domain, strlen(domain), ZMQ_SNDMORE);
    zmq_send(req, "127.0.0.1", 9, ZMQ_SNDMORE);
    zmq_send(req, "", 0, ZMQ_SNDMORE);
    zmq_send(req, mech, strlen(mech), cred ? ZMQ_SNDMORE : 0);
    if (cred)
        zmq_send(req, cred, clen, 0);
    for (int i = 0; i < 100 && zap_on_readable(zap) == 0; i++)
        usleep(1000);
    char f[6][64];
    int n[6];
    for (int i = 0; i < 6; i++) {
        n[i] = zmq_recv(req, f[i], sizeof f[i] - 1, 0);
        assert_true(n[i] >= 0);
        f[i][n[i]] = '\0';
    }
    int more = 0;
    size_t ml = sizeof more;
    zmq_getsockopt(req, ZMQ_RCVMORE, &more, &ml);
    assert_false(more);
    assert_string_equal(f[0], "1.0");
    return atoi(f[2]);
}

static void test_zap_decisions_and_garbage(void **state)
{
    int err = 0;
    zap = zap_new(ctx, &err);
    assert_non_null(zap);
    assert_null(zap_new(ctx, &err)); /* one handler per context */
    assert_int_equal(err, -EADDRINUSE);

    char pk[41], sk[41];
    uint8_t key[32], other[32];
    zmq_curve_keypair(pk, sk);
    curve_z85_decode(pk, key);
    zmq_curve_keypair(pk, sk);
    curve_z85_decode(pk, other);
    assert_int_equal(zap_allow(zap, "publish", key), 0);
    assert_int_equal(zap_allow(zap, "publish", key), 0);
    assert_int_equal(zap_domain_keys(zap, "publish"), 1);
    assert_int_equal(zap_allow(zap, "", key), -EINVAL);

    void *req = track(zmq_socket(ctx, ZMQ_REQ));
    assert_int_equal(zmq_connect(req, ZAP_ENDPOINT), 0);
    assert_int_equal(zap_ask(req, "publish", "CURVE", key, 32), 200);
    assert_int_equal(zap_ask(req, "publish", "CURVE", other, 32), 400);
    assert_int_equal(zap_ask(req, "control", "CURVE", key, 32), 400); /* keys are per domain */
    assert_int_equal(zap_ask(req, "publish", "NULL", NULL, 0), 400);
    assert_int_equal(zap_ask(req, ZAP_DOMAIN_LOCAL, "NULL", NULL, 0), 200);
    assert_int_equal(zap_ask(req, "publish", "PLAIN", "u", 1), 400);
    assert_int_equal(zap_ask(req, "publish", "CURVE", "short", 5), 500);

    /* not a ZAP request at all */
    zmq_send(req, "garbage", 7, 0);
    for (int i = 0; i < 100 && zap_on_readable(zap) == 0; i++)
        usleep(1000);
    char b[64];
    int n = zmq_recv(req, b, sizeof b, 0);
    assert_int_equal(n, 3);
    int more = 0;
    size_t ml = sizeof more;
    for (int i = 0; i < 5; i++) {
        zmq_getsockopt(req, ZMQ_RCVMORE, &more, &ml);
        assert_true(more);
        n = zmq_recv(req, b, sizeof b - 1, 0);
        if (i == 1) {
            b[n] = '\0';
            assert_string_equal(b, "500");
        }
    }
    struct zap_stats st;
    zap_get_stats(zap, &st);
    assert_int_equal(st.requests, 8);
    assert_int_equal(st.accepted, 2);
    assert_int_equal(st.malformed, 2);
}

static void *curve_sub(const char *endpoint, const char *server_pub, const char *pk, const char *sk)
{
    void *s = track(zmq_socket(ctx, ZMQ_SUB));
    if (server_pub) {
        assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pub, 40), 0);
        assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pk, 40), 0);
        assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sk, 40), 0);
    }
    assert_int_equal(zmq_connect(s, endpoint), 0);
    assert_int_equal(zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0), 0);
    return s;
}

/* Runs the daemon's side (ZAP and XPUB) for ms, as its loop would. Returns 1 as soon as
 * watch (may be NULL) has a message. */
static int pump(int ms, void *watch)
{
    for (int waited = 0; waited < ms; waited += 5) {
        zmq_pollitem_t it[3] = {{zap_socket(zap), 0, ZMQ_POLLIN, 0},
                                {publisher_socket(pub), 0, ZMQ_POLLIN, 0},
                                {watch, 0, ZMQ_POLLIN, 0}};
        zmq_poll(it, watch ? 3 : 2, 5);
        if (it[0].revents & ZMQ_POLLIN)
            assert_true(zap_on_readable(zap) >= 0);
        if (it[1].revents & ZMQ_POLLIN)
            assert_true(publisher_on_readable(pub) >= 0);
        if (watch && (it[2].revents & ZMQ_POLLIN))
            return 1;
    }
    return 0;
}

static void expect_msg(void *s, const char *topic)
{
    char b[256];
    assert_true(pump(3000, s));
    int n = zmq_recv(s, b, sizeof b - 1, 0);
    assert_true(n >= 0);
    b[n] = '\0';
    assert_string_equal(b, topic);
    n = zmq_recv(s, b, sizeof b - 1, 0);
    assert_true(n > 0);
}

static void test_curve_only_allowed_subscriber_receives(void **state)
{
    if (!zmq_has("curve"))
        skip();
    int err = 0;
    zap = zap_new(ctx, &err); /* before any CURVE bind */
    assert_non_null(zap);

    char spub[41], ssec[41], apub[41], asec[41], bpub[41], bsec[41];
    zmq_curve_keypair(spub, ssec);
    zmq_curve_keypair(apub, asec);
    zmq_curve_keypair(bpub, bsec);
    char text[256];
    snprintf(text, sizeof text, "%s  # subscriber A\n", apub);
    struct curve_keylist clients = {NULL, 0};
    struct curve_err ce;
    assert_int_equal(curve_read_allowlist(write_file("clients", 0644, text), &clients, &ce), 0);

    char ipc[128];
    snprintf(ipc, sizeof ipc, "ipc://%s/feed", tmpdir);
    const char *eps[] = {"tcp://127.0.0.1:*", ipc};
    struct publish_opts o = {.curve = {.secret_key = ssec, .clients = &clients, .zap = zap, .domain = "publish"}};
    pub = publisher_new(ctx, eps, 2, &o, &err);
    curve_keylist_release(&clients); /* registered in the handler; not needed any more */
    assert_non_null(pub);
    const char *tcp = publisher_endpoint(pub, 0);
    assert_non_null(tcp);
    assert_true(strncmp(tcp, "tcp://127.0.0.1:", 16) == 0);

    void *a = curve_sub(tcp, spub, apub, asec);  /* allowed */
    void *b = curve_sub(tcp, spub, bpub, bsec);  /* valid CURVE, unknown key */
    void *c = curve_sub(tcp, NULL, NULL, NULL);  /* no CURVE at all */
    void *d = curve_sub(ipc, NULL, NULL, NULL);  /* local: NULL mechanism on ipc */

    struct publish_stats ps;
    struct zap_stats zs;
    for (int i = 0; i < 100; i++) {
        pump(50, NULL);
        publisher_get_stats(pub, &ps);
        zap_get_stats(zap, &zs);
        if (ps.subscriptions >= 2 && zs.denied >= 1)
            break;
    }
    assert_int_equal(ps.subscriptions, 2); /* a and d; b and c never got that far */
    assert_true(zs.denied >= 1);

    assert_int_equal(publisher_send(pub, "feature/p01/x", "{\"v\":1}", 7), 0);
    expect_msg(a, "feature/p01/x");
    expect_msg(d, "feature/p01/x");
    assert_false(pump(500, b));
    assert_false(pump(100, c));
    publisher_get_stats(pub, &ps);
    assert_int_equal(ps.subscriptions, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_z85_validation),
        cmocka_unit_test_setup_teardown(test_key_file_formats_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allowlist_parsing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zap_decisions_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_curve_only_allowed_subscriber_receives, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
