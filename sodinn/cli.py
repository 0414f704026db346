"""The ``sodinn`` command line.

User errors (bad files, bad values, a bad configuration) end with a one-line message on stderr and
exit status 2; no traceback. ``--verbose`` shows the traceback of unexpected errors.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("sodinn")

_METHODS = ("annular", "pca", "median")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (it may be replaced, e.g. in tests)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class UserError(Exception):
    """An error the user can fix (reported in one line, exit status 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sodinn`` command."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO, handlers=[handler], force=True)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # the reader of stdout went away (`sodinn info ... | head`): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141
    except (UserError, ValueError, TypeError, OSError, KeyError) as err:
        if args.verbose:
            raise
        message = (str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)) or type(err).__name__
        print(f"sodinn {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sodinn {args.command}: interrupted", file=sys.stderr)
        return 130


def _build_parser() -> argparse.ArgumentParser:
    from sodinn import __version__

    parser = argparse.ArgumentParser(
        prog="sodinn",
        description="Supervised deep learning for exoplanet detection in ADI sequences (SODINN).",
        epilog="Run 'sodinn COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"sodinn {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    common.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo", parents=[common], help="run the pipeline on built-in synthetic data",
        description="Make a synthetic ADI sequence with companions, reduce it with PCA-ADI and write the "
        "S/N maps (FITS and PNG) into OUTPUT.",
    )
    demo.add_argument("--output", "-o", default="demo_output", help="output folder (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the synthetic data (default: %(default)s)")
    demo.add_argument("--no-train", action="store_true",
                      help="stop after the PCA-ADI S/N maps (skip samples, training and prediction)")
    demo.set_defaults(func=_cmd_demo)

    info = sub.add_parser(
        "info", parents=[common], help="describe FITS files, a sample file or a model folder",
        description="Describe each PATH: a FITS file (cube, angles or PSF: shape, values, field rotation, fitted "
        "FWHM), a sample file written by 'sodinn samples' (samples per class and annulus, shape, ranks, flux ranges, "
        "seed, source files and checksums) or a model folder written by 'sodinn train' (model, P, K, FWHM and pixel "
        "scale of the training data, S/N range, held-out metrics, training set, versions). The kind is detected "
        "from the file. Given a cube and its angles, also checks that they match.",
    )
    info.add_argument("paths", nargs="+", metavar="PATH", help="FITS file, sample file (.h5) or model folder")
    info.add_argument("--json", action="store_true", help="print one JSON object per PATH (for scripts)")
    info.set_defaults(func=_cmd_info)

    reduce = sub.add_parser(
        "reduce", parents=[common], help="classical reduction (PCA-ADI) and S/N map of an ADI sequence",
        description="Reduce an ADI sequence with annular PCA-ADI, full-frame PCA-ADI or median-ADI and write the "
        "final frame, its S/N map (FITS) and a figure. Inputs come from --config (TOML, [data] and [reduce] "
        "tables) and/or flags; flags win.",
    )
    _add_data_options(reduce)
    reduce.add_argument("--method", choices=_METHODS, help="reduction (default: annular)")
    reduce.add_argument("--ncomp", type=int, help="principal components (default: 10)")
    reduce.add_argument("--output", "-o", help="output folder (default: reduce_output)")
    reduce.set_defaults(func=_cmd_reduce)

    samples = sub.add_parser(
        "samples", parents=[common], help="generate labeled MLAR samples (HDF5) from an ADI sequence",
        description="Generate balanced C+/C- samples (PCA residual patches at K ranks) for every 1-FWHM annulus "
        "and write them to an HDF5 file. Settings come from the [samples] table of --config and the flags. "
        "An interrupted run resumes where it stopped.",
    )
    _add_data_options(samples)
    samples.add_argument("--output", "-o", help="HDF5 file to write (default: samples.h5)")
    samples.add_argument("--patch", type=int, help="patch size P, odd (default 11)")
    samples.add_argument("--ranks", type=int, help="number of PCA ranks K (default 20)")
    samples.add_argument("--per-annulus", type=int, help="samples of each class per annulus (default: one per pixel)")
    samples.add_argument("--mask", type=float, nargs=2, action="append", metavar=("X", "Y"),
                         help="a known source to keep out of the samples (repeatable)")
    samples.add_argument("--seed", type=int, help="random seed (default 0)")
    samples.add_argument("--jobs", "-j", type=int, help="worker processes (default: all cores)")
    samples.add_argument("--scheduler", metavar="ADDRESS",
                         help="run the annuli on a Dask cluster (tcp://host:port), or 'synchronous' in this process "
                         "(default: [engine] scheduler, else the local cores)")
    samples.add_argument("--no-resume", action="store_true", help="start afresh instead of resuming")
    samples.set_defaults(func=_cmd_samples)

    train = sub.add_parser(
        "train", parents=[common], help="train a classifier on a sample file",
        description="Train a model on an HDF5 sample file (split by group into train/validation/test), save it "
        "with everything prediction needs, and print the held-out metrics. Settings come from the [train] table "
        "of --config and the flags; the effective configuration is saved as config.toml in the model folder. "
        "An interrupted training resumes from its last epoch.",
    )
    train.add_argument("samples_file", nargs="?", metavar="SAMPLES",
                       help="HDF5 file written by 'sodinn samples' (default: [train] samples, else the [samples] "
                       "output of --config)")
    train.add_argument("--config", "-c", help="TOML configuration with a [train] table (see configs/); flags override it")
    train.add_argument("--output", "-o", help="model folder (default: model)")
    train.add_argument("--model", "-m", help="sodinn (default), sodinn-v2, conv3d or sodirf")
    train.add_argument("--epochs", type=int, help="maximum epochs (default 20)")
    train.add_argument("--batch-size", type=int, help="batch size (default 128)")
    train.add_argument("--seed", type=int, help="random seed (default 0)")
    train.add_argument("--random-split", action="store_true",
                       help="also train on a random sample-level split and report what it would claim")
    train.add_argument("--no-resume", action="store_true", help="start afresh instead of resuming")
    train.set_defaults(func=_cmd_train)

    predict = sub.add_parser(
        "predict", parents=[common], help="probability map, detection map and candidates of a sequence",
        description="Apply a trained model to every pixel of every annulus of an ADI sequence: writes the "
        "probability map and the binary detection map (FITS), the candidates (ECSV) and a figure next to the "
        "annular PCA-ADI S/N map. Settings come from the [data] and [predict] tables of --config and the flags; "
        "the effective configuration is saved as config.toml next to the outputs.",
    )
    predict.add_argument("model_dir", nargs="?", metavar="MODEL",
                         help="model folder written by 'sodinn train' (default: [predict] model, else the [train] "
                         "output of --config)")
    _add_data_options(predict)
    predict.add_argument("--threshold", type=float, help="probability threshold in (0, 1) (default: 0.9)")
    predict.add_argument("--output", "-o", help="output folder (default: predict_output)")
    predict.set_defaults(func=_cmd_predict)

    roc = sub.add_parser(
        "roc", parents=[common], help="ROC curves of trained models against median-ADI and PCA-ADI",
        description="Inject one fake companion into each of many copies of a cube (per separation band), reduce every "
        "copy with the trained models and the PCA-ADI baselines, score the blobs of every map at every threshold "
        "(Exoplanet Imaging Data Challenge rule) and write roc.csv, roc.png and summary.txt. Settings come from the "
        "[roc] table of the configuration and the flags. An interrupted run resumes from the copies it finished.",
    )
    roc.add_argument("config_file", nargs="?", metavar="CONFIG", help="TOML configuration with [data] and [roc] tables")
    _add_data_options(roc)
    roc.add_argument("--model", "-m", action="append", metavar="[NAME=]DIR",
                     help="a model folder written by 'sodinn train' (repeatable; default: [roc] models)")
    roc.add_argument("--copies", type=int, help="injected copies per separation band (default 100)")
    roc.add_argument("--seed", type=int, help="random seed of the injections (default 0)")
    roc.add_argument("--jobs", "-j", type=int, help="worker processes (default: all cores)")
    roc.add_argument("--scheduler", help="Dask scheduler address (tcp://host:port) to run the copies on (default: local processes)")
    roc.add_argument("--output", "-o", help="output folder (default: roc_output)")
    roc.add_argument("--no-resume", action="store_true", help="recompute every copy instead of reusing the cache")
    roc.set_defaults(func=_cmd_roc)

    survey = sub.add_parser(
        "survey", parents=[common], help="samples, training and prediction for a list of targets (resumable)",
        description="Run samples -> train -> predict for every target of a survey configuration (TOML: [survey], "
        "[engine], shared [samples] and [train] tables, one [[targets]] table per target with its data or a "
        "synthetic spec and its known sources; see configs/survey_synthetic.toml), one output folder per target, "
        "and print a summary table. A rerun skips the finished steps and resumes an interrupted one.",
    )
    survey.add_argument("survey_config", metavar="CONFIG", help="survey configuration (TOML)")
    survey.add_argument("--output", "-o", help="output folder (default: [survey] output, else survey_output)")
    survey.add_argument("--scheduler", metavar="ADDRESS",
                        help="where the targets run: a Dask cluster (tcp://host:port), 'synchronous' (one after the "
                        "other in this process) or 'processes' (default: [engine] scheduler, else the local cores)")
    survey.add_argument("--jobs", "-j", type=int, help="targets at once on the local cores (default: all cores)")
    survey.add_argument("--restart", action="store_true", help="redo every step instead of resuming")
    survey.set_defaults(func=_cmd_survey)
    return parser


# ---------------------------------------------------------------- demo


def _cmd_demo(args: argparse.Namespace) -> int:
    from sodinn.datasets import make_adi_sequence
    from sodinn.io import write_fits
    from sodinn.sequence import ADISequence

    out = Path(args.output)
    t0 = time.perf_counter()
    steps = 3 if args.no_train else 5
    logger.info("1/%d making a synthetic ADI sequence (seed %d)", steps, args.seed)
    synth = make_adi_sequence(
        n_frames=40, size_px=63, fwhm_px=4.0, field_rotation_deg=60.0,
        companions=[(12.0, 50.0, 1500.0), (20.0, 200.0, 250.0)], seed=args.seed,
    )
    data = out / "data"
    provenance = {"generator": "sodinn.datasets.make_adi_sequence", "seed": args.seed, "config": synth.config}
    write_fits(data / "cube.fits", synth.cube.astype(np.float32), provenance=provenance)
    write_fits(data / "angles.fits", synth.angles_deg, provenance=provenance)
    write_fits(data / "psf.fits", synth.psf, provenance=provenance)
    seq = ADISequence.from_fits(
        data / "cube.fits", data / "angles.fits", data / "psf.fits",
        fwhm_px=synth.fwhm_px, pixel_scale_arcsec=synth.pixel_scale_arcsec,
    )
    truth = [(c.x_px, c.y_px) for c in synth.companions]
    logger.info("   %d frames of %dx%d px, %.0f deg of field rotation, FWHM %.1f px; companions at %s",
                seq.n_frames, seq.frame_size, seq.frame_size, seq.field_rotation_deg, seq.fwhm_px,
                ", ".join(f"(x={x:.1f}, y={y:.1f})" for x, y in truth))
    logger.info("2/%d reducing with annular and full-frame PCA-ADI, S/N maps", steps)
    results = _reduce(seq, ["annular", "pca"], ncomp=5, out=out, extra_provenance={"data": str(data)}, truth=truth)
    table = None if args.no_train else _demo_learn(seq, truth, out, quiet=args.quiet)
    logger.info("%d/%d done in %.1f s; outputs in %s", steps, steps, time.perf_counter() - t0, out)
    print(f"{'companion':>10s} {'x':>6s} {'y':>6s} {'flux':>7s} " + " ".join(f"{'S/N ' + m:>12s}" for m in results))
    for i, c in enumerate(synth.companions):
        snrs = " ".join(f"{results[m]['snr_at_truth'][i]:12.2f}" for m in results)
        print(f"{i + 1:10d} {c.x_px:6.1f} {c.y_px:6.1f} {c.flux:7.1f} {snrs}")
    for m, r in results.items():
        print(f"{m:>10s}: S/N map peak {r['peak_snr']:.2f} at (x={r['peak_xy'][0]}, y={r['peak_xy'][1]}); "
              f"files: {r['frame_file'].name}, {r['snr_file'].name}, {r['figure_file'].name}")
    if table is not None:
        print(f"SODINN: {len(table)} candidate(s) with P >= 0.9 (files: predict/candidates.ecsv, predict/detection.png)")
        for i, (x, y) in enumerate(truth):
            d = np.hypot(np.asarray(table["x"]) - x, np.asarray(table["y"]) - y) if len(table) else np.array([np.inf])
            k = int(np.argmin(d))
            found = f"found as candidate #{k + 1} (peak P {table['peak_probability'][k]:.3f})" if d[k] < 2 else "not found"
            print(f"  companion {i + 1} at (x={x:.1f}, y={y:.1f}): {found}")
    return 0


def _demo_learn(seq: Any, truth: Sequence[tuple[float, float]], out: Path, *, quiet: bool) -> Any:
    """Demo steps 3-5: labeled samples (true companions masked), a small SODINN model, its detections."""
    _import_keras_quietly()
    from sodinn.config import SampleConfig, TrainConfig
    from sodinn.store import generate_sample_file
    from sodinn.training import train

    logger.info("3/5 labeled samples (K=10 ranks, 9x9 px patches, the true companions masked)")
    config = SampleConfig(patch_px=9, n_ranks=10, samples_per_annulus=100, known_sources_xy=tuple(truth), seed=0)
    samples = generate_sample_file(seq, config, out / "samples.h5", resume=False, progress=not quiet)
    logger.info("4/5 training the SODINN ConvLSTM (8 epochs at most)")
    result = train(samples, TrainConfig(model="sodinn", epochs=8, batch_size=64, patience=3), out / "model",
                   resume=False, progress=not quiet)
    logger.info("   held-out accuracy %.3f, ROC AUC %.3f", result.metrics["accuracy"], result.metrics["auc"] or float("nan"))
    logger.info("5/5 probability map and candidates")
    predict_args = argparse.Namespace(
        model_dir=str(out / "model"), config=None, cube=str(out / "data" / "cube.fits"),
        angles=str(out / "data" / "angles.fits"), psf=str(out / "data" / "psf.fits"), fwhm=seq.fwhm_px,
        pixel_scale=seq.pixel_scale_arcsec, threshold=0.9, output=str(out / "predict"), quiet=True,
    )
    _predict(predict_args, echo=False)
    from astropy.table import Table

    return Table.read(out / "predict" / "candidates.ecsv")


# ---------------------------------------------------------------- info

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")


def _cmd_info(args: argparse.Namespace) -> int:
    described = []
    for path in map(Path, args.paths):
        kind = _info_kind(path)
        if kind == "model":
            info = _model_info(path if path.is_dir() else path.parent)
        elif kind == "samples":
            info = _samples_info(path)
        elif kind == "parts":
            info = _parts_info(path)
        else:
            info = _fits_info(path)
        described.append(info)
        print(json.dumps(info) if args.json else _info_text(info))
    cubes = [d for d in described if d.get("kind") == "cube"]
    angles = [d for d in described if d.get("kind") == "angles"]
    if not args.json and len(cubes) == 1 and len(angles) == 1:
        n_frames, n_angles = cubes[0]["shape"][0], angles[0]["n_values"]
        verdict = "consistent" if n_frames == n_angles else "MISMATCH: pass one angle per frame"
        print(f"sequence: {n_frames} frames and {n_angles} angles ({verdict})")
    return 0


def _info_kind(path: Path) -> str:
    """What ``sodinn info`` is looking at: "fits", "samples", "model" or "parts" (an unfinished sample run)."""
    if not path.exists():
        msg = f"no such file or folder: {path}"
        raise FileNotFoundError(msg)
    if path.is_dir():
        if (path / "model.json").is_file():
            return "model"
        if (path / "state.json").is_file() and path.name.endswith(".parts"):
            return "parts"
        msg = (f"{path} is a folder without model.json; sodinn info describes FITS files, sample files (.h5) "
               "and model folders written by 'sodinn train'")
        raise UserError(msg)
    if path.name == "model.json" or (path.suffix in (".keras", ".joblib") and (path.parent / "model.json").is_file()):
        return "model"
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == _HDF5_SIGNATURE or path.suffix in (".h5", ".hdf5"):
        return "samples"
    if head.startswith(b"SIMPLE") or path.name.lower().endswith(_FITS_SUFFIXES):
        return "fits"
    msg = (f"cannot tell what {path} is: sodinn info describes FITS files, sample files (.h5, from "
           "'sodinn samples') and model folders (from 'sodinn train')")
    raise UserError(msg)


def _fits_info(path: Path) -> dict[str, Any]:
    from sodinn.io import read_fits
    from sodinn.psf import fit_fwhm

    data = read_fits(path)
    finite = np.isfinite(data)
    info: dict[str, Any] = {
        "file": str(path),
        "kind": "image",
        "shape": list(data.shape),
        "min": float(np.nanmin(data)) if finite.any() else None,
        "max": float(np.nanmax(data)) if finite.any() else None,
        "non_finite": int(data.size - finite.sum()),
    }
    squeezed = data.squeeze()
    if squeezed.ndim == 1:
        info["kind"] = "angles"
        info["n_values"] = int(squeezed.size)
        info["field_rotation_deg"] = float(np.ptp(squeezed))
    elif data.ndim == 2:
        info["kind"] = "psf/frame"
        try:
            info["fwhm_px"] = round(fit_fwhm(data), 4)
        except ValueError as err:
            info["fwhm_px"] = f"not fitted: {err}"
    elif data.ndim == 3:
        info["kind"] = "cube"
    return info


def _samples_info(path: Path) -> dict[str, Any]:
    from sodinn.store import SampleFile

    with SampleFile(path) as f:
        config = f.config
        sequence = f.provenance.get("sequence", {})
        annuli = []
        for a in range(len(f.r_in_px)):
            here = f.annulus == a
            annuli.append({
                "r_px": [round(float(f.r_in_px[a]), 2), round(float(f.r_out_px[a]), 2)],
                "c_plus": int((f.labels[here] == 1).sum()), "c_minus": int((f.labels[here] == 0).sum()),
                "ranks": [int(k) for k in f.ks[a]],
                "flux_range": [float(x) for x in f.flux_range[a]],
            })
        n_pos = int(f.labels.sum())
        return {
            "file": str(path), "kind": "samples", "n_samples": len(f), "c_plus": n_pos, "c_minus": len(f) - n_pos,
            "augmented": int(f.augmented.sum()), "sample_shape": list(f.sample_shape), "annuli": annuli,
            "seed": config.seed, "snr_range": list(config.snr_range), "k_policy": config.k_policy,
            "known_sources_xy": [list(xy) for xy in config.known_sources_xy],
            "fwhm_px": sequence.get("fwhm_px"), "pixel_scale_arcsec": sequence.get("pixel_scale_arcsec"),
            "sources": {k: {"file": sequence.get(f"{k}_file"), "sha256": sequence.get(f"{k}_sha256")}
                        for k in ("cube", "angles", "psf") if f"{k}_file" in sequence},
            "config_sha256": f.provenance.get("config_sha256"), "sodinn_version": f.provenance.get("sodinn_version"),
        }


def _model_info(folder: Path) -> dict[str, Any]:
    """The model folder's metadata (model.json; Keras is not loaded) and its training history."""
    try:
        meta = json.loads((folder / "model.json").read_text())
    except json.JSONDecodeError as err:
        msg = f"{folder / 'model.json'} is not valid JSON ({err}); was the training interrupted?"
        raise UserError(msg) from err
    from sodinn.training import FORMAT

    if meta.get("format") != FORMAT:
        msg = f"{folder / 'model.json'} is not a sodinn model (format {meta.get('format')!r}, expected {FORMAT!r})"
        raise UserError(msg)
    metrics = meta.get("metrics", {})
    geometry = meta.get("training_geometry", {})
    info: dict[str, Any] = {
        "folder": str(folder), "kind": "model", "model": meta.get("model"),
        "weights": meta.get("weights"), "weights_present": (folder / str(meta.get("weights"))).is_file(),
        "patch_px": meta.get("patch_px"), "n_ranks": meta.get("n_ranks"), "k_policy": meta.get("k_policy"),
        "fwhm_px": meta.get("fwhm_px"), "pixel_scale_arcsec": meta.get("pixel_scale_arcsec"),
        "snr_range": meta.get("snr_range"),
        "annuli_px": [[round(a, 2), round(b, 2)] for a, b in zip(geometry.get("r_in_px", []), geometry.get("r_out_px", []))],
        "known_sources_xy": meta.get("sample_config", {}).get("known_sources_xy"),
        "test_metrics": {k: metrics.get(k) for k in ("n", "accuracy", "auc", "confusion_matrix")},
        "split": metrics.get("split"),
        "per_annulus": metrics.get("per_annulus"),
        "train_config": meta.get("train_config"),
        "training_set": meta.get("training_set"),
        "versions": meta.get("versions"),
    }
    history = folder / "history.csv"
    if history.is_file():
        rows = [line.split(",") for line in history.read_text().strip().splitlines()]
        if len(rows) > 1 and "val_loss" in rows[0]:
            col = rows[0].index("val_loss")
            losses = [float(r[col]) for r in rows[1:]]
            info["epochs_run"] = len(losses)
            info["best_epoch"] = int(np.argmin(losses)) + 1
    return info


def _parts_info(folder: Path) -> dict[str, Any]:
    state = json.loads((folder / "state.json").read_text())
    return {
        "folder": str(folder), "kind": "unfinished samples",
        "annuli_done": len(list(folder.glob("annulus_*.npz"))), "annuli": len(state["oracle"]["flux_range"]),
    }


def _info_text(info: dict[str, Any]) -> str:
    """The human-readable form of an ``info`` record."""
    kind = info["kind"]
    if kind == "samples":
        return _samples_text(info)
    if kind == "model":
        return _model_text(info)
    if kind == "unfinished samples":
        return (f"{info['folder']}: an interrupted 'sodinn samples' run ({info['annuli_done']} of {info['annuli']} "
                "annuli done); run the same command again to resume")
    values = "no finite values" if info["min"] is None else f"values {info['min']:.4g} to {info['max']:.4g}"
    bad = f", {info['non_finite']} non-finite" if info["non_finite"] else ""
    shape = "x".join(str(s) for s in info["shape"])
    if kind == "angles":
        what = f"{info['n_values']} angles, {info['field_rotation_deg']:.2f} deg of field rotation"
    elif kind == "cube":
        what = f"cube of {info['shape'][0]} frames of {info['shape'][1]}x{info['shape'][2]} px"
    elif kind == "psf/frame":
        fwhm = info["fwhm_px"]
        what = f"PSF/frame of {shape} px, FWHM " + (f"{fwhm:.2f} px (2-D Gaussian fit)" if isinstance(fwhm, float) else fwhm)
    else:
        what = f"image of shape {shape}"
    return f"{info['file']}: {what}; {values}{bad}"


def _samples_text(info: dict[str, Any]) -> str:
    k, p, _ = info["sample_shape"]
    snr = "-".join(f"{s:g}" for s in info["snr_range"])
    lines = [
        f"{info['file']}: {info['n_samples']} labeled samples ({info['c_plus']} C+, {info['c_minus']} C-"
        + (f", {info['augmented']} augmented" if info["augmented"] else "")
        + f") of shape (K, P, P) = ({k}, {p}, {p}) in {len(info['annuli'])} annuli",
        f"  {'annulus':>7s} {'r [px]':>13s} {'C+':>5s} {'C-':>5s}  {'flux range (S/N ' + snr + ')':>24s}  ranks ({info['k_policy']})",
    ]
    for i, a in enumerate(info["annuli"]):
        r = f"{a['r_px'][0]:.1f}-{a['r_px'][1]:.1f}"
        flux = f"{a['flux_range'][0]:.4g}-{a['flux_range'][1]:.4g}"
        lines.append(f"  {i:7d} {r:>13s} {a['c_plus']:5d} {a['c_minus']:5d}  {flux:>24s}  {','.join(map(str, a['ranks']))}")
    masked = ", ".join(f"({x:g}, {y:g})" for x, y in info["known_sources_xy"]) or "none"
    scale = f", pixel scale {info['pixel_scale_arcsec']}\"/px" if info["pixel_scale_arcsec"] else ""
    fwhm = f"FWHM {info['fwhm_px']:.2f} px" if info["fwhm_px"] else "FWHM unknown"
    lines.append(f"  seed {info['seed']}; known sources masked: {masked}; {fwhm}{scale}")
    for name, src in info["sources"].items():
        lines.append(f"  {name}: {src['file']} (sha256 {src['sha256']})")
    lines.append(f"  made by sodinn {info['sodinn_version']}; configuration sha256 {info['config_sha256']}")
    return "\n".join(lines)


def _model_text(info: dict[str, Any]) -> str:
    m = info["test_metrics"]
    auc = "n/a" if m.get("auc") is None else f"{m['auc']:.3f}"
    weights = info["weights"] if info["weights_present"] else f"{info['weights']} MISSING"
    lines = [
        f"{info['folder']}: '{info['model']}' model ({weights}) for samples of K={info['n_ranks']} ranks "
        f"({info['k_policy']}) and P={info['patch_px']} px patches",
    ]
    fwhm = f"{info['fwhm_px']:.2f} px" if info["fwhm_px"] else "unknown"
    scale = f"{info['pixel_scale_arcsec']}\"/px" if info["pixel_scale_arcsec"] else "unknown"
    snr = "-".join(f"{s:g}" for s in info["snr_range"] or ())
    lines.append(f"  training data: FWHM {fwhm}, pixel scale {scale}, companions injected at S/N {snr}, "
                 f"{len(info['annuli_px'])} annuli from {info['annuli_px'][0][0]:.1f} to {info['annuli_px'][-1][1]:.1f} px"
                 if info["annuli_px"] else f"  training data: FWHM {fwhm}, pixel scale {scale}, S/N {snr}")
    if m.get("accuracy") is not None:
        split = info["split"] or {}
        parts = "/".join(str(split.get(k, "?")) for k in ("train", "val", "test"))
        lines.append(f"  held-out test: accuracy {m['accuracy']:.3f}, ROC AUC {auc} on {m['n']} samples "
                     f"(split train/val/test {parts} by group); confusion matrix {m['confusion_matrix']}")
    for a, row in (info["per_annulus"] or {}).items():
        a_auc = "n/a" if row.get("auc") is None else f"{row['auc']:.3f}"
        lines.append(f"    annulus {a}: accuracy {row['accuracy']:.3f}, AUC {a_auc} ({row['n']} samples)")
    tc = info["train_config"] or {}
    if "epochs_run" in info:
        lines.append(f"  trained {info['epochs_run']} epoch(s) of at most {tc.get('epochs')}, best validation loss at "
                     f"epoch {info['best_epoch']}; batch {tc.get('batch_size')}, seed {tc.get('seed')}")
    ts = info["training_set"] or {}
    lines.append(f"  training set: {ts.get('file')} (sha256 {ts.get('sha256')})")
    versions = ", ".join(f"{k} {v}" for k, v in (info["versions"] or {}).items())
    lines.append(f"  versions: {versions}")
    return "\n".join(lines)


# ---------------------------------------------------------------- reduce


_SECTIONS = ("data", "reduce", "samples", "train", "predict", "roc", "engine")


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="TOML configuration (see configs/); flags override it")
    parser.add_argument("--cube", help="FITS cube (n_frames, N, N)")
    parser.add_argument("--angles", help="FITS parallactic angles, degrees")
    parser.add_argument("--psf", help="FITS off-axis PSF")
    parser.add_argument("--fwhm", type=float, help="PSF FWHM in px (default: 2-D Gaussian fit of the PSF)")
    parser.add_argument("--pixel-scale", type=float, help="arcsec per pixel")


