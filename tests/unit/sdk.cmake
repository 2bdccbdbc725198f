# libquarry and the quarry CLI: API checks without a network, a scripted
# broker peer (a real ZeroMQ ROUTER in a thread) checking the frames the SDK
# sends and how it reads replies, and the CLI's flags and exit codes.
# test_sdk_fake.c is the scripted peer, #included by the tests that use it.
qr_unit_test(test_sdk_api SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sdk_api.c
             LIBS quarry_static qrcommon)
qr_unit_test(test_sdk_proto SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sdk_proto.c
             LIBS quarry_static qrcommon Threads::Threads)
qr_unit_test(test_sdk_cli SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sdk_cli.c
             LIBS qrcommon Threads::Threads)
target_compile_definitions(test_sdk_cli PRIVATE QUARRY_CLI="$<TARGET_FILE:quarry-cli>")
add_dependencies(test_sdk_cli quarry-cli)
# the shared library must export the API and nothing else
add_test(NAME test_sdk_exports
         COMMAND sh -c "nm -D --defined-only \"$0\" | awk '$2 ~ /^[TDBR]$/ {print $3}' | grep -v -E '^quarry_[a-z]' | grep -v '^_' && exit 1 || exit 0"
                 $<TARGET_FILE:quarry>)
set_tests_properties(test_sdk_api test_sdk_proto test_sdk_cli test_sdk_exports PROPERTIES LABELS "unit;sdk")
