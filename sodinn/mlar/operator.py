"""The annulus operator (SPEC §2, exact fast form): PCA residuals of one annulus, derotated and averaged, at K ranks.

For one annulus and patch size P, :class:`AnnulusOperator` holds the SVD region (the annulus widened
by ``ceil(P/2) + 1`` px), its matrix ``M`` (n_frames x n_pix), the ranks ``ks`` and the bilinear
derotation stencils of every pixel a patch of the annulus reads. For a region matrix ``A`` (the real
cube, or an injected copy for C+ samples), ``A A^T = U diag(lam) U^T`` gives the residual at rank k
as ``(I - U_k U_k^T) A``; its derotated mean at patch pixel ``p`` is
``sum_tj w[t,p,j] A[t,q] - cumsum_i sum_tj w[t,p,j] U[t,i] Y[i,q]`` with ``Y = U^T A``, a compiled
loop over the patch's stencil (:mod:`sodinn.mlar._kernels`). No frame is ever rotated.

A C+ sample differs from the real cube ``M`` only on its companion's stamp, so its Gram matrix is
``M M^T + (S H^T + H S^T) / 2`` with ``S`` the stamps and ``H = A + M`` on the stamp's columns only,
and ``Y`` is needed only on the columns its patch's stencil reads: per sample, a few hundred columns
instead of the whole region. The sub-pixel shifts of the stamp are two small real matrix products
per frame (:class:`sodinn.adi.injection.FourierShifter`), equal to the FFT shift of the injection.

Memory is bounded by ``SampleConfig.memory_budget_gib`` (:class:`MemoryPlan`): the derotated-mean
operator runs over chunks of pixels, C+ samples are made a few at a time, and the sizes follow from
the budget. The same operator builds the samples of training (:mod:`sodinn.mlar.samples`) and of
prediction (:mod:`sodinn.detect.probability`), so both see the same numbers.
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from sodinn import _validation as v
from sodinn.adi.geometry import annulus_indices, frame_center, patch_offsets
from sodinn.adi.injection import FourierShifter
from sodinn.adi.pca import cevr, k_list_from_cevr
from sodinn.config import SampleConfig
from sodinn.exceptions import SettingError

__all__ = ["MAX_BATCH", "AnnulusGeometry", "AnnulusOperator", "MemoryPlan", "no_cyclic_gc", "single_blas_thread",
           "top_eigenvectors"]

MAX_BATCH = 4  # C+ samples whose stamps are made together, at most (more only spills the CPU caches)


class MemoryPlan:
    """How one annulus's work is cut to stay within ``SampleConfig.memory_budget_gib`` (estimates, bytes).

    Fixed: the region matrix and its copies (CEVR, Gram, eigen-decomposition), the annulus's patch
    index and its output samples. Streamed: the derotated-mean operator runs over ``chunk_px``
    pixels at a time; C+ stamps are made ``batch`` samples at a time and every C+ sample's own
    matrices (its local columns, Gram matrix, eigenvectors) exist one sample at a time. The +PA
    stencils of all patch pixels (``table``) are kept only if they fit in half of what is left;
    otherwise each batch computes those of its own patches.

    Parameters
    ----------
    n_frames : int
        Frames of the sequence.
    frame_px : int
        Frame side, px.
    n_reg : int
        Pixels of the SVD region (the annulus widened by ``ceil(P/2) + 1`` px, SPEC §2).
    n_union : int
        Pixels of the union of the annulus's patches.
    n_centres : int
        Candidate patch centres (pixels of the annulus).
    k_max : int
        Largest PCA rank.
    n_ranks : int
        Ranks per sample, K.
    patch_px : int
        Patch side P, px.
    psf_px : int
        Side of the injected PSF stamp, px.
    n_out : int
        Samples of each class made for the annulus.
    budget_gib : float
        Memory budget, GiB.

    Attributes
    ----------
    fixed, per_sample, per_pixel, per_batch_sample, table_bytes, minimum_bytes : int
        Estimates, bytes: the fixed part, one C+ sample's own matrices, one pixel's stencil, one
        sample of a C+ batch, the +PA stencil table, and the least budget that works.
    table : bool
        Whether the +PA stencil table of the whole annulus is kept.
    chunk_px : int
        Pixels per chunk of the derotated-mean operator.
    batch : int
        C+ samples whose stamps are made together (at most :data:`MAX_BATCH`).

    Raises
    ------
    ValueError
        If ``budget_gib`` is below ``minimum_bytes``.
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
            need = math.ceil(100 * self.minimum_bytes / 2**30) / 100
            raise SettingError(f"a memory budget of {budget_gib:g} GiB is too small for an annulus of {n_reg} region pixels "
                               f"over {n} frames: it needs at least {self.minimum_bytes / 2**30:.3g} GiB; set {{memory_budget_gib}}, "
                               "lower {samples_per_annulus} or bin the "
                               "frames (sodinn.adi.binning.bin_frames)", memory_budget_gib=need, samples_per_annulus=None)
        free = budget - self.fixed - self.per_sample
        self.table = self.table_bytes <= free // 2
        if self.table:
            free -= self.table_bytes
        else:
            self.per_batch_sample += self.per_pixel * p2
        self.chunk_px = int(max(p2, min(n_union, free // self.per_pixel)))
        self.batch = int(max(1, min(MAX_BATCH, free // self.per_batch_sample)))

    @property
    def peak_bytes(self) -> int:
        """Estimated peak of the annulus's working memory."""
        streamed = max(self.chunk_px * self.per_pixel, self.batch * self.per_batch_sample)
        return self.fixed + self.per_sample + (self.table_bytes if self.table else 0) + streamed


class AnnulusGeometry:
    """Pixels of one annulus: its SVD region, its candidate centres and the union of their patches.

    Parameters
    ----------
    size : int
        Side N of the square frames, px.
    r_in, r_out : float
        Radii of the annulus ``r_in <= r < r_out``, px from the frame centre (SPEC §1).
    patch_px : int
        Patch side P, px (odd).

    Attributes
    ----------
    size, patch_px : int
        As given.
    region : tuple of ndarray
        ``(yy, xx)`` pixel indices of the SVD region: the annulus widened by ``ceil(P/2) + 1`` px on
        both sides (SPEC §2), row-major.
    centers : ndarray of int, shape (n_centres, 2)
        ``(y, x)`` of every pixel of the annulus: the candidate patch centres.
    union : ndarray of int, shape (n_union,)
        Flat indices (``y * size + x``) of every pixel some patch covers, sorted.
    patch_rows : ndarray of int, shape (n_centres, P * P)
        Each centre's patch pixels as rows of ``union``.
    """

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

    def plan(self, config: SampleConfig, n_frames: int, psf_px: int | None = None) -> MemoryPlan:
        """Return the memory plan of this annulus.

        Parameters
        ----------
        config : SampleConfig
            Gives the ranks, the samples per annulus and ``memory_budget_gib``.
        n_frames : int
            Frames of the sequence.
        psf_px : int, optional
            Side of the injected PSF stamp, px (default ``4 * patch_px``).

        Returns
        -------
        MemoryPlan
            Chunk and batch sizes within ``config.memory_budget_gib``.

        Raises
        ------
        ValueError
            If ``config.memory_budget_gib`` is too small for this annulus.
        """
        k_bound = int(config.k_list[-1]) if config.k_policy == "fixed" and config.k_list else n_frames - 1
        return MemoryPlan(n_frames=n_frames, frame_px=self.size, n_reg=self.region[0].size, n_union=self.union.size,
                           n_centres=len(self.centers), k_max=min(k_bound, n_frames), n_ranks=config.n_ranks,
                           patch_px=self.patch_px, psf_px=psf_px or 4 * self.patch_px,
                           n_out=config.samples_per_annulus or len(self.centers), budget_gib=config.memory_budget_gib)


class AnnulusOperator:
    """Everything one annulus needs: region matrix, ranks, derotation stencils over its patches.

    ``plus`` and ``minus`` are the derotation angles of C+ (+PA) and C- (-PA) samples, to pass to
    :meth:`residual_means`; stencils are built from them in memory-bounded chunks when needed.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        The ADI cube (star centred).
    angles : ndarray, shape (n_frames,)
        Parallactic angles, degrees, counter-clockwise (SPEC §1).
    r_in, r_out : float
        Radii of the annulus ``r_in <= r < r_out``, px.
    config : SampleConfig
        Patch size, rank policy (``k_policy``, ``k_list``, ``n_ranks``, ``cevr_threshold``), memory
        budget and ``linalg_backend``.
    usable : ndarray of bool, shape (N, N)
        Pixels allowed as patch centres (False near known sources).
    psf_px : int, optional
        Side of the injected PSF stamp, px, for the memory plan (default ``4 * patch_px``).

    Attributes
    ----------
    n_frames, size : int
        Frames and frame side N.
    region : tuple of ndarray
        ``(yy, xx)`` of the SVD region (:class:`AnnulusGeometry`); ``n_reg`` pixels.
    centers : ndarray of int, shape (n_centres, 2)
        ``(y, x)`` of the annulus pixels.
    usable : ndarray of bool, shape (n_centres,)
        Which of ``centers`` may be patch centres.
    union, patch_rows : ndarray of int
        Pixels covered by patches and each centre's patch as rows of ``union`` (:class:`AnnulusGeometry`).
    plan : MemoryPlan
        Chunk and batch sizes.
    m_ext : ndarray, shape (n_frames, n_reg + 1)
        Region matrix ``M`` of the real cube, plus a zero column (index ``n_reg``) for pixels outside.
    lookup : ndarray of int32, shape (N * N,)
        Region column of every frame pixel, ``n_reg`` outside the region.
    ks : ndarray of int64, shape (K,)
        PCA ranks, ascending (fixed ``k_list`` or from the CEVR, SPEC §2); ``k_max = ks[-1]``.
    angles, plus, minus : ndarray, shape (n_frames,)
        Parallactic angles and the derotation angles of C+ (+PA) and C- (-PA) samples, degrees.

    Raises
    ------
    ValueError
        If ``config.k_list`` goes beyond the number of frames, or the memory budget is too small
        (:class:`MemoryPlan`).

    See Also
    --------
    sodinn.mlar.samples.annulus_samples : Training samples made with this operator.
    """

    def __init__(self, cube: np.ndarray, angles: np.ndarray, r_in: float, r_out: float, config: SampleConfig,
                 usable: np.ndarray, *, psf_px: int | None = None) -> None:
        n, size, _ = cube.shape
        self.n_frames, self.size = n, size
        p = config.patch_px
        geometry = AnnulusGeometry(size, r_in, r_out, p)
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
                raise SettingError(f"the ranks go up to {self.ks[-1]} but the sequence has only {n} frames; lower "
                                   "{k_list}", k_list=None)
        else:
            self.ks = k_list_from_cevr(cevr(self.m_ext[:, : self.n_reg], standardize=True), config.n_ranks,
                                       threshold=config.cevr_threshold)
        self.k_max = int(self.ks[-1])
        self.angles = v.check_angles(angles, n, name="angles")
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
        """Compute the bilinear derotation stencils of some union pixels, in region columns.

        The numbers of :class:`~sodinn.adi.rotation.DerotationStencil`, compiled; columns outside the
        region are ``n_reg`` (the zero column of ``m_ext``) with weight 0.

        Parameters
        ----------
        angles : ndarray, shape (n_frames,)
            Derotation angle of every frame, degrees (``plus`` or ``minus``).
        rows : ndarray of int, shape (n_rows,)
            Pixels, as indices into ``union``.

        Returns
        -------
        cols : ndarray of int32, shape (n_rows, n_frames, 4)
            Region columns of the 4 source pixels of every output pixel in every frame.
        weights : ndarray of float64, shape (n_rows, n_frames, 4)
            Their bilinear weights.
        """
        from sodinn.mlar._kernels import derotation_stencils

        theta = np.deg2rad(np.asarray(angles, dtype=np.float64))
        cy, cx = frame_center((self.size, self.size))
        pixels = np.column_stack([self.union[rows] // self.size, self.union[rows] % self.size]).astype(np.float64)
        return derotation_stencils(pixels, np.cos(theta), np.sin(theta), float(cy), float(cx), self.size, self.lookup,
                                   self.n_reg)

    def residual_means(self, a_ext: np.ndarray, u: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
        """Compute the derotated mean residuals at ranks ``ks`` on every union pixel.

        The exact fast form of SPEC §2: ``(I - U_k U_k^T) A`` derotated and averaged over frames,
        for every k of ``ks`` at once, in chunks of ``plan.chunk_px`` pixels.

        Parameters
        ----------
        a_ext : ndarray, shape (n_frames, n_reg + 1)
            Region matrix (``m_ext`` or an injected copy) with its zero last column.
        u : ndarray, shape (n_frames, k_max)
            Leading left singular vectors of the region matrix, descending (:meth:`basis`).
        angles_deg : ndarray, shape (n_frames,)
            Derotation angles, degrees: ``plus`` (C+, prediction) or ``minus`` (C-).

        Returns
        -------
        ndarray of float64, shape (K, n_union)
            One derotated mean residual per rank and union pixel.
        """
        from sodinn.mlar._kernels import residual_patch

        u = np.ascontiguousarray(u)
        a_ext = np.ascontiguousarray(a_ext, dtype=np.float64)
        yt = a_ext.T @ u  # (n_reg + 1, k): Y^T; the zero column stays zero
        out = np.empty((len(self.ks), self.union.size))
        step = self.plan.chunk_px
        for start in range(0, self.union.size, step):
            rows = np.arange(start, min(start + step, self.union.size))
            cols, w = self.stencils(angles_deg, rows)
            out[:, rows] = residual_patch(a_ext, 0, u, yt, cols, w, np.arange(rows.size), self.ks)
        return out

    def basis(self, a_ext: np.ndarray) -> np.ndarray:
        """Compute the top ``k_max`` left singular vectors of a region matrix (float64 Gram eigen-decomposition).

        Parameters
        ----------
        a_ext : ndarray, shape (n_frames, n_reg + 1)
            Region matrix with its zero last column; for ``m_ext`` itself the cached :attr:`gram` is used.

        Returns
        -------
        ndarray of float64, shape (n_frames, k_max)
            Eigenvectors of ``A A^T``, descending, C-contiguous (SPEC §2).
        """
        a = a_ext[:, : self.n_reg]
        gram = self.gram if a_ext is self.m_ext else a @ a.T
        return top_eigenvectors(gram, self.k_max)

    def patches(self, values: np.ndarray, centre_idx: np.ndarray) -> np.ndarray:
        """Cut per-pixel values into patches around some centres.

        Parameters
        ----------
        values : ndarray, shape (K, n_union)
            Values on the union pixels (:meth:`residual_means`).
        centre_idx : ndarray of int, shape (n,)
            Patch centres, as rows of ``centers``.

        Returns
        -------
        ndarray, shape (n, K, P, P)
            The patches, in the order of ``centre_idx``.
        """
        p = self.patch_px
        out = values[:, self.patch_rows[centre_idx]]  # (K, n, P*P)
        return np.moveaxis(out, 1, 0).reshape(len(centre_idx), len(self.ks), p, p)

    def positive_samples(self, psf: np.ndarray, x: np.ndarray, y: np.ndarray, flux: np.ndarray) -> np.ndarray:
        """Make the C+ samples of companions injected one at a time at sky positions ``(x, y)`` with fluxes ``flux``.

        Each sample's PCA basis is recomputed on its own injected cube (SPEC §3). Samples are made in
        order of their patch centre, ``plan.batch`` at a time (the memory budget's choice); each
        sample's numbers depend only on its own companion, never on the batch.

        Parameters
        ----------
        psf : ndarray, shape (p, p)
            Normalised PSF of the injections.
        x, y : ndarray, shape (n,)
            Companion positions in the sky frame, px; each must round to a pixel of the annulus.
        flux : ndarray, shape (n,)
            Companion fluxes, in the cube's units (times the normalised PSF).

        Returns
        -------
        ndarray of float64, shape (n, K, P, P)

        Raises
        ------
        ValueError
            If a position does not round to a pixel of the annulus.
        """
        return self.positive_values(psf, x, y, flux)[0]

    def positive_values(self, psf: np.ndarray, x: np.ndarray, y: np.ndarray, flux: np.ndarray,
                        extra_rows: list[np.ndarray] | tuple[np.ndarray, ...] | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """Make C+ samples as :meth:`positive_samples`, and each one's residuals on more pixels of its injected cube.

        The extra pixels of a sample (e.g. the S/N apertures around its ring,
        :func:`sodinn.mlar.features.ring_apertures`) go through the same compiled loop as its patch,
        with the same recomputed basis: exact, at a cost that grows with their number.

        Parameters
        ----------
        psf : ndarray, shape (p, p)
            Normalised PSF of the injections.
        x, y : ndarray, shape (n,)
            Companion positions in the sky frame, px; each must round to a pixel of the annulus.
        flux : ndarray, shape (n,)
            Companion fluxes, in the cube's units (times the normalised PSF).
        extra_rows : sequence of ndarray of int, optional
            Per sample, rows of ``union`` where its residuals are wanted too (default none).

        Returns
        -------
        samples : ndarray of float64, shape (n, K, P, P)
            Derotated (+PA) mean residual patches.
        extra : list of ndarray of float64, shape (K, len(extra_rows[i])) each
            Each sample's residuals on its extra rows (empty arrays without ``extra_rows``).

        Raises
        ------
        ValueError
            If a position does not round to a pixel of the annulus, or ``extra_rows`` has not one
            array of union rows per sample.
        """
        row_of = {int(c[0]) * self.size + int(c[1]): i for i, c in enumerate(self.centers)}
        centre = np.empty(len(x), dtype=np.int64)
        for i in range(len(x)):
            c = row_of.get(int(round(y[i])) * self.size + int(round(x[i])))
            if c is None:
                msg = f"position (x={x[i]:.2f}, y={y[i]:.2f}) is not on a pixel of this annulus"
                raise ValueError(msg)
            centre[i] = c
        p2 = self.patch_px**2
        if extra_rows is None:
            extra_rows = [np.zeros(0, dtype=np.int64)] * len(x)
        if len(extra_rows) != len(x) or any(np.any((r < 0) | (r >= self.union.size)) for r in extra_rows):
            msg = f"extra_rows must hold one array of rows of union (0 ... {self.union.size - 1}) per sample"
            raise ValueError(msg)
        width = p2 + max((len(r) for r in extra_rows), default=0)
        shifter = FourierShifter(psf)
        out = np.empty((len(x), len(self.ks), self.patch_px, self.patch_px))
        extra: list[np.ndarray] = [np.empty((len(self.ks), 0))] * len(x)
        order = np.argsort(centre, kind="stable")
        batch = self.plan.batch
        with no_cyclic_gc():  # the loop makes no reference cycles; collections would cost ~8 % of it
            for start in range(0, len(x), batch):
                idx = order[start : start + batch]
                rows = np.empty((len(idx), width), dtype=np.int64)
                for j, i in enumerate(idx):  # the patch, its extra rows, then the patch's centre as padding
                    r = np.asarray(extra_rows[i], dtype=np.int64)
                    rows[j, :p2] = self.patch_rows[centre[i]]
                    rows[j, p2 : p2 + r.size] = r
                    rows[j, p2 + r.size :] = self.patch_rows[centre[i], p2 // 2]
                values = self._positive_rows(shifter, x[idx], y[idx], flux[idx], rows)
                out[idx] = values[:, :, :p2].reshape(len(idx), len(self.ks), self.patch_px, self.patch_px)
                for j, i in enumerate(idx):
                    extra[i] = values[j, :, p2 : p2 + len(extra_rows[i])]
        return out, extra

    def positive_batch(self, shifter: FourierShifter, x: np.ndarray, y: np.ndarray, flux: np.ndarray,
                       centres: np.ndarray) -> np.ndarray:
        """Compute the C+ samples of a batch of companions (see :func:`sodinn.mlar.samples.positive_samples`).

        The stamps of the batch are shifted together (:meth:`batch_inputs`); then, in one compiled
        loop, each sample alone: the region columns its stamp and its patch's stencil touch, its Gram
        matrix as the real one plus the change on the stamp's columns, the eigen-decomposition, and
        the stencil contraction (:func:`sodinn.mlar._kernels.positive_patches`). The basis is
        recomputed on every injected region, as SPEC §3 requires (self-subtraction is real).

        With ``SampleConfig.linalg_backend == "keras"`` the eigen-decompositions leave that loop
        for the Keras backend instead (:meth:`_positive_values_keras`).

        Parameters
        ----------
        shifter : FourierShifter
            Sub-pixel shifts of the normalised PSF stamp.
        x, y : ndarray, shape (b,)
            Companion positions in the sky frame, px.
        flux : ndarray, shape (b,)
            Companion fluxes, cube units times the normalised PSF.
        centres : ndarray of int, shape (b,)
            Each sample's patch centre (the pixel nearest its companion), as rows of ``centers``.

        Returns
        -------
        ndarray of float64, shape (b, K, P, P)
            Derotated (+PA) mean residual patches.
        """
        values = self._positive_rows(shifter, x, y, flux, self.patch_rows[centres])
        return values.reshape(len(x), len(self.ks), self.patch_px, self.patch_px)

    def _positive_rows(self, shifter: FourierShifter, x: np.ndarray, y: np.ndarray, flux: np.ndarray,
                       rows: np.ndarray) -> np.ndarray:
        """C+ residuals of a batch on union rows ``rows`` (b, n_rows): (b, K, n_rows); see :meth:`positive_batch`."""
        from sodinn.mlar._kernels import positive_patches, workspace

        stamps, corner, offsets, lookup, table_cols, table_w, rows = self.batch_inputs(shifter, x, y, flux, None,
                                                                                        rows=rows)
        if self._work is None or self._work[2].shape[1] != stamps.shape[-1] or self._work[3].shape[0] < rows.shape[1]:
            self._work = workspace(self.n_frames, self.n_reg, stamps.shape[-1], max(self.patch_px**2, rows.shape[1]))
        if self.linalg_backend == "keras":
            return self._positive_values_keras(stamps, corner, offsets, lookup, table_cols, table_w, rows)
        return positive_patches(self.m_ext, self.gram, self.k_max, self.ks, stamps, corner, offsets, lookup,
                                table_cols, table_w, rows, self._work)

    def _positive_values_keras(self, stamps: np.ndarray, corner: np.ndarray, offsets: np.ndarray, lookup: np.ndarray,
                               table_cols: np.ndarray, table_w: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """:func:`sodinn.mlar._kernels.positive_patches` with the batch's eigen-decompositions on the Keras backend.

        The same numbers up to rounding, in three steps: (1) each sample's Gram matrix, the real
        one plus the change on its stamp's columns, from the compiled
        :func:`~sodinn.mlar._kernels.injected_columns`; (2) the batch's stacked Gram matrices
        decomposed at once by :func:`sodinn.mlar.linalg.eigh_batch` (``keras.ops.eigh``, float64,
        on the backend's device: a GPU when it has one); (3) each sample's local columns made again
        (cheap, deterministic; keeping them would hold the batch's matrices at once, beyond the
        memory plan) for ``Y^T`` and the stencil contraction (:func:`~sodinn.mlar._kernels.residual_patch`).
        Only the ``(b, n, n)`` Gram stack is kept across the batch. Plain Python around compiled
        pieces: slower than the numpy path on a CPU, meant for a GPU where the eigh dominates.
        """
        from sodinn.mlar._kernels import injected_columns, residual_patch
        from sodinn.mlar.linalg import eigh_batch

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

    def batch_inputs(self, shifter: FourierShifter, x: np.ndarray, y: np.ndarray, flux: np.ndarray,
                     centres: np.ndarray | None, *, rows: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """Prepare the per-sample inputs of the compiled C+ loop.

        Parameters
        ----------
        shifter : FourierShifter
            Sub-pixel shifts of the normalised PSF stamp (side p, ``q = p * p``).
        x, y : ndarray, shape (b,)
            Companion positions in the sky frame, px.
        flux : ndarray, shape (b,)
            Companion fluxes.
        centres : ndarray of int, shape (b,), or None
            Patch centres, as rows of ``centers``: the residuals are wanted on their patches.
        rows : ndarray of int, shape (b, n_rows), optional
            Instead of ``centres``: the union rows where each sample's residuals are wanted.

        Returns
        -------
        stamps : ndarray, shape (b, n_frames, q)
            Each companion's shifted stamp in every frame, flux included.
        corner : ndarray of int64, shape (b, n_frames)
            Flat index of every stamp's corner in the padded frame lookup.
        offsets : ndarray of int, shape (q,)
            Flat offsets of the stamp pixels from the corner.
        lookup : ndarray of int32
            Region column of every pixel of the frame padded by p on each side (``n_reg`` outside).
        table_cols, table_w : ndarray, shape (n_table, n_frames, 4)
            +PA stencil table: region columns (int32) and weights.
        rows : ndarray of int, shape (b, P * P) or (b, n_rows)
            Each sample's patch pixels (or ``rows``) as rows of the table.
        """
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
        table_cols, table_w, rows = self._plus_stencils(self.patch_rows[centres] if rows is None else np.asarray(rows))
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


def top_eigenvectors(gram: np.ndarray, k: int) -> np.ndarray:
    """Compute the ``k`` leading eigenvectors of a symmetric matrix (LAPACK).

    Parameters
    ----------
    gram : ndarray, shape (n, n)
        Symmetric matrix, e.g. a Gram matrix ``A A^T``.
    k : int
        Eigenvectors to keep.

    Returns
    -------
    ndarray, shape (n, k)
        Columns in descending order of eigenvalue, C-contiguous.
    """
    _, u = np.linalg.eigh(gram)
    return np.ascontiguousarray(u[:, ::-1][:, :k])


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (reference counting still frees everything).

    Yields
    ------
    None
        The collector is re-enabled on exit if it was enabled on entry.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def single_blas_thread() -> threadpool_limits:
    """Limit the BLAS libraries of numpy and of the compiled kernels to one thread.

    The kernels call scipy's BLAS through numba: both libraries must be loaded before the limit is
    set, or the later one keeps its threads, so this loads them first.

    Returns
    -------
    threadpoolctl.threadpool_limits
        The limit, in effect from this call; use it as a context manager to restore the previous
        limits on exit.
    """
    import scipy.linalg  # noqa: F401 - loads scipy's BLAS and LAPACK

    from sodinn.mlar import _kernels  # noqa: F401

    return threadpool_limits(limits=1, user_api="blas")
