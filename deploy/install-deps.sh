#!/usr/bin/env bash
# Installs what Quarry needs to build, run and test on Debian 12 (as root).
# Skips apt entirely when everything is already there, so CI reruns are fast.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git
      libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libpq-dev libopenblas-dev libcmocka-dev
      libjansson-dev postgresql postgresql-client python3 python3-numpy
      libsodium-dev libsecp256k1-dev libcurl4-openssl-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (or install them) first" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian postgresql package may start a system cluster; Quarry runs its own.
