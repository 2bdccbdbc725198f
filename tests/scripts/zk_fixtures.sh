#!/bin/bash
# Sets up the Groth16 test fixtures with the reference tools: snarkjs and
# circom 2 (compiled to wasm, npm package circom2), both from npm.
#
#   zk_fixtures.sh CIRCUIT_DIR CACHE_DIR [CIRCUIT...]
#
# For each CIRCUIT (default: every CIRCUIT_DIR/*.input.json) it compiles
# CIRCUIT_DIR/CIRCUIT.circom, runs snarkjs's Groth16 setup (phase 2) on a
# phase-1 powers-of-tau file, one contribution and (small circuits) a
# beacon, computes the witness of CIRCUIT.input.json and a snarkjs proof, and
# leaves in CACHE_DIR/CIRCUIT/:
#
#   circuit.r1cs circuit.zkey witness.wtns witness.json
#   proof.json public.json verification_key.json
#
# Phase 1 comes from one of two places:
#  - circuits of domain below 2^GEN_PTAU_MIN_POWER: a real snarkjs ceremony
#    (new, contribute, beacon, prepare phase2), just big enough for the
#    largest of them;
#  - the larger ones, when QR_ZK_MAKE_PTAU names the zk_make_ptau tool
#    (tests/zk/make_ptau.c): a .ptau generated in seconds from KNOWN secrets
#    (test-only: anyone can forge proofs under such a key), exactly the
#    circuit's power, where snarkjs's ceremony would take ~20 minutes at
#    2^16 on two cores.  Without the tool they fall back to the ceremony.
#
# Everything is cached: the tools (pinned versions) in CACHE_DIR/tools-*,
# the ceremony by power, generated .ptau files by power and tool version,
# each circuit by a hash of its sources, its input, the tool versions and
# this script's FORMAT plus the phase-1 source (the zk_make_ptau version
# included), so a rerun with nothing changed takes a second.  Every step
# writes into a temporary folder that is renamed into place at the end, so
# an interrupted run never leaves a half-made fixture behind.
#
# Exit codes: 0 done; 77 (ctest SKIP) only when node or npm is missing or
# the registry cannot be reached; 1 for any other failure (a snarkjs or
# circom error is a real failure).
set -u

SNARKJS_VERSION=0.7.6
CIRCOM2_VERSION=0.2.23
# bump when the layout of a fixture folder changes
FORMAT=1
# circuits of domain 2^GEN_PTAU_MIN_POWER and up use a generated .ptau
GEN_PTAU_MIN_POWER=13

die() { echo "zk_fixtures: $*" >&2; exit 1; }
skip() { echo "zk_fixtures: SKIP: $*" >&2; exit 77; }

