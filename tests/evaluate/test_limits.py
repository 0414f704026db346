"""Detection limits: the 95%-TPR flux of a model and of annular PCA-ADI on the same injected copies, and its fit."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sodinn.adi.sequence import ADISequence
from sodinn.config import LimitConfig
from sodinn.datasets import make_adi_sequence
from sodinn.evaluate.limits import detection_limits, flux_at_tpr
from sodinn.pipeline.limits import write_limits

MODEL = Path(__file__).resolve().parents[2] / "models" / "synthetic-sodinn-k10-p9"


@pytest.fixture(scope="module")
def synthetic():
    data = make_adi_sequence(n_frames=30, size_px=63, fwhm_px=4.0, seed=5)
    return ADISequence(cube=data.cube, angles_deg=data.angles_deg, psf=data.psf, fwhm_px=4.0)


def test_flux_at_tpr_reads_the_isotonic_fit_in_log_flux():
    fluxes = np.repeat([10.0, 20.0, 40.0, 80.0, 160.0], 10)
    detected = np.concatenate([np.zeros(10), np.r_[np.ones(2), np.zeros(8)], np.r_[np.ones(4), np.zeros(6)],
                               np.r_[np.ones(9), np.zeros(1)], np.ones(10)])
    flux, levels, fit = flux_at_tpr(fluxes, detected, 0.95)
    np.testing.assert_allclose(fit, [0.0, 0.2, 0.4, 0.9, 1.0])
    assert flux == pytest.approx(80.0 * 2 ** 0.5)  # halfway from 0.9 to 1.0, halfway in log flux
    # a dip is pooled (monotone fit), and the target is met at the first level that reaches it
    _, _, fit = flux_at_tpr([1, 1, 2, 2, 4, 4], [1, 0, 0, 0, 1, 1], 0.6)
    np.testing.assert_allclose(fit, [0.25, 0.25, 1.0])
    # levels above the first that reaches the target are not fitted: bright companions lost to the blob rule
    # (measured 1.0 then 0.8) do not drag the limit
    flux, _, fit = flux_at_tpr(np.repeat([10.0, 20.0, 40.0], 5), np.r_[np.zeros(5), np.ones(5), np.ones(4), 0], 0.95)
    assert fit[:2].tolist() == [0.0, 1.0] and math.isnan(fit[2])
    assert flux == pytest.approx(10.0 * 2**0.95)
    # outside the ladder: NaN
    assert 2 < flux_at_tpr([1, 2, 4], [0, 0, 1], 0.95)[0] < 4
    assert math.isnan(flux_at_tpr([1, 2, 4], [0, 0, 0], 0.95)[0])
    assert math.isnan(flux_at_tpr([1, 2, 4], [1, 1, 1], 0.95)[0])
    with pytest.raises(ValueError, match="positive"):
        flux_at_tpr([0.0, 1.0], [0, 1])


def test_pca_limits_use_the_same_copies_and_resume_from_the_cache(synthetic, tmp_path, monkeypatch):
    import sodinn.evaluate.copies as copies

    config = LimitConfig(separations_lambda_d=(2.5, 3.5), copies_per_flux=2, flux_ladder=(100.0, 1000.0, 10000.0),
                         baselines=("annular-5",), known_sources_xy=((31.0 + 14.0, 31.0),), mask_radius_fwhm=2.0)
    first = detection_limits(synthetic, config, cache_dir=tmp_path, n_jobs=2, progress=False)
    assert first.methods == ["annular-5"] and first.detected["annular-5"].shape == (2, 3, 2)
    inj = first.injections
    assert len(inj) == 12 and [i.flux for i in inj[:6]] == [100.0, 100.0, 1000.0, 1000.0, 10000.0, 10000.0]
    assert min(math.hypot(i.x - 45.0, i.y - 31.0) for i in inj) > 8.0
    tpr = first.tpr("annular-5")
    assert np.all(tpr[:, -1] == 1.0) and np.all(tpr[:, 0] == 0.0)  # 100 is invisible, 10000 always found
    assert np.all(np.isfinite(first.flux_limit["annular-5"]))
    calls = []
    real = copies.copy_maps
    monkeypatch.setattr(copies, "copy_maps", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = detection_limits(synthetic, config, cache_dir=tmp_path, n_jobs=1, progress=False)
    assert calls == []  # every copy came from the cache
    np.testing.assert_array_equal(again.detected["annular-5"], first.detected["annular-5"])
    # a higher S/N threshold on the same copies finds fewer companions, never more
    strict = detection_limits(synthetic, config, thresholds={"annular-5": 20.0}, cache_dir=tmp_path, n_jobs=1, progress=False)
    assert calls == [] and np.all(strict.detected["annular-5"] <= first.detected["annular-5"])
    assert strict.tpr("annular-5").sum() < tpr.sum()


@pytest.mark.slow
def test_model_limit_rises_with_flux_and_lies_in_the_ladder(synthetic, tmp_path):
    config = LimitConfig(separations_lambda_d=(2.5,), copies_per_flux=3, flux_factors=(0.3, 1.0, 3.0, 10.0, 30.0),
                         baselines=("annular-5",))
    result = detection_limits(synthetic, config, {"net": MODEL}, thresholds={"net": 0.99}, n_jobs=1, progress=False)
    assert result.methods == ["net", "annular-5"]
    ladder = result.fluxes[0]
    assert result.snr1_flux is not None and ladder == pytest.approx(result.snr1_flux[0] * np.array(config.flux_factors))
    for method in result.methods:
        tpr = result.tpr(method)[0]
        assert tpr[:2].max() < tpr[-2:].min()  # faint copies missed more often than bright ones
        fit = result.tpr_fit[method][0]
        assert np.all(np.diff(fit[np.isfinite(fit)]) >= 0)
        limit = result.flux_limit[method][0]
        assert ladder[0] < limit < ladder[-1]
        i = np.searchsorted(ladder, limit)
        assert result.tpr_fit[method][0, i - 1] < 0.95 <= result.tpr_fit[method][0, i]
    rows = result.rows(star_flux=1e6)
    assert {r["method"] for r in rows} == {"net", "annular-5"}
    assert rows[0]["contrast_limit"] == pytest.approx(rows[0]["flux_limit"] / 1e6)
    written = write_limits(tmp_path, limits=result, star_flux=1e6)
    assert [p.name for p in written] == ["detection_limits.csv", "tpr.csv", "limits.png"]
    assert all(p.stat().st_size > 0 for p in written)


def test_bad_settings_are_refused_before_work(synthetic):
    with pytest.raises(ValueError, match="separations_lambda_d"):
        LimitConfig(separations_lambda_d=())
    with pytest.raises(ValueError, match="flux_ladder"):
        LimitConfig(flux_ladder=(5.0,))
    with pytest.raises(ValueError, match="tpr_target"):
        LimitConfig(tpr_target=1.0)
    with pytest.raises(ValueError, match="unknown limits setting"):
        LimitConfig.from_dict({"copies": 3})
    assert LimitConfig.from_dict(LimitConfig(known_sources_xy=((1.0, 2.0),)).to_dict()) == LimitConfig(known_sources_xy=((1.0, 2.0),))
    with pytest.raises(ValueError, match="separations must lie between"):
        detection_limits(synthetic, LimitConfig(separations_lambda_d=(9.0,)), progress=False)
    with pytest.raises(ValueError, match="unknown method"):
        detection_limits(synthetic, LimitConfig(flux_ladder=(1.0, 2.0)), thresholds={"net": 0.5}, progress=False)
    with pytest.raises(ValueError, match="one per separation"):
        detection_limits(synthetic, LimitConfig(flux_ladder=(1.0, 2.0)), thresholds={"annular-10": [1.0, 2.0]}, progress=False)
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        detection_limits(synthetic, LimitConfig(flux_ladder=(1.0, 2.0)), {"net": "/nonexistent"}, progress=False)
    with pytest.raises(ValueError, match="unknown baseline 'loci'"):
        detection_limits(synthetic, LimitConfig(flux_ladder=(1.0, 2.0), baselines=("loci-3",)), progress=False)
