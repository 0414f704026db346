"""What a file or folder holds, as a record (``sodinn info``): FITS files, sample files, model folders.

:func:`describe` tells the kind from the file itself (:func:`info_kind`) and returns a JSON-able dict:
shapes, value ranges and the fitted FWHM of FITS files; samples per class and annulus, ranks, flux
ranges and source checksums of a sample file; the training data, held-out metrics and versions of a
model folder (read from ``model.json``, without Keras); for both, the machine they were made on
(``platform``, :func:`sodinn._platform.platform_record`; None for files made before it); the progress of
an interrupted sample run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sodinn import _validation as v
from sodinn.adi.io import read_fits, select_hdu
from sodinn.adi.psf import fit_fwhm, psf_centroid
from sodinn.learn.artifact import METADATA_FILE, read_metadata
from sodinn.mlar.features import SNR_CURVES
from sodinn.mlar.store import SampleFile

__all__ = ["describe", "info_kind"]


def describe(path: str | Path, *, hdu: int | str | None = None, column: str | None = None) -> dict[str, Any]:
    """Describe one file or folder as a JSON-able record (see the module docstring).

    Parameters
    ----------
    path : path-like
        A FITS file, a sample file (``.h5``), a model folder (or its ``model.json``), or the
        ``.parts`` folder of an interrupted sample run.
    hdu : int or str, optional
        HDU (index or ``EXTNAME``) of a FITS file to describe (default: see
        :func:`sodinn.adi.io.select_hdu`, role ``"any"``).
    column : str, optional
        Table column of a FITS file to describe.

    Returns
    -------
    dict
        The record; ``kind`` is one of "cube", "angles", "psf/frame", "image", "samples", "model",
        "unfinished samples".

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If its kind cannot be told, or it is a damaged sodinn file.
    """
    p = Path(path)
    kind = info_kind(p)
    if kind == "model":
        return _model_info(p if p.is_dir() else p.parent)
    if kind == "samples":
        return _samples_info(p)
    if kind == "parts":
        return _parts_info(p)
    return _fits_info(p, hdu, column)


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")


def info_kind(path: Path) -> str:
    """Tell what ``sodinn info`` is looking at, from the file's name and first bytes.

    Parameters
    ----------
    path : Path
        A file or folder.

    Returns
    -------
    str
        "fits", "samples", "model" (a model folder, its ``model.json`` or its weights) or "parts"
        (the folder of an unfinished sample run).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it is none of these.
    """
    if not path.exists():
        msg = f"no such file or folder: {path}"
        raise FileNotFoundError(msg)
    if path.is_dir():
        if (path / METADATA_FILE).is_file():
            return "model"
        if (path / "state.json").is_file() and path.name.endswith(".parts"):
            return "parts"
        msg = (f"{path} is a folder without {METADATA_FILE}; sodinn info describes FITS files, sample files (.h5) "
               "and model folders written by 'sodinn train'")
        raise ValueError(msg)
    if path.name == METADATA_FILE or (path.suffix in (".keras", ".joblib") and (path.parent / METADATA_FILE).is_file()):
        return "model"
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == _HDF5_SIGNATURE or path.suffix in (".h5", ".hdf5"):
        return "samples"
    if head.startswith(b"SIMPLE") or path.name.lower().endswith(_FITS_SUFFIXES):
        return "fits"
    msg = (f"cannot tell what {path} is: sodinn info describes FITS files, sample files (.h5, from "
           "'sodinn samples') and model folders (from 'sodinn train')")
    raise ValueError(msg)


def _fits_info(path: Path, hdu: int | str | None = None, column: str | None = None) -> dict[str, Any]:
    choice = select_hdu(path, "any", hdu=hdu, column=column)
    data = read_fits(path, hdu=choice.index, column=choice.column)
    finite = np.isfinite(data)
    info: dict[str, Any] = {
        "file": str(path),
        "hdu": str(choice),
        "kind": "image",
        "shape": list(data.shape),
        "min": float(np.nanmin(data)) if finite.any() else None,
        "max": float(np.nanmax(data)) if finite.any() else None,
        "non_finite": int(data.size - finite.sum()),
    }
    squeezed = data.squeeze()
    if squeezed.ndim == 1:
        info["kind"] = "angles"
        info["n_values"] = int(squeezed.size)
        if finite.all():
            angles = v.check_angles(squeezed, name=f"angles in {path.name}")  # unwrapped, as every reader sees them
            info["field_rotation_deg"] = float(np.ptp(angles))
            info["rotation_note"] = _rotation_note(angles)
        else:
            info["field_rotation_deg"] = None
            info["rotation_note"] = None
    elif data.ndim == 2:
        info["kind"] = "psf/frame"
        try:
            info["fwhm_px"] = round(fit_fwhm(data), 4)
        except ValueError as err:
            info["fwhm_px"] = f"not fitted: {err}"
        if finite.all() and data.shape[0] == data.shape[1] and data.max() > 0:
            x, y = psf_centroid(data)  # as a PSF: where its core is, against the stamp centre N//2
            info["centroid_offset_px"] = [round(x - data.shape[1] // 2, 4), round(y - data.shape[0] // 2, 4)]
    elif data.ndim == 3:
        info["kind"] = "cube"
    return info


def _rotation_note(angles: np.ndarray) -> str | None:
    """Say when the rotation is too small for ADI at the S/N map's innermost annulus, whatever the FWHM; else None.

    At ``r = 1.5 FWHM`` a source moves ``1.5 FWHM * rotation_rad``: less than one FWHM below
    ``1 / 1.5`` rad (38.2 deg), independently of the FWHM.
    """
    rotation = float(np.ptp(angles))
    minimum = float(np.rad2deg(1.0 / v.ROTATION_RADIUS_FWHM))
    if rotation >= minimum:
        return None
    unit = " (all within +-2 pi: radians?)" if np.abs(angles).max() <= 2 * np.pi + 1e-9 else ""
    return (f"field rotation {rotation:.3g} deg is below {minimum:.3g} deg: a source {v.ROTATION_RADIUS_FWHM:g} FWHM "
            f"from the star moves less than one FWHM{unit}")


def _samples_info(path: Path) -> dict[str, Any]:
    with SampleFile(path) as f:
        config = f.config
        sequence = f.provenance.get("sequence", {})
        annuli = []
        for a in range(len(f.r_in_px)):
            here = f.annulus == a
            annuli.append({
                "r_px": [round(float(f.r_in_px[a]), 2), round(float(f.r_out_px[a]), 2)],
                "c_plus": int((f.labels[here] == 1).sum()), "c_minus": int((f.labels[here] == 0).sum()),
                "ranks": [int(k) for k in f.ks[a]],
                "flux_range": [float(x) for x in f.flux_range[a]],
            })
        n_pos = int(f.labels.sum())
        return {
            "file": str(path), "kind": "samples", "n_samples": len(f), "c_plus": n_pos, "c_minus": len(f) - n_pos,
            "augmented": int(f.augmented.sum()), "sample_shape": list(f.sample_shape), "annuli": annuli,
            "seed": config.seed, "snr_range": list(config.snr_range), "k_policy": config.k_policy,
            "known_sources_xy": [list(xy) for xy in config.known_sources_xy],
            "snr_curves": f.snr_curves_rule, "snr_curves_current": f.snr_curves_rule == SNR_CURVES,
            "fwhm_px": sequence.get("fwhm_px"), "pixel_scale_arcsec": sequence.get("pixel_scale_arcsec"),
            "sources": {k: {"file": sequence.get(f"{k}_file"), "sha256": sequence.get(f"{k}_sha256")}
                        for k in ("cube", "angles", "psf", "npz") if f"{k}_file" in sequence},
            "config_sha256": f.provenance.get("config_sha256"), "sodinn_version": f.provenance.get("sodinn_version"),
            "platform": f.provenance.get("platform"),
        }


def _model_info(folder: Path) -> dict[str, Any]:
    """Summarise a model folder's metadata (model.json; Keras is not loaded) and its training history."""
    meta = read_metadata(folder)
    metrics = meta.get("metrics", {})
    geometry = meta.get("training_geometry", {})
    info: dict[str, Any] = {
        "folder": str(folder), "kind": "model", "model": meta.get("model"),
        "weights": meta.get("weights"), "weights_present": (folder / str(meta.get("weights"))).is_file(),
        "patch_px": meta.get("patch_px"), "n_ranks": meta.get("n_ranks"), "k_policy": meta.get("k_policy"),
        "fwhm_px": meta.get("fwhm_px"), "pixel_scale_arcsec": meta.get("pixel_scale_arcsec"),
        "snr_range": meta.get("snr_range"),
        "annuli_px": [[round(a, 2), round(b, 2)] for a, b in zip(geometry.get("r_in_px", []), geometry.get("r_out_px", []))],
        "known_sources_xy": meta.get("sample_config", {}).get("known_sources_xy"),
        "test_metrics": {k: metrics.get(k) for k in ("n", "accuracy", "auc", "confusion_matrix")},
        "split": metrics.get("split"),
        "per_annulus": metrics.get("per_annulus"),
        "train_config": meta.get("train_config"),
        "training_set": meta.get("training_set"),
        "versions": meta.get("versions"),
        "platform": meta.get("platform"),
    }
    history = folder / "history.csv"
    if history.is_file():
        rows = [line.split(",") for line in history.read_text().strip().splitlines()]
        if len(rows) > 1 and "val_loss" in rows[0]:
            col = rows[0].index("val_loss")
            losses = [float(r[col]) for r in rows[1:]]
            info["epochs_run"] = len(losses)
            info["best_epoch"] = int(np.argmin(losses)) + 1
    return info


def _parts_info(folder: Path) -> dict[str, Any]:
    state = json.loads((folder / "state.json").read_text())
    return {
        "folder": str(folder), "kind": "unfinished samples",
        "annuli_done": len(list(folder.glob("annulus_*.npz"))), "annuli": len(state["oracle"]["flux_range"]),
    }
