#!/usr/bin/env bash
# What preferring the worker that already holds a model saves (issue 4's
# scheduler affinity), end to end: the same ai.infer workload run twice on a
# fresh marketplace, once as shipped and once with --no-affinity.
#
#   bench/affinity.sh [JOBS] [MODELS] [MODEL_MB]     defaults: 64 4 32
#
# MODELS models of about MODEL_MB each (two dense layers with GELU), two
# workers whose caches hold two models each, jobs of 8 rows on models drawn at
# random (the same sequence in both runs), submitted one after another.  Prints, per run, the artifact bytes the broker sent to workers
# and the wall time; the last line reads
#   fetch_mb=X fetch_mb_no_affinity=Y saving=Z wall_s=A wall_s_no_affinity=B
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
njobs=${1:-64}
nmodels=${2:-4}
model_mb=${3:-32}
"$root/deploy/install-deps.sh"
build="$root/build-bench"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DQUARRY_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target quarry-broker quarry-worker quarry-cli >/dev/null
py=python3
"$py" -c "import numpy" 2>/dev/null || py=/usr/bin/python3

tmp=$(mktemp -d /tmp/quarry-affinity.XXXXXX)
chmod 755 "$tmp"
pgport=27310 cport=27311 wport=27312 mport=27313
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
cleanup() {
  stop_all
  "$root/tests/scripts/pg.sh" stop "$tmp/pg" "$pgport" >/dev/null 2>&1 || true
  [ -n "${BENCH_KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
"$root/tests/scripts/pg.sh" start "$tmp/pg" "$pgport" >/dev/null

# models: width w so that two w x w fp32 layers make about MODEL_MB
"$py" - "$tmp/models" "$nmodels" "$model_mb" <<'PY'
import json, os, struct, sys
import numpy as np
out, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out, exist_ok=True)
w = int((mb * 2**20 / 8) ** 0.5)
for i in range(n):
    rng = np.random.default_rng(i)
    t = {"a.weight": rng.standard_normal((w, w), np.float32) / np.sqrt(w),
         "b.weight": rng.standard_normal((w, w), np.float32) / np.sqrt(w)}
    hdr, off, blobs = {}, 0, []
    for k, a in t.items():
        raw = a.tobytes()
        hdr[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(f"{out}/m{i}.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    with open(f"{out}/m{i}.json", "w") as f:
        json.dump({"input": w, "layers": [{"op": "dense", "weight": "a.weight"}, {"op": "gelu"},
                                          {"op": "dense", "weight": "b.weight"}]}, f)
np.random.default_rng(99).standard_normal((8, w)).astype("<f4").tofile(f"{out}/x.f32")
print(w)
PY
cache_mb=$(( (2 * model_mb) + model_mb / 2 ))

run() { # $1 = label, $2.. = extra broker flags
  local label=$1
  shift
  db="host=$tmp/pg port=$pgport dbname=postgres user=postgres"
  psql "$db" -qc "DROP DATABASE IF EXISTS aff" -c "CREATE DATABASE aff" >/dev/null
  db="host=$tmp/pg port=$pgport dbname=aff user=postgres"
  rm -rf "$tmp/store" "$tmp/cache-1" "$tmp/cache-2"
  "$build/broker/quarry-broker" --db="$db" --client-endpoint="tcp://127.0.0.1:$cport" \
    --worker-endpoint="tcp://127.0.0.1:$wport" --insecure --log-level=warn \
    --store-dir="$tmp/store" --metrics-addr="127.0.0.1:$mport" "$@" 2>>"$tmp/broker.log" &
  pids+=($!)
  for w in 1 2; do
    "$build/worker/quarry-worker" --broker="tcp://127.0.0.1:$wport" --name="aff-w$w" \
      --operator=aff-op --slots=1 --ask-price=1 --log-level=${BENCH_LOG:-warn} --cache-dir="$tmp/cache-$w" \
      --cache-mb="$cache_mb" 2>>"$tmp/worker$w.log" &
    pids+=($!)
  done
  q=("$build/sdk/quarry" --broker="tcp://127.0.0.1:$cport" --account=aff --timeout-ms=60000)
  for i in $(seq 1 50); do "${q[@]}" deposit aff 1000000000000 >/dev/null 2>&1 && break; sleep 0.2; done
  for i in $(seq 1 50); do
    [ "$("${q[@]}" --json workers 2>/dev/null | grep -o '"online"' | wc -l)" -ge 2 ] && break
    sleep 0.2
  done
  local shas=()
  for m in $(seq 0 $((nmodels - 1))); do
    shas+=("$("${q[@]}" upload "$tmp/models/m$m.safetensors" | cut -d' ' -f1)")
    shas+=("$("${q[@]}" upload "$tmp/models/m$m.json" | cut -d' ' -f1)")
  done
  local t0 ids=()
  t0=$(date +%s.%N)
  RANDOM=7 # the same model sequence in both runs
  for j in $(seq 0 $((njobs - 1))); do
    m=$((RANDOM % nmodels))
    ids+=("$("${q[@]}" --json infer --weights "${shas[$((2 * m))]}" --graph "${shas[$((2 * m + 1))]}" \
             --input "$tmp/models/x.f32" --rows 8 | sed -n 's/.*"job_id": *\([0-9]*\).*/\1/p')")
  done
  for id in "${ids[@]}"; do "${q[@]}" wait "$id" >/dev/null; done
  local t1 bytes hits
  t1=$(date +%s.%N)
  bytes=$(curl -s "http://127.0.0.1:$mport/metrics" | awk '$1 == "quarry_artifact_fetch_bytes_total" {print $2}')
  hits=$(curl -s "http://127.0.0.1:$mport/metrics" | awk '$1 == "quarry_affinity_hits_total" {print $2}')
  stop_all
  echo "$label $bytes $(echo "$t1 - $t0" | bc -l) $hits"
}
command -v curl >/dev/null || apt-get install -y -qq curl >/dev/null
command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null
echo "bench: jobs=$njobs models=$nmodels model_mb=$model_mb workers=2 slots=1 worker_cache_mb=$cache_mb rows=8 cores=$(nproc)"
read -r _ b1 w1 h1 <<<"$(run affinity)"
read -r _ b2 w2 h2 <<<"$(run no-affinity --no-affinity)"
mb1=$(echo "$b1 / 1048576" | bc -l)
mb2=$(echo "$b2 / 1048576" | bc -l)
printf 'with affinity:    fetched %.1f MiB from the store, %.2f s, %s affinity hits\n' "$mb1" "$w1" "$h1"
printf 'without affinity: fetched %.1f MiB from the store, %.2f s\n' "$mb2" "$w2"
printf 'fetch_mb=%.1f fetch_mb_no_affinity=%.1f saving=%.2f wall_s=%.2f wall_s_no_affinity=%.2f\n' \
  "$mb1" "$mb2" "$(echo "1 - $b1 / $b2" | bc -l)" "$w1" "$w2"
