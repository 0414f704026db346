"""Signal-to-noise ratio with small-sample statistics (Mawet et al. 2014; SPEC §5).

At a test position of separation ``r`` from the star, ``n = floor(2 pi / (2 asin(FWHM / (2 r))))``
apertures of radius ``FWHM / 2`` are placed around the circle of radius ``r``, starting at the
test position and going clockwise (as VIP does). The first holds the signal, the others the noise;
``S/N = (f_0 - mean(f_i)) / (std(f_i, ddof=1) * sqrt(1 + 1 / n_2))`` with ``n_2`` noise apertures.
Aperture sums are exact pixel-fraction sums (photutils' ``method='exact'``).

:func:`snr_map` evaluates this at every pixel with ``FWHM <= r < N/2 - FWHM/2`` (VIP's ``snrmap``
region). Its aperture weights depend only on the frame shape and the FWHM: they are computed once
(using the 4-fold rotational symmetry of the pixel grid, a quarter of the apertures) and cached,
so later maps of the same geometry cost one weighted gather.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.aperture import aperture_sums, aperture_weights, block_size, gather_blocks
from sodinn.adi.geometry import frame_center
from sodinn.exceptions import SettingError

__all__ = ["SNRResult", "snr", "snr_details", "snr_map", "snr_map_region"]


@dataclass(frozen=True)
class SNRResult:
    """S/N at one position and the aperture fluxes it came from.

    Attributes
    ----------
    snr : float
        Signal-to-noise ratio (Mawet et al. 2014, ApJ 792, 97; SPEC §5).
    signal_flux : float
        Sum in the test aperture, in the frame's units.
    noise_fluxes : ndarray, shape (n_2,)
        Sums in the noise apertures, in the frame's units.
    apertures_xy : ndarray, shape (n, 2)
        Centres ``(x, y)`` of all apertures, px, the test aperture first (including excluded lobes).

    See Also
    --------
    snr_details : Compute it.
    """

    snr: float
    signal_flux: float
    noise_fluxes: np.ndarray
    apertures_xy: np.ndarray


def snr(
    frame: npt.ArrayLike,
    source_xy: tuple[float, float],
    fwhm_px: float,
    *,
    exclude_negative_lobes: bool = False,
    exclude_xy: npt.ArrayLike = (),
    exclude_radius_px: float = 0.0,
) -> float:
    """Compute the S/N (Mawet et al. 2014) of a test position in a post-processed frame.

    Parameters
    ----------
    frame : ndarray, shape (N, N)
        Post-processed (e.g. PCA-ADI) frame, star at :func:`~sodinn.adi.geometry.frame_center`.
    source_xy : (float, float)
        Test position ``(x, y)``, px.
    fwhm_px : float
        PSF FWHM, px. Apertures have radius ``fwhm_px / 2``.
    exclude_negative_lobes : bool
        Drop the two noise apertures adjacent to the test aperture (ADI self-subtraction lobes).
    exclude_xy : array-like, shape (m, 2)
        Known sources ``(x, y)``, px (none by default): the noise apertures whose centre lies within
        ``exclude_radius_px`` of one of them are dropped, and the formula uses the remaining ones.
    exclude_radius_px : float
        The distance to a known source within which a noise aperture is dropped, px (>= 0).

    Returns
    -------
    float
        ``(f_0 - mean(f_i)) / (std(f_i, ddof=1) * sqrt(1 + 1 / n_2))`` over the ``n_2`` noise
        apertures (SPEC §5).

    Raises
    ------
    TypeError
        If ``frame`` or ``source_xy`` is not array-like of numbers, or ``fwhm_px`` is not a real number.
    ValueError
        If ``frame`` is not a finite square 2-D array, ``fwhm_px`` is implausible, ``source_xy`` is
        not one finite ``(x, y)`` position, the position is within ``FWHM/2 + 1`` px of the star,
        ``exclude_xy`` is not ``(m, 2)`` positions or ``exclude_radius_px`` is negative, or fewer than 2
        noise apertures fit (or remain outside the exclusion).

    See Also
    --------
    snr_details : The same, with the aperture fluxes and positions.
    snr_map : The S/N at every pixel.

    References
    ----------
    Mawet, D. et al. 2014, ApJ 792, 97, "Fundamental limitations of high contrast imaging set by
    small sample statistics".

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> frame = rng.normal(size=(41, 41))
    >>> frame[20, 32] += 30.0  # a bright point 12 px right of the star
    >>> snr(frame, (32, 20), 3.0) > 5
    True
    """
    return snr_details(frame, source_xy, fwhm_px, exclude_negative_lobes=exclude_negative_lobes, exclude_xy=exclude_xy,
                       exclude_radius_px=exclude_radius_px).snr


def snr_details(
    frame: npt.ArrayLike,
    source_xy: tuple[float, float],
    fwhm_px: float,
    *,
    exclude_negative_lobes: bool = False,
    exclude_xy: npt.ArrayLike = (),
    exclude_radius_px: float = 0.0,
) -> SNRResult:
    """Compute the S/N like :func:`snr`, returning the aperture fluxes and positions too.

    Parameters
    ----------
    frame : ndarray, shape (N, N)
        Post-processed frame, star at :func:`~sodinn.adi.geometry.frame_center`.
    source_xy : (float, float)
        Test position ``(x, y)``, px.
    fwhm_px : float
        PSF FWHM, px. Apertures have radius ``fwhm_px / 2``.
    exclude_negative_lobes : bool
        Drop the two noise apertures adjacent to the test aperture (ADI self-subtraction lobes).
    exclude_xy : array-like, shape (m, 2)
        Known sources ``(x, y)``, px (none by default): the noise apertures whose centre lies within
        ``exclude_radius_px`` of one of them are dropped (the test aperture is always kept).
    exclude_radius_px : float
        The distance to a known source within which a noise aperture is dropped, px (>= 0).

    Returns
    -------
    SNRResult
        The S/N, the signal and the kept noise aperture sums, and the centres of all apertures.

    Raises
    ------
    TypeError
        If ``frame``, ``source_xy`` or ``exclude_xy`` is not array-like of numbers, or ``fwhm_px`` or
        ``exclude_radius_px`` is not a real number.
    ValueError
        If ``frame`` is not a finite square 2-D array, ``fwhm_px`` is implausible, ``source_xy`` is
        not one finite ``(x, y)`` position, the position is within ``FWHM/2 + 1`` px of the star,
        ``exclude_xy`` is not ``(m, 2)`` finite positions, ``exclude_radius_px`` is negative, or fewer
        than 2 noise apertures fit (or remain outside the exclusion).
    """
    arr = v.check_frame(frame)
    fwhm = v.check_fwhm(fwhm_px, frame_size=arr.shape[0])
    xy = v.check_positions_xy(source_xy, name="source_xy", frame_size=arr.shape[0])
    if xy.shape[0] != 1:
        msg = f"source_xy must be one (x, y) position; got {xy.shape[0]}"
        raise ValueError(msg)
    cy, cx = frame_center(arr.shape)
    dx, dy = xy[0, 0] - cx, xy[0, 1] - cy
    sep = math.hypot(dx, dy)
    if not sep > fwhm / 2 + 1:
        msg = f"source_xy ({xy[0, 0]:g}, {xy[0, 1]:g}) is {sep:.2f} px from the star; the S/N needs a separation > FWHM/2 + 1 px"
        raise ValueError(msg)
    centers = _ring_apertures(np.array([dx]), np.array([dy]), fwhm)[0] + np.array([cx, cy])
    fluxes = aperture_sums(arr, centers, fwhm / 2)
    noise = _noise_selection(len(centers), exclude_negative_lobes)
    noise = _outside_sources(noise, centers, exclude_xy, exclude_radius_px, sep)
    value = _snr_from_fluxes(fluxes[0], fluxes[noise])
    return SNRResult(snr=float(value), signal_flux=float(fluxes[0]), noise_fluxes=fluxes[noise], apertures_xy=centers)


def snr_map_region(shape: tuple[int, ...], fwhm_px: float) -> np.ndarray:
    """Return the boolean mask of the pixels where :func:`snr_map` is evaluated: ``FWHM <= r < N/2 - FWHM/2``.

    Parameters
    ----------
    shape : tuple of int
        Frame (or cube) shape; the last two axes count.
    fwhm_px : float
        PSF FWHM, px.

    Returns
    -------
    ndarray of bool, shape (ny, nx)
        True where the distance ``r`` to :func:`~sodinn.adi.geometry.frame_center` satisfies
        ``FWHM <= r < N/2 - FWHM/2`` (VIP's ``snrmap`` region, SPEC §5).

    Raises
    ------
    TypeError
        If ``fwhm_px`` is not a real number.
    ValueError
        If ``fwhm_px`` is not finite, below 0.5 px or above ``N / 4``.
    """
    size = int(shape[-1])
    fwhm = v.check_fwhm(fwhm_px, frame_size=size)
    cy, cx = frame_center(shape)
    yy, xx = np.indices((int(shape[-2]), size))
    r = np.hypot(xx - cx, yy - cy)
    return (r >= fwhm) & (r < fwhm + (size / 2 - 1.5 * fwhm))


def snr_map(frame: npt.ArrayLike, fwhm_px: float, *, exclude_negative_lobes: bool = False) -> np.ndarray:
    """Compute the S/N (Mawet et al. 2014) at every pixel between ``FWHM`` and ``N/2 - FWHM/2`` from the star.

    Equal, pixel by pixel, to :func:`snr` (and to VIP's ``snrmap``), vectorised.

    Parameters
    ----------
    frame : ndarray, shape (N, N)
        Post-processed frame, star at :func:`~sodinn.adi.geometry.frame_center`.
    fwhm_px : float
        PSF FWHM, px. Apertures have radius ``fwhm_px / 2``.
    exclude_negative_lobes : bool
        Drop the two noise apertures adjacent to each test aperture (ADI self-subtraction lobes).

    Returns
    -------
    ndarray, shape (N, N)
        S/N map; 0 outside :func:`snr_map_region`.

    Raises
    ------
    TypeError
        If ``frame`` is not array-like of numbers or ``fwhm_px`` is not a real number.
    ValueError
        If ``frame`` is not a finite square 2-D array, or ``fwhm_px`` is not finite, below 0.5 px or
        above ``N / 4``.

    Notes
    -----
    The exact aperture weights of a geometry ``(N, fwhm_px, exclude_negative_lobes)`` are built once
    per process (about 0.1-0.3 s for a 101x101 frame) and cached; every later map of that geometry
    only gathers and sums.
    """
    arr = v.check_frame(frame)
    fwhm = v.check_fwhm(fwhm_px, frame_size=arr.shape[0])
    geom = _snr_map_geometry(arr.shape[0], fwhm, bool(exclude_negative_lobes))
    out = np.zeros_like(arr)
    if geom.n_pixels == 0:
        return out
    rotated = _quarter_turns(arr)  # (4, M, M), image j turned so that quadrant j maps onto quadrant 0
    fluxes = gather_blocks(rotated, geom.y0, geom.x0, geom.block, geom.weights)  # (4, n_ap)
    signal = fluxes[:, geom.signal_index]  # (4, n_pix)
    noise = fluxes[:, geom.noise_index]  # (4, n_noise_total)
    counts = geom.noise_counts
    mean = np.add.reduceat(noise, geom.noise_starts, axis=1) / counts
    dev = noise - np.repeat(mean, counts, axis=1)
    std = np.sqrt(np.add.reduceat(dev * dev, geom.noise_starts, axis=1) / (counts - 1))
    values = (signal - mean) / (std * np.sqrt(1 + 1 / counts))
    for j in range(4):
        out[geom.pixel_y[j], geom.pixel_x[j]] = values[j]
    return out


@dataclass(frozen=True)
class _SNRMapGeometry:
    n_pixels: int
    pixel_y: tuple[np.ndarray, ...]  # map pixels served by quarter-turn j
    pixel_x: tuple[np.ndarray, ...]
    y0: np.ndarray  # aperture blocks, in the padded-odd frame's coordinates
    x0: np.ndarray
    block: int
    weights: np.ndarray
    signal_index: np.ndarray  # (n_pix,) aperture index of each pixel's test aperture
    noise_index: np.ndarray  # concatenated noise-aperture indices, grouped by pixel
    noise_starts: np.ndarray
    noise_counts: np.ndarray


@functools.lru_cache(maxsize=8)
def _snr_map_geometry(size: int, fwhm: float, exclude_negative_lobes: bool) -> _SNRMapGeometry:
    shape = (size, size)
    cy, cx = frame_center(shape)
    region = snr_map_region(shape, fwhm)
    yy, xx = np.nonzero(region)
    dy, dx = yy - cy, xx - cx
    canonical = (dx > 0) & (dy >= 0)  # quadrant 0; quarter-turns cover every other pixel once
    qdx, qdy = dx[canonical], dy[canonical]
    order = np.lexsort((qdx, qdy))
    qdx, qdy = qdx[order], qdy[order]
    # pixels of quadrant j are R^j(q): R(dx, dy) = (-dy, dx), a counter-clockwise quarter turn
    pix_y, pix_x = [], []
    ddx, ddy = qdx, qdy
    for _ in range(4):
        pix_y.append(cy + ddy)
        pix_x.append(cx + ddx)
        ddx, ddy = -ddy, ddx
    centers = _ring_apertures(qdx.astype(np.float64), qdy.astype(np.float64), fwhm)
    counts_all = np.array([len(c) for c in centers])
    flat = np.concatenate(centers) + np.array([cx, cy]) if centers else np.zeros((0, 2))
    y0, x0, w = _chunked_weights(flat, fwhm / 2)
    starts_all = np.concatenate([[0], np.cumsum(counts_all)[:-1]])
    noise_lists = [s + _noise_selection(n, exclude_negative_lobes) for s, n in zip(starts_all, counts_all)]
    noise_counts = np.array([len(nl) for nl in noise_lists], dtype=np.int64)
    noise_index = np.concatenate(noise_lists) if noise_lists else np.zeros(0, dtype=np.int64)
    noise_starts = np.concatenate([[0], np.cumsum(noise_counts)[:-1]]).astype(np.int64)
    return _SNRMapGeometry(
        n_pixels=len(qdx),
        pixel_y=tuple(pix_y),
        pixel_x=tuple(pix_x),
        y0=y0,
        x0=x0,
        block=block_size(fwhm / 2),
        weights=w,
        signal_index=starts_all.astype(np.int64),
        noise_index=noise_index,
        noise_starts=noise_starts,
        noise_counts=noise_counts,
    )


def _chunked_weights(centers: np.ndarray, radius: float, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``aperture_weights`` in cache-sized chunks, spread over threads (numpy releases the GIL)."""
    m = block_size(radius)
    n = len(centers)
    y0 = np.empty(n, dtype=np.int64)
    x0 = np.empty(n, dtype=np.int64)
    w = np.empty((n, m, m))

    def work(start: int) -> None:
        sl = slice(start, start + chunk)
        y0[sl], x0[sl], w[sl] = aperture_weights(centers[sl], radius)

    starts = range(0, n, chunk)
    n_threads = min(len(starts), os.cpu_count() or 1)
    if n_threads <= 1:
        for start in starts:
            work(start)
    else:
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            list(pool.map(work, starts))
    return y0, x0, w


def _quarter_turns(frame: np.ndarray) -> np.ndarray:
    """Stack ``J_j`` (j = 0..3) with ``J_j(q) = frame(c + R^j (q - c))``, R a counter-clockwise quarter turn.

    Even-sized frames get one zero row and column appended so that the star pixel is the middle
    of an odd-sized array and quarter turns map the pixel grid onto itself.
    """
    size = frame.shape[0]
    if size % 2 == 0:
        frame = np.pad(frame, ((0, 1), (0, 1)))
    # np.rot90(a, k=1), relative to the centre: b(dx, dy) = a(-dy, dx) = a(R(dx, dy)); k=j applies R^j.
    return np.stack([np.rot90(frame, k=j) for j in range(4)])


def _ring_apertures(dx: np.ndarray, dy: np.ndarray, fwhm: float) -> list[np.ndarray]:
    """Aperture centres (relative to the star) for test offsets ``(dx, dy)``, clockwise from the test one."""
    sep = np.hypot(dx, dy)
    step = 2 * np.arcsin(fwhm / 2 / sep)
    n_ap = np.floor(2 * np.pi / step).astype(np.int64)
    owner = np.repeat(np.arange(len(sep)), n_ap)
    k = np.arange(owner.size) - np.repeat(np.cumsum(n_ap) - n_ap, n_ap)
    phi = np.arctan2(dy, dx)[owner] - step[owner] * k
    xy = np.column_stack([sep[owner] * np.cos(phi), sep[owner] * np.sin(phi)])
    return np.split(xy, np.cumsum(n_ap)[:-1]) if len(sep) else []


def _noise_selection(n_apertures: int, exclude_negative_lobes: bool) -> np.ndarray:
    if exclude_negative_lobes:
        idx = np.arange(2, n_apertures - 1)
    else:
        idx = np.arange(1, n_apertures)
    if idx.size < 2:
        msg = "fewer than 2 noise apertures at this separation; move the test position farther from the star"
        raise ValueError(msg)
    return idx


def _outside_sources(noise: np.ndarray, centers: np.ndarray, exclude_xy: npt.ArrayLike, exclude_radius_px: float,
                     sep_px: float) -> np.ndarray:
    """Return the indices in ``noise`` of the apertures centred farther than ``exclude_radius_px`` from every source."""
    radius = v.check_real(exclude_radius_px, name="exclude_radius_px")
    if radius < 0:
        msg = f"exclude_radius_px must be >= 0 px; got {radius:g}"
        raise ValueError(msg)
    if (isinstance(exclude_xy, (list, tuple)) and len(exclude_xy) == 0) or (isinstance(exclude_xy, np.ndarray) and exclude_xy.size == 0):
        return noise
    sources = v.check_positions_xy(exclude_xy, name="exclude_xy")
    dist = np.hypot(centers[noise, 0, None] - sources[None, :, 0], centers[noise, 1, None] - sources[None, :, 1])
    kept = noise[(dist > radius).all(axis=1)]
    if kept.size < 2:
        raise SettingError(f"only {kept.size} of the {noise.size} noise apertures at {sep_px:.1f} px lie farther than "
                           f"{radius:g} px from the known sources; the S/N needs 2. Lower {{exclude_radius_px}} or measure "
                           "at another separation", exclude_radius_px=None)
    return kept


def _snr_from_fluxes(signal: float, noise: np.ndarray) -> float:
    n2 = noise.size
    return (signal - noise.mean()) / (noise.std(ddof=1) * np.sqrt(1 + 1 / n2))
