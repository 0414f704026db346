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
    except (UserError, ValueError, TypeError, FileNotFoundError, FileExistsError, KeyError) as err:
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
        "info", parents=[common], help="describe FITS files",
        description="Print shape, type and statistics of FITS files (cube, angles or PSF).",
    )
    info.add_argument("paths", nargs="+", metavar="FITS", help="FITS file(s)")
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
    samples.add_argument("--no-resume", action="store_true", help="start afresh instead of resuming")
    samples.set_defaults(func=_cmd_samples)

    train = sub.add_parser(
        "train", parents=[common], help="train a classifier on a sample file",
        description="Train a model on an HDF5 sample file (split by group into train/validation/test), save it "
        "with everything prediction needs, and print the held-out metrics. Settings come from the [train] table "
        "of --config and the flags. An interrupted training resumes from its last epoch.",
    )
    train.add_argument("samples_file", metavar="SAMPLES", help="HDF5 file written by 'sodinn samples'")
    train.add_argument("--config", "-c", help="TOML configuration with a [train] table")
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
        "annular PCA-ADI S/N map.",
    )
    predict.add_argument("model_dir", metavar="MODEL", help="model folder written by 'sodinn train'")
    _add_data_options(predict)
    predict.add_argument("--threshold", type=float, default=0.9, help="probability threshold (default: %(default)s)")
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
    roc.add_argument("--output", "-o", help="output folder (default: roc_output)")
    roc.add_argument("--no-resume", action="store_true", help="recompute every copy instead of reusing the cache")
    roc.set_defaults(func=_cmd_roc)
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
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
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


def _cmd_info(args: argparse.Namespace) -> int:
    from sodinn.io import read_fits
    from sodinn.psf import fit_fwhm

    for path in args.paths:
        data = read_fits(path)
        finite = np.isfinite(data)
        line = {
            "file": str(path),
            "shape": list(data.shape),
            "min": float(np.nanmin(data)) if finite.any() else None,
            "max": float(np.nanmax(data)) if finite.any() else None,
            "non_finite": int(data.size - finite.sum()),
        }
        squeezed = data.squeeze()
        if squeezed.ndim == 1:
            line["kind"] = "angles"
            line["field_rotation_deg"] = float(np.ptp(squeezed))
        elif data.ndim == 2:
            line["kind"] = "psf/frame"
            try:
                line["fwhm_px"] = round(fit_fwhm(data), 4)
            except ValueError as err:
                line["fwhm_px"] = f"not fitted: {err}"
        elif data.ndim == 3:
            line["kind"] = "cube"
        print(json.dumps(line))
    return 0


# ---------------------------------------------------------------- reduce


_SECTIONS = ("data", "reduce", "samples", "train", "roc")


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
    return load_toml(args.config, sections=_SECTIONS), Path(args.config).resolve().parent


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
    paths = {k: (base / data[k]).resolve() for k in ("cube", "angles", "psf")}
    seq = ADISequence.from_fits(
        paths["cube"], paths["angles"], paths["psf"],
        fwhm_px=data.get("fwhm_px"), pixel_scale_arcsec=data.get("pixel_scale_arcsec"),
    )
    logger.info("%s: %d frames of %dx%d px, FWHM %.2f px", paths["cube"].name, seq.n_frames, seq.frame_size,
                seq.frame_size, seq.fwhm_px)
    return seq, {**data, **{k: str(v) for k, v in paths.items()}}


