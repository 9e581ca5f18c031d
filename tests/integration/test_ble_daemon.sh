#!/usr/bin/env bash
# The daemon's BLE source against tools/blesim (transport = sim:PATH): check-config refuses bad
# transports; a source whose simulator is not up yet waits in backoff; once it is up the source
# connects, discovers and streams, and its hr and battery events are stored and pushed to the
# pipeline (features of the days before come out, published and stored; event topics carry the
# events); status/<source> shows the states, battery, clock offset and device information;
# a PineTime-like device gives steps and accel events (the open accel block is stored when
# the link goes); killing the simulator mid-stream puts the source in backoff, and a restarted simulator is
# reconnected (from the attribute cache) with every notification of both runs stored exactly
# once (counted against the simulator's own totals) and seq gapless; an l2cap source on this
# Bluetooth-less kernel, and a device with none of the supported profiles, report an error and
# the daemon carries on; after a daemon restart seq continues where the store left it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"

cat > "$T/engaged.conf" <<EOC
[daemon]
log_level = info
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
[participant p01]
tz = Europe/London
[participant p02]
tz = Europe/London
[source phone-p01]
driver = ingest
participant = p01
[source hr1]
driver = ble
participant = p01
address = C4:7C:8D:6A:2F:01
transport = sim:$S/a.s
set_clock = no
[source watch2]
driver = ble
participant = p01
address = C4:7C:8D:6A:2F:02
[source info3]
driver = ble
participant = p01
address = C4:7C:8D:6A:2F:03
transport = sim:$S/b.s
[source pt4]
driver = ble
participant = p02
address = C4:7C:8D:6A:2F:04
transport = sim:$S/c.s
EOC
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"

# bad transports are configuration errors naming file and line
cp "$T/engaged.conf" "$T/bad.conf"
cat >> "$T/bad.conf" <<EOC
[source bad1]
driver = ble
participant = p01
address = C4:7C:8D:6A:2F:03
transport = sim:relative/path
[source bad2]
driver = ble
participant = p01
address = C4:7C:8D:6A:2F:04
transport = l2cap:random,sideways
EOC
rc=0; "$ENGAGED" check-config -c "$T/bad.conf" > "$T/bad.out" 2>&1 || rc=$?
[ "$rc" -eq 78 ] || fail "bad transports: exit $rc"
grep -q "bad.conf:[0-9]*: \[source bad1\] transport: invalid \"sim:relative/path\"" "$T/bad.out" || { cat "$T/bad.out"; fail "sim: message"; }
grep -q "bad.conf:[0-9]*: \[source bad2\] transport: invalid .*sideways" "$T/bad.out" || { cat "$T/bad.out"; fail "l2cap message"; }

# The simulated device's clock starts at --time when a connection opens: the offset the
# daemon estimates is then --time minus the hub's time at connection (CLOCKS records --time).
# hr1 has `set_clock = no`, so the estimate is of that clock (test_ble_clock_set.sh sets it).
start_sim() { # LOG
  local now; now=$(date +%s)
  echo "$now" >> "$T/clocks"
  "$BLESIM" --listen "$S/a.s" --profiles gatt,hr,battery,cts,dis --hr-rate 20 \
    --battery-period 1 --time "$now" --serial SIM-0042 > /dev/null 2> "$1" &
  SIM_PID=$!
  for _ in $(seq 1 100); do [ -S "$S/a.s" ] && return 0; sleep 0.05; done
  fail "blesim did not listen"
}
stop_sim() {
  kill -TERM "$SIM_PID"; wait "$SIM_PID" || fail "blesim exit"; SIM_PID=""
}


# a device with Device Information only: nothing to subscribe to
"$BLESIM" --listen "$S/b.s" --profiles gatt,dis > /dev/null 2> "$T/simb.err" &
for _ in $(seq 1 100); do [ -S "$S/b.s" ] && break; sleep 0.05; done
# a PineTime-like device (p02's: p01's watermark must wait for the phone event below)
"$BLESIM" --listen "$S/c.s" --profiles gatt,battery,motion --steps-rate 2 --motion-rate 10 \
  > /dev/null 2> "$T/simc.err" &
