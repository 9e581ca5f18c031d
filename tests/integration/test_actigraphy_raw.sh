#!/usr/bin/env bash
# Raw acceleration through the whole replay path: agcounts' synthetic 100 Hz recording sent as
# `accel` blocks (uneven sizes, starting on a whole minute) must give, per 60-s epoch, exactly
# the counts agcounts 0.2.6 computed (agcounts_synth_counts_100Hz_60s.csv), on all three axes.
set -euo pipefail
raw="$ENGAGED_SHARED/data/raw"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 - "$raw/agcounts_synth_raw_100Hz.csv" > "$dir/in.jsonl" <<'PY'
import csv, json, sys
rows = [[float(r["X"]), float(r["Y"]), float(r["Z"])] for r in csv.DictReader(open(sys.argv[1]))]
t0, i, seq, sizes = 1767225600000, 0, 0, [4096, 1000, 17, 3000, 4096, 250]  # 2026-01-01 00:00Z
while i < len(rows):
    n = sizes[seq % len(sizes)]
    seq += 1
    print(json.dumps({"ts": t0 + i * 10, "participant": "r01", "source": "wrist", "seq": seq,
                      "type": "accel", "hz": 100, "g": rows[i:i + n]}, separators=(",", ":")))
    i += n
PY
"$ENGAGED_BIN/engaged" replay --epochs --out "$dir/out.jsonl" "$dir/in.jsonl"
/usr/bin/python3 - "$raw/agcounts_synth_counts_100Hz_60s.csv" "$dir/out.jsonl" <<'PY'
import csv, json, sys
want = [[int(r["X_counts"]), int(r["Y_counts(Axis1)"]), int(r["Z_counts"])]
        for r in csv.DictReader(open(sys.argv[1]))]
got = [json.loads(l) for l in open(sys.argv[2])]
got = sorted((r for r in got if r["feature"] == "act.epoch"), key=lambda r: r["start"])
bad = 0
for k, w in enumerate(want):
    g = got[k] if k < len(got) else None
    ok = g is not None and g["axes"] == w and g["value"] == w[1] and g["coverage"] == 1
    bad += not ok
    print("epoch %d: engaged %s, agcounts %s %s" % (k, g and g["axes"], w, "ok" if ok else "FAIL"))
if len(got) != len(want):
    print("FAIL %d epoch records, expected %d" % (len(got), len(want)))
    bad += 1
sys.exit(1 if bad else 0)
PY
