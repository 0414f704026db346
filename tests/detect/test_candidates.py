"""Candidates: the thresholded probability map and its table of connected blobs."""

import inspect

import numpy as np
import pytest

from sodinn.config import PredictConfig
from sodinn.detect.candidates import binary_map, find_candidates


def test_candidates_on_an_analytic_map():
    prob = np.zeros((31, 31))
    prob[20:23, 25:27] = 0.95  # a 6-px blob at x=25.5, y=21 from the centre (15, 15)
    prob[21, 26] = 0.99
    prob[5, 5] = 0.92  # a single pixel
    table = find_candidates(prob, 0.9)
    assert len(table) == 2
    first = table[0]
    assert (first["x_peak"], first["y_peak"], first["area_px"]) == (26, 21, 6)
    assert first["peak_probability"] == pytest.approx(0.99)
    assert first["pa_deg"] == pytest.approx(np.degrees(np.arctan2(first["y"] - 15, first["x"] - 15)))
    assert binary_map(prob, 0.93).sum() == 6 and binary_map(prob, 0.96).sum() == 1
    assert len(find_candidates(np.zeros((9, 9)), 0.5)) == 0
    with pytest.raises(ValueError, match="threshold must be in"):
        binary_map(prob, 1.5)


def test_binary_map_keeps_the_pixels_at_or_above_the_threshold():
    prob = np.array([[0.1, 0.5, 0.49999], [0.5000001, 0.9, 0.0]])
    expected = np.array([[False, True, False], [True, True, False]])
    out = binary_map(prob, 0.5)
    assert out.dtype == bool and out.shape == prob.shape
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(binary_map(prob.tolist(), 0.5), expected)  # array-like input


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.2, 1.5])
def test_binary_map_refuses_a_threshold_outside_the_open_unit_interval(threshold):
    with pytest.raises(ValueError, match=r"^threshold must be in \(0, 1\); got " + str(float(threshold)).replace(".", r"\.")):
        binary_map(np.zeros((3, 3)), threshold)


def test_the_default_threshold_is_the_one_of_predict_config():
    for func in (binary_map, find_candidates):
        assert inspect.signature(func).parameters["threshold"].default == PredictConfig.threshold
    prob = np.full((9, 9), PredictConfig.threshold)
    prob[0, 0] = np.nextafter(PredictConfig.threshold, 0)
    assert binary_map(prob).sum() == prob.size - 1
    assert len(find_candidates(prob)) == 1


def test_candidates_are_sorted_and_carry_the_pixel_scale():
    prob = np.zeros((21, 21))
    prob[3, 3] = 0.91
    prob[15, 16] = 0.97
    prob[10, 17:19] = [0.95, 0.93]
    table = find_candidates(prob, 0.9, pixel_scale_arcsec=0.02)
    assert list(table["peak_probability"]) == pytest.approx([0.97, 0.95, 0.91])
    assert list(table["area_px"]) == [1, 2, 1]
    np.testing.assert_allclose(table["sep_arcsec"], table["sep_px"] * 0.02)
    assert table["sep_px"][2] == pytest.approx(np.hypot(7, 7))
    assert table["x"][1] == pytest.approx((17 * 0.95 + 18 * 0.93) / (0.95 + 0.93))
    assert "sep_arcsec" not in find_candidates(prob, 0.9).colnames
    with pytest.raises(ValueError, match="pixel_scale_arcsec"):
        find_candidates(prob, 0.9, pixel_scale_arcsec=-1.0)
