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
the Hill estimator of its scale), read as the predictive law of a new peak given a scale measured on
those few peaks (:func:`_log10_tail`; the analogue of Student's t in a small-sample S/N). A pixel of
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

The default, :func:`calibrate_self`, takes the map's own blobs as the null sample and judges each
blob among the highest peaks against the tail fitted **without it** (as an S/N leaves the tested
aperture out of its noise apertures), so that a companion does not make itself less significant. It
fits **one tail for the whole field** (``pool="field"``): the logits of each annulus are standardized by
their median and robust standard deviation (1.4826 MAD; like an S/N map, each annulus against its own
noise), and the exponential is fitted to the ``tail_count`` highest peaks of the field in these units.
``c`` is then the field's count at a pixel's standardized level, and each annulus keeps its area share of
the budget as long as the annuli's standardized tails agree. Fitted per annulus (``pool="annulus"``), a
map's own tails rest on the upper half of each annulus' few dozen peaks (as few as 2-8 near the star):
more bulk than tail, so the far tail they extrapolate was too wide and the small annuli's budgets
noisy (README, "What a candidate's false-alarm level means"). The pooled tail assumes what a field-wide
S/N threshold assumes, that the annuli's standardized tails agree; an annulus that holds more of the
tail's peaks than its area share, or larger excesses than the others' (as speckle-dominated annuli
near the star may, NA-SODINN's regimes), is split off and fitted alone (:func:`_split_p_values`).

References: Cantero et al. 2023, A&A 680, A86 (NA-SODINN; why calibrated, per-regime levels); Davison &
Smith 1990, JRSS B 52, 393 (peaks over threshold); Hill 1975, Ann. Stat. 3, 1163; Mawet et al. 2014,
ApJ 792, 97 (small-sample statistics of detection).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.geometry import Annuli, polar_coordinates
from sodinn.adi.sequence import ADISequence
from sodinn.config import PredictConfig
from sodinn.detect.probability import UNEVALUATED_LOGIT, ProbabilityMap, probability_map
from sodinn.learn.artifact import TrainedModel

__all__ = ["Calibration", "blob_count_level", "calibrate", "calibrate_nulls", "calibrate_self", "significance_sigma"]

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
        Exponential tail of each annulus, in logits and blobs per frame: its start (the lowest of the
        peaks it is fitted to), the mean excess of the others over it, and the peaks per frame above it.
    tail_excesses : ndarray of int, shape (n_annuli,), optional
        Peaks above ``tail_u`` the scale ``tail_beta`` is the mean excess of (``m``). With it, the tail is
        the predictive law of a new peak given a scale measured on ``m`` excesses (:func:`_log10_tail`),
        ``N_a(z) = tail_rate * (1 + (z - tail_u) / (m * tail_beta)) ** -m``; without it (None), the
        plain exponential ``tail_rate * exp(-(z - tail_u) / tail_beta)``, its limit for large ``m``.
    annulus_area_px : ndarray of int, shape (n_annuli,)
        Evaluated pixels of each annulus (``A_a``).
    n_null : int
        Null draws the counts come from.
    fwhm_px : float
        FWHM of the data, px.
    npix : int
        Smallest blob counted, pixels.
    tail_count : int
        Null peaks per annulus the tail was fitted to, at most (:func:`calibrate_nulls`).
    null_frames : ndarray, shape (n_annuli,), optional
        Null frames' worth of each annulus the counts are divided by (known sources' arcs left out).
    own_peaks : ndarray, shape (n_peaks, 4), optional
        Self-calibrations with ``leave_one_out`` only (:func:`calibrate_self`): the map's own peaks,
        rows of (annulus, row, col, counted level), the highest of each annulus first (with ``pool_loc``:
        the highest of the field first, levels standardized). A blob of the map among the tail peaks is
        then scored by the tail fitted without it.
    pool_loc, pool_scale : ndarray, shape (n_annuli,), optional
        Calibrations with ``pool="field"`` only: the median and robust standard deviation (1.4826 MAD)
        of each annulus' null logits, which standardize them, ``y = (z - pool_loc) / pool_scale``. One
        tail is fitted to the field's highest peaks in ``y`` and written, per annulus, in logits:
        ``tail_u = pool_loc + pool_scale * u``, ``tail_beta = pool_scale * beta`` and ``tail_rate`` the
        field's rate times the annulus' share of the area (so that ``c`` is the field's count at ``y``).
    pool_group : ndarray of int, shape (n_annuli,), optional
        With ``pool_loc``: the tail each annulus shares (0 the field's; an annulus whose share of the field
        tail's peaks, or their excesses, disagreed with the others' was split off and fitted alone: 1, 2, ...).
    sources_left_out_xy : ndarray, shape (n, 2), optional
        Self-calibrations with ``leave_one_out`` only: the peaks (x, y), px, of the blobs the step-down of
        :func:`calibrate_self` took for real sources and left out of the null sample, most significant first.
    source_fp : float, optional
        Self-calibrations with ``leave_one_out`` and a step-down only: the level, expected false positives per
        frame, at or below which the step-down took a blob for a real source (:func:`calibrate_self`'s
        ``source_fp``).
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
    tail_count: int = 20
    tail_excesses: np.ndarray | None = None
    null_frames: np.ndarray | None = None
    own_peaks: np.ndarray | None = None
    pool_loc: np.ndarray | None = None
    pool_scale: np.ndarray | None = None
    pool_group: np.ndarray | None = None
    sources_left_out_xy: np.ndarray | None = None
    source_fp: float | None = None

    @property
    def pool(self) -> str:
        """How the tails were fitted: ``"annulus"`` (each annulus its own) or ``"field"`` (one, standardized)."""
        return "annulus" if self.pool_loc is None else "field"

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
        tail = _log10_tail(z, u, beta, rate, self._excesses(annulus))
        return np.where(z >= u, tail, np.maximum(below, math.log10(rate)))

    def _excesses(self, annulus: int) -> float:
        return math.inf if self.tail_excesses is None else float(self.tail_excesses[annulus])

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
        if self.own_peaks is not None:
            self._leave_own_blobs_out(z, r, out)
        return out

    def _leave_own_blobs_out(self, z: np.ndarray, r: np.ndarray, out: np.ndarray) -> None:
        """Rescore, in place, each blob of the map among its annulus' tail peaks by the tail fitted without it.

        The blob is the 4-connected region at or above the annulus' tail start ``u`` holding the peak; its
        pixels in the annulus get the level of the tail refitted (same rule) on the annulus' other peaks,
        as an S/N is measured against noise apertures that leave the tested one out.
        """
        from scipy import ndimage

        if self.pool == "field":
            self._leave_own_blobs_out_of_field(z, out)
            return
        peaks = self.own_peaks
        for a in range(len(self.tail_u)):
            mine = peaks[peaks[:, 0] == a]  # highest first
            if self.tail_rate[a] <= 0 or self.annulus_area_px[a] == 0 or len(mine) < 3:
                continue
            labels = ndimage.label(z >= self.tail_u[a], structure=_FOUR_CONNECTED)[0]
            annulus = (r >= self.edges_px[a]) & (r < self.edges_px[a + 1])
            self._rescore_without_own_blob(z, mine, labels, annulus, float(self.null_frames[a]),
                                           math.log10(self.area_px / self.annulus_area_px[a]), out)

    def _rescore_without_own_blob(self, score: np.ndarray, peaks: np.ndarray, labels: np.ndarray, region: np.ndarray,
                                  null_frames: float, log10_area_scale: float, out: np.ndarray) -> None:
        """Give each labelled blob holding one of the tail's peaks the level of the tail refitted on the other peaks.

        ``peaks``: rows (annulus, row, col, counted level), highest first, in the units of ``score`` (logits, or
        standardized logits for a pooled tail); only the pixels of ``region`` are rescored, in place, in ``out``
        (``log10 c``).
        """
        k = _tail_size(len(peaks), self.tail_count)
        blob_of = labels[peaks[:k, 1].astype(int), peaks[:k, 2].astype(int)]
        for label in np.unique(blob_of[blob_of > 0]):
            fit = _fit_tail(np.delete(peaks[:, 3], np.nonzero(blob_of == label)[0]), self.tail_count, null_frames)
            if fit is None:
                continue
            u, beta, rate, m = fit
            m = m if self.tail_excesses is not None else math.inf
            sel = region & (labels == label)
            tail = _log10_tail(score[sel], u, beta, rate, m) + log10_area_scale
            out[sel] = np.where(score[sel] >= u, tail, np.maximum(out[sel], math.log10(rate) + log10_area_scale))

    def standardized(self, logit: npt.ArrayLike) -> np.ndarray:
        """Return the logits standardized per annulus, ``(z - pool_loc) / pool_scale`` (``pool="field"`` only).

        Parameters
        ----------
        logit : array-like, shape (N, N)
            Logit map of the data set the calibration was measured on.

        Returns
        -------
        ndarray of float64, shape (N, N)
            ``y``, in robust standard deviations of the annulus' null logits above their median; -inf outside
            the annuli.

        Raises
        ------
        ValueError
            If the calibration was not pooled over the field (``pool_loc`` is None), or ``logit`` is not a
            square 2-D image of finite values.
        TypeError
            If ``logit`` is not numeric.
        """
        if self.pool != "field":
            msg = "this calibration fits each annulus alone; standardized logits need calibrate_self(..., pool='field')"
            raise ValueError(msg)
        z = v.check_frame(logit, name="logit")
        return _standardize(z, Annuli(z.shape, self.edges_px).label_map(), self.pool_loc, self.pool_scale)

    def _leave_own_blobs_out_of_field(self, z: np.ndarray, out: np.ndarray) -> None:
        """Rescore, in place, each tail blob of a pooled calibration by its group's tail fitted without it."""
        from scipy import ndimage

        annulus_of = Annuli(z.shape, self.edges_px).label_map()
        y = _standardize(z, annulus_of, self.pool_loc, self.pool_scale)
        for g in np.unique(self.pool_group):
            members = np.nonzero((self.pool_group == g) & (self.annulus_area_px > 0))[0]
            peaks = self.own_peaks[np.isin(self.own_peaks[:, 0], members)]  # highest first, standardized
            if members.size == 0 or self.tail_rate[members].sum() <= 0 or len(peaks) < 3:
                continue
            a0 = members[0]
            u_group = (self.tail_u[a0] - self.pool_loc[a0]) / self.pool_scale[a0]
            region = np.isin(annulus_of, members)
            labels = ndimage.label(region & (y >= u_group), structure=_FOUR_CONNECTED)[0]
            self._rescore_without_own_blob(y, peaks, labels, region, float(self.null_frames[a0]),
                                           math.log10(self.area_px / self.annulus_area_px[members].sum()), out)

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
            u, beta, rate, m = self.tail_u[a], self.tail_beta[a], self.tail_rate[a], self._excesses(a)
            if goal <= math.log10(rate):
                drop = (math.log10(rate) - goal) * _LN10  # ln(N_a(u) / N_a(z))
                out[a] = u + (beta * drop if math.isinf(m) else m * beta * math.expm1(drop / m))
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
                    npix: int = 2, tail_law: str = "predictive", pool: str = "annulus") -> Calibration:
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
    tail_law : {"predictive", "exponential"}
        ``"predictive"`` (default): the law of a new peak given a tail scale measured on few peaks
        (:func:`_log10_tail`); ``"exponential"``: the scale taken as exact (sodinn before 2026-12-01).
    pool : {"annulus", "field"}
        ``"annulus"`` (default here): each annulus' tail fitted to its own ``tail_count`` highest null
        peaks; ``"field"``: the null logits standardized per annulus (median, 1.4826 MAD) and one tail
        fitted to the ``tail_count`` highest peaks of the whole field (:func:`calibrate_self`).

    Returns
    -------
    Calibration
        The null blob counts and fitted tail of each annulus of the model's partition.

    Raises
    ------
    ValueError
        If ``pmap`` has no null draws, ``tail_count``/``n_levels`` is too small, or ``tail_law`` or ``pool`` unknown.
    TypeError
        If ``tail_count`` or ``n_levels`` is not an integer.
    """
    if pmap.null_logit is None or len(pmap.null_logit) == 0:
        msg = "the probability map has no null draws; make it with probability_map(..., n_null=4)"
        raise ValueError(msg)
    return _measure(pmap, fwhm_px, tail_count, n_levels, npix, keep_peaks=False, tail_law=tail_law, pool=pool)


_TAIL_LAWS = ("predictive", "exponential")
_MAX_SOURCE_ROUNDS = 6

#: Expected false positives per frame at or below which a self-calibration's most significant blob is taken
#: for a real source and left out of the null sample (:func:`calibrate_self`, ``source_fp``). Measured on 100
#: synthetic maps with one companion of peak 4 sigma, counted at a budget of 1: 0.36 without the step-down,
#: 0.60 with 0.1, 0.66 on the maps without the companion, which 0.1 leaves as they were (0.64 without it);
#: with 0.02, 0.40 with a companion of 7 sigma (0.67 with 0.1); 0.2 raised the companion-free maps' counts by 10 %
SOURCE_FP = 0.1
_POOLS = ("annulus", "field")


def _measure(pmap: ProbabilityMap, fwhm_px: float, tail_count: int, n_levels: int, npix: int, *, keep_peaks: bool,
             tail_law: str, pool: str = "annulus", split: np.ndarray | None = None) -> Calibration:
    """Count the null blobs of each annulus and fit its tail (:func:`calibrate_nulls`); ``keep_peaks`` records the peaks."""
    if tail_law not in _TAIL_LAWS:
        msg = f"tail_law must be one of {', '.join(_TAIL_LAWS)}; got {tail_law!r}"
        raise ValueError(msg)
    if pool not in _POOLS:
        msg = f"pool must be one of {', '.join(_POOLS)}; got {pool!r}"
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
    annulus_of = Annuli(evaluated.shape, edges).label_map()  # annulus a holds edges[a] <= r < edges[a + 1], else -1
    inside = evaluated & (annulus_of >= 0)
    areas = np.bincount(annulus_of[inside], minlength=n_annuli)[:n_annuli]
    values = nulls[:, inside]
    values = values[values > UNEVALUATED_LOGIT / 2]
    levels = np.linspace(float(np.median(values)), float(values.max()), n_levels)
    counts = np.zeros((n_annuli, n_levels))
    us, betas, rates, frames = np.zeros(n_annuli), np.ones(n_annuli), np.zeros(n_annuli), np.zeros(n_annuli)
    excesses = np.ones(n_annuli, dtype=int)
    peaks: list[np.ndarray] = []
    available = nulls > UNEVALUATED_LOGIT / 2  # not on a known source's arc (probability_map)
    for a in range(n_annuli):
        own = inside & (annulus_of == a)  # each annulus counted alone, as it is thresholded alone
        if not own.any():
            continue
        rows, cols = np.nonzero(own)
        box = np.s_[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        heights, positions = [], []
        n_eff = 0.0  # null frames' worth of this annulus: the arcs of known sources are left out
        for null, ok in zip(nulls, available, strict=True):
            own_box = (own & ok)[box]
            n_eff += own_box.sum() / own.sum()
            crop = null[box]
            for j, level in enumerate(levels):
                counts[a, j] += len(_blob_peaks(crop, own_box, level, npix)[0])
            peak_rows, peak_cols, height = _peak_levels(crop, own_box, npix)  # in the annulus' box
            heights.append(height)
            positions.append((peak_rows, peak_cols))
        counts[a] /= max(n_eff, 1e-12)
        frames[a] = n_eff
        h = np.concatenate(heights)
        order = np.argsort(h, kind="stable")[::-1]
        h = h[order]
        finite = np.isfinite(h)  # a lone pixel (no neighbour left) never makes a blob of npix = 2
        fit = _fit_tail(h[finite], tail_count, n_eff)
        if fit is None:
            continue
        us[a], betas[a], rates[a], excesses[a] = fit
        if keep_peaks:
            peak_rows, peak_cols = (np.concatenate(x)[order][finite] for x in zip(*positions, strict=True))
            peaks.append(np.column_stack([np.full(peak_rows.size, a), peak_rows + box[0].start, peak_cols + box[1].start,
                                          h[finite]]))
    counts = np.maximum.accumulate(counts[:, ::-1], axis=1)[:, ::-1]  # non-increasing with the level
    own = (np.concatenate(peaks) if peaks else np.zeros((0, 4))) if keep_peaks else None
    tails = {"tail_u": us, "tail_beta": betas, "tail_rate": rates, "tail_excesses": excesses, "null_frames": frames,
             "own_peaks": own}
    if pool == "field":  # the blob counts below the tail stay each annulus' own
        tails = _pool_field(nulls, available, inside, annulus_of, areas, tail_count, npix, keep_peaks=keep_peaks,
                            split=split)
    if tail_law != "predictive":
        tails["tail_excesses"] = None
    return Calibration(edges_px=edges, levels=levels, counts=counts, annulus_area_px=areas, n_null=n_null, fwhm_px=fwhm,
                       npix=npix, tail_count=tail_count, **tails)


def _fit_tail(heights: np.ndarray, tail_count: int, n_eff: float) -> tuple[float, float, float, int] | None:
    """Fit the exponential tail to the highest null peaks (sorted, highest first).

    Returns ``(u, beta, rate, m)``: the start, the mean excess (Hill), peaks per frame at or above the start,
    and the number of excesses; None for fewer than 2 peaks.
    """
    if heights.size < 2:
        return None
    k = _tail_size(heights.size, tail_count)
    u = float(heights[k - 1])
    excess = heights[: k - 1] - u
    beta = float(excess.mean()) if excess.size and excess.mean() > 0 else 1.0
    return u, beta, k / max(n_eff, 1e-12), k - 1


def _tail_size(n_peaks: int, tail_count: int) -> int:
    """Return how many of ``n_peaks`` (>= 2) highest peaks a tail is fitted to: the upper half at most, a tail, not the bulk."""
    return min(tail_count, max(2, n_peaks // 2))


def _log10_tail(z: npt.ArrayLike, u: float, beta: float, rate: float, m: float) -> np.ndarray:
    """Return ``log10 N(z)``, peaks per frame at or above ``z >= u``, of an exponential tail whose scale is measured.

    For peaks whose excesses over ``u`` are exponential of an unknown scale, estimated as the mean ``beta``
    of ``m`` of them, a new peak's excess ``x`` obeys exactly ``P(X > x) = (1 + x / (m beta)) ** -m``
    (``X / (m beta)`` is the ratio of an exponential to an independent Gamma(m) sum): the predictive law,
    which carries the scale's uncertainty as Student's t carries the noise's in a small-sample S/N
    (Mawet et al. 2014, ApJ 792, 97). It tends to ``exp(-x / beta)`` for large ``m`` (``m = inf``).
    """
    x = np.maximum(np.asarray(z, dtype=np.float64) - u, 0.0)
    if math.isinf(m):
        return math.log10(rate) - x / (beta * _LN10)
    return math.log10(rate) - m * np.log1p(x / (m * beta)) / _LN10


def _standardize(z: np.ndarray, annulus_of: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Return ``(z - loc[a]) / scale[a]`` at each pixel of annulus ``a = annulus_of`` (a label map), -inf where it is -1."""
    a = np.maximum(annulus_of, 0)
    return np.where(annulus_of >= 0, (z - loc[a]) / scale[a], -np.inf)


def _robust_loc_scale(values: np.ndarray) -> tuple[float, float]:
    """Return the median and 1.4826 MAD of ``values`` (the standard deviation if the MAD is 0; 1 if that is too)."""
    if values.size == 0:
        return 0.0, 1.0
    loc = float(np.median(values))
    scale = 1.4826 * float(np.median(np.abs(values - loc)))
    if not scale > 0:
        scale = float(values.std()) if values.std() > 0 else 1.0
    return loc, scale


#: Significance at which an annulus whose share of the field tail's peaks, or their excesses, disagrees with the
#: other annuli' is split off the field's tail (:func:`_pool_field`, :func:`_split_p_values`)
SPLIT_ALPHA = 1e-3


def _pool_field(nulls: np.ndarray, available: np.ndarray, inside: np.ndarray, annulus_of: np.ndarray, areas: np.ndarray,
                tail_count: int, npix: int, *, keep_peaks: bool, split: np.ndarray | None = None) -> dict[str, np.ndarray | None]:
    """Fit one tail to the field's highest peaks of the null logits standardized per annulus (``pool="field"``).

    The pooled tail assumes the annuli's standardized tails agree. It is checked (:func:`_split_p_values`):
    where one annulus' share of the tail's peaks, or their excesses, is more than the others' allow (at
    :data:`SPLIT_ALPHA`), that annulus is fitted alone (its own peaks, as ``pool="annulus"``) and the
    others' tail refitted without it, until none is. Returns the tail fields of :class:`Calibration`
    (``tail_u`` ... ``pool_group``), the tails written per annulus in logits; ``annulus_of`` is the label map.
    """
    n_annuli = len(areas)
    loc, scale = np.zeros(n_annuli), np.ones(n_annuli)
    for a in range(n_annuli):
        own = inside & (annulus_of == a)
        loc[a], scale[a] = _robust_loc_scale(nulls[:, own][available[:, own]])
    a_of = np.maximum(annulus_of, 0)
    field = inside & (annulus_of >= 0)
    standardized = [np.where(field & ok, _standardize(null, annulus_of, loc, scale), -np.inf)
                    for null, ok in zip(nulls, available, strict=True)]

    def group_fit(members: np.ndarray) -> tuple[tuple | None, np.ndarray, float]:
        """Fit the tail of the annuli ``members`` pooled: (fit, peaks as rows (annulus, row, col, level) highest first, n_eff)."""
        region = field & np.isin(a_of, members)
        rows, n_eff = [], 0.0
        for y, ok in zip(standardized, available, strict=True):
            usable = region & ok
            n_eff += usable.sum() / max(region.sum(), 1)
            peak_rows, peak_cols, height = _peak_levels(y, usable, npix)
            rows.append(np.column_stack([a_of[peak_rows, peak_cols], peak_rows, peak_cols, height]))
        peaks = np.concatenate(rows) if rows else np.zeros((0, 4))
        peaks = peaks[np.isfinite(peaks[:, 3])]
        peaks = peaks[np.argsort(peaks[:, 3], kind="stable")[::-1]]
        return _fit_tail(peaks[:, 3], tail_count, n_eff), peaks, n_eff

    group = np.zeros(n_annuli, dtype=int) if split is None else np.asarray(split, dtype=int).copy()
    fits = {g: group_fit(np.nonzero((group == g) & (areas > 0))[0]) for g in np.unique(group) if g > 0}
    while True:
        members = np.nonzero((group == 0) & (areas > 0))[0]
        fits[0] = group_fit(members)
        fit, peaks, _ = fits[0]
        if fit is None or members.size < 2:
            break
        p_value = _split_p_values(peaks, tail_count, members, areas)
        worst = int(np.argmin(p_value))
        if p_value[worst] >= SPLIT_ALPHA:
            break
        group[members[worst]] = group.max() + 1
        fits[group[members[worst]]] = group_fit(members[worst : worst + 1])
    tail_u, tail_beta, tail_rate = np.zeros(n_annuli), np.ones(n_annuli), np.zeros(n_annuli)
    excesses, frames = np.ones(n_annuli, dtype=int), np.zeros(n_annuli)
    own = []
    for g, (fit, peaks, n_eff) in fits.items():
        members = np.nonzero((group == g) & (areas > 0))[0]
        u, beta, rate, m = fit if fit is not None else (0.0, 1.0, 0.0, 1)
        share = areas[members] / max(areas[members].sum(), 1)
        tail_u[members], tail_beta[members] = loc[members] + scale[members] * u, scale[members] * beta
        tail_rate[members], excesses[members], frames[members] = rate * share, m, n_eff
        own.append(peaks)
    own_peaks = None
    if keep_peaks:
        own_peaks = np.concatenate(own) if own else np.zeros((0, 4))
        own_peaks = own_peaks[np.argsort(own_peaks[:, 3], kind="stable")[::-1]]
    return {"tail_u": tail_u, "tail_beta": tail_beta, "tail_rate": tail_rate, "tail_excesses": excesses,
            "null_frames": frames, "own_peaks": own_peaks, "pool_loc": loc, "pool_scale": scale, "pool_group": group}


def _split_p_values(peaks: np.ndarray, tail_count: int, members: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """Return, per annulus of a pooled tail, the p-value that its share of the tail disagrees with the others'.

    Of the ``k - 1`` peaks above the tail's start ``u`` (``peaks`` as rows (annulus, row, col, level), highest
    first), annulus ``a`` holds ``n_a``: too many for its area share (Poisson, mean ``(k - 1) A_a / A``), or
    excesses over ``u`` too large for the scale of the other annuli' excesses (their sum Gamma(``n_a``) under
    a common exponential tail). The smaller p-value of the two, doubled (Bonferroni). Measured on 100
    correlated Gaussian null maps (one tail shape everywhere): the smallest p-value of a map's annuli is
    below 1e-3 in 5 % of them; with one annulus of a heavier, log-normal-like tail, in 85 %, always that one.
    """
    from scipy import stats

    k = _tail_size(len(peaks), tail_count)
    u = peaks[k - 1, 3]
    top = peaks[: k - 1]
    out = np.ones(len(members))
    for i, a in enumerate(members):
        mine, rest = top[top[:, 0] == a, 3] - u, top[top[:, 0] != a, 3] - u
        if mine.size == 0:
            continue
        p_count = stats.poisson.sf(mine.size - 1, (k - 1) * areas[a] / areas[members].sum())
        p_scale = stats.gamma.sf(mine.sum(), mine.size, scale=rest.mean()) if rest.size and rest.mean() > 0 else 1.0
        out[i] = min(1.0, 2 * min(p_count, p_scale))
    return out


def _peak_levels(null: np.ndarray, inside: np.ndarray, npix: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the (row, col) of the local maxima (4-neighbourhood) of a null map and the level at which each is counted.

    A blob is counted once it has ``npix`` pixels: a peak alone (``npix = 1``) from its own value, with a
    second pixel (``npix = 2``) from its highest 4-neighbour's.
    """
    from scipy import ndimage

    masked = np.where(inside, null, -np.inf)
    top = ndimage.maximum_filter(masked, footprint=_FOUR_CONNECTED, mode="constant", cval=-np.inf)
    rows, cols = np.nonzero(inside & (masked == top))
    return rows, cols, blob_count_level(masked, npix)[rows, cols]


def blob_count_level(score: npt.ArrayLike, npix: int) -> np.ndarray:
    """Return, per pixel, the highest threshold at which it lies in a 4-connected blob of ``npix`` pixels.

    The rule by which blobs are counted here, in the calibration's null maps and in the candidate
    tables (:func:`sodinn.detect.candidates.find_calibrated_candidates`): with ``npix = 1`` a pixel's own
    score; with ``npix = 2`` the lower of its score and its best 4-neighbour's, so that a blob's level
    (the highest over its pixels) is that of its best pair of touching pixels.

    Parameters
    ----------
    score : array-like, shape (N, M)
        Scores, higher more significant (a logit, or ``-log10 c``); -inf where nothing is evaluated.
    npix : int
        Smallest blob counted, pixels: 1 or 2.

    Returns
    -------
    ndarray of float64, shape (N, M)
        The threshold, in the units of ``score``.

    Examples
    --------
    >>> blob_count_level(np.array([[0.0, 5.0, 3.0]]), 2).tolist()
    [[0.0, 3.0, 3.0]]
    """
    from scipy import ndimage

    score = np.asarray(score, dtype=np.float64)
    if npix <= 1:
        return score
    ring = _FOUR_CONNECTED.copy()
    ring[1, 1] = 0
    best_neighbour = ndimage.maximum_filter(score, footprint=ring, mode="constant", cval=-np.inf)
    return np.minimum(score, best_neighbour)


def calibrate_self(pmap: ProbabilityMap, fwhm_px: float, *, known_sources_xy: npt.ArrayLike = (), mask_radius_fwhm: float = 2.0,
                   tail_count: int = 20, npix: int = 2, leave_one_out: bool = True, tail_law: str = "predictive",
                   pool: str = "field", source_fp: float | None = SOURCE_FP) -> Calibration:
    """Calibrate a map on itself: its own blobs, known sources left out, are the null sample (the default).

    The S/N of a PCA-ADI frame compares a pixel with the noise of its own annulus; this does the same
    with blobs. The map's own blobs are exchangeable with the false positives it can hold, since they
    are those speckles. With ``leave_one_out`` (the default) a blob among its annulus' tail peaks is
    judged against the tail fitted on the others (the 4-connected region at or above the tail's start
    that holds it is left out), as an S/N leaves the tested aperture out of its noise; without it, a
    real unknown companion counts in its own tail and makes itself less significant, 10-100x
    conservative on independent null maps (README, "What a candidate's false-alarm level means"). Null draws of the data (negated or
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
    leave_one_out : bool
        Judge each of the map's tail blobs against the tail fitted without it (default); the levels it
        gives hold only for this map (:meth:`Calibration.log10_expected_false_positives` of ``pmap.logit``).
    tail_law : {"predictive", "exponential"}
        The law of the tail (:func:`calibrate_nulls`). ``leave_one_out=False, tail_law="exponential"`` is
        sodinn's self-calibration before 2026-12-01.
    pool : {"field", "annulus"}
        ``"field"`` (default): the map's logits standardized per annulus (median, 1.4826 MAD of its
        pixels) and one tail fitted to the ``tail_count`` highest peaks of the whole field, so that the
        far tail rests on the field's strongest blobs, not on the upper half of each annulus' few
        peaks; ``"annulus"``: each annulus' tail fitted to its own peaks (sodinn before commit 136d098, 2026-12-01).
    source_fp : float or None
        Step-down (default :data:`SOURCE_FP`, with ``leave_one_out``): the map's most significant blob,
        if its level is at most ``source_fp`` expected false positives per frame, is taken for a real
        source and left out of the null sample like a known one (a disc of ``mask_radius_fwhm``), the
        calibration refitted, and so on, while at least ``2 tail_count`` peaks remain (at most
        6 rounds); an annulus the split check of ``pool="field"`` fitted alone stays alone (else a
        heavy-tailed annulus' own outliers, left out, would hide its tail). A real companion left in the
        null sample outranks every speckle and widens the tail, so that the others' levels come out
        about 3x too high: on 100 synthetic maps with one companion of peak 7 sigma, 0.23 false positive
        per frame counted at a budget of 1 without the step-down, 0.67 with it, 0.66 on the same maps
        without a companion. None: no step-down (sodinn before 2026-12-01).

    Returns
    -------
    Calibration
        With ``n_null = 1``: the map itself; with ``leave_one_out``, its peaks in ``own_peaks``, the
        blobs the step-down took for real sources in ``sources_left_out_xy`` and its level in ``source_fp``.

    Raises
    ------
    TypeError, ValueError
        For bad ``fwhm_px``, ``mask_radius_fwhm``, ``tail_count``, ``npix``, ``tail_law`` or ``source_fp``, or
        positions that are not (x, y) pairs.
    """
    fwhm = v.check_positive(fwhm_px, name="fwhm_px")
    if source_fp is not None:
        source_fp = v.check_positive(source_fp, name="source_fp")
    radius = v.check_positive(mask_radius_fwhm, name="mask_radius_fwhm") * fwhm
    null = np.where(pmap.evaluated, pmap.logit, UNEVALUATED_LOGIT).astype(np.float64)
    sources = np.asarray(known_sources_xy, dtype=np.float64).reshape(-1, 2)
    yy, xx = np.indices(null.shape)

    def leave_out(x: float, y: float) -> None:  # a source's disc out of the null sample
        null[np.hypot(xx - x, yy - y) <= radius] = UNEVALUATED_LOGIT

    if len(sources):
        sources = v.check_positions_xy(sources, name="known_sources_xy")
        for x, y in sources:
            leave_out(x, y)
    found: list[tuple[float, float]] = []
    split = None  # the first round's tail groups: an annulus split off stays split off
    for _ in range(_MAX_SOURCE_ROUNDS):
        own = ProbabilityMap(logit=pmap.logit, probability=pmap.probability, evaluated=pmap.evaluated,
                             edges_px=pmap.edges_px, ks=pmap.ks, null_logit=null[None])
        cal = _measure(own, fwhm, tail_count, 128, npix, keep_peaks=bool(leave_one_out), tail_law=tail_law, pool=pool,
                       split=split)
        split = cal.pool_group
        if source_fp is None or cal.own_peaks is None or len(cal.own_peaks) < 2 * tail_count:
            break
        rows, cols = cal.own_peaks[:, 1].astype(int), cal.own_peaks[:, 2].astype(int)
        log10_c = cal.log10_expected_false_positives(pmap.logit)[rows, cols]
        best = int(np.argmin(log10_c))  # step-down: the most significant blob, then the calibration refitted
        if log10_c[best] > math.log10(source_fp):
            break
        found.append((float(cols[best]), float(rows[best])))
        leave_out(*found[-1])
    if cal.own_peaks is None:
        return cal
    return replace(cal, sources_left_out_xy=np.asarray(found, dtype=np.float64).reshape(-1, 2), source_fp=source_fp)


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
