/* Recording a BLE source's raw traffic as a btsnoop capture (daemon/ble_record.h). The
 * record encoding is drivers/btsnoop.c's; this file adds the HCI events that frame sessions
 * and connections, the buffer of whole records, the size limit and the error handling. */
#include "daemon/ble_record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/conf.h"
#include "daemon/log.h"
#include "drivers/btsnoop.h"

#define NS_PER_MS INT64_C(1000000)
#define HANDLE_MAX 0x0EFF          /* the largest LE connection handle */
#define HCI_RESET 0x0C03           /* opcode of HCI_Reset */
#define EVT_CMD_COMPLETE 0x0E
#define EVT_DISCONN_COMPLETE 0x05
#define EVT_LE_META 0x3E
#define LE_CONN_COMPLETE 0x01
#define REASON_LOCAL_HOST 0x16

struct ble_rec {
    int fd;
    char *path, *name;
    int64_t max;
    int64_t written;        /* bytes in the file */
    uint32_t conns;         /* connections this session */
    uint16_t handle;        /* of the open connection, 0: none */
    int stopped;
    int64_t first_ns;       /* when the oldest buffered record was made */
    struct ble_rec_stats st;
    size_t n;
    uint8_t buf[BLE_REC_BUF];
};

int64_t ble_rec_time_us(int64_t utc_ms, int64_t real_us)
{
    int64_t base = utc_ms * 1000, fine = real_us - base;
    return base + (fine < 0 ? 0 : fine > 999 ? 999 : fine);
}

/* Recording ends for good: one log line; what comes later is only counted. */
static void stop(struct ble_rec *r, int err)
{
    if (r->stopped)
        return;
    r->stopped = err;
    if (err == -EDQUOT)
        log_warn("ble %s: record %s: the capture reached record_max (%" PRId64 " bytes); "
                 "recording stopped", r->name, r->path, r->max);
    else
        log_error("ble %s: record %s: %s; recording stopped (the source goes on)", r->name,
                  r->path, strerror(-err));
}

/* Writes the buffer. A short write is cut back to the last whole flush, so the file only ever
 * ends after a whole record. */
