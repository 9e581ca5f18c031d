#!/usr/bin/env bash
# Nudges to a relay phone are written until the phone confirms them (docs/relay-profile.md,
# "Nudges"): a phone (tools/blesim --relay) streams a day of app use of p01, the nudge rule
# decides `send` as the day closes and the hub writes the nudge to the phone. A phone that
# does not answer with nudge_ack gets it again after the daemon restarts (read back from the
# store: nudges_restored, although the data it was decided on is three days old: the 24 hours
# count from when the hub decided) and after it reconnects (a new delivery number each time:
# nudges_resent). A phone that answers (--relay-ack) sends a nudge_ack `delivered` record,
# stored like any record; from then on the hub no longer writes that nudge, whatever the
# reconnections or restarts (nudges_confirmed, nothing waiting, nothing restored).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"

# The participant's zone is chosen so that its last local midnight was about 12 hours ago:
# the phone's records (an unlock, the intervention app in front for 5 minutes, the screen off,
# every 2 hours from 8 h before the midnight three days before that to 6 h after it) close
# one day, whose `send` decision the hub makes when the phone sends them, now: a backlog
# (`late`), queued again after a daemon restart all the same.
TZ_P=$($PY -c 'import time; h = time.gmtime().tm_hour; o = (12 - h + 12) % 24 - 12
print("Etc/GMT%+d" % -o if o else "Etc/GMT")')
# UTC ms of that midnight
MIDNIGHT=$($PY - "$TZ_P" <<'EOP'
import sys, time
tz = sys.argv[1]
off = 0 if tz == "Etc/GMT" else -int(tz[7:])      # Etc/GMT-5 is UTC+5
local = int(time.time()) + off * 3600
print((local - local % 86400 - off * 3600) * 1000)
EOP
)
app_use "$T/phone.jsonl" p01 phone-p01 $((MIDNIGHT - 3 * 86400000 - 8 * 3600000)) 7200000 8

ble_conf "$T/engaged.conf" "[nudge checkin]" "when = engage.days_since_last_use >= 0" \
  "message = checkin-1" "min_coverage = 0" "[source phone-p01]" "driver = ble" \
  "participant = p01" "address = C4:7C:8D:6A:2F:21" "transport = sim:$S/p.s"
# p01 lives in that zone
sed -i "0,/^tz = America\/New_York$/s||tz = $TZ_P|" "$T/engaged.conf"
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"

start_sim() { # [--relay-ack]
  sim_start "$S/p.s" "$T/sim.err" --profiles gatt,dis --relay "$T/phone.jsonl" \
    --relay-nudges "$T/nudges.jsonl" --relay-rate 500 "$@"
}
stop_sim() {
  kill -TERM "$SIM_PID"; wait "$SIM_PID" || fail "blesim exit"; SIM_PID=""
  rm -f "$S/p.s"
}
# deliveries ID: how many times the phone got nudge ID
deliveries() { grep -c "\"id\":\"$1\"" "$T/nudges.jsonl" 2>/dev/null || true; }
streams() { grep -c "phone-p01 (.*): streaming (" "$T/daemon.log" || true; }
# the last status/phone-p01 message's relay object, field $1
relay_field() {
  $PY - "$T/status.out" "$1" <<'EOP'
import json, sys
msgs = [json.loads(l)[1] for l in open(sys.argv[1]) if l.startswith('["status/phone-p01"')]
r = [m["relay"] for m in msgs if m.get("relay")]
print(r[-1][sys.argv[2]] if r else -1)
EOP
}

: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/phone-p01 "$T/status.out" --min 1000000 --seconds 300 \
  > /dev/null &
start_sim
start_daemon "$T/engaged.conf" "$T/daemon.log"

# 1. the phone does not confirm: the first nudge arrives once per connection
for _ in $(seq 1 200); do [ -s "$T/nudges.jsonl" ] && break; sleep 0.1; done
[ -s "$T/nudges.jsonl" ] || fail "no nudge reached the phone"
ID=$($PY -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["id"])' "$T/nudges.jsonl")
[ "$(deliveries "$ID")" = 1 ] || fail "nudge $ID delivered $(deliveries "$ID") times on one link"

# 2. the daemon restarts: the unconfirmed nudge, read back from the store, is written again
stop_daemon || fail "daemon exit"
start_daemon "$T/engaged.conf" "$T/daemon.log"
for _ in $(seq 1 200); do [ "$(deliveries "$ID")" -ge 2 ] && break; sleep 0.1; done
[ "$(deliveries "$ID")" -ge 2 ] || fail "nudge $ID not written again after the daemon restart"
grep -q "relay: 1 nudges not confirmed before the restart are queued again" "$T/daemon.log" ||
  fail "no restored nudge logged"
for _ in $(seq 1 50); do [ "$(relay_field nudges_restored)" = 1 ] && break; sleep 0.1; done
[ "$(relay_field nudges_restored)" = 1 ] || fail "nudges_restored is $(relay_field nudges_restored)"

# 3. the phone reconnects, still without confirming: written again
n=$(streams)
first=$(deliveries "$ID")
stop_sim
start_sim
for _ in $(seq 1 200); do [ "$(deliveries "$ID")" -gt "$first" ] && break; sleep 0.1; done
[ "$(deliveries "$ID")" -gt "$first" ] || fail "nudge $ID not written again after the reconnection"
[ "$(streams)" -gt "$n" ] || fail "no new link"
$PY - "$T/nudges.jsonl" "$ID" <<'EOP' || fail "delivery numbers"
import json, sys
d = [json.loads(l)["delivery"] for l in open(sys.argv[1]) if json.loads(l)["id"] == sys.argv[2]]
assert d == sorted(set(d)), "delivery numbers of %s do not grow: %s" % (sys.argv[2], d)
EOP
for _ in $(seq 1 50); do [ "$(relay_field nudges_resent)" -ge 1 ] && break; sleep 0.1; done
[ "$(relay_field nudges_resent)" -ge 1 ] || fail "nudges_resent not counted"

# 4. a phone that confirms: its nudge_ack is stored, the hub counts the nudge confirmed
stop_sim
start_sim --relay-ack
ackq="SELECT COUNT(*) FROM events WHERE source = 'phone-p01' AND type = 'nudge_ack' AND body LIKE '%\"nudge\":\"$ID\"%'"
for _ in $(seq 1 200); do [ "$(sqlite3 "$T/engaged.db" "$ackq")" -ge 1 ] && break; sleep 0.1; done
[ "$(sqlite3 "$T/engaged.db" "$ackq")" = 1 ] || fail "the phone's nudge_ack for $ID was not stored once"
for _ in $(seq 1 50); do
  [ "$(relay_field nudges_confirmed)" -ge 1 ] && [ "$(relay_field nudges_waiting)" = 0 ] && break
  sleep 0.1
done
[ "$(relay_field nudges_confirmed)" -ge 1 ] || fail "nudges_confirmed not counted"
[ "$(relay_field nudges_waiting)" = 0 ] || fail "$(relay_field nudges_waiting) nudges still wait"

# 5. confirmed: not written again after further reconnections, nor after a restart
before=$(deliveries "$ID")
stop_sim
n=$(streams)
start_sim
for _ in $(seq 1 100); do [ "$(streams)" -gt "$n" ] && break; sleep 0.1; done
[ "$(streams)" -gt "$n" ] || fail "no new link"
sleep 2
[ "$(deliveries "$ID")" = "$before" ] || fail "confirmed nudge $ID written again"
stop_daemon || fail "daemon exit"
start_daemon "$T/engaged.conf" "$T/daemon.log"
n=$(streams)
for _ in $(seq 1 100); do [ "$(streams)" -gt "$n" ] && break; sleep 0.1; done
sleep 2
[ "$(deliveries "$ID")" = "$before" ] || fail "confirmed nudge $ID written again after a restart"
[ "$(grep -c "nudges not confirmed before the restart" "$T/daemon.log")" = 1 ] ||
  fail "a confirmed nudge was restored"
stop_sim
stop_daemon || fail "daemon exit"
echo "nudge resend ok: $ID delivered $before times before its nudge_ack (first link, after a" \
  "restart, after a reconnection, to the confirming phone), none after"
