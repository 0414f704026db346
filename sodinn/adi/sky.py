"""Sky geometry of a derotated frame: separations in arcsec and mas, position angles east of north (SPEC §8).

The conventions, in one place:

- A frame derotated by ``angles_deg + north_offset_deg`` (:func:`derotation_angles_deg`) is **north-up,
  east-left**: north along +y (up with the image origin at the lower left), east along -x. The offset
  is the instrument's: a pupil offset for pupil-tracking instruments, plus the true-north correction
  where one is published, in degrees, *added* to the parallactic angles (as VIP's tutorials and the
  instrument manuals write it). With an offset of 0 (the default), the frames are north-up only if the
  angle file already holds it.
- A source at angle ``theta`` (degrees counter-clockwise from +x, SPEC §1) on such a frame has the
  position angle ``PA = (theta - 90) mod 360``, east of north.
- Offsets from the star on the sky: ``d_ra = -(x - cx) * scale`` (east positive),
  ``d_dec = (y - cy) * scale`` (north positive).

For the shared VLT/NACO L' beta Pictoris sequence (Absil et al. 2013, A&A 559, L12; the VIP example
data), :data:`NACO_BETAPIC_NORTH_OFFSET_DEG` puts beta Pic b at PA 212.9 deg; see its comment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.geometry import frame_center

__all__ = [
    "NACO_BETAPIC_NORTH_OFFSET_DEG",
    "NACO_BETAPIC_STAR_FLUX",
    "PSFScaling",
    "SkyPosition",
    "derotation_angles_deg",
    "pixel_position",
    "position_angle_deg",
    "sky_position",
]

#: North offset of the shared NACO beta Pic angle file, degrees (added to its angles). VIP's tutorial
#: on these data (docs/source/tutorials/05_fm_planets.ipynb, citing Absil et al. 2013) gives the NACO
#: derotator offset 104.84 deg and the true-north position angle -0.45 deg, summed as 104.39 deg; with
#: this file's angles and the counter-clockwise derotation of SPEC §1 (VIP's ``cube_derotate``) that
#: sum enters with the opposite sign: +104.39 puts beta Pic b north-east (PA 61 deg), -104.39 puts it
#: at PA 212.9 deg, within 1.3 sigma of the published 211.2 +- 1.3 deg for 2013-02-01 (Absil et al.
#: 2013: offsets -0.234 +- 0.010 arcsec east, -0.387 +- 0.010 arcsec north). VIP's own tests write
#: the same: beta Pic b at ``theta = 211 + 90 + 104.84 - 0.45`` deg in frames derotated with this file's
#: angles, i.e. PA = theta - 90 - 104.39.
NACO_BETAPIC_NORTH_OFFSET_DEG = -104.39

#: The star's flux in the shared NACO cube, in a 1-FWHM-diameter aperture (cube units): VIP's
#: ``starphot`` for these data (metrics tutorial and tests, after Absil et al. 2013); the PSF file is
#: normalised, so its own flux says nothing of the star's.
NACO_BETAPIC_STAR_FLUX = 764939.6


def derotation_angles_deg(angles_deg: npt.ArrayLike, north_offset_deg: float = 0.0) -> np.ndarray:
    """Return the angles that derotate the frames to north-up, east-left: ``angles_deg + north_offset_deg``.

    Parameters
    ----------
    angles_deg : array-like, shape (n_frames,)
        Parallactic angles, degrees, counter-clockwise (SPEC §1).
    north_offset_deg : float
        The instrument's pupil or true-north offset, degrees, added to every angle (default 0).

    Returns
    -------
    ndarray, shape (n_frames,), float64
        The derotation angles, degrees.

    Raises
    ------
    TypeError
        If ``north_offset_deg`` is not a real number or the angles are not numbers.
    ValueError
        If ``north_offset_deg`` or an angle is not finite.

    Examples
    --------
    >>> derotation_angles_deg([0.0, 10.0], -104.39).tolist()
    [-104.39, -94.39]
    """
    offset = _check_offset(north_offset_deg)
    angles = v.check_angles(angles_deg, name="angles_deg", unwrap=False)
    return angles + offset


def position_angle_deg(theta_deg: npt.ArrayLike) -> np.ndarray:
    """Return the position angle east of north of directions ``theta_deg`` on a north-up, east-left frame.

    Parameters
    ----------
    theta_deg : array-like
        Angles counter-clockwise from +x, degrees.

    Returns
    -------
    ndarray, float64
        ``(theta_deg - 90) mod 360``, in ``[0, 360)``; same shape as ``theta_deg``.

    Examples
    --------
    >>> position_angle_deg([90.0, 180.0, 0.0]).tolist()
    [0.0, 90.0, 270.0]
    """
    return _wrap_360(np.asarray(theta_deg, dtype=np.float64) - 90.0)


@dataclass(frozen=True)
class SkyPosition:
    """Where sources lie relative to the star, in pixels and on the sky (arrays of equal shape).

    Attributes
    ----------
    x_px, y_px : ndarray
        Pixel positions (0-based, x along columns, y along rows).
    sep_px : ndarray
        Separation from the star, px.
    theta_deg : ndarray
        Angle counter-clockwise from +x, degrees, in ``[0, 360)``.
    pa_deg : ndarray
        Position angle east of north, degrees, in ``[0, 360)``.
    sep_arcsec, sep_mas : ndarray or None
        Separation, arcsec and milliarcsec (None without a pixel scale).
    d_ra_arcsec, d_dec_arcsec : ndarray or None
        Offsets east and north of the star, arcsec (None without a pixel scale).
    """

    x_px: np.ndarray
    y_px: np.ndarray
    sep_px: np.ndarray
    theta_deg: np.ndarray
    pa_deg: np.ndarray
    sep_arcsec: np.ndarray | None
    sep_mas: np.ndarray | None
    d_ra_arcsec: np.ndarray | None
    d_dec_arcsec: np.ndarray | None


def sky_position(
    x_px: npt.ArrayLike,
    y_px: npt.ArrayLike,
    frame_shape: tuple[int, ...],
    *,
    pixel_scale_arcsec: float | None = None,
) -> SkyPosition:
    """Return the separation and position angle of pixel positions on a north-up, east-left frame.

    Parameters
    ----------
    x_px, y_px : float or array-like
        Pixel positions (0-based), same shape.
    frame_shape : tuple of int
        Shape of the frame (``(N, N)`` or ``(n, N, N)``): the star is at :func:`frame_center`.
    pixel_scale_arcsec : float, optional
        Plate scale, arcsec/px: adds the separations in arcsec and mas and the sky offsets.

    Returns
    -------
    SkyPosition
        Arrays of the shape of ``x_px`` (0-d for scalars).

    Raises
    ------
    TypeError
        If the positions are not numbers or ``pixel_scale_arcsec`` is not a real number.
    ValueError
        If the positions are not finite or do not have the same shape, or ``pixel_scale_arcsec`` is
        not > 0.

    Examples
    --------
    >>> pos = sky_position(50.0, 60.0, (101, 101), pixel_scale_arcsec=0.0272)
    >>> float(pos.pa_deg), round(float(pos.sep_mas), 1)
    (0.0, 272.0)
    """
    x = _finite(x_px, "x_px")
    y = _finite(y_px, "y_px")
    if x.shape != y.shape:
        msg = f"x_px and y_px must have the same shape; got {x.shape} and {y.shape}"
        raise ValueError(msg)
    cy, cx = frame_center(tuple(frame_shape))
    dx, dy = x - cx, y - cy
    theta = _wrap_360(np.degrees(np.arctan2(dy, dx)))
    sep = np.hypot(dx, dy)
    sep_as = sep_mas = d_ra = d_dec = None
    if pixel_scale_arcsec is not None:
        scale = v.check_positive(pixel_scale_arcsec, name="pixel_scale_arcsec")
        sep_as, sep_mas = sep * scale, sep * scale * 1000.0
        d_ra, d_dec = -dx * scale, dy * scale
    return SkyPosition(x_px=x, y_px=y, sep_px=sep, theta_deg=theta, pa_deg=position_angle_deg(theta),
                       sep_arcsec=sep_as, sep_mas=sep_mas, d_ra_arcsec=d_ra, d_dec_arcsec=d_dec)


def pixel_position(sep_px: npt.ArrayLike, pa_deg: npt.ArrayLike, frame_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Return the pixel position of a separation and position angle east of north (inverse of :func:`sky_position`).

    Parameters
    ----------
    sep_px : float or array-like
        Separation from the star, px.
    pa_deg : float or array-like
        Position angle east of north, degrees.
    frame_shape : tuple of int
        Shape of the north-up, east-left frame.

    Returns
    -------
    (ndarray, ndarray)
        ``x_px``, ``y_px`` (0-based), broadcast shape of the inputs.

    Raises
    ------
    TypeError
        If the inputs are not numbers.
    ValueError
        If the inputs are not finite or ``sep_px`` is negative.

    Examples
    --------
    >>> [float(c) for c in pixel_position(10.0, 90.0, (101, 101))]  # east is left
    [40.0, 50.0]
    """
    sep = _finite(sep_px, "sep_px")
    pa = _finite(pa_deg, "pa_deg")
    if np.any(sep < 0):
        msg = f"sep_px must be >= 0; got {sep.tolist()}"
        raise ValueError(msg)
    cy, cx = frame_center(tuple(frame_shape))
    theta = np.radians(pa + 90.0)
    return cx + sep * np.cos(theta), cy + sep * np.sin(theta)


