/* libFuzzer harness for the BLE GATT decoders (drivers/decode_*.c). The first byte selects the
 * decoder, the rest is the characteristic value (or, for the stateful ones, a sequence of
 * values). Any bytes must give a value or a reason, never a crash, hang or leak; and every event
 * a decoder returns must be valid by docs/events.md: its canonical JSON (ev_to_json) reads back
 * (ev_parse_json) as the same event. Round trips are checked where an encoder exists. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/decode.h"
#include "pipeline/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static float scratch[EV_ACCEL_MAX][3];
static const struct dec_meta meta = {.ts = 1709210096500, .participant = "p01",
                                     .source = "band-p01"};

static void check_event(const struct event *ev)
{
    char *j = ev_to_json(ev);
    if (!j)
        abort();
    struct event back;
    const char *why;
    if (ev_parse_json(j, strlen(j), &back, scratch, &why) != 0 || !ev_equal(ev, &back))
        abort();
    free(j);
}

static void check_why(int r, const char *why)
{
    if (r < 0 && (!why[0] || strlen(why) >= DEC_WHY_MAX))
        abort(); /* every refusal has a reason */
    for (const char *p = why; *p; p++)
        if (*p < 0x20 || *p > 0x7E)
            abort(); /* printable ASCII */
}

static void hr(const uint8_t *b, size_t n)
{
    struct dec_hr h;
    struct event ev;
    char why[DEC_WHY_MAX] = "";
    int r = decode_hr_measurement(b, n, &h, why);
    check_why(r, why);
    if (r < 0)
        return;
    if (h.n_rr > DEC_HR_RR_MAX || h.bpm > 300 || n > DEC_VALUE_MAX)
        abort();
    why[0] = '\0';
    r = decode_hr_event(&h, &meta, &ev, why);
    check_why(r, why);
    if (r == 0)
        check_event(&ev);
}

static void cts(const uint8_t *b, size_t n)
{
    struct dec_cts c;
    char why[DEC_WHY_MAX] = "";
    int r = decode_current_time(b, n, &c, why);
    check_why(r, why);
    if (r < 0)
        return;
    uint8_t again[DEC_CTS_LEN];
    if (dec_cts_encode(c.local_ms, c.adjust, again) != 0)
        abort();
    /* the same bytes, except an unknown day of week comes back filled in */
    uint8_t want[DEC_CTS_LEN];
    memcpy(want, b, DEC_CTS_LEN);
    if (want[7] == 0)
        want[7] = again[7];
    if (memcmp(again, want, DEC_CTS_LEN) != 0)
        abort();
    struct dec_lti l = {.has_tz = 1, .tz_quarters = 56, .has_dst = 1, .dst_quarters = 8};
    int64_t utc;
    if (dec_cts_utc(&c, &l, &utc) != 0 || utc != c.local_ms - 64 * 15 * 60000)
        abort();
}

static void lti(const uint8_t *b, size_t n)
{
    struct dec_lti l;
    char why[DEC_WHY_MAX] = "";
    int r = decode_local_time_info(b, n, &l, why);
    check_why(r, why);
    if (r == 0 && (l.tz_quarters < -48 || l.tz_quarters > 56 || l.dst_quarters > 8))
        abort();
    /* what was decoded encodes back to the same two bytes (the daemon writes a zone so) */
    uint8_t enc[2];
    if (r == 0 && (dec_lti_encode(&l, enc) < 0 || memcmp(enc, b, 2) != 0))
        abort();
}

static void dis(const uint8_t *b, size_t n)
{
    static struct dec_devinfo di;
    char why[DEC_WHY_MAX] = "";
    if (n < 1)
        return;
    uint16_t uuid = (uint16_t)(0x2A24 + b[0] % 8); /* 0x2A24..0x2A2B: the six and two others */
    int r = decode_dis(uuid, b + 1, n - 1, &di, why);
    check_why(r, why);
    if (r < 0)
        return;
    int f = dec_dis_field(uuid);
    if (f < 0)
        abort();
    size_t len = strlen(di.text[f]);
    if (len > DEC_DIS_MAX || !dec_text_ok((const uint8_t *)di.text[f], len) ||
        !(di.have & (1u << f)))
        abort();
    if (len && (di.text[f][0] == ' ' || di.text[f][len - 1] == ' '))
        abort();
}

