#!/usr/bin/env bash
# Builds Quarry's libFuzzer targets (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan in a temporary folder, and runs each one over its committed corpus
# (tests/fuzz/corpus/<target>/) plus QUARRY_FUZZ_SECONDS of fresh fuzzing.
# Fails on any crash, leak, sanitizer report, timeout or broken invariant;
# every failing input is copied next to this script as
# crash-<target>-<artifact> (git-ignored) and its reproduction command printed.
#
#   tests/fuzz/run.sh                 every target, 10 s each
#   tests/fuzz/run.sh wire gemm       only these targets
#   tests/fuzz/run.sh --regen-corpus  rewrite the seed files of gen_corpus.c
#                                     into tests/fuzz/corpus/ and stop
# Environment:
#   QUARRY_FUZZ_SECONDS    fresh fuzzing per target (default 10; 0 = corpus replay only)
#   QUARRY_FUZZ_BUILD      build folder to use and keep (default: a temporary one, removed)
#   QUARRY_FUZZ_ARTIFACTS  where failing inputs are copied (default: tests/fuzz/)
#   QUARRY_FUZZ_NEW        folder that receives the new interesting inputs found
#                          (default: none; see README.md on growing the corpus)
#   QUARRY_FUZZ_ARGS       extra libFuzzer flags, e.g. "-jobs=4 -workers=4"
#   CLANG                  compiler (default clang, else clang-14)
# word splitting of pkg-config output is intended; traps call the cleanups
# shellcheck disable=SC2207,SC2046,SC2054,SC2317
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${QUARRY_FUZZ_SECONDS:-10}
artifacts=${QUARRY_FUZZ_ARTIFACTS:-$here}
regen=0
if [ "${1:-}" = --regen-corpus ]; then regen=1; shift; fi
case "$secs" in '' | *[!0-9]*) echo "QUARRY_FUZZ_SECONDS must be a whole number" >&2; exit 2 ;; esac

log() { printf 'fuzz: %s\n' "$*"; }

# ---- toolchain -------------------------------------------------------------
pick_clang() {
  if [ -n "${CLANG:-}" ]; then echo "$CLANG"; return; fi
  for c in clang clang-14; do command -v "$c" >/dev/null 2>&1 && { echo "$c"; return; }; done
  echo clang
}

probe_dir=$(mktemp -d)
cleanup_probe() { rm -rf "$probe_dir"; }
trap cleanup_probe EXIT

toolchain_ok() {
  local cc; cc=$(pick_clang)
  command -v "$cc" >/dev/null 2>&1 || return 1
  command -v protoc-c >/dev/null 2>&1 || return 1
  command -v pkg-config >/dev/null 2>&1 || return 1
  pkg-config --exists libzmq libprotobuf-c openblas jansson 2>/dev/null || return 1
  printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n){(void)d;(void)n;return 0;}\n' \
    >"$probe_dir/probe.c"
  "$cc" -fsanitize=fuzzer,address,undefined "$probe_dir/probe.c" -o "$probe_dir/probe" >/dev/null 2>&1 || return 1
}

if ! toolchain_ok; then
  pkgs=(clang libclang-rt-14-dev protobuf-c-compiler libprotobuf-c-dev libzmq3-dev libopenblas-dev libjansson-dev pkg-config)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing the fuzzing toolchain: ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
  if ! toolchain_ok; then
    echo "fuzz: clang with libFuzzer, protoc-c, pkg-config and libzmq/protobuf-c/openblas/jansson headers are needed" >&2
    echo "fuzz: on Debian 12: apt-get install ${pkgs[*]}" >&2
    exit 1
  fi
fi
CC=$(pick_clang)

# ---- build -----------------------------------------------------------------
if [ -n "${QUARRY_FUZZ_BUILD:-}" ]; then
  build=$QUARRY_FUZZ_BUILD
  mkdir -p "$build"
  build=$(cd "$build" && pwd)
  keep=1
else
  build=$(mktemp -d "${TMPDIR:-/tmp}/quarry-fuzz.XXXXXX")
  keep=0
