#!/usr/bin/env bash
# Core marketplace benchmark: end-to-end jobs/s and submit-to-settled latency
# for small ai.gemm jobs with durable commits, 2 workers, on this machine.
#
#   bench/core.sh [JOBS] [WINDOW] [DIM]     defaults: 60000 2000 64
#   BENCH_CURVE=1 bench/core.sh ...        with CurveZMQ on every endpoint
#                                          (default: --insecure, the loop alone)
#   BENCH_TRANSPORT=tcp bench/core.sh ...  peers over TCP loopback (default:
#                                          ipc, Unix sockets, as peers on the
#                                          broker's own host connect)
#   BENCH_WORKER_NICE=0 bench/core.sh ...  workers at the broker's priority
#                                          (default 10: on this shared box the
#                                          worker agents yield the CPU to the
#                                          broker and PostgreSQL, whose commit
#                                          is the serial path, as they would
#                                          running on their own machines)
#
# Builds an optimised tree (build-bench/), starts a throwaway PostgreSQL
# cluster (fsync and synchronous_commit on: every acknowledged job is on
# disk), a broker, two workers with one slot each, deposits credit, and runs
# bench/core_bench, an asynchronous client that keeps WINDOW jobs in flight.
# Then the same jobs through the usual PostgreSQL queue (bench/pgqueue_bench:
# INSERT, claim with SELECT ... FOR UPDATE SKIP LOCKED, one job per
# transaction, the same fsync'ed cluster) with Quarry stopped, both input modes.
# The last line reads: jobs_per_s=N p50_ms=X p99_ms=Y ... ratio=R
# (N, X, Y: shared input named by each job; R: that over the queue's
# shared-input jobs/s, whose jobs name one stored input row the same way).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${1:-60000}
window=${2:-2000}
dim=${3:-64}
"$root/deploy/install-deps.sh"
build="$root/build-bench"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DQUARRY_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target quarry-broker quarry-worker quarry-cli core_bench pgqueue_bench >/dev/null

tmp=$(mktemp -d /tmp/quarry-bench.XXXXXX)
chmod 755 "$tmp"
pgport=27300 cport=27301 wport=27302
transport=${BENCH_TRANSPORT:-ipc}
case "$transport" in
  ipc) cep="ipc://$tmp/clients.sock" wep="ipc://$tmp/workers.sock" ;;
  tcp) cep="tcp://127.0.0.1:$cport" wep="tcp://127.0.0.1:$wport" ;;
  *) echo "bench/core.sh: BENCH_TRANSPORT must be ipc or tcp" >&2; exit 2 ;;
esac
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$root/tests/scripts/pg.sh" stop "$tmp/pg" "$pgport" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
"$root/tests/scripts/pg.sh" start "$tmp/pg" "$pgport" >/dev/null
db="host=$tmp/pg port=$pgport dbname=postgres user=postgres"

sec=(--insecure)
wsec=()
quarry=("$build/sdk/quarry" --broker="$cep" --account=bench)
if [ "${BENCH_CURVE:-0}" = 1 ]; then
  "$build/sdk/quarry" keygen "$tmp/admin" >/dev/null
  sec=(--curve-key="$tmp/broker" --admin-keys="$tmp/admin.pub" --open-registration)
  wsec=(--server-key="$tmp/broker.pub")
  quarry=("$build/sdk/quarry" --broker="$cep" --server-key="$tmp/broker.pub"
          --key="$tmp/admin.key" --account=admin)
fi
"$build/broker/quarry-broker" --db="$db" --client-endpoint="$cep" \
  --worker-endpoint="$wep" --store-dir="$tmp/store" "${sec[@]}" --log-level=warn ${BROKER_ARGS:-} 2>"${BROKER_LOG:-$tmp/broker.log}" &
pids+=($!)
if [ "${BENCH_CURVE:-0}" = 1 ]; then
  for i in $(seq 1 50); do [ -f "$tmp/broker.pub" ] && break; sleep 0.1; done
fi
wnice=${BENCH_WORKER_NICE:-10}
for w in 1 2; do
  nice -n "$wnice" "$build/worker/quarry-worker" --broker="$wep" --name="bench-w$w" \
    --operator=bench-op --slots=1 --ask-price=1 --log-level=warn "${wsec[@]}" 2>"$tmp/worker$w.log" &
  pids+=($!)
