#!/usr/bin/env bash
# The attribute cache in the store (docs/ble.md, "Attribute cache"; docs/store.md, gatt_cache):
# the daemon discovers a tools/blesim device in full, saves its database, is stopped and
# started again, and the new connection uses the saved database (status "cached", no
# discovery request at the simulator). A recorded source never uses or saves one. A row
# whose blob was damaged is dropped with a log line and the device discovered in full, which
# saves a good copy again; a row no configured source uses is dropped; a device whose
# database changed (another Database Hash) is discovered in full and its row replaced.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ble_lib.sh"
KEY="C4:7C:8D:6A:2F:01/sim"

ble_conf "$T/engaged.conf" "[source hr1]" "driver = ble" "participant = p01" \
  "address = C4:7C:8D:6A:2F:01" "transport = sim:$S/a.s" \
  "[source rec2]" "driver = ble" "participant = p01" "address = C4:7C:8D:6A:2F:02" \
  "transport = sim:$S/a.s" "record = $T/rec2.btsnoop"

start_sim() { sim_start "$S/a.s" "$1" --profiles "$2" --hr-rate 5; } # LOG PROFILES
stop_sim() { kill -TERM "$SIM_PID"; wait "$SIM_PID" || fail "blesim exit"; SIM_PID=""; }

# run NAME: the daemon until both sources stream, then stopped; the status messages of the
# run in $T/NAME.status
run() {
  : > "$T/$1.status"
  $PY "$TOOL" sub "ipc://$T/feed" status/ "$T/$1.status" --min 1000000 --seconds 60 > /dev/null &
  local sub=$!
  start_daemon "$T/engaged.conf" "$T/daemon.log"
  wait_status "$T/$1.status" hr1 'last["state"] == "streaming"' 40
  wait_status "$T/$1.status" rec2 'last["state"] == "streaming"' 40
  sleep 0.5
  stop_daemon || fail "daemon exit ($1)"
  kill "$sub" 2>/dev/null || true
  wait "$sub" 2>/dev/null || true
}

# the "cached" flag of the first streaming status of SOURCE in run NAME: true/false
cached() {
  $PY - "$T/$1.status" "$2" <<'EOP'
import json, sys
m = [json.loads(l)[1] for l in open(sys.argv[1]) if l.startswith('["status/%s"' % sys.argv[2])]
s = [x for x in m if x["state"] == "streaming"]
print("none" if not s else "true" if s[0]["cached"] else "false")
EOP
}

# discovery requests of the simulator's connections, one line each, in order
discovery() { sed -n 's/.*closed:.* \([0-9]*\) discovery requests.*/\1/p' "$1"; }
row() { sqlite3 "$T/engaged.db" "SELECT $1 FROM gatt_cache WHERE device = '$KEY'"; }

# 1. first start: full discovery, the database is saved
start_sim "$T/sim1.err" gatt,hr,battery,dis
run one
stop_sim
[ "$(cached one hr1)" = false ] || fail "first connection from a cache"
read -r D1 D2 <<< "$(discovery "$T/sim1.err" | tr '\n' ' ')"
[ "${D1:-0}" -gt 0 ] && [ "${D2:-0}" -gt 0 ] || fail "first run discovery: $D1 $D2"
[ "$(sqlite3 "$T/engaged.db" "PRAGMA user_version")" -eq 6 ] || fail "schema version"
[ "$(sqlite3 "$T/engaged.db" "SELECT COUNT(*) FROM gatt_cache")" -eq 1 ] || fail "rows: $(sqlite3 "$T/engaged.db" "SELECT device FROM gatt_cache")"
LEN=$(row "length(blob)")
[ "${LEN:-0}" -gt 100 ] || fail "blob length $LEN"
[ "$(row "typeof(blob)")" = blob ] || fail "blob type"
# the key names the device only: nothing of its participant or source
[ "$(sqlite3 "$T/engaged.db" "SELECT COUNT(*) FROM gatt_cache WHERE device != '$KEY' OR
      instr(blob, CAST('p01' AS BLOB)) OR instr(blob, CAST('hr1' AS BLOB))")" -eq 0 ] \
  || fail "participant or source in the cache"
