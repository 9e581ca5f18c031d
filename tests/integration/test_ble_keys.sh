#!/usr/bin/env bash
# Bonding keys kept by the daemon (docs/ble.md "Bonding keys"), end to end without Bluetooth:
# a fake kernel management socket (fake_mgmt.py, `[daemon] ble_mgmt = sim:PATH`), a fake
# controller for the scanner (fake_hci.py, `hci = sim:PATH`) and tools/blesim for the device.
# hr3 scans (connect = scan) and has no `irk` of its own; the controller reports it only under a
# resolvable private address (RPA1, made with IRK1).
#  1. At start the keeper lists the controllers, makes controller 0 bondable and loads the key
#     file's keys: no identity resolving key, the one long term key, byte for byte. hr3 waits:
#     nothing resolves its address.
#  2. The kernel reports that hr3 bonded: its identity resolving key (IRK1) and a new long term
#     key. Both land in the key file (0600; the IRK as `[source] irk` takes it), the running
#     scan resolves RPA1 with the new key, and hr3 connects and streams. Just Works pairing is
#     confirmed for hr3 and refused for another device.
#  3. The kernel side closes: one warning; 2 s later the keeper opens the socket again and the
#     new session gets every key held (the IRK and both LTKs). Then the kernel goes away for a
#     while (its socket removed): engagectl shows the keeper retrying, with the reason and the
#     next attempt; once it is back, a third session gets every key again.
#  4. A restart of the daemon: the scan uses the kept IRK from the start and hr3 streams.
#  5. check-config refuses a bad ble_mgmt value.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"
mkdir "$S/ctl"

IRK1=9b7d390aa610103405adc857a33402ec   # as BlueZ writes it (wire order); tests/unit/test_ble_rpa.c
RPA1=70:81:94:0D:FB:AA                  # made with IRK1
RPA1_WIRE=aafb0d948170
HR3_WIRE=032f6a8d7cc4                   # C4:7C:8D:6A:2F:03, wire order
LTK_FILE='{"controller": 0, "address": "C4:7C:8D:6A:2F:03", "address_type": "public", "key_type": 2, "central": true, "enc_size": 16, "ediv": 4660, "rand": "a0a1a2a3a4a5a6a7", "value": "00112233445566778899aabbccddeeff"}'
LTK_FILE_WIRE="${HR3_WIRE}01020110 3412 a0a1a2a3a4a5a6a7 00112233445566778899aabbccddeeff"
# the kernel's New Long Term Key for hr3 in the other role (the key the hub handed over)
LTK_NEW_WIRE="${HR3_WIRE}01030010 0000 0102030405060708 f0e0d0c0b0a090807060504030201000"

ble_conf "$T/engaged.conf" "[source hr3]" "driver = ble" "participant = p01" \
  "address = C4:7C:8D:6A:2F:03" "transport = sim:$S/a.s" "connect = scan" "hci = sim:$S/h.s"
sed -i "s|^status_interval = 1s$|&\nble_mgmt = sim:$S/m.s|" "$T/engaged.conf"
"$ENGAGED" check-config -c "$T/engaged.conf" > /dev/null || fail "check-config"
printf '{"engaged_ble_keys": 1, "keys": [%s]}\n' "$LTK_FILE" > "$T/engaged.db.ble-keys"
chmod 600 "$T/engaged.db.ble-keys"

sim_start "$S/a.s" "$T/sim.err" --profiles gatt,hr,battery --hr-rate 10
touch "$T/go"
$PY "$ENGAGED_SRC/tests/integration/fake_hci.py" --listen "$S/h.s" --address $RPA1 \
  --go "$T/go" --log "$T/hci.log" --first-report "$T/first" &
$PY "$ENGAGED_SRC/tests/integration/fake_mgmt.py" --listen "$S/m.s" --log "$T/mgmt.log" \
  --ctl "$S/ctl" --controller 0 &
for _ in $(seq 1 100); do [ -S "$S/h.s" ] && [ -S "$S/m.s" ] && break; sleep 0.05; done
: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/ "$T/status.out" --min 1000000 --seconds 300 > /dev/null &
sleep 0.3
start_daemon "$T/engaged.conf" "$T/daemon.log"

