# quarry-mirror (broker/mirror): the pure pieces without a database or a
# node, and the PostgreSQL module against the test cluster.  The daemon
# against a real node is tests/integration/it_mirror.
qr_unit_test(test_mirror_core SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_mirror_core.c
  LIBS qrmirrorcore)
qr_unit_test(test_mirror_db NEEDS_PG SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_mirror_db.c
  LIBS qrmirror qrbroker)
