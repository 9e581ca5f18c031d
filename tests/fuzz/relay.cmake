# The relay service (drivers/relay.c, relay_msg.c): tests/fuzz/fuzz_relay.c drives the hub's
# reassembler with scripts, round-trips payloads with and without a flipped bit, and decodes the
# small messages. Records are checked with the event parser, nudge names with decode_util.c.
add_executable(fuzz_relay fuzz_relay.c
  ${CMAKE_SOURCE_DIR}/drivers/relay.c
  ${CMAKE_SOURCE_DIR}/drivers/relay_msg.c
  ${CMAKE_SOURCE_DIR}/drivers/decode_util.c
  ${EVENT_SRC})
target_include_directories(fuzz_relay PRIVATE ${CMAKE_SOURCE_DIR})
target_compile_options(fuzz_relay PRIVATE ${FUZZ_FLAGS})
target_link_options(fuzz_relay PRIVATE ${FUZZ_FLAGS})
# what the event code needs beyond EVENT_SRC comes uninstrumented from the pipeline library
target_link_libraries(fuzz_relay PRIVATE engaged_pipeline PkgConfig::JANSSON m)
add_test(NAME fuzz.relay_corpus
         COMMAND fuzz_relay -runs=0 ${CMAKE_CURRENT_SOURCE_DIR}/corpus_relay)
