"""ai.infer through the whole system, checked against numpy.

A model is written here as a safetensors file (weights in F32, F16 and BF16,
as PyTorch exports them) plus a JSON graph; its expected output is computed
independently with numpy in float64 from the same file's values.  The model
is uploaded through the Python binding, run by a real quarry-worker, checked
layer by layer by a real quarry-broker, and the result compared.  The `quarry`
CLI runs the same job when QUARRY_CLI_BIN is set (tests/python.cmake).

Skipped without numpy (Debian: python3-numpy) or without a broker to start.
"""

import json
import os
import struct
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

import test_quarry  # noqa: E402  (Marketplace, child_env)


def bf16_bits(x):
    """float32 array -> bfloat16 bit patterns (round to nearest even)."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return b.astype(np.uint16)


def bf16_values(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, tensors):
    """tensors: name -> (dtype string, numpy array of the stored type)."""
    header, blobs, off = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)  # aligned data, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def layernorm(x, w, b, eps=1e-5):
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@unittest.skipIf(np is None, "numpy is not installed (Debian: python3-numpy)")
class TestInferNumpy(unittest.TestCase):
    mp = None

    @classmethod
    def setUpClass(cls):
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
        rng = np.random.default_rng(20261123)
        V, D, H, O = 50, 32, 64, 12
        emb = (rng.standard_normal((V, D)) * 0.5).astype(np.float32)
        fc1_w = (rng.standard_normal((H, D)) * 0.2).astype(np.float16)
        fc1_b = (rng.standard_normal(H) * 0.1).astype(np.float16)
        fc2_w = bf16_bits(rng.standard_normal((D, H)) * 0.2)
        ln_w = (1.0 + rng.standard_normal(D) * 0.1).astype(np.float32)
        ln_b = (rng.standard_normal(D) * 0.1).astype(np.float32)
        head_w = (rng.standard_normal((O, D)) * 0.3).astype(np.float32)
        head_b = (rng.standard_normal(O) * 0.1).astype(np.float32)
        cls.weights = os.path.join(mp.logdir, "model.safetensors")
        write_safetensors(cls.weights, {
            "tok.weight": ("F32", emb), "fc1.weight": ("F16", fc1_w), "fc1.bias": ("F16", fc1_b),
            "fc2.weight": ("BF16", fc2_w), "ln.weight": ("F32", ln_w), "ln.bias": ("F32", ln_b),
            "head.weight": ("F32", head_w), "head.bias": ("F32", head_b)})
        graph = {"input": 1, "layers": [
            {"op": "embedding", "weight": "tok.weight"},
            {"op": "dense", "weight": "fc1.weight", "bias": "fc1.bias"},
            {"op": "gelu"},
            {"op": "dense", "weight": "fc2.weight"},
            {"op": "residual", "from": 0},
            {"op": "layernorm", "weight": "ln.weight", "bias": "ln.bias", "eps": 1e-5},
            {"op": "dense", "weight": "head.weight", "bias": "head.bias"},
            {"op": "relu"},
            {"op": "softmax"}]}
        cls.graph = os.path.join(mp.logdir, "graph.json")
        with open(cls.graph, "w") as f:
            json.dump(graph, f)
        # the reference, in float64 from exactly the stored values
        P = {k: v.astype(np.float64) for k, v in {
            "emb": emb, "fc1_w": fc1_w.astype(np.float32), "fc1_b": fc1_b.astype(np.float32),
            "fc2_w": bf16_values(fc2_w), "ln_w": ln_w, "ln_b": ln_b, "head_w": head_w,
            "head_b": head_b}.items()}

        def forward(ids):
            e = P["emb"][ids]
            h = gelu(e @ P["fc1_w"].T + P["fc1_b"])
            r = h @ P["fc2_w"].T + e
            n = layernorm(r, P["ln_w"], P["ln_b"])
            return softmax(np.maximum(n @ P["head_w"].T + P["head_b"], 0.0))
        cls.forward = staticmethod(forward)
        cls.V, cls.O = V, O

    def test_matches_numpy(self):
        c = self.mp.client("np-user")
        self.addCleanup(c.close)
        with self.mp.client("py-admin") as admin:
            admin.deposit("np-user", 10 ** 9)
        wsha, wsize = c.upload(self.weights)
        gsha, _ = c.upload(self.graph)
        self.assertEqual(len(wsha), 64)
        self.assertEqual(wsize, os.path.getsize(self.weights))
        self.assertEqual(c.upload(self.weights), (wsha, wsize))  # idempotent
        rng = np.random.default_rng(7)
        jobs = []
        for rows in (1, 5, 33):
            ids = rng.integers(0, self.V, rows)
            x = ids.astype(np.float32)
            jid, _, _ = c.infer_submit(wsha, gsha, rows, x)
            jobs.append((jid, ids, rows))
        for jid, ids, rows in jobs:
            info = c.wait(jid, 60000)
            self.assertEqual((info.m, info.n, info.k), (rows, self.O, 1))
            got = np.frombuffer(c.result(jid).tobytes(), dtype=np.float32).reshape(rows, self.O)
            want = self.forward(ids)
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)
            np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)

    def test_bad_token_id_and_bad_model(self):
        c = self.mp.client("np-user2")
        self.addCleanup(c.close)
        with self.mp.client("py-admin") as admin:
            admin.deposit("np-user2", 10 ** 9)
        wsha, _ = c.upload(self.weights)
        gsha, _ = c.upload(self.graph)
        for ids in ([float(self.V)], [-1.0], [2.5], [float("nan")]):
            with self.assertRaises(test_quarry.quarry.InvalidArgument) as cm:
                c.infer_submit(wsha, gsha, 1, np.array(ids, np.float32))
            self.assertRegex(cm.exception.message, "token id|finite")
        bad = os.path.join(self.mp.logdir, "bad.json")
        with open(bad, "w") as f:
            json.dump({"input": 1, "layers": [{"op": "embedding", "weight": "nope"}]}, f)
        bsha, _ = c.upload(bad)
        with self.assertRaises(test_quarry.quarry.InvalidArgument) as cm:
            c.infer_submit(wsha, bsha, 1, np.zeros(1, np.float32))
        self.assertIn("nope", cm.exception.message)

    def test_cli(self):
        cli = os.environ.get("QUARRY_CLI_BIN")
        if not cli:
            self.skipTest("QUARRY_CLI_BIN not set")
        with self.mp.client("py-admin") as admin:
            admin.deposit("np-cli", 10 ** 9)
        ids = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.int64)
        inp = os.path.join(self.mp.logdir, "ids.f32")
        out = os.path.join(self.mp.logdir, "out.f32")
        ids.astype("<f4").tofile(inp)
        base = [cli, "--broker", self.mp.endpoint, "--account", "np-cli", "--timeout-ms", "20000"]
        up = subprocess.run(base + ["upload", self.weights], capture_output=True, text=True,
                            env=test_quarry.child_env(), timeout=120)
        self.assertEqual(up.returncode, 0, up.stderr)
        self.assertRegex(up.stdout, r"^[0-9a-f]{64}  ")
        run = subprocess.run(base + ["infer", "--weights", up.stdout.split()[0], "--graph",
                                     self.graph, "--input", inp, "--rows", "8", "--wait",
                                     "--out", out],
                             capture_output=True, text=True, env=test_quarry.child_env(),
                             timeout=120)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        got = np.fromfile(out, dtype="<f4").reshape(8, self.O)
        np.testing.assert_allclose(got, self.forward(ids), rtol=2e-4, atol=2e-6)
        # a wrong flag is a usage error (exit 2) with a message, before any connection
        bad = subprocess.run(base + ["infer", "--weights", self.weights, "--rows", "8"],
                             capture_output=True, text=True, env=test_quarry.child_env(),
                             timeout=60)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--input", bad.stderr)


if __name__ == "__main__":
    unittest.main()
