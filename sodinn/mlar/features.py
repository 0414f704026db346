"""S/N curves of MLAR samples (NA-SODINN, Cantero et al. 2023, A&A 680, A86): a sample's S/N across its K ranks.

A sample's patches (SPEC §3) are too small to hold the noise apertures of the S/N (Mawet et al.
2014, SPEC §5): these lie all around the annulus. NA-SODINN computes the S/N curve from the
residual frames at each rank at the sample's position; here those frames are the annulus operator's
own (:class:`sodinn.mlar.operator.AnnulusOperator`: no mean subtraction, derotated, mean over
time), evaluated only on the pixels the apertures read, for every sample of an annulus at once.

:func:`snr_curves` is the S/N of :func:`sodinn.adi.snr.snr` (same apertures, clockwise from the
test position, exact pixel fractions), vectorised over positions and frames.
:func:`annulus_snr_curves` feeds it from an operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.aperture import aperture_weights, gather_blocks
from sodinn.adi.geometry import frame_center
from sodinn.exceptions import SettingError
from sodinn.mlar.operator import AnnulusOperator

__all__ = ["SNR_CURVES", "RingApertures", "annulus_snr_curves", "ring_apertures", "snr_curves"]

#: How the S/N curves of sample files and prediction are made (negative lobes kept; noise apertures on known sources
#: dropped, as the S/N oracle does, since issue 14: "/1" counted them); sample files and model folders record it
SNR_CURVES = "mawet-snr-per-rank/2"


def snr_curves(
    frames: npt.ArrayLike,
    positions_xy: npt.ArrayLike,
    fwhm_px: float,
    *,
    exclude_negative_lobes: bool = False,
    exclude_xy: npt.ArrayLike = (),
    exclude_radius_px: float = 0.0,
) -> np.ndarray:
    """Compute the S/N (Mawet et al. 2014) of every position in every frame: one S/N curve per position.

    Equal to ``sodinn.adi.snr.snr(frames[j], positions_xy[i], fwhm_px, exclude_xy=exclude_xy,
    exclude_radius_px=exclude_radius_px)`` for every ``(i, j)``.

    Parameters
    ----------
    frames : ndarray, shape (K, N, N)
        Residual frames, e.g. one per PCA rank; star at :func:`~sodinn.adi.geometry.frame_center`.
    positions_xy : array-like, shape (n, 2)
        Test positions ``(x, y)``, px, each farther than ``FWHM/2 + 1`` px from the star.
    fwhm_px : float
        PSF FWHM, px (apertures of radius ``fwhm_px / 2``).
    exclude_negative_lobes : bool
        Drop the two noise apertures next to the test one (ADI self-subtraction lobes).
    exclude_xy : array-like, shape (m, 2)
        Known sources ``(x, y)``, px (none by default): the noise apertures whose centre lies within
        ``exclude_radius_px`` of one of them are dropped (the rule of :func:`sodinn.adi.snr.snr_details`).
    exclude_radius_px : float
        The distance to a known source within which a noise aperture is dropped, px (>= 0).

    Returns
    -------
    ndarray of float64, shape (n, K)
        ``(f_0 - mean(f_i)) / (std(f_i, ddof=1) sqrt(1 + 1/n_2))`` over the kept noise apertures (SPEC §5).

    Raises
    ------
    TypeError
        If an argument is not array-like of numbers or ``fwhm_px`` is not a real number.
    ValueError
        If ``frames`` is not a finite cube of square frames, a position is outside the frame or
        within ``FWHM/2 + 1`` px of the star, ``exclude_xy`` is not ``(m, 2)`` positions,
        ``exclude_radius_px`` is negative, or fewer than 2 noise apertures fit (or remain outside the
        exclusion: a :class:`~sodinn.exceptions.SettingError` naming ``exclude_radius_px``).

    See Also
    --------
    sodinn.adi.snr.snr : The same S/N at one position of one frame.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> frames = rng.normal(size=(3, 41, 41))
    >>> frames[:, 20, 32] += [0.0, 10.0, 30.0]  # a source that brightens with the rank
    >>> curve = snr_curves(frames, [(32, 20)], 3.0)[0]
    >>> bool(curve[0] < curve[1] < curve[2])
    True
    """
    arr = v.check_cube(frames, name="frames")
    size = arr.shape[-1]
    fwhm = v.check_fwhm(fwhm_px, frame_size=size)
    xy = v.check_positions_xy(positions_xy, name="positions_xy", frame_size=size)
    centers, counts = _ring_centers(xy, fwhm, arr.shape)
    noise_index = _noise_index(counts, bool(exclude_negative_lobes))
    noise_index = _outside_sources(noise_index, centers, counts, exclude_xy, exclude_radius_px, size)
    y0, x0, w = aperture_weights(centers, fwhm / 2)
    fluxes = gather_blocks(arr, y0, x0, w.shape[-1], w)  # (K, n_apertures)
    out = np.empty((len(xy), arr.shape[0]))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for i, (start, noise) in enumerate(zip(starts, noise_index)):
        out[i] = _snr_of_fluxes(fluxes[:, start : start + counts[i]], noise)
    return out


def _snr_of_fluxes(fluxes: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """S/N (SPEC §5) at every rank from the aperture fluxes ``(K, n_apertures)`` of one position (signal first)."""
    signal = fluxes[:, 0]
    values = fluxes[:, noise]  # (K, n_2)
    return (signal - values.mean(axis=1)) / (values.std(axis=1, ddof=1) * np.sqrt(1 + 1 / noise.size))


def annulus_snr_curves(
    operator: AnnulusOperator,
    centre_idx: npt.ArrayLike,
    fwhm_px: float,
    *,
    a_ext: np.ndarray | None = None,
    angles_deg: npt.ArrayLike | None = None,
    exclude_negative_lobes: bool = False,
    exclude_xy: npt.ArrayLike = (),
    exclude_radius_px: float = 0.0,
) -> np.ndarray:
    """Compute the S/N curves of samples of one annulus from its operator's residual frames (NA-SODINN).

    The residual at every rank of ``operator.ks`` (``(I - U_k U_k^T) A`` of the region matrix
    ``A``, derotated and averaged over time, SPEC §2) is computed only on the patch pixels the S/N
    apertures of the samples read, then :func:`snr_curves` is applied at the sample centres. With
    the defaults (the real cube, +PA) these are the S/N curves of prediction samples; pass
    ``angles_deg=operator.minus`` for C- samples, or an injected region matrix for a C+ sample.

    Parameters
    ----------
    operator : AnnulusOperator
        The annulus operator (:mod:`sodinn.mlar.operator`).
    centre_idx : array-like of int, shape (n,)
        Sample centres, as rows of ``operator.centers``.
    fwhm_px : float
        PSF FWHM, px.
    a_ext : ndarray, shape (n_frames, n_reg + 1), optional
        Region matrix with its zero last column (default ``operator.m_ext``, the real cube); its
        PCA basis is recomputed (:meth:`~sodinn.mlar.operator.AnnulusOperator.basis`).
    angles_deg : array-like, shape (n_frames,), optional
        Derotation angles, degrees (default ``operator.plus``).
    exclude_negative_lobes : bool
        Drop the two noise apertures next to the test one.
    exclude_xy : array-like, shape (m, 2)
        Known sources ``(x, y)`` in the sky frame, px: noise apertures centred within
        ``exclude_radius_px`` of them are dropped (as :func:`snr_curves`).
    exclude_radius_px : float
        The exclusion distance, px (>= 0).

    Returns
    -------
    ndarray of float64, shape (n, K)
        S/N of each sample at each rank of ``operator.ks``.

    Raises
    ------
    TypeError
        If ``operator`` is not an :class:`~sodinn.mlar.operator.AnnulusOperator`.
    ValueError
        If ``centre_idx`` holds a row outside ``operator.centers``, an aperture reads a pixel no
        patch of the annulus covers (the patch is narrower than ``FWHM + 2`` px), or fewer than 2
        noise apertures remain outside the exclusion.
    """
    from sodinn.mlar._kernels import residual_patch

    if not isinstance(operator, AnnulusOperator):
        msg = f"operator must be an AnnulusOperator; got {type(operator).__name__}"
        raise TypeError(msg)
    idx = np.asarray(centre_idx, dtype=np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= len(operator.centers)):
        msg = f"centre_idx must be rows of operator.centers (0 ... {len(operator.centers) - 1})"
        raise ValueError(msg)
    size = operator.size
    fwhm = v.check_fwhm(fwhm_px, frame_size=size)
    a = operator.m_ext if a_ext is None else np.ascontiguousarray(a_ext, dtype=np.float64)
    angles = operator.plus if angles_deg is None else v.check_angles(angles_deg, operator.n_frames, name="angles_deg")
    xy = operator.centers[idx][:, ::-1].astype(np.float64)
    centers, _ = _ring_centers(xy, fwhm, (size, size))
    rows = _covered_rows(operator, centers, fwhm / 2)
    u = operator.basis(a)
    yt = a.T @ u
    frames = np.zeros((len(operator.ks), size * size))
    step = operator.plan.chunk_px
    for start in range(0, rows.size, step):
        chunk = rows[start : start + step]
        cols, w = operator.stencils(angles, chunk)
        frames[:, operator.union[chunk]] = residual_patch(a, 0, u, yt, cols, w, np.arange(chunk.size), operator.ks)
    return snr_curves(frames.reshape(-1, size, size), xy, fwhm, exclude_negative_lobes=exclude_negative_lobes,
                      exclude_xy=exclude_xy, exclude_radius_px=exclude_radius_px)


@dataclass(frozen=True)
class RingApertures:
    """The S/N apertures (SPEC §5) of some sample centres of one annulus, on its operator's union pixels.

    Made by :func:`ring_apertures`. The S/N curve of a centre needs the residual frames only on
    ``rows[i]``: the pixels of its apertures, all around the ring through it; the annulus operator
    computes its residuals on exactly those pixels (:class:`~sodinn.mlar.operator.AnnulusOperator`).

    Attributes
    ----------
    rows : tuple of ndarray of int64
        For every centre, the rows of ``operator.union`` its apertures read (sorted, distinct).
    index : tuple of ndarray of int64, shape (n_apertures, m * m)
        For every centre, the position in its ``rows`` of every pixel of every aperture's m x m block.
    weights : tuple of ndarray of float64, shape (n_apertures, m * m)
        The exact pixel fractions of those pixels (0 outside the aperture); the signal aperture first.
    noise : tuple of ndarray of int64
        For every centre, its noise apertures (indices into the apertures; 0 is the signal).
    """

    rows: tuple[np.ndarray, ...]
    index: tuple[np.ndarray, ...]
    weights: tuple[np.ndarray, ...]
    noise: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        """Return the number of centres."""
        return len(self.rows)

    @property
    def max_rows(self) -> int:
        """The largest number of pixels one centre's apertures read."""
        return max((r.size for r in self.rows), default=0)

    def curves_from_union(self, values: np.ndarray) -> np.ndarray:
        """Compute the S/N curve of every centre from residual values on all union pixels.

        Parameters
        ----------
        values : ndarray, shape (K, n_union)
            One residual value per rank and union pixel, e.g.
            :meth:`~sodinn.mlar.operator.AnnulusOperator.residual_means`.

        Returns
        -------
        ndarray of float64, shape (n, K)
            Equal to :func:`snr_curves` on the frames that hold ``values`` on the union pixels.
        """
        values = np.asarray(values, dtype=np.float64)
        return self.curves_from_rows([values[:, r] for r in self.rows])

    def curves_from_rows(self, values: Sequence[np.ndarray]) -> np.ndarray:
        """Compute the S/N curve of every centre from residual values on its own aperture pixels.

        Parameters
        ----------
        values : sequence of ndarray, shape (K, len(rows[i])) each
            Per centre, the residual value at each rank on its ``rows[i]`` (e.g. of its own
            injected cube, for a C+ sample).

        Returns
        -------
        ndarray of float64, shape (n, K)
            The S/N (Mawet et al. 2014) of every centre at every rank.

        Raises
        ------
        ValueError
            If the number of arrays or of their columns does not match the centres' pixels.
        """
        if len(values) != len(self.rows):
            msg = f"values must hold one array per centre ({len(self.rows)}); got {len(values)}"
            raise ValueError(msg)
        out = []
        for v_i, idx, w, noise, rows in zip(values, self.index, self.weights, self.noise, self.rows):
            v_i = np.asarray(v_i, dtype=np.float64)
            if v_i.ndim != 2 or v_i.shape[1] != rows.size:
                msg = f"each array of values must be (K, {rows.size}) for its centre; got shape {v_i.shape}"
                raise ValueError(msg)
            fluxes = np.einsum("kam,am->ka", v_i[:, idx], w)
            out.append(_snr_of_fluxes(fluxes, noise))
        return np.array(out).reshape(len(self.rows), -1)


