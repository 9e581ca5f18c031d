#!/usr/bin/env bash
# A micro-randomised rule (probability 0.3) over 100 participants x 100 days = 10,000 decision
# points: every decision is recorded with p and availability, the fraction sent lies in the
# exact binomial 99.9 % interval of p, a second replay gives the same bytes, and another
# [study] seed gives other draws.
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
py="$ENGAGED_SRC/tests/integration/nudge_mrt.py"
/usr/bin/python3 "$py" gen 100 100 > "$dir/in.jsonl"
conf() { # SEED
  cat <<EOC
[study]
seed = $1
[nudge mrt]
when = yield.phone >= 0
message = mrt-prompt
probability = 0.3
cooldown = 0
max_per_day = 100
max_per_week = 700
repeat_unanswered = yes
min_coverage = 0
EOC
}
conf 20261126 > "$dir/a.conf"
conf 20261127 > "$dir/b.conf"
"$ENGAGED_BIN/engaged" replay -c "$dir/a.conf" --out "$dir/out1.jsonl" "$dir/in.jsonl"
"$ENGAGED_BIN/engaged" replay -c "$dir/a.conf" --out "$dir/out2.jsonl" "$dir/in.jsonl"
cmp "$dir/out1.jsonl" "$dir/out2.jsonl"
/usr/bin/python3 "$py" check "$dir/out1.jsonl" 0.3
"$ENGAGED_BIN/engaged" replay -c "$dir/b.conf" --out "$dir/out3.jsonl" "$dir/in.jsonl"
grep '"rule":"mrt"' "$dir/out1.jsonl" | sed 's/"id":"[^"]*",//' > "$dir/d1"
grep '"rule":"mrt"' "$dir/out3.jsonl" | sed 's/"id":"[^"]*",//' > "$dir/d3"
if cmp -s "$dir/d1" "$dir/d3"; then echo "FAIL: another seed gave the same decisions"; exit 1; fi
/usr/bin/python3 "$py" check "$dir/out3.jsonl" 0.3
