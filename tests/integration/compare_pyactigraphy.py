#!/usr/bin/python3
"""Checks `engaged replay --summary --epochs` of example_01.AWD against pyActigraphy 1.2.2's
values for that file (../shared/reference/actigraphy.md §9.1).
usage: compare_pyactigraphy.py binarised|raw|webster OUT.jsonl"""
import json, sys

REF = {  # feature: (binarised, raw); onsets in minutes after midnight, any tied onset allowed
    "act.is": (0.527656245354158, 0.46561431150973936),
    "act.iv": (0.32913524895082263, 0.7095292983583361),
    "act.l5": (41 / 390, 10717 / 975),
    "act.m10": (14273 / 18720, 5930377 / 23400),
    "act.ra": (0.7576503909857768, 0.9168632026873167),
    "act.l5_onset": ({122, 123}, {66}),
    "act.m10_onset": ({506}, {507}),
}

mode = 1 if sys.argv[1] == "raw" else 0
webster = sys.argv[1] == "webster"
got, sleep, epochs = {}, 0, 0
for line in open(sys.argv[2]):
    r = json.loads(line)
    if r["window"] == "recording":
        got[r["feature"]] = r["value"]
    elif r["feature"] == "act.epoch":
        epochs += 1
        sleep += r["sleep"] == 1
fail = 0
for f, ref in REF.items():
    want, v = ref[mode], got.get(f)
    ok = v is not None and (v in want if isinstance(want, set) else abs(v - want) <= 1e-9)
    print("%-14s %-22r reference %r %s" % (f, v, want, "ok" if ok else "FAIL"))
    fail += not ok
if epochs:
    # pyActigraphy CK(settings='mean'): 10289 sleep epochs, 9791 with Webster rescoring
    want = 9791 if webster else 10289
    ok = epochs == 18401 and sleep == want
    print("epochs %d, Cole-Kripke sleep epochs %d (reference 18401, %d) %s"
          % (epochs, sleep, want, "ok" if ok else "FAIL"))
    fail += not ok
if webster:
    # pyActigraphy SRI(algo='CK', settings='mean') with its default Webster rescoring
    v, want = got.get("act.sri"), 56.063762626262644
    ok = v is not None and abs(v - want) <= 1e-9
    print("act.sri %r reference %r %s" % (v, want, "ok" if ok else "FAIL"))
    fail += not ok
sys.exit(1 if fail else 0)
