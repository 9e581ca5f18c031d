/* Alliance-informed nudges (docs/nudges.md): rules over a participant's feature records,
 * decided in event time inside the pipeline so that replay and the live daemon decide alike.
 *
 * The configuration loader (daemon/conf*.c) parses `[nudge NAME]` sections; the pipeline
 * gets them in this form, with the `when` condition as a node array. The engine itself is
 * the `nudge` family (pipeline/nudge.c): it sees every record the other families emit, the
 * participant's intervention use and nudge_ack events, and emits decision records
 * (struct nudge_decision) and the nudge.* features through the pipeline's sink. */
#ifndef ENGAGED_NUDGE_H
#define ENGAGED_NUDGE_H

#include <stddef.h>
#include <stdint.h>

#define NUDGE_MAX_RULES 256
#define NUDGE_MAX_CONDITIONS 32   /* comparisons per condition */
#define NUDGE_MAX_MEDIAN_DAYS 90
#define NUDGE_ID_LEN 17           /* "n" + 16 hex digits */

/* Same order as the configuration's enums (daemon/conf.h). */
enum nudge_recipient { NUDGE_TO_PARTICIPANT = 0, NUDGE_TO_SUPPORTER, NUDGE_TO_CLINICIAN };
enum nudge_priority { NUDGE_PRIO_LOW = 0, NUDGE_PRIO_NORMAL, NUDGE_PRIO_HIGH };
enum nudge_node_kind { NUDGE_CMP = 0, NUDGE_AND, NUDGE_OR, NUDGE_NOT };
enum nudge_rel { NUDGE_VALUE = 0, NUDGE_SHIFTS, NUDGE_RISES, NUDGE_FALLS };
enum nudge_cmp { NUDGE_LT = 0, NUDGE_LE, NUDGE_GT, NUDGE_GE, NUDGE_EQ, NUDGE_NE };

struct nudge_node {
    int kind;                /* enum nudge_node_kind */
    int a, b;                /* AND/OR: both children; NOT: a */
    const char *feature;     /* CMP: borrowed */
    int rel;                 /* enum nudge_rel */
    int median_days;         /* rel != NUDGE_VALUE: 3..90 */
    int cmp;                 /* enum nudge_cmp */
    double value;
};

struct nudge_rule_conf {
    const char *name, *message;       /* borrowed */
    int recipient, priority;
    double probability;               /* 0..1; < 1 = micro-randomised */
    int64_t cooldown_ms;
    int max_per_day, max_per_week;
    int quiet;                        /* quiet hours set */
    int quiet_start_min, quiet_end_min; /* local minutes; end < start wraps past midnight */
    int escalate_to;                  /* index of the rule that takes over, or -1 */
    int64_t escalate_after_ms;
    double min_coverage;
    int repeat_unanswered;            /* 0: no repeat while the last nudge is unanswered */
    size_t n_nodes;
    int root;
    const struct nudge_node *nodes;   /* borrowed */
    /* optional `reengaged_when`: re-engagement (which stops an escalation) is this condition
     * turning true; without it, intervention use or `when` turning false */
    size_t n_out_nodes;               /* 0 = none */
    int out_root;
    const struct nudge_node *out_nodes;
};

struct nudge_conf {
    uint64_t seed;                    /* [study] seed */
    int64_t late_after_ms;            /* a decision made this long after it fell due is late */
    size_t n_rules;
    const struct nudge_rule_conf *rules; /* borrowed for the pipeline's life */
};

/* One piece of a decision's evidence: a comparison of its rule's condition. */
struct nudge_evidence {
    const char *feature;
    int rel;                          /* enum nudge_rel */
    int has_value;
    double value, coverage;
    char local_date[11];              /* of the value ("" when none) */
    int has_median;
    double median;                    /* rel != NUDGE_VALUE */
    int result;                       /* 1 true, 0 false, -1 unknown */
};

/* A decision record (spec §6): what the sink receives in feature_record.nudge. */
struct nudge_decision {
    char id[NUDGE_ID_LEN + 1];
    int64_t ts;                       /* decision time (event time) */
    int64_t decided;                  /* hub clock when decided: the arrival of the
                                       * participant's newest event (nudge_host.clock) */
    char local_date[11];
    const char *rule, *message;
    int recipient, priority;
    const char *supporter;            /* the participant's supporter, NULL if none */
    const char *decision;             /* "send", "withhold", "suppressed" */
    const char *reason;
    double p;                         /* probability used */
    int available;                    /* eligible for randomisation (no policy suppressed it) */
    int late;                         /* decided late_after or more after it fell due */
    int64_t deferred_from;            /* quiet hours: when it first fell due; INT64_MIN none */
    const char *escalated_from;       /* rule whose unanswered nudge led here, NULL none */
    const char *escalated_id;         /* that nudge's id */
    size_t n_evidence;
    const struct nudge_evidence *evidence;
};

/* ---- the engine (pipeline/nudge.c), independent of the pipeline core -------------------- */

struct feature_record;
struct day_window;
struct event;
struct tzline;
struct pipeline_participant_conf;
struct nudge_plan;   /* the rules compiled once */
struct nudge_state;  /* one participant */

/* What the engine needs to know about, and do for, the participant it decides for. */
struct nudge_host {
    void *ud;
    const char *participant;
    const struct pipeline_participant_conf *pc;   /* NULL: not configured */
    const struct tzline *tzl;                     /* the participant's zones over time */
    int64_t clock;                                /* hub clock of the newest event */
    double (*phone_coverage)(void *ud, int64_t start, int64_t end);
    void (*emit)(void *ud, struct feature_record *r); /* fills in the participant */
};

/* NULL with *err = -EINVAL (a rule set nudge_conf_check refuses) or -ENOMEM. c is borrowed. */
struct nudge_plan *nudge_plan_new(const struct nudge_conf *c, int *err);
void nudge_plan_free(struct nudge_plan *p);
struct nudge_state *nudge_state_new(const struct nudge_plan *p);
void nudge_state_free(struct nudge_state *s);
/* Inputs, in any order; they are queued by event time. */
void nudge_feed_record(struct nudge_state *s, const struct feature_record *r);
void nudge_feed_day(struct nudge_state *s, const struct day_window *closed);
void nudge_feed_event(struct nudge_state *s, const struct nudge_host *h, const struct event *ev);
/* Decides everything queued up to event time `limit`: the caller guarantees that nothing
 * earlier can still be fed (every event up to it and every day ending by it are in). */
void nudge_run(struct nudge_state *s, const struct nudge_host *h, int64_t limit);
uint64_t nudge_state_evaluations(const struct nudge_state *s);

/* Names as written in decision records (pipeline/record.c). */
const char *nudge_recipient_name(int r);
const char *nudge_priority_name(int p);

/* The PRNG draw of a micro-randomised decision, in [0, 1): a pure function of the study
 * seed, the participant, the rule and the decision time (docs/nudges.md). */
double nudge_draw(uint64_t seed, const char *participant, const char *rule, int64_t ts);

/* Checks a rule set (indices, node trees, ranges); 0 or -EINVAL with *why set. */
int nudge_conf_check(const struct nudge_conf *c, const char **why);

#endif
