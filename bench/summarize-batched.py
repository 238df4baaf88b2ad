#!/usr/bin/env python3
"""Summarises bench/compare-batched.sh output (OUT_DIR): per model and N, the median over rounds
of each tool's per-round median aggregate decode t/s (halyard's tg_aggregate_tokens_per_s_median,
llama-batched-bench's speed_tg), halyard / llama.cpp, and each tool's N / 1 ratio; then the KV
report of the --mixed run. Writes Markdown to stdout."""
import glob
import json
import os
import re
import statistics
import sys


def llama_runs(path):
    """speed_tg of every result line of a llama-batched-bench --output-format jsonl run."""
    runs = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{") and "speed_tg" in line:
            runs.append(json.loads(line)["speed_tg"])
    return runs


def main(out):
    rows = {}  # (model, n) -> {"halyard": [per-round medians], "llama": [...]}
    for p in glob.glob(f"{out}/halyard-*-n*-*.json"):
        m = re.fullmatch(r"halyard-(.+)-n(\d+)-(\d+)\.json", os.path.basename(p))
        if not m:
            continue
        data = json.load(open(p))
        if data:
            rows.setdefault((m[1], int(m[2])), {"halyard": [], "llama": []})["halyard"].append(
                data[0]["tg_aggregate_tokens_per_s_median"])
    for p in glob.glob(f"{out}/llama-*-n*-*.jsonl"):
        m = re.fullmatch(r"llama-(.+)-n(\d+)-(\d+)\.jsonl", os.path.basename(p))
        runs = llama_runs(p) if m else []
        if runs:
            rows.setdefault((m[1], int(m[2])), {"halyard": [], "llama": []})["llama"].append(statistics.median(runs))
    print(open(f"{out}/machine.txt").read())
    med = {k: {t: statistics.median(v) if v else None for t, v in d.items()} for k, d in rows.items()}
    print("| model | N | llama.cpp S_TG t/s | halyard t/s | halyard / llama.cpp | llama.cpp N / 1 | halyard N / 1 "
          "| rounds (llama, halyard) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    fmt = lambda x, f="{:.1f}": f.format(x) if x is not None else "-"
    for (model, n) in sorted(med):
        l, h = med[(model, n)]["llama"], med[(model, n)]["halyard"]
        one = med.get((model, 1), {})
        lr = l / one["llama"] if l and one.get("llama") else None
        hr = h / one["halyard"] if h and one.get("halyard") else None
        vs = h / l if h and l else None
        per_round = ", ".join(f"{a:.1f}" for a in sorted(rows[(model, n)]["llama"])) + " / " + ", ".join(
            f"{a:.1f}" for a in sorted(rows[(model, n)]["halyard"]))
        print(f"| {model} | {n} | {fmt(l)} | {fmt(h)} | {fmt(vs, '{:.2f}x')} | {fmt(lr, '{:.2f}x')} "
              f"| {fmt(hr, '{:.2f}x')} | {per_round} |")
    kv = sorted(glob.glob(f"{out}/kv-*.json"))
    if kv:
        print()
        print("KV cache after a --mixed run (positions each = prompt + generated):")
        print()
        print("| model | dtype | sequences | positions each | blocks used x 16 | MiB in use | MiB pool "
              "| MiB f32 per-slot (context) | in use / per-slot |")
        print("|---|---|---:|---|---:|---:|---:|---:|---:|")
        for p in kv:
            for r in json.load(open(p)):
                k = r["kv"]
                mib = lambda b: b / (1 << 20)
                print(f"| {os.path.basename(p)[3:-5]} | {k['dtype']} | {r['sequences']} "
                      f"| {','.join(map(str, k['sequence_lengths']))} | {k['blocks_used']} "
                      f"| {mib(k['bytes_used']):.1f} | {mib(k['bytes_pool']):.1f} "
                      f"| {mib(k['bytes_per_slot_f32_layout']):.1f} ({k['context_length']}) "
                      f"| {100 * k['bytes_used'] / k['bytes_per_slot_f32_layout']:.1f}% |")
    if os.path.exists(f"{out}/load.txt"):
        print()
        print("Load average (1, 5, 15 min) before each pair of runs:")
        print()
        for line in open(f"{out}/load.txt"):
            print(f"    {line.rstrip()}")


if __name__ == "__main__":
    main(sys.argv[1])
