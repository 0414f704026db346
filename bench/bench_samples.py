"""Benchmark of C+ sample generation on the NACO cube (K=20, P=11, annulus 10-15 px), one core.

sodinn's fast exact path against a reference built from vip-hci's public functions the way the
2018 code did it: ``cube_inject_companions`` -> ``prepare_matrix`` -> ``svd_wrapper(..., 'eigen')`` ->
for each k: residuals, ``cube_derotate`` (skimage bilinear), mean, crop. Both run on one core
(BLAS limited to one thread). Prints samples/s of each, the ratio, the largest difference on the
samples both computed, and the memory per 1000 samples. Usage::

    .venv/bin/python bench/bench_samples.py [--n-fast 300] [--n-ref 5]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-fast", type=int, default=300, help="C+ samples timed for sodinn")
    parser.add_argument("--n-ref", type=int, default=5, help="C+ samples timed for the VIP reference")
    parser.add_argument("--naco-dir", default=str(REPO.parent / "shared" / "data" / "naco_betapic"))
    args = parser.parse_args(argv)

    from sodinn.config import SampleConfig
    from sodinn.geometry import annulus_indices, svd_region_radii
    from sodinn.samples import positive_samples, sample_psf
    from sodinn.sequence import ADISequence

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import vip_hci as vip

        for name in ("var", "preproc", "fm"):
            getattr(vip, name)
        from vip_hci.psfsub.svd import svd_wrapper

    d = Path(args.naco_dir)
    seq = ADISequence.from_fits(d / "cube.fits", d / "angles.fits", d / "psf.fits")
    cfg = SampleConfig(patch_px=11, n_ranks=20)
    psf = sample_psf(seq, cfg)
    r_in, r_out = 10.0, 15.0
    cube, angles = np.array(seq.cube), seq.angles_deg
    rng = np.random.default_rng(0)
    ay, ax = annulus_indices(cube.shape, r_in, r_out - r_in)
    pick = rng.integers(ay.size, size=args.n_fast)
    x = ax[pick] + rng.uniform(-0.5, 0.5, args.n_fast)
    y = ay[pick] + rng.uniform(-0.5, 0.5, args.n_fast)
    flux = rng.uniform(50, 150, args.n_fast)

    positive_samples(seq, cfg, r_in, r_out, x[:2], y[:2], flux[:2], psf=psf)  # warm-up
    t0 = time.perf_counter()
    fast, ks = positive_samples(seq, cfg, r_in, r_out, x, y, flux, psf=psf)
    t_fast = (time.perf_counter() - t0) / args.n_fast

    lo, hi = svd_region_radii(r_in, r_out, cfg.patch_px)

    def reference(i):
        sep = math.hypot(x[i] - 50, y[i] - 50)
        theta = math.degrees(math.atan2(y[i] - 50, x[i] - 50))
        inj = vip.fm.cube_inject_companions(cube, psf, angles, flevel=flux[i], rad_dists=[sep], theta=theta,
                                            imlib="vip-fft", verbose=False)
        matrix, (yy, xx) = vip.var.prepare_matrix(inj, scaling=None, mode="annular", inner_radius=lo,
                                                  outer_radius=hi, verbose=False)
        v = svd_wrapper(matrix, "eigen", int(ks[-1]), False)
        px, py = int(round(x[i])), int(round(y[i]))
        out = []
        for k in ks:
            res = matrix - (matrix @ v[:k].T) @ v[:k]
            frames = np.zeros_like(inj)
            frames[:, yy, xx] = res
            der = vip.preproc.cube_derotate(frames, angles, imlib="skimage", interpolation="bilinear")
            out.append(der.mean(axis=0)[py - 5 : py + 6, px - 5 : px + 6])
        return np.array(out)

    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")
        reference(0)  # warm-up
        t0 = time.perf_counter()
        refs = [reference(i) for i in range(args.n_ref)]
        t_ref = (time.perf_counter() - t0) / args.n_ref
    diff = max(np.abs(fast[i] - refs[i]).max() / np.abs(refs[i]).max() for i in range(args.n_ref))

    tracemalloc.start()
    positive_samples(seq, cfg, r_in, r_out, x[:100], y[:100], flux[:100], psf=psf)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stored = 20 * 11 * 11 * 4 + 8 * 6  # float32 sample + metadata, before compression

    print(f"NACO cube {cube.shape}, K=20 (ks {ks.tolist()}), P=11, annulus {r_in:g}-{r_out:g} px, one core")
    print(f"{'C+ samples':28s} {'s/sample':>10s} {'samples/s':>10s}")
    print(f"{'sodinn (fast exact path)':28s} {t_fast:10.5f} {1 / t_fast:10.1f}   ({args.n_fast} samples)")
    print(f"{'VIP functions, 2018 way':28s} {t_ref:10.5f} {1 / t_ref:10.1f}   ({args.n_ref} samples)")
    print(f"speed-up: {t_ref / t_fast:.0f}x   max relative difference: {diff:.1e}")
    print(f"memory: {stored * 1000 / 2**20:.1f} MiB stored per 1000 samples (uncompressed); "
          f"peak working memory while making 100 samples: {peak / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
