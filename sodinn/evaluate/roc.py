"""ROC curves: trained models against median-ADI and PCA-ADI on the same injected copies (SPEC §5).

The harness makes copies of a cube, each with one fake companion at a random position of a
separation band (bands in lambda/D) and a flux drawn between the S/N bounds of the S/N oracle of
:mod:`sodinn.mlar.flux`; every method reduces the *same* copies: the trained models give probability
maps, the baselines final frames and their S/N maps. Each map is thresholded at every threshold
and its blobs are judged by the data-challenge rule of :mod:`sodinn.detect.scoring`, counting only the
band's pixels ("local ROC"); known real sources are kept out of the injections and their blobs
ignored. Per method, band and threshold: TPR, mean false positives per frame, FDR and F1.

The copies are run and cached by :mod:`sodinn.evaluate.copies` (one process per core by default, or a
Dask cluster; each finished map cached per copy and method, so an interrupted run resumes, a rerun
with other thresholds only rescores, and a run that adds a model reuses the baselines' maps). The
report (``roc.csv``, ``roc.png``, ``summary.txt``, ...) is written by :mod:`sodinn.pipeline.roc`.

References: Gomez Gonzalez et al. 2018, "Supervised detection of exoplanets in high-contrast imaging
sequences", A&A 613, A71 (the ROC comparison with PCA-ADI); Cantalloube et al. 2020, Proc. SPIE 11448,
114485A (the blob rule).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sodinn import _validation as v
from sodinn._atomic import check_writable_output
from sodinn.adi.baselines import BASELINES, parse_method
from sodinn.adi.geometry import frame_center
from sodinn.adi.sequence import ADISequence
from sodinn.config import RocConfig, SampleConfig
from sodinn.detect.calibration import Calibration, calibrate, calibrate_self
from sodinn.detect.probability import UNEVALUATED_LOGIT, ProbabilityMap
from sodinn.detect.scoring import score_blobs
from sodinn.engine import check_scheduler
from sodinn.evaluate.copies import (
    Injection,
    cache_key,
    check_method_ranks,
    check_methods,
    free_position,
    load_model,
    method_names,
    run_copies,
)
from sodinn.exceptions import SettingError
from sodinn.learn.artifact import check_model_data, read_metadata
from sodinn.mlar.flux import FluxRangeEstimator
from sodinn.mlar.samples import sample_annuli, sample_psf

__all__ = ["DataMap", "RocResult", "best_f1", "calibration_checks", "comparison_groups", "data_maps", "roc_injections", "run_roc",
           "score_copies", "summarize", "tpr_at"]

logger = logging.getLogger(__name__)


def _band_px(config: RocConfig, lambda_d: float) -> list[tuple[float, float]]:
    return [(lo * lambda_d, hi * lambda_d) for lo, hi in config.bands_lambda_d]


def _check_bands(sequence: ADISequence, config: RocConfig, lambda_d: float) -> None:
    limit = sequence.frame_size / 2 - sequence.fwhm_px
    for (lo, hi), (lo_px, hi_px) in zip(config.bands_lambda_d, _band_px(config, lambda_d)):
        if hi_px > limit:
            raise SettingError(f"band {lo:g}-{hi:g} lambda/D reaches {hi_px:.1f} px, beyond the last separation with full "
                               f"S/N apertures ({limit:.1f} px in {sequence.frame_size} px frames); lower its outer edge "
                               f"in {{bands_lambda_d}} to at most {limit / lambda_d:.2f}", bands_lambda_d=None)
        if lo_px < 0.5 * sequence.fwhm_px:
            raise SettingError(f"band {lo:g}-{hi:g} lambda/D starts at {lo_px:.1f} px, inside the star's core; start the "
                               "bands of {bands_lambda_d} at >= 0.5 FWHM", bands_lambda_d=None)


def roc_injections(sequence: ADISequence, config: RocConfig, flux_curve: tuple[np.ndarray, np.ndarray] | None = None) -> list[Injection]:
    """Draw every copy's companion (position in its band, flux), reproducibly from ``config.seed``.

    Positions are uniform over the band's area, farther than ``config.mask_radius_fwhm`` FWHM from the
    known sources; fluxes are drawn between the S/N bounds, uniformly or log-uniformly
    (``config.flux_distribution``).

    Parameters
    ----------
    sequence : ADISequence
        The data (centre, FWHM).
    config : RocConfig
        Bands, copies per band, seed, known sources, flux range or distribution.
    flux_curve : (ndarray, ndarray), optional
        ``(radii_px, fluxes)``, shapes (n,) and (n, 2): the fluxes of the lower and upper S/N bound at each
        separation (px), interpolated in log flux. Not needed when ``config.flux_range`` is given.

    Returns
    -------
    list of Injection
        ``config.copies_per_band`` per band, band by band; ``band`` is the band's index.

    Raises
    ------
    ValueError
        If ``flux_curve`` is missing while ``config.flux_range`` is None, or 1000 draws in a band all fall
        near known sources.
    """
    lambda_d = config.lambda_d_px or sequence.fwhm_px
    cy, cx = frame_center(sequence.cube.shape)
    sources = np.asarray(config.known_sources_xy, dtype=np.float64).reshape(-1, 2)
    exclusion = config.mask_radius_fwhm * sequence.fwhm_px
    out = []
    for b, (lo, hi) in enumerate(_band_px(config, lambda_d)):
        for c in range(config.copies_per_band):
            rng = np.random.default_rng([config.seed, b, c])

            def draw(rng=rng, lo=lo, hi=hi) -> tuple[float, float]:
                return math.sqrt(rng.uniform(lo**2, hi**2)), rng.uniform(0.0, 360.0)  # uniform over the band's area

            sep, theta, x, y = free_position(draw, (cx, cy), sources, exclusion, f"no injection site in band {b}")
            if config.flux_range is not None:
                f_lo, f_hi = config.flux_range
            else:
                if flux_curve is None:
                    msg = "flux_curve is needed when flux_range is not given"
                    raise ValueError(msg)
                radii, bounds = flux_curve
                f_lo, f_hi = (float(np.exp(np.interp(sep, radii, np.log(bounds[:, j])))) for j in (0, 1))
            u = rng.uniform()
            if f_hi <= 0:
                flux = 0.0
            elif config.flux_distribution == "log-uniform" and f_lo > 0:
                flux = float(f_lo * (f_hi / f_lo) ** u)
            else:
                flux = float(f_lo + u * (f_hi - f_lo))
            out.append(Injection(b, c, sep, theta, flux, x, y))
    return out


def _flux_curve(sequence: ADISequence, config: RocConfig, psf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lambda_d = config.lambda_d_px or sequence.fwhm_px
    radii = np.unique(np.concatenate([np.linspace(lo, hi, 3) for lo, hi in _band_px(config, lambda_d)]))
    radii = np.clip(radii, sequence.fwhm_px, None)
    est = FluxRangeEstimator(config.snr_range, ncomp=config.oracle_ncomp, n_azimuths=config.oracle_azimuths, rng=config.seed)
    try:  # known sources out of the injections and of the noise apertures of every companion's S/N
        est.fit(sequence.cube, sequence.angles_deg, psf, sequence.fwhm_px, radii, exclude_xy=config.known_sources_xy,
                exclude_radius_px=config.mask_radius_fwhm * sequence.fwhm_px)
    except SettingError as err:  # the estimator names its parameter; here the setting is mask_radius_fwhm
        raise SettingError(err.template.replace("{exclude_radius_px}", "{mask_radius_fwhm}"), mask_radius_fwhm=None) from None
    return radii, np.asarray(est.flux_range_)


# ----------------------------------------------------------------------------- the harness


@dataclass(frozen=True)
class DataMap:
    """A model's logit map of the data over its whole field, for the self-calibration of the ROC's copies.

    A copy's map is computed only in the annuli of its band; outside them the injection changes nothing,
    so the copy's whole-field map, the one a user would calibrate (:func:`sodinn.detect.calibration.calibrate_self`),
    is the copy's band with this map around it.

    Attributes
    ----------
    edges_px : ndarray, shape (n_annuli + 1,)
        The model's annulus edges on these data, px.
    logit : ndarray, shape (N, N)
        The model's logit map of the data, every annulus evaluated
        (:attr:`~sodinn.detect.probability.ProbabilityMap.logit`).
    """

    edges_px: np.ndarray
    logit: np.ndarray

    def around(self, copy_logit: np.ndarray) -> np.ndarray:
        """Return a copy's whole-field logit map: its evaluated pixels, this map elsewhere.

        Parameters
        ----------
        copy_logit : ndarray, shape (N, N)
            The copy's logit map, :data:`~sodinn.detect.probability.UNEVALUATED_LOGIT` outside its band's annuli.

        Returns
        -------
        ndarray of float64, shape (N, N)
            The copy's logits where it was evaluated, the data's elsewhere.
        """
        copy_logit = np.asarray(copy_logit, dtype=np.float64)
        return np.where(copy_logit > UNEVALUATED_LOGIT / 2, copy_logit, np.asarray(self.logit, dtype=np.float64))


def data_maps(sequence: ADISequence, psf: np.ndarray, n_bands: int, *, models: Mapping[str, str],
              baselines: Sequence[str] = (), cache_dir: str | os.PathLike[str] | None = None, resume: bool = True,
              n_jobs: int | None = None, scheduler: Any = None, progress: bool = True,
              known_sources_xy: Sequence[tuple[float, float]] = ()) -> dict[str, np.ndarray]:
    """Every method's map of the data itself over the whole field (the maps :class:`DataMap` holds).

    Computed as a copy of :func:`~sodinn.evaluate.copies.run_copies` with no companion and every
    separation scored, and cached in ``cache_dir`` beside the ROC's copies (a key of its own).

    Parameters
    ----------
    sequence : ADISequence
        The data.
    psf : ndarray, shape (p, p)
        Normalised PSF (the copies' cache key holds it).
    n_bands : int
        The number of the ROC's bands: the data's copy is numbered band ``n_bands``, after theirs.
    models, baselines, cache_dir, resume, n_jobs, scheduler, progress, known_sources_xy
        As :func:`~sodinn.evaluate.copies.run_copies`.

    Returns
    -------
    dict of str -> ndarray, shape (N, N)
        By method name: the model's logit map, every annulus evaluated, or the baseline's S/N map.
    """
    cy, cx = frame_center(sequence.cube.shape)
    data = Injection(n_bands, 0, 0.0, 0.0, 0.0, cx, cy)  # no companion
    return run_copies(sequence, [data], psf, [(0.0, float(sequence.frame_size))], models=models, baselines=baselines,
                      cache_dir=cache_dir, resume=resume, n_jobs=n_jobs, scheduler=scheduler, progress=progress,
                      desc="data maps", known_sources_xy=known_sources_xy)[0]


@dataclass
class RocResult:
    """What a run measured.

    Attributes
    ----------
    rows : list of dict
        One per (method, band, threshold): ``method, kind, band, band_lambda_d, threshold, n_copies,
        n_injections, tp, true_blobs, fp, fn, tpr, mean_fp, fdr, f1, expected_fp``.
    injections : list of Injection
        The companion of each copy.
    summary : str
        TPR of each method at 0.1, 0.5 and 1 mean false positive per frame, and the model/PCA ratios.
    calibrations : dict of str -> Calibration or DataMap
        The calibration of each model (when ``RocConfig.calibrate``): its calibration on null draws of the
        data (``calibration_nulls`` > 0), or the data's map every copy is self-calibrated within (0, the default).
    models : dict of str -> str
        The model folders evaluated.
    cache_dir : Path, optional
        The folder that holds the cached maps of this run (``cache_dir/<key>`` of :func:`run_roc`).
    """

    rows: list[dict[str, Any]]
    injections: list[Injection]
    summary: str = ""
    calibrations: dict[str, Calibration | DataMap] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None

    def table(self) -> Any:
        """Return the rows as an astropy Table.

        Returns
        -------
        astropy.table.Table
            One row per (method, band, threshold), the keys of :attr:`rows` as columns.
        """
        from astropy.table import Table

        return Table(rows=self.rows)


def run_roc(
    sequence: ADISequence,
    config: RocConfig | None = None,
    models: Mapping[str, str | os.PathLike[str]] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    n_jobs: int | None = None,
    scheduler: Any = None,
    resume: bool = True,
    progress: bool = True,
) -> RocResult:
    """Run the ROC harness: injections, every method's maps of every copy, calibration, scores.

    Parameters
    ----------
    sequence : ADISequence
        The real data, without injections.
    config : RocConfig, optional
        Bands, copies, thresholds, baselines, scoring rule (default: ``RocConfig()``).
    models : mapping of name -> model folder, optional
        Trained models (``sodinn train``) to evaluate beside the baselines.
    cache_dir : path, optional
        The maps of finished copies are cached there (:func:`sodinn.evaluate.copies.run_copies`);
        without it nothing is cached. :func:`sodinn.pipeline.roc.roc_report` uses ``OUTPUT/cache``.
    n_jobs : int, optional
        Worker processes (default: all cores; 1 runs in this process).
    scheduler : None, str or dask.distributed.Client
        Where the copies run (see :mod:`sodinn.engine`): the local pool by default, or a Dask cluster
        (``"tcp://host:port"``). The maps come back to this process, which caches them.
    resume : bool
        Reuse the cached maps of finished copies.
    progress : bool
        Show a progress bar over the copies.

    Returns
    -------
    RocResult
        The rows per method, band and threshold, the injections, the text summary and the calibrations.

    Raises
    ------
    ValueError
        Before any work: a bad scheduler, a known source outside the frame, an unknown baseline, a model
        named like a baseline, a model that cannot be applied to the data
        (:func:`sodinn.learn.artifact.check_model_data`: another FWHM, too few frames, too small frames;
        Keras is not loaded), nothing to evaluate, or a band
        outside the frame.
    FileNotFoundError
        For a model folder without ``model.json``.
    OSError
        If ``cache_dir`` cannot be written (a file, no permission), before any work.

    See Also
    --------
    sodinn.pipeline.roc.roc_report : Write the report of a run.

    Notes
    -----
    The ROC comparison of SODINN with PCA-ADI of SPEC §5 and Gomez Gonzalez et al. 2018 [1]_; blobs are
    judged by the Exoplanet Imaging Data Challenge's rule [2]_ (:func:`sodinn.detect.scoring.score_blobs`).

    References
    ----------
    .. [1] Gomez Gonzalez et al. 2018, "Supervised detection of exoplanets in high-contrast imaging
       sequences", A&A 613, A71.
    .. [2] Cantalloube et al. 2020, "Exoplanet imaging data challenge: benchmarking the various image
       processing methods for exoplanet detection", Proc. SPIE 11448, 114485A.
    """
    config = config or RocConfig()
    check_scheduler(scheduler)
    v.check_sources_in_frame(config, sequence.frame_size)
    model_paths = check_methods(models, config.baselines)
    for name, path in model_paths.items():
        check_model_data(read_metadata(path), sequence, name=name)
    if cache_dir is not None:
        check_writable_output(cache_dir, kind="folder", name="cache_dir")
    if not model_paths and not config.baselines:
        msg = "nothing to evaluate: give at least one model or one baseline"
        raise ValueError(msg)
    lambda_d = config.lambda_d_px or sequence.fwhm_px
    _check_bands(sequence, config, lambda_d)
    check_method_ranks(sequence, config.baselines,
                       r_in_px=[max(0.0, lo - 2 * sequence.fwhm_px) for lo, _ in _band_px(config, lambda_d)],
                       oracle_ncomp=config.oracle_ncomp if config.flux_range is None else None)
    psf = sample_psf(sequence, SampleConfig())
    curve = None if config.flux_range is not None else _flux_curve(sequence, config, psf)
    injections = roc_injections(sequence, config, curve)
    names = method_names(model_paths, config.baselines)
    bands_px = _band_px(config, lambda_d)
    maps = run_copies(sequence, injections, psf, [bands_px[inj.band] for inj in injections], models=model_paths,
                      baselines=config.baselines, cache_dir=cache_dir, resume=resume, n_jobs=n_jobs, scheduler=scheduler,
                      progress=progress, desc="ROC copies", known_sources_xy=config.known_sources_xy)
    calibrations: dict[str, Calibration | DataMap] = {}
    if config.calibrate and config.calibration_nulls:
        for name, path in model_paths.items():
            logger.info("calibrating %s on %d null draws of the data", name, config.calibration_nulls)
            calibrations[name] = calibrate(sequence, load_model(path), n_null=config.calibration_nulls, seed=config.seed,
                                           known_sources_xy=config.known_sources_xy)
    elif config.calibrate:  # every copy calibrated on its own blobs over the whole field, as a user's map of it
        logger.info("each copy calibrated on its own blobs over the whole field (the data's map outside its band)")
        data = data_maps(sequence, psf, len(bands_px), models=model_paths, cache_dir=cache_dir, resume=resume,
                         n_jobs=n_jobs, scheduler=scheduler, progress=progress, known_sources_xy=config.known_sources_xy)
        for name, path in model_paths.items():
            calibrations[name] = DataMap(sample_annuli(sequence, load_model(path).sample_config).edges_px, data[name])
    rows = score_copies(sequence, config, names, list(model_paths), injections, maps, bands_px, calibrations)
    scored = [m for name in model_paths for m in (name, f"{name}-cal") if m == name or name in calibrations]
    return RocResult(rows=rows, injections=injections, summary=summarize(rows, scored), calibrations=calibrations,
                     models=model_paths, cache_dir=Path(cache_dir) / cache_key(sequence, injections) if cache_dir is not None else None)


def score_copies(sequence: ADISequence, config: RocConfig, names: Sequence[str], model_names: Sequence[str],
                 injections: Sequence[Injection], maps: Sequence[Mapping[str, np.ndarray]],
                 bands_px: Sequence[tuple[float, float]], calibrations: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Score every copy's maps at every threshold; aggregate per method, band and threshold.

    Models are thresholded at ``config.prob_thresholds``, baselines at ``config.snr_thresholds``;
    calibrated methods (``NAME-cal``, from ``calibrations``) at ``config.fp_targets`` expected false
    positives per frame, and their rows also carry ``expected_fp``, the share of the target that falls in
    the band. Only the band's pixels are scored.

    Parameters
    ----------
    sequence : ADISequence
        The data (centre, FWHM).
    config : RocConfig
        Thresholds, bands and scoring rule.
    names : sequence of str
        Every method, as :func:`sodinn.evaluate.copies.method_names`.
    model_names : sequence of str
        Those of ``names`` that are models (probability maps); the others are baselines (S/N maps).
    injections : sequence of Injection
        The companion of each copy.
    maps : sequence of mapping of str -> ndarray, shape (N, N)
        Per copy, the map of each method.
    bands_px : sequence of (float, float)
        Inner and outer radius of each band, px.
    calibrations : mapping of str -> Calibration, DataMap or ndarray, optional
        Calibration of some models, by name: a :class:`~sodinn.detect.calibration.Calibration` of the real
        data (null draws); a :class:`DataMap`, to calibrate every copy on its own blobs over the whole
        field (its band's annuli, the data's map elsewhere: what a user calibrates, the default of
        :func:`run_roc`); or the model's annulus edges (px), to calibrate every copy on its band's annuli
        alone (sodinn before 2026-12-01: a few dozen blobs, one of them the companion, about 3x conservative).

    Returns
    -------
    list of dict
        One per (method, band, threshold), the keys of :attr:`RocResult.rows`.
    """
    cy, cx = frame_center(sequence.cube.shape)
    yy, xx = np.indices(sequence.cube.shape[1:])
    rr = np.hypot(xx - cx, yy - cy)
    calibrations = calibrations or {}
    methods: list[tuple[str, str, Sequence[float]]] = []
    for name in names:
        if name in model_names:
            methods.append((name, "probability", config.prob_thresholds))
            if name in calibrations:
                methods.append((f"{name}-cal", "calibrated", config.fp_targets))
        else:
            methods.append((name, "snr", config.snr_thresholds))
    rows = []
    for b, (lo, hi) in enumerate(bands_px):
        region = (rr >= lo) & (rr < hi)
        members = [i for i, inj in enumerate(injections) if inj.band == b]
        n_inj = sum(injections[i].flux > 0 for i in members)
        derived, band_share = {}, {}
        for name, cal in calibrations.items():
            if isinstance(cal, Calibration):  # null draws of the real data, one calibration for every copy
                derived[name] = {i: cal.score_map(maps[i][name]) for i in members}
                band_share[name] = int((region & (rr >= cal.edges_px[0]) & (rr < cal.edges_px[-1])).sum()) / cal.area_px
            else:  # each copy calibrated on its own blobs (what a user gets), known sources left out
                derived[name], shares = {}, []
                whole_field = isinstance(cal, DataMap)
                edges = cal.edges_px if whole_field else np.asarray(cal)
                for i in members:
                    logit = cal.around(maps[i][name]) if whole_field else maps[i][name]
                    own = _self_calibration(logit, edges, sequence.fwhm_px, config.known_sources_xy)
                    derived[name][i] = own.score_map(logit)
                    scored = region & (rr >= own.edges_px[0]) & (rr < own.edges_px[-1]) & (logit > UNEVALUATED_LOGIT / 2)
                    shares.append(int(scored.sum()) / max(own.area_px, 1))
                band_share[name] = float(np.mean(shares)) if shares else 0.0
        for method, kind, thresholds in methods:
            for t in thresholds:
                tp = true_blobs = 0
                fp = 0.0
                for i in members:
                    inj = injections[i]
                    xy = [(inj.x, inj.y)] if inj.flux > 0 else []
                    if kind == "calibrated":
                        frame, level = derived[method[:-4]][i], -math.log10(t)
                    elif kind == "probability":  # model maps are logits: P > t where logit > logit(t)
                        frame, level = maps[i][method], math.log(t) - math.log1p(-t)
                    else:
                        frame, level = maps[i][method], t
                    s = score_blobs(frame, level, xy, sequence.fwhm_px, region=region, **config.scoring())
                    tp += int(s.detected.sum())
                    true_blobs += s.true_blobs
                    fp += s.false_positives
                n = len(members)
                fn = n_inj - tp
                extra = {}
                if kind == "calibrated":
                    extra["expected_fp"] = t * band_share[method[:-4]]
                rows.append({
                    "method": method, "kind": kind, "band": b,
                    "band_lambda_d": "{:g}-{:g}".format(*config.bands_lambda_d[b]), "threshold": float(t),
                    "n_copies": n, "n_injections": int(n_inj), "tp": int(tp), "true_blobs": int(true_blobs), "fp": float(fp),
                    "fn": int(fn),
                    "tpr": tp / n_inj if n_inj else float("nan"), "mean_fp": fp / n if n else float("nan"),
                    "fdr": fp / (true_blobs + fp) if (true_blobs + fp) > 0 else float("nan"),
                    "f1": 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else float("nan"),
                    "expected_fp": float("nan"), **extra,
                })
    return rows


def _self_calibration(logit: np.ndarray, edges_px: np.ndarray, fwhm_px: float, known_sources_xy: Any) -> Calibration:
    """Calibrate one copy's logit map on its own blobs (:func:`sodinn.detect.calibration.calibrate_self`)."""
    from scipy.special import expit

    logit = np.asarray(logit, dtype=np.float64)
    evaluated = logit > UNEVALUATED_LOGIT / 2
    pmap = ProbabilityMap(logit=logit, probability=np.where(evaluated, expit(logit), 0.0), evaluated=evaluated,
                          edges_px=edges_px, ks=np.zeros((len(edges_px) - 1, 1)))
    return calibrate_self(pmap, fwhm_px, known_sources_xy=known_sources_xy)


def tpr_at(rows: Sequence[Mapping[str, Any]], method: str, band: int, max_fp: float) -> float:
    """Return the best TPR of ``method`` in ``band`` among thresholds with at most ``max_fp`` mean false positives per frame.

    Parameters
    ----------
    rows : sequence of dict
        The rows of :func:`score_copies`.
    method : str
        The method.
    band : int
        Index of the band.
    max_fp : float
        Largest mean number of false positives per frame.

    Returns
    -------
    float
        The best TPR, in [0, 1]; 0 when no threshold qualifies.

    Examples
    --------
    >>> rows = [{"method": "m", "band": 0, "tpr": 0.4, "mean_fp": 0.1}, {"method": "m", "band": 0, "tpr": 0.9, "mean_fp": 2.0}]
    >>> tpr_at(rows, "m", 0, 1.0)
    0.4
    """
    ok = [r["tpr"] for r in rows if r["method"] == method and r["band"] == band and r["mean_fp"] <= max_fp]
    ok = [t for t in ok if not math.isnan(t)]
    return max(ok) if ok else 0.0


def comparison_groups(methods: Sequence[str]) -> tuple[list[tuple[str, list[str]]], list[tuple[str, list[str]]]]:
    """Group the baseline methods a model is compared with, as ``(label, members)`` pairs.

    Parameters
    ----------
    methods : sequence of str
        Method names; those that are not baseline methods (the models) are left out.

    Returns
    -------
    ranks : list
        Every baseline run at ranks given in the method names ("best annular PCA" over ``annular-5``,
        ``annular-10``, ...: the best rank per band is the fair comparison, SPEC §5); a ranked baseline
        at its default rank (a plain ``"pca"``) forms no group of its own.
    families : list
        Every family of baselines ("best PCA": full-frame and annular PCA-ADI together).
    """
    by_baseline: dict[str, list[str]] = {}
    by_family: dict[str, list[str]] = {}
    for method in methods:
        try:
            baseline, ncomp = parse_method(method)
        except ValueError:
            continue
        if ncomp is not None:
            by_baseline.setdefault(baseline.name, []).append(method)
        if baseline.family is not None:
            by_family.setdefault(baseline.family, []).append(method)
    ranks = [(f"best {BASELINES[name].short_title}", members) for name, members in by_baseline.items()]
    return ranks, [(f"best {family}", members) for family, members in by_family.items()]


def summarize(rows: Sequence[Mapping[str, Any]], model_names: Sequence[str], fp_levels: Sequence[float] = (0.1, 0.5, 1.0)) -> str:
    """Summarise a run as a text table: TPR of each method at each false-positive level, per band, and ratios.

    The ratios are each model's TPR over the best baseline of each group of :func:`comparison_groups`.

    Parameters
    ----------
    rows : sequence of dict
        The rows of :func:`score_copies`.
    model_names : sequence of str
        The methods compared with the baselines (models, calibrated models).
    fp_levels : sequence of float
        Mean false positives per frame at which the TPR is read (the best threshold below each).

    Returns
    -------
    str
        The table, lines separated by newlines; with calibrated rows, the expected against counted false
        positives too.
    """
    methods = list(dict.fromkeys(r["method"] for r in rows))
    bands = sorted({(r["band"], r["band_lambda_d"]) for r in rows})
    per_baseline, families = comparison_groups(methods)
    groups = per_baseline + families
    labels = [label for label, _ in groups]
    lines = ["TPR at <= N mean false positives per frame (best threshold); per separation band", ""]
    width = max(len(m) for m in methods + labels + [f"{n} / {label}" for n in model_names for label in labels]) + 2
    header = "band (l/D)".ljust(12) + "method".ljust(width) + "".join(f"FP<={f:g}".rjust(10) for f in fp_levels)
    lines.append(header)
    lines.append("-" * len(header))
    for b, label in bands:
        for m in methods:
            lines.append(f"{label:<12}{m:<{width}}" + "".join(f"{tpr_at(rows, m, b, f):10.2f}" for f in fp_levels))
        for group_label, members in per_baseline:
            best = [max(tpr_at(rows, m, b, f) for m in members) for f in fp_levels]
            lines.append(f"{label:<12}{group_label:<{width}}" + "".join(f"{x:10.2f}" for x in best))
        for model in model_names:
            for group_label, members in groups:
                ratios = []
                for f in fp_levels:
                    ref = max(tpr_at(rows, m, b, f) for m in members)
                    mine = tpr_at(rows, model, b, f)
                    ratios.append(mine / ref if ref > 0 else (float("inf") if mine > 0 else float("nan")))
                lines.append(f"{label:<12}{(model + ' / ' + group_label):<{width}}" + "".join(f"{x:9.2f}x" for x in ratios))
        lines.append("")
    lines.append("Best single threshold over all bands (as a data challenge scores): F1, TPR, false discovery rate")
    for m in methods:
        best = best_f1(rows, m)
        if best is not None:
            lines.append(f"{'all':<12}{m:<{width}}F1 {best['f1']:.2f}  TPR {best['tpr']:.2f}  FDR {best['fdr']:.2f}  "
                         f"FP/frame {best['mean_fp']:.2g}  at threshold {best['threshold']:g}")
    lines.append("")
    cal_rows = [r for r in rows if r.get("kind") == "calibrated"]
    if cal_rows:
        lines.append("Calibration check: false positives per frame in the band, expected from the calibration -> counted "
                     "[Poisson 95% range of the count; ok/OFF]")
        checks = calibration_checks(rows)
        for b, label in bands:
            for m in dict.fromkeys(r["method"] for r in cal_rows):
                sel = [c for c in checks if c["method"] == m and c["band"] == b]
                shown = [c for c in sel if _half_decade(c["threshold"])] or sel  # every target is counted below
                sel = shown
                pairs = ", ".join(f"{c['expected_fp']:.2g}->{c['mean_fp']:.2g}{'' if c['ok'] else ' OFF'}" for c in sel)
                lines.append(f"{label:<12}{m:<{width}}{pairs}")
        n_ok = sum(c["ok"] for c in checks)
        lines.append(f"{n_ok} of {len(checks)} counts within the Poisson 95% range of their expectation, every target "
                     "(shown: 1 and 3.16 per decade; target F per frame over the whole field; the band holds its area "
                     "share of F)")
        for m in dict.fromkeys(r["method"] for r in cal_rows):  # the bands together: more copies, less Poisson noise
            summed = calibration_checks([_bands_summed([r for r in cal_rows if r["method"] == m and r["threshold"] == t])
                                         for t in sorted({r["threshold"] for r in cal_rows if r["method"] == m})])
            pairs = ", ".join(f"{c['expected_fp']:.2g}->{c['mean_fp']:.2g}{'' if c['ok'] else ' OFF'}"
                              for c in summed if _half_decade(c["threshold"]))
            lines.append(f"{'all bands':<12}{m:<{width}}{pairs}")
    return "\n".join(lines)


def _bands_summed(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One calibrated row of every band's copies together (same method and target): counts summed, per frame over all."""
    n = sum(int(r["n_copies"]) for r in rows)
    fp = sum(float(r["fp"]) for r in rows)
    expected = sum(float(r["expected_fp"]) * int(r["n_copies"]) for r in rows)
    return {"kind": "calibrated", "method": rows[0]["method"], "band": -1, "threshold": rows[0]["threshold"], "fp": fp,
            "n_copies": n, "mean_fp": fp / n if n else float("nan"), "expected_fp": expected / n if n else 0.0}


def _half_decade(value: float) -> bool:
    """Whether ``value`` is 1 or 3.16 (sqrt 10) times a power of ten, to 0.1 %."""
    x = 2 * math.log10(value)
    return abs(x - round(x)) < 1e-3


def best_f1(rows: Sequence[Mapping[str, Any]], method: str) -> dict[str, float] | None:
    """Return the one threshold of ``method`` with the best F1 over all bands together, as a data challenge scores.

    The true positives, false positives and misses of every band at the same threshold are summed before
    F1 = 2 TP / (2 TP + FP + FN), TPR = TP / injections and FDR = FP / (true blobs + FP) are computed.

    Parameters
    ----------
    rows : sequence of dict
        The rows of :func:`score_copies`.
    method : str
        The method.

    Returns
    -------
    dict or None
        ``threshold``, ``f1``, ``tpr``, ``fdr`` and ``mean_fp`` (false positives per frame) at the best
        threshold; None when the method has no rows.

    Examples
    --------
    >>> rows = [{"method": "m", "band": b, "threshold": t, "tp": tp, "fp": fp, "fn": 10 - tp, "n_copies": 10,
    ...          "n_injections": 10} for b in (0, 1) for t, tp, fp in ((1.0, 9, 6.0), (2.0, 8, 0.0))]
    >>> best_f1(rows, "m")["threshold"]
    2.0
    """
    by_threshold: dict[float, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r["method"] == method and all(k in r for k in ("tp", "fp", "fn", "n_injections", "n_copies")):
            by_threshold.setdefault(float(r["threshold"]), []).append(r)
    best = None
    for t, group in sorted(by_threshold.items()):
        tp = sum(r["tp"] for r in group)
        fp = sum(r["fp"] for r in group)
        fn = sum(r["fn"] for r in group)
        n_inj = sum(r["n_injections"] for r in group)
        n = sum(r["n_copies"] for r in group)
        true_blobs = sum(r.get("true_blobs", r["tp"]) for r in group)
        f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else 0.0
        if best is None or f1 > best["f1"]:
            best = {"threshold": t, "f1": f1, "tpr": tp / n_inj if n_inj else float("nan"),
                    "fdr": fp / (true_blobs + fp) if (true_blobs + fp) > 0 else 0.0, "mean_fp": fp / n if n else float("nan")}
    return best


def calibration_checks(rows: Sequence[Mapping[str, Any]], *, level: float = 0.95) -> list[dict[str, Any]]:
    """Compare each calibrated row's counted false positives with the expected ones, within Poisson noise.

    For a calibrated method, band and target ``F``, the expected count over the band's copies is
    ``lambda = expected_fp * n_copies``; the counted one (rounded) is ``ok`` when it lies in the central
    ``level`` range of a Poisson law of mean ``lambda``.

    Parameters
    ----------
    rows : sequence of dict
        The rows of :func:`score_copies` (only ``kind == "calibrated"`` rows are checked).
    level : float
        Probability of the central range, in (0, 1).

    Returns
    -------
    list of dict
        One per calibrated row, sorted by method, band and target: ``method``, ``band``, ``threshold`` (the
        target F), ``expected_fp`` and ``mean_fp`` (per frame), ``expected_count``, ``count``, ``low``,
        ``high`` (the Poisson range) and ``ok``.

    Examples
    --------
    >>> rows = [{"kind": "calibrated", "method": "m-cal", "band": 0, "threshold": 1.0, "expected_fp": 0.3, "fp": 31.0,
    ...          "mean_fp": 0.31, "n_copies": 100}]
    >>> calibration_checks(rows)[0]["ok"]
    True
    """
    from scipy.stats import poisson

    out = []
    for r in sorted((r for r in rows if r.get("kind") == "calibrated"), key=lambda r: (r["method"], r["band"], r["threshold"])):
        lam = float(r["expected_fp"]) * int(r["n_copies"])
        count = round(float(r["fp"]))
        low, high = (float(x) for x in poisson.interval(level, lam)) if lam > 0 else (0.0, 0.0)
        out.append({"method": r["method"], "band": r["band"], "threshold": float(r["threshold"]),
                    "expected_fp": float(r["expected_fp"]), "mean_fp": float(r["mean_fp"]), "expected_count": lam,
                    "count": count, "low": low, "high": high, "ok": bool(low <= count <= high)})
    return out
