/* LE scanning for the daemon's BLE sources (daemon/ble_int.h, docs/ble-scan.md).
 *
 * A source that scans (`connect = scan`, or `auto` with an l2cap transport) is connected only
 * after its advertisement has been seen: at start, and again after every failure (the
 * reference §3.4: in raw mode, wait for the peer's advertisement before connecting). The
 * report also gives the address type, public or random, which an l2cap connect must name and
 * which otherwise has to be configured. Sources are matched by address only: taking "the
 * first device advertising service X" could attach a stranger's device to a participant,
 * which a study cannot detect afterwards. A source with an `irk` is also matched by the
 * resolvable private addresses its device makes with that key (drivers/ble_rpa.h): the
 * connect then names the address just seen, as random, while everything else (logs, status,
 * attribute cache, store) keeps naming the configured identity address.
 *
 * One scanner (drivers/ble_hci.h) per HCI device named by the sources' `hci` (normally one:
 * the default adapter), on a raw HCI socket, or for tests on a Unix SEQPACKET socket served by
 * a fake controller (`hci = sim:/PATH`). A scanner that fails (no Bluetooth in the kernel, no
 * adapter, no permission, a controller refusing legacy scanning, a command unanswered, the
 * socket failing or closing) is retried on the reconnect backoff schedule (daemon/ble.h),
 * with a PRNG seeded from the study seed and the hci value; meanwhile its sources connect
 * directly on their own schedules. One line is logged per change between scanning and not
 * (a warning when it stops, info when it is back); attempts in between are debug lines, and
 * the sources' status shows the scanner's state, last failure and next attempt. A scanner
 * that is up but hears no report from any device for `scan_silence` while one of its sources
 * waits for an advertisement counts as failed too (check_silence).
 *
 * Holding a device: the manager asks ble_scan_holds() before arming or running a device's
 * timer. While its scanner is up, a device is held before its first advertisement, and when
 * its next attempt is due but no advertisement has arrived since it last changed state
 * (failed); an advertisement then starts the attempt at once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "daemon/ble_int.h"
#include "daemon/ble_keys.h"
#include "daemon/log.h"
#include "drivers/ble_hci.h"

#define BLE_SCAN_DEDUPE_MS 1000     /* reports per device and second, at most */
#define BLE_SCAN_INTERVAL 0x00A0    /* 100 ms (units of 0.625 ms) */
#define BLE_SCAN_WINDOW 0x0050      /* 50 ms of it listening */
#define BLE_SCAN_WHY_MAX 256         /* the scanner's own reasons run to 200 bytes */
#define NS_PER_MS INT64_C(1000000)

struct scanner {
    struct ble_scan *sc;
    char hci[CONF_STR_SIZE];        /* as configured: "" (auto), hciN or sim:/PATH */
    struct ble_hci where;
    int fd;
    struct hci_dev_saved saved;
    struct hci_scan *s;
    size_t *irk_dev;                /* the device whose key is irks[i] of the running scan */
    enum ble_scan_state state;
    int64_t since_ms;               /* UTC of the last state change */
    int down;                       /* failed, not up since: further failures are quiet */
    int64_t up_ns;                  /* when it came up (mono) */
    int64_t retry_ns;               /* retrying: the next attempt (mono) */
    int64_t next_attempt_ms;        /* ... in UTC, for the status */
    struct ble_backoff bo;
    uint64_t failures;
    char error[BLE_SCAN_WHY_MAX];   /* the last failure, "" once up */
    /* Silence: a scanner can stay up and hear nothing (another program turned the scan off,
     * a controller that stopped reporting), which would hold its sources for good. */
    int64_t silence_ns;             /* the smallest `scan_silence` of its sources */
    int64_t heard_ns;               /* mono: its last report from any device, or when up */
    uint64_t heard_reports;         /* the scan's report count then */
    int64_t check_ns;               /* up: when to look at the silence again */
    int deaf;                       /* restarts for silence with nothing heard in between */
};