def _load_config(args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    """The TOML configuration (empty without --config) and the folder its relative paths start from."""
    from sodinn.config import load_toml

    if not args.config:
        return {}, Path.cwd()
    if Path(args.config).is_dir():
        msg = f"--config {args.config} is a folder; pass a TOML file such as configs/naco_betapic.toml"
        raise UserError(msg)
    cfg = load_toml(args.config, sections=_SECTIONS)
    _check_tables(cfg, args.config)
    return cfg, Path(args.config).resolve().parent


def _table_keys() -> dict[str, set[str]]:
    """The keys each table of a configuration may hold (the [roc] table is checked by its command)."""
    import dataclasses

    from sodinn.config import SampleConfig, TrainConfig

    return {
        "data": {"cube", "angles", "psf", "fwhm_px", "pixel_scale_arcsec"},
        "reduce": {"method", "ncomp", "output"},
        "samples": {f.name for f in dataclasses.fields(SampleConfig)} | {"output"},
        "train": {f.name for f in dataclasses.fields(TrainConfig)} | {"samples", "output"},
        "predict": {"model", "threshold", "output"},
        "engine": {"scheduler", "n_workers"},
    }


def _check_tables(cfg: dict[str, Any], path: str) -> None:
    """Refuse a table that is not a table and keys no command reads (a typo would be silently ignored)."""
    for section, keys in _table_keys().items():
        table = cfg.get(section, {})
        if not isinstance(table, dict):
            msg = f"{path}: {section} must be a table ([{section}] followed by key = value lines)"
            raise UserError(msg)
        unknown = sorted(set(table) - keys)
        if unknown:
            msg = f"{path}: unknown key(s) in [{section}]: {', '.join(unknown)}; known: {', '.join(sorted(keys))}"
            raise UserError(msg)


def _load_sequence(args: argparse.Namespace, cfg: dict[str, Any], base: Path) -> tuple[Any, dict[str, Any]]:
    """The ADISequence named by --config [data] and the flags, and the effective [data] table."""
    from sodinn.sequence import ADISequence

    data = dict(cfg.get("data", {}))
    for key, value in (("cube", args.cube), ("angles", args.angles), ("psf", args.psf)):
        if value is not None:
            data[key] = str(Path(value).resolve())
    if args.fwhm is not None:
        data["fwhm_px"] = args.fwhm
    if args.pixel_scale is not None:
        data["pixel_scale_arcsec"] = args.pixel_scale
    missing = [k for k in ("cube", "angles", "psf") if k not in data]
    if missing:
        msg = f"missing input(s): {', '.join(missing)}; pass --{missing[0]} FILE or a --config with a [data] table"
        raise UserError(msg)
    for key in ("cube", "angles", "psf"):
        if not isinstance(data[key], str):
            msg = f"[data] {key} must be a file name in quotes; got {data[key]!r}"
            raise UserError(msg)
    paths = {k: (base / data[k]).resolve() for k in ("cube", "angles", "psf")}
    for key, path in paths.items():
        if path.is_dir():
            msg = f"{key} {path} is a folder; pass the FITS file of the {key}"
            raise UserError(msg)
    seq = ADISequence.from_fits(
        paths["cube"], paths["angles"], paths["psf"],
        fwhm_px=data.get("fwhm_px"), pixel_scale_arcsec=data.get("pixel_scale_arcsec"),
    )
    logger.info("%s: %d frames of %dx%d px, FWHM %.2f px", paths["cube"].name, seq.n_frames, seq.frame_size,
                seq.frame_size, seq.fwhm_px)
    return seq, {**data, **{k: str(v) for k, v in paths.items()}}


def _output_folder(path: Path) -> Path:
    """Refuse an output folder that is an existing file (before any work is done)."""
    if path.exists() and not path.is_dir():
        msg = f"output {path} is a file; pass a folder (it is created if needed)"
        raise UserError(msg)
    return path


def _input_path(flag: str | None, cfg_values: Sequence[str | None], base: Path, what: str) -> Path:
    """The first of a flag (relative to the working folder) and configuration values (relative to the config)."""
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


def _import_keras_quietly() -> None:
    """Import Keras (TensorFlow) with its C++ start-up notices (CUDA probing, oneDNN) kept off the terminal.

    TensorFlow writes them to file descriptor 2 before ``TF_CPP_MIN_LOG_LEVEL`` takes effect; they
    are shown only if the import fails.
    """
    import os
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import keras  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _output_path(value: str | None, cfg_value: str | None, base: Path, default: str) -> Path:
    """A flag is relative to the working folder; a configuration's value to the configuration's folder."""
    if value is not None:
        return Path(value)
    if cfg_value is not None:
        return (base / cfg_value).resolve()
    return Path(default)


def _cmd_reduce(args: argparse.Namespace) -> int:
    from sodinn.config import dump_toml

    cfg, base = _load_config(args)
    red = dict(cfg.get("reduce", {}))
    for key, value in (("method", args.method), ("ncomp", args.ncomp)):
        if value is not None:
            red[key] = value
    method = red.get("method", "annular")
    if method not in _METHODS:
        msg = f"method must be one of {', '.join(_METHODS)}; got {method!r}"
        raise UserError(msg)
    seq, data = _load_sequence(args, cfg, base)
    out = _output_path(args.output, red.pop("output", None), base, "reduce_output")
    effective = {"data": data, "reduce": {**red, "method": method, "output": str(out)}}
    results = _reduce(seq, [method], ncomp=int(red.get("ncomp", 10)), out=out, extra_provenance={"config": effective})
    dump_toml(out / "config.toml", effective)
    r = results[method]
    print(f"{method}: S/N map peak {r['peak_snr']:.2f} at (x={r['peak_xy'][0]}, y={r['peak_xy'][1]}); outputs in {out}")
    return 0


def _cmd_samples(args: argparse.Namespace) -> int:
    from sodinn.config import SampleConfig, dump_toml
    from sodinn.store import SampleFile, generate_sample_file

    cfg, base = _load_config(args)
    table = dict(cfg.get("samples", {}))
    out = _output_path(args.output, table.pop("output", None), base, "samples.h5")
    if out.is_dir():
        msg = f"output {out} is a folder; pass a file name such as {out / 'samples.h5'}"
        raise UserError(msg)
    for key, value in (("patch_px", args.patch), ("n_ranks", args.ranks), ("samples_per_annulus", args.per_annulus),
                       ("seed", args.seed)):
        if value is not None:
            table[key] = value
    if args.mask is not None:
        table["known_sources_xy"] = [list(xy) for xy in args.mask]
    config = SampleConfig.from_dict(table)  # bad settings fail here, before any work
    scheduler, n_jobs = _engine_settings(args, cfg)
    seq, data = _load_sequence(args, cfg, base)
    from sodinn.engine import use_scheduler

    with use_scheduler(scheduler):
        path = generate_sample_file(seq, config, out, resume=not args.no_resume, n_jobs=n_jobs, progress=not args.quiet)
    dump_toml(path.with_suffix(".toml"), {"data": data, "samples": {**config.to_dict(), "output": str(path)}})
    with SampleFile(path) as f:
        n_pos = int(f.labels.sum())
        print(f"{path}: {len(f)} samples ({n_pos} C+, {len(f) - n_pos} C-) of shape {f.sample_shape} "
              f"in {len(f.ks)} annuli, {path.stat().st_size / 2**20:.1f} MiB")
    return 0


def _engine_settings(args: argparse.Namespace, cfg: dict[str, Any]) -> tuple[Any, int | None]:
    """The scheduler and worker count from the flags, else the [engine] table; checked before any work."""
    from sodinn.engine import check_scheduler

    engine = cfg.get("engine", {})
    scheduler = check_scheduler(args.scheduler if args.scheduler is not None else engine.get("scheduler"))
    n_jobs = args.jobs if args.jobs is not None else engine.get("n_workers")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1):
        msg = f"the number of workers (--jobs, [engine] n_workers) must be a positive integer; got {n_jobs!r}"
        raise UserError(msg)
    return scheduler, n_jobs


