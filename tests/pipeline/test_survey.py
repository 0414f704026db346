"""sodinn survey: samples -> train -> predict for several targets, one folder each, resumable."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.table import Table

import sodinn.mlar.store as store
from sodinn.cli import main
from sodinn.pipeline.survey import load_survey

REPO = Path(__file__).resolve().parents[2]

TINY = """
[survey]
output = "out"

[samples]
patch_px = 9
n_ranks = 6
samples_per_annulus = 30
oracle_azimuths = 1

[train]
model = "sodirf"

[[targets]]
name = "a"
synthetic = { seed = 1, n_frames = 20, size_px = 45, fwhm_px = 4.0, field_rotation_deg = 70.0, companions = [[10.0, 50.0, 2000.0]] }

[[targets]]
name = "b"
synthetic = { seed = 2, n_frames = 20, size_px = 45, fwhm_px = 4.0, field_rotation_deg = 80.0 }
known_sources_xy = [[30.0, 12.0]]

[[targets]]
name = "c"
synthetic = { seed = 3, n_frames = 20, size_px = 45, fwhm_px = 4.0, field_rotation_deg = 60.0, companions = [[14.0, 200.0, 1500.0]] }
samples = { seed = 5 }
threshold = 0.8
"""


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def _survey(cfg, *extra):
    return main(["survey", str(cfg), "--quiet", *extra])


@pytest.mark.slow
def test_survey_of_three_targets_runs_and_resumes_after_an_interruption(tmp_path, capsys, monkeypatch):
    cfg = tmp_path / "survey.toml"
    cfg.write_text(TINY)
    out = tmp_path / "out"
    assert _survey(cfg) == 0  # the three targets in parallel on the local cores
    printed = capsys.readouterr().out
    table = Table.read(out / "summary.ecsv")
    assert list(table["target"]) == ["a", "b", "c"] and set(table["error"]) == {"-"}
    assert set(table["steps_run"]) == {"data,samples,train,predict"}
    for row in table:
        folder = out / row["target"]
        for name in ("data/cube.fits", "data/truth.json", "samples.h5", "model/model.json", "predict/candidates.ecsv",
                     "predict/probability_map.fits", "predict/detection.png"):
            assert (folder / name).is_file(), (row["target"], name)
        assert not (folder / "samples.h5.parts").exists()
        assert row["n_candidates"] == len(Table.read(folder / "predict" / "candidates.ecsv"))
        assert row["auc"] == pytest.approx(json.loads((folder / "model" / "model.json").read_text())["metrics"]["auc"])
        assert row["target"] in printed
    # per-target settings reached the targets: known sources (own + the synthetic companions), seed, threshold
    with h5py.File(out / "b" / "samples.h5") as h:
        assert json.loads(h.attrs["config"])["known_sources_xy"] == [[30.0, 12.0]]
    with h5py.File(out / "c" / "samples.h5") as h:
        config = json.loads(h.attrs["config"])
        truth = json.loads((out / "c" / "data" / "truth.json").read_text())
        assert config["seed"] == 5 and config["known_sources_xy"] == [c[:2] for c in truth["companions"]]
    assert "threshold = 0.8" in (out / "c" / "predict" / "config.toml").read_text()
    assert table["companions_found"][1] == "0/0"

    # a rerun with nothing missing redoes nothing
    before = _files(out)
    assert _survey(cfg, "--scheduler", "synchronous") == 0
    assert set(Table.read(out / "summary.ecsv")["steps_run"]) == {"none"}
    assert {k: v for k, v in _files(out).items() if k != "summary.ecsv"} == {
        k: v for k, v in before.items() if k != "summary.ecsv"}

    # b loses its last artifact; c's samples are deleted and their regeneration is interrupted after one annulus
    with h5py.File(out / "c" / "samples.h5") as h:
        samples_c = {k: h[k][()] for k in ("samples", "labels", "x", "y", "flux", "group")}
    (out / "b" / "predict" / "candidates.ecsv").unlink()
    (out / "c" / "samples.h5").unlink()
    original, saved = store._save_part, []

    def interrupted(path, part):
        if "/c/" in path.as_posix() and len(saved) == 1:
            raise KeyboardInterrupt
        saved.append(path)
        original(path, part)

    monkeypatch.setattr(store, "_save_part", interrupted)
    assert _survey(cfg, "--scheduler", "synchronous") == 130
    assert (out / "b" / "predict" / "candidates.ecsv").is_file()  # b was redone before c was interrupted
    assert not (out / "c" / "samples.h5").exists() and len(list((out / "c" / "samples.h5.parts").glob("*.npz"))) == 1

    resumed = []
    monkeypatch.setattr(store, "_save_part", lambda path, part: (resumed.append(path), original(path, part)))
    middle = _files(out)
    assert _survey(cfg, "--scheduler", "synchronous") == 0
    rerun = Table.read(out / "summary.ecsv")
    assert list(rerun["steps_run"]) == ["none", "none", "samples"]  # only what was missing
    with h5py.File(out / "c" / "samples.h5") as h:
        n_annuli = h["annuli/r_in_px"].shape[0]
    assert n_annuli >= 2 and len(resumed) == n_annuli - 1  # resumed from the finished annulus
    with h5py.File(out / "c" / "samples.h5") as h:  # the same samples, so the model stands
        assert all(np.array_equal(h[k][()], samples_c[k]) for k in samples_c)
    after = _files(out)
    # the samples step rewrote its products (samples.h5 and its settings, samples.toml) and nothing else changed
    unchanged = [k for k in middle if not k.startswith(("c/samples.h5", "c/samples.toml", "c/steps.json")) and k != "summary.ecsv"]
    assert unchanged and all(after[k] == middle[k] for k in unchanged)
    assert list(rerun["n_candidates"]) == list(table["n_candidates"])


def test_restart_and_a_failing_target(tmp_path, capsys):
    cfg = tmp_path / "survey.toml"
    cfg.write_text(TINY.split("[[targets]]")[0] + """
