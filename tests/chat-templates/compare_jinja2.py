#!/usr/bin/env python3
"""Differential test of Halyard's Jinja interpreter against Python's jinja2.

Every chat template of llama.cpp's models/templates (taken from the llama-cpp-python 0.3.36
sdist at test time: a cache under ~/.cache/halyard, filled with `pip download` when empty; no
template is committed) and the template of each test GGUF (HALYARD_TEST_MODEL, the *.gguf models in the
cache, *.gguf under tests/data) is rendered over a set of conversations by halyard-template (ChatTemplate, the path
the CLI, C API and server take) and by jinja2 in the environment transformers'
apply_chat_template builds: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
with the loopcontrols extension, a {% generation %} tag, tojson as json.dumps (ensure_ascii=False),
and the raise_exception and strftime_now globals.

A pair (template, conversation) agrees when both render the same text or both raise (with the
same message when the template raised it itself or a value was undefined). Passing
needs: at least 90% of pairs agree; every pair of a Llama, Qwen, Mistral, DeepSeek, Gemma, Phi or
SmolLM template agrees; and every other pair is a Halyard error that names the construct and its
line ("unsupported ... at line N"), or a rendering jinja2 refuses only because its immutable
sandbox forbids mutating a list (`SecurityError: ... 'append' of 'list' object is unsafe`: Kimi-K2
on tool calls), which Halyard's interpreter allows on purpose (bounded, never cyclic), and whose
text equals jinja2's without the sandbox; these are counted apart as "sandbox", not as agreement. The script prints a table per template and a summary.
With --only-gguf PATH, only that GGUF's template is compared (it must have one), and a PATH
that is not there is a skip saying how to fetch it.
Exit 0 pass, 1 fail, 77 skip (jinja2 or the templates cannot be had: the reason is printed).
"""
import argparse
import datetime
import glob
import json
import os
import re
import struct
import subprocess
import sys
import tarfile
import tempfile

SDIST_VERSION = "0.3.36"
REQUIRED_FAMILIES = ("llama", "qwen", "mistral", "deepseek", "gemma", "phi", "smollm")
SANDBOX_MUTATION = re.compile(r"SecurityError: access to attribute '\w+' of '(list|dict)' object is unsafe")
CLEAR_ERROR = re.compile(r"unsupported [^']*'[^']+'.* at line \d+")


def ensure_jinja2():
    try:
        import jinja2  # noqa: F401
        return
    except ImportError:
        pass
    # The Python that runs ctest may be a pyenv or venv one; Debian's python3-jinja2 is for
    # /usr/bin/python3.
    system = "/usr/bin/python3"
    if os.path.realpath(sys.executable) != os.path.realpath(system) and os.path.exists(system):
        if subprocess.run([system, "-c", "import jinja2"], capture_output=True).returncode == 0:
            os.execv(system, [system] + sys.argv)
    print("SKIP: Python's jinja2 is not installed (Debian: python3-jinja2)")
    sys.exit(77)


