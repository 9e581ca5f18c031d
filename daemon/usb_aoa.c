/* A phone on USB (docs/usb.md, "Phones"; the phone side: docs/relay-profile.md, "USB").
 *
 * Switching: a device a source names that is not yet in accessory mode is asked for its
 * Android Open Accessory protocol version (control request 51), given the hub's six
 * identification strings (52) and told to start (53); it then leaves the bus and comes back as
 * 18D1:2D00..2D05, matched to the same source by serial number or port (usb.c).
 *
 * Streaming: on the accessory device, interface 0's bulk IN and OUT endpoints carry relay
 * values in envelopes (drivers/usb_aoaenv.c). The hub writes a RESUME (where to start: the
 * source's position), reads fragments into records (drivers/relay.h: generations, START,
 * consecutive seqs, CRC), turns records into events, stores them in batches and writes an ACK
 * after each commit. Any stream error means a new RESUME, so the phone sends again from what
 * is stored: nothing is lost, nothing stored twice.
 *
 * libusb calls the transfer callbacks from handle_events; they never close the handle or free
 * the device. That happens in aoa_after_events, once no transfer is outstanding. */
#if ENGAGED_HAVE_USB
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/refusal.h"
#include "daemon/usb_int.h"

#define AOA_CTL_TIMEOUT_MS 1000
#define AOA_OUT_TIMEOUT_MS 5000
#define AOA_IN_SIZE 16384
#define AOA_OUTQ 8
#define AOA_OUT_MAX 32           /* RESUME and ACK envelopes are 18 and 14 bytes */
#define AOA_WINDOW USB_AOA_BATCH
#define AOA_STALLS_MAX 3         /* consecutive stalls of one endpoint before giving up */
#define AOA_ERRORS_MAX 5         /* consecutive transfer errors before giving up */
#define AOA_IDLE_MS 10000        /* a partial record this long without progress: RESUME */

struct aoa_out {
    uint8_t b[AOA_OUT_MAX];
    size_t n;
    int resume;
};

struct aoa_dev {
    int accessory;
    libusb_device_handle *h;
    int claimed;
    uint8_t ep_in, ep_out;
    int failed;                /* stop: release the handle, wait for the unplug */
    /* switching */
    int step;                  /* 0 protocol, 1..6 strings, 7 start */
    int switched;
    struct libusb_transfer *ctl;
    int ctl_busy;
    uint8_t ctlbuf[LIBUSB_CONTROL_SETUP_SIZE + AOA_STRING_MAX + 1];
    /* streaming */
    struct libusb_transfer *in, *out;
    int in_busy, out_busy;
    int clear_in, clear_out;   /* a stall to clear outside the callback */
    int stalls_in, stalls_out, errors_in, errors_out;
    size_t in_off, in_len;     /* bytes of the last IN transfer not yet processed */
    int have_held;
    struct event held;         /* a record's event the batch could not take yet */
    struct refusal *held_ref;  /* owned: held is a refused record's (source, seq) */
    int64_t held_seq;
    struct aoa_out q[AOA_OUTQ];
    size_t q_head, q_n;
    int64_t acked;
    int have_acked;
    int64_t last_record_mono_ms;
    uint64_t frags_at_record;
    struct aoaenv_rx env;
    struct relay_rx rx;
    uint8_t inbuf[AOA_IN_SIZE];
};

static struct aoa_dev *priv(struct usb_dev *d) { return d->priv; }

static void stop_streaming(struct usb_dev *d, const char *why)
{
    struct aoa_dev *a = priv(d);
    if (a->failed)
        return;
    a->failed = 1;
    if (why) {
        usb_set_error(d->src, "%s", why);
        usb_set_state(d->src, "error");
        log_error("usb %s: source %s: %s", d->port, d->src->name, why);
    }
    if (a->in_busy)
        (void)libusb_cancel_transfer(a->in);
    if (a->out_busy)
        (void)libusb_cancel_transfer(a->out);
    if (a->ctl_busy)
        (void)libusb_cancel_transfer(a->ctl);
}

/* ---- switching to accessory mode ------------------------------------------------------ */

