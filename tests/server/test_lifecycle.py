"""What a serving stack relies on beyond the API: clients that disconnect free their sequences,
a full queue answers 429, /health notices a wedged engine, metrics move and return to idle,
SIGTERM drains, an API key guards /v1, and 64 concurrent streams are all served."""

import asyncio
import json
import signal
import socket
import threading
import time

import httpx
import pytest

from conftest import MODEL_ID, start_server

LONG = {"messages": [{"role": "user", "content": "Write a very long story about the sea."}], "max_tokens": 400,
        "temperature": 0.8, "ignore_eos": True, "stream": True}


def open_stream(url, body):
    """Starts a streaming request on a raw socket and reads until the first content chunk;
    returns the socket (the caller closes it to disconnect)."""
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=30)
    payload = json.dumps(body).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    seen = b""
    while b'"content":"' not in seen.replace(b'"content":""', b""):
        chunk = s.recv(65536)
        assert chunk, "the server closed the stream early: " + seen.decode(errors="replace")
        seen += chunk
    return s


def test_metrics_move_while_running_and_return_to_idle(server, client):
    idle = server.wait_idle()
    s = open_stream(server.url, LONG)
    try:
        m = server.metrics()
        assert m["vllm:num_requests_running"] == 1
        assert m["vllm:kv_cache_usage_perc"] > idle["vllm:kv_cache_usage_perc"]
        assert m["halyard:num_requests_running"] == 1
    finally:
        s.close()
    after = server.wait_idle()
    # The disconnect freed the sequence: KV usage is back where it was, the request counted aborted.
    assert after["vllm:kv_cache_usage_perc"] == idle["vllm:kv_cache_usage_perc"]
    assert after["vllm:request_success_total{finished_reason=abort}"] == \
        idle["vllm:request_success_total{finished_reason=abort}"] + 1
    client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    done = server.wait_idle()
    assert done["vllm:time_to_first_token_seconds_count"] > after["vllm:time_to_first_token_seconds_count"]
    assert done["vllm:e2e_request_latency_seconds_count"] == after["vllm:e2e_request_latency_seconds_count"] + 1
    assert done["vllm:request_queue_time_seconds_count"] == after["vllm:request_queue_time_seconds_count"] + 1
    assert done["vllm:generation_tokens_total"] >= after["vllm:generation_tokens_total"] + 1
    assert done["vllm:prompt_tokens_total"] > after["vllm:prompt_tokens_total"]
    (config,) = [k for k in done if k.startswith("vllm:cache_config_info")]
    assert "block_size=16" in config and done[config] == 1
    assert done["process_resident_memory_bytes"] > 0


def test_a_non_streaming_client_that_disconnects_frees_its_sequence(server):
    idle = server.wait_idle()
    body = dict(LONG, stream=False)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + "/v1/chat/completions", json=body, timeout=httpx.Timeout(30, read=1.0))
    after = server.wait_idle(timeout=5)
    assert after["vllm:request_success_total{finished_reason=abort}"] == \
        idle["vllm:request_success_total{finished_reason=abort}"] + 1


def test_a_full_queue_answers_429_with_retry_after():
    with start_server("--max-running", "1", "--max-waiting", "1") as srv:
        running = open_stream(srv.url, LONG)
        result = {}
        # The second request waits (no seat is free); the third finds the queue full.
        second = threading.Thread(target=lambda: result.setdefault("r", httpx.post(
            srv.url + "/v1/chat/completions", json=dict(LONG, stream=False, max_tokens=2), timeout=60)))
        try:
            second.start()
            deadline = time.monotonic() + 10
            while srv.metrics()["vllm:num_requests_waiting"] < 1:
                assert time.monotonic() < deadline, "the second request never queued"
                time.sleep(0.02)
            assert httpx.get(srv.url + "/ready").status_code == 503  # queue full: not ready
            r = httpx.post(srv.url + "/v1/chat/completions", json=dict(LONG, stream=False, max_tokens=2), timeout=60)
            assert r.status_code == 429
            assert r.headers["Retry-After"] == "1"
            assert r.json()["error"]["type"] == "rate_limit_error"
        finally:
            running.close()
        second.join(timeout=60)
        assert result["r"].status_code == 200
        srv.wait_idle()
        assert httpx.get(srv.url + "/ready").status_code == 200


