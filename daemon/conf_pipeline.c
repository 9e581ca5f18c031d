/* From the configuration to the pipeline's own config struct. Kept apart from the loader so
 * that linking the loader does not pull in the pipeline. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/conf.h"
#include "pipeline/pipeline.h"

/* The pipeline's nudge enums have the configuration's values (compared as ints). */
_Static_assert((int)NUDGE_CMP == (int)CONF_EXPR_CMP && (int)NUDGE_AND == (int)CONF_EXPR_AND &&
               (int)NUDGE_OR == (int)CONF_EXPR_OR && (int)NUDGE_NOT == (int)CONF_EXPR_NOT,
               "node kinds");
_Static_assert((int)NUDGE_VALUE == (int)CONF_REL_VALUE &&
               (int)NUDGE_SHIFTS == (int)CONF_REL_SHIFTS &&
               (int)NUDGE_RISES == (int)CONF_REL_RISES && (int)NUDGE_FALLS == (int)CONF_REL_FALLS,
               "relations");
_Static_assert((int)NUDGE_LT == (int)CONF_CMP_LT && (int)NUDGE_LE == (int)CONF_CMP_LE &&
               (int)NUDGE_GT == (int)CONF_CMP_GT && (int)NUDGE_GE == (int)CONF_CMP_GE &&
               (int)NUDGE_EQ == (int)CONF_CMP_EQ && (int)NUDGE_NE == (int)CONF_CMP_NE,
               "comparisons");
_Static_assert((int)NUDGE_TO_PARTICIPANT == (int)CONF_TO_PARTICIPANT &&
               (int)NUDGE_TO_SUPPORTER == (int)CONF_TO_SUPPORTER &&
               (int)NUDGE_TO_CLINICIAN == (int)CONF_TO_CLINICIAN, "recipients");
_Static_assert((int)NUDGE_PRIO_LOW == (int)CONF_PRIO_LOW &&
               (int)NUDGE_PRIO_NORMAL == (int)CONF_PRIO_NORMAL &&
               (int)NUDGE_PRIO_HIGH == (int)CONF_PRIO_HIGH, "priorities");

/* The condition's nodes into out[]; returns the next free node. */
static struct nudge_node *copy_nodes(const struct conf_when *w, struct nudge_node *out)
{
    for (size_t k = 0; k < w->n; k++) {
        const struct conf_expr *x = &w->nodes[k];
        out[k] = (struct nudge_node){
            .kind = x->kind, .a = x->a, .b = x->b, .feature = x->feature, .rel = x->rel,
            .median_days = x->median_days, .cmp = x->cmp, .value = x->value,
        };
    }
    return out + w->n;
}

