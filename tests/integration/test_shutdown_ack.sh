#!/usr/bin/env bash
# A large ingest message (50,000 lines) is still on its way to the store when SIGTERM comes:
# the daemon stops reading, flushes the store, and the client still gets its acknowledgement
# before the sockets close; everything acknowledged is stored. (The ingest socket used to be
# freed before the last store replies were handled: no acknowledgement, and ASan reported
# a heap-use-after-free in ingest_on_store_reply.)
source "$(dirname "$0")/lib.sh"
write_conf "$T/engaged.conf"
sed -i 's/^endpoint = ipc:\/\/.*\/ingest$/&\nmax_lines = 100000\nmax_message = 16MiB/' "$T/engaged.conf"
start_daemon "$T/engaged.conf" "$T/daemon.log"
$PY - "ipc://$T/ingest" "$DAEMON_PID" "ipc://$T/control" > "$T/ack.json" <<'EOP'
import json, os, signal, sys, time
import zmq
endpoint, pid, control = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = [json.dumps({"ts": 1700000000000 + i * 1000, "participant": "p01", "source": "phone-p01",
                     "seq": i + 1, "type": "screen", "state": "on" if i % 2 == 0 else "off"})
         for i in range(50000)]
s = zmq.Context.instance().socket(zmq.DEALER)
s.setsockopt(zmq.LINGER, 0)
s.connect(endpoint)
time.sleep(0.2)
s.send_multipart([b"", ("\n".join(lines) + "\n").encode()])
# once the daemon has read the message (its status answers after the message's events went
# to the store writer), and before they are committed: 50,000 inserts take a while
ctl = zmq.Context.instance().socket(zmq.REQ)
ctl.setsockopt(zmq.LINGER, 0)
ctl.connect(control)
for _ in range(600):
    ctl.send(b'{"cmd":"status"}')
    assert ctl.poll(30000), "no status"
    if json.loads(ctl.recv())["ingest"]["messages"] >= 1:
        break
    time.sleep(0.01)
os.kill(pid, signal.SIGTERM)
print(s.recv_multipart()[-1].decode() if s.poll(30000) else '{"error": "no reply"}')
EOP
cat "$T/ack.json" | cut -c1-200
rc=0
wait "$DAEMON_PID" || rc=$?
DAEMON_PID=""
[ "$rc" -eq 0 ] || { tail -n 20 "$T/daemon.log"; echo "daemon exit $rc"; exit 1; }
$PY - "$T/ack.json" "$T/engaged.db" <<'EOP'
import json, sqlite3, sys
ack = json.load(open(sys.argv[1]))
assert ack.get("accepted") == 50000 and ack["rejected"] == 0, ack
n = sqlite3.connect("file:%s?mode=ro" % sys.argv[2], uri=True).execute(
    "SELECT count(*) FROM events").fetchone()[0]
assert n == 50000, n
print("acknowledged and stored at shutdown: %d events" % n)
EOP
