#!/usr/bin/env bash
# The shipped unit (systemd/engaged.service) is valid and hardened:
#  - `systemd-analyze verify` accepts it (with /usr/bin/engaged pointed at the built binary,
#    since verify checks that ExecStart*= binaries exist);
#  - `systemd-analyze security --offline=true` rates its overall exposure at most 2.0.
# systemd-analyze is required (the setup installs systemd); its absence is a failure.
set -euo pipefail
MAX_EXPOSURE=2.0
command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze not found"; exit 1; }
bin_dir=$(cd "$ENGAGED_BIN" && pwd)
[ -x "$bin_dir/engaged" ] || { echo "FAIL: $ENGAGED_BIN/engaged not built"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
unit="$T/engaged.service"
sed "s#/usr/bin/engaged#$bin_dir/engaged#g" "$ENGAGED_SRC/systemd/engaged.service" > "$unit"
grep -q "$bin_dir/engaged run" "$unit" || { echo "FAIL: ExecStart not rewritten"; exit 1; }

# verify: exit status, and no diagnostics about our unit (warnings count too; lines about
# other units of the host are shown but not held against us)
if ! systemd-analyze verify "$unit" > "$T/verify.out" 2>&1; then
  echo "FAIL: systemd-analyze verify:"; cat "$T/verify.out"; exit 1
fi
if grep -a -q 'engaged' "$T/verify.out"; then
  echo "FAIL: systemd-analyze verify printed diagnostics:"; cat "$T/verify.out"; exit 1
fi
cat "$T/verify.out"
echo "ok: systemd-analyze verify"

# security: parse "Overall exposure level for engaged.service: 1.9 OK"
systemd-analyze security --offline=true --no-pager "$unit" > "$T/security.out" 2>&1 || {
  echo "FAIL: systemd-analyze security:"; cat "$T/security.out"; exit 1; }
line=$(grep -a 'Overall exposure level' "$T/security.out" || true)
level=$(printf '%s\n' "$line" | sed -n 's/.*Overall exposure level for [^:]*: *\([0-9][0-9]*\(\.[0-9]*\)\?\).*/\1/p')
if [ -z "$level" ]; then
  echo "FAIL: no overall exposure level in the output:"; cat "$T/security.out"; exit 1
fi
if awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l + 0 <= m + 0) }'; then
  echo "ok: overall exposure $level <= $MAX_EXPOSURE"
else
  echo "FAIL: overall exposure $level > $MAX_EXPOSURE"
  grep -a '✗' "$T/security.out" || true
  exit 1
fi
