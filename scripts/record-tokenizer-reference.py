#!/usr/bin/env python3
"""Records llama.cpp's token ids for a set of texts with a GGUF's tokenizer, as test data for
Halyard's tokenizer (tests/unit/runtime/tokenizer_llama_cpp_test.cpp).

It runs llama.cpp's own `llama-tokenize` tool (built beside the project from the
llama-cpp-python 0.3.36 source distribution: `cmake --build /work/llama-build --target
llama-tokenize`), which loads only the vocabulary, once per text and mode, on the text's exact
bytes (`-f FILE --no-escape`). Each text is tokenized twice: with BOS and special tokens parsed
(`llama_tokenize(add_special=true, parse_special=true)`) and without either (`--no-bos
--no-parse-special`). Standard library only.

llama.cpp refuses a file whose tensor data is cut off even for its vocabulary ("data is not
within the file bounds"), so with --header-only the tool is given a copy of the file's header
with no tensors (as llama.cpp's own ggml-vocab-*.gguf files are): the magic, version and every
metadata entry byte for byte, a tensor count of 0. That is how the DeepSeek-R1-Distill-Qwen
header (scripts/fetch-model.sh deepseek-r1-qwen-header, the first 4% of the 7B file) is
recorded. --extra-text adds texts (e.g. that vocabulary's special tokens) to the common set.

Usage:
  python3 scripts/record-tokenizer-reference.py \\
      --model ~/.cache/halyard/models/gemma-3-270m-q4_k_m.gguf \\
      --llama-tokenize /work/llama-build/bin/llama-tokenize \\
      --out tests/data/llama_cpp_reference/tokenizer_gemma3_270m.json
  python3 scripts/record-tokenizer-reference.py --header-only \
      --model ~/.cache/halyard/models/deepseek-r1-distill-qwen-7b-header.gguf \
      --extra-text "<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜><think>\n" \
      --extra-text "<｜end▁of▁sentence｜>word</think>" \
      --out tests/data/llama_cpp_reference/tokenizer_deepseek_r1_qwen.json
"""

import argparse
import hashlib
import json
import shlex
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"

TEXTS = [
    "Hello world",
    " Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "   leading spaces",
    "trailing spaces   ",
    "a  b   c    d",
    "\n",
    "\n\n",
    "line one\nline two\r\nline three\n\n\nline four\n",
    "col1\tcol2\t\tcol3",
    "\t\tindented with tabs",
    "",
    " ",
    "I'm don't they'll we've SHE'S",
    "12345 and 3.14159 and 1,000,000; x1y22z333 007",
    "def f(x):\n    return x**2\n\n\nclass A:\n    pass\n",
    "#include <stdio.h>\nint main(void) { printf(\"hi\\n\"); return 0; }\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "café naïve résumé Ångström",
    "日本語のテキスト",
    "中文文本，标点。",
    "한국어 텍스트",
    "Привет мир",
    "مرحبا بالعالم",
    "I love 🦙 and 👍🏽! 🇫🇷",
    "e\u0301 n\u0303 Zalgo: Z\u0351\u036b\u0343a\u0352l\u0310g\u0364o",
    "non\u00a0breaking\u2009thin\u3000ideographic space",
    "\u200bzero\u200dwidth\ufeff",
    "\x01\x02 control \x7f bytes",
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
    "<bos><start_of_turn>user\nHi<end_of_turn>",
    "word<end_of_turn>word",
    "<start_of_turn",
    "<table><tr><td>cell</td></tr></table> <b>bold</b>",
    "https://example.com/path?x=1&y=2#frag email: someone@example.com $19.99 (-5%)",
]

MODES = [
    {"add_special": True, "parse_special": True, "flags": []},
    {"add_special": False, "parse_special": False, "flags": ["--no-bos", "--no-parse-special"]},
]


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# GGUF metadata value types (gguf.md): fixed sizes of the scalars; 8 is a string, 9 an array.
SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def header_only_copy(src, dst):
    """Writes to dst the GGUF at src with its metadata and no tensors (see the docstring)."""
    with open(src, "rb") as f:
        magic, version, _n_tensors, n_kv = struct.unpack("<4sIQQ", f.read(24))
        if magic != b"GGUF" or version not in (2, 3):
            raise SystemExit(f"{src}: not a GGUF v2/v3 file")
        start = f.tell()

        def skip_string():
            (n,) = struct.unpack("<Q", f.read(8))
            f.seek(n, 1)

        def skip_value(vtype):
            if vtype in SCALAR_SIZES:
                f.seek(SCALAR_SIZES[vtype], 1)
            elif vtype == 8:
                skip_string()
            elif vtype == 9:
                etype, count = struct.unpack("<IQ", f.read(12))
                if etype in SCALAR_SIZES:
                    f.seek(SCALAR_SIZES[etype] * count, 1)
                else:
                    for _ in range(count):
                        skip_value(etype)
            else:
                raise SystemExit(f"{src}: unknown metadata type {vtype}")

        for _ in range(n_kv):
            skip_string()
            (vtype,) = struct.unpack("<I", f.read(4))
            skip_value(vtype)
        end = f.tell()
        f.seek(start)
        kv = f.read(end - start)
    with open(dst, "wb") as out:
        out.write(struct.pack("<4sIQQ", magic, version, 0, n_kv))
        out.write(kv)


def tokenize(tool, model, text, flags):
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode("utf-8"))
        path = f.name
    try:
        cmd = [tool, "-m", str(model), "-f", path, "--no-escape", "--ids", "--log-disable"] + flags
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    finally:
        Path(path).unlink()
    line = out.strip().splitlines()[-1]
    return json.loads(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--llama-tokenize", default="/work/llama-build/bin/llama-tokenize")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--header-only", action="store_true",
                    help="tokenize with a tensor-less copy of the header (for a truncated file)")
    ap.add_argument("--extra-text", action="append", default=[], help="a text to add to the set")
    args = ap.parse_args()
    vocab = args.model
    tmpdir = tempfile.TemporaryDirectory()
    if args.header_only:
        vocab = Path(tmpdir.name) / (args.model.stem + ".vocab.gguf")
        header_only_copy(args.model, vocab)
    cases = []
    for text in TEXTS + args.extra_text:
        for mode in MODES:
            ids = tokenize(args.llama_tokenize, vocab, text, mode["flags"])
            cases.append({"text": text, "text_utf8_hex": text.encode("utf-8").hex(),
                          "add_special": mode["add_special"], "parse_special": mode["parse_special"],
                          "ids": ids})
    data = {
        "llama_cpp_python_version": LLAMA_CPP_PYTHON_VERSION,
        "tool": "llama-tokenize -m MODEL -f TEXT_FILE --no-escape --ids --log-disable "
                "[--no-bos --no-parse-special]",
        "command": "python3 scripts/record-tokenizer-reference.py " + " ".join(
            shlex.quote(a) for a in (["--header-only"] if args.header_only else []) + ["--model", args.model.name]
            + [x for t in args.extra_text for x in ("--extra-text", t)] + ["--out", str(args.out)]),
        "model_file": args.model.name,
        "model_sha256": sha256_of(args.model),
        "cases": cases,
    }
    args.out.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"record-tokenizer-reference: {len(cases)} cases -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