# commands SESSION: the commands of that session, "OPCODE:INDEX:PARAMS" per line
commands() {
  $PY - "$T/mgmt.log" "$1" <<'EOP'
import json, sys
for l in open(sys.argv[1]):
    c = json.loads(l)
    if c["session"] == int(sys.argv[2]):
        print("%04x:%d:%s" % (c["op"], c["index"], c["params"]))
EOP
}
wait_commands() { # SESSION N: until the session has N commands
  for _ in $(seq 1 100); do [ "$(commands "$1" | wc -l)" -ge "$2" ] && return 0; sleep 0.1; done
  cat "$T/mgmt.log"; fail "session $1: fewer than $2 mgmt commands"
}
nospace() { tr -d ' ' <<< "$1"; }
# keys_status EXPR: `engagectl --json status` has a "ble" part whose bonding_keys k (and the
# part itself, b) make the Python expression EXPR true
keys_status() {
  "$ENGAGED_BIN/engagectl" -s "ipc://$T/control" --json status > "$T/ctl.json" || fail "engagectl status"
  $PY - "$T/ctl.json" "$1" <<'EOP' || { cat "$T/ctl.json"; fail "engagectl status: $1"; }
import json, sys
b = json.load(open(sys.argv[1]))["ble"]
k = b["bonding_keys"]
sys.exit(0 if eval(sys.argv[2], {}, {"b": b, "k": k}) else 1)
EOP
}

# 1. the keys go to the kernel; hr3 waits for an advertisement its key resolves
wait_commands 1 4
want="0003:65535:
0009:0:01
0030:0:0000
0013:0:0100$(nospace "$LTK_FILE_WIRE")"
[ "$(commands 1)" = "$want" ] || { commands 1; fail "session 1 commands"; }
wait_status "$T/status.out" hr3 'last["state"] == "backoff" and "advertisement" in (last["error"] or "")'
sleep 2
wait_status "$T/status.out" hr3 'all(m["attempts"] == 0 for m in msgs) and len(msgs) >= 3' 1
grep -q "bonding keys are not kept" "$T/daemon.log" && fail "keeper failed"
keys_status 'k == {"state": "kept", "ltks": 1, "irks": 0, "controllers": 1, "error": ""} and b["devices"] == 1'

# 2. hr3 bonds: its IRK and a new LTK arrive; confirmation requests for hr3 and another device
cat > "$S/ctl/send.tmp" <<EOF
1800 0000 1e00 01 $RPA1_WIRE $HR3_WIRE 01 $IRK1
0a00 0000 2500 01 $LTK_NEW_WIRE
0f00 0000 0c00 $HR3_WIRE 01 00 00000000
0f00 0000 0c00 0a2f6a8d7cc4 01 00 00000000
EOF
mv "$S/ctl/send.tmp" "$S/ctl/send"
wait_status "$T/status.out" hr3 'last["state"] == "streaming" and last["scan"]["rpa"] == "'$RPA1'"' 20
grep -q "ble: bonded with C4:7C:8D:6A:2F:03 (hci0, its identity resolving key); 2 keys in $T/engaged.db.ble-keys" \
  "$T/daemon.log" || fail "IRK bonding line"
grep -q "ble: bonded with C4:7C:8D:6A:2F:03 (hci0, our key); 3 keys" "$T/daemon.log" \
  || fail "LTK bonding line"
grep -q "ble hr3 (C4:7C:8D:6A:2F:03): the identity resolving key of its bonding is used" \
  "$T/daemon.log" || fail "scanner did not take the kept IRK"
grep -qi "$IRK1" "$T/daemon.log" && fail "the IRK reached the log"
$PY - "$T/engaged.db.ble-keys" "$IRK1" <<'EOP' || fail "key file after bonding"
import json, os, stat, sys
path, irk = sys.argv[1], sys.argv[2]
assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, oct(os.stat(path).st_mode)
keys = json.load(open(path))["keys"]
assert len(keys) == 3, keys
assert keys[0]["central"] is True and keys[0]["value"] == "00112233445566778899aabbccddeeff"
assert keys[1] == {"kind": "irk", "controller": 0, "address": "C4:7C:8D:6A:2F:03",
                   "address_type": "public", "value": irk}, keys[1]
