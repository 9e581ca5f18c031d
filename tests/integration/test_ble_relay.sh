#!/usr/bin/env bash
# The engaged relay service end to end: the daemon's BLE source (transport sim:) reads a phone
# simulated by tools/blesim --relay, which streams a recording of phone events (app, screen,
# ema, dwai, battery; seq 1..N; two long ema records) after the hub's RESUME, at varying MTUs
# (fragmented records), every other simulator corrupting a fragment now and then (CRC errors).
# The simulator is killed (SIGKILL) and restarted at random points several times and the daemon
# is killed once: at the end the store holds every valid record exactly once (count, seq 1..N
# without the refused ones), replaying the store gives the same feature records and decisions
# as `engaged replay` of the recording, two records the hub refuses (one in the middle, the
# last one) are acknowledged rather than resent forever (the phone's outbox ends empty), and
# the nudge rule's `send` decision arrives at the phone over the Nudges characteristic.
source "$(dirname "$0")/lib.sh"
BLESIM="$ENGAGED_BIN/tools/blesim"
S=$(mktemp -d /tmp/erlyXXXXXX)   # [source] transport holds 31 bytes: a short directory
trap 'cleanup; rm -rf "$S"' EXIT
SIM_PID=""
N=1500

# the recording: N phone records of p01 over six days
$PY - "$T/rec.jsonl" "$N" <<'EOP'
import json, random, sys
out, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
t = 1709251200000 + 13 * 3600000  # 2024-03-01T13:00Z
apps = ["org.example.mindapp", "com.social", "com.news"]
with open(out, "w") as f:
    for seq in range(1, n + 1):
        t += rnd.randint(60, 600) * 1000
        k = rnd.random()
        ev = {"ts": t, "participant": "p01", "source": "phone-p01", "seq": seq}
        if k < 0.4:
            ev.update(type="app", app=rnd.choice(apps), state="foreground")
        elif k < 0.75:
            ev.update(type="screen", state=rnd.choice(["on", "off", "unlocked", "locked"]))
        elif k < 0.85:
            ev.update(type="ema", prompt="mood",
                      state=rnd.choice(["delivered", "opened", "answered"]),
                      items={"mood": rnd.randint(1, 5)})
        elif k < 0.92:
            ev.update(type="dwai", items=[rnd.randint(1, 5) for _ in range(6)])
        else:
            ev.update(type="battery", pct=rnd.randint(5, 100))
        if seq in (100, 900):  # long records: several fragments even at MTU 517
            ev = {"ts": t, "participant": "p01", "source": "phone-p01", "seq": seq,
                  "type": "ema", "prompt": "mood", "state": "answered",
                  "items": {"mood": 3, "note": "x" * (1500 if seq == 100 else 3900)}}
        f.write(json.dumps(ev, separators=(",", ":")) + "\n")
EOP
# what the phone sends: the same, but seq 700 and N are records the hub must refuse (a type
# a phone does not send; a wrong participant)
BAD1=700
$PY - "$T/rec.jsonl" "$T/phone.jsonl" "$T/valid.jsonl" "$BAD1" "$N" <<'EOP'
import json, sys
src, phone, valid, bad1, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
with open(src) as f, open(phone, "w") as p, open(valid, "w") as v:
    for line in f:
        ev = json.loads(line)
        if ev["seq"] == bad1:
            line = json.dumps({"ts": ev["ts"], "participant": "p01", "source": "phone-p01",
                               "seq": bad1, "type": "hr", "bpm": 60}) + "\n"
        elif ev["seq"] == n:
            ev["participant"] = "p99"
            line = json.dumps(ev) + "\n"
        else:
            v.write(line)
        p.write(line)
EOP
WANT=$((N - 2))

cat > "$T/engaged.conf" <<EOC
[daemon]
log_level = info
status_interval = 1s
[study]
seed = 3
[store]
path = $T/engaged.db
batch_delay = 20ms
[publish]
endpoint = ipc://$T/feed
[control]
endpoint = ipc://$T/control
[ingest]
endpoint = ipc://$T/ingest
[participant p01]
tz = America/New_York
intervention_apps = org.example.mindapp
[nudge checkin]
when = engage.days_since_last_use >= 0
message = checkin-1
[source phone-p01]
driver = ble
participant = p01
address = C4:7C:8D:6A:2F:11
transport = sim:$S/p.s
EOC
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"

