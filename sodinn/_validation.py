"""Private checks shared by every public entry point.

Each helper validates one argument, names it in the message, says what is wrong and how to fix it,
and returns a clean (copied, float64 where relevant) version. ``TypeError`` for the wrong kind of
object, ``ValueError`` for a wrong value.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import numpy.typing as npt

from sodinn.exceptions import PSFWarning, RotationWarning, SettingError

__all__: list[str] = []

#: Radius, in FWHM, at which a sequence's field rotation is judged when nothing closer in is analysed: the
#: centre of the innermost 1-FWHM annulus of the S/N map (which starts at 1 FWHM, SPEC §5)
ROTATION_RADIUS_FWHM = 1.5


def check_cube(cube: npt.ArrayLike, *, name: str = "cube", allow_nonfinite: bool = False) -> np.ndarray:
    """Return ``cube`` as a float64 3-D array of square frames, or raise."""
    arr = _as_float_array(cube, name)
    if arr.ndim != 3:
        hint = {2: " (a single frame? pass a cube of shape (n_frames, ny, nx))",
                4: " (several channels or wavelengths? pass the cube of one, e.g. cube[0])"}.get(arr.ndim, "")
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


def check_angles(
    angles_deg: npt.ArrayLike, n_frames: int | None = None, *, name: str = "angles_deg", unwrap: bool = True
) -> np.ndarray:
    """Return angles as a float64 1-D array (``(n, 1)`` is flattened), matched to ``n_frames``.

    With ``unwrap`` (parallactic angles, the default), jumps of more than 180 deg between consecutive
    frames are removed by adding multiples of 360 deg (``np.unwrap``; angles already continuous are
    returned unchanged, bit for bit), so that every entry point sees the same sequence however it was
    wrapped (e.g. 160..180, -179..-160 -> 160..200).
    """
    arr = _as_float_array(angles_deg, name)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        msg = f"{name} must be 1-D (one angle per frame); got shape {arr.shape}"
        raise ValueError(msg)
    _check_finite(arr, name, _GIVE_FINITE)
    if n_frames is not None and arr.size != n_frames:
        msg = f"{name} has {arr.size} values but the cube has {n_frames} frames; pass one angle per frame"
        raise ValueError(msg)
    if unwrap and arr.size > 1:
        arr = np.unwrap(arr, period=360.0)
    return arr


def rotation_shortfall(angles_deg: np.ndarray, fwhm_px: float, radius_px: float, *,
                       radius_name: str = "the inner radius of the analysis", scale_name: str | None = None) -> str | None:
    """Say why ``angles_deg`` rotate too little for ADI at ``radius_px``, or return None when they suffice.

    Too little: the total field rotation moves a source at ``radius_px`` by less than one FWHM along
    its arc (``radius_px * rotation_rad < fwhm_px``). The text names the likely causes (angles in
    radians, a sequence too short), not the fix: each caller adds the setting that exists for it.
    ``scale_name`` is how the text names ``fwhm_px`` (default: ``one FWHM (x px)``).
    """
    angles = np.asarray(angles_deg, dtype=np.float64)
    rotation = float(np.ptp(angles)) if angles.size else 0.0
    arc = radius_px * np.deg2rad(rotation)
    if arc >= fwhm_px:
        return None
    cause = "the sequence may be too short"
    if angles.size and np.abs(angles).max() <= 2 * np.pi + 1e-9:
        cause = ("the angles all lie within +-2 pi: they may be in radians (sodinn expects degrees), "
                 "or the sequence too short")
    return (
        f"the field rotates by only {rotation:.3g} deg: a source at {radius_px:.3g} px ({radius_name}) moves "
        f"{arc:.2g} px, less than {scale_name or f'one FWHM ({fwhm_px:.3g} px)'}, so ADI cannot tell it from the star's "
        f"speckles; {cause}"
    )


def check_rotation(angles_deg: np.ndarray, fwhm_px: float, radius_px: float, *, radius_name: str,
                   allow: bool) -> str | None:
    """Refuse too little rotation (:func:`rotation_shortfall`) unless ``allow``; return the problem found, or None.

    The :class:`~sodinn.exceptions.SettingError` names ``allow_small_rotation`` (``[data]``, the command
    lines' ``--allow-small-rotation``), the setting that lets a run go on; with ``allow`` the caller
    reports the returned text as a warning.
    """
    problem = rotation_shortfall(angles_deg, fwhm_px, radius_px, radius_name=radius_name)
    if problem is not None and not allow:
        raise SettingError(problem + "; pass the angles in degrees, or set {allow_small_rotation} if the rotation is "
                           "right", allow_small_rotation=True)
    return problem


def warn_small_rotation(angles_deg: np.ndarray, fwhm_px: float, radius_px: float, *, stacklevel: int = 3) -> None:
    """Emit a :class:`~sodinn.exceptions.RotationWarning` when :func:`rotation_shortfall` finds too little rotation."""
    problem = rotation_shortfall(angles_deg, fwhm_px, radius_px)
    if problem is not None:
        msg = (
            f"{problem}. Pass the angles in degrees (np.rad2deg), or, if the rotation is right, filter "
            "sodinn.exceptions.RotationWarning"
        )
        warnings.warn(msg, RotationWarning, stacklevel=stacklevel)


def warn_small_rotation_without_fwhm(angles_deg: np.ndarray, frame_size: int, *, stacklevel: int = 3) -> None:
    """Warn (:class:`~sodinn.exceptions.RotationWarning`) when even a source at the frame's edge moves less than 1 px.

    For the reductions that take no FWHM (full-frame PCA-ADI, median-ADI): the most lenient form of
    :func:`rotation_shortfall`, which still catches angles given in radians.
    """
    problem = rotation_shortfall(angles_deg, 1.0, frame_size / 2, scale_name="one pixel",
                                 radius_name="the edge of the frame; no FWHM is given, so judged against 1 px")
    if problem is not None:
        msg = (f"{problem}. Pass the angles in degrees (np.rad2deg), or, if the rotation is right, filter "
               "sodinn.exceptions.RotationWarning")
        warnings.warn(msg, RotationWarning, stacklevel=stacklevel)


def check_fwhm(fwhm_px: float, *, frame_size: int | None = None, name: str = "fwhm_px") -> float:
    """Return a positive, finite, plausible FWHM in pixels, or raise."""
    value = check_positive(fwhm_px, name=name)
    field = "{" + name + "}" if name.isidentifier() else name
    settings = {name: None} if name.isidentifier() else {}
    if value < 0.5:
        raise SettingError(f"a FWHM of {value:g} px is below the sampling limit; the FWHM of a real PSF is at least "
                           f"~1 px (did you pass arcsec?): set {field} in pixels", **settings)
    if frame_size is not None and value > frame_size / 4:
        raise SettingError(f"a FWHM of {value:g} px is absurd for {frame_size}x{frame_size} px frames (more than a "
                           f"quarter of the frame); set {field} in pixels", **settings)
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


def check_ncomp(ncomp: int, rank: int, *, name: str = "ncomp", why: str = "") -> int:
    """Return a number of principal components below ``rank``, the rank of the data it models, or raise.

    ``ncomp`` at or above the rank models everything the data hold: the residuals, and the final
    frame, are round-off. ``why`` says where the rank comes from (e.g. "mean subtraction leaves rank
    19 in 20 frames"); the message gives the largest usable value.
    """
    number = check_int(ncomp, name=name, minimum=1)
    reason = f" ({why})" if why else ""
    if rank <= 1:
        msg = (f"{name}={number} cannot be used: the data hold rank {rank}{reason}, so no number of components "
               "leaves residuals above round-off; use more frames")
        raise ValueError(msg)
    if number >= rank:
        msg = (f"{name}={number} is at or above the rank of the data, {rank}{reason}: the residuals would be "
               f"round-off; use at most {name}={rank - 1}")
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


#: Largest distance (px) between a PSF stamp's centroid and its central pixel for which the stamp is kept
#: as given. Larger offsets (up to :func:`psf_offset_limit_px`) are corrected by a sub-pixel Fourier shift.
#: 0.03 px leaves 0.02 px of margin below the 0.05-px placement that injections promise (for the centroid
#: error of a noisy stamp), it is below a tenth of the astrometric error of an S/N 5 detection and far
#: below the +-0.5 px jitter of C+ samples, and it keeps bit for bit a PSF centred as well as it can be
#: measured (the NACO beta Pic PSF: 0.021 px), which a Fourier shift would ring and smooth for nothing.
PSF_CENTRE_TOLERANCE_PX = 0.03

_SIGMA_TO_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


def check_psf(
    psf: npt.ArrayLike, *, frame_size: int | None = None, name: str = "psf", recenter: bool = True
) -> np.ndarray:
    """Return a square, finite, centred PSF stamp (float64), recentred if needed, or raise.

    See :func:`center_psf` for the rule; a recentred stamp comes with a :class:`~sodinn.exceptions.PSFWarning`.
    With ``recenter=False`` the stamp is returned as given (still refused beyond the limit).
    """
    return center_psf(psf, frame_size=frame_size, name=name, recenter=recenter)[0]


def center_psf(
    psf: npt.ArrayLike, *, frame_size: int | None = None, name: str = "psf", recenter: bool = True
) -> tuple[np.ndarray, tuple[float, float], bool]:
    """Check a PSF stamp, measure its centroid and recentre it on the central pixel when needed.

    The centre of a ``p x p`` stamp is pixel ``p // 2`` (SPEC §1). The centroid is measured on the
    core only (:func:`psf_centroid_xy`). With ``offset`` its distance to the centre:

    - ``offset <= PSF_CENTRE_TOLERANCE_PX``: the stamp is returned as given (a copy);
    - up to :func:`psf_offset_limit_px` (half the FWHM, at least 1 px: a centring error, e.g. an even
      stamp centred on a pixel corner), with the core (1 FWHM around the centroid) inside the stamp:
      shifted by a Fourier phase ramp so that the centroid is the central pixel, with a
      :class:`~sodinn.exceptions.PSFWarning` that says by how much;
    - otherwise refused (``ValueError``, "off-centre", with the offset in px).

    Returns ``(stamp, (dx, dy), recentred)`` where ``(dx, dy)`` is the centroid of the stamp as given
    minus the centre, px.
    """
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
    c = size // 2  # SPEC §1: N//2 for even N, (N-1)/2 for odd N
    x, y = psf_centroid_xy(arr)
    dx, dy = x - c, y - c
    offset = float(np.hypot(dx, dy))
    if offset <= PSF_CENTRE_TOLERANCE_PX:
        return arr, (dx, dy), False
    fwhm = psf_core_fwhm_px(arr)
    limit = psf_offset_limit_px(arr)
    where = (
        f"{name} is off-centre: its centroid is at (x={x:.3f}, y={y:.3f}), {offset:.3f} px (dx={_signed(dx)}, "
        f"dy={_signed(dy)}) from the stamp centre (x={c}, y={c}) (SPEC §1: pixel N//2 of an N x N stamp)"
    )
    if offset > limit:
        msg = (
            f"{where}; that is more than a centring error (at most {limit:.2f} px: half its FWHM of ~{fwhm:.1f} px, "
            "and at least 1 px). Cut the stamp around the PSF so that its peak is the central pixel"
        )
        raise ValueError(msg)
    edge = min(x + 0.5, y + 0.5, size - 0.5 - x, size - 0.5 - y)
    if edge < fwhm:
        msg = (
            f"{where}, and its core lies {edge:.2f} px from the stamp edge (less than its FWHM of ~{fwhm:.1f} px), "
            "too close to recentre it; cut a larger stamp centred on the PSF"
        )
        raise ValueError(msg)
    if not recenter:
        return arr, (dx, dy), False
    warnings.warn(
        f"{where}; recentred it by a sub-pixel Fourier shift of (dx={_signed(-dx)}, dy={_signed(-dy)}) px. Pass a stamp "
        f"centred to within {PSF_CENTRE_TOLERANCE_PX} px to use it as given",
        PSFWarning,
        stacklevel=3,
    )
    return _fourier_shift(arr, -dy, -dx), (dx, dy), True


def psf_core_fwhm_px(psf: np.ndarray) -> float:
    """Return a rough FWHM (px) of a PSF stamp: the diameter of the disc as large as its pixels above half maximum.

    Clipped to ``[1, p / 2]``; used to size the centroid window and the recentring limit, not as the FWHM.
    """
    n_half = int(np.count_nonzero(psf_core_mask(psf)))
    return float(np.clip(2.0 * np.sqrt(n_half / np.pi), 1.0, psf.shape[0] / 2))


def psf_core_mask(psf: np.ndarray) -> np.ndarray:
    """Return the pixels of the core: those above half maximum connected (8-neighbours) to the brightest pixel.

    A neighbouring source, a ghost or a bright wing above half maximum but apart from the peak is left out,
    so it neither widens the core nor pulls its centroid.
    """
    from scipy import ndimage

    above = psf >= 0.5 * psf.max()
    labels, _ = ndimage.label(above, structure=np.ones((3, 3)))
    peak = np.unravel_index(int(np.argmax(psf)), psf.shape)
    return labels == labels[peak]


def psf_offset_limit_px(psf: np.ndarray) -> float:
    """Return the largest centroid offset (px) taken as a centring error: half the core FWHM, at least 1 px."""
    return max(0.5 * psf_core_fwhm_px(psf), 1.0)


def psf_centroid_xy(psf: np.ndarray, *, max_iter: int = 100) -> tuple[float, float]:
    """Return the sub-pixel centroid ``(x, y)`` (px) of the core of a PSF stamp (a finite 2-D array).

    The Gaussian-windowed centroid (SExtractor's ``XWIN_IMAGE``): starting from the brightest pixel, the
    centre moves to the first moment of the image weighted by a circular Gaussian as wide as the PSF
    (:func:`psf_core_fwhm_px`, at least 4 px: a narrower window leaves the weighted profile too few
    pixels and the discrete moment aliases, by 0.035 px for a 2-px FWHM) centred on the current centre,
    cut at twice that width, until it moves by less than 1e-7 px. It is the centre of any symmetric
    PSF (to 1e-4 px from a 2-px FWHM up, 5e-3 px at 1.5 px), and a noisy or asymmetric wing beyond
    1-2 FWHM does not move it.
    """
    fwhm = max(psf_core_fwhm_px(psf), 4.0)
    two_sigma2 = 2.0 * (fwhm / _SIGMA_TO_FWHM) ** 2
    yy, xx = np.indices(psf.shape, dtype=np.float64)
    py, px = np.unravel_index(int(np.argmax(psf)), psf.shape)
    x, y = float(px), float(py)
    keep = ~other_sources_mask(psf, mirror_yx=(int(py), int(px)))
    for _ in range(max_iter):
        d2 = (xx - x) ** 2 + (yy - y) ** 2
        weighted = np.where((d2 <= 4.0 * fwhm * fwhm) & keep, np.exp(-d2 / two_sigma2), 0.0) * psf
        total = float(weighted.sum())
        if not total > 0:
            break
        step_x = float(np.clip(2.0 * (weighted * (xx - x)).sum() / total, -1.0, 1.0))
        step_y = float(np.clip(2.0 * (weighted * (yy - y)).sum() / total, -1.0, 1.0))
        x, y = x + step_x, y + step_y
        if max(abs(step_x), abs(step_y)) < 1e-7:
            break
    return x, y


def other_sources_mask(psf: np.ndarray, *, mirror_yx: tuple[int, int] | None = None) -> np.ndarray:
    """Return the pixels of other sources in a PSF stamp: those above half maximum apart from the core, grown by a core FWHM.

    A neighbour or a ghost, left out of the centroid (:func:`psf_centroid_xy`) and of the FWHM fit
    (:func:`sodinn.adi.psf.fit_gaussian_2d`); the core and the pixels touching it are never in it.
    With ``mirror_yx`` (a pixel, e.g. the peak) the mask is mirrored through it, so that a window about
    the core stays symmetric. Empty for a PSF whose core is the only part above half maximum.
    """
    from scipy import ndimage

    core = psf_core_mask(psf)
    others = (psf >= 0.5 * psf.max()) & ~core
    if not others.any():
        return others
    grow = max(1, int(np.ceil(psf_core_fwhm_px(psf))))
    masked = ndimage.binary_dilation(others, iterations=grow) & ~ndimage.binary_dilation(core, iterations=1)
    if mirror_yx is None:
        return masked
    py, px = mirror_yx
    ys, xs = np.nonzero(masked)
    ry, rx = 2 * py - ys, 2 * px - xs
    inside = (ry >= 0) & (ry < psf.shape[0]) & (rx >= 0) & (rx < psf.shape[1])
    masked[ry[inside], rx[inside]] = True
    return masked


def _signed(value_px: float) -> str:
    """``value_px`` as ``+1.234`` / ``-1.234``, px, with no ``-0.000``."""
    return f"{round(value_px, 3) + 0.0:+.3f}"


def _fourier_shift(stamp: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Shift ``stamp`` by ``(dy, dx)`` px (any size) by a Fourier phase ramp of the zero-padded stamp; same shape."""
    from scipy.ndimage import fourier_shift

    p = stamp.shape[0]
    pad = int(np.ceil(max(abs(dx), abs(dy)))) + 1  # nothing shifted out wraps back in
    padded = np.pad(stamp, pad)
    shifted = np.fft.ifft2(fourier_shift(np.fft.fft2(padded), (dy, dx))).real
    return np.ascontiguousarray(shifted[pad : pad + p, pad : pad + p])


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
    _check_finite(arr, name, _GIVE_FINITE)
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


#: The fix for non-finite values in images (cubes, frames, PSFs); numbers given one by one take ``_GIVE_FINITE``
_IMAGE_FIX = "replace them (e.g. np.nan_to_num, or interpolate bad pixels) before calling"
_GIVE_FINITE = "give finite numbers"


def _check_finite(arr: np.ndarray, name: str, fix: str = _IMAGE_FIX) -> None:
    finite = np.isfinite(arr)
    if not finite.all():
        n_bad = int(arr.size - np.count_nonzero(finite))
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        msg = f"{name} contains {n_bad} NaN or infinite value(s) (first at index {first}); {fix}"
        raise ValueError(msg)
