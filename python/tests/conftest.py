import os
from pathlib import Path

import pytest

import halyard

DEFAULT_MODEL = Path.home() / ".cache" / "halyard" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def model_path() -> str:
    path = os.environ.get("HALYARD_TEST_MODEL") or str(DEFAULT_MODEL)
    if not os.path.isfile(path):
        # A missing model is a failure, not a skip: these tests are the package's only check.
        pytest.fail(f"test model not found at {path}: run scripts/fetch-model.sh or set HALYARD_TEST_MODEL")
    return path


# One load per device for the whole run (loading is the slow part on ref); a small context
# keeps the reference device's KV cache small.
@pytest.fixture(scope="session")
def ref_model(model_path):
    with halyard.Model(model_path, device="ref", n_ctx=256) as m:
        yield m


@pytest.fixture(scope="session")
def cpu_model(model_path):
    with halyard.Model(model_path, device="cpu", n_ctx=512, n_threads=2) as m:
        yield m


@pytest.fixture(params=["ref", "cpu"])
def model(request):
    return request.getfixturevalue(f"{request.param}_model")
