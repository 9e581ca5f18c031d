/* The value parsers behind the key table: numbers, durations, sizes, endpoints, time zones,
 * times of day, dates and lists. Each is strict (the whole value must match) because a
 * silently misread study setting is worse than a refused one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/conf_internal.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

/* ---- numbers ---------------------------------------------------------------------- */

/* Unsigned decimal digits at *p; advances *p. -EINVAL if none, -ERANGE above max. */
static int digits(const char **p, uint64_t max, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

int conf_parse_i64(const char *s, int64_t *out)
{
    int neg = (*s == '-');
    uint64_t v;
    if (*s == '-' || *s == '+')
        s++;
    int r = digits(&s, (uint64_t)INT64_MAX, &v);
    if (r < 0)
        return r;
    if (*s)
        return -EINVAL;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

/* Plain decimal notation only: strtod alone would also take "nan", "inf" and hex floats. */
int conf_parse_double(const char *s, double *out)
{
    size_t i = 0;
    if (s[i] == '-' || s[i] == '+')
        i++;
    size_t int_digits = strspn(s + i, "0123456789");
    i += int_digits;
    size_t frac_digits = 0;
    if (s[i] == '.') {
        frac_digits = strspn(s + i + 1, "0123456789");
        i += 1 + frac_digits;
    }
    if (int_digits + frac_digits == 0)
        return -EINVAL;
    if (s[i] == 'e' || s[i] == 'E') {
        i++;
        if (s[i] == '-' || s[i] == '+')
            i++;
        size_t e = strspn(s + i, "0123456789");
        if (e == 0 || e > 3)
            return -EINVAL;
        i += e;
    }
    if (s[i])
        return -EINVAL;
    *out = strtod(s, NULL);
    return 0;
}

int conf_parse_u64(const char *s, uint64_t *out)
{
    const char *p = s;
    int r = digits(&p, UINT64_MAX, out);
    return r < 0 ? r : *p ? -EINVAL : 0;
}

struct unit {
    const char *name;
    int64_t scale;
};

static const struct unit duration_units[] = {
    {"ms", 1}, {"s", SEC}, {"min", MIN}, {"h", HOUR}, {"d", DAY}, {"w", 7 * DAY}, {NULL, 0},
};

/* One or more NUMBER UNIT components ("1h30min"); a lone number is seconds. "m" is refused
 * on purpose: minutes or months is exactly the ambiguity a study config must not have. */
int conf_parse_duration(const char *s, int64_t *ms)
{
    int64_t total = 0;
    int parts = 0;
    const char *p = s;
    while (*p == ' ')
        p++;
    if (!*p || *p == '-')
        return -EINVAL;
    while (*p) {
        uint64_t n;
        int r = digits(&p, (uint64_t)INT64_MAX, &n);
        if (r < 0)
            return r;
        while (*p == ' ')
            p++;
        size_t ulen = strspn(p, "abcdefghijklmnopqrstuvwxyz");
        int64_t scale = 0;
        if (ulen == 0) {
            if (parts > 0 || *p)
                return -EINVAL;
            scale = SEC;
        }
        for (const struct unit *u = duration_units; ulen && u->name; u++)
            if (strlen(u->name) == ulen && strncmp(p, u->name, ulen) == 0)
                scale = u->scale;
        if (scale == 0)
            return -EINVAL;
        if (n > (uint64_t)(INT64_MAX / scale))
            return -ERANGE;
        int64_t v = (int64_t)n * scale;
        if (total > INT64_MAX - v)
            return -ERANGE;
        total += v;
        parts++;
        p += ulen;
        while (*p == ' ')
            p++;
    }
    *ms = total;
    return 0;
}

void conf_fmt_duration(int64_t ms, char *buf, size_t cap)
{
    static const struct unit order[] = {
        {"d", DAY}, {"h", HOUR}, {"min", MIN}, {"s", SEC}, {"ms", 1}, {NULL, 0},
    };
    if (ms == 0) {
        snprintf(buf, cap, "0");
        return;
    }
    for (const struct unit *u = order; u->name; u++)
        if (ms % u->scale == 0) {
            snprintf(buf, cap, "%lld%s", (long long)(ms / u->scale), u->name);
            return;
        }
}

/* Sizes are binary: K and KiB are both 1024, as in every other tool a study admin uses. */
int conf_parse_size(const char *s, int64_t *out)
{
    static const struct unit units[] = {
        {"", 1}, {"B", 1}, {"K", 1LL << 10}, {"KiB", 1LL << 10}, {"M", 1LL << 20},
        {"MiB", 1LL << 20}, {"G", 1LL << 30}, {"GiB", 1LL << 30}, {NULL, 0},
    };
    uint64_t n;
    const char *p = s;
    int r = digits(&p, (uint64_t)INT64_MAX, &n);
    if (r < 0)
        return r;
    while (*p == ' ')
        p++;
    for (const struct unit *u = units; u->name; u++)
        if (strcmp(p, u->name) == 0) {
            if (n > (uint64_t)(INT64_MAX / u->scale))
                return -ERANGE;
            *out = (int64_t)n * u->scale;
            return 0;
        }
    return -EINVAL;
}

void conf_fmt_size(int64_t v, char *buf, size_t cap)
{
    if (v >= (1LL << 20) && v % (1LL << 20) == 0)
        snprintf(buf, cap, "%lldMiB", (long long)(v >> 20));
    else if (v >= 1024 && v % 1024 == 0)
        snprintf(buf, cap, "%lldKiB", (long long)(v >> 10));
    else
        snprintf(buf, cap, "%lld", (long long)v);
}

/* ---- strings with structure ------------------------------------------------------- */

int conf_parse_endpoint(const char *s, char *msg, size_t cap)
{
    if (strncmp(s, "inproc://", 9) == 0) {
        snprintf(msg, cap, "inproc:// endpoints only work inside one process; "
                           "use ipc:// or tcp://");
        return -EINVAL;
    }
    if (strncmp(s, "ipc://", 6) == 0) {
        const char *path = s + 6;
        if (path[0] != '/') {
            snprintf(msg, cap, "\"%s\": ipc:// needs an absolute path, e.g. "
                     "ipc:///run/engaged/feed", s);
            return -EINVAL;
        }
        /* sun_path holds 108 bytes including the terminating NUL */
        if (strlen(path) > 107) {
            snprintf(msg, cap, "ipc path is too long (%zu bytes, max 107)", strlen(path));
            return -EINVAL;
        }
        return 0;
    }
    if (strncmp(s, "tcp://", 6) == 0) {
        const char *host = s + 6, *colon = strrchr(host, ':');
        size_t hlen = colon ? (size_t)(colon - host) : 0;
        int ok = hlen > 0;
        if (ok && host[0] == '[')
            ok = hlen > 2 && host[hlen - 1] == ']' &&
                 strspn(host + 1, "0123456789abcdefABCDEF:.") == hlen - 2;
        else if (ok)
            ok = strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                              "0123456789.-_*") == hlen;
        if (!ok) {
            snprintf(msg, cap, "invalid endpoint \"%s\" (expected tcp://HOST:PORT)", s);
            return -EINVAL;
        }
        int64_t port;
        if (colon[1] == '+' || colon[1] == '-' || conf_parse_i64(colon + 1, &port) < 0 ||
            port < 1 || port > 65535) {
            snprintf(msg, cap, "\"%s\": the port must be a number 1..65535", s);
            return -EINVAL;
        }
        return 0;
    }
    snprintf(msg, cap, "invalid endpoint \"%s\" (expected ipc:///ABSOLUTE/PATH or "
             "tcp://HOST:PORT)", s);
    return -EINVAL;
}

static int tz_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= CONF_TZ_SIZE || s[0] == '/' || s[n - 1] == '/' || strstr(s, "//"))
        return 0;
    if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-/") != n)
        return 0;
    /* no component may start with '-' or be a dot name; the charset excludes dots already */
    for (const char *p = s; p; p = strchr(p, '/')) {
        if (*p == '/')
            p++;
        if (*p == '-')
            return 0;
    }
    return 1;
}

