# fuzz_smoke: builds the libFuzzer targets in tests/fuzz/ with clang in their
# own temporary folder (tests/fuzz/run.sh; the main build's compiler and
# flags are not used) and runs each over its committed corpus plus
# QUARRY_FUZZ_SECONDS of fresh fuzzing.  Failing inputs are copied to
# <build>/fuzz-artifacts/.  Included from tests/CMakeLists.txt.
#
# The fuzz build does not depend on the main build's variant, so by default
# the test is registered only in non-sanitizer builds (tests/run.sh builds
# both; once is enough).
if(QUARRY_SANITIZE)
  set(_qr_fuzz_default OFF)
else()
  set(_qr_fuzz_default ON)
endif()
option(QUARRY_FUZZ_SMOKE "register the fuzz_smoke test (tests/fuzz/run.sh)" ${_qr_fuzz_default})
set(QUARRY_FUZZ_SECONDS 10 CACHE STRING "fresh fuzzing per target in fuzz_smoke, seconds (0 = corpus replay only)")
set(QUARRY_FUZZ_TARGETS "" CACHE STRING "targets fuzz_smoke runs, e.g. wire;gemm (empty = all of tests/fuzz/fuzz_*.c)")

if(QUARRY_FUZZ_SMOKE)
  add_test(NAME fuzz_smoke
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/fuzz/run.sh ${QUARRY_FUZZ_TARGETS}
    WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(fuzz_smoke PROPERTIES
    TIMEOUT 600
    LABELS fuzz
    ENVIRONMENT "QUARRY_FUZZ_SECONDS=${QUARRY_FUZZ_SECONDS};QUARRY_FUZZ_ARTIFACTS=${CMAKE_BINARY_DIR}/fuzz-artifacts")
endif()
