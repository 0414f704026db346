"""Blob scoring of detection maps, the Exoplanet Imaging Data Challenge's rule (SPEC §5).

A map is thresholded (strictly above the threshold, as ``photutils.segmentation.detect_sources``
does), its pixels are grouped into 4-connected blobs of at least ``npix`` pixels, and each blob is
judged against the injected companions:

- a blob larger than ``max_blob_fact`` resolution elements (a disc of radius 1 FWHM) counts as
  ``area / disc area`` false positives, whatever it overlaps;
- otherwise, a blob whose overlap with the 1-FWHM disc around an injection exceeds
  ``overlap_threshold`` of the smaller of the two areas is a true positive;
- every other blob is one false positive.

These are the rules, and the order of the tests, of vip-hci's ``compute_binary_map`` (the tests
compare the two on the same maps and thresholds). Two additions, both off by default: blobs that
match a *known* real source (e.g. beta Pic b) by the same overlap rule are ignored, and a region
mask restricts the map (a "local" ROC counts only what lies in its separation band).

References: Cantalloube et al. 2020, "Exoplanet imaging data challenge: benchmarking the various
image processing methods for exoplanet detection", Proc. SPIE 11448, 114485A.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.geometry import frame_center

__all__ = ["BlobScore", "disc_mask", "score_blobs", "score_thresholds"]

_FOUR_CONNECTED = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])


@dataclass(frozen=True)
class BlobScore:
    """The judgement of one thresholded map.

    Attributes
    ----------
    true_blobs : int
        Blobs matched to an injection (vip-hci's "detections"; two blobs on one injection count twice).
    false_positives : float
        False positives (a too-large blob adds its area in resolution elements, so not always an integer;
        vip-hci rounds the total).
    detected : ndarray of bool, shape (n_injections,)
        Whether each injection has at least one matching blob.
    ignored_blobs : int
        Blobs matched to a known source.

    See Also
    --------
    score_blobs : Make a score.
    """

    true_blobs: int
    false_positives: float
    detected: np.ndarray
    ignored_blobs: int = 0


def disc_mask(shape: tuple[int, int], x: float, y: float, radius: float) -> np.ndarray:
    """Return the pixels whose centre lies strictly within ``radius`` of ``(x, y)``.

    Parameters
    ----------
    shape : (int, int)
        Shape ``(ny, nx)`` of the frame.
    x, y : float
        Centre of the disc, px (pixel centres at integer coordinates).
    radius : float
        Radius of the disc, px.

    Returns
    -------
    ndarray of bool, shape (ny, nx)
        True inside the disc.

    Examples
    --------
    >>> disc_mask((3, 3), 1.0, 1.0, 1.2).astype(int)
    array([[0, 1, 0],
           [1, 1, 1],
           [0, 1, 0]])
    """
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - y) ** 2 + (xx - x) ** 2 < radius**2


def _positions(xy: npt.ArrayLike | None, name: str, frame_size: int) -> np.ndarray:
    arr = np.asarray(xy if xy is not None else [], dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2))
    arr = arr.reshape(-1, 2) if arr.ndim == 1 else arr
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.all(np.isfinite(arr)):
        msg = f"{name} must be (x, y) positions, shape (n, 2), finite; got shape {arr.shape}"
        raise ValueError(msg)
    return v.check_positions_xy(arr, name=name, frame_size=frame_size)


def score_blobs(
    frame: npt.ArrayLike,
    threshold: float,
    injections_xy: npt.ArrayLike | None,
    fwhm_px: float,
    *,
    npix: int = 2,
    overlap_threshold: float = 0.7,
    max_blob_fact: float = 2.0,
    region: np.ndarray | None = None,
    known_sources_xy: Sequence[tuple[float, float]] | npt.ArrayLike = (),
) -> BlobScore:
    """Threshold a detection map and judge its blobs by the data challenge's rule (SPEC §5, see the module docstring).

    Parameters
    ----------
    frame : ndarray, shape (N, N)
        Detection map (S/N map, probability map, ...).
    threshold : float
        Pixels strictly above it are detections.
    injections_xy : array-like, shape (n, 2)
        Positions (x, y) of the injected companions; empty for none.
    fwhm_px : float
        Radius of the disc around each injection and of the resolution element, px.
    npix : int
        Smallest blob kept, in pixels (the data challenge used 2).
    overlap_threshold : float
        A blob matches a disc when their overlap exceeds this fraction of the smaller of the two areas.
    max_blob_fact : float
        Largest blob, in resolution elements, still judged by overlap.
    region : ndarray of bool, optional
        Only these pixels of the map are thresholded.
    known_sources_xy : array-like, shape (m, 2)
        Real sources; blobs matching them are neither true nor false positives.

    Returns
    -------
    BlobScore
        True blobs, false positives, which injections were detected, ignored blobs.

    Raises
    ------
    TypeError
        If ``frame`` is not numeric, or ``threshold``, ``fwhm_px`` or ``npix`` is of the wrong kind.
    ValueError
        If ``frame`` is not a square 2-D image of finite values, ``fwhm_px`` is implausible for the frame,
        ``threshold`` is not finite, ``npix < 1``, a position array is not finite ``(n, 2)``, or ``region``
        does not have the frame's shape.

    Notes
    -----
    The rule, and the order of its tests, of the Exoplanet Imaging Data Challenge [1]_ as vip-hci's
    ``compute_binary_map`` implements it.

    References
    ----------
    .. [1] Cantalloube et al. 2020, "Exoplanet imaging data challenge: benchmarking the various image
       processing methods for exoplanet detection", Proc. SPIE 11448, 114485A.

    Examples
    --------
    >>> frame = np.zeros((21, 21)); frame[10, 15] = frame[10, 16] = 5.0
    >>> score_blobs(frame, 1.0, [(15.5, 10.0)], 2.0).true_blobs
    1
    """
    from scipy import ndimage

    arr = v.check_frame(frame, name="frame")
    fwhm = v.check_fwhm(fwhm_px, frame_size=arr.shape[0])
    thr = v.check_real(threshold, name="threshold")
    npix = v.check_int(npix, name="npix", minimum=1)
    injections = _positions(injections_xy, "injections_xy", arr.shape[0])
    known = _positions(known_sources_xy, "known_sources_xy", arr.shape[0])
    above = arr > thr
    if region is not None:
        if np.shape(region) != arr.shape:
            msg = f"region must have the frame's shape {arr.shape}; got {np.shape(region)}"
            raise ValueError(msg)
        above &= np.asarray(region, dtype=bool)
    labels, n = ndimage.label(above, structure=_FOUR_CONNECTED)
    detected = np.zeros(len(injections), dtype=bool)
    if n == 0:
        return BlobScore(0, 0.0, detected)
    cy, cx = frame_center(arr.shape)
    element = int(disc_mask(arr.shape, cx, cy, fwhm).sum())
    discs = [disc_mask(arr.shape, x, y, fwhm) for x, y in injections]
    known_discs = [disc_mask(arr.shape, x, y, fwhm) for x, y in known]
    true_blobs = ignored = 0
    false_pos = 0.0
    for index, window in enumerate(ndimage.find_objects(labels), start=1):
        if window is None:
            continue
        blob = np.zeros(arr.shape, dtype=bool)
        blob[window] = labels[window] == index
        area = int(blob.sum())
        if area < npix:
            continue
        if area > max_blob_fact * element:
            false_pos += area / element
            continue
        if any(_overlap(blob, area, d) > overlap_threshold for d in known_discs):
            ignored += 1
            continue
        for j, disc in enumerate(discs):
            if _overlap(blob, area, disc) > overlap_threshold:
                true_blobs += 1
                detected[j] = True
                break
        else:
            false_pos += 1.0
    return BlobScore(true_blobs, false_pos, detected, ignored)


def _overlap(blob: np.ndarray, area: int, disc: np.ndarray) -> float:
    smaller = min(area, int(disc.sum()))
    return float((blob & disc).sum()) / smaller if smaller else 0.0


def score_thresholds(frame: npt.ArrayLike, thresholds: Sequence[float], injections_xy: npt.ArrayLike | None, fwhm_px: float,
                     **kwargs) -> list[BlobScore]:
    """Score one detection map at each of several thresholds with :func:`score_blobs`.

    Parameters
    ----------
    frame : ndarray, shape (N, N)
        Detection map (S/N map, probability map, ...).
    thresholds : sequence of float
        The thresholds, in the map's units.
    injections_xy : array-like, shape (n, 2)
        Positions (x, y) of the injected companions, px; empty for none.
    fwhm_px : float
        Radius of the disc around each injection and of the resolution element, px.
    **kwargs
        Keyword arguments of :func:`score_blobs` (``npix``, ``overlap_threshold``, ``max_blob_fact``,
        ``region``, ``known_sources_xy``).

    Returns
    -------
    list of BlobScore
        One per threshold, in order.

    Raises
    ------
    TypeError, ValueError
        As :func:`score_blobs`.
    """
    return [score_blobs(frame, t, injections_xy, fwhm_px, **kwargs) for t in thresholds]
