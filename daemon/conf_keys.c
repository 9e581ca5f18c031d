/* The key table and the value parsers. One row per key: the table is the parser, the
 * validator and (through docs/config.md, kept in step by test_conf) the reference. Defaults
 * are written in config syntax and go through the same parsers, so a default can never
 * violate its own range. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/conf_internal.h"
#include "daemon/log.h"

const struct conf_sect_info conf_sects[CS__COUNT] = {
    [CS_DAEMON] = {"daemon", false},       [CS_STORE] = {"store", false},
    [CS_PUBLISH] = {"publish", false},     [CS_CONTROL] = {"control", false},
    [CS_INGEST] = {"ingest", false},       [CS_PIPELINE] = {"pipeline", false},
    [CS_STUDY] = {"study", false},         [CS_PARTICIPANT] = {"participant", true},
    [CS_SOURCE] = {"source", true},        [CS_NUDGE] = {"nudge", true},
};

/* Enum spellings, in the order of the enums in conf.h. */
static const char *const n_log_level[] = {"err", "warning", "notice", "info", "debug", NULL};
static const int v_log_level[] = {LOG_LVL_ERR, LOG_LVL_WARNING, LOG_LVL_NOTICE, LOG_LVL_INFO,
                                  LOG_LVL_DEBUG};
static const char *const n_sync[] = {"normal", "full", NULL};
static const char *const n_rhythm[] = {"classic", "pyactigraphy", NULL};
static const char *const n_sleep_alg[] = {"cole-kripke", "sadeh", NULL};
static const char *const n_auto_yes_no[] = {"auto", "yes", "no", NULL};
static const char *const n_scoring[] = {"actilife", "pyactigraphy", NULL};
static const char *const n_rescore[] = {"auto", "webster", "none", NULL};
static const char *const n_nonwear[] = {"choi", "troiano", "none", NULL};
static const char *const n_axis[] = {"axis1", "vm", NULL};
static const char *const n_driver[] = {"file", "ingest", "ble", "usb", NULL};
static const char *const n_connect[] = {"auto", "scan", "direct", NULL};
static const char *const n_recipient[] = {"participant", "supporter", "clinician", NULL};
static const char *const n_priority[] = {"low", "normal", "high", NULL};

#define FLD(S, f) .off = offsetof(struct S, f), .size = sizeof(((struct S *)0)->f)
#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

/* The three ZeroMQ sockets share their CURVE keys' shape. */
#define CURVE_KEYS(CS, S)                                                                   \
    {.sect = CS, .name = "curve_secret_key_file", .type = CT_PATH,                          \
     FLD(S, curve_secret_key_file)},                                                        \
    {.sect = CS, .name = "curve_clients_file", .type = CT_PATH, FLD(S, curve_clients_file)}

