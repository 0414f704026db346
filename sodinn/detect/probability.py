"""Probability maps (SPEC §4): a trained model applied to every pixel of every annulus of a sequence.

The samples are built exactly as in training — the same annulus rule, patch size, number of ranks
and k policy (read from the model), residuals derotated with +PA, mean collapse, min-max
normalisation — from the real cube, with the fast exact operator of :mod:`sodinn.mlar.operator` (one PCA
basis per annulus, no frame rotated).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from sodinn.adi.sequence import ADISequence
from sodinn.config import PredictConfig, SampleConfig
from sodinn.learn.artifact import TrainedModel
from sodinn.mlar.operator import AnnulusOperator
from sodinn.mlar.samples import sample_annuli

__all__ = ["ProbabilityMap", "annulus_feature_samples", "probability_map"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbabilityMap:
    """P(companion) at every evaluated pixel (0 elsewhere), with the annuli it covers.

    Attributes
    ----------
    probability : ndarray, shape (N, N)
        P(companion) of each pixel's sample, in [0, 1]; 0 where not evaluated.
    evaluated : ndarray of bool, shape (N, N)
        The pixels the model was applied to.
    edges_px : ndarray, shape (n_annuli + 1,)
        Boundaries of the annuli of the model's partition, px from the star.
    ks : ndarray, shape (n_evaluated_annuli, K)
        Ranks (principal components) of each evaluated annulus, in partition order.
    """

    probability: np.ndarray
    evaluated: np.ndarray
    edges_px: np.ndarray
    ks: np.ndarray


def annulus_feature_samples(
    sequence: ADISequence, config: SampleConfig, r_in_px: float, r_out_px: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build the samples of every pixel of an annulus from the real cube (+PA derotation, no injection).

    Parameters
    ----------
    sequence : ADISequence
        The data.
    config : SampleConfig
        Sample settings (patch size, number of ranks, k policy), normally the model's.
    r_in_px, r_out_px : float
        Inner and outer radius of the annulus, px.

    Returns
    -------
    samples : ndarray, shape (n_pixels, K, P, P)
        The MLAR sample centred on each pixel, not normalised.
    pixels : ndarray of int, shape (n_pixels, 2)
        The (y, x) pixel of each sample.
    ks : ndarray of int, shape (K,)
        The ranks of the annulus.

    Raises
    ------
    ValueError
        If ``config.k_list`` asks for more ranks than the sequence has frames, or the annulus does not fit
        in ``config.memory_budget_gib``.
    """
    cube = np.asarray(sequence.cube)
    with threadpool_limits(limits=1, user_api="blas"):
        op = AnnulusOperator(cube, sequence.angles_deg, r_in_px, r_out_px, config, np.ones(cube.shape[1:], dtype=bool))
        values = op.residual_means(op.m_ext, op.basis(op.m_ext), op.plus)
    return op.patches(values, np.arange(len(op.centers))), op.centers, op.ks


def probability_map(sequence: ADISequence, model: TrainedModel, *, batch_size: int = PredictConfig.batch_size,
                    radii_px: tuple[float, float] | None = None, progress: bool = True) -> ProbabilityMap:
    """Apply a trained model to every pixel of the sequence's annuli (SPEC §4).

    Parameters
    ----------
    sequence : ADISequence
        The data.
    model : TrainedModel
        The trained model; its sample settings build the samples.
    batch_size : int
        Samples per call of the model.
    radii_px : (float, float), optional
        ``(r_min, r_max)``, px: evaluate only the annuli of the partition that overlap
        ``r_min <= r < r_max`` (the pixels of those whole annuli; the others stay 0). Default: all annuli.
    progress : bool
        Show a progress bar over the annuli.

    Returns
    -------
    ProbabilityMap
        P(companion) at every evaluated pixel, shape (N, N).

    Raises
    ------
    ValueError
        If the model was trained on data of a very different FWHM, or no annulus of the model's sample
        settings fits in the frames.

    See Also
    --------
    sodinn.detect.candidates.find_candidates : Threshold the map into a table of candidates.
    sodinn.detect.calibration.calibrate : Give a probability a meaning in false positives per frame.
    """
    from tqdm.auto import tqdm

    config = model.sample_config
    model.check_compatible(sequence.fwhm_px, config)
    annuli = sample_annuli(sequence, config)
    size = sequence.frame_size
    prob = np.zeros((size, size))
    evaluated = np.zeros((size, size), dtype=bool)
    ks = []
    chosen = list(range(len(annuli)))
    if radii_px is not None:
        lo, hi = float(radii_px[0]), float(radii_px[1])
        chosen = [i for i in chosen if annuli.r_out_px[i] > lo and annuli.r_in_px[i] < hi]
    for i in tqdm(chosen, desc="annuli", unit="annulus", disable=None if progress else True):
        samples, pixels, k = annulus_feature_samples(sequence, config, annuli.r_in_px[i], annuli.r_out_px[i])
        probs = np.concatenate([model.predict(samples[s : s + batch_size]) for s in range(0, len(samples), batch_size)])
        prob[pixels[:, 0], pixels[:, 1]] = probs
        evaluated[pixels[:, 0], pixels[:, 1]] = True
        ks.append(k)
    return ProbabilityMap(probability=prob, evaluated=evaluated, edges_px=annuli.edges_px, ks=np.array(ks))
