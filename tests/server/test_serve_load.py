"""bench/serve-load.py against a scripted stand-in server on loopback: what it counts
(tokens from the usage chunk or from chunks, 429s apart from other errors, cut-off
streams) must match what the server did. Needs no model, so it runs everywhere."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

TOOL = pathlib.Path(__file__).resolve().parents[2] / "bench" / "serve-load.py"
TOKENS = 5  # content chunks per streamed answer


class Script:
    """What the stand-in does with request k (0-based, in arrival order)."""

    def __init__(self, usage=True, fail_every=None, cut_stream=False):
        self.usage, self.fail_every, self.cut_stream = usage, fail_every, cut_stream
        self.count = 0
        self.lock = threading.Lock()
        self.bodies = []

    def next(self, body):
        with self.lock:
            k = self.count
            self.count += 1
            self.bodies.append(body)
        if self.fail_every and k % self.fail_every == 1:
            return "429"
        if self.fail_every and k % self.fail_every == 2:
            return "500"
        return "cut" if self.cut_stream else "ok"


def make_handler(script):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send_json(self, status, doc, extra=()):
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/v1/models":
                self.send_json(200, {"object": "list", "data": [{"id": "stand-in", "object": "model"}]})
            else:
                self.send_json(404, {"error": {"message": "not found"}})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            action = script.next(body)
            if action == "429":
                self.send_json(429, {"error": {"message": "queue full", "type": "rate_limit"}},
                               [("Retry-After", "0")])
                return
            if action == "500":
                self.send_json(500, {"error": {"message": "boom", "type": "server_error"}})
                return
            chat = self.path == "/v1/chat/completions"
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()

            def event(doc):
                self.wfile.write(b"data: " + json.dumps(doc).encode() + b"\n\n")
                self.wfile.flush()

            for i in range(TOKENS):
                choice = {"index": 0, "delta": {"content": f"t{i} "}} if chat else {"index": 0, "text": f"t{i} "}
                event({"object": "chat.completion.chunk", "choices": [choice]})
                time.sleep(0.002)
                if action == "cut" and i == 2:
                    self.close_connection = True
                    return  # the stream ends without [DONE]
            if script.usage:
                # A server that packs several tokens into a chunk reports more than it sent.
                event({"choices": [], "usage": {"completion_tokens": TOKENS * 2, "prompt_tokens": 7}})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    return Handler


@pytest.fixture
def stand_in():
    servers = []

    def start(script):
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def load_tool():
    spec = importlib.util.spec_from_file_location("serve_load", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(tmp_path, *args):
    out = tmp_path / "load.json"
    proc = subprocess.run([sys.executable, str(TOOL), "--warmup", "0", "--json", str(out), *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text()), proc.stdout


def test_counts_usage_tokens_and_sends_the_fixed_request(stand_in, tmp_path):
    script = Script(usage=True)
    url = stand_in(script)
    # The stand-in runs in this process, so its CPU time and RSS are this process's.
    doc, table = run_tool(tmp_path, "--url", url, "--concurrency", "1,3", "--requests-per-client", "2",
                          "--max-tokens", "17", "--server-pid", str(os.getpid()))
    assert [lv["concurrency"] for lv in doc["levels"]] == [1, 3]
    one, three = doc["levels"]
    assert (one["requests"], one["succeeded"], three["requests"], three["succeeded"]) == (2, 2, 6, 6)
    assert three["output_tokens"] == 6 * TOKENS * 2 and three["token_count_source"] == "usage"
    assert three["errors"] == {} and three["errors_other"] == 0
    assert three["ttft_ms"]["p50"] > 0 and three["itl_ms"]["p99"] >= three["itl_ms"]["p50"] > 0
    assert doc["model"] == "stand-in"
    assert three["server_cpu_s"] >= 0 and three["server_rss_mib_after"] > 0
    body = script.bodies[0]
    assert body["stream"] is True and body["max_tokens"] == 17 and body["model"] == "stand-in"
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"][0]["role"] == "user"
    # The fixed prompt set in its fixed order: client 0 sends prompts 0 and 7 at concurrency 1.
    prompts = load_tool().PROMPTS
    assert [b["messages"][0]["content"] for b in script.bodies[:2]] == [prompts[0], prompts[7]]
    assert "conc" in table and "out tok/s" in table


def test_counts_chunks_without_usage_on_the_completions_endpoint(stand_in, tmp_path):
    script = Script(usage=False)
    url = stand_in(script)
    doc, _ = run_tool(tmp_path, "--url", url, "--endpoint", "completions", "--concurrency", "2",
                      "--requests-per-client", "3", "--model", "m")
    level = doc["levels"][0]
    assert level["succeeded"] == 6 and level["output_tokens"] == 6 * TOKENS
    assert level["token_count_source"] == "chunks"
    assert all("prompt" in b and "messages" not in b and b["model"] == "m" for b in script.bodies)


def test_separates_429_from_other_errors(stand_in, tmp_path):
    url = stand_in(Script(fail_every=4))
    doc, table = run_tool(tmp_path, "--url", url, "--concurrency", "3", "--requests-per-client", "4")
    level = doc["levels"][0]
    # Requests 1, 5, 9 answered 429; 2, 6, 10 answered 500; the other six streamed.
    assert level["requests"] == 12 and level["succeeded"] == 6
    assert level["errors"] == {"http_429": 3, "http_500": 3}
    assert level["errors_429"] == 3 and level["errors_other"] == 3
    assert level["output_tokens"] == 6 * TOKENS * 2
    assert "http_429" in table


def test_a_stream_cut_before_done_is_an_error(stand_in, tmp_path):
    url = stand_in(Script(cut_stream=True))
    doc, _ = run_tool(tmp_path, "--url", url, "--requests-per-client", "2")
    level = doc["levels"][0]
    assert level["succeeded"] == 0 and level["errors"] == {"incomplete_stream": 2}


def test_duration_mode_keeps_clients_busy_until_the_deadline(stand_in, tmp_path):
    script = Script()
    url = stand_in(script)
    doc, _ = run_tool(tmp_path, "--url", url, "--concurrency", "2", "--duration", "0.5")
    level = doc["levels"][0]
    # Each answer takes ~10 ms, so two clients fit many requests into half a second,
    # and the level ends soon after the deadline (the requests in flight finish).
    assert level["requests"] >= 4 and level["succeeded"] == level["requests"] == script.count
    assert 0.5 <= level["wall_s"] < 5 and doc["duration_s"] == 0.5


def test_no_server_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, str(TOOL), "--url", "http://127.0.0.1:9", "--warmup", "1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "/v1/models" in proc.stderr and "Traceback" not in proc.stderr


def test_a_server_pid_that_is_not_running_is_refused(stand_in, tmp_path):
    url = stand_in(Script())
    proc = subprocess.run([sys.executable, str(TOOL), "--url", url, "--warmup", "0",
                           "--requests-per-client", "1", "--server-pid", str(2**22 + 1)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "--server-pid" in proc.stderr, proc.stderr


def test_bad_options_are_refused(tmp_path):
    for bad in (["--concurrency", "0"], ["--concurrency", "1,x"], ["--max-tokens", "-3"],
                ["--duration", "5", "--requests-per-client", "2"]):
        proc = subprocess.run([sys.executable, str(TOOL), *bad], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "error" in proc.stderr, (bad, proc.stderr)
