import numpy as np
import pytest

from sodinn.adi.psf import aperture_flux, psf_centroid
from sodinn.adi.sequence import ADISequence
from sodinn.config import SampleConfig
from sodinn.datasets import make_adi_sequence
from sodinn.exceptions import PSFWarning
from sodinn.mlar.samples import (
    annulus_samples,
    make_samples,
    minmax_normalize,
    positive_samples,
    sample_annuli,
    sample_psf,
)

from ..conftest import offset_psf
from ..reference.mlar import slow_frames, slow_sample


def _check_against_slow_path(seq, cfg, annulus, r_in, r_out, flux_range, picks):
    got = annulus_samples(seq, cfg, annulus, r_in, r_out, flux_range)
    psf = sample_psf(seq, cfg)
    for i in picks(got):
        positive = bool(got.labels[i])
        ref = slow_sample(seq.cube, seq.angles_deg, psf, r_in, r_out, cfg.patch_px, got.ks,
                          x=got.x[i], y=got.y[i], flux=got.flux[i], positive=positive)
        # samples are stored as float32 (relative rounding 6e-8); the bound is SPEC §2's 1e-6
        assert np.abs(got.samples[i] - ref).max() <= 1e-6 * np.abs(ref).max(), (i, positive)
    return got


@pytest.fixture(scope="module")
def synthetic():
    data = make_adi_sequence(n_frames=24, size_px=49, fwhm_px=4.0, field_rotation_deg=70.0, seed=3)
    return ADISequence(data.cube, data.angles_deg, data.psf, data.fwhm_px, data.pixel_scale_arcsec)