SIMC=$!
for _ in $(seq 1 100); do [ -S "$S/c.s" ] && break; sleep 0.05; done
: > "$T/status.out" # exists before the checks read it (the subscriber truncates it)
$PY "$TOOL" sub "ipc://$T/feed" status/ "$T/status.out" --min 1000000 --seconds 300 > /dev/null &
$PY "$TOOL" sub "ipc://$T/feed" event/p01/ "$T/events.out" --min 1000000 --seconds 300 > /dev/null &
$PY "$TOOL" sub "ipc://$T/feed" feature/p01/ "$T/features.out" --min 1000000 --seconds 300 > /dev/null &
T0=$(date +%s)
start_daemon "$T/engaged.conf" "$T/daemon.log"

# 1. no simulator yet: backoff; the l2cap source has no Bluetooth here: error, daemon runs on
wait_status "$T/status.out" hr1 'any(m["state"] == "backoff" and "no simulator" in (m["error"] or "") for m in msgs)'
$PY - "$T/status.out" <<'EOP' || fail "watch2 status"
import json, sys, time
for _ in range(100):
    w = [json.loads(l)[1] for l in open(sys.argv[1]) if l.startswith('["status/watch2"')]
    if any(m["state"] == "error" for m in w):
        break
    time.sleep(0.1)
m = [m for m in w if m["state"] == "error"][0]
assert "no Bluetooth" in m["error"] or "without Bluetooth" in m["error"], m
assert m["next_attempt"] > m["time"] and m["transport"] == "l2cap", m
for _ in range(100):
    w = [json.loads(l)[1] for l in open(sys.argv[1]) if l.startswith('["status/info3"')]
    if any(m["state"] == "error" for m in w):
        break
    time.sleep(0.1)
m = [m for m in w if m["state"] == "error"][0]
assert "no supported profile" in m["error"] and m["profiles"] == ["dis"], m
EOP

# a phone event three days ago, before any BLE data: once hr1 streams, p01's watermark moves
# to now and those days close (the phone, > source_idle behind, no longer holds it)
OLD=$(( ($(date +%s) - 3 * 86400) * 1000 ))
echo "{\"ts\":$OLD,\"participant\":\"p01\",\"source\":\"phone-p01\",\"seq\":1,\"type\":\"screen\",\"state\":\"on\"}" > "$T/seed.jsonl"
$PY "$TOOL" push "ipc://$T/ingest" "$T/seed.jsonl" | grep -q '"accepted": 1' || fail "seed"

# 2. the simulator comes up: connect, discover, stream
start_sim "$T/sim1.err"
wait_status "$T/status.out" hr1 'last["state"] == "streaming" and last["battery"] is not None and last["last_notification"]' 40
sleep 3
# features of the three closed days, published and stored: only hr1's events, stored and
# pushed to the pipeline, can have moved p01's watermark past them
for _ in $(seq 1 50); do [ "$(wc -l < "$T/features.out")" -ge 3 ] && break; sleep 0.2; done
[ "$(grep -c '"window": "day"' "$T/features.out")" -ge 3 ] || fail "no day features published"
[ "$($PY "$TOOL" features "$T/engaged.db" | grep -c '"feature":"yield.phone"')" -ge 3 ] || fail "features not stored"
# event topics: the stored hr events went through the pipeline
grep -q '"event/p01/hr"' "$T/events.out" || fail "no event/p01/hr"
grep -q '"event/p01/battery"' "$T/events.out" || fail "no event/p01/battery"
# ... each one the event as stored (the topic reuses the store's body: same content)
$PY - "$T/events.out" "$T/engaged.db" <<'EOP' || fail "an event topic differs from the stored event"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[2])
stored = {}
for (body,) in db.execute("SELECT body FROM events"):
    e = json.loads(body)
    stored[(e["source"], e["seq"])] = e
n = 0
for l in open(sys.argv[1]):
    topic, msg = json.loads(l)
    if topic.startswith("event/p01/"):
        ev = msg["event"]
        if stored.get((ev["source"], ev["seq"])) != ev or topic != "event/p01/" + ev["type"]:
            sys.exit("%s: %r not stored as such" % (topic, ev))
        n += 1
if n < 10:
    sys.exit("only %d event messages" % n)
EOP

