#!/usr/bin/env bash
# A running daemon, fed through its ingest socket, publishes features to an independent
# subscriber (pyzmq); a subscriber that connects later gets the cached last values; the store
# holds exactly what was sent, and replaying it equals replaying the original recording.
source "$(dirname "$0")/lib.sh"
write_conf "$T/engaged.conf"
start_daemon "$T/engaged.conf" "$T/daemon.log"

$PY "$TOOL" sub "ipc://$T/feed" "feature/" "$T/early.jsonl" --min 100000 --seconds 25 > "$T/early.n" &
SUB=$!
sleep 1
$PY "$TOOL" push "ipc://$T/ingest" "$ENGAGED_SRC/demo/demo.jsonl" --batch 40 > "$T/acks.json"
cat "$T/acks.json"
$PY - "$T/acks.json" <<'EOP'
import json, sys
a = json.load(open(sys.argv[1]))
assert a["accepted"] == 1053 and a["duplicate"] == 0 and a["rejected"] == 0, a
EOP
# resending the whole recording is harmless: everything is a duplicate
$PY "$TOOL" push "ipc://$T/ingest" "$ENGAGED_SRC/demo/demo.jsonl" --batch 100 > "$T/acks2.json"
$PY - "$T/acks2.json" <<'EOP'
import json, sys
a = json.load(open(sys.argv[1]))
assert a["accepted"] == 0 and a["duplicate"] == 1053, a
EOP
wait $SUB
echo "early subscriber got $(cat "$T/early.n") messages"

# a late subscriber to p01's features receives the last value of every p01 topic
$PY "$TOOL" sub "ipc://$T/feed" "feature/p01/" "$T/late.jsonl" --min 1 --seconds 5 > "$T/late.n"
echo "late subscriber got $(cat "$T/late.n") messages"
$PY - "$T/early.jsonl" "$T/late.jsonl" <<'EOP'
import json, sys
early = [json.loads(l) for l in open(sys.argv[1])]
late = [json.loads(l) for l in open(sys.argv[2])]
assert early, "no features published"
last = {}
seqs = {}
for topic, rec in early:
    assert topic == "feature/%s/%s" % (rec["participant"], rec["feature"]), topic
    assert rec["seq"] == seqs.get(topic, 0) + 1, ("gap in seq", topic, rec["seq"])
    seqs[topic] = rec["seq"]
    last[topic] = rec
want = {t: r for t, r in last.items() if t.startswith("feature/p01/")}
got = {t: r for t, r in late}
assert want, "no p01 features"
assert set(got) == set(want), (sorted(got), sorted(want))
for t in want:
    assert got[t] == want[t], (t, got[t], want[t])
print("feed ok: %d messages, %d topics; late subscriber got %d cached values" % (len(early), len(last), len(got)))
EOP
stop_daemon

# after a restart the cache holds the same last values, with seq continuing where it was
start_daemon "$T/engaged.conf" "$T/daemon.log"
$PY "$TOOL" sub "ipc://$T/feed" "feature/p01/" "$T/late2.jsonl" --min 1 --seconds 5 > "$T/late2.n"
stop_daemon
$PY - "$T/late.jsonl" "$T/late2.jsonl" <<'EOP'
import json, sys
a = {t: r for t, r in (json.loads(l) for l in open(sys.argv[1]))}
b = {t: r for t, r in (json.loads(l) for l in open(sys.argv[2]))}
assert a and a == b, ("cache after restart differs", len(a), len(b))
print("restart ok: the last-value cache holds the same %d values and seqs" % len(b))
EOP

# the store is the recording: replaying it equals replaying the file
"$ENGAGED" replay -c "$T/engaged.conf" --out "$T/from-store.jsonl" "$T/engaged.db"
"$ENGAGED" replay -c "$T/engaged.conf" --out "$T/from-file.jsonl" "$ENGAGED_SRC/demo/demo.jsonl"
cmp "$T/from-store.jsonl" "$T/from-file.jsonl"
# and what the daemon stored is a prefix of the replay (the replay also closes the last day)
$PY "$TOOL" features "$T/engaged.db" > "$T/stored.jsonl"
n=$(wc -l < "$T/stored.jsonl")
[ "$n" -gt 0 ]
head -n "$n" "$T/from-file.jsonl" | cmp - "$T/stored.jsonl"
echo "store ok: $n records stored, equal to the first $n of the replay"