[ $# -ge 2 ] || die "usage: zk_fixtures.sh CIRCUIT_DIR CACHE_DIR [CIRCUIT...]"
src=$(cd "$1" && pwd) || die "no circuit folder $1"
mkdir -p "$2" || die "cannot create $2"
cache=$(cd "$2" && pwd)
shift 2
circuits=("$@")
if [ ${#circuits[@]} -eq 0 ]; then
    for f in "$src"/*.input.json; do
        b=$(basename "$f")
        circuits+=("${b%.input.json}")
    done
fi

command -v node >/dev/null 2>&1 || skip "node is not installed"
command -v npm >/dev/null 2>&1 || skip "npm is not installed"

# ---- the tools, once per version pair ----
tools=$cache/tools-$SNARKJS_VERSION-$CIRCOM2_VERSION
snarkjs_cli=$tools/node_modules/snarkjs/cli.js
circom_cli=$tools/node_modules/circom2/cli.js
if [ ! -f "$snarkjs_cli" ] || [ ! -f "$circom_cli" ]; then
    rm -rf "$tools.tmp"
    if ! npm install --prefix "$tools.tmp" --no-audit --no-fund --loglevel=error \
        "snarkjs@$SNARKJS_VERSION" "circom2@$CIRCOM2_VERSION" >"$cache/npm-install.log" 2>&1; then
        rm -rf "$tools.tmp"
        skip "npm install of snarkjs/circom2 failed (no registry?), see $cache/npm-install.log"
    fi
    rm -rf "$tools"
    mv "$tools.tmp" "$tools" || die "cannot move $tools.tmp into place"
fi
ln -sfn "$(basename "$tools")" "$cache/tools"

# ---- the .ptau generator (optional) ----
gen_version=
if [ -n "${QR_ZK_MAKE_PTAU:-}" ]; then
    gen_version=$("$QR_ZK_MAKE_PTAU" --version) && [ -n "$gen_version" ] ||
        die "QR_ZK_MAKE_PTAU=$QR_ZK_MAKE_PTAU --version failed"
fi
# where phase 1 comes from for a circuit of domain 2^$1
ptau_kind() {
    if [ -n "$gen_version" ] && [ "$1" -ge "$GEN_PTAU_MIN_POWER" ]; then
        echo "gen$gen_version"
    else
        echo ceremony
    fi
}
# the stamp of a finished fixture: its source hash $1, plus the phase-1
# source where that is a generated .ptau (so a new zk_make_ptau version
# rebuilds those fixtures, and only those)
stamp_for() {
    local kind
    kind=$(ptau_kind "$2")
    if [ "$kind" = ceremony ]; then echo "$1"; else echo "$1 $kind"; fi
}

snarkjs() { node "$snarkjs_cli" "$@"; }
# runs a step quietly, its output kept in LOG; fails the script with the tail
LOG=/dev/null
step() {
    if ! "$@" >>"$LOG" 2>&1; then
        tail -n 30 "$LOG" >&2
        die "failed: $* (log: $LOG)"
    fi
}

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# ---- compile every circuit (seconds) to learn the ceremony size ----
# power: the smallest p with 2^p >= constraints + public inputs + outputs + 1,
# the domain snarkjs's setup uses (zkey_new.js)
declare -A key power
need=0
for c in "${circuits[@]}"; do
    [ -f "$src/$c.circom" ] || die "no circuit $src/$c.circom"
    [ -f "$src/$c.input.json" ] || die "no input $src/$c.input.json"
    h=$( (cat "$src/$c.circom" "$src/lib.circom" "$src/$c.input.json" 2>/dev/null
          echo "$SNARKJS_VERSION $CIRCOM2_VERSION $FORMAT") | sha256sum | cut -c1-16)
    d=$cache/$c
    p=$(cat "$d/power" 2>/dev/null)
    if [ -z "$p" ] || [ "$(cat "$d/stamp" 2>/dev/null)" != "$(stamp_for "$h" "$p")" ]; then
        rm -rf "$d.tmp"
        mkdir -p "$d.tmp" || die "cannot create $d.tmp"
        LOG=$d.tmp/log
        # circom2 (wasi) only sees the current folder and its parents, so the
        # sources are copied next to the output
        cp "$src/$c.circom" "$src"/lib.circom "$d.tmp"/ || die "cannot copy $c sources"
        cp "$src/$c.input.json" "$d.tmp/input.json"
        (cd "$d.tmp" && step node "$circom_cli" "$c.circom" --r1cs --wasm -o .) || exit 1
        mv "$d.tmp/$c.r1cs" "$d.tmp/circuit.r1cs"
        info=$(cd "$d.tmp" && snarkjs r1cs info circuit.r1cs 2>&1) || die "snarkjs r1cs info: $info"
        n=0
        for field in "# of Constraints" "# of Public Inputs" "# of Outputs"; do
            v=$(printf '%s\n' "$info" | sed -n "s/.*$field: *\([0-9]*\).*/\1/p")
            [ -n "$v" ] || die "cannot read '$field' from snarkjs r1cs info"
            n=$((n + v))
        done
        p=0
        while [ $((1 << p)) -lt $((n + 1)) ]; do p=$((p + 1)); done
        echo "$p" >"$d.tmp/power"
    fi
    power[$c]=$p
    key[$c]=$(stamp_for "$h" "$p")
    # the ceremony serves the circuits without a generated .ptau
    if [ "$(ptau_kind "$p")" = ceremony ] && [ "$p" -gt "$need" ]; then need=$p; fi
    if [ "$p" -ge "$GEN_PTAU_MIN_POWER" ] && [ -z "$gen_version" ]; then
        echo "zk_fixtures: $c (2^$p) without QR_ZK_MAKE_PTAU: snarkjs's ceremony at" \
            "2^$p (~20 minutes at 2^16 on 2 cores)" >&2
    fi
done

# ---- the powers of tau ceremony, once per power ----
ptau=$cache/ptau/pot${need}_final.ptau
if [ "$need" -eq 0 ]; then
    ptau=
elif [ ! -f "$ptau" ]; then
    # a bigger finished ceremony serves as well
    for f in "$cache"/ptau/pot*_final.ptau; do
        [ -f "$f" ] || continue
        q=${f##*/pot}
        q=${q%_final.ptau}
        if [ "$q" -ge "$need" ]; then ptau=$f; break; fi
    done
fi
if [ -n "$ptau" ] && [ ! -f "$ptau" ]; then
    t=$cache/ptau/tmp$need
    rm -rf "$t"
    mkdir -p "$t" || die "cannot create $t"
    LOG=$t/log
    echo "zk_fixtures: powers of tau 2^$need (slow on small machines)" >&2
    step snarkjs powersoftau new bn128 "$need" "$t/pot_0000.ptau"
    step snarkjs powersoftau contribute "$t/pot_0000.ptau" "$t/pot_0001.ptau" --name=quarry-test -e="quarry test entropy"
    step snarkjs powersoftau beacon "$t/pot_0001.ptau" "$t/pot_beacon.ptau" \
        0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 10 -n=beacon
    step snarkjs powersoftau prepare phase2 "$t/pot_beacon.ptau" "$t/final.ptau"
    mv "$t/final.ptau" "$ptau" || die "cannot move the ceremony into place"
    rm -rf "$t"
fi

# ---- the keys, witness and reference proof of each circuit ----
for c in "${circuits[@]}"; do
    h=${key[$c]}
    d=$cache/$c
    [ "$(cat "$d/stamp" 2>/dev/null)" = "$h" ] && continue
    p=${power[$c]}
    kind=$(ptau_kind "$p")
    cptau=$ptau
    if [ "$kind" != ceremony ]; then
        # generated from known secrets, exactly this power (~4 s, 75 MB at 2^16)
        cptau=$cache/ptau/${kind}_pot$p.ptau
        if [ ! -f "$cptau" ]; then
            mkdir -p "$cache/ptau" || die "cannot create $cache/ptau"
            rm -f "$cache/ptau"/gen*_pot"$p".ptau # other tool versions
            "$QR_ZK_MAKE_PTAU" "$p" "$cptau" || die "$QR_ZK_MAKE_PTAU $p $cptau failed"
        fi
    fi
    echo "zk_fixtures: setting up $c (2^$p, phase 1: $kind)" >&2
    LOG=$d.tmp/log
    (
        cd "$d.tmp" || exit 1
        step snarkjs groth16 setup circuit.r1cs "$cptau" c_0000.zkey
        if [ "$kind" = ceremony ]; then
            step snarkjs zkey contribute c_0000.zkey c_0001.zkey --name=quarry-test -e="quarry test $c"
            step snarkjs zkey beacon c_0001.zkey circuit.zkey \
                0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 10 -n=beacon
        else
            # one contribution, so delta is not the generator; the beacon
            # (35 s at 2^16) would add nothing to a key whose phase 1 is known
            step snarkjs zkey contribute c_0000.zkey circuit.zkey --name=quarry-test -e="quarry test $c"
        fi
        step snarkjs zkey export verificationkey circuit.zkey verification_key.json
        step snarkjs wtns calculate "${c}_js/$c.wasm" input.json witness.wtns
        step snarkjs wtns export json witness.wtns witness.json
        step snarkjs groth16 prove circuit.zkey witness.wtns proof.json public.json
        step snarkjs groth16 verify verification_key.json public.json proof.json
        rm -f c_0000.zkey c_0001.zkey
    ) || exit 1
    echo "$h" >"$d.tmp/stamp"
    rm -rf "$d"
    mv "$d.tmp" "$d" || die "cannot move $d.tmp into place"
done
exit 0
