"""The products of a classical reduction: final frame, S/N map (FITS with provenance) and figure, per baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits

from sodinn.adi.baselines import BASELINES
from sodinn.adi.sequence import ADISequence
from sodinn.adi.snr import snr_map
from sodinn.datasets import make_adi_sequence
from sodinn.pipeline.reduce import Reduction, write_reductions

NCOMP = 5


@pytest.fixture(scope="module")
def bright():
    """20 frames of 49x49 px with one bright companion at 12 px, and its sky position."""
    s = make_adi_sequence(n_frames=20, size_px=49, fwhm_px=4.0, companions=[(12.0, 30.0, 2000.0)], seed=1)
    seq = ADISequence(s.cube, s.angles_deg, s.psf, s.fwhm_px, s.pixel_scale_arcsec,
                      provenance={"cube_file": "cube.fits", "cube_sha256": "abc", "fwhm_source": "given"})
    return seq, (s.companions[0].x_px, s.companions[0].y_px)


@pytest.fixture(scope="module")
def reductions(bright, tmp_path_factory):
    seq, truth = bright
    out = tmp_path_factory.mktemp("reduce") / "products"
    return out, write_reductions(seq, list(BASELINES), out, ncomp=NCOMP, provenance={"config": "reduce.toml"},
                                 truth_xy=[truth])


def test_every_baseline_writes_its_frame_snr_map_and_figure(reductions):
    out, results = reductions
    assert list(results) == list(BASELINES)
    names = set()
    for method, red in results.items():
        assert isinstance(red, Reduction) and red.method == method
        assert red.frame_file == out / f"{method}_frame.fits"
        assert red.snr_file == out / f"{method}_snrmap.fits"
        assert red.figure_file == out / f"{method}_snrmap.png"
        assert red.figure_file.read_bytes().startswith(b"\x89PNG")
        names |= {red.frame_file.name, red.snr_file.name, red.figure_file.name}
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # nothing else (no temporary files)


def test_headers_record_function_components_and_provenance(reductions):
    _, results = reductions
    for method, red in results.items():
        baseline = BASELINES[method]
        frame_header = fits.getheader(red.frame_file)
        snr_header = fits.getheader(red.snr_file)
        for header in (frame_header, snr_header):
            assert header["SODINN FUNCTION"] == baseline.function.__name__
            assert header["SODINN FWHM_PX"] == 4.0
            assert header["SODINN CONFIG"] == "reduce.toml"  # the caller's provenance
            assert header["SODINN CUBE_FILE"] == "cube.fits" and header["SODINN CUBE_SHA256"] == "abc"
            assert "SODINN FWHM_SOURCE" not in header  # only the sequence's files and checksums are copied
            if baseline.ranked:
                assert header["SODINN NCOMP"] == NCOMP
            else:
                # no components: the card is absent or JSON null (write_fits writes None as JSON)
                assert json.loads(header.get("SODINN NCOMP", "null")) is None
        assert "SODINN PRODUCT" not in frame_header
        assert snr_header["SODINN PRODUCT"] == "snr_map"
    assert fits.getheader(results["median"].frame_file)["SODINN FUNCTION"] == "median_adi"


def test_snr_map_file_is_the_snr_map_of_the_frame_file(reductions, bright):
    seq, _ = bright
    _, results = reductions
    for red in results.values():
        frame = fits.getdata(red.frame_file)
        smap = fits.getdata(red.snr_file)
        assert frame.shape == smap.shape == (49, 49)
        np.testing.assert_allclose(smap, snr_map(frame, seq.fwhm_px), equal_nan=True)
        assert red.peak_snr == pytest.approx(np.nanmax(smap))
        px, py = red.peak_xy
        assert smap[py, px] == pytest.approx(red.peak_snr)


def test_bright_companion_is_the_snr_peak_of_every_method(reductions, bright):
    _, truth = bright
    _, results = reductions
    for method, red in results.items():
        assert np.hypot(red.peak_xy[0] - truth[0], red.peak_xy[1] - truth[1]) <= 2.0, method
        assert len(red.snr_at_truth) == 1
        assert red.snr_at_truth[0] > 5, method


def test_unknown_method_is_refused_before_the_folder_is_created(bright, tmp_path):
    seq, _ = bright
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=r"unknown baseline 'nope'.*median, pca, annular"):
        write_reductions(seq, ["median", "nope"], out, ncomp=NCOMP)
    assert not out.exists()


def test_no_truth_gives_no_snr_at_truth(bright, tmp_path):
    seq, _ = bright
    results = write_reductions(seq, ["median"], tmp_path, ncomp=NCOMP)
    assert list(results) == ["median"] and results["median"].snr_at_truth == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["median_frame.fits", "median_snrmap.fits", "median_snrmap.png"]


def test_settings_are_written_as_config_toml_beside_the_products(bright, tmp_path):
    import tomllib

    seq, _ = bright
    settings = {"data": {"cube": "cube.fits", "fwhm_px": 4.0}, "reduce": {"method": "median", "ncomp": 3, "output": "x"}}
    write_reductions(seq, ["median"], tmp_path, ncomp=3, settings=settings)
    assert tomllib.loads((tmp_path / "config.toml").read_text()) == settings
    write_reductions(seq, ["median"], tmp_path / "none", ncomp=3)
    assert not (tmp_path / "none" / "config.toml").exists()


def test_an_output_that_is_a_file_is_refused_before_any_reduction(bright, tmp_path, monkeypatch):
    import sodinn.pipeline.reduce as reduce_module

    seq, _ = bright
    (tmp_path / "out").write_text("x")
    monkeypatch.setattr(reduce_module, "snr_map", lambda *a, **k: pytest.fail("a reduction ran"))
    with pytest.raises(OSError, match=r"^cannot write .*out: it is a file, not a folder; choose another output_dir$"):
        write_reductions(seq, ["median"], tmp_path / "out", ncomp=NCOMP)
    assert (tmp_path / "out").read_text() == "x"


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_failure_mid_run_leaves_nothing_new(bright, tmp_path, monkeypatch, error):
    """The second method fails after the first wrote its files: the folder (and the parents made) go."""
    import sodinn.pipeline.reduce as reduce_module

    seq, _ = bright
    calls = []
    original = reduce_module.snr_map

    def failing(frame, fwhm):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return original(frame, fwhm)

    monkeypatch.setattr(reduce_module, "snr_map", failing)
    (tmp_path / "kept.txt").write_text("x")
    with pytest.raises(type(error)):
        write_reductions(seq, ["median", "pca"], tmp_path / "a" / "out", ncomp=NCOMP)
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]
    # into an existing folder: its earlier files stay, the run's new files go
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "median_frame.fits").write_text("earlier run")
    calls.clear()
    with pytest.raises(type(error)):
        write_reductions(seq, ["pca", "median"], tmp_path / "old", ncomp=NCOMP)
    assert [p.name for p in (tmp_path / "old").iterdir()] == ["median_frame.fits"]
    assert (tmp_path / "old" / "median_frame.fits").read_text() == "earlier run"


def test_figure_is_on_sky_axes_with_method_components_and_the_truth_marked(bright, tmp_path, monkeypatch):
    from matplotlib.image import imread
    from matplotlib.patches import Rectangle

    import sodinn.pipeline.reduce as reduce_module

    seq, truth = bright
    drawn = []
    original = reduce_module.save_figure
    monkeypatch.setattr(reduce_module, "save_figure", lambda fig, path, **kw: (drawn.append(fig), original(fig, path, **kw))[1])
    red = write_reductions(seq, ["annular"], tmp_path, ncomp=NCOMP, truth_xy=[truth])["annular"]
    frame_ax, snr_ax = drawn[0].axes[:2]  # the colour bars come after the two panels
    assert frame_ax.get_title() == "annular PCA-ADI, 5 components: final frame"
    assert snr_ax.get_title() == "annular PCA-ADI, 5 components: S/N map"
    for ax in (frame_ax, snr_ax):
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("Δα (arcsec)", "Δδ (arcsec)")
        assert {"N", "E"} <= {t.get_text() for t in ax.texts}
        square = next(p for p in ax.patches if isinstance(p, Rectangle))
        centre = np.add(square.get_xy(), (square.get_width() / 2, square.get_height() / 2))
        np.testing.assert_allclose(centre, [-(truth[0] - 24) * 0.0272, (truth[1] - 24) * 0.0272], atol=1e-9)
    image = imread(red.figure_file)
    assert image.shape[:2] == (420, 1000) and image[..., :3].std() > 0.05


def test_truth_outside_the_frame_is_refused_before_any_file(bright, tmp_path):
    seq, _ = bright
    with pytest.raises(ValueError, match=r"truth_xy: \(60, 3\) lies outside the 49x49 px frame"):
        write_reductions(seq, ["annular"], tmp_path / "out", ncomp=NCOMP, truth_xy=[(60.0, 3.0)])
    assert not (tmp_path / "out").exists()
