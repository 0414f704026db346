"""Temporal binning of ADI sequences: fewer, averaged frames for long sequences.

The cost of a C+ sample grows with the square (Gram matrix) to the cube (its eigen-decomposition)
of the number of frames, so a 1000-frame sequence is much cheaper binned by a few frames first.
Binning averages ``factor`` consecutive frames and gives the result the mean of their parallactic
angles. The price is smearing: during a bin the field turns by ``dtheta`` (the angle span of the
bin), so a source at separation ``r`` is averaged along an arc of length ``r * dtheta`` (radians)
— a point source becomes a short arc centred on the mean angle. Keep ``r * dtheta`` well below
the FWHM at the separations that matter (:func:`binning_smear_px` gives it); on a meridian
transit the rotation is fastest mid-sequence, so check the largest bin, not the average.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sodinn import _validation as v
from sodinn.adi.sequence import ADISequence

__all__ = ["bin_frames", "bin_sequence", "binning_smear_px"]


def bin_frames(cube: npt.ArrayLike, angles_deg: npt.ArrayLike, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Average every ``factor`` consecutive frames, and their parallactic angles.

    Parameters
    ----------
    cube : ndarray, shape (n_frames, N, N)
        Star-centred frames, in time order.
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees, unwrapped (no 360° jumps; :func:`sodinn.adi.io.read_angles` and
        :class:`sodinn.adi.sequence.ADISequence` give them so).
    factor : int
        Frames per bin, ``1 <= factor <= n_frames``. A last group of fewer frames is averaged too.

    Returns
    -------
    cube : ndarray, shape (ceil(n_frames / factor), N, N), float64
        Mean frame of each bin.
    angles_deg : ndarray, shape (ceil(n_frames / factor),)
        Mean angle of each bin.

    Raises
    ------
    TypeError
        If ``cube`` or ``angles_deg`` is not array-like of numbers, or ``factor`` is not an integer.
    ValueError
        If ``factor`` is out of range or the inputs are malformed.

    Examples
    --------
    >>> cube = np.arange(5.0)[:, None, None] * np.ones((5, 3, 3))
    >>> binned, angles = bin_frames(cube, [0.0, 1.0, 2.0, 3.0, 4.0], 2)
    >>> binned[:, 0, 0].tolist(), angles.tolist()
    ([0.5, 2.5, 4.0], [0.5, 2.5, 4.0])
    """
    arr = v.check_cube(cube)
    angles = v.check_angles(angles_deg, arr.shape[0])
    n = arr.shape[0]
    f = v.check_int(factor, name="factor", minimum=1)
    if f > n:
        msg = f"factor={f} is larger than the number of frames ({n}); use at most {n}"
        raise ValueError(msg)
    starts = np.arange(0, n, f)
    counts = np.diff(np.r_[starts, n])
    out = np.add.reduceat(arr, starts, axis=0) / counts[:, None, None]
    return out, np.add.reduceat(angles, starts) / counts


def binning_smear_px(angles_deg: npt.ArrayLike, factor: int, sep_px: float) -> float:
    """Return the largest arc, in px, along which binning by ``factor`` smears a source at ``sep_px``: ``r * dtheta``.

    ``dtheta`` is the angle span (radians) of the bin that spans the most.

    Parameters
    ----------
    angles_deg : ndarray, shape (n_frames,)
        Parallactic angles, degrees, unwrapped.
    factor : int
        Frames per bin, ``1 <= factor <= n_frames``.
    sep_px : float
        Separation from the star, px, ``>= 0``.

    Returns
    -------
    float
        Arc length, px; compare it with the FWHM.

    Raises
    ------
    TypeError
        If ``angles_deg`` is not array-like of numbers, ``factor`` is not an integer or ``sep_px`` not
        a real number.
    ValueError
        If ``angles_deg`` is not 1-D and finite, ``factor`` is out of range, or ``sep_px`` is negative
        or not finite.

    Examples
    --------
    >>> round(binning_smear_px(np.linspace(0.0, 90.0, 91), 4, 20.0), 3)   # 3 degrees per bin
    1.047
    """
    angles = v.check_angles(angles_deg)
    f = v.check_int(factor, name="factor", minimum=1, maximum=angles.size)
    r = v.check_real(sep_px, name="sep_px")
    if r < 0:
        msg = f"sep_px must be >= 0; got {r}"
        raise ValueError(msg)
    starts = np.arange(0, angles.size, f)
    span = np.maximum.reduceat(angles, starts) - np.minimum.reduceat(angles, starts)
    return float(r * np.deg2rad(span.max()))


def bin_sequence(sequence: ADISequence, factor: int) -> ADISequence:
    """Bin an :class:`~sodinn.adi.sequence.ADISequence` by ``factor`` (see :func:`bin_frames`).

    The PSF, FWHM and pixel scale are kept; the provenance records the binning.

    Parameters
    ----------
    sequence : ADISequence
        The sequence to bin.
    factor : int
        Frames per bin, ``1 <= factor <= n_frames``.

    Returns
    -------
    ADISequence
        ``ceil(n_frames / factor)`` mean frames and mean angles; the provenance gains
        ``binned_frames`` (the factor) and ``n_frames_unbinned``.

    Raises
    ------
    TypeError
        If ``sequence`` is not an :class:`~sodinn.adi.sequence.ADISequence` or ``factor`` is not an
        integer.
    ValueError
        If ``factor`` is out of range, or the binned sequence has fewer than 2 frames.
    """
    if not isinstance(sequence, ADISequence):
        msg = f"sequence must be an ADISequence; got {type(sequence).__name__}"
        raise TypeError(msg)
    cube, angles = bin_frames(sequence.cube, sequence.angles_deg, factor)
    provenance = {**sequence.provenance, "binned_frames": int(factor), "n_frames_unbinned": sequence.n_frames}
    return ADISequence(cube, angles, sequence.psf, sequence.fwhm_px, sequence.pixel_scale_arcsec, provenance)
