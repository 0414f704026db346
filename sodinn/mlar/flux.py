"""The S/N oracle: which companion fluxes give S/N 1 to 3 in each annulus (SPEC §3).

For each annulus, fake companions are injected at a few azimuths and a geometric ladder of fluxes,
the cube is reduced with annular PCA-ADI, and the S/N (Mawet et al. 2014) is measured at each
injected position. A monotone (isotonic) fit of S/N against flux is inverted at the bounds of
``snr_range``. One companion per annulus is injected in each reduction (azimuths staggered by the
golden angle between neighbouring annuli), so a reduction serves every annulus at once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.baselines import pca_annular
from sodinn.adi.geometry import frame_center
from sodinn.adi.injection import cube_inject_companions
from sodinn.adi.snr import snr, snr_details

__all__ = ["FluxRangeEstimator"]

logger = logging.getLogger(__name__)

_GOLDEN_DEG = 137.50776405003785


class FluxRangeEstimator:
    """Estimate, per separation, the flux range that yields a target S/N range.

    Parameters
    ----------
    snr_range : (float, float)
        Target S/N bounds (default 1 to 3).
    ncomp : int
        Principal components of the annular PCA-ADI reduction.
    n_azimuths : int
        Injections per separation and flux level.
    n_levels : int
        Flux levels, spread geometrically from 0.3 to 40 times the aperture noise at that separation.
    rng : int, Generator or None
        Seeds the azimuth offset.

    Attributes
    ----------
    flux_range_ : ndarray, shape (n_radii, 2)
        Fluxes (cube units, times the normalised PSF) at the S/N bounds.
    fluxes_ : ndarray, shape (n_radii, n_levels)
        Injected fluxes.
    snrs_ : ndarray, shape (n_radii, n_levels, n_azimuths)
        Measured S/N.
    snr_curve_ : ndarray, shape (n_radii, n_levels)
        Isotonic fit of S/N against flux.
    noise_px_ : ndarray, shape (n_radii,)
        Standard deviation of aperture sums in the reduced real cube at each separation.
    """

    def __init__(
        self,
        snr_range: tuple[float, float] = (1.0, 3.0),
        *,
        ncomp: int = 10,
        n_azimuths: int = 3,
        n_levels: int = 6,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        self.snr_range = snr_range
        self.ncomp = ncomp
        self.n_azimuths = n_azimuths
        self.n_levels = n_levels
        self.rng = rng

    def fit(
        self,
        cube: npt.ArrayLike,
        angles_deg: npt.ArrayLike,
        psf: npt.ArrayLike,
        fwhm_px: float,
        radii_px: npt.ArrayLike,
        *,
        exclude_xy: Sequence[tuple[float, float]] = (),
        exclude_radius_px: float = 0.0,
    ) -> FluxRangeEstimator:
        """Measure S/N against flux at each separation in ``radii_px`` and fit the flux range.

        Parameters
        ----------
        cube : array-like, shape (n_frames, N, N)
            The ADI cube (star centred).
        angles_deg : array-like, shape (n_frames,)
            Parallactic angles, degrees, counter-clockwise (SPEC §1).
        psf : array-like, shape (p, p)
            Normalised PSF used for the injections; recentred (once, with a
            :class:`~sodinn.exceptions.PSFWarning`) if its centroid is off by more than 0.03 px, refused
            beyond the limit of :mod:`sodinn.adi.psf`.
        fwhm_px : float
            PSF FWHM, px.
        radii_px : array-like, shape (n_radii,)
            Separations, px (e.g. annulus centres).
        exclude_xy : sequence of (float, float)
            Known sources ``(x, y)``, px: no injection and no noise aperture near them.
        exclude_radius_px : float
            The radius around each known source, px.

        Returns
        -------
        FluxRangeEstimator
            ``self``, with the fitted attributes set.

        Raises
        ------
        TypeError
            If an input is not numeric, or ``n_azimuths`` or ``n_levels`` is not an integer.
        ValueError
            If the cube, angles, PSF or FWHM are malformed, ``snr_range`` is not positive ``(low, high)``
            with low < high, ``n_azimuths < 1`` or ``n_levels < 3``.
        """
        from sklearn.isotonic import IsotonicRegression

        arr = v.check_cube(cube)
        angles = v.check_angles(angles_deg, arr.shape[0])
        psf = v.check_psf(psf, frame_size=arr.shape[-1])  # recentred once, not at every injection
        fwhm = v.check_fwhm(fwhm_px, frame_size=arr.shape[-1])
        lo, hi = (v.check_positive(s, name="snr_range") for s in self.snr_range)
        if not lo < hi:
            msg = f"snr_range must be (low, high) with low < high; got {self.snr_range}"
            raise ValueError(msg)
        n_az = v.check_int(self.n_azimuths, name="n_azimuths", minimum=1)
        n_lev = v.check_int(self.n_levels, name="n_levels", minimum=3)
        radii = np.atleast_1d(np.asarray(radii_px, dtype=np.float64))
        rng = np.random.default_rng(self.rng)
        cy, cx = frame_center(arr.shape)
        sources = np.asarray(exclude_xy, dtype=np.float64).reshape(-1, 2)

        base = pca_annular(arr, angles, fwhm, ncomp=self.ncomp)
        noise = np.array([self._aperture_noise(base, r, fwhm, (cx, cy), sources, exclude_radius_px) for r in radii])
        levels = np.geomspace(0.3, 40.0, n_lev)
        fluxes = noise[:, None] * levels[None, :]
        snrs = np.empty((radii.size, n_lev, n_az))
        offset = float(rng.uniform(0, 360))
        for z in range(n_az):
            thetas = np.array([
                self._free_azimuth(offset + 360.0 * z / n_az + _GOLDEN_DEG * a, r, (cx, cy), sources, exclude_radius_px)
                for a, r in enumerate(radii)
            ])
            for level in range(n_lev):
                injected = cube_inject_companions(arr, psf, angles, sep_px=radii, theta_deg=thetas, flux=fluxes[:, level])
                frame = pca_annular(injected, angles, fwhm, ncomp=self.ncomp)
                for a, (r, t) in enumerate(zip(radii, thetas)):
                    xy = (cx + r * math.cos(math.radians(t)), cy + r * math.sin(math.radians(t)))
                    snrs[a, level, z] = snr(frame, xy, fwhm)
            logger.info("S/N oracle: azimuth set %d/%d done", z + 1, n_az)
        curve = np.empty((radii.size, n_lev))
        flux_range = np.empty((radii.size, 2))
        for a in range(radii.size):
            iso = IsotonicRegression(increasing=True, out_of_bounds="clip")
            iso.fit(np.repeat(fluxes[a], n_az), snrs[a].ravel())
            curve[a] = iso.predict(fluxes[a])
            flux_range[a] = [_invert(fluxes[a], curve[a], s) for s in (lo, hi)]
        self.noise_px_ = noise
        self.fluxes_ = fluxes
        self.snrs_ = snrs
        self.snr_curve_ = curve
        self.flux_range_ = flux_range
        self.radii_px_ = radii
        return self

    @staticmethod
    def _aperture_noise(frame, radius, fwhm, center, sources, exclude_radius) -> float:
        cx, cy = center
        details = snr_details(frame, (cx + radius, cy), fwhm)
        keep = np.ones(details.apertures_xy.shape[0], dtype=bool)
        for sx, sy in sources:
            keep &= np.hypot(details.apertures_xy[:, 0] - sx, details.apertures_xy[:, 1] - sy) > exclude_radius
        fluxes = np.r_[details.signal_flux, details.noise_fluxes][keep[: details.noise_fluxes.size + 1]]
        return float(np.std(fluxes, ddof=1)) if fluxes.size > 2 else float(np.std(details.noise_fluxes, ddof=1))

    @staticmethod
    def _free_azimuth(theta, radius, center, sources, exclude_radius) -> float:
        cx, cy = center
        for _ in range(32):
            x = cx + radius * math.cos(math.radians(theta))
            y = cy + radius * math.sin(math.radians(theta))
            if all(math.hypot(x - sx, y - sy) > exclude_radius for sx, sy in sources):
                return theta % 360.0
            theta += 23.0
        return theta % 360.0


def _invert(fluxes: np.ndarray, curve: np.ndarray, target: float) -> float:
    """Flux at which the non-decreasing ``curve`` reaches ``target``; proportional beyond the ends."""
    if target <= curve[0]:
        return float(fluxes[0] * target / curve[0]) if curve[0] > 0 else float(fluxes[0])
    if target >= curve[-1]:
        return float(fluxes[-1] * target / curve[-1]) if curve[-1] > 0 else float(fluxes[-1])
    i = int(np.searchsorted(curve, target, side="left"))  # first index with curve >= target
    f0, f1, s0, s1 = fluxes[i - 1], fluxes[i], curve[i - 1], curve[i]
    return float(f0 + (f1 - f0) * (target - s0) / (s1 - s0)) if s1 > s0 else float(f1)
