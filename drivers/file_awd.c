/* Actiwatch .AWD files (shared/reference/actigraphy.md §8.1): a 7-line header (subject, start
 * date dd-Mon-yyyy, start time HH:MM, frequency code, age, serial, sex), then one epoch per
 * line: `count [M]`, or `count , extra [M]` on devices with a second channel. Each epoch becomes
 * a `counts` event of the --participant (required: the subject line is a name, not an id),
 * source "awd". seq is the epoch's start on the device clock in seconds since 0001-01-01, not
 * its index in the file: a second file of the same source (the next download, or an
 * overlapping one) then continues the sequence instead of being dropped as duplicates of the
 * first, and an epoch read twice is still recognised as a duplicate.
 *
 * Times: the header's start is the device's local wall clock; it is converted to UTC once with
 * the reader's zone (NULL = UTC) and every later epoch is start + k * epoch. The device logs at
 * a fixed rate through DST changes, so converting each epoch's nominal wall time would invent
 * gaps and duplicates. The event-marker letter M and the second channel are ignored. Blank
 * lines are skipped without using up an epoch (as pyActigraphy's reader does); any other line
 * that is not a valid epoch is reported and does use up its epoch, so later epochs keep their
 * times. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drivers/reader.h"

#define AWD_LINE_MAX 128        /* longest accepted line, without its line ending */
#define AWD_HEADER_LINES 7
#define AWD_COUNT_MAX 1000000   /* larger epoch counts are treated as corrupt */

struct awd {
    FILE *f;
    int epoch_s;
    int64_t t0;       /* UTC ms of epoch 0 */
    int64_t seq0;     /* seq of epoch 0: device-clock seconds since 0001-01-01 */
    uint64_t epoch;   /* index of the next data line's epoch */
    uint64_t lineno;  /* lines read so far */
    char line[AWD_LINE_MAX + 1];
};

/* Frequency codes of the header's fourth line. */
static const struct {
    const char *code;
    int epoch_s;
} awd_codes[] = {
    {"1", 15}, {"2", 30}, {"4", 60}, {"8", 120}, {"20", 300}, {"81", 2}, {"C1", 5}, {"C2", 10},
};

static const char *const awd_months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Strips surrounding blanks and line endings in place; returns the start. */
static char *trim(char *s, size_t *len)
{
    size_t n = *len;
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    s[n] = 0;
    while (*s == ' ' || *s == '\t') {
        s++;
        n--;
    }
    *len = n;
    return s;
}

/* Reads one line into buf (cap bytes without the NUL). Returns its length, -1 at end of file,
 * or -2 when it is longer than cap (the rest of the line is consumed). A NUL byte makes the
 * line invalid too (-2): nothing in an AWD file contains one. */
static long read_line(FILE *f, char *buf, size_t cap)
{
    size_t n = 0;
    int c, bad = 0;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (c == 0 || n == cap)
            bad = 1;
        else
            buf[n++] = (char)c;
    }
    if (c == EOF && n == 0 && !bad)
        return -1;
    buf[n] = 0;
    return bad ? -2 : (long)n;
}

static int parse_uint(const char *s, size_t digits_min, size_t digits_max, int *v,
                      const char **end)
{
    size_t k = 0;
    int x = 0;
    while (isdigit((unsigned char)s[k]) && k < digits_max)
        x = x * 10 + (s[k++] - '0');
    if (k < digits_min || isdigit((unsigned char)s[k]))
        return -1;
    *v = x;
    *end = s + k;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return dm[m - 1] + (m == 2 && leap);
}

/* dd-Mon-yyyy, English month abbreviation in any case; 1900..2199. Days since 1970 or -1. */
static int parse_date(const char *s, int64_t *days)
{
    int d, y, m = 0;
    const char *p;
    if (parse_uint(s, 1, 2, &d, &p) < 0 || *p != '-')
        return -1;
    for (int i = 0; i < 12 && !m; i++)
        if (strncasecmp(p + 1, awd_months[i], 3) == 0)
            m = i + 1;
    if (!m || p[4] != '-' || parse_uint(p + 5, 4, 4, &y, &p) < 0 || *p)
        return -1;
    if (y < 1900 || y > 2199 || d < 1 || d > days_in_month(y, m))
        return -1;
    *days = civil_to_days(y, (unsigned)m, (unsigned)d);
    return 0;
}

