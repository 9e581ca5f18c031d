#!/usr/bin/env python3
"""Generates demo/demo.jsonl: a synthetic, deterministic recording of two participants over
five days (2026-03-26..30), across the European DST change (Europe/London, 29 March: a 23-hour
day). Phone events only: screen unlock episodes, app foregrounds, EMA prompts and battery
heartbeats. Re-run after changing it; the output is committed and embedded in the binary."""
import json
import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

PARTICIPANTS = [("p01", "America/New_York", "org.example.mindapp"),
                ("p02", "Europe/London", "org.example.mindapp")]
APPS = ["com.android.chrome", "com.whatsapp", "com.spotify.music", "org.example.mindapp"]


def main():
    rnd = random.Random(20261126)
    events = []
    for pid, tzname, iapp in PARTICIPANTS:
        tz = ZoneInfo(tzname)
        seq = 0
        src = "phone-" + pid
        for day in range(5):
            d0 = datetime(2026, 3, 26, tzinfo=tz) + timedelta(days=day)
            # fewer unlocks as the days go on for p02: engagement fading
            n = rnd.randint(10, 16) if pid == "p01" else max(2, 14 - 3 * day)
            starts = sorted(rnd.uniform(7 * 3600, 23.5 * 3600) for _ in range(n))
            for hb in range(0, 24 * 3600, 1800):
                t = d0 + timedelta(seconds=hb)
                events.append((t, pid, src, {"type": "battery", "pct": 90 - (hb // 3600) * 3}))
            for s in starts:
                t = d0 + timedelta(seconds=s)
                length = rnd.expovariate(1 / 240.0) + 5
                events.append((t, pid, src, {"type": "screen", "state": "on"}))
                events.append((t + timedelta(milliseconds=400), pid, src,
                               {"type": "screen", "state": "unlocked"}))
                app = rnd.choice(APPS if rnd.random() > 0.2 else [iapp])
                events.append((t + timedelta(seconds=2), pid, src,
                               {"type": "app", "app": app, "state": "foreground"}))
                off = t + timedelta(seconds=length)
                events.append((off, pid, src, {"type": "screen", "state": "off"}))
                events.append((off + timedelta(milliseconds=300), pid, src,
                               {"type": "screen", "state": "locked"}))
            for k, hour in enumerate((10, 19)):
                t = d0 + timedelta(hours=hour)
                prompt = "ema-%d-%d" % (day, k)
                events.append((t, pid, src, {"type": "ema", "prompt": prompt, "state": "delivered"}))
                if rnd.random() < (0.9 if pid == "p01" else 0.7 - 0.15 * day):
                    events.append((t + timedelta(minutes=rnd.randint(1, 40)), pid, src,
                                   {"type": "ema", "prompt": prompt, "state": "answered"}))
        del seq
    events.sort(key=lambda e: (e[0].astimezone(timezone.utc), e[1]))
    seqs = {}
    with open("demo/demo.jsonl", "w") as f:
        for t, pid, src, body in events:
            seqs[src] = seqs.get(src, 0) + 1
            ts = int(t.astimezone(timezone.utc).timestamp() * 1000)
            rec = {"ts": ts, "participant": pid, "source": src, "seq": seqs[src]}
            rec.update(body)
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
