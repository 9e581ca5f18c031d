#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/reader.h"

extern const struct reader_ops reader_awd; /* Actiwatch .AWD (drivers/file_awd.c) */

/* Detection order matters: the most specific signatures first, JSON Lines last. */
static const struct reader_ops *const readers[] = {
    &reader_store,
    &reader_agd,
    &reader_cwa,  /* "MD" header with packet length 1020 */
    &reader_gt3x, /* ZIP named .gt3x or holding info.txt */
    &reader_btsnoop, /* "btsnoop\0" */
    &reader_awd,
    &reader_aware_csv,
    &reader_agcsv,
    &reader_jsonl,
};

const struct reader_ops *reader_find(const char *format)
{
    for (size_t i = 0; i < sizeof readers / sizeof readers[0]; i++)
        if (strcmp(readers[i]->name, format) == 0)
            return readers[i];
    return NULL;
}

int reader_open(struct reader *r, const char *path, const char *format,
                const struct reader_opts *o)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    if (o)
        r->opts = *o;
    r->scratch = malloc(sizeof(float[3]) * EV_ACCEL_MAX);
    if (!r->scratch) {
        r->why = "out of memory";
        return -ENOMEM;
    }
    const struct reader_ops *ops = NULL;
    if (format) {
        ops = reader_find(format);
        if (!ops) {
            r->why = "unknown --format";
            goto fail_proto;
        }
    } else {
        unsigned char head[512];
        ssize_t n = 0;
        int fd = strcmp(path, "-") == 0 ? -1 : open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && strcmp(path, "-") != 0) {
            int e = errno;
            r->why = strerror(e);
            free(r->scratch);
            r->scratch = NULL;
            return -e;
        }
        if (fd >= 0) {
            n = read(fd, head, sizeof head);
            close(fd);
            if (n < 0)
                n = 0;
        }
        for (size_t i = 0; i < sizeof readers / sizeof readers[0] && !ops; i++)
            if (fd < 0 ? readers[i] == &reader_jsonl : readers[i]->probe(path, head, (size_t)n))
                ops = readers[i];
        if (!ops) {
            r->why = "unrecognised file format (use --format)";
            goto fail_proto;
        }
    }
    r->ops = ops;
    int e = ops->open(r, path, &r->opts);
    if (e < 0) {
        ops->close(r);
        free(r->scratch);
        r->scratch = NULL;
        r->ops = NULL;
    }
    return e;
fail_proto:
    free(r->scratch);
    r->scratch = NULL;
    return -EPROTONOSUPPORT;
}

void reader_close(struct reader *r)
{
    if (r->ops)
        r->ops->close(r);
    r->ops = NULL;
    free(r->scratch);
    r->scratch = NULL;
}
