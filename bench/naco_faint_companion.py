"""Does the default pipeline find, on real data, a faint companion that PCA-ADI misses? (issues 14 and 15)

The demo's point (issue 15) is a companion near annular-PCA S/N 2 that PCA-ADI misses and the model
finds. This script asks it of the real VLT/NACO beta Pic sequence, where the model was trained:

1. a fake companion "B" is injected at ``--sep-lambda-d`` (lambda/D = the FWHM) and ``--theta``
   (degrees counter-clockwise from +x, in the frames derotated with the file's angles), with the flux
   that gives annular-PCA S/N ``--snr`` by the S/N oracle of the sample generator
   (:class:`sodinn.mlar.flux.FluxRangeEstimator`, ``--oracle-ncomp`` components, 6 azimuths, beta
   Pic b out of its apertures); the cube with B is written as FITS;
2. annular PCA-ADI at 3, 5, 10 and 20 components: B's S/N (Mawet 2014, negative lobes and b's
   neighbourhood out of the noise apertures) and the highest S/N-map value elsewhere in the field;
3. the default pipeline of ``configs/naco_betapic.toml`` on the cube with B, each stage the command
   line (``samples``, ``train``, ``predict``; beta Pic b is the only known source: B is unknown to it);
4. the model's level at B (expected false positives per frame, significance, probability) against the
   rest of B's 1-FWHM ring, and the candidate table's first rows.

Usage (about 7 minutes on 2 cores; ``--quick``, 2 minutes, is a smoke run, not a measurement)::

    .venv/bin/python bench/naco_faint_companion.py --sep-lambda-d 3.5 --snr 2 [--output out/naco_faint]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]  # this checkout's sodinn, as the stages' `python -m sodinn.cli` use

from bench_pipeline import BETA_PIC_B_XY, run_stage  # noqa: E402

RANKS = (3, 5, 10, 20)


def inject_b(data_dir: Path, out: Path, *, sep_lambda_d: float, theta_deg: float, snr: float, oracle_ncomp: int) -> dict:
    """Write the NACO sequence with B to ``out/data``; return B's position, flux and the oracle's settings."""
    from sodinn.adi.geometry import frame_center
    from sodinn.adi.injection import cube_inject_companions
    from sodinn.adi.io import read_fits, write_fits
    from sodinn.adi.sequence import ADISequence
    from sodinn.mlar.flux import FluxRangeEstimator

    seq = ADISequence.from_fits(data_dir / "cube.fits", data_dir / "angles.fits", data_dir / "psf.fits",
                                pixel_scale_arcsec=0.0272)
    sep_px = sep_lambda_d * seq.fwhm_px
    oracle = FluxRangeEstimator((snr, snr + 1.0), ncomp=oracle_ncomp, n_azimuths=6, rng=0).fit(
        seq.cube, seq.angles_deg, seq.psf_normalized, seq.fwhm_px, [sep_px], exclude_xy=[BETA_PIC_B_XY],
        exclude_radius_px=2.0 * seq.fwhm_px)
    flux = float(oracle.flux_range_[0, 0])
    cube = cube_inject_companions(seq.cube, seq.psf_normalized, seq.angles_deg, sep_px=sep_px, theta_deg=theta_deg,
                                  flux=flux)
    data = out / "data"
    data.mkdir(parents=True)
    provenance = {"source": str(data_dir / "cube.fits"), "fake_companion": f"sep {sep_px:.2f} px, theta {theta_deg} deg, "
                  f"flux {flux:.2f}"}
    write_fits(data / "cube.fits", cube.astype(np.float32), provenance=provenance)
    write_fits(data / "angles.fits", read_fits(data_dir / "angles.fits"))
    write_fits(data / "psf.fits", read_fits(data_dir / "psf.fits"))
    cy, cx = frame_center(seq.cube.shape)
    xy = (cx + sep_px * np.cos(np.radians(theta_deg)), cy + sep_px * np.sin(np.radians(theta_deg)))
    return {"sep_px": sep_px, "theta_deg": theta_deg, "flux": flux, "x": float(xy[0]), "y": float(xy[1]),
            "fwhm_px": seq.fwhm_px, "oracle_snr": snr, "oracle_ncomp": oracle_ncomp}


def pca_snr(out: Path, b: dict) -> list[tuple[int, float, float]]:
    """Annular PCA-ADI at :data:`RANKS`: (ncomp, S/N at B, highest S/N-map value elsewhere beyond 1 FWHM)."""
    from sodinn.adi.baselines import pca_annular
    from sodinn.adi.geometry import polar_coordinates
    from sodinn.adi.io import read_fits
    from sodinn.adi.snr import snr, snr_map

    cube, angles = read_fits(out / "data" / "cube.fits"), read_fits(out / "data" / "angles.fits").ravel()
    fwhm = b["fwhm_px"]
    yy, xx = np.indices(cube.shape[1:])
    elsewhere = ((polar_coordinates(cube.shape)[0] >= fwhm) & (np.hypot(xx - b["x"], yy - b["y"]) > fwhm)
                 & (np.hypot(xx - BETA_PIC_B_XY[0], yy - BETA_PIC_B_XY[1]) > 2 * fwhm))
    rows = []
    for ncomp in RANKS:
        frame = pca_annular(cube, angles, fwhm, ncomp=ncomp)
        s = snr(frame, (b["x"], b["y"]), fwhm, exclude_negative_lobes=True, exclude_xy=[BETA_PIC_B_XY],
                exclude_radius_px=2 * fwhm)
        rows.append((ncomp, float(s), float(np.nanmax(snr_map(frame, fwhm)[elsewhere]))))
    return rows


def model_at_b(out: Path, b: dict) -> dict:
    """The model's level at B (within 2 px) and the best level elsewhere on B's 1-FWHM ring."""
    from astropy.table import Table

    from sodinn.adi.geometry import polar_coordinates
    from sodinn.adi.io import read_fits

    pred = out / "predict"
    sig, fp, prob = (read_fits(pred / f"{n}.fits") for n in ("significance_map", "false_alarm_map", "probability_map"))
    yy, xx = np.indices(sig.shape)
    at_b = np.hypot(xx - b["x"], yy - b["y"]) <= 2.0
    ring = (np.abs(polar_coordinates(sig.shape)[0] - b["sep_px"]) < b["fwhm_px"] / 2) & ~at_b
    table = Table.read(pred / "candidates.ecsv")
    dist = np.hypot(np.asarray(table["x"]) - b["x"], np.asarray(table["y"]) - b["y"]) if len(table) else np.array([])
    hit = np.flatnonzero(dist < b["fwhm_px"] / 2)
    return {"fp_at_b": float(np.nanmin(fp[at_b])), "sigma_at_b": float(np.nanmax(sig[at_b])),
            "p_at_b": float(np.nanmax(prob[at_b])), "p_ring_max": float(np.nanmax(prob[ring])),
            "sigma_ring_max": float(np.nanmax(sig[ring])), "n_candidates": len(table),
            "b_rank": int(hit[0]) + 1 if hit.size else None, "table": table}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "naco_betapic"),
                        help="folder with cube.fits, angles.fits, psf.fits")
    parser.add_argument("--sep-lambda-d", type=float, default=3.5, help="B's separation, lambda/D (= FWHM)")
    parser.add_argument("--theta", type=float, default=227.0,
                        help="B's angle, degrees counter-clockwise from +x (default: opposite beta Pic b)")
    parser.add_argument("--snr", type=float, default=2.0, help="B's annular-PCA S/N by the oracle")
    parser.add_argument("--oracle-ncomp", type=int, default=10, help="components of the oracle's annular PCA")
    parser.add_argument("--output", default=str(REPO / "out" / "naco_faint"), help="scratch folder (remade)")
    parser.add_argument("--quick", action="store_true", help="150 samples per annulus, 10 ranks, 2 epochs (smoke run)")
    args = parser.parse_args()

    out = Path(args.output)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    b = inject_b(Path(args.data), out, sep_lambda_d=args.sep_lambda_d, theta_deg=args.theta, snr=args.snr,
                 oracle_ncomp=args.oracle_ncomp)
    (out / "B.json").write_text(json.dumps(b, indent=1))
    print(f"B: {b['sep_px']:.2f} px ({args.sep_lambda_d} lambda/D), theta {args.theta} deg, (x, y) = "
          f"({b['x']:.2f}, {b['y']:.2f}), flux {b['flux']:.1f} ADU (oracle: annular PCA {args.oracle_ncomp} PCs, "
          f"S/N {args.snr})")
    print("annular PCA-ADI:  ncomp | S/N at B | highest S/N-map value elsewhere (beyond 1 FWHM, b out)")
    for ncomp, s, elsewhere in pca_snr(out, b):
        print(f"                 {ncomp:5d} | {s:8.2f} | {elsewhere:6.2f}")

    config = str(REPO / "configs" / "naco_betapic.toml")
    data = ["--cube", str(out / "data" / "cube.fits"), "--angles", str(out / "data" / "angles.fits"),
            "--psf", str(out / "data" / "psf.fits")]
    quick_samples = ["--per-annulus", "150", "--ranks", "10"] if args.quick else []
    quick_train = ["--epochs", "2"] if args.quick else []
    stages = [run_stage("samples", ["--config", config, *data, "--output", str(out / "samples.h5"), "--no-resume",
                                     *quick_samples], out),
              run_stage("train", ["--config", config, str(out / "samples.h5"), "--output", str(out / "model"), "--no-resume",
                                   *quick_train], out),
              run_stage("predict", ["--config", config, *data, str(out / "model"), "--output", str(out / "predict")], out)]
    print(f"pipeline (samples, train, predict): {' + '.join(f'{s.wall_s:.0f}' for s in stages)} s")
    m = model_at_b(out, b)
    print(f"model at B: {m['fp_at_b']:.3g} expected false positives per frame ({m['sigma_at_b']:.2f} sigma), "
          f"P = {m['p_at_b']:.6f}; elsewhere on B's ring: P up to {m['p_ring_max']:.6f}, up to "
          f"{m['sigma_ring_max']:.2f} sigma")
    found = f"candidate #{m['b_rank']}" if m["b_rank"] else "not a candidate"
    print(f"B is {found}; {m['n_candidates']} candidate(s) within the budget of configs/naco_betapic.toml")
    if len(m["table"]):
        m["table"][["id", "x", "y", "sep_arcsec", "expected_fp", "significance_sigma", "peak_probability", "snr"]][:5].pprint(max_width=120)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
