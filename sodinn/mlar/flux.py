"""The S/N oracle: which companion fluxes give S/N 1 to 3 in each annulus (SPEC §3).

For each annulus, fake companions are injected at a few azimuths and a geometric ladder of fluxes,
the cube is reduced with annular PCA-ADI, and the S/N (Mawet et al. 2014) is measured at each
injected position. A monotone (isotonic) fit of S/N against flux is inverted at the bounds of
``snr_range``. One companion per annulus is injected in each reduction (azimuths staggered by the
golden angle between neighbouring annuli), so a reduction serves every annulus at once.

Known sources (``exclude_xy``, e.g. beta Pic b) are kept out of both apertures: no companion is
injected within ``exclude_radius_px`` of them, and the S/N of each injected companion is Mawet's formula
over the noise apertures whose centres lie farther than ``exclude_radius_px`` from them (the
``exclude_xy`` option of :func:`sodinn.adi.snr.snr`). The two noise apertures beside the companion
(its ADI self-subtraction lobes) are left out too by default, as vip-hci's ``snr(...,
exclude_negative_lobes=True)`` does. Before issue 14 a bright known source in the noise apertures
inflated the S/N 1-3 fluxes of its annulus several times (see the README, *Evaluation*).
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
from sodinn.exceptions import SettingError

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
    exclude_negative_lobes : bool
        Leave the two noise apertures beside each injected companion (its negative ADI lobes) out of
        its S/N (default, as vip-hci's ``snr(..., exclude_negative_lobes=True)``).
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
        Standard deviation of aperture sums in the reduced real cube at each separation (apertures
        near the known sources left out).
    azimuths_deg_ : ndarray, shape (n_radii, n_azimuths)
        Where the companions were injected: angle counter-clockwise from +x, degrees.
    radii_px_ : ndarray, shape (n_radii,)
        The separations, px.
    """

    #: Version of the oracle's method, recorded with its table: 2 = known sources out of the signal and
    #: noise apertures and negative lobes excluded (issue 14); 1 (before) = every noise aperture counted.
    method_version = 2


    def __init__(
        self,
        snr_range: tuple[float, float] = (1.0, 3.0),
        *,
        ncomp: int = 10,
        n_azimuths: int = 3,
        n_levels: int = 6,
        exclude_negative_lobes: bool = True,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        self.snr_range = snr_range
        self.ncomp = ncomp
        self.n_azimuths = n_azimuths
        self.n_levels = n_levels
        self.exclude_negative_lobes = exclude_negative_lobes
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
        exclude_xy : array-like, shape (m, 2)
            Known sources ``(x, y)``, px (none by default): no companion is injected, and no noise aperture
            of its S/N is centred, within ``exclude_radius_px`` of them.
        exclude_radius_px : float
            The radius around each known source, px (>= 0).

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
            with low < high, ``n_azimuths < 1``, ``n_levels < 3``, ``exclude_xy`` is not ``(m, 2)``
            positions in the frame or ``exclude_radius_px < 0``; a
            :class:`~sodinn.exceptions.SettingError` naming ``exclude_radius_px`` if a separation has no
            azimuth outside it, or fewer than 2 noise apertures outside it (checked before any reduction).
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
        sources = (np.zeros((0, 2)) if np.size(exclude_xy) == 0
                   else v.check_positions_xy(exclude_xy, name="exclude_xy", frame_size=arr.shape[-1]))
        radius = v.check_real(exclude_radius_px, name="exclude_radius_px")
        if radius < 0:
            msg = f"exclude_radius_px must be >= 0 px; got {radius:g}"
            raise ValueError(msg)
        rng = np.random.default_rng(self.rng)
        cy, cx = frame_center(arr.shape)
        offset = float(rng.uniform(0, 360))
        thetas = np.array([[self._free_azimuth(offset + 360.0 * z / n_az + _GOLDEN_DEG * a, r, (cx, cy), sources, radius)
                            for a, r in enumerate(radii)] for z in range(n_az)])  # (n_az, n_radii)
        positions = [[(cx + r * math.cos(math.radians(t)), cy + r * math.sin(math.radians(t))) for r, t in zip(radii, row)]
                     for row in thetas]
        with np.errstate(all="ignore"):  # only the aperture geometry counts here: enough noise apertures outside the mask
            for row in positions:
                for xy in row:
                    snr(arr[0], xy, fwhm, exclude_negative_lobes=self.exclude_negative_lobes, exclude_xy=sources,
                        exclude_radius_px=radius)

        base = pca_annular(arr, angles, fwhm, ncomp=self.ncomp)
        noise = np.array([self._aperture_noise(base, r, fwhm, (cx, cy), sources, radius) for r in radii])
        levels = np.geomspace(0.3, 40.0, n_lev)
        fluxes = noise[:, None] * levels[None, :]
        snrs = np.empty((radii.size, n_lev, n_az))
        for z in range(n_az):
            for level in range(n_lev):
                injected = cube_inject_companions(arr, psf, angles, sep_px=radii, theta_deg=thetas[z], flux=fluxes[:, level])
                frame = pca_annular(injected, angles, fwhm, ncomp=self.ncomp)
                for a, xy in enumerate(positions[z]):
                    snrs[a, level, z] = snr(frame, xy, fwhm, exclude_negative_lobes=self.exclude_negative_lobes,
                                            exclude_xy=sources, exclude_radius_px=radius)
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
        self.azimuths_deg_ = thetas.T.copy()
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
        for _ in range(64):
            x = cx + radius * math.cos(math.radians(theta))
            y = cy + radius * math.sin(math.radians(theta))
            if all(math.hypot(x - sx, y - sy) > exclude_radius for sx, sy in sources):
                return theta % 360.0
            theta += 23.0  # 64 steps of 23 deg visit the circle every 4 deg or less
        xy = ", ".join(f"({sx:g}, {sy:g})" for sx, sy in sources)
        raise SettingError(
            f"no azimuth at {radius:.1f} px from the star lies farther than {exclude_radius:.1f} px from the known "
            f"sources {xy}; lower {{exclude_radius_px}} or leave this separation out", exclude_radius_px=None)


def _invert(fluxes: np.ndarray, curve: np.ndarray, target: float) -> float:
    """Flux at which the non-decreasing ``curve`` reaches ``target``; proportional beyond the ends."""
    if target <= curve[0]:
        return float(fluxes[0] * target / curve[0]) if curve[0] > 0 else float(fluxes[0])
    if target >= curve[-1]:
        return float(fluxes[-1] * target / curve[-1]) if curve[-1] > 0 else float(fluxes[-1])
    i = int(np.searchsorted(curve, target, side="left"))  # first index with curve >= target
    f0, f1, s0, s1 = fluxes[i - 1], fluxes[i], curve[i - 1], curve[i]
    return float(f0 + (f1 - f0) * (target - s0) / (s1 - s0)) if s1 > s0 else float(f1)
