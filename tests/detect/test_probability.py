import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from sodinn.adi.sequence import ADISequence  # noqa: E402
from sodinn.datasets import make_adi_sequence  # noqa: E402
from sodinn.detect.candidates import find_candidates  # noqa: E402
from sodinn.detect.probability import probability_map  # noqa: E402
from sodinn.learn.artifact import load_trained  # noqa: E402

MODEL = Path(__file__).resolve().parents[2] / "models" / "synthetic-sodinn-k10-p9"


def test_probability_map_finds_the_bright_demo_companion():
    data = make_adi_sequence(n_frames=40, size_px=63, fwhm_px=4.0, field_rotation_deg=60.0,
                             companions=[(12.0, 50.0, 1500.0), (20.0, 200.0, 250.0)], seed=0)
    seq = ADISequence(data.cube, data.angles_deg, data.psf, data.fwhm_px, data.pixel_scale_arcsec)
    pmap = probability_map(seq, load_trained(MODEL), progress=False)
    assert pmap.probability.shape == (63, 63)
    assert (pmap.probability[~pmap.evaluated] == 0).all() and pmap.evaluated.sum() > 1000
    assert 0 <= pmap.probability.min() and pmap.probability.max() <= 1
    bright = data.companions[0]
    near = np.hypot(*(np.indices((63, 63))[::-1] - np.array([bright.x_px, bright.y_px])[:, None, None])) < 2
    assert pmap.probability[near].max() > 0.9
    table = find_candidates(pmap.probability, 0.9, pixel_scale_arcsec=0.0272)
    d = np.hypot(table["x"] - bright.x_px, table["y"] - bright.y_px)
    assert d.min() < 2.0
    assert table["sep_arcsec"][0] == pytest.approx(table["sep_px"][0] * 0.0272)



def test_annulus_features_curves_are_snr_curves_of_the_residual_frames(small_sequence):
    """Prediction curves (real cube +PA, and a null draw) equal snr_curves on the slow path's residual frames."""
    from sodinn.config import SampleConfig
    from sodinn.detect.probability import annulus_features, null_angle_sets
    from sodinn.mlar.features import snr_curves
    from sodinn.mlar.samples import sample_annuli

    from ..reference.mlar import slow_frames

    seq = small_sequence
    cfg = SampleConfig(patch_px=9, n_ranks=5)
    edges = sample_annuli(seq, cfg).edges_px
    nulls = null_angle_sets(seq.angles_deg, 1)  # the negated angles: the C- rule
    built = annulus_features(seq, cfg, edges[1], edges[2], null_angles=nulls, snr_curves=True)
    assert built.snr_curves.shape == (len(built.pixels), len(built.ks)) and len(built.null_snr_curves) == 1
    xy = built.pixels[:, ::-1].astype(float)
    for positive, got in ((True, built.snr_curves), (False, built.null_snr_curves[0])):
        frames = slow_frames(seq.cube, seq.angles_deg, None, edges[1], edges[2], cfg.patch_px, built.ks, x=0.0, y=0.0,
                             positive=positive)
        assert np.abs(got).max() > 1.0
        np.testing.assert_allclose(got, snr_curves(frames, xy, seq.fwhm_px), rtol=1e-6, atol=1e-6)
    plain = annulus_features(seq, cfg, edges[1], edges[2])
    np.testing.assert_array_equal(plain.samples, built.samples)  # the curves and null draws leave the samples as they are
    assert plain.snr_curves is None and plain.null_samples == []


def test_probability_map_feeds_the_curves_to_a_sodinn_snr_model(small_sequence, tmp_path):
    from sodinn.config import SampleConfig, TrainConfig
    from sodinn.detect.probability import annulus_features, null_angle_sets
    from sodinn.learn.artifact import save_model
    from sodinn.learn.models import build_model
    from sodinn.mlar.samples import sample_annuli

    seq = small_sequence
    cfg = SampleConfig(patch_px=9, n_ranks=5)
    folder = save_model(build_model("sodinn-snr", (5, 9, 9, 1)), tmp_path / "m", train_config=TrainConfig(model="sodinn-snr"),
                        sample_config=cfg, provenance={"sequence": {"fwhm_px": seq.fwhm_px}}, geometry={},
                        input_shape=(5, 9, 9, 1), training_set={"file": "s.h5", "sha256": "0" * 64}, metrics={})
    model = load_trained(folder)
    pmap = probability_map(seq, model, progress=False, n_null=2, seed=1)
    assert np.isfinite(pmap.logit).all() and pmap.evaluated.sum() > 500
    edges = sample_annuli(seq, cfg).edges_px
    built = annulus_features(seq, cfg, edges[0], edges[1], null_angles=null_angle_sets(seq.angles_deg, 2, 1), snr_curves=True)
    rows, cols = built.pixels[:, 0], built.pixels[:, 1]
    np.testing.assert_allclose(pmap.logit[rows, cols], model.predict_logits(built.samples, built.snr_curves), rtol=1e-5, atol=1e-5)
    expected_null = model.predict_logits(built.null_samples[1], built.null_snr_curves[1])
    np.testing.assert_allclose(pmap.null_logit[1][rows, cols], expected_null, rtol=1e-5, atol=1e-5)
    # the curves matter: the same samples with the curves of the other draw score otherwise
    assert not np.allclose(model.predict_logits(built.null_samples[1], built.null_snr_curves[0]), expected_null)


