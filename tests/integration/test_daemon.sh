#!/usr/bin/env bash
# The daemon as systemd and local apps see it: sd_notify READY/STATUS/WATCHDOG/STOPPING,
# bad ingest input rejected line by line with reasons (never a crash), REQ and DEALER
# clients, engagectl against the control socket, SIGHUP reload (a broken file is refused),
# and a clean SIGTERM exit with the sockets' modes as documented.
source "$(dirname "$0")/lib.sh"
write_conf "$T/engaged.conf" "[source phone-p01]" "driver = ingest" "participant = p01" \
  "[source band-p01]" "driver = ble" "participant = p01" "address = C4:7C:8D:6A:2F:01" \
  "transport = sim:$T/no-such-simulator"
# write_conf has a [daemon] section already: merge by rewriting it
$PY - "$T/engaged.conf" <<'EOP'
import sys
p = sys.argv[1]
lines = open(p).read().splitlines()
out, seen = [], False
for l in lines:
    if l.strip() == "[daemon]":
        if seen:
            continue
        seen = True
        out += ["[daemon]", "watchdog = 1s", "status_interval = 1s"]
        continue
    if l.strip() == "[publish]":
        out += ["[publish]", "event_topics = yes"]
        continue
    if l.startswith(("watchdog", "status_interval")):
        continue
    out.append(l)
open(p, "w").write("\n".join(out) + "\n")
EOP
"$ENGAGED" check-config -c "$T/engaged.conf"
$PY "$ENGAGED_SRC/tests/integration/notify.py" "$T/notify" "$T/notify.log" &
for _ in $(seq 1 50); do [ -S "$T/notify" ] && break; sleep 0.1; done
NOTIFY_SOCKET="$T/notify" start_daemon "$T/engaged.conf" "$T/daemon.log"
for _ in $(seq 1 50); do grep -q READY=1 "$T/notify.log" 2>/dev/null && break; sleep 0.1; done
grep -q READY=1 "$T/notify.log"
[ "$(stat -c %a "$T/ingest")" = 660 ] && [ "$(stat -c %a "$T/feed")" = 660 ]
[ "$(stat -c %a "$T/engaged.db")" = 600 ]

$PY - "ipc://$T/ingest" <<'EOP'
import json, sys, zmq
ctx = zmq.Context.instance()
req = ctx.socket(zmq.REQ); req.setsockopt(zmq.LINGER, 0); req.setsockopt(zmq.RCVTIMEO, 5000)
req.connect(sys.argv[1])
good = '{"ts":1583481030385,"participant":"p01","source":"t","seq":1,"type":"screen","state":"on"}'
lines = [good,
         '{"ts":1583481030385,"participant":"p01"',                       # truncated
         '{"ts":"x","participant":"p01","type":"screen","state":"on"}',   # wrong type
         '{"ts":1e400,"participant":"p01","type":"screen","state":"on"}', # huge number
         '{"ts":1583481030385,"participant":"p 01","type":"screen","state":"on"}',
         '{"ts":1583481030385,"participant":"p01","type":"teleport"}',    # unknown type
         '{"ts":-2208988800000,"participant":"anon1900","source":"t1900","seq":2,"type":"screen","state":"off"}',  # 1900: valid
         '{"ts":-2208988800001,"participant":"p01","source":"t","seq":3,"type":"screen","state":"off"}']
req.send("\n".join(lines).encode())
ack = json.loads(req.recv())
print("ack", ack)
assert ack["accepted"] == 2 and ack["duplicate"] == 0 and ack["rejected"] == 6, ack
assert [e["index"] for e in ack["errors"]] == [1, 2, 3, 4, 5, 7], ack
assert all(e["reason"] for e in ack["errors"])
# invalid UTF-8 and a NUL byte
req.send(b'{"ts":1583481030385,"participant":"p01","type":"app","app":"\xff\xfe"}\n{"ts":1,\x00}')
ack = json.loads(req.recv()); print("ack", ack)
assert ack["rejected"] == 2 and ack["accepted"] == 0, ack
# a message over max_message (4 MiB default) is refused whole
req.send(b"x" * (5 << 20))
ack = json.loads(req.recv()); print("ack", {k: ack[k] for k in ack})
assert "error" in ack, ack
# an event stamped in 2150 (a phone with a wrong clock) is refused, not allowed to move time on
req.send(b'{"ts":5680281600000,"participant":"p01","source":"t","seq":9,"type":"screen","state":"on"}')
ack = json.loads(req.recv()); print("ack", ack)
assert ack["rejected"] == 1 and "ahead of the hub" in ack["errors"][0]["reason"], ack
# event topics: app package names never leave the hub (allow_app_names = no)
sub = ctx.socket(zmq.SUB); sub.setsockopt(zmq.LINGER, 0); sub.setsockopt(zmq.RCVTIMEO, 5000)
sub.connect(sys.argv[1].replace("ingest", "feed")); sub.setsockopt(zmq.SUBSCRIBE, b"event/p01/app")
import time; time.sleep(0.5)
req.send(b'{"ts":1583481040000,"participant":"p01","source":"t","seq":20,"type":"app","app":"org.example.mindapp"}\n'
         b'{"ts":1583481041000,"participant":"p01","source":"t","seq":21,"type":"app","app":"com.secret.dating"}')