/* A zone exists when the tz database has a TZif file of that name; the pipeline reads the
 * same files, so a name accepted here is a name it can load. */
int conf_parse_tz(const char *s, const struct conf_ctx *ctx, char *msg, size_t cap)
{
    if (!tz_name_ok(s)) {
        snprintf(msg, cap, "invalid time zone name \"%s\" (expected an IANA name such as "
                 "Europe/London)", s);
        return -EINVAL;
    }
    if (strcmp(s, "UTC") == 0)
        return 0;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", ctx->tzdir, s);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    char magic[4];
    ssize_t got = fd >= 0 ? read(fd, magic, sizeof(magic)) : -1;
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (fd < 0 || (got < 0 && e == EISDIR)) {
        snprintf(msg, cap, "unknown time zone \"%s\" (not found in %s)", s, ctx->tzdir);
        return -EINVAL;
    }
    if (got != (ssize_t)sizeof(magic) || memcmp(magic, "TZif", 4) != 0) {
        snprintf(msg, cap, "\"%s\" is not a time zone (%s is not a TZif file)", s, path);
        return -EINVAL;
    }
    return 0;
}

static int two_digits(const char *p, int max, int *out)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return -EINVAL;
    *out = (p[0] - '0') * 10 + (p[1] - '0');
    return *out <= max ? 0 : -EINVAL;
}

