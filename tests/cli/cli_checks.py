#!/usr/bin/env python3
"""The halyard CLI as a user meets it: environment variables, bad arguments, interruption,
finish reasons and where output goes. Run as `cli_checks.py HALYARD_BINARY CHECK`; ctest runs
each check as its own entry. Exits non-zero with a message when a check fails."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HALYARD = sys.argv[1]
MODEL = os.environ.get("HALYARD_TEST_MODEL") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf")


def run(args, env=None, timeout=300):
    full_env = dict(os.environ)
    for k in [k for k in full_env if k.startswith("HALYARD_") and k != "HALYARD_TEST_MODEL"]:
        del full_env[k]
    full_env.update(env or {})
    return subprocess.run([HALYARD] + args, capture_output=True, text=True, env=full_env, timeout=timeout)


def expect(cond, what, result=None):
    if not cond:
        detail = ""
        if result is not None:
            detail = f"\n  exit {result.returncode}\n  stdout: {result.stdout[-2000:]!r}\n  stderr: {result.stderr[-2000:]!r}"
        sys.exit(f"FAIL: {what}{detail}")


def gen(*extra, env=None, device="cpu", n=2):
    return run(["generate", "-m", MODEL, "-d", device, "-c", "64", "-n", str(n), *extra], env=env)


def check_env_device():
    r = run(["generate", "-m", MODEL, "-c", "64", "-n", "1", "-p", "Hi"], env={"HALYARD_DEVICE": "bogus"})
    expect(r.returncode != 0 and "bogus" in r.stderr, "HALYARD_DEVICE=bogus is refused", r)
    r = run(["generate", "-m", MODEL, "-c", "64", "-n", "1", "-p", "Hi"], env={"HALYARD_DEVICE": "ref"})
    expect(r.returncode == 0 and " on ref" in r.stderr, "HALYARD_DEVICE=ref runs on ref", r)
    r = run(["generate", "-m", MODEL, "-d", "cpu", "-c", "64", "-n", "1", "-p", "Hi"], env={"HALYARD_DEVICE": "ref"})
    expect(r.returncode == 0 and " on cpu" in r.stderr, "-d cpu wins over HALYARD_DEVICE", r)


def check_invalid_sampling():
    for flag, value, word in [("--temp", "nan", "temperature"), ("--temp", "-1", "temperature"),
                              ("--top-p", "2", "top-p"), ("--top-p", "nan", "top-p"), ("--top-p", "0", "top-p"),
                              ("--top-k", "-5", "top-k"), ("--min-p", "1.5", "min-p"), ("--min-p", "nan", "min-p"),
                              ("--repeat-penalty", "0", "repeat penalty"), ("--repeat-last-n", "-2", "repeat-last-n"),
                              ("--presence-penalty", "nan", "presence"), ("--frequency-penalty", "inf", "frequency"),
                              ("--logit-bias", "7042", "TOKEN=BIAS"), ("--logit-bias", "x=1", "TOKEN=BIAS"),
                              ("--logit-bias", "7042=", "TOKEN=BIAS"), ("--logit-bias", "99999999=1", "vocabulary"),
                              ("--logit-bias", "7042=nan", "logit bias")]:
        r = gen(flag, value, "-p", "Hi")
        expect(r.returncode != 0 and word in r.stderr, f"{flag} {value} is a clear error", r)
        expect(r.stdout == "", f"{flag} {value} prints nothing on stdout", r)
    r = gen("--temp", "0.7", "--top-k", "0", "--top-p", "1", "-p", "Hi")
    expect(r.returncode == 0, "valid sampling values run", r)


def check_sampling_options():
    # Greedy " Paris" (token 7042); banning it changes the first word, and the penalties and
    # min-p run.
    r = gen("-p", "The capital of France is", n=1)
    expect(r.returncode == 0 and r.stdout.rstrip("\n") == "The capital of France is Paris", "greedy says Paris", r)
    r = gen("--logit-bias", "7042=-inf", "-p", "The capital of France is", n=1)
    expect(r.returncode == 0 and r.stdout.startswith("The capital of France is") and "Paris" not in r.stdout,
           "--logit-bias 7042=-inf bans ' Paris'", r)
    r = gen("--logit-bias", "7042=-inf", "--logit-bias", "7042=+200", "-p", "The capital of France is", n=1)
    expect(r.returncode == 0 and "Paris" not in r.stdout, "a repeated --logit-bias adds up (-inf + 200 is -inf)", r)
    r = gen("--temp", "0.8", "--seed", "3", "--min-p", "0.1", "--repeat-penalty", "1.3", "--repeat-last-n", "-1",
            "--presence-penalty", "0.5", "--frequency-penalty", "0.5", "-p", "Hi", n=4)
    expect(r.returncode == 0, "every sampling option in range runs", r)


def check_threads_warning():
    r = gen("-t", str((os.cpu_count() or 1) + 2), "-p", "Hi", n=1)
    expect(r.returncode == 0 and "exceed" in r.stderr, "too many threads run with a warning", r)
    r = gen("-t", "1", "-p", "Hi", n=1)
    expect(r.returncode == 0 and "exceed" not in r.stderr, "one thread runs without that warning", r)
    r = run(["generate", "-m", MODEL, "-d", "cpu", "-n", "1"], env={"HALYARD_THREADS": "two"})
    expect(r.returncode != 0 and "threads" in r.stderr, "a malformed HALYARD_THREADS is refused", r)


def check_finish_reason():
    r = run(["generate", "-m", MODEL, "-d", "cpu", "-c", "8", "-n", "20", "-p", "The capital of France is"])
    expect(r.returncode == 0 and "stopped: context full" in r.stderr, "-c 8 -n 20 says the context is full", r)
    r = gen("-p", "The capital of France is")
    expect(r.returncode == 0 and "stopped: max tokens" in r.stderr, "-n 2 says max tokens", r)
    r = gen("-p", "Hi", n=1)
    expect("decode n/a" in r.stderr and "0.00 tok/s" not in r.stderr.split("decode")[-1],
           "a 1-token run prints no decode rate", r)


def check_refused_prompt_prints_nothing():
    r = run(["generate", "-m", MODEL, "-d", "cpu", "-c", "4", "-n", "2", "-p", "one two three four five six seven"])
    expect(r.returncode != 0 and "context" in r.stderr, "a prompt longer than the context is refused", r)
    expect(r.stdout == "", "a refused prompt leaves stdout empty", r)


def check_sigint():
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALYARD_") or k == "HALYARD_TEST_MODEL"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen([HALYARD, "generate", "-m", MODEL, "-d", "ref", "-c", "512", "-n", "400", "-p",
                              "Once upon a time"], stdout=out, stderr=err, env=env)
        deadline = time.time() + 240
        while time.time() < deadline and p.poll() is None:
            out.seek(0)
            if len(out.read()) > len("Once upon a time") + 4:  # a few generated tokens arrived
                break
            time.sleep(0.2)
        expect(p.poll() is None, "generation is still running when interrupted")
        p.send_signal(signal.SIGINT)
        try:
            rc = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            sys.exit("FAIL: SIGINT did not stop generation within 60 s")
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    expect(rc == 130, f"exit code 130 after SIGINT (got {rc}); stderr: {stderr!r}")
    expect("stopped: cancelled" in stderr, f"the summary says it was cancelled; stderr: {stderr!r}")
    expect(stdout.startswith("Once upon a time") and stdout.endswith("\n"), f"prompt echo and text flushed: {stdout!r}")


def check_cli_surface():
    r = run(["--version"])
    expect(r.returncode == 0 and r.stdout.startswith("halyard 0."), "--version prints the version", r)
    r = run([])
    expect(r.returncode == 0 and "generate" in r.stdout and "HALYARD_DEVICE" in r.stdout,
           "a bare halyard prints help with the environment variables", r)
    r = run(["generate", "--help"])
    expect(r.returncode == 0 and "HALYARD_DEVICE" in r.stdout and "128" in r.stdout,
           "generate --help shows defaults and environment variables", r)
    r = gen(n=-1)
    expect(r.returncode != 0 and "2147483647" in r.stderr and len(r.stderr) < 400,
           "-n -1 names the real range", r)
    r = run(["generate", "-v", "-m", MODEL, "-d", "cpu", "-c", "32", "-n", "1", "-p", "Hi"])
    expect(r.returncode == 0 and "kernels" in r.stderr and "prefill" in r.stderr,
           "generate -v is accepted and names the kernel set and prefill path", r)


def check_model_dir():
    r = run(["generate", "-d", "cpu", "-n", "1"], env={"HALYARD_MODEL_DIR": "/nonexistent-halyard-dir"})
    expect(r.returncode != 0 and "/nonexistent-halyard-dir/" in r.stderr, "generate looks in HALYARD_MODEL_DIR", r)
    r = run(["generate", "-d", "cpu", "-c", "32", "-n", "1", "-p", "Hi"],
            env={"HALYARD_MODEL_DIR": os.path.dirname(MODEL)})
    expect(r.returncode == 0, "generate finds the default model through HALYARD_MODEL_DIR", r)
    r = run(["bench", "-d", "cpu", "-p", "2", "-n", "1", "-r", "1"], env={"HALYARD_MODEL_DIR": "/nonexistent-halyard-dir"})
    expect(r.returncode != 0 and "/nonexistent-halyard-dir/" in r.stderr, "bench looks in HALYARD_MODEL_DIR", r)


def check_conformance_seed():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.json")
        r = run(["conform", "-d", "ref", "--op", "ADD", "--json", path], env={"HALYARD_CONFORMANCE_SEED": "7"})
        expect(r.returncode == 0, "conform runs", r)
        with open(path) as f:
            expect(json.load(f)["seed"] == 7, "conform takes its seed from HALYARD_CONFORMANCE_SEED", r)


def check_unknown_chat_template():
    # The default model's own template is rendered, and the CLI says so.
    r = run(["generate", "-d", "cpu", "-c", "128", "-n", "1", "--chat", "-p", "Hi"])
    expect(r.returncode == 0 and "chat template: the model's own (tokenizer.chat_template)" in r.stderr
           and "cannot be rendered" not in r.stderr, "--chat names the model's own template", r)
    # A copy of the default model whose template uses a statement the interpreter does not know
    # ("for" made "fox", byte for byte, inside the tokenizer.chat_template value only).
    with open(MODEL, "rb") as f:
        data = bytearray(f.read())
    key = b"tokenizer.chat_template"
    at = data.index(key) + len(key)
    vtype = int.from_bytes(data[at:at + 4], "little")
    expect(vtype == 8, "the template is a GGUF string")
    length = int.from_bytes(data[at + 4:at + 12], "little")
    start, end = at + 12, at + 12 + length
    original = bytes(data[start:end])
    expect(b"{% for message" in original, "the template starts its loop with {% for message")
    template = original.replace(b"{% for message", b"{% fox message", 1)
    data[start:end] = template
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "unknown-template.gguf")
        with open(path, "wb") as f:
            f.write(data)
        r = run(["generate", "-m", path, "-d", "cpu", "-c", "128", "-n", "1", "--chat", "-p", "Hi"])
    expect(r.returncode == 0 and "cannot be rendered (chat template: unsupported statement 'fox' at line 1)" in r.stderr
           and template[:20].decode().replace("\n", " ") in r.stderr,
           "a template the interpreter cannot parse is a warning naming the construct, its line and the template's start", r)
    expect(r.stderr.count("cannot be rendered") == 1, "the warning is given once", r)
    expect("chat template: builtin ChatML" in r.stderr, "--chat names the builtin format standing in", r)



def check_bench_read_ceiling():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bench.json")
        r = run(["bench", "-m", MODEL, "-d", "cpu", "-t", "1", "-p", "4", "-n", "2", "-r", "1", "--json", path])
        expect(r.returncode == 0, "bench runs", r)
        result = json.load(open(path))[0]
    ceiling = result.get("read_ceiling_gb_per_s", 0)
    expect(ceiling > 0 and result.get("read_ceiling_threads") == 1, "bench measures the read ceiling on its threads", r)
    share = result["tg_effective_gb_per_s_median"] / ceiling
    expect(abs(result["tg_share_of_read_ceiling"] - share) < 1e-9, "the share is decode GB/s over the ceiling", r)
    expect(f"{round(100 * share)}% of read" in r.stdout and "streaming-read ceiling" in r.stdout,
           "the table states decode's share of the read ceiling", r)

if __name__ == "__main__":
    globals()["check_" + sys.argv[2]]()
    print(f"PASS: {sys.argv[2]}")