def _picks(got):
    pos = np.nonzero(got.labels == 1)[0][:3]
    neg = np.nonzero(got.labels == 0)[0][[0, len(np.nonzero(got.labels == 0)[0]) // 2]]
    return [*pos, *neg]


def test_fast_path_equals_slow_path_on_naco(naco):
    cfg = SampleConfig(samples_per_annulus=6, known_sources_xy=((62, 63),), seed=1)
    _check_against_slow_path(naco, cfg, 1, 10.0, 15.0, (40.0, 120.0), _picks)


def test_fast_path_equals_slow_path_on_synthetic(synthetic):
    cfg = SampleConfig(patch_px=9, n_ranks=8, samples_per_annulus=5, seed=2)
    edges = sample_annuli(synthetic, cfg).edges_px
    _check_against_slow_path(synthetic, cfg, 0, edges[0], edges[1], (50.0, 500.0), _picks)


def test_snr_curves_are_those_of_the_slow_residual_frames(synthetic):
    """C+ (own injected cube, own basis, +PA) and C- (-PA) curves: snr_curves on the frames the patches come from."""
    from sodinn.mlar.features import snr_curves

    cfg = SampleConfig(patch_px=9, n_ranks=8, samples_per_annulus=5, seed=2)
    edges = sample_annuli(synthetic, cfg).edges_px
    got = annulus_samples(synthetic, cfg, 1, edges[1], edges[2], (50.0, 500.0))
    assert got.snr_curves.shape == (10, 8) and got.snr_curves.dtype == np.float32
    psf = sample_psf(synthetic, cfg)
    for i in range(len(got.labels)):
        frames = slow_frames(synthetic.cube, synthetic.angles_deg, psf, edges[1], edges[2], cfg.patch_px, got.ks,
                             x=got.x[i], y=got.y[i], flux=got.flux[i], positive=bool(got.labels[i]))
        centre = (round(got.x[i]), round(got.y[i]))  # the S/N is taken at the sample's centre pixel
        expected = snr_curves(frames, [centre], synthetic.fwhm_px)[0]
        # stored as float32 (6e-8 relative) from residuals within SPEC §2's 1e-6 of the slow path
        np.testing.assert_allclose(got.snr_curves[i], expected, rtol=1e-6, atol=1e-6)
    assert np.abs(got.snr_curves).max() > 1.0  # curves that carry something


def test_snr_curves_leave_a_known_source_in_the_annulus_out_of_their_noise_apertures(synthetic):
    """C+ and C- curves equal snr_curves(exclude_xy=known sources, mask_radius_fwhm FWHM) on the slow residual frames."""
    from sodinn.adi.geometry import frame_center
    from sodinn.mlar.features import snr_curves

    plain = SampleConfig(patch_px=9, n_ranks=4, samples_per_annulus=4, seed=2)
    edges = sample_annuli(synthetic, plain).edges_px
    cy, cx = frame_center(synthetic.cube.shape)
    r = 0.5 * (edges[1] + edges[2])
    cfg = SampleConfig(patch_px=9, n_ranks=4, samples_per_annulus=4, seed=2, known_sources_xy=((cx, cy + r),))
    radius = cfg.mask_radius_fwhm * synthetic.fwhm_px
    got = annulus_samples(synthetic, cfg, 1, edges[1], edges[2], (50.0, 500.0))
    before = annulus_samples(synthetic, plain, 1, edges[1], edges[2], (50.0, 500.0))
    psf = sample_psf(synthetic, cfg)
    for i in range(len(got.labels)):
        frames = slow_frames(synthetic.cube, synthetic.angles_deg, psf, edges[1], edges[2], cfg.patch_px, got.ks,
                             x=got.x[i], y=got.y[i], flux=got.flux[i], positive=bool(got.labels[i]))
        centre = [(round(got.x[i]), round(got.y[i]))]
        expected = snr_curves(frames, centre, synthetic.fwhm_px, exclude_xy=cfg.known_sources_xy, exclude_radius_px=radius)
        np.testing.assert_allclose(got.snr_curves[i], expected[0], rtol=1e-6, atol=1e-6)
        unmasked = snr_curves(frames, centre, synthetic.fwhm_px)[0]
        assert not np.allclose(expected[0], unmasked, rtol=1e-3)  # every ring crosses the source's mask
    assert not np.allclose(got.snr_curves, before.snr_curves)


def test_augmented_samples_carry_their_source_curve(synthetic):
    cfg = SampleConfig(patch_px=9, n_ranks=6, samples_per_annulus=400, augment=True, seed=4)
    edges = sample_annuli(synthetic, cfg).edges_px
    got = annulus_samples(synthetic, cfg, 0, edges[0], edges[1], (50.0, 500.0))
    neg = got.labels == 0
    real = neg & ~got.augmented
    assert got.augmented.any()
    for i in np.nonzero(got.augmented)[0][:20]:  # an augmented copy sits at its source's pixel, with its curve
        source = np.nonzero(real & (got.x == got.x[i]) & (got.y == got.y[i]))[0]
        np.testing.assert_array_equal(got.snr_curves[i], got.snr_curves[source[0]])


def _small_config(**kw):
    base = dict(patch_px=9, n_ranks=6, samples_per_annulus=12, seed=5, oracle_azimuths=1)
    base.update(kw)
    return SampleConfig(**base)


def test_naco_sample_set_shows_companions_and_self_subtraction(naco):
    cfg = SampleConfig(samples_per_annulus=40, known_sources_xy=((62, 63),), r_out_fwhm=4.0, seed=0)
    ranges = np.array([[800.0, 2000.0], [150.0, 400.0], [80.0, 240.0]])
    data = make_samples(naco, cfg, flux_ranges=ranges, n_jobs=1, progress=False)
    x, labels = data.samples, data.labels
    assert x.shape == (240, 20, 11, 11) and labels.sum() == 120  # balanced per annulus
    centre = x[:, :, 5, 5]
    pos, neg = centre[labels == 1].mean(axis=0), centre[labels == 0].mean(axis=0)
    assert pos[0] > neg[0] + 3 * centre[labels == 0, 0].std() / np.sqrt(120)  # C+ centre brighter at small k
    assert pos[0] > pos[-1] and pos[1] > pos[-1]  # the C+ signal fades as k grows (self-subtraction)
    assert np.corrcoef(np.arange(20), pos)[0, 1] < -0.8
    assert abs(neg.mean()) < pos[0] / 3


def test_known_sources_are_masked(naco):
    cfg = SampleConfig(samples_per_annulus=None, known_sources_xy=((62, 63),), r_in_fwhm=3.0, r_out_fwhm=4.0)
    got = annulus_samples(naco, cfg, 0, 3 * naco.fwhm_px, 4 * naco.fwhm_px, (100.0, 200.0))
    d = np.hypot(got.x - 62, got.y - 63)
    assert d.min() > cfg.mask_radius_fwhm * naco.fwhm_px - 0.75
    assert (got.labels == 0).sum() == (got.labels == 1).sum()


def test_determinism_and_workers(synthetic):
    cfg = _small_config()
    ranges = np.array([[100.0, 400.0]] * len(sample_annuli(synthetic, cfg)))
    a = make_samples(synthetic, cfg, flux_ranges=ranges, n_jobs=1, progress=False)
    b = make_samples(synthetic, cfg, flux_ranges=ranges, n_jobs=2, progress=False)
    c = make_samples(synthetic, _small_config(seed=6), flux_ranges=ranges, n_jobs=1, progress=False)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.samples, c.samples)


def test_groups_and_augmentation(synthetic):
    cfg = _small_config(samples_per_annulus=None)
    n_pix = len(annulus_samples(synthetic, cfg, 0, 4.0, 8.0, (100.0, 300.0)).labels) // 2
    cfg = _small_config(samples_per_annulus=n_pix + 25, augment=True)
    got = annulus_samples(synthetic, cfg, 0, 4.0, 8.0, (100.0, 300.0))
    again = annulus_samples(synthetic, cfg, 0, 4.0, 8.0, (100.0, 300.0))
    np.testing.assert_array_equal(got.samples, again.samples)
    assert got.augmented.sum() == 25 and not got.augmented[got.labels == 1].any()
    pos_groups = got.group[got.labels == 1]
    assert len(np.unique(pos_groups)) == len(pos_groups) and (pos_groups >= 0).all()
    neg_groups = got.group[got.labels == 0]
    assert (neg_groups < 0).all() and 1 < len(np.unique(neg_groups)) < len(neg_groups)
    assert set(got.group[got.augmented]) <= set(got.group[(got.labels == 0) & ~got.augmented])
    assert (got.labels == 1).sum() == (got.labels == 0).sum()


def test_minmax_normalize():
    x = np.stack([np.arange(9.0).reshape(3, 3), np.full((3, 3), 4.0)])[None]
    out = minmax_normalize(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], np.arange(9.0).reshape(3, 3) / 8)
    np.testing.assert_array_equal(out[0, 1], 0)
    shifted = minmax_normalize(x - 100)  # the 2019 code's x + |min| was wrong for negative minima
    np.testing.assert_allclose(shifted, out)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(patch_px=10), "patch_px must be odd"),
        (dict(snr_range=(3.0, 1.0)), "reversed"),
        (dict(k_policy="fixed", k_list=(1, 5, 3), n_ranks=3), "strictly increasing"),
        (dict(jitter_px=0.8), "jitter_px must be in"),
        (dict(flux_distribution="normal"), "flux_distribution must be one of"),
    ],
)
def test_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SampleConfig(**kwargs)