struct scan_dev {
    int scanner;                    /* index in ble_scan.sc, -1: connects directly */
    int started;                    /* ble_dev_start has run */
    int64_t seen_ms;                /* UTC of its last advertisement (0: none) */
    struct hci_addr addr;           /* the configured (identity) address */
    int has_irk;
    int irk_kept;                   /* irk is the keeper's (from a bonding), not configured */
    uint8_t irk[BLE_IRK_SIZE];      /* most significant octet first; a secret, never logged */
    int via_rpa;                    /* the device's link_address is a resolvable private one */
};

struct ble_scan {
    struct ble *b;
    struct ble_dev *devs;
    size_t n_dev;
    int outer;
    uint64_t seed;                  /* the study's: scanners' backoff jitter */
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

static int of(const struct ble_scan *sc, size_t i, const struct scanner *s)
{
    return sc->sd[i].scanner == s - sc->sc;
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
    ble_dev_touch(d);
    d->fd = -1;
    d->deadline_ns = d->next_cts_ns = INT64_MAX;
    d->state = BLE_ST_BACKOFF;
    d->since_ms = utc(sc);
    snprintf(d->error, sizeof d->error, "waiting for the device's advertisement (scanning)");
    ble_publish_status(sc->b, d);
}

/* ---- the scanner's state ---------------------------------------------------------------- */

static void set_state(struct scanner *s, enum ble_scan_state st)
{
    struct ble_scan *sc = s->sc;
    s->state = st;
    s->since_ms = utc(sc);
    /* its sources' status shows it: publish the change now */
    for (size_t i = 0; i < sc->n_dev; i++)
        if (of(sc, i, s))
            ble_publish_status(sc->b, &sc->devs[i]);
}

static void close_scanner(struct scanner *s)
{
    s->s = hci_scan_free(s->s);
    s->heard_reports = 0; /* that scan's count */
    free(s->irk_dev);
    s->irk_dev = NULL;
    if (s->fd >= 0) {
        epoll_ctl(s->sc->outer, EPOLL_CTL_DEL, s->fd, NULL);
        if (s->where.kind == BLE_HCI_SIM)
            close(s->fd);
        else
            hci_dev_close(s->fd, &s->saved);
    }
    s->fd = -1;
}

/* The next attempt after a failure: its delay (ms). A scanner that stayed up long enough
 * starts the schedule again, unless it heard nothing all that time after an earlier restart
 * for the same silence: then the delays grow, and its sources connect directly meanwhile. */
static int64_t schedule_retry(struct scanner *s)
{
    struct ble_scan *sc = s->sc;
    int64_t up_ms = s->state == BLE_SCAN_UP && s->deaf <= 1 ? (mono(sc) - s->up_ns) / NS_PER_MS
                                                            : -1;
    int64_t delay = ble_backoff_failed(&s->bo, up_ms);
    s->retry_ns = mono(sc) + delay * NS_PER_MS;
    s->next_attempt_ms = utc(sc) + delay;
    return delay;
}

/* One warning when scanning stops; failed attempts after it are debug lines (the status shows
 * the latest reason). */
static void say_failed(const struct scanner *s, int64_t delay)
{
    const struct ble_scan *sc = s->sc;
    size_t n = 0;
    for (size_t i = 0; i < sc->n_dev; i++)
        n += of(sc, i, s);
    if (!s->down)
        log_warn("ble: cannot scan on %s: %s; %zu source%s connect%s without waiting for "
                 "advertisements; retrying in %.1f s", hci_name(s), s->error, n,
                 n == 1 ? "" : "s", n == 1 ? "s" : "", (double)delay / 1000.0);
    else
        log_debug("ble: scanning on %s failed again: %s; next attempt in %.1f s", hci_name(s),
                  s->error, (double)delay / 1000.0);
}

/* Scanning on s stopped or could not start: its sources connect directly until the next
 * attempt, on the backoff schedule, brings it back. */
static void scanner_failed(struct scanner *s, const char *why)
{
    struct ble_scan *sc = s->sc;
    if (sc->closing || s->state == BLE_SCAN_RETRYING)
        return;
    snprintf(s->error, sizeof s->error, "%s", why);
    close_scanner(s);
    s->failures++;
    say_failed(s, schedule_retry(s));
    s->down = 1;
    set_state(s, BLE_SCAN_RETRYING);
    /* devices never started start now; held ones are released (ble_scan_holds) */
    for (size_t i = 0; i < sc->n_dev; i++)
        if (of(sc, i, s))
            start_dev(sc, i);
}

static void scanner_up(struct scanner *s)
{
    if (s->down && s->deaf > 1)
        log_debug("ble: scanning on %s again", hci_name(s)); /* restarted for silence again */
    else if (s->down)
        log_info("ble: scanning on %s again; its sources wait for advertisements", hci_name(s));
    else
        log_info("ble: scanning on %s", hci_name(s));
    s->down = 0;
    s->error[0] = '\0';
    s->up_ns = s->heard_ns = mono(s->sc);
    s->heard_reports = hci_scan_get_stats(s->s)->reports;
    s->check_ns = s->heard_ns + s->silence_ns;
    set_state(s, BLE_SCAN_UP);
}

/* Any report, matched or not, shows the scan is running. */
static void heard(struct scanner *s)
{
    uint64_t n = hci_scan_get_stats(s->s)->reports;
    if (n == s->heard_reports)
        return;
    s->heard_reports = n;
    s->heard_ns = mono(s->sc);
    s->deaf = 0;
}

/* Up, but no report from any device for silence_ns while one of its sources waits for an
 * advertisement: restarted as if it had failed, so the sources connect directly until it is
 * back. Where nothing advertises at all this repeats: only the first restart is logged (a
 * warning), later ones are debug lines, and their delays grow. With every source linked the
 * silence is only watched: nothing waits on the scan. */
static void check_silence(struct scanner *s)
{
    struct ble_scan *sc = s->sc;
    int64_t now = mono(sc);
    if (now - s->heard_ns < s->silence_ns) {
        s->check_ns = s->heard_ns + s->silence_ns;
        return;
    }
    int waiting = 0;
    for (size_t i = 0; i < sc->n_dev && !waiting; i++)
        waiting = of(sc, i, s) && ble_scan_holds(sc, &sc->devs[i]);
    if (!waiting) {
        s->check_ns = now + s->silence_ns / 4;
        return;
    }
    char why[96];
    snprintf(why, sizeof why, "no advertising report from any device for %.0f s",
             (double)(now - s->heard_ns) / 1e9);
    if (++s->deaf > 1)
        s->down = 1; /* quiet: said once already */
    scanner_failed(s, why);
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

/* A report from the device's resolvable private address: the connect names that address, as
 * random; the cache key and everything else keep naming the identity. */
static void learn_rpa(struct ble_dev *d, struct scan_dev *sd, const struct hci_addr *a)
{
    char text[18];
    hci_addr_str(a, text, sizeof text);
    if (!sd->via_rpa)
        log_info("ble %s (%s): advertises with resolvable private addresses (now %s, resolved "
                 "with its irk); connecting to the current one", d->name, d->address, text);
    else if (strcmp(text, d->link_address) != 0)
        /* debug: a device makes a new one every ~15 min */
        log_debug("ble %s (%s): new resolvable private address %s", d->name, d->address, text);
    snprintf(d->link_address, sizeof d->link_address, "%s", text);
    sd->via_rpa = 1;
    if (d->tr.kind == BLE_LINK_L2CAP)
        d->tr.addr_type = BLE_ADDR_RANDOM;
}

static void learn_address(struct ble_dev *d, struct scan_dev *sd, const struct hci_scan_result *r)
{
    if (memcmp(r->rep.addr.b, sd->addr.b, 6) != 0) {
        learn_rpa(d, sd, &r->rep.addr);
        return;
    }
    if (sd->via_rpa) {
        log_info("ble %s (%s): advertises with its identity address again", d->name, d->address);
        snprintf(d->link_address, sizeof d->link_address, "%s", d->address);
        sd->via_rpa = 0;
    }
    learn_addr_type(d, r->rep.addr_type);
}

static void seen(struct ble_scan *sc, size_t i, const struct hci_scan_result *r)
{
    struct ble_dev *d = &sc->devs[i];
    struct scan_dev *sd = &sc->sd[i];
    sd->seen_ms = utc(sc);
    learn_address(d, sd, r);
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

/* Is the report from device i: its identity address, or an address its key resolves? */
static int report_is(const struct scanner *sn, size_t i, const struct hci_scan_result *r)
{
    const struct scan_dev *sd = &sn->sc->sd[i];
    if (memcmp(sd->addr.b, r->rep.addr.b, 6) == 0)
        return 1;
    /* r->irk names the first source with that key: others may share it */
    return r->irk >= 0 && sd->has_irk &&
           memcmp(sd->irk, sn->sc->sd[sn->irk_dev[r->irk]].irk, BLE_IRK_SIZE) == 0;
}

static void on_report(struct hci_scan *s, const struct hci_scan_result *r, void *ud)
{
    struct scanner *sn = ud;
    struct ble_scan *sc = sn->sc;
    for (size_t i = 0; i < sc->n_dev && sn->s == s; i++)
        if (of(sc, i, sn) && report_is(sn, i, r))
            seen(sc, i, r);
}

static void on_done(struct hci_scan *s, int starting, int err, uint8_t status, void *ud)
{
    struct scanner *sn = ud;
    if (err < 0 && err != -ECANCELED) {
        const char *why = hci_scan_strerror(s);
        scanner_failed(sn, why[0] ? why : strerror(-err));
    } else if (starting && err == 0) {
        scanner_up(sn);
    }
}

/* ---- opening ------------------------------------------------------------------------ */

/* A fake controller's socket: the same kind of connection as a simulated device's. */
/* The keys of s's sources into irks (room for every device) and, for each, its device into
 * irk_dev: how many. */
static size_t irk_list(const struct scanner *s, uint8_t (*irks)[BLE_IRK_SIZE], size_t *irk_dev)
{
    const struct ble_scan *sc = s->sc;
    size_t n = 0;
    for (size_t i = 0; i < sc->n_dev; i++)
        if (of(sc, i, s) && sc->sd[i].has_irk) {
            irk_dev[n] = i;
            memcpy(irks[n++], sc->sd[i].irk, BLE_IRK_SIZE);
        }
    return n;
}

/* The scan's filter: the sources' identity addresses and keys. 0 or -ENOMEM. */
static int filter(struct scanner *s, struct hci_scan_opts *o)
{
    struct ble_scan *sc = s->sc;
    struct hci_addr *addrs = calloc(sc->n_dev, sizeof *addrs);
    uint8_t (*irks)[BLE_IRK_SIZE] = calloc(sc->n_dev, sizeof *irks);
    s->irk_dev = calloc(sc->n_dev, sizeof *s->irk_dev);
    if (!addrs || !irks || !s->irk_dev) {
        free(addrs);
        free(irks);
        return -ENOMEM;
    }
    for (size_t i = 0; i < sc->n_dev; i++)
        if (of(sc, i, s))
            addrs[o->n_addrs++] = sc->sd[i].addr;
    o->n_irks = irk_list(s, irks, s->irk_dev);
    o->addrs = addrs;
    o->irks = (const uint8_t(*)[16])irks;
    return 0;
}

/* The scan's filter is copied by the scanner (keys: their AES schedules): the copies go. */
static void filter_free(struct hci_scan_opts *o, size_t n)
{
    free((void *)o->addrs);
    if (o->irks)
        explicit_bzero((void *)o->irks, n * BLE_IRK_SIZE);
    free((void *)o->irks);
}

static void open_scanner(struct scanner *s)
{
    char why[BLE_SCAN_WHY_MAX] = "";
    struct ble_scan *sc = s->sc;
    s->fd = s->where.kind == BLE_HCI_SIM ? ble_link_open_sim_path(s->where.path, why, sizeof why)
                                         : hci_dev_open(s->where.dev, &s->saved, why, sizeof why);
    if (s->fd < 0) {
        s->fd = -1;
        scanner_failed(s, why);
        return;
    }
    struct hci_scan_opts o = {
        .params = {.active = 0, .interval = BLE_SCAN_INTERVAL, .window = BLE_SCAN_WINDOW},
        .dedupe_ns = BLE_SCAN_DEDUPE_MS * NS_PER_MS,
        .on_report = on_report, .on_done = on_done, .user_data = s,
    };
    int e = filter(s, &o);
    s->s = e == 0 ? hci_scan_new(s->fd, &o) : NULL;
    e = s->s ? 0 : e < 0 ? e : -errno;
    filter_free(&o, sc->n_dev);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = s->fd};
    if (e == 0 && epoll_ctl(sc->outer, EPOLL_CTL_ADD, s->fd, &ev) < 0)
        e = -errno;
    if (e == 0)
        e = hci_scan_start(s->s, mono(sc));
    /* a failed start has run on_done already */
    if (e < 0 && s->state != BLE_SCAN_RETRYING)
        scanner_failed(s, e == -ENOSYS || e == -EIO ? "cannot set up address resolution "
                       "(libgcrypt)" : strerror(-e));
}

/* An attempt after a failure: starting (not published: its outcome follows at once, or
 * within the commands' timeouts), then up or retrying again. */
static void retry_scanner(struct scanner *s)
{
    s->state = BLE_SCAN_STARTING;
    s->since_ms = utc(s->sc);
    s->retry_ns = INT64_MAX;
    open_scanner(s);
}

/* The scanner of hci value h, added if new: its index, or -1 (an invalid value, which
 * check-config refuses). */
static int scanner_for(struct ble_scan *sc, const struct conf_source *src)
{
    const char *h = strcmp(src->hci, "auto") == 0 ? "" : src->hci;
    for (size_t k = 0; k < sc->n_sc; k++)
        if (strcmp(sc->sc[k].hci, h) == 0)
            return (int)k;
    struct scanner *s = &sc->sc[sc->n_sc];
    char why[BLE_TEXT_MAX];
    memset(s, 0, sizeof *s);
    if (ble_hci_parse(h, &s->where, why, sizeof why) < 0) {
        log_error("%s:%d: [source %s] hci: %s; connecting directly",
                  src->loc.file ? src->loc.file : "?", src->loc.line, src->name, why);
        return -1;
    }
    s->sc = sc;
    s->fd = -1;
    s->retry_ns = INT64_MAX;
    s->state = BLE_SCAN_STARTING;
    snprintf(s->hci, sizeof s->hci, "%s", h);
    ble_backoff_init(&s->bo, ble_backoff_seed(sc->seed, s->hci[0] ? s->hci : "auto"));
    return (int)sc->n_sc++;
}

/* mgmt's address type of device d's identity address: l2cap's as configured; a simulated
 * link has none, and its keys are made with "public" (docs/ble.md "Bonding keys"). */
uint8_t ble_mgmt_addr_type(const struct ble_dev *d)
{
    return d->tr.kind == BLE_LINK_L2CAP && d->tr.addr_type == BLE_ADDR_RANDOM
               ? MGMT_ADDR_LE_RANDOM
               : MGMT_ADDR_LE_PUBLIC;
}

/* An Identity Resolving Key the keeper holds for device i (learnt when it bonded) becomes its
 * key, unless its source configures one. 1 when device i's key changed. */
static int kept_irk(struct ble_scan *sc, size_t i, const struct ble_keys *keys)
{
    struct scan_dev *sd = &sc->sd[i];
    uint8_t wire[BLE_IRK_SIZE], irk[BLE_IRK_SIZE];
    if ((sd->has_irk && !sd->irk_kept) ||
        !ble_keys_irk(keys, sd->addr.b, ble_mgmt_addr_type(&sc->devs[i]), wire))
        return 0;
    for (size_t k = 0; k < BLE_IRK_SIZE; k++) /* the scanner's order: most significant first */
        irk[k] = wire[BLE_IRK_SIZE - 1 - k];
    int changed = !sd->has_irk || memcmp(sd->irk, irk, sizeof irk) != 0;
    memcpy(sd->irk, irk, sizeof irk);
    explicit_bzero(wire, sizeof wire);
    explicit_bzero(irk, sizeof irk);
    sd->has_irk = sd->irk_kept = 1;
    if (changed)
        log_info("ble %s (%s): the identity resolving key of its bonding is used to recognise "
                 "its resolvable private addresses", sc->devs[i].name, sc->devs[i].address);
    return changed;
}

void ble_scan_learn_irk(struct ble_scan *sc, const struct ble_keys *keys)
{
    for (size_t k = 0; sc && k < sc->n_sc; k++) {
        struct scanner *s = &sc->sc[k];
        int changed = 0;
        for (size_t i = 0; i < sc->n_dev; i++)
            if (of(sc, i, s))
                changed |= kept_irk(sc, i, keys);
        if (!changed || !s->s)
            continue; /* a scanner not running takes the keys when it opens */
        uint8_t (*irks)[BLE_IRK_SIZE] = calloc(sc->n_dev, sizeof *irks);
        size_t *irk_dev = calloc(sc->n_dev, sizeof *irk_dev);
        size_t n = irks && irk_dev ? irk_list(s, irks, irk_dev) : 0;
        int e = irks && irk_dev ? hci_scan_set_irks(s->s, (const uint8_t(*)[16])irks, n)
                                : -ENOMEM;
        if (e == 0) {
            free(s->irk_dev);
            s->irk_dev = irk_dev;
            irk_dev = NULL;
        } else {
            log_error("ble: the scan on %s cannot take a new identity resolving key (%s); it "
                      "is used from the scan's next start", hci_name(s), strerror(-e));
        }
        if (irks)
            explicit_bzero(irks, sc->n_dev * sizeof *irks);
        free(irks);
        free(irk_dev);
    }
}

/* Device i's addresses: the configured one, and its key (configured, or kept from its
 * bonding). 0, or -EINVAL (check-config refuses both). */
static int dev_keys(struct ble_scan *sc, size_t i, const struct conf_source *s,
                    const struct ble_keys *keys)
{
    struct scan_dev *sd = &sc->sd[i];
    char why[BLE_TEXT_MAX];
    if (hci_addr_parse(sc->devs[i].address, &sd->addr) < 0)
        return -EINVAL;
    if (!s->irk[0]) {
        (void)kept_irk(sc, i, keys);
        return 0;
    }
    if (ble_irk_parse(s->irk, sd->irk, why, sizeof why) < 0) {
        log_error("%s:%d: [source %s] irk: %s; matching its address only",
                  s->loc.file ? s->loc.file : "?", s->loc.line, s->name, why);
        return 0;
    }
    sd->has_irk = 1;
    return 0;
}

struct ble_scan *ble_scan_new(struct ble *b, const struct conf *cf, struct ble_dev *devs,
                              size_t n_dev, int outer, const struct ble_keys *keys)
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
    sc->seed = cf->study.seed;
    /* devs[] holds the ble sources of cf in order */
    size_t i = 0;
    for (size_t k = 0; k < cf->n_sources && i < n_dev; k++) {
        const struct conf_source *s = &cf->sources[k];
        if (s->driver != CONF_DRIVER_BLE)
            continue;
        sc->sd[i].scanner = -1;
        if (wants_scan(s, &devs[i]) && dev_keys(sc, i, s, keys) == 0)
            sc->sd[i].scanner = scanner_for(sc, s);
        if (sc->sd[i].scanner >= 0) {
            struct scanner *sn = &sc->sc[sc->sd[i].scanner];
            int64_t quiet = (s->scan_silence_ms > 0 ? s->scan_silence_ms : 60000) * NS_PER_MS;
            if (!sn->silence_ns || quiet < sn->silence_ns)
                sn->silence_ns = quiet;
        }
        i++;
    }
    if (sc->n_sc == 0)
        return ble_scan_free(sc);
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
    if (sc->sd)
        explicit_bzero(sc->sd, sc->n_dev * sizeof *sc->sd); /* the keys */
    free(sc->sd);
    free(sc->sc);
    free(sc);
    return NULL;
}

/* ---- the manager's hooks --------------------------------------------------------------- */

void ble_scan_start_devices(struct ble_scan *sc)
{
    /* waiting first, so that a scanner failing at once finds its devices in a state it can
     * start them from (and publish) */
    for (size_t i = 0; i < sc->n_dev; i++) {
        if (sc->sd[i].scanner < 0)
            start_dev(sc, i);
        else
            wait_dev(sc, i);
    }
    for (size_t k = 0; k < sc->n_sc; k++)
        open_scanner(&sc->sc[k]);
}

int ble_scan_holds(const struct ble_scan *sc, const struct ble_dev *d)
{
    if (!sc || d < sc->devs || d >= sc->devs + sc->n_dev)
        return 0;
    const struct scan_dev *sd = &sc->sd[d - sc->devs];
    if (sd->scanner < 0)
        return 0;
    /* not started: only before the scanner's first failure, which starts every device */
    if (!sd->started)
        return 1;
    if (sc->sc[sd->scanner].state != BLE_SCAN_UP)
        return 0;
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
        struct hci_scan *h = s->s;
        int e = hci_scan_on_readable(h, mono(sc));
        /* a failed start or stop has been handled by on_done, which dropped h */
        if (e < 0 && s->s == h)
            scanner_failed(s, hci_scan_strerror(h));
        else if (s->s == h)
            heard(s);
        return 1;
    }
    return 0;
}

