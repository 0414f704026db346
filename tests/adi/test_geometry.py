import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sodinn.adi.geometry import (
    annulus_indices,
    annulus_mask,
    annulus_partition,
    extract_patches,
    frame_center,
    patch_offsets,
    polar_coordinates,
    svd_region_radii,
)


@pytest.mark.parametrize(("n", "c"), [(101, 50), (100, 50), (5, 2), (6, 3)])
def test_frame_center_follows_vip_rule(n, c):
    assert frame_center((n, n)) == (c, c)
    assert frame_center((7, n, n)) == (c, c)


def test_frame_center_matches_vip(vip):
    for n in (31, 32, 101, 100):
        assert frame_center((n, n)) == vip.var.frame_center(np.zeros((n, n)))


def test_polar_coordinates_angle_convention():
    r, theta = polar_coordinates((11, 11))
    assert r[5, 5] == 0
    assert theta[5, 8] == pytest.approx(0.0)  # +x
    assert theta[8, 5] == pytest.approx(90.0)  # +y (along the rows)
    assert theta[5, 2] == pytest.approx(180.0)
    assert r[8, 9] == pytest.approx(5.0)


def test_annulus_indices_match_vip(vip):
    for shape, r_in, w in [((101, 101), 9.6, 4.8), ((64, 64), 3.0, 2.5), ((31, 31), 0.0, 4.0)]:
        ours = annulus_indices(shape, r_in, w)
        ref = vip.var.get_annulus_segments(np.zeros(shape), r_in, w)[0]
        np.testing.assert_array_equal(ours[0], ref[0])
        np.testing.assert_array_equal(ours[1], ref[1])


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=9, max_value=80),
    width=st.floats(min_value=0.7, max_value=9.0),
    r_in=st.floats(min_value=0.0, max_value=6.0),
)
def test_annulus_partition_covers_each_pixel_once(size, width, r_in):
    if r_in + width > size / 2:
        with pytest.raises(ValueError, match="no annulus|outside"):
            annulus_partition((size, size), width, r_in_px=r_in)
        return
    parts = annulus_partition((size, size), width, r_in_px=r_in)
    count = np.zeros((size, size), dtype=int)
    for i in range(len(parts)):
        yy, xx = parts.indices(i)
        count[yy, xx] += 1
    r, _ = polar_coordinates((size, size))
    inside = (r >= parts.edges_px[0]) & (r < parts.edges_px[-1])
    assert count.max() <= 1
    np.testing.assert_array_equal(count == 1, inside)
    labels = parts.label_map()
    np.testing.assert_array_equal(labels >= 0, inside)
    assert parts.edges_px[-1] <= size / 2 + 1e-9
    np.testing.assert_allclose(np.diff(parts.edges_px), width)


def test_annulus_partition_errors():
    with pytest.raises(ValueError, match="outside the 51x51 px frame"):
        annulus_partition((51, 51), 5, r_in_px=3, r_out_px=40)
    with pytest.raises(ValueError, match="width_px must be > 0"):
        annulus_partition((51, 51), 0, r_in_px=3)
    with pytest.raises(ValueError, match="inner radius must be >= 0"):
        annulus_partition((51, 51), 3, r_in_px=-1)


def test_annulus_mask_is_half_open():
    m = annulus_mask((21, 21), 3.0, 2.0)
    r, _ = polar_coordinates((21, 21))
    assert m[10, 13] and not m[10, 15]  # r=3 in, r=5 out
    assert np.all(m == ((r >= 3) & (r < 5)))


def test_svd_region_contains_every_patch():
    r_in, r_out, p = 10.0, 15.0, 11
    lo, hi = svd_region_radii(r_in, r_out, p)
    assert (lo, hi) == (3.0, 22.0)
    r, _ = polar_coordinates((61, 61))
    dy, dx = patch_offsets(p)
    for y, x in zip(*np.nonzero((r >= r_in) & (r < r_out))):
        rr = r[y + dy, x + dx]
        assert rr.min() >= lo and rr.max() < hi


def test_extract_patches_and_errors():
    frame = np.arange(121.0).reshape(11, 11)
    patches = extract_patches(frame, np.array([[5, 5], [2, 3]]), 3)
    np.testing.assert_array_equal(patches[0], frame[4:7, 4:7])
    np.testing.assert_array_equal(patches[1], frame[1:4, 2:5])
    stack = np.stack([frame, -frame])
    assert extract_patches(stack, np.array([[5, 5]]), 5).shape == (1, 2, 5, 5)
    with pytest.raises(ValueError, match="must be odd"):
        extract_patches(frame, np.array([[5, 5]]), 4)
    with pytest.raises(ValueError, match="leaves the 11x11 frame"):
        extract_patches(frame, np.array([[1, 5]]), 5)
