"""PCA on an annulus (SPEC §2): Gram-matrix basis, CEVR, the k-list policy and rank-k residuals.

The rank-k residuals feed SODINN's samples (Gomez Gonzalez et al. 2018, A&A 613, A71; PCA-ADI itself:
Soummer et al. 2012, ApJ 755, L28; Amara & Quanz 2012, MNRAS 427, 948), with the exact fast form of
"derotate, average, crop" for all ranks at once (:func:`residual_means_at`).

For a region matrix ``M`` (``n_frames x n_pix``, no mean subtraction in SODINN), the right singular
vectors come from the eigen-decomposition of the small Gram matrix ``M M^T`` in float64:
``M M^T = U diag(lam) U^T`` and ``V = diag(lam)^(-1/2) U^T M``. The rank-k residual is
``R_k = M - (M V_k^T) V_k = (I - U_k U_k^T) M``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.geometry import annulus_indices
from sodinn.adi.rotation import DerotationStencil

__all__ = [
    "PCABasis",
    "annulus_matrix",
    "cevr",
    "gram_basis",
    "k_list_from_cevr",
    "rank_residuals",
    "residual_means_at",
]


@dataclass(frozen=True)
class PCABasis:
    """Principal components of a region matrix, from its Gram matrix.

    Attributes
    ----------
    eigenvalues : ndarray, shape (k_max,)
        Squared singular values of ``M``, descending.
    left : ndarray, shape (n_frames, k_max)
        Left singular vectors ``U`` (time coefficients up to scale).
    vectors : ndarray, shape (k_max, n_pix)
        Right singular vectors ``V`` (principal components, unit norm).

    See Also
    --------
    gram_basis : Compute it.
    """

    eigenvalues: np.ndarray
    left: np.ndarray
    vectors: np.ndarray

    @property
    def k_max(self) -> int:
        """Number of components held."""
        return int(self.eigenvalues.size)


def annulus_matrix(cube: npt.ArrayLike, r_in_px: float, r_out_px: float) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Return the ``(n_frames, n_pix)`` matrix of the pixels of ``r_in <= r < r_out`` and their ``(yy, xx)``.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        Star-centred frames.
    r_in_px : float
        Inner radius (included), px, ``>= 0``.
    r_out_px : float
        Outer radius (excluded), px, ``r_in_px < r_out_px <= N / 2``.

    Returns
    -------
    matrix : ndarray, shape (n_frames, n_pix), float64
        One row per frame, the annulus pixels in row-major order.
    region_yx : (ndarray, ndarray)
        Frame pixels ``(yy, xx)`` of the columns, each of shape ``(n_pix,)``.

    Raises
    ------
    TypeError
        If ``cube`` is not array-like of numbers or a radius is not a real number.
    ValueError
        If ``cube`` is not a finite cube of square frames, the radii are not ``0 <= r_in < r_out <= N/2``,
        or the annulus holds no pixel.
    """
    arr = v.check_cube(cube)
    r_in, r_out = v.check_radii(r_in_px, r_out_px, arr.shape[-1])
    yy, xx = annulus_indices(arr.shape, r_in, r_out - r_in)
    if yy.size == 0:
        msg = f"the annulus {r_in:g} <= r < {r_out:g} px holds no pixel; widen it"
        raise ValueError(msg)
    return arr[:, yy, xx], (yy, xx)


