# Broker unit tests (included by tests/CMakeLists.txt).
# test_db needs the throwaway PostgreSQL cluster (pg fixture, tests/scripts/pg.sh).
qr_unit_test(test_db NEEDS_PG SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_db.c LIBS qrbroker)
# The artifact store (UPLOAD, FETCH) on a temporary folder.
qr_unit_test(test_store SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_store.c LIBS qrbroker)
