"""Batched Gram matrices and their symmetric eigen-decompositions, on numpy or a Keras backend.

The C+ samples of an annulus each need the PCA basis of their own injected region matrix
``M_b`` (``n_frames x n_pix``): the eigen-decomposition of the small Gram matrix ``M_b M_b^T``
(:func:`sodinn.adi.pca.gram_basis`, SPEC §2). :func:`gram_eigh` does a whole batch of them at once,
either with numpy/LAPACK (``backend="numpy"``, the reference) or through ``keras.ops``
(``backend="keras"``), which runs on whatever device the active Keras backend uses: a GPU with
TensorFlow-GPU, ``KERAS_BACKEND=torch`` or ``KERAS_BACKEND=jax``.

Conventions are those of :func:`sodinn.adi.pca.gram_basis`: no centring, eigenvalues sorted in
descending order, eigenvectors as columns in the same order, signs as the eigen-solver returns
them (arbitrary: compare projectors ``U_k U_k^T`` or residuals ``(I - U_k U_k^T) M``, which do
not depend on them).

Precision: the computation runs in ``dtype`` (float64 by default, as everywhere in sodinn's PCA).
TensorFlow and torch support float64 on CPU and on CUDA GPUs. JAX computes in float32 unless
64-bit mode is on (``JAX_ENABLE_X64=1`` before jax is imported); :func:`gram_eigh` refuses float64
there rather than silently truncate. Consumer GPUs run float64 at 1/32 to 1/64 of their float32
rate, but the Gram matrix squares the condition number of ``M``, so in float32 the small
eigenpairs lose most of their digits: pass ``dtype="float32"`` only when that is acceptable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v

__all__ = ["GRAM_BACKENDS", "GramEigh", "eigh_batch", "gram_eigh", "keras_float64_supported"]

GRAM_BACKENDS = ("numpy", "keras")
_DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class GramEigh:
    """Eigen-decompositions of a batch of Gram matrices ``M_b M_b^T``.

    Attributes
    ----------
    eigenvalues : ndarray, shape (B, k)
        Descending, per matrix.
    eigenvectors : ndarray, shape (B, n_frames, k)
        Unit columns, in the order of ``eigenvalues`` (the left singular vectors of ``M_b``).
    backend : str
        ``"numpy"`` or ``"keras/<backend name>"`` (e.g. ``"keras/torch"``): what computed them.
    dtype : str
        Precision of the computation (``"float64"`` or ``"float32"``); the arrays have this dtype.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    backend: str
    dtype: str


def keras_float64_supported() -> bool:
    """Tell whether the active Keras backend computes in float64 (False for JAX without 64-bit mode).

    Returns
    -------
    bool
        True for TensorFlow and torch, and for JAX with ``jax_enable_x64`` on.
    """
    import keras

    if keras.backend.backend() != "jax":
        return True
    import jax

    return bool(jax.config.read("jax_enable_x64"))


def gram_eigh(
    matrices: npt.ArrayLike,
    *,
    k_max: int | None = None,
    backend: str = "numpy",
    dtype: str = "float64",
) -> GramEigh:
    """Eigen-decompose the Gram matrix ``M_b M_b^T`` of every matrix of a batch.

    Parameters
    ----------
    matrices : ndarray, shape (B, n_frames, n_pix)
        Region matrices (rows are frames), float32 or float64; not centred (SODINN does not centre).
    k_max : int, optional
        Keep the top ``k_max`` eigenpairs of each matrix (default: all ``n_frames``).
    backend : {"numpy", "keras"}
        ``"numpy"``: LAPACK on the CPU (the reference). ``"keras"``: ``keras.ops.einsum`` and
        ``keras.ops.eigh`` on the active Keras backend and its device (GPU when it has one).
    dtype : {"float64", "float32"}
        Precision of the Gram matrix and its decomposition.

    Returns
    -------
    GramEigh
        The top ``k_max`` eigenpairs of every ``M_b M_b^T``, descending, and what computed them.

    Raises
    ------
    TypeError
        If ``matrices`` is not a real numeric array.
    ValueError
        If ``matrices`` is not a non-empty finite 3-D array, ``k_max`` is out of ``[1, n_frames]``,
        an option is unknown, or float64 is asked of a Keras backend that does not support it.
    RuntimeError
        If the Keras backend computed in another precision than ``dtype``.

    See Also
    --------
    sodinn.adi.pca.gram_basis : The same for one matrix, with the principal components.

    Examples
    --------
    >>> m = np.random.default_rng(0).normal(size=(2, 5, 40))
    >>> result = gram_eigh(m, k_max=3)
    >>> result.eigenvalues.shape, result.eigenvectors.shape
    ((2, 3), (2, 5, 3))
    >>> s = np.linalg.svd(m[1], compute_uv=False)
    >>> bool(np.allclose(result.eigenvalues[1], s[:3] ** 2))
    True
    """
    v.check_choice(backend, GRAM_BACKENDS, name="backend")
    v.check_choice(dtype, _DTYPES, name="dtype")
    return _decompose(_check_batch(matrices), k_max, backend, dtype, gram=True)


