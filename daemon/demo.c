#include "daemon/demo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const unsigned char demo_jsonl[], demo_conf[];
extern const size_t demo_jsonl_len, demo_conf_len;

static int write_file(const char *dir, const char *name, const unsigned char *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            close(fd);
            return e;
        }
        off += (size_t)n;
    }
    return close(fd) < 0 ? -errno : 0;
}

int demo_materialise(char *dir, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    if ((size_t)snprintf(dir, cap, "%s/engaged-demo.XXXXXX", tmp) >= cap)
        return -ENAMETOOLONG;
    if (!mkdtemp(dir))
        return -errno;
    int e = write_file(dir, "demo.jsonl", demo_jsonl, demo_jsonl_len);
    if (e == 0)
        e = write_file(dir, "demo.conf", demo_conf, demo_conf_len);
    if (e < 0)
        demo_cleanup(dir);
    return e;
}

void demo_cleanup(const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/demo.jsonl", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/demo.conf", dir);
    unlink(path);
    rmdir(dir);
}
