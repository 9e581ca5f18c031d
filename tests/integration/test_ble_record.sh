#!/usr/bin/env bash
# `[source] record` (docs/ble.md "Recording raw traffic"): check-config refuses record on other
# drivers and relative paths; a record file that is not a btsnoop capture stops the start and
# is left as it was. Then a real `engaged run` with a simulated Heart Rate device (hr1) and a
# PineTime-like one (pt2), both recorded, streams, loses both links (the simulators are killed
# and restarted), is stopped, started again (the captures are appended to) and stopped: each
# capture (mode 0600; two sessions; every connection discovered in full, none from the cache)
# replays through `engaged replay` to exactly the events (type, ts, values) the daemon stored
# for its source. A third source (lim3, 50 Hz) reaches its record_max: recording stops with
# one log line per run, the capture stays within the limit and replays cleanly, and the source
# goes on storing events. status/<source> shows each capture's counters and lim3's stop.
source "$(dirname "$0")/lib.sh"
BLESIM="$ENGAGED_BIN/tools/blesim"
S=$(mktemp -d /tmp/erecXXXXXX) # socket paths are short
trap 'cleanup; rm -rf "$S"' EXIT

# ble_source NAME PARTICIPANT N [KEY=VALUE...]: a simulated, recorded source on $S/N.s
ble_source() {
  printf '[source %s]\ndriver = ble\nparticipant = %s\naddress = C4:7C:8D:6A:2F:0%s\n' "$1" "$2" "$3"
  printf 'transport = sim:%s/%s.s\nrecord = %s/%s.btsnoop\n' "$S" "$3" "$T" "$1"
  shift 3
  for kv in "$@"; do echo "${kv%%=*} = ${kv#*=}"; done
}
write_conf "$T/engaged.conf"
{ ble_source hr1 p01 1; ble_source pt2 p02 2; ble_source lim3 p01 3 record_max=8KiB; } >> "$T/engaged.conf"
"$ENGAGED" check-config -c "$T/engaged.conf" || fail "check-config"

# record is a ble option, and a path
cp "$T/engaged.conf" "$T/bad.conf"
cat >> "$T/bad.conf" <<EOC
[source phone]
driver = ingest
participant = p01
record = $T/phone.btsnoop
record_max = 1MiB
[source rel4]
driver = ble
participant = p01
address = C4:7C:8D:6A:2F:04
record = relative.btsnoop
EOC
rc=0; "$ENGAGED" check-config -c "$T/bad.conf" > "$T/bad.out" 2>&1 || rc=$?
[ "$rc" -eq 78 ] || { cat "$T/bad.out"; fail "check-config of bad.conf: exit $rc"; }
grep -q 'bad.conf:[0-9]*: \[source phone\] record: not used by driver ingest' "$T/bad.out" || { cat "$T/bad.out"; fail "record on ingest"; }
grep -q 'bad.conf:[0-9]*: \[source phone\] record_max: not used by driver ingest' "$T/bad.out" || { cat "$T/bad.out"; fail "record_max on ingest"; }
grep -q 'bad.conf:[0-9]*: \[source rel4\] record: .*not an absolute path' "$T/bad.out" || { cat "$T/bad.out"; fail "relative record path"; }

# a file that is not a capture is refused at start, untouched
echo "field notes, not a capture" > "$T/notes.txt"
sed "s#record = $T/hr1.btsnoop#record = $T/notes.txt#" "$T/engaged.conf" > "$T/notes.conf"
rc=0; "$ENGAGED" run -c "$T/notes.conf" > "$T/notes.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "the daemon started with a record file that is not a capture"
grep -q "notes.conf:[0-9]*: \[source hr1\] record: $T/notes.txt: exists and is not a btsnoop capture" "$T/notes.log" || { cat "$T/notes.log"; fail "no clear error for notes.txt"; }
[ "$(cat "$T/notes.txt")" = "field notes, not a capture" ] || fail "notes.txt was changed"
[ ! -e "$T/hr1.btsnoop" ] || fail "a capture was created although the start failed"

