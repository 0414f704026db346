import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sodinn.adi.rotation import DerotationStencil, cube_derotate, derotated_mean_at, frame_rotate

from ..conftest import gaussian_psf


def _blob_frame(size=41, x=27.3, y=16.8, fwhm=4.0):
    yy, xx = np.indices((size, size))
    sigma = fwhm / 2.3548
    return np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))


def test_rotation_direction_is_counter_clockwise():
    frame = np.zeros((21, 21))
    frame[10, 15] = 1.0  # 5 px along +x
    out = frame_rotate(frame, 90.0)
    assert np.unravel_index(np.argmax(out), out.shape) == (15, 10)  # now 5 px along +y
    assert out.max() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("size", [21, 22])
def test_quarter_turn_is_exact(size, rng):
    frame = rng.normal(size=(size, size))
    out = frame_rotate(frame, 90.0)
    c = size // 2
    # content at (dx, dy) moves to (-dy, dx): out[c + dx, c - dy] = frame[c + dy, c + dx]
    for dy, dx in [(1, 3), (-4, 2), (5, -5)]:
        assert out[c + dx, c - dy] == pytest.approx(frame[c + dy, c + dx], abs=1e-12)


def test_zero_angle_is_identity(rng):
    cube = rng.normal(size=(3, 17, 17))
    np.testing.assert_array_equal(cube_derotate(cube, np.zeros(3)), cube)


@settings(max_examples=40, deadline=None)
@given(theta=st.floats(min_value=-180, max_value=180), order=st.sampled_from([1, 3]))
def test_rotate_then_unrotate_recovers_smooth_image(theta, order):
    frame = _blob_frame()
    back = frame_rotate(frame_rotate(frame, theta, order=order), -theta, order=order)
    # bilinear interpolation smooths a FWHM-4 px source by up to ~13% of its peak per round trip;
    # cubic splines by < 0.5%. A wrong direction or centre would leave errors of order 100%.
    tol = 0.15 if order == 1 else 0.006
    assert np.abs(back - frame).max() < tol * frame.max()
    # flux of a source well inside the field is conserved
    assert back.sum() == pytest.approx(frame.sum(), rel=0.01)


@settings(max_examples=25, deadline=None)
@given(a=st.floats(min_value=-90, max_value=90), b=st.floats(min_value=-90, max_value=90))
def test_rotations_compose(a, b):
    frame = _blob_frame(fwhm=6.0)
    two = frame_rotate(frame_rotate(frame, a, order=3), b, order=3)
    one = frame_rotate(frame, a + b, order=3)
    assert np.abs(two - one).max() < 0.01


def test_source_lands_on_sky_position_after_derotation():
    angles = np.array([0.0, 20.0, 45.0, 70.0])
    size, sep, theta = 41, 12.0, 30.0
    cube = np.stack([_blob_frame(size, 20 + sep * np.cos(np.deg2rad(theta - a)), 20 + sep * np.sin(np.deg2rad(theta - a))) for a in angles])
    mean = cube_derotate(cube, angles, order=3).mean(axis=0)
    y, x = np.unravel_index(np.argmax(mean), mean.shape)
    assert (x, y) == (round(20 + sep * np.cos(np.deg2rad(theta))), round(20 + sep * np.sin(np.deg2rad(theta))))


def test_cube_derotate_matches_vip_bilinear(naco, vip):
    angles = naco.angles_deg
    ours = cube_derotate(naco.cube, angles)
    ref = vip.preproc.cube_derotate(np.array(naco.cube), angles, imlib="skimage", interpolation="bilinear")
    r = np.hypot(*(np.indices(ours.shape[1:]) - 50))
    fov = r < 48  # VIP fills outside the frame with the frame minimum; inside, identical
    assert np.abs(ours - ref)[:, fov].max() <= 1e-10 * np.abs(ref).max()


@pytest.mark.parametrize("size", [31, 32])
def test_spline_rotation_matches_scipy_ndimage_rotate(rng, size):
    from scipy.ndimage import rotate

    frame = rng.normal(size=(size, size))
    ours = frame_rotate(frame, 23.0, order=3)
    # scipy turns the array about (N-1)/2 with the opposite sign convention (rows down)
    ref = rotate(frame, -23.0, reshape=False, order=3, mode="grid-constant")
    if size % 2:
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)
    else:  # even frames: VIP's centre N/2 differs from scipy's (N-1)/2 by half a pixel
        assert np.abs(ours - ref).max() > 1e-3


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_fast_operator_equals_full_derotation_then_crop(naco, sign):
    angles = sign * naco.angles_deg
    full = cube_derotate(naco.cube, angles).mean(axis=0)
    r = np.hypot(*(np.indices(full.shape) - 50))
    yy, xx = np.nonzero((r >= 5) & (r < 40))
    fast = derotated_mean_at(naco.cube, angles, np.column_stack([yy, xx]))
    assert np.abs(fast - full[yy, xx]).max() <= 1e-6 * np.abs(full[yy, xx]).max()


def test_fast_operator_on_synthetic_with_edges(rng):
    cube = rng.normal(size=(7, 24, 24))
    angles = rng.uniform(-90, 90, 7)
    full = cube_derotate(cube, angles).mean(axis=0)
    yy, xx = np.indices((24, 24))
    pixels = np.column_stack([yy.ravel(), xx.ravel()])  # every pixel, corners included
    fast = DerotationStencil((24, 24), angles, pixels).mean_of(cube)
    np.testing.assert_allclose(fast, full.ravel(), rtol=0, atol=1e-12)


def test_stencil_weights_sum_to_one_inside():
    st_ = DerotationStencil((31, 31), np.array([13.0, 77.0]), np.array([[15, 20], [3, 15]]))
    assert st_.weight.shape == (2, 2, 4)
    np.testing.assert_allclose(st_.weight.sum(axis=(0, 2)), 1.0)
    assert st_.source_pixels().size > 0


def test_rotation_errors(rng):
    with pytest.raises(ValueError, match="order must be 1"):
        cube_derotate(rng.normal(size=(2, 9, 9)), [0, 1], order=2)
    with pytest.raises(ValueError, match="angles_deg has 3 values but the cube has 2 frames"):
        cube_derotate(rng.normal(size=(2, 9, 9)), [0, 1, 2])
    with pytest.raises(ValueError, match="must be a 3-D array"):
        cube_derotate(rng.normal(size=(9, 9)), [0])
    with pytest.raises(ValueError, match="outside the 9x9 frame"):
        derotated_mean_at(rng.normal(size=(2, 9, 9)), [0, 1], [(3, 9)])
    with pytest.raises(ValueError, match="integer pixel"):
        derotated_mean_at(rng.normal(size=(2, 9, 9)), [0, 1], [(3.5, 4)])
    stencil = DerotationStencil((9, 9), [0.0, 1.0], [(4, 4)])
    with pytest.raises(ValueError, match="this stencil was built for"):
        stencil.mean_of(rng.normal(size=(3, 9, 9)))
    assert gaussian_psf().shape == (15, 15)