int conf_fill_pipeline(const struct conf *c, struct pipeline_conf *pc,
                       struct pipeline_participant_conf **parts_out)
{
    const struct conf_pipeline *p = &c->pipeline;
    pipeline_conf_defaults(pc);
    pc->lateness_ms = p->lateness_ms;
    pc->coverage_gap_ms = p->coverage_gap_ms;
    pc->source_idle_ms = p->source_idle_ms;
    pc->screen_hold_ms = p->screen_hold_ms;
    pc->revise_ms = p->revise_ms;
    pc->ema_expire_ms = p->ema_expire_ms;
    pc->screen_ignore_shorter_min = (double)p->screen_ignore_shorter_ms / 60000.0;
    pc->screen_ignore_longer_min = (double)p->screen_ignore_longer_ms / 60000.0;
    pc->app_ignore_shorter_min = (double)p->app_ignore_shorter_ms / 60000.0;
    pc->app_ignore_longer_min = (double)p->app_ignore_longer_ms / 60000.0;
    pc->engage_session_gap_ms = p->engage_session_gap_ms;
    /* lists hold at most CONF_MAX_APPS (= PIPE_MAX_APPS) ids of one config line each */
    pc->n_app_include = p->app_include.n < PIPE_MAX_APPS ? p->app_include.n : PIPE_MAX_APPS;
    for (size_t i = 0; i < pc->n_app_include; i++)
        snprintf(pc->app_include[i], sizeof(pc->app_include[i]), "%s", p->app_include.items[i]);
    pc->n_app_exclude = p->app_exclude.n < PIPE_MAX_APPS ? p->app_exclude.n : PIPE_MAX_APPS;
    for (size_t i = 0; i < pc->n_app_exclude; i++)
        snprintf(pc->app_exclude[i], sizeof(pc->app_exclude[i]), "%s", p->app_exclude.items[i]);
    pc->act.nonwear = p->nonwear == CONF_NONWEAR_TROIANO ? ACT_NONWEAR_TROIANO
                      : p->nonwear == CONF_NONWEAR_NONE  ? ACT_NONWEAR_NONE
                                                         : ACT_NONWEAR_CHOI;
    pc->act.sleep_sadeh = p->sleep_algorithm == CONF_SLEEP_SADEH;
    pc->act.sleep_pyactigraphy = p->sleep_scoring == CONF_SCORING_PYACTIGRAPHY;
    pc->act.rescore = p->sleep_rescore == CONF_RESCORE_WEBSTER ? ACT_RESCORE_WEBSTER
                      : p->sleep_rescore == CONF_RESCORE_NONE  ? ACT_RESCORE_NONE
                                                               : ACT_RESCORE_AUTO;
    pc->act.rhythm_pyactigraphy = p->rhythm_convention == CONF_RHYTHM_PYACTIGRAPHY;
    pc->act.binarize = p->rhythm_binarize == CONF_YES ? 1 : p->rhythm_binarize == CONF_NO ? 0 : -1;
    pc->act.count_vm = p->count_axis == CONF_AXIS_VM;
    pc->act.valid_day_wear_ms = p->valid_day_wear_ms;
    pc->max_participants = (size_t)p->max_participants;
    pc->max_sources = (size_t)p->max_sources;
    pc->max_buffered = (size_t)p->max_buffered;
    pc->max_day_events = (size_t)p->max_day_events;
    pc->n_participants = 0;
    pc->participants = NULL;
    *parts_out = NULL;
    /* One allocation holds the participants, then the nudge rules and their condition nodes,
     * so the caller frees it all with free(*parts_out). */
    size_t n_nodes = 0;
    for (size_t i = 0; i < c->n_nudges; i++)
        n_nodes += c->nudges[i].when.n + c->nudges[i].reengaged_when.n;
    size_t align = _Alignof(max_align_t);
    size_t off_rules = (c->n_participants * sizeof(struct pipeline_participant_conf) + align - 1) /
                       align * align;
    size_t off_nodes = off_rules + (c->n_nudges * sizeof(struct nudge_rule_conf) + align - 1) /
                                       align * align;
    size_t total = off_nodes + n_nodes * sizeof(struct nudge_node);
    if (total == 0)
        return 0;
    char *block = calloc(1, total);
    if (!block)
        return -ENOMEM;
    struct pipeline_participant_conf *parts = (struct pipeline_participant_conf *)block;
    /* The config's limits are the pipeline's (ids 64 bytes, zones 63, 32 apps, one line per
     * app list), so these copies cannot truncate. */
    for (size_t i = 0; i < c->n_participants; i++) {
        const struct conf_participant *cp = &c->participants[i];
        struct pipeline_participant_conf *pp = &parts[i];
        snprintf(pp->id, sizeof(pp->id), "%s", cp->id);
        snprintf(pp->tz, sizeof(pp->tz), "%s", cp->tz);
        pp->n_apps = cp->intervention_apps.n;
        for (size_t a = 0; a < cp->intervention_apps.n && a < PIPE_MAX_APPS; a++)
            pp->apps[a] = cp->intervention_apps.items[a]; /* the config outlives the pipeline */
        pp->prescribed_days_per_week = (double)cp->prescribed_days_per_week;
        pp->has_study_end = cp->study_end.set;
        pp->study_end_day = cp->study_end.day;
        snprintf(pp->supporter, sizeof(pp->supporter), "%s", cp->supporter);
    }
    pc->n_participants = c->n_participants;
    pc->participants = c->n_participants ? parts : NULL;

    struct nudge_rule_conf *rules = (struct nudge_rule_conf *)(block + off_rules);
    struct nudge_node *nodes = (struct nudge_node *)(block + off_nodes);
    for (size_t i = 0; i < c->n_nudges; i++) {
        const struct conf_nudge *n = &c->nudges[i];
        struct nudge_rule_conf *r = &rules[i];
        r->name = n->name;
        r->message = n->message;
        r->recipient = n->recipient;   /* same order as enum nudge_recipient */
        r->priority = n->priority;     /* and enum nudge_priority */
        r->probability = n->probability;
        r->cooldown_ms = n->cooldown_ms;
        r->max_per_day = (int)n->max_per_day;
        r->max_per_week = (int)n->max_per_week;
        r->quiet = n->quiet_hours.set;
        r->quiet_start_min = n->quiet_hours.start_min;
        r->quiet_end_min = n->quiet_hours.end_min;
        r->escalate_to = n->escalate_index;
        r->escalate_after_ms = n->escalate_after_ms;
        r->min_coverage = n->min_coverage;
        r->repeat_unanswered = n->repeat_unanswered;
        r->n_nodes = n->when.n;
        r->root = n->when.root;
        r->nodes = nodes;
        nodes = copy_nodes(&n->when, nodes);
        r->n_out_nodes = n->reengaged_when.n;
        r->out_root = n->reengaged_when.root;
        r->out_nodes = n->reengaged_when.n ? nodes : NULL;
        nodes = copy_nodes(&n->reengaged_when, nodes);
    }
    pc->nudge.seed = c->study.seed;
    pc->nudge.late_after_ms = c->study.nudge_late_after_ms;
    pc->nudge.n_rules = c->n_nudges;
    pc->nudge.rules = c->n_nudges ? rules : NULL;
    *parts_out = parts;
    return 0;
}
