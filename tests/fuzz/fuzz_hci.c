/* libFuzzer harness for the LE scanning code (drivers/ble_hci.c, drivers/ble_adv.c).
 *
 * The whole input goes, as it is, to the event parser (then the command-result and report
 * parsers, and the AD parser for every report) and to the AD parser. Then it is played as a
 * script against a scanner on one end of a socketpair, the harness being the controller:
 *   byte 0        options: bit 0 an address filter, bit 1 a UUID filter, bit 2 no dedupe,
 *                 bit 3 an IRK filter (the Core spec's sample key: 70:81:94:0D:FB:AA is its)
 *   then steps    L bytes[L]  (L < 0xF0) the controller sends these L bytes as one packet
 *                 0xF0        a second passes (on_timer: the command timeout)
 *                 0xF1        stop()
 *                 0xF2        start()
 *                 0xF3        the controller answers the command out with success
 *                 0xF4 s      ... with status s
 *                 others      the controller hangs up
 * Any input must end without a crash, leak, hang or sanitizer report, and what the parsers
 * hand out must lie inside the input and within the documented limits. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drivers/ble_hci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEC INT64_C(1000000000)

static void check_ad(const uint8_t *p, size_t len, const struct adv_data *ad)
{
    if (ad->n_uuids > ADV_MAX_UUIDS || ad->n_svc > ADV_MAX_SVC_DATA || ad->n_mfr > ADV_MAX_MFR ||
        strlen(ad->name) > ADV_NAME_MAX)
        abort();
    for (size_t i = 0; i < ad->n_svc; i++)
        if (ad->svc[i].data < p || ad->svc[i].data + ad->svc[i].len > p + len)
            abort();
    for (size_t i = 0; i < ad->n_mfr; i++)
        if (ad->mfr[i].data < p || ad->mfr[i].data + ad->mfr[i].len > p + len)
            abort();
}

struct bounds {
    const uint8_t *p;
    size_t len;
};

static int on_report(const struct hci_adv_report *r, void *ud)
{
    struct bounds *b = ud;
    struct adv_data ad;
    if (r->data < b->p || r->data + r->len > b->p + b->len ||
        (!r->extended && r->len > HCI_ADV_LEGACY_MAX))
        abort();
    if (adv_parse(r->data, r->len, &ad, NULL) == 0)
        check_ad(r->data, r->len, &ad);
    return 0;
}

static void parsers(const uint8_t *data, size_t size)
{
    struct hci_event ev;
    struct hci_cmd_result res;
    struct adv_data ad;
    const char *why;
    if (hci_event_parse(data, size, &ev, &why) == 0) {
        struct bounds b = {data, size};
        (void)hci_cmd_result_parse(&ev, &res, &why);
        (void)hci_adv_reports_parse(&ev, on_report, &b, &why);
    }
    int e = adv_parse(data, size, &ad, &why);
    if (e == 0)
        check_ad(data, size, &ad);
    else if (!why)
        abort();
}

static void scan_report(struct hci_scan *s, const struct hci_scan_result *r, void *ud)
{
    if (r->irk < -1 || r->irk > 0)
        abort();
    if (r->ad_err == 0)
        check_ad(r->rep.data, r->rep.len, r->ad);
}

/* Answers the command the scanner wrote last (if any) with status st. */
static void answer(int fd, uint8_t st)
{
    uint8_t cmd[300];
    ssize_t n = recv(fd, cmd, sizeof cmd, MSG_DONTWAIT);
    if (n < 4)
        return;
    uint8_t ev[7] = {HCI_H4_EVT, HCI_EV_CMD_COMPLETE, 4, 1, cmd[1], cmd[2], st};
    (void)send(fd, ev, sizeof ev, MSG_DONTWAIT);
}

static void script(const uint8_t *data, size_t size)
{
    int fd[2];
    if (size < 1 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fd) < 0)
        return;
    struct hci_addr a = {{0x01, 0x2f, 0x6a, 0x8d, 0x7c, 0xc4}};
    struct att_uuid u = att_uuid16(0x180d);
    static const uint8_t irk[1][16] = {{0xec, 0x02, 0x34, 0xa3, 0x57, 0xc8, 0xad, 0x05, 0x34,
                                        0x10, 0x10, 0xa6, 0x0a, 0x39, 0x7d, 0x9b}};
    struct hci_scan_opts o = {
        .addrs = &a, .n_addrs = data[0] & 1, .uuids = &u, .n_uuids = data[0] >> 1 & 1,
        .irks = irk, .n_irks = data[0] >> 3 & 1,
        .dedupe_ns = data[0] & 4 ? -1 : 0, .on_report = scan_report,
    };
    struct hci_scan *s = hci_scan_new(fd[0], &o);
    int64_t now = 1000 * SEC;
    size_t i = 1;
    if (!s)
        goto out;
    (void)hci_scan_start(s, now);
    for (int steps = 0; i < size && steps < 256 && fd[1] >= 0; steps++) {
        uint8_t op = data[i++];
        if (op < 0xF0) {
            size_t n = op <= size - i ? op : size - i;
            (void)send(fd[1], data + i, n, MSG_DONTWAIT);
            i += n;
        } else if (op == 0xF0) {
            now += SEC;
            hci_scan_on_timer(s, now);
            continue;
        } else if (op == 0xF1) {
            (void)hci_scan_stop(s, now);
            continue;
        } else if (op == 0xF2) {
            (void)hci_scan_start(s, now);
            continue;
        } else if (op == 0xF3 || op == 0xF4) {
            answer(fd[1], op == 0xF4 && i < size ? data[i++] : 0);
        } else {
            close(fd[1]);
            fd[1] = -1;
        }
        (void)hci_scan_on_readable(s, now);
        if (hci_scan_get_state(s) > HCI_SCAN_STOPPING)
            abort();
    }
    hci_scan_free(s);
out:
    close(fd[0]);
    if (fd[1] >= 0)
        close(fd[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parsers(data, size);
    script(data, size);
    return 0;
}
