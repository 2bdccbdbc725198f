# The Python binding of libquarry (sdk/python): its unittest suite, run
# against a real quarry-broker and quarry-worker that it starts on loopback
# ports 27400-27499, in a database of its own on the suite's cluster.
# Included from tests/CMakeLists.txt after QR_TEST_PG and the pg fixture:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/python.cmake)
find_package(Python3 3.8 COMPONENTS Interpreter QUIET)
if(NOT Python3_Interpreter_FOUND)
  message(STATUS "python3 not found: the Python binding tests are not registered")
  return()
endif()

# numpy checks ai.infer independently (sdk/python/tests/test_infer.py): prefer
# an interpreter that has it (Debian's python3-numpy is for /usr/bin/python3).
execute_process(COMMAND ${Python3_EXECUTABLE} -c "import numpy"
                RESULT_VARIABLE QR_PY_NONUMPY OUTPUT_QUIET ERROR_QUIET)
if(QR_PY_NONUMPY AND EXISTS /usr/bin/python3)
  execute_process(COMMAND /usr/bin/python3 -c "import numpy"
                  RESULT_VARIABLE QR_SYS_NONUMPY OUTPUT_QUIET ERROR_QUIET)
  if(NOT QR_SYS_NONUMPY)
    set(Python3_EXECUTABLE /usr/bin/python3)
  endif()
endif()

set(QR_PY_ENV
  "QUARRY_CLI_BIN=$<TARGET_FILE:quarry-cli>"
  "QUARRY_LIB=$<TARGET_FILE:quarry>"
  "QUARRY_BROKER_BIN=$<TARGET_FILE:quarry-broker>"
  "QUARRY_WORKER_BIN=$<TARGET_FILE:quarry-worker>"
  "QUARRY_TEST_PG=${QR_TEST_PG}"
  "QUARRY_HEADER=${PROJECT_SOURCE_DIR}/sdk/quarry.h"
  "QUARRY_PY_PORTS=27400-27499"
  "QR_ZK_FIXTURES=${QR_ZK_FIXTURES}"
  "QR_ZK_VERIFY_BIN=$<TARGET_FILE:quarry-verify>"
  "PYTHONDONTWRITEBYTECODE=1")
if(QUARRY_SANITIZE)
  # An ASan-built libquarry.so can only be loaded into python3 when the ASan
  # runtime comes first; the test removes LD_PRELOAD again for what it starts.
  # The interpreter's own allocations are not ours: no leak report for it.
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE QR_PY_LIBASAN OUTPUT_STRIP_TRAILING_WHITESPACE)
  list(APPEND QR_PY_ENV "LD_PRELOAD=${QR_PY_LIBASAN}"
                        "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1")
endif()

add_test(NAME python_sdk
  COMMAND ${Python3_EXECUTABLE} -m unittest discover -v
          -s ${PROJECT_SOURCE_DIR}/sdk/python/tests -t ${PROJECT_SOURCE_DIR}/sdk/python/tests)
set_tests_properties(python_sdk PROPERTIES
  FIXTURES_REQUIRED "pg;zk_fixtures"
  TIMEOUT 300
  LABELS "python;integration"
  ENVIRONMENT "${QR_PY_ENV}")
