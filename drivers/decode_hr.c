/* Heart Rate Measurement 0x2A37 (ble.md §7.1).
 *
 * HRM layout: flags u8, heart rate u8 or u16 (flags bit 0), energy expended u16 kJ (bit 3), RR
 * intervals u16 in 1/1024 s filling the rest (bit 4). Bits 5-7 are reserved: receivers ignore
 * them (the Bluetooth convention for RFU bits), so a future flag that adds a field after the RR
 * list would make that list unreadable; no such flag exists in HRS 1.0. The decoder is strict
 * about length because a short or padded value is the usual sign of a truncated PDU or of a
 * transport bug, and a wrong RR list silently corrupts heart-rate-variability features. */
#include <errno.h>

#include "drivers/decode.h"
#include "drivers/decode_int.h"

#define HR_FMT_U16 0x01
#define HR_CONTACT_SHIFT 1
#define HR_ENERGY 0x08
#define HR_RR 0x10
#define HR_BPM_MAX 300 /* docs/events.md */

int decode_hr_measurement(const uint8_t *buf, size_t len, struct dec_hr *ret, char *why)
{
    struct dec_hr h, *out = &h; /* *ret is only written on success */
    if (len == 0)
        return dec_fail(why, -EINVAL, "HR measurement: empty value");
    if (len > DEC_VALUE_MAX)
        return dec_fail(why, -EINVAL, "HR measurement: %zu bytes (at most %d)", len,
                        DEC_VALUE_MAX);
    uint8_t f = buf[0];
    size_t need = 1 + (f & HR_FMT_U16 ? 2 : 1) + (f & HR_ENERGY ? 2 : 0);
    if (len < need)
        return dec_fail(why, -EINVAL, "HR measurement: %zu bytes, flags 0x%02x need at least %zu",
                        len, f, need + (f & HR_RR ? 2 : 0));
    out->flags = f;
    size_t off = 1;
    if (f & HR_FMT_U16) {
        out->bpm = get_le16(buf + off);
        off += 2;
        if (out->bpm > HR_BPM_MAX)
            return dec_fail(why, -EINVAL, "HR measurement: heart rate %u bpm at byte 1 out of "
                            "range (0..%d)", out->bpm, HR_BPM_MAX);
    } else {
        out->bpm = buf[off++];
    }
    switch ((f >> HR_CONTACT_SHIFT) & 3) {
    case 2: out->contact = DEC_CONTACT_NOT_DETECTED; break;
    case 3: out->contact = DEC_CONTACT_DETECTED; break;
    default: out->contact = DEC_CONTACT_UNSUPPORTED; break;
    }
    out->has_energy = !!(f & HR_ENERGY);
    out->energy_kj = 0;
    if (out->has_energy) {
        out->energy_kj = get_le16(buf + off);
        off += 2;
    }
    out->n_rr = 0;
    size_t rest = len - off;
    if (!(f & HR_RR)) {
        if (rest)
            return dec_fail(why, -EINVAL, "HR measurement: %zu extra bytes at byte %zu (flags "
                            "0x%02x carry no RR intervals)", rest, off, f);
        *ret = h;
        return 0;
    }
    if (rest == 0)
        return dec_fail(why, -EINVAL, "HR measurement: RR flag set but no RR interval at "
                        "byte %zu", off);
    if (rest % 2)
        return dec_fail(why, -EINVAL, "HR measurement: odd RR interval bytes (%zu from byte "
                        "%zu)", rest, off);
    for (; off < len; off += 2) {
        uint16_t rr = get_le16(buf + off);
        if (rr == 0)
            return dec_fail(why, -EINVAL, "HR measurement: RR interval 0 at byte %zu", off);
        out->rr[out->n_rr++] = rr;
    }
    *ret = h;
    return 0;
}

double dec_rr_ms(uint16_t raw)
{
    return (double)raw * 1000.0 / 1024.0;
}

int decode_hr_event(const struct dec_hr *hr, const struct dec_meta *m, struct event *ev,
                    char *why)
{
    if (hr->contact == DEC_CONTACT_NOT_DETECTED)
        return dec_fail(why, -ENODATA, "HR measurement: sensor reports no skin contact");
    if (hr->bpm == 0)
        return dec_fail(why, -ENODATA, "HR measurement: no heart rate (0 bpm)");
    if (hr->bpm > HR_BPM_MAX)
        return dec_fail(why, -EINVAL, "HR measurement: heart rate %u bpm out of range (0..%d)",
                        hr->bpm, HR_BPM_MAX);
    if (hr->n_rr > EV_RR_MAX)
        return dec_fail(why, -EINVAL, "HR measurement: %zu RR intervals (an hr event holds at "
                        "most %d)", hr->n_rr, EV_RR_MAX);
    for (size_t i = 0; i < hr->n_rr; i++) {
        double ms = dec_rr_ms(hr->rr[i]);
        if (!(ms > 0 && ms <= 60000))
            return dec_fail(why, -EINVAL, "HR measurement: RR interval %zu is %.1f ms (0 < rr "
                            "<= 60000)", i, ms);
    }
    dec_event_init(ev, m, EV_HR);
    ev->u.hr.bpm = hr->bpm;
    ev->u.hr.n_rr = hr->n_rr;
    for (size_t i = 0; i < hr->n_rr; i++)
        ev->u.hr.rr_ms[i] = dec_rr_ms(hr->rr[i]);
    return 0;
}
