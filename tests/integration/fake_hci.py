#!/usr/bin/env python3
"""A fake LE controller for the daemon's scanner (`[source] hci = sim:/PATH`, docs/ble-scan.md).

Listens on a Unix SEQPACKET socket; each packet is one H4 packet, as on a raw HCI socket. Every
command gets a Command Complete (status 0, or --refuse-params STATUS for LE Set Scan
Parameters). While scanning is enabled and the file --go exists, it sends a legacy advertising
report (ADV_IND, random address, flags + Heart Rate UUID) for each --address every 200 ms, and
one for an address nobody configured. Every command received is logged as hex to --log, with
the wall time of the first report sent written to --first-report (ms). An --address may be a
resolvable private address (the test computes them; tests/unit/test_ble_rpa.c pins them).

While the file --down exists the controller is gone: the connection is closed and the socket
removed (connects fail with ENOENT, as when an adapter is unplugged); once it is removed the
socket is offered again.
"""
import argparse
import os
import select
import time

import seqpacket_server


def report(addr_text, addr_type, rssi):
    addr = bytes(reversed(bytes.fromhex(addr_text.replace(":", ""))))
    ad = bytes.fromhex("020106" "03020d18")
    rep = bytes([0x00, addr_type]) + addr + bytes([len(ad)]) + ad + bytes([rssi & 0xFF])
    params = bytes([0x02, 1]) + rep
    return bytes([0x04, 0x3E, len(params)]) + params


def complete(opcode, status):
    return bytes([0x04, 0x0E, 4, 1, opcode & 0xFF, opcode >> 8, status])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--address", action="append", default=[])
    ap.add_argument("--go", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--first-report", required=True)
    ap.add_argument("--refuse-params", type=lambda s: int(s, 0), default=0)
    ap.add_argument("--down", default="/nonexistent")
    a = ap.parse_args()
    log = open(a.log, "a", buffering=1)
    seqpacket_server.serve_forever(a.listen, a.down, lambda conn: serve(conn, a, log))


def serve(conn, a, log):
    scanning = False
    next_adv = 0.0
    while not os.path.exists(a.down):
        r, _, _ = select.select([conn], [], [], 0.05)
        if r:
            pkt = conn.recv(300)
            if not pkt:
                return
            log.write(pkt.hex() + "\n")
            if pkt[0] != 0x01 or len(pkt) < 4:
                continue
            op = pkt[1] | pkt[2] << 8
            status = a.refuse_params if op == 0x200B else 0
            if op == 0x200C and len(pkt) >= 5:
                scanning = pkt[4] == 1
            conn.send(complete(op, status))
        now = time.time()
        if scanning and os.path.exists(a.go) and now >= next_adv:
            next_adv = now + 0.2
            if not os.path.exists(a.first_report):  # written before the daemon can see it
                with open(a.first_report, "w") as f:
                    f.write("%d\n" % int(now * 1000))
            conn.send(report("11:22:33:44:55:66", 0, -50))  # nobody's
            for addr in a.address:
                conn.send(report(addr, 1, -60))


if __name__ == "__main__":
    main()
