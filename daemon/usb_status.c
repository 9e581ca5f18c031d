/* status/<source> of the USB sources (docs/usb.md, "Status topic"): one JSON object with a
 * fixed key order, published when something changed and every status_interval. */
#if ENGAGED_HAVE_USB
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/publish.h"
#include "daemon/relay_json.h"
#include "daemon/usb_int.h"

static json_t *jstr(const char *s) { return s && *s ? json_string(s) : json_null(); }
static json_t *jint(int64_t v) { return json_integer((json_int_t)v); }

static json_t *ax3_json(const struct usb_ax3_info *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "device_id", a->have_id ? jint(a->id.device_id) : json_null());
    json_object_set_new(o, "model", a->have_id ? json_string(a->id.kind) : json_null());
    json_object_set_new(o, "hardware", a->have_id ? jint(a->id.hardware) : json_null());
    json_object_set_new(o, "firmware", a->have_id ? jint(a->id.firmware) : json_null());
    json_object_set_new(o, "battery_pct", a->have_batt ? jint(a->batt.pct) : json_null());
    json_object_set_new(o, "battery_mv", a->have_batt ? jint(a->batt.mv) : json_null());
    json_object_set_new(o, "charged", a->have_batt ? json_boolean(a->batt.charged) : json_null());
    json_object_set_new(o, "clock_offset_ms", a->have_clock ? jint(a->clock_offset_ms)
                                                            : json_null());
    json_object_set_new(o, "clock_set", json_boolean(a->clock_set));
    json_object_set_new(o, "tty", jstr(a->tty));
    json_object_set_new(o, "file", jstr(a->file));
    json_object_set_new(o, "file_bytes", jint((int64_t)a->file_bytes));
    json_object_set_new(o, "bytes_read", jint((int64_t)a->bytes_read));
    json_object_set_new(o, "blocks", jint((int64_t)a->cwa.blocks));
    json_object_set_new(o, "blocks_bad", jint((int64_t)a->cwa.bad));
    json_object_set_new(o, "blocks_other", jint((int64_t)a->cwa.other));
    json_object_set_new(o, "samples", jint((int64_t)a->cwa.samples));
    json_object_set_new(o, "samples_before_position", jint((int64_t)a->cwa.skipped));
    json_object_set_new(o, "last_download", a->last_download_ms ? jint(a->last_download_ms)
                                                                : json_null());
    return o;
}

static json_t *aoa_json(const struct usb_aoa_info *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "protocol", a->protocol ? jint(a->protocol) : json_null());
    json_object_set_new(o, "records", jint((int64_t)a->records));
    json_object_set_new(o, "refused", jint((int64_t)a->refused));
    json_object_set_new(o, "skipped", jint((int64_t)a->skipped));
    relay_json_rx(o, &a->rx, a->env_errors);
    json_object_set_new(o, "resumes", jint((int64_t)a->resumes));
    json_object_set_new(o, "acks", jint((int64_t)a->acks));
    json_object_set_new(o, "stalls", jint((int64_t)a->stalls));
    json_object_set_new(o, "truncated", jint((int64_t)a->truncated));
    if (a->have_phone)
        relay_json_phone(o, &a->phone);
    return o;
}

void usb_publish_status(struct usb *u, struct usb_src *s)
{
    s->dirty = 0;
    if (!u->h.pub || u->stopped)
        return;
    char topic[PUBLISH_TOPIC_MAX + 1], vp[10];
    if (publish_topic_status(topic, sizeof topic, s->name) < 0)
        return;
    snprintf(vp, sizeof vp, "%04x:%04x", s->dev_vid, s->dev_pid);
    const char *kind = s->kind == USB_KIND_AX3 ? "ax3" : s->kind == USB_KIND_AOA ? "aoa" : NULL;
    json_t *o = json_object();
    json_object_set_new(o, "source", json_string(s->name));
    json_object_set_new(o, "participant", json_string(s->participant));
    json_object_set_new(o, "driver", json_string("usb"));
    json_object_set_new(o, "kind", jstr(kind));
    json_object_set_new(o, "state", json_string(s->state));
    json_object_set_new(o, "since", jint(s->since_ms));
    json_object_set_new(o, "connected", json_boolean(s->dev != NULL));
    json_object_set_new(o, "port", jstr(s->dev_port));
    json_object_set_new(o, "vid_pid", s->dev_vid || s->dev_pid ? json_string(vp) : json_null());
    json_object_set_new(o, "serial", jstr(s->dev_serial));
    json_object_set_new(o, "error", jstr(s->error));
    json_object_set_new(o, "connects", jint((int64_t)s->connects));
    json_object_set_new(o, "events", jint((int64_t)s->events));
    json_object_set_new(o, "stored", jint((int64_t)s->stored));
    json_object_set_new(o, "duplicate", jint((int64_t)s->duplicate));
    json_object_set_new(o, "failed", jint((int64_t)s->failed));
    json_object_set_new(o, "position", s->have_pos ? jint(s->pos) : json_null());
    if (s->kind == USB_KIND_AX3)
        json_object_set_new(o, "ax3", ax3_json(&s->ax3));
    else if (s->kind == USB_KIND_AOA)
        json_object_set_new(o, "aoa", aoa_json(&s->aoa));
    char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (txt) {
        (void)publisher_send(u->h.pub, topic, txt, strlen(txt));
        free(txt);
    }
}
#endif
