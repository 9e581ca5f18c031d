/* libFuzzer harness for the ActiGraph gt3x decoder and reader (drivers/gt3x.c,
 * drivers/file_gt3x.c): any info.txt and any log.bin or activity.bin must give samples or
 * located reports, never a crash, hang, leak or an impossible item.
 *
 * Input: a flag byte, a 2-byte little-endian length L, L bytes of info.txt, then the stream.
 * Flags: bit 0 the stream is activity.bin (NEO) rather than log.bin; bit 1 sets the checksum
 * of every well-framed record (so the fuzzer reaches the record contents); bits 2-3 choose
 * how the stream is fed (all at once, 1 byte, 7 bytes, 4 KiB at a time); bit 4 also writes
 * info.txt and the stream into a real ZIP archive (minizip) and reads it with the reader, as
 * `engaged replay` would; bit 5 leaves the scale unknown to the decoder (PARAMETERS or an
 * error). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <minizip/zip.h>

#include "drivers/gt3x.h"
#include "drivers/reader.h"

extern const struct reader_ops reader_gt3x;
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The rule of pipeline/event_canon.c, defined here so that the harness does not pull in the
 * event code: ids are [A-Za-z0-9_-]{1,64}. */
int ev_valid_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
              (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '-') || n >= EV_ID_MAX)
            return 0;
    return n > 0;
}

#define MAX_STREAM (256 * 1024)

static void fix_checksums(uint8_t *p, size_t n)
{
    size_t o = 0;
    while (o + 8 < n) {
        if (p[o] != 0x1E) {
            o++;
            continue;
        }
        size_t size = (size_t)(p[o + 6] | p[o + 7] << 8);
        if (o + 9 + size > n)
            break;
        uint8_t x = 0;
        for (size_t i = 0; i < 8 + size; i++)
            x ^= p[o + i];
        p[o + 8 + size] = (uint8_t)~x;
        o += 9 + size;
    }
}

static void check_samples(const float (*g)[3], size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < 3; a++)
            if (!isfinite(g[i][a]) || fabsf(g[i][a]) > 1000)
                abort();
}

static void run_decoder(const struct gt3x_info *info, int flags, const uint8_t *s, size_t n)
{
    static struct gt3x_log l;
    int neo = flags & 1;
    double scale = flags & 32 ? 0 : info->accel_scale > 0 ? info->accel_scale
                                                          : gt3x_serial_scale(info->serial);
    int64_t start = 1600000000;
    if (neo && scale == 0)
        scale = 341;
    gt3x_log_init(&l, neo, info->sample_rate, scale, gt3x_rotated(info), start);
    static const size_t steps[4] = {(size_t)-1, 1, 7, 4096};
    size_t step = steps[(flags >> 2) & 3], fed = 0, items = 0;
    int64_t last = INT64_MIN;
    struct gt3x_item it;
    int k;
    while ((k = gt3x_log_next(&l, &it)) != GT3X_END) {
        if (++items > 10000000)
            abort(); /* no endless loop */
        switch (k) {
        case GT3X_NEED_MORE: {
            size_t room;
            uint8_t *p = gt3x_log_space(&l, &room);
            size_t m = n - fed < step ? n - fed : step;
            if (m > room)
                m = room;
            if (room == 0)
                abort(); /* asked for more with a full buffer */
            memcpy(p, s + fed, m);
            gt3x_log_wrote(&l, m);
            fed += m;
            if (m == 0)
                gt3x_log_end(&l);
            break;
        }
        case GT3X_SAMPLES:
            if (it.n == 0 || it.n > (size_t)(neo ? GT3X_NEO_CHUNK : info->sample_rate) ||
                !it.g || it.index <= last)
                abort();
            check_samples(it.g, it.n);
            last = it.index + (int64_t)it.n - 1;
            break;
        case GT3X_FILL:
            if (it.n == 0 || it.n > (size_t)GT3X_FILL_MAX_S * (size_t)info->sample_rate ||
                it.index <= last)
                abort();
            check_samples((const float(*)[3])it.fill, 1);
            last = it.index + (int64_t)it.n - 1;
            break;
        case GT3X_BAD:
            if (!it.why)
                abort();
            break;
        case GT3X_ERROR:
            if (!it.why)
                abort();
            return;
        default:
            abort();
        }
    }
}

static void run_reader(const uint8_t *info, size_t ni, const uint8_t *s, size_t n, int neo)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_gt3x.%d.gt3x", (int)getpid());
    unlink(path);
    zipFile z = zipOpen64(path, APPEND_STATUS_CREATE);
    if (!z)
        return;
    const char *names[2] = {"info.txt", neo ? "activity.bin" : "log.bin"};
    const void *data[2] = {ni ? (const void *)info : "", n ? (const void *)s : ""};
    unsigned len[2] = {(unsigned)ni, (unsigned)n};
    for (int i = 0; i < 2; i++)
        if (zipOpenNewFileInZip64(z, names[i], NULL, NULL, 0, NULL, 0, NULL, Z_DEFLATED,
                                  Z_DEFAULT_COMPRESSION, 0) != ZIP_OK ||
            zipWriteInFileInZip(z, data[i], len[i]) != ZIP_OK || zipCloseFileInZip(z) != ZIP_OK) {
            zipClose(z, NULL);
            return;
        }
    if (zipClose(z, NULL) != ZIP_OK)
        return;
    static float scratch[EV_ACCEL_MAX][3];
    struct reader r;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.scratch = scratch;
    r.opts.participant = "p1";
    if (reader_gt3x.open(&r, path, &r.opts) == 0) {
        struct event ev;
        int k;
        while ((k = reader_gt3x.next(&r, &ev)) != READ_EOF) {
            if (k < 0 || k == READ_BAD) {
                if (!r.why)
                    abort();
                if (k < 0)
                    break;
                continue;
            }
            if (k != READ_EVENT || ev.type != EV_ACCEL || ev.ts < EV_TS_MIN ||
                ev.ts >= EV_TS_MAX || ev.seq < 0 || ev.u.accel.n < 1 ||
                ev.u.accel.n > EV_ACCEL_MAX || !(ev.u.accel.hz >= 1 && ev.u.accel.hz <= 1000))
                abort();
            check_samples(ev.u.accel.g, ev.u.accel.n);
        }
    } else if (!r.why) {
        abort();
    }
    reader_gt3x.close(&r);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int flags = data[0];
    size_t ni = (size_t)(data[1] | data[2] << 8);
    if (ni > size - 3)
        ni = size - 3;
    const uint8_t *info = data + 3;
    size_t n = size - 3 - ni;
    if (n > MAX_STREAM)
        return 0;
    static uint8_t s[MAX_STREAM];
    memcpy(s, info + ni, n);
    if (flags & 2)
        fix_checksums(s, n);
    struct gt3x_info in;
    char why[200];
    if (gt3x_info_parse((const char *)info, ni, &in, why, sizeof why) == 0) {
        if (in.sample_rate < 0 || in.sample_rate > GT3X_RATE_MAX)
            abort();
        if (in.sample_rate > 0)
            run_decoder(&in, flags, s, n);
    } else if (!why[0]) {
        abort();
    }
    if (flags & 16)
        run_reader(info, ni, s, n, flags & 1);
    return 0;
}