def gram_basis(matrix: npt.ArrayLike, k_max: int | None = None) -> PCABasis:
    """Top ``k_max`` principal components of ``matrix`` from the eigen-decomposition of ``M M^T``.

    Parameters
    ----------
    matrix : ndarray, shape (n_frames, n_pix)
        Rows are frames (already centred or scaled if wanted; SODINN does not centre).
    k_max : int, optional
        Number of components (default: all with a non-zero eigenvalue).

    Returns
    -------
    PCABasis
        Eigenvalues (descending), left and right singular vectors of ``matrix``.

    Raises
    ------
    TypeError
        If ``k_max`` is not an integer.
    ValueError
        If ``matrix`` is not a non-empty finite 2-D array, or ``k_max`` is below 1, above
        ``n_frames`` or above the rank of the matrix.

    Notes
    -----
    ``M M^T = U diag(lam) U^T`` in float64, ``V = diag(lam)^(-1/2) U^T M`` (SPEC §2): cheap because
    ``n_frames << n_pix``. Eigenvalues below ``10 * n_frames * eps * lam_max`` count as zero.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> m = rng.normal(size=(6, 50))
    >>> b = gram_basis(m, 3)
    >>> s = np.linalg.svd(m, compute_uv=False)
    >>> bool(np.allclose(b.eigenvalues, s[:3] ** 2))
    True
    """
    m = _check_matrix(matrix)
    n = m.shape[0]
    gram = m @ m.T
    lam, u = np.linalg.eigh(gram)
    lam, u = lam[::-1], u[:, ::-1]
    tol = max(lam[0], 0.0) * n * np.finfo(np.float64).eps * 10
    n_valid = int(np.count_nonzero(lam > tol))
    if k_max is None:
        k = n_valid
    else:
        k = v.check_int(k_max, name="k_max", minimum=1)  # a basis may hold every component (residuals need fewer)
        if k > n:
            msg = f"k_max={k} is larger than the number of frames ({n}); use at most {n} components"
            raise ValueError(msg)
        if k > n_valid:
            msg = f"k_max={k} exceeds the rank of the matrix ({n_valid}); use at most {n_valid} components"
            raise ValueError(msg)
    lam, u = lam[:k], u[:, :k]
    vectors = (u.T @ m) / np.sqrt(lam)[:, None]
    return PCABasis(eigenvalues=lam, left=u, vectors=vectors)


def cevr(matrix: npt.ArrayLike, *, standardize: bool = True) -> np.ndarray:
    """Cumulative explained variance ratio of a region matrix.

    Parameters
    ----------
    matrix : ndarray, shape (n_frames, n_pix)
        Region matrix, rows are frames.
    standardize : bool
        Standardise each pixel over time first (zero mean, unit variance; constant pixels are
        only centred), as the k-list policy of SPEC §2 asks.

    Returns
    -------
    ndarray, shape (n_frames,)
        ``cevr[k - 1]`` is the fraction of the variance explained by the first ``k`` components;
        non-decreasing, the last value 1 (to rounding).

    Raises
    ------
    ValueError
        If ``matrix`` is not a non-empty finite 2-D array, or has zero variance.

    See Also
    --------
    k_list_from_cevr : The ranks it sets.
    """
    m = _check_matrix(matrix)
    if standardize:
        m = m - m.mean(axis=0)
        std = m.std(axis=0)
        m = m / np.where(std > 0, std, 1.0)
    lam = np.clip(np.linalg.eigvalsh(m @ m.T)[::-1], 0.0, None)
    total = lam.sum()
    if not total > 0:
        msg = "the matrix has zero variance; CEVR is undefined (is the region empty or constant?)"
        raise ValueError(msg)
    return np.cumsum(lam) / total


