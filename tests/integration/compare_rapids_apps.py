#!/usr/bin/python3
"""Checks engaged's app.* and engage.* day records for RAPIDS' test participant `android`
(rapids_phone_applications_foreground_raw.csv + rapids_phone_screen_raw.csv, America/New_York)
against values derived by hand below.
usage: compare_rapids_apps.py default ENGAGED.jsonl   (intervention apps: com.facebook.orca,
                                                       com.aware.phone; filters as default)
       compare_rapids_apps.py filtered ENGAGED.jsonl  (also app_exclude = com.android.systemui,
                                                       com.android.launcher3, app_ignore_shorter = 15s)

RAPIDS publishes no expected output for its app features, so the expectations are derived
here from the raw rows, by the rules of docs/features.md ("Apps", "Engagement"):

Unlock episodes (UNLOCK immediately followed by OFF among kept screen events; the android
stream always logs ON, UNLOCK ... OFF, LOCK, so every UNLOCK pairs with the next OFF), local
time, and the foreground events inside each (t = local time; "->" = episode end; durations in
ms). Events outside any unlock (screen off or locked) are events but start no episode.

2020-03-06 (EST)
  U1 02:50:30.687-02:56:30.148: act_recognition 02:50:40.385 (2000), fused_location
     02:50:42.385 (13000), packageinstaller 02:50:55.385 -> OFF (334763)
  off: aware.phone 05:53:30.385, packageinstaller 05:55:50.385
  U2 05:56:51.795-06:03:51.204: aware 06:00:51.385 (109000), packageinstaller 06:02:40.385
     (10000), aware 06:02:50.385 -> OFF (60819)
  off: tinder 06:05:10.385
  U3 10:00:24.937-10:22:04.530: packageinstaller 10:03:56.385 (100000), chrome 10:05:36.385
     (174074), systemui 10:08:30.459 (85926), phone 10:09:56.385 (180000), chrome
     10:12:56.385 (352510), systemui 10:18:48.895 (67490), settings 10:19:56.385 (128145)
  off: tinder 11:53:00.385
  U4 11:57:33.831-12:12:33.553: gboard 11:57:56.385 (63400), settings 11:58:59.785 (116600),
     launcher3 12:00:56.385 (80000), systemui 12:02:16.385, settings 12:02:26.385,
     launcher3 12:02:36.385, aware 12:02:46.385 (10000 each), launcher3 12:02:56.385 (50000),
     chrome 12:03:46.385 (430000), fitbit 12:10:56.385 (97168)
  U5 14:51:02.512-15:00:02.490: chrome 14:51:56.385 (288774), launcher3 14:56:45.159 (71226),
     aware 14:57:56.385 (3000), systemui 14:57:59.385 (57000), aware 14:58:56.385 (60000),
     systemui 14:59:56.385 (6105)
  off: youtube 17:50:00.385
  U6 17:51:27.049-18:08:26.055: settings 17:52:36.385 (80000), launcher3 17:53:56.385
     (100000), systemui 17:55:36.385 (43000), chrome 17:56:19.385 (233000), messenger
     18:00:12.385 (2000), gboard 18:00:14.385 (491670)
  off: youtube 20:41:03.385
  U7 20:42:58.811-21:01:58.035: systemui 20:43:06.385 (50000), messenger 20:43:56.385
     (100000), chrome 20:45:36.385 (320000), systemui 20:50:56.385 (55000), chrome
     20:51:51.385 (395000), outlook 20:58:26.385 (150000), chrome 21:00:56.385 (61650)
  48 events, 42 episodes; per unlock 349763 + 179819 + 1088145 + 877168 + 486105 + 949670 +
  1131650 = 5062320 ms; min 2000, max 491670; first 02:50:40.385 = 170 + 40.385/60; last
  start 21:00:56.385. Episodes per app: chrome 8, systemui 8, aware 5, launcher3 5,
  settings 4, packageinstaller 3, gboard 2, messenger 2, and 1 each for act_recognition,
  fused_location, phone, fitbit, outlook (13 apps): H = ln 42 - (3 ln 3 + 2*5 ln 5 +
  2*8 ln 8 + 4 ln 4 + 2*2 ln 2) / 42.
  Intervention (aware.phone, messenger): events 6 + 2 = 8; episodes 109000, 60819, 10000,
  3000, 60000 (aware), 2000, 100000 (messenger) = 344819 ms; first 06:00:51.385, last
  20:43:56.385; H over counts 5 and 2.
  Sessions (gap 30 s): 06:00:51-06:02:40 and 06:02:50-06:03:51 are 10 s apart: one; then
  12:02:46, 14:57:56 and 14:58:56 (57 s after 14:57:59: not merged), 18:00:12, 20:43:56:
  6 sessions. Night (00:00-06:00): U1 359461 + U2 up to 06:00 188205 = 547666 ms.

2020-03-07 (EST)
  U8 00:17:11.000-00:20:01.000: systemui 00:17:15.001 (56000), settings 00:18:11.001 (40000),
     gboard 00:18:51.001 (55000), settings 00:19:46.001 (14999)
  U9 01:17:11.000-01:20:11.000: launcher3 01:17:11.001 and again 01:17:51.001 (one episode,
     108000), aware 01:18:59.001 (12000), launcher3 01:19:11.001 (19000), chrome
     01:19:30.001 (40999)
  U10 15:57:01-16:00:01: fitbit 15:58:11.001 (28000), chrome 15:58:39.001 (81999)
  U11 17:48:01-17:52:01: launcher3 17:48:59.001 (12000), aware 17:49:11.001 (51000),
     systemui 17:50:02.001 (9000), aware 17:50:11.001 (109999)
  U12 21:53:01-21:59:01: systemui 21:53:26.001 (23000), chrome 21:53:49.001 (142000),
     messenger 21:56:11.001 (24000), gboard 21:56:35.001 (145999)
  19 events, 18 episodes, 165999 + 179999 + 109999 + 181999 + 334999 = 972995 ms; min 9000,
  max 145999; first 00:17:15.001, last 21:56:35.001. Per app: systemui, launcher3, aware,
  chrome 3 each; settings, gboard 2; fitbit, messenger 1: H = ln 18 - (4*3 ln 3 + 2*2 ln 2)/18.
  Intervention: events 4, episodes 12000, 51000, 109999 (aware), 24000 (messenger) =
  196999 ms; first 01:18:59.001, last 21:56:11.001; H over 3 and 1. Sessions: 01:18:59;
  17:49:11-17:50:02 and 17:50:11 (9 s apart): one; 21:56:11: 3. Night: U8 170000 + U9 180000.

2020-03-08 (spring forward; 23 h)
  U13 00:05:00.001-00:08:00.001 EST: systemui 00:05:11.001 (26000), messenger 00:05:37.001
     (72000), chrome 00:06:49.001 (10000), systemui 00:06:59.001 (10000), chrome 00:07:09.001
     (21000), outlook 00:07:30.001 (18000), chrome 00:07:48.001 (12000)
  U14 04:55:00.001-05:15:00.001 EDT: launcher3 04:55:10.001 (20000), gmail 04:55:30.001
     (870000), launcher3 05:10:00.001 (30000), systemui 05:10:30.001 (30000), settings
     05:11:00.001 (120000), launcher3 05:13:00.001 (120000)
  U15 22:02:00.001-22:05:00.001 EDT: systemui 22:02:00.001, in the millisecond of the UNLOCK
     (30000), launcher3 22:02:30.001 (30000), fanduel 22:03:00.001 (60000), launcher3
     22:04:00.001 (10000), chrome 22:04:10.001 (10000), gboard 22:04:20.001 (40000)
  19 events, 19 episodes, 169000 + 1190000 + 180000 = 1539000 ms; min 10000, max 870000;
  first 00:05:11.001, last 22:04:20.001. Per app: launcher3 5, systemui 4, chrome 4, and 1
  each for messenger, outlook, gmail, settings, fanduel, gboard: H = ln 19 - (2*4 ln 4 +
  5 ln 5)/19. Intervention: messenger 72000 only (entropy null: one episode). Night: 3 min +
  20 min (04:55-05:15 EDT is before 06:00 EDT).

2020-03-09 (EDT)
  U16 03:01:00.001-03:05:00.001: systemui 03:01:01.001 (19000), chrome 03:01:20.001 (146000),
     systemui 03:03:46.001 (4000), chrome 03:03:50.001 (70000)
  U17 21:05:00.001-21:37:00.001: launcher3 21:05:00.001 (15000), systemui 21:05:15.001
     (14000), messenger 21:05:29.001 (259000), systemui 21:09:48.001 (12000), messenger
     21:10:00.001 (189000), launcher3 21:13:09.001 (20000), facebook 21:13:29.001 (500000),
     launcher3 21:21:49.001 (11000), facebook 21:22:00.001 (188000), gboard 21:25:08.001
     (112000), facebook 21:27:00.001 (106000), gboard 21:28:46.001 (60000), pokemongo
     21:29:46.001 (19000), facebook 21:30:05.001 (415000)
  18 events, 18 episodes, 239000 + 1920000 = 2159000 ms; min 4000, max 500000; first
  03:01:01.001, last 21:30:05.001. Per app: systemui 4, facebook 4, launcher3 3, chrome 2,
  messenger 2, gboard 2, pokemongo 1: H = ln 18 - (2*4 ln 4 + 3 ln 3 + 3*2 ln 2)/18.
  Intervention: messenger 259000 + 189000; first 21:05:29.001, last 21:10:00.001; one app:
  H = 0; one session (12 s apart). Night: U16 4 min.

The October/November block repeats the March rows at the same local times: 10-30, 10-31,
11-01 (fall back, 25 h) and 11-02 must equal 03-06 .. 03-09 feature by feature (each day on
its own wall clock). 7-day values: active days 1, 2, 3, 4 in both blocks (the blocks are 235
days apart), prescribed 7 (not configured): 1/7 .. 4/7; days_since_last_use 0 on every day.

Filtered run, 2020-03-08 (and 11-01): systemui and launcher3 are excluded from `all` (their
events still end the episode before them) and episodes under 15 s are dropped:
  events 19 - 4 systemui - 5 launcher3 = 10; episodes kept: messenger 72000, chrome 21000,
  outlook 18000, gmail 870000, settings 120000, fanduel 60000, gboard 40000 (dropped: chrome
  10000, 12000, 10000) = 7 episodes, 1201000 ms; min 18000, max 870000; first messenger
  00:05:37.001, last gboard 22:04:20.001; 7 apps once each: H = ln 7. The intervention group
  ignores the exclusions (messenger 72000 >= 15 s: unchanged) and engage.* ignores the app
  filters.
"""
import json
import math
import sys

