#!/usr/bin/env python3
"""A fake kernel management socket for the daemon's bonding-key keeper
(`[daemon] ble_mgmt = sim:/PATH`, docs/ble.md "Bonding keys").

Listens on a Unix SEQPACKET socket; each packet is one mgmt packet (BlueZ doc/mgmt-api.txt):
opcode or event code, controller index, parameter length (all little-endian), parameters.
Every command gets a Command Complete with status 0; Read Controller Index List answers with
the --controller indexes. Each command received is logged to --log as a JSON line:
{"session": N, "op": OPCODE, "index": INDEX, "params": HEX}, N counting connections from 1.

Driven by files in --ctl (the test writes them; each is removed once acted on):
  send   hex packets, one per line, sent on the current connection (events the kernel makes)
  drop   the current connection is closed (as when the Bluetooth module goes away)
  down   while it exists, the connection is closed and the socket removed (connects fail);
         once it is removed the socket is offered again (not removed by this program)
"""
import argparse
import json
import os
import select

import seqpacket_server


def complete(op, index, params=b""):
    body = bytes([op & 0xFF, op >> 8, 0]) + params
    return bytes([0x01, 0x00, index & 0xFF, index >> 8, len(body) & 0xFF, len(body) >> 8]) + body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--controller", type=int, action="append", default=[])
    a = ap.parse_args()
    log = open(a.log, "a", buffering=1)
    sessions = [0]

    def one(conn):
        sessions[0] += 1
        serve(conn, a, log, sessions[0])

    seqpacket_server.serve_forever(a.listen, os.path.join(a.ctl, "down"), one)


def serve(conn, a, log, session):
    send = os.path.join(a.ctl, "send")
    drop = os.path.join(a.ctl, "drop")
    down = os.path.join(a.ctl, "down")
    while True:
        if os.path.exists(drop) or os.path.exists(down):
            if os.path.exists(drop):
                os.unlink(drop)
            return
        if os.path.exists(send):
            with open(send) as f:
                lines = [l.strip() for l in f if l.strip()]
            os.unlink(send)
            for l in lines:
                conn.send(bytes.fromhex(l.replace(" ", "")))
        if not select.select([conn], [], [], 0.05)[0]:
            continue
        pkt = conn.recv(70000)
        if not pkt:
            return
        if len(pkt) < 6:
            continue
        op = pkt[0] | pkt[1] << 8
        index = pkt[2] | pkt[3] << 8
        log.write(json.dumps({"session": session, "op": op, "index": index,
                              "params": pkt[6:].hex()}) + "\n")
        ret = b""
        if op == 0x0003:
            ret = bytes([len(a.controller) & 0xFF, len(a.controller) >> 8])
            for c in a.controller:
                ret += bytes([c & 0xFF, c >> 8])
        conn.send(complete(op, index, ret))


if __name__ == "__main__":
    main()