# 3. the simulator dies mid-stream: backoff; back up: reconnected, database from the cache
stop_sim
kill -TERM "$SIMC"; wait "$SIMC" || fail "motion simulator exit"
wait_status "$T/status.out" hr1 'last["state"] == "backoff" and last["reconnects"] == 0'
sleep 2
start_sim "$T/sim2.err"
wait_status "$T/status.out" hr1 'last["state"] == "streaming" and last["reconnects"] == 1' 40
sleep 2
stop_sim
wait_status "$T/status.out" hr1 'last["state"] == "backoff" and last["reconnects"] == 1'
sleep 0.5
# engagectl status: the BLE part, with the keeper waiting for a mgmt socket this kernel lacks
"$ENGAGED_BIN/engagectl" -s "ipc://$T/control" --json status > "$T/ctl.json" || fail "engagectl status"
$PY - "$T/ctl.json" "$T/daemon.log" <<'EOP' || { cat "$T/ctl.json"; fail "engagectl status ble"; }
import json, sys, time
b = json.load(open(sys.argv[1]))["ble"]
assert b["devices"] == 4 and b["events"] >= b["stored"] > 0 and b["lost"] == 0, b
k = b["bonding_keys"]
if "no Bluetooth in this kernel" in open(sys.argv[2]).read():
    assert k["state"] == "retrying" and k["error"] == "no Bluetooth in this kernel", k
    assert k["ltks"] == 0 and k["irks"] == 0 and k["controllers"] == 0, k
    assert time.time() * 1000 < k["next_attempt"] <= time.time() * 1000 + 300000, k
EOP
stop_daemon || fail "daemon exit"
# the l2cap source starts the bonding-key keeper; with no mgmt socket here it is tried again
# every 2, 4, 8 ... s (the run lasts longer than that) and the reason is logged once
RUN_S=$(( $(date +%s) - T0 ))
NK=$(grep -c "bonding keys are not kept by engaged" "$T/daemon.log" || true)
if grep -q "bonding keys are not kept by engaged: no Bluetooth in this kernel" "$T/daemon.log"; then
  [ "$RUN_S" -gt 6 ] || fail "the first run lasted only ${RUN_S} s"
  [ "$NK" -eq 1 ] || { grep "bonding keys" "$T/daemon.log"; fail "keeper notice $NK times"; }
  grep -q "no Bluetooth in this kernel (tried again later)" "$T/daemon.log" || fail "keeper retry notice"
fi

$PY - "$T/status.out" "$T/clocks" <<'EOP' || fail "status sequence"
import json, sys
clocks = [int(x) * 1000 for x in open(sys.argv[2])]
msgs = []
for l in open(sys.argv[1]):
    if l.startswith('["status/hr1"'):
        m = json.loads(l)[1]
        # docs/topics.md: a subscribe re-sends the topic's last value with its seq, and ZeroMQ
        # may already have delivered that message live (the subscription reaches libzmq's
        # filter before the daemon reads it): a repeat is the last message again, as it was
        if msgs and m["seq"] == msgs[-1]["seq"]:
            assert m == msgs[-1], (m, msgs[-1])
            continue
        msgs.append(m)
states = [m["state"] for m in msgs]
# every state change was published: the second connection's path is visible in order
i = states.index("streaming")
j = states.index("backoff", i)
k = states.index("streaming", j)
assert "connecting" in states[j:k] and "discovering" in states[j:k], states
seqs = [m["seq"] for m in msgs]
assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
s1, s2 = msgs[i], msgs[k]
assert not s1["cached"] and s2["cached"], (s1, s2)   # reconnect skipped discovery
for m, at, clock in ((s1, i, clocks[0]), (s2, k, clocks[1])):
    assert set(m["profiles"]) >= {"hr", "battery", "cts", "dis"}, m
    assert m["device"]["serial"] == "SIM-0042" and m["mtu"] == 517, m
    linked = [x for x in msgs[:at] if x["state"] == "discovering"][-1]["since"]
    assert m["clock_samples"] >= 1 and abs(m["clock_offset_ms"] - (clock - linked)) < 250, \
        (m["clock_offset_ms"], clock - linked)
    assert m["address"] == "C4:7C:8D:6A:2F:01" and m["participant"] == "p01", m
assert msgs[j]["error"] and msgs[j]["next_attempt"] >= msgs[j]["time"], msgs[j]
print("status ok:", " -> ".join(states[:12]), "...")
EOP

