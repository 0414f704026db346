"""Labeled MLAR samples (SPEC §2-3): positives with an injected companion, negatives of speckle.

A sample is the ``(K, P, P)`` stack of PCA residual patches at K ranks around one pixel.

- **C- (negatives)**: the real cube, residuals derotated with **-PA** (real companions smeared),
  one sample per usable pixel of the annulus.
- **C+ (positives)**: one fake companion (normalised PSF x flux, at a random pixel of the annulus
  plus a sub-pixel jitter) injected into the cube, the PCA basis recomputed on the injected cube,
  residuals derotated with **+PA**, patch centred on the companion's pixel.

Fast exact path: only the SVD region of the annulus (the annulus widened by ``ceil(P/2) + 1`` px)
matters, and only the region pixels that the bilinear derotation of the patch reads. For a region
matrix ``A`` (n_frames x n_pix, the injected copy for C+), ``A A^T = U diag(lam) U^T`` gives the
residual at rank k as ``(I - U_k U_k^T) A``; its derotated mean at patch pixel ``p`` is
``sum_tj w[t,p,j] A[t,q] - cumsum_i sum_tj w[t,p,j] U[t,i] Y[i,q]`` with ``Y = U^T A`` (SPEC §2),
a compiled loop over the patch's stencil (:mod:`sodinn._mlar_kernels`). No frame is ever rotated.

A C+ sample differs from the real cube ``M`` only on its companion's stamp, so its Gram matrix is
``M M^T + (S H^T + H S^T) / 2`` with ``S`` the stamps and ``H = A + M`` on the stamp's columns only,
and ``Y`` is needed only on the columns its patch's stencil reads: per sample, a few hundred columns
instead of the whole region. The sub-pixel shifts of the stamp are two small real matrix products
per frame (:class:`sodinn.injection._FourierShifter`), equal to the FFT shift of the injection.

Memory is bounded by ``SampleConfig.memory_budget_gib``: the derotated-mean operator runs over
chunks of pixels, C+ samples are made a few at a time, and the sizes follow from the budget.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from sodinn.config import SampleConfig
from sodinn.geometry import Annuli, annulus_indices, frame_center, patch_offsets
from sodinn.injection import _FourierShifter
from sodinn.pca import cevr, k_list_from_cevr
from sodinn.psf import crop_psf
from sodinn.sequence import ADISequence

__all__ = [
    "AnnulusSamples",
    "MLARSamples",
    "annulus_samples",
    "make_samples",
    "minmax_normalize",
    "positive_samples",
    "sample_annuli",
    "sample_psf",
]

logger = logging.getLogger(__name__)

_ORACLE_KEY = 1_000_000  # spawn key of the S/N oracle's random stream
_POS, _NEG, _AUG = 1, 2, 3  # spawn keys of C+ samples, C- subsets and augmented samples
_MAX_BATCH = 4  # C+ samples whose stamps are made together, at most (more only spills the CPU caches)


@dataclass(frozen=True)
class AnnulusSamples:
    """The samples of one annulus (arrays share the first axis).

    Attributes
    ----------
    index : int
        Annulus number in the partition.
    r_in_px, r_out_px : float
    ks : ndarray of int, shape (K,)
        PCA ranks of the slices.
    flux_range : (float, float)
        Flux bounds of the C+ companions.
    samples : ndarray of float32, shape (n, K, P, P)
        Raw residual patches (normalise with :func:`minmax_normalize`).
    labels : ndarray of int8
        1 for C+, 0 for C-.
    x, y : ndarray of float64
        Sample position in the sky frame: the injected companion (C+) or the pixel (C-).
    flux : ndarray of float64
        Injected flux (0 for C-).
    group : ndarray of int64
        Split unit: C+ injection id (>= 0); C- azimuthal sector (< 0); augmented copies share
        their source's group.
    augmented : ndarray of bool
    """

    index: int
    r_in_px: float
    r_out_px: float
    ks: np.ndarray
    flux_range: tuple[float, float]
    samples: np.ndarray
    labels: np.ndarray
    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    group: np.ndarray
    augmented: np.ndarray


@dataclass(frozen=True)
class MLARSamples:
    """A labeled sample set: the annuli's samples in annulus order, plus how they were made."""

    annuli: tuple[AnnulusSamples, ...]
    config: SampleConfig
    provenance: dict[str, Any] = field(default_factory=dict)
    oracle: dict[str, Any] = field(default_factory=dict)

    def _cat(self, name: str) -> np.ndarray:
        return np.concatenate([getattr(a, name) for a in self.annuli])

    @property
    def samples(self) -> np.ndarray:
        """All samples, shape (n, K, P, P), float32."""
        return self._cat("samples")

    @property
    def labels(self) -> np.ndarray:
        """Labels, shape (n,)."""
        return self._cat("labels")

    @property
    def annulus(self) -> np.ndarray:
        """Annulus index of every sample."""
        return np.concatenate([np.full(len(a.labels), a.index, dtype=np.int16) for a in self.annuli])

    def __len__(self) -> int:
        return int(sum(len(a.labels) for a in self.annuli))


