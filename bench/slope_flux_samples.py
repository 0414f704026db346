"""An ablation of issue 14: C+ fluxes from the S/N oracle's slope (S/N per ADU) instead of its isotonic fit.

The S/N oracle (:class:`sodinn.mlar.flux.FluxRangeEstimator`) injects companions at a few azimuths and a
ladder of fluxes and inverts an isotonic fit of S/N against flux. The "S/N" of a companion there is its own
signal plus the noise's own S/N at that azimuth, so with 3 azimuths an annulus whose injections happened to
land on a positive or negative residual gets its S/N 1-3 fluxes shifted (held-out NACO, 14.4-19.2 px: 8.7-64 ADU,
a 7.4x range for a 3x range of S/N). This variant fits one slope for the annulus with an intercept per azimuth
(least squares over the ladder's levels whose median S/N is at most 8, where S/N is linear in flux) and draws the
C+ fluxes from ``snr_range / slope``: the expected S/N, the noise's offset removed, a 3x range for S/N 1-3.
Only the samples change: the ROC's copies keep the oracle the issue defines.

    .venv/bin/python bench/slope_flux_samples.py --config configs/naco_heldout.toml -o out/naco_heldout/samples-slope.h5

takes the arguments of ``sodinn samples`` and prints, per annulus, the isotonic range, the slope and the range
used. Measured on the held-out cube (results/naco_heldout/README.md, 2026-12-02): no gain, so not the default.
"""

from __future__ import annotations

import sys

import numpy as np

MAX_SNR = 8.0  # ladder levels above this median S/N are left out of the slope (PCA starts absorbing the companion)


def slope_flux_range(fluxes: np.ndarray, snrs: np.ndarray, snr_range: tuple[float, float]) -> tuple[float, float, float]:
    """Return the fluxes at ``snr_range`` from one slope with an intercept per azimuth, and the slope.

    Parameters
    ----------
    fluxes : ndarray, shape (n_levels,)
        Injected fluxes of the oracle's ladder, ADU.
    snrs : ndarray, shape (n_levels, n_azimuths)
        Measured S/N at each level and azimuth.
    snr_range : (float, float)
        Target S/N bounds.

    Returns
    -------
    (float, float, float)
        The fluxes at the two bounds, ADU, and the slope, S/N per ADU.

    Raises
    ------
    ValueError
        If the slope is not positive (S/N does not grow with flux at that separation).
    """
    use = np.flatnonzero(np.median(snrs, axis=1) <= MAX_SNR)
    if use.size < 3:
        use = np.arange(3)
    f = fluxes[use] - fluxes[use].mean()
    s = snrs[use] - snrs[use].mean(axis=0)  # an intercept per azimuth
    slope = float((f[:, None] * s).sum() / (f**2).sum() / s.shape[1])
    if not slope > 0:
        msg = f"the S/N does not grow with flux (slope {slope:g} per ADU)"
        raise ValueError(msg)
    return snr_range[0] / slope, snr_range[1] / slope, slope


def main(argv: list[str]) -> int:
    """Run ``sodinn samples`` with the oracle's flux ranges replaced by the slope's."""
    from sodinn.cli.main import main as sodinn_main
    from sodinn.mlar import flux

    fit = flux.FluxRangeEstimator.fit

    def slope_fit(self, *args, **kwargs):
        fit(self, *args, **kwargs)
        ranges = []
        for a, radius in enumerate(self.radii_px_):
            lo, hi, slope = slope_flux_range(self.fluxes_[a], self.snrs_[a], self.snr_range)
            print(f"annulus {a} ({radius:.1f} px): isotonic {self.flux_range_[a][0]:.1f}-{self.flux_range_[a][1]:.1f} ADU, "
                  f"slope {slope:.4g} S/N per ADU -> {lo:.1f}-{hi:.1f} ADU", file=sys.stderr)
            ranges.append((lo, hi))
        self.flux_range_ = np.asarray(ranges)
        return self

    flux.FluxRangeEstimator.fit = slope_fit
    return sodinn_main(["samples", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
