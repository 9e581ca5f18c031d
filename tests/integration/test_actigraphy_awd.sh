#!/usr/bin/env bash
# example_01.AWD through `engaged replay` in pyActigraphy mode: the recording's rhythm metrics
# (binarised and raw counts), the per-epoch Cole-Kripke scoring (with and without Webster
# rescoring) and the SRI must equal pyActigraphy's.
set -euo pipefail
awd="$ENGAGED_SHARED/data/actigraphy/example_01.AWD"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
conf="$ENGAGED_SRC/tests/data/pyactigraphy.conf"
cmp="$ENGAGED_SRC/tests/integration/compare_pyactigraphy.py"
"$ENGAGED_BIN/engaged" replay -c "$conf" --participant p01 --summary --epochs \
  --out "$dir/bin.jsonl" "$awd"
/usr/bin/python3 "$cmp" binarised "$dir/bin.jsonl"
{ cat "$conf"; echo "rhythm_binarize = no"; } > "$dir/raw.conf"
"$ENGAGED_BIN/engaged" replay -c "$dir/raw.conf" --participant p01 --summary \
  --out "$dir/raw.jsonl" "$awd"
/usr/bin/python3 "$cmp" raw "$dir/raw.jsonl"
# the same numbers whatever zone the file's clock is read in (the day is the wall clock's)
"$ENGAGED_BIN/engaged" replay -c "$conf" --participant p01 --tz America/New_York --summary \
  --out "$dir/ny.jsonl" "$awd"
/usr/bin/python3 "$cmp" binarised "$dir/ny.jsonl"
# pyActigraphy's default Webster rescoring: 9791 sleep epochs and its SRI
sed 's/^sleep_rescore = none/sleep_rescore = webster/' "$conf" > "$dir/webster.conf"
"$ENGAGED_BIN/engaged" replay -c "$dir/webster.conf" --participant p01 --summary --epochs \
  --out "$dir/w.jsonl" "$awd"
/usr/bin/python3 "$cmp" webster "$dir/w.jsonl"
