#!/usr/bin/env python3
"""Offline checks of Quarry's deployment artefacts (called by deploy/validate.sh).

    validate_manifests.py ROOT systemd|env|compose|k8s [--tmp DIR]

Prints one line per file: "ok   FILE: what was checked", "FAIL FILE: why" or
"skip FILE: why"; exits 1 when any check failed.  The settings of the real
binaries are read from their --help when QUARRY_BROKER_BIN / QUARRY_WORKER_BIN
(/ QUARRY_MIRROR_BIN) name executables; otherwise name checks are skipped with
a note.  Needs PyYAML (python3-yaml) for compose and k8s.
"""
import json
import os
import re
import shutil
import subprocess
import sys

FAILED = []


def ok(path, what):
    print(f"ok   {path}: {what}")


def fail(path, why):
    FAILED.append(path)
    print(f"FAIL {path}: {why}")


def skip(path, why):
    print(f"skip {path}: {why}")


# ---------------------------------------------------------------- settings
class Program:
    """A daemon's settings as its --help prints them (None when not built)."""

    def __init__(self, name, prefix, env_bin):
        self.name, self.prefix = name, prefix
        self.bin = os.environ.get(env_bin) or ""
        self.env_bin = env_bin
        self.vars = None  # {VAR: default}
        if self.bin and os.access(self.bin, os.X_OK):
            out = subprocess.run([self.bin, "--help"], capture_output=True, text=True,
                                 env={"PATH": "/usr/bin:/bin"}, timeout=20)
            found = re.findall(r"--[a-z0-9-]+ (?:\S+ )?\s*(%s_[A-Z0-9_]+)\s+\[([^\]]*)\]" % prefix,
                               out.stdout)
            if out.returncode == 0 and found:
                self.vars = dict(found)

    def note(self):
        return f"{self.env_bin} not set to a built {self.name}: names not cross-checked"

    def check_names(self, names):
        """-> list of unknown names, or None when the binary is not available."""
        if self.vars is None:
            return None
        return sorted(n for n in names if n not in self.vars)

    def check_values(self, env):
        """Runs `BIN --help` with only these variables: the parser rejects bad
        values (exit 2).  -> error text, '' when fine, None when no binary."""
        if self.vars is None:
            return None
        e = {"PATH": "/usr/bin:/bin"}
        e.update({k: str(v) for k, v in env.items()})
        r = subprocess.run([self.bin, "--help"], capture_output=True, text=True, env=e, timeout=20)
        return "" if r.returncode == 0 else (r.stderr.strip() or f"exit {r.returncode}")


BROKER = Program("quarry-broker", "QUARRY_BROKER", "QUARRY_BROKER_BIN")
WORKER = Program("quarry-worker", "QUARRY_WORKER", "QUARRY_WORKER_BIN")
MIRROR = Program("quarry-mirror", "QUARRY_MIRROR", "QUARRY_MIRROR_BIN")
PROGRAMS = {"quarry-broker": BROKER, "quarry-worker": WORKER, "quarry-mirror": MIRROR}


def program_for_vars(names):
    for p in (BROKER, WORKER, MIRROR):
        if any(n.startswith(p.prefix + "_") for n in names):
            return p
    return None


def check_settings(path, prog, env, what):
    """Names and values of QUARRY_* variables against the program; -> ok?"""
    names = [n for n in env if n.startswith("QUARRY_")]
    bad_prefix = [n for n in names if not n.startswith(prog.prefix + "_")]
    if bad_prefix:
        fail(path, f"{what}: variables for another program: {', '.join(bad_prefix)}")
        return False
    unknown = prog.check_names(names)
    if unknown is None:
        return True
    if unknown:
        fail(path, f"{what}: not settings of {prog.name} (--help): {', '.join(unknown)}")
        return False
    err = prog.check_values({n: env[n] for n in names})
    if err:
        fail(path, f"{what}: {prog.name} refuses these values: {err}")
        return False
    return True


def drain_ms(env=None):
    v = (env or {}).get("QUARRY_WORKER_DRAIN_MS")
    if v is None and WORKER.vars:
        v = WORKER.vars.get("QUARRY_WORKER_DRAIN_MS")
    return int(v or 30000)


def seconds(text):
    """systemd / compose durations: 45, 45s, 1m30s, 1min."""
    text = str(text).strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    total = 0
    for num, unit in re.findall(r"(\d+)\s*(ms|s|sec|m|min|h)?", text):
        total += int(num) * {"ms": 0.001, "s": 1, "sec": 1, "": 1, "m": 60, "min": 60, "h": 3600}[unit]
    return total


def rel(root, p):
    return os.path.relpath(p, root)


# ---------------------------------------------------------------- systemd
def parse_unit(path):
    sections, cur = {}, None
    for line in open(path):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            cur = sections.setdefault(line.strip("[]"), [])
            continue
        k, _, v = line.partition("=")
        cur.append((k.strip(), v.strip()))
    return sections


