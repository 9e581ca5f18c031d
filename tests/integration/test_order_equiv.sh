#!/usr/bin/env bash
# Reordering within [pipeline] lateness gives exactly the records of the sorted input
# (tests/replay/order_dedupe.md): order_dedupe.jsonl (arrival order, with duplicates and one
# late event) and order_sorted.jsonl (the same lines in event-time order, without the late
# one) must print byte-identical records, and so must their golden expectations.
set -euo pipefail
E="$ENGAGED_BIN/engaged"
R="$ENGAGED_SRC/tests/replay"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$E" replay -c "$R/order_dedupe.conf" "$R/order_dedupe.jsonl" > "$T/arrival.out" 2> "$T/arrival.err"
"$E" replay -c "$R/order_sorted.conf" "$R/order_sorted.jsonl" > "$T/sorted.out" 2> "$T/sorted.err"
[ -s "$T/arrival.out" ] || fail "no records"
cmp -s "$T/arrival.out" "$T/sorted.out" || { diff "$T/arrival.out" "$T/sorted.out"; fail "records differ"; }
grep -q '2 duplicates, 1 late' "$T/arrival.err" || { cat "$T/arrival.err"; fail "arrival order: expected 2 duplicates and 1 late"; }
grep -q '2 duplicates, 0 late' "$T/sorted.err" || { cat "$T/sorted.err"; fail "sorted: expected 2 duplicates and 0 late"; }
# the conf files must agree, and so must the record lines of the expectations
cmp -s <(grep -v '^#' "$R/order_dedupe.conf") <(grep -v '^#' "$R/order_sorted.conf") || fail "the two .conf differ"
cmp -s <(grep -v '^# ' "$R/order_dedupe.expected") <(grep -v '^# ' "$R/order_sorted.expected") ||
  fail "the record lines of order_dedupe.expected and order_sorted.expected differ"
# the sorted file really is sorted by ts and is the arrival file minus exactly one line
/usr/bin/python3 - "$R/order_dedupe.jsonl" "$R/order_sorted.jsonl" <<'EOF'
import json, sys
a = open(sys.argv[1]).read().splitlines()
s = open(sys.argv[2]).read().splitlines()
ts = [json.loads(l)["ts"] for l in s]
assert ts == sorted(ts), "order_sorted.jsonl is not in ts order"
missing = [l for l in a if l not in s]
assert len(s) == len(a) - 1 and len(missing) == 1, "order_sorted.jsonl must be order_dedupe.jsonl minus one line"
assert sorted(s) == sorted(l for l in a if l != missing[0])
EOF
echo "ok: arrival order within lateness = sorted order ($(wc -l < "$T/arrival.out") records)"
