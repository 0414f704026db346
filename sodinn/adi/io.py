"""FITS input and output (SPEC §1).

Readers return float64 arrays and fail early, with the file name and the fix, on a missing,
unreadable or truncated file, on a wrong shape or on non-finite pixels. :func:`write_fits` writes
atomically (a temporary file in the same folder, renamed on success) with a header that records
what produced the image.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn._atomic import atomic_path
from sodinn.exceptions import PSFWarning, SettingError, SodinnWarning

__all__ = ["ANGLE_COLUMNS", "HDUChoice", "PSFStamp", "VIPArrays", "apply_nan_policy", "file_checksum", "read_angles",
           "read_cube", "read_fits", "read_psf", "read_psf_stamp", "read_vip_npz", "select_hdu", "sky_header", "unwrap_angles",
           "write_fits"]

_NAN_POLICIES = ("raise", "zero")


@dataclass(frozen=True)
class HDUChoice:
    """Where in a FITS file an array was read: the HDU (and the table column, for angles in a table).

    Attributes
    ----------
    index : int
        HDU index (0 is the primary HDU).
    name : str
        The HDU's ``EXTNAME`` (``"PRIMARY"`` for HDU 0 without one).
    column : str or None
        The column read, when the HDU is a binary or ASCII table.
    shape : tuple of int
        Shape of the array read.
    """

    index: int
    name: str
    column: str | None
    shape: tuple[int, ...]

    def __str__(self) -> str:
        """``HDU 1 ('SCI')``, or ``HDU 1 ('ANGLES') column 'PARANG'`` for a table column."""
        where = f"HDU {self.index} ({self.name!r})"
        return where if self.column is None else f"{where} column {self.column!r}"


#: Names of table columns read as parallactic angles when the caller names none (case-insensitive)
ANGLE_COLUMNS = ("PARANG", "PARA_ANG", "PARALLACTIC_ANGLE", "PA", "ANGLE", "ANGLES", "ANGLES_DEG", "DEROT_ANGLE",
                 "ROTANG", "POSANG", "PARANGLE")

#: Dimensions of the image each role accepts, in order of preference (a PSF may be a cube of stamps)
_ROLE_NDIM = {"cube": (3,), "angles": (1,), "psf": (2, 3), "any": (3, 2, 1)}


def select_hdu(
    path: str | os.PathLike[str],
    role: str = "any",
    *,
    hdu: int | str | None = None,
    column: str | None = None,
) -> HDUChoice:
    """Find the HDU (and table column) of a FITS file that holds a cube, angles or a PSF.

    Without ``hdu``, the first HDU whose image has the dimensions of ``role`` is chosen (a cube
    stored after a small primary image is found); angles may also be a column of a table HDU
    (``PARANG`` and the other names of :data:`ANGLE_COLUMNS`, or its only numeric column).

    Parameters
    ----------
    path : str or path-like
        FITS file.
    role : {"cube", "angles", "psf", "any"}
        What the array is: a cube ``(n, N, N)`` (3-D), angles (1-D, or a table column), a PSF
        (2-D, or a 3-D cube of stamps), or any image (the one of most dimensions).
    hdu : int or str, optional
        HDU index or ``EXTNAME`` to read (default: found as above).
    column : str, optional
        Table column of the angles (default: found as above).

    Returns
    -------
    HDUChoice
        The HDU index and name, the column (tables only) and the shape of the array.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    SettingError
        If ``hdu`` does not exist or holds no array of ``role``, no HDU holds one, or a table's
        angle column cannot be told; the message lists what each HDU holds and names ``hdu`` or
        ``column``.
    ValueError
        If the file is not valid, complete FITS, or ``role`` is unknown.
    """
    p = _existing(path)
    with _open(p) as hdul:
        return _select(p, hdul, role, hdu, column)


def _select(p: Path, hdul: Any, role: str, hdu: int | str | None, column: str | None) -> HDUChoice:
    ndims = _ROLE_NDIM[v.check_choice(role, tuple(_ROLE_NDIM), name="role")]
    contents = [_hdu_content(h) for h in hdul]
    if hdu is not None:
        index = _hdu_index(hdul, hdu, p)
        return _choose(p, hdul[index], index, contents, role, ndims, column, explicit=True)
    for nd in ndims:
        for index, (kind, shape, _) in enumerate(contents):
            if kind == "image" and len(_squeezed(shape, role)) == nd:
                return _choose(p, hdul[index], index, contents, role, ndims, column, explicit=False)
    if role in ("angles", "any"):
        for index, (kind, _, _) in enumerate(contents):
            if kind == "table":
                return _choose(p, hdul[index], index, contents, role, ndims, column, explicit=False)
    images = [index for index, (kind, _, _) in enumerate(contents) if kind == "image"]
    if len(images) == 1 and len(contents) - contents.count(("empty", (), ())) == 1:
        # the file's only array: the caller's shape check says what is wrong with it
        return HDUChoice(images[0], str(hdul[images[0]].name), None, contents[images[0]][1])
    wanted = {"cube": "3-D image (n_frames, N, N)", "angles": "1-D image or table column of angles",
              "psf": "2-D image (or cube of PSF stamps)", "any": "image or table"}[role]
    raise SettingError(f"{p} holds no {wanted}: {_listing(contents)}; pass the right file, or name the HDU that "
                       "holds it with {hdu}", hdu=None)


def read_fits(
    path: str | os.PathLike[str],
    *,
    hdu: int | str | None = None,
    column: str | None = None,
) -> np.ndarray:
    """Read an image (or a table column) of a FITS file as a float64 array.

    Parameters
    ----------
    path : str or path-like
        FITS file.
    hdu : int or str, optional
        HDU index or ``EXTNAME``; default: the image of most dimensions (see :func:`select_hdu`).
    column : str, optional
        Column to read when the HDU is a table (see :func:`select_hdu`).

    Returns
    -------
    ndarray, float64
        The image data, in the shape stored in the file (a table column is 1-D).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not valid FITS, is truncated, holds no image, or ``hdu`` does not exist
        (a :class:`~sodinn.exceptions.SettingError` naming ``hdu``).

    See Also
    --------
    read_cube, read_angles, read_psf : The readers that also check the shape of what they read.
    """
    return _read(path, "any", hdu, column)[0]


def _read(path: str | os.PathLike[str], role: str, hdu: int | str | None,
          column: str | None) -> tuple[np.ndarray, HDUChoice]:
    """Read the array of ``role`` (see :func:`select_hdu`) and say where it was."""
    p = _existing(path)
    with _open(p) as hdul:
        choice = _select(p, hdul, role, hdu, column)
        h = hdul[choice.index]
        raw = h.data[choice.column] if choice.column is not None else h.data
        data = np.array(raw, dtype=np.float64)
    while data.ndim > max(_ROLE_NDIM[role]) and data.shape[0] == 1:  # e.g. a cube stored as (1, n, N, N)
        data = data[0]
    return data, choice


def _existing(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.is_file():
        msg = f"FITS file not found: {p}; check the path"
        raise FileNotFoundError(msg)
    return p


@contextlib.contextmanager
def _open(p: Path) -> Iterator[Any]:
    """Open a FITS file (no memory map); unreadable or truncated files raise ``ValueError`` naming the file."""
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyUserWarning

    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AstropyUserWarning)
            hdul = fits.open(p, memmap=False)
            try:
                hdul.readall()
            except BaseException:
                hdul.close()
                raise
    except (OSError, TypeError, IndexError, KeyError, ValueError) as err:
        _raise_if_truncated(p, caught)
        msg = f"cannot read {p} as FITS ({err}); is it a valid, complete FITS file?"
        raise ValueError(msg) from err
    try:
        _raise_if_truncated(p, caught)
    except ValueError:
        hdul.close()
        raise
    for w in caught:  # anything else astropy said goes on to the caller
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    try:
        yield hdul
    finally:
        hdul.close()


def _hdu_content(h: Any) -> tuple[str, tuple[int, ...], tuple[str, ...]]:
    """(kind, shape, numeric scalar columns) of an HDU, from its header; kind is "image", "table" or "empty".

    Choosing an HDU loads no data: only the array read (:func:`_read`) is.
    """
    from astropy.io import fits

    if isinstance(h, (fits.BinTableHDU, fits.TableHDU)):
        rows = int(h.header.get("NAXIS2", 0))
        if rows == 0 or not h.columns:
            return "empty", (), ()
        names = tuple(c.name for c in h.columns if c.dtype.shape == () and np.issubdtype(c.dtype, np.number))
        return "table", (rows,), names
    shape = tuple(int(n) for n in h.shape)
    if not shape or 0 in shape:
        return "empty", (), ()
    return "image", shape, ()


def _squeezed(shape: tuple[int, ...], role: str) -> tuple[int, ...]:
    """Return the shape as ``role`` reads it (leading length-1 axes dropped, ``(n, 1)`` angles as 1-D).

    Leading axes of length 1 beyond the role's dimensions are dropped (a cube stored as
    ``(1, n, N, N)``); angles stored as ``(n, 1)`` or ``(1, n)`` count as 1-D.
    """
    limit = max(_ROLE_NDIM[role])
    while len(shape) > limit and shape[0] == 1:
        shape = shape[1:]
    if role in ("angles", "any") and len(shape) == 2 and 1 in shape:
        return (max(shape),)
    return shape


def _hdu_index(hdul: Any, hdu: int | str, p: Path) -> int:
    if isinstance(hdu, str) and not hdu.lstrip("-").isdigit():
        names = [str(h.name).upper() for h in hdul]
        if hdu.upper() not in names:
            raise SettingError(f"{p} has no HDU named {hdu!r} (its HDUs: {', '.join(names)}); fix {{hdu}}", hdu=None)
        return names.index(hdu.upper())
    if isinstance(hdu, bool) or not isinstance(hdu, (int, np.integer, str)):
        msg = f"hdu must be an HDU index or EXTNAME; got {hdu!r}"
        raise TypeError(msg)
    index = int(hdu)
    if not 0 <= index < len(hdul):
        raise SettingError(f"{p} has {len(hdul)} HDU(s) (0 to {len(hdul) - 1}); HDU {index} does not exist; "
                           "fix {hdu}", hdu=None)
    return index


def _choose(p: Path, h: Any, index: int, contents: list[tuple[str, tuple[int, ...], tuple[str, ...]]], role: str,
            ndims: tuple[int, ...], column: str | None, *, explicit: bool) -> HDUChoice:
    kind, shape, columns = contents[index]
    name = str(h.name) or ("PRIMARY" if index == 0 else "")
    where = f"HDU {index} of {p.name}"
    if kind == "empty":
        raise SettingError(f"{where} holds no data ({_listing(contents)}); name another one with {{hdu}}", hdu=None)
    if kind == "table":
        if role not in ("angles", "any"):
            raise SettingError(f"{where} is a table with columns {', '.join(h.columns.names)}, not "
                               f"{'a cube' if role == 'cube' else 'an image'}; name the HDU of the image with {{hdu}} "
                               f"({_listing(contents)})", hdu=None)
        return HDUChoice(index, name, _angle_column(where, h, columns, column), shape)
    if column is not None:
        raise SettingError(f"{where} is an image, not a table; {{column}} applies to angles stored in a table",
                           column=None)
    if explicit and len(_squeezed(shape, role)) not in ndims:
        dims = "x".join(map(str, shape))
        hint = (" (several channels or wavelengths? save the one to use, e.g. data[0], to its own file)"
                if len(_squeezed(shape, role)) > max(ndims) else "")
        if sum(kind != "empty" for kind, _, _ in contents) == 1:  # no other HDU to name
            raise ValueError(f"{where} holds a {len(shape)}-D image ({dims}), not {_ROLE_WORDS[role]}{hint}")
        raise SettingError(f"{where} holds a {len(shape)}-D image ({dims}), not {_ROLE_WORDS[role]}{hint}; "
                           f"{_listing(contents)}; fix {{hdu}}", hdu=None)
    return HDUChoice(index, name, None, shape)


_ROLE_WORDS = {"cube": "a 3-D cube", "angles": "1-D angles", "psf": "a 2-D PSF (or a cube of stamps)",
               "any": "an image of 1 to 3 dimensions"}


def _angle_column(where: str, h: Any, numeric: tuple[str, ...], column: str | None) -> str:
    names = list(h.columns.names)
    if column is not None:
        match = [n for n in names if n.upper() == column.upper()]
        if not match:
            raise SettingError(f"{where} is a table with columns {', '.join(names)}; it has no column {column!r}; "
                               "fix {column}", column=None)
        if match[0] not in numeric:
            raise SettingError(f"column {match[0]!r} of {where} is not a column of numbers; fix {{column}}",
                               column=None)
        return match[0]
    known = [n for n in numeric if n.upper() in ANGLE_COLUMNS]
    if len(known) == 1:
        return known[0]
    if len(numeric) == 1:
        return numeric[0]
    raise SettingError(f"{where} is a table with columns {', '.join(names)}; name the column of the parallactic "
                       "angles with {column}", column=None)


def _listing(contents: list[tuple[str, tuple[int, ...], tuple[str, ...]]]) -> str:
    """Say what each HDU holds, for messages: ``HDU 0: 2-D image 5x5; HDU 1: table with columns PARANG``."""
    parts = []
    for index, (kind, shape, columns) in enumerate(contents):
        if kind == "image":
            parts.append(f"HDU {index}: {len(shape)}-D image {'x'.join(map(str, shape))}")
        elif kind == "table":
            parts.append(f"HDU {index}: table of {shape[0]} rows with numeric columns {', '.join(columns) or 'none'}")
        else:
            parts.append(f"HDU {index}: empty")
    return "; ".join(parts)


def _raise_if_truncated(path: Path, caught: list[warnings.WarningMessage]) -> None:
    truncated = [w for w in caught if "truncated" in str(w.message)]
    if truncated:
        msg = f"cannot read {path}: {truncated[0].message}; the file is incomplete — copy it again"
        raise ValueError(msg)


def read_cube(path: str | os.PathLike[str], *, hdu: int | str | None = None, nan_policy: str = "raise") -> np.ndarray:
    """Read an ADI cube ``(n_frames, N, N)`` from FITS.

    Parameters
    ----------
    path : str or path-like
        FITS file of the cube.
    hdu : int or str, optional
        HDU index or ``EXTNAME``; default: the first HDU holding a 3-D image (see :func:`select_hdu`).
    nan_policy : {"raise", "zero"}
        What to do with NaN/inf pixels: raise (default) or replace them by 0 with a
        :class:`~sodinn.exceptions.SodinnWarning`. A frame without any finite pixel is refused
        here (its angle must go with it): :meth:`sodinn.adi.sequence.ADISequence.from_fits` and
        :func:`apply_nan_policy` drop such frames with their angles.

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
        NaN/inf with ``nan_policy="raise"`` (a :class:`~sodinn.exceptions.SettingError` naming
        ``nan_policy``), holds a frame without finite pixels, or ``nan_policy`` is unknown.
    """
    nan_policy = v.check_choice(nan_policy, _NAN_POLICIES, name="nan_policy")
    data, _ = _read(path, "cube", hdu, None)
    cube = v.check_cube(data, name=f"cube in {Path(path).name}", allow_nonfinite=True)
    empty = _empty_frames(cube)
    if empty.size and nan_policy == "zero":
        msg = (f"cube in {Path(path).name}: frame(s) {_indices(empty)} hold no finite pixel; read the sequence with "
               "ADISequence.from_fits(..., nan_policy='zero') or apply_nan_policy, which drop them with their angles")
        raise ValueError(msg)
    return _clean(cube, nan_policy, f"cube in {Path(path).name}")


def apply_nan_policy(
    cube: npt.ArrayLike,
    angles_deg: npt.ArrayLike,
    nan_policy: str = "raise",
    *,
    name: str = "cube",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply a NaN policy to a sequence: frames without any finite pixel go with their angles.

    Parameters
    ----------
    cube : array-like, shape (n_frames, N, N)
        The frames.
    angles_deg : array-like, shape (n_frames,)
        Parallactic angles, degrees.
    nan_policy : {"raise", "zero"}
        ``"raise"``: refuse any NaN/inf pixel. ``"zero"``: drop the frames that hold no finite pixel
        (and their angles), set the other NaN/inf pixels to 0; both with a
        :class:`~sodinn.exceptions.SodinnWarning` saying what was done.
    name : str
        What the cube is called in messages (e.g. the file name).

    Returns
    -------
    cube : ndarray, shape (n_kept, N, N), float64
        The frames kept, finite.
    angles_deg : ndarray, shape (n_kept,), float64
        Their angles.
    dropped : ndarray of int
        Indices (in the input) of the frames dropped.

    Raises
    ------
    SettingError
        If the cube holds NaN/inf and ``nan_policy="raise"`` (the message names ``nan_policy``), or
        no frame is left.
    ValueError
        If the cube is not 3-D with square frames, the angles do not match the frames, or
        ``nan_policy`` is unknown.
    """
    nan_policy = v.check_choice(nan_policy, _NAN_POLICIES, name="nan_policy")
    arr = v.check_cube(cube, name=name, allow_nonfinite=True)
    angles = v.check_angles(angles_deg, arr.shape[0])
    dropped = _empty_frames(arr) if nan_policy == "zero" else np.zeros(0, dtype=int)
    if dropped.size:
        if dropped.size == arr.shape[0]:
            raise SettingError(f"{name}: no frame holds a finite pixel; check the file ({{nan_policy}} cannot help)",
                               nan_policy=None)
        warnings.warn(f"{name}: dropped {dropped.size} frame(s) without any finite pixel ({_indices(dropped)}) "
                      "and their angles", SodinnWarning, stacklevel=2)
        keep = np.setdiff1d(np.arange(arr.shape[0]), dropped)
        arr, angles = arr[keep], angles[keep]
    return _clean(arr, nan_policy, name), angles, dropped


