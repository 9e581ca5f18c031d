# BLE GATT decoders (drivers/decode_*.c): tests/fuzz/fuzz_decode.c, selector byte first. The
# event code checks that every event a decoder makes reads back from its canonical JSON; tz.c
# has the civil-calendar helpers the Current Time decoder uses.
fuzz_harness(fuzz_decode
  SOURCES
    ${CMAKE_SOURCE_DIR}/drivers/decode_battery.c
    ${CMAKE_SOURCE_DIR}/drivers/decode_cts.c
    ${CMAKE_SOURCE_DIR}/drivers/decode_dis.c
    ${CMAKE_SOURCE_DIR}/drivers/decode_hr.c
    ${CMAKE_SOURCE_DIR}/drivers/decode_pams.c
    ${CMAKE_SOURCE_DIR}/drivers/decode_pinetime.c
    ${CMAKE_SOURCE_DIR}/drivers/decode_util.c
    ${CMAKE_SOURCE_DIR}/pipeline/tz.c
    ${EVENT_SRC}
  # what the event code needs beyond EVENT_SRC comes uninstrumented from the pipeline library
  LIBS engaged_pipeline PkgConfig::JANSSON m)
