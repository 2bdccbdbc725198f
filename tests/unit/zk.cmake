# BN254 arithmetic for Groth16 (common/zk/): fields and tower, curves,
# pairing, NTT.
foreach(t field curve pairing ntt)
  qr_unit_test(test_zk_${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zk_${t}.c LIBS qrzk)
endforeach()
