"""The ADI sequence: cube, parallactic angles, PSF, FWHM and pixel scale, validated together."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn._atomic import check_writable_output
from sodinn.adi.geometry import frame_center
from sodinn.adi.io import (
    apply_nan_policy,
    file_checksum,
    read_angles,
    read_fits,
    read_psf_stamp,
    read_vip_npz,
    select_hdu,
    write_fits,
)
from sodinn.adi.psf import fit_fwhm, normalize_psf
from sodinn.adi.sky import derotation_angles_deg
from sodinn.exceptions import SettingError

__all__ = ["ADISequence"]


@dataclass(frozen=True)
class ADISequence:
    """An angular differential imaging sequence (SPEC §1), checked on creation.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        Star-centred, square frames; finite values; at least 2 frames. Stored as a read-only float64
        copy.
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees, counter-clockwise (SPEC §1; ``(n, 1)`` is flattened), in time
        order. Stored unwrapped (jumps of more than 180 deg between frames removed by multiples of
        360 deg, as :func:`sodinn.adi.io.read_angles` does) and read-only: the same sequence wrapped
        anywhere gives the same sequence. They are the angles the frames are derotated with: the
        instrument's north offset, when one is applied (:meth:`from_fits`, :meth:`with_north_offset`),
        is included (:attr:`north_offset_deg`).
    psf : ndarray, shape (p, p)
        Off-axis PSF, centred on its stamp (pixel ``p // 2``, SPEC §1), ``p <= N``. Kept as given
        (read-only) when its centroid is within 0.03 px of that pixel; otherwise recentred by a
        sub-pixel Fourier shift with a :class:`~sodinn.exceptions.PSFWarning` (the measured offset is
        kept in :attr:`provenance` as ``psf_offset_xy_px``), or refused beyond half its FWHM (at least
        1 px; see :mod:`sodinn.adi.psf`). Every injection made from the sequence (C+ samples, the S/N
        oracle, ROC and detection limits) uses this centred stamp. :attr:`psf_normalized` is the PSF
        with flux 1 in a 1-FWHM-diameter aperture.
    fwhm_px : float
        PSF FWHM, px; at least 0.5 and at most ``N / 4``.
    pixel_scale_arcsec : float, optional
        Plate scale, arcsec/px.
    provenance : dict
        Where the data came from (file names and SHA-256 checksums for :meth:`from_fits`); copied.
        ``north_offset_deg``, when present, is the instrument offset already included in
        ``angles_deg`` (see :attr:`north_offset_deg`).
        When the PSF was recentred, ``psf_offset_xy_px`` (its centroid offset ``[dx, dy]`` as given,
        px) and ``psf_recentred`` (True) are added.

    Raises
    ------
    TypeError
        If an array is not array-like of numbers, or ``fwhm_px`` / ``pixel_scale_arcsec`` is not a
        real number.
    ValueError
        If the cube is not 3-D with square, finite frames, has fewer than 2 frames, the angles do not
        match the frames, the PSF is malformed, larger than the frames or off-centre beyond the
        recentring limit, or the FWHM or the pixel scale is not a plausible positive value.

    Warns
    -----
    PSFWarning
        If the PSF was recentred (the message gives the shift, px).
    sodinn.exceptions.RotationWarning
        If the field rotation moves a source 1.5 FWHM from the star (the centre of the innermost
        annulus of the S/N map) by less than one FWHM: angles in radians, or a sequence too short.

    See Also
    --------
    sodinn.datasets.make_adi_sequence : Simulate the five data fields of a sequence.
    sodinn.adi.binning.bin_sequence : The sequence with fewer, averaged frames.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> psf = np.exp(-np.hypot(*np.indices((9, 9)) - 4) ** 2 / 2)
    >>> seq = ADISequence(rng.normal(size=(5, 33, 33)), np.linspace(0, 40, 5), psf, fwhm_px=2.4)
    >>> seq.n_frames, seq.frame_size, seq.field_rotation_deg
    (5, 33, 40.0)
    >>> ADISequence(rng.normal(size=(5, 33, 33)), np.zeros(4), psf, fwhm_px=2.4)
    Traceback (most recent call last):
    ...
    ValueError: angles_deg has 4 values but the cube has 5 frames; pass one angle per frame
    """

    cube: np.ndarray
    angles_deg: np.ndarray
    psf: np.ndarray
    fwhm_px: float
    pixel_scale_arcsec: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Validate the fields and replace them by their checked, read-only versions."""
        cube = v.check_cube(self.cube)
        angles = v.check_angles(self.angles_deg, cube.shape[0])
        psf, offset_xy, recentred = v.center_psf(self.psf, frame_size=cube.shape[-1])
        fwhm = v.check_fwhm(self.fwhm_px, frame_size=cube.shape[-1])
        scale = None
        if self.pixel_scale_arcsec is not None:
            scale = v.check_positive(self.pixel_scale_arcsec, name="pixel_scale_arcsec")
        if cube.shape[0] < 2:
            msg = "an ADI sequence needs at least 2 frames"
            raise ValueError(msg)
        v.warn_small_rotation(angles, fwhm, v.ROTATION_RADIUS_FWHM * fwhm, stacklevel=4)
        for arr in (cube, angles, psf):
            arr.flags.writeable = False
        object.__setattr__(self, "cube", cube)
        object.__setattr__(self, "angles_deg", angles)
        object.__setattr__(self, "psf", psf)
        object.__setattr__(self, "fwhm_px", fwhm)
        object.__setattr__(self, "pixel_scale_arcsec", scale)
        provenance = dict(self.provenance)
        if recentred:
            provenance.update(psf_offset_xy_px=[round(float(d), 4) for d in offset_xy], psf_recentred=True)
        object.__setattr__(self, "provenance", provenance)

    @classmethod
    def from_fits(
        cls,
        cube_path: str | os.PathLike[str],
        angles_path: str | os.PathLike[str],
        psf_path: str | os.PathLike[str],
        *,
        fwhm_px: float | None = None,
        pixel_scale_arcsec: float | None = None,
        nan_policy: str = "raise",
        cube_hdu: int | str | None = None,
        angles_hdu: int | str | None = None,
        angles_column: str | None = None,
        psf_hdu: int | str | None = None,
        north_offset_deg: float = 0.0,
    ) -> ADISequence:
        """Read a sequence from three FITS files; the FWHM is fitted on the PSF when not given.

        Parameters
        ----------
        cube_path : str or path-like
            FITS file of the cube ``(n_frames, N, N)`` (see :func:`sodinn.adi.io.read_cube`).
        angles_path : str or path-like
            FITS file of the parallactic angles, degrees, ``(n_frames,)`` or ``(n_frames, 1)``;
            unwrapped on reading (see :func:`sodinn.adi.io.read_angles`).
        psf_path : str or path-like
            FITS file of the off-axis PSF ``(p, p)``, or a cube of PSFs that is averaged (with a
            warning); recentred if needed (see :func:`sodinn.adi.io.read_psf_stamp`).
        fwhm_px : float, optional
            PSF FWHM, px; default: fitted with :func:`sodinn.adi.psf.fit_fwhm`.
        pixel_scale_arcsec : float, optional
            Plate scale, arcsec/px.
        nan_policy : {"raise", "zero"}
            NaN/inf pixels of the cube: raise (default), or set them to 0 and drop the frames without
            any finite pixel with their angles, with a warning (see
            :func:`sodinn.adi.io.apply_nan_policy`).
        cube_hdu, angles_hdu, psf_hdu : int or str, optional
            HDU index or ``EXTNAME`` of each file; default: found from what the HDUs hold (see
            :func:`sodinn.adi.io.select_hdu`).
        angles_column : str, optional
            Column of the angles when they are stored in a table HDU (default: ``PARANG`` or another
            name of :data:`sodinn.adi.io.ANGLE_COLUMNS`, or the table's only numeric column).
        north_offset_deg : float
            The instrument's pupil or true-north offset, degrees, added to the file's angles so that
            the derotated frames are north-up, east-left (:mod:`sodinn.adi.sky`; default 0: the
            angles as the file gives them).

        Returns
        -------
        ADISequence
            Its provenance records the resolved file names, their SHA-256 checksums, the HDU (and
            column) each array was read from (``cube_hdu``, ...), the frames dropped by the NaN policy
            (``dropped_frames``) and whether the FWHM was fitted or given (``fwhm_source``);
            ``psf_averaged_stamps`` (the number of stamps averaged) when the PSF file holds a cube of
            them, ``psf_offset_xy_px`` and ``psf_recentred`` when the PSF was recentred, and
            ``north_offset_deg`` (always).

        Raises
        ------
        FileNotFoundError
            If one of the files does not exist.
        ValueError
            If a file cannot be read or the data fail the checks of :class:`ADISequence`, or the PSF
            fit fails; a :class:`~sodinn.exceptions.SettingError` names the parameter that fixes it
            (``nan_policy``, ``cube_hdu``, ...).

        Warns
        -----
        PSFWarning
            If PSF stamps were averaged, or the PSF was recentred.

        Examples
        --------
        >>> seq = ADISequence.from_fits("cube.fits", "angles.fits", "psf.fits",
        ...                             pixel_scale_arcsec=0.0272)  # doctest: +SKIP
        """
        where = {}
        for role, path, hdu, column in (("cube", cube_path, cube_hdu, None),
                                        ("angles", angles_path, angles_hdu, angles_column),
                                        ("psf", psf_path, psf_hdu, None)):
            try:
                where[role] = select_hdu(path, role, hdu=hdu, column=column)
            except SettingError as err:  # name the parameter of this method
                raise err.renamed(hdu=f"{role}_hdu", column="angles_column") from None
        try:
            raw = read_fits(cube_path, hdu=where["cube"].index)
        except SettingError as err:
            raise err.renamed(hdu="cube_hdu") from None
        angles = read_angles(angles_path, hdu=where["angles"].index, column=where["angles"].column)
        cube, angles, dropped = apply_nan_policy(raw, angles, nan_policy, name=f"cube in {Path(cube_path).name}")
        try:
            psf_read = read_psf_stamp(psf_path, hdu=where["psf"].index)
        except SettingError as err:
            raise err.renamed(hdu="psf_hdu") from None
        psf = psf_read.stamp
        fwhm = fit_fwhm(psf) if fwhm_px is None else fwhm_px
        angles = derotation_angles_deg(angles, north_offset_deg)
        provenance: dict[str, Any] = {"fwhm_source": "fit" if fwhm_px is None else "given",
                                      "north_offset_deg": float(north_offset_deg)}
        if psf_read.n_averaged > 1:
            provenance["psf_averaged_stamps"] = psf_read.n_averaged
        if psf_read.recentred:
            provenance.update(psf_offset_xy_px=[round(d, 4) for d in psf_read.offset_xy_px], psf_recentred=True)
        for role, p in (("cube", cube_path), ("angles", angles_path), ("psf", psf_path)):
            provenance[f"{role}_file"] = str(Path(p).resolve())
            provenance[f"{role}_sha256"] = file_checksum(p)
            provenance[f"{role}_hdu"] = str(where[role])
        if dropped.size:
            provenance["dropped_frames"] = [int(i) for i in dropped]
        return cls(cube, angles, psf, fwhm, pixel_scale_arcsec, provenance)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.cube.shape[0])

    @property
    def frame_size(self) -> int:
        """Frame side N, px."""
        return int(self.cube.shape[-1])

    @property
    def center_yx(self) -> tuple[int, int]:
        """Star pixel ``(cy, cx)``."""
        return frame_center(self.cube.shape)

    @property
    def field_rotation_deg(self) -> float:
        """Total field rotation, degrees: the range of the unwrapped parallactic angles."""
        return float(self.angles_deg.max() - self.angles_deg.min())

    @property
    def north_offset_deg(self) -> float:
        """The instrument offset included in :attr:`angles_deg`, degrees (0 unless one was applied).

        Frames derotated by :attr:`angles_deg` are north-up, east-left when this is the instrument's
        pupil or true-north offset (:mod:`sodinn.adi.sky`).
        """
        return float(self.provenance.get("north_offset_deg", 0.0))

    def with_north_offset(self, north_offset_deg: float) -> ADISequence:
        """Return the sequence with the instrument offset ``north_offset_deg`` in its angles instead of the present one.

        Parameters
        ----------
        north_offset_deg : float
            Pupil or true-north offset, degrees, added to the parallactic angles (:mod:`sodinn.adi.sky`).

        Returns
        -------
        ADISequence
            The same data, ``angles_deg`` shifted by ``north_offset_deg - self.north_offset_deg``,
            and ``provenance["north_offset_deg"]`` set.

        Raises
        ------
        TypeError, ValueError
            If ``north_offset_deg`` is not a finite real number.

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> psf = np.exp(-np.hypot(*np.indices((9, 9)) - 4) ** 2 / 2)
        >>> seq = ADISequence(rng.normal(size=(5, 33, 33)), np.linspace(0, 40, 5), psf, fwhm_px=2.4)
        >>> seq.with_north_offset(-104.39).angles_deg[:2].tolist()
        [-104.39, -94.39]
        """
        offset = v.check_real(north_offset_deg, name="north_offset_deg")
        angles = derotation_angles_deg(self.angles_deg, offset - self.north_offset_deg)
        provenance = {**self.provenance, "north_offset_deg": offset}
        return ADISequence(self.cube, angles, self.psf, self.fwhm_px, self.pixel_scale_arcsec, provenance)

    @property
    def star_xy_px(self) -> tuple[float, float] | None:
        """Where the star was in the frames as given, ``(x, y)`` px, when :meth:`recentered` moved it to the centre; else None."""
        xy = self.provenance.get("star_xy_px")
        return None if xy is None else (float(xy[0]), float(xy[1]))

    def recentered(self, star_xy_px: npt.ArrayLike) -> ADISequence:
        """Return the sequence with the star moved from ``star_xy_px`` to the frame centre (:mod:`sodinn.adi.centering`).

        Parameters
        ----------
        star_xy_px : array-like, shape (2,)
            The star's ``(x, y)`` in the frames, px (e.g. from
            :func:`~sodinn.adi.centering.estimate_star_center`).

        Returns
        -------
        ADISequence
            Every frame shifted by a Fourier phase ramp (:func:`~sodinn.adi.centering.recenter_cube`);
            ``provenance["star_xy_px"]`` records the position (:attr:`star_xy_px`). Pixel positions in
            the new frames (known sources, candidates) are relative to the new centre.

        Raises
        ------
        TypeError
            If ``star_xy_px`` is not numeric.
        ValueError
            A :class:`~sodinn.exceptions.SettingError` naming ``star_center_xy`` if it is not one
            ``(x, y)`` pair or lies more than ``N/4`` px from the centre, or if the sequence was
            recentred already.

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> psf = np.exp(-np.hypot(*np.indices((9, 9)) - 4) ** 2 / 2)
        >>> seq = ADISequence(rng.normal(size=(5, 33, 33)), np.linspace(0, 40, 5), psf, fwhm_px=2.4)
        >>> seq.recentered((16.5, 15.8)).star_xy_px
        (16.5, 15.8)
        """
        from sodinn.adi.centering import recenter_cube

        xy = np.asarray(star_xy_px, dtype=np.float64)
        if xy.shape != (2,):
            raise SettingError(f"{{star_center_xy}} must be one (x, y) position, px; got shape {xy.shape}",
                               star_center_xy=None)
        if self.star_xy_px is not None:
            raise SettingError(f"the sequence was recentred already (from {self.star_xy_px}); set {{star_center_xy}} once",
                               star_center_xy=None)
        cube = recenter_cube(self.cube, xy)
        provenance = {**self.provenance, "star_xy_px": [round(float(c), 4) for c in xy]}
        return ADISequence(cube, self.angles_deg, self.psf, self.fwhm_px, self.pixel_scale_arcsec, provenance)

    @property
    def psf_normalized(self) -> np.ndarray:
        """The PSF scaled to flux 1 in a 1-FWHM-diameter aperture (SPEC §1)."""
        return normalize_psf(self.psf, self.fwhm_px)

    def px_to_arcsec(self, value_px: npt.ArrayLike) -> np.ndarray:
        """Convert pixels to arcsec (needs :attr:`pixel_scale_arcsec`).

        Parameters
        ----------
        value_px : array-like
            Lengths or separations, px.

        Returns
        -------
        ndarray, float64
            The same values, arcsec; same shape as ``value_px``.

        Raises
        ------
        ValueError
            If the sequence has no pixel scale.
        """
        if self.pixel_scale_arcsec is None:
            msg = "this sequence has no pixel_scale_arcsec; pass it when creating the sequence"
            raise ValueError(msg)
        return np.asarray(value_px, dtype=np.float64) * self.pixel_scale_arcsec

    def describe(self) -> dict[str, Any]:
        """Return a JSON-able summary (shapes, angles, FWHM, scale, provenance).

        Returns
        -------
        dict
            ``n_frames``, ``frame_size_px``, ``psf_size_px``, ``fwhm_px``, ``pixel_scale_arcsec``,
            ``angles_deg_range`` (degrees), ``field_rotation_deg``, ``north_offset_deg`` (the offset in
            the angles, degrees), and the provenance items.
        """
        return {
            "n_frames": self.n_frames,
            "frame_size_px": self.frame_size,
            "psf_size_px": int(self.psf.shape[0]),
            "fwhm_px": self.fwhm_px,
            "pixel_scale_arcsec": self.pixel_scale_arcsec,
            "angles_deg_range": [float(self.angles_deg.min()), float(self.angles_deg.max())],
            "north_offset_deg": self.north_offset_deg,
            "field_rotation_deg": self.field_rotation_deg,
            **self.provenance,
        }

    @classmethod
    def from_npz(
        cls,
        path: str | os.PathLike[str],
        *,
        fwhm_px: float | None = None,
        pixel_scale_arcsec: float | None = None,
        nan_policy: str = "raise",
        psf_key: str | None = None,
    ) -> ADISequence:
        """Read a sequence from a VIP ``Dataset`` saved as ``.npz`` (arrays only, never a pickle).

        The archive written by VIP's ``Dataset.save`` holds the cube, the parallactic angles (degrees,
        the same convention as sodinn's), the PSF (``psf``, else the normalised ``psfn``), and the FWHM
        and pixel scale when the dataset had them (see :func:`sodinn.adi.io.read_vip_npz`).

        Parameters
        ----------
        path : str or path-like
            The ``.npz`` file.
        fwhm_px : float, optional
            PSF FWHM, px; default: the archive's ``fwhm``, else fitted on the PSF with
            :func:`sodinn.adi.psf.fit_fwhm`.
        pixel_scale_arcsec : float, optional
            Plate scale, arcsec/px; default: the archive's ``px_scale``, if any.
        nan_policy : {"raise", "zero"}
            NaN/inf pixels of the cube, as in :meth:`from_fits`.
        psf_key : {"psf", "psfn"}, optional
            The member holding the PSF; default ``"psf"`` when present, else ``"psfn"``.

        Returns
        -------
        ADISequence
            Its provenance records the file, its SHA-256 checksum (``npz_file``, ``npz_sha256``), the PSF
            member (``psf_key``), where the FWHM and the pixel scale came from (``fwhm_source``:
            ``"npz"``, ``"given"`` or ``"fit"``), the VIP version that saved it, and what
            :meth:`from_fits` records about dropped frames and the PSF.

        Raises
        ------
        FileNotFoundError
            If the file does not exist.
        ValueError
            If the file is not a VIP ``.npz`` archive of a 3-D cube, angles and a PSF, stores one of them
            as a Python object (refused), or the data fail the checks of :class:`ADISequence`; a
            :class:`~sodinn.exceptions.SettingError` names ``nan_policy`` or ``psf_key`` when one of them
            fixes it.

        Warns
        -----
        PSFWarning
            If PSF stamps were averaged, or the PSF was recentred.

        See Also
        --------
        to_fits : Write the sequence as the three FITS files :meth:`from_fits` reads.

        Examples
        --------
        >>> seq = ADISequence.from_npz("betapic_dataset.npz")  # doctest: +SKIP
        """
        data = read_vip_npz(path, psf_key=psf_key)
        name = f"cube in {Path(path).name}"
        cube, angles, dropped = apply_nan_policy(data.cube, data.angles_deg, nan_policy, name=name)
        psf = data.psf.stamp
        if fwhm_px is not None:
            fwhm, source = fwhm_px, "given"
        elif data.fwhm_px is not None:
            fwhm, source = data.fwhm_px, "npz"
        else:
            fwhm, source = fit_fwhm(psf), "fit"
        scale = pixel_scale_arcsec if pixel_scale_arcsec is not None else data.pixel_scale_arcsec
        provenance: dict[str, Any] = {"fwhm_source": source, "npz_file": str(Path(path).resolve()),
                                      "npz_sha256": file_checksum(path), "psf_key": data.psf_key}
        if data.vip_version is not None:
            provenance["vip_version"] = data.vip_version
        if data.psf.n_averaged > 1:
            provenance["psf_averaged_stamps"] = data.psf.n_averaged
        if data.psf.recentred:
            provenance.update(psf_offset_xy_px=[round(d, 4) for d in data.psf.offset_xy_px], psf_recentred=True)
        if dropped.size:
            provenance["dropped_frames"] = [int(i) for i in dropped]
        return cls(cube, angles, psf, fwhm, scale, provenance)

    def to_fits(self, folder: str | os.PathLike[str], *, overwrite: bool = False) -> dict[str, Path]:
        """Write the sequence as FITS: ``cube.fits``, ``angles.fits`` and ``psf.fits`` in ``folder``.

        The three files are what :meth:`from_fits` (and ``sodinn COMMAND --cube --angles --psf``) read
        back: the cube ``(n_frames, N, N)``, the angles (degrees, as held: unwrapped) and the centred PSF
        stamp, float64, each written atomically by :func:`sodinn.adi.io.write_fits` with a header that
        records the FWHM (px), the pixel scale (arcsec/px) when known, and the sequence's provenance.

        Parameters
        ----------
        folder : str or path-like
            Output folder (created, with its parents, if missing).
        overwrite : bool
            Replace existing files of those names (default False: refuse before writing anything).

        Returns
        -------
        dict of str to Path
            ``{"cube": ..., "angles": ..., "psf": ...}``, the files written.

        Raises
        ------
        OSError
            If ``folder`` cannot be written (a file, no permission: the message names ``folder``).
        FileExistsError
            If one of the files exists and ``overwrite`` is False.

        Examples
        --------
        >>> ADISequence.from_npz("betapic_dataset.npz").to_fits("betapic_fits")  # doctest: +SKIP
        """
        out = check_writable_output(folder, kind="folder", name="folder")
        paths = {role: out / f"{role}.fits" for role in ("cube", "angles", "psf")}
        existing = [str(p) for p in paths.values() if p.exists()]
        if existing and not overwrite:
            msg = f"{', '.join(existing)} exist(s); pass overwrite=True or choose another folder"
            raise FileExistsError(msg)
        out.mkdir(parents=True, exist_ok=True)
        header: dict[str, Any] = {"fwhm_px": self.fwhm_px, "angles_unit": "deg, counter-clockwise from +x (VIP)"}
        if self.pixel_scale_arcsec is not None:
            header["pixel_scale_arcsec"] = self.pixel_scale_arcsec
        header.update({k: val for k, val in self.provenance.items() if k not in header})
        for role, data in (("cube", self.cube), ("angles", self.angles_deg), ("psf", self.psf)):
            write_fits(paths[role], data, provenance={"role": role, **header}, overwrite=True)
        return paths
