/* The simulator's stock profiles (see ble_sim.h), with the payload layouts of the BLE
 * reference §7: Heart Rate Measurement 0x2A37 (flags, u8/u16 rate, energy, RR in 1/1024 s),
 * Battery Level 0x2A19, Current Time 0x2A2B (10 bytes, writable: the hub sets the clock),
 * Device Information strings, System ID, PnP ID, and the InfiniTime Motion service (step
 * count u32, raw motion 3 x s16). Generated values are deterministic functions of the
 * notification count, so tests can recompute what a client must have received. */
#include "drivers/ble_sim_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/ble_gatt.h"

#define NS 1000000000LL
#define MOTION_SERVICE "00030000-78fc-48fe-8e23-433b3a1942d0"
#define MOTION_STEPS "00030001-78fc-48fe-8e23-433b3a1942d0"
#define MOTION_RAW "00030002-78fc-48fe-8e23-433b3a1942d0"

struct profile {
    struct blesim_profile_opts o;    /* string pointers not kept */
    int64_t created_ns;              /* simulator time the clock is anchored at */
    int64_t clock_ns;                /* device clock (UTC ns) at created_ns */
    int unset;                       /* the clock reads as date 0 until written */
};

void blesim_profile_defaults(struct blesim_profile_opts *o)
{
    memset(o, 0, sizeof *o);
    o->name = "blesim";
    o->hr_flags = 0x16;
    o->hr_rr_count = 1;
    o->hr_period_ms = 1000;
    o->battery_level = 100;
    o->battery_period_ms = 60000;
    o->cts_unix_ms = INT64_C(1704067200000);   /* 2024-01-01T00:00:00Z */
    o->steps_period_ms = 1000;
    o->motion_period_ms = 100;
    o->manufacturer = "engaged";
    o->model = "blesim";
    o->serial = "SIM-0001";
    o->firmware = "1.0.0";
}

size_t blesim_hr_value(const struct blesim_profile_opts *o, uint64_t count, size_t cap,
                       uint8_t *buf)
{
    unsigned bpm = 60 + (unsigned)(count * 7 % 40);
    size_t n = 0;
    if (cap < 3)
        return 0;
    buf[n++] = o->hr_flags;
    if (o->hr_flags & 0x01) {
        att_put16(buf + n, (uint16_t)bpm);
        n += 2;
    } else {
        buf[n++] = (uint8_t)bpm;
    }
    if ((o->hr_flags & 0x08) && n + 2 <= cap) {
        att_put16(buf + n, (uint16_t)count);   /* energy expended, kJ */
        n += 2;
    }
    for (unsigned k = 0; (o->hr_flags & 0x10) && k < o->hr_rr_count && n + 2 <= cap; k++) {
        att_put16(buf + n, (uint16_t)(60u * 1024u / bpm + k));
        n += 2;
    }
    return n;
}

static int gen_hr(struct blesim *s, uint16_t h, uint64_t count, int64_t now_ns, uint8_t *buf,
                  size_t cap, void *user_data)
{
    const struct profile *p = user_data;
    size_t room = (size_t)blesim_mtu(s) - 3;
    return (int)blesim_hr_value(&p->o, count, cap < room ? cap : room, buf);
}

