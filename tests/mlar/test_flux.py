import warnings

import numpy as np
import pytest

from sodinn.adi.baselines import pca_annular
from sodinn.adi.injection import cube_inject_companions
from sodinn.adi.snr import snr
from sodinn.datasets import make_adi_sequence
from sodinn.exceptions import PSFWarning
from sodinn.mlar.flux import FluxRangeEstimator, _invert

from ..conftest import offset_psf


def test_invert_monotone_curve():
    fluxes = np.array([1.0, 2.0, 4.0, 8.0])
    curve = np.array([0.5, 1.0, 1.0, 3.0])
    assert _invert(fluxes, curve, 2.0) == pytest.approx(6.0)
    assert _invert(fluxes, curve, 1.0) == pytest.approx(2.0)
    assert _invert(fluxes, curve, 0.25) == pytest.approx(0.5)  # proportional below the ladder
    assert _invert(fluxes, curve, 6.0) == pytest.approx(16.0)  # and above it


def test_oracle_on_synthetic_data():
    data = make_adi_sequence(n_frames=30, size_px=55, fwhm_px=4.0, seed=11)
    radii = np.array([10.0, 16.0])
    est = FluxRangeEstimator((1.0, 3.0), ncomp=5, n_azimuths=2, rng=0).fit(
        data.cube, data.angles_deg, data.psf, data.fwhm_px, radii
    )
    assert est.flux_range_.shape == (2, 2)
    assert (est.flux_range_[:, 1] > est.flux_range_[:, 0]).all()
    assert np.all(np.diff(est.snr_curve_, axis=1) >= 0)  # isotonic
    # the upper bound really gives S/N around 3 (the oracle's own noise: a few azimuths)
    snrs = []
    for theta in (33.0, 150.0, 260.0):
        cube = cube_inject_companions(data.cube, data.psf, data.angles_deg, sep_px=16.0, theta_deg=theta, flux=est.flux_range_[1, 1])
        frame = pca_annular(cube, data.angles_deg, data.fwhm_px, ncomp=5)
        snrs.append(snr(frame, (27 + 16 * np.cos(np.deg2rad(theta)), 27 + 16 * np.sin(np.deg2rad(theta))), data.fwhm_px))
    assert 1.0 < np.median(snrs) < 6.0


def test_oracle_errors():
    data = make_adi_sequence(n_frames=10, size_px=41, fwhm_px=4.0, seed=1)
    with pytest.raises(ValueError, match="low < high"):
        FluxRangeEstimator((3.0, 1.0)).fit(data.cube, data.angles_deg, data.psf, 4.0, [10.0])


def test_oracle_injects_the_centred_psf_and_says_so_once():
    """The S/N oracle with a PSF 1 px off-centre (issue 13, C): one warning, the flux range of the centred PSF."""
    data = make_adi_sequence(n_frames=10, size_px=41, fwhm_px=4.0, seed=1)

    def fit(psf):
        return FluxRangeEstimator((1.0, 3.0), ncomp=3, n_azimuths=1, n_levels=3, rng=0).fit(
            data.cube, data.angles_deg, psf, 4.0, [10.0])

    ref = fit(offset_psf(21))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = fit(offset_psf(21, 1.0, 0.0))
    assert [w.category for w in caught] == [PSFWarning] and "recentred" in str(caught[0].message)
    np.testing.assert_allclose(got.snrs_, ref.snrs_, rtol=1e-6)
    np.testing.assert_allclose(got.flux_range_, ref.flux_range_, rtol=1e-6)
