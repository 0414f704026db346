"""The models run on every Keras backend, and a model saved under one backend predicts the same under another.

Each backend runs in its own process (``KERAS_BACKEND`` is read once, at ``import keras``): it builds
every registry model, trains it for one epoch on a tiny synthetic sample file, saves it, reloads it
with ``load_trained`` and predicts. The ``.keras`` files are then loaded under the other backends
(and this process's TensorFlow), whose predictions must agree to 1e-5; so must the predictions of
the shipped model (saved under TensorFlow) under torch and JAX.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from sodinn.learn.artifact import load_trained  # noqa: E402
from sodinn.learn.models import MODEL_NAMES  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "synthetic-sodinn-k10-p9"
KERAS_MODELS = tuple(name for name in MODEL_NAMES if name != "sodirf")
BACKENDS = ("torch", "jax")
# keras' own Variable.__array__ under numpy 2 (as in pyproject's filterwarnings): not our code
KERAS_NOISE = "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"

# Runs under KERAS_BACKEND=<backend>: train the models named in the spec, then predict with every
# model folder of the spec ("load": {label: [folder, samples .npy, S/N curves .npy or null]}) and save the
# probabilities (models that take no curves ignore them).
_WORKER = """
import json, sys
import numpy as np
import keras
from sodinn.config import TrainConfig
from sodinn.learn.artifact import load_trained
from sodinn.learn.training import train
spec = json.loads(sys.argv[1])
out = {"backend": keras.backend.backend(), "trained": {}}
for name in spec["train"]:
    result = train(spec["samples"], TrainConfig(model=name, epochs=1, batch_size=16), f"{spec['out']}/{name}", progress=False)
    saved = load_trained(result.out_dir).metadata["versions"]["backend"]
    out["trained"][name] = {"epochs": len(result.history["loss"]), "saved_backend": saved}
    spec["load"][f"{out['backend']}/{name}"] = [str(result.out_dir), spec["x"], spec["curves"]]
probs = {label: load_trained(folder).predict(np.load(x), None if c is None else np.load(c))
         for label, (folder, x, c) in spec["load"].items()}
np.savez(spec["result"], **probs)
print(json.dumps(out))
"""


def _require(backend: str) -> None:
    if importlib.util.find_spec(backend) is None:
        reason = f"Keras backend {backend} is not installed (make test installs torch and jax)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {reason}", pytrace=False)
        pytest.skip(reason)


def _run_worker(backend: str, spec: dict) -> tuple[dict, dict[str, np.ndarray]]:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-W", "error", "-W", KERAS_NOISE, "-c", _WORKER, json.dumps(spec)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with np.load(spec["result"]) as probs:
        return json.loads(proc.stdout.strip().splitlines()[-1]), dict(probs)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny sample file (K=4, P=9) and raw inputs for its models and for the shipped model (K=10, P=9)."""
    from sodinn.adi.sequence import ADISequence
    from sodinn.config import SampleConfig
    from sodinn.datasets import make_adi_sequence
    from sodinn.mlar.store import SampleFile, generate_sample_file

    folder = tmp_path_factory.mktemp("backends")
    data = make_adi_sequence(n_frames=20, size_px=33, fwhm_px=4.0, seed=2)
    seq = ADISequence(data.cube, data.angles_deg, data.psf, data.fwhm_px)
    samples = generate_sample_file(seq, SampleConfig(patch_px=9, n_ranks=4, samples_per_annulus=12, oracle_azimuths=1),
                                   folder / "tiny.h5", n_jobs=1, progress=False)
    with SampleFile(samples) as f:
        np.save(folder / "x_tiny.npy", f.read(np.arange(16)))
        np.save(folder / "c_tiny.npy", f.snr_curves[:16])  # for the models that take S/N curves (sodinn-snr)
    # noise plus a central blob of growing amplitude: the shipped model's probabilities span (0, 1)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:9, :9]
    blob = np.exp(-((yy - 4) ** 2 + (xx - 4) ** 2) / 4.0)
    np.save(folder / "x_shipped.npy", 0.3 * rng.normal(size=(16, 10, 9, 9)) + np.linspace(-1, 1, 16)[:, None, None, None] * blob)
    return {"folder": folder, "samples": str(samples), "x_tiny": str(folder / "x_tiny.npy"),
            "c_tiny": str(folder / "c_tiny.npy"), "x_shipped": str(folder / "x_shipped.npy")}


@pytest.fixture(scope="module")
def runs(inputs):
    """Each installed backend trains every model; later backends also load the earlier ones' models."""
    done: dict[str, tuple[dict, dict[str, np.ndarray]]] = {}
    load = {"tensorflow/shipped": [str(SHIPPED), inputs["x_shipped"], None]}
    for backend in BACKENDS:
        if importlib.util.find_spec(backend) is None:
            continue
        spec = {"samples": inputs["samples"], "out": str(inputs["folder"] / backend), "train": list(KERAS_MODELS),
                "x": inputs["x_tiny"], "curves": inputs["c_tiny"], "load": dict(load),
                "result": str(inputs["folder"] / f"{backend}.npz")}
        done[backend] = _run_worker(backend, spec)
        load.update({f"{backend}/{name}": [str(inputs["folder"] / backend / name), inputs["x_tiny"], inputs["c_tiny"]]
                     for name in KERAS_MODELS})
    return done


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_model_trains_saves_and_reloads(runs, backend):
    _require(backend)
    info, probs = runs[backend]
    assert info["backend"] == backend
    for name in KERAS_MODELS:
        assert info["trained"][name] == {"epochs": 1, "saved_backend": backend}
        p = probs[f"{backend}/{name}"]
        assert p.shape == (16,) and p.dtype == np.float32
        assert np.all((p >= 0) & (p <= 1))


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_saved_models_predict_the_same_under_every_backend(runs, inputs, backend):
    """Models saved under ``backend`` give the same probabilities here (TensorFlow) and under the other backends."""
    _require(backend)
    x, curves = np.load(inputs["x_tiny"]), np.load(inputs["c_tiny"])
    for name in KERAS_MODELS:
        label = f"{backend}/{name}"
        own = runs[backend][1][label]
        here = load_trained(inputs["folder"] / backend / name).predict(x, curves)
        np.testing.assert_allclose(here, own, atol=1e-5, rtol=0)
        for other, (_, probs) in runs.items():
            if label in probs:
                np.testing.assert_allclose(probs[label], own, atol=1e-5, rtol=0, err_msg=f"{label} loaded under {other}")


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_shipped_tensorflow_model_predicts_the_same(runs, inputs, backend):
    _require(backend)
    reference = load_trained(SHIPPED).predict(np.load(inputs["x_shipped"]))
    assert reference.min() < 0.1 and reference.max() > 0.9  # the inputs exercise the whole range
    np.testing.assert_allclose(runs[backend][1]["tensorflow/shipped"], reference, atol=1e-5, rtol=0)