int64_t ble_scan_deadline(const struct ble_scan *sc)
{
    int64_t t = INT64_MAX;
    for (size_t k = 0; sc && k < sc->n_sc; k++) {
        const struct scanner *s = &sc->sc[k];
        int64_t d = s->s ? hci_scan_next_timeout(s->s) : s->retry_ns;
        if (s->s && s->state == BLE_SCAN_UP && s->check_ns < d)
            d = s->check_ns;
        if (d < t)
            t = d;
    }
    return t;
}

void ble_scan_on_timer(struct ble_scan *sc)
{
    for (size_t k = 0; sc && k < sc->n_sc; k++) {
        struct scanner *s = &sc->sc[k];
        if (s->s && hci_scan_next_timeout(s->s) <= mono(sc))
            hci_scan_on_timer(s->s, mono(sc));
        else if (s->state == BLE_SCAN_RETRYING && s->retry_ns <= mono(sc))
            retry_scanner(s);
        if (s->s && s->state == BLE_SCAN_UP && s->check_ns <= mono(sc))
            check_silence(s);
    }
}

void ble_scan_status(const struct ble_scan *sc, const struct ble_dev *d, struct ble_status *st)
{
    st->has_scan = 0;
    if (!sc || d < sc->devs || d >= sc->devs + sc->n_dev || sc->sd[d - sc->devs].scanner < 0)
        return;
    const struct scan_dev *sd = &sc->sd[d - sc->devs];
    const struct scanner *s = &sc->sc[sd->scanner];
    st->has_scan = 1;
    st->scan = (struct ble_scan_info){
        .state = s->state, .since_ms = s->since_ms, .error = s->error[0] ? s->error : NULL,
        .next_attempt_ms = s->next_attempt_ms, .failures = s->failures,
        .rpa = sd->via_rpa ? d->link_address : NULL,
    };
}
