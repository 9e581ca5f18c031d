/* Time zones without the process TZ (see tz.h). Everything here is event time: no clocks,
 * no localtime_r/tzset, so replay gives the same windows for every participant regardless
 * of how the daemon's own environment is set up. */
#include "pipeline/tz.h"
#include "pipeline/event.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_FILE_MAX (256 * 1024) /* largest real TZif file is ~4 KiB */
#define TZ_TIMES_MAX 4096        /* transitions (and leap records) per data block */
#define TZ_CHARS_MAX 4096
#define TZ_FOOTER_MAX 255
#define TZ_ZONES_MAX 256
#define TZ_NAME_MAX 63
#define TZ_UTOFF_MIN (-89999)    /* RFC 8536 3.2: offsets stay within (-25 h, +26 h) */
#define TZ_UTOFF_MAX 93599
/* File times are clamped to +-2^50 s and inputs to +-2^60 ms (~36 million years) so that
 * seconds*1000 and local-time arithmetic can never overflow int64. */
#define TZ_SEC_LIMIT (INT64_C(1) << 50)
#define TZ_MS_LIMIT (INT64_C(1) << 60)
/* Footer rules are expanded into the transition table up to 2201-01-01 (past EV_TS_MAX), so
 * that tz_offset is one binary search for every documented event time. */
#define TZ_EXPAND_UNTIL INT64_C(7289654400)
#define TZ_EXPAND_MAX 1024
#define DAY_MS INT64_C(86400000)
#define SPAN_MS INT64_C(108000000) /* 30 h: more than any |UTC offset| */

/* One POSIX TZ rule date: 'J' (1..365, Feb 29 never counted), 'n' (0..365, zero-based),
 * 'M' (month a, week w 1..5 with 5 = last, weekday d 0 = Sunday); secs is the local time of
 * day, which RFC 8536 v3 lets run from -167 h to +167 h. */
struct rdate {
    char kind;
    int a, w, d;
    int32_t secs;
};

struct rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    int has_dst;
    struct rdate start, end;  /* start is in standard local time, end in DST local time */
};

struct tz_zone {
    char name[TZ_NAME_MAX + 1];
    int32_t off0;   /* before the first transition: time type 0 (RFC 8536 3.2) */
    size_t nt;
    int64_t *t;     /* transition instants, seconds, ascending */
    int32_t *off;   /* offset in force from t[i] */
    int has_rule;   /* footer governs instants >= t[nt-1], or all instants when nt == 0 */
    struct rule rule;
};

struct tz_db {
    char *dir;
    size_t n;
    struct tz_zone *zones[TZ_ZONES_MAX];
    struct tz_zone utc;
};

/* ---- calendar ---- */

int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

int64_t floor_mod(int64_t a, int64_t b)
{
    return a - floor_div(a, b) * b;
}

/* Counting from 0000-03-01 puts the leap day at the end of the year, and 400-year eras of
 * 146097 days make the Gregorian cycle exact; the month-length pattern from March on is
 * produced by the linear formula (153*m + 2)/5 (after H. Hinnant's public-domain notes). */
int64_t civil_to_days(int64_t y, unsigned m, unsigned d)
{
    if (m <= 2)
        y--;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                                   /* 0..399 */
    int64_t mar = m > 2 ? m - 3 : m + 9;                           /* March = 0 */
    int64_t doy = (153 * mar + 2) / 5 + (int64_t)d - 1;            /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0..146096 */
    return era * 146097 + doe - 719468;                            /* 719468: 0000-03-01 */
}

void civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    /* the three corrections undo the leap days of the 4-, 100- and 400-year cycles */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mar = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mar + 2) / 5 + 1);
    *m = (unsigned)(mar < 10 ? mar + 3 : mar - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- POSIX TZ footer rules ---- */

static int64_t rule_day(int64_t y, const struct rdate *r)
{
    int64_t jan1 = civil_to_days(y, 1, 1);
    if (r->kind == 'J')
        return jan1 + r->a - 1 + (r->a >= 60 && is_leap(y));
    if (r->kind == 'n')
        return jan1 + r->a;
    int64_t first = civil_to_days(y, (unsigned)r->a, 1);
    int64_t len = (r->a == 12 ? civil_to_days(y + 1, 1, 1)
                              : civil_to_days(y, (unsigned)r->a + 1, 1)) - first;
    int64_t wd = floor_mod(first + 4, 7); /* 1970-01-01 was a Thursday */
    int64_t day = (r->d - wd + 7) % 7 + 7 * (r->w - 1);
    while (day >= len) /* week 5 means the last such weekday */
        day -= 7;
    return first + day;
}

/* Offset at s under a footer rule and the bounds [*a, *b) of the constant stretch around it.
 * A year's transitions can spill into its neighbours (times up to 167 h, offsets), so five
 * years are scanned. Each year's pair is taken in time order and ties go to the later event,
 * so where one year's end meets the next year's start (DST all year) the start wins. */
static int32_t rule_seg(const struct rule *r, int64_t s, int64_t *a, int64_t *b)
{
    int64_t y;
    unsigned m, d;
    int32_t o = r->std_off;
    *a = INT64_MIN;
    *b = INT64_MAX;
    if (!r->has_dst)
        return o;
    civil_from_days(floor_div(s, 86400), &y, &m, &d);
    for (int64_t yy = y - 2; yy <= y + 2; yy++) {
        int64_t on = rule_day(yy, &r->start) * 86400 + r->start.secs - r->std_off;
        int64_t off = rule_day(yy, &r->end) * 86400 + r->end.secs - r->dst_off;
        int in_order = on <= off;
        int64_t et[2] = {in_order ? on : off, in_order ? off : on};
        int32_t eo[2] = {in_order ? r->dst_off : r->std_off, in_order ? r->std_off : r->dst_off};
        for (int k = 0; k < 2; k++) {
            if (et[k] <= s && et[k] >= *a) {
                *a = et[k];
                o = eo[k];
            } else if (et[k] > s && et[k] < *b) {
                *b = et[k];
            }
        }
    }
    return o;
}

/* The TZ-string parsers return the position after what they read, or NULL. */
static const char *p_num(const char *p, int maxdig, int lo, int hi, int *v)
{
    int k = 0;
    for (*v = 0; *p >= '0' && *p <= '9' && k <= maxdig; k++)
        *v = *v * 10 + (*p++ - '0');
    return k == 0 || k > maxdig || *v < lo || *v > hi ? NULL : p;
}

/* [+-]hh[:mm[:ss]] with hh <= maxh */
static const char *p_hms(const char *p, int maxh, int32_t *out)
{
    int sign = 1, h = 0, m = 0, s = 0;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    p = p_num(p, 3, 0, maxh, &h);
    if (p && *p == ':' && (p = p_num(p + 1, 2, 0, 59, &m)) && *p == ':')
        p = p_num(p + 1, 2, 0, 59, &s);
    *out = sign * (h * 3600 + m * 60 + s);
    return p;
}

static int is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Abbreviations are only skipped: alphabetic, or <...> also allowing digits and signs. */
static const char *p_name(const char *p)
{
    int quoted = *p == '<';
    const char *q = p + quoted;
    while (is_alpha(*q) || (quoted && ((*q >= '0' && *q <= '9') || *q == '+' || *q == '-')))
        q++;
    if (q - p - quoted < 3 || (quoted && *q++ != '>'))
        return NULL;
    return q;
}

static const char *p_date(const char *p, struct rdate *r)
{
    r->kind = *p == 'J' || *p == 'M' ? *p++ : 'n';
    r->w = r->d = 0;
    r->secs = 7200;
    if (r->kind == 'M') {
        if (!(p = p_num(p, 2, 1, 12, &r->a)) || *p != '.' ||
            !(p = p_num(p + 1, 1, 1, 5, &r->w)) || *p != '.' ||
            !(p = p_num(p + 1, 1, 0, 6, &r->d)))
            return NULL;
    } else if (!(p = p_num(p, 3, r->kind == 'J', 365, &r->a))) {
        return NULL;
    }
    return *p == '/' ? p_hms(p + 1, 167, &r->secs) : p;
}

static int parse_posix(const char *p, struct rule *r)
{
    int32_t v = 0;
    memset(r, 0, sizeof *r);
    if (!(p = p_name(p)) || !(p = p_hms(p, 24, &v)))
        return -EINVAL;
    r->std_off = -v; /* POSIX counts west-positive */
    if (*p == '\0')
        return 0;
    if (!(p = p_name(p)))
        return -EINVAL;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if (!(p = p_hms(p, 24, &v)))
            return -EINVAL;
        r->dst_off = -v;
    }
    if (*p == '\0')
        p = ",M3.2.0,M11.1.0"; /* no rule given: the US rule, as glibc assumes */
    if (*p != ',' || !(p = p_date(p + 1, &r->start)) || *p != ',' ||
        !(p = p_date(p + 1, &r->end)) || *p != '\0')
        return -EINVAL;
    return 0;
}

