#!/bin/bash
# Runs a command against a throwaway anvil node (Foundry's local Ethereum).
#
#   with_anvil.sh CACHE_DIR ANVIL_VERSION PORT COMMAND [ARGS...]
#
# PORT is the first choice; when it is taken, the first free one of the
# next nine.  anvil comes from npm (@foundry-rs/anvil-linux-amd64, the
# pinned version) into CACHE_DIR/anvil-VERSION on first use.  The node
# listens on 127.0.0.1 with chain id 31337 and anvil's usual ten funded dev
# accounts; it is stopped when the command ends, however it ends.  The
# command finds the node in QUARRY_TEST_ETH_URL and, when abi_drift.sh has
# compiled the contract into CACHE_DIR/out, its bytecode in
# QUARRY_TEST_SETTLEMENT_BIN.
#
# Exit codes: the command's, or 77 (ctest SKIP) when anvil cannot be had
# here (no npm, no registry, not linux-x64); 1 when the node fails to start.
set -u

die() { echo "with_anvil: $*" >&2; exit 1; }
skip() { echo "with_anvil: SKIP: $*" >&2; exit 77; }

[ $# -ge 4 ] || die "usage: with_anvil.sh CACHE_DIR ANVIL_VERSION PORT COMMAND [ARGS...]"
cache=$1
version=$2
port=$3
shift 3
case $port in *[!0-9]* | '') die "bad port '$port'" ;; esac

[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || skip "the npm anvil build is for linux x64 only"
prefix=$cache/anvil-$version
anvil=$prefix/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
if [ ! -x "$anvil" ]; then
    command -v npm >/dev/null 2>&1 || skip "npm is not installed"
    mkdir -p "$cache"
    rm -rf "$prefix.tmp"
    if ! npm install --prefix "$prefix.tmp" --no-audit --no-fund --loglevel=error \
        "@foundry-rs/anvil-linux-amd64@$version" >"$cache/anvil-install.log" 2>&1; then
        rm -rf "$prefix.tmp"
        skip "npm install of anvil $version failed (no registry?), see $cache/anvil-install.log"
    fi
    rm -rf "$prefix"
    mv "$prefix.tmp" "$prefix"
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pid=
stop() {
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}
trap stop EXIT
trap 'exit 143' TERM INT

# Starts anvil on $port; returns 0 once it listens, 2 when the port was
# taken under it (another run won the race), 1 for any other failure.
start() {
    log=$cache/anvil-$port.log
    "$anvil" --host 127.0.0.1 --port "$port" --chain-id 31337 >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 150); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null
            pid=
            grep -q "Address already in use" "$log" && return 2
            echo "with_anvil: anvil exited at start-up: $(tail -n 5 "$log")" >&2
            return 1
        fi
        # its own word, not a connect: another run's node may answer there
        grep -aq "^Listening on 127.0.0.1:$port" "$log" && kill -0 "$pid" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "with_anvil: anvil did not listen on port $port within 30 s" >&2
    return 1
}

# The plain and the sanitizer build may run their tests at the same time:
# take the first port of the ten from PORT that anvil manages to bind.
first=$port
while :; do
    [ "$port" -lt $((first + 10)) ] || die "ports $first-$((port - 1)) are all taken (stale anvils?)"
    if port_open "$port"; then
        port=$((port + 1))
        continue
    fi
    start
    case $? in
    0) break ;;
    2) port=$((port + 1)) ;;
    *) exit 1 ;;
    esac
done

export QUARRY_TEST_ETH_URL="http://127.0.0.1:$port"
if [ -f "$cache/out/QuarrySettlement.bin" ]; then
    export QUARRY_TEST_SETTLEMENT_BIN="$cache/out/QuarrySettlement.bin"
fi
"$@"
