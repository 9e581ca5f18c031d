#!/usr/bin/env bash
# The store falls behind while relay phones stream (docs/relay-profile.md, "When the store
# falls behind"): another process holds the database's write lock for 7 s while two phones send
# 600 records each and a heart rate band notifies 200 times a second, with `[store]
# ble_pending_max = 100`. The hub must ask the phones to PAUSE, drop band samples (counted as
# lost), and, for the phone that does not honour PAUSE (--relay-ignore-pause), leave the
# records it cannot queue with the phone (no ACK covers them) and ask for them again once the
# store has room: at the end the store holds each phone's 600 records exactly once and both
# outboxes are acknowledged up to 600.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"
N=600

app_use "$T/phone.jsonl" p01 phone-p01 1709290800000 600000 $((N / 3))
app_use "$T/phone2.jsonl" p02 phone-p02 1709290800000 600000 $((N / 3))
ble_conf "$T/engaged.conf" "[store]" "ble_pending_max = 100" \
  "[source phone-p01]" "driver = ble" "participant = p01" "address = C4:7C:8D:6A:2F:11" \
  "transport = sim:$S/p.s" \
  "[source phone-p02]" "driver = ble" "participant = p02" "address = C4:7C:8D:6A:2F:33" \
  "transport = sim:$S/q.s" \
  "[source band-p02]" "driver = ble" "participant = p02" "address = C4:7C:8D:6A:2F:22" \
  "transport = sim:$S/b.s"
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"

sim_start "$S/b.s" "$T/band.err" --profiles gatt,hr --hr-rate 200
BAND_PID=$SIM_PID
sim_start "$S/q.s" "$T/sim2.err" --profiles gatt,dis --relay "$T/phone2.jsonl" --relay-rate 100 \
  --relay-ignore-pause
SIM2_PID=$SIM_PID
sim_start "$S/p.s" "$T/sim.err" --profiles gatt,dis --relay "$T/phone.jsonl" --relay-rate 100
# stored [SOURCE]: distinct seqs of the phone's records in the store
stored() {
  db_value "$T/engaged.db" "select count(distinct seq) from events where source=?" "${1:-phone-p01}" 2>/dev/null || echo 0
}
: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/ "$T/status.out" --min 1000000 --seconds 120 \
  > /dev/null &
start_daemon "$T/engaged.conf" "$T/daemon.log" || fail "start"
for _ in $(seq 1 300); do [ "$(stored)" -ge 60 ] && break; sleep 0.1; done
[ "$(stored)" -ge 60 ] || fail "the phone's records are not stored ($(stored))"
[ "$(stored)" -lt $((N - 200)) ] || fail "the stream was too fast for the test ($(stored))"

# the stall: a write lock held elsewhere (longer than the writer's 5 s busy timeout)
echo "holding the write lock with $(stored) records stored"
$PY - "$T/engaged.db" <<'EOP' || fail "could not hold the write lock"
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
con.execute("BEGIN IMMEDIATE")
time.sleep(7)
con.execute("ROLLBACK")
EOP
echo "released with $(stored) records stored"

for _ in $(seq 1 600); do
  [ "$(stored)" -ge "$N" ] && [ "$(stored phone-p02)" -ge "$N" ] && break; sleep 0.1
done
[ "$(stored)" -eq "$N" ] || fail "$(stored) of $N records of phone-p01 stored"
[ "$(stored phone-p02)" -eq "$N" ] || fail "$(stored phone-p02) of $N records of phone-p02 stored"
wait_status "$T/status.out" phone-p01 'last["relay"]["pauses"] >= 1' 15
wait_status "$T/status.out" phone-p02 \
  'last["relay"]["left"] >= 1 and last["relay"]["pauses"] >= 1 and last["relay"]["held_back"] >= 1' 15
wait_status "$T/status.out" band-p02 'last["lost"] >= 1' 15
sleep 1 # the last ACKs
kill -TERM "$SIM_PID"; wait "$SIM_PID" || fail "phone simulator exit"; SIM_PID=""
kill -TERM "$SIM2_PID"; wait "$SIM2_PID" || fail "phone simulator 2 exit"
kill -TERM "$BAND_PID"; wait "$BAND_PID" || true
stop_daemon || fail "daemon exit"
tail -n 1 "$T/sim.err" "$T/sim2.err"
for f in sim sim2; do
  grep -q "acknowledged up to $N," <(tail -n 1 "$T/$f.err") || fail "$f: the phone's outbox is not empty"
  grep -Eq ", [1-9][0-9]* pauses," <(tail -n 1 "$T/$f.err") || fail "$f: the phone was not paused"
done
grep -q "relay phones may continue" "$T/daemon.log" || fail "no CONTINUE after the stall"
grep -q "not stored now (the store is behind or failed); the phone keeps it" "$T/daemon.log" ||
  fail "no record left with the phone"
grep -q "asking the phone again for its records after" "$T/daemon.log" ||
  fail "no RESUME for the records left with the phone"

# each record exactly once
$PY - "$T/engaged.db" "$N" <<'EOP' || fail "stored seqs"
import sqlite3, sys
db, n = sys.argv[1], int(sys.argv[2])
for src in ("phone-p01", "phone-p02"):
    seqs = [r[0] for r in sqlite3.connect(db).execute(
        "select seq from events where source=?", (src,))]
    assert len(seqs) == n and sorted(seqs) == list(range(1, n + 1)), (src, len(seqs), len(set(seqs)))
EOP
echo "PASS: $N records once each; $(grep -c 'event lost' "$T/daemon.log") loss lines for the band"
