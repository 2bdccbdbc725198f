#!/usr/bin/env python3
"""Writes an example ai.infer model for the local marketplace (deploy/local.sh):

  OUT/mlp.safetensors  weights of a small transformer-style MLP block and a
                       classifier head (fixed seed), in the safetensors format
                       PyTorch and Hugging Face write
  OUT/mlp.json         its graph (docs/model.md)
  OUT/input.f32        ROWS input rows, raw little-endian float32

Usage: make-model.py OUT [ROWS]    (needs numpy: Debian python3-numpy)
"""
import json
import os
import struct
import sys

import numpy as np


def main():
    out = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(2026)
    d, h, classes = 256, 1024, 10
    tensors = {
        "ln.weight": np.ones(d, np.float32), "ln.bias": np.zeros(d, np.float32),
        "fc1.weight": (rng.standard_normal((h, d)) / np.sqrt(d)).astype(np.float16),
        "fc1.bias": np.zeros(h, np.float16),
        "fc2.weight": (rng.standard_normal((d, h)) / np.sqrt(h)).astype(np.float16),
        "fc2.bias": np.zeros(d, np.float16),
        "head.weight": (rng.standard_normal((classes, d)) / np.sqrt(d)).astype(np.float32),
        "head.bias": np.zeros(classes, np.float32),
    }
    header, off, blobs = {}, 0, []
    for name, a in tensors.items():
        raw = a.tobytes()
        header[name] = {"dtype": "F16" if a.dtype == np.float16 else "F32",
                        "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hdr = json.dumps(header).encode()
    hdr += b" " * (-len(hdr) % 8)
    with open(os.path.join(out, "mlp.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + b"".join(blobs))
    graph = {"input": d, "layers": [
        {"op": "layernorm", "weight": "ln.weight", "bias": "ln.bias"},
        {"op": "dense", "weight": "fc1.weight", "bias": "fc1.bias"},
        {"op": "gelu"},
        {"op": "dense", "weight": "fc2.weight", "bias": "fc2.bias"},
        {"op": "residual", "from": -1},
        {"op": "dense", "weight": "head.weight", "bias": "head.bias"},
        {"op": "softmax"}]}
    with open(os.path.join(out, "mlp.json"), "w") as f:
        json.dump(graph, f, indent=1)
    rng.standard_normal((rows, d)).astype("<f4").tofile(os.path.join(out, "input.f32"))


if __name__ == "__main__":
    main()