def _empty_frames(cube: np.ndarray) -> np.ndarray:
    """Return the indices of the frames without any finite pixel."""
    return np.flatnonzero(~np.isfinite(cube).reshape(cube.shape[0], -1).any(axis=1))


def _indices(indices: np.ndarray) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:10])
    return shown + (f", ... ({indices.size} in all)" if indices.size > 10 else "")


def _clean(cube: np.ndarray, nan_policy: str, name: str) -> np.ndarray:
    """Zero the NaN/inf pixels (``"zero"``, with a warning) or refuse them naming ``nan_policy``."""
    bad = ~np.isfinite(cube)
    if not bad.any():
        return cube
    if nan_policy == "zero":
        warnings.warn(f"{name}: {int(bad.sum())} NaN/inf pixel(s) set to 0", SodinnWarning, stacklevel=3)
        cube[bad] = 0.0
        return cube
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    raise SettingError(f"{name} contains {int(bad.sum())} NaN or infinite value(s) (first at index {first}); "
                       "{nan_policy} sets them to 0 and drops frames without any finite pixel", nan_policy="zero")


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


def read_angles(
    path: str | os.PathLike[str],
    *,
    hdu: int | str | None = None,
    column: str | None = None,
) -> np.ndarray:
    """Read parallactic angles (degrees) from FITS: ``(n, 1)`` is flattened, ±180° jumps unwrapped.

    Parameters
    ----------
    path : str or path-like
        FITS file of the angles: a 1-D image (or ``(n, 1)``), or a column of a table HDU.
    hdu : int or str, optional
        HDU index or ``EXTNAME``; default: the first 1-D image, else the first table (see
        :func:`select_hdu`).
    column : str, optional
        Table column of the angles; default: one named as in :data:`ANGLE_COLUMNS` (e.g.
        ``PARANG``), or the table's only numeric column.

    Returns
    -------
    ndarray, shape (n_frames,), float64
        Parallactic angles, degrees, counter-clockwise, unwrapped (SPEC §1; see :func:`unwrap_angles`).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file cannot be read (see :func:`read_fits`), holds no 1-D angles (nor a table column
        that can be told: a :class:`~sodinn.exceptions.SettingError` naming ``hdu`` or ``column``),
        or holds NaN/inf.
    """
    data, _ = _read(path, "angles", hdu, column)
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


