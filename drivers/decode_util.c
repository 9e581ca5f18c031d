/* What every decoder shares: the common fields of the events they fill, the reason formatter,
 * and the UTF-8 rule for names (docs/events.md: valid UTF-8, no control characters). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "drivers/decode.h"
#include "drivers/decode_int.h"

/* Copies s into dst[cap], cut short as snprintf would (every live notification passes here,
 * so without its format parsing). */
static void copy_name(char *dst, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap - 1);
    memcpy(dst, s, n);
    dst[n] = '\0';
}

void dec_event_init(struct event *ev, const struct dec_meta *m, enum ev_type type)
{
    memset(ev, 0, sizeof *ev);
    ev->ts = m->ts;
    ev->type = type;
    if (m->participant)
        copy_name(ev->participant, sizeof ev->participant, m->participant);
    if (m->source)
        copy_name(ev->source, sizeof ev->source, m->source);
}

int dec_fail(char *why, int err, const char *fmt, ...)
{
    if (why) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, DEC_WHY_MAX, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* Length of the valid UTF-8 sequence at s (n > 0 bytes available) and its code point, or 0 if
 * the bytes there are not one (overlong forms, surrogates, beyond U+10FFFF, truncated). */
static size_t utf8_seq(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    size_t k;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        k = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return k;
}

static int is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

int dec_text_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = utf8_seq(s + i, n - i, &cp);
        if (!k || is_control(cp))
            return 0;
        i += k;
    }
    return 1;
}

int dec_text_sanitise(const uint8_t *s, size_t n, char *out, size_t cap)
{
    size_t i = 0, o = 0;
    int flags = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = utf8_seq(s + i, n - i, &cp);
        const uint8_t *src = s + i;
        size_t w = k;
        if (!k || is_control(cp)) {
            flags |= DEC_TEXT_REPLACED;
            src = (const uint8_t *)"?";
            w = 1;
            if (!k)
                k = 1;
        }
        if (o + w > cap) {
            flags |= DEC_TEXT_TRUNCATED;
            break;
        }
        memcpy(out + o, src, w);
        o += w;
        i += k;
    }
    out[o] = '\0';
    return flags;
}
