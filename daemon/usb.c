/* The USB manager (daemon/usb.h): a libusb context of its own with hotplug, its descriptors
 * in one epoll fd for the daemon's loop, the match of arriving devices against the configured
 * sources, one timerfd for every timer, the batches of events on their way to the store and
 * the status/<source> topics.
 *
 * Invariants:
 *  - libusb calls back (hotplug, transfers) only from libusb_handle_events_timeout_completed,
 *    which only usb_dispatch calls, on the loop thread. Hotplug callbacks only queue; devices
 *    are opened, matched and freed after handle_events returns.
 *  - At most one batch per source is in flight to the store writer, so the store's position
 *    for a source (its highest committed seq) never covers an event that was not stored.
 *  - A source is bound to at most one device at a time. */
#if ENGAGED_HAVE_USB
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/publish.h"
#include "daemon/store.h"
#include "daemon/usb_int.h"

#ifndef ENGAGED_VERSION
#define ENGAGED_VERSION "0"
#endif

#define EPOLL_BATCH 32
#define TAG_LIBUSB 1u
#define TAG_TIMER 2u
#define TAG_FD 3u
#define UNPOLLABLE_TICK_MS 10


libusb_context *usb_ctx(struct usb *u) { return u->ctx; }
const char *usb_version(void) { return ENGAGED_VERSION; }

void usb_set_state(struct usb_src *s, const char *state)
{
    if (s->state != state) {
        s->state = state;
        s->since_ms = daemon_now_ms();
    }
    s->dirty = 1;
}

void usb_set_error(struct usb_src *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof s->error, fmt, ap);
    va_end(ap);
    s->dirty = 1;
}

void usb_clear_error(struct usb_src *s)
{
    s->error[0] = 0;
    s->dirty = 1;
}

static int take_position(void *ud, const char *source, const struct store_position *p)
{
    struct usb *u = ud;
    for (size_t i = 0; i < u->n_src; i++)
        if (p->has_seq && strcmp(u->src[i].name, source) == 0) {
            u->src[i].have_pos = 1;
            u->src[i].pos = p->seq;
        }
    return 0;
}

/* ---- fds and the timer --------------------------------------------------------------- */

