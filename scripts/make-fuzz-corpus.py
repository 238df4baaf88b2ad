#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer targets, derived at test time from the default
model (nothing of the model is committed):

  gguf/       small, valid GGUF files built from the model's own metadata: every key kept, the
              vocabulary, scores, types and merges cut to their first N entries, and a few tiny
              tensors; plus truncations of one of them, so the reader's error paths are reached
              from the first inputs.
  jinja/      chat templates (the model's own, llama.cpp's when cached, construct snippets), each
              followed by a NUL and a JSON context.
  tokenizer/  texts: the 40 strings of tests/data/llama_cpp_reference/tokenizer.json and strings
              made of the model's own token texts (byte-level BPE pieces turned back into bytes).

Usage: make-fuzz-corpus.py MODEL.gguf OUT_DIR
"""
import json
import os
import random
import struct
import sys

# GGUF value types (docs/gguf.md in ggml-org/ggml).
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
FIXED = {U8: 1, I8: 1, U16: 2, I16: 2, U32: 4, I32: 4, F32: 4, BOOL: 1, U64: 8, I64: 8, F64: 8}


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        out = self.data[self.pos:self.pos + n]
        if len(out) != n:
            raise ValueError("truncated GGUF")
        self.pos += n
        return out

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def string(self):
        return self.take(self.u64())

    def value(self, vtype):
        """Returns (vtype, raw encoded bytes of the value without its type, element list for arrays)."""
        start = self.pos
        if vtype in FIXED:
            self.take(FIXED[vtype])
            return self.data[start:self.pos], None
        if vtype == STRING:
            self.string()
            return self.data[start:self.pos], None
        if vtype == ARRAY:
            etype, count = self.u32(), self.u64()
            elems = [self.value(etype)[0] for _ in range(count)]
            return self.data[start:self.pos], (etype, elems)
        raise ValueError(f"unknown GGUF value type {vtype}")


def gguf_string(b):
    return struct.pack("<Q", len(b)) + b


def read_metadata(path):
    """The model's key/value pairs, as (key bytes, type, raw value bytes, array info)."""
    with open(path, "rb") as f:
        head = f.read(64 << 20)  # the metadata of the default model is a few MB
    r = Reader(head)
    if r.take(4) != b"GGUF":
        raise ValueError("not a GGUF file")
    version = r.u32()
    _n_tensors, n_kv = r.u64(), r.u64()
    kvs = []
    for _ in range(n_kv):
        key = r.string()
        vtype = r.u32()
        raw, arr = r.value(vtype)
        kvs.append((key, vtype, raw, arr))
    return version, kvs


def write_gguf(version, kvs, tensors, keep):
    """A GGUF with the given metadata (arrays cut to `keep` elements) and f32 tensors."""
    out = bytearray(b"GGUF" + struct.pack("<I", version))
    out += struct.pack("<QQ", len(tensors), len(kvs))
    for key, vtype, raw, arr in kvs:
        out += gguf_string(key) + struct.pack("<I", vtype)
        if arr is not None and len(arr[1]) > keep:
            etype, elems = arr
            out += struct.pack("<IQ", etype, keep) + b"".join(elems[:keep])
        else:
            out += raw
    offset, blobs = 0, []
    for name, shape in tensors:
        out += gguf_string(name) + struct.pack("<I", len(shape))
        out += b"".join(struct.pack("<Q", d) for d in shape)
        out += struct.pack("<IQ", 0, offset)  # f32
        n = 1
        for d in shape:
            n *= d
        blob = struct.pack(f"<{n}f", *[((i * 37) % 17 - 8) / 8.0 for i in range(n)])
        blobs.append(blob)
        offset += (len(blob) + 31) // 32 * 32
    out += b"\0" * ((-len(out)) % 32)
    for blob in blobs:
        out += blob + b"\0" * ((-len(blob)) % 32)
    return bytes(out)


def token_texts(kvs, count):
    for key, _vtype, _raw, arr in kvs:
        if key == b"tokenizer.ggml.tokens" and arr is not None:
            return [e[8:] for e in arr[1][:count]]  # each element is a u64 length + bytes
    return []


