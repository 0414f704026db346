"""Fake-companion injection with sub-pixel accuracy (SPEC §1, §3).

A companion at sky separation ``sep_px`` and position angle ``theta_deg`` (counter-clockwise from
+x) lies at angle ``theta_deg - angles_deg[i]`` in frame ``i``. Its image is ``flux`` times the
(normalised) PSF, shifted to that position: the whole-pixel part of the shift places the PSF stamp,
the fractional part is applied to the stamp by a Fourier phase ramp (``method="fft"``, the default,
as VIP's ``vip-fft``) or a cubic spline (``method="spline"``, as VIP's ``ndimage-interp``).

Injection is linear in the flux: :func:`companion_stamps` computes the unit-flux stamps once, and
:func:`add_companion_stamps` adds any multiple of them to a cube — the building block of fast
labeled-sample generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.geometry import frame_center

__all__ = [
    "CompanionStamps",
    "FourierShifter",
    "add_companion_stamps",
    "companion_positions",
    "companion_stamps",
    "cube_inject_companions",
]

_METHODS = ("fft", "spline")


@dataclass(frozen=True)
class CompanionStamps:
    """Per-frame images of one unit-flux companion, ready to be added to a cube.

    Attributes
    ----------
    stamps : ndarray, shape (n_frames, p, p)
        Shifted PSF stamps (unit flux scale: the PSF as given).
    y0, x0 : ndarray of int, shape (n_frames,)
        Frame pixel of each stamp's ``[0, 0]`` corner (may be negative or overflow the frame:
        :func:`add_companion_stamps` clips).
    x, y : ndarray, shape (n_frames,)
        Exact companion position in each frame, px.

    See Also
    --------
    companion_stamps : Build them.
    add_companion_stamps : Add a multiple of them to a cube.
    """

    stamps: np.ndarray
    y0: np.ndarray
    x0: np.ndarray
    x: np.ndarray
    y: np.ndarray


def companion_positions(
    shape: tuple[int, ...], angles_deg: npt.ArrayLike, sep_px: float, theta_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return the position ``(x, y)`` in every frame of a companion at ``(sep_px, theta_deg)`` on the sky.

    In frame ``i`` the companion lies at angle ``theta_deg - angles_deg[i]`` (SPEC §1).

    Parameters
    ----------
    shape : tuple of int
        Frame (or cube) shape; the last two axes count.
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees, counter-clockwise (SPEC §1).
    sep_px : float
        Separation from the star, px.
    theta_deg : float
        Sky position angle, degrees, counter-clockwise from +x.

    Returns
    -------
    x, y : ndarray, shape (n_frames,)
        Position in each frame, px (column, row; sub-pixel).

    Raises
    ------
    TypeError
        If ``angles_deg`` is not array-like of numbers, or ``sep_px`` / ``theta_deg`` is not a real
        number.
    ValueError
        If ``angles_deg`` is not 1-D and finite, or ``sep_px`` / ``theta_deg`` is not finite.

    Examples
    --------
    >>> x, y = companion_positions((101, 101), [0.0, 90.0], 10.0, 90.0)
    >>> np.round(x, 6).tolist(), np.round(y, 6).tolist()
    ([50.0, 60.0], [60.0, 50.0])
    """
    angles = v.check_angles(angles_deg)
    sep = v.check_real(sep_px, name="sep_px")
    theta = v.check_real(theta_deg, name="theta_deg")
    cy, cx = frame_center(shape)
    phi = np.deg2rad(theta - angles)
    return cx + sep * np.cos(phi), cy + sep * np.sin(phi)


