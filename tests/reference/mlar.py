"""Slow reference path of MLAR samples (SPEC §2): inject -> SVD -> K full-frame derotations -> mean -> crop.

Written for clarity, not speed: the fast path in ``sodinn.mlar.samples`` must equal it to 1e-6.
"""

from __future__ import annotations

import math

import numpy as np

from sodinn.adi.geometry import annulus_indices, frame_center, svd_region_radii
from sodinn.adi.injection import cube_inject_companions
from sodinn.adi.rotation import cube_derotate


def slow_frames(cube, angles, psf, r_in, r_out, patch_px, ks, *, x, y, flux=0.0, positive=True):
    """The residual frames (K, N, N) of one sample: a companion at exactly (x, y) if ``positive`` (+PA), else -PA.

    With ``flux=0`` nothing is injected: the +PA frames of prediction, or the -PA frames of C- samples.
    """
    cube = np.array(cube, dtype=np.float64)
    cy, cx = frame_center(cube.shape)
    if positive and flux:
        sep, theta = math.hypot(x - cx, y - cy), math.degrees(math.atan2(y - cy, x - cx))
        cube = cube_inject_companions(cube, psf, angles, sep_px=sep, theta_deg=theta, flux=flux)
    lo, hi = svd_region_radii(r_in, r_out, patch_px)
    yy, xx = annulus_indices(cube.shape, lo, hi - lo)
    matrix = cube[:, yy, xx]
    _, _, vt = np.linalg.svd(matrix, full_matrices=False)
    out = []
    for k in ks:
        residual = matrix - (matrix @ vt[:k].T) @ vt[:k]
        frames = np.zeros_like(cube)
        frames[:, yy, xx] = residual
        out.append(cube_derotate(frames, angles if positive else -angles).mean(axis=0))
    return np.array(out)


def slow_sample(cube, angles, psf, r_in, r_out, patch_px, ks, *, x, y, flux=0.0, positive=True):
    """One sample centred on pixel (round(x), round(y)); a companion at exactly (x, y) if ``positive``."""
    frames = slow_frames(cube, angles, psf, r_in, r_out, patch_px, ks, x=x, y=y, flux=flux, positive=positive)
    px, py = int(round(x)), int(round(y))
    half = patch_px // 2
    return frames[:, py - half : py + half + 1, px - half : px + half + 1]
