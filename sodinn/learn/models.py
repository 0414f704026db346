"""Classifiers of MLAR samples: a small registry of model builders (SPEC §4).

Every Keras builder is a pure function ``build_*(input_shape, *, ...) -> keras.Model`` using Keras 3
layers only (no backend-specific calls), so ``KERAS_BACKEND=torch`` or ``jax`` runs it too. Input
shape is ``(K, P, P, 1)``: the PCA-rank axis is the sequence axis of the ConvLSTM.

| name | model |
| --- | --- |
| ``sodinn`` | the paper: ConvLSTM2D(40, 3x3) -> MaxPool3D -> ConvLSTM2D(40, 3x3) -> MaxPool3D -> Dense(128) -> Dropout(0.5) -> sigmoid |
| ``sodinn-snr`` | ``sodinn`` plus the sample's S/N curve (NA-SODINN, Cantero et al. 2023) through Dense(32), before Dense(128) |
| ``sodinn-v2`` | the later package: filters 40/80, second kernel 2x2, spatial dropout 0.5/0.25 |
| ``conv3d`` | a 3-D convolutional alternative (Conv3D 32/64, 3x3x3) |
| ``sodirf`` | scikit-learn random forest (100 trees) on the flattened sample (the paper's SODIRF) |

Models of :data:`SNR_CURVE_MODELS` take two named inputs, ``{"mlar_sample": (n, K, P, P, 1),
"snr_curve": (n, K)}``; the others take the samples alone (SODIRF stays patch-only).

:data:`MODELS` is the registry (a new model is one entry); :func:`import_keras_quietly` imports Keras
with TensorFlow's C++ start-up notices kept off the terminal (they are written to file descriptor 2
before ``TF_CPP_MIN_LOG_LEVEL`` takes effect; they are shown only if the import fails).
"""

from __future__ import annotations

import functools
import logging
import os
import random
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sodinn import _validation as v
from sodinn.config import PRECISIONS

__all__ = [
    "MODELS",
    "MODEL_NAMES",
    "SAMPLE_INPUT",
    "SNR_CLIP",
    "SNR_CURVE_INPUT",
    "SNR_CURVE_MODELS",
    "SODIRF",
    "build_conv3d",
    "build_convlstm",
    "build_model",
    "build_sodinn",
    "build_sodinn_snr",
    "build_sodinn_v2",
    "build_sodirf",
    "check_model_name",
    "custom_objects",
    "fused_convlstm_class",
    "import_keras_quietly",
    "needs_snr_curves",
    "snr_scaling_class",
]

#: Name of the MLAR-sample input of every Keras model
SAMPLE_INPUT = "mlar_sample"
#: Name of the S/N-curve input of the models of :data:`SNR_CURVE_MODELS`
SNR_CURVE_INPUT = "snr_curve"
#: The models that take each sample's S/N curve beside its patches
SNR_CURVE_MODELS = frozenset({"sodinn-snr"})
#: S/N curves are clipped to +-SNR_CLIP and divided by it inside the models (a fixed rule, no fitted statistics)
SNR_CLIP = 10.0


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 4 or shape[-1] != 1:
        msg = f"input_shape must be (K, P, P, 1); Received: input_shape={tuple(input_shape)}"
        raise ValueError(msg)
    k, p, q, _ = shape
    if p != q:
        msg = f"patches must be square; Received: input_shape={shape}"
        raise ValueError(msg)
    if k < 4 or p < 4:
        msg = f"two 2x2x2 poolings need K >= 4 ranks and P >= 4 px; Received: input_shape={shape}"
        raise ValueError(msg)
    return shape  # type: ignore[return-value]


