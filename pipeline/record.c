#include "pipeline/record.h"
#include "pipeline/nudge.h"

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

/* The shortest round-trip form costs up to three snprintf/strtod pairs, and the same values
 * recur (every record of a family's day carries the same coverage), so the last results are
 * remembered: a small direct-mapped cache per thread, keyed by the bit pattern. */
#define FMT_CACHE 64
struct fmt_slot {
    uint64_t bits;
    int len; /* 0: empty */
    char s[25];
};
static _Thread_local struct fmt_slot fmt_cache[FMT_CACHE];

static int fmt_shortest(double v, char *buf, size_t cap);

static int put_int(char *buf, size_t cap, size_t *pos, int64_t v);

/* An integral value below 2^53 in magnitude, digit by digit (most values are counts). */
static int fmt_integer(double v, char *buf, size_t cap)
{
    size_t pos = 0;
    if (cap == 0 || put_int(buf, cap, &pos, (int64_t)v) < 0)
        return -ENOSPC;
    return (int)pos;
}

int fmt_number(double v, char *buf, size_t cap)
{
    if (isfinite(v) && v == floor(v) && fabs(v) < 9007199254740992.0)
        return fmt_integer(v, buf, cap); /* -0 becomes 0 */
    if (!isfinite(v))
        return fmt_shortest(v, buf, cap);
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    struct fmt_slot *c = &fmt_cache[(bits ^ (bits >> 29) ^ (bits >> 47)) % FMT_CACHE];
    if (c->len && c->bits == bits) {
        if ((size_t)c->len >= cap)
            return -ENOSPC;
        memcpy(buf, c->s, (size_t)c->len + 1);
        return c->len;
    }
    int n = fmt_shortest(v, buf, cap);
    if (n > 0 && (size_t)n < sizeof c->s) {
        c->bits = bits;
        c->len = n;
        memcpy(c->s, buf, (size_t)n + 1);
    }
    return n;
}