static int ep_add(struct usb *u, int fd, uint32_t events, uint32_t tag)
{
    struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)tag << 32 | (uint32_t)fd};
    if (epoll_ctl(u->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
        return 0;
    if (errno == EEXIST && epoll_ctl(u->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
        return 0;
    return -errno;
}

int usb_watch_fd(struct usb *u, int fd) { return ep_add(u, fd, EPOLLIN, TAG_FD); }

void usb_unwatch_fd(struct usb *u, int fd)
{
    (void)epoll_ctl(u->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static uint32_t to_epoll(short events)
{
    return (events & POLLIN ? EPOLLIN : 0) | (events & POLLOUT ? EPOLLOUT : 0);
}

static void on_pollfd_added(int fd, short events, void *ud)
{
    struct usb *u = ud;
    int e = ep_add(u, fd, to_epoll(events), TAG_LIBUSB);
    if (e == -EPERM) {
        /* a regular file (an emulated device node): always ready, so poll it by timer */
        u->unpollable++;
        log_debug("usb: libusb fd %d cannot be polled; handling its events every %d ms", fd,
                  UNPOLLABLE_TICK_MS);
    } else if (e < 0) {
        log_error("usb: cannot watch libusb fd %d: %s", fd, strerror(-e));
    }
}

static void on_pollfd_removed(int fd, void *ud)
{
    struct usb *u = ud;
    if (epoll_ctl(u->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno == EPERM && u->unpollable)
        u->unpollable--;
}

void usb_dev_due(struct usb_dev *d, int64_t mono_ms)
{
    d->due_mono_ms = mono_ms;
}

static void arm_timer(struct usb *u)
{
    int64_t now = daemon_mono_ms(), due = u->next_status_mono_ms;
#define EARLIER(t) do { if ((t) > 0 && (due <= 0 || (t) < due)) due = (t); } while (0)
    for (struct usb_dev *d = u->devs; d; d = d->next)
        EARLIER(d->due_mono_ms);
    for (size_t i = 0; i < u->n_src; i++)
        EARLIER(u->src[i].retry_mono_ms);
    for (size_t i = 0; i < USB_SWITCH_MAX; i++)
        if (u->sw[i].src)
            EARLIER(u->sw[i].until_mono_ms);
    if (u->unpollable)
        EARLIER(now + UNPOLLABLE_TICK_MS);
    struct timeval tv;
    if (!libusb_pollfds_handle_timeouts(u->ctx) && libusb_get_next_timeout(u->ctx, &tv) == 1)
        EARLIER(now + tv.tv_sec * 1000 + tv.tv_usec / 1000 + 1);
#undef EARLIER
    if (due > 0 && due <= now)
        due = now; /* due now: fire at once (an absolute time in the past does) */
    struct itimerspec its = {0};
    if (due > 0) {
        its.it_value.tv_sec = due / 1000;
        its.it_value.tv_nsec = (due % 1000) * 1000000 + 1; /* never all zero: that disarms */
    }
    (void)timerfd_settime(u->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- devices ------------------------------------------------------------------------- */

static int on_hotplug(libusb_context *ctx, libusb_device *ldev, libusb_hotplug_event ev,
                      void *ud)
{
    struct usb *u = ud;
    (void)ctx;
    if (u->q_n == USB_HOTPLUG_QUEUE) {
        u->q_overflow++;
        return 0;
    }
    struct hotplug_ev *q = &u->q[(u->q_head + u->q_n++) % USB_HOTPLUG_QUEUE];
    q->ldev = libusb_ref_device(ldev);
    q->arrived = ev == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED;
    return 0;
}

void usb_dev_free(struct usb_dev *d)
{
    struct usb *u = d->u;
    for (struct usb_dev **p = &u->devs; *p; p = &(*p)->next)
        if (*p == d) {
            *p = d->next;
            break;
        }
    libusb_unref_device(d->ldev);
    free(d);
}

/* Lets go of a device: unbinds its source now; frees it once no transfer refers to it (the
 * kind's stop may free it at once: d is not touched after). */
static void dev_release(struct usb_dev *d, int unplugged)
{
    struct usb *u = d->u;
    struct usb_src *s = d->src;
    d->gone = 1;
    d->due_mono_ms = 0;
    if (s && s->dev == d) {
        s->dev = NULL;
        if (unplugged && !d->keep_state)
            usb_set_state(s, "absent");
        u->st.devices--;
    }
    int can_free = d->kind == USB_KIND_AX3 ? ax3_stop(d) : d->kind == USB_KIND_AOA ? aoa_stop(d)
                                                                                  : 1;
    if (can_free)
        usb_dev_free(d);
}

/* The source a device belongs to, or NULL; *ret_bound is set when the source already has
 * another device. */
static struct usb_src *match(struct usb *u, uint16_t vid, uint16_t pid, const char *serial,
                             const char *port, int *ret_bound)
{
    int accessory = aoaenv_is_accessory(vid, pid);
    struct usb_src *hit = NULL;
    *ret_bound = 0;
    if (accessory) {
        /* the phone came back in accessory mode: the one switched on this port (or with this
         * serial), or a source naming its serial */
        int64_t now = daemon_mono_ms();
        for (size_t i = 0; i < USB_SWITCH_MAX && !hit; i++) {
            struct usb_switch *w = &u->sw[i];
            if (w->src && w->until_mono_ms > now &&
                ((serial[0] && strcmp(w->serial, serial) == 0) || strcmp(w->port, port) == 0)) {
                hit = w->src;
                w->src = NULL;
            }
        }
    }
    for (size_t i = 0; i < u->n_src && !hit; i++) {
        struct usb_src *s = &u->src[i];
        if (s->serial[0] && strcmp(s->serial, serial) != 0)
            continue;
        if (accessory) {
            /* its own vid_pid is the phone's normal one; the serial must name it */
            if (!s->serial[0] || s->transport == USB_TR_AX3)
                continue;
        } else if (s->has_vidpid && (s->vid != vid || s->pid != pid)) {
            continue;
        }
        if (s->dev) {
            *ret_bound = 1;
            continue;
        }
        hit = s;
    }
    return hit;
}

static int needs_serial(const struct usb *u, uint16_t vid, uint16_t pid)
{
    for (size_t i = 0; i < u->n_src; i++) {
        const struct usb_src *s = &u->src[i];
        if (s->serial[0] && (!s->has_vidpid || (s->vid == vid && s->pid == pid) ||
                             aoaenv_is_accessory(vid, pid)))
            return 1;
    }
    return 0;
}

/* The serial number without opening the device when sysfs has it (it always does on Linux);
 * else from the string descriptor, which needs the device opened. */
static void read_serial(struct usb *u, libusb_device *ldev, const char *sysdir,
                        const struct libusb_device_descriptor *dd, char *buf, size_t cap)
{
    buf[0] = 0;
    if (usbsys_read_attr(sysdir, "serial", buf, cap) == 0)
        return;
    buf[0] = 0;
    if (!dd->iSerialNumber || dd->bDeviceClass == LIBUSB_CLASS_HUB ||
        !needs_serial(u, dd->idVendor, dd->idProduct))
        return;
    libusb_device_handle *h;
    if (libusb_open(ldev, &h) != 0)
        return;
    unsigned char tmp[USB_SERIAL_MAX + 1];
    int k = libusb_get_string_descriptor_ascii(h, dd->iSerialNumber, tmp, sizeof tmp);
    libusb_close(h);
    if (k > 0 && (size_t)k < cap) {
        memcpy(buf, tmp, (size_t)k);
        buf[k] = 0;
    }
}

static void arrived(struct usb *u, libusb_device *ldev)
{
    for (struct usb_dev *d = u->devs; d; d = d->next)
        if (d->ldev == ldev && !d->gone)
            return; /* ENUMERATE and a hotplug event for the same device */
    u->st.arrivals++;
    struct libusb_device_descriptor dd;
    if (libusb_get_device_descriptor(ldev, &dd) != 0)
        return;
    uint8_t ports[8];
    int np = libusb_get_port_numbers(ldev, ports, sizeof ports);
    char port[USB_PORT_MAX], sysdir[USB_PATH_MAX], serial[USB_SERIAL_MAX + 1];
    uint8_t bus = libusb_get_bus_number(ldev);
    if (usbsys_port_name(bus, ports, np < 0 ? 0 : np, port, sizeof port) < 0)
        snprintf(port, sizeof port, "bus%u", bus);
    snprintf(sysdir, sizeof sysdir, "/sys/bus/usb/devices/%s", port);
    read_serial(u, ldev, sysdir, &dd, serial, sizeof serial);
    int bound = 0;
    struct usb_src *s = match(u, dd.idVendor, dd.idProduct, serial, port, &bound);
    if (!s) {
        u->st.ignored++;
        int lvl = dd.bDeviceClass == LIBUSB_CLASS_HUB ? LOG_LVL_DEBUG : LOG_LVL_INFO;
        log_msg(lvl, "usb %s (%04x:%04x%s%s): %s, ignored", port, dd.idVendor, dd.idProduct,
                serial[0] ? ", serial " : "", serial,
                bound ? "its source already has a device" : "no [source] names it");
        return;
    }
    struct usb_dev *d = calloc(1, sizeof *d);
    if (!d) {
        log_error("usb %s: out of memory", port);
        return;
    }
    d->u = u;
    d->ldev = libusb_ref_device(ldev);
    d->bus = bus;
    d->addr = libusb_get_device_address(ldev);
    snprintf(d->port, sizeof d->port, "%s", port);
    snprintf(d->sysdir, sizeof d->sysdir, "%s", sysdir);
    snprintf(d->serial, sizeof d->serial, "%s", serial);
    d->vid = dd.idVendor;
    d->pid = dd.idProduct;
    d->src = s;
    int accessory = aoaenv_is_accessory(d->vid, d->pid);
    d->kind = s->transport == USB_TR_AX3 ? USB_KIND_AX3
              : s->transport == USB_TR_AOA || accessory ? USB_KIND_AOA
              : d->vid == 0x04D8 && d->pid == 0x0057 ? USB_KIND_AX3 : USB_KIND_AOA;
    d->next = u->devs;
    u->devs = d;
    s->dev = d;
    s->kind = d->kind;
    s->connects++;
    s->dev_vid = d->vid;
    s->dev_pid = d->pid;
    snprintf(s->dev_serial, sizeof s->dev_serial, "%s", serial);
    snprintf(s->dev_port, sizeof s->dev_port, "%s", port);
    usb_clear_error(s);
    u->st.devices++;
    log_info("usb %s (%04x:%04x%s%s): source %s (%s)", port, d->vid, d->pid,
             serial[0] ? ", serial " : "", serial, s->name,
             d->kind == USB_KIND_AX3 ? "AX3/AX6" : accessory ? "phone in accessory mode"
                                                            : "phone");
    int e = d->kind == USB_KIND_AX3 ? ax3_start(d) : aoa_start(d, accessory);
    if (e < 0)
        usb_set_state(s, "error");
}

static void left(struct usb *u, libusb_device *ldev)
{
    for (struct usb_dev *d = u->devs; d; d = d->next) {
        if (d->ldev != ldev || d->gone)
            continue;
        u->st.removals++;
        if (d->src)
            log_info("usb %s: unplugged (source %s)", d->port, d->src->name);
        dev_release(d, 1);
        return;
    }
}

int usb_add_switch(struct usb *u, struct usb_src *s, const char *serial, const char *port)
{
    struct usb_switch *w = NULL;
    int64_t now = daemon_mono_ms();
    for (size_t i = 0; i < USB_SWITCH_MAX && !w; i++)
        if (!u->sw[i].src || u->sw[i].until_mono_ms <= now || u->sw[i].src == s)
            w = &u->sw[i];
    if (!w)
        return -ENOSPC;
    w->src = s;
    snprintf(w->serial, sizeof w->serial, "%s", serial);
    snprintf(w->port, sizeof w->port, "%s", port);
    w->until_mono_ms = now + USB_SWITCH_WAIT_MS;
    return 0;
}

/* ---- the loop ------------------------------------------------------------------------ */

static void run_hotplug_queue(struct usb *u)
{
    while (u->q_n) {
        struct hotplug_ev q = u->q[u->q_head];
        u->q_head = (u->q_head + 1) % USB_HOTPLUG_QUEUE;
        u->q_n--;
        if (!u->stopped) {
            if (q.arrived)
                arrived(u, q.ldev);
            else
                left(u, q.ldev);
        }
        libusb_unref_device(q.ldev);
    }
    if (u->q_overflow) {
        log_error("usb: %" PRIu64 " hotplug events lost (more than %d at once)", u->q_overflow,
                  USB_HOTPLUG_QUEUE);
        u->q_overflow = 0;
    }
}

static void handle_libusb(struct usb *u)
{
    struct timeval zero = {0, 0};
    int e = libusb_handle_events_timeout_completed(u->ctx, &zero, NULL);
    if (e < 0 && e != LIBUSB_ERROR_INTERRUPTED)
        log_warn("usb: handling events: %s, ignoring", libusb_error_name(e));
    run_hotplug_queue(u);
    for (struct usb_dev *d = u->devs, *nx; d; d = nx) {
        nx = d->next;
        if (d->kind == USB_KIND_AOA)
            aoa_after_events(d); /* may free d */
    }
}

static void run_timers(struct usb *u)
{
    int64_t now = daemon_mono_ms();
    for (size_t i = 0; i < u->n_src; i++) {
        struct usb_src *s = &u->src[i];
        if (s->retry_mono_ms && s->retry_mono_ms <= now) {
            s->retry_mono_ms = 0;
            (void)usb_src_flush(s);
        }
    }
    for (size_t i = 0; i < USB_SWITCH_MAX; i++) {
        struct usb_switch *w = &u->sw[i];
        if (w->src && w->until_mono_ms <= now) {
            if (!w->src->dev) {
                usb_set_state(w->src, "error");
                usb_set_error(w->src, "the phone did not come back in accessory mode within %d s",
                              USB_SWITCH_WAIT_MS / 1000);
                log_warn("usb %s: source %s: the phone did not come back in accessory mode",
                         w->port, w->src->name);
            }
            w->src = NULL;
        }
    }
    /* a timer may start work that sets another due time: at most a few rounds per turn */
    for (int round = 0; round < 4; round++) {
        int ran = 0;
        now = daemon_mono_ms();
        for (struct usb_dev *d = u->devs; d; d = d->next) {
            if (d->gone || !d->due_mono_ms || d->due_mono_ms > now)
                continue;
            d->due_mono_ms = 0;
            ran = 1;
            if (d->kind == USB_KIND_AX3)
                ax3_on_timer(d);
            else if (d->kind == USB_KIND_AOA)
                aoa_on_timer(d);
        }
        if (!ran)
            break;
    }
    if (u->next_status_mono_ms && u->next_status_mono_ms <= now) {
        for (size_t i = 0; i < u->n_src; i++)
            u->src[i].dirty = 1;
        u->next_status_mono_ms = now + u->status_period_ms;
    }
}

int usb_fd(const struct usb *u) { return u ? u->epfd : -1; }

void usb_dispatch(struct usb *u)
{
    if (!u || u->stopped)
        return;
    struct epoll_event evs[EPOLL_BATCH];
    int k = epoll_wait(u->epfd, evs, EPOLL_BATCH, 0);
    int need_libusb = u->unpollable > 0, timer = 0;
    for (int i = 0; i < k; i++) {
        uint32_t tag = (uint32_t)(evs[i].data.u64 >> 32);
        int fd = (int)(uint32_t)evs[i].data.u64;
        if (tag == TAG_LIBUSB) {
            need_libusb = 1;
        } else if (tag == TAG_TIMER) {
            uint64_t x;
            while (read(u->tfd, &x, sizeof x) == (ssize_t)sizeof x)
                ;
            timer = 1;
        } else if (tag == TAG_FD) {
            for (struct usb_dev *d = u->devs; d; d = d->next)
                if (!d->gone && d->kind == USB_KIND_AX3 && ax3_owns_fd(d, fd)) {
                    ax3_on_fd(d, fd);
                    break;
                }
        }
    }
    if (need_libusb || timer)
        handle_libusb(u); /* with the timer too: libusb's own timeouts without timerfd */
    run_timers(u);
    usb_end_turn(u);
}

void usb_end_turn(struct usb *u)
{
    for (size_t i = 0; i < u->n_src; i++)
        if (u->src[i].dirty)
            usb_publish_status(u, &u->src[i]);
    arm_timer(u);
}

/* ---- setup and teardown ---------------------------------------------------------------- */

static int hex4(const char *s, uint16_t *v)
{
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -EINVAL;
        x = x * 16 + (unsigned)d;
    }
    *v = (uint16_t)x;
    return 0;
}

static int setup_source(struct usb *u, struct usb_src *s, const struct conf *cf,
                        const struct conf_source *cs)
{
    s->u = u;
    snprintf(s->name, sizeof s->name, "%s", cs->name);
    snprintf(s->participant, sizeof s->participant, "%s", cs->participant);
    snprintf(s->serial, sizeof s->serial, "%s", cs->serial);
    snprintf(s->path, sizeof s->path, "%s", cs->path);
    if (cs->vid_pid[0]) {
        if (strlen(cs->vid_pid) != 9 || cs->vid_pid[4] != ':' || hex4(cs->vid_pid, &s->vid) < 0 ||
            hex4(cs->vid_pid + 5, &s->pid) < 0) {
            log_error("usb: [source %s] vid_pid \"%s\" is not VVVV:PPPP", cs->name, cs->vid_pid);
            return -EINVAL;
        }
        s->has_vidpid = 1;
    }
    if (!cs->transport[0] || strcmp(cs->transport, "auto") == 0) {
        s->transport = USB_TR_AUTO;
    } else if (strcmp(cs->transport, "ax3") == 0) {
        s->transport = USB_TR_AX3;
    } else if (strcmp(cs->transport, "aoa") == 0) {
        s->transport = USB_TR_AOA;
    } else {
        log_error("usb: [source %s] transport \"%s\": expected auto, ax3 or aoa", cs->name,
                  cs->transport);
        return -EINVAL;
    }
    const struct conf_participant *p = conf_participant(cf, cs->participant);
    int e = 0;
    s->zone = tz_db_get(u->tzdb, p && p->tz[0] ? p->tz : "UTC", &e);
    if (!s->zone) {
        log_error("usb: [source %s] time zone of participant %s: %s", cs->name, cs->participant,
                  strerror(-e));
        return e ? e : -EINVAL;
    }
    s->state = "absent";
    s->since_ms = daemon_now_ms();
    s->dirty = 1;
    return 0;
}

int usb_new(const struct conf *cf, const struct usb_host *h, struct usb **ret)
{
    *ret = NULL;
    size_t n = 0;
    for (size_t i = 0; i < cf->n_sources; i++)
        n += cf->sources[i].driver == CONF_DRIVER_USB;
    if (!n)
        return 0;
    struct usb *u = calloc(1, sizeof *u);
    int e = -ENOMEM;
    if (!u || !(u->src = calloc(n, sizeof *u->src)) || !(u->tzdb = tz_db_new(NULL))) {
        log_error("usb: out of memory");
        goto fail;
    }
    u->h = *h;
    u->epfd = u->tfd = -1;
    u->next_token = 1;
    u->status_period_ms = cf->daemon.status_interval_ms > 0 ? cf->daemon.status_interval_ms
                                                            : 60000;
    for (size_t i = 0; i < cf->n_sources; i++)
        if (cf->sources[i].driver == CONF_DRIVER_USB &&
            (e = setup_source(u, &u->src[u->n_src++], cf, &cf->sources[i])) < 0)
            goto fail;
    u->st.sources = u->n_src;
    struct store_reader *rd;
    if ((e = store_open_readonly(cf->store.path, &rd)) < 0) {
        log_error("usb: reading source positions from %s: %s", cf->store.path,
                  store_strerror(e));
        goto fail;
    }
    e = store_reader_positions(rd, take_position, u);
    store_reader_close(rd);
    if (e < 0) {
        log_error("usb: reading source positions from %s: %s", cf->store.path,
                  store_strerror(e));
        goto fail;
    }
    u->epfd = epoll_create1(EPOLL_CLOEXEC);
    u->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (u->epfd < 0 || u->tfd < 0 || (e = ep_add(u, u->tfd, EPOLLIN, TAG_TIMER)) < 0) {
        e = e < 0 ? e : -errno;
        log_error("usb: epoll/timerfd: %s", strerror(-e));
        goto fail;
    }
    int le = libusb_init(&u->ctx);
    if (le != 0) {
        log_error("usb: libusb_init: %s", libusb_error_name(le));
        u->ctx = NULL;
        e = -EIO;
        goto fail;
    }
    (void)libusb_set_option(u->ctx, LIBUSB_OPTION_LOG_LEVEL,
                            log_get_level() >= LOG_LVL_DEBUG ? LIBUSB_LOG_LEVEL_WARNING
                                                             : LIBUSB_LOG_LEVEL_NONE);
    const struct libusb_pollfd **fds = libusb_get_pollfds(u->ctx);
    for (size_t i = 0; fds && fds[i]; i++)
        on_pollfd_added(fds[i]->fd, fds[i]->events, u);
    libusb_free_pollfds(fds);
    libusb_set_pollfd_notifiers(u->ctx, on_pollfd_added, on_pollfd_removed, u);
    if (!libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
        log_error("usb: this libusb has no hotplug support");
        e = -ENOTSUP;
        goto fail;
    }
    le = libusb_hotplug_register_callback(
        u->ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
        LIBUSB_HOTPLUG_ENUMERATE, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
        LIBUSB_HOTPLUG_MATCH_ANY, on_hotplug, u, &u->hp);
    if (le != 0) {
        log_error("usb: hotplug registration: %s", libusb_error_name(le));
        e = -EIO;
        goto fail;
    }
    u->have_hp = 1;
    log_info("usb: %zu source%s, libusb %u.%u.%u, watching for devices", u->n_src,
             u->n_src == 1 ? "" : "s", libusb_get_version()->major, libusb_get_version()->minor,
             libusb_get_version()->micro);
    run_hotplug_queue(u); /* the devices already plugged in (ENUMERATE) */
    u->next_status_mono_ms = daemon_mono_ms() + u->status_period_ms;
    for (size_t i = 0; i < u->n_src; i++)
        if (u->src[i].dirty)
            usb_publish_status(u, &u->src[i]);
    arm_timer(u);
    *ret = u;
    return 0;
fail:
    usb_free(u);
    return e;
}

void usb_stop(struct usb *u)
{
    if (!u || u->stopped)
        return;
    u->stopped = 1;
    if (u->have_hp) {
        libusb_hotplug_deregister_callback(u->ctx, u->hp);
        u->have_hp = 0;
    }
    for (struct usb_dev *d = u->devs, *nx; d; d = nx) {
        nx = d->next;
        if (!d->gone)
            dev_release(d, 0);
    }
    /* cancelled transfers call back from handle_events: give them up to a second */
    int64_t until = daemon_mono_ms() + 1000;
    while (u->devs && u->ctx && daemon_mono_ms() < until) {
        struct timeval tv = {0, 50000};
        (void)libusb_handle_events_timeout_completed(u->ctx, &tv, NULL);
        for (struct usb_dev *d = u->devs, *nx; d; d = nx) {
            nx = d->next;
            if (d->kind == USB_KIND_AOA)
                aoa_after_events(d);
        }
    }
    for (size_t i = 0; i < u->n_src; i++)
        usb_src_drop_building(&u->src[i]);
    run_hotplug_queue(u); /* unreferences what is queued */
}

struct usb *usb_free(struct usb *u)
{
    if (!u)
        return NULL;
    usb_stop(u);
    if (u->devs)
        log_warn("usb: %s devices still had transfers at exit", u->devs->next ? "some" : "a");
    while (u->devs) {
        struct usb_dev *d = u->devs;
        u->devs = d->next;
        libusb_unref_device(d->ldev);
        free(d->priv); /* transfers left are freed with the context */
        free(d);
    }
    if (u->ctx) {
        libusb_set_pollfd_notifiers(u->ctx, NULL, NULL, NULL);
        libusb_exit(u->ctx);
    }
    for (size_t i = 0; u->src && i < u->n_src; i++) {
        usb_batch_free(u->src[i].inflight);
        usb_batch_free(u->src[i].building);
    }
    if (u->epfd >= 0)
        close(u->epfd);
    if (u->tfd >= 0)
        close(u->tfd);
    tz_db_free(u->tzdb);
    free(u->src);
    free(u);
    return NULL;
}

void usb_get_stats(const struct usb *u, struct usb_stats *ret)
{
    memset(ret, 0, sizeof *ret);
    if (u)
        *ret = u->st;
}

#else /* built without libusb (-DENGAGED_USB=OFF) */

#include <errno.h>

#include "daemon/conf.h"
#include "daemon/log.h"
#include "daemon/usb.h"

int usb_new(const struct conf *cf, const struct usb_host *h, struct usb **ret)
{
    (void)h;
    *ret = NULL;
    for (size_t i = 0; i < cf->n_sources; i++)
        if (cf->sources[i].driver == CONF_DRIVER_USB)
            log_warn("source %s: this engaged was built without USB support (libusb); its data "
                     "can come in through the ingest socket", cf->sources[i].name);
    return 0;
}
struct usb *usb_free(struct usb *u) { (void)u; return NULL; }
int usb_fd(const struct usb *u) { (void)u; return -1; }
void usb_dispatch(struct usb *u) { (void)u; }
int usb_on_store_reply(struct usb *u, uint64_t token, int status_all, const uint8_t *per_event,
                       size_t n)
{
    (void)u; (void)token; (void)status_all; (void)per_event; (void)n;
    return 0;
}
void usb_stop(struct usb *u) { (void)u; }
void usb_get_stats(const struct usb *u, struct usb_stats *ret)
{
    (void)u;
    *ret = (struct usb_stats){0};
}
#endif
