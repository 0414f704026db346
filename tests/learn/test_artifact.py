import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from sodinn.config import SampleConfig, TrainConfig  # noqa: E402
from sodinn.learn.artifact import (  # noqa: E402
    FORMAT,
    METADATA_FILE,
    TrainedModel,
    check_compatible,
    check_model_data,
    keras_predict,
    load_trained,
    metadata_digest,
    model_folder,
    read_metadata,
    save_model,
    training_known_sources,
)
from sodinn.learn.models import SODIRF  # noqa: E402
from sodinn.mlar.samples import NORMALIZATION, minmax_normalize  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "synthetic-sodinn-k10-p9"
LEGACY = "per k-slice min-max to [0, 1]"


@pytest.fixture()
def shipped_copy(tmp_path):
    """The shipped model's metadata in a folder of its own (the files under models/ are never modified)."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    shutil.copy(SHIPPED / METADATA_FILE, folder / METADATA_FILE)
    return folder


def _edit(folder, **changes):
    meta = json.loads((folder / METADATA_FILE).read_text())
    meta.update(changes)
    (folder / METADATA_FILE).write_text(json.dumps(meta))
    return folder


# ---------------------------------------------------------------- model_folder


def test_model_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^model folder not found: .*nowhere; train one with 'sodinn train'$"):
        model_folder(tmp_path / "nowhere")
    a_file = tmp_path / "model.keras"
    a_file.write_bytes(b"weights")
    with pytest.raises(FileNotFoundError, match=r"is not a model folder \(it is a file\); pass the folder written by 'sodinn train'"):
        model_folder(a_file)
    with pytest.raises(FileNotFoundError, match=r"is not a model folder \(no model.json in it\)"):
        model_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"^model 'cnn': model folder not found"):
        model_folder(tmp_path / "nowhere", name="cnn")
    (tmp_path / METADATA_FILE).write_text("{}")
    assert model_folder(str(tmp_path)) == tmp_path


# ---------------------------------------------------------------- read_metadata


def test_shipped_model_metadata_reads_with_the_legacy_normalization_name():
    assert json.loads((SHIPPED / METADATA_FILE).read_text())["normalization"] == LEGACY
    meta = read_metadata(SHIPPED)
    assert meta["format"] == FORMAT and meta["weights"] == "model.keras"
    assert meta["input_shape"] == [10, 9, 9, 1] and meta["patch_px"] == 9 and meta["n_ranks"] == 10


def test_current_normalization_is_accepted(shipped_copy):
    assert read_metadata(_edit(shipped_copy, normalization=NORMALIZATION))["normalization"] == NORMALIZATION


@pytest.mark.parametrize("recorded", ["zscore-per-sample/1", "minmax-per-rank/2", None])
def test_other_normalization_is_refused_naming_both(shipped_copy, recorded):
    _edit(shipped_copy, normalization=recorded)
    with pytest.raises(ValueError) as info:
        read_metadata(shipped_copy)
    text = str(info.value)
    assert f"trained on samples normalised as {recorded!r}" in text
    assert f"this sodinn normalises them as {NORMALIZATION!r}" in text
    assert text.endswith("retrain the model with this version")


def test_invalid_json_asks_whether_the_training_was_interrupted(shipped_copy):
    text = (shipped_copy / METADATA_FILE).read_text()
    (shipped_copy / METADATA_FILE).write_text(text[: len(text) // 2])  # an interrupted write
    with pytest.raises(ValueError, match=r"model.json is not valid JSON \(.*\); was the training interrupted\?"):
        read_metadata(shipped_copy)
    (shipped_copy / METADATA_FILE).write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="was the training interrupted"):
        read_metadata(shipped_copy)


@pytest.mark.parametrize(
    ("content", "found"), [({"format": "sodinn-model/0"}, "'sodinn-model/0'"), ({"weights": "model.keras"}, "None"), ([1, 2], "None")]
)
def test_wrong_format_is_refused(tmp_path, content, found):
    (tmp_path / METADATA_FILE).write_text(json.dumps(content))
    with pytest.raises(ValueError, match=rf"is not a sodinn model \(format {found}, expected 'sodinn-model/1'\)"):
        read_metadata(tmp_path)


def test_metadata_checks_do_not_import_keras(shipped_copy):
    _edit(shipped_copy, normalization="zscore/1")
    code = f"""
import sys
from sodinn.config import SampleConfig
from sodinn.learn.artifact import check_compatible, load_trained, metadata_digest, read_metadata
meta = read_metadata({str(SHIPPED)!r})
check_compatible(meta, 4.0, SampleConfig.from_dict(meta["sample_config"]))
metadata_digest({str(SHIPPED)!r})
try:
    load_trained({str(shipped_copy)!r})  # refused on its metadata, before the weights
