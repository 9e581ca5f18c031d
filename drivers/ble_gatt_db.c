/* The discovered GATT database (struct gatt_db): building and checking it, lookups, the
 * compact export/import blob, and the attribute cache of exported blobs keyed by device,
 * which reports its changes to an observer (the daemon keeps a copy in its store).
 *
 * Invariants of a finished db: services sorted by start and disjoint; characteristics sorted
 * by declaration, each inside its service, decl < value <= end, and ends not overlapping the
 * next declaration; descriptors sorted, each in (value, end] of its characteristic. The blob
 * import goes through the same add/finish checks as discovery, so a corrupt or hostile blob
 * cannot produce a db the client would not have accepted from a server.
 * No I/O, no clock; single-threaded. */
#include "drivers/ble_gatt_db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOB_MAGIC "EGD\x01"
#define BLOB_F_HASH 0x01
#define E_PRIMARY 0x01
#define E_UUID128 0x02

static int grow(void **arr, size_t *cap, size_t need, size_t elem, size_t max)
{
    if (need > max)
        return -ENOBUFS;
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 8;
    if (n < need)
        n = need;
    if (n > max)
        n = max;
    void *p = realloc(*arr, n * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

void gatt_db_clear(struct gatt_db *db)
{
    free(db->svc);
    free(db->chrc);
    free(db->desc);
    memset(db, 0, sizeof *db);
}

int gatt_db_add_service(struct gatt_db *db, uint16_t start, uint16_t end,
                        const struct att_uuid *uuid, int primary)
{
    if (start == 0 || end < start)
        return -EPROTO;
    int r = grow((void **)&db->svc, &db->cap_svc, db->n_svc + 1, sizeof *db->svc,
                 GATT_MAX_SERVICES);
    if (r < 0)
        return r;
    db->svc[db->n_svc++] = (struct gatt_service){.start = start, .end = end, .uuid = *uuid,
                                                 .primary = (uint8_t)!!primary};
    return 0;
}

int gatt_db_finish_services(struct gatt_db *db)
{
    for (size_t i = 1; i < db->n_svc; i++) {
        struct gatt_service s = db->svc[i];
        size_t j = i;
        for (; j > 0 && db->svc[j - 1].start > s.start; j--)
            db->svc[j] = db->svc[j - 1];
        db->svc[j] = s;
    }
    for (size_t i = 1; i < db->n_svc; i++)
        if (db->svc[i].start <= db->svc[i - 1].end)
            return -EPROTO;
    return 0;
}

/* Index of the service holding handle h, or -1. */
static long service_of(const struct gatt_db *db, uint16_t h)
{
    size_t lo = 0, hi = db->n_svc;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (db->svc[mid].end < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < db->n_svc && db->svc[lo].start <= h ? (long)lo : -1;
}

int gatt_db_add_chrc(struct gatt_db *db, uint16_t decl, uint8_t props, uint16_t value,
                     const struct att_uuid *uuid)
{
    if (value <= decl || (db->n_chrc && decl <= db->chrc[db->n_chrc - 1].decl))
        return -EPROTO;
    long s = service_of(db, decl);
    if (s < 0)
        return 0;
    if (value > db->svc[s].end)
        return -EPROTO;
    int r = grow((void **)&db->chrc, &db->cap_chrc, db->n_chrc + 1, sizeof *db->chrc,
                 GATT_MAX_CHRCS);
    if (r < 0)
        return r;
    db->chrc[db->n_chrc++] = (struct gatt_chrc){.decl = decl, .value = value, .props = props,
                                                .uuid = *uuid, .service = (uint16_t)s};
    return 0;
}

int gatt_db_finish_chrcs(struct gatt_db *db)
{
    for (size_t i = 0; i < db->n_svc; i++)
        db->svc[i].first_chrc = db->svc[i].n_chrc = 0;
    for (size_t i = 0; i < db->n_chrc; i++) {
        struct gatt_chrc *c = &db->chrc[i];
        struct gatt_service *s = &db->svc[c->service];
        c->end = s->end;
        if (i + 1 < db->n_chrc && db->chrc[i + 1].service == c->service)
            c->end = (uint16_t)(db->chrc[i + 1].decl - 1);
        if (c->value > c->end)
            return -EPROTO;
        if (s->n_chrc++ == 0)
            s->first_chrc = (uint16_t)i;
    }
    return 0;
}

/* Index of the characteristic whose descriptor range (value, end] holds h, or -1. */
static long chrc_of(const struct gatt_db *db, uint16_t h)
{
    size_t lo = 0, hi = db->n_chrc;
    while (lo < hi) {       /* first declaration >= h */
        size_t mid = (lo + hi) / 2;
        if (db->chrc[mid].decl < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -1;
    const struct gatt_chrc *c = &db->chrc[lo - 1];
    return h > c->value && h <= c->end ? (long)(lo - 1) : -1;
}

int gatt_db_add_desc(struct gatt_db *db, uint16_t handle, const struct att_uuid *uuid)
{
    if (chrc_of(db, handle) < 0 || (db->n_desc && handle <= db->desc[db->n_desc - 1].handle))
        return -EPROTO;
    int r = grow((void **)&db->desc, &db->cap_desc, db->n_desc + 1, sizeof *db->desc,
                 GATT_MAX_DESCS);
    if (r < 0)
        return r;
    db->desc[db->n_desc++] = (struct gatt_desc){.handle = handle, .uuid = *uuid};
    return 0;
}

int gatt_db_finish(struct gatt_db *db)
{
    struct att_uuid cccd = att_uuid16(GATT_CCCD);
    for (size_t i = 0; i < db->n_chrc; i++)
        db->chrc[i].first_desc = db->chrc[i].n_desc = db->chrc[i].cccd = 0;
    for (size_t i = 0; i < db->n_desc; i++) {
        long c = chrc_of(db, db->desc[i].handle);
        if (c < 0)
            return -EPROTO;
        struct gatt_chrc *ch = &db->chrc[c];
        if (ch->n_desc++ == 0)
            ch->first_desc = (uint16_t)i;
        if (!ch->cccd && att_uuid_eq(&db->desc[i].uuid, &cccd))
            ch->cccd = db->desc[i].handle;
    }
    return 0;
}

static int outside(uint16_t h, uint16_t lo, uint16_t hi)
{
    return h < lo || h > hi;
}

/* out: a's entries outside [lo, hi] (lo > hi: all of them) and all of b's, merged in handle
 * order. a's services must lie wholly outside or wholly inside the range (else -ERANGE); so
 * then do their characteristics and descriptors. */
static int combine(struct gatt_db *out, const struct gatt_db *a, uint16_t lo, uint16_t hi,
                   const struct gatt_db *b)
{
    int r = 0;
    size_t i, j;
    memset(out, 0, sizeof *out);
    for (i = 0; r == 0 && i < a->n_svc; i++)
        if (!outside(a->svc[i].start, lo, hi) != !outside(a->svc[i].end, lo, hi) ||
            (a->svc[i].start < lo && a->svc[i].end > hi))
            r = -ERANGE;
    for (i = j = 0; r == 0 && (i < a->n_svc || j < b->n_svc);) {
        int in_a = j == b->n_svc || (i < a->n_svc && a->svc[i].start < b->svc[j].start);
        const struct gatt_service *s = in_a ? &a->svc[i++] : &b->svc[j++];
        if (!in_a || outside(s->start, lo, hi))
            r = gatt_db_add_service(out, s->start, s->end, &s->uuid, s->primary);
    }
    if (r == 0)
        r = gatt_db_finish_services(out);
    for (i = j = 0; r == 0 && (i < a->n_chrc || j < b->n_chrc);) {
        int in_a = j == b->n_chrc || (i < a->n_chrc && a->chrc[i].decl < b->chrc[j].decl);
        const struct gatt_chrc *c = in_a ? &a->chrc[i++] : &b->chrc[j++];
        if (!in_a || outside(c->decl, lo, hi))
            r = gatt_db_add_chrc(out, c->decl, c->props, c->value, &c->uuid);
    }
    if (r == 0)
        r = gatt_db_finish_chrcs(out);
    for (i = j = 0; r == 0 && (i < a->n_desc || j < b->n_desc);) {
        int in_a = j == b->n_desc || (i < a->n_desc && a->desc[i].handle < b->desc[j].handle);
        const struct gatt_desc *d = in_a ? &a->desc[i++] : &b->desc[j++];
        if (!in_a || outside(d->handle, lo, hi))
            r = gatt_db_add_desc(out, d->handle, &d->uuid);
    }
    if (r == 0)
        r = gatt_db_finish(out);
    out->n_incl = (lo > hi ? a->n_incl : 0) + b->n_incl; /* includes are counted, not kept */
    if (r < 0)
        gatt_db_clear(out);
    return r;
}

int gatt_db_outside(struct gatt_db *out, const struct gatt_db *db, uint16_t lo, uint16_t hi)
{
    const struct gatt_db none = {0};
    return combine(out, db, lo, hi, &none);
}

int gatt_db_merge(struct gatt_db *out, const struct gatt_db *a, const struct gatt_db *b)
{
    return combine(out, a, 1, 0, b);
}

const struct gatt_service *gatt_db_service(const struct gatt_db *db, const struct att_uuid *uuid)
{
    for (size_t i = 0; i < db->n_svc; i++)
        if (att_uuid_eq(&db->svc[i].uuid, uuid))
            return &db->svc[i];
    return NULL;
}

const struct gatt_chrc *gatt_db_chrc(const struct gatt_db *db, const struct gatt_service *s,
                                     const struct att_uuid *uuid)
{
    size_t from = s ? s->first_chrc : 0, n = s ? s->n_chrc : db->n_chrc;
    for (size_t i = from; i < from + n && i < db->n_chrc; i++)
        if (att_uuid_eq(&db->chrc[i].uuid, uuid))
            return &db->chrc[i];
    return NULL;
}

const struct gatt_chrc *gatt_db_chrc_by_value(const struct gatt_db *db, uint16_t value_handle)
{
    for (size_t i = 0; i < db->n_chrc; i++)
        if (db->chrc[i].value == value_handle)
            return &db->chrc[i];
    return NULL;
}

/* ---- blob ---- */

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static size_t put_uuid(uint8_t *p, uint8_t *flags, const struct att_uuid *u)
{
    size_t n = att_uuid_to_wire(u, p);
    if (n == 16)
        *flags |= E_UUID128;
    return n;
}

int gatt_db_export(const struct gatt_db *db, uint8_t **ret, size_t *ret_len)
{
    size_t cap = 4 + 1 + 16 + 8 + db->n_svc * 22 + db->n_chrc * 22 + db->n_desc * 19 + 4;
    uint8_t *b = malloc(cap), *p = b;
    if (!b)
        return -ENOMEM;
    memcpy(p, BLOB_MAGIC, 4);
    p += 4;
    *p++ = db->have_hash ? BLOB_F_HASH : 0;
    if (db->have_hash) {
        memcpy(p, db->hash, 16);
        p += 16;
    }
    att_put16(p, (uint16_t)db->n_svc);
    att_put16(p + 2, (uint16_t)db->n_chrc);
    att_put16(p + 4, (uint16_t)db->n_desc);
    att_put16(p + 6, (uint16_t)(db->n_incl > 0xFFFF ? 0xFFFF : db->n_incl));
    p += 8;
    for (size_t i = 0; i < db->n_svc; i++) {
        const struct gatt_service *s = &db->svc[i];
        uint8_t *fl = p + 4;
        att_put16(p, s->start);
        att_put16(p + 2, s->end);
        *fl = s->primary ? E_PRIMARY : 0;
        p += 5 + put_uuid(p + 5, fl, &s->uuid);
    }
    for (size_t i = 0; i < db->n_chrc; i++) {
        const struct gatt_chrc *c = &db->chrc[i];
        uint8_t *fl = p + 5;
        att_put16(p, c->decl);
        att_put16(p + 2, c->value);
        p[4] = c->props;
        *fl = 0;
        p += 6 + put_uuid(p + 6, fl, &c->uuid);
    }
    for (size_t i = 0; i < db->n_desc; i++) {
        uint8_t *fl = p + 2;
        att_put16(p, db->desc[i].handle);
        *fl = 0;
        p += 3 + put_uuid(p + 3, fl, &db->desc[i].uuid);
    }
    att_put32(p, fnv1a(b, (size_t)(p - b)));
    p += 4;
    *ret = b;
    *ret_len = (size_t)(p - b);
    return 0;
}

/* Reads a flags byte and the UUID it announces at *p (bounded by end). */
static int get_uuid(const uint8_t **p, const uint8_t *end, uint8_t flags, struct att_uuid *u)
{
    size_t n = flags & E_UUID128 ? 16 : 2;
    if ((size_t)(end - *p) < n)
        return -EBADMSG;
    att_uuid_from_wire(u, *p, n);
    *p += n;
    return 0;
}

static int import(struct gatt_db *db, const uint8_t *b, size_t len)
{
    if (len < 4 + 1 + 8 + 4 || memcmp(b, BLOB_MAGIC, 4) ||
        fnv1a(b, len - 4) != att_get32(b + len - 4))
        return -EBADMSG;
    const uint8_t *p = b + 5, *end = b + len - 4;
    if (b[4] & ~BLOB_F_HASH)
        return -EBADMSG;
    if (b[4] & BLOB_F_HASH) {
        if (end - p < 16)
            return -EBADMSG;
        db->have_hash = 1;
        memcpy(db->hash, p, 16);
        p += 16;
    }
    if (end - p < 8)
        return -EBADMSG;
    size_t ns = att_get16(p), nc = att_get16(p + 2), nd = att_get16(p + 4);
    db->n_incl = att_get16(p + 6);
    p += 8;
    if (ns > GATT_MAX_SERVICES || nc > GATT_MAX_CHRCS || nd > GATT_MAX_DESCS)
        return -ENOBUFS;
    struct att_uuid u;
    int r;
    for (size_t i = 0; i < ns; i++) {
        if (end - p < 5 || (p[4] & ~(E_PRIMARY | E_UUID128)))
            return -EBADMSG;
        uint16_t s = att_get16(p), e = att_get16(p + 2);
        uint8_t fl = p[4];
        p += 5;
        if ((r = get_uuid(&p, end, fl, &u)) < 0 ||
            (r = gatt_db_add_service(db, s, e, &u, fl & E_PRIMARY)) < 0)
            return r;
    }
    if ((r = gatt_db_finish_services(db)) < 0)
        return r;
    for (size_t i = 0; i < nc; i++) {
        if (end - p < 6 || (p[5] & ~E_UUID128))
            return -EBADMSG;
        uint16_t d = att_get16(p), v = att_get16(p + 2);
        uint8_t props = p[4], fl = p[5];
        size_t before = db->n_chrc;
        p += 6;
        if ((r = get_uuid(&p, end, fl, &u)) < 0 ||
            (r = gatt_db_add_chrc(db, d, props, v, &u)) < 0)
            return r;
        if (db->n_chrc == before)
            return -EBADMSG;   /* exported characteristics always lie in a service */
    }
    if ((r = gatt_db_finish_chrcs(db)) < 0)
        return r;
    for (size_t i = 0; i < nd; i++) {
        if (end - p < 3 || (p[2] & ~E_UUID128))
            return -EBADMSG;
        uint16_t h = att_get16(p);
        uint8_t fl = p[2];
        p += 3;
        if ((r = get_uuid(&p, end, fl, &u)) < 0 || (r = gatt_db_add_desc(db, h, &u)) < 0)
            return r;
    }
    if (p != end)
        return -EBADMSG;
    return gatt_db_finish(db);
}

int gatt_db_import(struct gatt_db *db, const uint8_t *blob, size_t len)
{
    gatt_db_clear(db);
    int r = import(db, blob, len);
    if (r < 0) {
        gatt_db_clear(db);
        return r == -EPROTO ? -EBADMSG : r;
    }
    return 0;
}

/* ---- cache ---- */

struct entry {
    char device[GATT_DEVICE_MAX + 1];
    uint8_t *blob;
    size_t len;
    uint64_t used;
};

struct gatt_cache {
    struct entry *e;
    size_t n, max;
    uint64_t tick;
    gatt_cache_change_fn changed;
    void *changed_data;
};

static void report(const struct gatt_cache *c, const char *device, const uint8_t *blob,
                   size_t len)
{
    if (c->changed)
        c->changed(device, blob, len, c->changed_data);
}

void gatt_cache_set_observer(struct gatt_cache *c, gatt_cache_change_fn fn, void *user_data)
{
    c->changed = fn;
    c->changed_data = fn ? user_data : NULL;
}

struct gatt_cache *gatt_cache_new(size_t max_devices)
{
    if (max_devices == 0)
        return NULL;
    struct gatt_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->e = calloc(max_devices, sizeof *c->e))) {
        free(c);
        return NULL;
    }
    c->max = max_devices;
    return c;
}

struct gatt_cache *gatt_cache_free(struct gatt_cache *c)
{
    if (!c)
        return NULL;
    for (size_t i = 0; i < c->n; i++)
        free(c->e[i].blob);
    free(c->e);
    free(c);
    return NULL;
}

static struct entry *find(const struct gatt_cache *c, const char *device)
{
    for (size_t i = 0; device && i < c->n; i++)
        if (!strcmp(c->e[i].device, device))
            return &c->e[i];
    return NULL;
}

int gatt_cache_import(struct gatt_cache *c, const char *device, const uint8_t *blob, size_t len)
{
    if (!device || !*device || strlen(device) > GATT_DEVICE_MAX)
        return -EINVAL;
    struct gatt_db db = {0};
    int r = gatt_db_import(&db, blob, len);
    gatt_db_clear(&db);
    if (r < 0)
        return r;
    struct entry *e = find(c, device);
    if (e && e->len == len && !memcmp(e->blob, blob, len)) {
        e->used = ++c->tick;   /* the same database again (a server without a hash) */
        return 0;
    }
    uint8_t *copy = malloc(len);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, blob, len);
    char evicted[GATT_DEVICE_MAX + 1] = "";
    if (!e && c->n < c->max) {
        e = &c->e[c->n++];
        memset(e, 0, sizeof *e);
    } else if (!e) {
        e = &c->e[0];
        for (size_t i = 1; i < c->n; i++)
            if (c->e[i].used < e->used)
                e = &c->e[i];
        snprintf(evicted, sizeof evicted, "%s", e->device);
    }
    free(e->blob);
    snprintf(e->device, sizeof e->device, "%s", device);
    e->blob = copy;
    e->len = len;
    e->used = ++c->tick;
    if (evicted[0])
        report(c, evicted, NULL, 0);
    report(c, device, copy, len);
    return 0;
}

int gatt_cache_export(struct gatt_cache *c, const char *device, const uint8_t **ret,
                      size_t *ret_len)
{
    struct entry *e = find(c, device);
    if (!e)
        return -ENOENT;
    e->used = ++c->tick;
    *ret = e->blob;
    *ret_len = e->len;
    return 0;
}

int gatt_cache_forget(struct gatt_cache *c, const char *device)
{
    struct entry *e = find(c, device);
    if (!e)
        return -ENOENT;
    char device_copy[GATT_DEVICE_MAX + 1];
    snprintf(device_copy, sizeof device_copy, "%s", e->device);  /* device may be e's own */
    free(e->blob);
    *e = c->e[--c->n];
    memset(&c->e[c->n], 0, sizeof c->e[c->n]);   /* the vacated slot holds nothing */
    report(c, device_copy, NULL, 0);
    return 0;
}

size_t gatt_cache_count(const struct gatt_cache *c)
{
    return c->n;
}
