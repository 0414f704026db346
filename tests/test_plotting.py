"""Figures: each plot_* function draws into the axes it is given (no pyplot) and returns them."""

from __future__ import annotations

from types import SimpleNamespace

import hypothesis
import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st

from sodinn.evaluate.contrast import classical_contrast_curve
from sodinn.plotting import (
    plot_contrast_curves,
    plot_delta_mag_curves,
    plot_flux_oracle,
    plot_frame,
    plot_roc,
    plot_snr_map,
    plot_training_history,
)

from .conftest import mean_frame, white_noise_sequence

ORACLE = {"fluxes": [[1, 2, 4]], "snrs": [[[0.5], [1.5], [3.5]]], "snr_curve": [[0.5, 1.5, 3.5]],
          "radii_px": [10.0], "flux_range": [[1.5, 3.2]]}
HISTORY = {"loss": [0.9, 0.6, 0.4], "val_loss": [1.0, 0.7, 0.5], "accuracy": [0.5, 0.7, 0.8],
           "val_accuracy": [0.45, 0.65, 0.75]}




def _roc_rows(methods=("net", "annular-5", "median"), bands=((0, "1-2"), (1, "2-3"))):
    kinds = {"net": "probability", "net-cal": "calibrated"}
    rows = []
    for b, label in bands:
        for m in methods:
            for j, t in enumerate((0.9, 0.5, 0.1)):  # not in threshold order: the plot sorts them
                rows.append({"method": m, "kind": kinds.get(m, "snr"), "band": b, "band_lambda_d": label,
                             "threshold": t, "tpr": 0.2 * (j + 1) + 0.1 * b, "mean_fp": float(j)})
    return rows


def _limits():
    return SimpleNamespace(methods=["net", "annular-5"], models=["net"], radii_px=np.array([8.0, 12.0, 16.0]),
                           flux_limit={"net": np.array([40.0, 20.0, 10.0]), "annular-5": np.array([80.0, 30.0, 15.0])},
                           tpr_target=0.95, lambda_d_px=4.0)


def test_flux_oracle_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = plot_flux_oracle(ORACLE)
    assert ax.get_xscale() == "log" and len(ax.lines) >= 3
    plt.close(ax.get_figure(root=True))


def test_plot_contrast_curves():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seq = white_noise_sequence()
    curve = classical_contrast_curve(seq, radii_px=[6.0, 10.0, 16.0], reduce=mean_frame, n_azimuths=1)
    ax = plot_contrast_curves(curve, star_flux=100.0)
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "contrast"
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), curve.flux_limit / 100.0)
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), curve.radii_px)
    assert [a.get_xlabel() for a in ax.child_axes] == ["separation [λ/D]"]
    plt.close(ax.get_figure(root=True))
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_contrast_curves()


def _draw_every_plot():
    """Call every plot_* function with the axes of a pyplot-free Figure; return (given, returned) pairs."""
    from matplotlib.figure import Figure

    frame = np.arange(81, dtype=float).reshape(9, 9) - 40
    pairs = []
    ax = Figure().subplots()
    pairs.append((ax, plot_frame(frame, ax=ax, title="frame", circles_xy=[(4.0, 5.0)])))
    ax = Figure().subplots()
    pairs.append((ax, plot_snr_map(frame / 8, ax=ax)))
    ax = Figure().subplots()
    pairs.append((ax, plot_flux_oracle(ORACLE, ax=ax)))
    axes = Figure().subplots(1, 2)
    pairs.append((list(axes), list(plot_training_history(HISTORY, axes=axes))))
    axes = list(Figure().subplots(1, 2))
    pairs.append((axes, list(plot_roc(_roc_rows(), axes=axes))))
    ax = Figure().subplots()
    pairs.append((ax, plot_contrast_curves(limits=_limits(), ax=ax)))
    ax = Figure().subplots()
    table = {"curve": ["classical", "classical"], "method": ["annular-10"] * 2, "sep_arcsec": [0.1, 0.2], "delta_mag": [8.0, 10.0]}
    pairs.append((ax, plot_delta_mag_curves(table, ax=ax)))
    return pairs


