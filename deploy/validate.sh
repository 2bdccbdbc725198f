#!/usr/bin/env bash
# Checks every deployment artefact under deploy/ offline, on this machine:
#   - systemd units: `systemd-analyze verify` on a temporary copy whose
#     ExecStart points at the built binaries (a stub where none is given),
#     `systemd-analyze
#     security --offline` exposure <= 2.5, the sysusers file, and static
#     checks (user, env files, restart, hardening, stop timeout vs drain);
#   - env files, docker-compose.yml, the Dockerfile, Prometheus and Grafana
#     files, Kubernetes manifests: deploy/validate_manifests.py (YAML
#     structure, references, labels/selectors, ports, and every QUARRY_*
#     variable checked against the binaries' --help and their value parser);
#   - `docker compose config` / `docker-compose config` and
#     `kubectl kustomize` when those tools are present (skipped otherwise).
# One line per file and check: ok / FAIL / skip.  Exit status 1 on any FAIL.
#
#   deploy/validate.sh
# Environment (set by the deploy_validate ctest test, tests/deploy.cmake):
#   QUARRY_BROKER_BIN, QUARRY_WORKER_BIN, QUARRY_CLI_BIN, QUARRY_MIRROR_BIN
#   built binaries.  Without them the checks that need a binary are skipped
#   with a note.
# As root it installs what is missing (systemd, python3-yaml) with apt.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/quarry-deploy-validate.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { printf 'ok   %s: %s\n' "$1" "$2"; }
bad() { printf 'FAIL %s: %s\n' "$1" "$2"; fails=$((fails + 1)); }
skip() { printf 'skip %s: %s\n' "$1" "$2"; }

# ---- tools
pick_python() {
  PY=""
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import yaml' 2>/dev/null; then
      PY=$py
      return
    fi
  done
}
pick_python
missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
[ -n "$PY" ] || missing+=(python3 python3-yaml)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "validate: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    pick_python
  else
    echo "validate: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
  fi
fi

# ---- built binaries (optional)
for v in QUARRY_BROKER_BIN QUARRY_WORKER_BIN QUARRY_CLI_BIN QUARRY_MIRROR_BIN; do
  b=${!v:-}
  if [ -n "$b" ] && [ ! -x "$b" ]; then
    bad "$v" "'$b' is not an executable"
    unset "$v"
  fi
done
have_bins=1
[ -n "${QUARRY_BROKER_BIN:-}" ] && [ -n "${QUARRY_WORKER_BIN:-}" ] || have_bins=0
if [ $have_bins = 0 ]; then
  echo "note: QUARRY_BROKER_BIN / QUARRY_WORKER_BIN not given: ExecStart points at stubs and QUARRY_* names are not cross-checked against --help"
fi

