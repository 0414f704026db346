import numpy as np
import pytest

from sodinn.adi.aperture import aperture_sums, aperture_weights, block_size, gather_blocks


def test_exact_apertures_match_photutils(rng):
    from photutils.aperture import CircularAperture, aperture_photometry

    image = rng.normal(size=(40, 40))
    centers = rng.uniform(4, 36, size=(300, 2))
    centers[:20] = np.round(centers[:20])  # on pixel centres
    centers[20:40, 0] = np.round(centers[20:40, 0]) + 0.5  # on pixel edges
    for radius in (0.4, 1.0, 2.4, 3.3):
        ours = aperture_sums(image, centers, radius)
        ref = np.array(aperture_photometry(image, CircularAperture(centers, r=radius), method="exact")["aperture_sum"])
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)


def test_aperture_weights_sum_to_disc_area(rng):
    centers = rng.uniform(10, 20, size=(100, 2))
    for radius in (0.5, 2.4, 5.0):
        _, _, w = aperture_weights(centers, radius)
        np.testing.assert_allclose(w.sum(axis=(1, 2)), np.pi * radius**2, rtol=1e-12)
        assert w.min() >= 0 and w.max() <= 1 + 1e-12


@pytest.mark.parametrize(("radius", "size"), [(0.4, 2), (0.5, 2), (1.0, 3), (2.4, 6), (3.0, 7)])
def test_block_size(radius, size):
    assert block_size(radius) == size


def test_weights_block_and_symmetry():
    y0, x0, w = aperture_weights(np.array([[10.0, 12.0]]), 2.4)
    assert w.shape == (1, 6, 6)
    assert (y0[0], x0[0]) == (10, 8) and y0.dtype == np.int64
    # a disc centred on pixel (x=10, y=12): the centre pixel is fully covered, the weights are symmetric
    inner = w[0, :5, :5]  # the last row/column of the block is outside the disc
    assert inner[2, 2] == pytest.approx(1.0)
    np.testing.assert_allclose(inner, inner.T, atol=1e-12)
    np.testing.assert_allclose(inner, inner[::-1, ::-1], atol=1e-12)
    np.testing.assert_array_equal(w[0, 5, :], 0)


def test_constant_image_gives_the_disc_area_and_outside_counts_zero():
    image = np.ones((30, 30))
    radius = 3.3
    inside = aperture_sums(image, np.array([[15.2, 14.7], [10.0, 20.0]]), radius)
    np.testing.assert_allclose(inside, np.pi * radius**2, rtol=1e-12)
    # centred on the outer corner of pixel (0, 0): exactly a quarter of the disc lies on the image
    corner = aperture_sums(image, np.array([[-0.5, -0.5]]), radius)
    np.testing.assert_allclose(corner, np.pi * radius**2 / 4, rtol=1e-12)
    far = aperture_sums(image, np.array([[-10.0, -10.0]]), radius)
    assert far[0] == 0.0


def test_gather_blocks_with_leading_axes(rng):
    cube = rng.normal(size=(3, 2, 25, 25))
    centers = rng.uniform(3, 21, size=(7, 2))
    y0, x0, w = aperture_weights(centers, 1.7)
    out = gather_blocks(cube, y0, x0, w.shape[-1], w)
    assert out.shape == (3, 2, 7)
    for i in range(3):
        for j in range(2):
            np.testing.assert_allclose(out[i, j], aperture_sums(cube[i, j], centers, 1.7), rtol=1e-12, atol=1e-12)
