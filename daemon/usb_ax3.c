/* A docked Axivity AX3/AX6 (docs/usb.md, "AX3/AX6"). The kernel's cdc_acm and usb-storage
 * drivers own the device's interfaces; engaged does not open it with libusb at all. On arrival:
 *
 *   settle   the device shows a bootloader first and the kernel needs a moment to create the
 *            tty and the disk: wait AX3_SETTLE_MS;
 *   identify through its tty (found in sysfs): ID, SAMPLE 1 (battery), TIME (read the clock),
 *            TIME <now> (set it to the participant's local time, as the Open Movement tools
 *            do); each reply has AX3_REPLY_MS, and a silent device is downloaded anyway;
 *   locate   its volume: the mount point of one of its block devices in /proc/self/mountinfo,
 *            or the source's configured path; retried every second for AX3_VOLUME_MS;
 *   download the CWA file from the first block that can hold samples after the source's
 *            position (a binary search on block times), AX3_CHUNK_BLOCKS per loop turn, at
 *            most one batch in flight to the store; samples at or before the position are
 *            dropped (drivers/usb_cwain.c), damaged blocks are reported and skipped.
 *
 * An unplug at any step closes everything at once; complete events already made still go to
 * the store; the next dock starts again from the store's position once nothing of this source
 * is in flight. */
#if ENGAGED_HAVE_USB
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/usb_int.h"

#define AX3_SETTLE_MS 1000
#define AX3_TTY_WAIT_MS 10000
#define AX3_REPLY_MS 3000
#define AX3_VOLUME_MS 120000
#define AX3_VOLUME_POLL_MS 1000
#define AX3_RETRY_MS 30000         /* after a store failure, download again from the position */
#define AX3_CHUNK_BLOCKS 64        /* 32 KiB per loop turn: ~0.1 s at the device's speed */
#define AX3_PROBE_SCAN 16          /* blocks looked at for a timestamp around a probe */
#define AX3_REPORT_MAX 20          /* damaged blocks logged one by one per download */
#define AX3_BLOCKS_MAX ((uint64_t)8 << 20) /* 4 GiB of blocks: no device holds more */

enum ax3_state {
    AX3_SETTLE, AX3_TTY, AX3_CDC, AX3_VOLUME, AX3_WAIT_STORE, AX3_COPY, AX3_END, AX3_DONE,
    AX3_FAILED,
};

struct ax3_dev {
    enum ax3_state st;
    int64_t started_mono_ms;
    int tty;
    struct ax3cmd_lines lines;
    int step;
    int64_t hub_local_s;       /* the hub's local clock when TIME was asked */
    int fd;
    uint64_t size, nblocks, next_block, buf_block;
    size_t buf_n, buf_pos;
    int have_held;
    struct event held;         /* taken from ci, not yet in a batch (the batch was full) */
    uint64_t reported;
    struct cwain *ci;
    uint8_t buf[AX3_CHUNK_BLOCKS * CWA_BLOCK_SIZE];
};

static const struct {
    const char *cmd;
    const char *name;
} steps[] = {
    {"ID\r\n", "ID"},
    {"SAMPLE 1\r\n", "SAMPLE 1"},
    {"TIME\r\n", "TIME"},
    {NULL, "TIME (set)"},
};
#define N_STEPS (sizeof steps / sizeof steps[0])

static struct ax3_dev *priv(struct usb_dev *d) { return d->priv; }

static void close_tty(struct usb_dev *d)
{
    struct ax3_dev *a = priv(d);
    if (a->tty >= 0) {
        usb_unwatch_fd(d->u, a->tty);
        close(a->tty);
        a->tty = -1;
    }
}

static void close_file(struct ax3_dev *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    free(a->ci);
    a->ci = NULL;
    a->have_held = 0;
}

static void fail(struct usb_dev *d, const char *what)
{
    struct ax3_dev *a = priv(d);
    close_tty(d);
    close_file(a);
    a->st = AX3_FAILED;
    usb_set_state(d->src, "error");
    log_error("usb %s: source %s: %s", d->port, d->src->name, what);
}

int ax3_owns_fd(const struct usb_dev *d, int fd)
{
    const struct ax3_dev *a = d->priv;
    return a && a->tty >= 0 && a->tty == fd;
}

