"""ROC curves: trained models against median-ADI and PCA-ADI on the same injected copies (SPEC §5).

The harness makes copies of a cube, each with one fake companion at a random position of a
separation band (bands in lambda/D) and a flux drawn between the S/N bounds of the S/N oracle of
:mod:`sodinn.flux`; every method reduces the *same* copies: the trained models give probability
maps, the baselines final frames and their S/N maps. Each map is thresholded at every threshold
and its blobs are judged by the data-challenge rule of :mod:`sodinn.scoring`, counting only the
band's pixels ("local ROC"); known real sources are kept out of the injections and their blobs
ignored. Per method, band and threshold: TPR, mean false positives per frame, FDR and F1.

The copies are independent jobs (one process per core by default, or a Dask cluster); each
finished copy's maps are cached on disk per method (``cache/`` in the output folder), so an
interrupted run resumes without redoing them, a rerun with other thresholds only rescores, and a
run that adds a model reuses the baselines' maps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sodinn import _validation as v
from sodinn._atomic import atomic_path
from sodinn.geometry import frame_center
from sodinn.scoring import score_blobs
from sodinn.sequence import ADISequence

__all__ = ["RocConfig", "RocResult", "run_roc", "roc_injections", "summarize"]

logger = logging.getLogger(__name__)

BASELINES = ("median", "pca", "annular")


def _default_snr_thresholds() -> tuple[float, ...]:
    return tuple(float(t) for t in np.round(np.arange(0.5, 5.01, 0.25), 2))


def _default_prob_thresholds() -> tuple[float, ...]:
    # up to 0.9999: trained on faint companions, a network is often over-confident on speckles
    return (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999)


@dataclass(frozen=True)
class RocConfig:
    """Settings of the ROC harness (the ``[roc]`` table of a configuration file).

    Parameters
    ----------
    bands_lambda_d : sequence of (float, float)
        Separation bands, in lambda/D (``lambda_d_px`` pixels each).
    copies_per_band : int
        Injected copies per band (one companion each).
    lambda_d_px : float, optional
        lambda/D in pixels (default: the PSF FWHM).
    snr_range : (float, float)
        Companion fluxes are drawn between the fluxes giving these annular-PCA S/N (the S/N oracle).
    flux_range : (float, float), optional
        Absolute flux bounds instead of the S/N oracle (``(0, 0)``: copies without companion, to count
        false positives alone).
    flux_distribution : {"uniform", "log-uniform"}
    baselines : sequence of {"median", "pca", "annular"}
    pca_ncomp : int, optional
        Components of full-frame PCA-ADI (default: CEVR 0.90).
    annular_ncomps : sequence of int
        Annular PCA-ADI is run at each of these ranks (the fair comparison is with the best one).
    snr_thresholds, prob_thresholds : sequence of float
        Thresholds of the S/N maps and of the probability maps.
    calibrate : bool
        Also score each model through its calibration (:mod:`sodinn.calibration`) as method ``NAME-cal``,
        at the expected false positives per frame ``fp_targets``.
    fp_targets : sequence of float
    calibration_nulls : int
        Null draws per pixel of the calibration.
    npix, overlap_threshold, max_blob_fact
        Blob scoring (see :mod:`sodinn.scoring`).
    known_sources_xy : sequence of (x, y)
        Real sources: no injection within ``mask_radius_fwhm`` FWHM, their blobs ignored.
    mask_radius_fwhm : float
    oracle_ncomp, oracle_azimuths : int
        Settings of the S/N oracle.
    seed : int
    """

    bands_lambda_d: tuple[tuple[float, float], ...] = ((1.0, 2.0), (2.0, 3.0), (3.0, 4.0))
    copies_per_band: int = 100
    lambda_d_px: float | None = None
    snr_range: tuple[float, float] = (1.0, 3.0)
    flux_range: tuple[float, float] | None = None
    flux_distribution: str = "uniform"
    baselines: tuple[str, ...] = BASELINES
    pca_ncomp: int | None = None
    annular_ncomps: tuple[int, ...] = (5, 10, 20)
    snr_thresholds: tuple[float, ...] = field(default_factory=_default_snr_thresholds)
    prob_thresholds: tuple[float, ...] = field(default_factory=_default_prob_thresholds)
    calibrate: bool = True
    fp_targets: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
    calibration_nulls: int = 4
    npix: int = 2
    overlap_threshold: float = 0.7
    max_blob_fact: float = 2.0
    known_sources_xy: tuple[tuple[float, float], ...] = ()
    mask_radius_fwhm: float = 2.0
    oracle_ncomp: int = 10
    oracle_azimuths: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        def tup(value, cast=float):
            return tuple(cast(x) for x in value)

        set_ = object.__setattr__
        bands = tuple(tup(b) for b in self.bands_lambda_d)
        if not bands or any(len(b) != 2 or not 0 <= b[0] < b[1] for b in bands):
            msg = f"bands_lambda_d must be (inner, outer) pairs with 0 <= inner < outer; got {self.bands_lambda_d}"
            raise ValueError(msg)
        set_(self, "bands_lambda_d", bands)
        v.check_int(self.copies_per_band, name="copies_per_band", minimum=1)
        if self.lambda_d_px is not None:
            v.check_positive(self.lambda_d_px, name="lambda_d_px")
        lo, hi = (v.check_positive(s, name="snr_range") for s in self.snr_range)
        if not lo < hi:
            msg = f"snr_range must be (low, high) with low < high; got {self.snr_range}"
            raise ValueError(msg)
        set_(self, "snr_range", (lo, hi))
        if self.flux_range is not None:
            f0, f1 = (float(f) for f in self.flux_range)
            if not 0 <= f0 <= f1:
                msg = f"flux_range must be (low, high) with 0 <= low <= high; got {self.flux_range}"
                raise ValueError(msg)
            set_(self, "flux_range", (f0, f1))
        v.check_choice(self.flux_distribution, ("uniform", "log-uniform"), name="flux_distribution")
        set_(self, "baselines", tup(self.baselines, str))
        for b in self.baselines:
            v.check_choice(b, BASELINES, name="baselines")
        set_(self, "annular_ncomps", tup(self.annular_ncomps, int))
        for k in self.annular_ncomps:
            v.check_int(k, name="annular_ncomps", minimum=1)
        if self.pca_ncomp is not None:
            v.check_int(self.pca_ncomp, name="pca_ncomp", minimum=1)
        for name in ("snr_thresholds", "prob_thresholds"):
            values = tup(getattr(self, name))
            if not values or any(not math.isfinite(t) for t in values):
                msg = f"{name} must be a non-empty list of finite numbers; got {getattr(self, name)}"
                raise ValueError(msg)
            set_(self, name, tuple(sorted(values)))
        set_(self, "fp_targets", tuple(sorted(v.check_positive(f, name="fp_targets") for f in self.fp_targets)))
        v.check_int(self.calibration_nulls, name="calibration_nulls", minimum=1)
        if any(not 0 < t < 1 for t in self.prob_thresholds):
            msg = f"prob_thresholds must lie in (0, 1); got {self.prob_thresholds}"
            raise ValueError(msg)
        v.check_int(self.npix, name="npix", minimum=1)
        if not 0 < self.overlap_threshold < 1:
            msg = f"overlap_threshold must be in (0, 1); got {self.overlap_threshold}"
            raise ValueError(msg)
        v.check_positive(self.max_blob_fact, name="max_blob_fact")
        set_(self, "known_sources_xy", tuple(tup(s) for s in self.known_sources_xy))
        v.check_positive(self.mask_radius_fwhm, name="mask_radius_fwhm")
        v.check_int(self.seed, name="seed", minimum=0)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RocConfig:
        """Build from a ``[roc]`` table; unknown keys are an error that names them."""
        from sodinn.config import _check_known_keys

        _check_known_keys(cls, values, "ROC")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return {k: (list(map(list, v_)) if k in ("bands_lambda_d", "known_sources_xy") else v_) for k, v_ in out.items() if v_ is not None}


@dataclass(frozen=True)
class Injection:
    """One injected copy: its band, the companion's position and flux (flux 0: no companion)."""

    band: int
    copy: int
    sep_px: float
    theta_deg: float
    flux: float
    x: float
    y: float


