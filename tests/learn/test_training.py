import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from sodinn.config import SampleConfig, TrainConfig  # noqa: E402
from sodinn.learn.artifact import load_trained  # noqa: E402
from sodinn.learn.training import group_split, train  # noqa: E402
from sodinn.mlar.store import SampleFile, generate_sample_file  # noqa: E402


@pytest.fixture(scope="module")
def naco_samples(naco, tmp_path_factory):
    """A small NACO sample set, beta Pic b masked (K=10, 150 samples of each class per annulus)."""
    cfg = SampleConfig(samples_per_annulus=150, n_ranks=10, known_sources_xy=((62, 63),), oracle_azimuths=2, seed=0)
    return generate_sample_file(naco, cfg, tmp_path_factory.mktemp("samples") / "naco.h5", progress=False)


@pytest.fixture(scope="module")
def naco_samples_small(naco, tmp_path_factory):
    """A smaller NACO set (40 samples of each class per annulus, about 560): enough where a test trains to check what
    training computes, not how well it learns (a CPU that emulates bfloat16 trains 13x slower than float32)."""
    cfg = SampleConfig(samples_per_annulus=40, n_ranks=10, known_sources_xy=((62, 63),), oracle_azimuths=2, seed=0)
    return generate_sample_file(naco, cfg, tmp_path_factory.mktemp("samples") / "naco_small.h5", progress=False)


@pytest.fixture(scope="module")
def naco_model(naco_samples, tmp_path_factory):
    """The paper's network trained briefly on the small NACO set (shared by the tests below)."""
    return train(naco_samples, TrainConfig(model="sodinn", epochs=5, batch_size=64, patience=2),
                 tmp_path_factory.mktemp("model") / "m", progress=False)