start_sims() {
  "$BLESIM" --listen "$S/1.s" --profiles gatt,hr,battery,cts,dis --hr-rate 5 \
    --battery-period 1 > /dev/null 2>> "$T/sima.err" &
  SIMA=$!
  "$BLESIM" --listen "$S/2.s" --profiles gatt,battery,motion --steps-rate 2 --motion-rate 10 \
    --battery-period 2 > /dev/null 2>> "$T/simc.err" &
  SIMC=$!
  for s in 1 2; do
    for _ in $(seq 1 100); do [ -S "$S/$s.s" ] && break; sleep 0.05; done
  done
}
stop_sims() {
  kill -TERM "$SIMA" "$SIMC"; wait "$SIMA" "$SIMC" || fail "blesim exit"
}
count() { sqlite3 "$T/engaged.db" "SELECT COUNT(*) FROM events WHERE source = '$1' ${2:-}"; }
# wait_events SOURCE N [EXTRA-SQL]
wait_events() {
  for _ in $(seq 1 150); do
    [ "$(count "$1" "${3:-}")" -ge "$2" ] && return 0; sleep 0.2
  done
  fail "$1: fewer than $2 events ${3:-}"
}

"$BLESIM" --listen "$S/3.s" --profiles gatt,hr --hr-rate 50 > /dev/null 2> "$T/simd.err" &
SIMD=$!
start_sims
: > "$T/status.out"
$PY "$TOOL" sub "ipc://$T/feed" status/ "$T/status.out" --min 1000000 --seconds 300 > /dev/null &
start_daemon "$T/engaged.conf" "$T/daemon.log"
wait_events hr1 15
wait_events pt2 3 "AND type = 'steps'"
for _ in $(seq 1 100); do
  grep -q "ble lim3: record $T/lim3.btsnoop: the capture reached record_max" "$T/daemon.log" && break
  sleep 0.2
done
# the captures in status/<source>: growing, and lim3's stopped at record_max
for _ in $(seq 1 100); do grep -q '"stopped":"record_max"' "$T/status.out" && break; sleep 0.1; done
$PY - "$T/status.out" <<'EOP' || fail "record in status/<source>"
import json, sys
last = {}
for l in open(sys.argv[1]):
    topic, m = json.loads(l)[:2]
    last[topic] = m["record"]
hr, lim = last["status/hr1"], last["status/lim3"]
assert hr["records"] > 0 and hr["bytes"] > 16 and hr["stopped"] is None, hr
assert lim["stopped"] == "record_max" and lim["bytes"] <= 8192 and lim["not_recorded"] > 0, lim
EOP
# both links lost, then back: every connection discovers in full
stop_sims
N1=$(count hr1); P1=$(count pt2)
sleep 1.5
start_sims
wait_events hr1 $((N1 + 10))
wait_events pt2 $((P1 + 8))
stop_daemon || fail "daemon exit"
L1=$(count lim3)
# a second run appends to the same captures
start_daemon "$T/engaged.conf" "$T/daemon.log"
wait_events hr1 $(($(count hr1) + 10))
wait_events pt2 $(($(count pt2) + 5)) "AND type = 'steps'"
wait_events lim3 $((L1 + 50))
stop_daemon || fail "daemon exit (second run)"
stop_sims
kill -TERM "$SIMD"; wait "$SIMD" || true

for f in hr1 pt2 lim3; do
  [ "$(stat -c %a "$T/$f.btsnoop")" = 600 ] || fail "$f.btsnoop mode $(stat -c %a "$T/$f.btsnoop")"
done
[ "$(grep -c 'ble hr1 .*streaming (discovered' "$T/daemon.log")" -ge 3 ] || fail "hr1 connections"
! grep -q 'ble hr1 .*streaming (cached' "$T/daemon.log" || fail "a recorded source used the cache"
[ "$(grep -c "lim3.*reached record_max" "$T/daemon.log")" -eq 2 ] || fail "record_max: one log line per run expected"
[ "$(stat -c %s "$T/lim3.btsnoop")" -le 8192 ] || fail "lim3.btsnoop beyond record_max"

