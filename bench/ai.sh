#!/usr/bin/env bash
# Inference runtime benchmark (the ai.infer model code on the CPU): GFLOP/s
# against raw cblas_sgemm on the same shapes, rows/s batched and one row at
# a time, and the cost of the broker's whole-result check (qr_model_check)
# against the forward pass.  Two shapes (bench/ai_bench.c describes them):
# first the element-wise-heavy "square" stack of the first figures, then
# the goal shape, transformer MLP blocks, whose figures are the last line:
#   infer_gflops=X sgemm_gflops=Y ratio=Z verify_frac=W rows_per_s_batched=...
#   rows_per_s_single=... batch_speedup=... verify_frac_single=...
#
#   bench/ai.sh [WIDTH=1024] [BLOCKS=2] [ROWS=256] [REPS=20]
#
# Builds a Release tree of its own in build-bench.  Not yet measured here:
# batching inside the broker (jobs merged on one model) and cached model
# artifacts; ai.infer itself does not run through the broker yet.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/deploy/install-deps.sh"
build="$root/build-bench"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DQUARRY_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target ai_bench >/dev/null
width=${1:-1024} blocks=${2:-2} rows=${3:-256} reps=${4:-20}
echo "== square: 4 x (dense ${width}x${width} + gelu), layernorm"
"$build/bench/ai_bench" square "$width" 4 "$rows" "$reps"
echo "== mlp (goal shape): $blocks transformer MLP blocks, width $width, hidden $((4 * width))"
"$build/bench/ai_bench" mlp "$width" "$blocks" "$rows" "$reps"