# ---- systemd
sd="$root/deploy/systemd"
if command -v systemd-analyze >/dev/null 2>&1; then
  mkdir -p "$tmp/units" "$tmp/bin"
  for prog in quarry-broker quarry-worker quarry-mirror; do
    printf '#!/bin/sh\nexit 0\n' >"$tmp/bin/$prog"
    chmod 0755 "$tmp/bin/$prog"
  done
  exe_broker=${QUARRY_BROKER_BIN:-$tmp/bin/quarry-broker}
  exe_worker=${QUARRY_WORKER_BIN:-$tmp/bin/quarry-worker}
  exe_mirror=${QUARRY_MIRROR_BIN:-$tmp/bin/quarry-mirror}
  for unit in "$sd"/*.service; do
    name=$(basename "$unit")
    # a template is verified as one instance of it
    # each unit alone in its folder, so one unit's error is not blamed on
    # another that names it in After=
    mkdir -p "$tmp/units/$name"
    copy=$tmp/units/$name/${name/@.service/@check.service}
    sed -e "s#^ExecStart=/usr/local/bin/quarry-broker#ExecStart=$exe_broker#" \
        -e "s#^ExecStart=/usr/local/bin/quarry-worker#ExecStart=$exe_worker#" \
        -e "s#^ExecStart=/usr/local/bin/quarry-mirror#ExecStart=$exe_mirror#" "$unit" >"$copy"
    if ! grep -q '^ExecStart=/usr/local/bin/quarry-\(broker\|worker\|mirror\)$' "$unit"; then
      bad "deploy/systemd/$name" "ExecStart is not /usr/local/bin/quarry-{broker,worker,mirror} (the documented install path)"
      continue
    fi
    target=$(sed -n 's/^ExecStart=//p' "$copy")
    case $target in "$tmp"/*) how="stub ExecStart" ;; *) how="ExecStart -> $target" ;; esac
    out=$(cd "$(dirname "$copy")" && systemd-analyze verify --man=no "./$(basename "$copy")" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
      bad "deploy/systemd/$name" "systemd-analyze verify: $(echo "$out" | tr '\n' ' ')"
      continue
    fi
    sec=$(cd "$(dirname "$copy")" && systemd-analyze security --offline=yes --threshold=25 "./$(basename "$copy")" 2>&1)
    rc=$?
    level=$(echo "$sec" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    if [ $rc -ne 0 ]; then
      bad "deploy/systemd/$name" "systemd-analyze security: exposure ${level:-?} above 2.5"
      continue
    fi
    ok "deploy/systemd/$name" "systemd-analyze verify clean ($how), security exposure $level"
  done
  if command -v systemd-sysusers >/dev/null 2>&1; then
    mkdir -p "$tmp/sysroot"
    if out=$(systemd-sysusers --dry-run --root="$tmp/sysroot" "$sd/quarry.sysusers.conf" 2>&1) &&
       echo "$out" | grep -q "Creating user 'quarry'"; then
      ok "deploy/systemd/quarry.sysusers.conf" "systemd-sysusers --dry-run creates user quarry"
    else
      bad "deploy/systemd/quarry.sysusers.conf" "systemd-sysusers: $(echo "$out" | tr '\n' ' ')"
    fi
  else
    skip "deploy/systemd/quarry.sysusers.conf" "systemd-sysusers not installed"
  fi
else
  bad "deploy/systemd" "systemd-analyze not available (apt-get install systemd)"
fi

# ---- YAML, env files, Dockerfile (Python)
if [ -n "$PY" ]; then
  export QUARRY_BROKER_BIN QUARRY_WORKER_BIN QUARRY_CLI_BIN QUARRY_MIRROR_BIN 2>/dev/null
  "$PY" "$root/deploy/validate_manifests.py" "$root" systemd env dockerfile compose k8s ||
    fails=$((fails + 1))
else
  bad "deploy/*.yml" "no python3 with PyYAML (apt-get install python3-yaml): compose and k8s not checked"
fi

# ---- the real tools, where present (no engine or cluster needed)
compose="$root/deploy/docker/docker-compose.yml"
if docker compose version >/dev/null 2>&1; then
  if out=$(docker compose -f "$compose" config -q 2>&1); then
    ok "deploy/docker/docker-compose.yml" "docker compose config"
  else
    bad "deploy/docker/docker-compose.yml" "docker compose config: $out"
  fi
elif command -v docker-compose >/dev/null 2>&1; then
  if out=$(docker-compose -f "$compose" config -q 2>&1); then
    ok "deploy/docker/docker-compose.yml" "docker-compose config"
  else
    bad "deploy/docker/docker-compose.yml" "docker-compose config: $out"
  fi
else
  skip "deploy/docker/docker-compose.yml" "no docker compose plugin / docker-compose: checked by Python only"
fi
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  if out=$(kubectl kustomize "$root/deploy/k8s" 2>&1 >/dev/null); then
    ok "deploy/k8s/kustomization.yaml" "kubectl kustomize builds every manifest"
  else
    bad "deploy/k8s/kustomization.yaml" "kubectl kustomize: $out"
  fi
else
  skip "deploy/k8s" "no kubectl: kustomize build not checked (Python schema checks above)"
fi

if [ $fails -ne 0 ]; then
  echo "deploy/validate.sh: $fails check(s) FAILED"
  exit 1
fi
echo "deploy/validate.sh: all deployment checks passed"
