"""The text ``sodinn info`` prints for each record of :func:`sodinn.pipeline.info.describe`."""

from __future__ import annotations

from typing import Any

__all__ = ["info_text"]


def info_text(info: dict[str, Any]) -> str:
    """Format a record of :func:`sodinn.pipeline.info.describe` for people.

    Parameters
    ----------
    info : dict
        The record (its ``kind`` decides the layout).

    Returns
    -------
    str
        One line for a FITS file or an unfinished sample run; several for a sample file or a model
        folder.

    Raises
    ------
    KeyError
        If the record lacks a key its kind needs (it is not from :func:`~sodinn.pipeline.info.describe`).
    """
    kind = info["kind"]
    if kind == "samples":
        return _samples_text(info)
    if kind == "model":
        return _model_text(info)
    if kind == "unfinished samples":
        return (f"{info['folder']}: an interrupted 'sodinn samples' run ({info['annuli_done']} of {info['annuli']} "
                "annuli done); run the same command again to resume")
    values = "no finite values" if info["min"] is None else f"values {info['min']:.4g} to {info['max']:.4g}"
    bad = f", {info['non_finite']} non-finite" if info["non_finite"] else ""
    shape = "x".join(str(s) for s in info["shape"])
    if kind == "angles":
        rotation = info.get("field_rotation_deg")
        what = f"{info['n_values']} angles, " + ("field rotation unknown (non-finite values)" if rotation is None
                                                 else f"{rotation:.2f} deg of field rotation")
        if info.get("rotation_note"):
            what += f" -- TOO LITTLE: {info['rotation_note']}"
    elif kind == "cube":
        what = f"cube of {info['shape'][0]} frames of {info['shape'][1]}x{info['shape'][2]} px"
    elif kind == "psf/frame":
        fwhm = info["fwhm_px"]
        what = f"PSF/frame of {shape} px, FWHM " + (f"{fwhm:.2f} px (2-D Gaussian fit)" if isinstance(fwhm, float) else fwhm)
        if info.get("centroid_offset_px") is not None:
            dx, dy = info["centroid_offset_px"]
            what += f", core centroid (dx={dx:+.3f}, dy={dy:+.3f}) px from the stamp centre"
    else:
        what = f"image of shape {shape}"
    where = f" [{info['hdu']}]" if info.get("hdu") else ""
    return f"{info['file']}{where}: {what}; {values}{bad}"


def _samples_text(info: dict[str, Any]) -> str:
    k, p, _ = info["sample_shape"]
    snr = "-".join(f"{s:g}" for s in info["snr_range"])
    lines = [
        f"{info['file']}: {info['n_samples']} labeled samples ({info['c_plus']} C+, {info['c_minus']} C-"
        + (f", {info['augmented']} augmented" if info["augmented"] else "")
        + f") of shape (K, P, P) = ({k}, {p}, {p}) in {len(info['annuli'])} annuli",
        f"  {'annulus':>7s} {'r [px]':>13s} {'C+':>5s} {'C-':>5s}  {'flux range (S/N ' + snr + ')':>24s}  ranks ({info['k_policy']})",
    ]
    for i, a in enumerate(info["annuli"]):
        r = f"{a['r_px'][0]:.1f}-{a['r_px'][1]:.1f}"
        flux = f"{a['flux_range'][0]:.4g}-{a['flux_range'][1]:.4g}"
        lines.append(f"  {i:7d} {r:>13s} {a['c_plus']:5d} {a['c_minus']:5d}  {flux:>24s}  {','.join(map(str, a['ranks']))}")
    masked = ", ".join(f"({x:g}, {y:g})" for x, y in info["known_sources_xy"]) or "none"
    scale = f", pixel scale {info['pixel_scale_arcsec']}\"/px" if info["pixel_scale_arcsec"] else ""
    fwhm = f"FWHM {info['fwhm_px']:.2f} px" if info["fwhm_px"] else "FWHM unknown"
    lines.append(f"  seed {info['seed']}; known sources masked: {masked}; {fwhm}{scale}")
    lines.append("  " + _curves_text(info))
    for name, src in info["sources"].items():
        lines.append(f"  {name}: {src['file']} (sha256 {src['sha256']})")
    lines.append(f"  made by sodinn {info['sodinn_version']}; configuration sha256 {info['config_sha256']}"
                 + _platform_text(info.get("platform")))
    return "\n".join(lines)