def template_dir(cache_root):
    """llama.cpp's models/templates from the sdist, unpacked once into the cache."""
    override = os.environ.get("HALYARD_LLAMA_TEMPLATES")
    if override:
        return override
    root = os.path.join(cache_root, f"llama_cpp_python-{SDIST_VERSION}")
    templates = os.path.join(root, "vendor", "llama.cpp", "models", "templates")
    if glob.glob(os.path.join(templates, "*.jinja")):
        return templates
    os.makedirs(root, exist_ok=True)
    sdist_dir = os.path.join(root, "sdist")
    tarballs = glob.glob(os.path.join(sdist_dir, f"llama_cpp_python-{SDIST_VERSION}.tar.gz"))
    if not tarballs:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"llama-cpp-python=={SDIST_VERSION}", "-d", sdist_dir]
        print("fetching:", " ".join(cmd), flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        tarballs = glob.glob(os.path.join(sdist_dir, f"llama_cpp_python-{SDIST_VERSION}.tar.gz"))
        if r.returncode != 0 or not tarballs:
            print(r.stdout[-2000:], r.stderr[-2000:])
            print("SKIP: the llama-cpp-python sdist could not be downloaded")
            sys.exit(77)
    prefix = f"llama_cpp_python-{SDIST_VERSION}/vendor/llama.cpp/models/templates/"
    with tarfile.open(tarballs[0]) as tar:
        for member in tar.getmembers():
            if member.name.startswith(prefix) and member.name.endswith(".jinja") and member.isfile():
                data = tar.extractfile(member).read()
                os.makedirs(templates, exist_ok=True)
                with open(os.path.join(templates, os.path.basename(member.name)), "wb") as f:
                    f.write(data)
    return templates


def gguf_chat_template(path):
    """tokenizer.chat_template of a GGUF (v2/v3), read from its key-value header; None if absent."""
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            return None
        version, = struct.unpack("<I", f.read(4))
        if version < 2:
            return None
        _, n_kv = struct.unpack("<QQ", f.read(16))

        def string():
            n, = struct.unpack("<Q", f.read(8))
            return f.read(n)

        def skip(vtype):
            if vtype == 8:
                string()
            elif vtype == 9:
                etype, n = struct.unpack("<IQ", f.read(12))
                if etype == 8:
                    for _ in range(n):
                        string()
                else:
                    f.seek(sizes[etype] * n, 1)
            else:
                f.seek(sizes[vtype], 1)

        for _ in range(n_kv):
            key = string()
            vtype, = struct.unpack("<I", f.read(4))
            if key == b"tokenizer.chat_template" and vtype == 8:
                return string().decode("utf-8")
            skip(vtype)
    return None


def jinja2_renderer(sandboxed=True):
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(jinja2.ext.Extension):
        # transformers' AssistantTracker: {% generation %} marks assistant text; the text is the body.
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.Scope(body, lineno=lineno)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.now().strftime(fmt)

    env_class = ImmutableSandboxedEnvironment if sandboxed else jinja2.Environment
    env = env_class(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now

    def render(source, contexts):
        try:
            t = env.from_string(source)
        except Exception as e:  # a template jinja2 cannot compile fails every conversation
            return [(False, f"{type(e).__name__}: {e}")] * len(contexts)
        out = []
        for c in contexts:
            try:
                out.append((True, t.render(**c)))
            except Exception as e:
                out.append((False, f"{type(e).__name__}: {e}"))
        return out

    return render


TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}]


WEATHER_CALL = {"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\"}"}}
TIME_CALL = {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}


def as_transformers_gives(context):
    """The context jinja2 renders: what vLLM's server hands transformers. Messages are OpenAI's
    (tool call arguments as JSON text, as clients send them); the template sees each valid-JSON
    object argument as a mapping."""
    out = dict(context)
    messages = []
    for m in context["messages"]:
        m = dict(m)
        if m.get("tool_calls"):
            calls = []
            for c in m["tool_calls"]:
                c = dict(c, function=dict(c["function"]))
                try:
                    parsed = json.loads(c["function"]["arguments"])
                    if isinstance(parsed, dict):
                        c["function"]["arguments"] = parsed
                except (TypeError, ValueError):
                    pass
                calls.append(c)
            m["tool_calls"] = calls
        messages.append(m)
    out["messages"] = messages
    return out


