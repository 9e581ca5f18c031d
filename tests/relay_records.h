/* Spec §3 JSON records of every type a phone relays, for the relay tests (test_relay.c,
 * test_relay_resume.c). Header-only, like tests/event_identical.h. */
#ifndef ENGAGED_TEST_RELAY_RECORDS_H
#define ENGAGED_TEST_RELAY_RECORDS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "drivers/relay.h"

#define P "p01"
#define S "phone-p01"

enum { K_SCREEN, K_APP, K_EMA, K_MODULE, K_DWAI, K_NUDGE_ACK, K_BATTERY, K_LONG_APP, K_MAX_EMA,
       K_KINDS };

/* A record of kind k with seq; K_MAX_EMA is padded to exactly RELAY_RECORD_MAX bytes. Returns
 * the length (no newline). */
static size_t make_record(char *b, size_t cap, int k, int64_t seq)
{
    int n = snprintf(b, cap, "{\"ts\":%lld,\"participant\":\"" P "\",\"source\":\"" S "\","
                     "\"seq\":%lld,", 1583470800000LL + seq * 1000, (long long)seq);
    char name[256];
    switch (k) {
    case K_SCREEN:
        n += snprintf(b + n, cap - n, "\"type\":\"screen\",\"state\":\"unlocked\"}");
        break;
    case K_APP:
        n += snprintf(b + n, cap - n, "\"type\":\"app\",\"app\":\"org.example.mindapp\","
                      "\"state\":\"foreground\"}");
        break;
    case K_EMA:
        n += snprintf(b + n, cap - n, "\"type\":\"ema\",\"prompt\":\"mood-am\","
                      "\"state\":\"answered\",\"items\":{\"mood\":4,\"note\":\"caf\xc3\xa9\"}}");
        break;
    case K_MODULE:
        n += snprintf(b + n, cap - n, "\"type\":\"module\",\"module\":\"sleep-1\","
                      "\"state\":\"completed\"}");
        break;
    case K_DWAI:
        n += snprintf(b + n, cap - n, "\"type\":\"dwai\",\"items\":[4,5,4,3,5,4]}");
        break;
    case K_NUDGE_ACK:
        n += snprintf(b + n, cap - n, "\"type\":\"nudge_ack\",\"nudge\":\"n-20200306-1\","
                      "\"state\":\"opened\"}");
        break;
    case K_BATTERY:
        n += snprintf(b + n, cap - n, "\"type\":\"battery\",\"pct\":87}");
        break;
    case K_LONG_APP:
        memset(name, 'a', 255);
        name[255] = '\0';
        n += snprintf(b + n, cap - n, "\"type\":\"app\",\"app\":\"%s\"}", name);
        break;
    default: { /* an ema whose items fill the record to the limit */
        int head = snprintf(b + n, cap - n, "\"type\":\"ema\",\"prompt\":\"diary\","
                            "\"state\":\"answered\",\"items\":{\"text\":\"");
        n += head;
        size_t fill = RELAY_RECORD_MAX - (size_t)n - 3;
        memset(b + n, 'x', fill);
        n += (int)fill;
        n += snprintf(b + n, cap - n, "\"}}");
        break;
    }
    }
    return (size_t)n;
}

static const enum ev_type kind_type[K_KINDS] = {EV_SCREEN, EV_APP, EV_EMA, EV_MODULE, EV_DWAI,
                                                EV_NUDGE_ACK, EV_BATTERY, EV_APP, EV_EMA};

#endif
