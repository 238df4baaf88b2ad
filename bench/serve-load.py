#!/usr/bin/env python3
"""Load generator for OpenAI-compatible servers (halyard serve, llama-server, vLLM).

N concurrent clients each send streaming requests back to back, for a request
count or a duration; the run reports aggregate output tokens/s, TTFT and
inter-token latency percentiles, and errors by kind (429 apart from the rest).

  bench/serve-load.py --url http://127.0.0.1:8080 --concurrency 1,8,64 \
      --requests-per-client 4 --max-tokens 128 --json out.json

Output tokens per request are the usage chunk's completion_tokens when the server
sends one (stream_options.include_usage), else the number of content chunks.
Inter-token latency is the gap between consecutive content chunks (as vLLM's
benchmark_serving counts it); TPOT is (e2e - TTFT) / (tokens - 1) per request.
Needs httpx (tests/server/requirements.txt).
"""

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections import Counter

import httpx

# Fixed, deterministic prompt set: client c's request r uses PROMPTS[(c + r * 7) % len].
PROMPTS = [
    "Explain how a sailboat can move against the wind.",
    "Write a short story about a lighthouse keeper and a storm.",
    "List ten facts about the Moon and explain each one.",
    "Describe how bread is made, step by step.",
    "What are the main differences between a river and a canal?",
    "Write a letter to a friend describing a trip to the mountains.",
    "Explain why the sky is blue to a ten year old.",
    "Describe the life cycle of a butterfly in detail.",
    "Give advice to someone learning to cook for the first time.",
    "Write a poem about the sea at night.",
    "Explain how a computer stores numbers.",
    "Describe a busy harbour in the early morning.",
    "What should a traveller pack for a week of hiking?",
    "Tell the history of the bicycle in a few paragraphs.",
    "Explain how rain forms and why some places get more of it.",
    "Write a dialogue between a captain and a young sailor.",
]

# Warm-up uses a prompt outside the set, so no measured request starts on a prefix
# the warm-up left in the server's cache.
WARMUP_PROMPT = "Say hello and introduce yourself in two sentences."


def percentile(values, q):
    """Linear-interpolated q-th percentile (0-100); None for no values."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def mean(values):
    return sum(values) / len(values) if values else None


class Request:
    """One streamed request's measurements (seconds, monotonic clock)."""

    def __init__(self):
        self.start = self.first = self.end = None
        self.chunk_times = []      # arrival of each chunk that carried content
        self.usage_tokens = None   # completion_tokens from the usage chunk
        self.error = None          # kind, e.g. "http_429", "ReadTimeout"; None when it succeeded
        self.retry_after = None

    @property
    def tokens(self):
        return self.usage_tokens if self.usage_tokens is not None else len(self.chunk_times)


def request_body(args, prompt):
    body = {"model": args.model, "stream": True, "max_tokens": args.max_tokens,
            "temperature": args.temperature, "stream_options": {"include_usage": True}}
    if args.ignore_eos:
        body["ignore_eos"] = True  # llama-server and vLLM honour it; others ignore it
    if args.endpoint == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    return body


def content_of(chunk, endpoint):
    choices = chunk.get("choices") or []
    if not choices:
        return None
    if endpoint == "chat":
        return (choices[0].get("delta") or {}).get("content")
    return choices[0].get("text")


async def one_request(client, args, prompt):
    r = Request()
    path = "/v1/chat/completions" if args.endpoint == "chat" else "/v1/completions"
    r.start = time.monotonic()
    try:
        async with client.stream("POST", args.url + path, json=request_body(args, prompt)) as resp:
            if resp.status_code != 200:
                await resp.aread()
                r.error = f"http_{resp.status_code}"
                r.retry_after = resp.headers.get("retry-after")
                return r
            done = False
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, comments, event: lines
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    r.error = "stream_error"
                    return r
                if chunk.get("usage"):
                    r.usage_tokens = chunk["usage"].get("completion_tokens")
                if content_of(chunk, args.endpoint):
                    now = time.monotonic()
                    if r.first is None:
                        r.first = now
                    r.chunk_times.append(now)
            if not done:
                r.error = "incomplete_stream"
    except httpx.HTTPError as e:
        r.error = type(e).__name__
    except json.JSONDecodeError:
        r.error = "bad_json"
    finally:
        r.end = time.monotonic()
    return r