L = math.log
MS = 60000.0


def mins(h, m, s):
    return h * 60 + m + s / 60.0


# date -> feature -> value (None = null)
DAY = {
    "2020-03-06": {
        "app.counteventall": 48, "app.countepisodeall": 42,
        "app.sumdurationall": 5062320 / MS, "app.meandurationall": 5062320 / MS / 42,
        "app.mindurationall": 2000 / MS, "app.maxdurationall": 491670 / MS,
        "app.timeoffirstuseall": mins(2, 50, 40.385), "app.timeoflastuseall": mins(21, 0, 56.385),
        "app.frequencyentropyall":
            L(42) - (3 * L(3) + 2 * 5 * L(5) + 2 * 8 * L(8) + 4 * L(4) + 2 * 2 * L(2)) / 42,
        "app.counteventintervention": 8, "app.countepisodeintervention": 7,
        "app.sumdurationintervention": 344819 / MS,
        "app.meandurationintervention": 344819 / MS / 7,
        "app.mindurationintervention": 2000 / MS, "app.maxdurationintervention": 109000 / MS,
        "app.timeoffirstuseintervention": mins(6, 0, 51.385),
        "app.timeoflastuseintervention": mins(20, 43, 56.385),
        "app.frequencyentropyintervention": -(5 / 7 * L(5 / 7) + 2 / 7 * L(2 / 7)),
        "engage.sessions": 6, "engage.minutes": 344819 / MS, "engage.modules_completed": 0,
        "engage.night_use_minutes": 547666 / MS,
    },
    "2020-03-07": {
        "app.counteventall": 19, "app.countepisodeall": 18,
        "app.sumdurationall": 972995 / MS, "app.meandurationall": 972995 / MS / 18,
        "app.mindurationall": 9000 / MS, "app.maxdurationall": 145999 / MS,
        "app.timeoffirstuseall": mins(0, 17, 15.001), "app.timeoflastuseall": mins(21, 56, 35.001),
        "app.frequencyentropyall": L(18) - (4 * 3 * L(3) + 2 * 2 * L(2)) / 18,
        "app.counteventintervention": 4, "app.countepisodeintervention": 4,
        "app.sumdurationintervention": 196999 / MS,
        "app.meandurationintervention": 196999 / MS / 4,
        "app.mindurationintervention": 12000 / MS, "app.maxdurationintervention": 109999 / MS,
        "app.timeoffirstuseintervention": mins(1, 18, 59.001),
        "app.timeoflastuseintervention": mins(21, 56, 11.001),
        "app.frequencyentropyintervention": -(0.75 * L(0.75) + 0.25 * L(0.25)),
        "engage.sessions": 3, "engage.minutes": 196999 / MS, "engage.modules_completed": 0,
        "engage.night_use_minutes": 350000 / MS,
    },
    "2020-03-08": {
        "app.counteventall": 19, "app.countepisodeall": 19,
        "app.sumdurationall": 1539000 / MS, "app.meandurationall": 1539000 / MS / 19,
        "app.mindurationall": 10000 / MS, "app.maxdurationall": 870000 / MS,
        "app.timeoffirstuseall": mins(0, 5, 11.001), "app.timeoflastuseall": mins(22, 4, 20.001),
        "app.frequencyentropyall": L(19) - (2 * 4 * L(4) + 5 * L(5)) / 19,
        "app.counteventintervention": 1, "app.countepisodeintervention": 1,
        "app.sumdurationintervention": 72000 / MS, "app.meandurationintervention": 72000 / MS,
        "app.mindurationintervention": 72000 / MS, "app.maxdurationintervention": 72000 / MS,
        "app.timeoffirstuseintervention": mins(0, 5, 37.001),
        "app.timeoflastuseintervention": mins(0, 5, 37.001),
        "app.frequencyentropyintervention": None,
        "engage.sessions": 1, "engage.minutes": 72000 / MS, "engage.modules_completed": 0,
        "engage.night_use_minutes": 23,
    },
    "2020-03-09": {
        "app.counteventall": 18, "app.countepisodeall": 18,
        "app.sumdurationall": 2159000 / MS, "app.meandurationall": 2159000 / MS / 18,
        "app.mindurationall": 4000 / MS, "app.maxdurationall": 500000 / MS,
        "app.timeoffirstuseall": mins(3, 1, 1.001), "app.timeoflastuseall": mins(21, 30, 5.001),
        "app.frequencyentropyall": L(18) - (2 * 4 * L(4) + 3 * L(3) + 3 * 2 * L(2)) / 18,
        "app.counteventintervention": 2, "app.countepisodeintervention": 2,
        "app.sumdurationintervention": 448000 / MS,
        "app.meandurationintervention": 448000 / MS / 2,
        "app.mindurationintervention": 189000 / MS, "app.maxdurationintervention": 259000 / MS,
        "app.timeoffirstuseintervention": mins(21, 5, 29.001),
        "app.timeoflastuseintervention": mins(21, 10, 0.001),
        "app.frequencyentropyintervention": 0,
        "engage.sessions": 1, "engage.minutes": 448000 / MS, "engage.modules_completed": 0,
        "engage.night_use_minutes": 4,
    },
}
for i, (march, autumn) in enumerate([("2020-03-06", "2020-10-30"), ("2020-03-07", "2020-10-31"),
                                     ("2020-03-08", "2020-11-01"), ("2020-03-09", "2020-11-02")]):
    for d in (march, autumn):
        DAY.setdefault(d, dict(DAY[march]))
        DAY[d]["engage.days_since_last_use"] = 0
        DAY[d]["engage.active_days_7d"] = i + 1
        DAY[d]["adherence.intervention_7d"] = (i + 1) / 7

