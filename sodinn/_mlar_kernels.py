"""Compiled inner loops of MLAR sample generation (numba; see :mod:`sodinn.samples`).

Two loops do not map onto BLAS and cost most of a sample in numpy: the bilinear derotation
stencil of a patch (4 region columns per frame and patch pixel, for every rank at once) and the
bookkeeping of the few region columns a C+ sample touches. Everything here is float64 and
deterministic: a sample's numbers depend only on its own inputs, never on a batch.

Region columns are indexed as in ``_AnnulusOperator.m_ext``: ``0 .. n_reg - 1`` are the region's
pixels, ``n_reg`` is a column of zeros (pixels outside the region).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["local_columns", "local_matrices", "residual_patch"]



@numba.njit(nogil=True, cache=True)
def residual_patch(a, t_start, u, yt, loc, w, ks):  # pragma: no cover - compiled
    """Derotated mean of the rank-k residuals ``(I - U_k U_k^T) A`` at some pixels, for every k in ``ks``.

    Parameters
    ----------
    a : ndarray, shape (n, L)
        Matrix ``A`` (rows = frames) on its columns.
    t_start : int
        Column of ``a`` that ``loc == 0`` refers to.
    u : ndarray, shape (n, k_max)
        Top eigenvectors of ``A A^T``, descending.
    yt : ndarray, shape (m, k_max)
        ``A[:, t_start:t_start + m]^T U``.
    loc, w : ndarray, shape (P, n, 4)
        For output pixel ``p`` and frame ``t``: the 4 bilinear source columns (relative to
        ``t_start``) and their weights divided by ``n``.
    ks : ndarray of int64, shape (K,)
        Strictly increasing ranks, ``<= k_max``.

    Returns
    -------
    ndarray, shape (K, P)
        ``sum_tj w A[t, c] - cumsum_k sum_tj w U[t, k] Y[k, c]`` at the ranks (SPEC §2).
    """
    n, k = u.shape
    n_pix = loc.shape[0]
    out = np.empty((ks.size, n_pix))
    pc = np.empty(k)
    for p in range(n_pix):
        mean = 0.0
        for kk in range(k):
            pc[kk] = 0.0
        for t in range(n):
            r0 = loc[p, t, 0]
            r1 = loc[p, t, 1]
            r2 = loc[p, t, 2]
            r3 = loc[p, t, 3]
            w0 = w[p, t, 0]
            w1 = w[p, t, 1]
            w2 = w[p, t, 2]
            w3 = w[p, t, 3]
            mean += (w0 * a[t, t_start + r0] + w1 * a[t, t_start + r1]
                     + w2 * a[t, t_start + r2] + w3 * a[t, t_start + r3])
            for kk in range(k):
                pc[kk] += u[t, kk] * (w0 * yt[r0, kk] + w1 * yt[r1, kk] + w2 * yt[r2, kk] + w3 * yt[r3, kk])
        total = 0.0
        i = 0
        for kk in range(k):
            total += pc[kk]
            if i < ks.size and ks[i] == kk + 1:
                out[i, p] = mean - total
                i += 1
    return out


@numba.njit(nogil=True, cache=True)
def local_columns(stamp_cols, table_cols, table_w, rows, n_reg, mark):  # pragma: no cover - compiled
    """The region columns one C+ sample touches, numbered locally.

    Parameters
    ----------
    stamp_cols : ndarray of int32, shape (n, q)
        Region column of every pixel of the companion's stamp in every frame (``n_reg``: outside).
    table_cols, table_w : ndarray, shape (n_table, n, 4)
        +PA derotation stencils (region columns, weights) of candidate patch pixels.
    rows : ndarray of int, shape (P,)
        The patch's pixels: rows of the tables.
    n_reg : int
    mark : ndarray of int64, shape (n_reg + 1,)
        Scratch, all -1 on entry and on return.

    Returns
    -------
    cols : ndarray of int64, shape (L,)
        Region column of each local column. Local order: columns of the stamp only, columns of
        both, columns of the patch stencil only; so the stamp's columns are ``[0, n_stamp)`` and the
        patch's ``[t_start, L)``.
    n_stamp, t_start : int
    stamp_loc : ndarray of int64, shape (n, q)
        Local column of each stamp pixel, -1 outside the region.
    loc, w : ndarray, shape (P, n, 4)
        The patch's stencil, columns relative to ``t_start``; stencil entries outside the region
        (weight 0) point at local column ``t_start``.
    """
    n, q = stamp_cols.shape
    n_pix = rows.size
    seen = np.empty(n * q + n_pix * n * 4, np.int64)
    m = 0
    for p in range(n_pix):  # flag 1: patch stencil
        for t in range(n):
            for j in range(4):
                c = table_cols[rows[p], t, j]
                if c != n_reg and mark[c] < 0:
                    mark[c] = 1
                    seen[m] = c
                    m += 1
    for t in range(n):  # flag 2: stamp only, 3: both
        for i in range(q):
            c = stamp_cols[t, i]
            if c != n_reg:
                if mark[c] < 0:
                    mark[c] = 2
                    seen[m] = c
                    m += 1
                elif mark[c] == 1:
                    mark[c] = 3
    counts = np.zeros(4, np.int64)
    for i in range(m):
        counts[mark[seen[i]]] += 1
    n_stamp = counts[2] + counts[3]
    t_start = counts[2]
    nxt = np.array([0, counts[2] + counts[3], 0, counts[2]], np.int64)  # first local index per flag
    cols = np.empty(m, np.int64)
    for i in range(m):
        c = seen[i]
        flag = mark[c]
        cols[nxt[flag]] = c
        mark[c] = nxt[flag] + 4  # local index + 4 (flags are < 4)
        nxt[flag] += 1
    stamp_loc = np.empty((n, q), np.int64)
    for t in range(n):
        for i in range(q):
            c = stamp_cols[t, i]
            stamp_loc[t, i] = mark[c] - 4 if c != n_reg else -1
    loc = np.empty((n_pix, n, 4), np.int64)
    w = np.empty((n_pix, n, 4))
    for p in range(n_pix):
        for t in range(n):
            for j in range(4):
                c = table_cols[rows[p], t, j]
                loc[p, t, j] = mark[c] - 4 - t_start if c != n_reg else 0
                w[p, t, j] = table_w[rows[p], t, j]
    for i in range(m):
        mark[seen[i]] = -1
    return cols, n_stamp, t_start, stamp_loc, loc, w


@numba.njit(nogil=True, cache=True)
def local_matrices(m_ext, cols, n_stamp, stamp_loc, stamps):  # pragma: no cover - compiled
    """The injected matrix on the local columns, and what the Gram update needs.

    Returns ``a`` (n, L): ``m_ext[:, cols]`` plus the stamps; ``s`` (n, n_stamp): the stamps alone
    on the stamp's columns; ``h`` (n, n_stamp): ``2 a - s`` there (``A + M``), so that
    ``A A^T - M M^T = (s h^T + h s^T) / 2``.
    """
    n = m_ext.shape[0]
    n_loc = cols.size
    q = stamps.shape[1]
    a = np.empty((n, n_loc))
    s = np.zeros((n, n_stamp))
    for t in range(n):
        for r in range(n_loc):
            a[t, r] = m_ext[t, cols[r]]
        for i in range(q):
            r = stamp_loc[t, i]
            if r >= 0:
                s[t, r] = stamps[t, i]  # a frame's stamp pixels are distinct columns
                a[t, r] += stamps[t, i]
    h = np.empty((n, n_stamp))
    for t in range(n):
        for r in range(n_stamp):
            h[t, r] = 2.0 * a[t, r] - s[t, r]
    return a, s, h
