/* Android Open Accessory identification and the envelopes that carry the relay protocol over
 * the accessory's bulk pipes (docs/relay-profile.md, "USB"). A bulk pipe is a byte stream, so
 * each relay value (a fragment, a RESUME, an ACK, a status) travels as channel u8, length u16,
 * value; the receiver reassembles envelopes across transfer boundaries. Pure. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "drivers/usb_proto.h"

const char *aoaenv_string(unsigned id, const char *version, const char *serial)
{
    switch (id) {
    case 0: return AOA_MANUFACTURER;
    case 1: return AOA_MODEL;
    case 2: return AOA_DESCRIPTION;
    case 3: return version;
    case 4: return AOA_URI;
    case 5: return serial;
    default: return NULL;
    }
}

int aoaenv_is_accessory(uint16_t vid, uint16_t pid)
{
    return vid == AOA_VID && pid >= AOA_PID_FIRST && pid <= AOA_PID_LAST;
}

int aoaenv_encode(uint8_t channel, const void *value, size_t len, uint8_t *out, size_t cap)
{
    if (len > AOAENV_VALUE_MAX)
        return -EMSGSIZE;
    if (cap < AOAENV_HDR + len)
        return -ENOBUFS;
    out[0] = channel;
    out[1] = (uint8_t)len;
    out[2] = (uint8_t)(len >> 8);
    if (len)
        memcpy(out + AOAENV_HDR, value, len);
    return (int)(AOAENV_HDR + len);
}

void aoaenv_rx_init(struct aoaenv_rx *rx)
{
    memset(rx, 0, offsetof(struct aoaenv_rx, buf));
}

static int known_channel(uint8_t c)
{
    return c == AOAENV_RECORDS || c == AOAENV_RESUME || c == AOAENV_STATUS || c == AOAENV_NUDGES;
}

size_t aoaenv_rx_feed(struct aoaenv_rx *rx, const uint8_t *p, size_t n, uint8_t *ret_channel,
                      const uint8_t **ret_value, size_t *ret_len, int *ret_err)
{
    *ret_value = NULL;
    *ret_err = 0;
    if (rx->skip_transfer)
        return n;
    size_t used = 0;
    while (used < n) {
        if (rx->have < AOAENV_HDR) {
            rx->buf[rx->have++] = p[used++];
            if (rx->have < AOAENV_HDR)
                continue;
            size_t len = (size_t)rx->buf[1] | (size_t)rx->buf[2] << 8;
            if (!known_channel(rx->buf[0]) || len > AOAENV_VALUE_MAX) {
                rx->errors++;
                if (!known_channel(rx->buf[0]))
                    snprintf(rx->why, sizeof rx->why, "envelope with unknown channel 0x%02x "
                             "(expected 0x02..0x05)", rx->buf[0]);
                else
                    snprintf(rx->why, sizeof rx->why, "envelope of %zu bytes on channel 0x%02x: "
                             "more than %d", len, rx->buf[0], AOAENV_VALUE_MAX);
                rx->have = 0;
                rx->skip_transfer = 1;
                *ret_err = -EBADMSG;
                return n;
            }
        } else {
            size_t len = (size_t)rx->buf[1] | (size_t)rx->buf[2] << 8;
            size_t want = AOAENV_HDR + len - rx->have, take = n - used < want ? n - used : want;
            memcpy(rx->buf + rx->have, p + used, take);
            rx->have += take;
            used += take;
        }
        size_t len = (size_t)rx->buf[1] | (size_t)rx->buf[2] << 8;
        if (rx->have == AOAENV_HDR + len) {
            rx->envelopes++;
            rx->bytes += rx->have;
            rx->have = 0;
            *ret_channel = rx->buf[0];
            *ret_value = rx->buf + AOAENV_HDR;
            *ret_len = len;
            return used;
        }
    }
    return used;
}

void aoaenv_rx_end_transfer(struct aoaenv_rx *rx)
{
    rx->skip_transfer = 0;
}

int aoaenv_rx_reset(struct aoaenv_rx *rx)
{
    int had = rx->have > 0;
    if (had)
        rx->truncated++;
    rx->have = 0;
    rx->skip_transfer = 0;
    return had;
}
