"""The classical contrast curve: the 5-sigma detection limit of annular PCA-ADI with the small-sample correction.

At each separation ``r`` the reduced frame of the real cube (annular PCA-ADI) is measured with the
apertures of :mod:`sodinn.adi.snr`: ``n = floor(pi / asin(FWHM / 2r))`` apertures of radius ``FWHM / 2``
on the circle of radius ``r`` (those near known sources dropped). Their exact sums have standard
deviation ``sigma(r)`` (``ddof=1``). A test aperture on that circle is compared with the ``n2 = n - 1``
others, so the detection threshold whose false-positive fraction equals the Gaussian ``k``-sigma one
(``FPF = norm.sf(k)``, 2.87e-7 for k = 5) is the Student-t quantile (Mawet et al. 2014, ApJ 792, 97)

    ``threshold(r) = sigma(r) * t.isf(FPF, n2 - 1) * sqrt(1 + 1 / n2)``.

The throughput ``tau(r)`` is the aperture flux recovered at fake companions injected into the cube (a
flux far above the noise, several azimuths, the same reduction) divided by the aperture flux injected,
the recovered flux taken on ``reduced(with companions) - reduced(without)``. The limit is
``threshold / tau``.

**Units.** sodinn injects ``flux`` times the *normalised* PSF (flux 1 in an aperture of diameter 1 FWHM,
SPEC §1), so every flux here is in those units: the aperture flux of a companion in the cube's units.
A contrast is that flux divided by the star's flux in the same aperture, ``star_flux`` (e.g.
:func:`sodinn.adi.psf.aperture_flux` of an unsaturated PSF of the star taken with the science exposure
settings; :func:`star_flux` measures it so and scales it by the exposure times and the neutral-density
transmission); it is reported only when ``star_flux`` is given, and ``delta_mag = -2.5 log10(contrast)``
(:func:`delta_mag`). With ``convention="vip"`` the noise ring, the Student factor and the layout of
the fake companions are those of vip-hci's ``contrast_curve``, to compare with it. The detection limits of the models, on injected copies,
are in :mod:`sodinn.evaluate.limits`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.aperture import aperture_sums
from sodinn.adi.baselines import annular_ncomp_limit, pca_annular
from sodinn.adi.geometry import frame_center
from sodinn.adi.injection import cube_inject_companions
from sodinn.adi.psf import aperture_flux
from sodinn.adi.sequence import ADISequence
from sodinn.adi.snr import snr_details
from sodinn.config import SampleConfig
from sodinn.exceptions import SettingError
from sodinn.mlar.samples import sample_psf

__all__ = [
    "CONVENTIONS",
    "ContrastCurve",
    "RingNoise",
    "classical_contrast_curve",
    "default_radii",
    "delta_mag",
    "known_positions",
    "ring_noise",
    "star_flux",
    "student_factor",
    "throughput",
]

logger = logging.getLogger(__name__)

_GOLDEN_DEG = 137.50776405003785
_PATTERN_SPACING_FWHM = 2.0  # companions injected together are at least this far apart in separation
_VIP_PATTERN_SPACING_FWHM = 3.0  # vip-hci's contrast_curve default fc_rad_sep

#: The conventions of a contrast curve: sodinn's (Mawet et al. 2014's ring), or vip-hci's ``contrast_curve``
CONVENTIONS = ("mawet", "vip")



def student_factor(n_noise: npt.ArrayLike, *, sigma: float = 5.0) -> np.ndarray:
    """Return the threshold in units of the aperture noise for a Gaussian ``sigma`` false-positive fraction.

    ``t.isf(FPF, n2 - 1) * sqrt(1 + 1 / n2)`` with ``FPF = norm.sf(sigma)`` and ``n2`` noise apertures: the
    Student-t correction for small samples of Mawet et al. 2014 [1]_.

    Parameters
    ----------
    n_noise : int or array of int
        Number of noise apertures ``n2`` (>= 2).
    sigma : float
        Gaussian-equivalent significance (5: FPF = 2.87e-7).

    Returns
    -------
    ndarray, the shape of ``n_noise`` (0-d for a scalar)
        The factor, dimensionless: the threshold is ``factor * sigma(r)``.

    Raises
    ------
    TypeError
        If ``sigma`` is not a real number.
    ValueError
        If ``n_noise`` is empty or holds a value that is not a whole number >= 2, or ``sigma`` is not > 0.

    References
    ----------
    .. [1] Mawet et al. 2014, "Fundamental limitations of high contrast imaging set by small sample
       statistics", ApJ 792, 97.

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
        Radius of the circle, px.
    sigma : float
        Standard deviation (``ddof=1``) of ``fluxes``.
    fluxes : ndarray, shape (n,)
        Sums in the kept apertures, the frame's units.
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
    apertures: str = "mawet",
) -> RingNoise:
    """Measure the sums of the apertures of radius ``FWHM / 2`` around the circle of radius ``sep_px``.

    ``floor(pi / asin(FWHM / (2 sep)))`` apertures, the first at ``theta0_deg`` (counter-clockwise from +x),
    then clockwise, as :func:`sodinn.adi.snr.snr` (SPEC §5 geometry); those whose centre lies within
    ``exclusion_px`` of a known source are dropped.

    Parameters
    ----------
    frame : array-like, shape (N, N)
        Reduced frame.
    sep_px : float
        Radius of the circle, px (> 0).
    fwhm_px : float
        PSF FWHM, px: the apertures have radius ``fwhm_px / 2``.
    theta0_deg : float
        Angle of the first aperture, degrees counter-clockwise from +x.
    known_sources_xy : array-like, shape (m, 2)
        Known sources (x, y), px; none by default.
    exclusion_px : float
        Apertures whose centre lies within this distance of a known source are dropped, px.
    apertures : {"mawet", "vip"}
        ``"mawet"``: the apertures above, standard deviation with ``ddof=1``; ``"vip"``: vip-hci's
        ``noise_per_annulus`` ring, ``floor(2 pi sep / FWHM)`` apertures ``FWHM / sep`` rad apart counter-clockwise
        from ``theta0_deg``, standard deviation with ``ddof=0``.

    Returns
    -------
    RingNoise
        The kept apertures' sums, their standard deviation and centres.

    Raises
    ------
    TypeError
        If ``frame`` or ``known_sources_xy`` is not numeric, or a scalar argument is not a real number.
    ValueError
        If ``frame`` is not a square 2-D image of finite values, ``fwhm_px`` is implausible for it,
        ``sep_px`` is not > 0, ``known_sources_xy`` is not ``(m, 2)``, ``apertures`` is unknown, or fewer
        than 3 apertures remain (no Student threshold is defined).
    """
    arr = v.check_frame(frame)
    fwhm = v.check_fwhm(fwhm_px, frame_size=arr.shape[0])
    sep = v.check_positive(sep_px, name="sep_px")
    theta = math.radians(v.check_real(theta0_deg, name="theta0_deg"))
    v.check_choice(apertures, CONVENTIONS, name="apertures")
    sources = known_positions(known_sources_xy, arr.shape[0])
    cy, cx = frame_center(arr.shape)
    if apertures == "vip":
        phi = theta + np.arange(int(2 * math.pi * sep / fwhm)) * fwhm / sep
        centres = np.column_stack([cx + sep * np.cos(phi), cy + sep * np.sin(phi)])
        fluxes = aperture_sums(arr, centres, fwhm / 2)
    else:
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
    return RingNoise(sep_px=sep, sigma=float(np.std(kept, ddof=0 if apertures == "vip" else 1)), fluxes=kept,
                     apertures_xy=centres[keep], n_dropped=int((~keep).sum()))


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
    """Measure the throughput: recovered / injected aperture flux of fake companions injected *together*.

    The companions are injected into one copy of the cube.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        The data.
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees, counter-clockwise (SPEC §1).
    psf : ndarray, shape (p, p)
        Normalised PSF used for the injection; recentred (once, with a
        :class:`~sodinn.exceptions.PSFWarning`) if its centroid is off by more than 0.03 px, refused
        beyond the limit of :mod:`sodinn.adi.psf`.
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

    Raises
    ------
    TypeError
        If an array argument is not numeric, or ``fwhm_px`` is not a real number.
    ValueError
        If ``cube`` is not a finite cube of square frames, ``angles_deg`` does not hold one finite angle per
        frame, ``psf`` is not a valid PSF stamp, ``fwhm_px`` is implausible, ``sep_px``, ``theta_deg`` and ``flux`` are not 1-D of equal
        length, or a flux is not > 0.

    Examples
    --------
    >>> psf = np.zeros((5, 5)); psf[2, 2] = 1.0
    >>> cube = np.random.default_rng(0).normal(size=(3, 21, 21))
    >>> throughput(cube, np.zeros(3), psf, 2.0, lambda c: c.mean(axis=0), sep_px=[6.0], theta_deg=[30.0], flux=[50.0])
    array([1.])
    """
    arr = v.check_cube(cube)
    angles = v.check_angles(angles_deg, arr.shape[0])
    psf = v.check_psf(psf, frame_size=arr.shape[-1])
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
        Separations, px.
    noise : ndarray, shape (n,)
        ``sigma(r)``: std (ddof=1) of the aperture sums of the reduced real cube.
    n_noise : ndarray of int, shape (n,)
        ``n2``: kept apertures - 1.
    factor : ndarray, shape (n,)
        Student factor ``t.isf(FPF, n2 - 1) sqrt(1 + 1/n2)``.
    threshold : ndarray, shape (n,)
        ``factor * noise``: the aperture flux a source needs in the reduced frame.
    throughput : ndarray, shape (n,)
        Mean over the injected azimuths.
    throughput_all : ndarray, shape (n, n_azimuths)
        Throughput at each injected azimuth.
    flux_limit : ndarray, shape (n,)
        ``threshold / throughput`` (inf where the throughput is <= 0), in units of the normalised PSF.
    sigma : float
        Gaussian-equivalent significance of the threshold.
    star_flux : float or None
        The star's flux in an aperture of diameter 1 FWHM, the cube's units (None: no contrast).
    lambda_d_px : float
        lambda/D, px.
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
        """Return the curve as one dict per separation.

        Returns
        -------
        list of dict
            Keys ``sep_px``, ``sep_lambda_d``, ``noise``, ``n_noise``, ``student_factor``, ``threshold``,
            ``throughput``, ``flux_limit``, and ``contrast`` with a star flux.
        """
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
        """Return the curve as an astropy Table, one row per separation.

        Returns
        -------
        astropy.table.Table
            The rows of :meth:`rows`.
        """
        from astropy.table import Table

        return Table(rows=self.rows())