[[targets]]
name = "too-few-frames"
synthetic = { seed = 4, n_frames = 5, size_px = 45, fwhm_px = 4.0 }
""")
    assert _survey(cfg, "--scheduler", "synchronous") == 1
    captured = capsys.readouterr()
    assert "too-few-frames   FAILED: SettingError: 6 PCA ranks need more frames" in captured.out
    assert Table.read(tmp_path / "out" / "summary.ecsv")["error"][0].startswith("SettingError")
    data = tmp_path / "out" / "too-few-frames" / "data" / "cube.fits"
    first = data.stat().st_mtime_ns
    assert _survey(cfg, "--scheduler", "synchronous") == 1
    assert data.stat().st_mtime_ns == first  # the finished data step is kept
    assert _survey(cfg, "--scheduler", "synchronous", "--restart") == 1
    assert data.stat().st_mtime_ns > first


def test_shipped_survey_configuration():
    survey = load_survey(REPO / "configs" / "survey_synthetic.toml")
    assert [t.name for t in survey.targets] == ["synthetic-a", "synthetic-b", "synthetic-c"]
    assert all(t.synthetic is not None and isinstance(t.synthetic["seed"], int) for t in survey.targets)
    assert survey.output == (REPO / "out" / "survey_synthetic").resolve()
    assert survey.scheduler is None and survey.targets[2].train.epochs > survey.targets[0].train.epochs


BAD = [
    ("[survay]\n", "unknown section"),
    ("[survey]\nthreshold = 1.5\n", "threshold must be a probability"),
    ("[engine]\nscheduler = \"localhost:8786\"\n", "scheduler must be"),
    ("[engine]\nn_workers = 0\n", "n_workers must be a positive integer"),
    ("[samples]\npatch = 9\n[[targets]]\nname = \"x\"\nsynthetic = { seed = 1 }\n", "unknown sample setting"),
    ("", "no targets"),
    ("[[targets]]\nname = \"x\"\n", "give either data"),
    ("[[targets]]\nname = \"x/y\"\nsynthetic = { seed = 1 }\n", "name must be a folder name"),
    ("[[targets]]\nname = \"x\"\nsynthetic = { n_frames = 20 }\n", "needs an integer seed"),
    ("[[targets]]\nname = \"x\"\nsynthetic = { seed = 1, n_frame = 20 }\n", "unknown: ['n_frame']"),
    ("[[targets]]\nname = \"x\"\nsynthetic = { seed = 1 }\n[[targets]]\nname = \"x\"\nsynthetic = { seed = 2 }\n",
     "repeated: x"),
    ("[[targets]]\nname = \"x\"\ndata = { cube = \"c.fits\", angles = \"a.fits\", psf = \"p.fits\" }\n", "file not found"),
    ("[[targets]]\nname = \"x\"\ndata = { npz = \"ds.npz\" }\n", "file not found"),
    ("[[targets]]\nname = \"x\"\ndata = { npz = \"ds.npz\", cube = \"c.fits\" }\n", "npz and cube both name the data"),
    ("[[targets]]\nname = \"x\"\nsynthetic = { seed = 1 }\ntrain = { model = \"lstm\" }\n", "model must be one of"),
    ("[[targets]]\nname = \"x\"\nsynthetic = { seed = 1 }\ncolour = \"red\"\n", "unknown key(s) colour"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_survey_configuration_is_one_line_before_any_work(tmp_path, capsys, text, message):
    cfg = tmp_path / "survey.toml"
    cfg.write_text("[survey]\noutput = \"out\"\n" + text if not text.startswith("[survey]") else text)
    assert _survey(cfg) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sodinn survey: error:") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_bad_flags_are_refused_before_any_work(tmp_path, capsys):
    cfg = tmp_path / "survey.toml"
    cfg.write_text(TINY)
    assert _survey(cfg, "--scheduler", "tcp://nowhere") == 2
    assert "scheduler must be" in capsys.readouterr().err
    assert _survey(cfg, "--jobs", "0") == 2
    assert "n_workers must be a positive integer" in capsys.readouterr().err
    assert _survey(tmp_path / "missing.toml") == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_target_that_fails_with_nothing_to_resume_leaves_no_folder(tmp_path, capsys):
    from sodinn.adi.io import write_fits
    from sodinn.datasets import make_adi_sequence

    s = make_adi_sequence(n_frames=5, size_px=45, fwhm_px=4.0, seed=4)
    for name, arr in (("cube", s.cube), ("angles", s.angles_deg), ("psf", s.psf)):
        write_fits(tmp_path / f"{name}.fits", arr)
    cfg = tmp_path / "survey.toml"
    cfg.write_text(TINY.split("[[targets]]")[0] + """
