/* Checks across keys and sections, run once every file has been read (a drop-in may supply
 * the other half of a pair): required keys, driver options, references between sections,
 * CURVE on TCP endpoints and endpoints bound twice. Errors point at the line of the key
 * concerned, or at the section header when a key is missing. */
#include <stdio.h>
#include <string.h>

#include "daemon/ble.h"
#include "daemon/conf_internal.h"
#include "pipeline/record.h"

static struct conf_loc key_at(struct conf_loader *L, enum conf_sect s, size_t i, const char *key)
{
    return conf_inst_of(L, s, i)->at[conf_key_slot(conf_key_find(s, key))];
}

/* The key's last value was refused: its error is reported already, and checks that depend
 * on it would only add noise. */
static int key_bad(struct conf_loader *L, enum conf_sect s, size_t i, const char *key)
{
    return (conf_inst_of(L, s, i)->bad >> conf_key_slot(conf_key_find(s, key))) & 1u;
}

static void check_required(struct conf_loader *L, enum conf_sect s, size_t i, const char *name,
                           struct conf_loc loc)
{
    for (size_t k = 0; k < conf_n_keys; k++)
        if (conf_keys[k].sect == s && (conf_keys[k].flags & CK_REQUIRED) &&
            !conf_inst_of(L, s, i)->at[conf_key_slot(&conf_keys[k])].file)
            conf_error(L, loc.file, loc.line, "[%s %s]: required key \"%s\" is missing",
                       conf_sects[s].name, name, conf_keys[k].name);
}

static int hex_run(const char *s, size_t n)
{
    return strspn(s, "0123456789abcdefABCDEF") >= n;
}

static int valid_bdaddr(const char *s)
{
    if (strlen(s) != 17)
        return 0;
    for (int i = 0; i < 6; i++)
        if (!hex_run(s + 3 * i, 2) || (i < 5 && s[3 * i + 2] != ':'))
            return 0;
    return 1;
}

/* Which driver options each driver reads; an option a driver ignores is an error so that a
 * typo'd driver name or a copied section does not silently do something else. */
struct driver_opt {
    const char *key;
    unsigned drivers;  /* bit per enum conf_driver */
};
#define D(x) (1u << CONF_DRIVER_##x)
static const struct driver_opt driver_opts[] = {
    {"path", D(FILE) | D(USB)},
    {"address", D(BLE)},
    {"transport", D(BLE) | D(USB)},
    {"vid_pid", D(USB)},
    {"serial", D(USB)},
    {"record", D(BLE)},
    {"record_max", D(BLE)},
    {"connect", D(BLE)},
    {"hci", D(BLE)},
    {"irk", D(BLE)},
    {"nudge_resend", D(BLE)},
    {"scan_silence", D(BLE)},
    {"set_clock", D(BLE)},
    {"clock_tolerance", D(BLE)},
};

/* The values only ble sources have: hci and irk (daemon/conf_ble.c), and whether an irk can
 * be used at all (it matches advertisements: a source that does not scan sees none). */
static void check_scan(struct conf_loader *L, size_t i)
{
    struct conf_source *s = &L->c->sources[i];
    char why[128];
    struct ble_hci h;
    uint8_t irk[BLE_IRK_SIZE];
    struct ble_transport t = {.kind = BLE_LINK_L2CAP};
    if (s->hci[0] && ble_hci_parse(s->hci, &h, why, sizeof why) < 0) {
        struct conf_loc at = key_at(L, CS_SOURCE, i, "hci");
        conf_error(L, at.file, at.line, "[source %s] hci: invalid \"%.40s%s\": %s", s->name,
                   s->hci, strlen(s->hci) > 40 ? "..." : "", why);
    }
    if (!s->irk[0])
        return;
    struct conf_loc at = key_at(L, CS_SOURCE, i, "irk");
    /* the value is a secret: never in a message */
    if (ble_irk_parse(s->irk, irk, why, sizeof why) < 0)
        conf_error(L, at.file, at.line, "[source %s] irk: %s (the key as BlueZ stores it: "
                   "[IdentityResolvingKey] Key= in /var/lib/bluetooth/ADAPTER/DEVICE/info)",
                   s->name, why);
    explicit_bzero(irk, sizeof irk);
    (void)ble_transport_parse(s->transport, &t, NULL, 0);
    if (s->connect == CONF_CONNECT_DIRECT ||
        (s->connect == CONF_CONNECT_AUTO && t.kind != BLE_LINK_L2CAP))
        conf_error(L, at.file, at.line, "[source %s] irk: only used when scanning (connect = "
                   "scan, or auto with an l2cap transport)", s->name);
}

