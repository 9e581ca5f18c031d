#!/usr/bin/env bash
# Robustness of the act family: 20 seeds x 3,000 random wearable events (counts of several
# epoch lengths, overlapping and out of order, accel blocks at defined, resampled and refused
# rates with jumps, wear on/off, tz switches, late events for revisions) through replay with
# --epochs and --summary. Each run must exit 0 (under ASan/UBSan in the sanitizer build: no
# report) and give the same output twice.
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for seed in $(seq 1 20); do
  /usr/bin/python3 - "$seed" > "$dir/in.jsonl" <<'PY'
import json, random, sys
r = random.Random(int(sys.argv[1]))
t, seq, out = 1767225600000, 0, []
for _ in range(3000):
    seq += 1
    t += r.choice([60000, 60000, 60000, 10000, 600000, 3600000, -120000, -7200000])
    ev = {"ts": t, "participant": r.choice(["w1", "w2"]), "source": r.choice(["a", "b"]), "seq": seq}
    k = r.random()
    if k < 0.6:
        ev.update(type="counts", epoch_s=r.choice([60, 60, 10, 30, 120, 86400]),
                  counts=r.choice([0, 0, 5, 300, 2000, 1e6]))
        if r.random() < 0.3:
            ev["counts"] = [r.randint(0, 3000) for _ in range(3)]
    elif k < 0.8:
        hz = r.choice([30, 100, 25, 7, 256])
        ev.update(type="accel", hz=hz, g=[[round(r.uniform(-2, 2), 3) for _ in range(3)]
                                          for _ in range(r.randint(1, 300))])
    elif k < 0.9:
        ev.update(type="wear", state=r.choice(["on", "off"]))
    elif k < 0.95:
        ev.update(type="tz", tz=r.choice(["Europe/Berlin", "America/New_York", "Asia/Kolkata"]))
    else:
        ev.update(type="steps", steps=r.randint(0, 100), interval_s=60)
    print(json.dumps(ev, separators=(",", ":")))
PY
  printf '[pipeline]\nrevise = 2d\nnonwear = %s\n' "$(case $((seed % 3)) in 0) echo choi;; 1) echo troiano;; *) echo none;; esac)" > "$dir/c.conf"
  "$ENGAGED_BIN/engaged" replay -c "$dir/c.conf" --epochs --summary --out "$dir/o1" "$dir/in.jsonl" 2> "$dir/e1"
  "$ENGAGED_BIN/engaged" replay -c "$dir/c.conf" --epochs --summary --out "$dir/o2" "$dir/in.jsonl" 2> /dev/null
  cmp "$dir/o1" "$dir/o2"
  ! grep -q 'runtime error\|Sanitizer' "$dir/e1"
  echo "seed $seed: $(wc -l < "$dir/o1") records; $(grep -c 'refused' "$dir/e1" || true) refusal lines"
done
