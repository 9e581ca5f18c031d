#!/usr/bin/env bash
# Actigraphy gives the same numbers whether a recording is replayed as one file or arrives as
# live epochs through the ingest socket, with the daemon killed (SIGKILL) and restarted on the
# way: every record the live daemon stored equals the replay's record of that window, and the
# interrupted run stores exactly what an uninterrupted live run stores.
source "$(dirname "$0")/lib.sh"
REC="$ENGAGED_SRC/tests/replay/act_days.jsonl" # 4,080 minutes of counts over four days
EXTRA=("[participant a01]" "tz = Europe/Berlin")

write_conf "$T/engaged.conf" "${EXTRA[@]}"
reference_run "$T/engaged.conf" "$REC" 40
$PY "$TOOL" features "$T/ref/engaged.db" > "$T/ref.features"

start_daemon "$T/engaged.conf" "$T/daemon.log"
push_with_kills "$T/engaged.conf" "$REC" 4 --batch 10 --timeout 1000 --delay 10
stop_daemon
kills=$KILLS
[ $kills -ge 2 ] || { echo "the recording finished before the daemon could be killed twice"; exit 1; }
$PY "$TOOL" features "$T/engaged.db" > "$T/features"
diff "$T/ref.features" "$T/features"

"$ENGAGED" replay -c "$T/engaged.conf" --out "$T/replay.jsonl" "$REC"
$PY - "$T/features" "$T/replay.jsonl" <<'PY'
import json, sys
live = [json.loads(l) for l in open(sys.argv[1])]
rep = {}
for l in open(sys.argv[2]):
    r = json.loads(l)
    rep[(r["feature"], r["window"], r["start"], r["revision"])] = r
act = [r for r in live if r["feature"].startswith(("act.", "adherence.wear", "yield.wearable"))]
bad = [r for r in act if rep.get((r["feature"], r["window"], r["start"], r["revision"])) != r]
days = sorted({r["local_date"] for r in act})
print("live: %d actigraphy records over %s; replay: %d; differing: %d"
      % (len(act), days, len(rep), len(bad)))
for r in bad[:5]:
    print("FAIL", r)
# the live daemon closes a day 3 h after its end: 01-05 .. 01-07 are closed, 01-08 is open
sys.exit(1 if bad or days != ["2026-01-05", "2026-01-06", "2026-01-07"] else 0)
PY
echo "actigraphy live: $kills kills, records identical to the uninterrupted run and to replay"