def ring_apertures(
    operator: AnnulusOperator,
    centre_idx: npt.ArrayLike,
    fwhm_px: float,
    *,
    exclude_negative_lobes: bool = False,
    exclude_xy: npt.ArrayLike = (),
    exclude_radius_px: float = 0.0,
) -> RingApertures:
    """Place the S/N apertures of sample centres of one annulus on its operator's union pixels.

    The apertures of :func:`snr_curves` (radius ``FWHM/2``, clockwise from the centre, exact pixel
    fractions; Mawet et al. 2014, SPEC §5) at each centre pixel, as rows of ``operator.union``: the
    residuals there give the S/N curves of MLAR samples (NA-SODINN, Cantero et al. 2023, A&A 680, A86),
    for C- and prediction samples from one residual per annulus
    (:meth:`RingApertures.curves_from_union`), for a C+ sample from its own injected cube
    (:meth:`RingApertures.curves_from_rows`).

    Parameters
    ----------
    operator : AnnulusOperator
        The annulus operator (:mod:`sodinn.mlar.operator`).
    centre_idx : array-like of int, shape (n,)
        Sample centres, as rows of ``operator.centers``; the S/N is taken at the pixel.
    fwhm_px : float
        PSF FWHM, px.
    exclude_negative_lobes : bool
        Drop the two noise apertures next to the test one.
    exclude_xy : array-like, shape (m, 2)
        Known sources ``(x, y)`` in the sky frame, px (e.g. ``SampleConfig.known_sources_xy``): the
        noise apertures whose centre lies within ``exclude_radius_px`` of one of them are dropped
        (the rule of :func:`sodinn.adi.snr.snr_details`, as the S/N oracle uses).
    exclude_radius_px : float
        The exclusion distance, px (>= 0; the oracle's is ``mask_radius_fwhm`` times the FWHM).

    Returns
    -------
    RingApertures
        Rows, weights and noise apertures of every centre.

    Raises
    ------
    TypeError
        If ``operator`` is not an :class:`~sodinn.mlar.operator.AnnulusOperator`.
    ValueError
        If ``centre_idx`` holds a row outside ``operator.centers``, an aperture reads a pixel no
        patch of the annulus covers (the patch is narrower than ``FWHM + 2`` px), or fewer than 2
        noise apertures remain outside the exclusion (a :class:`~sodinn.exceptions.SettingError`
        naming ``exclude_radius_px``).
    """
    if not isinstance(operator, AnnulusOperator):
        msg = f"operator must be an AnnulusOperator; got {type(operator).__name__}"
        raise TypeError(msg)
    idx = np.asarray(centre_idx, dtype=np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= len(operator.centers)):
        msg = f"centre_idx must be rows of operator.centers (0 ... {len(operator.centers) - 1})"
        raise ValueError(msg)
    size = operator.size
    fwhm = v.check_fwhm(fwhm_px, frame_size=size)
    xy = operator.centers[idx][:, ::-1].astype(np.float64)
    centers, counts = _ring_centers(xy, fwhm, (size, size))
    noise = _noise_index(counts, bool(exclude_negative_lobes))
    noise = _outside_sources(noise, centers, counts, exclude_xy, exclude_radius_px, size)
    y0, x0, w = aperture_weights(centers, fwhm / 2)
    m = w.shape[-1]
    flat = ((y0[:, None, None] + np.arange(m)[None, :, None]) * size + (x0[:, None, None] + np.arange(m)[None, None, :]))
    flat = flat.reshape(len(centers), -1)
    w = w.reshape(len(centers), -1)
    used = w > 0
    union_row = np.minimum(np.searchsorted(operator.union, flat), operator.union.size - 1)
    if not np.array_equal(operator.union[union_row[used]], flat[used]):
        msg = (f"the S/N apertures read pixels no patch of this annulus covers; use patches of at least "
               f"FWHM + 2 px (patch_px={operator.patch_px})")
        raise ValueError(msg)
    rows, index, weights = [], [], []
    for start, count in zip(np.cumsum(counts) - counts, counts):
        part = slice(int(start), int(start + count))
        r = np.unique(union_row[part][used[part]])
        rows.append(r)
        index.append(np.where(used[part], np.searchsorted(r, union_row[part]), 0).astype(np.int64))
        weights.append(np.ascontiguousarray(w[part]))
    return RingApertures(rows=tuple(rows), index=tuple(index), weights=tuple(weights), noise=tuple(noise))


