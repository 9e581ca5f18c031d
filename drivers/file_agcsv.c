/* ActiGraph epoch-count CSV files (format `actigraph-csv`):
 *  - ActiLife's export: a banner of about ten lines ("------------ Data File Created By
 *    ActiGraph ... date format M/d/yyyy ...", Start Time, Start Date, Epoch Period (hh:mm:ss),
 *    ..., "Mode = N", a dashed line), then an optional column header (Date, Time, Axis1, Axis2,
 *    Axis3, Steps, Lux, Inclinometer ..., Vector Magnitude) and one row per epoch, with or
 *    without the Date and Time columns. Without a header the columns follow the Mode.
 *  - the same table without the banner (`Date,Time,Axis1,...`, as ActiLife's sleep exports),
 *    or with one ISO-8601 `timestamp` column (`timestamp,axis1,...`, as actigraph.sleepr
 *    writes it, reference §8.3); the epoch length is then the step between the first rows.
 * Times are the device's wall clock (a `Z` suffix included, per the reference) and become UTC
 * with --tz as in drivers/file_agd.c: only the first epoch goes through the zone. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drivers/epoch_event.h"
#include "drivers/reader.h"

#define LINE_MAX_B 4096   /* epoch rows are short; anything longer is not this format */
#define FIELDS_MAX 64
#define BANNER_MAX 24     /* lines before the dashed line ending the banner */
#define MAX_COUNTS_PER_S 10000.0 /* see file_agd.c */
#define MAX_STEPS_PER_S 10.0
#define UNIX_S_FROM_0001 INT64_C(62135596800) /* seconds from 0001-01-01 to 1970-01-01 */

enum { F_AX1, F_AX2, F_AX3, F_STEPS, F__N };
static const char *const fname[F__N] = {"Axis1", "Axis2", "Axis3", "Steps"};

struct agcsv {
    FILE *f;
    int epoch_s;
    int mode;                  /* banner Mode, -1 if none */
    char datefmt[3];           /* order of d, M, y in dates */
    char datesep[2];           /* the separators between them */
    int col_date, col_time, col_iso, col[F__N]; /* -1 if absent */
    int have_start;
    int64_t start_local;       /* banner start, device-clock ms */
    int64_t k;                 /* data rows so far (epoch index without time columns) */
    struct epoch_clock clock;
    int opened;
    struct epoch_pending pending;
    char line[LINE_MAX_B];
    char why[224];
};

