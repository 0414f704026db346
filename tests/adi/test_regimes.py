"""Tests of sodinn.adi.regimes: PCA-pmaps and the speckle/background boundary (NA-SODINN)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, stats

from sodinn.adi.geometry import annulus_indices, polar_coordinates
from sodinn.adi.regimes import NoiseRegimes, noise_regimes, regime_boundary, shapiro_pvalues
from sodinn.adi.sequence import ADISequence
from sodinn.datasets import make_adi_sequence
from sodinn.exceptions import SettingError, SodinnWarning

FWHM = 4.0
SIZE = 63


def _burst_speckles(n: int, rng: np.random.Generator, *, lifetime: int = 10, rate: float = 5e-4) -> np.ndarray:
    """Pupil-fixed speckles that flare up for ``lifetime`` frames with Pareto amplitudes, PSF-sized: heavy-tailed."""
    shape = (n + lifetime, SIZE, SIZE)
    onsets = (rng.random(shape) < rate) * (rng.pareto(1.5, shape) + 1)
    total = np.cumsum(onsets, axis=0)
    return ndimage.gaussian_filter(total[lifetime:] - total[:-lifetime], (0, FWHM / 2.355, FWHM / 2.355))


def _two_regime_sequence(seed: int, radius_px: float) -> ADISequence:
    """Heavy-tailed speckles inside ``radius_px`` over white Gaussian noise everywhere: a known boundary."""
    syn = make_adi_sequence(n_frames=40, size_px=SIZE, fwhm_px=FWHM, seed=seed)
    rng = np.random.default_rng(seed)
    r, _ = polar_coordinates(syn.cube.shape)
    cube = np.where(r < radius_px, 1000 * _burst_speckles(40, rng), 0.0) + rng.normal(size=syn.cube.shape)
    return ADISequence(cube, syn.angles_deg, syn.psf, syn.fwhm_px)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_known_boundary_is_found_within_one_fwhm(seed):
    radius = 16.0
    result = noise_regimes(_two_regime_sequence(seed, radius))
    assert result.has_speckle_regime
    assert abs(result.boundary_px - radius) <= FWHM
    assert result.label([radius - FWHM - 1, radius + FWHM + 1]).tolist() == [0, 1]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sample", ["pixels", "apertures"])
def test_pure_gaussian_sequence_has_no_speckle_regime(seed, sample):
    syn = make_adi_sequence(n_frames=40, size_px=SIZE, fwhm_px=FWHM, seed=seed)
    cube = np.random.default_rng(100 + seed).normal(size=syn.cube.shape)
    result = noise_regimes(ADISequence(cube, syn.angles_deg, syn.psf, syn.fwhm_px), sample=sample)
    assert not result.has_speckle_regime
    assert result.boundary_px == result.edges_px[0]
    assert np.mean(result.pmap < 0.05) < 0.15  # p-values of Gaussian residuals: few below the level
    assert (result.label_map((SIZE, SIZE)) == 1).all()


def test_pmap_shape_ranks_and_annuli():
    syn = make_adi_sequence(n_frames=12, size_px=SIZE, fwhm_px=FWHM, seed=0)
    result = noise_regimes(ADISequence(syn.cube, syn.angles_deg, syn.psf, syn.fwhm_px), ks=[1, 3, 5])
    assert result.ks.tolist() == [1, 3, 5]
    np.testing.assert_allclose(np.diff(result.edges_px), FWHM)
    assert result.edges_px[0] == FWHM and result.edges_px[-1] <= SIZE / 2 - 0.5
    assert result.pmap.shape == (len(result.edges_px) - 1, 3)
    assert np.all((result.pmap >= 0) & (result.pmap <= 1))
    np.testing.assert_allclose(result.seps_px, result.edges_px[:-1] + FWHM / 2)


def test_shapiro_pvalues_equal_scipy_on_the_annulus_pixels():
    rng = np.random.default_rng(0)
    frames = rng.standard_t(3, size=(2, 41, 41))
    p = shapiro_pvalues(frames, [3.0, 6.0, 9.0], 3.0)
    yy, xx = annulus_indices((41, 41), 6.0, 3.0)
    assert p[1, 0] == stats.shapiro(frames[0, yy, xx]).pvalue
    assert p.shape == (2, 2)


def test_exclusion_removes_a_point_source_from_the_test():
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(1, 41, 41))
    frames[0, 20, 30] += 40.0  # a bright source 10 px right of the star
    with_source = shapiro_pvalues(frames, [8.0, 12.0], 3.0)
    masked = shapiro_pvalues(frames, [8.0, 12.0], 3.0, exclude_xy=[(30, 20)])
    assert with_source[0, 0] < 1e-6 < 0.05 < masked[0, 0]


def test_too_few_samples_warns_and_gives_nan():
    frames = np.random.default_rng(2).normal(size=(1, 41, 41))
    with pytest.warns(SodinnWarning, match="keeps 0 sample"):
        p = shapiro_pvalues(frames, [8.0, 12.0], 3.0, exclude_xy=[(30, 20)], exclude_radius_px=30.0)
    assert np.isnan(p).all()


def test_regime_boundary_rule():
    edges = 4.0 + 4.0 * np.arange(7)
    low, high = 1e-4, 0.5
    cases = {
        (high, high, high, high, high, high): 4.0,  # all Gaussian: no speckle regime
        (low, low, low, low, low, low): 28.0,  # all speckle: no background regime
        (low, low, low, high, high, high): 16.0,
        (low, low, high, low, low, high): 24.0,  # a stray Gaussian annulus inside the run
        (high, low, low, low, high, high): 20.0,  # speckle outweighs one Gaussian annulus at the start
        (low, high, high, high, high, low): 8.0,  # a stray speckle annulus far out is ignored
    }
    for rows, expected in cases.items():
        pmap = np.repeat(np.array(rows)[:, None], 3, axis=1)
        assert regime_boundary(pmap, edges)[1] == expected, rows
    # the vote: 1 of 3 ranks rejecting is not a majority, but is more than a quarter
    pmap = np.array([[low, high, high]] * 6)
    assert regime_boundary(pmap, edges)[1] == 4.0
    assert regime_boundary(pmap, edges, vote=0.25)[1] == 28.0
    # annuli without a p-value count for neither regime
    pmap = np.array([[low] * 3, [np.nan] * 3, [low] * 3, [high] * 3, [high] * 3, [high] * 3])
    assert regime_boundary(pmap, edges)[1] == 16.0


def test_labels():
    r = NoiseRegimes(np.zeros((3, 1)), np.array([4.0, 8.0, 12.0, 16.0]), np.array([1]), 0.05, 0.5,
                     np.array([True, True, False]), 12.0, 4.0, "full", "pixels")
    assert r.boundary_lod == 3.0 and r.has_speckle_regime
    assert r.label([0.0, 11.99, 12.0, 100.0]).tolist() == [0, 0, 1, 1]
    labels = r.label_map((31, 31))
    assert labels[15, 15] == 0 and labels[15, 15 + 12] == 1 and labels[15, 15 + 11] == 0
    with pytest.raises(ValueError, match="sep_px"):
        r.label([-1.0])


def test_bad_settings_name_the_parameter():
    syn = make_adi_sequence(n_frames=8, size_px=SIZE, fwhm_px=FWHM, seed=0)
    seq = ADISequence(syn.cube, syn.angles_deg, syn.psf, syn.fwhm_px)
    with pytest.raises(SettingError, match="alpha"):
        noise_regimes(seq, alpha=1.5)
    with pytest.raises(SettingError, match="vote"):
        noise_regimes(seq, vote=1.0)
    with pytest.raises(SettingError, match="ks"):
        noise_regimes(seq, ks=[3, 2])
    with pytest.raises(SettingError, match="ks"):
        noise_regimes(seq, ks=[1, 50])
    with pytest.raises(ValueError, match="sample"):
        noise_regimes(seq, sample="voxels")
    with pytest.raises(ValueError, match="method"):
        noise_regimes(seq, method="klip")
    with pytest.raises(TypeError, match="ADISequence"):
        noise_regimes(syn.cube)
    with pytest.raises(ValueError, match="pmap"):
        regime_boundary(np.zeros(3), [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="edges_px"):
        regime_boundary(np.zeros((3, 2)), [1.0, 2.0, 3.0])


def test_naco_beta_pic_b_makes_its_annulus_non_gaussian_unless_masked(naco):
    """beta Pic b (~17.7 px, 3.7 lambda/D) is a point source: its annulus rejects normality until it is excluded."""
    from tests.conftest import BETA_PIC_B_XY

    ks = [2, 5, 10, 20]
    bare = noise_regimes(naco, ks=ks, sample="apertures")
    masked = noise_regimes(naco, ks=ks, sample="apertures", exclude_xy=[BETA_PIC_B_XY])
    ring = int(np.searchsorted(bare.edges_px, np.hypot(BETA_PIC_B_XY[0] - 50, BETA_PIC_B_XY[1] - 50)) - 1)
    assert (bare.pmap[ring] < 0.01).all()
    assert (masked.pmap[ring] > 0.05).all()
    assert bare.speckle[ring] and not masked.speckle[ring]
