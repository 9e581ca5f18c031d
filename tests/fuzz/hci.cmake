# LE scanning (drivers/ble_hci.c, drivers/ble_adv.c): the HCI event, report and AD parsers on
# arbitrary bytes, and a scanner played against a scripted controller (tests/fuzz/fuzz_hci.c).
# The seeds in corpus_hci/ are command completes, legacy and extended reports and AD.
#   cmake --build build/fuzz --target fuzz_hci
#   mkdir -p /tmp/fuzz-hci && build/fuzz/tests/fuzz/fuzz_hci -max_total_time=300 \
#       /tmp/fuzz-hci tests/fuzz/corpus_hci
fuzz_harness(fuzz_hci
  SOURCES
    ${CMAKE_SOURCE_DIR}/drivers/ble_hci.c
    ${CMAKE_SOURCE_DIR}/drivers/ble_adv.c
    ${CMAKE_SOURCE_DIR}/drivers/ble_att_pdu.c
    ${CMAKE_SOURCE_DIR}/drivers/ble_rpa.c
  LIBS PkgConfig::GCRYPT Threads::Threads)
