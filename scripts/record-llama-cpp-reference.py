#!/usr/bin/env python3
"""Record llama.cpp reference data (tokenization, greedy decoding, logits) for Halyard tests.

Uses only the public `llama_cpp` Python package API (llama-cpp-python, low-level
ctypes bindings) and numpy. It writes into tests/data/llama_cpp_reference/:

  tokenizer.json               token ids for a list of texts
                               (add_special=False, parse_special=True)
  greedy.json                  32-step greedy decoding for 3 prompts, with the
                               top-1 minus top-2 logit margin at every step
  prefill_logits_case3.f32     raw little-endian float32 logits (n_vocab values)
                               after prefilling prompt 3 (0-based case index 2)

Usage:
  python3 scripts/record-llama-cpp-reference.py \
      [--model /root/.cache/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf] \
      [--out-dir tests/data/llama_cpp_reference] [--threads 2] [--flash-attn auto]
"""

import argparse
import ctypes
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import llama_cpp

DEFAULT_MODEL = "/root/.cache/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf"
EXPECTED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "tests" / "data" / "llama_cpp_reference"

N_CTX = 512
N_BATCH = 512
N_GEN = 32
ADD_SPECIAL = False
PARSE_SPECIAL = True

TOKENIZER_CASES = [
    "Hello world",
    " Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "A plain ASCII sentence, with a comma; and a semicolon: done.",
    "   leading spaces",
    "trailing spaces   ",
    "  both sides  ",
    "a    b",
    "\n\n\tx",
    "line one\nline two\r\nline three\n",
    "col1\tcol2\t\tcol3",
    "Hello!!! ...?",
    "Wait... what?!?! (really) [yes] {no} <maybe>",
    "I'm don't they'll we've",
    "She's here, you're there, I'd go, it's OK. THEY'LL SHOUT'S",
    "12345 and 3.14159 and 1,000,000",
    "abc123def",
    "x1y22z333 0 007",
    "café naïve résumé",
    "日本語のテキスト",
    "Привет мир",
    "I love 🦙 and 👍🏽!",
    "e\u0301 n\u0303 a\u0308\u0304 Zalgo: Z\u0351\u036b\u0343a\u0352l\u0310g\u0364o",
    "non\u00a0breaking\u2009thin\u3000ideographic space",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>text after eos<|endoftext|>",
    "word<|im_end|>word",
    "<|im_start|",
    "",
    " ",
    "  ",
    "\n",
    "def f(x):\n    return x**2\n",
    "#include <stdio.h>\nint main(void) { printf(\"hi\\n\"); return 0; }\n",
    "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct?x=1&y=2#frag",
    "email: someone@example.com, price: $19.99 (-5%)",
    "مرحبا بالعالم",
    "한국어 텍스트와 中文文本",
    "ὕαλον ϕαγεῖν δύναμαι",
    "\u200bzero\u200dwidth\ufeff",
]

GREEDY_PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a little",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is the tallest mountain in the world?<|im_end|>\n"
    "<|im_start|>assistant\n",
    "The three primary colors are",
    "def fibonacci(n):\n",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWrite one sentence about the ocean.<|im_end|>\n"
    "<|im_start|>assistant\n",
]
PREFILL_LOGITS_CASE = 2
PREFILL_LOGITS_FILE = "prefill_logits_case3.f32"

FLASH_ATTN = {
    "auto": llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO,
    "on": llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
    "off": llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED,
}

# ---------------------------------------------------------------------------
# llama.cpp log capture (to keep stdout clean and to record how flash attention
# was resolved when flash_attn_type is "auto").

_LOG_LINES = []
_VERBOSE = False


@llama_cpp.llama_log_callback
def _log_callback(level, text, user_data):
    s = text.decode("utf-8", errors="replace") if text else ""
    _LOG_LINES.append(s)
    if _VERBOSE:
        sys.stderr.write(s)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def meta_str(model, key):
    buf = ctypes.create_string_buffer(4096)
    n = llama_cpp.llama_model_meta_val_str(model, key.encode(), buf, len(buf))
    if n < 0:
        return None
    return buf.value.decode("utf-8", errors="replace")


def load_model(path, vocab_only):
    mparams = llama_cpp.llama_model_default_params()
    mparams.n_gpu_layers = 0
    mparams.vocab_only = vocab_only
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
    if not model:
        raise RuntimeError(f"failed to load model {path} (vocab_only={vocab_only})")
    return model


def tokenize(vocab, text):
    data = text.encode("utf-8")
    cap = len(data) + 16
    buf = (llama_cpp.llama_token * cap)()
    n = llama_cpp.llama_tokenize(vocab, data, len(data), buf, cap, ADD_SPECIAL, PARSE_SPECIAL)
    if n < 0:
        cap = -n
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(vocab, data, len(data), buf, cap, ADD_SPECIAL, PARSE_SPECIAL)
        if n < 0:
            raise RuntimeError(f"tokenize failed for {text!r}: {n}")
    return [int(t) for t in buf[:n]]


