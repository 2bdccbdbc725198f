#!/usr/bin/env bash
# Chain benchmark: gas per settled job and records mirrored per second of
# quarry-mirror against a local anvil node.
#
#   bench/chain.sh [RECORDS] [BATCH_SIZES]      defaults: 8192 "256 1024"
#   BUILD=build-dir bench/chain.sh ...          use that build tree
#                                               (default build-bench/, built
#                                               here in Release)
#
# For each batch size: a fresh database (quarry-mirror migrate) with RECORDS
# settlement rows inserted directly by SQL (one client, one operator, both
# with addresses: the broker's part is bench/core.sh's; this measures the
# mirror alone), a fresh QuarrySettlement (quarry-mirror deploy, solc-js from
# npm via tests/scripts/abi_drift.sh), then quarry-mirror with
# --confirmations=1 from start until every record is in a confirmed batch.
# Gas comes from the receipts (mirror_batches.gas_used), so it is what the
# chain charged.  anvil mines each transaction at once: records/s is the
# mirror's own rate (PostgreSQL, signing, JSON-RPC), not a real chain's
# block time.  The last line reads: gas_per_job=N records_per_s=X (of the
# last batch size).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if [ "${1:-}" = "--inner" ]; then
  shift
  build=$1 tmp=$2 records=$3 sizes=$4
  db="host=$tmp/pg port=$QR_BENCH_PGPORT user=postgres"
  mirror=$build/broker/mirror/quarry-mirror
  printf 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n' >"$tmp/broker.key"
  chmod 600 "$tmp/broker.key"
  gas_per_job=0 rate=0
  for size in $sizes; do
    dbname=qr_bench_chain_$size
    psql "$db dbname=postgres" -qc "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" -c "CREATE DATABASE $dbname" >/dev/null 2>&1
    "$mirror" --db="$db dbname=$dbname" migrate >/dev/null
    psql "$db dbname=$dbname" -q >/dev/null <<SQL
INSERT INTO accounts (id, name, kind) VALUES (1, 'bench', 'client'), (2, 'bench-op', 'operator');
INSERT INTO account_addresses (account_id, address) VALUES
  (1, decode('70997970c51812dc3a010c7d01b50e0d17dc79c8', 'hex')),
  (2, decode('3c44cdddb6a900fa2b585dd299e03d12fa4293bc', 'hex'));
INSERT INTO settlements (job_id, worker_id, operator_id, client_id, units, price, fee, settled_at)
  SELECT g, 1, 2, 1, 1 + g % 7, 100 + g % 50, 5, now() FROM generate_series(1, $records) g;
SQL
    contract=$("$mirror" --rpc-url="$QUARRY_TEST_ETH_URL" --key-file="$tmp/broker.key" deploy \
      "$QUARRY_TEST_SETTLEMENT_BIN" 2>/dev/null)
    start=$(date +%s.%N)
    "$mirror" --db="$db dbname=$dbname" --rpc-url="$QUARRY_TEST_ETH_URL" --contract="$contract" \
      --key-file="$tmp/broker.key" --batch-size="$size" --batch-age-ms=0 --confirmations=1 \
      --poll-ms=20 --http-addr= --log-level=warn 2>"$tmp/mirror-$size.log" &
    pid=$!
    while :; do
      left=$(psql "$db dbname=$dbname" -tAc "SELECT count(*) FROM settlements s LEFT JOIN mirror_batches b ON b.id = s.batch_id WHERE b.state IS DISTINCT FROM 'confirmed'")
      [ "$left" = 0 ] && break
      kill -0 $pid 2>/dev/null || { echo "chain.sh: quarry-mirror died:" >&2; tail "$tmp/mirror-$size.log" >&2; exit 1; }
      sleep 0.05
    done
    end=$(date +%s.%N)
    kill $pid; wait $pid || true
    read -r batches gas first later < <(psql "$db dbname=$dbname" -tAF' ' -c \
      "SELECT count(*), sum(gas_used), min(gas_used) FILTER (WHERE id = 0), round(avg(gas_used) FILTER (WHERE id > 0)) FROM mirror_batches")
    gas_per_job=$(( (gas + records - 1) / records ))
    rate=$(awk -v n="$records" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", n / (b - a) }')
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
    echo "batch_size=$size records=$records batches=$batches gas_total=$gas first_post_gas=$first post_gas=$later seconds=$secs gas_per_job=$gas_per_job records_per_s=$rate"
  done
  echo "gas_per_job=$gas_per_job records_per_s=$rate"
  exit 0
fi

records=${1:-8192}
sizes=${2:-"256 1024"}
build=${BUILD:-$root/build-bench}
if [ -z "${BUILD:-}" ]; then
  "$root/deploy/install-deps.sh"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DQUARRY_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target quarry-mirror >/dev/null
tools=$build/chain-tools
"$root/tests/scripts/abi_drift.sh" "$root/contracts-abi" "$tools" 0.8.28 >/dev/null

tmp=$(mktemp -d /tmp/quarry-chain-bench.XXXXXX)
chmod 755 "$tmp"
export QR_BENCH_PGPORT=27320
cleanup() {
  "$root/tests/scripts/pg.sh" stop "$tmp/pg" "$QR_BENCH_PGPORT" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
"$root/tests/scripts/pg.sh" start "$tmp/pg" "$QR_BENCH_PGPORT" >/dev/null
# anvil on 27565 (or one of the nine after it), stopped when this ends
"$root/tests/scripts/with_anvil.sh" "$tools" 1.7.1 27565 "$0" --inner "$build" "$tmp" "$records" "$sizes"