async def client_loop(cid, client, args, deadline, results):
    n = 0
    while True:
        if args.duration is None and n >= args.requests_per_client:
            return
        if args.duration is not None and time.monotonic() >= deadline:
            return
        r = await one_request(client, args, PROMPTS[(cid + n * 7) % len(PROMPTS)])
        results.append(r)
        n += 1
        if r.error == "http_429":
            # A polite client backs off as told, capped so the run keeps its shape.
            try:
                wait = float(r.retry_after) if r.retry_after else 0.1
            except ValueError:
                wait = 0.1
            await asyncio.sleep(min(wait, args.retry_after_cap))


def make_client(args, concurrency):
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(args.timeout, connect=10.0)
    return httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout)


async def run_level(args, concurrency):
    results = []
    async with make_client(args, concurrency) as client:
        start = time.monotonic()
        deadline = start + args.duration if args.duration is not None else None
        await asyncio.gather(*(client_loop(c, client, args, deadline, results)
                               for c in range(concurrency)))
        wall = time.monotonic() - start
    return summarize(concurrency, results, wall)


def summarize(concurrency, results, wall):
    ok = [r for r in results if r.error is None]
    errors = Counter(r.error for r in results if r.error is not None)
    ttft = [r.first - r.start for r in ok if r.first is not None]
    itl = [b - a for r in ok for a, b in zip(r.chunk_times, r.chunk_times[1:])]
    tpot = [(r.end - r.first) / (r.tokens - 1) for r in ok if r.first is not None and r.tokens > 1]
    e2e = [r.end - r.start for r in ok]
    tokens = sum(r.tokens for r in ok)
    ms = lambda x: None if x is None else round(x * 1000.0, 2)  # noqa: E731
    return {
        "concurrency": concurrency,
        "requests": len(results),
        "succeeded": len(ok),
        "errors": dict(sorted(errors.items())),
        "errors_429": errors.get("http_429", 0),
        "errors_other": sum(n for k, n in errors.items() if k != "http_429"),
        "wall_s": round(wall, 3),
        "output_tokens": tokens,
        "output_tokens_per_s": round(tokens / wall, 2) if wall > 0 else None,
        "requests_per_s": round(len(ok) / wall, 3) if wall > 0 else None,
        "tokens_per_request_mean": round(tokens / len(ok), 1) if ok else None,
        "token_count_source": "usage" if ok and all(r.usage_tokens is not None for r in ok) else "chunks",
        "ttft_ms": {"p50": ms(percentile(ttft, 50)), "p99": ms(percentile(ttft, 99)), "mean": ms(mean(ttft))},
        "itl_ms": {"p50": ms(percentile(itl, 50)), "p99": ms(percentile(itl, 99)), "mean": ms(mean(itl))},
        "tpot_ms": {"p50": ms(percentile(tpot, 50)), "p99": ms(percentile(tpot, 99))},
        "e2e_ms": {"p50": ms(percentile(e2e, 50)), "p99": ms(percentile(e2e, 99))},
    }


def print_table(levels, out=sys.stdout):
    cols = ["conc", "reqs", "ok", "429", "other err", "out tok/s", "req/s", "tok/req",
            "TTFT p50", "TTFT p99", "ITL p50", "ITL p99", "TPOT p50", "tok/cpu s"]
    rows = []
    for s in levels:
        f = lambda x: "-" if x is None else str(x)  # noqa: E731
        rows.append([f(s["concurrency"]), f(s["requests"]), f(s["succeeded"]), f(s["errors_429"]),
                     f(s["errors_other"]), f(s["output_tokens_per_s"]), f(s["requests_per_s"]),
                     f(s["tokens_per_request_mean"]), f(s["ttft_ms"]["p50"]), f(s["ttft_ms"]["p99"]),
                     f(s["itl_ms"]["p50"]), f(s["itl_ms"]["p99"]), f(s["tpot_ms"]["p50"]),
                     f(s.get("output_tokens_per_server_cpu_s"))])
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths)), file=out)
    for r in rows:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths)), file=out)
    print("(latencies in ms; token counts from the usage chunk where the server sends one;"
          " tok/cpu s: per second of the server's CPU time, with --server-pid)", file=out)
    for s in levels:
        if s["errors"]:
            print(f"errors at concurrency {s['concurrency']}: {s['errors']}", file=out)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def loadavg():
    try:
        return os.getloadavg()
    except OSError:
        return None


