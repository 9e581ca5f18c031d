/* ActiGraph .agd files: ActiLife's SQLite database of epoch counts (reference
 * ../shared/reference/actigraphy.md §8.2). The `settings` table gives the epoch length; each
 * row of the `data` table becomes one `counts` event (triaxial when axis2 and axis3 exist) and,
 * when the table has a `steps` column, one `steps` event for the same epoch.
 *
 * The file is opened read-only with SQLite's immutable flag, so nothing is ever written next
 * to it (no journal, no WAL, no lock) and a file on read-only media works. Timestamps are .NET
 * ticks on the device's wall clock; struct epoch_clock (drivers/epoch_event.h) places them in
 * UTC. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/epoch_event.h"
#include "drivers/reader.h"

/* .NET ticks (100 ns since 0001-01-01) of the Unix epoch, and ticks per ms and per s */
#define TICKS_UNIX INT64_C(621355968000000000)
#define TICKS_MS INT64_C(10000)
#define TICKS_S INT64_C(10000000)
/* Values beyond these are not counts a device can produce: ActiGraph counts stay well under
 * 1,300 per second per axis, and nobody takes 10 steps a second. Such rows are corrupt. */
#define MAX_COUNTS_PER_S 10000.0
#define MAX_STEPS_PER_S 10.0
#define SQL_TEXT_MAX 65536 /* longest text or blob SQLite may hand us (settings values) */

enum agd_col { COL_TS, COL_AXIS1, COL_AXIS2, COL_AXIS3, COL_STEPS, COL__N };
static const char *const col_name[COL__N] = {"dataTimestamp", "axis1", "axis2", "axis3",
                                             "steps"};

struct agd {
    sqlite3 *db;
    sqlite3_stmt *rows;
    int col[COL__N];      /* result column of each field, -1 if the table lacks it */
    int epoch_s;
    struct epoch_clock clock;
    struct epoch_pending pending; /* the steps event of the epoch just returned */
    char why[224];
};

/* The path as an SQLite URI ("file:" + path with %, ?, # and controls escaped), so that the
 * immutable flag can be given. Absolute paths get an empty authority ("file:///..."). */
static char *agd_uri(const char *path)
{
    size_t n = strlen(path);
    char *u = malloc(3 * n + 32);
    if (!u)
        return NULL;
    char *o = u + sprintf(u, "file:%s", path[0] == '/' ? "//" : "");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (*p == '%' || *p == '?' || *p == '#' || *p < 0x20 || *p == 0x7f)
            o += sprintf(o, "%%%02X", *p);
        else
            *o++ = (char)*p;
    }
    strcpy(o, "?mode=ro&immutable=1");
    return u;
}

/* Opens path read-only and immutable, refusing anything that is not a regular file starting
 * with the SQLite header. Returns 0 or a negative errno with *why set. */
static int agd_db_open(const char *path, sqlite3 **db, const char **why)
{
    *db = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        *why = strerror(e);
        return -e;
    }
    struct stat st;
    unsigned char head[16];
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
             read(fd, head, sizeof head) == (ssize_t)sizeof head &&
             memcmp(head, "SQLite format 3", sizeof head) == 0;
    close(fd);
    if (!ok) {
        *why = "not an agd file (no SQLite 3 header)";
        return -EINVAL;
    }
    char *uri = agd_uri(path);
    if (!uri) {
        *why = "out of memory";
        return -ENOMEM;
    }
    int rc = sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    free(uri);
    if (rc != SQLITE_OK) {
        *why = *db ? "cannot open the SQLite database" : "out of memory";
        sqlite3_close(*db);
        *db = NULL;
        return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
    }
    /* The file is untrusted: no schema-defined functions or views run with side effects, and
     * no value larger than any real setting is materialised. */
    sqlite3_db_config(*db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(*db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_limit(*db, SQLITE_LIMIT_LENGTH, SQL_TEXT_MAX);
    return 0;
}

/* 1 if table `name` exists as a real table, 0 if not, -1 on an SQLite error (corrupt file). */
static int has_table(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT type FROM sqlite_master WHERE name = ?1 COLLATE NOCASE",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc, found = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (t && strcmp((const char *)t, "table") == 0)
            found = 1;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? found : -1;
}

/* Which of the known columns the data table has (index into col_name, or -1 each). */
static int data_columns(sqlite3 *db, int present[COL__N])
{
    sqlite3_stmt *st;
    for (int i = 0; i < COL__N; i++)
        present[i] = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA table_info(data)", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        for (int i = 0; name && i < COL__N; i++)
            if (strcasecmp(name, col_name[i]) == 0)
                present[i] = 1;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int agd_probe(const char *path, const unsigned char *head, size_t n)
{
    static const char magic[] = "SQLite format 3"; /* 16 bytes with its NUL */
    if (n < sizeof magic || memcmp(head, magic, sizeof magic) != 0)
        return 0;
    sqlite3 *db;
    const char *why;
    if (agd_db_open(path, &db, &why) < 0)
        return 0;
    int present[COL__N];
    int ok = has_table(db, "settings") == 1 && has_table(db, "data") == 1 &&
             data_columns(db, present) == 0 && present[COL_TS] && present[COL_AXIS1];
    sqlite3_close(db);
    return ok;
}

/* The epoch length from the settings table: an integer number of seconds dividing 86400. */
static int read_settings(struct reader *r, struct agd *a)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(a->db, "SELECT settingName, settingValue FROM settings", -1, &st,
                           NULL) != SQLITE_OK)
        return reader_fail_open(r, -EINVAL, "settings table: %s", sqlite3_errmsg(a->db));
    int rc;
    long epoch = -1;
    char bad[40] = "";
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        if (!k || strcasecmp(k, "epochlength") != 0)
            continue;
        const char *v = (const char *)sqlite3_column_text(st, 1);
        char *end;
        errno = 0;
        long e = v ? strtol(v, &end, 10) : 0;
        if (!v || errno || end == v || *end || e < 1 || e > 86400 || 86400 % e ||
            (epoch > 0 && e != epoch)) {
            snprintf(bad, sizeof bad, "%.24s", v ? v : "NULL");
            break;
        }
        epoch = e;
    }
    int err = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : rc;
    sqlite3_finalize(st);
    if (err)
        return reader_fail_open(r, -EINVAL, "settings table: %s", sqlite3_errstr(err));
    if (bad[0])
        return reader_fail_open(r, -EINVAL,
                                "settings: epochlength \"%s\" is not a whole number of seconds "
                                "dividing 86400 (or is given twice)", bad);
    if (epoch < 0)
        return reader_fail_open(r, -EINVAL, "settings table has no epochlength");
    a->epoch_s = (int)epoch;
    return 0;
}

