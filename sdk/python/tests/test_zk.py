"""zk.groth16 through the Python binding against a real broker and worker.

The proving key, witness and public signals come from snarkjs
(tests/scripts/zk_fixtures.sh, run by the zk_fixtures test; QR_ZK_FIXTURES
names the folder).  Skipped without them or without a broker to start.
"""

import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import test_quarry  # noqa: E402  (Marketplace)

FIXTURES = os.environ.get("QR_ZK_FIXTURES", "")


def fixture(circuit, name):
    return os.path.join(FIXTURES, circuit, name)


@unittest.skipUnless(FIXTURES and os.path.exists(os.path.join(FIXTURES, "tools")),
                     "no snarkjs fixtures (QR_ZK_FIXTURES)")
class TestZk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # the tools are there, so the setup ran: a missing key is a failure
        if not os.path.exists(fixture("mul100", "circuit.zkey")):
            raise AssertionError("%s is missing although the snarkjs tools are installed"
                                 % fixture("mul100", "circuit.zkey"))
        mp = test_quarry.Marketplace()
        why = mp.missing()
        if why:
            raise unittest.SkipTest(why)
        cls.addClassCleanup(__import__("shutil").rmtree, mp.logdir, True)
        cls.addClassCleanup(mp.stop)
        try:
            mp.start()
        except Exception:
            sys.stderr.write(mp.logs() + "\n")
            raise
        cls.mp = mp

    def test_proof_and_public_signals(self):
        c = self.mp.client("zk-user")
        self.addCleanup(c.close)
        with self.mp.client("py-admin") as admin:
            admin.deposit("zk-user", 10 ** 9)
        zsha, _ = c.upload(fixture("mul100", "circuit.zkey"))
        with open(fixture("mul100", "witness.wtns"), "rb") as f:
            wtns = f.read()
        job, _, _ = c.zk_submit(zsha, wtns)
        info = c.wait(job, 120000)
        with open(fixture("mul100", "public.json")) as f:
            public = [int(x) for x in json.load(f)]
        self.assertEqual(info.n, len(public))
        res = c.result_bytes(job)
        self.assertEqual(len(res), 256 + 32 * len(public))
        got = [int.from_bytes(res[256 + 32 * i:288 + 32 * i], "big") for i in range(len(public))]
        self.assertEqual(got, public)
        # a witness of the wrong length is refused at submit
        with open(fixture("pow5_1000", "witness.wtns"), "rb") as f:
            other = f.read()
        with self.assertRaises(test_quarry.quarry.InvalidArgument):
            c.zk_submit(zsha, other)

    def test_cli_prove_writes_snarkjs_json(self):
        cli = os.environ.get("QUARRY_CLI_BIN")
        if not cli:
            self.skipTest("QUARRY_CLI_BIN not set")
        with self.mp.client("py-admin") as admin:
            admin.deposit("zk-cli", 10 ** 9)
        proof = os.path.join(self.mp.logdir, "proof.json")
        public = os.path.join(self.mp.logdir, "public.json")
        base = [cli, "--broker", self.mp.endpoint, "--account", "zk-cli", "--timeout-ms", "60000"]
        run = subprocess.run(base + ["prove", "--zkey", fixture("pow5_1000", "circuit.zkey"),
                                     "--wtns", fixture("pow5_1000", "witness.wtns"), "--wait",
                                     "--proof", proof, "--public", public],
                             capture_output=True, text=True, env=test_quarry.child_env(),
                             timeout=300)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        # public.json byte for byte as snarkjs wrote it for the same witness
        with open(public) as f, open(fixture("pow5_1000", "public.json")) as g:
            self.assertEqual(f.read(), g.read())
        verify = os.environ.get("QR_ZK_VERIFY_BIN")
        if verify:
            v = subprocess.run([verify, fixture("pow5_1000", "verification_key.json"), public,
                                proof], capture_output=True, text=True,
                               env=test_quarry.child_env(), timeout=60)
            self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # --wtns missing: a usage error before any connection
        bad = subprocess.run(base + ["prove", "--zkey", fixture("pow5_1000", "circuit.zkey")],
                             capture_output=True, text=True, env=test_quarry.child_env(),
                             timeout=60)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--wtns", bad.stderr)


if __name__ == "__main__":
    unittest.main()