/* HH:MM or HH:MM:SS, 24-hour. Seconds after midnight or -1. */
static int parse_time(const char *s)
{
    int h, mi, sec = 0;
    const char *p;
    if (parse_uint(s, 1, 2, &h, &p) < 0 || *p != ':' || parse_uint(p + 1, 2, 2, &mi, &p) < 0)
        return -1;
    if (*p == ':' && parse_uint(p + 1, 2, 2, &sec, &p) < 0)
        return -1;
    if (*p || h > 23 || mi > 59 || sec > 59)
        return -1;
    return h * 3600 + mi * 60 + sec;
}

static int parse_code(const char *s)
{
    for (size_t i = 0; i < sizeof awd_codes / sizeof awd_codes[0]; i++)
        if (strcasecmp(s, awd_codes[i].code) == 0)
            return awd_codes[i].epoch_s;
    return -1;
}

/* The header lines 2-4 (date, time, frequency code) that identify the format. */
static int header_fields(char *const lines[3], int64_t *days, int *tod, int *epoch_s)
{
    if (parse_date(lines[0], days) < 0)
        return 1;
    if ((*tod = parse_time(lines[1])) < 0)
        return 2;
    if ((*epoch_s = parse_code(lines[2])) < 0)
        return 3;
    return 0;
}

static int awd_probe(const char *path, const unsigned char *head, size_t n)
{
    (void)path;
    char buf[4][AWD_LINE_MAX + 1];
    char *l[4];
    size_t i = 0;
    for (int k = 0; k < 4; k++) {
        size_t len = 0;
        while (i < n && head[i] != '\n' && len < AWD_LINE_MAX && head[i])
            buf[k][len++] = (char)head[i++];
        if (i >= n || head[i] != '\n')
            return 0; /* too long, NUL, or not four whole lines in the first bytes */
        i++;
        l[k] = trim(buf[k], &len);
    }
    int64_t days;
    int tod, e;
    return header_fields(l + 1, &days, &tod, &e) == 0;
}

static int awd_fail(struct reader *r, const char *why)
{
    r->why = why;
    return -EINVAL;
}

static int awd_open(struct reader *r, const char *path, const struct reader_opts *o)
{
    if (!o->participant)
        return awd_fail(r, "AWD files name no participant id: give --participant");
    if (!ev_valid_id(o->participant))
        return awd_fail(r, "--participant must match [A-Za-z0-9_-]{1,64}");
    if (o->source && !ev_valid_id(o->source))
        return awd_fail(r, "source must match [A-Za-z0-9_-]{1,64}");
    struct awd *a = calloc(1, sizeof *a);
    if (!a) {
        r->why = "out of memory";
        return -ENOMEM;
    }
    r->priv = a;
    a->f = fopen(path, "re");
    if (!a->f) {
        int e = errno;
        r->why = strerror(e);
        return -e;
    }
    char hdr[AWD_HEADER_LINES][AWD_LINE_MAX + 1];
    char *l[AWD_HEADER_LINES];
    static const char *const truncated[AWD_HEADER_LINES] = {
        "empty file", "AWD header truncated at line 2 (7 lines expected)",
        "AWD header truncated at line 3 (7 lines expected)",
        "AWD header truncated at line 4 (7 lines expected)",
        "AWD header truncated at line 5 (7 lines expected)",
        "AWD header truncated at line 6 (7 lines expected)",
        "AWD header truncated at line 7 (7 lines expected)"};
    for (int k = 0; k < AWD_HEADER_LINES; k++) {
        long len = read_line(a->f, hdr[k], AWD_LINE_MAX);
        if (len == -1)
            return awd_fail(r, ferror(a->f) ? "read error in the AWD header" : truncated[k]);
        if (len == -2)
            return awd_fail(r, "AWD header line longer than 128 bytes or containing NUL");
        size_t n = (size_t)len;
        l[k] = trim(hdr[k], &n);
        a->lineno++;
    }
    int64_t days;
    int tod;
    switch (header_fields(l + 1, &days, &tod, &a->epoch_s)) {
    case 1: return awd_fail(r, "AWD header line 2: start date must be dd-Mon-yyyy, 1900..2199");
    case 2: return awd_fail(r, "AWD header line 3: start time must be HH:MM (24 h)");
    case 3:
        return awd_fail(r, "AWD header line 4: unknown frequency code "
                           "(1, 2, 4, 8, 20, 81, C1 or C2)");
    }
    int64_t local_ms = (days * 86400 + tod) * 1000;
    a->seq0 = (days - civil_to_days(1, 1, 1)) * 86400 + tod;
    a->t0 = o->zone ? tz_local_to_utc(o->zone, local_ms) : local_ms;
    if (a->t0 < EV_TS_MIN || a->t0 >= EV_TS_MAX)
        return awd_fail(r, "AWD header: start time out of range (1900..2199)");
    r->line = a->lineno;
    return 0;
}

