/* From the configuration to the pipeline's own config struct. Kept apart from the loader so
 * that linking the loader does not pull in the pipeline. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/conf.h"
#include "pipeline/pipeline.h"

int conf_fill_pipeline(const struct conf *c, struct pipeline_conf *pc,
                       struct pipeline_participant_conf **parts_out)
{
    const struct conf_pipeline *p = &c->pipeline;
    pipeline_conf_defaults(pc);
    pc->lateness_ms = p->lateness_ms;
    pc->coverage_gap_ms = p->coverage_gap_ms;
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
    if (c->n_participants == 0)
        return 0;
    struct pipeline_participant_conf *parts = calloc(c->n_participants, sizeof(*parts));
    if (!parts)
        return -ENOMEM;
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
    }
    pc->n_participants = c->n_participants;
    pc->participants = parts;
    *parts_out = parts;
    return 0;
}
