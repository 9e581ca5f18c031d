# ActiGraph gt3x decoder (drivers/gt3x.c: info.txt, log.bin records, activity.bin) and, for
# inputs that ask for it, the reader (drivers/file_gt3x.c) over a ZIP archive the harness
# writes with minizip (minizip itself is not instrumented), with the time-zone code (the
# harness defines ev_valid_id itself, so that the event code stays out). The seeds in
# corpus_gt3x/ are small hand-built inputs (a flag byte, info.txt, then a log.bin with
# PARAMETERS, ACTIVITY2, ACTIVITY, idle-sleep events, a USB marker, damage and junk; or a NEO
# activity.bin), not copies of reference data.
#   build/fuzz-usb/tests/fuzz/fuzz_gt3x -max_total_time=300 /tmp/fuzz-gt3x tests/fuzz/corpus_gt3x
fuzz_harness(fuzz_gt3x
  SOURCES
    ${CMAKE_SOURCE_DIR}/drivers/gt3x.c
    ${CMAKE_SOURCE_DIR}/drivers/file_gt3x.c
    ${CMAKE_SOURCE_DIR}/drivers/reader_util.c
    ${CMAKE_SOURCE_DIR}/pipeline/tz.c
  LIBS PkgConfig::MINIZIP m)
