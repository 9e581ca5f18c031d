#!/usr/bin/env bash
# Setting a device's clock through the Current Time Service (docs/ble.md, "The device clock").
# One daemon, eleven sources on ten simulators (each connection of a simulator has its own
# clock, which starts at --time when the connection opens):
#   w1  a watch 400 days behind, default options: the daemon writes the hub's time once; the
#       clock read back afterwards is within 250 ms of the hub's, in the device's own zone
#       (Local Time Information: UTC), and the estimate started again from it;
#   w2  the same watch with `set_clock = no`: left 400 days behind;
#   w3  a watch whose Current Time says writable but refuses the write, and notifies it every
#       second (each a reading an hour off): refused once, logged, not tried again within the
#       hour, and the device streams all the same;
#   w4  a watch whose Current Time is not writable: never written;
#   w5  a watch that never had its clock set (date 0) and has no Local Time Information, worn
#       by p01 (America/New_York): set to New York wall time, which reads back as offset ~0;
#   w6  a watch 30 s ahead with `clock_tolerance = 2min`: within it, left alone;
#   w7  a watch 0.8 s behind (--time-offset: whatever the host's speed) with
#       `clock_tolerance = 100ms`: set, and the estimate holds only the reading after the set
#       (a jump of less than 2 s would not have restarted it on its own);
#   w8  a watch without Local Time Information showing New York wall time, worn by p01, with
#       `set_clock = no`: read as about the hub's time (so w5's round trip through the same
#       zone conversion pins both directions, not only their agreement);
#   w9  a watch 400 days behind that answers the write and keeps its clock: written once,
#       the reading after it counted (`clock_ignored`) and logged, not written again;
#   w10 a watch without Local Time Information showing Los Angeles wall time, `set_clock = no`,
#       worn by p03, configured in New York, whose phone has sent a `tz` event (travel to Los
#       Angeles) before the watch connects: read in the zone the pipeline has for p03 (about
#       the hub's time), not in the configured one (3 h off);
#   w11 a watch never set, without Local Time Information, notifying Current Time every second,
#       worn by p04 (New York): set to New York wall time at once; after p04's `tz` event for
#       Los Angeles it reads 3 h off in the new zone and is set again at once (the zone it is
#       written in moved: no hour's wait).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"

now=$(date +%s)
ble_conf "$T/engaged.conf" "$(ble_src w1 p02 a.s 1)" \
  "$(ble_src w2 p02 a.s 2 'set_clock = no')" "$(ble_src w3 p02 c.s 3)" \
  "$(ble_src w4 p02 d.s 4)" "$(ble_src w5 p01 e.s 5)" \
  "$(ble_src w6 p02 f.s 6 'clock_tolerance = 2min')" \
  "$(ble_src w7 p02 g.s 7 'clock_tolerance = 100ms')" \
  "$(ble_src w8 p01 h.s 8 'set_clock = no')" "$(ble_src w9 p02 i.s 9)" \
  "$(ble_src w10 p03 j.s 10 'set_clock = no')" \
  "[participant p03]" "tz = America/New_York" "[source phone-p03]" "driver = ingest" \
  "participant = p03" "$(ble_src w11 p04 k.s 11)" "[participant p04]" \
  "tz = America/New_York" "[source phone-p04]" "driver = ingest" "participant = p04"
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"

# options of another driver, and a tolerance out of range, are refused
write_conf "$T/bad.conf" "[source f]" "driver = file" "path = /dev/null" "set_clock = no" \
  "[source b]" "driver = ble" "participant = p01" "address = C4:7C:8D:6A:2F:09" \
  "transport = sim:$S/a.s" "clock_tolerance = 10ms"
rc=0; "$ENGAGED" check-config -c "$T/bad.conf" > "$T/bad.out" 2>&1 || rc=$?
[ "$rc" -eq 78 ] || { cat "$T/bad.out"; fail "bad options: exit $rc"; }
grep -q "\[source f\] set_clock" "$T/bad.out" || { cat "$T/bad.out"; fail "set_clock on file"; }
grep -q "\[source b\] clock_tolerance" "$T/bad.out" || { cat "$T/bad.out"; fail "10ms"; }

sims=()
sim() { # SOCKET LOG OPTIONS...
  sim_start "$@"
  sims+=("$SIM_PID")
}
sim "$S/a.s" "$T/sima.err" --profiles gatt,hr,cts --hr-rate 5 --time $((now - 400 * 86400))
sim "$S/c.s" "$T/simc.err" --profiles gatt,hr,cts --hr-rate 5 --time $((now - 3600)) \
  --cts-write refuse --cts-period 1
