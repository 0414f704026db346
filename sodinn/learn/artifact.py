"""The model folder: the one module that knows what ``sodinn train`` writes and how to read it back.

A model folder holds the weights (``model.keras``, or ``model.joblib`` for SODIRF) and
``model.json``, the metadata prediction needs and checks (format ``sodinn-model/1``):

- ``model``, ``weights``, ``input_shape`` ``(K, P, P, 1)``;
- the sample geometry: ``patch_px``, ``n_ranks``, ``k_policy``, ``annulus_rule``, ``collapse``
  (``"mean"``), ``training_geometry`` (ranks, annuli and flux ranges of the training set);
- ``normalization``: how samples were normalised (:data:`sodinn.mlar.samples.NORMALIZATION`);
  a model is refused by a sodinn that normalises otherwise;
- ``snr_curves``: for a model that takes each sample's S/N curve beside its patches
  (:data:`sodinn.learn.models.SNR_CURVE_MODELS`), the rule that made them
  (:data:`sodinn.mlar.features.SNR_CURVES`), else null; a model is refused by a sodinn that makes
  them otherwise;
- the data it was trained on: ``fwhm_px``, ``pixel_scale_arcsec``, ``snr_range``, ``sample_config``,
  ``training_set`` (file and SHA-256), ``training_data`` (the SHA-256 of the sequence's files and
  its north offset, to recognise the same data: :func:`training_known_sources`);
- ``train_config``, ``metrics`` (held-out accuracy, ROC AUC, confusion matrix, per annulus) and the
  ``versions`` of sodinn and Keras.

Everything that only needs the metadata (:func:`read_metadata`, :func:`check_compatible`,
:func:`metadata_digest`) reads ``model.json`` without importing Keras, so that a mismatch between a
model and the data is refused before TensorFlow is loaded; :func:`load_trained` loads the weights.
``model.json`` is written last: a folder without it is not a (finished) model.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sodinn._atomic import atomic_path
from sodinn._platform import native_bfloat16, platform_record
from sodinn._version import __version__
from sodinn.adi.sequence import ADISequence
from sodinn.config import SampleConfig, TrainConfig
from sodinn.exceptions import SodinnWarning
from sodinn.mlar.features import SNR_CURVES
from sodinn.mlar.samples import NORMALIZATION, minmax_normalize, sample_annuli

__all__ = [
    "FORMAT",
    "METADATA_FILE",
    "OUTPUT_LAYER",
    "PREDICT_BATCH",
    "TrainedModel",
    "check_compatible",
    "check_model_data",
    "feature_model",
    "keras_predict",
    "load_trained",
    "logits",
    "metadata_digest",
    "model_folder",
    "probabilities",
    "read_metadata",
    "save_model",
    "training_known_sources",
    "warn_if_bfloat16_emulated",
]

FORMAT = "sodinn-model/1"
METADATA_FILE = "model.json"

# normalisation names written by earlier versions, and the rule each stands for
_NORMALIZATION_ALIASES = {"per k-slice min-max to [0, 1]": "minmax-per-rank/1"}


def model_folder(path: str | os.PathLike[str], *, name: str | None = None) -> Path:
    """Check that ``path`` is a model folder written by ``sodinn train`` (it holds ``model.json``).

    Parameters
    ----------
    path : str or path-like
        The folder to check.
    name : str, optional
        The model's name, to start the message with (e.g. in the ROC harness).

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist, is a file, or is a folder without ``model.json``.
    """
    folder = Path(path)
    where = f"model {name!r}: " if name is not None else ""
    if not folder.exists():
        msg = f"{where}model folder not found: {folder}; train one with 'sodinn train'"
        raise FileNotFoundError(msg)
    if not (folder / METADATA_FILE).is_file():
        hint = "it is a file" if folder.is_file() else f"no {METADATA_FILE} in it"
        msg = f"{where}{folder} is not a model folder ({hint}); pass the folder written by 'sodinn train'"
        raise FileNotFoundError(msg)
    return folder


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check the metadata (``model.json``) of a model folder; Keras is not imported.

    Parameters
    ----------
    path : str or path-like
        The model folder.

    Returns
    -------
    dict
        The parsed ``model.json`` (see the module docstring for its keys).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a model folder (see :func:`model_folder`).
    ValueError
        If ``model.json`` is not valid JSON (an interrupted write), is not a sodinn model, or records
        a sample normalisation this version of sodinn does not apply.
    """
    meta_path = model_folder(path) / METADATA_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        msg = f"{meta_path} is not valid JSON ({err}); was the training interrupted?"
        raise ValueError(msg) from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        msg = f"{meta_path} is not a sodinn model (format {found!r}, expected {FORMAT!r})"
        raise ValueError(msg)
    recorded = meta.get("normalization")
    if _NORMALIZATION_ALIASES.get(recorded, recorded) != NORMALIZATION:
        msg = (f"{meta_path}: the model was trained on samples normalised as {recorded!r}, but this sodinn "
               f"normalises them as {NORMALIZATION!r}; retrain the model with this version")
        raise ValueError(msg)
    curves = meta.get("snr_curves")
    if curves not in (None, SNR_CURVES):
        msg = (f"{meta_path}: the model was trained on S/N curves made as {curves!r}, but this sodinn makes them "
               f"as {SNR_CURVES!r} (since issue 14 their noise apertures leave known sources out); remake its "
               "samples (`sodinn samples`) and retrain it (`sodinn train`) with this version")
        raise ValueError(msg)
    return meta


