"""The products of a classical reduction (``sodinn reduce``, ``sodinn demo``): final frame, S/N map, figure.

For every method (a baseline of :data:`sodinn.adi.baselines.BASELINES`), the final frame and its S/N
map are written as FITS with a provenance header (function, parameters, input files and their
SHA-256) and the frame's sky orientation and pixel scale (:func:`sodinn.adi.io.sky_header`), with a
figure of both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sodinn import _validation as v
from sodinn._atomic import check_writable_output, output_folder
from sodinn.adi.baselines import get_baseline
from sodinn.adi.io import sky_header, write_fits
from sodinn.adi.sequence import ADISequence
from sodinn.adi.snr import snr, snr_map
from sodinn.config import dump_toml
from sodinn.pipeline.figures import new_figure, save_figure, sky_axes
from sodinn.plotting import plot_frame, plot_snr_map

__all__ = ["Reduction", "write_reductions"]


@dataclass(frozen=True)
class Reduction:
    """What one method's reduction wrote and found.

    Attributes
    ----------
    method : str
        The baseline's registry name.
    frame_file, snr_file, figure_file : Path
        ``<method>_frame.fits``, ``<method>_snrmap.fits``, ``<method>_snrmap.png``.
    peak_snr : float
        Largest value of the S/N map.
    peak_xy : (int, int)
        Its pixel (x, y).
    snr_at_truth : list of float
        S/N (Mawet et al. 2014) at each position of ``truth_xy`` (known companions).
    """

    method: str
    frame_file: Path
    snr_file: Path
    figure_file: Path
    peak_snr: float
    peak_xy: tuple[int, int]
    snr_at_truth: list[float]


def write_reductions(
    sequence: ADISequence,
    methods: Sequence[str],
    output_dir: str | os.PathLike[str],
    *,
    ncomp: int,
    provenance: Mapping[str, Any] | None = None,
    truth_xy: Sequence[tuple[float, float]] = (),
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Reduction]:
    """Reduce ``sequence`` with each method and write its final frame, S/N map and figure into ``output_dir``.

    Parameters
    ----------
    sequence : ADISequence
        The data: cube ``(n_frames, N, N)``, angles in degrees, FWHM in px.
    methods : sequence of str
        Baselines of the registry (``"annular"``, ``"pca"``, ``"median"``).
    output_dir : path-like
        Created if needed; if a reduction fails, what this call wrote there is removed.
    ncomp : int
        Principal components of the PCA baselines.
    provenance : mapping, optional
        Further header cards (e.g. the effective configuration).
    truth_xy : sequence of (x, y)
        Known companions: marked (dashed squares) in the figures, their S/N reported.
    settings : mapping of table -> mapping, optional
        The effective configuration (``{"data": ..., "reduce": ...}``): written as ``config.toml``
        beside the products, last.
    options : mapping, optional
        Options of the baselines (e.g. ``{"delta_rot": 0.5}``, in FWHM), each passed to the methods
        that take it (:attr:`sodinn.adi.baselines.Baseline.options`).

    Returns
    -------
    dict of str -> Reduction
        By method name: the files written, the S/N peak and the S/N at ``truth_xy``.

    Raises
    ------
    ValueError
        For an unknown method, ``truth_xy`` not (x, y) pairs inside the frame, or ``ncomp`` at or
        above what a PCA method can use on these data (the message gives the largest usable value),
        before any work; for a final frame that is round-off (no S/N map is made of it).
    OSError
        If ``output_dir`` cannot be written (a file, no permission; before any work).
    """
    baselines = [get_baseline(m) for m in methods]
    if len(truth_xy):
        truth_xy = [(float(x), float(y)) for x, y in v.check_positions_xy(truth_xy, name="truth_xy",
                                                                          frame_size=sequence.frame_size)]
    opts = dict(options or {})
    for baseline in baselines:
        if baseline.ranked:
            limit = baseline.ncomp_limit(sequence.cube, sequence.angles_deg, sequence.fwhm_px,
                                         **{k: val for k, val in opts.items() if k in baseline.options})
            if limit is not None and ncomp > limit[0]:
                usable = f"use at most ncomp={limit[0]}" if limit[0] >= 1 else "no number of components is usable"
                msg = f"{baseline.title}: ncomp={ncomp} is more than the data allow ({limit[1]}); {usable}"
                raise ValueError(msg)
    out = check_writable_output(output_dir, kind="folder", name="output_dir")
    with output_folder(out):
        return _reduce_all(sequence, baselines, out, ncomp, provenance, truth_xy, settings, opts)


def _reduce_all(sequence, baselines, out: Path, ncomp, provenance, truth_xy, settings, opts) -> dict[str, Reduction]:
    results: dict[str, Reduction] = {}
    for baseline in baselines:
        method = baseline.name
        ncomp_used = ncomp if baseline.ranked else None
        frame = baseline.reduce(sequence.cube, sequence.angles_deg, sequence.fwhm_px, ncomp=ncomp_used,
                                **{k: val for k, val in opts.items() if k in baseline.options})
        smap = snr_map(frame, sequence.fwhm_px)
        header = {
            "function": baseline.function.__name__,
            "ncomp": ncomp_used,
            "fwhm_px": sequence.fwhm_px,
            **{k: v for k, v in sequence.provenance.items() if k.endswith(("_file", "_sha256"))},
            **dict(provenance or {}),
        }
        sky = sky_header(sequence.frame_size, pixel_scale_arcsec=sequence.pixel_scale_arcsec,
                         north_offset_deg=sequence.north_offset_deg)
        frame_file = write_fits(out / f"{method}_frame.fits", frame, provenance=header,
                                header={**sky, "BUNIT": ("", "the units of the input cube")})
        snr_file = write_fits(out / f"{method}_snrmap.fits", smap, provenance={**header, "product": "snr_map"},
                              header={**sky, "BUNIT": ("", "S/N (Mawet et al. 2014), dimensionless")})
        fig, axes = new_figure(1, 2, figsize=(10, 4.2))
        components = f", {ncomp_used} components" if ncomp_used is not None else ""
        sky = sky_axes(sequence)
        plot_frame(frame, ax=axes[0], title=f"{baseline.title}{components}: final frame", truth_xy=truth_xy,
                   circle_radius_px=sequence.fwhm_px, label="flux [cube units]", **sky)
        plot_snr_map(smap, ax=axes[1], title=f"{baseline.title}{components}: S/N map", truth_xy=truth_xy,
                     circle_radius_px=sequence.fwhm_px, **sky)
        figure_file = save_figure(fig, out / f"{method}_snrmap.png")
        py, px = np.unravel_index(int(np.argmax(smap)), smap.shape)
        results[method] = Reduction(
            method=method, frame_file=frame_file, snr_file=snr_file, figure_file=figure_file, peak_snr=float(smap[py, px]),
            peak_xy=(int(px), int(py)), snr_at_truth=[snr(frame, (x, y), sequence.fwhm_px) for x, y in truth_xy],
        )
    if settings is not None:
        dump_toml(out / "config.toml", settings)
    return results
