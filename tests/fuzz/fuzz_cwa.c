/* libFuzzer harness for the Axivity CWA decoder and reader (drivers/cwa.c, drivers/file_cwa.c):
 * any bytes must give events or located reports, never a crash, hang, leak or an event the
 * pipeline could not take.
 *
 * Input: one flag byte, then the file. Flags: bit 0 sets every data block's checksum so that
 * the fuzzer reaches the field checks and the resampler instead of stopping at the checksum
 * (a random block passes it once in 65,536); bit 1 places the device clock in Europe/Paris.
 * The file goes through the reader (as a temp file), and its 512-byte blocks straight through
 * cwa_block_decode and a cwa_stream, the way a live driver copying blocks would use them. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/cwa.h"
#include "drivers/reader.h"
#include "pipeline/tz.h"

extern const struct reader_ops reader_cwa;
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

#define MAX_FILE (64 * 1024)

static void fix_sums(uint8_t *f, size_t n)
{
    for (size_t o = CWA_HEADER_SIZE; o + CWA_BLOCK_SIZE <= n; o += CWA_BLOCK_SIZE) {
        uint8_t *b = f + o;
        if (b[0] != 'A' || b[1] != 'X')
            continue;
        b[510] = b[511] = 0;
        uint16_t s = (uint16_t)(0x10000 - cwa_block_sum(b));
        b[510] = (uint8_t)s;
        b[511] = (uint8_t)(s >> 8);
    }
}

static void check_event(const struct event *ev)
{
    if (ev->type != EV_ACCEL || ev->ts < EV_TS_MIN || ev->ts >= EV_TS_MAX || !ev->has_seq ||
        ev->seq < 0 || ev->u.accel.n < 1 || ev->u.accel.n > EV_ACCEL_MAX ||
        !(ev->u.accel.hz >= CWA_HZ_MIN && ev->u.accel.hz <= CWA_HZ_MAX) ||
        !ev_valid_id(ev->participant) || !ev_valid_id(ev->source))
        abort();
    for (size_t i = 0; i < ev->u.accel.n; i++)
        for (int a = 0; a < 3; a++)
            if (!isfinite(ev->u.accel.g[i][a]) || fabsf(ev->u.accel.g[i][a]) > 128)
                abort(); /* int16 / 256 at most */
}

static void run_reader(const char *path, const struct tz_zone *zone)
{
    static float scratch[EV_ACCEL_MAX][3];
    struct reader r;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.scratch = scratch;
    r.opts.participant = "p1";
    r.opts.zone = zone;
    if (reader_cwa.open(&r, path, &r.opts) == 0) {
        struct event ev;
        int k;
        while ((k = reader_cwa.next(&r, &ev)) != READ_EOF) {
            if (k < 0) {
                if (!r.why)
                    abort();
                break;
            }
            if (k != READ_EVENT) {
                if (!r.why || (k != READ_BAD && k != READ_UNKNOWN))
                    abort(); /* every problem has a reason */
                continue;
            }
            check_event(&ev);
        }
    } else if (!r.why) {
        abort();
    }
    reader_cwa.close(&r);
}

static void run_blocks(const uint8_t *f, size_t n)
{
    static struct cwa_stream s;
    static struct cwa_block b;
    static float out[EV_ACCEL_MAX][3];
    cwa_stream_reset(&s);
    for (size_t o = CWA_HEADER_SIZE; o + CWA_BLOCK_SIZE <= n; o += CWA_BLOCK_SIZE) {
        const char *why = NULL;
        int e = cwa_block_decode(f + o, &b, &why);
        if (e < 0) {
            if (!why)
                abort();
            continue;
        }
        if (b.n < 1 || b.n > CWA_BLOCK_SAMPLES_MAX || !(b.hz >= CWA_HZ_MIN))
            abort();
        int64_t idx, expect = -1;
        if (s.active && !cwa_stream_continues(&s, &b)) {
            while (cwa_stream_take(&s, 1, out, EV_ACCEL_MAX, &idx) > 0)
                ;
            cwa_stream_reset(&s);
        }
        cwa_stream_add(&s, &b);
        size_t k;
        while ((k = cwa_stream_take(&s, 0, out, 100, &idx)) > 0) {
            if (expect >= 0 && idx != expect)
                abort(); /* the grid goes on without a gap within a segment */
            expect = idx + (int64_t)k;
        }
    }
    int64_t idx;
    size_t total = 0, k;
    while ((k = cwa_stream_take(&s, 1, out, EV_ACCEL_MAX, &idx)) > 0)
        if ((total += k) > 1000000)
            abort(); /* bounded by the raw samples held */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tz_db *db;
    static const struct tz_zone *paris;
    if (!db) {
        int err;
        db = tz_db_new(NULL);
        paris = db ? tz_db_get(db, "Europe/Paris", &err) : NULL;
    }
    if (size < 1 || size > MAX_FILE + 1)
        return 0;
    uint8_t flags = data[0];
    size_t n = size - 1;
    static uint8_t f[MAX_FILE];
    memcpy(f, data + 1, n);
    if (flags & 1)
        fix_sums(f, n);
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_cwa.%d.cwa", (int)getpid());
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return 0;
    fwrite(f, 1, n, fp);
    fclose(fp);
    (void)reader_cwa.probe(path, f, n);
    run_reader(path, flags & 2 ? paris : NULL);
    unlink(path);
    run_blocks(f, n);
    return 0;
}
