/* Feature records (spec §4) and nudge decisions, and the sink callback the pipeline emits to. */
#ifndef ENGAGED_RECORD_H
#define ENGAGED_RECORD_H

#include <stddef.h>
#include <stdint.h>

struct nudge_decision; /* pipeline/nudge.h */

enum window_kind { WIN_DAY = 0, WIN_7D, WIN_EVENT, WIN_EPOCH, WIN_RECORDING };

/* The extra fields of an `epoch` record (replay --epochs; spec §4): wear and sleep flags
 * (-1 = not scored: non-wear masks sleep, a partial epoch is not scored) and, for triaxial
 * input, the counts of the x, y and z axes. */
struct epoch_extra {
    int wear, sleep;
    int has_axes;
    double axes[3];
};

struct feature_record {
    const char *participant;
    const char *feature;
    enum window_kind window;
    int64_t start, end;        /* UTC ms, end exclusive */
    char local_date[11];       /* YYYY-MM-DD, "" when not applicable */
    const char *tz;            /* IANA zone of the window */
    int has_value;             /* 0: value is null */
    double value;
    const char *unit;
    double coverage;           /* 0..1 */
    int revision;
    const struct epoch_extra *epoch; /* window == WIN_EPOCH only, else NULL */
    const char *nudge_id;      /* nudge outcome features: the nudge they are about, else NULL */
    /* Not NULL: this is a nudge decision (spec §6), not a feature; only participant and
     * nudge matter, and record_to_json writes the decision. */
    const struct nudge_decision *nudge;
};

const char *window_kind_name(enum window_kind w);

/* The feature catalogue (pipeline/catalogue.c, docs/features.md): 1 if the pipeline emits a
 * feature of that name; the closest known name to a misspelling (NULL if none is close);
 * the whole list, sorted. */
int feature_known(const char *name);
const char *feature_closest(const char *name);
size_t feature_catalogue(const char *const **names);

/* Appends the canonical JSON form (fixed key order, shortest round-trip numbers, no
 * trailing newline) to buf. Returns the length written, or -ENOSPC if cap is too small. */
int record_to_json(const struct feature_record *r, char *buf, size_t cap);

/* Canonical number formatting shared by all writers: integers without a fraction,
 * other finite values with the shortest representation that round-trips. */
int fmt_number(double v, char *buf, size_t cap);

/* v in decimal into buf (room for FMT_U64_MAX bytes; no NUL): the number of digits. Exact
 * at any magnitude, and with no snprintf: it is on the per-event paths (records, canonical
 * events, the last-value cache's seq). fmt_i64: the same with a leading '-' below 0. */
#define FMT_U64_MAX 20
#define FMT_I64_MAX 20 /* INT64_MIN: '-' and 19 digits */
size_t fmt_u64(uint64_t v, char *buf);
size_t fmt_i64(int64_t v, char *buf);

/* Where the pipeline sends its output. Returns 0 or a negative errno; the pipeline
 * counts failures but never stops on them. The record is borrowed. */
typedef int (*record_sink_fn)(void *ud, const struct feature_record *r);

#endif