static int fmt_shortest(double v, char *buf, size_t cap)
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
    while (*s) {
        /* a run of characters that need no escape is copied at once (ids and names are) */
        size_t run = 0;
        while (s[run] && s[run] != '"' && s[run] != '\\' && (unsigned char)s[run] >= 0x20)
            run++;
        if (run) {
            if (*pos + run + 1 >= cap)
                return -ENOSPC;
            memcpy(buf + *pos, s, run);
            *pos += run;
            s += run;
            continue;
        }
        unsigned char c = (unsigned char)*s++;
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

/* Digits of an integer, without printf (times and revisions of every record). */
static int put_int(char *buf, size_t cap, size_t *pos, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[n++] = '-';
    if (*pos + (size_t)n >= cap) /* the digits and the NUL */
        return -ENOSPC;
    for (int i = 0; i < n; i++)
        buf[*pos + (size_t)i] = tmp[n - 1 - i];
    *pos += (size_t)n;
    buf[*pos] = 0;
    return 0;
}

static int put_num(char *buf, size_t cap, size_t *pos, double v)
{
    char tmp[40];
    int r = fmt_number(v, tmp, sizeof tmp);
    return r < 0 ? r : put_raw(buf, cap, pos, tmp);
}

static int put_flag(char *buf, size_t cap, size_t *pos, const char *key, int v)
{
    int e = put_raw(buf, cap, pos, key);
    return e | put_raw(buf, cap, pos, v < 0 ? "null" : v ? "1" : "0");
}

static int put_epoch(char *buf, size_t cap, size_t *pos, const struct epoch_extra *x)
{
    int e = put_flag(buf, cap, pos, ",\"wear\":", x->wear);
    e |= put_flag(buf, cap, pos, ",\"sleep\":", x->sleep);
    if (x->has_axes) {
        e |= put_raw(buf, cap, pos, ",\"axes\":[");
        for (int i = 0; i < 3; i++) {
            e |= i ? put_raw(buf, cap, pos, ",") : 0;
            e |= put_num(buf, cap, pos, x->axes[i]);
        }
        e |= put_raw(buf, cap, pos, "]");
    }
    return e;
}

static int nudge_to_json(const struct feature_record *r, char *buf, size_t cap);

int record_to_json(const struct feature_record *r, char *buf, size_t cap)
{
    size_t pos = 0;
    int e = 0;
    if (cap == 0)
        return -ENOSPC;
    if (r->nudge)
        return nudge_to_json(r, buf, cap);
    buf[0] = 0;
    e |= put_raw(buf, cap, &pos, "{\"participant\":");
    e |= put_str(buf, cap, &pos, r->participant);
    e |= put_raw(buf, cap, &pos, ",\"feature\":");
    e |= put_str(buf, cap, &pos, r->feature);
    e |= put_raw(buf, cap, &pos, ",\"window\":");
    e |= put_str(buf, cap, &pos, window_kind_name(r->window));
    e |= put_raw(buf, cap, &pos, ",\"start\":");
    e |= put_int(buf, cap, &pos, r->start);
    e |= put_raw(buf, cap, &pos, ",\"end\":");
    e |= put_int(buf, cap, &pos, r->end);
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
    e |= put_raw(buf, cap, &pos, ",\"revision\":");
    e |= put_int(buf, cap, &pos, r->revision);
    if (r->epoch)
        e |= put_epoch(buf, cap, &pos, r->epoch);
    if (r->nudge_id) {
        e |= put_raw(buf, cap, &pos, ",\"nudge\":");
        e |= put_str(buf, cap, &pos, r->nudge_id);
    }
    e |= put_raw(buf, cap, &pos, "}");
    return e ? -ENOSPC : (int)pos;
}

/* A nudge decision (spec §6; docs/nudges.md lists the fields). */
static int nudge_to_json(const struct feature_record *r, char *buf, size_t cap)
{
    const struct nudge_decision *d = r->nudge;
    size_t pos = 0;
    int e = put_raw(buf, cap, &pos, "{\"participant\":");
    e |= put_str(buf, cap, &pos, r->participant);
    e |= put_raw(buf, cap, &pos, ",\"id\":");
    e |= put_str(buf, cap, &pos, d->id);
    e |= put_raw(buf, cap, &pos, ",\"ts\":");
    e |= put_int(buf, cap, &pos, d->ts);
    e |= put_raw(buf, cap, &pos, ",\"local_date\":");
    e |= put_str(buf, cap, &pos, d->local_date);
    if (r->tz) {
        e |= put_raw(buf, cap, &pos, ",\"tz\":");
        e |= put_str(buf, cap, &pos, r->tz);
    }
    e |= put_raw(buf, cap, &pos, ",\"rule\":");
    e |= put_str(buf, cap, &pos, d->rule);
    e |= put_raw(buf, cap, &pos, ",\"recipient\":");
    e |= put_str(buf, cap, &pos, nudge_recipient_name(d->recipient));
    if (d->supporter) {
        e |= put_raw(buf, cap, &pos, ",\"supporter\":");
        e |= put_str(buf, cap, &pos, d->supporter);
    }
    e |= put_raw(buf, cap, &pos, ",\"message\":");
    e |= put_str(buf, cap, &pos, d->message);
    e |= put_raw(buf, cap, &pos, ",\"priority\":");
    e |= put_str(buf, cap, &pos, nudge_priority_name(d->priority));
    e |= put_raw(buf, cap, &pos, ",\"decision\":");
    e |= put_str(buf, cap, &pos, d->decision);
    e |= put_raw(buf, cap, &pos, ",\"reason\":");
    e |= put_str(buf, cap, &pos, d->reason);
    e |= put_raw(buf, cap, &pos, ",\"p\":");
    e |= put_num(buf, cap, &pos, d->p);
    e |= put_raw(buf, cap, &pos, d->available ? ",\"available\":true" : ",\"available\":false");
    e |= put_raw(buf, cap, &pos, d->late ? ",\"late\":true" : ",\"late\":false");
    if (d->deferred_from != INT64_MIN) {
        e |= put_raw(buf, cap, &pos, ",\"deferred_from\":");
        e |= put_int(buf, cap, &pos, d->deferred_from);
    }
    if (d->escalated_from) {
        e |= put_raw(buf, cap, &pos, ",\"escalated_from\":");
        e |= put_str(buf, cap, &pos, d->escalated_from);
        e |= put_raw(buf, cap, &pos, ",\"escalated_id\":");
        e |= put_str(buf, cap, &pos, d->escalated_id ? d->escalated_id : "");
    }
    e |= put_raw(buf, cap, &pos, ",\"evidence\":[");
    for (size_t i = 0; i < d->n_evidence; i++) {
        const struct nudge_evidence *x = &d->evidence[i];
        e |= put_raw(buf, cap, &pos, i ? ",{\"feature\":" : "{\"feature\":");
        e |= put_str(buf, cap, &pos, x->feature);
        e |= put_raw(buf, cap, &pos, ",\"value\":");
        if (x->has_value)
            e |= put_num(buf, cap, &pos, x->value);
        else
            e |= put_raw(buf, cap, &pos, "null");
        if (x->local_date[0]) {
            e |= put_raw(buf, cap, &pos, ",\"coverage\":");
            e |= put_num(buf, cap, &pos, x->coverage);
            e |= put_raw(buf, cap, &pos, ",\"local_date\":");
            e |= put_str(buf, cap, &pos, x->local_date);
        }
        if (x->rel != NUDGE_VALUE) {
            e |= put_raw(buf, cap, &pos, ",\"median\":");
            if (x->has_median)
                e |= put_num(buf, cap, &pos, x->median);
            else
                e |= put_raw(buf, cap, &pos, "null");
        }
        e |= put_raw(buf, cap, &pos, x->result < 0 ? ",\"result\":null}"
                                     : x->result ? ",\"result\":true}" : ",\"result\":false}");
    }
    e |= put_raw(buf, cap, &pos, "]}");
    return e ? -ENOSPC : (int)pos;
}
