/* daemon/ble_keys.c: the key file (format and parse round trip, every refusal, mode 0600 on
 * save whatever the umask or the old file's mode, a missing file), and the keeper against a
 * fake kernel on a socketpair: the file's keys loaded into the controller the kernel lists,
 * a new key written to the file, Just Works confirmations for a configured device only, a
 * refused file moved aside (not overwritten) at the first new key, the kernel side
 * closing, and the socket opened again with backoff (all keys given to the new session) unless
 * the failure cannot change. The mgmt bytes are written out here by hand (BlueZ doc/mgmt-api.txt). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/ble_keys.h"

static char dir[64], path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_ble_keys.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/engaged.db" BLE_KEYS_SUFFIX, dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(dir);
    return 0;
}

static struct ble_key key(uint16_t ctl, uint8_t last, uint8_t type, int central)
{
    struct ble_key k = {.controller = ctl};
    const uint8_t a[6] = {last, 0x2F, 0x6A, 0x8D, 0x7C, 0xC4};
    memcpy(k.ltk.addr, a, 6);
    k.ltk.addr_type = type;
    k.ltk.key_type = 2;
    k.ltk.central = (uint8_t)central;
    k.ltk.enc_size = 16;
    k.ltk.ediv = (uint16_t)(0x1234 + last);
    for (int i = 0; i < 8; i++)
        k.ltk.rand[i] = (uint8_t)(0xA0 + i + last);
    for (int i = 0; i < 16; i++)
        k.ltk.val[i] = (uint8_t)(0x10 * (i % 16) + last);
    return k;
}

/* An Identity Resolving Key for the device key() makes with the same last byte. */
static struct ble_key irk_key(uint16_t ctl, uint8_t last, uint8_t type)
{
    struct ble_key k;
    memset(&k, 0, sizeof k);
    k.kind = BLE_KEY_IRK;
    k.controller = ctl;
    const uint8_t a[6] = {last, 0x2F, 0x6A, 0x8D, 0x7C, 0xC4};
    memcpy(k.irk.addr, a, 6);
    k.irk.addr_type = type;
    for (int i = 0; i < 16; i++)
        k.irk.val[i] = (uint8_t)(0x0F * i + last);
    return k;
}

static void write_file(const char *p, const char *text, mode_t mode)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(p, mode);
}

/* ---- the file ---- */

