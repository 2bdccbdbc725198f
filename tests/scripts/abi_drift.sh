#!/bin/sh
# Recompiles contracts-abi/QuarrySettlement.sol with solc-js and fails when
# the committed ABI (QuarrySettlement.abi.json) no longer matches it.
#
#   abi_drift.sh CONTRACTS_DIR CACHE_DIR SOLC_VERSION [--update]
#
# solc comes from npm (package "solc", the pinned version) into
# CACHE_DIR/solc-VERSION on first use.  The compiled ABI and bytecode are left
# in CACHE_DIR/out/ for the tests that deploy the contract.  Both ABIs are
# normalised before the comparison (keys sorted, entries ordered by type and
# name), so only a change of the interface counts as drift.  --update writes
# the normalised ABI over the committed one instead of comparing.
#
# Exit codes: 0 match, 1 drift or compile error, 77 (ctest SKIP) when node,
# npm or the registry is not available.
set -eu

die() { echo "abi_drift: $*" >&2; exit 1; }
skip() { echo "abi_drift: SKIP: $*" >&2; exit 77; }

[ $# -ge 3 ] || die "usage: abi_drift.sh CONTRACTS_DIR CACHE_DIR SOLC_VERSION [--update]"
src=$1
cache=$2
version=$3
update=${4:-}
name=QuarrySettlement

command -v node >/dev/null 2>&1 || skip "node is not installed"
prefix=$cache/solc-$version
if [ ! -f "$prefix/node_modules/solc/soljson.js" ]; then
    command -v npm >/dev/null 2>&1 || skip "npm is not installed"
    mkdir -p "$cache"
    # into a scratch folder first, so an interrupted install is never taken
    # for a finished one
    rm -rf "$prefix.tmp"
    if ! npm install --prefix "$prefix.tmp" --no-audit --no-fund --loglevel=error \
        "solc@$version" >"$cache/solc-install.log" 2>&1; then
        rm -rf "$prefix.tmp"
        skip "npm install solc@$version failed (no registry?), see $cache/solc-install.log"
    fi
    rm -rf "$prefix"
    mv "$prefix.tmp" "$prefix"
fi

out=$cache/out
mkdir -p "$out"
NODE_PATH=$prefix/node_modules node - "$src/$name.sol" "$out" "$version" <<'JS'
const fs = require('fs');
const path = require('path');
const solc = require('solc');
const [file, out, want] = process.argv.slice(2);
if (!solc.version().startsWith(want + '+'))
    throw new Error(`solc ${solc.version()} loaded, ${want} wanted`);
const name = path.basename(file, '.sol');
const input = {
    language: 'Solidity',
    sources: { [path.basename(file)]: { content: fs.readFileSync(file, 'utf8') } },
    settings: {
        optimizer: { enabled: true, runs: 200 },
        outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
};
const res = JSON.parse(solc.compile(JSON.stringify(input)));
let failed = false;
for (const e of res.errors || []) {
    process.stderr.write(e.formattedMessage || e.message);
    if (e.severity === 'error') failed = true;
}
if (failed) process.exit(1);
const c = res.contracts[path.basename(file)][name];
fs.writeFileSync(path.join(out, name + '.abi.json'), JSON.stringify(c.abi));
fs.writeFileSync(path.join(out, name + '.bin'), c.evm.bytecode.object + '\n');
JS

# keys sorted at every level, entries by type then name, one space indent:
# a stable text to diff and to commit
normalise() {
    node -e '
const fs = require("fs");
const sortKeys = (v) => Array.isArray(v) ? v.map(sortKeys)
    : v && typeof v === "object"
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])])) : v;
const abi = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
const key = (e) => (e.type || "") + " " + (e.name || "");
abi.sort((a, b) => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
process.stdout.write(JSON.stringify(sortKeys(abi), null, 1) + "\n");
' "$1"
}

normalise "$out/$name.abi.json" >"$out/$name.abi.norm.json"
if [ "$update" = "--update" ]; then
    cp "$out/$name.abi.norm.json" "$src/$name.abi.json"
    echo "abi_drift: wrote $src/$name.abi.json"
    exit 0
fi
[ -f "$src/$name.abi.json" ] || die "$src/$name.abi.json is missing (run with --update)"
normalise "$src/$name.abi.json" >"$out/$name.abi.committed.json"
if ! diff -u "$out/$name.abi.committed.json" "$out/$name.abi.norm.json"; then
    echo "abi_drift: the committed ABI differs from what solc $version makes of $name.sol;" >&2
    echo "abi_drift: if the change is meant, rerun with --update and commit the result" >&2
    exit 1
fi
echo "abi_drift: $name ABI matches solc $version ($(wc -c <"$out/$name.bin") bytes of bytecode hex)"
