#!/usr/bin/python3
"""Writes Axivity AX3 .cwa files for the USB tests (layout: ../shared/reference/ble.md §8.2).

  cwa_gen.py FILE --start YYYY-MM-DDThh:mm:ss [--blocks N] [--rate-code 0x4A]
             [--session N] [--device N] [--append] [--gap SECONDS]
             [--corrupt K,K,...] [--garbage K,...] [--other K,...] [--erased N]
             [--expect]

Data blocks are packed 3-axis (0x30, 120 samples), samples on the exact grid of the rate (the
block timestamp is the whole second at sample index timestampOffset), values a deterministic
function of the sample's time. --append adds blocks to an existing file, continuing its
sequence numbers and time (after --gap seconds). --corrupt flips a byte of block K (bad
checksum), --garbage overwrites block K with bytes that are no CWA block, --other makes it a
block of another type ("XY"), --erased appends N blocks of 0xFF (unwritten flash). K counts
the blocks written by this call from 0. --expect prints the number of valid samples written.
"""
import argparse
import datetime as dt
import math
import struct
import sys


def pack_time(t):
    return ((t.year - 2000) << 26 | t.month << 22 | t.day << 17 | t.hour << 12 | t.minute << 6
            | t.second)


def checksum_fix(block):
    s = sum(struct.unpack("<255H", bytes(block[:510]))) & 0xFFFF
    block[510:512] = struct.pack("<H", (-s) & 0xFFFF)


def header(device, session, rate_code):
    h = bytearray(1024)
    struct.pack_into("<2sHBHIH", h, 0, b"MD", 1020, 0x17, device & 0xFFFF, session, 0)
    struct.pack_into("<II", h, 13, 0, 0xFFFFFFFF)
    h[35] = 0
    h[36] = rate_code
    h[41] = 47
    struct.pack_into("<h", h, 42, -1)
    ann = b"_sc=engaged-test"
    h[64:64 + len(ann)] = ann
    for i in range(64 + len(ann), 512):
        h[i] = 0x20
    for i in range(512, 1024):
        h[i] = 0xFF
    return h


def sample(t):
    """g of the three axes at device time t (seconds): a slow walk-like signal within ±2 g."""
    x = 0.9 * math.sin(2 * math.pi * 1.7 * t)
    y = -0.4 + 0.5 * math.sin(2 * math.pi * 0.31 * t + 1)
    z = 0.8 * math.cos(2 * math.pi * 0.9 * t)
    return x, y, z


def data_block(session, seq, t0_num, t0_den, hz, rate_code, device):
    """Block of 120 samples starting at device time t0 = t0_num / t0_den seconds."""
    b = bytearray(512)
    n = 120
    # first whole second at or after the first sample, and its sample index
    first = t0_num / t0_den
    whole = math.ceil(first - 1e-9)
    offset = round((whole - first) * hz)
    when = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=whole)
    struct.pack_into("<2sHHIII", b, 0, b"AX", 508, device & 0x7FFF, session, seq, pack_time(when))
    struct.pack_into("<HHBBBBhH", b, 18, 0, int((25 + 50) * 256 / 75), 0, 200, rate_code, 0x30,
                     offset, n)
    for i in range(n):
        x, y, z = sample(first + i / hz)
        v = [max(-512, min(511, round(a * 256))) & 0x3FF for a in (x, y, z)]
        struct.pack_into("<I", b, 30 + 4 * i, v[0] | v[1] << 10 | v[2] << 20)
    checksum_fix(b)
    return b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--start", required=True)
    ap.add_argument("--blocks", type=int, default=100)
    ap.add_argument("--rate-code", type=lambda s: int(s, 0), default=0x4A)
    ap.add_argument("--session", type=int, default=42)
    ap.add_argument("--device", type=int, default=123)
    ap.add_argument("--append", action="store_true")
    ap.add_argument("--gap", type=float, default=0.0)
    ap.add_argument("--corrupt", default="")
    ap.add_argument("--garbage", default="")
    ap.add_argument("--other", default="")
    ap.add_argument("--erased", type=int, default=0)
    ap.add_argument("--expect", action="store_true")
    a = ap.parse_args()
    hz = 3200 / (1 << (15 - (a.rate_code & 15)))
    per = 120 / hz
    ks = lambda s: {int(k) for k in s.split(",") if k}
    corrupt, garbage, other = ks(a.corrupt), ks(a.garbage), ks(a.other)
    start = dt.datetime.fromisoformat(a.start)
    t0 = (start - dt.datetime(1970, 1, 1)).total_seconds()
    seq0 = 0
    if a.append:
        with open(a.file, "rb") as f:
            data = f.read()
        nblk = (len(data) - 1024) // 512
        last = None
        for k in range(nblk - 1, -1, -1):
            blk = data[1024 + 512 * k: 1024 + 512 * (k + 1)]
            if blk[:2] == b"AX":
                last = blk
                break
        if last is None:
            sys.exit("cwa_gen: no data block to continue in " + a.file)
        seq0 = struct.unpack_from("<I", last, 10)[0] + 1
        tw = struct.unpack_from("<I", last, 14)[0]
        off = struct.unpack_from("<h", last, 26)[0]
        when = dt.datetime(2000 + (tw >> 26), tw >> 22 & 15, tw >> 17 & 31, tw >> 12 & 31,
                           tw >> 6 & 63, tw & 63)
        t_last = (when - dt.datetime(1970, 1, 1)).total_seconds() - off / hz
        t0 = t_last + per + a.gap
        f = open(a.file, "ab")
    else:
        f = open(a.file, "wb")
        f.write(header(a.device, a.session, a.rate_code))
    valid = 0
    # times as exact fractions of hz: sample k of this call at t0 + k / hz
    t0_ticks = round(t0 * hz)
    for k in range(a.blocks):
        b = data_block(a.session, seq0 + k, t0_ticks + 120 * k, hz, hz, a.rate_code, a.device)
        if k in corrupt:
            b[100] ^= 0x5A
        elif k in garbage:
            b = bytearray((i * 37 + 11) & 0xFF for i in range(512))
        elif k in other:
            b[0:2] = b"XY"
        else:
            valid += 120
        f.write(b)
    f.write(b"\xff" * 512 * a.erased)
    f.close()
    if a.expect:
        print(valid)


if __name__ == "__main__":
    main()
