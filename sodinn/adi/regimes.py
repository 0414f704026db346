"""Residual noise regimes (NA-SODINN, Cantero et al. 2023, A&A 680, A86): PCA-pmaps and the regime boundary.

Close to the star the residuals of PCA-ADI are dominated by speckles (correlated on the scale of
lambda/D, heavy-tailed); farther out by the background (photon and detector noise: white and
Gaussian). NA-SODINN finds the separation between the two with a *PCA-pmap*: the PCA-ADI final frame
is made at several ranks ``k``, and in every annulus of width 1 FWHM (= lambda/D) a normality test
(Shapiro & Wilk 1965) is applied to the residuals; its p-value ``p(sep, k)`` is low where the noise
is not white Gaussian noise and spread over ``[0, 1]`` where it is.

The samples of the test (:data:`SAMPLES`):

- ``"pixels"`` (default): every pixel of the annulus. A test of "independent Gaussian pixels", so
  it rejects heavy tails *and* lambda/D-scale correlation, the two marks of speckle; background
  noise passes. Measured here: on PCA-ADI residuals of white Gaussian cubes (NACO angles) 4 % of the
  tests gave ``p < 0.05``; on the same frames smoothed to the PSF's scale, 88 %.
- ``"apertures"``: the mean in the non-overlapping apertures of diameter 1 FWHM around the annulus'
  mid-radius (the resolution elements of the S/N, Mawet et al. 2014): nearly independent samples,
  so a test of normality alone, but few of them (9 at 1.5 FWHM) and so little power near the star.

The boundary rule (documented here, not taken from the paper, whose exact rule we could not check):
an annulus is *speckle-dominated* when more than a fraction ``vote`` (default 1/2: a majority) of
its ranks reject normality at level ``alpha`` (``p < alpha``). The boundary is the step from speckle to background that best fits these
verdicts: the edge ``b`` maximising ``sum_{i < b} (+1 if speckle else -1)`` (0 if no prefix has more
speckle than background annuli; ties go to the smaller edge). A single stray verdict outside a run
does not move it. Known sources (e.g. a companion) must be left out of the samples
(``exclude_xy``): a point source makes its annulus non-Gaussian whatever the noise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from sodinn import _validation as v
from sodinn.adi.aperture import aperture_sums
from sodinn.adi.baselines import annular_ncomp_limit, pca_adi, pca_annular, pca_ncomp_limit
from sodinn.adi.geometry import annulus_indices, annulus_partition, frame_center
from sodinn.adi.sequence import ADISequence
from sodinn.exceptions import SettingError, SodinnWarning

__all__ = [
    "METHODS",
    "REGIMES",
    "SAMPLES",
    "NoiseRegimes",
    "noise_regimes",
    "pca_pmap",
    "regime_boundary",
    "shapiro_pvalues",
]

#: Regime names; a regime label is the index into this tuple (0 speckle, 1 background).
REGIMES = ("speckle", "background")
#: PCA-ADI flavours of the residual frames.
METHODS = ("full", "annular")
#: What the normality test is applied to in each annulus.
SAMPLES = ("pixels", "apertures")

_SHAPIRO_MAX = 5000  # scipy's Shapiro-Wilk p-value is accurate up to this many samples
_DEFAULT_MAX_RANK = 20


@dataclass(frozen=True)
class NoiseRegimes:
    """A PCA-pmap and the regime boundary found in it.

    Attributes
    ----------
    pmap : ndarray, shape (n_annuli, K)
        Shapiro-Wilk p-value of the residuals of annulus ``i`` at rank ``ks[j]`` (NaN where fewer
        than 3 samples were left).
    edges_px : ndarray, shape (n_annuli + 1,)
        Radii of the annuli, px: annulus ``i`` is ``edges_px[i] <= r < edges_px[i + 1]``.
    ks : ndarray of int, shape (K,)
        PCA ranks.
    alpha : float
        Significance level of the rule.
    vote : float
        Fraction of an annulus' ranks that must reject normality for a speckle verdict.
    speckle : ndarray of bool, shape (n_annuli,)
        The verdict of each annulus: more than ``vote`` of its ranks have ``p < alpha``.
    boundary_px : float
        Separation where the background regime starts, px: one of ``edges_px`` (``edges_px[0]``:
        no speckle regime; ``edges_px[-1]``: no background regime in the evaluated annuli).
    fwhm_px : float
        PSF FWHM (= lambda/D), px.
    method : str
        PCA-ADI flavour (:data:`METHODS`).
    sample : str
        What was tested (:data:`SAMPLES`).

    See Also
    --------
    noise_regimes : Compute it from a sequence.
    """

    pmap: np.ndarray
    edges_px: np.ndarray
    ks: np.ndarray
    alpha: float
    vote: float
    speckle: np.ndarray
    boundary_px: float
    fwhm_px: float
    method: str
    sample: str

    @property
    def seps_px(self) -> np.ndarray:
        """Mid-radius of each annulus, px, shape ``(n_annuli,)``."""
        return 0.5 * (self.edges_px[:-1] + self.edges_px[1:])

    @property
    def boundary_lod(self) -> float:
        """The boundary in lambda/D (in FWHM)."""
        return self.boundary_px / self.fwhm_px

    @property
    def has_speckle_regime(self) -> bool:
        """Whether some annulus lies inside the boundary."""
        return bool(self.boundary_px > self.edges_px[0])

    def label(self, sep_px: npt.ArrayLike) -> np.ndarray:
        """Return the regime of separations: 0 (speckle) below :attr:`boundary_px`, 1 (background) from it on.

        Separations beyond the last annulus count as background; inside the first annulus as
        speckle when a speckle regime was found (else everything is background): the step of the
        boundary, extended.

        Parameters
        ----------
        sep_px : array-like of float
            Separations from the star, px (e.g. annulus mid-radii or candidate separations).

        Returns
        -------
        ndarray of int8, same shape as ``sep_px``
            Index into :data:`REGIMES`.

        Raises
        ------
        ValueError
            If a separation is negative or not finite.

        Examples
        --------
        >>> r = NoiseRegimes(np.zeros((2, 1)), np.array([4.0, 8.0, 12.0]), np.array([1]), 0.05, 0.5,
        ...                  np.array([True, False]), 8.0, 4.0, "full", "pixels")
        >>> r.label([5.0, 8.0, 30.0]).tolist()
        [0, 1, 1]
        """
        sep = np.asarray(sep_px, dtype=np.float64)
        if not np.all(np.isfinite(sep)) or np.any(sep < 0):
            msg = "sep_px must hold finite separations >= 0 px"
            raise ValueError(msg)
        if not self.has_speckle_regime:
            return np.ones(sep.shape, dtype=np.int8)
        return (sep >= self.boundary_px).astype(np.int8)

    def label_map(self, shape: tuple[int, ...]) -> np.ndarray:
        """Return the regime of every pixel of a frame, by its separation from the frame centre.

        Parameters
        ----------
        shape : tuple of int
            Frame (or cube) shape; the last two axes count.

        Returns
        -------
        ndarray of int8, shape (ny, nx)
            0 (speckle) where ``r < boundary_px``, 1 (background) elsewhere (see :meth:`label`).
        """
        cy, cx = frame_center(shape)
        yy, xx = np.indices((int(shape[-2]), int(shape[-1])))
        return self.label(np.hypot(xx - cx, yy - cy))


def shapiro_pvalues(
    frames: npt.ArrayLike,
    edges_px: npt.ArrayLike,
    fwhm_px: float,
    *,
    sample: str = "pixels",
    exclude_xy: npt.ArrayLike = (),
    exclude_radius_px: float | None = None,
) -> np.ndarray:
    """Compute the Shapiro-Wilk p-value of the residuals of every annulus in every frame.

    Parameters
    ----------
    frames : ndarray, shape (K, N, N)
        Final frames (e.g. PCA-ADI at K ranks), star at :func:`~sodinn.adi.geometry.frame_center`.
    edges_px : array-like, shape (n_annuli + 1,)
        Increasing radii; annulus ``i`` is ``edges_px[i] <= r < edges_px[i + 1]``, px.
    fwhm_px : float
        PSF FWHM, px (the aperture diameter with ``sample="apertures"``).
    sample : {"pixels", "apertures"}
        Test every pixel of the annulus, or the mean in each non-overlapping aperture of diameter
        1 FWHM around its mid-radius (see the module docstring).
    exclude_xy : array-like, shape (m, 2)
        Known sources ``(x, y)``, px: pixels (or aperture centres) within ``exclude_radius_px`` of
        one are left out.
    exclude_radius_px : float, optional
        Radius of the exclusion, px (default ``2 * fwhm_px``: the source and its ADI lobes).

    Returns
    -------
    ndarray, shape (n_annuli, K)
        p-values (``scipy.stats.shapiro``); NaN where fewer than 3 samples remain or the samples
        are constant. Above 5000 samples, an evenly spaced subset of 5000 is tested.

    Raises
    ------
    TypeError
        If ``frames`` is not array-like of numbers or ``fwhm_px`` is not a real number.
    ValueError
        If ``frames`` is not a finite cube of square frames, ``edges_px`` is not increasing within
        the frame, ``sample`` is not one of :data:`SAMPLES`, or an exclusion is malformed.

    Warns
    -----
    SodinnWarning
        If an annulus keeps fewer than 3 samples (its p-values are NaN).

    References
    ----------
    Shapiro, S. S. & Wilk, M. B. 1965, Biometrika 52, 591.
    """
    arr = v.check_cube(frames, name="frames")
    size = arr.shape[-1]
    fwhm = v.check_fwhm(fwhm_px, frame_size=size)
    sample = v.check_choice(sample, SAMPLES, name="sample")
    edges = _check_edges(edges_px, size)
    sources, radius = _check_exclusion(exclude_xy, exclude_radius_px, fwhm, size)
    out = np.full((edges.size - 1, arr.shape[0]), np.nan)
    cy, cx = frame_center(arr.shape)
    for i in range(edges.size - 1):
        if sample == "pixels":
            yy, xx = annulus_indices(arr.shape, edges[i], edges[i + 1] - edges[i])
            keep = _outside(xx.astype(np.float64), yy.astype(np.float64), sources, radius)
            yy, xx = yy[keep], xx[keep]
            values = arr[:, yy, xx]  # (K, n)
        else:
            centers = _ring_centers(0.5 * (edges[i] + edges[i + 1]), fwhm, cx, cy)
            centers = centers[_outside(centers[:, 0], centers[:, 1], sources, radius)]
            values = np.stack([aperture_sums(f, centers, fwhm / 2) for f in arr]) if len(centers) else np.zeros((arr.shape[0], 0))
        n = values.shape[1]
        if n < 3:
            warnings.warn(f"annulus {edges[i]:.1f}-{edges[i + 1]:.1f} px keeps {n} sample(s) after the exclusion; its "
                          "p-values are NaN", SodinnWarning, stacklevel=2)
            continue
        if n > _SHAPIRO_MAX:
            values = values[:, np.linspace(0, n - 1, _SHAPIRO_MAX).astype(np.int64)]
        for j in range(arr.shape[0]):
            if np.ptp(values[j]) > 0:
                out[i, j] = stats.shapiro(values[j]).pvalue
    return out


def regime_boundary(pmap: npt.ArrayLike, edges_px: npt.ArrayLike, *, alpha: float = 0.05,
                    vote: float = 0.5) -> tuple[np.ndarray, float]:
    """Find the speckle/background boundary in a PCA-pmap (the rule of the module docstring).

    Parameters
    ----------
    pmap : array-like, shape (n_annuli, K)
        p-values of annulus ``i`` (inside out) at each rank; NaN entries are ignored.
    edges_px : array-like, shape (n_annuli + 1,)
        Radii of the annuli, px.
    alpha : float
        Significance level, in ``(0, 1)`` (default 0.05).
    vote : float
        Fraction of an annulus' ranks that must reject normality for a speckle verdict, in
        ``[0, 1)`` (default 0.5: a majority).

    Returns
    -------
    speckle : ndarray of bool, shape (n_annuli,)
        Annuli where more than ``vote`` of the ranks with a p-value have ``p < alpha``.
    boundary_px : float
        ``edges_px[b]`` for the edge ``b`` maximising ``sum_{i < b} (+1 speckle, -1 background, 0
        no p-value)``; ``edges_px[0]`` when no prefix has a positive sum (no speckle regime).

    Raises
    ------
    ValueError
        If ``pmap`` is not 2-D, ``edges_px`` does not have one more value than ``pmap`` has rows or
        is not increasing, ``alpha`` is not in ``(0, 1)`` or ``vote`` not in ``[0, 1)``.

    Examples
    --------
    A stray Gaussian-looking annulus inside the speckle run does not end it:

    >>> p = np.array([[1e-5, 1e-4], [1e-3, 0.01], [0.6, 0.2], [0.01, 1e-3], [1e-4, 0.02], [0.5, 0.9], [0.3, 0.04]])
    >>> speckle, b = regime_boundary(p, 4.0 + 4.0 * np.arange(8))
    >>> speckle.tolist(), b
    ([True, True, False, True, True, False, False], 24.0)
    """
    p = np.asarray(pmap, dtype=np.float64)
    edges = np.asarray(edges_px, dtype=np.float64).ravel()
    if p.ndim != 2:
        msg = f"pmap must be 2-D (n_annuli, K); got shape {p.shape}"
        raise ValueError(msg)
    if edges.size != p.shape[0] + 1 or np.any(np.diff(edges) <= 0):
        msg = f"edges_px must hold {p.shape[0] + 1} increasing radii (one more than pmap's rows); got {edges.size}"
        raise ValueError(msg)
    level = _check_alpha(alpha)
    share = v.check_real(vote, name="vote")
    if not 0 <= share < 1:
        raise SettingError(f"{{vote}} must lie in [0, 1); got {share:g}", vote=0.5)
    valid = np.isfinite(p)
    n_valid = valid.sum(axis=1)
    n_low = (valid & (np.where(valid, p, 1.0) < level)).sum(axis=1)
    speckle = (n_low > share * n_valid) & (n_valid > 0)
    votes = np.where(n_valid == 0, 0, np.where(speckle, 1, -1))
    prefix = np.concatenate([[0], np.cumsum(votes)])
    b = int(np.argmax(prefix))  # first maximum: ties go to the smaller edge; prefix[0] = 0
    return speckle, float(edges[b])


def pca_pmap(
    sequence: ADISequence,
    *,
    ks: npt.ArrayLike | None = None,
    method: str = "full",
    sample: str = "pixels",
    r_in_px: float | None = None,
    collapse: str = "median",
    exclude_xy: npt.ArrayLike = (),
    exclude_radius_px: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute the PCA-pmap of a sequence: Shapiro-Wilk p-values against separation and PCA rank.

    The PCA-ADI final frame (derotated by +PA and collapsed) is made at every rank of ``ks`` with
    :func:`sodinn.adi.baselines.pca_adi` (``method="full"``, mean-centred full-frame PCA) or
    :func:`sodinn.adi.baselines.pca_annular` (``"annular"``, one PCA per annulus, VIP's rotation
    threshold); each annulus of width 1 FWHM from ``r_in_px`` outwards is then tested
    (:func:`shapiro_pvalues`).

    Parameters
    ----------
    sequence : ADISequence
        The ADI sequence.
    ks : array-like of int, optional
        PCA ranks, strictly increasing (default ``1 ... min(20, largest usable)``).
    method : {"full", "annular"}
        PCA-ADI flavour (full-frame: one decomposition per rank, a second on NACO; annular: about
        three seconds per rank there).
    sample : {"pixels", "apertures"}
        What the test is applied to (see :func:`shapiro_pvalues`).
    r_in_px : float, optional
        Inner radius of the first annulus, px (default 1 FWHM). Annuli of 1 FWHM follow as long as
        they end within ``N/2 - 1/2`` px.
    collapse : {"median", "mean"}
        Collapse of the derotated residuals over time (default ``"median"``, VIP's).
    exclude_xy : array-like, shape (m, 2)
        Known sources ``(x, y)`` in the final frame, px, left out of the samples.
    exclude_radius_px : float, optional
        Radius of the exclusion, px (default 2 FWHM).

    Returns
    -------
    pmap : ndarray, shape (n_annuli, K)
        p-values (NaN where an annulus keeps fewer than 3 samples).
    edges_px : ndarray, shape (n_annuli + 1,)
        Radii of the annuli, px.
    ks : ndarray of int64, shape (K,)
        The ranks.

    Raises
    ------
    TypeError
        If ``sequence`` is not an :class:`~sodinn.adi.sequence.ADISequence`.
    ValueError
        If ``ks`` is not a strictly increasing list of ranks the data allow, ``method``, ``sample``
        or ``collapse`` is not one of its choices, ``r_in_px`` leaves no annulus, or an exclusion
        is malformed.

    References
    ----------
    Cantero, C. et al. 2023, A&A 680, A86 (NA-SODINN), Sect. 3.
    """
    if not isinstance(sequence, ADISequence):
        msg = f"sequence must be an ADISequence; got {type(sequence).__name__}"
        raise TypeError(msg)
    method = v.check_choice(method, METHODS, name="method")
    sample = v.check_choice(sample, SAMPLES, name="sample")
    fwhm = sequence.fwhm_px
    size = sequence.frame_size
    r_in = fwhm if r_in_px is None else v.check_real(r_in_px, name="r_in_px")
    edges = annulus_partition((size, size), fwhm, r_in_px=r_in, r_out_px=size / 2 - 0.5).edges_px
    ranks = _check_ks(ks, sequence, method, r_in)
    cube, angles = sequence.cube, sequence.angles_deg
    if method == "full":
        frames = np.stack([pca_adi(cube, angles, ncomp=int(k), collapse=collapse) for k in ranks])
    else:
        frames = np.stack([pca_annular(cube, angles, fwhm, ncomp=int(k), r_in_px=r_in, collapse=collapse)
                           for k in ranks])
    pmap = shapiro_pvalues(frames, edges, fwhm, sample=sample, exclude_xy=exclude_xy,
                           exclude_radius_px=exclude_radius_px)
    return pmap, edges, ranks