def _cmd_survey(args: argparse.Namespace) -> int:
    import dataclasses

    from sodinn.survey import format_summary, load_survey, run_survey

    survey = load_survey(args.survey_config)
    if args.output is not None:
        survey = dataclasses.replace(survey, output=Path(args.output).resolve())
    if survey.output.exists() and not survey.output.is_dir():
        msg = f"output {survey.output} is a file; pass a folder (it is created if needed)"
        raise UserError(msg)
    table = run_survey(survey, scheduler=args.scheduler, n_workers=args.jobs, restart=args.restart,
                       progress=not args.quiet)
    print(format_summary(table))
    print(f"summary table: {survey.output / 'summary.ecsv'}")
    return 1 if any(e != "-" for e in table["error"]) else 0


def _cmd_train(args: argparse.Namespace) -> int:
    from sodinn.config import TrainConfig, dump_toml

    cfg, base = _load_config(args)
    table = dict(cfg.get("train", {}))
    out = _output_folder(_output_path(args.output, table.pop("output", None), base, "model"))
    try:
        samples_file = _input_path(args.samples_file, [table.pop("samples", None), cfg.get("samples", {}).get("output")],
                                   base, "sample file")
    except UserError:
        msg = "missing SAMPLES: pass the HDF5 file written by 'sodinn samples', or a --config whose [samples] table names it"
        raise UserError(msg) from None
    for key, value in (("model", args.model), ("epochs", args.epochs), ("batch_size", args.batch_size),
                       ("seed", args.seed)):
        if value is not None:
            table[key] = value
    if args.random_split:
        table["report_random_split"] = True
    config = TrainConfig.from_dict(table)
    if samples_file.is_dir():
        msg = f"{samples_file} is a folder; pass the sample file (.h5) written by 'sodinn samples'"
        raise UserError(msg)
    if not samples_file.is_file():
        msg = f"sample file not found: {samples_file}; make one with 'sodinn samples'"
        raise UserError(msg)
    _import_keras_quietly()
    from sodinn.training import train

    result = train(samples_file, config, out, resume=not args.no_resume, progress=not args.quiet)
    dump_toml(out / "config.toml", {"train": {**config.to_dict(), "samples": str(samples_file.resolve()),
                                              "output": str(out.resolve())}})
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


