#!/usr/bin/env bash
# Bad input through the live path: 1000 messages of random bytes, mutated event lines and
# multi-frame oddities from REQ and DEALER clients, then garbage on the control socket. Every
# message is answered, the daemon never crashes (ASan build included), shuts down cleanly, and
# what it stored replays to exactly the records of its valid lines.
source "$(dirname "$0")/lib.sh"
write_conf "$T/engaged.conf"
start_daemon "$T/engaged.conf" "$T/daemon.log"
$PY - "$T" "$ENGAGED_SRC/demo/demo.jsonl" <<'EOP'
import json, random, sys, zmq
d, demo = sys.argv[1], sys.argv[2]
ctx = zmq.Context.instance()
r = random.Random(20261126)
good = open(demo).read().splitlines()
answered = 0
for i in range(1000):
    kind = r.random()
    if kind < 0.3:
        msg = bytes(r.randrange(256) for _ in range(r.randrange(1, 2000)))
    elif kind < 0.7:
        lines = [list(l) for l in r.sample(good, 5)]
        for l in lines:
            for _ in range(r.randrange(0, 4)):
                l[r.randrange(len(l))] = chr(r.randrange(1, 256))
        msg = "\n".join("".join(l) for l in lines).encode("utf-8", "replace")
    else:
        msg = "\n".join(r.sample(good, 3)).encode()
    s = ctx.socket(zmq.DEALER if r.random() < 0.5 else zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 5000)
    s.connect("ipc://%s/ingest" % d)
    if s.socket_type == zmq.DEALER and r.random() < 0.3:
        s.send_multipart([msg, b"a second frame"])
    else:
        s.send(msg)
    ack = json.loads(s.recv())  # raises on a missing answer
    assert "error" in ack or {"accepted", "duplicate", "rejected", "errors"} <= set(ack), ack
    answered += 1
    s.close()
c = ctx.socket(zmq.REQ)
c.setsockopt(zmq.RCVTIMEO, 5000)
c.connect("ipc://%s/control" % d)
for garbage in [b"", b"{", b"\xff\xfe", b'{"cmd":5}', b'{"cmd":"latest","participant":"x y"}',
                b'{"cmd":"status"}']:
    c.send(garbage)
    json.loads(c.recv())
print("answered", answered, "messages")
EOP
kill -0 "$DAEMON_PID"
stop_daemon
no_sanitizer_report "$T/daemon.log"
# what was stored replays like the live run: its records are a prefix of the store's replay
"$ENGAGED" replay -c "$T/engaged.conf" --out "$T/replay.jsonl" "$T/engaged.db"
$PY "$TOOL" features "$T/engaged.db" > "$T/stored.jsonl"
n=$(wc -l < "$T/stored.jsonl")
head -n "$n" "$T/replay.jsonl" | cmp - "$T/stored.jsonl"
echo "garbage ok: daemon alive, clean exit, $n stored records reproduced by replay"