def noise_regimes(
    sequence: ADISequence,
    *,
    ks: npt.ArrayLike | None = None,
    method: str = "full",
    sample: str = "pixels",
    alpha: float = 0.05,
    vote: float = 0.5,
    r_in_px: float | None = None,
    collapse: str = "median",
    exclude_xy: npt.ArrayLike = (),
    exclude_radius_px: float | None = None,
) -> NoiseRegimes:
    """Find where the residual noise turns from speckle- to background-dominated (NA-SODINN's PCA-pmaps).

    :func:`pca_pmap`, then :func:`regime_boundary`.

    Parameters
    ----------
    sequence : ADISequence
        The ADI sequence.
    ks : array-like of int, optional
        PCA ranks (default ``1 ... min(20, largest usable)``).
    method : {"full", "annular"}
        PCA-ADI flavour of the residual frames.
    sample : {"pixels", "apertures"}
        What the normality test is applied to.
    alpha : float
        Significance level of the rule, in ``(0, 1)`` (default 0.05).
    vote : float
        Fraction of an annulus' ranks that must reject normality for a speckle verdict (default
        0.5, see :func:`regime_boundary`).
    r_in_px : float, optional
        Inner radius of the first annulus, px (default 1 FWHM).
    collapse : {"median", "mean"}
        Collapse over time of the derotated residuals.
    exclude_xy : array-like, shape (m, 2)
        Known sources ``(x, y)`` in the final frame, px (e.g. beta Pic b), left out of the samples.
    exclude_radius_px : float, optional
        Radius of the exclusion, px (default 2 FWHM).

    Returns
    -------
    NoiseRegimes
        The PCA-pmap, the verdict of each annulus and the boundary.

    Raises
    ------
    TypeError
        If ``sequence`` is not an :class:`~sodinn.adi.sequence.ADISequence`.
    ValueError
        As :func:`pca_pmap`, or if ``alpha`` is not in ``(0, 1)`` or ``vote`` not in ``[0, 1)``.

    References
    ----------
    Cantero, C., Absil, O., Dahlqvist, C.-H. & Van Droogenbroeck, M. 2023, A&A 680, A86.
    """
    level = _check_alpha(alpha)
    regime_boundary(np.zeros((1, 1)), [0.0, 1.0], alpha=level, vote=vote)  # checks vote before the work
    pmap, edges, ranks = pca_pmap(sequence, ks=ks, method=method, sample=sample, r_in_px=r_in_px, collapse=collapse,
                                  exclude_xy=exclude_xy, exclude_radius_px=exclude_radius_px)
    speckle, boundary = regime_boundary(pmap, edges, alpha=level, vote=vote)
    return NoiseRegimes(pmap=pmap, edges_px=edges, ks=ranks, alpha=level, vote=float(vote), speckle=speckle,
                        boundary_px=boundary, fwhm_px=sequence.fwhm_px, method=method, sample=sample)


