"""Labeled MLAR samples (SPEC §2-3): positives with an injected companion, negatives of speckle.

A sample is the ``(K, P, P)`` stack of PCA residual patches at K ranks around one pixel.

- **C- (negatives)**: the real cube, residuals derotated with **-PA** (real companions smeared),
  one sample per usable pixel of the annulus.
- **C+ (positives)**: one fake companion (normalised PSF x flux, at a random pixel of the annulus
  plus a sub-pixel jitter) injected into the cube, the PCA basis recomputed on the injected cube,
  residuals derotated with **+PA**, patch centred on the companion's pixel.

The numbers come from the exact fast operator of :mod:`sodinn.mlar.operator` (no frame is rotated);
augmented C- samples from :mod:`sodinn.mlar.augmentation`; the flux range of C+ companions from the
S/N oracle (:mod:`sodinn.mlar.flux`). :func:`make_samples` makes a set in memory; the HDF5 store
(:func:`sodinn.mlar.store.generate_sample_file`) makes the same set annulus by annulus, resumably,
through :func:`plan_samples` and :func:`iter_annulus_samples`.

Samples are normalised when read, per k-slice to [0, 1] by their true minimum and maximum
(:func:`minmax_normalize`); :data:`NORMALIZATION` names that rule, and model folders record it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sodinn import _validation as v
from sodinn._platform import platform_record
from sodinn._version import __version__
from sodinn.adi.baselines import annular_ncomp_limit
from sodinn.adi.geometry import Annuli, frame_center
from sodinn.adi.psf import crop_psf
from sodinn.adi.sequence import ADISequence
from sodinn.config import SampleConfig
from sodinn.exceptions import SettingError
from sodinn.mlar.augmentation import augment_samples
from sodinn.mlar.features import RingApertures, ring_apertures
from sodinn.mlar.operator import AnnulusGeometry, AnnulusOperator, single_blas_thread

__all__ = [
    "NORMALIZATION",
    "AnnulusSamples",
    "MLARSamples",
    "SamplePlan",
    "annulus_samples",
    "fit_flux_ranges",
    "iter_annulus_samples",
    "make_samples",
    "minmax_normalize",
    "plan_samples",
    "positive_samples",
    "sample_annuli",
    "sample_psf",
    "usable_mask",
]

logger = logging.getLogger(__name__)

_ORACLE_KEY = 1_000_000  # spawn key of the S/N oracle's random stream
_POS, _NEG = 1, 2  # spawn keys of C+ samples and C- subsets (augmented samples: augmentation.AUGMENT_KEY)

#: How samples are normalised before a model sees them (:func:`minmax_normalize`); model folders record it
NORMALIZATION = "minmax-per-rank/1"


@dataclass(frozen=True)
class AnnulusSamples:
    """The samples of one annulus (arrays share the first axis).

    Attributes
    ----------
    index : int
        Annulus number in the partition.
    r_in_px, r_out_px : float
        Radii of the annulus ``r_in_px <= r < r_out_px``, px.
    ks : ndarray of int, shape (K,)
        PCA ranks of the slices.
    flux_range : (float, float)
        Flux bounds of the C+ companions.
    samples : ndarray of float32, shape (n, K, P, P)
        Raw residual patches (normalise with :func:`minmax_normalize`).
    labels : ndarray of int8, shape (n,)
        1 for C+, 0 for C-.
    x, y : ndarray of float64, shape (n,)
        Sample position in the sky frame: the injected companion (C+) or the pixel (C-).
    flux : ndarray of float64, shape (n,)
        Injected flux (0 for C-).
    group : ndarray of int64, shape (n,)
        Split unit: C+ injection id (>= 0); C- azimuthal sector (< 0); augmented copies share
        their source's group.
    augmented : ndarray of bool, shape (n,)
        True for augmented C- samples (:func:`sodinn.mlar.augmentation.augment_samples`).
    snr_curves : ndarray of float32, shape (n, K), or None
        S/N (Mawet et al. 2014, negative lobes kept, noise apertures within ``mask_radius_fwhm`` FWHM of
        a known source dropped) of every sample at its centre pixel at each rank, on the residual
        frames its patches come from (:data:`sodinn.mlar.features.SNR_CURVES`); an
        augmented C- sample has its source's. None for sets made before S/N curves existed.
    """

    index: int
    r_in_px: float
    r_out_px: float
    ks: np.ndarray
    flux_range: tuple[float, float]
    samples: np.ndarray
    labels: np.ndarray
    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    group: np.ndarray
    augmented: np.ndarray
    snr_curves: np.ndarray | None = None


@dataclass(frozen=True)
class MLARSamples:
    """A labeled sample set: the annuli's samples in annulus order, plus how they were made.

    The samples, labels and annulus of every sample are concatenated on demand (properties
    ``samples``, ``labels``, ``annulus``); ``len()`` is the number of samples.

    Attributes
    ----------
    annuli : tuple of AnnulusSamples
        The samples of every annulus, in annulus order.
    config : SampleConfig
        The settings that made them.
    provenance : dict
        sodinn version, configuration digest, seed and the sequence's description (:class:`SamplePlan`).
    oracle : dict
        The S/N oracle's table (:func:`fit_flux_ranges`); empty when the flux ranges were given.
    """

    annuli: tuple[AnnulusSamples, ...]
    config: SampleConfig
    provenance: dict[str, Any] = field(default_factory=dict)
    oracle: dict[str, Any] = field(default_factory=dict)

    def _cat(self, name: str) -> np.ndarray:
        return np.concatenate([getattr(a, name) for a in self.annuli])

    @property
    def samples(self) -> np.ndarray:
        """All samples, shape (n, K, P, P), float32."""
        return self._cat("samples")

    @property
    def labels(self) -> np.ndarray:
        """Labels, shape (n,)."""
        return self._cat("labels")

    @property
    def snr_curves(self) -> np.ndarray:
        """All S/N curves, shape (n, K), float32 (see :attr:`AnnulusSamples.snr_curves`)."""
        return self._cat("snr_curves")

    @property
    def annulus(self) -> np.ndarray:
        """Annulus index of every sample."""
        return np.concatenate([np.full(len(a.labels), a.index, dtype=np.int16) for a in self.annuli])

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(sum(len(a.labels) for a in self.annuli))


def minmax_normalize(samples: np.ndarray) -> np.ndarray:
    """Scale every k-slice of every sample to [0, 1] by its true min and max; constant slices -> 0.

    The normalisation of SPEC §3, named by :data:`NORMALIZATION`; applied when samples are read,
    never stored.

    Parameters
    ----------
    samples : array-like, shape (..., P, P)
        Raw residual patches, e.g. (n, K, P, P); the last two axes are one k-slice.

    Returns
    -------
    ndarray of float32, shape (..., P, P)
        A normalised copy.

    Examples
    --------
    >>> minmax_normalize(np.array([[[0.0, 2.0], [4.0, 4.0]], [[3.0, 3.0], [3.0, 3.0]]]))
    array([[[0. , 0.5],
            [1. , 1. ]],
    <BLANKLINE>
           [[0. , 0. ],
            [0. , 0. ]]], dtype=float32)
    """
    arr = np.asarray(samples, dtype=np.float32)
    lo = arr.min(axis=(-2, -1), keepdims=True)
    span = arr.max(axis=(-2, -1), keepdims=True) - lo
    return np.where(span > 0, (arr - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def sample_psf(sequence: ADISequence, config: SampleConfig) -> np.ndarray:
    """Return the normalised PSF used for injections, cropped to ``config.psf_size_px`` (default ~4 FWHM).

    The default side is ``2 ceil(2 FWHM) + 1`` px; a side of the wrong parity for the PSF stamp is
    made one larger, and the stamp is never enlarged.

    Parameters
    ----------
    sequence : ADISequence
        Gives the PSF (normalised: flux 1 in a 1-FWHM aperture, SPEC §1) and the FWHM, px.
    config : SampleConfig
        Gives ``psf_size_px``.

    Returns
    -------
    ndarray, shape (p, p)
        The cropped normalised PSF.
    """
    psf = sequence.psf_normalized
    size = config.psf_size_px or 2 * math.ceil(2 * sequence.fwhm_px) + 1
    if (psf.shape[0] - size) % 2:
        size += 1
    return crop_psf(psf, min(size, psf.shape[0])) if size < psf.shape[0] else psf


def sample_annuli(sequence: ADISequence, config: SampleConfig) -> Annuli:
    """Return the 1-FWHM annuli of sample generation and prediction (SPEC §3).

    From ``r_in_fwhm`` FWHM outwards, as far as the SVD region widened by ``ceil(P/2) + 1`` px stays
    inside the frame (or ``r_out_fwhm``).

    Parameters
    ----------
    sequence : ADISequence
        Gives the frame size and the FWHM, px.
    config : SampleConfig
        Gives ``patch_px``, ``r_in_fwhm`` and ``r_out_fwhm``.

    Returns
    -------
    Annuli
        Contiguous annuli, each 1 FWHM wide.

    Raises
    ------
    ValueError
        If the patch is smaller than 2 FWHM, ``r_out_fwhm`` puts the widened SVD region outside
        the frame, or no annulus fits.
    """
    fwhm = sequence.fwhm_px
    if config.patch_px < 2 * fwhm:
        raise SettingError(f"a patch of {config.patch_px} px is smaller than 2 FWHM ({2 * fwhm:.1f} px); set "
                           "{patch_px} (an odd size, at least 2 FWHM)", patch_px=2 * math.ceil(fwhm) + 1)
    margin = math.ceil(config.patch_px / 2) + 1
    limit: float = sequence.frame_size // 2 - margin
    if config.r_out_fwhm is not None:
        if config.r_out_fwhm * fwhm > limit:
            raise SettingError(f"an outer radius of {config.r_out_fwhm:g} FWHM ({config.r_out_fwhm * fwhm:.1f} px) puts the "
                               f"widened SVD region outside the frame with {config.patch_px} px patches; set {{r_out_fwhm}} "
                               "or a smaller {patch_px}", r_out_fwhm=math.floor(100 * limit / fwhm) / 100, patch_px=None)
        limit = config.r_out_fwhm * fwhm
    r_in = config.r_in_fwhm * fwhm
    n = int(math.floor((limit - r_in) / fwhm + 1e-9))
    if n < 1:
        raise SettingError(f"no 1-FWHM annulus fits between {r_in:.1f} px and {limit:.1f} px in {sequence.frame_size}x"
                           f"{sequence.frame_size} px frames with {config.patch_px} px patches; lower {{r_in_fwhm}} or "
                           "{patch_px}", r_in_fwhm=None, patch_px=None)
    return Annuli(shape=(sequence.frame_size, sequence.frame_size), edges_px=r_in + fwhm * np.arange(n + 1))


def annulus_samples(
    sequence: ADISequence,
    config: SampleConfig,
    index: int,
    r_in_px: float,
    r_out_px: float,
    flux_range: tuple[float, float],
    *,
    psf: np.ndarray | None = None,
) -> AnnulusSamples:
    """Make the C+ and C- samples of one annulus (balanced), deterministic from ``config.seed`` and ``index``.

    C- samples: every usable pixel of the annulus (a random subset of ``samples_per_annulus`` of
    them, or augmented copies to reach it), residuals derotated with -PA. C+ samples, as many: one
    companion each, at a random usable pixel plus a jitter of up to ``jitter_px``, with a flux drawn
    from ``flux_range``, the PCA basis recomputed on the injected cube, residuals derotated with +PA
    (SPEC §2-3; Gomez Gonzalez et al. 2018, A&A 613, A71). Computed with one BLAS thread.

    Parameters
    ----------
    sequence : ADISequence
        The ADI sequence.
    config : SampleConfig
        Sample settings (patch, ranks, fluxes, augmentation, known sources, seed, memory budget).
    index : int
        Annulus number in the partition (:func:`sample_annuli`); keys the random streams.
    r_in_px, r_out_px : float
        Radii of the annulus ``r_in_px <= r < r_out_px``, px.
    flux_range : (float, float)
        Bounds of the C+ fluxes, cube units times the normalised PSF (:func:`fit_flux_ranges`).
    psf : ndarray, shape (p, p), optional
        Normalised PSF of the injections (default :func:`sample_psf`); recentred if its centroid is
        off by more than 0.03 px, refused beyond the limit of :mod:`sodinn.adi.psf`.

    Returns
    -------
    AnnulusSamples
        C+ samples first, then C-.

    Raises
    ------
    ValueError
        If no pixel of the annulus is left after masking known sources, ``config.k_list`` goes
        beyond the number of frames, or the memory budget is too small.
    """
    psf = None if psf is None else v.check_psf(psf, frame_size=sequence.frame_size)
    with single_blas_thread():
        return _annulus_samples(sequence, config, index, r_in_px, r_out_px, flux_range, psf)


def _annulus_samples(sequence, config, index, r_in, r_out, flux_range, psf) -> AnnulusSamples:
    cube = np.asarray(sequence.cube)
    angles = sequence.angles_deg
    psf = sample_psf(sequence, config) if psf is None else psf
    usable = usable_mask(sequence, config)
    op = AnnulusOperator(cube, angles, r_in, r_out, config, usable, psf_px=psf.shape[0])
    centres = np.nonzero(op.usable)[0]  # rows of op.centers
    if centres.size == 0:
        msg = f"annulus {index} ({r_in:.1f}-{r_out:.1f} px) has no pixel left after masking known sources"
        raise ValueError(msg)

    # ---- C-: every usable pixel, residuals derotated with -PA
    u = op.basis(op.m_ext)
    neg_values = op.residual_means(op.m_ext, u, op.minus)
    target = config.samples_per_annulus or centres.size
    rng_neg = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(index, _NEG)))
    neg_idx = np.sort(rng_neg.choice(centres, target, replace=False)) if target < centres.size else centres
    neg = op.patches(neg_values, neg_idx)
    # the S/N curves leave known sources out of their noise apertures, as the S/N oracle does (issue 14)
    neg_curves = _rings(op, neg_idx, sequence, config, index).curves_from_union(neg_values)
    ny, nx = op.centers[neg_idx, 0].astype(np.float64), op.centers[neg_idx, 1].astype(np.float64)
    neg_group = _negative_groups(index, r_in, r_out, config.patch_px, nx, ny, cube.shape)
    neg_aug = np.zeros(len(neg_idx), dtype=bool)
    if target > len(neg_idx):
        if not config.augment:
            logger.warning("annulus %d: %d usable pixels < samples_per_annulus=%d; set augment=true to fill",
                           index, len(neg_idx), target)
        else:
            extra = augment_samples(neg, neg_group, target - len(neg_idx), config.seed, index)
            neg = np.concatenate([neg, extra[0]])
            neg_curves = np.concatenate([neg_curves, neg_curves[extra[1]]])
            ny, nx = np.r_[ny, ny[extra[1]]], np.r_[nx, nx[extra[1]]]
            neg_group = np.r_[neg_group, neg_group[extra[1]]]
            neg_aug = np.r_[neg_aug, np.ones(len(extra[1]), dtype=bool)]
    n_pos = len(neg)

    # ---- C+: one injection per sample, basis recomputed on the injected region
    px_, py_, flux = np.empty(n_pos), np.empty(n_pos), np.empty(n_pos)
    row_of = {int(c[0]) * op.size + int(c[1]): i for i, c in enumerate(op.centers)}
    lo, hi = flux_range
    for i in range(n_pos):
        rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(index, _POS, i)))
        c = int(rng.choice(centres))
        jx, jy = rng.uniform(-config.jitter_px, config.jitter_px, 2)
        f = rng.uniform(lo, hi) if config.flux_distribution == "uniform" else math.exp(rng.uniform(math.log(lo), math.log(hi)))
        px_[i], py_[i], flux[i] = op.centers[c, 1] + jx, op.centers[c, 0] + jy, f
    pos_centres = np.array([row_of[int(round(b)) * op.size + int(round(a))] for a, b in zip(px_, py_)], dtype=np.int64)
    rings = _rings(op, pos_centres, sequence, config, index)
    pos, ring_values = op.positive_values(psf, px_, py_, flux, rings.rows)
    pos_curves = rings.curves_from_rows(ring_values)
    samples = np.concatenate([pos, neg]).astype(np.float32)
    labels = np.r_[np.ones(n_pos, dtype=np.int8), np.zeros(len(neg), dtype=np.int8)]
    return AnnulusSamples(
        index=index, r_in_px=float(r_in), r_out_px=float(r_out), ks=op.ks, flux_range=(float(lo), float(hi)),
        samples=samples, labels=labels, x=np.r_[px_, nx], y=np.r_[py_, ny], flux=np.r_[flux, np.zeros(len(neg))],
        group=np.r_[index * 1_000_000 + np.arange(n_pos, dtype=np.int64), neg_group].astype(np.int64),
        augmented=np.r_[np.zeros(n_pos, dtype=bool), neg_aug],
        snr_curves=np.concatenate([pos_curves, neg_curves]).astype(np.float32),
    )


def _negative_groups(index: int, r_in: float, r_out: float, patch_px: int, x: np.ndarray, y: np.ndarray,
                     shape: tuple[int, ...]) -> np.ndarray:
    """Return the split group of C- samples at (x, y) in annulus ``index``: its azimuthal sector, about two patches wide, negated."""
    cy, cx = frame_center(shape)
    n_sectors = max(1, int(2 * np.pi * 0.5 * (r_in + r_out) / (2 * patch_px)))
    sector = (np.floor((np.degrees(np.arctan2(y - cy, x - cx)) % 360) / (360 / n_sectors))).astype(np.int64)
    return -(index * 10_000 + sector + 1)


def _rings(op: AnnulusOperator, idx: np.ndarray, sequence: ADISequence, config: SampleConfig, index: int) -> RingApertures:
    """Place the S/N apertures of samples, dropping noise apertures on ``config.known_sources_xy`` as the oracle does."""
    try:
        return ring_apertures(op, idx, sequence.fwhm_px, exclude_xy=config.known_sources_xy,
                              exclude_radius_px=config.mask_radius_fwhm * sequence.fwhm_px)
    except SettingError as err:
        raise err.renamed(exclude_radius_px="mask_radius_fwhm").prefixed(f"annulus {index}") from None


def positive_samples(
    sequence: ADISequence,
    config: SampleConfig,
    r_in_px: float,
    r_out_px: float,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    *,
    psf: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Make C+ samples for companions at given sky positions and fluxes in the annulus ``[r_in_px, r_out_px)``.

    The patch of each sample is centred on the pixel nearest to its companion, which must lie in the
    annulus; the basis is recomputed on each injected cube (SPEC §2-3; Gomez Gonzalez et al. 2018,
    A&A 613, A71). Known sources are not masked.

    Parameters
    ----------
    sequence : ADISequence
        The ADI sequence.
    config : SampleConfig
        Sample settings (patch, ranks, memory budget).
    r_in_px, r_out_px : float
        Radii of the annulus, px.
    x, y : array-like, shape (n,)
        Companion positions in the sky frame, px (scalars are taken as n = 1).
    flux : array-like, shape (n,)
        Companion fluxes, cube units times the normalised PSF.
    psf : ndarray, shape (p, p), optional
        Normalised PSF of the injections (default :func:`sample_psf`); recentred if its centroid is
        off by more than 0.03 px, refused beyond the limit of :mod:`sodinn.adi.psf`.

    Returns
    -------
    samples : ndarray of float64, shape (n, K, P, P)
        Raw residual patches, derotated with +PA.
    ks : ndarray of int64, shape (K,)
        Their PCA ranks.

    Raises
    ------
    ValueError
        If a position's nearest pixel is not in the annulus, ``config.k_list`` goes beyond the
        number of frames, or the memory budget is too small.
    """
    x, y, flux = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (x, y, flux))
    cube = np.asarray(sequence.cube)
    psf = sample_psf(sequence, config) if psf is None else v.check_psf(psf, frame_size=sequence.frame_size)
    with single_blas_thread():
        op = AnnulusOperator(cube, sequence.angles_deg, r_in_px, r_out_px, config, np.ones(cube.shape[1:], dtype=bool),
                              psf_px=psf.shape[0])
        return op.positive_samples(psf, x, y, flux), op.ks


