/* Axivity AX3/AX6 .cwa files (reference ../shared/reference/ble.md §8.2; decoding in
 * drivers/cwa.c). The 1024-byte header is checked at open; then every 512-byte block is read
 * in order: data blocks ("AX") are checksummed and decoded, their samples laid on the time
 * line the block timestamps record and resampled onto the nominal rate (cwa.h), and handed
 * out as `accel` events of up to EV_ACCEL_MAX samples of the --participant (source "cwa").
 *
 * A damaged block (bad checksum, impossible field) is reported as READ_BAD with its block
 * number and byte offset and skipped; the blocks around it are kept, and the recording
 * continues as a new segment after it (a gap, never invented samples). Erased blocks (all
 * 0x00 or 0xFF) are skipped silently, other block types are reported as READ_UNKNOWN, a
 * header block in the middle (a second recording appended) starts a new segment.
 *
 * Times: the device clock is local wall time without a zone. The first sample is placed in
 * UTC with the reader's zone (--tz, else the participant's zone, else UTC); every later one
 * keeps its device-clock distance from it, since the device's clock does not change for
 * daylight saving time. seq is the sample's index on the grid of its rate since 1970 on the
 * device clock, so a block read twice (the same file, or overlapping downloads) is a
 * duplicate.
 *
 * Memory is fixed (this struct, about 165 KiB) whatever the file's length. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/cwa.h"
#include "drivers/reader.h"

#define CWA_READ_BLOCKS 128                  /* 64 KiB per read() */
#define CWA_FILE_MAX ((uint64_t)4 << 30)    /* no AX3/AX6 holds more than 4 GiB */

struct cwa_file {
    int fd;
    uint64_t size;
    uint64_t buf_off;        /* file offset of buf[0] */
    size_t buf_len, buf_pos;
    int eof;                 /* no block left to read */
    int flushing;            /* the open segment has ended: drain it */
    int have_blk;            /* blk starts the next segment once the open one is drained */
    int io_err;              /* a read error to report once the samples before it are out */
    uint64_t block_no;       /* 1-based number of the last data-area block read */
    struct cwa_header hdr;
    struct cwa_block blk;
    /* the event being filled, in r->scratch */
    size_t n_out;
    int64_t out_index;
    double out_hz;
    int have_off;
    int64_t off_ms;          /* device clock minus UTC */
    char why[256];
    uint8_t buf[CWA_READ_BLOCKS * CWA_BLOCK_SIZE];
    struct cwa_stream st;
};


