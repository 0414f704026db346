"""Hard negatives (issue 14 ablation): C- samples drawn where a first model's null scores are highest.

A model trained on the default samples sees, as negatives, the residuals of every pixel derotated with
the negated angles (SPEC §3). This makes a new sample file from one made by ``sodinn samples``: in each
annulus a share of its C- samples is replaced by the patches a first model scores highest in null draws
of the same data derotated with randomly permuted angles (:func:`sodinn.detect.probability.null_angle_sets`,
the draws the calibration uses), the highest pixels above ``--min-logit`` (default 0: null pixels the first model calls companions) at
least ``--min-sep-fwhm`` apart within each draw, away from the
known sources' discs and from the arcs they trace in the draw. The replaced negatives are drawn at random
(seeded), so the file keeps its size and its balance: a model trained on it costs what the default costs.
The new negatives join the azimuthal sector group of their pixel (the group split of training).

Usage (about 3 min for NACO)::

    .venv/bin/python bench/hard_negatives.py configs/naco_betapic.toml out/naco_ablation/samples.h5 \\
        out/naco_ablation/model-s0 -o out/naco_ablation/samples-hard.h5 [--share 0.25 --draws 3 --seed 0]
    sodinn train out/naco_ablation/samples-hard.h5 -o out/naco_ablation/model-hard-s0 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]


def pick_peaks(logit: np.ndarray, pixels: np.ndarray, allowed: np.ndarray, n: int, min_sep_px: float) -> np.ndarray:
    """Return the indices of the ``n`` highest-scoring allowed pixels, each at least ``min_sep_px`` from those before it.

    Parameters
    ----------
    logit : ndarray, shape (n_pixels,)
        Scores.
    pixels : ndarray, shape (n_pixels, 2)
        (y, x) of each pixel.
    allowed : ndarray of bool, shape (n_pixels,)
        Pixels that may be picked.
    n : int
        How many to pick (fewer if the annulus runs out).
    min_sep_px : float
        Smallest distance between two picks, px.

    Returns
    -------
    ndarray of int
        Indices into the pixels, highest first.
    """
    chosen: list[int] = []
    for i in np.argsort(-np.where(allowed, logit, -np.inf)):
        if not allowed[i] or len(chosen) >= n:
            break
        if all(np.hypot(*(pixels[i] - pixels[j])) >= min_sep_px for j in chosen):
            chosen.append(int(i))
    return np.array(chosen, dtype=np.int64)


def main() -> int:
    from sodinn.adi.sequence import ADISequence
    from sodinn.config import load_toml
    from sodinn.detect.probability import _logits, annulus_features, null_angle_sets, null_arc_mask
    from sodinn.learn.artifact import load_trained
    from sodinn.mlar.samples import AnnulusSamples, _negative_groups, usable_mask
    from sodinn.mlar.store import SampleFile, _write

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="TOML with the [data] table of the sequence the samples were made from")
    parser.add_argument("samples", help="sample file made by `sodinn samples` from that sequence")
    parser.add_argument("model", help="the first model's folder (trained on those samples)")
    parser.add_argument("-o", "--output", required=True, help="the new sample file")
    parser.add_argument("--share", type=float, default=0.25, help="share of each annulus' C- samples replaced (0-1)")
    parser.add_argument("--draws", type=int, default=3, help="null draws with permuted angles")
    parser.add_argument("--min-logit", type=float, default=0.0,
                        help="only null pixels the first model scores above this logit (0: those it calls companions)")
    parser.add_argument("--min-sep-fwhm", type=float, default=0.5, help="smallest distance between two picks, FWHM")
    parser.add_argument("--seed", type=int, default=0, help="seeds the permutations and the replaced negatives")
    args = parser.parse_args()
    if not 0 < args.share <= 1:
        parser.error(f"--share must be in (0, 1]; got {args.share}")
    if args.draws < 1:
        parser.error(f"--draws must be >= 1; got {args.draws}")

    path = Path(args.config).resolve()
    data = load_toml(path)["data"]
    base = path.parent
    seq = ADISequence.from_fits(base / data["cube"], base / data["angles"], base / data["psf"],
                                fwhm_px=data.get("fwhm_px"), pixel_scale_arcsec=data.get("pixel_scale_arcsec"))
    model = load_trained(args.model)
    draws = null_angle_sets(seq.angles_deg, args.draws + 1, args.seed)[1:]  # the permutations, not the negated angles
    rng = np.random.default_rng(args.seed)
    with SampleFile(args.samples) as f:
        config, h = f.config, f._h5
        provenance, oracle = json.loads(h.attrs["provenance"]), json.loads(h.attrs["oracle"])
        raw = h["samples"][()]
        curves = h["snr_curves"][()] if "snr_curves" in h else None
        known = np.asarray(config.known_sources_xy, dtype=np.float64).reshape(-1, 2)
        usable = usable_mask(seq, config)
        annuli, replaced = [], 0
        for a in range(len(f.r_in_px)):
            own = np.nonzero(f.annulus == a)[0]
            r_in, r_out = float(f.r_in_px[a]), float(f.r_out_px[a])
            neg = own[f.labels[own] == 0]
            n_hard = int(round(args.share * neg.size))
            feats = annulus_features(seq, model.sample_config, r_in, r_out, null_angles=draws,
                                     snr_curves=model.needs_snr_curves or curves is not None, known_sources_xy=known)
            rows, cols = feats.pixels[:, 0], feats.pixels[:, 1]
            picks, medians = [], []
            for j, angles in enumerate(draws):
                arcs = null_arc_mask(usable.shape, known, seq.angles_deg, angles, seq.fwhm_px)
                allowed = usable[rows, cols] & ~arcs[rows, cols]
                null_curves = feats.null_snr_curves[j] if model.needs_snr_curves else None
                logit = _logits(model, feats.null_samples[j], null_curves, 512)
                share = n_hard // len(draws) + (j < n_hard % len(draws))
                medians.append(np.median(logit[allowed]))
                allowed &= logit > args.min_logit
                picks += [(j, i, logit[i]) for i in pick_peaks(logit, feats.pixels, allowed, share,
                                                             args.min_sep_fwhm * seq.fwhm_px)]
            drop = rng.choice(neg, size=len(picks), replace=False)
            keep = np.setdiff1d(own, drop)
            hy = np.array([feats.pixels[i, 0] for _, i, _ in picks], dtype=np.float64)
            hx = np.array([feats.pixels[i, 1] for _, i, _ in picks], dtype=np.float64)
            shape = feats.null_samples[0].shape[1:]
            hard = np.array([feats.null_samples[j][i] for j, i, _ in picks], dtype=np.float32).reshape(-1, *shape)
            hard_curves = (np.array([feats.null_snr_curves[j][i] for j, i, _ in picks]).reshape(len(picks), -1)
                           if curves is not None else None)
            annuli.append(AnnulusSamples(
                index=a, r_in_px=r_in, r_out_px=r_out, ks=f.ks[a], flux_range=tuple(map(float, f.flux_range[a])),
                samples=np.concatenate([raw[keep], hard]), labels=np.r_[f.labels[keep], np.zeros(len(picks), np.int8)],
                x=np.r_[f.x[keep], hx], y=np.r_[f.y[keep], hy], flux=np.r_[f.flux[keep], np.zeros(len(picks))],
                group=np.r_[f.group[keep], _negative_groups(a, r_in, r_out, config.patch_px, hx, hy, seq.cube.shape)],
                augmented=np.r_[f.augmented[keep], np.zeros(len(picks), dtype=bool)],
                snr_curves=None if curves is None else np.concatenate([curves[keep], hard_curves]).astype(np.float32)))
            replaced += len(picks)
            print(f"annulus {a} ({r_in:.1f}-{r_out:.1f} px): {len(picks)} of {neg.size} C- replaced by hard negatives; the "
                  f"first model's null logit there {min([p[2] for p in picks], default=np.nan):.1f} to "
                  f"{max([p[2] for p in picks], default=np.nan):.1f} (median of the draws {np.median(medians):.1f})")
    provenance["hard_negatives"] = {"source": str(Path(args.samples).resolve()), "model": str(Path(args.model).resolve()),
                                    "share": args.share, "draws": args.draws, "seed": args.seed, "replaced": replaced}
    _write(annuli, config, provenance, oracle, Path(args.output))
    print(f"{replaced} C- samples replaced; {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
