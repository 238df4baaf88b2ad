#!/usr/bin/env python3
"""Developer check, not run by CI: the quantization error of GGUF files against the file they
were quantized from, over every weight matrix both hold (tensors of two or more dimensions),
each decoded to f32 by gguf-py. Prints per file the NMSE (sum (x - y)^2 / sum x^2), the RMSE
(sqrt(mean (x - y)^2)) and the tensors per format. Made to put `halyard quantize` and
`llama-quantize` side by side on the same source:

  python3 scripts/compare-gguf-rmse.py SOURCE.gguf QUANTIZED.gguf [QUANTIZED.gguf ...]

Needs numpy and the `gguf` package (gguf-py)."""
import collections
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def weights(path):
    out = {}
    for t in GGUFReader(path).tensors:
        if len(t.shape) >= 2:
            out[t.name] = (t.tensor_type.name, t)
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    source = weights(sys.argv[1])
    print("| file | NMSE | RMSE | tensors by format |")
    print("|---|---|---|---|")
    for path in sys.argv[2:]:
        err = norm = 0.0
        n = 0
        formats = collections.Counter()
        for name, (fmt, t) in weights(path).items():
            if name not in source:
                continue
            x = np.asarray(dequantize(source[name][1].data, source[name][1].tensor_type), np.float64).reshape(-1)
            y = np.asarray(dequantize(t.data, t.tensor_type), np.float64).reshape(-1)
            err += float(((x - y) ** 2).sum())
            norm += float((x ** 2).sum())
            n += x.size
            formats[fmt] += 1
        fmts = ", ".join(f"{k} {v}" for k, v in sorted(formats.items()))
        print(f"| {path.split('/')[-1]} | {err / norm:.4e} | {np.sqrt(err / n):.4e} | {fmts} |")


if __name__ == "__main__":
    main()
