#!/usr/bin/env bash
# A phone on USB (tests/usb/usbbed.py, a umockdev testbed with an emulated phone): switched
# to Android Open Accessory mode (requests 51, 52 x6, 53), re-enumerated as 18d1:2d01, its
# relay records streamed over the bulk endpoints and stored exactly once, with the phone's
# outbox emptied by ACKs. Then the same with faults: a stalled IN endpoint, a corrupted
# fragment, records the hub refuses, a record cut off by an unplug (re-plugged: resumes), small
# fragments; and a phone without AOA support, next to a device no source names (one log line).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/usb_lib.sh"

run() { # NAME ARGS...
  local name=$1; shift
  rm -rf "$T"/engaged.db* "$T/daemon.log"
  echo "== $name"
  if ! usbbed aoa "$@"; then
    echo "--- daemon log ($name)"; tail -n 60 "$T/daemon.log"; exit 1
  fi
}
write_conf "$T/engaged.conf" "[source phone-p01]" "driver = usb" "participant = p01" \
  "serial = PHONE0001"
run plain --records 300
run stall --records 120 --stall-in 2
run corrupt --records 120 --corrupt 40
run refused --records 80 --bad 10,11,79
run cut --records 150 --cut-at 70
run fragments --records 60 --frag 40
run no-aoa --no-aoa
echo "usb aoa: all scenarios passed"
