"""FITS input and output (SPEC §1).

Readers return float64 arrays and fail early, with the file name and the fix, on a missing,
unreadable or truncated file, on a wrong shape or on non-finite pixels. :func:`write_fits` writes
atomically (a temporary file in the same folder, renamed on success) with a header that records
what produced the image.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn._atomic import atomic_path
from sodinn.exceptions import PSFWarning, SodinnWarning

__all__ = [
    "PSFStamp",
    "file_checksum",
    "read_angles",
    "read_cube",
    "read_fits",
    "read_psf",
    "read_psf_stamp",
    "unwrap_angles",
    "write_fits",
]

_NAN_POLICIES = ("raise", "zero")


def read_fits(path: str | os.PathLike[str], *, hdu: int | None = None) -> np.ndarray:
    """Read the image of a FITS file as a float64 array.

    Parameters
    ----------
    path : str or path-like
        FITS file.
    hdu : int, optional
        HDU index; default: the first HDU holding data.

    Returns
    -------
    ndarray, float64
        The image data, in the shape stored in the file.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not valid FITS, is truncated, holds no image, or ``hdu`` does not exist.

    See Also
    --------
    read_cube, read_angles, read_psf : The readers that also check the shape of what they read.
    """
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyUserWarning

    p = Path(path)
    if not p.is_file():
        msg = f"FITS file not found: {p}; check the path"
        raise FileNotFoundError(msg)
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AstropyUserWarning)
            with fits.open(p, memmap=False) as hdul:
                if hdu is not None and not 0 <= hdu < len(hdul):
                    msg = f"{p} has {len(hdul)} HDU(s); hdu={hdu} does not exist"
                    raise ValueError(msg)
                hdus = list(hdul) if hdu is None else [hdul[hdu]]
                data = next((np.array(h.data, dtype=np.float64) for h in hdus if h.data is not None), None)
    except (OSError, TypeError, IndexError, KeyError, ValueError) as err:
        _raise_if_truncated(p, caught)
        if isinstance(err, ValueError) and str(err).startswith(str(p)):
            raise
        msg = f"cannot read {p} as FITS ({err}); is it a valid, complete FITS file?"
        raise ValueError(msg) from err
    _raise_if_truncated(p, caught)
    for w in caught:  # anything else astropy said goes on to the caller
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if data is None:
        msg = f"{p} holds no image data; pass the FITS file of the cube/angles/PSF"
        raise ValueError(msg)
    return data


def _raise_if_truncated(path: Path, caught: list[warnings.WarningMessage]) -> None:
    truncated = [w for w in caught if "truncated" in str(w.message)]
    if truncated:
        msg = f"cannot read {path}: {truncated[0].message}; the file is incomplete — copy it again"
        raise ValueError(msg)


def read_cube(path: str | os.PathLike[str], *, hdu: int | None = None, nan_policy: str = "raise") -> np.ndarray:
    """Read an ADI cube ``(n_frames, N, N)`` from FITS.

    Parameters
    ----------
    path : str or path-like
        FITS file of the cube.
    hdu : int, optional
        HDU index; default: the first HDU holding data.
    nan_policy : {"raise", "zero"}
        What to do with NaN/inf pixels: raise (default) or replace them by 0 with a
        :class:`~sodinn.exceptions.SodinnWarning`.

    Returns
    -------
    ndarray, shape (n_frames, N, N), float64
        The cube, square frames (SPEC §1).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file cannot be read (see :func:`read_fits`), is not a cube of square frames, holds
        NaN/inf with ``nan_policy="raise"``, or ``nan_policy`` is unknown.
    """
    nan_policy = v.check_choice(nan_policy, _NAN_POLICIES, name="nan_policy")
    data = read_fits(path, hdu=hdu)
    if nan_policy == "zero":
        bad = ~np.isfinite(data)
        if bad.any():
            warnings.warn(f"{Path(path).name}: {int(bad.sum())} NaN/inf pixel(s) set to 0", SodinnWarning, stacklevel=2)
            data[bad] = 0.0
    try:
        return v.check_cube(data, name=f"cube in {Path(path).name}")
    except ValueError as err:
        msg = f"{err} (nan_policy='zero' replaces NaN/inf by 0)" if "NaN" in str(err) else str(err)
        raise ValueError(msg) from None


def unwrap_angles(angles_deg: npt.ArrayLike) -> np.ndarray:
    """Remove ±360° jumps from a sequence of parallactic angles (e.g. 179, -179 -> 179, 181).

    Parameters
    ----------
    angles_deg : array-like, shape (n_frames,) or (n_frames, 1)
        Parallactic angles, degrees, in time order (SPEC §1).

    Returns
    -------
    ndarray, shape (n_frames,), float64
        The angles, jumps of more than 180° between consecutive frames removed by adding multiples
        of 360°.

    Raises
    ------
    TypeError
        If ``angles_deg`` is not array-like of numbers.
    ValueError
        If ``angles_deg`` is not 1-D or holds NaN/inf.

    Examples
    --------
    >>> unwrap_angles([170.0, 179.0, -178.0, -170.0]).tolist()
    [170.0, 179.0, 182.0, 190.0]
    """
    angles = v.check_angles(angles_deg)
    return np.unwrap(angles, period=360.0)


def read_angles(path: str | os.PathLike[str], *, hdu: int | None = None) -> np.ndarray:
    """Read parallactic angles (degrees) from FITS: ``(n, 1)`` is flattened, ±180° jumps unwrapped.

    Parameters
    ----------
    path : str or path-like
        FITS file of the angles.
    hdu : int, optional
        HDU index; default: the first HDU holding data.

    Returns
    -------
    ndarray, shape (n_frames,), float64
        Parallactic angles, degrees, counter-clockwise, unwrapped (SPEC §1; see :func:`unwrap_angles`).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file cannot be read (see :func:`read_fits`), is not 1-D (or ``(n, 1)``) or holds NaN/inf.
    """
    data = read_fits(path, hdu=hdu)
    return unwrap_angles(v.check_angles(data, name=f"angles in {Path(path).name}"))


@dataclass(frozen=True)
class PSFStamp:
    """An off-axis PSF read from FITS, and what was done to it on reading (:func:`read_psf_stamp`).

    Attributes
    ----------
    stamp : ndarray, shape (p, p), float64
        The PSF stamp, centred on its central pixel ``p // 2`` (SPEC §1): recentred when its centroid
        was off by more than 0.03 px (see :mod:`sodinn.adi.psf`); not normalised.
    n_averaged : int
        Number of stamps averaged into it: 1 for a ``(p, p)`` image, ``n`` for a ``(n, p, p)`` cube.
    offset_xy_px : tuple of float
        Centroid of the stamp as read (after averaging) minus the central pixel, ``(dx, dy)``, px.
    recentred : bool
        Whether :attr:`stamp` was shifted by ``-offset_xy_px`` (the offset was above 0.03 px).
    """

    stamp: np.ndarray
    n_averaged: int
    offset_xy_px: tuple[float, float]
    recentred: bool


def read_psf_stamp(path: str | os.PathLike[str], *, hdu: int | None = None) -> PSFStamp:
    """Read an off-axis PSF from FITS and say what was done to it: stamps averaged, sub-pixel recentring.

    A cube of PSFs ``(n, p, p)`` (e.g. one per IFS channel, or per exposure) is averaged over its
    first axis into one stamp, with a :class:`~sodinn.exceptions.PSFWarning` naming ``n``. The stamp is
    then checked and, when its centroid is more than 0.03 px from the central pixel, recentred by a
    sub-pixel Fourier shift (a :class:`~sodinn.exceptions.PSFWarning` gives the shift) or, beyond half
    its FWHM (at least 1 px) or too near the stamp edge, refused (see :mod:`sodinn.adi.psf`).

    Parameters
    ----------
    path : str or path-like
        FITS file of the PSF, ``(p, p)`` or ``(n, p, p)``.
    hdu : int, optional
        HDU index; default: the first HDU holding data.

    Returns
    -------
    PSFStamp
        The centred stamp, the number of stamps averaged and the centroid offset as read.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file cannot be read (see :func:`read_fits`), is not 2-D or 3-D, or the stamp is not
        square, smaller than 3x3 px, non-finite, without a positive pixel, or off-centre beyond the
        recentring limit (the message gives the offset, px).

    Warns
    -----
    PSFWarning
        If stamps were averaged, or the stamp was recentred.
    """
    data = read_fits(path, hdu=hdu)
    name = Path(path).name
    n_stamps = 1
    if data.ndim == 3:
        n_stamps = int(data.shape[0])
        if n_stamps > 1:
            warnings.warn(
                f"{name} holds {n_stamps} PSF stamps (shape {data.shape}); averaged them into one "
                f"{data.shape[1]}x{data.shape[2]} px stamp. Pass a single (p, p) stamp (e.g. the channel or "
                "the exposure matching the cube) to use it as it is",
                PSFWarning,
                stacklevel=2,
            )
        data = data.mean(axis=0)
    stamp, offset, recentred = v.center_psf(data, name=f"psf in {name}")
    return PSFStamp(stamp=stamp, n_averaged=n_stamps, offset_xy_px=(float(offset[0]), float(offset[1])),
                    recentred=recentred)


def read_psf(path: str | os.PathLike[str], *, hdu: int | None = None) -> np.ndarray:
    """Read an off-axis PSF stamp from FITS (a cube of PSFs is averaged over its first axis, with a warning).

    The stamp is centred on its central pixel on reading: recentred by a sub-pixel Fourier shift when
    its centroid is more than 0.03 px away, refused beyond the recentring limit (see
    :func:`read_psf_stamp`, which also says what was done).

    Parameters
    ----------
    path : str or path-like
        FITS file of the PSF, ``(p, p)`` or ``(n, p, p)``.
    hdu : int, optional
        HDU index; default: the first HDU holding data.

    Returns
    -------
    ndarray, shape (p, p), float64
        The centred PSF stamp (not normalised; see :func:`sodinn.adi.psf.normalize_psf`).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file cannot be read (see :func:`read_fits`), or the stamp is not square, smaller than
        3x3 px, non-finite, without a positive pixel, or off-centre beyond the recentring limit
        (SPEC §1; the message gives the offset, px).

    Warns
    -----
    PSFWarning
        If stamps were averaged, or the stamp was recentred.
    """
    return read_psf_stamp(path, hdu=hdu).stamp


def file_checksum(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 checksum of a file.

    Parameters
    ----------
    path : str or path-like
        File to hash (read in 1 MiB blocks).

    Returns
    -------
    str
        Hexadecimal digest, 64 characters.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_fits(
    path: str | os.PathLike[str],
    data: npt.ArrayLike,
    *,
    provenance: Mapping[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write an image product to FITS atomically, with a provenance header.

    The header records ``CREATOR`` (sodinn and its version), ``DATE`` (UTC) and one ``HIERARCH
    SODINN <KEY>`` card per provenance item (numbers and strings as they are; anything else as
    JSON). The file is written to a temporary name in the same folder and renamed on success, so
    an interrupted write never leaves a file that looks complete.

    Parameters
    ----------
    path : str or path-like
        Output FITS file.
    data : array-like
        Image or cube; float32, float64 and integer data are written as they are, anything else as
        float64.
    provenance : mapping, optional
        What produced the image: function, parameters, input files and checksums, seed.
    overwrite : bool
        Replace an existing file (default) or raise ``FileExistsError``.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    FileExistsError
        If the file exists and ``overwrite`` is False.
    """
    from astropy.io import fits

    from sodinn._version import __version__

    p = Path(path)
    if p.exists() and not overwrite:
        msg = f"{p} exists; pass overwrite=True or choose another name"
        raise FileExistsError(msg)
    arr = np.asarray(data)
    if arr.dtype == np.float64 or arr.dtype == np.float32 or np.issubdtype(arr.dtype, np.integer):
        pass
    else:
        arr = arr.astype(np.float64)
    header = fits.Header()
    header["CREATOR"] = (f"sodinn {__version__}", "software that wrote this file")
    header["DATE"] = (_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"), "UTC time of writing")
    for key, value in (provenance or {}).items():
        header[f"HIERARCH SODINN {str(key).upper()}"] = _header_value(value)
    with atomic_path(p) as tmp:
        fits.PrimaryHDU(data=arr, header=header).writeto(tmp, overwrite=True, checksum=True)
    return p


def _header_value(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = value.item() if hasattr(value, "item") else value
        return number if np.isfinite(number) else str(number)
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    return json.dumps(value, default=str, sort_keys=True)
