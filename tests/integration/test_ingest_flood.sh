#!/usr/bin/env bash
# Clients that send far more than the ingest queue holds (max_pending 256) without waiting
# for acknowledgements: the daemon stops reading while the queue is full and reads on once
# store replies make room. Every message gets exactly one reply, nothing is lost or stored
# twice, and a full resend finds everything already stored.
source "$(dirname "$0")/lib.sh"
write_conf "$T/engaged.conf"
start_daemon "$T/engaged.conf" "$T/daemon.log"
REC="$ENGAGED_SRC/demo/demo.jsonl"
N=$(grep -c . "$REC")

$PY "$TOOL" flood "ipc://$T/ingest" "$REC" --clients 4 --seconds 60 > "$T/flood.json"
cat "$T/flood.json"
"$ENGAGED_BIN/engagectl" -s "ipc://$T/control" --json status > "$T/status.json"
$PY "$TOOL" push "ipc://$T/ingest" "$REC" --batch 100 > "$T/resend.json"
cat "$T/resend.json"
$PY - "$T/flood.json" "$T/resend.json" "$T/status.json" "$N" <<'EOP'
import json, sys
f = json.load(open(sys.argv[1]))
r = json.load(open(sys.argv[2]))
st = json.load(open(sys.argv[3]))
n = int(sys.argv[4])
assert f["replies"] == f["messages"] == n, ("a message went unanswered", f)
assert f["rejected"] == 0 and f["duplicate"] == 0, f
# a message answered "busy" was not stored; the resend stores it
assert f["accepted"] + f["errors"] == n, f
assert r["accepted"] == f["errors"] and r["duplicate"] == f["accepted"], (f, r)
ing = st["ingest"]
assert ing["messages"] >= n, ing
assert ing["queue_full"] >= 1, ("the queue never filled: the test did not test", ing)
print("flood ok: %d messages, %d stored at once, %d busy and stored on resend; ingest %s"
      % (n, f["accepted"], f["errors"], json.dumps(ing)))
EOP
stop_daemon
