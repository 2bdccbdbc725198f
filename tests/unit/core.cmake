# Units of common/ and the broker's scheduler.
foreach(t hmap ring gemm config wire jobstate)
  qr_unit_test(test_${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_${t}.c LIBS qrcommon)
endforeach()
qr_unit_test(test_scheduler SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_scheduler.c LIBS qrbroker)
qr_unit_test(test_safetensors SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_safetensors.c LIBS qrcommon)
qr_unit_test(test_model SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_model.c LIBS qrcommon)