except ValueError as err:
    print("refused:", "retrain" in str(err))
print("keras" in sys.modules, "tensorflow" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["refused:", "True", "False", "False"]


# ---------------------------------------------------------------- check_compatible

META = {"patch_px": 9, "n_ranks": 10, "k_policy": "cevr", "fwhm_px": 4.0}


def test_check_compatible_accepts_matching_data():
    check_compatible(META, 4.0, SampleConfig(patch_px=9, n_ranks=10))
    check_compatible(META, 4.59)  # within 15 %
    check_compatible(META, 3.41)
    check_compatible({**META, "fwhm_px": None}, 12.0)  # no FWHM recorded: not checked


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (SampleConfig(patch_px=11, n_ranks=10), "the model was trained with patch_px=9 but the samples use 11"),
        (SampleConfig(patch_px=9, n_ranks=8), "the model was trained with n_ranks=10 but the samples use 8"),
        (SampleConfig(patch_px=9, n_ranks=2, k_policy="fixed", k_list=(1, 5)),
         "the model was trained with n_ranks=10 but the samples use 2"),
        (SampleConfig(patch_px=9, n_ranks=10, k_policy="fixed", k_list=tuple(range(1, 11))),
         "the model was trained with k_policy='cevr' but the samples use 'fixed'"),
    ],
)
def test_check_compatible_refuses_other_samples(config, match):
    with pytest.raises(ValueError, match=f"^{match}$"):
        check_compatible(META, 4.0, config)


def test_check_compatible_refuses_a_far_fwhm():
    with pytest.raises(ValueError, match=(r"^the PSF FWHM of these data \(4.70 px\) is far from the training data's \(4.00 px\); "
                                          r"train a model on these data \(SODINN models are per data set\)$")):
        check_compatible(META, 4.7)
    check_compatible(META, 4.7, fwhm_tolerance=0.2)
    with pytest.raises(ValueError, match="far from"):
        check_compatible(META, 4.1, fwhm_tolerance=0.01)


# ---------------------------------------------------------------- digest


def test_metadata_digest_is_the_sha256_of_model_json(shipped_copy):
    assert metadata_digest(SHIPPED) == hashlib.sha256((SHIPPED / METADATA_FILE).read_bytes()).hexdigest()
    assert metadata_digest(shipped_copy) == metadata_digest(SHIPPED)  # same bytes, same model
    _edit(shipped_copy, metrics={})
    assert metadata_digest(shipped_copy) != metadata_digest(SHIPPED)
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        metadata_digest(shipped_copy / "nowhere")


# ---------------------------------------------------------------- save / load


def test_save_and_load_a_sodirf(tmp_path, rng):
    raw = rng.normal(size=(40, 4, 5, 5)) * 10
    labels = np.r_[np.ones(20, int), np.zeros(20, int)]
    raw[labels == 1, :, 2, 2] += 50.0
    model = SODIRF(n_estimators=10, seed=2).fit(minmax_normalize(raw)[..., None], labels)
    sample_config = SampleConfig(patch_px=5, n_ranks=4, seed=3)
    train_config = TrainConfig(model="sodirf")
    geometry = {"ks": [[1, 2, 3, 4]], "r_in_px": [2.0], "r_out_px": [4.0], "flux_range": [[10.0, 30.0]]}
    folder = save_model(model, tmp_path / "rf", train_config=train_config, sample_config=sample_config,
                        provenance={"sequence": {"fwhm_px": 2.5, "pixel_scale_arcsec": 0.01}}, geometry=geometry,
                        input_shape=(4, 5, 5, 1), training_set={"file": "s.h5", "sha256": "0" * 64},
                        metrics={"accuracy": 1.0})
    assert folder == tmp_path / "rf"
    assert sorted(p.name for p in folder.iterdir()) == ["model.joblib", "model.json"]  # no temporary file left
    meta = read_metadata(folder)
    assert meta["normalization"] == NORMALIZATION and meta["format"] == FORMAT
    assert meta["weights"] == "model.joblib" and meta["model"] == "sodirf" and meta["collapse"] == "mean"
    assert meta["input_shape"] == [4, 5, 5, 1] and (meta["patch_px"], meta["n_ranks"]) == (5, 4)
    assert (meta["fwhm_px"], meta["pixel_scale_arcsec"]) == (2.5, 0.01)
    assert meta["training_geometry"] == geometry and meta["metrics"] == {"accuracy": 1.0}
    assert meta["train_config"] == train_config.to_dict()
    assert set(meta["versions"]) == {"sodinn", "keras", "backend"}
    assert meta["platform"]["libraries"]["numpy"] == np.__version__ and meta["platform"]["cpu_count"] >= 1  # the machine

    loaded = load_trained(folder)
    assert isinstance(loaded, TrainedModel) and isinstance(loaded.model, SODIRF)
    assert loaded.metadata == meta
    assert loaded.sample_config == sample_config
    probs = loaded.predict(raw)
    assert probs.shape == (40,)
    np.testing.assert_array_equal(probs, model.predict(minmax_normalize(raw)[..., None])[:, 0])
    assert probs[labels == 1].min() > probs[labels == 0].max()
    loaded.check_compatible(2.5, sample_config)
    with pytest.raises(ValueError, match="trained with patch_px=5 but the samples use 7"):
        loaded.check_compatible(2.5, SampleConfig(patch_px=7, n_ranks=4))
    assert metadata_digest(folder) == hashlib.sha256((folder / "model.json").read_bytes()).hexdigest()


