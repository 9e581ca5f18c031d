#!/usr/bin/python3
"""Compares engaged's screen.* day records with RAPIDS' expected daily features.
usage: compare_rapids_screen.py EXPECTED.csv ENGAGED.jsonl PARTICIPANT
Counts must match exactly; minute-valued features within 0.05 min per day (RAPIDS chunks
episodes into minutes and loses about 1 ms per minute; engaged computes exact durations)."""
import csv
import json
import math
import sys

FEATURES = ["countepisodeunlock", "sumdurationunlock", "maxdurationunlock",
            "mindurationunlock", "avgdurationunlock", "stddurationunlock",
            "firstuseafter00unlock"]


def main():
    expected_csv, got_jsonl, participant = sys.argv[1:4]
    got = {}
    with open(got_jsonl) as f:
        for line in f:
            r = json.loads(line)
            if r["participant"] != participant or r["window"] != "day":
                continue
            if not r["feature"].startswith("screen."):
                continue
            got[(r["local_date"], r["feature"][len("screen."):])] = r["value"]
    rows = 0
    failures = []
    with open(expected_csv) as f:
        for row in csv.DictReader(f):
            if row["local_segment_label"] != "daily":
                continue
            date = row["local_segment_start_datetime"][:10]
            rows += 1
            for feat in FEATURES:
                want = row["phone_screen_rapids_" + feat]
                have = got.get((date, feat), "missing")
                if want in ("", "NA", "nan"):
                    ok = have is None
                elif have in (None, "missing"):
                    ok = False
                elif feat == "countepisodeunlock":
                    ok = int(float(want)) == have
                else:
                    ok = math.isclose(float(want), have, abs_tol=0.05)
                tag = "ok " if ok else "BAD"
                print(f"{tag} {date} {feat:24s} rapids={want:>20s} engaged={have}")
                if not ok:
                    failures.append((date, feat))
    print(f"{rows} daily rows compared, {len(failures)} mismatches")
    if rows == 0 or failures:
        sys.exit(1)


main()