fi
cleanup() {
  cleanup_probe
  if [ "$keep" = 0 ]; then rm -rf "$build"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$build/gen" "$build/obj"
protoc-c --c_out="$build/gen" -I "$root/schemas" "$root/schemas/quarry.proto"
# every message type, for the decoders that try them all
sed -n 's/^extern const ProtobufCMessageDescriptor \(quarry__[a-z0-9_]*__descriptor\);$/X(\1)/p' \
  "$build/gen/quarry.pb-c.h" >"$build/gen/descriptors.inc"
[ -s "$build/gen/descriptors.inc" ] || { echo "fuzz: no message descriptors found in quarry.pb-c.h" >&2; exit 1; }

san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
cflags=(-std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -Wall -Wno-unused-parameter
        -I"$root/common" -I"$root/sdk" -I"$root/broker" -I"$build/gen" $(pkg-config --cflags libzmq libprotobuf-c openblas jansson))
libs=($(pkg-config --libs libzmq libprotobuf-c openblas jansson libsodium) -lpthread -lm)

# The project's own sources, instrumented for coverage but without a main.
srcs=("$build/gen/quarry.pb-c.c" "$root/sdk/client.c" "$root/broker/store.c")
for f in err.c util.c config.c wire.c gemm.c jobstate.c keys.c model.c safetensors.c artifact.c; do srcs+=("$root/common/$f"); done
log "building with $CC in $build"
objs=()
for s in "${srcs[@]}"; do
  o="$build/obj/$(basename "$s" .c).o"
  "$CC" "${cflags[@]}" "${san[@]}" -fsanitize=fuzzer-no-link -c "$s" -o "$o" &
  objs+=("$o")
done
wait_all() { local rc=0; for j in $(jobs -p); do wait "$j" || rc=1; done; return $rc; }
wait_all || { echo "fuzz: compiling the project sources failed" >&2; exit 1; }
rm -f "$build/libqrfuzz.a"
ar rcs "$build/libqrfuzz.a" "${objs[@]}"

if [ "$regen" = 1 ]; then
  "$CC" "${cflags[@]}" "$here/gen_corpus.c" "$build/gen/quarry.pb-c.c" \
    $(pkg-config --libs libprotobuf-c) -lm -o "$build/gen_corpus"
  "$build/gen_corpus" "$here/corpus"
  log "seed corpus written to $here/corpus ($(du -sh "$here/corpus" | cut -f1))"
  exit 0
fi

all=()
for f in "$here"/fuzz_*.c; do all+=("$(basename "$f" .c | sed 's/^fuzz_//')"); done
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [ -f "$here/fuzz_$t.c" ] || { echo "fuzz: no target '$t' (have: ${all[*]})" >&2; exit 2; }
  "$CC" "${cflags[@]}" -I"$build/gen" "${san[@]}" -fsanitize=fuzzer "$here/fuzz_$t.c" \
    "$build/libqrfuzz.a" "${libs[@]}" -o "$build/fuzz_$t" &
done
wait_all || { echo "fuzz: compiling the fuzz targets failed" >&2; exit 1; }

# ---- run -------------------------------------------------------------------
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1
export OPENBLAS_NUM_THREADS=1
export TMPDIR="$build/tmp" # fuzz_config's file, removed with the build
mkdir -p "$TMPDIR"
status=0
for t in "${targets[@]}"; do
  seeds="$here/corpus/$t"
  work="$build/work/$t"
  art="$build/artifacts/$t"
  rm -rf "$work" "$art"
  mkdir -p "$seeds" "$work" "$art"
  flags=(-timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 -artifact_prefix="$art/")
  [ -f "$here/$t.dict" ] && flags+=(-dict="$here/$t.dict")
  if [ "$secs" = 0 ]; then flags+=(-runs=0); else flags+=(-max_total_time="$secs"); fi
  # shellcheck disable=SC2206
  extra=(${QUARRY_FUZZ_ARGS:-})
  nseeds=$(find "$seeds" -type f | wc -l)
  logf="$build/$t.log"
  rc=0
  # the first folder receives new inputs; the committed corpus is only read
  timeout --kill-after=10 $((secs + 120)) \
    "$build/fuzz_$t" "${flags[@]}" "${extra[@]}" "$work" "$seeds" >"$logf" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$logf" | tail -1 || true)
  bad=$(find "$art" -type f | sort)
  if [ "$rc" != 0 ] || [ -n "$bad" ]; then
    status=1
    echo "fuzz: FAIL $t (exit $rc, $nseeds seeds, ${secs}s); last lines of its log:"
    grep -E '^fuzz_|ERROR|SUMMARY|invariant failed|runtime error|Test unit written|ALARM|timeout|leak' "$logf" | head -20 | sed 's/^/  | /' || true
    tail -40 "$logf" | sed 's/^/  > /'
    mkdir -p "$artifacts"
    for a in $bad; do
      dst="$artifacts/crash-$t-$(basename "$a")"
      cp "$a" "$dst"
      echo "fuzz: failing input for $t saved as $dst ($(wc -c <"$a") bytes); reproduce with:"
      echo "fuzz:   QUARRY_FUZZ_BUILD=/tmp/qf $0 $t; /tmp/qf/fuzz_$t $dst"
      od -An -tx1 -v "$a" | head -8 | sed 's/^/  hex:/'
    done
    [ -n "$bad" ] || echo "fuzz: $t failed without writing an input (see the log above)"
  else
    echo "fuzz: ok   $t ($nseeds seeds, ${secs}s, ${execs:-?} runs, $cov)"
  fi
  if [ -n "${QUARRY_FUZZ_NEW:-}" ]; then
    mkdir -p "$QUARRY_FUZZ_NEW/$t"
    find "$work" -type f -exec cp {} "$QUARRY_FUZZ_NEW/$t/" \;
  fi
done
[ "$keep" = 1 ] && log "build kept in $build"
exit $status
