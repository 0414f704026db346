"""bench/gpu/prepare.py: the requirement check that stands between a one-shot GPU run and a missing package."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def prepare():
    spec = importlib.util.spec_from_file_location("gpu_prepare", REPO / "bench" / "gpu" / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_wheel(folder: Path, name: str, requires: list[str]) -> Path:
    path = folder / f"{name}-1.0-py3-none-any.whl"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}-1.0.dist-info/METADATA", meta)
    return path


def test_requirements_follow_the_device_python(prepare):
    names = prepare.requirements(['typing_extensions>=4.10', 'tomli; python_version < "3.11"', 'Foo.Bar; extra == "test"',
                                  'backports-zoneinfo; python_version < "3.9"', 'exceptiongroup; python_version >= "3.12"'])
    assert names == ["typing-extensions", "exceptiongroup"]


def test_missing_names_what_neither_the_wheels_nor_the_image_hold(prepare, tmp_path):
    wheels = [fake_wheel(tmp_path, "keras", ["numpy", "optree", "namex"]),
              fake_wheel(tmp_path, "namex", []),
              fake_wheel(tmp_path, "regions", ["astropy>=6", 'notthere; python_version >= "3.10"',
                                               'old; python_version < "3.10"'])]
    gone = prepare.missing(wheels)
    assert gone == {"sodinn": ["astropy"], wheels[0].name: ["optree"], wheels[2].name: ["astropy", "notthere"]}


def test_the_carried_wheels_and_the_image_cover_sodinn(prepare, tmp_path):
    """Every dependency of sodinn's that the benchmark imports is in the image or among the wheels prepare fetches."""
    wheels = [fake_wheel(tmp_path, name.replace("-", "_"), []) for name in prepare.WHEELS]
    assert prepare.missing(wheels) == {}
    assert "sodinn" in prepare.missing(wheels[1:])  # without keras's wheel, sodinn's own needs are not met
