import os
import subprocess
import sys
import types
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from sodinn.learn.models import (  # noqa: E402
    MODEL_NAMES,
    MODELS,
    SODIRF,
    build_model,
    build_sodirf,
    check_model_name,
    custom_objects,
    fused_convlstm_class,
    import_keras_quietly,
)

REPO = Path(__file__).resolve().parents[2]


class _NoisyKeras(MetaPathFinder, Loader):
    """A stand-in for ``import keras`` that writes to file descriptor 2 (as TensorFlow's C++ does), then fails or not."""

    def __init__(self, fail):
        self.fail = fail

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        os.write(2, b"oneDNN custom operations are on (C++ start-up notice)\n")
        if self.fail:
            raise ImportError("no module named keras (stand-in)")
        return ModuleSpec(name, self)

    def create_module(self, spec):
        return types.ModuleType(spec.name)

    def exec_module(self, module):
        module.fake = True


@pytest.fixture()
def stand_in_keras(monkeypatch):
    """Import the stand-in instead of Keras; sys.modules["keras"] is put back afterwards."""
    real = sys.modules.pop("keras", None)
    try:
        yield lambda fail: monkeypatch.setattr(sys, "meta_path", [_NoisyKeras(fail), *sys.meta_path])
    finally:
        sys.modules.pop("keras", None)
        if real is not None:
            sys.modules["keras"] = real


def test_import_keras_quietly_returns_keras_and_prints_nothing(capfd):
    keras = import_keras_quietly()
    assert keras is sys.modules["keras"] and hasattr(keras, "Model") and hasattr(keras, "layers")
    assert import_keras_quietly() is keras  # imported once
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] in ("2", "3")


def test_import_keras_quietly_hides_fd2_noise_of_a_working_import(stand_in_keras, capfd):
    stand_in_keras(False)
    module = import_keras_quietly()
    assert module.fake is True and sys.modules["keras"] is module
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    os.write(2, b"after\n")  # file descriptor 2 is the terminal's again
    assert capfd.readouterr().err == "after\n"


def test_import_keras_quietly_shows_the_noise_when_the_import_fails(stand_in_keras, capfd):
    stand_in_keras(True)
    with pytest.raises(ImportError, match=r"no module named keras \(stand-in\)"):
        import_keras_quietly()
    err = capfd.readouterr().err
    assert "oneDNN custom operations are on (C++ start-up notice)" in err
    assert "keras" not in sys.modules


def test_the_registry():
    assert MODEL_NAMES == tuple(MODELS) == ("sodinn", "sodinn-v2", "conv3d", "sodirf", "sodinn-snr")
    assert all(callable(builder) for builder in MODELS.values())
    for name in MODEL_NAMES:
        assert check_model_name(name) == name


@pytest.mark.parametrize("name", ["resnet", "SODINN", "", None, 3])
def test_check_model_name_lists_the_names(name):
    with pytest.raises(ValueError, match=rf"^model must be one of 'sodinn', 'sodinn-v2', 'conv3d', 'sodirf', 'sodinn-snr'; got {name!r}$"):
        check_model_name(name)


def test_check_model_name_and_sodirf_do_not_import_keras():
    code = ("import sys; from sodinn.learn.models import build_model, check_model_name; check_model_name('sodinn'); "
            "import numpy as np; m = build_model('sodirf', (4, 5, 5, 1)).fit(np.zeros((4, 4, 5, 5)), np.r_[0, 1, 0, 1]); "
            "print('keras' in sys.modules, 'tensorflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]


def test_build_model_sodirf_is_an_unfitted_forest():
    model = build_model("sodirf", (10, 9, 9, 1), seed=3)
    assert type(model) is SODIRF
    assert (model.seed, model.n_estimators, model.n_jobs) == (3, 100, None)
    assert not hasattr(model, "forest_")
    with pytest.raises(RuntimeError, match="this SODIRF is not fitted yet; call fit first"):
        model.predict(np.zeros((2, 10, 9, 9, 1)))
    assert build_sodirf((10, 9, 9, 1)).seed == 0


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((10, 9, 9), r"input_shape must be \(K, P, P, 1\); Received: input_shape=\(10, 9, 9\)"),
        ((10, 9, 9, 3), r"input_shape must be \(K, P, P, 1\)"),
        ((10, 9, 7, 1), r"patches must be square; Received: input_shape=\(10, 9, 7, 1\)"),
        ((3, 9, 9, 1), "two 2x2x2 poolings need K >= 4 ranks and P >= 4 px"),
        ((10, 3, 3, 1), "two 2x2x2 poolings need K >= 4 ranks and P >= 4 px"),
    ],
)
def test_bad_input_shapes_are_refused_before_keras(shape, match):
    with pytest.raises(ValueError, match=match):
        build_model("sodirf", shape)


