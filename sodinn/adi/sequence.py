"""The ADI sequence: cube, parallactic angles, PSF, FWHM and pixel scale, validated together."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.geometry import frame_center
from sodinn.adi.io import file_checksum, read_angles, read_cube, read_psf
from sodinn.adi.psf import fit_fwhm, normalize_psf

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
        anywhere gives the same sequence.
    psf : ndarray, shape (p, p)
        Off-axis PSF, centred on its stamp, ``p <= N``. Kept as given (read-only);
        :attr:`psf_normalized` is the PSF with flux 1 in a 1-FWHM-diameter aperture.
    fwhm_px : float
        PSF FWHM, px; at least 0.5 and at most ``N / 4``.
    pixel_scale_arcsec : float, optional
        Plate scale, arcsec/px.
    provenance : dict
        Where the data came from (file names and SHA-256 checksums for :meth:`from_fits`); copied.

    Raises
    ------
    TypeError
        If an array is not array-like of numbers, or ``fwhm_px`` / ``pixel_scale_arcsec`` is not a
        real number.
    ValueError
        If the cube is not 3-D with square, finite frames, has fewer than 2 frames, the angles do not
        match the frames, the PSF is malformed, larger than the frames or off-centre, or the FWHM or
        the pixel scale is not a plausible positive value.

    Warns
    -----
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
        psf = v.check_psf(self.psf, frame_size=cube.shape[-1])
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
        object.__setattr__(self, "provenance", dict(self.provenance))

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
            FITS file of the off-axis PSF ``(p, p)``, or a cube of PSFs that is averaged.
        fwhm_px : float, optional
            PSF FWHM, px; default: fitted with :func:`sodinn.adi.psf.fit_fwhm`.
        pixel_scale_arcsec : float, optional
            Plate scale, arcsec/px.
        nan_policy : {"raise", "zero"}
            NaN/inf pixels of the cube: raise (default) or set them to 0 with a warning.

        Returns
        -------
        ADISequence
            Its provenance records the resolved file names, their SHA-256 checksums and whether the
            FWHM was fitted or given (``fwhm_source``).

        Raises
        ------
        FileNotFoundError
            If one of the files does not exist.
        ValueError
            If a file cannot be read or the data fail the checks of :class:`ADISequence`, or the PSF
            fit fails.

        Examples
        --------
        >>> seq = ADISequence.from_fits("cube.fits", "angles.fits", "psf.fits",
        ...                             pixel_scale_arcsec=0.0272)  # doctest: +SKIP
        """
        cube = read_cube(cube_path, nan_policy=nan_policy)
        angles = read_angles(angles_path)
        psf = read_psf(psf_path)
        fwhm = fit_fwhm(psf) if fwhm_px is None else fwhm_px
        provenance: dict[str, Any] = {"fwhm_source": "fit" if fwhm_px is None else "given"}
        for role, p in (("cube", cube_path), ("angles", angles_path), ("psf", psf_path)):
            provenance[f"{role}_file"] = str(Path(p).resolve())
            provenance[f"{role}_sha256"] = file_checksum(p)
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
            ``angles_deg_range`` (degrees), ``field_rotation_deg``, and the provenance items.
        """
        return {
            "n_frames": self.n_frames,
            "frame_size_px": self.frame_size,
            "psf_size_px": int(self.psf.shape[0]),
            "fwhm_px": self.fwhm_px,
            "pixel_scale_arcsec": self.pixel_scale_arcsec,
            "angles_deg_range": [float(self.angles_deg.min()), float(self.angles_deg.max())],
            "field_rotation_deg": self.field_rotation_deg,
            **self.provenance,
        }
