#!/usr/bin/env python3
"""Record llama.cpp's outputs for the architecture tests (tests/e2e/arch_logits_test.cpp).

For each GGUF given, starts llama.cpp's llama-server on it (CPU, 2 threads, n_ctx 512, one
slot, f16 KV cache and flash attention as llama.cpp defaults), sends each prompt as token ids
to /completion with temperature 0 and only the temperature sampler (greedy argmax) and
n_probs K, and writes tests/data/arch_reference/<model>.json: per case the prompt ids, the
greedy tokens, the top-1 minus top-2 margin at every step, and at the first step (the prefill's
logits) the K most likely ids with their log-probabilities. Log-probabilities are the raw
logits less one constant (the log of the softmax's sum), so the test compares Halyard's
log-softmax with them. Only the Python standard library is used.

Prompts: --prompt-ids "1,2,3;4,5" (token ids, ';' between cases) or --prompts-from-greedy
(the texts of tests/data/llama_cpp_reference/greedy.json, tokenized by the server with the
model's special tokens, so a model that wants BOS gets it).

Usage (the commands that made the committed files are in each file's "record_command"):
  python3 scripts/record-arch-reference.py --server /work/llama-build/bin/llama-server \
      --model M.gguf [--model N.gguf ...] --n-gen 8 --n-probs 32 --prompt-ids ...
"""

import argparse
import importlib.util
import json
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GREEDY = REPO / "tests" / "data" / "llama_cpp_reference" / "greedy.json"
OUT = REPO / "tests" / "data" / "arch_reference"


# The llama-server helpers (sha256_file, free_port, post, get) are the greedy recorder's.
_spec = importlib.util.spec_from_file_location("llama_server_greedy", REPO / "scripts" / "llama-server-greedy.py")
_greedy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_greedy)
sha256_file, free_port, post, get = _greedy.sha256_file, _greedy.free_port, _greedy.post, _greedy.get


def record(args, model):
    port = free_port()
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [args.server, "-m", model, "--host", "127.0.0.1", "--port", str(port), "-t", str(args.threads),
         "-tb", str(args.threads), "-c", "512", "-b", "512", "-ub", "512", "-np", "1", "-ngl", "0", "--no-warmup"],
        stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            if server.poll() is not None:
                log.seek(0)
                sys.exit("llama-server exited while loading:\n" + log.read().decode(errors="replace")[-4000:])
            try:
                if get(base + "/health").get("status") == "ok":
                    break
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
                pass
            if time.time() > deadline:
                sys.exit("llama-server did not become ready in 300 s")
            time.sleep(0.5)
        props = get(base + "/props")
        if args.prompts_from_greedy:
            texts = [c["prompt"] for c in json.loads(GREEDY.read_text(encoding="utf-8"))["cases"]][: args.n_prompts]
            prompts = [post(base + "/tokenize", {"content": t, "add_special": True})["tokens"] for t in texts]
        else:
            texts = [None] * len(args.prompt_ids.split(";"))
            prompts = [[int(x) for x in p.split(",")] for p in args.prompt_ids.split(";")]
        cases = []
        for text, ids in zip(texts, prompts):
            r = post(base + "/completion", {
                "prompt": ids, "n_predict": args.n_gen, "temperature": 0.0, "samplers": ["temperature"],
                "n_probs": args.n_probs, "cache_prompt": False, "return_tokens": True,
                "post_sampling_probs": False,
            })
            probs = r["completion_probabilities"]
            tokens = [p["id"] for p in probs]
            if len(tokens) != args.n_gen and r.get("stop_type") != "eos":
                sys.exit(f"llama-server returned {len(tokens)} tokens for {args.n_gen}: {r.get('stop_type')}")
            margins = []
            for step, p in enumerate(probs):
                top = p["top_logprobs"]
                if top[0]["id"] != tokens[step]:
                    sys.exit(f"step {step}: greedy token {tokens[step]} is not the top-1 log-probability")
                margins.append(top[0]["logprob"] - top[1]["logprob"])
            case = {"prompt_ids": ids, "tokens": tokens, "margins": margins,
                    "prefill_top_ids": [t["id"] for t in probs[0]["top_logprobs"]],
                    "prefill_top_logprobs": [t["logprob"] for t in probs[0]["top_logprobs"]],
                    "text": r["content"]}
            if text is not None:
                case["prompt"] = text
            cases.append(case)
            print(f"  {Path(model).name}: {len(ids)} prompt tokens -> {tokens[:8]}... min margin {min(margins):.4f}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return {
        "model": Path(model).name,
        "model_sha256": sha256_file(model),
        "record_command": args.command,
        "llama_cpp_build": props.get("build_info", ""),
        "llama_server_settings": "CPU, -t/-tb %d, -c 512, -b/-ub 512, one slot, flash attention auto, f16 KV cache "
                                 "(defaults); prompt as token ids in one batch, then one token per step; temperature 0 "
                                 "with only the temperature sampler (greedy argmax), n_probs %d over the raw logits"
                                 % (args.threads, args.n_probs),
        "n_gen": args.n_gen,
        "cases": cases,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--n-gen", type=int, default=8)
    ap.add_argument("--n-probs", type=int, default=32)
    ap.add_argument("--prompt-ids", default="")
    ap.add_argument("--prompts-from-greedy", action="store_true")
    ap.add_argument("--n-prompts", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out-dir", default=str(OUT))
    args = ap.parse_args()
    if not args.prompt_ids and not args.prompts_from_greedy:
        sys.exit("give --prompt-ids or --prompts-from-greedy")
    args.command = "python3 " + " ".join(shlex.quote(a) for a in sys.argv)
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    for m in args.model:
        doc = record(args, m)
        out = Path(args.out_dir) / (Path(m).stem + ".json")
        with open(out, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(out)


if __name__ == "__main__":
    main()
