/* libFuzzer harness for the bonding key file parser (daemon/ble_keys.c).
 *
 * The input is a key file's text. Whatever it is, ble_keys_parse must return 0 or -EINVAL
 * without a crash, leak or sanitizer report; on -EINVAL it says why and hands out no key; on
 * 0 every key is one the kernel takes (mgmt_ltk_valid), no two share a slot, and the keys
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
    for (size_t i = 0; i < n; i++) {
        if (!mgmt_ltk_valid(&keys[i].ltk))
            abort();
        for (size_t j = 0; j < i; j++)
            if (keys[i].controller == keys[j].controller &&
                keys[i].ltk.central == keys[j].ltk.central &&
                keys[i].ltk.addr_type == keys[j].ltk.addr_type &&
                memcmp(keys[i].ltk.addr, keys[j].ltk.addr, 6) == 0)
                abort();
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