def k_list_from_cevr(cevr_values: npt.ArrayLike, n_ranks: int, *, threshold: float = 0.99) -> np.ndarray:
    """Return the K ranks of SODINN's samples (SPEC §2).

    ``k_max`` is the first ``k`` with ``CEVR >= threshold`` (capped at ``n_frames - 1``); the K values
    are spread evenly from 1 to ``k_max`` (integer linspace, duplicates removed), then padded with
    the next integers so that exactly K values exist.

    Parameters
    ----------
    cevr_values : ndarray, shape (n_frames,)
        Cumulative explained variance ratio, from :func:`cevr`.
    n_ranks : int
        K, the number of ranks, ``1 <= K <= n_frames - 1``.
    threshold : float
        CEVR defining ``k_max``, in ``(0, 1]`` (default 0.99).

    Returns
    -------
    ndarray of int64, shape (K,)
        The ranks, strictly increasing, all in ``[1, n_frames - 1]``.

    Raises
    ------
    TypeError
        If ``n_ranks`` is not an integer or ``threshold`` is not a real number.
    ValueError
        If ``n_ranks < 1`` or ``n_ranks > n_frames - 1``, or ``threshold`` is not in ``(0, 1]``.

    Examples
    --------
    >>> c = np.linspace(0.5, 1.0, 60)          # k_max = 59 -> capped to 59
    >>> k_list_from_cevr(c, 5).tolist()
    [1, 15, 30, 44, 59]
    >>> k_list_from_cevr(np.r_[0.995, np.ones(39)], 4).tolist()   # k_max = 1 -> padded
    [1, 2, 3, 4]
    """
    c = np.asarray(cevr_values, dtype=np.float64).ravel()
    n_frames = c.size
    k = v.check_int(n_ranks, name="n_ranks", minimum=1)
    thr = v.check_real(threshold, name="threshold")
    if not 0 < thr <= 1:
        msg = f"threshold must be in (0, 1]; got {thr}"
        raise ValueError(msg)
    if k > n_frames - 1:
        msg = f"n_ranks={k} needs more frames: at most n_frames - 1 = {n_frames - 1} ranks are available"
        raise ValueError(msg)
    reached = np.nonzero(c >= thr - 1e-12)[0]
    k_max = int(reached[0]) + 1 if reached.size else n_frames - 1
    k_max = min(k_max, n_frames - 1)
    ks = np.unique(np.linspace(1, k_max, k).astype(np.int64))  # truncation, as numpy's dtype=int linspace
    nxt = int(ks[-1]) + 1
    while ks.size < k:
        if nxt not in ks:
            ks = np.append(ks, nxt)
        nxt += 1
    ks = np.sort(ks)
    if ks[-1] > n_frames - 1:  # padding overflowed: fill the gaps below instead
        ks = np.arange(1, k + 1)
    return ks


def rank_residuals(matrix: npt.ArrayLike, basis: PCABasis, ks: npt.ArrayLike) -> np.ndarray:
    """Compute the residual matrices ``R_k = M - (M V_k^T) V_k`` for each k in ``ks`` (SPEC §2).

    Parameters
    ----------
    matrix : ndarray, shape (n_frames, n_pix)
        Region matrix ``M``, rows are frames.
    basis : PCABasis
        Components ``V`` (of ``matrix``, or of another matrix of the same pixels).
    ks : array-like of int, shape (K,)
        Ranks, strictly increasing, each in ``[1, basis.k_max]``.

    Returns
    -------
    ndarray, shape (K, n_frames, n_pix)
        ``R_k`` for each rank, in the units of ``matrix``.

    Raises
    ------
    ValueError
        If ``matrix`` is not a non-empty finite 2-D array, or ``ks`` is not a strictly increasing
        non-empty 1-D integer array within ``[1, basis.k_max]``.

    See Also
    --------
    residual_means_at : Their derotated means at a few pixels, without forming them.
    """
    m = _check_matrix(matrix)
    ranks = _check_ranks(ks, basis.k_max)
    coeffs = m @ basis.vectors.T  # (n, k_max)
    out = np.empty((ranks.size, *m.shape))
    for i, k in enumerate(ranks):
        out[i] = m - coeffs[:, :k] @ basis.vectors[:k]
    return out