echo "run 1: discovery $D1 (hr1) and $D2 (rec2), saved $LEN bytes for $KEY"

# 2. restart: hr1 from the store's copy, no discovery; rec2 (recorded) discovers in full
sqlite3 "$T/engaged.db" "INSERT INTO gatt_cache VALUES('AA:BB:CC:DD:EE:FF/public', x'00', 0)"
start_sim "$T/sim2.err" gatt,hr,battery,dis
run two
stop_sim
[ "$(cached two hr1)" = true ] || fail "hr1 not from the cache after the restart"
[ "$(cached two rec2)" = false ] || fail "rec2 used a cache"
read -r E1 E2 <<< "$(discovery "$T/sim2.err" | sort -n | tr '\n' ' ')"
[ "${E1:-1}" -eq 0 ] && [ "${E2:-0}" -gt 0 ] || fail "second run discovery: $E1 $E2"
grep -q "ble: attribute cache: 1 device loaded from the store, 1 no longer used dropped" "$T/daemon.log" \
  || fail "load not logged"
[ "$(sqlite3 "$T/engaged.db" "SELECT COUNT(*) FROM gatt_cache")" -eq 1 ] || fail "unused row kept"
grep -q "hr1 (C4:7C:8D:6A:2F:01): streaming (cached database" "$T/daemon.log" || fail "log"
echo "run 2: hr1 streamed from the saved database with $E1 discovery requests (rec2: $E2)"

# 3. a damaged row: dropped with a log line, full discovery, a good copy saved again
GOOD=$(row "hex(blob)")
sqlite3 "$T/engaged.db" "UPDATE gatt_cache SET blob = substr(blob, 1, 40) || x'00' || substr(blob, 42) WHERE device = '$KEY'"
[ "$(row "hex(blob)")" != "$GOOD" ] || fail "corruption did not take"
start_sim "$T/sim3.err" gatt,hr,battery,dis
run three
stop_sim
grep -q "ble: the saved attribute cache of $KEY is not valid (Bad message); dropped" "$T/daemon.log" \
  || fail "corrupt row not logged"
[ "$(cached three hr1)" = false ] || fail "hr1 used a corrupt cache"
[ "$(row "hex(blob)")" = "$GOOD" ] || fail "good copy not saved again"
sqlite3 "$T/engaged.db" "UPDATE gatt_cache SET blob = x'' WHERE device = '$KEY'"   # empty
start_sim "$T/sim4.err" gatt,hr,battery,dis
run four
stop_sim
[ "$(cached four hr1)" = false ] || fail "hr1 used an empty cache"
[ "$(row "hex(blob)")" = "$GOOD" ] || fail "good copy not saved after an empty one"

# 4. the device's database changes (no Device Information now): another hash, discovered in
# full, the row replaced; the next start uses the new copy
start_sim "$T/sim5.err" gatt,hr,battery
run five
stop_sim
[ "$(cached five hr1)" = false ] || fail "changed database taken from the cache"
NEW=$(row "hex(blob)")
[ -n "$NEW" ] && [ "$NEW" != "$GOOD" ] || fail "row not replaced"
start_sim "$T/sim6.err" gatt,hr,battery
run six
stop_sim
[ "$(cached six hr1)" = true ] || fail "new copy not used"
echo "damaged, empty and changed databases handled"

# the store's events of hr1 kept flowing: every run stored heart rate
[ "$(sqlite3 "$T/engaged.db" "SELECT COUNT(*) FROM events WHERE source = 'hr1' AND type = 'hr'")" -gt 6 ] || fail "hr events"
no_sanitizer_report "$T/daemon.log"
no_sanitizer_report "$T"/sim*.err
echo "ok"
