"""Detection limits on the NACO beta Pic sequence (the report in results/naco_betapic/limits/).

The classical 5-sigma annular PCA-ADI curve (small-sample corrected), and the flux at which the SODINN
model and annular PCA-ADI detect 95 % of fake companions, per separation, on the same copies. The
model's threshold is its calibrated one for 0.1 expected false positive per frame (sodinn.detect.calibration),
per annulus; annular PCA-ADI uses S/N 5. Needs the model of configs/naco_betapic_roc.toml. Usage::

    .venv/bin/python bench/naco_limits.py [--copies 10] [--fp 0.1]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10, help="copies per flux level and separation")
    parser.add_argument("--fp", type=float, default=0.1, help="expected false positives per frame of the model's threshold")
    parser.add_argument("--model", default=str(REPO / "out" / "naco_report" / "model-sodinn"))
    parser.add_argument("--naco-dir", default=str(REPO.parent / "shared" / "data" / "naco_betapic"))
    parser.add_argument("--output", default=str(REPO / "results" / "naco_betapic" / "limits"))
    parser.add_argument("--cache", default=str(REPO / "results" / "naco_betapic" / "limits" / "cache"),
                        help="maps of finished copies (shared by runs with other thresholds)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from sodinn.adi.sequence import ADISequence
    from sodinn.config import LimitConfig
    from sodinn.detect.calibration import calibrate
    from sodinn.evaluate.contrast import classical_contrast_curve
    from sodinn.evaluate.limits import detection_limits
    from sodinn.learn.artifact import load_trained
    from sodinn.pipeline.limits import write_limits

    d = Path(args.naco_dir)
    seq = ADISequence.from_fits(d / "cube.fits", d / "angles.fits", d / "psf.fits", pixel_scale_arcsec=0.0272)
    sources = ((62.0, 63.0),)
    start = time.perf_counter()
    classical = classical_contrast_curve(seq, known_sources_xy=sources)
    config = LimitConfig(copies_per_flux=args.copies, known_sources_xy=sources, seed=0)
    cal = calibrate(seq, load_trained(args.model), n_null=4, seed=0)
    per_annulus = cal.thresholds(args.fp)
    seps = np.asarray(config.separations_lambda_d) * seq.fwhm_px
    idx = np.clip(np.searchsorted(cal.edges_px, seps, side="right") - 1, 0, len(per_annulus) - 1)
    thresholds = [float(per_annulus[i]) for i in idx]
    print("calibrated probability thresholds for", args.fp, "FP/frame:", dict(zip(config.separations_lambda_d, thresholds)))
    limits = detection_limits(seq, config, {"sodinn": args.model}, thresholds={"sodinn": thresholds},
                              cache_dir=args.cache)
    write_limits(args.output, classical=classical, limits=limits)
    print(f"done in {time.perf_counter() - start:.0f} s; outputs in {args.output}")
    for line in (Path(args.output) / "detection_limits.csv").read_text().splitlines():
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
