#!/usr/bin/env bash
# Installs what engaged needs on Debian 12 (idempotent; apt-get as root), then configures and
# builds. Usage:
#   ./setup.sh           release build in build/release
#   ./setup.sh --test    also an ASan+UBSan build in build/asan, then CTest in both builds
set -euo pipefail
cd "$(dirname "$0")"

PKGS=(build-essential cmake pkg-config libzmq3-dev libsqlite3-dev libjansson-dev libinih-dev
      libsystemd-dev libbluetooth-dev libusb-1.0-0-dev libcmocka-dev python3 python3-zmq
      sqlite3 tzdata systemd umockdev libumockdev-dev clang libminizip-dev
      gir1.2-umockdev-1.0 python3-gi libgcrypt20-dev)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "setup: installing ${missing[*]}" >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

jobs=$(nproc 2>/dev/null || echo 2)
build() { # dir, cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >&2
  cmake --build "$dir" -j"$jobs" >&2
}

# /usr prefix: the daemon defaults to /etc/engaged/engaged.conf and the unit to /usr/bin
build build/release -DCMAKE_BUILD_TYPE=Release -DENGAGED_WERROR=ON -DCMAKE_INSTALL_PREFIX=/usr
if [ "${1:-}" = "--test" ]; then
  build build/asan -DCMAKE_BUILD_TYPE=Debug -DENGAGED_SANITIZE=ON -DENGAGED_WERROR=ON
  rc=0
  echo "== release build (-Werror)"
  ctest --test-dir build/release --output-on-failure -j"$jobs" || rc=1
  echo "== ASan+UBSan build"
  ctest --test-dir build/asan --output-on-failure -j"$jobs" || rc=1
  exit $rc
fi
