#!/usr/bin/env python3
"""Medians and ratios of a bench/compare-serve.sh run.

Reads OUT_DIR/<server>-n<N>-r<round>.json (bench/serve-load.py output, one level each),
prints per server and concurrency the median over rounds, then halyard / llama ratios and
the issue-14 targets where both sides and the single-stream level are present.
  bench/summarize-serve.py OUT_DIR [--json PATH]
"""

import argparse
import json
import pathlib
import re
import statistics
import sys

NAME = re.compile(r"^(?P<server>[a-z]+)-n(?P<n>\d+)-r(?P<round>\d+)\.json$")


def median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def load(out_dir):
    runs = {}  # (server, n) -> [level dict per round]
    for path in sorted(pathlib.Path(out_dir).glob("*.json")):
        m = NAME.match(path.name)
        if not m:
            continue
        doc = json.loads(path.read_text())
        for level in doc["levels"]:
            runs.setdefault((m["server"], int(m["n"])), []).append(level)
    return runs


def medians(levels):
    return {
        "rounds": len(levels),
        "output_tokens_per_s": median([lv["output_tokens_per_s"] for lv in levels]),
        "ttft_p50_ms": median([lv["ttft_ms"]["p50"] for lv in levels]),
        "ttft_p99_ms": median([lv["ttft_ms"]["p99"] for lv in levels]),
        "itl_p50_ms": median([lv["itl_ms"]["p50"] for lv in levels]),
        "itl_p99_ms": median([lv["itl_ms"]["p99"] for lv in levels]),
        "tokens_per_request": median([lv["tokens_per_request_mean"] for lv in levels]),
        "output_tokens_per_server_cpu_s": median([lv.get("output_tokens_per_server_cpu_s") for lv in levels]),
        "load_before": median([lv["loadavg_before"][0] for lv in levels if lv.get("loadavg_before")]),
        "errors_429": sum(lv["errors_429"] for lv in levels),
        "errors_other": sum(lv["errors_other"] for lv in levels),
        "requests": sum(lv["requests"] for lv in levels),
    }


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args()
    runs = load(args.out_dir)
    if not runs:
        sys.exit(f"summarize-serve: no <server>-n<N>-r<round>.json files in {args.out_dir}")
    table = {key: medians(levels) for key, levels in sorted(runs.items())}
    cols = ["server", "N", "rounds", "reqs", "out tok/s", "tok/cpu s", "TTFT p50", "TTFT p99",
            "ITL p50", "ITL p99", "tok/req", "429", "other err", "load"]
    rows = [[s, str(n), str(m["rounds"]), str(m["requests"]), str(m["output_tokens_per_s"]),
             str(m["output_tokens_per_server_cpu_s"]), str(m["ttft_p50_ms"]), str(m["ttft_p99_ms"]),
             str(m["itl_p50_ms"]), str(m["itl_p99_ms"]), str(m["tokens_per_request"]),
             str(m["errors_429"]), str(m["errors_other"]),
             "-" if m["load_before"] is None else f"{m['load_before']:.1f}"]
            for (s, n), m in table.items()]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print("medians over rounds (latencies in ms; tok/cpu s: per second of server CPU time;"
          " load: 1-min load average before the level)")
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths)))

    comparisons = []
    for n in sorted({n for _, n in table}):
        h, l = table.get(("halyard", n)), table.get(("llama", n))
        c = {"concurrency": n}
        if h and l:
            c["tokens_per_s_halyard_over_llama"] = ratio(h["output_tokens_per_s"], l["output_tokens_per_s"])
            c["ttft_p99_halyard_over_llama"] = ratio(h["ttft_p99_ms"], l["ttft_p99_ms"])
            c["tokens_per_cpu_s_halyard_over_llama"] = ratio(h["output_tokens_per_server_cpu_s"],
                                                             l["output_tokens_per_server_cpu_s"])
        for s in ("halyard", "llama"):
            one, this = table.get((s, 1)), table.get((s, n))
            if one and this and n != 1:
                c[f"{s}_scaling_over_single_stream"] = ratio(this["output_tokens_per_s"],
                                                             one["output_tokens_per_s"])
        comparisons.append(c)
    print()
    for c in comparisons:
        parts = [f"{k}={v}" for k, v in c.items() if k != "concurrency"]
        if parts:
            print(f"N={c['concurrency']}: " + ", ".join(parts))
    eight = next((c for c in comparisons if c["concurrency"] == 8), None)
    if eight and "tokens_per_s_halyard_over_llama" in eight:
        checks = [("halyard tok/s at 8 >= 3x its single stream",
                   eight.get("halyard_scaling_over_single_stream"), lambda v: v >= 3.0),
                  ("halyard tok/s at 8 >= 1.2x llama-server's",
                   eight["tokens_per_s_halyard_over_llama"], lambda v: v >= 1.2),
                  ("halyard TTFT p99 at 8 <= llama-server's",
                   eight["ttft_p99_halyard_over_llama"], lambda v: v <= 1.0)]
        print()
        for what, value, ok in checks:
            verdict = "n/a" if value is None else ("met" if ok(value) else "NOT met")
            print(f"target: {what}: {verdict} ({value})")
    if args.json:
        doc = {"medians": [{"server": s, "concurrency": n, **m} for (s, n), m in table.items()],
               "comparisons": comparisons}
        pathlib.Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
