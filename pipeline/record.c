#include "pipeline/record.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *window_kind_name(enum window_kind w)
{
    static const char *const names[] = {"day", "7d", "event", "epoch", "recording"};
    return (unsigned)w < sizeof names / sizeof names[0] ? names[w] : "?";
}

int fmt_number(double v, char *buf, size_t cap)
{
    int n;
    if (!isfinite(v))
        n = snprintf(buf, cap, "null");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        n = snprintf(buf, cap, "%.0f", v == 0 ? 0.0 : v); /* no "-0" */
    else {
        /* shortest of %.15g..%.17g that reads back to the same double: deterministic and
         * readable, and identical on every run and platform with IEEE doubles */
        n = -1;
        for (int prec = 15; prec <= 17; prec++) {
            n = snprintf(buf, cap, "%.*g", prec, v);
            if (n < 0 || (size_t)n >= cap || strtod(buf, NULL) == v)
                break;
        }
    }
    return (n < 0 || (size_t)n >= cap) ? -ENOSPC : n;
}

/* JSON string escaping for ids and names; inputs are validated UTF-8 already. */
static int put_str(char *buf, size_t cap, size_t *pos, const char *s)
{
    if (*pos + 1 >= cap)
        return -ENOSPC;
    buf[(*pos)++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        const char *out = esc;
        size_t len;
        if (c == '"' || c == '\\') {
            esc[0] = '\\'; esc[1] = (char)c; len = 2;
        } else if (c < 0x20) {
            len = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
        } else {
            esc[0] = (char)c; len = 1;
        }
        if (*pos + len + 1 >= cap)
            return -ENOSPC;
        memcpy(buf + *pos, out, len);
        *pos += len;
    }
    buf[(*pos)++] = '"';
    buf[*pos] = 0;
    return 0;
}

static int put_raw(char *buf, size_t cap, size_t *pos, const char *s)
{
    size_t len = strlen(s);
    if (*pos + len + 1 >= cap)
        return -ENOSPC;
    memcpy(buf + *pos, s, len + 1);
    *pos += len;
    return 0;
}

static int put_num(char *buf, size_t cap, size_t *pos, double v)
{
    char tmp[40];
    int r = fmt_number(v, tmp, sizeof tmp);
    return r < 0 ? r : put_raw(buf, cap, pos, tmp);
}

int record_to_json(const struct feature_record *r, char *buf, size_t cap)
{
    size_t pos = 0;
    int e = 0;
    char tmp[64];
    if (cap == 0)
        return -ENOSPC;
    buf[0] = 0;
    e |= put_raw(buf, cap, &pos, "{\"participant\":");
    e |= put_str(buf, cap, &pos, r->participant);
    e |= put_raw(buf, cap, &pos, ",\"feature\":");
    e |= put_str(buf, cap, &pos, r->feature);
    e |= put_raw(buf, cap, &pos, ",\"window\":");
    e |= put_str(buf, cap, &pos, window_kind_name(r->window));
    snprintf(tmp, sizeof tmp, ",\"start\":%lld,\"end\":%lld", (long long)r->start, (long long)r->end);
    e |= put_raw(buf, cap, &pos, tmp);
    if (r->local_date[0]) {
        e |= put_raw(buf, cap, &pos, ",\"local_date\":");
        e |= put_str(buf, cap, &pos, r->local_date);
    }
    if (r->tz) {
        e |= put_raw(buf, cap, &pos, ",\"tz\":");
        e |= put_str(buf, cap, &pos, r->tz);
    }
    e |= put_raw(buf, cap, &pos, ",\"value\":");
    if (r->has_value)
        e |= put_num(buf, cap, &pos, r->value);
    else
        e |= put_raw(buf, cap, &pos, "null");
    e |= put_raw(buf, cap, &pos, ",\"unit\":");
    e |= put_str(buf, cap, &pos, r->unit ? r->unit : "");
    e |= put_raw(buf, cap, &pos, ",\"coverage\":");
    e |= put_num(buf, cap, &pos, r->coverage);
    snprintf(tmp, sizeof tmp, ",\"revision\":%d}", r->revision);
    e |= put_raw(buf, cap, &pos, tmp);
    return e ? -ENOSPC : (int)pos;
}
