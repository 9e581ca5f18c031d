/* libFuzzer harness for the btsnoop codec and replay reader (drivers/btsnoop.c,
 * drivers/file_btsnoop.c): any bytes as a capture must give events or located reports, never
 * a crash, hang or leak, and every event must be valid by docs/events.md (its canonical JSON
 * reads back as the same event).
 *
 * Input: one flag byte, then the file. Flags: bit 0 puts a valid file header in front (bits
 * 1-2 choose datalink 1001, 1002 or 2001), so the fuzzer spends its time on records rather
 * than on the signature; bit 3 also sends the bytes after the flag through the writer as one
 * ATT PDU (the next byte is the fragment size) and checks that the reassembler gives back the
 * same PDU. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/btsnoop.h"
#include "drivers/reader.h"
#include "pipeline/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FILE (256 * 1024)

static float scratch[EV_ACCEL_MAX][3];
static float back_scratch[EV_ACCEL_MAX][3];

static void check_event(const struct event *ev)
{
    if (ev->type != EV_HR && ev->type != EV_BATTERY && ev->type != EV_STEPS &&
        ev->type != EV_ACCEL)
        abort();
    if (strcmp(ev->participant, "p1") != 0 || strcmp(ev->source, "btsnoop") != 0)
        abort();
    char *j = ev_to_json(ev);
    if (!j)
        abort();
    struct event back;
    const char *why;
    if (ev_parse_json(j, strlen(j), &back, back_scratch, &why) != 0 || !ev_equal(ev, &back))
        abort();
    free(j);
}

static void run_reader(const char *path)
{
    struct reader r;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.scratch = scratch;
    r.opts.participant = "p1";
    r.ops = &reader_btsnoop;
    if (reader_btsnoop.open(&r, path, &r.opts) == 0) {
        struct event ev;
        int k;
        uint64_t bad = 0, events = 0;
        while ((k = reader_btsnoop.next(&r, &ev)) != READ_EOF) {
            if (k < 0) {
                if (!r.why)
                    abort();
                break;
            }
            if (k == READ_BAD) {
                if (!r.why || !r.why[0])
                    abort();
                bad++;
            } else if (k == READ_EVENT) {
                check_event(&ev);
                events++;
            } else
                abort();
        }
        const struct btsnoop_reader_stats *st = btsnoop_reader_stats(&r);
        if (!st || st->bad != bad || st->events != events)
            abort();
    } else if (!r.why)
        abort();
    reader_btsnoop.close(&r);
}

static void round_trip(const uint8_t *att, size_t len, size_t frag, uint32_t link)
{
    static uint8_t out[(4 + BTSNOOP_ATT_MAX) * (BTSNOOP_REC_HDR_LEN + 6)];
    static struct btsnoop_l2cap l;
    if (len > BTSNOOP_ATT_MAX)
        len = BTSNOOP_ATT_MAX;
    memset(&l, 0, sizeof l);
    long n = btsnoop_encode_att(out, sizeof out, link, 0x123, BTSNOOP_DIR_RECEIVED, 1000, att,
                                len, frag);
    if (n < 0)
        abort();
    size_t off = 0;
    int frames = 0;
    while (off < (size_t)n) {
        struct btsnoop_rec rec;
        struct btsnoop_pkt pk;
        struct btsnoop_frame fr;
        const char *dropped;
        char why[128];
        if (btsnoop_parse_record(out + off, &rec, why) != 0)
            abort();
        off += BTSNOOP_REC_HDR_LEN;
        if (btsnoop_packet(link, rec.flags, out + off, rec.incl_len, &pk, why) != 0 ||
            pk.type != BTSNOOP_PKT_ACL)
            abort();
        off += rec.incl_len;
        int e = btsnoop_l2cap_push(&l, &pk, &fr, &dropped, why);
        if (e < 0 || dropped)
            abort();
        if (e == 1) {
            if (off != (size_t)n || fr.len != len || (len && memcmp(fr.att, att, len) != 0))
                abort();
            frames++;
        }
    }
    if (frames != 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t f[BTSNOOP_HDR_LEN + MAX_FILE];
    static const uint32_t links[4] = {BTSNOOP_LINK_H1, BTSNOOP_LINK_H4, BTSNOOP_LINK_MONITOR,
                                      BTSNOOP_LINK_H4};
    if (size < 1 || size > MAX_FILE + 1)
        return 0;
    uint8_t flags = data[0];
    size_t n = 0;
    if (flags & 1) {
        btsnoop_encode_header(f, links[flags >> 1 & 3]);
        n = BTSNOOP_HDR_LEN;
    }
    memcpy(f + n, data + 1, size - 1);
    n += size - 1;
    if (flags & 8 && size >= 2)
        round_trip(data + 2, size - 2, data[1], links[flags >> 1 & 1]);
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_btsnoop.%d", (int)getpid());
    FILE *fp = fopen(path, "wb");
    if (!fp)
        abort();
    if (fwrite(f, 1, n, fp) != n)
        abort();
    fclose(fp);
    run_reader(path);
    unlink(path);
    return 0;
}
