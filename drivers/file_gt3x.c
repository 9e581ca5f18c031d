/* ActiGraph .gt3x files (reference ../shared/reference/ble.md §8.3 and actigraphy.md §8.5): a ZIP
 * archive, read with zlib's minizip (libminizip: zlib only, where libzip would bring OpenSSL's
 * libcrypto into every engaged process and 1.6 MiB into the daemon's idle RSS). info.txt gives the
 * sample rate, the time zone and the start date; the samples come from log.bin (current format)
 * or, without it, activity.bin (the older NEO/MRA format). The entry is decompressed as a stream
 * into the decoder of drivers/gt3x.c, so memory is fixed (about 270 KiB) whatever the recording's
 * length; the samples go out as `accel` events of up to EV_ACCEL_MAX samples of the --participant
 * (source "gt3x"), an event ending early where the samples stop being consecutive (a gap).
 *
 * Times: the device clock is local wall time. With info.txt's TimeZone (the device's offset
 * from UTC), UTC = device time - offset. Without it, the first sample is placed with the
 * reader's zone (--tz, else the participant's zone, else UTC) and later ones keep their
 * device-clock distance from it. seq is the sample's index (device second * rate + position
 * in the second): reading a file twice, or overlapping downloads, gives duplicates.
 *
 * Damaged records are READ_BAD items (r->line is the log.bin record number) and are skipped;
 * a read error of the ZIP entry (bad compressed data, CRC) is returned after the samples
 * decoded before it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <minizip/unzip.h>

#include "drivers/gt3x.h"
#include "drivers/reader.h"

#define GT3X_ENTRY_MAX ((uint64_t)4 << 30) /* no ActiGraph device stores more than 4 GiB */
#define GT3X_READ 65536
#define CASE_INSENSITIVE 2 /* unzLocateFile's iCaseSensitivity */

struct gt3x_file {
    unzFile zip;
    int entry_open;          /* the current entry is open for reading */
    int neo;
    const char *entry;       /* "log.bin" or "activity.bin" */
    struct gt3x_info info;
    uint64_t read_total;
    uint64_t size;           /* the entry's uncompressed size (UINT64_MAX: unknown) */
    int fatal;               /* an error to return once the samples before it are out */
    int at_end;
    size_t n_out;
    int64_t out_index;
    struct gt3x_item item;   /* being copied into events */
    size_t item_pos;
    int have_item;
    int have_off;
    int64_t off_ms;          /* device clock minus UTC */
    uint64_t samples;        /* samples handed out (NEO: the position of a bad item) */
    char why[320];
    struct gt3x_log log;
};


static int has_suffix(const char *path, const char *suffix)
{
    size_t n = strlen(path), k = strlen(suffix);
    return n >= k && strcasecmp(path + n - k, suffix) == 0;
}

static int gt3x_probe(const char *path, const unsigned char *head, size_t n)
{
    if (n < 4 || memcmp(head, "PK\x03\x04", 4) != 0)
        return 0;
    if (has_suffix(path, ".gt3x"))
        return 1;
    unzFile z = unzOpen64(path);
    if (!z)
        return 0;
    int ok = unzLocateFile(z, "info.txt", CASE_INSENSITIVE) == UNZ_OK;
    unzClose(z);
    return ok;
}

/* What a minizip or zlib status means, for messages. */
static const char *unz_str(int e)
{
    switch (e) {
    case UNZ_CRCERROR: return "CRC error (the entry's data is damaged)";
    case UNZ_BADZIPFILE: return "damaged ZIP structure";
    case UNZ_ERRNO: return "read error";
    case UNZ_INTERNALERROR: return "internal error in the ZIP reader";
    case UNZ_PARAMERROR: return "invalid request to the ZIP reader";
    case Z_DATA_ERROR: return "damaged compressed data";
    case Z_MEM_ERROR: return "out of memory";
    case Z_BUF_ERROR: return "damaged compressed data (the entry ends early)";
    default: return "unreadable entry";
    }
}

