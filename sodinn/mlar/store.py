"""Sample sets on disk: one HDF5 file per data set, written atomically, generated resumably.

Layout of a sample file::

    /samples    (n, K, P, P) float32, chunked, gzip + shuffle  raw residual patches
    /labels     (n,) int8      1 = C+, 0 = C-
    /annulus    (n,) int16     annulus index
    /x, /y      (n,) float64   position in the sky frame (injected companion or pixel)
    /flux       (n,) float64   injected flux (0 for C-)
    /group      (n,) int64     split unit (injection id >= 0; C- azimuthal sector < 0)
    /augmented  (n,) bool
    /snr_curves (n, K) float32 S/N of every sample at each rank (NA-SODINN; absent in files made before)
    /annuli/{r_in_px, r_out_px, flux_range, ks}    per-annulus tables
    attrs: format, config (JSON), config_sha256, provenance (JSON), oracle (JSON), normalization,
           snr_curves (the rule, :data:`sodinn.mlar.features.SNR_CURVES`; with the dataset)

:func:`generate_sample_file` works annulus by annulus, keeping each finished annulus in a
``<file>.parts/`` folder; an interrupted run resumes from there and ends with the same file as an
uninterrupted one. The final file appears only when complete (temporary name, then rename). The
``.parts/`` folder is made only once the S/N oracle has finished (it holds the oracle's table from the
start), so a run interrupted earlier leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sodinn._atomic import atomic_path, check_writable_output, output_folder
from sodinn.adi.sequence import ADISequence
from sodinn.config import SampleConfig
from sodinn.exceptions import SettingError
from sodinn.mlar.features import SNR_CURVES
from sodinn.mlar.flux import FluxRangeEstimator
from sodinn.mlar.samples import AnnulusSamples, MLARSamples, fit_flux_ranges, iter_annulus_samples, minmax_normalize, plan_samples

__all__ = ["SampleFile", "generate_sample_file", "write_samples"]

logger = logging.getLogger(__name__)

FORMAT = "sodinn-mlar-samples/1"
_FIELDS = ("labels", "x", "y", "flux", "group", "augmented")


def write_samples(samples: MLARSamples, path: str | os.PathLike[str]) -> Path:
    """Write an in-memory sample set to HDF5 atomically; return the path.

    Parameters
    ----------
    samples : MLARSamples
        The sample set (:func:`sodinn.mlar.samples.make_samples`), at least one annulus.
    path : str or path-like
        Output file (``.h5``); the layout is the module's.

    Returns
    -------
    Path
        ``path``, complete.
    """
    return _write(list(samples.annuli), samples.config, samples.provenance, samples.oracle, Path(path))


def generate_sample_file(
    sequence: ADISequence,
    config: SampleConfig,
    path: str | os.PathLike[str],
    *,
    resume: bool = True,
    flux_ranges: np.ndarray | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> Path:
    """Generate the sample set of ``sequence`` into an HDF5 file, annulus by annulus.

    The same samples as :func:`sodinn.mlar.samples.make_samples` (SPEC §3); each finished annulus
    is kept in ``<path>.parts/`` until the file is complete.

    Parameters
    ----------
    sequence : ADISequence
        The ADI sequence.
    config : SampleConfig
        Sample settings.
    path : str or path-like
        Output file (``.h5``).
    resume : bool
        Continue from the finished annuli of an interrupted run of the same sequence and
        configuration (default); False starts afresh.
    flux_ranges : ndarray, shape (n_annuli, 2), optional
        Use these flux bounds instead of running the S/N oracle.
    n_jobs : int, optional
        Worker processes over annuli (default: all cores); the file does not depend on it.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        ``path``, complete.

    Raises
    ------
    TypeError
        If ``sequence`` is not an :class:`~sodinn.adi.sequence.ADISequence`.
    ValueError
        If a bad configuration is detected (before any work, :func:`~sodinn.mlar.samples.plan_samples`),
        or if ``resume`` finds parts made from another sequence or configuration.
    OSError
        If ``path`` cannot be written (a folder, no permission), before any work.

    Notes
    -----
    A run that fails or is interrupted leaves nothing new on disk but a non-empty ``<path>.parts/``
    (the oracle's table and the finished annuli), which the next run resumes from.
    """
    out = check_writable_output(path, kind="file", name="path")
    plan = plan_samples(sequence, config)
    parts = out.with_name(out.name + ".parts")
    with output_folder(out.parent, resume_state=(parts.name,)):
        return _generate(sequence, config, out, plan, parts, resume=resume, flux_ranges=flux_ranges, n_jobs=n_jobs,
                         progress=progress)


def _generate(sequence: ADISequence, config: SampleConfig, out: Path, plan: Any, parts: Path, *, resume: bool,
              flux_ranges: np.ndarray | None, n_jobs: int | None, progress: bool) -> Path:
    from tqdm.auto import tqdm

    annuli, psf, provenance = plan.annuli, plan.psf, plan.provenance
    # the oracle's method is part of the identity: a state saved by another method (e.g. before issue 14) is not resumed
    # and so are the S/N curves' rule: parts made without curves (or by another rule) are not resumed
    identity = {"config_sha256": config.digest(), "sequence": _sequence_identity(sequence),
                "oracle_method": FluxRangeEstimator.method_version, "snr_curves": SNR_CURVES}
    if parts.exists() and not resume:
        shutil.rmtree(parts)
    state_file = parts / "state.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if state["identity"] != identity:
            saved = state["identity"]
            if {k for k in identity if saved.get(k) != identity[k]} == {"snr_curves"}:
                made = ("without S/N curves" if saved.get("snr_curves") is None
                        else f"whose S/N curves were made as {saved['snr_curves']!r}")
                msg = (f"{parts} holds an interrupted run {made} (an older sodinn); this sodinn makes them as "
                       f"{SNR_CURVES!r}; pass resume=False (--no-resume) "
                       "to remake the samples, or choose another output file")
                raise ValueError(msg)
            msg = (
                f"{parts} holds an interrupted run of another sequence or configuration; "
                "pass resume=False (--no-resume) to start afresh, or choose another output file"
            )
            raise ValueError(msg)
        oracle = state["oracle"]
        logger.info("resuming: %d of %d annuli already done", len(list(parts.glob("annulus_*.npz"))), len(annuli))
    else:  # the parts folder is made once the oracle is done: an interrupted oracle leaves no empty folder
        oracle = fit_flux_ranges(sequence, config, annuli, psf) if flux_ranges is None else {
            "flux_range": np.asarray(flux_ranges, dtype=float).tolist(), "given": True}
        parts.mkdir(parents=True, exist_ok=True)
        _atomic_text(state_file, json.dumps({"identity": identity, "oracle": oracle}))
    ranges = np.asarray(oracle["flux_range"], dtype=np.float64)
    todo = [i for i in range(len(annuli)) if not (parts / f"annulus_{i:03d}.npz").exists()]
    bar = tqdm(total=len(annuli), initial=len(annuli) - len(todo), desc="annuli", unit="annulus", disable=None if progress else True)
    for result in iter_annulus_samples(sequence, config, plan, ranges, indices=todo, n_jobs=n_jobs):
        _save_part(parts / f"annulus_{result.index:03d}.npz", result)
        bar.update(1)
    bar.close()
    results = [_load_part(parts / f"annulus_{i:03d}.npz") for i in range(len(annuli))]
    _write(results, config, provenance, oracle, out)
    shutil.rmtree(parts)
    return out


class SampleFile:
    """Read a sample file without loading its samples: metadata in memory, samples streamed.

    Parameters
    ----------
    path : str or path-like
        A sample file (:func:`generate_sample_file`, :func:`write_samples`).

    Attributes
    ----------
    path : Path
        The file.
    config : SampleConfig
        The settings that made the samples.
    provenance, oracle : dict
        sodinn version, configuration digest, seed and sequence; the S/N oracle's table.
    labels : ndarray of int8, shape (n,)
        1 for C+, 0 for C-.
    annulus : ndarray of int16, shape (n,)
        Annulus index of every sample.
    x, y : ndarray of float64, shape (n,)
        Sample positions in the sky frame, px.
    flux : ndarray of float64, shape (n,)
        Injected flux (0 for C-).
    group : ndarray of int64, shape (n,)
        Split unit (injection id >= 0; C- azimuthal sector < 0).
    augmented : ndarray of bool, shape (n,)
        True for augmented C- samples.
    ks : ndarray of int, shape (n_annuli, K)
        PCA ranks of every annulus.
    r_in_px, r_out_px : ndarray of float64, shape (n_annuli,)
        Radii of the annuli, px.
    flux_range : ndarray of float64, shape (n_annuli, 2)
        C+ flux bounds of every annulus.
    sample_shape : tuple of int
        ``(K, P, P)``.
    snr_curves : ndarray of float32, shape (n, K), or None
        The S/N of every sample at each rank (:data:`sodinn.mlar.features.SNR_CURVES`); None in a
        file made before S/N curves existed (see :meth:`require_snr_curves`).
    snr_curves_rule : str or None
        The rule that made them (the file's ``snr_curves`` attribute), None without curves; a rule
        other than :data:`~sodinn.mlar.features.SNR_CURVES` is refused by :meth:`require_snr_curves`.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError
        If it is not HDF5 or not a sodinn sample file (format ``sodinn-mlar-samples/1``).

    Examples
    --------
    >>> with SampleFile("naco.h5") as f:  # doctest: +SKIP
    ...     for x, y in f.iter_batches(256, shuffle=True, seed=0):
    ...         ...
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            msg = f"sample file not found: {self.path}"
            raise FileNotFoundError(msg)
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as err:
            msg = f"cannot open {self.path} as HDF5 ({err}); is it a complete sodinn sample file?"
            raise ValueError(msg) from err
        fmt = self._h5.attrs.get("format")
        if fmt != FORMAT:
            self._h5.close()
            msg = f"{self.path} is not a sodinn sample file (format {fmt!r}, expected {FORMAT!r})"
            raise ValueError(msg)
        h = self._h5
        self.config = SampleConfig.from_dict(json.loads(h.attrs["config"]))
        self.provenance: dict[str, Any] = json.loads(h.attrs["provenance"])
        self.oracle: dict[str, Any] = json.loads(h.attrs["oracle"])
        self.labels = h["labels"][()]
        self.annulus = h["annulus"][()]
        self.x, self.y = h["x"][()], h["y"][()]
        self.flux = h["flux"][()]
        self.group = h["group"][()]
        self.augmented = h["augmented"][()]
        self.ks = h["annuli/ks"][()]
        self.r_in_px, self.r_out_px = h["annuli/r_in_px"][()], h["annuli/r_out_px"][()]
        self.flux_range = h["annuli/flux_range"][()]
        self.sample_shape: tuple[int, ...] = tuple(h["samples"].shape[1:])
        self.snr_curves: np.ndarray | None = h["snr_curves"][()] if "snr_curves" in h else None
        rule = h.attrs.get("snr_curves") if self.snr_curves is not None else None
        self.snr_curves_rule: str | None = None if rule is None else str(rule)

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(self.labels.size)

    def __enter__(self) -> SampleFile:
        """Return the open file."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the file."""
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._h5.close()

    def require_snr_curves(self, *, model: str | None = None) -> np.ndarray:
        """Return the S/N curves, or refuse a file without them or made by another rule, with the fix (re-run ``sodinn samples``).

        Parameters
        ----------
        model : str, optional
            The model that needs them, named in the message.

        Returns
        -------
        ndarray of float32, shape (n, K)
            :attr:`snr_curves`.

        Raises
        ------
        SettingError
            If the file has no S/N curves, or curves made by another rule than
            :data:`~sodinn.mlar.features.SNR_CURVES` (made by an older sodinn: before issue 14 the
            curves counted known sources in their noise apertures).
        """
        who = f"model {model!r}" if model else "this model"
        if self.snr_curves is None:
            raise SettingError(f"{who} needs the S/N curves of the samples, but {self.path} has none (made by an older "
                               "sodinn); re-run `sodinn samples` to make a sample file with them, or train a patch-only "
                               "{model}", model="sodinn")
        if self.snr_curves_rule != SNR_CURVES:
            raise SettingError(f"{who} needs the S/N curves of the samples made as {SNR_CURVES!r}, but {self.path} holds "
                               f"curves made as {self.snr_curves_rule!r} (an older sodinn, whose curves counted known "
                               "sources in their noise apertures); re-run `sodinn samples` to remake the file, or train a "
                               "patch-only {model}", model="sodinn")
        return self.snr_curves

    def read(self, indices: Sequence[int] | np.ndarray, *, normalize: bool = False) -> np.ndarray:
        """Read the samples at ``indices`` (any order, repeats allowed).

        Parameters
        ----------
        indices : sequence of int or ndarray of int, shape (m,)
            Sample numbers in ``[0, len(self))``.
        normalize : bool
            Apply :func:`~sodinn.mlar.samples.minmax_normalize` (what models see); default raw.

        Returns
        -------
        ndarray of float32, shape (m, K, P, P)
            The samples, in the order of ``indices``.

        Raises
        ------
        IndexError
            If an index is outside ``[0, len(self))``.
        """
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            msg = f"indices must lie in [0, {len(self)}); got {idx.min()}..{idx.max()}"
            raise IndexError(msg)
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        unique, inverse = np.unique(sorted_idx, return_inverse=True)
        data = self._h5["samples"][unique] if unique.size else np.zeros((0, *self.sample_shape), np.float32)
        out = np.empty((idx.size, *self.sample_shape), dtype=np.float32)
        out[order] = data[inverse]
        return minmax_normalize(out) if normalize else out

    def iter_batches(
        self,
        batch_size: int,
        *,
        indices: np.ndarray | None = None,
        shuffle: bool = False,
        seed: int | None = None,
        normalize: bool = True,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(samples, labels)`` batches, reading only one batch at a time from disk.

        Parameters
        ----------
        batch_size : int
            Samples per batch (the last one may be smaller).
        indices : ndarray of int, optional
            Samples to read (default: all, in file order).
        shuffle : bool
            Permute ``indices`` first.
        seed : int, optional
            Seed of the permutation.
        normalize : bool
            Apply :func:`~sodinn.mlar.samples.minmax_normalize` (default).

        Yields
        ------
        samples : ndarray of float32, shape (b, K, P, P)
            A batch of samples.
        labels : ndarray of int8, shape (b,)
            Their labels.

        Raises
        ------
        IndexError
            If an index is outside ``[0, len(self))``.
        """
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        if shuffle:
            idx = np.random.default_rng(seed).permutation(idx)
        for start in range(0, idx.size, batch_size):
            part = idx[start : start + batch_size]
            yield self.read(part, normalize=normalize), self.labels[part]


def _write(annuli: list[AnnulusSamples], config: SampleConfig, provenance: dict, oracle: dict, out: Path) -> Path:
    import h5py

    n = sum(len(a.labels) for a in annuli)
    shape = annuli[0].samples.shape[1:]
    with atomic_path(out) as tmp, h5py.File(tmp, "w", track_order=True) as h:
        h.attrs["format"] = FORMAT
        h.attrs["config"] = json.dumps(config.to_dict(), sort_keys=True)
        h.attrs["config_sha256"] = config.digest()
        h.attrs["provenance"] = json.dumps(provenance, sort_keys=True, default=str)
        h.attrs["oracle"] = json.dumps(oracle, sort_keys=True)
        h.attrs["normalization"] = "raw residuals; per k-slice min-max to [0, 1] when read (SPEC §3)"
        ds = h.create_dataset("samples", shape=(n, *shape), dtype=np.float32,
                              chunks=(max(1, min(256, n)), *shape), compression="gzip", compression_opts=4,
                              shuffle=True, track_times=False)
        start = 0
        for a in annuli:
            ds[start : start + len(a.labels)] = a.samples
            start += len(a.labels)
        for name in _FIELDS:
            h.create_dataset(name, data=np.concatenate([getattr(a, name) for a in annuli]), track_times=False)
        if all(a.snr_curves is not None for a in annuli):
            h.create_dataset("snr_curves", data=np.concatenate([a.snr_curves for a in annuli]).astype(np.float32),
                             track_times=False)
            h.attrs["snr_curves"] = SNR_CURVES
        h.create_dataset("annulus", data=np.concatenate([np.full(len(a.labels), a.index, np.int16) for a in annuli]),
                         track_times=False)
        g = h.create_group("annuli")
        g.create_dataset("r_in_px", data=[a.r_in_px for a in annuli], track_times=False)
        g.create_dataset("r_out_px", data=[a.r_out_px for a in annuli], track_times=False)
        g.create_dataset("flux_range", data=[a.flux_range for a in annuli], track_times=False)
        g.create_dataset("ks", data=np.stack([a.ks for a in annuli]), track_times=False)
    return out


def _save_part(path: Path, a: AnnulusSamples) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, index=a.index, r_in_px=a.r_in_px, r_out_px=a.r_out_px, ks=a.ks, flux_range=np.array(a.flux_range),
                 samples=a.samples, labels=a.labels, x=a.x, y=a.y, flux=a.flux, group=a.group, augmented=a.augmented,
                 **({} if a.snr_curves is None else {"snr_curves": a.snr_curves}))


def _load_part(path: Path) -> AnnulusSamples:
    with np.load(path) as z:
        return AnnulusSamples(
            index=int(z["index"]), r_in_px=float(z["r_in_px"]), r_out_px=float(z["r_out_px"]), ks=z["ks"],
            flux_range=(float(z["flux_range"][0]), float(z["flux_range"][1])), samples=z["samples"], labels=z["labels"],
            x=z["x"], y=z["y"], flux=z["flux"], group=z["group"], augmented=z["augmented"],
            snr_curves=z["snr_curves"] if "snr_curves" in z.files else None,
        )


def _atomic_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _sequence_identity(sequence: ADISequence) -> dict[str, Any]:
    import hashlib

    digest = hashlib.sha256()
    for arr in (sequence.cube, sequence.angles_deg, sequence.psf):
        digest.update(np.ascontiguousarray(arr).tobytes())
    return {"data_sha256": digest.hexdigest(), "fwhm_px": sequence.fwhm_px}