MTUS=(517 64 23 185)
SIM_RUNS=0
start_sim() {
  local mtu=${MTUS[$((RANDOM % ${#MTUS[@]}))]} corrupt=0
  # every other simulator, the first included, also corrupts a fragment now and then (CRC
  # errors: new RESUMEs)
  [ $((SIM_RUNS++ % 2)) = 0 ] && corrupt=$((RANDOM % 100 + 50))
  echo "simulator at MTU $mtu, corrupting every fragment number $corrupt (0: none)" >> "$T/sim.err"
  "$BLESIM" --listen "$S/p.s" --profiles gatt,dis --mtu "$mtu" --relay "$T/phone.jsonl" \
    --relay-nudges "$T/nudges.jsonl" --relay-rate 500 --relay-corrupt "$corrupt" \
    --relay-dropped 3 \
    > /dev/null 2>> "$T/sim.err" &
  SIM_PID=$!
  for _ in $(seq 1 100); do [ -S "$S/p.s" ] && return 0; sleep 0.05; done
  fail "blesim did not listen"
}
stored() {
  db_value "$T/engaged.db" "select count(*) from events where source='phone-p01'" 2>/dev/null || echo 0
}

start_sim
: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/phone-p01 "$T/status.out" --min 1000000 --seconds 300 \
  > /dev/null &
start_daemon "$T/engaged.conf" "$T/daemon.log"
SIM_KILLS=0
STREAMS=0
DAEMON_KILLED=0
while [ "$SIM_KILLS" -lt 5 ] && [ "$(stored)" -lt "$WANT" ]; do
  # once the (re)connected phone streams again, at a random point
  # (the first one after 300 records at least, so that it has corrupted some fragments)
  before=$(stored)
  [ "$SIM_KILLS" = 0 ] && before=300
  for _ in $(seq 1 150); do [ "$(stored)" -gt "$before" ] && break; sleep 0.1; done
  sleep "0.$((RANDOM % 6))"
  kill -9 "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true
  rm -f "$S/p.s"
  SIM_KILLS=$((SIM_KILLS + 1))
  echo "killed the simulator ($SIM_KILLS) with $(stored) stored"
  if [ "$DAEMON_KILLED" = 0 ] && [ "$SIM_KILLS" = 2 ]; then
    kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_KILLED=1
    echo "killed the daemon with $(stored) stored"
    start_daemon "$T/engaged.conf" "$T/daemon.log"
  fi
  STREAMS=$(grep -c "streaming (" "$T/daemon.log" || true)
  start_sim
done
[ "$DAEMON_KILLED" = 1 ] || fail "the stream ended before the daemon was killed"
for _ in $(seq 1 600); do [ "$(stored)" -ge "$WANT" ] && break; sleep 0.1; done
[ "$(stored)" -eq "$WANT" ] || fail "$(stored) of $WANT records stored"
# the last record is refused: the phone's outbox must end empty (acknowledged up to N)
# the last simulator (the phone's outbox starts full again) must be connected to hear the
# RESUME that says everything is processed
for _ in $(seq 1 300); do
  [ "$(grep -c "streaming (" "$T/daemon.log" || true)" -gt "$STREAMS" ] && break; sleep 0.1
done
sleep 1
# the phone's Status, asked for at each connection, is in status/<source> (the simulated phone
# reports 3 records discarded unsent), with the relay's counters
for _ in $(seq 1 50); do grep -q '"phone_dropped":3' "$T/status.out" && break; sleep 0.1; done
$PY - "$T/status.out" "$N" <<'EOP' || fail "status/phone-p01"
import json, sys
msgs = [json.loads(l)[1] for l in open(sys.argv[1]) if l.startswith('["status/phone-p01"')]
r = [m["relay"] for m in msgs if m.get("relay") and m["relay"].get("phone_status")]
assert r, "no status/phone-p01 message with the phone's Status (%d messages)" % len(msgs)
last = r[-1]
assert last["phone_dropped"] == 3 and last["phone_newest"] == int(sys.argv[2]), last
assert not last["phone_paused"] and not last["phone_outbox_full"], last
assert isinstance(last["phone_pending"], int) and last["records"] > 0 and last["acks"] > 0, last
assert last["resumes"] >= 1 and msgs[-1]["record"] is None, msgs[-1]
print("status/phone-p01:", json.dumps(last))
EOP
kill -TERM "$SIM_PID"; wait "$SIM_PID" || fail "blesim exit"; SIM_PID=""
stop_daemon || fail "daemon exit"
grep -q "acknowledged up to $N," <(tail -n 1 "$T/sim.err") || { tail -n 3 "$T/sim.err"; fail "the phone's outbox is not empty at the end"; }
grep -Eq ", [1-9][0-9]* status requests" <(tail -n 1 "$T/sim.err") ||
  fail "the hub did not ask the phone for its Status"
grep -q "relay: the phone has discarded 3 records unsent" "$T/daemon.log" ||
  fail "the phone's losses are not logged"

# each valid record exactly once, seq 1..N without the refused ones
$PY - "$T/engaged.db" "$BAD1" "$N" <<'EOP' || fail "stored seqs"
import sqlite3, sys
db, bad1, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seqs = [r[0] for r in sqlite3.connect(db).execute(
    "select seq from events where source='phone-p01' order by id")]
want = [s for s in range(1, n + 1) if s not in (bad1, n)]
assert seqs == want, "stored seqs differ: %d stored, first difference at %s" % (
    len(seqs), next((i for i, (a, b) in enumerate(zip(seqs, want)) if a != b), None))
EOP
grep -q "record $BAD1 refused" "$T/daemon.log" || fail "no refusal logged for seq $BAD1"
# the refused records are kept in the store, once each, as the phone sent them
$PY - "$T/engaged.db" "$T/phone.jsonl" "$BAD1" "$N" <<'EOP' || fail "refused table"
import json, sqlite3, sys
db, phone, bad1, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sent = {json.loads(l)["seq"]: l.rstrip("\n").encode() for l in open(phone)}
rows = sqlite3.connect(db).execute("select seq, participant, reason, record from refused"
                                   " where source='phone-p01' order by seq").fetchall()
assert [r[0] for r in rows] == [bad1, n], [r[0] for r in rows]
assert "type hr" in rows[0][2] and "participant" in rows[1][2], rows
assert all(r[1] == "p01" and r[3] == sent[r[0]] for r in rows), rows
EOP
grep -q "relay stream: .*CRC.*asking the phone to resume" "$T/daemon.log" ||
  fail "no CRC error (and RESUME) seen"

# the store replays to the feature records a replay of the recording gives, byte for byte, and
# to the same decisions (but for `late`: the store keeps when each event arrived, and these
# events of 2024 arrived now)
"$ENGAGED" replay -c "$T/engaged.conf" --out "$T/from-file.jsonl" "$T/valid.jsonl" 2> /dev/null
"$ENGAGED" replay -c "$T/engaged.conf" --out "$T/from-store.jsonl" "$T/engaged.db" 2> /dev/null
grep -v '"decision":' "$T/from-file.jsonl" > "$T/features-file.jsonl" || true
grep -v '"decision":' "$T/from-store.jsonl" > "$T/features-store.jsonl" || true
[ -s "$T/features-file.jsonl" ] || fail "replay of the recording wrote no feature records"
cmp "$T/features-file.jsonl" "$T/features-store.jsonl" || fail "replay of the store differs from replay of the recording"
$PY - "$T/from-file.jsonl" "$T/from-store.jsonl" <<'EOP' || fail "decisions differ"
import json, sys
def dec(p):
    out = []
    for l in open(p):
        if '"decision":' in l:
            d = json.loads(l)
            d.pop("late")
            out.append(d)
    return out
a, b = dec(sys.argv[1]), dec(sys.argv[2])
assert a and a == b, (len(a), len(b))
EOP

# the send decision reached the phone
$PY - "$T/from-file.jsonl" "$T/nudges.jsonl" <<'EOP' || fail "nudges"
import json, sys
sent = [json.loads(l) for l in open(sys.argv[1]) if '"decision":"send"' in l]
got = [json.loads(l) for l in open(sys.argv[2])]
assert sent, "no send decision in the replay"
ids = {g["id"] for g in got}
for s in sent:
    assert s["id"] in ids, "nudge %s did not reach the phone (got %s)" % (s["id"], sorted(ids))
for g in got:
    assert g["participant"] == "p01" and g["template"] == "checkin-1", g
print("nudges at the phone:", len(got), "for", len(sent), "send decisions")
EOP
echo "relay ok: $WANT records stored once across $SIM_KILLS simulator kills and a daemon kill; $(tail -n 1 "$T/sim.err")"