def test_every_plot_draws_into_given_axes_without_pyplot():
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    import sodinn.plotting

    before = plt.get_fignums()
    pairs = _draw_every_plot()
    assert plt.get_fignums() == before  # no pyplot figure made
    assert len(pairs) == len([n for n in sodinn.plotting.__all__ if n.startswith("plot_")])
    for given, returned in pairs:
        assert returned is given if isinstance(given, Axes) else all(a is b for a, b in zip(returned, given))
        for ax in [given] if isinstance(given, Axes) else given:
            assert ax.lines or ax.images  # something was drawn
            assert not ax.get_figure(root=True).canvas.manager  # still a plain Figure, not a pyplot one


def test_plot_frame_shows_the_frame_with_the_origin_at_the_lower_left():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    frame = np.arange(12.0).reshape(3, 4)
    plot_frame(frame, ax=ax, title="t", vmin=0, vmax=5, circles_xy=[(1, 2), (3, 0)], label="counts")
    image = ax.images[0]
    assert image.origin == "lower" and image.get_clim() == (0, 5)
    np.testing.assert_array_equal(image.get_array(), frame)
    assert len(ax.patches) == 2 and ax.patches[0].center == (1, 2)
    assert ax.get_title() == "t" and (ax.get_xlabel(), ax.get_ylabel()) == ("x [px]", "y [px]")
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "counts"  # the colour bar
    with pytest.raises(ValueError, match=r"frame must be 2-D; got shape \(2, 3, 4\)"):
        plot_frame(np.zeros((2, 3, 4)), ax=Figure().subplots())


def test_plot_snr_map_is_symmetric_about_zero():
    from matplotlib.figure import Figure

    smap = np.array([[-2.0, 1.0], [7.5, 0.0]])
    assert plot_snr_map(smap, ax=Figure().subplots()).images[0].get_clim() == (-7.5, 7.5)
    assert plot_snr_map(smap / 10, ax=Figure().subplots()).images[0].get_clim() == (-5.0, 5.0)  # at least ±5
    assert plot_snr_map(smap, ax=Figure().subplots(), limit=3).images[0].get_clim() == (-3.0, 3.0)


def test_plot_roc_draws_one_line_per_method_per_band():
    from matplotlib.figure import Figure

    rows = _roc_rows(methods=("net", "net-cal", "annular-5", "median"))
    axes = list(Figure().subplots(1, 2))
    plot_roc(rows, axes=axes)
    for b, ax in enumerate(axes):
        assert [line.get_label() for line in ax.lines] == ["net", "net-cal", "annular-5", "median"]
        assert [line.get_linestyle() for line in ax.lines] == ["-", ":", "--", "--"]
        for line in ax.lines:
            np.testing.assert_allclose(line.get_xdata(), [2.0, 1.0, 0.0])  # sorted by threshold: 0.1, 0.5, 0.9
            np.testing.assert_allclose(line.get_ydata(), [0.6 + 0.1 * b, 0.4 + 0.1 * b, 0.2 + 0.1 * b])
        assert ax.get_title() == ("1-2 λ/D" if b == 0 else "2-3 λ/D") and ax.get_xscale() == "symlog"
    assert axes[0].get_ylabel() == "true positive rate" and axes[-1].get_legend() is not None  # beside the last panel
    labels = [t.get_text() for t in axes[0].texts]
    assert labels == ["0.1", "0.5", "0.9"]  # the four curves coincide: their thresholds are written once, not four times


