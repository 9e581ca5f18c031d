/* Physical Activity Monitor Service 0x183E, General Activity Instantaneous Data 0x2B3C
 * (ble.md §7.6): only what the reference states without conflict.
 *
 * Decoded: the fixed part (segmentation header byte, flags u24, session and sub-session ids,
 * relative timestamp in s, sequence number; 16 bytes) and the optional fields of flag bits 0..8,
 * whose sizes the reference gives, in flag-bit order; flag bit 23 (device worn).
 * Left out, and why (docs/ble-profiles.md):
 *   - the segmentation header is kept as received but not interpreted: the two readings the
 *     reference cites disagree (first/last bits plus a counter, or 0x80 + N - 1), so a value
 *     split across notifications cannot be reassembled reliably; each notification is decoded
 *     as a complete value;
 *   - activity level (bit 9) and activity type (bit 10) have no size in the reference, and bits
 *     11..22 no meaning: when any of them is set, the bytes after field 8 are counted, not read;
 *   - units and resolutions (the GSS scales) are not in the reference: values stay raw integers;
 *   - the other PAMS characteristics (summaries, sleep, cardiorespiratory, control point) are not
 *     decoded: the reference describes only their names and its one layout for sleep data
 *     contradicts this one. */
#include <errno.h>

#include "drivers/decode.h"
#include "drivers/decode_int.h"

#define PAMS_FIXED 16
#define PAMS_UNSIZED 0x7FFE00u /* flag bits 9..22 */
#define PAMS_WORN 0x800000u

static const uint8_t field_size[_DEC_PAMS_FIELD_MAX] = {2, 2, 2, 2, 1, 2, 2, 3, 2};

int decode_pams_general_activity(const uint8_t *buf, size_t len, struct dec_pams_ga *out,
                                 char *why)
{
    if (len < PAMS_FIXED)
        return dec_fail(why, -EINVAL, "PAMS general activity: %zu bytes (at least %d)", len,
                        PAMS_FIXED);
    if (len > DEC_VALUE_MAX)
        return dec_fail(why, -EINVAL, "PAMS general activity: %zu bytes (at most %d)", len,
                        DEC_VALUE_MAX);
    struct dec_pams_ga g = {
        .header = buf[0], .flags = get_le24(buf + 1), .session_id = get_le16(buf + 4),
        .sub_session_id = get_le16(buf + 6), .relative_ts_s = get_le32(buf + 8),
        .sequence = get_le32(buf + 12),
    };
    size_t need = PAMS_FIXED;
    for (int f = 0; f < _DEC_PAMS_FIELD_MAX; f++)
        if (g.flags & (1u << f))
            need += field_size[f];
    if (len < need)
        return dec_fail(why, -EINVAL, "PAMS general activity: %zu bytes, flags 0x%06x need at "
                        "least %zu", len, (unsigned)g.flags, need);
    if (len > need && !(g.flags & PAMS_UNSIZED))
        return dec_fail(why, -EINVAL, "PAMS general activity: %zu extra bytes at byte %zu "
                        "(flags 0x%06x)", len - need, need, (unsigned)g.flags);
    size_t off = PAMS_FIXED;
    for (int f = 0; f < _DEC_PAMS_FIELD_MAX; f++) {
        if (!(g.flags & (1u << f)))
            continue;
        int32_t v;
        switch (field_size[f]) {
        case 1: v = buf[off]; break;
        case 2: v = get_le16(buf + off); break;
        default: /* s24: sign-extend bit 23 */
            v = (int32_t)get_le24(buf + off);
            if (v & 0x800000)
                v -= 0x1000000;
            break;
        }
        g.value[f] = v;
        g.present |= 1u << f;
        off += field_size[f];
    }
    g.device_worn = !!(g.flags & PAMS_WORN);
    g.undecoded = len - need;
    *out = g;
    return 0;
}
