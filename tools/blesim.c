/* blesim: a simulated BLE peripheral on a Unix SEQPACKET socket path (docs/ble.md).
 *
 * Listens on PATH; every connection gets its own GATT server (drivers/ble_sim.c) with the
 * profiles asked for, so one process stands in for many devices. A client speaks raw ATT on
 * the socket, one PDU per packet, exactly as on an L2CAP ATT socket: the daemon's BLE source
 * (or tests) connect here instead of to a device.
 *
 * One thread, one ppoll loop over the listening socket and the connections; the simulators'
 * deadlines set its timeout. SIGINT/SIGTERM end it (the socket path is removed). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "drivers/ble_gatt.h"
#include "drivers/ble_sim.h"

#define MAX_CONN_LIMIT 1024

struct conn {
    int fd;
    unsigned id;
    struct blesim *sim;
    int64_t change_ns; /* --change-after: when its database changes (INT64_MAX: done/never) */
};

struct cfg {
    const char *path;
    unsigned profiles;
    unsigned change_profiles;          /* --change-profiles */
    int64_t change_after_ns;           /* --change-after (0: never) */
    unsigned change_storm;             /* --change-storm: Service Changed indications left */
    uint16_t mtu;
    struct blesim_profile_opts po;
    int time_relative;                 /* --time-offset: po.cts_unix_ms set at each connection */
    int64_t time_offset_ms;
    struct blesim_faults faults;
    unsigned max_conn;
    int once, dump, quiet;
    const char *relay, *relay_nudges;  /* --relay FILE.jsonl, --relay-nudges FILE */
    uint32_t relay_period_us;
    unsigned relay_corrupt;
    uint32_t relay_dropped;
    int relay_ack, relay_ignore_pause;
    struct blesim_relay *phone;        /* loaded from relay */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    stop = sig;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: blesim --listen PATH [options]\n"
        "       blesim --dump [options]\n"
        "A simulated BLE peripheral: raw ATT over a Unix SEQPACKET socket, one server per\n"
        "connection.\n"
        "  --listen PATH          socket path to listen on (replaced if it is a socket)\n"
        "  --profiles LIST        gatt,hr,battery,cts,dis,motion or all (default all)\n"
        "  --name NAME            GAP device name (default blesim)\n"
        "  --mtu N                server Rx MTU, 23-517 (default 517)\n"
        "  --hr-rate HZ           heart rate notifications per second (default 1; 0 none)\n"
        "  --hr-flags N           0x2A37 flags byte (default 0x16)\n"
        "  --rr N                 RR intervals per notification (default 1)\n"
        "  --battery-period S     battery notification period in s (default 60; 0 none)\n"
        "  --battery-level N      starting battery %% (default 100)\n"
        "  --cts-period S         current time notification period in s (default 0 none)\n"
        "  --time UNIX_S          device clock at start (default 2024-01-01T00:00:00Z)\n"
        "  --time-offset MS       device clock at start: the host's, plus MS (may be < 0)\n"
        "  --cts-write MODE       writing Current Time: set (default: sets the clock), refuse\n"
        "                         (declared writable, answered Write Not Permitted), none\n"
        "                         (not writable) or ignore (answered, the clock kept)\n"
        "  --cts-unset            the clock reads as date 0 (never set) until written\n"
        "  --cts-no-lti           no Local Time Information (the client assumes a zone)\n"
        "  --lti TZ,DST           Local Time Information bytes: zone in quarter-hours (-128..127,\n"
        "                         -128 unknown), DST in quarter-hours (0..255, 255 unknown);\n"
        "                         default 0,0 (UTC). The clock is the wall clock of that zone\n"
        "  --lti-write MODE       Local Time Information writable: set (takes what is written;\n"
        "                         the clock's wall time does not move with it) or keep\n"
        "                         (answers a write and keeps its value)\n"
        "  --steps-rate HZ        step count notifications per second (default 1)\n"
        "  --motion-rate HZ       raw motion notifications per second (default 10)\n"
        "  --hr-security N        the heart rate measurement (its CCCD) needs a link at level N:\n"
        "                         2 encrypted, 3 authenticated, 4 secure connections (default\n"
        "                         0: none); the client raises the link with a control packet\n"
        "  --security-error C     the error below that level (default 0x0F for 2, else 0x05)\n"
        "  --serial S, --model S, --manufacturer S, --firmware S   device information\n"
        "  --relay FILE.jsonl     also serve the engaged relay service: a phone streaming the\n"
        "                         records of FILE (consecutive \"seq\"), from the hub's RESUME\n"
        "  --relay-nudges FILE    append the nudges the hub writes to FILE (JSON lines)\n"
        "  --relay-rate HZ        relay fragments per second (default 1000)\n"
        "  --relay-corrupt N      flip a bit in every Nth relay fragment (a CRC error)\n"
        "  --relay-dropped N      the phone's Status reports N records discarded unsent\n"
        "  --relay-ack            answer each new nudge with a nudge_ack `delivered` record\n"
        "  --relay-ignore-pause   count the hub's PAUSEs but go on sending\n"
        "  --change-after S       S seconds into each connection, the database changes: the\n"
        "                         services of --change-profiles are added after the last handle\n"
        "                         and Service Changed is indicated for them\n"
        "  --change-profiles LIST hr,battery,cts,dis,motion (default battery)\n"
        "  --change-storm N       the first N times a client enables Service Changed\n"
        "                         indications (over all connections), indicate a change of the\n"
        "                         whole database at once: a device that keeps changing while\n"
        "                         the client sets up\n"
        "  --max-conn N           simultaneous connections (default 64)\n"
        "  --once                 exit when the first connection ends\n"
        "  --quiet                no per-connection lines on stderr\n"
        "faults (per connection):\n"
        "  --silent-after N       answer only the first N requests\n"
        "  --silent-opcode OP     never answer requests with opcode OP\n"
        "  --malformed-opcode OP  answer OP with a truncated error response\n"
        "  --error-handle H       requests naming handle H get an error response\n"
        "  --error-code C         ... with code C (default 0x0E)\n"
        "  --disconnect-after N   drop the link on the Nth PDU received\n"
        "  --refuse-security      ignore the client's security raises (pairing fails)\n"
        "  --dump                 print the database and exit\n");
}