def _band_px(config: RocConfig, lambda_d: float) -> list[tuple[float, float]]:
    return [(lo * lambda_d, hi * lambda_d) for lo, hi in config.bands_lambda_d]


def _check_bands(sequence: ADISequence, config: RocConfig, lambda_d: float) -> None:
    limit = sequence.frame_size / 2 - sequence.fwhm_px
    for (lo, hi), (lo_px, hi_px) in zip(config.bands_lambda_d, _band_px(config, lambda_d)):
        if hi_px > limit:
            msg = (
                f"band {lo:g}-{hi:g} lambda/D reaches {hi_px:.1f} px, beyond the last separation with full S/N apertures "
                f"({limit:.1f} px in {sequence.frame_size} px frames); lower its outer edge to at most {limit / lambda_d:.2f}"
            )
            raise ValueError(msg)
        if lo_px < 0.5 * sequence.fwhm_px:
            msg = f"band {lo:g}-{hi:g} lambda/D starts at {lo_px:.1f} px, inside the star's core; start at >= 0.5 FWHM"
            raise ValueError(msg)


def free_position(draw: Callable[[], tuple[float, float]], center_xy: tuple[float, float], sources: np.ndarray,
                  exclusion_px: float, what: str) -> tuple[float, float, float, float]:
    """``(sep, theta, x, y)`` of the first ``draw()`` (separation px, angle deg) farther than ``exclusion_px`` from every source.

    Raises
    ------
    ValueError
        ``"{what} is farther than ..."`` when 1000 draws all fall near a source.
    """
    cx, cy = center_xy
    for _ in range(1000):
        sep, theta = draw()
        x, y = cx + sep * math.cos(math.radians(theta)), cy + sep * math.sin(math.radians(theta))
        if not len(sources) or np.hypot(sources[:, 0] - x, sources[:, 1] - y).min() > exclusion_px:
            return sep, theta, x, y
    msg = f"{what} is farther than {exclusion_px:.1f} px from the known sources"
    raise ValueError(msg)


