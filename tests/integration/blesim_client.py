#!/usr/bin/python3
"""A raw ATT client for tests/integration/test_blesim.sh, independent of engaged's C code.
usage: blesim_client.py SOCKET session MANUFACTURER HR_FLAGS RR_COUNT | SOCKET drop"""
import socket, struct, sys

path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(path)
s.settimeout(5)

def req(pdu):
    s.send(pdu)
    while True:
        r = s.recv(1024)
        if r and r[0] in (0x1b,):          # notifications may interleave
            continue
        return r

def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)

if mode == "drop":
    r = req(b"\x02" + struct.pack("<H", 185))
    if r != b"\x03\x05\x02":
        fail("MTU response %r" % r)
    s.send(bytes.fromhex("100100ffff0028"))
    try:
        r = s.recv(1024)
    except socket.timeout:
        fail("no hang-up")
    if r != b"":
        fail("expected end of stream, got %r" % r)
    print("dropped as asked")
    sys.exit(0)

manufacturer, hr_flags, rr = sys.argv[3].encode(), int(sys.argv[4], 0), int(sys.argv[5])
r = req(b"\x02" + struct.pack("<H", 517))
if r != b"\x03" + struct.pack("<H", 517):
    fail("MTU response %r" % r)

services, start = [], 1
while True:
    r = req(b"\x10" + struct.pack("<HH", start, 0xFFFF) + b"\x00\x28")
    if r[0] == 0x01:
        if r[4] != 0x0A:
            fail("primary discovery error %r" % r)
        break
    n = r[1]
    for i in range(2, len(r), n):
        a, b = struct.unpack_from("<HH", r, i)
        services.append((a, b, r[i + 4:i + n]))
    start = services[-1][1] + 1
    if start > 0xFFFF:
        break
uuids = [u for _, _, u in services]
for want in (b"\x00\x18", b"\x01\x18", b"\x0d\x18", b"\x0f\x18", b"\x05\x18", b"\x0a\x18"):
    if want not in uuids:
        fail("service %s missing: %r" % (want.hex(), uuids))
if not any(len(u) == 16 for u in uuids):
    fail("no 128-bit (motion) service")

def chars(first, last):
    out, start = [], first
    while start <= last:
        r = req(b"\x08" + struct.pack("<HH", start, last) + b"\x03\x28")
        if r[0] == 0x01:
            break
        n = r[1]
        for i in range(2, len(r), n):
            decl, props, value = struct.unpack_from("<HBH", r, i)
            out.append((decl, props, value, r[i + 5:i + n]))
        start = out[-1][0] + 1
    return out

hr = [x for x in services if x[2] == b"\x0d\x18"][0]
hrc = chars(hr[0], hr[1])
hrm = [c for c in hrc if c[3] == b"\x37\x2a"][0]
if hrm[1] != 0x10:
    fail("HRM properties %#x" % hrm[1])
r = req(b"\x04" + struct.pack("<HH", hrm[2] + 1, hrm[2] + 1))
if r != b"\x05\x01" + struct.pack("<H", hrm[2] + 1) + b"\x02\x29":
    fail("CCCD not found: %r" % r)
if req(b"\x12" + struct.pack("<HH", hrm[2] + 1, 1)) != b"\x13":
    fail("CCCD write")
while True:
    r = s.recv(1024)
    if r[0] == 0x1b and struct.unpack_from("<H", r, 1)[0] == hrm[2]:
        break
v = r[3:]
if v[0] != hr_flags:
    fail("HRM flags %#x" % v[0])
p = 3 if hr_flags & 1 else 2
bpm = struct.unpack_from("<H", v, 1)[0] if hr_flags & 1 else v[1]
if hr_flags & 8:
    p += 2
rrs = [struct.unpack_from("<H", v, p + 2 * i)[0] for i in range((len(v) - p) // 2)]
if not 60 <= bpm < 100 or len(rrs) != rr or rrs[0] != 61440 // bpm:
    fail("HRM value %s" % v.hex())
if req(b"\x12" + struct.pack("<HH", hrm[2] + 1, 0)) != b"\x13":
    fail("CCCD off")

r = req(b"\x08\x01\x00\xff\xff\x29\x2a")
if r[0] != 0x09 or r[4:] != manufacturer:
    fail("manufacturer %r" % r)
r = req(b"\x0a\x00\x00")
if r != b"\x01\x0a\x00\x00\x01":
    fail("read of handle 0: %r" % r)
print("session ok: %d services, heart rate %d bpm, RR %s" % (len(services), bpm, rrs))