def parse_env_file(path):
    env = {}
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        k, sep, v = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            raise ValueError(f"bad line: {line!r}")
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
            v = v[1:-1]
        env[k] = v
    return env


def check_systemd(root):
    d = os.path.join(root, "deploy", "systemd")
    units = sorted(f for f in os.listdir(d) if f.endswith(".service"))
    for u in ("quarry-broker.service", "quarry-worker.service", "quarry-worker@.service",
              "quarry-mirror.service"):
        if u not in units:
            fail(f"deploy/systemd/{u}", "missing")
    for u in units:
        path = os.path.join(d, u)
        p = rel(root, path)
        s = parse_unit(path)
        svc = s.get("Service", [])
        kv = {}
        for k, v in svc:
            kv.setdefault(k, []).append(v)
        one = lambda k: (kv.get(k) or [None])[-1]
        problems = []
        exe = (one("ExecStart") or "").split()
        prog = PROGRAMS.get(os.path.basename(exe[0])) if exe else None
        if not prog:
            problems.append(f"ExecStart {exe[:1]} is not a Quarry daemon")
        want = {"User": "quarry", "Group": "quarry", "Restart": "on-failure", "NoNewPrivileges": "yes",
                "ProtectSystem": "strict", "PrivateTmp": "yes", "ProtectHome": "yes",
                "KillSignal": "SIGTERM"}
        for k, v in want.items():
            if one(k) != v:
                problems.append(f"{k}={one(k)} (want {v})")
        envfiles = kv.get("EnvironmentFile", [])
        if not envfiles or not all(re.fullmatch(r"-?/etc/quarry/[A-Za-z0-9@%_.-]+\.env", f) for f in envfiles):
            problems.append(f"EnvironmentFile must be /etc/quarry/*.env, got {envfiles}")
        if "Install" not in s:
            problems.append("no [Install] section")
        env = {}
        for e in kv.get("Environment", []):
            k, _, v = e.partition("=")
            env[k] = v.replace("%H", "host").replace("%i", "inst").replace("%d", "/run/credentials/x")
        stop = seconds(one("TimeoutStopSec") or 90)
        if prog is WORKER and stop <= drain_ms() / 1000 + 2:
            problems.append(f"TimeoutStopSec={stop}s does not cover the {drain_ms()} ms drain + 2 s")
        if prog is MIRROR and any("KEY" in k and "FILE" not in k for k in env):
            problems.append("a key in Environment=: pass it with LoadCredential=")
        if problems:
            fail(p, "; ".join(problems))
            continue
        if prog and env and not check_settings(p, prog, env, "Environment="):
            continue
        note = "" if prog is None or prog.vars is not None else f" ({prog.note()})"
        ok(p, f"user quarry, /etc/quarry env file, Restart=on-failure, hardening, "
              f"SIGTERM with {stop}s to stop{note}")


def check_env_files(root):
    d = os.path.join(root, "deploy", "systemd")
    for f in sorted(os.listdir(d)):
        if not f.endswith(".env.example"):
            continue
        path = os.path.join(d, f)
        p = rel(root, path)
        try:
            env = parse_env_file(path)
        except ValueError as e:
            fail(p, str(e))
            continue
        prog = program_for_vars(env)
        if prog is None:
            fail(p, "no QUARRY_BROKER_/QUARRY_WORKER_/QUARRY_MIRROR_ variable")
            continue
        if prog is WORKER:
            unit = parse_unit(os.path.join(d, "quarry-worker.service"))
            stop = seconds(dict(unit["Service"]).get("TimeoutStopSec", 90))
            if stop <= drain_ms(env) / 1000 + 2:
                fail(p, f"QUARRY_WORKER_DRAIN_MS={drain_ms(env)} needs TimeoutStopSec above {stop}s")
                continue
        if not check_settings(p, prog, env, "variables"):
            continue
        if prog.vars is None:
            skip(p, f"{len(env)} variables parsed; {prog.note()}"
                    + (" (quarry-mirror is not built yet)" if prog is MIRROR else ""))
        else:
            ok(p, f"{len(env)} variables, all settings of {prog.name}, values accepted by it")


