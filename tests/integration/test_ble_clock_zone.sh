#!/usr/bin/env bash
# A device's own time zone, its Local Time Information (docs/ble.md, "The device clock"): where
# it is writable, the daemon writes the wearer's zone into it, then the clock in that zone.
# One daemon, eight watches on eight simulators, each showing the wall time of the zone its Local
# Time Information gives (the simulator's clock does not move when that is written):
#   z1  UTC+1, writable, worn by p01 (New York): the zone written (New York's standard
#       offset and today's DST), read back, then the clock set in it;
#   z2  UTC+1, not writable, worn by p01: left alone, read in its own zone (offset ~0);
#   z3  New York's zone already, writable, worn by p01: left alone;
#   z4  UTC+1, writable, `set_clock = no`, worn by p01: left alone;
#   z5  UTC with DST unknown (so the clock was read in the wearer's zone), writable, showing
#       London wall time, worn by p02 (London): the zone completed; the clock, already right
#       in that zone, not written;
#   z6  New York's zone, writable, showing New York wall time, notifying Current Time every
#       second, worn by p03 (New York), who then sends a `tz` event for Los Angeles: the zone
#       rewritten to Los Angeles', then the clock set in it, at once;
#   z7  UTC+1, writable but keeping its own (`--lti-write keep`), worn by p01: written once,
#       read back unchanged (`clock_ignored`), logged, not written again; its clock, right in
#       the zone it kept, not written;
#   z8  UTC+1, writable, but Current Time not writable, worn by p01: left alone (the clock
#       could not follow the zone).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"

ble_conf "$T/engaged.conf" "$(ble_src z1 p01 a.s 1)" "$(ble_src z2 p01 b.s 2)" \
  "$(ble_src z3 p01 c.s 3)" "$(ble_src z4 p01 d.s 4 'set_clock = no')" \
  "$(ble_src z5 p02 e.s 5)" "$(ble_src z6 p03 f.s 6)" "$(ble_src z7 p01 g.s 7)" \
  "$(ble_src z8 p01 h.s 8)" \
  "[participant p03]" "tz = America/New_York" "[source phone-p03]" "driver = ingest" \
  "participant = p03"
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"

