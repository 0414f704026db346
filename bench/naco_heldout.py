"""The held-out check of issue 14: the NACO beta Pic sequence with beta Pic b removed, and a configuration for it.

Issue 14 checks the default detector on a companion-free copy of the NACO sequence (beta Pic b removed, kept
aside from tuning): a model trained with the default configuration on it, then 120 copies with one companion
each at annular-PCA S/N 1-3, scored against annular PCA-ADI with 5/10/20 components. This script makes that
cube (in out/naco_heldout/, where configs/naco_heldout.toml reads it); sodinn's own commands do the rest:

    .venv/bin/python bench/naco_heldout.py                    # NEGFC fit of beta Pic b, the cube without it (10 s)
    sodinn samples --config configs/naco_heldout.toml         # the default samples (30 s)
    sodinn train   --config configs/naco_heldout.toml         # the default model (5 min)
    sodinn roc     --config configs/naco_heldout.toml         # 120 copies, annular PCA 5/10/20 (5 min a model)

beta Pic b is removed by injecting its negative at the position and flux that NEGFC fits (sodinn.adi.negfc,
annular PCA with 10 components, cubic-spline shifts and rotations: the fit checked against vip-hci's
``firstguess`` in tests/adi/test_negfc.py). The script prints the fit and the annular-PCA S/N at b's position
before and after, and refuses to write a cube in which b is still detected (S/N >= 3).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "naco_betapic"
PIXEL_SCALE_ARCSEC = 0.0272
#: the first guess of the fit (tests/adi/test_negfc.py): separation px, angle deg CCW from +x, flux
FIRST_GUESS = (17.83, 46.6, 666.0)
NCOMP = 10


def _snr_at(sequence, xy: tuple[float, float]) -> float:
    """Annular PCA-ADI (10 components) S/N at ``xy``, negative lobes excluded, as the S/N oracle measures."""
    from sodinn.adi.baselines import pca_annular
    from sodinn.adi.snr import snr

    frame = pca_annular(sequence.cube, sequence.angles_deg, sequence.fwhm_px, ncomp=NCOMP, delta_rot=(0.1, 1.0))
    return float(snr(frame, xy, sequence.fwhm_px, exclude_negative_lobes=True))


def _fit_b(seq, frames: slice, sep_px: float, theta_deg: float, flux: float):
    """NEGFC fit of beta Pic b on ``frames`` of ``seq`` (annular PCA, 10 components, cubic-spline shifts and rotations)."""
    from sodinn.adi.negfc import negfc_simplex

    return negfc_simplex(seq.cube[frames], seq.angles_deg[frames], seq.psf_normalized, seq.fwhm_px, sep_px=sep_px,
                         theta_deg=theta_deg, flux=flux, ncomp=NCOMP, delta_rot=None, injection="spline", order=3)


def _without_b(seq, frames: slice, fit, flux: float):
    """Return ``frames`` of ``seq``'s cube with a companion of ``-flux`` at ``fit``'s position (b removed)."""
    from sodinn.adi.injection import cube_inject_companions

    return cube_inject_companions(seq.cube[frames], seq.psf_normalized, seq.angles_deg[frames], sep_px=fit.sep_px,
                                  theta_deg=fit.theta_deg, flux=-flux, method="spline")


def _probe(seq, clean, fit, places: list[tuple[float, float]]) -> None:
    """Print the S/N at ``places`` in the shared cube, without b (one flux) and without b (a flux fitted per half)."""
    from dataclasses import replace

    half = seq.n_frames // 2
    per_half = seq.cube.copy()
    for part in (slice(0, half), slice(half, seq.n_frames)):
        own = _fit_b(seq, part, fit.sep_px, fit.theta_deg, fit.flux)
        print(f"NEGFC on frames {part.start}-{part.stop - 1}: flux {own.flux:.1f}")
        per_half[part] = _without_b(seq, part, fit, own.flux)
    cubes = {"with b": seq, "b removed (one flux)": clean, "b removed (a flux per half)": replace(clean, cube=per_half)}
    for xy in places:
        print(f"S/N at ({xy[0]:g}, {xy[1]:g}): " + ", ".join(f"{name} {_snr_at(c, xy):.2f}" for name, c in cubes.items()))


def main(argv: list[str] | None = None) -> int:
    """Fit beta Pic b by NEGFC and write the sequence without it; print the fit and the S/N before and after."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "out" / "naco_heldout", help="output folder")
    parser.add_argument("--probe", type=float, nargs=2, action="append", metavar=("X", "Y"), default=[],
                        help="also print the S/N at (X, Y) with b, without b, and without b fitted on each half of the "
                             "sequence (a flux per half: does a place's blob come from the residual of a constant-flux "
                             "removal?); repeatable")
    args = parser.parse_args(argv)
    from sodinn.adi.sequence import ADISequence

    out = args.output.resolve()
    if (out / "cube.fits").exists():
        print(f"{out / 'cube.fits'} exists; choose another --output or remove it", file=sys.stderr)
        return 2
    seq = ADISequence.from_fits(DATA / "cube.fits", DATA / "angles.fits", DATA / "psf.fits",
                                pixel_scale_arcsec=PIXEL_SCALE_ARCSEC)
    fit = _fit_b(seq, slice(None), *FIRST_GUESS)
    if not fit.converged:
        print(f"the NEGFC fit of beta Pic b did not converge ({fit}); nothing written", file=sys.stderr)
        return 1
    clean = ADISequence(_without_b(seq, slice(None), fit, fit.flux), seq.angles_deg, seq.psf, seq.fwhm_px,
                        pixel_scale_arcsec=seq.pixel_scale_arcsec,
                        provenance={**seq.provenance, "beta_pic_b_removed": f"NEGFC sep {fit.sep_px:.3f} px, theta "
                                    f"{fit.theta_deg:.2f} deg, flux {fit.flux:.1f} (bench/naco_heldout.py)"})
    before, after = _snr_at(seq, (fit.x, fit.y)), _snr_at(clean, (fit.x, fit.y))
    print(f"beta Pic b by NEGFC: sep {fit.sep_px:.3f} px, theta {fit.theta_deg:.2f} deg (CCW from +x), flux "
          f"{fit.flux:.1f}, at (x, y) = ({fit.x:.2f}, {fit.y:.2f})")
    print(f"annular PCA-ADI ({NCOMP} components) S/N at b: {before:.2f} in the shared cube, {after:.2f} without b")
    if after >= 3.0:
        print("beta Pic b is still detected (S/N >= 3) after the subtraction; nothing written", file=sys.stderr)
        return 1
    if args.probe:
        _probe(seq, clean, fit, [tuple(xy) for xy in args.probe])
    clean.to_fits(out)
    print(f"wrote {out}/cube.fits, angles.fits and psf.fits; next, with configs/naco_heldout.toml (which reads "
          "out/naco_heldout/):")
    for step in ("samples", "train", "roc"):
        print(f"  sodinn {step} --config configs/naco_heldout.toml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
