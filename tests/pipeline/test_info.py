"""What a file or folder holds (``sodinn info``): FITS files, sample files, model folders, unfinished sample runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from sodinn.adi.io import write_fits
from sodinn.learn.artifact import read_metadata
from sodinn.pipeline.info import describe, info_kind

from ..conftest import gaussian_psf
from .conftest import REPO, SHIPPED_MODEL


def test_cube(tmp_path):
    cube = np.arange(3 * 21 * 21, dtype=np.float64).reshape(3, 21, 21)
    cube[1, 2, 3] = np.nan
    path = write_fits(tmp_path / "cube.fits", cube)
    info = describe(path)
    assert info == {"file": str(path), "hdu": "HDU 0 ('PRIMARY')", "kind": "cube", "shape": [3, 21, 21], "min": 0.0,
                    "max": float(cube.size - 1), "non_finite": 1}


def test_angles_as_a_row_or_a_column(tmp_path):
    angles = np.array([-20.0, -5.0, 10.0, 32.5])
    for name, data in (("row.fits", angles), ("column.fits", angles[:, None])):
        info = describe(write_fits(tmp_path / name, data))
        assert info["kind"] == "angles"
        assert info["n_values"] == 4 and info["field_rotation_deg"] == 52.5
        assert info["min"] == -20.0 and info["max"] == 32.5


def test_psf_gets_its_fwhm_fitted(tmp_path):
    info = describe(write_fits(tmp_path / "psf.fits", gaussian_psf(15, 4.0)))
    assert info["kind"] == "psf/frame" and info["shape"] == [15, 15]
    assert info["fwhm_px"] == pytest.approx(4.0, abs=0.05)
    assert info["max"] == 1.0 and info["non_finite"] == 0


def test_fits_is_told_by_its_signature_not_its_name(tmp_path):
    write_fits(tmp_path / "cube.fits", np.zeros((2, 9, 9)))
    shutil.move(tmp_path / "cube.fits", tmp_path / "cube.dat")
    assert info_kind(tmp_path / "cube.dat") == "fits"
    assert describe(tmp_path / "cube.dat")["kind"] == "cube"


def test_sample_file(tiny_samples, tmp_path):
    info = describe(tiny_samples)
    assert info["kind"] == "samples" and info["file"] == str(tiny_samples)
    assert info["n_samples"] == 36 and info["c_plus"] == 18 and info["c_minus"] == 18 and info["augmented"] == 0
    assert info["sample_shape"] == [4, 9, 9]
    assert len(info["annuli"]) == 3
    assert [a["r_px"] for a in info["annuli"]] == [[4.0, 8.0], [8.0, 12.0], [12.0, 16.0]]  # 1 FWHM wide from 1 FWHM
    assert all(a["c_plus"] == 6 and a["c_minus"] == 6 and len(a["ranks"]) == 4 for a in info["annuli"])
    assert all(0 < a["flux_range"][0] < a["flux_range"][1] for a in info["annuli"])
    assert info["seed"] == 0 and info["snr_range"] == [1.0, 3.0] and info["k_policy"] == "cevr"
    assert info["fwhm_px"] == 4.0 and info["pixel_scale_arcsec"] == 0.0272
    assert info["sources"] == {}  # an in-memory sequence: no input files
    assert len(info["config_sha256"]) == 64
    assert info["snr_curves"] == "mawet-snr-per-rank/2" and info["snr_curves_current"] is True
    json.dumps(info)  # JSON-able
    # an HDF5 file is told by its signature too
    shutil.copy(tiny_samples, tmp_path / "samples.bin")
    assert describe(tmp_path / "samples.bin")["n_samples"] == 36


def test_model_folder_and_its_model_json():
    meta = read_metadata(SHIPPED_MODEL)
    info = describe(SHIPPED_MODEL)
    assert info["kind"] == "model" and info["folder"] == str(SHIPPED_MODEL)
    assert info["model"] == "sodinn" and info["weights"] == "model.keras" and info["weights_present"] is True
    assert info["patch_px"] == 9 and info["n_ranks"] == 10 and info["k_policy"] == "cevr"
    assert info["fwhm_px"] == 4.0 and info["pixel_scale_arcsec"] == 0.0272
    assert info["annuli_px"] == [[4.0, 8.0], [8.0, 12.0], [12.0, 16.0], [16.0, 20.0], [20.0, 24.0]]
    assert info["test_metrics"]["accuracy"] == meta["metrics"]["accuracy"]
    assert info["test_metrics"]["n"] == meta["metrics"]["n"]
    assert info["training_set"] == meta["training_set"]
    # history.csv: 8 epochs, the lowest validation loss at the last one
    assert info["epochs_run"] == 8 and info["best_epoch"] == 8
    json.dumps(info)
    assert describe(SHIPPED_MODEL / "model.json") == info  # the metadata file stands for its folder
    assert info_kind(SHIPPED_MODEL / "model.keras") == "model"


def test_model_is_described_without_keras():
    script = (f"import sys; from sodinn.pipeline.info import describe; describe({str(SHIPPED_MODEL)!r}); "
              "print('keras' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_unfinished_sample_run(tmp_path):
    parts = tmp_path / "x.h5.parts"
    parts.mkdir()
    state = {"identity": {"config_sha256": "0" * 64, "sequence": {}}, "oracle": {"flux_range": [[1, 2], [2, 3]]}}
    (parts / "state.json").write_text(json.dumps(state))
    np.savez(parts / "annulus_000.npz", labels=np.zeros(2))
    assert describe(parts) == {"folder": str(parts), "kind": "unfinished samples", "annuli_done": 1, "annuli": 2}


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        describe(tmp_path / "nothing.fits")


def test_folder_without_model_json(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="is a folder without model.json"):
        describe(tmp_path)
    # a folder with a state.json but not named *.parts is not an unfinished sample run either
    (tmp_path / "state.json").write_text("{}")
    with pytest.raises(ValueError, match="is a folder without model.json"):
        describe(tmp_path)


def test_unknown_file_kind(tmp_path):
    (tmp_path / "notes.txt").write_text("hello, world")
    with pytest.raises(ValueError, match="cannot tell what .*notes.txt is"):
        describe(tmp_path / "notes.txt")
