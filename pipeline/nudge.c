/* The nudge engine (docs/nudges.md). The `nudge` family (pipeline/nudge_family.c) feeds it,
 * per participant, every record the other families emit, the close of every local day and the
 * participant's intervention use and nudge_ack events; the engine decides the `[nudge]` rules
 * at their decision points, all in event time:
 *
 *   - the close of each local day D (time D.end), after every family emitted D's records:
 *     every rule except escalation targets and rules that read only per-event features;
 *   - each per-event record (alliance.dwai per response): the rules that read that feature;
 *   - the end of quiet hours, for a decision deferred by them (re-checked then);
 *   - escalate_after after a nudge, for its rule's escalate_to rule when the participant has
 *     not re-engaged.
 *
 * Everything that happens to a participant goes through one queue ordered by event time
 * (ties in the order queued), processed only up to the time the core says is complete
 * (nudge_advance), so decisions depend only on the events and their order of arrival,
 * never on how the pipeline happened to batch them. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/nudge.h"
#include "pipeline/pipeline.h"
#include "pipeline/sources.h"
#include "pipeline/tz.h"

#define DAY_MS 86400000LL
#define OUTCOME_MS DAY_MS              /* proximal outcome window: re-engagement within 24 h */
#define MAX_DECISIONS 4096             /* decisions kept per participant (acks, outcomes) */
#define MAX_QUEUE 65536                /* queued items per participant */
#define MAX_SENDS 1024                 /* sends kept per rule (max_per_week is at most 700) */

/* Features only ever emitted per event: rules reading only these are not decided at day
 * closes (their decision points are the events). */
static const char *const event_features[] = {"alliance.dwai", "nudge.reengaged_24h",
                                             "nudge.time_to_open_s"};

/* ---- hashing and the randomisation draw -------------------------------------------- */

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
    h ^= 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return mix64(h);
}

double nudge_draw(uint64_t seed, const char *participant, const char *rule, int64_t ts)
{
    uint64_t h = mix64(seed);
    h = hash_str(h, participant);
    h = hash_str(h, rule);
    h = mix64(h ^ (uint64_t)ts);
    return (double)(h >> 11) * 0x1.0p-53;
}

/* ---- the plan: rules compiled once per pipeline ----------------------------------------- */

struct prule {
    int *fi;             /* per node: feature index (CMP), else -1 */
    int *fo;             /* the same for the reengaged_when nodes */
    int escalation_only; /* another rule escalates to it: decided only then */
    int at_day_close;    /* reads a feature that is not per-event */
};

struct nudge_plan {
    const struct nudge_conf *c;
    size_t n_feat;
    const char **feat;   /* names, borrowed from the nodes */
    int *hist_days;      /* per feature: daily history kept (largest median window + 1) */
    int *is_event;       /* per feature: per-event feature */
    struct prule *rules;
};

/* Children come before their parent (so evaluation recursion is bounded), comparisons name a
 * feature, baselines span 3..90 days. */
static int check_tree(const struct nudge_node *nodes, size_t n_nodes, int root)
{
    if (!nodes || n_nodes == 0 || n_nodes > 4 * NUDGE_MAX_CONDITIONS || root < 0 ||
        (size_t)root >= n_nodes)
        return -EINVAL;
    for (size_t k = 0; k < n_nodes; k++) {
        const struct nudge_node *n = &nodes[k];
        int kids = n->kind == NUDGE_CMP ? 0 : n->kind == NUDGE_NOT ? 1 : 2;
        if ((kids >= 1 && (n->a < 0 || (size_t)n->a >= k)) ||
            (kids == 2 && (n->b < 0 || (size_t)n->b >= k)) ||
            (n->kind == NUDGE_CMP && !n->feature) ||
            (n->kind == NUDGE_CMP && n->rel != NUDGE_VALUE &&
             (n->median_days < 3 || n->median_days > NUDGE_MAX_MEDIAN_DAYS)))
            return -EINVAL;
    }
    return 0;
}

int nudge_conf_check(const struct nudge_conf *c, const char **why)
{
    if (c->n_rules > NUDGE_MAX_RULES)
        return *why = "too many nudge rules", -EINVAL;
    for (size_t i = 0; i < c->n_rules; i++) {
        const struct nudge_rule_conf *r = &c->rules[i];
        if (!r->name || !r->message || !r->nodes || r->n_nodes == 0)
            return *why = "nudge rule without a condition", -EINVAL;
        if (!(r->probability >= 0 && r->probability <= 1) || r->max_per_day < 1 ||
            r->max_per_week < 1 || r->max_per_week > MAX_SENDS || r->cooldown_ms < 0 ||
            r->escalate_after_ms < 1 || r->escalate_to >= (int)c->n_rules ||
            r->escalate_to == (int)i || r->quiet_start_min < 0 || r->quiet_start_min > 1440 ||
            r->quiet_end_min < 0 || r->quiet_end_min > 1440)
            return *why = "nudge rule value out of range", -EINVAL;
        if (check_tree(r->nodes, r->n_nodes, r->root) < 0 ||
            (r->n_out_nodes && check_tree(r->out_nodes, r->n_out_nodes, r->out_root) < 0))
            return *why = "malformed nudge condition", -EINVAL;
    }
    return 0;
}