/* Makes the entry `name` current; 0, or -1 when the archive has none. */
static int locate(unzFile z, const char *name)
{
    return unzLocateFile(z, name, CASE_INSENSITIVE) == UNZ_OK ? 0 : -1;
}

/* The current entry's uncompressed size, or UINT64_MAX when unknown. */
static uint64_t entry_size(unzFile z)
{
    unz_file_info64 fi;
    if (unzGetCurrentFileInfo64(z, &fi, NULL, 0, NULL, 0, NULL, 0) != UNZ_OK)
        return UINT64_MAX;
    return fi.uncompressed_size;
}

/* Reads the whole (small) current entry into buf (cap bytes); its length, or a negative errno
 * with r->why set. */
static long read_entry(struct reader *r, unzFile z, const char *name, char *buf, size_t cap)
{
    uint64_t size = entry_size(z);
    if (size != UINT64_MAX && size > cap)
        return reader_fail_open(r, -EFBIG,
                                "%s is %llu bytes: more than the %zu this reader accepts",
                                name, (unsigned long long)size, cap);
    int e = unzOpenCurrentFile(z);
    if (e != UNZ_OK)
        return reader_fail_open(r, -EIO, "cannot read %s: %s", name, unz_str(e));
    size_t got = 0;
    for (;;) {
        int k = unzReadCurrentFile(z, buf + got, (unsigned)(cap + 1 - got));
        if (k < 0) {
            unzCloseCurrentFile(z);
            return reader_fail_open(r, -EIO, "cannot read %s: %s", name, unz_str(k));
        }
        if (k == 0)
            break;
        got += (size_t)k;
        if (got > cap) {
            unzCloseCurrentFile(z);
            return reader_fail_open(r, -EFBIG, "%s is more than the %zu bytes this reader accepts",
                             name, cap);
        }
    }
    if ((e = unzCloseCurrentFile(z)) != UNZ_OK) /* the CRC is checked here */
        return reader_fail_open(r, -EIO, "cannot read %s: %s", name, unz_str(e));
    if (size != UINT64_MAX && got != size) /* damaged data that just ended early */
        return reader_fail_open(r, -EIO, "cannot read %s: %s", name, unz_str(Z_BUF_ERROR));
    return (long)got;
}

