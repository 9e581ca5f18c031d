#!/usr/bin/env bash
# tools/blesim on a Unix SEQPACKET socket path, driven by an independent raw-ATT client
# (blesim_client.py, Python's own socket module): MTU exchange, discovery, a Heart Rate
# notification after the CCCD write, Device Information reads, two connections at once,
# --disconnect-after and --once, --dump, bad options, and a clean exit on SIGTERM that removes
# the socket.
set -euo pipefail
BLESIM="$ENGAGED_BIN/tools/blesim"
PY=/usr/bin/python3
CLIENT="$ENGAGED_SRC/tests/integration/blesim_client.py"
T=$(mktemp -d)
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -9 "$PID" 2>/dev/null || true; fi
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$T/sim.err" ] && cat "$T/sim.err"; exit 1; }
no_sanitizer() {
  ! grep -q -e AddressSanitizer -e 'runtime error:' -e LeakSanitizer "$1" || { cat "$1"; fail "sanitizer report"; }
}

start() { # ARGS...: blesim on $T/sim.sock, waits for the socket
  "$BLESIM" --listen "$T/sim.sock" "$@" > "$T/sim.out" 2> "$T/sim.err" &
  PID=$!
  for _ in $(seq 1 100); do
    [ -S "$T/sim.sock" ] && return 0
    kill -0 "$PID" 2>/dev/null || fail "blesim died"
    sleep 0.05
  done
  fail "blesim did not listen"
}

# 1. a full session, and a second client at the same time
start --manufacturer "Test Co" --hr-rate 20 --hr-flags 0x17 --rr 2
"$PY" "$CLIENT" "$T/sim.sock" session "Test Co" 0x17 2 > "$T/c1.out" 2>&1 &
C1=$!
"$PY" "$CLIENT" "$T/sim.sock" session "Test Co" 0x17 2 > "$T/c2.out" 2>&1 || { cat "$T/c2.out"; fail "second client"; }
wait "$C1" || { cat "$T/c1.out"; fail "first client"; }
grep -q "listening on $T/sim.sock" "$T/sim.out" || fail "no listening line"
# the simulator logs a close when it reads the client's end of stream, which can come after
# the client has exited: wait for it (up to 10 s) rather than racing it
for _ in $(seq 1 200); do
  [ "$(grep -c 'closed:' "$T/sim.err")" -ge 2 ] && break
  sleep 0.05
done
[ "$(grep -c 'closed:' "$T/sim.err")" -eq 2 ] || fail "expected two closed connections"
kill -TERM "$PID"
rc=0; wait "$PID" || rc=$?
PID=""
[ "$rc" -eq 0 ] || fail "exit $rc on SIGTERM"
[ ! -e "$T/sim.sock" ] || fail "socket left behind"
no_sanitizer "$T/sim.err"

# 2. the link drops on the 2nd PDU; --once ends the process with the connection
start --disconnect-after 2 --once
"$PY" "$CLIENT" "$T/sim.sock" drop || fail "drop client"
rc=0; wait "$PID" || rc=$?
PID=""
[ "$rc" -eq 0 ] || fail "--once exit $rc"
no_sanitizer "$T/sim.err"

# 3. --dump, bad options
"$BLESIM" --dump --profiles hr,battery > "$T/dump" || fail "--dump"
grep -q "0x2a37" "$T/dump" || fail "no 0x2a37 in the dump"
grep -q "0x2a19" "$T/dump" || fail "no 0x2a19 in the dump"
! grep -q "0x2a29" "$T/dump" || fail "DIS in an hr,battery dump"
# Local Time Information: the Write property only with --lti-write (its bytes, --lti, are
# read through the daemon in test_ble_clock_zone)
"$BLESIM" --dump --profiles cts --lti -20,4 | grep -q "0x2a0f *props 0x02 len 2" ||
  fail "Local Time Information not read-only"
"$BLESIM" --dump --profiles cts --lti -20,4 --lti-write keep |
  grep -q "0x2a0f *props 0x0a len 2" || fail "Local Time Information not writable"
for bad in "--mtu 22" "--profiles hr,nope" "--hr-rate x" "--error-code 0" "--bogus" \
    "--cts-write maybe" "--time-offset 1s" "--time-offset 315576000001" "--lti 4" \
    "--lti 128,0" "--lti 0,256" "--lti x,0" "--lti-write yes"; do
  rc=0; "$BLESIM" --listen "$T/x.sock" $bad > /dev/null 2> "$T/bad.err" || rc=$?
  [ "$rc" -eq 2 ] || fail "'$bad': exit $rc, expected 2"
done
rc=0; "$BLESIM" > /dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "no arguments: exit $rc"
echo "ok"
