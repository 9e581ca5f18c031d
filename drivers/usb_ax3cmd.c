/* The Axivity AX3/AX6 serial command interface (reference ../shared/reference/ble.md §8.2):
 * ASCII commands ending in CRLF, one reply line each, among which the device may write other
 * lines (prompts, echoes, "OK"). Only the three replies engaged uses are parsed; every field is
 * range-checked, so any line gives either values or a reason. Pure. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/usb_proto.h"

static int fail(char *why, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, int err, const char *fmt, ...)
{
    if (why) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, USB_WHY_MAX, fmt, ap);
        va_end(ap);
    }
    return err;
}

void ax3cmd_lines_init(struct ax3cmd_lines *l)
{
    memset(l, 0, sizeof *l);
}

size_t ax3cmd_lines_feed(struct ax3cmd_lines *l, const char *p, size_t n, const char **ret_line)
{
    *ret_line = NULL;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\r' || c == '\n') {
            if (l->len == 0 && !l->overlong)
                continue; /* the LF of a CRLF, or a blank line */
            l->buf[l->len] = 0;
            l->len = 0;
            l->lines++;
            if (l->overlong) {
                l->overlong = 0;
                l->overlong_lines++;
                continue; /* a cut line is not a reply */
            }
            *ret_line = l->buf;
            return i + 1;
        }
        if (c == 0) {
            l->nul_bytes++;
            continue;
        }
        if (l->overlong)
            continue;
        if (l->len == AX3CMD_LINE_MAX) {
            l->overlong = 1;
            l->len = 0;
            continue;
        }
        l->buf[l->len++] = c;
    }
    return n;
}

/* An unsigned decimal field ending at one of the characters in ends (or the end of the
 * string). */
static int field_u(const char **s, unsigned long max, unsigned long *v)
{
    const char *p = *s;
    unsigned long x = 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        x = x * 10 + (unsigned long)(*p - '0');
        if (x > max)
            return -1;
    }
    *v = x;
    *s = p;
    return 0;
}

int ax3cmd_parse_id(const char *line, struct ax3cmd_id *ret, char *why)
{
    if (strncmp(line, "ID=", 3) != 0)
        return -ENOENT;
    const char *p = line + 3;
    size_t k = strcspn(p, ",");
    if (k == 0 || k >= sizeof ret->kind || p[k] != ',')
        return fail(why, -EINVAL, "ID reply \"%.40s\": no device kind before the first comma",
                    line);
    struct ax3cmd_id id = {0};
    for (size_t i = 0; i < k; i++) {
        if (p[i] < 0x21 || p[i] > 0x7e)
            return fail(why, -EINVAL, "ID reply: device kind has byte 0x%02x",
                        (unsigned char)p[i]);
        id.kind[i] = p[i];
    }
    p += k + 1;
    unsigned long hw, fw, dev;
    if (field_u(&p, 65535, &hw) < 0 || *p++ != ',' || field_u(&p, 65535, &fw) < 0 ||
        *p++ != ',' || field_u(&p, UINT32_MAX, &dev) < 0 || (*p && *p != ','))
        return fail(why, -EINVAL, "ID reply \"%.60s\": expected ID=KIND,HARDWARE,FIRMWARE,ID "
                    "with decimal numbers", line);
    id.hardware = (unsigned)hw;
    id.firmware = (unsigned)fw;
    id.device_id = (uint32_t)dev;
    *ret = id;
    return 0;
}

int ax3cmd_parse_batt(const char *line, struct ax3cmd_batt *ret, char *why)
{
    if (strncmp(line, "$BATT=", 6) != 0)
        return -ENOENT;
    const char *p = line + 6;
    unsigned long raw, mv, pct, ch;
    if (field_u(&p, 65535, &raw) < 0 || *p++ != ',' || field_u(&p, 65535, &mv) < 0 ||
        strncmp(p, ",mV,", 4) != 0)
        return fail(why, -EINVAL, "battery reply \"%.60s\": expected $BATT=RAW,MV,mV,PERCENT,"
                    "CHARGED", line);
    p += 4;
    if (field_u(&p, 1000, &pct) < 0 || *p++ != ',' || field_u(&p, 1, &ch) < 0 || *p)
        return fail(why, -EINVAL, "battery reply \"%.60s\": expected $BATT=RAW,MV,mV,PERCENT,"
                    "CHARGED", line);
    if (pct > 100)
        return fail(why, -EINVAL, "battery reply: %lu %% is above 100", pct);
    if (mv > 6000)
        return fail(why, -EINVAL, "battery reply: %lu mV is above 6000", mv);
    ret->raw = (unsigned)raw;
    ret->mv = (unsigned)mv;
    ret->pct = (unsigned)pct;
    ret->charged = (int)ch;
    return 0;
}

static int two(const char *p)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

int ax3cmd_parse_time(const char *line, int64_t *ret_s, char *why)
{
    if (strncmp(line, "TIME=", 5) != 0)
        return -ENOENT;
    const char *p = line + 5;
    /* YYYY-MM-DD,hh:mm:ss */
    if (strlen(p) != 19 || p[4] != '-' || p[7] != '-' || p[10] != ',' || p[13] != ':' ||
        p[16] != ':')
        return fail(why, -EINVAL, "clock reply \"%.40s\": expected TIME=YYYY-MM-DD,hh:mm:ss",
                    line);
    int c = two(p), y = two(p + 2), mo = two(p + 5), d = two(p + 8), h = two(p + 11),
        mi = two(p + 14), s = two(p + 17);
    if (c < 0 || y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || s < 0)
        return fail(why, -EINVAL, "clock reply \"%.40s\": expected TIME=YYYY-MM-DD,hh:mm:ss",
                    line);
    int year = c * 100 + y;
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 2000 || year > 2063 || mo < 1 || mo > 12 || d < 1 ||
        d > dm[mo - 1] + (mo == 2 && leap) || h > 23 || mi > 59 || s > 59)
        return fail(why, -EINVAL, "clock reply \"%.40s\": not a date and time of 2000..2063",
                    line);
    *ret_s = civil_to_days(year, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s;
    return 0;
}

int ax3cmd_format_set_time(int64_t local_s, char *buf, size_t cap)
{
    int64_t days = floor_div(local_s, 86400), sod = floor_mod(local_s, 86400);
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 2000 || y > 2063)
        return -ERANGE;
    int n = snprintf(buf, cap, "TIME %04d-%02u-%02u,%02d:%02d:%02d\r\n", (int)y, m, d,
                     (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
    if (n < 0 || (size_t)n >= cap)
        return -ENOBUFS;
    return n;
}
