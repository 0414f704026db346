"""Astrometry and photometry of a point source by the negative fake companion (NEGFC) method.

A companion's position and flux are those of the negative companion that, injected into the cube and
processed like the data (annular PCA-ADI), best cancels it: the residuals in a circular aperture
around its first-guess position (their chi-square against the noise of the data's own reduction, or
the sum of their absolute values) are minimised over ``(sep_px, theta_deg, flux)`` by the Nelder-Mead
simplex (Marois et al. 2010; Lagrange et al. 2010; Wertz et al. 2017, A&A 598, A83; vip-hci's
``firstguess``, whose default figure of merit is the same chi-square). Because the negative companion is processed
together with the data, self-subtraction and the distortion of the companion's image by PCA-ADI are
part of the model: the result is unbiased where a fit to the final frame is not.

Geometry as vip-hci's NEGFC with ``algo=pca_annular``: one annulus of ``annulus_width_fwhm`` FWHM
centred on the first guess (inner radius ``max(1, floor(sep - width / 2))`` px), on the cube cropped
around it, so that one evaluation costs an injection and one annulus of PCA.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.baselines import pca_annular
from sodinn.adi.geometry import frame_center
from sodinn.adi.injection import cube_inject_companions
from sodinn.adi.psf import crop_psf

__all__ = ["MERITS", "NEGFC_METHOD", "NegFCResult", "negfc_merit", "negfc_simplex"]

#: The figures of merit :func:`negfc_merit` knows
MERITS = ("chi2", "sum")

logger = logging.getLogger(__name__)

#: How :func:`negfc_simplex` measures a source, in words (written in products' metadata)
NEGFC_METHOD = (
    "negative fake companion (Lagrange et al. 2010; Wertz et al. 2017; as vip-hci's firstguess): (sep, theta, flux) "
    "minimising the chi-square of the residuals within 2 FWHM of the first guess (against the mean and standard "
    "deviation of the data's reduction in the ring of the guess, away from it) in the annular PCA-ADI frame (one "
    "annulus of 4 FWHM centred on the first guess, median collapse) of the cube minus the companion model; "
    "Nelder-Mead simplex from the first guess"
)


@dataclass(frozen=True)
class NegFCResult:
    """The outcome of :func:`negfc_simplex`.

    Attributes
    ----------
    sep_px : float
        Separation from the frame centre, px.
    theta_deg : float
        Angle counter-clockwise from +x on the derotated frame, degrees, in [0, 360).
    flux : float
        Flux, in the cube's units times the normalised PSF (flux 1 in a 1-FWHM-diameter aperture).
    x, y : float
        The position on the derotated frame, px (0-based, star at ``frame_center``).
    merit : float
        Figure of merit at the solution (:func:`negfc_merit`).
    merit_start : float
        Figure of merit at the first guess.
    n_evaluations : int
        Reductions run by the simplex.
    converged : bool
        True when the simplex met its tolerances within ``max_evaluations``, the flux is positive and
        the position moved less than 1 FWHM from the first guess.
    """

    sep_px: float
    theta_deg: float
    flux: float
    x: float
    y: float
    merit: float
    merit_start: float
    n_evaluations: int
    converged: bool


@dataclass(frozen=True)
class _Problem:
    """The cropped cube, PSF, aperture and noise level one NEGFC fit works on."""

    cube: np.ndarray
    angles: np.ndarray
    psf: np.ndarray
    fwhm: float
    ncomp: int
    delta_rot: Any
    r_in: float
    width: float
    aperture: tuple[np.ndarray, np.ndarray]
    collapse: str
    merit_kind: str
    injection: str
    order: int
    mu: float
    sigma: float

    def frame(self, cube: np.ndarray) -> np.ndarray:
        return pca_annular(cube, self.angles, self.fwhm, ncomp=self.ncomp, r_in_px=self.r_in, width_px=self.width,
                           delta_rot=self.delta_rot, collapse=self.collapse, order=self.order)

    def merit(self, sep: float, theta: float, flux: float) -> float:
        if not 0 <= sep < self.cube.shape[-1] / 2:
            return math.inf
        negative = cube_inject_companions(self.cube, self.psf, self.angles, sep_px=sep, theta_deg=theta, flux=-flux,
                                          method=self.injection)
        values = self.frame(negative)[self.aperture]
        dof = max(values.size - 3, 1)
        if self.merit_kind == "sum":
            return float(np.abs(values).sum() / dof)
        return float((((values - self.mu) / self.sigma) ** 2).sum() / dof)


def _problem(cube: npt.ArrayLike, angles_deg: npt.ArrayLike, psf: npt.ArrayLike, fwhm_px: float, sep_px: float,
             theta_deg: float, *, ncomp: int, delta_rot: Any, annulus_width_fwhm: float, aperture_radius_fwhm: float,
             collapse: str, merit: str, injection: str, order: int) -> _Problem:
    arr = v.check_cube(cube)
    n, size, _ = arr.shape
    angles = v.check_angles(angles_deg, n)
    fwhm = v.check_fwhm(fwhm_px, frame_size=size)
    sep = v.check_positive(sep_px, name="sep_px")
    theta = v.check_real(theta_deg, name="theta_deg")
    ncomp = v.check_int(ncomp, name="ncomp", minimum=1)
    width = v.check_positive(annulus_width_fwhm, name="annulus_width_fwhm") * fwhm
    radius = v.check_positive(aperture_radius_fwhm, name="aperture_radius_fwhm") * fwhm
    kind = v.check_choice(merit, MERITS, name="merit")
    r_in = float(max(1, math.floor(sep - width / 2)))
    if r_in + width > size / 2:
        msg = (f"sep_px={sep:g} is too close to the edge of {size}x{size} frames for an annulus of "
               f"{annulus_width_fwhm:g} FWHM ({width:.1f} px) around it; lower annulus_width_fwhm")
        raise ValueError(msg)
    half = math.ceil(r_in + width + 1)
    cy, cx = frame_center(arr.shape)
    if 2 * half + 1 < size:  # crop around the star (VIP's negfc does the same): the annulus is all that is used
        arr = arr[:, cy - half:cy + half + 1, cx - half:cx + half + 1]
        cy = cx = half
    stamp = np.asarray(psf, dtype=np.float64)
    if stamp.ndim == 2 and stamp.shape[0] > arr.shape[-1]:
        stamp = crop_psf(stamp, arr.shape[-1] if arr.shape[-1] % 2 else arr.shape[-1] - 1)
    x0 = cx + sep * math.cos(math.radians(theta))
    y0 = cy + sep * math.sin(math.radians(theta))
    yy, xx = np.indices(arr.shape[1:])
    from_guess = np.hypot(xx - x0, yy - y0)
    aperture = np.nonzero(from_guess < radius)
    problem = _Problem(arr, angles, stamp, fwhm, ncomp, delta_rot, r_in, width, (aperture[0], aperture[1]),
                       v.check_choice(collapse, ("median", "mean"), name="collapse"), kind,
                       v.check_choice(injection, ("fft", "spline"), name="injection"), order, 0.0, 1.0)
    if kind == "sum":
        return problem
    # the noise of the data's own reduction: its ring at the guess's radius, away from the source
    r = np.hypot(xx - cx, yy - cy)
    ring = problem.frame(arr)[(np.abs(r - sep) < fwhm) & (from_guess >= radius + fwhm)]
    if ring.size < 3 or not np.std(ring) > 0:
        msg = f"no noise can be measured in the ring at sep_px={sep:g} outside the aperture; lower aperture_radius_fwhm"
        raise ValueError(msg)
    return replace(problem, mu=float(ring.mean()), sigma=float(ring.std(ddof=1)))


def negfc_merit(
    cube: npt.ArrayLike,
    angles_deg: npt.ArrayLike,
    psf: npt.ArrayLike,
    fwhm_px: float,
    *,
    sep_px: float,
    theta_deg: float,
    flux: float,
    ncomp: int,
    guess_sep_px: float | None = None,
    guess_theta_deg: float | None = None,
    delta_rot: float | tuple[float, float] | None = (0.1, 1.0),
    annulus_width_fwhm: float = 4.0,
    aperture_radius_fwhm: float = 2.0,
    collapse: str = "median",
    merit: str = "chi2",
    injection: str = "fft",
    order: int = 1,
) -> float:
    """Return the NEGFC figure of merit of a companion model: how far the aperture is from noise once it is removed.

    The cube minus ``flux`` times the PSF at ``(sep_px, theta_deg)`` is reduced by annular PCA-ADI on
    one annulus of ``annulus_width_fwhm`` FWHM around the first guess. Over the ``n_pix`` pixels
    within ``aperture_radius_fwhm`` FWHM of the first guess, the ``"chi2"`` merit is
    ``sum(((residual - mu) / sigma) ** 2) / (n_pix - 3)``, with ``mu`` and ``sigma`` the mean and
    standard deviation of the data's own reduction in the ring within 1 FWHM of the guess's radius,
    farther than ``aperture_radius_fwhm + 1`` FWHM from it (vip-hci's ``chisquare`` with
    ``mu_sigma``, its ``firstguess`` default); ``"sum"`` is ``sum(|residual|) / (n_pix - 3)``
    (vip-hci's ``fmerit='sum'``). The pixels are correlated: the chi-square is a merit, not a
    likelihood.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        Star-centred frames (cube units).
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees, counter-clockwise (SPEC §1).
    psf : ndarray, shape (p, p)
        Normalised PSF (flux 1 in a 1-FWHM-diameter aperture, SPEC §1).
    fwhm_px : float
        FWHM, px.
    sep_px, theta_deg, flux : float
        The companion model: separation (px), angle counter-clockwise from +x on the derotated frame
        (degrees), flux (cube units times the PSF).
    ncomp : int
        Principal components.
    guess_sep_px, guess_theta_deg : float, optional
        The first guess, which fixes the annulus and the aperture (default: ``sep_px``, ``theta_deg``).
    delta_rot : float, (float, float) or None
        Rotation threshold of the annular PCA, FWHM (see :func:`sodinn.adi.baselines.pca_annular`; a
        pair gives its first value here: there is one annulus).
    annulus_width_fwhm : float
        Width of the annulus, FWHM (default 4, as vip-hci's tutorials).
    aperture_radius_fwhm : float
        Radius of the aperture, FWHM (default 2).
    collapse : {"median", "mean"}
        Collapse of the derotated residuals.
    merit : {"chi2", "sum"}
        Figure of merit (default ``"chi2"``).
    injection : {"fft", "spline"}
        Sub-pixel shift of the injected PSF (:func:`sodinn.adi.injection.cube_inject_companions`).
    order : {1, 3}
        Rotation interpolation of the annular PCA (bilinear or cubic spline).

    Returns
    -------
    float
        The figure of merit: dimensionless for ``"chi2"``, cube units for ``"sum"`` (``inf`` for a
        separation outside the frame).

    Raises
    ------
    TypeError
        If an array argument is not numeric or a number argument is of the wrong kind.
    ValueError
        If the cube, angles or FWHM are malformed, the first guess is not at a positive separation
        with room for the annulus inside the frame, a width or radius is not positive, ``merit``,
        ``injection`` or ``order`` is unknown, or the ring leaves no pixels to measure the
        noise.

    Examples
    --------
    >>> from sodinn.datasets import make_adi_sequence
    >>> seq = make_adi_sequence(n_frames=20, size_px=41, seed=0)
    >>> float(negfc_merit(seq.cube, seq.angles_deg, seq.psf, seq.fwhm_px, sep_px=10.0,
    ...                   theta_deg=30.0, flux=0.0, ncomp=2)) > 0
    True
    """
    problem = _problem(cube, angles_deg, psf, fwhm_px, sep_px if guess_sep_px is None else guess_sep_px,
                       theta_deg if guess_theta_deg is None else guess_theta_deg, ncomp=ncomp, delta_rot=delta_rot,
                       annulus_width_fwhm=annulus_width_fwhm, aperture_radius_fwhm=aperture_radius_fwhm,
                       collapse=collapse, merit=merit, injection=injection, order=order)
    return problem.merit(v.check_real(sep_px, name="sep_px"), v.check_real(theta_deg, name="theta_deg"),
                         v.check_real(flux, name="flux"))


def negfc_simplex(
    cube: npt.ArrayLike,
    angles_deg: npt.ArrayLike,
    psf: npt.ArrayLike,
    fwhm_px: float,
    *,
    sep_px: float,
    theta_deg: float,
    flux: float,
    ncomp: int,
    delta_rot: float | tuple[float, float] | None = (0.1, 1.0),
    annulus_width_fwhm: float = 4.0,
    aperture_radius_fwhm: float = 2.0,
    collapse: str = "median",
    merit: str = "chi2",
    injection: str = "fft",
    order: int = 1,
    tol_px: float = 0.01,
    max_evaluations: int = 300,
) -> NegFCResult:
    """Fit a point source's separation, angle and flux by the negative fake companion method.

    Minimises :func:`negfc_merit` over ``(sep_px, theta_deg, flux)`` with the Nelder-Mead simplex
    (:func:`scipy.optimize.minimize`), from the first guess given (e.g. a detection's position and a
    flux fitted at it). The simplex works in scaled coordinates: px along the radius, px along the
    arc, and tenths of the first-guess flux; it starts with steps of 0.5 px, 0.5 px and 10 % and stops
    when its vertices agree within ``tol_px`` (and ``tol_px`` tenths of the flux) and the merit within
    1e-4 of its first value, or after ``max_evaluations`` reductions. The annulus and the aperture
    stay where the first guess put them (as vip-hci's NEGFC), so the merit cannot be lowered by moving
    the aperture off the source.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        Star-centred frames (cube units).
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees, counter-clockwise (SPEC §1).
    psf : ndarray, shape (p, p)
        Normalised PSF (flux 1 in a 1-FWHM-diameter aperture, SPEC §1).
    fwhm_px : float
        FWHM, px.
    sep_px, theta_deg, flux : float
        First guess: separation (px, > 0), angle counter-clockwise from +x on the derotated frame
        (degrees), flux (cube units times the PSF, not 0).
    ncomp : int
        Principal components of the annular PCA.
    delta_rot : float, (float, float) or None
        Rotation threshold of the annular PCA, FWHM (a pair gives its first value: one annulus).
    annulus_width_fwhm : float
        Width of the annulus, FWHM (default 4).
    aperture_radius_fwhm : float
        Radius of the aperture of the merit, FWHM (default 2).
    collapse : {"median", "mean"}
        Collapse of the derotated residuals (default ``"median"``, as vip-hci's NEGFC).
    merit : {"chi2", "sum"}
        Figure of merit (:func:`negfc_merit`; default ``"chi2"``, as vip-hci's ``firstguess``).
    injection : {"fft", "spline"}
        Sub-pixel shift of the injected PSF (default ``"fft"``).
    order : {1, 3}
        Rotation interpolation of the annular PCA (default 1, bilinear).
    tol_px : float
        Position tolerance of the simplex, px (default 0.01).
    max_evaluations : int
        Most reductions (default 300; about 0.05-0.1 s each on 61 frames of 101 x 101 px).

    Returns
    -------
    NegFCResult
        Separation, angle, flux, position, merits and whether the fit converged.

    Raises
    ------
    TypeError
        If an array argument is not numeric or a number argument is of the wrong kind.
    ValueError
        If the cube, angles or FWHM are malformed, ``sep_px`` is not positive or leaves no room for
        the annulus, ``flux`` is 0, a tolerance, width or radius is not positive, ``merit``,
        ``injection`` or ``order`` is unknown, or the ring leaves no pixels to measure the
        noise.

    Examples
    --------
    >>> from sodinn.adi.injection import cube_inject_companions
    >>> from sodinn.datasets import make_adi_sequence
    >>> seq = make_adi_sequence(n_frames=30, size_px=51, seed=0)
    >>> cube = cube_inject_companions(seq.cube, seq.psf, seq.angles_deg, sep_px=15, theta_deg=60, flux=4000.0)
    >>> fit = negfc_simplex(cube, seq.angles_deg, seq.psf, seq.fwhm_px, sep_px=15.6, theta_deg=58.0,
    ...                     flux=3000.0, ncomp=5)
    >>> bool(abs(fit.sep_px - 15) < 0.2 and abs(fit.flux / 4000 - 1) < 0.1)
    True
    """
    from scipy.optimize import minimize

    problem = _problem(cube, angles_deg, psf, fwhm_px, sep_px, theta_deg, ncomp=ncomp, delta_rot=delta_rot,
                       annulus_width_fwhm=annulus_width_fwhm, aperture_radius_fwhm=aperture_radius_fwhm,
                       collapse=collapse, merit=merit, injection=injection, order=order)
    sep0, theta0 = float(sep_px), float(theta_deg)
    flux0 = v.check_real(flux, name="flux")
    if flux0 == 0:
        msg = "flux must not be 0: give a first guess of the companion's flux (e.g. its aperture flux)"
        raise ValueError(msg)
    tol = v.check_positive(tol_px, name="tol_px")
    limit = v.check_int(max_evaluations, name="max_evaluations", minimum=4)
    flux_step = 0.1 * abs(flux0)
    arc = math.radians(1.0) * sep0  # px per degree of theta at the first guess

    def unscale(z: np.ndarray) -> tuple[float, float, float]:
        return sep0 + float(z[0]), theta0 + float(z[1]) / arc, flux0 + float(z[2]) * flux_step

    def objective(z: np.ndarray) -> float:
        return problem.merit(*unscale(z))

    start = problem.merit(sep0, theta0, flux0)
    simplex = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
    solution = minimize(objective, np.zeros(3), method="Nelder-Mead",
                        options={"initial_simplex": simplex, "xatol": tol, "fatol": 1e-4 * start, "maxfev": limit})
    sep, theta, fit_flux = unscale(solution.x)
    if sep < 0:  # the same point on the other side of the star
        sep, theta = -sep, theta + 180.0
    theta %= 360.0
    cy, cx = frame_center(np.shape(cube))
    x = cx + sep * math.cos(math.radians(theta))
    y = cy + sep * math.sin(math.radians(theta))
    moved = math.hypot(x - (cx + sep0 * math.cos(math.radians(theta0))), y - (cy + sep0 * math.sin(math.radians(theta0))))
    converged = bool(solution.success) and fit_flux > 0 and moved < problem.fwhm
    if not converged:
        logger.info("NEGFC from (sep %.2f px, theta %.1f deg): %s; flux %.4g, moved %.2f px", sep0, theta0,
                    solution.message, fit_flux, moved)
    return NegFCResult(sep_px=sep, theta_deg=theta, flux=fit_flux, x=x, y=y, merit=float(solution.fun),
                       merit_start=start, n_evaluations=int(solution.nfev), converged=converged)