def _output_path(value: str | None, cfg_value: str | None, base: Path, default: str) -> Path:
    """A flag is relative to the working folder; a configuration's value to the configuration's folder."""
    if value is not None:
        return Path(value)
    if cfg_value is not None:
        return base / cfg_value
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
    for key, value in (("patch_px", args.patch), ("n_ranks", args.ranks), ("samples_per_annulus", args.per_annulus),
                       ("seed", args.seed)):
        if value is not None:
            table[key] = value
    if args.mask is not None:
        table["known_sources_xy"] = [list(xy) for xy in args.mask]
    config = SampleConfig.from_dict(table)  # bad settings fail here, before any work
    seq, data = _load_sequence(args, cfg, base)
    path = generate_sample_file(seq, config, out, resume=not args.no_resume, n_jobs=args.jobs, progress=not args.quiet)
    dump_toml(path.with_suffix(".toml"), {"data": data, "samples": {**config.to_dict(), "output": str(path)}})
    with SampleFile(path) as f:
        n_pos = int(f.labels.sum())
        print(f"{path}: {len(f)} samples ({n_pos} C+, {len(f) - n_pos} C-) of shape {f.sample_shape} "
              f"in {len(f.ks)} annuli, {path.stat().st_size / 2**20:.1f} MiB")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from sodinn.config import TrainConfig, dump_toml
    from sodinn.training import train

    cfg, base = _load_config(args)
    table = dict(cfg.get("train", {}))
    out = _output_path(args.output, table.pop("output", None), base, "model")
    for key, value in (("model", args.model), ("epochs", args.epochs), ("batch_size", args.batch_size),
                       ("seed", args.seed)):
        if value is not None:
            table[key] = value
    if args.random_split:
        table["report_random_split"] = True
    config = TrainConfig.from_dict(table)
    if not Path(args.samples_file).is_file():
        msg = f"sample file not found: {args.samples_file}; make one with 'sodinn samples'"
        raise UserError(msg)
    result = train(args.samples_file, config, out, resume=not args.no_resume, progress=not args.quiet)
    dump_toml(out / "config.toml", {"train": {**config.to_dict(), "samples": str(Path(args.samples_file).resolve())}})
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
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sodinn.baselines import pca_annular
    from sodinn.detection import binary_map, find_candidates
    from sodinn.io import write_fits
    from sodinn.plotting import plot_frame, plot_snr_map
    from sodinn.prediction import probability_map
    from sodinn.snr import snr_map
    from sodinn.training import load_trained

    cfg, base = _load_config(args)
    model = load_trained(args.model_dir)
    seq, data = _load_sequence(args, cfg, base)
    out = _output_path(args.output, None, base, "predict_output")
    out.mkdir(parents=True, exist_ok=True)
    pmap = probability_map(seq, model, progress=not args.quiet)
    table = find_candidates(pmap.probability, args.threshold, pixel_scale_arcsec=seq.pixel_scale_arcsec)
    provenance = {
        "function": "probability_map", "model": str(Path(args.model_dir).resolve()),
        "model_training_set_sha256": model.metadata["training_set"]["sha256"], "threshold": args.threshold,
        **{k: v for k, v in seq.provenance.items() if k.endswith(("_file", "_sha256"))},
    }
    write_fits(out / "probability_map.fits", pmap.probability, provenance=provenance)
    write_fits(out / "detection_map.fits", binary_map(pmap.probability, args.threshold).astype(np.int16),
               provenance=provenance)
    from sodinn._atomic import atomic_path

    with atomic_path(out / "candidates.ecsv") as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)
    frame = pca_annular(seq.cube, seq.angles_deg, seq.fwhm_px, ncomp=min(10, seq.n_frames - 2))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    circles = [(float(r["x"]), float(r["y"])) for r in table[:10]]
    plot_frame(pmap.probability, ax=axes[0], title=f"P(companion), {len(table)} candidates >= {args.threshold:g}",
               cmap="viridis", vmin=0, vmax=1, circles_xy=circles, circle_radius_px=seq.fwhm_px, label="probability")
    plot_snr_map(snr_map(frame, seq.fwhm_px), ax=axes[1], title="annular PCA-ADI S/N map", circles_xy=circles,
                 circle_radius_px=seq.fwhm_px)
    fig.tight_layout()
    fig.savefig(out / "detection.png", dpi=100)
    plt.close(fig)
    if not echo:
        return 0
    print(f"{len(table)} candidate(s) with P >= {args.threshold:g}; outputs in {out}")
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


if __name__ == "__main__":
    sys.exit(main())


# ---------------------------------------------------------------- roc


def _cmd_roc(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import matplotlib

    matplotlib.use("Agg")

    from sodinn.config import dump_toml
    from sodinn.roc import RocConfig, run_roc

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
        if not (resolved / "model.json").is_file():
            raise UserError(f"{resolved} is not a model folder written by 'sodinn train' (no model.json)")
        models[name] = str(resolved)
    config = RocConfig.from_dict(table)
    seq, data = _load_sequence(args, cfg, base)
    out = _output_path(args.output, output, base, "roc_output")
    start = time.perf_counter()
    result = run_roc(seq, config, models, output_dir=out, n_jobs=args.jobs, resume=not args.no_resume,
                     progress=not args.quiet)
    dump_toml(out / "config.toml", {"data": data, "roc": {**config.to_dict(), "models": [f"{k}={v}" for k, v in models.items()],
                                                          "output": str(out.resolve())}})
    print(result.summary)
    print(f"{len(result.injections)} copies in {time.perf_counter() - start:.0f} s; roc.csv, roc.png, summary.txt in {out}")
    return 0
