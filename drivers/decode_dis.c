/* Device Information strings (ble.md §7.4): manufacturer 0x2A29, model 0x2A24, serial 0x2A25,
 * hardware 0x2A27, firmware 0x2A26 and software 0x2A28 revisions. UTF-8, not NUL-terminated;
 * in practice some devices pad with NULs or spaces and a few send Latin-1. The strings end up
 * in logs, status messages and the store, so they are bounded and made printable UTF-8 here
 * rather than refused: a device with an odd name must still be usable. */
#include <errno.h>

#include "drivers/decode.h"
#include "drivers/decode_int.h"

#define ATT_VALUE_MAX 512

static const struct {
    uint16_t uuid;
    const char *name;
} fields[_DEC_DIS_FIELD_MAX] = {
    [DEC_DIS_MANUFACTURER] = {DEC_UUID_MANUFACTURER, "manufacturer"},
    [DEC_DIS_MODEL] = {DEC_UUID_MODEL, "model"},
    [DEC_DIS_SERIAL] = {DEC_UUID_SERIAL, "serial"},
    [DEC_DIS_HARDWARE_REV] = {DEC_UUID_HARDWARE_REV, "hardware_rev"},
    [DEC_DIS_FIRMWARE_REV] = {DEC_UUID_FIRMWARE_REV, "firmware_rev"},
    [DEC_DIS_SOFTWARE_REV] = {DEC_UUID_SOFTWARE_REV, "software_rev"},
};

int dec_dis_field(uint16_t uuid)
{
    for (int f = 0; f < _DEC_DIS_FIELD_MAX; f++)
        if (fields[f].uuid == uuid)
            return f;
    return -ENOENT;
}

const char *dec_dis_name(int field)
{
    return field >= 0 && field < _DEC_DIS_FIELD_MAX ? fields[field].name : NULL;
}

int decode_dis_string(const uint8_t *buf, size_t len, char out[DEC_DIS_MAX + 1], char *why)
{
    out[0] = '\0';
    if (len > ATT_VALUE_MAX)
        return dec_fail(why, -EINVAL, "device information: %zu bytes (at most %d)", len,
                        ATT_VALUE_MAX);
    size_t a = 0, b = len;
    while (b > a && (buf[b - 1] == '\0' || buf[b - 1] == ' '))
        b--;
    while (a < b && buf[a] == ' ')
        a++;
    int flags = dec_text_sanitise(buf + a, b - a, out, DEC_DIS_MAX);
    size_t n = 0;
    while (out[n])
        n++;
    while (n > 0 && out[n - 1] == ' ') /* a cut may leave spaces at the end */
        out[--n] = '\0';
    return flags;
}

int decode_dis(uint16_t uuid, const uint8_t *buf, size_t len, struct dec_devinfo *di,
               char *why)
{
    int f = dec_dis_field(uuid);
    if (f < 0)
        return dec_fail(why, -ENOENT, "device information: 0x%04X is not a string "
                        "characteristic", uuid);
    int r = decode_dis_string(buf, len, di->text[f], why);
    if (r < 0)
        return r;
    di->have |= 1u << f;
    di->flags[f] = (unsigned)r;
    return 0;
}
