"""Fixtures of the server tests: a real `halyard-server` process on a loopback port, with the
default model on the cpu device, talked to by the official `openai` client and by httpx.

HALYARD_SERVER_BIN: the server executable (default build/ci/bin/halyard-server).
HALYARD_TEST_MODEL: the default model file (scripts/fetch-model.sh prints its path).
"""

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_BIN = os.environ.get("HALYARD_SERVER_BIN", str(ROOT / "build/ci/bin/halyard-server"))
MODEL = os.environ.get("HALYARD_TEST_MODEL", "")
MODEL_ID = Path(MODEL).stem if MODEL else ""


class Server:
    """A running halyard-server: its base URL, process and log."""

    def __init__(self, proc, url, log_lines):
        self.proc = proc
        self.url = url
        self.log_lines = log_lines

    def log(self):
        return "\n".join(self.log_lines)

    def metrics(self):
        """The /metrics body parsed by prometheus_client: {sample name + labels: value}."""
        from prometheus_client.parser import text_string_to_metric_families

        r = httpx.get(self.url + "/metrics", timeout=10)
        r.raise_for_status()
        out = {}
        for family in text_string_to_metric_families(r.text):
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "model_name")
                out[s.name + ("{" + labels + "}" if labels else "")] = s.value
        return out

    def wait_idle(self, timeout=10.0):
        """Waits until no request runs or waits; returns the last metrics."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.metrics()
            if m["vllm:num_requests_running"] == 0 and m["vllm:num_requests_waiting"] == 0:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not become idle in {timeout} s: {m}")
            time.sleep(0.05)


@contextlib.contextmanager
def start_server(*extra, ready_timeout=120.0):
    if not MODEL:
        pytest.fail("HALYARD_TEST_MODEL is not set (scripts/fetch-model.sh prints the default model's path)")
    if not os.access(SERVER_BIN, os.X_OK):
        pytest.fail(f"no server executable at {SERVER_BIN} (build the halyard-server target or set HALYARD_SERVER_BIN)")
    cmd = [SERVER_BIN, "-m", MODEL, "-d", "cpu", "-t", "2", "--port", "0", "-c", "1024", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    port = []
    ready = threading.Event()

    def read_log():
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            m = re.search(r"ready on http://[^:]+:(\d+)", line)
            if m:
                port.append(int(m.group(1)))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        if not ready.wait(ready_timeout) or not port:
            raise AssertionError("the server did not become ready:\n" + "\n".join(lines))
        yield Server(proc, f"http://127.0.0.1:{port[0]}", lines)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(timeout=5)


@pytest.fixture(scope="session")
def server():
    """The shared server: 4 sequences, a queue of 16."""
    with start_server("--max-running", "4", "--max-waiting", "16") as s:
        yield s


@pytest.fixture(scope="session")
def client(server):
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
