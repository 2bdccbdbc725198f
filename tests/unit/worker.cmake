# Worker unit tests: device discovery, the executor pool, and the whole worker
# loop against a fake broker (a ROUTER socket inside the test).
qr_unit_test(test_worker_devices SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_worker_devices.c
             LIBS qrworker)
qr_unit_test(test_worker_executor SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_worker_executor.c
             LIBS qrworker)
qr_unit_test(test_cache SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_cache.c LIBS qrworker)
qr_unit_test(test_worker_link SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_worker_link.c
             LIBS qrworker)

# The daemon itself: settings parsing, fault flags only in fault builds, and
# SIGTERM with nothing to drain exits 0.
add_test(NAME worker_cli_help COMMAND quarry-worker --help)
add_test(NAME worker_cli_bad_flag COMMAND quarry-worker --no-such-flag)
add_test(NAME worker_cli_fault_flags COMMAND quarry-worker --fault-delay-ms 1 --help)
add_test(NAME worker_cli_sigterm
         COMMAND sh -c "$<TARGET_FILE:quarry-worker> --broker tcp://127.0.0.1:1 --log-level warn & p=$!; sleep 0.5; kill -TERM $p; wait $p")
set_tests_properties(worker_cli_bad_flag PROPERTIES WILL_FAIL TRUE)
if(NOT QUARRY_TEST_FAULTS)
  set_tests_properties(worker_cli_fault_flags PROPERTIES WILL_FAIL TRUE)
endif()
set_tests_properties(worker_cli_help worker_cli_bad_flag worker_cli_fault_flags worker_cli_sigterm
                     PROPERTIES TIMEOUT 30 LABELS unit)
