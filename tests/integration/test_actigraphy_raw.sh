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

# Rates ActiGraph's algorithm does not define (25 Hz here) are resampled linearly to 30 Hz: a
# smooth 1.7 Hz walking signal must give per-minute counts within 10 % of the same signal
# recorded at 30 Hz in the walking minutes (measured: 1.3-4.2 %), and stay low in the
# near-still ones (counts near the dead band are not comparable); 5 Hz is refused and counted.
/usr/bin/python3 - "$dir" <<'PY'
import json, math, sys
d = sys.argv[1]
def write(path, hz, minutes=5):
    n, seq = int(hz * 60 * minutes), 0
    with open(path, "w") as f:
        for i0 in range(0, n, 1000):
            g = []
            for i in range(i0, min(n, i0 + 1000)):
                t = i / hz
                a = 0.3 if (t // 60) % 2 else 0.1
                g.append([round(a * math.sin(2 * math.pi * 1.7 * t), 5),
                          round(-1 + a * math.sin(2 * math.pi * 1.7 * t + 1), 5),
                          round(0.5 * a * math.cos(2 * math.pi * 1.7 * t), 5)])
            seq += 1
            f.write(json.dumps({"ts": 1767225600000 + round(i0 * 1000 / hz), "participant": "r02",
                                "source": "wrist", "seq": seq, "type": "accel", "hz": hz,
                                "g": g}, separators=(",", ":")) + "\n")
write(d + "/r30.jsonl", 30)
write(d + "/r25.jsonl", 25)
write(d + "/r5.jsonl", 5)
PY
for hz in 30 25; do
  "$ENGAGED_BIN/engaged" replay --epochs --out "$dir/o$hz.jsonl" "$dir/r$hz.jsonl"
done
/usr/bin/python3 - "$dir/o30.jsonl" "$dir/o25.jsonl" <<'PY'
import json, sys
def epochs(p):
    return [r for r in (json.loads(l) for l in open(p)) if r["feature"] == "act.epoch"]
a, b = epochs(sys.argv[1]), epochs(sys.argv[2])
bad = len(a) != 5 or len(b) != 5
for x, y in zip(a, b):
    for i in range(3):
        rel = abs(x["axes"][i] - y["axes"][i]) / max(1, x["axes"][i])
        print("minute %d axis %d: 30 Hz %d, 25 Hz resampled %d (%.1f %%)"
              % (a.index(x), i, x["axes"][i], y["axes"][i], 100 * rel))
        if max(x["axes"][:2]) >= 1000:   # walking minutes: within 10 %
            bad |= rel > 0.10
        else:                            # near-still minutes (at the dead band): both low
            bad |= max(x["axes"][i], y["axes"][i]) >= 100
sys.exit(1 if bad else 0)
PY
"$ENGAGED_BIN/engaged" replay --epochs --out "$dir/o5.jsonl" "$dir/r5.jsonl" 2> "$dir/err5"
grep -q "actigraphy epochs refused" "$dir/err5"
! grep -q act.epoch "$dir/o5.jsonl"