def test_health_turns_503_when_the_engine_is_stalled():
    with start_server("--stall-timeout", "0.3") as srv:
        assert httpx.get(srv.url + "/health").status_code == 200
        assert httpx.post(srv.url + "/debug/stall?ms=2500").status_code == 200
        # Stalled but idle: healthy. With work waiting and no step: not.
        time.sleep(0.5)
        assert httpx.get(srv.url + "/health").status_code == 200
        s = open_stream_later(srv.url)
        time.sleep(0.6)
        r = httpx.get(srv.url + "/health")
        assert r.status_code == 503 and r.json()["status"] == "engine stalled"
        # The stall ends; the request runs; health returns.
        deadline = time.monotonic() + 10
        while httpx.get(srv.url + "/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        s.close()


def open_stream_later(url):
    """A streaming request sent without waiting for its first token."""
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=30)
    payload = json.dumps(dict(LONG, max_tokens=3)).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    return s


def test_sigterm_drains_running_requests_then_exits():
    with start_server("--shutdown-grace", "20") as srv:
        body = dict(LONG, max_tokens=40, stream=True)
        with httpx.Client(timeout=60) as c:
            with c.stream("POST", srv.url + "/v1/chat/completions", json=body) as r:
                lines = r.iter_lines()
                first = next(line for line in lines if line.startswith("data: "))
                assert first
                srv.proc.send_signal(signal.SIGTERM)
                # New work is refused while draining (503, or a refused connection once closed).
                try:
                    assert httpx.post(srv.url + "/v1/chat/completions", json=dict(body, stream=False),
                                      timeout=10).status_code == 503
                except httpx.ConnectError:
                    pass
                rest = [line for line in lines if line.startswith("data: ")]
        assert rest[-1] == "data: [DONE]"
        finish = [json.loads(x[6:])["choices"][0]["finish_reason"] for x in rest[:-1]]
        assert finish[-1] == "length"  # it ran to its end
        assert srv.proc.wait(timeout=30) == 0
        assert "stopped" in srv.log()


def test_sigterm_cancels_what_outlives_the_grace_period():
    with start_server("--shutdown-grace", "0.5") as srv:
        s = open_stream(srv.url, dict(LONG, max_tokens=900))
        srv.proc.send_signal(signal.SIGTERM)
        data = b""
        s.settimeout(30)
        while not data.endswith(b"0\r\n\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        assert b'"type":"server_error"' in data and b"shutting down" in data
        assert b"data: [DONE]" in data
        assert srv.proc.wait(timeout=30) == 0


def test_api_key_guards_v1_but_not_health_or_metrics():
    with start_server("--api-key", "sekrit") as srv:
        r = httpx.get(srv.url + "/v1/models")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(srv.url + "/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(srv.url + "/v1/models", headers={"Authorization": "Bearer sekrit"}).status_code == 200
        assert httpx.get(srv.url + "/health").status_code == 200
        assert httpx.get(srv.url + "/metrics").status_code == 200
        import openai
        c = openai.OpenAI(base_url=srv.url + "/v1", api_key="sekrit", max_retries=0)
        assert c.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Hi"}],
                                         max_tokens=2).choices


async def stream_all(url, n):
    async def one(c, i):
        body = {"messages": [{"role": "user", "content": f"Say the number {i}."}], "max_tokens": 4,
                "temperature": 0, "ignore_eos": True, "stream": True}
        async with c.stream("POST", url + "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200, await r.aread()
            lines = [line async for line in r.aiter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        return sum(1 for x in lines[:-1] if json.loads(x[6:])["choices"][0].get("delta", {}).get("content"))

    limits = httpx.Limits(max_connections=n + 8, max_keepalive_connections=n + 8)
    async with httpx.AsyncClient(timeout=120, limits=limits) as c:
        return await asyncio.gather(*(one(c, i) for i in range(n)))


def test_64_concurrent_streams_are_all_served():
    # Its own server, with a queue that holds the whole burst (the shared one queues 16).
    with start_server("--max-running", "8", "--max-waiting", "64") as srv:
        counts = asyncio.run(stream_all(srv.url, 64))
        assert len(counts) == 64 and all(c >= 1 for c in counts)
        idle = srv.wait_idle()
        assert idle["vllm:request_success_total{finished_reason=length}"] == 64


def test_a_request_past_the_timeout_is_cancelled_with_504():
    with start_server("--request-timeout", "1") as srv:
        t = time.monotonic()
        r = httpx.post(srv.url + "/v1/chat/completions", json=dict(LONG, stream=False, max_tokens=900), timeout=60)
        assert r.status_code == 504, r.text
        assert r.json()["error"]["type"] == "timeout_error"
        assert time.monotonic() - t < 10
        # Streamed: the stream ends with an error event and [DONE].
        with httpx.stream("POST", srv.url + "/v1/chat/completions", json=dict(LONG, max_tokens=900), timeout=60) as s:
            events = [line for line in s.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]"
        assert json.loads(events[-2][6:])["error"]["type"] == "timeout_error"
        idle = srv.wait_idle()
        assert idle["vllm:request_success_total{finished_reason=abort}"] == 2
