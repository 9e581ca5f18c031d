/* Internals shared by daemon/usb.c (the manager), usb_ax3.c, usb_aoa.c and usb_sys.c. Not a
 * public interface: daemon/usb.h is. Everything here runs on the loop thread. */
#ifndef ENGAGED_DAEMON_USB_INT_H
#define ENGAGED_DAEMON_USB_INT_H

#include <libusb.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/conf.h"
#include "daemon/daemon.h"
#include "daemon/usb.h"
#include "drivers/relay.h"
#include "drivers/usb_proto.h"

#define USB_SERIAL_MAX 127        /* bytes of a device serial number we keep */
#define USB_PORT_MAX 32           /* "1-2.3.4" */
#define USB_ERR_MAX 200           /* the last error, as published */
#define USB_PATH_MAX 4096

/* Batches: one in flight per source, so a failed commit never has a later batch of the same
 * source committed after it (which would move the position past data that is not stored). */
#define USB_AX3_BATCH 16          /* accel events (<= EV_ACCEL_MAX samples each) per batch */
#define USB_AOA_BATCH 64          /* relay records per batch (= the RESUME window) */

enum usb_kind { USB_KIND_NONE = 0, USB_KIND_AX3, USB_KIND_AOA };
enum usb_transport { USB_TR_AUTO = 0, USB_TR_AX3, USB_TR_AOA };

struct usb;
struct usb_dev;

/* A batch of events of one source on its way to the store. Samples of accel events are owned
 * by the batch (one allocation per event). */
struct refusal;
struct usb_batch {
    uint64_t token;
    size_t n, cap;
    struct event *ev;          /* for a refusal: source, participant and seq */
    float (**samples)[3];
    struct refusal **ref;      /* owned; non-NULL: ev[i] is a refused relay record */
    int64_t received;          /* hub UTC ms at the submit, stored with the events */
    int have_ack;
    int64_t ack_upto;          /* AOA: every relay seq up to this is processed once it commits */
};

/* What a device kind reports into its source's status (kept with the source, so the last
 * values stay visible after the device is unplugged). */
struct usb_ax3_info {
    int have_id, have_batt, have_clock;
    struct ax3cmd_id id;
    struct ax3cmd_batt batt;
    int64_t clock_offset_ms;   /* device minus hub local time, at the dock */
    int clock_set;             /* the TIME command was acknowledged */
    char tty[64];
    char file[USB_PATH_MAX];
    uint64_t file_bytes, bytes_read;
    struct cwain_stats cwa;    /* of the last (or current) download */
    int64_t last_download_ms;  /* UTC ms when the last complete download ended */
};

struct usb_aoa_info {
    unsigned protocol;         /* AOA protocol version the phone reported */
    uint64_t records, refused, skipped, stalls, env_errors, resumes, acks, truncated;
    struct relay_rx_stats rx;
    int have_phone;
    struct relay_status phone;
};

/* One configured [source NAME] driver = usb. */
struct usb_src {
    struct usb *u;
    char name[CONF_ID_SIZE];
    char participant[CONF_ID_SIZE];
    int has_vidpid;
    uint16_t vid, pid;
    char serial[sizeof(((struct conf_source *)0)->serial)];
    char path[CONF_STR_SIZE];
    enum usb_transport transport;
    const struct tz_zone *zone;      /* the participant's configured zone (owned by u->tzdb) */

    int have_pos;
    int64_t pos;                     /* the store's position: highest committed seq */
    struct usb_batch *inflight;      /* submitted, reply not yet read (at most one) */
    struct usb_batch *building;      /* being filled */
    int64_t retry_mono_ms;           /* a submit found the writer full: retry then */

    struct usb_dev *dev;             /* bound device, or NULL */
    const char *state;               /* static string: "absent", "identifying", ... */
    int64_t since_ms;
    char error[USB_ERR_MAX];
    enum usb_kind kind;              /* of the last device bound */
    char dev_serial[USB_SERIAL_MAX + 1], dev_port[USB_PORT_MAX];
    uint16_t dev_vid, dev_pid;
    uint64_t connects, events, stored, duplicate, failed, batches;
    struct usb_ax3_info ax3;
    struct usb_aoa_info aoa;
    int dirty;                       /* publish the status at the end of this turn */
};

/* One device on the bus that a source claimed. */
struct usb_dev {
    struct usb *u;
    struct usb_dev *next;
    libusb_device *ldev;             /* referenced */
    uint8_t bus, addr;
    char port[USB_PORT_MAX];         /* sysfs name, e.g. "1-2.3" */
    char sysdir[USB_PATH_MAX];       /* /sys/bus/usb/devices/<port> */
    uint16_t vid, pid;
    char serial[USB_SERIAL_MAX + 1];
    struct usb_src *src;
    enum usb_kind kind;
    int gone;                        /* unplugged: tear down once nothing refers to it */
    int keep_state;                  /* its unplug is expected (switched to accessory mode) */
    int64_t due_mono_ms;             /* the kind's timer; 0 = none */
    void *priv;                      /* struct ax3_dev / struct aoa_dev */
};

/* A phone switched to accessory mode, expected back as 18D1:2D0x within a few seconds. */
#define USB_SWITCH_MAX 8
#define USB_SWITCH_WAIT_MS 15000
struct usb_switch {
    struct usb_src *src;
    char serial[USB_SERIAL_MAX + 1];
    char port[USB_PORT_MAX];
    int64_t until_mono_ms;
};

/* ---- the manager (usb.c; its batches: usb_batch.c; its status: usb_status.c) ---- */

