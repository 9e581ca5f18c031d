/* The feature catalogue (docs/features.md): the name of every feature the pipeline emits.
 * Nudge conditions are checked against it when the configuration is loaded, so a misspelt
 * feature is a configuration error rather than a rule that silently never fires.
 * tests/unit/test_catalogue.c checks that every record of the golden replays is named here
 * and that every name here is documented. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/record.h"

static const char *const names[] = { /* sorted (strcmp) */
    "act.epoch", "act.is", "act.iv", "act.l5", "act.l5_onset", "act.m10", "act.m10_onset",
    "act.nights", "act.nonwear_minutes", "act.ra", "act.sleep_efficiency", "act.sleep_midpoint",
    "act.sleep_offset", "act.sleep_onset", "act.sri", "act.total_counts", "act.tst_minutes",
    "act.valid_day", "act.waso_minutes", "act.wear_minutes",
    "adherence.ema_7d", "adherence.intervention_7d", "adherence.wear_7d",
    "alliance.dwai",
    "app.countepisodeall", "app.countepisodeintervention", "app.counteventall",
    "app.counteventintervention", "app.frequencyentropyall", "app.frequencyentropyintervention",
    "app.maxdurationall", "app.maxdurationintervention", "app.meandurationall",
    "app.meandurationintervention", "app.mindurationall", "app.mindurationintervention",
    "app.sumdurationall", "app.sumdurationintervention", "app.timeoffirstuseall",
    "app.timeoffirstuseintervention", "app.timeoflastuseall", "app.timeoflastuseintervention",
    "ema.answered", "ema.compliance", "ema.compliance_7d", "ema.delivered", "ema.expired",
    "ema.latency_median_s",
    "engage.active_days_7d", "engage.days_since_last_use", "engage.minutes",
    "engage.modules_completed", "engage.night_use_minutes", "engage.sessions",
    "nudge.opened_rate_7d", "nudge.reengaged_24h", "nudge.sent", "nudge.time_to_open_s",
    "screen.avgdurationunlock", "screen.countepisodeunlock", "screen.firstuseafter00unlock",
    "screen.maxdurationunlock", "screen.mindurationunlock", "screen.stddurationunlock",
    "screen.sumdurationunlock",
    "yield.phone", "yield.wearable",
};
#define N_NAMES (sizeof names / sizeof names[0])

static int by_name(const void *key, const void *elem)
{
    return strcmp(key, *(const char *const *)elem);
}

int feature_known(const char *name)
{
    return bsearch(name, names, N_NAMES, sizeof names[0], by_name) != NULL;
}

size_t feature_catalogue(const char *const **out)
{
    *out = names;
    return N_NAMES;
}

/* Edit distance (insertions, deletions, substitutions), capped: names are at most 64 bytes. */
static size_t distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b), row[65];
    if (na > 64 || nb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

const char *feature_closest(const char *name)
{
    const char *best = NULL;
    size_t d_best = 4; /* suggest only close misspellings */
    for (size_t i = 0; i < N_NAMES; i++) {
        size_t d = distance(name, names[i]);
        if (d < d_best) {
            d_best = d;
            best = names[i];
        }
    }
    return best;
}