def model_folders(models: Mapping[str, str | os.PathLike[str]] | None) -> dict[str, str]:
    """``{name: folder}`` of trained models; each folder must hold the ``model.json`` of ``sodinn train``."""
    folders = {str(k): str(p) for k, p in (models or {}).items()}
    for name, path in folders.items():
        if not (Path(path) / "model.json").is_file():
            msg = f"model {name!r}: {path} is not a model folder written by 'sodinn train' (no model.json)"
            raise FileNotFoundError(msg)
    return folders


def roc_injections(sequence: ADISequence, config: RocConfig, flux_curve: tuple[np.ndarray, np.ndarray] | None = None) -> list[Injection]:
    """Draw every copy's companion (position in its band, flux), reproducibly from ``config.seed``.

    ``flux_curve`` is ``(radii_px, fluxes (n, 2))`` of the S/N bounds, interpolated in log flux;
    not needed when ``config.flux_range`` is given.
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
    from sodinn.flux import FluxRangeEstimator

    lambda_d = config.lambda_d_px or sequence.fwhm_px
    radii = np.unique(np.concatenate([np.linspace(lo, hi, 3) for lo, hi in _band_px(config, lambda_d)]))
    radii = np.clip(radii, sequence.fwhm_px, None)
    est = FluxRangeEstimator(config.snr_range, ncomp=config.oracle_ncomp, n_azimuths=config.oracle_azimuths, rng=config.seed)
    est.fit(sequence.cube, sequence.angles_deg, psf, sequence.fwhm_px, radii, exclude_xy=config.known_sources_xy,
            exclude_radius_px=config.mask_radius_fwhm * sequence.fwhm_px)
    return radii, np.asarray(est.flux_range_)


# ----------------------------------------------------------------------------- maps of one copy

_MODEL_CACHE: dict[str, Any] = {}


def _load_model(path: str):
    from sodinn.training import load_trained

    if path not in _MODEL_CACHE:
        _MODEL_CACHE[path] = load_trained(path)
    return _MODEL_CACHE[path]


def method_names(config: RocConfig, models: Mapping[str, str | os.PathLike[str]]) -> list[str]:
    """The maps of a run: the models by name, then the baselines (annular PCA once per rank)."""
    names = list(models)
    for b in config.baselines:
        names += [f"annular-{k}" for k in config.annular_ncomps] if b == "annular" else [b]
    return names


def copy_maps(sequence: ADISequence, config: RocConfig, models: Mapping[str, str], injection: Injection,
              psf: np.ndarray, radii_px: tuple[float, float], only: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Every method's detection map of one injected copy (probability maps and S/N maps, float32).

    ``only`` restricts the work to these methods (names of :func:`method_names`).
    """
    wanted = set(method_names(config, models) if only is None else only)
    from threadpoolctl import threadpool_limits

    from sodinn.baselines import median_adi, pca_adi, pca_annular
    from sodinn.injection import cube_inject_companions
    from sodinn.prediction import probability_map
    from sodinn.snr import snr_map

    cube = sequence.cube
    if injection.flux > 0:
        cube = cube_inject_companions(cube, psf, sequence.angles_deg, sep_px=injection.sep_px, theta_deg=injection.theta_deg,
                                      flux=injection.flux).astype(sequence.cube.dtype)
    copy = ADISequence(cube=cube, angles_deg=sequence.angles_deg, psf=sequence.psf, fwhm_px=sequence.fwhm_px,
                       pixel_scale_arcsec=sequence.pixel_scale_arcsec)
    maps: dict[str, np.ndarray] = {}
    for name, path in models.items():
        if name not in wanted:
            continue
        prob = probability_map(copy, _load_model(str(path)), radii_px=radii_px, progress=False)
        maps[name] = prob.probability.astype(np.float32)
    fwhm = sequence.fwhm_px
    with threadpool_limits(limits=1, user_api="blas"):
        for b in config.baselines:
            if b == "median" and "median" in wanted:
                maps["median"] = snr_map(median_adi(cube, sequence.angles_deg), fwhm).astype(np.float32)
            elif b == "pca" and "pca" in wanted:
                frame = pca_adi(cube, sequence.angles_deg, ncomp=config.pca_ncomp)
                maps["pca"] = snr_map(frame, fwhm).astype(np.float32)
            elif b == "annular":
                r_in = max(0.0, radii_px[0] - 2 * fwhm)
                for k in config.annular_ncomps:
                    if f"annular-{k}" not in wanted:
                        continue
                    frame = pca_annular(cube, sequence.angles_deg, fwhm, ncomp=k, r_in_px=r_in)
                    maps[f"annular-{k}"] = snr_map(frame, fwhm).astype(np.float32)
    return maps