def eigh_batch(
    grams: npt.ArrayLike,
    *,
    k_max: int | None = None,
    backend: str = "numpy",
    dtype: str = "float64",
) -> GramEigh:
    """Eigen-decompose a batch of Gram matrices that are already formed (e.g. updated ones).

    The C+ samples of :mod:`sodinn.mlar.samples` form each sample's Gram matrix as the real region's
    plus a low-rank change (cheaper than ``M_b M_b^T``); this decomposes such a stack. Same
    conventions, backends and precision rules as :func:`gram_eigh`.

    Parameters
    ----------
    grams : ndarray, shape (B, n, n)
        Symmetric matrices (only their lower triangle is read by LAPACK; pass symmetric ones).
    k_max : int, optional
        Keep the top ``k_max`` eigenpairs of each (default: all ``n``).
    backend : {"numpy", "keras"}
        Where to decompose, as in :func:`gram_eigh`.
    dtype : {"float64", "float32"}
        Precision of the decomposition.

    Returns
    -------
    GramEigh
        The top ``k_max`` eigenpairs of every matrix, descending, and what computed them.

    Raises
    ------
    TypeError
        If ``grams`` is not a real numeric array.
    ValueError
        If ``grams`` is not a non-empty finite stack of square matrices, ``k_max`` is out of
        ``[1, n]``, an option is unknown, or float64 is asked of a Keras backend without it.
    RuntimeError
        If the Keras backend computed in another precision than ``dtype``.

    Examples
    --------
    >>> m = np.random.default_rng(0).normal(size=(2, 5, 40))
    >>> a = eigh_batch(m @ m.transpose(0, 2, 1), k_max=3)
    >>> b = gram_eigh(m, k_max=3)
    >>> bool(np.allclose(a.eigenvalues, b.eigenvalues))
    True
    """
    v.check_choice(backend, GRAM_BACKENDS, name="backend")
    v.check_choice(dtype, _DTYPES, name="dtype")
    arr = _check_batch(grams, what="grams", shape="(B, n, n)")
    if arr.shape[1] != arr.shape[2]:
        msg = f"grams must be a stack of square matrices (B, n, n); got shape {arr.shape}"
        raise ValueError(msg)
    return _decompose(arr, k_max, backend, dtype, gram=False)


def _decompose(arr: np.ndarray, k_max: int | None, backend: str, dtype: str, *, gram: bool) -> GramEigh:
    """Top ``k_max`` eigenpairs of ``arr`` (``gram=False``) or of its Gram matrices ``arr arr^T``."""
    n = arr.shape[1]
    k = n if k_max is None else v.check_int(k_max, name="k_max", minimum=1, maximum=n)
    if backend == "numpy":
        x = arr.astype(dtype, copy=False)
        lam, u = np.linalg.eigh(x @ x.transpose(0, 2, 1) if gram else x)
        lam, u, name = lam[:, ::-1], u[:, :, ::-1], "numpy"
    else:
        lam, u, name = _keras_eigh(arr, dtype, gram=gram)
    return GramEigh(eigenvalues=np.ascontiguousarray(lam[:, :k]), eigenvectors=np.ascontiguousarray(u[:, :, :k]),
                    backend=name, dtype=dtype)


def _keras_eigh(arr: np.ndarray, dtype: str, *, gram: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """``keras.ops.eigh`` of ``arr`` (``gram=False``) or of its Gram matrices ``arr arr^T`` (``gram=True``)."""
    import keras
    from keras import ops

    name = keras.backend.backend()
    if dtype == "float64" and not keras_float64_supported():
        msg = (
            "dtype='float64' needs JAX's 64-bit mode: set JAX_ENABLE_X64=1 before jax is imported, "
            "or pass dtype='float32'"
        )
        raise ValueError(msg)
    x = ops.convert_to_tensor(arr, dtype=dtype)
    # einsum, not matmul: keras' torch matmul computes float64 inputs in float32 (keras-team/keras#23704)
    mat = ops.einsum("bip,bjp->bij", x, x) if gram else x
    lam, u = ops.eigh(mat)
    # every backend returns ascending eigenvalues; sort explicitly rather than rely on it
    order = ops.flip(ops.argsort(lam, axis=-1), axis=-1)
    lam = ops.convert_to_numpy(ops.take_along_axis(lam, order, axis=-1))
    u = ops.convert_to_numpy(ops.take_along_axis(u, ops.expand_dims(order, axis=1), axis=-1))
    if lam.dtype != dtype or u.dtype != dtype:
        msg = f"keras' {name} backend computed in {u.dtype} although {dtype} was asked; use backend='numpy'"
        raise RuntimeError(msg)
    return lam, u, f"keras/{name}"


def _check_batch(matrices: npt.ArrayLike, *, what: str = "matrices", shape: str = "(B, n_frames, n_pix)") -> np.ndarray:
    arr = np.asarray(matrices)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        msg = f"{what} must be a real numeric array {shape}; got dtype {arr.dtype}"
        raise TypeError(msg)
    if arr.ndim != 3 or min(arr.shape) < 1:
        msg = f"{what} must be a non-empty 3-D array {shape}; got shape {arr.shape}"
        raise ValueError(msg)
    if not np.isfinite(arr).all():
        msg = f"{what} contain NaN or infinite values; clean the cube first"
        raise ValueError(msg)
    return arr