const struct conf_key conf_keys[] = {
    {.sect = CS_DAEMON, .name = "log_level", .type = CT_ENUM, FLD(conf_daemon, log_level),
     .def = "info", .names = n_log_level, .values = v_log_level},
    {.sect = CS_DAEMON, .name = "watchdog", .type = CT_DURATION, FLD(conf_daemon, watchdog_ms),
     .min = 0, .max = HOUR, .def = "auto", .flags = CK_AUTO},
    {.sect = CS_DAEMON, .name = "status_interval", .type = CT_DURATION,
     FLD(conf_daemon, status_interval_ms), .min = SEC, .max = HOUR, .def = "60s"},
    {.sect = CS_DAEMON, .name = "ble_mgmt", .type = CT_STRING, FLD(conf_daemon, ble_mgmt),
     .def = "auto"},

    {.sect = CS_STORE, .name = "path", .type = CT_PATH, FLD(conf_store, path),
     .def = "/var/lib/engaged/engaged.db"},
    {.sect = CS_STORE, .name = "batch_max", .type = CT_INT, FLD(conf_store, batch_max),
     .min = 1, .max = 100000, .def = "1000"},
    {.sect = CS_STORE, .name = "batch_delay", .type = CT_DURATION,
     FLD(conf_store, batch_delay_ms), .min = 0, .max = 10 * SEC, .def = "50ms"},
    {.sect = CS_STORE, .name = "synchronous", .type = CT_ENUM, FLD(conf_store, synchronous),
     .def = "normal", .names = n_sync},
    {.sect = CS_STORE, .name = "cache_size", .type = CT_SIZE, FLD(conf_store, cache_size),
     .min = 64 << 10, .max = 1LL << 30, .def = "512KiB"},
    {.sect = CS_STORE, .name = "ble_pending_max", .type = CT_INT,
     FLD(conf_store, ble_pending_max), .min = 100, .max = 1000000, .def = "50000"},
    {.sect = CS_STORE, .name = "ble_coalesce", .type = CT_DURATION,
     FLD(conf_store, ble_coalesce_ms), .min = 0, .max = 50, .def = "3ms"},

    {.sect = CS_PUBLISH, .name = "endpoint", .type = CT_ENDPOINT,
     .off = offsetof(struct conf_publish, endpoints), .size = CONF_STR_SIZE,
     .def = "ipc:///run/engaged/feed", .flags = CK_REPEATABLE,
     .count_off = offsetof(struct conf_publish, n_endpoints), .max_count = CONF_MAX_ENDPOINTS},
    {.sect = CS_PUBLISH, .name = "lvc_max_topics", .type = CT_INT,
     FLD(conf_publish, lvc_max_topics), .min = 0, .max = 10000000, .def = "100000"},
    {.sect = CS_PUBLISH, .name = "sndhwm", .type = CT_INT, FLD(conf_publish, sndhwm),
     .min = 1, .max = 10000000, .def = "10000"},
    {.sect = CS_PUBLISH, .name = "event_topics", .type = CT_BOOL,
     FLD(conf_publish, event_topics), .def = "no"},
    {.sect = CS_PUBLISH, .name = "allow_app_names", .type = CT_BOOL,
     FLD(conf_publish, allow_app_names), .def = "no"},
    CURVE_KEYS(CS_PUBLISH, conf_publish),

    {.sect = CS_CONTROL, .name = "endpoint", .type = CT_ENDPOINT, FLD(conf_control, endpoint),
     .def = "ipc:///run/engaged/control"},
    CURVE_KEYS(CS_CONTROL, conf_control),

    {.sect = CS_INGEST, .name = "endpoint", .type = CT_ENDPOINT, FLD(conf_ingest, endpoint),
     .def = "ipc:///run/engaged/ingest"},
    {.sect = CS_INGEST, .name = "max_message", .type = CT_SIZE, FLD(conf_ingest, max_message),
     .min = 1024, .max = 64LL << 20, .def = "4MiB"},
    {.sect = CS_INGEST, .name = "max_lines", .type = CT_INT, FLD(conf_ingest, max_lines),
     .min = 1, .max = 100000, .def = "10000"}, /* a message is one store request */
    {.sect = CS_INGEST, .name = "max_future", .type = CT_DURATION,
     FLD(conf_ingest, max_future_ms), .min = 0, .max = 365 * DAY, .def = "1d"},
    CURVE_KEYS(CS_INGEST, conf_ingest),

    {.sect = CS_PIPELINE, .name = "lateness", .type = CT_DURATION,
     FLD(conf_pipeline, lateness_ms), .min = 0, .max = 7 * DAY, .def = "10min"},
    {.sect = CS_PIPELINE, .name = "ema_expire", .type = CT_DURATION,
     FLD(conf_pipeline, ema_expire_ms), .min = MIN, .max = 7 * DAY, .def = "2h"},
    {.sect = CS_PIPELINE, .name = "revise", .type = CT_DURATION,
     FLD(conf_pipeline, revise_ms), .min = 0, .max = 7 * DAY, .def = "1d"},
    {.sect = CS_PIPELINE, .name = "coverage_gap", .type = CT_DURATION,
     FLD(conf_pipeline, coverage_gap_ms), .min = MIN, .max = 30 * DAY, .def = "12h"},
    {.sect = CS_PIPELINE, .name = "source_idle", .type = CT_DURATION,
     FLD(conf_pipeline, source_idle_ms), .min = 0, .max = 30 * DAY, .def = "24h"},
    {.sect = CS_PIPELINE, .name = "screen_hold", .type = CT_DURATION,
     FLD(conf_pipeline, screen_hold_ms), .min = 0, .max = 2 * DAY, .def = "24h"},
    {.sect = CS_PIPELINE, .name = "screen_ignore_shorter", .type = CT_DURATION,
     FLD(conf_pipeline, screen_ignore_shorter_ms), .min = 0, .max = DAY, .def = "0"},
    {.sect = CS_PIPELINE, .name = "screen_ignore_longer", .type = CT_DURATION,
     FLD(conf_pipeline, screen_ignore_longer_ms), .min = 0, .max = 7 * DAY, .def = "360min"},
    {.sect = CS_PIPELINE, .name = "app_ignore_shorter", .type = CT_DURATION,
     FLD(conf_pipeline, app_ignore_shorter_ms), .min = 0, .max = DAY, .def = "0"},
    {.sect = CS_PIPELINE, .name = "app_ignore_longer", .type = CT_DURATION,
     FLD(conf_pipeline, app_ignore_longer_ms), .min = 0, .max = 7 * DAY, .def = "300min"},
    {.sect = CS_PIPELINE, .name = "app_include", .type = CT_LIST,
     FLD(conf_pipeline, app_include), .min = 0, .max = CONF_MAX_APPS},
    {.sect = CS_PIPELINE, .name = "app_exclude", .type = CT_LIST,
     FLD(conf_pipeline, app_exclude), .min = 0, .max = CONF_MAX_APPS},
    {.sect = CS_PIPELINE, .name = "engage_session_gap", .type = CT_DURATION,
     FLD(conf_pipeline, engage_session_gap_ms), .min = 0, .max = DAY, .def = "30s"},
    {.sect = CS_PIPELINE, .name = "max_participants", .type = CT_INT,
     FLD(conf_pipeline, max_participants), .min = 1, .max = 1000000, .def = "1024"},
    {.sect = CS_PIPELINE, .name = "max_sources", .type = CT_INT,
     FLD(conf_pipeline, max_sources), .min = 1, .max = 1000000, .def = "4096"},
    {.sect = CS_PIPELINE, .name = "max_buffered", .type = CT_INT,
     FLD(conf_pipeline, max_buffered), .min = 1, .max = 100000000, .def = "1000000"},
    {.sect = CS_PIPELINE, .name = "max_day_events", .type = CT_INT,
     FLD(conf_pipeline, max_day_events), .min = 1, .max = 10000000, .def = "100000"},
    {.sect = CS_PIPELINE, .name = "rhythm_convention", .type = CT_ENUM,
     FLD(conf_pipeline, rhythm_convention), .def = "classic", .names = n_rhythm},
    {.sect = CS_PIPELINE, .name = "sleep_algorithm", .type = CT_ENUM,
     FLD(conf_pipeline, sleep_algorithm), .def = "cole-kripke", .names = n_sleep_alg},
    {.sect = CS_PIPELINE, .name = "rhythm_binarize", .type = CT_ENUM,
     FLD(conf_pipeline, rhythm_binarize), .def = "auto", .names = n_auto_yes_no},
    {.sect = CS_PIPELINE, .name = "sleep_scoring", .type = CT_ENUM,
     FLD(conf_pipeline, sleep_scoring), .def = "actilife", .names = n_scoring},
    {.sect = CS_PIPELINE, .name = "sleep_rescore", .type = CT_ENUM,
     FLD(conf_pipeline, sleep_rescore), .def = "auto", .names = n_rescore},
    {.sect = CS_PIPELINE, .name = "nonwear", .type = CT_ENUM, FLD(conf_pipeline, nonwear),
     .def = "choi", .names = n_nonwear},
    {.sect = CS_PIPELINE, .name = "count_axis", .type = CT_ENUM,
     FLD(conf_pipeline, count_axis), .def = "axis1", .names = n_axis},
    {.sect = CS_PIPELINE, .name = "valid_day_wear", .type = CT_DURATION,
     FLD(conf_pipeline, valid_day_wear_ms), .min = 0, .max = DAY, .def = "10h"},

    {.sect = CS_STUDY, .name = "seed", .type = CT_U64, FLD(conf_study, seed), .def = "0"},
    {.sect = CS_STUDY, .name = "name", .type = CT_STRING, FLD(conf_study, name)},
    {.sect = CS_STUDY, .name = "nudge_late_after", .type = CT_DURATION,
     FLD(conf_study, nudge_late_after_ms), .min = MIN, .max = 30 * DAY, .def = "6h"},

    {.sect = CS_PARTICIPANT, .name = "tz", .type = CT_TZ, FLD(conf_participant, tz),
     .def = "UTC"},
    {.sect = CS_PARTICIPANT, .name = "intervention_apps", .type = CT_LIST,
     FLD(conf_participant, intervention_apps), .min = 0, .max = CONF_MAX_APPS},
    {.sect = CS_PARTICIPANT, .name = "prescribed_days_per_week", .type = CT_INT,
     FLD(conf_participant, prescribed_days_per_week), .min = 1, .max = 7, .def = "7"},
    {.sect = CS_PARTICIPANT, .name = "study_end", .type = CT_DATE,
     FLD(conf_participant, study_end)},
    {.sect = CS_PARTICIPANT, .name = "supporter", .type = CT_ID,
     FLD(conf_participant, supporter)},

    {.sect = CS_SOURCE, .name = "driver", .type = CT_ENUM, FLD(conf_source, driver),
     .names = n_driver, .flags = CK_REQUIRED},
    {.sect = CS_SOURCE, .name = "participant", .type = CT_ID, FLD(conf_source, participant)},
    {.sect = CS_SOURCE, .name = "path", .type = CT_PATH, FLD(conf_source, path)},
    {.sect = CS_SOURCE, .name = "address", .type = CT_STRING, FLD(conf_source, address)},
    {.sect = CS_SOURCE, .name = "transport", .type = CT_STRING, FLD(conf_source, transport)},
    {.sect = CS_SOURCE, .name = "vid_pid", .type = CT_STRING, FLD(conf_source, vid_pid)},
    {.sect = CS_SOURCE, .name = "serial", .type = CT_STRING, FLD(conf_source, serial)},
    {.sect = CS_SOURCE, .name = "record", .type = CT_PATH, FLD(conf_source, record)},
    {.sect = CS_SOURCE, .name = "record_max", .type = CT_SIZE, FLD(conf_source, record_max),
     .min = 4 << 10, .max = 1LL << 40, .def = "1GiB"},
    {.sect = CS_SOURCE, .name = "connect", .type = CT_ENUM, FLD(conf_source, connect),
     .names = n_connect, .def = "auto"},
    {.sect = CS_SOURCE, .name = "hci", .type = CT_STRING, FLD(conf_source, hci)},
    {.sect = CS_SOURCE, .name = "irk", .type = CT_STRING, FLD(conf_source, irk)},
    {.sect = CS_SOURCE, .name = "nudge_resend", .type = CT_DURATION,
     FLD(conf_source, nudge_resend_ms), .min = SEC, .max = HOUR, .def = "60s"},
    {.sect = CS_SOURCE, .name = "scan_silence", .type = CT_DURATION,
     FLD(conf_source, scan_silence_ms), .min = 5 * SEC, .max = HOUR, .def = "60s"},
    {.sect = CS_SOURCE, .name = "set_clock", .type = CT_BOOL, FLD(conf_source, set_clock),
     .def = "yes"},
    {.sect = CS_SOURCE, .name = "clock_tolerance", .type = CT_DURATION,
     FLD(conf_source, clock_tolerance_ms), .min = 100, .max = HOUR, .def = "1s"},

    {.sect = CS_NUDGE, .name = "when", .type = CT_WHEN, FLD(conf_nudge, when),
     .flags = CK_REQUIRED},
    {.sect = CS_NUDGE, .name = "recipient", .type = CT_ENUM, FLD(conf_nudge, recipient),
     .def = "participant", .names = n_recipient},
    {.sect = CS_NUDGE, .name = "message", .type = CT_STRING, FLD(conf_nudge, message),
     .flags = CK_REQUIRED},
    {.sect = CS_NUDGE, .name = "priority", .type = CT_ENUM, FLD(conf_nudge, priority),
     .def = "normal", .names = n_priority},
    {.sect = CS_NUDGE, .name = "probability", .type = CT_DOUBLE, FLD(conf_nudge, probability),
     .dmin = 0, .dmax = 1, .def = "1"},
    {.sect = CS_NUDGE, .name = "cooldown", .type = CT_DURATION, FLD(conf_nudge, cooldown_ms),
     .min = 0, .max = 30 * DAY, .def = "24h"},
    {.sect = CS_NUDGE, .name = "max_per_day", .type = CT_INT, FLD(conf_nudge, max_per_day),
     .min = 1, .max = 100, .def = "1"},
    {.sect = CS_NUDGE, .name = "max_per_week", .type = CT_INT, FLD(conf_nudge, max_per_week),
     .min = 1, .max = 700, .def = "7"},
    {.sect = CS_NUDGE, .name = "quiet_hours", .type = CT_TIMERANGE,
     FLD(conf_nudge, quiet_hours)},
    {.sect = CS_NUDGE, .name = "escalate_to", .type = CT_ID, FLD(conf_nudge, escalate_to)},
    {.sect = CS_NUDGE, .name = "escalate_after", .type = CT_DURATION,
     FLD(conf_nudge, escalate_after_ms), .min = MIN, .max = 90 * DAY, .def = "48h"},
    {.sect = CS_NUDGE, .name = "reengaged_when", .type = CT_WHEN,
     FLD(conf_nudge, reengaged_when)},
    {.sect = CS_NUDGE, .name = "repeat_unanswered", .type = CT_BOOL,
     FLD(conf_nudge, repeat_unanswered), .def = "no"},
    {.sect = CS_NUDGE, .name = "min_coverage", .type = CT_DOUBLE, FLD(conf_nudge, min_coverage),
     .dmin = 0, .dmax = 1, .def = "0.5"},
};
const size_t conf_n_keys = sizeof(conf_keys) / sizeof(conf_keys[0]);

