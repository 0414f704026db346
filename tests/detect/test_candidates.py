"""Candidates: the thresholded probability map and its table of connected blobs."""

import inspect

import numpy as np
import pytest

from sodinn.config import PROBABILITY_THRESHOLD
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
    assert first["theta_deg"] == pytest.approx(np.degrees(np.arctan2(first["y"] - 15, first["x"] - 15)))
    assert first["pa_deg"] == pytest.approx((first["theta_deg"] - 90) % 360)  # east of north
    assert list(table["id"]) == [1, 2]
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


def test_the_default_threshold_is_the_probability_threshold_of_the_config():
    for func in (binary_map, find_candidates):
        assert inspect.signature(func).parameters["threshold"].default == PROBABILITY_THRESHOLD
    prob = np.full((9, 9), PROBABILITY_THRESHOLD)
    prob[0, 0] = np.nextafter(PROBABILITY_THRESHOLD, 0)
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


@pytest.mark.parametrize(("x", "y", "pa"), [(15, 25, 0.0), (5, 15, 90.0), (15, 5, 180.0), (25, 15, 270.0)])
def test_candidates_carry_the_position_angle_east_of_north_and_the_sky_separation(x, y, pa):
    prob = np.zeros((31, 31))
    prob[y, x] = 0.95
    table = find_candidates(prob, 0.9, pixel_scale_arcsec=0.0272, north_offset_deg=-104.39)
    assert table["pa_deg"][0] == pytest.approx(pa)
    assert table["sep_mas"][0] == pytest.approx(10 * 27.2)
    assert table["sep_arcsec"].unit == "arcsec" and table["x"].unit == "pix"
    assert table.meta["north_offset_deg"] == -104.39 and "east of north" in table.meta["conventions"]


def test_measure_candidates_recovers_an_injected_flux_and_its_contrast():
    from sodinn.adi.baselines import pca_annular
    from sodinn.adi.injection import cube_inject_companions
    from sodinn.adi.sequence import ADISequence
    from sodinn.adi.sky import PSFScaling
    from sodinn.detect.candidates import measure_candidates

    from ..conftest import gaussian_psf

    noise = np.random.default_rng(0).normal(size=(30, 41, 41))  # white noise: the flux is the method's, not the noise's
    angles = np.linspace(0.0, 60.0, 30)
    plain = ADISequence(noise, angles, gaussian_psf(15, 4.0), 4.0)
    cube = cube_inject_companions(noise, plain.psf_normalized, angles, sep_px=12.0, theta_deg=50.0, flux=800.0)
    seq = ADISequence(cube, angles, gaussian_psf(15, 4.0), 4.0)
    frame = pca_annular(seq.cube, seq.angles_deg, seq.fwhm_px, ncomp=5)
    prob = np.zeros((41, 41))
    prob[20 + round(12 * np.sin(np.radians(50))), 20 + round(12 * np.cos(np.radians(50)))] = 0.99
    table = find_candidates(prob, 0.9)
    scaling = PSFScaling(psf_exposure_s=0.5, cube_exposure_s=1.0, psf_nd_transmission=0.1)
    out = measure_candidates(table, seq, frame, ncomp=5, psf_scaling=scaling, astrometry="blob")
    assert list(out["astrometry"]) == ["blob"] and out["x"][0] == out["x_blob"][0] == table["x"][0]
    # self-subtraction corrected (the raw aperture holds ~58%); 5%: the candidate sits on the pixel, 0.3 px off
    assert out["flux"][0] == pytest.approx(800.0, rel=0.05)
    assert 0.4 < out["throughput"][0] < 0.8 and out["snr"][0] > 5
    from sodinn.adi.psf import aperture_flux

    star = aperture_flux(seq.psf, seq.fwhm_px) * 20.0
    assert out["contrast"][0] == pytest.approx(out["flux"][0] / star)
    assert out["delta_mag"][0] == pytest.approx(-2.5 * np.log10(out["flux"][0] / star))
    assert out.meta["star_flux"] == pytest.approx(star) and out.meta["psf_scaling"]["psf_nd_transmission"] == 0.1
    with pytest.raises(ValueError, match="frame has shape"):
        measure_candidates(table, seq, frame[:-1, :-1], ncomp=5)
    with pytest.raises(TypeError, match="psf_scaling must be a PSFScaling"):
        measure_candidates(table, seq, frame, ncomp=5, psf_scaling={"star_flux": 1.0})
    with pytest.raises(ValueError, match="astrometry"):
        measure_candidates(table, seq, frame, ncomp=5, astrometry="centroid")
    with pytest.raises(ValueError, match="max_refined"):
        measure_candidates(table, seq, frame, ncomp=5, max_refined=-1)


