import numpy as np
import pytest

from sodinn.adi.geometry import svd_region_radii
from sodinn.adi.pca import annulus_matrix, cevr, gram_basis, k_list_from_cevr, rank_residuals, residual_means_at
from sodinn.adi.rotation import DerotationStencil, cube_derotate


def test_gram_basis_equals_svd(rng):
    m = rng.normal(size=(20, 300)) @ np.diag(np.linspace(5, 0.1, 300))
    basis = gram_basis(m, 8)
    _, s, vt = np.linalg.svd(m, full_matrices=False)
    np.testing.assert_allclose(basis.eigenvalues, s[:8] ** 2, rtol=1e-10)
    # same subspace, any sign
    np.testing.assert_allclose(np.abs(np.sum(basis.vectors * vt[:8], axis=1)), 1.0, atol=1e-9)
    res = rank_residuals(m, basis, np.array([1, 4, 8]))
    for i, k in enumerate([1, 4, 8]):
        ref = m - (m @ vt[:k].T) @ vt[:k]
        np.testing.assert_allclose(res[i], ref, atol=1e-9 * np.abs(m).max())


def test_gram_basis_matches_vip_svd_wrapper(naco, vip):
    from vip_hci.psfsub.svd import svd_wrapper

    m, _ = annulus_matrix(naco.cube, 10, 25)
    ours = gram_basis(m, 10).vectors
    ref = svd_wrapper(m, "lapack", 10, False)
    np.testing.assert_allclose(np.abs(np.sum(ours * ref, axis=1)), 1.0, atol=1e-8)


def test_cevr_monotone_and_complete(rng):
    c = cevr(rng.normal(size=(15, 80)))
    assert np.all(np.diff(c) >= -1e-15)
    assert c[-1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="zero variance"):
        cevr(np.ones((5, 10)))


def test_k_list_policy():
    c = np.linspace(0.5, 1.0, 61)
    ks = k_list_from_cevr(c, 20)
    assert ks.size == 20 and ks[0] == 1 and np.all(np.diff(ks) > 0)
    assert ks[-1] == np.argmax(c >= 0.99) + 1
    assert k_list_from_cevr(np.r_[0.2, 0.995, np.ones(38)], 5).tolist() == [1, 2, 3, 4, 5]  # k_max=2 -> padded
    assert k_list_from_cevr(np.r_[np.linspace(0.1, 0.98, 9), np.ones(11)], 4).tolist() == [1, 4, 7, 10]
    with pytest.raises(ValueError, match="n_ranks=30 needs more frames"):
        k_list_from_cevr(c[:20], 30)


def test_naco_k_list(naco):
    lo, hi = svd_region_radii(10, 15, 11)
    m, _ = annulus_matrix(naco.cube, lo, hi)
    ks = k_list_from_cevr(cevr(m), 20)
    assert ks.size == 20 and ks.max() <= naco.n_frames - 1


def _slow_residual_means(cube, angles, region, residuals, pixels):
    """Reference path: residuals back into frames, K full-frame derotations, mean, crop."""
    yy, xx = region
    out = []
    for res in residuals:
        frames = np.zeros_like(cube)
        frames[:, yy, xx] = res
        mean = cube_derotate(frames, angles).mean(axis=0)
        out.append(mean[pixels[:, 0], pixels[:, 1]])
    return np.array(out)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_fast_residual_means_equal_slow_path_on_naco(naco, sign):
    cube = np.array(naco.cube)
    angles = sign * naco.angles_deg
    lo, hi = svd_region_radii(10, 15, 11)
    m, region = annulus_matrix(cube, lo, hi)
    ks = k_list_from_cevr(cevr(m), 20)
    basis = gram_basis(m, int(ks[-1]))
    dy, dx = np.mgrid[-5:6, -5:6]
    pixels = np.column_stack([(50 + 12 + dy).ravel(), (50 + dx).ravel()])
    fast = residual_means_at(m, region, basis, ks, DerotationStencil(cube.shape[1:], angles, pixels))
    slow = _slow_residual_means(cube, angles, region, rank_residuals(m, basis, ks), pixels)
    assert np.abs(fast - slow).max() <= 1e-6 * np.abs(slow).max()


def test_fast_residual_means_equal_slow_path_on_synthetic(rng):
    cube = rng.normal(size=(9, 33, 33)) + 3 * rng.normal(size=(33, 33))
    angles = np.linspace(0, 70, 9)
    m, region = annulus_matrix(cube, 3, 15)
    ks = np.array([1, 2, 5, 8])
    basis = gram_basis(m, 8)
    pixels = np.array([[16, 24], [10, 12], [20, 9], [16, 16 + 5]])
    fast = residual_means_at(m, region, basis, ks, DerotationStencil((33, 33), angles, pixels))
    slow = _slow_residual_means(cube, angles, region, rank_residuals(m, basis, ks), pixels)
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-12)


def test_pca_errors(rng):
    m = rng.normal(size=(6, 40))
    with pytest.raises(ValueError, match="k_max=7 is larger than the number of frames"):
        gram_basis(m, 7)
    with pytest.raises(ValueError, match="exceeds the rank"):
        gram_basis(np.outer(np.ones(6), rng.normal(size=40)), 3)
    basis = gram_basis(m, 4)
    with pytest.raises(ValueError, match="ks must lie in"):
        rank_residuals(m, basis, np.array([1, 5]))
    with pytest.raises(ValueError, match="strictly increasing"):
        rank_residuals(m, basis, np.array([3, 2]))
    with pytest.raises(ValueError, match="NaN"):
        gram_basis(np.where(m > 2, np.nan, m))
    with pytest.raises(ValueError, match="outside the 21x21 px frame"):
        annulus_matrix(rng.normal(size=(3, 21, 21)), 5, 15)
