#!/usr/bin/env bash
# The analysis example of docs/nudges.md (docs/examples/proximal_effect.py) recovers a known
# proximal effect: a micro-randomised rule (p = 0.5, decided at 08:00 each day for 50
# participants over 60 days) is replayed once; intervention use is then generated after each
# decision with probability 0.55 after a send and 0.25 after a withhold (effect 0.30); the
# recording with that use is replayed into a store, where every decision is the same as in the
# first pass, and the example must estimate the effect within 4 standard errors of 0.30, with
# a 95 % interval that excludes 0.
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
py="$ENGAGED_SRC/tests/integration/nudge_analysis.py"
cat > "$dir/mrt.conf" <<EOC
[study]
seed = 4711
[nudge mrt]
when = yield.phone >= 0
message = try-a-module
probability = 0.5
cooldown = 0
max_per_day = 100
max_per_week = 700
repeat_unanswered = yes
min_coverage = 0
quiet_hours = 22:00-08:00
EOC
/usr/bin/python3 "$py" base 50 60 > "$dir/base.jsonl"
/usr/bin/python3 "$py" merge "$dir/base.jsonl" /dev/null > "$dir/a.jsonl"
"$ENGAGED_BIN/engaged" replay -c "$dir/mrt.conf" --out "$dir/pass1.jsonl" "$dir/a.jsonl"
/usr/bin/python3 "$py" uses "$dir/pass1.jsonl" 7 > "$dir/uses.jsonl"
/usr/bin/python3 "$py" merge "$dir/base.jsonl" "$dir/uses.jsonl" > "$dir/b.jsonl"
"$ENGAGED_BIN/engaged" replay -c "$dir/mrt.conf" --store "$dir/study.db" --out "$dir/pass2.jsonl" "$dir/b.jsonl"
# the draws depend on the seed, the participant, the rule and the time only
dec() { /usr/bin/python3 -c "
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d.get('rule') == 'mrt': print(d['participant'], d['ts'], d['decision'])" "$1"; }
diff <(dec "$dir/pass1.jsonl") <(dec "$dir/pass2.jsonl")
/usr/bin/python3 "$ENGAGED_SRC/docs/examples/proximal_effect.py" "$dir/study.db" mrt | tee "$dir/est.txt"
/usr/bin/python3 - "$dir/est.txt" <<'EOP'
import re, sys
t = open(sys.argv[1]).read()
eff, lo, hi = map(float, re.search(r"effect (-?[\d.]+), 95% CI (-?[\d.]+) \.\. (-?[\d.]+)", t).groups())
se = (hi - lo) / (2 * 1.96)
assert abs(eff - 0.30) < 4 * se, "effect %.3f not within 4 SE (%.3f) of 0.30" % (eff, se)
assert lo > 0, "the 95%% interval includes 0"
print("recovered the true effect 0.30: %.3f (SE %.3f)" % (eff, se))
EOP
