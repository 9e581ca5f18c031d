#!/usr/bin/env bash
# Crash safety: a client streams a multi-day recording through the ingest socket and resends
# whatever was not acknowledged, while the daemon is killed with SIGKILL several times and
# restarted. Afterwards no event is lost or duplicated (replaying the store equals replaying
# the recording) and the stored features equal those of an uninterrupted run.
source "$(dirname "$0")/lib.sh"
REC="$ENGAGED_SRC/demo/demo.jsonl"

# reference: an uninterrupted live run
write_conf "$T/engaged.conf"
reference_run "$T/engaged.conf" "$REC" 20
$PY "$TOOL" features "$T/ref/engaged.db" > "$T/ref.features"

# the interrupted run
start_daemon "$T/engaged.conf" "$T/daemon.log"
push_with_kills "$T/engaged.conf" "$REC" 5 --batch 3 --timeout 1000 --delay 15
kills=$KILLS
cat "$T/acks.json"
stop_daemon
[ $kills -ge 3 ] || { echo "the recording finished before the daemon could be killed 3 times"; exit 1; }

# nothing lost or duplicated: the store replays exactly like the recording
"$ENGAGED" replay -c "$T/engaged.conf" --out "$T/from-store.jsonl" "$T/engaged.db"
"$ENGAGED" replay -c "$T/engaged.conf" --out "$T/from-file.jsonl" "$REC"
cmp "$T/from-store.jsonl" "$T/from-file.jsonl"
n_events=$(db_value "$T/engaged.db" "select count(*) from events")
[ "$n_events" = "$(grep -c . "$REC")" ] || { echo "store has $n_events events"; exit 1; }

# features equal the uninterrupted run's, record for record
$PY "$TOOL" features "$T/engaged.db" > "$T/features"
diff "$T/ref.features" "$T/features"
echo "restart ok: $kills kills, $n_events events, $(wc -l < "$T/features") records identical to the uninterrupted run"