sim "$S/d.s" "$T/simd.err" --profiles gatt,hr,cts --hr-rate 5 --time $((now - 3600)) \
  --cts-write none
sim "$S/e.s" "$T/sime.err" --profiles gatt,hr,cts --hr-rate 5 --cts-unset --cts-no-lti
sim "$S/f.s" "$T/simf.err" --profiles gatt,hr,cts --hr-rate 5 --time-offset 30000
sim "$S/g.s" "$T/simg.err" --profiles gatt,hr,cts --hr-rate 5 --time-offset -800
zone_s() { # ZONE: its offset from UTC now, in seconds
  $PY -c 'import datetime, sys, zoneinfo
z = zoneinfo.ZoneInfo(sys.argv[1])
print(int(datetime.datetime.now(z).utcoffset().total_seconds()))' "$1"
}
ny=$(zone_s America/New_York)
sim "$S/h.s" "$T/simh.err" --profiles gatt,hr,cts --hr-rate 5 --cts-no-lti --time $((now + ny))
sim "$S/k.s" "$T/simk.err" --profiles gatt,hr,cts --hr-rate 5 --cts-unset --cts-no-lti \
  --cts-period 1
sim "$S/i.s" "$T/simi.err" --profiles gatt,hr,cts --hr-rate 5 --time $((now - 400 * 86400)) \
  --cts-write ignore

: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/w "$T/status.out" --min 1000000 --seconds 120 \
  > /dev/null &
start_daemon "$T/engaged.conf" "$T/daemon.log"

# p03 travels: a tz event a minute ago, well within the pipeline's lateness (10 min), so not
# yet applied to p03's days; w10's simulator starts once it is stored (the daemon's next
# attempt connects)
printf '{"ts":%d,"participant":"p03","source":"phone-p03","seq":1,"type":"tz",%s}\n' \
  $(( (now - 60) * 1000 )) '"tz":"America/Los_Angeles"' > "$T/travel.jsonl"
$PY "$TOOL" push "ipc://$T/ingest" "$T/travel.jsonl" | grep -q '"accepted": 1' || fail "travel"
la=$(zone_s America/Los_Angeles)
sim "$S/j.s" "$T/simj.err" --profiles gatt,hr,cts --hr-rate 5 --cts-no-lti \
  --time-offset $(( la * 1000 ))

for w in w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11; do
  wait_status "$T/status.out" $w "last['state'] == 'streaming' and last['clock_samples'] >= 1"
done
wait_status "$T/status.out" w1 "last['clock_sets'] == 1 and last['clock_samples'] >= 1"
wait_status "$T/status.out" w5 "last['clock_sets'] == 1 and last['clock_samples'] >= 1"
wait_status "$T/status.out" w7 "last['clock_sets'] == 1 and last['clock_samples'] >= 1"
wait_status "$T/status.out" w3 "last['clock_refusals'] == 1"
wait_status "$T/status.out" w9 "last['clock_ignored'] == 1"
wait_status "$T/status.out" w11 "last['clock_sets'] == 1 and abs(last['clock_offset_ms']) < 250"
# p04 travels now
printf '{"ts":%d,"participant":"p04","source":"phone-p04","seq":1,"type":"tz",%s}\n' \
  "$(( $(date +%s) * 1000 ))" '"tz":"America/Los_Angeles"' > "$T/travel4.jsonl"
$PY "$TOOL" push "ipc://$T/ingest" "$T/travel4.jsonl" | grep -q '"accepted": 1' || fail "travel4"
wait_status "$T/status.out" w11 "last['clock_sets'] == 2 and abs(last['clock_offset_ms']) < 250"
sleep 3 # three more status rounds: nothing is written again
$PY - "$T/status.out" "$now" <<'EOP' || fail "status"
import json, sys
now_ms = int(sys.argv[2]) * 1000
last = {}
for l in open(sys.argv[1]):
    topic, m = json.loads(l)
    last[topic.split("/")[1]] = m
day = 86400000
w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11 = (last["w%d" % i] for i in range(1, 12))
for w in (w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11):
    assert w["state"] == "streaming" and w["connects"] == 1, w
    if w is not w10: # w10's simulator started after the daemon
        assert w["failures"] == 0, w
    assert "cts" in w["profiles"] and w["events"] > 0, w
    if w is not w9: # every acknowledged set held
        assert w["clock_ignored"] == 0, w