static void flush_buf(struct ble_rec *r)
{
    size_t off = 0;
    while (off < r->n && !r->stopped) {
        ssize_t w = write(r->fd, r->buf + off, r->n - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        int e = w < 0 ? -errno : -EIO;
        if (off && ftruncate(r->fd, (off_t)r->written) < 0)
            log_error("ble %s: record %s: cannot cut a partial write back: %s", r->name,
                      r->path, strerror(errno));
        stop(r, e);
    }
    if (!r->stopped)
        r->written += (int64_t)r->n;
    r->n = 0;
}

/* Room for len more bytes, within record_max: 1, or 0 when recording is (now) stopped. */
static int room(struct ble_rec *r, size_t len, int64_t now_ns)
{
    if (r->stopped)
        return 0;
    if (r->written + (int64_t)(r->n + len) > r->max) {
        flush_buf(r);
        stop(r, -EDQUOT);
        return 0;
    }
    if (r->n + len > sizeof r->buf)
        flush_buf(r);
    if (r->n == 0)
        r->first_ns = now_ns;
    return !r->stopped;
}

/* Appends one record of H4 data (its type byte first). flags: BTSNOOP_FLAG_*. */
static int put(struct ble_rec *r, struct ble_rec_at at, uint32_t flags, const uint8_t *data,
               size_t len)
{
    if (!room(r, BTSNOOP_REC_HDR_LEN + len, at.mono_ns))
        return -EPIPE;
    struct btsnoop_rec h = {.orig_len = (uint32_t)len, .incl_len = (uint32_t)len,
                            .flags = flags, .ts_us = btsnoop_ts_from_unix_us(at.utc_us)};
    btsnoop_encode_record(r->buf + r->n, &h);
    memcpy(r->buf + r->n + BTSNOOP_REC_HDR_LEN, data, len);
    r->n += BTSNOOP_REC_HDR_LEN + len;
    r->st.records++;
    return 0;
}

/* An HCI event from the controller: code and parameters. */
static void put_event(struct ble_rec *r, struct ble_rec_at at, uint8_t code, const uint8_t *p,
                      size_t n)
{
    uint8_t d[3 + 255] = {BTSNOOP_H4_EVT, code, (uint8_t)n};
    memcpy(d + 3, p, n);
    put(r, at, BTSNOOP_FLAG_RECEIVED | BTSNOOP_FLAG_CMD_EVT, d, 3 + n);
}

/* A new session of the daemon: it resets the controller, so readers forget every earlier
 * connection (one a killed daemon left open included). */
static void session(struct ble_rec *r, struct ble_rec_at at)
{
    static const uint8_t reset[] = {BTSNOOP_H4_CMD, HCI_RESET & 0xFF, HCI_RESET >> 8, 0};
    static const uint8_t done[] = {1, HCI_RESET & 0xFF, HCI_RESET >> 8, 0};
    put(r, at, BTSNOOP_FLAG_CMD_EVT, reset, sizeof reset);
    put_event(r, at, EVT_CMD_COMPLETE, done, sizeof done);
}

static int parse_bdaddr(const char *s, uint8_t out[6])
{
    unsigned b[6];
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        out[i] = (uint8_t)b[5 - i];  /* the text is most significant first, HCI the reverse */
    return 0;
}

void ble_rec_connect(struct ble_rec *r, struct ble_rec_at at, const char *address, int random)
{
    if (!r)
        return;
    ble_rec_disconnect(r, at, REASON_LOCAL_HOST);
    r->handle = (uint16_t)(1 + r->conns++ % HANDLE_MAX);
    uint8_t p[19] = {LE_CONN_COMPLETE, 0, (uint8_t)r->handle, (uint8_t)(r->handle >> 8),
                     0 /* central */, random ? 1 : 0};
    if (parse_bdaddr(address, p + 6) < 0)
        memset(p + 6, 0, 6);
    put_event(r, at, EVT_LE_META, p, sizeof p);
}

void ble_rec_disconnect(struct ble_rec *r, struct ble_rec_at at, uint8_t reason)
{
    if (!r || !r->handle)
        return;
    uint8_t p[4] = {0, (uint8_t)r->handle, (uint8_t)(r->handle >> 8), reason};
    put_event(r, at, EVT_DISCONN_COMPLETE, p, sizeof p);
    r->handle = 0;
}

void ble_rec_att(struct ble_rec *r, struct ble_rec_at at, int dir, const uint8_t *pdu,
                 size_t len)
{
    if (!r || !r->handle)
        return;
    long n = -EPIPE;
    /* one ACL packet: record header, H4 byte, ACL and L2CAP headers, the PDU */
    if (len <= BTSNOOP_ATT_MAX && room(r, BTSNOOP_REC_HDR_LEN + 1 + 4 + 4 + len, at.mono_ns))
        n = btsnoop_encode_att(r->buf + r->n, sizeof r->buf - r->n, BTSNOOP_LINK_H4, r->handle,
                               dir, at.utc_us, pdu, len, 0);
    if (n < 0) {
        r->st.dropped++;
        return;
    }
    r->n += (size_t)n;
    r->st.records++;
}

int64_t ble_rec_deadline(const struct ble_rec *r)
{
    return r && r->n ? r->first_ns + BLE_REC_FLUSH_MS * NS_PER_MS : INT64_MAX;
}

void ble_rec_on_timer(struct ble_rec *r, int64_t now_mono_ns)
{
    if (r && r->n && now_mono_ns >= ble_rec_deadline(r))
        flush_buf(r);
}

int ble_rec_stopped(const struct ble_rec *r)
{
    return r->stopped;
}

void ble_rec_stats(const struct ble_rec *r, struct ble_rec_stats *ret)
{
    *ret = r->st;
    ret->size = r->written + (int64_t)r->n;
    ret->stopped = r->stopped;
}

/* ---- opening ---- */

/* The header of an existing file: 0 for a datalink 1002 capture, or 1 for an empty file
 * (a header is due), else an error with why. */
static int check_header(int fd, char *why, size_t cap)
{
    uint8_t h[BTSNOOP_HDR_LEN];
    uint32_t link = 0;
    ssize_t n = pread(fd, h, sizeof h, 0);
    if (n < 0)
        return -errno;
    if (n == 0)
        return 1;
    int e = btsnoop_parse_header(h, (size_t)n, &link);
    if (e == -ENODATA || e == -EINVAL) {
        snprintf(why, cap, "exists and is not a btsnoop capture: refusing to write to it");
        return -EINVAL;
    }
    if (e < 0 || link != BTSNOOP_LINK_H4) {
        snprintf(why, cap, "a btsnoop capture of another version or datalink (%" PRIu32 "; "
                 "the daemon appends 1002, H4): refusing to write to it", link);
        return -EPROTONOSUPPORT;
    }
    return 0;
}

static struct ble_rec *rec_new(const char *path, const char *name, int64_t max)
{
    struct ble_rec *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->fd = -1;
    r->max = max;
    r->path = strdup(path);
    r->name = strdup(name);
    if (!r->path || !r->name) {
        ble_rec_close(r, (struct ble_rec_at){0, 0});
        return NULL;
    }
    return r;
}

static int open_file(struct ble_rec *r, char *why, size_t cap)
{
    struct stat sb;
    r->fd = open(r->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, BLE_REC_MODE);
    if (r->fd < 0 || fstat(r->fd, &sb) < 0) {
        snprintf(why, cap, "%s", strerror(errno));
        return -errno;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(why, cap, "not a regular file");
        return -EINVAL;
    }
    int e = check_header(r->fd, why, cap);
    if (e < 0)
        return e;
    r->written = sb.st_size;
    if (e == 1) {  /* new: the header goes out at once, so the file is a capture from now on */
        uint8_t h[BTSNOOP_HDR_LEN];
        btsnoop_encode_header(h, BTSNOOP_LINK_H4);
        memcpy(r->buf, h, sizeof h);
        r->n = sizeof h;
        flush_buf(r);
        if (r->stopped) {
            snprintf(why, cap, "%s", strerror(-r->stopped));
            return r->stopped;
        }
    }
    return 0;
}

int ble_rec_open(const char *path, const char *name, int64_t max, struct ble_rec_at at,
                 struct ble_rec **ret, char *why, size_t cap)
{
    *ret = NULL;
    struct ble_rec *r = rec_new(path, name, max);
    if (!r) {
        snprintf(why, cap, "out of memory");
        return -ENOMEM;
    }
    int e = open_file(r, why, cap);
    if (e < 0) {
        r->stopped = e; /* nothing more goes to the file */
        ble_rec_close(r, at);
        return e;
    }
    if (r->written >= r->max)
        stop(r, -EDQUOT);
    session(r, at);
    *ret = r;
    return 0;
}

struct ble_rec *ble_rec_close(struct ble_rec *r, struct ble_rec_at at)
{
    if (!r)
        return NULL;
    ble_rec_disconnect(r, at, REASON_LOCAL_HOST);
    if (r->n)
        flush_buf(r);
    if (r->st.dropped && r->name)
        log_info("ble %s: record %s: %" PRIu64 " ATT PDUs were not recorded", r->name, r->path,
                 r->st.dropped);
    if (r->fd >= 0)
        close(r->fd);
    free(r->path);
    free(r->name);
    free(r);
    return NULL;
}

/* ---- the daemon's sources ---- */

/* The captures opened for a start, until each source claims its own. */
struct ble_recset {
    size_t n;
    struct ble_rec **rec;
    const struct conf_source **src;
};

/* Closes what was opened and not claimed, writing nothing more (the start failed, or nothing
 * claimed it). */
void ble_recset_free(struct ble_recset *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        if (set->rec[i]) {
            set->rec[i]->stopped = -ECANCELED;
            ble_rec_close(set->rec[i], (struct ble_rec_at){0, 0});
        }
    free(set->rec);
    free(set->src);
    free(set);
}

/* Another source already records to the file r has open: its index, else -1. */
static int same_file(const struct ble_recset *set, const struct ble_rec *r)
{
    struct stat a, b;
    if (fstat(r->fd, &a) < 0)
        return -1;
    for (size_t i = 0; i < set->n; i++)
        if (fstat(set->rec[i]->fd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            return (int)i;
    return -1;
}

static int open_source(struct ble_recset *set, const struct conf_source *s, struct ble_rec_at at)
{
    char why[192];
    struct ble_rec *r;
    int e = ble_rec_open(s->record, s->name, s->record_max, at, &r, why, sizeof why);
    int other = e == 0 ? same_file(set, r) : -1;
    if (other >= 0) {
        snprintf(why, sizeof why, "also the record file of [source %s]", set->src[other]->name);
        r->stopped = -EEXIST; /* leaves the other source's file as it is */
        ble_rec_close(r, at);
        e = -EEXIST;
    }
    if (e < 0) {
        log_error("%s:%d: [source %s] record: %s: %s", s->loc.file ? s->loc.file : "?",
                  s->loc.line, s->name, s->record, why);
        return e;
    }
    set->rec[set->n] = r;
    set->src[set->n++] = s;
    return 0;
}

int ble_record_open_all(const struct conf *cf, int64_t mono_ns, int64_t utc_us,
                        struct ble_recset **ret)
{
    struct ble_rec_at at = {mono_ns, utc_us};
    size_t cap = cf->n_sources ? cf->n_sources : 1;
    struct ble_recset *set = calloc(1, sizeof *set);
    if (!set || !(set->rec = calloc(cap, sizeof *set->rec)) ||
        !(set->src = calloc(cap, sizeof *set->src))) {
        ble_recset_free(set);
        return -ENOMEM;
    }
    for (size_t i = 0; i < cf->n_sources; i++) {
        const struct conf_source *s = &cf->sources[i];
        if (s->driver != CONF_DRIVER_BLE || !s->record[0])
            continue;
        int e = open_source(set, s, at);
        if (e < 0) {
            ble_recset_free(set);
            return e;
        }
    }
    if (set->n)
        signal(SIGXFSZ, SIG_IGN);
    *ret = set;
    return 0;
}

struct ble_rec *ble_record_claim(struct ble_recset *set, const char *source)
{
    for (size_t i = 0; set && i < set->n; i++)
        if (set->rec[i] && strcmp(set->rec[i]->name, source) == 0) {
            struct ble_rec *r = set->rec[i];
            set->rec[i] = NULL;
            return r;
        }
    return NULL;
}