def process_stats(pid):
    """(CPU seconds used so far, resident MiB) of a local process, or None.
    Under a shared machine tokens per server CPU second are steadier than per wall second."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status") as f:
            rss_kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks, rss_kib / 1024.0


async def resolve_model(args):
    """The first id of GET /v1/models when --model is not given."""
    if args.model:
        return args.model
    async with make_client(args, 1) as client:
        try:
            resp = await client.get(args.url + "/v1/models")
            if resp.status_code == 200 and resp.json().get("data"):
                return resp.json()["data"][0]["id"]
            detail = f"HTTP {resp.status_code}"
        except (httpx.HTTPError, ValueError) as e:
            detail = str(e) or type(e).__name__
    sys.exit(f"serve-load: cannot read the model id from {args.url}/v1/models ({detail}); pass --model")


async def main_async(args):
    args.model = await resolve_model(args)
    if args.warmup:
        async with make_client(args, 1) as client:
            for i in range(args.warmup):
                r = await one_request(client, args, WARMUP_PROMPT)
                if r.error:
                    sys.exit(f"serve-load: warm-up request failed ({r.error}); is the server up at {args.url}?")
    levels = []
    for c in args.concurrency:
        before, proc_before = loadavg(), process_stats(args.server_pid)
        s = await run_level(args, c)
        s["loadavg_before"], s["loadavg_after"] = before, loadavg()
        proc_after = process_stats(args.server_pid)
        if proc_before and proc_after:
            cpu = proc_after[0] - proc_before[0]
            s["server_cpu_s"] = round(cpu, 2)
            s["output_tokens_per_server_cpu_s"] = round(s["output_tokens"] / cpu, 2) if cpu > 0 else None
            s["server_rss_mib_before"], s["server_rss_mib_after"] = round(proc_before[1], 1), round(proc_after[1], 1)
        elif args.server_pid is not None:
            sys.exit(f"serve-load: cannot read /proc/{args.server_pid} (--server-pid must be a local process)")
        levels.append(s)
        if args.progress:
            print_table([s], out=sys.stderr)
    return levels


def parse_concurrency(text):
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}")
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"concurrency values must be >= 1: {text!r}")
    return values


def positive(kind):
    def check(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}")
        if v <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
        return v
    return check


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL")
    p.add_argument("--endpoint", choices=["chat", "completions"], default="chat")
    p.add_argument("--concurrency", type=parse_concurrency, default=[1],
                   help="concurrent clients; a list such as 1,8,64 runs each in turn")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--requests-per-client", type=positive(int), default=None,
                   help="requests each client sends (default 4)")
    g.add_argument("--duration", type=positive(float), default=None,
                   help="seconds each level runs; requests in flight at the end finish")
    p.add_argument("--max-tokens", type=positive(int), default=128)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--ignore-eos", action="store_true",
                   help="send ignore_eos so every request generates max_tokens where supported")
    p.add_argument("--model", help="model field to send (default: first id of GET /v1/models)")
    p.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"))
    p.add_argument("--warmup", type=int, default=1, help="requests sent one at a time first, not measured")
    p.add_argument("--timeout", type=positive(float), default=600.0, help="per-request read timeout, s")
    p.add_argument("--retry-after-cap", type=float, default=1.0,
                   help="longest back-off after a 429, s (the server's Retry-After, capped)")
    p.add_argument("--server-pid", type=int, help="local server process: report its CPU time and RSS per level")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--progress", action="store_true", help="print each level to stderr as it ends")
    args = p.parse_args()
    if args.duration is None and args.requests_per_client is None:
        args.requests_per_client = 4
    args.url = args.url.rstrip("/")
    started = time.time()
    levels = asyncio.run(main_async(args))
    print_table(levels)
    if args.json:
        doc = {
            "tool": "bench/serve-load.py",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "url": args.url, "endpoint": args.endpoint, "model": args.model,
            "max_tokens": args.max_tokens, "temperature": args.temperature, "ignore_eos": args.ignore_eos,
            "requests_per_client": args.requests_per_client, "duration_s": args.duration,
            "warmup": args.warmup, "cpu": cpu_model(), "cores": os.cpu_count(),
            "levels": levels,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
