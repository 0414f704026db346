"""Injected copies: the experiment under both the ROC curves and the detection limits.

A copy is the cube with one fake companion injected (an :class:`Injection`: separation, angle, flux;
flux 0 leaves the cube as it is). Every method reduces the same copies: each trained model gives a
probability map (:func:`sodinn.detect.probability.probability_map`, restricted to the annuli that
overlap the copy's ring), each baseline of the registry (:data:`sodinn.adi.baselines.BASELINES`,
named with its rank: ``"annular-10"``) a final frame and its S/N map. :func:`run_copies` runs the
copies as engine jobs (local cores or a Dask cluster) and caches every finished map on disk, one
file per copy and method (:class:`MapCache`), so that an interrupted run resumes, a rerun with other
thresholds only rescores, and a run that adds a model reuses the baselines' maps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sodinn import _validation as v
from sodinn._atomic import atomic_path, check_writable_output
from sodinn.adi.baselines import BASELINES, annular_ncomp_limit, method_name, parse_method
from sodinn.adi.injection import cube_inject_companions
from sodinn.adi.sequence import ADISequence
from sodinn.adi.snr import snr_map
from sodinn.detect.probability import probability_map
from sodinn.exceptions import RotationWarning, SettingError
from sodinn.learn.artifact import TrainedModel, check_model_data, load_trained, metadata_digest, model_folder, read_metadata

__all__ = [
    "Injection",
    "MapCache",
    "cache_key",
    "check_method_ranks",
    "check_methods",
    "copy_maps",
    "free_position",
    "load_model",
    "method_names",
    "method_tags",
    "run_copies",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Injection:
    """One injected copy: its group (a band, or a separation), the companion's position and flux.

    Attributes
    ----------
    band : int
        Separation band (ROC) or separation (limits) of the copy.
    copy : int
        Number of the copy within its band.
    sep_px : float
        Separation of the companion, px.
    theta_deg : float
        Its angle, degrees counter-clockwise from +x (sky frame).
    flux : float
        Its flux (the normalised PSF's units); 0: no companion.
    x, y : float
        Its position in the sky frame, px.
    """

    band: int
    copy: int
    sep_px: float
    theta_deg: float
    flux: float
    x: float
    y: float


def free_position(draw: Callable[[], tuple[float, float]], center_xy: tuple[float, float], sources: np.ndarray,
                  exclusion_px: float, what: str) -> tuple[float, float, float, float]:
    """Draw positions until one lies farther than ``exclusion_px`` from every known source.

    Parameters
    ----------
    draw : callable
        ``draw() -> (sep_px, theta_deg)``, a random position.
    center_xy : (float, float)
        The star, px.
    sources : ndarray, shape (n, 2)
        Known sources (x, y), px.
    exclusion_px : float
        Smallest distance to a known source, px.
    what : str
        What is drawn, for the message.

    Returns
    -------
    sep_px : float
        Separation of the first free position, px.
    theta_deg : float
        Its angle, degrees counter-clockwise from +x.
    x : float
        Its x in the frame, px.
    y : float
        Its y in the frame, px.

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


def check_methods(models: Mapping[str, str | os.PathLike[str]] | None, baselines: Sequence[str]) -> dict[str, str]:
    """Check the methods of an experiment before any work; return ``{name: folder}`` of the models.

    Parameters
    ----------
    models : mapping of name -> model folder, optional
        Trained models (``sodinn train``).
    baselines : sequence of str
        Baseline methods (registry names with their rank, e.g. ``"annular-10"``).

    Returns
    -------
    dict of str -> str
        The model folders by model name.

    Raises
    ------
    ValueError
        For an unknown baseline, or a model named like a baseline.
    FileNotFoundError
        For a model folder without ``model.json``.
    """
    for method in baselines:
        parse_method(method)
    folders = {str(k): str(p) for k, p in (models or {}).items()}
    for name, path in folders.items():
        stem, _, rank = name.rpartition("-")
        if name in baselines or name in BASELINES or (rank.isdigit() and stem in BASELINES):
            msg = f"model name {name!r} clashes with a baseline; choose another name"
            raise ValueError(msg)
        model_folder(path, name=name)
    return folders


def check_method_ranks(sequence: ADISequence, baselines: Sequence[str], *, r_in_px: Sequence[float] = (0.0,),
                       oracle_ncomp: int | None = None, setting: str = "baselines") -> None:
    """Check, before any work, that every ranked baseline (and the S/N oracle) asks for fewer components than the data allow.

    Parameters
    ----------
    sequence : ADISequence
        The data: cube ``(n_frames, N, N)``, angles in degrees, FWHM in px.
    baselines : sequence of str
        Baseline methods (registry names with their rank, e.g. ``"annular-10"``).
    r_in_px : sequence of float
        The inner radii, px, at which the radial baselines will be run (each is checked).
    oracle_ncomp : int, optional
        Components of the S/N oracle's annular PCA-ADI (:class:`sodinn.mlar.flux.FluxRangeEstimator`),
        when it runs.
    setting : str
        How messages name the list of methods (e.g. ``"[roc] baselines"`` on the command line).

    Raises
    ------
    ValueError
        For a method whose rank is at or above what the data allow (the message gives the largest
        usable rank and what sets it), or an ``oracle_ncomp`` above it.
    """
    for method in baselines:
        baseline, ncomp = parse_method(method)
        if ncomp is None:
            continue
        for r_in in sorted(set(float(r) for r in r_in_px)):
            limit = baseline.ncomp_limit(sequence.cube, sequence.angles_deg, sequence.fwhm_px, r_in_px=r_in)
            if limit is not None and ncomp > limit[0]:
                usable = f"use at most {method_name(baseline.name, limit[0])!r}" if limit[0] >= 1 else "drop it"
                msg = f"{setting}: {method!r} asks for {ncomp} components but the data allow {limit[0]} ({limit[1]}); {usable}"
                raise ValueError(msg)
    if oracle_ncomp is not None:
        limit, why = annular_ncomp_limit(sequence.angles_deg, sequence.fwhm_px, sequence.frame_size)
        if oracle_ncomp > limit:
            usable = "set {oracle_ncomp}" if limit >= 1 else "no {oracle_ncomp} is usable"
            raise SettingError(f"{oracle_ncomp} components are more than the S/N oracle's annular PCA-ADI can use "
                               f"({why}); " + usable, oracle_ncomp=limit if limit >= 1 else None)


def method_names(models: Mapping[str, Any], baselines: Sequence[str]) -> list[str]:
    """Return the names of the maps of each copy: the models by name, then the baselines.

    Parameters
    ----------
    models : mapping of name -> model folder
        Trained models (only the names are used).
    baselines : sequence of str
        Baseline methods (``"annular-10"``, ...).

    Returns
    -------
    list of str
        The method names, models first.

    Examples
    --------
    >>> method_names({"convlstm": "models/a"}, ["annular-10", "median"])
    ['convlstm', 'annular-10', 'median']
    """
    return [*models, *baselines]


def method_tags(models: Mapping[str, str], baselines: Sequence[str], *,
                known_sources_xy: Sequence[tuple[float, float]] = ()) -> dict[str, str]:
    """Return the cache folder of each method: what its map depends on besides the data and the copy.

    A model's tag is the digest of its ``model.json`` (and, for a model that takes S/N curves, of the
    known sources left out of their noise apertures, when there are some); a baseline's its name and
    rank (``"pca-cevr0.9"`` for full-frame PCA at its default).

    Parameters
    ----------
    models : mapping of name -> model folder
        Trained models.
    baselines : sequence of str
        Baseline methods (``"annular-10"``, ...).
    known_sources_xy : sequence of (x, y)
        Known sources given to the models (:func:`copy_maps`).

    Returns
    -------
    dict of str -> str
        The tag of each method.

    Raises
    ------
    ValueError
        For an unknown baseline.
    FileNotFoundError
        For a model folder without ``model.json``.
    """
    tags = {name: "model-logit-" + metadata_digest(path)[:12] for name, path in models.items()}
    sources = [[float(c) for c in xy] for xy in known_sources_xy]
    if sources:
        known = hashlib.sha256(json.dumps(sources).encode()).hexdigest()[:8]
        for name, path in models.items():
            if read_metadata(path).get("snr_curves"):
                tags[name] += "-known" + known
    for method in baselines:
        baseline, ncomp = parse_method(method)
        tags[method] = baseline.tag(ncomp)
    return tags


_MODEL_CACHE: dict[str, TrainedModel] = {}


def load_model(path: str) -> TrainedModel:
    """Load the model of a folder once per process (every copy of a worker reuses it).

    Parameters
    ----------
    path : str
        Model folder (``sodinn train``).

    Returns
    -------
    TrainedModel
        The model, the same object on every call with the same ``path``.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`sodinn.learn.artifact.load_trained`.
    """
    if path not in _MODEL_CACHE:
        _MODEL_CACHE[path] = load_trained(path)
    return _MODEL_CACHE[path]


def copy_maps(sequence: ADISequence, injection: Injection, psf: np.ndarray, radii_px: tuple[float, float], *,
              models: Mapping[str, str], baselines: Sequence[str], only: Sequence[str] | None = None,
              known_sources_xy: Sequence[tuple[float, float]] = ()) -> dict[str, np.ndarray]:
    """Every method's detection map of one injected copy (models' logit maps and S/N maps, float32).

    Parameters
    ----------
    sequence : ADISequence
        The data (without the companion).
    injection : Injection
        The companion to inject (none when its flux is 0).
    psf : ndarray, shape (p, p)
        Normalised PSF of the injection; recentred if its centroid is off by more than 0.03 px, refused
        beyond the limit of :mod:`sodinn.adi.psf`.
    radii_px : (float, float)
        The separations that will be scored: models evaluate only the annuli that overlap them, annular
        baselines start 2 FWHM inside.
    models : mapping of name -> model folder
        Trained models; each gives a logit map (:attr:`~sodinn.detect.probability.ProbabilityMap.logit`:
        threshold it at ``logit(p)`` for a probability ``p``).
    baselines : sequence of str
        Baseline methods (``"annular-10"``, ...); each gives an S/N map.
    only : sequence of str, optional
        Compute only these methods (names of :func:`method_names`).
    known_sources_xy : sequence of (x, y)
        Real sources of the data (sky frame, px), passed to
        :func:`~sodinn.detect.probability.probability_map`: left out of the noise apertures of the S/N
        curves of the models that take them (the copy, made in memory, is not recognised as a model's
        training data, so they are not found otherwise).

    Returns
    -------
    dict of str -> ndarray, shape (N, N), float32
        The map of each computed method, by name.
    """
    from threadpoolctl import threadpool_limits

    wanted = set(method_names(models, baselines) if only is None else only)
    psf = v.check_psf(psf, frame_size=sequence.frame_size)
    cube = sequence.cube
    if injection.flux > 0:
        cube = cube_inject_companions(cube, psf, sequence.angles_deg, sep_px=injection.sep_px, theta_deg=injection.theta_deg,
                                      flux=injection.flux).astype(sequence.cube.dtype)
    with warnings.catch_warnings():  # the sequence itself warned already, if it rotates too little
        warnings.simplefilter("ignore", RotationWarning)
        copy = ADISequence(cube=cube, angles_deg=sequence.angles_deg, psf=sequence.psf, fwhm_px=sequence.fwhm_px,
                           pixel_scale_arcsec=sequence.pixel_scale_arcsec)
    maps: dict[str, np.ndarray] = {}
    for name, path in models.items():
        if name in wanted:
            prob = probability_map(copy, load_model(str(path)), radii_px=radii_px, progress=False,
                                   known_sources_xy=tuple(known_sources_xy))
            maps[name] = prob.logit.astype(np.float32)  # the logit: a probability in float32 saturates at 1
    fwhm = sequence.fwhm_px
    r_in = max(0.0, radii_px[0] - 2 * fwhm)
    with threadpool_limits(limits=1, user_api="blas"):
        for method in baselines:
            if method in wanted:
                baseline, ncomp = parse_method(method)
                frame = baseline.reduce(cube, sequence.angles_deg, fwhm, ncomp=ncomp, r_in_px=r_in)
                maps[method] = snr_map(frame, fwhm).astype(np.float32)
    return maps


def _copy_job(sequence: ADISequence, injection: Injection, psf: np.ndarray, radii_px: tuple[float, float],
              models: Mapping[str, str], baselines: Sequence[str], only: Sequence[str],
              known_sources_xy: Sequence[tuple[float, float]] = ()) -> dict[str, np.ndarray]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return copy_maps(sequence, injection, psf, radii_px, models=models, baselines=baselines, only=only,
                     known_sources_xy=known_sources_xy)


def cache_key(sequence: ADISequence, injections: Sequence[Injection]) -> str:
    """Return the key of a run: what every map depends on besides its method.

    That is the data (cube, angles, PSF, FWHM) and the injected companions.

    Parameters
    ----------
    sequence : ADISequence
        The data.
    injections : sequence of Injection
        The copies of the run.

    Returns
    -------
    str
        The first 16 hexadecimal digits of a SHA-256 digest.
    """
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(sequence.cube).tobytes())
    h.update(np.ascontiguousarray(sequence.angles_deg).tobytes())
    h.update(np.ascontiguousarray(sequence.psf).tobytes())
    h.update(repr(sequence.fwhm_px).encode())
    h.update(json.dumps([asdict(i) for i in injections]).encode())
    return h.hexdigest()[:16]