def test_naco_beta_pic_b_astrometry_and_contrast_are_the_published_ones(naco):
    """beta Pic b, refined by NEGFC on the north-up frame: PA and delta L' against Absil et al. 2013."""
    from sodinn.adi.baselines import pca_annular
    from sodinn.adi.sky import NACO_BETAPIC_NORTH_OFFSET_DEG, NACO_BETAPIC_STAR_FLUX, PSFScaling
    from sodinn.detect.candidates import measure_candidates

    seq = naco.with_north_offset(NACO_BETAPIC_NORTH_OFFSET_DEG)
    frame = pca_annular(seq.cube, seq.angles_deg, seq.fwhm_px, ncomp=10)
    prob = np.zeros(frame.shape)
    prob[35, 60] = 0.99  # the pixel of beta Pic b on the north-up frame, 0.5 px from the source
    found = find_candidates(prob, 0.9, pixel_scale_arcsec=0.0272, north_offset_deg=seq.north_offset_deg)
    table = measure_candidates(found, seq, frame, ncomp=10, psf_scaling=PSFScaling(star_flux=NACO_BETAPIC_STAR_FLUX))
    assert table["astrometry"][0] == "negfc" and (table["x_blob"][0], table["y_blob"][0]) == (60, 35)
    assert np.hypot(table["x"][0] - 60, table["y"][0] - 35) > 0.3  # moved off the pixel
    assert table["sep_px"][0] == pytest.approx(np.hypot(table["x"][0] - 50, table["y"][0] - 50))
    assert table["sep_mas"][0] == pytest.approx(table["sep_px"][0] * 27.2)
    # Absil et al. 2013, 2013-02-01: PA 211.2 +- 1.3 deg (the separation is not: see the README)
    assert abs(table["pa_deg"][0] - 211.2) < 2 * 1.3
    assert table["snr"][0] > 8 and 0.4 < table["throughput"][0] < 0.6
    # VIP's own tests model beta Pic b in this cube with fluxes 550.2 and 648.2; the NEGFC flux is ~654
    assert 550 < table["flux"][0] < 750
    # Absil et al. 2013: 8.01 +- 0.16; our estimate's own noise at S/N 9 is ~0.12 mag: 2 sigma of both
    assert abs(table["delta_mag"][0] - 8.01) < 2 * np.hypot(0.16, 0.12)
    assert "negative fake companion" in table.meta["astrometry_method"]
    assert "negative-fake-companion fit" in table.meta["conventions"]


def _calibrated_setup():
    from scipy.special import expit

    from sodinn.detect.calibration import calibrate_nulls
    from sodinn.detect.probability import UNEVALUATED_LOGIT, ProbabilityMap

    rng = np.random.default_rng(0)
    size = 41
    yy, xx = np.indices((size, size))
    r = np.hypot(xx - 20, yy - 20)
    evaluated = (r >= 4) & (r < 18)
    nulls = np.where(evaluated, rng.normal(-4.0, 1.0, (30, size, size)), UNEVALUATED_LOGIT)
    logit = np.where(evaluated, rng.normal(-4.0, 1.0, (size, size)), UNEVALUATED_LOGIT)
    logit[20, 32:34] = [60.0, 59.0]  # two candidates whose probabilities are both 1 in float32 and float64
    logit[8:10, 20] = [80.0, 79.0]
    logit[30, 25] = 70.0  # a lone pixel: a blob of 1 pixel is not counted
    pmap = ProbabilityMap(logit=logit, probability=np.where(evaluated, expit(logit), 0.0), evaluated=evaluated,
                          edges_px=np.array([4.0, 11.0, 18.0]), ks=np.zeros((2, 3)), null_logit=nulls)
    return pmap, calibrate_nulls(pmap, 3.0)


