"""sodinn: supervised deep learning for exoplanet detection in ADI sequences.

The package is laid out in the order the data flow (see the README's module map)::

    sodinn.adi       cube -> classical reductions, S/N           (FITS I/O, geometry, PCA, baselines)
    sodinn.mlar      cube -> labeled MLAR samples                 (annulus operator, samples, HDF5 store)
    sodinn.learn     samples -> a trained model                   (registry, training, model folders)
    sodinn.detect    model + cube -> maps and candidates          (probability maps, calibration, scoring)
    sodinn.evaluate  injected copies -> ROC and detection limits
    sodinn.pipeline  each step's products (files and figures), surveys
    sodinn.cli       the ``sodinn`` command

Importing ``sodinn`` only defines names: the curated public names below (functions and classes,
never modules) load their subpackage on first use (PEP 562), so that ``import sodinn`` stays light
and nothing of the ADI core imports TensorFlow. The module paths of the flat 0.1 layout
(``sodinn.pca``, ``sodinn.training``, ...) keep importing for one release, with a
``DeprecationWarning`` (:mod:`sodinn._moved`).
"""

from __future__ import annotations

import importlib
from typing import Any

from sodinn import _moved
from sodinn._version import __version__

_moved.install()

_MODULES = ("adi", "mlar", "learn", "detect", "evaluate", "pipeline", "cli", "config", "datasets", "engine", "exceptions",
            "plotting")

# curated public names -> the module that defines them
_PUBLIC = {
    "SodinnWarning": "sodinn.exceptions",
    "SampleConfig": "sodinn.config",
    "TrainConfig": "sodinn.config",
    "PredictConfig": "sodinn.config",
    "RocConfig": "sodinn.config",
    "LimitConfig": "sodinn.config",
    "make_adi_sequence": "sodinn.datasets",
    "ADISequence": "sodinn.adi.sequence",
    "read_cube": "sodinn.adi.io",
    "read_angles": "sodinn.adi.io",
    "read_psf": "sodinn.adi.io",
    "write_fits": "sodinn.adi.io",
    "annulus_partition": "sodinn.adi.geometry",
    "frame_center": "sodinn.adi.geometry",
    "cube_derotate": "sodinn.adi.rotation",
    "derotated_mean_at": "sodinn.adi.rotation",
    "cube_inject_companions": "sodinn.adi.injection",
    "fit_fwhm": "sodinn.adi.psf",
    "normalize_psf": "sodinn.adi.psf",
    "median_adi": "sodinn.adi.baselines",
    "pca_adi": "sodinn.adi.baselines",
    "pca_annular": "sodinn.adi.baselines",
    "snr": "sodinn.adi.snr",
    "snr_map": "sodinn.adi.snr",
    "make_samples": "sodinn.mlar.samples",
    "generate_sample_file": "sodinn.mlar.store",
    "SampleFile": "sodinn.mlar.store",
    "train": "sodinn.learn.training",
    "load_trained": "sodinn.learn.artifact",
    "probability_map": "sodinn.detect.probability",
    "find_candidates": "sodinn.detect.candidates",
    "calibrate": "sodinn.detect.calibration",
    "run_roc": "sodinn.evaluate.roc",
    "classical_contrast_curve": "sodinn.evaluate.contrast",
    "detection_limits": "sodinn.evaluate.limits",
}

__all__ = ["__version__", *_MODULES, *_PUBLIC]


def __getattr__(name: str) -> Any:
    """Load a curated public name, a subpackage or an old module path on first access (PEP 562)."""
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _MODULES:
        return importlib.import_module(f"sodinn.{name}")
    if f"sodinn.{name}" in _moved.MOVED:
        import sys
        import warnings

        if f"sodinn.{name}" not in sys.modules:  # the import below would warn from inside importlib: warn here
            warnings.warn(_moved.moved_message(f"sodinn.{name}"), DeprecationWarning, stacklevel=2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return importlib.import_module(f"sodinn.{name}")
        return importlib.import_module(f"sodinn.{name}")
    msg = f"module 'sodinn' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    """List the public names (``__all__``), sorted."""
    return sorted(__all__)