def read_psf_stamp(path: str | os.PathLike[str], *, hdu: int | str | None = None) -> PSFStamp:
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
    hdu : int or str, optional
        HDU index or ``EXTNAME``; default: the first HDU holding a 2-D image, else a 3-D one (see
        :func:`select_hdu`).

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
    data, _ = _read(path, "psf", hdu, None)
    return _psf_stamp(data, Path(path).name, f"psf in {Path(path).name}", stacklevel=3)


def _psf_stamp(data: np.ndarray, name: str, what: str, *, stacklevel: int) -> PSFStamp:
    """Average a cube of PSF stamps (with a warning) and centre the stamp (see :func:`read_psf_stamp`)."""
    n_stamps = 1
    if data.ndim == 3:
        n_stamps = int(data.shape[0])
        drift = ""
        if n_stamps > 1:
            data, spread = _centred_stamps(data, name)
            if spread > 0:
                drift = (f" Their centroids differ by up to {spread:.2f} px: each was recentred before averaging, "
                         "so that the average is not smeared.")
            warnings.warn(
                f"{name} holds {n_stamps} PSF stamps (shape {data.shape}); averaged them into one "
                f"{data.shape[1]}x{data.shape[2]} px stamp.{drift} Pass a single (p, p) stamp (e.g. the channel or "
                "the exposure matching the cube) to use it as it is",
                PSFWarning,
                stacklevel=stacklevel,
            )
        data = data.mean(axis=0)
    stamp, offset, recentred = v.center_psf(data, name=what)
    return PSFStamp(stamp=stamp, n_averaged=n_stamps, offset_xy_px=(float(offset[0]), float(offset[1])),
                    recentred=recentred)