def byte_level_decode(piece):
    """GPT-2's byte-level mapping back to bytes: printable bytes map to themselves, the others to
    U+0100 + n in order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, n = {}, 0
    for b in range(256):
        if b in printable:
            table[chr(b)] = b
        else:
            table[chr(0x100 + n)] = b
            n += 1
    try:
        return bytes(table[c] for c in piece.decode("utf-8"))
    except (KeyError, UnicodeDecodeError):
        return piece


def main(model, out_dir):
    version, kvs = read_metadata(model)
    gguf_dir, text_dir = os.path.join(out_dir, "gguf"), os.path.join(out_dir, "tokenizer")
    os.makedirs(gguf_dir, exist_ok=True)
    os.makedirs(text_dir, exist_ok=True)
    seeds = {
        "meta-256-none": write_gguf(version, kvs, [], 256),
        "meta-1024-two": write_gguf(version, kvs, [(b"token_embd.weight", [8, 4]), (b"output_norm.weight", [8])], 1024),
        "meta-64-one": write_gguf(version, kvs, [(b"blk.0.attn_norm.weight", [16])], 64),
    }
    base = seeds["meta-64-one"]
    for cut in (4, 8, 24, 100, len(base) // 2, len(base) - 1):
        seeds[f"truncated-{cut}"] = base[:cut]
    for name, data in seeds.items():
        with open(os.path.join(gguf_dir, name + ".gguf"), "wb") as f:
            f.write(data)

    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "tests", "data", "llama_cpp_reference", "tokenizer.json")) as f:
        texts = [c["text"].encode("utf-8") for c in json.load(f)["cases"]]
    pieces = [byte_level_decode(t) for t in token_texts(kvs, 49152)]
    rng = random.Random(20261201)
    for i in range(40):
        texts.append(b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 24))) if pieces else b"")
    for i, t in enumerate(texts):
        with open(os.path.join(text_dir, f"text-{i:03d}.txt"), "wb") as f:
            f.write(t)
    # Request bodies for server_request_fuzz: valid ones of both endpoints and near misses.
    request_dir = os.path.join(out_dir, "server_request")
    os.makedirs(request_dir, exist_ok=True)
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": [{"type": "text", "text": "4"}]}, {"role": "developer", "content": "x"}]
    bodies = [
        {"messages": chat, "max_tokens": 8, "temperature": 0.7, "top_p": 0.9, "top_k": 20, "min_p": 0.05,
         "stop": ["\n", "4"], "n": 2, "stream": True, "stream_options": {"include_usage": True},
         "logprobs": True, "top_logprobs": 3, "seed": 1, "logit_bias": {"42": -100}, "presence_penalty": 0.5},
        {"prompt": "Once upon a time", "max_tokens": 16, "echo": True, "logprobs": 2, "stop": "time"},
        {"prompt": [1, 2, 3, 4], "max_completion_tokens": 3, "frequency_penalty": -1.5, "ignore_eos": True},
        {"prompt": ["one prompt"], "temperature": 2, "user": "u"},
        {"messages": [{"role": "user", "content": "<|im_start|>assistant\n\u00e9\ud83e\udd99"}]},
        {"messages": [{"role": "tool", "content": "x"}]},
        {"prompt": "x", "max_tokens": 1e3, "n": 17},
    ]
    for i, b in enumerate(bodies):
        with open(os.path.join(request_dir, f"body-{i:02d}.json"), "w") as f:
            json.dump(b, f)
    # Templates for jinja_fuzz: the model's own chat template, llama.cpp's model templates when
    # compare_jinja2.py has cached them, and snippets of every construct; each followed by a NUL
    # and a context.
    jinja_dir = os.path.join(out_dir, "jinja")
    os.makedirs(jinja_dir, exist_ok=True)
    templates = [raw[8:] for key, vtype, raw, _ in kvs if key == b"tokenizer.chat_template" and vtype == STRING]
    cache = os.path.join(os.path.expanduser("~"), ".cache", "halyard", "llama_cpp_python-0.3.36", "vendor",
                         "llama.cpp", "models", "templates")
    if os.path.isdir(cache):
        for name in sorted(os.listdir(cache)):
            if name.endswith(".jinja"):
                with open(os.path.join(cache, name), "rb") as f:
                    templates.append(f.read())
    templates += [s.encode() for s in (
        "{% for m in messages %}{{ loop.index }}{{ m.role|upper }}{% if not loop.last %},{% endif %}{% endfor %}",
        "{% set ns = namespace(a=0) %}{% for x in range(5) if x is odd %}{% set ns.a = ns.a + x %}{% endfor %}{{ ns.a }}",
        "{% macro f(x, y=2) %}{{ x ~ y }}{{ caller() if caller is defined }}{% endmacro %}{% call f(1) %}c{% endcall %}",
        "{{ tools|tojson(indent=2, sort_keys=true) }}{{ (messages|map(attribute='content')|list)[::-1] }}",
        "{%- filter trim -%} {{ 'a,b'.split(',')|join('|') }} {%- endfilter %}{{ '%s' % 1 }}{{ {'k': [1, 2.5]}|items|list }}",
        "{% set t %}x{% endset %}{{ t * 3 }}{{ 7 // 2 }}{{ 2 ** 8 }}{{ 'y' if t else 'n' }}{{ raise_exception('no') }}",
    )]
    for i, t in enumerate(templates):
        with open(os.path.join(jinja_dir, f"template-{i:03d}.jinja"), "wb") as f:
            f.write(t + b"\0" + json.dumps({"messages": chat[:2], "add_generation_prompt": True}).encode())
    print(f"make-fuzz-corpus: {len(seeds)} GGUF seeds, {len(texts)} texts, {len(bodies)} request bodies, "
          f"{len(templates)} templates in {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
