#!/usr/bin/python3
"""Independent ZeroMQ peers for the integration tests (pyzmq, not engaged's code).

  zmqtool.py push ENDPOINT FILE [--batch N] [--timeout MS] [--delay MS] [--log FILE]
      streams FILE's lines to the ingest socket with a REQ socket, N lines per message, and
      resends a message until it is acknowledged (timeouts and daemon restarts included).
      Prints the totals of the acknowledgements.
  zmqtool.py flood ENDPOINT FILE [--clients K] [--seconds S]
      sends every line of FILE as its own message from K DEALER sockets at once, without
      waiting for acknowledgements (so the daemon's ingest queue fills up), then waits until
      every message has had its one reply or S seconds passed. Prints the reply totals.
  zmqtool.py sub ENDPOINT PREFIX OUT [--min N] [--seconds S]
      subscribes to PREFIX and writes every [topic, payload] received as one JSON line to OUT,
      until at least N messages arrived (then 1 s more) or S seconds passed.
  zmqtool.py features DB
      prints the stored feature records (bodies) in storage order.
"""
import json
import sqlite3
import sys
import time

import zmq


def push(endpoint, path, batch=50, timeout=3000, log=None, delay=0.0):
    ctx = zmq.Context.instance()
    lines = [l for l in open(path, encoding="utf-8") if l.strip()]
    totals = {"accepted": 0, "duplicate": 0, "rejected": 0, "resends": 0}
    sock = None
    i = 0
    deadline = time.time() + 600
    while i < len(lines):
        if time.time() > deadline:
            raise SystemExit("push: gave up after 600 s")
        if sock is None:
            sock = ctx.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
        chunk = "".join(lines[i:i + batch]).encode()
        sock.send(chunk)
        if sock.poll(timeout) == 0:
            # no answer: the daemon may be down; a REQ socket cannot resend, so start over
            sock.close()
            sock = None
            totals["resends"] += 1
            continue
        ack = json.loads(sock.recv())
        if "error" in ack:
            totals["resends"] += 1
            time.sleep(0.1)
            continue
        for k in ("accepted", "duplicate", "rejected"):
            totals[k] += ack[k]
        if log:
            log.write(json.dumps(ack) + "\n")
        i += batch
        if delay:
            time.sleep(delay)
    if sock is not None:
        sock.close()
    print(json.dumps(totals))


def flood(endpoint, path, clients=4, seconds=60):
    ctx = zmq.Context.instance()
    lines = [l for l in open(path, encoding="utf-8") if l.strip()]
    socks = []
    for _ in range(clients):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        s.connect(endpoint)
        socks.append(s)
    for i, line in enumerate(lines):
        socks[i % clients].send_multipart([b"", line.encode()])
    totals = {"messages": len(lines), "replies": 0, "accepted": 0, "duplicate": 0,
              "rejected": 0, "errors": 0}
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    end = time.time() + seconds
    while totals["replies"] < len(lines) and time.time() < end:
        for s, _ in poller.poll(200):
            while True:
                try:
                    frames = s.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                ack = json.loads(frames[-1])
                totals["replies"] += 1
                if "error" in ack:
                    totals["errors"] += 1
                    continue
                for k in ("accepted", "duplicate", "rejected"):
                    totals[k] += ack[k]
    for s in socks:
        s.close()
    print(json.dumps(totals))


def sub(endpoint, prefix, out, minimum=1, seconds=20):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    s.setsockopt(zmq.SUBSCRIBE, prefix.encode())
    got = 0
    end = time.time() + seconds
    with open(out, "w") as f:
        while time.time() < end:
            if s.poll(200) == 0:
                continue
            topic, payload = s.recv_multipart()
            f.write(json.dumps([topic.decode(), json.loads(payload)]) + "\n")
            f.flush()
            got += 1
            if got == minimum:
                end = min(end, time.time() + 1.0)
    s.close()
    print(got)


def features(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    for (body,) in con.execute("SELECT body FROM features ORDER BY id"):
        print(body)


def main():
    a = sys.argv[1:]
    opts = {}
    pos = []
    while a:
        x = a.pop(0)
        if x.startswith("--"):
            opts[x[2:]] = a.pop(0)
        else:
            pos.append(x)
    if pos[0] == "push":
        log = open(opts["log"], "a") if "log" in opts else None
        push(pos[1], pos[2], int(opts.get("batch", 50)), int(opts.get("timeout", 3000)), log,
             float(opts.get("delay", 0)) / 1000.0)
    elif pos[0] == "flood":
        flood(pos[1], pos[2], int(opts.get("clients", 4)), float(opts.get("seconds", 60)))
    elif pos[0] == "sub":
        sub(pos[1], pos[2], pos[3], int(opts.get("min", 1)), float(opts.get("seconds", 20)))
    elif pos[0] == "features":
        features(pos[1])
    else:
        raise SystemExit(__doc__)


main()