static void ctl_cb(struct libusb_transfer *t);

static int submit_ctl(struct usb_dev *d)
{
    struct aoa_dev *a = priv(d);
    struct usb_src *s = d->src;
    uint8_t *b = a->ctlbuf;
    if (a->step == 0) {
        libusb_fill_control_setup(b, LIBUSB_ENDPOINT_IN | LIBUSB_REQUEST_TYPE_VENDOR |
                                  LIBUSB_RECIPIENT_DEVICE, AOA_REQ_GET_PROTOCOL, 0, 0, 2);
    } else if (a->step <= AOA_STRINGS) {
        unsigned id = (unsigned)a->step - 1;
        const char *str = aoaenv_string(id, usb_version(), s->name);
        size_t len = strlen(str) + 1;
        if (len > AOA_STRING_MAX)
            len = AOA_STRING_MAX;
        memcpy(b + LIBUSB_CONTROL_SETUP_SIZE, str, len - 1);
        b[LIBUSB_CONTROL_SETUP_SIZE + len - 1] = 0;
        libusb_fill_control_setup(b, LIBUSB_ENDPOINT_OUT | LIBUSB_REQUEST_TYPE_VENDOR |
                                  LIBUSB_RECIPIENT_DEVICE, AOA_REQ_SEND_STRING, 0,
                                  (uint16_t)id, (uint16_t)len);
    } else {
        libusb_fill_control_setup(b, LIBUSB_ENDPOINT_OUT | LIBUSB_REQUEST_TYPE_VENDOR |
                                  LIBUSB_RECIPIENT_DEVICE, AOA_REQ_START, 0, 0, 0);
    }
    libusb_fill_control_transfer(a->ctl, a->h, b, ctl_cb, d, AOA_CTL_TIMEOUT_MS);
    int e = libusb_submit_transfer(a->ctl);
    if (e == 0)
        a->ctl_busy = 1;
    return e;
}

static void ctl_cb(struct libusb_transfer *t)
{
    struct usb_dev *d = t->user_data;
    struct aoa_dev *a = priv(d);
    struct usb_src *s = d->src;
    a->ctl_busy = 0;
    if (a->failed || d->gone)
        return;
    char why[USB_ERR_MAX];
    if (a->step == 7) { /* the phone may drop off the bus before it answers START */
        a->switched = 1;
        d->keep_state = 1;
        (void)usb_add_switch(d->u, s, d->serial, d->port);
        usb_set_state(s, "switching");
        log_info("usb %s: source %s: switched to accessory mode (protocol %u); waiting for it "
                 "to come back", d->port, s->name, s->aoa.protocol);
        a->failed = 1; /* done with this device: release it */
        return;
    }
    if (t->status != LIBUSB_TRANSFER_COMPLETED) {
        if (a->step == 0 && t->status == LIBUSB_TRANSFER_STALL)
            snprintf(why, sizeof why, "the device does not support Android Open Accessory "
                     "(request 51 stalled)");
        else
            snprintf(why, sizeof why, "Android Open Accessory request %d: transfer %s",
                     a->step == 0 ? AOA_REQ_GET_PROTOCOL : AOA_REQ_SEND_STRING,
                     libusb_error_name(t->status == LIBUSB_TRANSFER_TIMED_OUT ? LIBUSB_ERROR_TIMEOUT
                                       : t->status == LIBUSB_TRANSFER_NO_DEVICE
                                           ? LIBUSB_ERROR_NO_DEVICE : LIBUSB_ERROR_IO));
        stop_streaming(d, why);
        return;
    }
    if (a->step == 0) {
        if (t->actual_length != 2) {
            snprintf(why, sizeof why, "Android Open Accessory: GET_PROTOCOL answered %d bytes, "
                     "expected 2", t->actual_length);
            stop_streaming(d, why);
            return;
        }
        const uint8_t *p = libusb_control_transfer_get_data(t);
        s->aoa.protocol = (unsigned)(p[0] | p[1] << 8);
        if (s->aoa.protocol == 0) {
            stop_streaming(d, "the device does not support Android Open Accessory (protocol 0)");
            return;
        }
    }
    a->step++;
    int e = submit_ctl(d);
    if (e != 0) {
        snprintf(why, sizeof why, "Android Open Accessory: submitting request: %s",
                 libusb_error_name(e));
        stop_streaming(d, why);
    }
}

