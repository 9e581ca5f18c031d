/* libFuzzer harness for the bonding key file parser (daemon/ble_keys.c).
 *
 * The input is a key file's text. Whatever it is, ble_keys_parse must return 0 or -EINVAL
 * without a crash, leak or sanitizer report; on -EINVAL it says why and hands out no key; on
 * 0 every key is one the kernel takes (mgmt_ltk_valid or mgmt_irk_valid, by its kind, the
 * other kind's fields zero), no two share a slot, and the keys
 * written out by ble_keys_format parse back to exactly the same keys. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ble_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ble_key keys[MAX], again[MAX];
    size_t n = 99, m = 99;
    char why[256] = "";
    int r = ble_keys_parse((const char *)data, size, keys, MAX, &n, why, sizeof why);
    if (r == -EINVAL) {
        if (n != 0 || why[0] == '\0')
            abort();
        return 0;
    }
    if (r != 0 || n > MAX)
        abort();
    static const uint8_t zero_ltk[sizeof(struct mgmt_ltk)], zero_irk[sizeof(struct mgmt_irk)];
    for (size_t i = 0; i < n; i++) {
        const struct ble_key *a = &keys[i];
        /* a key of one kind, valid, with the other kind's fields all zero */
        if (a->kind == BLE_KEY_LTK) {
            if (!mgmt_ltk_valid(&a->ltk) || memcmp(&a->irk, zero_irk, sizeof zero_irk) != 0)
                abort();
        } else if (a->kind == BLE_KEY_IRK) {
            if (!mgmt_irk_valid(&a->irk) || memcmp(&a->ltk, zero_ltk, sizeof zero_ltk) != 0)
                abort();
        } else {
            abort();
        }
        for (size_t j = 0; j < i; j++) {
            const struct ble_key *b = &keys[j];
            if (a->kind != b->kind || a->controller != b->controller)
                continue;
            if (a->kind == BLE_KEY_LTK && a->ltk.central == b->ltk.central &&
                a->ltk.addr_type == b->ltk.addr_type && memcmp(a->ltk.addr, b->ltk.addr, 6) == 0)
                abort();
            if (a->kind == BLE_KEY_IRK && a->irk.addr_type == b->irk.addr_type &&
                memcmp(a->irk.addr, b->irk.addr, 6) == 0)
                abort();
        }
    }
    char *text = ble_keys_format(keys, n);
    if (!text)
        abort();
    if (ble_keys_parse(text, strlen(text), again, MAX, &m, why, sizeof why) != 0 || m != n ||
        memcmp(keys, again, n * sizeof *keys) != 0)
        abort();
    free(text);
    return 0;
}
