#!/usr/bin/env python3
"""Greedy tokens and top-two margins from llama.cpp's llama-server for one GGUF file.

Used by scripts/record-quantized-llama-reference.sh (run that, not this). It starts
llama-server on the model (CPU, 2 threads, n_ctx 512, one slot, flash attention auto as
llama.cpp defaults), sends each prompt of tests/data/llama_cpp_reference/greedy.json as token
ids to /completion with temperature 0 and only the temperature sampler (greedy argmax; a case
ends at an end-of-generation token) and n_probs 2, and writes a JSON file: the tokens, and per
step the top-1 minus top-2 margin. The margin comes from the two log-probabilities over the raw logits, whose difference
is the logit difference. Only the Python standard library is used.
"""

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GREEDY = REPO / "tests" / "data" / "llama_cpp_reference" / "greedy.json"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, body, timeout=600):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True, help="path of llama-server")
    ap.add_argument("--model", required=True, help="the quantized GGUF")
    ap.add_argument("--type", required=True, help="the halyard quantize TYPE that made it")
    ap.add_argument("--source-model", required=True)
    ap.add_argument("--quantize-command", required=True)
    ap.add_argument("--quantize-log", required=True, help="what halyard quantize printed")
    ap.add_argument("--halyard-commit", default="")
    ap.add_argument("--record-command", required=True)
    ap.add_argument("--out", required=True)
    # Short prompts and generations: the test replays them on the scalar ref backend.
    ap.add_argument("--prompts", default="0,1,3", help="indices of greedy.json's prompts")
    ap.add_argument("--n-gen", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    greedy = json.loads(GREEDY.read_text(encoding="utf-8"))
    port = free_port()
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [args.server, "-m", args.model, "--host", "127.0.0.1", "--port", str(port), "-t", str(args.threads),
         "-tb", str(args.threads), "-c", "512", "-b", "512", "-ub", "512", "-np", "1", "-ngl", "0",
         "--no-warmup"],
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
        cases = []
        for c in [greedy["cases"][int(i)] for i in args.prompts.split(",")]:
            # No ignore_eos: llama-server implements it as a -inf bias on the end-of-generation
            # tokens, so its pick would no longer be the raw argmax. An end of generation ends
            # the recording there instead (the test compares that many tokens).
            r = post(base + "/completion", {
                "prompt": c["prompt_ids"], "n_predict": args.n_gen, "temperature": 0.0,
                "samplers": ["temperature"], "n_probs": 2, "cache_prompt": False,
                "return_tokens": True, "post_sampling_probs": False,
            })
            probs = r["completion_probabilities"]
            tokens = [p["id"] for p in probs]
            if len(tokens) != args.n_gen and r.get("stop_type") != "eos":
                sys.exit(f"llama-server returned {len(tokens)} tokens for {args.n_gen} asked: {r.get('stop_type')}")
            margins, second = [], []
            for step, p in enumerate(probs):
                top = p["top_logprobs"]
                if top[0]["id"] != tokens[step]:
                    sys.exit(f"step {step}: the greedy token {tokens[step]} is not the top-1 of the "
                             f"log-probabilities: {p}")
                margins.append(top[0]["logprob"] - top[1]["logprob"])
                second.append(top[1]["id"])
            cases.append({
                "prompt": c["prompt"], "prompt_ids": c["prompt_ids"], "tokens": tokens, "margins": margins,
                "second_tokens": second, "top1_logprobs": [p["top_logprobs"][0]["logprob"] for p in probs],
                "text": r["content"],
            })
            print(f"  {args.type} '{c['prompt'][:30]}': {r['content']!r} (min margin {min(margins):.4f})")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    doc = {
        "type": args.type,
        "quantized_sha256": sha256_file(args.model),
        "quantized_bytes": os.path.getsize(args.model),
        "source_model": os.path.basename(args.source_model),
        "source_model_sha256": sha256_file(args.source_model),
        "quantize_command": args.quantize_command,
        "quantize_output": Path(args.quantize_log).read_text(encoding="utf-8").splitlines(),
        "halyard_commit": args.halyard_commit,
        "record_command": args.record_command,
        "llama_cpp_build": props.get("build_info", ""),
        "llama_server_settings": "CPU, -t/-tb %d, -c 512, -b/-ub 512, one slot, flash attention auto (default), "
                                 "f16 KV cache (default); prompt as token ids in one batch, then one token per step; "
                                 "temperature 0 with only the temperature sampler (greedy argmax), n_probs 2 over "
                                 "the raw logits; a case ends early where the argmax is an end-of-generation token" % args.threads,
        "n_gen": args.n_gen,
        "cases": cases,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