static int set_why(struct reader *r, struct agcsv *a, int ret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Errors of open() go to a per-thread buffer, not priv: reader_open() closes the reader
 * (freeing priv) before its caller reads r->why. Later reasons live in priv. */
static _Thread_local char open_why[256];

static int set_why(struct reader *r, struct agcsv *a, int ret, const char *fmt, ...)
{
    char *buf = a->opened ? a->why : open_why;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof a->why, fmt, ap);
    va_end(ap);
    r->why = buf;
    return ret;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

/* Splits on commas, trimming blanks and one pair of surrounding double quotes per field. */
static int split(char *s, char **f, int max)
{
    int n = 0;
    for (;;) {
        char *c = strchr(s, ',');
        if (c)
            *c = 0;
        char *t = trim(s);
        size_t len = strlen(t);
        if (len >= 2 && t[0] == '"' && t[len - 1] == '"') {
            t[len - 1] = 0;
            t++;
        }
        if (n == max)
            return -1;
        f[n++] = t;
        if (!c)
            return n;
        s = c + 1;
    }
}

/* Reads one line into a->line without its line ending: 1 = a line, 0 = end of file, -1 = a
 * line over LINE_MAX_B - 1 bytes or with a NUL byte (skipped whole), -2 = read error. */
static int get_line(struct reader *r, struct agcsv *a)
{
    size_t n = 0;
    int c, bad = 0;
    while ((c = getc(a->f)) != EOF && c != '\n') {
        if (c && n < sizeof a->line - 1)
            a->line[n++] = (char)c;
        else
            bad = 1;
    }
    if (c == EOF && ferror(a->f))
        return -2;
    if (c == EOF && n == 0 && !bad)
        return 0;
    r->line++;
    while (n && a->line[n - 1] == '\r')
        n--;
    a->line[n] = 0;
    if (r->line == 1 && n >= 3 && memcmp(a->line, "\xef\xbb\xbf", 3) == 0)
        memmove(a->line, a->line + 3, n - 2);
    return bad ? -1 : 1;
}

/* 1..width digits as an int; *s advanced. */
static int digits(const char **s, int minw, int maxw, int *out)
{
    int v = 0, n = 0;
    while (n < maxw && isdigit((unsigned char)**s)) {
        v = v * 10 + (**s - '0');
        (*s)++;
        n++;
    }
    *out = v;
    return n >= minw ? 0 : -1;
}

static int valid_date(int y, int m, int d, int64_t *days)
{
    if (y < 1899 || y > 2200 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    int64_t yy;
    unsigned mm, dd;
    *days = civil_to_days(y, (unsigned)m, (unsigned)d);
    civil_from_days(*days, &yy, &mm, &dd);
    return yy == y && (int)mm == m && (int)dd == d ? 0 : -1;
}

/* "M/d/yyyy"-style format (d, dd, M, MM, yyyy in any order, one separator between) */
static int parse_datefmt(struct agcsv *a, const char *fmt)
{
    int n = 0, seen = 0;
    const char *p = fmt;
    while (*p && n < 3) {
        char k = *p;
        int w = 0;
        while (*p == k)
            p++, w++;
        if (!((k == 'd' || k == 'M') && w <= 2) && !(k == 'y' && w == 4))
            return -1;
        int bit = k == 'd' ? 1 : k == 'M' ? 2 : 4;
        if (seen & bit)
            return -1;
        seen |= bit;
        a->datefmt[n] = k;
        if (n < 2) {
            if (!*p || isalnum((unsigned char)*p))
                return -1;
            a->datesep[n] = *p++;
        }
        n++;
    }
    return n == 3 && seen == 7 && !*p ? 0 : -1;
}

static int parse_date(const struct agcsv *a, const char *s, int64_t *days)
{
    int v[3] = {0, 0, 0}; /* d, M, y */
    for (int i = 0; i < 3; i++) {
        char k = a->datefmt[i];
        int x;
        if (digits(&s, k == 'y' ? 4 : 1, k == 'y' ? 4 : 2, &x))
            return -1;
        v[k == 'd' ? 0 : k == 'M' ? 1 : 2] = x;
        if (i < 2 && *s++ != a->datesep[i])
            return -1;
    }
    return *s ? -1 : valid_date(v[2], v[1], v[0], days);
}

/* H[H]:MM[:SS] with an optional " AM"/" PM": seconds after midnight; *s advanced. */
static int parse_tod(const char **s, int *secs)
{
    int h, m, sec = 0;
    if (digits(s, 1, 2, &h) || *(*s)++ != ':' || digits(s, 2, 2, &m))
        return -1;
    if (**s == ':') {
        (*s)++;
        if (digits(s, 2, 2, &sec))
            return -1;
    }
    while (**s == ' ')
        (*s)++;
    if (strncasecmp(*s, "AM", 2) == 0 || strncasecmp(*s, "PM", 2) == 0) {
        if (h < 1 || h > 12)
            return -1;
        h = h % 12 + (toupper((unsigned char)**s) == 'P' ? 12 : 0);
        *s += 2;
    }
    if (h > 23 || m > 59 || sec > 59)
        return -1;
    *secs = h * 3600 + m * 60 + sec;
    return 0;
}

static int parse_time(const char *s, int *secs)
{
    return parse_tod(&s, secs) || *s ? -1 : 0;
}

/* YYYY-MM-DD[T ]HH:MM:SS with an optional Z: device-clock ms */
static int parse_iso(const char *s, int64_t *ms)
{
    int y, mo, d, secs;
    int64_t days;
    if (digits(&s, 4, 4, &y) || *s++ != '-' || digits(&s, 2, 2, &mo) || *s++ != '-' ||
        digits(&s, 2, 2, &d) || (*s != 'T' && *s != ' '))
        return -1;
    s++;
    if (parse_tod(&s, &secs) || valid_date(y, mo, d, &days))
        return -1;
    if (*s == 'Z')
        s++;
    if (*s)
        return -1;
    *ms = (days * 86400 + secs) * 1000;
    return 0;
}

/* The text after `key` on a banner line, or NULL. */
static char *after(char *line, const char *key)
{
    size_t n = strlen(key);
    return strncasecmp(line, key, n) == 0 ? line + n : NULL;
}

/* The banner after its first line; stops after the dashed line. */
static int read_banner(struct reader *r, struct agcsv *a)
{
    const char *df = strstr(a->line, "date format ");
    char fmt[16] = "M/d/yyyy";
    if (df && sscanf(df + 12, "%15s", fmt) != 1)
        return set_why(r, a, -EINVAL, "unreadable date format in the banner");
    if (parse_datefmt(a, fmt))
        return set_why(r, a, -EINVAL, "unsupported banner date format \"%s\"", fmt);
    int epoch = -1, sdate = 0, stime = 0, tod = 0;
    int64_t days = 0;
    for (int i = 0;; i++) {
        int g = get_line(r, a);
        if (g <= 0 || i == BANNER_MAX)
            return set_why(r, a, -EINVAL, "%s in the ActiLife banner",
                           g == -1 ? "over-long line" : g == -2 ? "read error"
                                                                : "no dashed line ending");
        char *l = trim(a->line);
        size_t n = strlen(l);
        while (n && l[n - 1] == ',') /* spreadsheets pad the banner with commas */
            l[--n] = 0;
        l = trim(l);
        char *v;
        if (n >= 10 && strspn(l, "-") == n)
            break;
        if ((v = after(l, "Start Time "))) {
            if (parse_time(trim(v), &tod))
                return set_why(r, a, -EINVAL, "bad Start Time \"%.40s\"", v);
            stime = 1;
        } else if ((v = after(l, "Start Date "))) {
            if (parse_date(a, trim(v), &days))
                return set_why(r, a, -EINVAL, "bad Start Date \"%.40s\" (date format %s)", v,
                               fmt);
            sdate = 1;
        } else if ((v = after(l, "Epoch Period (hh:mm:ss) "))) {
            if (parse_time(trim(v), &epoch))
                return set_why(r, a, -EINVAL, "bad Epoch Period \"%.40s\"", v);
        } else if ((v = strstr(l, "Mode = "))) {
            char *end;
            long m = strtol(v + 7, &end, 10);
            a->mode = end > v + 7 && m >= 0 && m <= 63 ? (int)m : -1;
        }
    }
    if (epoch == 0)
        return set_why(r, a, -EINVAL, "Epoch Period 00:00:00 is a raw acceleration export; "
                                      "only epoch counts are read");
    if (epoch < 0 || 86400 % epoch)
        return set_why(r, a, -EINVAL, "Epoch Period of %d s missing or not dividing 86400",
                       epoch);
    a->epoch_s = epoch;
    a->have_start = sdate && stime;
    a->start_local = (days * 86400 + tod) * INT64_C(1000);
    return 0;
}

/* Column indexes from a header row. 0, or -EINVAL without Axis1. */
static int header_columns(struct agcsv *a, char *line)
{
    char *f[FIELDS_MAX];
    int n = split(line, f, FIELDS_MAX);
    for (int i = 0; i < n; i++) {
        char *s = f[i];
        if (strcasecmp(s, "date") == 0)
            a->col_date = i;
        else if (strcasecmp(s, "time") == 0)
            a->col_time = i;
        else if (strcasecmp(s, "timestamp") == 0)
            a->col_iso = i;
        for (int k = 0; k < F__N; k++)
            if (strcasecmp(s, fname[k]) == 0)
                a->col[k] = i;
    }
    if (n < 0 || a->col[F_AX1] < 0 || (a->col_date >= 0) != (a->col_time >= 0))
        return -EINVAL;
    if ((a->col[F_AX2] >= 0) != (a->col[F_AX3] >= 0))
        a->col[F_AX2] = a->col[F_AX3] = -1; /* one extra axis is not triaxial */
    return 0;
}

/* Without a header row the columns follow the Mode bits (1 steps, 2 heart rate, 4 axis 2,
 * 8 axis 3, 16 lux, 32 inclinometer) in ActiLife's order Axis1, Axis2, Axis3, Steps, ...,
 * after Date and Time if the first row starts with them. */
static int mode_columns(struct reader *r, struct agcsv *a, char *row)
{
    if (a->mode < 0)
        return set_why(r, a, -EINVAL, "no column header and no usable Mode in the banner");
    char *f[3] = {NULL, NULL, NULL};
    int n = split(row, f, 3);
    int c = 0;
    if ((n == 3 || n < 0) && strpbrk(f[0], "/-.") && strchr(f[1], ':')) {
        a->col_date = 0;
        a->col_time = 1;
        c = 2;
    }
    a->col[F_AX1] = c++;
    if ((a->mode & 12) == 12) {
        a->col[F_AX2] = c++;
        a->col[F_AX3] = c++;
    }
    if (a->mode & 1)
        a->col[F_STEPS] = c;
    return 0;
}

/* Device-clock ms of a row from its time columns. */
static int row_local(const struct agcsv *a, char **f, int64_t *ms)
{
    if (a->col_iso >= 0)
        return parse_iso(f[a->col_iso], ms);
    int64_t days;
    int secs;
    if (parse_date(a, f[a->col_date], &days) || parse_time(f[a->col_time], &secs))
        return -1;
    *ms = (days * 86400 + secs) * INT64_C(1000);
    return 0;
}

/* The highest column index a row must have. */
static int last_column(const struct agcsv *a)
{
    int m = a->col_date > a->col_time ? a->col_date : a->col_time;
    if (a->col_iso > m)
        m = a->col_iso;
    for (int k = 0; k < F__N; k++)
        if (a->col[k] > m)
            m = a->col[k];
    return m;
}

/* Without a banner the epoch is the step between the first two data rows (read ahead, then
 * the file is rewound to the first data row). */
static int infer_epoch(struct reader *r, struct agcsv *a)
{
    long pos = ftell(a->f);
    uint64_t line = r->line;
    int64_t t[2];
    int got = 0;
    while (got < 2) {
        int g = get_line(r, a);
        if (g <= 0)
            return set_why(r, a, -EINVAL, "line %llu: %s", (unsigned long long)r->line,
                           g == 0 ? "fewer than two data rows: cannot tell the epoch length"
                                  : "unreadable while looking for the epoch length");
        char *f[FIELDS_MAX];
        int n = split(a->line, f, FIELDS_MAX);
        if (n == 1 && !f[0][0])
            continue;
        if (n <= last_column(a) || row_local(a, f, &t[got]))
            return set_why(r, a, -EINVAL, "line %llu: bad time: cannot tell the epoch length",
                           (unsigned long long)r->line);
        got++;
    }
    int64_t d = t[1] - t[0];
    if (d <= 0 || d % 1000 || 86400000 % d)
        return set_why(r, a, -EINVAL, "line %llu: the first two rows are %lld ms apart: not an "
                       "epoch length dividing 86400 s", (unsigned long long)r->line,
                       (long long)d);
    a->epoch_s = (int)(d / 1000);
    if (pos < 0 || fseek(a->f, pos, SEEK_SET) < 0)
        return set_why(r, a, -EIO, "cannot rewind the file");
    r->line = line;
    return 0;
}

static int agcsv_probe(const char *path, const unsigned char *head, size_t n)
{
    (void)path;
    char buf[513];
    size_t len = n < 512 ? n : 512, o = 0, k = 0;
    if (len >= 3 && memcmp(head, "\xef\xbb\xbf", 3) == 0)
        o = 3;
    for (; o < len && head[o] != '\n' && head[o] != '\r' && head[o]; o++)
        if (head[o] != ' ' && head[o] != '"')
            buf[k++] = (char)tolower(head[o]);
    buf[k] = 0;
    if (buf[0] == '-' && strstr(buf, "createdbyactigraph"))
        return 1;
    static const char *const heads[] = {"date,time,axis1", "timestamp,axis1"};
    for (int i = 0; i < 2; i++) {
        size_t l = strlen(heads[i]);
        if (strncmp(buf, heads[i], l) == 0 && (buf[l] == ',' || !buf[l]))
            return 1;
    }
    return 0;
}

static int agcsv_open(struct reader *r, const char *path, const struct reader_opts *o)
{
    struct agcsv *a = calloc(1, sizeof *a);
    if (!a) {
        r->why = "out of memory";
        return -ENOMEM;
    }
    r->priv = a;
    a->mode = a->col_date = a->col_time = a->col_iso = -1;
    for (int k = 0; k < F__N; k++)
        a->col[k] = -1;
    parse_datefmt(a, "M/d/yyyy"); /* ActiLife's default; a banner may name another */
    if (!o->participant || !ev_valid_id(o->participant))
        return set_why(r, a, -EINVAL, "ActiGraph CSV files name no study participant: give "
                                      "--participant ID ([A-Za-z0-9_-]{1,64})");
    if (o->source && !ev_valid_id(o->source))
        return set_why(r, a, -EINVAL, "source must match [A-Za-z0-9_-]{1,64}");
    if (!(a->f = fopen(path, "re"))) {
        int e = errno;
        return set_why(r, a, -e, "%s", strerror(e));
    }
    int g = get_line(r, a), e;
    if (g <= 0)
        return set_why(r, a, -EINVAL, "%s", g == 0 ? "empty file" : "unreadable first line");
    int banner = a->line[0] == '-' && strcasestr(a->line, "Created By ActiGraph");
    if (banner) {
        if ((e = read_banner(r, a)) < 0)
            return e;
        long pos = ftell(a->f); /* then a header row, or the first data row */
        uint64_t line = r->line;
        do
            g = get_line(r, a);
        while (g == 1 && !trim(a->line)[0]);
        if (g < 0)
            return set_why(r, a, -EINVAL, "line %llu: unreadable", (unsigned long long)r->line);
        if (g == 0) {
            a->opened = 1; /* a banner and no rows: no events */
            return 0;
        }
        if (isdigit((unsigned char)trim(a->line)[0])) { /* no header: a data row */
            if ((e = mode_columns(r, a, a->line)) < 0)
                return e;
            if (pos < 0 || fseek(a->f, pos, SEEK_SET) < 0)
                return set_why(r, a, -EIO, "cannot rewind the file");
            r->line = line;
        }
    }
    if (a->col[F_AX1] < 0 && header_columns(a, a->line) < 0)
        return set_why(r, a, -EINVAL, "line %llu: column header without Axis1 (or with Date but "
                       "no Time)", (unsigned long long)r->line);
    if (a->col_iso < 0 && a->col_date < 0 && !a->have_start)
        return set_why(r, a, -EINVAL, "no time columns and no Start Date/Start Time banner: "
                                      "the epochs have no time");
    if (!banner && (e = infer_epoch(r, a)) < 0)
        return e;
    a->opened = 1;
    return 0;
}

static int number(struct reader *r, struct agcsv *a, char **f, int k, double max, double *out)
{
    char *end;
    const char *s = f[a->col[k]];
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v))
        return set_why(r, a, READ_BAD, "%s \"%.32s\" is not a number", fname[k], s);
    if (v < 0 || v > max)
        return set_why(r, a, READ_BAD, "%s %.17g out of range (0..%.0f for a %d s epoch)",
                       fname[k], v, max, a->epoch_s);
    *out = v;
    return 0;
}

