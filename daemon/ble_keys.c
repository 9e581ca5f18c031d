/* Bonding keys of raw-mode BLE links (daemon/ble_keys.h, docs/ble.md "Bonding keys"). */
#include "daemon/ble_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"
#include "drivers/ble_hci.h"

#define KEYS_VERSION 1

/* ---- the key file ------------------------------------------------------------------ */

static int hex_field(const json_t *o, const char *name, uint8_t *out, size_t n)
{
    const char *s = json_string_value(json_object_get(o, name));
    if (!s || strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char c = s[2 * i + (size_t)j];
            int d = c >= '0' && c <= '9' ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                return -1;
            v = v * 16 + (unsigned)d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* An integer member in [lo, hi], or -1. */
static int64_t int_field(const json_t *o, const char *name, int64_t lo, int64_t hi)
{
    const json_t *v = json_object_get(o, name);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return -1;
    return json_integer_value(v);
}

static const char *const MEMBERS[] = {"controller", "address", "address_type", "key_type",
                                      "central", "enc_size", "ediv", "rand", "value", NULL};
static const char *const IRK_MEMBERS[] = {"kind", "controller", "address", "address_type",
                                          "value", NULL};

/* Every member of o is in names. */
static int members_known(const json_t *o, const char *const *names)
{
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)o, name, v) {
        int known = 0;
        for (size_t i = 0; names[i] && !known; i++)
            known = strcmp(name, names[i]) == 0;
        if (!known)
            return 0;
    }
    return 1;
}

/* The members both kinds have: controller, address and its type (mgmt's). */
static int parse_common(const json_t *o, uint16_t *ctl, uint8_t addr[6], uint8_t *addr_type,
                        const char **bad)
{
    struct hci_addr a;
    const char *as = json_string_value(json_object_get(o, "address"));
    const char *type = json_string_value(json_object_get(o, "address_type"));
    int64_t c = int_field(o, "controller", 0, 0xFFFE);
    if (c < 0)
        return *bad = "controller is not an integer 0..65534", -1;
    if (!as || hci_addr_parse(as, &a) < 0)
        return *bad = "address is not XX:XX:XX:XX:XX:XX", -1;
    if (!type || (strcmp(type, "public") != 0 && strcmp(type, "random") != 0))
        return *bad = "address_type is not public or random", -1;
    *ctl = (uint16_t)c;
    memcpy(addr, a.b, sizeof a.b);
    *addr_type = strcmp(type, "public") == 0 ? MGMT_ADDR_LE_PUBLIC : MGMT_ADDR_LE_RANDOM;
    return 0;
}

/* {"kind": "irk", "controller", "address", "address_type", "value"} */
static int parse_irk(const json_t *o, struct ble_key *k, const char **bad)
{
    static const uint8_t zero[16];
    k->kind = BLE_KEY_IRK;
    if (!members_known(o, IRK_MEMBERS))
        return *bad = "an unknown member", -1;
    if (parse_common(o, &k->controller, k->irk.addr, &k->irk.addr_type, bad) < 0)
        return -1;
    if (hex_field(o, "value", k->irk.val, sizeof k->irk.val) < 0)
        return *bad = "value is not 32 hex digits", -1;
    if (memcmp(k->irk.val, zero, sizeof zero) == 0)
        return *bad = "value is all zero", -1;
    if (!mgmt_irk_valid(&k->irk))
        return *bad = "not a key the kernel takes", -1;
    return 0;
}

