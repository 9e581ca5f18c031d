#!/usr/bin/env bash
# RAPIDS' multiple-time-zone schedule (rapids_multiple_timezones.csv) as tz events: every day
# window engaged emits must be the one derived independently from the schedule with zoneinfo,
# for all five RAPIDS participants and both DST blocks of 2020.
set -euo pipefail
sched="$ENGAGED_SHARED/data/phone/rapids_multiple_timezones.csv"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
py="$ENGAGED_SRC/tests/integration/rapids_timezones.py"
/usr/bin/python3 "$py" gen "$sched" > "$dir/in.jsonl"
"$ENGAGED_BIN/engaged" replay --out "$dir/out.jsonl" "$dir/in.jsonl"
/usr/bin/python3 "$py" check "$sched" "$dir/out.jsonl"
