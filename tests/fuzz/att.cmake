# ATT bearer + GATT client (drivers/ble_att*.c, ble_gatt*.c), with the simulator's request
# handling (drivers/ble_sim*.c): scripted peers from the input (tests/fuzz/fuzz_att.c).
#   cmake --build build/fuzz --target fuzz_att
#   mkdir -p /tmp/fuzz-att && build/fuzz/tests/fuzz/fuzz_att -dict=tests/fuzz/att.dict \
#       -max_total_time=300 /tmp/fuzz-att tests/fuzz/corpus_att
set(ATT_SRC
  ${CMAKE_SOURCE_DIR}/drivers/ble_att.c
  ${CMAKE_SOURCE_DIR}/drivers/ble_att_pdu.c
  ${CMAKE_SOURCE_DIR}/drivers/ble_gatt.c
  ${CMAKE_SOURCE_DIR}/drivers/ble_gatt_db.c
  ${CMAKE_SOURCE_DIR}/drivers/ble_gatt_ops.c
  ${CMAKE_SOURCE_DIR}/drivers/ble_sim.c
  ${CMAKE_SOURCE_DIR}/drivers/ble_sim_profiles.c
  ${CMAKE_SOURCE_DIR}/drivers/ble_sim_server.c)
fuzz_harness(fuzz_att
  SOURCES
    ${ATT_SRC})
