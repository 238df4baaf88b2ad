"""The warm-up before readiness: /ready (and /health) answer 503 while the server warms up, the
startup log says what was warmed and how long it took before it says ready, and --no-warmup
skips it. The test build's --debug-warmup-delay-ms holds the warm-up open long enough to ask."""

import re
import signal
import subprocess
import threading
import time

import httpx
import pytest

from conftest import MODEL, MODEL_ID, SERVER_BIN


class LoggedServer:
    """A halyard-server process whose log lines are collected as they come."""

    def __init__(self, *extra):
        if not MODEL:
            pytest.fail("HALYARD_TEST_MODEL is not set (scripts/fetch-model.sh prints the default model's path)")
        cmd = [SERVER_BIN, "-m", MODEL, "-d", "cpu", "-t", "2", "--port", "0", "-c", "1024", *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.cv = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append("<exited>")
            self.cv.notify_all()

    def wait_for(self, pattern, timeout=120.0):
        """The index and match of the first log line matching `pattern`."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for i, line in enumerate(self.lines):
                    if m := re.search(pattern, line):
                        return i, m
                if "<exited>" in self.lines or not self.cv.wait(max(0.0, deadline - time.monotonic())):
                    raise AssertionError(f"no log line matches {pattern!r}:\n" + "\n".join(self.lines))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)


def test_ready_answers_503_until_the_warm_up_is_done():
    s = LoggedServer("--max-running", "4", "--debug-warmup-delay-ms", "3000")
    try:
        _, m = s.wait_for(r"listening on http://[^:]+:(\d+)")
        url = f"http://127.0.0.1:{m.group(1)}"
        warming, _ = s.wait_for(r"serve: warming up")
        # At least the 3 s the test build adds are still ahead.
        r = httpx.get(url + "/ready", timeout=10)
        assert r.status_code == 503 and r.json() == {"status": "loading"}
        assert httpx.get(url + "/health", timeout=10).status_code == 503
        done, m = s.wait_for(r"warm-up done in ([\d.]+) s: ([\d.]+) MiB of KV cache prefaulted, (\d+) graphs "
                             r"compiled and run \(decode batches of 1-4 sequences, a prefill chunk of (\d+) tokens\)")
        ready, _ = s.wait_for(r"ready on http://")
        assert warming < done < ready
        # 1024 positions x 4 sequences of the default model's f16 cache: 256 blocks of 360 KiB.
        assert float(m.group(2)) == pytest.approx(90.0, abs=0.1)
        assert int(m.group(3)) == 5  # decode batches 1-4 and the chunk, on cpu not bucketed
        assert int(m.group(4)) == 512
        assert httpx.get(url + "/ready", timeout=10).status_code == 200
    finally:
        s.stop()


def test_no_warmup_skips_it_and_still_serves():
    s = LoggedServer("--max-running", "2", "--no-warmup")
    try:
        _, m = s.wait_for(r"ready on http://[^:]+:(\d+)")
        url = f"http://127.0.0.1:{m.group(1)}"
        assert not any("warm-up done" in line for line in s.lines)
        s.wait_for(r"no warm-up \(--no-warmup\)")
        r = httpx.post(url + "/v1/completions", json={"model": MODEL_ID, "prompt": "Hello", "max_tokens": 3,
                                             "ignore_eos": True},
                       timeout=60)
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3
    finally:
        s.stop()