void nudge_plan_free(struct nudge_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; p->rules && i < p->c->n_rules; i++) {
        free(p->rules[i].fi);
        free(p->rules[i].fo);
    }
    free(p->rules);
    free(p->feat);
    free(p->hist_days);
    free(p->is_event);
    free(p);
}

static int plan_feature(struct nudge_plan *p, const char *name)
{
    for (size_t i = 0; i < p->n_feat; i++)
        if (strcmp(p->feat[i], name) == 0)
            return (int)i;
    p->feat[p->n_feat] = name;
    p->is_event[p->n_feat] = 0;
    for (size_t k = 0; k < sizeof event_features / sizeof *event_features; k++)
        p->is_event[p->n_feat] |= strcmp(name, event_features[k]) == 0;
    return (int)p->n_feat++;
}

struct nudge_plan *nudge_plan_new(const struct nudge_conf *c, int *err)
{
    const char *why;
    if (c->n_rules == 0)
        return NULL;
    if (nudge_conf_check(c, &why) < 0) {
        *err = -EINVAL;
        return NULL;
    }
    size_t max_feat = 0;
    for (size_t i = 0; i < c->n_rules; i++)
        max_feat += c->rules[i].n_nodes + c->rules[i].n_out_nodes;
    struct nudge_plan *p = calloc(1, sizeof *p);
    if (!p)
        goto nomem;
    p->c = c;
    p->feat = calloc(max_feat, sizeof *p->feat);
    p->hist_days = calloc(max_feat, sizeof *p->hist_days);
    p->is_event = calloc(max_feat, sizeof *p->is_event);
    p->rules = calloc(c->n_rules, sizeof *p->rules);
    if (!p->feat || !p->hist_days || !p->is_event || !p->rules)
        goto nomem;
    for (size_t i = 0; i < c->n_rules; i++) {
        const struct nudge_rule_conf *r = &c->rules[i];
        struct prule *pr = &p->rules[i];
        if (!(pr->fi = malloc(r->n_nodes * sizeof *pr->fi)))
            goto nomem;
        for (size_t k = 0; k < r->n_nodes; k++) {
            const struct nudge_node *n = &r->nodes[k];
            pr->fi[k] = -1;
            if (n->kind != NUDGE_CMP)
                continue;
            int f = plan_feature(p, n->feature);
            pr->fi[k] = f;
            if (n->rel != NUDGE_VALUE && n->median_days + 1 > p->hist_days[f])
                p->hist_days[f] = n->median_days + 1;
            if (!p->is_event[f])
                pr->at_day_close = 1;
        }
        if (r->escalate_to >= 0)
            p->rules[r->escalate_to].escalation_only = 1;
        if (!r->n_out_nodes)
            continue;
        if (!(pr->fo = malloc(r->n_out_nodes * sizeof *pr->fo)))
            goto nomem;
        for (size_t k = 0; k < r->n_out_nodes; k++) {
            const struct nudge_node *n = &r->out_nodes[k];
            pr->fo[k] = n->kind == NUDGE_CMP ? plan_feature(p, n->feature) : -1;
            if (n->kind == NUDGE_CMP && n->rel != NUDGE_VALUE &&
                n->median_days + 1 > p->hist_days[pr->fo[k]])
                p->hist_days[pr->fo[k]] = n->median_days + 1;
        }
    }
    return p;
nomem:
    nudge_plan_free(p);
    *err = -ENOMEM;
    return NULL;
}

/* ---- per-participant state ------------------------------------------------------------ */

struct hist { int64_t day; double value, coverage; int has; };

struct feat {
    int seen, has_value, window;
    double value, coverage;
    int64_t t, day;
    char local_date[11];
    struct hist *hist;             /* ring indexed by day modulo hist_days */
};

struct send { int64_t t, day; };

struct rule_st {
    int has_last;
    int64_t last_send;
    uint64_t last_id;
    int last_answered;
    int deferred;                  /* a re-check at the end of quiet hours is queued */
    uint64_t n_decisions;
    struct send *sends;            /* the last 7 local days' sends */
    size_t n_sends, cap_sends;
};

struct dec {
    uint64_t id;
    int rule, sent, recipient;
    int64_t t, day;
    int64_t opened, first_use;     /* INT64_MAX: not (yet) */
    int cleared;                   /* the rule's condition was false after it */
};

/* in the order items of the same instant are processed (item_before) */
enum item_kind { IT_OBS, IT_DAYEND, IT_USE, IT_ACK, IT_DEFER, IT_ESCALATE, IT_OUTCOME };

