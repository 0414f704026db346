import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sodinn._validation import PSF_CENTRE_TOLERANCE_PX
from sodinn.adi.injection import add_companion_stamps, companion_positions, companion_stamps, cube_inject_companions
from sodinn.adi.psf import psf_centroid
from sodinn.exceptions import PSFWarning

from ..conftest import gaussian_psf, offset_psf


@pytest.mark.parametrize(("method", "imlib", "interp"), [("fft", "vip-fft", "lanczos4"), ("spline", "ndimage-interp", "bicubic")])
def test_injection_matches_vip(naco, vip, method, imlib, interp):
    psf = naco.psf_normalized
    cube = np.array(naco.cube)
    for sep, theta, flux in [(17.3, 123.4, 50.0), (8.0, -20.0, 10.0), (31.7, 250.0, 120.0)]:
        ours = cube_inject_companions(cube, psf, naco.angles_deg, sep_px=sep, theta_deg=theta, flux=flux, method=method)
        ref = vip.fm.cube_inject_companions(
            cube, psf, naco.angles_deg, flevel=flux, rad_dists=[sep], theta=theta, imlib=imlib, interpolation=interp, verbose=False
        )
        # same placement rule and sub-pixel shift; differences are rounding (the FFT padding differs by at most 1 px)
        assert np.abs(ours - ref).max() <= 1e-5 * flux * psf.max()


def test_injected_flux_and_position(rng):
    psf = gaussian_psf(15, 3.0)
    angles = np.array([0.0, 33.0, 71.5])
    cube = cube_inject_companions(np.zeros((3, 51, 51)), psf, angles, sep_px=13.4, theta_deg=62.0, flux=7.0)
    x, y = companion_positions(cube.shape, angles, 13.4, 62.0)
    yy, xx = np.indices((51, 51))
    for i in range(3):
        total = cube[i].sum()
        assert total == pytest.approx(7.0 * psf.sum(), rel=1e-5)  # the Fourier shift leaks ~1e-6 into the cropped padding
        cx = (cube[i] * xx).sum() / total
        cy = (cube[i] * yy).sum() / total
        assert (cx, cy) == (pytest.approx(x[i], abs=1e-3), pytest.approx(y[i], abs=1e-3))


def test_injection_is_linear_and_leaves_input_alone(small_cube):
    cube, angles = small_cube
    before = cube.copy()
    psf = gaussian_psf(9, 2.5)
    one = cube_inject_companions(cube, psf, angles, sep_px=10, theta_deg=40, flux=3.0)
    two = cube_inject_companions(cube, psf, angles, sep_px=[10, 10], theta_deg=[40, 40], flux=[1.0, 2.0])
    np.testing.assert_allclose(one, two, atol=1e-12)
    np.testing.assert_array_equal(cube, before)
    stamps = companion_stamps(cube.shape, psf, angles, 10, 40)
    manual = cube.copy()
    add_companion_stamps(manual, stamps, 3.0)
    np.testing.assert_allclose(manual, one, atol=1e-12)


def test_stamp_clipping_at_frame_edge():
    psf = gaussian_psf(15, 3.0)
    out = cube_inject_companions(np.zeros((1, 21, 21)), psf, [0.0], sep_px=9.5, theta_deg=0.0, flux=1.0)
    assert out[0, 10, 20] > 0 and np.isfinite(out).all()


def test_injection_errors(small_cube):
    cube, angles = small_cube
    psf = gaussian_psf(9, 2.5)
    with pytest.raises(ValueError, match="sep_px must lie in"):
        cube_inject_companions(cube, psf, angles, sep_px=30, theta_deg=0, flux=1)
    with pytest.raises(ValueError, match="method must be one of"):
        cube_inject_companions(cube, psf, angles, sep_px=5, theta_deg=0, flux=1, method="lanczos")
    with pytest.raises(ValueError, match="larger than the frames"):
        cube_inject_companions(cube, gaussian_psf(45, 3), angles, sep_px=5, theta_deg=0, flux=1)
    shifted = np.roll(psf, 3, axis=1)
    with pytest.raises(ValueError, match="off-centre"):
        cube_inject_companions(cube, shifted, angles, sep_px=5, theta_deg=0, flux=1)