static void check_source(struct conf_loader *L, size_t i)
{
    struct conf_source *s = &L->c->sources[i];
    struct conf_loc loc = s->loc;
    const char *drv = conf_enum_name("source", "driver", s->driver);
    check_required(L, CS_SOURCE, i, s->name, loc);
    if (!key_at(L, CS_SOURCE, i, "driver").file || key_bad(L, CS_SOURCE, i, "driver") ||
        key_bad(L, CS_SOURCE, i, "participant"))
        return;
    for (size_t k = 0; k < sizeof(driver_opts) / sizeof(driver_opts[0]); k++) {
        struct conf_loc at = key_at(L, CS_SOURCE, i, driver_opts[k].key);
        if (at.file && !(driver_opts[k].drivers & (1u << s->driver)))
            conf_error(L, at.file, at.line, "[source %s] %s: not used by driver %s", s->name,
                       driver_opts[k].key, drv);
    }
    struct conf_loc pat = key_at(L, CS_SOURCE, i, "participant");
    if (s->participant[0] && !conf_participant(L->c, s->participant))
        conf_error(L, pat.file, pat.line, "[source %s] participant: no [participant %s] is defined",
                   s->name, s->participant);
    if (!s->participant[0] && (s->driver == CONF_DRIVER_BLE || s->driver == CONF_DRIVER_USB))
        conf_error(L, loc.file, loc.line, "[source %s]: driver %s needs \"participant\"", s->name,
                   drv);
    if (s->driver == CONF_DRIVER_FILE && !s->path[0])
        conf_error(L, loc.file, loc.line, "[source %s]: driver file needs \"path\"", s->name);
    if (s->driver == CONF_DRIVER_BLE && !s->address[0])
        conf_error(L, loc.file, loc.line, "[source %s]: driver ble needs \"address\"", s->name);
    if (s->driver == CONF_DRIVER_BLE && s->address[0] && !valid_bdaddr(s->address)) {
        struct conf_loc at = key_at(L, CS_SOURCE, i, "address");
        conf_error(L, at.file, at.line, "[source %s] address: invalid Bluetooth address \"%s\" "
                   "(expected XX:XX:XX:XX:XX:XX)", s->name, s->address);
    }
    if (s->driver == CONF_DRIVER_BLE && s->transport[0]) {
        char why[128];
        struct ble_transport t;
        if (ble_transport_parse(s->transport, &t, why, sizeof why) < 0) {
            struct conf_loc at = key_at(L, CS_SOURCE, i, "transport");
            conf_error(L, at.file, at.line, "[source %s] transport: invalid \"%s\": %s", s->name,
                       s->transport, why);
        }
    }
    if (s->driver == CONF_DRIVER_BLE)
        check_scan(L, i);
    if (s->driver == CONF_DRIVER_USB && s->transport[0] && strcmp(s->transport, "auto") != 0 &&
        strcmp(s->transport, "ax3") != 0 && strcmp(s->transport, "aoa") != 0) {
        struct conf_loc at = key_at(L, CS_SOURCE, i, "transport");
        conf_error(L, at.file, at.line, "[source %s] transport: invalid \"%s\" for a usb source "
                   "(expected auto, ax3 or aoa)", s->name, s->transport);
    }
    if (s->driver == CONF_DRIVER_USB && !s->vid_pid[0] && !s->serial[0])
        conf_error(L, loc.file, loc.line, "[source %s]: driver usb needs \"vid_pid\" or \"serial\"",
                   s->name);
    if (s->driver == CONF_DRIVER_USB && s->vid_pid[0] &&
        !(strlen(s->vid_pid) == 9 && hex_run(s->vid_pid, 4) && s->vid_pid[4] == ':' &&
          hex_run(s->vid_pid + 5, 4))) {
        struct conf_loc at = key_at(L, CS_SOURCE, i, "vid_pid");
        conf_error(L, at.file, at.line, "[source %s] vid_pid: invalid \"%s\" (expected VVVV:PPPP "
                   "in hex, e.g. 04d8:0057)", s->name, s->vid_pid);
    }
}