def test_plot_training_history_plots_loss_and_accuracy():
    from matplotlib.figure import Figure

    axes = Figure().subplots(1, 2)
    plot_training_history(HISTORY, axes=axes)
    for ax, key in zip(axes, ("loss", "accuracy")):
        assert ax.get_ylabel() == key and ax.get_xlabel() == "epoch"
        assert [line.get_label() for line in ax.lines] == ["train_" + key, "val_" + key, "kept: epoch 3"]
        for line, prefix in zip(ax.lines, ("", "val_")):
            np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
            np.testing.assert_array_equal(line.get_ydata(), HISTORY[prefix + key])
    axes = Figure().subplots(1, 2)
    plot_training_history({"loss": [1.0, 0.5]}, axes=axes)  # no validation, no accuracy
    assert len(axes[0].lines) == 1 and not axes[1].lines and axes[1].get_legend() is None


def test_plot_contrast_curves_of_detection_limits():
    from matplotlib.figure import Figure

    limits = _limits()
    ax = plot_contrast_curves(limits=limits, ax=Figure().subplots())
    assert [line.get_label() for line in ax.lines] == ["net, 95% TPR", "annular-5, 95% TPR"]
    assert [line.get_linestyle() for line in ax.lines] == ["-", "--"]  # models solid, baselines dashed
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [80.0, 30.0, 15.0])
    assert ax.get_ylabel() == "flux [normalised PSF units]"
    top = ax.child_axes[0]
    assert top.get_xlabel() == "separation [λ/D]"
    with pytest.raises(ValueError, match=r"star_flux must be > 0; got 0"):
        plot_contrast_curves(limits=limits, star_flux=0, ax=Figure().subplots())


# --- figures an observer can put in a talk (issue 15) ---------------------------------------------------------------


def _render(fig):
    """Draw ``fig`` on an Agg canvas (no pyplot) so that text and legend extents are known; return the renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _direction_deg(annotation):
    """Direction, degrees counter-clockwise from +x, from an arrow's origin (xy) to its label (xytext), axes fraction."""
    (x0, y0), (x1, y1) = annotation.xy, annotation.xyann
    return np.degrees(np.arctan2(y1 - y0, x1 - x0))


def test_sky_axes_are_arcsec_offsets_from_the_star_east_left_with_north_and_east_arrows():
    from matplotlib.figure import Figure

    frame = np.zeros((64, 64))  # even N: the star is at pixel (32, 32)
    ax = plot_frame(frame, ax=Figure().subplots(), coords="sky", pixel_scale_arcsec=0.01)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Δα (arcsec)", "Δδ (arcsec)")
    left, right = ax.get_xlim()
    assert left > right  # Δα increases to the left: east left
    np.testing.assert_allclose(ax.images[0].get_extent(), [0.325, -0.315, -0.325, 0.315])
    arrows = {t.get_text(): t for t in ax.texts}
    assert set(arrows) == {"N", "E"}
    np.testing.assert_allclose(_direction_deg(arrows["N"]), 90.0, atol=1e-9)  # north up
    np.testing.assert_allclose(_direction_deg(arrows["E"]), 180.0, atol=1e-9)  # east left
    odd = plot_frame(np.zeros((63, 63)), ax=Figure().subplots(), coords="sky", pixel_scale_arcsec=1.0)
    np.testing.assert_allclose(odd.images[0].get_extent(), [31.5, -31.5, -31.5, 31.5])  # (N - 1) / 2 = 31
    no_scale = plot_frame(frame, ax=Figure().subplots(), coords="sky")
    assert (no_scale.get_xlabel(), no_scale.get_ylabel()) == ("Δα (px)", "Δδ (px)")  # pixels, said in the label


@settings(max_examples=25, deadline=None)
@hypothesis.given(n=st.integers(8, 80), x=st.floats(0, 1), y=st.floats(0, 1), scale=st.floats(0.001, 0.5),
       offset=st.floats(-720, 720))
