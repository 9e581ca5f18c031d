#!/usr/bin/env bash
# A scanner that stays up but hears nothing (docs/ble-scan.md, Silence): the fake controller
# (fake_hci.py) accepts the scan commands and then sends no report at all while $T/go is
# missing. With `scan_silence = 5s`, a source waiting for its advertisement is held for
# those 5 s, then the scan is restarted (one warning) and the source connects directly
# meanwhile; with the source linked, silence restarts nothing. Once reports flow again the
# source waits for them as before. Where nothing advertises at all the restarts go on with
# growing delays and no further warnings.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"
ble_conf "$T/engaged.conf" "[source hr1]" "driver = ble" "participant = p01" \
  "address = C4:7C:8D:6A:2F:01" "transport = sim:$S/a.s" "connect = scan" "hci = sim:$S/h.s" \
  "scan_silence = 5s"
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"
printf '[source bad]\ndriver = ble\nparticipant = p01\naddress = C4:7C:8D:6A:2F:03\nscan_silence = 2s\n' \
  > "$T/bad.part"
cat "$T/engaged.conf" "$T/bad.part" > "$T/bad.conf"
"$ENGAGED" check-config -c "$T/bad.conf" > "$T/bad.out" 2>&1 && fail "scan_silence 2s accepted"
grep -q 'scan_silence' "$T/bad.out" || { cat "$T/bad.out"; fail "scan_silence message"; }

sim_up() { sim_start "$S/a.s" "$T/sim.err" --profiles gatt,hr,battery --hr-rate 10; }
sim_down() {
  kill -TERM $SIM_PID; wait $SIM_PID || true
  rm -f "$S/a.s"
}
sim_up
$PY "$ENGAGED_SRC/tests/integration/fake_hci.py" --listen "$S/h.s" --address C4:7C:8D:6A:2F:01 \
  --go "$T/go" --log "$T/hci.log" --first-report "$T/first" &
for _ in $(seq 1 100); do [ -S "$S/h.s" ] && break; sleep 0.05; done
: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/hr1 "$T/status.out" --min 1000000 --seconds 300 > /dev/null &
sleep 0.3
t0=$(date +%s%3N)
start_daemon "$T/engaged.conf" "$T/daemon.log"

# status EXPR [SECONDS]: hr1's status messages (msgs, last) make EXPR true within SECONDS (20)
status() { wait_status "$T/status.out" hr1 "$1" "${2:-20}"; }
enables() { grep -c '^010c20020100$' "$T/hci.log" || true; }
warnings() { grep -c "ble: cannot scan on sim:$S/h.s" "$T/daemon.log" || true; }

# 1. up, silent, hr1 waiting: held for the 5 s, then the scan is restarted and hr1 connects
status 'last["state"] == "streaming" and last["connects"] == 1' 30
status "min(m['time'] for m in msgs if m['attempts'] > 0) >= $t0 + 5000" \
  || fail "hr1 attempted before 5 s of silence"
status 'any(m["scan"]["state"] == "retrying" and "no advertising report from any device for 5 s"
            in (m["scan"]["error"] or "") for m in msgs)' || fail "retrying status"
grep -q "ble: cannot scan on sim:$S/h.s: no advertising report from any device for 5 s; 1 source connects without waiting for advertisements; retrying in" \
  "$T/daemon.log" || fail "silence line"
[ -e "$T/first" ] && fail "the controller sent a report"

# 2. back up; hr1 linked: the silence goes on, but nothing waits, so nothing is restarted
status 'last["scan"]["state"] == "up"'
grep -q "ble: scanning on sim:$S/h.s again" "$T/daemon.log" || fail "scanner back line"
sleep 8
[ "$(enables)" -eq 2 ] || { cat "$T/hci.log"; fail "restarted with every source linked"; }
[ "$(warnings)" -eq 1 ] || fail "one warning"
status 'last["state"] == "streaming" and last["connects"] == 1' || fail "hr1 lost its link"

# 3. reports again; the device drops: hr1 waits for its advertisement, then reconnects
touch "$T/go"
sim_down
status 'last["state"] == "backoff"'
sim_up
status 'last["state"] == "streaming" and last["connects"] == 2' 30
[ -e "$T/first" ] || fail "no report was sent"
[ "$(enables)" -eq 2 ] || fail "restarted while reports came in"

# 4. silent again with the device gone: the first restart after reports warns; then nothing
# advertises at all, so the restarts go on (debug lines only), with growing delays
rm -f "$T/go"
sleep 1.5
sim_down
status 'last["scan"]["state"] == "retrying"' 30
[ "$(warnings)" -eq 2 ] || fail "the silence after reports was not a warning"
for _ in $(seq 1 200); do [ "$(enables)" -ge 5 ] && break; sleep 0.2; done
[ "$(enables)" -ge 5 ] || { cat "$T/hci.log"; fail "no further restarts"; }
[ "$(warnings)" -eq 2 ] || fail "repeated silences were logged as warnings"
status 'last["scan"]["failures"] >= 3' || fail "failures count"
stop_daemon || fail "daemon exit"
echo "ok: $(enables) scan enables, $(warnings) warnings"
