# The relay service (drivers/relay.c, relay_msg.c): tests/fuzz/fuzz_relay.c drives the hub's
# reassembler with scripts, round-trips payloads with and without a flipped bit, and decodes the
# small messages. Records are checked with the event parser, nudge names with decode_util.c.
fuzz_harness(fuzz_relay
  SOURCES
    ${CMAKE_SOURCE_DIR}/drivers/relay.c
    ${CMAKE_SOURCE_DIR}/drivers/relay_msg.c
    ${CMAKE_SOURCE_DIR}/drivers/decode_util.c
    ${EVENT_SRC}
  # what the event code needs beyond EVENT_SRC comes uninstrumented from the pipeline library
  LIBS engaged_pipeline PkgConfig::JANSSON m)
