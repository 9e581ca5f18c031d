# Shared by the BLE integration tests that run the daemon against tools/blesim (sourced after
# lib.sh): the simulator, a short directory for its sockets, a daemon config, and waiting for
# a status/<source> message.
BLESIM="$ENGAGED_BIN/tools/blesim"
# [source] transport holds 31 bytes: simulator sockets live in a short directory of their own
S=$(mktemp -d /tmp/ebleXXXXXX)
trap 'cleanup; rm -rf "$S"' EXIT
SIM_PID=""

# ble_conf FILE [EXTRA...]: lib.sh's config (sockets in $T, p01 and p02), status every second
ble_conf() {
  write_conf "$@"
  sed -i 's/^log_level = info$/&\nstatus_interval = 1s/' "$1"
}

# ble_src NAME PARTICIPANT SOCKET N [EXTRA...]: a [source] of the BLE driver on the simulator
# at $S/SOCKET, address C4:7C:8D:6A:2F:<N>, with EXTRA lines
ble_src() {
  local name=$1 p=$2 sock=$3 n=$4
  shift 4
  printf '%s\n' "[source $name]" "driver = ble" "participant = $p" \
    "address = C4:7C:8D:6A:2F:$(printf %02d "$n")" "transport = sim:$S/$sock" "$@"
}

# app_use FILE PARTICIPANT SOURCE FIRST_MS STEP_MS COUNT: a phone's relay outbox (seq 1..) of
# COUNT sessions, every STEP_MS from FIRST_MS: an unlock, the intervention app
# (org.example.mindapp) in front 10 s later, the screen off 5 minutes after the unlock
app_use() {
  $PY - "$@" <<'EOP'
import json, sys
out, participant, source = sys.argv[1:4]
first, step, count = (int(a) for a in sys.argv[4:7])
seq = 0
with open(out, "w") as f:
    for k in range(count):
        t = first + k * step
        for dt, ev in ((0, {"type": "screen", "state": "unlocked"}),
                       (10000, {"type": "app", "app": "org.example.mindapp",
                                "state": "foreground"}),
                       (300000, {"type": "screen", "state": "off"})):
            seq += 1
            rec = {"ts": t + dt, "participant": participant, "source": source, "seq": seq}
            rec.update(ev)
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
EOP
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