@functools.cache
def fused_convlstm_class() -> type:
    """Return sodinn's ConvLSTM2D layer class (registered for saving as ``"sodinn>ConvLSTM2D"``).

    The same layer as ``keras.layers.ConvLSTM2D(filters, kernel_size, padding="same",
    return_sequences=True)`` (Shi et al. 2015, NeurIPS; the recurrent unit of the SODINN network,
    Gomez Gonzalez et al. 2018, A&A 613, A71): the same weights (``kernel`` of shape
    ``(kh, kw, C, 4F)``, ``recurrent_kernel`` ``(kh, kw, F, 4F)``, ``bias`` ``(4F,)``, gates in the
    order i, f, c, o, forget bias initialised to 1), the same initial values for the same seed, and the
    same outputs to float32 rounding, computed with fewer, larger products so that a CPU runs it near
    its matrix-multiply rate:

    - each step is one convolution of the step's input and the previous output, concatenated
      (``C + F -> 4F`` channels, the two kernels concatenated likewise), for the four gates at once
      (Keras' cell makes eight convolutions of ``F`` output channels per step); the first step, where
      the state is 0, convolves its input alone. (A first version convolved the K inputs at once
      outside the recurrence: its ``batch x K x P x P x 4F`` output, sliced into steps and reduced for
      the bias gradient, cost more in memory traffic than it saved: 8-15 % of a training step.)
    - the K steps are unrolled (K is fixed by the input shape), so no backend needs a loop construct.
    - under a mixed dtype policy (``dtype="mixed_bfloat16"``, :attr:`sodinn.config.TrainConfig.precision`)
      the convolutions run in bfloat16 and the bias, the gates and the cell state in float32, as mixed
      precision training keeps its sensitive sums (Micikevicius et al. 2018, ICLR); under ``"float32"``
      the layer computes exactly as before.

    Keras 3 operations only (``keras.ops``), so the TensorFlow, JAX and torch backends run it.

    Returns
    -------
    type
        A ``keras.layers.Layer`` subclass, ``ConvLSTM2D(filters, kernel_size, *, name=None)``; input
        ``(batch, K, P, P, C)``, output ``(batch, K, P, P, filters)`` (sequences returned, "same"
        padding, channels last).
    """
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="sodinn", name="ConvLSTM2D")
    class ConvLSTM2D(keras.layers.Layer):
        def __init__(self, filters: int, kernel_size: int | tuple[int, int], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.filters = int(filters)
            self.kernel_size = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
            # keras.layers.ConvLSTM2D draws three seeds here (its dropout seed, then its two initializers'):
            # drawing them in the same order gives the same initial weights for the same seed
            random.randint(1, int(1e9))
            self.kernel_initializer = keras.initializers.GlorotUniform()
            self.recurrent_initializer = keras.initializers.Orthogonal()
            self.input_spec = keras.layers.InputSpec(ndim=5)

        def build(self, input_shape: tuple) -> None:
            f = self.filters
            self.kernel = self.add_weight(shape=(*self.kernel_size, input_shape[-1], 4 * f),
                                          initializer=self.kernel_initializer, name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(*self.kernel_size, f, 4 * f),
                                                    initializer=self.recurrent_initializer, name="recurrent_kernel")
            forget_ones = np.concatenate([np.zeros(f), np.ones(f), np.zeros(2 * f)]).astype("float32")
            # never cast to the compute dtype: the bias is added to the gates in float32 (see call)
            self.bias = self.add_weight(shape=(4 * f,), initializer=keras.initializers.Constant(forget_ones), name="bias",
                                        autocast=False)

        def call(self, inputs: Any) -> Any:
            # The convolutions run in the compute dtype (bfloat16 under "mixed_bfloat16"); the bias, the
            # gates and the cell state in the variables' dtype (float32). Under "float32" every cast is the
            # identity and the layer computes what it always did.
            low, high = self.compute_dtype, self.variable_dtype
            # unstacked at once: the gradient of K slices inputs[:, t] would be K zero-padded copies
            steps = ops.unstack(ops.cast(inputs, low), num=inputs.shape[1], axis=1)
            kernel = ops.cast(self.kernel, low)
            both = ops.concatenate([kernel, ops.cast(self.recurrent_kernel, low)], axis=2)
            # the first step: zero state, no recurrent term
            z = ops.cast(ops.conv(steps[0], kernel, padding="same"), high) + self.bias
            i, _, g, o = ops.split(z, 4, axis=-1)
            cell = ops.sigmoid(i) * ops.tanh(g)
            outputs = [ops.cast(ops.sigmoid(o) * ops.tanh(cell), low)]
            for xt in steps[1:]:
                z = ops.cast(ops.conv(ops.concatenate([xt, outputs[-1]], axis=-1), both, padding="same"), high) + self.bias
                i, f, g, o = ops.split(z, 4, axis=-1)
                cell = ops.sigmoid(f) * cell + ops.sigmoid(i) * ops.tanh(g)
                outputs.append(ops.cast(ops.sigmoid(o) * ops.tanh(cell), low))
            return ops.stack(outputs, axis=1)

        def compute_output_shape(self, input_shape: tuple) -> tuple:
            return (*input_shape[:-1], self.filters)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}

    return ConvLSTM2D


