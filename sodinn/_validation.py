"""Private checks shared by every public entry point.

Each helper validates one argument, names it in the message, says what is wrong and how to fix it,
and returns a clean (copied, float64 where relevant) version. ``TypeError`` for the wrong kind of
object, ``ValueError`` for a wrong value.
"""

from __future__ import annotations

import numbers

import numpy as np
import numpy.typing as npt

from sodinn.exceptions import SettingError

__all__: list[str] = []


def check_cube(cube: npt.ArrayLike, *, name: str = "cube", allow_nonfinite: bool = False) -> np.ndarray:
    """Return ``cube`` as a float64 3-D array of square frames, or raise."""
    arr = _as_float_array(cube, name)
    if arr.ndim != 3:
        hint = " (a single frame? pass a cube of shape (n_frames, ny, nx))" if arr.ndim == 2 else ""
        msg = f"{name} must be a 3-D array (n_frames, ny, nx); got {arr.ndim}-D with shape {arr.shape}{hint}"
        raise ValueError(msg)
    n, ny, nx = arr.shape
    if n < 1:
        msg = f"{name} has no frames; pass a cube with at least one frame"
        raise ValueError(msg)
    if ny != nx:
        msg = f"{name} frames must be square; got {ny}x{nx} px. Crop the frames to a square centred on the star"
        raise ValueError(msg)
    if not allow_nonfinite:
        _check_finite(arr, name)
    return arr


def check_frame(frame: npt.ArrayLike, *, name: str = "frame", allow_nonfinite: bool = False) -> np.ndarray:
    """Return ``frame`` as a float64 square 2-D array, or raise."""
    arr = _as_float_array(frame, name)
    if arr.ndim != 2:
        msg = f"{name} must be a 2-D image (ny, nx); got {arr.ndim}-D with shape {arr.shape}"
        raise ValueError(msg)
    if arr.shape[0] != arr.shape[1]:
        msg = f"{name} must be square; got {arr.shape[0]}x{arr.shape[1]} px. Crop it to a square centred on the star"
        raise ValueError(msg)
    if not allow_nonfinite:
        _check_finite(arr, name)
    return arr


def check_angles(angles_deg: npt.ArrayLike, n_frames: int | None = None, *, name: str = "angles_deg") -> np.ndarray:
    """Return angles as a float64 1-D array (``(n, 1)`` is flattened), matched to ``n_frames``."""
    arr = _as_float_array(angles_deg, name)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        msg = f"{name} must be 1-D (one angle per frame); got shape {arr.shape}"
        raise ValueError(msg)
    _check_finite(arr, name)
    if n_frames is not None and arr.size != n_frames:
        msg = f"{name} has {arr.size} values but the cube has {n_frames} frames; pass one angle per frame"
        raise ValueError(msg)
    return arr


def check_fwhm(fwhm_px: float, *, frame_size: int | None = None, name: str = "fwhm_px") -> float:
    """Return a positive, finite, plausible FWHM in pixels, or raise."""
    value = check_positive(fwhm_px, name=name)
    if value < 0.5:
        msg = f"{name}={value:g} px is below the sampling limit; the FWHM of a real PSF is at least ~1 px (did you pass arcsec?)"
        raise ValueError(msg)
    if frame_size is not None and value > frame_size / 4:
        msg = (
            f"{name}={value:g} px is absurd for {frame_size}x{frame_size} px frames (more than a quarter of the frame); "
            "pass the FWHM in pixels"
        )
        raise ValueError(msg)
    return value


def check_positive(value: float, *, name: str) -> float:
    """Return ``value`` as a float if it is a finite number > 0, or raise."""
    number = check_real(value, name=name)
    if not number > 0:
        msg = f"{name} must be > 0; got {number!r}"
        raise ValueError(msg)
    return number


