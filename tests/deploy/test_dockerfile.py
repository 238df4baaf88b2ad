"""Static checks of deploy/Dockerfile, which no CI machine here can build (no Docker engine):
the properties the Kubernetes manifests depend on. hadolint (run by scripts/check-deploy.sh)
checks the syntax and the usual mistakes."""

import json
import re

from conftest import REPO

DOCKERFILE = REPO / "deploy" / "Dockerfile"


def instructions():
    """[(INSTRUCTION, argument text)], continuation lines joined, comments dropped."""
    result, pending = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        result.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def stages():
    """The instructions of each stage, and the ARG defaults declared before the first FROM."""
    global_args, current, all_stages = {}, None, []
    for word, rest in instructions():
        if word == "FROM":
            current = [(word, rest)]
            all_stages.append(current)
        elif current is None:
            assert word == "ARG", f"{word} before the first FROM"
            name, _, default = rest.partition("=")
            global_args[name] = default
        else:
            current.append((word, rest))
    return global_args, all_stages


def exec_form(stage, word):
    found = [rest for w, rest in stage if w == word]
    assert len(found) == 1, f"the runtime stage needs exactly one {word}"
    value = json.loads(found[0])
    assert isinstance(value, list), f"{word} must be in exec form (a JSON array) so signals reach the server"
    return value


def test_every_stage_is_debian_12():
    global_args, all_stages = stages()
    assert len(all_stages) >= 2, "expected a build stage and a runtime stage"
    for stage in all_stages:
        image = stage[0][1].split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), m.group(0)), image)
        assert re.fullmatch(r"debian:(bookworm|12)(-slim)?", image), f"stage image {image} is not Debian 12"


def test_runtime_stage_runs_serve_on_every_interface_as_non_root():
    _, all_stages = stages()
    runtime = all_stages[-1]
    users = [rest for w, rest in runtime if w == "USER"]
    assert users, "the runtime stage sets no USER: the server would run as root"
    assert users[-1].split(":")[0] not in ("root", "0"), f"USER {users[-1]} is root"
    exposed = [rest.split() for w, rest in runtime if w == "EXPOSE"]
    assert ["8080"] in exposed, f"EXPOSE {exposed}, expected 8080"
    entry = exec_form(runtime, "ENTRYPOINT")
    at = entry.index("halyard") if "halyard" in entry else -1
    assert at >= 0 and entry[at + 1 : at + 2] == ["serve"], f"ENTRYPOINT {entry} does not run halyard serve"
    assert entry[at + 2 : at + 4] == ["--host", "0.0.0.0"], f"ENTRYPOINT {entry}: the server must listen on 0.0.0.0"
    cmd = exec_form(runtime, "CMD")
    assert cmd[cmd.index("--port") + 1] == "8080", f"CMD {cmd}: --port differs from EXPOSE"
    assert any(a.startswith("/models/") for a in cmd), f"CMD {cmd}: the default model is not on /models"


def test_runtime_stage_has_no_toolchain_and_no_model():
    _, all_stages = stages()
    runtime = all_stages[-1]
    runs = " ".join(rest for w, rest in runtime if w == "RUN")
    for package in ("build-essential", "cmake", "g++", "hipcc", "glslc"):
        assert not re.search(rf"(^|\s){re.escape(package)}(\s|$)", runs), f"the runtime stage installs {package}"
    dev = re.findall(r"\S+-dev\b", runs)
    assert not dev, f"the runtime stage installs development packages {dev}"
    for w, rest in runtime:
        if w in ("COPY", "ADD"):
            assert ".gguf" not in rest, f"{w} {rest}: models come from the volume, not the image"
    copies = [rest for w, rest in runtime if w == "COPY"]
    assert any(c.startswith("--from=build") and "/opt/halyard" in c for c in copies), (
        "the runtime stage does not take the install tree from the build stage"
    )


def test_dockerignore_keeps_build_trees_and_models_out_of_the_context():
    ignore = (REPO / ".dockerignore").read_text().split()
    for pattern in (".git", "build*/", "*.gguf"):
        assert pattern in ignore, f".dockerignore lacks {pattern}"