def test_sodirf_fits_and_predicts_like_a_keras_model(rng):
    x = rng.normal(size=(60, 4, 5, 5, 1))
    y = np.r_[np.ones(30, int), np.zeros(30, int)]
    x[y == 1, :, 2, 2] += 5.0  # a bright centre makes the positives
    model = SODIRF(n_estimators=20, seed=1).fit(x, y)
    assert model.input_shape_ == (4, 5, 5, 1)
    p = model.predict(x, verbose=0)  # accepts (and ignores) Keras' keywords
    assert p.shape == (60, 1) and ((p >= 0) & (p <= 1)).all()
    assert p[y == 1].min() > p[y == 0].max()
    np.testing.assert_array_equal(SODIRF(n_estimators=20, seed=1).fit(x, y).predict(x), p)  # seeded
    only_negatives = SODIRF(n_estimators=5).fit(x[y == 0], y[y == 0])
    np.testing.assert_array_equal(only_negatives.predict(x[:3]), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="n_estimators must be >= 1; got 0"):
        SODIRF(n_estimators=0).fit(x, y)


def test_model_builders():
    m = build_model("sodinn", (20, 11, 11, 1))
    assert m.count_params() == 277_217 and m.output_shape == (None, 1)
    assert [layer.name for layer in m.layers][1:3] == ["convlstm_1", "pool_1"]
    v2 = build_model("sodinn-v2", (20, 11, 11, 1))
    assert v2.get_layer("convlstm_2").filters == 80 and v2.get_layer("spatial_dropout_2").rate == 0.25
    assert build_model("conv3d", (10, 9, 9, 1)).output_shape == (None, 1)
    with pytest.raises(ValueError, match="Received: input_shape"):
        build_model("sodinn", (2, 11, 11, 1))
    with pytest.raises(ValueError, match="model must be one of"):
        build_model("resnet", (20, 11, 11, 1))


@pytest.mark.parametrize(("filters", "kernel", "shape"), [(40, 3, (20, 11, 11, 1)), (80, 2, (10, 5, 5, 40))])
def test_sodinn_convlstm_is_keras_convlstm2d(filters, kernel, shape):
    """The same weights for the same seed as keras.layers.ConvLSTM2D, and the same outputs to float32 rounding."""
    import keras

    def one(layer):
        keras.utils.set_random_seed(3)
        inputs = keras.Input(shape)
        return keras.Model(inputs, layer()(inputs))

    ref = one(lambda: keras.layers.ConvLSTM2D(filters, kernel, padding="same", return_sequences=True))
    ours = one(lambda: fused_convlstm_class()(filters, kernel))
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in ref.get_weights()]
    for a, b in zip(ours.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).random((4, *shape), dtype=np.float32)
    expected = ref.predict(x, verbose=0)
    assert np.abs(expected).max() > 0.1  # the outputs are not trivially small
    np.testing.assert_allclose(ours.predict(x, verbose=0), expected, atol=1e-6, rtol=0)
    # and its gradients (the training step) agree too
    import tensorflow as tf

    grads = []
    for model in (ours, ref):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x) ** 2)
        grads.append([g.numpy() for g in tape.gradient(loss, model.trainable_weights)])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


def test_sodinn_convlstm_saves_and_loads(tmp_path):
    import keras

    model = build_model("sodinn", (4, 9, 9, 1))
    model.save(tmp_path / "m.keras")
    x = np.random.default_rng(1).random((3, 4, 9, 9, 1), dtype=np.float32)
    loaded = keras.saving.load_model(tmp_path / "m.keras", custom_objects=custom_objects())
    assert type(loaded.get_layer("convlstm_1")) is fused_convlstm_class()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("name", ["sodinn", "sodinn-snr", "conv3d"])
