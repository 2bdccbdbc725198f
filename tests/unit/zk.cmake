# BN254 arithmetic for Groth16 (common/zk/): fields and tower, curves,
# pairing, NTT.
foreach(t field curve pairing ntt)
  qr_unit_test(test_zk_${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zk_${t}.c LIBS qrzk)
endforeach()
# MSM and the Groth16 prover (common/zk/msm.c, prover.c)
foreach(t msm prover)
  qr_unit_test(test_zk_${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zk_${t}.c LIBS qrzk)
endforeach()
# snarkjs formats, the verifier and the tools against the reference:
# zk_fixtures.sh installs snarkjs and circom2 from npm into QR_ZK_FIXTURES
# (once) and compiles tests/zk/*.circom; circuits below 2^13 are set up on a
# small snarkjs powers-of-tau ceremony, larger ones (mixed65k, 2^16) on a
# phase-1 .ptau from known secrets that zk_make_ptau writes in seconds, with
# snarkjs's own `groth16 setup` on top.  Cached by source hash: a first run
# takes ~4 minutes on 2 cores, a rerun a few seconds.  Without node, npm or
# the registry the setup and the tests report SKIP (77).
set(QR_ZK_FIXTURES ${CMAKE_BINARY_DIR}/zk-fixtures CACHE PATH "snarkjs tools and Groth16 fixtures for the zk tests")
add_test(NAME zk_fixtures
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/zk_fixtures.sh ${CMAKE_CURRENT_SOURCE_DIR}/zk ${QR_ZK_FIXTURES})
set_tests_properties(zk_fixtures PROPERTIES FIXTURES_SETUP zk_fixtures TIMEOUT 900 LABELS unit
  SKIP_RETURN_CODE 77 ENVIRONMENT "QR_ZK_MAKE_PTAU=$<TARGET_FILE:zk_make_ptau>")
# zk_make_ptau (tests/zk/make_ptau.c): phase-1 .ptau files from KNOWN secrets
# for the large fixtures (test-only), and its check against snarkjs at 2^8
add_executable(zk_make_ptau ${CMAKE_CURRENT_SOURCE_DIR}/zk/make_ptau.c)
target_link_libraries(zk_make_ptau qrzk PkgConfig::SODIUM)
add_test(NAME zk_ptau_check
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/zk_ptau_check.sh $<TARGET_FILE:zk_make_ptau>
          ${QR_ZK_FIXTURES}/tools/node_modules/snarkjs/cli.js ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(zk_ptau_check PROPERTIES FIXTURES_REQUIRED zk_fixtures TIMEOUT 300
  LABELS unit SKIP_RETURN_CODE 77)
foreach(t formats groth16)
  qr_unit_test(test_zk_${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zk_${t}.c LIBS qrzk)
  set_tests_properties(test_zk_${t} PROPERTIES FIXTURES_REQUIRED zk_fixtures TIMEOUT 600
    SKIP_RETURN_CODE 77
    ENVIRONMENT "QR_ZK_FIXTURES=${QR_ZK_FIXTURES};QR_ZK_SNARKJS=${QR_ZK_FIXTURES}/tools/node_modules/snarkjs/cli.js;QR_ZK_VERIFY_BIN=$<TARGET_FILE:quarry-verify>")
endforeach()
# the prover half of the cross-checks (our proofs through snarkjs, and
# quarry-prove) once common/zk/prover.c is in the tree
if(EXISTS ${CMAKE_SOURCE_DIR}/common/zk/prover.c)
  target_compile_definitions(test_zk_groth16 PRIVATE QR_ZK_HAVE_PROVER=1)
  set_property(TEST test_zk_groth16 APPEND PROPERTY ENVIRONMENT "QR_ZK_PROVE_BIN=$<TARGET_FILE:quarry-prove>")
endif()
# the prover proves the snarkjs fixtures too (skips without them)
set_tests_properties(test_zk_prover PROPERTIES FIXTURES_REQUIRED zk_fixtures
  ENVIRONMENT "QR_ZK_FIXTURES=${QR_ZK_FIXTURES}")
# The GPU MSM and NTT's per-thread code (msm_gpu_impl.h, ntt_gpu_impl.h) run
# on the CPU by the grid emulator, against the CPU MSM and NTT: the GPU
# arithmetic's coverage where there is no GPU
qr_unit_test(test_zk_gpu_emu SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zk_gpu_emu.c
             ${CMAKE_CURRENT_SOURCE_DIR}/unit/zk_gpu_emu.c LIBS qrzk)
target_include_directories(test_zk_gpu_emu PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
