#!/usr/bin/env bash
# replay --store writes a store (mode 0600) that replays to the same records; a replay whose
# config names a publish endpoint publishes its records to an independent subscriber.
source "$(dirname "$0")/lib.sh"
"$ENGAGED" replay --demo --store "$T/demo.db" --out "$T/a.jsonl"
[ "$(stat -c %a "$T/demo.db")" = 600 ] || { echo "store mode is $(stat -c %a "$T/demo.db")"; exit 1; }
"$ENGAGED" replay -c "$ENGAGED_SRC/demo/demo.conf" --out "$T/b.jsonl" "$T/demo.db"
cmp "$T/a.jsonl" "$T/b.jsonl"
# feature records, and nudge decisions (the demo has rules), each in its table
n=$(grep -vc '"decision":' "$T/a.jsonl")
stored=$($PY "$TOOL" features "$T/demo.db" | wc -l)
[ "$n" = "$stored" ] || { echo "replay wrote $n feature records, stored $stored"; exit 1; }
nd=$(grep -c '"decision":' "$T/a.jsonl")
stored=$(db_value "$T/demo.db" "select count(*) from nudges")
[ "$nd" = "$stored" ] && [ "$nd" -gt 0 ] || { echo "replay wrote $nd decisions, stored $stored"; exit 1; }

cp "$ENGAGED_SRC/demo/demo.conf" "$T/pub.conf"
printf '[publish]\nendpoint = ipc://%s/feed\n' "$T" >> "$T/pub.conf"
$PY "$TOOL" sub "ipc://$T/feed" "feature/" "$T/sub.jsonl" --min "$n" --seconds 20 > "$T/sub.n" &
SUB=$!
$PY "$TOOL" sub "ipc://$T/feed" "nudge/" "$T/subn.jsonl" --min "$nd" --seconds 20 > "$T/subn.n" &
SUBN=$!
sleep 1
# paced so the subscriber is certainly connected before the first record
"$ENGAGED" replay -c "$T/pub.conf" --speed 100000 --out "$T/c.jsonl" "$ENGAGED_SRC/demo/demo.jsonl"
wait $SUB $SUBN
cmp "$T/a.jsonl" "$T/c.jsonl"
[ "$(cat "$T/sub.n")" = "$n" ] || { echo "subscriber got $(cat "$T/sub.n") of $n"; exit 1; }
[ "$(cat "$T/subn.n")" = "$nd" ] || { echo "nudge subscriber got $(cat "$T/subn.n") of $nd"; exit 1; }
# each decision on nudge/<participant>, as replay wrote it, with the topic's seq added
$PY - "$T/subn.jsonl" "$T/a.jsonl" <<'EOP'
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = [json.loads(l) for l in open(sys.argv[2]) if '"decision":' in l]
assert [t for t, _ in got] == ["nudge/" + w["participant"] for w in want], "topics differ"
for (_, g), w in zip(got, want):
    g.pop("seq")
    assert g == w, (g, w)
EOP
echo "replay store/publish ok: $n feature records and $nd nudge decisions stored, replayed and published"
