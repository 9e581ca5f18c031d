/* The XPUB feed with real ZeroMQ sockets (inproc:// and ipc:// in a temp dir): framing, seq,
 * prefix subscriptions, the last-value cache and its bound, drop counting, ipc file mode,
 * endpoint policy, topic builders. CURVE is covered in test_zap.c. */
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

static void *ctx;
static char tmpdir[64];
/* Everything a test opens is closed in teardown, also after a failed assertion (which
 * longjmps out of the test): zmq_ctx_term would otherwise wait forever. */
static void *socks[16];
static struct publisher *pubs[8];
static size_t nsocks, npubs;

static void *track_sock(void *s)
{
    assert_non_null(s);
    assert_true(nsocks < sizeof socks / sizeof socks[0]);
    return socks[nsocks++] = s;
}

static struct publisher *track_pub(struct publisher *p)
{
    if (p) {
        assert_true(npubs < sizeof pubs / sizeof pubs[0]);
        pubs[npubs++] = p;
    }
    return p;
}

static int setup(void **state)
{
    ctx = zmq_ctx_new();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/engaged-pub-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    for (size_t i = 0; i < nsocks; i++)
        zmq_close(socks[i]);
    for (size_t i = 0; i < npubs; i++)
        publisher_free(pubs[i]);
    nsocks = npubs = 0;
    zmq_ctx_term(ctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void *sub_new(const char *endpoint, const char *prefix, int rcvhwm)
{
    void *s = track_sock(zmq_socket(ctx, ZMQ_SUB));
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (rcvhwm)
        zmq_setsockopt(s, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    assert_int_equal(zmq_connect(s, endpoint), 0);
    if (prefix)
        assert_int_equal(zmq_setsockopt(s, ZMQ_SUBSCRIBE, prefix, strlen(prefix)), 0);
    return s;
}

/* Serves the publisher until it has seen `want` subscribe frames in total (or 5 s pass):
 * the publisher learns of a subscription asynchronously, and only then will it route to it
 * or replay its cache. */
static void wait_subscriptions(struct publisher *p, uint64_t want)
{
    struct publish_stats st;
    for (int i = 0; i < 500; i++) {
        zmq_pollitem_t it = {publisher_socket(p), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 10);
        if (it.revents & ZMQ_POLLIN)
            assert_true(publisher_on_readable(p) >= 0);
        publisher_get_stats(p, &st);
        if (st.subscriptions >= want)
            return;
    }
    fail_msg("publisher saw %llu subscriptions, wanted %llu", (unsigned long long)st.subscriptions,
             (unsigned long long)want);
}

/* Receives [topic][payload] within timeout_ms; returns 0, or -1 when nothing came. */
static int recv2(void *s, int timeout_ms, char *topic, size_t tcap, char *payload, size_t pcap)
{
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return -1;
    int n = zmq_recv(s, topic, tcap - 1, 0);
    assert_true(n >= 0);
    topic[n] = '\0';
    int more = 0;
    size_t ml = sizeof more;
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    assert_true(more); /* every message is exactly two frames */
    n = zmq_recv(s, payload, pcap - 1, 0);
    assert_true(n >= 0);
    payload[n] = '\0';
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    assert_false(more);
    return 0;
}

static void expect(void *s, const char *topic, const char *payload)
{
    char t[300], p[1024];
    assert_int_equal(recv2(s, 2000, t, sizeof t, p, sizeof p), 0);
    assert_string_equal(t, topic);
    assert_string_equal(p, payload);
}

static void expect_nothing(void *s, int ms)
{
    char t[300], p[1024];
    assert_int_equal(recv2(s, ms, t, sizeof t, p, sizeof p), -1);
}

static int send_str(struct publisher *p, const char *topic, const char *payload)
{
    return publisher_send(p, topic, payload, strlen(payload));
}

static void test_topic_builders_reject_slashes_and_overflow(void **state)
{
    char b[300];
    assert_int_equal(publish_topic_feature(b, sizeof b, "p01", "screen.countepisodeunlock"), 37);
    assert_string_equal(b, "feature/p01/screen.countepisodeunlock");
    assert_true(publish_topic_nudge(b, sizeof b, "p01") > 0);
    assert_string_equal(b, "nudge/p01");
    assert_true(publish_topic_status(b, sizeof b, "phone-p01") > 0);
    assert_string_equal(b, "status/phone-p01");
    assert_true(publish_topic_event(b, sizeof b, "p01", "screen") > 0);
    assert_string_equal(b, "event/p01/screen");
    assert_int_equal(publish_topic_feature(b, sizeof b, "p/01", "x"), -EINVAL);
    assert_int_equal(publish_topic_feature(b, sizeof b, "", "x"), -EINVAL);
    assert_int_equal(publish_topic_feature(b, sizeof b, "p01", ""), -EINVAL);
    assert_int_equal(publish_topic_nudge(b, sizeof b, "p\n1"), -EINVAL);
    assert_int_equal(publish_topic_feature(b, 10, "p01", "screen.x"), -ENAMETOOLONG);
    assert_int_equal(b[0], '\0'); /* nothing half-built is left for a caller to send */
    /* "nudge/p01" is 9 bytes: it fits 10 with its NUL, not 9 */
    assert_int_equal(publish_topic_nudge(b, 10, "p01"), 9);
    assert_string_equal(b, "nudge/p01");
    assert_int_equal(publish_topic_nudge(b, 9, "p01"), -ENAMETOOLONG);
    assert_int_equal(publish_topic_event(b, 17, "p01", "screen"), 16);
    assert_string_equal(b, "event/p01/screen");
    assert_int_equal(publish_topic_event(b, 16, "p01", "screen"), -ENAMETOOLONG);
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(publish_topic_status(b, sizeof b, longname), -ENAMETOOLONG);
}

static void test_framing_seq_per_topic_and_prefix(void **state)
{
    const char *ep[] = {"inproc://pub-framing"};
    int err = 0;
    struct publisher *p = track_pub(publisher_new(ctx, ep, 1, NULL, &err));
    assert_non_null(p);
    void *s = sub_new(ep[0], "feature/p01/", 0);
    wait_subscriptions(p, 1);

    assert_int_equal(send_str(p, "feature/p01/a", "{\"value\":1}"), 0);
    assert_int_equal(send_str(p, "feature/p01/b", " {\"value\":null} \n"), 0);
    assert_int_equal(send_str(p, "feature/p02/a", "{\"value\":3}"), 0);
    assert_int_equal(send_str(p, "feature/p01/a", "{\"value\":2}"), 0);
    assert_int_equal(send_str(p, "feature/p01/c", "{ }"), 0);
    expect(s, "feature/p01/a", "{\"value\":1,\"seq\":1}");
    expect(s, "feature/p01/b", "{\"value\":null,\"seq\":1}");
    expect(s, "feature/p01/a", "{\"value\":2,\"seq\":2}");
    expect(s, "feature/p01/c", "{\"seq\":1}");
    expect_nothing(s, 100); /* p02 is not under the prefix */

    assert_int_equal(send_str(p, "feature/p01/a", "[1]"), -EINVAL);
    assert_int_equal(send_str(p, "feature/p01/a", "{"), -EINVAL);
    assert_int_equal(send_str(p, "feature/p01/a", ""), -EINVAL);
    assert_int_equal(send_str(p, "", "{}"), -EINVAL);
    assert_int_equal(send_str(p, "feature/p01/a", "{\"value\":4}"), 0);
    expect(s, "feature/p01/a", "{\"value\":4,\"seq\":3}"); /* rejected sends consumed no seq */

    struct publish_stats st;
    publisher_get_stats(p, &st);
    assert_int_equal(st.sent, 6);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.lvc_topics, 4);
}

static void test_lvc_replays_to_late_subscriber_by_prefix(void **state)
{
    const char *ep[] = {"inproc://pub-lvc"};
    struct publish_opts o = {.lvc_max_topics = 100};
    struct publisher *p = track_pub(publisher_new(ctx, ep, 1, &o, NULL));
    assert_non_null(p);
    assert_int_equal(send_str(p, "feature/p01/a", "{\"v\":1}"), 0);
    assert_int_equal(send_str(p, "feature/p01/b", "{\"v\":2}"), 0);
    assert_int_equal(send_str(p, "feature/p010/a", "{\"v\":3}"), 0);
    assert_int_equal(send_str(p, "nudge/p01", "{\"rule\":\"r\"}"), 0);
    assert_int_equal(send_str(p, "feature/p01/a", "{\"v\":4}"), 0);

    void *s1 = sub_new(ep[0], "feature/p01/", 0);
    wait_subscriptions(p, 1);
    /* oldest update first: b was updated before a's second value */
    expect(s1, "feature/p01/b", "{\"v\":2,\"seq\":1}");
    expect(s1, "feature/p01/a", "{\"v\":4,\"seq\":2}");
    expect_nothing(s1, 100); /* feature/p010/ is not p01's */

    /* The empty prefix replays everything; XPUB cannot single out the new subscriber, so s1
     * gets its topics again with the same seq (documented: discard seq <= last seen). */
    void *s2 = sub_new(ep[0], "", 0);
    wait_subscriptions(p, 2);
    expect(s2, "feature/p01/b", "{\"v\":2,\"seq\":1}");
    expect(s2, "feature/p010/a", "{\"v\":3,\"seq\":1}");
    expect(s2, "nudge/p01", "{\"rule\":\"r\",\"seq\":1}");
    expect(s2, "feature/p01/a", "{\"v\":4,\"seq\":2}");
    expect_nothing(s2, 100);
    expect(s1, "feature/p01/b", "{\"v\":2,\"seq\":1}");
    expect(s1, "feature/p01/a", "{\"v\":4,\"seq\":2}");
    expect_nothing(s1, 100);

    struct publish_stats st;
    publisher_get_stats(p, &st);
    assert_int_equal(st.subscriptions, 2);
    assert_int_equal(st.replayed, 6);
}

static void test_lvc_bound_evicts_least_recently_updated(void **state)
{
    const char *ep[] = {"inproc://pub-evict"};
    struct publish_opts o = {.lvc_max_topics = 3};
    struct publisher *p = track_pub(publisher_new(ctx, ep, 1, &o, NULL));
    assert_non_null(p);
    send_str(p, "t/1", "{}");
    send_str(p, "t/2", "{}");
    send_str(p, "t/3", "{}");
    send_str(p, "t/4", "{}"); /* evicts t/1 */
    send_str(p, "t/2", "{}"); /* t/2 becomes the most recent */
    send_str(p, "t/5", "{}"); /* evicts t/3 */
    struct publish_stats st;
    publisher_get_stats(p, &st);
    assert_int_equal(st.lvc_topics, 3);
    assert_int_equal(st.lvc_evictions, 2);

    void *s = sub_new(ep[0], "t/", 0);
    wait_subscriptions(p, 1);
    expect(s, "t/4", "{\"seq\":1}");
    expect(s, "t/2", "{\"seq\":2}");
    expect(s, "t/5", "{\"seq\":1}");
    expect_nothing(s, 100);
    /* an evicted topic starts again at 1 (documented) */
    send_str(p, "t/1", "{}");
    expect(s, "t/1", "{\"seq\":1}");

    /* many topics: the table grows and every topic stays reachable */
    for (int i = 0; i < 1000; i++) {
        char t[32];
        snprintf(t, sizeof t, "many/%d", i);
        assert_int_equal(send_str(p, t, "{\"x\":1}"), 0);
    }
    publisher_get_stats(p, &st);
    assert_int_equal(st.lvc_topics, 3);
}

static void test_lvc_off_replays_nothing_but_keeps_seq(void **state)
{
    const char *ep[] = {"inproc://pub-lvc-off"};
    struct publisher *p = track_pub(publisher_new(ctx, ep, 1, NULL, NULL)); /* lvc_max_topics 0 */
    assert_non_null(p);
    assert_int_equal(send_str(p, "t/a", "{}"), 0);
    assert_int_equal(send_str(p, "t/a", "{}"), 0);
    void *s = sub_new(ep[0], "t/", 0);
    wait_subscriptions(p, 1);
    expect_nothing(s, 100);
    assert_int_equal(send_str(p, "t/a", "{}"), 0);
    expect(s, "t/a", "{\"seq\":3}");
    struct publish_stats st;
    publisher_get_stats(p, &st);
    assert_int_equal(st.replayed, 0);
}

static void test_full_queue_drops_are_counted_and_seq_shows_gap(void **state)
{
    const char *ep[] = {"inproc://pub-drop"};
    struct publish_opts o = {.sndhwm = 2};
    struct publisher *p = track_pub(publisher_new(ctx, ep, 1, &o, NULL));
    assert_non_null(p);
    void *s = sub_new(ep[0], "", 1); /* never reads during the burst */
    wait_subscriptions(p, 1);
    int ok = 0, dropped = 0;
    for (int i = 0; i < 100; i++) {
        int r = send_str(p, "feature/p01/x", "{\"v\":0}");
        if (r == 0)
            ok++;
        else if (r == -EAGAIN)
            dropped++;
        else
            fail_msg("unexpected %d", r);
    }
    struct publish_stats st;
    publisher_get_stats(p, &st);
    assert_true(dropped > 0);
    assert_true(ok < 10);
    assert_int_equal(st.dropped, (uint64_t)dropped);
    assert_int_equal(st.sent, (uint64_t)ok);

    /* drain what was queued: seq 1..ok; the next message shows the gap */
    char t[300], pl[1024];
    int got = 0;
    while (recv2(s, 200, t, sizeof t, pl, sizeof pl) == 0)
        got++;
    assert_int_equal(got, ok);
    assert_int_equal(send_str(p, "feature/p01/x", "{\"v\":0}"), 0);
    expect(s, "feature/p01/x", "{\"v\":0,\"seq\":101}");
}

static void test_ipc_socket_file_is_0660(void **state)
{
    char ep[128], bad[128];
    snprintf(ep, sizeof ep, "ipc://%s/feed", tmpdir);
    snprintf(bad, sizeof bad, "ipc://%s/missing-dir/feed", tmpdir);
    const char *eps[] = {ep};
    mode_t old = umask(0); /* the mode must not depend on the caller's umask */
    struct publisher *p = track_pub(publisher_new(ctx, eps, 1, NULL, NULL));
    umask(old);
    assert_non_null(p);
    assert_string_equal(publisher_endpoint(p, 0), ep);
    struct stat st;
    assert_int_equal(stat(ep + 6, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0660);

    /* and it works over ipc */
    void *s = sub_new(ep, "status/", 0);
    wait_subscriptions(p, 1);
    assert_int_equal(send_str(p, "status/ble0", "{\"state\":\"up\"}"), 0);
    expect(s, "status/ble0", "{\"state\":\"up\",\"seq\":1}");

    const char *beps[] = {ep, bad};
    int err = 0;
    size_t at = 99;
    assert_null(publisher_new_ex(ctx, beps, 2, NULL, &err, &at));
    assert_int_equal(err, -ENOENT);
    assert_int_equal(at, 1);
}

static void test_tcp_without_curve_keys_is_refused(void **state)
{
    const char *eps[] = {"tcp://127.0.0.1:*"};
    int err = 0;
    assert_null(publisher_new(ctx, eps, 1, NULL, &err));
    assert_int_equal(err, -EINVAL);

    /* a secret key alone is not enough: no handler, no allowlist */
    char pub[41], sec[41];
    assert_int_equal(zmq_curve_keypair(pub, sec), 0);
    struct publish_opts o = {.curve = {.secret_key = sec, .domain = "publish"}};
    err = 0;
    assert_null(publisher_new(ctx, eps, 1, &o, &err));
    assert_int_equal(err, -EINVAL);

    const char *udp[] = {"udp://127.0.0.1:5555"};
    assert_null(publisher_new(ctx, udp, 1, NULL, &err));
    assert_int_equal(err, -EPROTONOSUPPORT);
}

static void test_garbage_frames_on_xpub_are_ignored(void **state)
{
    const char *ep[] = {"inproc://pub-garbage"};
    struct publish_opts o = {.lvc_max_topics = 100};
    struct publisher *p = track_pub(publisher_new(ctx, ep, 1, &o, NULL));
    assert_non_null(p);
    send_str(p, "a/b", "{}");
    /* an XSUB peer can send anything: empty frames, multipart data, unknown first bytes */
    void *x = track_sock(zmq_socket(ctx, ZMQ_XSUB));
    int zero = 0;
    zmq_setsockopt(x, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_connect(x, ep[0]), 0);
    zmq_send(x, "", 0, 0);
    zmq_send(x, "\x05junk", 5, ZMQ_SNDMORE);
    zmq_send(x, "more", 4, 0);
    zmq_send(x, "\x01" "a/", 3, 0);
    zmq_send(x, "\x00" "a/", 3, 0);
    wait_subscriptions(p, 1);
    struct publish_stats st;
    for (int i = 0; i < 200; i++) {
        publisher_get_stats(p, &st);
        if (st.unsubscriptions)
            break;
        zmq_pollitem_t it = {publisher_socket(p), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 10) > 0)
            assert_true(publisher_on_readable(p) >= 0);
    }
    assert_int_equal(st.unsubscriptions, 1);
    assert_int_equal(st.subscriptions, 1);
    assert_int_equal(st.replayed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_builders_reject_slashes_and_overflow),
        cmocka_unit_test_setup_teardown(test_framing_seq_per_topic_and_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lvc_replays_to_late_subscriber_by_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lvc_bound_evicts_least_recently_updated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lvc_off_replays_nothing_but_keeps_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_drops_are_counted_and_seq_shows_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipc_socket_file_is_0660, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_without_curve_keys_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_frames_on_xpub_are_ignored, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