def companion_stamps(
    shape: tuple[int, ...],
    psf: npt.ArrayLike,
    angles_deg: npt.ArrayLike,
    sep_px: float,
    theta_deg: float,
    *,
    method: str = "fft",
) -> CompanionStamps:
    """Unit-flux PSF stamps of a companion at ``(sep_px, theta_deg)``, one per frame.

    Parameters
    ----------
    shape : tuple of int
        Frame (or cube) shape; the last two axes count.
    psf : ndarray, shape (p, p)
        PSF stamp centred on its central pixel (normalise it first, see
        :func:`sodinn.adi.psf.normalize_psf`, so that ``flux`` is in the cube's units). A centroid
        off by more than 0.03 px is recentred first (see :mod:`sodinn.adi.psf`), so that the
        companion's centroid lands on ``(x, y)``.
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees, counter-clockwise (SPEC §1).
    sep_px, theta_deg : float
        Separation from the star, px, and sky position angle, degrees, counter-clockwise from +x.
    method : {"fft", "spline"}
        Sub-pixel shift: Fourier phase ramp (VIP's ``vip-fft``) or cubic spline (VIP's
        ``ndimage-interp``).

    Returns
    -------
    CompanionStamps
        One shifted ``(p, p)`` stamp per frame and where it goes in the frame.

    Raises
    ------
    TypeError
        If ``psf`` or ``angles_deg`` is not array-like of numbers, or ``sep_px`` / ``theta_deg`` is
        not a real number.
    ValueError
        If ``psf`` is not a valid PSF stamp, is off-centre beyond the recentring limit or is larger
        than the frames, ``method`` is unknown, or the angles or the position are not finite.

    Warns
    -----
    PSFWarning
        If the stamp was recentred (the message gives the shift, px).
    """
    size = int(shape[-1])
    stamp = v.check_psf(psf, frame_size=size)
    method = v.check_choice(method, _METHODS, name="method")
    x, y = companion_positions(shape, angles_deg, sep_px, theta_deg)
    cy, cx = frame_center(shape)
    shift_x, shift_y = x - cx, y - cy
    int_x, int_y = np.trunc(shift_x), np.trunc(shift_y)  # VIP: int() of the shift, the rest is sub-pixel
    p = stamp.shape[0]
    half = p // 2
    stamps = _subpixel_shift(stamp, shift_y - int_y, shift_x - int_x, method)
    y0 = (cy + int_y).astype(np.int64) - half
    x0 = (cx + int_x).astype(np.int64) - half
    return CompanionStamps(stamps=stamps, y0=y0, x0=x0, x=x, y=y)


def add_companion_stamps(cube: np.ndarray, stamps: CompanionStamps, flux: npt.ArrayLike) -> None:
    """Add ``flux`` times ``stamps`` to ``cube`` in place (flux: scalar or one value per frame).

    Parts of a stamp outside the frame are dropped. Nothing is validated: this is the inner step of
    :func:`cube_inject_companions` and of the sample generation.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N), float
        Cube to modify, in place.
    stamps : CompanionStamps
        Unit-flux stamps of one companion for the same frames (from :func:`companion_stamps`).
    flux : float or array-like, shape (n_frames,)
        Companion flux, in the cube's units (times the PSF the stamps were made from).
    """
    n, ny, nx = cube.shape
    fluxes = np.broadcast_to(np.asarray(flux, dtype=np.float64), (n,))
    p = stamps.stamps.shape[-1]
    for i in range(n):
        y0, x0 = int(stamps.y0[i]), int(stamps.x0[i])
        ya, xa = max(y0, 0), max(x0, 0)
        yb, xb = min(y0 + p, ny), min(x0 + p, nx)
        if ya >= yb or xa >= xb:
            continue
        cube[i, ya:yb, xa:xb] += fluxes[i] * stamps.stamps[i, ya - y0 : yb - y0, xa - x0 : xb - x0]


