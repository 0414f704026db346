"""Every settings dataclass of sodinn, and TOML configuration files.

One frozen dataclass per stage; defaults live here only, and every value is checked in
``__post_init__`` before any work (names that refer to a registry, a model or a baseline, are
checked by the registry's owner: :func:`sodinn.learn.models.check_model_name`,
:func:`sodinn.adi.baselines.parse_method`). Each configuration round-trips through a plain dict
(``to_dict`` / ``from_dict``, the tables of a TOML file) and is written into the artefacts it
produced.

======================  ===============  ==========================================================
dataclass               TOML table       stage
======================  ===============  ==========================================================
:class:`DataConfig`     ``[data]``       the input files (cube, angles, PSF) and their FWHM, scale
:class:`ReduceConfig`   ``[reduce]``     a classical reduction (``sodinn reduce``)
:class:`SampleConfig`   ``[samples]``    labeled MLAR samples (SPEC §2-3)
:class:`TrainConfig`    ``[train]``      training (SPEC §4)
:class:`PredictConfig`  ``[predict]``    probability maps and candidates; owns the default threshold
:class:`RocConfig`      ``[roc]``        the ROC harness (SPEC §5)
:class:`LimitConfig`    ``[limits]``     detection limits
:class:`EngineConfig`   ``[engine]``     where parallel jobs run
======================  ===============  ==========================================================

:class:`RocConfig` and :class:`LimitConfig` share their injection and scoring settings through
:class:`InjectionConfig`. TOML is read with the standard library's ``tomllib``; only the subset that
configurations need (tables of strings, numbers, booleans and lists of those) is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sodinn import _validation as v
from sodinn._atomic import atomic_path
from sodinn.exceptions import SettingError

__all__ = [
    "DataConfig",
    "EngineConfig",
    "InjectionConfig",
    "LimitConfig",
    "PRECISIONS",
    "PROBABILITY_THRESHOLD",
    "PredictConfig",
    "ReduceConfig",
    "RocConfig",
    "SampleConfig",
    "TrainConfig",
    "check_known_keys",
    "dump_toml",
    "field_names",
    "load_toml",
]


def field_names(cls: type) -> tuple[str, ...]:
    """Return the setting names of the configuration dataclass ``cls``, in definition order (its TOML keys).

    ``cls`` (the only argument) is a configuration dataclass of this module, or an instance of one.

    Returns
    -------
    tuple of str
        The field names.

    Raises
    ------
    TypeError
        If ``cls`` is not a dataclass.

    Examples
    --------
    >>> field_names(EngineConfig)
    ('scheduler', 'n_workers')
    """
    return tuple(f.name for f in dataclasses.fields(cls))


def check_known_keys(cls: type, values: Mapping[str, Any], what: str, *, extra: Iterable[str] = ()) -> None:
    """Refuse keys that are not settings of the configuration dataclass ``cls``, naming the known ones.

    ``cls`` (the first argument, a type) is a configuration dataclass of this module.

    Parameters
    ----------
    values : mapping
        The keys to check (e.g. a TOML table).
    what : str
        What the settings are called in the message ("sample", "ROC", ...).
    extra : iterable of str
        Further keys allowed beside the fields (e.g. ``output`` in a command's table).

    Raises
    ------
    ValueError
        Naming the unknown keys and listing the known ones.
    """
    names = set(field_names(cls)) | set(extra)
    unknown = sorted(set(values) - names)
    if unknown:
        msg = f"unknown {what} setting(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}"
        raise ValueError(msg)


_K_POLICIES = ("cevr", "fixed")
_FLUX_DISTRIBUTIONS = ("uniform", "log-uniform")
_LINALG_BACKENDS = ("numpy", "keras")
_CONVENTIONS = ("mawet", "vip")


@dataclass(frozen=True)
class SampleConfig:
    """Settings of labeled MLAR sample generation (SPEC §2-3). Defaults live here only.

    Attributes
    ----------
    patch_px : int
        Odd patch size P (>= 2 FWHM; the paper used 11 px at FWHM 4.8 px).
    n_ranks : int
        K, the number of PCA ranks per sample.
    k_policy : {"cevr", "fixed"}
        "cevr": per annulus, K ranks spread from 1 to the first k with CEVR >= ``cevr_threshold``;
        "fixed": ``k_list`` for every annulus.
    k_list : tuple of int, optional
        The ranks of the "fixed" policy (e.g. the paper's (1, 2, 3, 5, 10, 20, 50)).
    cevr_threshold : float
        The cumulative explained variance ratio, in (0, 1], that ends the ranks of the "cevr" policy.
    r_in_fwhm : float
        Inner radius of the first annulus, in FWHM (default 1).
    r_out_fwhm : float, optional
        Largest outer radius, in FWHM (default: as far as the widened SVD region fits in the frame).
    snr_range : (float, float)
        S/N (annular PCA-ADI, Mawet 2014) of the faintest and brightest injected companions.
    flux_distribution : {"uniform", "log-uniform"}
        How C+ fluxes are drawn between the annulus's flux bounds (those of ``snr_range``).
    samples_per_annulus : int, optional
        Samples of each class per annulus; default: one C- per usable annulus pixel and as many C+.
    augment : bool
        Reach ``samples_per_annulus`` beyond the available pixels with augmented C- samples
        (rotation, sub-pixel shift, mean of two), each from its own random stream.
    jitter_px : float
        C+ positions are drawn uniformly within +-jitter_px of a pixel centre.
    psf_size_px : int, optional
        Crop of the normalised PSF used for injection (default: 2 ceil(2 FWHM) + 1 px).
    oracle_ncomp : int
        Principal components of the annular PCA-ADI used by the S/N oracle.
    oracle_azimuths : int
        Injections per annulus and flux level in the S/N oracle.
    known_sources_xy : tuple of (x, y)
        Real sources (sky frame, e.g. beta Pic b) kept out of C- patches and injection sites, and out of
        the S/N oracle's and the S/N curves' noise apertures.
    mask_radius_fwhm : float
        Radius around known sources that is excluded, in FWHM.
    seed : int
        Fixes every random choice.
    memory_budget_gib : float
        Working memory that generating one annulus's samples may use, in GiB (default 4), per worker
        process: batch and chunk sizes follow from it, a budget too small for the data is an error
        before any work. It never changes the samples, so it is left out of :meth:`digest`.
    linalg_backend : {"numpy", "keras"}
        Where the C+ samples' Gram-matrix eigen-decompositions run: ``"numpy"`` (default: LAPACK
        inside the compiled loop, the fastest on a CPU) or ``"keras"`` (stacked per batch and
        decomposed with ``keras.ops.eigh`` on the active Keras backend's device, e.g. a GPU; see
        :mod:`sodinn.mlar.linalg`). Both give the same samples up to rounding (agreement to
        1e-5 relative is tested), so it is left out of :meth:`digest`, like ``memory_budget_gib``.

    Raises
    ------
    TypeError, ValueError
        For a setting of the wrong kind or out of range, naming it (e.g. an even ``patch_px``).
    """

    patch_px: int = 11
    n_ranks: int = 20
    k_policy: str = "cevr"
    k_list: tuple[int, ...] | None = None
    cevr_threshold: float = 0.99
    r_in_fwhm: float = 1.0
    r_out_fwhm: float | None = None
    snr_range: tuple[float, float] = (1.0, 3.0)
    flux_distribution: str = "uniform"
    samples_per_annulus: int | None = None
    augment: bool = False
    jitter_px: float = 0.5
    psf_size_px: int | None = None
    oracle_ncomp: int = 10
    oracle_azimuths: int = 3
    known_sources_xy: tuple[tuple[float, float], ...] = ()
    mask_radius_fwhm: float = 2.0
    seed: int = 0
    memory_budget_gib: float = 4.0
    linalg_backend: str = "numpy"

    def __post_init__(self) -> None:
        """Check and normalise every setting; raise ``TypeError`` or ``ValueError`` naming a bad one."""
        p = v.check_int(self.patch_px, name="patch_px", minimum=3)
        if p % 2 == 0:
            msg = f"patch_px must be odd so that a patch has a central pixel; got {p}"
            raise ValueError(msg)
        v.check_int(self.n_ranks, name="n_ranks", minimum=1)
        v.check_choice(self.k_policy, _K_POLICIES, name="k_policy")
        if self.k_policy == "fixed":
            if not self.k_list:
                msg = "k_policy='fixed' needs k_list, e.g. k_list=(1, 2, 3, 5, 10, 20)"
                raise ValueError(msg)
            ks = [v.check_int(k, name="k_list", minimum=1) for k in self.k_list]
            if sorted(set(ks)) != ks:
                msg = f"k_list must be strictly increasing; got {list(self.k_list)}"
                raise ValueError(msg)
            if len(ks) != self.n_ranks:
                msg = f"k_list has {len(ks)} ranks but n_ranks={self.n_ranks}; make them agree"
                raise ValueError(msg)
            object.__setattr__(self, "k_list", tuple(ks))
        thr = v.check_real(self.cevr_threshold, name="cevr_threshold")
        if not 0 < thr <= 1:
            msg = f"cevr_threshold must be in (0, 1]; got {thr}"
            raise ValueError(msg)
        v.check_positive(self.r_in_fwhm, name="r_in_fwhm")
        if self.r_out_fwhm is not None and v.check_positive(self.r_out_fwhm, name="r_out_fwhm") <= self.r_in_fwhm:
            msg = f"r_out_fwhm ({self.r_out_fwhm}) must be larger than r_in_fwhm ({self.r_in_fwhm})"
            raise ValueError(msg)
        lo, hi = (v.check_positive(x, name="snr_range") for x in self.snr_range)
        if not lo < hi:
            raise SettingError("{snr_range} must be (low, high) with low < high; got " + f"{tuple(self.snr_range)} (reversed?)",
                               snr_range=None)
        object.__setattr__(self, "snr_range", (lo, hi))
        v.check_choice(self.flux_distribution, _FLUX_DISTRIBUTIONS, name="flux_distribution")
        if self.samples_per_annulus is not None:
            v.check_int(self.samples_per_annulus, name="samples_per_annulus", minimum=1)
        j = v.check_real(self.jitter_px, name="jitter_px")
        if not 0 <= j <= 0.5:
            msg = f"jitter_px must be in [0, 0.5] so that the companion stays on the patch's central pixel; got {j}"
            raise ValueError(msg)
        if self.psf_size_px is not None:
            v.check_int(self.psf_size_px, name="psf_size_px", minimum=3)
        v.check_int(self.oracle_ncomp, name="oracle_ncomp", minimum=1)
        v.check_int(self.oracle_azimuths, name="oracle_azimuths", minimum=1)
        sources = tuple(
            tuple(float(c) for c in v.check_positions_xy(xy, name="known_sources_xy")[0]) for xy in self.known_sources_xy
        )
        object.__setattr__(self, "known_sources_xy", sources)
        v.check_positive(self.mask_radius_fwhm, name="mask_radius_fwhm")
        v.check_int(self.seed, name="seed", minimum=0)
        budget = v.check_real(self.memory_budget_gib, name="memory_budget_gib")
        if not 0 < budget < 2**20:
            msg = f"memory_budget_gib must be a positive number of GiB, e.g. 4.0; got {self.memory_budget_gib!r}"
            raise ValueError(msg)
        object.__setattr__(self, "memory_budget_gib", budget)
        v.check_choice(self.linalg_backend, _LINALG_BACKENDS, name="linalg_backend")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain JSON/TOML-able dict.

        Returns
        -------
        dict
            ``{field: value}`` for every field; tuples become lists.
        """
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SampleConfig:
        """Build from a dict (e.g. a TOML ``[samples]`` table); unknown keys are an error.

        Parameters
        ----------
        values : mapping
            ``{field: value}``; lists are turned back into tuples, missing fields take their default.

        Returns
        -------
        SampleConfig
            The checked settings.

        Raises
        ------
        ValueError
            For an unknown key (naming the known ones) or a bad value.
        TypeError
            For a value of the wrong kind.
        """
        check_known_keys(cls, values, "sample")
        kwargs = dict(values)
        for key in ("k_list", "snr_range"):
            if kwargs.get(key) is not None:
                kwargs[key] = tuple(kwargs[key])
        if "known_sources_xy" in kwargs:
            kwargs["known_sources_xy"] = tuple(tuple(xy) for xy in kwargs["known_sources_xy"])
        return cls(**kwargs)

    def digest(self) -> str:
        """Return the SHA-256 of the canonical JSON form: it identifies the configuration in files and resumes.

        ``memory_budget_gib`` is left out: it changes how the work is cut, never the samples; so is
        ``linalg_backend``: it changes where the eigen-decompositions run, the samples only by rounding.

        Returns
        -------
        str
            64 hexadecimal digits.
        """
        values = self.to_dict()
        values.pop("memory_budget_gib")
        values.pop("linalg_backend")
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()



def load_toml(path: str | os.PathLike[str], *, sections: Iterable[str] | None = None) -> dict[str, Any]:
    """Read a TOML configuration; with ``sections``, refuse unknown top-level tables.

    Parameters
    ----------
    path : path-like
        The TOML file.
    sections : iterable of str, optional
        The top-level tables allowed (default: any).

    Returns
    -------
    dict
        ``{table: {key: value}}`` as parsed by ``tomllib`` (relative paths are left as written).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not valid TOML or holds unknown sections.
    """
    p = Path(path)
    if not p.is_file():
        msg = f"configuration file not found: {p}"
        raise FileNotFoundError(msg)
    try:
        cfg = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        msg = f"{p} is not valid TOML: {err}"
        raise ValueError(msg) from err
    if sections is not None:
        allowed = set(sections)
        unknown = sorted(set(cfg) - allowed)
        if unknown:
            msg = f"{p}: unknown section(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed))}"
            raise ValueError(msg)
    return cfg


def dump_toml(path: str | os.PathLike[str], config: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write ``{section: {key: value}}`` as TOML, atomically.

    Parameters
    ----------
    path : path-like
        The file to write (its folder is created if needed).
    config : mapping of str -> mapping
        One table per section; values are strings, numbers, booleans or (nested) lists of those.
        Keys whose value is None are left out.

    Returns
    -------
    Path
        ``path``.
    """
    lines: list[str] = []
    for section, table in config.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            if value is None:
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    p = Path(path)
    with atomic_path(p) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
    return p


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'




class _Settings:
    """``to_dict`` / ``from_dict`` of the frozen configuration dataclasses (a plain, TOML-able dict)."""

    _WHAT = "configuration"

    def to_dict(self) -> dict[str, Any]:
        """Return every setting as a plain JSON/TOML-able dict.

        Returns
        -------
        dict
            ``{field: value}`` for every field; tuples become lists.
        """
        return json.loads(json.dumps(dataclasses.asdict(self)))  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Any:
        """Build from a dict (e.g. a TOML table); unknown keys are an error that names them.

        Parameters
        ----------
        values : mapping
            ``{field: value}``; missing fields take their default.

        Returns
        -------
        object
            An instance of the class it is called on, checked.

        Raises
        ------
        ValueError
            For an unknown key (naming the known ones) or a bad value.
        TypeError
            For a value of the wrong kind.
        """
        check_known_keys(cls, values, cls._WHAT)
        return cls(**dict(values))


#: The arithmetic a network may train and predict in (Keras dtype policies; :attr:`TrainConfig.precision`)
PRECISIONS = ("float32", "mixed_bfloat16")


@dataclass(frozen=True)
class TrainConfig(_Settings):
    """Settings of training (SPEC §4). Defaults live here only.

    Attributes
    ----------
    model : str
        A name of the model registry (:data:`sodinn.learn.models.MODEL_NAMES`: ``"sodinn"``,
        ``"sodinn-v2"``, ``"conv3d"``, ``"sodirf"``, ``"sodinn-snr"``), checked by
        :func:`sodinn.learn.models.check_model_name` before training starts.
    epochs : int
        At most this many epochs (early stopping on the validation loss keeps the best weights).
    batch_size : int
        Samples per gradient step.
    learning_rate : float
        Initial Adam learning rate, decaying as ``lr / (1 + decay * step)``.
    decay : float
        Inverse-time decay rate of the learning rate, per step (>= 0).
    patience : int
        Epochs without validation-loss improvement before stopping.
    precision : {"float32", "mixed_bfloat16"}
        Arithmetic of the network's convolutions (a Keras dtype policy): ``"float32"``, or
        ``"mixed_bfloat16"``, where the ConvLSTM (or Conv3D) layers convolve in bfloat16 while the
        weights, the recurrent gates and cell state, the dense head and the logits stay in float32
        (Micikevicius et al. 2018, ICLR; Kalamkar et al. 2019, arXiv:1905.12322). On CPUs with AMX-BF16
        or AVX512-BF16 instructions (Intel Sapphire Rapids and later, AMD Zen 4 and later) it trains
        and predicts faster (measured: README, *Performance*), as it should on GPUs with bfloat16
        units (not measured); on other CPUs bfloat16 is emulated and slower. Models record it;
        prediction runs a model as it was trained. The random forest (``"sodirf"``) has no precision
        and refuses ``"mixed_bfloat16"``.
    ema_momentum : float or None
        Keep an exponential moving average of the weights (Polyak averaging, Polyak & Juditsky
        1992) with this momentum per step, in [0, 1); the averaged weights are validated, kept by
        early stopping and saved. None trains without averaging.
    val_fraction, test_fraction : float
        Shares of the samples held out, by group (never by sample).
    report_random_split : bool
        Also train on a random sample-level split and report what it would have claimed (the leak).
    seed : int
        Fixes the split, the weight initialisation and the shuffling.

    Raises
    ------
    TypeError, ValueError
        For a setting of the wrong kind or out of range, naming it.
    """

    _WHAT = "training"

    model: str = "sodinn"
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 3e-3
    decay: float = 0.01
    patience: int = 3
    precision: str = "float32"
    ema_momentum: float | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    report_random_split: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        """Check and normalise every setting; raise ``TypeError`` or ``ValueError`` naming a bad one."""
        if not isinstance(self.model, str) or not self.model:
            msg = f"model must be the name of a registered model, e.g. 'sodinn'; got {self.model!r}"
            raise TypeError(msg)
        v.check_int(self.epochs, name="epochs", minimum=1)
        v.check_int(self.batch_size, name="batch_size", minimum=1)
        v.check_positive(self.learning_rate, name="learning_rate")
        if v.check_real(self.decay, name="decay") < 0:
            msg = f"decay must be >= 0; got {self.decay}"
            raise ValueError(msg)
        v.check_int(self.patience, name="patience", minimum=0)
        v.check_choice(self.precision, PRECISIONS, name="precision")
        if self.model == "sodirf" and self.precision != "float32":
            msg = f"model 'sodirf' (a random forest) has no precision setting; got precision={self.precision!r}: drop it"
            raise ValueError(msg)
        if self.ema_momentum is not None and not 0 <= v.check_real(self.ema_momentum, name="ema_momentum") < 1:
            msg = f"ema_momentum must be in [0, 1) or None (no weight averaging); got {self.ema_momentum}"
            raise ValueError(msg)
        for name in ("val_fraction", "test_fraction"):
            value = v.check_real(getattr(self, name), name=name)
            if not 0 < value < 0.5:
                msg = f"{name} must be in (0, 0.5); got {value}"
                raise ValueError(msg)
        v.check_int(self.seed, name="seed", minimum=0)


@dataclass(frozen=True)
class DataConfig(_Settings):
    """The input files of a sequence (the ``[data]`` table): cube, angles and PSF (FITS) or a VIP ``.npz``, and what they omit.

    Attributes
    ----------
    cube, angles, psf : str, optional
        FITS files of the cube ``(n_frames, N, N)``, the parallactic angles (degrees) and the
        off-axis PSF; in a configuration file, relative to the file's folder.
    fwhm_px : float, optional
        PSF FWHM in pixels (default: a 2-D Gaussian fit of the PSF).
    pixel_scale_arcsec : float, optional
        Pixel scale in arcsec per pixel.
    nan_policy : {"raise", "zero"}
        NaN/inf pixels of the cube: refuse them (default), or set them to 0 and drop the frames
        without any finite pixel with their angles (:func:`sodinn.adi.io.apply_nan_policy`).
    cube_hdu, angles_hdu, psf_hdu : int or str, optional
        HDU index or ``EXTNAME`` of each file (default: found from what the HDUs hold,
        :func:`sodinn.adi.io.select_hdu`).
    angles_column : str, optional
        Column of the angles when they are a table HDU (default: ``PARANG`` or a similar name, or
        the table's only numeric column).
    allow_small_rotation : bool
        Go on when the field rotation moves a source at the inner radius of the command's analysis by
        less than one FWHM (default False: the command stops before any work, since the angles are
        then often in radians, or the sequence too short; ``--allow-small-rotation``).
    north_offset_deg : float
        The instrument's pupil or true-north offset, degrees, added to the parallactic angles so that
        the derotated frames are north-up, east-left (default 0: the angles as the file gives them;
        ``--north-offset``; :mod:`sodinn.adi.sky`). -104.39 for the shared NACO beta Pic file.
    star_center_xy : (float, float), optional
        Where the star is in the cube's frames, ``(x, y)`` px, when it is not the frame centre (SPEC §1):
        every frame is shifted to put it there on reading (:meth:`sodinn.adi.sequence.ADISequence.recentered`;
        ``--star-center X Y``; :func:`sodinn.adi.centering.estimate_star_center` measures it).
        Default: the star is at the centre. (51.23, 51.02) for the shared NACO beta Pic cube.
    psf_exposure_s, cube_exposure_s : float
        Exposure times of the PSF and of the cube's frames, seconds (default 1 each): the star's flux
        in the cube is the PSF's times ``cube_exposure_s / psf_exposure_s`` (for contrasts;
        ``--psf-exposure``, ``--cube-exposure``).
    psf_nd_transmission : float
        Transmission of the neutral-density filter of the PSF, a fraction in (0, 1] (default 1: no
        filter); the star's flux is further divided by it (``--psf-nd-transmission``).
    star_flux : float, optional
        The star's flux in the cube's units in a 1-FWHM-diameter aperture (VIP's ``starphot``); when
        given it replaces the PSF-based value (``--star-flux``; 764939.6 for the shared NACO cube).
    npz : str, optional
        A VIP ``Dataset`` saved as ``.npz`` (``Dataset.save``), instead of the three FITS files: its
        cube, angles, PSF and, when saved, FWHM and pixel scale (``fwhm_px`` and ``pixel_scale_arcsec``
        override them); read with :meth:`sodinn.adi.sequence.ADISequence.from_npz`, arrays only.
        In a configuration file, relative to the file's folder.

    Raises
    ------
    TypeError
        For a file name that is not a string or path, a FWHM or pixel scale that is not a number, or
        an HDU that is neither an index nor a name, or an ``allow_small_rotation`` that is not true or
        false.
    ValueError
        For a FWHM or pixel scale that is not finite and positive, a negative HDU index, an unknown
        ``nan_policy``, or ``npz`` given with FITS files or their HDU settings; a
        :class:`~sodinn.exceptions.SettingError` naming the setting for an offset that is not a finite
        number, an exposure time or star flux that is not a positive number or a transmission outside
        (0, 1].
    """

    _WHAT = "data"

    cube: str | None = None
    angles: str | None = None
    psf: str | None = None
    fwhm_px: float | None = None
    pixel_scale_arcsec: float | None = None
    nan_policy: str = "raise"
    cube_hdu: int | str | None = None
    angles_hdu: int | str | None = None
    angles_column: str | None = None
    psf_hdu: int | str | None = None
    allow_small_rotation: bool = False
    north_offset_deg: float = 0.0
    star_center_xy: tuple[float, float] | None = None
    psf_exposure_s: float = 1.0
    cube_exposure_s: float = 1.0
    psf_nd_transmission: float = 1.0
    star_flux: float | None = None
    npz: str | None = None

    def __post_init__(self) -> None:
        """Check and normalise every setting; raise ``TypeError`` or ``ValueError`` naming a bad one."""
        _check_sky_settings(self)
        if not isinstance(self.allow_small_rotation, bool):
            msg = f"allow_small_rotation must be true or false; got {self.allow_small_rotation!r}"
            raise TypeError(msg)
        v.check_choice(self.nan_policy, ("raise", "zero"), name="nan_policy")
        for name in ("cube_hdu", "angles_hdu", "psf_hdu"):
            value = getattr(self, name)
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if value is not None and not isinstance(value, str):
                value = v.check_int(value, name=name, minimum=0)
            object.__setattr__(self, name, value)
        if self.angles_column is not None and not isinstance(self.angles_column, str):
            msg = f"angles_column must be a column name in quotes; got {self.angles_column!r}"
            raise TypeError(msg)
        for name in ("cube", "angles", "psf", "npz"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                msg = f"{name} must be a file name in quotes; got {value!r}"
                raise TypeError(msg)
            if value is not None:
                object.__setattr__(self, name, os.fspath(value))
        for name in ("fwhm_px", "pixel_scale_arcsec"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, v.check_positive(getattr(self, name), name=name))
        if self.npz is not None:
            both = [name for name in ("cube", "angles", "psf") if getattr(self, name) is not None]
            if both:
                msg = f"npz and {', '.join(both)} both name the data; keep npz (a VIP Dataset) or the three FITS files"
                raise ValueError(msg)
            fits_only = [name for name in ("cube_hdu", "angles_hdu", "angles_column", "psf_hdu") if getattr(self, name) is not None]
            if fits_only:
                msg = f"{', '.join(fits_only)} apply to FITS files, not to npz; remove them"
                raise ValueError(msg)

    @property
    def missing(self) -> tuple[str, ...]:
        """The input files not given (of ``cube``, ``angles``, ``psf``; none when ``npz`` names the data)."""
        if self.npz is not None:
            return ()
        return tuple(name for name in ("cube", "angles", "psf") if getattr(self, name) is None)


def _check_sky_settings(config: DataConfig) -> None:
    """Check the north offset and the PSF's flux scaling of a ``[data]`` table; errors name the setting."""
    offset = config.north_offset_deg
    if isinstance(offset, bool) or not isinstance(offset, (int, float)) or not math.isfinite(offset):
        raise SettingError(f"{{north_offset_deg}} must be a finite number of degrees; got {offset!r}",
                           north_offset_deg=None)
    object.__setattr__(config, "north_offset_deg", float(offset))
    star = config.star_center_xy
    if star is not None:
        ok = (isinstance(star, (list, tuple)) and len(star) == 2
              and all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in star))
        if not ok:
            raise SettingError(f"{{star_center_xy}} must be the star's (x, y) in px, two finite numbers; got {star!r}",
                               star_center_xy=None)
        object.__setattr__(config, "star_center_xy", (float(star[0]), float(star[1])))
    for name in ("psf_exposure_s", "cube_exposure_s", "psf_nd_transmission", "star_flux"):
        value = getattr(config, name)
        if value is None and name == "star_flux":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
            unit = {"psf_nd_transmission": "a fraction in (0, 1]",
                    "star_flux": "the star's flux in the cube's units, > 0"}.get(name, "a time in seconds, > 0")
            raise SettingError(f"{{{name}}} must be {unit}; got {value!r}", **{name: None})
        object.__setattr__(config, name, float(value))
    if config.psf_nd_transmission > 1:
        raise SettingError(f"{{psf_nd_transmission}} is a transmission, a fraction in (0, 1]; got "
                           f"{config.psf_nd_transmission!r} (for a filter of optical density d, pass 10**-d)",
                           psf_nd_transmission=None)


@dataclass(frozen=True)
class ReduceConfig(_Settings):
    """A classical reduction (the ``[reduce]`` table of ``sodinn reduce``).

    Attributes
    ----------
    method : str
        A baseline of the registry :data:`sodinn.adi.baselines.BASELINES` (``"annular"``, ``"pca"``,
        ``"median"``), checked by :func:`sodinn.adi.baselines.get_baseline`.
    ncomp : int
        Principal components of the PCA baselines (below the rank of the data: checked against the
        data before any work).
    delta_rot : float or (float, float)
        Rotation threshold of annular PCA-ADI, in FWHM (:func:`sodinn.adi.baselines.pca_annular`):
        a frame's PCA library holds only frames in which a source has moved by at least this much; a
        pair is spread from the first to the last annulus. Default ``(0.1, 1.0)`` (VIP's); 0 uses
        every frame. Used by ``method = "annular"`` only (``--delta-rot``).

    Raises
    ------
    TypeError, ValueError
        For an empty or non-string ``method``, a bad ``ncomp`` or a negative or malformed
        ``delta_rot``, naming it.
    """

    _WHAT = "reduce"

    method: str = "annular"
    ncomp: int = 10
    delta_rot: float | tuple[float, float] = (0.1, 1.0)

    def __post_init__(self) -> None:
        """Check and normalise every setting; raise ``TypeError`` or ``ValueError`` naming a bad one."""
        if not isinstance(self.method, str) or not self.method:
            msg = f"method must be the name of a baseline, e.g. 'annular'; got {self.method!r}"
            raise TypeError(msg)
        v.check_int(self.ncomp, name="ncomp", minimum=1)
        object.__setattr__(self, "delta_rot", _check_delta_rot(self.delta_rot))


def _check_delta_rot(value: Any) -> float | tuple[float, float]:
    """Return a rotation threshold in FWHM: a number >= 0 or a (first, last) pair of them."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) not in (1, 2):
        msg = f"delta_rot must be a number of FWHM or a (first annulus, last annulus) pair; got {value!r}"
        raise ValueError(msg)
    numbers = tuple(v.check_real(x, name="delta_rot") for x in values)
    if any(x < 0 for x in numbers):
        msg = f"delta_rot must be >= 0 (in FWHM; 0 uses every frame); got {value!r}"
        raise ValueError(msg)
    return numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1])


#: The probability threshold used where a model's probability is thresholded directly: ``sodinn predict
#: --threshold`` examples, the detection limits' default and the README's uncalibrated trials. ``sodinn
#: predict`` itself thresholds at a calibrated false-alarm budget (:attr:`PredictConfig.fp_budget`).
PROBABILITY_THRESHOLD = 0.9


@dataclass(frozen=True)
class PredictConfig(_Settings):
    """Detection maps and candidates (the ``[predict]`` table). The default false-alarm budget lives here only.

    Attributes
    ----------
    fp_budget : float
        False-alarm budget: the detection map and the candidates keep the pixels whose expected number of
        false positives per frame, measured on null draws of the same data (:mod:`sodinn.detect.calibration`),
        is at most this (> 0). Default 1: on average one false candidate per data set, each candidate
        carrying its own level (see the README, "What a candidate's false-alarm level means").
    threshold : float, optional
        A probability threshold in (0, 1) instead of the calibrated budget (no null draws are scored; the
        candidates carry no false-alarm level). Default: None (use ``fp_budget``).
    calibration_nulls : int
        0 (default): calibrate the map on its own blobs, known sources left out
        (:func:`sodinn.detect.calibration.calibrate_self`: no extra cost, and exchangeable with the map's
        false positives). N >= 1: on N null draws of every pixel (negated, then permuted angles,
        :func:`sodinn.detect.calibration.calibrate_nulls`), each costing about one probability map.
    seed : int
        Seeds the null draws' angle permutations.
    known_sources_xy : tuple of (x, y)
        Known real sources (px, on the derotated frame): left out of the calibration's null draws, where
        they would trace bright arcs (e.g. the sources masked in the model's training samples), and out of
        the noise apertures of the S/N curves of a model that takes them (within the model's
        ``mask_radius_fwhm``). They stay in the probability map and the candidates. Empty: the model's own
        training sources if these are its training data (:func:`sodinn.detect.probability.probability_map`).
    batch_size : int
        Samples per call of the model.

    Raises
    ------
    ValueError
        For a budget that is not > 0, a threshold outside (0, 1), fewer than 1 null draw or a batch size
        below 1.
    TypeError
        For a batch size, seed or number of null draws that is not an integer.
    """

    _WHAT = "predict"

    fp_budget: float = 1.0
    threshold: float | None = None
    calibration_nulls: int = 0
    seed: int = 0
    known_sources_xy: tuple[tuple[float, float], ...] = ()
    batch_size: int = 512

    def __post_init__(self) -> None:
        """Check and normalise every setting; raise ``TypeError`` or ``ValueError`` naming a bad one."""
        value = self.threshold
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                msg = f"threshold must be a probability in (0, 1), e.g. {PROBABILITY_THRESHOLD}; got {value!r}"
                raise ValueError(msg)
            object.__setattr__(self, "threshold", float(value))
        budget = self.fp_budget
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget < math.inf:
            msg = f"fp_budget must be a number of false positives per frame > 0, e.g. 1.0; got {budget!r}"
            raise ValueError(msg)
        object.__setattr__(self, "fp_budget", float(budget))
        v.check_int(self.calibration_nulls, name="calibration_nulls", minimum=0)
        v.check_int(self.seed, name="seed", minimum=0)
        sources = tuple(
            tuple(float(c) for c in v.check_positions_xy(xy, name="known_sources_xy")[0]) for xy in self.known_sources_xy
        )
        object.__setattr__(self, "known_sources_xy", sources)
        v.check_int(self.batch_size, name="batch_size", minimum=1)

    @property
    def calibrated(self) -> bool:
        """Whether the products are thresholded at the false-alarm budget (no probability threshold given)."""
        return self.threshold is None


@dataclass(frozen=True)
class EngineConfig(_Settings):
    """Where parallel jobs run (the ``[engine]`` table; see :mod:`sodinn.engine`).

    Attributes
    ----------
    scheduler : str, optional
        ``"processes"`` (the local cores, default), ``"synchronous"`` (this process) or a Dask
        scheduler address ``"tcp://host:port"``.
    n_workers : int, optional
        Local worker processes (default: all cores); on a cluster, at most this many jobs at once.

    Raises
    ------
    ValueError, TypeError
        For a bad scheduler (:func:`sodinn.engine.check_scheduler`) or ``n_workers``.
    """

    _WHAT = "engine"

    scheduler: str | None = None
    n_workers: int | None = None

    def __post_init__(self) -> None:
        """Check and normalise every setting; raise ``TypeError`` or ``ValueError`` naming a bad one."""
        from sodinn.engine import check_scheduler

        check_scheduler(self.scheduler)
        if self.n_workers is not None and (isinstance(self.n_workers, bool) or not isinstance(self.n_workers, int)
                                           or self.n_workers < 1):
            msg = f"the number of workers (n_workers) must be a positive integer; got {self.n_workers!r}"
            raise ValueError(msg)


_METHOD_SPEC = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:-[A-Za-z][A-Za-z0-9_]*)*(?:-[0-9]+)?")


def _check_method_specs(values: Iterable[Any], name: str) -> tuple[str, ...]:
    """Baseline methods as written: ``NAME`` or ``NAME-K`` (K principal components), checked for form only."""
    specs = tuple(values)
    for spec in specs:
        if not isinstance(spec, str) or not _METHOD_SPEC.fullmatch(spec) or spec.endswith("-0"):
            msg = f"{name} must hold baseline names, optionally with a rank (e.g. 'median', 'annular-10'); got {spec!r}"
            raise ValueError(msg)
    if len(set(specs)) != len(specs):
        msg = f"{name} lists a method twice: {list(specs)}"
        raise ValueError(msg)
    return specs


@dataclass(frozen=True)
class InjectionConfig(_Settings):
    """The settings every injected-copy experiment shares (ROC curves, detection limits).

    Attributes
    ----------
    lambda_d_px : float, optional
        lambda/D in pixels (default: the PSF FWHM).
    known_sources_xy : tuple of (x, y)
        Real sources (e.g. beta Pic b): no injection within ``mask_radius_fwhm`` FWHM, their blobs ignored
        in scoring, their apertures left out of the S/N oracle and of the S/N curves of the models that take
        them (within each model's own ``mask_radius_fwhm``, as in its training).
    mask_radius_fwhm : float
        Radius of the exclusion around each known source, in FWHM.
    npix : int
        Smallest blob kept by the blob scoring, in pixels (:mod:`sodinn.detect.scoring`).
    overlap_threshold : float
        Overlap of a blob with the 1-FWHM disc of an injection that makes it a true positive.
    max_blob_fact : float
        Largest blob, in resolution elements, still judged by overlap.
    oracle_ncomp, oracle_azimuths : int
        Settings of the S/N oracle (:class:`sodinn.mlar.flux.FluxRangeEstimator`).
    seed : int
        Fixes the injections.

    Raises
    ------
    TypeError, ValueError
        For a setting of the wrong kind or out of range, naming it.
    """

    lambda_d_px: float | None = None
    known_sources_xy: tuple[tuple[float, float], ...] = ()
    mask_radius_fwhm: float = 2.0
    npix: int = 2
    overlap_threshold: float = 0.7
    max_blob_fact: float = 2.0
    oracle_ncomp: int = 10
    oracle_azimuths: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        """Check and normalise every setting; raise ``TypeError`` or ``ValueError`` naming a bad one."""
        if self.lambda_d_px is not None:
            v.check_positive(self.lambda_d_px, name="lambda_d_px")
        sources = tuple(tuple(float(c) for c in v.check_positions_xy(xy, name="known_sources_xy")[0])
                        for xy in self.known_sources_xy)
        object.__setattr__(self, "known_sources_xy", sources)
        v.check_positive(self.mask_radius_fwhm, name="mask_radius_fwhm")
        v.check_int(self.npix, name="npix", minimum=1)
        if not 0 < self.overlap_threshold < 1:
            msg = f"overlap_threshold must be in (0, 1); got {self.overlap_threshold}"
            raise ValueError(msg)
        v.check_positive(self.max_blob_fact, name="max_blob_fact")
        v.check_int(self.oracle_ncomp, name="oracle_ncomp", minimum=1)
        v.check_int(self.oracle_azimuths, name="oracle_azimuths", minimum=1)
        v.check_int(self.seed, name="seed", minimum=0)

    def scoring(self) -> dict[str, Any]:
        """Return the blob-scoring keyword arguments of :func:`sodinn.detect.scoring.score_blobs`.

        Returns
        -------
        dict
            ``npix``, ``overlap_threshold``, ``max_blob_fact`` and ``known_sources_xy``.
        """
        return {"npix": self.npix, "overlap_threshold": self.overlap_threshold, "max_blob_fact": self.max_blob_fact,
                "known_sources_xy": self.known_sources_xy}


def _default_snr_thresholds() -> tuple[float, ...]:
    # 0.1 apart: a ROC read at "<= N false positives per frame" picks the best threshold on this grid, so a coarse grid
    # under-reads every method
    return tuple(float(t) for t in np.round(np.arange(0.5, 6.001, 0.1), 2))


def _default_prob_thresholds() -> tuple[float, ...]:
    # up to 1 - 1e-6 (model maps are logits, so these stay distinct): trained on faint companions, a network is
    # often over-confident on speckles. The round values, and every 0.25 in logit between -2 and 13.75 (as fine as the
    # S/N grid: about 0.1 in S/N is 0.25 in logit for these models), so the best threshold is not missed between them
    rounded = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999, 0.99999, 0.999999)
    fine = 1.0 / (1.0 + np.exp(-np.arange(-2.0, 13.76, 0.25)))
    return tuple(sorted({float(t) for t in rounded} | {float(t) for t in np.round(fine, 9)}))


def _default_fp_targets() -> tuple[float, ...]:
    # expected false positives per frame over the field: 10 per decade from 0.01 to 100, so that a band holding
    # 5-10 % of the field's area reaches 1 per frame of its own (the ROC's "TPR at <= 1")
    return tuple(float(t) for t in np.round(np.logspace(-2.0, 2.0, 41), 5))


def _thresholds(values: Iterable[Any], name: str) -> tuple[float, ...]:
    out = tuple(float(t) for t in values)
    if not out or any(not math.isfinite(t) for t in out):
        msg = f"{name} must be a non-empty list of finite numbers; got {values}"
        raise ValueError(msg)
    return tuple(sorted(out))


@dataclass(frozen=True)
class RocConfig(InjectionConfig):
    """Settings of the ROC harness (the ``[roc]`` table; :func:`sodinn.evaluate.roc.run_roc`).

    The injection and scoring settings are those of :class:`InjectionConfig`.

    Attributes
    ----------
    bands_lambda_d : tuple of (float, float)
        Separation bands, in lambda/D (``lambda_d_px`` pixels each).
    copies_per_band : int
        Injected copies per band (one companion each).
    snr_range : (float, float)
        Companion fluxes are drawn between the fluxes giving these annular-PCA S/N (the S/N oracle).
    flux_range : (float, float), optional
        Absolute flux bounds instead of the S/N oracle (``(0, 0)``: copies without companion, to count
        false positives alone).
    flux_distribution : {"uniform", "log-uniform"}
        How the companion fluxes are drawn between the bounds.
    baselines : tuple of str
        The classical methods compared, as registry names (:data:`sodinn.adi.baselines.BASELINES`),
        ranked ones with their number of components: ``"annular-10"`` is annular PCA-ADI at 10
        components, a plain ``"pca"`` full-frame PCA-ADI with components by CEVR 0.90. The fair
        comparison is with the best rank per band.
    snr_thresholds, prob_thresholds : tuple of float
        Thresholds of the S/N maps and of the probability maps.
    calibrate : bool
        Also score each model through its calibration (:mod:`sodinn.detect.calibration`) as method
        ``NAME-cal``, at the expected false positives per frame ``fp_targets``.
    fp_targets : tuple of float
        Expected false positives per frame over the whole field at which the calibrated models are scored
        (default 10 per decade from 0.01 to 100: a band holds its area share of each, and the ROC's
        "TPR at <= N false positives per frame" counts in the band).
    calibration_nulls : int
        0 (default): each copy's map is calibrated on its own blobs, as ``sodinn predict`` does
        (:func:`sodinn.detect.calibration.calibrate_self`); N >= 1: one calibration of the real data on N
        null draws per pixel.
    lambda_d_px : float, optional
        See :class:`InjectionConfig`.
    known_sources_xy : tuple of (x, y)
        See :class:`InjectionConfig`.
    mask_radius_fwhm, overlap_threshold, max_blob_fact : float
        See :class:`InjectionConfig`.
    npix, oracle_ncomp, oracle_azimuths : int
        See :class:`InjectionConfig`.
    seed : int
        See :class:`InjectionConfig`.

    Raises
    ------
    TypeError, ValueError
        For a setting of the wrong kind or out of range, naming it.
    """

    _WHAT = "ROC"

    bands_lambda_d: tuple[tuple[float, float], ...] = ((1.0, 2.0), (2.0, 3.0), (3.0, 4.0))
    copies_per_band: int = 100
    snr_range: tuple[float, float] = (1.0, 3.0)
    flux_range: tuple[float, float] | None = None
    flux_distribution: str = "uniform"
    baselines: tuple[str, ...] = ("median", "pca", "annular-5", "annular-10", "annular-20")
    snr_thresholds: tuple[float, ...] = dataclasses.field(default_factory=_default_snr_thresholds)
    prob_thresholds: tuple[float, ...] = dataclasses.field(default_factory=_default_prob_thresholds)
    calibrate: bool = True
    fp_targets: tuple[float, ...] = dataclasses.field(default_factory=_default_fp_targets)
    calibration_nulls: int = 0

    def __post_init__(self) -> None:
        """Check and normalise every setting; raise ``TypeError`` or ``ValueError`` naming a bad one."""
        super().__post_init__()
        set_ = object.__setattr__
        bands = tuple(tuple(float(x) for x in b) for b in self.bands_lambda_d)
        if not bands or any(len(b) != 2 or not 0 <= b[0] < b[1] for b in bands):
            msg = f"bands_lambda_d must be (inner, outer) pairs with 0 <= inner < outer; got {self.bands_lambda_d}"
            raise ValueError(msg)
        set_(self, "bands_lambda_d", bands)
        v.check_int(self.copies_per_band, name="copies_per_band", minimum=1)
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
        v.check_choice(self.flux_distribution, _FLUX_DISTRIBUTIONS, name="flux_distribution")
        set_(self, "baselines", _check_method_specs(self.baselines, "baselines"))
        set_(self, "snr_thresholds", _thresholds(self.snr_thresholds, "snr_thresholds"))
        set_(self, "prob_thresholds", _thresholds(self.prob_thresholds, "prob_thresholds"))
        if any(not 0 < t < 1 for t in self.prob_thresholds):
            msg = f"prob_thresholds must lie in (0, 1); got {self.prob_thresholds}"
            raise ValueError(msg)
        set_(self, "fp_targets", tuple(sorted(v.check_positive(f, name="fp_targets") for f in self.fp_targets)))
        v.check_int(self.calibration_nulls, name="calibration_nulls", minimum=0)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RocConfig:
        """Build from a ``[roc]`` table; unknown keys are an error that names them.

        The keys of sodinn 0.1, ``pca_ncomp`` and ``annular_ncomps`` beside ``baselines = ["median", "pca",
        "annular"]``, are read too: they name the same methods as ``baselines = ["median", "pca-K",
        "annular-5", "annular-10", "annular-20"]``.

        Parameters
        ----------
        values : mapping
            The ``[roc]`` table (``{field: value}``).

        Returns
        -------
        RocConfig
            The checked settings.

        Raises
        ------
        ValueError
            For an unknown key (naming the known ones) or a bad value.
        TypeError
            For a value of the wrong kind.
        """
        return super().from_dict(_legacy_baselines(values, ("annular_ncomps", "pca_ncomp")))


def _default_flux_factors() -> tuple[float, ...]:
    return tuple(float(f) for f in np.round(np.geomspace(0.3, 30.0, 9), 4))


@dataclass(frozen=True)
class LimitConfig(InjectionConfig):
    """Settings of the detection-limit experiment (the ``[limits]`` table; :func:`sodinn.evaluate.limits.detection_limits`).

    The injection and scoring settings are those of :class:`InjectionConfig`.

    Attributes
    ----------
    separations_lambda_d : tuple of float
        Separations, in lambda/D (``lambda_d_px`` pixels each).
    copies_per_flux : int
        Injected copies per separation and flux level (one companion each).
    flux_factors : tuple of float
        The flux ladder, in units of the flux that gives S/N = 1 in annular PCA-ADI (the S/N oracle);
        default 0.3 to 30, 9 levels: the S/N of annular PCA-ADI grows more slowly than the flux near the
        star (a bright companion's own wings and self-subtraction lobes fill its noise apertures), so its
        95% TPR at S/N 5 often needs more than 10 times the S/N = 1 flux.
    flux_ladder : tuple of float, optional
        Absolute fluxes instead (same ladder at every separation; no oracle run).
    prob_threshold : float
        Probability threshold of the models (default :data:`PROBABILITY_THRESHOLD`; overridden per
        model by ``detection_limits(thresholds=...)``).
    snr_threshold : float
        S/N threshold of the baselines.
    baselines : tuple of str
        The classical methods whose limits are measured beside the models (registry names with their
        rank, as in :attr:`RocConfig.baselines`).
    tpr_target : float
        The TPR at which the limit is read (0.95).
    classical : bool
        Also compute the classical ``sigma``-sigma contrast curve of annular PCA-ADI (``sodinn limits``;
        :func:`sodinn.evaluate.contrast.classical_contrast_curve`).
    sigma : float
        Gaussian-equivalent significance of the classical curve (5: FPF 2.87e-7), Student-corrected.
    classical_ncomp : int
        Principal components of the classical curve's annular PCA-ADI.
    classical_step_fwhm : float
        Separations of the classical curve: every ``classical_step_fwhm`` FWHM from 1 FWHM to ``N/2 - FWHM``.
    classical_azimuths : int
        Fake companions per separation for the classical curve's throughput.
    injection_snr : float
        Flux of those fake companions, in units of the noise at their separation.
    convention : {"mawet", "vip"}
        Noise apertures and fake companions of the classical curve: ``"mawet"`` (Mawet et al. 2014:
        ``floor(pi / asin(FWHM / 2r))`` apertures from a random azimuth, std with ``ddof=1``, ``n - 1`` apertures in
        the Student factor) or ``"vip"`` (vip-hci's ``contrast_curve``: ``floor(2 pi r / FWHM)`` apertures from
        azimuth 0, ``ddof=0``, all of them in the Student factor, companions from azimuth 0), to compare with VIP
        (see :func:`sodinn.evaluate.contrast.classical_contrast_curve`).
    psf_exposure_s : float
        Exposure time of the off-axis PSF, seconds (per frame, as the cube's): the star's flux is the
        PSF's aperture flux times ``cube_exposure_s / psf_exposure_s / psf_nd_transmission``.
    cube_exposure_s : float
        Exposure time of each frame of the cube, seconds.
    psf_nd_transmission : float
        Transmission, in (0, 1], of the neutral-density filter the PSF was taken through (1: none).
    star_flux : float, optional
        The star's flux in a 1-FWHM-diameter aperture of a frame of the cube, in the cube's units; when
        given it is used as it is and the three settings above are not.
    lambda_d_px : float, optional
        See :class:`InjectionConfig`.
    known_sources_xy : tuple of (x, y)
        See :class:`InjectionConfig`.
    mask_radius_fwhm, overlap_threshold, max_blob_fact : float
        See :class:`InjectionConfig`.
    npix, oracle_ncomp, oracle_azimuths : int
        See :class:`InjectionConfig`.
    seed : int
        See :class:`InjectionConfig`.

    Raises
    ------
    TypeError, ValueError
        For a setting of the wrong kind or out of range, naming it.
    """

    _WHAT = "limits"

    separations_lambda_d: tuple[float, ...] = (1.5, 2.5, 3.5)
    copies_per_flux: int = 20
    flux_factors: tuple[float, ...] = dataclasses.field(default_factory=_default_flux_factors)
    flux_ladder: tuple[float, ...] | None = None
    prob_threshold: float = PROBABILITY_THRESHOLD
    snr_threshold: float = 5.0
    baselines: tuple[str, ...] = ("annular-10",)
    tpr_target: float = 0.95
    classical: bool = True
    sigma: float = 5.0
    classical_ncomp: int = 10
    classical_step_fwhm: float = 0.5
    classical_azimuths: int = 4
    injection_snr: float = 50.0
    convention: str = "mawet"
    psf_exposure_s: float = 1.0
    cube_exposure_s: float = 1.0
    psf_nd_transmission: float = 1.0
    star_flux: float | None = None

    def __post_init__(self) -> None:
        """Check and normalise every setting; raise ``TypeError`` or ``ValueError`` naming a bad one."""
        super().__post_init__()
        set_ = object.__setattr__
        seps = tuple(float(s) for s in np.atleast_1d(self.separations_lambda_d))
        if not seps or any(not (math.isfinite(s) and s > 0) for s in seps):
            msg = f"separations_lambda_d must be a non-empty list of positive numbers; got {self.separations_lambda_d}"
            raise ValueError(msg)
        set_(self, "separations_lambda_d", tuple(sorted(set(seps))))
        v.check_int(self.copies_per_flux, name="copies_per_flux", minimum=1)
        for name in ("flux_factors", "flux_ladder"):
            values = getattr(self, name)
            if values is None:
                continue
            ladder = tuple(sorted({v.check_positive(f, name=name) for f in values}))
            if len(ladder) < 2:
                msg = f"{name} must hold at least 2 distinct positive values; got {values}"
                raise ValueError(msg)
            set_(self, name, ladder)
        if not 0 < self.prob_threshold < 1:
            msg = f"prob_threshold must lie in (0, 1); got {self.prob_threshold}"
            raise ValueError(msg)
        v.check_real(self.snr_threshold, name="snr_threshold")
        set_(self, "baselines", _check_method_specs(self.baselines, "baselines"))
        if not 0 < self.tpr_target < 1:
            msg = f"tpr_target must lie in (0, 1); got {self.tpr_target}"
            raise ValueError(msg)
        if not isinstance(self.classical, bool):
            msg = f"classical must be true or false; got {self.classical!r}"
            raise TypeError(msg)
        for name in ("sigma", "classical_step_fwhm", "injection_snr", "psf_exposure_s", "cube_exposure_s"):
            set_(self, name, v.check_positive(getattr(self, name), name=name))
        v.check_int(self.classical_ncomp, name="classical_ncomp", minimum=1)
        v.check_int(self.classical_azimuths, name="classical_azimuths", minimum=1)
        v.check_choice(self.convention, _CONVENTIONS, name="convention")
        nd = v.check_positive(self.psf_nd_transmission, name="psf_nd_transmission")
        if nd > 1:
            msg = (f"psf_nd_transmission is the fraction of the light a neutral-density filter lets through, in (0, 1]; "
                   f"got {nd} (an attenuation factor? pass 1 / {nd:g})")
            raise ValueError(msg)
        set_(self, "psf_nd_transmission", nd)
        if self.star_flux is not None:
            set_(self, "star_flux", v.check_positive(self.star_flux, name="star_flux"))

    @property
    def star_flux_scale(self) -> float:
        """``cube_exposure_s / psf_exposure_s / psf_nd_transmission``: the PSF's flux to the star's in a frame of the cube."""
        return self.cube_exposure_s / self.psf_exposure_s / self.psf_nd_transmission

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> LimitConfig:
        """Build from a ``[limits]`` table; unknown keys are an error that names them.

        The key of sodinn 0.1, ``annular_ncomp = K``, is read as ``baselines = ["annular-K"]``.

        Parameters
        ----------
        values : mapping
            The ``[limits]`` table (``{field: value}``).

        Returns
        -------
        LimitConfig
            The checked settings.

        Raises
        ------
        ValueError
            For an unknown key (naming the known ones) or a bad value.
        TypeError
            For a value of the wrong kind.
        """
        return super().from_dict(_legacy_baselines(values, ("annular_ncomp",)))


def _legacy_baselines(values: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Turn sodinn 0.1's rank keys (``annular_ncomps``, ``pca_ncomp``, ``annular_ncomp``) into method names."""
    out = dict(values)
    if not any(k in out for k in keys):
        return out
    annular, single, pca = (out.pop(k, None) if k in keys else None for k in ("annular_ncomps", "annular_ncomp", "pca_ncomp"))
    if single is not None:
        return {**out, "baselines": (f"annular-{int(single)}",)}
    names = []
    for name in out.get("baselines", ("median", "pca", "annular")):
        if name == "annular":
            names += [f"annular-{int(k)}" for k in (annular if annular is not None else (5, 10, 20))]
        elif name == "pca" and pca is not None:
            names.append(f"pca-{int(pca)}")
        else:
            names.append(name)
    return {**out, "baselines": tuple(names)}