def default_radii(sequence: ADISequence, *, step_fwhm: float = 0.5) -> np.ndarray:
    """Return separations every ``step_fwhm`` FWHM from 1 FWHM to ``N/2 - FWHM`` (the last with whole apertures).

    Parameters
    ----------
    sequence : ADISequence
        The data (its FWHM and frame size).
    step_fwhm : float
        Step between separations, in FWHM (> 0).

    Returns
    -------
    ndarray, shape (n,)
        Separations, px, increasing.

    Raises
    ------
    TypeError
        If ``step_fwhm`` is not a real number.
    ValueError
        If ``step_fwhm`` is not finite and > 0.
    """
    fwhm = sequence.fwhm_px
    stop = sequence.frame_size / 2 - fwhm
    return fwhm * np.arange(1.0, stop / fwhm + 1e-9, v.check_positive(step_fwhm, name="step_fwhm"))


def known_positions(xy: Sequence[tuple[float, float]] | npt.ArrayLike, frame_size: int | None = None) -> np.ndarray:
    """Return known sources as a checked ``(n, 2)`` array of (x, y), px.

    Parameters
    ----------
    xy : array-like, shape (n, 2) or (2,)
        Positions (x, y) of the known sources, px; empty for none.
    frame_size : int, optional
        Size N of the ``N x N`` frame the positions must lie in.

    Returns
    -------
    ndarray, shape (n, 2)
        float64 positions; shape ``(0, 2)`` for none.

    Raises
    ------
    TypeError
        If ``xy`` is not numeric.
    ValueError
        If ``xy`` is not ``(n, 2)``, holds a value that is not finite, or lies outside the frame (a
        :class:`~sodinn.exceptions.SettingError` naming ``known_sources_xy``).

    Examples
    --------
    >>> known_positions([]).shape
    (0, 2)
    >>> known_positions((12.0, 30.5))
    array([[12. , 30.5]])
    """
    arr = np.asarray(xy, dtype=np.float64)
    return np.zeros((0, 2)) if arr.size == 0 else v.check_positions_xy(arr, name="known_sources_xy", frame_size=frame_size)


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
    convention: str = "mawet",
) -> ContrastCurve:
    """Compute the ``sigma``-sigma contrast curve of annular PCA-ADI with the small-sample correction.

    Parameters
    ----------
    sequence : ADISequence
        The real data.
    radii_px : array-like, optional
        Separations (default: every 0.5 FWHM from 1 FWHM to ``N/2 - FWHM``).
    ncomp : int
        Principal components of :func:`sodinn.adi.baselines.pca_annular` (annuli 1 FWHM wide from the centre).
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
        Radius of the masks around the known sources, in FWHM (> 0).
    delta_rot : float, (float, float) or None
        Rotation threshold of the annular PCA library (see :func:`sodinn.adi.baselines.pca_annular`).
    lambda_d_px : float, optional
        lambda/D in px (default: the FWHM), for the table's ``sep_lambda_d``.
    reduce : callable, optional
        ``reduce(cube) -> frame`` replacing annular PCA-ADI (``ncomp`` and ``delta_rot`` are then unused):
        the curve of any reduction.
    seed : int
        Seeds the azimuth of the first aperture and of the fake companions.
    convention : {"mawet", "vip"}
        ``"mawet"`` (default): Mawet et al. 2014's ring from a random azimuth (see :func:`ring_noise`), ``n2 = n - 1``
        noise apertures in the Student factor, fake companions as in the Notes. ``"vip"``: as vip-hci's
        ``contrast_curve`` (``nbranch=n_azimuths, theta=0, fc_rad_sep=3``), to compare with it: its ring from
        azimuth 0 (``floor(2 pi r / FWHM)`` apertures, ``ddof=0``), its Student factor with
        ``n2 = floor(2 pi r / FWHM)``, fake companions at azimuths ``360 a / n_azimuths`` from 0, every third
        separation together.

    Returns
    -------
    ContrastCurve
        The noise, Student factor, threshold, throughput and flux limit at each separation.

    Raises
    ------
    TypeError
        If ``reduce`` is not callable, or a number is of the wrong kind.
    ValueError
        If ``radii_px`` is empty, not finite or outside 1 FWHM .. ``N/2 - FWHM/2``, ``ncomp`` does not fit
        the number of frames, ``n_azimuths < 1``, ``seed < 0``, ``convention`` is unknown, one of ``sigma``, ``injection_snr``,
        ``star_flux``, ``lambda_d_px``, ``mask_radius_fwhm`` is not > 0, fewer than 3 noise apertures
        remain at a separation, or no azimuth at a separation is clear of the known sources.

    See Also
    --------
    sodinn.evaluate.limits.detection_limits : Detection limits of the models on injected copies.

    Notes
    -----
    Companions at every separation are injected in ``n_patterns x n_azimuths`` reductions: a pattern holds
    separations at least 2 FWHM apart (so that no two share a PCA annulus), a reduction places them at
    azimuths staggered by the golden angle; the throughput at a separation is the mean over its azimuths.
    The threshold is the Student-t one of Mawet et al. 2014 [1]_ (see :func:`student_factor`).

    References
    ----------
    .. [1] Mawet et al. 2014, "Fundamental limitations of high contrast imaging set by small sample
       statistics", ApJ 792, 97.
    """
    from functools import partial

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
    if reduce is None:  # the default reduction: annular PCA-ADI, checked against what the data allow before any work
        ncomp = v.check_int(ncomp, name="ncomp", minimum=1)
        most, why = annular_ncomp_limit(sequence.angles_deg, fwhm, sequence.frame_size, delta_rot=delta_rot)
        if ncomp > most:
            why = why.replace("{", "{{").replace("}", "}}")
            if most >= 1:
                msg = f"{ncomp} components are more than annular PCA-ADI can use on these data ({why}); use at most {{ncomp}}"
                raise SettingError(msg, ncomp=most)
            msg = f"annular PCA-ADI can use no components on these data ({why}); lower {{delta_rot}}"
            raise SettingError(msg, delta_rot=None)
    n_az = v.check_int(n_azimuths, name="n_azimuths", minimum=1)
    v.check_positive(injection_snr, name="injection_snr")
    v.check_positive(sigma, name="sigma")
    if star_flux is not None:
        v.check_positive(star_flux, name="star_flux")
    lam = fwhm if lambda_d_px is None else v.check_positive(lambda_d_px, name="lambda_d_px")
    sources = known_positions(known_sources_xy, sequence.frame_size)
    exclusion = v.check_positive(mask_radius_fwhm, name="mask_radius_fwhm") * fwhm
    rng = np.random.default_rng(v.check_int(seed, name="seed", minimum=0))
    v.check_choice(convention, CONVENTIONS, name="convention")

    algorithm = "pca_annular" if reduce is None else getattr(reduce, "__name__", type(reduce).__name__)
    if reduce is None:
        reduce = partial(pca_annular, angles_deg=sequence.angles_deg, fwhm_px=fwhm, ncomp=ncomp, delta_rot=delta_rot)
    elif not callable(reduce):
        msg = f"reduce must be a callable cube -> frame; got {type(reduce).__name__}"
        raise TypeError(msg)
    base = reduce(sequence.cube)
    theta0 = float(rng.uniform(0.0, 360.0))
    ring_theta0 = 0.0 if convention == "vip" else theta0
    rings = [ring_noise(base, r, fwhm, theta0_deg=ring_theta0, known_sources_xy=sources, exclusion_px=exclusion,
                        apertures=convention) for r in radii]
    noise = np.array([ring.sigma for ring in rings])
    # VIP counts every aperture of the ring in its Student factor; Mawet's test aperture is compared with the n - 1 others
    n_noise = np.array([ring.fluxes.size if convention == "vip" else ring.n_noise for ring in rings])

    psf = sample_psf(sequence, SampleConfig())
    order = np.argsort(radii)
    step = np.min(np.diff(radii[order])) if radii.size > 1 else np.inf
    spacing = _VIP_PATTERN_SPACING_FWHM if convention == "vip" else _PATTERN_SPACING_FWHM
    n_patterns = max(1, min(radii.size, math.ceil(spacing * fwhm / step - 1e-9))) if np.isfinite(step) else 1
    centre = frame_center(sequence.cube.shape)[::-1]
    tau = np.full((radii.size, n_az), np.nan)
    offset = 0.0 if convention == "vip" else float(rng.uniform(0.0, 360.0))
    stagger = 0.0 if convention == "vip" else _GOLDEN_DEG
    for a in range(n_az):
        for p in range(n_patterns):
            members = order[p::n_patterns]
            thetas = [_free_theta(offset + 360.0 * a / n_az + stagger * j, radii[j], centre, sources, exclusion) for j in members]
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
                    seed=int(seed), theta0_deg=ring_theta0, convention=convention, known_sources_xy=sources.tolist())
    return ContrastCurve(radii_px=radii, noise=noise, n_noise=n_noise, factor=factor, threshold=threshold, throughput=mean_tau,
                         throughput_all=tau, flux_limit=flux_limit, sigma=float(sigma), star_flux=star_flux, lambda_d_px=lam,
                         settings=settings)


