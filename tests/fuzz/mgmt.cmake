# The kernel's Bluetooth management protocol (drivers/ble_mgmt.c): the event and controller
# list parsers on arbitrary bytes, and a session played against a scripted kernel
# (tests/fuzz/fuzz_mgmt.c). The seeds in corpus_mgmt/ are a whole setup of two controllers,
# new keys, confirmation requests, refusals, timeouts and malformed packets.
#   cmake --build build/fuzz --target fuzz_mgmt
#   mkdir -p /tmp/fuzz-mgmt && build/fuzz/tests/fuzz/fuzz_mgmt -max_total_time=120 \
#       /tmp/fuzz-mgmt tests/fuzz/corpus_mgmt
fuzz_harness(fuzz_mgmt SOURCES ${CMAKE_SOURCE_DIR}/drivers/ble_mgmt.c)
