#!/usr/bin/env bash
# App-usage and engagement features on RAPIDS' own test data: the android participant's app
# foreground rows with its screen rows (America/New_York, both DST Sundays of 2020), read
# from the AWARE CSV exports and merged by event time, against values derived by hand in
# compare_rapids_apps.py. A second run checks app_exclude and app_ignore_shorter.
set -euo pipefail
data="$ENGAGED_SHARED/data/phone"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cat > "$T/apps.conf" <<'CONF'
[pipeline]
screen_ignore_shorter = 0
screen_ignore_longer = 0

[participant android]
tz = America/New_York
intervention_apps = com.facebook.orca, com.aware.phone
CONF
sed 's/^\[pipeline\]$/[pipeline]\napp_exclude = com.android.systemui, com.android.launcher3\napp_ignore_shorter = 15s/' \
  "$T/apps.conf" > "$T/filtered.conf"
for run in default filtered; do
  conf="$T/apps.conf"; [ $run = filtered ] && conf="$T/filtered.conf"
  "$ENGAGED_BIN/engaged" replay -c "$conf" --out "$T/$run.jsonl" \
    "$data/rapids_phone_applications_foreground_raw.csv" "$data/rapids_phone_screen_raw.csv" \
    2> "$T/$run.err"
  # every row of both files is an event: 208 app rows and 160 screen rows
  grep -q "^replay: 368 events accepted, 0 duplicates, 0 late, 0 revising, 0 bad lines" "$T/$run.err" \
    || { cat "$T/$run.err"; echo "unexpected replay summary"; exit 1; }
  /usr/bin/python3 "$ENGAGED_SRC/tests/integration/compare_rapids_apps.py" $run "$T/$run.jsonl"
done
# the same files in the other order on the command line give the same records (ties between
# an app row and a screen row of the same millisecond are ordered by kind, not by input)
"$ENGAGED_BIN/engaged" replay -c "$T/apps.conf" --out "$T/swapped.jsonl" \
  "$data/rapids_phone_screen_raw.csv" "$data/rapids_phone_applications_foreground_raw.csv" 2>/dev/null
grep -E '"feature":"(app|engage)\.' "$T/default.jsonl" > "$T/a"
grep -E '"feature":"(app|engage)\.' "$T/swapped.jsonl" > "$T/b"
cmp -s "$T/a" "$T/b" || { diff "$T/a" "$T/b" | head; echo "input order changed app/engage records"; exit 1; }
echo "ok: input order does not matter ($(wc -l < "$T/a") app/engage records)"