def test_calibrated_candidates_are_ranked_by_their_false_alarm_level_not_a_saturated_probability():
    from sodinn.detect.candidates import find_calibrated_candidates

    pmap, cal = _calibrated_setup()
    table = find_calibrated_candidates(pmap, cal, 1e-6, pixel_scale_arcsec=0.02)
    assert list(table["id"]) == [1, 2]
    assert [(int(t["x_peak"]), int(t["y_peak"])) for t in table] == [(20, 8), (32, 20)]  # logit 80 before 60
    assert np.all(table["peak_probability"] == 1.0)  # saturated: only the logit tells them apart
    assert table["expected_fp"][0] < table["expected_fp"][1] < 1e-6
    assert table["significance_sigma"][0] > table["significance_sigma"][1] > 4
    np.testing.assert_allclose(table["expected_fp"], 10 ** np.asarray(table["log10_expected_fp"]))
    assert table.meta["fp_budget"] == 1e-6 and "negated" in table.meta["statistic"]
    loose = find_calibrated_candidates(pmap, cal, 3.0)
    assert len(loose) > 2 and np.all(np.asarray(loose["expected_fp"]) <= 3.0)
    assert np.all(np.diff(np.asarray(loose["log10_expected_fp"])) >= 0)  # most significant first
    with pytest.raises(ValueError, match="fp_budget"):
        find_calibrated_candidates(pmap, cal, 0.0)


def test_the_calibrated_detection_map_is_the_union_of_the_candidates_blobs():
    from scipy import ndimage

    from sodinn.detect.candidates import calibrated_detection_map, find_calibrated_candidates

    pmap, cal = _calibrated_setup()
    for budget in (1e-6, 3.0, 30.0):
        detection = calibrated_detection_map(pmap, cal, budget)
        table = find_calibrated_candidates(pmap, cal, budget)
        labels, n = ndimage.label(detection)
        assert n == len(table)  # one blob a candidate, no lone pixel the table leaves out
        assert np.all(np.bincount(labels.ravel())[1:] >= cal.npix)
        assert set(labels[np.asarray(table["y_peak"]), np.asarray(table["x_peak"])]) == set(range(1, n + 1))
    raw = pmap.evaluated & (cal.log10_expected_false_positives(pmap.logit) <= np.log10(30.0))
    kept = calibrated_detection_map(pmap, cal, 30.0)
    raw_labels, _ = ndimage.label(raw)
    sizes = np.bincount(raw_labels.ravel())
    assert not np.any(kept & ~raw)  # nothing beyond the budget
    np.testing.assert_array_equal(raw & ~kept, raw & (sizes[raw_labels] < cal.npix))  # only blobs under npix dropped
    with pytest.raises(ValueError, match="fp_budget"):
        calibrated_detection_map(pmap, cal, -1.0)


def test_a_candidate_level_is_the_smallest_budget_that_lists_it():
    """A blob is listed from the budget of its best 4-connected pixel pair (npix = 2), as the calibration counts it."""
    from sodinn.detect.candidates import find_calibrated_candidates

    pmap, cal = _calibrated_setup()
    table = find_calibrated_candidates(pmap, cal, 30.0)
    assert len(table) > 3
    for row in table:
        level = float(row["expected_fp"])
        at = find_calibrated_candidates(pmap, cal, level * (1 + 1e-9))
        below = find_calibrated_candidates(pmap, cal, level * (1 - 1e-6))
        xy = (int(row["x_peak"]), int(row["y_peak"]))
        assert xy in {(int(t["x_peak"]), int(t["y_peak"])) for t in at}
        assert all(np.hypot(t["x"] - row["x"], t["y"] - row["y"]) > 1.5 for t in below), (xy, level)
    # the peak pixel alone is more significant than its blob: the pair's worse pixel sets the level
    lc = cal.log10_expected_false_positives(pmap.logit)
    first = table[0]
    assert lc[int(first["y_peak"]), int(first["x_peak"])] < float(first["log10_expected_fp"])


def test_the_table_names_the_blobs_the_self_calibration_took_for_real_sources():
    """The step-down's left-out blobs travel with the candidates (``sodinn predict`` prints them)."""
    from dataclasses import replace

    from sodinn.detect.calibration import calibrate_self
    from sodinn.detect.candidates import find_calibrated_candidates

    pmap, cal = _calibrated_setup()
    assert "calibration_sources_left_out_xy" not in find_calibrated_candidates(pmap, cal, 3.0).meta  # null draws: none
    self_cal = calibrate_self(replace(pmap, null_logit=None), 3.0, source_fp=0.05)
    meta = find_calibrated_candidates(pmap, self_cal, 3.0).meta
    left_out = meta["calibration_sources_left_out_xy"]
    assert left_out == self_cal.sources_left_out_xy.tolist()
    assert self_cal.source_fp == meta["calibration_source_fp"] == 0.05  # the step-down's level, as set
    assert {(round(x), round(y)) for x, y in left_out} >= {(20, 8), (32, 20)}  # the two blobs of logit 80 and 60