static int parse_key(const json_t *o, struct ble_key *k, const char **bad)
{
    memset(k, 0, sizeof *k);
    const json_t *kind = json_object_get(o, "kind");
    if (kind) {
        if (json_is_string(kind) && strcmp(json_string_value(kind), "irk") == 0)
            return parse_irk(o, k, bad);
        return *bad = "kind is not \"irk\" (a long term key has none)", -1;
    }
    if (!members_known(o, MEMBERS))
        return *bad = "an unknown member", -1;
    if (parse_common(o, &k->controller, k->ltk.addr, &k->ltk.addr_type, bad) < 0)
        return -1;
    int64_t kt = int_field(o, "key_type", 0, 3), es = int_field(o, "enc_size", 7, 16);
    int64_t ediv = int_field(o, "ediv", 0, 0xFFFF);
    const json_t *central = json_object_get(o, "central");
    if (kt < 0)
        return *bad = "key_type is not an integer 0..3", -1;
    if (!json_is_boolean(central))
        return *bad = "central is not true or false", -1;
    if (es < 0)
        return *bad = "enc_size is not an integer 7..16", -1;
    if (ediv < 0)
        return *bad = "ediv is not an integer 0..65535", -1;
    if (hex_field(o, "rand", k->ltk.rand, sizeof k->ltk.rand) < 0)
        return *bad = "rand is not 16 hex digits", -1;
    if (hex_field(o, "value", k->ltk.val, sizeof k->ltk.val) < 0)
        return *bad = "value is not 32 hex digits", -1;
    k->ltk.key_type = (uint8_t)kt;
    k->ltk.central = json_is_true(central);
    k->ltk.enc_size = (uint8_t)es;
    k->ltk.ediv = (uint16_t)ediv;
    if (!mgmt_ltk_valid(&k->ltk))
        return *bad = "not a key the kernel takes", -1;
    return 0;
}

/* Long Term Keys are one per (controller, device, role), Identity Resolving Keys one per
 * (controller, device): a later one replaces an earlier one. */
static int same_slot(const struct ble_key *a, const struct ble_key *b)
{
    if (a->controller != b->controller || a->kind != b->kind)
        return 0;
    if (a->kind == BLE_KEY_IRK)
        return a->irk.addr_type == b->irk.addr_type && memcmp(a->irk.addr, b->irk.addr, 6) == 0;
    return a->ltk.addr_type == b->ltk.addr_type && a->ltk.central == b->ltk.central &&
           memcmp(a->ltk.addr, b->ltk.addr, 6) == 0;
}

int ble_keys_parse(const char *text, size_t len, struct ble_key *out, size_t max, size_t *n,
                   char *why, size_t cap)
{
    *n = 0;
    if (len > BLE_KEYS_FILE_MAX) {
        mgmt_say(why, cap, "longer than %d bytes", BLE_KEYS_FILE_MAX);
        return -EINVAL;
    }
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        mgmt_say(why, cap, "not JSON: line %d: %s", err.line, err.text);
        return -EINVAL;
    }
    int r = -EINVAL;
    const json_t *keys = json_object_get(root, "keys");
    if (!json_is_object(root) || int_field(root, "engaged_ble_keys", 1, 1) != KEYS_VERSION ||
        json_object_size(root) != 2) {
        mgmt_say(why, cap, "not an engaged key file (version %d): {\"engaged_ble_keys\": 1, "
                      "\"keys\": [...]}", KEYS_VERSION);
    } else if (!json_is_array(keys)) {
        mgmt_say(why, cap, "keys is not an array");
    } else if (json_array_size(keys) > max) {
        mgmt_say(why, cap, "%zu keys, more than the %zu kept", json_array_size(keys), max);
    } else {
        r = 0;
        for (size_t i = 0; r == 0 && i < json_array_size(keys); i++) {
            const char *bad = NULL;
            const json_t *o = json_array_get(keys, i);
            if (!json_is_object(o) || parse_key(o, &out[*n], &bad) < 0) {
                mgmt_say(why, cap, "key %zu: %s", i + 1, bad ? bad : "not an object");
                r = -EINVAL;
                break;
            }
            for (size_t j = 0; j < *n; j++)
                if (same_slot(&out[j], &out[*n])) {
                    mgmt_say(why, cap, "key %zu: a second key of its kind for the same "
                                  "device, role and controller", i + 1);
                    r = -EINVAL;
                }
            if (r == 0)
                (*n)++;
        }
        if (r < 0)
            *n = 0;
    }
    json_decref(root);
    return r;
}

static void hex(char *dst, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snprintf(dst + 2 * i, 3, "%02x", b[i]);
}