/* Every comparison of a condition names a feature of the catalogue (docs/features.md). */
static void check_features(struct conf_loader *L, size_t i, const char *key,
                           const struct conf_when *w)
{
    for (size_t k = 0; k < w->n; k++) {
        const char *f = w->nodes[k].feature;
        if (w->nodes[k].kind != CONF_EXPR_CMP || feature_known(f))
            continue;
        struct conf_loc at = key_at(L, CS_NUDGE, i, key);
        const char *near = feature_closest(f);
        char hint[96] = "";
        if (near)
            snprintf(hint, sizeof hint, " (did you mean %s?)", near);
        conf_error(L, at.file, at.line, "[nudge %s] %s: unknown feature \"%s\"%s; the features "
                   "are listed in docs/features.md", L->c->nudges[i].name, key, f, hint);
    }
}

static void check_nudges(struct conf_loader *L)
{
    struct conf *c = L->c;
    for (size_t i = 0; i < c->n_nudges; i++) {
        struct conf_nudge *n = &c->nudges[i];
        check_required(L, CS_NUDGE, i, n->name, n->loc);
        check_features(L, i, "when", &n->when);
        check_features(L, i, "reengaged_when", &n->reengaged_when);
        if (n->max_per_week < n->max_per_day)
            conf_error(L, n->loc.file, n->loc.line, "[nudge %s]: max_per_week (%lld) is less "
                       "than max_per_day (%lld)", n->name, (long long)n->max_per_week,
                       (long long)n->max_per_day);
        if (n->reengaged_when.n && !n->escalate_to[0]) {
            struct conf_loc at = key_at(L, CS_NUDGE, i, "reengaged_when");
            conf_error(L, at.file, at.line, "[nudge %s] reengaged_when: only used to stop an "
                       "escalation, and the rule has no escalate_to", n->name);
        }
        if (!n->escalate_to[0])
            continue;
        struct conf_loc at = key_at(L, CS_NUDGE, i, "escalate_to");
        const struct conf_nudge *to = conf_nudge(c, n->escalate_to);
        if (to == n)
            conf_error(L, at.file, at.line, "[nudge %s] escalate_to: a rule cannot escalate to "
                       "itself", n->name);
        else if (!to)
            conf_error(L, at.file, at.line, "[nudge %s] escalate_to: no [nudge %s] is defined",
                       n->name, n->escalate_to);
        else
            n->escalate_index = (int)(to - c->nudges);
    }
    /* A loop of escalations would hand a participant from rule to rule forever. Reported
     * once, at the member of the loop that comes first. */
    for (size_t i = 0; i < c->n_nudges; i++) {
        int j = c->nudges[i].escalate_index;
        size_t steps = 0, lowest = i;
        while (j >= 0 && (size_t)j != i && steps++ < c->n_nudges) {
            if ((size_t)j < lowest)
                lowest = (size_t)j;
            j = c->nudges[j].escalate_index;
        }
        if (j < 0 || (size_t)j != i || lowest != i || c->nudges[i].escalate_index == (int)i)
            continue;
        char chain[512];
        size_t used = (size_t)snprintf(chain, sizeof(chain), "%s", c->nudges[i].name);
        j = c->nudges[i].escalate_index;
        for (;;) {
            if (used < sizeof(chain))
                used += (size_t)snprintf(chain + used, sizeof(chain) - used, " -> %s",
                                         c->nudges[j].name);
            if ((size_t)j == i)
                break;
            j = c->nudges[j].escalate_index;
        }
        struct conf_loc at = key_at(L, CS_NUDGE, i, "escalate_to");
        conf_error(L, at.file, at.line, "[nudge %s] escalate_to: escalation loop %s",
                   c->nudges[i].name, chain);
    }
}

