#!/usr/bin/env bash
# An AX3 docked and undocked while the daemon runs (tests/usb/usbbed.py: a umockdev testbed
# that adds and removes the device with uevents): docked with a recording (one damaged
# block), undocked, docked again after more was recorded across the US spring-forward, then
# undocked in the middle of a long download and docked again. Every valid sample is stored
# exactly once, seq only grows, status/ax3-p01 reports battery, clock and the download, and
# the store's position is the last sample.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/usb_lib.sh"
write_conf "$T/engaged.conf" "[source ax3-p01]" "driver = usb" "participant = p01" \
  "vid_pid = 04d8:0057" "serial = CWA17_00123"
if ! usbbed ax3-hotplug; then
  echo "--- daemon log"; grep -v "block at byte" "$T/daemon.log" | tail -n 60; exit 1
fi
echo "usb hotplug: AX3 docked, undocked mid-download, docked again: every sample once"