def _centred_stamps(stamps: np.ndarray, name: str) -> tuple[np.ndarray, float]:
    """Return the stamps, each recentred when their centroids differ by more than the tolerance, and that spread (px).

    A stamp off by more than a centring error is refused, naming it (see :func:`sodinn._validation.center_psf`).
    """
    centroids = []
    for stamp in stamps:
        if not (np.isfinite(stamp).all() and stamp.max() > 0):
            return stamps, 0.0  # the average is checked, and refused, as one stamp
        centroids.append(v.psf_centroid_xy(stamp))
    xy = np.asarray(centroids)
    spread = float(np.hypot(*(xy - xy.mean(axis=0)).T).max() * 2)
    if spread <= v.PSF_CENTRE_TOLERANCE_PX:
        return stamps, 0.0
    with warnings.catch_warnings():  # one note for the file, from the caller
        warnings.simplefilter("ignore", PSFWarning)
        centred = [v.center_psf(stamp, name=f"stamp {i} of the psf in {name}")[0] for i, stamp in enumerate(stamps)]
    return np.stack(centred), spread


def read_psf(path: str | os.PathLike[str], *, hdu: int | str | None = None) -> np.ndarray:
    """Read an off-axis PSF stamp from FITS (a cube of PSFs is averaged over its first axis, with a warning).

    The stamp is centred on its central pixel on reading: recentred by a sub-pixel Fourier shift when
    its centroid is more than 0.03 px away, refused beyond the recentring limit (see
    :func:`read_psf_stamp`, which also says what was done).

    Parameters
    ----------
    path : str or path-like
        FITS file of the PSF, ``(p, p)`` or ``(n, p, p)``.
    hdu : int or str, optional
        HDU index or ``EXTNAME``; default: the first HDU holding a 2-D image, else a 3-D one (see
        :func:`select_hdu`).

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
    header: Mapping[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write an image product to FITS atomically, with a provenance header.

    The header records ``CREATOR`` (sodinn and its version), ``DATE`` (UTC), the standard cards of
    ``header`` (e.g. ``BUNIT`` and those of :func:`sky_header`) and one ``HIERARCH SODINN <KEY>``
    card per provenance item (numbers and strings as they are; anything else as JSON). The file is
    written to a temporary name in the same folder and renamed on success, so an interrupted write
    never leaves a file that looks complete.

    Parameters
    ----------
    path : str or path-like
        Output FITS file.
    data : array-like
        Image or cube; float32, float64 and integer data are written as they are, anything else as
        float64.
    provenance : mapping, optional
        What produced the image: function, parameters, input files and checksums, seed.
    header : mapping, optional
        Standard FITS cards, keyword (8 characters at most) -> value or ``(value, comment)``.
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
    cards = fits.Header()
    cards["CREATOR"] = (f"sodinn {__version__}", "software that wrote this file")
    cards["DATE"] = (_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"), "UTC time of writing")
    for key, value in (header or {}).items():
        cards[str(key).upper()] = value
    for key, value in (provenance or {}).items():
        cards[f"HIERARCH SODINN {str(key).upper()}"] = _header_value(value)
    with atomic_path(p) as tmp:
        fits.PrimaryHDU(data=arr, header=cards).writeto(tmp, overwrite=True, checksum=True)
    return p


def sky_header(frame_size: int, *, pixel_scale_arcsec: float | None = None, north_offset_deg: float = 0.0) -> dict[str, Any]:
    """Return the FITS cards that say how a derotated frame lies on the sky (SPEC §8, :mod:`sodinn.adi.sky`).

    The frame is north-up, east-left when it was derotated with the parallactic angles plus the
    instrument's offset; ``NORTHOFF`` records the offset used (0: the angles as given, so north is up
    only if the angle file already includes it). With a pixel scale, a linear world coordinate
    system gives the offsets from the star in arcsec (axis 1 east, growing to the left; axis 2
    north), which DS9 and astropy read.

    Parameters
    ----------
    frame_size : int
        Frame side N, px; the star is at pixel ``N // 2`` (0-based; SPEC §1).
    pixel_scale_arcsec : float, optional
        Plate scale, arcsec/px.
    north_offset_deg : float
        Offset added to the parallactic angles, degrees.

    Returns
    -------
    dict
        Keyword -> ``(value, comment)``: ``ORIENT``, ``NORTHOFF``, ``STARX``, ``STARY`` (1-based,
        FITS convention) and, with a pixel scale, ``PIXSCALE`` (arcsec/px) and the WCS cards
        ``WCSNAME``, ``CTYPE1/2``, ``CUNIT1/2``, ``CRPIX1/2``, ``CRVAL1/2``, ``CDELT1/2``.

    Raises
    ------
    TypeError, ValueError
        If ``frame_size`` is not a positive integer, ``pixel_scale_arcsec`` not a number > 0 or
        ``north_offset_deg`` not a finite number.

    Examples
    --------
    >>> sky_header(101, pixel_scale_arcsec=0.0272)["CDELT1"][0]
    -0.0272
    """
    size = v.check_int(frame_size, name="frame_size", minimum=1)
    offset = v.check_real(north_offset_deg, name="north_offset_deg")
    star = float(size // 2 + 1)
    cards: dict[str, Any] = {
        "ORIENT": ("north up, east left" if offset else "north up, east left if the angles hold it",
                   "after derotation"),
        "NORTHOFF": (offset, "deg added to the parallactic angles"),
        "STARX": (star, "star position, x (1-based pixel)"),
        "STARY": (star, "star position, y (1-based pixel)"),
    }
    if pixel_scale_arcsec is not None:
        scale = v.check_positive(pixel_scale_arcsec, name="pixel_scale_arcsec")
        cards.update({
            "PIXSCALE": (scale, "arcsec per pixel"),
            "WCSNAME": ("STAR OFFSET", "offsets from the star, arcsec"),
            "CTYPE1": ("LINEAR", "offset east of the star"), "CTYPE2": ("LINEAR", "offset north of the star"),
            "CUNIT1": ("arcsec", ""), "CUNIT2": ("arcsec", ""),
            "CRPIX1": (star, "the star"), "CRPIX2": (star, "the star"),
            "CRVAL1": (0.0, ""), "CRVAL2": (0.0, ""),
            "CDELT1": (-scale, "arcsec per px; east is left"), "CDELT2": (scale, "arcsec per px; north is up"),
        })
    return cards


def _header_value(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = value.item() if hasattr(value, "item") else value
        return number if np.isfinite(number) else str(number)
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    return json.dumps(value, default=str, sort_keys=True)


# ---------------------------------------------------------------- VIP datasets saved as .npz


@dataclass(frozen=True)
class VIPArrays:
    """The arrays of a VIP ``Dataset`` saved as ``.npz`` (:func:`read_vip_npz`), before they form a sequence.

    Attributes
    ----------
    cube : ndarray, shape (n_frames, N, N), float64
        The cube as stored (NaN/inf kept: :func:`apply_nan_policy` decides).
    angles_deg : ndarray, shape (n_frames,), float64
        Parallactic angles, degrees, unwrapped (see :func:`unwrap_angles`).
    psf : PSFStamp
        The off-axis PSF stamp, averaged and centred as :func:`read_psf_stamp` does.
    psf_key : str
        The archive member the PSF was read from: ``"psf"`` (VIP's PSF as measured), else ``"psfn"``
        (VIP's normalised PSF: flux 1 in a 1-FWHM aperture, so fluxes and contrasts measured with it are
        relative to that normalisation).
    fwhm_px : float or None
        The dataset's ``fwhm``, px, or None when it was not saved (VIP saves a missing value as an
        object, which is not read).
    pixel_scale_arcsec : float or None
        The dataset's ``px_scale``, arcsec/px, or None.
    vip_version : str or None
        The VIP version that saved the file (``_vip_version``), when recorded.
    """

    cube: np.ndarray
    angles_deg: np.ndarray
    psf: PSFStamp
    psf_key: str
    fwhm_px: float | None
    pixel_scale_arcsec: float | None
    vip_version: str | None


#: Members of a VIP ``Dataset`` archive read as the PSF, in order of preference
_VIP_PSF_KEYS = ("psf", "psfn")


def read_vip_npz(path: str | os.PathLike[str], *, psf_key: str | None = None) -> VIPArrays:
    """Read a VIP ``Dataset`` saved with ``Dataset.save`` (a NumPy ``.npz`` archive): arrays only, no pickles.

    VIP (``vip_hci.objects.Dataset.save``) stores the dataset's attributes as members of the archive:
    ``cube``, ``angles`` (degrees, VIP's convention, the same as sodinn's), ``psf`` and/or ``psfn``
    (normalised), ``fwhm`` (px) and ``px_scale`` (arcsec/px); attributes that were ``None`` are
    stored as Python objects. The archive is opened with ``allow_pickle=False``: a pickled member can
    run arbitrary code when loaded, so it is never read; unused members (``cuberef``, ``wavelengths``,
    ``injections_yx``, ...) are not touched, and a ``fwhm`` or ``px_scale`` stored as an object counts
    as missing.

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file.
    psf_key : {"psf", "psfn"}, optional
        The member to read the PSF from; default ``"psf"`` when the archive holds it as an array,
        else ``"psfn"``.

    Returns
    -------
    VIPArrays
        The cube, the unwrapped angles (degrees), the centred PSF stamp and the member it came from,
        the FWHM (px) and pixel scale (arcsec/px) when saved, and the VIP version.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not a NumPy ``.npz`` archive, lacks the cube, the angles or a PSF, stores one of
        them as a Python object (pickle: refused, the message says how to save it as an array), holds
        a 4-D (IFS) cube, or its arrays fail the checks of the FITS readers (shape, angles per frame,
        NaN in the angles, PSF centring); a :class:`~sodinn.exceptions.SettingError` names ``psf_key``
        when the member it names is missing or unknown.

    Warns
    -----
    PSFWarning
        If the PSF was a cube of stamps (averaged), or was recentred.

    Examples
    --------
    >>> data = read_vip_npz("betapic_dataset.npz")  # doctest: +SKIP
    >>> data.cube.shape, data.psf_key, data.fwhm_px  # doctest: +SKIP
    ((61, 101, 101), 'psf', 4.8)
    """
    p = Path(path)
    if p.is_dir():
        msg = f"{p} is a folder; pass the .npz file of a VIP Dataset (Dataset.save)"
        raise ValueError(msg)
    if not p.is_file():
        msg = f"file not found: {p}; check the path"
        raise FileNotFoundError(msg)
    if psf_key is not None and psf_key not in _VIP_PSF_KEYS:
        raise SettingError(f"{{psf_key}} must be one of {', '.join(map(repr, _VIP_PSF_KEYS))}; got {psf_key!r}",
                           psf_key=None)
    with open(p, "rb") as fh:  # numpy leaves the file open when it is not a zip archive: read through our handle
        magic = fh.read(6)
        if magic.startswith(b"\x93NUMPY"):
            msg = f"{p} holds a single NumPy array (.npy), not a VIP Dataset archive (.npz with cube, angles and psf)"
            raise ValueError(msg)
        if not magic.startswith(b"PK"):
            msg = f"{p} is not a NumPy .npz archive (a zip file); pass the file written by VIP's Dataset.save"
            raise ValueError(msg)
        fh.seek(0)
        try:
            archive = np.load(fh, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            msg = f"cannot read {p} as a NumPy .npz archive ({err}); is it complete? pass the file written by VIP's Dataset.save"
            raise ValueError(msg) from err
        with archive:
            keys = tuple(archive.files)
            cube = _npz_array(archive, p, "cube", keys)
            angles = _npz_array(archive, p, "angles", keys)
            if psf_key is None:
                present = [k for k in _VIP_PSF_KEYS if k in keys and _npz_optional(archive, k) is not None]
                if not present:
                    _npz_array(archive, p, "psf", keys)  # raises: missing, or stored as an object
                psf_key = present[0]
            elif psf_key not in keys:
                raise SettingError(f"{p} has no member {psf_key!r} (its members: {', '.join(keys)}); fix {{psf_key}}",
                                   psf_key=None)
            psf = _npz_array(archive, p, psf_key, keys)
            fwhm = _npz_optional(archive, "fwhm")
            scale = _npz_optional(archive, "px_scale")
            version = _npz_optional(archive, "_vip_version", numeric=False)
    name = p.name
    if cube.ndim == 4:
        msg = (f"cube in {name} is 4-D {cube.shape} (an IFS cube: channels, frames, N, N); sodinn reads ADI cubes "
               "(n_frames, N, N): save one channel, e.g. Dataset(cube=dataset.cube[channel], ...)")
        raise ValueError(msg)
    cube = v.check_cube(cube, name=f"cube in {name}", allow_nonfinite=True)
    angles = v.check_angles(angles, cube.shape[0], name=f"angles in {name}")  # unwrapped, as read_angles does
    if psf.ndim not in (2, 3):
        msg = f"{psf_key} in {name} is {psf.ndim}-D {psf.shape}; a PSF is a (p, p) stamp or a (n, p, p) cube of them"
        raise ValueError(msg)
    stamp = _psf_stamp(psf, f"{psf_key} in {name}", f"{psf_key} in {name}", stacklevel=3)
    return VIPArrays(cube=cube, angles_deg=angles, psf=stamp, psf_key=psf_key,
                     fwhm_px=_npz_scalar(fwhm, "fwhm", name), pixel_scale_arcsec=_npz_scalar(scale, "px_scale", name),
                     vip_version=None if version is None else str(version))


def _npz_array(archive: Any, p: Path, key: str, keys: tuple[str, ...]) -> np.ndarray:
    """Return a numeric member of an archive as float64, or refuse: missing, pickled, or not numbers."""
    if key not in keys:
        msg = (f"{p} has no {key!r} array (its members: {', '.join(keys) or 'none'}); a VIP Dataset saved with "
               f"Dataset.save holds cube, angles and psf (or psfn): set dataset.{key} before saving")
        raise ValueError(msg)
    try:
        arr = archive[key]
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        msg = f"cannot read {key!r} in {p} ({err}); the file is damaged or incomplete: copy or save it again"
        raise ValueError(msg) from err
    except ValueError as err:  # "Object arrays cannot be loaded when allow_pickle=False"
        msg = (f"{key!r} in {p} is stored as a Python object (pickle; None when the Dataset had no {key}); sodinn "
               f"reads arrays only (allow_pickle=False), since loading a pickle can run arbitrary code: set "
               f"dataset.{key} to a numeric array before Dataset.save, or pass FITS files instead")
        raise ValueError(msg) from err
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        msg = f"{key!r} in {p} holds {arr.dtype} values, not numbers; save it as a numeric array"
        raise ValueError(msg)
    return np.array(arr, dtype=np.float64)


def _npz_optional(archive: Any, key: str, *, numeric: bool = True) -> Any:
    """Return a member, or None when it is missing or stored as an object (VIP's None); never unpickle."""
    if key not in archive.files:
        return None
    try:
        arr = archive[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error):  # an object (VIP's None), or damaged
        return None
    if numeric and not np.issubdtype(arr.dtype, np.number):
        return None
    return arr.item() if arr.ndim == 0 else arr


def _npz_scalar(value: Any, key: str, name: str) -> float | None:
    """Return a saved ``fwhm`` or ``px_scale`` as a positive float (None when missing)."""
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float64)
    if arr.size != 1:
        msg = (f"{key} in {name} holds {arr.size} values (one per IFS channel?); sodinn needs one number for an "
               "ADI sequence")
        raise ValueError(msg)
    return v.check_positive(float(arr.reshape(())), name=f"{key} in {name}")
