# Worker unit tests: device discovery, the executor pool, and the whole worker
# loop against a fake broker (a ROUTER socket inside the test).
qr_unit_test(test_worker_devices SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_worker_devices.c
             LIBS qrworker)
qr_unit_test(test_worker_executor SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_worker_executor.c
             LIBS qrworker)
qr_unit_test(test_worker_link SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_worker_link.c
             LIBS qrworker)