char *ble_keys_format(const struct ble_key *keys, size_t n)
{
    json_t *arr = json_array(), *root = arr ? json_pack("{s:i,s:o}", "engaged_ble_keys",
                                                        KEYS_VERSION, "keys", arr)
                                            : NULL;
    if (!root)
        return NULL;
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        const struct mgmt_ltk *k = &keys[i].ltk;
        char addr[18], rnd[17], val[33];
        struct hci_addr a;
        if (keys[i].kind == BLE_KEY_IRK) {
            const struct mgmt_irk *ik = &keys[i].irk;
            memcpy(a.b, ik->addr, sizeof a.b);
            hex(val, ik->val, sizeof ik->val);
            json_t *o = json_pack("{s:s,s:i,s:s,s:s,s:s}", "kind", "irk", "controller",
                                  (int)keys[i].controller, "address",
                                  hci_addr_str(&a, addr, sizeof addr), "address_type",
                                  ik->addr_type == MGMT_ADDR_LE_PUBLIC ? "public" : "random",
                                  "value", val);
            bad = !o || json_array_append_new(arr, o) < 0;
            continue;
        }
        memcpy(a.b, k->addr, sizeof a.b);
        hex(rnd, k->rand, sizeof k->rand);
        hex(val, k->val, sizeof k->val);
        json_t *o = json_pack("{s:i,s:s,s:s,s:i,s:b,s:i,s:i,s:s,s:s}", "controller",
                              (int)keys[i].controller, "address",
                              hci_addr_str(&a, addr, sizeof addr), "address_type",
                              k->addr_type == MGMT_ADDR_LE_PUBLIC ? "public" : "random",
                              "key_type", (int)k->key_type, "central", (int)k->central,
                              "enc_size", (int)k->enc_size, "ediv", (int)k->ediv, "rand", rnd,
                              "value", val);
        bad = !o || json_array_append_new(arr, o) < 0;
    }
    char *s = bad ? NULL : json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return s;
}

int ble_keys_load(const char *path, struct ble_key *out, size_t max, size_t *n, char *why,
                  size_t cap)
{
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        int e = -errno;
        mgmt_say(why, cap, "%s", strerror(-e));
        return e;
    }
    struct stat st;
    char *buf = NULL;
    int r = 0;
    if (fstat(fd, &st) < 0) {
        r = -errno;
    } else if (!S_ISREG(st.st_mode)) {
        r = -EINVAL;
        mgmt_say(why, cap, "not a regular file");
    } else if (st.st_size > BLE_KEYS_FILE_MAX) {
        r = -EINVAL;
        mgmt_say(why, cap, "longer than %d bytes", BLE_KEYS_FILE_MAX);
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        r = -ENOMEM;
    } else {
        size_t got = 0;
        while (r == 0 && got < (size_t)st.st_size) {
            ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                r = k < 0 ? -errno : -EIO;
            else
                got += (size_t)k;
        }
        if (r == 0)
            r = ble_keys_parse(buf, got, out, max, n, why, cap);
    }
    if (r < 0 && r != -EINVAL)
        mgmt_say(why, cap, "%s", strerror(-r));
    free(buf);
    close(fd);
    return r;
}

static int write_all(int fd, const char *s, size_t len)
{
    while (len) {
        ssize_t k = write(fd, s, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        s += k;
        len -= (size_t)k;
    }
    return 0;
}

int ble_keys_save(const char *path, const struct ble_key *keys, size_t n)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    char *text = ble_keys_format(keys, n);
    if (!text)
        return -ENOMEM;
    int r = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        r = -errno;
    } else {
        /* 0600 whatever the umask or an older file's mode: the keys are secrets */
        if (fchmod(fd, 0600) < 0 || (r = write_all(fd, text, strlen(text))) < 0 ||
            write_all(fd, "\n", 1) < 0 || fsync(fd) < 0)
            r = r < 0 ? r : -errno;
        if (close(fd) < 0 && r == 0)
            r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
            r = -errno;
        if (r < 0)
            unlink(tmp);
    }
    free(text);
    if (r == 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd) < 0)
                r = -errno;
            close(dfd);
        }
    }
    return r;
}

/* ---- the keeper -------------------------------------------------------------------- */