def test_group_split_never_shares_groups():
    rng = np.random.default_rng(0)
    groups = np.r_[np.arange(300), -rng.integers(1, 40, 300)]
    labels = np.r_[np.ones(300, int), np.zeros(300, int)]
    train_i, val_i, test_i = group_split(groups, labels, val_fraction=0.15, test_fraction=0.15, seed=1)
    sets = [set(groups[i]) for i in (train_i, val_i, test_i)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert train_i.size + val_i.size + test_i.size == 600
    assert 0.08 < test_i.size / 600 < 0.22 and 0.08 < val_i.size / 600 < 0.22
    for part in (train_i, val_i, test_i):
        assert 0.3 < labels[part].mean() < 0.7  # both classes in every part


def test_convlstm_learns_on_naco_with_held_out_groups(naco_samples, naco_model):
    result = naco_model
    folder = result.out_dir
    assert result.metrics["accuracy"] >= 0.8
    assert result.metrics["auc"] >= 0.85
    assert set(result.metrics["per_annulus"]) == set(range(7))
    assert (folder / "history.csv").read_text().count("\n") == len(result.history["loss"]) + 1
    assert not list(folder.glob("*.png"))  # the library writes no figure: sodinn.pipeline.train does
    loaded = load_trained(folder)
    with SampleFile(naco_samples) as f:
        x = f.read(np.arange(20))
        direct = loaded.model.predict(f.read(np.arange(20), normalize=True)[..., None], verbose=0)[:, 0]
        meta = loaded.metadata
        assert meta["patch_px"] == 11 and meta["n_ranks"] == 10 and meta["collapse"] == "mean"
        assert meta["training_set"]["sha256"] and meta["versions"]["backend"]
    np.testing.assert_allclose(loaded.predict(x), direct, rtol=1e-6)
    loaded.check_compatible(4.8, SampleConfig(n_ranks=10))
    with pytest.raises(ValueError, match="trained with patch_px=11"):
        loaded.check_compatible(4.8, SampleConfig(patch_px=13, n_ranks=10))
    with pytest.raises(ValueError, match="far from the training data"):
        loaded.check_compatible(7.5)


def test_beta_pic_b_is_the_top_candidate(naco, naco_model):
    """Detection issue's headline: a model trained with beta Pic b masked finds it as its best blob."""
    from sodinn.detect.candidates import find_candidates
    from sodinn.detect.probability import probability_map

    pmap = probability_map(naco, load_trained(naco_model.out_dir), progress=False)
    table = find_candidates(pmap.probability, 0.9, pixel_scale_arcsec=naco.pixel_scale_arcsec)
    assert np.hypot(table["x"][0] - 62, table["y"][0] - 63) < 2.0
    assert table["sep_arcsec"][0] == pytest.approx(0.48, abs=0.02)


def test_beta_pic_b_is_the_first_candidate_at_the_default_calibrated_threshold(naco, naco_model):
    """Detection issue: at the default budget (1 expected false positive per frame), self-calibrated, b comes first.

    Blind (nothing masked) and with beta Pic b masked as ``configs/naco_betapic.toml`` does; the other
    candidates are few (a Poisson count of mean at most 1: 3 or fewer, at the 98 % level).
    """
    from sodinn.config import PredictConfig
    from sodinn.detect.calibration import calibrate_self
    from sodinn.detect.candidates import find_calibrated_candidates
    from sodinn.detect.probability import probability_map

    budget = PredictConfig().fp_budget
    pmap = probability_map(naco, load_trained(naco_model.out_dir), progress=False)
    for known in ([], [(62.0, 63.0)]):
        calibration = calibrate_self(pmap, naco.fwhm_px, known_sources_xy=known)
        table = find_calibrated_candidates(pmap, calibration, budget, pixel_scale_arcsec=naco.pixel_scale_arcsec)
        assert len(table) >= 1, known
        assert np.hypot(table["x"][0] - 62, table["y"][0] - 63) < 2.0, (known, table)
        assert table["expected_fp"][0] <= budget and len(table) - 1 <= 3, (known, table)


def test_sodirf_and_the_random_split_leak(naco_samples, tmp_path):
    result = train(naco_samples, TrainConfig(model="sodirf", report_random_split=True), tmp_path / "rf", progress=False)
    assert result.metrics["accuracy"] >= 0.8
    assert "random_split" in result.metrics
    assert load_trained(tmp_path / "rf").predict(np.zeros((2, 10, 11, 11))).shape == (2,)


def test_training_resumes_after_interruption(naco_samples, tmp_path):
    import keras

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    import sodinn.learn.training as training

    original = keras.callbacks.CSVLogger
    cfg = TrainConfig(model="conv3d", epochs=4, batch_size=128, patience=10)

    made = []

    class CSVThenStop(original):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            Stop().on_epoch_end(epoch)

    keras.callbacks.CSVLogger = CSVThenStop
    try:
        with pytest.raises(KeyboardInterrupt):
            training.train(naco_samples, cfg, tmp_path / "r", progress=False)
    finally:
        keras.callbacks.CSVLogger = original
        for logger in made:  # a killed process would close it; here the interpreter goes on
            logger.csv_file.close()
    assert (tmp_path / "r" / "backup").exists() and (tmp_path / "r" / "checkpoint.keras").exists()
    result = training.train(naco_samples, cfg, tmp_path / "r", progress=False)
    assert len(result.history["loss"]) == 2  # epochs 3 and 4 only: the first two were restored
    lines = (tmp_path / "r" / "history.csv").read_text().strip().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2", "3"]


def test_train_config_errors():
    with pytest.raises(ValueError, match="val_fraction must be in"):
        TrainConfig(val_fraction=0.6)
    with pytest.raises(ValueError, match="precision must be one of 'float32', 'mixed_bfloat16'; got 'bf16'"):
        TrainConfig(precision="bf16")
    with pytest.raises(ValueError, match="model 'sodirf' .* has no precision setting"):
        TrainConfig(model="sodirf", precision="mixed_bfloat16")
    with pytest.raises(ValueError, match="unknown training setting"):
        TrainConfig.from_dict({"epoch": 3})


# On a CPU that emulates bfloat16 training warns that it is slow (test_bfloat16_on_a_cpu_without_it_warns_...);
# these tests check what it computes, on any CPU.
EMULATED_BF16 = "ignore:this model's precision is 'mixed_bfloat16':sodinn.exceptions.SodinnWarning"


@pytest.mark.filterwarnings(EMULATED_BF16)
@pytest.mark.parametrize(("model", "precision"), [("conv3d", "float32"), ("sodinn", "float32"), ("sodinn", "mixed_bfloat16")])
def test_same_seed_same_training(naco_samples_small, tmp_path, model, precision):
    cfg = TrainConfig(model=model, epochs=1, batch_size=128, precision=precision)
    runs = [train(naco_samples_small, cfg, tmp_path / f"run{i}", resume=False, progress=False) for i in range(2)]
    assert runs[0].history == runs[1].history
    w0, w1 = (load_trained(r.out_dir).model.get_weights() for r in runs)
    assert all(np.array_equal(a, b) for a, b in zip(w0, w1))


def test_samples_in_memory_train_as_streamed_ones(naco_samples, tmp_path, monkeypatch):
    """The samples kept in memory give the same batches as those read from the file: the same training."""
    import sodinn.learn.training as training

    cfg = TrainConfig(model="conv3d", epochs=2, batch_size=128)
    assert training.IN_MEMORY_BYTES > 2 * 2100 * 10 * 11 * 11 * 4  # this small set is kept in memory
    memory = train(naco_samples, cfg, tmp_path / "memory", progress=False)
    monkeypatch.setattr(training, "IN_MEMORY_BYTES", 0)
    streamed = train(naco_samples, cfg, tmp_path / "streamed", progress=False)
    assert memory.history == streamed.history and memory.metrics == streamed.metrics
    w0, w1 = (load_trained(r.out_dir).model.get_weights() for r in (memory, streamed))
    assert all(np.array_equal(a, b) for a, b in zip(w0, w1))


def test_group_split_stratified_by_annulus():
    rng = np.random.default_rng(3)
    annulus = np.repeat(np.arange(5), 120)
    labels = np.tile(np.r_[np.ones(60, int), np.zeros(60, int)], 5)
    groups = np.where(labels == 1, np.arange(600), -(annulus * 100 + rng.integers(1, 7, 600)))
    train_i, val_i, test_i = group_split(groups, labels, val_fraction=0.15, test_fraction=0.15, seed=0, strata=annulus)
    for part in (train_i, val_i, test_i):
        for a in range(5):  # every annulus and both classes in every part
            assert set(labels[part][annulus[part] == a]) == {0, 1}
    assert not (set(groups[train_i]) & set(groups[test_i]))


@pytest.fixture(scope="module")
def small_samples(small_sequence, tmp_path_factory):
    """A tiny synthetic sample file with S/N curves (6 ranks, 9 px patches), and the same file without them."""
    import h5py

    from ..conftest import small_flux_ranges, small_samples_config

    folder = tmp_path_factory.mktemp("small")
    path = generate_sample_file(small_sequence, small_samples_config(), folder / "s.h5",
                                flux_ranges=small_flux_ranges(small_sequence), n_jobs=1, progress=False)
    old = folder / "old.h5"  # a file made before S/N curves existed
    old.write_bytes(path.read_bytes())
    with h5py.File(old, "a") as h:
        del h["snr_curves"]
        del h.attrs["snr_curves"]
    return path, old


def test_sodinn_snr_trains_on_samples_and_curves_and_predicts_alike_after_loading(small_samples, tmp_path):
    import keras

    path, _ = small_samples
    result = train(path, TrainConfig(model="sodinn-snr", epochs=2, batch_size=16), tmp_path / "m", progress=False)
    assert len(result.history["loss"]) == 2 and np.isfinite(result.history["loss"]).all()
    loaded = load_trained(result.out_dir)
    assert loaded.needs_snr_curves and loaded.metadata["snr_curves"] == "mawet-snr-per-rank/2"
    assert {t.name for t in loaded.model.inputs} == {"mlar_sample", "snr_curve"}
    with SampleFile(path) as f:
        idx = np.arange(0, len(f), 3)
        x, curves = f.read(idx), f.snr_curves[idx]
    logits = loaded.predict_logits(x, curves)
    # the in-memory model (the checkpoint of the same weights) gives the same logits
    in_memory = keras.saving.load_model(result.out_dir / "model.keras")
    feed = {"mlar_sample": loaded.inputs(x, curves)["mlar_sample"], "snr_curve": curves}
    direct = in_memory.predict(feed, verbose=0)[:, 0].astype(np.float64)
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), direct, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.predict(x, curves), direct, rtol=1e-6)
    # the curves are an input: other curves, other logits
    assert not np.allclose(loaded.predict_logits(x, curves + 5.0), logits)
    with pytest.raises(ValueError, match="pass snr_curves"):
        loaded.predict_logits(x)
    with pytest.raises(ValueError, match="snr_curves must have shape"):
        loaded.predict_logits(x, curves[:, :2])


