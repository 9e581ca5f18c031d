/* `engaged replay`: recorded streams through the same pipeline as the daemon. Inputs are
 * merged by event time (ties: the earlier input on the command line), each input keeping its
 * own order, so several files of one study replay as one stream. Pacing (--speed) only delays
 * pushes; the pipeline never sees the wall clock, so output is identical at every speed. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <zmq.h>

#include "daemon/conf.h"
#include "daemon/daemon.h"
#include "daemon/publish.h"
#include "daemon/store.h"
#include "daemon/zap.h"
#include "daemon/demo.h"
#include "daemon/log.h"
#include "daemon/replay.h"
#include "drivers/reader.h"
#include "pipeline/pipeline.h"

#define MAX_INPUTS 256

struct input {
    struct reader r;
    struct event head;
    int has_head;
    int done;
};

struct replay {
    FILE *out;
    uint64_t bad, unknown, io_errors;
    int strict;
    int failed_strict;
    struct store_sync *store;  /* --store PATH */
    struct publisher *pub;     /* when the config names publish endpoints */
    uint64_t store_errors;
    char buf[8192];
};

#define STORE_COMMIT_EVERY 5000

static int write_record(void *ud, const struct feature_record *r)
{
    struct replay *rp = ud;
    int n = record_to_json(r, rp->buf, sizeof rp->buf - 1);
    if (n < 0)
        return n;
    if (rp->store && r->nudge) {
        struct store_nudge sn = {.participant = r->participant, .ts = r->nudge->ts,
                                 .decided = r->nudge->decided,
                                 .rule = r->nudge->rule, .body = rp->buf, .body_len = (size_t)n};
        if (store_sync_nudge(rp->store, &sn) < 0)
            rp->store_errors++;
    } else if (rp->store) {
        struct store_record sr = {
            .participant = r->participant, .feature = r->feature,
            .window = window_kind_name(r->window), .start = r->start, .end = r->end,
            .revision = r->revision, .body = rp->buf, .body_len = (size_t)n,
        };
        if (store_sync_record(rp->store, &sr) < 0)
            rp->store_errors++;
    }
    if (rp->pub) {
        char topic[PUBLISH_TOPIC_MAX + 1];
        if ((r->nudge ? publish_topic_nudge(topic, sizeof topic, r->participant)
                      : publish_topic_feature(topic, sizeof topic, r->participant, r->feature)) >= 0)
            publisher_send(rp->pub, topic, rp->buf, (size_t)n);
    }
    rp->buf[n++] = '\n';
    return fwrite(rp->buf, 1, (size_t)n, rp->out) == (size_t)n ? 0 : -EIO;
}

/* --store: the replayed events become a store like the daemon's, in the order read. */
/* received: the input's receive time (a store), else 0: the event counts as received at its
 * own time, as this replay treated it, so that replaying the new store decides alike. */
static void store_event(struct replay *rp, const struct event *ev, int64_t received)
{
    char *body = ev_to_json(ev);
    if (!body) {
        rp->store_errors++;
        return;
    }
    struct store_event se = {
        .source = ev->source[0] ? ev->source : "replay", .seq = ev->seq, .has_seq = ev->has_seq,
        .ts = ev->ts, .participant = ev->participant, .type = ev_type_name(ev->type),
        .body = body, .body_len = strlen(body), .received = received ? received : ev->ts,
    };
    uint8_t status;
    if (store_sync_events(rp->store, &se, 1, &status) < 0)
        rp->store_errors++;
    free(body);
    if (store_sync_pending(rp->store) >= STORE_COMMIT_EVERY && store_sync_commit(rp->store) < 0)
        rp->store_errors++;
}

static void conf_error(void *ud, const char *file, int line, const char *msg)
{
    (void)ud;
    fprintf(stderr, "%s:%d: %s\n", file, line, msg);
}

/* Advance one input to its next event; reports bad lines as FILE:LINE: reason. */
static int input_advance(struct replay *rp, struct input *in)
{
    while (!in->done) {
        int r = in->r.ops->next(&in->r, &in->head);
        if (r == READ_EVENT) {
            in->has_head = 1;
            return 0;
        }
        if (r == READ_EOF) {
            in->done = 1;
            break;
        }
        if (r < 0) {
            fprintf(stderr, "%s: read error: %s\n", in->r.path, in->r.why ? in->r.why : strerror(-r));
            rp->io_errors++;
            in->done = 1;
            break;
        }
        fprintf(stderr, "%s:%llu: %s\n", in->r.path, (unsigned long long)in->r.line, in->r.why);
        if (r == READ_UNKNOWN) {
            rp->unknown++;
        } else {
            rp->bad++;
            if (rp->strict) {
                rp->failed_strict = 1;
                in->done = 1;
                return -1;
            }
        }
    }
    in->has_head = 0;
    return 0;
}

