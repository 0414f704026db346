"""Where the star is in the frames, and moving it to the frame centre (SPEC §1).

Every step of sodinn takes the star at :func:`~sodinn.adi.geometry.frame_center`, as VIP does. A
cube recentred imperfectly upstream puts every derotated source off its true place: with the star
``delta`` px from the centre, a source's derotated image spreads on an arc of radius ``|delta|`` over
the field rotation, and its measured separation and position angle are off by up to ``|delta|``.
Astrometry is then wrong by more than its error bars while the detection itself barely changes.

:func:`estimate_star_center` measures the star's position as VIP's ``cube_recenter_2dfit`` does, on the
median frame: a 2-D Gaussian plus a constant fitted by least squares (astropy.modeling) to the box of
``±box_fwhm`` FWHM around the frame centre — the star's residual core, also behind a coronagraph,
whose leak is centred on the star. :func:`recenter_cube` moves the star to the frame centre by a
Fourier phase ramp (VIP's ``vip-fft`` shift); :meth:`sodinn.adi.sequence.ADISequence.recentered` does
it to a sequence and records the position in its provenance; the command line's ``--star-center X Y``
(``[data] star_center_xy``) applies it on reading.

On the shared NACO β Pic cube, said to be centred on (50, 50), the core is at (51.23, 51.02)
(vip-hci's ``fit_2dgaussian`` on a 15-px box: the same to 0.01 px, ``tests/adi/test_centering.py``);
recentred there, NEGFC puts β Pic b at 0.448″ and PA 210.6° east of north, against Absil et al. 2013's
0.452 ± 0.010″ and 211.2 ± 1.3° (0.482″ and 212.9° without).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.geometry import frame_center
from sodinn.exceptions import SettingError

__all__ = ["STAR_CENTER_METHOD", "estimate_star_center", "recenter_cube"]

#: How :func:`estimate_star_center` measures the star's position (recorded in products)
STAR_CENTER_METHOD = "2-D Gaussian plus constant, least squares (astropy.modeling), median frame, box of +-1.5 FWHM"


def estimate_star_center(cube: npt.ArrayLike, fwhm_px: float, *, box_fwhm: float = 1.5) -> tuple[float, float]:
    """Measure the star's position ``(x, y)`` on the median frame of a cube.

    A 2-D Gaussian (free centre, widths and orientation) plus a constant is fitted by least squares
    (Levenberg-Marquardt, :class:`astropy.modeling.fitting.LevMarLSQFitter`) to the median frame within
    ``±round(box_fwhm * fwhm_px)`` px of the frame centre, starting from the centre — the method of
    vip-hci's ``cube_recenter_2dfit``/``fit_2dgaussian``.

    Parameters
    ----------
    cube : array-like, shape (n_frames, N, N) or (N, N)
        The frames (a single frame is its own median); star near the frame centre.
    fwhm_px : float
        FWHM of the off-axis PSF, px (sets the box).
    box_fwhm : float
        Half-width of the fitted box, FWHM (> 0; at least 3 px).

    Returns
    -------
    x_px, y_px : float
        The star's position, px (SPEC §1 axes).

    Raises
    ------
    TypeError
        If ``cube`` is not numeric or ``fwhm_px``/``box_fwhm`` is not a real number.
    ValueError
        If the data are not finite square frames, ``fwhm_px``/``box_fwhm`` is not > 0, or the fit does
        not find a peak inside the box (no star core: pass the star's position yourself,
        ``star_center_xy``).

    Examples
    --------
    >>> yy, xx = np.indices((41, 41))
    >>> frame = 100 * np.exp(-((xx - 21.3) ** 2 + (yy - 19.6) ** 2) / 8.0) + 1.0
    >>> [round(c, 3) for c in estimate_star_center(frame, 4.0)]
    [21.3, 19.6]
    """
    from astropy.modeling import fitting, models
    from astropy.utils.exceptions import AstropyUserWarning

    arr = np.asarray(cube, dtype=np.float64)
    frame = v.check_frame(arr if arr.ndim == 2 else np.median(v.check_cube(arr), axis=0), name="cube")
    fwhm = v.check_positive(fwhm_px, name="fwhm_px")
    half = max(3, int(round(v.check_positive(box_fwhm, name="box_fwhm") * fwhm)))
    cy, cx = frame_center(frame.shape)
    if 2 * half + 1 > frame.shape[0]:
        msg = f"the box of +-{half} px does not fit in a {frame.shape[0]}-px frame; lower box_fwhm"
        raise ValueError(msg)
    box = frame[cy - half : cy + half + 1, cx - half : cx + half + 1]
    yy, xx = np.indices(box.shape, dtype=np.float64)
    floor = float(np.median(box))
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    start = models.Gaussian2D(amplitude=float(box.max()) - floor, x_mean=half, y_mean=half, x_stddev=sigma,
                              y_stddev=sigma) + models.Const2D(amplitude=floor)
    with warnings.catch_warnings():  # judged below, on the fitted values
        warnings.simplefilter("ignore", AstropyUserWarning)
        fit = fitting.LevMarLSQFitter()(start, xx, yy, box, maxiter=500)
    x, y = float(fit.x_mean_0.value), float(fit.y_mean_0.value)
    if not (fit.amplitude_0.value > 0 and 0 <= x <= 2 * half and 0 <= y <= 2 * half):
        msg = ("no star core found near the frame centre (the 2-D Gaussian fit ends outside its box); pass the star's "
               "position yourself: {star_center_xy}")
        raise SettingError(msg, star_center_xy=None)
    return x + cx - half, y + cy - half


def recenter_cube(cube: npt.ArrayLike, star_xy_px: npt.ArrayLike) -> np.ndarray:
    """Shift every frame so that the star at ``star_xy_px`` lands on the frame centre.

    A Fourier phase ramp (:func:`scipy.ndimage.fourier_shift`, as VIP's ``vip-fft`` frame shift): exact
    for band-limited images, flux-conserving; the few pixels pushed off one edge come back on the other.

    Parameters
    ----------
    cube : array-like, shape (n_frames, N, N)
        Square frames.
    star_xy_px : array-like, shape (2,) or (n_frames, 2)
        The star's ``(x, y)``, px: one position for every frame, or one per frame.

    Returns
    -------
    ndarray of float64, shape (n_frames, N, N)
        The recentred frames.

    Raises
    ------
    TypeError
        If an argument is not numeric.
    ValueError
        If the cube is not a finite cube of square frames; a
        :class:`~sodinn.exceptions.SettingError` naming ``star_center_xy`` if a position is not ``(x, y)``
        pairs (one, or one per frame) or lies more than ``N/4`` px from the centre.

    Examples
    --------
    >>> cube = np.zeros((2, 9, 9)); cube[:, 5, 3] = 1.0   # a point at x = 3, y = 5
    >>> out = recenter_cube(cube, (3.0, 5.0))
    >>> [int(i) for i in np.unravel_index(np.argmax(out[0]), out[0].shape)]
    [4, 4]
    """
    from scipy import ndimage

    arr = v.check_cube(cube)
    xy = np.asarray(star_xy_px, dtype=np.float64)
    if xy.shape == (2,):
        xy = np.broadcast_to(xy, (arr.shape[0], 2))
    if xy.shape != (arr.shape[0], 2) or not np.all(np.isfinite(xy)):
        raise SettingError(f"{{star_center_xy}} must be one (x, y) position, or one per frame ({arr.shape[0]}); "
                           f"got shape {np.shape(star_xy_px)}", star_center_xy=None)
    cy, cx = frame_center(arr.shape)
    shift = np.column_stack([cy - xy[:, 1], cx - xy[:, 0]])  # (dy, dx) per frame
    far = np.hypot(shift[:, 0], shift[:, 1]).max()
    if far > arr.shape[-1] / 4:
        raise SettingError(f"{{star_center_xy}} is {far:.1f} px from the frame centre ({cx}, {cy}), more than a quarter "
                           f"of the {arr.shape[-1]}-px frame: crop the cube around the star first", star_center_xy=None)
    out = np.empty_like(arr)
    for i, (frame, (dy, dx)) in enumerate(zip(arr, shift, strict=True)):
        out[i] = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(frame), (dy, dx))).real
    return out
