/* What the control socket answers (engagectl). Reply shapes are documented in
 * docs/topics.md ("Control"). Everything here reads; nothing changes daemon state. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <string.h>

#include "daemon/ble.h"
#include "daemon/conf.h"
#include "daemon/control.h"
#include "daemon/daemon.h"
#include "daemon/ingest.h"
#include "daemon/log.h"
#include "daemon/publish.h"
#include "daemon/store.h"
#include "pipeline/pipeline.h"

static json_t *u64(uint64_t v) { return json_integer((json_int_t)v); }

static int cmd_status(struct daemon *d, json_t *reply)
{
    const struct pipeline_stats *ps = pipeline_get_stats(d->pl);
    json_object_set_new(reply, "version", json_string(ENGAGED_VERSION));
    json_object_set_new(reply, "uptime_s", json_integer((daemon_now_ms() - d->started_ms) / 1000));
    json_object_set_new(reply, "store", json_string(d->cf->store.path));
    json_t *pl = json_object();
    json_object_set_new(pl, "accepted", u64(ps->accepted));
    json_object_set_new(pl, "duplicates", u64(ps->duplicates));
    json_object_set_new(pl, "late", u64(ps->late));
    json_object_set_new(pl, "limit_hits", u64(ps->limit_hits));
    json_object_set_new(pl, "bad_tz", u64(ps->bad_tz));
    json_object_set_new(pl, "records", u64(d->records_out));
    json_object_set_new(pl, "records_unstored", u64(d->records_unstored));
    json_object_set_new(reply, "pipeline", pl);
    if (d->ing) {
        struct ingest_stats is;
        ingest_get_stats(d->ing, &is);
        json_object_set_new(reply, "ingest",
                            json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "messages",
                                      u64(is.messages), "lines", u64(is.lines), "accepted",
                                      u64(is.accepted), "duplicate", u64(is.duplicate),
                                      "rejected", u64(is.rejected), "store_errors",
                                      u64(is.store_errors), "busy", u64(is.busy), "queue_full",
                                      u64(is.queue_full)));
    }
    if (d->pub) {
        struct publish_stats st;
        publisher_get_stats(d->pub, &st);
        json_object_set_new(reply, "publish",
                            json_pack("{s:o,s:o,s:o,s:o,s:o}", "sent", u64(st.sent), "dropped",
                                      u64(st.dropped), "lvc_topics", u64(st.lvc_topics),
                                      "lvc_evictions", u64(st.lvc_evictions), "subscriptions",
                                      u64(st.subscriptions)));
    }
    if (d->ble) {
        struct ble_stats bs;
        ble_get_stats(d->ble, &bs);
        json_t *keys = json_pack("{s:s,s:I,s:I,s:I,s:s}", "state", bs.keys_state, "ltks",
                                 (json_int_t)bs.keys_ltks, "irks", (json_int_t)bs.keys_irks,
                                 "controllers", (json_int_t)bs.keys_controllers, "error",
                                 bs.keys_error);
        if (keys && bs.keys_next_attempt_ms)
            json_object_set_new(keys, "next_attempt", json_integer(bs.keys_next_attempt_ms));
        json_object_set_new(reply, "ble",
                            json_pack("{s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "devices",
                                      (json_int_t)bs.devices, "streaming",
                                      (json_int_t)bs.streaming, "events", u64(bs.events),
                                      "stored", u64(bs.stored), "duplicate", u64(bs.duplicate),
                                      "lost", u64(bs.lost), "batches", u64(bs.batches),
                                      "retries", u64(bs.retries), "bonding_keys",
                                      keys ? keys : json_null()));
    }
    struct store_stats ss;
    store_writer_stats(d->sw, &ss);
    json_object_set_new(reply, "writer",
                        json_pack("{s:o,s:o,s:o,s:o,s:o,s:i,s:o,s:o,s:o}", "events_inserted",
                                  u64(ss.events_inserted), "events_duplicate", u64(ss.events_duplicate),
                                  "records", u64(ss.records), "commits", u64(ss.commits),
                                  "commit_errors", u64(ss.commit_errors), "last_error", ss.last_error,
                                  "checkpoints", u64(ss.checkpoints), "checkpoint_failures",
                                  u64(ss.checkpoint_failures), "checkpoint_busy",
                                  u64(ss.checkpoint_busy)));
    return 0;
}

static int add_position(void *ud, const char *source, const struct store_position *p)
{
    json_t *arr = ud;
    json_t *o = json_pack("{s:s,s:o,s:I}", "source", source, "ts",
                          p->has_ts ? json_integer(p->ts) : json_null(), "updated",
                          (json_int_t)p->updated);
    if (p->has_seq)
        json_object_set_new(o, "seq", json_integer(p->seq));
    json_array_append_new(arr, o);
    return 0;
}

/* The BLE sources' live state next to their stored positions: the link's state and their
 * scanner's (docs/topics.md); a source without stored events yet gets a row of its own. */
