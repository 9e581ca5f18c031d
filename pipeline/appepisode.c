/* App episodes from a compact log of screen and app events (appepisode.h has the rules). */
#include "pipeline/appepisode.h"
#include "pipeline/sources.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* An event is one uint64_t: bits 63..20 the time (ms since EV_TS_MIN: 44 bits cover the
 * documented range), bits 19..17 the kind, bits 16..0 the app index. Bit 19 is set for the
 * app kinds, so (e >> 19) orders by time and then screen before app. */
#define TS_SHIFT 20
#define KIND_SHIFT 17
#define APP_MASK ((1u << KIND_SHIFT) - 1)
#define NONE ((size_t)-1)

enum { K_OFF = SCREEN_OFF, K_ON = SCREEN_ON, K_LOCKED = SCREEN_LOCKED,
       K_UNLOCKED = SCREEN_UNLOCKED, K_FG = 4, K_BG = 5 };

static uint64_t pack(int64_t ts, unsigned kind, uint32_t app)
{
    return ((uint64_t)(ts - EV_TS_MIN) << TS_SHIFT) | ((uint64_t)kind << KIND_SHIFT) | app;
}
static int64_t ev_ts(uint64_t e) { return (int64_t)(e >> TS_SHIFT) + EV_TS_MIN; }
static unsigned ev_kind(uint64_t e) { return (unsigned)(e >> KIND_SHIFT) & 7u; }
static uint32_t ev_app(uint64_t e) { return (uint32_t)(e & APP_MASK); }
static uint64_t ev_order(uint64_t e) { return e >> (KIND_SHIFT + 2); }

void aep_init(struct aep_log *l)
{
    memset(l, 0, sizeof *l);
    l->tail_ok = 1;
    l->tail_unlock = INT64_MIN;
    l->resolved = INT64_MIN;
}

void aep_release(struct aep_log *l)
{
    free(l->ev);
    free(l->app);
    free(l->slot);
    aep_init(l);
}

int64_t aep_first_ts(const struct aep_log *l) { return l->n ? ev_ts(l->ev[0]) : INT64_MAX; }

/* ---- the app table ------------------------------------------------------------------ */

uint64_t aep_hash(const char *s) { return str_hash64(s); }

/* An item matches a package id exactly or, when it ends with '.', as a prefix. */
static int list_match(const char (*list)[EV_NAME_MAX + 1], size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(list[i]);
        if (len && list[i][len - 1] == '.' ? strncmp(name, list[i], len) == 0
                                           : strcmp(name, list[i]) == 0)
            return 1;
    }
    return 0;
}

static unsigned classify(const char *name, const struct pipeline_conf *c,
                         const struct pipeline_participant_conf *pc)
{
    unsigned f = 0;
    if ((c->n_app_include == 0 || list_match(c->app_include, c->n_app_include, name)) &&
        !list_match(c->app_exclude, c->n_app_exclude, name))
        f |= AEP_IN_ALL;
    if (pc) {
        size_t n = pc->n_apps < PIPE_MAX_APPS ? pc->n_apps : PIPE_MAX_APPS;
        for (size_t i = 0; i < n; i++)
            if (strcmp(pc->apps[i], name) == 0)
                f |= AEP_INTERVENTION;
    }
    return f;
}

static void slot_put(uint16_t *slot, size_t n_slot, uint64_t h, uint16_t v)
{
    size_t m = n_slot - 1;
    size_t s = (size_t)h & m;
    while (slot[s])
        s = (s + 1) & m;
    slot[s] = v;
}

static long app_find(const struct aep_log *l, uint64_t h)
{
    if (!l->n_slot)
        return -1;
    size_t m = l->n_slot - 1;
    for (size_t s = (size_t)h & m; l->slot[s]; s = (s + 1) & m)
        if (l->app[l->slot[s] - 1].hash == h)
            return l->slot[s] - 1;
    return -1;
}

/* Index of the package id, interned at its first sight. Two ids with the same 64-bit hash
 * would share an entry; with a few thousand apps the chance is about 1e-12. */
