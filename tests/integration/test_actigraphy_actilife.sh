#!/usr/bin/env bash
# ActiLife 6's per-epoch Cole-Kripke and Sadeh scoring of GT3XPlus-RawData-Day01 through the
# whole replay path: from the 60-s CSV (0 mismatches of 1500) and from the 10-s .agd summed to
# minutes (the last minute holds 5 of 6 epochs: partial, so engaged leaves it unscored).
set -euo pipefail
d="$ENGAGED_SHARED/data/actigraphy"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cmp="$ENGAGED_SRC/tests/integration/compare_actilife.py"
conf="$ENGAGED_SRC/tests/data/actilife.conf"
sed 's/^sleep_scoring = actilife/sleep_scoring = actilife\nsleep_algorithm = sadeh/' "$conf" \
  > "$dir/sadeh.conf"
for alg in ColeKripke Sadeh; do
  c="$conf"; [ "$alg" = Sadeh ] && c="$dir/sadeh.conf"
  "$ENGAGED_BIN/engaged" replay -c "$c" --participant p01 --epochs --out "$dir/csv.jsonl" \
    "$d/GT3XPlus-RawData-Day01-10sec60sec.csv"
  /usr/bin/python3 "$cmp" "$d/GT3XPlus-RawData-Day01-$alg.csv" "$dir/csv.jsonl"
  "$ENGAGED_BIN/engaged" replay -c "$c" --participant p01 --epochs --out "$dir/agd.jsonl" \
    "$d/GT3XPlus-RawData-Day01.agd"
  /usr/bin/python3 "$cmp" "$d/GT3XPlus-RawData-Day01-$alg.csv" "$dir/agd.jsonl" 1
done
