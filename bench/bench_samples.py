"""Benchmark of C+ sample generation on the NACO cube (K=20, P=11, annulus 10-15 px), one core.

sodinn's fast exact path against a reference built from vip-hci's public functions the way the
2018 code did it: ``cube_inject_companions`` -> ``prepare_matrix`` -> ``svd_wrapper(..., 'eigen')`` ->
for each k: residuals, ``cube_derotate`` (skimage bilinear), mean, crop. Both run on one core
(BLAS limited to one thread), interleaved in rounds (each round times a slice of sodinn's samples,
then one reference sample) so that a change of load on a shared machine hits both sides; the
speed-up is the ratio of the median times per sample, in wall-clock time and in CPU time (the
process's, which a busy machine inflates less: time spent waiting for a core is not counted). Prints samples/s of each, the ratio, the
largest difference on the samples both computed, the memory per 1000 samples and, with
``--profile``, where sodinn's time goes. Usage::

    .venv/bin/python bench/bench_samples.py [--n-fast 300] [--n-ref 5] [--profile]
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
    parser.add_argument("--n-ref", type=int, default=5, help="C+ samples timed for the VIP reference (= rounds)")
    parser.add_argument("--profile", action="store_true", help="print where sodinn's time goes (cProfile)")
    parser.add_argument("--naco-dir", default=str(REPO.parent / "shared" / "data" / "naco_betapic"))
    args = parser.parse_args(argv)

    from sodinn.adi.geometry import annulus_indices, svd_region_radii
    from sodinn.adi.sequence import ADISequence
    from sodinn.config import SampleConfig
    from sodinn.mlar.operator import AnnulusOperator
    from sodinn.mlar.samples import positive_samples, sample_psf

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

    positive_samples(seq, cfg, r_in, r_out, x[:2], y[:2], flux[:2], psf=psf)  # warm-up (compiled kernels)
    rounds = max(1, args.n_ref)
    slices = np.array_split(np.arange(args.n_fast), rounds)
    t_fast, t_ref, c_fast, c_ref, refs = [], [], [], [], []
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()  # the annulus's set-up (region matrix, CEVR ranks), once for all its samples
        op = AnnulusOperator(cube, angles, r_in, r_out, cfg, np.ones(cube.shape[1:], dtype=bool), psf_px=psf.shape[0])
        t_setup = time.perf_counter() - t0
        ks = op.ks
        fast = np.empty((args.n_fast, len(ks), 11, 11))
        reference(0)  # warm-up
        for idx in slices:
            t0, c0 = time.perf_counter(), time.process_time()
            fast[idx] = op.positive_samples(psf, x[idx], y[idx], flux[idx])
            t_fast.append((time.perf_counter() - t0) / len(idx))
            c_fast.append((time.process_time() - c0) / len(idx))
            t0, c0 = time.perf_counter(), time.process_time()
            refs.append(reference(int(idx[0])))
            t_ref.append(time.perf_counter() - t0)
            c_ref.append(time.process_time() - c0)
    diff = max(np.abs(fast[s[0]] - refs[r]).max() / np.abs(refs[r]).max() for r, s in enumerate(slices))
    tf, tr = float(np.median(t_fast)), float(np.median(t_ref))
    cf, cr = float(np.median(c_fast)), float(np.median(c_ref))

    tracemalloc.start()
    positive_samples(seq, cfg, r_in, r_out, x[:100], y[:100], flux[:100], psf=psf)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stored = 20 * 11 * 11 * 4 + 8 * 6  # float32 sample + metadata, before compression

    print(f"NACO cube {cube.shape}, K=20 (ks {ks.tolist()}), P=11, annulus {r_in:g}-{r_out:g} px, one core, "
          f"{rounds} interleaved rounds")
    print(f"{'C+ samples':28s} {'s/sample':>10s} {'samples/s':>10s}   (median of the rounds; min-max)")
    print(f"{'sodinn (fast exact path)':28s} {tf:10.5f} {1 / tf:10.1f}   ({args.n_fast} samples; "
          f"{min(t_fast):.5f}-{max(t_fast):.5f}; + {1e3 * t_setup:.0f} ms once per annulus)")
    print(f"{'VIP functions, 2018 way':28s} {tr:10.5f} {1 / tr:10.1f}   ({rounds} samples; {min(t_ref):.4f}-{max(t_ref):.4f})")
    ratios = np.array(t_ref) / np.array(t_fast)
    print(f"speed-up: {tr / tf:.0f}x wall-clock (rounds: {ratios.min():.0f}x-{ratios.max():.0f}x), {cr / cf:.0f}x CPU time "
          f"({1e3 * cf:.3f} ms vs {cr:.4f} s per sample)   max relative difference: {diff:.1e}")
    print(f"memory: {stored * 1000 / 2**20:.1f} MiB stored per 1000 samples (uncompressed); "
          f"peak working memory while making 100 samples: {peak / 2**20:.1f} MiB")
    if args.profile:
        _print_steps(op, psf, x[:4], y[:4], flux[:4])
        import cProfile
        import pstats

        with threadpool_limits(limits=1, user_api="blas"):
            profiler = cProfile.Profile()
            profiler.runcall(positive_samples, seq, cfg, r_in, r_out, x, y, flux, psf=psf)
        stats = pstats.Stats(profiler)
        total = stats.total_tt  # type: ignore[attr-defined]
        print(f"where sodinn's time goes ({args.n_fast} samples, {1e3 * total / args.n_fast:.3f} ms/sample under the profiler):")
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:12]  # type: ignore[attr-defined]
        for (file, line, name), (_, ncalls, tottime, _, _) in rows:
            print(f"  {1e3 * tottime / args.n_fast:7.3f} ms/sample {100 * tottime / total:5.1f} %  {name} "
                  f"({Path(file).name}:{line}, {ncalls} calls)")
    return 0


def _print_steps(op, psf, x, y, flux) -> None:
    """Each step of sodinn's C+ path timed alone (fastest of 200 runs, per sample, one core)."""
    from sodinn.adi.injection import FourierShifter
    from sodinn.mlar._kernels import injected_columns, residual_patch, workspace

    def fastest(func, repeat=200):
        best = math.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            func()
            best = min(best, time.perf_counter() - t0)
        return best

    centres = np.array([int(np.nonzero((op.centers[:, 0] == round(yy)) & (op.centers[:, 1] == round(xx)))[0][0])
                        for xx, yy in zip(x, y)])
    shifter = FourierShifter(psf)
    with threadpool_limits(limits=1, user_api="blas"):
        b = len(x)
        steps = {"batch": fastest(lambda: op.positive_batch(shifter, x, y, flux, centres)) / b,
                 "stamps: positions, sub-pixel shifts, stencil rows": fastest(lambda: op.batch_inputs(shifter, x, y, flux,
                                                                                                        centres)) / b}
        stamps, corner, offsets, lookup, table_cols, table_w, rows = op.batch_inputs(shifter, x, y, flux, centres)
        work = workspace(op.n_frames, op.n_reg, stamps.shape[-1], op.patch_px**2)
        args = (op.m_ext, stamps[0], corner[0], offsets, lookup, table_cols, rows[0], work)
        steps["local columns, injected matrix (compiled)"] = fastest(lambda: injected_columns(*args))
        a, s, h, t_start, loc = injected_columns(*args)
        steps[f"Gram update: ({s.shape[0]} x {s.shape[1]}) @ ({s.shape[1]} x {s.shape[0]})"] = fastest(lambda: s @ h.T)
        delta = s @ h.T
        gram = op.gram + 0.5 * (delta + delta.T)
        steps[f"eigen-decomposition, {gram.shape[0]} x {gram.shape[0]} (LAPACK)"] = fastest(lambda: np.linalg.eigh(gram))
        u = np.ascontiguousarray(np.linalg.eigh(gram)[1][:, ::-1][:, : op.k_max])
        patch = np.ascontiguousarray(a[:, t_start:])
        steps[f"Y^T on the patch's {patch.shape[1]} columns"] = fastest(lambda: patch.T @ u)
        yt = patch.T @ u
        steps[f"stencil contraction, {loc.shape[0]} px x {loc.shape[1]} frames x 4 x {op.k_max} ranks (compiled)"] = fastest(
            lambda: residual_patch(a, t_start, u, yt, loc, table_w, rows[0], op.ks))
    whole = steps.pop("batch")
    print(f"each step alone (fastest of 200 runs; {1e3 * whole:.3f} ms per sample for a batch of {len(x)} in one go):")
    for name, t in steps.items():
        print(f"  {1e3 * t:7.3f} ms  {name}")
    print(f"  {1e3 * (whole - sum(steps.values())):7.3f} ms  the rest (copies, Python, caches)")


if __name__ == "__main__":
    sys.exit(main())
