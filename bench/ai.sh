#!/usr/bin/env bash
# Inference runtime benchmark (the ai.infer model code on the CPU): GFLOP/s
# against raw cblas_sgemm on the same shapes, batched and one row at a time,
# and the cost of verifying every dense layer.  The last line reads:
#   infer_gflops=X sgemm_gflops=Y ratio=Z verify_frac=W ...
#   bench/ai.sh [WIDTH=1024] [LAYERS=4] [ROWS=256] [REPS=20]
# Not yet measured here: batching inside the broker (jobs merged on one
# model) and cached model artifacts; ai.infer itself does not run through the
# broker yet.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/deploy/install-deps.sh"
build="$root/build-bench"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DQUARRY_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target ai_bench >/dev/null
"$build/bench/ai_bench" "${1:-1024}" "${2:-4}" "${3:-256}" "${4:-20}"
