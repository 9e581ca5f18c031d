/* The configuration: /etc/engaged/engaged.conf plus drop-ins (the *.conf files in engaged.conf.d)
 * (docs/config.md is the user reference). Loading is side-effect free: it reads the files
 * and the tz database, nothing else, so SIGHUP can build a new struct conf, validate it and
 * only then swap it in. Everything reachable from a struct conf is owned by it. */
#ifndef ENGAGED_CONF_H
#define ENGAGED_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONF_MAX_PARTICIPANTS 1024
#define CONF_MAX_SOURCES 4096
#define CONF_MAX_NUDGES 256
#define CONF_MAX_DROPINS 64
#define CONF_MAX_FILE_SIZE (1 << 20)  /* bytes per file */
#define CONF_MAX_ERRORS 100           /* reported per load; then loading stops */
#define CONF_LINE_MAX 199             /* bytes per line, without the newline */
#define CONF_MAX_ENDPOINTS 8          /* [publish] endpoint */
#define CONF_MAX_APPS 32              /* [participant] intervention_apps */
#define CONF_ID_SIZE 65               /* [A-Za-z0-9_-]{1,64} + NUL */
#define CONF_STR_SIZE (CONF_LINE_MAX + 1) /* any value fits in one line */
#define CONF_TZ_SIZE 64
#define CONF_FEATURE_SIZE 65          /* feature names in `when`: family.name, <= 64 bytes */
#define CONF_WHEN_MAX_CONDITIONS 32
#define CONF_WHEN_MAX_DEPTH 16

/* One error: file and 1-based line (0 = the file as a whole) and a message without the
 * "FILE:LINE: " prefix, which the callback adds when printing. Borrowed for the call. */
typedef void (*conf_err_fn)(void *ud, const char *file, int line, const char *msg);

/* Where something was defined. file points into struct conf's files[] (or is NULL). */
struct conf_loc {
    const char *file;
    int line;
};

/* Enum values. The names are the config spellings; their order is the table's. */
enum conf_sync { CONF_SYNC_NORMAL = 0, CONF_SYNC_FULL };
enum conf_rhythm_convention { CONF_RHYTHM_CLASSIC = 0, CONF_RHYTHM_PYACTIGRAPHY };
enum conf_sleep_algorithm { CONF_SLEEP_COLE_KRIPKE = 0, CONF_SLEEP_SADEH };
enum conf_auto_yes_no { CONF_AUTO = 0, CONF_YES, CONF_NO };            /* rhythm_binarize */
enum conf_sleep_scoring { CONF_SCORING_ACTILIFE = 0, CONF_SCORING_PYACTIGRAPHY };
enum conf_sleep_rescore { CONF_RESCORE_AUTO = 0, CONF_RESCORE_WEBSTER, CONF_RESCORE_NONE };
enum conf_nonwear { CONF_NONWEAR_CHOI = 0, CONF_NONWEAR_TROIANO, CONF_NONWEAR_NONE };
enum conf_count_axis { CONF_AXIS_AXIS1 = 0, CONF_AXIS_VM };
enum conf_driver { CONF_DRIVER_FILE = 0, CONF_DRIVER_INGEST, CONF_DRIVER_BLE, CONF_DRIVER_USB };
/* [source] connect of ble sources (docs/ble-scan.md) */
enum conf_connect { CONF_CONNECT_AUTO = 0, CONF_CONNECT_SCAN, CONF_CONNECT_DIRECT };
enum conf_recipient { CONF_TO_PARTICIPANT = 0, CONF_TO_SUPPORTER, CONF_TO_CLINICIAN };
enum conf_priority { CONF_PRIO_LOW = 0, CONF_PRIO_NORMAL, CONF_PRIO_HIGH };

/* Daily window in local minutes after midnight; end < start wraps past midnight. */
struct conf_timerange {
    bool set;
    int start_min, end_min;
};

struct conf_date {
    bool set;
    int64_t day;               /* days since 1970-01-01 (proleptic Gregorian) */
};

/* A comma-separated list; items are owned (strdup'd). */
struct conf_list {
    size_t n;
    char *items[CONF_MAX_APPS];
};

/* The nudge `when` expression as a tree in one array. Children are indices into nodes[];
 * -1 means none. An empty expression has n == 0. */
enum conf_expr_kind { CONF_EXPR_CMP = 0, CONF_EXPR_AND, CONF_EXPR_OR, CONF_EXPR_NOT };
enum conf_cmp { CONF_CMP_LT = 0, CONF_CMP_LE, CONF_CMP_GT, CONF_CMP_GE, CONF_CMP_EQ, CONF_CMP_NE };
/* What a condition compares: the feature's value, or its difference from the participant's
 * own median over the previous median_days local days (docs/config.md, "Nudge conditions"). */
