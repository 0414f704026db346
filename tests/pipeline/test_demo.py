"""The demonstration: synthetic data, classical reductions, and (with training) samples, model and candidates.

``tests/cli/test_commands.py`` runs ``sodinn demo`` end to end through the command line.
"""

from __future__ import annotations

import numpy as np
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

    # two companions, both reduced; the bright one stands out in annular PCA-ADI
    assert [(c.sep_px, c.theta_deg, c.flux) for c in synth.companions] == [(12.0, 50.0, 1500.0), (20.0, 200.0, 250.0)]
    assert list(result.reductions) == ["annular", "pca"]
    annular = result.reductions["annular"]
    assert annular.frame_file == tmp_path / "annular_frame.fits"
    assert len(annular.snr_at_truth) == 2 and annular.snr_at_truth[0] > 5
    assert fits.getheader(annular.frame_file)["SODINN NCOMP"] == 5
    assert fits.getheader(annular.frame_file)["SODINN DATA"] == str(tmp_path / "data")
    assert result.candidates is None and result.metrics is None and result.threshold == 0.9
    assert result.seconds > 0


# The full demonstration (train=True) runs once, through the command line: tests/cli/test_commands.py::test_demo_runs_end_to_end


def test_an_output_that_is_a_file_is_refused_before_any_work(tmp_path, monkeypatch):
    import pytest

    monkeypatch.setattr("sodinn.pipeline.demo.make_adi_sequence", lambda **k: pytest.fail("the demo ran"))
    (tmp_path / "demo").write_text("x")
    with pytest.raises(OSError, match=r"^cannot write .*demo: it is a file, not a folder; choose another output_dir$"):
        run_demo(tmp_path / "demo", train=False, progress=False)


def test_a_failure_mid_run_leaves_no_output_folder(tmp_path, monkeypatch):
    import pytest

    def failing(*args, **kwargs):  # after the data files were written
        raise KeyboardInterrupt

    monkeypatch.setattr("sodinn.pipeline.demo.write_reductions", failing)
    with pytest.raises(KeyboardInterrupt):
        run_demo(tmp_path / "demo", train=False, progress=False)
    assert list(tmp_path.iterdir()) == []
