#!/usr/bin/env bash
# The queue of nudges a relay phone has not confirmed is bounded (docs/ble.md, "Nudges"): a
# phone that never sends nudge_ack streams 24 days of app use of p02; the daily rule decides
# `send` for each closed day and every nudge is written to the phone. With 16 places, each
# nudge beyond the 16th makes the oldest already-written one give way: status/<source> ends
# with 16 waiting and the rest counted unconfirmed (logged), none dropped unwritten, and the
# phone has had every nudge at least once. The 16 are then written again every
# `nudge_resend` (2 s here), the ones given up never.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"

# 24 days of p02 (Europe/London): a session at noon each day, from 2024-03-01
app_use "$T/phone.jsonl" p02 phone-p02 1709294400000 86400000 24
ble_conf "$T/engaged.conf" "[nudge checkin]" "when = engage.days_since_last_use >= 0" \
  "message = checkin-1" "min_coverage = 0" "repeat_unanswered = yes" "cooldown = 1h" \
  "[source phone-p02]" "driver = ble" "participant = p02" "address = C4:7C:8D:6A:2F:22" \
  "transport = sim:$S/q.s" "nudge_resend = 2s"
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"

: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/phone-p02 "$T/status.out" --min 1000000 --seconds 300 \
  > /dev/null &
# 100 fragments/s: decisions come a few at a time, as days close. Faster, a store stall at the
# start (an ASan build on a busy host) let one batch close 17 days at once, and the 17th nudge
# was dropped while all 16 places still waited for a first write (seen twice in 19 runs).
sim_start "$S/q.s" "$T/sim.err" --profiles gatt,dis --relay "$T/phone.jsonl" \
  --relay-nudges "$T/nudges.jsonl" --relay-rate 100
start_daemon "$T/engaged.conf" "$T/daemon.log"

# every closed day but the last decides a send: 23 (the open 24th day decides nothing)
SENDS=23
wait_status "$T/status.out" phone-p02 \
  "last['relay'] and last['relay']['nudges_sent'] == $SENDS and last['relay']['nudges_waiting'] == 16" 60
$PY - "$T/status.out" "$T/nudges.jsonl" "$SENDS" <<'EOP' || fail "queue bounds"
import json, sys
msgs = [json.loads(l)[1] for l in open(sys.argv[1]) if l.startswith('["status/phone-p02"')]
r, sends = msgs[-1]["relay"], int(sys.argv[3])
assert r["nudges_unconfirmed"] == sends - 16, r
assert r["nudges_dropped"] == 0 and r["nudges_confirmed"] == 0 and r["nudges_expired"] == 0, r
got = {json.loads(l)["id"] for l in open(sys.argv[2])}
assert len(got) == sends, "the phone got %d distinct nudges of %d" % (len(got), sends)
print("queue:", {k: v for k, v in r.items() if k.startswith("nudges_")})
EOP
[ "$(grep -c "given up unconfirmed to make room" "$T/daemon.log")" = $((SENDS - 16)) ] ||
  fail "evictions not logged once each"

# unconfirmed, the 16 waiting are written again every nudge_resend (2 s) on the same link
before=$(wc -l < "$T/nudges.jsonl")
sleep 5
after=$(wc -l < "$T/nudges.jsonl")
[ $((after - before)) -ge 16 ] && [ $((after - before)) -le 48 ] ||
  fail "$((after - before)) deliveries in 5 s with nudge_resend = 2s (16 waiting)"
$PY - "$T/nudges.jsonl" "$before" <<'EOP' || fail "resent nudges"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
new = lines[int(sys.argv[2]):]
first = []                      # ids in the order of their first delivery
for n in lines:
    if n["id"] not in first:
        first.append(n["id"])
waiting = set(first[-16:])      # the 7 oldest were given up
assert {n["id"] for n in new} <= waiting, "a nudge given up was written again"
d = [n["delivery"] for n in lines]
assert d == sorted(set(d)), "delivery numbers do not grow"
EOP
wait_status "$T/status.out" phone-p02 "last['relay']['nudges_resent'] >= 16"
kill -TERM "$SIM_PID"; wait "$SIM_PID" || fail "blesim exit"; SIM_PID=""
stop_daemon || fail "daemon exit"
