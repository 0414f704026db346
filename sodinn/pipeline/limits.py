"""The detection-limit report (``sodinn limits``): contrast curves in contrast and delta mag against arcsec.

:func:`limits_report` runs :func:`sodinn.evaluate.limits.contrast_limits` (the classical Student-corrected
``sigma``-sigma curve of annular PCA-ADI, and the 95%-TPR limits of the models and baselines on the same
injected copies) and writes, each atomically:

- ``limits.ecsv``: both curves, one row per curve, method and separation: separation in px, lambda/D,
  arcsec and mas, limiting flux, contrast and delta mag (with units; the header states the star flux,
  its scaling and the methods);
- ``tpr.ecsv``: the measured and fitted detection rate at every flux level;
- ``limits.png``: delta mag against separation in arcsec (fainter down), lambda/D on the top axis;
- ``config.toml``: the effective configuration (``[data]`` and ``[limits]``);
- ``cache/``: the maps of every copy, reused by a rerun.

:func:`write_limits` writes the older CSV report of separately computed curves (``contrast_curve.csv``,
``detection_limits.csv``, ``tpr.csv`` and ``limits.png`` in flux or contrast against px).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sodinn import _validation as v
from sodinn._atomic import atomic_path, check_writable_output, output_folder
from sodinn.adi.sequence import ADISequence
from sodinn.config import LimitConfig, dump_toml
from sodinn.evaluate.contrast import ContrastCurve
from sodinn.evaluate.limits import ContrastLimits, DetectionLimits, contrast_limits
from sodinn.pipeline.figures import new_figure, save_figure
from sodinn.plotting import plot_contrast_curves, plot_delta_mag_curves

__all__ = ["limits_report", "write_limits", "write_limits_report"]


def write_limits(
    output_dir: str | os.PathLike[str],
    *,
    classical: ContrastCurve | None = None,
    limits: DetectionLimits | None = None,
    star_flux: float | None = None,
) -> list[Path]:
    """Write ``contrast_curve.csv``, ``detection_limits.csv``, ``tpr.csv`` and ``limits.png`` (each atomically).

    Parameters
    ----------
    output_dir : path-like
        The output folder (created if needed).
    classical : ContrastCurve, optional
        The classical curve (:func:`sodinn.evaluate.contrast.classical_contrast_curve`).
    limits : DetectionLimits, optional
        The detection limits (:func:`sodinn.evaluate.limits.detection_limits`).
    star_flux : float, optional
        The star's flux in an aperture of diameter 1 FWHM, in the cube's units: adds contrast columns
        and plots contrast instead of flux (it replaces the classical curve's own ``star_flux``).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ValueError
        If neither ``classical`` nor ``limits`` is given, or ``star_flux`` is not positive; nothing is
        written then.
    OSError
        If ``output_dir`` cannot be written (a file, no permission), before anything is written; if
        writing fails midway, what was written is removed.
    """
    from astropy.table import Table

    if classical is None and limits is None:
        msg = "nothing to write: pass a classical curve, detection limits or both"
        raise ValueError(msg)
    if star_flux is not None:
        star_flux = v.check_positive(star_flux, name="star_flux")
    out = check_writable_output(output_dir, kind="folder", name="output_dir")
    tables = []
    if classical is not None:
        rows = classical.rows()
        if star_flux is not None:  # the star flux given here wins, as in the figure
            rows = [{**r, "contrast": r["flux_limit"] / star_flux} for r in rows]
        tables.append(("contrast_curve.csv", Table(rows=rows)))
    if limits is not None:
        tables += [("detection_limits.csv", limits.table(star_flux)), ("tpr.csv", Table(rows=limits.tpr_rows()))]
    fig, ax = new_figure(figsize=(6.5, 4.5))
    plot_contrast_curves(classical, limits, star_flux=star_flux, ax=ax)  # drawn before anything is written
    written = []
    with output_folder(out):
        for name, table in tables:
            with atomic_path(out / name) as tmp:
                table.write(tmp, format="ascii.csv", overwrite=True)
            written.append(out / name)
        save_figure(fig, out / "limits.png", dpi=120, tight=False)
    return [*written, out / "limits.png"]


def limits_report(
    sequence: ADISequence,
    config: LimitConfig | None,
    models: Mapping[str, str | os.PathLike[str]] | None,
    output_dir: str | os.PathLike[str],
    *,
    data: Mapping[str, Any] | None = None,
    thresholds: Mapping[str, float | Sequence[float]] | None = None,
    n_jobs: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
) -> ContrastLimits:
    """Measure the contrast curves (:func:`sodinn.evaluate.limits.contrast_limits`) and write their report.

    Parameters
    ----------
    sequence : ADISequence
        The data: cube ``(n_frames, N, N)``, angles in degrees, PSF, FWHM and pixel scale.
    config : LimitConfig, optional
        Settings (default :class:`~sodinn.config.LimitConfig`).
    models : mapping of str -> path-like, optional
        Trained models by name (folders written by ``sodinn train``), evaluated beside the baselines.
    output_dir : path-like
        The report's folder (created if needed); the copies' maps are cached in ``output_dir/cache``.
        If the run fails or is interrupted, what it wrote is removed, unless the cache holds finished
        copies (a rerun resumes from them).
    data : mapping, optional
        The ``[data]`` table to record in ``config.toml``.
    thresholds : mapping of method name -> float or sequence, optional
        Thresholds per method (see :func:`sodinn.evaluate.limits.detection_limits`).
    n_jobs : int, optional
        Worker processes (default: all cores).
    scheduler : None, str or dask.distributed.Client
        Where the copies run (:mod:`sodinn.engine`).
    progress : bool
        Show a progress bar over the copies.

    Returns
    -------
    ContrastLimits
        Both curves, the star flux and the pixel scale.

    Raises
    ------
    SettingError, ValueError, FileNotFoundError
        As :func:`sodinn.evaluate.limits.contrast_limits`, before any work.
    OSError
        If ``output_dir`` cannot be written (a file, no permission), before any work.
    """
    config = config or LimitConfig()
    out = check_writable_output(output_dir, kind="folder", name="output_dir")
    with output_folder(out, resume_state=("cache",)):
        result = contrast_limits(sequence, config, models, thresholds=thresholds, cache_dir=out / "cache", n_jobs=n_jobs,
                                 scheduler=scheduler, progress=progress)
        write_limits_report(result, out, data=data, models=models)
    return result


def _title(result: ContrastLimits) -> str:
    cfg = result.config
    parts = []
    if result.classical is not None:
        parts.append(f"annular PCA-ADI ({cfg.classical_ncomp} PC) {cfg.sigma:g}σ")
    for m in result.detection.methods:
        level = "S/N" if m not in result.detection.models else "P"
        value = result.detection.thresholds[m]
        shown = f"{value[0]:g}" if (value == value[0]).all() else "per separation"
        parts.append(f"{m} {100 * result.detection.tpr_target:g}% TPR at {level} ≥ {shown}")
    return "Detection limits: " + "; ".join(parts)


def write_limits_report(result: ContrastLimits, output_dir: str | os.PathLike[str], *, data: Mapping[str, Any] | None = None,
                        models: Mapping[str, str | os.PathLike[str]] | None = None) -> list[Path]:
    """Write ``limits.ecsv``, ``tpr.ecsv``, ``limits.png`` and ``config.toml`` of a result, each atomically.

    Parameters
    ----------
    result : ContrastLimits
        What :func:`sodinn.evaluate.limits.contrast_limits` measured.
    output_dir : path-like
        The report's folder (created if needed; if writing fails, what was written is removed).
    data : mapping, optional
        The ``[data]`` table to record in ``config.toml``.
    models : mapping of str -> path-like, optional
        The models of the run, recorded in ``config.toml`` as ``models = ["NAME=DIR", ...]``.

    Returns
    -------
    list of Path
        The files written, in the order above.

    Raises
    ------
    ValueError
        If no curve reached a limit at any separation (nothing to plot); nothing is written then.
    OSError
        If ``output_dir`` cannot be written (a file, no permission), before anything is written.
    """
    from astropy.table import Table

    out = check_writable_output(output_dir, kind="folder", name="output_dir")
    table = result.table()
    fig, ax = new_figure(figsize=(7.0, 5.0))
    plot_delta_mag_curves(table, ax=ax, title=_title(result))  # drawn before anything is written
    tpr = Table(rows=result.detection.tpr_rows())
    tables: dict[str, Any] = {"data": dict(data)} if data else {}
    tables["limits"] = {**result.config.to_dict(), "models": [f"{k}={v}" for k, v in (models or {}).items()],
                        "output": str(out.resolve())}
    names = ["limits.ecsv", "tpr.ecsv", "limits.png", "config.toml"]
    with output_folder(out):
        with atomic_path(out / "limits.ecsv") as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
        with atomic_path(out / "tpr.ecsv") as tmp:
            tpr.write(tmp, format="ascii.ecsv", overwrite=True)
        save_figure(fig, out / "limits.png", dpi=120)
        dump_toml(out / "config.toml", tables)
    return [out / n for n in names]
