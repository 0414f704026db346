"""The ``sodinn`` command: its argument parser and entry point.

The flags of each command are tied to the settings of :mod:`sodinn.config`: every flag that sets a
setting is listed in :data:`sodinn.cli.commands.FLAGS` with the dataclass field it sets (the tests
check that each exists), and the defaults printed by ``--help`` are read from the dataclasses.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from sodinn._version import __version__
from sodinn.adi.baselines import BASELINES
from sodinn.cli import commands
from sodinn.cli.commands import UserError
from sodinn.config import (
    PRECISIONS,
    PROBABILITY_THRESHOLD,
    EngineConfig,
    LimitConfig,
    PredictConfig,
    ReduceConfig,
    RocConfig,
    SampleConfig,
    TrainConfig,
)
from sodinn.exceptions import SettingError, SodinnWarning
from sodinn.learn.models import MODEL_NAMES

__all__ = ["build_parser", "main"]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (it may be replaced, e.g. in tests)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sodinn`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 1 when a survey target failed, 2 for a user error, 130 when
        interrupted, 141 when the reader of the output went away.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO, handlers=[handler], force=True)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        with warnings.catch_warnings():  # sodinn's warnings (a PSF recentred, ...) as one-line notes
            warnings.simplefilter("default", SodinnWarning)
            warnings.showwarning = _show_note_for(args.command)
            return int(args.func(args) or 0)
    except BrokenPipeError:  # the reader of stdout went away (`sodinn info ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141
    except (UserError, ValueError, TypeError, OSError, KeyError) as err:
        if args.verbose:
            raise
        if isinstance(err, SettingError):  # name the flag or configuration key, not the Python parameter
            message = err.render(commands.cli_setting(args.command, set(vars(args))))
        else:
            message = (str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)) or type(err).__name__
        print(f"sodinn {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sodinn {args.command}: interrupted", file=sys.stderr)
        return 130


def _show_note_for(command: str):
    """Return a ``warnings.showwarning`` that prints a :class:`SodinnWarning` as one line: ``sodinn COMMAND: note: ...``."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SodinnWarning):
            print(f"sodinn {command}: note: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``sodinn`` and its commands.

    Returns
    -------
    argparse.ArgumentParser
        One subcommand per ``cmd_*`` function of :mod:`sodinn.cli.commands`, set as its ``func``
        default; the defaults shown by ``--help`` come from :mod:`sodinn.config`.
    """
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
        "S/N maps (FITS and PNG) into OUTPUT; then labeled samples, a small SODINN model and its candidates.",
    )
    demo.add_argument("--output", "-o", default="demo_output", help="output folder (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the synthetic data (default: %(default)s)")
    demo.add_argument("--no-train", action="store_true",
                      help="stop after the PCA-ADI S/N maps (skip samples, training and prediction)")
    demo.set_defaults(func=commands.cmd_demo)

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
    info.add_argument("--hdu", type=_hdu, metavar="HDU", help="HDU (index or EXTNAME) to read in each FITS file "
                      "(default: the image of most dimensions, else a table)")
    info.add_argument("--column", metavar="NAME", help="table column to read (default: PARANG or a similar name, or "
                      "the only numeric column)")
    info.add_argument("--allow-small-rotation", action="store_true",
                      help="exit 0 even when the angles rotate by less than 1/1.5 rad (38.2 deg): a source 1.5 FWHM from "
                      "the star would move by less than one FWHM (angles in radians?)")
    info.set_defaults(func=commands.cmd_info)

    convert = sub.add_parser(
        "convert", parents=[common], help="write a sequence (a VIP Dataset .npz, or FITS) as three FITS files",
        description="Read a sequence as the other commands do (--npz FILE for a VIP Dataset saved with Dataset.save, "
        "or --cube/--angles/--psf, or --config), check it, and write cube.fits, angles.fits (degrees) and psf.fits "
        "(the centred stamp) into OUTPUT, with the FWHM and pixel scale in their headers.",
    )
    _add_data_options(convert)
    convert.add_argument("--output", "-o", required=True, help="output folder")
    convert.add_argument("--overwrite", action="store_true", help="replace cube.fits, angles.fits and psf.fits if there")
    convert.set_defaults(func=commands.cmd_convert)

    reduce = sub.add_parser(
        "reduce", parents=[common], help="classical reduction (PCA-ADI) and S/N map of an ADI sequence",
        description="Reduce an ADI sequence with a classical method (annular PCA-ADI, full-frame PCA-ADI or "
        "median-ADI) and write the final frame, its S/N map (FITS) and a figure. Inputs come from --config (TOML, "
        "[data] and [reduce] tables) and/or flags; flags win.",
    )
    _add_data_options(reduce)
    reduce.add_argument("--method", choices=tuple(BASELINES), help=f"reduction (default: {ReduceConfig.method})")
    reduce.add_argument("--ncomp", type=int, help=f"principal components (default: {ReduceConfig.ncomp})")
    reduce.add_argument("--delta-rot", type=float, nargs="+", metavar="FWHM",
                        help="annular PCA's rotation threshold, in FWHM: one value, or the first and last annulus's "
                        f"(default: {' '.join(f'{x:g}' for x in ReduceConfig.delta_rot)}; 0 uses every frame)")
    reduce.add_argument("--output", "-o", help="output folder (default: reduce_output)")
    reduce.set_defaults(func=commands.cmd_reduce)

    samples = sub.add_parser(
        "samples", parents=[common], help="generate labeled MLAR samples (HDF5) from an ADI sequence",
        description="Generate balanced C+/C- samples (PCA residual patches at K ranks) for every 1-FWHM annulus "
        "and write them to an HDF5 file. Settings come from the [samples] table of --config and the flags. "
        "An interrupted run resumes where it stopped.",
    )
    _add_data_options(samples)
    samples.add_argument("--output", "-o", help="HDF5 file to write (default: samples.h5)")
    samples.add_argument("--patch", type=int, help=f"patch size P, odd (default {SampleConfig.patch_px})")
    samples.add_argument("--ranks", type=int, help=f"number of PCA ranks K (default {SampleConfig.n_ranks})")
    samples.add_argument("--per-annulus", type=int, help="samples of each class per annulus (default: one per pixel)")
    samples.add_argument("--snr-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                         help="C+ fluxes between those giving annular PCA-ADI S/N LOW and HIGH in each annulus "
                              f"(default {' '.join(f'{x:g}' for x in SampleConfig.snr_range)})")
    samples.add_argument("--mask", type=float, nargs=2, action="append", metavar=("X", "Y"),
                         help="a known source to keep out of the samples (repeatable)")
    samples.add_argument("--seed", type=int, help=f"random seed (default {SampleConfig.seed})")
    _add_engine_options(samples, "the annuli")
    samples.add_argument("--no-resume", action="store_true", help="start afresh instead of resuming")
    samples.set_defaults(func=commands.cmd_samples)

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
    train.add_argument("--model", "-m", help=f"{', '.join(MODEL_NAMES)} (default: {TrainConfig.model})")
    train.add_argument("--epochs", type=int, help=f"maximum epochs (default {TrainConfig.epochs})")
    train.add_argument("--batch-size", type=int, help=f"batch size (default {TrainConfig.batch_size})")
    train.add_argument("--seed", type=int, help=f"random seed (default {TrainConfig.seed})")
    train.add_argument("--precision",
                       help=f"arithmetic of the convolutions, {' or '.join(PRECISIONS)}: mixed_bfloat16 is faster on "
                       f"CPUs with AMX-BF16 or AVX512-BF16 instructions (default {TrainConfig.precision})")
    train.add_argument("--random-split", action="store_true",
                       help="also train on a random sample-level split and report what it would claim")
    train.add_argument("--no-resume", action="store_true", help="start afresh instead of resuming")
    train.set_defaults(func=commands.cmd_train)

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
    predict.add_argument("--fp-budget", type=float, metavar="F",
                         help="false-alarm budget: keep what is expected to give at most F false positives per frame, "
                         f"calibrated on null draws of the data (default: {PredictConfig.fp_budget:g})")
    predict.add_argument("--threshold", type=float,
                         help="a probability threshold in (0, 1) instead of the calibrated budget (e.g. "
                         f"{PROBABILITY_THRESHOLD}; no null draws, no false-alarm levels)")
    predict.add_argument("--calibration-nulls", type=int, metavar="N",
                         help="calibrate on N null draws of every pixel (negated, then permuted angles; each costs about one "
                         "probability map) instead of the map's own blobs (the default, 0)")
    predict.add_argument("--mask", type=float, nargs=2, action="append", metavar=("X", "Y"),
                         help="a known source to keep out of the calibration's null draws (repeatable; it stays a candidate)")
    predict.add_argument("--max-rows", type=int, default=20, metavar="N",
                         help="candidates listed on the terminal (default: 20; 0: all); the count covers every one")
    predict.add_argument("--output", "-o", help="output folder (default: predict_output)")
    predict.set_defaults(func=commands.cmd_predict)

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
    roc.add_argument("--copies", type=int, help=f"injected copies per separation band (default {RocConfig().copies_per_band})")
    roc.add_argument("--seed", type=int, help=f"random seed of the injections (default {RocConfig().seed})")
    _add_engine_options(roc, "the copies")
    roc.add_argument("--output", "-o", help="output folder (default: roc_output)")
    roc.add_argument("--no-resume", action="store_true", help="recompute every copy instead of reusing the cache")
    roc.set_defaults(func=commands.cmd_roc)

    limits = sub.add_parser(
        "limits", parents=[common], help="contrast curves: the classical 5-sigma curve and the models' 95%%-TPR limits",
        description="Measure the classical contrast curve of annular PCA-ADI (5-sigma, Student-corrected, Mawet et al. "
        "2014) and the flux at which each model and baseline detects 95%% of fake companions injected one per copy "
        "of the cube (the same copies for every method); write both as contrast and delta mag against separation "
        "in arcsec, px and lambda/D (limits.ecsv, tpr.ecsv), a figure (limits.png: delta mag against arcsec, "
        "fainter down) and config.toml. The star's flux is the PSF's in an aperture of diameter 1 FWHM, scaled by "
        "the exposure times and the ND transmission. Settings come from the [data] and [limits] tables of --config "
        "and the flags; an interrupted run resumes from the copies it finished (cache/).",
    )
    _add_data_options(limits)
    limits.add_argument("--model", "-m", action="append", metavar="[NAME=]DIR",
                        help="a model folder written by 'sodinn train' (repeatable; default: [limits] models; none: "
                        "the baselines only)")
    limits.add_argument("--baselines", nargs="+", metavar="METHOD",
                        help=f"classical methods measured beside the models (default: {' '.join(LimitConfig.baselines)})")
    limits.add_argument("--separations", type=float, nargs="+", metavar="LAMBDA_D",
                        help="separations of the 95%%-TPR limits, in lambda/D "
                        f"(default: {' '.join(f'{s:g}' for s in LimitConfig.separations_lambda_d)})")
    limits.add_argument("--copies", type=int, help=f"injected copies per separation and flux level (default {LimitConfig.copies_per_flux})")
    limits.add_argument("--threshold", type=float, help=f"probability threshold of the models (default {LimitConfig.prob_threshold})")
    limits.add_argument("--snr-threshold", type=float, help=f"S/N threshold of the baselines (default {LimitConfig.snr_threshold:g})")
    limits.add_argument("--sigma", type=float, help=f"significance of the classical curve (default {LimitConfig.sigma:g})")
    limits.add_argument("--classical-ncomp", type=int,
                        help=f"principal components of the classical curve's annular PCA-ADI (default {LimitConfig.classical_ncomp})")
    limits.add_argument("--no-classical", action="store_true", help="skip the classical curve ([limits] classical = false)")
    limits.add_argument("--convention", choices=("mawet", "vip"),
                        help="noise apertures of the classical curve: Mawet et al. 2014's ring (default) or vip-hci's")
    limits.add_argument("--seed", type=int, help=f"random seed of the injections (default {LimitConfig.seed})")
    _add_engine_options(limits, "the copies")
    limits.add_argument("--output", "-o", help="output folder (default: limits_output)")
    limits.set_defaults(func=commands.cmd_limits)

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
    survey.set_defaults(func=commands.cmd_survey)
    return parser


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="TOML configuration (see configs/); flags override it")
    parser.add_argument("--cube", help="FITS cube (n_frames, N, N)")
    parser.add_argument("--angles", help="FITS parallactic angles, degrees")
    parser.add_argument("--psf", help="FITS off-axis PSF")
    parser.add_argument("--npz", metavar="FILE", help="a VIP Dataset saved as .npz (Dataset.save: cube, angles, psf, fwhm, "
                        "px_scale; arrays only) instead of --cube, --angles and --psf")
    parser.add_argument("--fwhm", type=float, help="PSF FWHM in px (default: 2-D Gaussian fit of the PSF)")
    parser.add_argument("--pixel-scale", type=float, help="arcsec per pixel")
    parser.add_argument("--allow-small-rotation", action="store_true",
                        help="go on when the field rotates too little to move a source at the inner radius of the "
                        "analysis by one FWHM (angles in radians? default: stop; [data] allow_small_rotation)")
    parser.add_argument("--north-offset", type=float, metavar="DEG",
                        help="instrument pupil or true-north offset, degrees, added to the parallactic angles so "
                        "that derotated frames are north-up, east-left (default 0: the angles as given; "
                        "[data] north_offset_deg; -104.39 for the NACO beta Pic file)")
    parser.add_argument("--star-center", type=float, nargs=2, metavar=("X", "Y"),
                        help="where the star is in the frames, px, when not at the frame centre: every frame is shifted "
                        "to put it there (default: at the centre; [data] star_center_xy; measured by "
                        "sodinn.adi.centering.estimate_star_center: 51.23 51.02 for the NACO beta Pic cube)")
    parser.add_argument("--psf-exposure", type=float, metavar="S",
                        help="exposure time of the PSF, seconds (default 1; for contrasts; [data] psf_exposure_s)")
    parser.add_argument("--cube-exposure", type=float, metavar="S",
                        help="exposure time of the cube's frames, seconds (default 1; [data] cube_exposure_s)")
    parser.add_argument("--psf-nd-transmission", type=float, metavar="FRACTION",
                        help="transmission of the neutral-density filter the PSF was taken through, in (0, 1] "
                        "(default 1: none; [data] psf_nd_transmission)")
    parser.add_argument("--star-flux", type=float, metavar="FLUX",
                        help="the star's flux in the cube's units in a 1-FWHM-diameter aperture, for contrasts "
                        "(default: the PSF's, scaled by the exposures and ND; [data] star_flux)")
    parser.add_argument("--nan-policy", choices=("raise", "zero"),
                        help="NaN/inf pixels of the cube: refuse them (default), or set them to 0 and drop frames "
                        "without any finite pixel with their angles")
    parser.add_argument("--cube-hdu", type=_hdu, metavar="HDU", help="HDU (index or EXTNAME) of the cube "
                        "(default: the first 3-D image)")
    parser.add_argument("--angles-hdu", type=_hdu, metavar="HDU", help="HDU (index or EXTNAME) of the angles "
                        "(default: the first 1-D image, else a table)")
    parser.add_argument("--angles-column", metavar="NAME", help="table column of the angles (default: PARANG or a "
                        "similar name, or the only numeric column)")
    parser.add_argument("--psf-hdu", type=_hdu, metavar="HDU", help="HDU (index or EXTNAME) of the PSF "
                        "(default: the first 2-D image)")


def _hdu(text: str) -> int | str:
    """Read an HDU given on the command line: an index (digits) or an EXTNAME."""
    return int(text) if text.strip().isdigit() else text


def _add_engine_options(parser: argparse.ArgumentParser, what: str) -> None:
    default = EngineConfig.scheduler or "the local cores"
    parser.add_argument("--jobs", "-j", type=int, help="worker processes (default: all cores)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help=f"run {what} on a Dask cluster (tcp://host:port), or 'synchronous' in this process "
                        f"(default: [engine] scheduler, else {default})")
