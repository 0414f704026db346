"""The demonstration: synthetic data, classical reductions, and (with training) samples, model and candidates.

``tests/cli/test_commands.py`` runs ``sodinn demo`` end to end through the command line.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from sodinn.adi.io import read_fits
from sodinn.pipeline.demo import DemoResult, run_demo

REDUCTION_FILES = [f"{m}_{suffix}" for m in ("annular", "pca") for suffix in ("frame.fits", "snrmap.fits", "snrmap.png")]


def test_demo_without_training_writes_the_data_and_both_reductions(tmp_path):
    result = run_demo(tmp_path, train=False, progress=False)
    assert isinstance(result, DemoResult)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["data", *REDUCTION_FILES])
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["angles.fits", "cube.fits", "psf.fits"]

    # the data files are the synthetic sequence (the cube as float32), with the generator's provenance
    synth = result.synthetic
    cube = fits.getdata(tmp_path / "data" / "cube.fits")
    assert cube.shape == (40, 63, 63) and cube.dtype.kind == "f" and cube.dtype.itemsize == 4
    np.testing.assert_array_equal(cube, synth.cube.astype(np.float32))
    np.testing.assert_array_equal(read_fits(tmp_path / "data" / "angles.fits"), synth.angles_deg)
    header = fits.getheader(tmp_path / "data" / "cube.fits")
    assert header["SODINN GENERATOR"] == "sodinn.datasets.make_adi_sequence" and header["SODINN SEED"] == 0
    assert result.sequence.provenance["cube_file"] == str(tmp_path / "data" / "cube.fits")
    assert result.sequence.fwhm_px == 4.0 and result.sequence.pixel_scale_arcsec == synth.pixel_scale_arcsec

    # two companions, both reduced: A stands out in annular PCA-ADI, B (near S/N 2) does not
    assert [(c.sep_px, c.theta_deg, c.flux) for c in synth.companions] == [(12.0, 50.0, 1500.0), (20.0, 200.0, 70.0)]
    assert list(result.reductions) == ["annular", "pca"]
    annular = result.reductions["annular"]
    assert annular.frame_file == tmp_path / "annular_frame.fits"
    assert len(annular.snr_at_truth) == 2
    assert annular.snr_at_truth[0] == pytest.approx(5.34, abs=0.01)  # A: found by PCA-ADI (S/N > 5)
    assert annular.snr_at_truth[1] == pytest.approx(2.17, abs=0.01)  # B: near S/N 2, lost among the speckles
    assert annular.peak_xy == (39, 41)  # the S/N map's peak is A
    assert fits.getheader(annular.frame_file)["SODINN NCOMP"] == 5
    assert fits.getheader(annular.frame_file)["SODINN DATA"] == str(tmp_path / "data")
    assert result.candidates is None and result.metrics is None and result.criterion == "expected false positives per frame <= 1"
    assert result.seconds > 0


# The full demonstration (train=True) runs once, through the command line: tests/cli/test_commands.py::test_demo_runs_end_to_end


def test_an_output_that_is_a_file_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr("sodinn.pipeline.demo.make_adi_sequence", lambda **k: pytest.fail("the demo ran"))
    (tmp_path / "demo").write_text("x")
    with pytest.raises(OSError, match=r"^cannot write .*demo: it is a file, not a folder; choose another output_dir$"):
        run_demo(tmp_path / "demo", train=False, progress=False)


def test_a_failure_mid_run_leaves_no_output_folder(tmp_path, monkeypatch):
    def failing(*args, **kwargs):  # after the data files were written
        raise KeyboardInterrupt

    monkeypatch.setattr("sodinn.pipeline.demo.write_reductions", failing)
    with pytest.raises(KeyboardInterrupt):
        run_demo(tmp_path / "demo", train=False, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_demo_figure_shows_pca_beside_the_model_with_the_companions_named(tmp_path):
    from astropy.table import Table
    from matplotlib.image import imread
    from matplotlib.patches import Rectangle

    from sodinn.adi.sequence import ADISequence
    from sodinn.datasets import make_adi_sequence
    from sodinn.pipeline.demo import demo_figure
    from sodinn.pipeline.figures import save_figure

    s = make_adi_sequence(n_frames=10, size_px=41, fwhm_px=4.0, companions=[(8.0, 50.0, 1500.0), (14.0, 200.0, 70.0)],
                          seed=0)
    seq = ADISequence(s.cube, s.angles_deg, s.psf, s.fwhm_px, s.pixel_scale_arcsec)
    truth = [(c.x_px, c.y_px) for c in s.companions]
    table = Table({"x": [truth[1][0], 5.0, truth[0][0] + 1], "y": [truth[1][1], 5.0, truth[0][1]],
                   "peak_probability": [0.99, 0.95, 0.92]})
    rng = np.random.default_rng(1)
    fig = demo_figure(rng.normal(0, 1, (41, 41)), rng.uniform(0, 1, (41, 41)), table, seq, truth_xy=truth,
                      snr_at_truth=[5.4, 2.1], ncomp=5,
                      criterion="expected false positives per frame <= 1")
    snr_ax, prob_ax, list_ax = fig.axes[:3]
    assert snr_ax.get_title() == "annular PCA-ADI, 5 components: S/N map\nA: S/N 5.4, B: S/N 2.1"
    assert prob_ax.get_title() == "SODINN: significance (whole field)\n3 candidates, expected false positives per frame <= 1"
    for ax in (snr_ax, prob_ax):
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("Δα (arcsec)", "Δδ (arcsec)")
        assert len([p for p in ax.patches if isinstance(p, Rectangle)]) == 2  # the injected companions
        assert {"A", "B", "N", "E"} <= {t.get_text() for t in ax.texts}
    assert [t.get_text() for t in prob_ax.texts if t.get_text().isdigit()] == ["1", "2", "3"]
    listing = list_ax.texts[0].get_text().splitlines()
    assert listing[3:6] == ["#1  P = 0.990  = B", "#2  P = 0.950", "#3  P = 0.920  = A"]
    image = imread(save_figure(fig, tmp_path / "demo.png", dpi=40))
    assert image.shape[:2] == (196, 600) and image[..., :3].std() > 0.05
