#!/usr/bin/env python3
"""Parses a rendered /metrics body with a real Prometheus parser (prometheus_client's
text_string_to_metric_families) and checks what a gateway relies on: every family parses with
its declared type (a sample that does not belong to its TYPE line comes back as a separate
"untyped" family, so a wrong counter or histogram spelling fails here), the model_name label,
cumulative histogram buckets ending in +Inf == _count, all finish reasons, label escaping.

Usage: check_metrics_format.py SAMPLE_EXE   (runs SAMPLE_EXE OUT_FILE, then parses OUT_FILE)
       check_metrics_format.py --file BODY  (parses a body written elsewhere; contents not checked)
Exit status 77 (ctest's skip) when prometheus_client is not installed.
"""

import math
import os
import subprocess
import sys
import tempfile

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("SKIP: prometheus_client is not installed in", sys.executable, "(pip install prometheus-client)")
    sys.exit(77)

# The model name the sample program uses: every character a label value escapes.
MODEL = 'smol"lm\\2\nq4'

GAUGES = ["num_requests_running", "num_requests_waiting", "kv_cache_usage_perc", "cache_config_info"]
COUNTERS = ["prompt_tokens", "generation_tokens", "request_success", "prefix_cache_queries", "prefix_cache_hits"]
HISTOGRAMS = ["time_to_first_token_seconds", "inter_token_latency_seconds", "e2e_request_latency_seconds",
              "request_queue_time_seconds"]


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def parse(body):
    families = {}
    for fam in text_string_to_metric_families(body):
        if fam.name in families:
            fail(f"family {fam.name} appears twice (its samples are split: a TYPE/sample name mismatch)")
        families[fam.name] = fam
    return families


def check_structure(families):
    """Holds for any body ServerMetrics renders."""
    for fam in families.values():
        if fam.type == "unknown" or fam.type == "untyped":
            fail(f"{fam.name} parsed as untyped: its samples do not match a TYPE line")
    for prefix in ("vllm:", "halyard:"):
        for name in GAUGES:
            expect_type(families, prefix + name, "gauge")
        for name in COUNTERS:
            expect_type(families, prefix + name, "counter")
            for s in families[prefix + name].samples:
                if s.name != prefix + name + "_total":
                    fail(f"counter sample {s.name} is not {prefix + name}_total")
        for name in HISTOGRAMS:
            expect_type(families, prefix + name, "histogram")
            check_histogram(families[prefix + name])
        reasons = {s.labels["finished_reason"] for s in families[prefix + "request_success"].samples}
        if not {"stop", "length", "abort"} <= reasons:
            fail(f"{prefix}request_success has finished_reason {sorted(reasons)}, not stop/length/abort")
        info = families[prefix + "cache_config_info"].samples
        if len(info) != 1 or info[0].value != 1 or not {"block_size", "num_gpu_blocks"} <= info[0].labels.keys():
            fail(f"{prefix}cache_config_info is {info}")
    expect_type(families, "halyard:engine_last_step_age_seconds", "gauge")
    expect_type(families, "process_resident_memory_bytes", "gauge")
    rss = families["process_resident_memory_bytes"].samples
    if len(rss) != 1 or rss[0].labels or not rss[0].value > 0:
        fail(f"process_resident_memory_bytes is {rss}")
    for fam in families.values():
        if fam.name == "process_resident_memory_bytes":
            continue
        for s in fam.samples:
            if "model_name" not in s.labels:
                fail(f"{s.name} has no model_name label")
    # The halyard: copy carries the same values as the vLLM names.
    for fam in families.values():
        if fam.name.startswith("vllm:"):
            twin = families["halyard:" + fam.name[len("vllm:"):]]
            ours = sorted((s.name[len("vllm:"):], sorted(s.labels.items()), s.value) for s in fam.samples)
            theirs = sorted((s.name[len("halyard:"):], sorted(s.labels.items()), s.value) for s in twin.samples)
            if ours != theirs:
                fail(f"{fam.name} and {twin.name} differ")


def expect_type(families, name, typ):
    if name not in families:
        fail(f"no family {name}; families: {sorted(families)}")
    if families[name].type != typ:
        fail(f"{name} is a {families[name].type}, not a {typ}")


