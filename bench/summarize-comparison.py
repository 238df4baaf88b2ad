#!/usr/bin/env python3
"""Summarises bench/compare-llama-cpp.sh output: median over rounds of each tool's per-round
median, and the halyard / llama.cpp ratio. Writes a Markdown table to stdout."""
import glob
import json
import os
import statistics
import sys

out = sys.argv[1]
models = sorted({os.path.basename(p)[len("halyard-"):].rsplit("-", 1)[0] for p in glob.glob(f"{out}/halyard-*.json")})
triad = {os.path.basename(p): json.load(open(p)) for p in glob.glob(f"{out}/triad-*.json")}
print(open(f"{out}/machine.txt").read())
for name, t in sorted(triad.items()):
    read = f", streaming read {t['read_median_gb_per_s']} GB/s" if "read_median_gb_per_s" in t else ""
    print(f"- {name}: triad {t['median_gb_per_s']} GB/s median{read} ({t['threads']} threads)")
# Decode's ceiling: the streaming read at the most threads measured (files before the read
# existed have none, and the share column stays empty).
reads = [(t["threads"], t["read_median_gb_per_s"]) for t in triad.values() if "read_median_gb_per_s" in t]
ceiling = max(reads)[1] if reads else None
print()
print("| model | test | llama.cpp t/s | halyard t/s | ratio | halyard decode GB/s | share of read ceiling |")
print("|---|---|---:|---:|---:|---:|---:|")
for m in models:
    rows = {"pp512": ([], []), "tg128": ([], [])}
    gbps = []
    for p in sorted(glob.glob(f"{out}/llama-{m}-*.json")):
        for r in json.load(open(p)):
            test = "pp512" if r["n_prompt"] > 0 else "tg128"
            rows[test][0].append(r["avg_ts"])
    for p in sorted(glob.glob(f"{out}/halyard-{m}-*.json")):
        for r in json.load(open(p)):
            rows["pp512"][1].append(r["pp_tokens_per_s_median"])
            rows["tg128"][1].append(r["tg_tokens_per_s_median"])
            gbps.append(r["tg_effective_gb_per_s_median"])
    for test, (llama, hal) in rows.items():
        if not llama or not hal:
            continue
        l, h = statistics.median(llama), statistics.median(hal)
        g = f"{statistics.median(gbps):.1f}" if test == "tg128" else ""
        share = f"{100 * statistics.median(gbps) / ceiling:.0f}%" if test == "tg128" and ceiling else ""
        print(f"| {m} | {test} | {l:.1f} | {h:.1f} | {h / l:.2f}x | {g} | {share} |")
