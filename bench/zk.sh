#!/usr/bin/env bash
# Groth16 prover benchmark (issue 5): MSM and NTT throughput, then proving
# time for synthetic circuits of 2^10 .. 2^20 constraints, against
# `snarkjs groth16 prove` on the very same .zkey and .wtns.
#
#   bench/zk.sh [LOGS...]            default: 10 12 14 16 18 20
#
#   ZK_THREADS=N          prover threads (default: online CPUs)
#   ZK_SNARKJS_MAX_LOG=K  largest size also run through snarkjs (default 20)
#   ZK_BENCH_BUILD=DIR    an existing build tree to use instead of
#                         configuring build-bench/ (Release)
#   ZK_BENCH_CACHE=DIR    where snarkjs and the exported keys go
#                         (default build-bench/zk; keys are rewritten per run)
#
# Each size: bench/zk_prove makes the circuit (2^k - 2 chained constraints
# and one public output, so the domain is exactly 2^k) and a key from known
# secrets (common/zk/g16_toy.c, the layout of snarkjs's zkey_new), proves
# (best of two below 2^18), checks the proof with our verifier, and writes
# circuit.zkey, witness.wtns and our proof.json.  snarkjs then exports the
# verification key, verifies OUR proof (an independent check of the prover
# and of the key writer), proves the same key and witness itself (timed:
# the CLI's wall clock, node start included, as a user runs it) and
# verifies its own proof.  The last line reads
#   constraints=N prove_s=X snarkjs_s=Y ratio=Z
# for the largest size both ran; the line before it lists those sizes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
logs=("$@")
[ ${#logs[@]} -gt 0 ] || logs=(10 12 14 16 18 20)
threads=${ZK_THREADS:-$(nproc)}
sjmax=${ZK_SNARKJS_MAX_LOG:-20}
cache=${ZK_BENCH_CACHE:-$root/build-bench/zk}
SNARKJS_VERSION=0.7.6

if [ -n "${ZK_BENCH_BUILD:-}" ]; then
  build=$ZK_BENCH_BUILD
else
  build=$root/build-bench
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DQUARRY_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target zk_prove >/dev/null
zkp=$build/bench/zk_prove
mkdir -p "$cache"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

sj=""
if command -v node >/dev/null && command -v npm >/dev/null; then
  if [ ! -f "$cache/snarkjs-$SNARKJS_VERSION/node_modules/snarkjs/cli.js" ]; then
    mkdir -p "$cache/snarkjs-$SNARKJS_VERSION"
    (cd "$cache/snarkjs-$SNARKJS_VERSION" && npm install --no-audit --no-fund \
      "snarkjs@$SNARKJS_VERSION" >npm-install.log 2>&1) || true
  fi
  [ -f "$cache/snarkjs-$SNARKJS_VERSION/node_modules/snarkjs/cli.js" ] &&
    sj=$cache/snarkjs-$SNARKJS_VERSION/node_modules/snarkjs/cli.js
fi
[ -n "$sj" ] || echo "snarkjs: not available (no node/npm or no registry): no comparison"

echo "date=$(date -u +%Y-%m-%dT%H:%MZ) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\" cores=$(nproc) threads=$threads"
"$zkp" msm "$threads"
"$zkp" ntt "$threads"

last=""
compared=()
for lg in "${logs[@]}"; do
  reps=2
  [ "$lg" -lt 18 ] || reps=1
  if [ -n "$sj" ] && [ "$lg" -le "$sjmax" ]; then
    d=$cache/k$lg
    rm -rf "$d"
    mkdir -p "$d"
    line=$("$zkp" export "$lg" "$d" "$threads" "$reps")
    echo "$line"
    ours=$(sed -n 's/.* prove_s=\([0-9.]*\).*/\1/p' <<<"$line")
    n=$(sed -n 's/^constraints=\([0-9]*\).*/\1/p' <<<"$line")
    node "$sj" zkey export verificationkey "$d/circuit.zkey" "$d/vk.json" >/dev/null
    if ! node "$sj" groth16 verify "$d/vk.json" "$d/public.json" "$d/proof.json" | grep -q "OK"; then
      echo "FAIL: snarkjs rejects our proof at 2^$lg" >&2
      exit 1
    fi
    t0=$(now)
    node --max-old-space-size=16384 "$sj" groth16 prove "$d/circuit.zkey" "$d/witness.wtns" \
      "$d/sj_proof.json" "$d/sj_public.json" >/dev/null
    t1=$(now)
    sjs=$(elapsed "$t0" "$t1")
    if ! node "$sj" groth16 verify "$d/vk.json" "$d/sj_public.json" "$d/sj_proof.json" | grep -q "OK"; then
      echo "FAIL: snarkjs rejects its own proof on our key at 2^$lg" >&2
      exit 1
    fi
    ratio=$(awk -v a="$sjs" -v b="$ours" 'BEGIN { printf "%.1f", a / b }')
    echo "snarkjs 2^$lg: our proof verified by snarkjs, snarkjs_s=$sjs ratio=$ratio"
    last="constraints=$n prove_s=$ours snarkjs_s=$sjs ratio=$ratio"
    compared+=("2^$lg")
    rm -f "$d/circuit.zkey" # up to ~0.6 GB at 2^20; rewritten by every run anyway
  else
    "$zkp" prove "$lg" "$threads" "$reps"
  fi
done
if [ -n "$last" ]; then
  echo "snarkjs_compared=${compared[*]}"
  echo "$last"
else
  echo "snarkjs_compared=none"
  echo "constraints=0 prove_s=0 snarkjs_s=0 ratio=0"
fi