def cube_inject_companions(
    cube: npt.ArrayLike,
    psf: npt.ArrayLike,
    angles_deg: npt.ArrayLike,
    *,
    sep_px: float | npt.ArrayLike,
    theta_deg: float | npt.ArrayLike,
    flux: float | npt.ArrayLike,
    method: str = "fft",
) -> np.ndarray:
    """Return a copy of ``cube`` with one or several fake companions injected.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        Star-centred frames; not modified.
    psf : ndarray, shape (p, p)
        Normalised PSF (flux 1 in a 1-FWHM-diameter aperture, SPEC §1), centred on its stamp; a
        centroid off by more than 0.03 px is recentred first (see :mod:`sodinn.adi.psf`), so that
        each companion's centroid lands on its position.
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees, counter-clockwise (SPEC §1).
    sep_px, theta_deg, flux : float or array-like
        Separation (px), sky position angle (degrees, counter-clockwise from +x) and flux
        (cube units, times the PSF) of each companion; arrays of equal length inject several.
    method : {"fft", "spline"}
        Sub-pixel shift method: Fourier phase ramp (default) or cubic spline.

    Returns
    -------
    ndarray, shape (n_frames, N, N), float64
        The cube plus ``flux`` times the PSF at each companion's position in each frame.

    Raises
    ------
    TypeError
        If ``cube``, ``psf`` or ``angles_deg`` is not array-like of numbers.
    ValueError
        If ``cube``, ``psf`` or ``angles_deg`` is malformed or non-finite, ``sep_px``, ``theta_deg``
        and ``flux`` do not broadcast to one 1-D length or are non-finite, a separation lies outside
        ``[0, N/2)``, or ``method`` is unknown.

    Warns
    -----
    PSFWarning
        If the PSF was recentred (once per call; the message gives the shift, px).

    Examples
    --------
    >>> psf = np.zeros((5, 5)); psf[2, 2] = 1.0
    >>> out = cube_inject_companions(np.zeros((2, 21, 21)), psf, [0.0, 90.0], sep_px=5, theta_deg=0, flux=3.0)
    >>> float(out[0, 10, 15]), float(out[1, 5, 10])
    (3.0, 3.0)
    """
    arr = v.check_cube(cube)
    angles = v.check_angles(angles_deg, arr.shape[0])
    stamp = v.check_psf(psf, frame_size=arr.shape[-1])  # recentred once, not once per companion
    seps, thetas, fluxes = np.broadcast_arrays(
        np.atleast_1d(np.asarray(sep_px, dtype=np.float64)),
        np.atleast_1d(np.asarray(theta_deg, dtype=np.float64)),
        np.atleast_1d(np.asarray(flux, dtype=np.float64)),
    )
    if seps.ndim != 1:
        msg = "sep_px, theta_deg and flux must be scalars or 1-D arrays of equal length"
        raise ValueError(msg)
    for name, values in (("sep_px", seps), ("theta_deg", thetas), ("flux", fluxes)):
        v.check_angles(values, name=name, unwrap=False)  # finite 1-D check
    limit = arr.shape[-1] / 2
    if np.any(seps < 0) or np.any(seps >= limit):
        msg = f"sep_px must lie in [0, {limit:g}) px for {arr.shape[-1]}x{arr.shape[-1]} frames; got {seps.tolist()}"
        raise ValueError(msg)
    out = arr.copy()
    for sep, theta, f in zip(seps, thetas, fluxes):
        stamps = companion_stamps(arr.shape, stamp, angles, float(sep), float(theta), method=method)
        add_companion_stamps(out, stamps, f)
    return out


def _subpixel_shift(stamp: np.ndarray, dy: np.ndarray, dx: np.ndarray, method: str) -> np.ndarray:
    """Shift ``stamp`` by ``(dy[i], dx[i])`` (|d| < 1) for every i; output keeps the stamp's size."""
    n = dy.size
    p = stamp.shape[0]
    if method == "spline":
        from scipy.ndimage import shift as nd_shift

        return np.stack([nd_shift(stamp, (dy[i], dx[i]), order=3, mode="constant", cval=0.0) for i in range(n)])
    # Fourier shift of the zero-padded stamp (1 px of padding, even size), as VIP's 'vip-fft' frame_shift.
    size = p + 2
    if size % 2:
        size += 1
    padded = np.zeros((size, size))
    padded[1 : 1 + p, 1 : 1 + p] = stamp
    freq = np.fft.fftfreq(size) * size  # integer frequencies, Nyquist negative (as VIP's fftshifted ramp)
    phase_y = np.exp(-2j * np.pi * dy[:, None] * freq[None, :] / size)  # (n, size)
    phase_x = np.exp(-2j * np.pi * dx[:, None] * freq[None, :] / size)
    import scipy.fft  # pocketfft C++: ~4x faster than numpy.fft on these small batched transforms

    spectrum = scipy.fft.fft2(padded)[None] * phase_y[:, :, None] * phase_x[:, None, :]
    shifted = scipy.fft.ifft2(spectrum, axes=(-2, -1), overwrite_x=True).real
    return shifted[:, 1 : 1 + p, 1 : 1 + p]


