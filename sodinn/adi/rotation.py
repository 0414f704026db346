"""Rotation of frames and cubes, and the exact "derotated mean at given pixels" operator (SPEC §2).

Conventions (SPEC §1, identical to VIP): rotations are about the frame centre
(:func:`sodinn.adi.geometry.frame_center`); a positive angle turns the image content
counter-clockwise (x to the right, y along the rows). ``cube_derotate(cube, angles_deg)`` turns
frame ``i`` by ``+angles_deg[i]`` and brings every frame to the sky orientation, like VIP's
``cube_derotate``.

Bilinear interpolation (the default) is computed by sodinn itself from explicit 4-pixel stencils:
the full-frame derotation and the fast operator :class:`DerotationStencil` use the same weights,
so the fast path equals "derotate the whole cube, average, crop" to rounding error. Source pixels
outside the frame count as zero. ``order=3`` selects a cubic-spline interpolation
(:func:`scipy.ndimage.map_coordinates`) for full-frame work.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.geometry import frame_center

__all__ = ["DerotationStencil", "cube_derotate", "derotated_mean_at", "frame_rotate"]

_ORDERS = (1, 3)


def frame_rotate(frame: npt.ArrayLike, angle_deg: float, *, order: int = 1) -> np.ndarray:
    """Rotate the content of a frame counter-clockwise by ``angle_deg`` about its centre.

    Parameters
    ----------
    frame : ndarray, shape (N, N)
        Square image; the centre is :func:`~sodinn.adi.geometry.frame_center`.
    angle_deg : float
        Rotation angle, degrees, counter-clockwise.
    order : {1, 3}
        1: bilinear (default); 3: cubic spline.

    Returns
    -------
    ndarray, shape (N, N), float64
        The rotated frame; pixels that read outside the input are 0.

    Raises
    ------
    TypeError
        If ``frame`` is not array-like of numbers, ``angle_deg`` is not a real number or ``order`` not
        an integer.
    ValueError
        If ``frame`` is not a finite square 2-D array, ``angle_deg`` is not finite, or ``order`` is
        not 1 or 3.

    Notes
    -----
    ``frame_rotate(f, a)`` equals VIP's ``frame_rotate(f, -a)`` (VIP turns clockwise for a positive
    angle; its ``cube_derotate`` passes ``-angle``).

    Examples
    --------
    >>> f = np.zeros((5, 5)); f[2, 4] = 1.0          # a point 2 px right of the centre (+x)
    >>> int(np.argmax(frame_rotate(f, 90.0)))  # -> 2 px "up" (+y): row 4, column 2
    22
    """
    arr = v.check_frame(frame)
    angle = v.check_real(angle_deg, name="angle_deg")
    return cube_derotate(arr[None], np.array([angle]), order=order)[0]


def cube_derotate(cube: npt.ArrayLike, angles_deg: npt.ArrayLike, *, order: int = 1) -> np.ndarray:
    """Derotate every frame of a cube by its parallactic angle (counter-clockwise by ``+angle``).

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        Star-centred frames.
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees, counter-clockwise (SPEC §1). Pass ``-angles_deg`` for the
        "flipped" derotation that smears real sources.
    order : {1, 3}
        1: bilinear (default, the interpolation of SODINN's samples); 3: cubic spline.

    Returns
    -------
    ndarray, shape (n_frames, N, N), float64
        Frame ``i`` turned counter-clockwise by ``angles_deg[i]`` about the frame centre (VIP's
        ``cube_derotate``); pixels that read outside the frame are 0.

    Raises
    ------
    TypeError
        If ``cube`` or ``angles_deg`` is not array-like of numbers, or ``order`` is not an integer.
    ValueError
        If ``cube`` is not a finite cube of square frames, ``angles_deg`` does not hold one finite
        angle per frame, or ``order`` is not 1 or 3.

    See Also
    --------
    derotated_mean_at : The mean of the derotated cube at a few pixels only, exactly and fast.
    """
    arr = v.check_cube(cube)
    angles = v.check_angles(angles_deg, arr.shape[0])
    order = _check_order(order)
    n, size, _ = arr.shape
    yy, xx = np.indices((size, size))
    pixels = np.column_stack([yy.ravel(), xx.ravel()])
    if order == 1:
        out = np.empty_like(arr)
        step = max(1, 60_000 // (size * size))  # frames per chunk: cache-sized pieces (3x faster)
        for start in range(0, n, step):
            stop = min(n, start + step)
            out[start:stop] = _bilinear_rotate(arr[start:stop], angles[start:stop], pixels)
        return out
    from scipy.ndimage import map_coordinates

    out = np.empty_like(arr)
    for i in range(n):
        src_y, src_x = _source_coordinates((size, size), angles[i : i + 1], pixels)
        out[i] = map_coordinates(arr[i], [src_y[0], src_x[0]], order=order, mode="grid-constant", cval=0.0).reshape(
            size, size
        )
    return out


def _bilinear_rotate(frames: np.ndarray, angles: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Bilinear rotation of several frames with zero padding (the semantics of the stencils)."""
    n, size, _ = frames.shape
    pad = 2
    padded = np.pad(frames, ((0, 0), (pad, pad), (pad, pad)))
    width = size + 2 * pad
    src_y, src_x = _source_coordinates((size, size), angles, pixels)
    x0 = np.floor(src_x)
    y0 = np.floor(src_y)
    fx = src_x - x0
    fy = src_y - y0
    # clip into the zero border: a clipped corner and its +1 neighbour are both padding
    xi = np.clip(x0, -pad, size).astype(np.int64) + pad
    yi = np.clip(y0, -pad, size).astype(np.int64) + pad
    flat = padded.reshape(n, -1)
    base = yi * width + xi
    a = np.take_along_axis(flat, base, axis=1)
    b = np.take_along_axis(flat, base + 1, axis=1)
    c = np.take_along_axis(flat, base + width, axis=1)
    d = np.take_along_axis(flat, base + width + 1, axis=1)
    top = a + fx * (b - a)
    bottom = c + fx * (d - c)
    return (top + fy * (bottom - top)).reshape(n, size, size)


class DerotationStencil:
    """The derotation of a cube followed by a mean over frames, sampled at a few pixels only.

    Bilinear derotation then a mean over time is a fixed linear operator (SPEC §2): output pixel
    ``p`` reads, in frame ``t``, 4 source pixels ``index[t, p, j]`` with weights ``weight[t, p, j]``
    that depend only on the angle of frame ``t``, the frame centre and ``p``. Building the stencil
    once lets the derotated mean of any cube (or of residual matrices, see
    :func:`sodinn.adi.pca.residual_means_at`) be computed in ``O(n_frames * n_pixels * 4)``.

    Parameters
    ----------
    shape : tuple of int
        Frame shape ``(N, N)``.
    angles_deg : ndarray, shape (n_frames,)
        Derotation angles, degrees, counter-clockwise (``+PA`` to align on the sky, ``-PA`` for
        flipped angles; SPEC §1).
    pixels_yx : array-like of int, shape (n_pixels, 2)
        Output pixels ``(y, x)`` at which the derotated mean is wanted; integer-valued floats are
        accepted.

    Attributes
    ----------
    index : ndarray of int64, shape (n_frames, n_pixels, 4)
        Flat (row-major) indices of the source pixels in each frame.
    weight : ndarray of float64, shape (n_frames, n_pixels, 4)
        Bilinear weights divided by ``n_frames`` (so that a plain sum gives the mean); zero for
        source pixels outside the frame.
    shape : tuple of int
        ``(N, N)``.
    angles_deg : ndarray, shape (n_frames,)
        The checked angles, degrees (float64).
    pixels_yx : ndarray of int64, shape (n_pixels, 2)
        The checked output pixels ``(y, x)``.

    Raises
    ------
    TypeError
        If ``angles_deg`` is not array-like of numbers.
    ValueError
        If ``shape`` is not a square frame shape, ``angles_deg`` is not 1-D and finite, or
        ``pixels_yx`` is not an ``(n, 2)`` array of integer pixels inside the frame.

    See Also
    --------
    derotated_mean_at : A one-off use of the stencil.
    """

    def __init__(self, shape: tuple[int, int], angles_deg: npt.ArrayLike, pixels_yx: npt.ArrayLike) -> None:
        size = _check_square_shape(shape)
        angles = v.check_angles(angles_deg)
        pixels = _check_pixels(pixels_yx, size)
        self.shape = (size, size)
        self.angles_deg = angles
        self.pixels_yx = pixels
        index, weight = _bilinear_stencil(self.shape, angles, pixels)
        self.index = index
        self.weight = weight / angles.size

    @property
    def n_frames(self) -> int:
        """Number of frames the stencil expects."""
        return int(self.angles_deg.size)

    def mean_of(self, cube: npt.ArrayLike) -> np.ndarray:
        """Return the derotated mean of ``cube`` at the stencil's pixels.

        Parameters
        ----------
        cube : ndarray, shape (n_frames, N, N)
            A cube of the shape the stencil was built for.

        Returns
        -------
        ndarray, shape (n_pixels,)
            ``cube_derotate(cube, angles_deg).mean(axis=0)`` at ``pixels_yx``, to rounding.

        Raises
        ------
        TypeError
            If ``cube`` is not array-like of numbers.
        ValueError
            If ``cube`` is not a finite cube of the stencil's shape ``(n_frames, N, N)``.
        """
        arr = v.check_cube(cube)
        if arr.shape != (self.n_frames, *self.shape):
            msg = f"cube has shape {arr.shape}; this stencil was built for {(self.n_frames, *self.shape)}"
            raise ValueError(msg)
        flat = arr.reshape(self.n_frames, -1)
        values = np.take_along_axis(flat, self.index.reshape(self.n_frames, -1), axis=1)
        return np.einsum("tpj,tpj->p", values.reshape(self.index.shape), self.weight)

    def source_pixels(self) -> np.ndarray:
        """Return the sorted unique flat indices of every source pixel the stencil reads (with non-zero weight).

        Returns
        -------
        ndarray of int64, shape (n_sources,)
            Row-major indices into an ``(N, N)`` frame.
        """
        return np.unique(self.index[self.weight != 0])


def derotated_mean_at(cube: npt.ArrayLike, angles_deg: npt.ArrayLike, pixels_yx: npt.ArrayLike) -> np.ndarray:
    """Mean over frames of the bilinearly derotated cube, evaluated at the given pixels only.

    Equal to ``cube_derotate(cube, angles_deg).mean(axis=0)[y, x]`` (to rounding), at a cost
    proportional to the number of pixels asked for instead of the frame size (SPEC §2).

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        Star-centred frames.
    angles_deg : ndarray, shape (n_frames,)
        Derotation angles, degrees, counter-clockwise (SPEC §1).
    pixels_yx : array-like of int, shape (n_pixels, 2)
        Output pixels ``(y, x)``.

    Returns
    -------
    ndarray, shape (n_pixels,)
        The derotated mean at each pixel, in the cube's units.

    Raises
    ------
    TypeError
        If ``cube`` or ``angles_deg`` is not array-like of numbers.
    ValueError
        If ``cube`` is not a finite cube of square frames, ``angles_deg`` does not hold one finite
        angle per frame, or ``pixels_yx`` is not an ``(n, 2)`` array of integer pixels inside the frame.

    See Also
    --------
    DerotationStencil : The operator, to reuse for several cubes of one geometry.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> cube = rng.normal(size=(4, 21, 21)); angles = np.array([0.0, 10.0, 20.0, 30.0])
    >>> fast = derotated_mean_at(cube, angles, [(10, 15), (3, 7)])
    >>> full = cube_derotate(cube, angles).mean(axis=0)
    >>> bool(np.allclose(fast, [full[10, 15], full[3, 7]]))
    True
    """
    arr = v.check_cube(cube)
    angles = v.check_angles(angles_deg, arr.shape[0])
    return DerotationStencil(arr.shape[1:], angles, pixels_yx).mean_of(arr)


def _source_coordinates(
    shape: tuple[int, int], angles_deg: np.ndarray, pixels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where output pixels read from when the content turns counter-clockwise by each angle.

    Returns ``(src_y, src_x)``, each of shape ``(n_angles, n_pixels)``.
    """
    cy, cx = frame_center(shape)
    theta = np.deg2rad(np.atleast_1d(angles_deg))[:, None]
    cos, sin = np.cos(theta), np.sin(theta)
    dy = (pixels[:, 0] - cy)[None, :].astype(np.float64)
    dx = (pixels[:, 1] - cx)[None, :].astype(np.float64)
    return cy - sin * dx + cos * dy, cx + cos * dx + sin * dy


def _bilinear_stencil(shape: tuple[int, int], angles: np.ndarray, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat source indices and bilinear weights, shape ``(n_angles, n_pixels, 4)`` each."""
    ny, nx = shape
    src_y, src_x = _source_coordinates(shape, angles, pixels)
    x0 = np.floor(src_x)
    y0 = np.floor(src_y)
    fx = src_x - x0
    fy = src_y - y0
    x0 = x0.astype(np.int64)
    y0 = y0.astype(np.int64)
    ys = np.stack([y0, y0, y0 + 1, y0 + 1], axis=-1)
    xs = np.stack([x0, x0 + 1, x0, x0 + 1], axis=-1)
    w = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], axis=-1)
    inside = (ys >= 0) & (ys < ny) & (xs >= 0) & (xs < nx)
    w = np.where(inside, w, 0.0)
    index = np.where(inside, ys * nx + xs, 0)
    return index, w


