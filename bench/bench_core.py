"""Benchmark of the ADI core against vip-hci on the real NACO beta Pic cube (foundation issue).

Prints, side by side in one run: the exact S/N map (cold = first map of a geometry, warm = the
cached aperture weights reused) against VIP's ``snrmap``; full-frame and annular PCA-ADI against
VIP's ``pca`` / ``pca_annular`` (same bilinear rotation, and VIP's default FFT rotation); the
largest difference of the values. Usage::

    .venv/bin/python bench/bench_core.py [--repeat 3] [--naco-dir ../shared/data/naco_betapic]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def timed(fn, repeat):
    """Return (result, median seconds, best seconds) over ``repeat`` calls."""
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, statistics.median(times), min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per measurement (median reported)")
    parser.add_argument("--naco-dir", default=str(REPO.parent / "shared" / "data" / "naco_betapic"))
    args = parser.parse_args(argv)

    from sodinn import __version__
    from sodinn.adi.baselines import pca_adi, pca_annular
    from sodinn.adi.sequence import ADISequence
    from sodinn.adi.snr import _snr_map_geometry, snr_map

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import vip_hci as vip

        for name in ("var", "preproc", "psfsub", "metrics", "fm"):
            getattr(vip, name)

    d = Path(args.naco_dir)
    seq = ADISequence.from_fits(d / "cube.fits", d / "angles.fits", d / "psf.fits")
    cube, angles, fwhm = np.array(seq.cube), seq.angles_deg, seq.fwhm_px
    print(f"sodinn {__version__}, vip-hci {vip.__version__}, numpy {np.__version__}, python {platform.python_version()}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores; NACO cube {cube.shape}, FWHM {fwhm:.3f} px")
    print(f"timings: median of {args.repeat} calls (VIP S/N map: of {max(1, args.repeat - 1)})\n")
    rows = []

    def vip_quiet(fn, *a, **k):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*a, **k)

    # warm both libraries up (imports, caches of numpy/scipy/skimage) outside the timings
    vip_quiet(vip.psfsub.pca, cube, angles, ncomp=10, imlib="skimage", interpolation="bilinear", verbose=False)
    pca_adi(cube, angles, ncomp=10)

    # --- full-frame PCA-ADI
    ours, t_ours, _ = timed(lambda: pca_adi(cube, angles, ncomp=10, scaling="temp-mean"), args.repeat)
    ref, t_vip, _ = timed(
        lambda: vip_quiet(vip.psfsub.pca, cube, angles, ncomp=10, scaling="temp-mean", imlib="skimage",
                          interpolation="bilinear", verbose=False),
        args.repeat,
    )
    _, t_vip_fft, _ = timed(
        lambda: vip_quiet(vip.psfsub.pca, cube, angles, ncomp=10, scaling="temp-mean", verbose=False), args.repeat
    )
    fov = np.hypot(*(np.indices(ours.shape) - 50)) < 48
    diff = np.abs(ours - ref)[fov].max() / np.abs(ref[fov]).max()
    rows.append(("full-frame PCA-ADI, ncomp=10", t_ours, t_vip, t_vip_fft, diff))

    # --- annular PCA-ADI
    ours, t_ours, _ = timed(lambda: pca_annular(cube, angles, fwhm, ncomp=10), args.repeat)
    ref, t_vip, _ = timed(
        lambda: vip_quiet(vip.psfsub.pca_annular, cube, angles, fwhm=fwhm, asize=fwhm, ncomp=10, imlib="skimage",
                          interpolation="bilinear", verbose=False),
        args.repeat,
    )
    _, t_vip_fft, _ = timed(
        lambda: vip_quiet(vip.psfsub.pca_annular, cube, angles, fwhm=fwhm, asize=fwhm, ncomp=10, verbose=False),
        args.repeat,
    )
    inner = np.hypot(*(np.indices(ours.shape) - 50)) < (int(50.5 / fwhm) - 1) * fwhm - 2.5
    diff = np.abs(ours - ref)[inner].max() / np.abs(ref[inner]).max()
    rows.append(("annular PCA-ADI, ncomp=10", t_ours, t_vip, t_vip_fft, diff))
    frame = ours

    # --- S/N map on the annular PCA frame
    def cold():
        _snr_map_geometry.cache_clear()
        return snr_map(frame, fwhm)

    ours, t_cold, _ = timed(cold, args.repeat)
    _, t_warm, _ = timed(lambda: snr_map(frame, fwhm), args.repeat)
    ref, t_vip, _ = timed(lambda: vip_quiet(vip.metrics.snrmap, frame, fwhm, verbose=False), max(1, args.repeat - 1))
    compared = frame != 0  # VIP skips pixels whose value is exactly 0
    diff = np.abs(ours - ref)[compared].max()

    print(f"{'task':34s} {'sodinn':>10s} {'VIP (bilinear)':>15s} {'VIP (default)':>14s} {'speed-up':>9s} {'max rel diff':>13s}")
    for name, t_o, t_v, t_f, dv in rows:
        print(f"{name:34s} {t_o:9.3f}s {t_v:14.3f}s {t_f:13.3f}s {t_v / t_o:8.1f}x {dv:13.1e}")
    print()
    print(f"{'S/N map (Mawet 2014, exact apertures)':40s} {'sodinn':>9s} {'VIP snrmap':>11s} {'speed-up':>9s} {'max abs diff':>13s}")
    print(f"{'  cold (first map of this geometry)':40s} {t_cold:8.3f}s {t_vip:10.3f}s {t_vip / t_cold:8.1f}x {diff:13.1e}")
    print(f"{'  warm (aperture weights cached)':40s} {t_warm:8.3f}s {t_vip:10.3f}s {t_vip / t_warm:8.1f}x {diff:13.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
