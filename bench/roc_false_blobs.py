"""Where a ROC run's false positives come from: the highest false peak of every copy, by band (issue 14).

The ROC's copies are one cube with one companion injected in each, so they share one realisation of
the residual speckle: the false blobs that set a method's threshold at a low false-positive rate are the
same few blobs in every copy. This reads a finished ``sodinn roc`` run's cached maps back
(``bench/roc_ensemble.py``'s reader) and prints, for each method and band, where the highest peak of
each copy lies outside its injection's disc (1 FWHM) and the known sources' (``mask_radius_fwhm``):
the share of copies whose highest false peak is at the most common place (within 1 FWHM) and at the
three most common places, the median level of that peak, and the share of copies whose injection's own
peak (within 1 FWHM of it) is above it -- the TPR at a threshold no false peak of that copy reaches.
A method's ROC at <= 0.1 false positive per frame then measures how it ranks a handful of fixed
residual blobs of this cube, not a false-alarm rate over many noise realisations.

With ``--halves``, the S/N of annular PCA-ADI (10 components) at every place printed is also measured on
the whole sequence (no injection) and on its first and second halves: a blob that holds in both halves
is persistent in the sky frame (a faint real structure, or a residual that survives derotation), one that
does not is a fluctuation of this realisation.

Usage (after ``sodinn roc CONFIG`` finished; about a minute per method)::

    .venv/bin/python bench/roc_false_blobs.py configs/naco_ablation.toml --methods sodinn-s0 sodinn-s1 annular-10
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]


def highest_false_peaks(frames: list[np.ndarray], injections_xy: np.ndarray, region: np.ndarray, fwhm_px: float,
                        known_sources_xy: np.ndarray, mask_radius_fwhm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return each copy's highest peak in ``region`` away from its injection and the known sources, and its injection's own peak.

    Parameters
    ----------
    frames : list of ndarray, shape (N, N)
        One detection map per copy (NaN or the unevaluated floor where not evaluated).
    injections_xy : ndarray, shape (n_copies, 2)
        Each copy's injected companion (x, y), px.
    region : ndarray of bool, shape (N, N)
        The band's pixels.
    fwhm_px : float
        FWHM, px: the injection's disc radius.
    known_sources_xy : ndarray, shape (m, 2)
        Known real sources (x, y), px, left out within ``mask_radius_fwhm`` FWHM.
    mask_radius_fwhm : float
        Radius of the known sources' discs, FWHM.

    Returns
    -------
    xy : ndarray, shape (n_copies, 2)
        Position of the highest false peak, px.
    level : ndarray, shape (n_copies,)
        Its value in the map's units.
    own : ndarray, shape (n_copies,)
        The highest value within 1 FWHM of the injection.
    """
    from sodinn.detect.scoring import disc_mask

    allowed = region.copy()
    for x, y in np.asarray(known_sources_xy, dtype=np.float64).reshape(-1, 2):
        allowed &= ~disc_mask(region.shape, x, y, mask_radius_fwhm * fwhm_px)
    xy, level, own = np.zeros((len(frames), 2)), np.zeros(len(frames)), np.zeros(len(frames))
    for i, (frame, (x, y)) in enumerate(zip(frames, injections_xy, strict=True)):
        frame = np.nan_to_num(np.asarray(frame, dtype=np.float64), nan=-np.inf)
        disc = disc_mask(region.shape, x, y, fwhm_px)
        masked = np.where(allowed & ~disc, frame, -np.inf)
        iy, ix = np.unravel_index(np.argmax(masked), masked.shape)
        xy[i], level[i] = (ix, iy), masked[iy, ix]
        own[i] = np.max(np.where(disc, frame, -np.inf))
    return xy, level, own


