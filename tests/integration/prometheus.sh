#!/usr/bin/env bash
# A real Prometheus (Debian's package) scrapes a running broker and worker:
# both targets must be up and their quarry_* series queryable.
#   prometheus.sh BROKER_BIN WORKER_BIN      (QUARRY_TEST_PG: the suite's cluster)
# Exits 77 (skipped) when Prometheus is missing and cannot be installed.
set -euo pipefail
broker_bin=$1 worker_bin=$2
: "${QUARRY_TEST_PG:?QUARRY_TEST_PG is not set (run through ctest)}"
cport=27180 wport=27181 bport=27182 wmport=27183 pport=27189

if ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing Debian's prometheus package"
    # do not let the package start its own service
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends prometheus) >/dev/null 2>&1 || true
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
  command -v prometheus >/dev/null 2>&1 || { echo "prometheus not available: skipped"; exit 77; }
fi

tmp=$(mktemp -d /tmp/quarry-prom.XXXXXX)
pids=()
db=qr_it_prom
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$QUARRY_TEST_PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
psql "$QUARRY_TEST_PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
psql "$QUARRY_TEST_PG" -qc "CREATE DATABASE $db" >/dev/null
conn=$(echo "$QUARRY_TEST_PG" | sed "s/dbname=[^ ]*/dbname=$db/")

"$broker_bin" --db="$conn" --client-endpoint="tcp://127.0.0.1:$cport" \
  --worker-endpoint="tcp://127.0.0.1:$wport" --metrics-addr="127.0.0.1:$bport" \
  --heartbeat-ms=200 --insecure 2>"$tmp/broker.log" &
pids+=($!)
"$worker_bin" --broker="tcp://127.0.0.1:$wport" --name=prom-w --operator=op --slots=1 \
  --metrics-addr="127.0.0.1:$wmport" 2>"$tmp/worker.log" &
pids+=($!)

cat > "$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: quarry-broker
    static_configs: [{targets: ['127.0.0.1:$bport']}]
  - job_name: quarry-worker
    static_configs: [{targets: ['127.0.0.1:$wmport']}]
YML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
  --web.listen-address="127.0.0.1:$pport" 2>"$tmp/prometheus.log" &
pids+=($!)

# value of the first sample of a PromQL query, or empty
query() {
  curl -s --max-time 2 "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1" |
    sed -n 's/.*"value":\[[0-9.]*,"\([^"]*\)"\].*/\1/p'
}
want() {
  local q=$1 v=$2
  for _ in $(seq 1 60); do
    [ "$(query "$q")" = "$v" ] && { echo "ok: $q = $v"; return 0; }
    sleep 0.5
  done
  echo "FAILED: $q did not become $v (last: '$(query "$q")')" >&2
  tail -n 20 "$tmp/prometheus.log" >&2
  return 1
}
want 'up{job="quarry-broker"}' 1
want 'up{job="quarry-worker"}' 1
want 'quarry_up' 1
want 'quarry_workers_connected' 1
want 'quarry_worker_registered' 1
want 'sum(quarry_db_commit_seconds_count) > bool 0' 1
echo "prometheus scraped broker and worker"