def detokenize(vocab, ids, unparse_special=True):
    if not ids:
        return b""
    arr = (llama_cpp.llama_token * len(ids))(*ids)
    cap = 64 * len(ids) + 64
    out = ctypes.create_string_buffer(cap)
    n = llama_cpp.llama_detokenize(vocab, arr, len(ids), out, cap, False, unparse_special)
    if n < 0:
        cap = -n + 1
        out = ctypes.create_string_buffer(cap)
        n = llama_cpp.llama_detokenize(vocab, arr, len(ids), out, cap, False, unparse_special)
        if n < 0:
            raise RuntimeError("detokenize failed")
    return out.raw[:n]


def token_piece(vocab, tok, special=True):
    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(vocab, tok, buf, len(buf), 0, special)
    if n < 0:
        raise RuntimeError(f"token_to_piece failed for {tok}")
    return buf.raw[:n]


def new_context(model, threads, flash_attn):
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx = N_CTX
    cparams.n_batch = N_BATCH
    cparams.n_ubatch = N_BATCH
    cparams.n_seq_max = 1
    cparams.n_threads = threads
    cparams.n_threads_batch = threads
    cparams.flash_attn_type = FLASH_ATTN[flash_attn]
    cparams.embeddings = False
    cparams.no_perf = True
    ctx = llama_cpp.llama_init_from_model(model, cparams)
    if not ctx:
        raise RuntimeError("failed to create llama_context")
    info = {
        "n_ctx": N_CTX,
        "n_batch": N_BATCH,
        "n_ubatch": N_BATCH,
        "n_threads": threads,
        "n_threads_batch": threads,
        "flash_attn_type": flash_attn,
        "type_k": int(cparams.type_k),
        "type_v": int(cparams.type_v),
        "n_gpu_layers": 0,
    }
    return ctx, info


def decode(ctx, batch, tokens, pos0, want_last_logits=True):
    n = len(tokens)
    batch.n_tokens = n
    for i, t in enumerate(tokens):
        batch.token[i] = t
        batch.pos[i] = pos0 + i
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = 0
        batch.logits[i] = 0
    if want_last_logits:
        batch.logits[n - 1] = 1
    rc = llama_cpp.llama_decode(ctx, batch)
    if rc != 0:
        raise RuntimeError(f"llama_decode failed: {rc}")


def last_logits(ctx, n_vocab):
    ptr = llama_cpp.llama_get_logits_ith(ctx, -1)
    if not ptr:
        raise RuntimeError("llama_get_logits_ith returned NULL")
    return np.ctypeslib.as_array(ptr, shape=(n_vocab,)).astype(np.float32, copy=True)


def top2(logits):
    # argmax picks the lowest index among exact ties (like a first-max scan)
    i1 = int(np.argmax(logits))
    masked = logits.copy()
    masked[i1] = -np.inf
    i2 = int(np.argmax(masked))
    return i1, i2, float(logits[i1]), float(logits[i2])


def run_greedy(model, vocab, n_vocab, prompt, threads, flash_attn):
    ctx, info = new_context(model, threads, flash_attn)
    batch = llama_cpp.llama_batch_init(N_BATCH, 0, 1)
    try:
        ids = tokenize(vocab, prompt)
        if len(ids) == 0 or len(ids) > N_BATCH or len(ids) + N_GEN > N_CTX:
            raise RuntimeError(f"bad prompt length {len(ids)}")
        decode(ctx, batch, ids, 0)  # whole prompt in one batch
        logits = last_logits(ctx, n_vocab)
        prefill_logits = logits.copy()
        tokens, margins, second, top_logits = [], [], [], []
        pos = len(ids)
        for step in range(N_GEN):
            i1, i2, l1, l2 = top2(logits)
            tokens.append(i1)
            second.append(i2)
            top_logits.append(l1)
            margins.append(l1 - l2)
            if step + 1 < N_GEN:
                decode(ctx, batch, [i1], pos)  # one token per step
                pos += 1
                logits = last_logits(ctx, n_vocab)
        text_bytes = detokenize(vocab, tokens, unparse_special=True)
        case = {
            "prompt": prompt,
            "prompt_ids": ids,
            "tokens": tokens,
            "margins": margins,
            "text": text_bytes.decode("utf-8", errors="replace"),
            "text_utf8_hex": text_bytes.hex(),
            "second_tokens": second,
            "top1_logits": top_logits,
        }
        return case, prefill_logits, info
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)