def _check_alpha(alpha: float) -> float:
    level = v.check_real(alpha, name="alpha")
    if not 0 < level < 1:
        raise SettingError(f"{{alpha}} must lie in (0, 1); got {level:g}", alpha=0.05)
    return level


def _check_edges(edges_px: npt.ArrayLike, size: int) -> np.ndarray:
    edges = np.asarray(edges_px, dtype=np.float64).ravel()
    if edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0) or edges[0] < 0 or edges[-1] > size / 2:
        msg = f"edges_px must hold at least 2 increasing radii within 0 ... {size / 2:g} px; got {edges.tolist()}"
        raise ValueError(msg)
    return edges


def _check_exclusion(exclude_xy: npt.ArrayLike, exclude_radius_px: float | None, fwhm: float,
                     size: int) -> tuple[np.ndarray, float]:
    radius = 2.0 * fwhm if exclude_radius_px is None else v.check_real(exclude_radius_px, name="exclude_radius_px")
    if radius < 0:
        raise SettingError(f"{{exclude_radius_px}} must be >= 0; got {radius:g}", exclude_radius_px=2.0 * fwhm)
    if np.size(exclude_xy) == 0:
        return np.zeros((0, 2)), radius
    return v.check_positions_xy(exclude_xy, name="exclude_xy", frame_size=size), radius


