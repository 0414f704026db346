"""Figures: every function takes ``ax=None``, draws, and returns the axes; nothing is shown or saved.

matplotlib is imported inside the functions, so importing sodinn never loads it; no function picks a
backend. Given axes, a function draws into them (the products of :mod:`sodinn.pipeline` pass the axes
of a ``matplotlib.figure.Figure`` and write it); without, it makes a figure with ``pyplot`` (for
notebooks). The results plotted are duck-typed: this module imports nothing of sodinn.
"""

from __future__ import annotations

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
) -> Axes:
    """Show a frame with the origin at the lower left (astronomical convention, y up).

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
        Positions to circle, px (e.g. known or injected companions).
    circle_radius_px : float
        Radius of the circles, px.
    circle_color : str
        Matplotlib colour of the circles.
    label : str, optional
        Label of the colour bar.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn into; x and y in px.

    Raises
    ------
    ValueError
        If ``frame`` is not 2-D.
    """
    from matplotlib.patches import Circle

    arr = np.asarray(frame, dtype=np.float64)
    if arr.ndim != 2:
        msg = f"frame must be 2-D; got shape {arr.shape}"
        raise ValueError(msg)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 4.5))
    image = ax.imshow(arr, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    for x, y in circles_xy or ():
        ax.add_patch(Circle((x, y), circle_radius_px, fill=False, color=circle_color, lw=1.2))
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=label)
    if title:
        ax.set_title(title)
    ax.set_xlabel("x [px]")
    ax.set_ylabel("y [px]")
    return ax


def plot_snr_map(
    snr_map: npt.ArrayLike,
    *,
    ax: Axes | None = None,
    title: str | None = "S/N map",
    limit: float | None = None,
    circles_xy: Sequence[tuple[float, float]] | None = None,
    circle_radius_px: float = 3.0,
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

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn into; x and y in px.

    Raises
    ------
    ValueError
        If ``snr_map`` is not 2-D.
    """
    arr = np.asarray(snr_map, dtype=np.float64)
    lim = float(limit) if limit is not None else max(5.0, float(np.nanmax(np.abs(arr))) if arr.size else 5.0)
    return plot_frame(
        arr, ax=ax, title=title, cmap="RdBu_r", vmin=-lim, vmax=lim, circles_xy=circles_xy,
        circle_radius_px=circle_radius_px, circle_color="black", label="S/N",
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


def plot_training_history(history: dict, *, axes: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """Plot loss and accuracy per epoch, training and validation, on two axes.

    Parameters
    ----------
    history : dict of str -> list of float
        Per-epoch values as in ``keras.callbacks.History.history`` (``loss``, ``accuracy``,
        ``val_loss``, ``val_accuracy``; missing keys are skipped).
    axes : sequence of two matplotlib Axes, optional
        Axes for the loss and the accuracy (default: a new figure).

    Returns
    -------
    sequence of matplotlib.axes.Axes
        The two axes; epochs counted from 1.
    """
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                ax.plot(np.arange(1, len(values) + 1), values, style, marker="o", label=(prefix or "train_") + key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        if ax.lines:
            ax.legend()
    return axes


def plot_roc(rows: Sequence[dict], *, axes: Sequence[Axes] | None = None, label_every: int = 2) -> Sequence[Axes]:
    """Plot the ROC curves of a :func:`sodinn.evaluate.roc.run_roc` run: TPR against mean false positives per frame.

    One panel per separation band; the x axis is symmetric-log (0 false positives stays visible).

    Parameters
    ----------
    rows : sequence of dict
        ``RocResult.rows``: each with at least ``method``, ``kind``, ``band``, ``band_lambda_d``,
        ``threshold``, ``tpr`` and ``mean_fp``.
    axes : sequence of matplotlib Axes, optional
        One per band, in band order (default: a new figure).
    label_every : int
        Write every ``label_every``-th threshold beside its point.

    Returns
    -------
    sequence of matplotlib.axes.Axes
        One per band.
    """
    import matplotlib

    bands = sorted({(r["band"], r["band_lambda_d"]) for r in rows})
    if axes is None:
        import matplotlib.pyplot as plt

        _, grid = plt.subplots(1, len(bands), figsize=(5 * len(bands), 4.5), squeeze=False, sharey=True)
        axes = list(grid.ravel())
    methods = list(dict.fromkeys(r["method"] for r in rows))
    colors = matplotlib.colormaps["tab10"](np.arange(len(methods)) % 10)
    for ax, (b, label) in zip(axes, bands):
        for method, color in zip(methods, colors):
            sel = sorted((r for r in rows if r["band"] == b and r["method"] == method), key=lambda r: r["threshold"])
            fp = np.array([r["mean_fp"] for r in sel])
            tpr = np.array([r["tpr"] for r in sel])
            style = {"probability": "-", "calibrated": ":"}.get(sel[0]["kind"] if sel else "", "--")
            ax.plot(fp, tpr, style, marker="o", ms=3, color=color, label=method)
            for j, r in enumerate(sel):
                if j % max(1, label_every) == 0:
                    ax.annotate(f"{r['threshold']:g}", (fp[j], tpr[j]), fontsize=6, color=color, xytext=(2, 2),
                                textcoords="offset points")
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlim(left=0)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("mean false positives per frame")
        ax.set_title(f"{label} λ/D")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("true positive rate")
    axes[0].legend(fontsize="small")
    return axes


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
