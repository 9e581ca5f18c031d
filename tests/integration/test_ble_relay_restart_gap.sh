#!/usr/bin/env bash
# After a restart a relay phone resumes below a record missing from the store, not after the
# store's highest seq (ble.c, relay_resume_point): a phone's 300 records are stored, the daemon
# stops, seq 250 is deleted from the store (as if it had been left with the phone while later
# ones were stored when the hub stopped), and the daemon starts again with the phone holding
# records 1..402. The hub must ask for the records after 249, so that 250 is stored again:
# resuming after 300 would let the phone delete it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"

app_use "$T/first.jsonl" p01 phone-p01 1709290800000 600000 100
app_use "$T/phone.jsonl" p01 phone-p01 1709290800000 600000 134
ble_conf "$T/engaged.conf" \
  "[source phone-p01]" "driver = ble" "participant = p01" "address = C4:7C:8D:6A:2F:11" \
  "transport = sim:$S/p.s"
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"
stored() {
  db_value "$T/engaged.db" "select count(distinct seq) from events where source='phone-p01'" 2>/dev/null || echo 0
}

sim_start "$S/p.s" "$T/sim1.err" --profiles gatt,dis --relay "$T/first.jsonl" --relay-rate 1000
start_daemon "$T/engaged.conf" "$T/daemon.log" || fail "start"
for _ in $(seq 1 200); do [ "$(stored)" -ge 300 ] && break; sleep 0.1; done
[ "$(stored)" -eq 300 ] || fail "$(stored) of 300 records stored"
stop_daemon || fail "daemon exit"
kill -TERM "$SIM_PID"; wait "$SIM_PID" || true; SIM_PID=""
rm -f "$S/p.s"
$PY - "$T/engaged.db" <<'EOP' || fail "could not delete seq 250"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
assert con.execute("delete from events where source='phone-p01' and seq=250").rowcount == 1
con.commit()
EOP

sim_start "$S/p.s" "$T/sim2.err" --profiles gatt,dis --relay "$T/phone.jsonl" --relay-rate 1000
start_daemon "$T/engaged.conf" "$T/daemon.log" || fail "restart"
for _ in $(seq 1 200); do [ "$(stored)" -ge 402 ] && break; sleep 0.1; done
sleep 1 # the last ACK
kill -TERM "$SIM_PID"; wait "$SIM_PID" || fail "simulator exit"; SIM_PID=""
stop_daemon || fail "daemon exit"
grep -q "seq 250 is missing from the store below the source's position 300: a relay phone is asked for its records after 249" \
  "$T/daemon.log" || fail "the missing record was not noticed"
tail -n 1 "$T/sim2.err"
grep -q "acknowledged up to 402," <(tail -n 1 "$T/sim2.err") || fail "the phone's outbox is not empty"
$PY - "$T/engaged.db" <<'EOP' || fail "stored seqs"
import sqlite3, sys
seqs = [r[0] for r in sqlite3.connect(sys.argv[1]).execute(
    "select seq from events where source='phone-p01'")]
assert sorted(seqs) == list(range(1, 403)), (len(seqs), len(set(seqs)), 250 in seqs)
EOP
echo "PASS: seq 250 asked for again after the restart; 1..402 stored once"
