"""The classical reductions SODINN is compared against (SPEC §5): median-ADI, full-frame and annular PCA-ADI.

Each returns the final (derotated, collapsed) frame. Median-ADI is Marois et al. 2006 (ApJ 641, 556);
PCA-ADI is Soummer et al. 2012 (ApJ 755, L28) and Amara & Quanz 2012 (MNRAS 427, 948); the annular
variant with a rotation threshold is VIP's ``pca_annular`` (Gomez Gonzalez et al. 2017, AJ 154, 7).

The registry :data:`BASELINES` (name -> :class:`Baseline`) is how the rest of sodinn reaches them:
``sodinn reduce --method NAME`` (with ``--ncomp``), and the ROC harness and the detection limits by
method names that carry the rank of the ranked ones (``"annular-10"``; see :func:`parse_method`). A
new baseline is one entry of the registry; an entry added from other code must be made when a module
is imported, so that worker processes (which import the modules afresh) see it too. Caches key a
baseline's maps by its name and rank (:meth:`Baseline.tag`): a changed reduction needs a new name.

Rotation uses :func:`sodinn.adi.rotation.cube_derotate` (bilinear by default, ``order=3`` for a cubic
spline); results equal VIP's ``median_sub`` / ``pca`` / ``pca_annular`` run with
``imlib='skimage', interpolation='bilinear'`` inside the field of view (see the tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from sodinn import _validation as v
from sodinn.adi.geometry import annulus_indices
from sodinn.adi.rotation import cube_derotate

__all__ = [
    "BASELINES",
    "Baseline",
    "annular_ncomp_limit",
    "check_not_roundoff",
    "collapse_cube",
    "get_baseline",
    "median_adi",
    "method_name",
    "parse_method",
    "pca_adi",
    "pca_adi_residuals",
    "pca_annular",
    "pca_ncomp_limit",
    "scale_matrix",
]

_COLLAPSE = ("median", "mean")
_SCALING = ("temp-mean", "temp-standard")


def collapse_cube(cube: np.ndarray, collapse: str = "median") -> np.ndarray:
    """Collapse a cube over time with ``"median"`` or ``"mean"``.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        Frames (e.g. derotated residuals).
    collapse : {"median", "mean"}
        Statistic over the frame axis (default ``"median"``).

    Returns
    -------
    ndarray, shape (N, N)
        The collapsed frame.

    Raises
    ------
    ValueError
        If ``collapse`` is neither ``"median"`` nor ``"mean"``.
    """
    collapse = v.check_choice(collapse, _COLLAPSE, name="collapse")
    return np.median(cube, axis=0) if collapse == "median" else cube.mean(axis=0)


def scale_matrix(matrix: np.ndarray, scaling: str | None) -> np.ndarray:
    """Scale each pixel over time: ``None``, ``"temp-mean"`` (centre) or ``"temp-standard"`` (centre, unit variance).

    As ``sklearn.preprocessing.scale`` (population std; constant pixels are only centred), the rule
    VIP's ``matrix_scaling`` applies.

    Parameters
    ----------
    matrix : ndarray, shape (n_frames, n_pix)
        Rows are frames, columns pixels.
    scaling : {None, "temp-mean", "temp-standard"}
        None returns ``matrix`` itself (not a copy).

    Returns
    -------
    ndarray, shape (n_frames, n_pix)
        The scaled matrix.

    Raises
    ------
    ValueError
        If ``scaling`` is not one of the three choices.
    """
    if scaling is None:
        return matrix
    scaling = v.check_choice(scaling, _SCALING, name="scaling")
    out = matrix - matrix.mean(axis=0)
    if scaling == "temp-standard":
        std = out.std(axis=0)
        out = out / np.where(std > 0, std, 1.0)
    return out


def median_adi(
    cube: npt.ArrayLike, angles_deg: npt.ArrayLike, *, collapse: str = "median", order: int = 1
) -> np.ndarray:
    """Reduce a cube by classical ADI: subtract the temporal median frame, derotate, collapse.

    Median-ADI of Marois et al. 2006 (ApJ 641, 556), VIP's ``median_sub`` in full-frame mode.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        Star-centred frames.
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees, counter-clockwise (SPEC §1).
    collapse : {"median", "mean"}
        Collapse of the derotated residuals over time (default ``"median"``).
    order : {1, 3}
        Rotation interpolation (bilinear or cubic spline).

    Returns
    -------
    ndarray, shape (N, N)
        Final frame, in the cube's units.

    Raises
    ------
    TypeError
        If ``cube`` or ``angles_deg`` is not array-like of numbers, or ``order`` is not an integer.
    ValueError
        If ``cube`` is not a finite cube of square frames, ``angles_deg`` does not hold one finite
        angle per frame, or ``collapse`` or ``order`` is not one of its choices.
    """
    arr = v.check_cube(cube)
    angles = v.check_angles(angles_deg, arr.shape[0])
    collapse = v.check_choice(collapse, _COLLAPSE, name="collapse")
    v.warn_small_rotation_without_fwhm(angles, arr.shape[-1])
    residuals = arr - np.median(arr, axis=0)
    return collapse_cube(cube_derotate(residuals, angles, order=order), collapse)


def pca_adi_residuals(
    cube: npt.ArrayLike,
    *,
    ncomp: int | None = None,
    cevr: float = 0.9,
    scaling: str | None = "temp-mean",
) -> np.ndarray:
    """Compute the full-frame PCA residual cube (not derotated): ``(I - U_k U_k^T) M`` with ``M`` the scaled frames.

    ``ncomp=None`` picks the smallest number of components whose cumulative explained variance
    ratio (of the scaled matrix) reaches ``cevr``.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        Star-centred frames.
    ncomp : int, optional
        Number of principal components ``k``, below the rank of the scaled frames (at most
        ``n_frames - 2`` with the default mean subtraction, see :func:`pca_ncomp_limit`); default:
        chosen by ``cevr`` (and kept below that rank).
    cevr : float
        Cumulative explained variance ratio in ``(0, 1)`` that sets ``k`` when ``ncomp`` is None
        (default 0.9).
    scaling : {"temp-mean", "temp-standard", None}
        Pixel-wise scaling over time before PCA (see :func:`scale_matrix`); default mean-centring.

    Returns
    -------
    ndarray, shape (n_frames, N, N)
        Residual frames, in the (scaled) cube's units, not derotated.

    Raises
    ------
    TypeError
        If ``cube`` is not array-like of numbers, ``ncomp`` is not an integer or ``cevr`` is not a
        real number.
    ValueError
        If ``cube`` is not a finite cube of square frames, ``ncomp`` is below 1 or at or above the
        rank of the scaled frames (the residuals would be round-off; the message gives the largest
        usable value), ``cevr`` is not in ``(0, 1)``, or ``scaling`` is not one of its choices.
    """
    arr = v.check_cube(cube)
    n, ny, nx = arr.shape
    if ncomp is not None:
        v.check_int(ncomp, name="ncomp", minimum=1)
    if ncomp is None:
        target = v.check_real(cevr, name="cevr")
        if not 0 < target < 1:
            msg = f"cevr must be in (0, 1); got {target}"
            raise ValueError(msg)
    matrix = scale_matrix(arr.reshape(n, -1), scaling)
    gram = matrix @ matrix.T
    lam, u = np.linalg.eigh(gram)
    lam, u = lam[::-1], u[:, ::-1]
    rank, why = _matrix_rank(lam, n, scaling)
    if ncomp is None:
        ratio = np.cumsum(np.clip(lam, 0, None)) / max(np.clip(lam, 0, None).sum(), np.finfo(np.float64).tiny)
        k = int(np.searchsorted(ratio, target) + 1)
        if rank <= 1:
            v.check_ncomp(k, rank, why=why)  # raises: no rank leaves residuals
        k = min(k, rank - 1)  # all the variance is only reached at full rank: keep residuals above round-off
    else:
        k = v.check_ncomp(ncomp, rank, why=why)
    uk = u[:, :k]
    residuals = matrix - uk @ (uk.T @ matrix)
    return residuals.reshape(n, ny, nx)


def _matrix_rank(eigenvalues: np.ndarray, n_frames: int, scaling: str | None) -> tuple[int, str]:
    """Numerical rank of a matrix from its Gram eigenvalues (descending), and where it comes from."""
    lam = np.asarray(eigenvalues)
    tol = max(float(lam[0]), 0.0) * n_frames * np.finfo(np.float64).eps * 10
    rank = int(np.count_nonzero(lam > tol))
    if scaling is not None and rank == n_frames - 1:
        return rank, f"mean subtraction leaves rank {rank} in {n_frames} frames"
    return rank, f"the {n_frames} frames hold rank {rank}"


def pca_ncomp_limit(cube: npt.ArrayLike, *, scaling: str | None = "temp-mean") -> tuple[int, str]:
    """Return the largest number of components full-frame PCA can use on ``cube``, and why.

    The residuals of ``k`` components are round-off once ``k`` reaches the rank of the scaled frames:
    with mean subtraction (the default) that rank is at most ``n_frames - 1``, so the limit is at most
    ``n_frames - 2``; repeated or constant frames lower it further.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        Star-centred frames.
    scaling : {"temp-mean", "temp-standard", None}
        As in :func:`pca_adi_residuals`.

    Returns
    -------
    limit : int
        The largest usable ``ncomp`` (rank - 1); 0 when none is usable (e.g. 2 frames, mean-subtracted).
    why : str
        Where the rank comes from, e.g. "mean subtraction leaves rank 19 in 20 frames".

    Raises
    ------
    TypeError
        If ``cube`` is not array-like of numbers.
    ValueError
        If ``cube`` is not a finite cube of square frames, or ``scaling`` is not one of its choices.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pca_ncomp_limit(rng.normal(size=(20, 15, 15)))
    (18, 'mean subtraction leaves rank 19 in 20 frames')
    """
    arr = v.check_cube(cube)
    n = arr.shape[0]
    matrix = scale_matrix(arr.reshape(n, -1), scaling)
    lam = np.linalg.eigvalsh(matrix @ matrix.T)[::-1]
    rank, why = _matrix_rank(lam, n, scaling)
    return max(rank - 1, 0), why


def pca_adi(
    cube: npt.ArrayLike,
    angles_deg: npt.ArrayLike,
    *,
    ncomp: int | None = None,
    cevr: float = 0.9,
    scaling: str | None = "temp-mean",
    collapse: str = "median",
    order: int = 1,
) -> np.ndarray:
    """Reduce a cube by full-frame PCA-ADI (Soummer et al. 2012; Amara & Quanz 2012) to its final frame.

    The residuals of :func:`pca_adi_residuals` derotated by ``+angles_deg`` and collapsed (SPEC §5).

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        Star-centred frames.
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees, counter-clockwise (SPEC §1).
    ncomp : int, optional
        Number of principal components; default: chosen by ``cevr``.
    cevr : float
        Cumulative explained variance ratio that sets ``ncomp`` when it is None (default 0.9).
    scaling : {"temp-mean", "temp-standard", None}
        Pixel-wise scaling before PCA; default: mean-centred over time (SPEC §5). VIP's ``pca``
        defaults to ``None``.
    collapse : {"median", "mean"}
        Collapse of the derotated residuals over time (default ``"median"``).
    order : {1, 3}
        Rotation interpolation (bilinear or cubic spline).

    Returns
    -------
    ndarray, shape (N, N)
        Final frame, in the (scaled) cube's units.

    Raises
    ------
    TypeError
        If ``cube`` or ``angles_deg`` is not array-like of numbers, ``ncomp`` or ``order`` is not an
        integer, or ``cevr`` is not a real number.
    ValueError
        If ``cube`` is not a finite cube of square frames, ``angles_deg`` does not hold one finite
        angle per frame, ``ncomp`` is out of range, ``cevr`` is not in ``(0, 1)``, or ``scaling``,
        ``collapse`` or ``order`` is not one of its choices.

    References
    ----------
    Soummer, R., Pueyo, L. & Larkin, J. 2012, ApJ 755, L28. Amara, A. & Quanz, S. P. 2012, MNRAS 427, 948.

    Examples
    --------
    >>> from sodinn.adi.injection import cube_inject_companions
    >>> rng = np.random.default_rng(1)
    >>> angles = np.linspace(0, 60, 20)
    >>> cube = rng.normal(size=(20, 31, 31)) + 5 * rng.normal(size=(31, 31))  # static pattern + noise
    >>> psf = np.zeros((5, 5)); psf[2, 2] = 1
    >>> cube = cube_inject_companions(cube, psf, angles, sep_px=8, theta_deg=0, flux=20)
    >>> frame = pca_adi(cube, angles, ncomp=2)
    >>> np.unravel_index(np.argmax(frame), frame.shape)  # the companion, 8 px right of the star
    (np.int64(15), np.int64(23))
    """
    arr = v.check_cube(cube)
    angles = v.check_angles(angles_deg, arr.shape[0])
    collapse = v.check_choice(collapse, _COLLAPSE, name="collapse")
    v.warn_small_rotation_without_fwhm(angles, arr.shape[-1])
    residuals = pca_adi_residuals(arr, ncomp=ncomp, cevr=cevr, scaling=scaling)
    return collapse_cube(cube_derotate(residuals, angles, order=order), collapse)


def pca_annular(
    cube: npt.ArrayLike,
    angles_deg: npt.ArrayLike,
    fwhm_px: float,
    *,
    ncomp: int,
    r_in_px: float = 0.0,
    width_px: float | None = None,
    delta_rot: float | tuple[float, float] | None = (0.1, 1.0),
    max_frames_lib: int = 200,
    scaling: str | None = None,
    collapse: str = "median",
    order: int = 1,
) -> np.ndarray:
    """Reduce a cube by annular PCA-ADI: one PCA per annulus, each frame's library free of self-subtraction.

    The frame is cut into annuli of ``width_px`` (default 1 FWHM) from ``r_in_px`` outwards. For
    every frame of an annulus of centre radius ``r``, the PCA library holds only frames whose
    parallactic angle differs by at least ``2 atan(delta_rot * FWHM / (2 r))`` (a companion moves by
    ``delta_rot`` FWHM), truncated to the ``max_frames_lib`` closest in angle — VIP's ``pca_annular``
    rule. The projection uses the Gram matrix of the annulus: for a library ``S`` with
    ``M_S M_S^T = U diag(lam) U^T``, frame ``m_t`` is reconstructed as
    ``M_S^T U diag(1/lam_k) U^T (M_S m_t)``, so all frames cost one ``(n x n) @ (n x n_pix)`` product.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        Star-centred frames.
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees, counter-clockwise (SPEC §1).
    fwhm_px : float
        PSF FWHM, px.
    ncomp : int
        Principal components per annulus and frame.
    r_in_px : float
        Inner radius of the first annulus, px (pixels inside stay 0).
    width_px : float, optional
        Annulus width, px (default: ``fwhm_px``).
    delta_rot : float, (float, float) or None
        Rotation threshold in FWHM; a pair is spread linearly from the first to the last annulus
        (VIP's default ``(0.1, 1)``); ``None`` or 0 uses every frame (plain annular PCA).
    max_frames_lib : int
        Largest library size.
    scaling : {None, "temp-mean", "temp-standard"}
        Pixel-wise scaling of each annulus matrix (VIP's default: None).
    collapse : {"median", "mean"}
        Collapse of the derotated residuals over time (default ``"median"``).
    order : {1, 3}
        Rotation interpolation (bilinear or cubic spline).

    Returns
    -------
    ndarray, shape (N, N)
        Final frame, in the cube's units (the residuals are 0 inside ``r_in_px`` and beyond the last
        whole annulus).

    Raises
    ------
    TypeError
        If ``cube`` or ``angles_deg`` is not array-like of numbers, or a number argument is of the
        wrong kind.
    ValueError
        If a frame's library has fewer than ``ncomp`` frames (lower ``delta_rot`` or ``ncomp``), or an
        argument is out of range: malformed cube or angles, implausible FWHM, ``ncomp`` above
        ``n_frames``, a first annulus outside the frame, a negative or malformed ``delta_rot``, or an
        unknown ``scaling``, ``collapse`` or ``order``.
    """
    arr = v.check_cube(cube)
    n, size, _ = arr.shape
    angles = v.check_angles(angles_deg, n)
    ncomp = v.check_int(ncomp, name="ncomp", minimum=1)
    collapse = v.check_choice(collapse, _COLLAPSE, name="collapse")
    if scaling is not None:
        v.check_choice(scaling, _SCALING, name="scaling")
    limit, why, (fwhm, width, r_in, max_lib, deltas) = _annular_limit(
        angles, fwhm_px, size, r_in_px=r_in_px, width_px=width_px, delta_rot=delta_rot, max_frames_lib=max_frames_lib,
        scaling=scaling)
    v.warn_small_rotation(angles, fwhm, max(r_in, fwhm) + width / 2)
    if ncomp > limit:
        hints = ["lower ncomp"] if limit >= 1 else []
        if deltas.max(initial=0.0) > 0:
            hints.append("lower delta_rot (the rotation threshold, in FWHM; 0 uses every frame)")
        hint = " or ".join(hints or ["use more frames"])
        usable = f"use at most ncomp={limit}" if limit >= 1 else "no number of components is usable"
        msg = f"ncomp={ncomp} is more than annular PCA can use here: {why}; {usable}: {hint}"
        raise ValueError(msg)
    n_annuli = deltas.size
    residuals = np.zeros_like(arr)
    # hundreds of tiny (n_frames x n_frames) decompositions: BLAS threads only add wake-up latency,
    # which becomes seconds when the cores are shared with other work
    with threadpool_limits(limits=1, user_api="blas"):
        for i in range(n_annuli):
            inner = r_in + i * width
            yy, xx = annulus_indices(arr.shape, inner, width)
            if yy.size == 0:
                continue
            matrix = scale_matrix(arr[:, yy, xx], scaling)
            threshold = _pa_threshold(inner + width / 2, fwhm, deltas[i])
            residuals[:, yy, xx] = _annulus_residuals(matrix, angles, threshold, ncomp, max_lib)
    return collapse_cube(cube_derotate(residuals, angles, order=order), collapse)


def _annular_limit(angles: np.ndarray, fwhm_px: float, frame_size: int, *, r_in_px: float, width_px: float | None,
                   delta_rot: float | tuple[float, float] | None, max_frames_lib: int, scaling: str | None,
                   ) -> tuple[int, str, tuple[float, float, float, int, np.ndarray]]:
    """Return the largest usable ncomp of annular PCA, why, and the checked geometry (fwhm, width, r_in, max_lib, deltas)."""
    n = angles.size
    fwhm = v.check_fwhm(fwhm_px, frame_size=frame_size)
    width = fwhm if width_px is None else v.check_positive(width_px, name="width_px")
    r_in = v.check_real(r_in_px, name="r_in_px")
    v.check_radii(r_in, r_in + width, frame_size, name="pca_annular")
    max_lib = v.check_int(max_frames_lib, name="max_frames_lib", minimum=1)
    n_annuli = int((frame_size / 2 - r_in) / width)
    deltas = _annulus_deltas(delta_rot, n_annuli)
    rank_frames = n - 1 if scaling is not None else n  # mean subtraction removes one dimension
    limit, why = rank_frames - 1, (f"mean subtraction leaves rank {rank_frames} in {n} frames" if scaling is not None
                                   else f"{n} frames model each other up to rank {n}")
    for i in range(n_annuli):
        inner = r_in + i * width
        yy, _ = annulus_indices((frame_size, frame_size), inner, width)
        if yy.size == 0:
            continue
        if yy.size - 1 < limit:
            limit, why = yy.size - 1, f"the annulus at {inner:.3g}-{inner + width:.3g} px holds only {yy.size} pixels"
        threshold = _pa_threshold(inner + width / 2, fwhm, deltas[i])
        if threshold <= 0:
            continue
        sizes = [_library(angles, t, threshold, max_lib).size for t in range(n)]
        t = int(np.argmin(sizes))
        usable = sizes[t] if sizes[t] >= 2 else 0  # a library needs 2 frames
        usable = min(usable, yy.size)
        if usable < limit:
            limit = usable
            why = (f"in the annulus at {inner:.3g}-{inner + width:.3g} px only {sizes[t]} frames rotate by at least "
                   f"{threshold:.3g} deg (a source moves {deltas[i]:.3g} FWHM) from frame {t} and may enter its PCA library "
                   f"(the whole sequence rotates by {np.ptp(angles):.3g} deg)")
    return max(limit, 0), why, (fwhm, width, r_in, max_lib, deltas)


def annular_ncomp_limit(
    angles_deg: npt.ArrayLike,
    fwhm_px: float,
    frame_size: int,
    *,
    r_in_px: float = 0.0,
    width_px: float | None = None,
    delta_rot: float | tuple[float, float] | None = (0.1, 1.0),
    max_frames_lib: int = 200,
    scaling: str | None = None,
) -> tuple[int, str]:
    """Return the largest number of components :func:`pca_annular` can use with these angles and geometry, and why.

    Checked per annulus, without the pixels: the PCA library of every frame (the frames that rotate
    by at least the ``delta_rot`` threshold, at most ``max_frames_lib``) must hold ``ncomp`` frames
    (and at least 2); without a threshold, ``ncomp`` must stay below the rank of the annulus matrix
    (``n_frames``, or ``n_frames - 1`` with a ``scaling``), else the residuals are round-off; and an
    annulus of ``n_pix`` pixels holds at most rank ``n_pix``.

    Parameters
    ----------
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees (unwrapped on reading, as everywhere).
    fwhm_px : float
        PSF FWHM, px.
    frame_size : int
        Frame side N, px.
    r_in_px, width_px, delta_rot, max_frames_lib, scaling
        As in :func:`pca_annular`.

    Returns
    -------
    limit : int
        The largest usable ``ncomp`` (0: none).
    why : str
        What sets the limit (e.g. how many frames rotate enough in which annulus), without naming
        the setting to change: each caller names its own.

    Raises
    ------
    TypeError
        If an argument is of the wrong kind.
    ValueError
        If an argument is out of range (as in :func:`pca_annular`).

    Examples
    --------
    >>> annular_ncomp_limit(np.linspace(0, 60, 20), 4.0, 51, delta_rot=None)
    (19, '20 frames model each other up to rank 20')
    """
    angles = v.check_angles(angles_deg)
    size = v.check_int(frame_size, name="frame_size", minimum=1)
    if scaling is not None:
        v.check_choice(scaling, _SCALING, name="scaling")
    limit, why, _ = _annular_limit(angles, fwhm_px, size, r_in_px=r_in_px, width_px=width_px, delta_rot=delta_rot,
                                   max_frames_lib=max_frames_lib, scaling=scaling)
    return limit, why


def _annulus_deltas(delta_rot: float | tuple[float, float] | None, n_annuli: int) -> np.ndarray:
    if delta_rot is None:
        return np.zeros(n_annuli)
    if isinstance(delta_rot, tuple):
        if len(delta_rot) != 2:
            msg = f"delta_rot must be a number or a (first, last) pair; got {delta_rot!r}"
            raise ValueError(msg)
        lo = v.check_real(delta_rot[0], name="delta_rot[0]")
        hi = v.check_real(delta_rot[1], name="delta_rot[1]")
        values = np.linspace(lo, hi, n_annuli)
    else:
        values = np.full(n_annuli, v.check_real(delta_rot, name="delta_rot"))
    if np.any(values < 0):
        msg = f"delta_rot must be >= 0 (in FWHM); got {delta_rot!r}"
        raise ValueError(msg)
    return values


def _pa_threshold(radius: float, fwhm: float, delta_rot: float) -> float:
    """Parallactic-angle difference (deg) that moves a source at ``radius`` by ``delta_rot`` FWHM."""
    return float(np.rad2deg(2 * np.arctan(delta_rot * fwhm / (2 * radius))))


def _library(angles: np.ndarray, frame: int, threshold: float, max_frames: int) -> np.ndarray:
    """Frames usable to model ``frame``: outside the contiguous block within ``threshold`` of it.

    VIP's ``_find_indices_adi(..., truncate=True)``: the rejected block is the run of frames around
    ``frame`` (in time order) whose angle differs by less than the threshold; the library is
    truncated to the ``min(n - 1, max_frames)`` frames closest in angle.
    """
    n = angles.size
    close = np.abs(angles - angles[frame]) < threshold
    before = np.nonzero(close[:frame])[0]
    start = int(before[0]) if before.size else frame
    after = np.nonzero(np.abs(angles[frame:] - angles[frame]) > threshold)[0]
    stop = frame + int(after[0]) if after.size else n
    library = np.r_[np.arange(0, start), np.arange(stop, n)]
    limit = min(n - 1, max_frames)
    if library.size > limit:
        order = np.argsort(np.abs(angles[library] - angles[frame]), kind="stable")
        library = np.sort(library[order[:limit]])
    return library


def _annulus_residuals(matrix: np.ndarray, angles: np.ndarray, threshold: float, ncomp: int, max_lib: int) -> np.ndarray:
    n = matrix.shape[0]
    gram = matrix @ matrix.T
    if threshold <= 0:
        lam, u = np.linalg.eigh(gram)
        uk = u[:, ::-1][:, :ncomp]
        return matrix - uk @ (uk.T @ matrix)
    mixing = np.zeros((n, n))
    for t in range(n):
        lib = _library(angles, t, threshold, max_lib)  # checked large enough by _annular_limit
        lam, u = np.linalg.eigh(gram[np.ix_(lib, lib)])
        lam, u = lam[::-1][:ncomp], u[:, ::-1][:, :ncomp]
        # coefficients of m_t on the library's top components, mapped back to library frames
        mixing[t, lib] = u @ ((u.T @ gram[lib, t]) / lam)
    return matrix - mixing @ matrix




def check_not_roundoff(frame: npt.ArrayLike, cube: npt.ArrayLike, *, what: str = "the final frame",
                       rtol: float = 1e-10) -> None:
    """Refuse a final frame that is round-off: its largest absolute value below ``rtol`` times the cube's.

    Such a frame (e.g. PCA with as many components as the data's rank) holds no signal; an S/N map of
    it would report noise peaks of round-off.

    Parameters
    ----------
    frame : ndarray, shape (N, N)
        The final frame.
    cube : ndarray, shape (n_frames, N, N)
        The frames it was made from (same units).
    what : str
        How the message names the frame.
    rtol : float
        The relative level below which the frame counts as round-off (default 1e-10).

    Raises
    ------
    ValueError
        If ``max|frame| < rtol * max|cube|`` (and the cube is not all zeros).

    Examples
    --------
    >>> check_not_roundoff(np.full((5, 5), 1e-14), np.ones((3, 5, 5)))
    Traceback (most recent call last):
    ...
    ValueError: the final frame is round-off (max |frame| = 1e-14, ...): no S/N map can be made of it; use fewer components
    """
    peak_frame = float(np.max(np.abs(frame))) if np.size(frame) else 0.0
    peak_cube = float(np.max(np.abs(cube))) if np.size(cube) else 0.0
    if peak_cube > 0 and peak_frame < rtol * peak_cube:
        msg = (f"{what} is round-off (max |frame| = {peak_frame:.2g}, {peak_frame / peak_cube:.2g} of the cube's max "
               f"{peak_cube:.3g}): no S/N map can be made of it; use fewer components")
        raise ValueError(msg)


# ----------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Baseline:
    """A classical reduction of the registry: what it is called, and how to run it.

    Attributes
    ----------
    name : str
        Registry name (``sodinn reduce --method``, ROC and limit method names).
    title : str
        What figures and reports call it (e.g. "annular PCA-ADI").
    short_title : str
        Its name in tables (e.g. "annular PCA": "best annular PCA" in the ROC summary).
    function : callable
        The reduction ``function(cube, angles_deg, [fwhm_px,] **options) -> frame``.
    ranked : bool
        It takes a number of principal components (``ncomp``).
    uses_fwhm : bool
        It takes the FWHM as third positional argument.
    radial : bool
        It accepts ``r_in_px`` (skips the pixels inside, which callers use to save work).
    family : str, optional
        Baselines of one family are also compared together ("best PCA" of the ROC summary).
    default_label : str, optional
        For a ranked baseline whose ``ncomp`` may be omitted: what the default is (e.g. ``"cevr0.9"``:
        components chosen by explained variance); None when ``ncomp`` is required.
    limit : callable, optional
        For a ranked baseline: ``limit(cube, angles_deg, fwhm_px, r_in_px, **options) -> (max_ncomp, why)``,
        the largest number of components the data allow (see :meth:`ncomp_limit`).
    options : tuple of str
        Further keyword options of :attr:`function` that :meth:`reduce` passes on (e.g. ``"delta_rot"``
        of annular PCA, ``sodinn reduce --delta-rot``).
    """

    name: str
    title: str
    short_title: str
    function: Callable[..., np.ndarray]
    ranked: bool = False
    uses_fwhm: bool = False
    radial: bool = False
    family: str | None = None
    default_label: str | None = None
    limit: Callable[..., tuple[int, str]] | None = None
    options: tuple[str, ...] = ()

    def ncomp_limit(self, cube: npt.ArrayLike, angles_deg: npt.ArrayLike, fwhm_px: float, *, r_in_px: float = 0.0,
                    **options: object) -> tuple[int, str] | None:
        """Return the largest number of components this baseline can use on the data, and why (None if not ranked).

        Cheap next to the reduction (a Gram matrix, or the angles alone): callers check a requested rank
        with it before any work and name their own setting in the message.

        Parameters
        ----------
        cube : ndarray, shape (n_frames, N, N)
            Star-centred frames.
        angles_deg : ndarray, shape (n_frames,)
            Parallactic angles, degrees.
        fwhm_px : float
            PSF FWHM, px.
        r_in_px : float
            Smallest separation needed, px (as in :meth:`reduce`).
        **options
            Options of :attr:`options` (e.g. ``delta_rot``).

        Returns
        -------
        (int, str) or None
            The largest usable ``ncomp`` (0: none) and what sets it; None for a baseline without
            components.

        Raises
        ------
        ValueError
            For an option this baseline does not take, or malformed data.
        """
        if not self.ranked or self.limit is None:
            return None
        kwargs = {**self._options(options), **({"r_in_px": r_in_px} if self.radial else {})}
        return self.limit(cube, angles_deg, fwhm_px, **kwargs)

    def _options(self, options: dict) -> dict:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            takes = ", ".join(self.options) or "none"
            msg = f"baseline {self.name!r} takes no option(s) {', '.join(unknown)}; it takes: {takes}"
            raise ValueError(msg)
        return {k: val for k, val in options.items() if val is not None}

    def reduce(self, cube: npt.ArrayLike, angles_deg: npt.ArrayLike, fwhm_px: float, *, ncomp: int | None = None,
               r_in_px: float = 0.0, **options: object) -> np.ndarray:
        """Run this reduction and return its final frame.

        Parameters
        ----------
        cube : ndarray, shape (n_frames, N, N)
            Star-centred frames.
        angles_deg : ndarray, shape (n_frames,)
            Parallactic angles, degrees, counter-clockwise (SPEC §1).
        fwhm_px : float
            PSF FWHM in pixels (used by the baselines that need it).
        ncomp : int, optional
            Principal components of a ranked baseline (default: its own, when it has one).
        r_in_px : float
            Smallest separation needed, px: a radial baseline skips the pixels inside.
        **options
            Options of :attr:`options`, passed on to :attr:`function` (None: its default).

        Returns
        -------
        ndarray, shape (N, N)
            Final frame, in the cube's units.

        Raises
        ------
        ValueError
            If ``ncomp`` is given to a baseline without components, or missing for one that needs it;
            for an option the baseline does not take; if the final frame is round-off (its largest
            absolute value below ``1e-10`` times the cube's: no S/N map can be made of it); and
            whatever :attr:`function` raises on bad input.
        """
        args: tuple = (cube, angles_deg, fwhm_px) if self.uses_fwhm else (cube, angles_deg)
        kwargs: dict = self._options(options)
        if self.ranked:
            if ncomp is None and self.default_label is None:
                msg = f"baseline {self.name!r} needs a number of components, e.g. '{self.name}-10'"
                raise ValueError(msg)
            kwargs["ncomp"] = ncomp
        elif ncomp is not None:
            msg = f"baseline {self.name!r} takes no number of components; got {ncomp}"
            raise ValueError(msg)
        if self.radial:
            kwargs["r_in_px"] = r_in_px
        frame = self.function(*args, **kwargs)
        check_not_roundoff(frame, cube, what=f"the {self.title} frame{f' at ncomp={ncomp}' if ncomp is not None else ''}")
        return frame

    def tag(self, ncomp: int | None) -> str:
        """Return what a map of this reduction depends on besides the data: name and rank (``"pca-cevr0.9"``, ``"annular-10"``).

        Parameters
        ----------
        ncomp : int or None
            Number of components; None for the baseline's default (ignored when it is not ranked).

        Returns
        -------
        str
            ``name`` for a baseline without components, else ``"{name}-{ncomp}"`` or
            ``"{name}-{default_label}"``.
        """
        if not self.ranked:
            return self.name
        return f"{self.name}-{ncomp if ncomp is not None else self.default_label}"


BASELINES: dict[str, Baseline] = {
    b.name: b
    for b in (
        Baseline("median", "median-ADI", "median-ADI", median_adi),
        Baseline("pca", "full-frame PCA-ADI", "full-frame PCA", pca_adi, ranked=True, family="PCA", default_label="cevr0.9",
                 limit=lambda cube, angles, fwhm: pca_ncomp_limit(cube)),
        Baseline("annular", "annular PCA-ADI", "annular PCA", pca_annular, ranked=True, uses_fwhm=True, radial=True,
                 family="PCA", options=("delta_rot",),
                 limit=lambda cube, angles, fwhm, **kw: annular_ncomp_limit(angles, fwhm, np.shape(cube)[-1], **kw)),
    )
}


def get_baseline(name: str) -> Baseline:
    """Return the registry entry ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`BASELINES`: ``"median"``, ``"pca"`` or ``"annular"``.

    Returns
    -------
    Baseline
        The registry entry.

    Raises
    ------
    ValueError
        If no baseline has that name (the message lists the registry).
    """
    if not isinstance(name, str) or name not in BASELINES:
        msg = f"unknown baseline {name!r}; the baselines are {', '.join(BASELINES)}"
        raise ValueError(msg)
    return BASELINES[name]


def parse_method(method: str) -> tuple[Baseline, int | None]:
    """Return the baseline and number of components a method name stands for: ``"annular-10"``, ``"pca"``, ``"median"``.

    Parameters
    ----------
    method : str
        A registry name, followed by ``-K`` for a ranked baseline run at K components.

    Returns
    -------
    baseline : Baseline
        The registry entry.
    ncomp : int or None
        None for a baseline without components, or a ranked one at its default.

    Raises
    ------
    TypeError
        If ``method`` is not a string.
    ValueError
        For an unknown baseline, a rank given to a baseline without components, or a ranked baseline
        without a rank and without a default.

    Examples
    --------
    >>> baseline, ncomp = parse_method("annular-10")
    >>> baseline.title, ncomp
    ('annular PCA-ADI', 10)
    """
    if not isinstance(method, str):
        msg = f"a method must be a baseline name such as 'annular-10'; got {type(method).__name__} {method!r}"
        raise TypeError(msg)
    name, _, suffix = method.rpartition("-")
    if name and suffix.isdigit() and method not in BASELINES:
        get_baseline(name)
        baseline, ncomp = BASELINES[name], int(suffix)
        if not baseline.ranked:
            msg = f"method {method!r}: baseline {name!r} takes no number of components; write {name!r}"
            raise ValueError(msg)
        if ncomp < 1:
            msg = f"method {method!r}: the number of components must be >= 1"
            raise ValueError(msg)
        return baseline, ncomp
    baseline = get_baseline(method)
    if baseline.ranked and baseline.default_label is None:
        msg = f"method {method!r} needs a number of components, e.g. '{method}-10'"
        raise ValueError(msg)
    return baseline, None


def method_name(baseline: str, ncomp: int | None = None) -> str:
    """Return the method name of a baseline at a rank: the inverse of :func:`parse_method`.

    Parameters
    ----------
    baseline : str
        Registry name (not checked).
    ncomp : int, optional
        Number of components; None for a baseline without components or a ranked one at its default.

    Returns
    -------
    str
        ``baseline``, or ``"{baseline}-{ncomp}"``.

    Examples
    --------
    >>> method_name("annular", 10), method_name("median")
    ('annular-10', 'median')
    """
    return baseline if ncomp is None else f"{baseline}-{int(ncomp)}"
