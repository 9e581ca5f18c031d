#!/usr/bin/env python3
"""Synthetic btsnoop captures (../shared/reference/ble.md §6), written independently of
drivers/btsnoop.c so the C reader is checked against a second implementation.

  btsnoop_gen.py hr CAPTURE JSONL [DAYS]   Heart Rate discovery and a notification a minute
                                           (some split over ACL fragments), plus the same
                                           measurements as engaged JSON Lines events
  btsnoop_gen.py corpus DIR                the fuzz seeds (tests/fuzz/corpus_btsnoop): a flag
                                           byte, then a capture (tests/fuzz/fuzz_btsnoop.c)
"""
import json
import os
import struct
import sys

EPOCH_US = 0x00DCDDB30F2F8000
H1, H4, MON = 1001, 1002, 2001
RX, TX = 1, 0


def header(link):
    return b"btsnoop\0" + struct.pack(">II", 1, link)


def record(data, flags, ms, orig=None):
    ts = ms * 1000 + EPOCH_US
    return struct.pack(">IIIIq", len(data) if orig is None else orig, len(data), flags, 0,
                       ts) + data


def acl_records(link, handle, direction, ms, att, frag=0):
    l2 = struct.pack("<HH", len(att), 4) + att
    frag = frag or len(l2)
    out = b""
    for off in range(0, len(l2), frag):
        chunk = l2[off:off + frag]
        pb = 1 if off else (2 if direction == RX else 0)
        acl = struct.pack("<HH", handle | pb << 12, len(chunk)) + chunk
        if link == H4:
            out += record(b"\x02" + acl, direction, ms)
        elif link == H1:
            out += record(acl, direction, ms)
        else:
            out += record(acl, (5 if direction == RX else 4), ms)
    return out


def event_record(link, evt, params, ms):
    pkt = bytes([evt, len(params)]) + params
    if link == H4:
        return record(b"\x04" + pkt, 3, ms)
    if link == H1:
        return record(pkt, 3, ms)
    return record(pkt, 3, ms)


def discovery(link, handle, ms, frag=0):
    out = acl_records(link, handle, TX, ms, bytes([0x08, 1, 0, 0xff, 0xff, 0x03, 0x28]))
    rsp = bytes([0x09, 7, 0x0f, 0, 0x10, 0x10, 0, 0x37, 0x2a,
                 0x12, 0, 0x12, 0x13, 0, 0x19, 0x2a])
    return out + acl_records(link, handle, RX, ms, rsp, frag)


def hrm(bpm, rr):
    return bytes([0x16, bpm]) + struct.pack("<H", rr)


def hr(capture, jsonl, days):
    t0 = 1795651200000 + 8 * 3600 * 1000  # 2026-11-26 08:00 UTC
    cap = header(H4) + discovery(H4, 0x40, t0, frag=5)
    cap += acl_records(H4, 0x40, TX, t0 + 500, bytes([0x0a, 0x13, 0]))
    cap += acl_records(H4, 0x40, RX, t0 + 500, bytes([0x0b, 87]))
    lines = [{"ts": t0 + 500, "type": "battery", "participant": "p1", "source": "btsnoop",
              "pct": 87}]
    for i in range(days * 1440):
        ms = t0 + 1000 + i * 60000
        bpm, rr = 55 + i % 50, 700 + i % 300
        cap += acl_records(H4, 0x40, RX, ms, bytes([0x1b, 0x10, 0]) + hrm(bpm, rr),
                           frag=(3 if i % 7 == 0 else 0))
        lines.append({"ts": ms, "type": "hr", "participant": "p1", "source": "btsnoop",
                      "bpm": bpm, "rr_ms": [rr * 1000 / 1024]})
        if i == 100:  # a value on a handle the discovery did not map: reported, skipped
            cap += acl_records(H4, 0x40, RX, ms + 1, bytes([0x1b, 0x77, 0, 1]))
        if i == 200:  # an L2CAP length that lies: reported, skipped
            acl = struct.pack("<HHHH", 0x40 | 2 << 12, 9, 2, 4) + bytes([0x1b, 0x10, 0, 0, 60])
            cap += record(b"\x02" + acl, RX, ms + 1)
    with open(capture, "wb") as f:
        f.write(cap)
    with open(jsonl, "w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")