static int start_switch(struct usb_dev *d)
{
    struct aoa_dev *a = priv(d);
    usb_set_state(d->src, "switching");
    a->step = 0;
    int e = submit_ctl(d);
    if (e != 0) {
        char why[USB_ERR_MAX];
        snprintf(why, sizeof why, "Android Open Accessory: %s", libusb_error_name(e));
        stop_streaming(d, why);
        return -EIO;
    }
    return 0;
}

/* ---- streaming --------------------------------------------------------------------------- */

static void out_cb(struct libusb_transfer *t);
static void in_cb(struct libusb_transfer *t);

static void send_next(struct usb_dev *d)
{
    struct aoa_dev *a = priv(d);
    if (a->out_busy || !a->q_n || a->failed || d->gone || a->clear_out)
        return;
    struct aoa_out *o = &a->q[a->q_head];
    libusb_fill_bulk_transfer(a->out, a->h, a->ep_out, o->b, (int)o->n, out_cb, d,
                              AOA_OUT_TIMEOUT_MS);
    int e = libusb_submit_transfer(a->out);
    if (e == 0) {
        a->out_busy = 1;
        return;
    }
    char why[USB_ERR_MAX];
    snprintf(why, sizeof why, "writing to endpoint 0x%02x: %s", a->ep_out, libusb_error_name(e));
    stop_streaming(d, e == LIBUSB_ERROR_NO_DEVICE ? NULL : why);
}

static void enqueue(struct usb_dev *d, uint8_t channel, const uint8_t *v, size_t n, int resume)
{
    struct aoa_dev *a = priv(d);
    if (resume) { /* a RESUME supersedes everything not yet sent (but the one on the wire) */
        a->q_n = a->out_busy && a->q_n ? 1 : 0;
    } else if (a->q_n == AOA_OUTQ) {
        return; /* ACKs are cumulative: a later one covers this */
    }
    struct aoa_out *o = &a->q[(a->q_head + a->q_n) % AOA_OUTQ];
    int k = aoaenv_encode(channel, v, n, o->b, sizeof o->b);
    if (k < 0)
        return;
    o->n = (size_t)k;
    o->resume = resume;
    a->q_n++;
    send_next(d);
}

static void send_resume(struct usb_dev *d)
{
    struct aoa_dev *a = priv(d);
    struct usb_src *s = d->src;
    uint8_t m[RELAY_RESUME_LEN];
    int have = s->have_pos || a->have_acked;
    int64_t from = a->have_acked && (!s->have_pos || a->acked > s->pos) ? a->acked : s->pos;
    int n = relay_rx_resume(&a->rx, have, have ? from : 0, AOAENV_VALUE_MAX, AOA_WINDOW, m,
                            sizeof m);
    if (n < 0)
        return;
    s->aoa.resumes++;
    a->frags_at_record = a->rx.st.fragments;
    a->last_record_mono_ms = daemon_mono_ms();
    enqueue(d, AOAENV_RESUME, m, (size_t)n, 1);
}

static void send_ack(struct usb_dev *d, int64_t seq)
{
    struct aoa_dev *a = priv(d);
    if (a->have_acked && seq <= a->acked)
        return;
    a->acked = seq;
    a->have_acked = 1;
    uint8_t m[RELAY_ACK_LEN];
    int n = relay_ack_encode(a->rx.gen, seq, m, sizeof m);
    if (n < 0)
        return;
    d->src->aoa.acks++;
    enqueue(d, AOAENV_RESUME, m, (size_t)n, 0);
}