struct item {
    int64_t t;
    uint64_t seq;
    int kind;
    union {
        struct { int feat, window, has; double value, coverage; int64_t day; char date[11]; } obs;
        struct day_window day;
        struct { uint64_t id; int state; } ack;
        struct { int rule; int64_t from; int esc_rule; uint64_t esc_id; } defer;
        struct { int rule; uint64_t id; } ref;
    } u;
};

struct nudge_state {
    const struct nudge_plan *plan;
    struct feat *feat;
    struct rule_st *rules;
    struct item *q;                /* binary min-heap on (t, seq) */
    size_t n_q, cap_q;
    uint64_t seq;
    struct dec *decs;              /* oldest first */
    size_t n_decs, cap_decs;
    int has_day;
    int64_t cur_day;               /* the last closed local day */
    uint64_t dropped;              /* queue or log limits hit */
    uint64_t evaluations;          /* conditions evaluated (decision points reached) */
};

struct nudge_state *nudge_state_new(const struct nudge_plan *p)
{
    struct nudge_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->plan = p;
    s->feat = calloc(p->n_feat ? p->n_feat : 1, sizeof *s->feat);
    s->rules = calloc(p->c->n_rules, sizeof *s->rules);
    if (!s->feat || !s->rules) {
        free(s->feat);
        free(s->rules);
        free(s);
        return NULL;
    }
    return s;
}

void nudge_state_free(struct nudge_state *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->plan->n_feat; i++)
        free(s->feat[i].hist);
    for (size_t i = 0; i < s->plan->c->n_rules; i++)
        free(s->rules[i].sends);
    free(s->feat);
    free(s->rules);
    free(s->q);
    free(s->decs);
    free(s);
}

uint64_t nudge_state_evaluations(const struct nudge_state *s) { return s->evaluations; }

/* ---- the queue -------------------------------------------------------------------------- */

/* Time order; at the same instant the data first (records, day closes, uses, acks), then the
 * timers that judge it (deferrals, escalations, outcomes), each in the order queued. */
static int item_before(const struct item *a, const struct item *b)
{
    if (a->t != b->t)
        return a->t < b->t;
    if (a->kind != b->kind)
        return a->kind < b->kind;
    return a->seq < b->seq;
}

static void queue_push(struct nudge_state *s, struct item *it)
{
    if (s->n_q >= MAX_QUEUE || vec_grow((void **)&s->q, &s->cap_q, s->n_q + 1, sizeof *s->q) < 0) {
        s->dropped++;
        return;
    }
    it->seq = s->seq++;
    size_t i = s->n_q++;
    while (i > 0 && item_before(it, &s->q[(i - 1) / 2])) {
        s->q[i] = s->q[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->q[i] = *it;
}

static struct item queue_pop(struct nudge_state *s)
{
    struct item top = s->q[0], last = s->q[--s->n_q];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n_q)
            break;
        if (c + 1 < s->n_q && item_before(&s->q[c + 1], &s->q[c]))
            c++;
        if (!item_before(&s->q[c], &last))
            break;
        s->q[i] = s->q[c];
        i = c;
    }
    if (s->n_q)
        s->q[i] = last;
    return top;
}

/* ---- feature values ---------------------------------------------------------------------- */

static int64_t date_day(const char *d)
{
    /* YYYY-MM-DD as the pipeline writes it */
    int64_t y = (d[0] - '0') * 1000 + (d[1] - '0') * 100 + (d[2] - '0') * 10 + (d[3] - '0');
    unsigned m = (unsigned)((d[5] - '0') * 10 + (d[6] - '0'));
    unsigned dd = (unsigned)((d[8] - '0') * 10 + (d[9] - '0'));
    return civil_to_days(y, m, dd);
}

static void hist_put(const struct nudge_plan *p, struct feat *f, int fi, int64_t day, int has,
                     double value, double coverage)
{
    int n = p->hist_days[fi];
    if (n == 0)
        return;
    if (!f->hist) {
        f->hist = malloc((size_t)n * sizeof *f->hist);
        if (!f->hist)
            return;
        for (int i = 0; i < n; i++)
            f->hist[i].day = INT64_MIN;
    }
    struct hist *h = &f->hist[floor_mod(day, n)];
    if (h->day > day)
        return; /* a revision of a day already out of the window */
    *h = (struct hist){day, value, coverage, has};
}

static void apply_obs(struct nudge_state *s, const struct item *it)
{
    int fi = it->u.obs.feat;
    struct feat *f = &s->feat[fi];
    if (it->u.obs.window != WIN_EVENT)
        hist_put(s->plan, f, fi, it->u.obs.day, it->u.obs.has, it->u.obs.value,
                 it->u.obs.coverage);
    if (f->seen && it->t < f->t)
        return;
    f->seen = 1;
    f->has_value = it->u.obs.has;
    f->window = it->u.obs.window;
    f->value = it->u.obs.value;
    f->coverage = it->u.obs.coverage;
    f->t = it->t;
    f->day = it->u.obs.day;
    memcpy(f->local_date, it->u.obs.date, sizeof f->local_date);
}

