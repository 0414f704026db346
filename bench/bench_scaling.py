"""Scaling of sample generation with the number of frames and the frame size: time and peak memory.

For every case (synthetic sequences from ``make_adi_sequence``, FWHM 4 px, P = 9, the paper's ranks
k = 1, 2, 3, 5, 10, 20, 50 for every sequence, so that the rank does not grow with the frames as the
CEVR policy would on these noisy data) one annulus is generated — the outermost, whose SVD region grows with the frame size — with a few C+
and C- samples, in a fresh process, under ``SampleConfig.memory_budget_gib``. The process's peak
resident memory is read from ``/proc/self/status`` (VmHWM, reset after the sequence is loaded and
the compiled kernels are warm, so it measures the work alone; ``ru_maxrss`` where that is not
possible). Printed per case: the region's pixels, the plan the budget chose, the time of the
annulus set-up (region matrix, basis, C- operator) and the C+ rate (steady state, 16 samples; each
the fastest of runs repeated for about a second), the peak working memory and the plan's estimate of it,
and how the C+ cost grows against the Gram-matrix model ``n_frames^2 x pixels`` (a least-squares
fit of the exponents and the measured/predicted ratio). One core (BLAS limited to one thread).
Usage::

    .venv/bin/python bench/bench_scaling.py [--frames 61 256 1024] [--sizes 100 200] [--samples 4]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
_RANKS = (1, 2, 3, 5, 10, 20, 50)


def _rss_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _fastest(func, seconds: float = 1.0, most: int = 20) -> float:
    """Shortest of repeated runs of ``func`` (at least one, until ``seconds`` have passed or ``most`` runs)."""
    times: list[float] = []
    while not times or (sum(times) < seconds and len(times) < most):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def child(args: argparse.Namespace) -> None:
    """Run one case in this (fresh) process and print a JSON line."""
    from threadpoolctl import threadpool_limits

    from sodinn.adi.sequence import ADISequence
    from sodinn.config import SampleConfig
    from sodinn.datasets import make_adi_sequence
    from sodinn.mlar.operator import AnnulusOperator
    from sodinn.mlar.samples import annulus_samples, sample_annuli, sample_psf, usable_mask

    data = np.load(args.data)
    seq = ADISequence(data["cube"], data["angles"], data["psf"], float(data["fwhm"]))
    cfg = SampleConfig(patch_px=9, n_ranks=len(_RANKS), k_policy="fixed", k_list=_RANKS, samples_per_annulus=args.samples,
                       seed=0, memory_budget_gib=args.budget)
    # warm up: imports, compiled kernels, BLAS buffers, on a tiny sequence
    tiny = make_adi_sequence(n_frames=61, size_px=41, fwhm_px=4.0, seed=1)
    tiny_seq = ADISequence(tiny.cube, tiny.angles_deg, tiny.psf, tiny.fwhm_px)
    edges = sample_annuli(tiny_seq, cfg).edges_px
    annulus_samples(tiny_seq, cfg, 0, edges[0], edges[1], (100.0, 200.0))

    annuli = sample_annuli(seq, cfg)
    i = len(annuli) - 1
    r_in, r_out = float(annuli.r_in_px[i]), float(annuli.r_out_px[i])
    psf = sample_psf(seq, cfg)
    baseline = _rss_kib("VmRSS")
    exact = _reset_peak()
    t0 = time.perf_counter()
    got = annulus_samples(seq, cfg, i, r_in, r_out, (100.0, 200.0), psf=psf)
    t_total = time.perf_counter() - t0
    peak = _rss_kib("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # the same annulus in parts: set-up (operator, basis, C- means), then the C+ samples alone; each timed
    # until about a second has passed, keeping the fastest run (the least disturbed on a shared machine)
    cube = np.asarray(seq.cube)
    with threadpool_limits(limits=1, user_api="blas"):
        def setup():
            op = AnnulusOperator(cube, seq.angles_deg, r_in, r_out, cfg, usable_mask(seq, cfg), psf_px=psf.shape[0])
            op.residual_means(op.m_ext, op.basis(op.m_ext), op.minus)
            return op

        t_setup = _fastest(setup)
        op = setup()
        pos = np.tile(np.nonzero(got.labels == 1)[0], 4)  # the annulus's C+ companions, 4 times each
        op.positive_samples(psf, got.x[pos[:4]], got.y[pos[:4]], got.flux[pos[:4]])  # stencils, buffers
        t_pos = _fastest(lambda: op.positive_samples(psf, got.x[pos], got.y[pos], got.flux[pos])) / pos.size
    print(json.dumps({
        "n_frames": seq.n_frames, "size": seq.frame_size, "r_in": r_in, "r_out": r_out, "n_reg": op.n_reg,
        "n_union": int(op.union.size), "k_max": op.k_max, "batch": op.plan.batch, "chunk": op.plan.chunk_px,
        "table": bool(op.plan.table), "plan_peak_gib": op.plan.peak_bytes / 2**30, "budget": args.budget,
        "samples": int(len(got.labels)), "t_total": t_total, "t_setup": t_setup, "t_pos": t_pos,
        "baseline_gib": baseline / 2**20 if baseline else math.nan, "peak_gib": peak / 2**20,
        "peak_exact": exact, "cube_gib": seq.cube.nbytes / 2**30,
    }))


def child_full_set(args: argparse.Namespace) -> None:
    """Every annulus of the sequence (``make_samples``, one process), a few samples each: peak memory."""
    from sodinn.adi.sequence import ADISequence
    from sodinn.config import SampleConfig
    from sodinn.mlar.samples import make_samples, sample_annuli

    data = np.load(args.data)
    seq = ADISequence(data["cube"], data["angles"], data["psf"], float(data["fwhm"]))
    cfg = SampleConfig(patch_px=9, n_ranks=len(_RANKS), k_policy="fixed", k_list=_RANKS, samples_per_annulus=args.samples,
                       seed=0, memory_budget_gib=args.budget)
    n_annuli = len(sample_annuli(seq, cfg))
    ranges = np.tile([100.0, 200.0], (n_annuli, 1))
    make_samples(seq, cfg, flux_ranges=ranges, n_jobs=1, progress=False)  # warm-up: compiled kernels, first-touch pages
    baseline = _rss_kib("VmRSS")
    exact = _reset_peak()
    t0 = time.perf_counter()
    got = make_samples(seq, cfg, flux_ranges=ranges, n_jobs=1, progress=False)
    elapsed = time.perf_counter() - t0
    peak = _rss_kib("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"n_frames": seq.n_frames, "size": seq.frame_size, "annuli": n_annuli, "samples": len(got),
                      "seconds": elapsed, "baseline_gib": baseline / 2**20 if baseline else math.nan,
                      "peak_gib": peak / 2**20, "budget": args.budget, "peak_exact": exact}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[61, 256, 1024])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--samples", type=int, default=4, help="C+ (and C-) samples of the annulus")
    parser.add_argument("--budget", type=float, default=4.0, help="memory_budget_gib")
    parser.add_argument("--tight-budget", type=float, default=1.0,
                        help="also run the largest case under this budget (0: skip)")
    parser.add_argument("--full-set", type=int, default=2, metavar="N",
                        help="also generate every annulus of the largest sequence, N samples per class each (0: skip)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-full", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    if args.child_full:
        child_full_set(args)
        return 0

    from sodinn.datasets import make_adi_sequence

    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cases = [(n, s, args.budget) for s in args.sizes for n in args.frames]
    if args.tight_budget:
        cases.append((max(args.frames), max(args.sizes), args.tight_budget))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, size, budget in cases:
            path = Path(tmp) / f"seq_{n}_{size}.npz"
            if not path.exists():
                d = make_adi_sequence(n_frames=n, size_px=size, fwhm_px=4.0, seed=0)
                np.savez(path, cube=d.cube, angles=d.angles_deg, psf=d.psf, fwhm=d.fwhm_px)
            cmd = [sys.executable, __file__, "--child", "--data", str(path), "--samples", str(args.samples),
                   "--budget", str(budget)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if out.returncode:
                print(out.stderr, file=sys.stderr)
                return out.returncode
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"  done: {n} frames x {size} px, budget {budget:g} GiB ({r['t_total']:.1f} s)", file=sys.stderr)
        full = None
        if args.full_set:
            n, size = max(args.frames), max(args.sizes)
            budget = args.tight_budget or args.budget
            cmd = [sys.executable, __file__, "--child-full", "--data", str(Path(tmp) / f"seq_{n}_{size}.npz"),
                   "--samples", str(args.full_set), "--budget", str(budget)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if out.returncode:
                print(out.stderr, file=sys.stderr)
                return out.returncode
            full = json.loads(out.stdout.strip().splitlines()[-1])

    print(f"one annulus per case (the outermost; P = 9, ranks {list(_RANKS)}, FWHM 4 px), {args.samples} C+ and {args.samples} C- "
          f"samples, one core")
    head = (f"{'frames':>6} {'px':>4} {'region px':>9} {'k_max':>5} {'budget':>6} {'batch':>5} {'chunk':>5} {'table':>5} "
            f"{'set-up s':>8} {'C+ s/sample':>11} {'C+ /s':>7} {'peak work GiB':>13} {'plan GiB':>8} {'model ratio':>11}")
    print(head)
    main_rows = [r for r in rows if r["budget"] == args.budget]
    ref = main_rows[0]
    model = [r["n_frames"] ** 2 * r["n_reg"] for r in main_rows]
    for r in rows:
        ratio = (r["t_pos"] / ref["t_pos"]) / (r["n_frames"] ** 2 * r["n_reg"] / model[0])
        work = r["peak_gib"] - r["baseline_gib"]
        print(f"{r['n_frames']:>6} {r['size']:>4} {r['n_reg']:>9} {r['k_max']:>5} {r['budget']:>6g} {r['batch']:>5} "
              f"{r['chunk']:>5} {'yes' if r['table'] else 'no':>5} {r['t_setup']:>8.2f} {r['t_pos']:>11.4f} "
              f"{1 / r['t_pos']:>7.1f} {work:>13.3f} {r['plan_peak_gib']:>8.3f} {ratio:>11.2f}")
    if len(main_rows) >= 3:
        design = np.column_stack([np.ones(len(main_rows)), np.log([r["n_frames"] for r in main_rows]),
                                  np.log([r["n_reg"] for r in main_rows])])
        for name in ("t_pos", "t_setup"):
            coef = np.linalg.lstsq(design, np.log([r[name] for r in main_rows]), rcond=None)[0]
            what = "C+ sample" if name == "t_pos" else "annulus set-up"
            print(f"fit, {what}: time ~ n_frames^{coef[1]:.2f} x region_px^{coef[2]:.2f}  (Gram-matrix model: 2 and 1)")
    if full is not None:
        print(f"whole set: {full['n_frames']} frames x {full['size']} px, all {full['annuli']} annuli, {full['samples']} samples "
              f"({args.full_set} per class and annulus), budget {full['budget']:g} GiB: {full['seconds']:.0f} s, peak work "
              f"{full['peak_gib'] - full['baseline_gib']:.3f} GiB (peak resident {full['peak_gib']:.3f} GiB, sequence loaded)")
    exact = all(r["peak_exact"] for r in rows)
    print(f"peak work = peak resident memory ({'VmHWM, reset after loading' if exact else 'ru_maxrss'}) minus the resident "
          f"memory before the annulus (sequence loaded: {rows[-1]['cube_gib']:.2f} GiB cube for the largest case, "
          f"{rows[-1]['baseline_gib']:.2f} GiB in all); model ratio = (C+ time / first case's) / (n^2 x pixels / first case's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