struct sock {
    enum conf_sect sect;
    const char *endpoint;
    struct conf_loc loc;
    const char *secret, *clients;
};

/* ZeroMQ over TCP without CURVE is plaintext and unauthenticated: participant data must not
 * leave the hub that way, so a tcp:// endpoint without both key files is refused. */
static void check_sockets(struct conf_loader *L)
{
    struct conf *c = L->c;
    struct sock socks[CONF_MAX_ENDPOINTS + 2];
    size_t n = 0;
    for (size_t i = 0; i < c->publish.n_endpoints; i++)
        socks[n++] = (struct sock){CS_PUBLISH, c->publish.endpoints[i],
                                   L->fixed[CS_PUBLISH].rep_at[i],
                                   c->publish.curve_secret_key_file,
                                   c->publish.curve_clients_file};
    socks[n++] = (struct sock){CS_CONTROL, c->control.endpoint,
                               key_at(L, CS_CONTROL, 0, "endpoint"),
                               c->control.curve_secret_key_file, c->control.curve_clients_file};
    socks[n++] = (struct sock){CS_INGEST, c->ingest.endpoint, key_at(L, CS_INGEST, 0, "endpoint"),
                               c->ingest.curve_secret_key_file, c->ingest.curve_clients_file};
    for (size_t i = 0; i < n; i++) {
        const struct sock *s = &socks[i];
        const char *sect = conf_sects[s->sect].name;
        if (strncmp(s->endpoint, "tcp://", 6) == 0 && (!s->secret[0] || !s->clients[0]))
            conf_error(L, s->loc.file, s->loc.line, "[%s] endpoint: \"%s\" needs CURVE: set "
                       "curve_secret_key_file and curve_clients_file in [%s]", sect,
                       s->endpoint, sect);
        for (size_t j = 0; j < i; j++) {
            const struct sock *o = &socks[j];
            if (strcmp(s->endpoint, o->endpoint) != 0 || s->sect == o->sect)
                continue;
            /* blame the one the user wrote (a built-in default has no file) */
            const struct sock *w = s->loc.file ? s : o, *other = w == s ? o : s;
            conf_error(L, w->loc.file, w->loc.line, "[%s] endpoint: \"%s\" is also the [%s] "
                       "endpoint", conf_sects[w->sect].name, w->endpoint,
                       conf_sects[other->sect].name);
        }
    }
}

static void check_daemon(struct conf_loader *L)
{
    struct ble_mgmt_where w;
    char why[128];
    const char *v = L->c->daemon.ble_mgmt;
    if (ble_mgmt_parse(v, &w, why, sizeof why) < 0) {
        struct conf_loc at = key_at(L, CS_DAEMON, 0, "ble_mgmt");
        conf_error(L, at.file, at.line, "[daemon] ble_mgmt: invalid \"%.40s%s\": %s", v,
                   strlen(v) > 40 ? "..." : "", why);
    }
}

void conf_check(struct conf_loader *L)
{
    check_daemon(L);
    for (size_t i = 0; i < L->c->n_sources; i++)
        check_source(L, i);
    check_nudges(L);
    check_sockets(L);
}
