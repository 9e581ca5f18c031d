"""Helper of test_nudge_analysis.sh.

base N_PART N_DAYS: heartbeats every 3 h for N_PART participants over N_DAYS (JSON Lines).
uses DECISIONS SEED: for every send/withhold decision of rule `mrt` in the replay output
  DECISIONS, an intervention use (a `module` start) 3 h later with probability 0.55 after a
  send and 0.25 after a withhold: a true proximal effect of 0.30.
merge A B: the two recordings as one, in time order, seq renumbered per source."""
import json
import random
import sys


def base(n_part, n_days):
    t0 = 1767225600000  # 2026-01-01T00:00Z
    for h in range(n_days * 8):
        for p in range(n_part):
            print('{"ts":%d,"participant":"a%03d","source":"phone-a%03d","type":"battery",'
                  '"pct":60}' % (t0 + h * 3 * 3600000, p, p))


def uses(path, seed):
    rnd = random.Random(seed)
    for line in open(path):
        d = json.loads(line)
        if d.get("rule") != "mrt" or d["decision"] not in ("send", "withhold"):
            continue
        if rnd.random() < (0.55 if d["decision"] == "send" else 0.25):
            print('{"ts":%d,"participant":"%s","source":"phone-%s","type":"module",'
                  '"module":"m1","state":"started"}' % (d["ts"] + 3 * 3600000,
                                                         d["participant"], d["participant"]))


def merge(a, b):
    rows = [json.loads(l) for f in (a, b) for l in open(f)]
    rows.sort(key=lambda r: (r["ts"], r["participant"], r["type"]))
    seq = {}
    for r in rows:
        seq[r["source"]] = seq.get(r["source"], 0) + 1
        r["seq"] = seq[r["source"]]
        print(json.dumps(r, separators=(",", ":")))


if __name__ == "__main__":
    if sys.argv[1] == "base":
        base(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "uses":
        uses(sys.argv[2], int(sys.argv[3]))
    else:
        merge(sys.argv[2], sys.argv[3])
