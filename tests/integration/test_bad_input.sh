#!/usr/bin/env bash
# Bad input never changes a record and never crashes replay (spec §2-3, docs/events.md):
#  1. tests/replay/bad_input.jsonl gives the same records as its good lines alone (the golden
#     case checks the messages; here every non-good line must be reported exactly once);
#  2. generated lines that cannot be committed: 1 MiB + 1 bytes (and exactly 1 MiB, accepted),
#     invalid UTF-8, a NUL byte, a last line without a newline;
#  3. --strict stops at the first bad line with exit 65;
#  4. a missing input exits 66; garbage binary files give a clear error, no crash.
set -euo pipefail
E="$ENGAGED_BIN/engaged"
R="$ENGAGED_SRC/tests/replay"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# run NAME ARGS...: replay, keeping stdout in $T/NAME.out, stderr in $T/NAME.err, exit in $rc
run() {
  local name=$1; shift
  rc=0
  "$E" replay "$@" > "$T/$name.out" 2> "$T/$name.err" || rc=$?
  if [ "$rc" -ge 128 ]; then cat "$T/$name.err"; fail "$name: killed by signal $((rc - 128))"; fi
  if grep -q -e 'AddressSanitizer' -e 'runtime error:' -e 'LeakSanitizer' "$T/$name.err"; then
    cat "$T/$name.err"; fail "$name: sanitizer report"
  fi
}
expect_rc() { [ "$rc" -eq "$1" ] || { cat "$T/$2.err"; fail "$2: exit $rc, expected $1"; }; }
# FILE:LINE numbers reported in NAME.err for input BASENAME, one per line
reported() { sed -n "s#^.*$2:\([0-9][0-9]*\): .*#\1#p" "$T/$1.err"; }
ascii_only() { ! LC_ALL=C grep -q '[^[:print:][:space:]]' "$T/$1.err" || fail "$1: non-ASCII bytes in messages"; }

# ---- 1. the golden bad_input case: records equal those of its good lines alone -----------
cp "$R/bad_input.jsonl" "$R/bad_input.conf" "$T/"
run all -c "$T/bad_input.conf" "$T/bad_input.jsonl"
expect_rc 0 all
grep -a '"note":"good"' "$T/bad_input.jsonl" > "$T/good.jsonl"
[ "$(wc -l < "$T/good.jsonl")" -eq 8 ] || fail "expected 8 good lines in bad_input.jsonl"
run good -c "$T/bad_input.conf" "$T/good.jsonl"
expect_rc 0 good
[ -s "$T/all.out" ] || fail "no records from bad_input.jsonl"
cmp -s "$T/all.out" "$T/good.out" || { diff "$T/all.out" "$T/good.out" | head; fail "bad lines changed the records"; }
[ -z "$(reported good good.jsonl)" ] || fail "good lines alone reported problems"
grep -q '^replay: 8 events accepted, 0 duplicates, 0 late, 0 revising, 0 bad lines' "$T/good.err" || fail "good-only summary"
# every line that is neither good nor empty is reported once, in line order; good ones never
LC_ALL=C awk '!/"note":"good"/ && length($0) > 0 { print NR }' "$T/bad_input.jsonl" > "$T/want.lines"
reported all bad_input.jsonl > "$T/got.lines"
cmp -s "$T/want.lines" "$T/got.lines" || { diff "$T/want.lines" "$T/got.lines" | head; fail "reported lines differ"; }
ascii_only all
echo "ok: bad_input.jsonl: $(wc -l < "$T/got.lines") lines reported, records identical to the 8 good lines alone"

