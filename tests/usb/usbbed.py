#!/usr/bin/python3
"""A umockdev testbed for engaged's USB tests (docs/usb.md, "Tests without hardware").

umockdev-run loads devices once; these tests need devices that come and go while the daemon
runs (hotplug, a phone re-enumerating in accessory mode) and a USB device that answers
control and bulk transfers interactively. So this script builds the testbed itself with
libumockdev's API (UMockdev.Testbed, the library umockdev-run is made of), runs the daemon in
it under the same preload library, adds and removes devices with uevents, and serves the
emulated devices' usbdevfs ioctls from Python (UMockdev.IoctlBase):

  Phone       the phone before the switch: answers Android Open Accessory requests 51
              (protocol 2, or 0 with --no-aoa), 52 (records the six strings) and 53 (then
              leaves the bus and comes back as 18D1:2D01).
  Accessory   the phone in accessory mode: a relay-protocol phone (docs/relay-profile.md) on
              bulk endpoints 0x81/0x02: answers RESUME with its records, drops what ACKs cover,
              sends a status; fault injection: a stalled IN endpoint, a corrupted fragment,
              an envelope cut off by an unplug.

It must itself run under the preload library (umockdev-wrapper, or LD_PRELOAD), as umockdev's
own Python tests do: sending uevents goes through libudev, which must see the testbed.
USBBED_DEBUG=1 logs every ioctl the emulated devices receive.

  usbbed.py SCENARIO --engaged BIN --conf FILE --dir DIR [options]

Scenarios (each exits 0 on success, 1 with a reason on failure):
  ax3-hotplug   an AX3 docked while the daemon runs, undocked, docked again with more data;
                then undocked in the middle of a long download and docked again.
  aoa           a phone switched to accessory mode streams its records; faults on request.
"""
import argparse
import json
import os
import re
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import zlib

import gi

gi.require_version("UMockdev", "1.0")
from gi.repository import GLib, UMockdev  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
HUB = "/sys/devices/pci0000:00/0000:00:14.0/usb1"
DEBUG = bool(os.environ.get("USBBED_DEBUG"))


def ioc(d, nr, size):
    return (d << 30) | (size << 16) | (ord("U") << 8) | nr


SUBMITURB = ioc(2, 10, 56)
DISCARDURB = ioc(0, 11, 0)
REAPURB = ioc(1, 12, 8)
REAPURBNDELAY = ioc(1, 13, 8)
CLAIMINTERFACE = ioc(2, 15, 4)
RELEASEINTERFACE = ioc(2, 16, 4)
CLEAR_HALT = ioc(2, 21, 4)
GET_CAPABILITIES = ioc(2, 26, 4)
RESET = ioc(0, 20, 0)
EAGAIN, ENOENT, EPIPE, ENODEV, ENOTTY = 11, 2, 32, 19, 25
URB_CONTROL, URB_BULK = 2, 3


