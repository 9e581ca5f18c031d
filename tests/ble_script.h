/* Scripted ATT peer for the BLE unit tests (the BlueZ unit/test-gatt.c pattern, written
 * afresh): the code under test owns one end of a socketpair(AF_UNIX, SOCK_SEQPACKET), the
 * test the other. A script is data, one PDU a line:
 *   "> 02 00 02"   the client must have sent exactly this PDU next
 *   "< 03 00 02"   the peer sends this PDU, then the client reads it (att_on_readable)
 * A mismatch fails the test with both PDUs in hex. Include after cmocka.h. */
#ifndef ENGAGED_TESTS_BLE_SCRIPT_H
#define ENGAGED_TESTS_BLE_SCRIPT_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drivers/ble_att.h"

#define SEC INT64_C(1000000000)

struct peer {
    int fd[2];          /* fd[0]: the client's, fd[1]: the script's */
    struct att *att;
    int64_t now;
};

static inline void peer_open(struct peer *p)
{
    memset(p, 0, sizeof *p);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p->fd), 0);
    assert_int_equal(fcntl(p->fd[1], F_SETFL, O_NONBLOCK), 0);
    p->now = 1000 * SEC;
    p->att = att_new(p->fd[0], p->now);
    assert_non_null(p->att);
}

static inline void peer_close(struct peer *p)
{
    p->att = att_free(p->att);
    if (p->fd[0] >= 0)
        close(p->fd[0]);
    if (p->fd[1] >= 0)
        close(p->fd[1]);
    p->fd[0] = p->fd[1] = -1;
}

/* "0a 03 00" (spaces optional) to bytes; returns the count. */
static inline size_t hex_bytes(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (*s) {
        if (*s == ' ') {
            s++;
            continue;
        }
        unsigned v;
        assert_true(sscanf(s, "%2x", &v) == 1);
        assert_true(n < cap);
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

static inline void hex_str(const uint8_t *b, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && k + 4 < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, i ? " %02x" : "%02x", b[i]);
}

/* The next PDU the client sent, or -1 when none waits. */
static inline ssize_t peer_recv(struct peer *p, uint8_t *buf, size_t cap)
{
    ssize_t r = recv(p->fd[1], buf, cap, MSG_DONTWAIT);
    if (r < 0)
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    return r;
}

static inline void expect_pdu(struct peer *p, const char *hex)
{
    uint8_t want[600], got[600];
    char ws[2000], gs[2000];
    size_t n = hex_bytes(hex, want, sizeof want);
    ssize_t r = peer_recv(p, got, sizeof got);
    hex_str(want, n, ws, sizeof ws);
    if (r < 0)
        fail_msg("expected the client to send [%s], it sent nothing", ws);
    hex_str(got, (size_t)r, gs, sizeof gs);
    if ((size_t)r != n || memcmp(want, got, n))
        fail_msg("expected the client to send [%s], it sent [%s]", ws, gs);
}

static inline void expect_none(struct peer *p)
{
    uint8_t got[600];
    char gs[2000];
    ssize_t r = peer_recv(p, got, sizeof got);
    if (r >= 0) {
        hex_str(got, (size_t)r, gs, sizeof gs);
        fail_msg("expected silence, the client sent [%s]", gs);
    }
}

/* Sends bytes as one PDU from the peer and lets the client read it. */
static inline void peer_send_raw(struct peer *p, const uint8_t *b, size_t n)
{
    assert_int_equal(send(p->fd[1], b, n, MSG_NOSIGNAL), (ssize_t)n);
    if (p->att)
        att_on_readable(p->att, p->now);
}

static inline void peer_send(struct peer *p, const char *hex)
{
    uint8_t b[600];
    peer_send_raw(p, b, hex_bytes(hex, b, sizeof b));
}

static inline void run_script(struct peer *p, const char *const *lines)
{
    for (size_t i = 0; lines[i]; i++) {
        if (lines[i][0] == '>')
            expect_pdu(p, lines[i] + 1);
        else if (lines[i][0] == '<')
            peer_send(p, lines[i] + 1);
        else
            fail_msg("bad script line %zu: %s", i, lines[i]);
    }
}

#endif
