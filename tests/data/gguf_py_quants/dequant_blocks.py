"""Writes dequant_blocks.json: block bytes of every GGUF block format Halyard reads, and what the
`gguf` Python package (gguf-py, the ggml project's own numpy implementation,
gguf.quants.dequantize) makes of them, as float32 bit patterns. `GgufPyDequant.SameFloats` in
tests/unit/hal/kquant_test.cpp requires hal's dequantize_row to give the same bits: an oracle
written independently of hal/src/kquants.cpp.

Each type gets 8 blocks: random bytes whose f16 scale fields are replaced by finite values of
several magnitudes and both signs (random bytes there would give NaN and infinity, whose
payloads are not the point), one all-zero-quants block and one all-ones-bits block (with finite
scales), and one with a subnormal f16 scale.

Made with (the venv is not committed; see README.md here):
  python3 -m venv /tmp/venv-gguf && /tmp/venv-gguf/bin/pip install gguf==0.19.0   # numpy 2.4.6 came with it
  cd tests/data/gguf_py_quants && /tmp/venv-gguf/bin/python dequant_blocks.py
"""
import json

from importlib.metadata import version

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

# Byte offsets of each type's f16 fields (scale d, and minimum or dmin): ggml-common.h layouts.
F16_FIELDS = {
    "q4_0": (T.Q4_0, [0]),
    "q4_1": (T.Q4_1, [0, 2]),
    "q5_0": (T.Q5_0, [0]),
    "q5_1": (T.Q5_1, [0, 2]),
    "q8_0": (T.Q8_0, [0]),
    "q2_k": (T.Q2_K, [80, 82]),
    "q3_k": (T.Q3_K, [108]),
    "q4_k": (T.Q4_K, [0, 2]),
    "q5_k": (T.Q5_K, [0, 2]),
    "q6_k": (T.Q6_K, [208]),
    # Appended after the others so their random draws, and so their blocks, stay as they were.
    "iq4_nl": (T.IQ4_NL, [0]),
    "iq4_xs": (T.IQ4_XS, [0]),
}

rng = np.random.default_rng(20261201)
out = {"generator": "gguf " + version("gguf") + ", numpy " + np.__version__, "types": {}}
for name, (qtype, fields) in F16_FIELDS.items():
    elements, block_bytes = quants.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(8, block_bytes), dtype=np.uint8)
    blocks[5, :] = 0
    blocks[6, :] = 0xFF
    for b in range(8):
        for k, off in enumerate(fields):
            if b == 7 and k == 0:
                v = np.float16(3.0e-6)  # subnormal in f16
            else:
                v = np.float16(rng.choice([-1.0, 1.0]) * 10.0 ** rng.uniform(-4, 1))
            blocks[b, off:off + 2] = np.frombuffer(v.tobytes(), dtype=np.uint8)
    values = quants.dequantize(blocks.reshape(-1), qtype).astype(np.float32)
    assert values.size == 8 * elements
    out["types"][name] = {
        "block_elements": int(elements),
        "block_bytes": int(block_bytes),
        "blocks_hex": [bytes(blk).hex() for blk in blocks],
        "f32_bits": [int(u) for u in values.view(np.uint32)],
    }
with open("dequant_blocks.json", "w") as f:
    json.dump(out, f, separators=(",", ":"))
    f.write("\n")
