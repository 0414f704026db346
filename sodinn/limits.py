"""Detection limits: the classical 5-sigma contrast curve of annular PCA-ADI and the 95%-TPR flux of models.

**Classical curve** (Mawet et al. 2014). At each separation ``r`` the reduced frame of the real cube
(annular PCA-ADI) is measured with the apertures of :mod:`sodinn.snr`: ``n = floor(pi / asin(FWHM / 2r))``
apertures of radius ``FWHM / 2`` on the circle of radius ``r`` (those near known sources dropped). Their
exact sums have standard deviation ``sigma(r)`` (``ddof=1``). A test aperture on that circle is compared with
the ``n2 = n - 1`` others, so the detection threshold whose false-positive fraction equals the Gaussian
``k``-sigma one (``FPF = norm.sf(k)``, 2.87e-7 for k = 5) is the Student-t quantile

    ``threshold(r) = sigma(r) * t.isf(FPF, n2 - 1) * sqrt(1 + 1 / n2)``.

The throughput ``tau(r)`` is the aperture flux recovered at fake companions injected into the cube (a
flux far above the noise, several azimuths, the same reduction) divided by the aperture flux injected,
the recovered flux taken on ``reduced(with companions) - reduced(without)``. The limit is
``threshold / tau``.

**Model limits.** At each separation, companions are injected one per copy of the cube (random azimuths
away from known sources) on a geometric ladder of fluxes (by default 0.3-30 times the flux that gives
S/N = 1 in annular PCA-ADI, from the S/N oracle of :mod:`sodinn.flux`). Each copy is reduced by every
method (probability maps of the models, the S/N map of annular PCA-ADI: :func:`sodinn.roc.copy_maps`, as
in the ROC harness) and a companion counts as detected when a blob of the thresholded map matches it by
the data-challenge rule of :mod:`sodinn.scoring`, counting only the ring 1 FWHM wide centred on the separation
(false positives in that ring are counted too). The true-positive rate against flux is fitted by
isotonic regression in log flux, up to the first flux level whose measured rate reaches the target
(see :func:`flux_at_tpr`), and the flux where the fit reaches the target (95%) is read off by linear
interpolation in log flux. Every method sees the same copies.

**Units.** sodinn injects ``flux`` times the *normalised* PSF (flux 1 in an aperture of diameter 1 FWHM,
SPEC §1), so every flux here is in those units: the aperture flux of a companion in the cube's units.
A contrast is that flux divided by the star's flux in the same aperture, ``star_flux`` (e.g.
:func:`sodinn.psf.aperture_flux` of an unsaturated PSF of the star taken with the science exposure
settings); it is reported only when ``star_flux`` is given.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn._aperture import aperture_sums
from sodinn.geometry import frame_center
from sodinn.sequence import ADISequence

__all__ = [
    "ContrastCurve",
    "DetectionLimits",
    "LimitConfig",
    "RingNoise",
    "classical_contrast_curve",
    "detection_limits",
    "default_radii",
    "flux_at_tpr",
    "limit_injections",
    "ring_noise",
    "student_factor",
    "throughput",
    "write_limits",
]

logger = logging.getLogger(__name__)

_GOLDEN_DEG = 137.50776405003785
_PATTERN_SPACING_FWHM = 2.0  # companions injected together are at least this far apart in separation


# ----------------------------------------------------------------------------- classical contrast curve


def student_factor(n_noise: npt.ArrayLike, *, sigma: float = 5.0) -> np.ndarray:
    """Threshold in units of the aperture noise for a Gaussian ``sigma`` false-positive fraction (Mawet et al. 2014).

    ``t.isf(FPF, n2 - 1) * sqrt(1 + 1 / n2)`` with ``FPF = norm.sf(sigma)`` and ``n2`` noise apertures.

    Parameters
    ----------
    n_noise : int or array of int
        Number of noise apertures ``n2`` (>= 2).
    sigma : float
        Gaussian-equivalent significance (5: FPF = 2.87e-7).

    Returns
    -------
    ndarray (0-d for a scalar input)

    Examples
    --------
    >>> round(float(student_factor(1000)), 2)  # many apertures: close to the Gaussian 5
    5.04
    >>> round(float(student_factor(5)), 1)  # 6 apertures at 1 FWHM
    62.3
    """
    from scipy import stats

    n2 = np.asarray(n_noise)
    if n2.size == 0 or not np.issubdtype(n2.dtype, np.number) or np.any(n2 < 2) or np.any(n2 != np.round(n2)):
        msg = f"n_noise must be whole numbers >= 2 (the t distribution needs n2 - 1 >= 1 degrees of freedom); got {n_noise!r}"
        raise ValueError(msg)
    fpf = stats.norm.sf(v.check_positive(sigma, name="sigma"))
    return np.asarray(stats.t.isf(fpf, n2 - 1) * np.sqrt(1 + 1 / n2))


@dataclass(frozen=True)
class RingNoise:
    """Aperture sums on one circle of a reduced frame.

    Attributes
    ----------
    sep_px : float
    sigma : float
        Standard deviation (``ddof=1``) of ``fluxes``.
    fluxes : ndarray
        Sums in the kept apertures.
    apertures_xy : ndarray, shape (n, 2)
        Centres of the kept apertures.
    n_dropped : int
        Apertures dropped near known sources.
    """

    sep_px: float
    sigma: float
    fluxes: np.ndarray
    apertures_xy: np.ndarray
    n_dropped: int = 0

    @property
    def n_noise(self) -> int:
        """``n2``: the apertures a test aperture on this circle is compared with (kept apertures - 1)."""
        return int(self.fluxes.size - 1)


def ring_noise(
    frame: npt.ArrayLike,
    sep_px: float,
    fwhm_px: float,
    *,
    theta0_deg: float = 0.0,
    known_sources_xy: Sequence[tuple[float, float]] | npt.ArrayLike = (),
    exclusion_px: float = 0.0,
) -> RingNoise:
    """Sums of the apertures of radius ``FWHM / 2`` around the circle of radius ``sep_px`` (SPEC §5 geometry).

    ``floor(pi / asin(FWHM / (2 sep)))`` apertures, the first at ``theta0_deg`` (counter-clockwise from +x),
    then clockwise, as :func:`sodinn.snr.snr`; those whose centre lies within ``exclusion_px`` of a known
    source are dropped.

    Raises
    ------
    ValueError
        If fewer than 3 apertures remain (no Student threshold is defined).
    """
    from sodinn.snr import snr_details

    arr = v.check_frame(frame)
    fwhm = v.check_fwhm(fwhm_px, frame_size=arr.shape[0])
    sep = v.check_positive(sep_px, name="sep_px")
    theta = math.radians(v.check_real(theta0_deg, name="theta0_deg"))
    sources = _positions(known_sources_xy)
    cy, cx = frame_center(arr.shape)
    details = snr_details(arr, (cx + sep * math.cos(theta), cy + sep * math.sin(theta)), fwhm)
    fluxes = np.r_[details.signal_flux, details.noise_fluxes]
    centres = details.apertures_xy
    keep = np.ones(len(centres), dtype=bool)
    for sx, sy in sources:
        keep &= np.hypot(centres[:, 0] - sx, centres[:, 1] - sy) > exclusion_px
    if keep.sum() < 3:
        msg = (f"only {int(keep.sum())} of {len(centres)} apertures at {sep:.1f} px are farther than {exclusion_px:.1f} px "
               "from the known sources; at least 3 are needed. Lower the mask radius or drop this separation")
        raise ValueError(msg)
    kept = fluxes[keep]
    return RingNoise(sep_px=sep, sigma=float(np.std(kept, ddof=1)), fluxes=kept, apertures_xy=centres[keep],
                     n_dropped=int((~keep).sum()))


def throughput(
    cube: npt.ArrayLike,
    angles_deg: npt.ArrayLike,
    psf: npt.ArrayLike,
    fwhm_px: float,
    reduce: Callable[[np.ndarray], np.ndarray],
    *,
    sep_px: npt.ArrayLike,
    theta_deg: npt.ArrayLike,
    flux: npt.ArrayLike,
    frame_without: npt.ArrayLike | None = None,
) -> np.ndarray:
    """Recovered / injected aperture flux of fake companions injected *together* into one copy of the cube.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
    angles_deg : ndarray, shape (n_frames,)
    psf : ndarray, shape (p, p)
        Normalised PSF used for the injection.
    fwhm_px : float
        Apertures have radius ``fwhm_px / 2``.
    reduce : callable
        ``reduce(cube) -> frame``: the reduction (e.g. annular PCA-ADI with fixed settings).
    sep_px, theta_deg, flux : array-like, shape (n,)
        The companions (sky separation, position angle counter-clockwise from +x, flux).
    frame_without : ndarray, shape (N, N), optional
        ``reduce(cube)``, if already computed.

    Returns
    -------
    ndarray, shape (n,)
        Aperture flux at each companion in ``reduce(cube with companions) - reduce(cube)`` over the aperture
        flux of the same companion injected into an empty frame (not clipped: a negative value means the
        reduction removed more than the companion).

    Examples
    --------
    >>> psf = np.zeros((5, 5)); psf[2, 2] = 1.0
    >>> cube = np.random.default_rng(0).normal(size=(3, 21, 21))
    >>> throughput(cube, np.zeros(3), psf, 2.0, lambda c: c.mean(axis=0), sep_px=[6.0], theta_deg=[30.0], flux=[50.0])
    array([1.])
    """
    from sodinn.injection import cube_inject_companions

    arr = v.check_cube(cube)
    angles = v.check_angles(angles_deg, arr.shape[0])
    fwhm = v.check_fwhm(fwhm_px, frame_size=arr.shape[-1])
    seps, thetas, fluxes = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (sep_px, theta_deg, flux))
    if not seps.shape == thetas.shape == fluxes.shape or seps.ndim != 1:
        msg = f"sep_px, theta_deg and flux must be 1-D of equal length; got shapes {seps.shape}, {thetas.shape}, {fluxes.shape}"
        raise ValueError(msg)
    if not np.all(fluxes > 0):
        msg = f"flux must be > 0 for every companion; got {fluxes.tolist()}"
        raise ValueError(msg)
    base = np.asarray(reduce(arr), dtype=np.float64) if frame_without is None else v.check_frame(frame_without, name="frame_without")
    injected = cube_inject_companions(arr, psf, angles, sep_px=seps, theta_deg=thetas, flux=fluxes)
    recovered_frame = np.asarray(reduce(injected), dtype=np.float64) - base
    # the companions as they were injected, on the sky, in an empty frame (the same sub-pixel shifts)
    truth = cube_inject_companions(np.zeros((1, *arr.shape[1:])), psf, [0.0], sep_px=seps, theta_deg=thetas, flux=fluxes)[0]
    cy, cx = frame_center(arr.shape)
    xy = np.column_stack([cx + seps * np.cos(np.deg2rad(thetas)), cy + seps * np.sin(np.deg2rad(thetas))])
    return aperture_sums(recovered_frame, xy, fwhm / 2) / aperture_sums(truth, xy, fwhm / 2)


@dataclass(frozen=True)
class ContrastCurve:
    """A classical contrast curve (see the module docstring).

    Attributes
    ----------
    radii_px : ndarray, shape (n,)
    noise : ndarray
        ``sigma(r)``: std (ddof=1) of the aperture sums of the reduced real cube.
    n_noise : ndarray of int
        ``n2``: kept apertures - 1.
    factor : ndarray
        Student factor ``t.isf(FPF, n2 - 1) sqrt(1 + 1/n2)``.
    threshold : ndarray
        ``factor * noise``: the aperture flux a source needs in the reduced frame.
    throughput : ndarray
        Mean over the injected azimuths.
    throughput_all : ndarray, shape (n, n_azimuths)
    flux_limit : ndarray
        ``threshold / throughput`` (inf where the throughput is <= 0), in units of the normalised PSF.
    sigma : float
    star_flux : float or None
    lambda_d_px : float
    settings : dict
        Reduction and injection settings (``theta0_deg``: azimuth of the first noise aperture).
    """

    radii_px: np.ndarray
    noise: np.ndarray
    n_noise: np.ndarray
    factor: np.ndarray
    threshold: np.ndarray
    throughput: np.ndarray
    throughput_all: np.ndarray
    flux_limit: np.ndarray
    sigma: float
    star_flux: float | None
    lambda_d_px: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def contrast(self) -> np.ndarray | None:
        """``flux_limit / star_flux``, or None without a star flux."""
        return None if self.star_flux is None else self.flux_limit / self.star_flux

    @property
    def fpf(self) -> float:
        """False-positive fraction of the threshold (``norm.sf(sigma)``)."""
        from scipy import stats

        return float(stats.norm.sf(self.sigma))

    def rows(self) -> list[dict[str, Any]]:
        """One dict per separation (the columns of :meth:`table`)."""
        contrast = self.contrast
        out = []
        for i, r in enumerate(self.radii_px):
            row: dict[str, Any] = {"sep_px": float(r), "sep_lambda_d": float(r / self.lambda_d_px), "noise": float(self.noise[i]),
                   "n_noise": int(self.n_noise[i]), "student_factor": float(self.factor[i]), "threshold": float(self.threshold[i]),
                   "throughput": float(self.throughput[i]), "flux_limit": float(self.flux_limit[i])}
            if contrast is not None:
                row["contrast"] = float(contrast[i])
            out.append(row)
        return out

    def table(self):
        """The curve as an astropy Table, one row per separation."""
        from astropy.table import Table

        return Table(rows=self.rows())


def default_radii(sequence: ADISequence, *, step_fwhm: float = 0.5) -> np.ndarray:
    """Separations every ``step_fwhm`` FWHM from 1 FWHM to ``N/2 - FWHM`` (the last with whole apertures)."""
    fwhm = sequence.fwhm_px
    stop = sequence.frame_size / 2 - fwhm
    return fwhm * np.arange(1.0, stop / fwhm + 1e-9, v.check_positive(step_fwhm, name="step_fwhm"))


def _positions(xy: Sequence[tuple[float, float]] | npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(xy, dtype=np.float64)
    return np.zeros((0, 2)) if arr.size == 0 else v.check_positions_xy(arr, name="known_sources_xy")


def _free_theta(theta: float, sep: float, centre: tuple[float, float], sources: np.ndarray, exclusion: float) -> float:
    """``theta`` moved by steps of 23 deg until the position is farther than ``exclusion`` from every source."""
    cx, cy = centre
    for _ in range(16):
        x, y = cx + sep * math.cos(math.radians(theta)), cy + sep * math.sin(math.radians(theta))
        if not len(sources) or np.hypot(sources[:, 0] - x, sources[:, 1] - y).min() > exclusion:
            return theta % 360.0
        theta += 23.0
    msg = f"no azimuth at {sep:.1f} px is farther than {exclusion:.1f} px from the known sources"
    raise ValueError(msg)


def classical_contrast_curve(
    sequence: ADISequence,
    *,
    radii_px: npt.ArrayLike | None = None,
    ncomp: int = 10,
    sigma: float = 5.0,
    n_azimuths: int = 4,
    injection_snr: float = 50.0,
    star_flux: float | None = None,
    known_sources_xy: Sequence[tuple[float, float]] = (),
    mask_radius_fwhm: float = 2.0,
    delta_rot: float | tuple[float, float] | None = (0.1, 1.0),
    lambda_d_px: float | None = None,
    reduce: Callable[[np.ndarray], np.ndarray] | None = None,
    seed: int = 0,
) -> ContrastCurve:
    """The ``sigma``-sigma contrast curve of annular PCA-ADI with the small-sample correction.

    Parameters
    ----------
    sequence : ADISequence
    radii_px : array-like, optional
        Separations (default: every 0.5 FWHM from 1 FWHM to ``N/2 - FWHM``).
    ncomp : int
        Principal components of :func:`sodinn.baselines.pca_annular` (annuli 1 FWHM wide from the centre).
    sigma : float
        Gaussian-equivalent significance of the threshold.
    n_azimuths : int
        Fake companions per separation for the throughput.
    injection_snr : float
        Their flux, in units of ``noise(r)``.
    star_flux : float, optional
        The star's flux in an aperture of diameter 1 FWHM, in the cube's units: gives :attr:`ContrastCurve.contrast`.
    known_sources_xy : sequence of (x, y)
        Real sources: no noise aperture and no fake companion within ``mask_radius_fwhm`` FWHM of them.
    mask_radius_fwhm : float
    delta_rot : float, (float, float) or None
        Rotation threshold of the annular PCA library (see :func:`sodinn.baselines.pca_annular`).
    lambda_d_px : float, optional
        lambda/D in px (default: the FWHM), for the table's ``sep_lambda_d``.
    reduce : callable, optional
        ``reduce(cube) -> frame`` replacing annular PCA-ADI (``ncomp`` and ``delta_rot`` are then unused):
        the curve of any reduction.
    seed : int
        Seeds the azimuth of the first aperture and of the fake companions.

    Returns
    -------
    ContrastCurve

    Notes
    -----
    Companions at every separation are injected in ``n_patterns x n_azimuths`` reductions: a pattern holds
    separations at least 2 FWHM apart (so that no two share a PCA annulus), a reduction places them at
    azimuths staggered by the golden angle; the throughput at a separation is the mean over its azimuths.
    """
    from functools import partial

    from sodinn.baselines import pca_annular
    from sodinn.config import SampleConfig
    from sodinn.samples import sample_psf

    fwhm = sequence.fwhm_px
    radii = default_radii(sequence) if radii_px is None else np.atleast_1d(np.asarray(radii_px, dtype=np.float64))
    if radii.ndim != 1 or radii.size == 0 or not np.all(np.isfinite(radii)):
        msg = f"radii_px must be a non-empty 1-D list of finite separations; got {radii_px!r}"
        raise ValueError(msg)
    limit = sequence.frame_size / 2 - fwhm / 2
    if radii.min() < fwhm * (1 - 1e-9) or radii.max() > limit:
        msg = (f"radii_px must lie between 1 FWHM ({fwhm:.2f} px) and N/2 - FWHM/2 ({limit:.2f} px), where whole apertures "
               f"fit; got {radii.min():.2f}-{radii.max():.2f}")
        raise ValueError(msg)
    if reduce is None:
        ncomp = v.check_ncomp(ncomp, sequence.n_frames)
    n_az = v.check_int(n_azimuths, name="n_azimuths", minimum=1)
    v.check_positive(injection_snr, name="injection_snr")
    v.check_positive(sigma, name="sigma")
    if star_flux is not None:
        v.check_positive(star_flux, name="star_flux")
    lam = fwhm if lambda_d_px is None else v.check_positive(lambda_d_px, name="lambda_d_px")
    sources = _positions(known_sources_xy)
    exclusion = v.check_positive(mask_radius_fwhm, name="mask_radius_fwhm") * fwhm
    rng = np.random.default_rng(v.check_int(seed, name="seed", minimum=0))

    algorithm = "pca_annular" if reduce is None else getattr(reduce, "__name__", type(reduce).__name__)
    if reduce is None:
        reduce = partial(pca_annular, angles_deg=sequence.angles_deg, fwhm_px=fwhm, ncomp=ncomp, delta_rot=delta_rot)
    elif not callable(reduce):
        msg = f"reduce must be a callable cube -> frame; got {type(reduce).__name__}"
        raise TypeError(msg)
    base = reduce(sequence.cube)
    theta0 = float(rng.uniform(0.0, 360.0))
    rings = [ring_noise(base, r, fwhm, theta0_deg=theta0, known_sources_xy=sources, exclusion_px=exclusion) for r in radii]
    noise = np.array([ring.sigma for ring in rings])
    n_noise = np.array([ring.n_noise for ring in rings])

    psf = sample_psf(sequence, SampleConfig())
    order = np.argsort(radii)
    step = np.min(np.diff(radii[order])) if radii.size > 1 else np.inf
    n_patterns = max(1, min(radii.size, math.ceil(_PATTERN_SPACING_FWHM * fwhm / step - 1e-9))) if np.isfinite(step) else 1
    centre = frame_center(sequence.cube.shape)[::-1]
    tau = np.full((radii.size, n_az), np.nan)
    offset = float(rng.uniform(0.0, 360.0))
    for a in range(n_az):
        for p in range(n_patterns):
            members = order[p::n_patterns]
            thetas = [_free_theta(offset + 360.0 * a / n_az + _GOLDEN_DEG * j, radii[j], centre, sources, exclusion) for j in members]
            tau[members, a] = throughput(sequence.cube, sequence.angles_deg, psf, fwhm, reduce, sep_px=radii[members],
                                         theta_deg=thetas, flux=injection_snr * noise[members], frame_without=base)
        logger.info("contrast curve: throughput azimuth %d/%d done", a + 1, n_az)
    mean_tau = tau.mean(axis=1)
    factor = student_factor(n_noise, sigma=sigma)
    threshold = factor * noise
    flux_limit = np.where(mean_tau > 0, threshold / np.where(mean_tau > 0, mean_tau, 1.0), np.inf)
    settings: dict[str, Any] = {"algorithm": algorithm}
    if algorithm == "pca_annular":
        settings.update(ncomp=ncomp, delta_rot=delta_rot)
    settings.update(n_azimuths=n_az, n_patterns=n_patterns, injection_snr=float(injection_snr), mask_radius_fwhm=float(mask_radius_fwhm),
                    seed=int(seed), theta0_deg=theta0, known_sources_xy=sources.tolist())
    return ContrastCurve(radii_px=radii, noise=noise, n_noise=n_noise, factor=factor, threshold=threshold, throughput=mean_tau,
                         throughput_all=tau, flux_limit=flux_limit, sigma=float(sigma), star_flux=star_flux, lambda_d_px=lam,
                         settings=settings)


# ----------------------------------------------------------------------------- detection limits of the models


def _default_flux_factors() -> tuple[float, ...]:
    return tuple(float(f) for f in np.round(np.geomspace(0.3, 30.0, 9), 4))


@dataclass(frozen=True)
class LimitConfig:
    """Settings of the detection-limit experiment (the ``[limits]`` table of a configuration file).

    Parameters
    ----------
    separations_lambda_d : sequence of float
        Separations, in lambda/D (``lambda_d_px`` pixels each).
    lambda_d_px : float, optional
        lambda/D in px (default: the PSF FWHM).
    copies_per_flux : int
        Injected copies per separation and flux level (one companion each).
    flux_factors : sequence of float
        The flux ladder, in units of the flux that gives S/N = 1 in annular PCA-ADI (the S/N oracle);
        default 0.3 to 30, 9 levels: the S/N of annular PCA-ADI grows more slowly than the flux near the
        star (a bright companion's own wings and self-subtraction lobes fill its noise apertures), so its
        95% TPR at S/N 5 often needs more than 10 times the S/N = 1 flux.
    flux_ladder : sequence of float, optional
        Absolute fluxes instead (same ladder at every separation; no oracle run).
    prob_threshold : float
        Probability threshold of the models (overridden per model by ``detection_limits(thresholds=...)``).
    snr_threshold : float
        S/N threshold of annular PCA-ADI.
    annular_ncomp : int
        Components of annular PCA-ADI.
    tpr_target : float
        The TPR at which the limit is read (0.95).
    npix, overlap_threshold, max_blob_fact
        Blob scoring (see :mod:`sodinn.scoring`).
    known_sources_xy : sequence of (x, y)
        Real sources: no injection within ``mask_radius_fwhm`` FWHM, their blobs ignored.
    mask_radius_fwhm : float
    oracle_ncomp, oracle_azimuths : int
        Settings of the S/N oracle.
    seed : int
    """

    separations_lambda_d: tuple[float, ...] = (1.5, 2.5, 3.5)
    lambda_d_px: float | None = None
    copies_per_flux: int = 20
    flux_factors: tuple[float, ...] = field(default_factory=_default_flux_factors)
    flux_ladder: tuple[float, ...] | None = None
    prob_threshold: float = 0.9
    snr_threshold: float = 5.0
    annular_ncomp: int = 10
    tpr_target: float = 0.95
    npix: int = 2
    overlap_threshold: float = 0.7
    max_blob_fact: float = 2.0
    known_sources_xy: tuple[tuple[float, float], ...] = ()
    mask_radius_fwhm: float = 2.0
    oracle_ncomp: int = 10
    oracle_azimuths: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        seps = tuple(float(s) for s in np.atleast_1d(self.separations_lambda_d))
        if not seps or any(not (math.isfinite(s) and s > 0) for s in seps):
            msg = f"separations_lambda_d must be a non-empty list of positive numbers; got {self.separations_lambda_d}"
            raise ValueError(msg)
        set_(self, "separations_lambda_d", tuple(sorted(set(seps))))
        if self.lambda_d_px is not None:
            v.check_positive(self.lambda_d_px, name="lambda_d_px")
        v.check_int(self.copies_per_flux, name="copies_per_flux", minimum=1)
        for name in ("flux_factors", "flux_ladder"):
            values = getattr(self, name)
            if values is None:
                continue
            ladder = tuple(sorted({v.check_positive(f, name=name) for f in values}))
            if len(ladder) < 2:
                msg = f"{name} must hold at least 2 distinct positive values; got {values}"
                raise ValueError(msg)
            set_(self, name, ladder)
        if not 0 < self.prob_threshold < 1:
            msg = f"prob_threshold must lie in (0, 1); got {self.prob_threshold}"
            raise ValueError(msg)
        v.check_real(self.snr_threshold, name="snr_threshold")
        v.check_int(self.annular_ncomp, name="annular_ncomp", minimum=1)
        if not 0 < self.tpr_target < 1:
            msg = f"tpr_target must lie in (0, 1); got {self.tpr_target}"
            raise ValueError(msg)
        # blob scoring, masking, annular rank and seed: the ROC harness's settings, checked there
        set_(self, "known_sources_xy", self.roc_config().known_sources_xy)
        v.check_int(self.oracle_ncomp, name="oracle_ncomp", minimum=1)
        v.check_int(self.oracle_azimuths, name="oracle_azimuths", minimum=1)

    def roc_config(self):
        """The :class:`sodinn.roc.RocConfig` of the copies: annular PCA-ADI at ``annular_ncomp``, the same blob scoring."""
        from sodinn.roc import RocConfig

        return RocConfig(baselines=("annular",), annular_ncomps=(self.annular_ncomp,), npix=self.npix,
                         overlap_threshold=self.overlap_threshold, max_blob_fact=self.max_blob_fact,
                         known_sources_xy=self.known_sources_xy, mask_radius_fwhm=self.mask_radius_fwhm, seed=self.seed)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> LimitConfig:
        """Build from a ``[limits]`` table; unknown keys are an error that names them."""
        from sodinn.config import _check_known_keys

        _check_known_keys(cls, values, "limits")
        kwargs = dict(values)
        if "known_sources_xy" in kwargs:
            kwargs["known_sources_xy"] = tuple(tuple(xy) for xy in kwargs["known_sources_xy"])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["known_sources_xy"] = [list(s) for s in self.known_sources_xy]
        return {k: (list(x) if isinstance(x, tuple) else x) for k, x in out.items() if x is not None}


def flux_at_tpr(fluxes: npt.ArrayLike, detected: npt.ArrayLike, target: float = 0.95) -> tuple[float, np.ndarray, np.ndarray]:
    """The lowest flux at which the detection rate reaches ``target``: isotonic fit in log flux, log-linear interpolation.

    The ladder is read from the bottom up to the first level whose *measured* rate reaches ``target``;
    the rate is fitted there by isotonic regression (non-decreasing in flux) and the fit is interpolated
    linearly in log flux where it crosses ``target``. Levels above that one are not used: a detection
    rule can lose very bright companions for reasons unrelated to sensitivity (the data-challenge rule
    counts a blob larger than 2 resolution elements as false positives; the S/N of a bright source
    saturates near the star, its own wings filling its noise apertures), and a monotone fit over them
    would pull the curve below ``target`` where it had been reached.

    Parameters
    ----------
    fluxes : array-like, shape (n,)
        Injected flux of each trial (> 0).
    detected : array-like of bool, shape (n,)
    target : float

    Returns
    -------
    flux : float
        NaN when no level reaches ``target`` (the limit is above the ladder's top) or the lowest level
        already does (the limit is below its bottom).
    levels : ndarray
        The distinct fluxes, increasing.
    tpr_fit : ndarray
        The non-decreasing fitted detection rate at ``levels`` (NaN above the level where the ladder
        was cut).

    Examples
    --------
    >>> f = np.repeat([1.0, 2.0, 4.0, 8.0, 16.0], 4)
    >>> d = [0, 0, 0, 0,  0, 1, 0, 0,  1, 1, 1, 0,  1, 1, 1, 1,  1, 1, 0, 1]
    >>> flux, levels, fit = flux_at_tpr(f, d, 0.95)
    >>> fit.tolist(), round(flux, 3)  # 0.75 at 4, 1.0 at 8: 0.95 is 80% of the way from 4 to 8 in log flux
    ([0.0, 0.25, 0.75, 1.0, nan], 6.964)
    """
    from sklearn.isotonic import IsotonicRegression

    f = np.asarray(fluxes, dtype=np.float64).ravel()
    d = np.asarray(detected, dtype=np.float64).ravel()
    if f.size == 0 or f.shape != d.shape or not np.all(np.isfinite(f) & (f > 0)):
        msg = f"fluxes must be positive and finite with one detection flag each; got {f.size} fluxes and {d.size} flags"
        raise ValueError(msg)
    if not 0 < target < 1:
        msg = f"target must lie in (0, 1); got {target}"
        raise ValueError(msg)
    levels, index = np.unique(f, return_inverse=True)
    measured = np.bincount(index, weights=d, minlength=levels.size) / np.bincount(index, minlength=levels.size)
    reached = np.nonzero(measured >= target)[0]
    top = int(reached[0]) if reached.size else levels.size - 1
    used = index <= top
    fit = np.full(levels.size, np.nan)
    iso = IsotonicRegression(increasing=True, y_min=0.0, y_max=1.0).fit(np.log(f[used]), d[used])
    fit[: top + 1] = iso.predict(np.log(levels[: top + 1]))
    above = np.nonzero(fit[: top + 1] >= target)[0]
    if above.size == 0 or above[0] == 0:
        return float("nan"), levels, fit
    i = int(above[0])
    x0, x1 = np.log(levels[i - 1]), np.log(levels[i])
    frac = (target - fit[i - 1]) / (fit[i] - fit[i - 1])
    return float(np.exp(x0 + frac * (x1 - x0))), levels, fit


@dataclass
class DetectionLimits:
    """What :func:`detection_limits` measured.

    Attributes
    ----------
    radii_px : ndarray, shape (n_sep,)
    lambda_d_px : float
    fluxes : ndarray, shape (n_sep, n_levels)
        The flux ladder at each separation.
    snr1_flux : ndarray, shape (n_sep,), or None
        The flux giving S/N = 1 in annular PCA-ADI (None with an absolute ladder).
    methods : list of str
        The models by name, then ``annular-K``.
    thresholds : dict of str -> ndarray, shape (n_sep,)
    detected : dict of str -> ndarray of bool, shape (n_sep, n_levels, n_copies)
    false_positives : dict of str -> ndarray, shape (n_sep, n_levels, n_copies)
        False positives in the ring 1 FWHM wide centred on the separation.
    tpr_fit : dict of str -> ndarray, shape (n_sep, n_levels)
        Isotonic fit of the detection rate (NaN above the level where it was cut, see :func:`flux_at_tpr`).
    flux_limit : dict of str -> ndarray, shape (n_sep,)
        Flux at ``tpr_target`` (NaN outside the ladder).
    tpr_target : float
    injections : list of sodinn.roc.Injection
    """

    radii_px: np.ndarray
    lambda_d_px: float
    fluxes: np.ndarray
    snr1_flux: np.ndarray | None
    methods: list[str]
    thresholds: dict[str, np.ndarray]
    detected: dict[str, np.ndarray]
    false_positives: dict[str, np.ndarray]
    tpr_fit: dict[str, np.ndarray]
    flux_limit: dict[str, np.ndarray]
    tpr_target: float
    injections: list[Any] = field(default_factory=list)

    def tpr(self, method: str) -> np.ndarray:
        """Measured detection rate, shape (n_sep, n_levels)."""
        return self.detected[method].mean(axis=-1)

    def mean_fp(self, method: str) -> np.ndarray:
        """Mean false positives per copy in the ring of each separation, shape (n_sep,)."""
        return self.false_positives[method].mean(axis=(1, 2))

    def rows(self, star_flux: float | None = None) -> list[dict[str, Any]]:
        """One dict per method and separation: the limit (and contrast with ``star_flux``), threshold and FPs."""
        out = []
        for m in self.methods:
            fp = self.mean_fp(m)
            for i, r in enumerate(self.radii_px):
                row: dict[str, Any] = {"method": m, "sep_px": float(r), "sep_lambda_d": float(r / self.lambda_d_px),
                       "threshold": float(self.thresholds[m][i]), "mean_fp": float(fp[i]),
                       "n_copies": int(self.detected[m][i].size), "flux_limit": float(self.flux_limit[m][i])}
                if star_flux is not None:
                    row["contrast_limit"] = row["flux_limit"] / star_flux
                out.append(row)
        return out

    def table(self, star_flux: float | None = None):
        """:meth:`rows` as an astropy Table."""
        from astropy.table import Table

        return Table(rows=self.rows(star_flux))

    def tpr_rows(self) -> list[dict[str, Any]]:
        """One dict per method, separation and flux level: measured and fitted detection rate."""
        out = []
        for m in self.methods:
            measured = self.tpr(m)
            for i, r in enumerate(self.radii_px):
                for level, flux in enumerate(self.fluxes[i]):
                    out.append({"method": m, "sep_px": float(r), "flux": float(flux), "n_copies": int(self.detected[m].shape[-1]),
                                "tpr": float(measured[i, level]), "tpr_fit": float(self.tpr_fit[m][i, level])})
        return out


def limit_injections(sequence: ADISequence, config: LimitConfig, fluxes: np.ndarray) -> list[Any]:
    """Every copy's companion, reproducibly from ``config.seed``: separation index as ``band``,
    ``copy = level * copies_per_flux + c``; azimuths uniform, farther than ``mask_radius_fwhm`` FWHM from known sources."""
    from sodinn.roc import Injection, free_position

    lam = config.lambda_d_px or sequence.fwhm_px
    cy, cx = frame_center(sequence.cube.shape)
    sources = _positions(config.known_sources_xy)
    exclusion = config.mask_radius_fwhm * sequence.fwhm_px
    out = []
    for b, sep_ld in enumerate(config.separations_lambda_d):
        sep = sep_ld * lam
        for level, flux in enumerate(fluxes[b]):
            for c in range(config.copies_per_flux):
                rng = np.random.default_rng([config.seed, b, level, c])

                def draw(rng=rng, sep=sep) -> tuple[float, float]:
                    return sep, float(rng.uniform(0.0, 360.0))

                _, theta, x, y = free_position(draw, (cx, cy), sources, exclusion, f"no azimuth at {sep:.1f} px")
                out.append(Injection(b, level * config.copies_per_flux + c, sep, theta, float(flux), x, y))
    return out


def _ladder(sequence: ADISequence, config: LimitConfig, radii: np.ndarray, psf: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if config.flux_ladder is not None:
        return np.tile(np.asarray(config.flux_ladder), (radii.size, 1)), None
    from sodinn.flux import FluxRangeEstimator

    est = FluxRangeEstimator((1.0, 3.0), ncomp=config.oracle_ncomp, n_azimuths=config.oracle_azimuths, rng=config.seed)
    est.fit(sequence.cube, sequence.angles_deg, psf, sequence.fwhm_px, radii, exclude_xy=config.known_sources_xy,
            exclude_radius_px=config.mask_radius_fwhm * sequence.fwhm_px)
    snr1 = np.asarray(est.flux_range_)[:, 0]
    return snr1[:, None] * np.asarray(config.flux_factors)[None, :], snr1


def _method_thresholds(config: LimitConfig, models: Sequence[str], names: Sequence[str], n_sep: int,
                       thresholds: Mapping[str, float | Sequence[float]] | None) -> dict[str, np.ndarray]:
    given = dict(thresholds or {})
    unknown = sorted(set(given) - set(names))
    if unknown:
        msg = f"thresholds given for unknown method(s) {unknown}; the methods are {list(names)}"
        raise ValueError(msg)
    out = {}
    for name in names:
        raw = given.get(name, config.prob_threshold if name in models else config.snr_threshold)
        values = np.asarray(raw, dtype=np.float64)
        values = np.full(n_sep, float(values)) if values.ndim == 0 else values
        if values.shape != (n_sep,) or not np.all(np.isfinite(values)):
            msg = f"thresholds[{name!r}] must be one finite number or one per separation ({n_sep}); got {raw!r}"
            raise ValueError(msg)
        if name in models and not np.all((values > 0) & (values < 1)):
            msg = f"probability thresholds of {name!r} must lie in (0, 1); got {values.tolist()}"
            raise ValueError(msg)
        out[name] = values.copy()
    return out


def detection_limits(
    sequence: ADISequence,
    config: LimitConfig | None = None,
    models: Mapping[str, str | os.PathLike[str]] | None = None,
    *,
    thresholds: Mapping[str, float | Sequence[float]] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    n_jobs: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
) -> DetectionLimits:
    """Flux at which each method reaches ``config.tpr_target`` TPR at its threshold, per separation.

    Parameters
    ----------
    sequence : ADISequence
    config : LimitConfig
    models : mapping of name -> model folder
        Trained models (``sodinn train``); annular PCA-ADI (``annular-K``) is always evaluated beside them.
    thresholds : mapping of method name -> float or sequence, optional
        Thresholds overriding ``config.prob_threshold`` / ``config.snr_threshold``: one value, or one per
        separation (e.g. a calibrated probability threshold per annulus).
    cache_dir : path, optional
        Each copy's maps are cached there (``*.npz``); a rerun reuses them.
    n_jobs : int, optional
        Worker processes (default: all cores; 1 runs in this process).
    scheduler : None, str or dask.distributed.Client
        Where the copies run (see :mod:`sodinn.engine`).

    Returns
    -------
    DetectionLimits
    """
    from sodinn.config import SampleConfig
    from sodinn.engine import map_jobs
    from sodinn.roc import _load_model, model_folders
    from sodinn.samples import sample_psf

    config = config or LimitConfig()
    for name in models or {}:
        if str(name).startswith("annular-"):
            msg = f"model name {name!r} clashes with the annular PCA-ADI baseline; choose another name"
            raise ValueError(msg)
    model_paths = model_folders(models)
    roc_config = config.roc_config()
    names = [*model_paths, f"annular-{config.annular_ncomp}"]
    fwhm = sequence.fwhm_px
    lam = config.lambda_d_px or fwhm
    radii = np.asarray(config.separations_lambda_d) * lam
    limit = sequence.frame_size / 2 - fwhm
    if radii.min() < fwhm * (1 - 1e-9) or radii.max() > limit:
        msg = (f"separations must lie between 1 FWHM ({fwhm:.2f} px = {fwhm / lam:.2f} lambda/D) and N/2 - FWHM ({limit:.2f} px = "
               f"{limit / lam:.2f} lambda/D); got {radii.min():.2f}-{radii.max():.2f} px")
        raise ValueError(msg)
    levels = _method_thresholds(config, list(model_paths), names, radii.size, thresholds)
    for path in model_paths.values():
        _load_model(path).check_compatible(fwhm)

    psf = sample_psf(sequence, SampleConfig())
    fluxes, snr1 = _ladder(sequence, config, radii, psf)
    injections = limit_injections(sequence, config, fluxes)
    cache = Path(cache_dir) / _cache_key(sequence, psf, injections, model_paths, config.annular_ncomp) if cache_dir is not None else None

    def cache_file(inj) -> Path | None:
        return cache / f"sep{inj.band}_copy{inj.copy:04d}.npz" if cache is not None else None

    maps: dict[int, dict[str, np.ndarray]] = {}
    for i, inj in enumerate(injections):
        where = cache_file(inj)
        cached = _read_maps(where, names) if where is not None else None
        if cached is not None:
            maps[i] = cached
    todo = [i for i in range(len(injections)) if i not in maps]
    if len(todo) < len(injections):
        logger.info("detection limits: %d of %d copies reused from the cache", len(injections) - len(todo), len(injections))

    def finished(j: int, result: dict[str, np.ndarray]) -> None:
        maps[todo[j]] = result
        where = cache_file(injections[todo[j]])
        if where is not None:
            _write_maps(where, result)

    jobs = [(sequence, roc_config, model_paths, injections[i], psf, _ring(injections[i].sep_px, fwhm)) for i in todo]
    if jobs:
        map_jobs(_copy_job, jobs, scheduler=scheduler, n_workers=n_jobs, progress=progress, desc="limit copies", on_result=finished)
    return _score(sequence, config, names, levels, radii, lam, fluxes, snr1, injections, maps)


def _ring(sep_px: float, fwhm_px: float) -> tuple[float, float]:
    """The ring where a copy's detections and false positives count: 1 FWHM wide, centred on the separation."""
    return sep_px - fwhm_px / 2, sep_px + fwhm_px / 2


def _copy_job(sequence: ADISequence, config: Any, models: Mapping[str, str], injection: Any, psf: np.ndarray,
              radii_px: tuple[float, float]) -> dict[str, np.ndarray]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from sodinn.roc import copy_maps

    return copy_maps(sequence, config, models, injection, psf, radii_px)


def _cache_key(sequence: ADISequence, psf: np.ndarray, injections: Sequence[Any], models: Mapping[str, str], ncomp: int) -> str:
    """What the maps of a run depend on: the data, the injection PSF, the companions, the models and the PCA rank."""
    h = hashlib.sha256()
    for array in (sequence.cube, sequence.angles_deg, psf):
        h.update(np.ascontiguousarray(array).tobytes())
    h.update(json.dumps([repr(sequence.fwhm_px), ncomp, [asdict(i) for i in injections]]).encode())
    for name, path in sorted(models.items()):
        h.update(name.encode() + (Path(path) / "model.json").read_bytes())
    return h.hexdigest()[:16]


def _write_maps(path: Path, maps: Mapping[str, np.ndarray]) -> None:
    from sodinn._atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **dict(maps))  # type: ignore[arg-type]


def _read_maps(path: Path, names: Sequence[str]) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return {n: data[n] for n in names} if set(names) <= set(data.files) else None
    except (OSError, ValueError, EOFError):
        logger.warning("ignoring an unreadable cache file %s (it will be remade)", path)
        return None


def _score(sequence, config, names, levels, radii, lam, fluxes, snr1, injections, maps) -> DetectionLimits:
    from sodinn.scoring import score_blobs

    fwhm = sequence.fwhm_px
    cy, cx = frame_center(sequence.cube.shape)
    yy, xx = np.indices(sequence.cube.shape[1:])
    rr = np.hypot(xx - cx, yy - cy)
    shape = (radii.size, fluxes.shape[1], config.copies_per_flux)
    detected = {m: np.zeros(shape, dtype=bool) for m in names}
    false_pos = {m: np.zeros(shape) for m in names}
    for i, inj in enumerate(injections):
        lo, hi = _ring(inj.sep_px, fwhm)
        region = (rr >= lo) & (rr < hi)
        level, c = divmod(inj.copy, config.copies_per_flux)
        for m in names:
            s = score_blobs(maps[i][m], float(levels[m][inj.band]), [(inj.x, inj.y)], fwhm, npix=config.npix,
                            overlap_threshold=config.overlap_threshold, max_blob_fact=config.max_blob_fact, region=region,
                            known_sources_xy=config.known_sources_xy)
            detected[m][inj.band, level, c] = bool(s.detected[0])
            false_pos[m][inj.band, level, c] = s.false_positives
    tpr_fit, flux_limit = {}, {}
    for m in names:
        fits, lims = [], []
        for b in range(radii.size):
            flux, _, fit = flux_at_tpr(np.repeat(fluxes[b], config.copies_per_flux), detected[m][b].ravel(), config.tpr_target)
            fits.append(fit)
            lims.append(flux)
        tpr_fit[m], flux_limit[m] = np.array(fits), np.array(lims)
    return DetectionLimits(radii_px=radii, lambda_d_px=lam, fluxes=fluxes, snr1_flux=snr1, methods=list(names), thresholds=levels,
                           detected=detected, false_positives=false_pos, tpr_fit=tpr_fit, flux_limit=flux_limit,
                           tpr_target=config.tpr_target, injections=list(injections))


def write_limits(
    output_dir: str | os.PathLike[str],
    *,
    classical: ContrastCurve | None = None,
    limits: DetectionLimits | None = None,
    star_flux: float | None = None,
) -> list[Path]:
    """Write ``contrast_curve.csv``, ``detection_limits.csv``, ``tpr.csv`` and ``limits.png`` (each atomically).

    Returns the paths written. ``star_flux`` adds contrast columns and plots contrast instead of flux.
    """
    import matplotlib.pyplot as plt
    from astropy.table import Table

    from sodinn._atomic import atomic_path
    from sodinn.plotting import plot_contrast_curves

    if classical is None and limits is None:
        msg = "nothing to write: pass a classical curve, detection limits or both"
        raise ValueError(msg)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = []
    if classical is not None:
        rows = classical.rows()
        if star_flux is not None and classical.star_flux is None:
            rows = [{**r, "contrast": r["flux_limit"] / star_flux} for r in rows]
        tables.append(("contrast_curve.csv", Table(rows=rows)))
    if limits is not None:
        tables += [("detection_limits.csv", limits.table(star_flux)), ("tpr.csv", Table(rows=limits.tpr_rows()))]
    written = []
    for name, table in tables:
        with atomic_path(out / name) as tmp:
            table.write(tmp, format="ascii.csv", overwrite=True)
        written.append(out / name)
    ax = plot_contrast_curves(classical, limits, star_flux=star_flux)
    fig = ax.get_figure(root=True)
    assert fig is not None
    with atomic_path(out / "limits.png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return [*written, out / "limits.png"]
