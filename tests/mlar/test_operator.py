import numpy as np
import pytest

from sodinn.adi.geometry import annulus_indices, frame_center, patch_offsets, svd_region_radii
from sodinn.adi.injection import FourierShifter
from sodinn.adi.sequence import ADISequence
from sodinn.config import SampleConfig
from sodinn.datasets import make_adi_sequence
from sodinn.mlar.operator import (
    MAX_BATCH,
    AnnulusGeometry,
    AnnulusOperator,
    MemoryPlan,
    no_cyclic_gc,
    top_eigenvectors,
)
from sodinn.mlar.samples import annulus_samples, sample_annuli, sample_psf

from ..reference.mlar import slow_frames, slow_sample


@pytest.fixture(scope="module")
def synthetic():
    data = make_adi_sequence(n_frames=24, size_px=49, fwhm_px=4.0, field_rotation_deg=70.0, seed=3)
    return ADISequence(data.cube, data.angles_deg, data.psf, data.fwhm_px, data.pixel_scale_arcsec)


def _small_config(**kw):
    base = dict(patch_px=9, n_ranks=6, samples_per_annulus=12, seed=5, oracle_azimuths=1)
    base.update(kw)
    return SampleConfig(**base)


def _fixed_config(**kw):
    return SampleConfig(patch_px=7, n_ranks=3, k_policy="fixed", k_list=(1, 3, 6), **kw)


def _plan(budget_gib, **kw):
    sizes = dict(n_frames=30, frame_px=61, n_reg=1500, n_union=900, n_centres=400, k_max=20, n_ranks=10,
                 patch_px=9, psf_px=17, n_out=200)
    sizes.update(kw)
    return MemoryPlan(**sizes, budget_gib=budget_gib)


# ---------------------------------------------------------------- AnnulusGeometry


@pytest.mark.parametrize(("size", "r_in", "r_out", "patch_px"), [(49, 4.0, 8.0, 9), (49, 12.5, 16.5, 7), (60, 1.0, 5.0, 5)])
def test_geometry_centres_are_the_annulus_pixels(size, r_in, r_out, patch_px):
    geo = AnnulusGeometry(size, r_in, r_out, patch_px)
    cy, cx = frame_center((size, size))
    r = np.hypot(geo.centers[:, 0] - cy, geo.centers[:, 1] - cx)
    assert (r >= r_in).all() and (r < r_out).all()
    ay, ax = annulus_indices((size, size), r_in, r_out - r_in)
    np.testing.assert_array_equal(geo.centers, np.column_stack([ay, ax]))
    assert geo.size == size and geo.patch_px == patch_px


@pytest.mark.parametrize(("size", "r_in", "r_out", "patch_px"), [(49, 4.0, 8.0, 9), (49, 12.5, 16.5, 7), (60, 1.0, 5.0, 5)])
def test_geometry_every_patch_lies_inside_the_region(size, r_in, r_out, patch_px):
    geo = AnnulusGeometry(size, r_in, r_out, patch_px)
    ry, rx = geo.region
    region = set((ry * size + rx).tolist())
    assert set(geo.union.tolist()) <= region
    # the region is SPEC §2's widened annulus
    lo, hi = svd_region_radii(r_in, r_out, patch_px)
    np.testing.assert_array_equal(np.column_stack(geo.region), np.column_stack(annulus_indices((size, size), lo, hi - lo)))
    # patch_rows index the union: union[patch_rows[i]] are the pixels of the patch around centre i, row-major
    dy, dx = patch_offsets(patch_px)
    expected = (geo.centers[:, :1] + dy) * size + (geo.centers[:, 1:] + dx)
    np.testing.assert_array_equal(geo.union[geo.patch_rows], expected)
    assert geo.patch_rows.shape == (len(geo.centers), patch_px**2)
    assert (np.diff(geo.union) > 0).all()  # sorted, no duplicate
    assert set(geo.union.tolist()) == set(expected.ravel().tolist())  # nothing more than the patches