@functools.cache
def snr_scaling_class() -> type:
    """Return sodinn's S/N-scaling layer class (registered for saving as ``"sodinn>SNRScaling"``).

    ``SNRScaling(clip)`` maps an S/N curve to ``clip(nan_to_num(x), -clip, clip) / clip``, in
    [-1, 1]: a fixed rule saved with the model, so training and prediction scale alike without
    statistics of the training set. Keras 3 operations only.

    Returns
    -------
    type
        A ``keras.layers.Layer`` subclass, ``SNRScaling(clip, *, name=None)``; output shaped as its input.
    """
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="sodinn", name="SNRScaling")
    class SNRScaling(keras.layers.Layer):
        def __init__(self, clip: float = SNR_CLIP, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.clip = float(clip)

        def call(self, inputs: Any) -> Any:
            x = ops.nan_to_num(inputs, nan=0.0, posinf=self.clip, neginf=-self.clip)
            return ops.clip(x, -self.clip, self.clip) / self.clip

        def compute_output_shape(self, input_shape: tuple) -> tuple:
            return input_shape

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "clip": self.clip}

    return SNRScaling


def custom_objects() -> dict[str, type]:
    """Return the layers of sodinn's models by their saved names, for ``keras.saving.load_model``.

    Returns
    -------
    dict of str to type
        ``{"sodinn>ConvLSTM2D": fused_convlstm_class(), "sodinn>SNRScaling": snr_scaling_class()}``;
        building them also registers them with Keras.
    """
    return {"sodinn>ConvLSTM2D": fused_convlstm_class(), "sodinn>SNRScaling": snr_scaling_class()}


