/* Finding a USB device's other faces through sysfs and the mount table: its serial number,
 * the tty of its CDC-ACM interface, the block devices of its mass-storage interface and where
 * they are mounted. The kernel's drivers own those interfaces (cdc_acm, usb-storage); engaged
 * only follows the links, so nothing here needs privileges beyond reading sysfs and the
 * device nodes it is given. Every walk is bounded in depth and entries. */
#if ENGAGED_HAVE_USB
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "daemon/usb_int.h"

#define WALK_DEPTH 8
#define WALK_ENTRIES 4096  /* directory entries looked at per walk, in total */
#define MOUNTINFO_LINES 100000

int usbsys_port_name(uint8_t bus, const uint8_t *ports, int n, char *buf, size_t cap)
{
    int k = n == 0 ? snprintf(buf, cap, "usb%u", bus) : snprintf(buf, cap, "%u-", bus);
    if (k < 0 || (size_t)k >= cap)
        return -ENAMETOOLONG;
    size_t len = (size_t)k;
    for (int i = 0; i < n; i++) {
        k = snprintf(buf + len, cap - len, i ? ".%u" : "%u", ports[i]);
        if (k < 0 || (size_t)k >= cap - len)
            return -ENAMETOOLONG;
        len += (size_t)k;
    }
    return 0;
}

int usbsys_read_attr(const char *dir, const char *name, char *buf, size_t cap)
{
    char path[USB_PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t k = read(fd, buf, cap);
    int e = errno;
    close(fd);
    if (k < 0)
        return -e;
    if ((size_t)k == cap)
        return -ENAMETOOLONG; /* the value may be longer than cap - 1 */
    while (k > 0 && (buf[k - 1] == '\n' || buf[k - 1] == ' '))
        k--;
    buf[k] = 0;
    for (ssize_t i = 0; i < k; i++)
        if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] > 0x7e)
            return -EINVAL;
    return 0;
}

struct walk {
    int entries;
    /* tty */
    char *tty;
    size_t tty_cap;
    int found_tty;
    /* block */
    dev_t *devs;
    int n_devs, max_devs;
};

static int parse_devt(const char *s, dev_t *ret)
{
    unsigned ma, mi;
    char extra;
    if (sscanf(s, "%u:%u%c", &ma, &mi, &extra) != 2)
        return -EINVAL;
    *ret = makedev(ma, mi);
    return 0;
}

/* Under a "block" directory: each disk (sdX) and its partitions (sdXN) have a "dev" file. */
static void take_block(struct walk *w, const char *dir, int depth)
{
    char v[32];
    dev_t d;
    if (usbsys_read_attr(dir, "dev", v, sizeof v) == 0 && parse_devt(v, &d) == 0 &&
        w->n_devs < w->max_devs)
        w->devs[w->n_devs++] = d;
    if (depth > 1)
        return;
    DIR *dd = opendir(dir);
    if (!dd)
        return;
    struct dirent *de;
    while ((de = readdir(dd)) && w->entries++ < WALK_ENTRIES) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
            continue;
        char sub[USB_PATH_MAX];
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name) < sizeof sub)
            take_block(w, sub, depth + 1);
    }
    closedir(dd);
}