done
for i in $(seq 1 50); do
  "${quarry[@]}" deposit bench 1000000000000000 >/dev/null 2>&1 &&
    "${quarry[@]}" deposit bench-unique 1000000000000000 >/dev/null 2>&1 && break
  sleep 0.2
done
for i in $(seq 1 50); do
  [ "$("${quarry[@]}" --json workers 2>/dev/null | grep -o '"online"' | wc -l)" -ge 2 ] && break
  sleep 0.2
done

[ "${BENCH_CURVE:-0}" = 1 ] && export QUARRY_SERVER_KEY="$tmp/broker.pub"
echo "bench: jobs=$jobs window=$window dim=${dim}x${dim}x${dim} workers=2 slots=1 worker_nice=$wnice cores=$(nproc) durable=fsync+synchronous_commit curve=${BENCH_CURVE:-0} transport=$transport"
# Each run starts from a checkpoint: the unique run writes gigabytes of WAL,
# and a checkpoint that it leaves running (flushing its pages, then full-page
# images of whatever is touched first) would otherwise land on whichever run
# comes next.  The headline run goes first: every job with the same matrices,
# as a client running one model over one batch does, uploaded once and named
# by each job (JobSpec.input), as the queue below names its one stored input
# row; then the same matrices sent with each job (stored once, sent to each
# worker once); then every job's input different (nothing to deduplicate).
ckpt() { psql "$db" -qc CHECKPOINT; }
ckpt
out=$("$build/bench/core_bench" "$cep" bench "$jobs" "$window" "$dim" ref)
echo "$out" | head -n 1
echo "shared inputs named by each job: $(echo "$out" | tail -n 1)"
ckpt
inl=$("$build/bench/core_bench" "$cep" bench "$jobs" "$window" "$dim")
echo "$inl" | head -n 1
echo "shared inputs sent with each job: $(echo "$inl" | tail -n 1)"
ckpt
uniq=$("$build/bench/core_bench" "$cep" bench-unique "$jobs" "$window" "$dim" unique)
echo "$uniq" | head -n 1
echo "unique inputs: $(echo "$uniq" | tail -n 1)"
settled=$(psql "$db" -Atc "SELECT count(*) FROM settlements")
ledger=$(psql "$db" -Atc "SELECT coalesce(sum(amount),0) FROM ledger_entries")
integrity=$(psql "$db" -Atc "SELECT jobs_without_client + jobs_without_input + dangling_results + settlements_without_settled_job + entries_without_account FROM v_integrity")
echo "check: settled=$settled (expected $((3 * jobs))) ledger_sum=$ledger integrity_problems=$integrity"
u=$(echo "$uniq" | tail -n 1 | sed -n 's/.*jobs_per_s=\([0-9]*\).*/\1/p')
i=$(echo "$inl" | tail -n 1 | sed -n 's/.*jobs_per_s=\([0-9]*\).*/\1/p')
q=$(echo "$out" | tail -n 1 | sed -n 's/.*jobs_per_s=\([0-9]*\).*/\1/p')

# the baseline, alone on the machine: Quarry's processes go first
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait "${pids[@]}" 2>/dev/null || true
pids=()
base=()
for mode in unique shared; do
  ckpt
  b=$(OPENBLAS_NUM_THREADS=1 "$build/bench/pgqueue_bench" "$db" "$jobs" "$dim" "$mode")
  echo "$b" | head -n 1
  echo "pgqueue $mode inputs: $(echo "$b" | tail -n 1)"
  base+=("$(echo "$b" | tail -n 1 | sed -n 's/.*jobs_per_s=\([0-9]*\).*/\1/p')")
done
ratio=$(awk -v a="$q" -v b="${base[1]}" 'BEGIN { printf "%.1f", a / b }')
echo "$(echo "$out" | tail -n 1) inline_jobs_per_s=$i unique_jobs_per_s=$u jobs=$jobs dim=$dim window=$window transport=$transport worker_nice=$wnice settled=$settled ledger_sum=$ledger pgqueue_jobs_per_s=${base[1]} pgqueue_unique_jobs_per_s=${base[0]} ratio=$ratio"
