"""Synthetic ADI sequences: a seeded ``make_*`` generator in the style of scikit-learn.

:func:`make_adi_sequence` simulates a coronagraphic angular-differential-imaging sequence whose
noise has the structure that makes exoplanet detection hard:

- **Off-axis PSF**: the analytic Airy pattern of a circular pupil with a central obstruction
  (``scipy.special.j1``), sampled so that its FWHM is ``fwhm_px``, normalised to flux 1 in a
  1-FWHM-diameter aperture (SPEC §1). Companions are this PSF times their flux. The FWHM is that
  of a 2-D Gaussian fit (the convention of :func:`sodinn.adi.psf.fit_fwhm` and VIP, i.e. what a
  pipeline measures on the PSF), ``0.96 lambda/D`` for the default obstruction; the Airy core's
  half-maximum width is 6 % larger.
- **Star light, fixed in the pupil frame**: every frame is the intensity behind a perfect
  coronagraph, ``|FFT(P (exp(i phi_t) - c_t))|^2`` (``P`` the pupil, ``c_t`` the projection of the
  aberrated field on ``P``, so that the unaberrated star is cancelled), plus a smooth AO halo.
  The pupil phase ``phi_t = phi_static + phi_drift(t)`` is a random screen whose power spectrum
  falls as ``(1 + (k / (lambda/D))^2)^(-3/2)``, so the speckle intensity falls with separation like
  the halo. ``phi_drift`` is an Ornstein-Uhlenbeck process (AR(1) per Fourier mode) with a lifetime
  of ``speckle_lifetime_frames``: speckles are pinned (static x drift cross term) and decorrelate
  slowly, and a low-rank (PCA) model of the sequence leaves real residual speckle noise. The halo
  brightness also fluctuates with the same lifetime (10 % rms, seeing/Strehl variations).
- **Coronagraph**: star light is multiplied by the radial transmission
  ``1 - exp(-(r / (0.6 FWHM))^2)``, so the ring at about 1 FWHM, not the star's position, is the
  brightest region. Companions use the off-axis PSF unattenuated.
- **Field rotation**: parallactic angles go from ``angles_start_deg`` to
  ``angles_start_deg + field_rotation_deg``; with ``rotation_profile="transit"`` the rotation is
  fastest mid-sequence, as for a target crossing the meridian (angles follow ``arctan(2 s)`` for
  hour angles ``s`` evenly spaced in ``[-1, 1]``, rescaled to the span), with ``"linear"`` evenly.
  The star light does not rotate; companions do (SPEC §1: at ``theta - PA_t`` in frame ``t``).
- **Detector**: Poisson photon noise on the total (star light + companions + ``sky_flux``), the
  sky level then subtracted as in reduced data, plus Gaussian read noise. The companions' photons
  are drawn last and separately, so the same ``seed`` gives the same frames, pixel for pixel,
  with and without companions, except for the companions themselves (and their photon noise).

Units: the cube is in counts per frame; ``star_flux`` is the flux of the unocculted star in a
1-FWHM aperture, so a companion of contrast ``C`` (in that aperture) has ``flux = C * star_flux``.
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.fft
from scipy.optimize import brentq, least_squares
from scipy.special import j1

from sodinn import _validation as v
from sodinn.adi.geometry import frame_center
from sodinn.adi.injection import cube_inject_companions
from sodinn.adi.psf import normalize_psf

__all__ = ["Companion", "SyntheticADI", "airy_psf", "make_adi_sequence"]

logger = logging.getLogger(__name__)

_ROTATION_PROFILES = ("transit", "linear")
_TRANSIT_SHARPNESS = 2.0  # rotation rate mid-sequence / at the ends = 1 + 2^2 = 5
_SPECKLE_SLOPE = 3.0  # speckle and halo intensity ~ r^-3 beyond lambda/D
_HALO_JITTER = 0.1  # rms of the relative halo brightness fluctuations
_MASK_WIDTH_FWHM = 0.6  # 1/e radius of the coronagraph's intensity attenuation, in FWHM
_MIN_FWHM_PX = 2.1  # Nyquist sampling of lambda/D (the Airy FWHM is ~1.03 lambda/D)
_MIN_SIZE_FWHM = 6.0  # frames at least 6 FWHM wide
_PSF_HALF_WIDTH_FWHM = 2.0  # PSF stamp: 2 * ceil(2 FWHM) + 1 px
_SIGMA_TO_FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class Companion:
    """One injected companion.

    Attributes
    ----------
    sep_px : float
        Separation from the star, px.
    theta_deg : float
        Position angle on the sky, degrees counter-clockwise from +x (SPEC §1).
    flux : float
        Flux in a 1-FWHM-diameter aperture, counts per frame (the normalised PSF's scale).
    x_px, y_px : float
        Position in the derotated (sky-aligned) frame, px: where it appears after
        ``cube_derotate(cube, angles_deg)`` and in a PCA-ADI final frame.
    """

    sep_px: float
    theta_deg: float
    flux: float
    x_px: float
    y_px: float


@dataclass(frozen=True, eq=False)
class SyntheticADI:
    """A synthetic ADI sequence and what it was made from.

    The first five fields are those of an observed sequence; arrays are read-only.

    Attributes
    ----------
    cube : ndarray, shape (n_frames, N, N), float64
        Frames in counts, star on :func:`~sodinn.adi.geometry.frame_center`.
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees, increasing.
    psf : ndarray, shape (p, p)
        Off-axis PSF, odd size, centred, normalised (flux 1 in a 1-FWHM aperture).
    fwhm_px : float
        FWHM of the PSF, px.
    pixel_scale_arcsec : float
        Pixel scale, arcsec/px (metadata only).
    companions : tuple of Companion
        The injected companions, in the order given.
    config : dict
        Every argument of :func:`make_adi_sequence` as plain Python values (JSON/TOML-ready), with
        ``seed`` the integer that reproduces the cube (``None`` if a Generator was passed).
    """

    cube: np.ndarray
    angles_deg: np.ndarray
    psf: np.ndarray
    fwhm_px: float
    pixel_scale_arcsec: float
    companions: tuple[Companion, ...]
    config: dict[str, Any]

    @property
    def companion_positions_xy(self) -> np.ndarray:
        """Sky-frame ``(x, y)`` of every companion, shape ``(n_companions, 2)``."""
        return np.array([[c.x_px, c.y_px] for c in self.companions], dtype=np.float64).reshape(-1, 2)


def make_adi_sequence(
    *,
    n_frames: int = 40,
    size_px: int = 63,
    fwhm_px: float = 4.0,
    field_rotation_deg: float = 60.0,
    angles_start_deg: float | None = None,
    rotation_profile: str = "transit",
    companions: Sequence[tuple[float, float, float]] | npt.ArrayLike = (),
    star_flux: float = 1e6,
    halo_contrast: float = 2e-3,
    speckle_static_rad: float = 0.3,
    speckle_drift_rad: float = 0.15,
    speckle_lifetime_frames: float = 4.0,
    central_obstruction: float = 0.14,
    sky_flux: float = 0.0,
    read_noise: float = 5.0,
    pixel_scale_arcsec: float = 0.0272,
    seed: int | np.random.Generator | None = None,
) -> SyntheticADI:
    """Simulate a coronagraphic ADI sequence with pupil-fixed, slowly evolving speckles.

    See the module docstring for the physics. The same ``seed`` gives the same cube bit for bit.

    Parameters
    ----------
    n_frames : int
        Number of frames (>= 2).
    size_px : int
        Frame size ``N``, px (at least 6 FWHM).
    fwhm_px : float
        FWHM of the PSF, px (>= 2.1: lambda/D Nyquist-sampled).
    field_rotation_deg : float
        Total parallactic rotation, degrees, in ``(0, 360]``.
    angles_start_deg : float, optional
        First parallactic angle, degrees. Default ``-field_rotation_deg / 2`` (a meridian transit).
    rotation_profile : {"transit", "linear"}
        Time profile of the rotation: fastest mid-sequence, or uniform.
    companions : sequence of (sep_px, theta_deg, flux)
        Companions to inject: separation (px), sky position angle (degrees, counter-clockwise from
        +x) and flux in a 1-FWHM aperture (counts per frame, ``contrast * star_flux``).
    star_flux : float
        Flux of the unocculted star in a 1-FWHM aperture, counts per frame; sets the photon noise.
    halo_contrast : float
        Brightness of the smooth AO halo at the star's position before the coronagraph, relative
        to the star's peak (the halo falls as ``(1 + (r / (lambda/D))^2)^(-3/2)``).
    speckle_static_rad : float
        RMS of the static pupil phase, radians (the pinned speckles, >= 0).
    speckle_drift_rad : float
        RMS of the evolving pupil phase, radians (the quasi-static speckles that PCA cannot fully
        model, >= 0).
    speckle_lifetime_frames : float
        Decorrelation time of the evolving phase, frames (> 0).
    central_obstruction : float
        Diameter of the central obstruction as a fraction of the pupil's, in ``[0, 0.9]``.
    sky_flux : float
        Sky background, counts per pixel per frame (adds photon noise; subtracted afterwards).
    read_noise : float
        Gaussian read noise, counts rms per pixel (>= 0).
    pixel_scale_arcsec : float
        Pixel scale, arcsec/px (recorded, not used by the simulation). Default: VLT/NACO's.
    seed : int, numpy.random.Generator or None
        Source of randomness, passed once to ``numpy.random.default_rng``.

    Returns
    -------
    SyntheticADI
        The cube ``(n_frames, size_px, size_px)`` in counts, the angles in degrees, the PSF, the
        injected companions and every argument (see :class:`SyntheticADI`).

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If an argument is out of range (e.g. a companion outside the frame), before any work.

    Notes
    -----
    With the defaults (a NACO-like sequence) the raw contrast of the star light is about 3e-3 at
    1-2 FWHM and 1e-4 at 6 FWHM; a companion has S/N about 2 in a 5-component PCA-ADI reduction
    for a contrast (``flux / star_flux``) of about 1.7e-3 at 1.5 FWHM, 6e-4 at 2.5 FWHM, 1.8e-4 at
    4 FWHM and 6e-5 at 6 FWHM (medians over 20 seeds), while the highest false peak of the S/N
    map is typically 3.5-4.

    Examples
    --------
    >>> data = make_adi_sequence(n_frames=10, size_px=41, companions=[(10.0, 45.0, 500.0)], seed=0)
    >>> data.cube.shape, data.psf.shape, float(data.angles_deg[-1] - data.angles_deg[0])
    ((10, 41, 41), (17, 17), 60.0)
    >>> c = data.companions[0]
    >>> round(c.x_px, 3), round(c.y_px, 3)
    (27.071, 27.071)
    """
    size = _check_size(size_px, fwhm_px)
    fwhm = float(fwhm_px)
    rotation = _check_rotation(field_rotation_deg)
    config: dict[str, Any] = {
        "n_frames": v.check_int(n_frames, name="n_frames", minimum=2),
        "size_px": size,
        "fwhm_px": fwhm,
        "field_rotation_deg": rotation,
        "angles_start_deg": (
            -rotation / 2 if angles_start_deg is None else v.check_real(angles_start_deg, name="angles_start_deg")
        ),
        "rotation_profile": v.check_choice(rotation_profile, _ROTATION_PROFILES, name="rotation_profile"),
        "companions": _check_companions(companions, size, fwhm).tolist(),
        "star_flux": v.check_positive(star_flux, name="star_flux"),
        "halo_contrast": _check_non_negative(halo_contrast, name="halo_contrast"),
        "speckle_static_rad": _check_non_negative(speckle_static_rad, name="speckle_static_rad"),
        "speckle_drift_rad": _check_non_negative(speckle_drift_rad, name="speckle_drift_rad"),
        "speckle_lifetime_frames": v.check_positive(speckle_lifetime_frames, name="speckle_lifetime_frames"),
        "central_obstruction": _check_fraction(central_obstruction, name="central_obstruction", maximum=0.9),
        "sky_flux": _check_non_negative(sky_flux, name="sky_flux"),
        "read_noise": _check_non_negative(read_noise, name="read_noise"),
        "pixel_scale_arcsec": v.check_positive(pixel_scale_arcsec, name="pixel_scale_arcsec"),
    }
    rng, config["seed"] = _make_rng(seed)
    return _simulate(config, rng)


def airy_psf(fwhm_px: float, *, size_px: int | None = None, central_obstruction: float = 0.14) -> np.ndarray:
    """Normalised Airy PSF of a circular pupil with a central obstruction, sampled at pixel centres.

    ``I(v) = [(2 J1(v)/v - eps^2 2 J1(eps v)/(eps v)) / (1 - eps^2)]^2`` with ``v = pi r / (lambda/D)``;
    ``lambda/D`` in px is chosen so that a 2-D Gaussian fit of ``I`` has FWHM ``fwhm_px``
    (:func:`sodinn.adi.psf.fit_fwhm` returns ``fwhm_px`` within 1 % for 2.5-8 px): ``0.97 lambda/D``
    without obstruction, ``0.96 lambda/D`` for ``eps = 0.14``; the half-maximum width of the
    Airy core is 6 % larger.

    Parameters
    ----------
    fwhm_px : float
        FWHM, px (>= 2.1).
    size_px : int, optional
        Odd stamp size. Default ``2 * ceil(2 * fwhm_px) + 1`` (the first two bright rings).
    central_obstruction : float
        Obstruction diameter / pupil diameter ``eps``, in ``[0, 0.9]``.

    Returns
    -------
    ndarray, shape (size_px, size_px), float64
        Centred on the central pixel, flux 1 in a 1-FWHM-diameter aperture (SPEC §1).

    Raises
    ------
    TypeError
        If an argument is not a number (``size_px``: not an integer).
    ValueError
        For ``fwhm_px`` below 2.1 px, an even or too small ``size_px``, or ``central_obstruction``
        outside ``[0, 0.9]``.

    Examples
    --------
    >>> psf = airy_psf(4.0)
    >>> psf.shape, bool(psf[8, 8] == psf.max())
    ((17, 17), True)
    """
    fwhm = _check_fwhm(fwhm_px)
    eps = _check_fraction(central_obstruction, name="central_obstruction", maximum=0.9)
    if size_px is None:
        size = 2 * math.ceil(_PSF_HALF_WIDTH_FWHM * fwhm) + 1
    else:
        size = v.check_int(size_px, name="size_px", minimum=3)
        if size % 2 == 0:
            msg = f"size_px must be odd so that the PSF has a central pixel; got {size}"
            raise ValueError(msg)
    lod = _lambda_over_d_px(fwhm, eps)
    c = size // 2
    yy, xx = np.indices((size, size), dtype=np.float64)
    r = np.hypot(xx - c, yy - c)
    return normalize_psf(_airy_intensity(np.pi * r / lod, eps), fwhm)


def _simulate(config: dict[str, Any], rng: np.random.Generator) -> SyntheticADI:
    """Run the simulation described by a validated ``config``."""
    n, size, fwhm = config["n_frames"], config["size_px"], config["fwhm_px"]
    eps = config["central_obstruction"]
    angles = _parallactic_angles(
        n, config["angles_start_deg"], config["field_rotation_deg"], config["rotation_profile"]
    )
    psf = airy_psf(fwhm, central_obstruction=eps)
    star = _star_light(
        rng,
        n_frames=n,
        size=size,
        fwhm=fwhm,
        eps=eps,
        star_peak=config["star_flux"] * float(psf.max()),
        halo_contrast=config["halo_contrast"],
        static_rad=config["speckle_static_rad"],
        drift_rad=config["speckle_drift_rad"],
        lifetime_frames=config["speckle_lifetime_frames"],
    )
    cube = _detector(rng, star, config["sky_flux"], config["read_noise"])
    table = np.array(config["companions"], dtype=np.float64).reshape(-1, 3)
    if len(table):
        # their photons are drawn last (a sum of Poisson variables is Poisson): the same seed gives
        # the same star light, sky and read noise with or without companions
        planets = cube_inject_companions(
            np.zeros_like(cube), psf, angles, sep_px=table[:, 0], theta_deg=table[:, 1], flux=table[:, 2]
        )
        cube += rng.poisson(np.clip(planets, 0.0, None))  # the Fourier-shifted PSF rings slightly below 0
    cy, cx = frame_center((size, size))
    injected = tuple(
        Companion(
            sep_px=float(sep),
            theta_deg=float(theta),
            flux=float(flux),
            x_px=float(cx + sep * math.cos(math.radians(theta))),
            y_px=float(cy + sep * math.sin(math.radians(theta))),
        )
        for sep, theta, flux in table
    )
    for arr in (cube, angles, psf):
        arr.setflags(write=False)
    return SyntheticADI(
        cube=cube,
        angles_deg=angles,
        psf=psf,
        fwhm_px=fwhm,
        pixel_scale_arcsec=config["pixel_scale_arcsec"],
        companions=injected,
        config=config,
    )


# --- physics ---------------------------------------------------------------------------------


def _airy_intensity(v_arg: np.ndarray, eps: float) -> np.ndarray:
    """Obstructed Airy intensity, 1 at ``v = 0``."""
    amplitude = (_jinc(v_arg) - eps**2 * _jinc(eps * v_arg)) / (1.0 - eps**2)
    return amplitude * amplitude


def _jinc(x: np.ndarray) -> np.ndarray:
    """``2 J1(x) / x``, 1 at 0."""
    x = np.asarray(x, dtype=np.float64)
    out = np.ones_like(x)
    nonzero = x != 0
    out[nonzero] = 2.0 * j1(x[nonzero]) / x[nonzero]
    return out


def _lambda_over_d_px(fwhm: float, eps: float) -> float:
    """``lambda/D`` in px such that a 2-D Gaussian fit of the obstructed Airy pattern has FWHM ``fwhm``."""
    return fwhm / _gaussian_fwhm_lod(eps)


@functools.lru_cache(maxsize=16)
def _gaussian_fwhm_lod(eps: float) -> float:
    """FWHM, in lambda/D, of the least-squares 2-D Gaussian fit of the (continuous) Airy pattern.

    About ``0.94 x`` the Airy core's half-maximum width (``1.03 lambda/D`` for ``eps = 0``), and
    insensitive to the fitted area beyond 1 FWHM: the convention of :func:`sodinn.adi.psf.fit_fwhm`.
    """
    v_half = brentq(lambda x: float(_airy_intensity(np.array([x]), eps)[0]) - 0.5, 0.5, 2.5, xtol=1e-12)
    half_max_lod = 2.0 * v_half / np.pi
    grid = np.linspace(-2.0, 2.0, 121) * half_max_lod  # +-2 FWHM, in lambda/D
    r2 = (grid[:, None] ** 2 + grid[None, :] ** 2).ravel()
    intensity = _airy_intensity(np.pi * np.sqrt(r2), eps)

    def residuals(params: np.ndarray) -> np.ndarray:
        amplitude, sigma = params
        return amplitude * np.exp(-r2 / (2.0 * sigma * sigma)) - intensity

    sigma0 = half_max_lod / _SIGMA_TO_FWHM
    fit = least_squares(residuals, x0=[1.0, sigma0], x_scale=[1.0, sigma0])
    return float(abs(fit.x[1]) * _SIGMA_TO_FWHM)


def _parallactic_angles(n: int, start: float, rotation: float, profile: str) -> np.ndarray:
    """Increasing angles from ``start`` to ``start + rotation`` (exactly), degrees."""
    s = np.linspace(-1.0, 1.0, n)
    if profile == "transit":
        g = np.arctan(_TRANSIT_SHARPNESS * s)
        u = (g - g[0]) / (g[-1] - g[0])
    else:
        u = (s + 1.0) / 2.0
    u[0], u[-1] = 0.0, 1.0
    return start + rotation * u


def _star_light(
    rng: np.random.Generator,
    *,
    n_frames: int,
    size: int,
    fwhm: float,
    eps: float,
    star_peak: float,
    halo_contrast: float,
    static_rad: float,
    drift_rad: float,
    lifetime_frames: float,
) -> np.ndarray:
    """Noiseless coronagraphic star light, shape (n_frames, size, size), counts."""
    lod = _lambda_over_d_px(fwhm, eps)
    m = scipy.fft.next_fast_len(2 * size)  # focal-plane FFT grid: wrap-around lands outside the frame
    pupil = _pupil(m, m / lod, eps)
    rows = np.flatnonzero(pupil.any(axis=1))  # the pupil's support, for a cheaper FFT
    cols = np.flatnonzero(pupil.any(axis=0))
    p = pupil[np.ix_(rows, cols)]
    p_norm = float(np.sum(p * p))
    peak = float(np.sum(p)) ** 2  # unaberrated, unocculted peak intensity
    filt = _phase_filter(m, lod)
    out_idx = (np.arange(size) - size // 2) % m  # focal pixel k sits at index k mod m
    cy, cx = frame_center((size, size))
    yy, xx = np.indices((size, size), dtype=np.float64)
    r = np.hypot(xx - cx, yy - cy)
    transmission = 1.0 - np.exp(-((r / (_MASK_WIDTH_FWHM * fwhm)) ** 2))
    halo = halo_contrast * (1.0 + (r / lod) ** 2) ** (-_SPECKLE_SLOPE / 2)

    rho = math.exp(-1.0 / lifetime_frames)
    innov = math.sqrt(1.0 - rho * rho)
    z_static = _complex_normal(rng, filt.shape)
    z_drift = _complex_normal(rng, filt.shape)
    jitter = rng.standard_normal()
    out = np.empty((n_frames, size, size))
    for t in range(n_frames):
        if t:
            z_drift = rho * z_drift + innov * _complex_normal(rng, filt.shape)
            jitter = rho * jitter + innov * rng.standard_normal()
        phase = scipy.fft.irfft2((static_rad * z_static + drift_rad * z_drift) * filt, s=(m, m))
        field = p * np.exp(1j * phase[np.ix_(rows, cols)])
        field -= p * (np.vdot(p, field) / p_norm)  # perfect coronagraph: remove the coherent star
        # 2-D DFT of the support embedded in the m x m grid, evaluated at the frame's pixels only
        focal = _partial_dft(field, rows, cols, m, out_idx)
        speckles = (focal.real**2 + focal.imag**2) / peak
        out[t] = speckles + math.exp(_HALO_JITTER * jitter) * halo
    out *= transmission * star_peak
    return out


def _partial_dft(field: np.ndarray, rows: np.ndarray, cols: np.ndarray, m: int, out_idx: np.ndarray) -> np.ndarray:
    """``fft2`` of ``field`` placed at ``rows x cols`` of an m x m grid, at ``out_idx x out_idx``."""
    padded = np.zeros((rows.size, m), dtype=np.complex128)
    padded[:, cols] = field
    along_x = scipy.fft.fft(padded, axis=1)[:, out_idx]  # (n_rows, size)
    tall = np.zeros((m, out_idx.size), dtype=np.complex128)
    tall[rows] = along_x
    return scipy.fft.fft(tall, axis=0)[out_idx]


def _pupil(m: int, diameter_px: float, eps: float) -> np.ndarray:
    """Anti-aliased annular pupil of the given diameter on an m x m grid (centred at m // 2)."""
    yy, xx = np.indices((m, m), dtype=np.float64)
    rho = np.hypot(xx - m // 2, yy - m // 2)
    outer = np.clip(diameter_px / 2 - rho + 0.5, 0.0, 1.0)
    inner = np.clip(eps * diameter_px / 2 - rho + 0.5, 0.0, 1.0) if eps > 0 else 0.0
    return outer - inner


def _phase_filter(m: int, lod: float) -> np.ndarray:
    """Fourier amplitude of unit-rms phase screens (``irfft2`` of ``Z * filter``, ``E|Z|^2 = 1``).

    A pupil-phase frequency of ``k`` cycles per grid scatters light ``k`` px from the star, so the
    power spectrum ``(1 + (k / lambda/D)^2)^(-3/2)`` is the speckle halo's profile. No piston.
    """
    ky = np.fft.fftfreq(m) * m
    kx = np.fft.rfftfreq(m) * m
    k = np.hypot(ky[:, None], kx[None, :])
    psd = (1.0 + (k / lod) ** 2) ** (-_SPECKLE_SLOPE / 2)
    psd[0, 0] = 0.0
    # variance of irfft2(Z * sqrt(psd)) = sum of psd over the full (Hermitian) plane / m^4
    weight = np.full(kx.size, 2.0)
    weight[0] = 1.0
    if m % 2 == 0:
        weight[-1] = 1.0
    total = float(np.sum(psd * weight[None, :]))
    return np.sqrt(psd) * (m * m / math.sqrt(total))


def _complex_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Circular complex Gaussian with ``E|z|^2 = 1``."""
    z = rng.standard_normal((*shape, 2))
    return (z[..., 0] + 1j * z[..., 1]) * math.sqrt(0.5)


def _detector(rng: np.random.Generator, expected: np.ndarray, sky: float, read_noise: float) -> np.ndarray:
    """Photon noise on star light + sky (sky then subtracted), plus read noise."""
    counts = rng.poisson(expected + sky).astype(np.float64) - sky
    if read_noise > 0:
        counts += rng.normal(0.0, read_noise, size=counts.shape)
    return counts


# --- validation ------------------------------------------------------------------------------


def _check_fwhm(fwhm_px: float) -> float:
    fwhm = v.check_fwhm(fwhm_px)
    if fwhm < _MIN_FWHM_PX:
        msg = (
            f"fwhm_px={fwhm:g} px undersamples the PSF; pass fwhm_px >= {_MIN_FWHM_PX:g} "
            "(lambda/D Nyquist-sampled) so that the speckle field can be simulated"
        )
        raise ValueError(msg)
    return fwhm


def _check_size(size_px: int, fwhm_px: float) -> int:
    fwhm = _check_fwhm(fwhm_px)
    size = v.check_int(size_px, name="size_px", minimum=1)
    needed = math.ceil(_MIN_SIZE_FWHM * fwhm)
    if size < needed:
        msg = (
            f"size_px={size} is too small for fwhm_px={fwhm:g}: frames must be at least "
            f"{_MIN_SIZE_FWHM:g} FWHM wide; pass size_px >= {needed} or a smaller fwhm_px"
        )
        raise ValueError(msg)
    return size


def _check_rotation(field_rotation_deg: float) -> float:
    rotation = v.check_real(field_rotation_deg, name="field_rotation_deg")
    if not 0 < rotation <= 360:
        msg = f"field_rotation_deg must be in (0, 360] degrees; got {rotation:g}. ADI needs the field to rotate"
        raise ValueError(msg)
    return rotation


def _check_non_negative(value: float, *, name: str) -> float:
    number = v.check_real(value, name=name)
    if number < 0:
        msg = f"{name} must be >= 0; got {number:g}"
        raise ValueError(msg)
    return number


def _check_fraction(value: float, *, name: str, maximum: float) -> float:
    number = v.check_real(value, name=name)
    if not 0 <= number <= maximum:
        msg = f"{name} must be in [0, {maximum:g}]; got {number:g}"
        raise ValueError(msg)
    return number


def _check_companions(companions: Any, size: int, fwhm: float) -> np.ndarray:
    """Return companions as a float64 (n, 3) array of (sep_px, theta_deg, flux), or raise."""
    if isinstance(companions, (str, bytes)) or companions is None:
        msg = f"companions must be a sequence of (sep_px, theta_deg, flux) triples; got {type(companions).__name__}"
        raise TypeError(msg)
    try:
        table = np.array(companions, dtype=np.float64)
    except (TypeError, ValueError) as err:
        msg = f"companions must be a sequence of (sep_px, theta_deg, flux) triples of numbers ({err})"
        raise TypeError(msg) from err
    if table.size == 0:
        return np.zeros((0, 3))
    if table.ndim == 1 and table.size == 3:
        msg = (
            "companions must be a sequence of (sep_px, theta_deg, flux) triples; got a single triple. "
            f"Wrap it in a list: companions=[{tuple(table.tolist())}]"
        )
        raise ValueError(msg)
    if table.ndim != 2 or table.shape[1] != 3:
        msg = f"companions must be a sequence of (sep_px, theta_deg, flux) triples; got shape {table.shape}"
        raise ValueError(msg)
    if not np.isfinite(table).all():
        msg = "companions contain NaN or infinite values; pass finite (sep_px, theta_deg, flux)"
        raise ValueError(msg)
    limit = size / 2 - fwhm / 2
    for i, (sep, _, flux) in enumerate(table):
        if not 0 < sep < limit:
            msg = (
                f"companion {i} has sep_px={sep:g}, outside the {size}x{size} px frame; pass 0 < sep_px < {limit:g} "
                "(half the frame minus half a FWHM) or a larger size_px"
            )
            raise ValueError(msg)
        if flux < 0:
            msg = f"companion {i} has a negative flux ({flux:g}); pass flux >= 0 (counts in a 1-FWHM aperture)"
            raise ValueError(msg)
    return table


def _make_rng(seed: Any) -> tuple[np.random.Generator, int | None]:
    """One Generator for the whole simulation, and the integer seed that reproduces it."""
    if isinstance(seed, np.random.Generator):
        return seed, None
    if seed is None:
        entropy = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]  # an int when drawn
        return np.random.default_rng(entropy), entropy
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        msg = f"seed must be an int, a numpy.random.Generator or None; got {type(seed).__name__} {seed!r}"
        raise TypeError(msg)
    if seed < 0:
        msg = f"seed must be >= 0; got {seed}"
        raise ValueError(msg)
    return np.random.default_rng(int(seed)), int(seed)