size_t conf_key_slot(const struct conf_key *k)
{
    size_t slot = 0;
    for (const struct conf_key *p = conf_keys; p < k; p++)
        if (p->sect == k->sect)
            slot++;
    return slot;
}

const struct conf_key *conf_key_find(enum conf_sect s, const char *name)
{
    for (size_t i = 0; i < conf_n_keys; i++)
        if (conf_keys[i].sect == s && strcmp(conf_keys[i].name, name) == 0)
            return &conf_keys[i];
    return NULL;
}

const char *conf_enum_name(const char *section, const char *key, int value)
{
    for (size_t i = 0; i < conf_n_keys; i++) {
        const struct conf_key *k = &conf_keys[i];
        if (k->type != CT_ENUM || strcmp(k->name, key) || strcmp(conf_sects[k->sect].name, section))
            continue;
        for (int j = 0; k->names[j]; j++)
            if ((k->values ? k->values[j] : j) == value)
                return k->names[j];
    }
    return NULL;
}

int conf_valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* ---- dispatch --------------------------------------------------------------------- */

static size_t field_size(const struct conf_key *k)
{
    switch (k->type) {
    case CT_BOOL: return sizeof(bool);
    case CT_INT: case CT_DURATION: case CT_SIZE: return sizeof(int64_t);
    case CT_U64: return sizeof(uint64_t);
    case CT_DOUBLE: return sizeof(double);
    case CT_ENUM: return sizeof(int);
    case CT_TIMERANGE: return sizeof(struct conf_timerange);
    case CT_DATE: return sizeof(struct conf_date);
    case CT_LIST: return sizeof(struct conf_list);
    case CT_WHEN: return sizeof(struct conf_when);
    default: return k->size;
    }
}

