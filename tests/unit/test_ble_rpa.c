/* drivers/ble_rpa.c and the irk value (daemon/conf_ble.c): ah() on the Core spec's sample
 * data (Vol 3 Part H Appendix D.7), BlueZ's key order, round trips (an address made with a
 * key resolves with it and not with others), addresses that are not resolvable private ones
 * never matching, the many-key resolver and its cache, libgcrypt's initialisation, and the
 * addresses tests/integration/test_ble_scan.sh advertises. */
#include <errno.h>
#include <gcrypt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/ble.h"
#include "drivers/ble_rpa.h"

/* The sample: IRK ec0234a357c8ad05341010a60a397d9b, prand 0x708194, hash 0x0dfbaa (most
 * significant octet first, as the spec writes them). */
static const uint8_t spec_irk[16] = {0xec, 0x02, 0x34, 0xa3, 0x57, 0xc8, 0xad, 0x05,
                                     0x34, 0x10, 0x10, 0xa6, 0x0a, 0x39, 0x7d, 0x9b};
/* The same key as BlueZ writes it in .../info: least significant octet first. */
#define SPEC_IRK_BLUEZ "9B7D390AA610103405ADC857A33402EC"

static uint64_t rng = 0x853c49e6748fea9bULL;
static uint8_t rnd(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint8_t)(rng >> 56);
}

static void rnd_key(uint8_t k[16])
{
    for (int i = 0; i < 16; i++)
        k[i] = rnd();
}

static struct hci_addr addr(const char *text)
{
    struct hci_addr a;
    assert_int_equal(hci_addr_parse(text, &a), 0);
    return a;
}

static void test_ah_spec_sample(void **state)
{
    uint8_t prand[3] = {0x70, 0x81, 0x94}, hash[3];
    assert_int_equal(rpa_ah(spec_irk, prand, hash), 0);
    assert_int_equal(hash[0], 0x0d);
    assert_int_equal(hash[1], 0xfb);
    assert_int_equal(hash[2], 0xaa);
    /* as an address: prand then hash, most significant first in text, reversed on the wire */
    struct hci_addr a;
    char text[18];
    assert_int_equal(rpa_make(spec_irk, prand, &a), 0);
    assert_string_equal(hci_addr_str(&a, text, sizeof text), "70:81:94:0D:FB:AA");
    assert_int_equal(a.b[0], 0xaa);
    assert_int_equal(a.b[5], 0x70);
    assert_int_equal(rpa_resolves(spec_irk, &a), 1);
    /* libgcrypt was initialised on the way, once and completely */
    assert_int_equal(rpa_init(), 0);
    assert_true(gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P));
}

static void test_irk_text_is_bluez_order(void **state)
{
    uint8_t k[BLE_IRK_SIZE];
    char why[160];
    assert_int_equal(ble_irk_parse(SPEC_IRK_BLUEZ, k, why, sizeof why), 0);
    assert_memory_equal(k, spec_irk, 16);
    /* either case */
    assert_int_equal(ble_irk_parse("9b7d390aa610103405adc857a33402ec", k, why, sizeof why), 0);
    assert_memory_equal(k, spec_irk, 16);
    /* the spec's own order is a different key: it does not resolve the sample */
    assert_int_equal(ble_irk_parse("EC0234A357C8AD05341010A60A397D9B", k, why, sizeof why), 0);
    struct hci_addr a = addr("70:81:94:0D:FB:AA");
    assert_int_equal(rpa_resolves(k, &a), 0);

    static const struct bad_irk { const char *in, *why; } bad[] = {
        {"", "expected 32 hex digits, got 0 characters"},
        {"9B7D390AA610103405ADC857A33402E", "got 31 characters"},
        {"9B7D390AA610103405ADC857A33402ECC", "got 33 characters"},
        {"0x9B7D390AA610103405ADC857A33402EC", "got 34 characters"},
        {" 9B7D390AA610103405ADC857A33402E", "not a hex digit at character 1"},
        {"9B7D390AA610103405ADC857A33402EG", "not a hex digit at character 32"},
        {"9B7D390AA610103405ADC857A3-402EC", "not a hex digit at character 27"},
        {"00000000000000000000000000000000", "all zeros"},
    };
    for (const struct bad_irk *b = bad; b < bad + sizeof bad / sizeof bad[0]; b++) {
        memset(k, 0x55, sizeof k);
        int e = ble_irk_parse(b->in, k, why, sizeof why);
        if (e != -EINVAL || !strstr(why, b->why))
            fail_msg("\"%s\": %d %s", b->in, e, why);
        /* a secret: the message never quotes it, and nothing is written on failure */
        assert_true(strlen(b->in) < 4 || !strstr(why, b->in + 2));
        assert_int_equal(k[0], 0x55);
    }
    assert_int_equal(ble_irk_parse("zz", k, NULL, 0), -EINVAL);
}