#: The sequence record's items that identify the data a model was trained on (files' SHA-256, sky orientation, the
#: star's position when the frames were recentred: pixel positions depend on both)
_DATA_IDENTITY = ("cube_sha256", "angles_sha256", "npz_sha256", "north_offset_deg", "star_xy_px")


def training_known_sources(metadata: dict[str, Any], sequence: ADISequence) -> tuple[tuple[float, float], ...]:
    """Return the known sources a model was trained with if ``sequence`` is its training data, else none.

    The data are the same when the model's ``training_data`` record (the SHA-256 of the files the
    training sequence was read from, its north offset and, if it was recentred, the star's position) is
    not empty and equals the same items of ``sequence.describe()`` (its provenance). A sequence made in
    memory (no file checksum) is never recognised.

    Parameters
    ----------
    metadata : dict
        The model's ``model.json`` (:func:`read_metadata`).
    sequence : ADISequence
        The data the model is applied to.

    Returns
    -------
    tuple of (float, float)
        The model's ``sample_config.known_sources_xy`` (sky frame, px), or ``()``.
    """
    recorded = metadata.get("training_data") or {}
    if not any(k.endswith("_sha256") for k in recorded):
        return ()
    current = sequence.describe()
    if any(current.get(k) != recorded.get(k) for k in _DATA_IDENTITY):
        return ()
    return SampleConfig.from_dict(metadata["sample_config"]).known_sources_xy


def metadata_digest(path: str | os.PathLike[str]) -> str:
    """Compute the SHA-256 of a model folder's ``model.json``: identifies the model in caches and provenance records.

    Parameters
    ----------
    path : str or path-like
        The model folder.

    Returns
    -------
    str
        Hexadecimal digest (64 characters) of the file's bytes.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a model folder (see :func:`model_folder`).
    """
    return hashlib.sha256((model_folder(path) / METADATA_FILE).read_bytes()).hexdigest()


def check_compatible(metadata: dict[str, Any], fwhm_px: float, sample_config: SampleConfig | None = None, *,
                     fwhm_tolerance: float = 0.15) -> None:
    """Refuse data or settings a model was not trained for, with a message that says why.

    Parameters
    ----------
    metadata : dict
        The model's ``model.json`` (:func:`read_metadata`).
    fwhm_px : float
        The PSF FWHM of the data, px.
    sample_config : SampleConfig, optional
        Settings of the samples to feed the model.
    fwhm_tolerance : float
        Largest relative difference of the FWHM from the training data's.

    Raises
    ------
    ValueError
        If the patch size, number of ranks or k policy differ, or the FWHM is more than
        ``fwhm_tolerance`` (relative) away from the training data's.
    """
    if sample_config is not None:
        for key in ("patch_px", "n_ranks", "k_policy"):
            if getattr(sample_config, key) != metadata[key]:
                msg = f"the model was trained with {key}={metadata[key]!r} but the samples use {getattr(sample_config, key)!r}"
                raise ValueError(msg)
    trained = metadata.get("fwhm_px")
    if trained and abs(fwhm_px - trained) > fwhm_tolerance * trained:
        msg = (
            f"the PSF FWHM of these data ({fwhm_px:.2f} px) is far from the training data's ({trained:.2f} px); "
            "train a model on these data (SODINN models are per data set)"
        )
        raise ValueError(msg)


