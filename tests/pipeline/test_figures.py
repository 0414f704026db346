"""Figures of the products: made without pyplot, written atomically as PNG."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sodinn.pipeline.figures import new_figure, save_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    """(width, height) in px from the IHDR chunk of a PNG file."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_new_figure_makes_no_pyplot_figure_and_returns_the_grid():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig, axes = new_figure(2, 3, figsize=(7.0, 3.0))
    assert plt.get_fignums() == before  # nothing registered with pyplot (no GUI backend, no notebook state)
    assert isinstance(fig, Figure) and tuple(fig.get_size_inches()) == (7.0, 3.0)
    assert isinstance(axes, np.ndarray) and axes.shape == (2, 3)
    assert all(isinstance(ax, Axes) and ax.figure is fig for ax in axes.ravel())
    assert len(fig.axes) == 6

    fig, ax = new_figure()
    assert isinstance(ax, Axes) and tuple(fig.get_size_inches()) == (6.0, 4.5)
    fig, grid = new_figure(1, 1, squeeze=False)  # keywords reach Figure.subplots
    assert grid.shape == (1, 1)
    fig, row = new_figure(1, 2, sharey=True)
    assert row[0].get_shared_y_axes().joined(row[0], row[1])
    assert plt.get_fignums() == before


def test_save_figure_writes_a_png_of_the_asked_size(tmp_path):
    fig, ax = new_figure(figsize=(2.0, 1.0))
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "sub" / "plot.png", dpi=50, tight=False)
    assert path == tmp_path / "sub" / "plot.png"  # the folder is created
    assert _png_size(path) == (100, 50)  # inches x dpi, no bounding-box cropping
    assert sorted(p.name for p in path.parent.iterdir()) == ["plot.png"]  # no temporary file left


def test_save_figure_that_fails_leaves_no_file_behind(tmp_path, monkeypatch):
    fig, _ = new_figure()

    def broken_savefig(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(fig, tmp_path / "plot.png")
    assert list(tmp_path.iterdir()) == []  # neither the PNG nor a temporary file

    # a file already there is left as it was
    (tmp_path / "plot.png").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(fig, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]


def test_save_figure_that_is_interrupted_mid_write_leaves_no_partial_file(tmp_path, monkeypatch):
    fig, ax = new_figure()
    ax.plot([0, 1], [0, 1])
    original = fig.savefig

    def half_written(path, **kwargs):
        original(path, **kwargs)  # the bytes reach the temporary file, then the write is interrupted
        raise KeyboardInterrupt

    monkeypatch.setattr(fig, "savefig", half_written)
    with pytest.raises(KeyboardInterrupt):
        save_figure(fig, tmp_path / "plot.png")
    assert list(tmp_path.iterdir()) == []
