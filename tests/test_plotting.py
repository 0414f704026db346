"""Figures: each plot_* function draws into the axes it is given (no pyplot) and returns them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

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
    assert axes[0].get_ylabel() == "true positive rate" and axes[0].get_legend() is not None
    labels = [t.get_text() for t in axes[0].texts]
    assert labels == ["0.1", "0.9"] * 4  # every 2nd threshold is written


def test_plot_training_history_plots_loss_and_accuracy():
    from matplotlib.figure import Figure

    axes = Figure().subplots(1, 2)
    plot_training_history(HISTORY, axes=axes)
    for ax, key in zip(axes, ("loss", "accuracy")):
        assert ax.get_ylabel() == key and ax.get_xlabel() == "epoch"
        assert [line.get_label() for line in ax.lines] == ["train_" + key, "val_" + key]
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