lti_of() { # ZONE: "TZ,DST" in quarter-hours now, the offset in seconds, as Local Time Information
  $PY -c 'import datetime, sys, zoneinfo
n = datetime.datetime.now(zoneinfo.ZoneInfo(sys.argv[1]))
off, dst = int(n.utcoffset().total_seconds()), int(n.dst().total_seconds())
print("%d,%d %d" % ((off - dst) // 900, dst // 900, off))' "$1"
}
read -r ny ny_s <<< "$(lti_of America/New_York)"
read -r lon lon_s <<< "$(lti_of Europe/London)"
read -r la la_s <<< "$(lti_of America/Los_Angeles)"

sims=()
sim() { # SOCKET LOG OPTIONS...
  sim_start "$@"
  sims+=("$SIM_PID")
}
cts=(--profiles gatt,hr,cts --hr-rate 5)
sim "$S/a.s" "$T/sima.err" "${cts[@]}" --lti 4,0 --lti-write set --time-offset 3600000
sim "$S/b.s" "$T/simb.err" "${cts[@]}" --lti 4,0 --time-offset 3600000
sim "$S/c.s" "$T/simc.err" "${cts[@]}" --lti "$ny" --lti-write set --time-offset $((ny_s * 1000))
sim "$S/d.s" "$T/simd.err" "${cts[@]}" --lti 4,0 --lti-write set --time-offset 3600000
sim "$S/e.s" "$T/sime.err" "${cts[@]}" --lti 0,255 --lti-write set --time-offset $((lon_s * 1000))
sim "$S/f.s" "$T/simf.err" "${cts[@]}" --lti "$ny" --lti-write set --time-offset $((ny_s * 1000)) \
  --cts-period 1
sim "$S/g.s" "$T/simg.err" "${cts[@]}" --lti 4,0 --lti-write keep --time-offset 3600000
sim "$S/h.s" "$T/simh.err" "${cts[@]}" --lti 4,0 --lti-write set --cts-write none \
  --time-offset 3600000

: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/z "$T/status.out" --min 1000000 --seconds 120 \
  > /dev/null &
start_daemon "$T/engaged.conf" "$T/daemon.log"

for w in z1 z2 z3 z4 z5 z6 z7 z8; do
  wait_status "$T/status.out" $w "last['state'] == 'streaming' and last['clock_samples'] >= 1"
done
wait_status "$T/status.out" z1 \
  "last['clock_zone_sets'] == 1 and last['clock_sets'] == 1 and abs(last['clock_offset_ms']) < 250"
wait_status "$T/status.out" z5 "last['clock_zone_sets'] == 1"
wait_status "$T/status.out" z7 "last['clock_ignored'] == 1"
# p03 travels now
printf '{"ts":%d,"participant":"p03","source":"phone-p03","seq":1,"type":"tz",%s}\n' \
  "$(( $(date +%s) * 1000 ))" '"tz":"America/Los_Angeles"' > "$T/travel.jsonl"
$PY "$TOOL" push "ipc://$T/ingest" "$T/travel.jsonl" | grep -q '"accepted": 1' || fail "travel"
wait_status "$T/status.out" z6 \
  "last['clock_zone_sets'] == 1 and last['clock_sets'] == 1 and abs(last['clock_offset_ms']) < 250"
sleep 3 # three more status rounds: nothing is written again
$PY - "$T/status.out" "$ny_s" "$lon_s" "$la_s" <<'EOP' || fail "status"
import json, sys
ny, lon, la = (int(a) * 1000 for a in sys.argv[2:5])
last = {}
for l in open(sys.argv[1]):
    topic, m = json.loads(l)
    last[topic.split("/")[1]] = m
z1, z2, z3, z4, z5, z6, z7, z8 = (last["z%d" % i] for i in range(1, 9))
for z in (z1, z2, z3, z4, z5, z6, z7, z8):
    assert z["state"] == "streaming" and z["connects"] == 1 and z["failures"] == 0, z
    assert z["clock_refusals"] == 0 and abs(z["clock_offset_ms"]) < 250, z
    if z is not z7:
        assert z["clock_ignored"] == 0, z
# the wearer's zone written and read back, then the clock set in it
assert z1["clock_zone_ms"] == ny and z1["clock_zone_sets"] == 1 and z1["clock_sets"] == 1, z1
# not writable, already the wearer's, or `set_clock = no`: nothing written
assert z2["clock_zone_ms"] == 3600000 and z2["clock_zone_sets"] == 0, z2
assert z2["clock_sets"] == 0, z2
assert z3["clock_zone_ms"] == ny and z3["clock_zone_sets"] == 0 and z3["clock_sets"] == 0, z3
assert z4["clock_zone_ms"] == 3600000 and z4["clock_zone_sets"] == 0, z4
assert z4["clock_sets"] == 0, z4
# DST unknown: completed; the clock was already read in that zone, so it is not written
assert z5["clock_zone_ms"] == lon and z5["clock_zone_sets"] == 1 and z5["clock_sets"] == 0, z5
# travel: the zone and then the clock, at once
assert z6["clock_zone_ms"] == la and z6["clock_zone_sets"] == 1 and z6["clock_sets"] == 1, z6
# acknowledged but kept: counted once, its own zone still read, the clock right in it
assert z7["clock_zone_ms"] == 3600000 and z7["clock_zone_sets"] == 0, z7
assert z7["clock_ignored"] == 1 and z7["clock_sets"] == 0, z7
# the clock not writable: the zone left alone too
assert z8["clock_zone_ms"] == 3600000 and z8["clock_zone_sets"] == 0, z8
assert z8["clock_sets"] == 0, z8
print("z1 zone %d ms, reads %d ms; z6 zone %d ms, reads %d ms" %
      (z1["clock_zone_ms"], z1["clock_offset_ms"], z6["clock_zone_ms"], z6["clock_offset_ms"]))
EOP

grep -q "ble z1: the device's time zone is UTC+01:00, its wearer's UTC-05:00.*; setting it" \
  "$T/daemon.log" || fail "no log line for z1's zone"
grep -q "ble z5: the device's time zone is UTC+00:00, DST unknown, its wearer's UTC+00:00.*; \
setting it" "$T/daemon.log" || fail "no log line for z5's zone"
grep -q "ble z6: the device's time zone is UTC-05:00.*, its wearer's UTC-08:00.*; setting it" \
  "$T/daemon.log" || fail "no log line for z6's zone"
grep -q "ble z7: the device acknowledged the time zone UTC-05:00.*, but reads back \
UTC+01:00; not tried again on this link" "$T/daemon.log" || fail "no log line for z7's kept zone"
[ "$(grep -c "time zone is .*; setting it" "$T/daemon.log")" = 4 ] ||
  fail "zones written other than z1, z5, z6 and z7"
[ "$(grep -c "device clock is .*; setting it" "$T/daemon.log")" = 2 ] ||
  fail "clocks written other than z1 and z6"

stop_daemon || fail "daemon exit"
for p in "${sims[@]}"; do kill -TERM "$p"; wait "$p" || fail "blesim exit"; done
no_sanitizer_report "$T/daemon.log" "$T"/sim?.err
echo "device zones: the wearer's written where writable and different, then the clock in it"