static int num(const char *s, long long lo, long long hi, long long *ret)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *ret = v;
    return 0;
}

/* --lti TZ,DST: the two bytes of Local Time Information, as numbers. */
static int lti(const char *s, struct blesim_profile_opts *po)
{
    char tz[16];
    const char *comma = strchr(s, ',');
    long long z, dst;
    if (!comma || (size_t)(comma - s) >= sizeof tz)
        return -1;
    memcpy(tz, s, (size_t)(comma - s));
    tz[comma - s] = '\0';
    if (num(tz, -128, 127, &z) < 0 || num(comma + 1, 0, 255, &dst) < 0)
        return -1;
    po->lti_tz = (int8_t)z;
    po->lti_dst = (uint8_t)dst;
    return 0;
}

/* A rate in Hz as a period in ms (0 Hz: 0, no stream). */
static int rate(const char *s, uint32_t *ret_ms)
{
    char *end;
    double hz = strtod(s, &end);
    if (end == s || *end || !(hz >= 0) || hz > 1000)
        return -1;
    *ret_ms = hz == 0 ? 0 : (uint32_t)(1000.0 / hz + 0.5);
    if (hz > 0 && *ret_ms == 0)
        *ret_ms = 1;
    return 0;
}

static int profiles(const char *list, unsigned *ret)
{
    static const struct { const char *name; unsigned bit; } names[] = {
        {"gatt", BLESIM_PROFILE_GATT}, {"hr", BLESIM_PROFILE_HR},
        {"battery", BLESIM_PROFILE_BATTERY}, {"cts", BLESIM_PROFILE_CTS},
        {"dis", BLESIM_PROFILE_DIS}, {"motion", BLESIM_PROFILE_MOTION},
        {"all", BLESIM_PROFILE_ALL},
    };
    char buf[256];
    *ret = 0;
    if (strlen(list) >= sizeof buf)
        return -1;
    strcpy(buf, list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        for (; i < sizeof names / sizeof names[0] && strcmp(names[i].name, t); i++)
            ;
        if (i == sizeof names / sizeof names[0])
            return -1;
        *ret |= names[i].bit;
    }
    return *ret ? 0 : -1;
}