def test_bad_configuration_for_the_data(synthetic):
    with pytest.raises(ValueError, match="smaller than 2 FWHM"):
        make_samples(synthetic, SampleConfig(patch_px=5), progress=False)
    with pytest.raises(ValueError, match="30 PCA ranks need more frames"):
        make_samples(synthetic, SampleConfig(patch_px=9, n_ranks=30), progress=False)
    with pytest.raises(ValueError, match="outside the frame"):
        make_samples(synthetic, SampleConfig(patch_px=9, r_out_fwhm=10.0), progress=False)
    with pytest.raises(ValueError, match="no 1-FWHM annulus fits"):
        make_samples(synthetic, SampleConfig(patch_px=21, r_in_fwhm=4.0), progress=False)
    with pytest.raises(TypeError, match="must be an ADISequence"):
        make_samples(np.zeros((3, 9, 9)), progress=False)


def test_too_small_memory_budget_is_refused_before_any_work(synthetic):
    cfg = _small_config(memory_budget_gib=0.001)
    with pytest.raises(ValueError, match=r"annulus \d+ .*memory budget of 0.001 GiB is too small.*needs at least"):
        make_samples(synthetic, cfg, progress=False)  # would run the S/N oracle first if the check came later
    with pytest.raises(ValueError, match="memory_budget_gib must be a positive number"):
        SampleConfig(memory_budget_gib=0.0)
    assert SampleConfig.from_dict(SampleConfig(memory_budget_gib=1.5).to_dict()).memory_budget_gib == 1.5


