"""Frame geometry with VIP's conventions (SPEC §1): centre, polar coordinates, annuli, patches.

The star sits on pixel ``(N - 1) / 2`` for odd ``N`` and ``N / 2`` for even ``N``; angles are
counter-clockwise from +x with y along the rows; an annulus is the half-open set
``r_in <= r < r_in + width``; a patch of odd size ``P`` centred on pixel ``(x, y)`` covers
``x - P//2 ... x + P//2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v

__all__ = [
    "Annuli",
    "annulus_indices",
    "annulus_mask",
    "annulus_partition",
    "frame_center",
    "patch_offsets",
    "extract_patches",
    "polar_coordinates",
    "svd_region_radii",
]


def frame_center(shape: tuple[int, ...]) -> tuple[int, int]:
    """Return the star pixel ``(cy, cx)`` of frames of the given shape.

    Parameters
    ----------
    shape : tuple of int
        Shape of a frame ``(ny, nx)`` or a cube ``(n_frames, ny, nx)``; the last two axes count.

    Returns
    -------
    cy, cx : int
        ``(n - 1) // 2`` for odd ``n``, ``n // 2`` for even ``n`` (VIP's ``frame_center``).

    Raises
    ------
    ValueError
        If ``shape`` has fewer than 2 axes.

    Examples
    --------
    >>> frame_center((101, 101))
    (50, 50)
    >>> frame_center((10, 64, 64))
    (32, 32)
    """
    if len(shape) < 2:
        msg = f"shape must have at least 2 axes (ny, nx); got {shape!r}"
        raise ValueError(msg)
    ny, nx = int(shape[-2]), int(shape[-1])
    return ny // 2, nx // 2  # (n-1)/2 for odd n equals n//2


def polar_coordinates(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Return the separation (px) and position angle (deg, [0, 360)) of every pixel.

    The angle is counter-clockwise from +x with y along the rows (SPEC §1).

    Parameters
    ----------
    shape : tuple of int
        Frame shape ``(ny, nx)`` or cube shape ``(n_frames, ny, nx)``; the last two axes count.

    Returns
    -------
    r_px, theta_deg : ndarray, shape (ny, nx)
        Distance to :func:`frame_center`, px, and position angle, degrees in ``[0, 360)``.

    Raises
    ------
    ValueError
        If ``shape`` has fewer than 2 axes.
    """
    cy, cx = frame_center(shape)
    yy, xx = np.indices((int(shape[-2]), int(shape[-1])), dtype=np.float64)
    dy, dx = yy - cy, xx - cx
    return np.hypot(dx, dy), np.rad2deg(np.arctan2(dy, dx)) % 360.0


def annulus_mask(shape: tuple[int, ...], r_in_px: float, width_px: float) -> np.ndarray:
    """Return the boolean mask of the half-open annulus ``r_in <= r < r_in + width`` (SPEC §1).

    Parameters
    ----------
    shape : tuple of int
        Frame or cube shape; the last two axes count.
    r_in_px : float
        Inner radius (included), px, ``>= 0``.
    width_px : float
        Width, px, ``> 0``.

    Returns
    -------
    ndarray of bool, shape (ny, nx)
        True on the pixels whose distance to :func:`frame_center` lies in the annulus.

    Raises
    ------
    TypeError
        If a radius is not a real number.
    ValueError
        If ``r_in_px < 0``, ``width_px <= 0``, a radius is not finite, or ``shape`` has fewer than 2 axes.
    """
    r_in = v.check_real(r_in_px, name="r_in_px")
    width = v.check_positive(width_px, name="width_px")
    if r_in < 0:
        msg = f"r_in_px must be >= 0; got {r_in:g}"
        raise ValueError(msg)
    r, _ = polar_coordinates(shape)
    return (r >= r_in) & (r < r_in + width)


