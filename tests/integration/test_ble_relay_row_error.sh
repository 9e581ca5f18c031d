#!/usr/bin/env bash
# A relayed record whose row the store always fails (here a trigger another process adds makes
# SQLite abort the insert of seq 300; the transaction with the other rows goes through) is left
# with the phone and asked for again, then refused when the third send failed too (docs/relay-profile.md,
# "When the store falls behind"), instead of holding the phone's stream forever: every other
# record is stored exactly once, the refused one is in the refused table, and the phone's
# outbox is acknowledged up to the end. Seq 350's row fails in the refused table too: its
# refusal is counted as processed without the row (logged), or the phone would send it for
# ever.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"
N=450
BAD=300
BAD2=350

app_use "$T/phone.jsonl" p01 phone-p01 1709290800000 600000 $((N / 3))
ble_conf "$T/engaged.conf" \
  "[source phone-p01]" "driver = ble" "participant = p01" "address = C4:7C:8D:6A:2F:11" \
  "transport = sim:$S/p.s"
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"
sim_start "$S/p.s" "$T/sim.err" --profiles gatt,dis --relay "$T/phone.jsonl" --relay-rate 100
stored() {
  db_value "$T/engaged.db" "select count(*) from events where source='phone-p01'" 2>/dev/null || echo 0
}
start_daemon "$T/engaged.conf" "$T/daemon.log" || fail "start"
for _ in $(seq 1 100); do [ "$(stored)" -ge 1 ] && break; sleep 0.1; done
$PY - "$T/engaged.db" "$BAD" "$BAD2" <<'EOP' || fail "could not add the triggers"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
bad, bad2 = int(sys.argv[2]), int(sys.argv[3])
con.execute("CREATE TRIGGER test_bad_row BEFORE INSERT ON events "
            "WHEN NEW.source = 'phone-p01' AND NEW.seq IN (%d, %d) "
            "BEGIN SELECT RAISE(ABORT, 'test: this row fails'); END" % (bad, bad2))
con.execute("CREATE TRIGGER test_bad_refusal BEFORE INSERT ON refused "
            "WHEN NEW.source = 'phone-p01' AND NEW.seq = %d "
            "BEGIN SELECT RAISE(ABORT, 'test: this row fails too'); END" % bad2)
EOP
[ "$(stored)" -lt "$BAD" ] || fail "the phone was past seq $BAD before the trigger"
for _ in $(seq 1 600); do [ "$(stored)" -ge $((N - 2)) ] && break; sleep 0.1; done
[ "$(stored)" -eq $((N - 2)) ] || fail "$(stored) of $((N - 2)) records stored"
grep -q "record $BAD refused: the store failed its row each of the 3 times the phone sent it" \
  "$T/daemon.log" ||
  fail "seq $BAD was not refused"
for _ in $(seq 1 100); do grep -q "refused record $BAD2 not kept" "$T/daemon.log" && break; sleep 0.1; done
grep -q "relay: refused record $BAD2 not kept in the store (the store failed its row); counted as processed" \
  "$T/daemon.log" || fail "seq $BAD2's refusal was not given up"
[ "$(grep -c "asking the phone again for its records after $((BAD - 1))" "$T/daemon.log")" -ge 2 ] ||
  fail "seq $BAD was not asked for again"
sleep 1 # the last ACK
kill -TERM "$SIM_PID"; wait "$SIM_PID" || fail "simulator exit"; SIM_PID=""
stop_daemon || fail "daemon exit"
tail -n 1 "$T/sim.err"
grep -q "acknowledged up to $N," <(tail -n 1 "$T/sim.err") || fail "the phone's outbox is not empty"
$PY - "$T/engaged.db" "$N" "$BAD" "$BAD2" <<'EOP' || fail "stored seqs"
import json, sqlite3, sys
db, n, bad, bad2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
seqs = [r[0] for r in sqlite3.connect(db).execute(
    "select seq from events where source='phone-p01'")]
want = [s for s in range(1, n + 1) if s not in (bad, bad2)]
assert sorted(seqs) == want and len(seqs) == len(want), (len(seqs), len(set(seqs)))
# kept in the refused table as the event the store would not take
rows = sqlite3.connect(db).execute("select seq, reason, record from refused").fetchall()
assert len(rows) == 1 and rows[0][0] == bad, rows
assert rows[0][1] == "the store failed its row each of the 3 times the phone sent it", rows
ev = json.loads(rows[0][2])
assert ev["seq"] == bad and ev["source"] == "phone-p01" and ev["participant"] == "p01", ev
EOP
echo "PASS: seq $BAD refused after 3 sends and kept as refused, $BAD2 refused without a row, the other $((N - 2)) stored once"