static void test_format_then_parse_gives_the_same_keys(void **state)
{
    (void)state;
    /* both roles' LTKs and the IRK of one device on one controller, and keys elsewhere */
    struct ble_key in[5] = {key(0, 1, MGMT_ADDR_LE_RANDOM, 1), key(0, 1, MGMT_ADDR_LE_RANDOM, 0),
                            irk_key(0, 1, MGMT_ADDR_LE_RANDOM), key(7, 2, MGMT_ADDR_LE_PUBLIC, 0),
                            irk_key(7, 2, MGMT_ADDR_LE_PUBLIC)};
    char *text = ble_keys_format(in, 5);
    assert_non_null(text);
    assert_non_null(strstr(text, "\"address\": \"C4:7C:8D:6A:2F:01\""));
    assert_non_null(strstr(text, "\"address_type\": \"public\""));
    assert_non_null(strstr(text, "\"kind\": \"irk\""));
    /* the IRK's value as `[source] irk` takes it (wire order, as BlueZ's info file) */
    assert_non_null(strstr(text, "\"value\": \"01101f2e3d4c5b6a798897a6b5c4d3e2\""));
    struct ble_key out[6];
    size_t n = 9;
    char why[200] = "";
    assert_int_equal(ble_keys_parse(text, strlen(text), out, 6, &n, why, sizeof why), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(in, out, sizeof in);
    /* max: more keys than the caller holds is a refusal, not a truncation */
    assert_int_equal(ble_keys_parse(text, strlen(text), out, 4, &n, why, sizeof why), -EINVAL);
    assert_int_equal(n, 0);
    assert_non_null(strstr(why, "5 keys"));
    free(text);
    /* no keys */
    text = ble_keys_format(NULL, 0);
    assert_int_equal(ble_keys_parse(text, strlen(text), out, 4, &n, why, sizeof why), 0);
    assert_int_equal(n, 0);
    free(text);
}

/* tmpl with every "%s" replaced by good. */
static void fill(char *out, size_t cap, const char *tmpl, const char *good)
{
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 1 < cap; p++) {
        if (p[0] == '%' && p[1] == 's') {
            o += (size_t)snprintf(out + o, cap - o, "%s", good);
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/* A file of the one key good with its first `from` replaced by `to` is refused, saying why. */
static void spoilt_is_refused(const char *good, const char *from, const char *to,
                              const char *why_part)
{
    char k[1024], text[2048], why[200] = "";
    const char *at = strstr(good, from);
    assert_non_null(at);
    snprintf(k, sizeof k, "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
    snprintf(text, sizeof text, "{\"engaged_ble_keys\": 1, \"keys\": [%s]}", k);
    struct ble_key out[2];
    size_t n;
    assert_int_equal(ble_keys_parse(text, strlen(text), out, 2, &n, why, sizeof why), -EINVAL);
    if (!strstr(why, why_part))
        fail_msg("%s -> %s: '%s' does not say '%s'", from, to, why, why_part);
}

static void test_bad_files_are_refused_whole_with_a_reason(void **state)
{
    (void)state;
    const char *good = "{\"controller\": 0, \"address\": \"C4:7C:8D:6A:2F:01\", "
                       "\"address_type\": \"random\", \"key_type\": 0, \"central\": true, "
                       "\"enc_size\": 16, \"ediv\": 1, \"rand\": \"0001020304050607\", "
                       "\"value\": \"000102030405060708090a0b0c0d0e0f\"}";
    struct {
        const char *text, *why;
    } cases[] = {
        {"", "not JSON"},
        {"{\"engaged_ble_keys\": 2, \"keys\": []}", "not an engaged key file"},
        {"{\"engaged_ble_keys\": 1, \"keys\": [], \"x\": 1}", "not an engaged key file"},
        {"{\"engaged_ble_keys\": 1, \"keys\": {}}", "keys is not an array"},
        {"{\"engaged_ble_keys\": 1, \"keys\": [1]}", "key 1: not an object"},
        {"{\"engaged_ble_keys\": 1, \"engaged_ble_keys\": 1, \"keys\": []}", "not JSON"},
        {"{\"engaged_ble_keys\": 1, \"keys\": [%s, {\"controller\": 0}]}", "key 2: address"},
        {"{\"engaged_ble_keys\": 1, \"keys\": [%s, %s]}", "key 2: a second key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[2048], why[200] = "";
        fill(text, sizeof text, cases[i].text, good);
        struct ble_key out[4];
        size_t n = 5;
        assert_int_equal(ble_keys_parse(text, strlen(text), out, 4, &n, why, sizeof why),
                         -EINVAL);
        assert_int_equal(n, 0);
        if (!strstr(why, cases[i].why))
            fail_msg("case %zu: '%s' does not say '%s'", i, why, cases[i].why);
    }
    /* one member spoilt at a time */
    struct {
        const char *from, *to, *why;
    } spoil[] = {
        {"\"controller\": 0", "\"controller\": 65535", "controller"},
        {"\"controller\": 0", "\"controller\": \"0\"", "controller"},
        {"6A:2F:01", "6A:2F:0G", "address"},
        {"\"random\"", "\"static\"", "address_type"},
        {"\"key_type\": 0", "\"key_type\": 4", "key_type"},
        {"true", "1", "central"},
        {"\"enc_size\": 16", "\"enc_size\": 6", "enc_size"},
        {"\"enc_size\": 16", "\"enc_size\": 17", "enc_size"},
        {"\"ediv\": 1", "\"ediv\": 65536", "ediv"},
        {"0001020304050607\"", "00010203040506\"", "rand"},
        {"0e0f\"", "0e0g\"", "value"},
        {"\"ediv\": 1", "\"ediv\": 1, \"pin\": 1", "unknown member"},
        {"C4:7C", "4C:7C", "not a key the kernel takes"}, /* random, not static */
    };
    for (size_t i = 0; i < sizeof spoil / sizeof spoil[0]; i++)
        spoilt_is_refused(good, spoil[i].from, spoil[i].to, spoil[i].why);
    /* an Identity Resolving Key, one member spoilt at a time */
    const char *good_irk = "{\"kind\": \"irk\", \"controller\": 0, \"address\": "
                           "\"C4:7C:8D:6A:2F:01\", \"address_type\": \"random\", "
                           "\"value\": \"000102030405060708090a0b0c0d0e0f\"}";
    struct {
        const char *from, *to, *why;
    } spoil_irk[] = {
        {"\"irk\"", "\"ltk\"", "kind is not"},
        {"\"irk\"", "1", "kind is not"},
        {"\"controller\": 0", "\"controller\": -1", "controller"},
        {"6A:2F:01", "6A:2F", "address"},
        {"\"random\"", "\"bredr\"", "address_type"},
        {"0e0f\"", "0e\"", "value"},
        {"000102030405060708090a0b0c0d0e0f", "00000000000000000000000000000000", "all zero"},
        {"\"controller\": 0", "\"controller\": 0, \"central\": true", "unknown member"},
        {"C4:7C", "44:7C", "not a key the kernel takes"}, /* resolvable, not an identity */
    };
    for (size_t i = 0; i < sizeof spoil_irk / sizeof spoil_irk[0]; i++)
        spoilt_is_refused(good_irk, spoil_irk[i].from, spoil_irk[i].to, spoil_irk[i].why);
    {
        char text[2048], why[200] = "";
        struct ble_key out[3];
        size_t n;
        /* two IRKs for one device on one controller: refused; with its LTK: kept */
        snprintf(text, sizeof text, "{\"engaged_ble_keys\": 1, \"keys\": [%s, %s]}", good_irk,
                 good_irk);
        assert_int_equal(ble_keys_parse(text, strlen(text), out, 3, &n, why, sizeof why),
                         -EINVAL);
        assert_non_null(strstr(why, "key 2: a second key of its kind"));
        snprintf(text, sizeof text, "{\"engaged_ble_keys\": 1, \"keys\": [%s, %s]}", good_irk,
                 good);
        assert_int_equal(ble_keys_parse(text, strlen(text), out, 3, &n, why, sizeof why), 0);
        assert_int_equal(n, 2);
        assert_int_equal(out[0].kind, BLE_KEY_IRK);
        assert_int_equal(out[0].irk.val[15], 0x0f);
        assert_int_equal(out[0].irk.addr[5], 0xC4);
        assert_int_equal(out[1].kind, BLE_KEY_LTK);
    }
    /* and the unspoilt one parses */
    char text[1024], why[200];
    snprintf(text, sizeof text, "{\"engaged_ble_keys\": 1, \"keys\": [%s]}", good);
    struct ble_key out[1];
    size_t n;
    assert_int_equal(ble_keys_parse(text, strlen(text), out, 1, &n, why, sizeof why), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].ltk.addr[0], 0x01);
    assert_int_equal(out[0].ltk.addr[5], 0xC4);
    assert_int_equal(out[0].ltk.val[15], 0x0f);
}

static void test_save_is_0600_and_load_reads_it_back(void **state)
{
    (void)state;
    struct ble_key in[2] = {key(0, 1, MGMT_ADDR_LE_RANDOM, 1), key(1, 3, MGMT_ADDR_LE_PUBLIC, 0)};
    struct ble_key out[4];
    size_t n = 7;
    char why[200] = "";
    assert_int_equal(ble_keys_load(path, out, 4, &n, why, sizeof why), 0); /* none yet */
    assert_int_equal(n, 0);
    write_file(path, "old", 0644);
    mode_t old = umask(0);
    int r = ble_keys_save(path, in, 2);
    umask(old);
    assert_int_equal(r, 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ble_keys_load(path, out, 4, &n, why, sizeof why), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(in, out, sizeof in);
    /* a directory, an unreadable name: errors with a reason */
    assert_int_equal(ble_keys_load(dir, out, 4, &n, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "not a regular file"));
    char nodir[200];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/k", dir);
    assert_true(ble_keys_save(nodir, in, 1) < 0);
}

/* ---- the keeper against a fake kernel ---- */

static int kernel = -1;                  /* the test's end of the socketpair */

static void ev(uint16_t code, uint16_t index, const uint8_t *params, size_t len)
{
    uint8_t p[512] = {(uint8_t)code, (uint8_t)(code >> 8), (uint8_t)index,
                      (uint8_t)(index >> 8), (uint8_t)len, (uint8_t)(len >> 8)};
    memcpy(p + 6, params, len);
    assert_int_equal(send(kernel, p, 6 + len, 0), (ssize_t)(6 + len));
}

static void complete(uint16_t op, uint16_t index, uint8_t status)
{
    uint8_t p[3] = {(uint8_t)op, (uint8_t)(op >> 8), status};
    ev(0x0001, index, p, 3);
}

/* The next command the keeper sent: its opcode and index are checked; params into out. */
static size_t cmd(uint16_t op, uint16_t index, uint8_t *out, size_t cap)
{
    uint8_t p[4096];
    ssize_t n = recv(kernel, p, sizeof p, MSG_DONTWAIT);
    if (n < 6)
        fail_msg("expected command 0x%04x, got %zd bytes", op, n);
    assert_int_equal(p[0] | p[1] << 8, op);
    assert_int_equal(p[2] | p[3] << 8, index);
    size_t len = (size_t)(p[4] | p[5] << 8);
    assert_int_equal(len, (size_t)n - 6);
    if (out)
        memcpy(out, p + 6, len < cap ? len : cap);
    return len;
}

static void nothing_sent(void)
{
    uint8_t p[64];
    assert_int_equal(recv(kernel, p, sizeof p, MSG_DONTWAIT), -1);
}

static void wire_key(uint8_t *p, const struct mgmt_ltk *k)
{
    memcpy(p, k->addr, 6);
    p[6] = k->addr_type;
    p[7] = k->key_type;
    p[8] = k->central;
    p[9] = k->enc_size;
    p[10] = (uint8_t)k->ediv;
    p[11] = (uint8_t)(k->ediv >> 8);
    memcpy(p + 12, k->rand, 8);
    memcpy(p + 20, k->val, 16);
}

/* The opener the keeper is given: call i returns plan[i] (an -errno) while plan has entries
 * and 0 in it is not reached; otherwise it opens a socketpair whose other end is `kernel`. */
static int opens, plan[16], n_plan;

static int fake_open(void *ud, char *why, size_t cap)
{
    (void)ud;
    int want = opens < n_plan ? plan[opens] : 0;
    opens++;
    if (want < 0) {
        snprintf(why, cap, "fake: %s", strerror(-want));
        return want;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    kernel = sv[1];
    return sv[0];
}

/* What irk_kept was told last, and how often. */
static int irks_kept;
static struct mgmt_irk irk_told;

static void on_irk(void *ud, const struct mgmt_irk *irk)
{
    (void)ud;
    irks_kept++;
    irk_told = *irk;
}

static const struct ble_keys_hooks HOOKS = {fake_open, on_irk, NULL};

static struct ble_keys *start(const struct ble_keys_device *devs, size_t n)
{
    opens = n_plan = 0;
    struct ble_keys *k = ble_keys_start(&HOOKS, path, devs, n, -1, 1000);
    assert_non_null(k);
    assert_int_equal(opens, 1);
    assert_true(ble_keys_fd(k) >= 0);
    return k;
}

/* The kernel lists controller 0; the keeper makes it bondable and loads the n keys of want:
 * its IRKs in Load Identity Resolving Keys, then its LTKs in Load Long Term Keys, each in
 * want's order. Times from t0 (ns). */
static void controller_up_at(struct ble_keys *k, const struct ble_key *want, size_t n, int64_t t0)
{
    assert_int_equal(cmd(0x0003, 0xFFFF, NULL, 0), 0);
    const uint8_t list[] = {0x03, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00};
    ev(0x0001, 0xFFFF, list, sizeof list);
    ble_keys_on_fd(k, EPOLLIN, t0 + 2000);
    uint8_t p[4096];
    assert_int_equal(cmd(0x0009, 0, p, sizeof p), 1);
    assert_int_equal(p[0], 1);
    complete(0x0009, 0, 0);
    ble_keys_on_fd(k, EPOLLIN, t0 + 3000);
    size_t n_irk = 0, n_ltk = 0;
    for (size_t i = 0; i < n; i++)
        want[i].kind == BLE_KEY_IRK ? n_irk++ : n_ltk++;
    assert_int_equal(cmd(0x0030, 0, p, sizeof p), 2 + 23 * n_irk);
    assert_int_equal(p[0] | p[1] << 8, n_irk);
    for (size_t i = 0, j = 0; i < n; i++)
        if (want[i].kind == BLE_KEY_IRK) {
            const struct mgmt_irk *w = &want[i].irk;
            const uint8_t *q = p + 2 + 23 * j++;
            assert_memory_equal(q, w->addr, 6);
            assert_int_equal(q[6], w->addr_type);
            assert_memory_equal(q + 7, w->val, 16);
        }
    complete(0x0030, 0, 0);
    ble_keys_on_fd(k, EPOLLIN, t0 + 3500);
    assert_int_equal(cmd(0x0013, 0, p, sizeof p), 2 + 36 * n_ltk);
    assert_int_equal(p[0] | p[1] << 8, n_ltk);
    for (size_t i = 0, j = 0; i < n; i++) {
        if (want[i].kind == BLE_KEY_IRK)
            continue;
        uint8_t w[36];
        wire_key(w, &want[i].ltk);
        assert_memory_equal(p + 2 + 36 * j++, w, 36);
    }
    complete(0x0013, 0, 0);
    ble_keys_on_fd(k, EPOLLIN, t0 + 4000);
    nothing_sent();
}

static void controller_up(struct ble_keys *k, const struct ble_key *want, size_t n)
{
    controller_up_at(k, want, n, 0);
}

static void test_keys_go_to_the_kernel_and_new_ones_to_the_file(void **state)
{
    (void)state;
    /* a file with a key for controller 0 and one for controller 5 (not listed) */
    struct ble_key file[2] = {key(0, 1, MGMT_ADDR_LE_RANDOM, 1), key(5, 2, MGMT_ADDR_LE_PUBLIC, 0)};
    assert_int_equal(ble_keys_save(path, file, 2), 0);
    struct ble_keys_device dev = {.addr = {0x09, 0x2F, 0x6A, 0x8D, 0x7C, 0xC4},
                                  .addr_type = MGMT_ADDR_LE_RANDOM};
    struct ble_keys *k = start(&dev, 1);
    assert_int_equal(ble_keys_count(k), 2);
    controller_up(k, file, 1);
    assert_int_equal(ble_keys_stats(k)->controllers, 1);
    assert_int_equal(ble_keys_stats(k)->keys_loaded, 1);

    /* the device pairs: a key to keep, one not to keep */
    struct ble_key nk = key(0, 9, MGMT_ADDR_LE_RANDOM, 1);
    uint8_t p[37] = {1};
    wire_key(p + 1, &nk.ltk);
    ev(0x000A, 0, p, sizeof p);
    struct ble_key nk2 = key(0, 9, MGMT_ADDR_LE_RANDOM, 0);
    p[0] = 0;
    wire_key(p + 1, &nk2.ltk);
    ev(0x000A, 0, p, sizeof p);
    ble_keys_on_fd(k, EPOLLIN, 5000);
    assert_int_equal(ble_keys_count(k), 3);
    struct ble_key back[8];
    size_t n;
    char why[200] = "";
    assert_int_equal(ble_keys_load(path, back, 8, &n, why, sizeof why), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(back, file, sizeof file);
    assert_memory_equal(&back[2], &nk, sizeof nk);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* a new key for the same device and role replaces the old one */
    nk.ltk.val[0] ^= 0xFF;
    p[0] = 1;
    wire_key(p + 1, &nk.ltk);
    ev(0x000A, 0, p, sizeof p);
    ble_keys_on_fd(k, EPOLLIN, 5500);
    assert_int_equal(ble_keys_load(path, back, 8, &n, why, sizeof why), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(&back[2], &nk, sizeof nk);

    /* Just Works confirmation: yes for the configured device, no for another */
    uint8_t req[12] = {0x09, 0x2F, 0x6A, 0x8D, 0x7C, 0xC4, MGMT_ADDR_LE_RANDOM, 1, 0, 0, 0, 0};
    ev(0x000F, 0, req, sizeof req);
    ble_keys_on_fd(k, EPOLLIN, 6000);
    uint8_t r[16];
    assert_int_equal(cmd(0x001C, 0, r, sizeof r), 7);
    assert_memory_equal(r, req, 7);
    complete(0x001C, 0, 0);
    req[0] = 0x0A; /* another device */
    ev(0x000F, 0, req, sizeof req);
    ble_keys_on_fd(k, EPOLLIN, 7000);
    req[0] = 0x09; /* the configured address with the other address type */
    req[6] = MGMT_ADDR_LE_PUBLIC;
    ev(0x000F, 0, req, sizeof req);
    ble_keys_on_fd(k, EPOLLIN, 7100);
    assert_int_equal(cmd(0x001D, 0, r, sizeof r), 7);
    assert_int_equal(r[0], 0x0A);
    complete(0x001D, 0, 0);
    ble_keys_on_fd(k, EPOLLIN, 7200);
    assert_int_equal(cmd(0x001D, 0, r, sizeof r), 7);
    assert_int_equal(r[6], MGMT_ADDR_LE_PUBLIC);
    assert_int_equal(ble_keys_stats(k)->confirmed, 1);
    assert_int_equal(ble_keys_stats(k)->refused, 2);

    /* the device's Identity Resolving Key: kept (its hint 1), and found by its address */
    struct ble_key ik = irk_key(0, 9, MGMT_ADDR_LE_RANDOM);
    uint8_t ip[30] = {1, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66};
    memcpy(ip + 7, ik.irk.addr, 6);
    ip[13] = ik.irk.addr_type;
    memcpy(ip + 14, ik.irk.val, 16);
    uint8_t got[16];
    assert_int_equal(ble_keys_irk(k, ik.irk.addr, MGMT_ADDR_LE_RANDOM, got), 0);
    irks_kept = 0;
    ev(0x0018, 0, ip, sizeof ip);
    ip[0] = 0; /* another not to keep */
    ip[14] ^= 0xFF;
    ev(0x0018, 0, ip, sizeof ip);
    ble_keys_on_fd(k, EPOLLIN, 7300);
    assert_int_equal(ble_keys_count(k), 4);
    assert_int_equal(irks_kept, 1); /* the scanner is told of the kept one only */
    assert_memory_equal(&irk_told, &ik.irk, sizeof ik.irk);
    ip[0] = 1; /* the same key again: nothing new to tell */
    ip[14] ^= 0xFF;
    ev(0x0018, 0, ip, sizeof ip);
    ble_keys_on_fd(k, EPOLLIN, 7400);
    assert_int_equal(irks_kept, 1);
    assert_int_equal(ble_keys_irk(k, ik.irk.addr, MGMT_ADDR_LE_RANDOM, got), 1);
    assert_memory_equal(got, ik.irk.val, 16);
    assert_int_equal(ble_keys_irk(k, ik.irk.addr, MGMT_ADDR_LE_PUBLIC, got), 0);
    assert_int_equal(ble_keys_load(path, back, 8, &n, why, sizeof why), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(&back[3], &ik, sizeof ik);

    /* the kernel side goes: the keeper stops, the file stays */
    close(kernel);
    ble_keys_on_fd(k, EPOLLIN | EPOLLHUP, 8000);
    assert_int_equal(ble_keys_fd(k), -1);
    assert_null(ble_keys_stats(k));
    assert_int_equal(ble_keys_deadline(k), 8000 + BLE_KEYS_REOPEN_MIN_S * 1000000000LL);
    ble_keys_free(k);
    assert_int_equal(ble_keys_load(path, back, 8, &n, why, sizeof why), 0);
    assert_int_equal(n, 4);

    /* a restart loads controller 0's three keys (its IRK, two LTKs); 5's stays in the file */
    k = start(&dev, 1);
    struct ble_key want[3] = {file[0], nk, ik};
    controller_up(k, want, 3);
    close(kernel);
    ble_keys_free(k);
}

static void test_a_refused_file_is_moved_aside_not_overwritten(void **state)
{
    (void)state;
    write_file(path, "{\"engaged_ble_keys\": 1, \"keys\": [oops]}", 0600);
    struct ble_keys *k = start(NULL, 0);
    assert_int_equal(ble_keys_count(k), 0);
    controller_up(k, NULL, 0); /* nothing from the bad file goes to the kernel */
    struct ble_key nk = key(0, 4, MGMT_ADDR_LE_PUBLIC, 0);
    uint8_t p[37] = {1};
    wire_key(p + 1, &nk.ltk);
    ev(0x000A, 0, p, sizeof p);
    ble_keys_on_fd(k, EPOLLIN, 5000);
    struct ble_key back[2];
    size_t n;
    char why[200];
    assert_int_equal(ble_keys_load(path, back, 2, &n, why, sizeof why), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(&back[0], &nk, sizeof nk);
    /* the old text is kept, whole, beside it */
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)))
        if (strstr(e->d_name, BLE_KEYS_SUFFIX ".bad-")) {
            char q[512], buf[128] = "";
            snprintf(q, sizeof q, "%s/%s", dir, e->d_name);
            FILE *f = fopen(q, "r");
            assert_non_null(f);
            assert_non_null(fgets(buf, sizeof buf, f));
            fclose(f);
            assert_string_equal(buf, "{\"engaged_ble_keys\": 1, \"keys\": [oops]}");
            found++;
        }
    closedir(d);
    assert_int_equal(found, 1);
    close(kernel);
    ble_keys_free(k);
}

/* stderr into a file for the span of a test: what the keeper logs, counted. */
static int saved_stderr = -1;
static char log_path[160];

static void capture_log(void)
{
    snprintf(log_path, sizeof log_path, "%s/log", dir);
    fflush(stderr);
    saved_stderr = dup(2);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    close(fd);
}

/* Times needle is in what was logged since capture_log (stderr is put back). */
static int logged(const char *needle)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    char buf[16384];
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    int count = 0;
    for (const char *p = buf; (p = strstr(p, needle)); p++)
        count++;
    return count;
}

#define S 1000000000LL

static void test_the_keeper_opens_the_socket_again_with_backoff(void **state)
{
    (void)state;
    struct ble_key file[1] = {key(0, 1, MGMT_ADDR_LE_RANDOM, 1)};
    assert_int_equal(ble_keys_save(path, file, 1), 0);
    capture_log();
    /* no Bluetooth at start, nor 2 s later; then it is there */
    opens = 0;
    n_plan = 3;
    plan[0] = plan[1] = -EAFNOSUPPORT;
    plan[2] = 0;
    int64_t t = 1000;
    struct ble_keys *k = ble_keys_start(&HOOKS, path, NULL, 0, -1, t);
    assert_non_null(k);
    assert_int_equal(opens, 1);
    assert_int_equal(ble_keys_fd(k), -1);
    assert_null(ble_keys_stats(k));
    assert_int_equal(ble_keys_count(k), 1); /* the file is read all the same */
    assert_int_equal(ble_keys_deadline(k), t + 2 * S);
    ble_keys_on_timer(k, t + 2 * S - 1); /* not yet */
    assert_int_equal(opens, 1);
    t += 2 * S;
    ble_keys_on_timer(k, t);
    assert_int_equal(opens, 2);
    assert_int_equal(ble_keys_deadline(k), t + 4 * S); /* doubled */
    t += 4 * S;
    ble_keys_on_timer(k, t);
    assert_int_equal(opens, 3);
    assert_true(ble_keys_fd(k) >= 0);
    controller_up_at(k, file, 1, t); /* the file's key goes to the kernel */

    /* a device bonds; the socket then closes after a second: the backoff goes on (8 s) */
    struct ble_key nk = key(0, 7, MGMT_ADDR_LE_PUBLIC, 0);
    uint8_t p[37] = {1};
    wire_key(p + 1, &nk.ltk);
    ev(0x000A, 0, p, sizeof p);
    ble_keys_on_fd(k, EPOLLIN, t + S / 2);
    assert_int_equal(ble_keys_count(k), 2);
    close(kernel);
    t += S;
    ble_keys_on_fd(k, EPOLLIN | EPOLLHUP, t);
    assert_int_equal(ble_keys_fd(k), -1);
    assert_int_equal(ble_keys_deadline(k), t + 8 * S);
    t += 8 * S;
    ble_keys_on_timer(k, t);
    assert_int_equal(opens, 4);
    struct ble_key both[2] = {file[0], nk};
    controller_up_at(k, both, 2, t); /* the new session gets the key learnt in the last */

    /* a session that lasted a minute: the next try is 2 s after it closes */
    close(kernel);
    t += BLE_KEYS_STEADY_S * S;
    ble_keys_on_fd(k, EPOLLIN | EPOLLHUP, t);
    assert_int_equal(ble_keys_deadline(k), t + 2 * S);

    /* the waits stop doubling at BLE_KEYS_REOPEN_MAX_S */
    n_plan = 16;
    for (int i = 0; i < 16; i++)
        plan[i] = -ENODEV;
    opens = 0;
    int64_t wait = 0;
    for (int i = 0; i < 12; i++) {
        t = ble_keys_deadline(k);
        ble_keys_on_timer(k, t);
        wait = ble_keys_deadline(k) - t;
    }
    assert_int_equal(opens, 12);
    assert_int_equal(wait, BLE_KEYS_REOPEN_MAX_S * S);
    ble_keys_free(k);

    /* one line for each reason, not one for each try */
    assert_int_equal(logged("not kept by engaged: fake: Address family not supported"), 1);
    assert_int_equal(logged("not kept by engaged: fake: No such device"), 1);
    assert_int_equal(logged("the mgmt socket closed"), 2);
    assert_int_equal(logged("bonding keys are kept again"), 2);
}

static void test_a_failure_that_cannot_change_is_not_tried_again(void **state)
{
    (void)state;
    const int lasting[] = {-EPERM, -EACCES, -EPROTONOSUPPORT};
    for (size_t i = 0; i < sizeof lasting / sizeof *lasting; i++) {
        opens = 0;
        n_plan = 1;
        plan[0] = lasting[i];
        struct ble_keys *k = ble_keys_start(&HOOKS, path, NULL, 0, -1, 1000);
        assert_non_null(k);
        assert_int_equal(ble_keys_deadline(k), INT64_MAX);
        ble_keys_on_timer(k, 1000 + 3600 * S);
        assert_int_equal(opens, 1);
        assert_int_equal(ble_keys_fd(k), -1);
        ble_keys_free(k);
    }
}

static void test_mgmt_open_fails_with_a_reason_here(void **state)
{
    (void)state;
    char why[200] = "";
    int fd = mgmt_open(why, sizeof why);
    if (fd >= 0) { /* a kernel with Bluetooth and CAP_NET_ADMIN: the socket opens */
        close(fd);
        return;
    }
    assert_true(why[0] != '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_then_parse_gives_the_same_keys),
        cmocka_unit_test(test_bad_files_are_refused_whole_with_a_reason),
        cmocka_unit_test_setup_teardown(test_save_is_0600_and_load_reads_it_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_keys_go_to_the_kernel_and_new_ones_to_the_file,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_refused_file_is_moved_aside_not_overwritten,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_keeper_opens_the_socket_again_with_backoff,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failure_that_cannot_change_is_not_tried_again,
                                        setup, teardown),
        cmocka_unit_test(test_mgmt_open_fails_with_a_reason_here),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
