"""Public docstrings follow numpydoc: ruff's pydocstyle (numpy convention) and numpydoc's own validator.

Every public function, class and method (the names in the ``__all__`` of every public module) has a
docstring; every parameter is documented and none that does not exist; what returns a value has a
``Returns`` (or ``Yields``) section; a dataclass documents each field under ``Attributes`` or
``Parameters``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_layout import PACKAGE, REPO, public_modules

#: numpydoc validation codes enforced: no docstring, undocumented / unknown parameters, no Returns section
CHECKS = ("GL08", "PR01", "PR02", "RT01")


def public_objects() -> Iterator[tuple[str, object]]:
    """``(qualified name, object)`` of every public function, class and public method of sodinn."""
    for module_name in sorted(public_modules(PACKAGE)):
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or getattr(obj, "__module__", None) != module_name:
                continue
            yield f"{module_name}.{name}", obj
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and inspect.isfunction(member):
                        yield f"{module_name}.{name}.{attr}", member


def numpydoc_faults() -> list[str]:
    """The faults numpydoc's validator finds among :data:`CHECKS` (dataclasses: their fields, see the module docstring)."""
    from numpydoc.docscrape import ClassDoc
    from numpydoc.validate import validate

    faults = []
    for qualname, obj in public_objects():
        if inspect.isclass(obj) and dataclasses.is_dataclass(obj):
            if not obj.__doc__:
                faults.append(f"{qualname}: GL08 no docstring")
                continue
            doc = ClassDoc(obj)
            documented = {p.name.strip() for section in ("Attributes", "Parameters") for p in doc[section]}
            documented = {n for entry in documented for n in entry.replace(" ", "").split(",")}
            missing = [f.name for f in dataclasses.fields(obj) if not f.name.startswith("_") and f.name not in documented]
            if missing:
                faults.append(f"{qualname}: fields not documented under Attributes or Parameters: {', '.join(missing)}")
            continue
        for code, message in validate(qualname)["errors"]:
            if code in CHECKS:
                faults.append(f"{qualname}: {code} {message}")
    return faults


def test_public_docstrings_pass_numpydoc_validation():
    pytest.importorskip("numpydoc")
    faults = numpydoc_faults()
    assert faults == [], f"{len(faults)} fault(s):\n" + "\n".join(faults)


def test_ruff_pydocstyle_numpy_convention_reports_nothing():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).is_file():
        pytest.skip("ruff is not installed (it is in the test extra)")
    proc = subprocess.run([ruff, "check", "--select", "D", "--output-format", "concise", str(PACKAGE)], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