def _cmd_predict(args: argparse.Namespace) -> int:
    return _predict(args, echo=True)


def _predict(args: argparse.Namespace, *, echo: bool) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sodinn.baselines import pca_annular
    from sodinn.config import dump_toml
    from sodinn.detection import binary_map, find_candidates
    from sodinn.io import write_fits
    from sodinn.plotting import plot_frame, plot_snr_map
    from sodinn.snr import snr_map

    cfg, base = _load_config(args)
    settings = dict(cfg.get("predict", {}))
    try:
        model_dir = _input_path(args.model_dir, [settings.get("model"), cfg.get("train", {}).get("output")], base, "model")
    except UserError:
        msg = "missing MODEL: pass the folder written by 'sodinn train', or a --config with [predict] model or [train] output"
        raise UserError(msg) from None
    if not model_dir.exists():
        msg = f"model folder not found: {model_dir}; train one with 'sodinn train'"
        raise UserError(msg)
    if not (model_dir / "model.json").is_file():
        hint = "it is a file" if model_dir.is_file() else "no model.json in it"
        msg = f"{model_dir} is not a model folder ({hint}); pass the folder written by 'sodinn train'"
        raise UserError(msg)
    threshold = args.threshold if args.threshold is not None else settings.get("threshold", 0.9)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        msg = f"threshold must be a probability in (0, 1), e.g. 0.9; got {threshold!r}"
        raise UserError(msg)
    out = _output_folder(_output_path(args.output, settings.get("output"), base, "predict_output"))
    seq, data = _load_sequence(args, cfg, base)
    logger.info("loading the model in %s", model_dir)
    _import_keras_quietly()
    from sodinn.prediction import probability_map
    from sodinn.training import load_trained

    model = load_trained(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    pmap = probability_map(seq, model, progress=not args.quiet)
    table = find_candidates(pmap.probability, threshold, pixel_scale_arcsec=seq.pixel_scale_arcsec)
    provenance = {
        "function": "probability_map", "model": str(model_dir.resolve()),
        "model_training_set_sha256": model.metadata["training_set"]["sha256"], "threshold": threshold,
        **{k: v for k, v in seq.provenance.items() if k.endswith(("_file", "_sha256"))},
    }
    write_fits(out / "probability_map.fits", pmap.probability, provenance=provenance)
    write_fits(out / "detection_map.fits", binary_map(pmap.probability, threshold).astype(np.int16),
               provenance=provenance)
    from sodinn._atomic import atomic_path

    with atomic_path(out / "candidates.ecsv") as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)
    frame = pca_annular(seq.cube, seq.angles_deg, seq.fwhm_px, ncomp=min(10, seq.n_frames - 2))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    circles = [(float(r["x"]), float(r["y"])) for r in table[:10]]
    plot_frame(pmap.probability, ax=axes[0], title=f"P(companion), {len(table)} candidates >= {threshold:g}",
               cmap="viridis", vmin=0, vmax=1, circles_xy=circles, circle_radius_px=seq.fwhm_px, label="probability")
    plot_snr_map(snr_map(frame, seq.fwhm_px), ax=axes[1], title="annular PCA-ADI S/N map", circles_xy=circles,
                 circle_radius_px=seq.fwhm_px)
    fig.tight_layout()
    fig.savefig(out / "detection.png", dpi=100)
    plt.close(fig)
    dump_toml(out / "config.toml", {"data": data, "predict": {"model": str(model_dir.resolve()), "threshold": threshold,
                                                              "output": str(out.resolve())}})
    if not echo:
        return 0
    print(f"{len(table)} candidate(s) with P >= {threshold:g}; outputs in {out}")
    for row in table[:10]:
        sep = f"{row['sep_arcsec']:.3f}\"" if "sep_arcsec" in table.colnames else f"{row['sep_px']:.1f} px"
        print(f"  x={row['x']:6.2f} y={row['y']:6.2f} sep={sep} PA={row['pa_deg']:5.1f} deg "
              f"peak P={row['peak_probability']:.3f} area={row['area_px']} px")
    return 0


