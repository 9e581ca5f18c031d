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
# Disallowed) gives one clear line and direct connects, and is retried quietly.
# Resolvable private addresses: hr3 is configured with its identity address and its IRK (the
# Core spec's sample key, in BlueZ's order) and the controller reports only an RPA made with
# that key (70:81:94:0D:FB:AA): hr3 connects and its status shows the RPA; hr4's key resolves
# neither that RPA nor another key's (5A:1B:2C:D7:44:F1), so hr4 never attempts; the key never
# reaches the log. Scanner retry: the controller goes away mid-scan (its socket closed, then
# removed): one warning, the sources connect directly, status/<source> and engagectl show the
# scanner retrying; offered again, the scanner comes back, the sources wait for advertisements
# again, and a device that lost its link reconnects after its advertisement.
source "$(dirname "$0")/lib.sh"
BLESIM="$ENGAGED_BIN/tools/blesim"
S=$(mktemp -d /tmp/escanXXXXXX)
trap 'cleanup; rm -rf "$S"' EXIT

IRK1=9B7D390AA610103405ADC857A33402EC   # ec0234a3...9b of Vol 3 Part H D.7, as BlueZ writes it
IRK3=E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0
RPA1=70:81:94:0D:FB:AA                  # made with IRK1 (prand 0x708194)
RPA2=5A:1B:2C:D7:44:F1                  # made with FFEEDDCC...1100, configured nowhere
write_conf "$T/engaged.conf" "[source hr1]" "driver = ble" "participant = p01" \
  "address = C4:7C:8D:6A:2F:01" "transport = sim:$S/a.s" "connect = scan" "hci = sim:$S/h.s" \
  "[source watch2]" "driver = ble" "participant = p01" "address = C4:7C:8D:6A:2F:02" \
  "[source hr3]" "driver = ble" "participant = p01" "address = C4:7C:8D:6A:2F:03" \
  "transport = sim:$S/a.s" "connect = scan" "hci = sim:$S/h.s" "irk = $IRK1" \
  "[source hr4]" "driver = ble" "participant = p01" "address = C4:7C:8D:6A:2F:04" \
  "transport = sim:$S/none.s" "connect = scan" "hci = sim:$S/h.s" "irk = $IRK3"
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
  --address $RPA1 --address $RPA2 --go "$T/go" --log "$T/hci.log" --first-report "$T/first" \
  --down "$T/hci-down" &
for _ in $(seq 1 100); do [ -S "$S/a.s" ] && [ -S "$S/h.s" ] && break; sleep 0.05; done
: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/ "$T/status.out" --min 1000000 --seconds 300 > /dev/null &
sleep 0.3
start_daemon "$T/engaged.conf" "$T/daemon.log"