static void add_ble_states(struct daemon *d, json_t *arr)
{
    for (size_t i = 0; d->ble && i < d->cf->n_sources; i++) {
        struct ble_status st;
        const char *name = d->cf->sources[i].name;
        if (ble_source_status(d->ble, name, &st) < 0)
            continue;
        json_t *row = NULL, *r;
        size_t k;
        json_array_foreach(arr, k, r)
            if (!row && !strcmp(json_string_value(json_object_get(r, "source")), name))
                row = r;
        if (!row) {
            row = json_pack("{s:s}", "source", name);
            json_array_append_new(arr, row);
        }
        int retrying = st.has_scan && st.scan.state == BLE_SCAN_RETRYING;
        json_object_set_new(row, "state", json_string(ble_state_name(st.state)));
        json_object_set_new(row, "scan", st.has_scan ? json_string(ble_scan_state_name(
                                                           st.scan.state)) : json_null());
        json_object_set_new(row, "scan_retry_ts",
                            retrying ? json_integer(st.scan.next_attempt_ms) : json_null());
        json_object_set_new(row, "cached", json_boolean(st.cached));
        json_object_set_new(row, "security_raises", u64(st.security_raises));
    }
}

static int add_record(void *ud, int64_t id, const struct store_record *r)
{
    (void)id;
    json_t *arr = ud;
    json_t *o = json_loadb(r->body, r->body_len, 0, NULL);
    if (o)
        json_array_append_new(arr, o);
    return 0;
}

static int add_nudge(void *ud, int64_t id, const struct store_nudge *n)
{
    (void)id;
    json_t *arr = ud;
    json_t *o = json_loadb(n->body, n->body_len, 0, NULL);
    if (o)
        json_array_append_new(arr, o);
    return 0;
}

static int with_reader(struct daemon *d, json_t *reply, struct store_reader **r)
{
    int e = store_open_readonly(d->cf->store.path, r);
    if (e < 0)
        json_object_set_new(reply, "error", json_string(store_strerror(e)));
    return e;
}

int daemon_control(const char *cmd, const json_t *req, json_t *reply, void *ud)
{
    struct daemon *d = ud;
    if (strcmp(cmd, "status") == 0)
        return cmd_status(d, reply);
    if (strcmp(cmd, "participants") == 0) {
        const char *ids[1024];
        size_t n = pipeline_participants(d->pl, ids, 1024);
        json_t *arr = json_array();
        for (size_t i = 0; i < d->cf->n_participants; i++) {
            const struct conf_participant *p = &d->cf->participants[i];
            json_array_append_new(arr, json_pack("{s:s,s:s,s:b}", "id", p->id, "tz",
                                                 p->tz[0] ? p->tz : "UTC", "configured", 1));
        }
        for (size_t i = 0; i < n && i < 1024; i++)
            if (!conf_participant(d->cf, ids[i]))
                json_array_append_new(arr, json_pack("{s:s,s:s,s:b}", "id", ids[i], "tz", "UTC",
                                                     "configured", 0));
        json_object_set_new(reply, "participants", arr);
        return 0;
    }
    struct store_reader *r = NULL;
    int e = with_reader(d, reply, &r);
    if (e < 0)
        return e;
    json_t *arr = json_array();
    if (strcmp(cmd, "sources") == 0) {
        e = store_reader_positions(r, add_position, arr);
        add_ble_states(d, arr);
        json_object_set_new(reply, "sources", arr);
    } else if (strcmp(cmd, "latest") == 0) {
        const char *p = json_string_value(json_object_get(req, "participant"));
        const char *f = json_string_value(json_object_get(req, "feature"));
        e = store_reader_latest(r, p, f, add_record, arr);
        json_object_set_new(reply, "records", arr);
    } else if (strcmp(cmd, "nudges") == 0) {
        const char *p = json_string_value(json_object_get(req, "participant"));
        e = store_reader_nudges(r, p, INT64_MIN, add_nudge, arr);
        json_object_set_new(reply, "nudges", arr);
    } else {
        json_decref(arr);
        e = -EINVAL;
    }
    store_reader_close(r);
    return e < 0 ? e : 0;
}
