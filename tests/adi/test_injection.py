import numpy as np
import pytest

from sodinn.adi.injection import add_companion_stamps, companion_positions, companion_stamps, cube_inject_companions

from ..conftest import gaussian_psf


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
