"""What the self-calibration's changes of 2026-12-01 do on the NACO beta Pic map: candidates of each model, blind and b masked.

Usage: ``python bench/naco_self_calibration.py MODEL_FOLDER [MODEL_FOLDER ...]`` (models trained on the NACO
beta Pic sequence, e.g. ``out/naco_ablation/model-s0`` made by the commands at the top of
``configs/naco_ablation.toml``). Scores the real map once per model
(:func:`sodinn.detect.probability.probability_map`), then calibrates it on its own blobs
(:func:`sodinn.detect.calibration.calibrate_self`) as before 2026-12-01 (each blob in its own tail, the tail's scale
taken as exact, a tail per annulus), with each of the two changes of that day alone, as on 2026-12-01 (both), with
one tail for the field on logits standardized per annulus (commit 136d098), and as today (that, and the step-down that
leaves blobs it finds significant out of the null sample, ``source_fp``) (:data:`VARIANTS`), blind (no known source)
and with beta Pic b masked (2 FWHM, as ``configs/naco_betapic.toml``), and prints the candidates within
1 and 0.1 expected false positives per frame (position, level), beta Pic b's rank, and the annular PCA-ADI
S/N (10 components) at each candidate. About 30 s per model on 2 cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from bench_pipeline import BETA_PIC_B_XY as BETA_PIC_B

from sodinn.adi.baselines import pca_annular
from sodinn.adi.sequence import ADISequence
from sodinn.adi.snr import snr
from sodinn.detect.calibration import calibrate_self
from sodinn.detect.candidates import find_calibrated_candidates
from sodinn.detect.probability import probability_map
from sodinn.learn.artifact import load_trained

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "naco_betapic"
#: The self-calibrations compared: before 2026-12-01, each change of that day alone, 2026-12-01, the field tail, today's default
VARIANTS = {
    "before (in own tail, exponential)": {"leave_one_out": False, "tail_law": "exponential", "pool": "annulus", "source_fp": None},
    "leave-out, exponential           ": {"leave_one_out": True, "tail_law": "exponential", "pool": "annulus", "source_fp": None},
    "in own tail, predictive          ": {"leave_one_out": False, "tail_law": "predictive", "pool": "annulus", "source_fp": None},
    "12-01 (leave-out, predictive)    ": {"leave_one_out": True, "tail_law": "predictive", "pool": "annulus", "source_fp": None},
    "12-01, one field tail            ": {"leave_one_out": True, "tail_law": "predictive", "pool": "field", "source_fp": None},
    "default (field tail, step-down)  ": {"leave_one_out": True, "tail_law": "predictive", "pool": "field"},
}


def main(models: list[str]) -> None:
    """Print, per model, the candidates of each calibration variant (module docstring)."""
    seq = ADISequence.from_fits(DATA / "cube.fits", DATA / "angles.fits", DATA / "psf.fits", pixel_scale_arcsec=0.0272)
    frame = pca_annular(seq.cube, seq.angles_deg, seq.fwhm_px, ncomp=10)
    print("model | known sources | calibration | budget: candidates (x, y) expected FP/frame [annular PCA S/N, 10 PCs]; b's rank")
    for folder in models:
        pmap = probability_map(seq, load_trained(folder), progress=False)
        for known in ([], [BETA_PIC_B]):
            for variant, settings in VARIANTS.items():
                cal = calibrate_self(pmap, seq.fwhm_px, known_sources_xy=known, **settings)
                for budget in (1.0, 0.1):
                    table = find_calibrated_candidates(pmap, cal, budget)
                    dist = np.hypot(np.asarray(table["x"]) - BETA_PIC_B[0], np.asarray(table["y"]) - BETA_PIC_B[1])
                    rank = int(np.argmax(dist <= seq.fwhm_px)) + 1 if np.any(dist <= seq.fwhm_px) else None
                    rows = "; ".join(f"({r['x']:.0f}, {r['y']:.0f}) {r['expected_fp']:.2g} [{_snr(frame, r, seq.fwhm_px):.1f}]"
                                     for r in table)
                    print(f"{Path(folder).name} | {'b masked' if known else 'blind':8s} | {variant} | "
                          f"<= {budget:g}: {len(table)} candidate(s) {rows}; b's rank {rank}")


def _snr(frame: np.ndarray, row, fwhm_px: float) -> float:
    """Annular PCA-ADI S/N at a candidate, beta Pic b's neighbourhood out of the noise apertures."""
    return snr(frame, (float(row["x"]), float(row["y"])), fwhm_px, exclude_xy=[BETA_PIC_B], exclude_radius_px=2 * fwhm_px)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.split("\n\n")[1])
    main(sys.argv[1:])