def usable_mask(sequence: ADISequence, config: SampleConfig) -> np.ndarray:
    """Pixels allowed as sample centres: those farther than ``mask_radius_fwhm`` FWHM from every known source.

    Parameters
    ----------
    sequence : ADISequence
    config : SampleConfig
        Its ``known_sources_xy`` (sky frame, px) and ``mask_radius_fwhm``.

    Returns
    -------
    ndarray of bool, shape (N, N)
    """
    size = sequence.frame_size
    yy, xx = np.indices((size, size))
    ok = np.ones((size, size), dtype=bool)
    radius = config.mask_radius_fwhm * sequence.fwhm_px
    for sx, sy in config.known_sources_xy:
        ok &= np.hypot(xx - sx, yy - sy) > radius
    return ok


def fit_flux_ranges(sequence: ADISequence, config: SampleConfig, annuli: Annuli, psf: np.ndarray) -> dict[str, Any]:
    """Run the S/N oracle at the annulus centres; return its table (JSON-able) with the flux ranges.

    For each annulus, the fluxes that give ``config.snr_range`` in an annular PCA-ADI reduction
    (SPEC §3; :class:`sodinn.mlar.flux.FluxRangeEstimator`), seeded from ``config.seed``.

    Parameters
    ----------
    sequence : ADISequence
        The ADI sequence.
    config : SampleConfig
        Gives ``snr_range``, ``oracle_ncomp``, ``oracle_azimuths``, the known sources and the seed.
    annuli : Annuli
        The annuli (:func:`sample_annuli`); the oracle runs at their mid radii.
    psf : ndarray, shape (p, p)
        Normalised PSF of the injections (recentred if off-centre, see
        :class:`~sodinn.mlar.flux.FluxRangeEstimator`).

    Returns
    -------
    dict
        Lists: ``radii_px`` (n_annuli,), ``flux_range`` (n_annuli, 2), ``fluxes`` (n_annuli,
        n_levels), ``snrs`` (n_annuli, n_levels, n_azimuths), ``snr_curve`` (n_annuli, n_levels),
        ``noise_px`` (n_annuli,), ``azimuths_deg`` (n_annuli, n_azimuths), and how known sources were
        kept out: ``known_sources_xy``, ``exclusion_px`` (``mask_radius_fwhm`` times the FWHM),
        ``exclude_negative_lobes`` and ``method_version``; see :class:`~sodinn.mlar.flux.FluxRangeEstimator`.

    Raises
    ------
    SettingError
        Naming ``mask_radius_fwhm``, if an annulus has no azimuth (or too few noise apertures) outside
        the masks of the known sources.
    """
    from sodinn.mlar.flux import FluxRangeEstimator

    radii = 0.5 * (annuli.r_in_px + annuli.r_out_px)
    exclusion_px = config.mask_radius_fwhm * sequence.fwhm_px
    est = FluxRangeEstimator(
        config.snr_range, ncomp=min(config.oracle_ncomp, sequence.n_frames - 2), n_azimuths=config.oracle_azimuths,
        rng=np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_ORACLE_KEY,))),
    )
    try:
        est.fit(sequence.cube, sequence.angles_deg, psf, sequence.fwhm_px, radii, exclude_xy=config.known_sources_xy,
                exclude_radius_px=exclusion_px)
    except SettingError as err:  # the estimator names its parameter; here the setting is mask_radius_fwhm
        raise SettingError(err.template.replace("{exclude_radius_px}", "{mask_radius_fwhm}"), mask_radius_fwhm=None) from None
    return {
        "radii_px": radii.tolist(),
        "flux_range": est.flux_range_.tolist(),
        "fluxes": est.fluxes_.tolist(),
        "snrs": est.snrs_.tolist(),
        "snr_curve": est.snr_curve_.tolist(),
        "noise_px": est.noise_px_.tolist(),
        "azimuths_deg": est.azimuths_deg_.tolist(),
        "known_sources_xy": [list(xy) for xy in config.known_sources_xy],
        "exclusion_px": exclusion_px,
        "exclude_negative_lobes": est.exclude_negative_lobes,
        "method_version": est.method_version,
    }


