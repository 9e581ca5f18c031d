#!/usr/bin/env bash
# Raising a link's security (docs/ble.md, "Security"): the daemon against tools/blesim devices
# whose Heart Rate Measurement CCCD needs an encrypted link. hr1 answers the CCCD write with
# Insufficient Authentication (a wearable with no key for the hub): the daemon raises the link
# to medium through the simulator's control packet, writes the CCCD again and its heart rate
# events are stored; on every new connection the link starts low again and is raised once.
# hr2 refuses the raise (pairing fails): the retried write is refused again, the daemon logs
# it and goes on with the battery alone, no heart rate event, no loop. The status topic and
# engagectl sources count the raises.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"

ble_conf "$T/engaged.conf" "[source hr1]" "driver = ble" "participant = p01" \
  "address = C4:7C:8D:6A:2F:01" "transport = sim:$S/a.s" \
  "[source hr2]" "driver = ble" "participant = p01" "address = C4:7C:8D:6A:2F:02" \
  "transport = sim:$S/b.s"
WEARABLE=(--profiles gatt,hr,battery --hr-rate 10 --battery-period 1 --hr-security 2)
sim_start "$S/a.s" "$T/sima1.err" "${WEARABLE[@]}" --security-error 0x05
SIMA=$SIM_PID
sim_start "$S/b.s" "$T/simb.err" "${WEARABLE[@]}" --refuse-security
SIMB=$SIM_PID
"$BLESIM" --dump --profiles gatt,hr --hr-security 2 | grep -q "0x2a37.* security 2" \
  || fail "--dump does not show the requirement"

: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/ "$T/status.out" --min 1000000 --seconds 120 > /dev/null &
start_daemon "$T/engaged.conf" "$T/daemon.log"

# hr1: refused, raised, written again, streaming heart rate
wait_status "$T/status.out" hr1 'last["state"] == "streaming" and last["security_raises"] == 1 and "hr" in last["profiles"]' 40
for _ in $(seq 1 50); do
  N=$(sqlite3 "$T/engaged.db" "SELECT COUNT(*) FROM events WHERE source = 'hr1' AND type = 'hr'")
  [ "$N" -ge 10 ] && break; sleep 0.2
done
[ "$N" -ge 10 ] || fail "hr1: $N hr events"
grep -q "ble hr1 (C4:7C:8D:6A:2F:01): Insufficient Authentication; raising the link's security to medium" "$T/daemon.log" \
  || fail "no raise logged for hr1"
# hr2: the raise is refused by the device; the write fails once more and that is final
wait_status "$T/status.out" hr2 'last["state"] == "streaming" and last["security_raises"] == 1 and last["battery"] is not None' 40
grep -q "ble hr2: enabling notifications failed: Permission denied, Insufficient Encryption" "$T/daemon.log" \
  || fail "hr2's refused retry not logged"
sleep 1
[ "$(sqlite3 "$T/engaged.db" "SELECT COUNT(*) FROM events WHERE source = 'hr2' AND type = 'hr'")" -eq 0 ] \
  || fail "hr2 stored heart rate without an encrypted link"
[ "$(sqlite3 "$T/engaged.db" "SELECT COUNT(*) FROM events WHERE source = 'hr2' AND type = 'battery'")" -ge 1 ] \
  || fail "hr2 stored no battery"

# engagectl sources shows the counts
"$ENGAGED_BIN/engagectl" -s "ipc://$T/control" --json sources > "$T/sources.json" || fail "engagectl"
$PY - "$T/sources.json" <<'EOP' || fail "engagectl sources"
import json, sys
rows = {r["source"]: r for r in json.load(open(sys.argv[1]))["sources"]}
assert rows["hr1"]["security_raises"] == 1 and rows["hr2"]["security_raises"] == 1, rows
assert rows["hr1"]["state"] == "streaming", rows
EOP

# a new connection starts low again: one more raise, heart rate again
kill -TERM "$SIMA"; wait "$SIMA" || fail "blesim a exit"
wait_status "$T/status.out" hr1 'last["state"] == "backoff"'
sim_start "$S/a.s" "$T/sima2.err" "${WEARABLE[@]}" --security-error 0x05
SIMA=$SIM_PID
wait_status "$T/status.out" hr1 'last["state"] == "streaming" and last["reconnects"] == 1 and last["security_raises"] == 2' 40
M=$(sqlite3 "$T/engaged.db" "SELECT COUNT(*) FROM events WHERE source = 'hr1' AND type = 'hr'")
sleep 1
[ "$(sqlite3 "$T/engaged.db" "SELECT COUNT(*) FROM events WHERE source = 'hr1' AND type = 'hr'")" -gt "$M" ] \
  || fail "no heart rate after the reconnection"
stop_daemon || fail "daemon exit"
kill -TERM "$SIMA" "$SIMB"; wait "$SIMA" "$SIMB" || fail "blesim exit"

# the simulators saw the raises: hr1's links ended encrypted, hr2's never did
grep -q "closed:.*security level 2" "$T/sima1.err" || { cat "$T/sima1.err"; fail "hr1 link 1 not raised"; }
grep -q "closed:.*security level 2" "$T/sima2.err" || { cat "$T/sima2.err"; fail "hr1 link 2 not raised"; }
grep -q "closed:.*security level 1" "$T/simb.err" || { cat "$T/simb.err"; fail "hr2's link level"; }
[ "$(grep -c "raising the link's security" "$T/daemon.log")" -eq 3 ] || fail "raises logged: $(grep -c "raising the link's security" "$T/daemon.log")"
no_sanitizer_report "$T/daemon.log"
no_sanitizer_report "$T"/sim*.err
echo "ok"