static void test_round_trips(void **state)
{
    for (int n = 0; n < 500; n++) {
        uint8_t k[16], other[16], prand[3] = {rnd(), rnd(), rnd()};
        rnd_key(k);
        rnd_key(other);
        struct hci_addr a;
        assert_int_equal(rpa_make(k, prand, &a), 0);
        /* the top two bits say "resolvable", the rest of prand is kept */
        assert_int_equal(a.b[5] >> 6, 1);
        assert_int_equal(a.b[5] & 0x3f, prand[0] & 0x3f);
        assert_int_equal(a.b[4], prand[1]);
        assert_int_equal(a.b[3], prand[2]);
        assert_true(rpa_is_resolvable(HCI_ADDR_RANDOM, &a));
        assert_int_equal(rpa_resolves(k, &a), 1);
        /* another key: with these seeds no 24-bit hash collides */
        assert_int_equal(rpa_resolves(other, &a), 0);
        /* one bit off in the hash or in prand: no longer this key's */
        struct hci_addr b = a;
        b.b[n % 3] ^= (uint8_t)(1 << (n % 8));
        assert_int_equal(rpa_resolves(k, &b), 0);
        b = a;
        b.b[3 + n % 3] ^= (uint8_t)(1 << (n % 6));
        assert_int_equal(rpa_resolves(k, &b), 0);
    }
}

static void test_other_addresses_never_match(void **state)
{
    uint8_t prand[3] = {0x70, 0x81, 0x94};
    struct hci_addr a;
    assert_int_equal(rpa_make(spec_irk, prand, &a), 0);
    /* the same 48 bits as a non-resolvable (00) or static (11) random address */
    struct hci_addr nrpa = a, stat = a;
    nrpa.b[5] &= 0x3f;
    stat.b[5] |= 0xc0;
    /* make the hash fit those prands too: only the type bits can refuse them */
    uint8_t p[3] = {nrpa.b[5], nrpa.b[4], nrpa.b[3]}, h[3];
    assert_int_equal(rpa_ah(spec_irk, p, h), 0);
    nrpa.b[2] = h[0], nrpa.b[1] = h[1], nrpa.b[0] = h[2];
    p[0] = stat.b[5];
    assert_int_equal(rpa_ah(spec_irk, p, h), 0);
    stat.b[2] = h[0], stat.b[1] = h[1], stat.b[0] = h[2];
    assert_false(rpa_is_resolvable(HCI_ADDR_RANDOM, &nrpa));
    assert_false(rpa_is_resolvable(HCI_ADDR_RANDOM, &stat));
    assert_int_equal(rpa_resolves(spec_irk, &nrpa), 0);
    assert_int_equal(rpa_resolves(spec_irk, &stat), 0);
    /* the RPA's bits reported as a public address, or as an identity the controller resolved */
    assert_false(rpa_is_resolvable(HCI_ADDR_PUBLIC, &a));
    assert_false(rpa_is_resolvable(HCI_ADDR_PUBLIC_ID, &a));
    assert_false(rpa_is_resolvable(HCI_ADDR_RANDOM_ID, &a));
    struct rpa_keys *keys = rpa_keys_new(&spec_irk, 1);
    assert_non_null(keys);
    assert_int_equal(rpa_keys_resolve(keys, HCI_ADDR_RANDOM, &a), 0);
    assert_int_equal(rpa_keys_resolve(keys, HCI_ADDR_PUBLIC, &a), -1);
    assert_int_equal(rpa_keys_resolve(keys, HCI_ADDR_RANDOM_ID, &a), -1);
    assert_int_equal(rpa_keys_resolve(keys, HCI_ADDR_ANONYMOUS, &a), -1);
    assert_int_equal(rpa_keys_resolve(keys, HCI_ADDR_RANDOM, &nrpa), -1);
    assert_int_equal(rpa_keys_resolve(keys, HCI_ADDR_RANDOM, &stat), -1);
    rpa_keys_free(keys);
}

