"""Tests of the Python binding (sdk/python/quarry) against a real broker.

Registered with ctest by tests/python.cmake, which sets:
  QUARRY_LIB         path of libquarry.so
  QUARRY_BROKER_BIN  path of quarry-broker
  QUARRY_WORKER_BIN  path of quarry-worker
  QUARRY_TEST_PG     conninfo of the suite's PostgreSQL cluster ("postgres" database)
  QUARRY_PY_PORTS    optional "LO-HI" port range to use (default 27400-27499)

Run by hand:
  QUARRY_LIB=build/sdk/libquarry.so QUARRY_BROKER_BIN=build/broker/quarry-broker \
  QUARRY_WORKER_BIN=build/worker/quarry-worker QUARRY_TEST_PG="host=... dbname=postgres ..." \
  python3 -m unittest discover -s sdk/python/tests -v

The broker tests start their own quarry-broker and one quarry-worker on free
loopback ports, in a database of their own created (and dropped) with psql.
Without QUARRY_TEST_PG or the binaries they are skipped; the tests that need
no broker always run.
"""

import ctypes
import ctypes.util
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from array import array

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # sdk/python

import quarry  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def _lib_path():
    return os.environ.get("QUARRY_LIB") or quarry.load_library().path


def _bin(env, rel):
    p = os.environ.get(env)
    if p:
        return p
    # next to the library: BUILD/sdk/libquarry.so -> BUILD/<rel>
    try:
        build = os.path.dirname(os.path.dirname(os.path.abspath(_lib_path())))
    except quarry.LibraryNotFoundError:
        return None
    cand = os.path.join(build, rel)
    return cand if os.access(cand, os.X_OK) else None


def _port_range():
    lo, hi = 27400, 27499
    m = re.fullmatch(r"(\d+)-(\d+)", os.environ.get("QUARRY_PY_PORTS", ""))
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
    return lo, hi


def free_ports(count, exclude=()):
    """count loopback ports of the range that nothing listens on."""
    lo, hi = _port_range()
    ports = list(range(lo, hi + 1))
    random.shuffle(ports)
    out = []
    for p in ports:
        if p in exclude:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        out.append(p)
        if len(out) == count:
            return out
    raise RuntimeError("no %d free ports in %d-%d" % (count, lo, hi))


def matmul(A, B, m, n, k):
    """Pure-Python C = A * B (row-major, A m x k, B k x n), rounded to float32."""
    C = []
    for i in range(m):
        for j in range(n):
            C.append(sum(A[i * k + p] * B[p * n + j] for p in range(k)))
    return list(array("f", C))


