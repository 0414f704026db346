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
    assert settings["train"] == {**config.to_dict(), "samples": str(tiny_samples.resolve()), "output": str(out.resolve())}
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