static int gt3x_open(struct reader *r, const char *path, const struct reader_opts *o)
{
    if (!o->participant)
        return reader_fail_open(r, -EINVAL,
                                "gt3x files name no study participant: give --participant");
    if (!ev_valid_id(o->participant))
        return reader_fail_open(r, -EINVAL, "--participant must match [A-Za-z0-9_-]{1,64}");
    if (o->source && !ev_valid_id(o->source))
        return reader_fail_open(r, -EINVAL, "source must match [A-Za-z0-9_-]{1,64}");
    struct gt3x_file *g = calloc(1, sizeof *g);
    if (!g)
        return reader_fail_open(r, -ENOMEM, "out of memory");
    r->priv = g;
    struct stat sb;
    if (stat(path, &sb) < 0) {
        int e = errno;
        return reader_fail_open(r, -e, "%s", strerror(e));
    }
    g->zip = unzOpen64(path);
    if (!g->zip)
        return reader_fail_open(r, -EINVAL, "not a readable ZIP archive (gt3x files are ZIP "
                         "archives; a truncated file loses the ZIP directory at its end)");
    if (locate(g->zip, "info.txt") < 0)
        return reader_fail_open(r, -EINVAL, "not a gt3x file: the ZIP archive has no info.txt");
    char *text = malloc(GT3X_INFO_MAX + 1);
    if (!text)
        return reader_fail_open(r, -ENOMEM, "out of memory");
    long n = read_entry(r, g->zip, "info.txt", text, GT3X_INFO_MAX);
    char why[200];
    int e = n < 0 ? -1 : gt3x_info_parse(text, (size_t)n, &g->info, why, sizeof why);
    free(text);
    if (n < 0)
        return (int)n;
    if (e < 0)
        return reader_fail_open(r, -EINVAL, "%s", why);
    if (g->info.sample_rate == 0)
        return reader_fail_open(r, -EINVAL, "info.txt has no Sample Rate");
    int idx = locate(g->zip, "log.bin");
    g->entry = "log.bin";
    if (idx < 0) {
        idx = locate(g->zip, "activity.bin");
        g->entry = "activity.bin";
        g->neo = 1;
    }
    if (idx < 0)
        return reader_fail_open(r, -EINVAL,
                                "not a gt3x file: the ZIP archive holds neither log.bin "
                                "(current format) nor activity.bin (older NEO/MRA format)");
    g->size = entry_size(g->zip);
    if (g->size != UINT64_MAX && g->size > GT3X_ENTRY_MAX)
        return reader_fail_open(r, -EFBIG,
                                "%s is %llu bytes: more than any ActiGraph device records "
                                "(4 GiB)", g->entry, (unsigned long long)g->size);
    double scale = g->info.accel_scale > 0 ? g->info.accel_scale
                                           : gt3x_serial_scale(g->info.serial);
    int64_t start_s = 0;
    if (g->neo) {
        int64_t t = g->info.start_ticks;
        if (t == 0)
            return reader_fail_open(r, -EINVAL,
                                    "info.txt has no Start Date (the NEO format's samples "
                                    "count from it)");
        if ((t - GT3X_TICKS_UNIX) % 10000000)
            return reader_fail_open(r, -EINVAL, "info.txt: Start Date is not a whole second");
        start_s = (t - GT3X_TICKS_UNIX) / 10000000;
        if (start_s < 0)
            return reader_fail_open(r, -EINVAL, "info.txt: Start Date is before 1970");
        if (scale == 0)
            return reader_fail_open(r, -EINVAL,
                                    "no acceleration scale: info.txt has no Acceleration "
                                    "Scale and the serial number \"%s\" names no known device",
                                    g->info.serial);
    }
    int ze = unzOpenCurrentFile(g->zip);
    if (ze != UNZ_OK)
        return reader_fail_open(r, -EIO, "cannot read %s: %s", g->entry, unz_str(ze));
    g->entry_open = 1;
    gt3x_log_init(&g->log, g->neo, g->info.sample_rate, scale, gt3x_rotated(&g->info), start_s);
    return 0;
}

static int emit(struct reader *r, struct gt3x_file *g, struct event *ev)
{
    int64_t rate = g->info.sample_rate;
    int64_t local = (g->out_index * 2000 + rate) / (2 * rate); /* index / rate s, in ms */
    if (!g->have_off) {
        if (g->info.has_tz)
            g->off_ms = (int64_t)g->info.tz_s * 1000;
        else
            g->off_ms = r->opts.zone ? local - tz_local_to_utc(r->opts.zone, local) : 0;
        g->have_off = 1;
    }
    memset(ev, 0, sizeof *ev);
    ev->type = EV_ACCEL;
    ev->ts = local - g->off_ms;
    ev->seq = g->out_index;
    ev->has_seq = 1;
    snprintf(ev->participant, sizeof ev->participant, "%s", r->opts.participant);
    snprintf(ev->source, sizeof ev->source, "%s", r->opts.source ? r->opts.source : "gt3x");
    ev->u.accel.hz = (double)rate;
    ev->u.accel.n = g->n_out;
    ev->u.accel.g = (const float(*)[3])r->scratch;
    g->samples += g->n_out;
    g->n_out = 0;
    return READ_EVENT;
}

