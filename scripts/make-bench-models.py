#!/usr/bin/env python3
"""Write the GGUF benchmark models for Halyard (and for llama.cpp side-by-side runs).

Uses only the PyPI packages `gguf` (tested with gguf==0.19.0) and numpy (tested with
numpy==2.4.6): GGUFReader / GGUFWriter for the files, gguf.quants.dequantize / quantize
for the weights. Every file is written as NAME.tmp and renamed when complete.

Models, written into ${HALYARD_MODEL_DIR:-${XDG_CACHE_HOME:-~/.cache}/halyard/models}/bench/
(or --out-dir):

  smollm2-135m-q8_0.gguf   the default model (SmolLM2-135M-Instruct.Q4_1.gguf) re-encoded:
  smollm2-135m-f16.gguf    every Q4_1 / Q8_0 tensor (including token_embd.weight, which is
                           Q8_0 in the source) is dequantized and re-quantized to Q8_0
                           (resp. converted to F16); F32 tensors (the norms) stay F32.
                           All metadata is copied unchanged, in the same order, except
                           general.file_type (7 = LLAMA_FTYPE_MOSTLY_Q8_0, resp.
                           1 = LLAMA_FTYPE_MOSTLY_F16). Same tensor names and order.
                           Note: the Q8_0 file is requantized from Q4_1 weights, so it has
                           Q4_1's accuracy; it exists to measure Q8_0 speed, not quality.

  llama-3.2-1b-shape-q8_0.gguf
                           random weights with the Llama-3.2-1B shape: architecture llama,
                           16 layers, embedding 2048, feed-forward 8192, 32 heads, 8 KV heads,
                           head dim 64, llama.context_length 8192, rope.freq_base 500000,
                           rms eps 1e-5, tied embeddings (no output.weight).
                           Differences from the real Llama-3.2-1B:
                           * the vocabulary is SmolLM2's (49152 tokens: its tokens, token
                             types, merges, pre-tokenizer "smollm", bos/eos ids - every
                             tokenizer.* key is copied from the SmolLM2 model), not Llama-3's
                             128256, so token_embd.weight (= the tied output projection) has
                             49152 rows instead of 128256: the output projection is ~2.6x
                             smaller (100.7M instead of 262.7M weights, ~107 MB instead of
                             ~279 MB in Q8_0), which makes token generation somewhat faster
                             than on the real model;
                           * no rope_freqs.weight (Llama-3 "llama3" RoPE scaling factors) and
                             context length 8192 instead of 131072; neither matters for
                             speed at these context sizes.
                           Weights ~ N(0, 0.02^2) (numpy default_rng, fixed seed 20250101,
                           drawn as float32 in the order the tensors are written), norm
                           weights = 1.0 (F32); every 2-D tensor is Q8_0
                           (general.file_type 7). The output is meaningless text; the model
                           is for speed measurements only.

  llama-3.2-1b-shape-q4_k_m.gguf
                           the same shape and metadata (general.file_type 15 =
                           LLAMA_FTYPE_MOSTLY_Q4_K_M) in the K-quants: Q4_K for most 2-D
                           tensors, Q6_K for token_embd.weight (the tied output projection)
                           and for attn_v / ffn_down in the layers where llama.cpp's Q4_K_M
                           gives them more bits (the first and last eighth, every third in
                           between). gguf-py cannot quantize K-quants, so the blocks are made
                           directly: random quants (numpy default_rng, seed 20250102) under
                           fixed sub-block scales chosen so that each weight is uniform with
                           mean ~0 and standard deviation ~0.02. Valid blocks with
                           meaningless values: for speed measurements only, like the Q8_0 one.

  qwen2-1.5b-shape-q4_k_m.gguf
                           random weights with Qwen2.5-1.5B's shape (HF config.json of
                           Qwen/Qwen2.5-1.5B): architecture qwen2, 28 layers, embedding
                           1536, feed-forward 8960, 12 heads, 2 KV heads, head dim 128,
                           Q/K/V biases (F32), rope.freq_base 1e6 (NeoX RoPE, which qwen2
                           implies), rms eps 1e-6, context 32768, tied embeddings, a
                           vocabulary of 151936 (the embedding's rows in the real model).
                           The K-quants are made as for the 1B Llama shape (seed 20250103),
                           in the same Q4_K_M mix over 28 layers. The tokenizer is made up,
                           not Qwen's: BPE ("gpt2" model, pre "qwen2"), the 256 GPT-2 byte
                           tokens, 8 two-character tokens with their 8 merges, filler
                           tokens "<|filler_N|>" (normal, never produced by the merges) up
                           to id 151642, then Qwen's specials <|endoftext|> (151643, eos),
                           <|im_start|>, <|im_end|> and padding "<|pad_N|>" (control) up to
                           151935. Text tokenizes to bytes and those few pairs: enough for
                           both halyard and llama.cpp to load and run it; speed only.

Usage:
  python3 scripts/make-bench-models.py [--out-dir DIR] [--only {smollm2,1b,1b-q4_k_m,qwen2-1.5b-q4_k_m,all}]
      [--source PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf]

The source model defaults to SmolLM2-135M-Instruct.Q4_1.gguf in the model directory
(see scripts/fetch-model.sh). Prints the path of every model written, one per line, on
stdout; progress goes to stderr. Needs about 3.3 GB of disk for all five files
(qwen2-1.5b-q4_k_m alone does not read the SmolLM2 source).
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

SOURCE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SEED = 20250101
KQUANT_SEED = 20250102
QWEN2_SEED = 20250103
WEIGHT_STD = 0.02

# llama_ftype values (llama.h); gguf.LlamaFileType has the same numbers.
FTYPE = {QT.Q8_0: int(gguf.LlamaFileType.MOSTLY_Q8_0), QT.F16: int(gguf.LlamaFileType.MOSTLY_F16)}
assert FTYPE == {QT.Q8_0: 7, QT.F16: 1}
FTYPE_Q4_K_M = int(gguf.LlamaFileType.MOSTLY_Q4_K_M)
assert FTYPE_Q4_K_M == 15

# Llama-3.2-1B hyperparameters (HF config.json of meta-llama/Llama-3.2-1B), except vocab.
L1B = dict(n_layer=16, n_embd=2048, n_ff=8192, n_head=32, n_head_kv=8, head_dim=64,
           n_ctx=8192, rope_freq_base=500000.0, rms_eps=1e-5)


# Qwen2.5-1.5B hyperparameters (HF config.json of Qwen/Qwen2.5-1.5B).
Q15B = dict(n_layer=28, n_embd=1536, n_ff=8960, n_head=12, n_head_kv=2, head_dim=128,
            n_ctx=32768, rope_freq_base=1000000.0, rms_eps=1e-6, n_vocab=151936)


def log(msg):
    print(f"make-bench-models: {msg}", file=sys.stderr, flush=True)


def default_model_dir():
    if os.environ.get("HALYARD_MODEL_DIR"):
        return Path(os.environ["HALYARD_MODEL_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "halyard" / "models"


def numpy_shape(t):
    """Row-major numpy shape of a GGUFReader tensor (GGUF stores ne0 first)."""
    return tuple(int(d) for d in reversed(t.shape.tolist()))


def out_info(shape, qtype):
    """(shape, dtype, nbytes, raw_dtype) arguments for GGUFWriter.add_tensor_info."""
    n = int(np.prod(shape))
    if qtype == QT.F32:
        return shape, np.dtype(np.float32), 4 * n, None
    if qtype == QT.F16:
        return shape, np.dtype(np.float16), 2 * n, None
    bshape = gguf.quant_shape_to_byte_shape(shape, qtype)
    return bshape, np.dtype(np.uint8), int(np.prod(bshape)), qtype


class StreamingWriter:
    """GGUFWriter used in two passes (tensor infos first, then data one tensor at a time),
    so that no more than one tensor is held in memory. Writes PATH.tmp, renames on close."""

    def __init__(self, path, arch):
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.w = gguf.GGUFWriter(self.tmp, arch)
        self.expected = []  # (name, qtype, nbytes)

    def add_kv(self, key, value, vtype, sub_type=None):
        self.w.add_key_value(key, value, vtype, sub_type=sub_type)

    def add_tensor_info(self, name, shape, qtype):
        s, dt, nbytes, raw = out_info(shape, qtype)
        self.w.add_tensor_info(name, s, dt, nbytes, raw_dtype=raw)
        self.expected.append((name, qtype, nbytes))

    def begin_data(self):
        self.w.write_header_to_file()
        self.w.write_kv_data_to_file()
        self.w.write_ti_data_to_file()
        self.i = 0

    def write(self, name, data):
        exp_name, qtype, nbytes = self.expected[self.i]
        assert name == exp_name and data.nbytes == nbytes, (name, exp_name, data.nbytes, nbytes)
        self.w.write_tensor_data(np.ascontiguousarray(data))
        self.i += 1

    def close(self):
        assert self.i == len(self.expected), "not every tensor was written"
        self.w.close()
        os.replace(self.tmp, self.path)


def copy_field(sw, field, value=None):
    vtype = field.types[0]
    sub_type = field.types[-1] if vtype == VT.ARRAY else None
    sw.add_kv(field.name, field.contents() if value is None else value, vtype, sub_type)


def reencode_smollm2(reader, out_path, target):
    """Re-encode the SmolLM2 model with every quantized tensor converted to `target`."""
    sw = StreamingWriter(out_path, reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
    for field in reader.fields.values():
        # GGUF.* are virtual fields of the reader; general.architecture is added by GGUFWriter.
        if field.name.startswith("GGUF.") or field.name == gguf.Keys.General.ARCHITECTURE:
            continue
        if field.name == gguf.Keys.General.ALIGNMENT:
            sw.w.data_alignment = int(field.contents())
        if field.name == gguf.Keys.General.FILE_TYPE:
            assert field.types == [VT.UINT32], field.types
            copy_field(sw, field, FTYPE[target])
        else:
            copy_field(sw, field)

    plan = []
    for t in reader.tensors:
        if t.tensor_type == QT.F32:
            qtype = QT.F32
        elif t.tensor_type in (QT.Q4_1, QT.Q8_0):
            qtype = target
        else:
            raise SystemExit(f"unexpected tensor type {t.tensor_type.name} for {t.name}")
        plan.append((t, qtype))
        sw.add_tensor_info(t.name, numpy_shape(t), qtype)

    sw.begin_data()
    for t, qtype in plan:
        if qtype == QT.F32:
            data = np.asarray(t.data, dtype=np.float32).reshape(numpy_shape(t))
        else:
            f32 = gguf.dequantize(t.data, t.tensor_type)
            assert f32.shape == numpy_shape(t), (t.name, f32.shape)
            data = gguf.quantize(f32, qtype)
        sw.write(t.name, data)
    sw.close()


def f16_bytes(value):
    """The two little-endian bytes of an f16."""
    return np.array([value], dtype="<f2").view(np.uint8)


def random_kquant(rng, shape, qtype):
    """Random valid Q4_K or Q6_K blocks for a (rows, cols) tensor: random quants under fixed
    scales such that every weight is uniform with mean ~0 and std ~WEIGHT_STD."""
    byte_shape = gguf.quant_shape_to_byte_shape(shape, qtype)
    data = rng.integers(0, 256, size=byte_shape, dtype=np.uint8)
    blocks = data.reshape(-1, gguf.GGML_QUANT_SIZES[qtype][1])
    if qtype == QT.Q4_K:
        # d, dmin (f16), 12 bytes of 6-bit scales and minimums, 128 bytes of nibbles. Every
        # sub-block scale and minimum is 8 (< 16, so the packed high bits are 0):
        # x = 8 d q - 8 dmin with q uniform in 0..15 (std 4.61), mean 0 for dmin = 7.5 d.
        d = WEIGHT_STD / (8 * 4.61)
        blocks[:, 0:2] = f16_bytes(d)
        blocks[:, 2:4] = f16_bytes(7.5 * d)
        blocks[:, 4:12] = 8
        blocks[:, 12:16] = 8 | (8 << 4)
    elif qtype == QT.Q6_K:
        # 128 bytes of low nibbles, 64 of high bits, 16 int8 scales, d (f16):
        # x = 16 d (q - 32) with q uniform in 0..63 (std 18.47).
        blocks[:, 192:208] = 16
        blocks[:, 208:210] = f16_bytes(WEIGHT_STD / (16 * 18.47))
    else:
        raise ValueError(qtype)
    return data


def q4_k_m_type(name, n_layer):
    """The K-quant of a 2-D tensor in the Q4_K_M mix (llama.cpp's use_more_bits rule)."""
    if name == "token_embd.weight":
        return QT.Q6_K
    if name.endswith(("attn_v.weight", "ffn_down.weight")):
        i = int(name.split(".")[1])
        if i < n_layer // 8 or i >= 7 * n_layer // 8 or (i - n_layer // 8) % 3 == 2:
            return QT.Q6_K
    return QT.Q4_K


def write_1b_shape(reader, out_path, kquants=False):
    """Random-weight Llama-3.2-1B-shaped model with SmolLM2's tokenizer (see docstring): Q8_0,
    or with kquants the Q4_K_M mix of Q4_K and Q6_K."""
    p = L1B
    n_vocab = len(reader.fields[gguf.Keys.Tokenizer.LIST].contents())
    assert n_vocab == 49152, n_vocab
    assert p["n_head"] * p["head_dim"] == p["n_embd"]
    arch = "llama"
    sw = StreamingWriter(out_path, arch)
    sw.add_kv(gguf.Keys.General.TYPE, "model", VT.STRING)
    sw.add_kv(gguf.Keys.General.NAME, "Llama-3.2-1B shape, random weights, SmolLM2 vocab", VT.STRING)
    sw.add_kv(gguf.Keys.General.SIZE_LABEL, "1B", VT.STRING)
    sw.add_kv(gguf.Keys.General.FILE_TYPE, FTYPE_Q4_K_M if kquants else FTYPE[QT.Q8_0], VT.UINT32)
    sw.add_kv(gguf.Keys.General.QUANTIZATION_VERSION, gguf.GGML_QUANT_VERSION, VT.UINT32)
    k = gguf.Keys.LLM
    a = gguf.Keys.Attention
    r = gguf.Keys.Rope
    sw.add_kv(k.BLOCK_COUNT.format(arch=arch), p["n_layer"], VT.UINT32)
    sw.add_kv(k.CONTEXT_LENGTH.format(arch=arch), p["n_ctx"], VT.UINT32)
    sw.add_kv(k.EMBEDDING_LENGTH.format(arch=arch), p["n_embd"], VT.UINT32)
    sw.add_kv(k.FEED_FORWARD_LENGTH.format(arch=arch), p["n_ff"], VT.UINT32)
    sw.add_kv(a.HEAD_COUNT.format(arch=arch), p["n_head"], VT.UINT32)
    sw.add_kv(a.HEAD_COUNT_KV.format(arch=arch), p["n_head_kv"], VT.UINT32)
    sw.add_kv(a.KEY_LENGTH.format(arch=arch), p["head_dim"], VT.UINT32)
    sw.add_kv(a.VALUE_LENGTH.format(arch=arch), p["head_dim"], VT.UINT32)
    sw.add_kv(r.FREQ_BASE.format(arch=arch), p["rope_freq_base"], VT.FLOAT32)
    sw.add_kv(a.LAYERNORM_RMS_EPS.format(arch=arch), p["rms_eps"], VT.FLOAT32)
    sw.add_kv(r.DIMENSION_COUNT.format(arch=arch), p["head_dim"], VT.UINT32)
    sw.add_kv(k.VOCAB_SIZE.format(arch=arch), n_vocab, VT.UINT32)
    for field in reader.fields.values():
        if field.name.startswith("tokenizer."):
            copy_field(sw, field)

    E, F, D = p["n_embd"], p["n_ff"], p["head_dim"]
    kv = p["n_head_kv"] * D
    # (name, numpy shape = (ne1, ne0), is_norm); the order of convert_hf_to_gguf.py's output.
    tensors = [("token_embd.weight", (n_vocab, E), False)]
    for i in range(p["n_layer"]):
        b = f"blk.{i}."
        tensors += [
            (b + "attn_norm.weight", (E,), True),
            (b + "attn_q.weight", (E, E), False),
            (b + "attn_k.weight", (kv, E), False),
            (b + "attn_v.weight", (kv, E), False),
            (b + "attn_output.weight", (E, E), False),
            (b + "ffn_norm.weight", (E,), True),
            (b + "ffn_gate.weight", (F, E), False),
            (b + "ffn_up.weight", (F, E), False),
            (b + "ffn_down.weight", (E, F), False),
        ]
    tensors.append(("output_norm.weight", (E,), True))

    def qtype_of(name, is_norm):
        if is_norm:
            return QT.F32
        return q4_k_m_type(name, p["n_layer"]) if kquants else QT.Q8_0

    for name, shape, is_norm in tensors:
        sw.add_tensor_info(name, shape, qtype_of(name, is_norm))
    sw.begin_data()
    rng = np.random.default_rng(KQUANT_SEED if kquants else SEED)
    for n, (name, shape, is_norm) in enumerate(tensors):
        if is_norm:
            sw.write(name, np.ones(shape, dtype=np.float32))
            continue
        if kquants:
            sw.write(name, random_kquant(rng, shape, qtype_of(name, is_norm)))
        else:
            w = rng.standard_normal(shape, dtype=np.float32)
            w *= np.float32(WEIGHT_STD)
            sw.write(name, gguf.quantize(w, QT.Q8_0))
        if n % 18 == 0:
            log(f"  {name} ({n + 1}/{len(tensors)})")
    sw.close()


def gpt2_byte_tokens():
    """The 256 single-byte tokens of GPT-2's byte-level BPE, in byte order (its
    bytes_to_unicode: printable bytes stand for themselves, the others are shifted to 256+)."""
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    out, shift = [], 0
    for b in range(256):
        if b in printable:
            out.append(chr(b))
        else:
            out.append(chr(256 + shift))
            shift += 1
    return out


def qwen2_like_tokenizer(sw, n_vocab):
    """A made-up qwen2-pre BPE vocabulary of n_vocab tokens (see the module docstring)."""
    tokens = gpt2_byte_tokens()
    pairs = [("\u0120", "t"), ("\u0120", "a"), ("h", "e"), ("i", "n"), ("r", "e"), ("o", "n"),
             ("\u0120t", "he"), ("e", "r")]
    merges = [f"{a} {b}" for a, b in pairs]
    tokens += [a + b for a, b in pairs]
    eos = 151643
    tokens += [f"<|filler_{i}|>" for i in range(len(tokens), eos)]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens += specials
    tokens += [f"<|pad_{i}|>" for i in range(len(tokens), n_vocab)]
    assert len(tokens) == n_vocab and len(set(tokens)) == n_vocab
    types = [int(gguf.TokenType.NORMAL)] * eos + [int(gguf.TokenType.CONTROL)] * (n_vocab - eos)
    t = gguf.Keys.Tokenizer
    sw.add_kv(t.MODEL, "gpt2", VT.STRING)
    sw.add_kv(t.PRE, "qwen2", VT.STRING)
    sw.add_kv(t.LIST, tokens, VT.ARRAY, VT.STRING)
    sw.add_kv(t.TOKEN_TYPE, types, VT.ARRAY, VT.INT32)
    sw.add_kv(t.MERGES, merges, VT.ARRAY, VT.STRING)
    sw.add_kv(t.EOS_ID, eos, VT.UINT32)
    sw.add_kv(t.PAD_ID, eos, VT.UINT32)
    sw.add_kv(t.BOS_ID, eos, VT.UINT32)
    sw.add_kv(t.ADD_BOS, False, VT.BOOL)


def write_qwen2_1_5b_shape(out_path):
    """Random-weight Qwen2.5-1.5B-shaped model in the Q4_K_M mix (see the module docstring)."""
    p = Q15B
    arch = "qwen2"
    sw = StreamingWriter(out_path, arch)
    sw.add_kv(gguf.Keys.General.TYPE, "model", VT.STRING)
    sw.add_kv(gguf.Keys.General.NAME, "Qwen2.5-1.5B shape, random weights, made-up vocab", VT.STRING)
    sw.add_kv(gguf.Keys.General.SIZE_LABEL, "1.5B", VT.STRING)
    sw.add_kv(gguf.Keys.General.FILE_TYPE, FTYPE_Q4_K_M, VT.UINT32)
    sw.add_kv(gguf.Keys.General.QUANTIZATION_VERSION, gguf.GGML_QUANT_VERSION, VT.UINT32)
    k = gguf.Keys.LLM
    a = gguf.Keys.Attention
    r = gguf.Keys.Rope
    assert p["n_head"] * p["head_dim"] == p["n_embd"]
    # No attention.key_length: Qwen2 files derive it from embedding / heads, as the real ones do.
    sw.add_kv(k.BLOCK_COUNT.format(arch=arch), p["n_layer"], VT.UINT32)
    sw.add_kv(k.CONTEXT_LENGTH.format(arch=arch), p["n_ctx"], VT.UINT32)
    sw.add_kv(k.EMBEDDING_LENGTH.format(arch=arch), p["n_embd"], VT.UINT32)
    sw.add_kv(k.FEED_FORWARD_LENGTH.format(arch=arch), p["n_ff"], VT.UINT32)
    sw.add_kv(a.HEAD_COUNT.format(arch=arch), p["n_head"], VT.UINT32)
    sw.add_kv(a.HEAD_COUNT_KV.format(arch=arch), p["n_head_kv"], VT.UINT32)
    sw.add_kv(r.FREQ_BASE.format(arch=arch), p["rope_freq_base"], VT.FLOAT32)
    sw.add_kv(a.LAYERNORM_RMS_EPS.format(arch=arch), p["rms_eps"], VT.FLOAT32)
    qwen2_like_tokenizer(sw, p["n_vocab"])

    E, F, V = p["n_embd"], p["n_ff"], p["n_vocab"]
    kv = p["n_head_kv"] * p["head_dim"]
    # (name, numpy shape, kind): kind "norm" (ones), "bias" (small F32), "k" (K-quant).
    tensors = [("token_embd.weight", (V, E), "k")]
    for i in range(p["n_layer"]):
        b = f"blk.{i}."
        tensors += [
            (b + "attn_norm.weight", (E,), "norm"),
            (b + "attn_q.weight", (E, E), "k"),
            (b + "attn_q.bias", (E,), "bias"),
            (b + "attn_k.weight", (kv, E), "k"),
            (b + "attn_k.bias", (kv,), "bias"),
            (b + "attn_v.weight", (kv, E), "k"),
            (b + "attn_v.bias", (kv,), "bias"),
            (b + "attn_output.weight", (E, E), "k"),
            (b + "ffn_norm.weight", (E,), "norm"),
            (b + "ffn_gate.weight", (F, E), "k"),
            (b + "ffn_up.weight", (F, E), "k"),
            (b + "ffn_down.weight", (E, F), "k"),
        ]
    tensors.append(("output_norm.weight", (E,), "norm"))

    def qtype_of(name, kind):
        return q4_k_m_type(name, p["n_layer"]) if kind == "k" else QT.F32

    for name, shape, kind in tensors:
        sw.add_tensor_info(name, shape, qtype_of(name, kind))
    sw.begin_data()
    rng = np.random.default_rng(QWEN2_SEED)
    for n, (name, shape, kind) in enumerate(tensors):
        if kind == "norm":
            sw.write(name, np.ones(shape, dtype=np.float32))
        elif kind == "bias":
            b = rng.standard_normal(shape, dtype=np.float32)
            b *= np.float32(WEIGHT_STD)
            sw.write(name, b)
        else:
            sw.write(name, random_kquant(rng, shape, qtype_of(name, kind)))
        if n % 24 == 0:
            log(f"  {name} ({n + 1}/{len(tensors)})")
    sw.close()


def check(path, expect_ftype):
    """Re-read the file: every tensor is readable and general.file_type is as intended."""
    rd = gguf.GGUFReader(path)
    ft = rd.fields[gguf.Keys.General.FILE_TYPE].contents()
    assert ft == expect_ftype, (path, ft, expect_ftype)
    types = sorted({t.tensor_type.name for t in rd.tensors})
    n_params = sum(int(t.n_elements) for t in rd.tensors)
    log(f"  {path.name}: {len(rd.tensors)} tensors ({', '.join(types)}), "
        f"{n_params / 1e6:.1f}M weights, {path.stat().st_size / 1e6:.1f} MB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="output directory (default: $HALYARD_MODEL_DIR or "
                         "${XDG_CACHE_HOME:-~/.cache}/halyard/models, plus /bench)")
    ap.add_argument("--only", choices=["smollm2", "1b", "1b-q4_k_m", "qwen2-1.5b-q4_k_m", "all"], default="all")
    ap.add_argument("--source", type=Path, default=None,
                    help=f"the SmolLM2 Q4_1 model (default: MODEL_DIR/{SOURCE_NAME})")
    args = ap.parse_args()

    model_dir = default_model_dir()
    out_dir = args.out_dir if args.out_dir is not None else model_dir / "bench"
    source = args.source if args.source is not None else model_dir / SOURCE_NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    reader = None
    if args.only != "qwen2-1.5b-q4_k_m":
        if not source.is_file():
            raise SystemExit(f"source model not found: {source} (run scripts/fetch-model.sh)")
        reader = gguf.GGUFReader(source)

    written = []
    if args.only in ("smollm2", "all"):
        for target, suffix in ((QT.Q8_0, "q8_0"), (QT.F16, "f16")):
            path = out_dir / f"smollm2-135m-{suffix}.gguf"
            log(f"writing {path}")
            reencode_smollm2(reader, path, target)
            check(path, FTYPE[target])
            written.append(path)
    if args.only in ("1b", "all"):
        path = out_dir / "llama-3.2-1b-shape-q8_0.gguf"
        log(f"writing {path}")
        write_1b_shape(reader, path)
        check(path, FTYPE[QT.Q8_0])
        written.append(path)
    if args.only in ("1b-q4_k_m", "all"):
        path = out_dir / "llama-3.2-1b-shape-q4_k_m.gguf"
        log(f"writing {path}")
        write_1b_shape(reader, path, kquants=True)
        check(path, FTYPE_Q4_K_M)
        written.append(path)
    if args.only in ("qwen2-1.5b-q4_k_m", "all"):
        path = out_dir / "qwen2-1.5b-shape-q4_k_m.gguf"
        log(f"writing {path}")
        write_qwen2_1_5b_shape(path)
        check(path, FTYPE_Q4_K_M)
        written.append(path)
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
