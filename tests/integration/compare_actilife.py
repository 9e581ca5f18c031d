#!/usr/bin/python3
"""Per-epoch sleep/wake of `engaged replay --epochs` against an ActiLife 6 export
(Date,Time,Axis1,...,Sleep or Awake?), in time order.
usage: compare_actilife.py EXPORT.csv OUT.jsonl [UNSCORED_TAIL]
UNSCORED_TAIL: epochs at the end engaged must leave unscored (a partial last epoch)."""
import csv, json, sys

rows = list(csv.DictReader(open(sys.argv[1])))
tail = int(sys.argv[3]) if len(sys.argv) > 3 else 0
eps = sorted((json.loads(l) for l in open(sys.argv[2])), key=lambda r: r["start"])
eps = [r for r in eps if r["feature"] == "act.epoch"]
bad = 0
if len(eps) != len(rows):
    print("FAIL %d epoch records, %d rows in the export" % (len(eps), len(rows)))
    sys.exit(1)
for i, (r, e) in enumerate(zip(rows, eps)):
    want = None if i >= len(rows) - tail else (1 if r["Sleep or Awake?"] == "S" else 0)
    counts_ok = i >= len(rows) - tail or e["value"] == int(r["Axis1"])
    if e["sleep"] != want or not counts_ok:
        bad += 1
        if bad <= 5:
            print("FAIL epoch %d (%s %s): sleep %r counts %r, expected %r %s"
                  % (i, r["Date"], r["Time"], e["sleep"], e["value"], want, r["Axis1"]))
print("%d epochs, %d mismatches (%d unscored at the end by design)" % (len(rows), bad, tail))
sys.exit(1 if bad else 0)
