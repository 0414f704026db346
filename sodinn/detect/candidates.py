"""From a probability map to detections: threshold, connected blobs, a table of candidates (SPEC §4, §8).

:func:`find_candidates` gives each blob its pixel position and its place on the sky (separation in
px, arcsec and mas; position angle east of north, :mod:`sodinn.adi.sky`); :func:`measure_candidates`
adds what an observer reports: the annular PCA-ADI S/N, a flux corrected for self-subtraction, and
the contrast to the star in Δmag.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.aperture import aperture_sums
from sodinn.adi.baselines import pca_annular
from sodinn.adi.geometry import frame_center
from sodinn.adi.injection import cube_inject_companions
from sodinn.adi.negfc import NEGFC_METHOD, negfc_simplex
from sodinn.adi.psf import aperture_flux
from sodinn.adi.sequence import ADISequence
from sodinn.adi.sky import PSFScaling, sky_position
from sodinn.adi.snr import snr
from sodinn.config import PROBABILITY_THRESHOLD, PredictConfig
from sodinn.detect.calibration import Calibration, blob_count_level, significance_sigma
from sodinn.detect.probability import ProbabilityMap

__all__ = [
    "ASTROMETRY",
    "ASTROMETRY_METHOD",
    "CONVENTIONS",
    "MEASURED_CONVENTIONS",
    "PHOTOMETRY_METHOD",
    "STATISTIC",
    "binary_map",
    "calibrated_detection_map",
    "find_calibrated_candidates",
    "find_candidates",
    "measure_candidates",
]

logger = logging.getLogger(__name__)

#: How the candidate table's sky columns are defined (written in its metadata)
CONVENTIONS = ("x, y: 0-based pixel position (probability-weighted centroid) on the derotated frame, star at "
               "frame_center; the frame is north-up, east-left when it was derotated with the parallactic angles "
               "plus north_offset_deg; pa_deg: position angle east of north, (theta_deg - 90) mod 360; theta_deg: "
               "counter-clockwise from +x; sep_arcsec, sep_mas from pixel_scale_arcsec")

#: What a calibrated candidate's false-alarm columns mean (written in the table's metadata)
STATISTIC = (
    "expected_fp: expected number of false positives per frame at least as strong as the candidate, from the model's "
    "blob counts on this data set (by default the map's own blobs, known sources left out; or null draws with negated "
    "and permuted parallactic angles), per annulus, spread evenly over the field (sodinn.detect.calibration); "
    "significance_sigma: the Gaussian equivalent of the "
    "probability 1 - exp(-expected_fp) that a frame of null data holds at least one such false positive (no further "
    "look-elsewhere correction needed); peak_logit: the model's largest pre-sigmoid score in the blob."
)

#: The sky columns' definition once :func:`measure_candidates` has refined the positions (table metadata)
MEASURED_CONVENTIONS = CONVENTIONS.replace(
    "(probability-weighted centroid)",
    "(the negative-fake-companion fit where the astrometry column is 'negfc', else the probability-weighted "
    "centroid; x_blob, y_blob keep the centroid)")

#: The astrometry :func:`measure_candidates` can run
ASTROMETRY = ("negfc", "blob")

#: How :func:`measure_candidates` places a candidate (written in the table's metadata)
ASTROMETRY_METHOD = (
    "astrometry = 'negfc': x, y, sep, pa, theta and flux from the " + NEGFC_METHOD + ", started from the "
    "probability-weighted centroid of the blob and the least-squares flux at it, with the candidate table's PCA "
    "components and rotation threshold; astrometry = 'blob': the centroid, where the fit was not run (beyond "
    "max_refined, or astrometry='blob' asked) or did not converge (a non-positive flux, or a move of 1 FWHM or more)"
)

#: How :func:`measure_candidates` measures a candidate (written in the table's metadata)
PHOTOMETRY_METHOD = (
    "flux: the negative-fake-companion flux where astrometry = 'negfc' (see astrometry_method); elsewhere the "
    "least-squares amplitude of the annular PCA-ADI image of a unit companion (one injected at the candidate's "
    "position, processed like the data, so self-subtraction is included) fitted to the annular PCA-ADI frame within "
    "1 FWHM of the candidate; the unit is the flux of the PSF in a 1-FWHM-diameter aperture (SPEC §1). throughput: "
    "the injected companion's aperture flux in the frame over its injected flux, at (x, y). contrast: flux over the "
    "star's flux, the PSF's 1-FWHM-diameter aperture flux times (cube_exposure_s / psf_exposure_s) / "
    "psf_nd_transmission, or star_flux when given. "
    "delta_mag: -2.5 log10(contrast) (NaN for a flux <= 0). snr: Mawet et al. 2014 small-sample S/N at (x, y)."
)


def binary_map(probability: npt.ArrayLike, threshold: float = PROBABILITY_THRESHOLD) -> np.ndarray:
    """Return the binary detection map: the pixels with P(companion) >= ``threshold`` (SPEC §4).

    Parameters
    ----------
    probability : array-like, shape (N, N)
        Probability map (:func:`sodinn.detect.probability.probability_map`).
    threshold : float
        Probability threshold, in (0, 1); default :data:`sodinn.config.PROBABILITY_THRESHOLD`.

    Returns
    -------
    ndarray of bool, shape (N, N)
        True where ``probability >= threshold``.

    Raises
    ------
    TypeError
        If ``threshold`` is not a real number.
    ValueError
        If ``threshold`` is not in (0, 1).

    Examples
    --------
    >>> binary_map(np.array([[0.2, 0.95]]), 0.9)
    array([[False,  True]])
    """
    thr = v.check_real(threshold, name="threshold")
    if not 0 < thr < 1:
        msg = f"threshold must be in (0, 1); got {thr}"
        raise ValueError(msg)
    return np.asarray(probability) >= thr


def find_candidates(
    probability: npt.ArrayLike,
    threshold: float = PROBABILITY_THRESHOLD,
    *,
    pixel_scale_arcsec: float | None = None,
    north_offset_deg: float = 0.0,
):
    """Find the connected blobs (4-connectivity) of the thresholded map, brightest first (SPEC §4, §8).

    Parameters
    ----------
    probability : array-like, shape (N, N)
        Probability map (:func:`sodinn.detect.probability.probability_map`), north-up, east-left when
        the sequence's angles include the instrument's offset (:mod:`sodinn.adi.sky`).
    threshold : float
        Probability threshold, in (0, 1): pixels at or above it form the blobs (:func:`binary_map`).
    pixel_scale_arcsec : float, optional
        Pixel scale, arcsec/px; adds the ``sep_arcsec`` and ``sep_mas`` columns.
    north_offset_deg : float
        The offset, degrees, included in the angles the map was derotated with
        (:attr:`sodinn.adi.sequence.ADISequence.north_offset_deg`): recorded in the table's
        metadata, it does not change the columns.

    Returns
    -------
    astropy.table.Table
        Columns (with units) ``id`` (1, 2, ... in table order), ``x``, ``y`` (probability-weighted
        centroid, px), ``x_peak``, ``y_peak`` (px), ``sep_px``, ``sep_arcsec`` and ``sep_mas`` (when
        the pixel scale is given), ``pa_deg`` (east of north), ``theta_deg`` (counter-clockwise from
        +x), ``peak_probability``, ``mean_probability``, ``area_px``; sorted by decreasing peak, then
        mean probability, then area. ``meta`` holds ``conventions``, ``north_offset_deg``,
        ``pixel_scale_arcsec`` and ``threshold``.

    Raises
    ------
    TypeError
        If ``probability`` is not numeric, or ``threshold``, ``pixel_scale_arcsec`` or
        ``north_offset_deg`` is not a real number.
    ValueError
        If ``probability`` is not a square 2-D image of finite values, ``threshold`` is not in (0, 1),
        ``pixel_scale_arcsec`` is not > 0 or ``north_offset_deg`` is not finite.
    """
    prob = v.check_frame(probability, name="probability")
    mask = binary_map(prob, threshold)
    table = _blob_table(mask, prob, {}, ("peak_probability", "mean_probability", "area_px"), (True, True, True),
                        pixel_scale_arcsec=pixel_scale_arcsec, north_offset_deg=north_offset_deg)
    table.meta["threshold"] = float(v.check_real(threshold, name="threshold"))
    return table


def _blob_table(mask: np.ndarray, prob: np.ndarray, extra: dict[str, tuple[np.ndarray, str, Any]],
                sort_keys: tuple[str, ...], descending: tuple[bool, ...], *, pixel_scale_arcsec: float | None,
                north_offset_deg: float):
    """Tabulate the 4-connected blobs of ``mask`` (positions weighted by ``prob``), sorted by ``sort_keys``.

    ``extra`` maps a column name to ``(map, reduction, unit)``: the value of ``map`` over the blob reduced by
    ``"max"``, ``"min"`` or ``"at_peak"`` (at the blob's highest-``prob`` pixel; ties to the first).
    """
    from astropy import units as u
    from astropy.table import Table
    from scipy import ndimage

    scale = None if pixel_scale_arcsec is None else v.check_positive(pixel_scale_arcsec, name="pixel_scale_arcsec")
    offset = v.check_real(north_offset_deg, name="north_offset_deg")
    labelled = ndimage.label(mask)
    labels: np.ndarray = np.asarray(labelled[0])
    n = int(labelled[1])
    rows = []
    grid = np.indices(prob.shape)
    yy, xx = grid[0], grid[1]
    for i in range(1, n + 1):
        sel: np.ndarray = labels == i
        w = prob[sel]
        wsum = w.sum()
        ww = w / wsum if wsum > 0 else np.full(w.shape, 1 / w.size)
        x = float((xx[sel] * ww).sum())
        y = float((yy[sel] * ww).sum())
        peak = int(np.argmax(w))
        values = []
        for m, how, _ in extra.values():
            vals = m[sel]
            values.append(float(vals.max() if how == "max" else vals.min() if how == "min" else vals[peak]))
        rows.append((x, y, int(xx[sel][peak]), int(yy[sel][peak]), *values, float(w.max()), float(w.mean()),
                     int(sel.sum())))
    names = ("x", "y", "x_peak", "y_peak", *extra, "peak_probability", "mean_probability", "area_px")
    dtypes = [float, float, int, int, *[float] * len(extra), float, float, int]
    table = Table(rows=rows, names=names, dtype=dtypes) if rows else Table(names=names, dtype=dtypes)
    if len(table):
        order = np.lexsort([np.asarray(table[k]) * (-1 if d else 1) for k, d in zip(sort_keys[::-1], descending[::-1],
                                                                                       strict=True)])
        table = table[order]
    pos = sky_position(np.asarray(table["x"], dtype=float), np.asarray(table["y"], dtype=float), prob.shape,
                       pixel_scale_arcsec=scale)
    table.add_column(np.arange(1, len(table) + 1), name="id", index=0)
    at = table.colnames.index("y_peak") + 1
    sky_cols: list[tuple[str, Any, Any]] = [("sep_px", pos.sep_px, u.pix)]
    if scale is not None:
        sky_cols += [("sep_arcsec", pos.sep_arcsec, u.arcsec), ("sep_mas", pos.sep_mas, u.mas)]
    sky_cols += [("pa_deg", pos.pa_deg, u.deg), ("theta_deg", pos.theta_deg, u.deg)]
    for k, (name, values, _) in enumerate(sky_cols):
        table.add_column(np.asarray(values, dtype=float), name=name, index=at + k)
    units = [(c, unit) for c, (_, _, unit) in extra.items() if unit]
    for name, unit in (("x", u.pix), ("y", u.pix), ("x_peak", u.pix), ("y_peak", u.pix), ("area_px", u.pix**2),
                       *((c, unit) for c, _, unit in sky_cols), *units):
        table[name].unit = unit
    table.meta.update({"conventions": CONVENTIONS, "north_offset_deg": offset, "pixel_scale_arcsec": scale})
    return table


def find_calibrated_candidates(
    pmap: ProbabilityMap,
    calibration: Calibration,
    fp_budget: float = PredictConfig.fp_budget,
    *,
    pixel_scale_arcsec: float | None = None,
    north_offset_deg: float = 0.0,
):
    """Find the blobs within a false-alarm budget, most significant first, each with its false-alarm level.

    The pixels whose expected number of false positives per frame ``c`` (:mod:`sodinn.detect.calibration`)
    is at most ``fp_budget`` form 4-connected blobs; a blob's level is the smallest ``c`` it holds. Blobs of
    fewer than ``calibration.npix`` pixels are dropped, as the calibration does not count them.

    Parameters
    ----------
    pmap : ProbabilityMap
        The model's map of the sequence (:func:`sodinn.detect.probability.probability_map`).
    calibration : Calibration
        The model's calibration on the same sequence (:func:`sodinn.detect.calibration.calibrate_nulls`).
    fp_budget : float
        Expected false positives per frame of the whole field (> 0); default
        :attr:`sodinn.config.PredictConfig.fp_budget`.
    pixel_scale_arcsec : float, optional
        Pixel scale, arcsec/px; adds the ``sep_arcsec`` and ``sep_mas`` columns.
    north_offset_deg : float
        The offset included in the angles the map was derotated with (recorded in the metadata).

    Returns
    -------
    astropy.table.Table
        The columns of :func:`find_candidates` and ``expected_fp`` (the blob's expected false positives
        per frame: the smallest budget that lists it, i.e. the worse pixel of its best 4-connected pair
        for ``calibration.npix = 2``, as the calibration counts blobs), ``log10_expected_fp``,
        ``significance_sigma`` (its Gaussian equivalent,
        :func:`sodinn.detect.calibration.significance_sigma`) and ``peak_logit`` (the model's largest
        pre-sigmoid score in the blob); sorted by increasing ``log10_expected_fp``, then decreasing
        ``peak_logit``. ``meta`` adds ``fp_budget`` and ``statistic``, and ``calibration_sources_left_out_xy``
        (x, y in px) and ``calibration_source_fp`` (the step-down's level, expected false positives per frame)
        when the self-calibration's step-down took blobs for real sources
        (:func:`sodinn.detect.calibration.calibrate_self`).

    Raises
    ------
    TypeError
        If ``fp_budget``, ``pixel_scale_arcsec`` or ``north_offset_deg`` is not a real number.
    ValueError
        If ``fp_budget`` is not > 0, or ``pmap`` and ``calibration`` do not cover the same annuli.
    """
    budget = _checked_budget(pmap, calibration, fp_budget)
    log10_c = calibration.log10_expected_false_positives(pmap.logit)
    mask = _within_budget(pmap, log10_c, budget, calibration.npix)
    # a blob's level is the smallest budget that lists it: with npix = 2, the worse pixel of its best 4-connected pair
    # (as the calibration counts a blob from its peak's best neighbour); within a blob, rank by it, then by logit
    counted = -blob_count_level(-log10_c, calibration.npix)
    extra = {"log10_expected_fp": (counted, "min", None), "peak_logit": (pmap.logit, "max", None)}
    table = _blob_table(mask, pmap.probability, extra, ("log10_expected_fp", "peak_logit"), (False, True),
                        pixel_scale_arcsec=pixel_scale_arcsec, north_offset_deg=north_offset_deg)
    log10 = np.asarray(table["log10_expected_fp"], dtype=float)
    at = table.colnames.index("log10_expected_fp")
    table.add_column(np.power(10.0, log10), name="expected_fp", index=at)
    table.add_column(significance_sigma(log10), name="significance_sigma", index=at + 2)
    table.meta.update({"fp_budget": budget, "statistic": STATISTIC})
    if calibration.sources_left_out_xy is not None and len(calibration.sources_left_out_xy):
        table.meta["calibration_sources_left_out_xy"] = np.asarray(calibration.sources_left_out_xy).tolist()
        table.meta["calibration_source_fp"] = calibration.source_fp
    return table


def calibrated_detection_map(pmap: ProbabilityMap, calibration: Calibration, fp_budget: float = PredictConfig.fp_budget) -> np.ndarray:
    """Return the binary detection map at a false-alarm budget: the pixels of the blobs :func:`find_calibrated_candidates` lists.

    Pixels whose expected false positives per frame ``c`` is at most ``fp_budget``, in 4-connected blobs
    of at least ``calibration.npix`` pixels (smaller blobs are not counted by the calibration, so they are
    not detections either).

    Parameters
    ----------
    pmap : ProbabilityMap
        The model's map of the sequence.
    calibration : Calibration
        The model's calibration on the same sequence (:mod:`sodinn.detect.calibration`).
    fp_budget : float
        Expected false positives per frame of the whole field (> 0).

    Returns
    -------
    ndarray of bool, shape (N, N)
        True on detected pixels.

    Raises
    ------
    TypeError
        If ``fp_budget`` is not a real number.
    ValueError
        If ``fp_budget`` is not > 0, or ``pmap`` and ``calibration`` do not cover the same annuli.
    """
    budget = _checked_budget(pmap, calibration, fp_budget)
    return _within_budget(pmap, calibration.log10_expected_false_positives(pmap.logit), budget, calibration.npix)


def _checked_budget(pmap: ProbabilityMap, calibration: Calibration, fp_budget: float) -> float:
    budget = v.check_positive(fp_budget, name="fp_budget")
    if not np.array_equal(np.asarray(pmap.edges_px, dtype=np.float64), calibration.edges_px):
        msg = "the calibration was measured on other annuli than the map's; calibrate the same model on the same data"
        raise ValueError(msg)
    return budget


def _within_budget(pmap: ProbabilityMap, log10_c: np.ndarray, budget: float, npix: int) -> np.ndarray:
    from scipy import ndimage

    mask = pmap.evaluated & (log10_c <= math.log10(budget))
    labels, n = ndimage.label(mask)
    return mask & (np.bincount(labels.ravel(), minlength=n + 1) >= npix)[labels]  # as the calibration counts


def measure_candidates(
    table,
    sequence: ADISequence,
    frame: npt.ArrayLike,
    *,
    ncomp: int,
    delta_rot: float | tuple[float, float] | None = (0.1, 1.0),
    psf_scaling: PSFScaling | None = None,
    max_candidates: int = 25,
    astrometry: str = "negfc",
    max_refined: int = 5,
):
    """Refine each candidate's position and flux, and add its S/N, throughput, contrast and Δmag (SPEC §8).

    Astrometry: a blob's probability-weighted centroid is where the model's confidence peaks, not
    where the source is. The first ``max_refined`` candidates (brightest first) are refined by the
    negative fake companion method (:func:`sodinn.adi.negfc.negfc_simplex`: separation, angle and
    flux fitted jointly, self-subtraction modelled; a few seconds each on 61 x 101 x 101 frames),
    started from the centroid and the least-squares flux below; ``x``, ``y`` and the sky columns then
    hold the fit, ``x_blob``, ``y_blob`` the centroid, and ``astrometry`` says which (``"negfc"`` or
    ``"blob"``: not refined, or the fit did not converge).

    Photometry: the NEGFC flux where refined; otherwise the least-squares amplitude of a unit
    companion's annular PCA-ADI image (a fake companion of known flux injected at the candidate's
    position and processed like the data, so that self-subtraction is included) fitted to ``frame``
    within 1 FWHM of the candidate: ``flux = sum(frame * m) / sum(m * m)``, with ``m`` the difference
    of the two frames per unit of injected flux. The S/N and throughput are measured at ``(x, y)``.

    Parameters
    ----------
    table : astropy.table.Table
        Candidates of :func:`find_candidates` (columns ``x``, ``y``, ``sep_px``, ``theta_deg``).
    sequence : ADISequence
        The data the candidates were found in (cube, angles as derotated, PSF, FWHM in px).
    frame : array-like, shape (N, N)
        Annular PCA-ADI frame of ``sequence`` with ``ncomp`` and ``delta_rot``
        (:func:`sodinn.adi.baselines.pca_annular`), in the cube's units.
    ncomp : int
        Principal components of ``frame`` (and of the NEGFC reductions).
    delta_rot : float, (float, float) or None
        Rotation threshold of ``frame``, FWHM.
    psf_scaling : PSFScaling, optional
        Exposure times and neutral-density transmission of the PSF relative to the cube (default:
        all 1, i.e. the PSF is the star as the cube sees it).
    max_candidates : int
        Measure the first this many rows (brightest first); later rows get NaN (default 25).
    astrometry : {"negfc", "blob"}
        Refine the positions by NEGFC (default) or keep the blob centroids.
    max_refined : int
        Refine at most the first this many measured rows (default 5); the others keep their centroid.

    Returns
    -------
    astropy.table.Table
        A copy of ``table`` whose ``x``, ``y``, ``sep_px``, ``sep_arcsec``, ``sep_mas``, ``pa_deg`` and
        ``theta_deg`` hold the refined positions, with the columns ``x_blob``, ``y_blob`` (px),
        ``astrometry``, ``snr``, ``flux`` (cube units x the normalised PSF), ``throughput``,
        ``contrast`` and ``delta_mag`` (mag); ``meta`` gains ``astrometry_method``,
        ``photometry_method``, ``star_flux`` (cube units in a 1-FWHM-diameter aperture),
        ``psf_scaling``, ``pca_ncomp`` and ``pca_delta_rot``, and its ``conventions`` say what ``x``
        and ``y`` now are.

    Raises
    ------
    TypeError
        If ``sequence`` is not an :class:`~sodinn.adi.sequence.ADISequence`, ``psf_scaling`` not a
        :class:`~sodinn.adi.sky.PSFScaling`, or a number argument is of the wrong kind.
    ValueError
        If ``frame`` does not have the sequence's frame shape, ``table`` lacks a needed column,
        ``max_candidates`` or ``max_refined`` is negative, or ``astrometry`` is unknown.
    """
    if not isinstance(sequence, ADISequence):
        msg = f"sequence must be an ADISequence; got {type(sequence).__name__}"
        raise TypeError(msg)
    scaling = PSFScaling() if psf_scaling is None else psf_scaling
    if not isinstance(scaling, PSFScaling):
        msg = f"psf_scaling must be a PSFScaling; got {type(scaling).__name__}"
        raise TypeError(msg)
    img = v.check_frame(frame, name="frame")
    if img.shape != sequence.cube.shape[1:]:
        msg = f"frame has shape {img.shape} but the sequence's frames are {sequence.cube.shape[1:]}; pass its reduction"
        raise ValueError(msg)
    missing = [c for c in ("x", "y", "sep_px", "theta_deg") if c not in table.colnames]
    if missing:
        msg = f"table lacks the column(s) {', '.join(missing)}; pass the table of find_candidates"
        raise ValueError(msg)
    ncomp = v.check_int(ncomp, name="ncomp", minimum=1)
    limit = v.check_int(max_candidates, name="max_candidates", minimum=0)
    refine = v.check_int(max_refined, name="max_refined", minimum=0) if v.check_choice(
        astrometry, ASTROMETRY, name="astrometry") == "negfc" else 0
    fwhm = sequence.fwhm_px
    star_flux = scaling.star_flux_of(aperture_flux(sequence.psf, fwhm))
    out = table.copy()
    n = len(out)
    cols = {name: np.full(n, np.nan) for name in ("snr", "flux", "throughput", "contrast", "delta_mag")}
    xs, ys = np.asarray(out["x"], dtype=float).copy(), np.asarray(out["y"], dtype=float).copy()
    how = np.full(n, "blob", dtype="<U5")
    psf_n = sequence.psf_normalized
    size = img.shape[-1]
    for i in range(min(n, limit)):
        sep, theta = float(out["sep_px"][i]), float(out["theta_deg"][i])
        if sep <= fwhm / 2 + 1 or sep + fwhm >= size / 2:
            continue  # too close to the star or the edge for an S/N and a fit
        flux, tput = _fit_flux(sequence, img, psf_n, (xs[i], ys[i]), sep, theta, ncomp, delta_rot)
        if i < refine and flux > 0:
            fit = _refine(sequence, psf_n, sep, theta, flux, ncomp, delta_rot)
            if fit is not None:
                xs[i], ys[i], flux, how[i] = fit.x, fit.y, fit.flux, "negfc"
                tput = _fit_flux(sequence, img, psf_n, (xs[i], ys[i]), fit.sep_px, fit.theta_deg, ncomp, delta_rot)[1]
        try:
            cols["snr"][i] = snr(img, (xs[i], ys[i]), fwhm)
        except ValueError:  # too few noise apertures
            pass
        cols["flux"][i], cols["throughput"][i] = flux, tput
        cols["contrast"][i] = flux / star_flux
        cols["delta_mag"][i] = -2.5 * math.log10(flux / star_flux) if flux > 0 else np.nan
    if n > limit:
        logger.info("photometry of the first %d of %d candidates (max_candidates)", limit, n)
    _set_positions(out, xs, ys, size)
    from astropy import units as u

    at = out.colnames.index("y") + 1
    out.add_column(np.asarray(table["x"], dtype=float), name="x_blob", index=at)
    out.add_column(np.asarray(table["y"], dtype=float), name="y_blob", index=at + 1)
    out.add_column(how, name="astrometry", index=at + 2)
    out["x_blob"].unit = out["y_blob"].unit = u.pix
    for name, values in cols.items():
        out[name] = values
    out["delta_mag"].unit = u.mag
    out.meta.update({"conventions": MEASURED_CONVENTIONS, "astrometry_method": ASTROMETRY_METHOD,
                     "photometry_method": PHOTOMETRY_METHOD, "star_flux": float(star_flux),
                     "psf_scaling": scaling.to_dict(), "pca_ncomp": ncomp,
                     "pca_delta_rot": list(delta_rot) if isinstance(delta_rot, tuple) else delta_rot})
    return out


def _refine(sequence: ADISequence, psf_n: np.ndarray, sep: float, theta: float, flux: float, ncomp: int,
            delta_rot: Any) -> Any:
    """Return the NEGFC fit from a candidate's centroid and least-squares flux, or None where it cannot be run or fails."""
    try:
        fit = negfc_simplex(sequence.cube, sequence.angles_deg, psf_n, sequence.fwhm_px, sep_px=sep, theta_deg=theta,
                            flux=flux, ncomp=ncomp, delta_rot=delta_rot)
    except ValueError as err:  # no room for the annulus, or no noise ring: keep the centroid
        logger.info("no NEGFC fit at sep %.1f px, theta %.1f deg: %s", sep, theta, err)
        return None
    return fit if fit.converged else None


def _set_positions(table: Any, xs: np.ndarray, ys: np.ndarray, size: int) -> None:
    """Write the positions ``xs``, ``ys`` and the sky columns derived from them into ``table`` (in place)."""
    pos = sky_position(xs, ys, (size, size), pixel_scale_arcsec=table.meta.get("pixel_scale_arcsec"))
    table["x"][:] = xs
    table["y"][:] = ys
    for name in ("sep_px", "pa_deg", "theta_deg"):
        table[name][:] = np.asarray(getattr(pos, name), dtype=float)
    for name in ("sep_arcsec", "sep_mas"):
        if name in table.colnames:
            table[name][:] = np.asarray(getattr(pos, name), dtype=float)


def _fit_flux(sequence: ADISequence, frame: np.ndarray, psf_n: np.ndarray, xy: tuple[float, float], sep: float,
              theta: float, ncomp: int, delta_rot: Any) -> tuple[float, float]:
    """Return the least-squares flux and the throughput of a companion at ``xy`` (see :func:`measure_candidates`)."""
    fwhm = sequence.fwhm_px
    centre = np.array([xy], dtype=np.float64)
    ap = float(aperture_sums(frame, centre, fwhm / 2)[0])
    cy, cx = frame_center(frame.shape)
    yy, xx = np.indices(frame.shape)
    r = np.hypot(xx - cx, yy - cy)
    ring = frame[(r >= sep - fwhm / 2) & (r < sep + fwhm / 2)]
    noise = float(np.std(ring)) * math.sqrt(math.pi) * fwhm / 2 if ring.size > 1 else 0.0
    f0 = max(2.0 * abs(ap), 5.0 * noise, 1e-12)
    injected = cube_inject_companions(sequence.cube, psf_n, sequence.angles_deg, sep_px=sep, theta_deg=theta, flux=f0)
    model = (pca_annular(injected, sequence.angles_deg, fwhm, ncomp=ncomp, delta_rot=delta_rot) - frame) / f0
    disc = np.hypot(xx - xy[0], yy - xy[1]) <= fwhm
    m = model[disc]
    denom = float(np.dot(m, m))
    flux = float(np.dot(frame[disc], m) / denom) if denom > 0 else float("nan")
    return flux, float(aperture_sums(model, centre, fwhm / 2)[0])
