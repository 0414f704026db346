"""``sodinn info``: what it prints for FITS files, sample files and model folders, and the text of each record."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sodinn.cli import main
from sodinn.cli.info import info_text

SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "models" / "synthetic-sodinn-k10-p9"


def test_info_describes_naco(naco_paths, capsys):
    assert main(["info", "--json", str(naco_paths["angles"]), str(naco_paths["psf"])]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["kind"] == "angles" and lines[0]["field_rotation_deg"] == pytest.approx(81.37, abs=0.01)
    assert lines[0]["n_values"] == 61
    assert 4.6 < lines[1]["fwhm_px"] < 4.9
    assert main(["info", *(str(naco_paths[k]) for k in ("cube", "angles", "psf"))]) == 0
    text = capsys.readouterr().out
    assert "cube of 61 frames of 101x101 px" in text and "FWHM 4.80 px" in text
    assert text.strip().endswith("sequence: 61 frames and 61 angles (consistent)")


def test_info_describes_a_sample_file(tiny_project, capsys):
    import sodinn
    from sodinn.adi.io import file_checksum
    from sodinn.mlar.store import SampleFile

    root = tiny_project.parent.parent
    path = root / "out" / "samples.h5"
    assert main(["info", "--json", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    with SampleFile(path) as f:
        assert info["n_samples"] == len(f) and info["c_plus"] == int(f.labels.sum())
        assert info["sample_shape"] == list(f.sample_shape) == [6, 9, 9]
        assert len(info["annuli"]) == len(f.ks)
        for a, row in enumerate(info["annuli"]):
            here = f.annulus == a
            assert (row["c_plus"], row["c_minus"]) == (int(f.labels[here].sum()), int((f.labels[here] == 0).sum()))
            assert row["ranks"] == f.ks[a].tolist()
            np.testing.assert_allclose(row["flux_range"], f.flux_range[a])
    assert sum(row["c_plus"] + row["c_minus"] for row in info["annuli"]) == info["n_samples"]
    assert info["seed"] == 1 and info["fwhm_px"] == 4.0 and info["sodinn_version"] == sodinn.__version__
    assert info["platform"]["cpu_count"] >= 1  # the machine the samples were made on
    for name in ("cube", "angles", "psf"):
        assert info["sources"][name]["sha256"] == file_checksum(root / "data" / f"{name}.fits")
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert f"{info['n_samples']} labeled samples" in text and "(K, P, P) = (6, 9, 9)" in text
    assert "  S/N curves: yes, made as 'mawet-snr-per-rank/2'\n" in text
    assert text.count("\n") == 1 + 1 + len(info["annuli"]) + 1 + 1 + 3 + 1


def test_info_describes_a_model_folder_without_loading_keras():
    code = ("import sys; from sodinn.cli import main; rc = main(['info', '--json', sys.argv[1]]); "
            "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(SHIPPED_MODEL)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    meta = json.loads((SHIPPED_MODEL / "model.json").read_text())
    for key in ("model", "patch_px", "n_ranks", "fwhm_px", "pixel_scale_arcsec", "snr_range", "training_set", "versions"):
        assert info[key] == meta[key], key
    assert info["test_metrics"]["accuracy"] == meta["metrics"]["accuracy"] and info["weights_present"]
    assert info["epochs_run"] == (SHIPPED_MODEL / "history.csv").read_text().strip().count("\n")
    proc = subprocess.run([sys.executable, "-m", "sodinn.cli", "info", str(SHIPPED_MODEL / "model.keras")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and f"K={meta['n_ranks']} ranks" in proc.stdout and f"P={meta['patch_px']} px" in proc.stdout
    assert f"accuracy {meta['metrics']['accuracy']:.3f}" in proc.stdout


def _fits_record(kind, shape, **kw):
    return {"file": "x.fits", "kind": kind, "shape": shape, "min": -1.5, "max": 2.25, "non_finite": 0, **kw}


def test_info_text_of_angles():
    info = _fits_record("angles", [61], n_values=61, field_rotation_deg=81.3712)
    assert info_text(info) == "x.fits: 61 angles, 81.37 deg of field rotation; values -1.5 to 2.25"


def test_info_text_of_a_cube():
    info = _fits_record("cube", [61, 101, 103], non_finite=3)
    assert info_text(info) == "x.fits: cube of 61 frames of 101x103 px; values -1.5 to 2.25, 3 non-finite"
    info.update(min=None, max=None, non_finite=61 * 101 * 103)
    assert info_text(info) == "x.fits: cube of 61 frames of 101x103 px; no finite values, 634583 non-finite"


def test_info_text_of_a_psf_or_frame():
    info = _fits_record("psf/frame", [15, 17], fwhm_px=4.80123)
    assert info_text(info) == "x.fits: PSF/frame of 15x17 px, FWHM 4.80 px (2-D Gaussian fit); values -1.5 to 2.25"
    info["fwhm_px"] = "not fitted: the fit did not converge"
    assert info_text(info) == "x.fits: PSF/frame of 15x17 px, FWHM not fitted: the fit did not converge; values -1.5 to 2.25"
    assert info_text(_fits_record("image", [2, 3, 4, 5])) == "x.fits: image of shape 2x3x4x5; values -1.5 to 2.25"


def _samples_record(**kw):
    info = {
        "file": "s.h5", "kind": "samples", "n_samples": 160, "c_plus": 80, "c_minus": 80, "augmented": 0,
        "sample_shape": [6, 9, 9],
        "annuli": [{"r_px": [4.0, 8.0], "c_plus": 40, "c_minus": 40, "ranks": [1, 2, 3, 4, 5, 6], "flux_range": [12.5, 80.25]},
                   {"r_px": [8.0, 12.5], "c_plus": 40, "c_minus": 40, "ranks": [2, 4, 6, 8, 10, 12], "flux_range": [5.0, 30.0]}],
        "seed": 1, "snr_range": [1.0, 3.0], "k_policy": "cevr", "known_sources_xy": [[62.0, 63.5]],
        "fwhm_px": 4.0, "pixel_scale_arcsec": 0.0272,
        "sources": {"cube": {"file": "c.fits", "sha256": "ab" * 4}, "psf": {"file": "p.fits", "sha256": "cd" * 4}},
        "config_sha256": "ef" * 4, "sodinn_version": "1.2.3",
        "snr_curves": "mawet-snr-per-rank/2", "snr_curves_current": True,
    }
    return {**info, **kw}


def test_info_text_of_a_sample_file():
    assert info_text(_samples_record()).split("\n") == [
        "s.h5: 160 labeled samples (80 C+, 80 C-) of shape (K, P, P) = (6, 9, 9) in 2 annuli",
        "  annulus        r [px]    C+    C-      flux range (S/N 1-3)  ranks (cevr)",
        "        0       4.0-8.0    40    40                12.5-80.25  1,2,3,4,5,6",
        "        1      8.0-12.5    40    40                      5-30  2,4,6,8,10,12",
        "  seed 1; known sources masked: (62, 63.5); FWHM 4.00 px, pixel scale 0.0272\"/px",
        "  S/N curves: yes, made as 'mawet-snr-per-rank/2'",
        "  cube: c.fits (sha256 abababab)",
        "  psf: p.fits (sha256 cdcdcdcd)",
        "  made by sodinn 1.2.3; configuration sha256 efefefef",
    ]
    lines = info_text(_samples_record(augmented=12, known_sources_xy=[], fwhm_px=None, pixel_scale_arcsec=None,
                                      sources={}, snr_range=[0.5, 2.0], snr_curves=None, snr_curves_current=False)).split("\n")
    assert lines[0] == "s.h5: 160 labeled samples (80 C+, 80 C-, 12 augmented) of shape (K, P, P) = (6, 9, 9) in 2 annuli"
    assert "(S/N 0.5-2)" in lines[1]
    assert lines[4:] == ["  seed 1; known sources masked: none; FWHM unknown",
                         "  S/N curves: none (for patch-only models; re-run `sodinn samples` for a model that takes them)",
                         "  made by sodinn 1.2.3; configuration sha256 efefefef"]
    machine = {"cpu": "", "machine": "arm64", "cpu_flags": [], "cpu_count": 8, "libraries": {}}
    assert info_text(_samples_record(platform=machine)).split("\n")[-1] == (
        "  made by sodinn 1.2.3; configuration sha256 efefefef; on arm64 (8 cores)")  # made on, where recorded
    old = info_text(_samples_record(snr_curves="mawet-snr-per-rank/1", snr_curves_current=False)).split("\n")
    assert old[5] == ("  S/N curves: made as 'mawet-snr-per-rank/1', which this sodinn refuses (known sources counted in "
                      "their noise apertures); re-run `sodinn samples` for a model that takes them")


def _model_record(**kw):
    info = {
        "folder": "m", "kind": "model", "model": "sodinn", "weights": "model.keras", "weights_present": True,
        "patch_px": 9, "n_ranks": 10, "k_policy": "cevr", "fwhm_px": 4.0, "pixel_scale_arcsec": 0.0272,
        "snr_range": [1.0, 3.0], "annuli_px": [[4.0, 8.0], [8.0, 12.04]], "known_sources_xy": [],
        "test_metrics": {"n": 200, "accuracy": 0.9551, "auc": 0.99, "confusion_matrix": [[95, 5], [4, 96]]},
        "split": {"train": 3, "val": 1, "test": 1},
        "per_annulus": {"0": {"accuracy": 0.9, "auc": None, "n": 100}, "1": {"accuracy": 1.0, "auc": 0.875, "n": 100}},
        "train_config": {"epochs": 20, "batch_size": 64, "seed": 1},
        "training_set": {"file": "s.h5", "sha256": "ab" * 4}, "versions": {"sodinn": "1.2.3", "keras": "3.5.0"},
        "epochs_run": 12, "best_epoch": 9,
    }
    return {**info, **kw}


def test_info_text_of_a_model_folder():
    assert info_text(_model_record()).split("\n") == [
        "m: 'sodinn' model (model.keras) for samples of K=10 ranks (cevr) and P=9 px patches",
        "  training data: FWHM 4.00 px, pixel scale 0.0272\"/px, companions injected at S/N 1-3, 2 annuli from 4.0 to 12.0 px",
        "  held-out test: accuracy 0.955, ROC AUC 0.990 on 200 samples (split train/val/test 3/1/1 by group); "
        "confusion matrix [[95, 5], [4, 96]]",
        "    annulus 0: accuracy 0.900, AUC n/a (100 samples)",
        "    annulus 1: accuracy 1.000, AUC 0.875 (100 samples)",
        "  trained 12 epoch(s) of at most 20, best validation loss at epoch 9; batch 64, seed 1",
        "  training set: s.h5 (sha256 abababab)",
        "  versions: sodinn 1.2.3, keras 3.5.0",
    ]
    bfloat16 = info_text(_model_record(train_config={"epochs": 20, "batch_size": 64, "seed": 1,
                                                     "precision": "mixed_bfloat16"}))
    assert "best validation loss at epoch 9; batch 64, seed 1, precision mixed_bfloat16\n" in bfloat16
    record = _model_record(model="sodirf", weights="model.joblib", weights_present=False, fwhm_px=None,
                           pixel_scale_arcsec=None, annuli_px=[], per_annulus=None, split=None,
                           test_metrics={"n": 50, "accuracy": 0.5, "auc": None, "confusion_matrix": [[1]]})
    del record["epochs_run"], record["best_epoch"]
    lines = info_text(record).split("\n")
    assert lines[:3] == [
        "m: 'sodirf' model (model.joblib MISSING) for samples of K=10 ranks (cevr) and P=9 px patches",
        "  training data: FWHM unknown, pixel scale unknown, S/N 1-3",
        "  held-out test: accuracy 0.500, ROC AUC n/a on 50 samples (split train/val/test ?/?/? by group); "
        "confusion matrix [[1]]",
    ]
    assert len(lines) == 5 and not any("trained" in line or "annulus" in line for line in lines)
    machine = {"cpu": "Xeon", "machine": "x86_64", "cpu_flags": ["fma", "avx2"], "cpu_count": 2, "libraries": {}}
    assert info_text(_model_record(platform=machine)).split("\n")[-1] == (
        "  versions: sodinn 1.2.3, keras 3.5.0; on Xeon (fma, avx2, 2 cores)")  # the machine it was trained on
    without_metrics = _model_record(test_metrics={"n": None, "accuracy": None, "auc": None, "confusion_matrix": None})
    assert not any("held-out" in line for line in info_text(without_metrics).split("\n"))


def test_info_text_of_an_unfinished_sample_run():
    info = {"folder": "out/samples.h5.parts", "kind": "unfinished samples", "annuli_done": 3, "annuli": 7}
    assert info_text(info) == ("out/samples.h5.parts: an interrupted 'sodinn samples' run (3 of 7 annuli done); "
                               "run the same command again to resume")