def test_annulus_features_curves_leave_known_sources_out_of_their_noise_apertures(small_sequence):
    """Prediction curves with known sources equal snr_curves(exclude_xy, mask_radius_fwhm FWHM) on the slow frames."""
    from sodinn.adi.geometry import frame_center
    from sodinn.config import SampleConfig
    from sodinn.detect.probability import annulus_features, null_angle_sets
    from sodinn.mlar.features import snr_curves
    from sodinn.mlar.samples import sample_annuli

    from ..reference.mlar import slow_frames

    seq = small_sequence
    cfg = SampleConfig(patch_px=9, n_ranks=3)
    edges = sample_annuli(seq, cfg).edges_px
    cy, cx = frame_center(seq.cube.shape)
    source = [(cx - 0.5 * (edges[1] + edges[2]), cy + 0.3)]
    nulls = null_angle_sets(seq.angles_deg, 1)
    built = annulus_features(seq, cfg, edges[1], edges[2], null_angles=nulls, snr_curves=True, known_sources_xy=source)
    plain = annulus_features(seq, cfg, edges[1], edges[2], snr_curves=True)
    xy = built.pixels[:, ::-1].astype(float)
    radius = cfg.mask_radius_fwhm * seq.fwhm_px
    for positive, got in ((True, built.snr_curves), (False, built.null_snr_curves[0])):
        frames = slow_frames(seq.cube, seq.angles_deg, None, edges[1], edges[2], cfg.patch_px, built.ks, x=0.0, y=0.0,
                             positive=positive)
        expected = snr_curves(frames, xy, seq.fwhm_px, exclude_xy=source, exclude_radius_px=radius)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert not np.allclose(built.snr_curves, plain.snr_curves, rtol=1e-3)
    from sodinn.exceptions import SettingError

    wide = SampleConfig(patch_px=9, n_ranks=3, mask_radius_fwhm=6.0)
    with pytest.raises(SettingError, match=r"only 0 of the .* noise apertures .* 24 px .* the model's mask_radius_fwhm, "
                                           r"6 FWHM\); leave the source out of known_sources_xy"):
        annulus_features(seq, wide, edges[1], edges[2], snr_curves=True, known_sources_xy=source)


def test_probability_map_uses_the_model_known_sources_only_on_its_training_data(small_sequence, tmp_path):
    from sodinn.config import SampleConfig, TrainConfig
    from sodinn.detect.probability import annulus_features
    from sodinn.learn.artifact import save_model
    from sodinn.learn.models import build_model
    from sodinn.mlar.samples import sample_annuli

    seq = small_sequence
    cfg = SampleConfig(patch_px=9, n_ranks=4, known_sources_xy=((14.0, 24.3),))
    files = {"cube_sha256": "a" * 64, "angles_sha256": "b" * 64, "north_offset_deg": 0.0}
    folder = save_model(build_model("sodinn-snr", (4, 9, 9, 1)), tmp_path / "m", train_config=TrainConfig(model="sodinn-snr"),
                        sample_config=cfg, provenance={"sequence": {"fwhm_px": seq.fwhm_px, **files}}, geometry={},
                        input_shape=(4, 9, 9, 1), training_set={"file": "s.h5", "sha256": "0" * 64}, metrics={})
    model = load_trained(folder)
    edges = sample_annuli(seq, cfg).edges_px
    ring = (edges[1] + 0.1, edges[2] - 0.1)  # the annulus of the known source only
    trained_on = ADISequence(seq.cube, seq.angles_deg, seq.psf, seq.fwhm_px, seq.pixel_scale_arcsec, provenance=files)
    own = probability_map(trained_on, model, radii_px=ring, progress=False)
    other = probability_map(seq, model, radii_px=ring, progress=False)  # in memory: not the training data
    given = probability_map(seq, model, radii_px=ring, progress=False, known_sources_xy=[(14.0, 24.3)])
    assert own.known_sources_xy == given.known_sources_xy == ((14.0, 24.3),) and other.known_sources_xy == ()
    np.testing.assert_array_equal(own.logit, given.logit)
    masked = annulus_features(seq, cfg, edges[1], edges[2], snr_curves=True, known_sources_xy=cfg.known_sources_xy)
    plain = annulus_features(seq, cfg, edges[1], edges[2], snr_curves=True)
    rows, cols = masked.pixels[:, 0], masked.pixels[:, 1]
    np.testing.assert_allclose(own.logit[rows, cols], model.predict_logits(masked.samples, masked.snr_curves), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(other.logit[rows, cols], model.predict_logits(plain.samples, plain.snr_curves), rtol=1e-5, atol=1e-5)
    assert not np.allclose(own.logit[rows, cols], other.logit[rows, cols], rtol=1e-4)
