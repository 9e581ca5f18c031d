#!/usr/bin/env bash
# Crash safety: a client streams a multi-day recording through the ingest socket and resends
# whatever was not acknowledged, while the daemon is killed with SIGKILL several times and
# restarted. Afterwards no event is lost or duplicated (replaying the store equals replaying
# the recording) and the stored features equal those of an uninterrupted run.
source "$(dirname "$0")/lib.sh"
REC="$ENGAGED_SRC/demo/demo.jsonl"

# reference: an uninterrupted live run
mkdir "$T/ref"
write_conf "$T/ref.conf"
sed -i "s#$T/#$T/ref/#g" "$T/ref.conf"
"$ENGAGED" run -c "$T/ref.conf" > "$T/ref.log" 2>&1 &
REF=$!
for _ in $(seq 1 100); do [ -S "$T/ref/ingest" ] && break; sleep 0.1; done
$PY "$TOOL" push "ipc://$T/ref/ingest" "$REC" --batch 20 > "$T/ref.acks"
kill -TERM $REF; wait $REF
$PY "$TOOL" features "$T/ref/engaged.db" > "$T/ref.features"

# the interrupted run
write_conf "$T/engaged.conf"
start_daemon "$T/engaged.conf" "$T/daemon.log"
$PY "$TOOL" push "ipc://$T/ingest" "$REC" --batch 3 --timeout 1000 --delay 15 > "$T/acks.json" &
PUSH=$!
kills=0
while kill -0 $PUSH 2>/dev/null && [ $kills -lt 5 ]; do
  sleep 0.$((RANDOM % 5 + 3))
  kill -0 $PUSH 2>/dev/null || break
  kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true
  kills=$((kills + 1))
  echo "killed the daemon ($kills)"
  start_daemon "$T/engaged.conf" "$T/daemon.log"
done
wait $PUSH
cat "$T/acks.json"
stop_daemon
[ $kills -ge 3 ] || { echo "the recording finished before the daemon could be killed 3 times"; exit 1; }

# nothing lost or duplicated: the store replays exactly like the recording
"$ENGAGED" replay -c "$T/engaged.conf" --out "$T/from-store.jsonl" "$T/engaged.db"
"$ENGAGED" replay -c "$T/engaged.conf" --out "$T/from-file.jsonl" "$REC"
cmp "$T/from-store.jsonl" "$T/from-file.jsonl"
n_events=$($PY -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from events').fetchone()[0])" "$T/engaged.db")
[ "$n_events" = "$(grep -c . "$REC")" ] || { echo "store has $n_events events"; exit 1; }

# features equal the uninterrupted run's, record for record
$PY "$TOOL" features "$T/engaged.db" > "$T/features"
diff "$T/ref.features" "$T/features"
echo "restart ok: $kills kills, $n_events events, $(wc -l < "$T/features") records identical to the uninterrupted run"
