#!/usr/bin/env python3
"""Write small random-weight GGUF models of each architecture Halyard runs, for the
architecture tests (tests/e2e/arch_logits_test.cpp) and their llama.cpp reference
(scripts/record-arch-reference.py).

Every model has the default model's tokenizer (SmolLM2-135M-Instruct.Q4_1.gguf: its
tokenizer.* metadata copied), f32 weights drawn from a fixed seed, so the files are the same
byte for byte on every run and machine (numpy's default_rng is stable across versions), and
the shapes exercise what each architecture adds:

  llama31-rope-freqs.gguf  llama, rope_freqs.weight (Llama 3.1's frequency factors), untied output
  llama-head-dim.gguf      llama, attention.key_length 24 != embedding 64 / 4 heads (Mistral-Nemo style)
  qwen2.gguf               qwen2: Q/K/V biases, NeoX RoPE
  qwen3.gguf               qwen3: per-head Q/K RMS norms, key_length 32, NeoX RoPE, untied output
  gemma3.gguf              gemma3: scaled embeddings, pre and post norms, Q/K norms, GEGLU,
                           sliding window 4 on layers 0-4 and 6 (layer 5 global), two rope bases

Uses only the PyPI packages `gguf` (tested with gguf==0.19.0) and numpy (tested with 2.4.6).

Usage:
  python3 scripts/make-arch-test-models.py --out-dir DIR [--source PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf]

The source defaults to $HALYARD_TEST_MODEL, else ~/.cache/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf.
"""

import argparse
import os
from pathlib import Path

import sys

try:
    import numpy as np
    import gguf
    from gguf import GGUFValueType as VT
except ImportError as e:  # the CTest fixture reads 77 as skipped
    print(f"skipped: {e}; use a Python with the gguf and numpy packages (pip install gguf numpy)", file=sys.stderr)
    sys.exit(77)

SOURCE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

# name -> (architecture, hyper-parameters); d 64, 4 heads, 2 KV heads unless said.
MODELS = {
    "llama31-rope-freqs": dict(arch="llama", layers=2, d=64, ff=96, heads=4, kv=2, head_dim=None,
                               rope_base=500000.0, rope_freqs=True, tied=False),
    "llama-head-dim": dict(arch="llama", layers=2, d=64, ff=96, heads=4, kv=2, head_dim=24,
                           rope_base=10000.0, tied=True),
    "qwen2": dict(arch="qwen2", layers=2, d=64, ff=96, heads=4, kv=2, head_dim=None, rope_base=1000000.0,
                  biases=True, tied=True),
    "qwen3": dict(arch="qwen3", layers=2, d=64, ff=96, heads=4, kv=2, head_dim=32, rope_base=1000000.0,
                  qk_norm=True, tied=False),
    "gemma3": dict(arch="gemma3", layers=7, d=64, ff=96, heads=4, kv=1, head_dim=32, rope_base=1000000.0,
                   qk_norm=True, post_norms=True, window=4, rope_base_swa=10000.0, tied=True, eps=1e-6),
}


def copy_tokenizer(reader, w):
    for field in reader.fields.values():
        if not field.name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == VT.ARRAY else None
        w.add_key_value(field.name, field.contents(), vtype, sub_type=sub_type)
    return int(len(reader.fields["tokenizer.ggml.tokens"].data))


def write_model(name, spec, reader, out_dir, seed):
    rng = np.random.default_rng(seed)
    arch, d, ff, heads, kv = spec["arch"], spec["d"], spec["ff"], spec["heads"], spec["kv"]
    hd = spec["head_dim"] or d // heads
    path = Path(out_dir) / f"{name}.gguf"
    tmp = path.with_name(path.name + ".tmp")
    w = gguf.GGUFWriter(tmp, arch)
    w.add_name(f"halyard-arch-test-{name}")
    w.add_block_count(spec["layers"])
    w.add_context_length(2048)
    w.add_embedding_length(d)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_rope_freq_base(spec["rope_base"])
    w.add_layer_norm_rms_eps(spec.get("eps", 1e-5))
    if spec["head_dim"]:
        w.add_key_length(hd)
        w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    if "window" in spec:
        w.add_sliding_window(spec["window"])
        w.add_key_value(f"{arch}.rope.freq_base_swa", spec["rope_base_swa"], VT.FLOAT32)
    w.add_file_type(int(gguf.LlamaFileType.ALL_F32))
    vocab = copy_tokenizer(reader, w)

    def mat(rows, cols, std=None):
        # GGUF ne = [cols(in), rows(out)]: numpy shape (out, in).
        s = std if std is not None else 1.0 / np.sqrt(cols)
        return (rng.standard_normal((rows, cols)) * s).astype(np.float32)

    def vec(n, center=1.0, spread=0.1):
        return (center + spread * rng.standard_normal(n)).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(vocab, d, std=1.0 if arch != "gemma3" else 0.15))
    w.add_tensor("output_norm.weight", vec(d))
    if not spec["tied"]:
        w.add_tensor("output.weight", mat(vocab, d))
    if spec.get("rope_freqs"):
        # Llama 3.1's shape: 1 for the fast pairs, growing to 8 for the slowest.
        w.add_tensor("rope_freqs.weight", np.sort(rng.uniform(1.0, 8.0, hd // 2)).astype(np.float32))
    for l in range(spec["layers"]):
        p = f"blk.{l}."
        w.add_tensor(p + "attn_norm.weight", vec(d))
        w.add_tensor(p + "attn_q.weight", mat(hd * heads, d))
        w.add_tensor(p + "attn_k.weight", mat(hd * kv, d))
        w.add_tensor(p + "attn_v.weight", mat(hd * kv, d))
        if spec.get("biases"):
            w.add_tensor(p + "attn_q.bias", vec(hd * heads, 0.0, 0.5))
            w.add_tensor(p + "attn_k.bias", vec(hd * kv, 0.0, 0.5))
            w.add_tensor(p + "attn_v.bias", vec(hd * kv, 0.0, 0.5))
        if spec.get("qk_norm"):
            w.add_tensor(p + "attn_q_norm.weight", vec(hd))
            w.add_tensor(p + "attn_k_norm.weight", vec(hd))
        w.add_tensor(p + "attn_output.weight", mat(d, hd * heads))
        if spec.get("post_norms"):
            w.add_tensor(p + "post_attention_norm.weight", vec(d))
        w.add_tensor(p + "ffn_norm.weight", vec(d))
        w.add_tensor(p + "ffn_gate.weight", mat(ff, d))
        w.add_tensor(p + "ffn_up.weight", mat(ff, d))
        w.add_tensor(p + "ffn_down.weight", mat(d, ff))
        if spec.get("post_norms"):
            w.add_tensor(p + "post_ffw_norm.weight", vec(d))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, path)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", required=True)
    default_source = os.environ.get("HALYARD_TEST_MODEL") or str(Path.home() / ".cache/halyard/models" / SOURCE_NAME)
    ap.add_argument("--source", default=default_source, help="a GGUF whose tokenizer the models get")
    ap.add_argument("--only", default="", help="comma-separated model names (default: all)")
    args = ap.parse_args()
    if not Path(args.source).exists():
        print(f"skipped: no source model {args.source} (scripts/fetch-model.sh)", file=sys.stderr)
        sys.exit(77)
    reader = gguf.GGUFReader(args.source)
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    names = [n for n in args.only.split(",") if n] or list(MODELS)
    for i, name in enumerate(MODELS):
        if name in names:
            print(write_model(name, MODELS[name], reader, args.out_dir, seed=1000 + i))


if __name__ == "__main__":
    main()