enum conf_rel {
    CONF_REL_VALUE = 0,  /* x            OP number */
    CONF_REL_SHIFTS,     /* |x - median| OP number */
    CONF_REL_RISES,      /* x - median   OP number */
    CONF_REL_FALLS,      /* median - x   OP number */
};
struct conf_expr {
    enum conf_expr_kind kind;
    int a, b;                         /* AND/OR: both; NOT: a */
    char feature[CONF_FEATURE_SIZE];  /* CMP */
    enum conf_rel rel;
    int median_days;                  /* rel != CONF_REL_VALUE */
    enum conf_cmp cmp;
    double value;
};
struct conf_when {
    char text[CONF_STR_SIZE];         /* as written */
    size_t n;
    int root;
    struct conf_expr *nodes;          /* owned */
};

struct conf_daemon {
    int log_level;                    /* syslog priority 3..7 (daemon/log.h LOG_LVL_*) */
    int64_t watchdog_ms;              /* -1 = auto (systemd's WATCHDOG_USEC / 2), 0 = off */
    int64_t status_interval_ms;
    char ble_mgmt[CONF_STR_SIZE];     /* auto | off | sim:/PATH (daemon/ble.h ble_mgmt_parse) */
};

struct conf_store {
    char path[CONF_STR_SIZE];
    int64_t batch_max;                /* events per transaction */
    int64_t batch_delay_ms;
    int synchronous;                  /* enum conf_sync */
    int64_t cache_size;               /* bytes of SQLite page cache for the writer */
    int64_t ble_pending_max;          /* BLE events waiting to be submitted, at most */
    int64_t ble_coalesce_ms;          /* BLE input read at most this often under load */
};

struct conf_publish {
    size_t n_endpoints;               /* 0: no publisher */
    char endpoints[CONF_MAX_ENDPOINTS][CONF_STR_SIZE];
    /* Whether any file named an endpoint (else the list is the built-in default). Replay
     * publishes only to explicit endpoints so it never takes over a live daemon's socket. */
    bool endpoints_explicit;
    int64_t lvc_max_topics;           /* 0 = no last-value cache */
    int64_t sndhwm;
    bool event_topics;
    bool allow_app_names;
    char curve_secret_key_file[CONF_STR_SIZE];  /* "" = unset */
    char curve_clients_file[CONF_STR_SIZE];
};

struct conf_control {
    char endpoint[CONF_STR_SIZE];
    char curve_secret_key_file[CONF_STR_SIZE];
    char curve_clients_file[CONF_STR_SIZE];
};

struct conf_ingest {
    char endpoint[CONF_STR_SIZE];
    int64_t max_message;              /* bytes */
    int64_t max_lines;
    int64_t max_future_ms;            /* events further ahead of the hub's clock are refused */
    char curve_secret_key_file[CONF_STR_SIZE];
    char curve_clients_file[CONF_STR_SIZE];
};

struct conf_pipeline {
    int64_t lateness_ms;
    int64_t coverage_gap_ms;
    int64_t source_idle_ms;
    int64_t revise_ms;                /* late events within this revise closed days */
    int64_t ema_expire_ms;            /* a prompt without outcome expires this long after delivery */
    int64_t screen_hold_ms;
    int64_t screen_ignore_shorter_ms; /* 0 = off */
    int64_t screen_ignore_longer_ms;  /* 0 = off */
    int64_t app_ignore_shorter_ms;    /* 0 = off */
    int64_t app_ignore_longer_ms;     /* 0 = off */
    struct conf_list app_include;     /* group `all`: none = every app */
    struct conf_list app_exclude;
    int64_t engage_session_gap_ms;
    int64_t max_participants;
    int64_t max_sources;
    int64_t max_buffered;
    int64_t max_day_events;
    int rhythm_convention;            /* enum conf_rhythm_convention */
    int sleep_algorithm;              /* enum conf_sleep_algorithm */
    int rhythm_binarize;              /* enum conf_auto_yes_no */
    int sleep_scoring;                /* enum conf_sleep_scoring */
    int sleep_rescore;                /* enum conf_sleep_rescore */
    int nonwear;                      /* enum conf_nonwear */
    int count_axis;                   /* enum conf_count_axis */
    int64_t valid_day_wear_ms;        /* act.valid_day: wear needed (10 h) */
};

struct conf_study {
    uint64_t seed;
    int64_t nudge_late_after_ms;      /* decisions this long after they fell due are "late" */
    char name[CONF_STR_SIZE];
};

struct conf_participant {
    char id[CONF_ID_SIZE];
    struct conf_loc loc;              /* the first [participant ID] header */
    char tz[CONF_TZ_SIZE];            /* IANA name, checked against the tz database */
    struct conf_list intervention_apps;
    int64_t prescribed_days_per_week; /* 1..7 */
    struct conf_date study_end;
    char supporter[CONF_ID_SIZE];     /* "" = none */
};

