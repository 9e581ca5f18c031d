# btsnoop codec and replay reader (drivers/btsnoop.c, drivers/file_btsnoop.c), with the GATT
# decoders and ATT PDU helpers the reader uses and the event code that checks every event it
# makes. The seeds in corpus_btsnoop/ are small captures (a flag byte, then the file: Heart Rate
# discovery and notifications whole and fragmented, Battery reads, InfiniTime steps and motion,
# a disconnection, broken lengths, and a Service Changed between two discoveries). The script
# that made the first ones is not in the tree; service-changed was written by hand, as the
# records of tests/unit/test_btsnoop.c's test_service_changed.
#   cmake --build build/fuzz --target fuzz_btsnoop
#   mkdir -p /tmp/fuzz-snoop && build/fuzz/tests/fuzz/fuzz_btsnoop -max_total_time=300 \
#       /tmp/fuzz-snoop tests/fuzz/corpus_btsnoop
fuzz_harness(fuzz_btsnoop
  SOURCES
    ${CMAKE_SOURCE_DIR}/drivers/btsnoop.c
    ${CMAKE_SOURCE_DIR}/drivers/file_btsnoop.c
    ${CMAKE_SOURCE_DIR}/drivers/ble_att_pdu.c
    ${CMAKE_SOURCE_DIR}/drivers/decode_battery.c
    ${CMAKE_SOURCE_DIR}/drivers/decode_hr.c
    ${CMAKE_SOURCE_DIR}/drivers/decode_pinetime.c
    ${CMAKE_SOURCE_DIR}/drivers/decode_util.c
    ${EVENT_SRC}
  LIBS engaged_pipeline PkgConfig::JANSSON m)
