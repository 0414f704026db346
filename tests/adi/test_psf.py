import numpy as np
import pytest

from sodinn.adi.psf import aperture_flux, crop_psf, fit_fwhm, fit_gaussian_2d, normalize_psf

from ..conftest import gaussian_psf


@pytest.mark.parametrize("fwhm", [2.2, 3.7, 6.1])
def test_fit_fwhm_recovers_analytic_gaussian(fwhm):
    assert fit_fwhm(gaussian_psf(25, fwhm), crop_px=None) == pytest.approx(fwhm, rel=1e-6)


def test_fit_elliptical_gaussian():
    yy, xx = np.indices((31, 31))
    sx, sy = 2.0, 1.5
    psf = np.exp(-((xx - 15) ** 2 / (2 * sx**2) + (yy - 15) ** 2 / (2 * sy**2)))
    fit = fit_gaussian_2d(psf)
    assert sorted([fit.fwhm_x, fit.fwhm_y]) == [pytest.approx(1.5 * 2.35482, rel=1e-4), pytest.approx(2.0 * 2.35482, rel=1e-4)]
    assert (fit.x_mean, fit.y_mean) == (pytest.approx(15), pytest.approx(15))


def test_naco_fwhm_matches_vip(naco, vip):
    raw = np.array(naco.psf)
    ours = fit_fwhm(raw)
    table = vip.var.fit_2dgaussian(raw, crop=True, cropsize=15, full_output=True, debug=False)
    ref = 0.5 * (float(table["fwhm_x"].iloc[0]) + float(table["fwhm_y"].iloc[0]))
    assert ours == pytest.approx(ref, rel=1e-4)
    assert 4.6 <= ours <= 4.9  # data README: 4.6-4.8 px


def test_normalize_psf_unit_aperture_flux(naco):
    psf = normalize_psf(naco.psf, naco.fwhm_px)
    assert aperture_flux(psf, naco.fwhm_px) == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(naco.psf_normalized, psf)


def test_normalize_psf_matches_vip_aperture_flux(naco, vip):
    from photutils.aperture import CircularAperture, aperture_photometry

    raw = np.array(naco.psf)
    ref = aperture_photometry(raw, CircularAperture((19, 19), r=naco.fwhm_px / 2), method="exact")["aperture_sum"][0]
    assert aperture_flux(raw, naco.fwhm_px) == pytest.approx(float(ref), rel=1e-12)


def test_crop_and_errors():
    psf = gaussian_psf(15, 3.0)
    small = crop_psf(psf, 9)
    assert small.shape == (9, 9) and small[4, 4] == psf.max()
    with pytest.raises(ValueError, match="parity"):
        crop_psf(psf, 10)
    with pytest.raises(ValueError, match="fwhm_px must be > 0"):
        normalize_psf(psf, 0.0)
    with pytest.raises(ValueError, match="absurd"):
        normalize_psf(psf, 100.0)
    with pytest.raises(ValueError, match="off-centre"):
        fit_fwhm(np.roll(psf, 4, axis=0))
    with pytest.raises(ValueError, match="no positive pixel"):
        fit_fwhm(-psf)
    with pytest.raises(ValueError, match="NaN"):
        fit_fwhm(np.where(psf > 0.5, np.nan, psf))
