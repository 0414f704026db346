"""Calibrated detection levels: what a model's score means in false positives per frame, on these data.

A SODINN probability is a classifier score; how often speckles reach 0.9 depends on the data set (the
2018 SODINN and its first versions here put dozens of P >= 0.9 blobs on speckles). To give a level a
meaning that travels between data sets, the model's scores under the null hypothesis are measured on
the data themselves: every pixel's sample is built from the real cube with the residuals derotated by
*negated* parallactic angles (the C- rule of SPEC §3: speckles keep their statistics, a real companion is
smeared out) and, for more null draws, by randomly permuted angles (:func:`~sodinn.detect.probability.null_angle_sets`).

What is counted is what an observer counts: **blobs**. In each null map, thresholded at a grid of
logits, the 4-connected blobs of at least ``npix`` pixels (the rule of :mod:`sodinn.detect.scoring`)
of each annulus of the model's partition are counted, each annulus alone, as the calibrated map
thresholds it. ``N_a(z)``, the mean number of null blobs per frame in annulus ``a`` at or above logit
``z``, is read from these counts where at least ``tail_count`` null blobs lie above ``z``; beyond, from
an exponential fitted to the ``tail_count`` highest null peaks of the annulus (peaks over threshold;
the Hill estimator of its scale). A pixel of
logit ``z`` in annulus ``a`` then gets the **expected false positives per frame**

    ``c = N_a(z) * A / A_a``

(``A_a`` the evaluated area of annulus ``a``, ``A`` of all annuli): the number of false blobs the whole
field would hold if every annulus were thresholded at the same density of null blobs. Thresholding
``c <= F`` in every annulus gives ``sum_a N_a = F`` false positives per frame on average, spread evenly
over the field, whatever the data set. Its **significance** is the Gaussian equivalent of the
probability that a frame of null data holds at least one blob as unlikely, ``1 - exp(-c)`` (Poisson):
a false-alarm probability for the whole field, so it needs no correction for the number of places
looked at. The model's logit, not its probability, is the score (:meth:`TrainedModel.predict_logits`):
it does not saturate, so the levels of the strongest candidates stay distinct.

The ROC harness (:mod:`sodinn.evaluate.roc`) counts the false positives of calibrated maps on
injected copies and prints them against ``F``.

References: Cantero et al. 2023, A&A 680, A86 (NA-SODINN; why calibrated, per-regime levels); Davison &
Smith 1990, JRSS B 52, 393 (peaks over threshold); Hill 1975, Ann. Stat. 3, 1163.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.geometry import polar_coordinates
from sodinn.adi.sequence import ADISequence
from sodinn.config import PredictConfig
from sodinn.detect.probability import UNEVALUATED_LOGIT, ProbabilityMap, probability_map
from sodinn.learn.artifact import TrainedModel

__all__ = ["Calibration", "calibrate", "calibrate_nulls", "calibrate_self", "significance_sigma"]

_FOUR_CONNECTED = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])
_LN10 = math.log(10.0)
_FLOOR = -300.0  # the score of pixels outside the calibrated annuli


def significance_sigma(log10_fp_per_frame: npt.ArrayLike) -> np.ndarray:
    """Return the Gaussian significance of an expected number of false positives per frame.

    The probability that a frame of null data holds at least one false positive at least as strong is
    ``p = 1 - exp(-c)`` (Poisson); the significance is the ``s`` with ``P(X > s) = p`` for a standard
    normal ``X``, computed from ``log p`` so that it does not saturate for tiny ``c``.

    Parameters
    ----------
    log10_fp_per_frame : array-like
        ``log10(c)``, ``c`` the expected false positives per frame.

    Returns
    -------
    ndarray of float64
        The significance, sigma; negative when ``c`` is large (p > 1/2), -inf for ``c = inf``.

    Examples
    --------
    >>> round(float(significance_sigma(math.log10(-math.log1p(-0.00135)))), 3)  # p = 0.00135: 3 sigma
    3.0
    """
    from scipy.special import ndtri_exp

    lc = np.asarray(log10_fp_per_frame, dtype=np.float64)
    c = np.power(10.0, np.minimum(lc, 300.0))
    with np.errstate(divide="ignore"):
        log_p = np.where(lc < -8, lc * _LN10 - c / 2, np.log(-np.expm1(-c)))  # 1 - e^-c = c (1 - c/2 + ...) for tiny c
    return -ndtri_exp(log_p)


@dataclass(frozen=True)
class Calibration:
    """Null blob counts of a model on one data set, per annulus (see the module docstring).

    Made by :func:`calibrate` or :func:`calibrate_nulls`.

    Attributes
    ----------
    edges_px : ndarray, shape (n_annuli + 1,)
        Annulus boundaries of the model's partition, px from the star.
    levels : ndarray, shape (n_levels,)
        Increasing logits at which the null blobs were counted.
    counts : ndarray, shape (n_annuli, n_levels)
        ``N_a`` at each level: null blobs per frame whose peak lies in annulus ``a``, at or above the level
        (made non-increasing with the level).
    tail_u, tail_beta, tail_rate : ndarray, shape (n_annuli,)
        Exponential tail of each annulus, in logits and blobs per frame:
        ``N_a(z) = tail_rate * exp(-(z - tail_u) / tail_beta)`` for ``z >= tail_u``.
    annulus_area_px : ndarray of int, shape (n_annuli,)
        Evaluated pixels of each annulus (``A_a``).
    n_null : int
        Null draws the counts come from.
    fwhm_px : float
        FWHM of the data, px.
    npix : int
        Smallest blob counted, pixels.
    """

    edges_px: np.ndarray
    levels: np.ndarray
    counts: np.ndarray
    tail_u: np.ndarray
    tail_beta: np.ndarray
    tail_rate: np.ndarray
    annulus_area_px: np.ndarray
    n_null: int
    fwhm_px: float
    npix: int = 2

    @property
    def area_px(self) -> int:
        """Evaluated pixels of all annuli together (``A``)."""
        return int(self.annulus_area_px.sum())

    def log10_blob_rate(self, annulus: int, logit: npt.ArrayLike) -> np.ndarray:
        """Return ``log10 N_a(z)``: null blobs per frame in one annulus at or above each logit.

        Parameters
        ----------
        annulus : int
            Index of the annulus, ``0 <= annulus < n_annuli``.
        logit : array-like
            Logits ``z``, any shape.

        Returns
        -------
        ndarray of float64
            ``log10 N_a(z)``, the shape of ``logit``; non-increasing in ``z``, -inf for an annulus without
            any null blob.
        """
        z = np.asarray(logit, dtype=np.float64)
        u, beta, rate = self.tail_u[annulus], self.tail_beta[annulus], self.tail_rate[annulus]
        if rate <= 0:
            return np.full(z.shape, -np.inf)
        with np.errstate(divide="ignore"):
            log_counts = np.log10(self.counts[annulus])
        below = np.interp(z, self.levels, log_counts)  # constant beyond the grid's ends
        tail = math.log10(rate) - (z - u) / (beta * _LN10)
        return np.where(z >= u, tail, np.maximum(below, math.log10(rate)))

    def log10_expected_false_positives(self, logit: npt.ArrayLike) -> np.ndarray:
        """Return ``log10 c``: the expected false positives per frame at each pixel's logit.

        Parameters
        ----------
        logit : array-like, shape (N, N)
            Logit map of the data set the calibration was measured on (:attr:`ProbabilityMap.logit`).

        Returns
        -------
        ndarray of float64, shape (N, N)
            ``log10 c``; +inf outside the calibrated annuli.

        Raises
        ------
        TypeError
            If ``logit`` is not numeric.
        ValueError
            If ``logit`` is not a square 2-D image of finite values.
        """
        z = v.check_frame(logit, name="logit")
        r = polar_coordinates(z.shape)[0]
        out = np.full(z.shape, np.inf)
        total = self.area_px
        for a in range(len(self.tail_u)):
            sel = (r >= self.edges_px[a]) & (r < self.edges_px[a + 1])
            if self.annulus_area_px[a] > 0:
                out[sel] = self.log10_blob_rate(a, z[sel]) + math.log10(total / self.annulus_area_px[a])
        return out

    def expected_false_positives(self, logit: npt.ArrayLike) -> np.ndarray:
        """Return ``c``, the expected false positives per frame at each pixel's logit (module docstring).

        Parameters
        ----------
        logit : array-like, shape (N, N)
            Logit map of the data set the calibration was measured on.

        Returns
        -------
        ndarray of float64, shape (N, N)
            ``c``, false positives per frame; inf outside the calibrated annuli (0 only below float64's range:
            use :meth:`log10_expected_false_positives` to rank).

        Raises
        ------
        TypeError
            If ``logit`` is not numeric.
        ValueError
            If ``logit`` is not a square 2-D image of finite values.
        """
        return np.power(10.0, self.log10_expected_false_positives(logit))

    def score_map(self, logit: npt.ArrayLike) -> np.ndarray:
        """Return ``-log10 c``, the calibrated detection map for blob scoring (it does not saturate).

        Thresholding it strictly above ``-log10(F)`` keeps the pixels with ``c < F``.

        Parameters
        ----------
        logit : array-like, shape (N, N)
            Logit map of the data set the calibration was measured on.

        Returns
        -------
        ndarray of float64, shape (N, N)
            ``-log10 c``; -300 outside the calibrated annuli.

        Raises
        ------
        TypeError
            If ``logit`` is not numeric.
        ValueError
            If ``logit`` is not a square 2-D image of finite values.
        """
        return np.maximum(-self.log10_expected_false_positives(logit), _FLOOR)

    def logit_thresholds(self, fp_per_frame: float) -> np.ndarray:
        """Return the logit threshold of each annulus at ``fp_per_frame`` expected false positives per frame.

        The smallest logit ``z`` of each annulus with ``c(z) <= F``.

        Parameters
        ----------
        fp_per_frame : float
            Target ``F``, expected false positives per frame over the whole evaluated field (> 0).

        Returns
        -------
        ndarray, shape (n_annuli,)
            Logit threshold of each annulus (+inf for an annulus without evaluated pixels).

        Raises
        ------
        TypeError
            If ``fp_per_frame`` is not a real number.
        ValueError
            If ``fp_per_frame`` is not finite and > 0.
        """
        target = math.log10(v.check_positive(fp_per_frame, name="fp_per_frame"))
        out = np.full(len(self.tail_u), np.inf)
        for a in range(len(self.tail_u)):
            if self.annulus_area_px[a] == 0:
                continue
            goal = target - math.log10(self.area_px / self.annulus_area_px[a])  # log10 N_a wanted
            if self.tail_rate[a] <= 0:
                out[a] = self.levels[0]
                continue
            u, beta, rate = self.tail_u[a], self.tail_beta[a], self.tail_rate[a]
            if goal <= math.log10(rate):
                out[a] = u + (math.log10(rate) - goal) * beta * _LN10
                continue
            grid = np.linspace(self.levels[0], u, 2000)
            ok = np.nonzero(self.log10_blob_rate(a, grid) <= goal)[0]
            out[a] = grid[ok[0]] if ok.size else u
        return out


def _blob_peaks(null: np.ndarray, evaluated: np.ndarray, level: float, npix: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the (row, col) of the peak of every 4-connected blob of ``null >= level`` with ``npix`` pixels or more."""
    from scipy import ndimage

    labels, n = ndimage.label((null >= level) & evaluated, structure=_FOUR_CONNECTED)
    if n == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    flat = np.full(n + 1, -np.inf)
    idx = labels.ravel()
    values = null.ravel()
    np.maximum.at(flat, idx, values)
    big = np.bincount(idx, minlength=n + 1) >= npix
    is_peak = (idx > 0) & (values == flat[idx]) & big[idx]
    first = np.unique(idx[is_peak], return_index=True)[1]
    where = np.nonzero(is_peak)[0][first]
    return np.unravel_index(where, null.shape)


