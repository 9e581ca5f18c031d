/* The `[source] transport` value of ble sources (daemon/ble.h, docs/config.md): parsed by
 * check-config (daemon/conf_check.c) and by the BLE source when it starts. Kept apart from the
 * rest of the BLE source so the configuration loader links without it (tests/fuzz). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
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

int ble_transport_parse(const char *s, struct ble_transport *ret, char *why, size_t cap)
{
    struct ble_transport t = {.kind = BLE_LINK_L2CAP, .addr_type = BLE_ADDR_PUBLIC,
                              .security = BLE_SEC_LOW};
    if (strncmp(s, "sim:", 4) == 0) {
        const char *p = s + 4;
        if (p[0] != '/')
            return fail(why, cap, "sim: needs an absolute socket path (sim:/PATH)");
        if (strlen(p) > BLE_SIM_PATH_MAX)
            return fail(why, cap, "socket path longer than %d bytes", BLE_SIM_PATH_MAX);
        t.kind = BLE_LINK_SIM;
        strcpy(t.path, p);
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