@dataclass(frozen=True)
class SamplePlan:
    """What making a sample set needs, fixed before any work (see :func:`plan_samples`).

    Attributes
    ----------
    annuli : Annuli
        The 1-FWHM annuli of the set (:func:`sample_annuli`).
    psf : ndarray, shape (p, p)
        The normalised PSF of the injections (:func:`sample_psf`).
    provenance : dict
        sodinn version, configuration digest, seed and the sequence's description, for the files.
    """

    annuli: Annuli
    psf: np.ndarray
    provenance: dict[str, Any]


def plan_samples(sequence: ADISequence, config: SampleConfig) -> SamplePlan:
    """Check that a sample set can be made, and fix its annuli and injection PSF, before any work.

    Parameters
    ----------
    sequence : ADISequence
        The ADI sequence.
    config : SampleConfig
        Sample settings.

    Returns
    -------
    SamplePlan
        Annuli, injection PSF and provenance of the set.

    Raises
    ------
    TypeError
        If ``sequence`` is not an :class:`~sodinn.adi.sequence.ADISequence`.
    ValueError
        If a known source lies outside the frame (a :class:`~sodinn.exceptions.SettingError` naming
        ``known_sources_xy``), the patch is smaller than 2 FWHM, no annulus fits, ``n_ranks`` needs
        more frames, a ``k_list`` rank reaches the number of frames, ``oracle_ncomp`` (at most
        ``n_frames - 2``) is more than the S/N oracle's annular PCA-ADI can use on these angles (see
        :func:`sodinn.adi.baselines.annular_ncomp_limit`), or an annulus cannot be made within
        ``config.memory_budget_gib``.
    """
    if not isinstance(sequence, ADISequence):
        msg = f"sequence must be an ADISequence; got {type(sequence).__name__}"
        raise TypeError(msg)
    v.check_sources_in_frame(config, sequence.frame_size)
    annuli = sample_annuli(sequence, config)
    if config.n_ranks > sequence.n_frames - 1:
        raise SettingError(f"{config.n_ranks} PCA ranks need more frames: the sequence has {sequence.n_frames}, which "
                           "allow at most n_frames - 1 ranks; set {n_ranks}", n_ranks=sequence.n_frames - 1)
    if config.k_policy == "fixed" and max(config.k_list) >= sequence.n_frames:
        raise SettingError(f"the ranks of k_list go up to {max(config.k_list)} but {sequence.n_frames} frames hold rank "
                           f"{sequence.n_frames}: the residuals would be round-off; keep {{k_list}} below "
                           f"{sequence.n_frames}", k_list=None)
    oracle_ncomp = min(config.oracle_ncomp, sequence.n_frames - 2)
    limit, why = annular_ncomp_limit(sequence.angles_deg, sequence.fwhm_px, sequence.frame_size)
    if oracle_ncomp > limit:
        usable = "set {oracle_ncomp}" if limit >= 1 else "no {oracle_ncomp} is usable: the field rotates too little"
        raise SettingError(f"the S/N oracle's annular PCA-ADI is set to {config.oracle_ncomp} components; it can use "
                           f"{oracle_ncomp} only if the data allow it, and {why}; " + usable,
                           oracle_ncomp=limit if limit >= 1 else None)
    psf = sample_psf(sequence, config)
    for i in range(len(annuli)):
        geometry = AnnulusGeometry(sequence.frame_size, float(annuli.r_in_px[i]), float(annuli.r_out_px[i]), config.patch_px)
        try:
            geometry.plan(config, sequence.n_frames, psf.shape[0])
        except SettingError as err:
            raise err.prefixed(f"annulus {i} ({annuli.r_in_px[i]:.1f}-{annuli.r_out_px[i]:.1f} px)") from None
        except ValueError as err:
            msg = f"annulus {i} ({annuli.r_in_px[i]:.1f}-{annuli.r_out_px[i]:.1f} px): {err}"
            raise ValueError(msg) from None
    provenance = {"sodinn_version": __version__, "config_sha256": config.digest(), "seed": config.seed,
                  "sequence": sequence.describe(), "platform": platform_record()}
    return SamplePlan(annuli=annuli, psf=psf, provenance=provenance)