def corpus(d):
    os.makedirs(d, exist_ok=True)
    t = 1795700000000
    seeds = {}
    for name, link, flag in (("h1", H1, 0x01), ("h4", H4, 0x03), ("mon", MON, 0x05)):
        body = discovery(link, 0x40, t, frag=4)
        body += acl_records(link, 0x40, TX, t, bytes([0x0a, 0x13, 0]))
        body += acl_records(link, 0x40, RX, t, bytes([0x0b, 50]))
        for i in range(3):
            body += acl_records(link, 0x40, RX, t + 1000 * i,
                                bytes([0x1b, 0x10, 0]) + hrm(60 + i, 800), frag=3 * i)
        body += acl_records(link, 0x40, RX, t + 5000, bytes([0x1b, 0x99, 0, 1]))
        body += event_record(link, 0x05, bytes([0, 0x40, 0, 0x13]), t + 6000)
        body += acl_records(link, 0x40, RX, t + 7000, bytes([0x1b, 0x10, 0, 0, 70]))
        seeds["hr-" + name] = bytes([flag]) + body
        seeds["hr-" + name + "-file"] = bytes([0]) + header(link) + body
    # InfiniTime: Find Information, then 128-bit declarations, steps and motion
    base = bytes.fromhex("d042193a3b43238efe48fc7801000300")
    pt = acl_records(H4, 0x41, RX, t, bytes([0x05, 1, 0x10, 0, 0x37, 0x2a]))
    pt += acl_records(H4, 0x41, TX, t, bytes([0x08, 0x20, 0, 0xff, 0xff, 0x03, 0x28]))
    ent = b""
    for i in range(2):
        u = bytearray(base)
        u[12] = 1 + i
        ent += struct.pack("<HBH", 0x20 + 2 * i, 0x12, 0x21 + 2 * i) + bytes(u)
    pt += acl_records(H4, 0x41, RX, t, bytes([0x09, 21]) + ent, frag=6)
    pt += acl_records(H4, 0x41, TX, t, bytes([0x0a, 0x21, 0]))
    pt += acl_records(H4, 0x41, RX, t, bytes([0x0b]) + struct.pack("<I", 100))
    pt += acl_records(H4, 0x41, RX, t + 60000, bytes([0x1b, 0x21, 0]) + struct.pack("<I", 180))
    for i in range(4):
        pt += acl_records(H4, 0x41, RX, t + 61000 + 100 * i,
                          bytes([0x1b, 0x23, 0]) + struct.pack("<hhh", 1024, -512, i))
    seeds["pinetime"] = bytes([0x03]) + pt
    # broken lengths
    bad = record(b"\x02" + struct.pack("<HHHH", 0x40 | 2 << 12, 9, 2, 4) + b"\x1b\x10\x00\x00\x3c",
                 RX, t)
    bad += record(b"\x02" + struct.pack("<HH", 0x40 | 1 << 12, 2) + b"\x01\x02", RX, t)
    bad += record(b"\x02\x40\x20\x05\x00", RX, t, orig=100)
    bad += struct.pack(">IIIIq", 0x7fffffff, 0x7fffffff, 1, 0, 0)
    seeds["lengths"] = bytes([0x03]) + discovery(H4, 0x40, t) + bad
    seeds["roundtrip"] = bytes([0x0b, 5]) + bytes(range(40))
    seeds["truncated"] = bytes([0x03]) + discovery(H4, 0x40, t)[:-3]
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "hr":
        hr(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 3)
    elif len(sys.argv) == 3 and sys.argv[1] == "corpus":
        corpus(sys.argv[2])
    else:
        sys.exit(__doc__)
