"""Probability maps (SPEC §4): a trained model applied to every pixel of every annulus of a sequence.

The samples are built exactly as in training — the same annulus rule, patch size, number of ranks
and k policy (read from the model), residuals derotated with +PA, mean collapse, min-max
normalisation — from the real cube, with the fast exact operator of :mod:`sodinn.mlar.operator` (one PCA
basis per annulus, no frame rotated). For a model that takes S/N curves (NA-SODINN), every pixel's
curve is computed from the same residuals (:func:`sodinn.mlar.features.ring_apertures`), for the
null draws too, with the noise apertures on known sources left out as in training (issue 14).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from sodinn.adi.sequence import ADISequence
from sodinn.config import PredictConfig, SampleConfig
from sodinn.exceptions import SettingError
from sodinn.learn.artifact import TrainedModel, training_known_sources
from sodinn.mlar.features import RingApertures, ring_apertures
from sodinn.mlar.operator import AnnulusOperator
from sodinn.mlar.samples import sample_annuli

__all__ = ["UNEVALUATED_LOGIT", "AnnulusFeatures", "ProbabilityMap", "annulus_features",
           "null_angle_sets", "null_arc_mask", "probability_map"]

logger = logging.getLogger(__name__)


#: The logit given to pixels the model did not evaluate: P = expit(-1e4) = 0 exactly, and finite for blob scoring
UNEVALUATED_LOGIT = -1.0e4


@dataclass(frozen=True)
class ProbabilityMap:
    """The model's score at every evaluated pixel, as a logit and a probability, with the annuli it covers.

    Attributes
    ----------
    logit : ndarray of float64, shape (N, N)
        The model's pre-sigmoid output of each pixel's sample (:meth:`TrainedModel.predict_logits`):
        the score to rank and calibrate by, since it does not saturate; :data:`UNEVALUATED_LOGIT`
        where not evaluated.
    probability : ndarray of float64, shape (N, N)
        P(companion) = ``expit(logit)``, in [0, 1]; 0 where not evaluated.
    evaluated : ndarray of bool, shape (N, N)
        The pixels the model was applied to.
    edges_px : ndarray, shape (n_annuli + 1,)
        Boundaries of the annuli of the model's partition, px from the star.
    ks : ndarray, shape (n_evaluated_annuli, K)
        Ranks (principal components) of each evaluated annulus, in partition order.
    null_logit : ndarray of float64, shape (n_null, N, N), or None
        The logit maps of the null draws (:func:`null_angle_sets`) when asked for (``n_null > 0``);
        :data:`UNEVALUATED_LOGIT` where not evaluated and on the arcs of known sources (:func:`null_arc_mask`).
    known_sources_xy : tuple of (float, float)
        The known sources the map was made with (sky frame, px; see :func:`probability_map`).
    """

    logit: np.ndarray
    probability: np.ndarray
    evaluated: np.ndarray
    edges_px: np.ndarray
    ks: np.ndarray
    null_logit: np.ndarray | None = None
    known_sources_xy: tuple[tuple[float, float], ...] = ()


def null_angle_sets(angles_deg: np.ndarray, n_null: int, seed: int = 0) -> list[np.ndarray]:
    """Return the angles of the null draws: the negated angles, then ``n_null - 1`` random permutations.

    Residuals derotated with these angles keep the speckles' statistics while a real companion is
    smeared out (the C- rule of SPEC §3); they are the null hypothesis the calibration measures
    (:mod:`sodinn.detect.calibration`).

    Parameters
    ----------
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees.
    n_null : int
        Number of null draws (>= 0).
    seed : int
        Seeds the permutations.

    Returns
    -------
    list of ndarray, shape (n_frames,) each
        ``n_null`` angle sets, degrees.

    Raises
    ------
    TypeError
        If ``n_null`` is not an integer.
    ValueError
        If ``n_null`` is negative.
    """
    from sodinn import _validation as v

    n_null = v.check_int(n_null, name="n_null", minimum=0)
    angles = np.asarray(angles_deg, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return ([-angles] + [rng.permutation(angles) for _ in range(n_null - 1)]) if n_null else []


def null_arc_mask(shape: tuple[int, int], sources_xy: np.ndarray | list, angles_deg: np.ndarray, null_angles_deg: np.ndarray,
                  radius_px: float) -> np.ndarray:
    """Return where known sources land in a null draw: the arcs they trace when derotated with the null angles.

    A source at angle ``theta`` lies at ``theta - PA_i`` in frame ``i`` (SPEC conventions); derotated by the
    null angle ``alpha_i`` instead of ``PA_i`` it lands at ``theta - PA_i + alpha_i``. A bright source's
    smeared arc is no sample of the null hypothesis (its flux is real), so the calibration leaves these
    pixels out, as training leaves known sources out of its C- samples.

    Parameters
    ----------
    shape : (int, int)
        Frame shape ``(N, N)``.
    sources_xy : array-like, shape (n, 2)
        Known sources (x, y), px, on the frame derotated with the true angles.
    angles_deg : ndarray, shape (n_frames,)
        The true parallactic angles, degrees.
    null_angles_deg : ndarray, shape (n_frames,)
        The angles of the null draw, degrees.
    radius_px : float
        Pixels within this distance of an arc point are masked, px.

    Returns
    -------
    ndarray of bool, shape (N, N)
        True on the arcs.
    """
    from sodinn.adi.geometry import frame_center

    out = np.zeros(shape, dtype=bool)
    cy, cx = frame_center(shape)
    yy, xx = np.indices(shape)
    shift = np.deg2rad(np.asarray(null_angles_deg, dtype=np.float64) - np.asarray(angles_deg, dtype=np.float64))
    for x, y in np.asarray(sources_xy, dtype=np.float64).reshape(-1, 2):
        r, theta = np.hypot(x - cx, y - cy), np.arctan2(y - cy, x - cx)
        px, py = cx + r * np.cos(theta + shift), cy + r * np.sin(theta + shift)
        for ax, ay in zip(px, py, strict=True):
            out |= (xx - ax) ** 2 + (yy - ay) ** 2 <= radius_px**2
    return out


@dataclass(frozen=True)
class AnnulusFeatures:
    """What a model sees of every pixel of one annulus (see :func:`annulus_features`).

    Attributes
    ----------
    samples : ndarray, shape (n_pixels, K, P, P)
        The MLAR sample centred on each pixel (+PA), not normalised.
    pixels : ndarray of int, shape (n_pixels, 2)
        The (y, x) pixel of each sample.
    ks : ndarray of int, shape (K,)
        The ranks of the annulus.
    snr_curves : ndarray of float64, shape (n_pixels, K), or None
        Each pixel's S/N at each rank on the same residual frames, when asked for.
    null_samples : list of ndarray, shape (n_pixels, K, P, P) each
        The samples of each null draw (empty without null draws).
    null_snr_curves : list of ndarray, shape (n_pixels, K) each
        Their S/N curves, when asked for (else empty).
    """

    samples: np.ndarray
    pixels: np.ndarray
    ks: np.ndarray
    snr_curves: np.ndarray | None = None
    null_samples: list[np.ndarray] = field(default_factory=list)
    null_snr_curves: list[np.ndarray] = field(default_factory=list)


def annulus_features(
    sequence: ADISequence, config: SampleConfig, r_in_px: float, r_out_px: float,
    *, null_angles: list[np.ndarray] | tuple[np.ndarray, ...] = (), snr_curves: bool = False,
    known_sources_xy: npt.ArrayLike = (),
) -> AnnulusFeatures:
    """Build the samples (and S/N curves) of every pixel of an annulus from the real cube (+PA, no injection).

    The curves are those of :func:`sodinn.mlar.features.snr_curves` on the residual frames the
    samples are cut from (NA-SODINN, Cantero et al. 2023, A&A 680, A86), as in training: the noise
    apertures centred within ``config.mask_radius_fwhm`` FWHM of a known source are left out.

    Parameters
    ----------
    sequence : ADISequence
        The data.
    config : SampleConfig
        Sample settings (patch size, number of ranks, k policy), normally the model's.
    r_in_px, r_out_px : float
        Inner and outer radius of the annulus, px.
    null_angles : sequence of ndarray, shape (n_frames,) each
        Also build the samples of the same pixels with the residuals derotated by each of these angle
        sets (:func:`null_angle_sets`), from the same PCA basis (it does not depend on the angles).
    snr_curves : bool
        Also compute every sample's S/N curve (for a model that takes them).
    known_sources_xy : array-like, shape (m, 2)
        Known sources (x, y) in the sky frame, px, left out of the curves' noise apertures.

    Returns
    -------
    AnnulusFeatures
        Samples, pixels, ranks, and the curves and null draws asked for.

    Raises
    ------
    ValueError
        If ``config.k_list`` asks for more ranks than the sequence has frames, the annulus does not fit
        in ``config.memory_budget_gib``, or fewer than 2 noise apertures of a curve remain outside the
        known sources (a :class:`~sodinn.exceptions.SettingError` naming ``known_sources_xy``).
    """
    cube = np.asarray(sequence.cube)
    with threadpool_limits(limits=1, user_api="blas"):
        op = AnnulusOperator(cube, sequence.angles_deg, r_in_px, r_out_px, config, np.ones(cube.shape[1:], dtype=bool))
        basis = op.basis(op.m_ext)
        every = np.arange(len(op.centers))
        rings = _rings(op, every, sequence.fwhm_px, config, known_sources_xy) if snr_curves else None
        values = op.residual_means(op.m_ext, basis, op.plus)
        null_samples, null_curves = [], []
        for angles in null_angles:
            null_values = op.residual_means(op.m_ext, basis, np.asarray(angles, dtype=np.float64))
            null_samples.append(op.patches(null_values, every))
            if rings is not None:
                null_curves.append(rings.curves_from_union(null_values))
    return AnnulusFeatures(samples=op.patches(values, every), pixels=op.centers, ks=op.ks,
                           snr_curves=None if rings is None else rings.curves_from_union(values),
                           null_samples=null_samples, null_snr_curves=null_curves)


def _rings(op: AnnulusOperator, every: np.ndarray, fwhm_px: float, config: SampleConfig, known_sources_xy: npt.ArrayLike) -> RingApertures:
    try:
        return ring_apertures(op, every, fwhm_px, exclude_xy=known_sources_xy,
                              exclude_radius_px=config.mask_radius_fwhm * fwhm_px)
    except SettingError as err:
        reason = err.template.partition(" Lower ")[0]
        raise SettingError(f"{reason} (the exclusion is the model's mask_radius_fwhm, {config.mask_radius_fwhm:g} FWHM); "
                           "leave the source out of {known_sources_xy}, or evaluate other separations",
                           known_sources_xy=None) from None


def _logits(model: TrainedModel, samples: np.ndarray, curves: np.ndarray | None, batch_size: int) -> np.ndarray:
    return np.concatenate([model.predict_logits(samples[s : s + batch_size], None if curves is None else curves[s : s + batch_size])
                           for s in range(0, len(samples), batch_size)])


def probability_map(sequence: ADISequence, model: TrainedModel, *, batch_size: int = PredictConfig.batch_size,
                    radii_px: tuple[float, float] | None = None, progress: bool = True, n_null: int = 0,
                    seed: int = 0, known_sources_xy: np.ndarray | list | tuple = ()) -> ProbabilityMap:
    """Apply a trained model to every pixel of the sequence's annuli (SPEC §4), and to null draws if asked.

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
    n_null : int
        Also score ``n_null`` null draws of every pixel (:func:`null_angle_sets`; the samples share each
        annulus's PCA basis with the real ones), for :func:`sodinn.detect.calibration.calibrate_nulls`.
        Each draw costs about as much as the map itself.
    seed : int
        Seeds the null draws' angle permutations.
    known_sources_xy : array-like, shape (n, 2)
        Known real sources (x, y) in the sky frame, px. They are left out of the null draws along the
        arcs they trace there (:func:`null_arc_mask`, 1 FWHM wide; :data:`UNEVALUATED_LOGIT`) and, for a
        model that takes S/N curves, out of the curves' noise apertures (those centred within the
        model's ``mask_radius_fwhm`` FWHM of them, as its training samples and the S/N oracle do).
        Empty (the default): the sources masked in the model's training samples if ``sequence`` is
        the model's training data (same files' SHA-256 and north offset,
        :func:`sodinn.learn.artifact.training_known_sources`), else none. Given: exactly these, for
        both uses (pass the model's own ones too if they are on these data).

    Returns
    -------
    ProbabilityMap
        The logit and P(companion) at every evaluated pixel, shape (N, N), and the null logits.

    Raises
    ------
    ValueError
        If the model was trained on data of a very different FWHM, no annulus of the model's sample
        settings fits in the frames, ``n_null`` is negative, or fewer than 2 noise apertures of an
        S/N curve remain outside the known sources.

    See Also
    --------
    sodinn.detect.candidates.find_candidates : Threshold the map into a table of candidates.
    sodinn.detect.calibration.calibrate : Give a score a meaning in false positives per frame.
    """
    from scipy.special import expit
    from tqdm.auto import tqdm

    config = model.sample_config
    model.check_compatible(sequence.fwhm_px, config)
    given = np.asarray(known_sources_xy, dtype=np.float64).reshape(-1, 2)
    sources = ([tuple(map(float, xy)) for xy in given] if given.size
               else [tuple(map(float, xy)) for xy in training_known_sources(model.metadata, sequence)])
    null_angles = null_angle_sets(sequence.angles_deg, n_null, seed)
    annuli = sample_annuli(sequence, config)
    size = sequence.frame_size
    logit = np.full((size, size), UNEVALUATED_LOGIT)
    nulls = np.full((len(null_angles), size, size), UNEVALUATED_LOGIT)
    evaluated = np.zeros((size, size), dtype=bool)
    ks = []
    chosen = list(range(len(annuli)))
    if radii_px is not None:
        lo, hi = float(radii_px[0]), float(radii_px[1])
        chosen = [i for i in chosen if annuli.r_out_px[i] > lo and annuli.r_in_px[i] < hi]
    for i in tqdm(chosen, desc="annuli", unit="annulus", disable=None if progress else True):
        built = annulus_features(sequence, config, annuli.r_in_px[i], annuli.r_out_px[i], null_angles=null_angles,
                                 snr_curves=model.needs_snr_curves, known_sources_xy=sources)
        rows, cols = built.pixels[:, 0], built.pixels[:, 1]
        logit[rows, cols] = _logits(model, built.samples, built.snr_curves, batch_size)
        for j, null_samples in enumerate(built.null_samples):
            null_curves = built.null_snr_curves[j] if model.needs_snr_curves else None
            nulls[j, rows, cols] = _logits(model, null_samples, null_curves, batch_size)
        evaluated[rows, cols] = True
        ks.append(built.ks)
    for j, angles in enumerate(null_angles):
        if sources:
            arcs = null_arc_mask((size, size), sources, sequence.angles_deg, angles, sequence.fwhm_px)
            nulls[j][arcs] = UNEVALUATED_LOGIT
    return ProbabilityMap(logit=logit, probability=np.where(evaluated, expit(logit), 0.0), evaluated=evaluated,
                          edges_px=annuli.edges_px, ks=np.array(ks), null_logit=nulls if null_angles else None,
                          known_sources_xy=tuple(sources))
