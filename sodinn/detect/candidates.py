"""From a probability map to detections: threshold, connected blobs, a table of candidates (SPEC §4)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.geometry import frame_center
from sodinn.config import PredictConfig

__all__ = ["binary_map", "find_candidates"]


def binary_map(probability: npt.ArrayLike, threshold: float = PredictConfig.threshold) -> np.ndarray:
    """Return the binary detection map: the pixels with P(companion) >= ``threshold`` (SPEC §4).

    Parameters
    ----------
    probability : array-like, shape (N, N)
        Probability map (:func:`sodinn.detect.probability.probability_map`).
    threshold : float
        Probability threshold, in (0, 1); default ``PredictConfig.threshold``.

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
    probability: npt.ArrayLike, threshold: float = PredictConfig.threshold, *, pixel_scale_arcsec: float | None = None
):
    """Find the connected blobs (4-connectivity) of the thresholded map, brightest first (SPEC §4).

    Parameters
    ----------
    probability : array-like, shape (N, N)
        Probability map (:func:`sodinn.detect.probability.probability_map`).
    threshold : float
        Probability threshold, in (0, 1): pixels at or above it form the blobs (:func:`binary_map`).
    pixel_scale_arcsec : float, optional
        Pixel scale, arcsec/px; adds the ``sep_arcsec`` column.

    Returns
    -------
    astropy.table.Table
        Columns ``x``, ``y`` (probability-weighted centroid, px), ``x_peak``, ``y_peak``, ``sep_px``,
        ``sep_arcsec`` (when the pixel scale is given), ``pa_deg`` (counter-clockwise from +x),
        ``peak_probability``, ``mean_probability``, ``area_px``; sorted by decreasing peak, then mean
        probability, then area.

    Raises
    ------
    TypeError
        If ``probability`` is not numeric, or ``threshold`` or ``pixel_scale_arcsec`` is not a real number.
    ValueError
        If ``probability`` is not a square 2-D image of finite values, ``threshold`` is not in (0, 1), or
        ``pixel_scale_arcsec`` is not > 0.
    """
    from astropy.table import Table
    from scipy import ndimage

    prob = v.check_frame(probability, name="probability")
    mask = binary_map(prob, threshold)
    labelled = ndimage.label(mask)
    labels: np.ndarray = np.asarray(labelled[0])
    n = int(labelled[1])
    cy, cx = frame_center(prob.shape)
    rows = []
    grid = np.indices(prob.shape)
    yy, xx = grid[0], grid[1]
    for i in range(1, n + 1):
        sel: np.ndarray = labels == i
        w = prob[sel]
        x = float((xx[sel] * w).sum() / w.sum())
        y = float((yy[sel] * w).sum() / w.sum())
        peak = int(np.argmax(w))
        rows.append((x, y, int(xx[sel][peak]), int(yy[sel][peak]), float(np.hypot(x - cx, y - cy)),
                     float(np.degrees(np.arctan2(y - cy, x - cx)) % 360), float(w.max()), float(w.mean()), int(sel.sum())))
    names = ("x", "y", "x_peak", "y_peak", "sep_px", "pa_deg", "peak_probability", "mean_probability", "area_px")
    table = Table(rows=rows, names=names) if rows else Table(names=names, dtype=[float] * 2 + [int] * 2 + [float] * 4 + [int])
    if pixel_scale_arcsec is not None:
        table["sep_arcsec"] = table["sep_px"] * v.check_positive(pixel_scale_arcsec, name="pixel_scale_arcsec")
    if len(table):
        table.sort(["peak_probability", "mean_probability", "area_px"], reverse=True)
    return table
