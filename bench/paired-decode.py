#!/usr/bin/env python3
"""Paired decode benchmark: halyard bench and llama.cpp's llama-bench, one short run each, back
to back, many times; reports each tool's median tokens/s and the median of the per-pair ratios.

This machine's memory bandwidth moves in phases (decode of the same binary reads 27 t/s for
minutes, then 36): a ratio of medians taken minutes apart mixes phases, a ratio of two runs
taken seconds apart mostly does not. Both tools load the model outside their timed region.

  LLAMA_BENCH=/path/to/llama-bench python3 bench/paired-decode.py MODEL.gguf [--pairs 12]
      [--tokens 64] [--threads 2] [--halyard build/release/bin/halyard] [--json FILE]
      [--triad build/ci/bin/halyard-triad]

With --triad, each pair is followed by a triad measurement, so every pair also says what
fraction of the bandwidth of that minute Halyard's decode used.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def llama_tps(llama_bench, model, tokens, threads):
    out = subprocess.run([llama_bench, "-m", model, "-t", str(threads), "-p", "0", "-n", str(tokens), "-r", "1",
                          "-o", "json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)[0]["avg_ts"]


def halyard_run(halyard, model, tokens, threads, scratch):
    subprocess.run([halyard, "bench", "-m", model, "-t", str(threads), "-p", "1", "-n", str(tokens), "-r", "1",
                    "--json", scratch], check=True, capture_output=True, text=True)
    r = json.load(open(scratch))[0]
    return r["tg_tokens_per_s_median"], r["tg_effective_gb_per_s_median"]


def triad_gbps(triad, threads):
    out = subprocess.run([triad, "--threads", str(threads)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["median_gb_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--halyard", default="build/release/bin/halyard")
    ap.add_argument("--llama-bench", default=os.environ.get("LLAMA_BENCH"))
    ap.add_argument("--json", help="write every pair and the summary here")
    ap.add_argument("--triad", help="halyard-triad binary: measure the bandwidth after each pair")
    args = ap.parse_args()
    if not args.llama_bench:
        sys.exit("paired-decode: set LLAMA_BENCH or pass --llama-bench")
    scratch = (args.json or "paired-decode") + ".halyard.tmp"
    pairs = []
    for i in range(args.pairs):
        # Alternate which tool goes first, so neither always gets the fresher phase.
        if i % 2 == 0:
            l = llama_tps(args.llama_bench, args.model, args.tokens, args.threads)
            h, gbps = halyard_run(args.halyard, args.model, args.tokens, args.threads, scratch)
        else:
            h, gbps = halyard_run(args.halyard, args.model, args.tokens, args.threads, scratch)
            l = llama_tps(args.llama_bench, args.model, args.tokens, args.threads)
        pair = {"llama_tps": l, "halyard_tps": h, "ratio": h / l, "halyard_gb_per_s": gbps}
        line = f"pair {i + 1:2d}: llama.cpp {l:7.2f}  halyard {h:7.2f}  ratio {h / l:.3f}  halyard {gbps:.1f} GB/s"
        if args.triad:
            pair["triad_gb_per_s"] = triad_gbps(args.triad, args.threads)
            line += f"  triad {pair['triad_gb_per_s']:.1f} GB/s ({100 * gbps / pair['triad_gb_per_s']:.0f}%)"
        pairs.append(pair)
        print(line, flush=True)
    if os.path.exists(scratch):
        os.remove(scratch)
    ratios = sorted(p["ratio"] for p in pairs)
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
    summary = {
        "model": os.path.basename(args.model),
        "tokens": args.tokens,
        "threads": args.threads,
        "pairs": len(pairs),
        "llama_tps_median": statistics.median(p["llama_tps"] for p in pairs),
        "halyard_tps_median": statistics.median(p["halyard_tps"] for p in pairs),
        "ratio_median": statistics.median(ratios),
        "ratio_quartiles": [q[0], q[2]],
    }
    print(f"medians: llama.cpp {summary['llama_tps_median']:.2f} t/s, halyard {summary['halyard_tps_median']:.2f} t/s; "
          f"per-pair ratio median {summary['ratio_median']:.3f} (quartiles {q[0]:.3f} .. {q[2]:.3f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "pairs": pairs}, f, indent=1)


if __name__ == "__main__":
    main()