def check_model_data(metadata: dict[str, Any], sequence: ADISequence, *, name: str | None = None,
                     fwhm_tolerance: float = 0.15) -> None:
    """Refuse, from ``model.json`` alone (Keras is not imported), a sequence a model cannot be applied to.

    Everything a model needs from the data is checked before the model is loaded: the FWHM
    (:func:`check_compatible`), frames enough for its ``n_ranks`` PCA ranks (at most
    ``n_frames - 1``), and frames large enough for at least one annulus of its patch size.

    Parameters
    ----------
    metadata : dict
        The model's ``model.json`` (:func:`read_metadata`).
    sequence : ADISequence
        The data: cube ``(n_frames, N, N)``, FWHM in px.
    name : str, optional
        The model's name or folder, to start the message with.
    fwhm_tolerance : float
        Largest relative difference of the FWHM from the training data's.

    Raises
    ------
    ValueError
        If the FWHM is far from the training data's, the sequence has too few frames for the
        model's ranks, or no annulus of the model's samples fits in the frames.
    """
    where = f"model {name}: " if name is not None else ""
    try:
        check_compatible(metadata, sequence.fwhm_px, fwhm_tolerance=fwhm_tolerance)
    except ValueError as err:
        raise ValueError(f"{where}{err}") from None
    config = SampleConfig.from_dict(metadata["sample_config"])
    if config.n_ranks > sequence.n_frames - 1:
        msg = (f"{where}the model uses {config.n_ranks} PCA ranks, but these data have {sequence.n_frames} frames "
               f"(at most {sequence.n_frames - 1} ranks); apply it to a longer sequence, or train a model on these data")
        raise ValueError(msg)
    try:
        sample_annuli(sequence, config)
    except ValueError as err:
        reason = str(err).partition(";")[0]  # the advice after ';' is about making samples, not about this model
        msg = f"{where}the model cannot be applied to these data ({reason}); train a model on these data"
        raise ValueError(msg) from None


def probabilities(model: Any, x: np.ndarray) -> np.ndarray:
    """Predict P(companion) of normalised samples with a Keras model or a SODIRF.

    Parameters
    ----------
    model : keras.Model or SODIRF
        A trained model (Keras models are recognised by their ``compile`` method).
    x : ndarray, shape (n, K, P, P, 1), or dict
        Samples normalised by :func:`~sodinn.mlar.samples.minmax_normalize`, with a channel axis; for
        a model with two inputs, ``{"mlar_sample": samples, "snr_curve": curves (n, K)}``.

    Returns
    -------
    ndarray, shape (n,)
        P(companion) of every sample.
    """
    out = keras_predict(model, x) if hasattr(model, "compile") else model.predict(x)
    return np.asarray(out)[:, 0]


#: Samples per ``predict_on_batch`` call of :func:`keras_predict`
PREDICT_BATCH = 512