void nudge_feed_record(struct nudge_state *s, const struct feature_record *r)
{
    if (r->nudge || r->window == WIN_EPOCH || r->window == WIN_RECORDING ||
        !r->local_date[0])
        return;
    const struct nudge_plan *p = s->plan;
    int fi = -1;
    for (size_t i = 0; i < p->n_feat && fi < 0; i++)
        if (strcmp(p->feat[i], r->feature) == 0)
            fi = (int)i;
    if (fi < 0)
        return;
    struct item it = {.t = r->window == WIN_EVENT ? r->start : r->end, .kind = IT_OBS};
    it.u.obs.feat = fi;
    it.u.obs.window = (int)r->window;
    it.u.obs.has = r->has_value;
    it.u.obs.value = r->value;
    it.u.obs.coverage = r->coverage;
    it.u.obs.day = date_day(r->local_date);
    memcpy(it.u.obs.date, r->local_date, sizeof it.u.obs.date);
    if (r->revision > 0) {
        /* a revised day: its new values count from now on, but it is no decision point */
        struct feat *f = &s->feat[fi];
        if (r->window != WIN_EVENT)
            hist_put(p, f, fi, it.u.obs.day, r->has_value, r->value, r->coverage);
        if (f->seen && f->t == it.t && f->window == (int)r->window) {
            f->has_value = r->has_value;
            f->value = r->value;
            f->coverage = r->coverage;
        }
        return;
    }
    queue_push(s, &it);
}

/* ---- conditions -------------------------------------------------------------------------- */

static int cmp_holds(int cmp, double a, double b)
{
    switch (cmp) {
    case NUDGE_LT: return a < b;
    case NUDGE_LE: return a <= b;
    case NUDGE_GT: return a > b;
    case NUDGE_GE: return a >= b;
    case NUDGE_EQ: return a == b;
    default: return a != b;
    }
}

/* The participant's median of feature f over the n local days before `day` with a value
 * of enough coverage; 0 when fewer than half of those days have one. */