static void out_cb(struct libusb_transfer *t)
{
    struct usb_dev *d = t->user_data;
    struct aoa_dev *a = priv(d);
    a->out_busy = 0;
    if (a->failed || d->gone)
        return;
    switch (t->status) {
    case LIBUSB_TRANSFER_COMPLETED:
        a->stalls_out = a->errors_out = 0;
        if (a->q_n) {
            a->q_head = (a->q_head + 1) % AOA_OUTQ;
            a->q_n--;
        }
        send_next(d);
        return;
    case LIBUSB_TRANSFER_STALL:
        d->src->aoa.stalls++;
        if (++a->stalls_out > AOA_STALLS_MAX) {
            stop_streaming(d, "the phone keeps stalling its OUT endpoint");
            return;
        }
        a->clear_out = 1; /* cleared in aoa_after_events, then the same envelope again */
        return;
    case LIBUSB_TRANSFER_NO_DEVICE:
    case LIBUSB_TRANSFER_CANCELLED:
        stop_streaming(d, NULL);
        return;
    default:
        if (++a->errors_out > AOA_ERRORS_MAX) {
            stop_streaming(d, "writes to the phone keep failing");
            return;
        }
        send_next(d); /* the same envelope again */
        return;
    }
}

static int submit_in(struct usb_dev *d)
{
    struct aoa_dev *a = priv(d);
    if (a->in_busy || a->failed || d->gone || a->clear_in || a->in_off < a->in_len)
        return 0;
    libusb_fill_bulk_transfer(a->in, a->h, a->ep_in, a->inbuf, sizeof a->inbuf, in_cb, d, 0);
    int e = libusb_submit_transfer(a->in);
    if (e == 0) {
        a->in_busy = 1;
        return 0;
    }
    char why[USB_ERR_MAX];
    snprintf(why, sizeof why, "reading endpoint 0x%02x: %s", a->ep_in, libusb_error_name(e));
    stop_streaming(d, e == LIBUSB_ERROR_NO_DEVICE ? NULL : why);
    return -EIO;
}

/* The held record (or refusal) to the building batch: 0, -EAGAIN (still held) or -ENOMEM. */
static int add_held(struct usb_dev *d)
{
    struct aoa_dev *a = priv(d);
    int e = usb_src_add(d->src, &a->held, a->held_ref, USB_AOA_BATCH);
    if (e == -EAGAIN)
        return e;
    a->have_held = 0;
    if (e < 0)
        free(a->held_ref); /* not taken (with 0 the batch owns it) */
    a->held_ref = NULL;
    return e;
}

/* One complete record: to the batch as an event, or refused and counted, and then to the
 * batch as a refusal for the store's refused table (its seq is processed once that commits).
 * Returns -EAGAIN when the batch cannot take it now (it is held). */
static int on_record(struct usb_dev *d, const struct relay_frame *f, int oversized)
{
    struct aoa_dev *a = priv(d);
    struct usb_src *s = d->src;
    char why[DEC_WHY_MAX];
    a->last_record_mono_ms = daemon_mono_ms();
    a->frags_at_record = a->rx.st.fragments;
    s->aoa.records++;
    int e = 0;
    if (oversized) {
        s->aoa.refused++;
        log_warn("usb %s: source %s: record %" PRId64 " of %zu bytes refused (more than %d)",
                 d->port, s->name, f->seq, f->len, RELAY_RECORD_MAX);
        snprintf(why, sizeof why, "a record of %zu bytes (more than %d; not kept)", f->len,
                 RELAY_RECORD_MAX);
        e = -EINVAL;
    } else if ((e = relay_record_event(f, s->participant, s->name, &a->held, why)) == -ENOENT) {
        s->aoa.skipped++;
    } else if (e < 0) {
        s->aoa.refused++;
        log_warn("usb %s: source %s: record %" PRId64 " refused: %s", d->port, s->name, f->seq,
                 why);
    }
    if (e < 0) {
        struct refusal *ref = refusal_new(why, oversized ? NULL : f->data,
                                          oversized ? 0 : f->len);
        if (!ref) { /* processed without its row once the batch commits */
            log_error("usb %s: source %s: refused record %" PRId64 " not kept in the store "
                      "(out of memory); counted as processed", d->port, s->name, f->seq);
            usb_src_note_ack(s, f->seq);
            return 0;
        }
        memset(&a->held, 0, sizeof a->held);
        snprintf(a->held.source, sizeof a->held.source, "%s", s->name);
        snprintf(a->held.participant, sizeof a->held.participant, "%s", s->participant);
        a->held.seq = f->seq;
        a->held.has_seq = 1;
        a->held_ref = ref;
    }
    a->have_held = 1;
    a->held_seq = f->seq;
    e = add_held(d);
    if (e < 0 && e != -EAGAIN)
        stop_streaming(d, "out of memory");
    return e;
}