int ax3_start(struct usb_dev *d)
{
    struct ax3_dev *a = calloc(1, sizeof *a);
    if (!a) {
        usb_set_error(d->src, "out of memory");
        return -ENOMEM;
    }
    a->tty = a->fd = -1;
    a->started_mono_ms = daemon_mono_ms();
    d->priv = a;
    struct usb_src *s = d->src;
    memset(&s->ax3, 0, sizeof s->ax3);
    usb_set_state(s, "identifying");
    a->st = AX3_SETTLE;
    usb_dev_due(d, a->started_mono_ms + AX3_SETTLE_MS);
    return 0;
}

int ax3_stop(struct usb_dev *d)
{
    struct ax3_dev *a = priv(d);
    if (!a)
        return 1;
    close_tty(d);
    close_file(a);
    /* complete events already made go to the store (submitted when the one in flight returns) */
    if (d->src)
        (void)usb_src_flush(d->src);
    free(a);
    d->priv = NULL;
    return 1;
}

/* ---- identify: the command interface ------------------------------------------------- */

static int open_tty(const char *path)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct termios t;
    if (tcgetattr(fd, &t) == 0) {
        cfmakeraw(&t); /* CDC-ACM ignores the line settings; raw keeps the bytes as sent */
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        (void)tcsetattr(fd, TCSANOW, &t);
    }
    return fd;
}

static void begin_volume(struct usb_dev *d);

static void send_step(struct usb_dev *d)
{
    struct ax3_dev *a = priv(d);
    struct usb_src *s = d->src;
    while (a->step < (int)N_STEPS) {
        char cmd[64];
        const char *c = steps[a->step].cmd;
        if (!c) { /* set the clock: the participant's local time now */
            int64_t now = daemon_now_ms();
            a->hub_local_s = (now + (int64_t)tz_offset(s->zone, now) * 1000) / 1000;
            if (ax3cmd_format_set_time(a->hub_local_s, cmd, sizeof cmd) < 0) {
                a->step++;
                continue;
            }
            c = cmd;
        } else if (strncmp(c, "TIME", 4) == 0) {
            int64_t now = daemon_now_ms();
            a->hub_local_s = (now + (int64_t)tz_offset(s->zone, now) * 1000) / 1000;
        }
        size_t len = strlen(c);
        log_debug("usb %s: source %s: %s -> %.*s", d->port, s->name, s->ax3.tty,
                  (int)(len > 2 ? len - 2 : len), c);
        ssize_t k = write(a->tty, c, len);
        if (k != (ssize_t)len) {
            usb_set_error(s, "writing \"%s\" to %s: %s", steps[a->step].name, s->ax3.tty,
                          k < 0 ? strerror(errno) : "short write");
            log_warn("usb %s: source %s: %s; downloading without it", d->port, s->name, s->error);
            break;
        }
        usb_dev_due(d, daemon_mono_ms() + AX3_REPLY_MS);
        return;
    }
    close_tty(d);
    begin_volume(d);
}

static void next_step(struct usb_dev *d)
{
    priv(d)->step++;
    send_step(d);
}

static void on_line(struct usb_dev *d, const char *line)
{
    struct ax3_dev *a = priv(d);
    struct usb_src *s = d->src;
    char why[USB_WHY_MAX];
    int e = -ENOENT;
    log_debug("usb %s: source %s: %s <- \"%.80s\"", d->port, s->name, s->ax3.tty, line);
    switch (a->step) {
    case 0:
        e = ax3cmd_parse_id(line, &s->ax3.id, why);
        if (e == 0) {
            s->ax3.have_id = 1;
            log_info("usb %s: source %s: %s hardware %u firmware %u device id %" PRIu32,
                     d->port, s->name, strcmp(s->ax3.id.kind, "AX6") == 0 ? "AX6" : "AX3",
                     s->ax3.id.hardware, s->ax3.id.firmware, s->ax3.id.device_id);
        }
        break;
    case 1:
        e = ax3cmd_parse_batt(line, &s->ax3.batt, why);
        if (e == 0)
            s->ax3.have_batt = 1;
        break;
    case 2: {
        int64_t dev_s;
        e = ax3cmd_parse_time(line, &dev_s, why);
        if (e == 0) {
            s->ax3.have_clock = 1;
            s->ax3.clock_offset_ms = (dev_s - a->hub_local_s) * 1000;
        }
        break;
    }
    case 3: {
        int64_t dev_s;
        e = ax3cmd_parse_time(line, &dev_s, why);
        if (e == 0) {
            s->ax3.clock_set = 1;
            log_info("usb %s: source %s: clock set (it was %+" PRId64 " s off)", d->port,
                     s->name, s->ax3.have_clock ? s->ax3.clock_offset_ms / 1000 : 0);
        }
        break;
    }
    default:
        return;
    }
    if (e == -ENOENT)
        return; /* another line (an echo, a prompt): keep waiting for the reply */
    if (e < 0) {
        usb_set_error(s, "%s", why);
        log_warn("usb %s: source %s: %s, ignoring", d->port, s->name, why);
    }
    s->dirty = 1;
    next_step(d);
}

