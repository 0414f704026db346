"""The ROC harness on tiny synthetic cases with a known answer, its cache and its command line."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from sodinn.adi.sequence import ADISequence
from sodinn.config import RocConfig
from sodinn.datasets import make_adi_sequence
from sodinn.detect.probability import UNEVALUATED_LOGIT
from sodinn.evaluate.roc import DataMap, comparison_groups, roc_injections, run_roc, summarize, tpr_at
from sodinn.pipeline.roc import roc_report

MODEL = Path(__file__).resolve().parents[2] / "models" / "synthetic-sodinn-k10-p9"


@pytest.fixture(scope="module")
def synthetic():
    data = make_adi_sequence(n_frames=30, size_px=63, fwhm_px=4.0, seed=5)
    return ADISequence(cube=data.cube, angles_deg=data.angles_deg, psf=data.psf, fwhm_px=4.0)


def _config(**kw):
    base = dict(bands_lambda_d=((1.5, 3.0),), copies_per_band=3, baselines=("median", "pca", "annular-5"),
                snr_thresholds=(0.5, 1.0, 3.0, 5.0), prob_thresholds=(0.1, 0.5, 0.99))
    return RocConfig(**{**base, **kw})


@pytest.mark.slow
def test_bright_companion_is_found_by_every_method(synthetic, tmp_path):
    result = roc_report(synthetic, _config(flux_range=(3000.0, 3000.0)), {"sodinn": MODEL}, tmp_path, n_jobs=1,
                        progress=False)
    high = {r["method"]: r for r in result.rows if r["threshold"] in (0.99, 5.0) and r["kind"] != "calibrated"}
    assert set(high) == {"sodinn", "median", "pca", "annular-5"}
    cal = sorted((r for r in result.rows if r["method"] == "sodinn-cal"), key=lambda r: r["threshold"])
    assert [r["threshold"] for r in cal] == list(_config().fp_targets)
    assert any(r["tpr"] == 1.0 for r in cal if r["threshold"] <= 10)  # (at 100 per frame the band is one blob)
    assert all(0 < r["expected_fp"] < r["threshold"] for r in cal)  # the band holds a share of the field's target
    data = result.calibrations["sodinn"]  # each copy self-calibrated within the data's whole-field map
    assert isinstance(data, DataMap) and data.logit.shape == synthetic.cube.shape[1:]
    r = np.hypot(*(np.indices(data.logit.shape) - (synthetic.cube.shape[1] - 1) / 2))
    evaluated = data.logit > UNEVALUATED_LOGIT / 2
    assert evaluated[r < 1.5 * 4.0].any() and evaluated[r > 3.0 * 4.0].any()  # annuli inside and outside the band
    for row in high.values():
        assert row["n_injections"] == 3 and row["tp"] == 3 and row["tpr"] == 1.0
        assert row["f1"] == pytest.approx(2 * 3 / (2 * 3 + row["fp"]))
    # the lowest thresholds let speckles through: more false positives than at the highest
    for method in high:
        rows = sorted((r for r in result.rows if r["method"] == method), key=lambda r: r["threshold"])
        assert rows[0]["mean_fp"] > rows[-1]["mean_fp"]
    assert tpr_at(result.rows, "sodinn", 0, 1.0) == 1.0
    for name in ("roc.csv", "roc.png", "summary.txt", "injections.ecsv", "config.toml", "provenance.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert "sodinn / best annular PCA" in (tmp_path / "summary.txt").read_text()


@pytest.mark.slow
def test_empty_copies_count_false_positives_and_leave_tpr_undefined(synthetic):
    result = run_roc(synthetic, _config(flux_range=(0.0, 0.0)), {}, n_jobs=1, progress=False)
    assert {r["kind"] for r in result.rows} == {"snr"}
    assert all(r["n_injections"] == 0 and math.isnan(r["tpr"]) and r["tp"] == 0 for r in result.rows)
    low = [r for r in result.rows if r["threshold"] == 0.5]
    assert all(r["mean_fp"] > 0 for r in low)  # S/N 0.5 lets plenty of speckle blobs through
    assert all(r["fdr"] == 1.0 for r in low)


@pytest.mark.slow
def test_cache_resumes_and_parallel_equals_serial(synthetic, tmp_path, monkeypatch):
    import sodinn.evaluate.copies as copies

    config = _config(flux_range=(300.0, 900.0), baselines=("pca", "annular-5"))
    cache = tmp_path / "cache"
    first = run_roc(synthetic, config, {}, cache_dir=cache, n_jobs=2, progress=False)
    calls = []
    real = copies.copy_maps
    monkeypatch.setattr(copies, "copy_maps", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = run_roc(synthetic, config, {}, cache_dir=cache, n_jobs=1, progress=False)
    assert calls == [] and json.dumps(again.rows) == json.dumps(first.rows)  # everything came from the cache (NaN-safe)
    cached = sorted((tmp_path / "cache").rglob("*.npy"))
    assert len(cached) == 3 * 2 and {p.parent.name for p in cached} == {"pca-cevr0.9", "annular-5"}
    cached[1].unlink()  # as if the run had been interrupted before this map
    resumed = run_roc(synthetic, config, {}, cache_dir=cache, n_jobs=1, progress=False)
    assert len(calls) == 1 and json.dumps(resumed.rows) == json.dumps(first.rows)  # serial equals the parallel run
    # adding a method reuses the maps of the others: only the new one is computed
    more = run_roc(synthetic, _config(flux_range=(300.0, 900.0), baselines=("pca", "annular-5", "median")), {},
                   cache_dir=cache, n_jobs=1, progress=False)
    assert len(calls) == 1 + 3 and {r["method"] for r in more.rows} == {"pca", "annular-5", "median"}
    assert len(list((tmp_path / "cache").rglob("median/*.npy"))) == 3


def test_injections_are_reproducible_and_avoid_known_sources(synthetic):
    config = _config(copies_per_band=40, flux_range=(10.0, 20.0), known_sources_xy=((40.0, 31.0),), mask_radius_fwhm=2.0)
    a, b = roc_injections(synthetic, config), roc_injections(synthetic, config)
    assert a == b
    assert a != roc_injections(synthetic, RocConfig(**{**config.__dict__, "seed": 1}))
    xy = np.array([(i.x, i.y) for i in a])
    assert np.hypot(xy[:, 0] - 40.0, xy[:, 1] - 31.0).min() > 8.0
    sep = np.array([i.sep_px for i in a])
    assert sep.min() >= 6.0 and sep.max() < 12.0
    flux = np.array([i.flux for i in a])
    assert flux.min() >= 10.0 and flux.max() <= 20.0


def test_summary_ratios():
    rows = [dict(method=m, kind=k, band=0, band_lambda_d="1-2", threshold=t, tpr=tpr, mean_fp=fp)
            for m, k, t, tpr, fp in [("net", "probability", 0.5, 0.9, 0.4), ("net", "probability", 0.9, 0.6, 0.05),
                                     ("annular-5", "snr", 3.0, 0.3, 0.4), ("annular-5", "snr", 5.0, 0.1, 0.0),
                                     ("annular-10", "snr", 3.0, 0.2, 0.3)]]
    assert tpr_at(rows, "net", 0, 0.1) == 0.6 and tpr_at(rows, "annular-5", 0, 0.5) == 0.3
    text = summarize(rows, ["net"])
    assert "6.00x" in text and "3.00x" in text  # 0.6 / 0.1 at 0.1 FP, 0.9 / 0.3 at 0.5 FP
    assert "best annular PCA" in text and "net / best PCA" in text


def test_comparison_groups_come_from_the_baseline_registry():
    ranks, families = comparison_groups(["net", "median", "pca", "annular-5", "annular-10", "net-cal"])
    assert ranks == [("best annular PCA", ["annular-5", "annular-10"])]  # full-frame PCA at its default: no group of its own
    assert families == [("best PCA", ["pca", "annular-5", "annular-10"])]  # the models and median-ADI are left out
    assert comparison_groups(["pca-5", "pca-10", "annular-10"])[0] == [("best full-frame PCA", ["pca-5", "pca-10"]),
                                                                        ("best annular PCA", ["annular-10"])]


def test_bad_settings_are_refused_before_work(synthetic, tmp_path):
    with pytest.raises(ValueError, match="bands_lambda_d"):
        RocConfig(bands_lambda_d=((3.0, 2.0),))
    with pytest.raises(ValueError, match="prob_thresholds must lie in"):
        RocConfig(prob_thresholds=(0.5, 1.5))
    with pytest.raises(ValueError, match="unknown ROC setting"):
        RocConfig.from_dict({"copies": 3})
    with pytest.raises(ValueError, match="beyond the last separation"):
        run_roc(synthetic, RocConfig(bands_lambda_d=((6.0, 9.0),)), {}, progress=False)
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        run_roc(synthetic, _config(), {"net": tmp_path}, progress=False)
    with pytest.raises(ValueError, match="unknown baseline 'loci'"):
        run_roc(synthetic, _config(baselines=("loci",)), {}, progress=False)
    with pytest.raises(ValueError, match="clashes with a baseline"):
        run_roc(synthetic, _config(), {"annular-5": MODEL}, progress=False)


@pytest.mark.slow
def test_copies_on_a_dask_cluster_score_like_in_process(synthetic):
    from distributed import Client, LocalCluster

    config = _config(flux_range=(300.0, 900.0), baselines=("annular-5",), copies_per_band=2)
    local = run_roc(synthetic, config, {"net": MODEL}, n_jobs=1, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster, set_as_default=False) as client:
        remote = run_roc(synthetic, config, {"net": MODEL}, scheduler=client, progress=False)
    assert json.dumps(remote.rows) == json.dumps(local.rows)
    with pytest.raises(ValueError, match="scheduler"):
        run_roc(synthetic, config, {}, scheduler="htp://nowhere", progress=False)


def test_best_single_threshold_sums_every_band_before_f1():
    from sodinn.evaluate.roc import best_f1

    rows = [{"method": "m", "band": b, "threshold": t, "tp": tp, "true_blobs": tp, "fp": fp, "fn": 10 - tp, "n_copies": 10,
             "n_injections": 10} for b in (0, 1) for t, tp, fp in ((1.0, 9, 6.0), (2.0, 8, 0.0))]
    best = best_f1(rows, "m")
    assert best["threshold"] == 2.0 and best["f1"] == pytest.approx(2 * 16 / (2 * 16 + 0 + 4))
    assert best["tpr"] == pytest.approx(0.8) and best["fdr"] == 0.0 and best["mean_fp"] == 0.0
    rows[1]["fp"] = 0.0  # band 1 at threshold 1 loses its false positives: still one band with 6
    assert best_f1(rows, "m")["threshold"] == 2.0
    assert best_f1(rows, "other") is None


def test_calibration_checks_use_the_poisson_range_of_the_expected_count():
    from scipy.stats import poisson

    from sodinn.evaluate.roc import calibration_checks

    rows = [{"kind": "calibrated", "method": "m-cal", "band": 0, "threshold": f, "expected_fp": f / 2, "fp": fp,
             "mean_fp": fp / 100, "n_copies": 100} for f, fp in ((0.1, 5.0), (1.0, 80.0))]
    rows.append({"kind": "probability", "method": "m", "band": 0, "threshold": 0.9, "fp": 3.0, "n_copies": 100})
    checks = calibration_checks(rows)
    assert [c["threshold"] for c in checks] == [0.1, 1.0]
    lo, hi = poisson.interval(0.95, 5.0)
    assert checks[0]["expected_count"] == pytest.approx(5.0) and checks[0]["ok"] and (checks[0]["low"], checks[0]["high"]) == (lo, hi)
    assert checks[1]["expected_count"] == pytest.approx(50.0) and not checks[1]["ok"]  # 80 counted, 50 +- 14 expected


def test_summary_prints_f1_and_the_calibration_check():
    rows = []
    for t, tp, fp in ((0.5, 9, 30.0), (0.9, 7, 2.0)):
        rows.append(dict(method="net", kind="probability", band=0, band_lambda_d="1-2", threshold=t, tp=tp, true_blobs=tp, fp=fp,
                         fn=10 - tp, n_copies=10, n_injections=10, tpr=tp / 10, mean_fp=fp / 10, expected_fp=float("nan")))
    rows.append(dict(method="annular-5", kind="snr", band=0, band_lambda_d="1-2", threshold=3.0, tp=5, true_blobs=5, fp=1.0,
                     fn=5, n_copies=10, n_injections=10, tpr=0.5, mean_fp=0.1, expected_fp=float("nan")))
    rows.append(dict(method="net-cal", kind="calibrated", band=0, band_lambda_d="1-2", threshold=1.0, tp=6, true_blobs=6, fp=40.0,
                     fn=4, n_copies=10, n_injections=10, tpr=0.6, mean_fp=4.0, expected_fp=0.5))
    rows.append(dict(method="net-cal", kind="calibrated", band=1, band_lambda_d="2-3", threshold=1.0, tp=6, true_blobs=6, fp=9.0,
                     fn=24, n_copies=30, n_injections=30, tpr=0.2, mean_fp=0.3, expected_fp=0.3))
    text = summarize(rows, ["net", "net-cal"])
    assert "F1 0.74  TPR 0.70  FDR 0.22" in text  # threshold 0.9: 2*7 / (14 + 2 + 3), 2 / (7 + 2)
    assert "0.5->4 OFF" in text and "1 of 2 counts within the Poisson 95% range" in text
    # the bands together: (0.5 * 10 + 0.3 * 30) / 40 = 0.35 expected, (40 + 9) / 40 counted: 49 is out of Poisson(14)'s range
    assert any(line.startswith("all bands") and "net-cal" in line and "0.35->1.2 OFF" in line for line in text.splitlines())


def test_a_copy_is_calibrated_on_its_whole_field_the_data_map_around_its_band():
    """A copy's map covers its band's annuli only; the rest of its field is the data's map (DataMap.around)."""
    data = np.arange(25.0).reshape(5, 5)
    copy = np.full((5, 5), UNEVALUATED_LOGIT)
    copy[1:3, 1:4] = -7.0
    whole = DataMap(np.array([0.0, 2.0, 4.0]), data).around(copy)
    assert whole.dtype == np.float64
    np.testing.assert_array_equal(whole[1:3, 1:4], -7.0)  # the copy's band
    outside = np.ones((5, 5), dtype=bool)
    outside[1:3, 1:4] = False
    np.testing.assert_array_equal(whole[outside], data[outside])  # the data elsewhere
