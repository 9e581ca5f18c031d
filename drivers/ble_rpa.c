/* Resolvable private addresses: ah() and a resolver over many keys (drivers/ble_rpa.h). */
#include <errno.h>
#include <gcrypt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/ble_rpa.h"

/* ---- libgcrypt ---------------------------------------------------------------------- */

static int gcrypt_ready;

static void init_once(void)
{
    /* libsystemd initialises libgcrypt when it seals a journal; a second initialisation
     * would be refused, and what it set stays valid for AES */
    if (gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) {
        gcrypt_ready = 1;
        return;
    }
    /* also initialises libgcrypt's subsystems; NULL if the library is older than the headers */
    if (!gcry_check_version(GCRYPT_VERSION))
        return;
    /* no secure memory: IRKs sit in the ordinary memory of the configuration anyway, and
     * libgcrypt's mlock'ed pool would need a capability the service does not have (and warn) */
    gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    gcrypt_ready = 1;
}

int rpa_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_once);
    return gcrypt_ready ? 0 : -ENOSYS;
}

/* An AES-128-ECB handle keyed with irk: 0 or -errno. */
static int open_key(const uint8_t irk[RPA_IRK_SIZE], gcry_cipher_hd_t *ret)
{
    int e = rpa_init();
    if (e < 0)
        return e;
    if (gcry_cipher_open(ret, GCRY_CIPHER_AES128, GCRY_CIPHER_MODE_ECB, 0))
        return -EIO;
    if (gcry_cipher_setkey(*ret, irk, RPA_IRK_SIZE)) {
        gcry_cipher_close(*ret);
        return -EIO;
    }
    return 0;
}

/* e(k, 0^104 || prand) mod 2^24 with the key of h. */
static int ah_with(gcry_cipher_hd_t h, const uint8_t prand[3], uint8_t hash[3])
{
    uint8_t block[16] = {0};
    memcpy(block + 13, prand, 3);
    if (gcry_cipher_encrypt(h, block, sizeof block, NULL, 0))
        return -EIO;
    memcpy(hash, block + 13, 3);
    return 0;
}

/* ---- one key -------------------------------------------------------------------------- */

int rpa_ah(const uint8_t irk[RPA_IRK_SIZE], const uint8_t prand[3], uint8_t ret_hash[3])
{
    gcry_cipher_hd_t h;
    int e = open_key(irk, &h);
    if (e < 0)
        return e;
    e = ah_with(h, prand, ret_hash);
    gcry_cipher_close(h);
    return e;
}

int rpa_is_resolvable(uint8_t addr_type, const struct hci_addr *a)
{
    return addr_type == HCI_ADDR_RANDOM && (a->b[5] >> 6) == 1;
}

/* The address's prand and hash, most significant octet first. */
static void split(const struct hci_addr *a, uint8_t prand[3], uint8_t hash[3])
{
    for (int i = 0; i < 3; i++) {
        prand[i] = a->b[5 - i];
        hash[i] = a->b[2 - i];
    }
}

int rpa_make(const uint8_t irk[RPA_IRK_SIZE], const uint8_t prand[3], struct hci_addr *ret)
{
    uint8_t p[3] = {(uint8_t)((prand[0] & 0x3F) | 0x40), prand[1], prand[2]}, hash[3];
    int e = rpa_ah(irk, p, hash);
    if (e < 0)
        return e;
    for (int i = 0; i < 3; i++) {
        ret->b[5 - i] = p[i];
        ret->b[2 - i] = hash[i];
    }
    return 0;
}

int rpa_resolves(const uint8_t irk[RPA_IRK_SIZE], const struct hci_addr *a)
{
    uint8_t prand[3], hash[3], want[3];
    if (!rpa_is_resolvable(HCI_ADDR_RANDOM, a))
        return 0;
    split(a, prand, want);
    int e = rpa_ah(irk, prand, hash);
    return e < 0 ? e : memcmp(hash, want, 3) == 0;
}

/* ---- many keys ------------------------------------------------------------------------ */

struct rpa_verdict {
    struct hci_addr a;
    int16_t key;                 /* index of the key, -1: none */
    uint8_t used;
};

struct rpa_keys {
    size_t n;
    gcry_cipher_hd_t *h;
    struct rpa_verdict cache[RPA_CACHE];
};

struct rpa_keys *rpa_keys_new(const uint8_t (*irks)[RPA_IRK_SIZE], size_t n)
{
    if (n == 0 || n > HCI_SCAN_FILTER_MAX || !irks) {
        errno = EINVAL;
        return NULL;
    }
    struct rpa_keys *k = calloc(1, sizeof *k);
    if (!k || !(k->h = calloc(n, sizeof *k->h))) {
        free(k);
        errno = ENOMEM;
        return NULL;
    }
    for (; k->n < n; k->n++) {
        int e = open_key(irks[k->n], &k->h[k->n]);
        if (e < 0) {
            rpa_keys_free(k);
            errno = -e;
            return NULL;
        }
    }
    return k;
}

struct rpa_keys *rpa_keys_free(struct rpa_keys *k)
{
    if (!k)
        return NULL;
    for (size_t i = 0; i < k->n; i++)
        gcry_cipher_close(k->h[i]);
    free(k->h);
    free(k);
    return NULL;
}

int rpa_keys_resolve(struct rpa_keys *k, uint8_t addr_type, const struct hci_addr *a)
{
    if (!rpa_is_resolvable(addr_type, a))
        return -1;
    /* the hash octets are AES output: evenly spread over the cache */
    struct rpa_verdict *v = &k->cache[a->b[0] % RPA_CACHE];
    if (v->used && memcmp(v->a.b, a->b, 6) == 0)
        return v->key;
    uint8_t prand[3], want[3], hash[3];
    split(a, prand, want);
    int key = -1;
    for (size_t i = 0; i < k->n && key < 0; i++)
        if (ah_with(k->h[i], prand, hash) == 0 && memcmp(hash, want, 3) == 0)
            key = (int)i;
    *v = (struct rpa_verdict){*a, (int16_t)key, 1};
    return key;
}
