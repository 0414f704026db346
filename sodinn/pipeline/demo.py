"""The demonstration (``sodinn demo``): the whole pipeline on a synthetic sequence with two companions.

1. a synthetic ADI sequence (:func:`sodinn.datasets.make_adi_sequence`, seeded), written as FITS;
2. annular and full-frame PCA-ADI, their S/N maps (:mod:`sodinn.pipeline.reduce`);
3. labeled samples with the true companions masked (:mod:`sodinn.pipeline.samples`);
4. a small SODINN model (:mod:`sodinn.pipeline.train`);
5. its probability map and candidates (:mod:`sodinn.pipeline.predict`), and ``demo.png``: PCA-ADI's
   S/N map beside the model's probability map and numbered candidates, the true companions marked.

The data carry two companions (:data:`DEMO_COMPANIONS`): "A", which annular PCA-ADI finds (S/N about
5), and "B", near S/N 2, which it cannot tell from the speckles and the model is meant to find.
Steps 3-5 are skipped with ``train=False``. Everything goes into one output folder.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sodinn._atomic import check_writable_output, output_folder
from sodinn.adi.io import read_fits, write_fits
from sodinn.adi.sequence import ADISequence
from sodinn.config import PredictConfig, SampleConfig, TrainConfig
from sodinn.datasets import SyntheticADI, make_adi_sequence
from sodinn.pipeline.figures import new_figure, save_figure, sky_axes
from sodinn.pipeline.predict import predict_products
from sodinn.pipeline.reduce import Reduction, write_reductions
from sodinn.pipeline.samples import write_sample_file
from sodinn.pipeline.train import train_model
from sodinn.plotting import plot_frame, plot_snr_map

__all__ = ["COMPANION_NAMES", "DEMO_COMPANIONS", "DEMO_NCOMP", "DemoResult", "demo_figure", "run_demo"]

logger = logging.getLogger(__name__)

#: The demo's companions, (separation px, angle deg counter-clockwise from +x, flux in a 1-FWHM aperture):
#: "A", which annular PCA-ADI finds (S/N about 5.4 at seed 0), and "B", near S/N 2, which it does not
DEMO_COMPANIONS = ((12.0, 50.0, 1500.0), (20.0, 200.0, 70.0))
#: Principal components of the demo's PCA-ADI reductions
DEMO_NCOMP = 5
#: The names of the companions in the figures and the printed summary
COMPANION_NAMES = ("A", "B")


@dataclass(frozen=True)
class DemoResult:
    """What the demonstration made.

    Attributes
    ----------
    synthetic : SyntheticADI
        The generated data, with its true companions.
    sequence : ADISequence
        The same, read back from its FITS files.
    reductions : dict of str -> Reduction
        Annular and full-frame PCA-ADI.
    candidates : astropy.table.Table or None
        The model's candidates (None with ``train=False``).
    metrics : dict or None
        The model's held-out metrics.
    criterion : str
        What made a candidate (the false-alarm budget, in words).
    seconds : float
        Wall-clock time of the whole run.
    """

    synthetic: SyntheticADI
    sequence: ADISequence
    reductions: dict[str, Reduction]
    candidates: Any
    metrics: dict[str, Any] | None
    criterion: str
    seconds: float


def run_demo(output_dir: str | os.PathLike[str], *, seed: int = 0, train: bool = True, progress: bool = True) -> DemoResult:
    """Run the demonstration into ``output_dir`` (see the module docstring).

    Parameters
    ----------
    output_dir : path-like
        The output folder (created if needed): ``data/``, the reductions, ``samples.h5``,
        ``model/`` and ``predict/``. If the run fails or is interrupted, what it wrote is removed.
    seed : int
        Seed of the synthetic data.
    train : bool
        Also make samples, train the model and predict (steps 3-5, about a minute on 2 cores).
    progress : bool
        Show progress bars.

    Returns
    -------
    DemoResult
        The data, the reductions and, with ``train=True``, the model's candidates and metrics.

    Raises
    ------
    OSError
        If ``output_dir`` cannot be written (a file, no permission), before any work.
    """
    out = check_writable_output(output_dir, kind="folder", name="output_dir")
    with output_folder(out):
        return _demo(out, seed, train, progress)


def _demo(out: Path, seed: int, train: bool, progress: bool) -> DemoResult:
    t0 = time.perf_counter()
    steps = 5 if train else 3
    logger.info("1/%d making a synthetic ADI sequence (seed %d)", steps, seed)
    synth = make_adi_sequence(n_frames=40, size_px=63, fwhm_px=4.0, field_rotation_deg=60.0, companions=DEMO_COMPANIONS,
                              seed=seed)
    data = out / "data"
    provenance = {"generator": "sodinn.datasets.make_adi_sequence", "seed": seed, "config": synth.config}
    write_fits(data / "cube.fits", synth.cube.astype(np.float32), provenance=provenance)
    write_fits(data / "angles.fits", synth.angles_deg, provenance=provenance)
    write_fits(data / "psf.fits", synth.psf, provenance=provenance)
    seq = ADISequence.from_fits(
        data / "cube.fits", data / "angles.fits", data / "psf.fits",
        fwhm_px=synth.fwhm_px, pixel_scale_arcsec=synth.pixel_scale_arcsec,
    )
    truth = [(c.x_px, c.y_px) for c in synth.companions]
    logger.info("   %d frames of %dx%d px, %.0f deg of field rotation, FWHM %.1f px; companions at %s",
                seq.n_frames, seq.frame_size, seq.frame_size, seq.field_rotation_deg, seq.fwhm_px,
                ", ".join(f"(x={x:.1f}, y={y:.1f})" for x, y in truth))
    logger.info("2/%d reducing with annular and full-frame PCA-ADI, S/N maps", steps)
    reductions = write_reductions(seq, ["annular", "pca"], out, ncomp=DEMO_NCOMP, provenance={"data": str(data)}, truth_xy=truth)
    candidates, metrics = None, None
    config = PredictConfig(known_sources_xy=tuple(truth))  # the model's masked sources, out of the null draws
    if train:
        logger.info("3/5 labeled samples (K=10 ranks, 9x9 px patches, the true companions masked)")
        samples_config = SampleConfig(patch_px=9, n_ranks=10, samples_per_annulus=100, known_sources_xy=tuple(truth), seed=0)
        samples = write_sample_file(seq, samples_config, out / "samples.h5", resume=False, progress=progress)
        logger.info("4/5 training the SODINN ConvLSTM (8 epochs at most)")
        result = train_model(samples, out / "model", TrainConfig(model="sodinn", epochs=8, batch_size=64, patience=3),
                             resume=False, progress=progress)
        metrics = result.metrics
        logger.info("   held-out accuracy %.3f, ROC AUC %.3f", metrics["accuracy"], metrics["auc"] or float("nan"))
        logger.info("5/5 probability map and candidates")
        data_table = {"cube": str(data / "cube.fits"), "angles": str(data / "angles.fits"), "psf": str(data / "psf.fits"),
                      "fwhm_px": seq.fwhm_px, "pixel_scale_arcsec": seq.pixel_scale_arcsec}
        prediction = predict_products(seq, out / "model", out / "predict", config=config, data=data_table,
                                      progress=False, truth_xy=truth)
        candidates = prediction.candidates
        significance = read_fits(prediction.output_dir / "significance_map.fits")
        fig = demo_figure(read_fits(reductions["annular"].snr_file), significance, candidates, seq,
                          truth_xy=truth, snr_at_truth=reductions["annular"].snr_at_truth, ncomp=DEMO_NCOMP,
                          criterion=prediction.criterion)
        save_figure(fig, out / "demo.png")
    seconds = time.perf_counter() - t0
    logger.info("%d/%d done in %.1f s; outputs in %s", steps, steps, seconds, out)
    return DemoResult(synthetic=synth, sequence=seq, reductions=reductions, candidates=candidates, metrics=metrics,
                      criterion=_criterion(config), seconds=seconds)


def demo_figure(snr: np.ndarray, significance: np.ndarray, candidates: Any, sequence: ADISequence, *,
                truth_xy: Sequence[tuple[float, float]], snr_at_truth: Sequence[float], ncomp: int, criterion: str,
                max_listed: int = 8) -> Any:
    """Draw the demo's point: PCA-ADI's S/N map beside the model's significance map and its candidates.

    The true companions are marked (dashed squares, named by :data:`COMPANION_NAMES`) in both
    panels, the model's candidates numbered with their row of ``candidates.ecsv``; a third panel
    lists the candidates with their false-alarm level and the companion each one is (within 2 px).

    Parameters
    ----------
    snr : ndarray, shape (N, N)
        The S/N map of annular PCA-ADI with ``ncomp`` components.
    significance : ndarray, shape (N, N)
        The model's calibrated significance per pixel, sigma (``significance_map.fits``; NaN where not
        evaluated).
    candidates : astropy.table.Table
        The model's candidates (``x``, ``y`` in px, ``peak_probability``), brightest first.
    sequence : ADISequence
        The data (pixel scale, FWHM in px).
    truth_xy : sequence of (x, y)
        The injected companions, px.
    snr_at_truth : sequence of float
        Annular PCA-ADI's S/N at each of ``truth_xy``.
    ncomp : int
        Principal components of ``snr``.
    criterion : str
        What made a candidate, for the title (``Prediction.criterion``).
    max_listed : int
        Candidates numbered and listed at most.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels (S/N map, significance map, the list), not yet written.
    """
    fig, axes = new_figure(1, 3, figsize=(15, 4.9), width_ratios=(1, 1, 0.55))
    names = list(COMPANION_NAMES[: len(truth_xy)])
    numbered = [(float(r["x"]), float(r["y"])) for r in candidates[:max_listed]]
    common = {"circle_radius_px": sequence.fwhm_px, "truth_xy": list(truth_xy), "truth_labels": names, **sky_axes(sequence)}
    found = ", ".join(f"{n}: S/N {s:.1f}" for n, s in zip(names, snr_at_truth))
    plot_snr_map(snr, ax=axes[0], title=f"annular PCA-ADI, {ncomp} components: S/N map\n{found}", **common)
    finite = significance[np.isfinite(significance)]
    top = max(5.0, float(finite.max())) if finite.size else 5.0
    plot_frame(significance, ax=axes[1], cmap="magma", vmin=-2, vmax=top, label="sigma", candidates_xy=numbered,
               title=f"SODINN: significance (whole field)\n{len(candidates)} candidates, {criterion}", **common)
    axes[2].set_axis_off()
    lines = ["SODINN candidates", "(# = row of predict/candidates.ecsv)", ""]
    for k, row in enumerate(candidates[:max_listed], start=1):
        d = [np.hypot(float(row["x"]) - x, float(row["y"]) - y) for x, y in truth_xy]
        match = f"  = {names[int(np.argmin(d))]}" if d and min(d) < 2 else ""
        lines.append(f"#{k}  {_score(row)}{match}")
    if len(candidates) > max_listed:
        lines.append(f"... {len(candidates) - max_listed} more")
    lines += ["", "dashed squares: injected companions"]
    axes[2].text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=9,
                 transform=axes[2].transAxes)
    return fig


def _score(row: Any) -> str:
    """Return the score of a candidate as listed in the demo's figure: its false-alarm level, else its probability."""
    if "expected_fp" in row.colnames:
        return f"{float(row['expected_fp']):.2g} FP/frame ({float(row['significance_sigma']):.1f} sigma)"
    return f"P = {float(row['peak_probability']):.3f}"


def _criterion(config: PredictConfig) -> str:
    """Return what made a candidate, in words."""
    if config.calibrated:
        return f"expected false positives per frame <= {config.fp_budget:g}"
    return f"P >= {config.threshold:g}"
