"""The chat page served at GET / driven in a real headless Chromium.

The server's base URL comes from HALYARD_SERVER_URL (the server fixture sets it
for `halyard serve`; any OpenAI-compatible server that serves the page at / works,
e.g. llama-server with `--path server/assets` and the page copied to index.html).
Every wait is bounded so a broken server fails the test instead of hanging it.
"""

import json
import os
import pathlib
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

REPO = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("HALYARD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("HALYARD_CHROMEDRIVER", "/usr/bin/chromedriver")

# A prompt the small default model answers at length, so streaming is observable.
LONG_PROMPT = ("Write a long, detailed story about a sailor who crosses the ocean "
               "on a small boat. Describe every day of the journey.")
STREAM_TIMEOUT_S = 120  # a 256-token answer on 2 slow cores, with margin
# The answer Stop interrupts must outlast the click; raise it for a fast device.
STOP_MAX_TOKENS = int(os.environ.get("HALYARD_CHAT_STOP_MAX_TOKENS", "900"))
# Far beyond any context window (and under a 1 MiB body): the server must refuse it.
OVERSIZED_PROMPT = " ".join(["ship"] * 50000)  # no edge spaces: the page trims
POLL_S = 0.05


@pytest.fixture(scope="module")
def server_url(request):
    """HALYARD_SERVER_URL when set (any server that serves the page at /), else the suite's
    own halyard-server (conftest.py)."""
    url = os.environ.get("HALYARD_SERVER_URL")
    if not url:
        url = request.getfixturevalue("server").url
    return url.rstrip("/")


@pytest.fixture(scope="module")
def artifact_dir():
    d = pathlib.Path(os.environ.get("HALYARD_ARTIFACT_DIR", REPO / "build" / "artifacts"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def browser():
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: install the Debian packages chromium and chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1100,800", "--disable-gpu", "--no-first-run"):
        opts.add_argument(flag)
    # Explicit paths keep Selenium Manager from trying to download a driver.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def http_json(url, timeout=10):
    """GET url; (status, parsed JSON or None)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, None


def running_requests(server_url):
    """Requests the server is generating for, read from its Prometheus metrics;
    None when the server exposes no such gauge."""
    try:
        with urllib.request.urlopen(server_url + "/metrics", timeout=10) as r:
            text = r.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    names = ("vllm:num_requests_running", "llamacpp:requests_processing")
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in names:
                return sample.value
    return None


def snapshot(driver):
    """Status state and the last assistant message's text, read in one script call."""
    return driver.execute_script("""
        const a = document.querySelectorAll('#messages .assistant .text');
        return {state: document.getElementById('status').dataset.state,
                status: document.getElementById('status').textContent,
                text: a.length ? a[a.length - 1].textContent : null,
                assistants: a.length,
                errors: [...document.querySelectorAll('#messages .error .text')].map(e => e.textContent)};
    """)


def open_page(driver, server_url):
    driver.get(server_url + "/")
    WebDriverWait(driver, 20).until(
        lambda d: "loading" not in d.find_element(By.ID, "model-info").text)


def set_field(driver, element_id, value):
    # The options sit in a closed <details>; set them as the page's own code reads them.
    driver.execute_script("document.getElementById(arguments[0]).value = arguments[1];",
                          element_id, str(value))


def submit(driver, prompt, max_tokens):
    set_field(driver, "max-tokens", max_tokens)
    set_field(driver, "temperature", 0)
    box = driver.find_element(By.ID, "prompt")
    box.clear()
    box.send_keys(prompt)
    driver.find_element(By.ID, "send").click()


def wait_for(driver, predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = snapshot(driver)
        if predicate(snap):
            return snap
        time.sleep(POLL_S)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; page state {snapshot(driver)}")


def test_page_loads_and_shows_model_and_device(browser, server_url):
    status, models = http_json(server_url + "/v1/models")
    assert status == 200, f"GET /v1/models answered {status}"
    model_id = models["data"][0]["id"]
    open_page(browser, server_url)
    assert browser.title == "Halyard chat"
    info_text = browser.find_element(By.ID, "model-info").text
    info_status, info = http_json(server_url + "/halyard/info")
    if info_status == 200:
        # halyard serve: the model and the device it runs on.
        assert info["model"] in info_text and info["device"] in info_text, info_text
    else:
        # A foreign OpenAI server: the model id, and an honest "device unknown".
        # (ids that are file paths are shown by their file name).
        assert model_id.split("/")[-1] in info_text and "device unknown" in info_text, info_text
    for element_id in ("prompt", "send", "stop", "messages", "status"):
        assert browser.find_element(By.ID, element_id)
    assert not browser.find_element(By.ID, "stop").is_enabled(), "Stop is enabled while idle"


def test_prompt_streams_an_answer(browser, server_url, artifact_dir):
    open_page(browser, server_url)
    submit(browser, LONG_PROMPT, 256)
    # Record the answer's length at every poll while the page says it is streaming.
    lengths = []
    deadline = time.monotonic() + STREAM_TIMEOUT_S
    snap = snapshot(browser)
    while snap["state"] in ("idle", "waiting", "streaming") and time.monotonic() < deadline:
        if snap["state"] == "streaming" and snap["text"]:
            if not lengths or len(snap["text"]) != lengths[-1]:
                lengths.append(len(snap["text"]))
        time.sleep(POLL_S)
        snap = snapshot(browser)
    assert snap["state"] == "done", f"answer did not finish within {STREAM_TIMEOUT_S}s: {snap}"
    assert not snap["errors"], snap["errors"]
    assert snap["text"], "the answer is empty"
    # Streamed, not delivered at once: the text grew over at least two polls before the end.
    assert len(lengths) >= 2 and lengths == sorted(lengths), lengths
    assert lengths[-1] <= len(snap["text"])
    user = browser.find_elements(By.CSS_SELECTOR, "#messages .user .text")
    assert [u.text for u in user] == [LONG_PROMPT]
    assert browser.find_element(By.ID, "send").is_enabled()
    assert not browser.find_element(By.ID, "stop").is_enabled()
    shot = artifact_dir / "chat-page.png"
    assert browser.save_screenshot(str(shot)), f"could not write {shot}"
    assert shot.stat().st_size > 0


def test_stop_cancels_the_stream(browser, server_url, artifact_dir):
    open_page(browser, server_url)
    submit(browser, LONG_PROMPT, STOP_MAX_TOKENS)
    wait_for(browser, lambda s: s["state"] == "streaming" and s["text"], STREAM_TIMEOUT_S,
             "the first streamed text")
    assert browser.find_element(By.ID, "stop").is_enabled()
    browser.find_element(By.ID, "stop").click()
    stopped = wait_for(browser, lambda s: s["state"] != "streaming", 10, "the page to stop")
    assert stopped["state"] != "done", (
        f"the answer finished before Stop took effect; raise HALYARD_CHAT_STOP_MAX_TOKENS ({STOP_MAX_TOKENS})")
    assert stopped["state"] == "stopped", stopped
    time.sleep(1.0)  # dozens of tokens' time on this model: growth would show
    after = snapshot(browser)
    assert after["text"] == stopped["text"], "text kept growing after Stop"
    assert after["state"] == "stopped"
    assert browser.find_element(By.ID, "send").is_enabled()
    assert not browser.find_element(By.ID, "stop").is_enabled()
    # The aborted fetch closed the connection; a server that cancels on disconnect
    # stops generating. Checked where the server exposes its running-request gauge.
    running = running_requests(server_url)
    if running is not None:
        deadline = time.monotonic() + 10
        while running and time.monotonic() < deadline:
            time.sleep(0.1)
            running = running_requests(server_url)
        assert running == 0, f"the server still runs {running} request(s) after Stop"
    browser.save_screenshot(str(artifact_dir / "chat-page-stopped.png"))


def server_error(server_url, model, prompt):
    """What the server answers the page's request for prompt: (status, the message the
    page must show: error.message of an OpenAI error body, else the raw body)."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}],
                       "stream": True, "max_tokens": 16}).encode()
    req = urllib.request.Request(server_url + "/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, None
    except urllib.error.HTTPError as e:
        raw = e.read().decode(errors="replace")
        try:
            return e.code, json.loads(raw)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            return e.code, raw or e.reason


def test_server_error_is_shown(browser, server_url):
    _, models = http_json(server_url + "/v1/models")
    status, message = server_error(server_url, models["data"][0]["id"], OVERSIZED_PROMPT)
    assert 400 <= status < 500 and message, f"the server answered {status} to an oversized prompt"
    open_page(browser, server_url)
    browser.execute_script("document.getElementById('prompt').value = arguments[0];", OVERSIZED_PROMPT)
    set_field(browser, "max-tokens", 16)
    browser.find_element(By.ID, "send").click()
    snap = wait_for(browser, lambda s: s["state"] in ("error", "done", "stopped"), 60,
                    "the server to answer the oversized prompt")
    assert snap["state"] == "error", snap
    # The page shows the server's own message, taken out of {"error": {"message": ...}}.
    assert snap["errors"] == [f"HTTP {status}: {message}"], (snap["errors"], message)
    assert browser.find_element(By.ID, "send").is_enabled()
