/* libFuzzer harness for the configuration loader (daemon/conf*.c over libinih): any bytes as
 * a config file load or give FILE:LINE errors, never a crash or leak. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_error(void *ud, const char *file, int line, const char *msg)
{
    (void)file;
    if (line < 0 || !msg || !*msg)
        abort(); /* every error is located and worded */
    (*(int *)ud)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_conf.%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    struct conf *c = NULL;
    int n = 0;
    int r = conf_load(path, &c, on_error, &n);
    if ((r == 0) != (c != NULL) || (r == 0 && n != 0))
        abort(); /* success means a config and no errors; failure means no config */
    conf_free(c);
    unlink(path);
    return 0;
}