static int baseline(const struct nudge_plan *p, const struct feat *f, int fi, int64_t day, int n,
                    double min_cov, double *out)
{
    double v[NUDGE_MAX_MEDIAN_DAYS];
    int k = 0, cap = p->hist_days[fi];
    if (!f->hist)
        return 0;
    for (int64_t d = day - n; d < day; d++) {
        const struct hist *h = &f->hist[floor_mod(d, cap)];
        if (h->day == d && h->has && isfinite(h->value) && h->coverage >= min_cov)
            v[k++] = h->value;
    }
    if (2 * k < n || k == 0)
        return 0;
    for (int i = 1; i < k; i++) { /* insertion sort: at most 90 values, mostly a few */
        double x = v[i];
        int j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
    *out = k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
    return 1;
}

struct eval_ctx {
    const struct nudge_plan *plan;
    const struct nudge_node *nodes;
    const int *fi;           /* feature index per node */
    struct nudge_state *s;
    double min_cov;          /* 0 when judging without the coverage guard */
    struct nudge_evidence *ev; /* per CMP node, filled when not NULL */
    size_t n_ev;
};

/* 1 true, 0 false, -1 unknown (three-valued logic, docs/config.md "Missing values") */
static int eval(struct eval_ctx *x, int node)
{
    const struct nudge_node *n = &x->nodes[node];
    switch (n->kind) {
    case NUDGE_NOT: {
        int a = eval(x, n->a);
        return a < 0 ? -1 : !a;
    }
    case NUDGE_AND: {
        int a = eval(x, n->a), b = eval(x, n->b);
        return (a == 0 || b == 0) ? 0 : (a < 0 || b < 0) ? -1 : 1;
    }
    case NUDGE_OR: {
        int a = eval(x, n->a), b = eval(x, n->b);
        return (a == 1 || b == 1) ? 1 : (a < 0 || b < 0) ? -1 : 0;
    }
    default: break;
    }
    int fi = x->fi[node];
    const struct feat *f = &x->s->feat[fi];
    struct nudge_evidence e = {.feature = n->feature, .rel = n->rel, .result = -1};
    /* a daily value counts only for the day being judged (no stale values), and only
     * with enough coverage */
    int current = f->seen && (f->window == WIN_EVENT || (x->s->has_day && f->day == x->s->cur_day));
    if (current) {
        e.has_value = f->has_value && isfinite(f->value);
        e.value = f->value;
        e.coverage = f->coverage;
        memcpy(e.local_date, f->local_date, sizeof e.local_date);
    }
    if (e.has_value && f->coverage >= x->min_cov) {
        double v = f->value;
        if (n->rel != NUDGE_VALUE) {
            e.has_median = baseline(x->plan, f, fi, f->day, n->median_days, x->min_cov, &e.median);
            if (e.has_median)
                v = n->rel == NUDGE_SHIFTS ? fabs(v - e.median)
                    : n->rel == NUDGE_RISES ? v - e.median : e.median - v;
        }
        if (n->rel == NUDGE_VALUE || e.has_median)
            e.result = cmp_holds(n->cmp, v, n->value);
    }
    if (x->ev && x->n_ev < NUDGE_MAX_CONDITIONS)
        x->ev[x->n_ev++] = e;
    return e.result;
}

/* ---- decisions ------------------------------------------------------------------------- */

struct point {
    int64_t t;              /* decision time */
    int64_t due;            /* when it fell due (t, or the end of quiet hours) */
    int64_t from;           /* deferred from, INT64_MIN none */
    int esc_rule;           /* escalated from, -1 none */
    uint64_t esc_id;
};

static int64_t local_ms(const struct nudge_host *h, int64_t t, const struct tz_zone **z)
{
    *z = tzline_zone_at(h->tzl, t);
    return t + (int64_t)tz_offset(*z, t) * 1000;
}

/* The end of the quiet hours t falls in, or INT64_MIN when t is outside them. */
static int64_t quiet_end(const struct nudge_host *h, const struct nudge_rule_conf *rc, int64_t t)
{
    if (!rc->quiet)
        return INT64_MIN;
    const struct tz_zone *z;
    int64_t local = local_ms(h, t, &z);
    int64_t mod = floor_mod(local, DAY_MS), qs = rc->quiet_start_min * 60000LL,
            qe = rc->quiet_end_min * 60000LL;
    int in = qs < qe ? (mod >= qs && mod < qe) : (mod >= qs || mod < qe);
    if (!in)
        return INT64_MIN;
    int64_t end_local = local - mod + qe + ((qs < qe || mod < qe) ? 0 : DAY_MS);
    int64_t end = tz_local_to_utc(z, end_local);
    return end > t ? end : t + 60000; /* a zone change cannot make it go back */
}

static int64_t local_day(const struct nudge_host *h, int64_t t)
{
    const struct tz_zone *z;
    return floor_div(local_ms(h, t, &z), DAY_MS);
}

static struct dec *find_dec(struct nudge_state *s, uint64_t id)
{
    for (size_t i = s->n_decs; i-- > 0;)
        if (s->decs[i].id == id)
            return &s->decs[i];
    return NULL;
}

static void log_dec(struct nudge_state *s, const struct dec *d)
{
    if (s->n_decs == MAX_DECISIONS) {
        memmove(s->decs, s->decs + 1, (MAX_DECISIONS - 1) * sizeof *s->decs);
        s->n_decs--;
        s->dropped++;
    }
    if (vec_grow((void **)&s->decs, &s->cap_decs, s->n_decs + 1, sizeof *s->decs) < 0) {
        s->dropped++;
        return;
    }
    s->decs[s->n_decs++] = *d;
}

/* Keeps what acks, outcomes, escalations and the 7-day features may still need. */
static void trim_decs(struct nudge_state *s, int64_t now)
{
    int64_t keep = 8 * DAY_MS;
    for (size_t i = 0; i < s->plan->c->n_rules; i++)
        if (s->plan->c->rules[i].escalate_after_ms + DAY_MS > keep)
            keep = s->plan->c->rules[i].escalate_after_ms + DAY_MS;
    size_t k = 0;
    while (k < s->n_decs && s->decs[k].t < now - keep)
        k++;
    if (k) {
        memmove(s->decs, s->decs + k, (s->n_decs - k) * sizeof *s->decs);
        s->n_decs -= k;
    }
}

static void emit_decision(const struct nudge_host *h, struct nudge_state *s, int ri,
                          const struct point *pt,
                          const char *decision, const char *reason, int available,
                          const struct nudge_evidence *ev, size_t n_ev, uint64_t id)
{
    const struct nudge_conf *c = s->plan->c;
    const struct nudge_rule_conf *rc = &c->rules[ri];
    const struct pipeline_participant_conf *pc = h->pc;
    struct nudge_decision d = {
        .ts = pt->t,
        .decided = h->clock,
        .rule = rc->name,
        .message = rc->message,
        .recipient = rc->recipient,
        .priority = rc->priority,
        .supporter = pc && pc->supporter[0] && rc->recipient != NUDGE_TO_PARTICIPANT
                         ? pc->supporter : NULL,
        .decision = decision,
        .reason = reason,
        .p = rc->probability,
        .available = available,
        .late = h->clock - pt->due >= c->late_after_ms,
        .deferred_from = pt->from,
        .escalated_from = pt->esc_rule >= 0 ? c->rules[pt->esc_rule].name : NULL,
        .n_evidence = n_ev,
        .evidence = ev,
    };
    char esc[NUDGE_ID_LEN + 1];
    if (pt->esc_rule >= 0) {
        snprintf(esc, sizeof esc, "n%016llx", (unsigned long long)pt->esc_id);
        d.escalated_id = esc;
    }
    snprintf(d.id, sizeof d.id, "n%016llx", (unsigned long long)id);
    struct day_window w;
    cal_day_at(h->tzl, pt->t, &w);
    memcpy(d.local_date, w.local_date, sizeof d.local_date);
    struct feature_record r = {
        .feature = "nudge", .window = WIN_EVENT, .start = pt->t, .end = pt->t,
        .tz = tz_zone_name(w.zone), .nudge = &d,
    };
    memcpy(r.local_date, w.local_date, sizeof r.local_date);
    h->emit(h->ud, &r);
}

static void decide(const struct nudge_host *h, struct nudge_state *s, int ri,
                   const struct point *pt)
{
    const struct nudge_conf *c = s->plan->c;
    const struct nudge_rule_conf *rc = &c->rules[ri];
    struct rule_st *rs = &s->rules[ri];
    const struct pipeline_participant_conf *pc = h->pc;
    int64_t day = local_day(h, pt->t);
    if (pc && pc->has_study_end && day > pc->study_end_day)
        return; /* the participant's study is over: no more decision points */

    struct nudge_evidence ev[NUDGE_MAX_CONDITIONS];
    const struct prule *pr = &s->plan->rules[ri];
    struct eval_ctx x = {.plan = s->plan, .nodes = rc->nodes, .fi = pr->fi, .s = s,
                         .min_cov = rc->min_coverage, .ev = ev};
    int strict = eval(&x, rc->root);
    s->evaluations++;
    if (strict == 0 && rs->has_last && !rc->n_out_nodes) {
        struct dec *last = find_dec(s, rs->last_id);
        if (last && pt->t <= last->t + rc->escalate_after_ms)
            last->cleared = 1; /* the situation that triggered it is over: re-engaged */
    }
    uint64_t id = mix64(hash_str(hash_str(mix64(c->seed), h->participant), rc->name) ^
                        mix64((uint64_t)pt->t ^ (rs->n_decisions << 48)));
    if (strict != 1) {
        /* Would the data-quality guard alone have stopped it? Then say so. */
        struct eval_ctx raw = {.plan = s->plan, .nodes = rc->nodes, .fi = pr->fi, .s = s,
                               .min_cov = 0};
        int loose = eval(&raw, rc->root);
        const char *why = loose == 1                ? "low_coverage"
                          : pt->from != INT64_MIN ? "condition_cleared"
                                                  : NULL;
        if (why) {
            rs->n_decisions++;
            emit_decision(h, s, ri, pt, "suppressed", why, 0, ev, x.n_ev, id);
        }
        return;
    }
    int64_t qend = quiet_end(h, rc, pt->t);
    if (qend != INT64_MIN) {
        if (!rs->deferred) {
            struct item it = {.t = qend, .kind = IT_DEFER};
            it.u.defer.rule = ri;
            it.u.defer.from = pt->from != INT64_MIN ? pt->from : pt->t;
            it.u.defer.esc_rule = pt->esc_rule;
            it.u.defer.esc_id = pt->esc_id;
            rs->deferred = 1;
            queue_push(s, &it);
        }
        return;
    }
    /* policies, in this order; the first that applies is the reason */
    while (rs->n_sends && rs->sends[0].day <= day - 7) {
        memmove(rs->sends, rs->sends + 1, (rs->n_sends - 1) * sizeof *rs->sends);
        rs->n_sends--;
    }
    int today = 0;
    for (size_t i = 0; i < rs->n_sends; i++)
        today += rs->sends[i].day == day;
    const char *policy = NULL;
    if (rs->has_last && pt->t - rs->last_send < rc->cooldown_ms)
        policy = "cooldown";
    else if (today >= rc->max_per_day)
        policy = "max_per_day";
    else if ((int)rs->n_sends >= rc->max_per_week)
        policy = "max_per_week";
    else if (rs->has_last && !rs->last_answered && !rc->repeat_unanswered)
        policy = "unanswered";
    rs->n_decisions++;
    if (policy) {
        emit_decision(h, s, ri, pt, "suppressed", policy, 0, ev, x.n_ev, id);
        return;
    }
    int send = 1;
    if (rc->probability < 1)
        send = nudge_draw(c->seed, h->participant, rc->name, pt->t) < rc->probability;
    emit_decision(h, s, ri, pt, send ? "send" : "withhold",
                  !send                 ? "randomised_withhold"
                  : rc->probability < 1 ? "randomised_send"
                                        : "condition",
                  1, ev, x.n_ev, id);
    struct dec d = {.id = id, .rule = ri, .sent = send, .recipient = rc->recipient, .t = pt->t,
                    .day = day, .opened = INT64_MAX, .first_use = INT64_MAX};
    log_dec(s, &d);
    if (rc->recipient == NUDGE_TO_PARTICIPANT) {
        /* the proximal outcome, for sent and withheld nudges alike (docs/nudges.md) */
        struct item it = {.t = pt->t + OUTCOME_MS, .kind = IT_OUTCOME};
        it.u.ref.rule = ri;
        it.u.ref.id = id;
        queue_push(s, &it);
    }
    if (!send)
        return;
    if (rs->n_sends < MAX_SENDS &&
        vec_grow((void **)&rs->sends, &rs->cap_sends, rs->n_sends + 1, sizeof *rs->sends) == 0)
        rs->sends[rs->n_sends++] = (struct send){pt->t, day};
    rs->has_last = 1;
    rs->last_send = pt->t;
    rs->last_id = id;
    rs->last_answered = 0;
    if (rc->escalate_to >= 0) {
        struct item it = {.t = pt->t + rc->escalate_after_ms, .kind = IT_ESCALATE};
        it.u.ref.rule = ri;
        it.u.ref.id = id;
        queue_push(s, &it);
    }
}

/* ---- the items ------------------------------------------------------------------------- */

static void emit_feature(const struct nudge_host *h, enum window_kind kind, int64_t start,
                         int64_t end,
                         const struct day_window *w, const char *feature, int has, double v,
                         const char *unit, double cov, const char *nudge_id)
{
    struct feature_record r = {
        .feature = feature, .window = kind, .start = start, .end = end,
        .tz = tz_zone_name(w->zone), .has_value = has && isfinite(v), .value = v,
        .unit = unit, .coverage = cov, .nudge_id = nudge_id,
    };
    memcpy(r.local_date, w->local_date, sizeof r.local_date);
    h->emit(h->ud, &r);
}

/* Rules with reengaged_when: a nudge whose escalation is pending counts as followed once that
 * condition is true at a decision point within escalate_after. */
static void check_reengaged(struct nudge_state *s, int64_t t)
{
    const struct nudge_conf *c = s->plan->c;
    for (size_t i = 0; i < s->n_decs; i++) {
        struct dec *d = &s->decs[i];
        const struct nudge_rule_conf *rc = &c->rules[d->rule];
        if (!d->sent || d->cleared || !rc->n_out_nodes || rc->escalate_to < 0 || t <= d->t ||
            t > d->t + rc->escalate_after_ms)
            continue;
        struct eval_ctx x = {.plan = s->plan, .nodes = rc->out_nodes,
                             .fi = s->plan->rules[d->rule].fo, .s = s,
                             .min_cov = rc->min_coverage};
        if (eval(&x, rc->out_root) == 1)
            d->cleared = 1;
    }
}

static void day_end(const struct nudge_host *h, struct nudge_state *s, const struct day_window *w)
{
    s->has_day = 1;
    s->cur_day = w->day;
    check_reengaged(s, w->end);
    trim_decs(s, w->end);
    /* nudge.sent: decisions to send on day D; nudge.opened_rate_7d: of the nudges sent to
     * the participant in the 7 days ending D, the fraction opened by the end of D */
    int sent = 0, sent7 = 0, opened7 = 0;
    for (size_t i = 0; i < s->n_decs; i++) {
        const struct dec *d = &s->decs[i];
        if (!d->sent)
            continue;
        sent += d->day == w->day;
        if (d->recipient == NUDGE_TO_PARTICIPANT && d->day > w->day - 7 && d->day <= w->day) {
            sent7++;
            opened7 += d->opened <= w->end;
        }
    }
    emit_feature(h, WIN_DAY, w->start, w->end, w, "nudge.sent", 1, sent, "count", 1, NULL);
    int64_t s7, e7;
    cal_7d(h->tzl, w, &s7, &e7);
    emit_feature(h, WIN_7D, s7, e7, w, "nudge.opened_rate_7d", sent7 > 0,
                 sent7 ? (double)opened7 / sent7 : NAN, "fraction",
                 h->phone_coverage(h->ud, s7, e7), NULL);
    const struct nudge_conf *c = s->plan->c;
    for (size_t r = 0; r < c->n_rules; r++) {
        const struct prule *pr = &s->plan->rules[r];
        if (pr->escalation_only || !pr->at_day_close)
            continue;
        struct point pt = {.t = w->end, .due = w->end, .from = INT64_MIN, .esc_rule = -1};
        decide(h, s, (int)r, &pt);
    }
}

static void process(const struct nudge_host *h, struct nudge_state *s, const struct item *it)
{
    const struct nudge_conf *c = s->plan->c;
    switch (it->kind) {
    case IT_OBS:
        apply_obs(s, it);
        if (it->u.obs.window == WIN_EVENT)
            check_reengaged(s, it->t);
        if (it->u.obs.window == WIN_EVENT)
            for (size_t r = 0; r < c->n_rules; r++) {
                const struct nudge_rule_conf *rc = &c->rules[r];
                const struct prule *pr = &s->plan->rules[r];
                int reads = 0;
                for (size_t k = 0; k < rc->n_nodes && !reads; k++)
                    reads = pr->fi[k] == it->u.obs.feat;
                if (reads && !pr->escalation_only) {
                    struct point pt = {.t = it->t, .due = it->t, .from = INT64_MIN, .esc_rule = -1};
                    decide(h, s, (int)r, &pt);
                }
            }
        break;
    case IT_DAYEND:
        day_end(h, s, &it->u.day);
        break;
    case IT_USE:
        for (size_t i = 0; i < s->n_decs; i++)
            if (s->decs[i].t < it->t && s->decs[i].first_use == INT64_MAX)
                s->decs[i].first_use = it->t;
        break;
    case IT_ACK: {
        struct dec *d = find_dec(s, it->u.ack.id);
        if (it->u.ack.state != ACK_DELIVERED)
            for (size_t r = 0; r < c->n_rules; r++)
                if (s->rules[r].has_last && s->rules[r].last_id == it->u.ack.id)
                    s->rules[r].last_answered = 1;
        if (d && (it->u.ack.state == ACK_OPENED || it->u.ack.state == ACK_ACTED) &&
            d->opened == INT64_MAX && it->t >= d->t) {
            d->opened = it->t;
            struct day_window w;
            cal_day_at(h->tzl, d->t, &w);
            char id[NUDGE_ID_LEN + 1];
            snprintf(id, sizeof id, "n%016llx", (unsigned long long)d->id);
            emit_feature(h, WIN_EVENT, d->t, d->t, &w, "nudge.time_to_open_s", 1,
                         (double)(it->t - d->t) / 1000.0, "s", 1, id);
        }
        break;
    }
    case IT_DEFER: {
        s->rules[it->u.defer.rule].deferred = 0;
        struct point pt = {.t = it->t, .due = it->t, .from = it->u.defer.from,
                           .esc_rule = it->u.defer.esc_rule, .esc_id = it->u.defer.esc_id};
        decide(h, s, it->u.defer.rule, &pt);
        break;
    }
    case IT_ESCALATE: {
        const struct dec *d = find_dec(s, it->u.ref.id);
        int reengaged = d && (d->cleared || (!c->rules[it->u.ref.rule].n_out_nodes &&
                                             d->first_use <= it->t));
        int to = c->rules[it->u.ref.rule].escalate_to;
        if (!reengaged && to >= 0) {
            struct point pt = {.t = it->t, .due = it->t, .from = INT64_MIN,
                               .esc_rule = it->u.ref.rule, .esc_id = it->u.ref.id};
            decide(h, s, to, &pt);
        }
        break;
    }
    case IT_OUTCOME: {
        const struct dec *d = find_dec(s, it->u.ref.id);
        if (!d)
            break;
        struct day_window w;
        cal_day_at(h->tzl, d->t, &w);
        char id[NUDGE_ID_LEN + 1];
        snprintf(id, sizeof id, "n%016llx", (unsigned long long)d->id);
        emit_feature(h, WIN_EVENT, d->t, d->t, &w, "nudge.reengaged_24h", 1,
                     d->first_use <= it->t, "bool",
                     h->phone_coverage(h->ud, d->t, d->t + OUTCOME_MS), id);
        break;
    }
    }
}

void nudge_run(struct nudge_state *s, const struct nudge_host *h, int64_t limit)
{
    while (s->n_q && s->q[0].t <= limit) {
        struct item it = queue_pop(s);
        process(h, s, &it);
    }
}

void nudge_feed_day(struct nudge_state *s, const struct day_window *w)
{
    struct item it = {.t = w->end, .kind = IT_DAYEND};
    it.u.day = *w;
    queue_push(s, &it);
}

static int is_intervention(const struct nudge_host *h, const struct event *ev)
{
    if (ev->type == EV_MODULE)
        return 1;
    if (ev->type != EV_APP || !ev->u.app.foreground || !h->pc)
        return 0;
    for (size_t i = 0; i < h->pc->n_apps; i++)
        if (strcmp(h->pc->apps[i], ev->u.app.app) == 0)
            return 1;
    return 0;
}

void nudge_feed_event(struct nudge_state *s, const struct nudge_host *h, const struct event *ev)
{
    struct item it = {.t = ev->ts};
    if (ev->type == EV_NUDGE_ACK) {
        /* ids are "n" + 16 hex digits; anything else cannot be ours */
        const char *id = ev->u.nudge_ack.nudge;
        char *end;
        if (id[0] != 'n' || strlen(id) != NUDGE_ID_LEN)
            return;
        it.kind = IT_ACK;
        it.u.ack.id = strtoull(id + 1, &end, 16);
        it.u.ack.state = ev->u.nudge_ack.state;
        if (*end)
            return;
    } else if (is_intervention(h, ev)) {
        it.kind = IT_USE;
    } else {
        return;
    }
    queue_push(s, &it);
}