static int gen_battery(struct blesim *s, uint16_t h, uint64_t count, int64_t now_ns,
                       uint8_t *buf, size_t cap, void *user_data)
{
    const struct profile *p = user_data;
    buf[0] = count + 1 >= p->o.battery_level ? 0 : (uint8_t)(p->o.battery_level - count - 1);
    return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (era arithmetic). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int64_t blesim_cts_now(const struct blesim *s, int64_t now_ns)
{
    const struct profile *p = s->profile;
    if (!p)
        return 0;
    int64_t t = p->clock_ns + (now_ns - p->created_ns);
    return t >= 0 ? t / NS : -((-t + NS - 1) / NS);
}

static int gen_cts(struct blesim *s, uint16_t h, uint64_t count, int64_t now_ns, uint8_t *buf,
                   size_t cap, void *user_data)
{
    const struct profile *p = user_data;
    if (p->unset) {   /* a watch whose clock was never set: 0000-00-00 00:00:00 */
        memset(buf, 0, 10);
        return 10;
    }
    int64_t t = p->clock_ns + (now_ns - p->created_ns);
    int64_t sec = blesim_cts_now(s, now_ns);
    int64_t days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
    int64_t sod = sec - days * 86400, y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    att_put16(buf, (uint16_t)y);
    buf[2] = (uint8_t)m;
    buf[3] = (uint8_t)d;
    buf[4] = (uint8_t)(sod / 3600);
    buf[5] = (uint8_t)(sod / 60 % 60);
    buf[6] = (uint8_t)(sod % 60);
    buf[7] = (uint8_t)(((days % 7) + 7 + 3) % 7 + 1);      /* 1970-01-01 was a Thursday */
    buf[8] = (uint8_t)((t - sec * NS) * 256 / NS);          /* fractions256 */
    buf[9] = 0;
    return 10;
}

/* The client set the clock: re-anchor it (fields out of range are ignored, the year too:
 * nanoseconds since 1970 in an int64_t reach only 2262), unless this device only pretends to
 * take writes (BLESIM_CTS_WRITE_IGNORE). */
static void cts_written(struct blesim *s, uint16_t h, const uint8_t *v, size_t len,
                        void *user_data)
{
    struct profile *p = user_data;
    if (p->o.cts_write == BLESIM_CTS_WRITE_IGNORE || len < 9 || att_get16(v) < 1970 ||
        att_get16(v) > 2200 || v[2] < 1 || v[2] > 12 || v[3] < 1 || v[3] > 31 || v[4] > 23 ||
        v[5] > 59 || v[6] > 59)
        return;
    int64_t days = days_from_civil(att_get16(v), v[2], v[3]);
    int64_t sec = days * 86400 + v[4] * 3600 + v[5] * 60 + v[6];
    p->created_ns = s->now_ns;
    p->clock_ns = sec * NS + (int64_t)v[8] * NS / 256;
    p->unset = 0;
}

/* A device that answers a Local Time Information write and keeps its own. */
static void lti_kept(struct blesim *s, uint16_t h, const uint8_t *v, size_t len, void *user_data)
{
    const struct profile *p = user_data;
    uint8_t own[2] = {(uint8_t)p->o.lti_tz, p->o.lti_dst};
    blesim_set_value(s, h, own, sizeof own);
}

static int gen_steps(struct blesim *s, uint16_t h, uint64_t count, int64_t now_ns, uint8_t *buf,
                     size_t cap, void *user_data)
{
    att_put32(buf, (uint32_t)(1000 + 2 * count));
    return 4;
}

static int gen_motion(struct blesim *s, uint16_t h, uint64_t count, int64_t now_ns, uint8_t *buf,
                      size_t cap, void *user_data)
{
    att_put16(buf, (uint16_t)(int16_t)((int)(count * 37 % 2048) - 1024));
    att_put16(buf + 2, (uint16_t)(int16_t)((int)(count * 53 % 2048) - 1024));
    att_put16(buf + 4, (uint16_t)(int16_t)(1024 - (int)(count * 11 % 512)));
    return 6;
}

static int gen_hash(struct blesim *s, uint16_t h, uint64_t count, int64_t now_ns, uint8_t *buf,
                    size_t cap, void *user_data)
{
    blesim_db_hash(s, buf);
    return 16;
}

/* r < 0 ends the caller with r; else the handle. */
#define TRY(expr) do { if ((r = (expr)) < 0) return r; } while (0)

static int chrc16(struct blesim *s, uint16_t uuid, uint8_t props, const void *v, size_t len)
{
    struct att_uuid u = att_uuid16(uuid);
    return blesim_add_chrc(s, &u, props, v, len);
}

static int str_chrc(struct blesim *s, uint16_t uuid, const char *v)
{
    return chrc16(s, uuid, GATT_PROP_READ, v ? v : "", v ? strlen(v) : 0);
}

static int service16(struct blesim *s, uint16_t uuid)
{
    struct att_uuid u = att_uuid16(uuid);
    return blesim_add_service(s, &u, 1);
}

static int stream(struct blesim *s, int h, uint32_t period_ms, blesim_gen_fn gen, void *ud)
{
    return period_ms ? blesim_add_stream(s, (uint16_t)h, period_ms * 1000000LL, gen, ud) : 0;
}

static int add_services(struct blesim *s, struct profile *p, unsigned mask,
                        const struct blesim_profile_opts *o);

int blesim_add_profiles(struct blesim *s, unsigned mask, const struct blesim_profile_opts *o)
{
    int r;
    if (s->profile)
        return -EALREADY;
    struct profile *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    if ((r = blesim_own(s, p)) < 0) {
        free(p);
        return r;
    }
    s->profile = p;
    p->o = *o;
    p->o.name = p->o.manufacturer = p->o.model = p->o.serial = p->o.firmware = NULL;
    p->created_ns = s->now_ns;
    p->clock_ns = o->cts_unix_ms * (NS / 1000);
    p->unset = o->cts_unset;
    return add_services(s, p, mask, o);
}

int blesim_change_services(struct blesim *s, unsigned mask)
{
    struct profile *p = s->profile;
    if (!p || (mask & BLESIM_PROFILE_GATT))
        return -EINVAL;
    size_t first = s->n_attrs + 1;
    if (first > 0xFFFF)
        return -ENOSPC;
    int r = add_services(s, p, mask, &p->o);
    if (r < 0)
        return r;
    return blesim_service_changed(s, (uint16_t)first, 0xFFFF);
}

static int add_services(struct blesim *s, struct profile *p, unsigned mask,
                        const struct blesim_profile_opts *o)
{
    int r, h;
    uint8_t v[16];
    struct att_uuid u;
    if (mask & BLESIM_PROFILE_GATT) {
        TRY(service16(s, 0x1800));
        TRY(str_chrc(s, 0x2A00, o->name));
        att_put16(v, 0x00C0);   /* appearance: generic watch */
        TRY(chrc16(s, 0x2A01, GATT_PROP_READ, v, 2));
        TRY(service16(s, GATT_SERVICE_GATT));
        memset(v, 0, 4);
        TRY(chrc16(s, GATT_SERVICE_CHANGED, GATT_PROP_INDICATE, v, 4));
        TRY(h = chrc16(s, GATT_DB_HASH, GATT_PROP_READ, NULL, 0));
        TRY(blesim_set_attr_hooks(s, (uint16_t)h, gen_hash, NULL, p));
    }
    if (mask & BLESIM_PROFILE_HR) {
        TRY(service16(s, 0x180D));
        uint8_t hr[ATT_MAX_VALUE_LEN];
        size_t n = blesim_hr_value(&p->o, 0, ATT_DEFAULT_LE_MTU - 3, hr);
        TRY(h = chrc16(s, 0x2A37, GATT_PROP_NOTIFY, hr, n));
        TRY(stream(s, h, o->hr_period_ms, gen_hr, p));
        if (o->hr_security) {   /* a wearable that streams only to a paired hub */
            TRY(blesim_set_security(s, (uint16_t)h, o->hr_security, o->security_ecode));
            TRY(blesim_set_security(s, blesim_attr(s, (uint16_t)h)->cccd, o->hr_security,
                                    o->security_ecode));
        }
        v[0] = 2;   /* body sensor location: wrist */
        TRY(chrc16(s, 0x2A38, GATT_PROP_READ, v, 1));
        TRY(chrc16(s, 0x2A39, GATT_PROP_WRITE, NULL, 0));
    }
    if (mask & BLESIM_PROFILE_BATTERY) {
        TRY(service16(s, 0x180F));
        v[0] = o->battery_level;
        TRY(h = chrc16(s, 0x2A19, GATT_PROP_READ | GATT_PROP_NOTIFY, v, 1));
        TRY(stream(s, h, o->battery_period_ms, gen_battery, p));
    }
    if (mask & BLESIM_PROFILE_CTS) {
        TRY(service16(s, 0x1805));
        uint8_t ct[10];
        gen_cts(s, 0, 0, s->now_ns, ct, sizeof ct, p);
        uint8_t props = GATT_PROP_READ | GATT_PROP_NOTIFY;
        if (o->cts_write != BLESIM_CTS_WRITE_NONE)
            props |= GATT_PROP_WRITE;
        TRY(h = chrc16(s, 0x2A2B, props, ct, 10));
        TRY(blesim_set_attr_hooks(s, (uint16_t)h, gen_cts, cts_written, p));
        if (o->cts_write == BLESIM_CTS_WRITE_REFUSE)   /* says writable, answers 0x03 */
            blesim_attr(s, (uint16_t)h)->perm &= (uint8_t)~BLESIM_PERM_WRITE;
        TRY(stream(s, h, o->cts_period_ms, gen_cts, p));
        v[0] = (uint8_t)o->lti_tz; /* local time information (default UTC, no DST) */
        v[1] = o->lti_dst;
        if (!o->cts_no_lti) {
            uint8_t lp = GATT_PROP_READ;
            if (o->lti_write != BLESIM_LTI_WRITE_NONE)
                lp |= GATT_PROP_WRITE;
            TRY(h = chrc16(s, 0x2A0F, lp, v, 2));
            if (o->lti_write == BLESIM_LTI_WRITE_KEEP)
                TRY(blesim_set_attr_hooks(s, (uint16_t)h, NULL, lti_kept, p));
        }
    }
    if (mask & BLESIM_PROFILE_DIS) {
        TRY(service16(s, 0x180A));
        TRY(str_chrc(s, 0x2A29, o->manufacturer));
        TRY(str_chrc(s, 0x2A24, o->model));
        TRY(str_chrc(s, 0x2A25, o->serial));
        TRY(str_chrc(s, 0x2A26, o->firmware));
        TRY(str_chrc(s, 0x2A27, "1.0"));
        TRY(str_chrc(s, 0x2A28, o->firmware));
        const uint8_t sysid[8] = {0x01, 0x02, 0x03, 0xFE, 0xFF, 0x04, 0x05, 0x06};
        TRY(chrc16(s, 0x2A23, GATT_PROP_READ, sysid, 8));
        uint8_t pnp[7] = {0x01};   /* vendor id source: Bluetooth SIG */
        att_put16(pnp + 1, 0x05F1);
        att_put16(pnp + 3, 0x0001);
        att_put16(pnp + 5, 0x0100);
        TRY(chrc16(s, 0x2A50, GATT_PROP_READ, pnp, 7));
    }
    if (mask & BLESIM_PROFILE_MOTION) {
        if (att_uuid_parse(&u, MOTION_SERVICE) < 0)
            return -EINVAL;
        TRY(blesim_add_service(s, &u, 1));
        att_put32(v, 1000);
        att_uuid_parse(&u, MOTION_STEPS);
        TRY(h = blesim_add_chrc(s, &u, GATT_PROP_READ | GATT_PROP_NOTIFY, v, 4));
        TRY(stream(s, h, o->steps_period_ms, gen_steps, p));
        memset(v, 0, 6);
        att_uuid_parse(&u, MOTION_RAW);
        TRY(h = blesim_add_chrc(s, &u, GATT_PROP_READ | GATT_PROP_NOTIFY, v, 6));
        TRY(stream(s, h, o->motion_period_ms, gen_motion, p));
    }
    return 0;
}

int blesim_service_changed(struct blesim *s, uint16_t start, uint16_t end)
{
    struct att_uuid u = att_uuid16(GATT_SERVICE_CHANGED);
    uint16_t h = blesim_find(s, &u);
    uint8_t v[4];
    if (!h)
        return -ENOENT;
    att_put16(v, start);
    att_put16(v + 2, end);
    blesim_set_value(s, h, v, 4);
    return blesim_indicate(s, h);
}
