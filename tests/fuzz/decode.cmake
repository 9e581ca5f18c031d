# BLE GATT decoders (drivers/decode_*.c): tests/fuzz/fuzz_decode.c, selector byte first. The
# event code checks that every event a decoder makes reads back from its canonical JSON; tz.c
# has the civil-calendar helpers the Current Time decoder uses.
add_executable(fuzz_decode fuzz_decode.c
  ${CMAKE_SOURCE_DIR}/drivers/decode_battery.c
  ${CMAKE_SOURCE_DIR}/drivers/decode_cts.c
  ${CMAKE_SOURCE_DIR}/drivers/decode_dis.c
  ${CMAKE_SOURCE_DIR}/drivers/decode_hr.c
  ${CMAKE_SOURCE_DIR}/drivers/decode_pams.c
  ${CMAKE_SOURCE_DIR}/drivers/decode_pinetime.c
  ${CMAKE_SOURCE_DIR}/drivers/decode_util.c
  ${CMAKE_SOURCE_DIR}/pipeline/tz.c
  ${EVENT_SRC})
target_include_directories(fuzz_decode PRIVATE ${CMAKE_SOURCE_DIR})
target_compile_options(fuzz_decode PRIVATE ${FUZZ_FLAGS})
target_link_options(fuzz_decode PRIVATE ${FUZZ_FLAGS})
# what the event code needs beyond EVENT_SRC comes uninstrumented from the pipeline library
target_link_libraries(fuzz_decode PRIVATE engaged_pipeline PkgConfig::JANSSON m)
add_test(NAME fuzz.decode_corpus
         COMMAND fuzz_decode -runs=0 ${CMAKE_CURRENT_SOURCE_DIR}/corpus_decode)