def conversations():
    base = {
        "user only": [{"role": "user", "content": "Hello!"}],
        "system + user": [{"role": "system", "content": "You are a concise assistant."},
                          {"role": "user", "content": "What is 2+2?"}],
        "multi-turn with system": [{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": "Hi"},
                                   {"role": "assistant", "content": "Hello! How can I help?"},
                                   {"role": "user", "content": "Tell me a joke."}],
        "multi-turn": [{"role": "user", "content": "Hi"},
                       {"role": "assistant", "content": "Hello."},
                       {"role": "user", "content": "  Spaces around  \n"}],
        "empty content": [{"role": "user", "content": ""}],
        "unicode": [{"role": "system", "content": "Réponds en français — s’il te plaît."},
                    {"role": "user", "content": "Grüße, 世界! 🚀 \"quoted\" \\ back"}],
        "ends with assistant": [{"role": "user", "content": "Say hi."},
                                {"role": "assistant", "content": "Hi!"}],
    }
    out = []
    for name, messages in base.items():
        for agp in (True, False):
            out.append((f"{name}, agp={agp}", {"messages": messages, "add_generation_prompt": agp}))
    # Tool use: an assistant turn that calls (content null, or text and two calls), the tool
    # turns answering (tool_call_id and name), then the answer.
    tool_round = [{"role": "system", "content": "You can look up the weather."},
                  {"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": None, "tool_calls": [WEATHER_CALL]},
                  {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18 C, sunny"}]
    two_calls = [{"role": "user", "content": "Paris and Oslo, please."},
                 {"role": "assistant", "content": "Let me check both.", "tool_calls": [WEATHER_CALL, TIME_CALL]},
                 {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18 C"},
                 {"role": "tool", "tool_call_id": "call_2", "name": "get_weather", "content": "{\"temp\": 9}"},
                 {"role": "assistant", "content": "Paris 18 C, Oslo 9 C."},
                 {"role": "user", "content": "Thanks!"}]
    tool_convs = {"user only": base["user only"], "system + user": base["system + user"],
                  "tool call round": tool_round, "two tool calls": two_calls}
    for name, messages in tool_convs.items():
        for agp in (True, False):
            out.append((f"{name} + tools, agp={agp}",
                        {"messages": messages, "add_generation_prompt": agp, "tools": TOOLS}))
    out.append(("tool call round, no tools, agp=True", {"messages": tool_round, "add_generation_prompt": True}))
    for _, c in out:
        c["bos_token"] = "<s>"
        c["eos_token"] = "</s>"
    return out


def same_error(jinja2_error, halyard_error):
    """Both raised: the template's own raise_exception and undefined values must say the same."""
    kind, _, message = jinja2_error.partition(": ")
    if kind in ("TemplateError", "UndefinedError"):
        return message in halyard_error
    return True


def all_templates(args):
    """llama.cpp's templates and those of the test GGUFs, by name; None if there are none."""
    templates = {}
    tdir = template_dir(args.cache_dir)
    for path in sorted(glob.glob(os.path.join(tdir, "*.jinja"))):
        with open(path, encoding="utf-8") as f:
            templates[os.path.basename(path)[:-len(".jinja")]] = f.read()
    if not templates:
        print(f"FAIL: no templates in {tdir}")
        return None
    ggufs = []
    if os.environ.get("HALYARD_TEST_MODEL"):
        ggufs.append(os.environ["HALYARD_TEST_MODEL"])
    else:
        default = os.path.join(args.cache_dir, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
        if os.path.exists(default):
            ggufs.append(default)
    # Other models fetched into the cache (e.g. gemma-3-270m for the architecture tests).
    ggufs += [p for p in sorted(glob.glob(os.path.join(args.cache_dir, "models", "*.gguf"))) if p not in ggufs]
    if args.data_dir:
        ggufs += sorted(glob.glob(os.path.join(args.data_dir, "**", "*.gguf"), recursive=True))
    for path in ggufs:
        t = gguf_chat_template(path)
        if t is not None:
            templates["gguf:" + os.path.basename(path)] = t
        else:
            print(f"note: {path} has no tokenizer.chat_template")
    return templates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--halyard-template", required=True)
    ap.add_argument("--data-dir", help="tests/data: its *.gguf templates are compared too")
    ap.add_argument("--cache-dir", default=os.path.join(os.path.expanduser("~"), ".cache", "halyard"))
    ap.add_argument("--only-gguf", help="compare only this GGUF's tokenizer.chat_template (skip if absent)")
    ap.add_argument("--only-gguf-env", metavar="VAR", help="take --only-gguf from VAR when it is set")
    ap.add_argument("-v", "--verbose", action="store_true", help="show the first difference of each failing pair")
    args = ap.parse_args()
    if args.only_gguf_env and os.environ.get(args.only_gguf_env):
        args.only_gguf = os.environ[args.only_gguf_env]
    if args.only_gguf and not os.path.exists(args.only_gguf):
        print(f"SKIP: {args.only_gguf} is not there (scripts/fetch-model.sh fetches the test GGUFs)")
        return 77
    ensure_jinja2()
    render_jinja2 = jinja2_renderer()
    render_unsandboxed = jinja2_renderer(sandboxed=False)

    templates = {}
    if args.only_gguf:
        t = gguf_chat_template(args.only_gguf)
        if t is None:
            print(f"FAIL: {args.only_gguf} has no tokenizer.chat_template")
            return 1
        templates["gguf:" + os.path.basename(args.only_gguf)] = t
    else:
        templates = all_templates(args)
        if templates is None:
            return 1

    convs = conversations()
    contexts = [c for _, c in convs]
    totals = {"match": 0, "both raise": 0, "clear error": 0, "sandbox": 0, "FAIL": 0}
    rows = []
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        ctx_path = os.path.join(tmp, "conversations.json")
        with open(ctx_path, "w", encoding="utf-8") as f:
            json.dump(contexts, f, ensure_ascii=False)
        for name, source in templates.items():
            tpath = os.path.join(tmp, "template.jinja")
            with open(tpath, "w", encoding="utf-8") as f:
                f.write(source)
            expected = render_jinja2(source, [as_transformers_gives(c) for c in contexts])
            try:
                r = subprocess.run([args.halyard_template, tpath, ctx_path], capture_output=True, timeout=60)
                got = [(x["ok"], x.get("text") if x["ok"] else x["error"]) for x in json.loads(r.stdout)]
            except (subprocess.TimeoutExpired, json.JSONDecodeError, KeyError) as e:
                stderr = getattr(r, "stderr", b"") if "r" in locals() else b""
                got = [(False, f"halyard-template failed: {type(e).__name__} {stderr[-500:]!r}")] * len(contexts)
            required = any(fam in name.lower() for fam in REQUIRED_FAMILIES)
            counts = {"match": 0, "both raise": 0, "clear error": 0, "sandbox": 0, "FAIL": 0}
            for (cname, ctx), (jok, jtext), (hok, htext) in zip(convs, expected, got):
                if jok and hok and jtext == htext:
                    kind = "match"
                elif not jok and not hok and same_error(jtext, htext):
                    kind = "both raise"
                elif jok and not hok and CLEAR_ERROR.search(htext) and not required:
                    kind = "clear error"
                elif (not jok and hok and SANDBOX_MUTATION.match(jtext) and not required
                      and render_unsandboxed(source, [as_transformers_gives(ctx)])[0] == (True, htext)):
                    kind = "sandbox"  # the same text as jinja2 renders without its sandbox
                else:
                    kind = "FAIL"
                    failures.append((name, cname, jok, jtext, hok, htext))
                counts[kind] += 1
                totals[kind] += 1
            rows.append((name, required, counts))

    width = max(len(n) for n, _, _ in rows)
    print(f"{'template':<{width}}  req  match  both-raise  clear-error  sandbox  FAIL")
    for name, required, c in rows:
        print(f"{name:<{width}}  {'yes' if required else '   '}  {c['match']:5d}  {c['both raise']:10d}  "
              f"{c['clear error']:11d}  {c['sandbox']:7d}  {c['FAIL']:4d}")
    n = sum(totals.values())
    agree = totals["match"] + totals["both raise"]
    rate = agree / n if n else 0
    print(f"\n{len(rows)} templates x {len(convs)} conversations = {n} pairs: {totals['match']} render identically, "
          f"{totals['both raise']} raise in both, {totals['clear error']} are Halyard errors naming the construct, "
          f"{totals['sandbox']} only jinja2's sandbox refuses (list mutation), "
          f"{totals['FAIL']} fail; agreement {100 * rate:.1f}% (needs >= 90%)")
    for name, cname, jok, jtext, hok, htext in failures[: (len(failures) if args.verbose else 10)]:
        print(f"\n--- {name} / {cname}")
        print(f"jinja2 ({'ok' if jok else 'error'}): {jtext[:600]!r}")
        print(f"halyard ({'ok' if hok else 'error'}): {htext[:600]!r}")
        if jok and hok:
            i = next((k for k in range(min(len(jtext), len(htext))) if jtext[k] != htext[k]), min(len(jtext), len(htext)))
            print(f"first difference at {i}: jinja2 {jtext[max(0, i - 40):i + 40]!r} vs halyard {htext[max(0, i - 40):i + 40]!r}")
    ok = rate >= 0.9 and totals["FAIL"] == 0
    print("\nPASS" if ok else "\nFAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