void ax3_on_fd(struct usb_dev *d, int fd)
{
    struct ax3_dev *a = priv(d);
    char buf[512];
    for (int rounds = 0; rounds < 16 && a->tty == fd && a->st == AX3_CDC; rounds++) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k == 0)
            return; /* raw mode with VMIN 0: nothing waiting (a hangup comes as the unplug) */
        if (k < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                usb_set_error(d->src, "reading %s: %s", d->src->ax3.tty, strerror(errno));
                log_warn("usb %s: source %s: %s; downloading without it", d->port,
                         d->src->name, d->src->error);
                close_tty(d);
                begin_volume(d);
            }
            return;
        }
        size_t off = 0;
        while (off < (size_t)k && a->tty == fd && a->st == AX3_CDC) {
            const char *line;
            off += ax3cmd_lines_feed(&a->lines, buf + off, (size_t)k - off, &line);
            if (line)
                on_line(d, line);
        }
    }
}

/* ---- locate the volume ------------------------------------------------------------- */

static void begin_download(struct usb_dev *d);

static void begin_volume(struct usb_dev *d)
{
    struct ax3_dev *a = priv(d);
    a->st = AX3_VOLUME;
    usb_set_state(d->src, "locating");
    usb_dev_due(d, daemon_mono_ms());
}

static int find_file(struct usb_dev *d, char *ret, size_t cap, char *why, size_t why_cap)
{
    struct usb_src *s = d->src;
    if (s->path[0]) {
        int e = usbsys_cwa_file(s->path, ret, cap);
        if (e < 0)
            snprintf(why, why_cap, "no CWA-DATA.CWA or CURRENT.CWA at the configured path %.120s",
                     s->path);
        return e;
    }
    dev_t devs[16];
    int n = usbsys_find_blocks(d->sysdir, devs, 16);
    if (n == 0) {
        snprintf(why, why_cap, "no block device under %.120s (is usb-storage loaded?)", d->sysdir);
        return -ENOENT;
    }
    char mnt[USB_PATH_MAX];
    if (usbsys_find_mount(devs, n, mnt, sizeof mnt) < 0) {
        snprintf(why, why_cap, "its disk (%u:%u) is not mounted: mount it read-only (a mount "
                 "unit or udisks) or set path", major(devs[0]), minor(devs[0]));
        return -ENOENT;
    }
    int e = usbsys_cwa_file(mnt, ret, cap);
    if (e < 0)
        snprintf(why, why_cap, "no CWA-DATA.CWA or CURRENT.CWA in %.140s", mnt);
    return e;
}

static void try_volume(struct usb_dev *d)
{
    struct ax3_dev *a = priv(d);
    struct usb_src *s = d->src;
    char why[USB_ERR_MAX];
    if (find_file(d, s->ax3.file, sizeof s->ax3.file, why, sizeof why) == 0) {
        begin_download(d);
        return;
    }
    s->ax3.file[0] = 0;
    if (daemon_mono_ms() - a->started_mono_ms > AX3_VOLUME_MS) {
        usb_set_error(s, "%s", why);
        fail(d, why);
        return;
    }
    usb_dev_due(d, daemon_mono_ms() + AX3_VOLUME_POLL_MS);
}

/* ---- download -------------------------------------------------------------------------- */

static int read_block(struct ax3_dev *a, uint64_t k, uint8_t *b)
{
    ssize_t got = pread(a->fd, b, CWA_BLOCK_SIZE, (off_t)(CWA_HEADER_SIZE + k * CWA_BLOCK_SIZE));
    if (got < 0)
        return -errno;
    return got == CWA_BLOCK_SIZE ? 0 : -ENODATA;
}

