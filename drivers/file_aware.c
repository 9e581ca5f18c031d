/* AWARE / RAPIDS CSV exports: phone_screen (timestamp, device_id, screen_status) and
 * phone_applications_foreground (timestamp, device_id, package_name, ...). The participant is
 * --participant if given, else the device_id column; the source is "aware-<device_id>". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/reader.h"

#define CSV_LINE_MAX 65536
#define CSV_MAX_FIELDS 32

enum aware_kind { AWARE_SCREEN, AWARE_APPS };

struct aware {
    FILE *f;
    enum aware_kind kind;
    int col_ts, col_dev, col_val; /* column indexes */
    char line[CSV_LINE_MAX];
};

static int split_csv(char *s, char **fields, int max)
{
    int n = 0;
    while (n < max) {
        char *out = s;
        fields[n++] = s;
        if (*s == '"') { /* quoted: "" is a literal quote */
            s++;
            for (;;) {
                if (*s == '"' && s[1] == '"') {
                    *out++ = '"';
                    s += 2;
                } else if (*s == '"' || *s == 0) {
                    if (*s)
                        s++;
                    break;
                } else {
                    *out++ = *s++;
                }
            }
            while (*s && *s != ',')
                s++;
        } else {
            while (*s && *s != ',')
                out = ++s;
        }
        int more = *s == ',';
        *out = 0;
        if (!more)
            break;
        s++;
    }
    return n;
}

static int header_kind(const char *head, size_t n)
{
    char buf[513];
    size_t len = n < 512 ? n : 512;
    memcpy(buf, head, len);
    buf[len] = 0;
    char *nl = strchr(buf, '\n');
    if (!nl)
        return -1;
    *nl = 0;
    if (!strstr(buf, "timestamp") || !strstr(buf, "device_id"))
        return -1;
    if (strstr(buf, "screen_status"))
        return AWARE_SCREEN;
    if (strstr(buf, "package_name"))
        return AWARE_APPS;
    return -1;
}

static int aware_probe(const char *path, const unsigned char *head, size_t n)
{
    (void)path;
    return header_kind((const char *)head, n) >= 0;
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = 0;
}

static int aware_open(struct reader *r, const char *path, const struct reader_opts *o)
{
    (void)o;
    struct aware *a = calloc(1, sizeof *a);
    if (!a) {
        r->why = "out of memory";
        return -ENOMEM;
    }
    a->f = fopen(path, "re");
    if (!a->f) {
        int e = errno;
        free(a);
        r->why = strerror(e);
        return -e;
    }
    r->priv = a;
    if (!fgets(a->line, sizeof a->line, a->f)) {
        r->why = "empty file";
        return -EINVAL;
    }
    r->line = 1;
    chomp(a->line);
    char *f[CSV_MAX_FIELDS];
    int n = split_csv(a->line, f, CSV_MAX_FIELDS);
    a->col_ts = a->col_dev = a->col_val = -1;
    for (int i = 0; i < n; i++) {
        if (strcmp(f[i], "timestamp") == 0)
            a->col_ts = i;
        else if (strcmp(f[i], "device_id") == 0)
            a->col_dev = i;
        else if (strcmp(f[i], "screen_status") == 0) {
            a->col_val = i;
            a->kind = AWARE_SCREEN;
        } else if (strcmp(f[i], "package_name") == 0) {
            a->col_val = i;
            a->kind = AWARE_APPS;
        }
    }
    if (a->col_ts < 0 || a->col_dev < 0 || a->col_val < 0) {
        r->why = "CSV header lacks timestamp, device_id and screen_status or package_name";
        return -EINVAL;
    }
    return 0;
}

static int aware_next(struct reader *r, struct event *ev)
{
    struct aware *a = r->priv;
    char *f[CSV_MAX_FIELDS];
    for (;;) {
        if (!fgets(a->line, sizeof a->line, a->f))
            return ferror(a->f) ? -EIO : READ_EOF;
        r->line++;
        size_t len = strlen(a->line);
        if (len == sizeof a->line - 1 && a->line[len - 1] != '\n') {
            int c;
            while ((c = fgetc(a->f)) != EOF && c != '\n')
                ;
            r->why = "CSV line longer than 65535 bytes";
            return READ_BAD;
        }
        chomp(a->line);
        if (!a->line[0])
            continue;
        int n = split_csv(a->line, f, CSV_MAX_FIELDS);
        int need = a->col_ts > a->col_dev ? a->col_ts : a->col_dev;
        if (a->col_val > need)
            need = a->col_val;
        if (n <= need) {
            r->why = "too few CSV columns";
            return READ_BAD;
        }
        memset(ev, 0, sizeof *ev);
        char *end;
        errno = 0;
        long long ts = strtoll(f[a->col_ts], &end, 10);
        if (errno || end == f[a->col_ts] || *end) {
            r->why = "timestamp must be an integer (ms since the epoch)";
            return READ_BAD;
        }
        if (ts < EV_TS_MIN || ts >= EV_TS_MAX) {
            r->why = "timestamp out of range (1900-01-01..2200-01-01)";
            return READ_BAD;
        }
        const char *pid = r->opts.participant ? r->opts.participant : f[a->col_dev];
        if (!ev_valid_id(pid) || !ev_valid_id(f[a->col_dev]) || strlen(f[a->col_dev]) > 58) {
            r->why = "device_id/participant must match [A-Za-z0-9_-]{1,64}";
            return READ_BAD;
        }
        ev->ts = ts;
        snprintf(ev->participant, sizeof ev->participant, "%s", pid);
        if (r->opts.source)
            snprintf(ev->source, sizeof ev->source, "%s", r->opts.source);
        else
            snprintf(ev->source, sizeof ev->source, "aware-%s", f[a->col_dev]);
        if (a->kind == AWARE_SCREEN) {
            const char *v = f[a->col_val];
            if (!(v[0] >= '0' && v[0] <= '3' && v[1] == 0)) {
                r->why = "screen_status must be 0, 1, 2 or 3";
                return READ_BAD;
            }
            ev->type = EV_SCREEN;
            ev->u.screen.state = v[0] - '0';
        } else {
            size_t l = strlen(f[a->col_val]);
            if (l == 0 || l > EV_NAME_MAX) {
                r->why = "package_name must be 1..255 bytes";
                return READ_BAD;
            }
            ev->type = EV_APP;
            memcpy(ev->u.app.app, f[a->col_val], l + 1);
            ev->u.app.foreground = 1;
        }
        return READ_EVENT;
    }
}

static void aware_close(struct reader *r)
{
    struct aware *a = r->priv;
    if (!a)
        return;
    if (a->f)
        fclose(a->f);
    free(a);
    r->priv = NULL;
}

const struct reader_ops reader_aware_csv = {
    .name = "aware-csv",
    .probe = aware_probe,
    .open = aware_open,
    .next = aware_next,
    .close = aware_close,
};