static int out_of_range(const struct conf_key *k, const char *value, int64_t v, char *msg,
                        size_t cap)
{
    char lo[32], hi[32];
    if (v >= k->min && v <= k->max)
        return 0;
    if (k->type == CT_DURATION) {
        conf_fmt_duration(k->min, lo, sizeof(lo));
        conf_fmt_duration(k->max, hi, sizeof(hi));
    } else if (k->type == CT_SIZE) {
        conf_fmt_size(k->min, lo, sizeof(lo));
        conf_fmt_size(k->max, hi, sizeof(hi));
    } else {
        snprintf(lo, sizeof(lo), "%lld", (long long)k->min);
        snprintf(hi, sizeof(hi), "%lld", (long long)k->max);
    }
    snprintf(msg, cap, "%s is out of range (%s..%s)", value, lo, hi);
    return -EINVAL;
}

static int parse_string_field(const struct conf_key *k, char *dst, const char *value,
                              char *msg, size_t cap)
{
    size_t n = strlen(value);
    if (n >= k->size) {
        snprintf(msg, cap, "too long (%zu bytes, max %zu)", n, k->size - 1);
        return -EINVAL;
    }
    if (k->type == CT_PATH && value[0] != '/') {
        snprintf(msg, cap, "\"%s\" is not an absolute path", value);
        return -EINVAL;
    }
    if (k->type == CT_ID && !conf_valid_id(value)) {
        snprintf(msg, cap, "invalid id \"%s\" (1-64 of A-Z a-z 0-9 _ -)", value);
        return -EINVAL;
    }
    memcpy(dst, value, n + 1);
    return 0;
}

