"""Batched Gram eigen-decompositions: numpy (reference) against keras.ops on every installed backend."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from sodinn.adi.pca import annulus_matrix, gram_basis  # noqa: E402
from sodinn.mlar.linalg import eigh_batch, gram_eigh  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
KS = (1, 3, 8, 15)
# keras' own Variable.__array__ under numpy 2 (as in pyproject's filterwarnings): not our code
KERAS_NOISE = "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"


def c_plus_batch(n_copies: int = 4) -> np.ndarray:
    """Annulus matrices of a synthetic sequence with a companion injected at a different place in each copy."""
    from sodinn.datasets import make_adi_sequence

    copies = []
    for i in range(n_copies):
        data = make_adi_sequence(n_frames=24, size_px=41, fwhm_px=4.0, companions=[(10.0, 90.0 * i, 300.0)], seed=1)
        copies.append(annulus_matrix(data.cube, 6.0, 16.0)[0])
    return np.stack(copies)


def projectors(u: np.ndarray, ks=KS) -> np.ndarray:
    """U_k U_k^T for each k: (B, K, n, n), independent of the eigenvectors' signs."""
    return np.stack([u[:, :, :k] @ u[:, :, :k].transpose(0, 2, 1) for k in ks], axis=1)


def residuals(m: np.ndarray, u: np.ndarray, ks=KS) -> np.ndarray:
    """(I - U_k U_k^T) M for each k: (B, K, n, n_pix)."""
    return m[:, None] - projectors(u, ks) @ m[:, None]


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return c_plus_batch()


def assert_agree(result, reference, m: np.ndarray) -> None:
    """Eigenvalues, projectors and residuals agree to 1e-5 (relative to the largest value)."""
    lam, ref_lam = result.eigenvalues, reference.eigenvalues
    assert np.max(np.abs(lam - ref_lam)) <= 1e-5 * ref_lam.max()
    assert np.max(np.abs(projectors(result.eigenvectors) - projectors(reference.eigenvectors))) <= 1e-5
    res, ref_res = residuals(m, result.eigenvectors), residuals(m, reference.eigenvectors)
    assert np.max(np.abs(res - ref_res)) <= 1e-5 * np.abs(m).max()


def test_numpy_backend_matches_gram_basis(batch):
    result = gram_eigh(batch, k_max=15)
    assert result.eigenvalues.shape == (4, 15) and result.eigenvectors.shape == (4, 24, 15)
    assert result.backend == "numpy" and result.eigenvalues.dtype == np.float64
    assert np.all(np.diff(result.eigenvalues, axis=1) < 0)  # descending
    for b in range(batch.shape[0]):
        basis = gram_basis(batch[b], 15)
        np.testing.assert_allclose(result.eigenvalues[b], basis.eigenvalues, rtol=1e-12)
        np.testing.assert_allclose(projectors(result.eigenvectors[b : b + 1]), projectors(basis.left[None]), atol=1e-10)
    # k_max keeps the leading columns of the full decomposition
    full = gram_eigh(batch)
    assert full.eigenvalues.shape == (4, 24)
    np.testing.assert_array_equal(full.eigenvalues[:, :15], result.eigenvalues)


def test_keras_backend_agrees_with_numpy(batch):
    import keras

    reference = gram_eigh(batch, k_max=15)
    result = gram_eigh(batch, k_max=15, backend="keras")
    assert result.backend == f"keras/{keras.backend.backend()}" and result.eigenvectors.dtype == np.float64
    assert_agree(result, reference, batch)
    # the eigenvectors diagonalise the Gram matrix
    gram = batch @ batch.transpose(0, 2, 1)
    u = result.eigenvectors
    np.testing.assert_allclose(u.transpose(0, 2, 1) @ gram @ u, np.stack([np.diag(x) for x in result.eigenvalues]),
                               atol=1e-9 * gram.max())


def test_float32_inputs_and_precision(batch):
    single = batch.astype(np.float32)
    assert gram_eigh(single).eigenvalues.dtype == np.float64  # computed in float64 unless asked
    reference = gram_eigh(batch, k_max=3)
    for backend in ("numpy", "keras"):
        fast = gram_eigh(single, k_max=3, backend=backend, dtype="float32")
        assert fast.eigenvalues.dtype == np.float32 and fast.dtype == "float32"
        # the leading, well-separated eigenvalues keep float32 precision
        np.testing.assert_allclose(fast.eigenvalues, reference.eigenvalues, rtol=1e-5)