/* The device-clock time of the first block with a good timestamp at or after k (within
 * AX3_PROBE_SCAN blocks); INT64_MAX when there is none (unwritten flash at the end). */
static int probe(struct ax3_dev *a, uint64_t k, int64_t *ret_s)
{
    uint8_t b[CWA_BLOCK_SIZE];
    for (uint64_t i = k; i < a->nblocks && i < k + AX3_PROBE_SCAN; i++) {
        int e = read_block(a, i, b);
        if (e < 0 && e != -ENODATA)
            return e;
        if (e == 0 && cwain_block_time(b, ret_s) == 0)
            return 0;
    }
    *ret_s = INT64_MAX;
    return 0;
}

/* The block to start at: the last whose time is at least 2 s before the position (a block's
 * timestamp belongs to a sample up to about a second away from its first), or 0. Block times
 * only go forward within a recording, and a later recording starts later. */
static int seek_start(struct usb_dev *d, uint64_t *ret)
{
    struct ax3_dev *a = priv(d);
    struct usb_src *s = d->src;
    *ret = 0;
    if (!s->have_pos || a->nblocks == 0)
        return 0;
    int64_t target = s->pos / 1000000000 - 2;
    uint64_t lo = 0, hi = a->nblocks; /* first block whose time is after target: in [lo, hi] */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int64_t t;
        int e = probe(a, mid, &t);
        if (e < 0)
            return e;
        if (t > target)
            hi = mid;
        else
            lo = mid + 1;
    }
    *ret = lo ? lo - 1 : 0;
    return 0;
}

static void begin_download(struct usb_dev *d)
{
    struct ax3_dev *a = priv(d);
    a->st = AX3_WAIT_STORE;
    usb_set_state(d->src, "downloading");
    usb_dev_due(d, daemon_mono_ms());
}

static int open_download(struct usb_dev *d)
{
    struct ax3_dev *a = priv(d);
    struct usb_src *s = d->src;
    char why[USB_ERR_MAX];
    a->fd = open(s->ax3.file, O_RDONLY | O_CLOEXEC);
    if (a->fd < 0) {
        snprintf(why, sizeof why, "%.150s: %s", s->ax3.file, strerror(errno));
        goto bad;
    }
    struct stat st;
    if (fstat(a->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, sizeof why, "%.150s: not a regular file", s->ax3.file);
        goto bad;
    }
    a->size = (uint64_t)st.st_size;
    s->ax3.file_bytes = a->size;
    uint8_t h[CWA_HEADER_SIZE];
    ssize_t k = pread(a->fd, h, sizeof h, 0);
    struct cwa_header hdr;
    const char *hw = NULL;
    if (k != (ssize_t)sizeof h || cwa_header_parse(h, sizeof h, &hdr, &hw) < 0) {
        snprintf(why, sizeof why, "%.100s: not a CWA file: %.80s", s->ax3.file,
                 k < 0 ? strerror(errno) : k != (ssize_t)sizeof h ? "shorter than its header"
                                                                  : hw);
        goto bad;
    }
    a->nblocks = (a->size - CWA_HEADER_SIZE) / CWA_BLOCK_SIZE;
    if (a->nblocks > AX3_BLOCKS_MAX) {
        snprintf(why, sizeof why, "%.120s: %" PRIu64 " bytes, more than any AX3/AX6 holds",
                 s->ax3.file, a->size);
        goto bad;
    }
    if ((a->size - CWA_HEADER_SIZE) % CWA_BLOCK_SIZE)
        log_warn("usb %s: source %s: %s ends %" PRIu64 " bytes into a block: the partial block "
                 "is not read", d->port, s->name, s->ax3.file,
                 (a->size - CWA_HEADER_SIZE) % CWA_BLOCK_SIZE);
    if (!(a->ci = malloc(sizeof *a->ci))) {
        snprintf(why, sizeof why, "out of memory");
        goto bad;
    }
    cwain_init(a->ci, s->zone, s->have_pos, s->pos);
    int64_t t0;
    if (probe(a, 0, &t0) == 0 && t0 != INT64_MAX)
        cwain_set_origin(a->ci, t0); /* the recording's first block fixes its UTC offset */
    uint64_t start;
    int e = seek_start(d, &start);
    if (e < 0) {
        snprintf(why, sizeof why, "%.150s: %s", s->ax3.file, strerror(-e));
        goto bad;
    }
    a->next_block = start;
    a->buf_n = a->buf_pos = 0;
    a->reported = 0;
    memset(&s->ax3.cwa, 0, sizeof s->ax3.cwa);
    s->ax3.bytes_read = 0;
    log_info("usb %s: source %s: reading %s (%" PRIu64 " blocks) from block %" PRIu64 "%s",
             d->port, s->name, s->ax3.file, a->nblocks, start,
             s->have_pos ? " (after what earlier docks stored)" : "");
    return 0;
bad:
    usb_set_error(s, "%s", why);
    fail(d, why);
    return -EIO;
}

