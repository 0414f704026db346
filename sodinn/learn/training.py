"""Training on sample files (SPEC §4): group-wise splits, streamed batches, early stopping, checkpoints, resume.

``train(sample_file, config, out_dir)`` writes into ``out_dir``:

- ``model.keras`` (or ``model.joblib`` for SODIRF) and ``model.json``: the model folder prediction
  needs (:mod:`sodinn.learn.artifact`), with the sample geometry, the training-set checksum and the
  held-out metrics;
- ``history.csv``, and ``checkpoint.keras`` after every epoch;
- ``backup/`` while training runs: an interrupted run resumes from its last finished epoch.

A training that fails or is interrupted before its first finished epoch leaves nothing behind: what it
wrote into ``out_dir`` is removed (and the folder, if it made it).

The figure of the training curves is a product of :func:`sodinn.pipeline.train.train_model`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sodinn._atomic import check_writable_output, output_folder
from sodinn.adi.io import file_checksum
from sodinn.config import TrainConfig
from sodinn.learn.artifact import probabilities, save_model, warn_if_bfloat16_emulated
from sodinn.learn.models import SAMPLE_INPUT, SNR_CURVE_INPUT, build_model, check_model_name, needs_snr_curves
from sodinn.mlar.store import SampleFile

__all__ = ["IN_MEMORY_BYTES", "RESUME_STATE", "TrainResult", "evaluate", "group_split", "predict_file", "train"]

logger = logging.getLogger(__name__)

#: The entries of a model folder an interrupted training resumes from: kept when a run fails, if they hold a file
RESUME_STATE = ("backup",)


def group_split(
    groups: np.ndarray,
    labels: np.ndarray,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    strata: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split sample indices into train / validation / test by group, never by sample (SPEC §3).

    Within each stratum (class x annulus when ``strata`` gives the annulus of each sample), groups
    are shuffled and assigned whole until each held-out part holds its share of the samples, so
    every part keeps the class balance and covers every annulus. Adjacent C- patches overlap and
    augmented copies share their source's group, so a random split over samples would leak.

    Parameters
    ----------
    groups : ndarray of int, shape (n,)
        Group id of every sample (injection id for C+, azimuthal sector for C-).
    labels : ndarray of int, shape (n,)
        Class of every sample (1 for C+, 0 for C-).
    val_fraction, test_fraction : float
        Shares of the samples held out for validation and test.
    seed : int
        Seed of the shuffles.
    strata : ndarray of int, shape (n,), optional
        Stratum of every sample, e.g. its annulus (default: one stratum). Strata with fewer than
        3 groups of a class are pooled.

    Returns
    -------
    train : ndarray of int, shape (n_train,)
        Sorted indices of the training samples.
    val : ndarray of int, shape (n_val,)
        Sorted indices of the validation samples.
    test : ndarray of int, shape (n_test,)
        Sorted indices of the test samples. No group appears in two of the parts.

    Raises
    ------
    ValueError
        If a part would be empty (too few groups), or a group spans several strata.
    """
    rng = np.random.default_rng(seed)
    strata = np.zeros(labels.size, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in np.unique(labels):
        # strata with fewer than 3 groups cannot feed all three parts: pool them into one
        pooled = strata.copy()
        for stratum in np.unique(strata):
            if np.unique(groups[(labels == label) & (strata == stratum)]).size < 3:
                pooled[strata == stratum] = np.iinfo(np.int64).min
        for stratum in np.unique(pooled[labels == label]):
            mask = (labels == label) & (pooled == stratum)
            uniq, counts = np.unique(groups[mask], return_counts=True)
            order = rng.permutation(uniq.size)
            # a group goes to test (then validation) while the samples before it are below that share
            before = (np.cumsum(counts[order]) - counts[order]) / counts.sum()
            where = np.where(before < test_fraction, 2, np.where(before < test_fraction + val_fraction, 1, 0))
            if uniq.size >= 3:  # every part gets at least one group
                where[:2] = (2, 1)
            for part in range(3):
                chosen = uniq[order[where == part]]
                parts[part].append(np.nonzero(mask & np.isin(groups, chosen))[0])
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    if min(train.size, val.size, test.size) == 0:
        msg = "too few groups to split into train, validation and test; generate more samples per annulus"
        raise ValueError(msg)
    shared = (set(groups[train]) & set(groups[val])) | (set(groups[train]) & set(groups[test])) | (set(groups[val]) & set(groups[test]))
    if shared:
        msg = f"group split failed: {len(shared)} group(s) span several strata; groups must not cross annuli"
        raise ValueError(msg)
    return train, val, test


def _random_split(n: int, *, val_fraction: float, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(test_fraction * n)), int(round(val_fraction * n))
    return np.sort(order[n_test + n_val :]), np.sort(order[n_test : n_test + n_val]), np.sort(order[:n_test])


#: Training and validation samples are read into memory once when they take at most this many bytes
#: (normalised, float32); larger sets are streamed from the file batch by batch.
IN_MEMORY_BYTES = 2 * 1024**3


def _sequence_class():
    import keras

    class SampleSequence(keras.utils.PyDataset):
        """Batches ``(x[..., None], y)`` of a sample file: from memory when given, else read on demand (bounded memory).

        With ``curves``, ``x`` is ``{"mlar_sample": x[..., None], "snr_curve": the samples' S/N curves}``.

        Reading a shuffled batch from the file decompresses every chunk it touches (256 samples each,
        gzip), i.e. nearly the whole file per batch; the samples in memory give the same batches.
        """

        def __init__(self, path: Path, indices: np.ndarray, batch_size: int, *, shuffle: bool, seed: int,
                     in_memory: bool = False, curves: bool = False) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self._curves: np.ndarray | None = None
            if curves:
                with SampleFile(path) as f:
                    self._curves = f.require_snr_curves()
            self.path, self.indices, self.batch_size = path, np.asarray(indices), batch_size
            self.shuffle, self.seed, self.epoch = shuffle, seed, 0
            self._file: SampleFile | None = None
            self._memory: tuple[np.ndarray, np.ndarray] | None = None
            self._sorter = np.argsort(self.indices, kind="stable")
            if in_memory:
                with SampleFile(path) as f:  # sorted indices: every chunk is decompressed once
                    self._memory = f.read(self.indices, normalize=True)[..., None], f.labels[self.indices].astype(np.float32)
            self._order = self._make_order()

        def _make_order(self) -> np.ndarray:
            if not self.shuffle:
                return self.indices
            return np.random.default_rng([self.seed, self.epoch]).permutation(self.indices)

        def __len__(self) -> int:
            return int(np.ceil(self.indices.size / self.batch_size))

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            idx = self._order[i * self.batch_size : (i + 1) * self.batch_size]
            if self._memory is not None:
                rows = self._sorter[np.searchsorted(self.indices, idx, sorter=self._sorter)]
                return self._with_curves(self._memory[0][rows], idx), self._memory[1][rows]
            if self._file is None:
                self._file = SampleFile(self.path)
            x = self._file.read(idx, normalize=True)[..., None]
            return self._with_curves(x, idx), self._file.labels[idx].astype(np.float32)

        def _with_curves(self, x: np.ndarray, idx: np.ndarray) -> Any:
            if self._curves is None:
                return x
            return {SAMPLE_INPUT: x, SNR_CURVE_INPUT: self._curves[idx]}

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self._order = self._make_order()

    return SampleSequence


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` produced: per-epoch history, held-out metrics and the artefact's folder.

    Attributes
    ----------
    history : dict of str to list of float
        Per-epoch values of the loss and metrics (``loss``, ``val_loss``, ``accuracy``, ``auc``, ...);
        a SODIRF has only ``val_loss``.
    metrics : dict
        Held-out test metrics (:func:`evaluate`), with ``split`` (train / val / test sizes) and,
        with ``TrainConfig.report_random_split``, ``random_split`` (what a leaky split would claim).
    out_dir : Path
        The model folder (:mod:`sodinn.learn.artifact`).
    """

    history: dict[str, list[float]]
    metrics: dict[str, Any]
    out_dir: Path


def train(
    sample_path: str | os.PathLike[str],
    config: TrainConfig | None = None,
    out_dir: str | os.PathLike[str] = "model",
    *,
    resume: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Train a classifier on a sample file and save everything prediction needs.

    Group-wise train / validation / test split (SPEC §3, :func:`group_split`, stratified by
    annulus), then binary cross-entropy with Adam, inverse-time learning-rate decay and early
    stopping on the validation loss keeping the best weights (SPEC §4); a SODIRF is fitted once.
    The held-out metrics are those of the test part. The training and validation samples are read
    once into memory when they take at most :data:`IN_MEMORY_BYTES`, else streamed from the file;
    both give the same batches, hence the same model.

    Parameters
    ----------
    sample_path : str or path-like
        An HDF5 sample file (:mod:`sodinn.mlar.store`).
    config : TrainConfig, optional
        Model, split, optimiser and epoch settings (default ``TrainConfig()``).
    out_dir : str or path-like
        Folder for the model, its metadata, history and checkpoints; created if missing. If the
        training fails, what it wrote there is removed, unless ``backup/`` holds a finished epoch.
    resume : bool
        Continue an interrupted training from its last epoch (default); False starts afresh.
    progress : bool
        Show progress: one bar over the epochs on a terminal, one log line per epoch otherwise.

    Returns
    -------
    TrainResult
        History, held-out metrics and the model folder.

    Raises
    ------
    FileNotFoundError
        If ``sample_path`` is not a file.
    ValueError
        If ``config.model`` is not registered, ``sample_path`` is not a sodinn sample file, the
        samples have too few groups to split, or the model takes S/N curves and the file has none
        (a :class:`~sodinn.exceptions.SettingError`: re-run ``sodinn samples``).
    OSError
        If ``out_dir`` cannot be written (a file, no permission), before any work.
    """
    config = config or TrainConfig()
    check_model_name(config.model)
    out = check_writable_output(out_dir, kind="folder", name="out_dir")
    with SampleFile(sample_path) as f:
        labels, groups, annulus = f.labels.copy(), f.group.copy(), f.annulus.copy()
        shape = (*f.sample_shape, 1)
        sample_config = f.config
        provenance = f.provenance
        geometry = {"ks": f.ks.tolist(), "r_in_px": f.r_in_px.tolist(), "r_out_px": f.r_out_px.tolist(),
                    "flux_range": f.flux_range.tolist()}
        if needs_snr_curves(config.model):
            f.require_snr_curves(model=config.model)
    split = group_split(groups, labels, val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                        seed=config.seed, strata=annulus)
    logger.info("group split: %d train, %d validation, %d test samples", *(s.size for s in split))
    with output_folder(out, resume_state=RESUME_STATE):
        return _train_into(Path(sample_path), config, split, shape, out, labels, annulus, sample_config, provenance,
                           geometry, resume=resume, progress=progress)


def _train_into(sample_path: Path, config: TrainConfig, split, shape, out: Path, labels, annulus, sample_config,
                provenance, geometry, *, resume: bool, progress: bool) -> TrainResult:
    model, history = _fit(Path(sample_path), config, split, shape, out, resume=resume, progress=progress)
    curves = needs_snr_curves(config.model)
    metrics = evaluate(model, Path(sample_path), split[2], annulus, labels, with_snr_curves=curves)
    metrics["split"] = {"train": int(split[0].size), "val": int(split[1].size), "test": int(split[2].size)}
    if config.report_random_split:
        rsplit = _random_split(labels.size, val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                               seed=config.seed)
        rmodel, _ = _fit(Path(sample_path), config, rsplit, shape, out / "random_split", resume=False, progress=progress)
        metrics["random_split"] = evaluate(rmodel, Path(sample_path), rsplit[2], annulus, labels, with_snr_curves=curves)
        logger.info("a random split would have claimed accuracy %.3f (group split: %.3f)",
                    metrics["random_split"]["accuracy"], metrics["accuracy"])
    save_model(model, out, train_config=config, sample_config=sample_config, provenance=provenance, geometry=geometry,
               input_shape=shape, training_set={"file": str(Path(sample_path).resolve()), "sha256": file_checksum(sample_path)},
               metrics=metrics)
    return TrainResult(history=history, metrics=metrics, out_dir=out)


def _fit(path: Path, config: TrainConfig, split, shape, out: Path, *, resume: bool, progress: bool):
    train_idx, val_idx, _ = split
    if config.model == "sodirf":
        with SampleFile(path) as f:
            model = build_model("sodirf", shape, seed=config.seed).fit(f.read(train_idx, normalize=True), f.labels[train_idx])
            val_loss = _log_loss(model.predict(f.read(val_idx, normalize=True))[:, 0], f.labels[val_idx])
        return model, {"val_loss": [val_loss]}
    import keras

    warn_if_bfloat16_emulated(config.precision, doing="trains")
    keras.utils.set_random_seed(config.seed)
    sequence = _sequence_class()
    in_memory = (train_idx.size + val_idx.size) * 4 * int(np.prod(shape)) <= IN_MEMORY_BYTES
    curves = needs_snr_curves(config.model)
    train_data = sequence(path, train_idx, config.batch_size, shuffle=True, seed=config.seed, in_memory=in_memory,
                          curves=curves)
    val_data = sequence(path, val_idx, config.batch_size, shuffle=False, seed=config.seed, in_memory=in_memory,
                        curves=curves)
    model = build_model(config.model, shape, precision=config.precision)
    schedule = keras.optimizers.schedules.InverseTimeDecay(config.learning_rate, decay_steps=1, decay_rate=config.decay)
    ema = config.ema_momentum is not None
    optimizer = keras.optimizers.Adam(learning_rate=schedule, use_ema=ema,
                                      ema_momentum=config.ema_momentum if ema else 0.99)
    model.compile(optimizer=optimizer, loss="binary_crossentropy",
                  metrics=["accuracy", keras.metrics.AUC(name="auc")])
    out.mkdir(parents=True, exist_ok=True)
    backup = out / "backup"
    if not resume and backup.exists():
        import shutil

        shutil.rmtree(backup)
    # The backup is written before the averaged weights are swapped in, so a resumed run continues from the raw
    # weights; validation, early stopping and the checkpoint see the averaged ones (Keras' SwapEMAWeights).
    callbacks = [
        keras.callbacks.BackupAndRestore(str(backup)),
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema else []),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(str(out / "checkpoint.keras")),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=resume and backup.exists()),
    ]
    if progress:
        callbacks.append(_epoch_progress(config.epochs))
    fit = model.fit(train_data, validation_data=val_data, epochs=config.epochs, callbacks=callbacks, verbose=0)
    history = {k: [float(x) for x in vals] for k, vals in fit.history.items()}
    return model, history


def _epoch_progress(epochs: int):
    """Return a Keras callback showing training as one progress bar over the epochs (a terminal) or one line per epoch.

    Keras' own per-step bar rewrites its line with carriage returns and escape codes, which end up
    in logs and pipes; this bar is tqdm's, shown only when stderr is a terminal (or in a notebook),
    and otherwise each finished epoch is logged as one plain line.
    """
    import keras
    from tqdm.auto import tqdm

    class EpochProgress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None) -> None:
            self.bar = tqdm(total=epochs, desc="training", unit="epoch", disable=None)

        def on_epoch_end(self, epoch: int, logs=None) -> None:
            values = {k: float(x) for k, x in (logs or {}).items() if k in ("loss", "val_loss", "accuracy", "val_accuracy")}
            if self.bar.disable:
                logger.info("epoch %d/%d: %s", epoch + 1, epochs, ", ".join(f"{k} {x:.4f}" for k, x in values.items()))
            else:
                self.bar.set_postfix({k: f"{x:.3f}" for k, x in values.items()}, refresh=False)
                self.bar.update(1)

        def on_train_end(self, logs=None) -> None:
            self.bar.close()

    return EpochProgress()


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def evaluate(model: Any, path: Path, indices: np.ndarray, annulus: np.ndarray, labels: np.ndarray, *,
             with_snr_curves: bool = False) -> dict[str, Any]:
    """Compute accuracy (threshold 0.5), ROC AUC, confusion matrix and per-annulus figures on ``indices``.

    Parameters
    ----------
    model : keras.Model or SODIRF
        A trained model.
    path : Path
        The sample file.
    indices : ndarray of int, shape (m,)
        Samples to evaluate (e.g. the test part of :func:`group_split`).
    annulus, labels : ndarray, shape (n,)
        Annulus index and label of every sample of the file.
    with_snr_curves : bool
        Feed the samples' S/N curves too (a model of :data:`sodinn.learn.models.SNR_CURVE_MODELS`).

    Returns
    -------
    dict
        ``n``, ``accuracy``, ``auc`` (None when one class is missing), ``confusion_matrix``
        ``[[TN, FP], [FN, TP]]``, and ``per_annulus``: annulus -> ``{n, accuracy, auc}``.
    """
    from sklearn.metrics import confusion_matrix, roc_auc_score

    probs = predict_file(model, path, indices, with_snr_curves=with_snr_curves)
    y = labels[indices]
    pred = (probs >= 0.5).astype(int)

    def summary(mask: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {"n": int(mask.sum()), "accuracy": float((pred[mask] == y[mask]).mean())}
        out["auc"] = float(roc_auc_score(y[mask], probs[mask])) if len(np.unique(y[mask])) == 2 else None
        return out

    metrics = summary(np.ones(indices.size, dtype=bool))
    metrics["confusion_matrix"] = confusion_matrix(y, pred, labels=[0, 1]).tolist()
    metrics["per_annulus"] = {int(a): summary(annulus[indices] == a) for a in np.unique(annulus[indices])}
    return metrics


def predict_file(model: Any, path: Path, indices: np.ndarray, batch_size: int = 512, *,
                 with_snr_curves: bool = False) -> np.ndarray:
    """Predict P(companion) for the samples ``indices`` of a sample file, streamed.

    Parameters
    ----------
    model : keras.Model or SODIRF
        A trained model.
    path : Path
        The sample file.
    indices : ndarray of int, shape (m,)
        Samples to predict, in that order.
    batch_size : int
        Samples read and predicted at a time.
    with_snr_curves : bool
        Feed the samples' S/N curves too (a model of :data:`sodinn.learn.models.SNR_CURVE_MODELS`).

    Returns
    -------
    ndarray, shape (m,)
        P(companion) of every sample (normalised as in training).

    Raises
    ------
    SettingError
        If ``with_snr_curves`` and the file has no S/N curves.
    """
    out = []
    with SampleFile(path) as f:
        curves = f.require_snr_curves() if with_snr_curves else None
        for start in range(0, indices.size, batch_size):
            part = indices[start : start + batch_size]
            x = f.read(part, normalize=True)[..., None]
            out.append(probabilities(model, x if curves is None else {SAMPLE_INPUT: x, SNR_CURVE_INPUT: curves[part]}))
    return np.concatenate(out) if out else np.zeros(0)
