"""The detection-limit report: tables and figure of the classical contrast curve and of the models' limits.

Files: ``contrast_curve.csv`` (:func:`sodinn.evaluate.contrast.classical_contrast_curve`),
``detection_limits.csv`` and ``tpr.csv`` (:func:`sodinn.evaluate.limits.detection_limits`), and
``limits.png`` (:func:`sodinn.plotting.plot_contrast_curves`), each written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

from sodinn import _validation as v
from sodinn._atomic import atomic_path, check_writable_output, output_folder
from sodinn.evaluate.contrast import ContrastCurve
from sodinn.evaluate.limits import DetectionLimits
from sodinn.pipeline.figures import new_figure, save_figure
from sodinn.plotting import plot_contrast_curves

__all__ = ["write_limits"]


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