[[targets]]
name = "short"
data = { cube = "cube.fits", angles = "angles.fits", psf = "psf.fits", fwhm_px = 4.0 }
""")
    assert _survey(cfg, "--scheduler", "synchronous") == 1
    assert "short            FAILED: SettingError: 6 PCA ranks need more frames" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["summary.ecsv"]  # no empty target folder


def test_an_output_that_cannot_be_written_is_refused_before_any_target(tmp_path, capsys):
    cfg = tmp_path / "survey.toml"
    cfg.write_text(TINY)
    (tmp_path / "out").write_text("x")
    assert _survey(cfg) == 2
    err = capsys.readouterr().err
    assert err == (f"sodinn survey: error: cannot write {tmp_path / 'out'}: it is a file, not a folder; "
                   "choose another --output (or [survey] output)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "survey.toml"]


def test_a_target_may_be_a_vip_dataset_npz(tmp_path, capsys):
    """``data = { npz = ... }``: the archive is read as ADISequence.from_npz reads it (here too short to sample)."""
    from sodinn.datasets import make_adi_sequence

    s = make_adi_sequence(n_frames=5, size_px=45, fwhm_px=4.0, seed=4)
    np.savez(tmp_path / "ds.npz", cube=s.cube, angles=s.angles_deg, psf=s.psf, fwhm=np.array(4.0), psfn=np.array(None))
    cfg = tmp_path / "survey.toml"
    cfg.write_text(TINY.split("[[targets]]")[0] + '\n[[targets]]\nname = "vip"\ndata = { npz = "ds.npz" }\n')
    survey = load_survey(cfg)
    assert survey.targets[0].data == {"npz": str((tmp_path / "ds.npz").resolve())}
    assert _survey(cfg, "--scheduler", "synchronous") == 1
    assert "vip              FAILED: SettingError: 6 PCA ranks need more frames" in capsys.readouterr().out