def build_convlstm(
    input_shape: Sequence[int],
    *,
    filters: tuple[int, int] = (40, 40),
    kernel_sizes: tuple[int, int] = (3, 3),
    dense_units: int = 128,
    dropout: float = 0.5,
    spatial_dropout: tuple[float, float] | None = None,
    snr_units: int | None = None,
    precision: str = "float32",
    name: str = "sodinn",
) -> Any:
    """Build two ConvLSTM2D blocks with 3-D max pooling, a dense layer and a sigmoid output.

    The architecture of SPEC §4 (Gomez Gonzalez et al. 2018, A&A 613, A71): each block is
    ConvLSTM2D -> [SpatialDropout3D] -> MaxPooling3D(2, 2, 2), then Flatten -> Dense(ReLU) ->
    Dropout -> Dense(1, sigmoid). Every layer is named.

    Parameters
    ----------
    input_shape : sequence of int, (K, P, P, 1)
        Sample shape: K ranks (the ConvLSTM's sequence axis), square P x P patches, K, P >= 4.
    filters, kernel_sizes : (int, int)
        Of the two ConvLSTM2D layers ("same" padding, sequences returned).
    dense_units : int
        Units of the dense ReLU layer.
    dropout : float
        Dropout rate before the output layer, in [0, 1).
    spatial_dropout : (float, float), optional
        SpatialDropout3D rate after each ConvLSTM2D (the later variant); default none.
    snr_units : int, optional
        With a value: a second input ``snr_curve`` of shape (K,), scaled by :func:`snr_scaling_class`
        and passed through Dense(``snr_units``, ReLU), concatenated with the flattened ConvLSTM
        features before the dense layer (NA-SODINN's S/N-curve features). Default: patches only.
    precision : {"float32", "mixed_bfloat16"}
        Keras dtype policy of the ConvLSTM, dropout and pooling layers (:attr:`sodinn.config.TrainConfig.precision`);
        the dense head and the output stay float32 whatever it is, so logits keep float32 resolution.
    name : str
        The model's name.

    Returns
    -------
    keras.Model
        Uncompiled; output P(companion), shape (batch, 1). Inputs: ``mlar_sample``, and
        ``snr_curve`` with ``snr_units``.

    Raises
    ------
    ValueError
        If ``input_shape`` is not ``(K, P, P, 1)`` with K, P >= 4, ``filters`` or ``kernel_sizes``
        is not two positive integers, ``dropout`` is outside [0, 1), ``snr_units < 1``, or
        ``precision`` is not one of :data:`sodinn.config.PRECISIONS`.
    """
    import keras

    shape = _check_input_shape(input_shape)
    v.check_choice(precision, PRECISIONS, name="precision")
    for value, label in ((filters, "filters"), (kernel_sizes, "kernel_sizes")):
        if len(value) != 2 or min(value) < 1:
            msg = f"{label} must be two positive integers; Received: {label}={value}"
            raise ValueError(msg)
    if not 0 <= dropout < 1:
        msg = f"dropout must be in [0, 1); Received: dropout={dropout}"
        raise ValueError(msg)
    if snr_units is not None and snr_units < 1:
        msg = f"snr_units must be a positive integer; Received: snr_units={snr_units}"
        raise ValueError(msg)
    inputs = keras.Input(shape=shape, name=SAMPLE_INPUT)
    x = inputs
    convlstm = fused_convlstm_class()
    for i in range(2):
        x = convlstm(filters[i], kernel_sizes[i], name=f"convlstm_{i + 1}", dtype=precision)(x)
        if spatial_dropout is not None:
            x = keras.layers.SpatialDropout3D(spatial_dropout[i], name=f"spatial_dropout_{i + 1}", dtype=precision)(x)
        x = keras.layers.MaxPooling3D(pool_size=(2, 2, 2), name=f"pool_{i + 1}", dtype=precision)(x)
    x = keras.layers.Flatten(name="flatten", dtype="float32")(x)
    model_inputs: Any = inputs
    if snr_units is not None:
        curve = keras.Input(shape=(shape[0],), name=SNR_CURVE_INPUT)
        c = snr_scaling_class()(SNR_CLIP, name="snr_scaling")(curve)
        c = keras.layers.Dense(snr_units, activation="relu", name="snr_dense", dtype="float32")(c)
        x = keras.layers.Concatenate(name="concatenate", dtype="float32")([x, c])
        model_inputs = {SAMPLE_INPUT: inputs, SNR_CURVE_INPUT: curve}
    x = keras.layers.Dense(dense_units, activation="relu", name="dense", dtype="float32")(x)
    x = keras.layers.Dropout(dropout, name="dropout", dtype="float32")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="probability", dtype="float32")(x)
    return keras.Model(model_inputs, outputs, name=name)


def build_sodinn_snr(input_shape: Sequence[int], *, precision: str = "float32") -> Any:
    """Build SODINN with each sample's S/N curve as a second input (NA-SODINN, Cantero et al. 2023, A&A 680, A86).

    The ``sodinn`` network on the patches (:func:`build_sodinn`); the (K,) S/N curve (the sample's
    S/N at each of its K ranks, :mod:`sodinn.mlar.features`) clipped to +-:data:`SNR_CLIP` and divided
    by it, through Dense(32, ReLU); both concatenated before Dense(128) -> Dropout(0.5) -> sigmoid.
    The curves restore what the per-rank min-max normalisation of the patches erases: a sample's
    brightness relative to the noise of its annulus.

    Parameters
    ----------
    input_shape : sequence of int, (K, P, P, 1)
        Sample shape: K ranks (the ConvLSTM's sequence axis), square P x P patches, K, P >= 4; the
        curve input has shape (K,).
    precision : {"float32", "mixed_bfloat16"}
        Keras dtype policy of the convolutional layers (:attr:`sodinn.config.TrainConfig.precision`).

    Returns
    -------
    keras.Model
        Uncompiled, named ``"sodinn_snr"``; inputs ``{"mlar_sample", "snr_curve"}``, output
        P(companion), shape (batch, 1).

    Raises
    ------
    ValueError
        If ``input_shape`` is not ``(K, P, P, 1)`` with K, P >= 4.
    """
    return build_convlstm(input_shape, snr_units=32, precision=precision, name="sodinn_snr")


