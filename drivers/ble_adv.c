/* Advertising data (drivers/ble_hci.h): a run of `[len][type][len - 1 bytes]` structures
 * (Core Vol 3 Part C §11, the types in the Core Specification Supplement Part A). A zero
 * length byte ends the data: controllers pad legacy AD to 31 bytes with zeros. The same data
 * arrives in scan responses, extended reports and (later) mgmt Device Found events, so the
 * parser knows nothing of HCI. */
#include <errno.h>
#include <string.h>

#include "drivers/ble_hci.h"

struct att_uuid adv_uuid32(uint32_t v)
{
    /* the base UUID with its bytes 12..15 (wire order) replaced: a 16-bit UUID is the same
     * with the top half zero */
    struct att_uuid u = att_uuid16((uint16_t)v);
    att_put16(u.b + 14, (uint16_t)(v >> 16));
    return u;
}

static int bad(const char **why, const char *text)
{
    if (why)
        *why = text;
    return -EBADMSG;
}

/* A list of UUIDs of width w (2, 4 or 16 bytes). */
static int take_uuids(struct adv_data *ad, const uint8_t *p, size_t n, size_t w,
                      const char **why)
{
    if (n % w)
        return bad(why, w == 2 ? "16-bit UUID list length not a multiple of 2"
                   : w == 4 ? "32-bit UUID list length not a multiple of 4"
                            : "128-bit UUID list length not a multiple of 16");
    for (size_t i = 0; i < n; i += w) {
        if (ad->n_uuids == ADV_MAX_UUIDS) {
            ad->n_dropped++;
            continue;
        }
        struct att_uuid *u = &ad->uuids[ad->n_uuids++];
        if (w == 4)
            *u = adv_uuid32(att_get32(p + i));
        else
            (void)att_uuid_from_wire(u, p + i, w); /* 2 or 16: cannot fail */
    }
    return 0;
}

/* Service data: a UUID of width w, then the service's bytes. */
static int take_svc(struct adv_data *ad, const uint8_t *p, size_t n, size_t w,
                    const char **why)
{
    if (n < w)
        return bad(why, "service data shorter than its UUID");
    if (ad->n_svc == ADV_MAX_SVC_DATA) {
        ad->n_dropped++;
        return 0;
    }
    struct adv_svc_data *s = &ad->svc[ad->n_svc++];
    if (w == 4)
        s->uuid = adv_uuid32(att_get32(p));
    else
        (void)att_uuid_from_wire(&s->uuid, p, w);
    s->data = p + w;
    s->len = n - w;
    return 0;
}

static int take_mfr(struct adv_data *ad, const uint8_t *p, size_t n, const char **why)
{
    if (n < 2)
        return bad(why, "manufacturer data shorter than its company identifier");
    if (ad->n_mfr == ADV_MAX_MFR) {
        ad->n_dropped++;
        return 0;
    }
    ad->mfr[ad->n_mfr++] = (struct adv_mfr_data){att_get16(p), p + 2, n - 2};
    return 0;
}

static int take_name(struct adv_data *ad, const uint8_t *p, size_t n, int complete,
                     const char **why)
{
    if (n > ADV_NAME_MAX)
        return bad(why, "local name longer than 248 bytes");
    /* a complete name wins over a shortened one, whatever the order */
    if ((ad->have & ADV_HAVE_NAME) && ad->name_complete && !complete)
        return 0;
    /* names are UTF-8 for people; control bytes would end up in logs and JSON */
    for (size_t i = 0; i < n; i++)
        ad->name[i] = p[i] < 0x20 || p[i] == 0x7F ? '?' : (char)p[i];
    ad->name[n] = '\0';
    ad->name_complete = complete;
    ad->have |= ADV_HAVE_NAME;
    return 0;
}

/* One structure's data (type t, n bytes at p). */
static int take(struct adv_data *ad, uint8_t t, const uint8_t *p, size_t n, const char **why)
{
    switch (t) {
    case ADV_T_FLAGS:
        if (n < 1)
            return bad(why, "empty flags");
        ad->flags = p[0];
        ad->have |= ADV_HAVE_FLAGS;
        return 0;
    case ADV_T_UUID16_SOME: case ADV_T_UUID16_ALL:
    case ADV_T_UUID32_SOME: case ADV_T_UUID32_ALL:
    case ADV_T_UUID128_SOME: case ADV_T_UUID128_ALL:
        ad->uuids_complete |= t & 1; /* the odd types are the complete lists */
        return take_uuids(ad, p, n, t <= ADV_T_UUID16_ALL ? 2 : t <= ADV_T_UUID32_ALL ? 4 : 16,
                          why);
    case ADV_T_NAME_SHORT: case ADV_T_NAME_COMPLETE:
        return take_name(ad, p, n, t == ADV_T_NAME_COMPLETE, why);
    case ADV_T_TX_POWER:
        if (n != 1)
            return bad(why, "TX power level not 1 byte");
        ad->tx_power = (int8_t)p[0];
        ad->have |= ADV_HAVE_TX_POWER;
        return 0;
    case ADV_T_SVC_DATA16:
        return take_svc(ad, p, n, 2, why);
    case ADV_T_SVC_DATA32:
        return take_svc(ad, p, n, 4, why);
    case ADV_T_SVC_DATA128:
        return take_svc(ad, p, n, 16, why);
    case ADV_T_MFR_DATA:
        return take_mfr(ad, p, n, why);
    default:
        ad->n_unknown++;
        return 0;
    }
}

int adv_parse(const uint8_t *p, size_t len, struct adv_data *ad, const char **why)
{
    memset(ad, 0, sizeof *ad);
    if (why)
        *why = NULL;
    if (len > ADV_DATA_MAX) {
        if (why)
            *why = "advertising data longer than 1650 bytes";
        return -EMSGSIZE;
    }
    size_t off = 0;
    while (off < len) {
        size_t n = p[off];
        if (n == 0)
            break;
        if (n > len - off - 1)
            return bad(why, "AD structure runs past the end of the data");
        int e = take(ad, p[off + 1], p + off + 2, n - 1, why);
        if (e < 0)
            return e;
        ad->n_structs++;
        off += 1 + n;
    }
    return 0;
}

int adv_has_uuid(const struct adv_data *ad, const struct att_uuid *u)
{
    for (size_t i = 0; i < ad->n_uuids; i++)
        if (att_uuid_eq(&ad->uuids[i], u))
            return 1;
    for (size_t i = 0; i < ad->n_svc; i++)
        if (att_uuid_eq(&ad->svc[i].uuid, u))
            return 1;
    return 0;
}