/* Prepares the row query over the columns the data table has, in storage order (the order
 * ActiLife wrote them; rows out of time order are reported, not silently sorted). */
static int prepare_rows(struct reader *r, struct agd *a)
{
    int present[COL__N];
    if (data_columns(a->db, present) < 0)
        return reader_fail_open(r, -EINVAL, "data table: %s", sqlite3_errmsg(a->db));
    if (!present[COL_TS] || !present[COL_AXIS1])
        return reader_fail_open(r, -EINVAL, "data table lacks the dataTimestamp or axis1 column");
    if (present[COL_AXIS2] != present[COL_AXIS3])
        present[COL_AXIS2] = present[COL_AXIS3] = 0; /* a lone second axis is not triaxial */
    char sql[128] = "SELECT ";
    int n = 0;
    for (int i = 0; i < COL__N; i++) {
        a->col[i] = present[i] ? n++ : -1;
        if (present[i]) {
            strcat(sql, n > 1 ? ", " : "");
            strcat(sql, col_name[i]);
        }
    }
    strcat(sql, " FROM data");
    if (sqlite3_prepare_v2(a->db, sql, -1, &a->rows, NULL) != SQLITE_OK)
        return reader_fail_open(r, -EINVAL, "data table: %s", sqlite3_errmsg(a->db));
    return 0;
}

static int agd_open(struct reader *r, const char *path, const struct reader_opts *o)
{
    struct agd *a = calloc(1, sizeof *a);
    if (!a) {
        r->why = "out of memory";
        return -ENOMEM;
    }
    r->priv = a;
    if (!o->participant || !ev_valid_id(o->participant)) {
        r->why = "agd files name no study participant: give --participant ID "
                 "([A-Za-z0-9_-]{1,64})";
        return -EINVAL;
    }
    if (o->source && !ev_valid_id(o->source)) {
        r->why = "source must match [A-Za-z0-9_-]{1,64}";
        return -EINVAL;
    }
    int e = agd_db_open(path, &a->db, &r->why);
    if (e < 0)
        return e;
    int t1 = has_table(a->db, "settings"), t2 = t1 < 0 ? -1 : has_table(a->db, "data");
    if (t1 < 0 || t2 < 0)
        return reader_fail_open(r, -EINVAL, "not a readable agd file: %s", sqlite3_errmsg(a->db));
    if (!t1 || !t2)
        return reader_fail_open(r, -EINVAL, "not an agd file: no %s table",
                                t1 ? "data" : "settings");
    if ((e = read_settings(r, a)) < 0 || (e = prepare_rows(r, a)) < 0)
        return e;
    return 0;
}

static int bad(struct reader *r, struct agd *a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(struct reader *r, struct agd *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->why, sizeof a->why, fmt, ap);
    va_end(ap);
    r->why = a->why;
    return READ_BAD;
}

