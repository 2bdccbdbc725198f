#!/usr/bin/env bash
# The whole Quarry test suite: installs what is missing, builds twice (an
# optimised build with test-only fault injection, and an ASan+UBSan build),
# and runs every ctest test in both.  Each run starts its own PostgreSQL
# cluster in a temporary folder (tests/scripts/pg.sh) and stops it again.
#   tests/run.sh            everything
#   tests/run.sh -R regex   only matching tests (passed to ctest)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/deploy/install-deps.sh"
# The chain tests drive real peers from the npm registry (solc-js, anvil):
# they need node and npm, which the product itself does not.
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  echo "tests/run.sh: installing nodejs and npm for the chain tests"
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm \
    >/dev/null; } || echo "tests/run.sh: nodejs/npm not installed; the chain tests will skip" >&2
fi
jobs=$(nproc 2>/dev/null || echo 2)
# Where nvcc exists the CUDA module is built too.  Its default list of
# seven GPU architectures takes ~20 minutes on 2 cores; the tests need only
# the GPU that is here (CMake's "native"), or with none one architecture,
# which is the check that the kernels compile.  QUARRY_TEST_CUDA_ARCHS
# overrides.
if [ -z "${QUARRY_TEST_CUDA_ARCHS:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    QUARRY_TEST_CUDA_ARCHS=native
  else
    QUARRY_TEST_CUDA_ARCHS=90
  fi
fi
status=0
for variant in release asan; do
  dir="$root/build-test-$variant"
  # the snarkjs fixtures (tests/scripts/zk_fixtures.sh) are the same files
  # for both builds: made once (~4 minutes cold on 2 cores), not twice
  opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUARRY_TEST_FAULTS=ON -DQUARRY_BUILD_TESTS=ON
        -DQR_ZK_FIXTURES="$root/build-test-zk-fixtures" -DQUARRY_CUDA_ARCHITECTURES="$QUARRY_TEST_CUDA_ARCHS")
  if [ "$variant" = asan ]; then
    opts+=(-DQUARRY_SANITIZE=ON -DQR_TEST_PGPORT=25433)
  fi
  echo "== $variant build"
  cmake -S "$root" -B "$dir" "${opts[@]}" >/dev/null
  cmake --build "$dir" -j "$jobs" >/dev/null
  echo "== $variant tests"
  # leaks are reported by ASan at exit; halt on the first UBSan finding
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd "$dir" && ctest --output-on-failure -j "$jobs" "$@") || status=1
done
exit $status
