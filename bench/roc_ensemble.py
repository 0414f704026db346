"""Score an ensemble of models (mean of their logit maps) on the copies of a finished ROC run (issue 14).

``sodinn roc`` caches every model's logit map of every copy; this reads them back for the models named
by ``--members`` (names of the run's ``models``), averages their logits pixel by pixel (the geometric
mean of the odds), and scores the ensemble exactly as the run scored its models: thresholded
probabilities, and each copy calibrated on its own blobs (``NAME-cal``), by
:func:`sodinn.evaluate.roc.score_copies`. It prints, beside the members', the TPR at <= 0.1 and <= 1
false positive per frame per band and the best single threshold over all bands (F1, TPR, FDR).

Usage (after ``sodinn roc CONFIG`` finished; reading the cache takes about a minute)::

    .venv/bin/python bench/roc_ensemble.py CONFIG --members sodinn-s0 sodinn-s1 [--name ensemble]
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


def main() -> int:
    from sodinn.adi.sequence import ADISequence
    from sodinn.config import RocConfig, SampleConfig, load_toml
    from sodinn.detect.probability import UNEVALUATED_LOGIT
    from sodinn.evaluate.copies import load_model, run_copies
    from sodinn.evaluate.roc import _band_px, _flux_curve, best_f1, roc_injections, score_copies, tpr_at
    from sodinn.mlar.samples import sample_annuli, sample_psf

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="the TOML of the finished `sodinn roc` run ([data] and [roc] tables)")
    parser.add_argument("--members", nargs="+", required=True, help="names of the run's models to average")
    parser.add_argument("--name", default="ensemble", help="the ensemble's name in the printed table")
    args = parser.parse_args()

    path = Path(args.config).resolve()
    cfg = load_toml(path)
    base = path.parent
    data, table = cfg["data"], dict(cfg["roc"])
    models = {}
    for spec in table.pop("models"):
        name, _, folder = str(spec).rpartition("=")
        models[name] = str(base / folder)
    missing = [m for m in args.members if m not in models]
    if missing:
        parser.error(f"--members {missing} are not among the run's models {sorted(models)}")
    out = base / table.pop("output")
    config = RocConfig.from_dict(table)
    seq = ADISequence.from_fits(base / data["cube"], base / data["angles"], base / data["psf"],
                                fwhm_px=data.get("fwhm_px"), pixel_scale_arcsec=data.get("pixel_scale_arcsec"))
    members = {m: models[m] for m in args.members}
    psf = sample_psf(seq, SampleConfig())
    injections = roc_injections(seq, config, None if config.flux_range is not None else _flux_curve(seq, config, psf))
    bands_px = _band_px(config, config.lambda_d_px or seq.fwhm_px)
    maps = run_copies(seq, injections, psf, [bands_px[inj.band] for inj in injections], models=members, baselines=[],
                      cache_dir=out / "cache", resume=True, progress=False, known_sources_xy=config.known_sources_xy)
    for m in maps:
        stack = np.stack([m[name] for name in args.members])
        evaluated = np.all(stack > UNEVALUATED_LOGIT / 2, axis=0)
        m[args.name] = np.where(evaluated, stack.mean(axis=0), UNEVALUATED_LOGIT)
    names = [*args.members, args.name]
    edges = sample_annuli(seq, load_model(members[args.members[0]]).sample_config).edges_px
    rows = score_copies(seq, config, names, names, injections, maps, bands_px, dict.fromkeys(names, edges))
    bands = ["{:g}-{:g}".format(*b) for b in config.bands_lambda_d]
    print(f"TPR at <= 0.1 / <= 1 false positive per frame, bands {' / '.join(bands)} lambda/D; best single threshold")
    for method in [n for name in names for n in (name, f"{name}-cal")]:
        tprs = [f"{tpr_at(rows, method, b, 0.1):.2f}/{tpr_at(rows, method, b, 1.0):.2f}" for b in range(len(bands))]
        best = best_f1(rows, method)
        print(f"  {method:22s} {'  '.join(tprs)}   F1 {best['f1']:.2f} (TPR {best['tpr']:.2f}, FDR {best['fdr']:.2f}, "
              f"at {best['threshold']:g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
