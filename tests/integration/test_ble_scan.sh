#!/usr/bin/env bash
# LE scanning in the daemon (docs/ble-scan.md) without Bluetooth: a fake controller
# (fake_hci.py) on a Unix SEQPACKET socket stands in for the HCI socket (`hci = sim:PATH`),
# tools/blesim for the device. A source with `connect = scan` is not connected until the
# controller reports its advertisement: before that its status is backoff, "waiting for the
# device's advertisement", with no attempt; after it, it streams, and the first attempt
# comes after the first report. The scanner's commands are disable, parameters, enable, and
# a disable at shutdown. After the link is lost, the source waits for a new advertisement
# however overdue its attempt is. An l2cap source (connect auto) on this kernel logs one line
# that it cannot scan and connects directly (error state, as before). check-config takes the
# new keys and refuses a bad connect value. A controller refusing legacy scanning (Command
# Disallowed) gives one clear line and direct connects.
source "$(dirname "$0")/lib.sh"
BLESIM="$ENGAGED_BIN/tools/blesim"
S=$(mktemp -d /tmp/escanXXXXXX)
trap 'cleanup; rm -rf "$S"' EXIT
fail() {
  echo "FAIL: $*"
  tail -n 40 "$T/daemon.log" 2>/dev/null || true
  exit 1
}

write_conf "$T/engaged.conf" "[source hr1]" "driver = ble" "participant = p01" \
  "address = C4:7C:8D:6A:2F:01" "transport = sim:$S/a.s" "connect = scan" "hci = sim:$S/h.s" \
  "[source watch2]" "driver = ble" "participant = p01" "address = C4:7C:8D:6A:2F:02"
sed -i 's/^log_level = info$/log_level = info\nstatus_interval = 1s/' "$T/engaged.conf"
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"
cp "$T/engaged.conf" "$T/bad.conf"
printf '[source bad]\ndriver = ble\nparticipant = p01\naddress = C4:7C:8D:6A:2F:03\nconnect = sideways\n' >> "$T/bad.conf"
printf '[source f]\ndriver = file\npath = /dev/null\nhci = hci0\n' >> "$T/bad.conf"
rc=0; "$ENGAGED" check-config -c "$T/bad.conf" > "$T/bad.out" 2>&1 || rc=$?
[ "$rc" -eq 78 ] || fail "bad connect: exit $rc"
grep -q 'connect' "$T/bad.out" || { cat "$T/bad.out"; fail "connect message"; }
grep -q '\[source f\] hci: not used by driver file' "$T/bad.out" || { cat "$T/bad.out"; fail "hci message"; }

"$BLESIM" --listen "$S/a.s" --profiles gatt,hr,battery --hr-rate 10 > /dev/null 2> "$T/sim.err" &
SIM=$!
$PY "$ENGAGED_SRC/tests/integration/fake_hci.py" --listen "$S/h.s" --address C4:7C:8D:6A:2F:01 \
  --go "$T/go" --log "$T/hci.log" --first-report "$T/first" &
for _ in $(seq 1 100); do [ -S "$S/a.s" ] && [ -S "$S/h.s" ] && break; sleep 0.05; done
: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/ "$T/status.out" --min 1000000 --seconds 300 > /dev/null &
sleep 0.3
start_daemon "$T/engaged.conf" "$T/daemon.log"

# status EXPR: a Python expression over msgs (hr1's status messages) and last
status() {
  $PY - "$T/status.out" "$1" <<'EOP'
import json, sys
msgs = [json.loads(l)[1] for l in open(sys.argv[1]) if l.startswith('["status/hr1"')]
ok = msgs and eval(sys.argv[2], {}, {"msgs": msgs, "last": msgs[-1]})
sys.exit(0 if ok else 1)
EOP
}
wait_status() { # EXPR [SECONDS]
  for _ in $(seq 1 $((${2:-20} * 5))); do status "$1" && return 0; sleep 0.2; done
  tail -n 3 "$T/status.out"; fail "no status with $1"
}

