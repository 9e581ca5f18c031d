#!/usr/bin/env bash
# After a restart a relay phone resumes below a record missing from the store, not after the
# store's highest seq (ble.c, relay_resume_point): a phone's 300 records are stored, the daemon
# stops, seq 250 is deleted from the store (as if it had been left with the phone while later
# ones were stored when the hub stopped), and the daemon starts again with the phone holding
# records 1..402. The hub must ask for the records after 249, so that 250 is stored again:
# resuming after 300 would let the phone delete it.
# Records the hub refuses (seqs 150 and 300 name another participant, 402 is of a type a phone
# does not send) are kept in the store's refused table and count as processed after a restart
# too: 150 is not taken for a missing record, and a third start with the phone holding 1..402
# again resumes after 402, so the refused tail is not sent (and refused) once more.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"

app_use "$T/first.jsonl" p01 phone-p01 1709290800000 600000 100
app_use "$T/phone.jsonl" p01 phone-p01 1709290800000 600000 134
$PY - "$T/first.jsonl" "$T/phone.jsonl" <<'EOP' || fail "refused records"
import json, sys
for path in sys.argv[1:]:
    out = []
    for line in open(path):
        ev = json.loads(line)
        if ev["seq"] in (150, 300):
            ev["participant"] = "p99"
        if ev["seq"] == 402:
            ev = {"ts": ev["ts"], "participant": "p01", "source": "phone-p01", "seq": 402,
                  "type": "hr", "bpm": 61}
        out.append(json.dumps(ev, separators=(",", ":")) + "\n")
    open(path, "w").write("".join(out))
EOP
ble_conf "$T/engaged.conf" \
  "[source phone-p01]" "driver = ble" "participant = p01" "address = C4:7C:8D:6A:2F:11" \
  "transport = sim:$S/p.s"
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"
stored() { # events and refusals
  db_value "$T/engaged.db" "select (select count(distinct seq) from events where source='phone-p01')
    + (select count(*) from refused where source='phone-p01')" 2>/dev/null || echo 0
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
grep "is missing from the store" "$T/daemon.log"
grep -q "seq 250 is missing from the store below the source's position 300: a relay phone is asked for its records after 249" \
  "$T/daemon.log" || fail "the missing record was not noticed"
[ "$(grep -c "is missing from the store" "$T/daemon.log")" -eq 1 ] || fail "a refused record taken for a missing one"
tail -n 1 "$T/sim2.err"
grep -q "acknowledged up to 402," <(tail -n 1 "$T/sim2.err") || fail "the phone's outbox is not empty"

# a third start, the phone holding 1..402 again: the hub resumes after the refused 402
sim_start "$S/p.s" "$T/sim3.err" --profiles gatt,dis --relay "$T/phone.jsonl" --relay-rate 1000
start_daemon "$T/engaged.conf" "$T/daemon.log" || fail "second restart"
for _ in $(seq 1 100); do grep -q "acknowledged up to 402," "$T/sim3.err" && break; sleep 0.1; done
sleep 0.5
kill -TERM "$SIM_PID"; wait "$SIM_PID" || fail "simulator exit"; SIM_PID=""
stop_daemon || fail "daemon exit"
tail -n 1 "$T/sim3.err"
grep -q "acknowledged up to 402," <(tail -n 1 "$T/sim3.err") || fail "the third phone's outbox is not empty"
grep "relay: record .* refused" "$T/daemon.log"
[ "$(grep -c "relay: record 402 refused" "$T/daemon.log")" -eq 1 ] || fail "the refused tail was sent again after the restart"
[ "$(grep -c "relay: record 150 refused" "$T/daemon.log")" -eq 1 ] || fail "seq 150 was sent again"

$PY - "$T/engaged.db" "$T/phone.jsonl" <<'EOP' || fail "stored seqs"
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
seqs = [r[0] for r in con.execute("select seq from events where source='phone-p01'")]
want = [s for s in range(1, 403) if s not in (150, 300, 402)]
assert sorted(seqs) == want, (len(seqs), len(set(seqs)), 250 in seqs)
sent = {json.loads(l)["seq"]: l.rstrip("\n").encode() for l in open(sys.argv[2])}
rows = con.execute("select seq, participant, reason, record from refused"
                   " where source='phone-p01' order by seq").fetchall()
assert [r[0] for r in rows] == [150, 300, 402], rows
for seq, participant, reason, record in rows:
    assert participant == "p01" and reason, (seq, participant, reason)
    assert record == sent[seq], (seq, record, sent[seq])
print("refused:", [(r[0], r[2]) for r in rows])
EOP
echo "PASS: seq 250 asked for again after the restart; 1..402 stored once; refusals kept and not sent again"
