"""The products of training: the model folder, its training curves and its effective [train] settings."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest

from sodinn.config import TrainConfig
from sodinn.learn.artifact import read_metadata
from sodinn.learn.models import MODEL_NAMES
from sodinn.pipeline.train import train_model

from .conftest import REPO


def test_sodirf_folder_holds_the_model_its_curves_and_its_settings(tiny_samples, tmp_path):
    out = tmp_path / "model"
    config = TrainConfig(model="sodirf", seed=2)
    result = train_model(tiny_samples, out, config, progress=False)
    assert result.out_dir == out
    assert {"model.json", "model.joblib", "training_curves.png", "config.toml"} <= {p.name for p in out.iterdir()}
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert (out / "training_curves.png").read_bytes().startswith(b"\x89PNG")

    meta = read_metadata(out)
    assert meta["model"] == "sodirf" and meta["weights"] == "model.joblib"
    assert meta["patch_px"] == 9 and meta["n_ranks"] == 4
    assert meta["training_set"]["file"] == str(tiny_samples.resolve())
    assert meta["metrics"] == json.loads(json.dumps(result.metrics))  # what train_model returned is what it wrote

    settings = tomllib.loads((out / "config.toml").read_text())
    assert list(settings) == ["train"]
    written = {k: v for k, v in config.to_dict().items() if v is not None}  # TOML has no null: unset settings are left out
    assert settings["train"] == {**written, "samples": str(tiny_samples.resolve()), "output": str(out.resolve())}
    assert TrainConfig.from_dict({k: v for k, v in settings["train"].items() if k not in ("samples", "output")}) == config
    assert settings["train"]["model"] == "sodirf" and settings["train"]["seed"] == 2


def test_unknown_model_is_refused_before_anything_is_written(tiny_samples, tmp_path):
    out = tmp_path / "model"
    with pytest.raises(ValueError, match="model must be one of") as err:
        train_model(tiny_samples, out, TrainConfig(model="resnet"), progress=False)
    assert all(repr(name) in str(err.value) for name in MODEL_NAMES)  # the message names the registry
    assert "'resnet'" in str(err.value)
    assert not out.exists()


def test_unknown_model_is_refused_without_importing_keras(tmp_path):
    script = f"""
import sys
from sodinn.config import TrainConfig
from sodinn.pipeline.train import train_model
try:
    train_model({str(tmp_path / "none.h5")!r}, {str(tmp_path / "model")!r}, TrainConfig(model="resnet"))
except ValueError as err:
    print("refused:", err)
print("keras imported:", "keras" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "refused: model must be one of" in proc.stdout
    assert "keras imported: False" in proc.stdout
    assert not (tmp_path / "model").exists()


def test_outputs_and_samples_are_refused_without_importing_keras(tiny_samples, tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "foreign.h5").write_text("not HDF5")
    script = f"""
import sys
from sodinn.config import TrainConfig
from sodinn.pipeline.train import train_model
for samples, out in [({str(tiny_samples)!r}, {str(tmp_path / "file")!r}), ({str(tmp_path / "none.h5")!r}, {str(tmp_path / "m1")!r}),
                     ({str(tmp_path / "foreign.h5")!r}, {str(tmp_path / "m2")!r})]:
    try:
        train_model(samples, out, TrainConfig(model="sodinn"))
    except (OSError, ValueError) as err:
        print("refused:", err)
print("keras imported:", "keras" in sys.modules or "tensorflow" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"refused: cannot write {tmp_path / 'file'}: it is a file, not a folder; choose another output_dir" in proc.stdout
    assert f"refused: sample file not found: {tmp_path / 'none.h5'}" in proc.stdout
    assert "refused: cannot open" in proc.stdout and "keras imported: False" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "foreign.h5"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failure_before_a_finished_epoch_leaves_no_model_folder(tiny_samples, tmp_path, monkeypatch, error):
    import sodinn.learn.training as training

    def failing(*args, **kwargs):
        out = args[4]
        (out / "history.csv").write_text("epoch,loss\n")
        (out / "backup").mkdir()  # BackupAndRestore's folder, still empty
        raise error

    monkeypatch.setattr(training, "_fit", failing)
    monkeypatch.setattr("sodinn.pipeline.train.import_keras_quietly", lambda: None)
    with pytest.raises(type(error)):
        train_model(tiny_samples, tmp_path / "runs" / "model", TrainConfig(model="sodirf"), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_training_keeps_its_backup_and_resumes(tiny_samples, tmp_path, monkeypatch):
    import sodinn.learn.training as training

    def interrupted(*args, **kwargs):
        out = args[4]
        (out / "backup").mkdir(exist_ok=True)
        (out / "backup" / "training_metadata.json").write_text('{"epoch": 1}')
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "_fit", interrupted)
    monkeypatch.setattr("sodinn.pipeline.train.import_keras_quietly", lambda: None)
    out = tmp_path / "model"
    with pytest.raises(KeyboardInterrupt):
        train_model(tiny_samples, out, TrainConfig(model="sodirf"), progress=False)
    assert (out / "backup" / "training_metadata.json").is_file()  # the resume state stays for the next run


def test_training_output_off_a_terminal_is_one_plain_line_per_epoch(tiny_samples, tmp_path, capfd, caplog, monkeypatch):
    """Keras' per-step bars (carriage returns, escape codes) never reach a log or a pipe: one line per epoch."""
    import logging

    root = logging.getLogger()  # a command-line test earlier may have left its stderr handler: not this step's output
    monkeypatch.setattr(root, "handlers", [h for h in root.handlers if not type(h).__module__.startswith("sodinn")])

    from matplotlib.image import imread

    config = TrainConfig(model="conv3d", epochs=3, batch_size=16, patience=5)
    with caplog.at_level(logging.INFO, logger="sodinn.learn.training"):
        result = train_model(tiny_samples, tmp_path / "m", config, progress=True)
    captured = capfd.readouterr()
    for stream in (captured.out, captured.err):
        assert "\r" not in stream and "\x1b[" not in stream
        assert len(stream.splitlines()) <= 3
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [e.split(":")[0] for e in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "val_loss" in epochs[0]
    image = imread(tmp_path / "m" / "training_curves.png")
    assert image.shape[:2] == (400, 1000) and image[..., :3].std() > 0.02
    assert len(result.history["val_loss"]) == 3
