"""Micro-randomised nudge rule over 10,000 decision points (test_nudge_mrt.sh).

gen N_PART N_DAYS: JSON Lines with a battery heartbeat every 6 h for each participant, so that
  every local day closes with yield.phone and the rule `yield.phone >= 0` is decided once per
  participant-day (N_PART x N_DAYS decision points, the last day's at the end of input too).
check OUT P: the decisions of rule `mrt`, every one available with probability P, and the
  number sent within the exact binomial 99.9 % interval for that many trials."""
import json
import math
import sys


def gen(n_part, n_days):
    t0 = 1767225600000  # 2026-01-01T00:00Z
    seq = 0
    out = sys.stdout
    for h in range(n_days * 4):
        for p in range(n_part):
            seq += 1
            out.write('{"ts":%d,"participant":"m%03d","source":"phone-m%03d","seq":%d,'
                      '"type":"battery","pct":50}\n' % (t0 + h * 6 * 3600000, p, p, seq))


def binom_interval(n, p, alpha):
    """Smallest k_lo and largest k_hi with P(X < k_lo) <= alpha/2 and P(X > k_hi) <= alpha/2."""
    logp, logq = math.log(p), math.log1p(-p)
    pmf = [math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                    + k * logp + (n - k) * logq) for k in range(n + 1)]
    lo, acc = 0, 0.0
    while acc + pmf[lo] <= alpha / 2:
        acc += pmf[lo]
        lo += 1
    hi, acc = n, 0.0
    while acc + pmf[hi] <= alpha / 2:
        acc += pmf[hi]
        hi -= 1
    return lo, hi


def check(path, p):
    n = sent = 0
    bad = []
    per_part = {}
    for line in open(path):
        r = json.loads(line)
        if r.get("rule") != "mrt":
            continue
        if r["decision"] not in ("send", "withhold") or not r["available"] or r["p"] != p:
            bad.append(line.strip())
            continue
        want = "randomised_send" if r["decision"] == "send" else "randomised_withhold"
        if r["reason"] != want:
            bad.append(line.strip())
        n += 1
        sent += r["decision"] == "send"
        per_part[r["participant"]] = per_part.get(r["participant"], 0) + (r["decision"] == "send")
    lo, hi = binom_interval(n, p, 0.001)
    print("%d decisions, %d sent (%.4f), 99.9%% interval for p=%g: %d..%d; %d participants, "
          "%d with no send" % (n, sent, sent / n if n else 0, p, lo, hi, len(per_part),
                               sum(1 for v in per_part.values() if v == 0)))
    for b in bad[:5]:
        print("FAIL unexpected decision:", b)
    ok = not bad and n >= 10000 and lo <= sent <= hi
    if n < 10000:
        print("FAIL fewer than 10,000 decision points")
    if not lo <= sent <= hi:
        print("FAIL send count outside the interval")
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(check(sys.argv[2], float(sys.argv[3])))
