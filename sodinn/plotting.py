"""Figures: every function takes ``ax=None``, draws, and returns the axes; nothing is shown or saved.

matplotlib is imported inside the functions, so importing sodinn never loads it; no function picks a
backend. Given axes, a function draws into them (the products of :mod:`sodinn.pipeline` pass the axes
of a ``matplotlib.figure.Figure`` and write it); without, it makes a figure with ``pyplot`` (for
notebooks). The results plotted are duck-typed: this module imports nothing of sodinn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_contrast_curves", "plot_delta_mag_curves", "plot_flux_oracle", "plot_frame", "plot_roc", "plot_snr_map",
           "plot_training_history"]


def plot_frame(
    frame: npt.ArrayLike,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    cmap: str = "inferno",
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
    circles_xy: Sequence[tuple[float, float]] | None = None,
    circle_radius_px: float = 3.0,
    circle_color: str = "cyan",
    label: str | None = None,
    coords: str = "pixel",
    pixel_scale_arcsec: float | None = None,
    north_offset_deg: float = 0.0,
    candidates_xy: Sequence[tuple[float, float]] | None = None,
    truth_xy: Sequence[tuple[float, float]] | None = None,
    truth_labels: Sequence[str] | None = None,
) -> Axes:
    """Show a frame with the origin at the lower left (astronomical convention, y up).

    With ``coords="sky"`` the axes are offsets from the star (the frame centre, ``N // 2``) in arcsec
    (in px without a pixel scale, as the labels say): Δα increasing to the left (east-left), Δδ up,
    with north and east arrows. The frame is shown as it is (a derotated frame is north-up,
    east-left once the instrument's offset is in the angles); a ``north_offset_deg`` not yet applied
    rotates the arrows instead, and the axes are then labelled as frame offsets.

    Parameters
    ----------
    frame : array_like, shape (ny, nx)
        The image, e.g. a final frame in cube units or a probability map.
    ax : matplotlib Axes, optional
        Axes to draw into (default: a new figure).
    title : str, optional
        Axes title.
    cmap : str
        Matplotlib colour map.
    vmin, vmax : float, optional
        Colour scale limits, in the units of ``frame`` (default: its range).
    colorbar : bool
        Add a colour bar.
    circles_xy : sequence of (x, y), optional
        Positions to circle, px (array pixels, whatever ``coords``).
    circle_radius_px : float
        Radius of the circles (plain, numbered and true), px.
    circle_color : str
        Matplotlib colour of the circles.
    label : str, optional
        Label of the colour bar.
    coords : {"pixel", "sky"}
        Axes in array pixels (``x [px]``, ``y [px]``), or in offsets from the star with N/E arrows.
    pixel_scale_arcsec : float, optional
        Pixel scale, arcsec/px, for ``coords="sky"`` (default: offsets in px).
    north_offset_deg : float
        The instrument's pupil or true-north offset, degrees, when it is not in the angles the
        frame was derotated with: north then points ``90 - north_offset_deg`` degrees
        counter-clockwise from +x (0: north up, east left).
    candidates_xy : sequence of (x, y), optional
        Candidates, px: circled and numbered 1, 2, ... in this order (the rows of the candidate table).
    truth_xy : sequence of (x, y), optional
        True (injected or known) companions, px: marked with a dashed square.
    truth_labels : sequence of str, optional
        A name for each of ``truth_xy`` (e.g. "A", "B"), written below its square.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn into: x and y in px (``coords="pixel"``) or offsets from the star in arcsec
        (or px) with Δα increasing to the left (``coords="sky"``).

    Raises
    ------
    ValueError
        If ``frame`` is not 2-D, ``coords`` is not one of the two, ``pixel_scale_arcsec`` is not
        positive, or ``north_offset_deg`` is not finite.
    """
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Circle, Rectangle

    arr = np.asarray(frame, dtype=np.float64)
    if arr.ndim != 2:
        msg = f"frame must be 2-D; got shape {arr.shape}"
        raise ValueError(msg)
    to_axes = _axes_transform(arr.shape, coords, pixel_scale_arcsec, north_offset_deg)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 4.5))
    ny, nx = arr.shape
    (left, bottom), (right, top) = to_axes(-0.5, -0.5), to_axes(nx - 0.5, ny - 0.5)
    image = ax.imshow(arr, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                      extent=(left, right, bottom, top))
    scale = abs(to_axes(1.0, 0.0)[0] - to_axes(0.0, 0.0)[0])
    radius = circle_radius_px * scale
    for x, y in circles_xy or ():
        ax.add_patch(Circle(to_axes(x, y), radius, fill=False, color=circle_color, lw=1.2))
    names = list(truth_labels or [])
    for i, (x, y) in enumerate(truth_xy or ()):
        u, v = to_axes(x, y)
        ax.add_patch(Rectangle((u - 1.6 * radius, v - 1.6 * radius), 3.2 * radius, 3.2 * radius, fill=False,
                               ls="--", lw=1.2, color="lime", label="true companion"))
        if i < len(names):
            _outlined(ax.text(u, v - 1.7 * radius, names[i], color="lime", fontsize=9, fontweight="bold",
                              ha="center", va="top"))
    edge = "black" if np.dot(to_rgb(circle_color), (0.299, 0.587, 0.114)) > 0.5 else "white"  # numbers stand out
    for number, (x, y) in enumerate(candidates_xy or (), start=1):
        u, v = to_axes(x, y)
        ax.add_patch(Circle((u, v), radius, fill=False, color=circle_color, lw=1.2))
        _outlined(ax.annotate(str(number), (u, v), xytext=(u + 0.8 * radius * np.sign(right - left), v + 0.8 * radius),
                              color=circle_color, fontsize=9, fontweight="bold", ha="center", va="bottom"),
                  edge=edge)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=label)
    if title:
        ax.set_title(title)
    if coords == "pixel":
        ax.set_xlabel("x [px]")
        ax.set_ylabel("y [px]")
    else:
        unit = "arcsec" if pixel_scale_arcsec is not None else "px"
        sky = north_offset_deg == 0
        ax.set_xlabel(f"Δα ({unit})" if sky else f"−Δx ({unit}), north rotated {north_offset_deg:g}°")
        ax.set_ylabel(f"Δδ ({unit})" if sky else f"Δy ({unit})")
        _compass(ax, north_offset_deg)
    return ax


def _axes_transform(shape: tuple[int, int], coords: str, pixel_scale_arcsec: float | None, north_offset_deg: float):
    """Return ``(x_px, y_px) -> (u, v)``: the identity, or offsets from the frame centre with u increasing to the left."""
    if coords not in ("pixel", "sky"):
        msg = f"coords must be 'pixel' or 'sky'; got {coords!r}"
        raise ValueError(msg)
    if pixel_scale_arcsec is not None and not (np.isfinite(pixel_scale_arcsec) and pixel_scale_arcsec > 0):
        msg = f"pixel_scale_arcsec must be a positive number; got {pixel_scale_arcsec}"
        raise ValueError(msg)
    if not np.isfinite(north_offset_deg):
        msg = f"north_offset_deg must be a finite number of degrees; got {north_offset_deg}"
        raise ValueError(msg)
    if coords == "pixel":
        return lambda x, y: (float(x), float(y))
    scale = float(pixel_scale_arcsec) if pixel_scale_arcsec is not None else 1.0
    cy, cx = (float(n // 2) for n in shape)  # the star: N // 2 (even N) or (N - 1) / 2 (odd N)
    return lambda x, y: (-(float(x) - cx) * scale, (float(y) - cy) * scale)


def _outlined(artist: Any, *, edge: str = "black") -> Any:
    """Give a text or an arrow an outline of colour ``edge``, readable on any colour map."""
    from matplotlib import patheffects

    artist.set_path_effects([patheffects.withStroke(linewidth=2.5, foreground=edge)])
    return artist


def _compass(ax: Axes, north_offset_deg: float, *, origin: tuple[float, float] = (0.84, 0.16),
             length: float = 0.11) -> None:
    """Draw north and east arrows in the lower right corner (axes fraction), north at ``90 - offset`` deg from +x.

    On the east-left axes of :func:`plot_frame` (u increasing to the left), east is 90 degrees
    counter-clockwise from north.
    """
    north = np.deg2rad(90.0 - north_offset_deg)
    for name, angle in (("N", north), ("E", north + np.pi / 2)):
        tip = (origin[0] + length * np.cos(angle), origin[1] + length * np.sin(angle))
        arrow = _outlined(ax.annotate(name, xy=origin, xytext=tip, xycoords="axes fraction", textcoords="axes fraction",
                                      color="white", fontsize=9, fontweight="bold", ha="center", va="center",
                                      arrowprops={"arrowstyle": "<-", "color": "white", "lw": 1.3, "shrinkA": 4, "shrinkB": 0}))
        _outlined(arrow.arrow_patch)  # white with a dark edge: seen on light and dark maps alike


def plot_snr_map(
    snr_map: npt.ArrayLike,
    *,
    ax: Axes | None = None,
    title: str | None = "S/N map",
    limit: float | None = None,
    circles_xy: Sequence[tuple[float, float]] | None = None,
    circle_radius_px: float = 3.0,
    coords: str = "pixel",
    pixel_scale_arcsec: float | None = None,
    north_offset_deg: float = 0.0,
    candidates_xy: Sequence[tuple[float, float]] | None = None,
    truth_xy: Sequence[tuple[float, float]] | None = None,
    truth_labels: Sequence[str] | None = None,
) -> Axes:
    """Show an S/N map on a symmetric diverging scale.

    Parameters
    ----------
    snr_map : array_like, shape (ny, nx)
        S/N per pixel (e.g. :func:`sodinn.adi.snr.snr_map`).
    ax : matplotlib Axes, optional
        Axes to draw into (default: a new figure).
    title : str, optional
        Axes title.
    limit : float, optional
        The colour scale spans ``-limit`` to ``+limit`` (default: ``max(5, max |S/N|)``).
    circles_xy : sequence of (x, y), optional
        Positions to circle, px.
    circle_radius_px : float
        Radius of the circles, px.
    coords : {"pixel", "sky"}
        Axes in array pixels, or in offsets from the star with N/E arrows (see :func:`plot_frame`).
    pixel_scale_arcsec : float, optional
        Pixel scale, arcsec/px, for ``coords="sky"``.
    north_offset_deg : float
        The pupil or true-north offset not applied to the frame, degrees (see :func:`plot_frame`).
    candidates_xy : sequence of (x, y), optional
        Candidates, px: circled and numbered 1, 2, ... in this order.
    truth_xy : sequence of (x, y), optional
        True companions, px: marked with a dashed square.
    truth_labels : sequence of str, optional
        A name for each of ``truth_xy``, written below its square.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn into (see :func:`plot_frame` for their units).

    Raises
    ------
    ValueError
        If ``snr_map`` is not 2-D, or an option is invalid (see :func:`plot_frame`).
    """
    arr = np.asarray(snr_map, dtype=np.float64)
    lim = float(limit) if limit is not None else max(5.0, float(np.nanmax(np.abs(arr))) if arr.size else 5.0)
    return plot_frame(
        arr, ax=ax, title=title, cmap="RdBu_r", vmin=-lim, vmax=lim, circles_xy=circles_xy,
        circle_radius_px=circle_radius_px, circle_color="black", label="S/N", coords=coords,
        pixel_scale_arcsec=pixel_scale_arcsec, north_offset_deg=north_offset_deg, candidates_xy=candidates_xy,
        truth_xy=truth_xy, truth_labels=truth_labels,
    )


def plot_flux_oracle(oracle: dict, *, ax: Axes | None = None, snr_range: tuple[float, float] | None = (1.0, 3.0)) -> Axes:
    """Plot S/N against injected flux per annulus, as measured by the S/N oracle of sample generation.

    Parameters
    ----------
    oracle : dict
        ``SampleFile(...).oracle`` or ``MLARSamples.oracle``: ``fluxes`` and ``snr_curve``, shape
        ``(n_annuli, n_levels)``; ``snrs``, shape ``(n_annuli, n_levels, n_azimuths)``; ``radii_px``,
        shape ``(n_annuli,)``; ``flux_range``, shape ``(n_annuli, 2)``. Fluxes in cube units.
    ax : matplotlib Axes, optional
        Axes to draw into (default: a new figure).
    snr_range : (float, float), optional
        The target S/N bounds, drawn as horizontal lines with each annulus's flux bounds on them
        (None: not drawn).

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn into; logarithmic flux on x, S/N on y.
    """
    import matplotlib

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4.5))
    fluxes, snrs, curve = (np.asarray(oracle[k], dtype=np.float64) for k in ("fluxes", "snrs", "snr_curve"))
    colors = matplotlib.colormaps["viridis"](np.linspace(0, 1, len(fluxes)))
    for a, color in enumerate(colors):
        ax.plot(np.repeat(fluxes[a], snrs.shape[-1]), snrs[a].ravel(), ".", color=color, alpha=0.5)
        ax.plot(fluxes[a], curve[a], "-", color=color, label=f"r = {oracle['radii_px'][a]:.1f} px")
        lo, hi = oracle["flux_range"][a]
        ax.plot([lo, hi], [snr_range[0], snr_range[1]] if snr_range else [np.nan, np.nan], "s", color=color, ms=4)
    if snr_range:
        for s in snr_range:
            ax.axhline(s, color="0.5", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("injected flux [cube units]")
    ax.set_ylabel("S/N (annular PCA-ADI)")
    ax.legend(fontsize="small", ncol=2)
    return ax


def plot_training_history(history: dict, *, axes: Sequence[Axes] | None = None,
                          best_epoch: int | None = None) -> Sequence[Axes]:
    """Plot loss and accuracy per epoch, training and validation, on two axes; mark the epoch kept.

    Parameters
    ----------
    history : dict of str -> list of float
        Per-epoch values as in ``keras.callbacks.History.history`` (``loss``, ``accuracy``,
        ``val_loss``, ``val_accuracy``; missing keys are skipped).
    axes : sequence of two matplotlib Axes, optional
        Axes for the loss and the accuracy (default: a new figure).
    best_epoch : int, optional
        The epoch whose weights were kept, counted from 1 (default: the first epoch of lowest
        ``val_loss``, as early stopping with ``restore_best_weights`` keeps; none without
        ``val_loss``): a dotted vertical line labelled "kept: epoch N" on both axes.

    Returns
    -------
    sequence of matplotlib.axes.Axes
        The two axes; epochs counted from 1.

    Raises
    ------
    ValueError
        If ``best_epoch`` is outside the epochs of ``history``.
    """
    n_epochs = max((len(v) for v in history.values() if v), default=0)
    val_loss = history.get("val_loss")
    if best_epoch is None and val_loss and len(val_loss) > 1:
        best_epoch = int(np.nanargmin(np.asarray(val_loss, dtype=np.float64))) + 1
    if best_epoch is not None and not 1 <= best_epoch <= n_epochs:
        msg = f"best_epoch must be between 1 and {n_epochs} (the epochs of history); got {best_epoch}"
        raise ValueError(msg)
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                ax.plot(np.arange(1, len(values) + 1), values, style, marker="o", label=(prefix or "train_") + key)
        if best_epoch is not None and ax.lines:
            ax.axvline(best_epoch, color="0.35", ls=":", lw=1.5, label=f"kept: epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        if n_epochs:
            ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.lines:
            ax.legend(fontsize="small")
    return axes


_LEGEND_ROWS = 16  # a legend beside a 4.5-inch-high panel holds this many entries per column


def plot_roc(rows: Sequence[dict], *, axes: Sequence[Axes] | None = None, max_labels: int = 4,
             min_label_gap: float = 0.08) -> Sequence[Axes]:
    """Plot the ROC curves of a :func:`sodinn.evaluate.roc.run_roc` run: TPR against mean false positives per frame.

    One panel per separation band; the x axis is symmetric-log (0 false positives stays visible).
    A few thresholds are written beside their points, never where points crowd (e.g. the many
    thresholds with no detection at all at the origin); the legend stands outside the panels, to
    the right of the last one, in as many columns of 16 entries as it needs. A
    model and its calibrated map (``NAME-cal``) share a colour and differ by line style.

    Parameters
    ----------
    rows : sequence of dict
        ``RocResult.rows``: each with at least ``method``, ``kind``, ``band``, ``band_lambda_d``,
        ``threshold``, ``tpr`` and ``mean_fp``.
    axes : sequence of matplotlib Axes, optional
        One per band, in band order (default: a new figure).
    max_labels : int
        At most this many threshold labels per curve (0: none).
    min_label_gap : float
        A threshold is written only at a point at least this far (fraction of the panel) from every
        point already labelled in its panel.

    Returns
    -------
    sequence of matplotlib.axes.Axes
        One per band.

    Raises
    ------
    ValueError
        If ``max_labels`` is negative or ``min_label_gap`` is negative.
    """
    import matplotlib

    if max_labels < 0 or not min_label_gap >= 0:
        msg = f"max_labels and min_label_gap must be >= 0; got {max_labels} and {min_label_gap}"
        raise ValueError(msg)
    bands = sorted({(r["band"], r["band_lambda_d"]) for r in rows})
    if axes is None:
        import matplotlib.pyplot as plt

        _, grid = plt.subplots(1, len(bands), figsize=(5 * len(bands) + 2, 4.5), squeeze=False, sharey=True)
        axes = list(grid.ravel())
    methods = list(dict.fromkeys(r["method"] for r in rows))
    kinds = {r["method"]: r["kind"] for r in rows}
    # a model and its calibrated map share a colour (their line styles differ); every other method has its own
    bases = [m.removesuffix("-cal") if kinds[m] == "calibrated" else m for m in methods]
    palette = list(dict.fromkeys(bases))
    n = len(palette)
    table = (matplotlib.colormaps["tab10"](np.arange(n)) if n <= 10 else matplotlib.colormaps["tab20"](np.arange(n)) if n <= 20
             else matplotlib.colormaps["turbo"](np.linspace(0.05, 0.95, n)))
    colors = [table[palette.index(b)] for b in bases]
    for ax, (b, label) in zip(axes, bands):
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_ylim(-0.02, 1.02)
        curves = []
        for method, color in zip(methods, colors):
            sel = sorted((r for r in rows if r["band"] == b and r["method"] == method), key=lambda r: r["threshold"])
            fp = np.array([r["mean_fp"] for r in sel])
            tpr = np.array([r["tpr"] for r in sel])
            style = {"probability": "-", "calibrated": ":"}.get(sel[0]["kind"] if sel else "", "--")
            ax.plot(fp, tpr, style, marker="o", ms=3, color=color, label=method)
            curves.append((sel, fp, tpr, color))
        ax.set_xlim(left=0, right=max([1.0, *(float(np.nanmax(c[1])) * 1.3 for c in curves if c[1].size)]))
        _label_thresholds(ax, curves, max_labels, min_label_gap)
        ax.set_xlabel("mean false positives per frame")
        ax.set_title(f"{label} λ/D")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("true positive rate")
    axes[-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.03, 1.0), borderaxespad=0.0,
                    ncols=-(-len(methods) // _LEGEND_ROWS), title="method (thresholds\nbeside points)", title_fontsize="small")
    return axes


def _threshold_label(value: float) -> str:
    """Write a threshold with as few digits as tell it apart: 3 significant, or its nines + 1 for probabilities near 1."""
    t = float(value)
    if 0.9 < t < 1.0:
        decimals = int(math.ceil(-math.log10(1.0 - t))) + 1
        return f"{t:.{decimals}f}".rstrip("0")
    return f"{t:.3g}"


def _label_thresholds(ax: Axes, curves, max_labels: int, min_gap: float) -> None:
    """Write thresholds beside points spread along each curve, skipping points near one already labelled."""
    to_fraction = ax.transScale + ax.transLimits  # data -> axes fraction, without drawing
    taken: list[np.ndarray] = []
    for sel, fp, tpr, color in curves:
        if not sel or max_labels == 0:
            continue
        where = to_fraction.transform(np.column_stack([fp, tpr]))
        written = 0
        for j in np.unique(np.linspace(0, len(sel) - 1, min(len(sel), 3 * max_labels)).round().astype(int)):
            if written >= max_labels or not np.all(np.isfinite(where[j])):
                continue
            if any(np.hypot(*(where[j] - t)) < min_gap for t in taken):
                continue
            taken.append(where[j])
            written += 1
            ax.annotate(_threshold_label(sel[j]['threshold']), (fp[j], tpr[j]), fontsize=7, color=color, xytext=(3, 3),
                        textcoords="offset points")


def plot_contrast_curves(
    classical: Any = None,
    limits: Any = None,
    *,
    star_flux: float | None = None,
    lambda_d_px: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Plot detection limits against separation: the classical curve and each method's 95%-TPR limit.

    Parameters
    ----------
    classical : sodinn.evaluate.contrast.ContrastCurve, optional
        The classical ``k``-sigma curve of annular PCA-ADI (Student-corrected).
    limits : sodinn.evaluate.limits.DetectionLimits, optional
        The flux at the target TPR of every method (models, solid; baselines, dashed); separations where
        the limit lies outside the flux ladder are left out.
    star_flux : float, optional
        Plot contrast (flux / star flux) instead of flux (in units of the normalised PSF, i.e. the
        companion's flux in an aperture of diameter 1 FWHM).
    lambda_d_px : float, optional
        The value of lambda/D in px, for the top axis (default: the one stored in the results).
    ax : matplotlib Axes, optional
        Axes to draw into (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        Separation in px on the bottom axis, in lambda/D on the top one; logarithmic y.

    Raises
    ------
    ValueError
        If neither ``classical`` nor ``limits`` is given, or ``star_flux`` is not positive.
    """
    import matplotlib

    if classical is None and limits is None:
        msg = "nothing to plot: pass a classical curve, detection limits or both"
        raise ValueError(msg)
    if star_flux is not None and not star_flux > 0:
        msg = f"star_flux must be > 0; got {star_flux}"
        raise ValueError(msg)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.5, 4.5))
    scale = 1.0 / star_flux if star_flux is not None else 1.0
    lam = float(lambda_d_px or (classical.lambda_d_px if classical is not None else limits.lambda_d_px))  # type: ignore[union-attr]
    if classical is not None:
        ok = np.isfinite(classical.flux_limit)
        ax.plot(classical.radii_px[ok], classical.flux_limit[ok] * scale, "-", color="k",
                label=f"annular PCA-ADI, {classical.sigma:g}σ (Student)")
    if limits is not None:
        colors = matplotlib.colormaps["tab10"](np.arange(len(limits.methods)) % 10)
        for method, color in zip(limits.methods, colors):
            values = limits.flux_limit[method]
            style = "-" if method in limits.models else "--"
            ax.plot(limits.radii_px, values * scale, style, marker="o", ms=4, color=color,
                    label=f"{method}, {100 * limits.tpr_target:g}% TPR")
    ax.set_yscale("log")
    ax.set_xlabel("separation [px]")
    ax.set_ylabel("contrast" if star_flux is not None else "flux [normalised PSF units]")
    top = ax.secondary_xaxis("top", functions=(lambda r: np.asarray(r) / lam, lambda x: np.asarray(x) * lam))
    top.set_xlabel("separation [λ/D]")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return ax


