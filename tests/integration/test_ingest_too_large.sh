#!/usr/bin/env bash
# A message within [ingest] max_message whose events encode to more than one store request
# holds (64 MiB): 830 acceleration blocks of 4096 samples written as 1e-9, which the canonical
# form stores as 1e-09 (57.8 MB sent, about 68 MB encoded). The client gets the documented
# error, nothing of the message is stored, and the daemon goes on taking messages.
source "$(dirname "$0")/lib.sh"
write_conf "$T/engaged.conf" "[ingest]" "max_message = 64MiB" "max_lines = 100000"
start_daemon "$T/engaged.conf" "$T/daemon.log" || fail "start"
$PY - "$T" <<'EOP' || fail "client"
import json, sys, zmq
d = sys.argv[1]
ctx = zmq.Context.instance()
s = ctx.socket(zmq.REQ)
s.setsockopt(zmq.LINGER, 0)
s.setsockopt(zmq.RCVTIMEO, 120000)
s.connect("ipc://%s/ingest" % d)
g = "[" + ",".join(["[1e-9,1e-9,1e-9]"] * 4096) + "]"
lines = ['{"ts":%d,"participant":"p01","source":"band","seq":%d,"type":"accel","hz":100,"g":%s}'
         % (1709290800000 + 41000 * k, k + 1, g) for k in range(830)]
msg = "\n".join(lines).encode()
assert len(msg) < 64 << 20, len(msg)
s.send(msg)
ack = json.loads(s.recv())
assert "too large for one store request" in ack.get("error", ""), ack
print("%d bytes, %d lines: %s" % (len(msg), len(lines), ack["error"]))
small = "\n".join(lines[:2]).encode()
s.send(small)
ack = json.loads(s.recv())
assert ack.get("accepted") == 2, ack
print("then 2 of the same lines in a message of their own:", ack)
EOP
kill -0 "$DAEMON_PID" || fail "daemon died"
stop_daemon || fail "daemon exit"
no_sanitizer_report "$T/daemon.log"
n=$(db_value "$T/engaged.db" "select count(*) from events where source='band'")
[ "$n" -eq 2 ] || fail "$n events of band stored, want the 2 of the small message"
echo "PASS: the oversized message refused whole with its error, the daemon alive, 2 events stored after it"
