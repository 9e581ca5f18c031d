/* libFuzzer harness for the AWARE/RAPIDS CSV reader (drivers/file_aware.c): any bytes as a
 * CSV file must give events or located errors, never a crash, hang or leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_aware.%d.csv", (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    static float scratch[EV_ACCEL_MAX][3];
    struct reader r;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.scratch = scratch;
    if (reader_aware_csv.open(&r, path, &r.opts) == 0) {
        struct event ev;
        int n;
        while ((n = reader_aware_csv.next(&r, &ev)) > 0) {
            if (n == READ_EVENT && (ev.ts < EV_TS_MIN || ev.ts >= EV_TS_MAX || !ev_valid_id(ev.participant)))
                abort(); /* the reader must only return valid events */
            if (n != READ_EVENT && !r.why)
                abort(); /* every problem has a reason */
        }
    }
    reader_aware_csv.close(&r);
    unlink(path);
    return 0;
}
