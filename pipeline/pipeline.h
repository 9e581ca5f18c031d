/* The deterministic event-time pipeline: order/dedupe per source, per-participant watermarks,
 * local-calendar windows and the feature families. Pure: no clock, no I/O; output goes to
 * the record sink. Given the same events in the same arrival order it emits the same records
 * in the same order, whatever the wall-clock pacing. */
#ifndef ENGAGED_PIPELINE_H
#define ENGAGED_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "pipeline/event.h"
#include "pipeline/nudge.h"
#include "pipeline/record.h"

#define PIPE_MAX_APPS 32

struct pipeline_participant_conf {
    char id[EV_ID_MAX + 1];
    char tz[EV_TZ_MAX + 1];                       /* "" = UTC */
    size_t n_apps;                                /* intervention app ids */
    const char *apps[PIPE_MAX_APPS];              /* borrowed, like the participants array */
    double prescribed_days_per_week;              /* 1..7 */
    int has_study_end;                            /* no nudge decisions after study_end_day */
    int64_t study_end_day;                        /* local date, days since 1970-01-01 */
    char supporter[EV_ID_MAX + 1];                /* "" = none (named in supporter nudges) */
};

/* Actigraphy conventions ([pipeline] keys of the same names; docs/actigraphy.md). */
enum act_nonwear { ACT_NONWEAR_CHOI = 0, ACT_NONWEAR_TROIANO, ACT_NONWEAR_NONE };
enum act_rescore { ACT_RESCORE_AUTO = 0, ACT_RESCORE_WEBSTER, ACT_RESCORE_NONE };
struct pipeline_act_conf {
    int nonwear;                  /* enum act_nonwear (choi) */
    int sleep_sadeh;              /* 0 Cole-Kripke (default), 1 Sadeh */
    int sleep_pyactigraphy;       /* scoring convention: 0 ActiLife (default), 1 pyActigraphy */
    int rescore;                  /* enum act_rescore */
    int rhythm_pyactigraphy;      /* 0 classic (default), 1 pyActigraphy 1.2 */
    int binarize;                 /* -1 the convention's default, 0 no, 1 yes (> 4) */
    int count_vm;                 /* 0 axis 1 (default), 1 vector magnitude */
    int64_t valid_day_wear_ms;    /* act.valid_day: at least this much wear (10 h) */
    int epochs;                   /* replay --epochs: one `epoch` record per epoch */
    int summary;                  /* replay --summary: `recording` records at the end */
    size_t max_summary_days;      /* --summary keeps at most this many days per participant */
};

struct pipeline_conf {
    int64_t lateness_ms;          /* allowed out-of-orderness per source (default 10 min) */
    int64_t coverage_gap_ms;      /* longer silences of a stream count as missing data (12 h) */
    int64_t source_idle_ms;       /* a source this far behind the participant's newest stops
                                   * holding back its watermark (24 h; 0 = never) */
    int64_t revise_ms;            /* late events this far behind the watermark revise closed
                                   * days (records re-emitted with revision + 1); older ones
                                   * are only counted as late (default 1 d, at most 7 d) */
    int64_t screen_hold_ms;       /* how long a day waits for an unlock open at midnight (24 h) */
    int64_t ema_expire_ms;        /* a delivered prompt without an outcome expires this long
                                   * after delivery; later answers do not count (2 h) */
    double screen_ignore_shorter_min; /* RAPIDS IGNORE_EPISODES_SHORTER_THAN, 0 = off */
    double screen_ignore_longer_min;  /* RAPIDS IGNORE_EPISODES_LONGER_THAN (360), 0 = off */
    double app_ignore_shorter_min;    /* app episodes: RAPIDS IGNORE_EPISODES_SHORTER_THAN, 0 = off */
    double app_ignore_longer_min;     /* app episodes: RAPIDS IGNORE_EPISODES_LONGER_THAN (300), 0 = off */
    int64_t engage_session_gap_ms;    /* intervention-app uses closer than this are one session (30 s) */
    size_t n_app_include, n_app_exclude; /* group `all`: only the included apps (none listed = all),
                                          * less the excluded; an item ending in '.' is a prefix */
    char app_include[PIPE_MAX_APPS][EV_NAME_MAX + 1];
    char app_exclude[PIPE_MAX_APPS][EV_NAME_MAX + 1];
    size_t max_participants;      /* participants tracked at once (default 1024) */
    size_t max_sources;           /* sources tracked at once (default 4096) */
    size_t max_buffered;          /* events held for reordering, all participants (1 M) */
    size_t max_day_events;        /* screen events kept per participant and open day (100 k) */
    struct pipeline_act_conf act; /* actigraphy (docs/actigraphy.md) */
    struct nudge_conf nudge;      /* nudge rules (docs/nudges.md); none by default */
    const char *tzdir;            /* NULL: system tz database */
    size_t n_participants;
    const struct pipeline_participant_conf *participants; /* borrowed for the pipeline's life */
};

void pipeline_conf_defaults(struct pipeline_conf *c);

/* Outcome of pipeline_push (>= 0); negative values are errors. */
enum pipe_result {
    PIPE_ACCEPTED = 0,
    PIPE_DUPLICATE,   /* (source, seq) seen before */
    PIPE_LATE,        /* older than the watermark by more than revise: counted, not applied */
    PIPE_LIMIT,       /* a configured bound was hit (reason in stats) */
    PIPE_BAD_TZ,      /* tz event naming a zone the tz database does not have */
    PIPE_REVISED,     /* behind the watermark but within revise: closed days recomputed */
};

struct pipeline_stats {
    uint64_t accepted, duplicates, late, revised, limit_hits, bad_tz, records, sink_errors;
    uint64_t screen_discarded;    /* screen events discarded by the RAPIDS episode rules */
    uint64_t epochs_refused;      /* counts/accel the act family could not place (actigraphy.md) */
};

struct pipeline;

struct pipeline *pipeline_new(const struct pipeline_conf *c, record_sink_fn sink, void *ud,
                              int *err);
void pipeline_free(struct pipeline *p);
int pipeline_push(struct pipeline *p, const struct event *ev);
/* The hub's clock when the next pushed events arrived (ms, UTC): the live daemon sets it
 * before each push, recovery to each stored event's receive time. Only nudge decisions read
 * it, to flag those decided late_after or more after they fell due (after downtime). Unset
 * (0, replay of recordings), an event arrives at its own ts. */
void pipeline_set_clock(struct pipeline *p, int64_t received_ms);
/* End of input (replay): every buffered event is applied and every window closes; the last,
 * possibly partial, windows are emitted with their coverage. */
void pipeline_finish(struct pipeline *p);
const struct pipeline_stats *pipeline_get_stats(const struct pipeline *p);
size_t pipeline_participants(const struct pipeline *p, const char **ids, size_t cap);
struct tz_zone;
/* The participant's zone at UTC ms t as the pipeline has it: from the newest `tz` event
 * accepted (applied to the day windows or still waiting for the watermark) on, its zone;
 * before it, the configured zone switched by the `tz` events applied so far. NULL when the
 * pipeline has had no event of the participant yet (its zone is then the configured one).
 * Meant for now (a device clock): a time between switches still waiting gets the older. */
const struct tz_zone *pipeline_zone_at(const struct pipeline *p, const char *participant,
                                       int64_t t);

#endif