@pytest.mark.parametrize("size", [5, 20, 21])
def test_separable_shift_equals_the_fft_shift(size):
    """The C+ path shifts stamps with two real matrix products per frame; they equal the FFT phase ramp."""
    from sodinn.adi.injection import FourierShifter, _subpixel_shift

    rng = np.random.default_rng(size)
    stamp = rng.random((size, size))
    dy, dx = rng.uniform(-1, 1, (3, 9)), rng.uniform(-1, 1, (3, 9))
    scale = rng.uniform(1, 100, 3)
    got = FourierShifter(stamp).shifted(dy, dx, scale)
    ref = _subpixel_shift(stamp, dy.ravel(), dx.ravel(), "fft").reshape(3, 9, size, size) * scale[:, None, None, None]
    assert np.abs(got - ref).max() <= 1e-13 * np.abs(ref).max()
    assert np.abs(got - np.broadcast_to(stamp, got.shape) * scale[:, None, None, None]).max() > 1e-3 * np.abs(ref).max()


def _inject_at(psf, x, y, *, size=51, angle_deg=0.0, method="fft"):
    """Inject a unit companion whose position in a frame of angle ``angle_deg`` is ``(x, y)``; return the frame and warnings."""
    c = size // 2
    sep = float(np.hypot(x - c, y - c))
    theta = float(np.degrees(np.arctan2(y - c, x - c))) + angle_deg
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = cube_inject_companions(np.zeros((1, size, size)), psf, [angle_deg], sep_px=sep, theta_deg=theta, flux=1.0,
                                       method=method)[0]
    return frame, [w for w in caught if issubclass(w.category, PSFWarning)]


@pytest.mark.parametrize("method", ["fft", "spline"])
@pytest.mark.parametrize(("psf", "before"), [
    (offset_psf(21, 1.0, 0.0), (31.0, 20.0)),  # issue 13: centroid 1 px right of the stamp centre
    (offset_psf(20, -0.5, -0.5), (29.5, 19.5)),  # issue 13: a 20x20 PSF symmetric about (9.5, 9.5)
])
def test_companion_injected_at_30_20_lands_there(psf, before, method):
    """Issue 13 case C: these PSFs put a companion asked at (30, 20) at ``before``; it now lands on (30, 20)."""
    frame, caught = _inject_at(psf, 30.0, 20.0, method=method)
    x, y = psf_centroid(frame)
    assert np.hypot(x - 30.0, y - 20.0) < 0.05
    assert np.hypot(x - 30.0, y - 20.0) < 1e-3  # what is measured: the Gaussian stamps are recentred exactly
    assert len(caught) == 1 and "recentred" in str(caught[0].message)  # once per call, not once per companion
    frame, _ = _inject_at(offset_psf(21), 30.0, 20.0, method=method)
    np.testing.assert_allclose(psf_centroid(frame), (30.0, 20.0), atol=1e-3)
    assert np.hypot(before[0] - 30.0, before[1] - 20.0) >= 0.7  # what the stamp centre alone gave


@settings(max_examples=30, deadline=None)
@given(size=st.sampled_from([13, 16, 17, 20, 21]), kind=st.sampled_from(["gaussian", "airy"]),
       offset_px=st.floats(0.0, 1.2), direction_deg=st.floats(0.0, 360.0), x=st.floats(28.0, 34.0),
       y=st.floats(14.0, 22.0), angle_deg=st.floats(-180.0, 180.0))
def test_injected_companion_lands_within_0_05_px_for_any_centring_error(size, kind, offset_px, direction_deg, x, y, angle_deg):
    """Odd and even stamps off-centre by up to 1.2 px: the injected companion's centroid is where it is asked."""
    dx, dy = offset_px * np.cos(np.radians(direction_deg)), offset_px * np.sin(np.radians(direction_deg))
    frame, caught = _inject_at(offset_psf(size, dx, dy, 4.0, kind), x, y, angle_deg=angle_deg)
    cx, cy = psf_centroid(frame)
    assert np.hypot(cx - x, cy - y) < 0.05
    if offset_px > PSF_CENTRE_TOLERANCE_PX + 1e-3:
        assert len(caught) == 1
    elif offset_px < PSF_CENTRE_TOLERANCE_PX - 1e-3:
        assert caught == []


def test_companion_stamps_recentres_the_psf():
    with pytest.warns(PSFWarning, match="recentred"):
        stamps = companion_stamps((1, 41, 41), offset_psf(15, -0.6, 0.4), [30.0], 9.0, 75.0)
    frame = np.zeros((1, 41, 41))
    add_companion_stamps(frame, stamps, 1.0)
    np.testing.assert_allclose(psf_centroid(frame[0]), (stamps.x[0], stamps.y[0]), atol=1e-3)