# the captures' HCI framing: two sessions, every connection opened and closed
$PY - "$T" <<'EOP' || fail "capture structure"
import struct, sys
for name, conns in (("hr1", 3), ("pt2", 3)):
    b = open(f"{sys.argv[1]}/{name}.btsnoop", "rb").read()
    assert b[:16] == b"btsnoop\0" + struct.pack(">II", 1, 1002), b[:16]
    off, kinds = 16, {"reset": 0, "conn": 0, "disc": 0, "acl": 0}
    while off < len(b):
        orig, incl, flags, drops, ts = struct.unpack(">IIIIq", b[off:off + 24])
        d = b[off + 24:off + 24 + incl]
        assert orig == incl and len(d) == incl, off
        if d[:4] == b"\x01\x03\x0c\x00": kinds["reset"] += 1
        elif d[:2] == b"\x04\x3e" and d[3] == 1: kinds["conn"] += 1
        elif d[:2] == b"\x04\x05": kinds["disc"] += 1
        elif d[:1] == b"\x02": kinds["acl"] += 1
        off += 24 + incl
    assert off == len(b), (off, len(b))
    assert kinds["reset"] == 2 and kinds["conn"] >= conns and kinds["conn"] == kinds["disc"], (name, kinds)
    print(name, len(b), "bytes:", kinds)
EOP

# each capture replays to exactly the events the daemon stored for its source
compare() { # SOURCE PARTICIPANT
  rm -f "$T/r-$1.db"
  "$ENGAGED" replay --participant "$2" --store "$T/r-$1.db" --out /dev/null "$T/$1.btsnoop" \
    > /dev/null 2> "$T/replay-$1.err" || { cat "$T/replay-$1.err"; fail "replay of $1"; }
  ! grep -v '^replay:' "$T/replay-$1.err" | grep -q . || { cat "$T/replay-$1.err"; fail "replay of $1 reported problems"; }
  $PY - "$T/engaged.db" "$1" "$T/r-$1.db" "${3:-equal}" <<'EOP' || fail "events of $1"
import json, sqlite3, sys
def events(db, source):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out = []
    for (b,) in con.execute("SELECT body FROM events WHERE source = ? ORDER BY id", (source,)):
        e = json.loads(b)
        for k in ("source", "seq", "participant"):
            e.pop(k, None)
        out.append(json.dumps(e, sort_keys=True))
    return out
live, rep = events(sys.argv[1], sys.argv[2]), events(sys.argv[3], "btsnoop")
types = sorted({json.loads(e)["type"] for e in live})
if sys.argv[4] == "equal":
    if sorted(live) != sorted(rep):
        missing = [e for e in live if e not in set(rep)][:3]
        extra = [e for e in rep if e not in set(live)][:3]
        sys.exit(f"{sys.argv[2]}: {len(live)} stored, {len(rep)} replayed; only stored: {missing}; only replayed: {extra}")
    print(f"{sys.argv[2]}: {len(live)} events ({', '.join(types)}) stored = replayed")
else:  # the capture stopped at record_max: a prefix of what was stored
    assert 0 < len(rep) < len(live) and all(e in set(live) for e in rep), (len(rep), len(live))
    print(f"{sys.argv[2]}: {len(rep)} of {len(live)} stored events recorded before record_max")
EOP
}
compare hr1 p01
compare pt2 p02
compare lim3 p01 prefix
[ "$(sqlite3 "$T/r-pt2.db" "SELECT COUNT(DISTINCT type) FROM events WHERE type IN ('steps', 'accel', 'battery')")" -eq 3 ] || fail "pt2: steps, accel and battery expected"
no_sanitizer_report "$T/daemon.log"
echo "ok"