def test_a_sample_file_without_curves_is_refused_for_sodinn_snr_only(small_samples, tmp_path):
    from sodinn.exceptions import SettingError

    _, old = small_samples
    with SampleFile(old) as f:
        assert f.snr_curves is None
    with pytest.raises(SettingError, match=r"model 'sodinn-snr' needs the S/N curves .* re-run `sodinn samples`"):
        train(old, TrainConfig(model="sodinn-snr", epochs=1, batch_size=16), tmp_path / "snr", progress=False)
    assert not (tmp_path / "snr").exists()
    result = train(old, TrainConfig(model="conv3d", epochs=1, batch_size=16), tmp_path / "c3", progress=False)
    assert result.metrics["n"] > 0 and load_trained(result.out_dir).metadata["snr_curves"] is None


def test_weight_averaging_validates_and_keeps_the_averaged_weights(naco_samples, tmp_path):
    """Polyak averaging leaves the optimiser's path alone and changes what is validated and kept; momentum 0 is no averaging."""
    base = dict(model="conv3d", epochs=2, batch_size=128, patience=10)
    plain, zero, ema = (train(naco_samples, TrainConfig(**base, ema_momentum=m), tmp_path / f"m{i}", resume=False,
                              progress=False) for i, m in enumerate((None, 0.0, 0.9)))
    weights = [load_trained(r.out_dir).model.get_weights() for r in (plain, zero, ema)]
    assert zero.history == plain.history and all(np.array_equal(a, b) for a, b in zip(weights[0], weights[1]))
    # the same steps from the same start, up to float32 rounding: Keras swaps the weights in place by additions
    np.testing.assert_allclose(ema.history["loss"], plain.history["loss"], rtol=1e-5)
    assert ema.history["val_loss"] != plain.history["val_loss"]  # validated on the averaged weights
    assert not all(np.array_equal(a, b) for a, b in zip(weights[0], weights[2]))
    with pytest.raises(ValueError, match="ema_momentum must be in"):
        TrainConfig(ema_momentum=1.0)