# 1. scanning, no advertisement: waiting, no attempt, for 3 s of status updates
wait_status 'last["state"] == "backoff" and "advertisement" in (last["error"] or "")'
sleep 3
status 'all(m["attempts"] == 0 and m["state"] == "backoff" for m in msgs) and len(msgs) >= 3' \
  || { tail -n 5 "$T/status.out"; fail "hr1 attempted before its advertisement"; }
grep -q 'ble hr1.*streaming' "$T/daemon.log" && fail "streaming before the advertisement"
# the scanner's commands: disable, parameters (passive, 100 ms / 50 ms), enable
[ "$(sed -n 1,3p "$T/hci.log" | tr '\n' ' ')" = "010c20020000 010b200700a00050000000 010c20020100 " ] \
  || { cat "$T/hci.log"; fail "scan commands"; }
# the l2cap source: one line, then direct connects (error: no Bluetooth here)
[ "$(grep -c 'cannot scan on the default adapter: no Bluetooth in this kernel' "$T/daemon.log")" -eq 1 ] \
  || fail "one line for the default adapter"

# 2. the advertisement: connected after it, streaming
touch "$T/go"
wait_status 'last["state"] == "streaming"'
first=$(cat "$T/first")
status "min(m['time'] for m in msgs if m['attempts'] > 0) >= $first" || fail "attempt before the report"
grep -q 'ble hr1 (C4:7C:8D:6A:2F:01): advertising (RSSI -60 dBm); connecting' "$T/daemon.log" \
  || fail "advertising line"
grep -q 'watch2.*advertis' "$T/daemon.log" && fail "watch2 is not advertising"

# 3. no more advertisements, the device goes: the source waits, however overdue
rm -f "$T/go"
sleep 1.5 # the last report is well before the failure below
kill -TERM $SIM; wait $SIM || true
wait_status 'last["state"] == "backoff"'
sleep 4 # the first backoff delay is about 1 s
"$BLESIM" --listen "$S/a.s" --profiles gatt,hr,battery --hr-rate 10 > /dev/null 2> "$T/sim2.err" &
SIM=$!
sleep 2
status 'last["state"] == "backoff" and last["attempts"] == [m for m in msgs if m["state"] == "streaming"][-1]["attempts"]' \
  || { tail -n 3 "$T/status.out"; fail "reconnected without an advertisement"; }
touch "$T/go"
wait_status 'last["state"] == "streaming" and last["connects"] == 2'

# 4. shutdown disables the scan
stop_daemon || fail "daemon exit"
[ "$(tail -n 1 "$T/hci.log")" = "010c20020000" ] || { tail -n 3 "$T/hci.log"; fail "no disable at shutdown"; }

# 5. a controller refusing legacy scanning (0x0C, as when the kernel uses extended scanning):
# one clear line, and the source connects directly
$PY "$ENGAGED_SRC/tests/integration/fake_hci.py" --listen "$S/r.s" --address C4:7C:8D:6A:2F:01 \
  --go "$T/go" --log "$T/hci2.log" --first-report "$T/first2" --refuse-params 0x0c &
for _ in $(seq 1 100); do [ -S "$S/r.s" ] && break; sleep 0.05; done
rm -f "$T/go"
sed -i "s#^hci = sim:$S/h.s#hci = sim:$S/r.s#" "$T/engaged.conf"
: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/ "$T/status.out" --min 1000000 --seconds 300 > /dev/null &
sleep 0.3
: > "$T/daemon.log"
start_daemon "$T/engaged.conf" "$T/daemon.log"
wait_status 'last["state"] == "streaming"'
grep -q "cannot scan on sim:$S/r.s: controller refused LE Set Scan Parameters: Command Disallowed (0x0c): .*extended scanning.*; 1 source connects without waiting" "$T/daemon.log" \
  || fail "refused scanning line"
[ ! -e "$T/first2" ] || fail "the refusing controller sent reports"
stop_daemon || fail "daemon exit"
kill -TERM $SIM; wait $SIM || true
echo "ok"
