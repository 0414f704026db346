"""sodinn: supervised deep learning for exoplanet detection in ADI sequences.

Importing ``sodinn`` only defines names; submodules load on first use (PEP 562), so that the
science core does not import TensorFlow/Keras and the command line starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

_SUBMODULES = (
    "baselines",
    "datasets",
    "exceptions",
    "geometry",
    "injection",
    "io",
    "pca",
    "psf",
    "rotation",
    "sequence",
    "snr",
)

# curated public names -> submodule that defines them
_PUBLIC = {
    "ADISequence": "sequence",
    "SodinnWarning": "exceptions",
    "annulus_partition": "geometry",
    "frame_center": "geometry",
    "cube_derotate": "rotation",
    "derotated_mean_at": "rotation",
    "cube_inject_companions": "injection",
    "fit_fwhm": "psf",
    "normalize_psf": "psf",
    "median_adi": "baselines",
    "pca_adi": "baselines",
    "pca_annular": "baselines",
    "snr": "snr",
    "snr_map": "snr",
    "make_adi_sequence": "datasets",
    "read_cube": "io",
    "read_angles": "io",
    "read_psf": "io",
    "write_fits": "io",
}

__all__ = ["__version__", *_SUBMODULES, *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"sodinn.{name}")
    if name in _PUBLIC:
        module = importlib.import_module(f"sodinn.{_PUBLIC[name]}")
        return getattr(module, name)
    msg = f"module 'sodinn' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(__all__)
