import numpy as np
import pytest

from sodinn.config import SampleConfig
from sodinn.datasets import make_adi_sequence
from sodinn.samples import annulus_samples, make_samples, minmax_normalize, sample_annuli, sample_psf
from sodinn.sequence import ADISequence

from .reference.mlar import slow_sample


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
