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

