"""The products of sample generation (``sodinn samples``, surveys, the demo): the HDF5 sample file and its settings.

:func:`write_sample_file` runs :func:`sodinn.mlar.store.generate_sample_file` (atomic, resumable; on
the engine's scheduler) and writes the effective ``[data]`` and ``[samples]`` tables beside the file
(``samples.h5`` -> ``samples.toml``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sodinn._atomic import check_writable_output, output_folder
from sodinn.adi.sequence import ADISequence
from sodinn.config import SampleConfig, dump_toml
from sodinn.engine import use_scheduler
from sodinn.mlar.store import generate_sample_file

__all__ = ["write_sample_file"]


def write_sample_file(
    sequence: ADISequence,
    config: SampleConfig,
    path: str | os.PathLike[str],
    *,
    data: Mapping[str, Any] | None = None,
    resume: bool = True,
    n_jobs: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
) -> Path:
    """Generate the labeled samples of ``sequence`` into ``path`` and record the settings beside it.

    Parameters
    ----------
    sequence : ADISequence
        The data: cube ``(n_frames, N, N)``, angles in degrees, PSF and FWHM in px.
    config : SampleConfig
        The sample settings (recorded in the file and in the ``.toml`` beside it).
    path : path-like
        The HDF5 file (``.h5``); its settings go to the same name with ``.toml``.
    data : mapping, optional
        The ``[data]`` table to record (input files, FWHM, pixel scale).
    resume : bool
        Continue an interrupted run from its finished annuli (default).
    n_jobs : int, optional
        Worker processes over annuli (default: all cores).
    scheduler : None, str or dask.distributed.Client
        Where the annuli run (:mod:`sodinn.engine`); None keeps the default in effect.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        The sample file.

    Raises
    ------
    ValueError
        As :func:`sodinn.mlar.store.generate_sample_file`, before any work.
    OSError
        If ``path`` cannot be written (a folder, no permission), before any work.

    Notes
    -----
    A run that fails or is interrupted leaves nothing new on disk but the non-empty resume state
    ``<path>.parts/`` (see :func:`sodinn.mlar.store.generate_sample_file`).
    """
    target = check_writable_output(path, kind="file", name="path")
    parts = target.name + ".parts"
    with output_folder(target.parent, resume_state=(parts,)), \
            use_scheduler(scheduler) if scheduler is not None else contextlib.nullcontext():
        out = generate_sample_file(sequence, config, target, resume=resume, n_jobs=n_jobs, progress=progress)
        dump_toml(out.with_suffix(".toml"), {"data": dict(data or {}), "samples": {**config.to_dict(), "output": str(out)}})
    return out