def main():
    global _VERBOSE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out-dir", default=str(DEFAULT_OUT))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--flash-attn", choices=sorted(FLASH_ATTN), default="auto")
    ap.add_argument("--allow-sha-mismatch", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="echo llama.cpp log output to stderr")
    args = ap.parse_args()
    _VERBOSE = args.verbose

    command = shlex.join(["python3"] + sys.argv)
    version = llama_cpp.__version__
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    sha = sha256_file(args.model)
    if sha != EXPECTED_SHA256:
        msg = f"model sha256 {sha} != expected {EXPECTED_SHA256}"
        if not args.allow_sha_mismatch:
            sys.exit("error: " + msg)
        print("warning: " + msg, file=sys.stderr)

    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()

    # ---- tokenizer -------------------------------------------------------
    vmodel = load_model(args.model, vocab_only=True)
    model = load_model(args.model, vocab_only=False)
    try:
        vvocab = llama_cpp.llama_model_get_vocab(vmodel)
        vocab = llama_cpp.llama_model_get_vocab(model)
        n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        model_info = {
            "general.architecture": meta_str(model, "general.architecture"),
            "tokenizer.ggml.model": meta_str(model, "tokenizer.ggml.model"),
            "tokenizer.ggml.pre": meta_str(model, "tokenizer.ggml.pre"),
            "n_vocab": n_vocab,
        }

        cases = []
        for text in TOKENIZER_CASES:
            ids = tokenize(vvocab, text)
            ids_full = tokenize(vocab, text)
            if ids != ids_full:
                raise RuntimeError(f"vocab-only and full-model tokenization differ for {text!r}")
            roundtrip = detokenize(vocab, ids, unparse_special=True)
            cases.append({
                "text": text,
                "text_utf8_hex": text.encode("utf-8").hex(),
                "ids": ids,
                "detokenized_roundtrip_ok": roundtrip == text.encode("utf-8"),
            })
        tok_doc = {
            "llama_cpp_python_version": version,
            "model_sha256": sha,
            "command": command,
            "add_special": ADD_SPECIAL,
            "parse_special": PARSE_SPECIAL,
            "model": model_info,
            "cases": cases,
        }
        with open(out_dir / "tokenizer.json", "w", encoding="utf-8") as f:
            json.dump(tok_doc, f, ensure_ascii=False, indent=1)
            f.write("\n")

        # ---- greedy decoding --------------------------------------------
        greedy_cases = []
        ctx_info = None
        prefill_to_save = None
        for idx, prompt in enumerate(GREEDY_PROMPTS):
            case, prefill, ctx_info = run_greedy(model, vocab, n_vocab, prompt, args.threads, args.flash_attn)
            if case["prompt_ids"] != tokenize(vvocab, prompt):
                raise RuntimeError("prompt tokenization mismatch")
            greedy_cases.append(case)
            if idx == PREFILL_LOGITS_CASE:
                prefill_to_save = prefill
            print(f"[{idx}] {prompt!r}\n    -> {case['text']!r}\n    min margin {min(case['margins']):.4f}")

        assert prefill_to_save is not None and prefill_to_save.shape == (n_vocab,)
        prefill_to_save.astype("<f4").tofile(out_dir / PREFILL_LOGITS_FILE)

        fa_log = [l.strip() for l in _LOG_LINES if "flash_attn" in l or "Flash Attention" in l]
        greedy_doc = {
            "llama_cpp_python_version": version,
            "model_sha256": sha,
            "command": command,
            "add_special": ADD_SPECIAL,
            "parse_special": PARSE_SPECIAL,
            "n_gen": N_GEN,
            "sampling": "greedy argmax over raw logits (lowest id on exact ties), no EOS stop, "
                        "prompt decoded in one batch then one token per llama_decode call",
            "detokenize": "llama_detokenize(remove_special=false, unparse_special=true)",
            "context_params": ctx_info,
            "llama_cpp_log_flash_attn": sorted(set(fa_log)),
            "system_info": llama_cpp.llama_print_system_info().decode("utf-8", errors="replace").strip(),
            "model": model_info,
            "prefill_logits_file": PREFILL_LOGITS_FILE,
            "prefill_logits_case": PREFILL_LOGITS_CASE,
            "prefill_logits_dtype": "float32 little-endian",
            "prefill_logits_count": int(n_vocab),
            "cases": greedy_cases,
        }
        with open(out_dir / "greedy.json", "w", encoding="utf-8") as f:
            json.dump(greedy_doc, f, ensure_ascii=False, indent=1)
            f.write("\n")
    finally:
        llama_cpp.llama_model_free(model)
        llama_cpp.llama_model_free(vmodel)
        llama_cpp.llama_backend_free()

    print(f"wrote {out_dir}/tokenizer.json, greedy.json, {PREFILL_LOGITS_FILE}")


if __name__ == "__main__":
    main()