static void on_envelope(struct usb_dev *d, uint8_t ch, const uint8_t *v, size_t n, int *paused)
{
    struct aoa_dev *a = priv(d);
    struct usb_src *s = d->src;
    char why[DEC_WHY_MAX];
    if (ch == AOAENV_RECORDS) {
        struct relay_frame f;
        int r = relay_rx_feed(&a->rx, v, n, &f);
        s->aoa.rx = a->rx.st;
        if (r == RELAY_RECORD || r == RELAY_OVERSIZED) {
            if (on_record(d, &f, r == RELAY_OVERSIZED) == -EAGAIN)
                *paused = 1;
        } else if (r < 0) {
            log_warn("usb %s: source %s: relay stream: %s; asking the phone to resume", d->port,
                     s->name, a->rx.why);
        }
        return;
    }
    if (ch == AOAENV_STATUS) {
        struct relay_status st;
        if (relay_status_decode(v, n, &st, why) == 0) {
            s->aoa.phone = st;
            s->aoa.have_phone = 1;
            s->dirty = 1;
        } else {
            s->aoa.env_errors++;
            log_warn("usb %s: source %s: phone status refused: %s", d->port, s->name, why);
        }
        return;
    }
    s->aoa.env_errors++;
    log_warn("usb %s: source %s: envelope on channel 0x%02x is not one the phone sends, "
             "ignored", d->port, s->name, ch);
}

/* Works through the bytes of the last IN transfer; stops early (keeping the rest) when the
 * store's batch is full, and reads on when everything is taken. */
static void process_in(struct usb_dev *d)
{
    struct aoa_dev *a = priv(d);
    struct usb_src *s = d->src;
    if (a->have_held) {
        int e = add_held(d);
        if (e == -EAGAIN)
            return;
        if (e < 0) {
            stop_streaming(d, "out of memory");
            return;
        }
    }
    int paused = 0;
    while (a->in_off < a->in_len && !paused && !a->failed) {
        uint8_t ch;
        const uint8_t *v;
        size_t n;
        int err;
        a->in_off += aoaenv_rx_feed(&a->env, a->inbuf + a->in_off, a->in_len - a->in_off, &ch,
                                    &v, &n, &err);
        if (err) {
            s->aoa.env_errors++;
            log_warn("usb %s: source %s: %s; skipping the rest of the transfer", d->port,
                     s->name, a->env.why);
            send_resume(d);
        } else if (v) {
            on_envelope(d, ch, v, n, &paused);
        }
    }
    if (paused)
        return; /* aoa_on_reply brings us back */
    if (a->in_off >= a->in_len)
        aoaenv_rx_end_transfer(&a->env);
    (void)usb_src_flush(s);
    if (relay_rx_need_resume(&a->rx) && !a->failed)
        send_resume(d);
    s->dirty = 1;
    submit_in(d);
}

static void in_cb(struct libusb_transfer *t)
{
    struct usb_dev *d = t->user_data;
    struct aoa_dev *a = priv(d);
    a->in_busy = 0;
    if (a->failed || d->gone)
        return;
    switch (t->status) {
    case LIBUSB_TRANSFER_COMPLETED:
        a->stalls_in = a->errors_in = 0;
        a->in_off = 0;
        a->in_len = (size_t)t->actual_length;
        process_in(d);
        return;
    case LIBUSB_TRANSFER_STALL:
        d->src->aoa.stalls++;
        log_warn("usb %s: source %s: endpoint 0x%02x stalled; clearing it", d->port,
                 d->src->name, a->ep_in);
        if (++a->stalls_in > AOA_STALLS_MAX) {
            stop_streaming(d, "the phone keeps stalling its IN endpoint");
            return;
        }
        a->clear_in = 1;
        return;
    case LIBUSB_TRANSFER_NO_DEVICE:
    case LIBUSB_TRANSFER_CANCELLED:
        stop_streaming(d, NULL);
        return;
    default: /* an error or an overflow: bytes may be lost, so start the stream over */
        if (aoaenv_rx_reset(&a->env))
            d->src->aoa.truncated++;
        if (++a->errors_in > AOA_ERRORS_MAX) {
            stop_streaming(d, "reads from the phone keep failing");
            return;
        }
        send_resume(d);
        submit_in(d);
        return;
    }
}

