#!/usr/bin/env python3
"""Proximal effect of a micro-randomised nudge rule, from an engaged store (docs/nudges.md).

usage: proximal_effect.py STORE.db RULE

Reads the rule's decisions (table `nudges`) and their proximal outcome (feature
`nudge.reengaged_24h`: any intervention use within 24 h of the decision, joined on the nudge
id), keeps the decision points that were available for randomisation, and estimates the
effect of sending on the outcome as the difference of the two arms' means, with
inverse-probability weights so that rules whose probability changed over time are handled,
and a participant-clustered (sandwich) standard error: decisions of one participant are not
independent. For a single constant p this is the difference of means; see Boruvka et al.
(2018, JASA) for the weighted-centred least squares that also handles covariates and
moderators."""
import json
import math
import sqlite3
import sys
from collections import defaultdict


def load(db, rule):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    decisions = {}
    for (body,) in con.execute("SELECT body FROM nudges WHERE rule = ? ORDER BY id", (rule,)):
        d = json.loads(body)
        if d["available"] and d["decision"] in ("send", "withhold"):
            decisions[d["id"]] = d
    outcome = {}
    for (body,) in con.execute(
            "SELECT body FROM features WHERE feature = 'nudge.reengaged_24h' ORDER BY id"):
        f = json.loads(body)
        outcome[f["nudge"]] = f["value"]   # the last revision wins
    return [(d["participant"], d["decision"] == "send", d["p"], outcome[i])
            for i, d in decisions.items() if outcome.get(i) is not None]


def estimate(rows):
    # Horvitz-Thompson means of each arm: E[Y | send] and E[Y | withhold]
    n = len(rows)
    mu1 = sum(a * y / p for _, a, p, y in rows) / sum(a / p for _, a, p, _ in rows)
    mu0 = (sum((1 - a) * y / (1 - p) for _, a, p, y in rows)
           / sum((1 - a) / (1 - p) for _, a, p, _ in rows))
    effect = mu1 - mu0
    # influence of each decision point, summed per participant (cluster-robust variance)
    w1 = sum(a / p for _, a, p, _ in rows) / n
    w0 = sum((1 - a) / (1 - p) for _, a, p, _ in rows) / n
    per = defaultdict(float)
    for pid, a, p, y in rows:
        per[pid] += a / p * (y - mu1) / w1 - (1 - a) / (1 - p) * (y - mu0) / w0
    se = math.sqrt(sum(v * v for v in per.values())) / n
    return effect, se, mu1, mu0, len(per)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = load(sys.argv[1], sys.argv[2])
    if not rows or all(a for _, a, _, _ in rows) or not any(a for _, a, _, _ in rows):
        sys.exit("need decisions in both arms with an outcome")
    effect, se, mu1, mu0, k = estimate(rows)
    print("decision points %d (sent %d), participants %d" %
          (len(rows), sum(a for _, a, _, _ in rows), k))
    print("re-engaged within 24 h: sent %.3f, withheld %.3f" % (mu1, mu0))
    print("proximal effect %.3f, 95%% CI %.3f .. %.3f" %
          (effect, effect - 1.96 * se, effect + 1.96 * se))


if __name__ == "__main__":
    main()