def _platform_text(platform: dict[str, Any] | None) -> str:
    """``"; on CPU (flags, n cores)"`` from a product's ``platform`` record; empty for products made before it."""
    if not platform:
        return ""
    cpu = platform.get("cpu") or platform.get("machine") or "an unnamed CPU"
    details = [*(platform.get("cpu_flags") or []), f"{platform.get('cpu_count')} cores"]
    return f"; on {cpu} ({', '.join(details)})"


def _curves_text(info: dict[str, Any]) -> str:
    rule = info.get("snr_curves")
    if rule is None:
        return "S/N curves: none (for patch-only models; re-run `sodinn samples` for a model that takes them)"
    if info.get("snr_curves_current"):
        return f"S/N curves: yes, made as {rule!r}"
    return (f"S/N curves: made as {rule!r}, which this sodinn refuses (known sources counted in their noise apertures); "
            "re-run `sodinn samples` for a model that takes them")


def _model_text(info: dict[str, Any]) -> str:
    m = info["test_metrics"]
    auc = "n/a" if m.get("auc") is None else f"{m['auc']:.3f}"
    weights = info["weights"] if info["weights_present"] else f"{info['weights']} MISSING"
    lines = [
        f"{info['folder']}: '{info['model']}' model ({weights}) for samples of K={info['n_ranks']} ranks "
        f"({info['k_policy']}) and P={info['patch_px']} px patches",
    ]
    fwhm = f"{info['fwhm_px']:.2f} px" if info["fwhm_px"] else "unknown"
    scale = f"{info['pixel_scale_arcsec']}\"/px" if info["pixel_scale_arcsec"] else "unknown"
    snr = "-".join(f"{s:g}" for s in info["snr_range"] or ())
    lines.append(f"  training data: FWHM {fwhm}, pixel scale {scale}, companions injected at S/N {snr}, "
                 f"{len(info['annuli_px'])} annuli from {info['annuli_px'][0][0]:.1f} to {info['annuli_px'][-1][1]:.1f} px"
                 if info["annuli_px"] else f"  training data: FWHM {fwhm}, pixel scale {scale}, S/N {snr}")
    if m.get("accuracy") is not None:
        split = info["split"] or {}
        parts = "/".join(str(split.get(k, "?")) for k in ("train", "val", "test"))
        lines.append(f"  held-out test: accuracy {m['accuracy']:.3f}, ROC AUC {auc} on {m['n']} samples "
                     f"(split train/val/test {parts} by group); confusion matrix {m['confusion_matrix']}")
    for a, row in (info["per_annulus"] or {}).items():
        a_auc = "n/a" if row.get("auc") is None else f"{row['auc']:.3f}"
        lines.append(f"    annulus {a}: accuracy {row['accuracy']:.3f}, AUC {a_auc} ({row['n']} samples)")
    tc = info["train_config"] or {}
    if "epochs_run" in info:
        lines.append(f"  trained {info['epochs_run']} epoch(s) of at most {tc.get('epochs')}, best validation loss at "
                     f"epoch {info['best_epoch']}; batch {tc.get('batch_size')}, seed {tc.get('seed')}"
                     + (f", precision {tc['precision']}" if tc.get("precision", "float32") != "float32" else ""))
    ts = info["training_set"] or {}
    lines.append(f"  training set: {ts.get('file')} (sha256 {ts.get('sha256')})")
    versions = ", ".join(f"{k} {v}" for k, v in (info["versions"] or {}).items())
    lines.append(f"  versions: {versions}" + _platform_text(info.get("platform")))
    return "\n".join(lines)


# ---------------------------------------------------------------- reduce
