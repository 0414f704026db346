import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from sodinn.cli import main

SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "models" / "synthetic-sodinn-k10-p9"


@pytest.fixture(scope="module")
def synthetic():
    from sodinn.adi.sequence import ADISequence
    from sodinn.datasets import make_adi_sequence

    data = make_adi_sequence(n_frames=30, size_px=63, fwhm_px=4.0, seed=5)
    return ADISequence(cube=data.cube, angles_deg=data.angles_deg, psf=data.psf, fwhm_px=4.0)


def test_reduce_naco_finds_beta_pic_b(naco_paths, tmp_path, capsys):
    config = tmp_path / "naco.toml"
    config.write_text(
        "[data]\n"
        f'cube = "{naco_paths["cube"]}"\nangles = "{naco_paths["angles"]}"\npsf = "{naco_paths["psf"]}"\n'
        "pixel_scale_arcsec = 0.0272\n[reduce]\nmethod = \"annular\"\nncomp = 10\n"
    )
    out = tmp_path / "out"
    assert main(["reduce", "--config", str(config), "--output", str(out), "--quiet"]) == 0
    assert "annular: S/N map peak" in capsys.readouterr().out
    smap = fits.getdata(out / "annular_snrmap.fits")
    py, px = np.unravel_index(np.argmax(smap), smap.shape)
    assert np.hypot(px - 62, py - 63) < 2.5  # beta Pic b
    header = fits.getheader(out / "annular_frame.fits")
    assert header["SODINN FUNCTION"] == "pca_annular" and len(header["SODINN CUBE_SHA256"]) == 64
    assert (out / "annular_snrmap.png").stat().st_size > 10_000
    assert "ncomp = 10" in (out / "config.toml").read_text()


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "S/N map peak" in out
    for name in ("annular_frame.fits", "annular_snrmap.fits", "annular_snrmap.png", "pca_snrmap.fits", "data/cube.fits",
                 "samples.h5", "samples.toml", "model/model.keras", "model/model.json", "model/history.csv",
                 "model/training_curves.png", "model/config.toml", "predict/probability_map.fits",
                 "predict/detection_map.fits", "predict/candidates.ecsv", "predict/detection.png", "predict/config.toml"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "samples.h5.parts").exists()
    for name in ("predict/false_alarm_map.fits", "predict/significance_map.fits", "predict/calibration.ecsv"):
        assert (tmp_path / name).is_file(), name
    # each companion's calibrated level is reported, a candidate or not (the demo's small model is weak: see README)
    for line in ("companion A at (x=38.7, y=40.2), annular PCA-ADI S/N ", "companion B at (x=12.2, y=24.2), annular "
                 "PCA-ADI S/N "):
        assert re.search(re.escape(line) + r"[0-9.]+: (found as candidate #\d+ \([0-9.e+-]+ false positives per frame|not within the "
                         r"budget \(its level there: [0-9.e+-]+ false positives per frame\))", out), out
    table = Table.read(tmp_path / "predict" / "candidates.ecsv")
    assert np.all(np.asarray(table["expected_fp"]) <= 1.0)  # the default budget
    assert f"SODINN: {len(table)} candidate(s) with expected false positives per frame <= 1" in out
    from matplotlib.image import imread

    image = imread(tmp_path / "demo.png")  # PCA-ADI's S/N map beside the model's candidates
    assert image.shape[0] > 400 and image.shape[1] > 2.5 * image.shape[0] and image[..., :3].std() > 0.05


