"""Augmented C- samples (SPEC §3): random rotation, sub-pixel shift, or mean of two samples of the same group.

Each augmented sample draws from its own random stream, spawned from the configuration's seed with
the key ``(annulus, AUGMENT_KEY, j)``, so the result depends neither on order nor on batching.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AUGMENT_KEY", "augment_samples"]

AUGMENT_KEY = 3  # spawn key of augmented samples (C+ samples use 1, C- subsets 2: see sodinn.mlar.samples)


def augment_samples(samples: np.ndarray, groups: np.ndarray, count: int, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Make ``count`` augmented samples: random rotation, sub-pixel shift or mean of two of the same group.

    Each augmented sample picks a source sample and one of three transforms with equal odds (SPEC §3):
    a rotation of every k-slice by an angle uniform in [0, 360) deg, a shift uniform in [-0.5, 0.5) px
    along y and x (both bilinear, edges repeated), or the mean with a random sample of the source's
    group (possibly itself). It draws from its own stream (spawn key ``(index, AUGMENT_KEY, j)``), so
    the result does not depend on order or batching.

    Parameters
    ----------
    samples : ndarray, shape (n, K, P, P)
        Source samples (C- samples of one annulus), n >= 1.
    groups : ndarray of int, shape (n,)
        Group id of every source sample.
    count : int
        Augmented samples to make.
    seed : int
        The configuration's seed (``SampleConfig.seed``).
    index : int
        Annulus number: the first spawn key.

    Returns
    -------
    augmented : ndarray of float64, shape (count, K, P, P)
        The augmented samples.
    source : ndarray of int64, shape (count,)
        Index in ``samples`` of each one's source (an augmented copy belongs to its source's group).
    """
    from scipy.ndimage import rotate, shift

    out = np.empty((count, *samples.shape[1:]))
    source = np.empty(count, dtype=np.int64)
    for j in range(count):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, AUGMENT_KEY, j)))
        s = int(rng.integers(len(samples)))
        kind = int(rng.integers(3))
        if kind == 0:
            angle = float(rng.uniform(0, 360))
            out[j] = rotate(samples[s], angle, axes=(-1, -2), reshape=False, order=1, mode="nearest")
        elif kind == 1:
            dy, dx = rng.uniform(-0.5, 0.5, 2)
            out[j] = shift(samples[s], (0.0, dy, dx), order=1, mode="nearest")
        else:
            mates = np.nonzero(groups == groups[s])[0]
            other = int(rng.choice(mates))
            out[j] = 0.5 * (samples[s] + samples[other])
        source[j] = s
    return out, source
