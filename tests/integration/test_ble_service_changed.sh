#!/usr/bin/env bash
# Service Changed on a streaming link (docs/ble.md, "Reconnecting"): a heart rate sensor adds a
# Battery service 3 s into the connection and indicates Service Changed for the new handles.
# The daemon discovers the database again on the same link: it keeps streaming heart rate,
# takes up the battery (events stored, status shows it), never reconnects, and stores the new
# database in the attribute cache in place of the old one. A second such device, hr2, is
# recorded (which bypasses the cache): its capture
# holds both discoveries, and `engaged replay` of it gives every event the daemon stored (the
# reader forgets the changed range at the Service Changed value and maps it again), plus the
# few heart rate values the daemon dropped while it discovered again. A third, hr3, indicates
# a change each time the daemon enables Service Changed, four times: after three discoveries
# on the link the daemon gives up on it (BLE_REDISCOVER_MAX) and reconnects on the backoff
# schedule; the next link, without changes, streams.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"

ble_conf "$T/engaged.conf" "[source hr1]" "driver = ble" "participant = p01" \
  "address = C4:7C:8D:6A:2F:01" "transport = sim:$S/a.s" "[source hr2]" "driver = ble" \
  "participant = p01" "address = C4:7C:8D:6A:2F:02" "transport = sim:$S/a.s" \
  "record = $T/hr2.btsnoop" "[source hr3]" "driver = ble" "participant = p02" \
  "address = C4:7C:8D:6A:2F:03" "transport = sim:$S/b.s"
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"

: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/hr "$T/status.out" --min 1000000 --seconds 120 \
  > /dev/null &
"$BLESIM" --listen "$S/b.s" --profiles gatt,hr --hr-rate 20 --change-storm 4 \
  > /dev/null 2> "$T/sim3.err" &
SIM3=$!
for _ in $(seq 1 100); do [ -S "$S/b.s" ] && break; sleep 0.05; done
sim_start "$S/a.s" "$T/sim.err" --profiles gatt,hr --hr-rate 20 --battery-period 1 \
  --battery-level 77 --change-after 3 --change-profiles battery
start_daemon "$T/engaged.conf" "$T/daemon.log"