struct conf_source {
    char name[CONF_ID_SIZE];
    struct conf_loc loc;
    int driver;                       /* enum conf_driver */
    char participant[CONF_ID_SIZE];   /* "" = events name their participant */
    char path[CONF_STR_SIZE];         /* driver options; "" = unset */
    char address[32];
    char transport[CONF_STR_SIZE];
    char vid_pid[16];
    char serial[128];
    char record[CONF_STR_SIZE];       /* ble: btsnoop capture appended to; "" = none */
    int64_t record_max;               /* ble: bytes the capture may reach */
    int connect;                      /* ble: enum conf_connect */
    char hci[CONF_STR_SIZE];          /* ble: the HCI device scanned with; "" = auto */
    char irk[64];                     /* ble: the device's Identity Resolving Key as BlueZ
                                       * writes it (32 hex digits); "" = none. A secret */
    int64_t nudge_resend_ms;          /* ble: a relay nudge without nudge_ack is written
                                       * again after this */
    int64_t scan_silence_ms;          /* ble: a scanner that hears no advertisement at all
                                       * for this long while a source waits is restarted */
    int set_clock;                    /* ble: write the device clock (Current Time) when a
                                       * reading is more than clock_tolerance_ms off */
    int64_t clock_tolerance_ms;
};

struct conf_nudge {
    char name[CONF_ID_SIZE];
    struct conf_loc loc;
    struct conf_when when;
    int recipient;                    /* enum conf_recipient */
    char message[CONF_STR_SIZE];
    int priority;                     /* enum conf_priority */
    double probability;               /* 0..1; < 1 = micro-randomised */
    int64_t cooldown_ms;
    int64_t max_per_day, max_per_week;
    struct conf_timerange quiet_hours; /* participant-local */
    char escalate_to[CONF_ID_SIZE];   /* "" = none */
    int escalate_index;               /* index of escalate_to in nudges[], or -1 */
    int64_t escalate_after_ms;
    double min_coverage;
    bool repeat_unanswered;           /* may repeat while the last one is unanswered */
    struct conf_when reengaged_when;  /* n == 0: none */
};

struct conf {
    struct conf_daemon daemon;
    struct conf_store store;
    struct conf_publish publish;
    struct conf_control control;
    struct conf_ingest ingest;
    struct conf_pipeline pipeline;
    struct conf_study study;
    /* Named sections, in order of first appearance. */
    size_t n_participants;
    struct conf_participant *participants;
    size_t n_sources;
    struct conf_source *sources;
    size_t n_nudges;
    struct conf_nudge *nudges;
    /* The files read, in order (main file first). */
    size_t n_files;
    char **files;
};

/* Loads path, then the *.conf files in PATH.d in strcmp order of their names (merge rules:
 * docs/config.md). Every error, up to CONF_MAX_ERRORS, goes to err (may be NULL); a line of
 * 0 means the whole file. Returns 0 with *out set, or a negative value with *out NULL:
 * -ENOENT if the main file does not exist, another -errno if it cannot be read (-ENOMEM on
 * allocation failure), else minus the number of errors reported. Test `< 0` only: the
 * ranges overlap. Reads files and the tz database ($TZDIR or /usr/share/zoneinfo) only. */
int conf_load(const char *path, struct conf **out, conf_err_fn err, void *ud);

/* The built-in configuration: what an empty file gives (replay uses it without -c).
 * NULL on allocation failure. */
struct conf *conf_new_default(void);

void conf_free(struct conf *c);

/* Lookups by name; NULL if absent. Returned pointers are borrowed from c. */
const struct conf_participant *conf_participant(const struct conf *c, const char *id);
const struct conf_source *conf_source(const struct conf *c, const char *name);
const struct conf_nudge *conf_nudge(const struct conf *c, const char *name);

/* The config spelling of an enum value of a key ("info", "cole-kripke"), or NULL. */
const char *conf_enum_name(const char *section, const char *key, int value);

/* Parses a duration as the config does ("30s", "10min", "2h", "7d", "500ms", "1h30min",
 * plain number = seconds) into milliseconds. Returns 0 or -EINVAL / -ERANGE. */
int conf_parse_duration(const char *s, int64_t *ms);

struct pipeline_conf;
struct pipeline_participant_conf;
/* Fills the pipeline's configuration: pipeline_conf_defaults(), then the [pipeline] keys and
 * the participants. *parts_out is a malloc'd array (free() it after the pipeline is freed;
 * pc->participants borrows it); NULL when there are no participants. Returns 0, or -ENOMEM
 * with *parts_out NULL and pc holding the [pipeline] keys but no participants. */
int conf_fill_pipeline(const struct conf *c, struct pipeline_conf *pc,
                       struct pipeline_participant_conf **parts_out);

#endif
