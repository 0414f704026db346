"""Sky geometry: separations in arcsec and mas, position angles east of north, the north offset (SPEC §8)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sodinn.adi.baselines import pca_annular
from sodinn.adi.sky import (
    NACO_BETAPIC_NORTH_OFFSET_DEG,
    PSFScaling,
    derotation_angles_deg,
    pixel_position,
    position_angle_deg,
    sky_position,
)

# Published astrometry of beta Pic b on the night of the shared NACO sequence (2013-02-01), Absil et
# al. 2013, A&A 559, L12 (as tabulated by the VIP team's PyAstrOFit, res/exo/betaPicb.txt: offsets
# -0.234 +- 0.010" east and -0.387 +- 0.010" north): separation 452 +- 10 mas, PA 211.2 +- 1.3 deg.
BETAPIC_B_PA_DEG, BETAPIC_B_PA_ERR_DEG = 211.2, 1.3
BETAPIC_B_SEP_MAS, BETAPIC_B_SEP_ERR_MAS = 452.0, 10.0


@pytest.mark.parametrize(("dx", "dy", "pa"), [(0, 10, 0.0), (-10, 0, 90.0), (0, -10, 180.0), (10, 0, 270.0),
                                              (-7, 7, 45.0)])
def test_position_angle_is_east_of_north_on_a_north_up_east_left_frame(dx, dy, pa):
    pos = sky_position(50 + dx, 50 + dy, (101, 101), pixel_scale_arcsec=0.0272)
    assert float(pos.pa_deg) == pytest.approx(pa)
    assert float(pos.sep_px) == pytest.approx(np.hypot(dx, dy))
    assert float(pos.sep_arcsec) == pytest.approx(np.hypot(dx, dy) * 0.0272)
    assert float(pos.sep_mas) == pytest.approx(np.hypot(dx, dy) * 27.2)
    assert float(pos.d_ra_arcsec) == pytest.approx(-dx * 0.0272)  # east is left
    assert float(pos.d_dec_arcsec) == pytest.approx(dy * 0.0272)


def test_star_is_at_the_frame_centre_for_even_and_odd_frames():
    assert float(sky_position(32.0, 42.0, (64, 64)).pa_deg) == pytest.approx(0.0)  # centre 32 for N = 64
    assert float(sky_position(50.0, 60.0, (101, 101)).sep_px) == pytest.approx(10.0)  # centre 50 for N = 101


def test_without_a_pixel_scale_only_pixels():
    pos = sky_position([60.0, 40.0], [50.0, 50.0], (101, 101))
    assert pos.sep_arcsec is None and pos.sep_mas is None and pos.d_ra_arcsec is None
    np.testing.assert_allclose(pos.pa_deg, [270.0, 90.0])


def test_bad_inputs_are_refused_with_their_names():
    with pytest.raises(ValueError, match="x_px and y_px must have the same shape"):
        sky_position([1.0, 2.0], [1.0], (11, 11))
    with pytest.raises(ValueError, match="x_px must be finite"):
        sky_position(np.nan, 1.0, (11, 11))
    with pytest.raises(ValueError, match="pixel_scale_arcsec must be > 0"):
        sky_position(1.0, 1.0, (11, 11), pixel_scale_arcsec=0.0)
    with pytest.raises(TypeError, match="north_offset_deg must be a real number"):
        derotation_angles_deg([0.0, 1.0], "104")
    with pytest.raises(ValueError, match="north_offset_deg must be finite"):
        derotation_angles_deg([0.0, 1.0], float("inf"))
    with pytest.raises(ValueError, match="sep_px must be >= 0"):
        pixel_position(-1.0, 0.0, (11, 11))


def test_derotation_adds_the_offset():
    np.testing.assert_allclose(derotation_angles_deg([-14.27, 67.10], -104.39), [-118.66, -37.29])
    np.testing.assert_allclose(derotation_angles_deg([1.0, 2.0]), [1.0, 2.0])


@settings(max_examples=30, deadline=None)
@given(sep=st.floats(0.5, 60.0), pa=st.floats(-720.0, 720.0), offset=st.floats(-360.0, 360.0))
def test_pixel_position_and_sky_position_are_inverse_and_pa_wraps(sep, pa, offset):
    x, y = pixel_position(sep, pa, (129, 129))
    pos = sky_position(x, y, (129, 129))
    assert float(pos.sep_px) == pytest.approx(sep, abs=1e-9)
    assert _angle_diff(float(pos.pa_deg), pa) < 1e-7
    assert 0 <= float(pos.pa_deg) < 360
    # an offset added to the derotation angles turns every source by that much counter-clockwise
    assert _angle_diff(float(position_angle_deg(float(pos.theta_deg) + offset)), pa + offset) < 1e-7


def _angle_diff(a, b):
    return abs((a - b + 180) % 360 - 180)


@settings(max_examples=25, deadline=None)
@given(dx=st.floats(-40, 40), dy=st.floats(-40, 40))
def test_separation_and_pa_match_vip_cart_to_pol(vip, dx, dy):
    if np.hypot(dx, dy) < 1e-6:
        return
    pos = sky_position(50 + dx, 50 + dy, (101, 101))
    with np.errstate(divide="ignore", invalid="ignore"):  # VIP's error propagation divides by dx (arrays: no raise)
        r, theta = vip.var.coords.cart_to_pol(np.array([50 + dx]), np.array([50 + dy]), cx=50, cy=50,
                                              astro_convention=True)
    assert float(pos.sep_px) == pytest.approx(float(r[0]), rel=1e-12)
    assert _angle_diff(float(pos.pa_deg), float(theta[0])) < 1e-9


def test_psf_scaling():
    assert PSFScaling().factor == 1.0
    s = PSFScaling(psf_exposure_s=0.2, cube_exposure_s=0.4, psf_nd_transmission=0.01)
    assert s.factor == pytest.approx(200.0)
    assert s.star_flux_of(3.0) == pytest.approx(600.0)
    assert PSFScaling(star_flux=5.0).star_flux_of(3.0) == 5.0
    with pytest.raises(ValueError, match="psf_nd_transmission must be a fraction"):
        PSFScaling(psf_nd_transmission=1.5)
    with pytest.raises(ValueError, match="psf_exposure_s must be > 0"):
        PSFScaling(psf_exposure_s=0)
    with pytest.raises(ValueError, match="star_flux must be > 0"):
        PSFScaling(star_flux=-1.0)


def test_naco_beta_pic_b_lands_at_its_published_position_angle(naco):
    """beta Pic b, derotated with the file's angles plus the NACO offset, within the published PA (and S/N kept)."""
    seq = naco.with_north_offset(NACO_BETAPIC_NORTH_OFFSET_DEG)
    assert seq.north_offset_deg == NACO_BETAPIC_NORTH_OFFSET_DEG
    frame = pca_annular(seq.cube, seq.angles_deg, seq.fwhm_px, ncomp=10)
    yy, xx = np.indices(frame.shape)
    r = np.hypot(xx - 50, yy - 50)
    y0, x0 = np.unravel_index(np.argmax(np.where((r > 12) & (r < 24), frame, -np.inf)), frame.shape)
    box = np.clip(frame[y0 - 1:y0 + 2, x0 - 1:x0 + 2], 0, None)  # 3x3 centroid of the peak
    x = x0 + float((box * (np.arange(3) - 1)[None, :]).sum() / box.sum())
    y = y0 + float((box * (np.arange(3) - 1)[:, None]).sum() / box.sum())
    pos = sky_position(x, y, frame.shape, pixel_scale_arcsec=0.0272)
    # measured PA 212.9 deg; the centroid's own uncertainty (~0.3 px at 17.8 px) adds ~1 deg
    assert abs(float(pos.pa_deg) - BETAPIC_B_PA_DEG) < BETAPIC_B_PA_ERR_DEG + 1.0
    assert 200 < float(pos.pa_deg) < 225  # south-west, as published; the file's angles alone put it at 317 deg
    # the separation at 0.0272"/px is 0.48", 3 sigma beyond the published 452 +- 10 mas (see README)
    assert float(pos.sep_mas) == pytest.approx(484.0, abs=8.0)
    unrotated = sky_position(62.0, 63.0, frame.shape)
    assert float(unrotated.pa_deg) == pytest.approx(317.3, abs=0.1)
