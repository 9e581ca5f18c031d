/* The USB sources' events on their way to the store (daemon/usb.h): batches per source, at
 * most one in flight, and the writer's replies (pushing committed events to the pipeline,
 * moving the source's position, telling the device kind what committed). Loop thread only. */
#if ENGAGED_HAVE_USB
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/refusal.h"
#include "daemon/store.h"
#include "daemon/usb_int.h"

void usb_batch_free(struct usb_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->samples[i]);
        free(b->ref[i]);
    }
    free(b->samples);
    free(b->ref);
    free(b->ev);
    free(b);
}

static struct usb_batch *batch_new(size_t cap)
{
    struct usb_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->ev = calloc(cap, sizeof *b->ev);
    b->samples = calloc(cap, sizeof *b->samples);
    b->ref = calloc(cap, sizeof *b->ref);
    if (!b->ev || !b->samples || !b->ref) {
        usb_batch_free(b);
        return NULL;
    }
    b->cap = cap;
    return b;
}

void usb_src_drop_building(struct usb_src *s)
{
    usb_batch_free(s->building);
    s->building = NULL;
}

static void kind_reply(struct usb_src *s, int ok, int have_ack, int64_t ack)
{
    struct usb_dev *d = s->dev;
    if (!d || d->gone)
        return;
    if (d->kind == USB_KIND_AX3)
        ax3_on_reply(d, ok);
    else if (d->kind == USB_KIND_AOA)
        aoa_on_reply(d, ok, have_ack ? ack : -1);
}

int usb_src_flush(struct usb_src *s)
{
    struct usb *u = s->u;
    struct usb_batch *b = s->building;
    if (!b || b->n == 0 || u->stopped)
        return 0;
    if (s->inflight)
        return -EAGAIN; /* sent when the one in flight comes back */
    struct store_event *se = calloc(b->n, sizeof *se);
    char **bodies = calloc(b->n, sizeof *bodies);
    int e = 0;
    if (!se || !bodies) {
        e = -ENOMEM;
        goto out;
    }
    int64_t now = daemon_now_ms();
    for (size_t i = 0; i < b->n; i++) {
        const struct event *ev = &b->ev[i];
        if (b->ref[i]) {
            se[i] = refusal_store_event(b->ref[i], ev->source, ev->participant, ev->seq, now);
            continue;
        }
        if (!(bodies[i] = ev_to_json(ev))) {
            e = -ENOMEM;
            goto out;
        }
        se[i] = (struct store_event){
            .source = ev->source, .seq = ev->seq, .has_seq = ev->has_seq, .ts = ev->ts,
            .participant = ev->participant, .type = ev_type_name(ev->type),
            .body = bodies[i], .body_len = strlen(bodies[i]), .received = now,
        };
    }
    b->token = USB_TOKEN_FLAG | u->next_token++;
    b->received = now;
    e = store_submit_events(u->h.sw, b->token, se, b->n);
out:
    if (bodies)
        for (size_t i = 0; i < b->n; i++)
            free(bodies[i]);
    free(bodies);
    free(se);
    if (e == -EAGAIN) {
        u->st.retries++;
        s->retry_mono_ms = daemon_mono_ms() + USB_RETRY_MS;
        return -EAGAIN;
    }
    if (e < 0) {
        log_error("usb %s: %zu events not submitted to the store: %s", s->name, b->n,
                  store_strerror(e));
        usb_set_error(s, "store refused a batch: %s", store_strerror(e));
        s->failed += b->n;
        u->st.failed += b->n;
        usb_src_drop_building(s);
        kind_reply(s, 0, 0, 0);
        return e;
    }
    s->retry_mono_ms = 0;
    s->inflight = b;
    s->building = NULL;
    s->batches++;
    u->st.batches++;
    for (size_t i = 0; i < b->n; i++)
        u->st.events += !b->ref[i];
    return 1;
}

int usb_src_can_add(const struct usb_src *s, size_t max)
{
    return !s->building || s->building->n < max || !s->inflight;
}