def needs_snr_curves(name: str) -> bool:
    """Tell whether the model registered as ``name`` takes the samples' S/N curves; Keras is not imported.

    Parameters
    ----------
    name : str
        A name of :data:`MODELS`.

    Returns
    -------
    bool
        True for the models of :data:`SNR_CURVE_MODELS`.

    Raises
    ------
    ValueError
        If ``name`` is not registered.
    """
    return check_model_name(name) in SNR_CURVE_MODELS


def build_sodinn(input_shape: Sequence[int], *, precision: str = "float32") -> Any:
    """Build the paper's network (SPEC §4; Gomez Gonzalez et al. 2018, A&A 613, A71).

    ConvLSTM2D(40, 3x3) -> MaxPool3D -> ConvLSTM2D(40, 3x3) -> MaxPool3D -> Dense(128) -> Dropout(0.5)
    -> sigmoid (:func:`build_convlstm` with its defaults).

    Parameters
    ----------
    input_shape : sequence of int, (K, P, P, 1)
        Sample shape: K ranks (the ConvLSTM's sequence axis), square P x P patches, K, P >= 4.
    precision : {"float32", "mixed_bfloat16"}
        Keras dtype policy of the convolutional layers (:attr:`sodinn.config.TrainConfig.precision`).

    Returns
    -------
    keras.Model
        Uncompiled, named ``"sodinn"``; output P(companion), shape (batch, 1).

    Raises
    ------
    ValueError
        If ``input_shape`` is not ``(K, P, P, 1)`` with K, P >= 4.
    """
    return build_convlstm(input_shape, precision=precision, name="sodinn")


def build_sodinn_v2(input_shape: Sequence[int], *, precision: str = "float32") -> Any:
    """Build the later SODINN package's variant: filters 40/80, second kernel 2x2, spatial dropout 0.5/0.25.

    SPEC §4; otherwise as :func:`build_sodinn`.

    Parameters
    ----------
    input_shape : sequence of int, (K, P, P, 1)
        Sample shape: K ranks (the ConvLSTM's sequence axis), square P x P patches, K, P >= 4.
    precision : {"float32", "mixed_bfloat16"}
        Keras dtype policy of the convolutional layers (:attr:`sodinn.config.TrainConfig.precision`).

    Returns
    -------
    keras.Model
        Uncompiled, named ``"sodinn_v2"``; output P(companion), shape (batch, 1).

    Raises
    ------
    ValueError
        If ``input_shape`` is not ``(K, P, P, 1)`` with K, P >= 4.
    """
    return build_convlstm(input_shape, filters=(40, 80), kernel_sizes=(3, 2), spatial_dropout=(0.5, 0.25),
                          precision=precision, name="sodinn_v2")