static int find_endpoints(struct usb_dev *d, char *why, size_t cap)
{
    struct aoa_dev *a = priv(d);
    struct libusb_config_descriptor *cfg;
    int e = libusb_get_active_config_descriptor(d->ldev, &cfg);
    if (e != 0) {
        snprintf(why, cap, "reading the configuration descriptor: %s", libusb_error_name(e));
        return -EIO;
    }
    a->ep_in = a->ep_out = 0;
    if (cfg->bNumInterfaces > 0 && cfg->interface[0].num_altsetting > 0) {
        const struct libusb_interface_descriptor *id = &cfg->interface[0].altsetting[0];
        for (int i = 0; i < id->bNumEndpoints; i++) {
            const struct libusb_endpoint_descriptor *ep = &id->endpoint[i];
            if ((ep->bmAttributes & LIBUSB_TRANSFER_TYPE_MASK) != LIBUSB_TRANSFER_TYPE_BULK)
                continue;
            if ((ep->bEndpointAddress & LIBUSB_ENDPOINT_DIR_MASK) == LIBUSB_ENDPOINT_IN) {
                if (!a->ep_in)
                    a->ep_in = ep->bEndpointAddress;
            } else if (!a->ep_out) {
                a->ep_out = ep->bEndpointAddress;
            }
        }
    }
    libusb_free_config_descriptor(cfg);
    if (!a->ep_in || !a->ep_out) {
        snprintf(why, cap, "accessory interface 0 has no bulk IN and OUT endpoint pair");
        return -ENODEV;
    }
    return 0;
}

static int start_stream(struct usb_dev *d)
{
    struct aoa_dev *a = priv(d);
    struct usb_src *s = d->src;
    char why[USB_ERR_MAX];
    if (find_endpoints(d, why, sizeof why) < 0) {
        stop_streaming(d, why);
        return -ENODEV;
    }
    int e = libusb_claim_interface(a->h, 0);
    if (e != 0) {
        snprintf(why, sizeof why, "claiming accessory interface 0: %s", libusb_error_name(e));
        stop_streaming(d, why);
        return -EIO;
    }
    a->claimed = 1;
    relay_rx_init(&a->rx, RELAY_RX_RECORDS, AOAENV_VALUE_MAX);
    aoaenv_rx_init(&a->env);
    memset(&s->aoa.rx, 0, sizeof s->aoa.rx);
    usb_set_state(s, "streaming");
    log_info("usb %s: source %s: streaming over endpoints 0x%02x/0x%02x from seq %s%" PRId64,
             d->port, s->name, a->ep_in, a->ep_out, s->have_pos ? "after " : "",
             s->have_pos ? s->pos : 0);
    send_resume(d);
    submit_in(d);
    usb_dev_due(d, daemon_mono_ms() + AOA_IDLE_MS);
    return a->failed ? -EIO : 0;
}

