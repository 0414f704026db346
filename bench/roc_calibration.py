"""Score a finished ROC run's calibrated models both ways: each copy self-calibrated on its whole field, or on its band alone.

``sodinn roc`` calibrates each copy's map on its own blobs over the whole field (the copy's band within the
model's map of the data, :class:`sodinn.evaluate.roc.DataMap`, as a user's map is calibrated; since
2026-12-02); before, each copy was calibrated on its band's annuli alone (a few dozen blobs, the injected
companion among them). This reads the run's cached maps back and scores the run's models both ways with
:func:`sodinn.evaluate.roc.score_copies` (same maps, same targets), and prints for each way and model the
TPR at <= 0.1 / <= 1 false positive per frame per band, the best single threshold over all bands (F1, TPR,
FDR), how many of its levels lie within the Poisson 95 % range of their count
(:func:`sodinn.evaluate.roc.calibration_checks`), and the run's calibration check.

Usage (after ``sodinn roc CONFIG`` finished; about 3 minutes for two models on 2 cores)::

    .venv/bin/python bench/roc_calibration.py CONFIG --models sodinn-s0 sodinn-s3 [--output DIR]

``--output DIR`` reads the run from ``DIR`` instead of the config's ``[roc] output`` (a run made with ``-o``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]


def main() -> int:
    from roc_ensemble import load_run

    from sodinn.evaluate.roc import DataMap, best_f1, calibration_checks, score_copies, summarize, tpr_at

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="the TOML of the finished `sodinn roc` run ([data] and [roc] tables)")
    parser.add_argument("--models", nargs="+", required=True, help="names of the run's models to score")
    parser.add_argument("--output", help="the run's folder, if not the config's [roc] output")
    args = parser.parse_args()

    run = load_run(args.config, args.models, error=parser.error, flag="--models", data=True, output=args.output)
    models = list(run["models"])
    bands = ["{:g}-{:g}".format(*b) for b in run["config"].bands_lambda_d]
    ways = {"whole field (DataMap, the default)": {m: DataMap(run["edges_px"], run["data"][m]) for m in models},
            "band alone (before 2026-12-02)": dict.fromkeys(models, run["edges_px"])}
    for way, calibrations in ways.items():
        rows = score_copies(run["sequence"], run["config"], models, models, run["injections"], run["maps"], run["bands_px"],
                            calibrations)
        print(f"== each copy calibrated on its {way}")
        print(f"TPR at <= 0.1 / <= 1 false positive per frame, bands {' / '.join(bands)} lambda/D; best single threshold; "
              "levels within the Poisson 95% range of their count")
        for m in models:
            method = f"{m}-cal"
            tprs = "  ".join(f"{tpr_at(rows, method, b, 0.1):.2f}/{tpr_at(rows, method, b, 1.0):.2f}" for b in range(len(bands)))
            best = best_f1(rows, method)
            checks = calibration_checks([r for r in rows if r["method"] == method and r["kind"] == "calibrated"])
            print(f"  {method:16s} {tprs}   F1 {best['f1']:.2f} (TPR {best['tpr']:.2f}, FDR {best['fdr']:.2f}, at "
                  f"{best['threshold']:g})   {sum(c['ok'] for c in checks)} of {len(checks)}")
        summary = summarize(rows, [n for m in models for n in (m, f"{m}-cal")])
        print(summary[summary.index("Calibration check"):])
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