def test_keras_linalg_backend_gives_the_same_samples():
    data = make_adi_sequence(n_frames=20, size_px=41, fwhm_px=4.0, seed=1)
    seq = ADISequence(data.cube, data.angles_deg, data.psf, data.fwhm_px, data.pixel_scale_arcsec)
    cfg = _small_config(samples_per_annulus=6)
    keras_cfg = _small_config(samples_per_annulus=6, linalg_backend="keras")
    ref = annulus_samples(seq, cfg, 1, 6.0, 10.0, (100.0, 400.0))
    got = annulus_samples(seq, keras_cfg, 1, 6.0, 10.0, (100.0, 400.0))
    np.testing.assert_array_equal(got.labels, ref.labels)
    np.testing.assert_array_equal(got.flux, ref.flux)
    pos = ref.labels == 1
    assert pos.sum() == 6
    scale = np.abs(ref.samples[pos]).max()
    assert np.abs(got.samples[pos] - ref.samples[pos]).max() <= 1e-5 * scale  # eigh on the Keras backend
    np.testing.assert_array_equal(got.samples[~pos], ref.samples[~pos])  # C- samples do not use it
    assert keras_cfg.digest() == cfg.digest()  # where the eigh runs never changes what the samples are
    assert SampleConfig.from_dict(keras_cfg.to_dict()).linalg_backend == "keras"
    with pytest.raises(ValueError, match="linalg_backend must be one of 'numpy', 'keras'; got 'cuda'"):
        SampleConfig(linalg_backend="cuda")


def test_c_plus_samples_are_injected_with_the_centred_psf(synthetic):
    """A PSF given 0.72 px off-centre (issue 13, C): C+ samples equal those of the centred PSF, to SPEC §2's 1e-6."""
    cfg = SampleConfig(patch_px=9, n_ranks=4, seed=1)
    scale = aperture_flux(offset_psf(17), 4.0)
    centred, off = offset_psf(17) / scale, offset_psf(17, 0.6, -0.4) / scale
    x = 24 + np.array([12.0 * np.cos(0.5), 11.5 * np.cos(2.0)])
    y = 24 + np.array([12.0 * np.sin(0.5), 11.5 * np.sin(2.0)])
    flux = np.array([200.0, 300.0])
    ref, ks = positive_samples(synthetic, cfg, 10.0, 14.0, x, y, flux, psf=centred)
    with pytest.warns(PSFWarning, match=r"0.721 px .*recentred"):
        got, got_ks = positive_samples(synthetic, cfg, 10.0, 14.0, x, y, flux, psf=off)
    np.testing.assert_array_equal(got_ks, ks)
    assert np.abs(got - ref).max() <= 1e-6 * np.abs(ref).max()
    # and through the sequence: the stamp of every C+ injection (sample_psf) is centred
    with pytest.warns(PSFWarning, match="recentred"):
        seq = ADISequence(synthetic.cube, synthetic.angles_deg, offset_psf(21, -0.5, -0.5), 4.0)
    stamp = sample_psf(seq, cfg)
    np.testing.assert_allclose(psf_centroid(stamp), (stamp.shape[0] // 2,) * 2, atol=1e-3)