static void pace(double speed, int64_t ts, int64_t *ts0, struct timespec *wall0)
{
    if (speed <= 0)
        return;
    if (*ts0 == INT64_MIN) {
        *ts0 = ts;
        clock_gettime(CLOCK_MONOTONIC, wall0);
        return;
    }
    double due_s = (double)(ts - *ts0) / 1000.0 / speed;
    if (due_s <= 0)
        return;
    struct timespec t = *wall0;
    daemon_ts_add(&t, (time_t)due_s, (long)((due_s - floor(due_s)) * 1e9));
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
        ;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: engaged replay [-c FILE] [--speed max|realtime|N] [--out FILE|-]\n"
            "                      [--format FORMAT] [--participant ID] [--tz ZONE]\n"
            "                      [--epochs] [--summary]\n"
            "                      [--strict] [--store PATH] [--demo] INPUT...\n");
}

/* --tz with --participant: that participant's days run in the zone the file's clock used,
 * whether or not the config names them (an entry is added or its zone replaced). */
static int replay_participant_tz(struct pipeline_conf *pc, struct pipeline_participant_conf **parts,
                                 const char *id, const char *zone_name)
{
    struct pipeline_participant_conf *pp = NULL;
    for (size_t i = 0; i < pc->n_participants; i++)
        if (strcmp((*parts)[i].id, id) == 0)
            pp = &(*parts)[i];
    if (!pp) {
        struct pipeline_participant_conf *v =
            realloc(*parts, (pc->n_participants + 1) * sizeof *v);
        if (!v)
            return -1;
        *parts = v;
        pp = &v[pc->n_participants];
        memset(pp, 0, sizeof *pp);
        snprintf(pp->id, sizeof pp->id, "%s", id);
        pp->prescribed_days_per_week = 7;
        pc->n_participants++;
        pc->participants = v;
    }
    snprintf(pp->tz, sizeof pp->tz, "%s", zone_name);
    return 0;
}

/* The zone of readers for local-time formats: --tz, else the --participant's configured
 * zone; NULL (UTC) when neither names one. */
static int resolve_zone(const struct pipeline_conf *pc, const char *zone_name,
                        const char *participant, struct tz_db **db,
                        const struct tz_zone **zone)
{
    *zone = NULL;
    for (size_t i = 0; !zone_name && participant && i < pc->n_participants; i++)
        if (strcmp(pc->participants[i].id, participant) == 0 && pc->participants[i].tz[0])
            zone_name = pc->participants[i].tz;
    if (!zone_name)
        return 0;
    int e = 0;
    *db = tz_db_new(pc->tzdir);
    if (*db)
        *zone = tz_db_get(*db, zone_name, &e);
    if (!*zone) {
        fprintf(stderr, "engaged replay: --tz %s: no such time zone\n", zone_name);
        return -1;
    }
    return 0;
}