def test_geometry_plan_follows_the_config():
    geo = AnnulusGeometry(49, 8.0, 12.0, 9)
    plan = geo.plan(_small_config(), n_frames=24, psf_px=17)
    same = MemoryPlan(n_frames=24, frame_px=49, n_reg=geo.region[0].size, n_union=geo.union.size, n_centres=len(geo.centers),
                      k_max=23, n_ranks=6, patch_px=9, psf_px=17, n_out=12, budget_gib=4.0)
    assert vars(plan) == vars(same)
    fixed = geo.plan(_small_config(n_ranks=3, k_policy="fixed", k_list=(1, 2, 5)), n_frames=24, psf_px=17)
    assert fixed.fixed < plan.fixed and fixed.per_sample < plan.per_sample  # k_max = 5 instead of n_frames - 1
    every = geo.plan(_small_config(samples_per_annulus=None), n_frames=24, psf_px=17)
    assert every.fixed > plan.fixed  # one sample of each class per centre instead of 12
    with pytest.raises(ValueError, match="memory budget of 0.0001 GiB is too small"):
        geo.plan(_small_config(memory_budget_gib=0.0001), n_frames=24)


# ---------------------------------------------------------------- MemoryPlan


def test_memory_plan_too_small_budget_message():
    need = _plan(4.0).minimum_bytes / 2**30
    with pytest.raises(ValueError, match=(r"memory budget of 0.001 GiB is too small for an annulus of 1500 region pixels over 30 "
                                          r"frames: it needs at least .* GiB; set memory_budget_gib=.*, lower samples_per_annulus "
                                          r"or bin the frames \(sodinn.adi.binning.bin_frames\)")):
        _plan(0.001)
    _plan(1.0001 * need)  # just enough is accepted
    with pytest.raises(ValueError, match="too small"):
        _plan(0.999 * need)


@pytest.mark.parametrize("factor", [1.0001, 1.05, 1.3, 2.0, 10.0, 1000.0])
def test_memory_plan_invariants(factor):
    need = _plan(4.0).minimum_bytes
    budget = factor * need / 2**30
    plan = _plan(budget)
    assert 1 <= plan.batch <= MAX_BATCH
    assert 9**2 <= plan.chunk_px <= 900  # at least one patch, at most the union
    assert plan.peak_bytes <= budget * 2**30
    assert plan.peak_bytes >= plan.fixed + plan.per_sample


def test_memory_plan_grows_with_the_budget():
    plans = [_plan(f * _plan(4.0).minimum_bytes / 2**30) for f in (1.0001, 1.5, 3.0, 100.0)]
    assert [p.chunk_px for p in plans] == sorted(p.chunk_px for p in plans)
    assert [p.batch for p in plans] == sorted(p.batch for p in plans)
    assert (plans[0].batch, plans[-1].batch) == (1, MAX_BATCH)
    assert not plans[0].table and plans[-1].table and plans[-1].chunk_px == 900


def test_memory_budget_bounds_the_work_but_not_the_samples(synthetic):
    edges = sample_annuli(synthetic, _small_config()).edges_px
    r_in, r_out = float(edges[-2]), float(edges[-1])
    psf_px = sample_psf(synthetic, _small_config()).shape[0]
    geometry = AnnulusGeometry(synthetic.frame_size, r_in, r_out, 9)
    large = _small_config(memory_budget_gib=4.0)
    roomy = geometry.plan(large, synthetic.n_frames, psf_px)
    small = _small_config(memory_budget_gib=1.05 * roomy.minimum_bytes / 2**30)  # just above the least it can do with
    tight = geometry.plan(small, synthetic.n_frames, psf_px)
    assert tight.batch == 1 and roomy.batch > 1  # one C+ sample at a time vs several
    assert tight.chunk_px < geometry.union.size == roomy.chunk_px  # C- operator in chunks vs all pixels at once
    assert not tight.table and roomy.table  # +PA patch stencils per batch vs kept for the annulus
    assert tight.peak_bytes <= small.memory_budget_gib * 2**30 < roomy.peak_bytes
    a = annulus_samples(synthetic, small, 2, r_in, r_out, (100.0, 400.0))
    b = annulus_samples(synthetic, large, 2, r_in, r_out, (100.0, 400.0))
    np.testing.assert_array_equal(a.samples, b.samples)  # bit for bit
    np.testing.assert_array_equal(a.flux, b.flux)
    assert small.digest() == large.digest()  # the budget never changes the samples