# status EXPR: a Python expression over msgs (the status messages of $SRC, hr1 by default)
# and last
status() {
  $PY - "$T/status.out" "$1" "${SRC:-hr1}" <<'EOP'
import json, sys
msgs = [json.loads(l)[1] for l in open(sys.argv[1])
        if l.startswith('["status/%s"' % sys.argv[3])]
ok = msgs and eval(sys.argv[2], {}, {"msgs": msgs, "last": msgs[-1]})
sys.exit(0 if ok else 1)
EOP
}
wait_status() { # EXPR [SECONDS]
  for _ in $(seq 1 $((${2:-20} * 5))); do status "$1" && return 0; sleep 0.2; done
  tail -n 3 "$T/status.out"; fail "no status with $1"
}
# held ATTEMPTS WHY: hr1 waits in backoff, with that many attempts (a Python expression)
held() {
  status "last['state'] == 'backoff' and last['attempts'] == $1" \
    || { tail -n 3 "$T/status.out"; fail "$2"; }
}
# readvertise N: advertisements again; hr1 and hr3 stream on their Nth link
readvertise() {
  touch "$T/go"
  wait_status 'last["state"] == "streaming" and last["connects"] == '"$1"
  SRC=hr3 wait_status 'last["state"] == "streaming" and last["connects"] == '"$1"
}
attempts() { # hr1's attempts, in its last status
  $PY - "$T/status.out" <<'EOP'
import json, sys
print([json.loads(l)[1] for l in open(sys.argv[1]) if l.startswith('["status/hr1"')][-1]["attempts"])
EOP
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
# hr3 through the RPA of its key: connected, the RPA in its status, named by its identity
SRC=hr3 wait_status 'last["state"] == "streaming" and last["scan"]["rpa"] == "'$RPA1'"'
SRC=hr3 status 'last["address"] == "C4:7C:8D:6A:2F:03" and last["scan"]["state"] == "up"' \
  || fail "hr3 status"
grep -q "ble hr3 (C4:7C:8D:6A:2F:03): advertises with resolvable private addresses (now $RPA1" \
  "$T/daemon.log" || fail "hr3 resolved line"
# hr4: its key resolves neither RPA, so no attempt, still waiting
sleep 1
SRC=hr4 status 'all(m["attempts"] == 0 for m in msgs) and "advertisement" in last["error"]' \
  || { SRC=hr4 status 'print(last)' || true; fail "hr4 attempted on another key's advertisement"; }
grep -q 'hr4.*advertis' "$T/daemon.log" && fail "hr4 matched an advertisement"
# the key is a secret: not in the log, in either order
grep -qi -e "$IRK1" -e "ec0234a357c8ad05341010a60a397d9b" -e "$IRK3" "$T/daemon.log" \
  && fail "an irk in the log"

# 3. no more advertisements, the device goes: the source waits, however overdue
rm -f "$T/go"
sleep 1.5 # the last report is well before the failure below
kill -TERM $SIM; wait $SIM || true
wait_status 'last["state"] == "backoff"'
sleep 4 # the first backoff delay is about 1 s
"$BLESIM" --listen "$S/a.s" --profiles gatt,hr,battery --hr-rate 10 > /dev/null 2> "$T/sim2.err" &
SIM=$!
sleep 2
held '[m for m in msgs if m["state"] == "streaming"][-1]["attempts"]' \
  "reconnected without an advertisement"
readvertise 2

# 4. the controller goes away mid-scan: one warning, the sources connect directly meanwhile,
# the scanner is retried (the socket is gone: those attempts fail quietly)
touch "$T/hci-down"
wait_status 'last["scan"]["state"] == "retrying" and last["scan"]["next_attempt"] > last["time"]'
status 'any(m["scan"]["error"] == "HCI socket: closed" for m in msgs) and last["state"] == "streaming"' \
  || fail "retrying status"
"$ENGAGED_BIN/engagectl" -s "ipc://$T/control" --json sources > "$T/sources.json" || fail "engagectl"
$PY - "$T/sources.json" <<'EOP' || fail "engagectl sources"
import json, sys
rows = {r["source"]: r for r in json.load(open(sys.argv[1]))["sources"]}
assert rows["hr1"]["scan"] == "retrying" and rows["hr1"]["scan_retry_ts"] > 0, rows
assert rows["hr1"]["state"] == "streaming" and rows["watch2"]["scan"] == "retrying", rows
assert rows["hr4"]["state"] == "backoff" and "seq" not in rows["hr4"], rows
EOP
"$ENGAGED_BIN/engagectl" -s "ipc://$T/control" sources | grep -q 'retrying' || fail "engagectl table"
rm -f "$T/go"
kill -TERM $SIM; wait $SIM || true
# no advertisement, yet attempts: connecting directly while the scanner is down
a0=$(attempts)
wait_status "last['attempts'] >= $a0 + 2 and last['scan']['state'] == 'retrying'"
[ "$(grep -c "ble: cannot scan on sim:$S/h.s" "$T/daemon.log")" -eq 1 ] || fail "one line for the lost scanner"
grep -q "ble: cannot scan on sim:$S/h.s: HCI socket: closed; 3 sources connect without waiting for advertisements; retrying in" \
  "$T/daemon.log" || fail "lost scanner line"
# the controller is back: the scanner too, with one line; the sources wait again
rm -f "$T/hci-down"
wait_status 'last["scan"]["state"] == "up" and last["scan"]["error"] is None' 40
[ "$(grep -c "ble: scanning on sim:$S/h.s again" "$T/daemon.log")" -eq 1 ] || fail "scanner back line"
[ "$(grep -c "ble: cannot scan on sim:$S/h.s" "$T/daemon.log")" -eq 1 ] || fail "retries were logged"
"$BLESIM" --listen "$S/a.s" --profiles gatt,hr,battery --hr-rate 10 > /dev/null 2> "$T/sim3.err" &
SIM=$!
sleep 3 # any attempt due in these 3 s is held: no advertisement since the last failure
a1=$(attempts)
sleep 2
held "$a1" "connected without an advertisement after the scanner came back"
readvertise 3

# 5. shutdown disables the scan
stop_daemon || fail "daemon exit"
[ "$(tail -n 1 "$T/hci.log")" = "010c20020000" ] || { tail -n 3 "$T/hci.log"; fail "no disable at shutdown"; }

# 6. a controller refusing legacy scanning (0x0C, as when the kernel uses extended scanning):
# one clear line, the sources connect directly, and the scanner is retried without more lines
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
grep -q "cannot scan on sim:$S/r.s: controller refused LE Set Scan Parameters: Command Disallowed (0x0c): .*extended scanning.*; 3 sources connect without waiting" "$T/daemon.log" \
  || fail "refused scanning line"
for _ in $(seq 1 50); do [ "$(grep -c '^010b2007' "$T/hci2.log")" -ge 3 ] && break; sleep 0.2; done
[ "$(grep -c '^010b2007' "$T/hci2.log")" -ge 3 ] || fail "the refused scanner was not retried"
[ "$(grep -c "cannot scan on sim:$S/r.s" "$T/daemon.log")" -eq 1 ] || fail "one line for the refusals"
[ ! -e "$T/first2" ] || fail "the refusing controller sent reports"
stop_daemon || fail "daemon exit"
kill -TERM $SIM; wait $SIM || true
echo "ok"
