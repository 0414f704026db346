"""The products of training (``sodinn train``, surveys, the demo): the model folder, its curves, its settings.

:func:`train_model` runs :func:`sodinn.learn.training.train` (the model folder: weights,
``model.json``, ``history.csv``, checkpoints) and adds ``training_curves.png`` (loss and accuracy per
epoch, the kept epoch marked) and ``config.toml`` (the effective ``[train]`` table).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sodinn._atomic import check_writable_output, output_folder
from sodinn.config import TrainConfig, dump_toml
from sodinn.learn.models import check_model_name, import_keras_quietly
from sodinn.learn.training import RESUME_STATE, TrainResult, train
from sodinn.mlar.store import SampleFile
from sodinn.pipeline.figures import new_figure, save_figure
from sodinn.plotting import plot_training_history

__all__ = ["train_model"]


def train_model(
    samples_file: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    config: TrainConfig | None = None,
    *,
    resume: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Train a model on a sample file and write its folder, training curves and effective settings.

    Parameters
    ----------
    samples_file : path-like
        An HDF5 sample file (``sodinn samples``).
    output_dir : path-like
        The model folder (created if needed). If the training fails or is interrupted, what it wrote
        there is removed, unless a finished epoch can be resumed from (``backup/``).
    config : TrainConfig, optional
        The training settings (default: :class:`~sodinn.config.TrainConfig`).
    resume : bool
        Continue an interrupted training from its last epoch (default).
    progress : bool
        Show progress: one bar over the epochs on a terminal, one log line per epoch otherwise.

    Returns
    -------
    TrainResult
        The per-epoch history, the held-out metrics and the model folder.

    Raises
    ------
    FileNotFoundError
        If ``samples_file`` is not a file (before Keras is loaded).
    ValueError
        For a model name outside the registry, or a file that is not a sodinn sample file (before
        Keras is loaded).
    OSError
        If ``output_dir`` cannot be written (a file, no permission; before Keras is loaded).
    """
    config = config or TrainConfig()
    check_model_name(config.model)
    with SampleFile(samples_file):  # a missing or foreign file is refused here, before Keras is loaded
        pass
    out = check_writable_output(output_dir, kind="folder", name="output_dir")
    import_keras_quietly()
    with output_folder(out, resume_state=RESUME_STATE):
        result = train(samples_file, config, out, resume=resume, progress=progress)
        fig, axes = new_figure(1, 2, figsize=(10, 4))
        plot_training_history(result.history, axes=axes)
        val_loss = result.history.get("val_loss") or []
        kept = f" (kept: epoch {int(np.nanargmin(val_loss)) + 1}, lowest validation loss)" if len(val_loss) > 1 else ""
        fig.suptitle(f"{config.model}: training curves{kept}")
        save_figure(fig, out / "training_curves.png")
        dump_toml(out / "config.toml", {"train": {**config.to_dict(), "samples": str(Path(samples_file).resolve()),
                                                  "output": str(out.resolve())}})
    return result