def build_conv3d(input_shape: Sequence[int], *, filters: tuple[int, int] = (32, 64), dense_units: int = 128,
                 dropout: float = 0.5, precision: str = "float32") -> Any:
    """Build a 3-D convolutional alternative: Conv3D -> MaxPool3D, twice, then dense layers.

    Conv3D(3x3x3, "same", ReLU) -> MaxPooling3D(2, 2, 2), twice, then Flatten -> Dense(ReLU) ->
    Dropout -> Dense(1, sigmoid). Not from the paper.

    Parameters
    ----------
    input_shape : sequence of int, (K, P, P, 1)
        Sample shape: K ranks (the ConvLSTM's sequence axis), square P x P patches, K, P >= 4.
    filters : (int, int)
        Filters of the two Conv3D layers.
    dense_units : int
        Units of the dense ReLU layer.
    dropout : float
        Dropout rate before the output layer, in [0, 1).
    precision : {"float32", "mixed_bfloat16"}
        Keras dtype policy of the Conv3D and pooling layers (:attr:`sodinn.config.TrainConfig.precision`);
        the dense head and the output stay float32.

    Returns
    -------
    keras.Model
        Uncompiled, named ``"conv3d"``; output P(companion), shape (batch, 1).

    Raises
    ------
    ValueError
        If ``input_shape`` is not ``(K, P, P, 1)`` with K, P >= 4.
    """
    import keras

    shape = _check_input_shape(input_shape)
    v.check_choice(precision, PRECISIONS, name="precision")
    inputs = keras.Input(shape=shape, name="mlar_sample")
    x = inputs
    for i in range(2):
        x = keras.layers.Conv3D(filters[i], 3, padding="same", activation="relu", name=f"conv3d_{i + 1}",
                                dtype=precision)(x)
        x = keras.layers.MaxPooling3D(pool_size=(2, 2, 2), name=f"pool_{i + 1}", dtype=precision)(x)
    x = keras.layers.Flatten(name="flatten", dtype="float32")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="dense", dtype="float32")(x)
    x = keras.layers.Dropout(dropout, name="dropout", dtype="float32")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="probability", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="conv3d")


class SODIRF:
    """Random forest on flattened samples (the paper's SODIRF), with a ``predict`` like the Keras models.

    The classical-ML baseline of SPEC §4 (Gomez Gonzalez et al. 2018, A&A 613, A71): a
    scikit-learn ``RandomForestClassifier`` on the flattened samples.

    Parameters
    ----------
    n_estimators : int
        Trees of the forest (>= 1).
    seed : int
        ``random_state`` of the forest.
    n_jobs : int, optional
        Parallel jobs of the forest (scikit-learn's meaning; default one).

    Attributes
    ----------
    forest_ : sklearn.ensemble.RandomForestClassifier
        The fitted forest (set by :meth:`fit`).
    input_shape_ : tuple of int
        Shape of one training sample.
    """

    def __init__(self, n_estimators: int = 100, *, seed: int = 0, n_jobs: int | None = None) -> None:
        self.n_estimators = n_estimators
        self.seed = seed
        self.n_jobs = n_jobs

    def fit(self, x: np.ndarray, y: np.ndarray) -> SODIRF:
        """Fit the forest on samples and their labels.

        Parameters
        ----------
        x : ndarray, shape (n, K, P, P) or (n, K, P, P, 1)
            Normalised samples (flattened here).
        y : ndarray, shape (n,)
            Labels: 1 for C+, 0 for C-.

        Returns
        -------
        SODIRF
            ``self``, fitted.

        Raises
        ------
        TypeError
            If ``n_estimators`` is not an integer.
        ValueError
            If ``n_estimators < 1``.
        """
        from sklearn.ensemble import RandomForestClassifier

        v.check_int(self.n_estimators, name="n_estimators", minimum=1)
        self.forest_ = RandomForestClassifier(n_estimators=self.n_estimators, random_state=self.seed, n_jobs=self.n_jobs)
        self.forest_.fit(np.asarray(x).reshape(len(x), -1), np.asarray(y).ravel())
        self.input_shape_ = tuple(np.asarray(x).shape[1:])
        return self

    def predict(self, x: np.ndarray, **_: Any) -> np.ndarray:
        """Predict P(companion) as an ``(n, 1)`` array (the Keras models' output shape).

        Parameters
        ----------
        x : ndarray, shape (n, K, P, P) or (n, K, P, P, 1)
            Normalised samples, shaped as in :meth:`fit`.
        **_ : dict
            Ignored keywords (e.g. Keras' ``verbose``), so that calls written for Keras models work.

        Returns
        -------
        ndarray of float64, shape (n, 1)
            The trees' mean C+ probability (0 everywhere if the forest never saw a C+ sample).

        Raises
        ------
        RuntimeError
            If the forest is not fitted yet.
        """
        if not hasattr(self, "forest_"):
            msg = "this SODIRF is not fitted yet; call fit first"
            raise RuntimeError(msg)
        proba = self.forest_.predict_proba(np.asarray(x).reshape(len(x), -1))
        positive = list(self.forest_.classes_).index(1) if 1 in self.forest_.classes_ else None
        return (proba[:, positive] if positive is not None else np.zeros(len(x)))[:, None]


