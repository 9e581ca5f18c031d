#!/usr/bin/env bash
# `engaged replay` of a btsnoop capture (drivers/file_btsnoop.c): three days of Heart Rate
# notifications after a discovery, written by tests/integration/btsnoop_gen.py (an
# implementation independent of drivers/btsnoop.c), give byte for byte the feature records of
# the same measurements as JSON Lines events; the capture's two broken records are reported
# with their record numbers and are not fatal; --participant is required; auto-detection
# and --format btsnoop agree; a file cut short still replays what precedes the cut.
set -euo pipefail
bin="$ENGAGED_BIN/engaged"
gen="$ENGAGED_SRC/tests/integration/btsnoop_gen.py"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

/usr/bin/python3 "$gen" hr "$dir/hr.btsnoop" "$dir/hr.jsonl" 3

"$bin" replay --participant p1 "$dir/hr.btsnoop" > "$dir/snoop.out" 2> "$dir/snoop.err"
"$bin" replay "$dir/hr.jsonl" > "$dir/jsonl.out" 2> "$dir/jsonl.err"
grep -q '"feature":"yield.wearable"' "$dir/snoop.out"
[ "$(grep -c '"feature":"yield.wearable"' "$dir/snoop.out")" -eq 4 ]
cmp "$dir/snoop.out" "$dir/jsonl.out"
grep -q '^replay: 4321 events accepted.* 2 bad lines' "$dir/snoop.err"
grep -q 'hr.btsnoop:154: value on handle 0x0077 .*did not map' "$dir/snoop.err"
grep -q 'hr.btsnoop:297: L2CAP header says 2 bytes' "$dir/snoop.err"

# the same with --format
"$bin" replay --participant p1 --format btsnoop "$dir/hr.btsnoop" 2> /dev/null \
  | cmp - "$dir/snoop.out"

# no --participant: refused with the reason, nothing printed on stdout
if "$bin" replay "$dir/hr.btsnoop" > "$dir/none.out" 2> "$dir/none.err"; then
  echo "replay without --participant succeeded" >&2
  exit 1
fi
grep -q -- '--participant' "$dir/none.err"
[ ! -s "$dir/none.out" ]

# cut in the middle of a record: what came before is replayed, the cut is reported
size=$(stat -c %s "$dir/hr.btsnoop")
head -c $((size / 2 + 7)) "$dir/hr.btsnoop" > "$dir/cut.btsnoop"
"$bin" replay --participant p1 "$dir/cut.btsnoop" > "$dir/cut.out" 2> "$dir/cut.err"
grep -q 'truncated' "$dir/cut.err"
grep -q '"feature":"yield.wearable"' "$dir/cut.out"
echo "ok"
