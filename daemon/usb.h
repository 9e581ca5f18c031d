/* The daemon's live USB sources (docs/usb.md): every `[source NAME] driver = usb` section is
 * matched against the devices that appear on the hub's USB ports, through libusb hotplug on a
 * libusb context of its own, by VID:PID and serial number. Two kinds of device are served:
 *
 *  - Axivity AX3/AX6 (04d8:0057) docked on the hub: identified and its clock set through its
 *    serial command interface (the kernel's cdc_acm tty), then the part of its CWA file that
 *    no earlier dock stored is read from its mass-storage volume (found through sysfs and the
 *    mount table) and ingested as `accel` events;
 *  - Android phones running the engaged app: switched to Android Open Accessory mode, then the
 *    app's records arrive over the accessory's bulk endpoints with the relay protocol
 *    (docs/relay-profile.md), as over BLE.
 *
 * Devices no source names are left alone (one log line each). Events take the ingest path:
 * submitted to the store writer, handed to the pipeline (the host's push function) only after
 * the writer's reply says they are committed, in commit order. An unplug at any moment loses
 * nothing that was committed and commits nothing twice; the next plug resumes from the store's
 * position for the source.
 *
 * Everything runs on the daemon's loop thread. libusb's file descriptors (tracked with its
 * pollfd notifiers), the AX3 ttys and one timerfd are gathered in one epoll fd, so the loop
 * polls one fd (usb_fd / usb_dispatch). libusb starts one thread of its own (the
 * hotplug monitor) in usb_new: block signals before.
 *
 * Files: usb.c (the manager: libusb, hotplug, matching, timers), usb_batch.c (batches to the
 * store and its replies), usb_status.c (status/<source>), usb_ax3.c (a docked AX3), usb_aoa.c
 * (a phone), usb_sys.c (sysfs and the mount table), usb_int.h (shared internals); the pure
 * protocol code is drivers/usb_proto.h. */
#ifndef ENGAGED_DAEMON_USB_H
#define ENGAGED_DAEMON_USB_H

#include <stddef.h>
#include <stdint.h>

#include "pipeline/event.h"

struct conf;
struct store_writer;
struct publisher;

/* Called once per newly stored event, in commit order (ev borrowed; received: hub UTC ms at
 * receipt, as stored with it). Same shape as ingest_push_fn. */
typedef void (*usb_push_fn)(void *ud, const struct event *ev, int64_t received_ms);

struct usb_host {
    struct store_writer *sw;     /* borrowed; must outlive the manager */
    struct publisher *pub;       /* borrowed, may be NULL; not used after usb_stop() */
    usb_push_fn push;
    void *ud;
};

/* Store request tokens of the USB sources have this bit set (ingest's and BLE's never do). */
#define USB_TOKEN_FLAG (UINT64_C(1) << 61)
static inline int usb_is_token(uint64_t token) { return (token & USB_TOKEN_FLAG) != 0; }

struct usb;

/* Sets up every usb source of cf (copied: cf may go after the call), reads their positions
 * from the store (cf->store.path), starts libusb with hotplug (devices already plugged in
 * arrive at once). *ret is NULL when cf has no usb source. Returns 0 or -errno (logged).
 * Without USB on the machine (no /dev/bus/usb) libusb still starts, with no devices. */
int usb_new(const struct conf *cf, const struct usb_host *h, struct usb **ret);

/* Stops everything (as usb_stop) and frees. Accepts NULL; returns NULL. */
struct usb *usb_free(struct usb *u);

/* The loop glue: usb_fd is the one fd to poll for input (an epoll set; -1 for a NULL
 * manager); when it is readable, usb_dispatch does the work that is due. */
int usb_fd(const struct usb *u);
void usb_dispatch(struct usb *u);

/* A store reply: 1 if the token was ours (the stored events went to the push function), 0 if
 * not. Accepts a NULL manager (returns 0). */
int usb_on_store_reply(struct usb *u, uint64_t token, int status_all, const uint8_t *per_event,
                       size_t n);

/* Shutdown: stops downloads and accessory streams, cancels transfers and closes devices; events
 * not yet submitted are dropped (the device still has them: the next dock or connection sends
 * them again), those submitted are committed by the writer and applied by the next start's
 * recovery. No publishing or pushing after this. Accepts NULL. */
void usb_stop(struct usb *u);

struct usb_stats {
    size_t sources, devices;                     /* configured; bound now */
    uint64_t arrivals, removals, ignored;        /* hotplug events; devices no source names */
    uint64_t events, stored, duplicate, failed;  /* submitted; per reply outcome */
    uint64_t batches, retries;
};
void usb_get_stats(const struct usb *u, struct usb_stats *ret);

#endif