int aoa_start(struct usb_dev *d, int accessory)
{
    struct aoa_dev *a = calloc(1, sizeof *a);
    if (!a) {
        usb_set_error(d->src, "out of memory");
        return -ENOMEM;
    }
    d->priv = a;
    a->accessory = accessory;
    a->ctl = libusb_alloc_transfer(0);
    a->in = libusb_alloc_transfer(0);
    a->out = libusb_alloc_transfer(0);
    if (!a->ctl || !a->in || !a->out) {
        usb_set_error(d->src, "out of memory");
        a->failed = 1;
        return -ENOMEM;
    }
    int e = libusb_open(d->ldev, &a->h);
    if (e != 0) {
        char why[USB_ERR_MAX];
        snprintf(why, sizeof why, "opening the device: %s%s", libusb_error_name(e),
                 e == LIBUSB_ERROR_ACCESS ? " (install the udev rule of docs/usb.md)" : "");
        a->h = NULL;
        stop_streaming(d, why);
        return -EIO;
    }
    /* the counters of d->src->aoa run over all connections of the source */
    return accessory ? start_stream(d) : start_switch(d);
}

/* ---- the manager's hooks ------------------------------------------------------------------ */

void aoa_on_reply(struct usb_dev *d, int ok, int64_t acked)
{
    struct aoa_dev *a = priv(d);
    if (!a || !a->accessory || a->failed)
        return;
    if (!ok) {
        send_resume(d); /* the phone sends again from what is stored */
    } else if (acked >= 0) {
        send_ack(d, acked);
    }
    if (a->have_held || a->in_off < a->in_len)
        usb_dev_due(d, daemon_mono_ms()); /* go on with the bytes waiting */
}

void aoa_on_timer(struct usb_dev *d)
{
    struct aoa_dev *a = priv(d);
    if (!a || a->failed || !a->accessory)
        return;
    if (a->have_held || a->in_off < a->in_len)
        process_in(d);
    int64_t now = daemon_mono_ms();
    if (a->rx.st.fragments != a->frags_at_record && now - a->last_record_mono_ms >= AOA_IDLE_MS) {
        log_warn("usb %s: source %s: a record stayed incomplete for %d s; asking the phone to "
                 "resume", d->port, d->src->name, AOA_IDLE_MS / 1000);
        send_resume(d);
    }
    usb_dev_due(d, now + AOA_IDLE_MS / 2);
}

void aoa_after_events(struct usb_dev *d)
{
    struct aoa_dev *a = priv(d);
    if (!a) {
        if (d->gone)
            usb_dev_free(d);
        return;
    }
    if (!a->failed && !d->gone) {
        if (a->clear_in) {
            a->clear_in = 0;
            int e = libusb_clear_halt(a->h, a->ep_in);
            if (e != 0 && e != LIBUSB_ERROR_NO_DEVICE)
                log_warn("usb %s: clearing endpoint 0x%02x: %s", d->port, a->ep_in,
                         libusb_error_name(e));
            if (aoaenv_rx_reset(&a->env))
                d->src->aoa.truncated++;
            send_resume(d); /* what was in flight may be lost: start the stream over */
            submit_in(d);
        }
        if (a->clear_out) {
            a->clear_out = 0;
            (void)libusb_clear_halt(a->h, a->ep_out);
            send_next(d);
        }
    }
    if (a->in_busy || a->out_busy || a->ctl_busy)
        return;
    if ((a->failed || d->gone) && a->h) {
        if (a->claimed)
            (void)libusb_release_interface(a->h, 0);
        a->claimed = 0;
        libusb_close(a->h);
        a->h = NULL;
    }
    if (d->gone) {
        libusb_free_transfer(a->ctl);
        libusb_free_transfer(a->in);
        libusb_free_transfer(a->out);
        free(a->held_ref);
        free(a);
        d->priv = NULL;
        usb_dev_free(d);
    }
}

int aoa_stop(struct usb_dev *d)
{
    struct aoa_dev *a = priv(d);
    if (!a)
        return 1;
    if (a->accessory && d->src) {
        if (aoaenv_rx_reset(&a->env))
            d->src->aoa.truncated++;
        (void)usb_src_flush(d->src); /* complete records received go to the store */
    }
    stop_streaming(d, NULL);
    a->have_held = 0; /* not acknowledged: the phone sends it again */
    free(a->held_ref);
    a->held_ref = NULL;
    if (a->in_busy || a->out_busy || a->ctl_busy)
        return 0; /* freed in aoa_after_events once the cancelled transfers are back */
    aoa_after_events(d);
    return 0; /* aoa_after_events freed d (d->gone is set) */
}
#endif
