"""The ROC report (``sodinn roc``): the harness of :mod:`sodinn.evaluate.roc` run, its tables and figure written.

Files of the output folder:

- ``roc.csv``: per method, band and threshold, TP, FP, FN, TPR, mean false positives per frame, FDR, F1;
- ``roc.png``: one panel per band (symlog axis, a few thresholds beside their points, the legend outside);
- ``summary.txt``: TPR at <= 0.1, 0.5 and 1 false positive per frame, model/best-baseline ratios,
  the calibration check;
- ``injections.ecsv``: every copy's companion; ``config.toml``: the effective configuration;
- ``provenance.json``: sodinn version, data checksums, the models' ``model.json`` digests, the cache;
- ``cache/``: the maps of every copy and method, reused by a rerun (resume, new thresholds, a new model).
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sodinn._atomic import atomic_path, check_writable_output, output_folder
from sodinn._platform import platform_record
from sodinn._version import __version__
from sodinn.adi.sequence import ADISequence
from sodinn.config import RocConfig, dump_toml
from sodinn.evaluate.roc import RocResult, run_roc
from sodinn.learn.artifact import metadata_digest
from sodinn.pipeline.figures import new_figure, save_figure
from sodinn.plotting import plot_roc

__all__ = ["roc_report", "write_roc_report"]


def roc_report(
    sequence: ADISequence,
    config: RocConfig | None,
    models: Mapping[str, str | os.PathLike[str]] | None,
    output_dir: str | os.PathLike[str],
    *,
    data: Mapping[str, Any] | None = None,
    n_jobs: int | None = None,
    scheduler: Any = None,
    resume: bool = True,
    progress: bool = True,
) -> RocResult:
    """Run the ROC harness with its cache in ``output_dir/cache`` and write the report there.

    Parameters
    ----------
    sequence : ADISequence
        The data: cube ``(n_frames, N, N)``, angles in degrees, PSF and FWHM in px.
    config : RocConfig, optional
        The harness's settings (default: :class:`~sodinn.config.RocConfig`).
    models : mapping of str -> path-like, optional
        Trained models by name (folders written by ``sodinn train``), evaluated beside the baselines.
    output_dir : path-like
        The report's folder (created if needed); the cache goes to ``output_dir/cache``. If the run
        fails or is interrupted, what it wrote there is removed, unless the cache holds finished copies
        (a rerun resumes from them).
    data : mapping, optional
        The ``[data]`` table to record in ``config.toml``.
    n_jobs : int, optional
        Worker processes (default: all cores), as in :func:`sodinn.evaluate.roc.run_roc`.
    scheduler : None, str or dask.distributed.Client
        Where the copies run (:mod:`sodinn.engine`).
    resume : bool
        Reuse the cached maps of finished copies.
    progress : bool
        Show a progress bar.

    Returns
    -------
    RocResult
        The scores of every method, band and threshold, the injections and the summary.

    Raises
    ------
    ValueError, FileNotFoundError
        As :func:`sodinn.evaluate.roc.run_roc`, before any work.
    OSError
        If ``output_dir`` cannot be written (a file, no permission), before any work.
    """
    config = config or RocConfig()
    out = check_writable_output(output_dir, kind="folder", name="output_dir")
    with output_folder(out, resume_state=("cache",)):
        result = run_roc(sequence, config, models, cache_dir=out / "cache", n_jobs=n_jobs, scheduler=scheduler,
                         resume=resume, progress=progress)
        write_roc_report(result, sequence, config, out, data=data)
    return result


def write_roc_report(result: RocResult, sequence: ADISequence, config: RocConfig, output_dir: str | os.PathLike[str], *,
                     data: Mapping[str, Any] | None = None) -> list[Path]:
    """Write the files of a ROC run (see the module docstring), each atomically; return their paths.

    Parameters
    ----------
    result : RocResult
        What :func:`sodinn.evaluate.roc.run_roc` measured.
    sequence : ADISequence
        The data of the run (for the provenance record).
    config : RocConfig
        The settings of the run (written to ``config.toml`` and ``provenance.json``).
    output_dir : path-like
        The report's folder (created if needed; if writing fails, what was written is removed).
    data : mapping, optional
        The ``[data]`` table to record in ``config.toml``.

    Returns
    -------
    list of Path
        ``roc.csv``, ``injections.ecsv``, ``summary.txt``, ``config.toml``, ``roc.png`` and
        ``provenance.json``.

    Raises
    ------
    OSError
        If ``output_dir`` cannot be written (a file, no permission), before anything is written.
    """
    out = check_writable_output(output_dir, kind="folder", name="output_dir")
    with output_folder(out):
        return _write_report(result, sequence, config, out, data)


def _write_report(result: RocResult, sequence: ADISequence, config: RocConfig, out: Path,
                  data: Mapping[str, Any] | None) -> list[Path]:
    from astropy.table import Table

    with atomic_path(out / "roc.csv") as tmp:
        result.table().write(tmp, format="ascii.csv", overwrite=True)
    inj = Table(rows=[asdict(i) for i in result.injections]) if result.injections else Table()
    with atomic_path(out / "injections.ecsv") as tmp:
        inj.write(tmp, format="ascii.ecsv", overwrite=True)
    with atomic_path(out / "summary.txt") as tmp:
        Path(tmp).write_text(result.summary + "\n")
    tables: dict[str, Any] = {"data": dict(data)} if data else {}
    tables["roc"] = {**config.to_dict(), "models": [f"{k}={v}" for k, v in result.models.items()], "output": str(out.resolve())}
    dump_toml(out / "config.toml", tables)
    bands = sorted({r["band"] for r in result.rows})
    fig, grid = new_figure(1, len(bands), figsize=(5 * len(bands) + 2, 4.5), squeeze=False, sharey=True)
    plot_roc(result.rows, axes=list(grid.ravel()))
    save_figure(fig, out / "roc.png", dpi=120)  # tight: room for the legend beside the last panel
    record = {
        "sodinn_version": __version__,
        "platform": platform_record(),
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "data": {k: v for k, v in sequence.provenance.items() if isinstance(v, (str, int, float))},
        "fwhm_px": sequence.fwhm_px,
        "models": {name: {"path": p, "model_json_sha256": metadata_digest(p)} for name, p in result.models.items()},
        "roc_config": config.to_dict(),
        "cache": str(result.cache_dir) if result.cache_dir is not None else None,
    }
    with atomic_path(out / "provenance.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
    return [out / name for name in ("roc.csv", "injections.ecsv", "summary.txt", "config.toml", "roc.png", "provenance.json")]
