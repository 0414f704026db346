"""The products of a trained model on a sequence: probability and detection maps, candidates, figure, settings."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from sodinn.adi.sequence import ADISequence
from sodinn.config import PredictConfig
from sodinn.datasets import make_adi_sequence
from sodinn.learn.artifact import read_metadata
from sodinn.pipeline.predict import CALIBRATED_FILES, PREDICT_FILES, Prediction, predict_products

from ..conftest import gaussian_psf
from .conftest import REPO, SHIPPED_MODEL

DATA = {"cube": "cube.fits", "fwhm_px": 4.0, "pixel_scale_arcsec": 0.0272}


def _demo_like(size_px=41, sep_px=12.0):
    """The data the shipped model was trained on (the demo's: 40 frames, FWHM 4 px, 60 deg, seed 0), in a smaller
    frame (41 px instead of 63: the probability map costs less) with the bright companion at 12 px only."""
    s = make_adi_sequence(n_frames=40, size_px=size_px, fwhm_px=4.0, field_rotation_deg=60.0,
                          companions=[(sep_px, 50.0, 1500.0)], seed=0)
    seq = ADISequence(s.cube, s.angles_deg, s.psf, s.fwhm_px, s.pixel_scale_arcsec,
                      provenance={"cube_file": "cube.fits", "cube_sha256": "abc", "fwhm_source": "given"})
    return seq, (s.companions[0].x_px, s.companions[0].y_px)


@pytest.fixture(scope="module")
def prediction(tmp_path_factory):
    """The shipped model applied once (Keras is imported here: about 10 s, plus the map)."""
    seq, truth = _demo_like()
    out = tmp_path_factory.mktemp("predict") / "products"
    result = predict_products(seq, SHIPPED_MODEL, out, config=PredictConfig(threshold=0.9), data=DATA, progress=False)
    return seq, truth, out, result


@pytest.mark.slow
def test_products_are_written_and_match_the_returned_prediction(prediction):
    seq, truth, out, result = prediction
    assert isinstance(result, Prediction) and result.output_dir == out and result.threshold == 0.9
    assert sorted(p.name for p in out.iterdir()) == sorted([*PREDICT_FILES, "config.toml"])
    from matplotlib.image import imread

    image = imread(out / "detection.png")  # the figure opens: two panels side by side, not blank
    assert image.shape[0] > 300 and image.shape[1] > 2 * image.shape[0] * 0.9 and image[..., :3].std() > 0.05

    # the maps: the returned probability map is the file, the detection map its threshold
    probability = fits.getdata(out / "probability_map.fits")
    np.testing.assert_array_equal(probability, result.probability.probability)
    assert probability.shape == (41, 41) and 0 <= probability.min() and probability.max() <= 1
    assert probability[~result.probability.evaluated].max() == 0  # 0 where the model was not applied
    detection = fits.getdata(out / "detection_map.fits")
    assert fits.getheader(out / "detection_map.fits")["BITPIX"] == 16  # int16 0/1
    np.testing.assert_array_equal(detection, (probability >= 0.9).astype(np.int16))

    # provenance header: what made the map, from which model and training set
    header = fits.getheader(out / "probability_map.fits")
    assert header["SODINN FUNCTION"] == "probability_map"
    assert header["SODINN MODEL"] == str(SHIPPED_MODEL.resolve())
    assert header["SODINN MODEL_TRAINING_SET_SHA256"] == read_metadata(SHIPPED_MODEL)["training_set"]["sha256"]
    assert header["SODINN CRITERION"] == "P >= 0.9"
    assert header["SODINN CUBE_FILE"] == "cube.fits" and "SODINN FWHM_SOURCE" not in header
    assert fits.getheader(out / "detection_map.fits")["SODINN FUNCTION"] == "probability_map"

    # the candidates: the file is the returned table; the bright companion is among them
    table = Table.read(out / "candidates.ecsv")
    assert len(table) == len(result.candidates) > 0
    assert table.colnames == result.candidates.colnames
    np.testing.assert_allclose(table["x"], result.candidates["x"])
    np.testing.assert_allclose(table["y"], result.candidates["y"])
    assert "sep_arcsec" in table.colnames  # the sequence's pixel scale was used
    distance = np.hypot(np.asarray(table["x"]) - truth[0], np.asarray(table["y"]) - truth[1])
    assert distance.min() <= 2.0
    for row in table:  # every candidate is a detected pixel
        assert detection[int(row["y_peak"]), int(row["x_peak"])] == 1

    # in an observer's terms: units, sky position, S/N, contrast; the method and conventions in the metadata
    assert table["sep_mas"].unit == "mas" and table["pa_deg"].unit == "deg" and table["delta_mag"].unit == "mag"
    assert "east of north" in table.meta["conventions"] and "self-subtraction" in table.meta["photometry_method"]
    assert table.meta["north_offset_deg"] == 0.0 and table.meta["psf_scaling"]["psf_exposure_s"] == 1.0
    k = int(np.argmin(distance))
    assert table["snr"][k] > 5 and table["flux"][k] > 0 and np.isfinite(table["delta_mag"][k])
    assert table["flux"][k] == pytest.approx(1500.0, rel=0.35)  # the injected flux, corrected for self-subtraction

    # the DS9 region file opens, one circle of 1 FWHM per candidate on its (x, y), labelled with its id
    from regions import Regions

    regions = Regions.read(out / "candidates.reg", format="ds9")
    assert len(regions) == len(table)
    for region, row in zip(regions, table):
        assert (region.center.x, region.center.y) == pytest.approx((row["x"], row["y"]), abs=1e-6)
        assert region.radius == pytest.approx(seq.fwhm_px) and str(region.meta["text"]) == str(row["id"])
    assert "circle(" in (out / "candidates.reg").read_text()

    # the FITS maps carry the pixel scale, units and orientation
    for name in ("probability_map.fits", "detection_map.fits"):
        h = fits.getheader(out / name)
        assert h["PIXSCALE"] == 0.0272 and h["NORTHOFF"] == 0.0 and "BUNIT" in h and "north up" in h["ORIENT"]
        assert h["CDELT1"] == -0.0272 and h["CRPIX1"] == 21.0  # star at 0-based pixel 20

    # the effective settings
    settings = tomllib.loads((out / "config.toml").read_text())
    assert settings["data"] == DATA
    assert settings["predict"] == {"model": str(SHIPPED_MODEL.resolve()), **PredictConfig(threshold=0.9).to_dict(),
                                   "output": str(out.resolve())}


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """The shipped model with the default: candidates within a false-alarm budget, calibrated on null draws.

    The companion at 10 px lies inside the model's annuli (4-12 px in 41 px frames), not on their outer edge."""
    seq, truth = _demo_like(sep_px=10.0)
    out = tmp_path_factory.mktemp("predict") / "calibrated"
    # the shipped model is small: it puts this companion at about 1 expected false positive per frame, so a budget of 3
    config = PredictConfig(calibration_nulls=2, fp_budget=3.0)
    assert config.calibrated
    return seq, truth, out, predict_products(seq, SHIPPED_MODEL, out, config=config, data=DATA, progress=False)


@pytest.mark.slow
def test_the_default_products_carry_calibrated_false_alarm_levels(calibrated):
    from scipy.special import expit

    seq, truth, out, result = calibrated
    assert result.threshold is None and result.fp_budget == 3.0 and result.calibration.n_null == 2
    assert sorted(p.name for p in out.iterdir()) == sorted([*PREDICT_FILES, *CALIBRATED_FILES, "config.toml"])
    pmap = result.probability
    np.testing.assert_allclose(pmap.probability[pmap.evaluated], expit(pmap.logit[pmap.evaluated]))
    fp_map = fits.getdata(out / "false_alarm_map.fits")
    sigma = fits.getdata(out / "significance_map.fits")
    assert np.all(np.isnan(fp_map[~pmap.evaluated])) and np.all(fp_map[pmap.evaluated] > 0)
    assert fits.getheader(out / "false_alarm_map.fits").comments["BUNIT"] == "expected false positives per frame"
    np.testing.assert_allclose(fp_map[pmap.evaluated], result.calibration.expected_false_positives(pmap.logit)[pmap.evaluated])
    detection = fits.getdata(out / "detection_map.fits").astype(bool)
    assert np.all(fp_map[detection] <= result.fp_budget)  # the detection map is the budget's pixels
    from sodinn.detect.candidates import calibrated_detection_map

    np.testing.assert_array_equal(detection, calibrated_detection_map(pmap, result.calibration, result.fp_budget))
    # the candidates: most significant first, each with its level; the bright companion is one of them
    table = Table.read(out / "candidates.ecsv")
    assert table.meta["fp_budget"] == result.fp_budget and "negated" in table.meta["statistic"]
    assert {"expected_fp", "significance_sigma", "peak_logit"} <= set(table.colnames)
    assert np.all(np.asarray(table["expected_fp"]) <= result.fp_budget) and np.all(np.diff(table["expected_fp"]) >= 0)
    assert np.hypot(np.asarray(table["x"]) - truth[0], np.asarray(table["y"]) - truth[1]).min() <= 2.0
    for row in table:  # a candidate's level is the smallest of its pixels, and its significance follows from it
        assert detection[int(row["y_peak"]), int(row["x_peak"])]
        assert row["significance_sigma"] == pytest.approx(float(np.nanmax(sigma[detection & (np.hypot(
            np.indices(sigma.shape)[1] - row["x_peak"], np.indices(sigma.shape)[0] - row["y_peak"]) < 1.5)])), abs=2.0)
    cal = Table.read(out / "calibration.ecsv")
    assert len(cal) == len(pmap.edges_px) - 1 and cal.meta["n_null"] == 2
    assert np.all(np.asarray(cal["tail_excesses"]) >= 1)  # the scale of each tail is a mean of measured excesses
    assert "predictive law" in cal.meta["method"] and "without itself" not in cal.meta["method"]  # null draws: no leave-out
    np.testing.assert_allclose(cal["probability_threshold"], expit(np.asarray(cal["logit_threshold"])))
    settings = tomllib.loads((out / "config.toml").read_text())
    assert settings["predict"]["fp_budget"] == result.fp_budget and "threshold" not in settings["predict"]


def _far_fwhm_sequence():
    """Data whose PSF FWHM (8 px) is twice the shipped model's (4 px)."""
    rng = np.random.default_rng(0)
    return ADISequence(rng.normal(size=(10, 41, 41)), np.linspace(0.0, 60.0, 10), gaussian_psf(21, 8.0), 8.0)


def test_data_far_from_the_training_fwhm_are_refused_before_any_file(tmp_path):
    out = tmp_path / "predict"
    with pytest.raises(ValueError, match=r"\(8\.00 px\) is far from the training data's \(4\.00 px\)"):
        predict_products(_far_fwhm_sequence(), SHIPPED_MODEL, out, progress=False)
    assert not out.exists()


def test_a_folder_without_a_model_is_refused_before_any_file(tmp_path):
    seq, _ = _demo_like(size_px=33)
    (tmp_path / "empty").mkdir()
    out = tmp_path / "predict"
    with pytest.raises(FileNotFoundError, match="model.json"):
        predict_products(seq, tmp_path / "empty", out, progress=False)
    assert not out.exists()


def test_the_refusal_happens_without_importing_keras(tmp_path):
    script = f"""
import sys
import numpy as np
from sodinn.adi.sequence import ADISequence
from sodinn.pipeline.predict import predict_products
from tests.conftest import gaussian_psf
rng = np.random.default_rng(0)
seq = ADISequence(rng.normal(size=(10, 41, 41)), np.linspace(0.0, 60.0, 10), gaussian_psf(21, 8.0), 8.0)
try:
    predict_products(seq, {str(SHIPPED_MODEL)!r}, {str(tmp_path / "predict")!r}, progress=False)
except ValueError as err:
    print("refused:", err)
print("keras imported:", "keras" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "refused: the PSF FWHM of these data (8.00 px) is far from the training data" in proc.stdout
    assert "keras imported: False" in proc.stdout
    assert not (tmp_path / "predict").exists()


_REFUSAL_SCRIPT = """
import sys
import numpy as np
from sodinn.adi.sequence import ADISequence
from sodinn.pipeline.predict import predict_products
from tests.conftest import gaussian_psf
rng = np.random.default_rng(0)
seq = ADISequence(rng.normal(size=({n}, {size}, {size})), np.linspace(0.0, 60.0, {n}), gaussian_psf(15, 4.0), 4.0)
try:
    predict_products(seq, {model!r}, {out!r}, progress=False)
except ValueError as err:
    print("refused:", err)
print("keras imported:", "keras" in sys.modules or "tensorflow" in sys.modules)
"""


@pytest.mark.parametrize(("n_frames", "size_px", "message"), [
    (6, 41, "the model uses 10 PCA ranks, but these data have 6 frames (at most 5 ranks)"),
    (20, 25, "the model cannot be applied to these data (no 1-FWHM annulus fits between 4.0 px and 6.0 px in 25x25 px "
             "frames with 9 px patches); train a model on these data"),
])
def test_data_the_model_cannot_use_are_refused_without_importing_keras(tmp_path, n_frames, size_px, message):
    """Too few frames for the model's ranks, frames too small for its patches: refused from model.json alone."""
    script = _REFUSAL_SCRIPT.format(n=n_frames, size=size_px, model=str(SHIPPED_MODEL), out=str(tmp_path / "predict"))
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"refused: {message}" in proc.stdout
    assert "keras imported: False" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_is_a_file_is_refused_before_keras(tmp_path, monkeypatch):
    import sodinn.pipeline.predict as predict_module

    seq, _ = _demo_like(size_px=33)
    (tmp_path / "out").write_text("x")
    monkeypatch.setattr(predict_module, "import_keras_quietly", lambda: pytest.fail("Keras was loaded"))
    with pytest.raises(OSError, match=r"^cannot write .*out: it is a file, not a folder; choose another output_dir$"):
        predict_products(seq, SHIPPED_MODEL, tmp_path / "out", progress=False)


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failure_mid_run_leaves_no_output_folder(tmp_path, monkeypatch, error):
    import sodinn.pipeline.predict as predict_module

    seq, _ = _demo_like(size_px=33)
    monkeypatch.setattr(predict_module, "import_keras_quietly", lambda: None)
    monkeypatch.setattr(predict_module, "load_trained", lambda path: object())  # no Keras in this test

    def failing(sequence, model, **kwargs):
        (tmp_path / "a" / "predict" / "probability_map.fits").write_text("half")  # something written, then ...
        raise error

    monkeypatch.setattr(predict_module, "probability_map", failing)
    with pytest.raises(type(error)):
        predict_products(seq, SHIPPED_MODEL, tmp_path / "a" / "predict", progress=False)
    assert list(tmp_path.iterdir()) == []


def _candidate_table(xy, p):
    return Table({"x": [c[0] for c in xy], "y": [c[1] for c in xy], "peak_probability": p})


def test_detection_figure_numbers_the_candidates_as_the_table_and_marks_the_truth(tmp_path):
    from matplotlib.image import imread
    from matplotlib.patches import Circle, Rectangle

    from sodinn.pipeline.figures import save_figure
    from sodinn.pipeline.predict import detection_figure

    seq, truth = _demo_like(size_px=41)
    table = _candidate_table([(truth[0] + 0.3, truth[1]), (10.0, 30.0)], [0.99, 0.93])
    rng = np.random.default_rng(0)
    fig = detection_figure(rng.uniform(0, 1, (41, 41)), rng.normal(0, 1, (41, 41)), table, seq, model_name="sodinn",
                           criterion="P >= 0.9", ncomp=10, truth_xy=[truth], statistic="probability")
    prob_ax, snr_ax = fig.axes[:2]
    assert prob_ax.get_title() == "SODINN (sodinn): P(companion)\n2 candidates with P >= 0.9"
    assert snr_ax.get_title() == "annular PCA-ADI, 10 components: S/N map"
    for ax in (prob_ax, snr_ax):
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("Δα (arcsec)", "Δδ (arcsec)")
        assert [t.get_text() for t in ax.texts if t.get_text().isdigit()] == ["1", "2"]  # the table's rows
        circles = [p.center for p in ax.patches if isinstance(p, Circle)]
        np.testing.assert_allclose(circles[1], [-(10.0 - 20) * 0.0272, (30.0 - 20) * 0.0272], atol=1e-9)
        assert len([p for p in ax.patches if isinstance(p, Rectangle)]) == 1
        assert {"N", "E"} <= {t.get_text() for t in ax.texts}
    image = imread(save_figure(fig, tmp_path / "detection.png", dpi=50))
    assert image.shape[:2] == (230, 550) and image[..., :3].std() > 0.05


def test_truth_outside_the_frame_is_refused_before_keras(tmp_path):
    seq, _ = _demo_like(size_px=41)
    with pytest.raises(ValueError, match=r"truth_xy: \(50, 3\) lies outside the 41x41 px frame"):
        predict_products(seq, SHIPPED_MODEL, tmp_path / "out", truth_xy=[(50.0, 3.0)], progress=False)
    assert not (tmp_path / "out").exists()


def test_the_significance_panel_shows_certain_noise_at_the_bottom_of_its_scale_not_blank():
    from sodinn.pipeline.predict import detection_figure

    seq, truth = _demo_like(size_px=41)
    table = _candidate_table([(truth[0], truth[1])], [0.99])
    sigma = np.full((41, 41), -np.inf)  # c so large that a null frame holds such a blob for certain
    sigma[:3] = np.nan  # outside the evaluated annuli
    sigma[20, 20] = 4.0
    fig = detection_figure(sigma, np.zeros((41, 41)), table, seq, model_name="sodinn",
                           criterion="expected false positives per frame <= 1", ncomp=10, statistic="significance")
    ax = fig.axes[0]
    assert ax.get_title().endswith("1 candidate with expected false positives per frame <= 1")
    shown = np.ma.getdata(ax.images[0].get_array()).astype(float)
    assert np.all(np.isnan(shown[:3]))  # blank outside the annuli only
    assert np.all(shown[3:][np.isfinite(shown[3:])] >= -2.0) and np.isfinite(shown[3:]).all()
    assert shown[3:].min() == ax.images[0].norm.vmin == -2.0