class FourierShifter:
    """The Fourier sub-pixel shift of one stamp (``_subpixel_shift(stamp, dy, dx, "fft")``) as small real matrices.

    The shift of :func:`cube_inject_companions` (``method="fft"``), in the form the C+ samples of
    :mod:`sodinn.mlar` use for many shifts of one PSF stamp.

    Shifting the zero-padded stamp (``s x s``) by ``d`` along an axis multiplies its spectrum by
    ``exp(-2 pi i d f / s)``; in pixels that is the circulant matrix ``C[m, m'] = h[(m - m') mod s]``
    with ``h`` the inverse FFT of the phase ramp. ``Re h[m] = (1/s) sum_f cos(2 pi f (m - d) / s)``
    and, from the Nyquist frequency alone, ``Im h[m] = (-1)^m sin(pi d) / s``. So the cropped real
    result ``Re(C_y X C_x^T)`` is ``R_y P R_x^T - sin(pi dy) sin(pi dx) (σᵀ P σ) σ σᵀ / s^2`` with
    ``R = Re C`` restricted to the stamp and ``σ_a = (-1)^a``: two small real matrix products per
    frame instead of two 2-D FFTs, equal to them to rounding.

    Parameters
    ----------
    stamp : ndarray, shape (p, p)
        The PSF stamp to shift (not validated).

    Attributes
    ----------
    size : int
        Stamp side ``p``, px.
    """

    def __init__(self, stamp: np.ndarray) -> None:
        p = stamp.shape[0]
        s = p + 2 + (p % 2)  # as _subpixel_shift: 1 px of zero padding on each side, even size
        self.size = p
        self._step = 2 * np.pi / s
        n_freq = s // 2 + 1  # frequencies 0 .. s/2; +-f pair up into cosines, the Nyquist one appears once
        angle = np.outer(np.arange(n_freq), np.arange(s)) * self._step
        weight = np.full((n_freq, 1), 2.0 / s)
        weight[0] = weight[-1] = 1.0 / s
        trig = np.empty((2 * n_freq, s))  # rows cos, sin interleaved, to match a complex array viewed as float
        trig[0::2] = weight * np.cos(angle)
        trig[1::2] = weight * np.sin(angle)
        trig[[1, -1]] = 0.0  # sin at the zero and Nyquist frequencies
        self._trig = trig
        self._n_freq = n_freq
        self._toeplitz = (np.arange(p)[:, None] - np.arange(p)[None, :]) % s
        sigma = (-1.0) ** np.arange(p)
        self._rank1 = (sigma @ stamp @ sigma) * np.outer(sigma, sigma) / s**2
        self._stamp = np.ascontiguousarray(stamp, dtype=np.float64)

    def shifted(self, dy: np.ndarray, dx: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Return the stamp shifted by ``(dy, dx)`` (``|d| < 1``, shape (b, n)) times ``scale`` (b,): shape (b, n, p, p).

        Every product is per row of the batch, so a row's result does not depend on the others.

        Parameters
        ----------
        dy, dx : ndarray, shape (b, n)
            Sub-pixel shifts along y (rows) and x (columns), px, ``|d| < 1``.
        scale : ndarray, shape (b,)
            Factor of each batch row (e.g. the companion flux).

        Returns
        -------
        ndarray, shape (b, n, p, p)
            ``scale[i]`` times the stamp shifted by ``(dy[i, j], dx[i, j])`` as
            :func:`cube_inject_companions` shifts it (``method="fft"``), to rounding.
        """
        b, n = dy.shape
        p = self.size
        # exp(i f 2 pi d / s) for f = 0 .. s/2 as powers of exp(i 2 pi d / s): 2 sines and cosines per shift
        angle = np.stack([dy, dx]) * self._step
        phase = np.empty((2, b, n, self._n_freq), dtype=np.complex128)
        phase[..., 0] = 1.0
        phase[..., 1:] = (np.cos(angle) + 1j * np.sin(angle))[..., None]
        np.cumprod(phase, axis=-1, out=phase)
        h = phase.view(np.float64) @ self._trig  # Re h of both axes, (2, b, n, s)
        hy = h[0] * scale[:, None, None]
        left = (hy[..., self._toeplitz].reshape(b, n * p, p) @ self._stamp).reshape(b, n, p, p)
        out = left @ h[1][..., self._toeplitz.T]  # R_x^T, gathered contiguous
        nyquist = phase[..., -1].imag  # sin(pi d)
        out -= (scale[:, None] * nyquist[0] * nyquist[1])[..., None, None] * self._rank1
        return out