struct ble_keys {
    int fd, outer;
    uint32_t ep_events;
    struct mgmt *m;                  /* NULL: no session (opened again at reopen_ns) */
    struct ble_keys_hooks h;
    int64_t reopen_ns;               /* INT64_MAX: not tried again */
    int64_t opened_ns;               /* when the session began */
    unsigned fails;                  /* opens failed in a row, or short sessions */
    char last_why[256];              /* the reason last logged: a new one is logged again */
    char path[PATH_MAX];
    int file_bad;                    /* the file was refused: moved aside at the first save */
    struct ble_key keys[BLE_KEYS_MAX];
    size_t n;
    struct ble_keys_device *devices;
    size_t n_devices;
};

static size_t keys_for(void *ud, uint16_t index, struct mgmt_ltk *out, size_t max)
{
    struct ble_keys *k = ud;
    size_t n = 0;
    for (size_t i = 0; i < k->n && n < max; i++)
        if (k->keys[i].controller == index && k->keys[i].kind == BLE_KEY_LTK)
            out[n++] = k->keys[i].ltk;
    return n;
}

static size_t irks_for(void *ud, uint16_t index, struct mgmt_irk *out, size_t max)
{
    struct ble_keys *k = ud;
    size_t n = 0;
    for (size_t i = 0; i < k->n && n < max; i++)
        if (k->keys[i].controller == index && k->keys[i].kind == BLE_KEY_IRK)
            out[n++] = k->keys[i].irk;
    return n;
}

static void save(struct ble_keys *k)
{
    if (k->file_bad) {
        char aside[PATH_MAX + 32];
        snprintf(aside, sizeof aside, "%s.bad-%lld", k->path, (long long)time(NULL));
        if (rename(k->path, aside) == 0 || errno == ENOENT)
            log_warn("ble: the key file %s could not be read; it is kept as %s and a new one "
                     "is written", k->path, aside);
        else {
            log_error("ble: the key file %s could not be read nor moved aside (%s): new bonding"
                      " keys are not saved", k->path, strerror(errno));
            return;
        }
        k->file_bad = 0;
    }
    int r = ble_keys_save(k->path, k->keys, k->n);
    if (r < 0)
        log_error("ble: bonding keys not saved to %s: %s (the kernel holds them until the hub "
                  "restarts)", k->path, strerror(-r));
}

/* Puts nk in its slot (replacing the key there) and writes the file; what a new key is, for
 * the log ("its key"). 1 when it is kept (new, or not the key held), else 0. */
static int keep(struct ble_keys *k, const struct ble_key *nk, const uint8_t wire_addr[6],
                const char *what)
{
    struct hci_addr a;
    char addr[18];
    memcpy(a.b, wire_addr, sizeof a.b);
    size_t i = 0;
    while (i < k->n && !same_slot(&k->keys[i], nk))
        i++;
    if (i == k->n && k->n == BLE_KEYS_MAX) {
        log_error("ble: the bonding key of %s (hci%u) is not saved: %d keys are kept already",
                  hci_addr_str(&a, addr, sizeof addr), (unsigned)nk->controller, BLE_KEYS_MAX);
        return 0;
    }
    if (i < k->n && memcmp(&k->keys[i], nk, sizeof *nk) == 0)
        return 0; /* the same key again: nothing to write */
    k->keys[i] = *nk;
    if (i == k->n)
        k->n++;
    log_notice("ble: bonded with %s (hci%u, %s); %zu keys in %s",
               hci_addr_str(&a, addr, sizeof addr), (unsigned)nk->controller, what, k->n,
               k->path);
    save(k);
    return 1;
}

static void new_key(void *ud, uint16_t index, const struct mgmt_ltk *ltk)
{
    struct ble_key nk;
    memset(&nk, 0, sizeof nk);
    nk.controller = index;
    nk.ltk = *ltk;
    nk.kind = BLE_KEY_LTK;
    (void)keep(ud, &nk, ltk->addr, ltk->central ? "its key" : "our key");
}

static void new_irk(void *ud, uint16_t index, const struct mgmt_irk *irk)
{
    struct ble_key nk;
    memset(&nk, 0, sizeof nk);
    nk.controller = index;
    nk.irk = *irk;
    nk.kind = BLE_KEY_IRK;
    struct ble_keys *k = ud;
    if (keep(k, &nk, irk->addr, "its identity resolving key") && k->h.irk_kept)
        k->h.irk_kept(k->h.ud, irk);
}

