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


# ---------------------------------------------------------------- contrast limits (sodinn limits)

def _scaled(seq, scale=0.0272):
    return ADISequence(cube=seq.cube, angles_deg=seq.angles_deg, psf=seq.psf, fwhm_px=seq.fwhm_px, pixel_scale_arcsec=scale)


QUICK = dict(copies_per_flux=1, flux_ladder=(5.0, 50.0), classical_azimuths=1, classical_step_fwhm=2.0, oracle_azimuths=1)


@pytest.fixture(scope="module")
def quick_limits(synthetic):
    """Both curves on the 63 px synthetic sequence, star flux scaled by 10 s / 0.5 s / 1 % ND = 2000 x the PSF's."""
    from sodinn.evaluate.limits import contrast_limits

    config = LimitConfig(**QUICK, psf_exposure_s=0.5, cube_exposure_s=10.0, psf_nd_transmission=0.01)
    return contrast_limits(_scaled(synthetic), config, n_jobs=1, progress=False)


def test_contrast_limits_table_speaks_contrast_delta_mag_and_arcsec(quick_limits, synthetic):
    import astropy.units as u

    from sodinn.adi.psf import aperture_flux

    r = quick_limits
    assert r.star_flux == pytest.approx(aperture_flux(synthetic.psf, 4.0) * 10.0 / 0.5 / 0.01, rel=1e-12)
    t = r.table()
    assert t.colnames[:9] == ["curve", "method", "sep_px", "sep_lambda_d", "sep_arcsec", "sep_mas", "flux_limit", "contrast",
                              "delta_mag"]
    assert (t["sep_px"].unit, t["sep_arcsec"].unit, t["sep_mas"].unit, t["delta_mag"].unit) == (u.pix, u.arcsec, u.mas, u.mag)
    assert set(t["curve"]) == {"classical", "tpr"} and set(t["method"]) == {"annular-10"}
    np.testing.assert_allclose(t["sep_arcsec"], t["sep_px"] * 0.0272, rtol=1e-15)
    np.testing.assert_allclose(t["sep_mas"], t["sep_px"] * 27.2, rtol=1e-12)
    np.testing.assert_allclose(t["sep_lambda_d"], t["sep_px"] / 4.0, rtol=1e-15)
    np.testing.assert_allclose(t["contrast"], t["flux_limit"] / r.star_flux, rtol=1e-15)
    ok = np.isfinite(t["contrast"]) & (t["contrast"] > 0)
    assert ok.sum() >= 3
    np.testing.assert_allclose(t["delta_mag"][ok], -2.5 * np.log10(t["contrast"][ok]), rtol=1e-12)
    assert np.all(np.isnan(t["delta_mag"][~ok]))  # a limit not reached (NaN flux) has no delta mag
    classical = t[t["curve"] == "classical"]
    np.testing.assert_allclose(classical["flux_limit"], r.classical.flux_limit, rtol=1e-15)
    np.testing.assert_allclose(classical["sep_px"], [4.0, 12.0, 20.0], rtol=1e-12)  # every 2 FWHM from 1 FWHM
    assert list(t[t["curve"] == "tpr"]["sep_px"]) == pytest.approx([6.0, 10.0, 14.0])  # 1.5, 2.5, 3.5 lambda/D
    assert t.meta["star_flux"] == r.star_flux and t.meta["pixel_scale_arcsec"] == 0.0272
    assert "Student" in t.meta["classical_method"] and "95% of the companions" in t.meta["tpr_method"]


def test_contrast_limits_refuse_before_any_work(synthetic, monkeypatch):
    from sodinn.evaluate.limits import contrast_limits
    from sodinn.exceptions import SettingError

    def no_work(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr("sodinn.evaluate.limits.classical_contrast_curve", no_work)
    monkeypatch.setattr("sodinn.evaluate.limits._run", no_work)
    with pytest.raises(SettingError, match=r"^the separations in arcsec need the pixel scale: pass pixel_scale_arcsec$"):
        contrast_limits(synthetic, LimitConfig(**QUICK), n_jobs=1)
    with pytest.raises(SettingError, match="choose separations_lambda_d in that range"):
        contrast_limits(_scaled(synthetic), LimitConfig(**{**QUICK, "separations_lambda_d": (9.0,)}), n_jobs=1)
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        contrast_limits(_scaled(synthetic), LimitConfig(**QUICK), {"net": "/nonexistent"}, n_jobs=1)


def test_too_many_classical_components_name_their_setting(synthetic):
    from sodinn.evaluate.limits import contrast_limits
    from sodinn.exceptions import SettingError

    with pytest.raises(SettingError, match=r"are more than annular PCA-ADI can use .*use at most classical_ncomp=\d+$"):
        contrast_limits(_scaled(synthetic), LimitConfig(**{**QUICK, "classical_ncomp": 500}), n_jobs=1, progress=False)


def test_limit_settings_are_checked():
    with pytest.raises(ValueError, match=r"psf_nd_transmission .* in \(0, 1\]; got 50.0 \(an attenuation factor\? pass 1 / 50\)"):
        LimitConfig(psf_nd_transmission=50.0)
    for name in ("psf_exposure_s", "cube_exposure_s", "sigma", "injection_snr", "classical_step_fwhm"):
        with pytest.raises(ValueError, match=f"{name} must be > 0"):
            LimitConfig(**{name: 0.0})
    with pytest.raises(ValueError, match="convention must be one of 'mawet', 'vip'"):
        LimitConfig(convention="photutils")
    with pytest.raises(TypeError, match="classical must be true or false"):
        LimitConfig(classical="yes")  # type: ignore[arg-type]
    assert LimitConfig(psf_exposure_s=0.5, cube_exposure_s=2.0, psf_nd_transmission=0.25).star_flux_scale == 16.0
    config = LimitConfig(convention="vip", classical=False, psf_nd_transmission=0.02)
    assert LimitConfig.from_dict(config.to_dict()) == config
