# The chain library (common/chain): known-answer units, the JSON-RPC client
# against canned replies and against a real anvil node, and the check that
# the committed contract ABI matches what solc makes of the source.
#
# solc (solc-js) and anvil come from npm into a cache folder in the build
# tree, once; without npm or the network those two tests report SKIP (exit
# 77) instead of failing.  anvil listens on QR_CHAIN_ANVIL_PORT or, when
# that is taken (the other build's run), the next free one of nine after it:
# 27500-27599 is the chain tests' range.
set(QR_CHAIN_TOOLS ${CMAKE_BINARY_DIR}/chain-tools CACHE PATH "npm cache of solc and anvil for the chain tests")
set(QR_CHAIN_SOLC_VERSION 0.8.28)
set(QR_CHAIN_ANVIL_VERSION 1.7.1)
set(QR_CHAIN_ANVIL_PORT 27545 CACHE STRING "first-choice port of the anvil node the chain tests start")

foreach(t keccak rlp abi tx merkle rpc)
  qr_unit_test(test_chain_${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_chain_${t}.c LIBS qrchain)
endforeach()

add_test(NAME test_chain_abi_drift
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/abi_drift.sh ${CMAKE_SOURCE_DIR}/contracts-abi
          ${QR_CHAIN_TOOLS} ${QR_CHAIN_SOLC_VERSION})
set_tests_properties(test_chain_abi_drift PROPERTIES TIMEOUT 300 LABELS unit SKIP_RETURN_CODE 77)

# The anvil test deploys the contract compiled by the drift test (it skips
# that part when no bytecode is there), hence the order.
add_executable(test_chain_anvil ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_chain_anvil.c)
target_link_libraries(test_chain_anvil qrchain PkgConfig::CMOCKA)
add_test(NAME test_chain_anvil
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/with_anvil.sh ${QR_CHAIN_TOOLS} ${QR_CHAIN_ANVIL_VERSION}
          ${QR_CHAIN_ANVIL_PORT} $<TARGET_FILE:test_chain_anvil>)
set_tests_properties(test_chain_anvil PROPERTIES TIMEOUT 300 LABELS unit SKIP_RETURN_CODE 77
  DEPENDS test_chain_abi_drift)