def test_demo_without_training(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--quiet", "--no-train"]) == 0
    assert "SODINN" not in capsys.readouterr().out
    assert not (tmp_path / "samples.h5").exists()


def test_samples_command(naco_paths, tmp_path, capsys):
    from sodinn.mlar.store import SampleFile

    out = tmp_path / "s.h5"
    args = ["samples", "--cube", str(naco_paths["cube"]), "--angles", str(naco_paths["angles"]), "--psf",
            str(naco_paths["psf"]), "--per-annulus", "8", "--ranks", "10", "--mask", "62", "63", "--snr-range", "1.5", "3",
            "-j", "1", "--output", str(out), "--quiet"]
    assert main(args) == 0
    assert "samples (" in capsys.readouterr().out
    with SampleFile(out) as f:
        assert f.sample_shape == (10, 11, 11) and f.config.known_sources_xy == ((62.0, 63.0),)
        assert tuple(f.config.snr_range) == (1.5, 3.0)
        assert int(f.labels.sum()) * 2 == len(f)
    assert "n_ranks = 10" in out.with_suffix(".toml").read_text()
    assert main(args[:-3] + ["--patch", "8", "--output", str(out)]) == 2
    assert "patch_px must be odd" in capsys.readouterr().err
    assert main(args[:-3] + ["--snr-range", "3", "1.5", "--output", str(tmp_path / "r.h5")]) == 2  # reversed
    err = capsys.readouterr().err
    assert "--snr-range (or [samples] snr_range) must be (low, high)" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.h5").exists()


def test_train_command_with_sodirf(tiny_project, tmp_path, capsys):
    path = tiny_project.parent.parent / "out" / "samples.h5"
    assert main(["train", str(path), "--model", "sodirf", "--output", str(tmp_path / "m"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sodirf: held-out accuracy") and "annulus 0" in out
    assert (tmp_path / "m" / "model.json").is_file() and "model = \"sodirf\"" in (tmp_path / "m" / "config.toml").read_text()
    assert main(["train", str(tmp_path / "none.h5")]) == 2
    assert capsys.readouterr().err.strip().endswith("make one with 'sodinn samples'")
    assert main(["train", str(path), "--model", "lstm"]) == 2
    assert "model must be one of" in capsys.readouterr().err


def test_train_and_predict_commands_with_sodinn_snr(tiny_project, tmp_path, capsys):
    """The S/N-curve model through the command line: train on the project's samples, then predict with it."""
    path = tiny_project.parent.parent / "out" / "samples.h5"
    assert main(["train", str(path), "--model", "sodinn-snr", "--epochs", "1", "--batch-size", "32",
                 "--output", str(tmp_path / "m"), "--quiet", "--precision", "mixed_bfloat16"]) == 0
    assert capsys.readouterr().out.startswith("sodinn-snr: held-out accuracy")
    assert json.loads((tmp_path / "m" / "model.json").read_text())["snr_curves"] == "mawet-snr-per-rank/2"
    assert tomllib.loads((tmp_path / "m" / "config.toml").read_text())["train"]["precision"] == "mixed_bfloat16"
    assert main(["train", str(path), "--precision", "float16", "--output", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not (tmp_path / "bad").exists()
    assert main(["predict", str(tmp_path / "m"), "--config", str(tiny_project), "--output",
                 str(tmp_path / "p"), "--quiet"]) == 0
    assert (tmp_path / "p" / "probability_map.fits").is_file()


def test_predict_command_with_the_shipped_model(tmp_path, capsys):
    """The console command as a user runs it (a fresh process): with --quiet, nothing at all on stderr."""
    from sodinn.adi.io import write_fits
    from sodinn.datasets import make_adi_sequence

    data = make_adi_sequence(n_frames=40, size_px=63, fwhm_px=4.0, field_rotation_deg=60.0,
                             companions=[(12.0, 50.0, 1500.0)], seed=0)
    for name, arr in (("cube", data.cube), ("angles", data.angles_deg), ("psf", data.psf)):
        write_fits(tmp_path / f"{name}.fits", arr)
    out = tmp_path / "pred"
    args = ["predict", str(SHIPPED_MODEL), "--cube", str(tmp_path / "cube.fits"), "--angles", str(tmp_path / "angles.fits"),
            "--psf", str(tmp_path / "psf.fits"), "--fwhm", "4", "--pixel-scale", "0.0272", "-o", str(out), "--quiet",
            "--threshold", "0.9"]  # the uncalibrated path (the calibrated default: tests/pipeline/test_predict.py)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "sodinn.cli", *args], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no TensorFlow start-up notices, no progress bars
    assert "candidate(s) with P >= 0.9 (uncalibrated)" in proc.stdout
    table = Table.read(out / "candidates.ecsv")
    companion = data.companions[0]
    assert np.hypot(table["x"] - companion.x_px, table["y"] - companion.y_px).min() < 2
    prob = fits.getdata(out / "probability_map.fits")
    assert prob.shape == (63, 63) and fits.getheader(out / "probability_map.fits")["SODINN FUNCTION"] == "probability_map"
    assert set(np.unique(fits.getdata(out / "detection_map.fits"))) <= {0, 1}
    assert (out / "detection.png").stat().st_size > 10_000
    assert main(["predict", str(tmp_path), "--cube", "c"]) == 2
    assert "no model.json" in capsys.readouterr().err
    saved = tomllib.loads((out / "config.toml").read_text())
    assert saved["predict"]["threshold"] == 0.9 and saved["data"]["fwhm_px"] == 4.0


def test_train_and_predict_read_the_config_and_flags_override_it(tiny_project, tmp_path, capsys):
    root = tiny_project.parent.parent
    assert main(["train", "--config", str(tiny_project), "--seed", "3", "--quiet"]) == 0
    saved = tomllib.loads((root / "out" / "model" / "config.toml").read_text())["train"]
    assert saved["model"] == "sodirf"  # from the [train] table
    assert saved["seed"] == 3  # the flag wins over the table's seed = 1
    assert saved["samples"] == str((root / "out" / "samples.h5").resolve())  # the [samples] output
    meta = json.loads((root / "out" / "model" / "model.json").read_text())
    assert meta["train_config"]["seed"] == 3 and meta["training_set"]["file"] == saved["samples"]
    capsys.readouterr()

    # predict: the model is the [train] output; the flag's threshold wins over the table's 0.95
    assert main(["predict", "--config", str(tiny_project), "--threshold", "0.5", "--quiet"]) == 0
    assert "candidate(s) with P >= 0.5" in capsys.readouterr().out
    pred = root / "out" / "predict"
    saved = tomllib.loads((pred / "config.toml").read_text())
    assert saved["predict"] == {"model": str((root / "out" / "model").resolve()), "threshold": 0.5, "batch_size": 512,
                                "fp_budget": 1.0, "calibration_nulls": 0, "seed": 0, "known_sources_xy": [],
                                "output": str(pred)}
    assert saved["data"]["cube"] == str((root / "data" / "cube.fits").resolve()) and saved["data"]["fwhm_px"] == 4.0
    prob = fits.getdata(pred / "probability_map.fits")
    np.testing.assert_array_equal(fits.getdata(pred / "detection_map.fits"), prob >= 0.5)
    # without the flag, the table's threshold applies
    assert main(["predict", "--config", str(tiny_project), "-o", str(tmp_path / "p"), "--quiet"]) == 0
    assert tomllib.loads((tmp_path / "p" / "config.toml").read_text())["predict"]["threshold"] == 0.95
    np.testing.assert_array_equal(fits.getdata(tmp_path / "p" / "detection_map.fits"), prob >= 0.95)
    # the saved configuration reproduces the run
    assert main(["predict", "--config", str(pred / "config.toml"), "-o", str(tmp_path / "again"), "--quiet"]) == 0
    np.testing.assert_array_equal(fits.getdata(tmp_path / "again" / "probability_map.fits"), prob)
    # --fp-budget wins over the table's threshold: calibrated products, every candidate with its false-alarm level
    cal = tmp_path / "cal"
    assert main(["predict", "--config", str(tiny_project), "--fp-budget", "2", "--calibration-nulls", "2", "-o", str(cal),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "candidate(s) within the false-alarm budget of 2 expected false positive(s) per frame" in printed
    assert printed.count("FP/frame=") == min(20, len(Table.read(cal / "candidates.ecsv")))
    assert (cal / "false_alarm_map.fits").is_file() and (cal / "calibration.ecsv").is_file()
    saved = tomllib.loads((cal / "config.toml").read_text())["predict"]
    assert saved["fp_budget"] == 2.0 and saved["calibration_nulls"] == 2 and "threshold" not in saved
    np.testing.assert_array_equal(fits.getdata(cal / "probability_map.fits"), prob)  # the same map, calibrated
    # both criteria at once: refused in one line
    assert main(["predict", "--config", str(tiny_project), "--fp-budget", "2", "--threshold", "0.5", "-o",
                 str(tmp_path / "both")]) == 2
    assert "give --fp-budget (a calibrated false-alarm budget) or --threshold (a probability), not both" in capsys.readouterr().err
    assert not (tmp_path / "both").exists()


@pytest.mark.parametrize(("table", "key"), [("data", "pixelscale"), ("reduce", "components"), ("samples", "n_rank"),
                                            ("train", "epoch"), ("predict", "thresold")])
@pytest.mark.parametrize("command", ["reduce", "samples", "train", "predict"])
def test_unknown_config_keys_are_named(tmp_path, capsys, command, table, key):
    config = tmp_path / "c.toml"
    config.write_text(f"[{table}]\n{key} = 1\n")
    assert main([command, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sodinn {command}: error: {config}: unknown key(s) in [{table}]: {key}; known: ")
    assert err.count("\n") == 1


def test_user_errors_of_every_command_are_one_line(tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    cases = [
        (["train"], "missing SAMPLES"),
        (["train", str(tmp_path)], "is a folder; pass the sample file"),
        (["train", "s.h5", "-o", str(tmp_path / "file.txt")], "it is a file, not a folder; choose another --output"),
        (["predict"], "missing MODEL"),
        (["predict", str(tmp_path / "none")], "model folder not found"),
        (["predict", str(tmp_path)], "no model.json in it"),
        (["predict", str(tmp_path / "file.txt")], "it is a file"),
        (["predict", str(SHIPPED_MODEL), "--threshold", "1.5"], "threshold must be a probability in (0, 1)"),
        (["predict", str(SHIPPED_MODEL), "-o", str(tmp_path / "file.txt")], "it is a file, not a folder; choose another --output"),
        (["samples", "-o", str(tmp_path)], "it is a folder, not a file"),
        (["reduce", "--config", str(tmp_path)], "is a folder; pass a TOML file"),
        (["reduce", "--cube", str(tmp_path), "--angles", "a", "--psf", "p"], "is a folder; pass the FITS file of the cube"),
        (["info", str(tmp_path / "file.txt")], "cannot tell what"),
        (["info", str(tmp_path)], "is a folder without model.json"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"sodinn {argv[0]}: error: ") and expected in err, (argv, err)
        assert err.count("\n") == 1, err


@pytest.mark.slow
def test_roc_command(synthetic, tmp_path, capsys):
    from sodinn.adi.io import write_fits

    for name, array in (("cube", synthetic.cube), ("angles", synthetic.angles_deg), ("psf", synthetic.psf)):
        write_fits(tmp_path / f"{name}.fits", array)
    (tmp_path / "roc.toml").write_text(
        '[data]\ncube = "cube.fits"\nangles = "angles.fits"\npsf = "psf.fits"\nfwhm_px = 4.0\n\n'
        f'[roc]\nmodels = ["net={SHIPPED_MODEL}"]\nbands_lambda_d = [[1.5, 3.0]]\ncopies_per_band = 2\nannular_ncomps = [5]\n'
        'baselines = ["annular"]\nflux_range = [2000.0, 2000.0]\noutput = "roc"\n'
    )
    assert main(["roc", str(tmp_path / "roc.toml"), "-q", "-j", "1"]) == 0
    out = capsys.readouterr().out
    assert "net / best annular PCA" in out and (tmp_path / "roc" / "roc.csv").is_file()
    assert main(["roc", str(tmp_path / "roc.toml"), "-q", "--model", str(tmp_path)]) == 2
    assert "not a model folder" in capsys.readouterr().err
    assert main(["roc", str(tmp_path / "roc.toml"), "--copies", "0", "-q"]) == 2
    assert "copies_per_band" in capsys.readouterr().err


# ---------------------------------------------------------------- outputs checked before any work; nothing left on failure

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def small_fits(tmp_path_factory):
    """FITS files of two small sequences: FWHM 4 px (the shipped model's) and FWHM 6 px."""
    from sodinn.adi.io import write_fits
    from sodinn.datasets import make_adi_sequence

    root = tmp_path_factory.mktemp("fits")
    for fwhm in (4.0, 6.0):
        data = make_adi_sequence(n_frames=20, size_px=49, fwhm_px=fwhm, seed=2)
        for name, arr in (("cube", data.cube), ("angles", data.angles_deg), ("psf", data.psf)):
            write_fits(root / f"fwhm{fwhm:.0f}" / f"{name}.fits", arr)
    return root


def _data_flags(small_fits, fwhm=4):
    folder = small_fits / f"fwhm{fwhm}"
    return ["--cube", str(folder / "cube.fits"), "--angles", str(folder / "angles.fits"), "--psf", str(folder / "psf.fits")]


def _survey_config(tmp_path):
    cfg = tmp_path / "survey.toml"
    cfg.write_text('[train]\nmodel = "sodirf"\n[[targets]]\nname = "a"\nsynthetic = { seed = 1, n_frames = 10, size_px = 41 }\n')
    return str(cfg)


def _argv(command, small_fits, tmp_path, out):
    """A command line of each command that writes ``out`` (a folder, or the sample file)."""
    if command == "survey":
        return ["survey", _survey_config(tmp_path), "-o", out, "--quiet"]
    return {
        "reduce": ["reduce", *_data_flags(small_fits), "-o", out],
        "samples": ["samples", *_data_flags(small_fits), "--ranks", "4", "--patch", "9", "-o", out],
        "train": ["train", str(tmp_path / "s.h5"), "-o", out],
        "predict": ["predict", str(SHIPPED_MODEL), *_data_flags(small_fits), "-o", out],
        "roc": ["roc", "--model", str(SHIPPED_MODEL), *_data_flags(small_fits), "-o", out],
        "limits": ["limits", "--model", str(SHIPPED_MODEL), *_data_flags(small_fits), "--pixel-scale", "0.0272", "-o", out],
        "demo": ["demo", "-o", out],
    }[command] + ["--quiet"]


COMMANDS = ["reduce", "samples", "train", "predict", "roc", "limits", "survey", "demo"]


@pytest.mark.parametrize("command", COMMANDS)
def test_an_output_that_cannot_be_written_is_refused_first(command, small_fits, tmp_path, capsys):
    """An existing file where a folder goes (or a folder where the sample file goes), and a path through a
    file: one line naming the path and --output, exit 2, before any work, nothing written."""
    (tmp_path / "file").write_text("x")
    if command == "survey":
        _survey_config(tmp_path)
    wrong = tmp_path if command == "samples" else tmp_path / "file"
    reason = "it is a folder, not a file" if command == "samples" else "it is a file, not a folder"
    before = sorted(p.name for p in tmp_path.iterdir())
    for out, expected in ((wrong, f"cannot write {wrong}: {reason}"),
                          (tmp_path / "file" / "out", f"cannot write {tmp_path / 'file' / 'out'}: {tmp_path / 'file'} "
                                                      "is a file, not a folder")):
        assert main(_argv(command, small_fits, tmp_path, str(out))) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"sodinn {command}: error: {expected}; choose another --output"), err
        assert err.count("\n") == 1 and "Errno" not in err and ".tmp" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.skipif(IS_ROOT, reason="permissions are not enforced for root")
@pytest.mark.parametrize("command", COMMANDS)
def test_an_output_in_a_read_only_folder_is_refused_first(command, small_fits, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        out = ro / ("s.h5" if command == "samples" else "out")
        assert main(_argv(command, small_fits, tmp_path, str(out))) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"sodinn {command}: error: cannot write {out}: permission denied"), err
        assert "choose another --output" in err and err.count("\n") == 1
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(("command", "step"), [
    ("reduce", "sodinn.pipeline.reduce.snr_map"),
    ("samples", "sodinn.mlar.store.fit_flux_ranges"),  # the S/N oracle: no .parts/ either
    ("predict", "sodinn.pipeline.predict.find_calibrated_candidates"),
    ("roc", "sodinn.pipeline.roc.write_roc_report"),
    ("limits", "sodinn.pipeline.limits.write_limits_report"),
    ("demo", "sodinn.pipeline.demo.write_reductions"),
])
def test_a_run_interrupted_midway_leaves_nothing_new(command, step, small_fits, tmp_path, monkeypatch, capsys):
    if command == "predict":  # no Keras here: a stand-in model whose map is all zeros
        from sodinn.detect.probability import ProbabilityMap

        monkeypatch.setattr("sodinn.pipeline.predict.import_keras_quietly", lambda: None)
        monkeypatch.setattr("sodinn.pipeline.predict.load_trained", lambda path: None)
        monkeypatch.setattr("sodinn.pipeline.predict.probability_map", lambda seq, model, **k: ProbabilityMap(
            logit=np.zeros((49, 49)), probability=np.zeros((49, 49)), evaluated=np.ones((49, 49), bool),
            edges_px=np.array([4.0, 8.0]), ks=np.array([[1]]), null_logit=np.zeros((2, 49, 49))))
    if command == "roc":  # no copies either: the harness's result stands in
        monkeypatch.setattr("sodinn.pipeline.roc.run_roc", lambda *a, cache_dir, **k: cache_dir.mkdir(parents=True))
    if command == "limits":  # no copies: an empty cache stands in for the measurement
        monkeypatch.setattr("sodinn.pipeline.limits.contrast_limits", lambda *a, cache_dir, **k: cache_dir.mkdir(parents=True))
    monkeypatch.setattr(step, _interrupt)
    (tmp_path / "kept.txt").write_text("x")
    out = tmp_path / "new" / ("s.h5" if command == "samples" else "out")
    assert main(_argv(command, small_fits, tmp_path, str(out))) == 130
    assert capsys.readouterr().err == f"sodinn {command}: interrupted\n"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]  # no output folder, no .parts, no temporary file


def test_a_training_interrupted_before_its_first_epoch_leaves_no_model_folder(tiny_project, tmp_path, monkeypatch):
    samples = tiny_project.parent.parent / "out" / "samples.h5"
    monkeypatch.setattr("sodinn.learn.training._fit", _interrupt)
    assert main(["train", str(samples), "--model", "sodirf", "-o", str(tmp_path / "m"), "--quiet"]) == 130
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["predict", "roc", "limits"])
def test_a_model_of_another_fwhm_is_refused_before_keras_is_loaded(command, small_fits, tmp_path):
    """The FWHM is in model.json: the refusal needs neither Keras nor TensorFlow (a fresh process, as a user's)."""
    out = tmp_path / "out"
    argv = [a.replace("fwhm4", "fwhm6") for a in _argv(command, small_fits, tmp_path, str(out))]  # the FWHM 6 px data
    script = ("import sys\nfrom sodinn.cli import main\n"
              f"rc = main({argv!r})\n"
              "print('status', rc, 'keras' in sys.modules or 'tensorflow' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "status 2 False", (proc.stdout, proc.stderr)
    prefix = f"sodinn {command}: error: " + ("" if command == "predict" else f"model {SHIPPED_MODEL.name}: ")
    assert proc.stderr.startswith(prefix + "the PSF FWHM of these data (5.99 px) is far from the training data's "
                                  "(4.00 px); train a model on these data"), proc.stderr
    assert proc.stderr.count("\n") == 1
    assert not out.exists()


@pytest.fixture(scope="module")
def psf_variants(tmp_path_factory):
    """A small sequence as FITS files, with PSF files off-centre by 1 px, by 3 px, and a cube of 39 PSF stamps."""
    from sodinn.datasets import make_adi_sequence

    from ..conftest import offset_psf

    root = tmp_path_factory.mktemp("psf_variants")
    data = make_adi_sequence(n_frames=10, size_px=41, fwhm_px=4.0, seed=1)
    arrays = {"cube": data.cube, "angles": data.angles_deg, "psf_1px": offset_psf(21, 1.0, 0.0),
              "psf_3px": offset_psf(21, 3.0, 0.0), "psf_ifs": np.stack([offset_psf(21)] * 39)}
    for name, arr in arrays.items():
        fits.PrimaryHDU(arr).writeto(root / f"{name}.fits")
    return root


@pytest.mark.parametrize(("psf", "note"), [
    ("psf_1px", r"sodinn reduce: note: psf in psf_1px.fits is off-centre: .* 1.000 px .*recentred it by a sub-pixel "
                r"Fourier shift of \(dx=-1.000, dy=\+0.000\) px"),
    ("psf_ifs", r"sodinn reduce: note: psf_ifs.fits holds 39 PSF stamps \(shape \(39, 21, 21\)\); averaged them"),
])
def test_a_psf_changed_on_reading_is_a_one_line_note(psf_variants, tmp_path, capsys, psf, note):
    """Issue 13, C and 'Also': a recentred PSF, a PSF cube averaged into one stamp, are said (one line each), not silent."""
    import re

    args = ["reduce", "--cube", str(psf_variants / "cube.fits"), "--angles", str(psf_variants / "angles.fits"),
            "--psf", str(psf_variants / f"{psf}.fits"), "--method", "median", "-o", str(tmp_path / "out"), "--quiet"]
    assert main(args) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(notes) == 1 and re.fullmatch(note + ".*", notes[0]), notes


def test_a_psf_too_far_off_centre_is_refused_in_one_line(psf_variants, tmp_path, capsys):
    args = ["reduce", "--cube", str(psf_variants / "cube.fits"), "--angles", str(psf_variants / "angles.fits"),
            "--psf", str(psf_variants / "psf_3px.fits"), "--method", "median", "-o", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sodinn reduce: error: psf in psf_3px.fits is off-centre") and "\n" not in err
    assert "3.000 px (dx=+3.000, dy=+0.000)" in err and "more than a centring error" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ---------------------------------------------------------------- issue 13: angles, rotation, ranks on the command line


@pytest.fixture(scope="module")
def wrapped_files(tmp_path_factory):
    """20 frames of 33 px (FWHM 4) rotating 160 -> 200 deg: angles as given, wrapped, and in radians."""
    from sodinn.adi.io import write_fits
    from sodinn.datasets import make_adi_sequence

    root = tmp_path_factory.mktemp("wrapped")
    data = make_adi_sequence(n_frames=20, size_px=33, fwhm_px=4.0, field_rotation_deg=40.0, angles_start_deg=160.0, seed=3)
    wrapped = (data.angles_deg + 180.0) % 360.0 - 180.0
    for name, arr in (("cube", data.cube), ("angles", data.angles_deg), ("wrapped", wrapped), ("psf", data.psf),
                      ("radians", np.deg2rad(data.angles_deg - 180.0))):  # the issue's +-0.35
        write_fits(root / f"{name}.fits", arr)
    return root


def _reduce(root, out, *extra, angles="angles"):
    return main(["reduce", "--cube", str(root / "cube.fits"), "--angles", str(root / f"{angles}.fits"), "--psf",
                 str(root / "psf.fits"), "--fwhm", "4", "-o", str(out), "--quiet", *extra])


def test_info_reports_40_deg_for_wrapped_angles_and_refuses_radians(wrapped_files, capsys):
    assert main(["info", str(wrapped_files / "wrapped.fits")]) == 0
    assert "40.00 deg of field rotation" in capsys.readouterr().out  # before: 357.5
    assert main(["info", "--json", str(wrapped_files / "wrapped.fits")]) == 0
    assert json.loads(capsys.readouterr().out)["field_rotation_deg"] == pytest.approx(40.0, abs=1e-9)
    assert main(["info", str(wrapped_files / "radians.fits")]) == 2
    captured = capsys.readouterr()
    assert "0.70 deg of field rotation -- TOO LITTLE" in captured.out
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "radians" in err and "--allow-small-rotation" in err
    assert main(["info", "--allow-small-rotation", str(wrapped_files / "radians.fits")]) == 0


def test_reduce_gives_the_same_frame_for_wrapped_angles(wrapped_files, tmp_path):
    assert _reduce(wrapped_files, tmp_path / "a", "--ncomp", "3") == 0
    assert _reduce(wrapped_files, tmp_path / "b", "--ncomp", "3", angles="wrapped") == 0
    a, b = (fits.getdata(tmp_path / d / "annular_frame.fits") for d in ("a", "b"))
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-9 * np.abs(a).max())


@pytest.mark.parametrize("method", ["annular", "pca", "median"])
def test_reduce_refuses_angles_in_radians_unless_allowed(wrapped_files, tmp_path, capsys, method):
    assert _reduce(wrapped_files, tmp_path / "r", "--method", method, "--ncomp", "3", angles="radians") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rotates by only 0.698 deg" in err and "radians" in err
    assert "--allow-small-rotation" in err and "[data] allow_small_rotation" in err
    assert not (tmp_path / "r").exists()  # refused before any work
    if method == "annular":  # allowed: the rotation threshold leaves no library, and the message names --delta-rot
        assert _reduce(wrapped_files, tmp_path / "r", "--ncomp", "3", "--allow-small-rotation", angles="radians") == 2
        err = capsys.readouterr().err.strip()
        assert "lower --delta-rot (or [reduce] delta_rot" in err and "delta_rot " not in err.replace("[reduce] delta_rot", "")


def test_reduce_delta_rot_flag_and_key(wrapped_files, tmp_path):
    assert _reduce(wrapped_files, tmp_path / "d", "--ncomp", "3", "--delta-rot", "0.1", "0.5") == 0
    assert tomllib.loads((tmp_path / "d" / "config.toml").read_text())["reduce"]["delta_rot"] == [0.1, 0.5]
    config = tmp_path / "c.toml"
    config.write_text(f'[data]\ncube = "{wrapped_files / "cube.fits"}"\nangles = "{wrapped_files / "radians.fits"}"\n'
                      f'psf = "{wrapped_files / "psf.fits"}"\nfwhm_px = 4.0\nallow_small_rotation = true\n'
                      '[reduce]\nncomp = 3\ndelta_rot = 0\n')
    assert main(["reduce", "--config", str(config), "-o", str(tmp_path / "e"), "--quiet"]) == 0  # overridden by the file
    assert main(["reduce", "--config", str(config), "--delta-rot", "1", "2", "3", "-o", str(tmp_path / "f")]) == 2


@pytest.mark.parametrize("ncomp", ["19", "20"])
def test_reduce_refuses_ncomp_at_the_rank(wrapped_files, tmp_path, capsys, ncomp):
    # before: exit 0 and "S/N map peak 5.58" of a round-off frame (max 9e-14)
    assert _reduce(wrapped_files, tmp_path / "p", "--method", "pca", "--ncomp", ncomp) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"--ncomp {ncomp} is more than full-frame PCA-ADI can use" in err
    assert "mean subtraction leaves rank 19 in 20 frames" in err and "at most 18" in err
    assert not (tmp_path / "p").exists()
    assert _reduce(wrapped_files, tmp_path / "p", "--method", "pca", "--ncomp", "18") == 0


def test_reduce_with_the_naco_north_offset_puts_beta_pic_b_south_west(naco_paths, tmp_path):
    from sodinn.adi.sky import sky_position

    out = tmp_path / "out"
    args = ["reduce", "--cube", str(naco_paths["cube"]), "--angles", str(naco_paths["angles"]), "--psf",
            str(naco_paths["psf"]), "--pixel-scale", "0.0272", "--north-offset", "-104.39", "--ncomp", "10",
            "--output", str(out), "--quiet"]
    assert main(args) == 0
    smap = fits.getdata(out / "annular_snrmap.fits")
    py, px = np.unravel_index(np.argmax(smap), smap.shape)
    assert 209 < float(sky_position(px, py, smap.shape).pa_deg) < 217  # beta Pic b, PA 211.2 +- 1.3 (Absil 2013)
    header = fits.getheader(out / "annular_frame.fits")
    assert header["NORTHOFF"] == -104.39 and header["PIXSCALE"] == 0.0272 and header["ORIENT"] == "north up, east left"
    assert 'north_offset_deg = -104.39' in (out / "config.toml").read_text()


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("--psf-nd-transmission", "2", "--psf-nd-transmission (or [data] psf_nd_transmission) is a transmission, a fraction in (0, 1]"),
    ("--psf-exposure", "0", "--psf-exposure (or [data] psf_exposure_s) must be a time in seconds"),
    ("--star-flux", "-5", "--star-flux (or [data] star_flux) must be the star's flux"),
    ("--north-offset", "nan", "--north-offset (or [data] north_offset_deg) must be a finite number of degrees"),
])
def test_bad_sky_and_photometry_settings_name_their_flag(naco_paths, tmp_path, capsys, flag, value, words):
    args = ["reduce", "--cube", str(naco_paths["cube"]), "--angles", str(naco_paths["angles"]), "--psf",
            str(naco_paths["psf"]), flag, value, "--output", str(tmp_path / "out"), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_candidate_summary_lists_sky_terms_and_says_how_many():
    from astropy.table import Table

    from sodinn.cli.commands import candidate_summary

    n = 12
    table = Table({"id": np.arange(1, n + 1), "x": np.full(n, 62.2), "y": np.full(n, 63.3), "sep_arcsec": np.full(n, 0.484),
                   "sep_px": np.full(n, 17.8), "pa_deg": np.full(n, 212.9), "snr": np.full(n, 9.1),
                   "delta_mag": np.full(n, 7.65), "peak_probability": np.full(n, 0.99)})
    table.meta.update(north_offset_deg=-104.39, psf_scaling={"star_flux": 764939.6}, threshold=0.9)
    text = candidate_summary(table, "out", max_rows=10)
    lines = text.splitlines()
    assert lines[0].startswith("12 candidate(s) with P >= 0.9 (uncalibrated); the first 10 listed (all in candidates.ecsv")
    assert "north offset -104.39 deg" in lines[1] and "764940" in lines[1]
    assert len(lines) == 12 and 'sep=0.484" PA=212.9 deg E of N S/N=  9.1 dmag= 7.65' in lines[2]
    # calibrated: the budget, and each candidate's false-alarm level; every candidate listed when asked
    table.meta.update(fp_budget=1.0)
    table["expected_fp"] = np.geomspace(1e-4, 0.9, n)
    table["significance_sigma"] = np.linspace(3.7, 0.5, n)
    lines = candidate_summary(table, "out", max_rows=None).splitlines()
    assert lines[0] == ("12 candidate(s) within the false-alarm budget of 1 expected false positive(s) per frame (--fp-budget); "
                        "outputs in out (candidates.ecsv, candidates.reg)")
    assert len(lines) == 14 and "FP/frame=0.0001 (3.7 sigma) S/N=  9.1" in lines[2]
    # the blobs the self-calibration's step-down took for real sources are named
    table.meta["calibration_sources_left_out_xy"] = [[62.2, 63.3]]
    lines = candidate_summary(table, "out", max_rows=None).splitlines()
    assert len(lines) == 15 and "took 1 blob(s) for real sources and" in lines[2] and "x=62.2 y=63.3" in lines[2]
    table.meta["calibration_source_fp"] = 0.05  # the step-down's level, as the calibration recorded it
    assert "took 1 blob(s) for real sources (<= 0.05 expected FP/frame)" in candidate_summary(table, "out").splitlines()[2]


# ---------------------------------------------------------------- sodinn limits

LIMITS_QUICK = ["--copies", "1", "--separations", "2.5", "-j", "1", "--pixel-scale", "0.0272", "--quiet"]


def _limits_config(tmp_path, extra=""):
    cfg = tmp_path / "limits.toml"
    cfg.write_text("[limits]\nflux_ladder = [5.0, 50.0]\nclassical_azimuths = 1\nclassical_step_fwhm = 2.0\n"
                   f"oracle_azimuths = 1\n{extra}")
    return str(cfg)


def test_limits_command_with_a_baseline_writes_delta_mag_against_arcsec(small_fits, tmp_path, capsys):
    from astropy.table import Table
    from matplotlib.image import imread

    out = tmp_path / "limits"
    argv = ["limits", "--config", _limits_config(tmp_path), *_data_flags(small_fits), *LIMITS_QUICK,
            "--psf-exposure", "0.5", "--cube-exposure", "2", "--psf-nd-transmission", "0.01", "-o", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "delta mag limits" in printed and "annular-10 95% TPR" in printed and "annular-10 5-sigma" in printed
    assert sorted(p.name for p in out.iterdir()) == ["cache", "config.toml", "limits.ecsv", "limits.png", "tpr.ecsv"]
    table = Table.read(out / "limits.ecsv", format="ascii.ecsv")
    for name, unit in (("sep_px", "pix"), ("sep_arcsec", "arcsec"), ("sep_mas", "mas"), ("delta_mag", "mag")):
        assert str(table[name].unit) == unit, name
    assert {"curve", "method", "sep_lambda_d", "flux_limit", "contrast"} <= set(table.colnames)
    ok = np.isfinite(table["contrast"]) & (np.asarray(table["contrast"]) > 0)
    assert ok.any()
    np.testing.assert_allclose(table["delta_mag"][ok], -2.5 * np.log10(table["contrast"][ok]), rtol=1e-12)
    np.testing.assert_allclose(table["sep_arcsec"], table["sep_px"] * 0.0272, rtol=1e-15)
    from sodinn.adi.psf import aperture_flux

    psf = fits.getdata(small_fits / "fwhm4" / "psf.fits")
    fwhm = table.meta["lambda_d_px"]  # the fitted FWHM (lambda/D defaults to it)
    assert table.meta["star_flux"] == pytest.approx(aperture_flux(psf, fwhm) * 2.0 / 0.5 / 0.01, rel=1e-6)
    assert (table.meta["psf_exposure_s"], table.meta["cube_exposure_s"], table.meta["psf_nd_transmission"]) == (0.5, 2.0, 0.01)
    image = imread(out / "limits.png")
    assert image.shape[:2] == (600, 840) and (image[..., :3] < 0.5).mean() > 0.005
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["limits"]["psf_nd_transmission"] == 0.01 and config["limits"]["copies_per_flux"] == 1
    assert config["limits"]["flux_ladder"] == [5.0, 50.0] and config["data"]["pixel_scale_arcsec"] == 0.0272


def test_limits_command_with_the_shipped_model(small_fits, tmp_path, capsys):
    from astropy.table import Table

    out = tmp_path / "limits"
    argv = ["limits", "--config", _limits_config(tmp_path, "classical = false\n"), "--model", f"net={SHIPPED_MODEL}",
            *_data_flags(small_fits), *LIMITS_QUICK, "-o", str(out)]
    assert main(argv) == 0
    assert "net 95% TPR" in capsys.readouterr().out
    table = Table.read(out / "limits.ecsv", format="ascii.ecsv")
    assert set(table["curve"]) == {"tpr"} and set(table["method"]) == {"net", "annular-10"}
    assert tomllib.loads((out / "config.toml").read_text())["limits"]["models"] == [f"net={SHIPPED_MODEL}"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--copies", "0"], "copies_per_flux must be >= 1; got 0 (set by --copies or [limits] copies_per_flux)"),
    (["--psf-nd-transmission", "50"], "--psf-nd-transmission (or [data] psf_nd_transmission) is a transmission, a fraction in (0, 1]"),
    (["--psf-exposure", "0"], "--psf-exposure (or [data] psf_exposure_s) must be a time in seconds"),
    (["--separations", "9"], "separations must lie between 1 FWHM"),
    (["--classical-ncomp", "500"], "500 components are more than annular PCA-ADI can use on these data"),
    (["--baselines", "loci-3"], "unknown baseline 'loci'"),
])
def test_limits_command_refuses_bad_settings_in_one_line(small_fits, tmp_path, capsys, flags, message):
    out = tmp_path / "limits"
    argv = ["limits", "--config", _limits_config(tmp_path), *_data_flags(small_fits), *LIMITS_QUICK, *flags, "-o", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sodinn limits: error: {message}"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_limits_command_names_the_flag_of_a_missing_pixel_scale_and_of_too_many_components(small_fits, tmp_path, capsys):
    out = tmp_path / "limits"
    quick = [a for a in LIMITS_QUICK if a not in ("--pixel-scale", "0.0272")]
    assert main(["limits", "--config", _limits_config(tmp_path), *_data_flags(small_fits), *quick, "-o", str(out)]) == 2
    assert capsys.readouterr().err == ("sodinn limits: error: the separations in arcsec need the pixel scale: pass "
                                       "--pixel-scale (or [data] pixel_scale_arcsec)\n")
    assert main(["limits", "--config", _limits_config(tmp_path), *_data_flags(small_fits), *LIMITS_QUICK, "--separations",
                 "9", "-o", str(out)]) == 2
    assert "; choose --separations (or [limits] separations_lambda_d) in that range\n" in capsys.readouterr().err
    assert main(["limits", "--config", _limits_config(tmp_path), *_data_flags(small_fits), *LIMITS_QUICK, "--classical-ncomp",
                 "500", "-o", str(out)]) == 2
    assert re.search(r"; use at most --classical-ncomp \d+ \(or \[limits\] classical_ncomp = \d+\)\n$", capsys.readouterr().err)
    assert not out.exists()


# ---------------------------------------------------------------- a VIP Dataset (.npz) wherever FITS files are read


@pytest.fixture(scope="module")
def vip_npz(tmp_path_factory):
    """A VIP-style Dataset archive (the members Dataset.save writes, None attributes as objects) and the same data as FITS."""
    from sodinn.adi.io import write_fits
    from sodinn.datasets import make_adi_sequence

    root = tmp_path_factory.mktemp("npz")
    data = make_adi_sequence(n_frames=20, size_px=49, fwhm_px=4.0, seed=2)
    np.savez_compressed(root / "ds.npz", _vip_version=np.array("2.1.1"), _vip_object=np.array("Dataset"),
                        cube=data.cube, angles=data.angles_deg, psf=data.psf, psfn=np.array(None), fwhm=np.array(4.0),
                        px_scale=np.array(0.0272), wavelengths=np.array(None), cuberef=np.array(None))
    for name, arr in (("cube", data.cube), ("angles", data.angles_deg), ("psf", data.psf)):
        write_fits(root / f"{name}.fits", arr)
    return root


def test_reduce_reads_a_vip_npz_as_it_reads_the_fits_files(vip_npz, tmp_path, capsys):
    fits_flags = ["--cube", str(vip_npz / "cube.fits"), "--angles", str(vip_npz / "angles.fits"),
                  "--psf", str(vip_npz / "psf.fits"), "--fwhm", "4", "--pixel-scale", "0.0272"]
    assert main(["reduce", *fits_flags, "--ncomp", "3", "-o", str(tmp_path / "fits"), "--quiet"]) == 0
    assert main(["reduce", "--npz", str(vip_npz / "ds.npz"), "--ncomp", "3", "-o", str(tmp_path / "npz"), "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split("outputs")[0] == out[1].split("outputs")[0]  # the same S/N peak, value and position
    a = fits.getdata(tmp_path / "fits" / "annular_frame.fits")
    b = fits.getdata(tmp_path / "npz" / "annular_frame.fits")
    assert np.array_equal(a, b)
    saved = tomllib.loads((tmp_path / "npz" / "config.toml").read_text())["data"]
    assert saved["npz"] == str((vip_npz / "ds.npz").resolve()) and "cube" not in saved


def test_a_config_names_the_npz_relative_to_itself_and_a_flag_replaces_its_fits_inputs(vip_npz, tmp_path, capsys):
    (tmp_path / "npz.toml").write_text(f'[data]\nnpz = "{os.path.relpath(vip_npz / "ds.npz", tmp_path)}"\n')
    assert main(["reduce", "--config", str(tmp_path / "npz.toml"), "--ncomp", "3", "-o", str(tmp_path / "a"), "-q"]) == 0
    (tmp_path / "fits.toml").write_text('[data]\ncube = "none.fits"\nangles = "none.fits"\npsf = "none.fits"\ncube_hdu = 1\n')
    assert main(["reduce", "--config", str(tmp_path / "fits.toml"), "--npz", str(vip_npz / "ds.npz"), "--ncomp", "3",
                 "-o", str(tmp_path / "b"), "-q"]) == 0
    assert np.array_equal(fits.getdata(tmp_path / "a" / "annular_frame.fits"),
                          fits.getdata(tmp_path / "b" / "annular_frame.fits"))


@pytest.mark.parametrize("command", ["reduce", "samples", "predict", "roc", "convert"])
def test_npz_with_fits_inputs_is_refused_in_one_line_before_any_work(command, vip_npz, tmp_path, capsys):
    npz = str(vip_npz / "ds.npz")
    head = {"predict": ["predict", str(SHIPPED_MODEL)], "roc": ["roc", "--model", str(SHIPPED_MODEL)]}.get(command, [command])
    both = tmp_path / "both.toml"
    both.write_text(f'[data]\nnpz = "{npz}"\ncube = "cube.fits"\n')
    cases = [
        (["--npz", npz, "--cube", "c.fits", "--psf", "p.fits"], "--npz and --cube --psf both name the input data; "
                                                                 "pass either --npz FILE"),
        (["--npz", npz, "--cube-hdu", "1"], "--cube-hdu (or [data] cube_hdu): settings of FITS files, not of --npz"),
        (["--config", str(both)], "[data] of --config names both npz and cube; keep npz"),
        (["--npz", str(tmp_path)], f"npz {tmp_path} is a folder; pass the .npz file of a VIP Dataset"),
        (["--npz", str(tmp_path / "none.npz")], "file not found"),
        (["--npz", str(both)], "is not a NumPy .npz archive"),
    ]
    for flags, expected in cases:
        assert main([*head, *flags, "-o", str(tmp_path / "out")]) == 2, flags
        err = capsys.readouterr().err
        assert err.startswith(f"sodinn {command}: error: ") and expected in err, (flags, err)
        assert err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_a_pickled_member_is_refused_on_the_command_line_with_the_fix(tmp_path, capsys):
    np.savez(tmp_path / "obj.npz", cube=np.zeros((4, 21, 21)), angles=np.array([None] * 4, dtype=object),
             psf=np.ones((5, 5)))
    assert main(["reduce", "--npz", str(tmp_path / "obj.npz"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "'angles' in" in err and "stored as a Python object" in err and "allow_pickle=False" in err
    assert err.count("\n") == 1


def test_convert_writes_the_npz_as_fits_that_every_command_reads(vip_npz, tmp_path, capsys):
    from sodinn.adi.sequence import ADISequence

    out = tmp_path / "fits"
    assert main(["convert", "--npz", str(vip_npz / "ds.npz"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "20 frames of 49x49 px, FWHM 4.00 px, 0.0272 arcsec/px" in printed and "--fwhm 4 --pixel-scale 0.0272" in printed
    seq = ADISequence.from_npz(vip_npz / "ds.npz")
    back = ADISequence.from_fits(out / "cube.fits", out / "angles.fits", out / "psf.fits", fwhm_px=4.0)
    assert np.array_equal(back.cube, seq.cube) and np.array_equal(back.angles_deg, seq.angles_deg)
    assert np.array_equal(back.psf, seq.psf)
    assert main(["convert", "--npz", str(vip_npz / "ds.npz"), "-o", str(out)]) == 2
    assert "already holds cube.fits, angles.fits, psf.fits; pass --overwrite" in capsys.readouterr().err
    assert main(["convert", "--npz", str(vip_npz / "ds.npz"), "-o", str(out), "--overwrite", "-q"]) == 0
    (tmp_path / "file").write_text("x")
    assert main(["convert", "--npz", str(vip_npz / "ds.npz"), "-o", str(tmp_path / "file")]) == 2
    assert "it is a file, not a folder; choose another --output" in capsys.readouterr().err
