import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sodinn._validation import PSF_CENTRE_TOLERANCE_PX
from sodinn.adi.psf import aperture_flux, crop_psf, fit_fwhm, fit_gaussian_2d, normalize_psf, psf_centroid
from sodinn.exceptions import PSFWarning, SodinnWarning

from ..conftest import gaussian_psf, offset_psf


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


def _centre_offset(stamp):
    """Centroid of a stamp minus its central pixel (p // 2), px."""
    x, y = psf_centroid(stamp)
    c = stamp.shape[0] // 2
    return x - c, y - c


@settings(max_examples=30, deadline=None)
@given(dx=st.floats(-1.5, 1.5), dy=st.floats(-1.5, 1.5), fwhm=st.floats(1.5, 6.0), margin_px=st.integers(0, 5),
       kind=st.sampled_from(["gaussian", "airy"]))
def test_psf_centroid_measures_sub_pixel_offsets(dx, dy, fwhm, margin_px, kind):
    """The centroid of a symmetric PSF is its centre, for odd and even stamps, Gaussian or Airy.

    To 1e-3 px (5e-3 px for an undersampled FWHM below 2 px) when the stamp holds the centroid window
    (twice the FWHM, at least 8 px) on every side.
    """
    window = 2 * max(fwhm, 4.0)
    size = int(np.ceil(2 * (window + max(abs(dx), abs(dy))))) + margin_px
    ddx, ddy = _centre_offset(offset_psf(size, dx, dy, fwhm, kind))
    tolerance = 1e-3 if fwhm >= 2 else 5e-3
    assert abs(ddx - dx) < tolerance and abs(ddy - dy) < tolerance


def test_psf_centroid_ignores_a_noisy_wing(rng):
    psf = offset_psf(41, 0.0, 0.0, 4.0)
    yy, xx = np.indices(psf.shape)
    wing = np.hypot(xx - 20, yy - 20) > 10  # beyond 2.5 FWHM: noise and a bright neighbour
    noisy = psf + wing * rng.normal(scale=0.05, size=psf.shape)
    noisy[3, 36] += 0.6
    dx, dy = _centre_offset(noisy)
    assert np.hypot(dx, dy) < 0.01


def test_psf_centroid_errors():
    with pytest.raises(ValueError, match="at least 3x3 px with a positive pixel"):
        psf_centroid(-gaussian_psf(9))
    with pytest.raises(ValueError, match="must be square"):
        psf_centroid(np.ones((9, 7)))


@pytest.mark.parametrize(("stamp", "offset_px", "shift"), [
    (offset_psf(21, 1.0, 0.0), 1.0, "dx=-1.000, dy=+0.000"),  # issue 13: a 21x21 PSF whose centroid is 1 px right
    (offset_psf(20, -0.5, -0.5), np.sqrt(0.5), "dx=+0.500, dy=+0.500"),  # issue 13: a 20x20 PSF symmetric about 9.5
])
def test_off_centre_psf_is_recentred_with_a_warning_at_every_psf_function(stamp, offset_px, shift):
    """normalize_psf and crop_psf measure the centroid and recentre the stamp (saying by how much)."""
    with pytest.warns(PSFWarning, match=rf"{offset_px:.3f} px .*recentred it by a sub-pixel Fourier shift of {re.escape(f'({shift}) px')}"):
        norm = normalize_psf(stamp, 4.0)
    assert np.hypot(*_centre_offset(norm)) < 1e-3
    assert aperture_flux(norm, 4.0) == pytest.approx(1.0, rel=1e-12)
    reference = normalize_psf(offset_psf(stamp.shape[0]), 4.0)  # the same PSF, centred from the start
    np.testing.assert_allclose(norm[5:-5, 5:-5], reference[5:-5, 5:-5], atol=1e-6 * reference.max())
    with pytest.warns(PSFWarning, match="recentred"):
        cropped = crop_psf(stamp, stamp.shape[0] - 6)
    assert np.hypot(*_centre_offset(cropped)) < 1e-3
    assert issubclass(PSFWarning, SodinnWarning)


def test_fit_gaussian_2d_measures_the_stamp_as_given():
    """The fit is a measurement: an off-centre stamp is not recentred, and its centre is found."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_gaussian_2d(offset_psf(21, 1.0, -0.4))
    assert (fit.x_mean, fit.y_mean) == (pytest.approx(11.0, abs=1e-6), pytest.approx(9.6, abs=1e-6))
    assert fit.fwhm == pytest.approx(4.0, rel=1e-6)


@pytest.mark.parametrize(("stamp", "match"), [
    (offset_psf(21, 2.5, 0.0), r"off-centre: its centroid is at \(x=12.500, y=10.000\), 2.500 px .*more than a centring "
                               r"error \(at most 2.\d\d px: half its FWHM"),
    (offset_psf(11, 1.8, 0.0), r"off-centre: .* 1.79\d px .*its core lies 3.7\d px from the stamp edge .*cut a larger stamp"),
])
def test_psf_too_far_off_centre_is_refused_with_its_offset(stamp, match):
    with pytest.raises(ValueError, match=match):
        normalize_psf(stamp, 4.0)
    with pytest.raises(ValueError, match="off-centre"):
        fit_fwhm(stamp)


def test_a_psf_centred_within_the_tolerance_is_kept_bit_for_bit():
    stamp = offset_psf(21, 0.6 * PSF_CENTRE_TOLERANCE_PX, -0.5 * PSF_CENTRE_TOLERANCE_PX)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cropped = crop_psf(stamp, 21)
    np.testing.assert_array_equal(cropped, stamp)


def test_naco_psf_is_centred_within_the_tolerance_and_kept(naco, naco_paths):
    """The NACO beta Pic PSF: centroid 0.021 px from its central pixel, below 0.03 px: used as stored."""
    from astropy.io import fits

    raw = fits.getdata(naco_paths["psf"]).astype(np.float64)
    dx, dy = _centre_offset(raw)
    assert (dx, dy) == (pytest.approx(0.0186, abs=1e-4), pytest.approx(0.0099, abs=1e-4))
    assert np.hypot(dx, dy) < PSF_CENTRE_TOLERANCE_PX
    np.testing.assert_array_equal(naco.psf, raw)
    assert not any(k.startswith("psf_offset") for k in naco.provenance)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(normalize_psf(raw, naco.fwhm_px), raw / aperture_flux(raw, naco.fwhm_px))