# streaming heart rate only, from a database discovered in full
wait_status "$T/status.out" hr1 "last['state'] == 'streaming' and last['profiles'] == ['hr']"
cache1=""
for _ in $(seq 1 50); do # the writer thread stores it after discovery
  cache1=$(db_value "$T/engaged.db" "SELECT coalesce(max(hex(blob)), '') FROM gatt_cache
                                     WHERE device = 'C4:7C:8D:6A:2F:01/sim'")
  [ -n "$cache1" ] && break
  sleep 0.1
done
# then the change: battery taken up on the same link
wait_status "$T/status.out" hr1 \
  "last['state'] == 'streaming' and 'battery' in last['profiles'] and \
   last['battery'] is not None and 70 <= last['battery'] <= 77" 30
sleep 2
$PY - "$T/status.out" <<'EOP' || fail "status across the change"
import json, sys
msgs = [json.loads(l)[1] for l in open(sys.argv[1]) if l.startswith('["status/hr1"')]
last = msgs[-1]
assert last["connects"] == 1 and last["reconnects"] == 0 and last["failures"] == 0, last
assert last["attempts"] == 1 and last["error"] is None, last
states = [m["state"] for m in msgs]
# streaming, discovering again, streaming: the link never went through connecting
first = states.index("streaming")
assert "connecting" not in states[first:] and "backoff" not in states[first:], states
assert "discovering" in states[first:], states
print("states after the first streaming:", [s for i, s in enumerate(states[first:])
                                             if i == 0 or s != states[first + i - 1]])
EOP
for src in "hr1 (C4:7C:8D:6A:2F:01)" "hr2 (C4:7C:8D:6A:2F:02)"; do
  grep -q "$src: the device's services changed (handles 0x[0-9a-f]*-0xffff); discovering that\
 range again on the same link" "$T/daemon.log" || fail "no log line for the change of $src"
done
[ "$(grep -c "hr[12] .*discovering that range again" "$T/daemon.log")" = 2 ] ||
  fail "rediscovered more than once"
[ "$(grep -c "database changed (Service Changed indicated)" "$T/sim.err")" = 2 ] ||
  fail "the simulator did not indicate the changes"
! grep -q "blesim: connection 3" "$T/sim.err" || fail "the daemon connected again"

# hr3: three discoveries again on its first link, then a reconnection; its second link streams
wait_status "$T/status.out" hr3 "last['state'] == 'streaming' and last['connects'] == 2" 30
$PY - "$T/status.out" <<'EOP' || fail "hr3 status"
import json, sys
msgs = [json.loads(l)[1] for l in open(sys.argv[1]) if l.startswith('["status/hr3"')]
gave_up = [m for m in msgs if m["state"] == "backoff"]
assert gave_up and "keep changing during setup" in gave_up[0]["error"], gave_up
assert not any(m["state"] == "streaming" for m in msgs[:msgs.index(gave_up[0])]), \
    "hr3 streamed on its first link"
assert msgs[-1]["reconnects"] == 1 and msgs[-1]["profiles"] == ["hr"], msgs[-1]
EOP
[ "$(grep -c "hr3 (C4:7C:8D:6A:2F:03): the device's services changed (handles 0x0001-0xffff)" \
      "$T/daemon.log")" = 3 ] || fail "hr3: not three discoveries again"
grep -q "hr3 (C4:7C:8D:6A:2F:03): the device's services keep changing during setup; reconnecting" \
  "$T/daemon.log" || fail "hr3: no log line for giving up the link"
[ "$(grep -c "Service Changed storm: indicated" "$T/sim3.err")" = 4 ] ||
  fail "the storm simulator did not indicate four changes"
grep -q "blesim: connection 2" "$T/sim3.err" && ! grep -q "blesim: connection 3" "$T/sim3.err" ||
  fail "hr3 did not connect exactly twice"
n3=0
for _ in $(seq 1 50); do
  n3=$(db_value "$T/engaged.db" "SELECT count(*) FROM events WHERE source = 'hr3' AND type = 'hr'")
  [ "$n3" -ge 20 ] && break
  sleep 0.1
done
[ "$n3" -ge 20 ] || fail "hr3 stored $n3 heart rate events"

stop_daemon || fail "daemon exit"
kill -TERM "$SIM_PID"; wait "$SIM_PID" || fail "blesim exit"; SIM_PID=""
kill -TERM "$SIM3"; wait "$SIM3" || fail "blesim (hr3) exit"

# heart rate went on across the change: no hole in what was received beyond a few samples at
# 20 Hz (the old subscription's notifications are dropped while the database is read again)
$PY - "$T/engaged.db" <<'EOP' || fail "events across the change"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
hr = [r[0] for r in db.execute(
    "SELECT received FROM events WHERE source = 'hr1' AND type = 'hr' ORDER BY id")]
bat = db.execute(
    "SELECT count(*) FROM events WHERE source = 'hr1' AND type = 'battery'").fetchone()[0]
assert len(hr) > 60, len(hr)
gap = max(b - a for a, b in zip(hr, hr[1:]))
assert gap < 500, "a %d ms hole in heart rate" % gap
assert bat >= 2, bat
print("%d hr events, largest gap %d ms; %d battery events" % (len(hr), gap, bat))
EOP
# the attribute cache holds the new database (with the battery service), not the old one
cache2=$(db_value "$T/engaged.db" "SELECT hex(blob) FROM gatt_cache
                                 WHERE device = 'C4:7C:8D:6A:2F:01/sim'")
[ -n "$cache1" ] && [ -n "$cache2" ] && [ "$cache1" != "$cache2" ] ||
  fail "the attribute cache was not replaced"
# hr1 and hr3 (hr2 is recorded, which bypasses the cache)
[ "$(db_value "$T/engaged.db" "SELECT group_concat(device, ' ')
                     FROM (SELECT device FROM gatt_cache ORDER BY device)")" = \
  "C4:7C:8D:6A:2F:01/sim C4:7C:8D:6A:2F:03/sim" ] || fail "cache rows"

"$ENGAGED" replay --participant p01 --store "$T/replay.db" --out /dev/null "$T/hr2.btsnoop" \
  > /dev/null 2> "$T/replay.err" || { cat "$T/replay.err"; fail "replay of the capture"; }
! grep -v '^replay:' "$T/replay.err" | grep -q . || { cat "$T/replay.err"; fail "replay problems"; }
$PY - "$T/engaged.db" "$T/replay.db" <<'EOP' || fail "replayed events"
import collections, json, sqlite3, sys
def events(db, source):
    out = collections.Counter()
    for (b,) in sqlite3.connect(db).execute("SELECT body FROM events WHERE source = ?", (source,)):
        e = json.loads(b)
        for k in ("source", "seq", "participant"):
            e.pop(k, None)
        out[json.dumps(e, sort_keys=True)] += 1
    return out
live, rep = events(sys.argv[1], "hr2"), events(sys.argv[2], "btsnoop")
assert not live - rep, "stored, not replayed: %s" % list((live - rep).items())[:3]
extra = rep - live
assert all(json.loads(e)["type"] == "hr" for e in extra), extra
assert sum(extra.values()) <= 5, extra
assert any(json.loads(e)["type"] == "battery" for e in rep)
print("replayed: %d events, %d of them heart rate the daemon dropped while discovering" %
      (sum(rep.values()), sum(extra.values())))
EOP
no_sanitizer_report "$T/daemon.log"
echo "Service Changed: discovered again on the same link"