assert keys[2]["central"] is False and keys[2]["key_type"] == 3 and keys[2]["enc_size"] == 16
EOP
wait_commands 1 6
[ "$(commands 1 | sed -n 5,6p | tr '\n' ' ')" = "001c:0:${HR3_WIRE}01 001d:0:0a2f6a8d7cc401 " ] \
  || { commands 1; fail "confirmations"; }

keys_status 'k["state"] == "kept" and k["ltks"] == 2 and k["irks"] == 1 and b["streaming"] == 1'

# 3. the kernel side closes: the keeper opens it again and loads every key it holds
touch "$S/ctl/drop"
wait_commands 2 4
grep -q "ble: the mgmt socket closed" "$T/daemon.log" || fail "no line for the closed socket"
[ "$(grep -c "bonding keys are kept again" "$T/daemon.log")" -eq 1 ] || fail "reopen line"
want="0003:65535:
0009:0:01
0030:0:0100${HR3_WIRE}01${IRK1}
0013:0:0200$(nospace "$LTK_FILE_WIRE$LTK_NEW_WIRE")"
[ "$(commands 2)" = "$want" ] || { commands 2; fail "session 2 commands"; }
for _ in $(seq 1 20); do
  "$ENGAGED_BIN/engagectl" -s "ipc://$T/control" --json status | grep -q '"controllers": *1' && break
  sleep 0.1
done
keys_status 'k == {"state": "kept", "ltks": 2, "irks": 1, "controllers": 1, "error": ""}'
# the kernel goes away: retrying, with why and when (2 s after the close, then 4 s more)
touch "$S/ctl/down"
for _ in $(seq 1 100); do
  [ "$(grep -c "bonding keys are not kept by engaged: $S/m.s" "$T/daemon.log")" -ge 1 ] && break
  sleep 0.1
done
keys_status 'k["state"] == "retrying" and k["error"].startswith("'"$S/m.s"': ") and 0 < k["next_attempt"] - __import__("time").time() * 1000 <= 8100 and k["ltks"] == 2 and k["irks"] == 1'
rm "$S/ctl/down"
wait_commands 3 4
[ "$(commands 3)" = "$want" ] || { commands 3; fail "session 3 commands"; }
[ "$(grep -c "bonding keys are kept again" "$T/daemon.log")" -eq 2 ] || fail "second reopen line"
[ "$(grep -c "ble: mgmt: hci0: bondable, 2 keys loaded, 1 identity resolving key$" "$T/daemon.log")" -eq 2 ] \
  || fail "mgmt lines with the IRK"
stop_daemon || fail "daemon exit"

# 4. a restart: the scan resolves RPA1 with the kept key from the start
: > "$T/status.out"
start_daemon "$T/engaged.conf" "$T/daemon.log"
wait_status "$T/status.out" hr3 'last["state"] == "streaming" and last["scan"]["rpa"] == "'$RPA1'" and last["connects"] == 1' 20
wait_commands 4 4
[ "$(commands 4 | sed -n 3p)" = "0030:0:0100${HR3_WIRE}01${IRK1}" ] || { commands 4; fail "session 4 IRKs"; }
stop_daemon || fail "daemon exit after restart"
[ "$(grep -c "the identity resolving key of its bonding is used" "$T/daemon.log")" -eq 2 ] \
  || fail "the restarted scan did not take the kept key"

# 5. a bad value
cp "$T/engaged.conf" "$T/bad.conf"
sed -i "s|^ble_mgmt = .*|ble_mgmt = sim:relative.s|" "$T/bad.conf"
rc=0; "$ENGAGED" check-config -c "$T/bad.conf" > "$T/bad.out" 2>&1 || rc=$?
[ "$rc" -eq 78 ] || fail "bad ble_mgmt: exit $rc"
grep -q 'bad.conf:[0-9]*: \[daemon\] ble_mgmt: invalid "sim:relative.s"' "$T/bad.out" \
  || { cat "$T/bad.out"; fail "ble_mgmt message"; }
no_sanitizer_report "$T/daemon.log"
echo PASS
