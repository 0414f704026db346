"""The products of a trained model on a sequence (``sodinn predict``, surveys, the demo).

:func:`predict_products` checks the model against the data from its ``model.json`` (before Keras is
loaded), scores every pixel and, by default, null draws of every pixel in the same pass
(:func:`sodinn.detect.probability.probability_map`), calibrates the scores on the nulls
(:mod:`sodinn.detect.calibration`), keeps the candidates within the false-alarm budget
(:func:`sodinn.detect.candidates.find_calibrated_candidates`; or a probability threshold when one is
given), and writes into the output folder:

- ``probability_map.fits`` (P(companion)) and ``detection_map.fits`` (1 where the criterion holds), with a
  provenance header and the frame's sky orientation and pixel scale (:func:`sodinn.adi.io.sky_header`);
- calibrated (the default): ``false_alarm_map.fits`` (expected false positives per frame at each pixel's
  score), ``significance_map.fits`` (its Gaussian equivalent, sigma) and ``calibration.ecsv`` (per annulus);
- ``candidates.ecsv``, one row per candidate, most significant first, in pixels and on the sky (separation
  in arcsec and mas, position angle east of north), with its false-alarm level, its annular PCA-ADI S/N,
  flux, contrast and Δmag (:func:`sodinn.detect.candidates.measure_candidates`; the method and
  conventions in its metadata);
- ``candidates.reg``: a DS9 region file, one circle of 1 FWHM per candidate labelled with its ``id``;
- ``detection.png``: the significance (or probability) map beside the annular PCA-ADI S/N map on sky axes
  (arcsec, N/E arrows), candidates circled and numbered with their row of the table;
- ``config.toml``: the effective ``[data]`` and ``[predict]`` tables.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sodinn import _validation as v
from sodinn._atomic import atomic_path, check_writable_output, output_folder
from sodinn.adi.baselines import annular_ncomp_limit, pca_annular
from sodinn.adi.io import sky_header, write_fits
from sodinn.adi.sequence import ADISequence
from sodinn.adi.sky import PSFScaling
from sodinn.adi.snr import snr_map
from sodinn.config import PredictConfig, dump_toml
from sodinn.detect.calibration import Calibration, calibrate_nulls, calibrate_self, significance_sigma
from sodinn.detect.candidates import binary_map, calibrated_detection_map, find_calibrated_candidates, find_candidates, measure_candidates
from sodinn.detect.probability import ProbabilityMap, probability_map
from sodinn.learn.artifact import check_model_data, load_trained, read_metadata
from sodinn.learn.models import import_keras_quietly
from sodinn.pipeline.figures import new_figure, save_figure, sky_axes
from sodinn.plotting import plot_frame, plot_snr_map

__all__ = ["CALIBRATED_FILES", "PREDICT_FILES", "Prediction", "calibration_table", "detection_figure", "predict_products",
           "write_ds9_regions"]

logger = logging.getLogger(__name__)

#: The files :func:`predict_products` writes (besides ``config.toml``)
PREDICT_FILES = ("probability_map.fits", "detection_map.fits", "candidates.ecsv", "candidates.reg", "detection.png")

#: The files :func:`predict_products` writes besides :data:`PREDICT_FILES` when it calibrates (the default)
CALIBRATED_FILES = ("false_alarm_map.fits", "significance_map.fits", "calibration.ecsv")


@dataclass(frozen=True)
class Prediction:
    """What :func:`predict_products` computed and wrote.

    Attributes
    ----------
    probability : ProbabilityMap
        The probability map, shape ``(N, N)``, and the annuli it covers.
    candidates : astropy.table.Table
        One row per candidate, brightest first (see :func:`sodinn.detect.candidates.find_candidates`).
    threshold : float or None
        The probability threshold of the detection map and the candidates, when one was given instead of
        the false-alarm budget.
    output_dir : Path
        The folder the files were written to.
    calibration : Calibration or None
        The model's calibration on the data (None with a probability threshold).
    fp_budget : float or None
        The false-alarm budget, expected false positives per frame (None with a probability threshold).
    criterion : str
        What made a candidate, in words (``"expected false positives per frame <= 1"``, ``"P >= 0.9"``).
    """

    probability: ProbabilityMap
    candidates: Any
    threshold: float | None
    output_dir: Path
    calibration: Calibration | None = None
    fp_budget: float | None = None
    criterion: str = ""


def predict_products(
    sequence: ADISequence,
    model_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    config: PredictConfig | None = None,
    data: Mapping[str, Any] | None = None,
    psf_scaling: PSFScaling | None = None,
    progress: bool = True,
    truth_xy: Sequence[tuple[float, float]] = (),
) -> Prediction:
    """Apply a trained model to every pixel of the sequence's annuli and write the detection products.

    Parameters
    ----------
    sequence : ADISequence
        The data: cube ``(n_frames, N, N)``, angles in degrees, PSF and FWHM in px.
    model_dir : path-like
        A model folder written by ``sodinn train``.
    output_dir : path-like
        Created if needed; if the run fails, what it wrote there is removed.
    config : PredictConfig, optional
        Threshold and batch size (default: :class:`~sodinn.config.PredictConfig`).
    data : mapping, optional
        The ``[data]`` table to record in ``config.toml`` (input files, FWHM, pixel scale).
    psf_scaling : PSFScaling, optional
        Exposure times and neutral-density transmission of the PSF relative to the cube, for the
        candidates' contrasts (default: all 1; :class:`sodinn.adi.sky.PSFScaling`).
    progress : bool
        Show a progress bar.
    truth_xy : sequence of (x, y)
        True companions where known (e.g. injected), px: marked in ``detection.png``.

    Returns
    -------
    Prediction
        The probability map, the candidates, the threshold and the output folder.

    Raises
    ------
    FileNotFoundError, ValueError
        Before any work and before Keras is loaded: ``model_dir`` is not a model folder, or the model
        cannot be applied to the sequence (:func:`sodinn.learn.artifact.check_model_data`: another
        FWHM, too few frames for its ranks, frames too small for its patches), or ``truth_xy`` is not
        a list of (x, y) pairs inside the frame.
    OSError
        Before any work: ``output_dir`` cannot be written (a file, no permission).
    """
    config = config or PredictConfig()
    model_path = Path(model_dir)
    check_model_data(read_metadata(model_path), sequence)
    truth_xy = _check_truth(truth_xy, sequence.frame_size)
    v.check_sources_in_frame(config, sequence.frame_size)
    ncomp, delta_rot = _figure_pca(sequence)
    scaling = PSFScaling() if psf_scaling is None else psf_scaling
    if not isinstance(scaling, PSFScaling):
        msg = f"psf_scaling must be a PSFScaling; got {type(scaling).__name__}"
        raise TypeError(msg)
    out = check_writable_output(output_dir, kind="folder", name="output_dir")
    logger.info("loading the model in %s", model_path)
    import_keras_quietly()
    model = load_trained(model_path)
    with output_folder(out):
        return _predict_into(sequence, model, model_path, out, config, data, progress, (ncomp, delta_rot), truth_xy,
                             scaling)


def _predict_into(sequence: ADISequence, model: Any, model_path: Path, out: Path, config: PredictConfig,
                  data: Mapping[str, Any] | None, progress: bool, figure_pca: tuple[int, Any],
                  truth_xy: Sequence[tuple[float, float]], scaling: PSFScaling) -> Prediction:
    ncomp, delta_rot = figure_pca
    n_null = config.calibration_nulls if config.calibrated else 0
    if n_null:
        logger.info("scoring every pixel and %d null draws of it (the calibration)", n_null)
    elif config.calibrated:
        logger.info("scoring every pixel; the map's own blobs calibrate it (known sources left out)")
    pmap = probability_map(sequence, model, batch_size=config.batch_size, progress=progress, n_null=n_null, seed=config.seed,
                           known_sources_xy=config.known_sources_xy)
    frame = pca_annular(sequence.cube, sequence.angles_deg, sequence.fwhm_px, ncomp=ncomp, delta_rot=delta_rot)
    sky = sky_header(sequence.frame_size, pixel_scale_arcsec=sequence.pixel_scale_arcsec,
                     north_offset_deg=sequence.north_offset_deg)
    where = {"pixel_scale_arcsec": sequence.pixel_scale_arcsec, "north_offset_deg": sequence.north_offset_deg}
    calibration = sigma = None
    if config.calibrated:
        calibration = (calibrate_nulls(pmap, sequence.fwhm_px) if n_null else
                       calibrate_self(pmap, sequence.fwhm_px, known_sources_xy=pmap.known_sources_xy))
        table = find_calibrated_candidates(pmap, calibration, config.fp_budget, **where)
        for x, y in table.meta.get("calibration_sources_left_out_xy", []):
            logger.info("the self-calibration took the blob at (%.1f, %.1f) for a real source and left it out of its "
                        "null sample", x, y)
        log10_c = calibration.log10_expected_false_positives(pmap.logit)
        sigma = np.where(pmap.evaluated, significance_sigma(log10_c), np.nan)
        detection = calibrated_detection_map(pmap, calibration, config.fp_budget)  # the candidates' blobs
        criterion = f"expected false positives per frame <= {config.fp_budget:g}"
    else:
        table = find_candidates(pmap.probability, config.threshold, **where)
        detection = binary_map(pmap.probability, config.threshold)
        criterion = f"P >= {config.threshold:g}"
    table = measure_candidates(table, sequence, frame, ncomp=ncomp, delta_rot=delta_rot, psf_scaling=scaling)
    provenance = {
        "function": "probability_map", "model": str(model_path.resolve()),
        "model_training_set_sha256": model.metadata["training_set"]["sha256"], "criterion": criterion,
        "known_sources_xy": [list(xy) for xy in pmap.known_sources_xy],
        **{k: v for k, v in sequence.provenance.items() if k.endswith(("_file", "_sha256"))},
    }
    write_fits(out / "probability_map.fits", pmap.probability, provenance=provenance,
               header={**sky, "BUNIT": ("", "P(companion), dimensionless")})
    write_fits(out / "detection_map.fits", detection.astype(np.int16), provenance=provenance,
               header={**sky, "BUNIT": ("", f"1 where {criterion}, else 0"[:68])})
    if calibration is not None:
        write_fits(out / "false_alarm_map.fits", np.where(pmap.evaluated, np.power(10.0, log10_c), np.nan),
                   provenance=provenance, header={**sky, "BUNIT": ("", "expected false positives per frame")})
        write_fits(out / "significance_map.fits", sigma, provenance=provenance,
                   header={**sky, "BUNIT": ("", "sigma, whole-field false-alarm probability")})
        with atomic_path(out / "calibration.ecsv") as tmp:
            calibration_table(calibration, config.fp_budget).write(tmp, format="ascii.ecsv", overwrite=True)
    with atomic_path(out / "candidates.ecsv") as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)
    write_ds9_regions(table, out / "candidates.reg", radius_px=sequence.fwhm_px)
    image, statistic = (pmap.probability, "probability") if sigma is None else (sigma, "significance")
    fig = detection_figure(image, snr_map(frame, sequence.fwhm_px), table, sequence,
                           model_name=str(model.metadata.get("model", "model")), criterion=criterion,
                           ncomp=ncomp, truth_xy=truth_xy, statistic=statistic)
    save_figure(fig, out / "detection.png")
    dump_toml(out / "config.toml", {"data": dict(data or {}),
                                    "predict": {"model": str(model_path.resolve()), **config.to_dict(), "output": str(out.resolve())}})
    return Prediction(probability=pmap, candidates=table, threshold=config.threshold, output_dir=out,
                      calibration=calibration, fp_budget=config.fp_budget if config.calibrated else None, criterion=criterion)


def calibration_table(calibration: Calibration, fp_budget: float):
    """Tabulate a calibration per annulus: its radii, area, null tail and the threshold at ``fp_budget``.

    Parameters
    ----------
    calibration : Calibration
        The calibration of the model on the data (:mod:`sodinn.detect.calibration`).
    fp_budget : float
        Expected false positives per frame of the whole field (> 0).

    Returns
    -------
    astropy.table.Table
        One row per annulus: ``r_in_px``, ``r_out_px``, ``area_px``, ``null_blobs_per_frame`` (at the
        lowest counted level), ``tail_u`` and ``tail_beta`` (logits), ``tail_rate`` (blobs per frame),
        ``tail_excesses`` (peaks the scale was measured on; 0 where it is taken as exact), ``logit_threshold`` and
        ``probability_threshold`` at the budget (for a blob not among the peaks the tail was fitted to:
        a self-calibration judges each of those against the tail fitted without it); for a tail pooled over
        the field (``Calibration.pool == "field"``) also ``pool_loc`` and ``pool_scale`` (logits: the median and
        robust standard deviation that standardize the annulus); ``meta`` holds the budget, the number of
        null draws and the method, and for a self-calibration ``sources_left_out_xy``: the blobs (x, y), px,
        it took for real sources and left out of its null sample and ``source_fp``, the step-down's level
        (:func:`~sodinn.detect.calibration.calibrate_self`).

    Raises
    ------
    TypeError, ValueError
        If ``fp_budget`` is not a number > 0.
    """
    from astropy.table import Table
    from scipy.special import expit

    z = calibration.logit_thresholds(fp_budget)
    edges = calibration.edges_px
    n_annuli = len(edges) - 1
    excesses = np.zeros(n_annuli, dtype=int) if calibration.tail_excesses is None else calibration.tail_excesses
    table = Table({
        "r_in_px": edges[:-1], "r_out_px": edges[1:], "area_px": calibration.annulus_area_px,
        "null_blobs_per_frame": calibration.counts[:, 0], "tail_u": calibration.tail_u, "tail_beta": calibration.tail_beta,
        "tail_rate": calibration.tail_rate, "tail_excesses": excesses, "logit_threshold": z, "probability_threshold": expit(z),
    })
    if calibration.pool == "field":
        table["pool_loc"], table["pool_scale"] = calibration.pool_loc, calibration.pool_scale
    law = "scale taken as exact" if calibration.tail_excesses is None else "predictive law of its measured scale"
    left_out = ", each tail blob judged without itself" if calibration.own_peaks is not None else ""
    tail = ("one exponential tail for the field, on logits standardized per annulus" if calibration.pool == "field"
            else "an exponential tail per annulus")
    table.meta.update({"fp_budget": float(fp_budget), "n_null": calibration.n_null, "fwhm_px": calibration.fwhm_px,
                       "method": f"sodinn.detect.calibration: null blob counts per annulus, {tail} ({law}){left_out}"})
    if calibration.sources_left_out_xy is not None:  # the self-calibration's step-down
        table.meta["sources_left_out_xy"] = calibration.sources_left_out_xy.tolist()
        table.meta["source_fp"] = calibration.source_fp
    return table


def detection_figure(image: np.ndarray, snr: np.ndarray, candidates: Any, sequence: ADISequence, *,
                     model_name: str, criterion: str, ncomp: int, truth_xy: Sequence[tuple[float, float]] = (),
                     max_numbered: int = 10, statistic: str = "significance") -> Any:
    """Draw the model's detection statistic beside the annular PCA-ADI S/N map, the candidates numbered in both.

    Both panels are on sky axes (:func:`sodinn.pipeline.figures.sky_axes`: offsets from the star in
    arcsec, east left, N/E arrows); the first ``max_numbered`` candidates are circled and numbered
    with their row of the candidate table (1 = its first row); true companions, where known, are
    marked with dashed squares.

    Parameters
    ----------
    image : ndarray, shape (N, N)
        The model's map: its significance (sigma, :func:`sodinn.detect.calibration.significance_sigma`)
        or P(companion) per pixel, as ``statistic`` says.
    snr : ndarray, shape (N, N)
        The S/N map of annular PCA-ADI with ``ncomp`` components.
    candidates : astropy.table.Table
        The candidate table (columns ``x`` and ``y``, px), in the order written to ``candidates.ecsv``.
    sequence : ADISequence
        The data (pixel scale, FWHM in px for the circles).
    model_name : str
        The model's registry name, for the title.
    criterion : str
        What made a candidate (e.g. ``"expected false positives per frame <= 1"``), for the title.
    ncomp : int
        Principal components of the S/N map, for its title.
    truth_xy : sequence of (x, y)
        True companions, px (e.g. injected ones).
    max_numbered : int
        Candidates numbered at most.
    statistic : {"significance", "probability"}
        What ``image`` holds.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, not yet written (:func:`sodinn.pipeline.figures.save_figure`).

    Raises
    ------
    ValueError
        For an unknown ``statistic``.
    """
    if statistic not in ("significance", "probability"):
        msg = f"statistic must be 'significance' or 'probability'; got {statistic!r}"
        raise ValueError(msg)
    fig, axes = new_figure(1, 2, figsize=(11, 4.6))
    numbered = [(float(r["x"]), float(r["y"])) for r in candidates[:max_numbered]]
    shown = f", #1-{len(numbered)} numbered" if len(candidates) > len(numbered) else ""
    common = {"circle_radius_px": sequence.fwhm_px, "candidates_xy": numbered, "truth_xy": list(truth_xy), **sky_axes(sequence)}
    if statistic == "significance":
        finite = image[np.isfinite(image)]
        top = max(5.0, float(np.quantile(finite, 0.999))) if finite.size else 5.0
        # -inf: so many expected false positives that a null frame holds one for certain; shown at the bottom of the
        # scale (NaN, left blank, is outside the evaluated annuli)
        shown_image = np.where(np.isneginf(image), -2.0, np.where(np.isfinite(image), image, np.nan))
        plot_frame(shown_image, ax=axes[0], title=f"SODINN ({model_name}): significance (whole field)\n{len(candidates)} "
                   f"candidate{'' if len(candidates) == 1 else 's'} with {criterion}{shown}", cmap="magma", vmin=-2, vmax=top,
                   label="sigma", **common)
    else:
        plot_frame(image, ax=axes[0], title=f"SODINN ({model_name}): P(companion)\n{len(candidates)} "
                   f"candidate{'' if len(candidates) == 1 else 's'} with {criterion}{shown}", cmap="viridis", vmin=0, vmax=1,
                   label="probability", **common)
    plot_snr_map(snr, ax=axes[1], title=f"annular PCA-ADI, {ncomp} components: S/N map", **common)
    return fig


def _check_truth(truth_xy: Sequence[tuple[float, float]], frame_size: int) -> list[tuple[float, float]]:
    """Return the true companions as (x, y) pairs inside the frame, or raise before any work."""
    if len(truth_xy) == 0:
        return []
    return [(float(x), float(y)) for x, y in v.check_positions_xy(truth_xy, name="truth_xy", frame_size=frame_size)]


def _figure_pca(sequence: ADISequence) -> tuple[int, tuple[float, float] | None]:
    """Return the components and rotation threshold of the S/N map beside the probabilities, before any work.

    Up to 10 components, as many as the data allow; without a threshold when the field rotates too
    little for one.
    """
    delta_rot: tuple[float, float] | None = (0.1, 1.0)
    limit, why = annular_ncomp_limit(sequence.angles_deg, sequence.fwhm_px, sequence.frame_size)
    if limit < 1:
        delta_rot = None
        limit, why = annular_ncomp_limit(sequence.angles_deg, sequence.fwhm_px, sequence.frame_size, delta_rot=None)
    ncomp = min(10, sequence.n_frames - 2, limit)
    if ncomp < 1:
        msg = f"no annular PCA-ADI S/N map can be made of these data ({why}); use more frames"
        raise ValueError(msg)
    return ncomp, delta_rot


def write_ds9_regions(table: Any, path: str | os.PathLike[str], *, radius_px: float) -> Path:
    """Write a DS9 region file of the candidates: one circle per row at ``(x, y)``, labelled with its ``id``.

    Written with astropy ``regions`` in image coordinates, which DS9 counts from 1 (``regions`` adds
    the 1 to the 0-based positions of the table), so the circles fall on the candidates of the FITS
    maps written beside the file.

    Parameters
    ----------
    table : astropy.table.Table
        Candidates with columns ``x``, ``y`` (0-based px) and ``id`` (default: 1, 2, ... in row order).
    path : path-like
        Output file (``.reg``), written atomically.
    radius_px : float
        Circle radius, px (predict uses 1 FWHM).

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    TypeError, ValueError
        If ``radius_px`` is not a finite number > 0, or ``table`` lacks ``x`` or ``y``.
    """
    from regions import CirclePixelRegion, PixCoord, RegionMeta, Regions, RegionVisual

    from sodinn._validation import check_positive

    radius = check_positive(radius_px, name="radius_px")
    missing = [c for c in ("x", "y") if c not in table.colnames]
    if missing:
        msg = f"table lacks the column(s) {', '.join(missing)}; pass a table of find_candidates"
        raise ValueError(msg)
    ids = table["id"] if "id" in table.colnames else range(1, len(table) + 1)
    shapes = [CirclePixelRegion(PixCoord(float(row["x"]), float(row["y"])), radius=radius,
                                meta=RegionMeta({"text": str(int(i)), "tag": ["sodinn"]}),
                                visual=RegionVisual({"color": "green"}))
              for row, i in zip(table, ids)]
    p = Path(path)
    with atomic_path(p) as tmp:
        if shapes:
            Regions(shapes).write(str(tmp), format="ds9", overwrite=True)
        else:
            Path(tmp).write_text("# Region file format: DS9 astropy/regions\n# no candidates\nimage\n")
    return p