def iter_annulus_samples(
    sequence: ADISequence,
    config: SampleConfig,
    plan: SamplePlan,
    flux_ranges: np.ndarray,
    *,
    indices: Iterable[int] | None = None,
    n_jobs: int | None = None,
) -> Iterator[AnnulusSamples]:
    """Yield the samples of the annuli ``indices`` (default: all), in that order, computed as engine jobs.

    Parameters
    ----------
    sequence : ADISequence
        The ADI sequence.
    config : SampleConfig
        Sample settings.
    plan : SamplePlan
        From :func:`plan_samples` (the same sequence and configuration).
    flux_ranges : ndarray, shape (n_annuli, 2)
        Flux bounds of the C+ companions of every annulus.
    indices : iterable of int, optional
        Annulus numbers to make (default: all, in order).
    n_jobs : int, optional
        Worker processes (default: all cores; the default scheduler of :func:`sodinn.engine.use_scheduler`
        applies). The samples do not depend on it.

    Yields
    ------
    AnnulusSamples
        One annulus's samples (:func:`annulus_samples`), in the order of ``indices``.
    """
    from sodinn.engine import iter_jobs

    annuli = plan.annuli
    chosen = range(len(annuli)) if indices is None else list(indices)
    jobs = [(sequence, config, i, float(annuli.r_in_px[i]), float(annuli.r_out_px[i]), tuple(flux_ranges[i]), plan.psf)
            for i in chosen]
    for _, result in iter_jobs(_annulus_job, jobs, n_workers=n_jobs, ordered=True):
        yield result


