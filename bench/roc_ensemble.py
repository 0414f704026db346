"""Score an ensemble of a ROC run's methods (the mean of their maps) on the run's cached copies (issue 14).

``sodinn roc`` caches every method's map of every copy; this reads them back for the methods named by
``--members`` (names of the run's ``models`` or ``baselines``), averages them pixel by pixel, and
scores the ensemble exactly as the run scored its models: thresholded probabilities, and each copy
calibrated on its own blobs over the whole field (``NAME-cal``: the copy's band within the ensemble's map of
the data, :class:`sodinn.evaluate.roc.DataMap`), by :func:`sodinn.evaluate.roc.score_copies`. Models'
logits are averaged as they are (the geometric mean of the odds); with ``--standardize`` every member
is first made a robust z-score within each annulus of the model's partition ((x - median) / (1.4826
MAD) over the annulus's evaluated pixels), which lets a model be fused with annular PCA-ADI S/N maps.
It prints, beside the members', the TPR at <= 0.1 and <= 1 false positive per frame per band and the
best single threshold over all bands (F1, TPR, FDR).

Usage (after ``sodinn roc CONFIG`` finished; reading the cache takes about a minute)::

    .venv/bin/python bench/roc_ensemble.py CONFIG --members sodinn-s0 sodinn-s1 [--name ensemble]
    .venv/bin/python bench/roc_ensemble.py CONFIG --members sodinn-s0 annular-20 --standardize --name fused
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]


def standardized(frame: np.ndarray, evaluated: np.ndarray, annulus: np.ndarray) -> np.ndarray:
    """Return ``frame`` as a robust z-score within each annulus: (x - median) / (1.4826 MAD) over its evaluated pixels."""
    out = np.zeros_like(frame, dtype=np.float64)
    for a in np.unique(annulus[evaluated]):
        own = evaluated & (annulus == a)
        values = frame[own]
        median = np.median(values)
        mad = 1.4826 * np.median(np.abs(values - median))
        out[own] = (values - median) / (mad if mad > 0 else 1.0)
    return out


def load_run(config_path: str | os.PathLike[str], names: list[str], error=None, flag: str = "--members", *,
             data: bool = False, output: str | os.PathLike[str] | None = None) -> dict:
    """Read a finished ``sodinn roc`` run back: its sequence, settings, injections, bands and the cached maps of ``names``.

    Parameters
    ----------
    config_path : path
        The TOML of the run ([data] and [roc] tables); relative paths are resolved against its folder.
    names : list of str
        The run's models or baselines whose maps are read (at least one model: its annuli are used).
    error : callable, optional
        Called with a message for a bad ``names`` (an ``argparse`` parser's ``error``); default raises ValueError.
    flag : str
        The command-line option that gave ``names``, for that message.
    data : bool
        Also read (or compute, about 30 s a model) the maps of the data over the whole field.
    output : path, optional
        The run's folder (its ``cache``), if not the config's ``[roc] output`` (a run made with ``sodinn roc -o``).

    Returns
    -------
    dict
        ``sequence``, ``config`` (RocConfig), ``injections``, ``bands_px``, ``maps`` (one dict per copy,
        by name), ``data`` (with ``data``: the maps of the data over the whole field, by name,
        :func:`sodinn.evaluate.roc.data_maps`; else None), ``models`` (name -> folder of the models among
        ``names``), ``baselines`` (the baselines among ``names``), ``edges_px`` (the first model's annuli) and
        ``annulus`` (each pixel's annulus index).
    """
    from sodinn.adi.geometry import polar_coordinates
    from sodinn.adi.sequence import ADISequence
    from sodinn.config import RocConfig, SampleConfig, load_toml
    from sodinn.evaluate.copies import load_model, run_copies
    from sodinn.evaluate.roc import _band_px, _flux_curve, data_maps, roc_injections
    from sodinn.mlar.samples import sample_annuli, sample_psf

    def fail(msg: str):
        if error is not None:
            error(msg)
        raise ValueError(msg)

    path = Path(config_path).resolve()
    cfg = load_toml(path)
    base = path.parent
    data, table = cfg["data"], dict(cfg["roc"])
    models = {}
    for spec in table.pop("models"):
        name, _, folder = str(spec).rpartition("=")
        models[name] = str(base / folder)
    configured = table.pop("output")
    out = Path(output) if output is not None else base / configured
    config = RocConfig.from_dict(table)
    missing = [m for m in names if m not in models and m not in config.baselines]
    if missing:
        fail(f"{flag} {missing} are not among the run's models {sorted(models)} or baselines {list(config.baselines)}")
    if not any(m in models for m in names):
        fail(f"{flag} must include a model (its annuli are the ones scored)")
    seq = ADISequence.from_fits(base / data["cube"], base / data["angles"], base / data["psf"],
                                fwhm_px=data.get("fwhm_px"), pixel_scale_arcsec=data.get("pixel_scale_arcsec"))
    members = {m: models[m] for m in names if m in models}
    baselines = [m for m in names if m in config.baselines]
    psf = sample_psf(seq, SampleConfig())
    injections = roc_injections(seq, config, None if config.flux_range is not None else _flux_curve(seq, config, psf))
    bands_px = _band_px(config, config.lambda_d_px or seq.fwhm_px)
    maps = run_copies(seq, injections, psf, [bands_px[inj.band] for inj in injections], models=members, baselines=baselines,
                      cache_dir=out / "cache", resume=True, progress=False, known_sources_xy=config.known_sources_xy)
    whole = (data_maps(seq, psf, len(bands_px), models=members, baselines=baselines, cache_dir=out / "cache",
                       progress=False, known_sources_xy=config.known_sources_xy) if data else None)
    edges = sample_annuli(seq, load_model(next(iter(members.values()))).sample_config).edges_px
    annulus = np.searchsorted(edges, polar_coordinates(seq.cube.shape)[0], side="right") - 1
    return {"sequence": seq, "config": config, "injections": injections, "bands_px": bands_px, "maps": maps,
            "data": whole, "models": members, "baselines": baselines, "edges_px": edges, "annulus": annulus}


def main() -> int:
    from sodinn.detect.probability import UNEVALUATED_LOGIT
    from sodinn.evaluate.roc import DataMap, best_f1, score_copies, tpr_at

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="the TOML of the finished `sodinn roc` run ([data] and [roc] tables)")
    parser.add_argument("--members", nargs="+", required=True, help="names of the run's models or baselines to average")
    parser.add_argument("--standardize", action="store_true", help="robust z-score of each member per annulus first")
    parser.add_argument("--name", default="ensemble", help="the ensemble's name in the printed table")
    args = parser.parse_args()

    run = load_run(args.config, args.members, error=parser.error, data=True)
    seq, config, injections, bands_px, maps = run["sequence"], run["config"], run["injections"], run["bands_px"], run["maps"]
    members, baselines, edges, annulus = run["models"], run["baselines"], run["edges_px"], run["annulus"]
    for m in [*maps, run["data"]]:  # the ensemble of each copy, and of the data (its whole-field self-calibration)
        evaluated = np.all([m[name] > UNEVALUATED_LOGIT / 2 for name in members], axis=0)
        evaluated &= (annulus >= 0) & (annulus < len(edges) - 1)
        if baselines:
            evaluated &= np.all([np.isfinite(m[name]) for name in baselines], axis=0)
        stack = np.stack([standardized(m[name], evaluated, annulus) if args.standardize else m[name] for name in args.members])
        m[args.name] = np.where(evaluated, stack.mean(axis=0), UNEVALUATED_LOGIT)
    names = [*members, *baselines, args.name]
    model_names = [*members, args.name]
    calibrations = {name: DataMap(edges, run["data"][name]) for name in model_names}  # as the run calibrates its models
    rows = score_copies(seq, config, names, model_names, injections, maps, bands_px, calibrations)
    bands = ["{:g}-{:g}".format(*b) for b in config.bands_lambda_d]
    print(f"TPR at <= 0.1 / <= 1 false positive per frame, bands {' / '.join(bands)} lambda/D; best single threshold")
    for method in [n for name in names for n in ((name, f"{name}-cal") if name in model_names else (name,))]:
        tprs = [f"{tpr_at(rows, method, b, 0.1):.2f}/{tpr_at(rows, method, b, 1.0):.2f}" for b in range(len(bands))]
        best = best_f1(rows, method)
        print(f"  {method:22s} {'  '.join(tprs)}   F1 {best['f1']:.2f} (TPR {best['tpr']:.2f}, FDR {best['fdr']:.2f}, "
              f"at {best['threshold']:g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
