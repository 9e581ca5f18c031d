#!/usr/bin/python3
"""RAPIDS' multiple-time-zone schedule replayed through engaged.

gen SCHEDULE.csv          -> prints a JSON Lines recording: every participant (RAPIDS device_id)
                             gets the schedule's switches as `tz` events plus an hourly battery
                             heartbeat over RAPIDS' two DST test blocks (Fri-Mon around
                             2020-03-08 and 2020-11-01, from 00:00 New York time).
check SCHEDULE.csv OUT    -> compares every `day` record engaged emitted with day windows
                             derived here, independently, with Python's zoneinfo: the zone in
                             force at t is the last schedule row at or before t (a row naming
                             the zone already in force changes nothing); a day window runs from
                             local midnight (or the switch that started the zone) to the next
                             local midnight (or the next switch). yield.phone must equal the
                             heartbeats in the window / the window's minutes.
"""
import csv, json, sys
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

HOUR = 3600000
BLOCKS = [(1583470800000, 4 * 24), (1604030400000, 4 * 24)]  # 2020-03-06 and 2020-10-30 00:00 EST/EDT


def raw_schedule(path):
    by = defaultdict(list)
    for r in csv.DictReader(open(path)):
        by[r["device_id"]].append((int(r["timestamp"]), r["tzcode"]))
    return by


def schedule(path):
    by = defaultdict(list)
    for r in csv.DictReader(open(path)):
        by[r["device_id"]].append((int(r["timestamp"]), r["tzcode"]))
    out = {}
    for pid, rows in by.items():
        rows.sort()
        merged = []
        for ts, z in rows:
            if not merged or merged[-1][1] != z:
                merged.append((ts, z))
        out[pid] = merged
    return out


def heartbeats():
    return [a + h * HOUR for a, n in BLOCKS for h in range(n)]


def gen(path):
    ev = []
    for pid, rows in raw_schedule(path).items():
        for ts, z in rows:  # as given, including the row that repeats the zone in force
            ev.append((ts, pid, {"type": "tz", "tz": z}))
        for ts in heartbeats():
            ev.append((ts, pid, {"type": "battery", "pct": 50}))
    ev.sort(key=lambda e: (e[0], e[1]))
    seq = defaultdict(int)
    for ts, pid, body in ev:
        seq[pid] += 1
        d = {"ts": ts, "participant": pid, "source": "phone-" + pid, "seq": seq[pid]}
        d.update(body)
        print(json.dumps(d, separators=(",", ":")))


def utc_ms(dt):
    return int(dt.timestamp() * 1000)


def window_of(rows, t):
    i = max(k for k, (ts, _) in enumerate(rows) if ts <= t)
    zone = ZoneInfo(rows[i][1])
    local = datetime.fromtimestamp(t / 1000, timezone.utc).astimezone(zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    nxt = midnight.date() + timedelta(days=1)
    next_midnight = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
    start = max(utc_ms(midnight), rows[i][0])
    end = utc_ms(next_midnight)
    if i + 1 < len(rows):
        end = min(end, rows[i + 1][0])
    return (local.date().isoformat(), rows[i][1], start, end)


def check(path, out):
    sched = schedule(path)
    want = defaultdict(lambda: defaultdict(int))  # pid -> window -> heartbeats
    for pid, rows in sched.items():
        for t in heartbeats():
            want[pid][window_of(rows, t)] += 1
    got = defaultdict(dict)
    other = silent = 0
    bad = []
    for line in open(out):
        r = json.loads(line)
        if r["window"] != "day":
            continue
        w = (r["local_date"], r["tz"], r["start"], r["end"])
        if (w not in want[r["participant"]] and r["feature"] == "yield.phone"
                and r["value"] == 0 and r["coverage"] == 0):
            silent += 1  # a day between the blocks: the phone was silent, yield 0
            continue
        if w not in want[r["participant"]]:
            bad.append("%s %s: window %s not expected" % (r["participant"], r["feature"], w))
        if r["feature"] == "yield.phone":
            got[r["participant"]][w] = r["value"]
        else:
            other += 1
    n = 0
    for pid, wins in want.items():
        for w, beats in wins.items():
            n += 1
            v = got[pid].get(w)
            exp = beats / ((w[3] - w[2]) / 60000)
            if v is None or abs(v - exp) > 1e-12:
                bad.append("%s %s: yield.phone %r, expected %r" % (pid, w, v, exp))
        for w in got[pid]:
            if w not in wins:
                bad.append("%s: unexpected yield.phone window %s" % (pid, w))
    for b in bad:
        print("FAIL", b)
    print("%d participants, %d day windows checked, %d other day records on them, %d silent days "
          "(yield.phone 0, coverage 0), %d failures" % (len(want), n, other, silent, len(bad)))
    # the schedule must actually cut days: both switch pairs of each block yield 12/15/8-or-10/12 h
    lengths = sorted({(w[3] - w[2]) // HOUR for wins in want.values() for w in wins})
    print("window lengths (h):", lengths)
    if not {8, 10, 12, 15, 24} <= set(lengths):
        print("FAIL the schedule did not produce the expected cut days")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2])
    else:
        sys.exit(check(sys.argv[2], sys.argv[3]))
