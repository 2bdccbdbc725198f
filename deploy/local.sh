#!/usr/bin/env bash
# A whole Quarry marketplace on this machine, end to end:
#   - installs what is missing (deploy/install-deps.sh) and builds into build/;
#   - starts an embedded PostgreSQL cluster under var/pg (kept between runs,
#     run as the unprivileged postgres account when started by root);
#   - makes CurveZMQ key pairs under var/keys (broker, admin, the demo client,
#     each worker) and starts quarry-broker with CURVE on both endpoints; the
#     admin registers the client and operator keys;
#   - starts two quarry-worker processes (two operators);
#   - credits a client account and submits real ai.gemm, ai.infer and
#     zk.groth16 jobs through the quarry CLI, waits for each to be verified
#     and settled, and prints the
#     results, the jobs, the workers, every balance and the admin dashboard.
# Then it stops the daemons and the cluster, unless --serve is given, in which
# case it keeps the marketplace running until Ctrl-C.
#
#   deploy/local.sh [--serve] [--jobs N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
serve=0
njobs=12
while [ $# -gt 0 ]; do
  case $1 in
    --serve) serve=1 ;;
    --jobs) njobs=${2:?--jobs needs a number}; shift ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "local.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

"$root/deploy/install-deps.sh"
build="$root/build"
echo "== building (Release) into build/"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DQUARRY_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target quarry-broker quarry-worker quarry-cli quarry-verify >/dev/null

var="$root/var"
mkdir -p "$var/log"
pgport=${QUARRY_LOCAL_PGPORT:-25400}
cport=${QUARRY_LOCAL_CLIENT_PORT:-5555}
wport=${QUARRY_LOCAL_WORKER_PORT:-5556}
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$root/tests/scripts/pg.sh" halt "$var/pg" "$pgport" >/dev/null 2>&1 || true
}
trap stop_all EXIT

echo "== PostgreSQL in var/pg (port $pgport)"
"$root/tests/scripts/pg.sh" start "$var/pg" "$pgport" >/dev/null
admin="host=$var/pg port=$pgport dbname=postgres user=postgres"
if [ "$(psql "$admin" -Atc "SELECT count(*) FROM pg_database WHERE datname='quarry'")" = 0 ]; then
  psql "$admin" -qc "CREATE DATABASE quarry" >/dev/null
fi
db="host=$var/pg port=$pgport dbname=quarry user=postgres"

keys="$var/keys"
mkdir -p "$keys" && chmod 700 "$keys"
for k in admin demo north-1 south-1; do
  [ -f "$keys/$k.key" ] || "$build/sdk/quarry" keygen "$keys/$k" >/dev/null
done
echo "== broker with CURVE (clients on $cport, workers on $wport); logs in var/log/"
"$build/broker/quarry-broker" --db="$db" --client-endpoint="tcp://127.0.0.1:$cport" \
  --worker-endpoint="tcp://127.0.0.1:$wport" --curve-key="$keys/broker" \
  --admin-keys="$keys/admin.pub" --store-dir="$var/store" 2>>"$var/log/broker.log" &
pids+=($!)
for i in $(seq 1 100); do
  [ -f "$keys/broker.pub" ] && break
  sleep 0.1
done
admin=("$build/sdk/quarry" --broker="tcp://127.0.0.1:$cport" --server-key="$keys/broker.pub"
       --key="$keys/admin.key" --account=admin)
for i in $(seq 1 100); do
  "${admin[@]}" balance >/dev/null 2>&1 && break
  [ "$i" = 100 ] && { echo "local.sh: broker did not come up; see var/log/broker.log" >&2; exit 1; }
  sleep 0.1
done
echo "== registering keys: the demo client and the two operators' workers"
"${admin[@]}" admin add-client "$keys/demo.pub" demo >/dev/null
"${admin[@]}" admin add-operator "$keys/north-1.pub" north-compute >/dev/null
"${admin[@]}" admin add-operator "$keys/south-1.pub" south-compute >/dev/null
"$build/worker/quarry-worker" --broker="tcp://127.0.0.1:$wport" --name=north-1 \
  --operator=north-compute --ask-price=10 --slots=1 --server-key="$keys/broker.pub" \
  --key="$keys/north-1.key" --cache-dir="$var/cache/north-1" 2>>"$var/log/worker-north-1.log" &