class MapCache:
    """The maps of finished copies on disk: ``folder/<method tag>/band<b>_copy<c>.npy``, each written atomically.

    Parameters
    ----------
    folder : path-like or None
        None caches nothing.
    tags : mapping of method name -> tag
        From :func:`method_tags`.
    """

    def __init__(self, folder: str | os.PathLike[str] | None, tags: Mapping[str, str]) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.tags = dict(tags)

    def path(self, injection: Injection, name: str) -> Path | None:
        """Return where the map of method ``name`` on this copy lives.

        Parameters
        ----------
        injection : Injection
            The copy.
        name : str
            The method (a key of ``tags``).

        Returns
        -------
        Path or None
            The ``.npy`` file; None without a folder.
        """
        if self.folder is None:
            return None
        return self.folder / self.tags[name] / f"band{injection.band}_copy{injection.copy:04d}.npy"

    def read(self, injection: Injection, name: str) -> np.ndarray | None:
        """Return the cached map of method ``name`` on this copy.

        Parameters
        ----------
        injection : Injection
            The copy.
        name : str
            The method (a key of ``tags``).

        Returns
        -------
        ndarray, shape (N, N), or None
            The map; None when it is not cached or unreadable (it will be remade).
        """
        path = self.path(injection, name)
        if path is None or not path.is_file():
            return None
        try:
            return np.load(path)
        except (OSError, ValueError, EOFError):
            logger.warning("ignoring an unreadable cache file %s (it will be remade)", path)
            return None

    def write(self, injection: Injection, name: str, frame: np.ndarray) -> None:
        """Keep a finished map, written atomically (nothing without a folder).

        Parameters
        ----------
        injection : Injection
            The copy.
        name : str
            The method (a key of ``tags``).
        frame : ndarray, shape (N, N)
            The map.
        """
        path = self.path(injection, name)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, frame)