def minmax_normalize(samples: np.ndarray) -> np.ndarray:
    """Scale every k-slice of every sample to [0, 1] by its true min and max; constant slices -> 0."""
    arr = np.asarray(samples, dtype=np.float32)
    lo = arr.min(axis=(-2, -1), keepdims=True)
    span = arr.max(axis=(-2, -1), keepdims=True) - lo
    return np.where(span > 0, (arr - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def sample_psf(sequence: ADISequence, config: SampleConfig) -> np.ndarray:
    """The normalised PSF used for injections, cropped to ``config.psf_size_px`` (default ~4 FWHM)."""
    psf = sequence.psf_normalized
    size = config.psf_size_px or 2 * math.ceil(2 * sequence.fwhm_px) + 1
    if (psf.shape[0] - size) % 2:
        size += 1
    return crop_psf(psf, min(size, psf.shape[0])) if size < psf.shape[0] else psf


def sample_annuli(sequence: ADISequence, config: SampleConfig) -> Annuli:
    """The 1-FWHM annuli of sample generation and prediction (SPEC §3).

    From ``r_in_fwhm`` FWHM outwards, as far as the SVD region widened by ``ceil(P/2) + 1`` px stays
    inside the frame (or ``r_out_fwhm``).

    Raises
    ------
    ValueError
        If the patch is smaller than 2 FWHM or no annulus fits.
    """
    fwhm = sequence.fwhm_px
    if config.patch_px < 2 * fwhm:
        msg = (
            f"patch_px={config.patch_px} is smaller than 2 FWHM ({2 * fwhm:.1f} px); "
            f"use an odd patch of at least {2 * math.ceil(fwhm) + 1} px"
        )
        raise ValueError(msg)
    margin = math.ceil(config.patch_px / 2) + 1
    limit: float = sequence.frame_size // 2 - margin
    if config.r_out_fwhm is not None:
        if config.r_out_fwhm * fwhm > limit:
            msg = (
                f"r_out_fwhm={config.r_out_fwhm} ({config.r_out_fwhm * fwhm:.1f} px) puts the widened SVD region outside "
                f"the frame; at most {limit / fwhm:.2f} FWHM with patch_px={config.patch_px}"
            )
            raise ValueError(msg)
        limit = config.r_out_fwhm * fwhm
    r_in = config.r_in_fwhm * fwhm
    n = int(math.floor((limit - r_in) / fwhm + 1e-9))
    if n < 1:
        msg = (
            f"no 1-FWHM annulus fits between {r_in:.1f} px and {limit:.1f} px in {sequence.frame_size}x{sequence.frame_size} "
            f"px frames with patch_px={config.patch_px}; lower r_in_fwhm or patch_px"
        )
        raise ValueError(msg)
    return Annuli(shape=(sequence.frame_size, sequence.frame_size), edges_px=r_in + fwhm * np.arange(n + 1))


class _MemoryPlan:
    """How one annulus's work is cut to stay within ``SampleConfig.memory_budget_gib`` (estimates, bytes).

    Fixed: the region matrix and its copies (CEVR, Gram, eigen-decomposition), the annulus's patch
    index and its output samples. Streamed: the derotated-mean operator runs over ``chunk_px``
    pixels at a time; C+ stamps are made ``batch`` samples at a time and every C+ sample's own
    matrices (its local columns, Gram matrix, eigenvectors) exist one sample at a time. The +PA
    stencils of all patch pixels (``table``) are kept only if they fit in half of what is left;
    otherwise each batch computes those of its own patches.
    """

    def __init__(self, *, n_frames: int, frame_px: int, n_reg: int, n_union: int, n_centres: int, k_max: int,
                 n_ranks: int, patch_px: int, psf_px: int, n_out: int, budget_gib: float) -> None:
        n, p2, q = n_frames, patch_px**2, psf_px**2
        budget = int(budget_gib * 2**30)
        self.fixed = (8 * n * (n_reg + 1) * 4  # m_ext, the CEVR's standardised copy and its temporaries
                      + 8 * n * n * 8  # Gram matrices and eigen-decomposition workspace
                      + 8 * (n_reg + 1) * k_max  # Y^T of the real cube
                      + 8 * frame_px**2 * 2 + 8 * n_centres * p2  # pixel lookups, patch index
                      + 8 * n_out * n_ranks * p2 * 4)  # samples of both classes: float64 parts, float32 whole
        n_local = min(n_reg + 1, n * q + 4 * n * p2)
        self.per_sample = (8 * n * n_local * 4 + 8 * n * (q + 4 * p2) * 3 + 4 * 4 * n * p2  # local columns, workspace
                           + 8 * n * n * 8 + 8 * (n + n_local) * k_max)  # Gram, eigh, U, Y^T
        self.per_pixel = 64 * n  # a stencil (int32 columns, float64 weights, 4 per frame) and its copy
        self.table_bytes = 12 * 4 * n * n_union  # int32 columns and float64 weights of every +PA patch stencil
        self.per_batch_sample = 64 * n * (q + 2 * psf_px + 8)  # shifted stamps, their operators and columns
        self.minimum_bytes = self.fixed + self.per_sample + self.per_batch_sample + self.per_pixel * p2
        if budget < self.minimum_bytes:
            msg = (f"memory_budget_gib={budget_gib:g} is too small for an annulus of {n_reg} region pixels over {n} frames: "
                   f"it needs at least {self.minimum_bytes / 2**30:.3g} GiB; raise memory_budget_gib, lower "
                   f"samples_per_annulus or bin the frames (sodinn.binning.bin_frames)")
            raise ValueError(msg)
        free = budget - self.fixed - self.per_sample
        self.table = self.table_bytes <= free // 2
        if self.table:
            free -= self.table_bytes
        else:
            self.per_batch_sample += self.per_pixel * p2
        self.chunk_px = int(max(p2, min(n_union, free // self.per_pixel)))
        self.batch = int(max(1, min(_MAX_BATCH, free // self.per_batch_sample)))

    @property
    def peak_bytes(self) -> int:
        """Estimated peak of the annulus's working memory."""
        streamed = max(self.chunk_px * self.per_pixel, self.batch * self.per_batch_sample)
        return self.fixed + self.per_sample + (self.table_bytes if self.table else 0) + streamed


class _AnnulusGeometry:
    """Pixels of one annulus: its SVD region, its candidate centres and the union of their patches."""

    def __init__(self, size: int, r_in: float, r_out: float, patch_px: int) -> None:
        shape = (size, size)
        margin = math.ceil(patch_px / 2) + 1
        lo, hi = max(0.0, r_in - margin), r_out + margin
        self.size = size
        self.region = annulus_indices(shape, lo, hi - lo)
        ay, ax = annulus_indices(shape, r_in, r_out - r_in)
        self.centers = np.column_stack([ay, ax])
        dy, dx = patch_offsets(patch_px)
        flat = (ay[:, None] + dy) * size + (ax[:, None] + dx)
        self.union, inverse = np.unique(flat, return_inverse=True)
        self.patch_rows = inverse.reshape(flat.shape)
        self.patch_px = patch_px

    def plan(self, config: SampleConfig, n_frames: int, psf_px: int | None = None) -> _MemoryPlan:
        """The memory plan of this annulus (raises if ``config.memory_budget_gib`` is too small)."""
        k_bound = int(config.k_list[-1]) if config.k_policy == "fixed" and config.k_list else n_frames - 1
        return _MemoryPlan(n_frames=n_frames, frame_px=self.size, n_reg=self.region[0].size, n_union=self.union.size,
                           n_centres=len(self.centers), k_max=min(k_bound, n_frames), n_ranks=config.n_ranks,
                           patch_px=self.patch_px, psf_px=psf_px or 4 * self.patch_px,
                           n_out=config.samples_per_annulus or len(self.centers), budget_gib=config.memory_budget_gib)


class _AnnulusOperator:
    """Everything one annulus needs: region matrix, ranks, derotation stencils over its patches.

    ``plus`` and ``minus`` are the derotation angles of C+ (+PA) and C- (-PA) samples, to pass to
    :meth:`residual_means`; stencils are built from them in memory-bounded chunks when needed.
    """

    def __init__(self, cube: np.ndarray, angles: np.ndarray, r_in: float, r_out: float, config: SampleConfig,
                 usable: np.ndarray, *, psf_px: int | None = None) -> None:
        n, size, _ = cube.shape
        self.n_frames, self.size = n, size
        p = config.patch_px
        geometry = _AnnulusGeometry(size, r_in, r_out, p)
        self.region = geometry.region
        yy, xx = self.region
        self.n_reg = yy.size
        self.centers = geometry.centers
        self.usable = usable[self.centers[:, 0], self.centers[:, 1]]
        self.union, self.patch_rows = geometry.union, geometry.patch_rows
        self.patch_px = p
        self.plan = geometry.plan(config, n, psf_px)
        self.m_ext = np.zeros((n, self.n_reg + 1))
        self.m_ext[:, : self.n_reg] = cube[:, yy, xx]
        self.lookup = np.full(size * size, self.n_reg, dtype=np.int32)
        self.lookup[yy * size + xx] = np.arange(self.n_reg, dtype=np.int32)
        if config.k_policy == "fixed":
            self.ks = np.asarray(config.k_list, dtype=np.int64)
            if self.ks[-1] > n:
                msg = f"k_list goes up to {self.ks[-1]} but the sequence has only {n} frames; lower k_list"
                raise ValueError(msg)
        else:
            self.ks = k_list_from_cevr(cevr(self.m_ext[:, : self.n_reg], standardize=True), config.n_ranks,
                                       threshold=config.cevr_threshold)
        self.k_max = int(self.ks[-1])
        self.angles = np.asarray(angles, dtype=np.float64)
        self.plus, self.minus = self.angles, -self.angles
        self.linalg_backend = config.linalg_backend
        self._gram: np.ndarray | None = None
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._padded_lookup: np.ndarray | None = None
        self._work: tuple | None = None

    @property
    def gram(self) -> np.ndarray:
        """``M M^T`` of the real region matrix (float64), computed once."""
        if self._gram is None:
            self._gram = self.m_ext @ self.m_ext.T
        return self._gram

    def stencils(self, angles: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear derotation stencils of union pixels ``rows``: region columns (int32) and weights, (n_rows, n, 4).

        The numbers of :class:`~sodinn.rotation.DerotationStencil`, compiled; columns outside the
        region are ``n_reg`` (the zero column of ``m_ext``) with weight 0.
        """
        from sodinn._mlar_kernels import derotation_stencils

        theta = np.deg2rad(np.asarray(angles, dtype=np.float64))
        cy, cx = frame_center((self.size, self.size))
        pixels = np.column_stack([self.union[rows] // self.size, self.union[rows] % self.size]).astype(np.float64)
        return derotation_stencils(pixels, np.cos(theta), np.sin(theta), float(cy), float(cx), self.size, self.lookup,
                                   self.n_reg)

    def residual_means(self, a_ext: np.ndarray, u: np.ndarray, stencil: np.ndarray) -> np.ndarray:
        """Derotated mean residuals at ranks ``ks`` on every union pixel, shape (K, n_union).

        ``stencil`` is the derotation angles (``plus`` or ``minus``); pixels are done in chunks.
        """
        from sodinn._mlar_kernels import residual_patch

        u = np.ascontiguousarray(u)
        a_ext = np.ascontiguousarray(a_ext, dtype=np.float64)
        yt = a_ext.T @ u  # (n_reg + 1, k): Y^T; the zero column stays zero
        out = np.empty((len(self.ks), self.union.size))
        step = self.plan.chunk_px
        for start in range(0, self.union.size, step):
            rows = np.arange(start, min(start + step, self.union.size))
            cols, w = self.stencils(stencil, rows)
            out[:, rows] = residual_patch(a_ext, 0, u, yt, cols, w, np.arange(rows.size), self.ks)
        return out

    def basis(self, a_ext: np.ndarray) -> np.ndarray:
        """Top ``k_max`` left singular vectors of the region matrix (float64 Gram eigen-decomposition)."""
        a = a_ext[:, : self.n_reg]
        gram = self.gram if a_ext is self.m_ext else a @ a.T
        return _top_eigenvectors(gram, self.k_max)

    def patches(self, values: np.ndarray, centre_idx: np.ndarray) -> np.ndarray:
        """Cut (K, n_union) values into (n, K, P, P) patches around the given centres."""
        p = self.patch_px
        out = values[:, self.patch_rows[centre_idx]]  # (K, n, P*P)
        return np.moveaxis(out, 1, 0).reshape(len(centre_idx), len(self.ks), p, p)

    def positive_batch(self, shifter: _FourierShifter, x: np.ndarray, y: np.ndarray, flux: np.ndarray,
                       centres: np.ndarray) -> np.ndarray:
        """C+ samples of a batch of companions (see :func:`_positives`): (b, K, P, P), float64.

        The stamps of the batch are shifted together (:meth:`batch_inputs`); then, in one compiled
        loop, each sample alone: the region columns its stamp and its patch's stencil touch, its Gram
        matrix as the real one plus the change on the stamp's columns, the eigen-decomposition, and
        the stencil contraction (:func:`sodinn._mlar_kernels.positive_patches`).

        With ``SampleConfig.linalg_backend == "keras"`` the eigen-decompositions leave that loop
        for the Keras backend instead (:meth:`_positive_values_keras`).
        """
        from sodinn._mlar_kernels import positive_patches, workspace

        stamps, corner, offsets, lookup, table_cols, table_w, rows = self.batch_inputs(shifter, x, y, flux, centres)
        if self._work is None or self._work[2].shape[1] != stamps.shape[-1]:
            self._work = workspace(self.n_frames, self.n_reg, stamps.shape[-1], self.patch_px**2)
        if self.linalg_backend == "keras":
            values = self._positive_values_keras(stamps, corner, offsets, lookup, table_cols, table_w, rows)
        else:
            values = positive_patches(self.m_ext, self.gram, self.k_max, self.ks, stamps, corner, offsets, lookup,
                                      table_cols, table_w, rows, self._work)
        return values.reshape(len(x), len(self.ks), self.patch_px, self.patch_px)

    def _positive_values_keras(self, stamps: np.ndarray, corner: np.ndarray, offsets: np.ndarray, lookup: np.ndarray,
                               table_cols: np.ndarray, table_w: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """:func:`sodinn._mlar_kernels.positive_patches` with the batch's eigen-decompositions on the Keras backend.

        The same numbers up to rounding, in three steps: (1) each sample's Gram matrix, the real
        one plus the change on its stamp's columns, from the compiled
        :func:`~sodinn._mlar_kernels.injected_columns`; (2) the batch's stacked Gram matrices
        decomposed at once by :func:`sodinn.backend_linalg.eigh_batch` (``keras.ops.eigh``, float64,
        on the backend's device: a GPU when it has one); (3) each sample's local columns made again
        (cheap, deterministic; keeping them would hold the batch's matrices at once, beyond the
        memory plan) for ``Y^T`` and the stencil contraction (:func:`~sodinn._mlar_kernels.residual_patch`).
        Only the ``(b, n, n)`` Gram stack is kept across the batch. Plain Python around compiled
        pieces: slower than the numpy path on a CPU, meant for a GPU where the eigh dominates.
        """
        from sodinn._mlar_kernels import injected_columns, residual_patch
        from sodinn.backend_linalg import eigh_batch

        work = self._work
        b, n = stamps.shape[0], self.n_frames
        grams = np.empty((b, n, n))
        for i in range(b):
            _, s, h, _, _ = injected_columns(self.m_ext, stamps[i], corner[i], offsets, lookup, table_cols, rows[i], work)
            delta = s @ h.T
            grams[i] = self.gram + 0.5 * (delta + delta.T)
        vectors = eigh_batch(grams, k_max=self.k_max, backend="keras").eigenvectors  # (b, n, k_max), descending
        out = np.empty((b, len(self.ks), rows.shape[1]))
        for i in range(b):
            a, _, _, t_start, loc = injected_columns(self.m_ext, stamps[i], corner[i], offsets, lookup, table_cols,
                                                     rows[i], work)
            u = np.ascontiguousarray(vectors[i])
            yt = np.ascontiguousarray(a[:, t_start:].T @ u)
            out[i] = residual_patch(a, t_start, u, yt, loc, table_w, rows[i], self.ks)
        return out

    def batch_inputs(self, shifter: _FourierShifter, x: np.ndarray, y: np.ndarray, flux: np.ndarray,
                     centres: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per-sample inputs of the compiled C+ loop: stamps (b, n, q), their corners (b, n) and offsets (q,)
        in the padded frame lookup, that lookup, and the +PA stencil table, weights and rows (b, P*P)."""
        b, n, p = len(x), self.n_frames, shifter.size
        cy, cx = frame_center((self.size, self.size))
        sep = np.hypot(x - cx, y - cy)
        theta = np.degrees(np.arctan2(y - cy, x - cx))
        phi = np.deg2rad(theta[:, None] - self.angles[None, :])  # as companion_positions
        shift_x, shift_y = sep[:, None] * np.cos(phi), sep[:, None] * np.sin(phi)
        int_x, int_y = np.trunc(shift_x), np.trunc(shift_y)
        stamps = shifter.shifted(shift_y - int_y, shift_x - int_x, flux).reshape(b, n, p * p)
        # stamp pixels in the frame lookup padded by p on each side (no bounds checks)
        width = self.size + 2 * p
        if self._padded_lookup is None or self._padded_lookup.size != width**2:
            padded = np.full((width, width), self.n_reg, dtype=np.int32)
            padded[p:-p, p:-p] = self.lookup.reshape(self.size, self.size)
            self._padded_lookup = padded.ravel()
        corner = ((cy + int_y).astype(np.int64) + p - p // 2) * width + (cx + int_x).astype(np.int64) + p - p // 2
        offsets = (np.arange(p)[:, None] * width + np.arange(p)[None, :]).ravel()
        table_cols, table_w, rows = self._plus_stencils(self.patch_rows[centres])
        return stamps, corner, offsets, self._padded_lookup, table_cols, table_w, rows

    def _plus_stencils(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """+PA stencils covering union pixels ``rows`` (b, P*P): table columns, weights, and rows into them.

        If the plan keeps a table for the annulus, missing rows are filled in and kept (so an annulus
        with few samples never builds the whole table); otherwise the batch's own pixels are computed.
        """
        if not self.plan.table:
            needed, inverse = np.unique(rows, return_inverse=True)
            table_cols, table_w = self.stencils(self.plus, needed)
            return table_cols, table_w, inverse.reshape(rows.shape)
        if self._table is None:
            n_u = self.union.size
            self._table = (np.empty((n_u, self.n_frames, 4), dtype=np.int32), np.empty((n_u, self.n_frames, 4)),
                           np.zeros(n_u, dtype=bool))
        table_cols, table_w, done = self._table
        missing = np.unique(rows[~done[rows]])
        if missing.size:
            table_cols[missing], table_w[missing] = self.stencils(self.plus, missing)
            done[missing] = True
        return table_cols, table_w, rows


def _top_eigenvectors(gram: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` leading eigenvectors of a symmetric matrix (LAPACK), descending, C-contiguous."""
    _, u = np.linalg.eigh(gram)
    return np.ascontiguousarray(u[:, ::-1][:, :k])


def annulus_samples(
    sequence: ADISequence,
    config: SampleConfig,
    index: int,
    r_in_px: float,
    r_out_px: float,
    flux_range: tuple[float, float],
    *,
    psf: np.ndarray | None = None,
) -> AnnulusSamples:
    """C+ and C- samples of one annulus (balanced), deterministic from ``config.seed`` and ``index``."""
    with _single_blas_thread():
        return _annulus_samples(sequence, config, index, r_in_px, r_out_px, flux_range, psf)


def _annulus_samples(sequence, config, index, r_in, r_out, flux_range, psf) -> AnnulusSamples:
    cube = np.asarray(sequence.cube)
    angles = sequence.angles_deg
    psf = sample_psf(sequence, config) if psf is None else psf
    usable = _usable_mask(sequence, config)
    op = _AnnulusOperator(cube, angles, r_in, r_out, config, usable, psf_px=psf.shape[0])
    cy, cx = frame_center(cube.shape)
    centres = np.nonzero(op.usable)[0]  # rows of op.centers
    if centres.size == 0:
        msg = f"annulus {index} ({r_in:.1f}-{r_out:.1f} px) has no pixel left after masking known sources"
        raise ValueError(msg)

    # ---- C-: every usable pixel, residuals derotated with -PA
    u = op.basis(op.m_ext)
    neg_values = op.residual_means(op.m_ext, u, op.minus)
    target = config.samples_per_annulus or centres.size
    rng_neg = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(index, _NEG)))
    neg_idx = np.sort(rng_neg.choice(centres, target, replace=False)) if target < centres.size else centres
    neg = op.patches(neg_values, neg_idx)
    ny, nx = op.centers[neg_idx, 0].astype(np.float64), op.centers[neg_idx, 1].astype(np.float64)
    n_sectors = max(1, int(2 * np.pi * 0.5 * (r_in + r_out) / (2 * config.patch_px)))
    sector = (np.floor((np.degrees(np.arctan2(ny - cy, nx - cx)) % 360) / (360 / n_sectors))).astype(np.int64)
    neg_group = -(index * 10_000 + sector + 1)
    neg_aug = np.zeros(len(neg_idx), dtype=bool)
    if target > len(neg_idx):
        if not config.augment:
            logger.warning("annulus %d: %d usable pixels < samples_per_annulus=%d; set augment=true to fill",
                           index, len(neg_idx), target)
        else:
            extra = _augment(neg, neg_group, target - len(neg_idx), config.seed, index)
            neg = np.concatenate([neg, extra[0]])
            ny, nx = np.r_[ny, ny[extra[1]]], np.r_[nx, nx[extra[1]]]
            neg_group = np.r_[neg_group, neg_group[extra[1]]]
            neg_aug = np.r_[neg_aug, np.ones(len(extra[1]), dtype=bool)]
    n_pos = len(neg)

    # ---- C+: one injection per sample, basis recomputed on the injected region
    px_, py_, flux = np.empty(n_pos), np.empty(n_pos), np.empty(n_pos)
    lo, hi = flux_range
    for i in range(n_pos):
        rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(index, _POS, i)))
        c = int(rng.choice(centres))
        jx, jy = rng.uniform(-config.jitter_px, config.jitter_px, 2)
        f = rng.uniform(lo, hi) if config.flux_distribution == "uniform" else math.exp(rng.uniform(math.log(lo), math.log(hi)))
        px_[i], py_[i], flux[i] = op.centers[c, 1] + jx, op.centers[c, 0] + jy, f
    pos = _positives(op, cube, angles, psf, px_, py_, flux)
    samples = np.concatenate([pos, neg]).astype(np.float32)
    labels = np.r_[np.ones(n_pos, dtype=np.int8), np.zeros(len(neg), dtype=np.int8)]
    return AnnulusSamples(
        index=index, r_in_px=float(r_in), r_out_px=float(r_out), ks=op.ks, flux_range=(float(lo), float(hi)),
        samples=samples, labels=labels, x=np.r_[px_, nx], y=np.r_[py_, ny], flux=np.r_[flux, np.zeros(len(neg))],
        group=np.r_[index * 1_000_000 + np.arange(n_pos, dtype=np.int64), neg_group].astype(np.int64),
        augmented=np.r_[np.zeros(n_pos, dtype=bool), neg_aug],
    )


def _positives(op: _AnnulusOperator, cube: np.ndarray, angles: np.ndarray, psf: np.ndarray,
               x: np.ndarray, y: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """C+ samples for companions at sky positions (x, y) with the given fluxes: (n, K, P, P) float64.

    Samples are taken in order of their patch centre, ``op.plan.batch`` at a time (the memory
    budget's choice). Each sample's numbers depend only on its own companion, never on the batch.
    """
    size = cube.shape[-1]
    row_of = {int(c[0]) * size + int(c[1]): i for i, c in enumerate(op.centers)}
    centre = np.empty(len(x), dtype=np.int64)
    for i in range(len(x)):
        c = row_of.get(int(round(y[i])) * size + int(round(x[i])))
        if c is None:
            msg = f"position (x={x[i]:.2f}, y={y[i]:.2f}) is not on a pixel of this annulus"
            raise ValueError(msg)
        centre[i] = c
    shifter = _FourierShifter(psf)
    out = np.empty((len(x), len(op.ks), op.patch_px, op.patch_px))
    order = np.argsort(centre, kind="stable")
    batch = op.plan.batch
    with _no_cyclic_gc():  # the loop makes no reference cycles; collections would cost ~8 % of it
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            out[idx] = op.positive_batch(shifter, x[idx], y[idx], flux[idx], centre[idx])
    return out


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (reference counting still frees everything)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _single_blas_thread() -> threadpool_limits:
    """One BLAS thread, for the BLAS libraries of numpy and of the compiled kernels (scipy's, which numba
    calls): both must be loaded before the limit is set, or the later one keeps its threads."""
    import scipy.linalg  # noqa: F401 - loads scipy's BLAS and LAPACK

    import sodinn._mlar_kernels  # noqa: F401

    return threadpool_limits(limits=1, user_api="blas")


def positive_samples(
    sequence: ADISequence,
    config: SampleConfig,
    r_in_px: float,
    r_out_px: float,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    *,
    psf: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """C+ samples for companions at given sky positions and fluxes in the annulus ``[r_in, r_out)``.

    Returns the samples ``(n, K, P, P)`` (float64) and the ranks ``ks``. The patch of each sample is
    centred on the pixel nearest to its companion, which must lie in the annulus.
    """
    x, y, flux = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (x, y, flux))
    cube = np.asarray(sequence.cube)
    psf = sample_psf(sequence, config) if psf is None else psf
    with _single_blas_thread():
        op = _AnnulusOperator(cube, sequence.angles_deg, r_in_px, r_out_px, config, np.ones(cube.shape[1:], dtype=bool),
                              psf_px=psf.shape[0])
        return _positives(op, cube, sequence.angles_deg, psf, x, y, flux), op.ks


def _usable_mask(sequence: ADISequence, config: SampleConfig) -> np.ndarray:
    """Pixels allowed as sample centres: away from known sources."""
    size = sequence.frame_size
    yy, xx = np.indices((size, size))
    ok = np.ones((size, size), dtype=bool)
    radius = config.mask_radius_fwhm * sequence.fwhm_px
    for sx, sy in config.known_sources_xy:
        ok &= np.hypot(xx - sx, yy - sy) > radius
    return ok


def _augment(samples: np.ndarray, groups: np.ndarray, count: int, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` augmented samples: random rotation, sub-pixel shift or mean of two of the same group.

    Each augmented sample draws from its own stream (spawn key ``(index, _AUG, j)``), so the result
    does not depend on order or batching. Returns the samples and the index of each one's source.
    """
    from scipy.ndimage import rotate, shift

    out = np.empty((count, *samples.shape[1:]))
    source = np.empty(count, dtype=np.int64)
    for j in range(count):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, _AUG, j)))
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


def fit_flux_ranges(sequence: ADISequence, config: SampleConfig, annuli: Annuli, psf: np.ndarray) -> dict[str, Any]:
    """Run the S/N oracle at the annulus centres; return its table (JSON-able) with the flux ranges."""
    from sodinn.flux import FluxRangeEstimator

    radii = 0.5 * (annuli.r_in_px + annuli.r_out_px)
    est = FluxRangeEstimator(
        config.snr_range, ncomp=min(config.oracle_ncomp, sequence.n_frames - 2), n_azimuths=config.oracle_azimuths,
        rng=np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_ORACLE_KEY,))),
    ).fit(
        sequence.cube, sequence.angles_deg, psf, sequence.fwhm_px, radii,
        exclude_xy=config.known_sources_xy, exclude_radius_px=config.mask_radius_fwhm * sequence.fwhm_px,
    )
    return {
        "radii_px": radii.tolist(),
        "flux_range": est.flux_range_.tolist(),
        "fluxes": est.fluxes_.tolist(),
        "snrs": est.snrs_.tolist(),
        "snr_curve": est.snr_curve_.tolist(),
        "noise_px": est.noise_px_.tolist(),
    }


def make_samples(
    sequence: ADISequence,
    config: SampleConfig | None = None,
    *,
    flux_ranges: np.ndarray | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> MLARSamples:
    """Generate the labeled sample set of a sequence, in memory.

    Parameters
    ----------
    sequence : ADISequence
    config : SampleConfig, optional
    flux_ranges : ndarray, shape (n_annuli, 2), optional
        Skip the S/N oracle and use these flux bounds.
    n_jobs : int, optional
        Worker processes over annuli (default: all cores). Results do not depend on it.
    progress : bool
        Show a progress bar.

    Returns
    -------
    MLARSamples

    See Also
    --------
    sodinn.store.generate_sample_file : the same, written to HDF5, atomically and resumably.
    """
    from tqdm.auto import tqdm

    config = config or SampleConfig()
    if not isinstance(sequence, ADISequence):
        msg = f"sequence must be an ADISequence; got {type(sequence).__name__}"
        raise TypeError(msg)
    annuli = sample_annuli(sequence, config)
    _check_ranks(sequence, config)
    psf = sample_psf(sequence, config)
    _check_memory(sequence, config, annuli, psf)
    oracle: dict[str, Any] = {}
    if flux_ranges is None:
        oracle = fit_flux_ranges(sequence, config, annuli, psf)
        flux_ranges = np.asarray(oracle["flux_range"])
    flux_ranges = np.asarray(flux_ranges, dtype=np.float64)
    if flux_ranges.shape != (len(annuli), 2) or np.any(flux_ranges <= 0) or np.any(flux_ranges[:, 0] > flux_ranges[:, 1]):
        msg = f"flux_ranges must be an ({len(annuli)}, 2) array of positive (low, high) fluxes; got shape {flux_ranges.shape}"
        raise ValueError(msg)
    jobs = _annulus_jobs(sequence, config, annuli, flux_ranges, psf, range(len(annuli)))
    results = list(tqdm(_map(jobs, n_jobs), total=len(jobs), desc="annuli", disable=not progress, unit="annulus"))
    return MLARSamples(annuli=tuple(results), config=config, provenance=_provenance(sequence, config), oracle=oracle)


def _check_ranks(sequence: ADISequence, config: SampleConfig) -> None:
    if config.n_ranks > sequence.n_frames - 1:
        msg = f"n_ranks={config.n_ranks} needs more frames: the sequence has {sequence.n_frames} (at most n_frames - 1 ranks)"
        raise ValueError(msg)


def _check_memory(sequence: ADISequence, config: SampleConfig, annuli: Annuli, psf: np.ndarray,
                  indices: Any = None) -> None:
    """Raise before any work if an annulus cannot be generated within ``config.memory_budget_gib``."""
    for i in range(len(annuli)) if indices is None else indices:
        geometry = _AnnulusGeometry(sequence.frame_size, float(annuli.r_in_px[i]), float(annuli.r_out_px[i]), config.patch_px)
        try:
            geometry.plan(config, sequence.n_frames, psf.shape[0])
        except ValueError as err:
            msg = f"annulus {i} ({annuli.r_in_px[i]:.1f}-{annuli.r_out_px[i]:.1f} px): {err}"
            raise ValueError(msg) from None


def _annulus_jobs(sequence: ADISequence, config: SampleConfig, annuli: Annuli, flux_ranges: np.ndarray,
                  psf: np.ndarray, indices: Any) -> list[tuple]:
    """One work item per annulus index, for :func:`_map` (the memory budget is checked first)."""
    indices = list(indices)
    _check_memory(sequence, config, annuli, psf, indices)
    return [(sequence, config, i, float(annuli.r_in_px[i]), float(annuli.r_out_px[i]), tuple(flux_ranges[i]), psf)
            for i in indices]


def _run(job: tuple) -> AnnulusSamples:
    sequence, config, i, r_in, r_out, fr, psf = job
    return annulus_samples(sequence, config, i, r_in, r_out, fr, psf=psf)


def _map(jobs: list[tuple], n_jobs: int | None):
    # the engine: local pool (n_jobs processes), in-process, or the Dask cluster of engine.use_scheduler
    from sodinn.engine import iter_jobs

    for _, result in iter_jobs(_run, [(job,) for job in jobs], n_workers=n_jobs, ordered=True):
        yield result


def _provenance(sequence: ADISequence, config: SampleConfig) -> dict[str, Any]:
    from sodinn import __version__

    return {
        "sodinn_version": __version__,
        "config_sha256": config.digest(),
        "seed": config.seed,
        "sequence": sequence.describe(),
    }



