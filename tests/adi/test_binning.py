import numpy as np
import pytest

from sodinn.adi.binning import bin_frames, bin_sequence, binning_smear_px
from sodinn.adi.geometry import frame_center
from sodinn.adi.injection import cube_inject_companions
from sodinn.adi.sequence import ADISequence
from sodinn.datasets import make_adi_sequence


def test_bins_are_means_of_consecutive_frames_and_angles():
    rng = np.random.default_rng(0)
    cube, angles = rng.normal(size=(10, 7, 7)), np.sort(rng.uniform(-30, 30, 10))
    binned, mean_angles = bin_frames(cube, angles, 3)
    assert binned.shape == (4, 7, 7)
    for j, s in enumerate([slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 10)]):
        np.testing.assert_allclose(binned[j], cube[s].mean(axis=0), rtol=1e-14)
        assert mean_angles[j] == pytest.approx(angles[s].mean(), abs=1e-12)
    same, same_angles = bin_frames(cube, angles, 1)
    np.testing.assert_array_equal(same, cube)
    np.testing.assert_array_equal(same_angles, angles)


def test_binned_companion_sits_at_the_mean_angle_smeared_by_r_dtheta():
    """A point-like companion averaged over a bin has its centroid on the bin's mean angle (shrunk to the
    chord's centroid radius) and its tangential spread is that of an arc of length r * dtheta."""
    n, size, sep, theta, step = 40, 41, 15.0, 30.0, 1.5  # 1.5 degrees per frame, linear rotation
    angles = np.arange(n) * step
    yy, xx = np.mgrid[-3:4, -3:4]
    psf = np.exp(-(xx**2 + yy**2) / (2 * 0.8**2))
    cube = cube_inject_companions(np.zeros((n, size, size)), psf, angles, sep_px=sep, theta_deg=theta, flux=1.0)
    factor = 8
    binned, mean_angles = bin_frames(cube, angles, factor)
    dtheta = np.deg2rad(step * (factor - 1))
    assert binning_smear_px(angles, factor, sep) == pytest.approx(sep * dtheta)
    cy, cx = frame_center(cube.shape)
    gy, gx = np.indices((size, size))
    offsets = np.deg2rad(step) * (np.arange(factor) - (factor - 1) / 2)  # the bin's angles around its mean
    for frame, mean_angle in zip(binned, mean_angles):
        phi = np.deg2rad(theta - mean_angle)  # SPEC §1: a sky angle theta lies at theta - PA in the frame
        weight = frame / frame.sum()
        dx, dy = gx - cx, gy - cy
        radial, tangential = dx * np.cos(phi) + dy * np.sin(phi), -dx * np.sin(phi) + dy * np.cos(phi)
        assert abs((weight * tangential).sum()) < 0.02  # centred on the mean angle
        assert (weight * radial).sum() == pytest.approx(sep * np.cos(offsets).mean(), abs=0.02)  # the arc's centroid
        # tangential variance: the PSF's own (sigma = 0.8 px) plus that of the points spread along the arc
        spread = (sep * np.sin(offsets)) ** 2
        assert (weight * tangential**2).sum() == pytest.approx(0.8**2 + spread.mean(), rel=0.05)


def test_bin_sequence_keeps_psf_and_records_binning():
    data = make_adi_sequence(n_frames=12, size_px=33, fwhm_px=3.0, seed=1)
    seq = ADISequence(data.cube, data.angles_deg, data.psf, data.fwhm_px, data.pixel_scale_arcsec)
    binned = bin_sequence(seq, 4)
    assert binned.n_frames == 3 and binned.fwhm_px == seq.fwhm_px
    np.testing.assert_array_equal(binned.psf, seq.psf)
    assert binned.provenance["binned_frames"] == 4 and binned.provenance["n_frames_unbinned"] == 12
    np.testing.assert_allclose(binned.angles_deg, seq.angles_deg.reshape(3, 4).mean(axis=1))


@pytest.mark.parametrize(("factor", "error", "match"), [(0, ValueError, "factor"), (11, ValueError, "larger than the number"),
                                                       (2.5, TypeError, "factor must be an integer")])
def test_bad_factor(factor, error, match):
    with pytest.raises(error, match=match):
        bin_frames(np.zeros((10, 5, 5)), np.arange(10.0), factor)