/* Puts the held event into the batch; 0, or -EAGAIN while the batch cannot take it. */
static int place_held(struct usb_dev *d)
{
    struct ax3_dev *a = priv(d);
    if (!a->have_held)
        return 0;
    int e = usb_src_add(d->src, &a->held, NULL, USB_AX3_BATCH);
    if (e == -EAGAIN)
        return e;
    if (e < 0) {
        fail(d, "out of memory");
        return e;
    }
    a->have_held = 0;
    return 0;
}

/* Moves the events ci has ready into batches. 0, -EAGAIN (one is held), or another -errno. */
static int drain(struct usb_dev *d, int end)
{
    struct ax3_dev *a = priv(d);
    int e = place_held(d);
    if (e < 0)
        return e;
    while (cwain_take(a->ci, end, d->src->participant, d->src->name, &a->held)) {
        a->have_held = 1;
        if ((e = place_held(d)) < 0)
            return e;
    }
    return 0;
}

static void finish(struct usb_dev *d)
{
    struct ax3_dev *a = priv(d);
    struct usb_src *s = d->src;
    if (s->inflight || s->building)
        return; /* the last batch is on its way */
    const struct cwain_stats *c = &a->ci->st;
    s->ax3.cwa = *c;
    s->ax3.last_download_ms = daemon_now_ms();
    log_info("usb %s: source %s: download complete: %" PRIu64 " samples in %" PRIu64
             " events, %" PRIu64 " blocks read (%" PRIu64 " damaged, %" PRIu64 " of other "
             "types), %" PRIu64 " samples already stored before", d->port, s->name, c->samples,
             c->events, c->blocks, c->bad, c->other, c->skipped);
    close_file(a);
    a->st = AX3_DONE;
    usb_set_state(s, "docked");
}

static void copy_some(struct usb_dev *d)
{
    struct ax3_dev *a = priv(d);
    struct usb_src *s = d->src;
    for (int budget = AX3_CHUNK_BLOCKS; budget > 0;) {
        int e = drain(d, 0);
        if (e == -EAGAIN)
            return; /* resumed by ax3_on_reply */
        if (e < 0)
            return;
        if (a->buf_pos == a->buf_n) {
            if (a->next_block >= a->nblocks) {
                if ((e = drain(d, 1)) == -EAGAIN || e < 0)
                    return;
                s->ax3.cwa = a->ci->st;
                (void)usb_src_flush(s);
                a->st = AX3_END;
                finish(d);
                return;
            }
            uint64_t n = a->nblocks - a->next_block;
            if (n > (uint64_t)budget)
                n = (uint64_t)budget;
            ssize_t got = pread(a->fd, a->buf, n * CWA_BLOCK_SIZE,
                                (off_t)(CWA_HEADER_SIZE + a->next_block * CWA_BLOCK_SIZE));
            if (got <= 0) {
                char why[USB_ERR_MAX];
                snprintf(why, sizeof why, "%.60s: read error at block %" PRIu64 ": %s; the next "
                         "dock resumes after what is stored", s->ax3.file, a->next_block,
                         got < 0 ? strerror(errno) : "file shrank");
                usb_set_error(s, "%s", why);
                (void)usb_src_flush(s);
                fail(d, why);
                return;
            }
            a->buf_n = (size_t)got / CWA_BLOCK_SIZE;
            a->buf_pos = 0;
            a->buf_block = a->next_block;
            a->next_block += a->buf_n;
            s->ax3.bytes_read += (uint64_t)got;
            budget -= (int)a->buf_n;
            if (a->buf_n == 0) {
                a->next_block = a->nblocks;
                continue;
            }
        }
        while (a->buf_pos < a->buf_n) {
            uint64_t k = a->buf_block + a->buf_pos;
            int r = cwain_block(a->ci, a->buf + a->buf_pos * CWA_BLOCK_SIZE,
                                CWA_HEADER_SIZE + k * CWA_BLOCK_SIZE);
            if (r == -EBUSY)
                break; /* events of the last block still to move: drain first */
            a->buf_pos++;
            if (r != CWAIN_OK && a->reported++ < AX3_REPORT_MAX)
                log_warn("usb %s: source %s: %s: %s", d->port, s->name, s->ax3.file,
                         a->ci->why);
            e = drain(d, 0);
            if (e == -EAGAIN || e < 0)
                return;
        }
    }
    s->ax3.cwa = a->ci->st;
    s->dirty = 1;
    usb_dev_due(d, daemon_mono_ms()); /* more next turn: the loop serves everything else first */
}