def _ring_centers(xy: np.ndarray, fwhm: float, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Aperture centres of every position, clockwise from it (the geometry of :mod:`sodinn.adi.snr`), and their counts."""
    cy, cx = frame_center(shape)
    dx, dy = xy[:, 0] - cx, xy[:, 1] - cy
    sep = np.hypot(dx, dy)
    close = np.flatnonzero(~(sep > fwhm / 2 + 1))
    if close.size:
        x, y = xy[close[0]]
        msg = f"positions_xy ({x:g}, {y:g}) is {sep[close[0]]:.2f} px from the star; the S/N needs a separation > FWHM/2 + 1 px"
        raise ValueError(msg)
    step = 2 * np.arcsin(fwhm / 2 / sep)
    counts = np.floor(2 * np.pi / step).astype(np.int64)
    owner = np.repeat(np.arange(len(sep)), counts)
    k = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    phi = np.arctan2(dy, dx)[owner] - step[owner] * k
    centers = np.column_stack([sep[owner] * np.cos(phi), sep[owner] * np.sin(phi)]) + np.array([cx, cy])
    return centers, counts


def _noise_index(counts: np.ndarray, exclude_negative_lobes: bool) -> list[np.ndarray]:
    out = []
    for n in counts:
        idx = np.arange(2, n - 1) if exclude_negative_lobes else np.arange(1, n)
        if idx.size < 2:
            msg = "fewer than 2 noise apertures at this separation; move the test position farther from the star"
            raise ValueError(msg)
        out.append(idx)
    return out


def _outside_sources(noise: list[np.ndarray], centers: np.ndarray, counts: np.ndarray, exclude_xy: npt.ArrayLike,
                     exclude_radius_px: float, size: int) -> list[np.ndarray]:
    """Keep, for every position, its noise apertures centred farther than ``exclude_radius_px`` from every source.

    The rule of :func:`sodinn.adi.snr.snr_details` (distance ``>`` radius kept; the test aperture always kept).
    """
    radius = v.check_real(exclude_radius_px, name="exclude_radius_px")
    if radius < 0:
        msg = f"exclude_radius_px must be >= 0 px; got {radius:g}"
        raise ValueError(msg)
    if np.size(exclude_xy) == 0:
        return noise
    sources = v.check_positions_xy(exclude_xy, name="exclude_xy")
    out = []
    for start, count, idx in zip(np.cumsum(counts) - counts, counts, noise):
        own = centers[int(start) : int(start + count)]
        dist = np.hypot(own[idx, 0, None] - sources[None, :, 0], own[idx, 1, None] - sources[None, :, 1])
        kept = idx[(dist > radius).all(axis=1)]
        if kept.size < 2:
            sep = float(np.hypot(*(own[0] - np.array(frame_center((size, size)))[::-1])))
            raise SettingError(f"only {kept.size} of the {idx.size} noise apertures at {sep:.1f} px lie farther than "
                               f"{radius:g} px from the known sources; the S/N curve needs 2. Lower {{exclude_radius_px}} "
                               "or leave this separation out", exclude_radius_px=None)
        out.append(kept)
    return out


def _covered_rows(operator: AnnulusOperator, centers: np.ndarray, radius: float) -> np.ndarray:
    """Rows of ``operator.union`` of every pixel an aperture gives a non-zero weight; refuse pixels outside the union."""
    y0, x0, w = aperture_weights(centers, radius)
    m = w.shape[-1]
    yy = (y0[:, None, None] + np.arange(m)[None, :, None]) + 0 * w.astype(np.int64)
    xx = (x0[:, None, None] + np.arange(m)[None, None, :]) + 0 * w.astype(np.int64)
    used = w > 0
    flat = np.unique(yy[used] * operator.size + xx[used])
    rows = np.searchsorted(operator.union, flat)
    rows = np.minimum(rows, operator.union.size - 1)
    if not np.array_equal(operator.union[rows], flat):
        msg = (f"the S/N apertures read pixels no patch of this annulus covers; use patches of at least "
               f"FWHM + 2 px (patch_px={operator.patch_px})")
        raise ValueError(msg)
    return rows