# ---------------------------------------------------------------- top_eigenvectors


@pytest.mark.parametrize("k", [1, 4, 12])
def test_top_eigenvectors_equal_numpy_eigh_sorted_descending(rng, k):
    a = rng.normal(size=(12, 40))
    gram = a @ a.T
    u = top_eigenvectors(gram, k)
    assert u.shape == (12, k) and u.flags.c_contiguous
    lam, vec = np.linalg.eigh(gram)
    order = np.argsort(lam)[::-1][:k]
    np.testing.assert_array_equal(u, vec[:, order])
    rayleigh = np.einsum("ik,ij,jk->k", u, gram, u)
    assert (np.diff(rayleigh) <= 0).all()  # descending eigenvalues
    np.testing.assert_allclose(gram @ u, u * rayleigh, atol=1e-9 * lam.max())
    np.testing.assert_allclose(u.T @ u, np.eye(k), atol=1e-12)


# ---------------------------------------------------------------- AnnulusOperator


def test_compiled_stencils_equal_derotation_stencil(naco):
    from sodinn.adi.rotation import DerotationStencil

    cube = np.asarray(naco.cube)
    op = AnnulusOperator(cube, naco.angles_deg, 10.0, 15.0, SampleConfig(), np.ones(cube.shape[1:], dtype=bool))
    rows = np.arange(0, op.union.size, 7)
    for angles in (op.plus, op.minus):
        cols, w = op.stencils(angles, rows)
        pixels = np.column_stack([op.union[rows] // op.size, op.union[rows] % op.size])
        st = DerotationStencil(cube.shape[1:], angles, pixels)
        expected_cols = op.lookup[st.index]
        np.testing.assert_array_equal(cols, expected_cols.transpose(1, 0, 2))
        np.testing.assert_array_equal(w, np.where(expected_cols < op.n_reg, st.weight, 0.0).transpose(1, 0, 2))


@pytest.fixture(scope="module")
def operator(synthetic):
    usable = np.ones((synthetic.frame_size,) * 2, dtype=bool)
    usable[: synthetic.frame_size // 2] = False  # the upper half of the frame is masked
    return AnnulusOperator(np.asarray(synthetic.cube), synthetic.angles_deg, 8.0, 12.0, _fixed_config(), usable)


def test_operator_holds_the_region_matrix_and_its_ranks(synthetic, operator):
    op = operator
    yy, xx = op.region
    assert op.m_ext.shape == (24, op.n_reg + 1)
    np.testing.assert_array_equal(op.m_ext[:, :-1], np.asarray(synthetic.cube)[:, yy, xx])
    np.testing.assert_array_equal(op.m_ext[:, -1], 0)  # the zero column stencils point to outside the region
    assert op.lookup[yy * op.size + xx].tolist() == list(range(op.n_reg))
    assert (np.delete(op.lookup, yy * op.size + xx) == op.n_reg).all()
    np.testing.assert_array_equal(op.ks, [1, 3, 6])
    assert op.k_max == 6
    np.testing.assert_array_equal(op.usable, op.centers[:, 0] >= synthetic.frame_size // 2)
    np.testing.assert_allclose(op.gram, op.m_ext @ op.m_ext.T)
    np.testing.assert_array_equal(op.minus, -op.plus)


def test_operator_refuses_more_ranks_than_frames(synthetic):
    cfg = SampleConfig(patch_px=7, n_ranks=2, k_policy="fixed", k_list=(3, 30))
    usable = np.ones((49, 49), dtype=bool)
    with pytest.raises(ValueError, match="ranks go up to 30 but the sequence has only 24 frames; lower k_list"):
        AnnulusOperator(np.asarray(synthetic.cube), synthetic.angles_deg, 8.0, 12.0, cfg, usable)


def test_basis_spans_the_leading_singular_vectors(operator):
    u = operator.basis(operator.m_ext)
    assert u.shape == (24, 6)
    left, _, _ = np.linalg.svd(operator.m_ext[:, :-1], full_matrices=False)
    np.testing.assert_allclose(np.abs(u.T @ left[:, :6]), np.eye(6), atol=1e-8)  # same vectors up to sign


def test_negative_patches_equal_the_slow_path(synthetic, operator):
    op = operator
    values = op.residual_means(op.m_ext, op.basis(op.m_ext), op.minus)
    assert values.shape == (3, op.union.size)
    picks = np.array([0, len(op.centers) // 3, len(op.centers) - 1])
    patches = op.patches(values, picks)
    assert patches.shape == (3, 3, 7, 7)
    for i, c in enumerate(picks):
        y, x = op.centers[c]
        ref = slow_sample(synthetic.cube, synthetic.angles_deg, synthetic.psf_normalized, 8.0, 12.0, 7, op.ks,
                          x=float(x), y=float(y), positive=False)
        assert np.abs(patches[i] - ref).max() <= 1e-9 * np.abs(ref).max()


def test_positive_batch_equals_the_slow_path_and_does_not_depend_on_the_batch(synthetic, operator):
    op = operator
    psf = sample_psf(synthetic, _fixed_config())
    shifter = FourierShifter(psf)
    centres = np.array([5, len(op.centers) // 2])
    x = op.centers[centres, 1] + np.array([0.3, -0.2])
    y = op.centers[centres, 0] + np.array([-0.4, 0.1])
    flux = np.array([300.0, 150.0])
    together = op.positive_batch(shifter, x, y, flux, centres)
    assert together.shape == (2, 3, 7, 7)
    for i in range(2):
        alone = op.positive_batch(shifter, x[i : i + 1], y[i : i + 1], flux[i : i + 1], centres[i : i + 1])
        np.testing.assert_array_equal(alone[0], together[i])
        ref = slow_sample(synthetic.cube, synthetic.angles_deg, psf, 8.0, 12.0, 7, op.ks, x=x[i], y=y[i], flux=flux[i])
        assert np.abs(together[i] - ref).max() <= 1e-6 * np.abs(ref).max()


def test_positive_values_on_extra_rows_are_those_of_the_injected_cube(synthetic, operator):
    """Extra rows go through the same loop as the patch: the patches are unchanged, the extra values are the slow path's."""
    op = operator
    psf = sample_psf(synthetic, _fixed_config())
    centres = np.array([3, len(op.centers) // 3])
    x = op.centers[centres, 1] + np.array([0.2, -0.3])
    y = op.centers[centres, 0] + np.array([0.1, 0.4])
    flux = np.array([250.0, 400.0])
    extra_rows = [np.arange(0, op.union.size, 5), np.array([7, 2, op.union.size - 1])]
    patches, extra = op.positive_values(psf, x, y, flux, extra_rows)
    np.testing.assert_allclose(patches, op.positive_samples(psf, x, y, flux), rtol=0, atol=1e-9 * np.abs(patches).max())
    assert [e.shape for e in extra] == [(3, extra_rows[0].size), (3, 3)]
    yy, xx = op.union // op.size, op.union % op.size
    for i in range(2):
        frames = slow_frames(synthetic.cube, synthetic.angles_deg, psf, 8.0, 12.0, 7, op.ks, x=x[i], y=y[i], flux=flux[i])
        ref = frames[:, yy[extra_rows[i]], xx[extra_rows[i]]]
        assert np.abs(extra[i] - ref).max() <= 1e-6 * np.abs(frames).max()
    with pytest.raises(ValueError, match="extra_rows must hold one array"):
        op.positive_values(psf, x, y, flux, [np.array([op.union.size])] * 2)


def test_no_cyclic_gc_restores_the_collector():
    import gc

    assert gc.isenabled()
    with no_cyclic_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="inside"), no_cyclic_gc():
        raise RuntimeError("inside")
    assert gc.isenabled()