void ax3_on_reply(struct usb_dev *d, int ok)
{
    struct ax3_dev *a = priv(d);
    if (!a)
        return;
    if (!ok) {
        /* nothing of this source may commit after the failure: start over from the position
         * once the store is back */
        if (a->st == AX3_COPY || a->st == AX3_END) {
            close_file(a);
            a->st = AX3_WAIT_STORE;
            usb_set_state(d->src, "downloading");
            usb_dev_due(d, daemon_mono_ms() + AX3_RETRY_MS);
        }
        return;
    }
    if (a->st == AX3_COPY)
        usb_dev_due(d, daemon_mono_ms());
    else if (a->st == AX3_END)
        finish(d);
    else if (a->st == AX3_WAIT_STORE)
        usb_dev_due(d, daemon_mono_ms());
}

void ax3_on_timer(struct usb_dev *d)
{
    struct ax3_dev *a = priv(d);
    struct usb_src *s = d->src;
    switch (a->st) {
    case AX3_SETTLE:
        a->st = AX3_TTY;
        /* fall through */
    case AX3_TTY: {
        if (usbsys_find_tty(d->sysdir, s->ax3.tty, sizeof s->ax3.tty) == 0) {
            int fd = open_tty(s->ax3.tty);
            if (fd >= 0 && usb_watch_fd(d->u, fd) == 0) {
                a->tty = fd;
                ax3cmd_lines_init(&a->lines);
                a->st = AX3_CDC;
                a->step = 0;
                send_step(d);
                return;
            }
            usb_set_error(s, "%s: %s", s->ax3.tty, fd < 0 ? strerror(-fd) : "cannot poll it");
            log_warn("usb %s: source %s: %s, downloading without it", d->port, s->name, s->error);
            if (fd >= 0)
                close(fd);
            begin_volume(d);
            return;
        }
        s->ax3.tty[0] = 0;
        if (daemon_mono_ms() - a->started_mono_ms > AX3_TTY_WAIT_MS) {
            usb_set_error(s, "no serial interface (ttyACM) found under %s: battery and clock "
                          "not read", d->sysdir);
            log_warn("usb %s: source %s: %s", d->port, s->name, s->error);
            begin_volume(d);
            return;
        }
        usb_dev_due(d, daemon_mono_ms() + 500);
        return;
    }
    case AX3_CDC: /* a reply did not come */
        usb_set_error(s, "no reply to %s within %d s", steps[a->step].name, AX3_REPLY_MS / 1000);
        log_warn("usb %s: source %s: %s", d->port, s->name, s->error);
        if (a->step == 0) { /* not talking at all: skip the rest */
            close_tty(d);
            begin_volume(d);
        } else {
            next_step(d);
        }
        return;
    case AX3_VOLUME:
        try_volume(d);
        return;
    case AX3_WAIT_STORE:
        if (s->inflight || s->building)
            return; /* ax3_on_reply brings us back */
        if (open_download(d) < 0)
            return;
        a->st = AX3_COPY;
        /* fall through */
    case AX3_COPY:
        copy_some(d);
        return;
    case AX3_END:
        finish(d);
        return;
    case AX3_DONE:
    case AX3_FAILED:
        return;
    }
}
#endif