FILTERED = {
    "app.counteventall": 10, "app.countepisodeall": 7,
    "app.sumdurationall": 1201000 / MS, "app.meandurationall": 1201000 / MS / 7,
    "app.mindurationall": 18000 / MS, "app.maxdurationall": 870000 / MS,
    "app.timeoffirstuseall": mins(0, 5, 37.001), "app.timeoflastuseall": mins(22, 4, 20.001),
    "app.frequencyentropyall": L(7),
}


def main():
    mode, got_jsonl = sys.argv[1:3]
    got = {}
    with open(got_jsonl) as f:
        for line in f:
            r = json.loads(line)
            if r["participant"] != "android" or r["revision"] != 0:
                continue
            if r["feature"].split(".")[0] in ("app", "engage") or \
                    r["feature"] == "adherence.intervention_7d":
                got[(r["local_date"], r["feature"])] = r["value"]
    checks = []
    if mode == "default":
        for d, feats in DAY.items():
            checks += [(d, f, v) for f, v in feats.items()]
    else:
        for d in ("2020-03-08", "2020-11-01"):
            exp = dict(DAY[d])
            exp.update(FILTERED)
            checks += [(d, f, v) for f, v in exp.items()]
    bad = 0
    worst = 0.0
    for d, f, want in sorted(checks):
        have = got.get((d, f), "missing")
        if want is None:
            ok = have is None
        elif have is None or have == "missing":
            ok = False
        else:
            worst = max(worst, abs(have - want))
            ok = math.isclose(have, want, rel_tol=1e-12, abs_tol=1e-9)
        if not ok:
            bad += 1
            print(f"BAD {d} {f}: expected {want}, engaged {have}")
    dates = sorted({d for d, _, _ in checks})
    print(f"{mode}: {len(checks)} values on {len(dates)} days compared, {bad} mismatches, "
          f"max |difference| {worst:.3g}")
    sys.exit(1 if bad or not checks else 0)


main()