int conf_key_parse(const struct conf_key *k, void *dst, const char *value,
                   const struct conf_ctx *ctx, char *msg, size_t cap, int *col)
{
    int64_t v;
    double d;
    int r;
    *col = -1;
    switch (k->type) {
    case CT_STRING: case CT_PATH: case CT_ID:
        return parse_string_field(k, dst, value, msg, cap);
    case CT_ENDPOINT:
        if (strlen(value) >= k->size) {
            snprintf(msg, cap, "too long (%zu bytes, max %zu)", strlen(value), k->size - 1);
            return -EINVAL;
        }
        if ((r = conf_parse_endpoint(value, msg, cap)) < 0)
            return r;
        strcpy(dst, value);
        return 0;
    case CT_TZ:
        if ((r = conf_parse_tz(value, ctx, msg, cap)) < 0)
            return r;
        strcpy(dst, value);
        return 0;
    case CT_BOOL: {
        static const char *const yes[] = {"yes", "true", "on", "1", NULL};
        static const char *const no[] = {"no", "false", "off", "0", NULL};
        for (int i = 0; yes[i]; i++) {
            if (strcmp(value, yes[i]) == 0)
                return *(bool *)dst = true, 0;
            if (strcmp(value, no[i]) == 0)
                return *(bool *)dst = false, 0;
        }
        snprintf(msg, cap, "invalid boolean \"%s\" (expected yes or no)", value);
        return -EINVAL;
    }
    case CT_INT:
        if (conf_parse_i64(value, &v) < 0) {
            snprintf(msg, cap, "invalid integer \"%s\"", value);
            return -EINVAL;
        }
        if ((r = out_of_range(k, value, v, msg, cap)) < 0)
            return r;
        *(int64_t *)dst = v;
        return 0;
    case CT_U64: {
        uint64_t u;
        if (conf_parse_u64(value, &u) < 0) {
            snprintf(msg, cap, "invalid unsigned 64-bit integer \"%s\"", value);
            return -EINVAL;
        }
        *(uint64_t *)dst = u;
        return 0;
    }
    case CT_DOUBLE:
        if (conf_parse_double(value, &d) < 0) {
            snprintf(msg, cap, "invalid number \"%s\"", value);
            return -EINVAL;
        }
        if (!(d >= k->dmin && d <= k->dmax)) {
            snprintf(msg, cap, "%s is out of range (%g..%g)", value, k->dmin, k->dmax);
            return -EINVAL;
        }
        *(double *)dst = d;
        return 0;
    case CT_DURATION:
        if ((k->flags & CK_AUTO) && strcmp(value, "auto") == 0)
            return *(int64_t *)dst = -1, 0;
        if (value[0] == '-') {
            snprintf(msg, cap, "negative duration \"%s\"", value);
            return -EINVAL;
        }
        r = conf_parse_duration(value, &v);
        if (r == -ERANGE) {
            snprintf(msg, cap, "duration \"%s\" is too large", value);
            return -EINVAL;
        }
        if (r < 0) {
            snprintf(msg, cap, "invalid duration \"%s\" (use e.g. 500ms, 30s, 10min, 2h, 7d)%s",
                     value, (k->flags & CK_AUTO) ? " or auto" : "");
            return -EINVAL;
        }
        if ((r = out_of_range(k, value, v, msg, cap)) < 0)
            return r;
        *(int64_t *)dst = v;
        return 0;
    case CT_SIZE:
        if ((r = conf_parse_size(value, &v)) < 0) {
            snprintf(msg, cap, r == -ERANGE ? "size \"%s\" is too large"
                                            : "invalid size \"%s\" (use bytes or e.g. 64KiB, 4MiB)",
                     value);
            return -EINVAL;
        }
        if ((r = out_of_range(k, value, v, msg, cap)) < 0)
            return r;
        *(int64_t *)dst = v;
        return 0;
    case CT_ENUM: {
        size_t used;
        for (int i = 0; k->names[i]; i++)
            if (strcmp(value, k->names[i]) == 0)
                return *(int *)dst = k->values ? k->values[i] : i, 0;
        used = (size_t)snprintf(msg, cap, "invalid value \"%s\" (expected one of:", value);
        for (int i = 0; k->names[i] && used < cap; i++)
            used += (size_t)snprintf(msg + used, cap - used, "%s %s", i ? "," : "", k->names[i]);
        if (used < cap)
            snprintf(msg + used, cap - used, ")");
        return -EINVAL;
    }
    case CT_TIMERANGE:
        r = conf_parse_timerange(value, dst);
        if (r == -EDOM)
            snprintf(msg, cap, "time range \"%s\" is empty or the whole day", value);
        else if (r < 0)
            snprintf(msg, cap, "invalid time range \"%s\" (expected HH:MM-HH:MM, e.g. "
                     "22:00-08:00)", value);
        return r < 0 ? -EINVAL : 0;
    case CT_DATE:
        if (conf_parse_date(value, dst) < 0) {
            snprintf(msg, cap, "invalid date \"%s\" (expected YYYY-MM-DD, 1970..2199)", value);
            return -EINVAL;
        }
        return 0;
    case CT_LIST:
        return conf_parse_list(value, (size_t)k->max, dst, msg, cap, col);
    case CT_WHEN: {
        struct conf_when w = {0};
        struct conf_when *old = dst;
        if (strlen(value) >= sizeof(w.text)) {
            snprintf(msg, cap, "too long");
            return -EINVAL;
        }
        if ((r = conf_when_parse(value, &w, msg, cap, col)) < 0)
            return r;
        free(old->nodes);
        strcpy(w.text, value);
        *old = w;
        return 0;
    }
    }
    snprintf(msg, cap, "internal error: unknown key type");
    return -EINVAL;
}

