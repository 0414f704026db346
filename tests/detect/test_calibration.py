"""Calibrated thresholds: null-score exceedances per annulus, their tail, and a real model's calibration."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sodinn.detect.calibration import Calibration, _logit, calibrate

MODEL = Path(__file__).resolve().parents[2] / "models" / "synthetic-sodinn-k10-p9"


def _calibration(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    z = np.sort(rng.normal(-3.0, 1.0, n))  # null logits of one annulus
    u = float(np.quantile(z, 0.9))
    beta = float((z[z > u] - u).mean())
    return Calibration(edges_px=np.array([4.0, 8.0]), null_logits=(z,), tail_u=np.array([u]), tail_beta=np.array([beta]),
                       tail_fraction=0.1, area_px=150, resolution_px=math.pi * 4.0, n_null=1), z


def test_exceedance_is_the_empirical_fraction_then_the_fitted_tail():
    cal, z = _calibration()
    p = 1 / (1 + np.exp(-z))
    q = cal.exceedance(0, p[[100, 1000, 1900]])
    np.testing.assert_allclose(q, [(2000 - 100) / 2000, 1000 / 2000, 100 / 2000], rtol=1e-12)
    far = cal.exceedance(0, 1 / (1 + np.exp(-np.array([z[-1] + 1.0, z[-1] + 3.0]))))
    assert 0 < far[1] < far[0] <= cal.min_tail / z.size  # the tail goes on decreasing beyond the largest null score
    grid = 1 / (1 + np.exp(-np.linspace(-8, 4, 400)))
    assert np.all(np.diff(cal.exceedance(0, grid)) <= 0)  # monotone


def test_thresholds_hit_their_targets():
    cal, z = _calibration()
    scale = cal.area_px / cal.resolution_px
    for fp in (0.5, 1.0, 5.0):
        t = cal.thresholds(fp)[0]
        assert cal.exceedance(0, np.array([t]))[0] * scale <= fp * (1 + 1e-9)
        # a slightly lower threshold would exceed the target
        assert cal.exceedance(0, np.array([t * 0.98]))[0] * scale > fp
    assert cal.thresholds(0.1)[0] > cal.thresholds(1.0)[0]
    fpf = cal.expected_false_positives(np.full((13, 13), 0.01))
    yy, xx = np.indices(fpf.shape)
    r = np.hypot(xx - 6, yy - 6)
    inside = (r >= 4) & (r < 8)
    assert np.all(np.isinf(fpf[~inside])) and np.allclose(fpf[inside], cal.exceedance(0, np.array([0.01]))[0] * scale)
    assert np.all(np.isfinite(cal.score_map(np.full((13, 13), 0.01))))


@pytest.mark.slow
def test_calibrate_a_real_model():
    from sodinn.adi.sequence import ADISequence
    from sodinn.datasets import make_adi_sequence
    from sodinn.learn.artifact import load_trained

    data = make_adi_sequence(n_frames=30, size_px=63, fwhm_px=4.0, seed=5)
    seq = ADISequence(cube=data.cube, angles_deg=data.angles_deg, psf=data.psf, fwhm_px=4.0)
    model = load_trained(MODEL)
    cal = calibrate(seq, model, n_null=2, seed=0)
    n_annuli = len(cal.null_logits)
    assert n_annuli == len(cal.edges_px) - 1 >= 3
    assert cal.area_px * 2 == sum(z.size for z in cal.null_logits)  # two null draws of every evaluated pixel
    assert all(np.all(np.diff(z) >= 0) for z in cal.null_logits)
    strict, loose = cal.thresholds(0.05), cal.thresholds(2.0)
    assert np.all(strict >= loose) and np.any(strict > loose)
    assert calibrate(seq, model, n_null=2, seed=0).null_logits[0].tolist() == cal.null_logits[0].tolist()
    with pytest.raises(ValueError, match="n_null"):
        calibrate(seq, model, n_null=0)
    assert _logit(np.array([0.5]))[0] == 0.0