static void test_many_keys_and_the_cache(void **state)
{
    enum { N = 40 };
    uint8_t (*k)[16] = calloc(N, 16);
    assert_non_null(k);
    for (int i = 0; i < N; i++)
        rnd_key(k[i]);
    memcpy(k[N - 1], k[3], 16); /* a key given twice: the first index answers */
    struct rpa_keys *keys = rpa_keys_new((const uint8_t(*)[16])k, N);
    assert_non_null(keys);
    /* several rounds over more addresses than the cache holds: every answer right, cached
     * or not, and addresses sharing a cache slot (the same low octet) kept apart */
    for (int round = 0; round < 3; round++) {
        rng = 77;
        for (int n = 0; n < 2 * RPA_CACHE; n++) {
            int want = n % (N + 1) - 1; /* -1: an address of a key not in the set */
            uint8_t prand[3] = {rnd(), rnd(), rnd()}, stranger[16];
            struct hci_addr a;
            rnd_key(stranger);
            assert_int_equal(rpa_make(want < 0 ? stranger : k[want], prand, &a), 0);
            int got = rpa_keys_resolve(keys, HCI_ADDR_RANDOM, &a);
            if (got != (want == N - 1 ? 3 : want))
                fail_msg("round %d address %d: key %d, expected %d", round, n, got, want);
        }
    }
    struct hci_addr x = addr("70:81:94:0D:FB:AA"), y = x;
    y.b[1] ^= 1; /* the same cache slot as x */
    assert_int_equal(rpa_keys_resolve(keys, HCI_ADDR_RANDOM, &x), -1);
    assert_int_equal(rpa_keys_resolve(keys, HCI_ADDR_RANDOM, &y), -1);
    rpa_keys_free(keys);
    /* the sample key among others */
    memcpy(k[5], spec_irk, 16);
    keys = rpa_keys_new((const uint8_t(*)[16])k, 6);
    assert_int_equal(rpa_keys_resolve(keys, HCI_ADDR_RANDOM, &x), 5);
    assert_int_equal(rpa_keys_resolve(keys, HCI_ADDR_RANDOM, &y), -1);
    assert_int_equal(rpa_keys_resolve(keys, HCI_ADDR_RANDOM, &x), 5);
    rpa_keys_free(keys);
    errno = 0;
    assert_null(rpa_keys_new((const uint8_t(*)[16])k, 0));
    assert_int_equal(errno, EINVAL);
    assert_null(rpa_keys_new(NULL, 1));
    assert_null(rpa_keys_new((const uint8_t(*)[16])k, HCI_SCAN_FILTER_MAX + 1));
    assert_null(rpa_keys_free(NULL));
    free(k);
}

/* What tests/integration/test_ble_scan.sh configures and fake_hci.py advertises. */
static void test_integration_addresses(void **state)
{
    uint8_t k1[16], k2[16], k3[16];
    assert_int_equal(ble_irk_parse(SPEC_IRK_BLUEZ, k1, NULL, 0), 0);
    assert_int_equal(ble_irk_parse("FFEEDDCCBBAA99887766554433221100", k2, NULL, 0), 0);
    assert_int_equal(ble_irk_parse("E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0", k3, NULL, 0), 0);
    struct hci_addr a1 = addr("70:81:94:0D:FB:AA"), a1b = addr("5A:1B:2C:02:81:32");
    struct hci_addr a2 = addr("5A:1B:2C:D7:44:F1");
    assert_int_equal(rpa_resolves(k1, &a1), 1);
    assert_int_equal(rpa_resolves(k1, &a1b), 1);
    assert_int_equal(rpa_resolves(k2, &a2), 1);
    /* hr4's key (k3) resolves none of them, k1 not k2's */
    assert_int_equal(rpa_resolves(k3, &a1) + rpa_resolves(k3, &a1b) + rpa_resolves(k3, &a2), 0);
    assert_int_equal(rpa_resolves(k1, &a2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ah_spec_sample),
        cmocka_unit_test(test_irk_text_is_bluez_order),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_other_addresses_never_match),
        cmocka_unit_test(test_many_keys_and_the_cache),
        cmocka_unit_test(test_integration_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