def test_candidates_and_truth_land_on_their_sky_offsets_and_the_arrows_turn_with_the_north_offset(n, x, y, scale, offset):
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    x_px, y_px = x * (n - 1), y * (n - 1)
    ax = plot_frame(np.zeros((n, n)), ax=Figure().subplots(), coords="sky", pixel_scale_arcsec=scale,
                    north_offset_deg=offset, candidates_xy=[(x_px, y_px)], truth_xy=[(x_px, y_px)], circle_radius_px=2.0)
    expected = (-(x_px - n // 2) * scale, (y_px - n // 2) * scale)
    circle = next(p for p in ax.patches if isinstance(p, Circle))
    square = next(p for p in ax.patches if isinstance(p, Rectangle))
    np.testing.assert_allclose(circle.center, expected, atol=1e-9)
    assert circle.radius == pytest.approx(2.0 * scale)
    np.testing.assert_allclose(np.add(square.get_xy(), (square.get_width() / 2, square.get_height() / 2)), expected,
                               atol=1e-9)
    arrows = {t.get_text(): t for t in ax.texts if t.get_text() in ("N", "E")}
    north = _direction_deg(arrows["N"])
    assert np.cos(np.radians(north - (90.0 - offset))) == pytest.approx(1.0)
    assert np.cos(np.radians(_direction_deg(arrows["E"]) - north - 90.0)) == pytest.approx(1.0)  # east 90° from north
    if offset != 0:  # the frame's axes are no longer RA and Dec
        assert "Δα" not in ax.get_xlabel() and "arcsec" in ax.get_xlabel()


def test_candidates_are_numbered_in_table_order_and_true_companions_are_marked_distinctly():
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    cands = [(40.0, 30.0), (10.0, 12.0), (25.0, 50.0)]
    ax = plot_snr_map(np.zeros((63, 63)), ax=Figure().subplots(), coords="sky", pixel_scale_arcsec=0.0272,
                      candidates_xy=cands, truth_xy=[(10.0, 12.0)], truth_labels=["B"])
    numbers = [t for t in ax.texts if t.get_text().isdigit()]
    assert [t.get_text() for t in numbers] == ["1", "2", "3"]
    circles = [p for p in ax.patches if isinstance(p, Circle)]
    for number, circle in zip(numbers, circles):  # each number sits beside its circle
        assert np.hypot(*np.subtract(number.xyann, circle.center)) < 2 * circle.radius
    squares = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(squares) == 1 and squares[0].get_linestyle() == "--"
    assert "B" in [t.get_text() for t in ax.texts]


def test_bad_sky_options_are_refused():
    from matplotlib.figure import Figure

    with pytest.raises(ValueError, match=r"coords must be 'pixel' or 'sky'; got 'arcsec'"):
        plot_frame(np.zeros((5, 5)), ax=Figure().subplots(), coords="arcsec")
    with pytest.raises(ValueError, match=r"pixel_scale_arcsec must be a positive number; got -1"):
        plot_frame(np.zeros((5, 5)), ax=Figure().subplots(), coords="sky", pixel_scale_arcsec=-1)
    with pytest.raises(ValueError, match=r"north_offset_deg must be a finite number of degrees; got nan"):
        plot_frame(np.zeros((5, 5)), ax=Figure().subplots(), coords="sky", north_offset_deg=float("nan"))


def test_sky_frame_png_is_written_and_not_blank(tmp_path):
    from matplotlib.image import imread

    from sodinn.pipeline.figures import new_figure, save_figure

    fig, ax = new_figure(figsize=(5.0, 4.5))
    yy, xx = np.mgrid[:63, :63]
    plot_frame(np.exp(-((xx - 40) ** 2 + (yy - 30) ** 2) / 8.0), ax=ax, coords="sky", pixel_scale_arcsec=0.0272,
               candidates_xy=[(40.0, 30.0)], title="frame")
    image = imread(save_figure(fig, tmp_path / "frame.png", dpi=60))
    assert image.shape[:2] == (270, 300)
    assert image[..., :3].std() > 0.05 and len(np.unique(image[..., :3].reshape(-1, 3), axis=0)) > 50


def _crowded_roc_rows():
    """Twenty thresholds per method: the upper fifteen detect nothing (all at the origin), the rest spread out."""
    rows = []
    for m, kind in (("net", "probability"), ("annular-5", "snr")):
        for j, t in enumerate(np.linspace(0.05, 0.99, 20)):
            hit = j < 5
            rows.append({"method": m, "kind": kind, "band": 0, "band_lambda_d": "1-2", "threshold": round(float(t), 3),
                         "tpr": (5 - j) / 5 if hit else 0.0, "mean_fp": float(5 - j) if hit else 0.0})
    return rows


def test_roc_legend_stands_clear_of_the_curves_and_threshold_labels_do_not_pile_up(tmp_path):
    from matplotlib.image import imread

    from sodinn.pipeline.figures import new_figure, save_figure

    fig, grid = new_figure(1, 2, figsize=(12.0, 4.5), squeeze=False, sharey=True)
    axes = list(grid.ravel())
    rows = _crowded_roc_rows() + [{**r, "band": 1, "band_lambda_d": "2-3"} for r in _crowded_roc_rows()]
    plot_roc(rows, axes=axes, max_labels=4)
    path = save_figure(fig, tmp_path / "roc.png")
    renderer = _render(fig)
    legend = axes[-1].get_legend()
    assert legend is not None
    box = legend.get_window_extent(renderer)
    for ax in axes:
        assert not box.overlaps(ax.get_window_extent(renderer))  # outside every panel: covers no curve
    for ax in axes:
        labels = ax.texts
        assert 2 <= len(labels) <= 2 * 4  # a few per curve, at most max_labels
        at_origin = [t for t in labels if t.xy == (0.0, 0.0)]
        assert len(at_origin) <= 1  # fifteen thresholds x two methods at (0, 0): one label, not thirty
        where = ax.transAxes.inverted().transform(ax.transData.transform([t.xy for t in labels]))
        gaps = [np.hypot(*(a - b)) for i, a in enumerate(where) for b in where[i + 1:]]
        assert min(gaps) >= 0.08
    image = imread(path)
    assert image.shape[:2] == (450, 1200) and image[..., :3].std() > 0.05
    with pytest.raises(ValueError, match="max_labels and min_label_gap must be >= 0"):
        plot_roc(rows, axes=axes, max_labels=-1)


def test_training_curves_mark_the_kept_epoch(tmp_path):
    from matplotlib.image import imread

    from sodinn.pipeline.figures import new_figure, save_figure

    history = {"loss": [0.9, 0.5, 0.4, 0.35], "val_loss": [0.8, 0.45, 0.5, 0.6], "accuracy": [0.5, 0.8, 0.85, 0.9],
               "val_accuracy": [0.5, 0.78, 0.77, 0.76]}
    fig, axes = new_figure(1, 2, figsize=(10.0, 4.0))
    plot_training_history(history, axes=axes)
    for ax in axes:
        kept = [line for line in ax.lines if line.get_label() == "kept: epoch 2"]  # lowest val_loss: epoch 2
        assert len(kept) == 1 and list(kept[0].get_xdata()) == [2, 2]
        assert "kept: epoch 2" in [t.get_text() for t in ax.get_legend().get_texts()]
    image = imread(save_figure(fig, tmp_path / "curves.png", dpi=50))
    assert image.shape[:2] == (200, 500) and image[..., :3].std() > 0.05
    axes = Figure_subplots(1, 2)
    plot_training_history(history, axes=axes, best_epoch=4)
    assert [line.get_xdata()[0] for line in axes[0].lines if line.get_label().startswith("kept")] == [4]
    with pytest.raises(ValueError, match=r"best_epoch must be between 1 and 4 \(the epochs of history\); got 5"):
        plot_training_history(history, axes=Figure_subplots(1, 2), best_epoch=5)


def Figure_subplots(*grid):  # noqa: N802
    """A 1 x n grid of axes of a pyplot-free Figure."""
    from matplotlib.figure import Figure

    return Figure().subplots(*grid)


def test_plot_delta_mag_curves_inverts_delta_mag_against_arcsec():
    from astropy.table import Table
    from matplotlib.figure import Figure

    from sodinn.plotting import plot_delta_mag_curves

    table = Table({"curve": ["classical"] * 3 + ["tpr"] * 2, "method": ["annular-10"] * 3 + ["sodinn"] * 2,
                   "sep_arcsec": [0.1, 0.2, 0.3, 0.15, 0.25], "sep_lambda_d": [1.0, 2.0, 3.0, 1.5, 2.5],
                   "delta_mag": [8.0, 10.0, 11.0, 9.0, np.nan]})
    ax = Figure().subplots()
    assert plot_delta_mag_curves(table, ax=ax, title="limits") is ax
    bottom, top = ax.get_ylim()
    assert bottom > top  # fainter down
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["annular PCA-ADI (10 PC), 5σ Student-corrected", "sodinn, 95% TPR"]
    assert list(ax.get_lines()[1].get_xdata()) == [0.15]  # the NaN limit is left out
    assert ax.get_xlabel() == "separation [arcsec]" and "Δmag" in ax.get_ylabel()
    with pytest.raises(ValueError, match="misses the column"):
        plot_delta_mag_curves({"curve": []}, ax=ax)
    empty = Figure().subplots()
    plot_delta_mag_curves(Table({"curve": ["tpr"], "method": ["m"], "sep_arcsec": [0.1], "delta_mag": [np.nan]}), ax=empty)
    assert [t.get_text() for t in empty.texts] == ["no limit reached within the flux ladder"]


def test_roc_threshold_labels_keep_the_nines_that_tell_probabilities_apart():
    from sodinn.plotting import _threshold_label

    assert [_threshold_label(t) for t in (0.5, 0.95, 0.9968271, 0.99999, 0.999999)] == ["0.5", "0.95", "0.9968", "0.99999",
                                                                                        "0.999999"]
    assert [_threshold_label(t) for t in (2.25, 1.584893, 0.0398107)] == ["2.25", "1.58", "0.0398"]


def test_a_crowded_roc_legend_fits_in_columns_and_pairs_each_model_with_its_calibrated_map(tmp_path):
    """Nine models, their calibrated maps and five baselines (an ablation run): the legend fits the saved image."""
    from matplotlib.colors import same_color
    from matplotlib.image import imread

    from sodinn.pipeline.figures import new_figure, save_figure

    models = [f"net-{i}" for i in range(9)]
    methods = [m for name in models for m in (name, f"{name}-cal")] + ["median", "pca", "annular-5", "annular-10", "annular-20"]
    rows = _roc_rows(methods=methods)
    for r in rows:
        r["kind"] = "calibrated" if r["method"].endswith("-cal") else "probability" if r["method"] in models else "snr"
    fig, grid = new_figure(1, 2, figsize=(12.0, 4.5), squeeze=False, sharey=True)
    axes = list(grid.ravel())
    plot_roc(rows, axes=axes)
    path = save_figure(fig, tmp_path / "roc.png")
    renderer = _render(fig)
    legend = axes[-1].get_legend()
    assert len(legend.get_texts()) == len(methods) == 23 and legend._ncols == 2
    assert legend.get_window_extent(renderer).height <= fig.bbox.height  # no entry falls off the image
    color = {line.get_label(): line.get_color() for line in axes[0].lines}
    for name in models:
        assert same_color(color[name], color[f"{name}-cal"])
    bases = [*models, "median", "pca", "annular-5", "annular-10", "annular-20"]
    assert not any(same_color(color[a], color[b]) for i, a in enumerate(bases) for b in bases[i + 1:])
    assert imread(path).shape[0] == 450  # the columns widen the image, they do not lengthen it