/* The epoch start in UTC ms (struct epoch_clock in drivers/epoch_event.h). */
static int epoch_time(struct reader *r, struct agcsv *a, char **f, int64_t k, int64_t *ts,
                      int64_t *local)
{
    int64_t epoch_ms = (int64_t)a->epoch_s * 1000, l;
    if (a->col_iso < 0 && a->col_date < 0)
        l = a->start_local + k * epoch_ms;
    else if (row_local(a, f, &l))
        return set_why(r, a, READ_BAD, "bad %s", a->col_iso >= 0 ? "timestamp" : "Date or Time");
    char why[160];
    if (epoch_clock_place(&a->clock, r->opts.zone, a->epoch_s, l, ts, why, sizeof why) < 0)
        return set_why(r, a, READ_BAD, "%s", why);
    *local = l;
    return 0;
}

static void fill(struct reader *r, struct agcsv *a, struct event *ev, int64_t ts, int64_t local,
                 const double v[F__N])
{
    /* seq as in file_agd.c: twice the device-clock second since 0001-01-01, + 1 for steps */
    struct epoch_row row = {
        .ts = ts,
        .seq = 2 * (floor_div(local, 1000) + UNIX_S_FROM_0001),
        .epoch_s = a->epoch_s,
        .axis1 = v[F_AX1],
        .axis2 = a->col[F_AX2] >= 0 ? v[F_AX2] : 0,
        .axis3 = a->col[F_AX3] >= 0 ? v[F_AX3] : 0,
        .triaxial = a->col[F_AX2] >= 0,
        .has_steps = a->col[F_STEPS] >= 0,
        .steps = a->col[F_STEPS] >= 0 ? v[F_STEPS] : 0,
    };
    epoch_event_fill(r, "actigraph-csv", &row, ev, &a->pending);
}