def test_bfloat16_on_a_cpu_without_it_warns_before_training(naco_samples, tmp_path, monkeypatch):
    import sodinn.learn.artifact as artifact
    import sodinn.learn.training as training
    from sodinn.exceptions import SodinnWarning

    monkeypatch.setattr(artifact, "native_bfloat16", lambda: False)
    monkeypatch.setattr(artifact, "_has_gpu", lambda: False)
    monkeypatch.setattr(training, "_sequence_class", lambda: (_ for _ in ()).throw(RuntimeError("training started")))
    with pytest.warns(SodinnWarning, match=r"neither AVX512-BF16 nor AMX-BF16 .* trains slower .* precision = \"float32\""), \
            pytest.raises(RuntimeError, match="training started"):
        train(naco_samples, TrainConfig(model="sodinn", epochs=1, precision="mixed_bfloat16"), tmp_path / "m",
              progress=False)
    assert not artifact.warn_if_bfloat16_emulated("float32")
    monkeypatch.setattr(artifact, "_has_gpu", lambda: True)  # a GPU runs bfloat16 natively
    assert not artifact.warn_if_bfloat16_emulated("mixed_bfloat16")
    monkeypatch.setattr(artifact, "_has_gpu", lambda: False)
    monkeypatch.setattr(artifact, "native_bfloat16", lambda: True)
    assert not artifact.warn_if_bfloat16_emulated("mixed_bfloat16")


@pytest.mark.filterwarnings(EMULATED_BF16)
def test_mixed_bfloat16_trains_saves_and_predicts_float64_logits(naco_samples_small, tmp_path):
    """A model trained in mixed precision records it, loads with its layers in bfloat16 and gives float32 outputs."""
    result = train(naco_samples_small, TrainConfig(model="sodinn", epochs=2, batch_size=64, precision="mixed_bfloat16"),
                   tmp_path / "m", progress=False)
    assert np.isfinite(result.history["loss"]).all() and result.metrics["auc"] > 0.8
    loaded = load_trained(result.out_dir)
    assert loaded.metadata["train_config"]["precision"] == "mixed_bfloat16"
    import sodinn.learn.artifact as artifact
    from sodinn.exceptions import SodinnWarning

    with pytest.MonkeyPatch.context() as mp, pytest.warns(SodinnWarning, match="it predicts slower"):
        mp.setattr(artifact, "native_bfloat16", lambda: False)
        mp.setattr(artifact, "_has_gpu", lambda: False)
        load_trained(result.out_dir)
    assert loaded.model.get_layer("convlstm_2").compute_dtype == "bfloat16"
    with SampleFile(naco_samples_small) as f:
        x = f.read(np.arange(0, len(f), 2))
    logits = loaded.predict_logits(x)
    assert logits.dtype == np.float64 and np.unique(logits).size > 0.99 * logits.size  # no bfloat16 ties
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), loaded.predict(x), rtol=1e-5, atol=1e-6)