/* Real directories only (sysfs links such as "subsystem" or "driver" would loop). */
static void walk(struct walk *w, const char *dir, int depth)
{
    if (depth > WALK_DEPTH)
        return;
    DIR *dd = opendir(dir);
    if (!dd)
        return;
    struct dirent *de;
    while ((de = readdir(dd)) && w->entries++ < WALK_ENTRIES) {
        if (de->d_name[0] == '.')
            continue;
        char sub[USB_PATH_MAX];
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name) >= sizeof sub)
            continue;
        if (de->d_type != DT_DIR)
            continue;
        if (w->tty && !w->found_tty && strcmp(de->d_name, "tty") == 0) {
            /* <interface>/tty/ttyACMn */
            DIR *td = opendir(sub);
            struct dirent *te;
            while (td && (te = readdir(td))) {
                if (strncmp(te->d_name, "tty", 3) == 0 && strlen(te->d_name) < 32 &&
                    (size_t)snprintf(w->tty, w->tty_cap, "/dev/%s", te->d_name) < w->tty_cap) {
                    w->found_tty = 1;
                    break;
                }
            }
            if (td)
                closedir(td);
            continue;
        }
        if (w->devs && strcmp(de->d_name, "block") == 0) {
            DIR *bd = opendir(sub);
            struct dirent *be;
            while (bd && (be = readdir(bd))) {
                if (be->d_name[0] == '.')
                    continue;
                char disk[USB_PATH_MAX];
                if ((size_t)snprintf(disk, sizeof disk, "%s/%s", sub, be->d_name) < sizeof disk)
                    take_block(w, disk, 1);
            }
            if (bd)
                closedir(bd);
            continue;
        }
        walk(w, sub, depth + 1);
    }
    closedir(dd);
}

int usbsys_find_tty(const char *devdir, char *ret, size_t cap)
{
    struct walk w = {.tty = ret, .tty_cap = cap};
    walk(&w, devdir, 0);
    return w.found_tty ? 0 : -ENOENT;
}

int usbsys_find_blocks(const char *devdir, dev_t *ret, int max)
{
    struct walk w = {.devs = ret, .max_devs = max};
    walk(&w, devdir, 0);
    return w.n_devs;
}

/* Undoes the octal escapes of mountinfo (\040 for a space, ...) in place. */
static void unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
}

int usbsys_find_mount(const dev_t *devs, int n, char *ret, size_t cap)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -errno;
    char line[4096];
    int found = -ENOENT, lines = 0;
    /* "36 25 8:1 / /media/AX3 rw,... - vfat /dev/sda1 rw": field 3 is the device, field 4
     * the root within it, field 5 the mount point. The first listed partition that is
     * mounted wins; a bind mount of a subdirectory (root != "/") is skipped. */
    for (int want = 0; want < n && found < 0; want++) {
        rewind(f);
        lines = 0;
        while (fgets(line, sizeof line, f) && lines++ < MOUNTINFO_LINES) {
            char *save = NULL, *fld[5];
            int k = 0;
            for (char *t = strtok_r(line, " \n", &save); t && k < 5; t = strtok_r(NULL, " \n",
                                                                                 &save))
                fld[k++] = t;
            dev_t d;
            if (k < 5 || parse_devt(fld[2], &d) < 0 || d != devs[want] ||
                strcmp(fld[3], "/") != 0)
                continue;
            unescape(fld[4]);
            if (strlen(fld[4]) >= cap)
                continue;
            strcpy(ret, fld[4]);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

int usbsys_cwa_file(const char *dir_or_file, char *ret, size_t cap)
{
    struct stat st;
    if (stat(dir_or_file, &st) < 0)
        return -errno;
    if (S_ISREG(st.st_mode)) {
        if (strlen(dir_or_file) >= cap)
            return -ENAMETOOLONG;
        strcpy(ret, dir_or_file);
        return 0;
    }
    if (!S_ISDIR(st.st_mode))
        return -ENOENT;
    /* The AX3 firmware names its file CWA-DATA.CWA; CURRENT.CWA is what some tools leave. On
     * the vfat volume names are case-insensitive; a copy on another file system may not be. */
    static const char *const names[] = {"CWA-DATA.CWA", "CURRENT.CWA", "cwa-data.cwa",
                                        "current.cwa"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if ((size_t)snprintf(ret, cap, "%s/%s", dir_or_file, names[i]) >= cap)
            return -ENAMETOOLONG;
        if (stat(ret, &st) == 0 && S_ISREG(st.st_mode))
            return 0;
    }
    return -ENOENT;
}
#endif
