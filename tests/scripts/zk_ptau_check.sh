#!/bin/bash
# Checks zk_make_ptau (tests/zk/make_ptau.c) against snarkjs at a small
# power:
#
#   zk_ptau_check.sh MAKE_PTAU SNARKJS_CLI WORK_DIR [POWER]
#
#  - `snarkjs powersoftau verify` accepts its file (the contribution's
#    proofs of knowledge and hashes, every section's powers, and the
#    Lagrange sections 12-15 against sections 2-5);
#  - its phase-1 half (--phase1) through `snarkjs powersoftau prepare
#    phase2` is byte for byte its own prepared file;
#  - the output is deterministic, and usage errors exit 2;
#  - swapping two points of section 12 (the layer of 2^(POWER+1) points that
#    groth16 setup reads for H) or of section 2 fails snarkjs's verify.
# About 15 s at POWER 8 on two cores.  Exit 0 pass, 1 fail, 77 (ctest SKIP)
# without node or the snarkjs the fixture setup installs.
set -u

die() { echo "zk_ptau_check: FAIL: $*" >&2; exit 1; }

[ $# -ge 3 ] || { echo "usage: zk_ptau_check.sh MAKE_PTAU SNARKJS_CLI WORK_DIR [POWER]" >&2; exit 2; }
tool=$1
cli=$2
power=${4:-8}
command -v node >/dev/null 2>&1 || { echo "zk_ptau_check: SKIP: no node" >&2; exit 77; }
[ -f "$cli" ] || { echo "zk_ptau_check: SKIP: no snarkjs at $cli" >&2; exit 77; }
[ -x "$tool" ] || die "no tool $tool"
mkdir -p "$3" || die "cannot create $3"
work=$(mktemp -d "$3/ptau-check-XXXXXX") || die "mktemp in $3"
log=$work/log
snarkjs() { node "$cli" "$@" >>"$log" 2>&1; }

# data offset and size of section $2 of binfile $1 ("OFFSET SIZE")
section() {
    local off=12 type lo hi n
    n=$(od -An -t u4 -j 8 -N 4 "$1" | tr -d ' ')
    for ((i = 0; i < n; i++)); do
        read -r type lo hi <<<"$(od -An -t u4 -j "$off" -N 12 "$1")"
        if [ "$type" = "$2" ]; then
            echo "$((off + 12)) $((lo + hi * 4294967296))"
            return 0
        fi
        off=$((off + 12 + lo + hi * 4294967296))
    done
    return 1
}

# swaps the $3-byte blocks at offsets $2 and $4 of file $1
swap() {
    dd if="$1" of="$work/blk_a" bs=1 skip="$2" count="$3" status=none &&
        dd if="$1" of="$work/blk_b" bs=1 skip="$4" count="$3" status=none &&
        dd if="$work/blk_b" of="$1" bs=1 seek="$2" conv=notrunc status=none &&
        dd if="$work/blk_a" of="$1" bs=1 seek="$4" conv=notrunc status=none
}

# usage
v=$("$tool" --version) || die "--version failed"
[[ "$v" =~ ^[0-9]+$ ]] || die "--version printed '$v'"
for args in "" "8" "0 $work/x.ptau" "28 $work/x.ptau" "8x $work/x.ptau" "--phase1 8" "8 $work/x.ptau extra"; do
    # shellcheck disable=SC2086
    "$tool" $args >>"$log" 2>&1
    [ $? -eq 2 ] || die "zk_make_ptau $args: want exit 2"
done
[ ! -e "$work/x.ptau" ] || die "a refused call wrote a file"
"$tool" 8 /nonexistent-dir/x.ptau >>"$log" 2>&1
[ $? -eq 1 ] || die "an unwritable path: want exit 1"

t0=$(date +%s)
"$tool" "$power" "$work/ours.ptau" || die "zk_make_ptau $power failed"
"$tool" "$power" "$work/again.ptau" || die "zk_make_ptau $power failed"
cmp -s "$work/ours.ptau" "$work/again.ptau" || die "two runs differ"

snarkjs powersoftau verify "$work/ours.ptau" || { tail -20 "$log" >&2; die "snarkjs powersoftau verify refused our file"; }
grep -q "Powers of Tau Ok" "$log" || die "no 'Powers of Tau Ok' from snarkjs"

"$tool" --phase1 "$power" "$work/phase1.ptau" || die "zk_make_ptau --phase1 failed"
snarkjs powersoftau prepare phase2 "$work/phase1.ptau" "$work/prepared.ptau" ||
    { tail -20 "$log" >&2; die "snarkjs prepare phase2 failed"; }
cmp "$work/ours.ptau" "$work/prepared.ptau" || die "snarkjs's prepare phase2 of our phase 1 differs from ours"

# tampering: two points of section 12's last layer (2^(power+1) points,
# after 2^(power+1) - 1 of the smaller layers), then two of section 2
s=$(section "$work/ours.ptau" 12) || die "no section 12"
read -r off12 size12 <<<"$s"
[ "$size12" -eq $(( ((4 << power) - 1) * 64 )) ] || die "section 12 is $size12 bytes"
cp "$work/ours.ptau" "$work/bad12.ptau"
last=$((off12 + ((2 << power) - 1) * 64))
swap "$work/bad12.ptau" $((last + 64 * 3)) 64 $((last + 64 * 5)) || die "dd"
if snarkjs powersoftau verify "$work/bad12.ptau"; then die "verify passed swapped Lagrange points"; fi
s=$(section "$work/ours.ptau" 2) || die "no section 2"
read -r off2 _ <<<"$s"
cp "$work/ours.ptau" "$work/bad2.ptau"
swap "$work/bad2.ptau" $((off2 + 64 * 2)) 64 $((off2 + 64 * 3)) || die "dd"
if snarkjs powersoftau verify "$work/bad2.ptau"; then die "verify passed swapped powers of tau"; fi

echo "zk_ptau_check: 2^$power: snarkjs verify and prepare phase2 agree ($(($(date +%s) - t0)) s)"
rm -rf "$work"
exit 0
