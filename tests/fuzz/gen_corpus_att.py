#!/usr/bin/python3
"""Writes the seed corpus of tests/fuzz/fuzz_att.c into tests/fuzz/corpus_att/ (step format in
the harness's header comment): the reference's conformance exchanges, a cached reconnect,
requests to the simulator, a cache blob, a timeout, security raises (a retried CCCD write, a
failing hook, the simulator's control packet) and some garbage."""
import os, struct, sys

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_att")
os.makedirs(out, exist_ok=True)

def h(s):
    return bytes.fromhex(s.replace(" ", ""))

def raw(s):   # step 0: the peer sends a PDU
    b = h(s); return bytes([0, len(b)]) + b

def rsp(s):   # step 1: response to the last request (opcode added by the harness)
    b = h(s); return bytes([1, len(b)]) + b

def err(code):
    return bytes([2, code])

def wait(sec):
    return bytes([3, sec])

def api(op, handle):
    return bytes([4, op]) + struct.pack("<H", handle)

def sim(s):
    b = h(s); return bytes([6, len(b)]) + b

def fnv1a(b):
    x = 2166136261
    for c in b:
        x = ((x ^ c) * 16777619) & 0xffffffff
    return x

def blob():
    b = b"EGD\x01" + b"\x00" + struct.pack("<4H", 2, 2, 2, 0)
    b += struct.pack("<HHB", 1, 4, 1) + h("0118") + struct.pack("<HHB", 5, 8, 1) + h("0d18")
    b += struct.pack("<HHBB", 2, 3, 0x02, 0) + h("002a")
    b += struct.pack("<HHBB", 6, 7, 0x10, 0) + h("372a")
    b += struct.pack("<HB", 4, 0) + h("0129") + struct.pack("<HB", 8, 0) + h("0229")
    b += struct.pack("<I", fnv1a(b))
    return bytes([7, len(b) >> 8, len(b) & 0xff]) + b

services_ab = (rsp("06 01 00 04 00 01 18") + rsp("06 05 00 08 00 0d 18") + err(0x0a)
    + err(0x0a) + err(0x0a)
    + rsp("07 02 00 02 03 00 00 2a") + rsp("07 06 00 0a 07 00 29 2a") + err(0x0a)
    + rsp("01 04 00 01 29") + rsp("01 08 00 01 29"))
discovery_ab = rsp("00 02") + err(0x0a) + services_ab

seeds = {
    "ab_discovery": bytes([0]) + discovery_ab + api(0, 3) + rsp("01 02 03"),
    "c_notify": bytes([1]) + err(0x0a) + rsp("06 01 00 04 00 0d 18") + err(0x0a) + err(0x0a)
        + err(0x0a) + rsp("07 02 00 10 03 00 37 2a") + err(0x0a) + rsp("01 04 00 02 29")
        + api(2, 3) + rsp("") + raw("1b 03 00 01 02 03") + raw("1b 03 00 16 48 40 03"),
    "d_indicate": bytes([1]) + err(0x0a) + err(0x0a) + err(0x0a) + api(4 + 7 * 2, 9)
        + rsp("") + raw("1d 03 00 01 02 03") + raw("1d 08 00"),
    "e_mixed": bytes([1]) + err(0x0a) + rsp("06 01 00 0f 00 00 18")
        + rsp("14 90 00 96 00 ef cd ab 89 67 45 23 01 00 00 00 00 85 60 00 00") + err(0x0a)
        + err(0x0a) + err(0x0a)
        + rsp("15 92 00 12 93 00 d0 42 19 3a 3b 43 23 8e fe 48 fc 78 02 00 03 00") + err(0x0a)
        + rsp("01 94 00 02 29 95 00 01 29") + err(0x0a),
    # after the discovery above, a Service Changed of [5, 0xffff]: the new client keeps the
    # GATT service (1-4), finds Heart Rate (5-8) and a Battery service (9-12) there again
    "changed_range": bytes([0]) + discovery_ab + bytes([4, 0xF0]) + struct.pack("<HH", 5, 0xFFFF)
        + rsp("06 05 00 08 00 0d 18 09 00 0c 00 0f 18") + err(0x0a) + err(0x0a) + err(0x0a)
        + rsp("07 06 00 10 07 00 37 2a 0a 00 12 0b 00 19 2a") + err(0x0a)
        + rsp("01 08 00 02 29") + rsp("01 0c 00 02 29"),
    "long_read": bytes([1]) + err(0x0a) + err(0x0a) + err(0x0a) + api(0, 3)
        + rsp("00" * 22) + rsp("11" * 22) + rsp("22 33") + api(0, 4) + rsp("00" * 22)
        + err(0x0b),
    "cache_hash": bytes([2]) + rsp("00 02") + err(0x0a) + rsp("12 0c 00" + " 5a" * 16) + blob()
        + services_ab,
    "cache_trust": bytes([7]) + blob() + err(0x0a) + err(0x0a) + api(2, 7) + rsp(""),
    "timeout": bytes([1]) + err(0x0a) + wait(29) + wait(1) + api(0, 3),
    "hangup": bytes([0]) + rsp("17 00") + bytes([5]) + api(0, 1),
    "peer_requests": bytes([1]) + raw("0a 03 00") + raw("02 17 00") + raw("3f") + raw("52 03 00 01")
        + raw("23 03 00 02 00 aa bb 07 00 00 00") + raw("01 0a 00 00 0a") + bytes([0, 230]),
    "sim_requests": bytes([1]) + sim("02 05 02") + sim("10 01 00 ff ff 00 28")
        + sim("08 01 00 ff ff 03 28") + sim("04 01 00 ff ff") + sim("0a 03 00")
        + sim("12 0f 00 01 00") + wait(2) + sim("0c 02 00 02 00") + sim("06 01 00 ff ff 00 28 0d 18")
        + sim("12 0f 00 05 00") + sim("3f") + sim("1e"),
    "security_retry": bytes([9]) + err(0x0a) + rsp("06 01 00 04 00 0d 18") + err(0x0a)
        + err(0x0a) + err(0x0a) + rsp("07 02 00 10 03 00 37 2a") + err(0x0a)
        + rsp("01 04 00 02 29") + api(2, 3) + err(0x05) + rsp("") + raw("1b 03 00 16 48")
        + api(0, 3) + err(0x05) + err(0x05) + api(0, 3) + err(0x0f),
    "security_fails": bytes([1 | 8 | 16]) + err(0x0a) + err(0x0a) + err(0x0a) + api(0, 3)
        + err(0x0f) + api(0, 3) + err(0x0c),
    "sim_security": bytes([1]) + sim("12 0f 00 01 00") + bytes([6, 255, 2])
        + sim("12 0f 00 01 00") + wait(2) + bytes([6, 255, 1]) + bytes([6, 255, 9]),
    "garbage": bytes(range(256)),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("%d seeds in %s" % (len(seeds), out))
