"""Writes input.f32 (64 blocks of 32 float32 values, little-endian) and what the `gguf` Python
package (gguf-py, the ggml project's own writer) makes of them: q8_0.bin, q4_0.bin, q4_1.bin,
q5_0.bin, q5_1.bin.
tests/unit/hal/dtype_test.cpp checks hal/src/dtype.cpp's quantizers against these bytes, an
oracle independent of the code the reference and the backends share. See README.md here."""
import numpy as np
from gguf import GGMLQuantizationType, quants

rng = np.random.default_rng(20261201)
blocks = rng.normal(0.0, 1.0, size=(64, 32)).astype(np.float32)
blocks[1] *= 1e-3                              # a tiny block (small f16 scale)
blocks[2] = 0.0                                # an all-zero block (scale 0)
blocks[3, 5] = 40.0                            # an outlier sets the scale
blocks[4] = np.arange(-16, 16, dtype=np.float32) * 0.25   # many exact halves (ties) in Q8_0
blocks[5, :] = -3.0                            # constant negative block
blocks[6, 0] = -9.5                            # a negative extreme (Q4_0's sign rule)
blocks[7] = np.linspace(-1.0, 1.0, 32, dtype=np.float32)
x = blocks.reshape(-1)
x.astype("<f4").tofile("input.f32")
for name, qtype in (("q8_0", GGMLQuantizationType.Q8_0), ("q4_0", GGMLQuantizationType.Q4_0),
                    ("q4_1", GGMLQuantizationType.Q4_1), ("q5_0", GGMLQuantizationType.Q5_0),
                    ("q5_1", GGMLQuantizationType.Q5_1)):
    quants.quantize(x.reshape(1, -1), qtype).tofile(name + ".bin")
