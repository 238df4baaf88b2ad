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


@pytest.mark.parametrize("struct, fill", [("ModelOptions", "halyard_model_options_default"),
                                          ("GenerateOptions", "halyard_generate_options_default")])
def test_options_mirrors_hold_everything_the_library_writes(struct, fill):
    # The *_default() functions write the whole struct as the library's halyard.h declares it.
    # A ctypes mirror shorter than that is overwritten past its end (the heap corruption that a
    # ModelOptions without kv_dtype caused): fill a larger buffer with a pattern, let the library
    # write into it, and check nothing changed beyond the mirror's size.
    import ctypes

    mirror = getattr(_native, struct)
    size = ctypes.sizeof(mirror)
    buf = (ctypes.c_ubyte * (size + 64))(*([0xA5] * (size + 64)))
    getattr(_native.lib(), fill)(ctypes.cast(buf, ctypes.POINTER(mirror)))
    assert bytes(buf[size:]) == b"\xa5" * 64, f"{fill} writes past the end of the {size}-byte {struct}"
    assert ctypes.cast(buf, ctypes.POINTER(mirror)).contents.struct_size == size