def run_copies(
    sequence: ADISequence,
    injections: Sequence[Injection],
    psf: np.ndarray,
    radii_px: Sequence[tuple[float, float]],
    *,
    models: Mapping[str, str],
    baselines: Sequence[str],
    cache_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
    n_jobs: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    desc: str = "copies",
    known_sources_xy: Sequence[tuple[float, float]] = (),
) -> list[dict[str, np.ndarray]]:
    """Every method's map of every copy: from the cache where it holds them, else computed as engine jobs.

    Parameters
    ----------
    sequence : ADISequence
        The data (without the companions).
    injections : sequence of Injection
        One per copy.
    psf : ndarray, shape (p, p)
        Normalised PSF of the injections; recentred (once, with a :class:`~sodinn.exceptions.PSFWarning`)
        if its centroid is off by more than 0.03 px, refused beyond the limit of :mod:`sodinn.adi.psf`.
    radii_px : sequence of (float, float)
        Per injection, the separations that will be scored, px (see :func:`copy_maps`).
    models : mapping of name -> model folder
        Trained models; each gives a probability map.
    baselines : sequence of str
        Baseline methods (``"annular-10"``, ...); each gives an S/N map.
    cache_dir : path-like, optional
        Maps are cached in ``cache_dir/<cache_key>/``; without it nothing is cached.
    resume : bool
        Reuse cached maps (False recomputes them all, and caches the new ones).
    n_jobs : int, optional
        Worker processes (default: all cores; 1 runs in this process).
    scheduler : None, str or dask.distributed.Client
        Where the copies run (see :mod:`sodinn.engine`); the maps come back to this process, which caches them.
    progress : bool
        Show a progress bar over the copies.
    desc : str
        Label of the progress bar.
    known_sources_xy : sequence of (x, y)
        Real sources of the data (sky frame, px), for the models' S/N curves (see :func:`copy_maps`);
        they are part of the cache tag of the models that take S/N curves (:func:`method_tags`).

    Returns
    -------
    list of dict of str -> ndarray
        One dict of maps per injection, in order.

    Raises
    ------
    ValueError
        Before any work (and before Keras is loaded): a model that cannot be applied to the data
        (:func:`sodinn.learn.artifact.check_model_data`).
    FileNotFoundError
        For a model folder without ``model.json``.
    OSError
        If ``cache_dir`` cannot be written (a file, no permission), before any work.
    """
    from sodinn.engine import map_jobs

    psf = v.check_psf(psf, frame_size=sequence.frame_size)  # once, before the copies and their workers
    for name, path in models.items():
        check_model_data(read_metadata(path), sequence, name=name)
    if cache_dir is not None:
        check_writable_output(cache_dir, kind="folder", name="cache_dir")
    names = method_names(models, baselines)
    folder = Path(cache_dir) / cache_key(sequence, injections) if cache_dir is not None else None
    cache = MapCache(folder, method_tags(models, baselines, known_sources_xy=known_sources_xy))
    maps: list[dict[str, np.ndarray]] = [{} for _ in injections]
    missing: dict[int, list[str]] = {}
    for i, inj in enumerate(injections):
        for name in names:
            frame = cache.read(inj, name) if resume else None
            if frame is not None:
                maps[i][name] = frame
            else:
                missing.setdefault(i, []).append(name)
    reused = sum(len(m) for m in maps)
    if reused:
        logger.info("%s: %d of %d maps reused from the cache", desc, reused, len(injections) * len(names))
    todo = sorted(missing)

    def finished(j: int, result: dict[str, np.ndarray]) -> None:
        i = todo[j]
        maps[i].update(result)
        for name, frame in result.items():
            cache.write(injections[i], name, frame)

    if todo:
        sources = tuple(tuple(map(float, xy)) for xy in known_sources_xy)
        jobs = [(sequence, injections[i], psf, radii_px[i], dict(models), tuple(baselines), missing[i], sources) for i in todo]
        map_jobs(_copy_job, jobs, scheduler=scheduler, n_workers=n_jobs, progress=progress, desc=desc, on_result=finished)
    return maps