/* A non-negative, finite number of at most max in result column c (which must exist). */
static int agd_value(struct reader *r, struct agd *a, int field, double max, double *out)
{
    int c = a->col[field];
    int t = sqlite3_column_type(a->rows, c);
    if (t != SQLITE_INTEGER && t != SQLITE_FLOAT)
        return bad(r, a, "%s is %s, not a number", col_name[field],
                   t == SQLITE_NULL ? "NULL" : "text or a blob");
    double v = sqlite3_column_double(a->rows, c);
    if (!isfinite(v) || v < 0 || v > max)
        return bad(r, a, "%s %.17g out of range (0..%.0f for a %d s epoch)", col_name[field], v,
                   max, a->epoch_s);
    *out = v;
    return 0;
}

/* The epoch start in UTC ms (struct epoch_clock says how the device clock maps to UTC). */
static int agd_time(struct reader *r, struct agd *a, int64_t *ts, int64_t *local)
{
    int c = a->col[COL_TS];
    if (sqlite3_column_type(a->rows, c) != SQLITE_INTEGER)
        return bad(r, a, "dataTimestamp is not an integer (.NET ticks)");
    int64_t ticks = sqlite3_column_int64(a->rows, c);
    /* 1899-12-31 .. 2200-01-02 keeps every conversion below far from overflow */
    int64_t lo = TICKS_UNIX + (EV_TS_MIN - 86400000) * TICKS_MS;
    int64_t hi = TICKS_UNIX + (EV_TS_MAX + 86400000) * TICKS_MS;
    if (ticks < lo || ticks > hi)
        return bad(r, a, "dataTimestamp %lld out of range (years 1900..2199)", (long long)ticks);
    int64_t l = (ticks - TICKS_UNIX) / TICKS_MS;
    char why[160];
    if (epoch_clock_place(&a->clock, r->opts.zone, a->epoch_s, l, ts, why, sizeof why) < 0)
        return bad(r, a, "dataTimestamp: %s", why);
    *local = l;
    return 0;
}

static void agd_fill(struct reader *r, struct agd *a, struct event *ev, int64_t ts,
                     int64_t local, const double v[COL__N])
{
    /* seq: twice the device-clock second of the epoch start counted from 0001-01-01 (the tick
     * origin), + 1 for its steps: re-reading a file, or two downloads that overlap, give the
     * same (source, seq) for the same epoch, and consecutive downloads never collide */
    struct epoch_row row = {
        .ts = ts,
        .seq = 2 * (floor_div(local, 1000) + TICKS_UNIX / TICKS_S),
        .epoch_s = a->epoch_s,
        .axis1 = v[COL_AXIS1],
        .axis2 = a->col[COL_AXIS2] >= 0 ? v[COL_AXIS2] : 0,
        .axis3 = a->col[COL_AXIS3] >= 0 ? v[COL_AXIS3] : 0,
        .triaxial = a->col[COL_AXIS2] >= 0,
        .has_steps = a->col[COL_STEPS] >= 0,
        .steps = a->col[COL_STEPS] >= 0 ? v[COL_STEPS] : 0,
    };
    epoch_event_fill(r, "agd", &row, ev, &a->pending);
}

static int agd_next(struct reader *r, struct event *ev)
{
    struct agd *a = r->priv;
    if (epoch_event_pending(&a->pending, ev))
        return READ_EVENT;
    int rc = sqlite3_step(a->rows);
    if (rc == SQLITE_DONE)
        return READ_EOF;
    if (rc != SQLITE_ROW) {
        snprintf(a->why, sizeof a->why, "data row %llu: %s", (unsigned long long)r->line + 1,
                 sqlite3_errmsg(a->db));
        r->why = a->why;
        return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
    }
    r->line++;
    int64_t ts = 0, local = 0;
    if (agd_time(r, a, &ts, &local))
        return READ_BAD;
    double v[COL__N] = {0};
    double per_s = a->epoch_s;
    for (int f = COL_AXIS1; f < COL__N; f++)
        if (a->col[f] >= 0 &&
            agd_value(r, a, f, (f == COL_STEPS ? MAX_STEPS_PER_S : MAX_COUNTS_PER_S) * per_s,
                      &v[f]))
            return READ_BAD;
    epoch_clock_accept(&a->clock, local, ts);
    agd_fill(r, a, ev, ts, local, v);
    return READ_EVENT;
}

static void agd_close(struct reader *r)
{
    struct agd *a = r->priv;
    if (!a)
        return;
    sqlite3_finalize(a->rows);
    sqlite3_close(a->db);
    free(a);
    r->priv = NULL;
}

const struct reader_ops reader_agd = {
    .name = "agd",
    .probe = agd_probe,
    .open = agd_open,
    .next = agd_next,
    .close = agd_close,
};