def test_load_trained_refuses_a_folder_without_metadata(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"half a training")
    with pytest.raises(FileNotFoundError, match=r"no model.json in it"):
        load_trained(tmp_path)


def test_shipped_model_loads_and_separates_classes(tmp_path):
    """models/synthetic-sodinn-k10-p9 on fresh samples of the demo data (other seed for C+ positions)."""
    from sodinn.adi.sequence import ADISequence
    from sodinn.datasets import make_adi_sequence
    from sodinn.mlar.samples import make_samples

    folder = SHIPPED
    model = load_trained(folder)
    meta = model.metadata
    data = make_adi_sequence(n_frames=40, size_px=63, fwhm_px=4.0, field_rotation_deg=60.0,
                             companions=[(12.0, 50.0, 1500.0), (20.0, 200.0, 250.0)], seed=0)
    seq = ADISequence(data.cube, data.angles_deg, data.psf, data.fwhm_px)
    cfg = SampleConfig.from_dict({**meta["sample_config"], "samples_per_annulus": 30, "seed": 7})
    model.check_compatible(seq.fwhm_px, cfg)
    ranges = np.asarray(meta["training_geometry"]["flux_range"])
    samples = make_samples(seq, cfg, flux_ranges=ranges, n_jobs=1, progress=False)
    probs = model.predict(samples.samples)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(samples.labels, probs) > 0.85


def _noise_sequence(n_frames, size_px, fwhm_px=4.0):
    from sodinn.adi.sequence import ADISequence

    from ..conftest import gaussian_psf

    rng = np.random.default_rng(0)
    return ADISequence(rng.normal(size=(n_frames, size_px, size_px)), np.linspace(0.0, 60.0, n_frames),
                       gaussian_psf(15, fwhm_px), fwhm_px)


def test_check_model_data_accepts_data_like_the_training_set():
    check_model_data(read_metadata(SHIPPED), _noise_sequence(20, 41))  # K = 10 ranks <= 19, one annulus at least


@pytest.mark.parametrize(("n_frames", "size_px", "fwhm_px", "message"), [
    (11, 41, 4.0, None),  # 10 ranks need 11 frames: accepted
    (10, 41, 4.0, r"^model m: the model uses 10 PCA ranks, but these data have 10 frames \(at most 9 ranks\); "),
    (20, 25, 4.0, r"^model m: the model cannot be applied to these data \(no 1-FWHM annulus fits between 4\.0 px and "
                  r"6\.0 px in 25x25 px frames with 9 px patches\); train a model on these data$"),
    (20, 41, 6.0, r"^model m: the PSF FWHM of these data \(6\.00 px\) is far from the training data's \(4\.00 px\)"),
])
def test_check_model_data_refuses_what_the_model_cannot_use(n_frames, size_px, fwhm_px, message):
    seq = _noise_sequence(n_frames, size_px, fwhm_px)
    if message is None:
        check_model_data(read_metadata(SHIPPED), seq, name="m")
        return
    with pytest.raises(ValueError, match=message):
        check_model_data(read_metadata(SHIPPED), seq, name="m")