def _annulus_job(sequence: ADISequence, config: SampleConfig, index: int, r_in: float, r_out: float,
                 flux_range: tuple[float, float], psf: np.ndarray) -> AnnulusSamples:
    return annulus_samples(sequence, config, index, r_in, r_out, flux_range, psf=psf)


def make_samples(
    sequence: ADISequence,
    config: SampleConfig | None = None,
    *,
    flux_ranges: np.ndarray | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> MLARSamples:
    """Generate the labeled sample set of a sequence, in memory.

    C+ and C- samples of every 1-FWHM annulus, balanced, with C+ fluxes from the S/N oracle (SPEC §3;
    Gomez Gonzalez et al. 2018, A&A 613, A71), deterministic from ``config.seed``.

    Parameters
    ----------
    sequence : ADISequence
        The ADI sequence.
    config : SampleConfig, optional
        Sample settings (default ``SampleConfig()``).
    flux_ranges : ndarray, shape (n_annuli, 2), optional
        Skip the S/N oracle and use these flux bounds.
    n_jobs : int, optional
        Worker processes over annuli (default: all cores). Results do not depend on it.
    progress : bool
        Show a progress bar.

    Returns
    -------
    MLARSamples
        The samples of every annulus, with configuration, provenance and the oracle's table.

    Raises
    ------
    TypeError, ValueError
        As :func:`plan_samples`, before any work; ``ValueError`` for malformed ``flux_ranges``.

    See Also
    --------
    sodinn.mlar.store.generate_sample_file : The same, written to HDF5, atomically and resumably.
    """
    from tqdm.auto import tqdm

    config = config or SampleConfig()
    plan = plan_samples(sequence, config)
    annuli = plan.annuli
    oracle: dict[str, Any] = {}
    if flux_ranges is None:
        oracle = fit_flux_ranges(sequence, config, annuli, plan.psf)
        flux_ranges = np.asarray(oracle["flux_range"])
    flux_ranges = np.asarray(flux_ranges, dtype=np.float64)
    if flux_ranges.shape != (len(annuli), 2) or np.any(flux_ranges <= 0) or np.any(flux_ranges[:, 0] > flux_ranges[:, 1]):
        msg = f"flux_ranges must be an ({len(annuli)}, 2) array of positive (low, high) fluxes; got shape {flux_ranges.shape}"
        raise ValueError(msg)
    results = list(tqdm(iter_annulus_samples(sequence, config, plan, flux_ranges, n_jobs=n_jobs), total=len(annuli),
                        desc="annuli", disable=None if progress else True, unit="annulus"))
    return MLARSamples(annuli=tuple(results), config=config, provenance=plan.provenance, oracle=oracle)