/* Transitions of rule r after `from` up to TZ_EXPAND_UNTIL, written to t/off when given.
 * Returns the count, or cap + 1 when there are more than cap (then nothing is expanded). */
static size_t rule_expand(const struct rule *r, int64_t from, int64_t *t, int32_t *off,
                          size_t cap)
{
    size_t n = 0;
    int64_t s = from, a, b;
    for (;;) {
        rule_seg(r, s, &a, &b);
        if (b == INT64_MAX || b > TZ_EXPAND_UNTIL)
            return n;
        if (n == cap)
            return cap + 1;
        if (t) {
            int64_t a2, b2;
            t[n] = b;
            off[n] = rule_seg(r, b, &a2, &b2);
        }
        n++;
        s = b;
    }
}

/* ---- TZif (RFC 8536) ---- */

struct rd {
    const unsigned char *p;
    size_t left;
};

static int take(struct rd *r, size_t n, const unsigned char **out)
{
    if (n > r->left)
        return -EINVAL;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be_signed(const unsigned char *p, size_t size)
{
    uint64_t u = 0;
    for (size_t i = 0; i < size; i++)
        u = u << 8 | p[i];
    if (size == 4)
        return (int32_t)(uint32_t)u; /* sign-extend the v1 32-bit times */
    return u >> 63 ? -(int64_t)(~u) - 1 : (int64_t)u;
}

struct hdr {
    unsigned char ver;
    uint32_t isut, isstd, leap, time, type, chars;
};

static int read_hdr(struct rd *r, struct hdr *h)
{
    const unsigned char *p;
    if (take(r, 44, &p) < 0 || memcmp(p, "TZif", 4) != 0)
        return -EINVAL;
    h->ver = p[4];
    if (h->ver != 0 && (h->ver < '2' || h->ver > '4'))
        return -EINVAL;
    h->isut = be32(p + 20);
    h->isstd = be32(p + 24);
    h->leap = be32(p + 28);
    h->time = be32(p + 32);
    h->type = be32(p + 36);
    h->chars = be32(p + 40);
    /* bounding every count first keeps the block-size arithmetic below far from overflow */
    if (h->type == 0 || h->type > 256 || h->chars == 0 || h->chars > TZ_CHARS_MAX ||
        h->time > TZ_TIMES_MAX || h->leap > TZ_TIMES_MAX ||
        (h->isut != 0 && h->isut != h->type) || (h->isstd != 0 && h->isstd != h->type))
        return -EINVAL;
    return 0;
}

static size_t block_size(const struct hdr *h, size_t tsz)
{
    return (size_t)h->time * (tsz + 1) + (size_t)h->type * 6 + h->chars +
           (size_t)h->leap * (tsz + 4) + h->isstd + h->isut;
}

static int parse_footer(struct rd *r, struct tz_zone *tmp)
{
    const unsigned char *p, *nl;
    char buf[TZ_FOOTER_MAX + 1];
    if (take(r, 1, &p) < 0 || *p != '\n' || r->left == 0 ||
        !(nl = memchr(r->p, '\n', r->left)))
        return -EINVAL;
    size_t len = (size_t)(nl - r->p);
    if (len == 0)
        return 0; /* no rule: the last transition's type holds for ever */
    if (len > TZ_FOOTER_MAX)
        return -EINVAL;
    for (size_t i = 0; i < len; i++)
        if (r->p[i] < 0x20 || r->p[i] > 0x7e)
            return -EINVAL;
    memcpy(buf, r->p, len);
    buf[len] = '\0';
    if (parse_posix(buf, &tmp->rule) < 0)
        return -EINVAL;
    tmp->has_rule = 1;
    return 0;
}

static int parse_tzif(const unsigned char *buf, size_t len, const char *name,
                      struct tz_zone **out)
{
    struct rd r = {buf, len};
    struct hdr h;
    const unsigned char *blk, *skip;
    struct tz_zone tmp;
    size_t tsz = 4;

    memset(&tmp, 0, sizeof tmp);
    if (read_hdr(&r, &h) < 0)
        return -EINVAL;
    if (h.ver != 0) { /* v2+: skip the 32-bit block, use the 64-bit one and the footer */
        unsigned char v = h.ver;
        if (take(&r, block_size(&h, 4), &skip) < 0 || read_hdr(&r, &h) < 0 || h.ver != v)
            return -EINVAL;
        tsz = 8;
    }
    if (take(&r, block_size(&h, tsz), &blk) < 0)
        return -EINVAL;
    if (h.ver != 0 && parse_footer(&r, &tmp) < 0)
        return -EINVAL;
    /* leap-second ("right/") files count seconds differently from Unix time: refused rather
     * than silently 27 s off */
    if (h.leap != 0)
        return -EINVAL;

    const unsigned char *times = blk, *idx = blk + (size_t)h.time * tsz;
    const unsigned char *types = idx + h.time;
    const unsigned char *flags = types + (size_t)h.type * 6 + h.chars; /* isstd, then isut */
    int32_t utoff[256];
    for (uint32_t i = 0; i < h.type; i++) {
        const unsigned char *tt = types + 6 * (size_t)i;
        int64_t o = (int32_t)be32(tt);
        if (o < TZ_UTOFF_MIN || o > TZ_UTOFF_MAX || tt[4] > 1 || tt[5] >= h.chars)
            return -EINVAL;
        utoff[i] = (int32_t)o;
    }
    for (uint32_t i = 0; i < h.isstd + h.isut; i++)
        if (flags[i] > 1)
            return -EINVAL;
    for (uint32_t i = 0; i < h.time; i++) {
        if (idx[i] >= h.type)
            return -EINVAL;
        if (i > 0 && be_signed(times + i * tsz, tsz) <= be_signed(times + (i - 1) * tsz, tsz))
            return -EINVAL;
    }

    size_t nt = h.time, extra = 0;
    int64_t last = nt ? clamp64(be_signed(times + (nt - 1) * tsz, tsz), -TZ_SEC_LIMIT,
                                TZ_SEC_LIMIT) : 0;
    if (tmp.has_rule && nt > 0) {
        extra = rule_expand(&tmp.rule, last, NULL, NULL, TZ_EXPAND_MAX);
        if (extra > TZ_EXPAND_MAX)
            extra = 0; /* last transition far in the past: evaluate the rule on the fly */
    }
    size_t cap = nt + extra;
    struct tz_zone *z = calloc(1, sizeof *z + cap * (sizeof(int64_t) + sizeof(int32_t)));
    if (!z)
        return -ENOMEM;
    *z = tmp;
    strcpy(z->name, name);
    z->t = (int64_t *)(void *)(z + 1);
    z->off = (int32_t *)(void *)(z->t + cap);
    z->off0 = utoff[0];
    for (size_t i = 0; i < nt; i++) {
        z->t[i] = clamp64(be_signed(times + i * tsz, tsz), -TZ_SEC_LIMIT, TZ_SEC_LIMIT);
        z->off[i] = utoff[idx[i]];
    }
    if (z->has_rule && nt > 0) {
        int64_t a, b;
        /* from the last transition on the footer decides (as glibc does), so the expanded
         * table must agree with the rule even if the file's last type says otherwise */
        z->off[nt - 1] = rule_seg(&z->rule, last, &a, &b);
        rule_expand(&z->rule, last, z->t + nt, z->off + nt, extra);
    }
    z->nt = cap;
    *out = z;
    return 0;
}

static int load_zone(const char *dir, const char *name, struct tz_zone **out)
{
    char path[PATH_MAX];
    struct stat st;
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc, n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return -EINVAL;
    /* O_NONBLOCK: a FIFO left in the tz directory must not hang the daemon */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? -ENOENT : -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
    } else if (!S_ISREG(st.st_mode)) {
        rc = S_ISDIR(st.st_mode) ? -ENOENT : -EINVAL; /* "America" is not a zone */
    } else if (!(buf = malloc(TZ_FILE_MAX + 1))) {
        rc = -ENOMEM;
    } else {
        ssize_t k = 0;
        /* one byte past the limit is read to tell an oversize file from a full one */
        while (len <= TZ_FILE_MAX &&
               ((k = read(fd, buf + len, TZ_FILE_MAX + 1 - len)) > 0 || (k < 0 && errno == EINTR)))
            len += k > 0 ? (size_t)k : 0;
        rc = k < 0 ? -errno : 0;
    }
    close(fd);
    if (rc == 0)
        rc = len > TZ_FILE_MAX ? -EINVAL : parse_tzif(buf, len, name, out);
    free(buf);
    return rc;
}

