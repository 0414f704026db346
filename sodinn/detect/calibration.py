"""Calibrated thresholds: what a probability means in false positives per frame, on these data.

A SODINN probability is a classifier score; how often speckles reach 0.9 depends on the data set.
To give a threshold a meaning that travels between data sets, the model's scores under the null
hypothesis are measured on the data themselves: every pixel's sample is built from the real cube with
the residuals derotated with *negated* parallactic angles (the C- rule of SPEC §3: speckles keep their
statistics, a real companion is smeared out) and, for more null draws, with randomly permuted angles.
In each annulus of the model's partition, the exceedance ``q(p)`` (the fraction of null scores at or
above ``p``) is taken from the empirical distribution where at least ``min_tail`` null scores are above
``p``, and beyond that from an exponential tail fitted to the logit of the scores above the annulus'
90th percentile (peaks over threshold). A pixel of probability ``p`` in annulus ``a`` then gets the
*expected false positives per frame* ``c = q_a(p) * A / A_res``: the number of false blobs the whole
evaluated field would hold if every annulus were thresholded at the same null exceedance (``A`` the
evaluated area, ``A_res = pi (FWHM/2)^2`` a resolution element). Thresholding ``c <= F`` gives a
detection map whose false positives per frame are ``F`` on average, spread evenly over the field,
whatever the data set; the ROC harness checks this against the false positives it counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.geometry import frame_center
from sodinn.adi.sequence import ADISequence
from sodinn.detect.probability import annulus_feature_samples
from sodinn.learn.artifact import TrainedModel
from sodinn.mlar.samples import sample_annuli

__all__ = ["Calibration", "calibrate"]

_EPS = 1e-7


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class Calibration:
    """Null-score distributions of a model on one data set, per annulus (see the module docstring).

    Made by :func:`calibrate`.

    Attributes
    ----------
    edges_px : ndarray, shape (n_annuli + 1,)
        Annulus boundaries of the model's partition, px from the star.
    null_logits : tuple of ndarray, shape (n_pixels_a * n_null,) each
        Sorted logits of the null scores of each annulus.
    tail_u, tail_beta : ndarray, shape (n_annuli,)
        Exponential tail of each annulus, in logit units: ``q = tail_fraction * exp(-(logit - u) / beta)``
        above ``u``.
    tail_fraction : float
        Fraction of each annulus' null scores above ``tail_u`` (the upper quantile the tail was fitted to).
    area_px : int
        Evaluated pixels (``A``), all annuli together.
    resolution_px : float
        Area of a resolution element, ``pi (FWHM/2)^2``, px^2 (``A_res``).
    n_null : int
        Null draws per pixel.
    min_tail : int
        Below this many null scores at or above ``p``, :meth:`exceedance` uses the fitted tail.

    See Also
    --------
    calibrate : Measure a calibration.
    """

    edges_px: np.ndarray
    null_logits: tuple[np.ndarray, ...]
    tail_u: np.ndarray
    tail_beta: np.ndarray
    tail_fraction: float
    area_px: int
    resolution_px: float
    n_null: int
    min_tail: int = 10

    def exceedance(self, annulus: int, probability: npt.ArrayLike) -> np.ndarray:
        """Return the null exceedance ``q(p)`` of one annulus.

        The empirical fraction of null scores at or above ``p`` where at least ``min_tail`` null scores
        are; beyond, the fitted exponential tail, capped at ``min_tail / n``.

        Parameters
        ----------
        annulus : int
            Index of the annulus, ``0 <= annulus < n_annuli``.
        probability : array-like
            Probabilities ``p`` in [0, 1], any shape.

        Returns
        -------
        ndarray
            ``q(p)``, the shape of ``probability``: the fraction of null scores expected at or above ``p``.
        """
        z = _logit(np.asarray(probability))
        null = self.null_logits[annulus]
        n = null.size
        above = n - np.searchsorted(null, z, side="left")  # null scores >= z
        q_emp = above / n
        q_tail = self.tail_fraction * np.exp(-(z - self.tail_u[annulus]) / self.tail_beta[annulus])
        return np.where(above >= self.min_tail, q_emp, np.minimum(q_tail, self.min_tail / n))

    def expected_false_positives(self, probability: npt.ArrayLike) -> np.ndarray:
        """Return the expected false positives per frame at each pixel's probability.

        ``c = q_a(p) * A / A_res`` with ``a`` the pixel's annulus (see the module docstring).

        Parameters
        ----------
        probability : array-like, shape (N, N)
            Probability map of the data set the calibration was measured on.

        Returns
        -------
        ndarray, shape (N, N)
            ``c`` at each pixel, false positives per frame; inf outside the calibrated annuli.

        Raises
        ------
        TypeError
            If ``probability`` is not numeric.
        ValueError
            If ``probability`` is not a square 2-D image of finite values.
        """
        prob = v.check_frame(probability, name="probability")
        cy, cx = frame_center(prob.shape)
        yy, xx = np.indices(prob.shape)
        r = np.hypot(xx - cx, yy - cy)
        out = np.full(prob.shape, np.inf)
        scale = self.area_px / self.resolution_px
        for a in range(len(self.null_logits)):
            sel = (r >= self.edges_px[a]) & (r < self.edges_px[a + 1])
            out[sel] = self.exceedance(a, prob[sel]) * scale
        return out

    def score_map(self, probability: npt.ArrayLike) -> np.ndarray:
        """Return ``-log10`` of :meth:`expected_false_positives`, a detection map for blob scoring.

        Thresholding it strictly above ``-log10(F)`` keeps the pixels with ``c < F``.

        Parameters
        ----------
        probability : array-like, shape (N, N)
            Probability map of the data set the calibration was measured on.

        Returns
        -------
        ndarray, shape (N, N)
            ``-log10(c)``, floored at -300 (so -300 outside the calibrated annuli).

        Raises
        ------
        TypeError
            If ``probability`` is not numeric.
        ValueError
            If ``probability`` is not a square 2-D image of finite values.
        """
        with np.errstate(divide="ignore"):
            return np.maximum(-np.log10(self.expected_false_positives(probability)), -300.0)

    def thresholds(self, fp_per_frame: float) -> np.ndarray:
        """Return the probability threshold of each annulus for ``fp_per_frame`` expected false positives per frame.

        The smallest probability, on a grid of 4000 logits, whose exceedance is at most
        ``fp_per_frame * A_res / A`` (the top of the grid where none is).

        Parameters
        ----------
        fp_per_frame : float
            Target ``F``, expected false positives per frame over the whole evaluated field (> 0).

        Returns
        -------
        ndarray, shape (n_annuli,)
            Probability threshold of each annulus, in (0, 1).

        Raises
        ------
        TypeError
            If ``fp_per_frame`` is not a real number.
        ValueError
            If ``fp_per_frame`` is not finite and > 0.
        """
        target = v.check_positive(fp_per_frame, name="fp_per_frame") * self.resolution_px / self.area_px
        out = []
        for a, null in enumerate(self.null_logits):
            grid = np.linspace(null[0] - 1, max(null[-1], self.tail_u[a]) + 30 * self.tail_beta[a], 4000)
            q = self.exceedance(a, 1 / (1 + np.exp(-grid)))
            ok = np.nonzero(q <= target)[0]
            z = grid[ok[0]] if ok.size else grid[-1]
            out.append(1 / (1 + math.exp(-z)))
        return np.array(out)


def calibrate(sequence: ADISequence, model: TrainedModel, *, n_null: int = 4, seed: int = 0, batch_size: int = 512,
              tail_fraction: float = 0.1, min_tail: int = 10) -> Calibration:
    """Measure a model's null scores on a sequence (negated angles, then ``n_null - 1`` random permutations).

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
    tail_fraction : float
        The tail fit uses the scores above this upper quantile of each annulus; in (0, 0.5).
    min_tail : int
        Below this many null scores above ``p``, the exponential tail replaces the empirical fraction.

    Returns
    -------
    Calibration
        The null logits and fitted tail of each annulus of the model's partition.

    Raises
    ------
    TypeError
        If ``n_null`` is not an integer.
    ValueError
        If ``n_null < 1``, ``tail_fraction`` is outside (0, 0.5), the model was trained on data of a
        very different FWHM, or no annulus of the model's sample settings fits in the frames.

    See Also
    --------
    sodinn.detect.probability.probability_map : The model's scores on the data with the true angles.

    Notes
    -----
    The null samples follow the C- rule of SPEC §3 (residuals derotated with negated angles); the
    permuted draws add null realisations. Fitting an exponential to the exceedances above a high
    quantile is the peaks-over-threshold method.
    """
    n_null = v.check_int(n_null, name="n_null", minimum=1)
    if not 0 < tail_fraction < 0.5:
        msg = f"tail_fraction must be in (0, 0.5); got {tail_fraction}"
        raise ValueError(msg)
    config = model.sample_config
    model.check_compatible(sequence.fwhm_px, config)
    annuli = sample_annuli(sequence, config)
    rng = np.random.default_rng(seed)
    angles = [-sequence.angles_deg] + [rng.permutation(sequence.angles_deg) for _ in range(n_null - 1)]
    nulls = [ADISequence(cube=sequence.cube, angles_deg=a, psf=sequence.psf, fwhm_px=sequence.fwhm_px) for a in angles]
    logits, us, betas = [], [], []
    area = 0
    for i in range(len(annuli)):
        scores = []
        for null in nulls:
            samples, pixels, _ = annulus_feature_samples(null, config, annuli.r_in_px[i], annuli.r_out_px[i])
            scores.append(np.concatenate([model.predict(samples[s : s + batch_size]) for s in range(0, len(samples), batch_size)]))
        area += len(pixels)
        z = np.sort(_logit(np.concatenate(scores)))
        u = float(np.quantile(z, 1 - tail_fraction))
        excess = z[z > u] - u
        beta = float(excess.mean()) if excess.size and excess.mean() > 0 else 1.0
        logits.append(z)
        us.append(u)
        betas.append(beta)
    return Calibration(edges_px=np.asarray(annuli.edges_px, dtype=np.float64), null_logits=tuple(logits), tail_u=np.array(us),
                       tail_beta=np.array(betas), tail_fraction=tail_fraction, area_px=area,
                       resolution_px=math.pi * (sequence.fwhm_px / 2) ** 2, n_null=n_null, min_tail=min_tail)