static int agcsv_next(struct reader *r, struct event *ev)
{
    struct agcsv *a = r->priv;
    if (epoch_event_pending(&a->pending, ev))
        return READ_EVENT;
    char *f[FIELDS_MAX];
    int n;
    do {
        int g = get_line(r, a);
        if (g == 0)
            return READ_EOF;
        if (g == -2)
            return set_why(r, a, -EIO, "line %llu: read error", (unsigned long long)r->line + 1);
        if (g == -1) {
            a->k++; /* an over-long row still took its epoch */
            return set_why(r, a, READ_BAD, "line longer than %d bytes or with a NUL byte",
                           LINE_MAX_B - 1);
        }
        n = split(a->line, f, FIELDS_MAX);
    } while (n == 1 && !f[0][0]);
    int64_t row = a->k++;
    if (n < 0)
        return set_why(r, a, READ_BAD, "more than %d columns", FIELDS_MAX);
    if (n <= last_column(a))
        return set_why(r, a, READ_BAD, "too few columns (%d)", n);
    int64_t ts = 0, local = 0;
    if (epoch_time(r, a, f, row, &ts, &local))
        return READ_BAD;
    double v[F__N] = {0};
    for (int k = 0; k < F__N; k++)
        if (a->col[k] >= 0 &&
            number(r, a, f, k, (k == F_STEPS ? MAX_STEPS_PER_S : MAX_COUNTS_PER_S) * a->epoch_s,
                   &v[k]))
            return READ_BAD;
    epoch_clock_accept(&a->clock, local, ts);
    fill(r, a, ev, ts, local, v);
    return READ_EVENT;
}

static void agcsv_close(struct reader *r)
{
    struct agcsv *a = r->priv;
    if (!a)
        return;
    if (a->f)
        fclose(a->f);
    free(a);
    r->priv = NULL;
}

const struct reader_ops reader_agcsv = {
    .name = "actigraph-csv",
    .probe = agcsv_probe,
    .open = agcsv_open,
    .next = agcsv_next,
    .close = agcsv_close,
};