static int confirm(void *ud, uint16_t index, const uint8_t addr[6], uint8_t addr_type)
{
    struct ble_keys *k = ud;
    (void)index;
    for (size_t i = 0; i < k->n_devices; i++)
        if (k->devices[i].addr_type == addr_type && memcmp(k->devices[i].addr, addr, 6) == 0)
            return 1;
    return 0;
}

static void note(void *ud, int level, const char *msg)
{
    (void)ud;
    if (level == MGMT_NOTE_WARN)
        log_warn("ble: mgmt: %s", msg);
    else
        log_info("ble: mgmt: %s", msg);
}

static const struct mgmt_ops OPS = {.keys_for = keys_for, .new_key = new_key,
                                    .confirm = confirm, .note = note, .irks_for = irks_for,
                                    .new_irk = new_irk};

static void watch(struct ble_keys *k)
{
    if (k->outer < 0 || !k->m)
        return;
    uint32_t want = EPOLLIN | (mgmt_want_write(k->m) ? EPOLLOUT : 0);
    if (want == k->ep_events)
        return;
    struct epoll_event ev = {.events = want, .data.fd = k->fd};
    if (epoll_ctl(k->outer, k->ep_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, k->fd, &ev) == 0)
        k->ep_events = want;
}

/* Schedules the next open: BLE_KEYS_REOPEN_MIN_S doubling to BLE_KEYS_REOPEN_MAX_S. */
static void reopen_later(struct ble_keys *k, int64_t now_ns)
{
    int64_t s = BLE_KEYS_REOPEN_MIN_S;
    for (unsigned i = 0; i < k->fails && s < BLE_KEYS_REOPEN_MAX_S; i++)
        s *= 2;
    if (s > BLE_KEYS_REOPEN_MAX_S)
        s = BLE_KEYS_REOPEN_MAX_S;
    k->reopen_ns = now_ns + s * 1000000000LL;
    k->fails++;
}

/* Opens the mgmt socket and starts a session: the controllers are listed, made bondable and
 * given every key held. A failure is logged when its reason is new; it is tried again later
 * unless it cannot change while the daemon runs (no Bluetooth in the build, no capability). */
static void open_session(struct ble_keys *k, int64_t now_ns)
{
    char why[256] = "";
    int fd = k->h.open(k->h.ud, why, sizeof why);
    if (fd < 0) {
        int lasting = fd == -EPROTONOSUPPORT || fd == -EPERM || fd == -EACCES;
        if (strcmp(why, k->last_why) != 0)
            log_notice("ble: bonding keys are not kept by engaged: %s%s", why,
                       lasting ? "" : " (tried again later)");
        snprintf(k->last_why, sizeof k->last_why, "%s", why);
        if (lasting)
            k->reopen_ns = INT64_MAX;
        else
            reopen_later(k, now_ns);
        return;
    }
    if (!(k->m = mgmt_new(fd, &OPS, k))) {
        close(fd);
        log_error("ble: bonding keys are not kept: out of memory");
        reopen_later(k, now_ns);
        return;
    }
    if (k->last_why[0])
        log_notice("ble: the mgmt socket is open: bonding keys are kept again");
    k->last_why[0] = 0;
    k->fd = fd;
    k->opened_ns = now_ns;
    k->reopen_ns = INT64_MAX;
    int r = mgmt_start(k->m, now_ns);
    if (r < 0)
        log_warn("ble: mgmt: cannot ask for the controllers: %s", strerror(-r));
    watch(k);
}

struct ble_keys *ble_keys_start(const struct ble_keys_hooks *h, const char *path,
                                const struct ble_keys_device *devices, size_t n_devices,
                                int outer, int64_t now_ns)
{
    struct ble_keys *k = calloc(1, sizeof *k);
    if (!k || (n_devices && !(k->devices = malloc(n_devices * sizeof *devices)))) {
        if (k)
            free(k->devices);
        free(k);
        return NULL;
    }
    if (n_devices)
        memcpy(k->devices, devices, n_devices * sizeof *devices);
    k->n_devices = n_devices;
    k->fd = -1;
    k->outer = outer;
    k->h = *h;
    k->reopen_ns = INT64_MAX;
    snprintf(k->path, sizeof k->path, "%s", path);
    char why[256] = "";
    if (ble_keys_load(path, k->keys, BLE_KEYS_MAX, &k->n, why, sizeof why) < 0) {
        k->file_bad = 1;
        log_error("ble: the key file %s is not read (%s): no bonding key is given to the "
                  "kernel; devices that bonded before pair again", path, why);
    } else {
        log_info("ble: %zu bonding keys read from %s", k->n, path);
    }
    open_session(k, now_ns);
    return k;
}