def check_real(value: float, *, name: str) -> float:
    """Return ``value`` as a finite Python float, or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = f"{name} must be a real number; got {type(value).__name__} {value!r}"
        raise TypeError(msg)
    number = float(value)
    if not np.isfinite(number):
        msg = f"{name} must be finite; got {number!r}"
        raise ValueError(msg)
    return number


def check_int(value: int, *, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int within ``[minimum, maximum]``, or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        msg = f"{name} must be an integer; got {type(value).__name__} {value!r}"
        raise TypeError(msg)
    number = int(value)
    if minimum is not None and number < minimum:
        msg = f"{name} must be >= {minimum}; got {number}"
        raise ValueError(msg)
    if maximum is not None and number > maximum:
        msg = f"{name} must be <= {maximum}; got {number}"
        raise ValueError(msg)
    return number


def check_ncomp(ncomp: int, n_frames: int, *, name: str = "ncomp") -> int:
    """Return a number of principal components usable with ``n_frames`` frames, or raise."""
    number = check_int(ncomp, name=name, minimum=1)
    if number > n_frames:
        msg = f"{name}={number} is larger than the number of frames ({n_frames}); use at most {n_frames} components"
        raise ValueError(msg)
    return number


def check_choice(value: str, choices: tuple[str, ...], *, name: str) -> str:
    """Return ``value`` if it is one of ``choices``, or raise."""
    if not isinstance(value, str) or value not in choices:
        msg = f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}"
        raise ValueError(msg)
    return value


def check_radii(r_in_px: float, r_out_px: float, frame_size: int, *, name: str = "radii") -> tuple[float, float]:
    """Check ``0 <= r_in < r_out <= frame_size / 2`` for an annulus in a square frame."""
    r_in = check_real(r_in_px, name=f"{name}: r_in_px")
    r_out = check_real(r_out_px, name=f"{name}: r_out_px")
    if r_in < 0:
        msg = f"{name}: inner radius must be >= 0 px; got {r_in:g}"
        raise ValueError(msg)
    if r_out <= r_in:
        msg = f"{name}: outer radius ({r_out:g} px) must be larger than the inner radius ({r_in:g} px)"
        raise ValueError(msg)
    limit = frame_size / 2
    if r_out > limit + 1e-9:
        msg = (
            f"{name}: outer radius {r_out:g} px lies outside the {frame_size}x{frame_size} px frame "
            f"(at most {limit:g} px); reduce it or pass a larger frame"
        )
        raise ValueError(msg)
    return r_in, r_out


def check_psf(psf: npt.ArrayLike, *, frame_size: int | None = None, name: str = "psf") -> np.ndarray:
    """Return a square, finite, centred PSF stamp (float64), or raise."""
    arr = _as_float_array(psf, name)
    if arr.ndim != 2:
        msg = f"{name} must be a 2-D stamp (p, p); got {arr.ndim}-D with shape {arr.shape}"
        raise ValueError(msg)
    if arr.shape[0] != arr.shape[1]:
        msg = f"{name} must be square; got {arr.shape[0]}x{arr.shape[1]} px. Crop it to a square centred on the PSF peak"
        raise ValueError(msg)
    _check_finite(arr, name)
    size = arr.shape[0]
    if size < 3:
        msg = f"{name} is {size}x{size} px; a PSF stamp needs at least 3x3 px"
        raise ValueError(msg)
    if frame_size is not None and size > frame_size:
        msg = (
            f"{name} ({size}x{size} px) is larger than the frames ({frame_size}x{frame_size} px); "
            "crop the PSF (e.g. sodinn.adi.psf.crop_psf) to at most the frame size"
        )
        raise ValueError(msg)
    peak = float(arr.max())
    if not peak > 0:
        msg = f"{name} has no positive pixel; pass an off-axis (unsaturated) PSF image"
        raise ValueError(msg)
    c = size // 2 if size % 2 == 0 else (size - 1) // 2
    py, px = np.unravel_index(int(np.argmax(arr)), arr.shape)
    if abs(py - c) > 1 or abs(px - c) > 1:
        msg = (
            f"{name} is off-centre: its peak is at (x={px}, y={py}) but the stamp centre is (x={c}, y={c}) "
            "(SPEC §1: N//2 for even, (N-1)/2 for odd N); recentre the PSF on its stamp"
        )
        raise ValueError(msg)
    return arr


def check_positions_xy(positions: npt.ArrayLike, *, name: str = "positions_xy", frame_size: int | None = None) -> np.ndarray:
    """Return positions as a float64 ``(n, 2)`` array of (x, y) pixel coordinates, inside the frame if its size is given.

    A position outside ``[0, frame_size - 1]`` in x or y raises a :class:`~sodinn.exceptions.SettingError`
    naming ``name`` (so the command line names its flag, e.g. ``--mask``).
    """
    arr = _as_float_array(positions, name)
    if arr.ndim == 1 and arr.size == 2:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2:
        msg = f"{name} must be (x, y) or an (n, 2) array of (x, y) pairs; got shape {arr.shape}"
        raise ValueError(msg)
    _check_finite(arr, name)
    if frame_size is not None:
        outside = np.flatnonzero(((arr < 0) | (arr > frame_size - 1)).any(axis=1))
        if outside.size:
            x, y = arr[outside[0]]
            where = f"({x:g}, {y:g}) lies outside the {frame_size}x{frame_size} px frame"
            fix = f"x and y go from 0 to {frame_size - 1} px (pixel positions in the frame, x along a row)"
            if name.isidentifier():
                raise SettingError(f"{{{name}}}: {where}; {fix}", **{name: None})
            msg = f"{name}: {where}; {fix}"
            raise ValueError(msg)
    return arr


def check_sources_in_frame(config: object, frame_size: int) -> None:
    """Check the ``known_sources_xy`` of a settings object against the frame size (see :func:`check_positions_xy`)."""
    sources = getattr(config, "known_sources_xy", ())
    if len(sources):
        check_positions_xy(sources, name="known_sources_xy", frame_size=frame_size)


def _as_float_array(value: npt.ArrayLike, name: str) -> np.ndarray:
    if isinstance(value, (str, bytes)) or value is None:
        msg = f"{name} must be array-like of numbers; got {type(value).__name__}"
        raise TypeError(msg)
    try:
        arr = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as err:
        msg = f"{name} must be array-like of numbers; could not convert it ({err})"
        raise TypeError(msg) from err
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    finite = np.isfinite(arr)
    if not finite.all():
        n_bad = int(arr.size - np.count_nonzero(finite))
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        msg = (
            f"{name} contains {n_bad} NaN or infinite value(s) (first at index {first}); "
            "replace them (e.g. np.nan_to_num, or interpolate bad pixels) before calling"
        )
        raise ValueError(msg)