def _copy_job(sequence: ADISequence, config: RocConfig, models: Mapping[str, str], injection: Injection, psf: np.ndarray,
              radii_px: tuple[float, float], only: Sequence[str]) -> dict[str, np.ndarray]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return copy_maps(sequence, config, models, injection, psf, radii_px, only)


def _method_tags(config: RocConfig, models: Mapping[str, str]) -> dict[str, str]:
    """Cache folder of each method: what its map depends on besides the data and the copy."""
    tags = {}
    for name, path in models.items():
        tags[name] = "model-" + hashlib.sha256((Path(path) / "model.json").read_bytes()).hexdigest()[:12]
    for name in method_names(config, {}):
        tags[name] = f"pca-{config.pca_ncomp or 'cevr0.9'}" if name == "pca" else name
    return tags


def _write_cache(path: Path, frame: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, frame)


def _read_cache(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        return np.load(path)
    except (OSError, ValueError, EOFError):
        logger.warning("ignoring an unreadable cache file %s (it will be remade)", path)
        return None


# ----------------------------------------------------------------------------- the harness


@dataclass
class RocResult:
    """What a run measured.

    Attributes
    ----------
    rows : list of dict
        One per (method, band, threshold): ``method, kind, band, band_lambda_d, threshold, n_copies,
        n_injections, tp, fp, fn, tpr, mean_fp, fdr, f1``.
    injections : list of Injection
    summary : str
        TPR of each method at 0.1, 0.5 and 1 mean false positive per frame, and the model/PCA ratios.
    output_dir : Path, optional
    """

    rows: list[dict[str, Any]]
    injections: list[Injection]
    summary: str = ""
    output_dir: Path | None = None
    calibrations: dict[str, Any] = field(default_factory=dict)

    def table(self):
        """The rows as an astropy Table."""
        from astropy.table import Table

        return Table(rows=self.rows)


def _cache_key(sequence: ADISequence, injections: Sequence[Injection]) -> str:
    """What every map of a run depends on: the data, the PSF and the injected companions."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(sequence.cube).tobytes())
    h.update(np.ascontiguousarray(sequence.angles_deg).tobytes())
    h.update(np.ascontiguousarray(sequence.psf).tobytes())
    h.update(repr(sequence.fwhm_px).encode())
    h.update(json.dumps([asdict(i) for i in injections]).encode())
    return h.hexdigest()[:16]


def run_roc(
    sequence: ADISequence,
    config: RocConfig | None = None,
    models: Mapping[str, str | os.PathLike[str]] | None = None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    n_jobs: int | None = None,
    scheduler: Any = None,
    resume: bool = True,
    progress: bool = True,
) -> RocResult:
    """Run the ROC harness end to end.

    Parameters
    ----------
    sequence : ADISequence
    config : RocConfig
    models : mapping of name -> model folder
        Trained models (``sodinn train``) to evaluate beside the baselines.
    output_dir : path, optional
        Writes ``roc.csv``, ``roc.png``, ``summary.txt``, ``injections.ecsv``, ``config.toml`` and the
        per-copy cache there. Without it nothing is cached.
    n_jobs : int, optional
        Worker processes (default: all cores; 1 runs in this process).
    scheduler : None, str or dask.distributed.Client
        Where the copies run (see :mod:`sodinn.engine`): the local pool by default, or a Dask cluster
        (``"tcp://host:port"``). The maps come back to this process, which caches them.
    resume : bool
        Reuse the cached maps of finished copies.

    Returns
    -------
    RocResult
    """
    from sodinn.config import SampleConfig
    from sodinn.engine import check_scheduler
    from sodinn.samples import sample_psf

    config = config or RocConfig()
    check_scheduler(scheduler)
    for name in models or {}:
        if name in BASELINES or str(name).startswith("annular-"):
            msg = f"model name {name!r} clashes with a baseline; choose another name"
            raise ValueError(msg)
    model_paths = model_folders(models)
    for path in model_paths.values():
        _load_model(path).check_compatible(sequence.fwhm_px)
    if not model_paths and not config.baselines:
        msg = "nothing to evaluate: give at least one model or one baseline"
        raise ValueError(msg)
    lambda_d = config.lambda_d_px or sequence.fwhm_px
    _check_bands(sequence, config, lambda_d)
    psf = sample_psf(sequence, SampleConfig())
    curve = None if config.flux_range is not None else _flux_curve(sequence, config, psf)
    injections = roc_injections(sequence, config, curve)
    names = method_names(config, model_paths)
    bands_px = _band_px(config, lambda_d)

    out = Path(output_dir) if output_dir is not None else None
    cache_dir = out / "cache" / _cache_key(sequence, injections) if out is not None else None
    tags = _method_tags(config, model_paths)

    def cache_file(i: int, name: str) -> Path | None:
        inj = injections[i]
        return cache_dir / tags[name] / f"band{inj.band}_copy{inj.copy:04d}.npy" if cache_dir is not None else None

    maps: dict[int, dict[str, np.ndarray]] = {i: {} for i in range(len(injections))}
    missing: dict[int, list[str]] = {}
    for i in range(len(injections)):
        for name in names:
            where = cache_file(i, name)
            frame = _read_cache(where) if (where is not None and resume) else None
            if frame is not None:
                maps[i][name] = frame
            else:
                missing.setdefault(i, []).append(name)
    reused = sum(len(m) for m in maps.values())
    if reused:
        logger.info("ROC: %d of %d maps reused from the cache", reused, len(injections) * len(names))
    todo = sorted(missing)

    def finished(j: int, result: dict[str, np.ndarray]) -> None:
        i = todo[j]
        maps[i].update(result)
        for name, frame in result.items():
            where = cache_file(i, name)
            if where is not None:
                _write_cache(where, frame)

    if todo:
        from sodinn.engine import map_jobs

        jobs = [(sequence, config, model_paths, injections[i], psf, bands_px[injections[i].band], missing[i]) for i in todo]
        map_jobs(_copy_job, jobs, scheduler=scheduler, n_workers=n_jobs, progress=progress, desc="ROC copies", on_result=finished)

    calibrations = {}
    if config.calibrate:
        from sodinn.calibration import calibrate

        for name, path in model_paths.items():
            logger.info("calibrating %s on the null draws of the data", name)
            calibrations[name] = calibrate(sequence, _load_model(path), n_null=config.calibration_nulls, seed=config.seed)
    rows = score_copies(sequence, config, names, list(model_paths), injections, maps, bands_px, calibrations)
    scored = [m for name in model_paths for m in (name, f"{name}-cal") if m == name or name in calibrations]
    result = RocResult(rows=rows, injections=injections, summary=summarize(rows, scored), output_dir=out,
                       calibrations=calibrations)
    if out is not None:
        write_outputs(result, config, out)
        _write_provenance(out / "provenance.json", sequence, config, model_paths, cache_dir)
    return result


def _write_provenance(path: Path, sequence: ADISequence, config: RocConfig, models: Mapping[str, str], cache_dir: Path | None) -> None:
    import datetime

    from sodinn import __version__

    record = {
        "sodinn_version": __version__,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data": {k: v for k, v in sequence.provenance.items() if isinstance(v, (str, int, float))},
        "fwhm_px": sequence.fwhm_px,
        "models": {name: {"path": p, "model_json_sha256": hashlib.sha256((Path(p) / "model.json").read_bytes()).hexdigest()}
                   for name, p in models.items()},
        "roc_config": config.to_dict(),
        "cache": str(cache_dir) if cache_dir is not None else None,
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str))


def score_copies(sequence: ADISequence, config: RocConfig, names: Sequence[str], model_names: Sequence[str],
                 injections: Sequence[Injection], maps: Mapping[int, Mapping[str, np.ndarray]],
                 bands_px: Sequence[tuple[float, float]], calibrations: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Score every copy's maps at every threshold; aggregate per method, band and threshold.

    Calibrated methods (``NAME-cal``, from ``calibrations``) are thresholded at ``fp_targets`` expected false
    positives per frame; their rows also carry ``expected_fp``, the share of the target that falls in the band.
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
        derived, band_area = {}, {}
        for name, cal in calibrations.items():
            derived[name] = {i: cal.score_map(maps[i][name]) for i in members}
            band_area[name] = int((region & (rr >= cal.edges_px[0]) & (rr < cal.edges_px[-1])).sum())
        for method, kind, thresholds in methods:
            for t in thresholds:
                tp = true_blobs = 0
                fp = 0.0
                for i in members:
                    inj = injections[i]
                    xy = [(inj.x, inj.y)] if inj.flux > 0 else []
                    if kind == "calibrated":
                        frame, level = derived[method[:-4]][i], -math.log10(t)
                    else:
                        frame, level = maps[i][method], t
                    s = score_blobs(frame, level, xy, sequence.fwhm_px, npix=config.npix,
                                    overlap_threshold=config.overlap_threshold, max_blob_fact=config.max_blob_fact,
                                    region=region, known_sources_xy=config.known_sources_xy)
                    tp += int(s.detected.sum())
                    true_blobs += s.true_blobs
                    fp += s.false_positives
                n = len(members)
                fn = n_inj - tp
                extra = {}
                if kind == "calibrated":
                    extra["expected_fp"] = t * band_area[method[:-4]] / calibrations[method[:-4]].area_px
                rows.append({
                    "method": method, "kind": kind, "band": b,
                    "band_lambda_d": "{:g}-{:g}".format(*config.bands_lambda_d[b]), "threshold": float(t),
                    "n_copies": n, "n_injections": int(n_inj), "tp": int(tp), "fp": float(fp), "fn": int(fn),
                    "tpr": tp / n_inj if n_inj else float("nan"), "mean_fp": fp / n if n else float("nan"),
                    "fdr": fp / (true_blobs + fp) if (true_blobs + fp) > 0 else float("nan"),
                    "f1": 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else float("nan"),
                    "expected_fp": float("nan"), **extra,
                })
    return rows


def tpr_at(rows: Sequence[Mapping[str, Any]], method: str, band: int, max_fp: float) -> float:
    """Best TPR of ``method`` in ``band`` among thresholds with at most ``max_fp`` mean false positives per frame."""
    ok = [r["tpr"] for r in rows if r["method"] == method and r["band"] == band and r["mean_fp"] <= max_fp]
    ok = [t for t in ok if not math.isnan(t)]
    return max(ok) if ok else 0.0


def summarize(rows: Sequence[Mapping[str, Any]], model_names: Sequence[str], fp_levels: Sequence[float] = (0.1, 0.5, 1.0)) -> str:
    """A text table: TPR of each method at each false-positive level, per band, and model/best-PCA ratios."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    bands = sorted({(r["band"], r["band_lambda_d"]) for r in rows})
    pcas = [m for m in methods if m == "pca" or m.startswith("annular-")]
    annulars = [m for m in methods if m.startswith("annular-")]
    lines = ["TPR at <= N mean false positives per frame (best threshold); per separation band", ""]
    width = max(len(m) for m in methods + [f"{n} / best annular PCA" for n in model_names] + ["best annular PCA"]) + 2
    header = "band (l/D)".ljust(12) + "method".ljust(width) + "".join(f"FP<={f:g}".rjust(10) for f in fp_levels)
    lines.append(header)
    lines.append("-" * len(header))
    for b, label in bands:
        for m in methods:
            lines.append(f"{label:<12}{m:<{width}}" + "".join(f"{tpr_at(rows, m, b, f):10.2f}" for f in fp_levels))
        if annulars:
            best = [max(tpr_at(rows, m, b, f) for m in annulars) for f in fp_levels]
            lines.append(f"{label:<12}{'best annular PCA':<{width}}" + "".join(f"{x:10.2f}" for x in best))
        for model in model_names:
            for ref_name, group in (("best annular PCA", annulars), ("best PCA", pcas)):
                if not group:
                    continue
                ratios = []
                for f in fp_levels:
                    ref = max(tpr_at(rows, m, b, f) for m in group)
                    mine = tpr_at(rows, model, b, f)
                    ratios.append(mine / ref if ref > 0 else (float("inf") if mine > 0 else float("nan")))
                lines.append(f"{label:<12}{(model + ' / ' + ref_name):<{width}}" + "".join(f"{x:9.2f}x" for x in ratios))
        lines.append("")
    cal_rows = [r for r in rows if r.get("kind") == "calibrated"]
    if cal_rows:
        lines.append("Calibration check: false positives per frame in the band, expected from the null draws vs counted")
        for b, label in bands:
            for m in dict.fromkeys(r["method"] for r in cal_rows):
                sel = sorted((r for r in cal_rows if r["method"] == m and r["band"] == b), key=lambda r: r["threshold"])
                pairs = ", ".join(f"{r['expected_fp']:.2g}->{r['mean_fp']:.2g}" for r in sel)
                lines.append(f"{label:<12}{m:<{width}}{pairs}")
        lines.append("(target F per frame over the whole field; the band holds its area share of F)")
    return "\n".join(lines)


def write_outputs(result: RocResult, config: RocConfig, out: Path) -> None:
    """roc.csv, injections.ecsv, summary.txt, roc.png and config.toml in ``out`` (each written atomically)."""
    from astropy.table import Table

    from sodinn.config import dump_toml

    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "roc.csv") as tmp:
        result.table().write(tmp, format="ascii.csv", overwrite=True)
    inj = Table(rows=[asdict(i) for i in result.injections]) if result.injections else Table()
    with atomic_path(out / "injections.ecsv") as tmp:
        inj.write(tmp, format="ascii.ecsv", overwrite=True)
    with atomic_path(out / "summary.txt") as tmp:
        Path(tmp).write_text(result.summary + "\n")
    dump_toml(out / "config.toml", {"roc": config.to_dict()})
    import matplotlib.pyplot as plt

    from sodinn.plotting import plot_roc

    axes = plot_roc(result.rows)
    fig = axes[0].get_figure(root=True)
    assert fig is not None
    with atomic_path(out / "roc.png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
