"""Off-axis PSF: centroid, FWHM by a 2-D Gaussian fit, cropping and normalisation (SPEC §1).

A normalised PSF has flux 1 inside a circular aperture of diameter 1 FWHM centred on its
central pixel; injected companions are ``flux`` times that PSF, so ``flux`` is the
companion's flux in that aperture, in the cube's units.

The centre of a ``p x p`` stamp is pixel ``p // 2`` (SPEC §1), and every function that takes a PSF
measures where the PSF really is (:func:`psf_centroid`, on the core only). A centroid within
0.03 px of the centre is used as given; one off by more, up to half the FWHM (at least 1 px, e.g. an
even stamp centred on a pixel corner) and with its core inside the stamp, is recentred by a
sub-pixel Fourier shift with a :class:`~sodinn.exceptions.PSFWarning` that says by how much; a
larger offset is refused with the offset in px. So a companion injected at ``(x, y)`` lands there
(to 0.05 px), whatever the parity of the stamp.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.aperture import aperture_sums
from sodinn.adi.geometry import frame_center

__all__ = ["GaussianFit", "aperture_flux", "crop_psf", "fit_fwhm", "fit_gaussian_2d", "normalize_psf", "psf_centroid"]

_SIGMA_TO_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class GaussianFit:
    """Result of a 2-D Gaussian fit to a PSF stamp (pixel units of the input stamp).

    Attributes
    ----------
    amplitude : float
        Peak value, in the units of the stamp.
    x_mean, y_mean : float
        Centre ``(x, y)``, px, in the coordinates of the full stamp.
    fwhm_x, fwhm_y : float
        FWHM along the Gaussian's two axes (before its rotation), px.
    theta_deg : float
        Rotation of the Gaussian's x axis, degrees, counter-clockwise from +x (astropy's ``theta``).

    See Also
    --------
    fit_gaussian_2d : The fit that returns it.
    """

    amplitude: float
    x_mean: float
    y_mean: float
    fwhm_x: float
    fwhm_y: float
    theta_deg: float

    @property
    def fwhm(self) -> float:
        """Mean of the FWHM along the two axes, px."""
        return 0.5 * (self.fwhm_x + self.fwhm_y)


def crop_psf(psf: npt.ArrayLike, size_px: int) -> np.ndarray:
    """Crop a PSF stamp to ``size_px`` x ``size_px`` around its central pixel (same parity rule).

    Parameters
    ----------
    psf : ndarray, shape (p, p)
        PSF stamp, centred on its central pixel (SPEC §1); recentred first if its centroid is off by
        more than 0.03 px (see the module docstring).
    size_px : int
        Output size, px: ``3 <= size_px <= p``, with the parity of ``p`` so that the centre stays on
        the central pixel.

    Returns
    -------
    ndarray, shape (size_px, size_px), float64
        A copy of the central part of the (recentred) stamp.

    Raises
    ------
    TypeError
        If ``psf`` is not array-like of numbers or ``size_px`` is not an integer.
    ValueError
        If ``psf`` is not a valid PSF stamp (square, finite, positive peak, centroid within the
        recentring limit), or ``size_px`` is out of range or of the other parity.

    Warns
    -----
    PSFWarning
        If the stamp was recentred (the message gives the shift, px).
    """
    arr = v.check_psf(psf)
    size = v.check_int(size_px, name="size_px", minimum=3, maximum=arr.shape[0])
    if (arr.shape[0] - size) % 2:
        msg = f"size_px={size} must have the parity of the stamp size {arr.shape[0]} so that the centre stays on a pixel"
        raise ValueError(msg)
    start = (arr.shape[0] - size) // 2
    return arr[start : start + size, start : start + size].copy()


def fit_gaussian_2d(psf: npt.ArrayLike, *, crop_px: int | None = 15) -> GaussianFit:
    """Fit an elliptical 2-D Gaussian to a centred PSF (astropy ``Gaussian2D``, least squares).

    The stamp is fitted as given (not recentred), so the fitted centre measures where the PSF is.

    Parameters
    ----------
    psf : ndarray, shape (p, p)
        PSF stamp, centred on its central pixel (SPEC §1) to within the recentring limit (half the
        FWHM, at least 1 px; see the module docstring).
    crop_px : int or None
        Fit only the central ``crop_px`` x ``crop_px`` pixels (default 15, as VIP; raised by one to the
        parity of ``p``), or the whole stamp when None or not smaller than ``p``.

    Returns
    -------
    GaussianFit
        Amplitude, centre (px, in the coordinates of the full stamp), FWHM along both axes (px) and
        rotation (degrees).

    Raises
    ------
    TypeError
        If ``psf`` is not array-like of numbers.
    ValueError
        If ``psf`` is not a valid PSF stamp (square, finite, positive peak, centroid within the
        recentring limit), or the fit gives no finite positive FWHM.
    """
    from astropy.modeling import fitting, models

    arr = v.check_psf(psf, recenter=False)
    offset = 0
    if crop_px is not None and crop_px < arr.shape[0]:
        size = int(crop_px) + ((arr.shape[0] - int(crop_px)) % 2)
        offset = (arr.shape[0] - size) // 2
        arr = arr[offset : offset + size, offset : offset + size]
    yy, xx = np.indices(arr.shape)
    total = arr.sum()
    x_com = float((arr * xx).sum() / total) if total > 0 else arr.shape[1] / 2
    y_com = float((arr * yy).sum() / total) if total > 0 else arr.shape[0] / 2
    sigma0 = 4.0 / _SIGMA_TO_FWHM
    model = models.Gaussian2D(
        amplitude=float(np.ptp(arr)), x_mean=x_com, y_mean=y_com, x_stddev=sigma0, y_stddev=sigma0, theta=0.0
    )
    fitter = fitting.TRFLSQFitter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)  # astropy's "fit may be unsuccessful" is checked below
        fit = fitter(model, xx, yy, arr, weights=_other_sources_weights(arr))
    fwhm_x = float(abs(fit.x_stddev.value) * _SIGMA_TO_FWHM)
    fwhm_y = float(abs(fit.y_stddev.value) * _SIGMA_TO_FWHM)
    if not (np.isfinite(fwhm_x) and np.isfinite(fwhm_y)) or min(fwhm_x, fwhm_y) <= 0:
        msg = "the 2-D Gaussian fit of the PSF failed; check that psf is an unsaturated, background-subtracted PSF"
        raise ValueError(msg)
    return GaussianFit(
        amplitude=float(fit.amplitude.value),
        x_mean=float(fit.x_mean.value) + offset,
        y_mean=float(fit.y_mean.value) + offset,
        fwhm_x=fwhm_x,
        fwhm_y=fwhm_y,
        theta_deg=float(np.rad2deg(fit.theta.value)),
    )


def _other_sources_weights(arr: np.ndarray) -> np.ndarray | None:
    """Zero weights on other sources (:func:`sodinn._validation.other_sources_mask`: a neighbour, a ghost).

    ``None`` (all pixels count) when the core is the only part above half maximum, as for a clean PSF.
    """
    if not arr.max() > 0:
        return None
    masked = v.other_sources_mask(arr)
    return np.where(masked, 0.0, 1.0) if masked.any() else None


def fit_fwhm(psf: npt.ArrayLike, *, crop_px: int | None = 15) -> float:
    """Return the FWHM (px) of a PSF: the mean of the x and y FWHM of a 2-D Gaussian fit.

    Parameters
    ----------
    psf : ndarray, shape (p, p)
        PSF stamp, centred on its central pixel (SPEC §1).
    crop_px : int or None
        Size of the central region fitted (default 15, as VIP); None fits the whole stamp.

    Returns
    -------
    float
        FWHM, px (:attr:`GaussianFit.fwhm`).

    Raises
    ------
    TypeError
        If ``psf`` is not array-like of numbers.
    ValueError
        If ``psf`` is not a valid PSF stamp or the fit fails.

    See Also
    --------
    fit_gaussian_2d : The whole fit.

    Examples
    --------
    >>> yy, xx = np.indices((21, 21))
    >>> psf = np.exp(-((xx - 10) ** 2 + (yy - 10) ** 2) / (2 * 2.0**2))
    >>> round(float(fit_fwhm(psf)), 4)  # sigma 2 px -> FWHM 2.3548 * 2
    4.7096
    """
    return float(fit_gaussian_2d(psf, crop_px=crop_px).fwhm)


def psf_centroid(psf: npt.ArrayLike) -> tuple[float, float]:
    """Return the sub-pixel centroid ``(x, y)`` of the core of a PSF stamp, px.

    The Gaussian-windowed centroid (SExtractor's ``XWIN_IMAGE``): from the brightest pixel, the centre
    moves to the first moment of the stamp weighted by a circular Gaussian as wide as the PSF (its
    FWHM estimated from the pixels above half maximum), cut at 2 FWHM, until it converges. It is the
    centre of any symmetric PSF, whatever the parity of the stamp, and a noisy or asymmetric wing
    beyond 1-2 FWHM does not move it.

    Parameters
    ----------
    psf : ndarray, shape (p, p)
        PSF stamp (or any image with one bright source); finite, with a positive pixel. Not
        recentred.

    Returns
    -------
    x, y : float
        Centroid, px, in the coordinates of the stamp (column, row); the stamp centre is
        ``(p // 2, p // 2)`` (SPEC §1).

    Raises
    ------
    TypeError
        If ``psf`` is not array-like of numbers.
    ValueError
        If ``psf`` is not a square, finite 2-D stamp of at least 3x3 px with a positive pixel.

    Examples
    --------
    >>> yy, xx = np.indices((20, 20))
    >>> psf = np.exp(-((xx - 9.5) ** 2 + (yy - 9.5) ** 2) / 8)  # an even stamp centred on a pixel corner
    >>> [round(c, 6) for c in psf_centroid(psf)]  # the stamp centre is (10, 10)
    [9.5, 9.5]
    """
    arr = v.check_frame(psf, name="psf")
    if arr.shape[0] < 3 or not arr.max() > 0:
        msg = f"psf must be at least 3x3 px with a positive pixel; got {arr.shape[0]}x{arr.shape[0]} px, max {arr.max():g}"
        raise ValueError(msg)
    x, y = v.psf_centroid_xy(arr)
    return float(x), float(y)


def aperture_flux(image: npt.ArrayLike, fwhm_px: float) -> float:
    """Return the exact flux in a circular aperture of diameter ``fwhm_px`` centred on the central pixel.

    Parameters
    ----------
    image : ndarray, shape (n, n)
        Square image (e.g. a PSF stamp); the central pixel is
        :func:`~sodinn.adi.geometry.frame_center`.
    fwhm_px : float
        Aperture diameter, px (the FWHM, SPEC §1).

    Returns
    -------
    float
        Sum of the pixels weighted by the fraction of each inside the aperture (photutils'
        ``method='exact'``), in the units of ``image``.

    Raises
    ------
    TypeError
        If ``image`` is not array-like of numbers or ``fwhm_px`` is not a real number.
    ValueError
        If ``image`` is not a finite square 2-D array, or ``fwhm_px`` is not finite or below 0.5 px.
    """
    arr = v.check_frame(image, name="image")
    fwhm = v.check_fwhm(fwhm_px)
    cy, cx = frame_center(arr.shape)
    return float(aperture_sums(arr, np.array([[cx, cy]], dtype=np.float64), fwhm / 2)[0])


def normalize_psf(psf: npt.ArrayLike, fwhm_px: float, *, size_px: int | None = None) -> np.ndarray:
    """Scale a PSF to flux 1 in a 1-FWHM-diameter aperture at its centre (SPEC §1).

    Parameters
    ----------
    psf : ndarray, shape (p, p)
        Off-axis PSF, centred on its central pixel; recentred first if its centroid is off by more
        than 0.03 px (see the module docstring).
    fwhm_px : float
        FWHM, px (e.g. from :func:`fit_fwhm`).
    size_px : int, optional
        Crop the stamp to this size first (see :func:`crop_psf`).

    Returns
    -------
    ndarray, shape (p, p) or (size_px, size_px), float64
        The (recentred, cropped) PSF divided by its flux in the 1-FWHM-diameter aperture.

    Raises
    ------
    TypeError
        If ``psf`` is not array-like of numbers, ``fwhm_px`` is not a real number or ``size_px`` not
        an integer.
    ValueError
        If ``psf`` is not a valid PSF stamp or is off-centre beyond the recentring limit, ``fwhm_px``
        is implausible (below 0.5 px or above the stamp size), ``size_px`` is invalid (see
        :func:`crop_psf`), or the aperture flux is not positive.

    Warns
    -----
    PSFWarning
        If the stamp was recentred (the message gives the shift, px).

    Examples
    --------
    >>> yy, xx = np.indices((21, 21))
    >>> psf = 7.0 * np.exp(-((xx - 10) ** 2 + (yy - 10) ** 2) / (2 * 2.0**2))
    >>> round(aperture_flux(normalize_psf(psf, 4.71), 4.71), 12)
    1.0
    """
    arr = v.check_psf(psf)
    fwhm = v.check_fwhm(fwhm_px, frame_size=4 * arr.shape[0])
    if size_px is not None:
        arr = crop_psf(arr, size_px)
    flux = aperture_flux(arr, fwhm)
    if not flux > 0:
        msg = f"the PSF has no positive flux in its central {fwhm:g}-px aperture; pass a centred, unsaturated PSF"
        raise ValueError(msg)
    return arr / flux