/* (dt_ms u16, total u32) records, one per step notification */
static void steps(const uint8_t *b, size_t n)
{
    struct dec_steps_state st = {0};
    struct dec_meta m = meta;
    struct event ev;
    for (size_t o = 0; o + 6 <= n; o += 6) {
        m.ts += (int64_t)(b[o] | b[o + 1] << 8) * 16 - 65536; /* back or forth, up to ~17 min */
        uint32_t total;
        char why[DEC_WHY_MAX] = "";
        if (decode_pinetime_steps(b + o + 2, 4, &total, why) != 0)
            abort();
        int r = decode_steps_event(&st, total, &m, &ev);
        if (r < 0 || r > 1)
            abort();
        if (r) {
            if (ev.ts != m.ts || ev.u.steps.steps > total)
                abort();
            check_event(&ev);
        }
    }
    uint32_t t;
    char why[DEC_WHY_MAX] = "";
    int r = decode_pinetime_steps(b, n, &t, why);
    check_why(r, why);
    if ((r == 0) != (n == 4))
        abort();
}

/* byte 0: scale and rate; then (dt_ms u8, 6 bytes of raw motion) records */
static void motion(const uint8_t *b, size_t n)
{
    static struct dec_accel_block blk;
    if (n < 1)
        return;
    double lsb = (b[0] & 0x0F) ? 16.0 * (b[0] & 0x0F) : 0.5; /* 0.5 LSB/g overflows +-1000 g */
    double hz = 1 + (b[0] >> 4) * 10;
    if (dec_accel_block_init(&blk, hz, 1 + b[0] % 16, 200) != 0)
        abort();
    struct dec_meta m = meta;
    struct event ev;
    for (size_t o = 1; o + 7 <= n; o += 7) {
        m.ts += b[o] * 4;
        float g[3];
        char why[DEC_WHY_MAX] = "";
        int r = decode_pinetime_motion(b + o + 1, 6, lsb, g, why);
        check_why(r, why);
        if (r < 0)
            continue;
        r = dec_accel_block_add(&blk, g, &m, &ev);
        if (r < 0 || r > 1)
            abort();
        if (r) {
            if (ev.u.accel.n < 1 || ev.u.accel.n > blk.block_len || ev.u.accel.hz != hz)
                abort();
            check_event(&ev);
        }
    }
    if (dec_accel_block_flush(&blk, &m, &ev))
        check_event(&ev);
    float g[3];
    char why[DEC_WHY_MAX] = "";
    int r = decode_pinetime_motion(b, n, DEC_PINETIME_LSB_PER_G, g, why);
    check_why(r, why);
}

static void pams(const uint8_t *b, size_t n)
{
    struct dec_pams_ga g;
    char why[DEC_WHY_MAX] = "";
    int r = decode_pams_general_activity(b, n, &g, why);
    check_why(r, why);
    if (r < 0)
        return;
    if ((g.present & ~(g.flags & 0x1FF)) || g.undecoded > n || n < 16 ||
        (g.undecoded && !(g.flags & 0x7FFE00)) || g.device_worn != !!(g.flags & 0x800000))
        abort();
    if ((g.present & (1u << DEC_PAMS_ELEVATION)) &&
        (g.value[DEC_PAMS_ELEVATION] < -0x800000 || g.value[DEC_PAMS_ELEVATION] > 0x7FFFFF))
        abort();
}

static void cts_encode(const uint8_t *b, size_t n)
{
    if (n < 9)
        return;
    int64_t t = 0;
    memcpy(&t, b, 8);
    t %= INT64_C(400) * 366 * 86400000; /* within +-400 years, mostly valid */
    uint8_t v[DEC_CTS_LEN];
    if (dec_cts_encode(t, b[8], v) != 0)
        return;
    struct dec_cts c;
    char why[DEC_WHY_MAX] = "";
    if (decode_current_time(v, sizeof v, &c, why) != 0)
        abort();
    if (c.local_ms > t || c.local_ms < t - 3 || c.adjust != b[8])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *b = data + 1;
    size_t n = size - 1;
    struct event ev;
    char why[DEC_WHY_MAX] = "";
    int r;
    switch (data[0] % 9) {
    case 0: hr(b, n); break;
    case 1:
        r = decode_battery_event(b, n, &meta, &ev, why);
        check_why(r, why);
        if (r == 0)
            check_event(&ev);
        break;
    case 2: cts(b, n); break;
    case 3: lti(b, n); break;
    case 4: dis(b, n); break;
    case 5: steps(b, n); break;
    case 6: motion(b, n); break;
    case 7: pams(b, n); break;
    default: cts_encode(b, n); break;
    }
    return 0;
}