static void stop_session(struct ble_keys *k)
{
    if (!k->m)
        return;
    if (k->outer >= 0 && k->ep_events)
        epoll_ctl(k->outer, EPOLL_CTL_DEL, k->fd, NULL);
    k->ep_events = 0;
    k->m = (mgmt_free(k->m), NULL);
    close(k->fd);
    k->fd = -1;
}

struct ble_keys *ble_keys_free(struct ble_keys *k)
{
    if (k) {
        stop_session(k);
        free(k->devices);
        free(k);
    }
    return NULL;
}

int ble_keys_fd(const struct ble_keys *k) { return k && k->m ? k->fd : -1; }

void ble_keys_on_fd(struct ble_keys *k, uint32_t events, int64_t now_ns)
{
    if (!k || !k->m)
        return;
    if ((events & EPOLLOUT) && mgmt_on_writable(k->m, now_ns) < 0)
        events |= EPOLLERR;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        int r = mgmt_on_readable(k->m, now_ns);
        if (r < 0) {
            log_warn("ble: the mgmt socket closed (%s): new bonding keys are not saved until "
                     "it is open again", strerror(-r));
            stop_session(k);
            /* a session that lasted starts the backoff again; one that did not goes on with it */
            if (now_ns - k->opened_ns >= BLE_KEYS_STEADY_S * 1000000000LL)
                k->fails = 0;
            snprintf(k->last_why, sizeof k->last_why, "the mgmt socket closed");
            reopen_later(k, now_ns);
            return;
        }
    }
    watch(k);
}

int64_t ble_keys_deadline(const struct ble_keys *k)
{
    if (!k)
        return INT64_MAX;
    return k->m ? mgmt_next_timeout(k->m) : k->reopen_ns;
}

void ble_keys_on_timer(struct ble_keys *k, int64_t now_ns)
{
    if (!k)
        return;
    if (!k->m) {
        if (now_ns >= k->reopen_ns)
            open_session(k, now_ns);
        return;
    }
    if (mgmt_next_timeout(k->m) > now_ns)
        return;
    mgmt_on_timer(k->m, now_ns);
    watch(k);
}

const struct mgmt_stats *ble_keys_stats(const struct ble_keys *k)
{
    return k && k->m ? mgmt_stats(k->m) : NULL;
}

size_t ble_keys_count(const struct ble_keys *k) { return k ? k->n : 0; }

void ble_keys_get_status(const struct ble_keys *k, struct ble_keys_status *ret)
{
    memset(ret, 0, sizeof *ret);
    for (size_t i = 0; i < k->n; i++)
        k->keys[i].kind == BLE_KEY_IRK ? ret->irks++ : ret->ltks++;
    ret->state = k->m                         ? BLE_KEYS_KEPT
                 : k->reopen_ns == INT64_MAX ? BLE_KEYS_FAILED
                                             : BLE_KEYS_RETRYING;
    ret->controllers = k->m ? mgmt_stats(k->m)->controllers : 0;
    ret->error = k->m ? "" : k->last_why;
    ret->reopen_ns = k->m ? INT64_MAX : k->reopen_ns;
}

int ble_keys_irk(const struct ble_keys *k, const uint8_t addr[6], uint8_t addr_type,
                 uint8_t irk[16])
{
    for (size_t i = 0; k && i < k->n; i++) {
        const struct ble_key *x = &k->keys[i];
        if (x->kind == BLE_KEY_IRK && x->irk.addr_type == addr_type &&
            memcmp(x->irk.addr, addr, 6) == 0) {
            memcpy(irk, x->irk.val, 16);
            return 1;
        }
    }
    return 0;
}