def star_flux(
    psf: npt.ArrayLike,
    fwhm_px: float,
    *,
    psf_exposure_s: float = 1.0,
    cube_exposure_s: float = 1.0,
    psf_nd_transmission: float = 1.0,
) -> float:
    """Return the star's flux in an aperture of diameter 1 FWHM, as it would be in a frame of the cube.

    The off-axis (unsaturated) PSF is measured the way companions are (:func:`sodinn.adi.psf.aperture_flux`:
    the exact sum in a circle of diameter ``fwhm_px`` on its centre), then scaled to the cube's exposure:
    ``aperture_flux(psf) * cube_exposure_s / psf_exposure_s / psf_nd_transmission``. A companion's
    contrast is its flux in the same aperture divided by this.

    Parameters
    ----------
    psf : array-like, shape (p, p)
        The off-axis PSF as taken (not normalised), centred on its central pixel, in counts per frame.
    fwhm_px : float
        FWHM, px: the aperture's diameter.
    psf_exposure_s : float
        Exposure time of the PSF frame, seconds (> 0).
    cube_exposure_s : float
        Exposure time of a frame of the cube, seconds (> 0).
    psf_nd_transmission : float
        Transmission of the neutral-density filter of the PSF, in (0, 1] (1: none).

    Returns
    -------
    float
        The star's flux, the cube's units.

    Raises
    ------
    TypeError
        If ``psf`` is not numeric or a number is not a real number.
    ValueError
        If ``psf`` is not a finite square image, ``fwhm_px`` is implausible, an exposure is not > 0,
        ``psf_nd_transmission`` is not in (0, 1], or the aperture flux is not > 0.

    Examples
    --------
    >>> psf = np.zeros((9, 9)); psf[4, 4] = 2.0
    >>> star_flux(psf, 3.0, psf_exposure_s=0.5, cube_exposure_s=2.0, psf_nd_transmission=0.02)
    400.0
    """
    scale = v.check_positive(cube_exposure_s, name="cube_exposure_s") / v.check_positive(psf_exposure_s, name="psf_exposure_s")
    nd = v.check_positive(psf_nd_transmission, name="psf_nd_transmission")
    if nd > 1:
        msg = f"psf_nd_transmission must be in (0, 1] (the fraction of light the filter lets through); got {nd}"
        raise ValueError(msg)
    flux = aperture_flux(psf, fwhm_px)
    if not flux > 0:
        msg = f"the PSF's flux in an aperture of diameter {fwhm_px:g} px is {flux:g}, not > 0; pass the unsaturated PSF of the star"
        raise ValueError(msg)
    return flux * scale / nd


def delta_mag(contrast: npt.ArrayLike) -> np.ndarray:
    """Return the magnitude difference ``-2.5 log10(contrast)`` (NaN where the contrast is not finite and > 0).

    Parameters
    ----------
    contrast : array-like
        Flux ratios companion / star (dimensionless).

    Returns
    -------
    ndarray, the shape of ``contrast``
        Delta mag, mag (larger: fainter).

    Examples
    --------
    >>> delta_mag([1e-2, 1e-4, 0.0]).tolist()
    [5.0, 10.0, nan]
    """
    c = np.asarray(contrast, dtype=np.float64)
    ok = np.isfinite(c) & (c > 0)
    return np.where(ok, -2.5 * np.log10(np.where(ok, c, 1.0)), np.nan)
