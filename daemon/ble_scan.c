/* LE scanning for the daemon's BLE sources (daemon/ble_int.h, docs/ble-scan.md).
 *
 * A source that scans (`connect = scan`, or `auto` with an l2cap transport) is connected only
 * after its advertisement has been seen: at start, and again after every failure (the
 * reference §3.4: in raw mode, wait for the peer's advertisement before connecting). The
 * report also gives the address type, public or random, which an l2cap connect must name and
 * which otherwise has to be configured. Sources are matched by address only: taking "the
 * first device advertising service X" could attach a stranger's device to a participant,
 * which a study cannot detect afterwards.
 *
 * One scanner (drivers/ble_hci.h) per HCI device named by the sources' `hci` (normally one:
 * the default adapter), on a raw HCI socket, or for tests on a Unix SEQPACKET socket served by
 * a fake controller (`hci = sim:/PATH`). Whatever goes wrong with a scanner (no Bluetooth in
 * the kernel, no adapter, no permission, a controller refusing legacy scanning, the socket
 * failing) is logged in one line and its sources fall back to direct connects on their usual
 * backoff schedule; scanning is not retried until the daemon restarts.
 *
 * Holding a device: the manager asks ble_scan_holds() before arming or running a device's
 * timer. A device is held before its first advertisement, and when its next attempt is due
 * but no advertisement has arrived since it last changed state (failed); an advertisement
 * then starts the attempt at once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/ble_int.h"
#include "daemon/log.h"
#include "drivers/ble_hci.h"

#define BLE_SCAN_DEDUPE_MS 1000     /* reports per device and second, at most */
#define BLE_SCAN_INTERVAL 0x00A0    /* 100 ms (units of 0.625 ms) */
#define BLE_SCAN_WINDOW 0x0050      /* 50 ms of it listening */
#define NS_PER_MS INT64_C(1000000)

struct scanner {
    struct ble_scan *sc;
    char hci[CONF_STR_SIZE];        /* as configured: "" (auto), hciN or sim:/PATH */
    int fd;
    int sim;
    struct hci_dev_saved saved;
    struct hci_scan *s;
    int failed;                     /* its sources connect directly */
};

struct scan_dev {
    int scanner;                    /* index in ble_scan.sc, -1: connects directly */
    int started;                    /* ble_dev_start has run */
    int64_t seen_ms;                /* UTC of its last advertisement (0: none) */
    struct hci_addr addr;
};

struct ble_scan {
    struct ble *b;
    struct ble_dev *devs;
    size_t n_dev;
    int outer;
    struct scan_dev *sd;
    struct scanner *sc;
    size_t n_sc;
    int closing;                    /* shutdown: failures are no longer acted on */
};

static int64_t mono(const struct ble_scan *sc) { return ble_now(sc->b)->mono_ns; }
static int64_t utc(const struct ble_scan *sc) { return ble_now(sc->b)->utc_ms; }

static const char *hci_name(const struct scanner *s)
{
    return s->hci[0] ? s->hci : "the default adapter";
}

/* Does source s scan? */
static int wants_scan(const struct conf_source *s, const struct ble_dev *d)
{
    if (s->connect == CONF_CONNECT_SCAN)
        return 1;
    return s->connect == CONF_CONNECT_AUTO && d->tr.kind == BLE_LINK_L2CAP;
}

/* ---- starting devices ----------------------------------------------------------------- */

static void start_dev(struct ble_scan *sc, size_t i)
{
    if (sc->sd[i].started)
        return;
    sc->sd[i].started = 1;
    sc->devs[i].error[0] = '\0';
    ble_dev_start(&sc->devs[i]);
}

/* A device that waits for its first advertisement: not linked, nothing due, and a status
 * saying why. */
static void wait_dev(struct ble_scan *sc, size_t i)
{
    struct ble_dev *d = &sc->devs[i];
    d->fd = -1;
    d->deadline_ns = d->next_cts_ns = INT64_MAX;
    d->state = BLE_ST_BACKOFF;
    d->since_ms = utc(sc);
    snprintf(d->error, sizeof d->error, "waiting for the device's advertisement (scanning)");
    ble_publish_status(sc->b, d);
}

void ble_scan_start_devices(struct ble_scan *sc)
{
    for (size_t i = 0; i < sc->n_dev; i++) {
        int k = sc->sd[i].scanner;
        if (k < 0 || sc->sc[k].failed)
            start_dev(sc, i);
        else
            wait_dev(sc, i);
    }
}

/* ---- scanner failures ----------------------------------------------------------------- */

static void close_scanner(struct scanner *s)
{
    s->s = hci_scan_free(s->s);
    if (s->fd >= 0) {
        epoll_ctl(s->sc->outer, EPOLL_CTL_DEL, s->fd, NULL);
        if (s->sim)
            close(s->fd);
        else
            hci_dev_close(s->fd, &s->saved);
    }
    s->fd = -1;
}

