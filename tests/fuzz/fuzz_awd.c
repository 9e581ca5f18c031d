/* libFuzzer harness for the Actiwatch AWD reader (drivers/file_awd.c): any bytes as a file must
 * give events or located errors, never a crash, hang or leak. The epochs it reads then go
 * through the rhythm metrics (pipeline/rhythm.c) under both conventions, so odd lengths, start
 * times and values reach that code too. Odd input lengths use Europe/Paris (DST), even UTC. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/reader.h"
#include "pipeline/rhythm.h"

extern const struct reader_ops reader_awd;
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EPOCHS 20000

static void rhythm(const double *x, size_t n, int epoch_s, int tod, const uint8_t *data,
                   size_t size)
{
    static uint8_t mask[MAX_EPOCHS];
    for (size_t t = 0; t < n; t++)
        mask[t] = size ? data[t % size] % 7 != 0 : 1;
    for (int conv = 0; conv < 2; conv++) {
        struct rhy_opts o;
        rhy_opts_init(&o, conv);
        o.origin = size & 2 ? RHY_ORIGIN_LOCAL_DAY : RHY_ORIGIN_RECORDING;
        o.bin_s = size & 4 ? 1800 : 3600;
        if (o.bin_s < epoch_s)
            o.bin_s = epoch_s;
        struct rhy_series s = {.x = x, .mask = size & 8 ? mask : NULL, .n = n,
                               .epoch_s = epoch_s, .tod0_s = tod};
        struct rhy_result r;
        if (rhy_compute(&s, &o, NULL, 0, &r) != 0)
            abort(); /* every AWD epoch length and bin width is valid */
        if (!isnan(r.l5) && (r.l5_onset_s < 0 || r.l5_onset_s >= 86400 || r.l5 > r.m10 * (1 + 1e-9) + 1e-12))
            abort();
        /* states: count above 4 = wake */
        static double st[MAX_EPOCHS];
        for (size_t t = 0; t < n; t++)
            st[t] = x[t] <= 4;
        double ps[8], pf[8];
        struct rhy_sri_result q;
        s.x = st;
        if (rhy_sri(&s, &o, NULL, 0, &q, ps, pf, 8) != 0)
            abort();
        if (!isnan(q.sri) && (q.sri < -100 || q.sri > 100))
            abort();
    }
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
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_awd.%d.AWD", (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    (void)reader_awd.probe(path, data, size);
    static float scratch[EV_ACCEL_MAX][3];
    static double x[MAX_EPOCHS];
    struct reader r;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.scratch = scratch;
    r.opts.participant = "p1";
    r.opts.zone = size & 1 ? paris : NULL;
    size_t n = 0;
    int epoch_s = 0, tod = 0;
    if (reader_awd.open(&r, path, &r.opts) == 0) {
        struct event ev;
        int k;
        while ((k = reader_awd.next(&r, &ev)) > 0) {
            if (k != READ_EVENT) {
                if (!r.why)
                    abort(); /* every problem has a reason */
                continue;
            }
            if (ev.ts < EV_TS_MIN || ev.ts >= EV_TS_MAX || !ev_valid_id(ev.participant) ||
                ev.type != EV_COUNTS || !(ev.u.counts.counts >= 0) || !ev.has_seq)
                abort(); /* the reader must only return valid events */
            if (n == 0) {
                epoch_s = ev.u.counts.epoch_s;
                tod = (int)(((ev.ts % 86400000) + 86400000) % 86400000 / 1000);
            }
            if (n < MAX_EPOCHS)
                x[n++] = ev.u.counts.counts;
        }
    }
    reader_awd.close(&r);
    unlink(path);
    if (n)
        rhythm(x, n, epoch_s, tod, data, size);
    return 0;
}