def _check_order(order: int) -> int:
    order = v.check_int(order, name="order")
    if order not in _ORDERS:
        msg = f"order must be 1 (bilinear) or 3 (cubic spline); got {order}"
        raise ValueError(msg)
    return order


def _check_square_shape(shape: tuple[int, ...]) -> int:
    if len(shape) != 2 or int(shape[0]) != int(shape[1]) or int(shape[0]) < 1:
        msg = f"shape must be a square frame shape (N, N); got {tuple(shape)!r}"
        raise ValueError(msg)
    return int(shape[0])


def _check_pixels(pixels_yx: npt.ArrayLike, size: int) -> np.ndarray:
    pixels = np.asarray(pixels_yx)
    if pixels.ndim == 1 and pixels.size == 2:
        pixels = pixels[None]
    if pixels.ndim != 2 or pixels.shape[1] != 2:
        msg = f"pixels_yx must be an (n, 2) array of integer (y, x) pixels; got shape {pixels.shape}"
        raise ValueError(msg)
    if pixels.size and not np.issubdtype(pixels.dtype, np.integer):
        if not np.all(np.equal(np.mod(pixels, 1), 0)):
            msg = "pixels_yx must hold integer pixel coordinates (y, x)"
            raise ValueError(msg)
        pixels = pixels.astype(np.int64)
    if pixels.size and (pixels.min() < 0 or pixels.max() >= size):
        msg = f"pixels_yx has coordinates outside the {size}x{size} frame"
        raise ValueError(msg)
    return pixels.astype(np.int64)