# ---------------------------------------------------------------- compose
def load_yaml_all(path):
    import yaml
    with open(path) as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def interpolate(v):
    """Compose ${VAR:-default} / ${VAR-default} / ${VAR} with an empty environment."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", str(v))


def env_dict(env):
    if env is None:
        return {}
    if isinstance(env, list):
        return dict((e.split("=", 1) + [""])[:2] for e in env)
    return {k: "" if v is None else interpolate(v) for k, v in env.items()}


def endpoint_port(ep):
    m = re.fullmatch(r"tcp://[^:/]+:(\d+)", str(ep))
    return int(m.group(1)) if m else None


def endpoint_host(ep):
    m = re.fullmatch(r"tcp://([^:/]+):(\d+)", str(ep))
    return m.group(1) if m else None


def check_dockerfile(root):
    path = os.path.join(root, "deploy", "docker", "Dockerfile")
    p = rel(root, path)
    if not os.path.exists(path):
        fail(p, "missing")
        return
    text = open(path).read()
    # join continuation lines
    lines = re.sub(r"\\\n", " ", text).splitlines()
    stages, cur = [], None
    for line in lines:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        ins, _, arg = s.partition(" ")
        ins = ins.upper()
        if ins == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", arg.strip(), re.I)
            cur = {"image": m.group(1), "name": m.group(2), "ins": []}
            stages.append(cur)
        elif cur is not None:
            cur["ins"].append((ins, arg.strip()))
    problems = []
    if len(stages) < 2:
        problems.append("not multi-stage")
    if any(not st["image"].startswith("debian:12") for st in stages):
        problems.append("every stage must be FROM debian:12 / debian:12-slim")
    build = stages[0] if stages else {"ins": []}
    runtime = stages[-1] if stages else {"ins": []}
    # build stage: the same packages as a developer box, by running the script
    copies = [a for i, a in build["ins"] if i == "COPY"]
    runs = " ".join(a for i, a in build["ins"] if i == "RUN")
    if not any(a.split()[0] == "deploy/install-deps.sh" for a in copies) or "install-deps.sh" not in runs:
        problems.append("build stage does not install its packages with deploy/install-deps.sh")
    if not os.path.exists(os.path.join(root, "deploy", "install-deps.sh")):
        problems.append("deploy/install-deps.sh missing")
    for t in ("quarry-broker", "quarry-worker", "quarry-cli", "quarry-mirror"):
        if t not in runs:
            problems.append(f"build stage does not build {t}")
    # runtime stage: the packages of the shared libraries the binaries link
    rruns = " ".join(a for i, a in runtime["ins"] if i == "RUN")
    m = re.search(r"apt-get install ((?:\s*-\S+)*)((?:\s+[a-z0-9][a-z0-9.+-]+)+)", rruns)
    rpkgs = set(m.group(2).split()) if m else set()
    if not rpkgs:
        problems.append("runtime stage installs no packages")
    if not any(i == "USER" and not a.startswith("root") and a.split(":")[0] not in ("0",)
               for i, a in runtime["ins"]):
        problems.append("runtime stage runs as root (no USER)")
    if not any(i == "COPY" and "--from=" in a for i, a in runtime["ins"]):
        problems.append("runtime stage copies nothing from the build stage")
    ign = os.path.join(root, "deploy", "docker", "Dockerfile.dockerignore")
    if not os.path.exists(ign) or not re.search(r"^build\*?$|^build-\*$", open(ign).read(), re.M):
        problems.append("Dockerfile.dockerignore missing or does not exclude build folders")
    if problems:
        fail(p, "; ".join(problems))
        return
    need_note = libs_covered(p, rpkgs)
    if need_note is None:
        return
    ok(p, f"{len(stages)} debian:12 stages, build via install-deps.sh, runtime {sorted(rpkgs)}{need_note}")


SANITIZER_LIBS = re.compile(r"lib(asan|ubsan|lsan|tsan)\.so")
BASE_PACKAGES = {"libc6", "libgcc-s1"}  # in every debian:12 image


def libs_covered(p, rpkgs):
    """Direct NEEDED libraries of the built binaries -> their Debian packages,
    which the runtime stage must install.  -> note, or None after a failure."""
    bins = [b.bin for b in (BROKER, WORKER) if b.vars is not None]
    cli = os.environ.get("QUARRY_CLI_BIN")
    if cli and os.access(cli, os.X_OK):
        bins.append(cli)
    if not bins or not all(shutil.which(t) for t in ("readelf", "ldd", "dpkg")):
        return " (binaries, readelf or dpkg not available: runtime libraries not cross-checked)"
    needed = set()
    for b in bins:
        out = subprocess.run(["readelf", "-d", b], capture_output=True, text=True).stdout
        needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))
    resolved = {}
    for b in bins:  # ldd resolves the paths this machine's loader would use
        out = subprocess.run(["ldd", b], capture_output=True, text=True).stdout
        resolved.update(re.findall(r"^\s*(\S+) => (/\S+)", out, re.M))
    missing, pkgs = [], set()
    for lib in sorted(needed):
        if SANITIZER_LIBS.match(lib):
            continue
        if lib not in resolved:
            missing.append(f"{lib} (not found by ldd)")
            continue
        path, real = resolved[lib], os.path.realpath(resolved[lib])
        pkg = None
        cands = [path, real] + [("/usr" + c) if not c.startswith("/usr/") else c[4:] for c in (path, real)]
        for cand in cands:
            r = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
            if r.returncode == 0:
                pkg = r.stdout.split(":")[0]
                break
        if pkg is None:
            missing.append(f"{lib} (no package owns {path})")
        elif pkg not in BASE_PACKAGES:
            pkgs.add(pkg)
            if pkg not in rpkgs:
                missing.append(f"{lib} from {pkg}")
    if missing:
        fail(p, "runtime stage lacks what the binaries link: " + ", ".join(missing))
        return None
    return f"; covers every linked library ({', '.join(sorted(pkgs))})"


def check_compose(root):
    ddir = os.path.join(root, "deploy", "docker")
    path = os.path.join(ddir, "docker-compose.yml")
    p = rel(root, path)
    try:
        docs = load_yaml_all(path)
    except Exception as e:  # noqa: BLE001 - report any parse error
        fail(p, f"does not parse: {e}")
        return
    c = docs[0] if docs else {}
    problems = []
    services = c.get("services") or {}
    for want in ("postgres", "broker", "worker-1", "worker-2", "prometheus", "grafana"):
        if want not in services:
            problems.append(f"no service {want}")
    volumes = c.get("volumes") or {}
    broker_ports = {}
    worker_services = []
    for name, s in services.items():
        if not isinstance(s, dict):
            problems.append(f"{name}: not a mapping")
            continue
        if "image" not in s and "build" not in s:
            problems.append(f"{name}: neither image nor build")
        b = s.get("build")
        if b:
            ctx = os.path.normpath(os.path.join(ddir, b.get("context", ".") if isinstance(b, dict) else b))
            df = os.path.join(ctx, b.get("dockerfile", "Dockerfile")) if isinstance(b, dict) else os.path.join(ctx, "Dockerfile")
            if not os.path.isdir(ctx) or not os.path.exists(df):
                problems.append(f"{name}: build context/dockerfile {rel(root, df)} missing")
        deps = s.get("depends_on") or []
        for dep in (deps if isinstance(deps, list) else deps.keys()):
            if dep not in services:
                problems.append(f"{name}: depends_on unknown service {dep}")
        for v in s.get("volumes") or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith((".", "/")):
                if not os.path.exists(os.path.normpath(os.path.join(ddir, src))):
                    problems.append(f"{name}: bind source {src} missing")
            elif src and src not in volumes:
                problems.append(f"{name}: volume {src} not declared")
        env = env_dict(s.get("environment"))
        cmd = s.get("command") or []
        cmd = cmd.split() if isinstance(cmd, str) else cmd
        prog = PROGRAMS.get(cmd[0]) if cmd else None
        if prog is None and any(k.startswith("QUARRY_") for k in env):
            problems.append(f"{name}: QUARRY_* variables but the command is not a Quarry daemon")
        if prog is not None:
            if not check_settings(p, prog, env, f"service {name}"):
                return
            if prog is BROKER:
                for k in ("QUARRY_BROKER_DB", "QUARRY_BROKER_CLIENT_ENDPOINT", "QUARRY_BROKER_WORKER_ENDPOINT"):
                    if k not in env:
                        problems.append(f"{name}: {k} not set")
                host = re.search(r"host=(\S+)", env.get("QUARRY_BROKER_DB", ""))
                if host and host.group(1) not in services:
                    problems.append(f"{name}: database host {host.group(1)} is not a service")
                wport = endpoint_port(env.get("QUARRY_BROKER_WORKER_ENDPOINT", "tcp://*:5556"))
                broker_ports[name] = wport
                listen = {endpoint_port(env.get("QUARRY_BROKER_CLIENT_ENDPOINT", "tcp://*:5555")), wport}
                for port in s.get("ports") or []:
                    target = int(str(port).rsplit(":", 1)[-1].split("/")[0])
                    if target not in listen:
                        problems.append(f"{name}: publishes {target}, which the broker does not listen on")
            if prog is WORKER:
                worker_services.append((name, s, env))
                grace = seconds(s.get("stop_grace_period", "10s"))
                if grace <= drain_ms(env) / 1000 + 2:
                    problems.append(f"{name}: stop_grace_period {grace}s does not cover the drain")
    for name, s, env in worker_services:
        ep = env.get("QUARRY_WORKER_BROKER", "")
        host, port = endpoint_host(ep), endpoint_port(ep)
        if host not in broker_ports or port != broker_ports[host]:
            problems.append(f"{name}: QUARRY_WORKER_BROKER={ep} is no broker service's worker port")
    names = [env.get("QUARRY_WORKER_NAME") for _, _, env in worker_services]
    if len(set(names)) != len(names):
        problems.append("two workers share a QUARRY_WORKER_NAME")
    if problems:
        fail(p, "; ".join(problems))
        return
    note = "" if BROKER.vars is not None and WORKER.vars is not None else \
        f" ({BROKER.note()})" if BROKER.vars is None else f" ({WORKER.note()})"
    ok(p, f"{len(services)} services, builds/images, depends_on, volumes, ports, worker endpoints, "
          f"drain grace, QUARRY_* names and values{note}")
    check_prometheus(root, set(services))
    check_grafana(root, set(services))


def check_prometheus(root, services):
    path = os.path.join(root, "deploy", "docker", "prometheus.yml")
    p = rel(root, path)
    try:
        cfg = load_yaml_all(path)[0]
    except Exception as e:  # noqa: BLE001
        fail(p, f"does not parse: {e}")
        return
    problems = []
    jobs = cfg.get("scrape_configs") or []
    if not jobs:
        problems.append("no scrape_configs")
    targets = []
    for j in jobs:
        if "job_name" not in j:
            problems.append("a scrape config without job_name")
        for sc in j.get("static_configs") or []:
            for t in sc.get("targets") or []:
                host = t.rsplit(":", 1)[0]
                targets.append(t)
                if host not in services and host != "localhost":
                    problems.append(f"target {t} is not a compose service")
    if problems:
        fail(p, "; ".join(problems))
    else:
        ok(p, f"{len(jobs)} jobs, targets {', '.join(targets)} are compose services")


def check_grafana(root, services):
    d = os.path.join(root, "deploy", "docker", "grafana", "provisioning")
    for sub in ("datasources", "dashboards"):
        files = sorted(f for f in os.listdir(os.path.join(d, sub)) if f.endswith((".yml", ".yaml"))) \
            if os.path.isdir(os.path.join(d, sub)) else []
        if not files:
            fail(rel(root, os.path.join(d, sub)), "no provisioning file")
        for f in files:
            path = os.path.join(d, sub, f)
            p = rel(root, path)
            try:
                cfg = load_yaml_all(path)[0]
            except Exception as e:  # noqa: BLE001
                fail(p, f"does not parse: {e}")
                continue
            key = "datasources" if sub == "datasources" else "providers"
            items = cfg.get(key) or []
            if cfg.get("apiVersion") != 1 or not items:
                fail(p, f"want apiVersion: 1 and a non-empty {key} list")
                continue
            bad = []
            for it in items:
                if sub == "datasources":
                    host = re.sub(r"^\w+://", "", it.get("url", "")).split(":")[0].split("/")[0]
                    if host not in services:
                        bad.append(f"url host {host!r} is not a compose service")
                elif not (it.get("options") or {}).get("path"):
                    bad.append(f"provider {it.get('name')} has no options.path")
            if bad:
                fail(p, "; ".join(bad))
            else:
                ok(p, f"{len(items)} {key}")
    check_dashboards(root)


def check_dashboards(root):
    """Every dashboard query names a series the broker or worker sources
    export, or a view the migrations create, through a provisioned data source."""
    src = ""
    for f in ("broker/broker.c", "worker/worker.c"):
        with open(os.path.join(root, f), encoding="utf-8") as fh:
            src += fh.read()
    sql = ""
    sqldir = os.path.join(root, "schemas", "sql")
    for f in sorted(os.listdir(sqldir)):
        with open(os.path.join(sqldir, f), encoding="utf-8") as fh:
            sql += fh.read()
    uids = set()
    dsdir = os.path.join(root, "deploy", "docker", "grafana", "provisioning", "datasources")
    for f in os.listdir(dsdir):
        for it in (load_yaml_all(os.path.join(dsdir, f))[0].get("datasources") or []):
            uids.add(it.get("uid"))
    d = os.path.join(root, "deploy", "docker", "grafana", "dashboards")
    files = sorted(f for f in os.listdir(d) if f.endswith(".json"))
    if not files:
        fail(rel(root, d), "no dashboard JSON")
    for f in files:
        path = os.path.join(d, f)
        p = rel(root, path)
        try:
            with open(path, encoding="utf-8") as fh:
                dash = json.load(fh)
        except Exception as e:  # noqa: BLE001
            fail(p, f"does not parse: {e}")
            continue
        bad, n = [], 0
        for panel in dash.get("panels") or []:
            uid = (panel.get("datasource") or {}).get("uid")
            if uid not in uids:
                bad.append(f"panel {panel.get('title')!r}: data source {uid!r} is not provisioned")
            for t in panel.get("targets") or []:
                n += 1
                for name in re.findall(r"\b(quarry_[a-z_]+)", t.get("expr", "")):
                    base = re.sub(r"_(bucket|sum|count)$", "", name)
                    if f'"{base}' not in src and f"{base} " not in src and f"{base}{{" not in src:
                        bad.append(f"panel {panel.get('title')!r}: no series {name} in the sources")
                for view in re.findall(r"\b(v_[a-z_]+)", t.get("rawSql", "")):
                    if f"CREATE VIEW {view} " not in sql:
                        bad.append(f"panel {panel.get('title')!r}: no view {view} in schemas/sql")
        if bad:
            fail(p, "; ".join(bad))
        else:
            ok(p, f"{len(dash.get('panels') or [])} panels, {n} queries name real series and views")


# ---------------------------------------------------------------- kubernetes
DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
ENVNAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
KINDS = {("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"),
         ("apps/v1", "Deployment"), ("apps/v1", "DaemonSet"),
         ("kustomize.config.k8s.io/v1beta1", "Kustomization")}
# fields allowed at each level we use (a subset of the real OpenAPI schema)
POD_SPEC_KEYS = {"containers", "initContainers", "volumes", "nodeSelector", "tolerations", "affinity",
                 "securityContext", "serviceAccountName", "terminationGracePeriodSeconds",
                 "enableServiceLinks", "priorityClassName", "imagePullSecrets", "hostNetwork",
                 "restartPolicy", "dnsPolicy", "topologySpreadConstraints"}
CONTAINER_KEYS = {"name", "image", "imagePullPolicy", "command", "args", "env", "envFrom", "ports",
                  "resources", "readinessProbe", "livenessProbe", "startupProbe", "securityContext",
                  "volumeMounts", "workingDir", "lifecycle"}
PROBE_KEYS = {"exec", "tcpSocket", "httpGet", "grpc", "initialDelaySeconds", "periodSeconds",
              "timeoutSeconds", "failureThreshold", "successThreshold"}


def k8s_structure(doc, where, problems):
    """Structural checks of one object; appends to problems."""
    av, kind = doc.get("apiVersion"), doc.get("kind")
    if (av, kind) not in KINDS:
        problems.append(f"{where}: unknown apiVersion/kind {av}/{kind}")
        return
    if kind == "Kustomization":
        return
    md = doc.get("metadata") or {}
    name = md.get("name", "")
    if not DNS1123.fullmatch(name) or len(name) > 63:
        problems.append(f"{where}: metadata.name {name!r} is not a DNS-1123 label")
    if kind != "Namespace" and md.get("namespace") != "quarry":
        problems.append(f"{kind}/{name}: metadata.namespace is not quarry")
    for k, v in (md.get("labels") or {}).items():
        if not isinstance(v, str):
            problems.append(f"{kind}/{name}: label {k} is not a string")
    if kind == "ConfigMap":
        for k, v in (doc.get("data") or {}).items():
            if not isinstance(v, str):
                problems.append(f"ConfigMap/{name}: data.{k} is not a string (quote it)")
            if not re.fullmatch(r"[-._a-zA-Z0-9]+", k):
                problems.append(f"ConfigMap/{name}: bad key {k}")
    if kind == "Secret":
        if not (doc.get("stringData") or doc.get("data")):
            problems.append(f"Secret/{name}: no data")
        for k, v in (doc.get("stringData") or {}).items():
            if not isinstance(v, str):
                problems.append(f"Secret/{name}: stringData.{k} is not a string")
            elif "REPLACE_ME" not in v:
                problems.append(f"Secret/{name}: {k} is not a clearly marked placeholder (REPLACE_ME)")
    if kind == "Service":
        spec = doc.get("spec") or {}
        for port in spec.get("ports") or []:
            if not isinstance(port.get("port"), int) or not (0 < port["port"] < 65536):
                problems.append(f"Service/{name}: bad port {port}")
            if len(spec.get("ports")) > 1 and not port.get("name"):
                problems.append(f"Service/{name}: several ports need names")
    if kind in ("Deployment", "DaemonSet"):
        spec = doc.get("spec") or {}
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        tmpl = spec.get("template") or {}
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        if not sel:
            problems.append(f"{kind}/{name}: no spec.selector.matchLabels")
        for k, v in sel.items():
            if labels.get(k) != v:
                problems.append(f"{kind}/{name}: selector {k}={v} does not match the pod labels")
        pod = tmpl.get("spec") or {}
        for k in pod:
            if k not in POD_SPEC_KEYS:
                problems.append(f"{kind}/{name}: unknown pod spec field {k}")
        if not pod.get("containers"):
            problems.append(f"{kind}/{name}: no containers")
        for c in pod.get("containers") or []:
            cn = c.get("name", "?")
            for k in c:
                if k not in CONTAINER_KEYS:
                    problems.append(f"{kind}/{name}/{cn}: unknown container field {k}")
            if not c.get("image"):
                problems.append(f"{kind}/{name}/{cn}: no image")
            for port in c.get("ports") or []:
                pn = port.get("name", "")
                if pn and (len(pn) > 15 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", pn)):
                    problems.append(f"{kind}/{name}/{cn}: bad port name {pn}")
                if not isinstance(port.get("containerPort"), int):
                    problems.append(f"{kind}/{name}/{cn}: containerPort is not an integer")
            for e in c.get("env") or []:
                if not ENVNAME.fullmatch(e.get("name", "")):
                    problems.append(f"{kind}/{name}/{cn}: bad env name {e.get('name')}")
                if ("value" in e) == ("valueFrom" in e):
                    problems.append(f"{kind}/{name}/{cn}: env {e.get('name')} needs value or valueFrom")
                if "value" in e and not isinstance(e["value"], str):
                    problems.append(f"{kind}/{name}/{cn}: env {e['name']} value is not a string")
            for pr in ("readinessProbe", "livenessProbe", "startupProbe"):
                for k in (c.get(pr) or {}):
                    if k not in PROBE_KEYS:
                        problems.append(f"{kind}/{name}/{cn}: unknown {pr} field {k}")
            res = c.get("resources") or {}
            for k in res:
                if k not in ("requests", "limits"):
                    problems.append(f"{kind}/{name}/{cn}: unknown resources field {k}")


def check_k8s(root):
    d = os.path.join(root, "deploy", "k8s")
    files = sorted(f for f in os.listdir(d) if f.endswith((".yaml", ".yml")))
    objs, per_file = [], {}
    for f in files:
        path = os.path.join(d, f)
        try:
            docs = load_yaml_all(path)
        except Exception as e:  # noqa: BLE001
            fail(f"deploy/k8s/{f}", f"does not parse: {e}")
            continue
        per_file[f] = docs
        for doc in docs:
            objs.append((f, doc))
    by = {}
    for f, doc in objs:
        by.setdefault(doc.get("kind"), {})[(doc.get("metadata") or {}).get("name")] = doc
    problems = {f: [] for f in per_file}

    for f, doc in objs:
        k8s_structure(doc, f, problems[f])

    kust = by.get("Kustomization", {}).get(None)
    if kust is None:
        problems.setdefault("kustomization.yaml", []).append("missing")
    else:
        res = set(kust.get("resources") or [])
        for f in per_file:
            if f != "kustomization.yaml" and f not in res:
                problems["kustomization.yaml"].append(f"{f} not listed in resources")
        for r in res:
            if r not in per_file:
                problems["kustomization.yaml"].append(f"resource {r} does not exist")

    def file_of(doc):
        return next(f for f, o in objs if o is doc)

    cms, secrets = by.get("ConfigMap", {}), by.get("Secret", {})
    workloads = list(by.get("Deployment", {}).values()) + list(by.get("DaemonSet", {}).values())
    for w in workloads:
        f, kind, name = file_of(w), w["kind"], w["metadata"]["name"]
        pod = w["spec"]["template"]["spec"]
        if pod.get("enableServiceLinks") is not False:
            problems[f].append(f"{kind}/{name}: enableServiceLinks must be false (the quarry-broker "
                               "Service would inject QUARRY_BROKER_* variables)")
        for c in pod.get("containers") or []:
            cmd = c.get("command") or []
            prog = PROGRAMS.get(cmd[0]) if cmd else None
            if prog is None:
                problems[f].append(f"{kind}/{name}: command {cmd[:1]} is not a Quarry daemon")
                continue
            env = {}
            for ef in c.get("envFrom") or []:
                ref = (ef.get("configMapRef") or {}).get("name") or (ef.get("secretRef") or {}).get("name")
                src = cms.get(ref) if "configMapRef" in ef else secrets.get(ref)
                if src is None:
                    problems[f].append(f"{kind}/{name}: envFrom {ref} does not exist")
                    continue
                env.update(src.get("data") or src.get("stringData") or {})
            for e in c.get("env") or []:
                vf = e.get("valueFrom") or {}
                if "secretKeyRef" in vf:
                    ref = vf["secretKeyRef"]
                    s = secrets.get(ref.get("name"))
                    if s is None or ref.get("key") not in (s.get("stringData") or s.get("data") or {}):
                        problems[f].append(f"{kind}/{name}: env {e['name']} names a missing secret key {ref}")
                    env[e["name"]] = "host=x"  # the Secret holds a placeholder conninfo
                elif "configMapKeyRef" in vf:
                    ref = vf["configMapKeyRef"]
                    cm = cms.get(ref.get("name"))
                    if cm is None or ref.get("key") not in (cm.get("data") or {}):
                        problems[f].append(f"{kind}/{name}: env {e['name']} names a missing ConfigMap key")
                    env[e["name"]] = (cm or {}).get("data", {}).get(ref.get("key"), "")
                elif "fieldRef" in vf:
                    env[e["name"]] = "node-1"
                else:
                    env[e["name"]] = e.get("value", "")
            if not check_settings(f"deploy/k8s/{f}", prog, env, f"{kind}/{name} environment"):
                problems[f].append("QUARRY_* settings refused (line above)")
            c["_env"], c["_prog"] = env, prog
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if kind == "Deployment":
            # one active broker (leader lock), the others stand by: only the
            # active one may be ready, and a standby must stay alive
            for c in pod.get("containers") or []:
                rp = ((c.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
                lp = ((c.get("livenessProbe") or {}).get("httpGet") or {}).get("path")
                if rp != "/healthz":
                    problems[f].append(f"Deployment/{name}: readinessProbe must GET /healthz "
                                       "(503 on a standby or without its database)")
                if lp != "/livez":
                    problems[f].append(f"Deployment/{name}: livenessProbe must GET /livez "
                                       "(a standby is alive but not ready)")
        if kind == "DaemonSet":
            ns = pod.get("nodeSelector") or {}
            if not any(k.startswith("nvidia.com/") for k in ns):
                problems[f].append(f"DaemonSet/{name}: nodeSelector does not pick NVIDIA GPU nodes")
            if not any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations") or []):
                problems[f].append(f"DaemonSet/{name}: no toleration for nvidia.com/gpu")
            for c in pod["containers"]:
                if "nvidia.com/gpu" not in ((c.get("resources") or {}).get("limits") or {}):
                    problems[f].append(f"DaemonSet/{name}: container {c['name']} requests no nvidia.com/gpu")
                dm = drain_ms(c.get("_env"))
                if grace <= dm / 1000 + 2:
                    problems[f].append(f"DaemonSet/{name}: terminationGracePeriodSeconds {grace} does not "
                                       f"cover the {dm} ms drain + 2 s")

    # Services: selector -> a workload; targetPorts -> its container ports
    svc_ports, broker_wport = {}, {}
    for name, svc in by.get("Service", {}).items():
        f = file_of(svc)
        sel = svc["spec"].get("selector") or {}
        matched = [w for w in workloads
                   if all((w["spec"]["template"]["metadata"].get("labels") or {}).get(k) == v
                          for k, v in sel.items())]
        if not sel or not matched:
            problems[f].append(f"Service/{name}: selector matches no workload")
            continue
        cports = {}
        for w in matched:
            for c in w["spec"]["template"]["spec"]["containers"]:
                for port in c.get("ports") or []:
                    cports[port["containerPort"]] = port
                    if port.get("name"):
                        cports[port["name"]] = port
                env = c.get("_env") or {}
                if c.get("_prog") is BROKER:
                    broker_wport[name] = endpoint_port(env.get("QUARRY_BROKER_WORKER_ENDPOINT", "tcp://*:5556"))
                    listen = {endpoint_port(env.get("QUARRY_BROKER_CLIENT_ENDPOINT", "tcp://*:5555")),
                              endpoint_port(env.get("QUARRY_BROKER_WORKER_ENDPOINT", "tcp://*:5556"))}
                    m = re.fullmatch(r"[^:]*:(\d+)", str(env.get("QUARRY_BROKER_METRICS_ADDR", "")))
                    if m:
                        listen.add(int(m.group(1)))
                    declared = {p["containerPort"] for p in c.get("ports") or []}
                    if listen != declared:
                        problems[f].append(f"broker listens on {sorted(listen)} but declares "
                                           f"containerPorts {sorted(declared)}")
        for sp in svc["spec"].get("ports") or []:
            tp = sp.get("targetPort", sp.get("port"))
            if tp not in cports:
                problems[f].append(f"Service/{name}: targetPort {tp} is no container port of the selected pods")
            else:
                svc_ports.setdefault(name, {})[sp["port"]] = cports[tp]["containerPort"]
    # workers must reach a broker Service port that leads to the worker endpoint
    for w in workloads:
        for c in w["spec"]["template"]["spec"]["containers"]:
            if c.get("_prog") is WORKER:
                ep = (c.get("_env") or {}).get("QUARRY_WORKER_BROKER", "")
                host, port = endpoint_host(ep), endpoint_port(ep)
                if host not in svc_ports or port not in svc_ports[host]:
                    problems[file_of(w)].append(f"QUARRY_WORKER_BROKER={ep} is no Service port")
                elif svc_ports[host][port] != broker_wport.get(host):
                    problems[file_of(w)].append(f"QUARRY_WORKER_BROKER={ep} is not the broker's worker port")

    note = "" if BROKER.vars is not None and WORKER.vars is not None else " (settings names not cross-checked: binaries not given)"
    for f in sorted(problems):
        if problems[f]:
            fail(f"deploy/k8s/{f}", "; ".join(problems[f]))
        else:
            kinds = ", ".join(f"{d.get('kind')}/{(d.get('metadata') or {}).get('name', '')}".rstrip("/")
                              for d in per_file.get(f, []))
            has_wl = any(d.get("kind") in ("Deployment", "DaemonSet") for d in per_file.get(f, []))
            ok(f"deploy/k8s/{f}", f"{kinds}: structure, references, labels/selectors, ports"
                                  + (note if has_wl else ""))


def main():
    root, what = sys.argv[1], sys.argv[2:]
    for w in what:
        {"systemd": check_systemd, "env": check_env_files, "dockerfile": check_dockerfile,
         "compose": check_compose, "k8s": check_k8s}[w](root)
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