int conf_parse_timerange(const char *s, struct conf_timerange *tr)
{
    int h1, m1, h2, m2;
    if (strlen(s) != 11 || s[2] != ':' || s[5] != '-' || s[8] != ':' ||
        two_digits(s, 23, &h1) || two_digits(s + 3, 59, &m1) || two_digits(s + 6, 24, &h2) ||
        two_digits(s + 9, 59, &m2) || (h2 == 24 && m2 != 0))
        return -EINVAL;
    tr->set = true;
    tr->start_min = h1 * 60 + m1;
    tr->end_min = h2 * 60 + m2;
    return tr->start_min == tr->end_min % 1440 ? -EDOM : 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (eras of 400 years). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int conf_parse_date(const char *s, struct conf_date *out)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int c, yy, m, d;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || two_digits(s, 99, &c) ||
        two_digits(s + 2, 99, &yy) || two_digits(s + 5, 12, &m) || two_digits(s + 8, 31, &d))
        return -EINVAL;
    int y = c * 100 + yy;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || y > 2199 || m < 1 || d < 1 || d > mdays[m - 1] || (m == 2 && d == 29 && !leap))
        return -EINVAL;
    out->set = true;
    out->day = days_from_civil(y, m, d);
    return 0;
}

void conf_list_release(struct conf_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    l->n = 0;
}

/* Package ids: Android allows letters, digits, '_' and '.'; '-' is accepted for other
 * platforms' bundle ids. */
int conf_parse_list(const char *s, size_t max, struct conf_list *out, char *msg, size_t cap,
                      int *col)
{
    struct conf_list l = {0};
    const char *p = s;
    while (*s) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *item = p;
        while (n && *item == ' ')
            item++, n--;
        while (n && item[n - 1] == ' ')
            n--;
        *col = (int)(item - s);
        if (n == 0) {
            snprintf(msg, cap, "empty item in list");
            goto fail;
        }
        if (strspn(item, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") < n) {
            snprintf(msg, cap, "invalid item \"%.*s\" (letters, digits, '_', '.' and '-' only)",
                     (int)n, item);
            goto fail;
        }
        for (size_t i = 0; i < l.n; i++)
            if (strlen(l.items[i]) == n && strncmp(l.items[i], item, n) == 0) {
                snprintf(msg, cap, "\"%.*s\" is listed twice", (int)n, item);
                goto fail;
            }
        if (l.n == max) {
            snprintf(msg, cap, "too many items (max %zu)", max);
            goto fail;
        }
        if (!(l.items[l.n] = strndup(item, n))) {
            conf_list_release(&l);
            return -ENOMEM;
        }
        l.n++;
        if (!end)
            break;
        p = end + 1;
    }
    conf_list_release(out);
    *out = l;
    return 0;
fail:
    conf_list_release(&l);
    return -EINVAL;
}

