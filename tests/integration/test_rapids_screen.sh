#!/usr/bin/env bash
# RAPIDS-compatible screen features on RAPIDS' own test data (America/New_York, both DST
# Sundays of 2020) against RAPIDS' expected daily output.
set -euo pipefail
data="$ENGAGED_SHARED/data/phone"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$ENGAGED_BIN/engaged" replay -c "$ENGAGED_SRC/tests/data/rapids.conf" --out "$out" \
  "$data/rapids_phone_screen_raw.csv"
/usr/bin/python3 "$ENGAGED_SRC/tests/integration/compare_rapids_screen.py" \
  "$data/rapids_expected_stz_daily_phone_screen.csv" "$out" android