static int parse(int argc, char **argv, struct cfg *c)
{
    enum { O_LISTEN = 256, O_PROFILES, O_NAME, O_MTU, O_HR_RATE, O_HR_FLAGS, O_RR,
           O_BAT_PERIOD, O_BAT_LEVEL, O_CTS_PERIOD, O_TIME, O_TIME_OFFSET, O_STEPS, O_MOTION,
           O_SERIAL, O_MODEL, O_MANUF, O_FW, O_MAX_CONN, O_ONCE, O_QUIET, O_SILENT_AFTER,
           O_SILENT_OP, O_MALFORMED_OP, O_ERR_HANDLE, O_ERR_CODE, O_DISCONNECT, O_DUMP,
           O_HR_SECURITY, O_SECURITY_ERROR, O_REFUSE_SECURITY,
           O_RELAY, O_RELAY_NUDGES, O_RELAY_RATE, O_RELAY_CORRUPT, O_RELAY_DROPPED,
           O_RELAY_ACK, O_RELAY_IGNORE_PAUSE, O_CHANGE_AFTER, O_CHANGE_PROFILES,
           O_CHANGE_STORM, O_CTS_WRITE, O_CTS_UNSET, O_CTS_NO_LTI, O_LTI, O_LTI_WRITE,
           O_HELP };
    static const struct option opts[] = {
        {"listen", 1, 0, O_LISTEN}, {"profiles", 1, 0, O_PROFILES}, {"name", 1, 0, O_NAME},
        {"mtu", 1, 0, O_MTU}, {"hr-rate", 1, 0, O_HR_RATE}, {"hr-flags", 1, 0, O_HR_FLAGS},
        {"rr", 1, 0, O_RR}, {"battery-period", 1, 0, O_BAT_PERIOD},
        {"battery-level", 1, 0, O_BAT_LEVEL}, {"cts-period", 1, 0, O_CTS_PERIOD},
        {"time", 1, 0, O_TIME}, {"time-offset", 1, 0, O_TIME_OFFSET}, {"steps-rate", 1, 0, O_STEPS},
        {"motion-rate", 1, 0, O_MOTION}, {"serial", 1, 0, O_SERIAL},
        {"model", 1, 0, O_MODEL}, {"manufacturer", 1, 0, O_MANUF},
        {"firmware", 1, 0, O_FW}, {"max-conn", 1, 0, O_MAX_CONN}, {"once", 0, 0, O_ONCE},
        {"quiet", 0, 0, O_QUIET}, {"silent-after", 1, 0, O_SILENT_AFTER},
        {"silent-opcode", 1, 0, O_SILENT_OP}, {"malformed-opcode", 1, 0, O_MALFORMED_OP},
        {"error-handle", 1, 0, O_ERR_HANDLE}, {"error-code", 1, 0, O_ERR_CODE},
        {"disconnect-after", 1, 0, O_DISCONNECT}, {"dump", 0, 0, O_DUMP},
        {"hr-security", 1, 0, O_HR_SECURITY}, {"security-error", 1, 0, O_SECURITY_ERROR},
        {"refuse-security", 0, 0, O_REFUSE_SECURITY},
        {"relay", 1, 0, O_RELAY}, {"relay-nudges", 1, 0, O_RELAY_NUDGES},
        {"relay-rate", 1, 0, O_RELAY_RATE}, {"relay-corrupt", 1, 0, O_RELAY_CORRUPT},
        {"relay-dropped", 1, 0, O_RELAY_DROPPED}, {"relay-ack", 0, 0, O_RELAY_ACK},
        {"relay-ignore-pause", 0, 0, O_RELAY_IGNORE_PAUSE},
        {"change-after", 1, 0, O_CHANGE_AFTER}, {"change-profiles", 1, 0, O_CHANGE_PROFILES},
        {"change-storm", 1, 0, O_CHANGE_STORM}, {"cts-write", 1, 0, O_CTS_WRITE},
        {"cts-unset", 0, 0, O_CTS_UNSET}, {"cts-no-lti", 0, 0, O_CTS_NO_LTI},
        {"lti", 1, 0, O_LTI}, {"lti-write", 1, 0, O_LTI_WRITE},
        {"help", 0, 0, O_HELP}, {0, 0, 0, 0},
    };
    long long v;
    int o;
    memset(c, 0, sizeof *c);
    c->profiles = BLESIM_PROFILE_ALL;
    c->change_profiles = BLESIM_PROFILE_BATTERY;
    c->max_conn = 64;
    c->relay_period_us = 1000;
    blesim_profile_defaults(&c->po);
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case O_LISTEN: c->path = optarg; break;
        case O_PROFILES: bad = profiles(optarg, &c->profiles); break;
        case O_NAME: c->po.name = optarg; break;
        case O_MTU: bad = num(optarg, 23, 517, &v); c->mtu = (uint16_t)v; break;
        case O_HR_RATE: bad = rate(optarg, &c->po.hr_period_ms); break;
        case O_HR_FLAGS: bad = num(optarg, 0, 255, &v); c->po.hr_flags = (uint8_t)v; break;
        case O_RR: bad = num(optarg, 0, 255, &v); c->po.hr_rr_count = (uint8_t)v; break;
        case O_BAT_PERIOD: bad = num(optarg, 0, 86400, &v);
            c->po.battery_period_ms = (uint32_t)v * 1000; break;
        case O_BAT_LEVEL: bad = num(optarg, 0, 100, &v); c->po.battery_level = (uint8_t)v; break;
        case O_CTS_PERIOD: bad = num(optarg, 0, 86400, &v);
            c->po.cts_period_ms = (uint32_t)v * 1000; break;
        case O_TIME:
            bad = num(optarg, 0, 4102444800LL, &v);
            c->po.cts_unix_ms = v * 1000;
            c->time_relative = 0;
            break;
        case O_TIME_OFFSET: /* within ten years either way */
            bad = num(optarg, -315576000000LL, 315576000000LL, &v);
            c->time_offset_ms = v;
            c->time_relative = 1;
            break;
        case O_CTS_WRITE:
            if (!strcmp(optarg, "set"))
                c->po.cts_write = BLESIM_CTS_WRITE_SET;
            else if (!strcmp(optarg, "refuse"))
                c->po.cts_write = BLESIM_CTS_WRITE_REFUSE;
            else if (!strcmp(optarg, "none"))
                c->po.cts_write = BLESIM_CTS_WRITE_NONE;
            else if (!strcmp(optarg, "ignore"))
                c->po.cts_write = BLESIM_CTS_WRITE_IGNORE;
            else
                bad = 1;
            break;
        case O_CTS_UNSET: c->po.cts_unset = 1; break;
        case O_CTS_NO_LTI: c->po.cts_no_lti = 1; break;
        case O_LTI: bad = lti(optarg, &c->po); break;
        case O_LTI_WRITE:
            if (!strcmp(optarg, "set"))
                c->po.lti_write = BLESIM_LTI_WRITE_SET;
            else if (!strcmp(optarg, "keep"))
                c->po.lti_write = BLESIM_LTI_WRITE_KEEP;
            else
                bad = 1;
            break;
        case O_STEPS: bad = rate(optarg, &c->po.steps_period_ms); break;
        case O_MOTION: bad = rate(optarg, &c->po.motion_period_ms); break;
        case O_SERIAL: c->po.serial = optarg; break;
        case O_MODEL: c->po.model = optarg; break;
        case O_MANUF: c->po.manufacturer = optarg; break;
        case O_FW: c->po.firmware = optarg; break;
        case O_MAX_CONN: bad = num(optarg, 1, MAX_CONN_LIMIT, &v); c->max_conn = (unsigned)v;
            break;
        case O_ONCE: c->once = 1; break;
        case O_QUIET: c->quiet = 1; break;
        case O_SILENT_AFTER: bad = num(optarg, 0, 1LL << 30, &v);
            c->faults.silent_after = (uint32_t)v; break;
        case O_SILENT_OP: bad = num(optarg, 0, 255, &v); c->faults.silent_opcode = (uint8_t)v;
            break;
        case O_MALFORMED_OP: bad = num(optarg, 0, 255, &v);
            c->faults.malformed_opcode = (uint8_t)v; break;
        case O_ERR_HANDLE: bad = num(optarg, 0, 0xFFFF, &v);
            c->faults.error_handle = (uint16_t)v; break;
        case O_ERR_CODE: bad = num(optarg, 1, 255, &v); c->faults.error_code = (uint8_t)v; break;
        case O_DISCONNECT: bad = num(optarg, 0, 1LL << 30, &v);
            c->faults.disconnect_after = (uint32_t)v; break;
        case O_DUMP: c->dump = 1; break;
        case O_HR_SECURITY: bad = num(optarg, 0, 4, &v) || v == 1;
            c->po.hr_security = (uint8_t)v; break;
        case O_SECURITY_ERROR: bad = num(optarg, 1, 255, &v);
            c->po.security_ecode = (uint8_t)v; break;
        case O_REFUSE_SECURITY: c->faults.refuse_security = 1; break;
        case O_RELAY: c->relay = optarg; break;
        case O_RELAY_NUDGES: c->relay_nudges = optarg; break;
        case O_RELAY_RATE: bad = num(optarg, 1, 100000, &v);
            c->relay_period_us = (uint32_t)(1000000 / v); break;
        case O_RELAY_CORRUPT: bad = num(optarg, 0, 1LL << 30, &v);
            c->relay_corrupt = (unsigned)v; break;
        case O_RELAY_DROPPED: bad = num(optarg, 0, UINT32_MAX, &v);
            c->relay_dropped = (uint32_t)v; break;
        case O_RELAY_ACK: c->relay_ack = 1; break;
        case O_RELAY_IGNORE_PAUSE: c->relay_ignore_pause = 1; break;
        case O_CHANGE_AFTER: bad = num(optarg, 1, 86400, &v);
            c->change_after_ns = v * 1000000000LL; break;
        case O_CHANGE_PROFILES: bad = profiles(optarg, &c->change_profiles) ||
                                      (c->change_profiles & BLESIM_PROFILE_GATT);
            break;
        case O_CHANGE_STORM: bad = num(optarg, 0, 1000000, &v); c->change_storm = (unsigned)v;
            break;
        case O_HELP: usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
        if (bad) {
            const char *name = "?";
            for (size_t i = 0; opts[i].name; i++)
                if (opts[i].val == o)
                    name = opts[i].name;
            fprintf(stderr, "blesim: bad value for --%s: '%s'\n", name, optarg);
            return -1;
        }
    }
    if (optind < argc || (!c->path && !c->dump)) {
        usage(stderr);
        return -1;
    }
    if (c->path && strlen(c->path) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
        fprintf(stderr, "blesim: socket path too long: %s\n", c->path);
        return -1;
    }
    return 0;
}