def check_histogram(fam):
    buckets = [s for s in fam.samples if s.name == fam.name + "_bucket"]
    (count,) = [s.value for s in fam.samples if s.name == fam.name + "_count"]
    sums = [s.value for s in fam.samples if s.name == fam.name + "_sum"]
    if len(sums) != 1 or math.isnan(sums[0]):
        fail(f"{fam.name}_sum is {sums}")
    bounds = [float(b.labels["le"]) for b in buckets]
    if bounds != sorted(bounds) or len(set(bounds)) != len(bounds) or bounds[-1] != math.inf:
        fail(f"{fam.name} bucket bounds {bounds} are not ascending and ending in +Inf")
    counts = [b.value for b in buckets]
    if counts != sorted(counts):
        fail(f"{fam.name} bucket counts {counts} are not cumulative")
    if counts[-1] != count:
        fail(f"{fam.name} +Inf bucket {counts[-1]} != _count {count}")


def check_sample_values(families):
    """The values halyard-metrics-sample put in."""
    def value(name, sample_name, **labels):
        for s in families[name].samples:
            if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
        fail(f"no sample {sample_name} {labels} in {name}")

    for p in ("vllm:", "halyard:"):
        checks = [
            (value(p + "num_requests_running", p + "num_requests_running", model_name=MODEL), 3),
            (value(p + "num_requests_waiting", p + "num_requests_waiting", model_name=MODEL), 1),
            (value(p + "kv_cache_usage_perc", p + "kv_cache_usage_perc", model_name=MODEL), 0.375),
            (value(p + "cache_config_info", p + "cache_config_info", model_name=MODEL, block_size="16",
                   num_gpu_blocks="512"), 1),
            (value(p + "prompt_tokens", p + "prompt_tokens_total"), 120),
            (value(p + "generation_tokens", p + "generation_tokens_total"), 40),
            (value(p + "prefix_cache_queries", p + "prefix_cache_queries_total"), 96),
            (value(p + "prefix_cache_hits", p + "prefix_cache_hits_total"), 64),
            (value(p + "request_success", p + "request_success_total", finished_reason="stop"), 2),
            (value(p + "request_success", p + "request_success_total", finished_reason="length"), 1),
            (value(p + "request_success", p + "request_success_total", finished_reason="abort"), 0),
            (value(p + "time_to_first_token_seconds", p + "time_to_first_token_seconds_bucket", le="0.001"), 1),
            (value(p + "time_to_first_token_seconds", p + "time_to_first_token_seconds_bucket", le="0.04"), 2),
            (value(p + "time_to_first_token_seconds", p + "time_to_first_token_seconds_bucket", le="2560.0"), 3),
            (value(p + "time_to_first_token_seconds", p + "time_to_first_token_seconds_bucket", le="+Inf"), 4),
            (value(p + "time_to_first_token_seconds", p + "time_to_first_token_seconds_count"), 4),
            (value(p + "inter_token_latency_seconds", p + "inter_token_latency_seconds_bucket", le="0.01"), 1),
            (value(p + "inter_token_latency_seconds", p + "inter_token_latency_seconds_bucket", le="0.025"), 3),
            (value(p + "e2e_request_latency_seconds", p + "e2e_request_latency_seconds_bucket", le="0.3"), 1),
            (value(p + "e2e_request_latency_seconds", p + "e2e_request_latency_seconds_bucket", le="7680.0"), 2),
            (value(p + "request_queue_time_seconds", p + "request_queue_time_seconds_bucket", le="0.3"), 2),
        ]
        for got, want in checks:
            if not math.isclose(got, want):
                fail(f"{p}: got {got}, want {want} (checks: {checks})")
        ttft_sum = value(p + "time_to_first_token_seconds", p + "time_to_first_token_seconds_sum")
        if not math.isclose(ttft_sum, 0.001 + 0.03 + 0.1 + 3000.0):
            fail(f"{p}time_to_first_token_seconds_sum is {ttft_sum}")
    age = value("halyard:engine_last_step_age_seconds", "halyard:engine_last_step_age_seconds", model_name=MODEL)
    if age != 0.125:
        fail(f"halyard:engine_last_step_age_seconds is {age}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--file":
        with open(sys.argv[2], encoding="utf-8") as f:
            body = f.read()
        families = parse(body)
        check_structure(families)
    elif len(sys.argv) == 2:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "metrics.txt")
            subprocess.run([sys.argv[1], out], check=True)
            with open(out, encoding="utf-8") as f:
                body = f.read()
        families = parse(body)
        check_structure(families)
        check_sample_values(families)
    else:
        print(__doc__)
        return 2
    print(f"OK: {len(families)} families parsed by prometheus_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
