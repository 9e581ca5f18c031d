# Axivity CWA decoder and reader (drivers/cwa.c, drivers/file_cwa.c), with the time-zone code
# the reader uses (the harness defines ev_valid_id itself, so that the event code and what it
# pulls in stay out). The seeds in corpus_cwa/ are small hand-built files (a flag byte, then
# a header and a few blocks: packed, int16 and AX6 formats, 100 and 400 Hz, an erased block,
# a foreign block type, a truncated block, a short header; regress-* reproduce crashes the
# fuzzer found), not copies of reference data.
#   build/fuzz-usb/tests/fuzz/fuzz_cwa -max_total_time=300 /tmp/fuzz-cwa tests/fuzz/corpus_cwa
fuzz_harness(fuzz_cwa
  SOURCES
    ${CMAKE_SOURCE_DIR}/drivers/cwa.c
    ${CMAKE_SOURCE_DIR}/drivers/file_cwa.c
    ${CMAKE_SOURCE_DIR}/drivers/reader_util.c
    ${CMAKE_SOURCE_DIR}/pipeline/tz.c
  LIBS m)