def residual_means_at(
    matrix: npt.ArrayLike,
    region_yx: tuple[np.ndarray, np.ndarray],
    basis: PCABasis,
    ks: npt.ArrayLike,
    stencil: DerotationStencil,
) -> np.ndarray:
    """Compute the derotated mean of the rank-k residuals at the stencil's pixels, for every k (SPEC §2, fast form).

    Equals: put each ``R_k`` back into frames (zero outside the region), derotate with the stencil's
    angles, average over time, read the stencil's pixels — computed as
    ``D.M[p] - cumsum_i sum_t sum_j w[t,p,j] C[t,i] V[i, q[t,p,j]]`` with ``C = M V^T``.

    Parameters
    ----------
    matrix : ndarray, shape (n_frames, n_pix)
        Region matrix (rows = frames).
    region_yx : (ndarray, ndarray)
        Frame pixels ``(yy, xx)`` of the matrix columns.
    basis : PCABasis
        Components of ``matrix`` (or of another matrix: e.g. an injected copy's).
    ks : array-like of int
        Ranks, each ``<= basis.k_max``.
    stencil : DerotationStencil
        Built for the frame shape, the derotation angles and the output pixels.

    Returns
    -------
    ndarray, shape (K, n_pixels)
        Row ``i``: the derotated mean residual at rank ``ks[i]`` at each of the stencil's pixels.

    Raises
    ------
    ValueError
        If ``matrix`` is not a non-empty finite 2-D array, ``ks`` is not a strictly increasing
        non-empty 1-D integer array within ``[1, basis.k_max]``, or ``matrix``, ``region_yx`` and
        ``stencil`` disagree in frame or pixel count.
    """
    m = _check_matrix(matrix)
    ranks = _check_ranks(ks, basis.k_max)
    yy, xx = (np.asarray(a) for a in region_yx)
    n_frames, n_pix = m.shape
    if yy.size != n_pix or stencil.n_frames != n_frames:
        msg = "matrix, region_yx and stencil disagree in frame or pixel count"
        raise ValueError(msg)
    column = _column_lookup(stencil.shape, yy, xx)  # frame flat index -> matrix column (n_pix = zero column)
    cols = column[stencil.index]  # (n_t, n_p, 4)
    w = np.where(cols < n_pix, stencil.weight, 0.0)
    k_top = int(ranks[-1])
    m0 = np.concatenate([m, np.zeros((n_frames, 1))], axis=1)
    v0 = np.concatenate([basis.vectors[:k_top], np.zeros((k_top, 1))], axis=1)
    coeffs = m @ basis.vectors[:k_top].T  # (n_t, k)
    t_idx = np.arange(n_frames)[:, None, None]
    mean_m = np.einsum("tpj,tpj->p", m0[t_idx, cols], w)
    gathered = v0[:, cols]  # (k, n_t, n_p, 4)
    per_comp = np.einsum("ktpj,tpj,tk->kp", gathered, w, coeffs, optimize=True)
    cumulative = np.cumsum(per_comp, axis=0)
    return mean_m[None, :] - cumulative[ranks - 1]


def _column_lookup(shape: tuple[int, int], yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    lookup = np.full(shape[0] * shape[1], yy.size, dtype=np.int64)
    lookup[yy * shape[1] + xx] = np.arange(yy.size)
    return lookup


def _check_matrix(matrix: npt.ArrayLike) -> np.ndarray:
    m = np.array(matrix, dtype=np.float64, copy=True)
    if m.ndim != 2 or min(m.shape) < 1:
        msg = f"matrix must be a non-empty 2-D array (n_frames, n_pix); got shape {m.shape}"
        raise ValueError(msg)
    if not np.isfinite(m).all():
        msg = "matrix contains NaN or infinite values; clean the cube first"
        raise ValueError(msg)
    return m


def _check_ranks(ks: npt.ArrayLike, k_max: int) -> np.ndarray:
    ranks = np.asarray(ks)
    if ranks.ndim != 1 or ranks.size == 0 or not np.issubdtype(ranks.dtype, np.integer):
        msg = f"ks must be a non-empty 1-D array of integers; got {ks!r}"
        raise ValueError(msg)
    if ranks.min() < 1 or ranks.max() > k_max:
        msg = f"ks must lie in [1, {k_max}] (the basis holds {k_max} components); got {ranks.tolist()}"
        raise ValueError(msg)
    if np.any(np.diff(ranks) <= 0):
        msg = f"ks must be strictly increasing; got {ranks.tolist()}"
        raise ValueError(msg)
    return ranks.astype(np.int64)
