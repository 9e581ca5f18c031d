/* The `[source] transport`, `hci` and `irk` values of ble sources (daemon/ble.h,
 * docs/config.md): parsed by check-config (daemon/conf_check.c) and by the BLE source when it
 * starts. Kept apart from the rest of the BLE source so the configuration loader links without
 * it (tests/fuzz). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ble.h"

__attribute__((format(printf, 3, 4)))
static int fail(char *why, size_t cap, const char *fmt, ...)
{
    if (why && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* The PATH of a "sim:PATH" value (transport and hci alike: a Unix socket) into dst. */
static int sim_path(const char *p, char dst[BLE_SIM_PATH_MAX + 1], char *why, size_t cap)
{
    if (p[0] != '/')
        return fail(why, cap, "sim: needs an absolute socket path (sim:/PATH)");
    if (strlen(p) > BLE_SIM_PATH_MAX)
        return fail(why, cap, "socket path longer than %d bytes", BLE_SIM_PATH_MAX);
    strcpy(dst, p);
    return 0;
}

int ble_transport_parse(const char *s, struct ble_transport *ret, char *why, size_t cap)
{
    struct ble_transport t = {.kind = BLE_LINK_L2CAP, .addr_type = BLE_ADDR_PUBLIC,
                              .security = BLE_SEC_LOW};
    if (strncmp(s, "sim:", 4) == 0) {
        if (sim_path(s + 4, t.path, why, cap) < 0)
            return -EINVAL;
        t.kind = BLE_LINK_SIM;
        *ret = t;
        return 0;
    }
    if (s[0] == '\0' || strcmp(s, "l2cap") == 0) {
        *ret = t;
        return 0;
    }
    if (strncmp(s, "l2cap:", 6) != 0)
        return fail(why, cap, "unknown transport (expected l2cap, l2cap:OPTIONS or sim:/PATH)");
    static const struct { const char *name; int addr; int sec; } opts[] = {
        {"public", BLE_ADDR_PUBLIC, 0}, {"random", BLE_ADDR_RANDOM, 0},
        {"low", -1, BLE_SEC_LOW},       {"medium", -1, BLE_SEC_MEDIUM},
        {"high", -1, BLE_SEC_HIGH},     {"fips", -1, BLE_SEC_FIPS},
    };
    int have_addr = 0, have_sec = 0;
    const char *p = s + 6;
    for (;;) {
        size_t n = strcspn(p, ",");
        size_t k = 0;
        for (; k < sizeof opts / sizeof opts[0]; k++)
            if (strlen(opts[k].name) == n && strncmp(opts[k].name, p, n) == 0)
                break;
        if (k == sizeof opts / sizeof opts[0])
            return fail(why, cap, "unknown l2cap option \"%.*s\" (expected public, random, low, "
                        "medium, high or fips)", (int)n, p);
        if (opts[k].sec == 0) {
            if (have_addr++)
                return fail(why, cap, "two address types");
            t.addr_type = (enum ble_addr_type)opts[k].addr;
        } else {
            if (have_sec++)
                return fail(why, cap, "two security levels");
            t.security = (enum ble_security)opts[k].sec;
        }
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    *ret = t;
    return 0;
}

int ble_hci_parse(const char *s, struct ble_hci *ret, char *why, size_t cap)
{
    struct ble_hci h = {.kind = BLE_HCI_AUTO, .dev = -1};
    if (strncmp(s, "sim:", 4) == 0) {
        if (sim_path(s + 4, h.path, why, cap) < 0)
            return -EINVAL;
        h.kind = BLE_HCI_SIM;
    } else if (strncmp(s, "hci", 3) == 0) {
        /* the kernel's names: hci%d, without leading zeros, below HCI_MAX_ID */
        const char *d = s + 3;
        size_t n = strspn(d, "0123456789");
        if (n == 0 || d[n] || (n > 1 && d[0] == '0') || n > 4)
            return fail(why, cap, "invalid adapter \"%.12s%s\" (expected hciN, N 0..%d)", s,
                        strlen(s) > 12 ? "..." : "", BLE_HCI_DEV_MAX);
        h.kind = BLE_HCI_DEV;
        h.dev = (int)strtol(d, NULL, 10);
    } else if (s[0] && strcmp(s, "auto") != 0) {
        return fail(why, cap, "unknown controller (expected auto, hciN or sim:/PATH)");
    }
    *ret = h;
    return 0;
}

int ble_mgmt_parse(const char *s, struct ble_mgmt_where *ret, char *why, size_t cap)
{
    struct ble_mgmt_where w = {.kind = BLE_MGMT_AUTO};
    if (strncmp(s, "sim:", 4) == 0) {
        if (sim_path(s + 4, w.path, why, cap) < 0)
            return -EINVAL;
        w.kind = BLE_MGMT_SIM;
    } else if (strcmp(s, "off") == 0) {
        w.kind = BLE_MGMT_OFF;
    } else if (s[0] && strcmp(s, "auto") != 0) {
        return fail(why, cap, "expected auto, off or sim:/PATH");
    }
    *ret = w;
    return 0;
}

int ble_irk_parse(const char *s, uint8_t ret[BLE_IRK_SIZE], char *why, size_t cap)
{
    uint8_t k[BLE_IRK_SIZE];
    size_t n = strlen(s);
    /* the value is a secret: messages describe it, never quote it */
    if (n != 2 * BLE_IRK_SIZE)
        return fail(why, cap, "expected 32 hex digits, got %zu characters", n);
    size_t hex = strspn(s, "0123456789abcdefABCDEF");
    if (hex < n)
        return fail(why, cap, "not a hex digit at character %zu", hex + 1);
    unsigned any = 0;
    for (size_t i = 0; i < BLE_IRK_SIZE; i++) {
        char pair[3] = {s[2 * i], s[2 * i + 1], '\0'};
        /* BlueZ's text is least significant octet first; the key is the other way round */
        k[BLE_IRK_SIZE - 1 - i] = (uint8_t)strtoul(pair, NULL, 16);
        any |= k[BLE_IRK_SIZE - 1 - i];
    }
    if (!any)
        return fail(why, cap, "all zeros, which stands for no key: the device did not hand "
                    "one out");
    memcpy(ret, k, sizeof k);
    explicit_bzero(k, sizeof k);
    return 0;
}
