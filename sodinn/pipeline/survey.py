"""Surveys: samples -> train -> predict for a list of targets, one output folder each, resumable.

A survey configuration (TOML, see ``configs/survey_synthetic.toml``) lists the targets, each with
its data (FITS files) or a synthetic spec (the arguments of
:func:`sodinn.datasets.make_adi_sequence`, with a seed), the known sources to keep out of its
samples, and optional overrides of the shared ``[samples]`` and ``[train]`` tables. The targets
run as jobs of :func:`sodinn.engine.map_jobs`: in parallel on the local cores, or on a Dask
cluster (``[engine] scheduler``; the output folder and the data must then be on a file system
that the workers share).

Layout of the output folder::

    summary.ecsv                  one row per target: candidates, top candidate, held-out metrics
    <target>/data/                synthetic targets: cube.fits, angles.fits, psf.fits, truth.json
    <target>/samples.h5           labeled samples (samples.h5.parts/ while being made)
    <target>/model/               the trained model (model.json is written last; backup/ while training)
    <target>/predict/             probability_map.fits, detection_map.fits, candidates.ecsv, detection.png
    <target>/steps.json           the inputs each step was computed from

Resuming: a step is skipped when its artifacts exist and ``steps.json`` records that they were
computed from the same inputs (the data, the settings, the inputs or checksum of the step before); a step
that was interrupted resumes (sample generation from its finished annuli, training from its last
epoch); a step whose inputs changed is redone from scratch, and so is everything after it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import math
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sodinn import _validation as v
from sodinn._atomic import atomic_path, check_writable_output, output_folder
from sodinn.adi.io import file_checksum, read_vip_npz, select_hdu, write_fits
from sodinn.adi.sequence import ADISequence
from sodinn.adi.sky import PSFScaling
from sodinn.config import DataConfig, EngineConfig, PredictConfig, SampleConfig, TrainConfig, field_names, load_toml
from sodinn.datasets import make_adi_sequence
from sodinn.engine import check_scheduler, map_jobs, runs_in_process
from sodinn.exceptions import RotationWarning, SettingError, toml_setting
from sodinn.learn.artifact import METADATA_FILE, metadata_digest, read_metadata
from sodinn.learn.models import check_model_name
from sodinn.pipeline.predict import PREDICT_FILES, predict_products
from sodinn.pipeline.samples import write_sample_file
from sodinn.pipeline.train import train_model

__all__ = ["TARGET_RESUME_STATE", "Survey", "Target", "format_summary", "load_survey", "run_survey", "run_target", "write_synthetic_data"]

logger = logging.getLogger(__name__)

_SECTIONS = ("survey", "engine", "samples", "train", "targets")
_SURVEY_KEYS = {"output", "threshold", "fp_budget"}
_TARGET_KEYS = {"name", "data", "synthetic", "known_sources_xy", "mask_companions", "samples", "train", "threshold", "fp_budget"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Target:
    """One target of a survey, validated (paths absolute).

    Attributes
    ----------
    name : str
        Folder name of its outputs (letters, digits, ``.``, ``_``, ``-``).
    samples : SampleConfig
        Its sample settings, known sources included.
    train : TrainConfig
        Its training settings.
    predict : PredictConfig
        Its detection settings: the false-alarm budget, or a probability threshold (the survey's
        ``threshold`` and ``fp_budget`` keys, overridden per target).
    data : dict, optional
        ``cube``, ``angles``, ``psf`` (absolute paths), optional ``fwhm_px``, ``pixel_scale_arcsec``.
    synthetic : dict, optional
        Arguments of :func:`sodinn.datasets.make_adi_sequence` (``seed`` required).
    mask_companions : bool
        Synthetic targets: keep the injected companions out of the samples (they are the
        "known sources" of a synthetic sequence), as ``sodinn demo`` does.
    """

    name: str
    samples: SampleConfig
    train: TrainConfig
    predict: PredictConfig = dataclasses.field(default_factory=PredictConfig)
    data: dict[str, Any] | None = None
    synthetic: dict[str, Any] | None = None
    mask_companions: bool = True


@dataclass(frozen=True)
class Survey:
    """A validated survey configuration: the targets, the output folder and the engine settings.

    Attributes
    ----------
    targets : tuple of Target
        The targets, in the order of the configuration.
    output : Path
        The survey's output folder (absolute); one subfolder per target.
    scheduler : str, optional
        The ``[engine] scheduler``: where the targets run (see :mod:`sodinn.engine`).
    n_workers : int, optional
        The ``[engine] n_workers``: targets at once on the local cores.
    """

    targets: tuple[Target, ...]
    output: Path
    scheduler: str | None = None
    n_workers: int | None = None


# ---------------------------------------------------------------- configuration


def load_survey(path: str | os.PathLike[str]) -> Survey:
    """Read and check a survey configuration; every target is checked before any work starts.

    Relative paths (``[survey] output``, a target's ``data`` files) start from the configuration's
    folder.

    Parameters
    ----------
    path : path-like
        The survey configuration (TOML; see the module docstring).

    Returns
    -------
    Survey
        The checked targets, output folder and engine settings.

    Raises
    ------
    FileNotFoundError
        If the configuration or a target's data file does not exist.
    ValueError
        For an unknown table or key, a bad setting, a missing or duplicate target name.
    """
    path = Path(path)
    cfg = load_toml(path, sections=_SECTIONS)
    base = path.resolve().parent
    survey = _table(cfg, "survey", _SURVEY_KEYS, path)
    engine = _table(cfg, "engine", set(field_names(EngineConfig)), path)
    shared_samples = _table(cfg, "samples", None, path)
    shared_train = _table(cfg, "train", None, path)
    detection = {k: survey[k] for k in ("threshold", "fp_budget") if k in survey}
    _predict_config(detection, f"{path}: [survey]")
    scheduler = engine.get("scheduler")
    try:
        check_scheduler(scheduler)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: [engine] {err}") from None
    n_workers = engine.get("n_workers")
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        msg = f"{path}: [engine] n_workers must be a positive integer; got {n_workers!r}"
        raise ValueError(msg)
    entries = cfg.get("targets")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        msg = f"{path}: no targets; add one [[targets]] table per target, each with a name and data or synthetic"
        raise ValueError(msg)
    targets = tuple(_target(entry, i, shared_samples, shared_train, detection, base, path) for i, entry in enumerate(entries))
    names = [t.name for t in targets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        msg = f"{path}: target names must be unique (they name the output folders); repeated: {', '.join(duplicates)}"
        raise ValueError(msg)
    output = survey.get("output", str(Path.cwd() / "survey_output"))
    if not isinstance(output, str):
        msg = f"{path}: [survey] output must be a path in quotes; got {output!r}"
        raise ValueError(msg)
    return Survey(targets=targets, output=(base / output).resolve(), scheduler=scheduler, n_workers=n_workers)


def _table(cfg: Mapping[str, Any], name: str, keys: set[str] | None, path: Path) -> dict[str, Any]:
    table = cfg.get(name, {})
    if not isinstance(table, dict):
        msg = f"{path}: {name} must be a table ([{name}] followed by key = value lines)"
        raise ValueError(msg)
    if keys is not None and set(table) - keys:
        msg = f"{path}: unknown key(s) in [{name}]: {', '.join(sorted(set(table) - keys))}; known: {', '.join(sorted(keys))}"
        raise ValueError(msg)
    return dict(table)


def _predict_config(values: Mapping[str, Any], where: str) -> PredictConfig:
    try:
        return PredictConfig(**values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


def _target(entry: dict[str, Any], i: int, shared_samples: dict[str, Any], shared_train: dict[str, Any],
            detection: Mapping[str, Any], base: Path, path: Path) -> Target:
    name = entry.get("name")
    where = f"{path}: target {i + 1}" + (f" ({name})" if isinstance(name, str) else "")
    try:
        unknown = sorted(set(entry) - _TARGET_KEYS)
        if unknown:
            msg = f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_TARGET_KEYS))}"
            raise ValueError(msg)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            msg = f"name must be a folder name (letters, digits, '.', '_', '-'); got {name!r}"
            raise ValueError(msg)
        if ("data" in entry) == ("synthetic" in entry):
            msg = "give either data = {cube, angles, psf, ...} or synthetic = {seed, ...}, not both or neither"
            raise ValueError(msg)
        data = _data(entry["data"], base) if "data" in entry else None
        synthetic = _synthetic(entry["synthetic"]) if "synthetic" in entry else None
        mask = entry.get("mask_companions", True)
        if not isinstance(mask, bool):
            msg = f"mask_companions must be true or false; got {mask!r}"
            raise ValueError(msg)
        samples = {**shared_samples, **_sub_table(entry, "samples")}
        known = [*samples.get("known_sources_xy", []), *entry.get("known_sources_xy", [])]
        sample_config = SampleConfig.from_dict({**samples, "known_sources_xy": known})
        if data is not None:  # positions against the frame size in the file's header, before any target runs
            shape = (read_vip_npz(data["npz"]).cube.shape if "npz" in data
                     else select_hdu(data["cube"], "cube", hdu=data.get("cube_hdu")).shape)
            v.check_sources_in_frame(sample_config, shape[-1])
        train_config = TrainConfig.from_dict({**shared_train, **_sub_table(entry, "train")})
        check_model_name(train_config.model)
        predict = _predict_config({**detection, **{k: entry[k] for k in ("threshold", "fp_budget") if k in entry}}, "[predict]")
    except SettingError as err:
        raise err.prefixed(where) from None
    except (TypeError, ValueError, FileNotFoundError) as err:
        raise type(err)(f"{where}: {err}") from None
    return Target(name=name, samples=sample_config, train=train_config, predict=predict, data=data, synthetic=synthetic,
                  mask_companions=mask)


def _sub_table(entry: dict[str, Any], key: str) -> dict[str, Any]:
    table = entry.get(key, {})
    if not isinstance(table, dict):
        msg = f"{key} must be a table of settings; got {table!r}"
        raise ValueError(msg)
    return table


def _data(table: Any, base: Path) -> dict[str, Any]:
    inputs = ("npz",) if isinstance(table, dict) and "npz" in table else ("cube", "angles", "psf")
    if not isinstance(table, dict) or set(table) - set(field_names(DataConfig)) or not set(inputs) <= set(table):
        msg = (f"data must be a table with cube, angles and psf (paths), or npz (a VIP Dataset), and optionally fwhm_px, "
               f"pixel_scale_arcsec; got {table!r}")
        raise ValueError(msg)
    DataConfig.from_dict(table)  # npz with FITS inputs or their HDU settings is refused here
    data = dict(table)
    for key in inputs:
        if not isinstance(data[key], str):
            msg = f"data {key} must be a path in quotes; got {data[key]!r}"
            raise ValueError(msg)
        data[key] = str((base / data[key]).resolve())
        if not Path(data[key]).is_file():
            msg = f"data {key} file not found: {data[key]}"
            raise FileNotFoundError(msg)
    return data


def _synthetic(table: Any) -> dict[str, Any]:
    known = set(inspect.signature(make_adi_sequence).parameters)
    if not isinstance(table, dict) or set(table) - known:
        extra = sorted(set(table) - known) if isinstance(table, dict) else table
        msg = f"synthetic must be a table of make_adi_sequence arguments; unknown: {extra}; known: {', '.join(sorted(known))}"
        raise ValueError(msg)
    if isinstance(table.get("seed"), bool) or not isinstance(table.get("seed"), int):
        msg = "synthetic needs an integer seed, so that its data can be made again"
        raise ValueError(msg)
    return dict(table)


# ---------------------------------------------------------------- running


def run_survey(
    survey: Survey,
    *,
    scheduler: Any = None,
    n_workers: int | None = None,
    restart: bool = False,
    progress: bool = True,
) -> Any:
    """Run every target (samples -> train -> predict), skipping what is already done.

    Parameters
    ----------
    survey : Survey
        From :func:`load_survey`.
    scheduler : None, str or dask.distributed.Client
        Where the targets run (see :func:`sodinn.engine.map_jobs`); default: the survey's ``[engine]``
        settings, else the local process pool (one target per core). ``"synchronous"`` runs the
        targets one after the other in this process, each with its annuli on all cores.
    n_workers : int, optional
        Targets at once (default: the survey's ``[engine] n_workers``, else all cores).
    restart : bool
        Redo every step from scratch instead of resuming.
    progress : bool
        Show progress bars.

    Returns
    -------
    astropy.table.Table
        One row per target (also written to ``summary.ecsv`` in the output folder): ``steps_run``
        ("none" when everything was done before), ``n_candidates``, ``top_x``/``top_y``/``top_probability``
        (the candidate of highest probability, px), the held-out ``auc`` and ``accuracy`` of its model,
        ``companions_found`` (synthetic targets: injected companions within 1 FWHM of a candidate, as
        "found/injected") and ``error`` ("-" unless the target failed; the others are not affected).

    Raises
    ------
    ValueError, TypeError
        For a bad scheduler, before any target runs.
    OSError
        If ``survey.output`` cannot be written (a file, no permission), before any target runs.

    Notes
    -----
    A survey that is interrupted keeps the targets' finished steps and resumable state (see
    :func:`run_target`); a target folder with nothing to resume from is removed.
    """
    from astropy.table import Table

    scheduler = check_scheduler(scheduler if scheduler is not None else survey.scheduler)
    n_workers = n_workers if n_workers is not None else survey.n_workers
    out = check_writable_output(survey.output, kind="folder", name="survey.output ([survey] output)")
    inline = runs_in_process(scheduler=scheduler, n_workers=n_workers, n_jobs=len(survey.targets))
    jobs = [(t, str(out / t.name), restart, progress and inline) for t in survey.targets]
    with output_folder(out, resume_state=[t.name for t in survey.targets]):
        rows = map_jobs(_target_job, jobs, scheduler=scheduler, n_workers=n_workers, progress=progress and not inline,
                        desc="targets", on_result=lambda i, row: _log_row(row))
        table = Table(rows=[[row.get(c, default) for c, default in _COLUMNS] for row in rows],
                      names=[c for c, _ in _COLUMNS])
        with atomic_path(out / "summary.ecsv") as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
    return table


_COLUMNS = (("target", ""), ("steps_run", "none"), ("n_candidates", -1), ("top_x", math.nan), ("top_y", math.nan),
            ("top_probability", math.nan), ("auc", math.nan), ("accuracy", math.nan), ("companions_found", "-"),
            ("error", "-"))


def _log_row(row: dict[str, Any]) -> None:
    if "error" in row:
        logger.error("%s: failed: %s", row["target"], row["error"])
    else:
        logger.info("%s: done (%s)", row["target"], "nothing to redo" if row["steps_run"] == "none" else f"ran {row['steps_run']}")


def _target_job(target: Target, folder: str, restart: bool, progress: bool) -> dict[str, Any]:
    """One survey job: a failing target is reported in its row, not raised, so the others go on."""
    try:
        return run_target(target, folder, restart=restart, progress=progress)
    except SettingError as err:  # a user error: one line naming the key of the survey configuration
        return {"target": target.name, "error": f"{type(err).__name__}: {err.render(toml_setting)}"}
    except (ValueError, TypeError, FileNotFoundError) as err:  # a user error: one line, no traceback
        return {"target": target.name, "error": f"{type(err).__name__}: {err}"}
    except Exception as err:  # noqa: BLE001 - reported in the summary, with the target's name
        logger.exception("%s: failed", target.name)
        return {"target": target.name, "error": f"{type(err).__name__}: {err}"}


def run_target(target: Target, folder: str | os.PathLike[str], *, restart: bool = False,
               progress: bool = False) -> dict[str, Any]:
    """Run (or resume) one target in ``folder``; return its summary row (a dict).

    Parameters
    ----------
    target : Target
        From :attr:`Survey.targets`.
    folder : path-like
        The target's output folder (created if needed). If the target fails or is interrupted, the
        folder keeps only what a rerun resumes from (finished steps, sample parts, a training
        backup); with nothing to resume from, what the run created is removed.
    restart : bool
        Redo every step.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        The target's row of the summary table (see :func:`run_survey`).

    Raises
    ------
    OSError
        If ``folder`` cannot be written (a file, no permission), before any work.
    """
    out = check_writable_output(folder, kind="folder", name="folder")
    with output_folder(out, resume_state=TARGET_RESUME_STATE):
        return _run_target(target, out, restart, progress)


#: The entries of a target's folder a rerun resumes from (kept when a target fails, if they hold a file)
TARGET_RESUME_STATE = ("data", "samples.h5", "samples.h5.parts", "model")


def _run_target(target: Target, out: Path, restart: bool, progress: bool) -> dict[str, Any]:
    steps = _Steps(out / "steps.json", fresh=restart)
    data, truth, data_key = _prepare_data(target, out, steps)
    config = target.samples
    if truth is not None and target.mask_companions:
        config = dataclasses.replace(config, known_sources_xy=config.known_sources_xy + tuple(
            (x, y) for x, y, _ in truth["companions"]))

    samples = out / "samples.h5"
    samples_inputs = {"data": data_key, "config": config.digest()}
    with steps.step("samples", samples_inputs, [samples]) as resume:
        if resume is not None:
            logger.info("%s: samples%s", target.name, " (resuming)" if resume else "")
            write_sample_file(_sequence(data, config.r_in_fwhm), config, samples, data=data, resume=resume, progress=progress)

    model = out / "model"
    # the samples are a deterministic function of their inputs (the file's bytes are not: HDF5 timestamps)
    with steps.step("train", {"samples": samples_inputs, "config": target.train.to_dict()},
                    [model / METADATA_FILE]) as resume:
        if resume is not None:
            logger.info("%s: training %s%s", target.name, target.train.model, " (resuming)" if resume else "")
            train_model(samples, model, target.train, resume=resume, progress=progress)

    predict = out / "predict"
    with steps.step("predict", {"model": metadata_digest(model), "data": data_key,
                                "detection": target.predict.to_dict()}, [predict / f for f in PREDICT_FILES]) as resume:
        if resume is not None:
            logger.info("%s: probability map and candidates", target.name)
            scaling = PSFScaling(**{k: data[k] for k in ("psf_exposure_s", "cube_exposure_s", "psf_nd_transmission",
                                                         "star_flux") if data.get(k) is not None})
            predict_products(_sequence(data, config.r_in_fwhm), model, predict, config=target.predict, data=data,
                             psf_scaling=scaling, progress=progress)
    return _summary(target, out, truth, steps.ran)


class _Steps:
    """``steps.json``: for each step, the digest of its inputs and whether it finished."""

    def __init__(self, path: Path, *, fresh: bool) -> None:
        self.path = path
        self.state: dict[str, dict[str, Any]] = {} if fresh or not path.is_file() else json.loads(path.read_text())
        self.ran: list[str] = []

    def step(self, name: str, inputs: Mapping[str, Any], artifacts: list[Path]) -> Any:
        """Context manager yielding None (done: skip), True (interrupted: resume) or False (start afresh)."""
        import contextlib

        key = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
        record = self.state.get(name, {})
        same = record.get("key") == key
        if same and record.get("done") and all(p.exists() for p in artifacts):
            return contextlib.nullcontext(None)
        return self._run(name, key, resume=same)

    def _run(self, name: str, key: str, *, resume: bool) -> Any:
        import contextlib

        @contextlib.contextmanager
        def running():
            self._save(name, {"key": key, "done": False})
            yield resume
            self._save(name, {"key": key, "done": True})
            self.ran.append(name)

        return running()

    def _save(self, name: str, record: dict[str, Any]) -> None:
        self.state[name] = record
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(self.state, indent=1, sort_keys=True))


def _prepare_data(target: Target, out: Path, steps: _Steps) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    """Return the target's data table (paths, FWHM, pixel scale), the truth of a synthetic target, and a data digest."""
    if target.data is not None:
        key: dict[str, Any] = {k: file_checksum(target.data[k]) for k in ("cube", "angles", "psf", "npz")
                               if k in target.data}
        key.update({k: target.data.get(k) for k in ("fwhm_px", "pixel_scale_arcsec")})
        return dict(target.data), None, json.dumps(key, sort_keys=True)
    if target.synthetic is None:
        msg = f"target {target.name!r} has neither data nor a synthetic spec"
        raise ValueError(msg)
    folder = out / "data"
    files = [folder / f for f in ("cube.fits", "angles.fits", "psf.fits", "truth.json")]
    with steps.step("data", {"synthetic": target.synthetic}, files) as resume:
        if resume is not None:
            logger.info("%s: synthetic data (seed %d)", target.name, target.synthetic["seed"])
            write_synthetic_data(target.synthetic, folder)
    truth = json.loads((folder / "truth.json").read_text())
    data = {"cube": str(files[0]), "angles": str(files[1]), "psf": str(files[2]), "fwhm_px": truth["fwhm_px"],
            "pixel_scale_arcsec": truth["pixel_scale_arcsec"]}
    return data, truth, json.dumps({"synthetic": target.synthetic}, sort_keys=True)


def write_synthetic_data(spec: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """Make a synthetic sequence and write it as FITS, with ``truth.json`` written last.

    Parameters
    ----------
    spec : mapping
        Arguments of :func:`sodinn.datasets.make_adi_sequence`, ``seed`` included.
    folder : Path
        Receives ``cube.fits``, ``angles.fits``, ``psf.fits`` and ``truth.json``.

    Returns
    -------
    dict
        The content of ``truth.json``: ``fwhm_px``, ``pixel_scale_arcsec``, ``companions`` as
        ``[x, y, flux]`` (sky frame, px; flux in a 1-FWHM aperture, counts per frame) and ``config``.

    Raises
    ------
    TypeError, ValueError
        For bad arguments of :func:`sodinn.datasets.make_adi_sequence`.
    KeyError
        If ``spec`` has no ``seed``.
    """
    synth = make_adi_sequence(**spec)
    provenance = {"generator": "sodinn.datasets.make_adi_sequence", "seed": spec["seed"], "config": synth.config}
    for name, array in (("cube", synth.cube.astype(np.float32)), ("angles", synth.angles_deg), ("psf", synth.psf)):
        write_fits(folder / f"{name}.fits", array, provenance=provenance)
    truth = {"fwhm_px": synth.fwhm_px, "pixel_scale_arcsec": synth.pixel_scale_arcsec,
             "companions": [[c.x_px, c.y_px, c.flux] for c in synth.companions], "config": synth.config}
    with atomic_path(folder / "truth.json") as tmp:
        tmp.write_text(json.dumps(truth, indent=1))
    return truth


def _sequence(data: Mapping[str, Any], r_in_fwhm: float) -> ADISequence:
    """Read a target's sequence; stop when it rotates too little at the centre of the innermost annulus.

    As the other commands do, unless the target's data table sets ``allow_small_rotation = true``.
    """
    options = ("fwhm_px", "pixel_scale_arcsec", "nan_policy", "cube_hdu", "angles_hdu", "angles_column", "psf_hdu",
               "north_offset_deg")
    with warnings.catch_warnings():  # judged below, at the radius the samples start from
        warnings.simplefilter("ignore", RotationWarning)
        if "npz" in data:
            seq = ADISequence.from_npz(data["npz"], **{key: data[key] for key in ("fwhm_px", "pixel_scale_arcsec",
                                                                                  "nan_policy") if data.get(key) is not None})
            if data.get("north_offset_deg"):
                seq = seq.with_north_offset(data["north_offset_deg"])
        else:
            seq = ADISequence.from_fits(data["cube"], data["angles"], data["psf"],
                                        **{key: data[key] for key in options if data.get(key) is not None})
        if data.get("star_center_xy") is not None:
            seq = seq.recentered(data["star_center_xy"])
    v.check_rotation(seq.angles_deg, seq.fwhm_px, (r_in_fwhm + 0.5) * seq.fwhm_px,
                     radius_name="the centre of the innermost sample annulus", allow=bool(data.get("allow_small_rotation")))
    return seq


def _summary(target: Target, out: Path, truth: dict[str, Any] | None, ran: list[str]) -> dict[str, Any]:
    from astropy.table import Table

    metrics = read_metadata(out / "model")["metrics"]
    table = Table.read(out / "predict" / "candidates.ecsv")
    row: dict[str, Any] = {
        "target": target.name,
        "steps_run": ",".join(ran) or "none",
        "n_candidates": len(table),
        "auc": math.nan if metrics.get("auc") is None else float(metrics["auc"]),
        "accuracy": float(metrics["accuracy"]),
    }
    if len(table):
        row.update(top_x=float(table["x"][0]), top_y=float(table["y"][0]), top_probability=float(table["peak_probability"][0]))
        if "expected_fp" in table.colnames:
            row["top_expected_fp"] = float(table["expected_fp"][0])
    if truth is not None:
        fwhm = float(truth["fwhm_px"])
        xy = np.column_stack([np.asarray(table["x"], dtype=float), np.asarray(table["y"], dtype=float)])
        found = sum(len(xy) > 0 and np.hypot(xy[:, 0] - x, xy[:, 1] - y).min() <= fwhm for x, y, _ in truth["companions"])
        row["companions_found"] = f"{found}/{len(truth['companions'])}"
    return row


def format_summary(table: Any) -> str:
    """Format the summary table as aligned text, for the terminal.

    Parameters
    ----------
    table : astropy.table.Table
        The table of :func:`run_survey` (one row per target).

    Returns
    -------
    str
        A header line and one line per target (failed targets: their error).
    """
    lines = [f"{'target':<16s} {'steps run':<26s} {'candidates':>10s}  {'top candidate (x, y, P)':<24s} "
             f"{'AUC':>6s} {'acc.':>6s}  companions found"]
    for r in table:
        if r["error"] != "-":
            lines.append(f"{r['target']:<16s} FAILED: {r['error']}")
            continue
        top = "-" if r["n_candidates"] <= 0 else f"({r['top_x']:.1f}, {r['top_y']:.1f}, {r['top_probability']:.3f})"
        auc = "n/a" if math.isnan(r["auc"]) else f"{r['auc']:.3f}"
        ran = "(all done before)" if r["steps_run"] == "none" else r["steps_run"]
        lines.append(f"{r['target']:<16s} {ran:<26s} {r['n_candidates']:>10d}  {top:<24s} {auc:>6s} {r['accuracy']:>6.3f}  "
                     f"{r['companions_found']}")
    return "\n".join(lines)
