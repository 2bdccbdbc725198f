# The GPU path (common/gpu.c and the CUDA module).  test_gpu always runs the
# loader's error paths and the whole API against a fake module that computes
# on the CPU; the comparisons against a real GPU skip, saying why, when no
# device opens.
foreach(fake fake_cuda fake_cuda_badabi)
  # the zk entries compute with the grid emulator (the GPU kernels' code on
  # the CPU); qrzk for the field's out-of-line pieces, kept inside the module
  add_library(${fake} MODULE ${CMAKE_CURRENT_SOURCE_DIR}/unit/fake_cuda.c
              ${CMAKE_CURRENT_SOURCE_DIR}/unit/zk_gpu_emu.c)
  target_include_directories(${fake} PRIVATE ${CMAKE_SOURCE_DIR}/common ${CMAKE_CURRENT_SOURCE_DIR}/unit)
  target_compile_options(${fake} PRIVATE -fvisibility=hidden)
  target_link_libraries(${fake} PRIVATE qrzk m)
  target_link_options(${fake} PRIVATE -Wl,--exclude-libs,ALL)
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

# zk.groth16 on the GPU path: the loader's MSM and NTT calls and the
# prover's backend hook against the fake module (which runs the GPU
# kernels' code through the grid emulator) and, with a GPU, the real module
# against the CPU; the executor proving on the CPU when the GPU fails.
qr_unit_test(test_gpu_zk SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gpu_zk.c LIBS qrworker)
add_dependencies(test_gpu_zk fake_cuda)
target_compile_definitions(test_gpu_zk PRIVATE QR_FAKE_CUDA="$<TARGET_FILE:fake_cuda>")
if(TARGET quarry_cuda)
  add_dependencies(test_gpu_zk quarry_cuda)
endif()
if(QUARRY_SANITIZE)
  set_tests_properties(test_gpu_zk PROPERTIES ENVIRONMENT "ASAN_OPTIONS=protect_shadow_gap=0")
endif()
