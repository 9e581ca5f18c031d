/* Battery Level 0x2A19 (ble.md §7.2): one byte, 0..100 %. Values 101..255 are reserved and
 * refused rather than clamped, since a device sending them is not reporting a level. */
#include <errno.h>

#include "drivers/decode.h"
#include "drivers/decode_int.h"

int decode_battery_level(const uint8_t *buf, size_t len, unsigned *ret_pct, char *why)
{
    if (len != 1)
        return dec_fail(why, -EINVAL, "battery level: %zu bytes (exactly 1)", len);
    if (buf[0] > 100)
        return dec_fail(why, -EINVAL, "battery level: %u %% out of range (0..100)", buf[0]);
    *ret_pct = buf[0];
    return 0;
}

int decode_battery_event(const uint8_t *buf, size_t len, const struct dec_meta *m,
                         struct event *ev, char *why)
{
    unsigned pct = 0; /* dec_fail() returns < 0, but the compiler cannot see it */
    int r = decode_battery_level(buf, len, &pct, why);
    if (r < 0)
        return r;
    dec_event_init(ev, m, EV_BATTERY);
    ev->u.battery.pct = pct;
    return 0;
}