def _reduce(seq: Any, methods: Sequence[str], *, ncomp: int, out: Path, extra_provenance: dict[str, Any],
            truth: Sequence[tuple[float, float]] = ()) -> dict[str, dict[str, Any]]:
    """Run baselines, write final frames, S/N maps and a figure; return a summary per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sodinn.baselines import median_adi, pca_adi, pca_annular
    from sodinn.io import write_fits
    from sodinn.plotting import plot_frame, plot_snr_map
    from sodinn.snr import snr, snr_map

    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    for method in methods:
        if method == "annular":
            frame = pca_annular(seq.cube, seq.angles_deg, seq.fwhm_px, ncomp=ncomp)
        elif method == "pca":
            frame = pca_adi(seq.cube, seq.angles_deg, ncomp=ncomp)
        else:
            frame = median_adi(seq.cube, seq.angles_deg)
        smap = snr_map(frame, seq.fwhm_px)
        provenance = {
            "function": {"annular": "pca_annular", "pca": "pca_adi", "median": "median_adi"}[method],
            "ncomp": ncomp if method != "median" else None,
            "fwhm_px": seq.fwhm_px,
            **{k: v for k, v in seq.provenance.items() if k.endswith(("_file", "_sha256"))},
            **extra_provenance,
        }
        frame_file = write_fits(out / f"{method}_frame.fits", frame, provenance=provenance)
        snr_file = write_fits(out / f"{method}_snrmap.fits", smap, provenance={**provenance, "product": "snr_map"})
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
        plot_frame(frame, ax=axes[0], title=f"{method} PCA-ADI frame" if method != "median" else "median-ADI frame",
                   circles_xy=truth, circle_radius_px=seq.fwhm_px)
        plot_snr_map(smap, ax=axes[1], circles_xy=truth, circle_radius_px=seq.fwhm_px)
        fig.tight_layout()
        figure_file = out / f"{method}_snrmap.png"
        fig.savefig(figure_file, dpi=100)
        plt.close(fig)
        py, px = np.unravel_index(int(np.argmax(smap)), smap.shape)
        results[method] = {
            "frame_file": frame_file,
            "snr_file": snr_file,
            "figure_file": figure_file,
            "peak_snr": float(smap[py, px]),
            "peak_xy": (int(px), int(py)),
            "snr_at_truth": [snr(frame, (x, y), seq.fwhm_px) for x, y in truth],
        }
    return results


# ---------------------------------------------------------------- roc


def _cmd_roc(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import matplotlib

    matplotlib.use("Agg")

    from sodinn.config import dump_toml
    from sodinn.roc import RocConfig, model_folders, run_roc

    if args.config_file and args.config:
        raise UserError("give the configuration once: either CONFIG or --config")
    args.config = args.config or args.config_file
    cfg, base = _load_config(args)
    table = dict(cfg.get("roc", {}))
    model_specs = args.model if args.model is not None else table.pop("models", [])
    table.pop("models", None)
    output = table.pop("output", None)
    if args.copies is not None:
        table["copies_per_band"] = args.copies
    if args.seed is not None:
        table["seed"] = args.seed
    models: dict[str, str] = {}
    for spec in ([model_specs] if isinstance(model_specs, str) else model_specs):
        name, _, path = str(spec).rpartition("=")
        resolved = Path(path) if args.model is not None else base / path
        name = name or resolved.name
        if name in models:
            raise UserError(f"two models are named {name!r}; name them with NAME=DIR")
        models[name] = str(resolved)
    model_folders(models)  # before the data are read
    config = RocConfig.from_dict(table)
    scheduler, n_jobs = _engine_settings(args, cfg)
    seq, data = _load_sequence(args, cfg, base)
    out = _output_path(args.output, output, base, "roc_output")
    start = time.perf_counter()
    result = run_roc(seq, config, models, output_dir=out, n_jobs=n_jobs, scheduler=scheduler,
                     resume=not args.no_resume, progress=not args.quiet)
    dump_toml(out / "config.toml", {"data": data, "roc": {**config.to_dict(), "models": [f"{k}={v}" for k, v in models.items()],
                                                          "output": str(out.resolve())}})
    print(result.summary)
    print(f"{len(result.injections)} copies in {time.perf_counter() - start:.0f} s; roc.csv, roc.png, summary.txt in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
