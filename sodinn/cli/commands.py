"""The commands of ``sodinn``: settings from a configuration file and flags, checked, then a pipeline step.

Each ``cmd_*`` function reads the tables of ``--config`` (paths relative to the file's folder) and the
flags (paths relative to the working folder; flags win), checks everything that can be checked before
any work (files, folders, settings, the model against the data), runs the step of
:mod:`sodinn.pipeline` that makes the products, and prints a summary. :data:`FLAGS` ties every flag
that sets a setting to its dataclass field of :mod:`sodinn.config`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sodinn._atomic import check_writable_output
from sodinn._validation import ROTATION_RADIUS_FWHM, check_rotation
from sodinn.cli.info import info_text
from sodinn.config import (
    DataConfig,
    EngineConfig,
    LimitConfig,
    PredictConfig,
    ReduceConfig,
    RocConfig,
    SampleConfig,
    TrainConfig,
    field_names,
    load_toml,
)
from sodinn.exceptions import RotationWarning, python_setting, toml_setting

__all__ = ["COMMAND_TABLES", "FLAGS", "TABLES", "UserError", "cli_setting",
           "candidate_summary", "cmd_convert", "cmd_demo", "cmd_info", "cmd_limits", "cmd_predict", "cmd_reduce", "cmd_roc",
           "cmd_samples",
           "cmd_survey", "cmd_train"]

logger = logging.getLogger("sodinn")


class UserError(Exception):
    """An error the user can fix (reported in one line, exit status 2)."""


#: The tables of a configuration file: the dataclass whose fields are its keys, and the keys of paths besides
TABLES: dict[str, tuple[type | None, tuple[str, ...]]] = {
    "data": (DataConfig, ()),
    "reduce": (ReduceConfig, ("output",)),
    "samples": (SampleConfig, ("output",)),
    "train": (TrainConfig, ("samples", "output")),
    "predict": (PredictConfig, ("model", "output")),
    "roc": (None, ()),  # checked by RocConfig.from_dict in its command (with "models" and "output")
    "limits": (None, ()),  # checked by LimitConfig.from_dict in its command (with "models" and "output")
    "engine": (EngineConfig, ()),
}

#: Flags that set a setting: table -> {argparse destination: dataclass field}
FLAGS: dict[str, dict[str, str]] = {
    "data": {"cube": "cube", "angles": "angles", "psf": "psf", "fwhm": "fwhm_px", "pixel_scale": "pixel_scale_arcsec",
             "nan_policy": "nan_policy", "cube_hdu": "cube_hdu", "angles_hdu": "angles_hdu",
             "angles_column": "angles_column", "psf_hdu": "psf_hdu", "allow_small_rotation": "allow_small_rotation",
             "north_offset": "north_offset_deg", "psf_exposure": "psf_exposure_s", "cube_exposure": "cube_exposure_s",
             "psf_nd_transmission": "psf_nd_transmission", "star_flux": "star_flux",
             "star_center": "star_center_xy", "npz": "npz"},
    "reduce": {"method": "method", "ncomp": "ncomp", "delta_rot": "delta_rot"},
    "samples": {"patch": "patch_px", "ranks": "n_ranks", "per_annulus": "samples_per_annulus", "seed": "seed",
                "mask": "known_sources_xy", "snr_range": "snr_range"},
    "train": {"model": "model", "epochs": "epochs", "batch_size": "batch_size", "seed": "seed",
              "precision": "precision", "random_split": "report_random_split"},
    "predict": {"fp_budget": "fp_budget", "threshold": "threshold", "calibration_nulls": "calibration_nulls",
                "mask": "known_sources_xy"},
    "roc": {"copies": "copies_per_band", "seed": "seed"},
    "limits": {"copies": "copies_per_flux", "seed": "seed", "separations": "separations_lambda_d", "baselines": "baselines",
               "threshold": "prob_threshold", "snr_threshold": "snr_threshold", "sigma": "sigma",
               "classical_ncomp": "classical_ncomp", "convention": "convention"},
    "engine": {"scheduler": "scheduler", "jobs": "n_workers"},
}


#: The configuration tables each command reads, in the order a setting named in a message is looked up
COMMAND_TABLES: dict[str, tuple[str, ...]] = {
    "reduce": ("reduce", "data", "engine"),
    "samples": ("samples", "data", "engine"),
    "train": ("train", "engine"),
    "predict": ("predict", "data", "engine"),
    "roc": ("roc", "data", "engine"),
    "limits": ("limits", "data", "engine"),
    "survey": ("samples", "train", "predict", "data", "engine"),
    "info": ("data",),
    "convert": ("data",),
    "demo": (),
}


def cli_setting(command: str, dests: Collection[str] | None = None) -> Callable[[str, Any], str]:
    """Return how ``sodinn COMMAND`` names a setting in an error message (for :meth:`SettingError.render`).

    A setting with a flag of the command is written as the flag and its configuration key
    (``--nan-policy zero (or [data] nan_policy = "zero")``); one that is only a configuration key as
    the key and its table (``[samples] oracle_ncomp = 5 in --config``); a survey's settings as keys of
    its configuration; anything else as Python writes it.

    Parameters
    ----------
    command : str
        The command (``"reduce"``, ``"samples"``, ...).
    dests : collection of str, optional
        The argparse destinations the command has (``vars(args)``); a flag of :data:`FLAGS` the
        command lacks is not offered. Default: all of :data:`FLAGS`.

    Returns
    -------
    callable
        ``form(name, value) -> str``.
    """

    def form(name: str, value: Any) -> str:
        if name in _COMMAND_ONLY_FLAGS.get(command, ()) and (dests is None or name in dests):
            flag = "--" + name.replace("_", "-")
            return flag if value is None else f"{flag} {_flag_value(value)}"
        if command == "survey":  # configured by its TOML file alone (targets and shared tables)
            return f"{toml_setting(name, value)} in the survey configuration"
        sections = COMMAND_TABLES.get(command, ())
        for section in sections:  # a flag first, in whichever table it sets
            key = f"[{section}] {toml_setting(name, value)}"
            for dest, field in FLAGS.get(section, {}).items():
                if field == name and (dests is None or dest in dests):
                    flag = "--" + dest.replace("_", "-")
                    flag = flag if value is None or value is True else f"{flag} {_flag_value(value)}"
                    return f"{flag} (or {key})"
        for section in sections:
            if name in _table_keys(section):
                return f"[{section}] {toml_setting(name, value)} in --config"
        return python_setting(name, value)

    return form


#: Flags of a command that set no configuration key (``sodinn info`` reads no configuration)
_COMMAND_ONLY_FLAGS: dict[str, tuple[str, ...]] = {"info": ("hdu", "column")}


def _flag_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(_flag_value(x) for x in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _table_keys(section: str) -> tuple[str, ...]:
    cls, extra = TABLES.get(section, (None, ()))
    if section in ("roc", "limits"):
        cls = RocConfig if section == "roc" else LimitConfig
        extra = ("models", "output")
    return (*field_names(cls), *extra) if cls is not None else extra


def _apply_flags(table: dict[str, Any], args: argparse.Namespace, section: str) -> dict[str, Any]:
    """Return ``table`` with the settings given as flags (those of :data:`FLAGS` that are set) put in."""
    out = dict(table)
    for dest, name in FLAGS[section].items():
        value = getattr(args, dest, None)
        if value is None or value is False:
            continue
        if name == "known_sources_xy":
            value = [list(xy) for xy in value]
        out[name] = value
    return out


# ---------------------------------------------------------------- configuration and inputs


def _load_config(args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    """Return the TOML configuration (empty without --config) and the folder its relative paths start from."""
    if not args.config:
        return {}, Path.cwd()
    if Path(args.config).is_dir():
        msg = f"--config {args.config} is a folder; pass a TOML file such as configs/naco_betapic.toml"
        raise UserError(msg)
    cfg = load_toml(args.config, sections=TABLES)
    _check_tables(cfg, args.config)
    return cfg, Path(args.config).resolve().parent


def _check_tables(cfg: Mapping[str, Any], path: str) -> None:
    """Refuse a table that is not a table and keys no command reads (a typo would be silently ignored)."""
    for section, (cls, extra) in TABLES.items():
        table = cfg.get(section, {})
        if not isinstance(table, dict):
            msg = f"{path}: {section} must be a table ([{section}] followed by key = value lines)"
            raise UserError(msg)
        if cls is None:
            continue
        keys = set(field_names(cls)) | set(extra)
        unknown = sorted(set(table) - keys)
        if unknown:
            msg = f"{path}: unknown key(s) in [{section}]: {', '.join(unknown)}; known: {', '.join(sorted(keys))}"
            raise UserError(msg)


_FITS_INPUTS = ("cube", "angles", "psf")
_FITS_ONLY = ("cube_hdu", "angles_hdu", "angles_column", "psf_hdu")


def _data_table(args: argparse.Namespace, cfg: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """Return the effective [data] table: the configuration's, the flags put in, input paths resolved.

    The data come either from three FITS files (cube, angles, psf) or from one VIP ``.npz``: a flag
    naming one kind replaces the configuration's inputs of the other kind; both kinds in the flags, or
    both in the table, are refused.
    """
    table = dict(cfg.get("data", {}))
    flag_fits = [k for k in _FITS_INPUTS if getattr(args, k, None) is not None]
    if getattr(args, "npz", None) is not None:
        if flag_fits:
            raise UserError(f"--npz and --{' --'.join(flag_fits)} both name the input data; pass either --npz FILE "
                            "(a VIP Dataset) or --cube, --angles and --psf (FITS)")
        for key in (*_FITS_INPUTS, *_FITS_ONLY):  # the flag replaces the configuration's FITS inputs
            table.pop(key, None)
    elif flag_fits:
        table.pop("npz", None)
    if "npz" in table and any(k in table for k in _FITS_INPUTS):
        both = ", ".join(k for k in _FITS_INPUTS if k in table)
        raise UserError(f"[data] of --config names both npz and {both}; keep npz (a VIP Dataset) or the three FITS files")
    data = _apply_flags(table, args, "data")
    for key in (*_FITS_INPUTS, "npz"):  # a flag's path is relative to the working folder, the config's to its folder
        if getattr(args, key, None) is not None:
            data[key] = str(Path(getattr(args, key)).resolve())
    if "npz" in data:
        fits_only = [k for k in _FITS_ONLY if data.get(k) is not None]
        if fits_only:
            flags = ", ".join(f"--{k.replace('_', '-')}" for k in fits_only)
            raise UserError(f"{flags} (or [data] {', '.join(fits_only)}): settings of FITS files, not of --npz; remove them")
        if not isinstance(data["npz"], str):
            raise UserError(f"[data] npz must be a file name in quotes; got {data['npz']!r}")
        return data
    missing = [k for k in _FITS_INPUTS if k not in data]
    if missing:
        msg = (f"missing input(s): {', '.join(missing)}; pass --{missing[0]} FILE, --npz FILE (a VIP Dataset) or a "
               "--config with a [data] table")
        raise UserError(msg)
    for key in _FITS_INPUTS:
        if not isinstance(data[key], str):
            msg = f"[data] {key} must be a file name in quotes; got {data[key]!r}"
            raise UserError(msg)
    return data


def _load_sequence(args: argparse.Namespace, cfg: Mapping[str, Any], base: Path) -> tuple[Any, dict[str, Any]]:
    """Read the ADISequence named by --config [data] and the flags; return it and the effective [data] table."""
    from sodinn.adi.sequence import ADISequence

    data = _data_table(args, cfg, base)
    config = DataConfig.from_dict(data)
    keys = ("npz",) if config.npz is not None else _FITS_INPUTS
    paths = {k: (base / getattr(config, k)).resolve() for k in keys}
    for key, path in paths.items():
        if path.is_dir():
            what = "the .npz file of a VIP Dataset" if key == "npz" else f"the FITS file of the {key}"
            msg = f"{key} {path} is a folder; pass {what}"
            raise UserError(msg)
    with warnings.catch_warnings():  # the command judges the rotation at its own radius (_check_rotation)
        warnings.simplefilter("ignore", RotationWarning)
        if config.npz is not None:
            seq = ADISequence.from_npz(paths["npz"], fwhm_px=config.fwhm_px, pixel_scale_arcsec=config.pixel_scale_arcsec,
                                       nan_policy=config.nan_policy)
            if config.north_offset_deg:
                seq = seq.with_north_offset(config.north_offset_deg)
        else:
            seq = ADISequence.from_fits(paths["cube"], paths["angles"], paths["psf"], fwhm_px=config.fwhm_px,
                                        pixel_scale_arcsec=config.pixel_scale_arcsec, nan_policy=config.nan_policy,
                                        cube_hdu=config.cube_hdu, angles_hdu=config.angles_hdu,
                                        angles_column=config.angles_column, psf_hdu=config.psf_hdu,
                                        north_offset_deg=config.north_offset_deg)
        if config.star_center_xy is not None:
            seq = seq.recentered(config.star_center_xy)
            logger.info("star moved from (%.2f, %.2f) to the frame centre (--star-center)", *config.star_center_xy)
    if config.npz is not None:
        logger.info("%s: VIP Dataset, %d frames of %dx%d px, FWHM %.2f px (%s), PSF from %r", paths["npz"].name,
                    seq.n_frames, seq.frame_size, seq.frame_size, seq.fwhm_px, seq.provenance["fwhm_source"],
                    seq.provenance["psf_key"])
    else:
        where = [f"{k} from {seq.provenance[k + '_hdu']}" for k in _FITS_INPUTS
                 if not seq.provenance[f"{k}_hdu"].startswith("HDU 0 ")]
        logger.info("%s: %d frames of %dx%d px, FWHM %.2f px%s", paths["cube"].name, seq.n_frames, seq.frame_size,
                    seq.frame_size, seq.fwhm_px, f" ({', '.join(where)})" if where else "")
    return seq, {**data, **{k: str(v) for k, v in paths.items()}}


def _check_rotation(seq: Any, data: Mapping[str, Any], radius_px: float, radius_name: str) -> None:
    """Stop before any work when the field rotation moves a source at ``radius_px`` by less than one FWHM.

    Each command passes the inner radius of what it analyses: ``reduce`` the centre of the S/N map's
    innermost annulus (1.5 FWHM), ``samples`` and ``predict`` the centre of the innermost sample
    annulus, ``roc`` the centre of the innermost separation band. ``--allow-small-rotation`` (or
    ``[data] allow_small_rotation = true``) turns the error into a logged warning
    (:func:`sodinn._validation.check_rotation`).
    """
    problem = check_rotation(seq.angles_deg, seq.fwhm_px, radius_px, radius_name=radius_name,
                             allow=bool(data.get("allow_small_rotation")))
    if problem is not None:
        logger.warning("warning: %s (going on: allow_small_rotation)", problem)


def _output_folder(path: Path, table: str | None = None, *, kind: str = "folder", config: str | None = None) -> Path:
    """Refuse, before any work, an output that cannot be written (a file for a folder, no permission...).

    The message names the path and the settings that choose another: ``--output`` (and the ``output``
    key of ``[table]``). An output that would overwrite the ``--config`` file itself (the products include
    the effective configuration: ``config.toml`` in an output folder, ``NAME.toml`` beside a sample file)
    is refused too.
    """
    name = "--output" if table is None else f"--output (or [{table}] output)"
    try:
        checked = check_writable_output(path, kind=kind, name=name)
    except OSError as err:
        raise UserError(str(err)) from None
    if config is not None:
        written = [checked, checked.with_suffix(".toml")] if kind == "file" else [checked / "config.toml"]
        mine = Path(config).resolve()
        for product in written:
            if product.resolve() == mine:
                msg = (f"{name} {path} would overwrite the configuration file {config} (the run writes its effective "
                       f"configuration to {product}); choose another output")
                raise UserError(msg)
    return checked


def _input_path(flag: str | None, cfg_values: Sequence[str | None], base: Path, what: str) -> Path:
    """Return the first of a flag (relative to the working folder) and configuration values (relative to the config)."""
    if flag is not None:
        return Path(flag)
    for value in cfg_values:
        if value is not None:
            if not isinstance(value, str):
                msg = f"the configuration's {what} must be a path in quotes; got {value!r}"
                raise UserError(msg)
            return (base / value).resolve()
    msg = f"missing {what}"
    raise UserError(msg)


def _output_path(value: str | None, cfg_value: str | None, base: Path, default: str) -> Path:
    """Return an output path: a flag is relative to the working folder, a configuration's value to its folder."""
    if value is not None:
        return Path(value)
    if cfg_value is not None:
        return (base / cfg_value).resolve()
    return Path(default)


