"""Shared fixtures for the deployment tests: the rendered output of every kustomization, as
scripts/check-deploy.sh writes it (one <name>.yaml per overlay or example, the output of
`kubectl kustomize`, into the directory named by HALYARD_DEPLOY_RENDERED)."""

import os
import pathlib

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
KUSTOMIZE_ROOT = REPO / "deploy" / "kubernetes"


def kustomization_dirs():
    """Every directory that is deployed on its own: the overlays and the examples."""
    dirs = []
    for group in ("overlays", "examples"):
        for d in sorted((KUSTOMIZE_ROOT / group).iterdir()):
            if (d / "kustomization.yaml").is_file():
                dirs.append(d)
    return dirs


def rendered_name(d):
    """The file name check-deploy.sh gives a directory's rendering: overlays-cpu.yaml, ..."""
    return f"{d.parent.name}-{d.name}.yaml"


def rendered_dir():
    value = os.environ.get("HALYARD_DEPLOY_RENDERED")
    if not value:
        raise RuntimeError("HALYARD_DEPLOY_RENDERED is not set: run these tests through scripts/check-deploy.sh")
    return pathlib.Path(value)


def load_rendering(d):
    path = rendered_dir() / rendered_name(d)
    assert path.is_file(), f"{path} is missing: scripts/check-deploy.sh renders {d.relative_to(REPO)} there"
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert docs, f"{path} holds no object"
    return docs


RENDERED = {d.name if d.parent.name == "overlays" else f"{d.parent.name}/{d.name}": d for d in kustomization_dirs()}


@pytest.fixture(scope="session")
def renderings():
    """{"cpu": [objects], "nvidia": [...], "amd": [...], "examples/inference-gateway": [...]}"""
    return {name: load_rendering(d) for name, d in RENDERED.items()}