/* ---- zones ---- */

/* Offset at s (seconds) and the bounds [*a, *b) of the constant-offset stretch around it;
 * INT64_MIN / INT64_MAX stand for unbounded. */
static int32_t zone_seg(const struct tz_zone *z, int64_t s, int64_t *a, int64_t *b)
{
    size_t n = z->nt;
    if (n == 0 || s >= z->t[n - 1]) {
        if (z->has_rule) {
            int32_t o = rule_seg(&z->rule, s, a, b);
            if (n > 0 && *a < z->t[n - 1])
                *a = z->t[n - 1];
            return o;
        }
        *a = n ? z->t[n - 1] : INT64_MIN;
        *b = INT64_MAX;
        return n ? z->off[n - 1] : z->off0;
    }
    if (s < z->t[0]) {
        *a = INT64_MIN;
        *b = z->t[0];
        return z->off0;
    }
    /* t[0] <= s < t[n-1]: find the last t[i] <= s; the select compiles to a conditional
     * move, which keeps this per-event path free of mispredicted branches */
    const int64_t *base = z->t;
    for (size_t len = n; len > 1; len -= len / 2)
        base = base[len / 2] <= s ? base + len / 2 : base;
    size_t i = (size_t)(base - z->t);
    *a = z->t[i];
    *b = z->t[i + 1];
    return z->off[i];
}

