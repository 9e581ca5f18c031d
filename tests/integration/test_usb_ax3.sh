#!/usr/bin/env bash
# The daemon under umockdev-run with an emulated AX3 docked (tests/usb/ax3.umockdev: the USB
# device, its CDC-ACM tty and its disk; tests/usb/ax3.script: the command dialogue) and a CWA
# file generated here, with damaged, foreign, garbage and erased blocks, on the "mounted"
# volume (the testbed's /proc/self/mountinfo names it):
#   1. dock: identified, battery read, clock set; every valid sample stored once, exactly the
#      samples the file reader (engaged replay) gets from the same file; each damaged block
#      reported with its byte offset;
#   2. re-dock with a device that does not answer on its tty: downloaded anyway, nothing new;
#   3. re-dock after more was recorded: exactly the new samples.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/usb_lib.sh"
write_conf "$T/engaged.conf" "[source ax3-p01]" "driver = usb" "participant = p01" \
  "vid_pid = 04d8:0057" "serial = CWA17_00123"
mkdir -p "$T/vol"
CWA="$T/vol/CWA-DATA.CWA"
GEN=("/usr/bin/python3" "$USB_DIR/cwa_gen.py")
expect=$("${GEN[@]}" "$CWA" --start 2024-01-02T03:00:00 --blocks 600 --corrupt 100,101 \
  --garbage 250 --other 400 --erased 3 --expect)

samples() { # total samples of ax3-p01 in the store, and whether seqs are unique and growing
  /usr/bin/python3 - "$T/engaged.db" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT seq, body FROM events WHERE source = 'ax3-p01' ORDER BY id").fetchall()
seqs = [r[0] for r in rows]
ok = all(a < b for a, b in zip(seqs, seqs[1:]))
print(sum(len(json.loads(b)["g"]) for _, b in rows), "ok" if ok else "seq-disorder")
PY
}

completes() { cat "$T/daemon.log" 2>/dev/null | grep -c "download complete" || true; }

dock() { # SCRIPT: one dock under umockdev-run, until the download is complete
  local script=$1 n
  n=$(completes)
  "$UMOCKDEV_RUN" -d "$USB_DIR/ax3.umockdev" -s "/dev/ttyACM0=$USB_DIR/$script" -- bash -c '
    mkdir -p "$UMOCKDEV_DIR/proc/self"
    echo "100 1 8:1 / $1 ro,relatime - vfat /dev/sda1 ro" > "$UMOCKDEV_DIR/proc/self/mountinfo"
    "$2" run -c "$3" >> "$4" 2>&1 &
    echo $! > "$5"
    wait $!' _ "$T/vol" "$ENGAGED" "$T/engaged.conf" "$T/daemon.log" "$T/pid" &
  local run=$!
  for _ in $(seq 1 300); do
    [ "$(completes)" -gt "$n" ] && break
    kill -0 $run 2>/dev/null || { echo "daemon died"; cat "$T/daemon.log"; exit 1; }
    sleep 0.1
  done
  grep -q "download complete" "$T/daemon.log" || { echo "no download"; cat "$T/daemon.log"; exit 1; }
  sleep 0.3
  kill -TERM "$(cat "$T/pid")"
  wait $run || { echo "umockdev-run / daemon failed"; cat "$T/daemon.log"; exit 1; }
}

# the file reader's count for the same file, as a cross-check of the generator and the walk
"$ENGAGED" replay --participant p01 --store "$T/replay.db" --out /dev/null "$CWA" 2>/dev/null
ref=$(/usr/bin/python3 -c '
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(sum(len(json.loads(b)["g"]) for (b,) in db.execute("SELECT body FROM events")))' "$T/replay.db")
[ "$ref" = "$expect" ] || { echo "replay reads $ref samples, the generator wrote $expect"; exit 1; }

dock ax3.script
read -r got order <<<"$(samples)"
echo "first dock: $got samples stored ($expect valid written), $order"
[ "$got" = "$expect" ] && [ "$order" = ok ]
grep -q "AX3 hardware 17 firmware 47 device id 123" "$T/daemon.log"
grep -q "clock set" "$T/daemon.log"
grep -q "block at byte 52224 (sequence 100): checksum mismatch" "$T/daemon.log"
grep -q "block at byte 129024: not a CWA block" "$T/daemon.log"
grep -q 'block at byte 205824: block type "XY" is not read' "$T/daemon.log"
grep -q "3 damaged, 1 of other types" "$T/daemon.log"
grep -q "usb 1-1 (04d8:0057, serial CWA17_00123): source ax3-p01 (AX3/AX6)" "$T/daemon.log"

dock ax3-silent.script
grep -q "no reply to ID within 3 s" "$T/daemon.log"
read -r got2 order <<<"$(samples)"
echo "re-dock (silent tty): $got2 samples stored"
[ "$got2" = "$expect" ]
tail -n 5 "$T/daemon.log" | grep -q "0 samples in 0 events"

more=$("${GEN[@]}" "$CWA" --append --start 2000-01-01T00:00:00 --gap 5400 --blocks 250 --expect)
dock ax3.script
read -r got3 order <<<"$(samples)"
echo "third dock: $got3 samples stored ($((expect + more)) written), $order"
[ "$got3" = "$((expect + more))" ] && [ "$order" = ok ]
echo "usb ax3: dock, silent re-dock and incremental dock under umockdev-run"