static int report(struct reader *r, struct cwa_file *c, int result, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int report(struct reader *r, struct cwa_file *c, int result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    r->why = c->why;
    return result;
}

static int cwa_probe(const char *path, const unsigned char *head, size_t n)
{
    (void)path;
    return n >= 4 && head[0] == 'M' && head[1] == 'D' && head[2] == 0xFC && head[3] == 0x03;
}

/* Reads up to n bytes at the current position; returns the count, or -errno. */
static ssize_t read_full(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, p + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

static int cwa_open(struct reader *r, const char *path, const struct reader_opts *o)
{
    if (!o->participant)
        return reader_fail_open(r, -EINVAL,
                                "CWA files name no study participant: give --participant");
    if (!ev_valid_id(o->participant))
        return reader_fail_open(r, -EINVAL, "--participant must match [A-Za-z0-9_-]{1,64}");
    if (o->source && !ev_valid_id(o->source))
        return reader_fail_open(r, -EINVAL, "source must match [A-Za-z0-9_-]{1,64}");
    struct cwa_file *c = calloc(1, sizeof *c);
    if (!c)
        return reader_fail_open(r, -ENOMEM, "out of memory");
    r->priv = c;
    c->fd = -1;
    c->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (c->fd < 0) {
        int e = errno;
        return reader_fail_open(r, -e, "%s", strerror(e));
    }
    struct stat st;
    if (fstat(c->fd, &st) < 0) {
        int e = errno;
        return reader_fail_open(r, -e, "%s", strerror(e));
    }
    if (!S_ISREG(st.st_mode))
        return reader_fail_open(r, -EINVAL, "not a regular file");
    c->size = (uint64_t)st.st_size;
    if (c->size > CWA_FILE_MAX)
        return reader_fail_open(r, -EFBIG, "file of %llu bytes: larger than any AX3/AX6 recording "
                         "(4 GiB)", (unsigned long long)c->size);
    ssize_t k = read_full(c->fd, c->buf, CWA_HEADER_SIZE);
    if (k < 0)
        return reader_fail_open(r, (int)k, "read error in the header: %s", strerror((int)-k));
    const char *why;
    if ((size_t)k < CWA_HEADER_SIZE)
        return reader_fail_open(r, -EINVAL,
                                "file of %zd bytes: too short for a CWA header (1024 bytes)",
                                k);
    if (cwa_header_parse(c->buf, (size_t)k, &c->hdr, &why) < 0)
        return reader_fail_open(r, -EINVAL, "not a CWA file: %s", why);
    c->buf_off = CWA_HEADER_SIZE;
    cwa_stream_reset(&c->st);
    return 0;
}

/* The next 512-byte block of the data area into *b (borrowed from the buffer): 1, 0 at the
 * end, READ_BAD for a partial block at the end, or -errno. */
static int next_block(struct reader *r, struct cwa_file *c, const uint8_t **b)
{
    if (c->buf_pos == c->buf_len) {
        c->buf_off += c->buf_len;
        c->buf_pos = c->buf_len = 0;
        ssize_t k = read_full(c->fd, c->buf, sizeof c->buf);
        if (k < 0)
            return report(r, c, (int)k, "read error at byte %llu: %s",
                          (unsigned long long)c->buf_off, strerror((int)-k));
        c->buf_len = (size_t)k;
    }
    size_t left = c->buf_len - c->buf_pos;
    if (left == 0)
        return 0;
    c->block_no++;
    r->line = c->block_no;
    if (left < CWA_BLOCK_SIZE) {
        c->buf_pos = c->buf_len;
        return report(r, c, READ_BAD, "block %llu (byte offset %llu): file ends %zu bytes into "
                      "the block (truncated file; the partial block is dropped)",
                      (unsigned long long)c->block_no,
                      (unsigned long long)(c->buf_off + c->buf_len - left), left);
    }
    *b = c->buf + c->buf_pos;
    c->buf_pos += CWA_BLOCK_SIZE;
    return 1;
}

static uint64_t block_offset(const struct cwa_file *c)
{
    return c->buf_off + c->buf_pos - CWA_BLOCK_SIZE;
}

/* Reads blocks until one data block is decoded into c->blk (returns 1), the end (0), or an
 * item to report (READ_BAD, READ_UNKNOWN, -errno). */
static int read_data_block(struct reader *r, struct cwa_file *c)
{
    for (;;) {
        const uint8_t *b = NULL;
        int k = next_block(r, c, &b);
        if (k != 1)
            return k;
        unsigned long long no = c->block_no, off = block_offset(c);
        switch (cwa_block_kind(b)) {
        case CWA_KIND_ERASED:
            continue;
        case CWA_KIND_HEADER: {
            /* a second recording appended: its header spans this block and the next */
            const uint8_t *rest;
            if ((k = next_block(r, c, &rest)) < 0 || k == READ_BAD)
                return k;
            c->flushing = c->st.active;
            continue;
        }
        case CWA_KIND_OTHER:
            if (b[0] == 'A' && b[1] == 'X')
                return report(r, c, READ_BAD, "block %llu (byte offset %llu): data block with "
                              "packet length %u, not 508: skipped", no, off,
                              (unsigned)(b[2] | b[3] << 8));
            if (b[0] >= 'A' && b[0] <= 'Z' && b[1] >= 'A' && b[1] <= 'Z')
                return report(r, c, READ_UNKNOWN, "block %llu (byte offset %llu): block type "
                              "\"%c%c\" is not read, skipped", no, off, b[0], b[1]);
            return report(r, c, READ_BAD, "block %llu (byte offset %llu): not a CWA block "
                          "(starts 0x%02x 0x%02x): skipped", no, off, b[0], b[1]);
        case CWA_KIND_DATA:
            break;
        }
        const char *why;
        int e = cwa_block_decode(b, &c->blk, &why);
        if (e == -EBADMSG)
            return report(r, c, READ_BAD, "block %llu (byte offset %llu): checksum mismatch "
                          "(words sum to 0x%04x, not 0): damaged block skipped", no, off,
                          cwa_block_sum(b));
        if (e < 0)
            return report(r, c, READ_BAD, "block %llu (byte offset %llu, sequence %u): %s: "
                          "skipped", no, off, (unsigned)(b[10] | b[11] << 8 | b[12] << 16 |
                                                          (unsigned)b[13] << 24), why);
        return 1;
    }
}

static int emit(struct reader *r, struct cwa_file *c, struct event *ev)
{
    /* grid index -> device-clock ms, rounded: index / hz s, hz * 4 whole */
    int64_t h4 = (int64_t)(c->out_hz * 4);
    int64_t local = (c->out_index * 8000 + h4) / (2 * h4);
    if (!c->have_off) {
        c->off_ms = r->opts.zone ? local - tz_local_to_utc(r->opts.zone, local) : 0;
        c->have_off = 1;
    }
    memset(ev, 0, sizeof *ev);
    ev->type = EV_ACCEL;
    ev->ts = local - c->off_ms;
    ev->seq = c->out_index;
    ev->has_seq = 1;
    snprintf(ev->participant, sizeof ev->participant, "%s", r->opts.participant);
    snprintf(ev->source, sizeof ev->source, "%s", r->opts.source ? r->opts.source : "cwa");
    ev->u.accel.hz = c->out_hz;
    ev->u.accel.n = c->n_out;
    ev->u.accel.g = (const float(*)[3])r->scratch;
    c->n_out = 0;
    return READ_EVENT;
}

static int cwa_next(struct reader *r, struct event *ev)
{
    struct cwa_file *c = r->priv;
    for (;;) {
        if (c->st.active) {
            int64_t idx;
            size_t k = cwa_stream_take(&c->st, c->flushing, r->scratch + c->n_out,
                                       EV_ACCEL_MAX - c->n_out, &idx);
            if (k && c->n_out == 0) {
                c->out_index = idx;
                c->out_hz = c->st.hz;
            }
            c->n_out += k;
            if (c->n_out == EV_ACCEL_MAX)
                return emit(r, c, ev);
            if (c->flushing) {
                cwa_stream_reset(&c->st);
                c->flushing = 0;
                if (c->n_out)
                    return emit(r, c, ev);
            }
        }
        if (c->have_blk) {
            c->have_blk = 0;
            cwa_stream_add(&c->st, &c->blk);
            continue;
        }
        if (c->eof || c->io_err) {
            if (c->st.active) {
                c->flushing = 1;
                continue;
            }
            if (c->io_err) {
                int e = c->io_err;
                c->io_err = 0;
                c->eof = 1;
                r->why = c->why;
                return e;
            }
            return READ_EOF;
        }
        int k = read_data_block(r, c);
        if (k == 0) {
            c->eof = 1;
            continue;
        }
        if (k < 0) { /* the samples already decoded go out first */
            c->io_err = k;
            continue;
        }
        if (k != 1) /* after a skipped block the sequence numbers do not follow on: the
                     * blocks after it start a new segment */
            return k;
        if (c->st.active && !c->flushing && cwa_stream_continues(&c->st, &c->blk)) {
            cwa_stream_add(&c->st, &c->blk);
        } else if (c->st.active) {
            c->have_blk = 1;
            c->flushing = 1;
        } else {
            cwa_stream_add(&c->st, &c->blk);
        }
    }
}

static void cwa_close(struct reader *r)
{
    struct cwa_file *c = r->priv;
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    r->priv = NULL;
}

const struct reader_ops reader_cwa = {
    .name = "cwa",
    .probe = cwa_probe,
    .open = cwa_open,
    .next = cwa_next,
    .close = cwa_close,
};
