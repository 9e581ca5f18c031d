/* JSON Lines reader: engaged's own recorded stream format (spec §3). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/reader.h"

#define BUF_CAP (4u << 20)

struct jsonl {
    int fd;
    char *buf;
    size_t start, end;
    int eof;
    int too_long;   /* discarding the rest of an over-long line */
    char why[160];
};

/* JSON Lines is the fallback format: a file that starts like a JSON object (after an optional
 * UTF-8 byte order mark and whitespace), or any text that no other reader claims, is read as
 * JSON Lines, so a file whose first line is bad still gets one FILE:LINE error per bad line.
 * Binary data (a NUL in the first bytes, not after a '{') is refused as unrecognised. */
static int jsonl_probe(const char *path, const unsigned char *head, size_t n)
{
    (void)path;
    size_t i = 0;
    if (n >= 3 && memcmp(head, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    while (i < n && (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' || head[i] == '\t'))
        i++;
    return i == n || head[i] == '{' || memchr(head, 0, n) == NULL;
}

static int jsonl_open(struct reader *r, const char *path, const struct reader_opts *o)
{
    (void)o;
    struct jsonl *j = calloc(1, sizeof *j);
    if (!j || !(j->buf = malloc(BUF_CAP))) {
        free(j);
        r->why = "out of memory";
        return -ENOMEM;
    }
    j->fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (j->fd < 0) {
        int e = errno;
        free(j->buf);
        free(j);
        r->why = strerror(e);
        return -e;
    }
    r->priv = j;
    return 0;
}

static int fill(struct reader *r, struct jsonl *j)
{
    if (j->start > 0) {
        memmove(j->buf, j->buf + j->start, j->end - j->start);
        j->end -= j->start;
        j->start = 0;
    }
    while (j->end < BUF_CAP) {
        ssize_t n = read(j->fd, j->buf + j->end, BUF_CAP - j->end);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            r->why = strerror(e);
            return -e;
        }
        if (n == 0) {
            j->eof = 1;
            break;
        }
        j->end += (size_t)n;
        break;
    }
    return 0;
}

static int parse_line(struct reader *r, struct jsonl *j, char *line, size_t len, struct event *ev)
{
    (void)j;
    if (len && line[len - 1] == '\r')
        len--;
    if (len > EV_LINE_MAX) {
        r->why = "line longer than 1048576 bytes";
        return READ_BAD;
    }
    const char *why = NULL;
    int e = ev_parse_json(line, len, ev, r->scratch, &why);
    if (e == 0)
        return READ_EVENT;
    r->why = why ? why : "invalid event";
    return e == -ENOENT ? READ_UNKNOWN : READ_BAD;
}

static int jsonl_next(struct reader *r, struct event *ev)
{
    struct jsonl *j = r->priv;
    for (;;) {
        char *nl = memchr(j->buf + j->start, '\n', j->end - j->start);
        if (nl) {
            char *line = j->buf + j->start;
            size_t len = (size_t)(nl - line);
            j->start += len + 1;
            r->line++;
            if (j->too_long) {
                j->too_long = 0;
                r->why = "line longer than 1048576 bytes";
                return READ_BAD;
            }
            if (len == 0 || (len == 1 && line[0] == '\r'))
                continue; /* blank lines separate nothing and are ignored */
            return parse_line(r, j, line, len, ev);
        }
        if (j->eof) {
            if (j->start == j->end && !j->too_long)
                return READ_EOF;
            /* last line without a newline */
            char *line = j->buf + j->start;
            size_t len = j->end - j->start;
            j->start = j->end;
            r->line++;
            if (j->too_long) {
                j->too_long = 0;
                r->why = "line longer than 1048576 bytes";
                return READ_BAD;
            }
            return parse_line(r, j, line, len, ev);
        }
        if (j->end - j->start > EV_LINE_MAX + 1) {
            /* no newline within the limit: drop what we have, keep skipping to the next one */
            j->too_long = 1;
            j->start = j->end = 0;
        }
        int e = fill(r, j);
        if (e < 0)
            return e;
    }
}

static void jsonl_close(struct reader *r)
{
    struct jsonl *j = r->priv;
    if (!j)
        return;
    if (j->fd > STDIN_FILENO)
        close(j->fd);
    free(j->buf);
    free(j);
    r->priv = NULL;
}

const struct reader_ops reader_jsonl = {
    .name = "jsonl",
    .probe = jsonl_probe,
    .open = jsonl_open,
    .next = jsonl_next,
    .close = jsonl_close,
};
