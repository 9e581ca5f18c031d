# Shared helpers for integration tests (sourced). Each test gets its own temp directory.
set -euo pipefail
T=$(mktemp -d)
DAEMON_PID=""
cleanup() {
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then kill -9 "$DAEMON_PID" 2>/dev/null || true; fi
  jobs -p | xargs -r kill 2>/dev/null || true
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
ENGAGED="$ENGAGED_BIN/engaged"
PY=/usr/bin/python3
TOOL="$ENGAGED_SRC/tests/integration/zmqtool.py"

# fail MESSAGE...: the test fails, with the end of the daemon's log (and of a simulator's
# stderr) when the test has them
fail() {
  echo "FAIL: $*"
  tail -n 40 "$T/daemon.log" 2>/dev/null || true
  tail -n 5 "$T/sim.err" 2>/dev/null || true
  exit 1
}

# no_sanitizer_report FILE...: fails the test if ASan, UBSan or LSan reported in any FILE
no_sanitizer_report() {
  ! grep -q -e AddressSanitizer -e 'runtime error' -e LeakSanitizer "$@" || fail "sanitizer report in $*"
}

# db_value DB SQL [PARAM...]: the first column of SQL's first row on the SQLite file DB
db_value() {
  $PY -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2], sys.argv[3:]).fetchone()[0])" "$@"
}

# write_conf FILE EXTRA...: a daemon config with every socket in $T
write_conf() {
  local f=$1; shift
  cat > "$f" <<EOC
[daemon]
log_level = info
[store]
path = $T/engaged.db
batch_delay = 20ms
[publish]
endpoint = ipc://$T/feed
[control]
endpoint = ipc://$T/control
[ingest]
endpoint = ipc://$T/ingest
[participant p01]
tz = America/New_York
intervention_apps = org.example.mindapp
[participant p02]
tz = Europe/London
intervention_apps = org.example.mindapp
EOC
  for extra in "$@"; do echo "$extra" >> "$f"; done
}

start_daemon() { # CONF LOG
  "$ENGAGED" run -c "$1" >>"$2" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 1 100); do
    [ -S "$T/ingest" ] && [ -S "$T/control" ] && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || { echo "daemon died:"; cat "$2"; return 1; }
    sleep 0.1
  done
  echo "daemon did not open its sockets"; cat "$2"; return 1
}

stop_daemon() {
  kill -TERM "$DAEMON_PID"
  local rc=0
  wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=""
  return $rc
}

# reference_run CONF REC BATCH: an uninterrupted live run of REC through the ingest socket,
# with CONF's paths moved to $T/ref/; leaves its store in $T/ref/engaged.db.
reference_run() {
  local conf=$1 rec=$2 batch=$3 pid
  mkdir -p "$T/ref"
  sed "s#$T/#$T/ref/#g" "$conf" > "$T/ref.conf"
  "$ENGAGED" run -c "$T/ref.conf" > "$T/ref.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do [ -S "$T/ref/ingest" ] && break; sleep 0.1; done
  $PY "$TOOL" push "ipc://$T/ref/ingest" "$rec" --batch "$batch" > "$T/ref.acks"
  kill -TERM $pid
  wait $pid
}

# push_with_kills CONF REC MAX_KILLS PUSH_OPTIONS...: streams REC into the running daemon
# (started with CONF), resending whatever was not acknowledged, while the daemon is killed
# with SIGKILL at random moments and restarted, at most MAX_KILLS times. Sets KILLS.
push_with_kills() {
  local conf=$1 rec=$2 max=$3 push
  shift 3
  $PY "$TOOL" push "ipc://$T/ingest" "$rec" "$@" > "$T/acks.json" &
  push=$!
  KILLS=0
  while kill -0 $push 2>/dev/null && [ $KILLS -lt "$max" ]; do
    sleep 0.$((RANDOM % 5 + 3))
    kill -0 $push 2>/dev/null || break
    kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true
    KILLS=$((KILLS + 1))
    echo "killed the daemon ($KILLS)"
    start_daemon "$conf" "$T/daemon.log"
  done
  wait $push
}