def test_save_and_load_a_sodinn_snr_model_gives_the_same_logits(tmp_path, rng):
    """A two-input model trained a few steps: the loaded folder's logits equal the in-memory model's."""
    import keras

    from sodinn.learn.models import build_model
    from sodinn.mlar.features import SNR_CURVES

    keras.utils.set_random_seed(0)
    raw = rng.normal(size=(32, 4, 9, 9)) * 10
    curves = rng.normal(size=(32, 4)) * 3
    labels = np.r_[np.ones(16), np.zeros(16)].astype(np.float32)
    curves[labels == 1] += 4.0
    model = build_model("sodinn-snr", (4, 9, 9, 1))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit({"mlar_sample": minmax_normalize(raw)[..., None], "snr_curve": curves.astype(np.float32)}, labels,
              batch_size=8, epochs=1, verbose=0)
    train_config = TrainConfig(model="sodinn-snr")
    folder = save_model(model, tmp_path / "snr", train_config=train_config, sample_config=SampleConfig(patch_px=9, n_ranks=4),
                        provenance={"sequence": {"fwhm_px": 4.0}}, geometry={}, input_shape=(4, 9, 9, 1),
                        training_set={"file": "s.h5", "sha256": "0" * 64}, metrics={})
    meta = read_metadata(folder)
    assert meta["snr_curves"] == SNR_CURVES and meta["model"] == "sodinn-snr"
    in_memory = TrainedModel(model=model, metadata=meta)
    loaded = load_trained(folder)
    assert loaded.needs_snr_curves and in_memory.needs_snr_curves
    expected = in_memory.predict_logits(raw, curves)
    assert np.ptp(expected) > 0
    np.testing.assert_allclose(loaded.predict_logits(raw, curves), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(1 / (1 + np.exp(-expected)), loaded.predict(raw, curves), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="'sodinn-snr' takes the S/N curves"):
        loaded.predict_logits(raw)


def test_a_model_of_other_snr_curves_is_refused(shipped_copy):
    _edit(shipped_copy, snr_curves="another-rule/9")
    with pytest.raises(ValueError, match="S/N curves made as 'another-rule/9'.*retrain"):
        read_metadata(shipped_copy)
    assert read_metadata(_edit(shipped_copy, snr_curves=None))["snr_curves"] is None


def test_a_model_of_the_curves_before_issue_14_is_refused_naming_the_fix(shipped_copy):
    _edit(shipped_copy, snr_curves="mawet-snr-per-rank/1")
    with pytest.raises(ValueError, match=r"made as 'mawet-snr-per-rank/1'.*'mawet-snr-per-rank/2'.*known sources.*"
                                         r"`sodinn samples`.*`sodinn train`"):
        read_metadata(shipped_copy)


def test_training_known_sources_only_on_the_training_data():
    from sodinn.adi.sequence import ADISequence

    meta = read_metadata(SHIPPED)
    meta["sample_config"] = {**meta["sample_config"], "known_sources_xy": [[30.0, 12.0]]}
    seq = _noise_sequence(20, 41)
    assert training_known_sources(meta, seq) == ()  # no record of the training data (an older model)
    record = {"cube_sha256": "a" * 64, "angles_sha256": "b" * 64, "north_offset_deg": 0.0}
    meta["training_data"] = record
    assert training_known_sources(meta, seq) == ()  # a sequence made in memory is never recognised
    same = ADISequence(seq.cube, seq.angles_deg, seq.psf, seq.fwhm_px, provenance={**record, "cube_file": "/x/c.fits"})
    assert training_known_sources(meta, same) == ((30.0, 12.0),)
    other = ADISequence(seq.cube, seq.angles_deg, seq.psf, seq.fwhm_px, provenance={**record, "cube_sha256": "c" * 64})
    assert training_known_sources(meta, other) == ()
    turned = ADISequence(seq.cube, seq.angles_deg, seq.psf, seq.fwhm_px, provenance={**record, "north_offset_deg": 5.0})
    assert training_known_sources(meta, turned) == ()
    assert training_known_sources(meta, same.recentered((20.6, 20.2))) == ()  # recentred: positions moved


@pytest.mark.parametrize("name", ["sodinn", "sodinn-snr"])
def test_keras_predict_equals_model_predict_in_chunks(name):
    """predict_on_batch over chunks (the last one short) gives model.predict's outputs, for one input or two."""
    from sodinn.learn.models import SAMPLE_INPUT, SNR_CURVE_INPUT, build_model

    model = build_model(name, (4, 9, 9, 1))
    rng = np.random.default_rng(1)
    x = rng.random((7, 4, 9, 9, 1), dtype=np.float32)
    if name == "sodinn-snr":
        x = {SAMPLE_INPUT: x, SNR_CURVE_INPUT: rng.normal(0, 3, (7, 4)).astype(np.float32)}
    expected = model.predict(x, verbose=0)
    got = keras_predict(model, x, batch_size=3)
    assert got.shape == (7, 1) and np.ptp(got) > 0  # distinct outputs, in order
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_a_fresh_process_loads_and_runs_a_model_without_a_word_on_stderr():
    """Worker processes load models for themselves: no TensorFlow start-up notice, no retracing warning there either."""
    code = (f"import numpy as np; from sodinn.learn.artifact import load_trained; m = load_trained({str(SHIPPED)!r}); "
            "[m.predict_logits(np.random.default_rng(i).random((n, *m.model.input_shape[1:-1]), dtype=np.float32)) "
            "for i, n in enumerate((3, 5, 7, 9, 11, 13, 15, 17))]; print('ok')")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n" and proc.stderr == ""
