"""TOML configuration files: reading (stdlib ``tomllib``) and writing the effective configuration.

Only the subset of TOML that configurations need is written: tables of strings, numbers, booleans
and lists of those.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from sodinn import _validation as v
from sodinn._atomic import atomic_path

__all__ = ["SampleConfig", "TrainConfig", "dump_toml", "load_toml"]

def _check_known_keys(cls: type, values: Mapping[str, Any], what: str) -> None:
    """Refuse keys that are not fields of the configuration dataclass ``cls``, naming the known ones."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        msg = f"unknown {what} setting(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}"
        raise ValueError(msg)


_K_POLICIES = ("cevr", "fixed")
_FLUX_DISTRIBUTIONS = ("uniform", "log-uniform")
_LINALG_BACKENDS = ("numpy", "keras")


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
    r_in_fwhm : float
        Inner radius of the first annulus, in FWHM (default 1).
    r_out_fwhm : float, optional
        Largest outer radius, in FWHM (default: as far as the widened SVD region fits in the frame).
    snr_range : (float, float)
        S/N (annular PCA-ADI, Mawet 2014) of the faintest and brightest injected companions.
    flux_distribution : {"uniform", "log-uniform"}
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
        Real sources (sky frame, e.g. beta Pic b) kept out of C- patches and injection sites.
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
        :mod:`sodinn.backend_linalg`). Both give the same samples up to rounding (agreement to
        1e-5 relative is tested), so it is left out of :meth:`digest`, like ``memory_budget_gib``.
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
            msg = f"snr_range must be (low, high) with low < high; got {tuple(self.snr_range)} (reversed?)"
            raise ValueError(msg)
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
        """Plain JSON/TOML-able dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SampleConfig:
        """Build from a dict (e.g. a TOML ``[samples]`` table); unknown keys are an error."""
        _check_known_keys(cls, values, "sample")
        kwargs = dict(values)
        for key in ("k_list", "snr_range"):
            if kwargs.get(key) is not None:
                kwargs[key] = tuple(kwargs[key])
        if "known_sources_xy" in kwargs:
            kwargs["known_sources_xy"] = tuple(tuple(xy) for xy in kwargs["known_sources_xy"])
        return cls(**kwargs)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form: identifies the configuration in files and resumes.

        ``memory_budget_gib`` is left out: it changes how the work is cut, never the samples; so is
        ``linalg_backend``: it changes where the eigen-decompositions run, the samples only by rounding.
        """
        values = self.to_dict()
        values.pop("memory_budget_gib")
        values.pop("linalg_backend")
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()



def load_toml(path: str | os.PathLike[str], *, sections: Iterable[str] | None = None) -> dict[str, Any]:
    """Read a TOML configuration; with ``sections``, refuse unknown top-level tables.

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
    """Write ``{section: {key: value}}`` as TOML, atomically."""
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


@dataclass(frozen=True)
class TrainConfig:
    """Settings of training (SPEC §4). Defaults live here only.

    Attributes
    ----------
    model : {"sodinn", "sodinn-v2", "conv3d", "sodirf"}
    epochs : int
        At most this many epochs (early stopping on the validation loss keeps the best weights).
    batch_size : int
    learning_rate : float
        Initial Adam learning rate, decaying as ``lr / (1 + decay * step)``.
    decay : float
    patience : int
        Epochs without validation-loss improvement before stopping.
    val_fraction, test_fraction : float
        Shares of the samples held out, by group (never by sample).
    report_random_split : bool
        Also train on a random sample-level split and report what it would have claimed (the leak).
    seed : int
    """

    model: str = "sodinn"
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 3e-3
    decay: float = 0.01
    patience: int = 3
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    report_random_split: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        from sodinn.models import MODEL_NAMES

        v.check_choice(self.model, MODEL_NAMES, name="model")
        v.check_int(self.epochs, name="epochs", minimum=1)
        v.check_int(self.batch_size, name="batch_size", minimum=1)
        v.check_positive(self.learning_rate, name="learning_rate")
        if v.check_real(self.decay, name="decay") < 0:
            msg = f"decay must be >= 0; got {self.decay}"
            raise ValueError(msg)
        v.check_int(self.patience, name="patience", minimum=0)
        for name in ("val_fraction", "test_fraction"):
            value = v.check_real(getattr(self, name), name=name)
            if not 0 < value < 0.5:
                msg = f"{name} must be in (0, 0.5); got {value}"
                raise ValueError(msg)
        v.check_int(self.seed, name="seed", minimum=0)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a dict (e.g. a TOML ``[train]`` table); unknown keys are an error."""
        _check_known_keys(cls, values, "training")
        return cls(**values)
