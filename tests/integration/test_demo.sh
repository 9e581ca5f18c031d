#!/usr/bin/env bash
# The embedded demo: `engaged replay --demo` must equal replaying demo/demo.jsonl with
# demo/demo.conf from the source tree (the binary embeds both at build time, so this also
# catches a stale embed), replay cleanly, and leave nothing behind in $TMPDIR.
set -euo pipefail
E="$ENGAGED_BIN/engaged"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir "$T/tmp"

rc=0
TMPDIR="$T/tmp" "$E" replay --demo > "$T/demo.out" 2> "$T/demo.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/demo.err"; fail "replay --demo exited $rc"; }
rc=0
"$E" replay -c "$ENGAGED_SRC/demo/demo.conf" "$ENGAGED_SRC/demo/demo.jsonl" \
  > "$T/file.out" 2> "$T/file.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/file.err"; fail "replay of demo/demo.jsonl exited $rc"; }

[ -s "$T/demo.out" ] || fail "the demo produced no records"
cmp -s "$T/demo.out" "$T/file.out" || {
  diff "$T/demo.out" "$T/file.out" | head -20
  fail "replay --demo differs from demo/demo.jsonl + demo/demo.conf (rebuild, or the embed is stale)"
}
# same messages too (the summary names no file)
cmp -s "$T/demo.err" "$T/file.err" || { diff "$T/demo.err" "$T/file.err"; fail "stderr differs"; }
# the demo replays cleanly: every line accepted, nothing late, duplicated or rejected
lines=$(grep -c . "$ENGAGED_SRC/demo/demo.jsonl")
grep -q "^replay: $lines events accepted, 0 duplicates, 0 late, 0 revising, 0 bad lines, 0 unknown types, 0 limit hits, [1-9][0-9]* records$" \
  "$T/demo.err" || { cat "$T/demo.err"; fail "the demo does not replay cleanly ($lines lines)"; }
records=$(wc -l < "$T/demo.out")
grep -q ", $records records$" "$T/demo.err" || fail "record count in the summary differs from the output"
[ -z "$(ls -A "$T/tmp")" ] || { ls -la "$T/tmp"; fail "--demo left files in TMPDIR"; }
echo "ok: replay --demo = demo/demo.jsonl with demo/demo.conf ($lines events, $records records)"