@dataclass(frozen=True)
class PSFScaling:
    """How the unsaturated PSF's flux scales to the star's flux in the cube (for contrasts).

    The PSF is an image of the star taken with another exposure time and/or a neutral-density
    filter; the star's flux in the cube's units is the PSF's flux times :attr:`factor`.

    Attributes
    ----------
    psf_exposure_s : float
        Exposure time of the PSF frames, seconds (default 1).
    cube_exposure_s : float
        Exposure time of the cube's frames, seconds (default 1).
    psf_nd_transmission : float
        Transmission of the neutral-density filter the PSF was taken through, a fraction in (0, 1]
        (default 1: no filter).
    star_flux : float, optional
        The star's flux in the cube's units in a 1-FWHM-diameter aperture, measured by the observer
        (VIP's ``starphot``); when given it replaces the PSF's aperture flux times :attr:`factor`
        (for a PSF file that was normalised, as the shared NACO one is: 764939.6 there, from VIP's
        metrics tutorial and tests, after Absil et al. 2013).

    Raises
    ------
    TypeError
        If a value is not a real number.
    ValueError
        If an exposure time or ``star_flux`` is not > 0, or the transmission is not in (0, 1].

    Examples
    --------
    >>> PSFScaling(psf_exposure_s=0.2, cube_exposure_s=0.4, psf_nd_transmission=0.01).factor
    200.0
    """

    psf_exposure_s: float = 1.0
    cube_exposure_s: float = 1.0
    psf_nd_transmission: float = 1.0
    star_flux: float | None = None

    def __post_init__(self) -> None:
        """Check the values; raise ``TypeError`` or ``ValueError`` naming a bad one."""
        for name in ("psf_exposure_s", "cube_exposure_s", "psf_nd_transmission"):
            object.__setattr__(self, name, v.check_positive(getattr(self, name), name=name))
        if self.star_flux is not None:
            object.__setattr__(self, "star_flux", v.check_positive(self.star_flux, name="star_flux"))
        if self.psf_nd_transmission > 1:
            msg = f"psf_nd_transmission must be a fraction in (0, 1]; got {self.psf_nd_transmission}"
            raise ValueError(msg)

    @property
    def factor(self) -> float:
        """The star's flux in the cube over the PSF's flux: ``(cube_exposure_s / psf_exposure_s) / psf_nd_transmission``."""
        return self.cube_exposure_s / self.psf_exposure_s / self.psf_nd_transmission

    def star_flux_of(self, psf_aperture_flux: float) -> float:
        """Return the star's flux in the cube: :attr:`star_flux` if given, else ``psf_aperture_flux * factor``.

        Parameters
        ----------
        psf_aperture_flux : float
            The PSF's flux in a 1-FWHM-diameter aperture, in the PSF file's units.

        Returns
        -------
        float
            The star's flux in the cube's units, same aperture.
        """
        return self.star_flux if self.star_flux is not None else float(psf_aperture_flux) * self.factor

    def to_dict(self) -> dict[str, float | None]:
        """Return the settings as a dict (for tables' metadata and headers).

        Returns
        -------
        dict
            ``psf_exposure_s``, ``cube_exposure_s``, ``psf_nd_transmission`` and ``star_flux`` (None
            when not given).
        """
        return {"psf_exposure_s": self.psf_exposure_s, "cube_exposure_s": self.cube_exposure_s,
                "psf_nd_transmission": self.psf_nd_transmission, "star_flux": self.star_flux}


def _wrap_360(angles_deg: np.ndarray) -> np.ndarray:
    """Return angles in [0, 360): ``np.mod`` rounds a tiny negative angle up to 360.0, which is put back to 0."""
    wrapped = np.mod(angles_deg, 360.0)
    return np.where(wrapped >= 360.0, 0.0, wrapped)


def _check_offset(north_offset_deg: float) -> float:
    return v.check_real(north_offset_deg, name="north_offset_deg")


def _finite(values: npt.ArrayLike, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        msg = f"{name} must be numbers; got {values!r}"
        raise TypeError(msg) from None
    if not np.all(np.isfinite(arr)):
        msg = f"{name} must be finite; got {arr.tolist()}"
        raise ValueError(msg)
    return arr