def build_sodirf(input_shape: Sequence[int], *, seed: int = 0) -> SODIRF:
    """Build the paper's SODIRF baseline: an unfitted random forest of 100 trees for samples of ``input_shape``.

    Parameters
    ----------
    input_shape : sequence of int, (K, P, P, 1)
        Sample shape: K ranks (the ConvLSTM's sequence axis), square P x P patches, K, P >= 4.
    seed : int
        ``random_state`` of the forest.

    Returns
    -------
    SODIRF
        Unfitted.

    Raises
    ------
    ValueError
        If ``input_shape`` is not ``(K, P, P, 1)`` with K, P >= 4.
    """
    _check_input_shape(input_shape)
    return SODIRF(seed=seed)


#: The model registry: name -> builder ``builder(input_shape, *, seed, precision) -> model`` (SODIRF ignores the
#: precision: a forest has no dtype policy). A new model is one entry.
MODELS: dict[str, Callable[..., Any]] = {
    "sodinn": lambda shape, *, seed=0, precision="float32": build_sodinn(shape, precision=precision),
    "sodinn-v2": lambda shape, *, seed=0, precision="float32": build_sodinn_v2(shape, precision=precision),
    "conv3d": lambda shape, *, seed=0, precision="float32": build_conv3d(shape, precision=precision),
    "sodirf": lambda shape, *, seed=0, precision="float32": build_sodirf(shape, seed=seed),
    "sodinn-snr": lambda shape, *, seed=0, precision="float32": build_sodinn_snr(shape, precision=precision),
}

MODEL_NAMES = tuple(MODELS)


def check_model_name(name: str) -> str:
    """Return ``name`` if it names a model of the registry (:data:`MODELS`); Keras is not imported.

    Parameters
    ----------
    name : str
        A model name, e.g. ``"sodinn"``.

    Returns
    -------
    str
        ``name``, unchanged.

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the registered names.
    """
    return v.check_choice(name, MODEL_NAMES, name="model")


def build_model(name: str, input_shape: Sequence[int], *, seed: int = 0, precision: str = "float32") -> Any:
    """Build the model registered as ``name`` for samples of ``input_shape`` = (K, P, P, 1).

    Parameters
    ----------
    name : str
        A name of :data:`MODELS`.
    input_shape : sequence of int, (K, P, P, 1)
        Sample shape: K ranks (the ConvLSTM's sequence axis), square P x P patches, K, P >= 4.
    seed : int
        Seeds the models that take one (SODIRF); Keras models are seeded by the training.
    precision : {"float32", "mixed_bfloat16"}
        The Keras models' convolution arithmetic (:attr:`sodinn.config.TrainConfig.precision`);
        SODIRF ignores it.

    Returns
    -------
    keras.Model or SODIRF
        Uncompiled (Keras) or unfitted (SODIRF).

    Raises
    ------
    ValueError
        For an unknown name, a bad input shape or an unknown precision.
    """
    v.check_choice(precision, PRECISIONS, name="precision")
    return MODELS[check_model_name(name)](input_shape, seed=seed, precision=precision)


def import_keras_quietly() -> Any:
    """Import and return Keras with TensorFlow's C++ start-up notices kept off the terminal.

    TensorFlow's Python warnings (e.g. ``tf.function`` retracing notices when many models predict in
    one process) are kept off too: its ``"tensorflow"`` logger shows errors only.

    Returns
    -------
    module
        ``keras``.

    Raises
    ------
    ImportError
        If Keras (or its backend) cannot be imported; what the import wrote is shown first.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if "keras" in sys.modules:
        return sys.modules["keras"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import keras
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return keras
