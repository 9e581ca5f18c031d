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
