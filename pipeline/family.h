/* Internal interface between the pipeline core and the feature families. A family is one
 * file with a static const struct family_ops listed in pipeline.c's registry; it keeps
 * per-participant state, sees that participant's events in event-time order, and emits
 * records when the core closes a local day. Families never do I/O or read a clock. */
#ifndef ENGAGED_FAMILY_H
#define ENGAGED_FAMILY_H

#include "pipeline/pipeline.h"
#include "pipeline/tz.h"

struct pstate;  /* one participant, owned by the core */
struct family_ops;

/* What a family may read about its participant. */
const struct pipeline_conf *pstate_conf(const struct pstate *ps);
const char *pstate_id(const struct pstate *ps);
const struct pipeline_participant_conf *pstate_pconf(const struct pstate *ps); /* may be NULL */
/* Fraction of [start, end) covered by the participant's phone stream (coverage rule in
 * docs/features.md: consecutive phone events closer than coverage_gap cover the time between). */
double pstate_phone_coverage(const struct pstate *ps, int64_t start, int64_t end);
/* Emit one record for the participant; value NAN (or has_value 0) means null. */
/* The same for the wearable streams (counts, accel, steps, hr, wear). */
double pstate_wearable_coverage(const struct pstate *ps, int64_t start, int64_t end);
void pstate_emit_day(struct pstate *ps, const struct day_window *w, const char *feature,
                     int has_value, double value, const char *unit, double coverage,
                     int revision);
void pstate_count_discarded(struct pstate *ps, uint64_t n);
void pstate_count_refused_epochs(struct pstate *ps, uint64_t n);
/* Emit one record of any window kind: day and 7d windows name the local_date of their (last)
 * day and its zone; event windows have start == end == the event time (local_date of it). */
void pstate_emit(struct pstate *ps, enum window_kind kind, int64_t start, int64_t end,
                 const struct day_window *day, const char *feature, int has_value, double value,
                 const char *unit, double coverage, int revision);
/* One `epoch` record (replay --epochs): [start, end) of day w, with its wear/sleep flags. */
void pstate_emit_epoch(struct pstate *ps, int64_t start, int64_t end, const struct day_window *w,
                       double value, double coverage, const struct epoch_extra *x);
/* Emit a record built by the family (participant is filled in); the nudge family uses it for
 * decisions and for features that name their nudge. */
void pstate_emit_record(struct pstate *ps, struct feature_record *r);
/* The hub clock of the participant's newest event (pipeline_set_clock; its ts if unset). */
int64_t pstate_clock(const struct pstate *ps);
/* The nudge plan (compiled rules) of the pipeline, NULL when there are no rules. */
const struct nudge_plan *pstate_nudge_plan(const struct pstate *ps);
/* The participant's time-zone timeline (for cal_day_at, cal_7d). */
const struct tzline *pstate_tzline(const struct pstate *ps);
/* The state another family keeps for this participant, or NULL if f is not registered. Every
 * callback runs family by family in registry order, so a family listed after f sees f's state
 * already updated for the same event or day (the engage family reads the app family's log). */
void *pstate_family_state(struct pstate *ps, const struct family_ops *f);

/* family_ops.types: the event types a family's on_event reads, as bits 1u << type; 0 = every
 * event (late events always reach every family: they can change the coverage of a day). */
#define EV_BIT(t) (1u << (t))

struct family_ops {
    const char *name;
    unsigned types; /* on_event sees only these; on_late_event sees every late event */
    void *(*state_new)(struct pstate *ps);
    void (*state_free)(void *st);
    /* events in event-time order (ties in arrival order); ev->source is empty (the buffer
     * does not keep it, pipeline.c) and ev->participant is ps's */
    void (*on_event)(void *st, struct pstate *ps, const struct event *ev);
    /* may the day w be closed now that the watermark is wm? (finishing = end of input) */
    int (*day_ready)(void *st, struct pstate *ps, const struct day_window *w, int64_t wm,
                     int finishing);
    /* emit the day's records (revision 0); state older than the revision horizon
     * ([pipeline] revise before w->end) may then be dropped */
    void (*close_day)(void *st, struct pstate *ps, const struct day_window *w);
    /* a late event within the revision horizon, in any position relative to earlier ones */
    void (*on_late_event)(void *st, struct pstate *ps, const struct event *ev);
    /* recompute a closed day after late events; re-emit it with revision + 1 only if any of
     * its records changed */
    void (*revise_day)(void *st, struct pstate *ps, const struct day_window *w);
    /* optional: end of input, after the last day closed (replay --summary) */
    void (*finish)(void *st, struct pstate *ps);
};

extern const struct family_ops family_screen;
extern const struct family_ops family_ema;
extern const struct family_ops family_alliance;
extern const struct family_ops family_yield;
extern const struct family_ops family_act;
extern const struct family_ops family_app;
extern const struct family_ops family_engage;
extern const struct family_ops family_nudge;   /* must come last: it reads every record */

/* The nudge family's hooks into the core (pipeline/nudge_family.c). */
/* Every record the families emit (before the sink). */
void nudge_observe(struct pstate *ps, void *st, const struct feature_record *r);
/* Decide everything that fell due up to `limit` (event time): called after days close. */
void nudge_advance(struct pstate *ps, void *st, int64_t limit);

#endif