def _outside(x: np.ndarray, y: np.ndarray, sources: np.ndarray, radius: float) -> np.ndarray:
    if sources.size == 0:
        return np.ones(x.shape, dtype=bool)
    dist = np.hypot(x[:, None] - sources[None, :, 0], y[:, None] - sources[None, :, 1])
    return (dist > radius).all(axis=1)


def _ring_centers(radius: float, fwhm: float, cx: float, cy: float) -> np.ndarray:
    """Centres ``(x, y)`` of the ``floor(2 pi / (2 asin(FWHM / 2r)))`` apertures around a circle (Mawet et al. 2014)."""
    n = int(math.floor(2 * math.pi / (2 * math.asin(min(1.0, fwhm / (2 * radius))))))
    phi = 2 * math.pi * np.arange(n) / n
    return np.column_stack([cx + radius * np.cos(phi), cy + radius * np.sin(phi)])


def _check_ks(ks: npt.ArrayLike | None, sequence: ADISequence, method: str, r_in: float) -> np.ndarray:
    if method == "full":
        limit, why = pca_ncomp_limit(sequence.cube)
    else:
        limit, why = annular_ncomp_limit(sequence.angles_deg, sequence.fwhm_px, sequence.frame_size, r_in_px=r_in)
    if ks is None:
        if limit < 1:
            raise SettingError(f"no PCA rank leaves residuals ({why}); no PCA-pmap can be made ({{ks}})", ks=None)
        return np.arange(1, min(_DEFAULT_MAX_RANK, limit) + 1, dtype=np.int64)
    ranks = np.asarray(ks)
    if ranks.ndim != 1 or ranks.size == 0 or not np.issubdtype(ranks.dtype, np.integer):
        raise SettingError(f"{{ks}} must be a non-empty list of integer ranks; got {ks!r}", ks=None)
    if ranks.min() < 1 or ranks.max() > limit or np.any(np.diff(ranks) <= 0):
        raise SettingError(f"{{ks}} must be strictly increasing ranks in 1 ... {limit} ({why}); got {ranks.tolist()}",
                           ks=None)
    return ranks.astype(np.int64)