/* Scanning on s is over: one line, then its sources connect directly. */
static void scanner_failed(struct scanner *s, const char *why)
{
    struct ble_scan *sc = s->sc;
    if (s->failed || sc->closing)
        return;
    s->failed = 1;
    size_t n = 0;
    for (size_t i = 0; i < sc->n_dev; i++)
        n += sc->sd[i].scanner == s - sc->sc;
    log_warn("ble: cannot scan on %s: %s; %zu source%s connect%s without waiting for "
             "advertisements", hci_name(s), why, n, n == 1 ? "" : "s", n == 1 ? "s" : "");
    close_scanner(s);
    /* devices never started start now; held ones are released (ble_scan_holds) */
    for (size_t i = 0; i < sc->n_dev; i++)
        if (sc->sd[i].scanner == s - sc->sc)
            start_dev(sc, i);
}

/* ---- advertisements ------------------------------------------------------------------- */

/* The report says whether the address is public or random: the connect must say the same. */
static void learn_addr_type(struct ble_dev *d, uint8_t addr_type)
{
    enum ble_addr_type t = hci_addr_is_random(addr_type) ? BLE_ADDR_RANDOM : BLE_ADDR_PUBLIC;
    if (d->tr.kind != BLE_LINK_L2CAP || d->tr.addr_type == t)
        return;
    d->tr.addr_type = t;
    snprintf(d->cache_key, sizeof d->cache_key, "%s/%s", d->address,
             t == BLE_ADDR_RANDOM ? "random" : "public");
    log_info("ble %s (%s): advertises a %s address; connecting with that type", d->name,
             d->address, t == BLE_ADDR_RANDOM ? "random" : "public");
}

static void seen(struct ble_scan *sc, size_t i, const struct hci_scan_result *r)
{
    struct ble_dev *d = &sc->devs[i];
    struct scan_dev *sd = &sc->sd[i];
    sd->seen_ms = utc(sc);
    learn_addr_type(d, r->rep.addr_type);
    if (!sd->started) {
        log_info("ble %s (%s): advertising (RSSI %d dBm); connecting", d->name, d->address,
                 r->rep.rssi);
        start_dev(sc, i);
    } else if ((d->state == BLE_ST_BACKOFF || d->state == BLE_ST_ERROR) &&
               ble_dev_deadline(d) <= mono(sc)) {
        /* debug: a device failing while it advertises would log this at every attempt */
        log_debug("ble %s (%s): advertising again; connecting", d->name, d->address);
        ble_dev_on_timer(d);
    }
}

static void on_report(struct hci_scan *s, const struct hci_scan_result *r, void *ud)
{
    struct scanner *sn = ud;
    struct ble_scan *sc = sn->sc;
    for (size_t i = 0; i < sc->n_dev; i++)
        if (sc->sd[i].scanner == sn - sc->sc && memcmp(sc->sd[i].addr.b, r->rep.addr.b, 6) == 0)
            seen(sc, i, r);
}

static void on_done(struct hci_scan *s, int starting, int err, uint8_t status, void *ud)
{
    struct scanner *sn = ud;
    if (err < 0 && err != -ECANCELED) {
        const char *why = hci_scan_strerror(s);
        scanner_failed(sn, why[0] ? why : strerror(-err));
    } else if (starting && err == 0) {
        log_info("ble: scanning on %s", hci_name(sn));
    }
}

/* ---- opening ------------------------------------------------------------------------ */

static int open_sim(const char *path, char *why, size_t cap)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) {
        snprintf(why, cap, "socket path too long");
        return -ENAMETOOLONG;
    }
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = -errno;
        if (fd >= 0)
            close(fd);
        snprintf(why, cap, "%s: %s", path, strerror(-e));
        return e;
    }
    return fd;
}

/* "" or "auto": -1 (the default route); "hciN": N; else -EINVAL. */
static int parse_dev(const char *s)
{
    if (!s[0] || strcmp(s, "auto") == 0)
        return -1;
    char *end;
    if (strncmp(s, "hci", 3) != 0 || s[3] < '0' || s[3] > '9')
        return -EINVAL;
    long v = strtol(s + 3, &end, 10);
    return *end || v > 0xFFFF ? -EINVAL : (int)v;
}

static void open_scanner(struct scanner *s)
{
    char why[BLE_TEXT_MAX] = "";
    struct ble_scan *sc = s->sc;
    s->sim = strncmp(s->hci, "sim:", 4) == 0;
    int dev = s->sim ? 0 : parse_dev(s->hci);
    if (dev == -EINVAL) {
        scanner_failed(s, "invalid hci (expected auto, hciN or sim:/PATH)");
        return;
    }
    s->fd = s->sim ? open_sim(s->hci + 4, why, sizeof why)
                   : hci_dev_open(dev, &s->saved, why, sizeof why);
    if (s->fd < 0) {
        s->fd = -1;
        scanner_failed(s, why);
        return;
    }
    struct hci_addr *addrs = calloc(sc->n_dev, sizeof *addrs);
    size_t n = 0;
    for (size_t i = 0; addrs && i < sc->n_dev; i++)
        if (sc->sd[i].scanner == s - sc->sc)
            addrs[n++] = sc->sd[i].addr;
    struct hci_scan_opts o = {
        .params = {.active = 0, .interval = BLE_SCAN_INTERVAL, .window = BLE_SCAN_WINDOW},
        .dedupe_ns = BLE_SCAN_DEDUPE_MS * NS_PER_MS,
        .addrs = addrs, .n_addrs = n,
        .on_report = on_report, .on_done = on_done, .user_data = s,
    };
    s->s = addrs ? hci_scan_new(s->fd, &o) : NULL;
    free(addrs);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = s->fd};
    if (!s->s || epoll_ctl(sc->outer, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
        scanner_failed(s, strerror(errno));
        return;
    }
    int e = hci_scan_start(s->s, mono(sc));
    if (e < 0 && !s->failed)
        scanner_failed(s, strerror(-e));
}