def keras_predict(model: Any, x: Any, *, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """Run a Keras model on ``x`` with ``predict_on_batch``, ``batch_size`` samples at a time.

    The same outputs as ``model.predict(x)`` (within 1e-6 in the tests; bit-equal on 512 NACO-shaped samples), without its data
    pipeline: on this project's 2-core machine ``model.predict`` (default batch 32) took 1.8-2.6 s for
    512 NACO samples, using 1.1-1.7 cores, against 1.2-1.5 s on 1.8-1.9 cores here (issue 16;
    ``bench/bench_pipeline.py --step-only``).

    Parameters
    ----------
    model : keras.Model
        Any Keras model.
    x : ndarray, shape (n, ...), or dict of such arrays
        Its inputs (a dict for a model with named inputs).
    batch_size : int
        Samples per call.

    Returns
    -------
    ndarray, shape (n, ...)
        The model's output for every sample, in order.
    """
    n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
    parts = []
    for start in range(0, n, batch_size):
        chunk = ({k: v[start : start + batch_size] for k, v in x.items()} if isinstance(x, dict)
                 else x[start : start + batch_size])
        parts.append(np.asarray(model.predict_on_batch(chunk)))
    return np.concatenate(parts) if parts else np.asarray(model.predict(x, verbose=0))


#: Name of the output layer of every Keras model of :data:`sodinn.learn.models.MODELS` (a 1-unit sigmoid Dense)
OUTPUT_LAYER = "probability"


def logits(model: Any, x: np.ndarray, *, features: Any = None) -> np.ndarray:
    """Return the logit (pre-sigmoid output, float64) of normalised samples: a score that never saturates.

    A probability rounded to float32 is exactly 1 above a logit of about 17, so ranking pixels by
    probability ties every confident score; the logit keeps their order. For a Keras model the
    output layer's input (``features``) is computed by the network and the last affine map is applied
    in float64; for a model without that layer (a SODIRF), the logit of its probability, clipped at
    half a tree's vote from 0 and 1.

    Parameters
    ----------
    model : keras.Model or SODIRF
        A trained model.
    x : ndarray, shape (n, K, P, P, 1), or dict
        Samples normalised by :func:`~sodinn.mlar.samples.minmax_normalize`, with a channel axis; for
        a model with two inputs, ``{"mlar_sample": samples, "snr_curve": curves (n, K)}``.
    features : keras.Model, optional
        The model from the inputs to the output layer's input (:func:`feature_model`); built here when
        not given.

    Returns
    -------
    ndarray of float64, shape (n,)
        ``log(p / (1 - p))`` of every sample.
    """
    if hasattr(model, "compile"):
        features = feature_model(model) if features is None else features
        if features is not None:
            kernel, bias = (np.asarray(w, dtype=np.float64) for w in model.get_layer(OUTPUT_LAYER).get_weights())
            h = np.asarray(keras_predict(features, x), dtype=np.float64)
            return h @ kernel[:, 0] + bias[0]
        eps = 1e-15
    else:
        eps = 0.5 / (getattr(model, "n_estimators", 1) + 1)
    p = np.clip(probabilities(model, x).astype(np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def feature_model(model: Any) -> Any:
    """Return the Keras model from ``model``'s inputs to the input of its output layer, or None without one.

    Parameters
    ----------
    model : keras.Model
        A trained model of :data:`sodinn.learn.models.MODELS` (its last layer is named :data:`OUTPUT_LAYER`).

    Returns
    -------
    keras.Model or None
        The sub-model (sharing ``model``'s weights); None when ``model`` has no layer :data:`OUTPUT_LAYER`
        or that layer is not a one-unit sigmoid ``Dense``.
    """
    import keras

    try:
        layer = model.get_layer(OUTPUT_LAYER)
    except ValueError:
        return None
    config = layer.get_config()
    if config.get("activation") != "sigmoid" or config.get("units") != 1:
        return None
    return keras.Model(model.inputs, layer.input, name=f"{model.name}_features")


def save_model(
    model: Any,
    out: str | os.PathLike[str],
    *,
    train_config: TrainConfig,
    sample_config: SampleConfig,
    provenance: dict[str, Any],
    geometry: dict[str, Any],
    input_shape: tuple[int, ...],
    training_set: dict[str, str],
    metrics: dict[str, Any],
) -> Path:
    """Write a model folder: the weights, then ``model.json`` (each atomically, ``model.json`` last).

    Parameters
    ----------
    model : keras.Model or SODIRF
        The trained model (a SODIRF is written with joblib).
    out : str or path-like
        The folder.
    train_config, sample_config : TrainConfig, SampleConfig
        How the model and its samples were made.
    provenance : dict
        The sample file's provenance (its ``sequence`` record gives the FWHM and pixel scale).
    geometry : dict
        ``ks``, ``r_in_px``, ``r_out_px``, ``flux_range`` of the training set's annuli.
    input_shape : tuple of int
        ``(K, P, P, 1)``.
    training_set : dict
        ``file`` and ``sha256`` of the sample file.
    metrics : dict
        Held-out metrics.

    Returns
    -------
    Path
        The folder.
    """
    import keras

    from sodinn.learn.models import needs_snr_curves

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if train_config.model == "sodirf":
        import joblib

        with atomic_path(folder / "model.joblib") as tmp:
            joblib.dump(model, tmp)
        weights = "model.joblib"
    else:
        with atomic_path(folder / "model.keras") as tmp:
            model.save(str(tmp.with_suffix(".keras")))
            tmp.with_suffix(".keras").replace(tmp)
        weights = "model.keras"
    versions = {"sodinn": __version__, "keras": keras.__version__, "backend": keras.backend.backend()}
    sequence = provenance.get("sequence", {})
    meta = {
        "format": FORMAT,
        "weights": weights,
        "model": train_config.model,
        "input_shape": list(input_shape),
        "patch_px": sample_config.patch_px,
        "n_ranks": sample_config.n_ranks,
        "k_policy": sample_config.k_policy,
        "normalization": NORMALIZATION,
        "snr_curves": SNR_CURVES if needs_snr_curves(train_config.model) else None,
        "collapse": "mean",
        "annulus_rule": {"width_fwhm": 1.0, "r_in_fwhm": sample_config.r_in_fwhm, "r_out_fwhm": sample_config.r_out_fwhm},
        "training_geometry": geometry,
        "fwhm_px": sequence.get("fwhm_px"),
        "pixel_scale_arcsec": sequence.get("pixel_scale_arcsec"),
        "snr_range": list(sample_config.snr_range),
        "sample_config": sample_config.to_dict(),
        "train_config": train_config.to_dict(),
        "training_set": dict(training_set),
        "training_data": {k: sequence[k] for k in _DATA_IDENTITY if k in sequence},
        "versions": versions,
        "platform": platform_record(),
        "metrics": metrics,
    }
    with atomic_path(folder / METADATA_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
    return folder


@dataclass(frozen=True)
class TrainedModel:
    """A loaded model and its metadata (see :func:`load_trained`).

    Attributes
    ----------
    model : keras.Model or SODIRF
        The trained model.
    metadata : dict
        The folder's ``model.json``.
    """

    model: Any
    metadata: dict[str, Any]
    _features: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def sample_config(self) -> SampleConfig:
        """The sample settings of the training data: prediction builds its samples with the same ones."""
        return SampleConfig.from_dict(self.metadata["sample_config"])

    @property
    def needs_snr_curves(self) -> bool:
        """Whether the model takes each sample's S/N curve beside its patches (``snr_curves`` in ``model.json``)."""
        return bool(self.metadata.get("snr_curves"))

    def inputs(self, samples: np.ndarray, snr_curves: np.ndarray | None = None) -> Any:
        """Build the model's input from raw samples (normalised here as in training) and their S/N curves.

        Parameters
        ----------
        samples : ndarray, shape (n, K, P, P)
            Raw residual patches (as made by :mod:`sodinn.mlar.samples` or read with ``normalize=False``).
        snr_curves : ndarray, shape (n, K), optional
            Their S/N curves (:mod:`sodinn.mlar.features`); required by a model that takes them,
            ignored by the others.

        Returns
        -------
        ndarray of float32, shape (n, K, P, P, 1), or dict
            The normalised samples with a channel axis; for a model that takes S/N curves,
            ``{"mlar_sample": samples, "snr_curve": curves}``.

        Raises
        ------
        ValueError
            If the model takes S/N curves and ``snr_curves`` is missing or not ``(n, K)``.
        """
        x = minmax_normalize(samples)[..., None]
        if not self.needs_snr_curves:
            return x
        if snr_curves is None:
            msg = (f"model {self.metadata.get('model')!r} takes the S/N curves of the samples beside them; pass "
                   "snr_curves (sodinn.mlar.features)")
            raise ValueError(msg)
        curves = np.asarray(snr_curves, dtype=np.float32)
        if curves.shape != x.shape[:2]:
            msg = f"snr_curves must have shape {x.shape[:2]} (one per sample and rank); got {curves.shape}"
            raise ValueError(msg)
        from sodinn.learn.models import SAMPLE_INPUT, SNR_CURVE_INPUT

        return {SAMPLE_INPUT: x, SNR_CURVE_INPUT: curves}

    def predict(self, samples: np.ndarray, snr_curves: np.ndarray | None = None) -> np.ndarray:
        """Predict P(companion) of raw samples, normalised here as in training.

        Parameters
        ----------
        samples : ndarray, shape (n, K, P, P)
            Raw residual patches (as made by :mod:`sodinn.mlar.samples` or read with ``normalize=False``).
        snr_curves : ndarray, shape (n, K), optional
            Their S/N curves; required by a model that takes them (:attr:`needs_snr_curves`).

        Returns
        -------
        ndarray, shape (n,)
            P(companion) of every sample.

        Raises
        ------
        ValueError
            If the model takes S/N curves and ``snr_curves`` is missing or misshapen.
        """
        return probabilities(self.model, self.inputs(samples, snr_curves))

    def predict_logits(self, samples: np.ndarray, snr_curves: np.ndarray | None = None) -> np.ndarray:
        """Predict the logit of P(companion) of raw samples (normalised here as in training), in float64.

        The score to rank and calibrate by: unlike a probability it does not saturate at 1
        (:func:`logits`). ``expit(predict_logits(s))`` equals ``predict(s)`` to float32 precision.

        Parameters
        ----------
        samples : ndarray, shape (n, K, P, P)
            Raw residual patches (as made by :mod:`sodinn.mlar.samples` or read with ``normalize=False``).
        snr_curves : ndarray, shape (n, K), optional
            Their S/N curves; required by a model that takes them (:attr:`needs_snr_curves`).

        Returns
        -------
        ndarray of float64, shape (n,)
            The logit of every sample.

        Raises
        ------
        ValueError
            If the model takes S/N curves and ``snr_curves`` is missing or misshapen.
        """
        x = self.inputs(samples, snr_curves)
        if self._features is None and hasattr(self.model, "compile"):
            object.__setattr__(self, "_features", feature_model(self.model) or False)
        return logits(self.model, x, features=self._features or None)

    def check_compatible(self, fwhm_px: float, sample_config: SampleConfig | None = None, *,
                         fwhm_tolerance: float = 0.15) -> None:
        """Refuse data or settings the model was not trained for (see :func:`check_compatible`).

        Parameters
        ----------
        fwhm_px : float
            The PSF FWHM of the data, px.
        sample_config : SampleConfig, optional
            Settings of the samples to feed the model.
        fwhm_tolerance : float
            Largest relative difference of the FWHM from the training data's.

        Raises
        ------
        ValueError
            If the patch size, number of ranks or k policy differ, or the FWHM is far from the
            training data's.
        """
        check_compatible(self.metadata, fwhm_px, sample_config, fwhm_tolerance=fwhm_tolerance)


def load_trained(path: str | os.PathLike[str]) -> TrainedModel:
    """Load a model folder written by :func:`sodinn.learn.training.train`.

    Parameters
    ----------
    path : str or path-like
        The model folder.

    Returns
    -------
    TrainedModel
        The model (loaded with Keras, or joblib for a SODIRF) and its metadata.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`read_metadata`.
    """
    folder = Path(path)
    meta = read_metadata(folder)
    if meta["weights"].endswith(".joblib"):
        import joblib

        model = joblib.load(folder / meta["weights"])
    else:
        from sodinn.learn.models import custom_objects, import_keras_quietly

        keras = import_keras_quietly()  # also in worker processes, which load models for themselves
        warn_if_bfloat16_emulated((meta.get("train_config") or {}).get("precision", "float32"), doing="predicts")
        model = keras.saving.load_model(folder / meta["weights"], custom_objects=custom_objects())
    return TrainedModel(model=model, metadata=meta)


def warn_if_bfloat16_emulated(precision: str, *, doing: str = "trains") -> bool:
    """Warn when a model in ``"mixed_bfloat16"`` runs where bfloat16 is emulated: a CPU without AVX512-BF16 or AMX-BF16, no GPU.

    Parameters
    ----------
    precision : str
        The model's :attr:`~sodinn.config.TrainConfig.precision`; only ``"mixed_bfloat16"`` is checked.
    doing : str
        The verb of the warning ("trains", "predicts").

    Returns
    -------
    bool
        True when it warned (a :class:`~sodinn.exceptions.SodinnWarning`).
    """
    if precision != "mixed_bfloat16" or native_bfloat16() is not False or _has_gpu():
        return False
    warnings.warn(f"this model's precision is 'mixed_bfloat16', and this CPU has neither AVX512-BF16 nor AMX-BF16 "
                  f"instructions: bfloat16 is emulated, so it {doing} slower than in float32 (a training step 13x "
                  "slower on a CPU with AVX2 alone, measured); train with "
                  "precision = \"float32\" for this machine", SodinnWarning, stacklevel=3)
    return True


def _has_gpu() -> bool:
    """Tell whether the Keras backend sees a GPU (False where it cannot list its devices)."""
    import keras

    try:
        return any(str(d).lower().startswith(("gpu", "cuda")) for d in keras.distribution.list_devices())
    except Exception:  # noqa: BLE001 - a backend without the device list: assume none
        return False