/* --change-storm: the client enabled Service Changed indications; a change is indicated at
 * once (while the client is still setting up) until the count runs out. */
static void storm_write(struct blesim *s, uint16_t handle, const uint8_t *value, size_t len,
                        void *user_data)
{
    unsigned *left = user_data;
    struct att_uuid u = att_uuid16(GATT_SERVICE_CHANGED);
    uint16_t sc = blesim_find(s, &u);
    if (!*left || !sc || handle != blesim_cccd_handle(s, sc) || len != 2 || !(value[0] & 2))
        return;
    int e = blesim_service_changed(s, 0x0001, 0xFFFF);
    if (e == 1)
        (*left)--;
    fprintf(stderr, "blesim: Service Changed storm: %s (%u left)\n",
            e == 1 ? "indicated" : e == 0 ? "not indicated" : strerror(-e), *left);
}

static struct blesim *make_sim(struct cfg *c, int fd, int64_t now)
{
    struct blesim *s = blesim_new(fd, c->mtu, now);
    if (!s)
        return NULL;
    if (c->time_relative) { /* this connection's clock: the host's, moved by the offset */
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        c->po.cts_unix_ms = (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000 + c->time_offset_ms;
    }
    if (blesim_add_profiles(s, c->profiles, &c->po) < 0)
        return blesim_free(s);
    if (c->change_storm)
        blesim_set_write_hook(s, storm_write, &c->change_storm);
    if (c->phone && blesim_add_relay(s, c->phone, c->relay_period_us) < 0)
        return blesim_free(s);
    blesim_set_faults(s, &c->faults);
    return s;
}

static int listen_on(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    struct stat st;
    strcpy(a.sun_path, path);
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void end_conn(const struct cfg *c, struct conn *k)
{
    const struct blesim_stats *st = blesim_stats(k->sim);
    if (!c->quiet)
        fprintf(stderr, "blesim: connection %u closed: %llu PDUs in, %llu out, "
                "%llu notifications, %llu indications, %llu dropped, %llu discovery requests, "
                "security level %d\n", k->id,
                (unsigned long long)st->rx_pdus, (unsigned long long)st->tx_pdus,
                (unsigned long long)st->notifications, (unsigned long long)st->indications,
                (unsigned long long)st->dropped, (unsigned long long)st->discovery,
                blesim_security(k->sim));
    k->sim = blesim_free(k->sim);
    close(k->fd);
    k->fd = -1;
}

static int serve(struct cfg *c, int lfd)
{
    struct conn *conns = calloc(c->max_conn, sizeof *conns);
    struct pollfd *pfd = calloc(c->max_conn + 1, sizeof *pfd);
    unsigned n = 0, next_id = 1;
    int rc = 0, ended = 0;
    sigset_t block, orig;
    if (!conns || !pfd) {
        fprintf(stderr, "blesim: out of memory\n");
        free(conns);
        free(pfd);
        return 1;
    }
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &orig);
    while (!stop && !(c->once && ended)) {
        int64_t now = mono_ns(), due = INT64_MAX;
        pfd[0] = (struct pollfd){.fd = lfd, .events = n < c->max_conn ? POLLIN : 0};
        for (unsigned i = 0; i < n; i++) {
            pfd[1 + i] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
            int64_t t = blesim_next_timeout(conns[i].sim);
            if (t < due)
                due = t;
            if (conns[i].change_ns < due)
                due = conns[i].change_ns;
        }
        struct timespec ts, *tsp = NULL;
        if (due != INT64_MAX) {
            int64_t d = due > now ? due - now : 0;
            ts.tv_sec = (time_t)(d / 1000000000);
            ts.tv_nsec = (long)(d % 1000000000);
            tsp = &ts;
        }
        int r = ppoll(pfd, 1 + n, tsp, &orig);
        if (r < 0 && errno != EINTR) {
            perror("blesim: ppoll");
            rc = 1;
            break;
        }
        now = mono_ns();
        if (r > 0 && (pfd[0].revents & POLLIN)) {
            int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            struct blesim *s = fd >= 0 ? make_sim(c, fd, now) : NULL;
            if (s) {
                int64_t change = c->change_after_ns ? now + c->change_after_ns : INT64_MAX;
                conns[n++] = (struct conn){.fd = fd, .id = next_id++, .sim = s,
                                           .change_ns = change};
                if (!c->quiet)
                    fprintf(stderr, "blesim: connection %u\n", conns[n - 1].id);
            } else if (fd >= 0) {
                close(fd);
            }
        }
        for (unsigned i = 0; i < n; i++) {
            struct conn *k = &conns[i];
            if (r > 0 && pfd[1 + i].fd == k->fd && pfd[1 + i].revents)
                blesim_on_readable(k->sim, now);
            if (!blesim_closed(k->sim) && now >= k->change_ns) {
                k->change_ns = INT64_MAX;
                int e = blesim_change_services(k->sim, c->change_profiles);
                if (!c->quiet)
                    fprintf(stderr, "blesim: connection %u: database changed (%s)\n", k->id,
                            e == 1 ? "Service Changed indicated" : e == 0 ? "not indicated: "
                            "the client did not enable it" : strerror(-e));
            }
            if (!blesim_closed(k->sim))
                blesim_on_timer(k->sim, now);
        }
        for (unsigned i = 0; i < n;) {
            if (blesim_closed(conns[i].sim)) {
                end_conn(c, &conns[i]);
                conns[i] = conns[--n];
                ended = 1;
            } else {
                i++;
            }
        }
    }
    for (unsigned i = 0; i < n; i++)
        end_conn(c, &conns[i]);
    free(conns);
    free(pfd);
    return rc;
}

int main(int argc, char **argv)
{
    struct cfg c;
    if (parse(argc, argv, &c) < 0)
        return 2;
    FILE *nudges = NULL;
    if (c.relay_nudges && !(nudges = fopen(c.relay_nudges, "a"))) {
        fprintf(stderr, "blesim: %s: %s\n", c.relay_nudges, strerror(errno));
        return 1;
    }
    if (c.relay) {
        char why[512];
        if (!(c.phone = blesim_relay_load(c.relay, nudges, why, sizeof why))) {
            fprintf(stderr, "blesim: --relay: %s\n", why);
            return 1;
        }
        blesim_relay_set_corrupt(c.phone, c.relay_corrupt);
        blesim_relay_set_dropped(c.phone, c.relay_dropped);
        blesim_relay_set_ack(c.phone, c.relay_ack);
        blesim_relay_set_ignore_pause(c.phone, c.relay_ignore_pause);
    }
    if (c.dump) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
            perror("blesim: socketpair");
            return 1;
        }
        struct blesim *s = make_sim(&c, sv[0], 0);
        if (!s) {
            fprintf(stderr, "blesim: cannot build the database\n");
            return 1;
        }
        blesim_dump(s, stdout);
        blesim_free(s);
        blesim_relay_free(c.phone);
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_on(c.path);
    if (lfd < 0) {
        fprintf(stderr, "blesim: cannot listen on %s: %s\n", c.path, strerror(errno));
        return 1;
    }
    printf("blesim: listening on %s\n", c.path);
    fflush(stdout);
    int rc = serve(&c, lfd);
    close(lfd);
    unlink(c.path);
    if (c.phone) {
        blesim_relay_report(c.phone, stderr);
        blesim_relay_free(c.phone);
    }
    if (nudges)
        fclose(nudges);
    return rc;
}