void conf_key_release(const struct conf_key *k, void *sect)
{
    char *field = (char *)sect + k->off;
    if (k->type == CT_LIST) {
        conf_list_release((struct conf_list *)field);
    } else if (k->type == CT_WHEN) {
        struct conf_when *w = (struct conf_when *)field;
        free(w->nodes);
        memset(w, 0, sizeof(*w));
        w->root = -1;
    }
}

void conf_key_reset(const struct conf_key *k, void *sect, const struct conf_ctx *ctx)
{
    char *field = (char *)sect + k->off;
    char msg[256];
    int col;
    if (k->flags & CK_REPEATABLE) {
        *(size_t *)((char *)sect + k->count_off) = 0;
        return;
    }
    conf_key_release(k, sect);
    if (k->type != CT_WHEN)
        memset(field, 0, field_size(k));
    /* Built-in defaults are valid by construction (test_conf checks every one). */
    if (k->def)
        (void)conf_key_parse(k, field, k->def, ctx, msg, sizeof(msg), &col);
}

void conf_sect_defaults(enum conf_sect s, void *sect, const struct conf_ctx *ctx)
{
    char msg[256];
    int col;
    for (size_t i = 0; i < conf_n_keys; i++) {
        const struct conf_key *k = &conf_keys[i];
        if (k->sect != s)
            continue;
        conf_key_reset(k, sect, ctx);
        if ((k->flags & CK_REPEATABLE) && k->def) {
            size_t *count = (size_t *)((char *)sect + k->count_off);
            if (conf_key_parse(k, (char *)sect + k->off, k->def, ctx, msg, sizeof(msg), &col) == 0)
                *count = 1;
        }
    }
}

void conf_sect_release(enum conf_sect s, void *sect)
{
    for (size_t i = 0; i < conf_n_keys; i++)
        if (conf_keys[i].sect == s)
            conf_key_release(&conf_keys[i], sect);
}