def _engine_settings(args: argparse.Namespace, cfg: Mapping[str, Any]) -> EngineConfig:
    """Return the scheduler and worker count from the flags, else the [engine] table; checked before any work."""
    try:
        return EngineConfig.from_dict(_apply_flags(dict(cfg.get("engine", {})), args, "engine"))
    except (TypeError, ValueError) as err:
        raise UserError(f"{err} (set by --scheduler, --jobs or the [engine] table)") from None


# ---------------------------------------------------------------- commands


def cmd_demo(args: argparse.Namespace) -> int:
    """``sodinn demo``: the whole pipeline on synthetic data (:func:`sodinn.pipeline.demo.run_demo`).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        Exit status (0).
    """
    from sodinn.pipeline.demo import COMPANION_NAMES, run_demo

    _output_folder(Path(args.output))
    result = run_demo(args.output, seed=args.seed, train=not args.no_train, progress=not args.quiet)
    synth, reductions = result.synthetic, result.reductions
    print(f"{'companion':>10s} {'x':>6s} {'y':>6s} {'flux':>7s} " + " ".join(f"{'S/N ' + m:>12s}" for m in reductions))
    for i, c in enumerate(synth.companions):
        snrs = " ".join(f"{reductions[m].snr_at_truth[i]:12.2f}" for m in reductions)
        print(f"{COMPANION_NAMES[i]:>10s} {c.x_px:6.1f} {c.y_px:6.1f} {c.flux:7.1f} {snrs}")
    for m, r in reductions.items():
        print(f"{m:>10s}: S/N map peak {r.peak_snr:.2f} at (x={r.peak_xy[0]}, y={r.peak_xy[1]}); "
              f"files: {r.frame_file.name}, {r.snr_file.name}, {r.figure_file.name}")
    table = result.candidates
    if table is not None:
        print(f"SODINN: {len(table)} candidate(s) with {result.criterion} "
              "(files: predict/candidates.ecsv, predict/detection.png; PCA-ADI beside SODINN: demo.png)")
        for i, c in enumerate(synth.companions):
            x, y = c.x_px, c.y_px
            d = np.hypot(np.asarray(table["x"]) - x, np.asarray(table["y"]) - y) if len(table) else np.array([np.inf])
            k = int(np.argmin(d))
            found = "not found"
            fp_file = Path(args.output) / "predict" / "false_alarm_map.fits"
            if fp_file.is_file():  # the calibrated level where the companion is, candidate or not
                from sodinn.adi.io import read_fits

                fp_map = read_fits(fp_file)
                yy, xx = np.indices(fp_map.shape)
                near = fp_map[(np.hypot(xx - x, yy - y) <= 2) & np.isfinite(fp_map)]
                if near.size:
                    found = f"not within the budget (its level there: {near.min():.2g} false positives per frame)"
            if d[k] < 2:
                level = (f"{table['expected_fp'][k]:.2g} false positives per frame, {table['significance_sigma'][k]:.1f} "
                         "sigma" if "expected_fp" in table.colnames else f"peak P {table['peak_probability'][k]:.3f}")
                found = f"found as candidate #{k + 1} ({level})"
            pca = reductions["annular"].snr_at_truth[i] if "annular" in reductions else float("nan")
            print(f"  companion {COMPANION_NAMES[i]} at (x={x:.1f}, y={y:.1f}), annular PCA-ADI S/N {pca:.1f}: {found}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """``sodinn info``: describe files and folders (:func:`sodinn.pipeline.info.describe`).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        Exit status: 0, or 1 when a cube and its angles were given and do not match.

    Raises
    ------
    UserError
        After the descriptions, when an angles file rotates by less than 38.2 deg (a source 1.5 FWHM
        from the star moves less than one FWHM; angles in radians?), unless ``--allow-small-rotation``.
    """
    from sodinn.pipeline.info import describe

    described = []
    for path in map(Path, args.paths):
        info = describe(path, hdu=args.hdu, column=args.column)
        described.append(info)
        print(json.dumps(info) if args.json else info_text(info))
    cubes = [d for d in described if d.get("kind") == "cube"]
    angles = [d for d in described if d.get("kind") == "angles"]
    if cubes and len(angles) == 1:
        science = max(cubes, key=lambda d: d["shape"][-1])  # the others are smaller: cubes of PSF stamps?
        for d in cubes:
            if d is not science and d["shape"][-1] < science["shape"][-1]:
                print(f"{d['file']}: {d['shape'][0]} frames of {d['shape'][-1]} px, smaller than the cube's: a cube of "
                      "PSF stamps? read as the PSF, its stamps are averaged into one", file=sys.stderr if args.json else sys.stdout)
        n_frames, n_angles = science["shape"][0], angles[0]["n_values"]
        verdict = "consistent" if n_frames == n_angles else "MISMATCH: pass one angle per frame"
        print(f"sequence: {n_frames} frames and {n_angles} angles ({verdict})", file=sys.stderr if args.json else sys.stdout)
        if n_frames != n_angles:
            return 1
    small = [d for d in angles if d.get("rotation_note")]
    if small and not args.allow_small_rotation:
        msg = (f"{small[0]['file']}: {small[0]['rotation_note']}; pass the angles in degrees, or "
               "--allow-small-rotation if the rotation is right")
        raise UserError(msg)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """``sodinn convert``: write a sequence (a VIP ``.npz``, or FITS) as FITS (:meth:`ADISequence.to_fits`).

    The sequence is read as every command reads it (``--npz``, or ``--cube``/``--angles``/``--psf``,
    and ``--config``), checked, and written as ``cube.fits``, ``angles.fits`` and ``psf.fits`` in
    ``--output``, which the other commands read with ``--cube``, ``--angles`` and ``--psf``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        Exit status (0).

    Raises
    ------
    UserError
        If the output cannot be written, or holds those files and ``--overwrite`` is not given.
    """
    cfg, base = _load_config(args)
    out = _output_folder(Path(args.output))
    existing = [name for name in ("cube.fits", "angles.fits", "psf.fits") if (out / name).exists()]
    if existing and not args.overwrite:
        raise UserError(f"{out} already holds {', '.join(existing)}; pass --overwrite or choose another --output")
    seq, _ = _load_sequence(args, cfg, base)
    paths = seq.to_fits(out, overwrite=args.overwrite)
    scale = f", {seq.pixel_scale_arcsec:g} arcsec/px" if seq.pixel_scale_arcsec is not None else ""
    print(f"{seq.n_frames} frames of {seq.frame_size}x{seq.frame_size} px, FWHM {seq.fwhm_px:.2f} px{scale}: "
          f"{', '.join(str(p) for p in paths.values())}")
    flags = f"--cube {paths['cube']} --angles {paths['angles']} --psf {paths['psf']} --fwhm {seq.fwhm_px:.6g}"
    print(f"read them back with: {flags}" + (f" --pixel-scale {seq.pixel_scale_arcsec:g}" if scale else ""))
    return 0


def cmd_reduce(args: argparse.Namespace) -> int:
    """``sodinn reduce``: a classical reduction (:func:`sodinn.pipeline.reduce.write_reductions`).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        Exit status (0).
    """
    from sodinn.adi.baselines import get_baseline
    from sodinn.pipeline.reduce import write_reductions

    cfg, base = _load_config(args)
    table = _apply_flags(dict(cfg.get("reduce", {})), args, "reduce")
    output = table.pop("output", None)
    try:
        config = ReduceConfig.from_dict(table)
        get_baseline(config.method)
    except (TypeError, ValueError) as err:
        raise UserError(str(err)) from None
    out = _output_folder(_output_path(args.output, output, base, "reduce_output"), "reduce", config=args.config)
    seq, data = _load_sequence(args, cfg, base)
    _check_rotation(seq, data, ROTATION_RADIUS_FWHM * seq.fwhm_px,
                    f"{ROTATION_RADIUS_FWHM:g} FWHM, the centre of the S/N map's innermost annulus")
    baseline = get_baseline(config.method)
    options = {"delta_rot": config.delta_rot} if "delta_rot" in baseline.options else {}
    limit = baseline.ncomp_limit(seq.cube, seq.angles_deg, seq.fwhm_px, **options)
    if limit is not None and config.ncomp > limit[0]:
        fixes = [f"lower --ncomp (or [reduce] ncomp) to at most {limit[0]}"] if limit[0] >= 1 else []
        if options and "rotate" in limit[1]:
            fixes.append("lower --delta-rot (or [reduce] delta_rot; 0 uses every frame)")
        fix = " or ".join(fixes or ["use more frames"])
        msg = f"--ncomp {config.ncomp} is more than {baseline.title} can use on these data: {limit[1]}; {fix}"
        raise UserError(msg)
    effective = {"data": data, "reduce": {**config.to_dict(), "output": str(out)}}
    results = write_reductions(seq, [config.method], out, ncomp=config.ncomp, provenance={"config": effective},
                               settings=effective, options=options)
    r = results[config.method]
    print(f"{config.method}: S/N map peak {r.peak_snr:.2f} at (x={r.peak_xy[0]}, y={r.peak_xy[1]}); outputs in {out}")
    return 0


def cmd_samples(args: argparse.Namespace) -> int:
    """``sodinn samples``: labeled samples (:func:`sodinn.pipeline.samples.write_sample_file`).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        Exit status (0).
    """
    from sodinn.mlar.store import SampleFile
    from sodinn.pipeline.samples import write_sample_file

    cfg, base = _load_config(args)
    table = dict(cfg.get("samples", {}))
    out = _output_folder(_output_path(args.output, table.pop("output", None), base, "samples.h5"), "samples", kind="file",
                         config=args.config)
    config = SampleConfig.from_dict(_apply_flags(table, args, "samples"))  # bad settings fail here, before any work
    engine = _engine_settings(args, cfg)
    seq, data = _load_sequence(args, cfg, base)
    _check_rotation(seq, data, (config.r_in_fwhm + 0.5) * seq.fwhm_px,
                    "the centre of the innermost sample annulus, [samples] r_in_fwhm + 0.5 FWHM")
    path = write_sample_file(seq, config, out, data=data, resume=not args.no_resume, n_jobs=engine.n_workers,
                             scheduler=engine.scheduler, progress=not args.quiet)
    with SampleFile(path) as f:
        n_pos = int(f.labels.sum())
        print(f"{path}: {len(f)} samples ({n_pos} C+, {len(f) - n_pos} C-) of shape {f.sample_shape} "
              f"in {len(f.ks)} annuli, {path.stat().st_size / 2**20:.1f} MiB")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``sodinn train``: a model on a sample file (:func:`sodinn.pipeline.train.train_model`).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        Exit status (0).
    """
    from sodinn.learn.models import check_model_name
    from sodinn.pipeline.train import train_model

    cfg, base = _load_config(args)
    table = dict(cfg.get("train", {}))
    out = _output_folder(_output_path(args.output, table.pop("output", None), base, "model"), "train", config=args.config)
    try:
        samples_file = _input_path(args.samples_file, [table.pop("samples", None), cfg.get("samples", {}).get("output")],
                                   base, "sample file")
    except UserError:
        msg = "missing SAMPLES: pass the HDF5 file written by 'sodinn samples', or a --config whose [samples] table names it"
        raise UserError(msg) from None
    config = TrainConfig.from_dict(_apply_flags(table, args, "train"))
    check_model_name(config.model)
    if samples_file.is_dir():
        msg = f"{samples_file} is a folder; pass the sample file (.h5) written by 'sodinn samples'"
        raise UserError(msg)
    if not samples_file.is_file():
        msg = f"sample file not found: {samples_file}; make one with 'sodinn samples'"
        raise UserError(msg)
    result = train_model(samples_file, out, config, resume=not args.no_resume, progress=not args.quiet)
    m = result.metrics
    auc_all = "n/a" if m["auc"] is None else f"{m['auc']:.3f}"
    print(f"{config.model}: held-out accuracy {m['accuracy']:.3f}, ROC AUC {auc_all} on {m['n']} test samples "
          f"(confusion matrix {m['confusion_matrix']}); model in {out}")
    if "random_split" in m:
        print(f"a random (leaky) split would have claimed accuracy {m['random_split']['accuracy']:.3f}")
    for a, row in m["per_annulus"].items():
        auc = "n/a" if row["auc"] is None else f"{row['auc']:.3f}"
        print(f"  annulus {a}: accuracy {row['accuracy']:.3f}, AUC {auc} ({row['n']} samples)")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """``sodinn predict``: probability map and candidates (:func:`sodinn.pipeline.predict.predict_products`).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        Exit status (0).
    """
    from sodinn.learn.artifact import model_folder, read_metadata
    from sodinn.pipeline.predict import predict_products

    cfg, base = _load_config(args)
    settings = dict(cfg.get("predict", {}))
    try:
        model_dir = _input_path(args.model_dir, [settings.pop("model", None), cfg.get("train", {}).get("output")], base, "model")
    except UserError:
        msg = "missing MODEL: pass the folder written by 'sodinn train', or a --config with [predict] model or [train] output"
        raise UserError(msg) from None
    model_folder(model_dir)
    output = settings.pop("output", None)
    if args.fp_budget is not None and args.threshold is not None:
        msg = "give --fp-budget (a calibrated false-alarm budget) or --threshold (a probability), not both"
        raise UserError(msg)
    if args.threshold is not None:
        settings.pop("fp_budget", None)
    if args.fp_budget is not None:
        settings.pop("threshold", None)
    config = PredictConfig.from_dict(_apply_flags(settings, args, "predict"))
    out = _output_folder(_output_path(args.output, output, base, "predict_output"), "predict", config=args.config)
    seq, data = _load_sequence(args, cfg, base)
    r_in_fwhm = float(read_metadata(model_dir).get("sample_config", {}).get("r_in_fwhm", SampleConfig.r_in_fwhm))
    _check_rotation(seq, data, (r_in_fwhm + 0.5) * seq.fwhm_px, "the centre of the model's innermost annulus")
    from sodinn.adi.sky import PSFScaling

    data_config = DataConfig.from_dict(data)
    scaling = PSFScaling(psf_exposure_s=data_config.psf_exposure_s, cube_exposure_s=data_config.cube_exposure_s,
                         psf_nd_transmission=data_config.psf_nd_transmission, star_flux=data_config.star_flux)
    table = predict_products(seq, model_dir, out, config=config, data=data, psf_scaling=scaling,
                             progress=not args.quiet).candidates
    print(candidate_summary(table, out, max_rows=args.max_rows or None))
    return 0


def candidate_summary(table: Any, out: Path | str, *, max_rows: int | None = 20) -> str:
    """Return what ``sodinn predict`` prints: how many candidates there are, and each listed one in sky terms.

    Parameters
    ----------
    table : astropy.table.Table
        Candidates of :func:`sodinn.detect.candidates.measure_candidates` (``meta`` holds ``fp_budget``
        or ``threshold``).
    out : path-like
        The output folder.
    max_rows : int, optional
        Rows listed at most (None: all); the count always covers every candidate.

    Returns
    -------
    str
        Lines: the count and the criterion, the north offset and PSF scaling used, then one line per listed
        candidate: id, x, y (px), separation (arcsec, else px), PA (deg east of north), false-alarm level
        (expected false positives per frame and sigma) when calibrated, S/N, Δmag, peak P.
    """
    meta = table.meta
    listed = len(table) if max_rows is None else min(len(table), max_rows)
    shown = f"; the first {listed} listed (all in candidates.ecsv; --max-rows)" if len(table) > listed else ""
    if meta.get("fp_budget") is not None:
        criterion = (f"within the false-alarm budget of {meta['fp_budget']:g} expected false positive(s) per frame "
                     "(--fp-budget)")
    else:
        criterion = f"with P >= {meta.get('threshold', float('nan')):g} (uncalibrated)"
    lines = [f"{len(table)} candidate(s) {criterion}{shown}; outputs in {out} (candidates.ecsv, candidates.reg)"]
    lines.append(f"  PA east of north with north offset {meta.get('north_offset_deg', 0.0):g} deg added to the angles"
                 + ("" if meta.get("north_offset_deg") else " (none: set --north-offset for true PAs)")
                 + _star_text(meta))
    left_out = meta.get("calibration_sources_left_out_xy") or []
    if left_out:
        level = meta.get("calibration_source_fp")
        at = f" (<= {level:g} expected FP/frame)" if level is not None else ""
        lines.append(f"  the self-calibration took {len(left_out)} blob(s) for real sources{at} and left "
                     "them out of its null sample: " + ", ".join(f"x={x:.1f} y={y:.1f}" for x, y in left_out))
    for row in table[:listed]:
        sep = f"{row['sep_arcsec']:.3f}\"" if "sep_arcsec" in table.colnames else f"{row['sep_px']:.1f} px"
        snr = f"{row['snr']:5.1f}" if "snr" in table.colnames and np.isfinite(row["snr"]) else "  n/a"
        dmag = f"{row['delta_mag']:5.2f}" if "delta_mag" in table.colnames and np.isfinite(row["delta_mag"]) else "  n/a"
        level = (f"FP/frame={row['expected_fp']:.2g} ({row['significance_sigma']:.1f} sigma) "
                 if "expected_fp" in table.colnames else "")
        lines.append(f"  #{row['id']:<3d} x={row['x']:6.2f} y={row['y']:6.2f} sep={sep} PA={row['pa_deg']:5.1f} deg E of N "
                     f"{level}S/N={snr} dmag={dmag} peak P={row['peak_probability']:.3f}")
    return "\n".join(lines)


def _star_text(meta: Mapping[str, Any]) -> str:
    scaling = meta.get("psf_scaling") or {}
    if not scaling:
        return ""
    if scaling.get("star_flux") is not None:
        return f"; contrast to a star flux of {scaling['star_flux']:g} (--star-flux)"
    return (f"; contrast to the PSF's flux x {scaling.get('cube_exposure_s', 1):g} s / {scaling.get('psf_exposure_s', 1):g} s"
            f" / ND {scaling.get('psf_nd_transmission', 1):g}")


def cmd_roc(args: argparse.Namespace) -> int:
    """``sodinn roc``: ROC curves against the baselines (:func:`sodinn.pipeline.roc.roc_report`).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        Exit status (0).
    """
    from sodinn.evaluate.copies import check_methods
    from sodinn.pipeline.roc import roc_report

    if args.config_file and args.config:
        raise UserError("give the configuration once: either CONFIG or --config")
    args.config = args.config or args.config_file
    cfg, base = _load_config(args)
    table = dict(cfg.get("roc", {}))
    model_specs = args.model if args.model is not None else table.pop("models", [])
    table.pop("models", None)
    output = table.pop("output", None)
    models: dict[str, str] = {}
    for spec in ([model_specs] if isinstance(model_specs, str) else model_specs):
        name, _, path = str(spec).rpartition("=")
        resolved = Path(path) if args.model is not None else base / path
        name = name or resolved.name
        if name in models:
            raise UserError(f"two models are named {name!r}; name them with NAME=DIR")
        models[name] = str(resolved)
    config = RocConfig.from_dict(_apply_flags(table, args, "roc"))
    check_methods(models, config.baselines)  # before the data are read
    engine = _engine_settings(args, cfg)
    out = _output_folder(_output_path(args.output, output, base, "roc_output"), "roc", config=args.config)
    seq, data = _load_sequence(args, cfg, base)
    lo, hi = config.bands_lambda_d[0]
    _check_rotation(seq, data, (lo + hi) / 2 * (config.lambda_d_px or seq.fwhm_px),
                    "the centre of the innermost [roc] bands_lambda_d band")
    start = time.perf_counter()
    result = roc_report(seq, config, models, out, data=data, n_jobs=engine.n_workers, scheduler=engine.scheduler,
                        resume=not args.no_resume, progress=not args.quiet)
    print(result.summary)
    print(f"{len(result.injections)} copies in {time.perf_counter() - start:.0f} s; roc.csv, roc.png, summary.txt in {out}")
    return 0


def _models_from(args: argparse.Namespace, table: dict[str, Any], base: Path) -> dict[str, str]:
    """Return ``{name: folder}`` from ``--model [NAME=]DIR`` flags (relative to the working folder), else the table's ``models``."""
    specs = args.model if args.model is not None else table.get("models", [])
    models: dict[str, str] = {}
    for spec in ([specs] if isinstance(specs, str) else specs):
        name, _, path = str(spec).rpartition("=")
        resolved = Path(path) if args.model is not None else base / path
        name = name or resolved.name
        if name in models:
            raise UserError(f"two models are named {name!r}; name them with NAME=DIR")
        models[name] = str(resolved)
    return models


def _settings_error(err: Exception, section: str) -> UserError:
    """Name the flag (if any) and the configuration key of the setting a dataclass's message starts with."""
    text = str(err)
    for dest, field in FLAGS.get(section, {}).items():
        if text.startswith(field + " ") or text.startswith(field + "["):
            return UserError(f"{text} (set by --{dest.replace('_', '-')} or [{section}] {field})")
    return UserError(f"{text} (a setting of the [{section}] table)")


def cmd_limits(args: argparse.Namespace) -> int:
    """``sodinn limits``: contrast curves and detection limits (:func:`sodinn.pipeline.limits.limits_report`).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        Exit status (0).
    """
    from sodinn.evaluate.copies import check_methods
    from sodinn.pipeline.limits import limits_report

    cfg, base = _load_config(args)
    table = dict(cfg.get("limits", {}))
    models = _models_from(args, table, base)
    table.pop("models", None)
    output = table.pop("output", None)
    table = _apply_flags(table, args, "limits")
    if args.no_classical:
        table["classical"] = False
    try:
        config = LimitConfig.from_dict(table)
    except (TypeError, ValueError) as err:
        raise _settings_error(err, "limits") from None
    check_methods(models, config.baselines)  # before the data are read
    engine = _engine_settings(args, cfg)
    out = _output_folder(_output_path(args.output, output, base, "limits_output"), "limits", config=args.config)
    seq, data = _load_sequence(args, cfg, base)
    photometry = {k: data[k] for k in ("psf_exposure_s", "cube_exposure_s", "psf_nd_transmission", "star_flux")
                  if data.get(k) is not None and k not in table}  # the [data] settings (--psf-exposure, ...)
    if photometry:
        config = dataclasses.replace(config, **photometry)
    _check_rotation(seq, data, config.separations_lambda_d[0] * (config.lambda_d_px or seq.fwhm_px),
                    "the innermost [limits] separations_lambda_d")
    start = time.perf_counter()
    result = limits_report(seq, config, models, out, data=data, n_jobs=engine.n_workers, scheduler=engine.scheduler,
                           progress=not args.quiet)
    rows = result.table()
    how = "given" if config.star_flux is not None else f"PSF in 1 FWHM x {config.star_flux_scale:g}"
    print(f"star flux {result.star_flux:.6g} ({how}); delta mag limits:")
    print(f"{'curve':>28s} " + " ".join(f"{s:>7.3f}\"" for s in result.detection.radii_px * result.pixel_scale_arcsec))
    for m in result.detection.methods:
        sel = rows[(rows["curve"] == "tpr") & (rows["method"] == m)]
        print(f"{m + ' ' + format(100 * config.tpr_target, 'g') + '% TPR':>28s} "
              + " ".join(f"{x:8.2f}" for x in np.asarray(sel["delta_mag"])))
    if result.classical is not None:
        c = rows[rows["curve"] == "classical"]
        sep, dmag = np.asarray(c["sep_px"]), np.asarray(c["delta_mag"])
        interp = np.interp(result.detection.radii_px, sep, dmag, left=np.nan, right=np.nan)
        print(f"{f'annular-{config.classical_ncomp} {config.sigma:g}-sigma':>28s} " + " ".join(f"{x:8.2f}" for x in interp))
    print(f"done in {time.perf_counter() - start:.0f} s; limits.ecsv, tpr.ecsv, limits.png, config.toml in {out}")
    return 0


def cmd_survey(args: argparse.Namespace) -> int:
    """``sodinn survey``: samples, training and prediction for a list of targets (:mod:`sodinn.pipeline.survey`).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        Exit status: 0, or 1 when a target failed.
    """
    import dataclasses

    from sodinn.pipeline.survey import format_summary, load_survey, run_survey

    survey = load_survey(args.survey_config)
    if args.output is not None:
        survey = dataclasses.replace(survey, output=Path(args.output).resolve())
    _output_folder(survey.output, "survey")
    table = run_survey(survey, scheduler=args.scheduler, n_workers=args.jobs, restart=args.restart,
                       progress=not args.quiet)
    print(format_summary(table))
    print(f"summary table: {survey.output / 'summary.ecsv'}")
    return 1 if any(e != "-" for e in table["error"]) else 0