def plot_delta_mag_curves(table: Any, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Plot detection limits as delta mag against separation in arcsec (fainter down), one line per curve and method.

    The convention of direct-imaging papers: the limiting magnitude difference to the star grows
    downwards (the y axis is inverted), so the region above a curve is what a method detects.

    Parameters
    ----------
    table : astropy.table.Table or mapping of column name -> sequence
        Rows of :meth:`sodinn.evaluate.limits.ContrastLimits.table`: columns ``curve`` (``"classical"``
        or ``"tpr"``), ``method``, ``sep_arcsec``, ``delta_mag`` and (for the top axis) ``sep_lambda_d``;
        ``meta["limits_config"]``, if any, gives ``sigma`` and ``tpr_target`` for the labels.
    ax : matplotlib Axes, optional
        Axes to draw into (default: a new figure).
    title : str, optional
        The title (default: none).

    Returns
    -------
    matplotlib.axes.Axes
        Separation in arcsec on the bottom axis, in lambda/D on the top one (when the table gives both),
        delta mag (mag) on the inverted y axis; separations without a limit (NaN) are left out. Classical
        curves are black, solid; each detection limit has its own colour, models solid and baselines
        (``annular-K``, ``pca``...) dashed, with markers.

    Raises
    ------
    ValueError
        If the table misses a column. Without any finite delta mag, the axes say that no limit was reached.
    """
    import matplotlib

    colnames = list(getattr(table, "colnames", table))
    missing = [c for c in ("curve", "method", "sep_arcsec", "delta_mag") if c not in colnames]
    if missing:
        msg = f"table misses the column(s) {missing}; pass ContrastLimits.table()"
        raise ValueError(msg)
    curve = np.asarray(table["curve"]).astype(str)
    method = np.asarray(table["method"]).astype(str)
    sep = np.asarray(table["sep_arcsec"], dtype=np.float64)
    dmag = np.asarray(table["delta_mag"], dtype=np.float64)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.5, 4.5))
    meta = dict(getattr(table, "meta", {}) or {})
    config = dict(meta.get("limits_config", {}))
    sigma = float(config.get("sigma", 5.0))
    tpr = float(config.get("tpr_target", 0.95))
    keys = list(dict.fromkeys(zip(curve.tolist(), method.tolist())))
    colors = matplotlib.colormaps["tab10"](np.arange(len(keys)) % 10)
    for (kind, name), color in zip(keys, colors):
        sel = (curve == kind) & (method == name)
        order = np.argsort(sep[sel])
        x, y = sep[sel][order], dmag[sel][order]
        ok = np.isfinite(y)
        if kind == "classical":
            ncomp = name.rpartition("-")[2]
            ax.plot(x[ok], y[ok], "-", color="k", lw=1.8,
                    label=f"annular PCA-ADI ({ncomp} PC), {sigma:g}σ Student-corrected")
        else:
            baseline = name.partition("-")[0] in ("annular", "pca", "median")
            ax.plot(x[ok], y[ok], "--" if baseline else "-", marker="o", ms=5, color=color,
                    label=f"{name}, {100 * tpr:g}% TPR")
    if not np.isfinite(dmag).any():
        ax.text(0.5, 0.5, "no limit reached within the flux ladder", transform=ax.transAxes, ha="center", va="center")
    ax.invert_yaxis()
    ax.set_xlabel("separation [arcsec]")
    ax.set_ylabel("Δmag (contrast to the star)")
    if "sep_lambda_d" in colnames:
        ld = np.asarray(table["sep_lambda_d"], dtype=np.float64)
        good = np.isfinite(ld) & (sep > 0)
        if good.any():
            ratio = float(np.median(ld[good] / sep[good]))  # lambda/D per arcsec
            top = ax.secondary_xaxis("top", functions=(lambda a: np.asarray(a) * ratio, lambda x: np.asarray(x) / ratio))
            top.set_xlabel("separation [λ/D]")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", loc="lower left")
    if title:
        import textwrap

        ax.set_title("\n".join(textwrap.wrap(title, 80)), fontsize="medium", pad=44 if "sep_lambda_d" in colnames else 6)
    return ax
