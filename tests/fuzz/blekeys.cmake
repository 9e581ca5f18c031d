# The bonding key file (daemon/ble_keys.c): its parser on arbitrary bytes, and what it takes
# written back out and parsed again (tests/fuzz/fuzz_blekeys.c). Seeds in corpus_blekeys/.
#   cmake --build build/fuzz --target fuzz_blekeys
#   mkdir -p /tmp/fuzz-blekeys && build/fuzz/tests/fuzz/fuzz_blekeys -max_total_time=300 \
#       -dict=tests/fuzz/blekeys.dict \
#       /tmp/fuzz-blekeys tests/fuzz/corpus_blekeys
fuzz_harness(fuzz_blekeys
  SOURCES
    ${CMAKE_SOURCE_DIR}/daemon/ble_keys.c
    ${CMAKE_SOURCE_DIR}/daemon/log.c
    ${CMAKE_SOURCE_DIR}/drivers/ble_mgmt.c
    ${CMAKE_SOURCE_DIR}/drivers/ble_hci.c
    ${CMAKE_SOURCE_DIR}/drivers/ble_adv.c
    ${CMAKE_SOURCE_DIR}/drivers/ble_att_pdu.c
    ${CMAKE_SOURCE_DIR}/drivers/ble_rpa.c
  LIBS engaged_pipeline PkgConfig::GCRYPT Threads::Threads)
