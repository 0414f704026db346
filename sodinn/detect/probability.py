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
    evaluated : ndarray of bool, shape (N, N)
    edges_px : ndarray
        Annulus boundaries.
    ks : ndarray, shape (n_annuli, K)
        Ranks used in each annulus.
    """

    probability: np.ndarray
    evaluated: np.ndarray
    edges_px: np.ndarray
    ks: np.ndarray


def annulus_feature_samples(
    sequence: ADISequence, config: SampleConfig, r_in_px: float, r_out_px: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples of every pixel of an annulus (+PA derotation, no injection): samples, pixels (y, x), ks."""
    cube = np.asarray(sequence.cube)
    with threadpool_limits(limits=1, user_api="blas"):
        op = AnnulusOperator(cube, sequence.angles_deg, r_in_px, r_out_px, config, np.ones(cube.shape[1:], dtype=bool))
        values = op.residual_means(op.m_ext, op.basis(op.m_ext), op.plus)
    return op.patches(values, np.arange(len(op.centers))), op.centers, op.ks


def probability_map(sequence: ADISequence, model: TrainedModel, *, batch_size: int = PredictConfig.batch_size,
                    radii_px: tuple[float, float] | None = None, progress: bool = True) -> ProbabilityMap:
    """Apply a trained model to every pixel of the sequence's annuli.

    ``radii_px=(r_min, r_max)`` restricts the work to the annuli of the partition that overlap
    ``r_min <= r < r_max`` (the pixels of those whole annuli are evaluated; the others stay 0).

    Raises
    ------
    ValueError
        If the model was trained for another patch size or number of ranks, or for a very different FWHM.
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
    for i in tqdm(chosen, desc="annuli", unit="annulus", disable=not progress):
        samples, pixels, k = annulus_feature_samples(sequence, config, annuli.r_in_px[i], annuli.r_out_px[i])
        probs = np.concatenate([model.predict(samples[s : s + batch_size]) for s in range(0, len(samples), batch_size)])
        prob[pixels[:, 0], pixels[:, 1]] = probs
        evaluated[pixels[:, 0], pixels[:, 1]] = True
        ks.append(k)
    return ProbabilityMap(probability=prob, evaluated=evaluated, edges_px=annuli.edges_px, ks=np.array(ks))