def calibrate_nulls(pmap: ProbabilityMap, fwhm_px: float, *, tail_count: int = 20, n_levels: int = 128,
                    npix: int = 2) -> Calibration:
    """Measure a calibration from the null logit maps of a :class:`ProbabilityMap` (module docstring).

    Parameters
    ----------
    pmap : ProbabilityMap
        Made by :func:`~sodinn.detect.probability.probability_map` with ``n_null >= 1``.
    fwhm_px : float
        FWHM of the data, px (recorded).
    tail_count : int
        The exponential tail of each annulus is fitted to its this many highest null peaks (pooled over
        the draws), and replaces the counts above the lowest of them; >= 3.
    n_levels : int
        Logits at which the null blobs are counted, from the median null logit to the highest; >= 8.
    npix : int
        Smallest blob counted, pixels: 1 or 2 (2, the data challenge's rule and the ROC's default,
        :class:`sodinn.config.InjectionConfig`). Candidates follow the same rule.

    Returns
    -------
    Calibration
        The null blob counts and fitted tail of each annulus of the model's partition.

    Raises
    ------
    ValueError
        If ``pmap`` has no null draws, or ``tail_count``/``n_levels`` is too small.
    TypeError
        If ``tail_count`` or ``n_levels`` is not an integer.
    """
    if pmap.null_logit is None or len(pmap.null_logit) == 0:
        msg = "the probability map has no null draws; make it with probability_map(..., n_null=4)"
        raise ValueError(msg)
    tail_count = v.check_int(tail_count, name="tail_count", minimum=3)
    n_levels = v.check_int(n_levels, name="n_levels", minimum=8)
    npix = v.check_int(npix, name="npix", minimum=1)
    if npix > 2:
        msg = f"npix must be 1 or 2; got {npix}"
        raise ValueError(msg)
    fwhm = v.check_positive(fwhm_px, name="fwhm_px")
    nulls = np.asarray(pmap.null_logit, dtype=np.float64)
    evaluated = pmap.evaluated
    edges = np.asarray(pmap.edges_px, dtype=np.float64)
    n_annuli, n_null = len(edges) - 1, len(nulls)
    r = polar_coordinates(evaluated.shape)[0]
    annulus_of = np.searchsorted(edges, r, side="right") - 1  # annulus a holds edges[a] <= r < edges[a + 1]
    inside = evaluated & (annulus_of >= 0) & (annulus_of < n_annuli)
    areas = np.bincount(annulus_of[inside], minlength=n_annuli)[:n_annuli]
    values = nulls[:, inside]
    values = values[values > UNEVALUATED_LOGIT / 2]
    levels = np.linspace(float(np.median(values)), float(values.max()), n_levels)
    counts = np.zeros((n_annuli, n_levels))
    us, betas, rates = np.zeros(n_annuli), np.ones(n_annuli), np.zeros(n_annuli)
    available = nulls > UNEVALUATED_LOGIT / 2  # not on a known source's arc (probability_map)
    for a in range(n_annuli):
        own = inside & (annulus_of == a)  # each annulus counted alone, as it is thresholded alone
        if not own.any():
            continue
        rows, cols = np.nonzero(own)
        box = np.s_[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        heights = []
        n_eff = 0.0  # null frames' worth of this annulus: the arcs of known sources are left out
        for null, ok in zip(nulls, available, strict=True):
            own_box = (own & ok)[box]
            n_eff += own_box.sum() / own.sum()
            crop = null[box]
            for j, level in enumerate(levels):
                counts[a, j] += len(_blob_peaks(crop, own_box, level, npix)[0])
            heights.append(_peak_levels(crop, own_box, npix)[2])
        counts[a] /= max(n_eff, 1e-12)
        h = np.sort(np.concatenate(heights))[::-1]
        h = h[np.isfinite(h)]  # a lone pixel (no neighbour left) never makes a blob of npix = 2
        if h.size < 2:
            continue
        k = min(tail_count, max(2, h.size // 2))  # the upper half at most: a tail, not the bulk of the peaks
        us[a] = h[k - 1]
        excess = h[: k - 1] - h[k - 1]
        betas[a] = float(excess.mean()) if excess.size and excess.mean() > 0 else 1.0
        rates[a] = k / n_eff
    counts = np.maximum.accumulate(counts[:, ::-1], axis=1)[:, ::-1]  # non-increasing with the level
    return Calibration(edges_px=edges, levels=levels, counts=counts, tail_u=us, tail_beta=betas, tail_rate=rates,
                       annulus_area_px=areas, n_null=n_null, fwhm_px=fwhm, npix=npix)


def _peak_levels(null: np.ndarray, inside: np.ndarray, npix: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the (row, col) of the local maxima (4-neighbourhood) of a null map and the level at which each is counted.

    A blob is counted once it has ``npix`` pixels: a peak alone (``npix = 1``) from its own value, with a
    second pixel (``npix = 2``) from its highest 4-neighbour's.
    """
    from scipy import ndimage

    masked = np.where(inside, null, -np.inf)
    top = ndimage.maximum_filter(masked, footprint=_FOUR_CONNECTED, mode="constant", cval=-np.inf)
    rows, cols = np.nonzero(inside & (masked == top))
    if npix <= 1:
        return rows, cols, null[rows, cols]
    ring = _FOUR_CONNECTED.copy()
    ring[1, 1] = 0
    second = ndimage.maximum_filter(masked, footprint=ring, mode="constant", cval=-np.inf)
    return rows, cols, second[rows, cols]


def calibrate_self(pmap: ProbabilityMap, fwhm_px: float, *, known_sources_xy: npt.ArrayLike = (), mask_radius_fwhm: float = 2.0,
                   tail_count: int = 20, npix: int = 2) -> Calibration:
    """Calibrate a map on itself: its own blobs, known sources left out, are the null sample (the default).

    The S/N of a PCA-ADI frame compares a pixel with the noise of its own annulus; this does the same
    with blobs. The map's own blobs are exchangeable with the false positives it can hold, since they
    are those speckles; a real unknown companion counts in its own annulus' tail, which makes it
    slightly less significant (conservative, as for the S/N). Null draws of the data (negated or
    permuted angles, :func:`calibrate_nulls`) are not exchangeable with the map for a model trained on
    negated-angle negatives: measured on NACO, the negated draw holds 6x fewer blobs above logit 2 than
    the map, permuted draws 2x more (README, "What a candidate's false-alarm level means").

    Parameters
    ----------
    pmap : ProbabilityMap
        The model's map of the data (:func:`~sodinn.detect.probability.probability_map`).
    fwhm_px : float
        FWHM of the data, px.
    known_sources_xy : array-like, shape (n, 2)
        Known real sources (x, y), px: left out of the null sample within ``mask_radius_fwhm``.
    mask_radius_fwhm : float
        Radius of the discs left out around known sources, FWHM (> 0).
    tail_count : int
        Null peaks per annulus the exponential tail is fitted to (:func:`calibrate_nulls`).
    npix : int
        Smallest blob counted, pixels (1 or 2).

    Returns
    -------
    Calibration
        With ``n_null = 1``: the map itself.

    Raises
    ------
    TypeError, ValueError
        For bad ``fwhm_px``, ``mask_radius_fwhm``, ``tail_count`` or ``npix``, or positions that are not (x, y) pairs.
    """
    fwhm = v.check_positive(fwhm_px, name="fwhm_px")
    radius = v.check_positive(mask_radius_fwhm, name="mask_radius_fwhm") * fwhm
    null = np.where(pmap.evaluated, pmap.logit, UNEVALUATED_LOGIT).astype(np.float64)
    sources = np.asarray(known_sources_xy, dtype=np.float64).reshape(-1, 2)
    if len(sources):
        sources = v.check_positions_xy(sources, name="known_sources_xy")
        yy, xx = np.indices(null.shape)
        for x, y in sources:
            null[np.hypot(xx - x, yy - y) <= radius] = UNEVALUATED_LOGIT
    own = ProbabilityMap(logit=pmap.logit, probability=pmap.probability, evaluated=pmap.evaluated, edges_px=pmap.edges_px,
                         ks=pmap.ks, null_logit=null[None])
    return calibrate_nulls(own, fwhm, tail_count=tail_count, npix=npix)


def calibrate(sequence: ADISequence, model: TrainedModel, *, n_null: int = PredictConfig.calibration_nulls, seed: int = 0,
              batch_size: int = PredictConfig.batch_size, tail_count: int = 20,
              known_sources_xy: npt.ArrayLike = ()) -> Calibration:
    """Measure a model's null blob counts on a sequence (negated angles, then ``n_null - 1`` permutations).

    Parameters
    ----------
    sequence : ADISequence
        The real data (known sources do not matter: derotated with wrong angles they are smeared out).
    model : TrainedModel
        The model to calibrate; its sample settings build the null samples.
    n_null : int
        Null draws per pixel (1: negated angles only); >= 1.
    seed : int
        Seeds the angle permutations.
    batch_size : int
        Samples per call of the model.
    tail_count : int
        Null peaks per annulus the exponential tail is fitted to (:func:`calibrate_nulls`).
    known_sources_xy : array-like, shape (n, 2)
        Known real sources (x, y), px, left out of the null draws
        (:func:`sodinn.detect.probability.null_arc_mask`).

    Returns
    -------
    Calibration
        The null blob counts and fitted tail of each annulus of the model's partition.

    Raises
    ------
    TypeError
        If ``n_null`` is not an integer.
    ValueError
        If ``n_null < 1``, the model was trained on data of a very different FWHM, or no annulus of the
        model's sample settings fits in the frames.

    See Also
    --------
    sodinn.detect.probability.probability_map : The model's scores with the true angles; with
        ``n_null`` it scores the null draws in the same pass (one PCA basis per annulus), which is how
        ``sodinn predict`` calibrates.
    """
    n_null = v.check_int(n_null, name="n_null", minimum=1)
    pmap = probability_map(sequence, model, batch_size=batch_size, progress=False, n_null=n_null, seed=seed,
                           known_sources_xy=known_sources_xy)
    return calibrate_nulls(pmap, sequence.fwhm_px, tail_count=tail_count)
