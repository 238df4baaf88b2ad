#!/usr/bin/env python3
"""Developer check, not run by CI (CI has no llama.cpp): the quantization error of hal's
quantize_row against llama.cpp's quantizers (ggml_quantize_chunk without an importance matrix)
on the same weights, both decoded by ggml's own to_float, and whether the bytes agree.

  python3 scripts/compare-quantizers-llama.py [--ggml /work/llama-build/bin/libggml-base.so]
                                              [--hal build/ci/bin] [--rows 64] [--cols 4096]
                                              [--gguf MODEL.gguf [--blocks-per-tensor N]]
                                              [--types q2_k,q3_k,q4_k,q5_k,q6_k,iq4_nl,iq4_xs]

The weights are N(0, 1) (rows x cols, seed 5), or with --gguf a model's weight matrices (every
tensor of two or more dimensions, decoded to f32 by gguf-py), each flattened into rows of 256
(the K-quants and ggml's quantizers without an importance matrix treat every 256 weights on
their own, so a row width that is no multiple of 256, like SmolLM2's 576, costs nothing), the
first N super-blocks of each where --blocks-per-tensor is given. gguf-py comes from llama.cpp's
tree or the `gguf` package.

Needs numpy, g++ (it compiles a 20-line helper against hal's header and libhalyard-hal.so into
a temporary directory) and a llama.cpp build's libggml-base.so. The K-quants' NMSE must stay
at or below llama.cpp's per format (issue 15; KQuantQuality in tests/unit/hal/kquant_test.cpp
holds it there on synthetic weights): this shows where it stands on real ones."""
import argparse
import ctypes
import os
import subprocess
import tempfile

import numpy as np

HELPER = r"""
#include <cstdio>
#include <string>
#include <vector>
#include "halyard/hal/dtype.h"
int main(int, char** argv) {  // TYPE_ID N in.f32 out.bin
  auto info = halyard::dtype_info(static_cast<std::uint32_t>(std::stoi(argv[1])));
  long n = std::stol(argv[2]);
  std::vector<float> x(n);
  FILE* f = std::fopen(argv[3], "rb");
  if (!f || std::fread(x.data(), 4, n, f) != static_cast<size_t>(n)) return 1;
  std::fclose(f);
  std::vector<unsigned char> q(halyard::row_bytes(info->dtype, n));
  halyard::quantize_row(info->dtype, x.data(), q.data(), n);
  f = std::fopen(argv[4], "wb");
  std::fwrite(q.data(), 1, q.size(), f);
  std::fclose(f);
}
"""
TYPES = [("q4_0", 2), ("q8_0", 8), ("q5_0", 6), ("q5_1", 7), ("q2_k", 10), ("q3_k", 11), ("q4_k", 12),
         ("q5_k", 13), ("q6_k", 14), ("iq4_nl", 20), ("iq4_xs", 23)]


class Traits(ctypes.Structure):  # ggml.h, struct ggml_type_traits
    _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p), ("from_float_ref", ctypes.c_void_p)]


def model_weights(path, blocks_per_tensor):
    from gguf import GGUFReader
    from gguf.quants import dequantize
    parts, tensors, total = [], 0, 0
    for t in GGUFReader(path).tensors:
        if len(t.shape) < 2 or int(t.n_elements) % 256:
            continue
        w = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(-1)
        total += w.size
        if blocks_per_tensor:
            w = w[:256 * blocks_per_tensor]
        parts.append(w)
        tensors += 1
    x = np.ascontiguousarray(np.concatenate(parts))
    sample = f"the first {blocks_per_tensor} super-blocks of each" if blocks_per_tensor else "all of them"
    return x, (f"{os.path.basename(path)}: {tensors} weight tensors ({total} weights), {sample}: "
               f"{x.size} weights")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--ggml", default="/work/llama-build/bin/libggml-base.so")
    ap.add_argument("--hal", default=os.path.join(root, "build/ci/bin"))
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--types", default=",".join(name for name, _ in TYPES),
                    help="comma-separated formats to compare (default: all)")
    ap.add_argument("--gguf", help="measure on this model's weight matrices instead of N(0, 1)")
    ap.add_argument("--blocks-per-tensor", type=int, default=0, help="with --gguf: at most this many "
                    "super-blocks of 256 from each tensor (0: all)")
    a = ap.parse_args()
    ggml = ctypes.CDLL(a.ggml)
    ggml.ggml_get_type_traits.restype = ctypes.POINTER(Traits)
    ggml.ggml_quantize_chunk.restype = ctypes.c_size_t
    ggml.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                         ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    to_float_t = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
    if a.gguf:
        x, what = model_weights(a.gguf, a.blocks_per_tensor)
        rows, cols = x.size // 256, 256
    else:
        x = np.random.default_rng(5).normal(size=a.rows * a.cols).astype(np.float32)
        what = f"N(0, 1) weights, {a.rows} rows of {a.cols}"
        rows, cols = a.rows, a.cols
    n = x.size
    with tempfile.TemporaryDirectory() as tmp:
        helper = os.path.join(tmp, "hal_quantize")
        with open(helper + ".cpp", "w") as f:
            f.write(HELPER)
        subprocess.run(["g++", "-std=c++20", "-O2", "-I" + os.path.join(root, "hal/include"), helper + ".cpp",
                        "-L" + a.hal, "-lhalyard-hal", "-Wl,-rpath," + a.hal, "-o", helper], check=True)
        x.tofile(os.path.join(tmp, "in.f32"))
        print(f"{what}; NMSE = sum (x - y)^2 / sum x^2, RMSE = sqrt(mean (x - y)^2)")
        print("| type | hal NMSE | llama.cpp NMSE | ratio | hal RMSE | llama.cpp RMSE | same bytes |")
        print("|---|---|---|---|---|---|---|")
        for name, t in [(name, t) for name, t in TYPES if name in a.types.split(",")]:
            tr = ggml.ggml_get_type_traits(t).contents
            out = os.path.join(tmp, name + ".bin")
            subprocess.run([helper, str(t), str(n), os.path.join(tmp, "in.f32"), out], check=True)
            ours = open(out, "rb").read()
            dst = ctypes.create_string_buffer(n // tr.blck_size * tr.type_size)
            ggml.ggml_quantize_chunk(t, x.ctypes.data, dst, 0, rows, cols, None)
            theirs = dst.raw

            def sq_err(q):
                buf = ctypes.create_string_buffer(q, len(q))
                y = np.zeros(n, np.float32)
                to_float_t(tr.to_float)(ctypes.addressof(buf), y.ctypes.data, n)
                return float(((y - x).astype(np.float64) ** 2).sum())

            norm = float((x.astype(np.float64) ** 2).sum())
            e_ours, e_theirs = sq_err(ours), sq_err(theirs)
            ratio = f"{e_ours / e_theirs:.3f}" if e_theirs > 0 else ("1 (both exact)" if e_ours == 0 else "inf")
            print(f"| {name} | {e_ours / norm:.3e} | {e_theirs / norm:.3e} | {ratio} | "
                  f"{np.sqrt(e_ours / n):.4e} | {np.sqrt(e_theirs / n):.4e} | {ours == theirs} |")


if __name__ == "__main__":
    main()