pids+=($!)
"$build/worker/quarry-worker" --broker="tcp://127.0.0.1:$wport" --name=south-1 \
  --operator=south-compute --ask-price=12 --slots=1 --server-key="$keys/broker.pub" \
  --key="$keys/south-1.key" --cache-dir="$var/cache/south-1" 2>>"$var/log/worker-south-1.log" &
pids+=($!)

q=("$build/sdk/quarry" --broker="tcp://127.0.0.1:$cport" --server-key="$keys/broker.pub"
   --key="$keys/demo.key" --account=demo)
for i in $(seq 1 100); do
  [ "$("${admin[@]}" --json workers | grep -o '"online"' | wc -l)" -ge 2 ] && break
  sleep 0.1
done

echo "== crediting the demo client (an admin's deposit)"
"${admin[@]}" deposit demo 1000000
echo "== submitting $njobs ai.gemm jobs (OpenBLAS on the workers, Freivalds check on the broker)"
shapes=(64 128 256 96)
ids=()
for i in $(seq 1 "$njobs"); do
  d=${shapes[$((i % ${#shapes[@]}))]}
  id=$("${q[@]}" --json submit --m "$d" --n "$d" --k "$d" --random "$i" --max-price 5000 \
       | sed -n 's/.*"job_id": *\([0-9]*\).*/\1/p')
  ids+=("$id")
done
for id in "${ids[@]}"; do
  "${q[@]}" wait "$id" >/dev/null
done
echo "== results"
for id in "${ids[@]:0:4}"; do
  "${q[@]}" result "$id" --head 4
done
echo "== ai.infer: an MLP block + classifier (safetensors, F16 weights) uploaded once,"
echo "   fetched and cached by a worker, every layer checked by the broker"
py=python3
"$py" -c "import numpy" 2>/dev/null || py=/usr/bin/python3
"$py" "$root/deploy/make-model.py" "$var/model" 16
for i in 1 2 3; do
  "${q[@]}" infer --weights "$var/model/mlp.safetensors" --graph "$var/model/mlp.json" \
    --input "$var/model/input.f32" --rows 16 --max-price 100000 --wait \
    --out "$var/model/output-$i.f32" >/dev/null
done
id=$("${q[@]}" --json jobs --limit 1 | sed -n 's/.*"job_id": *\([0-9]*\).*/\1/p' | head -1)
"${q[@]}" result "$id" --head 10
echo "== zk.groth16: a Groth16 proof of a circom witness (demo key in deploy/demo/),"
echo "   made by a worker, verified by the broker before payment, checked again here"
mkdir -p "$var/zk"
"${q[@]}" prove --zkey "$root/deploy/demo/mul100.zkey" --wtns "$root/deploy/demo/mul100.wtns" \
  --max-price 100000 --wait --proof "$var/zk/proof.json" --public "$var/zk/public.json"
cmp -s "$var/zk/public.json" "$root/deploy/demo/mul100.public.json" &&
  echo "public.json matches snarkjs's for this witness"
"$build/sdk/tools/quarry-verify" "$root/deploy/demo/mul100.vk.json" "$var/zk/public.json" \
  "$var/zk/proof.json" && echo "quarry-verify: the proof is valid"
echo "== jobs"
"${q[@]}" jobs --limit "$njobs"
echo "== workers"
"${q[@]}" workers
echo "== balances"
for a in demo north-compute south-compute; do "${admin[@]}" balance "$a"; done
echo "== dashboard"
"${admin[@]}" dash
if [ "$serve" = 1 ]; then
  echo "== marketplace running: clients on tcp://127.0.0.1:$cport (CURVE; broker key"
  echo "   $keys/broker.pub, demo client key $keys/demo.key); Ctrl-C stops it"
  wait
fi
