"""The installed package: its library, plugins, devices and status names."""

import importlib.metadata
import os
from pathlib import Path

import pytest

import halyard
from halyard import _native, errors


def test_library_and_plugins_come_from_the_package():
    if os.environ.get("HALYARD_LIBRARY"):
        pytest.skip("HALYARD_LIBRARY names another library: the package's own is not in use")
    path = Path(_native.library_path())
    package = Path(halyard.__file__).resolve().parent
    assert path.is_file()
    assert package in path.resolve().parents
    plugins = path.parent / "halyard"
    assert (plugins / "libhalyard-backend-ref.so").is_file()
    assert (plugins / "libhalyard-backend-cpu.so").is_file()
    assert not list(plugins.glob("libhalyard-backend-cuda*")) and not list(plugins.glob("libhalyard-backend-hip*"))
    # The plugins were found from the library's own directory: no environment variable helped.
    assert "HALYARD_PLUGIN_PATH" not in os.environ


def test_devices_list_ref_and_cpu():
    devices, auto = halyard.list_devices()
    available = {d.uri for d in devices if d.available}
    assert {"ref", "cpu"} <= available
    assert auto in available
    assert all(isinstance(d.description, str) and d.backend for d in devices)


def test_version_matches_the_package_metadata():
    assert halyard.version() == importlib.metadata.version("halyard")


def test_status_names_match_the_library():
    lib = _native.lib()
    for status, name in errors.STATUS_NAMES.items():
        assert _native.text(lib.halyard_status_name(status)) == name
    # Every error status has its own class, and the class says which status it is.
    for status in range(1, 12):
        err = errors.error_for(status, "message")
        assert type(err) is not halyard.HalyardError
        assert err.status == status and err.status_name == errors.STATUS_NAMES[status]
        assert str(err) == f"{errors.STATUS_NAMES[status]}: message"


@pytest.mark.parametrize("struct", ["ModelOptions", "GenerateOptions", "ContextOptions"])
def test_options_mirrors_hold_everything_the_library_writes(struct):
    # The package fills each mirror through halyard_X_options_init with the mirror's own size.
    # Given more room, the library writes its whole struct and says how big it is in
    # struct_size: the mirror must be exactly that big (a shorter mirror silently loses the
    # fields it lacks; the old *_default() functions even wrote past its end, the heap
    # corruption a ModelOptions without kv_dtype caused). Given the mirror's size, nothing past
    # it may change.
    import ctypes

    mirror = getattr(_native, struct)
    size = ctypes.sizeof(mirror)
    init = getattr(_native.lib(), _native._INIT_FUNCTIONS[mirror])
    room = (ctypes.c_ubyte * (size + 64))(*([0xA5] * (size + 64)))
    init(ctypes.cast(room, ctypes.POINTER(mirror)), size + 64)
    library_size = ctypes.cast(room, ctypes.POINTER(mirror)).contents.struct_size
    assert library_size == size, f"the library's {struct} has {library_size} bytes, the mirror {size}"
    assert bytes(room[size:]) == b"\xa5" * 64

    exact = (ctypes.c_ubyte * (size + 64))(*([0xA5] * (size + 64)))
    _native.init_options(ctypes.cast(exact, ctypes.POINTER(mirror)).contents)
    assert bytes(exact[size:]) == b"\xa5" * 64, f"filling the {size}-byte {struct} wrote past its end"
    assert ctypes.cast(exact, ctypes.POINTER(mirror)).contents.struct_size == size