# set once, read back within 250 ms of the hub's clock; the estimate restarted at the set
assert w1["clock_sets"] == 1 and w1["clock_refusals"] == 0, w1
assert abs(w1["clock_offset_ms"]) < 250 and w1["clock_samples"] == 1, w1
assert now_ms - 5000 <= w1["clock_last_set"] <= w1["time"], (w1["clock_last_set"], now_ms)
# left alone: still about 400 days behind, every reading on one line
assert w2["clock_sets"] == 0 and w2["clock_last_set"] is None, w2
assert abs(w2["clock_offset_ms"] + 400 * day) < 60000, w2
# refused once, not tried again within the hour; the watch streams on, its clock an hour behind
assert w3["clock_refusals"] == 1 and w3["clock_sets"] == 0, w3
assert abs(w3["clock_offset_ms"] + 3600000) < 60000, w3
# not writable: never tried
assert w4["clock_sets"] == 0 and w4["clock_refusals"] == 0, w4
assert abs(w4["clock_offset_ms"] + 3600000) < 60000, w4
# never set, no Local Time Information: set in the participant's zone, reads back ~0
assert w5["clock_sets"] == 1 and abs(w5["clock_offset_ms"]) < 250, w5
# within its tolerance: left 30 s ahead
assert w6["clock_sets"] == 0 and 29500 < w6["clock_offset_ms"] < 30500, w6
# set from about a second off; only the reading after the set is in the estimate (the next
# Current Time read is 60 s away and this one notifies none)
assert w7["clock_sets"] == 1 and abs(w7["clock_offset_ms"]) < 250, w7
assert w7["clock_samples"] == 1, w7
# New York wall time read in New York's zone: the hub's time less the seconds to connect
assert w8["clock_sets"] == 0 and -5000 < w8["clock_offset_ms"] <= 1000, w8
# acknowledged but kept: one write, its reading counted, still 400 days behind (the estimate
# restarted at the acknowledgement all the same), nothing written again within the hour
assert w9["clock_sets"] == 1 and w9["clock_ignored"] == 1 and w9["clock_refusals"] == 0, w9
assert abs(w9["clock_offset_ms"] + 400 * day) < 60000 and w9["clock_samples"] == 1, w9
# Los Angeles wall time read in the zone p03 travelled to (New York's would be 3 h off)
assert w10["clock_sets"] == 0 and -250 < w10["clock_offset_ms"] < 250, w10
# set in New York, then again in Los Angeles within the hour, and nothing refused or ignored
assert w11["clock_sets"] == 2 and abs(w11["clock_offset_ms"]) < 250, w11
print("w1 offset after the set %d ms; w5 %d ms; w6 left at %d ms" %
      (w1["clock_offset_ms"], w5["clock_offset_ms"], w6["clock_offset_ms"]))
EOP

grep -q "ble w1: the device clock is -3456[0-9]*\.[0-9]\{3\} s off the hub's; setting it" \
  "$T/daemon.log" || fail "no log line for w1's set"
grep -q "ble w5: the device clock does not know the date; setting it" "$T/daemon.log" ||
  fail "no log line for w5's set"
grep -q "ble w3: the device did not let its clock be set: .*[Ww]rite [Nn]ot [Pp]ermitted.*not tried \
again for an hour on this link" "$T/daemon.log" || fail "no log line for w3's refusal"
grep -q "ble w9: the device acknowledged the clock set, but its clock still reads -3456[0-9]*\.\
[0-9]\{3\} s off the hub's; not tried again for an hour on this link" "$T/daemon.log" ||
  fail "no log line for w9's kept clock"
[ "$(grep -c "acknowledged the clock set" "$T/daemon.log")" = 1 ] || fail "kept clocks besides w9"
[ "$(grep -c "setting it" "$T/daemon.log")" = 7 ] ||
  fail "clocks written other than w1, w3, w5, w7, w9 and twice w11"
grep -q "ble w11: the device clock is +10[78][0-9][0-9]\.[0-9]\{3\} s off the hub's; setting it" \
  "$T/daemon.log" || fail "w11 was not 3 h ahead in Los Angeles before its second set"
grep -q "ble w2.*setting it\|ble w4.*setting it\|ble w6.*setting it\|ble w10.*setting it" \
  "$T/daemon.log" &&
  fail "a clock written that should not have been"
# w7's clock before the set: within 2 s, so the restart at the set is tested (a jump of 2 s
# or more would restart the estimate on its own)
grep -q "ble w7: the device clock is -0\.[78][0-9][0-9] s off the hub's; setting it" \
  "$T/daemon.log" || fail "w7 was not about 0.8 s behind before the set"

stop_daemon || fail "daemon exit"
for p in "${sims[@]}"; do kill -TERM "$p"; wait "$p" || fail "blesim exit"; done
no_sanitizer_report "$T/daemon.log" "$T"/sim?.err
echo "device clocks: set where they were off and writable, left alone otherwise"