#define USB_HOTPLUG_QUEUE 256
#define USB_RETRY_MS 50

struct hotplug_ev {
    libusb_device *ldev; /* referenced */
    int arrived;
};

struct usb {
    struct usb_host h;
    libusb_context *ctx;
    libusb_hotplug_callback_handle hp;
    int have_hp;
    int epfd, tfd;
    int unpollable;            /* libusb fds epoll refused (regular files): poll by timer */
    int stopped;
    struct tz_db *tzdb;
    size_t n_src;
    struct usb_src *src;
    struct usb_dev *devs;
    struct hotplug_ev q[USB_HOTPLUG_QUEUE];
    size_t q_head, q_n;
    uint64_t q_overflow;
    struct usb_switch sw[USB_SWITCH_MAX];
    uint64_t next_token;
    int64_t status_period_ms, next_status_mono_ms;
    struct usb_stats st;
};

/* ---- manager services ---- */
void usb_set_state(struct usb_src *s, const char *state);
void usb_set_error(struct usb_src *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void usb_clear_error(struct usb_src *s);
/* Adds a copy of ev (samples copied) to the source's building batch; submits the batch when it
 * holds max events. 0, -ENOMEM, or -EAGAIN when the batch is full and the previous one is still
 * in flight (the caller pauses and tries again when usb_src_can_add says so). With ref (a
 * refused relay record, daemon/refusal.h; ev gives its source, participant and seq), ref goes
 * to the store's refused table instead, and the batch owns it once this returns 0. */
int usb_src_add(struct usb_src *s, const struct event *ev, struct refusal *ref, size_t max);
/* 1 when usb_src_add would take an event now (a batch of max can still grow or be started). */
int usb_src_can_add(const struct usb_src *s, size_t max);
/* Submits the building batch if there is one and nothing is in flight. 0, 1 = submitted,
 * -EAGAIN (retried on the manager's timer), another -errno (the batch is dropped, logged). */
int usb_src_flush(struct usb_src *s);
/* Marks the building batch (or, if none, the last event's ACK point) for AOA acknowledgements. */
void usb_src_note_ack(struct usb_src *s, int64_t seq);
/* Drops the building batch (its events are not stored; the device sends them again). */
void usb_src_drop_building(struct usb_src *s);
/* Registers / unregisters an fd (tty) with the manager's epoll: events EPOLLIN. */
int usb_watch_fd(struct usb *u, int fd);
void usb_unwatch_fd(struct usb *u, int fd);
/* The device's timer: run its kind's on_timer at mono ms (0: cancel; <= now: this turn). */
void usb_dev_due(struct usb_dev *d, int64_t mono_ms);
libusb_context *usb_ctx(struct usb *u);
const char *usb_version(void);
int usb_add_switch(struct usb *u, struct usb_src *s, const char *serial, const char *port);
void usb_batch_free(struct usb_batch *b);
/* Publishes the statuses that changed and arms the timer for the next due work. */
void usb_end_turn(struct usb *u);
void usb_publish_status(struct usb *u, struct usb_src *s);
/* Frees a released device (d->gone) once its kind holds nothing more of it. */
void usb_dev_free(struct usb_dev *d);

/* ---- AX3 (usb_ax3.c) ---- */
int ax3_start(struct usb_dev *d);
void ax3_on_fd(struct usb_dev *d, int fd);
void ax3_on_timer(struct usb_dev *d);
/* The device went (or the manager stops): close everything now. Returns 1 when d can be
 * freed (always, for an AX3: it holds no libusb transfers). */
int ax3_stop(struct usb_dev *d);
/* The source's in-flight batch came back (committed or failed). */
void ax3_on_reply(struct usb_dev *d, int ok);
int ax3_owns_fd(const struct usb_dev *d, int fd);

/* ---- Android Open Accessory (usb_aoa.c) ---- */
int aoa_start(struct usb_dev *d, int accessory);
void aoa_on_timer(struct usb_dev *d);
int aoa_stop(struct usb_dev *d);     /* 1 when d can be freed (no transfer outstanding) */
void aoa_after_events(struct usb_dev *d);  /* deferred work after libusb's callbacks ran */
void aoa_on_reply(struct usb_dev *d, int ok, int64_t acked);

/* ---- sysfs and the mount table (usb_sys.c) ---- */
/* "1-2.3" from bus and port numbers; "usb1" for a root hub. 0 or -ENAMETOOLONG. */
int usbsys_port_name(uint8_t bus, const uint8_t *ports, int n, char *buf, size_t cap);
/* Reads sysfs attribute name of dir (trailing newline removed, non-printable bytes refused).
 * 0, -ENOENT, -EINVAL, -ENAMETOOLONG or another -errno. */
int usbsys_read_attr(const char *dir, const char *name, char *buf, size_t cap);
/* The tty node (/dev/ttyACM0) of the device's CDC-ACM interface. 0 or -ENOENT. */
int usbsys_find_tty(const char *devdir, char *ret, size_t cap);
/* The block devices (disks and partitions) under the device's mass-storage interface, as
 * dev_t, at most max. Returns the count (0 when none yet). */
int usbsys_find_blocks(const char *devdir, dev_t *ret, int max);
/* The mount point of the first of devs that is mounted (/proc/self/mountinfo). 0, -ENOENT. */
int usbsys_find_mount(const dev_t *devs, int n, char *ret, size_t cap);
/* The CWA file in a mount point or a configured path: a regular file path as is; in a
 * directory CWA-DATA.CWA, then CURRENT.CWA. 0 or -ENOENT. */
int usbsys_cwa_file(const char *dir_or_file, char *ret, size_t cap);

#endif