def recurring_places(xy: np.ndarray, radius_px: float, n: int = 3) -> list[tuple[float, float, int]]:
    """Return the ``n`` places (x, y, copies) that hold the most of the points ``xy`` within ``radius_px``, greedily."""
    left = np.ones(len(xy), dtype=bool)
    places = []
    for _ in range(n):
        if not left.any():
            break
        near = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1]) <= radius_px
        counts = (near & left[None, :]).sum(axis=1) * left
        best = int(np.argmax(counts))
        places.append((float(xy[best, 0]), float(xy[best, 1]), int(counts[best])))
        left &= ~near[best]
    return places


def main() -> int:
    from roc_ensemble import load_run

    from sodinn.adi.geometry import polar_coordinates

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="the TOML of the finished `sodinn roc` run ([data] and [roc] tables)")
    parser.add_argument("--methods", nargs="+", required=True, help="the run's models or baselines (at least one model)")
    parser.add_argument("--halves", action="store_true",
                        help="also the annular PCA-ADI (10 PCs) S/N at each place on the whole sequence and each half")
    args = parser.parse_args()

    run = load_run(args.config, args.methods, error=parser.error, flag="--methods")
    seq, config, injections, maps = run["sequence"], run["config"], run["injections"], run["maps"]
    r = polar_coordinates(seq.cube.shape)[0]
    fwhm = seq.fwhm_px
    every_place = []
    print("highest false peak of each copy (away from its injection and the known sources): share of copies at the most "
          "common place / at the three most common (within 1 FWHM), its median level, and the share of copies whose "
          "injection peaks above it")
    for b, (lo, hi) in enumerate(run["bands_px"]):
        picks = [i for i, inj in enumerate(injections) if inj.band == b]
        xy_inj = np.array([(injections[i].x, injections[i].y) for i in picks])
        band = "{:g}-{:g}".format(*config.bands_lambda_d[b])
        for name in args.methods:
            xy, level, own = highest_false_peaks([maps[i][name] for i in picks], xy_inj, (r >= lo) & (r < hi), fwhm,
                                                 np.asarray(config.known_sources_xy), config.mask_radius_fwhm)
            places = recurring_places(xy, fwhm)
            every_place += [(x, y) for x, y, _ in places]
            where = ", ".join(f"({x:.0f}, {y:.0f}) {c}" for x, y, c in places)
            print(f"  {band:6s} {name:16s} {places[0][2] / len(picks):4.0%} / {sum(p[2] for p in places) / len(picks):4.0%}"
                  f"  level {np.median(level):7.2f}  injection above it {np.mean(own > level):4.0%}   places (x, y) copies: {where}")
    if args.halves:
        print_halves(seq, sorted(set(every_place)))
    return 0


def print_halves(seq, places: list[tuple[float, float]], ncomp: int = 10) -> None:
    """Print the annular PCA-ADI S/N at ``places`` (x, y) on the whole sequence and on each half of its frames."""
    from sodinn.adi.baselines import parse_method
    from sodinn.adi.geometry import polar_coordinates
    from sodinn.adi.snr import snr_map
    from sodinn.exceptions import RotationWarning

    baseline, _ = parse_method(f"annular-{ncomp}")
    n = len(seq.angles_deg)
    maps = {}
    for name, part in (("whole", slice(None)), ("first half", slice(0, n // 2)), ("second half", slice(n // 2, None))):
        with warnings.catch_warnings():  # a half rotates less; the places lie beyond 1 FWHM, where the analysis starts
            warnings.simplefilter("ignore", RotationWarning)
            frame = baseline.reduce(np.asarray(seq.cube)[part], seq.angles_deg[part], seq.fwhm_px, ncomp=ncomp,
                                    r_in_px=seq.fwhm_px)
        maps[name] = snr_map(frame, seq.fwhm_px)
    r = polar_coordinates(seq.cube.shape)[0]
    print(f"annular PCA-ADI ({ncomp} PCs) S/N at each place, whole sequence / first half / second half:")
    for x, y in places:
        row, col = int(round(y)), int(round(x))
        values = " / ".join(f"{m[row, col]:5.1f}" for m in maps.values())
        print(f"  ({x:.0f}, {y:.0f}) sep {r[row, col]:5.1f} px: {values}")


if __name__ == "__main__":
    raise SystemExit(main())
