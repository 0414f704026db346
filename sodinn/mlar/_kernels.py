"""Compiled inner loops of MLAR sample generation (numba; see :mod:`sodinn.mlar.samples`).

Two loops do not map onto BLAS and cost most of a sample in numpy: the bilinear derotation
stencil of a patch (4 region columns per frame and patch pixel, for every rank at once) and the
bookkeeping of the few region columns a C+ sample touches. Everything here is float64 and
deterministic: a sample's numbers depend only on its own inputs, never on a batch.

Region columns are indexed as in ``AnnulusOperator.m_ext``: ``0 .. n_reg - 1`` are the region's
pixels, ``n_reg`` is a column of zeros (pixels outside the region).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["injected_columns", "positive_patches", "residual_patch", "workspace"]



@numba.njit(nogil=True, cache=True, fastmath={"contract"})  # fused multiply-adds; deterministic on a machine
def residual_patch(a, t_start, u, yt, loc, w, rows, ks):  # pragma: no cover - compiled
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
    loc : ndarray of int, shape (P, n, 4)
        For output pixel ``p`` and frame ``t``: the 4 bilinear source columns, relative to ``t_start``.
    w : ndarray, shape (n_table, n, 4)
        Their weights divided by ``n``, in row ``rows[p]``.
    rows : ndarray of int64, shape (P,)
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
            w0 = w[rows[p], t, 0]
            w1 = w[rows[p], t, 1]
            w2 = w[rows[p], t, 2]
            w3 = w[rows[p], t, 3]
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
def injected_columns(m_ext, stamps, corner, offsets, frame_lookup, table_cols, rows, work):  # pragma: no cover - compiled
    """Find the region columns one C+ sample touches, numbered locally, and its injected matrix on them.

    Parameters
    ----------
    m_ext : ndarray, shape (n, n_reg + 1)
        Region matrix of the real cube (last column zero).
    stamps : ndarray, shape (n, q)
        The companion's stamp in every frame (flux included), flattened row-major.
    corner : ndarray of int64, shape (n,)
        Flat index, in ``frame_lookup``, of every frame's stamp corner.
    offsets : ndarray of int64, shape (q,)
        Flat offsets of the stamp pixels from the corner.
    frame_lookup : ndarray of int32
        Region column of every pixel of the (padded) frame, ``n_reg`` outside the region.
    table_cols : ndarray of int32, shape (n_table, n, 4)
        +PA derotation stencils (region columns) of candidate patch pixels.
    rows : ndarray of int64, shape (P,)
        The patch's pixels: rows of the table.
    work : tuple
        Workspace from :func:`workspace` (reused from sample to sample: fresh large arrays would
        cost a page fault every 4 KiB, more than the arithmetic).

    Returns
    -------
    a : ndarray, shape (n, L)
        The injected matrix on the local columns. Local order: columns of the stamp only, of
        both, of the patch stencil only: the stamp's columns are ``[0, n_stamp)``, the patch's
        ``[t_start, L)``.
    s, h : ndarray, shape (n, n_stamp)
        The stamps alone and ``A + M = 2 a - s`` on the stamp's columns, so that
        ``A A^T - M M^T = (s h^T + h s^T) / 2``.
    t_start : int
    loc : ndarray of int32, shape (P, n, 4)
        The patch's stencil in local columns relative to ``t_start``; stencil entries outside the
        region (weight 0) point at ``t_start``.

    All returned arrays are views of ``work``.
    """
    mark, seen, stamp_cols, loc, a_buf, s_buf, h_buf, _ = work
    n, q = stamps.shape
    n_reg = m_ext.shape[1] - 1
    n_pix = rows.size
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
            c = frame_lookup[corner[t] + offsets[i]]
            stamp_cols[t, i] = c
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
    for i in range(m):
        c = seen[i]
        flag = mark[c]
        mark[c] = nxt[flag] + 4  # local index + 4 (flags are < 4)
        nxt[flag] += 1
    for i in range(m):  # seen[local index] = region column
        seen[m + mark[seen[i]] - 4] = seen[i]
    cols = seen[m : 2 * m]
    a = a_buf[: n * m].reshape((n, m))
    s = s_buf[: n * n_stamp].reshape((n, n_stamp))
    h = h_buf[: n * n_stamp].reshape((n, n_stamp))
    for t in range(n):
        for r in range(m):
            a[t, r] = m_ext[t, cols[r]]
        for r in range(n_stamp):
            s[t, r] = 0.0
        for i in range(q):
            c = stamp_cols[t, i]
            if c != n_reg:
                r = mark[c] - 4
                s[t, r] = stamps[t, i]  # a frame's stamp pixels are distinct columns
                a[t, r] += stamps[t, i]
        for r in range(n_stamp):
            h[t, r] = 2.0 * a[t, r] - s[t, r]
    for p in range(n_pix):
        for t in range(n):
            for j in range(4):
                c = table_cols[rows[p], t, j]
                loc[p, t, j] = mark[c] - 4 - t_start if c != n_reg else 0
    for i in range(m):
        mark[cols[i]] = -1
    return a, s, h, t_start, loc[:n_pix]


def workspace(n_frames, n_reg, stamp_px, patch_pixels):
    """Buffers for :func:`positive_patches`, allocated once per annulus and reused for every sample."""
    width = n_frames * (n_reg + 1)
    return (np.full(n_reg + 1, -1, dtype=np.int64),  # mark: -1, or a column's flag / local index + 4
            np.empty(2 * (n_frames * stamp_px + 4 * n_frames * patch_pixels), dtype=np.int64),  # seen, cols
            np.empty((n_frames, stamp_px), dtype=np.int64),  # stamp pixels' region columns
            np.empty((patch_pixels, n_frames, 4), dtype=np.int32),  # loc
            np.empty(width), np.empty(width), np.empty(width), np.empty(width))  # a, s, h, patch columns of a


@numba.njit(nogil=True, cache=True)
def positive_patches(m_ext, gram, k_max, ks, stamps, corner, offsets, frame_lookup, table_cols, table_w, rows,
                     work):  # pragma: no cover - compiled
    """C+ samples of a batch, one sample at a time: (b, K, P) derotated mean residuals.

    For sample ``i``: its local columns and injected matrix (:func:`injected_columns`), its Gram
    matrix ``gram + (s h^T + h s^T) / 2`` (BLAS), the ``k_max`` leading eigenvectors (LAPACK
    ``dsyevd``), ``Y^T`` on the patch's columns (BLAS) and the stencil contraction
    (:func:`residual_patch`). Arguments as in those functions, with a leading batch axis on
    ``stamps`` (b, n, q), ``corner`` (b, n) and ``rows`` (b, P).
    """
    b = stamps.shape[0]
    n = m_ext.shape[0]
    out = np.empty((b, ks.size, rows.shape[1]))
    u = np.empty((n, k_max))
    for i in range(b):
        a, s, h, t_start, loc = injected_columns(m_ext, stamps[i], corner[i], offsets, frame_lookup, table_cols,
                                                 rows[i], work)
        delta = np.dot(s, h.T)
        _, vectors = np.linalg.eigh(gram + 0.5 * (delta + delta.T))
        for t in range(n):
            for kk in range(k_max):
                u[t, kk] = vectors[t, n - 1 - kk]
        m = a.shape[1]
        patch = work[7][: n * (m - t_start)].reshape((n, m - t_start))
        for t in range(n):
            for r in range(m - t_start):
                patch[t, r] = a[t, t_start + r]
        yt = np.dot(patch.T, u)
        out[i] = residual_patch(a, t_start, u, yt, loc, table_w, rows[i], ks)
    return out


@numba.njit(nogil=True, cache=True)
def derotation_stencils(pixels, cos, sin, cy, cx, size, lookup, n_reg):  # pragma: no cover - compiled
    """Bilinear derotation stencils of some pixels, in region columns: (n_pix, n, 4) int32 and float64.

    The arithmetic of :class:`sodinn.adi.rotation.DerotationStencil` (same operations in the same
    order, so the same numbers), fused: output pixel ``(y, x)`` reads, in frame ``t``, the 4
    pixels around ``(cy - sin_t dx + cos_t dy, cx + cos_t dx + sin_t dy)`` (``dx = x - cx``,
    ``dy = y - cy``) with bilinear weights divided by ``n``. Sources outside the frame or the
    region get column ``n_reg`` (the zero column) and weight 0.
    """
    n_pix = pixels.shape[0]
    n = cos.size
    cols = np.empty((n_pix, n, 4), np.int32)
    w = np.empty((n_pix, n, 4))
    for p in range(n_pix):
        dy = pixels[p, 0] - cy
        dx = pixels[p, 1] - cx
        for t in range(n):
            src_y = cy - sin[t] * dx + cos[t] * dy
            src_x = cx + cos[t] * dx + sin[t] * dy
            y0 = np.floor(src_y)
            x0 = np.floor(src_x)
            fy = src_y - y0
            fx = src_x - x0
            iy = int(y0)
            ix = int(x0)
            for j in range(4):
                yy = iy + (j >> 1)
                xx = ix + (j & 1)
                wy = fy if j >> 1 else 1 - fy
                wx = fx if j & 1 else 1 - fx
                c = n_reg
                if 0 <= yy < size and 0 <= xx < size:
                    c = lookup[yy * size + xx]
                cols[p, t, j] = c
                w[p, t, j] = wy * wx / n if c != n_reg else 0.0
    return cols, w