int usb_src_add(struct usb_src *s, const struct event *ev, struct refusal *ref, size_t max)
{
    if (s->building && s->building->n >= max) {
        int e = usb_src_flush(s);
        if (e == -EAGAIN || (e < 0 && s->building))
            return -EAGAIN;
    }
    if (!s->building && !(s->building = batch_new(max)))
        return -ENOMEM;
    struct usb_batch *b = s->building;
    struct event *c = &b->ev[b->n];
    *c = *ev;
    b->ref[b->n] = ref;
    if (!ref && ev->type == EV_ACCEL && ev->u.accel.n) {
        float(*smp)[3] = malloc(ev->u.accel.n * sizeof *smp);
        if (!smp)
            return -ENOMEM;
        memcpy(smp, ev->u.accel.g, ev->u.accel.n * sizeof *smp);
        c->u.accel.g = (const float(*)[3])smp;
        b->samples[b->n] = smp;
    }
    b->n++;
    s->events += !ref;
    if (b->n >= max && !s->inflight)
        (void)usb_src_flush(s);
    return 0;
}

void usb_src_note_ack(struct usb_src *s, int64_t seq)
{
    struct usb_batch *b = s->building ? s->building : s->inflight;
    if (!b) {
        /* nothing waits for the store: the seq is processed already */
        if (s->dev && !s->dev->gone && s->dev->kind == USB_KIND_AOA)
            aoa_on_reply(s->dev, 1, seq);
        return;
    }
    if (!b->have_ack || seq > b->ack_upto)
        b->ack_upto = seq;
    b->have_ack = 1;
}

int usb_on_store_reply(struct usb *u, uint64_t token, int status_all, const uint8_t *per_event,
                       size_t n)
{
    if (!u || !usb_is_token(token))
        return 0;
    struct usb_src *s = NULL;
    for (size_t i = 0; i < u->n_src && !s; i++)
        if (u->src[i].inflight && u->src[i].inflight->token == token)
            s = &u->src[i];
    if (!s)
        return 1; /* a batch of a stopped manager or dropped source: nothing to do */
    struct usb_batch *b = s->inflight;
    s->inflight = NULL;
    int ok = status_all >= 0;
    int64_t ack = -1;
    int prefix_ok = ok;
    for (size_t i = 0; i < b->n; i++) {
        int st = ok && i < n ? per_event[i] : STORE_ERROR;
        const struct event *ev = &b->ev[i];
        if (st == STORE_INSERTED || st == STORE_DUPLICATE) {
            /* a kept refusal is neither counted nor pushed: only its seq is processed below,
             * as the store's position says */
            if (!b->ref[i] && st == STORE_INSERTED) {
                s->stored++;
                u->st.stored++;
                if (!u->stopped && u->h.push)
                    u->h.push(u->h.ud, ev, b->received);
            } else if (!b->ref[i]) {
                s->duplicate++;
                u->st.duplicate++;
            }
            if (!s->have_pos || ev->seq > s->pos) {
                s->pos = ev->seq;
                s->have_pos = 1;
            }
            if (prefix_ok)
                ack = ev->seq;
        } else {
            s->failed++;
            u->st.failed++;
            prefix_ok = 0;
        }
    }
    if (prefix_ok && b->have_ack && b->ack_upto > ack)
        ack = b->ack_upto;
    if (!prefix_ok) {
        log_error("usb %s: the store did not take %s of %zu events (%s); the device sends them "
                  "again at its next connection", s->name, ok ? "some" : "any", b->n,
                  ok ? "row error" : store_strerror(status_all));
        usb_set_error(s, "store error: %s", ok ? "row error" : store_strerror(status_all));
        usb_src_drop_building(s); /* nothing may commit after what failed */
    }
    usb_batch_free(b);
    s->dirty = 1;
    if (!u->stopped) {
        kind_reply(s, prefix_ok, ack >= 0, ack);
        if (prefix_ok)
            (void)usb_src_flush(s);
        /* replies come from the daemon's store socket, not through usb_dispatch: publish and
         * re-arm here what the reply changed */
        usb_end_turn(u);
    }
    return 1;
}
#endif
