# Shared by the BLE integration tests that run the daemon against tools/blesim (sourced after
# lib.sh): the simulator, a short directory for its sockets, a daemon config, and waiting for
# a status/<source> message.
BLESIM="$ENGAGED_BIN/tools/blesim"
# [source] transport holds 31 bytes: simulator sockets live in a short directory of their own
S=$(mktemp -d /tmp/ebleXXXXXX)
trap 'cleanup; rm -rf "$S"' EXIT
SIM_PID=""
fail() {
  echo "FAIL: $*"
  tail -n 40 "$T/daemon.log" 2>/dev/null || true
  exit 1
}

# ble_conf FILE [EXTRA...]: lib.sh's config (sockets in $T, p01 and p02), status every second
ble_conf() {
  write_conf "$@"
  sed -i 's/^log_level = info$/&\nstatus_interval = 1s/' "$1"
}

# sim_start SOCKET LOG OPTIONS...: a simulator on SOCKET (its stderr in LOG); sets SIM_PID
sim_start() {
  local sock=$1 log=$2
  shift 2
  "$BLESIM" --listen "$sock" "$@" > /dev/null 2> "$log" &
  SIM_PID=$!
  for _ in $(seq 1 100); do [ -S "$sock" ] && return 0; sleep 0.05; done
  fail "blesim did not listen on $sock"
}

# wait_status FILE SOURCE EXPR [SECONDS]: until a status/SOURCE message m that a `zmqtool.py
# sub` wrote to FILE (or the last one, `last`) makes the Python expression EXPR true
wait_status() {
  local file=$1 src=$2 expr=$3 to=${4:-30}
  for _ in $(seq 1 $((to * 5))); do
    $PY - "$file" "$src" "$expr" <<'EOP' && return 0
import json, sys
msgs = [json.loads(l)[1] for l in open(sys.argv[1]) if l.startswith('["status/%s"' % sys.argv[2])]
ok = msgs and eval(sys.argv[3], {}, {"msgs": msgs, "last": msgs[-1]})
sys.exit(0 if ok else 1)
EOP
    sleep 0.2
  done
  tail -n 3 "$file"
  fail "no status/$src with $expr"
}
