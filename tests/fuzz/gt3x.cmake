# ActiGraph gt3x decoder (drivers/gt3x.c: info.txt, log.bin records, activity.bin) and, for
# inputs that ask for it, the reader (drivers/file_gt3x.c) over a ZIP archive the harness
# writes with minizip (minizip itself is not instrumented), with the time-zone code (the
# harness defines ev_valid_id itself, so that the event code stays out). The seeds in
# corpus_gt3x/ are small hand-built inputs (a flag byte, info.txt, then a log.bin with
# PARAMETERS, ACTIVITY2, ACTIVITY, idle-sleep events, a USB marker, damage and junk; or a NEO
# activity.bin), not copies of reference data.
#   build/fuzz-usb/tests/fuzz/fuzz_gt3x -max_total_time=300 /tmp/fuzz-gt3x tests/fuzz/corpus_gt3x
add_executable(fuzz_gt3x fuzz_gt3x.c
  ${CMAKE_SOURCE_DIR}/drivers/gt3x.c
  ${CMAKE_SOURCE_DIR}/drivers/file_gt3x.c
  ${CMAKE_SOURCE_DIR}/drivers/reader_util.c
  ${CMAKE_SOURCE_DIR}/pipeline/tz.c)
target_include_directories(fuzz_gt3x PRIVATE ${CMAKE_SOURCE_DIR})
target_compile_options(fuzz_gt3x PRIVATE ${FUZZ_FLAGS})
target_link_options(fuzz_gt3x PRIVATE ${FUZZ_FLAGS})
target_link_libraries(fuzz_gt3x PRIVATE PkgConfig::MINIZIP m)
add_test(NAME fuzz.gt3x_corpus
         COMMAND fuzz_gt3x -runs=0 ${CMAKE_CURRENT_SOURCE_DIR}/corpus_gt3x)
