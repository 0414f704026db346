"""The module paths of sodinn 0.1's flat layout, kept importing for one release with a ``DeprecationWarning``.

sodinn 0.1 was a flat package (``sodinn.pca``, ``sodinn.training``, ...); its modules now live in
subpackages by stage (``sodinn.adi.pca``, ``sodinn.learn.training``, ...). ``import sodinn.training``
and ``from sodinn.training import load_trained`` still work: the old path gives a stand-in module that
warns once when imported and looks each name up in the new modules that hold it (a module that was
split has several). Old pickles that name a class by its old module (a SODIRF saved with joblib) load
the same way. ``sodinn.snr`` is not kept: that name is the S/N function of the public API.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from typing import Any

__all__ = ["MOVED", "MovedModule", "install", "moved_message"]

#: old module path -> the new modules its public names live in (looked up in this order)
MOVED: dict[str, tuple[str, ...]] = {
    "sodinn.io": ("sodinn.adi.io",),
    "sodinn.sequence": ("sodinn.adi.sequence",),
    "sodinn.geometry": ("sodinn.adi.geometry",),
    "sodinn.rotation": ("sodinn.adi.rotation",),
    "sodinn.psf": ("sodinn.adi.psf",),
    "sodinn.injection": ("sodinn.adi.injection",),
    "sodinn.pca": ("sodinn.adi.pca",),
    "sodinn.baselines": ("sodinn.adi.baselines",),
    "sodinn.binning": ("sodinn.adi.binning",),
    "sodinn.samples": ("sodinn.mlar.samples", "sodinn.mlar.operator", "sodinn.mlar.augmentation"),
    "sodinn.store": ("sodinn.mlar.store",),
    "sodinn.flux": ("sodinn.mlar.flux",),
    "sodinn.backend_linalg": ("sodinn.mlar.linalg",),
    "sodinn.models": ("sodinn.learn.models",),
    "sodinn.training": ("sodinn.learn.training", "sodinn.learn.artifact"),
    "sodinn.prediction": ("sodinn.detect.probability",),
    "sodinn.detection": ("sodinn.detect.candidates",),
    "sodinn.calibration": ("sodinn.detect.calibration",),
    "sodinn.scoring": ("sodinn.detect.scoring",),
    "sodinn.roc": ("sodinn.evaluate.roc", "sodinn.evaluate.copies", "sodinn.pipeline.roc", "sodinn.config"),
    "sodinn.limits": ("sodinn.evaluate.limits", "sodinn.evaluate.contrast", "sodinn.pipeline.limits", "sodinn.config"),
    "sodinn.survey": ("sodinn.pipeline.survey",),
}


class MovedModule(types.ModuleType):
    """Stand-in for an old module path: every attribute comes from the new modules (see :data:`MOVED`)."""

    def __init__(self, name: str, targets: tuple[str, ...]) -> None:
        super().__init__(name, f"Moved: the names of {name} now live in {', '.join(targets)}.")
        self.__targets = targets

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        for target in self.__targets:
            module = importlib.import_module(target)
            if hasattr(module, attr):
                return getattr(module, attr)
        msg = f"module {self.__name__!r} (moved to {', '.join(self.__targets)}) has no attribute {attr!r}"
        raise AttributeError(msg)

    def __dir__(self) -> list[str]:
        names: set[str] = set()
        for target in self.__targets:
            names.update(getattr(importlib.import_module(target), "__all__", ()))
        return sorted(names)


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old module paths of :data:`MOVED` and loads them as :class:`MovedModule`."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname == "sodinn.snr":
            msg = "sodinn.snr is the S/N function now (from sodinn import snr); its module is sodinn.adi.snr"
            raise ModuleNotFoundError(msg, name=fullname)
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        targets = MOVED[spec.name]
        msg = moved_message(spec.name)
        # warnings.warn passes over the import machinery's frames: level 2 is the import statement
        warnings.warn(msg, DeprecationWarning, stacklevel=2)
        return MovedModule(spec.name, targets)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the stand-in resolves its names on access."""


def moved_message(name: str) -> str:
    """Return the deprecation message of the old module path ``name`` (a key of :data:`MOVED`)."""
    return (f"{name} moved to {' and '.join(MOVED[name])} when sodinn was laid out by stage; import from there "
            "(the old path will be removed in the next release)")


_FINDER = _MovedFinder()


def install() -> None:
    """Put the finder of the old module paths on ``sys.meta_path`` (once)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)