/* Feeds the decoder the next bytes of the entry; a read error is kept for later. */
static void feed(struct gt3x_file *g)
{
    size_t room;
    uint8_t *p = gt3x_log_space(&g->log, &room);
    if (room == 0) { /* cannot happen: the decoder asks for more only with room */
        g->fatal = -EIO;
        snprintf(g->why, sizeof g->why, "%s: internal error: decoder buffer full", g->entry);
        gt3x_log_end(&g->log);
        return;
    }
    int k = unzReadCurrentFile(g->zip, p, (unsigned)(room < GT3X_READ ? room : GT3X_READ));
    if (k == 0) {
        /* the end: the entry's CRC is checked when it is closed, but only if every byte came
         * out; damaged compressed data can also just end early */
        k = unzCloseCurrentFile(g->zip);
        g->entry_open = 0;
        if (k == UNZ_OK && g->size != UINT64_MAX && g->read_total != g->size)
            k = Z_BUF_ERROR;
        if (k == UNZ_OK) {
            gt3x_log_end(&g->log);
            return;
        }
    }
    if (k < 0) {
        g->fatal = -EIO;
        snprintf(g->why, sizeof g->why, "%s: %s after byte %llu (the samples before it were "
                 "read)", g->entry, unz_str(k), (unsigned long long)g->read_total);
        gt3x_log_end(&g->log);
        return;
    }
    gt3x_log_wrote(&g->log, (size_t)k);
    g->read_total += (uint64_t)k;
    if (g->read_total > GT3X_ENTRY_MAX) {
        g->fatal = -EFBIG;
        snprintf(g->why, sizeof g->why, "%s holds more than 4 GiB: the rest is not read",
                 g->entry);
        gt3x_log_end(&g->log);
    }
}

static int gt3x_next(struct reader *r, struct event *ev)
{
    struct gt3x_file *g = r->priv;
    for (;;) {
        if (g->have_item) {
            struct gt3x_item *it = &g->item;
            int64_t idx = it->index + (int64_t)g->item_pos;
            if (g->n_out && idx != g->out_index + (int64_t)g->n_out)
                return emit(r, g, ev); /* not consecutive: a gap ends the event */
            if (!g->n_out)
                g->out_index = idx;
            size_t k = it->n - g->item_pos;
            if (k > EV_ACCEL_MAX - g->n_out)
                k = EV_ACCEL_MAX - g->n_out;
            float(*out)[3] = r->scratch + g->n_out;
            if (it->g)
                memcpy(out, it->g + g->item_pos, k * sizeof *out);
            else
                for (size_t i = 0; i < k; i++)
                    memcpy(out[i], it->fill, sizeof out[i]);
            g->item_pos += k;
            g->n_out += k;
            if (g->item_pos == it->n)
                g->have_item = 0;
            if (g->n_out == EV_ACCEL_MAX)
                return emit(r, g, ev);
            continue;
        }
        if (g->at_end) {
            if (g->n_out)
                return emit(r, g, ev);
            if (g->fatal) {
                int e = g->fatal;
                g->fatal = 0;
                r->why = g->why;
                return e;
            }
            return READ_EOF;
        }
        int k = gt3x_log_next(&g->log, &g->item);
        switch (k) {
        case GT3X_NEED_MORE:
            feed(g);
            break;
        case GT3X_SAMPLES:
        case GT3X_FILL:
            if (g->item.n) {
                g->have_item = 1;
                g->item_pos = 0;
            }
            break;
        case GT3X_BAD:
            r->line = g->neo ? g->samples + g->n_out + 1 : g->item.record;
            snprintf(g->why, sizeof g->why, "%s: %s", g->entry, g->item.why);
            r->why = g->why;
            return READ_BAD;
        case GT3X_ERROR:
            g->fatal = -EINVAL;
            snprintf(g->why, sizeof g->why, "%s: %s", g->entry, g->item.why);
            g->at_end = 1;
            break;
        default: /* GT3X_END */
            g->at_end = 1;
            break;
        }
    }
}

static void gt3x_close(struct reader *r)
{
    struct gt3x_file *g = r->priv;
    if (!g)
        return;
    if (g->entry_open)
        unzCloseCurrentFile(g->zip);
    if (g->zip)
        unzClose(g->zip);
    free(g);
    r->priv = NULL;
}

const struct reader_ops reader_gt3x = {
    .name = "gt3x",
    .probe = gt3x_probe,
    .open = gt3x_open,
    .next = gt3x_next,
    .close = gt3x_close,
};
