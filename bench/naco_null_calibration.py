"""Does the self-calibration keep its budget on real null data? Null draws of the NACO beta Pic map, each calibrated on itself.

Usage: ``python bench/naco_null_calibration.py [--nulls 8] [--cache DIR] MODEL_FOLDER [MODEL_FOLDER ...]`` (models
trained on the NACO beta Pic sequence, e.g. ``out/naco_ablation/model-s0`` made by the commands at the top of
``configs/naco_ablation.toml``).

For each model, :func:`sodinn.detect.probability.probability_map` scores the real sequence and ``--nulls`` null
draws of it (the first with negated parallactic angles, the others with randomly permuted angles, seed 1;
beta Pic b's arcs left out): whole-field maps of the model's response to these residuals with no companion in
them. Each null map is then calibrated on its own blobs (:func:`sodinn.detect.calibration.calibrate_self`, as
``sodinn predict`` calibrates the real map) with one tail per annulus (``pool="annulus"``, sodinn of
2026-12-01), with one tail for the field on logits standardized per annulus (``pool="field"``, commit 136d098) and
as today (that, and the step-down that leaves blobs it finds significant out of the null sample, ``source_fp``)
(:data:`VARIANTS`), thresholded at budgets F of expected false positives per frame, and its blobs (4-connected,
2 pixels or more, the candidates' rule) are counted as the ROC counts them: every one is a false positive. Printed per variant and kind
of draw: the counted false positives per frame against F with the 95 % Poisson interval of the count, and per
annulus the counted share against the area share F * A_a / A.

The null maps of each model are kept in ``--cache`` (``nulls_<model folder name>.npz``) and reused: about
2-3 minutes per model on 2 cores to make them, seconds to count.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from bench_pipeline import BETA_PIC_B_XY
from scipy import stats
from scipy.special import expit

from sodinn.adi.geometry import polar_coordinates
from sodinn.adi.sequence import ADISequence
from sodinn.detect.calibration import calibrate_self
from sodinn.detect.probability import UNEVALUATED_LOGIT, ProbabilityMap, probability_map
from sodinn.detect.scoring import score_blobs
from sodinn.learn.artifact import load_trained

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "naco_betapic"
BUDGETS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
#: The self-calibrations compared (settings of :func:`sodinn.detect.calibration.calibrate_self`)
VARIANTS = {"annulus": {"pool": "annulus", "source_fp": None}, "field": {"pool": "field", "source_fp": None}, "default": {}}


def null_maps(folder: str, cache: Path, n_null: int) -> dict[str, np.ndarray]:
    """Return the model's null logit maps of the NACO sequence (and edges, FWHM), made once and kept in ``cache``."""
    path = cache / f"nulls_{Path(folder).name}.npz"
    if not path.exists():
        seq = ADISequence.from_fits(DATA / "cube.fits", DATA / "angles.fits", DATA / "psf.fits", pixel_scale_arcsec=0.0272)
        pmap = probability_map(seq, load_trained(folder), progress=False, n_null=n_null, seed=1,
                               known_sources_xy=[BETA_PIC_B_XY])
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path.with_suffix(".tmp.npz"), null=pmap.null_logit, edges=pmap.edges_px, fwhm=seq.fwhm_px)
        path.with_suffix(".tmp.npz").replace(path)
    with np.load(path) as f:
        return {"null": f["null"][:n_null], "edges": f["edges"], "fwhm": float(f["fwhm"])}


def count_false_positives(null: np.ndarray, edges: np.ndarray, fwhm_px: float, settings: dict) -> np.ndarray:
    """Calibrate one null map on itself and count its blobs at each budget, per annulus: shape (len(BUDGETS), n_annuli)."""
    evaluated = null > UNEVALUATED_LOGIT / 2
    pmap = ProbabilityMap(logit=null, probability=expit(null), evaluated=evaluated, edges_px=edges,
                          ks=np.zeros((len(edges) - 1, 1)))
    score = calibrate_self(pmap, fwhm_px, **settings).score_map(null)
    r = polar_coordinates(null.shape)[0]
    out = np.zeros((len(BUDGETS), len(edges) - 1))
    for j, budget in enumerate(BUDGETS):
        for a in range(len(edges) - 1):  # the ROC's count (sodinn.detect.scoring.score_blobs), annulus by annulus
            region = (r >= edges[a]) & (r < edges[a + 1])
            out[j, a] = score_blobs(score, -math.log10(budget), [], fwhm_px, npix=2, region=region).false_positives
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the counted false positives of self-calibrated null maps against their budgets (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--nulls", type=int, default=8, help="null draws per model (the first with negated angles)")
    parser.add_argument("--cache", type=Path, default=Path("out/naco_null_calibration"))
    args = parser.parse_args(argv)
    counts: dict[tuple[str, str], list[np.ndarray]] = {}
    shares = None
    for folder in args.models:
        maps = null_maps(folder, args.cache, args.nulls)
        r = polar_coordinates(maps["null"].shape[1:])[0]
        edges = maps["edges"]
        reference = maps["null"][min(1, len(maps["null"]) - 1)]  # a permuted draw where there is one (--nulls 1: the negated)
        inside = (reference > UNEVALUATED_LOGIT / 2) & (r >= edges[0]) & (r < edges[-1])
        areas = np.array([(inside & (r >= edges[a]) & (r < edges[a + 1])).sum() for a in range(len(edges) - 1)])
        shares = areas / areas.sum()
        for j, null in enumerate(maps["null"]):
            kind = "negated" if j == 0 else "permuted"
            for variant, settings in VARIANTS.items():
                counts.setdefault((variant, kind), []).append(count_false_positives(null, edges, maps["fwhm"], settings))
    print(f"{len(args.models)} model(s), {args.nulls} null draws each; false positives per frame counted on null maps "
          "calibrated on themselves, against the budget F")
    print("variant | draws       | F: counted [95% Poisson interval of the count / frames]; per annulus counted / (F x area share)")
    for (variant, kind), rows in sorted(counts.items()):
        c = np.array(rows)  # frames x budgets x annuli
        n = len(c)
        for j, budget in enumerate(BUDGETS):
            total = c[:, j].sum()
            lo, hi = stats.poisson.interval(0.95, budget * n)
            ratio = c[:, j].sum(axis=0) / n / (budget * shares)
            print(f"{variant:7s} | {kind:8s} {n:3d} | F = {budget:<4g}: {total / n:.3f} [{lo / n:.3f}, {hi / n:.3f}]; "
                  f"per annulus {' '.join(f'{x:.1f}' for x in ratio)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