static long intern(struct aep_log *l, const char *name, const struct pipeline_conf *c,
                   const struct pipeline_participant_conf *pc)
{
    uint64_t h = aep_hash(name);
    long at = app_find(l, h);
    if (at >= 0)
        return at;
    if (l->n_app >= AEP_MAX_APPS)
        return -E2BIG;
    if (l->n_app == l->cap_app) {
        size_t cap = l->cap_app ? l->cap_app * 2 : 8;
        struct aep_app *p = realloc(l->app, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        l->app = p;
        l->cap_app = cap;
    }
    if (2 * (l->n_app + 1) > l->n_slot) { /* keep the table at most half full */
        size_t ns = l->n_slot ? l->n_slot * 2 : 16;
        uint16_t *s = calloc(ns, sizeof *s);
        if (!s)
            return -ENOMEM;
        for (size_t i = 0; i < l->n_app; i++)
            slot_put(s, ns, l->app[i].hash, (uint16_t)(i + 1));
        free(l->slot);
        l->slot = s;
        l->n_slot = ns;
    }
    l->app[l->n_app] = (struct aep_app){h, classify(name, c, pc)};
    slot_put(l->slot, l->n_slot, h, (uint16_t)(l->n_app + 1));
    return (long)l->n_app++;
}

/* ---- the event log ------------------------------------------------------------------- */

static int screen_kept(unsigned k, int64_t t, int have_prev, unsigned pk, int64_t pt);
static void tail_recompute(struct aep_log *l);

/* Keeps the tail state current for an event appended at the end. */
static void tail_step(struct aep_log *l, unsigned kind, int64_t ts)
{
    l->resolved = INT64_MIN;
    if (kind >= K_FG)
        return;
    if (!l->tail_ok)
        tail_recompute(l); /* after a late insertion: once, then in step again */
    int keep = screen_kept(kind, ts, l->tail_have_prev, l->tail_kind, l->tail_ts);
    l->tail_have_prev = 1;
    l->tail_kind = kind;
    l->tail_ts = ts;
    if (keep) {
        l->resolved = l->tail_unlock;
        l->tail_unlock = kind == K_UNLOCKED ? ts : INT64_MIN;
    }
}

int aep_add(struct aep_log *l, const struct event *ev, const struct pipeline_conf *c,
            const struct pipeline_participant_conf *pc, size_t max_events)
{
    unsigned kind;
    uint32_t app = 0;
    if (ev->type == EV_SCREEN) {
        if (ev->u.screen.state < SCREEN_OFF || ev->u.screen.state > SCREEN_UNLOCKED)
            return 0;
        kind = (unsigned)ev->u.screen.state;
    } else if (ev->type == EV_APP) {
        kind = ev->u.app.foreground ? K_FG : K_BG;
    } else {
        return 0;
    }
    if (l->n >= max_events)
        return -E2BIG;
    if (ev->type == EV_APP) {
        long a = intern(l, ev->u.app.app, c, pc);
        if (a < 0)
            return (int)a;
        app = (uint32_t)a;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap + l->cap / 2 : 64; /* 1.5x: less slack per participant */
        uint64_t *p = realloc(l->ev, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        l->ev = p;
        l->cap = cap;
    }
    uint64_t e = pack(ev->ts, kind, app);
    size_t at = l->n;
    if (at && ev_order(l->ev[at - 1]) > ev_order(e)) {
        /* late: after every event of the same instant and class (arrival order) */
        size_t lo = 0, hi = l->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (ev_order(l->ev[mid]) <= ev_order(e))
                lo = mid + 1;
            else
                hi = mid;
        }
        at = lo;
        memmove(l->ev + at + 1, l->ev + at, (l->n - at) * sizeof *l->ev);
    }
    if (at == l->n) {
        tail_step(l, kind, ev->ts); /* before the event is in the log */
    } else {
        l->tail_ok = 0;
        l->resolved = INT64_MIN;
    }
    l->ev[at] = e;
    l->n++;
    return 1;
}

/* The screen family's rules 1 and 2: is a screen event of kind k at t kept, given the
 * previous screen event (have_prev, pk, pt)? */
static int screen_kept(unsigned k, int64_t t, int have_prev, unsigned pk, int64_t pt)
{
    if (k == K_ON)
        return 0;
    if (k == K_LOCKED && have_prev && (pk == K_ON || pk == K_OFF) && t - pt < 50)
        return 0;
    return 1;
}

/* The screen state machine over the log, one event at a time. */
struct scan {
    int have_prev;
    unsigned pk;
    int64_t pt;
    size_t pending; /* index of the UNLOCK of an open unlock, or NONE */
};

/* Feeds screen event i; returns 1 if it is kept (and then updates pending). */
static int scan_step(struct scan *s, const struct aep_log *l, size_t i)
{
    unsigned k = ev_kind(l->ev[i]);
    int64_t t = ev_ts(l->ev[i]);
    int keep = screen_kept(k, t, s->have_prev, s->pk, s->pt);
    s->have_prev = 1;
    s->pk = k;
    s->pt = t;
    return keep;
}

static void report_app(const struct aep_log *l, const struct aep_visitor *v, uint32_t app,
                       int64_t a, int64_t b, int64_t to)
{
    if (b > a && a < to && v->app_episode) {
        struct aep_episode e = {a, b, app, l->app[app].flags};
        v->app_episode(v->ud, &e);
    }
}

/* The unlock episode from the UNLOCK at index u to the OFF at index o, and the app episodes
 * inside it. */
static void report_unlock(const struct aep_log *l, size_t u, size_t o, int64_t to,
                          const struct aep_visitor *v)
{
    int64_t tu = ev_ts(l->ev[u]), toff = ev_ts(l->ev[o]);
    if (toff > tu && v->unlock) {
        struct aep_episode e = {tu, toff, 0, 0};
        v->unlock(v->ud, &e);
    }
    int cur = 0;
    uint32_t app = 0;
    int64_t start = 0;
    for (size_t j = u + 1; j < o; j++) {
        unsigned k = ev_kind(l->ev[j]);
        if (k < K_FG)
            continue;
        int64_t t = ev_ts(l->ev[j]);
        uint32_t a = ev_app(l->ev[j]);
        if (k == K_FG) {
            if (cur && a == app)
                continue; /* the app in front again: the same episode */
            if (cur)
                report_app(l, v, app, start, t, to);
            cur = 1;
            app = a;
            start = t;
        } else if (cur && a == app) {
            report_app(l, v, app, start, t, to);
            cur = 0;
        }
    }
    if (cur)
        report_app(l, v, app, start, toff, to);
}

static size_t first_at(const struct aep_log *l, int64_t t);

/* Where a walk for [from, ...) may start: at the last OFF before `from` (an OFF is always
 * kept and leaves no unlock open, and rule 1 needs no event before it), else at the start. */
static size_t walk_start(const struct aep_log *l, int64_t from)
{
    size_t i = first_at(l, from);
    while (i > 0 && ev_kind(l->ev[i - 1]) != K_OFF)
        i--;
    return i > 0 ? i - 1 : 0;
}

void aep_walk(const struct aep_log *l, int64_t from, int64_t to, const struct aep_visitor *v)
{
    struct scan s = {0, 0, 0, NONE};
    for (size_t i = walk_start(l, from); i < l->n; i++) {
        uint64_t e = l->ev[i];
        int64_t t = ev_ts(e);
        if (t >= to && (s.pending == NONE || ev_ts(l->ev[s.pending]) >= to))
            break;
        unsigned k = ev_kind(e);
        if (k >= K_FG) {
            if (k == K_FG && t < to && v->foreground)
                v->foreground(v->ud, t, ev_app(e), l->app[ev_app(e)].flags);
            continue;
        }
        if (!scan_step(&s, l, i))
            continue;
        if (s.pending != NONE && k == K_OFF && ev_ts(l->ev[s.pending]) < to)
            report_unlock(l, s.pending, i, to, v);
        s.pending = k == K_UNLOCKED ? i : NONE;
    }
}

/* First index whose time is at or after t. */
static size_t first_at(const struct aep_log *l, int64_t t)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ev_ts(l->ev[mid]) < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The scan state just before index `end`. Walking from the start is cheap: the log holds
 * only the days that can still be revised. */
static struct scan scan_until(const struct aep_log *l, size_t end)
{
    struct scan s = {0, 0, 0, NONE};
    for (size_t i = 0; i < end; i++) {
        unsigned k = ev_kind(l->ev[i]);
        if (k >= K_FG || !scan_step(&s, l, i))
            continue;
        s.pending = k == K_UNLOCKED ? i : NONE;
    }
    return s;
}

static void tail_recompute(struct aep_log *l)
{
    struct scan s = scan_until(l, l->n);
    l->tail_ok = 1;
    l->tail_have_prev = s.have_prev;
    l->tail_kind = s.pk;
    l->tail_ts = s.pt;
    l->tail_unlock = s.pending == NONE ? INT64_MIN : ev_ts(l->ev[s.pending]);
}

/* An unlock open at t and not resolved later is the unlock open at the end of the log, if
 * it started before t: any kept screen event after an UNLOCK resolves it. */
int64_t aep_open_unlock_at(struct aep_log *l, int64_t t)
{
    if (!l->tail_ok)
        tail_recompute(l);
    return l->tail_unlock < t ? l->tail_unlock : INT64_MIN;
}

/* A late event is at most `revise` behind the watermark (which is past w->end), and the core
 * revisits the closed days ending less than `reach` before it: those all start after
 * w->end - revise - reach - 26 h (no local day is longer than 26 h). */
int64_t aep_horizon(const struct pipeline_conf *c, const struct day_window *w)
{
    int64_t reach = c->screen_hold_ms > c->coverage_gap_ms ? c->screen_hold_ms : c->coverage_gap_ms;
    return w->end - c->revise_ms - reach - 26 * 3600000LL;
}

void aep_trim(struct aep_log *l, int64_t t)
{
    size_t c = first_at(l, t);
    struct scan s = scan_until(l, c);
    size_t cut = c;
    if (s.pending != NONE) {
        cut = s.pending;
    } else {
        /* rule 1 looks back at the previous screen event, whatever it was */
        size_t p = cut;
        while (p > 0 && ev_kind(l->ev[p - 1]) >= K_FG)
            p--;
        if (p > 0)
            cut = p - 1;
    }
    if (cut == 0)
        return;
    memmove(l->ev, l->ev + cut, (l->n - cut) * sizeof *l->ev);
    l->n -= cut;
    if (l->cap > 64 && l->n < l->cap / 2) { /* give back what a busy day took */
        size_t cap = l->n + l->n / 2 > 64 ? l->n + l->n / 2 : 64;
        uint64_t *p = realloc(l->ev, cap * sizeof *p);
        if (p) {
            l->ev = p;
            l->cap = cap;
        }
    }
}