/* count [, extra] [M]: the count as an integer 0..AWD_COUNT_MAX, or NULL with the reason. */
static const char *parse_epoch(const char *s, long *count)
{
    if (*s == '-')
        return "negative count";
    if (!isdigit((unsigned char)*s))
        return "count is not a number";
    long v = 0;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (*s++ - '0');
        if (v > AWD_COUNT_MAX)
            return "count above 1000000: corrupt epoch";
    }
    if (*s == '.' || *s == 'e' || *s == 'E')
        return "count must be an integer";
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == ',') { /* second channel (light, sound, ...): a number, ignored */
        s++;
        while (*s == ' ' || *s == '\t')
            s++;
        const char *d = s;
        while (isdigit((unsigned char)*s) || *s == '.')
            s++;
        if (s == d)
            return "second channel after ',' is not a number";
        while (*s == ' ' || *s == '\t')
            s++;
    }
    if (*s == 'M')
        s++;
    if (*s && *s != ' ' && *s != '\t')
        return "unexpected text after the count (want: count [, value] [M])";
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s)
        return "unexpected text after the count (want: count [, value] [M])";
    *count = v;
    return NULL;
}

static int awd_next(struct reader *r, struct event *ev)
{
    struct awd *a = r->priv;
    for (;;) {
        long len = read_line(a->f, a->line, AWD_LINE_MAX);
        if (len == -1)
            return ferror(a->f) ? -EIO : READ_EOF;
        r->line = ++a->lineno;
        uint64_t k = a->epoch;
        if (len == -2) {
            a->epoch++;
            r->why = "line longer than 128 bytes or containing NUL";
            return READ_BAD;
        }
        size_t n = (size_t)len;
        char *s = trim(a->line, &n);
        if (!*s)
            continue; /* blank: skipped, no epoch */
        a->epoch++;
        long count;
        const char *why = parse_epoch(s, &count);
        if (why) {
            r->why = why;
            return READ_BAD;
        }
        int64_t step = (int64_t)a->epoch_s * 1000;
        if (k > (uint64_t)((EV_TS_MAX - 1 - a->t0) / step)) {
            r->why = "epoch time past 2199-12-31";
            return READ_BAD;
        }
        memset(ev, 0, sizeof *ev);
        ev->type = EV_COUNTS;
        ev->ts = a->t0 + (int64_t)k * step;
        ev->seq = a->seq0 + (int64_t)k * a->epoch_s;
        ev->has_seq = 1;
        snprintf(ev->participant, sizeof ev->participant, "%s", r->opts.participant);
        snprintf(ev->source, sizeof ev->source, "%s", r->opts.source ? r->opts.source : "awd");
        ev->u.counts.epoch_s = a->epoch_s;
        ev->u.counts.counts = (double)count;
        return READ_EVENT;
    }
}

static void awd_close(struct reader *r)
{
    struct awd *a = r->priv;
    if (!a)
        return;
    if (a->f)
        fclose(a->f);
    free(a);
    r->priv = NULL;
}

const struct reader_ops reader_awd = {
    .name = "awd",
    .probe = awd_probe,
    .open = awd_open,
    .next = awd_next,
    .close = awd_close,
};
