#!/usr/bin/env bash
# A fleet: 50 BLE sources streaming at once into one daemon. One tools/blesim process serves
# them all (every connection to its socket is its own simulated device: Heart Rate at 10 Hz,
# Battery every 2 s). Every source reaches streaming on status/<source>; every notification
# the simulator sent (plus each connection's battery read) is stored exactly once, each
# source's seq runs 1..N without gaps, and the pipeline accepted every stored event with no
# duplicate; the event topics carry every stored event once, as stored (batches of many
# events: each message is its own event's stored body).
source "$(dirname "$0")/lib.sh"
BLESIM="$ENGAGED_BIN/tools/blesim"
N=50
S=$(mktemp -d /tmp/ebleXXXXXX)   # [source] transport holds 31 bytes
trap 'cleanup; rm -rf "$S"' EXIT

{
  cat <<EOC
[daemon]
log_level = notice
status_interval = 1s
[store]
path = $T/engaged.db
batch_delay = 20ms
[publish]
endpoint = ipc://$T/feed
event_topics = yes
[control]
endpoint = ipc://$T/control
[ingest]
endpoint = ipc://$T/ingest
EOC
  for i in $(seq 0 $((N - 1))); do
    printf '[participant p%02d]\ntz = Europe/London\n' "$i"
    printf '[source w%02d]\ndriver = ble\nparticipant = p%02d\naddress = C4:7C:8D:6A:30:%02X\ntransport = sim:%s/f.s\n' \
      "$i" "$i" "$i" "$S"
  done
} > "$T/engaged.conf"
"$ENGAGED" check-config -c "$T/engaged.conf" > /dev/null || fail "check-config"

"$BLESIM" --listen "$S/f.s" --profiles gatt,hr,battery,dis --hr-rate 10 --battery-period 2 \
  --max-conn 64 > /dev/null 2> "$T/sim.err" &
SIM=$!
for _ in $(seq 1 100); do [ -S "$S/f.s" ] && break; sleep 0.05; done
: > "$T/status.out" # exists before the checks read it (the subscriber truncates it)
$PY "$TOOL" sub "ipc://$T/feed" status/ "$T/status.out" --min 1000000 --seconds 300 > /dev/null &
: > "$T/events.out"
$PY "$TOOL" sub "ipc://$T/feed" event/ "$T/events.out" --min 1000000 --seconds 300 > /dev/null &
start_daemon "$T/engaged.conf" "$T/daemon.log"

# all 50 streaming
$PY - "$T/status.out" "$N" <<'EOP' || fail "not every source streamed"
import json, sys, time
want = int(sys.argv[2])
for _ in range(300):
    streaming = {json.loads(l)[1]["source"] for l in open(sys.argv[1])
                 if json.loads(l)[1]["state"] == "streaming"}
    if len(streaming) == want:
        break
    time.sleep(0.1)
print("streaming:", len(streaming), "sources")
assert len(streaming) == want, sorted(streaming)
EOP
sleep 6
kill -TERM "$SIM"; wait "$SIM" || fail "blesim exit"
# every source sees its link close (after reading what was sent)
$PY - "$T/status.out" "$N" <<'EOP' || fail "not every source noticed the end"
import json, sys, time
want = int(sys.argv[2])
for _ in range(300):
    last = {}
    for l in open(sys.argv[1]):
        m = json.loads(l)[1]
        last[m["source"]] = m
    if len(last) == want and all(m["state"] == "backoff" for m in last.values()):
        break
    time.sleep(0.1)
assert all(m["state"] == "backoff" for m in last.values()), last
EOP
sleep 0.5
CTL="$ENGAGED_BIN/engagectl -s ipc://$T/control"
$CTL --json status > "$T/ctl.json" || fail "engagectl"
stop_daemon || fail "daemon exit"

NOTES=$(awk '/closed:/ { for (i = 1; i < NF; i++) if ($(i + 1) == "notifications,") n += $i } END { print n + 0 }' "$T/sim.err")
CONNS=$(grep -c 'closed:' "$T/sim.err")
$PY - "$T/engaged.db" "$N" "$NOTES" "$CONNS" "$T/ctl.json" <<'EOP' || fail "events"
import json, sqlite3, sys
db, want, notes, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
rows = con.execute("SELECT source, COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq), "
                   "SUM(type = 'hr'), SUM(type = 'battery') FROM events GROUP BY source").fetchall()
total = sum(r[1] for r in rows)
print(f"simulator: {notes} notifications over {conns} connections; stored {total} events "
      f"from {len(rows)} sources ({min(r[1] for r in rows)}..{max(r[1] for r in rows)} each)")
assert conns == want, conns
assert len(rows) == want, [r[0] for r in rows]
assert total == notes + conns, (total, notes, conns)
for src, n, distinct, lo, hi, hr, bat in rows:
    assert n == distinct and lo == 1 and hi == n, (src, n, lo, hi)
    assert hr >= 30 and bat >= 2, (src, hr, bat)
st = json.load(open(sys.argv[5]))
# everything stored before the snapshot went through the pipeline once
assert st["pipeline"]["duplicates"] == 0, st["pipeline"]
assert st["pipeline"]["accepted"] == total, (st["pipeline"], total)
EOP
$PY - "$T/engaged.db" "$T/events.out" <<'EOP' || fail "event topics"
import json, sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
stored = {}
for (body,) in con.execute("SELECT body FROM events"):
    e = json.loads(body)
    stored[(e["source"], e["seq"])] = e
seen = set()
topic_seq = {}  # the topic's own seq: a cached value re-sent on a subscription repeats it
repeats = 0
for l in open(sys.argv[2]):
    topic, msg = json.loads(l)
    ev = msg["event"]
    key = (ev["source"], ev["seq"])
    assert stored.get(key) == ev, (topic, ev, stored.get(key))
    assert topic == "event/%s/%s" % (ev["participant"], ev["type"]), (topic, ev)
    if msg["seq"] <= topic_seq.get(topic, 0):
        assert key in seen, ("a repeat of what was never sent", topic, msg)
        repeats += 1
        continue
    topic_seq[topic] = msg["seq"]
    assert key not in seen, ("published twice", topic, ev)
    seen.add(key)
# the subscriber may join after the first events (a slow start under load), so each source
# must have every event from the first one it received to its last one stored
last = {}
for src, seq in stored:
    last[src] = max(last.get(src, 0), seq)
first = {}
for src, seq in seen:
    first[src] = min(first.get(src, seq), seq)
assert set(first) == set(last), sorted(set(last) - set(first))
missing = [(src, q) for src in last for q in range(first[src], last[src] + 1) if (src, q) not in seen]
print(f"event topics: {len(seen)} of {len(stored)} stored events; "
      f"joined at seq {min(first.values())}..{max(first.values())}; {repeats} cached values "
      f"re-sent on a subscription")
assert not missing, missing[:10]
assert all(last[src] - first[src] >= 30 for src in last), (first, last)
EOP
no_sanitizer_report "$T/daemon.log" "$T/sim.err"
echo "ok"