# every notification the simulators sent (plus the battery read of each connection) is one
# stored event, seq 1..N without gaps
NOTES=$(cat "$T/sim1.err" "$T/sim2.err" | awk '/closed:/ { for (i = 1; i < NF; i++) if ($(i + 1) == "notifications,") n += $i } END { print n + 0 }')
CONNS=$(cat "$T/sim1.err" "$T/sim2.err" | grep -c 'closed:')
read -r N MINS MAXS <<< "$(sqlite3 -separator ' ' "$T/engaged.db" "SELECT COUNT(*), MIN(seq), MAX(seq) FROM events WHERE source = 'hr1'")"
echo "simulators: $NOTES notifications over $CONNS connections; stored: $N events, seq $MINS..$MAXS"
[ "$CONNS" -eq 2 ] || fail "expected 2 connections"
[ "$N" -eq $((NOTES + CONNS)) ] || fail "stored $N events for $NOTES notifications + $CONNS battery reads"
[ "$MINS" -eq 1 ] && [ "$MAXS" -eq "$N" ] || fail "seq not 1..$N"
[ "$(sqlite3 "$T/engaged.db" "SELECT COUNT(*) FROM events a JOIN events b ON a.source = b.source AND b.seq = a.seq + 1 WHERE a.source = 'hr1' AND b.ts < a.ts")" -eq 0 ] || fail "ts goes back"
[ "$(sqlite3 "$T/engaged.db" "SELECT COUNT(DISTINCT type) FROM events WHERE source = 'hr1' AND type IN ('hr', 'battery')")" -eq 2 ] || fail "types"
# the PineTime-like device: step counts as steps per interval, raw motion in 10 Hz blocks
$PY - "$T/engaged.db" "$T/status.out" <<'EOP' || fail "steps and accel"
import json, sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
ev = [json.loads(b) for (b,) in con.execute("SELECT body FROM events WHERE source = 'pt4' ORDER BY seq")]
steps = [e for e in ev if e["type"] == "steps"]
accel = [e for e in ev if e["type"] == "accel"]
assert len(steps) >= 3 and all(e["steps"] > 0 and e["interval_s"] >= 1 for e in steps), steps
assert sum(e["steps"] for e in steps) % 2 == 0, steps   # the simulator counts 2 a notification
assert accel and all(e["hz"] == 10 for e in accel), accel
n = sum(len(e["g"]) for e in accel)
assert n >= 40 and all(len(x) == 3 for e in accel for x in e["g"]), n
st = [json.loads(l)[1] for l in open(sys.argv[2]) if l.startswith('["status/pt4"')]
assert any(m["state"] == "streaming" and "motion" in m["profiles"] for m in st), st[-1]
print(f"pt4: {len(steps)} steps events, {len(accel)} accel blocks of {n} samples")
EOP

# 4. restart: seq continues after the stored position. This run has `ble_mgmt = off`: the
# l2cap source gets one line that the kernel keeps the keys, and no keeper
sed -i 's/^status_interval = 1s$/&\nble_mgmt = off/' "$T/engaged.conf"
start_sim "$T/sim3.err"
L0=$(wc -l < "$T/daemon.log")
start_daemon "$T/engaged.conf" "$T/daemon.log"
for _ in $(seq 1 100); do
  M=$(sqlite3 "$T/engaged.db" "SELECT COUNT(*) FROM events WHERE source = 'hr1' AND seq > $MAXS")
  [ "$M" -ge 10 ] && break; sleep 0.2
done
[ "$M" -ge 10 ] || fail "no events after the restart"
[ "$(grep -c "bonding keys are left to the kernel (\[daemon\] ble_mgmt = off)" "$T/daemon.log")" -eq 1 ] \
  || fail "ble_mgmt = off line"
tail -n +$((L0 + 1)) "$T/daemon.log" | grep -q "bonding keys are not kept by engaged" \
  && fail "a keeper with ble_mgmt = off"
"$ENGAGED_BIN/engagectl" -s "ipc://$T/control" --json status | grep -q '"state": *"off"' \
  || fail "engagectl: keeper state off"
stop_sim
sleep 1
stop_daemon || fail "daemon exit after restart"
read -r N2 MIN2 MAX2 <<< "$(sqlite3 -separator ' ' "$T/engaged.db" "SELECT COUNT(*), MIN(seq), MAX(seq) FROM events WHERE source = 'hr1' AND seq > $MAXS")"
echo "after the restart: $N2 events, seq $MIN2..$MAX2"
[ "$MIN2" -eq $((MAXS + 1)) ] && [ "$MAX2" -eq $((MAXS + N2)) ] || fail "seq did not continue"
no_sanitizer_report "$T/daemon.log"
no_sanitizer_report "$T"/sim*.err
echo "ok"