const char *tz_zone_name(const struct tz_zone *z)
{
    return z ? z->name : "UTC";
}

int32_t tz_offset(const struct tz_zone *z, int64_t utc_ms)
{
    int64_t a, b;
    return z ? zone_seg(z, floor_div(utc_ms, 1000), &a, &b) : 0;
}

int64_t tz_local_to_utc(const struct tz_zone *z, int64_t local_ms)
{
    int64_t l = clamp64(local_ms, -TZ_MS_LIMIT, TZ_MS_LIMIT);
    int64_t hi = l + SPAN_MS, u = l - SPAN_MS, best = INT64_MAX;
    if (!z)
        return l;
    /* every instant whose wall time could be l lies within +-30 h of it; walk the
     * constant-offset stretches there and keep the earliest instant that reaches l */
    for (;;) {
        int64_t a, b;
        int32_t off = zone_seg(z, floor_div(u, 1000), &a, &b);
        int64_t am = a == INT64_MIN ? INT64_MIN : a * 1000;
        int64_t bm = b == INT64_MAX ? INT64_MAX : b * 1000;
        int64_t c = l - (int64_t)off * 1000;
        if (c < am)
            c = am;
        if (c < bm && c < best)
            best = c;
        if (bm >= hi)
            break;
        u = bm;
    }
    return best;
}

/* ---- database ---- */

struct tz_db *tz_db_new(const char *dir)
{
    if (!dir) {
        dir = getenv("TZDIR");
        if (!dir || !*dir)
            dir = "/usr/share/zoneinfo";
    }
    struct tz_db *db = calloc(1, sizeof *db);
    if (!db)
        return NULL;
    db->dir = strdup(dir);
    if (!db->dir) {
        free(db);
        return NULL;
    }
    strcpy(db->utc.name, "UTC"); /* built in: works without a tz database */
    return db;
}

void tz_db_free(struct tz_db *db)
{
    if (!db)
        return;
    for (size_t i = 0; i < db->n; i++)
        free(db->zones[i]);
    free(db->dir);
    free(db);
}

/* Names are relative paths inside the tz directory: nothing that could escape it. */
static int name_ok(const char *s)
{
    size_t n = s ? strnlen(s, TZ_NAME_MAX + 1) : 0;
    if (n == 0 || n > TZ_NAME_MAX || s[0] == '/' || s[n - 1] == '/' || strstr(s, ".."))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(is_alpha(c) || (c >= '0' && c <= '9') || c == '/' || c == '_' || c == '-' ||
              c == '+' || c == '.'))
            return 0;
        if ((c == '/' || c == '.') && i > 0 && s[i - 1] == '/')
            return 0; /* empty or hidden path components */
    }
    return s[0] != '.';
}

const struct tz_zone *tz_db_get(struct tz_db *db, const char *name, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    *err = 0;
    if (!db || !name_ok(name)) {
        *err = -EINVAL;
        return NULL;
    }
    if (strcmp(name, "UTC") == 0)
        return &db->utc;
    for (size_t i = 0; i < db->n; i++)
        if (strcmp(db->zones[i]->name, name) == 0)
            return db->zones[i];
    if (db->n == TZ_ZONES_MAX) {
        *err = -E2BIG;
        return NULL;
    }
    struct tz_zone *z = NULL;
    int rc = load_zone(db->dir, name, &z);
    if (rc < 0) {
        *err = rc;
        return NULL;
    }
    db->zones[db->n++] = z;
    return z;
}
