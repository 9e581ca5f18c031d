/* BLE links: the socket an ATT bearer runs on (daemon/ble_int.h), and raising its security.
 *
 * - sim: a Unix SEQPACKET connection to tools/blesim. Each packet is one ATT PDU, as on an
 *   L2CAP socket, so everything above the socket is the code that talks to real devices.
 * - l2cap: a non-blocking L2CAP socket on the LE ATT fixed channel (CID 4), bound to any
 *   adapter, with the peer's address type and the configured BT_SECURITY level, connected in
 *   the background (docs/ble.md; ../shared/reference/ble.md §3.1). Built only with libbluetooth
 *   (ENGAGED_HAVE_BLE); a kernel without Bluetooth answers EAFNOSUPPORT, which the caller
 *   reports and retries on its backoff schedule.
 * Opening never blocks: the caller waits for POLLOUT, then asks ble_link_finish.
 *
 * Security: when a device refuses a request for want of encryption or authentication, the
 * bearer asks for a higher level (drivers/ble_att.h). On L2CAP that is BT_SECURITY on the
 * connected socket: the kernel starts pairing or encryption and holds our sends until it is
 * done. The simulator takes the same step as a control packet on its socket
 * (blesim_ctl_security), so the daemon's path is the same on both. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef ENGAGED_HAVE_BLE
#include <bluetooth/bluetooth.h>
#include <bluetooth/l2cap.h>
#endif

#include "daemon/ble_int.h"
#include "drivers/ble_att.h"
#include "drivers/ble_sim.h"

static int open_sim(const struct ble_transport *t, int *ret_fd)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(t->path) >= sizeof a.sun_path)
        return -ENAMETOOLONG;
    strcpy(a.sun_path, t->path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        *ret_fd = fd;
        return 0;
    }
    int e = errno;
    if (e == EINPROGRESS) {
        *ret_fd = fd;
        return 1;
    }
    close(fd);
    /* a Unix listener with a full backlog answers EAGAIN and does not finish later */
    return -e;
}

#ifdef ENGAGED_HAVE_BLE
static int parse_addr(const char *s, bdaddr_t *ret)
{
    /* XX:XX:XX:XX:XX:XX, most significant byte first; bdaddr_t is least significant first */
    unsigned v[6];
    char end;
    if (strlen(s) != 17 ||
        sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &end) != 6)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        ret->b[5 - i] = (uint8_t)v[i];
    return 0;
}

static int open_l2cap(const struct ble_transport *t, const char *address, int *ret_fd)
{
    struct sockaddr_l2 local, peer;
    bdaddr_t any;
    memset(&any, 0, sizeof any);
    memset(&peer, 0, sizeof peer);
    if (parse_addr(address, &peer.l2_bdaddr) < 0)
        return -EINVAL;
    int fd = socket(AF_BLUETOOTH, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, BTPROTO_L2CAP);
    if (fd < 0)
        return -errno;
    /* our side: any adapter, the LE ATT channel, an LE address (said explicitly rather than
     * left for the kernel to infer from the channel) */
    memset(&local, 0, sizeof local);
    local.l2_family = AF_BLUETOOTH;
    local.l2_cid = htobs(ATT_CID);
    local.l2_bdaddr_type = BDADDR_LE_PUBLIC;
    bacpy(&local.l2_bdaddr, &any);
    struct bt_security sec = {.level = (uint8_t)t->security, .key_size = 0};
    int e = 0;
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0 ||
        setsockopt(fd, SOL_BLUETOOTH, BT_SECURITY, &sec, sizeof sec) < 0)
        e = -errno;
    if (e == 0) {
        peer.l2_family = AF_BLUETOOTH;
        peer.l2_cid = htobs(ATT_CID);
        peer.l2_bdaddr_type = t->addr_type == BLE_ADDR_RANDOM ? BDADDR_LE_RANDOM
                                                              : BDADDR_LE_PUBLIC;
        if (connect(fd, (struct sockaddr *)&peer, sizeof peer) == 0) {
            *ret_fd = fd;
            return 0;
        }
        e = -errno;
        if (e == -EINPROGRESS) {
            *ret_fd = fd;
            return 1;
        }
    }
    close(fd);
    return e;
}
#endif

int ble_link_open(const struct ble_transport *t, const char *address, int *ret_fd)
{
    if (t->kind == BLE_LINK_SIM)
        return open_sim(t, ret_fd);
#ifdef ENGAGED_HAVE_BLE
    return open_l2cap(t, address, ret_fd);
#else
    (void)address;
    return -EPROTONOSUPPORT;
#endif
}

int ble_link_security(const struct ble_transport *t)
{
    return t->kind == BLE_LINK_SIM ? BLE_SEC_LOW : (int)t->security;
}

int ble_link_secure(const struct ble_transport *t, int fd, int level)
{
    if (t->kind == BLE_LINK_SIM)
        return blesim_ctl_security(fd, level);
#ifdef ENGAGED_HAVE_BLE
    struct bt_security sec = {.level = (uint8_t)level, .key_size = 0};
    return setsockopt(fd, SOL_BLUETOOTH, BT_SECURITY, &sec, sizeof sec) < 0 ? -errno : 0;
#else
    (void)fd;
    (void)level;
    return -EPROTONOSUPPORT;
#endif
}

int ble_link_finish(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

const char *ble_link_strerror(const struct ble_transport *t, int err)
{
    if (t->kind == BLE_LINK_L2CAP && err == -EAFNOSUPPORT)
        return "no Bluetooth in this kernel (AF_BLUETOOTH not supported)";
    if (t->kind == BLE_LINK_L2CAP && err == -EPROTONOSUPPORT)
        return "this engaged was built without Bluetooth support (libbluetooth)";
    if (t->kind == BLE_LINK_SIM && (err == -ENOENT || err == -ECONNREFUSED))
        return "no simulator listening on the socket";
    return strerror(-err);
}

int ble_link_open_sim_path(const char *path, char *why, size_t cap)
{
    struct ble_transport t = {.kind = BLE_LINK_SIM};
    int fd = -1;
    snprintf(t.path, sizeof t.path, "%s", path);
    int e = ble_link_open(&t, NULL, &fd);
    if (e < 0) {
        snprintf(why, cap, "%s: %s", path, ble_link_strerror(&t, e));
        return e;
    }
    return fd;
}