/* The scanner of hci value h, added if new: its index, or -1 (out of memory). */
static int scanner_for(struct ble_scan *sc, const char *h)
{
    for (size_t k = 0; k < sc->n_sc; k++)
        if (strcmp(sc->sc[k].hci, h) == 0)
            return (int)k;
    struct scanner *s = &sc->sc[sc->n_sc];
    memset(s, 0, sizeof *s);
    s->sc = sc;
    s->fd = -1;
    snprintf(s->hci, sizeof s->hci, "%s", h);
    return (int)sc->n_sc++;
}

struct ble_scan *ble_scan_new(struct ble *b, const struct conf *cf, struct ble_dev *devs,
                              size_t n_dev, int outer)
{
    struct ble_scan *sc = calloc(1, sizeof *sc);
    if (!sc || !(sc->sd = calloc(n_dev, sizeof *sc->sd)) ||
        !(sc->sc = calloc(n_dev, sizeof *sc->sc))) {
        log_error("ble: out of memory for scanning; connecting directly");
        return ble_scan_free(sc);
    }
    sc->b = b;
    sc->devs = devs;
    sc->n_dev = n_dev;
    sc->outer = outer;
    /* devs[] holds the ble sources of cf in order */
    size_t i = 0;
    for (size_t k = 0; k < cf->n_sources && i < n_dev; k++) {
        const struct conf_source *s = &cf->sources[k];
        if (s->driver != CONF_DRIVER_BLE)
            continue;
        sc->sd[i].scanner = -1;
        if (wants_scan(s, &devs[i]) && hci_addr_parse(devs[i].address, &sc->sd[i].addr) == 0)
            sc->sd[i].scanner = scanner_for(sc, strcmp(s->hci, "auto") == 0 ? "" : s->hci);
        i++;
    }
    if (sc->n_sc == 0)
        return ble_scan_free(sc);
    for (size_t k = 0; k < sc->n_sc; k++)
        open_scanner(&sc->sc[k]);
    return sc;
}

struct ble_scan *ble_scan_free(struct ble_scan *sc)
{
    if (!sc)
        return NULL;
    sc->closing = 1;
    for (size_t k = 0; k < sc->n_sc; k++) {
        struct scanner *s = &sc->sc[k];
        /* leave the controller as found: the disable goes out, its answer is not awaited */
        if (s->s && hci_scan_get_state(s->s) != HCI_SCAN_IDLE)
            (void)hci_scan_stop(s->s, mono(sc));
        close_scanner(s);
    }
    free(sc->sd);
    free(sc->sc);
    free(sc);
    return NULL;
}

/* ---- the manager's hooks --------------------------------------------------------------- */

int ble_scan_holds(const struct ble_scan *sc, const struct ble_dev *d)
{
    if (!sc || d < sc->devs || d >= sc->devs + sc->n_dev)
        return 0;
    const struct scan_dev *sd = &sc->sd[d - sc->devs];
    if (sd->scanner < 0 || sc->sc[sd->scanner].failed)
        return 0;
    if (!sd->started)
        return 1;
    /* due, but not seen advertising since it failed */
    return (d->state == BLE_ST_BACKOFF || d->state == BLE_ST_ERROR) &&
           ble_dev_deadline(d) <= mono(sc) && sd->seen_ms < d->since_ms;
}

int ble_scan_on_fd(struct ble_scan *sc, int fd)
{
    if (!sc)
        return 0;
    for (size_t k = 0; k < sc->n_sc; k++) {
        struct scanner *s = &sc->sc[k];
        if (s->fd != fd || !s->s)
            continue;
        int e = hci_scan_on_readable(s->s, mono(sc));
        if (e < 0 && !s->failed)
            scanner_failed(s, hci_scan_strerror(s->s));
        return 1;
    }
    return 0;
}

int64_t ble_scan_deadline(const struct ble_scan *sc)
{
    int64_t t = INT64_MAX;
    for (size_t k = 0; sc && k < sc->n_sc; k++)
        if (sc->sc[k].s && hci_scan_next_timeout(sc->sc[k].s) < t)
            t = hci_scan_next_timeout(sc->sc[k].s);
    return t;
}

void ble_scan_on_timer(struct ble_scan *sc)
{
    for (size_t k = 0; sc && k < sc->n_sc; k++)
        if (sc->sc[k].s && hci_scan_next_timeout(sc->sc[k].s) <= mono(sc))
            hci_scan_on_timer(sc->sc[k].s, mono(sc));
}