def test_mixed_bfloat16_convolves_in_bfloat16_and_keeps_weights_head_and_output_in_float32(name, tmp_path):
    import keras

    shape = (6, 9, 9, 1)
    models = {}
    for precision in ("float32", "mixed_bfloat16"):
        keras.utils.set_random_seed(0)
        models[precision] = build_model(name, shape, precision=precision)
    m32, m16 = models["float32"], models["mixed_bfloat16"]
    # the same float32 variables, drawn alike for the same seed
    assert all(w.dtype == np.float32 for w in m16.get_weights())
    for a, b in zip(m16.get_weights(), m32.get_weights()):
        np.testing.assert_array_equal(a, b)
    body = "conv3d_1" if name == "conv3d" else "convlstm_1"
    assert (m16.get_layer(body).compute_dtype, m16.get_layer(body).variable_dtype) == ("bfloat16", "float32")
    assert m32.get_layer(body).compute_dtype == "float32"
    for head in ("flatten", "dense", "probability"):
        assert m16.get_layer(head).compute_dtype == "float32"
    rng = np.random.default_rng(2)
    x = rng.random((8, *shape), dtype=np.float32)
    feed = ({"mlar_sample": x, "snr_curve": rng.normal(size=(8, 6)).astype(np.float32)} if name == "sodinn-snr" else x)
    p32, p16 = (np.asarray(m.predict_on_batch(feed)) for m in (m32, m16))
    assert p16.dtype == np.float32
    # computed in bfloat16 (8 bits of mantissa): not the float32 result, but close to it
    assert not np.array_equal(p16, p32)
    np.testing.assert_allclose(p16, p32, atol=0.02)
    # a saved model keeps its arithmetic
    m16.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", custom_objects=custom_objects())
    assert loaded.get_layer(body).dtype_policy.name == "mixed_bfloat16"
    np.testing.assert_array_equal(np.asarray(loaded.predict_on_batch(feed)), p16)


def test_mixed_bfloat16_convlstm_keeps_its_cell_state_in_float32():
    """Over K = 20 steps the layer's outputs stay within bfloat16 rounding of float32 ones (a bfloat16 cell would drift)."""
    import keras

    layer_class = fused_convlstm_class()
    outputs = {}
    x = np.random.default_rng(4).random((4, 20, 7, 7, 1), dtype=np.float32)
    for precision in ("float32", "mixed_bfloat16"):
        keras.utils.set_random_seed(1)
        layer = layer_class(8, 3, dtype=precision)
        out = layer(x)
        assert keras.backend.standardize_dtype(out.dtype) == ("bfloat16" if precision != "float32" else "float32")
        outputs[precision] = np.asarray(keras.ops.cast(out, "float32"))
    err = np.abs(outputs["mixed_bfloat16"] - outputs["float32"])
    assert 0 < err.max() < 0.03 and err[:, -1].mean() < 4 * err[:, 0].mean() + 1e-3


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of 'float32', 'mixed_bfloat16'; got 'float16'"):
        build_model("sodinn", (20, 11, 11, 1), precision="float16")


def test_sodinn_snr_has_two_named_inputs_and_the_sodinn_branch():
    from sodinn.learn.models import SNR_CURVE_MODELS, needs_snr_curves

    assert needs_snr_curves("sodinn-snr") and not needs_snr_curves("sodinn") and not needs_snr_curves("sodirf")
    assert SNR_CURVE_MODELS <= set(MODEL_NAMES)
    m = build_model("sodinn-snr", (20, 11, 11, 1))
    plain = build_model("sodinn", (20, 11, 11, 1))
    assert {t.name: tuple(t.shape) for t in m.inputs} == {"mlar_sample": (None, 20, 11, 11, 1), "snr_curve": (None, 20)}
    assert type(m.get_layer("convlstm_1")) is fused_convlstm_class()
    assert m.get_layer("snr_dense").units == 32 and m.get_layer("probability").name == "probability"
    # the patch branch as in sodinn; the dense layer also reads the 32 curve features
    assert m.count_params() - plain.count_params() == (20 * 32 + 32) + 32 * 128
    assert m.output_shape == (None, 1)


def test_snr_scaling_clips_and_saves(tmp_path):
    import keras

    from sodinn.learn.models import SNR_CLIP, snr_scaling_class

    inputs = keras.Input((4,))
    model = keras.Model(inputs, snr_scaling_class()(SNR_CLIP)(inputs))
    x = np.array([[-50.0, -5.0, 3.0, np.nan], [np.inf, 0.0, 10.0, 12.0]], dtype=np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), [[-1.0, -0.5, 0.3, 0.0], [1.0, 0.0, 1.0, 1.0]], rtol=1e-6)
    model.save(tmp_path / "s.keras")
    loaded = keras.saving.load_model(tmp_path / "s.keras", custom_objects=custom_objects())
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
