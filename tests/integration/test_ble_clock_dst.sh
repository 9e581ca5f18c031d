#!/usr/bin/env bash
# A device clock across a daylight-saving change (docs/ble.md, "The device clock"). The daemon
# runs with its wall clock moved (tests/helpers/clockshift.c, preloaded) to 20 s before New
# York springs forward (2027-03-14 07:00 UTC: 02:00 EST becomes 03:00 EDT); its monotonic
# clock, which its timers use, is left alone. Watches notifying Current Time every second;
# two without Local Time Information, never set:
#   w1  worn by p01 (America/New_York): set to New York standard time; after the change it
#       reads an hour behind in the zone's new offset and is set again at once (the zone it is
#       written in moved: no hour's wait), before the change's minute is over;
#   w2  worn by p02 (Europe/London, no change that day): set once, and never again;
# and one with writable Local Time Information:
#   w3  worn by p01, its zone New York's standard time (UTC-5, no DST), showing New York
#       wall time: left alone before the change; after it, its zone rewritten (UTC-5 with DST
#       +1 h), read back, and its clock, an hour behind in that zone, set at once.
# The simulators run on the host's real clock: a watch's clock is only ever what was written.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"

SHIFT="$ENGAGED_BIN/tests/libclockshift.so"
[ -f "$SHIFT" ] || fail "no $SHIFT"
change=$(date -d "2027-03-14 07:00:00 UTC" +%s)
offset=$(( change - 20 - $(date +%s) ))

ble_conf "$T/engaged.conf" "$(ble_src w1 p01 a.s 1)" "$(ble_src w2 p02 b.s 2)" \
  "$(ble_src w3 p01 c.s 3)"
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"

# the moved clock is the daemon's (checked here with date(1) through the same settings)
[ "$(CLOCKSHIFT_S=$offset LD_PRELOAD="$SHIFT" date -u +%Y-%m-%d)" = 2027-03-14 ] ||
  fail "clockshift does not move the clock"

sim_start "$S/a.s" "$T/sima.err" --profiles gatt,hr,cts --hr-rate 5 --cts-unset --cts-no-lti \
  --cts-period 1
sim1=$SIM_PID
sim_start "$S/b.s" "$T/simb.err" --profiles gatt,hr,cts --hr-rate 5 --cts-unset --cts-no-lti \
  --cts-period 1
sim2=$SIM_PID
# New York standard time on the moved clock (the simulator's own clock is the host's)
sim_start "$S/c.s" "$T/simc.err" --profiles gatt,hr,cts --hr-rate 5 --lti -20,0 --lti-write set \
  --time-offset $(( (offset - 5 * 3600) * 1000 )) --cts-period 1
sim3=$SIM_PID

: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/w "$T/status.out" --min 1000000 --seconds 120 \
  > /dev/null &
# an ASan build's runtime must come first among the libraries; the helper goes before it
CLOCKSHIFT_S=$offset LD_PRELOAD="$SHIFT" \
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" start_daemon "$T/engaged.conf" \
  "$T/daemon.log"

wait_status "$T/status.out" w1 "last['clock_sets'] == 1 and abs(last['clock_offset_ms']) < 250"
wait_status "$T/status.out" w2 "last['clock_sets'] == 1 and abs(last['clock_offset_ms']) < 250"
wait_status "$T/status.out" w3 "last['clock_samples'] >= 1 and abs(last['clock_offset_ms']) < 250"
wait_status "$T/status.out" w1 "last['clock_sets'] == 2 and abs(last['clock_offset_ms']) < 250" 60
wait_status "$T/status.out" w3 "last['clock_sets'] == 1 and abs(last['clock_offset_ms']) < 250" 30
sleep 3 # three more status rounds: nothing is written again
$PY - "$T/status.out" "$change" <<'EOP' || fail "status"
import json, sys
change_ms = int(sys.argv[2]) * 1000
last, first_set = {}, {}
for l in open(sys.argv[1]):
    topic, m = json.loads(l)
    src = topic.split("/")[1]
    last[src] = m
    if m["clock_sets"] == 1:
        first_set.setdefault(src, m["clock_last_set"])
w1, w2, w3 = last["w1"], last["w2"], last["w3"]
for w in (w1, w2, w3):
    assert w["state"] == "streaming" and w["connects"] == 1 and w["failures"] == 0, w
    assert w["clock_refusals"] == 0 and w["clock_ignored"] == 0, w
    assert abs(w["clock_offset_ms"]) < 250, w
# the first sets were made on the faked clock, before the change
assert change_ms - 20000 <= first_set["w1"] < change_ms, (first_set, change_ms)
assert change_ms - 20000 <= first_set["w2"] < change_ms, (first_set, change_ms)
# New York: set again after the change, within its minute; London: never again
assert w1["clock_sets"] == 2 and change_ms <= w1["clock_last_set"] < change_ms + 60000, w1
assert w2["clock_sets"] == 1 and w2["clock_last_set"] == first_set["w2"], w2
assert w1["time"] > change_ms + 3000, w1
# w3: its zone rewritten for daylight time, then its clock set, both after the change
assert w3["clock_zone_sets"] == 1 and w3["clock_zone_ms"] == -4 * 3600000, w3
assert w3["clock_sets"] == 1 and change_ms <= w3["clock_last_set"] < change_ms + 60000, w3
print("w1 set at change%+d ms and change%+d ms, reads %d ms; w2 reads %d ms" %
      (first_set["w1"] - change_ms, w1["clock_last_set"] - change_ms,
       w1["clock_offset_ms"], w2["clock_offset_ms"]))
EOP

grep -q "ble w1: the device clock does not know the date; setting it" "$T/daemon.log" ||
  fail "no log line for w1's first set"
# standard time read in daylight time: an hour behind
grep -q "ble w1: the device clock is -3[56][0-9][0-9]\.[0-9]\{3\} s off the hub's; setting it" \
  "$T/daemon.log" || fail "w1 was not an hour behind before its second set"
grep -q "ble w3: the device's time zone is UTC-05:00, its wearer's UTC-05:00 with DST +1:00; \
setting it" "$T/daemon.log" || fail "no log line for w3's zone"
grep -q "ble w3: the device clock is -3[56][0-9][0-9]\.[0-9]\{3\} s off the hub's; setting it" \
  "$T/daemon.log" || fail "w3 was not an hour behind in its new zone before its set"
[ "$(grep -c "setting it" "$T/daemon.log")" = 5 ] ||
  fail "written other than w1's clock twice, w2's, w3's zone and clock"

stop_daemon || fail "daemon exit"
for p in $sim1 $sim2 $sim3; do kill -TERM "$p"; wait "$p" || fail "blesim exit"; done
no_sanitizer_report "$T/daemon.log" "$T"/sim?.err
echo "device clocks and zones: set again at once when the wearer's zone changes to DST"
