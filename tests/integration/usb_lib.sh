# Shared by the test_usb_*.sh tests (sourced after lib.sh): the daemon under umockdev.
UMOCKDEV_RUN=$(command -v umockdev-run || true)
if [ -z "$UMOCKDEV_RUN" ] || ! /usr/bin/python3 -c 'import gi; gi.require_version("UMockdev", "1.0")' 2>/dev/null; then
  echo "umockdev (umockdev, gir1.2-umockdev-1.0, python3-gi) is not installed: skipped"
  exit 77
fi
USB_DIR="$ENGAGED_SRC/tests/usb"
# An ASan build preloaded after libumockdev-preload: ASan must not insist on coming first.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
usbbed() { # SCENARIO ARGS...: the Python testbed (tests/usb/usbbed.py) runs the daemon
  LD_PRELOAD=libumockdev-preload.so.0 /usr/bin/python3 "$USB_DIR/usbbed.py" "$@" \
    --engaged "$ENGAGED" --conf "$T/engaged.conf" --dir "$T" --log "$T/daemon.log"
}
