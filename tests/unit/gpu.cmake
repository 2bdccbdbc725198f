# The GPU path (common/gpu.c and the CUDA module).  test_gpu always runs the
# loader's error paths and the whole API against a fake module that computes
# on the CPU; the comparisons against a real GPU skip, saying why, when no
# device opens.
foreach(fake fake_cuda fake_cuda_badabi)
  add_library(${fake} MODULE ${CMAKE_CURRENT_SOURCE_DIR}/unit/fake_cuda.c)
  target_include_directories(${fake} PRIVATE ${CMAKE_SOURCE_DIR}/common)
  target_compile_options(${fake} PRIVATE -fvisibility=hidden)
  target_link_libraries(${fake} PRIVATE m)
endforeach()
target_compile_definitions(fake_cuda_badabi PRIVATE QR_FAKE_ABI=99)

qr_unit_test(test_gpu SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gpu.c LIBS qrcommon)
add_dependencies(test_gpu fake_cuda fake_cuda_badabi)
target_compile_definitions(test_gpu PRIVATE
  QR_FAKE_CUDA="$<TARGET_FILE:fake_cuda>" QR_FAKE_CUDA_BADABI="$<TARGET_FILE:fake_cuda_badabi>")
if(TARGET quarry_cuda)
  # built with the test, so that the search finds it in build/lib
  add_dependencies(test_gpu quarry_cuda)
  target_compile_definitions(test_gpu PRIVATE QR_TEST_CUDA_MODULE)
endif()
if(QUARRY_SANITIZE)
  # the CUDA driver maps memory where ASan keeps its shadow gap
  set_tests_properties(test_gpu PROPERTIES ENVIRONMENT "ASAN_OPTIONS=protect_shadow_gap=0")
endif()