def test_eigh_of_formed_gram_matrices(batch):
    """eigh_batch on M M^T (as the C+ path forms it: the real Gram plus a low-rank change) = gram_eigh on M."""
    grams = batch @ batch.transpose(0, 2, 1)
    reference = gram_eigh(batch, k_max=15)
    for backend in ("numpy", "keras"):
        result = eigh_batch(grams, k_max=15, backend=backend)
        assert result.eigenvectors.shape == (4, 24, 15) and result.dtype == "float64"
        assert_agree(result, reference, batch)
    with pytest.raises(ValueError, match="square matrices"):
        eigh_batch(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"grams must be a non-empty 3-D array \(B, n, n\)"):
        eigh_batch(np.ones((3, 3)))


def test_bad_input():
    with pytest.raises(ValueError, match=r"3-D array \(B, n_frames, n_pix\); got shape \(5, 10\)"):
        gram_eigh(np.ones((5, 10)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        gram_eigh(np.full((1, 3, 4), np.nan))
    with pytest.raises(ValueError, match="k_max"):
        gram_eigh(np.ones((1, 3, 4)), k_max=4)
    with pytest.raises(ValueError, match="backend must be one of"):
        gram_eigh(np.ones((1, 3, 4)), backend="cupy")
    with pytest.raises(ValueError, match="dtype must be one of"):
        gram_eigh(np.ones((1, 3, 4)), dtype="float16")
    with pytest.raises(TypeError, match="real numeric array"):
        gram_eigh(np.ones((1, 3, 4), dtype=complex))


_WORKER = """
import sys
import numpy as np
from sodinn.mlar.linalg import eigh_batch, gram_eigh
batch = np.load(sys.argv[1])
try:
    gram_eigh(batch, backend="keras")
    refused = ""
except ValueError as err:
    refused = str(err)
r = gram_eigh(batch, k_max=15, backend="keras", dtype=sys.argv[3])
e = eigh_batch(batch @ batch.transpose(0, 2, 1), k_max=15, backend="keras", dtype=sys.argv[3])
np.savez(sys.argv[2], eigenvalues=r.eigenvalues, eigenvectors=r.eigenvectors, backend=r.backend, refused=refused,
         formed_eigenvalues=e.eigenvalues, formed_eigenvectors=e.eigenvectors)
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", ["torch", "jax"])
def test_other_keras_backends_agree_with_numpy(batch, name, tmp_path):
    """torch in float64; jax in float64 with JAX_ENABLE_X64=1, and refusing float64 without it."""
    if importlib.util.find_spec(name) is None:
        reason = f"{name} is not installed (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {reason}", pytrace=False)
        pytest.skip(reason)
    np.save(tmp_path / "batch.npy", batch)
    reference = gram_eigh(batch, k_max=15)
    runs = [("float64", {"JAX_ENABLE_X64": "1"})] + ([("float32", {"JAX_ENABLE_X64": "0"})] if name == "jax" else [])
    for dtype, extra in runs:
        env = {**os.environ, "KERAS_BACKEND": name, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}
        out = tmp_path / f"{dtype}.npz"
        proc = subprocess.run([sys.executable, "-W", "error", "-W", KERAS_NOISE, "-c", _WORKER, str(tmp_path / "batch.npy"),
                               str(out), dtype], env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-3000:]
        got = np.load(out)
        assert str(got["backend"]) == f"keras/{name}"
        if dtype == "float64":
            assert str(got["refused"]) == ""
            assert got["eigenvectors"].dtype == np.float64
            for prefix in ("", "formed_"):  # gram_eigh, and eigh_batch of the formed Gram matrices
                result = type(reference)(got[f"{prefix}eigenvalues"], got[f"{prefix}eigenvectors"], name, dtype)
                assert_agree(result, reference, batch)
        else:  # jax without 64-bit mode: float64 refused with the fix, float32 works
            assert "JAX_ENABLE_X64=1" in str(got["refused"])
            np.testing.assert_allclose(got["eigenvalues"][:, :3], reference.eigenvalues[:, :3], rtol=1e-5)
