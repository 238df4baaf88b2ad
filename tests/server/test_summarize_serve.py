"""bench/summarize-serve.py: medians over rounds, halyard / llama ratios and the issue-14
verdicts at N=8, from hand-made serve-load.py results."""

import json
import pathlib
import subprocess
import sys

TOOL = pathlib.Path(__file__).resolve().parents[2] / "bench" / "summarize-serve.py"


def level(n, tok_s, ttft_p99, errors_429=0):
    return {"concurrency": n, "requests": 4 * n, "output_tokens_per_s": tok_s,
            "output_tokens_per_server_cpu_s": tok_s / 2, "tokens_per_request_mean": 128.0,
            "ttft_ms": {"p50": ttft_p99 / 2, "p99": ttft_p99}, "itl_ms": {"p50": 10.0, "p99": 20.0},
            "errors_429": errors_429, "errors_other": 0, "loadavg_before": [1.0, 1.0, 1.0]}


def write(out, server, n, rnd, lv):
    (out / f"{server}-n{n}-r{rnd}.json").write_text(json.dumps({"levels": [lv]}))


def run(out):
    proc = subprocess.run([sys.executable, str(TOOL), str(out), "--json", str(out / "summary.json")],
                          capture_output=True, text=True, timeout=60)
    return proc, (json.loads((out / "summary.json").read_text()) if proc.returncode == 0 else None)


def test_medians_ratios_and_targets(tmp_path):
    # Three rounds each; the medians are the middle values whatever the order.
    for rnd, (h1, h8, l1, l8) in enumerate([(50, 200, 40, 100), (60, 150, 45, 120), (55, 400, 50, 110)], 1):
        write(tmp_path, "halyard", 1, rnd, level(1, h1, 100))
        write(tmp_path, "halyard", 8, rnd, level(8, h8, 300, errors_429=1))
        write(tmp_path, "llama", 1, rnd, level(1, l1, 100))
        write(tmp_path, "llama", 8, rnd, level(8, l8, 250))
    proc, doc = run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    med = {(m["server"], m["concurrency"]): m for m in doc["medians"]}
    assert med[("halyard", 8)]["output_tokens_per_s"] == 200 and med[("llama", 8)]["output_tokens_per_s"] == 110
    assert med[("halyard", 8)]["errors_429"] == 3 and med[("halyard", 8)]["rounds"] == 3
    eight = next(c for c in doc["comparisons"] if c["concurrency"] == 8)
    assert eight["tokens_per_s_halyard_over_llama"] == round(200 / 110, 3)
    assert eight["halyard_scaling_over_single_stream"] == round(200 / 55, 3)
    assert eight["ttft_p99_halyard_over_llama"] == round(300 / 250, 3)
    assert "target: halyard tok/s at 8 >= 3x its single stream: met" in proc.stdout
    assert "target: halyard tok/s at 8 >= 1.2x llama-server's: met" in proc.stdout
    assert "target: halyard TTFT p99 at 8 <= llama-server's: NOT met" in proc.stdout


def test_no_results_is_a_clear_error(tmp_path):
    proc, _ = run(tmp_path)
    assert proc.returncode != 0 and "no <server>-n<N>-r<round>.json" in proc.stderr