def _pdeathsig():
    # never outlive the test process (ctest timeouts kill it with SIGKILL)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def child_env():
    """The environment for child processes: without the LD_PRELOAD that an
    ASan build of libquarry needs in this process (tests/python.cmake sets it);
    the daemons link the sanitizer runtime themselves, and psql and cc must
    not get it."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def psql(conninfo, sql):
    subprocess.run(["psql", conninfo, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, env=child_env())


def with_dbname(conninfo, name):
    if re.search(r"\bdbname=\S+", conninfo):
        return re.sub(r"\bdbname=\S+", "dbname=" + name, conninfo)
    return conninfo + " dbname=" + name


# ---------------------------------------------------------------------------
# Without a broker


class TestLibrary(unittest.TestCase):
    def test_version_and_strerror(self):
        self.assertRegex(quarry.version(), r"^\d+\.\d+\.\d+$")
        self.assertEqual(quarry.version(), quarry.__version__)
        self.assertIn("balance", quarry.strerror(quarry.ErrorCode.EFUNDS))
        self.assertEqual(quarry.strerror(5), quarry.strerror(-5))
        lib = quarry.load_library()
        self.assertIs(lib, quarry.load_library())  # cached
        self.assertEqual(lib.version(), quarry.version(lib))

    def test_codes_and_states_agree_with_library(self):
        for s in quarry.JobState:
            if s == quarry.JobState.UNKNOWN:
                continue
            name = quarry.job_state_name(s)
            self.assertEqual(name, s.name.lower())
            self.assertEqual(quarry.job_state_parse(name), s)
        self.assertEqual(quarry.job_state_parse("nonsense"), quarry.JobState.UNKNOWN)
        self.assertTrue(quarry.job_state_final(quarry.JobState.SETTLED))
        self.assertFalse(quarry.job_state_final(quarry.JobState.QUEUED))
        self.assertEqual(quarry.job_state_code(quarry.JobState.FAILED), quarry.ErrorCode.EFAILED)
        self.assertEqual(quarry.job_state_code(quarry.JobState.REJECTED), quarry.ErrorCode.EINVAL)
        # every code has its exception class and a library text
        for code in quarry.ErrorCode:
            if code == quarry.ErrorCode.OK:
                continue
            e = quarry._error(code, "m")
            self.assertIsInstance(e, quarry.QuarryError)
            self.assertEqual(e.code, code)
            self.assertEqual(e.name, "QUARRY_" + code.name)
            self.assertNotEqual(quarry.strerror(code), "")
        self.assertIs(type(quarry._error(quarry.ErrorCode.EFUNDS, "")), quarry.InsufficientFunds)
        self.assertIs(type(quarry._error(quarry.ErrorCode.ECANCELLED, "")), quarry.JobCancelled)
        self.assertTrue(issubclass(quarry.JobExpired, quarry.JobFailed))
        self.assertTrue(issubclass(quarry.JobRejected, quarry.InvalidArgument))
        e = quarry._error(99, "future")
        self.assertIs(type(e), quarry.QuarryError)
        self.assertEqual((e.code, e.name), (99, "QUARRY_E99"))

    def test_struct_layout_matches_header(self):
        """sizeof/offsetof of every mirrored struct, as a C compiler sees sdk/quarry.h."""
        cc = shutil.which("cc") or shutil.which("gcc")
        header = os.environ.get("QUARRY_HEADER", os.path.join(REPO, "sdk", "quarry.h"))
        if not cc or not os.path.exists(header):
            self.skipTest("no C compiler or no sdk/quarry.h")
        structs = {
            "quarry_job_info_t": quarry._JobInfo, "quarry_job_opts_t": quarry._JobOpts,
            "quarry_worker_info_t": quarry._WorkerInfo, "quarry_balance_t": quarry._Balance,
            "quarry_kind_stat_t": quarry._KindStat, "quarry_operator_stat_t": quarry._OperatorStat,
            "quarry_dash_t": quarry._Dash, "quarry_client_opts_t": quarry._ClientOpts,
        }
        lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "quarry.h"',
                 "int main(void) {"]
        want = []
        for cname, py in structs.items():
            lines.append('printf("%%zu\\n", sizeof(%s));' % cname)
            want.append(("sizeof " + cname, ctypes.sizeof(py)))
            for fname, _ in py._fields_:
                lines.append('printf("%%zu\\n", offsetof(%s, %s));' % (cname, fname))
                want.append(("%s.%s" % (cname, fname), getattr(py, fname).offset))
                lines.append('printf("%%zu\\n", sizeof(((%s *)0)->%s));' % (cname, fname))
                want.append(("sizeof %s.%s" % (cname, fname),
                             ctypes.sizeof(dict(py._fields_)[fname])))
        lines.append("return 0; }")
        with tempfile.TemporaryDirectory() as d:
            src, exe = os.path.join(d, "layout.c"), os.path.join(d, "layout")
            with open(src, "w") as f:
                f.write("\n".join(lines))
            subprocess.run([cc, "-std=c11", "-I", os.path.dirname(header), src, "-o", exe],
                           check=True, env=child_env())
            got = subprocess.run([exe], check=True, stdout=subprocess.PIPE,
                                 env=child_env()).stdout.split()
        self.assertEqual(len(got), len(want))
        for (what, size), c in zip(want, got):
            self.assertEqual(size, int(c), what)

    def test_library_not_found(self):
        bogus = "/nonexistent/quarry/libquarry.so"
        with self.assertRaises(quarry.LibraryNotFoundError) as cm:
            quarry.Library(bogus)
        self.assertIn(bogus, str(cm.exception))
        self.assertIn("QUARRY_LIB", str(cm.exception))
        self.assertEqual(cm.exception.tried[0][0], bogus)
        self.assertIsInstance(cm.exception, OSError)
        with self.assertRaises(quarry.LibraryNotFoundError):
            quarry.Client("tcp://127.0.0.1:1", "a", 100, lib=bogus)
        with self.assertRaises(quarry.LibraryNotFoundError):
            quarry.version(lib=bogus)
        # through the environment: used alone, no fallback
        old = os.environ.get("QUARRY_LIB")
        os.environ["QUARRY_LIB"] = bogus + ".env"
        try:
            with self.assertRaises(quarry.LibraryNotFoundError) as cm:
                quarry.load_library()
            self.assertIn(bogus + ".env", str(cm.exception))
        finally:
            if old is None:
                del os.environ["QUARRY_LIB"]
            else:
                os.environ["QUARRY_LIB"] = old
        # a shared object that is not libquarry
        libc = ctypes.util.find_library("m")
        if libc:
            with self.assertRaises(quarry.LibraryNotFoundError) as cm:
                quarry.Library(libc)
            self.assertIn("quarry_version", str(cm.exception))

    def test_unavailable(self):
        (port,) = free_ports(1)
        t0 = time.monotonic()
        with self.assertRaises(quarry.Unavailable) as cm:
            quarry.Client("tcp://127.0.0.1:%d" % port, "nobody", timeout_ms=200)
        self.assertLess(time.monotonic() - t0, 3.0)
        e = cm.exception
        self.assertEqual(e.code, quarry.ErrorCode.EUNAVAIL)
        self.assertEqual(e.name, "QUARRY_EUNAVAIL")
        self.assertIn(str(port), e.message)

    def test_keygen_and_key_settings(self):
        import stat
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            prefix = os.path.join(d, "me")
            pub = quarry.keygen(prefix)
            self.assertEqual(len(pub), 40)
            self.assertEqual(stat.S_IMODE(os.stat(prefix + ".key").st_mode), 0o600)
            with open(prefix + ".pub") as f:
                self.assertEqual(f.read().strip(), pub)
            with self.assertRaises(quarry.IOFailure):
                quarry.keygen(prefix)  # never overwrites
            (port,) = free_ports(1)
            ep = "tcp://127.0.0.1:%d" % port
            # bad key settings fail at once, before any network
            for kw, text in [({"server_key": "nonsense"}, "broker public key"),
                             ({"server_key": pub, "key_file": prefix + ".pub"},
                              "readable by others"),
                             ({"server_key": pub, "key_file": os.path.join(d, "no.key")},
                              "cannot read"),
                             ({"key_file": prefix + ".key"}, "needs the broker")]:
                t0 = time.monotonic()
                with self.assertRaises(quarry.InvalidArgument) as cm:
                    quarry.Client(ep, "x", timeout_ms=3000, **kw)
                self.assertLess(time.monotonic() - t0, 1.0)
                self.assertIn(text, cm.exception.message)
            # good keys, nobody there
            with self.assertRaises(quarry.Unavailable) as cm:
                quarry.Client(ep, "x", timeout_ms=200, server_key=prefix + ".pub",
                              key_file=prefix + ".key")
            self.assertIn("not admitted", cm.exception.message)

    def test_malformed_endpoint(self):
        with self.assertRaises(quarry.InvalidArgument):
            quarry.Client("not an endpoint", "a", timeout_ms=200)

    def test_input_buffers(self):
        for data in (array("f", [1, 2, 3]), array("f", [1, 2, 3]).tobytes(),
                     bytearray(array("f", [1, 2, 3]).tobytes()), [1, 2, 3], (1.0, 2.0, 3.0),
                     memoryview(array("f", [1, 2, 3]))):
            buf, _keep = quarry._floats("A", data, 3, True)
            self.assertEqual(list(buf), [1.0, 2.0, 3.0], type(data).__name__)
        with self.assertRaises(quarry.InvalidArgument):
            quarry._floats("A", [1, 2], 3, True)
        with self.assertRaises(quarry.InvalidArgument):
            quarry._floats("A", b"\0" * 11, 3, True)
        with self.assertRaises(TypeError):
            quarry._floats("A", array("d", [1, 2, 3]), 3, True)
        with self.assertRaises(TypeError):
            quarry._floats("A", "abc", 3, True)


# ---------------------------------------------------------------------------
# Against a broker and a worker


class Marketplace:
    """A quarry-broker and one quarry-worker on free ports, in a fresh database."""

    def __init__(self):
        self.pg = os.environ.get("QUARRY_TEST_PG")
        self.broker_bin = _bin("QUARRY_BROKER_BIN", "broker/quarry-broker")
        self.worker_bin = _bin("QUARRY_WORKER_BIN", "worker/quarry-worker")
        self.procs = []
        self.db = None
        self.logdir = tempfile.mkdtemp(prefix="quarry-py-")

    def missing(self):
        if not self.pg:
            return "QUARRY_TEST_PG is not set (run through ctest)"
        if not self.broker_bin or not self.worker_bin:
            return "quarry-broker / quarry-worker not found (set QUARRY_BROKER_BIN/_WORKER_BIN)"
        if not shutil.which("psql"):
            return "no psql"
        return None

    def spawn(self, name, argv):
        log = open(os.path.join(self.logdir, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=_pdeathsig, env=child_env())
        log.close()
        self.procs.append((name, p))
        return p

    def insecure_flag(self):
        """['--insecure'] when this broker knows the flag (a CURVE broker needs
        it to speak plain text to the tests), else []."""
        try:
            out = subprocess.run([self.broker_bin, "--help"], capture_output=True, text=True,
                                 timeout=10)
            return ["--insecure"] if "insecure" in out.stdout + out.stderr else []
        except (OSError, subprocess.SubprocessError):
            return []

    def start(self):
        self.db = "quarry_py_%d_%d" % (os.getpid(), random.randrange(1 << 30))
        psql(self.pg, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db)
        psql(self.pg, "CREATE DATABASE %s" % self.db)
        conninfo = with_dbname(self.pg, self.db)
        for attempt in range(3):  # a port taken between the probe and the bind: try others
            self.cport, self.wport = free_ports(2)
            self.endpoint = "tcp://127.0.0.1:%d" % self.cport
            broker = self.spawn("broker", [
                self.broker_bin, "--db", conninfo,
                "--client-endpoint", self.endpoint,
                "--worker-endpoint", "tcp://127.0.0.1:%d" % self.wport,
                "--heartbeat-ms", "200",
                "--store-dir", os.path.join(self.logdir, "store")] + self.insecure_flag())
            if self._wait_broker(broker):
                break
            self._stop(broker)
        else:
            raise RuntimeError("broker did not come up\n" + self.logs())
        self.spawn("worker", [self.worker_bin, "--broker", "tcp://127.0.0.1:%d" % self.wport,
                              "--name", "w", "--operator", "op", "--slots", "1",
                              "--ask-price", "10",
                              "--cache-dir", os.path.join(self.logdir, "cache")])
        with self.client("py-setup") as c:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if any(w.state == "online" for w in c.workers()):
                    return
                time.sleep(0.1)
        raise RuntimeError("worker did not come online\n" + self.logs())

    def _wait_broker(self, proc):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                quarry.Client(self.endpoint, "py-probe", timeout_ms=250).close()
                return True
            except quarry.Unavailable:
                time.sleep(0.1)
        return False

    def client(self, account, timeout_ms=20000):
        c = quarry.Client(self.endpoint, account, timeout_ms=2000)
        c.set_timeout(timeout_ms)
        return c

    @staticmethod
    def _stop(p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop(self):
        for _, p in reversed(self.procs):
            self._stop(p)
        self.procs = []
        if self.db:
            try:
                psql(self.pg, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db)
            except Exception as e:  # the cluster may be gone already
                sys.stderr.write("drop database %s: %s\n" % (self.db, e))
            self.db = None

    def logs(self):
        out = []
        for f in sorted(os.listdir(self.logdir)):
            with open(os.path.join(self.logdir, f), errors="replace") as fh:
                out.append("---- %s (last lines)\n%s" % (f, "".join(fh.readlines()[-30:])))
        return "\n".join(out)


# A 3x4 times 4x2 product with small integers: exact in float32.
M, N, K = 3, 2, 4
A_VALUES = [1, 2, 3, 4, -1, 0, 2, 5, 0.5, -2, 1, 3]
B_VALUES = [1, -1, 2, 0, 0, 3, -4, 1.5]


class TestBroker(unittest.TestCase):
    mp = None

    @classmethod
    def setUpClass(cls):
        mp = Marketplace()
        why = mp.missing()
        if why:
            raise unittest.SkipTest(why)
        cls.addClassCleanup(shutil.rmtree, mp.logdir, True)
        cls.addClassCleanup(mp.stop)  # runs even when start() fails half-way
        try:
            mp.start()
        except Exception:
            sys.stderr.write(mp.logs() + "\n")
            raise
        cls.mp = mp

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        if self._failed():
            sys.stderr.write("\n" + self.mp.logs() + "\n")

    def _failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        if hasattr(outcome, "errors"):  # Python <= 3.10: collected until the end
            return any(exc for _, exc in outcome.errors)
        res = getattr(outcome, "result", None)  # 3.11+: reported at once
        return bool(res) and any(t is self for t, _ in res.failures + res.errors)

    def client(self, account):
        c = self.mp.client(account)
        self.clients.append(c)
        return c

    def funded(self, account, amount=100000):
        c = self.client(account)
        c.deposit(account, amount)
        return c

    def run_job(self, c, **kw):
        kw.setdefault("max_price", 5000)
        job_id, reserved, dup = c.gemm_submit(M, N, K, array("f", A_VALUES),
                                              array("f", B_VALUES), **kw)
        return job_id, c.wait(job_id, 30000)

    def test_deposit_then_balance(self):
        c = self.client("py-dep")
        self.assertGreater(c.account_id, 0)
        b0 = c.balance()
        self.assertEqual(b0.account, "py-dep")
        after = c.deposit("py-dep", 1234)
        self.assertIsInstance(after, quarry.Balance)
        self.assertEqual(after.account, "py-dep")
        self.assertEqual(after.available, b0.available + 1234)
        self.assertEqual(c.balance("py-dep"), after)
        self.assertEqual(c.balance(), after)
        self.assertEqual(after.reserved, 0)
        with self.assertRaises(quarry.InvalidArgument):
            c.deposit("", 5)
        with self.assertRaises(quarry.InvalidArgument):
            c.deposit("py-dep", 0)

    def test_gemm_result_matches_python_product(self):
        c = self.funded("py-gemm")
        want = matmul(A_VALUES, B_VALUES, M, N, K)
        # every accepted input type: array('f'), bytes, bytearray, list
        inputs = [
            (array("f", A_VALUES), array("f", B_VALUES)),
            (array("f", A_VALUES).tobytes(), bytearray(array("f", B_VALUES).tobytes())),
            (A_VALUES, B_VALUES),
        ]
        for A, B in inputs:
            job_id, reserved, dup = c.gemm_submit(M, N, K, A, B, max_price=5000)
            self.assertGreater(job_id, 0)
            self.assertEqual(reserved, 5000)
            self.assertFalse(dup)
            info = c.wait(job_id, 30000)
            self.assertEqual(info.state, "settled")
            C = c.result(job_id)
            self.assertIsInstance(C, array)
            self.assertEqual(C.typecode, "f")
            self.assertEqual(len(C), M * N)
            self.assertEqual(list(C), want)
            C2, rinfo = c.result_info(job_id)
            self.assertEqual(C2, C)
            self.assertEqual((rinfo.job_id, rinfo.m, rinfo.n, rinfo.k), (job_id, M, N, K))
        # the inputs are still usable (buffers released after the call)
        a = array("f", A_VALUES)
        job_id, _, _ = c.gemm_submit(M, N, K, a, array("f", B_VALUES), max_price=5000)
        a.append(1.0)
        c.wait(job_id, 30000)  # nothing left running for the next test

    def test_wait_with_progress_callback(self):
        c = self.funded("py-wait")
        job_id, _, _ = c.gemm_submit(M, N, K, A_VALUES, B_VALUES, max_price=5000)
        events = []
        info = c.wait(job_id, 30000, on_event=lambda j: events.append(j))
        self.assertEqual(info.state, "settled")
        self.assertTrue(info.final)
        self.assertGreaterEqual(len(events), 1)
        self.assertTrue(all(isinstance(e, quarry.JobInfo) for e in events))
        self.assertTrue(all(e.job_id == job_id for e in events))
        self.assertEqual(events[-1].state, "settled")
        self.assertTrue(all(0 <= e.progress <= 1000 for e in events))
        # watch of a final job: the current state at once
        w = c.watch(job_id, 0)
        self.assertEqual((w.job_id, w.state), (job_id, "settled"))
        # the callback can stop a wait (returns the state it had then)
        seen = []
        stopped = c.wait(job_id, 30000, on_event=lambda j: seen.append(j) or True)
        self.assertEqual(len(seen), 1)
        self.assertEqual(stopped.job_id, job_id)
        # an exception in the callback stops the wait and comes out of it
        def boom(j):
            raise KeyError("from callback")
        with self.assertRaises(KeyError):
            c.wait(job_id, 30000, on_event=boom)
        # the client is not re-entrant from its own callback
        with self.assertRaises(RuntimeError):
            c.wait(job_id, 30000, on_event=lambda j: c.status(job_id))
        self.assertEqual(c.status(job_id).state, "settled")  # still usable

    def test_status_jobs_workers_dash(self):
        c = self.funded("py-fields")
        t0 = int(time.time() * 1000)
        job_id, info = self.run_job(c, priority=3, max_attempts=2, timeout_ms=60000)
        st = c.status(job_id)
        self.assertEqual(st.job_id, job_id)
        self.assertEqual(st.state, "settled")
        self.assertEqual(st.state_code, quarry.JobState.SETTLED)
        self.assertEqual(st.kind, "ai.gemm")
        self.assertEqual((st.m, st.n, st.k), (M, N, K))
        self.assertEqual(st.max_price, 5000)
        self.assertGreater(st.price, 0)
        self.assertLessEqual(st.price, st.max_price)
        self.assertLessEqual(st.fee, st.price)
        self.assertGreater(st.units, 0)
        self.assertGreaterEqual(st.attempts, 1)
        self.assertEqual(st.progress, 1000)
        self.assertGreater(st.worker_id, 0)
        self.assertGreater(st.created_ms, t0 - 60000)
        self.assertGreaterEqual(st.updated_ms, st.created_ms)
        self.assertEqual(st.detail, "")
        # the client paid price (the fee is the broker's share of it)
        bal = c.balance()
        self.assertEqual(bal.available, 100000 - st.price)
        self.assertEqual(bal.reserved, 0)

        jobs = c.jobs()
        self.assertIn(job_id, [j.job_id for j in jobs])
        self.assertTrue(all(isinstance(j, quarry.JobInfo) for j in jobs))
        self.assertEqual([j.job_id for j in c.jobs(state="settled", limit=1)], [job_id])
        self.assertEqual(c.jobs(state="cancelled"), [])
        self.assertEqual(self.client("py-fields-empty").jobs(), [])
        with self.assertRaises(quarry.InvalidArgument):
            c.jobs(state="no-such-state")
        self.assertIn(job_id, [j.job_id for j in c.jobs(all_accounts=True, limit=1000)])

        ws = c.workers()
        self.assertEqual(len(ws), 1)
        w = ws[0]
        self.assertIsInstance(w, quarry.WorkerInfo)
        self.assertEqual((w.name, w.operator, w.state), ("w", "op", "online"))
        self.assertEqual((w.slots, w.ask_price), (1, 10))
        self.assertEqual(w.worker_id, st.worker_id)
        self.assertGreaterEqual(w.jobs_done, 1)
        self.assertGreater(w.cpu_cores, 0)
        self.assertGreater(w.mem_mb, 0)
        self.assertLessEqual(w.busy, w.slots)

        d = c.dash()
        self.assertIsInstance(d, quarry.Dash)
        self.assertEqual(d.ledger_sum, 0)
        self.assertEqual(d.workers, 1)
        self.assertGreaterEqual(d.settled_total, 1)
        self.assertTrue(0.0 <= d.utilisation <= 1.0)
        self.assertGreaterEqual(d.jobs_per_s, 0.0)
        self.assertGreaterEqual(d.p99_ms, d.p50_ms)
        self.assertGreaterEqual(d.p50_ms, 0.0)
        ops = {o.operator: o for o in d.operators}
        self.assertIn("op", ops)
        self.assertGreaterEqual(ops["op"].jobs, 1)
        self.assertGreater(ops["op"].earned, 0)
        for ks in d.kinds:
            self.assertIsInstance(ks, quarry.KindStat)
            self.assertGreaterEqual(ks.queued, 0)
        self.assertEqual(c.balance("op").earned, ops["op"].earned)

    def test_insufficient_funds(self):
        c = self.client("py-poor")
        with self.assertRaises(quarry.InsufficientFunds) as cm:
            c.gemm_submit(M, N, K, A_VALUES, B_VALUES, max_price=1000)
        e = cm.exception
        self.assertEqual(e.code, quarry.ErrorCode.EFUNDS)
        self.assertEqual(e.name, "QUARRY_EFUNDS")
        # the broker's own message, as quarry_client_last_error gives it
        self.assertIn("short of the job's max_price 1000", e.message)
        self.assertEqual(e.message, c.last_error)
        self.assertIn(e.message, str(e))
        self.assertEqual(c.balance().reserved, 0)

    def test_unknown_job_not_found(self):
        c = self.client("py-nf")
        for call in (c.status, c.cancel, c.result):
            with self.assertRaises(quarry.NotFound) as cm:
                call(987654321)
            self.assertEqual(cm.exception.code, quarry.ErrorCode.ENOTFOUND)
            self.assertNotEqual(cm.exception.message, "")

    def test_cancel_of_settled_job_is_state_error(self):
        c = self.funded("py-cancel")
        job_id, info = self.run_job(c)
        self.assertEqual(info.state, "settled")
        with self.assertRaises(quarry.StateError) as cm:
            c.cancel(job_id)
        self.assertEqual(cm.exception.code, quarry.ErrorCode.ESTATE)
        self.assertEqual(c.status(job_id).state, "settled")

    def test_timeout_cancel_and_cancelled_outcome(self):
        c = self.funded("py-gpu")
        # no GPU worker: the job stays queued
        job_id, _, _ = c.gemm_submit(M, N, K, A_VALUES, B_VALUES, max_price=5000, need_gpu=True)
        with self.assertRaises(quarry.Timeout) as cm:
            c.wait(job_id, 300)
        self.assertIsNotNone(cm.exception.info)
        self.assertEqual(cm.exception.info.job_id, job_id)
        self.assertFalse(cm.exception.info.final)
        with self.assertRaises(quarry.Timeout):
            c.watch(job_id, 200)
        with self.assertRaises(quarry.NotReady):
            c.result(job_id)
        after = c.cancel(job_id)
        self.assertEqual(after.job_id, job_id)
        deadline = time.monotonic() + 10
        while c.status(job_id).state != "cancelled" and time.monotonic() < deadline:
            time.sleep(0.05)
        with self.assertRaises(quarry.JobCancelled) as cm:
            c.wait(job_id, 5000)
        self.assertIsInstance(cm.exception, quarry.JobFailed)
        self.assertEqual(cm.exception.code, quarry.ErrorCode.ECANCELLED)
        self.assertEqual(cm.exception.info.state, "cancelled")
        with self.assertRaises(quarry.StateError):
            c.cancel(job_id)
        self.assertEqual(c.balance().reserved, 0)

    def test_idempotent_resubmit(self):
        c = self.funded("py-idem")
        key = "py-idem-%d" % random.randrange(1 << 30)
        id1, res1, dup1 = c.gemm_submit(M, N, K, A_VALUES, B_VALUES, max_price=5000,
                                        idem_key=key)
        id2, res2, dup2 = c.gemm_submit(M, N, K, A_VALUES, B_VALUES, max_price=5000,
                                        idem_key=key)
        self.assertFalse(dup1)
        self.assertEqual(res1, 5000)
        self.assertTrue(dup2)
        self.assertEqual(id2, id1)
        self.assertEqual(res2, 0)
        self.assertEqual(c.wait(id1, 30000).state, "settled")
        id3, _, dup3 = c.gemm_submit(M, N, K, A_VALUES, B_VALUES, max_price=5000,
                                     idem_key=key + "-other")
        self.assertFalse(dup3)
        self.assertNotEqual(id3, id1)
        c.wait(id3, 30000)

    def test_argument_errors(self):
        c = self.funded("py-args")
        with self.assertRaises(quarry.InvalidArgument):  # A the wrong size
            c.gemm_submit(M, N, K, A_VALUES[:-1], B_VALUES, max_price=5000)
        with self.assertRaises(quarry.InvalidArgument):  # zero dimension, from the library
            c.gemm_submit(0, N, K, [], B_VALUES, max_price=5000)
        with self.assertRaises(quarry.TooBig):  # over QUARRY_GEMM_MAX_DIM, from the library
            c.gemm_submit(quarry.GEMM_MAX_DIM + 1, 1, 1, [1.0], [1.0], max_price=5000)
        with self.assertRaises(TypeError):
            c.gemm_submit(M, N, K, array("d", A_VALUES), B_VALUES)
        with self.assertRaises(TypeError):
            c.gemm_submit(3.0, N, K, A_VALUES, B_VALUES)
        with self.assertRaises(quarry.TooBig):
            c.gemm_submit(1 << 33, 1, 1, [1.0], [1.0])
        self.assertEqual(c.balance().reserved, 0)

    def test_close_and_context_manager(self):
        with self.mp.client("py-close") as c:
            self.assertFalse(c.closed)
            c.balance()
        self.assertTrue(c.closed)
        c.close()  # idempotent
        with self.assertRaises(ValueError):
            c.balance()
        self.assertEqual(c.last_error, "")
        self.assertEqual(c.account_id, 0)


if __name__ == "__main__":
    unittest.main()
