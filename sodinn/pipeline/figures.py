"""Figures of the products: made as ``matplotlib.figure.Figure`` objects and written atomically.

A :class:`~matplotlib.figure.Figure` made directly (not through ``pyplot``) needs no GUI backend and is
freed with its last reference, so the pipeline never picks a matplotlib backend, never opens a
window and leaves no figure behind in a notebook's state; :mod:`sodinn.plotting` draws into its axes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sodinn._atomic import atomic_path

__all__ = ["new_figure", "save_figure", "sky_axes"]


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] = (6.0, 4.5), **subplots: Any) -> tuple[Any, Any]:
    """Make a figure and its axes without ``pyplot``.

    Parameters
    ----------
    nrows, ncols : int
        Grid of axes.
    figsize : (float, float)
        Width and height, inches.
    **subplots
        Passed to :meth:`matplotlib.figure.Figure.subplots` (``squeeze``, ``sharey``, ...).

    Returns
    -------
    figure : matplotlib.figure.Figure
        The new figure (no backend, no ``pyplot`` state).
    axes : matplotlib.axes.Axes or ndarray of Axes, shape (nrows, ncols)
        As :meth:`matplotlib.figure.Figure.subplots` returns them (one Axes for a 1 x 1 grid).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **subplots)


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 100, tight: bool = True) -> Path:
    """Write ``fig`` as PNG at ``path``, atomically (a file that exists is always complete).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to write.
    path : path-like
        The PNG file (its folder is created if needed).
    dpi : int
        Resolution, dots per inch.
    tight : bool
        Apply ``tight_layout`` first.

    Returns
    -------
    Path
        ``path``.
    """
    target = Path(path)
    if tight:
        fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return target


def sky_axes(sequence: Any) -> dict[str, Any]:
    """Return the options of :func:`sodinn.plotting.plot_frame` that put a sequence's frames on sky axes.

    Offsets from the star in arcsec (in px when the sequence has no pixel scale), east left, with
    north and east arrows. The frames of the products are derotated with the sequence's angles, which
    already include its pupil or true-north offset (:attr:`sodinn.adi.sequence.ADISequence.north_offset_deg`,
    :func:`sodinn.adi.sky.derotation_angles_deg`): north is up when that offset is right, so the arrows
    are drawn for a north-up, east-left frame.

    Parameters
    ----------
    sequence : ADISequence
        The data (its ``pixel_scale_arcsec``, arcsec/px).

    Returns
    -------
    dict
        ``coords``, ``pixel_scale_arcsec`` and ``north_offset_deg`` (0: the offset is in the angles), to
        pass as keywords.
    """
    return {"coords": "sky", "pixel_scale_arcsec": sequence.pixel_scale_arcsec, "north_offset_deg": 0.0}