def annulus_indices(shape: tuple[int, ...], r_in_px: float, width_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the row-major ``(yy, xx)`` pixel indices of the annulus ``r_in <= r < r_in + width``.

    The order is that of ``np.nonzero`` (and of VIP's ``get_annulus_segments``).

    Parameters
    ----------
    shape : tuple of int
        Frame or cube shape; the last two axes count.
    r_in_px : float
        Inner radius (included), px, ``>= 0``.
    width_px : float
        Width, px, ``> 0``.

    Returns
    -------
    yy, xx : ndarray of int, shape (n_pix,)
        Row and column of every pixel of the annulus.

    Raises
    ------
    TypeError
        If a radius is not a real number.
    ValueError
        If ``r_in_px < 0``, ``width_px <= 0`` or a radius is not finite.

    See Also
    --------
    annulus_mask : The same annulus as a mask.

    Examples
    --------
    >>> yy, xx = annulus_indices((11, 11), 1, 1)
    >>> len(yy)  # the 4 direct neighbours of the centre and the 4 diagonal ones
    8
    """
    yy, xx = np.nonzero(annulus_mask(shape, r_in_px, width_px))
    return yy, xx


@dataclass(frozen=True)
class Annuli:
    """A partition of a frame into contiguous annuli.

    Attributes
    ----------
    shape : tuple of int
        Frame shape ``(ny, nx)``.
    edges_px : ndarray, shape (n_annuli + 1,)
        Radii of the boundaries; annulus ``i`` is ``edges_px[i] <= r < edges_px[i + 1]``.
    """

    shape: tuple[int, int]
    edges_px: np.ndarray

    def __len__(self) -> int:
        """Return the number of annuli."""
        return len(self.edges_px) - 1

    @property
    def r_in_px(self) -> np.ndarray:
        """Inner radius of each annulus."""
        return self.edges_px[:-1]

    @property
    def r_out_px(self) -> np.ndarray:
        """Outer radius (excluded) of each annulus."""
        return self.edges_px[1:]

    def indices(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the row-major ``(yy, xx)`` indices of annulus ``i``.

        Parameters
        ----------
        i : int
            Annulus index, ``0 <= i < len(self)``, from the inside out.

        Returns
        -------
        yy, xx : ndarray of int, shape (n_pix,)
            Pixels of ``edges_px[i] <= r < edges_px[i + 1]`` (see :func:`annulus_indices`).

        Raises
        ------
        TypeError
            If ``i`` is not an integer.
        ValueError
            If ``i`` is out of range.
        """
        i = v.check_int(i, name="i", minimum=0, maximum=len(self) - 1)
        return annulus_indices(self.shape, self.edges_px[i], self.edges_px[i + 1] - self.edges_px[i])

    def label_map(self) -> np.ndarray:
        """Return an integer image: the annulus index of each pixel, -1 outside every annulus.

        Returns
        -------
        ndarray of int, shape (ny, nx)
            ``i`` where ``edges_px[i] <= r < edges_px[i + 1]``, else -1.
        """
        r, _ = polar_coordinates(self.shape)
        labels = np.searchsorted(self.edges_px, r, side="right") - 1
        labels[(r < self.edges_px[0]) | (r >= self.edges_px[-1])] = -1
        return labels


def annulus_partition(
    shape: tuple[int, ...],
    width_px: float,
    *,
    r_in_px: float,
    r_out_px: float | None = None,
) -> Annuli:
    """Partition ``[r_in, r_out)`` into contiguous annuli of equal width.

    Parameters
    ----------
    shape : tuple of int
        Frame or cube shape (the last two axes count).
    width_px : float
        Width of each annulus, px (SODINN uses 1 FWHM).
    r_in_px : float
        Inner radius of the first annulus, px.
    r_out_px : float, optional
        Largest allowed outer radius; the partition holds as many whole annuli as fit below it.
        Default: half the frame size.

    Returns
    -------
    Annuli
        ``edges_px = r_in_px + width_px * arange(n + 1)`` with ``n`` the number of whole annuli.

    Raises
    ------
    TypeError
        If a radius or the width is not a real number.
    ValueError
        If the radii lie outside the frame, ``r_out_px <= r_in_px``, the width is not positive, or
        not a single annulus fits.

    Examples
    --------
    >>> annulus_partition((101, 101), 5.0, r_in_px=5.0).edges_px[:3]
    array([ 5., 10., 15.])
    """
    size = min(int(shape[-2]), int(shape[-1]))
    width = v.check_positive(width_px, name="width_px")
    limit = size / 2 if r_out_px is None else r_out_px
    if v.check_real(r_in_px, name="r_in_px") >= size / 2:
        msg = f"r_in_px={r_in_px:g} lies outside the {size}x{size} px frame (at most {size / 2:g} px); lower it"
        raise ValueError(msg)
    r_in, r_out = v.check_radii(r_in_px, limit, size, name="annulus_partition")
    n = int(math.floor((r_out - r_in) / width + 1e-9))
    if n < 1:
        msg = (
            f"no annulus of width {width:g} px fits between r_in={r_in:g} px and r_out={r_out:g} px; "
            "lower r_in_px or the width"
        )
        raise ValueError(msg)
    return Annuli(shape=(int(shape[-2]), int(shape[-1])), edges_px=r_in + width * np.arange(n + 1, dtype=np.float64))


def svd_region_radii(r_in_px: float, r_out_px: float, patch_px: int) -> tuple[float, float]:
    """Return the radii of the SVD region of an annulus: widened by ``ceil(P/2) + 1`` px on both sides (SPEC §2).

    The inner radius is clipped at 0. Every patch of size ``patch_px`` centred in ``[r_in, r_out)``
    lies inside the returned region.

    Parameters
    ----------
    r_in_px : float
        Inner radius of the target annulus, px.
    r_out_px : float
        Outer radius (excluded) of the target annulus, px.
    patch_px : int
        Patch size ``P``, px, ``>= 1``.

    Returns
    -------
    r_in, r_out : float
        Radii of the SVD region, px; not clipped at the frame edge.

    Raises
    ------
    TypeError
        If ``patch_px`` is not an integer.
    ValueError
        If ``patch_px < 1``.

    Examples
    --------
    >>> svd_region_radii(10.0, 15.0, 11)
    (3.0, 22.0)
    """
    p = v.check_int(patch_px, name="patch_px", minimum=1)
    margin = math.ceil(p / 2) + 1
    return max(0.0, float(r_in_px) - margin), float(r_out_px) + margin


def patch_offsets(patch_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the row-major ``(dy, dx)`` offsets of the pixels of an odd ``patch_px`` x ``patch_px`` patch.

    Parameters
    ----------
    patch_px : int
        Odd patch size ``P``, px.

    Returns
    -------
    dy, dx : ndarray of int, shape (P * P,)
        Offsets from the central pixel, each in ``[-P//2, P//2]`` (SPEC §1).

    Raises
    ------
    TypeError
        If ``patch_px`` is not an integer.
    ValueError
        If ``patch_px`` is not a positive odd number.
    """
    p = _check_patch(patch_px)
    half = p // 2
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1]
    return dy.ravel(), dx.ravel()


def extract_patches(frame: npt.ArrayLike, centers_yx: npt.ArrayLike, patch_px: int) -> np.ndarray:
    """Cut odd-sized square patches centred on integer pixels.

    Parameters
    ----------
    frame : ndarray, shape (..., ny, nx)
        Image or stack of images (patches are cut from the last two axes).
    centers_yx : array-like of int, shape (n, 2)
        Patch centres ``(y, x)``.
    patch_px : int
        Odd patch size ``P``.

    Returns
    -------
    ndarray, shape (n, ..., P, P)
        Patch ``i`` is centred on ``centers_yx[i]`` (SPEC §1); dtype of ``frame``.

    Raises
    ------
    TypeError
        If ``patch_px`` is not an integer.
    ValueError
        If ``patch_px`` is not a positive odd number, ``centers_yx`` is not an ``(n, 2)`` integer
        array, or a patch would leave the frame.
    """
    arr = np.asarray(frame)
    p = _check_patch(patch_px)
    centers = np.asarray(centers_yx)
    if centers.ndim != 2 or centers.shape[1] != 2 or not np.issubdtype(centers.dtype, np.integer):
        msg = f"centers_yx must be an (n, 2) integer array of (y, x); got shape {centers.shape}, dtype {centers.dtype}"
        raise ValueError(msg)
    half = p // 2
    ny, nx = arr.shape[-2:]
    if centers.size and (
        centers[:, 0].min() < half or centers[:, 1].min() < half
        or centers[:, 0].max() >= ny - half or centers[:, 1].max() >= nx - half
    ):
        msg = f"a {p}x{p} patch around one of centers_yx leaves the {ny}x{nx} frame; keep centres {half} px from the edges"
        raise ValueError(msg)
    dy, dx = patch_offsets(p)
    yy = centers[:, 0, None] + dy[None, :]
    xx = centers[:, 1, None] + dx[None, :]
    out = arr[..., yy, xx]  # (..., n, P*P)
    out = np.moveaxis(out, -2, 0)
    return out.reshape(out.shape[:-1] + (p, p))


def _check_patch(patch_px: int) -> int:
    p = v.check_int(patch_px, name="patch_px", minimum=1)
    if p % 2 == 0:
        msg = f"patch_px must be odd so that the patch has a central pixel; got {p}"
        raise ValueError(msg)
    return p