# ---- 2. generated lines ---------------------------------------------------------------------
g() { printf '{"ts":%s,"participant":"p01","source":"phone-p01","seq":%s,"type":"screen","state":"%s"}' "$1" "$2" "$3"; }
# a line of exactly N bytes (without its newline): a valid event padded with an ignored field
padded() {
  local n=$1 ts=$2 pre='{"ts":'"$2"',"participant":"p01","source":"band-p01","type":"battery","pct":50,"pad":"' suf='"}'
  local k=$((n - ${#pre} - ${#suf}))
  printf '%s' "$pre"; head -c "$k" /dev/zero | tr '\0' 'x'; printf '%s' "$suf"
}
f="$T/gen.jsonl"
{
  g 1583488800000 1 unlocked; printf '\n'                                   # 1 good
  padded 1048577 1583488801000; printf '\n'                                 # 2 1 MiB + 1: bad
  padded 1048576 1583488802000; printf '\n'                                 # 3 exactly 1 MiB: good
  printf '{"ts":1583488803000,"participant":"p01","type":"app","app":"\xff\xfe"}\n'     # 4 bad
  printf '{"ts":1583488804000,"participant":"p01","type":"app","app":"\xc0\xaf"}\n'     # 5 bad (overlong)
  printf '{"ts":1583488805000,"participant":"p01","type":"app","app":"a\0b"}\n'        # 6 bad (NUL)
  printf '\xed\xa0\x80\n'                                                   # 7 bad (encoded surrogate)
  g 1583489100000 2 off; printf '\n'                                        # 8 good: episode 5 min
  padded 3000000 1583489200000; printf '\n'                                 # 9 bad: 3 MB
  g 1583489400000 3 unlocked; printf '\n'                                   # 10 good
  g 1583489520000 4 off                                                     # 11 good, no newline at EOF
} > "$f"
[ "$(head -2 "$f" | tail -1 | wc -c)" -eq 1048578 ] || fail "generator: line 2 is not 1 MiB + 1"
[ "$(head -3 "$f" | tail -1 | wc -c)" -eq 1048577 ] || fail "generator: line 3 is not 1 MiB"
run gen "$f"
expect_rc 0 gen
cat > "$T/gen.want" <<EOF
gen.jsonl:2: line longer than 1048576 bytes
gen.jsonl:4: invalid UTF-8 at byte 61
gen.jsonl:5: invalid UTF-8 at byte 61
gen.jsonl:6: NUL byte at byte 62
gen.jsonl:7: invalid UTF-8 at byte 1
gen.jsonl:9: line longer than 1048576 bytes
replay: 5 events accepted, 0 duplicates, 0 late, 0 revising, 6 bad lines, 0 unknown types, 0 limit hits, 41 records
EOF
sed "s#^$T/##" "$T/gen.err" > "$T/gen.got"
diff -u "$T/gen.want" "$T/gen.got" || fail "generated bad lines: messages differ"
ascii_only gen
# the same good lines alone: identical records (the exactly-1-MiB battery line included)
sed -n '1p;3p;8p;10p;11p' "$f" > "$T/gen-good.jsonl"
run gengood "$T/gen-good.jsonl"
expect_rc 0 gengood
cmp -s "$T/gen.out" "$T/gengood.out" || fail "generated bad lines changed the records"
grep -q '"feature":"screen.sumdurationunlock".*"value":7,' "$T/gen.out" || fail "expected 5 + 2 min of episodes"
echo "ok: generated lines (1 MiB + 1, 3 MB, invalid UTF-8, NUL) reported; records unchanged"

# ---- 3. --strict ----------------------------------------------------------------------------
run strict1 --strict -c "$T/bad_input.conf" "$T/bad_input.jsonl"
expect_rc 65 strict1
[ "$(reported strict1 bad_input.jsonl)" = 2 ] || { cat "$T/strict1.err"; fail "--strict must stop at line 2"; }
grep -q 'bad_input.jsonl:2: invalid JSON at column 3' "$T/strict1.err" || fail "--strict: reason of line 2"
[ ! -s "$T/strict1.out" ] || fail "--strict: records written after a fatal bad line"
run strict2 --strict "$f"
expect_rc 65 strict2
[ "$(reported strict2 gen.jsonl)" = 2 ] || { cat "$T/strict2.err"; fail "--strict must stop at the long line 2"; }
# unknown types are skipped, not bad: --strict accepts them
{ g 1583488800000 1 unlocked; printf '\n{"ts":1583488801000,"participant":"p01","type":"gps"}\n'; g 1583489100000 2 off; printf '\n'; } > "$T/unknown.jsonl"
run strict3 --strict "$T/unknown.jsonl"
expect_rc 0 strict3
grep -q '1 unknown types' "$T/strict3.err" || fail "--strict: unknown type not counted"
echo "ok: --strict exits 65 at the first bad line, skips unknown types"

# ---- 4. missing input, garbage --------------------------------------------------------------
run missing "$T/no-such-file.jsonl"
expect_rc 66 missing
grep -q 'no-such-file.jsonl: No such file or directory' "$T/missing.err" || fail "missing input: message"
run missing2 "$f" "$T/no-such-file.jsonl"
expect_rc 66 missing2
# deterministic garbage: not starting with '{' (no format recognised), and starting with '{'
# (taken for JSON Lines); the built binary itself as a third kind
$PY -c "
import random, sys
r = random.Random(20261126)
b = bytes(r.randrange(256) for _ in range(300000))
open(sys.argv[1], 'wb').write(b'\x7fELF\x02\x01\x01\x00' + b)
open(sys.argv[2], 'wb').write(b'{' + b)
open(sys.argv[3], 'wb').write(b'SQLite format 3\x00' + b)
" "$T/garbage.bin" "$T/garbage.jsonl" "$T/garbage.db"
run garbage1 "$T/garbage.bin"
expect_rc 65 garbage1
grep -q 'garbage.bin: unrecognised file format (use --format)' "$T/garbage1.err" || fail "garbage: message"
run garbage2 "$T/garbage.jsonl"
expect_rc 0 garbage2
grep -q '^replay: 0 events accepted' "$T/garbage2.err" || fail "garbage as JSON Lines: summary"
[ ! -s "$T/garbage2.out" ] || fail "garbage as JSON Lines produced records"
ascii_only garbage2
run garbage3 --format jsonl "$T/garbage.bin"
expect_rc 0 garbage3
ascii_only garbage3
run garbage4 "$T/garbage.db"
[ "$rc" -ne 0 ] || fail "garbage SQLite header accepted"
grep -q 'garbage.db: ' "$T/garbage4.err" || fail "garbage SQLite header: no message naming the file"
run garbage5 --format store "$T/garbage.db"
[ "$rc" -ne 0 ] || fail "garbage store accepted"
run binary "$E"
expect_rc 65 binary
grep -q 'unrecognised file format' "$T/binary.err" || fail "binary: message"
run dir "$T"
[ "$rc" -ne 0 ] || fail "a directory as input was accepted"
grep -q "$T: " "$T/dir.err" || fail "directory input: no message naming it"
echo "ok: missing input exits 66; garbage and binary files give an error, no crash"
