"""Detection limits: the flux at which each method detects 95 % of fake companions, per separation.

At each separation, companions are injected one per copy of the cube (random azimuths away from known
sources) on a geometric ladder of fluxes (by default 0.3-30 times the flux that gives S/N = 1 in
annular PCA-ADI, from the S/N oracle of :mod:`sodinn.mlar.flux`). Each copy is reduced by every method
(probability maps of the models, the S/N maps of the baselines: the copy runner of
:mod:`sodinn.evaluate.copies`, shared with the ROC harness) and a companion counts as detected when a
blob of the thresholded map matches it by the data-challenge rule of :mod:`sodinn.detect.scoring`,
counting only the ring 1 FWHM wide centred on the separation (false positives in that ring are
counted too). The true-positive rate against flux is fitted by isotonic regression in log flux, up to
the first flux level whose measured rate reaches the target (see :func:`flux_at_tpr`), and the flux
where the fit reaches the target (95%) is read off by linear interpolation in log flux. Every method
sees the same copies.

Fluxes are in the units of the normalised PSF (see :mod:`sodinn.evaluate.contrast`); a contrast needs
the star's flux in the same aperture. The classical 5-sigma curve is :func:`sodinn.evaluate.contrast.classical_contrast_curve`;
the report (tables and figure) is written by :mod:`sodinn.pipeline.limits`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn._atomic import check_writable_output
from sodinn.adi.geometry import frame_center
from sodinn.adi.sequence import ADISequence
from sodinn.config import LimitConfig, SampleConfig
from sodinn.detect.scoring import score_blobs
from sodinn.evaluate.contrast import ContrastCurve, classical_contrast_curve, default_radii, delta_mag, known_positions, star_flux
from sodinn.evaluate.copies import Injection, check_method_ranks, check_methods, free_position, method_names, run_copies
from sodinn.exceptions import SettingError
from sodinn.learn.artifact import check_model_data, read_metadata
from sodinn.mlar.flux import FluxRangeEstimator
from sodinn.mlar.samples import sample_psf

__all__ = ["ContrastLimits", "DetectionLimits", "contrast_limits", "detection_limits", "flux_at_tpr", "limit_injections"]

logger = logging.getLogger(__name__)



def flux_at_tpr(fluxes: npt.ArrayLike, detected: npt.ArrayLike, target: float = 0.95) -> tuple[float, np.ndarray, np.ndarray]:
    """Find the lowest flux at which the detection rate reaches ``target`` (isotonic fit in log flux).

    The ladder is read from the bottom up to the first level whose *measured* rate reaches ``target``;
    the rate is fitted there by isotonic regression (non-decreasing in flux) and the fit is interpolated
    linearly in log flux where it crosses ``target``. Levels above that one are not used: a detection
    rule can lose very bright companions for reasons unrelated to sensitivity (the data-challenge rule
    counts a blob larger than 2 resolution elements as false positives; the S/N of a bright source
    saturates near the star, its own wings filling its noise apertures), and a monotone fit over them
    would pull the curve below ``target`` where it had been reached.

    Parameters
    ----------
    fluxes : array-like, shape (n,)
        Injected flux of each trial (> 0), the normalised PSF's units.
    detected : array-like of bool, shape (n,)
        Whether each trial's companion was detected.
    target : float
        Detection rate to reach, in (0, 1).

    Returns
    -------
    flux : float
        NaN when no level reaches ``target`` (the limit is above the ladder's top) or the lowest level
        already does (the limit is below its bottom).
    levels : ndarray
        The distinct fluxes, increasing.
    tpr_fit : ndarray
        The non-decreasing fitted detection rate at ``levels`` (NaN above the level where the ladder
        was cut).

    Raises
    ------
    ValueError
        If ``fluxes`` is empty, holds a value that is not finite and > 0, or does not match ``detected``
        one to one, or ``target`` is not in (0, 1).

    Examples
    --------
    >>> f = np.repeat([1.0, 2.0, 4.0, 8.0, 16.0], 4)
    >>> d = [0, 0, 0, 0,  0, 1, 0, 0,  1, 1, 1, 0,  1, 1, 1, 1,  1, 1, 0, 1]
    >>> flux, levels, fit = flux_at_tpr(f, d, 0.95)
    >>> fit.tolist(), round(flux, 3)  # 0.75 at 4, 1.0 at 8: 0.95 is 80% of the way from 4 to 8 in log flux
    ([0.0, 0.25, 0.75, 1.0, nan], 6.964)
    """
    from sklearn.isotonic import IsotonicRegression

    f = np.asarray(fluxes, dtype=np.float64).ravel()
    d = np.asarray(detected, dtype=np.float64).ravel()
    if f.size == 0 or f.shape != d.shape or not np.all(np.isfinite(f) & (f > 0)):
        msg = f"fluxes must be positive and finite with one detection flag each; got {f.size} fluxes and {d.size} flags"
        raise ValueError(msg)
    if not 0 < target < 1:
        msg = f"target must lie in (0, 1); got {target}"
        raise ValueError(msg)
    levels, index = np.unique(f, return_inverse=True)
    measured = np.bincount(index, weights=d, minlength=levels.size) / np.bincount(index, minlength=levels.size)
    reached = np.nonzero(measured >= target)[0]
    top = int(reached[0]) if reached.size else levels.size - 1
    used = index <= top
    fit = np.full(levels.size, np.nan)
    iso = IsotonicRegression(increasing=True, y_min=0.0, y_max=1.0).fit(np.log(f[used]), d[used])
    fit[: top + 1] = iso.predict(np.log(levels[: top + 1]))
    above = np.nonzero(fit[: top + 1] >= target)[0]
    if above.size == 0 or above[0] == 0:
        return float("nan"), levels, fit
    i = int(above[0])
    x0, x1 = np.log(levels[i - 1]), np.log(levels[i])
    frac = (target - fit[i - 1]) / (fit[i] - fit[i - 1])
    return float(np.exp(x0 + frac * (x1 - x0))), levels, fit


@dataclass
class DetectionLimits:
    """What :func:`detection_limits` measured.

    Attributes
    ----------
    radii_px : ndarray, shape (n_sep,)
        Separations, px.
    lambda_d_px : float
        lambda/D, px.
    fluxes : ndarray, shape (n_sep, n_levels)
        The flux ladder at each separation.
    snr1_flux : ndarray, shape (n_sep,), or None
        The flux giving S/N = 1 in annular PCA-ADI (None with an absolute ladder).
    methods : list of str
        The models by name, then the baselines (``annular-K``, ...).
    thresholds : dict of str -> ndarray, shape (n_sep,)
        Threshold of each method at each separation (probability for models, S/N for baselines).
    detected : dict of str -> ndarray of bool, shape (n_sep, n_levels, n_copies)
        Whether each copy's companion was detected.
    false_positives : dict of str -> ndarray, shape (n_sep, n_levels, n_copies)
        False positives in the ring 1 FWHM wide centred on the separation.
    tpr_fit : dict of str -> ndarray, shape (n_sep, n_levels)
        Isotonic fit of the detection rate (NaN above the level where it was cut, see :func:`flux_at_tpr`).
    flux_limit : dict of str -> ndarray, shape (n_sep,)
        Flux at ``tpr_target`` (NaN outside the ladder).
    tpr_target : float
        Detection rate the limits are read at.
    injections : list of sodinn.evaluate.copies.Injection
        The companion of each copy.
    models : list of str
        The methods of ``methods`` that are trained models.
    """

    radii_px: np.ndarray
    lambda_d_px: float
    fluxes: np.ndarray
    snr1_flux: np.ndarray | None
    methods: list[str]
    thresholds: dict[str, np.ndarray]
    detected: dict[str, np.ndarray]
    false_positives: dict[str, np.ndarray]
    tpr_fit: dict[str, np.ndarray]
    flux_limit: dict[str, np.ndarray]
    tpr_target: float
    injections: list[Injection] = field(default_factory=list)
    models: list[str] = field(default_factory=list)

    def tpr(self, method: str) -> np.ndarray:
        """Return the measured detection rate of a method.

        Parameters
        ----------
        method : str
            One of :attr:`methods`.

        Returns
        -------
        ndarray, shape (n_sep, n_levels)
            Fraction of the copies detected at each separation and flux level.
        """
        return self.detected[method].mean(axis=-1)

    def mean_fp(self, method: str) -> np.ndarray:
        """Return the mean false positives per copy of a method in the ring of each separation.

        Parameters
        ----------
        method : str
            One of :attr:`methods`.

        Returns
        -------
        ndarray, shape (n_sep,)
            Mean over flux levels and copies.
        """
        return self.false_positives[method].mean(axis=(1, 2))

    def rows(self, star_flux: float | None = None) -> list[dict[str, Any]]:
        """Return one dict per method and separation: the limit (and contrast with ``star_flux``), threshold and FPs.

        Parameters
        ----------
        star_flux : float, optional
            The star's flux in an aperture of diameter 1 FWHM, the cube's units: adds ``contrast_limit``.

        Returns
        -------
        list of dict
            Keys ``method``, ``sep_px``, ``sep_lambda_d``, ``threshold``, ``mean_fp``, ``n_copies``,
            ``flux_limit`` and, with ``star_flux``, ``contrast_limit``.
        """
        out = []
        for m in self.methods:
            fp = self.mean_fp(m)
            for i, r in enumerate(self.radii_px):
                row: dict[str, Any] = {"method": m, "sep_px": float(r), "sep_lambda_d": float(r / self.lambda_d_px),
                       "threshold": float(self.thresholds[m][i]), "mean_fp": float(fp[i]),
                       "n_copies": int(self.detected[m][i].size), "flux_limit": float(self.flux_limit[m][i])}
                if star_flux is not None:
                    row["contrast_limit"] = row["flux_limit"] / star_flux
                out.append(row)
        return out

    def table(self, star_flux: float | None = None):
        """Return :meth:`rows` as an astropy Table.

        Parameters
        ----------
        star_flux : float, optional
            The star's flux in an aperture of diameter 1 FWHM, the cube's units: adds ``contrast_limit``.

        Returns
        -------
        astropy.table.Table
            One row per method and separation.
        """
        from astropy.table import Table

        return Table(rows=self.rows(star_flux))

    def tpr_rows(self) -> list[dict[str, Any]]:
        """Return one dict per method, separation and flux level: measured and fitted detection rate.

        Returns
        -------
        list of dict
            Keys ``method``, ``sep_px``, ``flux``, ``n_copies``, ``tpr``, ``tpr_fit``.
        """
        out = []
        for m in self.methods:
            measured = self.tpr(m)
            for i, r in enumerate(self.radii_px):
                for level, flux in enumerate(self.fluxes[i]):
                    out.append({"method": m, "sep_px": float(r), "flux": float(flux), "n_copies": int(self.detected[m].shape[-1]),
                                "tpr": float(measured[i, level]), "tpr_fit": float(self.tpr_fit[m][i, level])})
        return out


def limit_injections(sequence: ADISequence, config: LimitConfig, fluxes: np.ndarray) -> list[Injection]:
    """Draw every copy's companion, reproducibly from ``config.seed``.

    Parameters
    ----------
    sequence : ADISequence
        The data (centre, FWHM).
    config : LimitConfig
        Separations, copies per flux, seed, known sources.
    fluxes : ndarray, shape (n_sep, n_levels)
        The flux ladder at each separation.

    Returns
    -------
    list of Injection
        The separation index as ``band``, ``copy = level * copies_per_flux + c``; azimuths uniform,
        farther than ``mask_radius_fwhm`` FWHM from the known sources.

    Raises
    ------
    ValueError
        If 1000 draws at a separation all fall near known sources.
    """
    lam = config.lambda_d_px or sequence.fwhm_px
    cy, cx = frame_center(sequence.cube.shape)
    sources = known_positions(config.known_sources_xy)
    exclusion = config.mask_radius_fwhm * sequence.fwhm_px
    out = []
    for b, sep_ld in enumerate(config.separations_lambda_d):
        sep = sep_ld * lam
        for level, flux in enumerate(fluxes[b]):
            for c in range(config.copies_per_flux):
                rng = np.random.default_rng([config.seed, b, level, c])

                def draw(rng=rng, sep=sep) -> tuple[float, float]:
                    return sep, float(rng.uniform(0.0, 360.0))

                _, theta, x, y = free_position(draw, (cx, cy), sources, exclusion, f"no azimuth at {sep:.1f} px")
                out.append(Injection(b, level * config.copies_per_flux + c, sep, theta, float(flux), x, y))
    return out


def _ladder(sequence: ADISequence, config: LimitConfig, radii: np.ndarray, psf: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if config.flux_ladder is not None:
        return np.tile(np.asarray(config.flux_ladder), (radii.size, 1)), None
    est = FluxRangeEstimator((1.0, 3.0), ncomp=config.oracle_ncomp, n_azimuths=config.oracle_azimuths, rng=config.seed)
    try:  # known sources out of the injections and of the noise apertures of every companion's S/N
        est.fit(sequence.cube, sequence.angles_deg, psf, sequence.fwhm_px, radii, exclude_xy=config.known_sources_xy,
                exclude_radius_px=config.mask_radius_fwhm * sequence.fwhm_px)
    except SettingError as err:  # the estimator names its parameter; here the setting is mask_radius_fwhm
        raise SettingError(err.template.replace("{exclude_radius_px}", "{mask_radius_fwhm}"), mask_radius_fwhm=None) from None
    snr1 = np.asarray(est.flux_range_)[:, 0]
    return snr1[:, None] * np.asarray(config.flux_factors)[None, :], snr1


def _method_thresholds(config: LimitConfig, models: Sequence[str], names: Sequence[str], n_sep: int,
                       thresholds: Mapping[str, float | Sequence[float]] | None) -> dict[str, np.ndarray]:
    given = dict(thresholds or {})
    unknown = sorted(set(given) - set(names))
    if unknown:
        msg = f"thresholds given for unknown method(s) {unknown}; the methods are {list(names)}"
        raise ValueError(msg)
    out = {}
    for name in names:
        raw = given.get(name, config.prob_threshold if name in models else config.snr_threshold)
        values = np.asarray(raw, dtype=np.float64)
        values = np.full(n_sep, float(values)) if values.ndim == 0 else values
        if values.shape != (n_sep,) or not np.all(np.isfinite(values)):
            msg = f"thresholds[{name!r}] must be one finite number or one per separation ({n_sep}); got {raw!r}"
            raise ValueError(msg)
        if name in models and not np.all((values > 0) & (values < 1)):
            msg = f"probability thresholds of {name!r} must lie in (0, 1); got {values.tolist()}"
            raise ValueError(msg)
        out[name] = values.copy()
    return out


def detection_limits(
    sequence: ADISequence,
    config: LimitConfig | None = None,
    models: Mapping[str, str | os.PathLike[str]] | None = None,
    *,
    thresholds: Mapping[str, float | Sequence[float]] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    n_jobs: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
) -> DetectionLimits:
    """Flux at which each method reaches ``config.tpr_target`` TPR at its threshold, per separation.

    Parameters
    ----------
    sequence : ADISequence
        The real data, without injections.
    config : LimitConfig, optional
        Separations, flux ladder, copies, thresholds, baselines (default: ``LimitConfig()``).
    models : mapping of name -> model folder, optional
        Trained models (``sodinn train``); the baselines of ``config.baselines`` are evaluated beside them.
    thresholds : mapping of method name -> float or sequence, optional
        Thresholds overriding ``config.prob_threshold`` / ``config.snr_threshold``: one value, or one per
        separation (e.g. a calibrated probability threshold per annulus).
    cache_dir : path, optional
        Each copy's maps are cached there (:func:`sodinn.evaluate.copies.run_copies`); a rerun reuses them.
    n_jobs : int, optional
        Worker processes (default: all cores; 1 runs in this process).
    scheduler : None, str or dask.distributed.Client
        Where the copies run (see :mod:`sodinn.engine`).
    progress : bool
        Show a progress bar over the copies.

    Returns
    -------
    DetectionLimits
        Per method and separation: thresholds, detections, false positives, fitted rates and flux limits.

    Raises
    ------
    ValueError
        Before any work: a known source outside the frame, an unknown baseline, a model named like a
        baseline, separations outside 1 FWHM .. N/2 - FWHM, thresholds for unknown methods or of the
        wrong shape, a model that cannot be applied to the data
        (:func:`sodinn.learn.artifact.check_model_data`; Keras is not loaded).
    FileNotFoundError
        For a model folder without ``model.json``.
    OSError
        If ``cache_dir`` cannot be written (a file, no permission), before any work.
    """
    config = config or LimitConfig()
    model_paths, names, radii, lam, levels = _prepare(sequence, config, models, thresholds, cache_dir)
    return _run(sequence, config, model_paths, names, radii, lam, levels, cache_dir=cache_dir, n_jobs=n_jobs,
                scheduler=scheduler, progress=progress)


def _prepare(sequence: ADISequence, config: LimitConfig, models: Mapping[str, str | os.PathLike[str]] | None,
             thresholds: Mapping[str, float | Sequence[float]] | None, cache_dir: str | os.PathLike[str] | None,
             ) -> tuple[dict[str, str], list[str], np.ndarray, float, dict[str, np.ndarray]]:
    """Check, before any work, what :func:`detection_limits` is given: models, baselines, separations, thresholds, cache."""
    v.check_sources_in_frame(config, sequence.frame_size)
    model_paths = check_methods(models, config.baselines)
    names = method_names(model_paths, config.baselines)
    for name, path in model_paths.items():
        check_model_data(read_metadata(path), sequence, name=name)
    fwhm = sequence.fwhm_px
    lam = config.lambda_d_px or fwhm
    radii = np.asarray(config.separations_lambda_d) * lam
    limit = sequence.frame_size / 2 - fwhm
    if radii.min() < fwhm * (1 - 1e-9) or radii.max() > limit:
        msg = (f"separations must lie between 1 FWHM ({fwhm:.2f} px = {fwhm / lam:.2f} lambda/D) and N/2 - FWHM ({limit:.2f} px = "
               f"{limit / lam:.2f} lambda/D); got {radii.min():.2f}-{radii.max():.2f} px; choose ").replace("{", "{{").replace("}", "}}")
        raise SettingError(msg + "{separations_lambda_d} in that range", separations_lambda_d=None)
    check_method_ranks(sequence, config.baselines, r_in_px=[max(0.0, _ring(r, fwhm)[0] - 2 * fwhm) for r in radii],
                       oracle_ncomp=config.oracle_ncomp if config.flux_ladder is None else None)
    levels = _method_thresholds(config, list(model_paths), names, radii.size, thresholds)
    if cache_dir is not None:
        check_writable_output(cache_dir, kind="folder", name="cache_dir")
    return dict(model_paths), list(names), radii, lam, levels


def _run(sequence: ADISequence, config: LimitConfig, model_paths: Mapping[str, str], names: Sequence[str], radii: np.ndarray,
         lam: float, levels: Mapping[str, np.ndarray], *, cache_dir: str | os.PathLike[str] | None, n_jobs: int | None,
         scheduler: Any, progress: bool) -> DetectionLimits:
    fwhm = sequence.fwhm_px
    psf = sample_psf(sequence, SampleConfig())
    fluxes, snr1 = _ladder(sequence, config, radii, psf)
    injections = limit_injections(sequence, config, fluxes)
    maps = run_copies(sequence, injections, psf, [_ring(inj.sep_px, fwhm) for inj in injections], models=model_paths,
                      baselines=config.baselines, cache_dir=cache_dir, n_jobs=n_jobs, scheduler=scheduler, progress=progress,
                      desc="limit copies", known_sources_xy=config.known_sources_xy)
    return _score(sequence, config, names, levels, radii, lam, fluxes, snr1, injections, maps)


def _ring(sep_px: float, fwhm_px: float) -> tuple[float, float]:
    """Return the ring where a copy's detections and false positives count: 1 FWHM wide, centred on the separation."""
    return sep_px - fwhm_px / 2, sep_px + fwhm_px / 2


def _score(sequence: ADISequence, config: LimitConfig, names: Sequence[str], levels: Mapping[str, np.ndarray], radii: np.ndarray,
           lam: float, fluxes: np.ndarray, snr1: np.ndarray | None, injections: Sequence[Injection],
           maps: Sequence[Mapping[str, np.ndarray]]) -> DetectionLimits:
    fwhm = sequence.fwhm_px
    cy, cx = frame_center(sequence.cube.shape)
    yy, xx = np.indices(sequence.cube.shape[1:])
    rr = np.hypot(xx - cx, yy - cy)
    shape = (radii.size, fluxes.shape[1], config.copies_per_flux)
    detected = {m: np.zeros(shape, dtype=bool) for m in names}
    false_pos = {m: np.zeros(shape) for m in names}
    models = {m for m in names if m not in config.baselines}
    for i, inj in enumerate(injections):
        lo, hi = _ring(inj.sep_px, fwhm)
        region = (rr >= lo) & (rr < hi)
        level, c = divmod(inj.copy, config.copies_per_flux)
        for m in names:
            cut = float(levels[m][inj.band])
            if m in models:  # model maps are logits: P > t where logit > logit(t)
                cut = math.log(cut) - math.log1p(-cut)
            s = score_blobs(maps[i][m], cut, [(inj.x, inj.y)], fwhm, region=region, **config.scoring())
            detected[m][inj.band, level, c] = bool(s.detected[0])
            false_pos[m][inj.band, level, c] = s.false_positives
    tpr_fit, flux_limit = {}, {}
    for m in names:
        fits, lims = [], []
        for b in range(radii.size):
            flux, _, fit = flux_at_tpr(np.repeat(fluxes[b], config.copies_per_flux), detected[m][b].ravel(), config.tpr_target)
            fits.append(fit)
            lims.append(flux)
        tpr_fit[m], flux_limit[m] = np.array(fits), np.array(lims)
    return DetectionLimits(radii_px=radii, lambda_d_px=lam, fluxes=fluxes, snr1_flux=snr1, methods=list(names), thresholds=levels,
                           detected=detected, false_positives=false_pos, tpr_fit=tpr_fit, flux_limit=flux_limit,
                           tpr_target=config.tpr_target, injections=list(injections),
                           models=[m for m in names if m not in config.baselines])


@dataclass(frozen=True)
class ContrastLimits:
    """What :func:`contrast_limits` measured: the classical curve and the 95%-TPR limits, as contrast and delta mag.

    Attributes
    ----------
    classical : ContrastCurve or None
        The classical ``sigma``-sigma curve of annular PCA-ADI, Student-corrected (None with
        ``config.classical = False``).
    detection : DetectionLimits
        The flux at which each model and baseline detects ``tpr_target`` of the injected companions.
    star_flux : float
        The star's flux in an aperture of diameter 1 FWHM, the cube's units (:func:`sodinn.evaluate.contrast.star_flux`).
    pixel_scale_arcsec : float
        Pixel scale, arcsec per px.
    config : LimitConfig
        The settings.
    """

    classical: ContrastCurve | None
    detection: DetectionLimits
    star_flux: float
    pixel_scale_arcsec: float
    config: LimitConfig

    def table(self):
        """Return both curves in one table: one row per curve, method and separation, with units.

        Returns
        -------
        astropy.table.Table
            Columns ``curve`` (``"classical"``: the ``sigma``-sigma Student curve; ``"tpr"``: the
            ``tpr_target`` detection limit), ``method`` (``annular-K`` for annular PCA-ADI at K
            components, or a model's name), ``sep_px`` [pix], ``sep_lambda_d``, ``sep_arcsec`` [arcsec],
            ``sep_mas`` [mas], ``flux_limit`` (cube units, in an aperture of diameter 1 FWHM),
            ``contrast`` (flux_limit / star_flux), ``delta_mag`` [mag] (``-2.5 log10 contrast``; NaN where
            the limit was not reached), then the classical curve's ``noise``, ``student_factor`` and
            ``throughput`` and the detection limits' ``threshold`` (S/N or probability), ``mean_fp`` and
            ``n_copies`` (NaN or 0 in the rows of the other curve). ``meta`` holds the star flux, its
            scaling, the pixel scale and the methods in words.
        """
        import astropy.units as u
        from astropy.table import Table

        cfg = self.config
        rows: list[dict[str, Any]] = []
        nan = float("nan")
        if self.classical is not None:
            c = self.classical
            for i, r in enumerate(c.radii_px):
                rows.append({"curve": "classical", "method": f"annular-{cfg.classical_ncomp}", "sep_px": float(r),
                             "flux_limit": float(c.flux_limit[i]), "noise": float(c.noise[i]),
                             "student_factor": float(c.factor[i]), "throughput": float(c.throughput[i]), "threshold": nan,
                             "mean_fp": nan, "n_copies": 0})
        d = self.detection
        for m in d.methods:
            fp = d.mean_fp(m)
            for i, r in enumerate(d.radii_px):
                rows.append({"curve": "tpr", "method": m, "sep_px": float(r), "flux_limit": float(d.flux_limit[m][i]),
                             "noise": nan, "student_factor": nan, "throughput": nan, "threshold": float(d.thresholds[m][i]),
                             "mean_fp": float(fp[i]), "n_copies": int(d.detected[m][i].size)})
        sep = np.array([row["sep_px"] for row in rows], dtype=np.float64)
        flux = np.array([row["flux_limit"] for row in rows], dtype=np.float64)
        contrast = flux / self.star_flux
        table = Table()
        table["curve"] = [row["curve"] for row in rows]
        table["method"] = [row["method"] for row in rows]
        table["sep_px"] = sep * u.pix
        table["sep_lambda_d"] = sep / d.lambda_d_px
        table["sep_arcsec"] = sep * self.pixel_scale_arcsec * u.arcsec
        table["sep_mas"] = sep * self.pixel_scale_arcsec * 1000.0 * u.mas
        table["flux_limit"] = flux
        table["contrast"] = contrast
        table["delta_mag"] = delta_mag(contrast) * u.mag
        for key in ("noise", "student_factor", "throughput", "threshold", "mean_fp"):
            table[key] = np.array([row[key] for row in rows], dtype=np.float64)
        table["n_copies"] = np.array([row["n_copies"] for row in rows], dtype=np.int64)
        table["sep_lambda_d"].description = f"separation in lambda/D ({d.lambda_d_px:.3f} px)"
        table["flux_limit"].description = "limiting flux, the cube's units, in an aperture of diameter 1 FWHM"
        table["contrast"].description = "flux_limit / star flux (same aperture)"
        table["delta_mag"].description = "-2.5 log10(contrast)"
        table.meta.update(self.meta())
        return table

    def meta(self) -> dict[str, Any]:
        """Return what the table's numbers mean, in words and values (the ECSV header).

        Returns
        -------
        dict
            Star flux and its scaling, pixel scale, lambda/D, the two curves' methods, the settings.
        """
        cfg = self.config
        out: dict[str, Any] = {
            "star_flux": self.star_flux,
            "star_flux_method": ("exact sum of the off-axis PSF in an aperture of diameter 1 FWHM on its centre, "
                                 "times cube_exposure_s / psf_exposure_s / psf_nd_transmission"),
            "psf_exposure_s": cfg.psf_exposure_s,
            "cube_exposure_s": cfg.cube_exposure_s,
            "psf_nd_transmission": cfg.psf_nd_transmission,
            "pixel_scale_arcsec": self.pixel_scale_arcsec,
            "lambda_d_px": self.detection.lambda_d_px,
            "tpr_method": (f"flux at which each method detects {100 * self.detection.tpr_target:g}% of the companions injected "
                           f"one per copy ({cfg.copies_per_flux} copies per flux level and separation; isotonic fit in log "
                           f"flux), at its threshold: S/N {cfg.snr_threshold:g} for the baselines, probability "
                           f"{cfg.prob_threshold:g} for the models unless given per separation"),
            "limits_config": cfg.to_dict(),
        }
        if self.classical is not None:
            out["classical_method"] = (
                f"annular PCA-ADI, {cfg.classical_ncomp} components: {cfg.sigma:g}-sigma threshold with the Student-t "
                f"small-sample correction (Mawet et al. 2014; {cfg.convention} noise apertures) over the throughput of "
                f"{cfg.classical_azimuths} fake companion(s) per separation at {cfg.injection_snr:g} x noise")
        return out


def contrast_limits(
    sequence: ADISequence,
    config: LimitConfig | None = None,
    models: Mapping[str, str | os.PathLike[str]] | None = None,
    *,
    thresholds: Mapping[str, float | Sequence[float]] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    n_jobs: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
) -> ContrastLimits:
    """Measure the classical contrast curve and the models' detection limits, as contrast and delta mag.

    Every check of both is made before any work: the pixel scale, the star flux, the models against
    the data (Keras is not loaded), the baselines, separations and thresholds
    (:func:`detection_limits`), the classical curve's components against the frames. Then the
    classical ``config.sigma``-sigma curve of annular PCA-ADI at ``config.classical_ncomp`` components
    (Student-corrected; every ``config.classical_step_fwhm`` FWHM), then the ``config.tpr_target``
    limits of the models and baselines on the same injected copies.

    Parameters
    ----------
    sequence : ADISequence
        The real data, without injections; its pixel scale is needed (for the separations in arcsec).
    config : LimitConfig, optional
        Settings (default ``LimitConfig()``), including the star-flux scaling ``psf_exposure_s``,
        ``cube_exposure_s`` and ``psf_nd_transmission``.
    models : mapping of name -> model folder, optional
        Trained models (``sodinn train``).
    thresholds : mapping of method name -> float or sequence, optional
        Thresholds per method (see :func:`detection_limits`).
    cache_dir : path, optional
        Each copy's maps are cached there; a rerun reuses them.
    n_jobs : int, optional
        Worker processes (default: all cores).
    scheduler : None, str or dask.distributed.Client
        Where the copies run (see :mod:`sodinn.engine`).
    progress : bool
        Show a progress bar over the copies.

    Returns
    -------
    ContrastLimits
        Both curves, the star flux and the pixel scale; :meth:`ContrastLimits.table` gives contrast and
        delta mag against separation in px, lambda/D, arcsec and mas.

    Raises
    ------
    SettingError
        If the sequence has no pixel scale (``pixel_scale_arcsec``).
    ValueError
        As :func:`detection_limits` and :func:`sodinn.evaluate.contrast.classical_contrast_curve`, and if the
        PSF's aperture flux is not > 0; all before any work.
    FileNotFoundError
        For a model folder without ``model.json``.
    OSError
        If ``cache_dir`` cannot be written.
    """
    config = config or LimitConfig()
    if sequence.pixel_scale_arcsec is None:
        raise SettingError("the separations in arcsec need the pixel scale: pass {pixel_scale_arcsec}",
                           pixel_scale_arcsec=None)
    star = config.star_flux if config.star_flux is not None else star_flux(
        sequence.psf, sequence.fwhm_px, psf_exposure_s=config.psf_exposure_s, cube_exposure_s=config.cube_exposure_s,
        psf_nd_transmission=config.psf_nd_transmission)
    model_paths, names, radii, lam, levels = _prepare(sequence, config, models, thresholds, cache_dir)
    classical = None
    if config.classical:
        try:
            classical = classical_contrast_curve(
                sequence, radii_px=default_radii(sequence, step_fwhm=config.classical_step_fwhm), ncomp=config.classical_ncomp,
                sigma=config.sigma, n_azimuths=config.classical_azimuths, injection_snr=config.injection_snr, star_flux=star,
                known_sources_xy=config.known_sources_xy, mask_radius_fwhm=config.mask_radius_fwhm,
                lambda_d_px=config.lambda_d_px, seed=config.seed, convention=config.convention)
        except SettingError as err:
            raise err.renamed(ncomp="classical_ncomp") from None
    detection = _run(sequence, config, model_paths, names, radii, lam, levels, cache_dir=cache_dir, n_jobs=n_jobs,
                     scheduler=scheduler, progress=progress)
    return ContrastLimits(classical=classical, detection=detection, star_flux=star,
                          pixel_scale_arcsec=float(sequence.pixel_scale_arcsec), config=config)