int replay_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"speed", required_argument, NULL, 's'},
        {"out", required_argument, NULL, 'o'},    {"format", required_argument, NULL, 'f'},
        {"participant", required_argument, NULL, 'p'}, {"strict", no_argument, NULL, 'S'},
        {"demo", no_argument, NULL, 'D'},         {"help", no_argument, NULL, 'h'},
        {"store", required_argument, NULL, 'T'}, {"tz", required_argument, NULL, 'z'},
        {"epochs", no_argument, NULL, 'E'},       {"summary", no_argument, NULL, 'Y'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *out = "-", *format = NULL, *participant = NULL, *store = NULL;
    const char *zone_name = NULL;
    double speed = 0;
    int strict = 0, demo = 0, epochs = 0, summary = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'o': out = optarg; break;
        case 'f': format = optarg; break;
        case 'p': participant = optarg; break;
        case 'S': strict = 1; break;
        case 'D': demo = 1; break;
        case 'T': store = optarg; break;
        case 'z': zone_name = optarg; break;
        case 'E': epochs = 1; break;
        case 'Y': summary = 1; break;
        case 's':
            if (strcmp(optarg, "max") == 0)
                speed = 0;
            else if (strcmp(optarg, "realtime") == 0)
                speed = 1;
            else {
                char *end;
                speed = strtod(optarg, &end);
                if (*end || !(speed > 0) || !isfinite(speed)) {
                    fprintf(stderr, "engaged replay: --speed must be max, realtime or a number > 0\n");
                    return EX_USAGE;
                }
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EX_USAGE;
        }
    }
    int n_in = argc - optind;
    if ((n_in == 0 && !demo) || n_in > MAX_INPUTS || (participant && !ev_valid_id(participant))) {
        usage(stderr);
        return EX_USAGE;
    }

    struct conf *cf = NULL;
    char demo_dir[64] = "";
    if (demo) {
        int e = demo_materialise(demo_dir, sizeof demo_dir);
        if (e < 0) {
            fprintf(stderr, "engaged replay: cannot unpack the demo recording: %s\n", strerror(-e));
            return EX_IOERR;
        }
    }
    char demo_conf[96], demo_rec[96];
    snprintf(demo_conf, sizeof demo_conf, "%s/demo.conf", demo_dir);
    snprintf(demo_rec, sizeof demo_rec, "%s/demo.jsonl", demo_dir);
    if (demo && !config)
        config = demo_conf;
    int rc = EX_OK;
    if (config) {
        int e = conf_load(config, &cf, conf_error, NULL);
        if (e < 0 || !cf) {
            rc = EX_CONFIG;
            goto out_demo;
        }
    } else {
        cf = conf_new_default();
        if (!cf) {
            rc = EX_OSERR;
            goto out_demo;
        }
    }

    void *zctx = NULL;
    struct zap *zap = NULL;
    struct daemon_curve curve;
    memset(&curve, 0, sizeof curve);
    struct replay *rp = calloc(1, sizeof *rp);
    struct input *in = calloc((size_t)n_in + 1, sizeof *in);
    struct pipeline_participant_conf *parts = NULL;
    struct pipeline *pl = NULL;
    struct tz_db *tzdb = NULL;
    if (!rp || !in) {
        rc = EX_OSERR;
        goto out;
    }
    rp->strict = strict;
    rp->out = strcmp(out, "-") == 0 ? stdout : fopen(out, "we");
    if (!rp->out) {
        fprintf(stderr, "engaged replay: %s: %s\n", out, strerror(errno));
        rc = EX_CANTCREAT;
        goto out;
    }
    if (store) {
        struct store_opts so;
        store_opts_default(&so);
        so.sync_full = 0; /* a replay can be re-run: speed over power-loss durability */
        int e = store_sync_open(store, &so, &rp->store);
        if (e < 0) {
            fprintf(stderr, "engaged replay: --store %s: %s\n", store, store_strerror(e));
            rc = EX_CANTCREAT;
            goto out;
        }
    }
    /* Publish only to endpoints a config file names explicitly, so a replay never takes
     * over the built-in default socket of a live daemon. */
    if (cf->publish.endpoints_explicit && cf->publish.n_endpoints) {
        int e = 0;
        zctx = zmq_ctx_new();
        if (zctx && daemon_needs_zap(cf))
            zap = zap_new(zctx, &e);
        if (!zctx || (daemon_needs_zap(cf) && !zap) ||
            daemon_curve_setup(zap, &curve, "publish", cf->publish.curve_secret_key_file,
                               cf->publish.curve_clients_file) < 0) {
            fprintf(stderr, "engaged replay: cannot set up the publisher\n");
            rc = EX_CONFIG;
            goto out;
        }
        const char *eps[CONF_MAX_ENDPOINTS];
        for (size_t i = 0; i < cf->publish.n_endpoints; i++)
            eps[i] = cf->publish.endpoints[i];
        struct publish_opts po = {
            .sndhwm = (int)cf->publish.sndhwm,
            .lvc_max_topics = (size_t)cf->publish.lvc_max_topics,
            .curve = curve.opts,
        };
        size_t bad = 0;
        rp->pub = publisher_new_ex(zctx, eps, cf->publish.n_endpoints, &po, &e, &bad);
        if (!rp->pub) {
            fprintf(stderr, "engaged replay: publish %s: %s\n",
                    eps[bad < cf->publish.n_endpoints ? bad : 0], strerror(-e));
            rc = EX_UNAVAILABLE;
            goto out;
        }
    }
    struct pipeline_conf pc;
    if (conf_fill_pipeline(cf, &pc, &parts) < 0) {
        rc = EX_OSERR;
        goto out;
    }
    if (zone_name && participant && replay_participant_tz(&pc, &parts, participant, zone_name) < 0) {
        rc = EX_OSERR;
        goto out;
    }
    pc.act.epochs = epochs;
    pc.act.summary = summary;
    int err = 0;
    pl = pipeline_new(&pc, write_record, rp, &err);
    if (!pl) {
        fprintf(stderr, "engaged replay: pipeline: %s\n", strerror(-err));
        rc = err == -ENOENT || err == -EINVAL ? EX_CONFIG : EX_OSERR;
        goto out;
    }

    int n_open = 0;
    struct reader_opts ro = {.participant = participant};
    if (resolve_zone(&pc, zone_name, participant, &tzdb, &ro.zone) < 0) {
        rc = EX_USAGE;
        goto out;
    }
    for (int i = 0; i < n_in + demo; i++) {
        const char *path = i < n_in ? argv[optind + i] : demo_rec;
        int e = reader_open(&in[i].r, path, format, &ro);
        if (e < 0) {
            fprintf(stderr, "engaged replay: %s: %s\n", path, in[i].r.why ? in[i].r.why : strerror(-e));
            rc = e == -ENOENT                               ? EX_NOINPUT
                 : e == -EPROTONOSUPPORT || e == -EINVAL || e == -EBADMSG ? EX_DATAERR
                                                                          : EX_IOERR;
            goto out_readers;
        }
        n_open++;
        if (input_advance(rp, &in[i]) < 0)
            break;
    }

    int64_t ts0 = INT64_MIN;
    struct timespec wall0 = {0, 0};
    while (!rp->failed_strict) {
        int best = -1;
        for (int i = 0; i < n_open; i++)
            if (in[i].has_head && (best < 0 || in[i].head.ts < in[best].head.ts))
                best = i;
        if (best < 0)
            break;
        pace(speed, in[best].head.ts, &ts0, &wall0);
        if (rp->store)
            store_event(rp, &in[best].head, in[best].r.received);
        pipeline_set_clock(pl, in[best].r.received);
        int r = pipeline_push(pl, &in[best].head);
        if (r == PIPE_BAD_TZ) {
            fprintf(stderr, "%s:%llu: unknown time zone \"%s\"\n", in[best].r.path,
                    (unsigned long long)in[best].r.line, in[best].head.u.tz.tz);
            if (strict) {
                rp->failed_strict = 1;
                break;
            }
        }
        else if (r == PIPE_LATE && log_get_level() >= LOG_LVL_DEBUG)
            fprintf(stderr, "%s:%llu: late event dropped\n", in[best].r.path,
                    (unsigned long long)in[best].r.line);
        else if (r < 0)
            fprintf(stderr, "%s:%llu: %s\n", in[best].r.path,
                    (unsigned long long)in[best].r.line, strerror(-r));
        if (input_advance(rp, &in[best]) < 0)
            break;
    }
    if (!rp->failed_strict)
        pipeline_finish(pl);

    const struct pipeline_stats *st = pipeline_get_stats(pl);
    fprintf(stderr,
            "replay: %llu events accepted, %llu duplicates, %llu late, %llu revising, "
            "%llu bad lines, %llu unknown types, %llu limit hits, %llu records\n",
            (unsigned long long)st->accepted, (unsigned long long)st->duplicates,
            (unsigned long long)st->late, (unsigned long long)st->revised, (unsigned long long)(rp->bad + st->bad_tz),
            (unsigned long long)rp->unknown, (unsigned long long)st->limit_hits,
            (unsigned long long)st->records);
    if (st->epochs_refused)
        fprintf(stderr, "replay: %llu actigraphy epochs refused (another epoch length, an epoch "
                        "already filled, older than the epoch ring, or a rate the counts "
                        "converter does not take)\n",
                (unsigned long long)st->epochs_refused);
    if (rp->store && store_sync_commit(rp->store) < 0)
        rp->store_errors++;
    if (rp->store_errors)
        fprintf(stderr, "engaged replay: --store %s: %llu rows could not be stored\n", store,
                (unsigned long long)rp->store_errors);
    if (rp->failed_strict)
        rc = EX_DATAERR;
    else if (rp->io_errors || st->sink_errors || rp->store_errors)
        rc = EX_IOERR;
out_readers:
    for (int i = 0; i < n_open; i++)
        reader_close(&in[i].r);
out:
    if (rp && rp->out) {
        if (fflush(rp->out) != 0 && rc == EX_OK)
            rc = EX_IOERR;
        if (rp->out != stdout)
            fclose(rp->out);
    }
    pipeline_free(pl);
    tz_db_free(tzdb);
    if (rp) {
        if (store_sync_close(rp->store) < 0 && rc == EX_OK)
            rc = EX_IOERR;
        publisher_free(rp->pub);
    }
    zap_free(zap);
    curve_keylist_release(&curve.clients);
    if (zctx)
        zmq_ctx_term(zctx);
    free(parts);
    free(in);
    free(rp);
    conf_free(cf);
out_demo:
    if (demo)
        demo_cleanup(demo_dir);
    return rc;
}