ack = json.loads(req.recv()); assert ack["accepted"] == 2, ack
got = [sub.recv_multipart() for _ in range(2)]
print("event topics", got)
apps = [json.loads(p)["event"]["app"] for t, p in got]
assert [json.loads(p)["seq"] for t, p in got] == [1, 2], got
assert [t for t, p in got] == [b"event/p01/app"] * 2 and apps == ["intervention", "other"], got
assert not any(b"secret" in p or b"mindapp" in p for t, p in got)
# a configured source belongs to its participant: phone-p01 cannot write p02's data
req.send(b'{"ts":1583481030385,"participant":"p02","source":"phone-p01","seq":1,"type":"screen","state":"on"}')
ack = json.loads(req.recv()); print("ack", ack)
assert ack["rejected"] == 1 and "belongs to participant" in ack["errors"][0]["reason"], ack
# a source the hub reads itself (ble, usb) cannot be written through the ingest socket
req.send(b'{"ts":1583481030385,"participant":"p01","source":"band-p01","seq":1,"type":"hr","bpm":60}')
ack = json.loads(req.recv()); print("ack", ack)
assert ack["rejected"] == 1 and "read by the hub itself" in ack["errors"][0]["reason"], ack
# a DEALER client (no envelope) resending: duplicates
dealer = ctx.socket(zmq.DEALER); dealer.setsockopt(zmq.LINGER, 0); dealer.setsockopt(zmq.RCVTIMEO, 5000)
dealer.connect(sys.argv[1])
dealer.send(good.encode())
ack = json.loads(dealer.recv()); print("dealer ack", ack)
assert ack["duplicate"] == 1 and ack["accepted"] == 0, ack
EOP

CTL="$ENGAGED_BIN/engagectl -s ipc://$T/control"
$CTL status
$CTL --json status | $PY -c 'import json,sys; s=json.load(sys.stdin); assert s["pipeline"]["accepted"] == 4, s; assert s["ingest"]["rejected"] >= 8, s'
# stored positions, then the ble source that has stored nothing, with its live state
$CTL --json sources | $PY -c 'import json,sys; s=json.load(sys.stdin); assert [x["source"] for x in s["sources"]] == ["t", "t1900", "band-p01"], s; b=s["sources"][2]; assert "seq" not in b and b["state"] in ("connecting", "backoff", "error") and "scan" in b, s'
$CTL --json participants | $PY -c 'import json,sys; s=json.load(sys.stdin); assert {p["id"] for p in s["participants"]} >= {"p01","p02"}, s'
$CTL latest p01 >/dev/null
rc=0; $CTL latest 'bad id' >/dev/null 2>&1 || rc=$?
[ $rc -ne 0 ]

# SIGHUP: a broken file is refused and the daemon keeps running; a good one is applied
cp "$T/engaged.conf" "$T/good.conf"
echo "[nonsense]" >> "$T/engaged.conf"
kill -HUP "$DAEMON_PID"; sleep 0.5
kill -0 "$DAEMON_PID"
grep -q "keeping the running configuration" "$T/daemon.log"
cp "$T/good.conf" "$T/engaged.conf"
kill -HUP "$DAEMON_PID"; sleep 0.5
grep -q "reload: configuration re-read" "$T/daemon.log"
$CTL status >/dev/null

sleep 2.5 # watchdog and status ticks
stop_daemon
sleep 0.3
cat "$T/notify.log" | cut -c1-120
grep -q WATCHDOG=1 "$T/notify.log"
grep -q "STATUS=.*events" "$T/notify.log"
grep -q STOPPING=1 "$T/notify.log"
grep -q RELOADING=1 "$T/notify.log"

# a source whose only stored rows are refused relay records has a position without an event
# time: `sources` says "ts": null for it (not 0), and the table view shows null
$PY - "$T/engaged.db" <<'EOP'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO positions(source, seq, ts, updated) VALUES('phone-ref', 3, NULL, 1700000000000)")
db.commit()
EOP
start_daemon "$T/engaged.conf" "$T/daemon2.log"
$CTL --json sources | $PY -c 'import json,sys; s={x["source"]: x for x in json.load(sys.stdin)["sources"]}; r=s["phone-ref"]; assert r["seq"] == 3 and r["ts"] is None and r["updated"] == 1700000000000, r; assert isinstance(s["t"]["ts"], int) and s["t"]["ts"] > 0, s'
$CTL sources | grep phone-ref | grep -q null
stop_daemon
echo "daemon ok"