def die_with_parent():
    """The daemon goes when this script goes, even if umockdev aborts it (PR_SET_PDEATHSIG)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def log(*a):
    print("usbbed:", *a, flush=True)


class Urb:
    """A submitted URB (struct usbdevfs_urb on x86-64: type@0 endpoint@1 status@4 buffer@16
    buffer_length@24 actual_length@28)."""

    def __init__(self, data):
        self.data = data
        raw = bytes(data.retrieve())
        self.type, self.ep = raw[0], raw[1]
        self.length = struct.unpack_from("<i", raw, 24)[0]
        self.buf = data.resolve(16, self.length) if self.length > 0 else None
        self.payload = bytes(self.buf.retrieve()) if self.buf else b""
        self.result = None  # (status, bytes or None, actual)

    def finish(self):
        status, reply, actual = self.result
        if reply:
            self.buf.update(8 if self.type == URB_CONTROL else 0, reply)
        self.data.update(4, struct.pack("<i", status))
        self.data.update(28, struct.pack("<i", actual))


class UsbDevice(UMockdev.IoctlBase):
    """usbdevfs of one emulated device. on_urb decides each URB: complete it at once (return a
    result tuple), or return None after putting it in self.pending (completed later with
    complete())."""

    def __init__(self, name):
        super().__init__()
        self.name = name
        self.lock = threading.RLock()
        self.pending = []   # submitted, not complete
        self.done = []      # complete, to be reaped
        self.ioctls = []

    def do_handle_ioctl(self, client):
        req = client.get_request()
        if DEBUG:
            log("%s: ioctl 0x%x (thread %s)" % (self.name, req, threading.current_thread().name))
        with self.lock:
            try:
                return self.ioctl(client, req)
            except Exception as e:  # a bug in the emulator must show, not hang the daemon
                log("%s: ioctl 0x%x failed: %r" % (self.name, req, e))
                client.complete(-1, ENOTTY)
                return True

    def ioctl(self, client, req):
        arg = client.get_arg()
        self.ioctls.append(req)
        if req == GET_CAPABILITIES:
            arg.resolve(0, 4).update(0, struct.pack("<I", 0))
            client.complete(0, 0)
        elif req in (CLAIMINTERFACE, RELEASEINTERFACE, RESET):
            client.complete(0, 0)
        elif req == CLEAR_HALT:
            self.on_clear_halt(struct.unpack("<I", bytes(arg.resolve(0, 4).retrieve()))[0])
            client.complete(0, 0)
        elif req == SUBMITURB:
            u = Urb(arg.resolve(0, 56))
            r = self.on_urb(u)
            if r is not None:  # None: on_urb keeps it (pending) or completed it already
                u.result = r
                self.done.append(u)
            client.complete(0, 0)
        elif req in (REAPURB, REAPURBNDELAY):
            if not self.done:
                client.complete(-1, EAGAIN)
                return True
            u = self.done.pop(0)
            u.finish()
            arg.resolve(0, 8).set_ptr(0, u.data)
            client.complete(0, 0)
        elif req == DISCARDURB:
            addr = struct.unpack("<Q", bytes(arg.retrieve())[:8])[0] if arg.retrieve() else 0
            for u in self.pending:
                if u.data.client_addr == addr or addr == 0:
                    self.pending.remove(u)
                    u.result = (-ENOENT, None, 0)
                    self.done.append(u)
                    client.complete(0, 0)
                    return True
            client.complete(-1, 22)
        else:
            client.complete(-1, ENOTTY)
        return True

    def complete(self, u, status, reply=None, actual=None):
        with self.lock:
            if u in self.pending:
                self.pending.remove(u)
            u.result = (status, reply, len(reply) if actual is None and reply else actual or 0)
            self.done.append(u)

    def on_clear_halt(self, ep):
        pass

    def on_urb(self, u):
        return (-EPIPE, None, 0)


class Phone(UsbDevice):
    """A phone before the switch to accessory mode."""

    def __init__(self, bed, protocol=2):
        super().__init__("phone")
        self.bed = bed
        self.protocol = protocol
        self.strings = {}
        self.started = False

    def on_urb(self, u):
        if u.type != URB_CONTROL:
            return (-EPIPE, None, 0)
        rt, req, val, idx, ln = struct.unpack_from("<BBHHH", u.payload, 0)
        if rt == 0xC0 and req == 51:
            return (0, struct.pack("<H", self.protocol), 2)
        if rt == 0x40 and req == 52 and self.protocol:
            s = u.payload[8:8 + ln]
            if not s.endswith(b"\0"):
                log("phone: string %d is not NUL-terminated" % idx)
            self.strings[idx] = s.rstrip(b"\0").decode()
            return (0, None, ln)
        if rt == 0x40 and req == 53 and self.protocol:
            self.started = True
            GLib.timeout_add(50, self.bed.reenumerate)
            return (0, None, 0)
        return (-EPIPE, None, 0)


def crc32(b):
    return zlib.crc32(b) & 0xFFFFFFFF


class Accessory(UsbDevice):
    """The phone in accessory mode, running the relay protocol on its bulk pipes."""

    def __init__(self, bed, records, frag=4112, stall_in=(), corrupt=(), cut_at=None,
                 status=True):
        super().__init__("accessory")
        self.bed = bed
        self.records = records        # seq -> JSON line (the phone's outbox)
        self.frag = frag
        self.stall_in = set(stall_in)  # stall the Nth IN URB (counted from 1)
        self.corrupt = set(corrupt)    # send these seqs corrupted once
        self.cut_at = cut_at           # send half of this seq's envelope, then leave the bus
        self.status = status
        self.gen = None
        self.next = None
        self.start = False
        self.window = 1
        self.acked = -1
        self.out = bytearray()         # bytes waiting for IN URBs
        self.in_urbs = 0
        self.resumes = []
        self.acks = []
        self.halted = set()
        self.gone = False

    def newest(self):
        return max(self.records) if self.records else -1

    def on_clear_halt(self, ep):
        self.halted.discard(ep)

    def envelope(self, ch, value):
        return bytes([ch]) + struct.pack("<H", len(value)) + value

    def fragments(self, seq, rec):
        head = struct.pack("<BQH", self.gen, seq, len(rec))
        crc = crc32(head + rec)
        first_room = self.frag - 16
        out = []
        ctl = 0x80 | (0x20 if self.start else 0) | 1
        if len(rec) <= first_room:
            out.append(bytes([ctl | 0x40]) + head + struct.pack("<I", crc) + rec)
            return out
        out.append(bytes([ctl]) + head + struct.pack("<I", crc) + rec[:first_room])
        off, idx = first_room, 1
        while off < len(rec):
            part = rec[off:off + self.frag - 2]
            off += len(part)
            out.append(bytes([(0x40 if off >= len(rec) else 0) | 1, idx]) + part)
            idx += 1
        return out

    def fill(self):
        """Queues the records the window allows."""
        if self.gone:
            return
        while (self.gen is not None and self.next is not None and self.next in self.records
               and self.next - self.acked - 1 < self.window):
            seq = self.next
            rec = self.records[seq].encode()
            for f in self.fragments(seq, rec):
                if seq in self.corrupt:
                    self.corrupt.discard(seq)
                    f = f[:-1] + bytes([f[-1] ^ 0x55])
                self.out += self.envelope(0x02, f)
            self.start = False
            self.next += 1
            if seq == self.cut_at:
                return
        self.serve()

    def serve(self):
        """Completes waiting IN URBs with queued bytes (one envelope per transfer at most, so
        transfer boundaries get exercised)."""
        if self.gone:
            return
        for u in list(self.pending):
            if u.ep != 0x81 or not self.out or 0x81 in self.halted:
                continue
            n = 3 + struct.unpack_from("<H", self.out, 1)[0]
            if self.cut_at is not None and self.out[0] == 0x02:
                seq = struct.unpack_from("<Q", self.out, 5)[0]
                if seq == self.cut_at:
                    part = bytes(self.out[:n // 2])
                    self.out = bytearray()
                    self.cut_at = None
                    log("accessory: sending half of seq %d, then leaving the bus" % seq)
                    self.complete(u, 0, part)
                    self.gone = True  # nothing more from this connection
                    GLib.timeout_add(100, self.bed.unplug_accessory)
                    return
            chunk = bytes(self.out[:min(n, u.length)])
            del self.out[:len(chunk)]
            self.complete(u, 0, chunk)

    def on_urb(self, u):
        if u.type != URB_BULK:
            return (-EPIPE, None, 0)
        if u.ep == 0x81:
            self.in_urbs += 1
            if self.in_urbs in self.stall_in:
                log("accessory: stalling IN URB %d" % self.in_urbs)
                self.halted.add(0x81)
                return (-EPIPE, None, 0)
            self.pending.append(u)
            self.serve()
            return None
        if u.ep == 0x02:
            self.on_out(u.payload)
            return (0, None, u.length)
        return (-EPIPE, None, 0)

    def on_out(self, data):
        while data:
            ch, n = data[0], struct.unpack_from("<H", data, 1)[0]
            v, data = data[3:3 + n], data[3 + n:]
            if ch != 0x03:
                log("accessory: unexpected channel 0x%02x from the hub" % ch)
                continue
            if v[0] == 0x01:  # RESUME
                gen, flags, s, mf, win = struct.unpack_from("<BBQHH", v, 1)
                self.resumes.append((gen, flags, s, mf, win))
                log("accessory: RESUME gen %d seq %s max_frag %d window %d"
                    % (gen, s if flags & 1 else "-", mf, win))
                self.gen, self.window, self.frag = gen, win, min(self.frag, mf)
                self.out = bytearray()
                if flags & 1:
                    for k in [k for k in self.records if k <= s]:
                        del self.records[k]
                    self.acked = s
                self.next = (s + 1) if flags & 1 else (min(self.records) if self.records else 0)
                if self.records and self.next < min(self.records):
                    self.next = min(self.records)
                self.start = True
                if self.status:
                    self.out += self.envelope(0x04, struct.pack(
                        "<BBQII", 1, 1, max(self.newest(), 0), len(self.records), 0))
                self.fill()
            elif v[0] == 0x02:  # ACK
                gen, flags, s = struct.unpack_from("<BBQ", v, 1)
                self.acks.append(s)
                for k in [k for k in self.records if k <= s]:
                    del self.records[k]
                self.acked = max(self.acked, s)
                self.fill()


class Bed:
    def __init__(self, a):
        self.a = a
        self.tb = UMockdev.Testbed.new()
        self.root = self.tb.get_root_dir()
        self.loop = GLib.MainLoop()
        self.proc = None
        self.logf = open(a.log, "ab")
        self.failed = None
        self.phone = None
        self.acc = None
        self.docks = 0
        self.ax3_paths = []
        self.tb.add_from_file(os.path.join(HERE, "hub.umockdev"))

    # -- running things in the main loop from the scenario thread --
    def call(self, fn, *args):
        box, ev = {}, threading.Event()

        def run():
            try:
                box["r"] = fn(*args)
            except Exception as e:
                box["e"] = e
            ev.set()
            return False
        GLib.idle_add(run)
        ev.wait()
        if "e" in box:
            raise box["e"]
        return box.get("r")

    def start_daemon(self):
        env = dict(os.environ, UMOCKDEV_DIR=self.root,
                   LD_PRELOAD="libumockdev-preload.so.0")
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        self.proc = subprocess.Popen([self.a.engaged, "run", "-c", self.a.conf], env=env,
                                     stdout=self.logf, stderr=self.logf,
                                     preexec_fn=die_with_parent)
        self.wait(lambda: os.path.exists(os.path.join(self.a.dir, "control")), 20,
                  "the daemon did not start")

    def stop_daemon(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise SystemExit("usbbed: the daemon did not stop within 30 s")
            if rc != 0:
                raise SystemExit("usbbed: the daemon exited with %d" % rc)
        self.proc = None

    def wait(self, cond, secs, what):
        end = time.time() + secs
        while time.time() < end:
            if self.proc is not None and self.proc.poll() is not None:
                raise SystemExit("usbbed: the daemon died (%s); see the log" % what)
            if cond():
                return
            time.sleep(0.05)
        raise SystemExit("usbbed: timeout: " + what)

    def log_text(self):
        with open(self.a.log, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, secs, count=1):
        rx = re.compile(pattern)
        self.wait(lambda: len(rx.findall(self.log_text())) >= count, secs,
                  "log line /%s/ (x%d)" % (pattern, count))

    def status(self, source):
        """The last status/<source> message (the feed's last-value cache re-sends it)."""
        import zmq
        ctx = zmq.Context.instance()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect("ipc://" + os.path.join(self.a.dir, "feed"))
        sub.setsockopt_string(zmq.SUBSCRIBE, "status/%s" % source)
        try:
            if sub.poll(5000) == 0:
                raise SystemExit("usbbed: no status/%s message" % source)
            topic, body = sub.recv_multipart()
            return json.loads(body)
        finally:
            sub.close()

    def db(self, sql, *args):
        path = os.path.join(self.a.dir, "engaged.db")
        if not os.path.exists(path):
            return []
        con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    # -- devices --
    def add(self, name):
        text = open(os.path.join(HERE, name)).read()
        assert self.tb.add_from_string(text), name
        return text.split("\n", 1)[0][3:]

    def uevent(self, path, action):
        self.tb.uevent("/sys" + path, action)

    def plug(self, desc, node, handler, what):
        """A device with an ioctl handler: the handler first, then the device, then its
        "add" uevent. In that order only: adding a device node whose path has no handler
        yet gives it umockdev's default one, and a handler attached afterwards is not the one
        the daemon reaches (every ioctl then fails with ENOTTY: seen in 10 of 10 runs that
        attached 150 ms after adding, and in about 1 of 4 that attached right after)."""
        self.tb.attach_ioctl(node, handler)
        path = self.add(desc)
        self.uevent(path, "add")
        log(what)

    def dock_ax3(self, mount):
        """Docks the AX3 of ax3.umockdev. Each dock gets the next tty and disk names
        (ttyACM0, ttyACM1, ...; sda, sdb, ...), as the kernel gives when the old ones are
        still held: umockdev cannot add a device node again once it was removed (a pty node:
        "assertion failed: (!this.dev_fd.contains (devname))"; a disk: its /sys/block link
        stays), so a re-dock with the same names would abort the testbed."""
        k = self.docks
        self.docks += 1
        text = open(os.path.join(HERE, "ax3.umockdev")).read().split("\n\n", 1)[1]
        letter = "abcdefghijklmnop"[k]
        text = (text.replace("ttyACM0", "ttyACM%d" % k).replace("dev=166:0", "dev=166:%d" % k)
                .replace("MINOR=0", "MINOR=%d" % k).replace("sda", "sd" + letter)
                .replace("dev=8:0", "dev=8:%d" % (16 * k))
                .replace("dev=8:1", "dev=8:%d" % (16 * k + 1)))
        assert self.tb.add_from_string(text)
        self.ax3_paths = [l[3:] for l in text.splitlines() if l.startswith("P: ")]
        self.tb.load_script("/dev/ttyACM%d" % k, os.path.join(HERE, "ax3.script"))
        os.makedirs(os.path.join(self.root, "proc/self"), exist_ok=True)
        with open(os.path.join(self.root, "proc/self/mountinfo"), "w") as f:
            f.write("100 1 8:%d / %s ro,relatime - vfat /dev/sd%s1 ro\n"
                    % (16 * k + 1, mount, letter))
        self.uevent(self.ax3_paths[0], "add")
        log("AX3 docked (ttyACM%d, sd%s1)" % (k, letter))

    def undock_ax3(self):
        """The kernel's order: children first, each with its "remove" uevent."""
        os.unlink(os.path.join(self.root, "proc/self/mountinfo"))
        for p in reversed(self.ax3_paths):
            self.uevent(p, "remove")
            self.tb.remove_device("/sys" + p)
        log("AX3 undocked")

    def plug_phone(self, protocol=2):
        self.phone = Phone(self, protocol)
        self.plug("phone.umockdev", "/dev/bus/usb/001/003", self.phone, "phone plugged in")

    def plug_mouse(self):
        """A device no source names."""
        self.uevent(self.add("mouse.umockdev"), "add")
        log("mouse plugged in")

    def reenumerate(self):
        """After ACCESSORY_START: the phone leaves the bus and comes back as 18D1:2D01."""
        path = HUB[4:] + "/1-2"
        self.uevent(path, "remove")
        self.tb.detach_ioctl("/dev/bus/usb/001/003")
        self.tb.remove_device("/sys" + path)
        log("phone left the bus (switching to accessory mode)")
        GLib.timeout_add(200, self.plug_accessory)
        return False

    def plug_accessory(self):
        self.plug("phone-accessory.umockdev", "/dev/bus/usb/001/004", self.acc,
                  "phone back as 18d1:2d01")
        return False

    def unplug_accessory(self):
        path = HUB[4:] + "/1-2"
        self.acc.gone = True
        self.uevent(path, "remove")
        self.tb.detach_ioctl("/dev/bus/usb/001/004")
        self.tb.remove_device("/sys" + path)
        log("phone unplugged")
        return False


def check(ok, what):
    if not ok:
        raise SystemExit("usbbed: FAILED: " + what)
    log("ok: " + what)


def ax3_samples(bed, source):
    n, seqs = 0, []
    for seq, body in bed.db("SELECT seq, body FROM events WHERE source = ? ORDER BY id", source):
        n += len(json.loads(body)["g"])
        seqs.append(seq)
    return n, seqs


def gen_cwa(*args):
    out = subprocess.run([sys.executable, os.path.join(HERE, "cwa_gen.py")] + list(args),
                         check=True, capture_output=True, text=True).stdout.strip()
    return int(out or 0)


def scenario_ax3_hotplug(bed, a):
    vol = os.path.join(a.dir, "vol")
    os.makedirs(vol, exist_ok=True)
    cwa = os.path.join(vol, "CWA-DATA.CWA")
    expect = gen_cwa(cwa, "--start", "2024-03-10T01:00:00", "--blocks", "400", "--corrupt",
                     "7", "--expect")
    bed.start_daemon()
    bed.wait_log(r"usb: 1 source", 10)
    check(ax3_samples(bed, "ax3-p01")[0] == 0, "nothing before the dock")
    bed.call(bed.dock_ax3, vol)
    bed.wait_log(r"download complete", 30)
    n, seqs = ax3_samples(bed, "ax3-p01")
    check(n == expect, "first dock: %d samples stored, %d written" % (n, expect))
    check(len(set(seqs)) == len(seqs), "no seq twice")
    bed.wait_log(r"clock set", 1)
    st = bed.status("ax3-p01")
    ax = st.get("ax3", {})
    check(st["state"] == "docked" and st["connected"] and st["kind"] == "ax3"
          and st["serial"] == "CWA17_00123" and ax.get("battery_pct") == 87
          and ax.get("battery_mv") == 4012 and ax.get("clock_set") is True
          and ax.get("device_id") == 123 and ax.get("blocks_bad") == 1
          and ax.get("samples") == expect and ax.get("tty") == "/dev/ttyACM0",
          "status/ax3-p01 after the download: %s" % json.dumps(st))
    bed.call(bed.undock_ax3)
    bed.wait_log(r"usb 1-1: unplugged \(source ax3-p01\)", 10)
    time.sleep(0.3)
    st = bed.status("ax3-p01")
    check(st["state"] == "absent" and not st["connected"]
          and st["ax3"]["battery_pct"] == 87, "status/ax3-p01 after the undock: state absent, "
          "last battery kept")
    # more data recorded while undocked, across the US spring-forward (device clock unchanged)
    more = gen_cwa(cwa, "--append", "--start", "2000-01-01T00:00:00", "--gap", "3600",
                   "--blocks", "300", "--expect")
    bed.call(bed.dock_ax3, vol)
    bed.wait_log(r"download complete", 30, count=2)
    n2, seqs = ax3_samples(bed, "ax3-p01")
    check(n2 == expect + more, "second dock: %d samples stored, %d written" % (n2, expect + more))
    check(all(x < y for x, y in zip(seqs, seqs[1:])), "seq only grows")
    # the device clock ignores daylight saving time: one UTC offset (EST, +5 h) for the whole
    # recording, also for what was recorded after 02:00 local, when New York went to EDT
    offs = set()
    for seq, ts, body in bed.db("SELECT seq, ts, body FROM events WHERE source = 'ax3-p01'"):
        n = len(json.loads(body)["g"])
        offs.add(ts - (seq // 1000000 - (n - 1) * 10))
    late = bed.db("SELECT max(ts) FROM events WHERE source = 'ax3-p01'")[0][0]
    check(offs == {5 * 3600 * 1000} and late > 1710054000000,
          "one UTC offset (+5 h) for the recording across the spring-forward %r" % offs)
    bed.call(bed.undock_ax3)
    bed.wait_log(r"unplugged \(source ax3-p01\)", 10, count=2)
    # a long recording; undocked while it downloads
    big = gen_cwa(cwa, "--append", "--start", "2000-01-01T00:00:00", "--gap", "3600",
                  "--blocks", str(a.big_blocks), "--expect")
    before = n2
    bed.call(bed.dock_ax3, vol)
    bed.wait(lambda: ax3_samples(bed, "ax3-p01")[0] > before, 60, "part of the download stored")
    bed.call(bed.undock_ax3)
    bed.wait_log(r"unplugged \(source ax3-p01\)", 10, count=3)
    time.sleep(0.5)
    mid, _ = ax3_samples(bed, "ax3-p01")
    check(len(re.findall(r"download complete", bed.log_text())) == 2,
          "undocked in the middle of the download (%d of %d new samples stored)"
          % (mid - before, big))
    check(before < mid < before + big, "a part is stored")
    bed.call(bed.dock_ax3, vol)
    bed.wait_log(r"download complete", 120, count=3)
    n3, seqs = ax3_samples(bed, "ax3-p01")
    check(n3 == expect + more + big,
          "after the interrupted download and a re-dock: %d samples stored, %d written"
          % (n3, expect + more + big))
    check(all(x < y for x, y in zip(seqs, seqs[1:])), "seq only grows")
    pos = bed.db("SELECT seq FROM positions WHERE source = 'ax3-p01'")
    check(pos and pos[0][0] == seqs[-1], "the store's position is the last sample's seq")
    bed.stop_daemon()


def phone_records(n, source="phone-p01", participant="p01", bad=()):
    recs = {}
    t0 = 1709942400000  # 2024-03-09 00:00 UTC
    for s in range(n):
        if s in bad:
            recs[s] = json.dumps({"ts": t0 + s * 60000, "participant": participant,
                                  "source": source, "seq": s, "type": "screen",
                                  "state": "sideways"}, separators=(",", ":"))
            continue
        ev = {"ts": t0 + s * 60000, "participant": participant, "source": source, "seq": s}
        if s % 3 == 0:
            ev.update(type="screen", state="unlocked")
        elif s % 3 == 1:
            ev.update(type="app", app="org.example.mindapp")
        else:
            ev.update(type="battery", pct=50 + s % 50)
        recs[s] = json.dumps(ev, separators=(",", ":"))
    return recs


def phone_seqs(bed, source="phone-p01"):
    return [r[0] for r in bed.db("SELECT seq FROM events WHERE source = ? ORDER BY seq", source)]


def scenario_aoa(bed, a):
    n = a.records
    bad = {int(x) for x in a.bad.split(",") if x}
    sent = phone_records(n, bad=bad)
    bed.acc = Accessory(bed, dict(sent), frag=a.frag,
                        stall_in=[int(x) for x in a.stall_in.split(",") if x],
                        corrupt=[int(x) for x in a.corrupt.split(",") if x],
                        cut_at=a.cut_at)
    bed.start_daemon()
    bed.call(bed.plug_phone, 0 if a.no_aoa else 2)
    if a.no_aoa:
        bed.wait_log(r"does not support Android Open Accessory \(protocol 0\)", 15)
        check(not bed.phone.started, "a phone without AOA is not told to start")
        bed.call(bed.plug_mouse)
        bed.wait_log(r"usb 1-3 \(046d:c077\): no \[source\] names it, ignored", 15)
        time.sleep(0.5)
        check(bed.log_text().count("usb 1-3 (046d:c077)") == 1,
              "a device no source names: one log line, nothing else")
        bed.stop_daemon()
        return
    bed.wait_log(r"switched to accessory mode", 15)
    st = bed.phone.strings
    check(st.get(0) == "engaged" and st.get(1) == "engaged-hub" and st.get(5) == "phone-p01"
          and len(st) == 6, "identification strings %r" % st)
    bed.wait_log(r"streaming over endpoints 0x81/0x02", 15)
    good = n - len(bad)
    if a.cut_at is not None:
        bed.wait_log(r"usb 1-2: unplugged \(source phone-p01\)", 30)
        time.sleep(0.5)
        got = phone_seqs(bed)
        check(got == sorted(set(got)) and all(s < a.cut_at for s in got),
              "records before the cut stored once, nothing of the cut record (%d stored)"
              % len(got))
        # plugged in again: already in accessory mode, recognised by its serial
        bed.acc.gone = False
        bed.acc.out = bytearray()
        bed.acc.pending.clear()
        bed.acc.done.clear()
        bed.call(bed.plug_accessory)
        bed.wait_log(r"streaming over endpoints", 15, count=2)
    bed.wait(lambda: len(phone_seqs(bed)) >= good, 60, "all %d records stored" % good)
    time.sleep(0.5)
    got = phone_seqs(bed)
    want = [s for s in range(n) if s not in bad]
    check(got == want, "every valid record stored exactly once (%d)" % len(got))
    bed.wait(lambda: bed.acc.acks and bed.acc.acks[-1] == n - 1, 15, "ACK of the last record")
    check(not bed.acc.records, "the phone's outbox is empty (everything acknowledged)")
    if a.stall_in:
        check(re.search(r"endpoint 0x81 stalled; clearing it", bed.log_text()),
              "the stall was seen and cleared")
    if a.corrupt:
        check(re.search(r"relay stream: .*CRC", bed.log_text()),
              "the corrupted fragment was refused")
    if a.corrupt or a.stall_in or a.cut_at is not None:
        check(len(bed.acc.resumes) >= 2, "the phone was asked to resume (%d RESUMEs)"
              % len(bed.acc.resumes))
    for s in bad:
        check(re.search(r"record %d refused" % s, bed.log_text()), "record %d refused" % s)
    st = bed.status("phone-p01")
    ao = st.get("aoa", {})
    check(st["state"] == "streaming" and st["kind"] == "aoa" and st["connected"]
          and st["vid_pid"] == "18d1:2d01" and st["serial"] == "PHONE0001"
          and st["position"] == n - 1 and ao.get("protocol") == 2 and ao.get("acks", 0) > 0
          and ao.get("refused") == len(bad) and ao.get("phone_pending") is not None,
          "status/phone-p01: %s" % json.dumps(st))
    if a.stall_in:
        check(ao.get("stalls", 0) >= 1, "the stall is counted in the status")
    if a.cut_at is not None:
        check(ao.get("truncated", 0) >= 1, "the cut envelope is counted in the status")
    bed.stop_daemon()
    # a restart: the position is kept; nothing is sent twice
    bed.start_daemon()
    bed.wait_log(r"usb: 1 source", 10, count=2)
    bed.stop_daemon()
    check(phone_seqs(bed) == want, "unchanged after a restart")
    # the refused records are kept in the store as the phone sent them, and processed: the
    # store's position is the last seq even when that one was refused
    refused = bed.db("SELECT seq, participant, reason, record FROM refused WHERE source = ?"
                     " ORDER BY seq", "phone-p01")
    check([r[0] for r in refused] == sorted(bad)
          and all(r[1] == "p01" and "state" in r[2] and r[3] == sent[r[0]].encode()
                  for r in refused), "the refused table: %r" % refused)
    pos = bed.db("SELECT seq FROM positions WHERE source = ?", "phone-p01")
    check(pos == [(n - 1,)], "the store's position %r is seq %d" % (pos, n - 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["ax3-hotplug", "aoa"])
    ap.add_argument("--engaged", required=True)
    ap.add_argument("--conf", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--big-blocks", type=int, default=20000)
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument("--frag", type=int, default=4112)
    ap.add_argument("--stall-in", default="")
    ap.add_argument("--corrupt", default="")
    ap.add_argument("--bad", default="")
    ap.add_argument("--cut-at", type=int)
    ap.add_argument("--no-aoa", action="store_true")
    a = ap.parse_args()
    if not os.environ.get("LD_PRELOAD", "").count("libumockdev-preload"):
        sys.exit("usbbed: run me under umockdev-wrapper (or LD_PRELOAD=libumockdev-preload.so.0)")
    bed = Bed(a)
    result = {}

    def scenario():
        try:
            {"ax3-hotplug": scenario_ax3_hotplug, "aoa": scenario_aoa}[a.scenario](bed, a)
            result["rc"] = 0
        except SystemExit as e:
            log(str(e))
            result["rc"] = 1
        except Exception as e:
            log("error: %r" % e)
            result["rc"] = 1
        finally:
            GLib.idle_add(bed.loop.quit)

    th = threading.Thread(target=scenario, daemon=True)
    th.start()
    bed.loop.run()
    th.join(5)
    if bed.proc and bed.proc.poll() is None:
        bed.proc.kill()
        bed.proc.wait()
    del bed.tb  # removes the testbed directory
    sys.exit(result.get("rc", 1))


if __name__ == "__main__":
    main()
