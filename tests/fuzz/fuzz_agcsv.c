/* libFuzzer harness for the ActiGraph CSV reader (drivers/file_agcsv.c): any bytes as a CSV
 * file, read with and without a time zone, must give valid events or located errors, never a
 * crash, hang or leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct tz_zone *chicago(void)
{
    static struct tz_db *db;
    static const struct tz_zone *z;
    if (!db) {
        int err = 0;
        db = tz_db_new(NULL);
        z = db ? tz_db_get(db, "America/Chicago", &err) : NULL;
    }
    return z;
}

static void check(const struct event *ev, int64_t *last_ts)
{
    if (ev->ts < EV_TS_MIN || ev->ts >= EV_TS_MAX || !ev_valid_id(ev->participant) ||
        !ev->has_seq || ev->seq < 0 || ev->ts < *last_ts)
        abort(); /* only valid events, in time order */
    if (ev->type == EV_COUNTS &&
        (ev->u.counts.epoch_s < 1 || 86400 % ev->u.counts.epoch_s || !(ev->u.counts.counts >= 0)))
        abort();
    if (ev->type == EV_STEPS && (!(ev->u.steps.steps >= 0) || ev->u.steps.interval_s < 1))
        abort();
    *last_ts = ev->ts;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_agcsv.%d.csv", (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    static float scratch[EV_ACCEL_MAX][3];
    for (int pass = 0; pass < 2; pass++) {
        struct reader r;
        memset(&r, 0, sizeof r);
        r.path = path;
        r.scratch = scratch;
        r.opts.participant = "p1";
        r.opts.zone = pass ? chicago() : NULL;
        (void)reader_agcsv.probe(path, data, size < 512 ? size : 512);
        if (reader_agcsv.open(&r, path, &r.opts) == 0) {
            struct event ev;
            int64_t last = INT64_MIN;
            int n;
            while ((n = reader_agcsv.next(&r, &ev)) > 0) {
                if (n == READ_EVENT)
                    check(&ev, &last);
                else if (!r.why)
                    abort(); /* every problem has a reason */
            }
        } else if (!r.why) {
            abort();
        }
        reader_agcsv.close(&r);
    }
    unlink(path);
    return 0;
}
